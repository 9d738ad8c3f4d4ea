/* Internals shared by the CUDA backend's files (kernels/cuda/ops_*.cu): the backend context (one
 * stream, scratch buffers that grow on demand, a staging path for the small host arrays the ops
 * take), error helpers, warp/block reductions, and the declarations of the ops each file defines.
 *
 * Every op runs asynchronously on the backend's stream; memory comes from the stream-ordered pool
 * (cudaMallocAsync), so a buffer freed by the host while kernels still use it is reused only by
 * later work on the same stream. Rounding-sensitive element-wise arithmetic uses the explicit
 * __fadd_rn / __fmul_rn intrinsics so that nvcc does not contract it into FMAs the host code does
 * not use (kernels/cpu is built with -std=c11, which keeps a·b + c as two roundings). */
#ifndef DSV4_OPS_CUDA_CUH
#define DSV4_OPS_CUDA_CUH

extern "C" {
#include "util/err.h"
}
#include "ops.h"

#include <cuda_runtime.h>
#include <stdint.h>

namespace dsv4cu {

/* Scratch slots: an op may use several at once, so each use names its slot. */
enum {
    SCR_HOST0 = 0, /* staged host arrays (positions, ids, indices, weights, descriptors) */
    SCR_HOST1,
    SCR_HOST2,
    SCR_WORK0,     /* device work buffers */
    SCR_WORK1,
    SCR_WORK2,
    SCR_WORK3,
    SCR_WORK4,
    SCR_COUNT
};

struct ctx {
    cudaStream_t st;
    int dev;
    size_t smem_optin;          /* largest dynamic shared memory a block may opt in to */
    void *scr[SCR_COUNT];
    size_t scr_n[SCR_COUNT];
    void *calib;                /* calibration ops' state (cuda_libs.cu calib_get), made on first use */
};

inline ctx *C(dsv4_ops *o) { return static_cast<ctx *>(o->ctx); }
inline cudaStream_t stream(dsv4_ops *o) { return C(o)->st; }

/* Fails with "cuda <op>: <what> failed: <cuda message>" unless rc is cudaSuccess. */
int check(dsv4_err *e, const char *op, const char *what, cudaError_t rc);
/* Reports a failed kernel launch (bad configuration, missing image for this GPU). */
int launched(dsv4_err *e, const char *op);
/* A device buffer of at least n bytes in `slot` (contents undefined); NULL with a message. */
void *scratch(dsv4_ops *o, int slot, size_t n, const char *op, dsv4_err *e);
/* Copies n bytes of a host array into `slot`, in stream order; the host array may be reused as soon
 * as this returns. */
void *stage(dsv4_ops *o, int slot, const void *host, size_t n, const char *op, dsv4_err *e);
/* Allows a kernel `fn` `bytes` of dynamic shared memory; fails when the device has less. */
int smem(dsv4_ops *o, const void *fn, size_t bytes, const char *op, dsv4_err *e);

/* Grid sizes for n work items of `per` each (at most 2^31-1 blocks in x). */
inline unsigned blocks(int64_t n, int64_t per) { return (unsigned)((n + per - 1) / per); }
/* Threads per block of the element-wise kernels, and their grid (grid-stride loops past 65536 blocks). */
constexpr int kEltThreads = 256;
inline unsigned grid_for(int64_t n)
{
    unsigned g = blocks(n, kEltThreads);
    return g > 65536u ? 65536u : (g ? g : 1u);
}

/* ---- reductions ----------------------------------------------------------------------------- */

__device__ __forceinline__ float warp_sum(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ double warp_sum(double v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
 * sh: 32 elements of shared memory, reusable after the call returns. */
template <typename T> __device__ T block_sum(T v, T *sh)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads(); /* sh may still be read by a previous call */
    if (lane == 0)
        sh[warp] = v;
    __syncthreads();
    T s = 0;
    for (int i = 0; i < nw; i++)
        s += sh[i];
    return s;
}

/* ---- linear weights on the device ------------------------------------------------------------ */

/* One GEMM problem of a batch: y[T, rows] (row stride ldy) = x[T, in] (row stride ldx) · Wᵀ. */
struct lin_prob {
    const uint8_t *w, *s;
    float gscale;
    const float *x;
    float *y;
    int64_t T;
};

/* A batch of problems with the same format and shape. Either `list` (device array of nprob
 * problems) or `one`, repeated nprob times with problem z at x + z·zx, y + z·zy and weight rows
 * z·zrow + r (the grouped output projection). */
struct lin_call {
    dsv4_lw_fmt fmt;
    int64_t rows, in;           /* per problem */
    int64_t w_row_bytes, s_cols;
    int group;
    int64_t ldx, ldy;
    lin_prob one;
    const lin_prob *list;
    int nprob;
    int64_t maxT;               /* largest T of the problems */
    int64_t zx, zy, zrow;
    int wvec, xvec;             /* packed rows / x rows aligned for vector loads */
};

/* Fills the shape part of a call from a loaded weight (format and sizes checked). */
int lin_shape(const dsv4_lin *w, lin_call *c, const char *op, dsv4_err *e);
/* Runs a call: GEMV kernels for maxT <= 8 (each packed weight byte read once), tiled
 * dequant-GEMM otherwise. */
int lin_run(dsv4_ops *o, lin_call *c, const char *op, dsv4_err *e);

/* ---- the ops of each file ------------------------------------------------------------------- */

int linear(dsv4_ops *o, const dsv4_lin *w, const float *x, int64_t T, float *y, dsv4_err *e);
int linear_grouped(dsv4_ops *o, const dsv4_lin *w, int64_t G, const float *x, int64_t T, float *y, dsv4_err *e);
int embed(dsv4_ops *o, const dsv4_lin *table, const int32_t *ids, int64_t T, float *y, dsv4_err *e);
int rmsnorm(dsv4_ops *o, const float *x, int64_t rows, int64_t n, const float *w, float eps, float *y, dsv4_err *e);
int rope(dsv4_ops *o, float *x, int64_t T, int64_t sub, int64_t dim, int64_t rope_dim, const int64_t *pos,
         const float *inv_freq, int inverse, dsv4_err *e);
int axpy(dsv4_ops *o, float alpha, const float *x, int64_t n, float *y, dsv4_err *e);
int add_bcast(dsv4_ops *o, const float *v, int64_t T, int64_t rep, int64_t d, float *X, dsv4_err *e);
int score(dsv4_ops *o, float *logits, int64_t T, int64_t E, int score_func, dsv4_err *e);
int hc_pre(dsv4_ops *o, const dsv4_hc_args *a, dsv4_err *e);
int hc_head(dsv4_ops *o, const dsv4_hc_args *a, dsv4_err *e);
int hc_post(dsv4_ops *o, const float *a, const float *R, const float *post, const float *comb, int64_t T,
            int64_t hc, int64_t d, float *X, dsv4_err *e);
int attention(dsv4_ops *o, const dsv4_attn_args *a, dsv4_err *e);
int pool(dsv4_ops *o, const dsv4_pool_args *a, dsv4_err *e);
int indexer(dsv4_ops *o, const dsv4_index_args *a, dsv4_err *e);
int moe(dsv4_ops *o, const dsv4_moe_args *a, dsv4_err *e);
int swiglu(dsv4_ops *o, const dsv4_lin *w1, const dsv4_lin *w3, const dsv4_lin *w2, const float *x, int64_t T,
           float limit, float *y, dsv4_err *e);
int swiglu_act(dsv4_ops *o, const float *g, const float *u, int64_t n, float limit, float *h, dsv4_err *e);

} // namespace dsv4cu

#endif
