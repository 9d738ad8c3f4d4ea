/* The per-element arithmetic of GPTQ's quantizers (spec/formats_algorithms.md §2.1, §2.2, §4.6,
 * §4.7), shared by the CPU op (kernels/cpu/ops_gptq.c) and the CUDA kernels
 * (kernels/cuda/ops_gptq.cu) so both make the same decisions bit for bit. Everything here compiles
 * as host C11 and as CUDA device code (DSV4_HD, formats/fp_round.h).
 *
 * The arithmetic is compressed-tensors' compress path on the values it is given, so that the
 * integers and codes GPTQ chooses for a column are the ones compressed-tensors would store for the
 * BF16 values GPTQ writes back (and so that GPTQ with H = I gives exactly round-to-nearest):
 *   INT4  (symmetric, groups):  s = bf16(amax / 7.5) (0 -> 2^-7);  q = rne(clamp(bf16(w / s), -8, 7));
 *                               value = bf16(q · s)
 *   NVFP4 (groups of 16, global scale gs):  sc = e4m3_rne_sat(gs · bf16(amax / 6)) (0 -> 0.125);
 *                               eff = f32(e4m3(sc) / gs);  code = e2m1_rne(clamp(w / eff, ±6)) with
 *                               compressed-tensors' sign rule;  value = E2M1[code] · eff
 * llm-compressor divides the fp32 column by the scale without the BF16 rounding of w / s
 * (§4.6); the integers can differ where w / s lies within a BF16 ulp of a half-integer. Ours are
 * the integers compressed-tensors' compressor stores for our written values either way. */
#ifndef DSV4_GPTQ_MATH_H
#define DSV4_GPTQ_MATH_H

#include <math.h>
#include <stdint.h>

#include "formats/fp_round.h"

#define DSV4_GQ_BF16_EPS (0x1p-7f)     /* torch.finfo(bfloat16).eps: the INT4 scale that replaces 0 */
#define DSV4_GQ_E4M3_EPS 0x20u         /* e4m3 code of 0.125: the NVFP4 local scale that replaces 0 */
#define DSV4_GQ_NVFP4_GROUP 16

/* MSE observer (llm-compressor `mse`, §4.7): shrink p = 1 - i/grid for i < maxshrink·grid,
 * error Σ|fq(x) - x|^norm, stop after `patience` steps without improvement. */
#define DSV4_GQ_MSE_GRID 100
#define DSV4_GQ_MSE_STEPS 20           /* maxshrink 0.20 × grid 100 */
#define DSV4_GQ_MSE_PATIENCE 5
#define DSV4_GQ_MSE_NORM 2.4f

DSV4_HD float dsv4_gq_bf16(float x) /* x rounded to BF16 (RNE), as a float */
{
    return dsv4_bits_f32((uint32_t)dsv4_bf16_from_bits(dsv4_f32_bits(x)) << 16);
}

DSV4_HD float dsv4_gq_fabs(float x) { return dsv4_bits_f32(dsv4_f32_bits(x) & 0x7FFFFFFFu); }

/* ---- INT4 ---- */

DSV4_HD float dsv4_gq_int4_scale(float amax) /* bf16(amax / 7.5), 0 -> 2^-7 */
{
    float s = dsv4_gq_bf16(amax / 7.5f);
    return s == 0.0f ? DSV4_GQ_BF16_EPS : s;
}

DSV4_HD int dsv4_gq_int4_q(float w, float s) /* rne(clamp(bf16(w / s), -8, 7)) */
{
    float y = dsv4_gq_bf16(w / s);
    y = y < -8.0f ? -8.0f : y > 7.0f ? 7.0f : y;
    return (int)((y + 12582912.0f) - 12582912.0f);
}

DSV4_HD float dsv4_gq_int4_value(int q, float s) { return dsv4_gq_bf16((float)q * s); }

/* ---- NVFP4 ---- */

DSV4_HD float dsv4_gq_e2m1_value(uint32_t code)
{
    uint32_t m = code & 7u;
    float v = m < 4u ? 0.5f * (float)m : m == 4u ? 2.0f : m == 5u ? 3.0f : m == 6u ? 4.0f : 6.0f;
    return (code & 8u) ? -v : v;
}

/* E2M1 code of y after clamping to ±6, with compressed-tensors' sign rule (a negative y that
 * rounds to zero keeps the sign bit; ±0.0 gives 0). Equals quant/pack_nvfp4.c's nvfp4_code. */
DSV4_HD uint32_t dsv4_gq_e2m1_code(float y)
{
    y = y < -6.0f ? -6.0f : y > 6.0f ? 6.0f : y;
    if (y == 0.0f)
        return 0;
    uint32_t u = dsv4_f32_bits(y), sign = (u >> 28) & 8u, a = u & 0x7FFFFFFFu;
    uint32_t mag = dsv4_round_mag(a, 1, 1);
    return sign | (mag > 7u ? 7u : mag);
}

DSV4_HD float dsv4_gq_e4m3_value(uint32_t b)
{
    uint32_t sign = (b & 0x80u) << 24, e = (b >> 3) & 0xFu, m = b & 7u;
    if (e == 0) {
        float v = (float)m * 0x1p-9f;
        return sign ? -v : v;
    }
    return dsv4_bits_f32(sign | ((e + 120u) << 23) | (m << 20));
}

/* e4m3fn code of a finite non-negative x, RNE, saturating at 448 (formats/fp8.c DSV4_FP_SAT). */
DSV4_HD uint32_t dsv4_gq_e4m3_code(float x)
{
    uint32_t a = dsv4_f32_bits(x) & 0x7FFFFFFFu;
    uint32_t mag = a >= 0x7F800000u ? 0x7Eu : dsv4_round_mag(a, 3, 7);
    return mag > 0x7Eu ? 0x7Eu : mag;
}

/* Local scale code of a 16-group with largest magnitude amax under global scale gs. */
DSV4_HD uint32_t dsv4_gq_nvfp4_scale(float amax, float gs)
{
    uint32_t sc = dsv4_gq_e4m3_code(gs * dsv4_gq_bf16(amax / 6.0f));
    return sc == 0 ? DSV4_GQ_E4M3_EPS : sc;
}

DSV4_HD float dsv4_gq_nvfp4_eff(uint32_t sc, float gs) { return dsv4_gq_e4m3_value(sc) / gs; }

/* ---- observers over one group of n values (stride apart) ---- */

DSV4_HD float dsv4_gq_amax(const float *x, int n, int64_t stride)
{
    float m = 0.0f;
    for (int i = 0; i < n; i++) {
        float a = dsv4_gq_fabs(x[(int64_t)i * stride]);
        m = a > m ? a : m;
    }
    return m;
}

/* The INT4 scale the MSE observer picks for a group (p·amax shrunk together, symmetric). */
DSV4_HD float dsv4_gq_int4_scale_mse(const float *x, int n, int64_t stride)
{
    float amax = dsv4_gq_amax(x, n, stride), best_s = dsv4_gq_int4_scale(amax), best = -1.0f;
    int since = 0;
    for (int i = 0; i < DSV4_GQ_MSE_STEPS; i++) {
        float p = 1.0f - (float)i / (float)DSV4_GQ_MSE_GRID, s = dsv4_gq_int4_scale(p * amax), err = 0.0f;
        for (int j = 0; j < n; j++) {
            float w = x[(int64_t)j * stride];
            err += powf(dsv4_gq_fabs(dsv4_gq_int4_value(dsv4_gq_int4_q(w, s), s) - w), DSV4_GQ_MSE_NORM);
        }
        if (best < 0.0f || err < best) {
            best = err;
            best_s = s;
            since = 0;
        } else if (++since >= DSV4_GQ_MSE_PATIENCE) {
            break;
        }
    }
    return best_s;
}

/* The NVFP4 local scale code the MSE observer picks for a 16-group under global scale gs. */
DSV4_HD uint32_t dsv4_gq_nvfp4_scale_mse(const float *x, int n, int64_t stride, float gs)
{
    float amax = dsv4_gq_amax(x, n, stride), best = -1.0f;
    uint32_t best_sc = dsv4_gq_nvfp4_scale(amax, gs);
    int since = 0;
    for (int i = 0; i < DSV4_GQ_MSE_STEPS; i++) {
        float p = 1.0f - (float)i / (float)DSV4_GQ_MSE_GRID, err = 0.0f;
        uint32_t sc = dsv4_gq_nvfp4_scale(p * amax, gs);
        float eff = dsv4_gq_nvfp4_eff(sc, gs);
        for (int j = 0; j < n; j++) {
            float w = x[(int64_t)j * stride];
            err += powf(dsv4_gq_fabs(dsv4_gq_e2m1_value(dsv4_gq_e2m1_code(w / eff)) * eff - w), DSV4_GQ_MSE_NORM);
        }
        if (best < 0.0f || err < best) {
            best = err;
            best_sc = sc;
            since = 0;
        } else if (++since >= DSV4_GQ_MSE_PATIENCE) {
            break;
        }
    }
    return best_sc;
}

#endif
