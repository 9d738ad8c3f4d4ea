/* nvfp4-pack-quantized (quant/pack.h): the global scale, the RTN compress path and the
 * dequantization, bit for bit as compressed-tensors computes them on its torch path
 * (spec/formats_algorithms.md §2.2, §6.2; compressors/nvfp4, quantization/utils/helpers.py).
 *
 *   gs   = bf16(bf16(1 / a) · 2688), a = max(bf16(amax), 2^-126); 1.0 when that is not finite
 *   sc   = e4m3_rne(clamp(f32(gs · bf16(amax_blk / 6)), ±448)), 0 -> 0.125
 *   eff  = f32(sc / gs);  y = clamp(f32(w / eff), ±6);  code = e2m1_rne(y)
 *
 * dsv4_nvfp4_pack packs codes chosen elsewhere (GPTQ) in the same nibble order as the RTN path.
 *
 * The global scale is generate_gparam's `448 * 6 / amax`: a Python float divided by a BF16 tensor,
 * which torch evaluates as amax.reciprocal() * 2688 (Tensor.__rtruediv__), so the reciprocal is
 * rounded to BF16 before the product is. That is not the single rounding bf16(2688 / amax) that
 * the spec (§2.2) and pack.h's comment state: amax = 7.5 gives 360, not 358 (checked against
 * compressed-tensors 0.20 by tests/interop); amax = 3 (§6.2) gives 896 either way.
 *
 * Sign rule: cast_to_fp4 multiplies the rounded magnitude by torch.sign(y) and the packer takes
 * torch.signbit, so a negative y that rounds to 0 gives code 0x8, while y = ±0.0 gives 0x0
 * (torch.sign(-0.0) is +0.0). Dequantization follows compressed-tensors' `_dequantize`:
 * E2M1[code] · f32(sc / gs), the effective scale rounded first (its decompress then rounds the
 * product to BF16). */
#include "quant/pack.h"

#include <math.h>

#include "formats/fp.h"

#define NVFP4_BLOCK 16
#define E4M3_EPS 0x20u /* 0.125 = 2^(4-7): the local scale that replaces 0 */

static int nvfp4_check(int64_t n, int64_t k, float gs, const char *what, dsv4_err *e)
{
    if (n < 0 || k < 0 || k % NVFP4_BLOCK != 0)
        return dsv4_fail(e, "NVFP4 %s: shape [%lld, %lld] needs K a multiple of %d", what, (long long)n,
                         (long long)k, NVFP4_BLOCK);
    if (n > 0 && k > INT64_MAX / 4 / n)
        return dsv4_fail(e, "NVFP4 %s: shape [%lld, %lld] is too large", what, (long long)n, (long long)k);
    if (!(gs > 0.0f) || !isfinite(gs))
        return dsv4_fail(e, "NVFP4 %s: global scale %g must be finite and positive", what, (double)gs);
    return 0;
}

float dsv4_bf16_amax(const uint16_t *w, size_t n)
{
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(dsv4_bf16_to_f32(w[i]));
        if (isnan(a))
            return a; /* torch.amax propagates NaN */
        m = a > m ? a : m;
    }
    return m;
}

float dsv4_nvfp4_global_scale(float amax)
{
    float a = fabsf(dsv4_bf16_to_f32(dsv4_f32_to_bf16(amax)));
    if (isnan(a))
        return 1.0f;
    a = a < 0x1p-126f ? 0x1p-126f : a;
    float inv = dsv4_bf16_to_f32(dsv4_f32_to_bf16(1.0f / a));
    float gs = dsv4_bf16_to_f32(dsv4_f32_to_bf16(inv * 2688.0f));
    return isfinite(gs) ? gs : 1.0f;
}

/* E2M1 code of one quantized value (after clamping), with compressed-tensors' sign rule. */
static uint8_t nvfp4_code(float y)
{
    y = y < -6.0f ? -6.0f : y > 6.0f ? 6.0f : y;
    return y == 0.0f ? 0 : dsv4_f32_to_e2m1(y);
}

int dsv4_nvfp4_rtn(const uint16_t *w, int64_t n, int64_t k, float gs, uint8_t *packed, uint8_t *scale,
                   dsv4_err *e)
{
    if (nvfp4_check(n, k, gs, "RTN", e))
        return -1;
    int64_t nb = k / NVFP4_BLOCK;
    for (int64_t r = 0; r < n; r++)
        for (int64_t b = 0; b < nb; b++) {
            const uint16_t *x = w + r * k + b * NVFP4_BLOCK;
            float v[NVFP4_BLOCK], amax = 0.0f;
            for (int i = 0; i < NVFP4_BLOCK; i++) {
                v[i] = dsv4_bf16_to_f32(x[i]);
                if (!isfinite(v[i]))
                    return dsv4_fail(e, "NVFP4 RTN: weight [%lld, %lld] is not finite", (long long)r,
                                     (long long)(b * NVFP4_BLOCK + i));
                amax = fabsf(v[i]) > amax ? fabsf(v[i]) : amax;
            }
            float loc = dsv4_bf16_to_f32(dsv4_f32_to_bf16(amax / 6.0f));
            uint8_t sc = dsv4_f32_to_e4m3(gs * loc, DSV4_FP_SAT);
            sc = sc == 0 ? (uint8_t)E4M3_EPS : sc;
            scale[r * nb + b] = sc;
            float eff = dsv4_e4m3_to_f32(sc) / gs;
            uint8_t *p = packed + r * (k / 2) + b * (NVFP4_BLOCK / 2);
            for (int i = 0; i < NVFP4_BLOCK; i += 2)
                p[i / 2] = (uint8_t)(nvfp4_code(v[i] / eff) | nvfp4_code(v[i + 1] / eff) << 4);
        }
    return 0;
}

void dsv4_nvfp4_pack(const uint8_t *codes, int64_t n, int64_t k, uint8_t *packed)
{
    int64_t nb = (k + 1) / 2;
    for (int64_t r = 0; r < n; r++) {
        const uint8_t *c = codes + r * k;
        uint8_t *p = packed + r * nb;
        for (int64_t j = 0; j < k / 2; j++)
            p[j] = (uint8_t)((c[2 * j] & 15u) | (c[2 * j + 1] & 15u) << 4);
        if (k % 2)
            p[nb - 1] = (uint8_t)(c[k - 1] & 15u);
    }
}

int dsv4_nvfp4_dequant(const uint8_t *packed, const uint8_t *scale, float gs, int64_t n, int64_t k,
                       float *out, dsv4_err *e)
{
    if (nvfp4_check(n, k, gs, "dequant", e))
        return -1;
    int64_t nb = k / NVFP4_BLOCK;
    for (int64_t r = 0; r < n; r++)
        for (int64_t b = 0; b < nb; b++) {
            float eff = dsv4_e4m3_to_f32(scale[r * nb + b]) / gs;
            const uint8_t *p = packed + r * (k / 2) + b * (NVFP4_BLOCK / 2);
            float *o = out + r * k + b * NVFP4_BLOCK;
            for (int i = 0; i < NVFP4_BLOCK; i += 2) {
                o[i] = dsv4_e2m1_to_f32(p[i / 2] & 15u) * eff;
                o[i + 1] = dsv4_e2m1_to_f32(p[i / 2] >> 4) * eff;
            }
        }
    return 0;
}
