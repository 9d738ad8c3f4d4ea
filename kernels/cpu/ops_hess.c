/* The host Hessian accumulation of GPTQ (kernels/ops.h hess_acc; spec/formats_algorithms.md §4.2):
 * the running average H = n/(n+rows)·H + 2/(n+rows)·XᵀX kept in fp32 on the upper triangle, one
 * OpenBLAS ssyrk per call (IST-DASLab's and llm-compressor ≤ 0.9's running form; equal to
 * llm-compressor's sum-then-divide up to rounding). */
#include <cblas.h>
#include <limits.h>
#include <math.h>

#include "cpu/ops_cpu.h"

#define ROWS_PER_SYRK ((int64_t)1 << 30) /* BLAS takes int sizes */

int dsv4_cpu_hess_acc(dsv4_ops *o, const float *x, int64_t rows, int64_t cols, int64_t ld, float *H, double *n,
                      dsv4_err *e)
{
    if (!n || !isfinite(*n) || *n < 0)
        return dsv4_fail(e, "hess_acc: the row count so far must be given, finite and >= 0 (got %g)", n ? *n : NAN);
    if (rows < 0 || cols <= 0 || cols > INT_MAX || ld < cols || ld > INT_MAX)
        return dsv4_fail(e, "hess_acc: activations [%lld rows, %lld cols] with row stride %lld: expected rows >= 0, "
                         "0 < cols <= ld <= %d", (long long)rows, (long long)cols, (long long)ld, INT_MAX);
    if (rows == 0)
        return 0;
    if (!x || !H)
        return dsv4_fail(e, "hess_acc: activations or Hessian [%lld, %lld] missing", (long long)cols, (long long)cols);
    for (int64_t r0 = 0; r0 < rows; r0 += ROWS_PER_SYRK) {
        int64_t m = rows - r0 < ROWS_PER_SYRK ? rows - r0 : ROWS_PER_SYRK;
        double tot = *n + (double)m;
        if (*n == 0) /* beta = 0: H's previous contents must not matter, NaN included */
            for (int64_t i = 0; i < cols; i++)
                for (int64_t j = i; j < cols; j++)
                    H[i * cols + j] = 0.0f;
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)cols, (int)m, (float)(2.0 / tot), x + r0 * ld, (int)ld,
                    (float)(*n / tot), H, (int)cols);
        *n = tot;
    }
    return 0;
}
