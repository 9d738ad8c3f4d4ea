/* Element-wise and row ops on the GPU, each the arithmetic of its host op (kernels/cpu/ops_norm.c)
 * step for step: RMSNorm (sum of squares in double, then the same float steps), interleaved
 * partial RoPE (cos/sin of the fp32 angle evaluated in double and rounded, i.e. correctly
 * rounded, which glibc's cosf/sinf also are in all but rare cases), axpy, broadcast add over
 * streams, the router score functions, and the embedding lookup (rows of an F32 or BF16 table). */
#include "ops_fmt.cuh"

#include "model/config.h"

#include <math.h>

namespace dsv4cu {
namespace {


/* One block per row. */
__global__ void rmsnorm_kernel(const float *x, int64_t n, const float *w, float eps, float *y)
{
    __shared__ double sh[32];
    const float *xr = x + blockIdx.x * n;
    float *yr = y + blockIdx.x * n;
    double ss = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        ss += (double)xr[i] * xr[i];
    ss = block_sum(ss, sh);
    float inv = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn((float)(ss / (double)n), eps)));
    /* every thread has read the whole row's sum before any writes (y may be x) */
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        float v = __fmul_rn(xr[i], inv);
        yr[i] = w ? __fmul_rn(w[i], v) : v;
    }
}

/* Thread per (row t, pair i, sub-vector h). cs: [T, half] cos and sin. */
__global__ void rope_angles(const int64_t *pos, const float *inv_freq, int64_t T, int64_t half, int inverse,
                            float2 *cs)
{
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i >= T * half)
        return;
    int64_t t = i / half, k = i - t * half;
    float ang = __fmul_rn((float)pos[t], inv_freq[k]);
    double s, c;
    sincos((double)ang, &s, &c);
    float fs = (float)s;
    cs[i] = make_float2((float)c, inverse ? -fs : fs);
}

__global__ void rope_apply(float *x, const float2 *cs, int64_t T, int64_t sub, int64_t dim, int64_t half, int64_t off)
{
    int64_t n = T * sub * half;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t k = i % half, row = i / half, t = row / sub;
        float2 r = cs[t * half + k];
        float *v = x + row * dim + off + 2 * k;
        float a = v[0], b = v[1];
        v[0] = __fsub_rn(__fmul_rn(a, r.x), __fmul_rn(b, r.y));
        v[1] = __fadd_rn(__fmul_rn(b, r.x), __fmul_rn(a, r.y));
    }
}

__global__ void axpy_kernel(float alpha, const float *x, int64_t n, float *y)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = __fadd_rn(y[i], __fmul_rn(alpha, x[i]));
}

__global__ void add_bcast_kernel(const float *v, int64_t rep, int64_t d, int64_t n, float *X)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t k = i % d, t = i / (rep * d);
        X[i] = __fadd_rn(X[i], v[t * d + k]);
    }
}

__global__ void score_elem(float *s, int64_t n, int func)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float x = s[i];
        if (func == DSV4_SCORE_SQRTSOFTPLUS)
            s[i] = __fsqrt_rn(x > 20.0f ? x : log1pf(expf(x))); /* softplus: torch's threshold 20 */
        else
            s[i] = __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-x)));
    }
}

/* Softmax per row (one block per row), in double like the host. */
__global__ void score_softmax(float *s, int64_t E)
{
    __shared__ float shm[32];
    __shared__ double shz[32];
    float *r = s + blockIdx.x * E;
    float m = -INFINITY;
    for (int64_t i = threadIdx.x; i < E; i += blockDim.x)
        m = fmaxf(m, r[i]);
    /* block max */
    for (int o = 16; o > 0; o >>= 1)
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    if ((threadIdx.x & 31) == 0)
        shm[threadIdx.x >> 5] = m;
    __syncthreads();
    m = -INFINITY;
    for (int i = 0; i < (int)(blockDim.x >> 5); i++)
        m = fmaxf(m, shm[i]);
    double z = 0;
    for (int64_t i = threadIdx.x; i < E; i += blockDim.x)
        z += exp((double)r[i] - m);
    z = block_sum(z, shz);
    for (int64_t i = threadIdx.x; i < E; i += blockDim.x)
        r[i] = (float)(exp((double)r[i] - m) / z);
}

} // namespace

int rmsnorm(dsv4_ops *o, const float *x, int64_t rows, int64_t n, const float *w, float eps, float *y, dsv4_err *e)
{
    if (rows <= 0)
        return 0;
    if (n <= 0 || rows > 0x7FFFFFFF)
        return dsv4_fail(e, "cuda rmsnorm: %lld rows of %lld do not fit", (long long)rows, (long long)n);
    rmsnorm_kernel<<<(unsigned)rows, n >= 1024 ? 256 : 128, 0, stream(o)>>>(x, n, w, eps, y);
    return launched(e, "rmsnorm");
}

int rope(dsv4_ops *o, float *x, int64_t T, int64_t sub, int64_t dim, int64_t rope_dim, const int64_t *pos,
         const float *inv_freq, int inverse, dsv4_err *e)
{
    if (rope_dim > dim || rope_dim % 2)
        return dsv4_fail(e, "rope: rope_dim %lld does not fit vectors of %lld", (long long)rope_dim, (long long)dim);
    int64_t half = rope_dim / 2;
    if (T <= 0 || sub <= 0 || half == 0)
        return 0;
    const int64_t *dpos = static_cast<const int64_t *>(stage(o, SCR_HOST0, pos, (size_t)T * sizeof *pos, "rope", e));
    const float *dfreq =
        dpos ? static_cast<const float *>(stage(o, SCR_HOST1, inv_freq, (size_t)half * sizeof *inv_freq, "rope", e))
             : nullptr;
    float2 *cs = dfreq ? static_cast<float2 *>(scratch(o, SCR_WORK0, (size_t)(T * half) * sizeof(float2), "rope", e))
                       : nullptr;
    if (!cs)
        return -1;
    rope_angles<<<blocks(T * half, kEltThreads), kEltThreads, 0, stream(o)>>>(dpos, dfreq, T, half, inverse, cs);
    rope_apply<<<grid_for(T * sub * half), kEltThreads, 0, stream(o)>>>(x, cs, T, sub, dim, half, dim - rope_dim);
    return launched(e, "rope");
}

int axpy(dsv4_ops *o, float alpha, const float *x, int64_t n, float *y, dsv4_err *e)
{
    if (n <= 0)
        return 0;
    axpy_kernel<<<grid_for(n), kEltThreads, 0, stream(o)>>>(alpha, x, n, y);
    return launched(e, "axpy");
}

int add_bcast(dsv4_ops *o, const float *v, int64_t T, int64_t rep, int64_t d, float *X, dsv4_err *e)
{
    int64_t n = T * rep * d;
    if (n <= 0)
        return 0;
    add_bcast_kernel<<<grid_for(n), kEltThreads, 0, stream(o)>>>(v, rep, d, n, X);
    return launched(e, "add_bcast");
}

int score(dsv4_ops *o, float *logits, int64_t T, int64_t E, int score_func, dsv4_err *e)
{
    if (score_func != DSV4_SCORE_SQRTSOFTPLUS && score_func != DSV4_SCORE_SIGMOID && score_func != DSV4_SCORE_SOFTMAX)
        return dsv4_fail(e, "router score function %d is not one of sqrtsoftplus, sigmoid, softmax", score_func);
    if (T <= 0 || E <= 0)
        return 0;
    if (score_func == DSV4_SCORE_SOFTMAX)
        score_softmax<<<(unsigned)T, 256, 0, stream(o)>>>(logits, E);
    else
        score_elem<<<grid_for(T * E), kEltThreads, 0, stream(o)>>>(logits, T * E, score_func);
    return launched(e, "score");
}

namespace {

template <bool BF16> __global__ void embed_kernel(const void *table, const int32_t *ids, int64_t d, int64_t n, float *y)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t t = i / d, k = i - t * d, src = (int64_t)ids[t] * d + k;
        y[i] = BF16 ? bf16f(static_cast<const uint16_t *>(table)[src]) : static_cast<const float *>(table)[src];
    }
}

} // namespace

int embed(dsv4_ops *o, const dsv4_lin *table, const int32_t *ids, int64_t T, float *y, dsv4_err *e)
{
    if (table->fmt != DSV4_LW_F32 && table->fmt != DSV4_LW_BF16)
        return dsv4_fail(e, "cuda embed: the table is %s; expected F32 or BF16", dsv4_lw_fmt_name(table->fmt));
    if (T <= 0)
        return 0;
    for (int64_t t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= table->out)
            return dsv4_fail(e, "token id %d at position %lld is outside the vocabulary [0, %lld)", ids[t],
                             (long long)t, (long long)table->out);
    const int32_t *dids = static_cast<const int32_t *>(stage(o, SCR_HOST0, ids, (size_t)T * sizeof *ids, "embed", e));
    if (!dids)
        return -1;
    int64_t n = T * table->in;
    unsigned g = blocks(n, kEltThreads);
    g = g > 65536u ? 65536u : g;
    if (table->fmt == DSV4_LW_BF16)
        embed_kernel<true><<<g, kEltThreads, 0, stream(o)>>>(table->w, dids, table->in, n, y);
    else
        embed_kernel<false><<<g, kEltThreads, 0, stream(o)>>>(table->w, dids, table->in, n, y);
    return launched(e, "embed");
}

} // namespace dsv4cu
