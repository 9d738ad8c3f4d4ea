/* The lightning indexer on the GPU (spec §3.3; host op in kernels/cpu/ops_attn.c): scores of the
 * causally visible compressed entries, then the causal top-k, with the host's selection exactly.
 *
 * Scores: one thread per (query, entry) evaluates the host's expression in the host's order
 * (each head's dot product sequential over Di, heads summed in order, every product and sum one
 * fp32 rounding, no FMA), so the scores are bit for bit the host's and so is the selection,
 * ties included. The query's rows are staged in shared memory.
 *
 * Top-k: each visible score becomes a 64-bit key (score order reversed in the high word, entry
 * index in the low word: ascending keys = descending scores, the lower index first on ties,
 * -0 equal to +0, NaN after everything and never selected, as the host skips NaN). Up to kSort
 * visible entries are sorted whole in shared memory (bitonic); beyond that a radix select over the
 * keys finds the k-th smallest, the keys up to it are gathered and sorted. */
#include "ops_cuda.cuh"

#include <math.h>

namespace dsv4cu {
namespace {

constexpr int kScoreThreads = 128, kSortThreads = 1024, kSort = 4096;
constexpr uint32_t kNanHi = 0xFFFFFFFFu;

struct index_k {
    const float *q, *k, *wts;
    const int64_t *qpos;
    int64_t T, Hi, Di, nk, ratio, topk;
    float qscale, wscale;
    float *scores; /* [T, nk] */
    int32_t *sel;
};

__device__ __forceinline__ int64_t visible(const index_k &a, int t)
{
    int64_t v = (a.qpos[t] + 1) / a.ratio;
    return v < a.nk ? v : a.nk;
}

/* grid (entry tiles, T); shared: the query's [Hi, Di] rows. */
__global__ void __launch_bounds__(kScoreThreads) index_scores(const index_k a)
{
    extern __shared__ float qs[];
    const int t = blockIdx.y;
    const int64_t vis = visible(a, t), w = blockIdx.x * (int64_t)kScoreThreads + threadIdx.x;
    if (blockIdx.x * (int64_t)kScoreThreads >= vis)
        return;
    const int64_t n = a.Hi * a.Di;
    for (int64_t i = threadIdx.x; i < n; i += kScoreThreads)
        qs[i] = a.q[t * n + i];
    __syncthreads();
    if (w >= vis)
        return;
    const float *kw = a.k + w * a.Di, *wt = a.wts + t * a.Hi;
    float s = 0;
    for (int64_t h = 0; h < a.Hi; h++) {
        const float *qh = qs + h * a.Di;
        float d = 0;
        for (int64_t i = 0; i < a.Di; i++)
            d = __fadd_rn(d, __fmul_rn(qh[i], kw[i]));
        s = __fadd_rn(s, __fmul_rn(d > 0 ? __fmul_rn(d, a.qscale) : 0.0f, __fmul_rn(wt[h], a.wscale)));
    }
    a.scores[t * a.nk + w] = s;
}

__device__ __forceinline__ uint64_t key_of(float s, int64_t w)
{
    uint32_t hi;
    if (isnan(s)) {
        hi = kNanHi;
    } else {
        uint32_t u = __float_as_uint(s == 0.0f ? 0.0f : s);
        u = (u & 0x80000000u) ? ~u : (u | 0x80000000u); /* ascending with the float */
        hi = ~u;                                         /* descending */
    }
    return ((uint64_t)hi << 32) | (uint64_t)w;
}

/* Ascending bitonic sort of n (power of two) keys in shared memory by the whole block. */
__device__ void bitonic(uint64_t *k, int n)
{
    for (int size = 2; size <= n; size <<= 1)
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            __syncthreads();
            for (int i = threadIdx.x; i < n / 2; i += blockDim.x) {
                int lo = 2 * stride * (i / stride) + (i % stride), hi = lo + stride;
                bool up = (lo & size) == 0;
                uint64_t x = k[lo], y = k[hi];
                if ((x > y) == up) {
                    k[lo] = y;
                    k[hi] = x;
                }
            }
        }
    __syncthreads();
}

__global__ void __launch_bounds__(kSortThreads) index_topk(const index_k a)
{
    __shared__ uint64_t keys[kSort];
    __shared__ unsigned hist[256];
    __shared__ uint64_t prefix;
    __shared__ int64_t want;
    __shared__ int ngot;
    const int t = blockIdx.x;
    const int64_t vis = visible(a, t), kk = a.topk < vis ? a.topk : vis;
    const float *sc = a.scores + t * a.nk;
    int32_t *sel = a.sel + t * a.topk;
    int n; /* keys in shared memory to sort */
    if (vis <= kSort) {
        n = (int)vis;
        for (int i = threadIdx.x; i < n; i += kSortThreads)
            keys[i] = key_of(sc[i], i);
    } else {
        /* radix select of the kk-th smallest key, 8 bits at a time from the top; the index's high
         * bytes that are zero for every entry are skipped */
        int ib = 0;
        while (ib < 32 && (vis - 1) >> ib)
            ib++;
        if (threadIdx.x == 0) {
            prefix = 0;
            want = kk;
        }
        uint64_t mask = 0;
        for (int shift = 56; shift >= 0; shift -= 8) {
            if (shift >= ib && shift < 32)
                continue;
            for (int i = threadIdx.x; i < 256; i += kSortThreads)
                hist[i] = 0;
            __syncthreads();
            const uint64_t pre = prefix;
            for (int64_t i = threadIdx.x; i < vis; i += kSortThreads) {
                uint64_t key = key_of(sc[i], i);
                if ((key & mask) == pre)
                    atomicAdd(&hist[(key >> shift) & 255u], 1u);
            }
            __syncthreads();
            if (threadIdx.x == 0) {
                int64_t left = want;
                int b = 0;
                while (b < 255 && (int64_t)hist[b] < left)
                    left -= hist[b++];
                prefix = pre | ((uint64_t)b << shift);
                want = left;
            }
            mask |= (uint64_t)255u << shift;
            __syncthreads();
        }
        /* prefix is now the kk-th smallest key: gather every key <= it (exactly kk of them) */
        if (threadIdx.x == 0)
            ngot = 0;
        __syncthreads();
        const uint64_t kth = prefix;
        for (int64_t i = threadIdx.x; i < vis; i += kSortThreads) {
            uint64_t key = key_of(sc[i], i);
            if (key <= kth) {
                int at = atomicAdd(&ngot, 1);
                if (at < kSort)
                    keys[at] = key;
            }
        }
        __syncthreads();
        n = ngot < kSort ? ngot : kSort;
    }
    int p2 = 1;
    while (p2 < n)
        p2 <<= 1;
    for (int i = n + threadIdx.x; i < p2; i += kSortThreads)
        keys[i] = ~(uint64_t)0;
    bitonic(keys, p2);
    for (int64_t j = threadIdx.x; j < a.topk; j += kSortThreads) {
        int32_t v = -1;
        if (j < kk && j < n && (uint32_t)(keys[j] >> 32) != kNanHi)
            v = (int32_t)(keys[j] & 0xFFFFFFFFu);
        sel[j] = v;
    }
}

} // namespace

int indexer(dsv4_ops *o, const dsv4_index_args *a, dsv4_err *e)
{
    if (a->T <= 0 || a->topk <= 0)
        return 0;
    if (a->ratio <= 0 || a->Hi <= 0 || a->Di <= 0)
        return dsv4_fail(e, "cuda indexer: ratio %lld, %lld heads of %lld; expected all > 0", (long long)a->ratio,
                         (long long)a->Hi, (long long)a->Di);
    if (a->topk > kSort || a->T > 65535 || a->nk > 0x7FFFFFFF)
        return dsv4_fail(e, "cuda indexer: top-%lld of %lld entries for %lld queries; at most top-%d, 65535 queries",
                         (long long)a->topk, (long long)a->nk, (long long)a->T, kSort);
    index_k k = {a->q, a->k, a->wts, nullptr, a->T, a->Hi, a->Di, a->nk, a->ratio, a->topk, a->qscale, a->wscale,
                 nullptr, a->sel};
    k.qpos = static_cast<const int64_t *>(stage(o, SCR_HOST0, a->qpos, (size_t)a->T * sizeof(int64_t), "indexer", e));
    if (!k.qpos)
        return -1;
    int64_t nk = a->nk > 0 ? a->nk : 0;
    if (nk > 0) {
        if (!(k.scores = static_cast<float *>(scratch(o, SCR_WORK0, (size_t)(a->T * nk) * sizeof(float), "indexer", e))))
            return -1;
        size_t qb = (size_t)(a->Hi * a->Di) * sizeof(float);
        if (smem(o, (const void *)index_scores, qb, "indexer", e))
            return -1;
        dim3 grid(blocks(nk, kScoreThreads), (unsigned)a->T);
        index_scores<<<grid, kScoreThreads, qb, stream(o)>>>(k);
        if (launched(e, "indexer"))
            return -1;
    }
    index_topk<<<(unsigned)a->T, kSortThreads, 0, stream(o)>>>(k);
    return launched(e, "indexer");
}

} // namespace dsv4cu
