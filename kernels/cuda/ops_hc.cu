/* Manifold-constrained hyper-connections on the GPU (spec §3.2, §3.5), following the host ops
 * (kernels/cpu/ops_hc.c) step for step: one block per token computes the RMS factor and the mixer
 * logits (double accumulation of f·(x·ρ), like the host), one thread runs the pre/post sigmoids
 * and the Sinkhorn projection in fp32 in the host's order, and the block collapses the streams
 * with the pre weights. hc_post is element-wise. */
#include "ops_cuda.cuh"

#include <math.h>

namespace dsv4cu {
namespace {

constexpr int kThreads = 256, kMaxHc = 16;

__device__ float sigm(float x) { return __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-x))); }

/* head = 1: hc_head (pre weights only); otherwise hc_pre with post and comb. */
template <bool HEAD> __global__ void __launch_bounds__(kThreads) hc_kernel(const dsv4_hc_args a)
{
    __shared__ double shd[32];
    __shared__ float mix[(2 + kMaxHc) * kMaxHc], pre[kMaxHc];
    const int64_t hc = a.hc, d = a.d, n = hc * d, nmix = HEAD ? hc : (2 + hc) * hc;
    const float *X = a.X + blockIdx.x * n;
    double ss = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        ss += (double)X[i] * X[i];
    ss = block_sum(ss, shd);
    const float rho = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn((float)(ss / (double)n), a.norm_eps)));
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int64_t m = warp; m < nmix; m += kThreads / 32) {
        const float *f = a.fn + m * n;
        double acc = 0;
        for (int64_t i = lane; i < n; i += 32)
            acc += (double)f[i] * (double)__fmul_rn(X[i], rho);
        acc = warp_sum(acc);
        if (lane == 0)
            mix[m] = (float)acc;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        const float *s = a.scale, *b = a.base;
        for (int64_t i = 0; i < hc; i++)
            pre[i] = __fadd_rn(sigm(__fadd_rn(__fmul_rn(mix[i], s[0]), b[i])), a.eps);
        if (!HEAD) {
            float *post = a.post + blockIdx.x * hc, *Cm = a.comb + blockIdx.x * hc * hc;
            for (int64_t i = 0; i < hc; i++)
                post[i] = __fmul_rn(2.0f, sigm(__fadd_rn(__fmul_rn(mix[hc + i], s[1]), b[hc + i])));
            float C[kMaxHc * kMaxHc];
            for (int64_t i = 0; i < hc; i++) { /* softmax over k of each row i, then + eps */
                float *row = C + i * hc, mx = -INFINITY, z = 0;
                for (int64_t k = 0; k < hc; k++) {
                    row[k] = __fadd_rn(__fmul_rn(mix[2 * hc + i * hc + k], s[2]), b[2 * hc + i * hc + k]);
                    mx = fmaxf(mx, row[k]);
                }
                for (int64_t k = 0; k < hc; k++)
                    z = __fadd_rn(z, row[k] = expf(__fsub_rn(row[k], mx)));
                for (int64_t k = 0; k < hc; k++)
                    row[k] = __fadd_rn(__fdiv_rn(row[k], z), a.eps);
            }
            for (int it = 0; it < a.iters; it++) {
                if (it > 0) /* row normalisation, from the second iteration on */
                    for (int64_t i = 0; i < hc; i++) {
                        float sm = 0;
                        for (int64_t k = 0; k < hc; k++)
                            sm = __fadd_rn(sm, C[i * hc + k]);
                        for (int64_t k = 0; k < hc; k++)
                            C[i * hc + k] = __fdiv_rn(C[i * hc + k], __fadd_rn(sm, a.eps));
                    }
                for (int64_t k = 0; k < hc; k++) { /* column normalisation */
                    float sm = 0;
                    for (int64_t i = 0; i < hc; i++)
                        sm = __fadd_rn(sm, C[i * hc + k]);
                    for (int64_t i = 0; i < hc; i++)
                        C[i * hc + k] = __fdiv_rn(C[i * hc + k], __fadd_rn(sm, a.eps));
                }
            }
            for (int64_t i = 0; i < hc * hc; i++)
                Cm[i] = C[i];
        }
    }
    __syncthreads();
    float *y = a.y + blockIdx.x * d;
    for (int64_t k = threadIdx.x; k < d; k += blockDim.x) {
        float acc = 0;
        for (int64_t i = 0; i < hc; i++)
            acc = __fadd_rn(acc, __fmul_rn(pre[i], X[i * d + k]));
        y[k] = acc;
    }
}

/* X'[t,k,j] = post[t,k]·a[t,j] + Σ_i comb[t,i,k]·R[t,i,j], i in order. */
__global__ void hc_post_kernel(const float *a, const float *R, const float *post, const float *comb, int64_t hc,
                               int64_t d, int64_t n, float *X)
{
    for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < n;
         idx += (int64_t)gridDim.x * blockDim.x) {
        int64_t j = idx % d, tk = idx / d, k = tk % hc, t = tk / hc;
        const float *Rt = R + t * hc * d, *Cm = comb + t * hc * hc;
        float acc = __fmul_rn(post[t * hc + k], a[t * d + j]);
        for (int64_t i = 0; i < hc; i++)
            acc = __fadd_rn(acc, __fmul_rn(Cm[i * hc + k], Rt[i * d + j]));
        X[idx] = acc;
    }
}

int run_hc(dsv4_ops *o, const dsv4_hc_args *a, bool head, const char *op, dsv4_err *e)
{
    if (a->hc <= 0 || a->hc > kMaxHc)
        return dsv4_fail(e, "%s: hc_mult %lld is outside 1..%d", op, (long long)a->hc, kMaxHc);
    if (a->T <= 0)
        return 0;
    if (a->T > 0x7FFFFFFF || a->d <= 0)
        return dsv4_fail(e, "cuda %s: %lld tokens of %lld do not fit", op, (long long)a->T, (long long)a->d);
    if (head)
        hc_kernel<true><<<(unsigned)a->T, kThreads, 0, stream(o)>>>(*a);
    else
        hc_kernel<false><<<(unsigned)a->T, kThreads, 0, stream(o)>>>(*a);
    return launched(e, op);
}

} // namespace

int hc_pre(dsv4_ops *o, const dsv4_hc_args *a, dsv4_err *e) { return run_hc(o, a, false, "hc_pre", e); }

int hc_head(dsv4_ops *o, const dsv4_hc_args *a, dsv4_err *e) { return run_hc(o, a, true, "hc_head", e); }

int hc_post(dsv4_ops *o, const float *a, const float *R, const float *post, const float *comb, int64_t T,
            int64_t hc, int64_t d, float *X, dsv4_err *e)
{
    int64_t n = T * hc * d;
    if (n <= 0)
        return 0;
    unsigned g = blocks(n, kThreads);
    hc_post_kernel<<<g > 65536u ? 65536u : g, kThreads, 0, stream(o)>>>(a, R, post, comb, hc, d, n, X);
    return launched(e, "hc_post");
}

} // namespace dsv4cu
