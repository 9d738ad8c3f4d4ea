/* The host side of the CUDA gptq op (ops_gptq.cu): W and H's upper triangle scanned on the device
 * for non-finite values (the settings are dsv4_gptq_begin's, shared with the CPU op), the act-order
 * permutation (stable, diag descending), and the fallback that runs the CPU backend's op on host
 * copies when cuSOLVER / cuBLAS are not there. */
#include "ops_gptq.cuh"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gptq_math.h"

namespace dsv4cu {
namespace {

/* *first = the smallest index t (row-major over rows × cols, only c >= r when `upper`) whose value
 * is not finite. */
__global__ void first_bad_kernel(const float *x, int64_t rows, int64_t cols, int upper, unsigned long long *first)
{
    int64_t n = rows * cols;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = t / cols, c = t - r * cols;
        if ((!upper || c >= r) && !isfinite(x[t]))
            atomicMin(first, (unsigned long long)t);
    }
}

} // namespace

int gptq_check_finite(dsv4_ops *o, const dsv4_gptq_args *a, dsv4_err *e)
{
    unsigned long long *first = static_cast<unsigned long long *>(scratch(o, SCR_WORK3, 16, "gptq", e)), hf[2];
    if (!first || check(e, "gptq", "scan reset", cudaMemsetAsync(first, 0xFF, 16, stream(o))))
        return -1;
    first_bad_kernel<<<grid_for(a->N * a->K), kEltThreads, 0, stream(o)>>>(a->W, a->N, a->K, 0, first);
    first_bad_kernel<<<grid_for(a->K * a->K), kEltThreads, 0, stream(o)>>>(a->H, a->K, a->K, 1, first + 1);
    if (launched(e, "gptq") || o->download(o, hf, first, sizeof hf, e))
        return -1;
    for (int k = 0; k < 2; k++) {
        if (hf[k] == ~0ull)
            continue;
        int64_t cols = a->K, t = (int64_t)hf[k]; /* W and H both have K columns */
        float v = 0.0f;
        if (o->download(o, &v, (k ? a->H : a->W) + t, sizeof v, e))
            return -1;
        if (k == 0)
            return dsv4_fail(e, "cuda gptq: weight [%lld, %lld]: element [%lld, %lld] is not finite (%g)",
                             (long long)a->N, (long long)a->K, (long long)(t / cols), (long long)(t % cols), (double)v);
        return dsv4_fail(e, "cuda gptq: Hessian [%lld, %lld] of weight [%lld, %lld]: element [%lld, %lld] is not "
                         "finite (%g)", (long long)a->K, (long long)a->K, (long long)a->N, (long long)a->K,
                         (long long)(t / cols), (long long)(t % cols), (double)v);
    }
    return 0;
}

int gptq_act_order(const float *diag, int64_t K, int32_t *perm)
{
    int32_t *tmp = static_cast<int32_t *>(malloc((size_t)K * sizeof *tmp));
    if (!tmp)
        return -1;
    for (int64_t i = 0; i < K; i++)
        perm[i] = (int32_t)i;
    int32_t *src = perm, *dst = tmp;
    for (int64_t w = 1; w < K; w *= 2) { /* bottom-up merge sort: stable */
        for (int64_t lo = 0; lo < K; lo += 2 * w) {
            int64_t mid = lo + w < K ? lo + w : K, hi = lo + 2 * w < K ? lo + 2 * w : K, i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                dst[k++] = diag[src[j]] > diag[src[i]] ? src[j++] : src[i++];
            while (i < mid)
                dst[k++] = src[i++];
            while (j < hi)
                dst[k++] = src[j++];
        }
        int32_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != perm)
        memcpy(perm, src, (size_t)K * sizeof *perm);
    free(tmp);
    return 0;
}

int gptq_fallback(dsv4_ops *o, calib *s, dsv4_gptq_args *a, dsv4_err *e)
{
    if (!s->cpu && !(s->cpu = dsv4_ops_cpu(0)))
        return dsv4_fail_rt(e, "cuda gptq: could not open the CPU backend for the fallback path");
    if (!s->cpu->gptq)
        return dsv4_fail_rt(e, "cuda gptq: the CPU backend has no gptq op (op missing), and the fallback path (%.600s) "
                            "needs it", s->path);
    size_t nw = (size_t)a->N * (size_t)a->K, nh = (size_t)a->K * (size_t)a->K;
    size_t ns = (size_t)a->N * (size_t)(a->K / a->group) * (a->fmt == DSV4_GPTQ_INT4 ? 2 : 1);
    float *W = static_cast<float *>(malloc(nw * sizeof(float))), *H = static_cast<float *>(malloc(nh * sizeof(float)));
    uint8_t *q = static_cast<uint8_t *>(malloc(nw)), *sc = static_cast<uint8_t *>(malloc(ns));
    int rc = -1;
    if (!W || !H || !q || !sc) {
        dsv4_fail_rt(e, "cuda gptq: out of memory for host copies of a [%lld, %lld] weight and its Hessian",
                     (long long)a->N, (long long)a->K);
    } else if (!o->download(o, W, a->W, nw * sizeof(float), e) && !o->download(o, H, a->H, nh * sizeof(float), e)) {
        dsv4_gptq_args h = *a;
        h.W = W;
        h.H = H;
        h.q = q;
        h.scale = sc;
        if (!s->cpu->gptq(s->cpu, &h, e) && !o->upload(o, a->W, W, nw * sizeof(float), e) &&
            !o->upload(o, a->q, q, nw, e) && !o->upload(o, a->scale, sc, ns, e) && !o->sync(o, e))
            rc = 0;
        a->loss = h.loss; /* the report, also of a failed call */
        a->damp_used = h.damp_used;
        a->attempts = h.attempts;
        a->rtn_fallback = h.rtn_fallback;
        a->dead = h.dead;
    }
    free(W);
    free(H);
    free(q);
    free(sc);
    return rc;
}

} // namespace dsv4cu
