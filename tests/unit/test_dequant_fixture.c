/* Every FP8-block and FP4-expert tensor of fixtures/dsv4-tiny dequantizes to finite values and
 * re-encodes (from float32, and from bf16) to exactly the stored bytes. */
#include "harness.h"
#include "formats/dequant.h"
#include "formats/fp.h"
#include "io/checkpoint.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

typedef struct {
    int fp8, fp4, named;
} counts;

/* One weight/scale pair: dequantize (f32 and bf16), check finiteness, re-encode, compare bytes. */
static void check_pair(const dsv4_tensor *w, const dsv4_tensor *s, counts *n)
{
    const char *wname = w->name;
    int fp4 = strstr(wname, ".experts.") != NULL;
    CHECK_MSG(w->dtype == (fp4 ? DSV4_I8 : DSV4_F8_E4M3), "%s has dtype %s", wname, dsv4_dtype_name(w->dtype));
    CHECK_MSG(s->dtype == DSV4_F8_E8M0, "%s scale has dtype %s", wname, dsv4_dtype_name(s->dtype));
    if (w->ndim != 2 || s->ndim != 2) {
        th_fail(__FILE__, __LINE__, "%s: unexpected rank", wname);
        return;
    }
    size_t nbytes = dsv4_tensor_nbytes(w);
    dsv4_qweight q = {wname, w->data, s->data, w->shape[0], w->shape[1], s->shape[0], s->shape[1]};
    int64_t cols = fp4 ? 2 * q.w_cols : q.w_cols, ne = q.w_rows * cols;
    float *f = malloc((size_t)ne * sizeof *f), *fb = malloc((size_t)ne * sizeof *fb);
    uint16_t *b = malloc((size_t)ne * sizeof *b);
    uint8_t *re = malloc(nbytes);
    dsv4_err e = {{0}, 0};
    if (!f || !fb || !b || !re) {
        th_fail(__FILE__, __LINE__, "out of memory");
        goto out;
    }
    int rc = fp4 ? dsv4_fp4_dequant_f32(&q, f, &e) : dsv4_fp8_block_dequant_f32(&q, f, &e);
    rc |= fp4 ? dsv4_fp4_dequant_bf16(&q, b, &e) : dsv4_fp8_block_dequant_bf16(&q, b, &e);
    CHECK_MSG(rc == 0, "%s: %s", wname, e.msg);
    if (rc)
        goto out;
    int64_t bad = 0;
    for (int64_t i = 0; i < ne; i++) {
        bad += !isfinite(f[i]);
        fb[i] = dsv4_bf16_to_f32(b[i]);
    }
    CHECK_MSG(bad == 0, "%s: %lld non-finite values", wname, (long long)bad);
    rc = fp4 ? dsv4_fp4_requant(&q, f, re, &e) : dsv4_fp8_block_requant(&q, f, re, &e);
    CHECK_MSG(rc == 0 && memcmp(re, w->data, nbytes) == 0, "%s: f32 re-encoding differs", wname);
    rc = fp4 ? dsv4_fp4_requant(&q, fb, re, &e) : dsv4_fp8_block_requant(&q, fb, re, &e);
    CHECK_MSG(rc == 0 && memcmp(re, w->data, nbytes) == 0, "%s: bf16 re-encoding differs", wname);
    if (fp4)
        n->fp4++;
    else
        n->fp8++;
    n->named += !strcmp(wname, "layers.0.attn.wq_a.weight") + !strcmp(wname, "layers.0.ffn.experts.3.w1.weight") +
                !strcmp(wname, "mtp.0.e_proj.weight");
out:
    free(f);
    free(fb);
    free(b);
    free(re);
}

TEST(dequant_fixture_all_fp8_fp4_tensors)
{
    dsv4_ckpt c;
    dsv4_err e;
    REQUIRE(dsv4_ckpt_open(th_path("fixtures/dsv4-tiny"), 0, &c, &e) == 0);
    counts n = {0, 0, 0};
    for (size_t i = 0; i < c.n; i++) {
        const dsv4_tensor *s = c.by_name[i];
        if (!has_suffix(s->name, ".scale"))
            continue;
        char wname[512];
        snprintf(wname, sizeof wname, "%.*s.weight", (int)(strlen(s->name) - 6), s->name);
        const dsv4_tensor *w = dsv4_ckpt_find(&c, wname);
        CHECK_MSG(w != NULL, "%s has no %s", s->name, wname);
        if (w)
            check_pair(w, s, &n);
    }
    /* fixtures/dsv4-tiny: 44 FP8 linears (17 + 27) and 240 FP4 experts (96 + 144) */
    CHECK_EQ_INT(n.fp8, 44);
    CHECK_EQ_INT(n.fp4, 240);
    CHECK_EQ_INT(n.named, 3);
    dsv4_ckpt_close(&c);
}

/* The fixture's ranges, for the CUDA test's choice of random scales: every scale byte lies in
 * [110, 130] and no FP8 weight byte is a NaN code. */
TEST(dequant_fixture_value_ranges)
{
    dsv4_ckpt c;
    dsv4_err e;
    REQUIRE(dsv4_ckpt_open(th_path("fixtures/dsv4-tiny"), 0, &c, &e) == 0);
    for (size_t i = 0; i < c.n; i++) {
        const dsv4_tensor *t = c.by_name[i];
        size_t nb = dsv4_tensor_nbytes(t);
        if (t->dtype == DSV4_F8_E8M0)
            for (size_t k = 0; k < nb; k++)
                CHECK_MSG(t->data[k] >= 110 && t->data[k] <= 130, "%s scale byte %u", t->name, t->data[k]);
        if (t->dtype == DSV4_F8_E4M3)
            for (size_t k = 0; k < nb; k++)
                CHECK_MSG((t->data[k] & 0x7F) != 0x7F, "%s holds an e4m3 NaN", t->name);
    }
    dsv4_ckpt_close(&c);
}
