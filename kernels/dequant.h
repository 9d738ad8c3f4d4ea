/* The dequant kernel interface. kernels/cpu/dequant.c (threads over rows, calling libquant's
 * reference loops) and kernels/cuda/dequant.cu implement the same contract: given a release-layout
 * FP8-block or FP4-expert weight (libquant/formats/dequant.h), write its dequantized values as
 * float32 or bf16, bit for bit equal to libquant's dsv4_*_dequant_* (NaN elements, which only a
 * NaN code or a 0xFF scale produces, are NaN on both but may differ in NaN bits).
 *
 * Pointers: dsv4_dequant_cpu* and dsv4_dequant_cuda take HOST memory (the CUDA one copies to the
 * current device, runs and copies back); dsv4_dequant_cuda_dev takes DEVICE memory. Built without
 * CUDA, the CUDA entry points fail with a message; check dsv4_gpu_count() (gpu.h) first. */
#ifndef DSV4_KERNELS_DEQUANT_H
#define DSV4_KERNELS_DEQUANT_H

#include "formats/dequant.h"
#include "formats/dtype.h"
#include "util/err.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dsv4_qformat { DSV4_QFMT_FP8_BLOCK = 0, DSV4_QFMT_FP4 = 1 } dsv4_qformat;

/* The shared signature. out_t is DSV4_F32 or DSV4_BF16; out holds w_rows × in elements. */
typedef int (*dsv4_dequant_fn)(dsv4_qformat fmt, const dsv4_qweight *q, dsv4_dtype out_t, void *out,
                               dsv4_err *e);

/* Shape check for fmt plus the output dtype check; every entry point runs it. */
int dsv4_dequant_check(dsv4_qformat fmt, const dsv4_qweight *q, dsv4_dtype out_t, dsv4_err *e);

/* CPU, one thread per core (at most 64); _mt with an explicit thread count (<= 0: one per core). */
int dsv4_dequant_cpu(dsv4_qformat fmt, const dsv4_qweight *q, dsv4_dtype out_t, void *out, dsv4_err *e);
int dsv4_dequant_cpu_mt(dsv4_qformat fmt, const dsv4_qweight *q, dsv4_dtype out_t, void *out,
                        int nthreads, dsv4_err *e);

/* CUDA with host pointers: allocates, copies in, runs, copies out, frees. Synchronous. */
int dsv4_dequant_cuda(dsv4_qformat fmt, const dsv4_qweight *q, dsv4_dtype out_t, void *out, dsv4_err *e);
/* CUDA with device pointers (q->w, q->s and out on the current device; q->name and the shapes on the
 * host), launched on `stream` (a cudaStream_t; NULL is the default stream) and not waited for. */
int dsv4_dequant_cuda_dev(dsv4_qformat fmt, const dsv4_qweight *q, dsv4_dtype out_t, void *out,
                          void *stream, dsv4_err *e);
/* Benchmark helper: copies q to the device, then reports the best of `iters` timed runs (cudaEvent,
 * after one warm-up) of the kernel and of a device-to-device cudaMemcpy of the same input bytes
 * (weight + scale), in seconds. */
int dsv4_dequant_cuda_bench(dsv4_qformat fmt, const dsv4_qweight *q, dsv4_dtype out_t, int iters,
                            double *kernel_s, double *memcpy_s, dsv4_err *e);

#ifdef __cplusplus
}
#endif

#endif
