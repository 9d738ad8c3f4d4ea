/* Sparse attention with a per-head sink over one shared K=V head (spec §3.3; the host op is
 * kernels/cpu/ops_attn.c). One block per (query, group of kHB heads), so each key row is read once
 * for kHB heads:
 *   1. the block lists the keys visible to its query, in the host's order: window entries j with
 *      qpos - window < kvpos[j] <= qpos, then compressed entries w < (qpos+1)/ratio (all of them,
 *      or those in the query's indexer selection, in selection order);
 *   2. keys are processed in tiles of kKT rows staged in shared memory: logits by warp dot
 *      products, then an online softmax (running max and sum per head, accumulators rescaled);
 *   3. the sink joins the denominator at the end: out = Σ e^(l-M)·k / (Σ e^(l-M) + e^(sink-M)),
 *      M = max(max l, sink), which is the host's expression up to rounding.
 * Each thread owns kDPT dims of each head's accumulator (D <= 256·kDPT). */
#include "ops_cuda.cuh"

#include <math.h>

namespace dsv4cu {
namespace {

constexpr int kThreads = 256, kWarps = kThreads / 32, kHB = 4, kKT = 16;

struct attn_k {
    const float *q, *kv, *ckv, *sink;
    const int32_t *sel;
    const int64_t *qpos, *kvpos;
    int64_t T, H, D, nwin, window, ncmp, ratio, nsel;
    float scale;
    float *out;
};

/* Appends v to list[*n] for the threads where flag is set, in thread order (all threads call). */
__device__ void append(bool flag, int v, int *list, int *n, int *wcount)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    unsigned m = __ballot_sync(0xffffffffu, flag);
    if (lane == 0)
        wcount[warp] = __popc(m);
    __syncthreads();
    int base = *n;
    for (int w = 0; w < warp; w++)
        base += wcount[w];
    if (flag)
        list[base + __popc(m & ((1u << lane) - 1u))] = v;
    __syncthreads();
    if (threadIdx.x == 0)
        for (int w = 0; w < kWarps; w++)
            *n += wcount[w];
    __syncthreads();
}

template <int DPT> __global__ void __launch_bounds__(kThreads) attn_kernel(const attn_k a)
{
    extern __shared__ __align__(16) float sm[];
    const int64_t D = a.D;
    float *qs = sm;                   /* [kHB][D] */
    float *ks = qs + kHB * D;         /* [kKT][D] */
    float *ls = ks + kKT * D;         /* [kHB][kKT] logits, then weights */
    float *mrun = ls + kHB * kKT;     /* [kHB] running max */
    float *srun = mrun + kHB;         /* [kHB] running sum */
    float *alpha = srun + kHB;        /* [kHB] rescale of this tile */
    int *list = reinterpret_cast<int *>(alpha + kHB);
    __shared__ int wcount[kWarps], nlist;
    const int t = blockIdx.x, h0 = blockIdx.y * kHB, tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int64_t qp = a.qpos[t];

    for (int64_t i = tid; i < kHB * D; i += kThreads) {
        int64_t h = h0 + i / D;
        qs[i] = h < a.H ? a.q[(t * a.H + h) * D + i % D] : 0.0f;
    }
    if (tid == 0)
        nlist = 0;
    if (tid < kHB) {
        mrun[tid] = -INFINITY;
        srun[tid] = 0.0f;
    }
    __syncthreads();
    for (int64_t j0 = 0; j0 < a.nwin; j0 += kThreads) {
        int64_t j = j0 + tid;
        int64_t kp = j < a.nwin ? a.kvpos[j] : -1;
        append(kp >= 0 && kp <= qp && kp > qp - a.window, (int)j, list, &nlist, wcount);
    }
    if (a.ckv && a.ncmp > 0 && a.ratio > 0) {
        int64_t vis = (qp + 1) / a.ratio;
        if (vis > a.ncmp)
            vis = a.ncmp;
        if (a.sel) {
            for (int64_t s0 = 0; s0 < a.nsel; s0 += kThreads) {
                int64_t s = s0 + tid;
                int w = s < a.nsel ? a.sel[t * a.nsel + s] : -1;
                append(w >= 0 && w < vis, (int)a.nwin + w, list, &nlist, wcount);
            }
        } else {
            for (int64_t w = tid; w < vis; w += kThreads)
                list[nlist + w] = (int)(a.nwin + w);
            __syncthreads();
            if (tid == 0)
                nlist += (int)vis;
            __syncthreads();
        }
    }
    const int n = nlist;

    float acc[kHB][DPT];
#pragma unroll
    for (int h = 0; h < kHB; h++)
#pragma unroll
        for (int j = 0; j < DPT; j++)
            acc[h][j] = 0.0f;
    for (int j0 = 0; j0 < n; j0 += kKT) {
        const int nk = n - j0 < kKT ? n - j0 : kKT;
        for (int64_t i = tid; i < nk * D; i += kThreads) {
            int kj = (int)(i / D), idx = list[j0 + kj];
            const float *src = idx < a.nwin ? a.kv + (int64_t)idx * D : a.ckv + (int64_t)(idx - a.nwin) * D;
            ks[i] = src[i - (int64_t)kj * D];
        }
        __syncthreads();
        for (int pr = warp; pr < kHB * kKT; pr += kWarps) {
            int h = pr / kKT, kj = pr % kKT;
            float l = -INFINITY;
            if (kj < nk && h0 + h < a.H) {
                float s = 0;
                for (int64_t d = lane; d < D; d += 32)
                    s = fmaf(qs[h * D + d], ks[kj * D + d], s);
                l = __fmul_rn(warp_sum(s), a.scale);
            }
            if (lane == 0)
                ls[pr] = l;
        }
        __syncthreads();
        if (tid < kHB) {
            float mt = mrun[tid];
            for (int kj = 0; kj < kKT; kj++)
                mt = fmaxf(mt, ls[tid * kKT + kj]);
            alpha[tid] = mt == -INFINITY ? 1.0f : expf(mrun[tid] - mt);
            mrun[tid] = mt;
        }
        __syncthreads();
        if (tid < kHB * kKT) {
            float l = ls[tid], m = mrun[tid / kKT];
            ls[tid] = l == -INFINITY ? 0.0f : expf(l - m);
        }
        __syncthreads();
        if (tid < kHB) {
            float s = srun[tid] * alpha[tid];
            for (int kj = 0; kj < kKT; kj++)
                s += ls[tid * kKT + kj];
            srun[tid] = s;
        }
#pragma unroll
        for (int h = 0; h < kHB; h++) {
            const float al = alpha[h];
#pragma unroll
            for (int j = 0; j < DPT; j++) {
                const int64_t d = tid + (int64_t)kThreads * j;
                if (d < D) {
                    float v = acc[h][j] * al;
                    for (int kj = 0; kj < nk; kj++)
                        v = fmaf(ls[h * kKT + kj], ks[kj * D + d], v);
                    acc[h][j] = v;
                }
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int h = 0; h < kHB; h++) {
        if (h0 + h >= a.H)
            break;
        const float m = mrun[h], sink = a.sink[h0 + h];
        const float M = fmaxf(m, sink);
        /* no visible key: the numerator is empty, the output zero (as on the host) */
        const float f = m == -INFINITY ? 0.0f : expf(m - M);
        const float z = srun[h] * f + expf(sink - M);
        const float c = f / z;
        float *out = a.out + (t * a.H + h0 + h) * D;
#pragma unroll
        for (int j = 0; j < DPT; j++) {
            const int64_t d = tid + (int64_t)kThreads * j;
            if (d < D)
                out[d] = acc[h][j] * c;
        }
    }
}

} // namespace

int attention(dsv4_ops *o, const dsv4_attn_args *a, dsv4_err *e)
{
    if (a->T <= 0 || a->H <= 0)
        return 0;
    if (a->D <= 0 || a->D > 4 * kThreads)
        return dsv4_fail(e, "cuda attention: head dim %lld is outside 1..%d", (long long)a->D, 4 * kThreads);
    if (a->T > 0x7FFFFFFF || a->nwin + a->ncmp + a->nsel > 0x3FFFFFFF)
        return dsv4_fail(e, "cuda attention: %lld queries over %lld + %lld keys do not fit", (long long)a->T,
                         (long long)a->nwin, (long long)a->ncmp);
    const int64_t ncand = a->ckv && a->ratio > 0 ? (a->sel ? a->nsel : a->ncmp) : 0;
    const size_t bytes = (size_t)((kHB + kKT) * a->D + kHB * kKT + 3 * kHB) * sizeof(float) +
                         (size_t)(a->nwin + ncand) * sizeof(int);
    attn_k k = {a->q, a->kv, a->ckv, a->sink, a->sel, nullptr, nullptr, a->T, a->H, a->D, a->nwin, a->window,
                a->ckv ? a->ncmp : 0, a->ratio, a->sel ? a->nsel : 0, a->scale, a->out};
    k.qpos = static_cast<const int64_t *>(stage(o, SCR_HOST0, a->qpos, (size_t)a->T * sizeof(int64_t), "attention", e));
    if (!k.qpos)
        return -1;
    if (a->nwin > 0 &&
        !(k.kvpos = static_cast<const int64_t *>(
              stage(o, SCR_HOST1, a->kvpos, (size_t)a->nwin * sizeof(int64_t), "attention", e))))
        return -1;
    dim3 grid((unsigned)a->T, blocks(a->H, kHB));
    const void *fn;
    if (a->D <= kThreads)
        fn = (const void *)attn_kernel<1>;
    else if (a->D <= 2 * kThreads)
        fn = (const void *)attn_kernel<2>;
    else
        fn = (const void *)attn_kernel<4>;
    if (smem(o, fn, bytes, "attention", e))
        return -1;
    if (a->D <= kThreads)
        attn_kernel<1><<<grid, kThreads, bytes, stream(o)>>>(k);
    else if (a->D <= 2 * kThreads)
        attn_kernel<2><<<grid, kThreads, bytes, stream(o)>>>(k);
    else
        attn_kernel<4><<<grid, kThreads, bytes, stream(o)>>>(k);
    return launched(e, "attention");
}

} // namespace dsv4cu
