/* nvfp4-pack-quantized RTN (quant/pack.h): the spec's worked example §6.2 byte for byte, the
 * global scale formula, the negative-zero sign rule, RTN against an independent reference (the
 * threshold table of compressed-tensors' cast_to_fp4) over every finite BF16 input, and dequant. */
#include "harness.h"
#include "formats/fp.h"
#include "quant/pack.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint16_t bf(float x) { return dsv4_f32_to_bf16(x); }

TEST(pack_nvfp4_spec_6_2)
{
    static const float x[32] = {0.125f, 0.375f, 0.625f, 1.25f, 1.75f, 2.5f, -0.05f, 3.0f,
                                -3.0f, -0.375f, 0.0f, 0.3f, -1.0f, 2.75f, -2.0f, 0.875f,
                                0.75f, -0.75f, 0.03125f, 0.09375f, -0.15625f, 0.2f, 0.3125f, 0.4375f,
                                -0.5f, 0.5625f, 0.6875f, -0.71875f, 0.046875f, -0.015625f, 0.25f, 0.125f};
    static const uint8_t want[16] = {0x20, 0x42, 0x66, 0x78, 0xAF, 0x10, 0x7C, 0x4E,
                                     0xF7, 0x20, 0x3A, 0x64, 0x6E, 0xF7, 0x81, 0x24};
    uint16_t w[32];
    uint8_t p[16], s[2];
    float d[32];
    dsv4_err e;
    for (int i = 0; i < 32; i++)
        w[i] = bf(x[i]);
    CHECK_EQ_INT(w[6], bf(-0.050048828125f));
    float amax = dsv4_bf16_amax(w, 32);
    CHECK(amax == 3.0f);
    float gs = dsv4_nvfp4_global_scale(amax);
    uint32_t gbits;
    memcpy(&gbits, &gs, 4);
    CHECK_EQ_INT(gbits, 0x44600000u); /* 896.0 */
    REQUIRE(dsv4_nvfp4_rtn(w, 1, 32, gs, p, s, &e) == 0);
    CHECK_EQ_INT(s[0], 0x7E);
    CHECK_EQ_INT(s[1], 0x6E);
    for (int i = 0; i < 16; i++)
        CHECK_MSG(p[i] == want[i], "byte %d: %02X != %02X", i, p[i], want[i]);
    REQUIRE(dsv4_nvfp4_dequant(p, s, gs, 1, 32, d, &e) == 0);
    CHECK(d[13] == 3.0f);
    CHECK(d[21] == 0.1875f);
    CHECK(d[6] == 0.0f && signbit(d[6])); /* code 0x8: -0 */
    CHECK(d[10] == 0.0f && !signbit(d[10]));
}

/* gs = bf16(bf16(1 / a) · 2688), a = bf16(amax) floored at 2^-126 (torch computes 2688 / amax as
 * amax.reciprocal() * 2688); non-finite results give 1. */
TEST(pack_nvfp4_global_scale_formula)
{
    CHECK(dsv4_nvfp4_global_scale(3.0f) == 896.0f);  /* 1/3 -> 0.333984375, · 2688 = 897.75 -> 896 */
    CHECK(dsv4_nvfp4_global_scale(1.0f) == 2688.0f);
    /* 1/7.5 -> 0.1337890625, · 2688 = 359.625 -> 360, where bf16(2688/7.5 = 358.4) would be 358:
     * compressed-tensors 0.20 gives 360 (tests/interop, the §6.1 weight) */
    CHECK(dsv4_nvfp4_global_scale(7.5f) == 360.0f);
    /* 0.7 -> 0.69921875, 1/0.69921875 -> 1.4296875, · 2688 = 3843 -> 3840 */
    CHECK(dsv4_nvfp4_global_scale(0.7f) == 3840.0f);
    CHECK(dsv4_nvfp4_global_scale(0.0f) == 1.0f); /* 2^126 · 2688 overflows */
    CHECK(dsv4_nvfp4_global_scale(NAN) == 1.0f);
    float inv = dsv4_bf16_to_f32(bf(1.0f / dsv4_bf16_to_f32(bf(1e30f))));
    CHECK(dsv4_nvfp4_global_scale(1e30f) == dsv4_bf16_to_f32(bf(inv * 2688.0f)));
    uint16_t w[4] = {bf(-5.0f), bf(2.0f), 0x8000, bf(4.5f)};
    CHECK(dsv4_bf16_amax(w, 4) == 5.0f);
    w[2] = 0xFFC0;
    CHECK(isnan(dsv4_bf16_amax(w, 4)));
    CHECK(dsv4_bf16_amax(w, 0) == 0.0f);
}

/* Negative values that round to zero give 0x8; ±0.0 itself gives 0x0 (torch.sign(-0.0) = +0). An
 * all-zero block gets the e4m3 eps 0.125 as its scale. */
TEST(pack_nvfp4_sign_rule_and_zero_block)
{
    uint16_t w[32] = {0};
    uint8_t p[16], s[2];
    dsv4_err e;
    w[0] = bf(6.0f);
    w[1] = bf(-0.01f); /* y = -0.01 -> -0 -> 0x8 */
    w[2] = 0x8000;     /* -0.0 -> 0x0 */
    w[3] = bf(0.01f);
    for (int i = 16; i < 32; i++)
        w[i] = i % 2 ? 0x8000 : 0;
    REQUIRE(dsv4_nvfp4_rtn(w, 1, 32, 1.0f, p, s, &e) == 0);
    CHECK_EQ_INT(s[0], 0x38); /* bf16(6/6) = 1 · gs 1 */
    CHECK_EQ_INT(p[0], 0x87);
    CHECK_EQ_INT(p[1], 0x00);
    CHECK_EQ_INT(s[1], 0x20);
    CHECK(dsv4_e4m3_to_f32(s[1]) == 0.125f);
    for (int i = 8; i < 16; i++)
        CHECK_EQ_INT(p[i], 0);
}

static uint16_t ref_bf16(double x)
{
    float f = (float)x;
    uint32_t b;
    memcpy(&b, &f, 4);
    b += 0x7FFF + ((b >> 16) & 1);
    return (uint16_t)(b >> 16);
}

/* compressed-tensors' cast_to_fp4 + pack_fp4_to_uint8, written as its threshold table. */
static uint8_t ref_code(float y)
{
    if (y > 6.0f)
        y = 6.0f;
    if (y < -6.0f)
        y = -6.0f;
    float a = fabsf(y);
    uint8_t m = a <= 0.25f ? 0 : a < 0.75f ? 1 : a <= 1.25f ? 2 : a < 1.75f ? 3 : a <= 2.5f ? 4 : a < 3.5f ? 5
              : a <= 5.0f ? 6 : 7;
    return (uint8_t)(m | (y < 0.0f ? 8 : 0));
}

/* Every finite BF16 value with |v| <= block amax, 15 to a block behind a leading ±amax, for several
 * (tensor amax, block amax) pairs: scales and codes equal the reference's. */
TEST(pack_nvfp4_rtn_matches_reference_on_all_bf16)
{
    static const float pairs[][2] = {{3.0f, 3.0f}, {3.0f, 0.75f}, {100.0f, 0.01f}, {1e-3f, 1e-3f},
                                     {7.0f, 1e-5f}, {1e4f, 1e-2f}, {0.3f, 0.2999f}};
    uint16_t *w = malloc(80000u * sizeof *w);
    uint8_t *p = malloc(40000u), *s = malloc(5000u);
    REQUIRE(w && p && s);
    dsv4_err e;
    for (size_t t = 0; t < sizeof pairs / sizeof pairs[0]; t++) {
        uint16_t am = bf(pairs[t][1]);
        float amf = dsv4_bf16_to_f32(am), gs = dsv4_nvfp4_global_scale(pairs[t][0]);
        int64_t n = 0;
        for (uint32_t v = 0; v < 65536u; v++) {
            float f = dsv4_bf16_to_f32((uint16_t)v);
            if (n % 16 == 0) {
                w[n] = (n / 16) % 2 ? am : (uint16_t)(am | 0x8000u);
                n++;
            }
            if (isfinite(f) && fabsf(f) <= amf)
                w[n++] = (uint16_t)v;
        }
        while (n % 16)
            w[n++] = 0;
        REQUIRE(dsv4_nvfp4_rtn(w, 1, n, gs, p, s, &e) == 0);
        float loc = dsv4_bf16_to_f32(ref_bf16((double)amf / 6.0));
        float scv = (float)((double)gs * loc);
        uint8_t sc = dsv4_f32_to_e4m3(scv > 448.0f ? 448.0f : scv, DSV4_FP_SAT);
        sc = sc ? sc : dsv4_f32_to_e4m3(0.125f, DSV4_FP_SAT);
        float eff = (float)((double)dsv4_e4m3_to_f32(sc) / gs);
        int64_t bad = 0;
        for (int64_t b = 0; b < n / 16; b++)
            bad += s[b] != sc;
        for (int64_t i = 0; i < n; i++) {
            uint8_t code = (uint8_t)(p[i / 2] >> (4 * (i & 1)) & 15u);
            bad += code != ref_code((float)((double)dsv4_bf16_to_f32(w[i]) / eff));
        }
        CHECK_MSG(bad == 0, "pair %zu: %lld mismatches (scale %02X)", t, (long long)bad, sc);
    }
    free(w);
    free(p);
    free(s);
}

/* Random rows: dequant equals E2M1 · f32(sc/gs), and every value lies within half an E2M1 step
 * (at its magnitude) of the input, or is clamped at ±6·eff. */
TEST(pack_nvfp4_rtn_random_dequant)
{
    enum { N = 8, K = 256 };
    static uint16_t w[N * K];
    static uint8_t p[N * K / 2], s[N * K / 16];
    static float d[N * K];
    dsv4_err e;
    for (int i = 0; i < N * K; i++)
        w[i] = bf(th_randf(-1.0f, 1.0f) * ldexpf(1.0f, (int)(th_rand() % 12) - 6));
    float gs = dsv4_nvfp4_global_scale(dsv4_bf16_amax(w, N * K));
    REQUIRE(dsv4_nvfp4_rtn(w, N, K, gs, p, s, &e) == 0);
    REQUIRE(dsv4_nvfp4_dequant(p, s, gs, N, K, d, &e) == 0);
    int64_t bad = 0;
    for (int i = 0; i < N * K; i++) {
        float eff = dsv4_e4m3_to_f32(s[i / 16]) / gs;
        uint8_t code = (uint8_t)(p[i / 2] >> (4 * (i & 1)) & 15u);
        bad += d[i] != dsv4_e2m1_to_f32(code) * eff;
        double y = dsv4_bf16_to_f32(w[i]) / (double)eff, a = fabs(y);
        double step = a < 2.0 ? 0.5 : a < 4.0 ? 1.0 : 2.0;
        if (a <= 6.0)
            bad += fabs(dsv4_e2m1_to_f32(code) - y) > step / 2 + 1e-6;
        else
            bad += fabs(dsv4_e2m1_to_f32(code)) != 6.0f;
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(pack_nvfp4_refuses_bad_input)
{
    uint16_t w[32] = {0};
    uint8_t p[16], s[2];
    float d[32];
    dsv4_err e;
    CHECK(dsv4_nvfp4_rtn(w, 1, 24, 1.0f, p, s, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "multiple of 16");
    CHECK(dsv4_nvfp4_rtn(w, 1, 32, 0.0f, p, s, &e) == -1);
    CHECK(dsv4_nvfp4_rtn(w, 1, 32, INFINITY, p, s, &e) == -1);
    CHECK(dsv4_nvfp4_dequant(p, s, NAN, 1, 32, d, &e) == -1);
    w[20] = 0x7F80;
    CHECK(dsv4_nvfp4_rtn(w, 1, 32, 1.0f, p, s, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "[0, 20]");
}
