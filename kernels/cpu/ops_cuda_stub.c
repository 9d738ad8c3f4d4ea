/* Until the CUDA backend (kernels/cuda/ops_*.cu) is built, dsv4_ops_cuda fails with a message, so
 * code that asks for the GPU backend links either way. */
#include "ops.h"

dsv4_ops *dsv4_ops_cuda(dsv4_err *e)
{
    dsv4_fail_rt(e, "cannot use the CUDA backend: this build has no CUDA ops");
    return 0;
}
