/* float-quantized FP8 with 128x128 blocks (quant/pack.h): compressed-tensors' RTN from BF16, its
 * dequantization, and the e8m0 -> BF16 scale conversion for release FP8 weights
 * (spec/formats_algorithms.md §2.3, §6.3).
 *
 * RTN copies torch on a BF16 weight with BF16 scales: amax over the block (the zero padding of a
 * ragged block cannot raise it), s = bf16(f32(amax)/448) with 0 -> 2^-7, q = e4m3(clamp(bf16(w/s),
 * ±448)) where the quotient is rounded to BF16 before the FP8 cast (two roundings). Non-finite
 * weights are refused. */
#include "quant/pack.h"

#include <math.h>

#include "formats/fp.h"

#define BLK DSV4_FP8_BLOCK
#define BF16_EPS 0x3C00u /* 2^-7 */

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

static int fp8_check(int64_t n, int64_t k, const char *what, dsv4_err *e)
{
    if (n < 0 || k < 0)
        return dsv4_fail(e, "FP8 block %s: negative shape [%lld, %lld]", what, (long long)n, (long long)k);
    if (n > 0 && k > INT64_MAX / 4 / n)
        return dsv4_fail(e, "FP8 block %s: shape [%lld, %lld] is too large", what, (long long)n, (long long)k);
    return 0;
}

void dsv4_e8m0_to_bf16(const uint8_t *s, size_t n, uint16_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = dsv4_f32_to_bf16(dsv4_e8m0_to_f32(s[i])); /* 2^-127 is a BF16 subnormal: exact */
}

int dsv4_fp8_block_rtn(const uint16_t *w, int64_t n, int64_t k, uint8_t *q, uint16_t *scale, dsv4_err *e)
{
    if (fp8_check(n, k, "RTN", e))
        return -1;
    int64_t sc_cols = cdiv(k, BLK);
    for (int64_t br = 0; br < cdiv(n, BLK); br++)
        for (int64_t bc = 0; bc < sc_cols; bc++) {
            int64_t r0 = br * BLK, r1 = r0 + BLK < n ? r0 + BLK : n;
            int64_t c0 = bc * BLK, c1 = c0 + BLK < k ? c0 + BLK : k;
            float amax = 0.0f;
            for (int64_t r = r0; r < r1; r++)
                for (int64_t c = c0; c < c1; c++) {
                    float a = fabsf(dsv4_bf16_to_f32(w[r * k + c]));
                    if (!isfinite(a))
                        return dsv4_fail(e, "FP8 block RTN: weight [%lld, %lld] is not finite", (long long)r,
                                         (long long)c);
                    amax = a > amax ? a : amax;
                }
            uint16_t sb = dsv4_f32_to_bf16(amax / 448.0f);
            sb = sb == 0 ? (uint16_t)BF16_EPS : sb;
            scale[br * sc_cols + bc] = sb;
            float s = dsv4_bf16_to_f32(sb);
            for (int64_t r = r0; r < r1; r++)
                for (int64_t c = c0; c < c1; c++) {
                    float y = dsv4_bf16_to_f32(dsv4_f32_to_bf16(dsv4_bf16_to_f32(w[r * k + c]) / s));
                    q[r * k + c] = dsv4_f32_to_e4m3(y, DSV4_FP_SAT);
                }
        }
    return 0;
}

/* e4m3 (4 significant bits) times a BF16 scale (8 bits) is exact in float32. */
int dsv4_fp8_block_dequant_ct(const uint8_t *q, const uint16_t *scale, int64_t n, int64_t k, float *out,
                              dsv4_err *e)
{
    if (fp8_check(n, k, "dequant", e))
        return -1;
    int64_t sc_cols = cdiv(k, BLK);
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < k; c++)
            out[r * k + c] = dsv4_e4m3_to_f32(q[r * k + c]) * dsv4_bf16_to_f32(scale[(r / BLK) * sc_cols + c / BLK]);
    return 0;
}
