/* Builds without CUDA (make CUDA=0) get a dsv4_ops_cuda that fails with a message, so code that asks
 * for the GPU backend links either way and falls back to the CPU, and a dsv4_cuda_gptq_path that
 * names the host backend. With CUDA, kernels/cuda/ops_cuda.cu and cuda_libs.cu are the definitions
 * instead. */
#include "cuda/cuda_libs.h"
#include "ops.h"

#ifndef DSV4_CUDA

dsv4_ops *dsv4_ops_cuda(dsv4_err *e)
{
    dsv4_fail_rt(e, "cannot use the CUDA backend: built without CUDA (make CUDA=0)");
    return 0;
}

const char *dsv4_cuda_gptq_path(dsv4_ops *o)
{
    (void)o;
    return "cpu (built without CUDA)";
}

#endif
