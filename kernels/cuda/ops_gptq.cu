/* GPTQ of one weight on the GPU (kernels/ops.h dsv4_gptq_args; spec/formats_algorithms.md §4), the
 * same decisions as the CPU op (kernels/cpu/ops_gptq.c) through kernels/gptq_math.h:
 *  - the diagonal comes to the host for the act-order permutation (stable, descending), the dead
 *    columns and the mean; ops_gptq_factor.cu turns H into U in place (cuSOLVER, fp64);
 *  - up-front scales: one thread per (row, group) runs the observer on the original W (original
 *    groups for NONE/STATIC, permuted groups for GROUP) and writes the output scale;
 *  - the column loop, per block of B columns: one kernel where each warp owns a row, holds the
 *    row's B values and the block's U [B × B] in shared memory and runs the columns in order (all
 *    lanes make the column's quantization decision, each lane updates its columns j > c), writing
 *    the value and code at the original column, Err1 and the loss; with recompute the warp runs
 *    the observer on its current values at each group start and writes that scale. Then
 *    W[:, i2:] -= Err1·U[i1:i2, i2:] with cublasSgemm (fp32, default math mode: no TF32);
 *  - without cuSOLVER/cuBLAS, W and H go to the host and the CPU backend's op runs on them.
 * Element arithmetic uses __f*_rn intrinsics where the host writes two roundings (no FMA
 * contraction), so both backends compute the same error terms from the same inputs. */
#include "ops_gptq.cuh"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gptq_math.h"

namespace dsv4cu {
namespace {

constexpr int kWarps = 8;       /* rows per block of the column-loop kernel */
constexpr int kMaxGroup = 128;  /* the largest group the observers gather (INT4 g128) */

__global__ void diag_kernel(const float *H, int64_t K, float *diag)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < K; i += (int64_t)gridDim.x * blockDim.x)
        diag[i] = H[i * K + i];
}

/* Up-front scales: sval[n, g] is the float the loop divides by (INT4 s, NVFP4 the effective
 * scale), out[n, g] the stored scale. Group g of row n is columns g·group.. of W, through perm
 * (GROUP) or not (NONE/STATIC). */
__global__ void scales_kernel(const float *W, int64_t N, int64_t K, int group, const int32_t *perm, int fmt,
                              int observer, float gs, float *sval, void *out)
{
    int64_t G = K / group, n = N * G;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = t / G, g = t - r * G;
        float buf[kMaxGroup];
        for (int j = 0; j < group; j++) {
            int64_t col = g * group + j;
            buf[j] = W[r * K + (perm ? perm[col] : col)];
        }
        if (fmt == DSV4_GPTQ_INT4) {
            float s = observer == DSV4_OBSERVER_MSE ? dsv4_gq_int4_scale_mse(buf, group, 1)
                                                    : dsv4_gq_int4_scale(dsv4_gq_amax(buf, group, 1));
            sval[t] = s;
            static_cast<uint16_t *>(out)[t] = (uint16_t)(dsv4_f32_bits(s) >> 16);
        } else {
            uint32_t sc = observer == DSV4_OBSERVER_MSE ? dsv4_gq_nvfp4_scale_mse(buf, group, 1, gs)
                                                        : dsv4_gq_nvfp4_scale(dsv4_gq_amax(buf, group, 1), gs);
            sval[t] = dsv4_gq_nvfp4_eff(sc, gs);
            static_cast<uint8_t *>(out)[t] = (uint8_t)sc;
        }
    }
}

/* Wp[n, c] = W[n, perm[c]], 0 in dead columns. */
__global__ void permute_kernel(const float *W, int64_t N, int64_t K, const int32_t *perm, const float *diag, float *Wp)
{
    int64_t n = N * K;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = t / K, c = t - r * K, src = perm[c];
        Wp[t] = diag[src] == 0.0f ? 0.0f : W[r * K + src];
    }
}

struct loop_args {
    const float *U;          /* [K, K] row-major upper factor */
    float *Wp;               /* [N, K] permuted working weight */
    float *Err;              /* [N, Bs] */
    float *Wout;             /* [N, K] original order: the fake-quantized values */
    uint8_t *q;              /* [N, K] original order */
    void *scale;             /* [N, G] (recompute: written here) */
    const float *sval;       /* [N, G] up-front scales (recompute == 0) */
    const int32_t *perm;     /* [K] */
    double *loss;
    int64_t N, K, i1;
    int Bs, Bn, group, fmt, observer, actorder, recompute;
    float gs;
};

/* The scale of a recomputed group from the row's current values x[0..group). */
__device__ float group_scale(const loop_args &p, const float *x, int64_t r, int64_t gi, int lane)
{
    int64_t G = p.K / p.group;
    if (p.fmt == DSV4_GPTQ_INT4) {
        float s = p.observer == DSV4_OBSERVER_MSE ? dsv4_gq_int4_scale_mse(x, p.group, 1)
                                                  : dsv4_gq_int4_scale(dsv4_gq_amax(x, p.group, 1));
        if (lane == 0)
            static_cast<uint16_t *>(p.scale)[r * G + gi] = (uint16_t)(dsv4_f32_bits(s) >> 16);
        return s;
    }
    uint32_t sc = p.observer == DSV4_OBSERVER_MSE ? dsv4_gq_nvfp4_scale_mse(x, p.group, 1, p.gs)
                                                  : dsv4_gq_nvfp4_scale(dsv4_gq_amax(x, p.group, 1), p.gs);
    if (lane == 0)
        static_cast<uint8_t *>(p.scale)[r * G + gi] = (uint8_t)sc;
    return dsv4_gq_nvfp4_eff(sc, p.gs);
}

/* One block of columns [i1, i1 + Bn): warp w of block b owns row b·kWarps + w. */
__global__ void __launch_bounds__(kWarps * 32) block_kernel(loop_args p)
{
    extern __shared__ float sm[];
    const int Bs = p.Bs, Bn = p.Bn, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float *Us = sm, *Ws = sm + (size_t)Bs * Bs + (size_t)warp * Bs;
    for (int k = threadIdx.x; k < Bn * Bn; k += blockDim.x) {
        int r = k / Bn, cc = k - r * Bn;
        Us[r * Bs + cc] = p.U[(p.i1 + r) * p.K + p.i1 + cc];
    }
    const int64_t row = (int64_t)blockIdx.x * kWarps + warp;
    if (row < p.N)
        for (int j = lane; j < Bn; j += 32)
            Ws[j] = p.Wp[row * p.K + p.i1 + j];
    __syncthreads();
    if (row >= p.N)
        return;
    const int64_t G = p.K / p.group;
    float cur = 0.0f;
    double loss = 0.0;
    for (int cl = 0; cl < Bn; cl++) {
        const int64_t c = p.i1 + cl;
        const float w = Ws[cl];
        float s;
        if (p.recompute) {
            if (c % p.group == 0)
                cur = group_scale(p, Ws + cl, row, c / p.group, lane);
            s = cur;
        } else {
            s = p.sval[row * G + (p.actorder == DSV4_ACTORDER_STATIC ? p.perm[c] : c) / p.group];
        }
        float v;
        uint32_t code;
        if (p.fmt == DSV4_GPTQ_INT4) {
            int qi = dsv4_gq_int4_q(w, s);
            v = dsv4_gq_int4_value(qi, s);
            code = (uint8_t)(int8_t)qi;
        } else {
            code = dsv4_gq_e2m1_code(__fdiv_rn(w, s));
            v = __fmul_rn(dsv4_gq_e2m1_value(code), s);
        }
        const float d = Us[cl * Bs + cl], r = __fsub_rn(w, v), err = __fdiv_rn(r, d);
        loss += (double)err * (double)err; /* the CPU op's sum: (w - v)² / d² through the fp32 quotient */
        if (lane == 0) {
            p.Err[row * Bs + cl] = err;
            int64_t o = row * p.K + p.perm[c];
            p.Wout[o] = v;
            p.q[o] = (uint8_t)code;
        }
        for (int j = lane; j < Bn; j += 32)
            if (j > cl)
                Ws[j] = __fsub_rn(Ws[j], __fmul_rn(err, Us[cl * Bs + j]));
        __syncwarp();
    }
    if (lane == 0)
        atomicAdd(p.loss, loss);
}

size_t align256(size_t n) { return (n + 255) & ~(size_t)255; }

/* The device path: hd and perm are host arrays of K entries. */
int run(dsv4_ops *o, calib *s, dsv4_gptq_args *a, float *hd, int32_t *perm, dsv4_err *e)
{
    const libs *L = cuda_libs();
    const int64_t N = a->N, K = a->K, G = K / a->group;
    const int Bs = (int)(a->block < K ? a->block : K);
    const size_t smem_bytes = ((size_t)Bs * Bs + (size_t)kWarps * Bs) * sizeof(float);
    if (smem(o, (const void *)block_kernel, smem_bytes, "gptq", e))
        return -1;
    /* small buffers carved from one slot (256-byte aligned): diag [K], sval [N·G], Err [N·Bs], loss */
    size_t o_sval = align256((size_t)K * 4), o_err = o_sval + align256((size_t)(N * G) * 4),
           o_loss = o_err + align256((size_t)N * Bs * 4), total = o_loss + 8;
    uint8_t *small = static_cast<uint8_t *>(scratch(o, SCR_WORK3, total, "gptq", e));
    float *Wp = static_cast<float *>(scratch(o, SCR_WORK1, (size_t)(N * K) * sizeof(float), "gptq", e));
    if (!small || !Wp)
        return -1;
    float *diag = reinterpret_cast<float *>(small), *sval = reinterpret_cast<float *>(small + o_sval);
    float *Err = reinterpret_cast<float *>(small + o_err);
    double *loss = reinterpret_cast<double *>(small + o_loss);

    /* the diagonal on the host: permutation, dead columns, mean (of the permuted, dead-fixed diagonal) */
    diag_kernel<<<grid_for(K), kEltThreads, 0, stream(o)>>>(a->H, K, diag);
    if (launched(e, "gptq") || o->download(o, hd, diag, (size_t)K * sizeof(float), e))
        return -1;
    if (a->actorder == DSV4_ACTORDER_NONE) {
        for (int64_t i = 0; i < K; i++)
            perm[i] = (int32_t)i;
    } else if (gptq_act_order(hd, K, perm)) {
        return dsv4_fail_rt(e, "cuda gptq: out of memory sorting %lld columns", (long long)K);
    }
    double sum = 0.0;
    for (int64_t i = 0; i < K; i++) {
        a->dead += hd[perm[i]] == 0.0f;
        sum += hd[perm[i]] == 0.0f ? 1.0 : (double)hd[perm[i]];
    }
    const int32_t *dperm = static_cast<const int32_t *>(stage(o, SCR_HOST0, perm, (size_t)K * 4, "gptq", e));
    if (!dperm)
        return -1;
    if (!a->recompute) { /* from the original W, before the dead columns are zeroed (llm-compressor's order) */
        scales_kernel<<<grid_for(N * G), kEltThreads, 0, stream(o)>>>(
            a->W, N, K, a->group, a->actorder == DSV4_ACTORDER_GROUP ? dperm : nullptr, (int)a->fmt, (int)a->observer,
            a->gscale, sval, a->scale);
        if (launched(e, "gptq"))
            return -1;
    }
    permute_kernel<<<grid_for(N * K), kEltThreads, 0, stream(o)>>>(a->W, N, K, dperm, diag, Wp);
    if (launched(e, "gptq") || gptq_factor(o, s, a->H, K, dperm, diag, sum / (double)K, a, e) ||
        check(e, "gptq", "loss reset", cudaMemsetAsync(loss, 0, sizeof *loss, stream(o))))
        return -1;

    loop_args p;
    p.U = a->H;
    p.Wp = Wp;
    p.Err = Err;
    p.Wout = a->W;
    p.q = a->q;
    p.scale = a->scale;
    p.sval = sval;
    p.perm = dperm;
    p.loss = loss;
    p.N = N;
    p.K = K;
    p.Bs = Bs;
    p.group = a->group;
    p.fmt = (int)a->fmt;
    p.observer = (int)a->observer;
    p.actorder = (int)a->actorder;
    p.recompute = a->recompute;
    p.gs = a->gscale;
    const float minus1 = -1.0f, one = 1.0f;
    for (int64_t i1 = 0; i1 < K; i1 += Bs) {
        int64_t i2 = i1 + Bs < K ? i1 + Bs : K;
        p.i1 = i1;
        p.Bn = (int)(i2 - i1);
        block_kernel<<<blocks(N, kWarps), kWarps * 32, smem_bytes, stream(o)>>>(p);
        if (launched(e, "gptq"))
            return -1;
        if (i2 < K) { /* W[:, i2:] -= Err1 · U[i1:i2, i2:], column-major: Wᵀ[i2:, :] -= U[i1:i2, i2:]ᵀ · Err1ᵀ */
            cublasStatus_t st = L->Sgemm(s->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)(K - i2), (int)N, p.Bn, &minus1,
                                         a->H + i1 * K + i2, (int)K, Err, Bs, &one, Wp + i2, (int)K);
            if (st != CUBLAS_STATUS_SUCCESS)
                return dsv4_fail_rt(e, "cuda gptq: cublasSgemm of the lazy update (columns %lld..%lld) failed with "
                                    "status %d", (long long)i2, (long long)K, (int)st);
        }
    }
    double lsum = 0.0;
    if (o->download(o, &lsum, loss, sizeof lsum, e))
        return -1;
    a->loss = lsum / 2.0;
    if (!isfinite(a->loss))
        return dsv4_fail_rt(e, "cuda gptq: weight [%lld, %lld]: the quantization loss is not finite (the Hessian's "
                            "inverse factor overflowed fp32)", (long long)N, (long long)K);
    if (a->actorder == DSV4_ACTORDER_GROUP)
        for (int64_t c = 0; c < K; c++)
            a->g_idx[perm[c]] = (int32_t)(c / a->group);
    return 0;
}

} // namespace

int gptq(dsv4_ops *o, dsv4_gptq_args *a, dsv4_err *e)
{
    if (dsv4_gptq_begin(a, "cuda gptq", e))
        return -1;
    calib *s = calib_get(o, e);
    if (!s)
        return -1;
    if (!s->solver || !s->blas)
        return gptq_fallback(o, s, a, e);
    if (gptq_check_finite(o, a, e))
        return -1;
    float *hd = static_cast<float *>(malloc((size_t)a->K * sizeof(float)));
    int32_t *perm = static_cast<int32_t *>(malloc((size_t)a->K * sizeof(int32_t)));
    int rc = hd && perm ? run(o, s, a, hd, perm, e)
                        : dsv4_fail_rt(e, "cuda gptq: out of memory for the permutation of %lld columns", (long long)a->K);
    free(hd);
    free(perm);
    return rc;
}

} // namespace dsv4cu
