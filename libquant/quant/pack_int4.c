/* pack-quantized INT4 (quant/pack.h): compressed-tensors' symmetric group RTN, the int32 nibble
 * packing and its inverse, and the BF16 dequantization, bit for bit as compressed-tensors' torch
 * path computes them (spec/formats_algorithms.md §2.1, §6.1).
 *
 * The arithmetic copies torch's dtype promotion on a BF16 weight with BF16 scales: the scale is
 * bf16(f32(amax)/7.5); x/s is a BF16 division (f32 quotient rounded to BF16) that is then rounded
 * half-to-even to an integer, so a value is rounded twice. Non-finite weights are refused: torch
 * would turn them into arbitrary codes. */
#include "quant/pack.h"

#include <math.h>

#include "formats/fp.h"
#include "formats/fp_round.h"

#define BF16_EPS 0x3C00u /* 2^-7, torch.finfo(bfloat16).eps: the scale that replaces 0 */

/* Shape contract shared by RTN and dequant. */
static int int4_check(int64_t n, int64_t k, int group, dsv4_err *e)
{
    if (n < 0 || k < 0)
        return dsv4_fail(e, "INT4: negative shape [%lld, %lld]", (long long)n, (long long)k);
    if (group <= 0 || k % group != 0 || k % 8 != 0)
        return dsv4_fail(e, "INT4: K = %lld must be a multiple of the group (%d) and of 8", (long long)k, group);
    if (n > 0 && k > INT64_MAX / 2 / n)
        return dsv4_fail(e, "INT4: shape [%lld, %lld] is too large", (long long)n, (long long)k);
    return 0;
}

/* round_half_even(clamp(bf16(x / s), -8, 7)), as torch does on BF16 tensors: an IEEE division,
 * the quotient rounded to BF16, clamped, then rounded to an integer by adding and subtracting
 * 1.5·2^23 (exact round-half-even for |y| < 2^22 in the default rounding mode). Inline bit
 * operations only, so the loop vectorizes. */
static inline int8_t int4_code(uint16_t xb, float s)
{
    float x = dsv4_bits_f32((uint32_t)xb << 16);
    float y = dsv4_bits_f32((uint32_t)dsv4_bf16_from_bits(dsv4_f32_bits(x / s)) << 16);
    y = y < -8.0f ? -8.0f : y > 7.0f ? 7.0f : y;
    return (int8_t)((y + 12582912.0f) - 12582912.0f);
}

int dsv4_int4_rtn(const uint16_t *w, int64_t n, int64_t k, int group, int32_t *packed, uint16_t *scale,
                  dsv4_err *e)
{
    if (int4_check(n, k, group, e))
        return -1;
    int64_t ng = k / group;
    int8_t q8[8];
    for (int64_t r = 0; r < n; r++) {
        const uint16_t *row = w + r * k;
        uint32_t *pw = (uint32_t *)(packed + r * (k / 8));
        for (int64_t g = 0; g < ng; g++) {
            const uint16_t *x = row + g * group;
            float amax = 0.0f;
            for (int i = 0; i < group; i++) {
                float a = fabsf(dsv4_bf16_to_f32(x[i]));
                if (!isfinite(a))
                    return dsv4_fail(e, "INT4 RTN: weight [%lld, %lld] is not finite", (long long)r,
                                     (long long)(g * group + i));
                amax = a > amax ? a : amax;
            }
            uint16_t sb = dsv4_f32_to_bf16(amax / 7.5f);
            sb = sb == 0 ? (uint16_t)BF16_EPS : sb;
            scale[r * ng + g] = sb;
            float s = dsv4_bf16_to_f32(sb);
            for (int i = 0; i < group; i += 8) {
                for (int j = 0; j < 8; j++)
                    q8[j] = int4_code(x[i + j], s);
                uint32_t word = 0;
                for (int j = 0; j < 8; j++)
                    word |= (uint32_t)((q8[j] + 8) & 15) << (4 * j);
                pw[(g * group + i) / 8] = word;
            }
        }
    }
    return 0;
}

/* Rows are padded with u = 0 (q = -8) to whole words, as compressed-tensors' pack_to_int32 does. */
void dsv4_int4_pack(const int8_t *q, int64_t n, int64_t k, int32_t *packed)
{
    int64_t nw = (k + 7) / 8;
    for (int64_t r = 0; r < n; r++)
        for (int64_t wi = 0; wi < nw; wi++) {
            uint32_t word = 0;
            for (int64_t j = 0; j < 8 && wi * 8 + j < k; j++)
                word |= (uint32_t)((q[r * k + wi * 8 + j] + 8) & 15) << (4 * j);
            ((uint32_t *)packed)[r * nw + wi] = word;
        }
}

void dsv4_int4_unpack(const int32_t *packed, int64_t n, int64_t k, int8_t *q)
{
    int64_t nw = (k + 7) / 8;
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < k; c++) {
            uint32_t word = ((const uint32_t *)packed)[r * nw + c / 8];
            q[r * k + c] = (int8_t)((int)((word >> (4 * (c % 8))) & 15u) - 8);
        }
}

/* (u - 8) · s: an exact product of at most 12 significant bits, rounded to BF16. */
int dsv4_int4_dequant(const int32_t *packed, const uint16_t *scale, int64_t n, int64_t k, int group,
                      uint16_t *out, dsv4_err *e)
{
    if (int4_check(n, k, group, e))
        return -1;
    int64_t ng = k / group, nw = k / 8;
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < k; c++) {
            uint32_t word = ((const uint32_t *)packed)[r * nw + c / 8];
            float q = (float)((int)((word >> (4 * (c % 8))) & 15u) - 8);
            out[r * k + c] = dsv4_f32_to_bf16(q * dsv4_bf16_to_f32(scale[r * ng + c / group]));
        }
    return 0;
}
