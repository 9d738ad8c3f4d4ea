/* Weight loading (runner/weights.h) from the release layout of fixtures/dsv4-tiny: every layer,
 * the MTP block and the globals load, every linear's values equal the release dequantization of
 * its stored tensors (formats/dequant.h), every float vector and tid2eid equals the stored one,
 * every tensor of the fixture is used, host views point into the file where no conversion is
 * needed, and nothing stays allocated after the free functions. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#include "formats/fp.h"
#include "test_wload_util.h"

/* Compares every linear and vector of a loaded layer with the stored tensors; returns the bytes. */
static size_t check_lins(const dsv4_ckpt *ck, const wl_lin *l, size_t n, unsigned char *used)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const dsv4_lin *d = l[i].lin;
        int np;
        float *x = wl_expected(ck, l[i].stem, d->out, d->in, &np);
        CHECK_MSG(d->fmt == DSV4_LW_F32, "%s: backend format %s", l[i].stem, dsv4_lw_fmt_name(d->fmt));
        if (x)
            CHECK_MSG(!memcmp(x, d->w, (size_t)(d->out * d->in) * sizeof *x), "%s: values differ from the release "
                      "dequantization", l[i].stem);
        free(x);
        wl_mark_module(ck, used, l[i].stem);
        bytes += d->w_bytes + d->s_bytes;
    }
    return bytes;
}

static size_t check_vecs(const dsv4_ckpt *ck, const wl_vec *v, size_t n, unsigned char *used)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const dsv4_tensor *t = dsv4_ckpt_find(ck, v[i].name);
        CHECK_MSG(t && (int64_t)dsv4_tensor_numel(t) == v[i].n, "%s: not in the fixture with %lld elements",
                  v[i].name, (long long)v[i].n);
        if (!t || (int64_t)dsv4_tensor_numel(t) != v[i].n)
            continue;
        float *x = malloc((size_t)v[i].n * sizeof *x);
        dsv4_decode_row(t->dtype, t->data, x, (size_t)v[i].n);
        CHECK_MSG(!memcmp(x, v[i].v, (size_t)v[i].n * sizeof *x), "%s: values differ", v[i].name);
        free(x);
        wl_mark(ck, used, v[i].name);
        if (!v[i].host)
            bytes += (size_t)v[i].n * sizeof(float);
    }
    return bytes;
}

static void check_tid2eid(const dsv4_ckpt *ck, const dsv4_config *c, const dsv4_layer_w *w, unsigned char *used)
{
    char n[64];
    snprintf(n, sizeof n, "layers.%d.ffn.gate.tid2eid", w->id);
    const dsv4_tensor *t = dsv4_ckpt_find(ck, n);
    REQUIRE(t && t->dtype == DSV4_I64);
    int64_t K = c->n_activated_experts, bad = 0;
    for (int64_t i = 0; i < c->vocab_size * K; i++) {
        int64_t v;
        memcpy(&v, t->data + 8 * i, 8);
        bad += w->ffn.tid2eid[i] != v;
    }
    CHECK_MSG(bad == 0, "%s: %lld ids differ", n, (long long)bad);
    wl_mark(ck, used, n);
}

TEST(wload_release_fixture)
{
    dsv4_err e;
    dsv4_wsrc *s;
    dsv4_ckpt ck;
    const char *fx = th_path("fixtures/dsv4-tiny");
    int rc = dsv4_wsrc_open(fx, &s, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    REQUIRE(rc == 0);
    REQUIRE(dsv4_ckpt_open(fx, 0, &ck, &e) == 0);
    const dsv4_config *c = dsv4_wsrc_config(s);
    unsigned char *used = calloc(ck.n, 1);
    wl_lin *lins = calloc(4096, sizeof *lins);
    wl_vec vecs[64];
    REQUIRE(used && lins);
    dsv4_ops *o = wl_ops();
    for (int id = 0; id < c->n_layers + c->n_mtp; id++) {
        dsv4_layer_w w;
        rc = dsv4_layer_w_load(s, id, o, &w, &e);
        CHECK_MSG(rc == 0, "layer %d: %s", id, e.msg);
        if (rc)
            continue;
        CHECK_EQ_INT(w.id, id);
        CHECK_EQ_INT(w.is_mtp, id >= c->n_layers);
        CHECK_EQ_INT(w.is_hash, id < 2);
        CHECK_EQ_INT(w.type, id == 1 || id == 3 ? DSV4_ATTN_CSA : id == 2 ? DSV4_ATTN_HCA : DSV4_ATTN_SWA);
        CHECK_EQ_INT(w.ffn.tid2eid != NULL, id < 2);
        CHECK_EQ_INT(w.ffn.gate_bias != NULL, id >= 2);
        CHECK_EQ_INT(w.attn.c_wkv.w != NULL, id == 1 || id == 2 || id == 3);
        CHECK_EQ_INT(w.attn.i_wq_b.w != NULL, id == 1 || id == 3);
        CHECK_EQ_INT(w.e_proj.w != NULL, id == 4);
        CHECK_EQ_INT(w.ffn.n_experts, 16);
        size_t nl = wl_layer_lins(c, &w, lins, 4096), nv = wl_layer_vecs(c, &w, vecs, 64);
        /* 5 attention + gate + 3 shared + 48 experts; compressor 2; indexer 4; MTP 2 */
        CHECK_EQ_INT(nl, 57 + (id == 1 || id == 2 || id == 3) * 2 + (id == 1 || id == 3) * 4 + (id == 4) * 2);
        size_t bytes = check_lins(&ck, lins, nl, used) + check_vecs(&ck, vecs, nv, used);
        CHECK_EQ_INT(w.bytes, bytes);
        if (w.ffn.tid2eid)
            check_tid2eid(&ck, c, &w, used);
        dsv4_layer_w_free(o, &w);
        CHECK_EQ_INT(wl_live(), 0);
        dsv4_layer_w_free(o, &w); /* idempotent */
    }
    dsv4_global_w g;
    rc = dsv4_global_w_load(s, o, &g, &e);
    CHECK_MSG(rc == 0, "globals: %s", e.msg);
    if (rc == 0) {
        CHECK_EQ_INT(g.embed.out, 1024);
        size_t nl = wl_global_lins(&g, lins), nv = wl_global_vecs(c, &g, vecs);
        CHECK_EQ_INT(nl, 2);
        CHECK_EQ_INT(nv, 4);
        CHECK_EQ_INT(g.bytes, check_lins(&ck, lins, nl, used) + check_vecs(&ck, vecs, nv, used));
        dsv4_global_w_free(o, &g);
        dsv4_global_w_free(o, &g);
    }
    CHECK_EQ_INT(wl_live(), 0);
    size_t n_used = 0;
    for (size_t i = 0; i < ck.n; i++) {
        n_used += used[i];
        CHECK_MSG(used[i], "%s: never loaded", ck.by_name[i]->name);
    }
    CHECK_EQ_INT(n_used, 667);
    free(used);
    free(lins);
    dsv4_ckpt_close(&ck);
    dsv4_wsrc_close(s);
}

/* Host views: FP8 keeps the file's e4m3 bytes with float scales, FP4 points into the file, BF16
 * tables stay BF16, the fp32 projections come back as F32, and conversion buffers are released. */
TEST(wload_host_views)
{
    dsv4_err e;
    dsv4_wsrc *s;
    dsv4_ckpt ck;
    const char *fx = th_path("fixtures/dsv4-tiny");
    REQUIRE(dsv4_wsrc_open(fx, &s, &e) == 0);
    REQUIRE(dsv4_ckpt_open(fx, 0, &ck, &e) == 0);
    dsv4_lin h;
    REQUIRE(dsv4_wsrc_lin(s, "layers.0.attn.wo_a", 256, 256, &h, &e) == 0);
    const dsv4_tensor *w = dsv4_ckpt_find(&ck, "layers.0.attn.wo_a.weight"),
                      *sc = dsv4_ckpt_find(&ck, "layers.0.attn.wo_a.scale");
    CHECK_EQ_INT(h.fmt, DSV4_LW_FP8_BLOCK);
    CHECK(!memcmp(h.w, w->data, 256 * 256));
    for (int i = 0; i < 4; i++)
        CHECK(((float *)h.s)[i] == dsv4_e8m0_to_f32(sc->data[i]));
    CHECK_EQ_INT(h.w_bytes, 65536);
    CHECK_EQ_INT(h.s_bytes, 16);
    dsv4_wsrc_lin_done(s, &h);
    CHECK(h.w == NULL && h.s == NULL);

    REQUIRE(dsv4_wsrc_lin(s, "mtp.0.ffn.experts.3.w2", 256, 128, &h, &e) == 0);
    CHECK_EQ_INT(h.fmt, DSV4_LW_MXFP4);
    CHECK(h.w == (void *)dsv4_wsrc_tensor(s, "mtp.0.ffn.experts.3.w2.weight")->data); /* no copy */
    CHECK(h.s == (void *)dsv4_wsrc_tensor(s, "mtp.0.ffn.experts.3.w2.scale")->data);
    CHECK_EQ_INT(h.w_bytes, 256 * 64);
    CHECK_EQ_INT(h.s_bytes, 256 * 4);
    dsv4_wsrc_lin_done(s, &h);

    REQUIRE(dsv4_wsrc_lin(s, "embed", 1024, 256, &h, &e) == 0);
    CHECK_EQ_INT(h.fmt, DSV4_LW_BF16);
    dsv4_wsrc_lin_done(s, &h);
    REQUIRE(dsv4_wsrc_lin_f32(s, "layers.2.attn.compressor.wgate", 128, 256, &h, &e) == 0);
    CHECK_EQ_INT(h.fmt, DSV4_LW_F32);
    CHECK_EQ_INT(h.w_bytes, 128 * 256 * 4);
    const dsv4_tensor *g = dsv4_ckpt_find(&ck, "layers.2.attn.compressor.wgate.weight");
    REQUIRE(g && g->dtype == DSV4_BF16);
    uint16_t b0;
    memcpy(&b0, g->data, 2);
    CHECK(((float *)h.w)[0] == dsv4_bf16_to_f32(b0));
    dsv4_wsrc_lin_done(s, &h);

    /* a shape the caller did not expect, a tensor that is not a module */
    CHECK(dsv4_wsrc_lin(s, "layers.0.attn.wq_a", 128, 512, &h, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "[128, 256]");
    CHECK_STR_CONTAINS(e.msg, "[128, 512]");
    CHECK_STR_CONTAINS(e.msg, "layers.0.attn.wq_a.weight");
    CHECK_STR_CONTAINS(e.msg, ".safetensors");
    CHECK(dsv4_wsrc_lin(s, "layers.0.hc_attn_fn", 24, 1024, &h, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "missing");
    float v[24];
    CHECK(dsv4_wsrc_f32(s, "layers.0.hc_attn_base", 24, v, &e) == 0);
    CHECK(dsv4_wsrc_f32(s, "layers.0.hc_attn_base", 23, v, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "23 elements");
    CHECK(dsv4_wsrc_tensor(s, "layers.0.ffn.gate.tid2eid") != NULL);
    CHECK(dsv4_wsrc_tensor(s, "layers.0.ffn.gate.bias") == NULL);
    dsv4_layer_w lw;
    CHECK(dsv4_layer_w_load(s, 5, wl_ops(), &lw, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "layer 5 does not exist");
    dsv4_ckpt_close(&ck);
    dsv4_wsrc_close(s);
}

TEST(wload_formats)
{
    size_t w, s;
    CHECK(dsv4_lw_sizes(DSV4_LW_FP8_BLOCK, 200, 300, 0, &w, &s) == 0 && w == 60000 && s == 2 * 3 * 4);
    CHECK(dsv4_lw_sizes(DSV4_LW_MXFP4, 4, 64, 0, &w, &s) == 0 && w == 128 && s == 8);
    CHECK(dsv4_lw_sizes(DSV4_LW_MXFP4, 4, 48, 0, &w, &s) == -1);
    CHECK(dsv4_lw_sizes(DSV4_LW_INT4, 4, 256, 128, &w, &s) == 0 && w == 4 * 32 * 4 && s == 4 * 2 * 2);
    CHECK(dsv4_lw_sizes(DSV4_LW_INT4, 4, 256, 0, &w, &s) == -1);
    CHECK(dsv4_lw_sizes(DSV4_LW_INT4, 4, 256, 96, &w, &s) == -1);
    CHECK(dsv4_lw_sizes(DSV4_LW_NVFP4, 4, 32, 0, &w, &s) == 0 && w == 64 && s == 8);
    CHECK(dsv4_lw_sizes(DSV4_LW_NVFP4, 4, 24, 0, &w, &s) == -1);
    CHECK(dsv4_lw_sizes(DSV4_LW_BF16, 3, 5, 0, &w, &s) == 0 && w == 30 && s == 0);
    CHECK(dsv4_lw_sizes(DSV4_LW_F32, 0, 5, 0, &w, &s) == -1);
    CHECK(dsv4_lw_sizes(DSV4_LW_F32, INT64_MAX / 2, 5, 0, &w, &s) == -1);
    CHECK(!strcmp(dsv4_lw_fmt_name(DSV4_LW_NVFP4), "nvfp4"));
    CHECK(!strcmp(dsv4_lw_fmt_name(DSV4_LW_FP8_BLOCK), "fp8_block"));
    dsv4_lin bad = {.out = 4, .in = 48, .fmt = DSV4_LW_MXFP4};
    dsv4_err e;
    float f[4];
    CHECK(dsv4_lin_dequant_f32(&bad, f, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "mxfp4");
}
