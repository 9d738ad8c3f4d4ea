/* The settings checks of the gptq op (kernels/ops.h dsv4_gptq_args), shared by the CPU op
 * (ops_gptq.c) and the CUDA op (cuda/ops_gptq.cu), which then scan W and H for non-finite values
 * where those live (host or device). */
#include <limits.h>
#include <math.h>

#include "gptq_math.h"
#include "ops.h"

#define MAX_K ((int64_t)1 << 20)

static const char *fmt_name(dsv4_gptq_fmt f) { return f == DSV4_GPTQ_INT4 ? "INT4" : "NVFP4"; }

int dsv4_gptq_begin(dsv4_gptq_args *a, const char *who, dsv4_err *e)
{
    if (!a)
        return dsv4_fail(e, "%s: no arguments", who);
    a->loss = 0.0;
    a->damp_used = 0.0;
    a->attempts = 0;
    a->rtn_fallback = 0;
    a->dead = 0;
    long long N = (long long)a->N, K = (long long)a->K;
    if (a->N <= 0 || a->K <= 0 || a->N > INT_MAX || a->K > MAX_K)
        return dsv4_fail(e, "%s: weight [%lld, %lld]: expected 0 < N <= %d and 0 < K <= %lld", who, N, K, INT_MAX,
                         (long long)MAX_K);
    if (!a->W || !a->H || !a->q || !a->scale)
        return dsv4_fail(e, "%s: weight [%lld, %lld]: W, H, q and scale must all be given", who, N, K);
    if (a->fmt == DSV4_GPTQ_INT4) {
        if (a->group != 32 && a->group != 64 && a->group != 128)
            return dsv4_fail(e, "%s: INT4 weight [%lld, %lld]: group %d, expected 32, 64 or 128", who, N, K, a->group);
    } else if (a->fmt == DSV4_GPTQ_NVFP4) {
        if (a->group != DSV4_GQ_NVFP4_GROUP)
            return dsv4_fail(e, "%s: NVFP4 weight [%lld, %lld]: group %d, expected %d", who, N, K, a->group,
                             DSV4_GQ_NVFP4_GROUP);
        if (!(a->gscale > 0.0f) || !isfinite(a->gscale))
            return dsv4_fail(e, "%s: NVFP4 weight [%lld, %lld]: global scale %g, expected finite and > 0", who, N, K,
                             (double)a->gscale);
    } else {
        return dsv4_fail(e, "%s: weight [%lld, %lld]: unknown format %d (expected INT4 or NVFP4)", who, N, K,
                         (int)a->fmt);
    }
    if (a->K % a->group)
        return dsv4_fail(e, "%s: %s weight [%lld, %lld]: K is not a multiple of the group %d", who, fmt_name(a->fmt),
                         N, K, a->group);
    if (a->block <= 0 || a->block % a->group)
        return dsv4_fail(e, "%s: %s weight [%lld, %lld]: block %d, expected a positive multiple of the group %d", who,
                         fmt_name(a->fmt), N, K, a->block, a->group);
    if (!(a->damp_frac >= 0.0) || !isfinite(a->damp_frac))
        return dsv4_fail(e, "%s: weight [%lld, %lld]: dampening fraction %g, expected finite and >= 0", who, N, K,
                         a->damp_frac);
    if ((unsigned)a->actorder > DSV4_ACTORDER_GROUP || (unsigned)a->observer > DSV4_OBSERVER_MSE ||
        (a->recompute != 0 && a->recompute != 1))
        return dsv4_fail(e, "%s: weight [%lld, %lld]: actorder %d, observer %d, recompute %d: expected "
                         "none/static/group, minmax/mse, 0/1", who, N, K, (int)a->actorder, (int)a->observer,
                         a->recompute);
    if (a->actorder == DSV4_ACTORDER_STATIC && a->recompute)
        return dsv4_fail(e, "%s: weight [%lld, %lld]: recomputing group scales needs contiguous groups in the "
                         "loop's order; actorder static has none (use actorder group or none)", who, N, K);
    if (a->actorder == DSV4_ACTORDER_GROUP && !a->g_idx)
        return dsv4_fail(e, "%s: weight [%lld, %lld]: actorder group needs a g_idx output", who, N, K);
    return 0;
}
