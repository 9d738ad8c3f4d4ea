/* Release-layout dequantization (libquant/formats/dequant.h): the spec's worked FP4 example, the
 * block/group indexing on ragged shapes, bf16 = RNE(f32), re-encoding back to the same bytes, and
 * refusal of mismatched scale shapes with the tensor's name in the message. */
#include "harness.h"
#include "formats/dequant.h"
#include "formats/fp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint32_t f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

/* formats_algorithms.md §6.4b: bytes [0x2F, 0x71], scale 0x7E (0.5) → −3.0, 0.5, 0.25, 3.0. */
TEST(dequant_fp4_spec_example)
{
    uint8_t w[16] = {0x2F, 0x71}, s[1] = {0x7E};
    dsv4_qweight q = {"layers.0.ffn.experts.0.w1.weight", w, s, 1, 16, 1, 1};
    float out[32];
    uint16_t ob[32];
    dsv4_err e;
    REQUIRE(dsv4_fp4_dequant_f32(&q, out, &e) == 0);
    CHECK(out[0] == -3.0f && out[1] == 0.5f && out[2] == 0.25f && out[3] == 3.0f);
    for (int i = 4; i < 32; i++)
        CHECK(out[i] == 0.0f);
    REQUIRE(dsv4_fp4_dequant_bf16(&q, ob, &e) == 0);
    CHECK(ob[0] == 0xC040 && ob[1] == 0x3F00 && ob[2] == 0x3E80 && ob[3] == 0x4040);
}

/* A ragged FP8 weight [130, 200]: scale [2, 2]; every element picks block (r/128, c/128). */
TEST(dequant_fp8_block_indexing)
{
    enum { R = 130, C = 200 };
    uint8_t *w = malloc(R * C), s[4] = {127, 120, 130, 100};
    float *out = malloc(R * C * sizeof(float));
    REQUIRE(w && out);
    for (int i = 0; i < R * C; i++)
        w[i] = (uint8_t)(th_rand() % 256);
    dsv4_qweight q = {"layers.0.attn.wq_a.weight", w, s, R, C, 2, 2};
    dsv4_err e;
    REQUIRE(dsv4_fp8_block_dequant_f32(&q, out, &e) == 0);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            float want = dsv4_e4m3_to_f32(w[r * C + c]) * ldexpf(1.0f, s[(r / 128) * 2 + c / 128] - 127);
            float got = out[r * C + c];
            CHECK_MSG(f32_bits(got) == f32_bits(want) || (isnan(got) && isnan(want)),
                      "[%d,%d] %g != %g", r, c, (double)got, (double)want);
        }
    free(w);
    free(out);
}

/* FP4 with in = 96 (three groups) and random scales: every group picks S[r, i/32]. */
TEST(dequant_fp4_group_indexing)
{
    enum { R = 5, IN = 96, NB = IN / 2, G = IN / 32 };
    uint8_t w[R * NB], s[R * G];
    float out[R * IN];
    for (int i = 0; i < R * NB; i++)
        w[i] = (uint8_t)th_rand();
    for (int i = 0; i < R * G; i++)
        s[i] = (uint8_t)(100 + th_rand() % 50);
    dsv4_qweight q = {"x", w, s, R, NB, R, G};
    dsv4_err e;
    REQUIRE(dsv4_fp4_dequant_f32(&q, out, &e) == 0);
    for (int r = 0; r < R; r++)
        for (int i = 0; i < IN; i++) {
            uint8_t b = w[r * NB + i / 2], nib = (i & 1) ? b >> 4 : b & 15;
            float want = dsv4_e2m1_to_f32(nib) * ldexpf(1.0f, s[r * G + i / 32] - 127);
            CHECK(f32_bits(out[r * IN + i]) == f32_bits(want));
        }
}

/* For every scale byte the bf16 output is the RNE of the f32 one, and re-encoding the f32 output
 * gives the original codes (all 254 non-NaN e4m3 codes, scales up to 2^119 where 448·s is finite). */
TEST(dequant_fp8_bf16_and_requant_all_codes)
{
    enum { R = 128, C = 254 };
    uint8_t w[R * C], w2[R * C], s[2];
    static float out[R * C];
    static uint16_t ob[R * C];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            w[r * C + c] = (uint8_t)(c < 127 ? c : c + 1); /* skip 0x7F, 0xFF */
    dsv4_err e;
    for (int sb = 0; sb < 255; sb++) {
        s[0] = (uint8_t)sb;
        s[1] = (uint8_t)(254 - sb);
        dsv4_qweight q = {"t", w, s, R, C, 1, 2};
        REQUIRE(dsv4_fp8_block_dequant_f32(&q, out, &e) == 0);
        REQUIRE(dsv4_fp8_block_dequant_bf16(&q, ob, &e) == 0);
        for (int i = 0; i < R * C; i++)
            CHECK(ob[i] == dsv4_f32_to_bf16(out[i]));
        if (sb <= 246 && 254 - sb <= 246) {
            REQUIRE(dsv4_fp8_block_requant(&q, out, w2, &e) == 0);
            CHECK_MSG(memcmp(w, w2, sizeof w) == 0, "scales %d/%d do not re-encode", sb, 254 - sb);
        }
        if (th_failures())
            break;
    }
}

TEST(dequant_fp4_bf16_and_requant_all_codes)
{
    enum { R = 3, NB = 128, G = 8 };
    uint8_t w[R * NB], w2[R * NB], s[R * G];
    float out[R * NB * 2];
    uint16_t ob[R * NB * 2];
    for (int i = 0; i < R * NB; i++)
        w[i] = (uint8_t)i; /* every byte value, so every nibble pair */
    dsv4_err e;
    for (int sb = 0; sb < 255; sb++) {
        for (int i = 0; i < R * G; i++)
            s[i] = (uint8_t)((sb + 37 * i) % 253); /* 6·2^(s−127) finite */
        dsv4_qweight q = {"t", w, s, R, NB, R, G};
        REQUIRE(dsv4_fp4_dequant_f32(&q, out, &e) == 0);
        REQUIRE(dsv4_fp4_dequant_bf16(&q, ob, &e) == 0);
        for (int i = 0; i < R * NB * 2; i++)
            CHECK(ob[i] == dsv4_f32_to_bf16(out[i]));
        REQUIRE(dsv4_fp4_requant(&q, out, w2, &e) == 0);
        CHECK_MSG(memcmp(w, w2, sizeof w) == 0, "scale pattern %d does not re-encode", sb);
        if (th_failures())
            break;
    }
}

/* Re-encoding quantizes: values off the grid round to nearest, out-of-range values saturate. */
TEST(dequant_requant_rounds_and_saturates)
{
    uint8_t s8[1] = {127 - 2}, w8[3];
    float in8[3] = {1e9f, -0.3f, 0.0078125f}; /* scale 0.25: 4e9 → 448, −1.2 → −1.25, 1/32 */
    dsv4_qweight q = {"t", NULL, s8, 1, 3, 1, 1};
    dsv4_err e;
    REQUIRE(dsv4_fp8_block_requant(&q, in8, w8, &e) == 0);
    CHECK_EQ_INT(w8[0], 0x7E);
    CHECK_EQ_INT(w8[1], dsv4_f32_to_e4m3(-1.2f, DSV4_FP_SAT));
    CHECK_EQ_INT(w8[2], 0x10); /* 2^-5 */
    uint8_t s4[1] = {127}, w4[16];
    float in4[32] = {7.0f, -0.2f, 2.5f, -1e30f};
    dsv4_qweight q4 = {"t", NULL, s4, 1, 16, 1, 1};
    REQUIRE(dsv4_fp4_requant(&q4, in4, w4, &e) == 0);
    CHECK_EQ_INT(w4[0], 0x87); /* 6 | −0 << 4 */
    CHECK_EQ_INT(w4[1], 0xF4); /* 2 | −6 << 4 */
}

TEST(dequant_shape_errors_name_the_tensor)
{
    uint8_t w[512] = {0}, s[8] = {127};
    float out[1024];
    dsv4_err e;
    dsv4_qweight q = {"layers.0.attn.wq_a.weight", w, s, 128, 256, 1, 3};
    CHECK(dsv4_fp8_block_dequant_f32(&q, out, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "layers.0.attn.wq_a.weight");
    CHECK_STR_CONTAINS(e.msg, "[1, 3]");
    CHECK_STR_CONTAINS(e.msg, "[1, 2]");
    CHECK_EQ_INT(e.code, DSV4_EXIT_BADINPUT);
    q.s_rows = 2;
    q.s_cols = 2;
    CHECK(dsv4_fp8_block_check(&q, &e) == -1);
    q.s_rows = 1;
    CHECK(dsv4_fp8_block_check(&q, &e) == 0);

    dsv4_qweight f = {"layers.0.ffn.experts.3.w1.weight", w, s, 2, 128, 2, 4};
    CHECK(dsv4_fp4_check(&f, &e) == -1); /* logical in = 256 → 8 groups */
    CHECK_STR_CONTAINS(e.msg, "layers.0.ffn.experts.3.w1.weight");
    CHECK_STR_CONTAINS(e.msg, "[2, 8]");
    f.s_cols = 8;
    CHECK(dsv4_fp4_check(&f, &e) == 0);
    f.s_rows = 1;
    CHECK(dsv4_fp4_dequant_f32(&f, out, &e) == -1);

    dsv4_qweight neg = {NULL, w, s, -1, 4, 1, 1};
    CHECK(dsv4_fp8_block_check(&neg, &e) == -1);
    dsv4_qweight missing = {"m", NULL, s, 1, 4, 1, 1};
    CHECK(dsv4_fp8_block_check(&missing, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "missing");
    dsv4_qweight huge = {"h", w, s, INT64_C(1) << 40, INT64_C(1) << 40, INT64_C(1) << 33, INT64_C(1) << 33};
    CHECK(dsv4_fp8_block_check(&huge, &e) == -1);
    dsv4_qweight empty = {"e", NULL, NULL, 0, 0, 0, 0};
    CHECK(dsv4_fp8_block_dequant_f32(&empty, out, &e) == 0);
    CHECK(dsv4_fp4_dequant_bf16(&empty, NULL, &e) == 0);
}

/* A NaN scale (0xFF) gives NaN elements rather than an error; the fixture test checks finiteness. */
TEST(dequant_nan_scale_propagates)
{
    uint8_t w[4] = {0x38, 0x00, 0x80, 0x7E}, s[1] = {0xFF};
    float out[4];
    dsv4_qweight q = {"t", w, s, 1, 4, 1, 1};
    dsv4_err e;
    REQUIRE(dsv4_fp8_block_dequant_f32(&q, out, &e) == 0);
    for (int i = 0; i < 4; i++)
        CHECK(isnan(out[i]));
}
