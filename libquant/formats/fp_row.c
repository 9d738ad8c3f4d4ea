/* Row-at-a-time and element-wise access to float tensors of any byte-sized float dtype (see fp.h),
 * for tools that compute statistics or convert whole tensors. Data is little-endian. */
#include "formats/fp.h"
#include "formats/fp_round.h"

#include <math.h>

static uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t ld64(const uint8_t *p) { return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32; }

static void st16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void st32(uint8_t *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

float dsv4_decode_elem(dsv4_dtype t, const void *base, size_t i)
{
    const uint8_t *p = base;
    switch (t) {
    case DSV4_F8_E4M3: return dsv4_e4m3_to_f32(p[i]);
    case DSV4_F8_E5M2: return dsv4_e5m2_to_f32(p[i]);
    case DSV4_F8_E8M0: return dsv4_e8m0_to_f32(p[i]);
    case DSV4_BF16: return dsv4_bf16_to_f32(ld16(p + 2 * i));
    case DSV4_F16: return dsv4_f16_to_f32(ld16(p + 2 * i));
    case DSV4_F32: return dsv4_bits_f32(ld32(p + 4 * i));
    case DSV4_F64: {
        uint64_t u = ld64(p + 8 * i);
        double d;
        memcpy(&d, &u, sizeof d);
        return (float)d;
    }
    default: return NAN;
    }
}

int dsv4_decode_row(dsv4_dtype t, const void *src, float *dst, size_t n)
{
    if (!dsv4_dtype_is_float(t))
        return -1;
    for (size_t i = 0; i < n; i++)
        dst[i] = dsv4_decode_elem(t, src, i);
    return 0;
}

int dsv4_encode_row(dsv4_dtype t, const float *src, void *dst, size_t n, dsv4_fp_mode mode)
{
    uint8_t *p = dst;
    switch (t) {
    case DSV4_F8_E4M3:
        for (size_t i = 0; i < n; i++)
            p[i] = dsv4_f32_to_e4m3(src[i], mode);
        return 0;
    case DSV4_F8_E5M2:
        for (size_t i = 0; i < n; i++)
            p[i] = dsv4_f32_to_e5m2(src[i], mode);
        return 0;
    case DSV4_F8_E8M0:
        for (size_t i = 0; i < n; i++)
            p[i] = dsv4_f32_to_e8m0(src[i]);
        return 0;
    case DSV4_BF16:
        for (size_t i = 0; i < n; i++)
            st16(p + 2 * i, dsv4_f32_to_bf16(src[i]));
        return 0;
    case DSV4_F16:
        for (size_t i = 0; i < n; i++)
            st16(p + 2 * i, dsv4_f32_to_f16(src[i]));
        return 0;
    case DSV4_F32:
        for (size_t i = 0; i < n; i++)
            st32(p + 4 * i, dsv4_f32_bits(src[i]));
        return 0;
    default:
        return -1;
    }
}
