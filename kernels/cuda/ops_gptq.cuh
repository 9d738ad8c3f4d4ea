/* The CUDA backend's calibration ops (kernels/ops.h hess_acc and gptq) and the pieces the GPTQ
 * files share: ops_hess.cu (running Hessian), ops_gptq_host.cu (argument checks, act order, the
 * fallback to the CPU op), ops_gptq_factor.cu (Hessian preparation and the fp64 Cholesky chain
 * with damping retries), ops_gptq.cu (the op: scales, the column loop, the lazy updates). */
#ifndef DSV4_OPS_GPTQ_CUH
#define DSV4_OPS_GPTQ_CUH

#include "cuda_libs.h"

namespace dsv4cu {

int hess_acc(dsv4_ops *o, const float *x, int64_t rows, int64_t cols, int64_t ld, float *H, double *n, dsv4_err *e);
int gptq(dsv4_ops *o, dsv4_gptq_args *a, dsv4_err *e);

/* ops_gptq_host.cu: the checks of the arguments' settings (the CPU op's), the device scan of W and
 * H's upper triangle for non-finite values, the act-order permutation of the columns by diag
 * descending (stable), and the fallback: the CPU backend's op on host copies. */
int gptq_check_finite(dsv4_ops *o, const dsv4_gptq_args *a, dsv4_err *e);
int gptq_act_order(const float *diag, int64_t K, int32_t *perm);
int gptq_fallback(dsv4_ops *o, calib *s, dsv4_gptq_args *a, dsv4_err *e);

/* ops_gptq_factor.cu: turns the Hessian H [K, K] (upper triangle, row-major, on the device) into the upper Cholesky
 * factor U of its damped inverse, in place (fp32, row-major, zero below the diagonal): H is read
 * through the permutation perm (device [K]: row/column i of the permuted H is perm[i] of H), dead
 * columns (diag[perm[i]] == 0, diag on the device) get 1 on the diagonal, damping
 * damp_frac · mean is added (mean: of the permuted diagonal after the dead fix), and the chain
 * potrf → potri → potrf runs in fp64 with cuSOLVER. Failed factorizations raise damp_frac by 0.01
 * while it is <= 1; past that U = I. Sets a->attempts, a->damp_used, a->rtn_fallback. */
int gptq_factor(dsv4_ops *o, calib *s, float *H, int64_t K, const int32_t *perm, const float *diag, double mean,
                dsv4_gptq_args *a, dsv4_err *e);

} // namespace dsv4cu

#endif
