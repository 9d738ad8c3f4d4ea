/* F8_E8M0 (e8m0fnu) <-> float32, including DeepSeek's ceil-to-power-of-two scale rule (see fp.h). */
#include "formats/fp.h"
#include "formats/fp_round.h"

float dsv4_e8m0_to_f32(uint8_t b)
{
    if (b == 0xFF)
        return dsv4_bits_f32(0x7FC00000u);
    if (b == 0)
        return dsv4_bits_f32(0x00400000u); /* 2^-127, a float32 subnormal */
    return dsv4_bits_f32((uint32_t)b << 23);
}

uint8_t dsv4_f32_to_e8m0(float x)
{
    uint32_t u = dsv4_f32_bits(x), e = (u >> 23) & 0xFFu;
    if ((u >> 31) || e == 0xFF || (u & 0x7FFFFFFFu) == 0)
        return 0xFF;
    /* Guard = the first dropped bit (worth half of the kept power of two); the kept LSB is the
     * implicit bit, 1 for normals, so every normal tie rounds up. */
    uint32_t g = (u >> 22) & 1u, rest = u & 0x3FFFFFu, lsb = e > 0;
    if (g && (rest || lsb))
        e++;
    return (uint8_t)e; /* e == 255 after a carry: NaN, as in ml_dtypes */
}

uint8_t dsv4_e8m0_ceil_pow2(float s)
{
    uint32_t u = dsv4_f32_bits(s), e = (u >> 23) & 0xFFu;
    if (e == 0xFF)
        return 0xFF;
    e += (u & 0x7FFFFFu) != 0;
    return (uint8_t)e;
}
