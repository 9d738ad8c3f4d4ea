/* Shared round-to-nearest-even step of the narrow float encoders (fp16.c, fp8.c, fp4.c). Internal
 * to libquant/formats: it turns a finite float32 magnitude into the magnitude code of a smaller
 * binary format, letting the caller decide what an out-of-range code means (inf, NaN or max). */
#ifndef DSV4_FP_ROUND_H
#define DSV4_FP_ROUND_H

#include <stdint.h>
#include <string.h>

/* The helpers below also compile as CUDA device code (kernels/gptq_math.h uses them in kernels). */
#ifdef __CUDACC__
#define DSV4_HD static __host__ __device__ __forceinline__
#else
#define DSV4_HD static inline
#endif

DSV4_HD uint32_t dsv4_f32_bits(float x)
{
#ifdef __CUDA_ARCH__
    return __float_as_uint(x);
#else
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
#endif
}

DSV4_HD float dsv4_bits_f32(uint32_t u)
{
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
#endif
}

/* v >> s rounded to nearest, ties to even (s >= 0; any s past the width of v gives 0). */
DSV4_HD uint32_t dsv4_rne_shift(uint32_t v, int s)
{
    if (s <= 0)
        return v;
    if (s > 31)
        return 0;
    uint32_t q = v >> s, rem = v & ((1u << s) - 1), half = 1u << (s - 1);
    if (rem > half || (rem == half && (q & 1u)))
        q++;
    return q;
}

/* Magnitude code (biased exponent << mbits | mantissa) of the finite float32 magnitude `abits`
 * (sign bit clear) in a binary format with mbits mantissa bits and exponent bias `bias`, with
 * subnormals and RNE. The code is not clamped: a value past the format's top exponent gives a
 * code at or above the first non-finite code, which the caller maps. */
DSV4_HD uint32_t dsv4_round_mag(uint32_t abits, int mbits, int bias)
{
    int ef = (int)(abits >> 23);
    if (ef != 0 && ef - 127 >= 1 - bias)
        return dsv4_rne_shift(abits - ((uint32_t)(127 - bias) << 23), 23 - mbits);
    uint32_t sig = ef ? ((abits & 0x7FFFFFu) | 0x800000u) : abits;
    int e = ef ? ef - 127 : -126;
    return dsv4_rne_shift(sig, (1 - bias - e) + (23 - mbits));
}

/* float32 bits -> bf16 bits, RNE; NaN becomes the quiet 0x7FC0 with the input's sign. Branch-free
 * (a + 0x7FFF + lsb never carries out for finite a; a carry past 0x7F7F lands on inf). */
DSV4_HD uint16_t dsv4_bf16_from_bits(uint32_t u)
{
    uint32_t a = u & 0x7FFFFFFFu, r = (a + 0x7FFFu + ((a >> 16) & 1u)) >> 16;
    r = a > 0x7F800000u ? 0x7FC0u : r;
    return (uint16_t)(((u >> 16) & 0x8000u) | r);
}

#endif
