/* Weight loading of the storage forms no recipe writes, each made by editing a clean artifact:
 * FP8 with .weight_scale_inv in F32, BF16 and E8M0 and compressed-tensors FP8 with an F32
 * .weight_scale (all FP8_BLOCK with float scales, exact), a per-row FP8 scale (F32, exact),
 * INT4 with an act-order weight_g_idx (plain grouping: INT4; permuted: exact BF16 values),
 * INT4 with a zero point (refused), ModelOpt NVFP4 (weight_scale_2 = 1 / global scale). */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "formats/fp.h"
#include "quant/pack.h"
#include "test_rulesa_util.h"
#include "test_wload_util.h"

/* The clean artifact of `recipe` edited by fn, written and opened (NULL, reported, on failure). */
static dsv4_wsrc *edited(const char *recipe, void (*fn)(ra_art *), dsv4_ckpt *ck)
{
    const char *dir = ra_edited(recipe, fn);
    dsv4_err e;
    dsv4_wsrc *s;
    if (!dir)
        return NULL;
    if (dsv4_wsrc_open(dir, &s, &e) || dsv4_ckpt_open(dir, 0, ck, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        return NULL;
    }
    return s;
}

/* Loads module `stem` [out, in] and checks its host format and that its dequantization equals
 * `want` (NULL: wl_expected of the stored tensors) exactly. */
static void check_lin(dsv4_wsrc *s, const dsv4_ckpt *ck, const char *stem, int64_t out, int64_t in, dsv4_lw_fmt fmt,
                      const float *want)
{
    dsv4_lin h;
    dsv4_err e;
    int rc = dsv4_wsrc_lin(s, stem, out, in, &h, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (rc)
        return;
    CHECK_MSG(h.fmt == fmt, "%s: format %s, expected %s", stem, dsv4_lw_fmt_name(h.fmt), dsv4_lw_fmt_name(fmt));
    size_t n = (size_t)(out * in);
    float *f = malloc(n * sizeof *f);
    int np;
    float *x = want ? NULL : wl_expected(ck, stem, out, in, &np);
    rc = dsv4_lin_dequant_f32(&h, f, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (rc == 0 && (want || x))
        CHECK_MSG(!memcmp(f, want ? want : x, n * sizeof *f), "%s: values differ", stem);
    free(f);
    free(x);
    dsv4_wsrc_lin_done(s, &h);
}

static void fp8_forms(ra_art *a)
{
    ra_quant_fp8(a, "layers.0.attn.wq_a", ".weight_scale_inv", DSV4_F32);
    ra_quant_fp8(a, "layers.0.attn.wq_b", ".weight_scale_inv", DSV4_BF16);
    ra_quant_fp8(a, "layers.0.attn.wkv", ".weight_scale_inv", DSV4_F8_E8M0);
    ra_quant_fp8(a, "layers.0.attn.wo_a", ".weight_scale", DSV4_F32);
    /* per row: wo_b [256, 256] with one F32 scale per output row */
    ra_tensor *t = ra_find(a, "layers.0.attn.wo_b.weight");
    uint8_t q[256 * 256];
    float sc[256];
    for (int i = 0; i < 256 * 256; i++)
        q[i] = (uint8_t)(th_rand() & 0x7E); /* finite e4m3 codes of both signs (0x7F is NaN) */
    for (int r = 0; r < 256; r++)
        sc[r] = th_randf(0.001f, 0.1f);
    int64_t ws[2] = {256, 256}, ss[2] = {256, 1};
    (void)t;
    ra_put(a, "layers.0.attn.wo_b.weight", DSV4_F8_E4M3, 2, ws, q);
    ra_put(a, "layers.0.attn.wo_b.weight_scale_inv", DSV4_F32, 2, ss, sc);
}

TEST(wload_form_fp8_scales)
{
    dsv4_ckpt ck;
    dsv4_wsrc *s = edited("recipes/bf16.yaml", fp8_forms, &ck);
    REQUIRE(s);
    check_lin(s, &ck, "layers.0.attn.wq_a", 128, 256, DSV4_LW_FP8_BLOCK, NULL);
    check_lin(s, &ck, "layers.0.attn.wq_b", 512, 128, DSV4_LW_FP8_BLOCK, NULL);
    check_lin(s, &ck, "layers.0.attn.wkv", 128, 256, DSV4_LW_FP8_BLOCK, NULL);
    check_lin(s, &ck, "layers.0.attn.wo_a", 256, 256, DSV4_LW_FP8_BLOCK, NULL);
    const dsv4_tensor *w = dsv4_ckpt_find(&ck, "layers.0.attn.wo_b.weight"),
                      *sc = dsv4_ckpt_find(&ck, "layers.0.attn.wo_b.weight_scale_inv");
    REQUIRE(w && sc);
    float *want = malloc(256 * 256 * sizeof *want);
    for (int r = 0; r < 256; r++)
        for (int c = 0; c < 256; c++)
            want[r * 256 + c] = dsv4_e4m3_to_f32(w->data[r * 256 + c]) * dsv4_decode_elem(DSV4_F32, sc->data, (size_t)r);
    check_lin(s, &ck, "layers.0.attn.wo_b", 256, 256, DSV4_LW_F32, want);
    free(want);
    dsv4_layer_w lw;
    dsv4_err e;
    int rc = dsv4_layer_w_load(s, 0, wl_ops(), &lw, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (rc == 0)
        dsv4_layer_w_free(wl_ops(), &lw);
    CHECK_EQ_INT(wl_live(), 0);
    dsv4_ckpt_close(&ck);
    dsv4_wsrc_close(s);
}

static void put_g_idx(ra_art *a, const char *module, int permuted)
{
    int32_t g[256];
    for (int c = 0; c < 256; c++)
        g[c] = permuted ? (c * 7 + 3) % 2 : c / 128;
    int64_t shape[1] = {256};
    char n[200];
    snprintf(n, sizeof n, "%s.weight_g_idx", module);
    ra_put(a, n, DSV4_I32, 1, shape, g);
}

static void int4_g_idx(ra_art *a)
{
    ra_quant_int4(a, "layers.0.ffn.shared_experts.w1");
    put_g_idx(a, "layers.0.ffn.shared_experts.w1", 0);
    ra_quant_int4(a, "layers.0.ffn.shared_experts.w3");
    put_g_idx(a, "layers.0.ffn.shared_experts.w3", 1);
}

TEST(wload_form_int4_g_idx)
{
    dsv4_ckpt ck;
    dsv4_wsrc *s = edited("recipes/bf16.yaml", int4_g_idx, &ck);
    REQUIRE(s);
    check_lin(s, &ck, "layers.0.ffn.shared_experts.w1", 128, 256, DSV4_LW_INT4, NULL);
    /* permuted groups: W[r, c] = bf16((u - 8) · s[r, g[c]]) */
    const dsv4_tensor *pk = dsv4_ckpt_find(&ck, "layers.0.ffn.shared_experts.w3.weight_packed"),
                      *sc = dsv4_ckpt_find(&ck, "layers.0.ffn.shared_experts.w3.weight_scale");
    REQUIRE(pk && sc);
    int8_t *q = malloc(128 * 256);
    float *want = malloc(128 * 256 * sizeof *want);
    dsv4_int4_unpack((const int32_t *)pk->data, 128, 256, q);
    for (int r = 0; r < 128; r++)
        for (int c = 0; c < 256; c++) {
            float s2 = dsv4_decode_elem(DSV4_BF16, sc->data, (size_t)(r * 2 + (c * 7 + 3) % 2));
            want[r * 256 + c] = dsv4_bf16_to_f32(dsv4_f32_to_bf16((float)q[r * 256 + c] * s2));
        }
    check_lin(s, &ck, "layers.0.ffn.shared_experts.w3", 128, 256, DSV4_LW_BF16, want);
    free(q);
    free(want);
    dsv4_ckpt_close(&ck);
    dsv4_wsrc_close(s);
}

static void int4_zero_point(ra_art *a)
{
    ra_quant_int4(a, "layers.0.ffn.shared_experts.w2");
    int64_t shape[2] = {256 / 8, 1};
    ra_put(a, "layers.0.ffn.shared_experts.w2.weight_zero_point", DSV4_I32, 2, shape, NULL);
}

static void int4_bad_g_idx(ra_art *a)
{
    ra_quant_int4(a, "layers.0.ffn.shared_experts.w1");
    put_g_idx(a, "layers.0.ffn.shared_experts.w1", 0);
    ra_tensor *t = ra_find(a, "layers.0.ffn.shared_experts.w1.weight_g_idx");
    int32_t v = 2;
    memcpy(t->data + 4 * 77, &v, 4);
}

TEST(wload_form_int4_refused)
{
    dsv4_ckpt ck;
    dsv4_lin h;
    dsv4_err e;
    dsv4_wsrc *s = edited("recipes/bf16.yaml", int4_zero_point, &ck);
    REQUIRE(s);
    CHECK(dsv4_wsrc_lin(s, "layers.0.ffn.shared_experts.w2", 256, 128, &h, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "layers.0.ffn.shared_experts.w2.weight_zero_point");
    CHECK_STR_CONTAINS(e.msg, "not supported");
    CHECK_STR_CONTAINS(e.msg, ".safetensors");
    dsv4_ckpt_close(&ck);
    dsv4_wsrc_close(s);
    s = edited("recipes/bf16.yaml", int4_bad_g_idx, &ck);
    REQUIRE(s);
    CHECK(dsv4_wsrc_lin(s, "layers.0.ffn.shared_experts.w1", 128, 256, &h, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "weight_g_idx'[77] = 2");
    dsv4_ckpt_close(&ck);
    dsv4_wsrc_close(s);
}

/* ModelOpt stores the NVFP4 weight as .weight with weight_scale_2 = 1 / global scale; expert 0's
 * w1 keeps the artifact's global scale (a power of two: the conversion from MXFP4 is exact), w3
 * gets weight_scale_2 = 1/3, which no float reciprocal represents exactly. */
static void to_modelopt(ra_art *a)
{
    const char *m[2] = {"layers.0.ffn.experts.0.w1", "layers.0.ffn.experts.0.w3"};
    for (int i = 0; i < 2; i++) {
        char n[200], n2[200];
        snprintf(n, sizeof n, "%s.weight_packed", m[i]);
        ra_tensor *t = ra_find(a, n);
        snprintf(n2, sizeof n2, "%s.weight", m[i]);
        ra_put(a, n2, DSV4_U8, t->ndim, t->shape, t->data);
        ra_drop(a, n);
        snprintf(n, sizeof n, "%s.weight_global_scale", m[i]);
        float gs;
        memcpy(&gs, ra_find(a, n)->data, 4);
        ra_drop(a, n);
        float s2 = i ? 1.0f / 3.0f : 1.0f / gs;
        int64_t one[1] = {1};
        snprintf(n, sizeof n, "%s.weight_scale_2", m[i]);
        ra_put(a, n, DSV4_F32, 1, one, &s2);
    }
}

TEST(wload_form_modelopt_nvfp4)
{
    dsv4_ckpt ck;
    dsv4_wsrc *s = edited("recipes/nvfp4.yaml", to_modelopt, &ck);
    REQUIRE(s);
    const char *m[2] = {"layers.0.ffn.experts.0.w1", "layers.0.ffn.experts.0.w3"};
    for (int i = 0; i < 2; i++) {
        char n[200];
        snprintf(n, sizeof n, "%s.weight", m[i]);
        const dsv4_tensor *w = dsv4_ckpt_find(&ck, n);
        snprintf(n, sizeof n, "%s.weight_scale", m[i]);
        const dsv4_tensor *sc = dsv4_ckpt_find(&ck, n);
        snprintf(n, sizeof n, "%s.weight_scale_2", m[i]);
        const dsv4_tensor *s2t = dsv4_ckpt_find(&ck, n);
        REQUIRE(w && sc && s2t);
        float s2;
        memcpy(&s2, s2t->data, 4);
        dsv4_lin h;
        dsv4_err e;
        REQUIRE(dsv4_wsrc_lin(s, m[i], 128, 256, &h, &e) == 0);
        CHECK_EQ_INT(h.fmt, DSV4_LW_NVFP4);
        CHECK(h.gscale == 1.0f / s2);
        float *f = malloc(128 * 256 * sizeof *f);
        REQUIRE(dsv4_lin_dequant_f32(&h, f, &e) == 0);
        /* ModelOpt's value: E2M1 · e4m3(s) · weight_scale_2 */
        double worst = 0;
        for (int r = 0; r < 128; r++)
            for (int c = 0; c < 256; c++) {
                uint8_t b = w->data[r * 128 + c / 2];
                float want = dsv4_e2m1_to_f32(c % 2 ? b >> 4 : b & 15) *
                             (dsv4_e4m3_to_f32(sc->data[r * 16 + c / 16]) * s2);
                double d = fabs((double)f[r * 256 + c] - want) / (fabs(want) > 0 ? fabs(want) : 1);
                worst = d > worst ? d : worst;
            }
        if (i == 0)
            CHECK_MSG(worst == 0, "%s: power-of-two weight_scale_2 must be exact (relative error %g)", m[i], worst);
        else /* s / (1/s2) vs s·s2: two roundings of the scale and one of the product */
            CHECK_MSG(worst <= 3 * 0x1p-24, "%s: relative error %g", m[i], worst);
        free(f);
        dsv4_wsrc_lin_done(s, &h);
    }
    dsv4_ckpt_close(&ck);
    dsv4_wsrc_close(s);
}
