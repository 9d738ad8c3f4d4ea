/* Builds without CUDA (make CUDA=0) get a dsv4_ops_cuda that fails with a message, so code that asks
 * for the GPU backend links either way and falls back to the CPU. With CUDA, kernels/cuda/ops_cuda.cu
 * is the one definition instead. */
#include "ops.h"

#ifndef DSV4_CUDA

dsv4_ops *dsv4_ops_cuda(dsv4_err *e)
{
    dsv4_fail_rt(e, "cannot use the CUDA backend: built without CUDA (make CUDA=0)");
    return 0;
}

#endif
