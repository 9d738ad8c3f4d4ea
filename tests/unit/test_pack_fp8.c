/* float-quantized FP8 block (quant/pack.h): the spec's worked example §6.3 byte for byte, RTN
 * against an independent reference over every finite BF16 input, ragged blocks, the exact e8m0 ->
 * BF16 scale conversion, and the release FP4 -> FP8 conversion proven lossless through the
 * dequantizers (and reported value by value when a block's scale spread is too wide). */
#include "harness.h"
#include "pack_ref.h"
#include "formats/fp.h"
#include "quant/pack.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint16_t bf(float x) { return dsv4_f32_to_bf16(x); }

TEST(pack_fp8_spec_6_3)
{
    static const float x[8] = {0.5f, -1.0f, 0.0078125f, 3.0f, -2.75f, 0.1f, 1.2f, -0.333f};
    static const uint8_t want[8] = {0x69, 0xF1, 0x39, 0x7E, 0xFD, 0x57, 0x73, 0xE4};
    static const float deq[8] = {0.4812f, -0.9624f, 0.007519f, 2.9941f, -2.7803f, 0.10025f, 1.1763f, -0.3208f};
    uint16_t w[8], s[1];
    uint8_t q[8];
    float d[8];
    dsv4_err e;
    for (int i = 0; i < 8; i++)
        w[i] = bf(x[i]);
    CHECK_EQ_INT(w[5], bf(0.10009765625f));
    CHECK_EQ_INT(w[7], bf(-0.33203125f));
    REQUIRE(dsv4_fp8_block_rtn(w, 2, 4, q, s, &e) == 0);
    CHECK_EQ_INT(s[0], 0x3BDB);
    for (int i = 0; i < 8; i++)
        CHECK_MSG(q[i] == want[i], "q[%d] = %02X, want %02X", i, q[i], want[i]);
    REQUIRE(dsv4_fp8_block_dequant_ct(q, s, 2, 4, d, &e) == 0);
    for (int i = 0; i < 8; i++) {
        CHECK_MSG(fabsf(d[i] - deq[i]) <= 5e-4f * fabsf(deq[i]), "d[%d] = %g", i, (double)d[i]);
        CHECK(d[i] == dsv4_e4m3_to_f32(q[i]) * 0.006683349609375f);
    }
}

TEST(pack_fp8_e8m0_to_bf16_exact)
{
    uint8_t s[256];
    uint16_t b[256];
    for (int i = 0; i < 256; i++)
        s[i] = (uint8_t)i;
    dsv4_e8m0_to_bf16(s, 256, b);
    for (int i = 0; i < 255; i++)
        CHECK_MSG(dsv4_bf16_to_f32(b[i]) == ldexpf(1.0f, i - 127), "byte %d -> %04X", i, b[i]);
    CHECK_EQ_INT(b[127], 0x3F80);
    CHECK_EQ_INT(b[0], 0x0040); /* 2^-127: a BF16 subnormal */
    CHECK(isnan(dsv4_bf16_to_f32(b[255])));
}


/* Every finite BF16 value with |v| <= amax fills 128x128 blocks of a [128, K] weight, each block
 * led by ±amax: scales and codes equal the reference's, for several amax. */
TEST(pack_fp8_rtn_matches_reference_on_all_bf16)
{
    enum { B = 128, BB = B * B, NB = 6 };
    static const float amaxes[] = {3.0f, 448.0f, 1e-3f, 2.5e30f, 1e-36f};
    uint16_t *vals = malloc((size_t)NB * BB * sizeof *vals), *w = malloc((size_t)NB * BB * sizeof *w);
    uint8_t *q = malloc((size_t)NB * BB);
    uint16_t s[NB];
    REQUIRE(vals && w && q);
    dsv4_err e;
    for (size_t t = 0; t < sizeof amaxes / sizeof amaxes[0]; t++) {
        uint16_t am = bf(amaxes[t]);
        float amf = dsv4_bf16_to_f32(am);
        int64_t n = 0;
        for (uint32_t v = 0; v < 65536u; v++) {
            if (n % BB == 0) {
                vals[n] = (n / BB) % 2 ? am : (uint16_t)(am | 0x8000u);
                n++;
            }
            float f = dsv4_bf16_to_f32((uint16_t)v);
            if (isfinite(f) && fabsf(f) <= amf)
                vals[n++] = (uint16_t)v;
        }
        REQUIRE(n <= NB * BB);
        while (n % BB)
            vals[n++] = 0;
        int64_t nb = n / BB, k = nb * B;
        for (int64_t b = 0; b < nb; b++) /* block b = columns [128b, 128b+128) */
            for (int r = 0; r < B; r++)
                memcpy(w + r * k + b * B, vals + b * BB + r * B, B * sizeof *w);
        REQUIRE(dsv4_fp8_block_rtn(w, B, k, q, s, &e) == 0);
        float sr = dsv4_bf16_to_f32(ref_bf16((double)amf / 448.0));
        sr = sr == 0.0f ? 0x1p-7f : sr;
        int64_t bad = 0;
        for (int64_t b = 0; b < nb; b++)
            bad += dsv4_bf16_to_f32(s[b]) != sr;
        for (int64_t i = 0; i < B * k; i++) {
            float y = dsv4_bf16_to_f32(ref_bf16((double)dsv4_bf16_to_f32(w[i]) / sr));
            y = y > 448.0f ? 448.0f : y < -448.0f ? -448.0f : y;
            bad += q[i] != dsv4_f32_to_e4m3(y, DSV4_FP_SAT);
        }
        CHECK_MSG(bad == 0, "amax %g: %lld mismatches", (double)amf, (long long)bad);
    }
    free(vals);
    free(w);
    free(q);
}

/* A ragged [130, 200] weight: scales [2, 2], each from its own (partial) block; a zero block gets
 * 2^-7; dequant is e4m3 · s exactly and re-quantizes to the same codes. */
TEST(pack_fp8_rtn_ragged_blocks)
{
    enum { N = 130, K = 200 };
    static uint16_t w[N * K], s[4], w2[N * K], s2[4];
    static uint8_t q[N * K], q2[N * K];
    static float d[N * K];
    dsv4_err e;
    for (int r = 0; r < N; r++)
        for (int c = 0; c < K; c++)
            w[r * K + c] = (r < 128 && c >= 128) ? 0 : bf(th_randf(-1.0f, 1.0f) * (r >= 128 ? 50.0f : 0.02f));
    REQUIRE(dsv4_fp8_block_rtn(w, N, K, q, s, &e) == 0);
    CHECK_EQ_INT(s[1], 0x3C00);
    float am[4] = {0};
    for (int r = 0; r < N; r++)
        for (int c = 0; c < K; c++)
            am[(r / 128) * 2 + c / 128] = fmaxf(am[(r / 128) * 2 + c / 128], fabsf(dsv4_bf16_to_f32(w[r * K + c])));
    CHECK_EQ_INT(s[0], ref_bf16(am[0] / 448.0));
    CHECK_EQ_INT(s[2], ref_bf16(am[2] / 448.0));
    CHECK_EQ_INT(s[3], ref_bf16(am[3] / 448.0));
    REQUIRE(dsv4_fp8_block_dequant_ct(q, s, N, K, d, &e) == 0);
    for (int i = 0; i < N * K; i++) {
        CHECK(d[i] == dsv4_e4m3_to_f32(q[i]) * dsv4_bf16_to_f32(s[((i / K) / 128) * 2 + (i % K) / 128]));
        w2[i] = bf(d[i]);
    }
    REQUIRE(dsv4_fp8_block_rtn(w2, N, K, q2, s2, &e) == 0);
    for (int b = 0; b < 4; b++)
        if (s2[b] == s[b])
            for (int i = 0; i < N * K; i++)
                if (((i / K) / 128) * 2 + (i % K) / 128 == b)
                    CHECK(q2[i] == q[i]);
    w[5] = 0xFF80;
    CHECK(dsv4_fp8_block_rtn(w, N, K, q, s, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "[0, 5]");
}

/* Release FP4 [rows, in] with group scales lo + rand % (spread + 1). */
static void fp4_make(uint8_t *w, uint8_t *s, int64_t rows, int64_t in, int lo, int spread)
{
    for (int64_t i = 0; i < rows * in / 2; i++)
        w[i] = (uint8_t)th_rand();
    for (int64_t i = 0; i < rows * ((in + 31) / 32); i++)
        s[i] = (uint8_t)(lo + (int)(th_rand() % (uint64_t)(spread + 1)));
}

/* Converts and compares three dequantizations value by value: the FP4 source, the FP8 result with
 * its e8m0 scales, and the FP8 result as compressed-tensors reads it (BF16 scales). Returns the
 * number of differing values and their largest difference. */
static int64_t fp4_fp8_compare(const dsv4_qweight *q, dsv4_conv_report *rep, double *maxerr)
{
    int64_t n = q->w_rows, k = 2 * q->w_cols, sr = (n + 127) / 128, sc = (k + 127) / 128;
    uint8_t *w8 = malloc((size_t)(n * k)), *s8 = malloc((size_t)(sr * sc));
    uint16_t *sb = malloc((size_t)(sr * sc) * 2);
    float *a = malloc((size_t)(n * k) * 4), *b = malloc((size_t)(n * k) * 4), *c = malloc((size_t)(n * k) * 4);
    dsv4_err e;
    int64_t diff = -1;
    *maxerr = 0.0;
    if (dsv4_fp4_to_fp8_block(q, w8, s8, rep, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        goto out;
    }
    dsv4_qweight o = {"out", w8, s8, n, k, sr, sc};
    dsv4_e8m0_to_bf16(s8, (size_t)(sr * sc), sb);
    if (dsv4_fp4_dequant_f32(q, a, &e) || dsv4_fp8_block_dequant_f32(&o, b, &e) ||
        dsv4_fp8_block_dequant_ct(w8, sb, n, k, c, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        goto out;
    }
    diff = 0;
    for (int64_t i = 0; i < n * k; i++) {
        CHECK(memcmp(&b[i], &c[i], 4) == 0);
        if (memcmp(&a[i], &b[i], 4) != 0) {
            diff++;
            *maxerr = fmax(*maxerr, fabs((double)a[i] - b[i]));
        }
        CHECK(fabsf(dsv4_e4m3_to_f32(w8[i])) <= 384.0f);
    }
out:
    free(w8);
    free(s8);
    free(sb);
    free(a);
    free(b);
    free(c);
    return diff;
}

/* Spreads up to 14 binades within a block convert exactly, on aligned and ragged shapes, and for
 * scales so small that S_blk would go below 2^-127 (clamped to byte 0). */
TEST(pack_fp4_to_fp8_lossless)
{
    static const struct { int64_t rows, in; int lo, spread; } cs[] = {
        {256, 512, 115, 14}, {200, 320, 120, 8}, {128, 128, 0, 3}, {5, 64, 240, 14}};
    for (size_t t = 0; t < sizeof cs / sizeof cs[0]; t++) {
        uint8_t *w = malloc((size_t)(cs[t].rows * cs[t].in / 2)), *s = malloc((size_t)(cs[t].rows * cs[t].in / 32));
        fp4_make(w, s, cs[t].rows, cs[t].in, cs[t].lo, cs[t].spread);
        dsv4_qweight q = {"layers.0.ffn.experts.0.w2.weight", w, s, cs[t].rows, cs[t].in / 2,
                          cs[t].rows, cs[t].in / 32};
        dsv4_conv_report rep;
        double maxerr;
        int64_t diff = fp4_fp8_compare(&q, &rep, &maxerr);
        CHECK_MSG(diff == 0 && rep.exact && rep.inexact == 0 && rep.max_abs_err == 0.0, "case %zu: %lld values differ",
                  t, (long long)diff);
        free(w);
        free(s);
    }
}

/* Spread 20: values of groups more than 14 binades under the block's largest underflow e4m3's
 * grid; they are counted one by one and the largest error reported. The block scale is the max
 * group scale over 2^6. */
TEST(pack_fp4_to_fp8_underflow_reported)
{
    enum { R = 128, IN = 256 };
    static uint8_t w[R * IN / 2], s[R * IN / 32], w8[R * IN], s8[2];
    fp4_make(w, s, R, IN, 100, 20);
    s[3] = 120;
    s[4] = 100;
    memset(w + 4 * 16, 0x11, 16); /* row 0, group 4: 0.5 · 2^-27, ~20 binades under its block: lost */
    dsv4_qweight q = {"layers.3.ffn.experts.2.w1.weight", w, s, R, IN / 2, R, IN / 32};
    dsv4_conv_report rep;
    double maxerr;
    int64_t diff = fp4_fp8_compare(&q, &rep, &maxerr);
    CHECK(!rep.exact && rep.inexact == diff && diff > 0 && rep.max_abs_err == maxerr);
    dsv4_err e;
    REQUIRE(dsv4_fp4_to_fp8_block(&q, w8, s8, &rep, &e) == 0);
    int smax0 = 0, smax1 = 0;
    for (int r = 0; r < R; r++)
        for (int g = 0; g < IN / 32; g++) {
            int *m = g < 4 ? &smax0 : &smax1;
            *m = s[r * (IN / 32) + g] > *m ? s[r * (IN / 32) + g] : *m;
        }
    CHECK_EQ_INT(s8[0], smax0 - 6);
    CHECK_EQ_INT(s8[1], smax1 - 6);
    CHECK(maxerr <= 6.0 * ldexp(1.0, (smax0 > smax1 ? smax0 : smax1) - 15 - 127));
    s[9] = 0xFF;
    CHECK(dsv4_fp4_to_fp8_block(&q, w8, s8, &rep, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "NaN");
    q.s_cols = 3;
    CHECK(dsv4_fp4_to_fp8_block(&q, w8, s8, &rep, &e) == -1);
}
