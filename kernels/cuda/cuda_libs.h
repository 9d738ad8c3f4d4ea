/* cuBLAS and cuSOLVER for the CUDA backend's calibration ops (hess_acc, gptq), loaded at run time
 * with dlopen: the binaries link only the static CUDA runtime, so they keep starting on machines
 * without a GPU or without those libraries. The libraries are looked for as libcublas.so.13 then
 * libcublas.so (libcusolver.so.12 then libcusolver.so) in $DSV4_CUDA_LIBDIR when set, then on the
 * loader's path, then in /usr/local/cuda/lib64; only the functions the ops call are resolved.
 * DSV4_NO_CUDA_LIBS=1 (read when a backend first uses a calibration op) leaves them unused.
 *
 * Without them the ops still work: hess_acc runs its own SYRK kernel, gptq runs the CPU backend's
 * op on host copies (kernels/cuda/ops_hess.cu, ops_gptq.cu).
 *
 * The C part (any build): which path a backend's calibration ops take. The C++ part (nvcc only):
 * the resolved function table and the per-backend state (one cuBLAS and one cuSOLVER handle on
 * the backend's stream, created on first use, and the CPU backend of the fallback). */
#ifndef DSV4_CUDA_LIBS_H
#define DSV4_CUDA_LIBS_H

#ifdef __cplusplus
extern "C" { /* util/err.h has no C++ guard of its own (ops_cuda.cuh includes it the same way) */
#endif
#include "util/err.h"
#ifdef __cplusplus
}
#endif
#include "ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The path of backend o's calibration ops, e.g. "hess_acc: cublasSsyrk; gptq: cuSOLVER + cuBLAS
 * (libcublas.so.13, libcusolver.so.12)" or "hess_acc: own SYRK kernel; gptq: CPU op on host copies
 * (DSV4_NO_CUDA_LIBS is set)"; "cpu" for the host backend. Decides the path (loads the libraries
 * and creates the handles) when o has not used a calibration op yet. Never NULL. */
const char *dsv4_cuda_gptq_path(dsv4_ops *o);

#ifdef __cplusplus
}
#endif

#ifdef __CUDACC__
#include <cublas_v2.h>
#include <cusolverDn.h>

#include "ops_cuda.cuh"

namespace dsv4cu {

/* The library functions the ops use (declared by the toolkit headers, resolved by dlsym). */
struct libs {
    int blas, solver;                    /* 1 when the library loaded and every function resolved */
    char blas_at[512], solver_at[512];   /* the file loaded, or why none was */
    decltype(&cublasCreate_v2) blasCreate;
    decltype(&cublasSetStream_v2) blasSetStream;
    decltype(&cublasSgemm_v2) Sgemm;
    decltype(&cublasSsyrk_v2) Ssyrk;
    decltype(&cublasDestroy_v2) blasDestroy;
    decltype(&cusolverDnCreate) solverCreate;
    decltype(&cusolverDnSetStream) solverSetStream;
    decltype(&cusolverDnDpotrf_bufferSize) Dpotrf_bufferSize;
    decltype(&cusolverDnDpotrf) Dpotrf;
    decltype(&cusolverDnDpotri_bufferSize) Dpotri_bufferSize;
    decltype(&cusolverDnDpotri) Dpotri;
    decltype(&cusolverDnDestroy) solverDestroy;
};

/* The process's libraries, loaded on the first call (thread-safe). */
const libs *cuda_libs(void);

/* One backend's calibration state. blas / solver are NULL where the path does not use them. */
struct calib {
    cublasHandle_t blas;      /* hess_acc (Ssyrk) and gptq (Sgemm) */
    cusolverDnHandle_t solver; /* gptq's factorizations; set only together with blas */
    dsv4_ops *cpu;            /* the host backend of gptq's fallback, opened on first need */
    char path[1400];
};

/* The state of backend o, created on first use (libraries, handles on the backend's stream). */
calib *calib_get(dsv4_ops *o, dsv4_err *e);
/* Frees a backend's state (handles, the fallback's CPU backend); called by the backend's release. */
void calib_release(ctx *c);

} // namespace dsv4cu
#endif

#endif
