/* Every routed-expert weight of fixtures/dsv4-tiny (`*.ffn.experts.*.w{1,2,3}`, 240 tensors),
 * converted from its release FP4 to NVFP4 (w1 and w3 of an expert sharing one power-of-two global
 * scale, w2 its own) and to FP8 block, checked value by value through the dequantizers: the
 * source (dsv4_fp4_dequant_f32) against dsv4_nvfp4_dequant, dsv4_fp8_block_dequant_f32 and
 * dsv4_fp8_block_dequant_ct. A tensor that does not convert exactly is printed with its count and
 * largest error, and the report must agree with the comparison.
 *
 * Result on the fixture: all 240 convert exactly to NVFP4 and all 240 to FP8 block. Its e8m0
 * scales are narrow: at most 2 binades apart within a w1/w3 pair (NVFP4 limit 17, 14 for normal
 * e4m3 scales) and 3 within a 128x128 block (FP8 limit 14), so no value is near the limits; the
 * limits themselves are tested on synthetic weights (test_pack_nvfp4_mx.c, test_pack_fp8.c). */
#include "harness.h"
#include "formats/fp.h"
#include "io/checkpoint.h"
#include "quant/pack.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int tensors, nvfp4_exact, fp8_exact;
    int pair_spread, block_spread; /* widest e8m0 spread of a w1/w3 pair, of a 128x128 block */
} tally;

/* Widest spread of the scale bytes of q over rows [r0, r1) and groups [g0, g1). */
static int spread(const dsv4_qweight *q, int64_t r0, int64_t r1, int64_t g0, int64_t g1, int *lo, int *hi)
{
    for (int64_t r = r0; r < r1 && r < q->s_rows; r++)
        for (int64_t g = g0; g < g1 && g < q->s_cols; g++) {
            int v = q->s[r * q->s_cols + g];
            *lo = v < *lo ? v : *lo;
            *hi = v > *hi ? v : *hi;
        }
    return *hi - *lo;
}

static void spreads(const dsv4_qweight q[3], tally *t)
{
    int lo = 255, hi = 0;
    spread(&q[0], 0, q[0].s_rows, 0, q[0].s_cols, &lo, &hi);
    int d = spread(&q[2], 0, q[2].s_rows, 0, q[2].s_cols, &lo, &hi);
    t->pair_spread = d > t->pair_spread ? d : t->pair_spread;
    for (int i = 0; i < 3; i++)
        for (int64_t r = 0; r < q[i].s_rows; r += 128)
            for (int64_t g = 0; g < q[i].s_cols; g += 4) {
                int blo = 255, bhi = 0;
                d = spread(&q[i], r, r + 128, g, g + 4, &blo, &bhi);
                t->block_spread = d > t->block_spread ? d : t->block_spread;
            }
}

static int qweight(const dsv4_ckpt *c, const char *stem, dsv4_qweight *q)
{
    char wn[256], sn[256];
    if (snprintf(wn, sizeof wn, "%s.weight", stem) >= (int)sizeof wn ||
        snprintf(sn, sizeof sn, "%s.scale", stem) >= (int)sizeof sn)
        return -1;
    const dsv4_tensor *w = dsv4_ckpt_find(c, wn), *s = dsv4_ckpt_find(c, sn);
    if (!w || !s || w->ndim != 2 || s->ndim != 2)
        return -1;
    *q = (dsv4_qweight){w->name, w->data, s->data, w->shape[0], w->shape[1], s->shape[0], s->shape[1]};
    return 0;
}

/* Number of values whose bits differ, and the largest difference. */
static int64_t compare(const float *a, const float *b, int64_t n, double *maxerr)
{
    int64_t d = 0;
    *maxerr = 0.0;
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], 4) != 0) {
            d++;
            *maxerr = fmax(*maxerr, fabs((double)a[i] - b[i]));
        }
    return d;
}

static void check_nvfp4(const dsv4_qweight *q, float gs, const float *src, float *buf, tally *t)
{
    int64_t n = q->w_rows, k = 2 * q->w_cols;
    uint8_t *p = malloc((size_t)(n * k / 2)), *sc = malloc((size_t)(n * k / 16));
    dsv4_conv_report rep;
    dsv4_err e;
    if (!p || !sc || dsv4_nvfp4_from_mxfp4(q, gs, p, sc, &rep, &e) || dsv4_nvfp4_dequant(p, sc, gs, n, k, buf, &e)) {
        th_fail(__FILE__, __LINE__, "%s: %s", q->name, e.msg);
    } else {
        double maxerr;
        int64_t d = compare(src, buf, n * k, &maxerr);
        CHECK_MSG(rep.exact == (d == 0) && rep.max_abs_err == maxerr, "%s: report disagrees", q->name);
        if (rep.exact)
            t->nvfp4_exact++;
        else
            printf("  pack-fixture: %s -> NVFP4 not exact: %lld blocks re-quantized, %lld values differ, "
                   "max |err| %g\n",
                   q->name, (long long)rep.inexact, (long long)d, maxerr);
    }
    free(p);
    free(sc);
}

static void check_fp8(const dsv4_qweight *q, const float *src, float *buf, tally *t)
{
    int64_t n = q->w_rows, k = 2 * q->w_cols, sr = (n + 127) / 128, scn = (k + 127) / 128;
    uint8_t *w8 = malloc((size_t)(n * k)), *s8 = malloc((size_t)(sr * scn));
    uint16_t *sb = malloc((size_t)(sr * scn) * 2);
    float *ct = malloc((size_t)(n * k) * 4);
    dsv4_conv_report rep;
    dsv4_err e;
    dsv4_qweight o = {q->name, w8, s8, n, k, sr, scn};
    if (!w8 || !s8 || !sb || !ct || dsv4_fp4_to_fp8_block(q, w8, s8, &rep, &e) ||
        dsv4_fp8_block_dequant_f32(&o, buf, &e)) {
        th_fail(__FILE__, __LINE__, "%s: %s", q->name, e.msg);
        goto out;
    }
    dsv4_e8m0_to_bf16(s8, (size_t)(sr * scn), sb);
    REQUIRE(dsv4_fp8_block_dequant_ct(w8, sb, n, k, ct, &e) == 0);
    double maxerr, m2;
    int64_t d = compare(src, buf, n * k, &maxerr);
    CHECK_MSG(compare(buf, ct, n * k, &m2) == 0, "%s: BF16-scale dequant differs", q->name);
    CHECK_MSG(rep.exact == (d == 0) && rep.inexact == d && rep.max_abs_err == maxerr, "%s: report disagrees", q->name);
    if (rep.exact)
        t->fp8_exact++;
    else
        printf("  pack-fixture: %s -> FP8 not exact: %lld values underflow, max |err| %g\n", q->name,
               (long long)d, maxerr);
out:
    free(w8);
    free(s8);
    free(sb);
    free(ct);
}

/* One expert: w1 and w3 share the NVFP4 global scale, w2 has its own. */
static void check_expert(const dsv4_ckpt *c, const char *prefix, tally *t)
{
    dsv4_qweight q[3];
    char stem[3][216];
    for (int i = 0; i < 3; i++) {
        if (snprintf(stem[i], sizeof stem[i], "%s.w%d", prefix, i + 1) >= (int)sizeof stem[i] ||
            qweight(c, stem[i], &q[i])) {
            th_fail(__FILE__, __LINE__, "%s: missing weight or scale", stem[i]);
            return;
        }
    }
    spreads(q, t);
    const dsv4_qweight *fused[2] = {&q[0], &q[2]}, *down[1] = {&q[1]};
    float gs13, gs2;
    dsv4_err e;
    if (dsv4_nvfp4_mx_global_scale(fused, 2, &gs13, &e))
        printf("  pack-fixture: %s: %s\n", prefix, e.msg);
    if (dsv4_nvfp4_mx_global_scale(down, 1, &gs2, &e))
        printf("  pack-fixture: %s: %s\n", prefix, e.msg);
    for (int i = 0; i < 3; i++) {
        int64_t n = q[i].w_rows * 2 * q[i].w_cols;
        float *src = malloc((size_t)n * 4), *buf = malloc((size_t)n * 4);
        if (!src || !buf || dsv4_fp4_dequant_f32(&q[i], src, &e)) {
            th_fail(__FILE__, __LINE__, "%s: cannot dequantize", stem[i]);
        } else {
            check_nvfp4(&q[i], i == 1 ? gs2 : gs13, src, buf, t);
            check_fp8(&q[i], src, buf, t);
            t->tensors++;
        }
        free(src);
        free(buf);
    }
}

TEST(pack_fixture_experts_convert_exactly)
{
    dsv4_ckpt c;
    dsv4_err e;
    REQUIRE(dsv4_ckpt_open(th_path("fixtures/dsv4-tiny"), 0, &c, &e) == 0);
    tally t = {0, 0, 0, 0, 0};
    for (size_t i = 0; i < c.n; i++) {
        const char *nm = c.by_name[i]->name, *x = strstr(nm, ".ffn.experts.");
        size_t len = strlen(nm);
        if (!x || len < 10 || strcmp(nm + len - 10, ".w1.weight") != 0)
            continue;
        char prefix[200];
        snprintf(prefix, sizeof prefix, "%.*s", (int)(len - 10), nm);
        check_expert(&c, prefix, &t);
    }
    printf("  pack-fixture: %d expert tensors: %d exact to NVFP4, %d exact to FP8 block (widest e8m0 spread: "
           "%d in a w1/w3 pair, limit 17; %d in a 128x128 block, limit 14)\n",
           t.tensors, t.nvfp4_exact, t.fp8_exact, t.pair_spread, t.block_spread);
    CHECK_EQ_INT(t.tensors, 240);
    CHECK_EQ_INT(t.nvfp4_exact, 240);
    CHECK_EQ_INT(t.fp8_exact, 240);
    dsv4_ckpt_close(&c);
}
