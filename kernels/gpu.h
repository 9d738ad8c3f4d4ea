/* The little of the CUDA runtime that C code needs: whether a GPU is there, and device buffers.
 * kernels/cuda/gpu.cu implements it; without CUDA, kernels/cpu/gpu_stub.c reports no GPU and
 * fails the rest. Binaries link the CUDA runtime statically, so they start on machines with no
 * GPU or driver: dsv4_gpu_count() is then 0. */
#ifndef DSV4_KERNELS_GPU_H
#define DSV4_KERNELS_GPU_H

#include <stddef.h>

#include "util/err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Number of usable CUDA devices; 0 on any error (no driver, no device, built without CUDA). */
int dsv4_gpu_count(void);
/* Device memory on the current device: NULL (with a message) on failure; free accepts NULL. */
void *dsv4_gpu_malloc(size_t n, dsv4_err *e);
void dsv4_gpu_free(void *p);
/* Synchronous copies: host to device and device to host. */
int dsv4_gpu_upload(void *dev, const void *host, size_t n, dsv4_err *e);
int dsv4_gpu_download(void *host, const void *dev, size_t n, dsv4_err *e);
/* Waits for the current device's work; reports any pending kernel error. */
int dsv4_gpu_sync(dsv4_err *e);

#ifdef __cplusplus
}
#endif

#endif
