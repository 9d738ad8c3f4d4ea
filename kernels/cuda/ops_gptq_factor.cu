/* GPTQ's Hessian preparation and factorization on the GPU (spec/formats_algorithms.md §4.3, ops.h
 * dsv4_gptq_args step 4): the permuted, dead-fixed, damped Hessian in fp64, then with cuSOLVER
 * H = L·Lᵀ (potrf, lower), H⁻¹ from L (potri, lower), H⁻¹ = L2·L2ᵀ (potrf, lower), all
 * column-major. U = L2ᵀ is the upper factor with H⁻¹ = UᵀU that GPTQ wants, and a column-major
 * lower triangle read as row-major IS its transpose: U[i][j] (i <= j) = L2(j, i) = A[i·K + j]. So
 * the fp32 U is the row-major upper triangle of the fp64 buffer, rounded, with zeros below. (This
 * is the potrf(upper) of H⁻¹ that llm-compressor calls, computed as the transpose of the lower
 * factor of the same matrix.) A failed factorization (devInfo != 0, or a factor whose fp32
 * diagonal is not finite and positive) tries damp_frac + 0.01·i for i = 1, 2, ... while that is
 * <= 1, like the CPU op, starting again from H, which stays intact until one succeeds. */
#include "ops_gptq.cuh"

#include <limits.h>

namespace dsv4cu {
namespace {

/* A[i][j] = H'[i][j] for the permuted H' read from H's upper triangle (A is symmetric, so its
 * row- and column-major layouts agree); dead diagonal entries become 1; damp on the diagonal. */
__global__ void build_kernel(const float *H, int64_t K, const int32_t *perm, const float *diag, double damp, double *A)
{
    int64_t n = K * K;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = t / K, j = t - i * K, a = perm[i], b = perm[j];
        double v;
        if (i == j)
            v = (diag[a] == 0.0f ? 1.0 : (double)diag[a]) + damp;
        else
            v = (double)(a <= b ? H[a * K + b] : H[b * K + a]);
        A[t] = v;
    }
}

/* U (row-major, fp32) from the fp64 factor: the upper triangle of A read row-major, zero below. */
__global__ void u_kernel(const double *A, int64_t K, float *U)
{
    int64_t n = K * K;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = t / K, j = t - i * K;
        U[t] = j >= i ? (float)A[t] : 0.0f;
    }
}

__global__ void identity_kernel(int64_t K, float *U)
{
    int64_t n = K * K;
    for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x)
        U[t] = t / K == t % K ? 1.0f : 0.0f;
}

/* Sets *bad when a diagonal entry of the factor is not a finite, positive fp32 value (the loop
 * divides by it). */
__global__ void diag_check_kernel(const double *A, int64_t K, int *bad)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < K; i += (int64_t)gridDim.x * blockDim.x) {
        float d = (float)A[i * K + i];
        if (!(d > 0.0f) || isinf(d))
            *bad = 1;
    }
}

/* Reads the int a cuSOLVER call or the check left at `dinfo` (synchronizing): 0 ok, 1 the matrix
 * was not positive definite (or the factor unusable), -1 error. */
int read_info(dsv4_ops *o, const int *dinfo, const char *what, dsv4_err *e)
{
    int info = 0;
    if (check(e, "gptq", "devInfo copy", cudaMemcpyAsync(&info, dinfo, sizeof info, cudaMemcpyDeviceToHost, stream(o))) ||
        check(e, "gptq", what, cudaStreamSynchronize(stream(o))))
        return -1;
    if (info < 0)
        return dsv4_fail_rt(e, "cuda gptq: %s rejected argument %d", what, -info);
    return info > 0 ? 1 : 0;
}

int solver_step(dsv4_ops *o, cusolverStatus_t st, const int *dinfo, const char *what, int64_t K, dsv4_err *e)
{
    if (st != CUSOLVER_STATUS_SUCCESS)
        return dsv4_fail_rt(e, "cuda gptq: %s of the %lld × %lld Hessian failed with cuSOLVER status %d", what,
                            (long long)K, (long long)K, (int)st);
    return read_info(o, dinfo, what, e);
}

/* The chain on A (built): 0 when it succeeded and U's diagonal is usable, 1 when it failed. */
int chain(dsv4_ops *o, const libs *L, calib *s, double *A, int n, double *work, int lwork, int *dinfo, dsv4_err *e)
{
    int rc = solver_step(o, L->Dpotrf(s->solver, CUBLAS_FILL_MODE_LOWER, n, A, n, work, lwork, dinfo), dinfo,
                         "Cholesky factorization (potrf)", n, e);
    if (rc == 0)
        rc = solver_step(o, L->Dpotri(s->solver, CUBLAS_FILL_MODE_LOWER, n, A, n, work, lwork, dinfo), dinfo,
                         "inverse (potri)", n, e);
    if (rc == 0)
        rc = solver_step(o, L->Dpotrf(s->solver, CUBLAS_FILL_MODE_LOWER, n, A, n, work, lwork, dinfo), dinfo,
                         "Cholesky factorization of the inverse (potrf)", n, e);
    if (rc == 0) {
        if (check(e, "gptq", "flag reset", cudaMemsetAsync(dinfo, 0, sizeof *dinfo, stream(o))))
            return -1;
        diag_check_kernel<<<grid_for(n), kEltThreads, 0, stream(o)>>>(A, n, dinfo);
        rc = launched(e, "gptq") ? -1 : read_info(o, dinfo, "factor check", e);
    }
    return rc;
}

} // namespace

int gptq_factor(dsv4_ops *o, calib *s, float *H, int64_t K, const int32_t *perm, const float *diag, double mean,
                dsv4_gptq_args *a, dsv4_err *e)
{
    const libs *L = cuda_libs();
    if (K > INT_MAX)
        return dsv4_fail(e, "cuda gptq: K = %lld exceeds cuSOLVER's int range", (long long)K);
    const int n = (int)K;
    double *A = static_cast<double *>(scratch(o, SCR_WORK0, (size_t)K * (size_t)K * sizeof(double), "gptq", e));
    if (!A)
        return -1;
    int lw1 = 0, lw2 = 0;
    cusolverStatus_t st = L->Dpotrf_bufferSize(s->solver, CUBLAS_FILL_MODE_LOWER, n, A, n, &lw1);
    if (st == CUSOLVER_STATUS_SUCCESS)
        st = L->Dpotri_bufferSize(s->solver, CUBLAS_FILL_MODE_LOWER, n, A, n, &lw2);
    if (st != CUSOLVER_STATUS_SUCCESS)
        return dsv4_fail_rt(e, "cuda gptq: cuSOLVER workspace query for K = %lld failed with status %d", (long long)K,
                            (int)st);
    int lwork = lw1 > lw2 ? lw1 : lw2;
    if (lwork < 1)
        lwork = 1;
    /* workspace, then devInfo after it (8-byte aligned) */
    double *work = static_cast<double *>(scratch(o, SCR_WORK2, ((size_t)lwork + 1) * sizeof(double), "gptq", e));
    if (!work)
        return -1;
    int *dinfo = reinterpret_cast<int *>(work + lwork);
    unsigned g = grid_for(K * K);
    a->attempts = 0;
    a->rtn_fallback = 0;
    for (int i = 0;; i++) {
        double f = a->damp_frac + 0.01 * i; /* the CPU op's sequence, so both try the same fractions */
        if (i > 0 && f > 1.0 + 1e-9)
            break;
        a->attempts++;
        a->damp_used = f; /* after a fallback: the last fraction tried */
        build_kernel<<<g, kEltThreads, 0, stream(o)>>>(H, K, perm, diag, f * mean, A);
        if (launched(e, "gptq"))
            return -1;
        int rc = chain(o, L, s, A, n, work, lwork, dinfo, e);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            u_kernel<<<g, kEltThreads, 0, stream(o)>>>(A, K, H);
            return launched(e, "gptq");
        }
    }
    a->rtn_fallback = 1;
    identity_kernel<<<g, kEltThreads, 0, stream(o)>>>(K, H);
    return launched(e, "gptq");
}

} // namespace dsv4cu
