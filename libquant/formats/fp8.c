/* F8_E4M3 (e4m3fn) and F8_E5M2 <-> float32 (see fp.h). */
#include "formats/fp.h"
#include "formats/fp_round.h"

float dsv4_e4m3_to_f32(uint8_t b)
{
    uint32_t sign = (uint32_t)(b & 0x80u) << 24, e = (b >> 3) & 0xFu, m = b & 7u;
    if (e == 0) {
        float v = (float)m * 0x1p-9f;
        return sign ? -v : v;
    }
    if (e == 15 && m == 7)
        return dsv4_bits_f32(sign | 0x7FC00000u);
    return dsv4_bits_f32(sign | ((e + 120u) << 23) | (m << 20));
}

uint8_t dsv4_f32_to_e4m3(float x, dsv4_fp_mode mode)
{
    uint32_t u = dsv4_f32_bits(x), sign = (u >> 24) & 0x80u, a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u)
        return (uint8_t)(sign | 0x7Fu);
    uint32_t mag = a == 0x7F800000u ? 0x7Fu : dsv4_round_mag(a, 3, 7);
    if (mag > 0x7Eu) /* past 448 (the tie 464 rounds to even, 448) */
        mag = mode == DSV4_FP_SAT ? 0x7Eu : 0x7Fu;
    return (uint8_t)(sign | mag);
}

float dsv4_e5m2_to_f32(uint8_t b)
{
    uint32_t sign = (uint32_t)(b & 0x80u) << 24, e = (b >> 2) & 0x1Fu, m = b & 3u;
    if (e == 0) {
        float v = (float)m * 0x1p-16f;
        return sign ? -v : v;
    }
    if (e == 31)
        return dsv4_bits_f32(sign | (m ? 0x7FC00000u : 0x7F800000u));
    return dsv4_bits_f32(sign | ((e + 112u) << 23) | (m << 21));
}

uint8_t dsv4_f32_to_e5m2(float x, dsv4_fp_mode mode)
{
    uint32_t u = dsv4_f32_bits(x), sign = (u >> 24) & 0x80u, a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u)
        return (uint8_t)(sign | 0x7Eu);
    uint32_t mag = a == 0x7F800000u ? 0x7Cu : dsv4_round_mag(a, 2, 15);
    if (mag >= 0x7Cu) /* past 57344 (the tie 61440 rounds to even, inf) */
        mag = mode == DSV4_FP_SAT ? 0x7Bu : 0x7Cu;
    return (uint8_t)(sign | mag);
}
