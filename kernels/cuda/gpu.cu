/* CUDA runtime side of kernels/gpu.h: device count (0 on any error, so GPU-less machines run the
 * CPU path) and device buffers for C callers. */
extern "C" {
#include "util/err.h"
}
#include "gpu.h"

#include <cuda_runtime.h>

extern "C" int dsv4_gpu_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky error so later calls start clean */
        return 0;
    }
    return n;
}

extern "C" void *dsv4_gpu_malloc(size_t n, dsv4_err *e)
{
    void *p = nullptr;
    cudaError_t rc = cudaMalloc(&p, n ? n : 1);
    if (rc != cudaSuccess) {
        dsv4_fail_rt(e, "cudaMalloc(%zu bytes) failed: %s", n, cudaGetErrorString(rc));
        return nullptr;
    }
    return p;
}

extern "C" void dsv4_gpu_free(void *p)
{
    if (p)
        cudaFree(p);
}

extern "C" int dsv4_gpu_upload(void *dev, const void *host, size_t n, dsv4_err *e)
{
    cudaError_t rc = cudaMemcpy(dev, host, n, cudaMemcpyHostToDevice);
    return rc == cudaSuccess ? 0 : dsv4_fail_rt(e, "copy of %zu bytes to the GPU failed: %s", n, cudaGetErrorString(rc));
}

extern "C" int dsv4_gpu_download(void *host, const void *dev, size_t n, dsv4_err *e)
{
    cudaError_t rc = cudaMemcpy(host, dev, n, cudaMemcpyDeviceToHost);
    return rc == cudaSuccess ? 0 : dsv4_fail_rt(e, "copy of %zu bytes from the GPU failed: %s", n, cudaGetErrorString(rc));
}

extern "C" int dsv4_gpu_sync(dsv4_err *e)
{
    cudaError_t rc = cudaDeviceSynchronize();
    if (rc == cudaSuccess)
        rc = cudaGetLastError();
    return rc == cudaSuccess ? 0 : dsv4_fail_rt(e, "GPU work failed: %s", cudaGetErrorString(rc));
}
