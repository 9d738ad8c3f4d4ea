/* Release MXFP4 -> NVFP4 without re-quantizing (quant/pack.h): the power-of-two global scale
 * shared by a fused pair, losslessness proven by comparing the two dequantizers bit for bit
 * (dsv4_fp4_dequant_f32 on the source, dsv4_nvfp4_dequant on the result), an exponent spread too
 * wide for any global scale (reported, RTN fallback with measured error), and refused input. */
#include "harness.h"
#include "formats/fp.h"
#include "quant/pack.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t *w, *s;
    dsv4_qweight q;
} mx_t;

/* Random MXFP4 [rows, in]: scale bytes lo + rand % (spread + 1), random codes; every 7th
 * 16-block is all ±0 with a wild scale byte (it must not count in the spread). */
static void mx_make(mx_t *m, const char *name, int64_t rows, int64_t in, int lo, int spread)
{
    int64_t nb = in / 2, ng = in / 32;
    m->w = malloc((size_t)(rows * nb));
    m->s = malloc((size_t)(rows * ng));
    for (int64_t i = 0; i < rows * nb; i++)
        m->w[i] = (uint8_t)th_rand();
    for (int64_t i = 0; i < rows * ng; i++)
        m->s[i] = (uint8_t)(lo + (int)(th_rand() % (uint64_t)(spread + 1)));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t g = 0; g < ng; g++)
            if ((r * ng + g) % 7 == 3) {
                for (int i = 0; i < 16; i++)
                    m->w[r * nb + g * 16 + i] = (uint8_t)(th_rand() & 0x88u);
                m->s[r * ng + g] = (uint8_t)((r + g) % 2 ? 0 : 250);
            }
    m->q = (dsv4_qweight){name, m->w, m->s, rows, nb, rows, ng};
}

static void mx_free(mx_t *m)
{
    free(m->w);
    free(m->s);
}

/* Converts with gs and compares the dequantized values: returns the number of differing 16-blocks
 * and the largest difference, which must match the report. */
static int64_t convert_and_compare(const dsv4_qweight *q, float gs, dsv4_conv_report *rep, double *maxerr)
{
    int64_t rows = q->w_rows, in = 2 * q->w_cols;
    uint8_t *p = malloc((size_t)(rows * in / 2)), *sc = malloc((size_t)(rows * in / 16));
    float *a = malloc((size_t)(rows * in) * sizeof *a), *b = malloc((size_t)(rows * in) * sizeof *b);
    dsv4_err e;
    int64_t blocks = -1;
    *maxerr = 0.0;
    if (dsv4_nvfp4_from_mxfp4(q, gs, p, sc, rep, &e) || dsv4_fp4_dequant_f32(q, a, &e) ||
        dsv4_nvfp4_dequant(p, sc, gs, rows, in, b, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        goto out;
    }
    blocks = 0;
    for (int64_t blk = 0; blk < rows * in / 16; blk++) {
        int differs = 0;
        for (int i = 0; i < 16; i++) {
            float x = a[blk * 16 + i], y = b[blk * 16 + i];
            if (memcmp(&x, &y, 4) != 0) {
                differs = 1;
                *maxerr = fmax(*maxerr, fabs((double)x - y));
            }
        }
        blocks += differs;
    }
    /* Kept blocks hold the source codes unchanged. */
    for (int64_t blk = 0; blk < rows * in / 16 && rep->exact; blk++)
        CHECK(memcmp(p + blk * 8, q->w + blk * 8, 8) == 0);
out:
    free(p);
    free(sc);
    free(a);
    free(b);
    return blocks;
}

/* A fused pair (w1, w3) with scale exponents over 15 binades shares gs = 2^(135 - s_max) and
 * converts bit-exactly; with spread 17 (the widest possible) too, using e4m3 subnormal scales. */
TEST(pack_nvfp4_mx_lossless_moderate_spread)
{
    static const int spreads[] = {0, 5, 14, 17};
    for (size_t t = 0; t < sizeof spreads / sizeof spreads[0]; t++) {
        mx_t w1, w3;
        mx_make(&w1, "layers.1.ffn.experts.4.w1.weight", 64, 256, 112, spreads[t]);
        mx_make(&w3, "layers.1.ffn.experts.4.w3.weight", 64, 256, 112, spreads[t]);
        int smax = 0;
        for (int i = 0; i < 64 * 8; i++)
            if (i % 7 != 3) {
                smax = w1.s[i] > smax ? w1.s[i] : smax;
                smax = w3.s[i] > smax ? w3.s[i] : smax;
            }
        const dsv4_qweight *pair[2] = {&w1.q, &w3.q};
        float gs = 0.0f;
        dsv4_err e;
        REQUIRE(dsv4_nvfp4_mx_global_scale(pair, 2, &gs, &e) == 0);
        CHECK_MSG(gs == ldexpf(1.0f, 135 - smax), "spread %d: gs %g, s_max %d", spreads[t], (double)gs, smax);
        for (int k = 0; k < 2; k++) {
            dsv4_conv_report rep;
            double maxerr;
            int64_t blocks = convert_and_compare(pair[k], gs, &rep, &maxerr);
            CHECK_MSG(rep.exact == 1 && rep.inexact == 0 && rep.max_abs_err == 0.0, "spread %d: %lld inexact",
                      spreads[t], (long long)rep.inexact);
            CHECK_EQ_INT(blocks, 0);
        }
        mx_free(&w1);
        mx_free(&w3);
    }
}

/* Spread 40: no power-of-two gs fits. The call says so (and names the spread) but still gives the
 * gs that keeps the largest blocks exact; the conversion re-quantizes the small blocks by RTN,
 * counts exactly the blocks whose values differ, and reports their largest error. */
TEST(pack_nvfp4_mx_extreme_spread_reported)
{
    mx_t m;
    mx_make(&m, "layers.2.ffn.experts.9.w2.weight", 32, 128, 100, 40);
    m.s[5] = 140; /* make sure both ends occur */
    m.s[6] = 100;
    m.w[6 * 16] = 0x11;
    m.w[5 * 16] = 0x77;
    const dsv4_qweight *one[1] = {&m.q};
    float gs = 0.0f;
    dsv4_err e;
    CHECK(dsv4_nvfp4_mx_global_scale(one, 1, &gs, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "layers.2.ffn.experts.9.w2.weight");
    CHECK_STR_CONTAINS(e.msg, "spread 40");
    CHECK(gs == ldexpf(1.0f, 135 - 140));
    dsv4_conv_report rep;
    double maxerr;
    int64_t blocks = convert_and_compare(&m.q, gs, &rep, &maxerr);
    CHECK(rep.exact == 0);
    CHECK(rep.inexact > 0);
    CHECK_EQ_INT(rep.inexact, blocks);
    CHECK(rep.max_abs_err == maxerr && maxerr > 0.0);
    /* the lost blocks are the small ones, those with L = 2^(s-127) · 2^-5 under 2^-9 (s <= 122):
     * the error is at most their largest value 6 · 2^(122-127) */
    CHECK(maxerr <= 6.0 * ldexp(1.0, 122 - 127));
    mx_free(&m);
}

/* Keeping codes needs L = 2^(s-127) · gs to be an e4m3 value and L / gs to give back 2^(s-127):
 * gs = 3 (1.5 · 2) still converts exactly, gs = 1.1 cannot, so every non-zero block is
 * re-quantized and reported. An all-zero tensor gets gs = 1. */
TEST(pack_nvfp4_mx_other_global_scales)
{
    mx_t m;
    mx_make(&m, "x", 8, 64, 120, 3);
    dsv4_conv_report rep;
    double maxerr;
    int64_t blocks = convert_and_compare(&m.q, 3.0f, &rep, &maxerr);
    CHECK(rep.exact && blocks == 0);
    blocks = convert_and_compare(&m.q, 1.1f, &rep, &maxerr);
    CHECK(!rep.exact && rep.inexact == blocks && rep.max_abs_err == maxerr && blocks > 8 * 4 / 2);
    memset(m.w, 0x88, 8 * 32);
    const dsv4_qweight *one[1] = {&m.q};
    float gs = 0.0f;
    dsv4_err e;
    CHECK(dsv4_nvfp4_mx_global_scale(one, 1, &gs, &e) == 0);
    CHECK(gs == 1.0f);
    blocks = convert_and_compare(&m.q, gs, &rep, &maxerr);
    CHECK(rep.exact && blocks == 0);
    mx_free(&m);
}

TEST(pack_nvfp4_mx_refuses_bad_input)
{
    uint8_t w[16] = {0x11}, s[2] = {127, 0xFF}, p[16], sc[2];
    dsv4_qweight q = {"layers.0.ffn.experts.1.w1.weight", w, s, 1, 16, 1, 1};
    const dsv4_qweight *one[1] = {&q};
    float gs;
    dsv4_conv_report rep;
    dsv4_err e;
    s[0] = 0xFF;
    CHECK(dsv4_nvfp4_mx_global_scale(one, 1, &gs, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "NaN");
    CHECK(dsv4_nvfp4_from_mxfp4(&q, 1.0f, p, sc, &rep, &e) == -1);
    s[0] = 127;
    CHECK(dsv4_nvfp4_from_mxfp4(&q, 0.0f, p, sc, &rep, &e) == -1);
    q.s_cols = 2; /* wrong scale shape */
    CHECK(dsv4_nvfp4_from_mxfp4(&q, 1.0f, p, sc, &rep, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "layers.0.ffn.experts.1.w1.weight");
    dsv4_qweight odd = {"odd", w, s, 1, 4, 1, 1}; /* 8 inputs: not a multiple of 16 */
    CHECK(dsv4_nvfp4_from_mxfp4(&odd, 1.0f, p, sc, &rep, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "multiple of 16");
}
