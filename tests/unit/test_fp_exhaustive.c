/* Every code of every narrow float format decodes and re-encodes to itself (NaN to NaN), decoding
 * agrees with the textbook formula, and the worked examples of the specs come out as written
 * (formats_algorithms.md §2.2 E2M1 thresholds, §6.4 DeepSeek act_quant with ue8m0). */
#include "harness.h"
#include "formats/fp.h"

#include <math.h>
#include <string.h>

static uint32_t f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

/* (-1)^s · 2^(e−bias) · (1 + m/2^mbits), or the subnormal form when e == 0, computed in double. */
static double textbook(unsigned code, int ebits, int mbits, int bias)
{
    unsigned s = (code >> (ebits + mbits)) & 1u, e = (code >> mbits) & ((1u << ebits) - 1),
             m = code & ((1u << mbits) - 1);
    double v = e ? ldexp(1.0 + ldexp(m, -mbits), (int)e - bias) : ldexp(m, 1 - bias - mbits);
    return s ? -v : v;
}

TEST(fp_bf16_all_codes)
{
    for (uint32_t c = 0; c < 65536; c++) {
        float v = dsv4_bf16_to_f32((uint16_t)c);
        unsigned e = (c >> 7) & 0xFF;
        if (e == 0xFF && (c & 0x7F)) {
            CHECK_MSG(isnan(v), "bf16 0x%04x should decode to NaN", c);
            CHECK_EQ_INT(dsv4_f32_to_bf16(v), (c & 0x8000) | 0x7FC0);
            continue;
        }
        if (e != 0xFF)
            CHECK_MSG((double)v == textbook(c, 8, 7, 127), "bf16 0x%04x decodes to %g", c, (double)v);
        CHECK_MSG(dsv4_f32_to_bf16(v) == c, "bf16 0x%04x -> %g -> 0x%04x", c, (double)v, dsv4_f32_to_bf16(v));
    }
}

TEST(fp_f16_all_codes)
{
    for (uint32_t c = 0; c < 65536; c++) {
        float v = dsv4_f16_to_f32((uint16_t)c);
        unsigned e = (c >> 10) & 0x1F;
        if (e == 0x1F && (c & 0x3FF)) {
            CHECK_MSG(isnan(v), "f16 0x%04x should decode to NaN", c);
            CHECK_EQ_INT(dsv4_f32_to_f16(v), (c & 0x8000) | 0x7E00);
            continue;
        }
        if (e != 0x1F)
            CHECK_MSG((double)v == textbook(c, 5, 10, 15), "f16 0x%04x decodes to %g", c, (double)v);
        else
            CHECK(isinf(v) && (v < 0) == !!(c & 0x8000));
        CHECK_MSG(dsv4_f32_to_f16(v) == c, "f16 0x%04x -> %g -> 0x%04x", c, (double)v, dsv4_f32_to_f16(v));
    }
}

TEST(fp_e4m3_all_codes)
{
    float prev = -1.0f;
    for (unsigned c = 0; c < 256; c++) {
        float v = dsv4_e4m3_to_f32((uint8_t)c);
        if ((c & 0x7F) == 0x7F) {
            CHECK(isnan(v));
        } else {
            CHECK_MSG((double)v == textbook(c, 4, 3, 7), "e4m3 0x%02x decodes to %g", c, (double)v);
            if (c < 0x80) {
                CHECK(v > prev || c == 0);
                prev = v;
            }
        }
        /* every code, the NaNs included, comes back (the NaN keeps its sign) */
        CHECK_EQ_INT(dsv4_f32_to_e4m3(v, DSV4_FP_SAT), c);
        CHECK_EQ_INT(dsv4_f32_to_e4m3(v, DSV4_FP_CAST), c);
    }
    CHECK(dsv4_e4m3_to_f32(0x7E) == 448.0f);
    CHECK(dsv4_e4m3_to_f32(0x01) == 0x1p-9f);
    CHECK(dsv4_e4m3_to_f32(0x08) == 0x1p-6f);
    CHECK(f32_bits(dsv4_e4m3_to_f32(0x80)) == 0x80000000u);
    /* overflow: saturate vs the torch/ml_dtypes cast (no inf in e4m3fn) */
    CHECK_EQ_INT(dsv4_f32_to_e4m3(464.0f, DSV4_FP_CAST), 0x7E); /* tie → even (448) */
    CHECK_EQ_INT(dsv4_f32_to_e4m3(464.0001f, DSV4_FP_CAST), 0x7F);
    CHECK_EQ_INT(dsv4_f32_to_e4m3(-1e30f, DSV4_FP_CAST), 0xFF);
    CHECK_EQ_INT(dsv4_f32_to_e4m3(INFINITY, DSV4_FP_CAST), 0x7F);
    CHECK_EQ_INT(dsv4_f32_to_e4m3(-1e30f, DSV4_FP_SAT), 0xFE);
    CHECK_EQ_INT(dsv4_f32_to_e4m3(INFINITY, DSV4_FP_SAT), 0x7E);
    CHECK_EQ_INT(dsv4_f32_to_e4m3(NAN, DSV4_FP_SAT), 0x7F);
    CHECK_EQ_INT(dsv4_f32_to_e4m3(0x1p-10f, DSV4_FP_SAT), 0x00);  /* tie with 2^-9 → even (0) */
    CHECK_EQ_INT(dsv4_f32_to_e4m3(-0x1p-11f, DSV4_FP_SAT), 0x80); /* −0 */
}

TEST(fp_e5m2_all_codes)
{
    for (unsigned c = 0; c < 256; c++) {
        float v = dsv4_e5m2_to_f32((uint8_t)c);
        unsigned mag = c & 0x7F;
        if (mag > 0x7C) {
            CHECK(isnan(v));
            CHECK_EQ_INT(dsv4_f32_to_e5m2(v, DSV4_FP_CAST), (c & 0x80) | 0x7E);
            continue;
        }
        if (mag == 0x7C) {
            CHECK(isinf(v));
            CHECK_EQ_INT(dsv4_f32_to_e5m2(v, DSV4_FP_SAT), (c & 0x80) | 0x7B);
        } else {
            CHECK_MSG((double)v == textbook(c, 5, 2, 15), "e5m2 0x%02x decodes to %g", c, (double)v);
            CHECK_EQ_INT(dsv4_f32_to_e5m2(v, DSV4_FP_SAT), c);
        }
        CHECK_EQ_INT(dsv4_f32_to_e5m2(v, DSV4_FP_CAST), c);
    }
    CHECK(dsv4_e5m2_to_f32(0x7B) == 57344.0f);
    CHECK(dsv4_e5m2_to_f32(0x01) == 0x1p-16f);
    CHECK_EQ_INT(dsv4_f32_to_e5m2(61440.0f, DSV4_FP_CAST), 0x7C); /* tie → even (inf) */
    CHECK_EQ_INT(dsv4_f32_to_e5m2(61439.99f, DSV4_FP_CAST), 0x7B);
    CHECK_EQ_INT(dsv4_f32_to_e5m2(61440.0f, DSV4_FP_SAT), 0x7B);
}

TEST(fp_e8m0_all_codes)
{
    for (unsigned c = 0; c < 256; c++) {
        float v = dsv4_e8m0_to_f32((uint8_t)c);
        if (c == 0xFF)
            CHECK(isnan(v));
        else
            CHECK_MSG((double)v == ldexp(1.0, (int)c - 127), "e8m0 0x%02x decodes to %g", c, (double)v);
        CHECK_EQ_INT(dsv4_f32_to_e8m0(v), c);
        if (c >= 1) /* 2^-127 is a float32 subnormal, for which the bit rule gives 2^-126 */
            CHECK_EQ_INT(dsv4_e8m0_ceil_pow2(v), c);
    }
    /* the ml_dtypes cast: linear ties go up, no zero, no sign */
    CHECK_EQ_INT(dsv4_f32_to_e8m0(1.5f), 128);
    CHECK_EQ_INT(dsv4_f32_to_e8m0(3.0f), 129);
    CHECK_EQ_INT(dsv4_f32_to_e8m0(0.75f), 127);
    CHECK_EQ_INT(dsv4_f32_to_e8m0(1.4999999f), 127);
    CHECK_EQ_INT(dsv4_f32_to_e8m0(0.0f), 0xFF);
    CHECK_EQ_INT(dsv4_f32_to_e8m0(-1.0f), 0xFF);
    CHECK_EQ_INT(dsv4_f32_to_e8m0(0x1.8p127f), 0xFF); /* rounds past 2^127 */
    /* DeepSeek's fast_round_scale */
    CHECK_EQ_INT(dsv4_e8m0_ceil_pow2(1.0f), 127);
    CHECK_EQ_INT(dsv4_e8m0_ceil_pow2(1.0000001f), 128);
    CHECK_EQ_INT(dsv4_e8m0_ceil_pow2(0.75f), 127);
    CHECK_EQ_INT(dsv4_e8m0_ceil_pow2(0x1p127f), 254);
    CHECK_EQ_INT(dsv4_e8m0_ceil_pow2(0x1.000002p127f), 255);
    CHECK_EQ_INT(dsv4_e8m0_ceil_pow2(INFINITY), 255);
    CHECK_EQ_INT(dsv4_e8m0_ceil_pow2(NAN), 255);
    CHECK_EQ_INT(dsv4_e8m0_ceil_pow2(0.0f), 0);
}

TEST(fp_e2m1_all_codes)
{
    static const float want[16] = {0, .5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -.5f, -1, -1.5f, -2, -3, -4, -6};
    for (unsigned c = 0; c < 16; c++) {
        float v = dsv4_e2m1_to_f32((uint8_t)c);
        CHECK(f32_bits(v) == f32_bits(want[c]));
        CHECK_EQ_INT(dsv4_f32_to_e2m1(v), c);
    }
    /* formats_algorithms.md §2.2: thresholds and ties to even */
    static const float x[] = {0.25f, 0.2500001f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 5.0001f, 7.0f, INFINITY};
    static const unsigned code[] = {0, 1, 2, 2, 4, 4, 6, 6, 7, 7, 7};
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) {
        CHECK_EQ_INT(dsv4_f32_to_e2m1(x[i]), code[i]);
        CHECK_EQ_INT(dsv4_f32_to_e2m1(-x[i]), code[i] | 8);
    }
    CHECK_EQ_INT(dsv4_f32_to_e2m1(-0.1f), 0x8); /* small negatives become −0 */
    CHECK_EQ_INT(dsv4_f32_to_e2m1(NAN), 0x0);
    CHECK_EQ_INT(dsv4_f32_to_e2m1(-NAN), 0x0);
}

/* formats_algorithms.md §6.4: one 128-block of bf16 activations quantized with a ue8m0 scale. */
TEST(fp_spec_act_quant_example)
{
    static const float x[8] = {3.0f, -1.5f, 0.10009765625f, 0.0f, -0.00390625f, 2.90625f, 1.0f, -3.0f};
    static const uint8_t want[8] = {0x7C, 0xF4, 0x55, 0x00, 0xB0, 0x7C, 0x70, 0xFC};
    float amax = 3.0f;
    uint8_t sb = dsv4_e8m0_ceil_pow2(amax * (1.0f / 448.0f));
    CHECK_EQ_INT(sb, 120);
    float s = dsv4_e8m0_to_f32(sb);
    for (int i = 0; i < 8; i++)
        CHECK_EQ_INT(dsv4_f32_to_e4m3(x[i] / s, DSV4_FP_SAT), want[i]);
    CHECK_EQ_INT(dsv4_f32_to_bf16(2.9f), 0x403A); /* bf16(2.9) = 2.90625 */
}

TEST(fp_decode_elem_all_float_dtypes)
{
    uint8_t buf[16];
    double d = -1.5;
    float f = 0.15625f;
    memcpy(buf, &d, 8);
    CHECK(dsv4_decode_elem(DSV4_F64, buf, 0) == -1.5f);
    memcpy(buf + 4, &f, 4);
    CHECK(dsv4_decode_elem(DSV4_F32, buf, 1) == 0.15625f);
    uint8_t h[4] = {0x00, 0x3C, 0x80, 0xBF}; /* f16 1.0; bf16 −1.0 */
    CHECK(dsv4_decode_elem(DSV4_F16, h, 0) == 1.0f);
    CHECK(dsv4_decode_elem(DSV4_BF16, h, 1) == -1.0f);
    uint8_t b[3] = {0x7E, 0x7B, 0x7F};
    CHECK(dsv4_decode_elem(DSV4_F8_E4M3, b, 0) == 448.0f);
    CHECK(dsv4_decode_elem(DSV4_F8_E5M2, b, 1) == 57344.0f);
    CHECK(dsv4_decode_elem(DSV4_F8_E8M0, b, 2) == 1.0f);
    CHECK(isnan(dsv4_decode_elem(DSV4_I8, b, 0)));
    for (int t = 0; t < DSV4_DTYPE_COUNT; t++) {
        float out[1];
        int ok = dsv4_decode_row((dsv4_dtype)t, buf, out, 1) == 0;
        CHECK_EQ_INT(ok, dsv4_dtype_is_float((dsv4_dtype)t));
    }
    float in[2] = {1.0f, -2.0f};
    uint8_t o[8];
    CHECK(dsv4_encode_row(DSV4_I32, in, o, 2, DSV4_FP_SAT) == -1);
    CHECK(dsv4_encode_row(DSV4_F32, in, o, 2, DSV4_FP_SAT) == 0);
    CHECK(dsv4_decode_elem(DSV4_F32, o, 1) == -2.0f);
}
