/* Builds without CUDA (make CUDA=0) get this gpu.h: no GPU, and device buffers that cannot be had.
 * With CUDA, kernels/cuda/gpu.cu is the one definition instead. */
#include "gpu.h"

#ifndef DSV4_CUDA

int dsv4_gpu_count(void) { return 0; }

void *dsv4_gpu_malloc(size_t n, dsv4_err *e)
{
    dsv4_fail_rt(e, "cannot allocate %zu bytes of GPU memory: built without CUDA (make CUDA=0)", n);
    return NULL;
}

void dsv4_gpu_free(void *p) { (void)p; }

int dsv4_gpu_upload(void *dev, const void *host, size_t n, dsv4_err *e)
{
    return dsv4_fail_rt(e, "cannot copy %zu bytes to the GPU: built without CUDA (make CUDA=0)", n);
}

int dsv4_gpu_download(void *host, const void *dev, size_t n, dsv4_err *e)
{
    return dsv4_fail_rt(e, "cannot copy %zu bytes from the GPU: built without CUDA (make CUDA=0)", n);
}

int dsv4_gpu_sync(dsv4_err *e) { return dsv4_fail_rt(e, "no GPU: built without CUDA (make CUDA=0)"); }

#endif
