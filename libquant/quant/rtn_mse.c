/* Round-to-nearest with the MSE observer (quant/pack.h): a `method: rtn` group with `observer: mse`.
 * Each group's scale is the one the MSE grid of kernels/gptq_math.h picks (llm-compressor's
 * memoryless_mse: shrink 1.00 … 0.81, error norm 2.4, patience 5; the arithmetic GPTQ's observer
 * uses), the codes are round-to-nearest under that scale, and the bytes are packed as the minmax
 * RTN path packs them. So this is GPTQ with H = I and the MSE observer, bit for bit
 * (tests/unit/test_rtn_mse.c), and with the minmax grid point alone it would be dsv4_int4_rtn /
 * dsv4_nvfp4_rtn. */
#include "quant/pack.h"

#include <math.h>
#include <stdlib.h>

#include "formats/fp.h"
#include "gptq_math.h"

/* Row r of w as floats; non-finite values refused as the RTN paths refuse them. */
static int row_f32(const uint16_t *w, int64_t r, int64_t k, float *x, const char *what, dsv4_err *e)
{
    for (int64_t i = 0; i < k; i++) {
        x[i] = dsv4_bf16_to_f32(w[r * k + i]);
        if (!isfinite(x[i]))
            return dsv4_fail(e, "%s: weight [%lld, %lld] is not finite", what, (long long)r, (long long)i);
    }
    return 0;
}

int dsv4_int4_rtn_mse(const uint16_t *w, int64_t n, int64_t k, int group, int32_t *packed, uint16_t *scale,
                      dsv4_err *e)
{
    if (n < 0 || k < 0 || group <= 0 || k % group != 0 || k % 8 != 0)
        return dsv4_fail(e, "INT4 RTN (mse): shape [%lld, %lld] needs K a multiple of the group (%d) and of 8",
                         (long long)n, (long long)k, group);
    float *x = malloc(((size_t)k + 1) * sizeof *x);
    int8_t *q = malloc((size_t)k + 1);
    int rc = x && q ? 0 : dsv4_fail_rt(e, "INT4 RTN (mse): out of memory for a row of %lld", (long long)k);
    int64_t ng = k / group;
    for (int64_t r = 0; r < n && rc == 0; r++) {
        if ((rc = row_f32(w, r, k, x, "INT4 RTN (mse)", e)) != 0)
            break;
        for (int64_t g = 0; g < ng; g++) {
            float s = dsv4_gq_int4_scale_mse(x + g * group, group, 1);
            scale[r * ng + g] = dsv4_f32_to_bf16(s);
            for (int64_t i = g * group; i < (g + 1) * group; i++)
                q[i] = (int8_t)dsv4_gq_int4_q(x[i], s);
        }
        dsv4_int4_pack(q, 1, k, packed + r * (k / 8));
    }
    free(x);
    free(q);
    return rc;
}

int dsv4_nvfp4_rtn_mse(const uint16_t *w, int64_t n, int64_t k, float gs, uint8_t *packed, uint8_t *scale,
                       dsv4_err *e)
{
    if (n < 0 || k < 0 || k % 16 != 0)
        return dsv4_fail(e, "NVFP4 RTN (mse): shape [%lld, %lld] needs K a multiple of 16", (long long)n,
                         (long long)k);
    if (!(gs > 0.0f) || !isfinite(gs))
        return dsv4_fail(e, "NVFP4 RTN (mse): global scale %g must be finite and positive", (double)gs);
    float *x = malloc(((size_t)k + 1) * sizeof *x);
    uint8_t *c = malloc((size_t)k + 1);
    int rc = x && c ? 0 : dsv4_fail_rt(e, "NVFP4 RTN (mse): out of memory for a row of %lld", (long long)k);
    int64_t ng = k / 16;
    for (int64_t r = 0; r < n && rc == 0; r++) {
        if ((rc = row_f32(w, r, k, x, "NVFP4 RTN (mse)", e)) != 0)
            break;
        for (int64_t g = 0; g < ng; g++) {
            uint32_t sc = dsv4_gq_nvfp4_scale_mse(x + g * 16, 16, 1, gs);
            float eff = dsv4_gq_nvfp4_eff(sc, gs);
            scale[r * ng + g] = (uint8_t)sc;
            for (int64_t i = g * 16; i < (g + 1) * 16; i++)
                c[i] = (uint8_t)dsv4_gq_e2m1_code(x[i] / eff);
        }
        dsv4_nvfp4_pack(c, 1, k, packed + r * (k / 2));
    }
    free(x);
    free(c);
    return rc;
}
