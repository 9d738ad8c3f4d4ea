/* The running Hessian on the GPU (kernels/ops.h hess_acc): H = n/(n+rows)·H + 2/(n+rows)·XᵀX,
 * upper triangle of the row-major H only. With cuBLAS this is one cublasSsyrk per at most 2^31
 * elements of X: the row-major upper triangle of H is the lower triangle of H seen column-major,
 * and the row-major X [rows, cols] (row stride ld) is the column-major Xᵀ [cols, rows] (lda ld),
 * so H += Xᵀ·X is SYRK(lower, no transpose) of that Xᵀ. Without cuBLAS, a tiled kernel of our own
 * computes the same upper triangle (fp32 products, summed in fp32 over 256 rows at a time and
 * those partial sums in fp64). */
#include "ops_gptq.cuh"

#include <limits.h>

namespace dsv4cu {
namespace {

constexpr int kTile = 64;    /* output tile of one block: 64 × 64 entries of H */
constexpr int kRows = 16;    /* rows of X staged in shared memory per step */
constexpr int kChunk = 256;  /* rows summed in fp32 before the fp64 accumulator takes them */

/* Block (bx, by) computes H[i][j] for i in tile by, j in tile bx (tiles below the diagonal exit);
 * thread (tx, ty) owns i = i0 + ty + 16a, j = j0 + tx + 16b (a, b < 4). */
__global__ void syrk_kernel(const float *x, int64_t rows, int64_t cols, int64_t ld, float alpha, float beta, float *H)
{
    if (blockIdx.y > blockIdx.x)
        return;
    __shared__ float xi[kRows][kTile], xj[kRows][kTile];
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;
    const int64_t i0 = (int64_t)blockIdx.y * kTile, j0 = (int64_t)blockIdx.x * kTile;
    float acc[4][4] = {};
    double dacc[4][4] = {};
    for (int64_t r0 = 0; r0 < rows; r0 += kRows) {
        for (int k = tid; k < kRows * kTile; k += 256) {
            int rr = k / kTile, cc = k % kTile;
            int64_t r = r0 + rr;
            xi[rr][cc] = r < rows && i0 + cc < cols ? x[r * ld + i0 + cc] : 0.0f;
            xj[rr][cc] = r < rows && j0 + cc < cols ? x[r * ld + j0 + cc] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int rr = 0; rr < kRows; rr++) {
            float a[4], b[4];
#pragma unroll
            for (int q = 0; q < 4; q++) {
                a[q] = xi[rr][ty + 16 * q];
                b[q] = xj[rr][tx + 16 * q];
            }
#pragma unroll
            for (int p = 0; p < 4; p++)
#pragma unroll
                for (int q = 0; q < 4; q++)
                    acc[p][q] = __fmaf_rn(a[p], b[q], acc[p][q]);
        }
        __syncthreads();
        if ((r0 + kRows) % kChunk == 0 || r0 + kRows >= rows) {
#pragma unroll
            for (int p = 0; p < 4; p++)
#pragma unroll
                for (int q = 0; q < 4; q++) {
                    dacc[p][q] += acc[p][q];
                    acc[p][q] = 0.0f;
                }
        }
    }
#pragma unroll
    for (int p = 0; p < 4; p++)
#pragma unroll
        for (int q = 0; q < 4; q++) {
            int64_t i = i0 + ty + 16 * p, j = j0 + tx + 16 * q;
            if (i < cols && j < cols && i <= j) {
                float v = __fmul_rn(alpha, (float)dacc[p][q]);
                float *h = H + i * cols + j;
                *h = beta == 0.0f ? v : __fadd_rn(__fmul_rn(beta, *h), v);
            }
        }
}

} // namespace

int hess_acc(dsv4_ops *o, const float *x, int64_t rows, int64_t cols, int64_t ld, float *H, double *n, dsv4_err *e)
{
    if (rows < 0 || cols <= 0 || ld < cols || !n || !(*n >= 0))
        return dsv4_fail(e, "cuda hess_acc: X is %lld rows × %lld columns with row stride %lld after %g rows; expected "
                         "rows >= 0, columns >= 1, stride >= columns and a count >= 0",
                         (long long)rows, (long long)cols, (long long)ld, n ? *n : -1.0);
    if (rows == 0)
        return 0;
    if (!x || !H)
        return dsv4_fail(e, "cuda hess_acc: X or H is NULL");
    calib *s = calib_get(o, e);
    if (!s)
        return -1;
    if (s->blas) {
        if (cols > INT_MAX || ld > INT_MAX)
            return dsv4_fail(e, "cuda hess_acc: %lld columns (row stride %lld) exceed cuBLAS's int range",
                             (long long)cols, (long long)ld);
        const libs *L = cuda_libs();
        int64_t step = INT_MAX / ld; /* rows per SYRK: chunk·ld stays within int */
        double seen = *n;
        for (int64_t r0 = 0; r0 < rows; r0 += step) {
            int64_t k = rows - r0 < step ? rows - r0 : step;
            float beta = (float)(seen / (seen + (double)k)), alpha = (float)(2.0 / (seen + (double)k));
            cublasStatus_t st = L->Ssyrk(s->blas, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, (int)cols, (int)k, &alpha,
                                         x + r0 * ld, (int)ld, &beta, H, (int)cols);
            if (st != CUBLAS_STATUS_SUCCESS)
                return dsv4_fail_rt(e, "cuda hess_acc: cublasSsyrk of %lld × %lld failed with status %d",
                                    (long long)k, (long long)cols, (int)st);
            seen += (double)k;
        }
        *n = seen;
        return 0;
    }
    double n0 = *n;
    float beta = (float)(n0 / (n0 + (double)rows)), alpha = (float)(2.0 / (n0 + (double)rows));
    unsigned t = blocks(cols, kTile);
    syrk_kernel<<<dim3(t, t), dim3(16, 16), 0, stream(o)>>>(x, rows, cols, ld, alpha, beta, H);
    if (launched(e, "hess_acc"))
        return -1;
    *n = n0 + (double)rows;
    return 0;
}

} // namespace dsv4cu
