/* Dequant-GEMM kernels for every packed weight format (y = x·Wᵀ, fp32 math), and the linear,
 * grouped-linear and embedding ops on top of them.
 *
 *  - GEMV path (T <= 8, decode): a warp owns R output rows; each lane streams 16 packed bytes of
 *    each row per step (32 for F32), decodes them in registers and multiplies them with the T
 *    activation rows, so every weight byte is read from memory exactly once. Lane partial sums
 *    are combined by warp shuffles. Shapes whose rows are not 16-byte aligned take a
 *    one-element-per-lane variant.
 *  - Tiled path (T > 8, prefill): 64 tokens × 128 rows per block, K steps of 32; each step
 *    decodes a 128×32 tile of W into shared memory (each packed byte is decoded once per
 *    64-token tile) and stages the matching 64×32 slice of x; each thread accumulates 4×8
 *    outputs with fp32 FMAs.
 * Both read the formats through ops_fmt.cuh, so the weights they use are bit for bit
 * dsv4_lin_dequant_f32's. Only the summation order differs from the host's sgemm.
 * A call is a batch of same-shaped problems (grid z): one for `linear`, the G groups of
 * `linear_grouped`, or the experts of `moe`. (The embedding lookup is in ops_norm.cu.) */
#include "ops_fmt.cuh"

namespace dsv4cu {
namespace {

constexpr int kThreads = 256, kWarps = kThreads / 32;
constexpr int BM = 64, BN = 128, BK = 32; /* tiled path: tokens, rows, K step */

__device__ __forceinline__ lin_prob prob(const lin_call &c, int z)
{
    if (c.list)
        return c.list[z];
    lin_prob p = c.one;
    p.x += z * c.zx;
    p.y += z * c.zy;
    return p;
}

__device__ __forceinline__ wview view(const lin_call &c, const lin_prob &p)
{
    return wview{p.w, p.s, p.gscale, c.in, c.w_row_bytes, c.s_cols, c.group};
}

/* GEMV, vector path: bytes per lane step CB (16, or 32 for F32), U = CB/B8 units of 8 elements. */
template <int F, int TT, int R> __global__ void __launch_bounds__(kThreads) gemv_vec(const lin_call c)
{
    constexpr int B8 = fmt<F>::B8, CB = B8 > 16 ? B8 : 16, U = CB / B8, EPC = 8 * U;
    const int z = blockIdx.y, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const lin_prob p = prob(c, z);
    const int64_t r0 = ((int64_t)blockIdx.x * kWarps + warp) * R;
    const int nt = (int)p.T;
    if (r0 >= c.rows || nt <= 0)
        return;
    const wview v = view(c, p);
    int64_t grow[R];
    bool ok[R];
#pragma unroll
    for (int r = 0; r < R; r++) {
        ok[r] = r0 + r < c.rows;
        grow[r] = (int64_t)z * c.zrow + (ok[r] ? r0 + r : r0);
    }
    float acc[R][TT];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int t = 0; t < TT; t++)
            acc[r][t] = 0.0f;
    const int64_t nch = c.in / EPC;
    const bool xv = c.xvec;
#pragma unroll 2
    for (int64_t k = lane; k < nch; k += 32) {
        uint32_t raw[R][CB / 4];
#pragma unroll
        for (int r = 0; r < R; r++) {
            const uint8_t *src = v.w + grow[r] * v.w_row_bytes + k * CB;
            if constexpr (CB == 32) {
                load8<32>(src, raw[r]);
            } else {
                load8<16>(src, raw[r]);
            }
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int64_t col = k * EPC + 8 * u;
            float w8[R][8];
#pragma unroll
            for (int r = 0; r < R; r++)
                fmt<F>::eight(v, grow[r], col, &raw[r][u * (B8 / 4)], w8[r]);
#pragma unroll
            for (int t = 0; t < TT; t++) {
                if (t < nt) {
                    float x8[8];
                    loadx8(p.x + t * c.ldx + col, xv, x8);
#pragma unroll
                    for (int r = 0; r < R; r++)
#pragma unroll
                        for (int i = 0; i < 8; i++)
                            acc[r][t] = fmaf(w8[r][i], x8[i], acc[r][t]);
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int t = 0; t < TT; t++) {
            float s = warp_sum(acc[r][t]);
            if (lane == 0 && ok[r] && t < nt)
                p.y[t * c.ldy + r0 + r] = s;
        }
}

/* GEMV, any shape: a warp per row, a lane per element. */
template <int F> __global__ void __launch_bounds__(kThreads) gemv_any(const lin_call c)
{
    constexpr int TT = 8;
    const int z = blockIdx.y, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const lin_prob p = prob(c, z);
    const int64_t r = (int64_t)blockIdx.x * kWarps + warp;
    const int nt = (int)p.T;
    if (r >= c.rows || nt <= 0)
        return;
    const wview v = view(c, p);
    const int64_t grow = (int64_t)z * c.zrow + r;
    float acc[TT] = {};
    for (int64_t col = lane; col < c.in; col += 32) {
        float w = fmt<F>::one(v, grow, col);
#pragma unroll
        for (int t = 0; t < TT; t++)
            if (t < nt)
                acc[t] = fmaf(w, p.x[t * c.ldx + col], acc[t]);
    }
#pragma unroll
    for (int t = 0; t < TT; t++) {
        float s = warp_sum(acc[t]);
        if (lane == 0 && t < nt)
            p.y[t * c.ldy + r] = s;
    }
}

/* Tiled dequant-GEMM. Thread (ty, tx) owns tokens ty·4..+3 and rows tx·4..+3, 64+tx·4..+3. */
template <int F> __global__ void __launch_bounds__(kThreads) gemm_tiled(const lin_call c)
{
    constexpr int B8 = fmt<F>::B8;
    __shared__ __align__(16) float Xs[BK][BM + 4];
    __shared__ __align__(16) float Ws[BK][BN + 4];
    const int z = blockIdx.z, tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const lin_prob p = prob(c, z);
    const int64_t m0 = (int64_t)blockIdx.y * BM, n0 = (int64_t)blockIdx.x * BN;
    if (m0 >= p.T)
        return;
    const wview v = view(c, p);
    const bool wv = c.wvec, xv = c.xvec;
    float acc[4][8] = {};
    for (int64_t k0 = 0; k0 < c.in; k0 += BK) {
        /* W tile: 128 rows × 4 units of 8 elements, two units per thread */
#pragma unroll
        for (int i = 0; i < 2; i++) {
            const int u = tid + kThreads * i, row = u >> 2, cu = u & 3;
            const int64_t n = n0 + row, col = k0 + 8 * cu;
            float w8[8];
            if (n < c.rows && col < c.in) {
                const int64_t grow = (int64_t)z * c.zrow + n;
                if (wv && col + 8 <= c.in) {
                    uint32_t raw[B8 / 4];
                    load8<B8>(v.w + grow * v.w_row_bytes + col * B8 / 8, raw);
                    fmt<F>::eight(v, grow, col, raw, w8);
                } else {
#pragma unroll
                    for (int j = 0; j < 8; j++)
                        w8[j] = col + j < c.in ? fmt<F>::one(v, grow, col + j) : 0.0f;
                }
            } else {
#pragma unroll
                for (int j = 0; j < 8; j++)
                    w8[j] = 0.0f;
            }
#pragma unroll
            for (int j = 0; j < 8; j++)
                Ws[8 * cu + j][row] = w8[j];
        }
        /* x tile: 64 tokens × 4 units of 8 */
        {
            const int tok = tid >> 2, cu = tid & 3;
            const int64_t t = m0 + tok, col = k0 + 8 * cu;
            float x8[8];
            if (t < p.T && col + 8 <= c.in) {
                loadx8(p.x + t * c.ldx + col, xv, x8);
            } else {
#pragma unroll
                for (int j = 0; j < 8; j++)
                    x8[j] = t < p.T && col + j < c.in ? p.x[t * c.ldx + col + j] : 0.0f;
            }
#pragma unroll
            for (int j = 0; j < 8; j++)
                Xs[8 * cu + j][tok] = x8[j];
        }
        __syncthreads();
#pragma unroll 8
        for (int kk = 0; kk < BK; kk++) {
            float4 a = *reinterpret_cast<const float4 *>(&Xs[kk][ty * 4]);
            float4 b0 = *reinterpret_cast<const float4 *>(&Ws[kk][tx * 4]);
            float4 b1 = *reinterpret_cast<const float4 *>(&Ws[kk][64 + tx * 4]);
            const float av[4] = {a.x, a.y, a.z, a.w};
            const float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 8; j++)
                    acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int64_t t = m0 + ty * 4 + i;
        if (t >= p.T)
            continue;
#pragma unroll
        for (int j = 0; j < 8; j++) {
            const int64_t n = n0 + (j < 4 ? tx * 4 + j : 64 + tx * 4 + j - 4);
            if (n < c.rows)
                p.y[t * c.ldy + n] = acc[i][j];
        }
    }
}

template <int F, int TT> void gemv_launch(const lin_call &c, cudaStream_t st)
{
    constexpr int R = TT >= 4 ? 4 : 2;
    dim3 grid(blocks(c.rows, (int64_t)kWarps * R), (unsigned)c.nprob);
    gemv_vec<F, TT, R><<<grid, kThreads, 0, st>>>(c);
}

template <int F> void run_fmt(const lin_call &c, cudaStream_t st)
{
    constexpr int B8 = fmt<F>::B8, EPC = 8 * ((B8 > 16 ? B8 : 16) / B8);
    if (c.maxT <= 8) {
        if (c.wvec && c.in % EPC == 0) {
            if (c.maxT == 1)
                gemv_launch<F, 1>(c, st);
            else if (c.maxT == 2)
                gemv_launch<F, 2>(c, st);
            else if (c.maxT <= 4)
                gemv_launch<F, 4>(c, st);
            else
                gemv_launch<F, 8>(c, st);
        } else {
            gemv_any<F><<<dim3(blocks(c.rows, kWarps), (unsigned)c.nprob), kThreads, 0, st>>>(c);
        }
        return;
    }
    dim3 grid(blocks(c.rows, BN), blocks(c.maxT, BM), (unsigned)c.nprob);
    gemm_tiled<F><<<grid, kThreads, 0, st>>>(c);
}

/* Bytes of 8 elements of a format (the vector-load unit). */
int unit_bytes(dsv4_lw_fmt f)
{
    switch (f) {
    case DSV4_LW_F32: return 32;
    case DSV4_LW_BF16: return 16;
    case DSV4_LW_FP8_BLOCK: return 8;
    default: return 4;
    }
}

} // namespace

int lin_shape(const dsv4_lin *w, lin_call *c, const char *op, dsv4_err *e)
{
    size_t wb, sb;
    if (!w || dsv4_lw_sizes(w->fmt, w->out, w->in, w->group, &wb, &sb))
        return dsv4_fail(e, "cuda %s: weight [%lld, %lld] does not fit format %s (group %d)", op,
                         w ? (long long)w->out : 0LL, w ? (long long)w->in : 0LL,
                         w ? dsv4_lw_fmt_name(w->fmt) : "?", w ? w->group : 0);
    if (!w->w || (sb && !w->s))
        return dsv4_fail(e, "cuda %s: weight [%lld, %lld] (%s) is not loaded on the GPU (lin_load)", op,
                         (long long)w->out, (long long)w->in, dsv4_lw_fmt_name(w->fmt));
    *c = lin_call{};
    c->fmt = w->fmt;
    c->rows = w->out;
    c->in = w->in;
    c->group = w->group;
    c->w_row_bytes = (int64_t)(wb / (size_t)w->out);
    switch (w->fmt) {
    case DSV4_LW_FP8_BLOCK: c->s_cols = (w->in + 127) / 128; break;
    case DSV4_LW_MXFP4: c->s_cols = w->in / 32; break;
    case DSV4_LW_NVFP4: c->s_cols = w->in / 16; break;
    case DSV4_LW_INT4: c->s_cols = w->in / w->group; break;
    default: c->s_cols = 0; break;
    }
    int ub = unit_bytes(w->fmt), al = ub < 16 ? ub : 16;
    c->wvec = (uintptr_t)w->w % 16 == 0 && c->w_row_bytes % al == 0 && (w->fmt != DSV4_LW_INT4 || w->group % 8 == 0);
    c->ldx = w->in;
    c->ldy = w->out;
    c->nprob = 1;
    c->one.w = static_cast<const uint8_t *>(w->w);
    c->one.s = static_cast<const uint8_t *>(w->s);
    c->one.gscale = w->gscale;
    return 0;
}

int lin_run(dsv4_ops *o, lin_call *c, const char *op, dsv4_err *e)
{
    if (c->maxT <= 0 || c->nprob <= 0)
        return 0;
    if (c->maxT > (int64_t)BM * 65535 || c->nprob > 65535)
        return dsv4_fail(e, "cuda %s: %lld tokens in %d problems exceed the launch grid", op, (long long)c->maxT,
                         c->nprob);
    cudaStream_t st = stream(o);
    switch (c->fmt) {
    case DSV4_LW_F32: run_fmt<DSV4_LW_F32>(*c, st); break;
    case DSV4_LW_BF16: run_fmt<DSV4_LW_BF16>(*c, st); break;
    case DSV4_LW_FP8_BLOCK: run_fmt<DSV4_LW_FP8_BLOCK>(*c, st); break;
    case DSV4_LW_MXFP4: run_fmt<DSV4_LW_MXFP4>(*c, st); break;
    case DSV4_LW_INT4: run_fmt<DSV4_LW_INT4>(*c, st); break;
    case DSV4_LW_NVFP4: run_fmt<DSV4_LW_NVFP4>(*c, st); break;
    default: return dsv4_fail(e, "cuda %s: unknown weight format %d", op, (int)c->fmt);
    }
    return launched(e, op);
}

static bool aligned16(const void *p, int64_t ld) { return (uintptr_t)p % 16 == 0 && ld % 4 == 0; }

int linear(dsv4_ops *o, const dsv4_lin *w, const float *x, int64_t T, float *y, dsv4_err *e)
{
    lin_call c{};
    if (lin_shape(w, &c, "linear", e))
        return -1;
    c.one.x = x;
    c.one.y = y;
    c.one.T = c.maxT = T;
    c.xvec = aligned16(x, c.ldx);
    return lin_run(o, &c, "linear", e);
}

int linear_grouped(dsv4_ops *o, const dsv4_lin *w, int64_t G, const float *x, int64_t T, float *y, dsv4_err *e)
{
    lin_call c{};
    if (lin_shape(w, &c, "linear_grouped", e))
        return -1;
    if (G <= 0 || w->out % G)
        return dsv4_fail(e, "cuda linear_grouped: %lld output rows do not split into %lld groups", (long long)w->out,
                         (long long)G);
    /* y[t, g·R + r] = Σ_k x[t, g·K + k] · W[g·R + r, k] */
    int64_t R = w->out / G, K = w->in;
    c.rows = R;
    c.ldx = G * K;
    c.ldy = w->out;
    c.nprob = (int)G;
    c.zx = K;
    c.zy = R;
    c.zrow = R;
    c.one.x = x;
    c.one.y = y;
    c.one.T = c.maxT = T;
    c.xvec = aligned16(x, c.ldx) && K % 4 == 0;
    return lin_run(o, &c, "linear_grouped", e);
}

} // namespace dsv4cu
