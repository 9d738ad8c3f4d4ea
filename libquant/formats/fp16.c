/* BF16 and F16 <-> float32 (see fp.h). */
#include "formats/fp.h"
#include "formats/fp_round.h"

float dsv4_bf16_to_f32(uint16_t h)
{
    return dsv4_bits_f32((uint32_t)h << 16);
}

uint16_t dsv4_f32_to_bf16(float x)
{
    return dsv4_bf16_from_bits(dsv4_f32_bits(x));
}

float dsv4_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    if (e == 0) {
        float v = (float)m * 0x1p-24f; /* subnormal (or zero): exact */
        return sign ? -v : v;
    }
    if (e == 31)
        return dsv4_bits_f32(sign | 0x7F800000u | (m << 13));
    return dsv4_bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

uint16_t dsv4_f32_to_f16(float x)
{
    uint32_t u = dsv4_f32_bits(x), sign = (u >> 16) & 0x8000u, a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u)
        return (uint16_t)(sign | 0x7E00u);
    uint32_t mag = a == 0x7F800000u ? 0x7C00u : dsv4_round_mag(a, 10, 15);
    if (mag > 0x7C00u)
        mag = 0x7C00u;
    return (uint16_t)(sign | mag);
}
