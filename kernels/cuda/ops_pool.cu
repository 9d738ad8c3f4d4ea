/* Compressor softmax pooling on the GPU (spec §3.3; host op in kernels/cpu/ops_attn.c): one thread
 * per (entry, channel) walks the entry's slots in the host's order (with overlap: the previous
 * block's first series, then this block's second series), max, sum of exponentials, then the
 * weighted sum, all sequential in fp32 as on the host. Reads are coalesced across channels. */
#include "ops_cuda.cuh"

#include <math.h>

namespace dsv4cu {
namespace {

constexpr int kThreads = 256;

/* Score and value of slot j of entry w, channel c (j < m: previous block, j >= m: this block,
 * with overlap; without, j indexes this block). */
struct pool_k {
    const float *a, *b, *prev_a, *prev_b, *ape;
    int64_t n_win, m, Dc, W;
    int overlap;
    float *out;
};

__device__ __forceinline__ bool slot(const pool_k &k, int64_t w, int64_t c, int64_t j, float *lg, const float **vp)
{
    if (k.overlap && j < k.m) {
        const float *pa = w > 0 ? k.a + (w - 1) * k.m * k.W : k.prev_a;
        const float *pb = w > 0 ? k.b + (w - 1) * k.m * k.W : k.prev_b;
        if (!pa || !pb)
            return false;
        *lg = __fadd_rn(pb[j * k.W + c], k.ape[j * k.W + c]);
        *vp = pa + j * k.W + c;
        return true;
    }
    int64_t jj = k.overlap ? j - k.m : j, off = k.overlap ? k.Dc : 0;
    int64_t r = (w * k.m + jj) * k.W + off + c;
    *lg = __fadd_rn(k.b[r], k.ape[jj * k.W + off + c]);
    *vp = k.a + r;
    return true;
}

__global__ void pool_kernel(const pool_k k)
{
    const int64_t n = k.n_win * k.Dc, ns = k.overlap ? 2 * k.m : k.m;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t w = i / k.Dc, c = i - w * k.Dc;
        float lg, mx = -INFINITY, z = 0, acc = 0;
        const float *vp;
        for (int64_t j = 0; j < ns; j++)
            if (slot(k, w, c, j, &lg, &vp))
                mx = fmaxf(mx, lg);
        for (int64_t j = 0; j < ns; j++)
            if (slot(k, w, c, j, &lg, &vp))
                z = __fadd_rn(z, expf(__fsub_rn(lg, mx)));
        for (int64_t j = 0; j < ns; j++)
            if (slot(k, w, c, j, &lg, &vp))
                acc = __fadd_rn(acc, __fmul_rn(__fdiv_rn(expf(__fsub_rn(lg, mx)), z), *vp));
        k.out[i] = acc;
    }
}

} // namespace

int pool(dsv4_ops *o, const dsv4_pool_args *a, dsv4_err *e)
{
    if (a->n_win <= 0 || a->Dc <= 0)
        return 0;
    if (a->ratio <= 0)
        return dsv4_fail(e, "cuda pool: compress ratio %lld; expected > 0", (long long)a->ratio);
    pool_k k = {a->a, a->b, a->prev_a, a->prev_b, a->ape, a->n_win, a->ratio, a->Dc,
                (a->overlap ? 2 : 1) * a->Dc, a->overlap, a->out};
    unsigned g = blocks(a->n_win * a->Dc, kThreads);
    pool_kernel<<<g > 65536u ? 65536u : g, kThreads, 0, stream(o)>>>(k);
    return launched(e, "pool");
}

} // namespace dsv4cu
