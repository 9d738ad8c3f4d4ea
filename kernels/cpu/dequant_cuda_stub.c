/* Builds without CUDA (make CUDA=0) get failing CUDA dequant entry points, so that code calling
 * them after a dsv4_gpu_count() check links either way. With CUDA, kernels/cuda/dequant.cu. */
#include "dequant.h"

#ifndef DSV4_CUDA

static int no_cuda(const dsv4_qweight *q, dsv4_err *e)
{
    return dsv4_fail_rt(e, "%s: cannot dequantize on the GPU: built without CUDA (make CUDA=0)",
                        q && q->name ? q->name : "(unnamed)");
}

int dsv4_dequant_cuda(dsv4_qformat fmt, const dsv4_qweight *q, dsv4_dtype out_t, void *out, dsv4_err *e)
{
    return no_cuda(q, e);
}

int dsv4_dequant_cuda_dev(dsv4_qformat fmt, const dsv4_qweight *q, dsv4_dtype out_t, void *out,
                          void *stream, dsv4_err *e)
{
    return no_cuda(q, e);
}

int dsv4_dequant_cuda_bench(dsv4_qformat fmt, const dsv4_qweight *q, dsv4_dtype out_t, int iters,
                            double *kernel_s, double *memcpy_s, dsv4_err *e)
{
    return no_cuda(q, e);
}

#endif
