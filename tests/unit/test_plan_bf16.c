/* Plans from BF16 checkpoints (held in memory, shaped by the tiny config's inventory): release
 * names or transformers names give the same artifact as the release layout, by RTN jobs; what a
 * BF16 source must not be (fused experts, unknown / missing tensors, the F32 set downcast, a
 * dense weight with a scale) is refused naming the tensor. */
#include "harness.h"
#include "test_plan_util.h"

#include <stdlib.h>
#include <string.h>

enum { COPY, BF16, FP8_PASS, FP8_RTN, FP8_FROM_FP4, INT4, NVFP4 };

static int plan_fake(const tp_fake *k, const tp_fixture *f, const char *recipe, dsv4_plan *p, int line)
{
    dsv4_err e;
    if (tp_plan(&k->ck, &f->cfg, f->source_config, recipe, p, &e)) {
        th_fail(__FILE__, line, "%s", e.msg);
        return -1;
    }
    return 0;
}

TEST(plan_bf16_source_release_names)
{
    tp_fixture f;
    tp_fake k;
    dsv4_plan p, ref;
    dsv4_err e;
    int c[7];
    REQUIRE(tp_open(&f) == 0);
    REQUIRE(tp_fake_build(&k, &f.cfg, 0, NULL, NULL) == 0);
    REQUIRE(tp_plan(&f.ck, &f.cfg, f.source_config, "recipes/w4a16-rtn.yaml", &ref, &e) == 0);
    if (plan_fake(&k, &f, "recipes/w4a16-rtn.yaml", &p, __LINE__) == 0) {
        tp_counts(&p, c);
        CHECK_EQ_INT(c[FP8_RTN], 34);
        CHECK_EQ_INT(c[INT4], 192);
        CHECK_EQ_INT(c[COPY], 101 + 58); /* the MTP weights are BF16 already */
        CHECK_EQ_INT(c[BF16] + c[FP8_PASS], 0);
        /* The same artifact as from the release layout. */
        CHECK_EQ_INT(p.n, ref.n);
        CHECK_EQ_INT(p.out_bytes, ref.out_bytes);
        const dsv4_plan_job *j;
        if (tp_out(&p, "layers.2.ffn.experts.4.w3.weight_packed", &j))
            CHECK(j->src[0]->dtype == DSV4_BF16 && !j->src[1] && j->cols == 256);
        TP_OUT(&p, "layers.0.attn.wq_a.weight_scale", DSV4_JOB_FP8_RTN, DSV4_BF16, 2, 1, 2);
        CHECK(json_equal(json_object_get(p.config, "quantization_config"),
                         json_object_get(ref.config, "quantization_config")));
        const char *h = json_string_value(json_object_get(json_object_get(p.config, "dsv4_provenance"),
                                                          "source_index_xxh3_128"));
        CHECK(h && strlen(h) == 32);
        dsv4_plan_free(&p);
    }
    if (plan_fake(&k, &f, "recipes/nvfp4.yaml", &p, __LINE__) == 0) {
        const dsv4_plan_job *j;
        if (tp_out(&p, "layers.1.ffn.experts.0.w3.weight_packed", &j))
            CHECK(j->kind == DSV4_JOB_NVFP4 && !j->src[1] && j->src[2] && !j->src[3] &&
                  !strcmp(j->src[2]->name, "layers.1.ffn.experts.0.w1.weight"));
        dsv4_plan_free(&p);
    }
    if (plan_fake(&k, &f, "recipes/fp8.yaml", &p, __LINE__) == 0) {
        tp_counts(&p, c);
        CHECK_EQ_INT(c[FP8_RTN], 34 + 192);
        CHECK_EQ_INT(c[FP8_FROM_FP4], 0);
        dsv4_plan_free(&p);
    }
    if (plan_fake(&k, &f, "recipes/bf16.yaml", &p, __LINE__) == 0) {
        tp_counts(&p, c);
        CHECK_EQ_INT(c[COPY], 383);
        CHECK(!json_object_get(p.config, "quantization_config"));
        dsv4_plan_free(&p);
    }
    dsv4_plan_free(&ref);
    tp_fake_free(&k);
    tp_close(&f);
}

TEST(plan_bf16_source_transformers_names)
{
    tp_fixture f;
    tp_fake a, b;
    dsv4_plan pa, pb;
    REQUIRE(tp_open(&f) == 0);
    REQUIRE(tp_fake_build(&a, &f.cfg, 0, NULL, NULL) == 0);
    REQUIRE(tp_fake_build(&b, &f.cfg, 1, NULL, NULL) == 0);
    int found = 0;
    for (size_t i = 0; i < b.n; i++)
        found += !strcmp(b.t[i].name, "model.layers.1.self_attn.compressor.indexer.q_b_proj.weight") ||
                 !strcmp(b.t[i].name, "model.layers.0.mlp.experts.3.up_proj.weight") ||
                 !strcmp(b.t[i].name, "model.mtp.0.self_attn.q_a_proj.weight") || !strcmp(b.t[i].name, "lm_head.weight");
    CHECK_EQ_INT(found, 4);
    if (plan_fake(&a, &f, "recipes/w4a16-rtn.yaml", &pa, __LINE__) == 0) {
        if (plan_fake(&b, &f, "recipes/w4a16-rtn.yaml", &pb, __LINE__) == 0) {
            tp_same_jobs(&pa, &pb, __LINE__);
            const dsv4_plan_job *j;
            if (tp_out(&pb, "layers.0.ffn.experts.3.w3.weight_packed", &j))
                CHECK(!strcmp(j->src[0]->name, "model.layers.0.mlp.experts.3.up_proj.weight"));
            dsv4_plan_free(&pb);
        }
        dsv4_plan_free(&pa);
    }
    tp_fake_free(&a);
    tp_fake_free(&b);
    tp_close(&f);
}

static int drop_hc(void *ctx, const dsv4_inv_tensor *it, dsv4_tensor *t)
{
    return !strcmp(it->name, (const char *)ctx);
}

static int set_bf16(void *ctx, const dsv4_inv_tensor *it, dsv4_tensor *t)
{
    if (!strcmp(it->name, (const char *)ctx))
        t->dtype = DSV4_BF16;
    return 0;
}

static int set_f32(void *ctx, const dsv4_inv_tensor *it, dsv4_tensor *t)
{
    if (!strcmp(it->name, (const char *)ctx))
        t->dtype = DSV4_F32;
    return 0;
}

static int set_shape(void *ctx, const dsv4_inv_tensor *it, dsv4_tensor *t)
{
    if (!strcmp(it->name, (const char *)ctx))
        t->shape[1] /= 2;
    return 0;
}

static void refused(const tp_fixture *f, tp_fake *k, const char *n1, const char *n2, int line)
{
    dsv4_plan p;
    dsv4_err e;
    if (tp_plan(&k->ck, &f->cfg, f->source_config, "recipes/w4a16-rtn.yaml", &p, &e) == 0) {
        th_fail(__FILE__, line, "accepted");
        dsv4_plan_free(&p);
    } else if (!strstr(e.msg, n1) || (n2 && !strstr(e.msg, n2)))
        th_fail(__FILE__, line, "expected \"%s\" / \"%s\" in \"%s\"", n1, n2 ? n2 : "", e.msg);
    tp_fake_free(k);
}

TEST(plan_bf16_source_refusals)
{
    tp_fixture f;
    tp_fake k;
    REQUIRE(tp_open(&f) == 0);

    REQUIRE(tp_fake_build(&k, &f.cfg, 1, NULL, NULL) == 0);
    tp_fake_add(&k, "model.layers.0.mlp.experts.gate_up_proj", DSV4_BF16, 2, 16, 256);
    refused(&f, &k, "model.layers.0.mlp.experts.gate_up_proj' is BF16 with 2 dimensions",
            "expected a BF16 (or F16/F32) [16, 256, 256] for 16 experts", __LINE__);

    REQUIRE(tp_fake_build(&k, &f.cfg, 0, NULL, NULL) == 0);
    tp_fake_add(&k, "layers.0.attn.extra.weight", DSV4_BF16, 1, 4, 0);
    refused(&f, &k, "'layers.0.attn.extra.weight' is not part of the DeepSeek-V4 release inventory", NULL, __LINE__);

    REQUIRE(tp_fake_build(&k, &f.cfg, 0, drop_hc, "layers.2.hc_ffn_base") == 0);
    refused(&f, &k, "the source has no tensor 'layers.2.hc_ffn_base'", NULL, __LINE__);

    REQUIRE(tp_fake_build(&k, &f.cfg, 0, set_bf16, "layers.1.attn.compressor.ape") == 0);
    refused(&f, &k, "'layers.1.attn.compressor.ape' is BF16", "F32", __LINE__);

    REQUIRE(tp_fake_build(&k, &f.cfg, 0, set_shape, "layers.0.ffn.experts.2.w2.weight") == 0);
    refused(&f, &k, "layers.0.ffn.experts.2.w2.weight", "[256, 64], expected BF16 [256, 128]", __LINE__);

    REQUIRE(tp_fake_build(&k, &f.cfg, 0, NULL, NULL) == 0);
    tp_fake_add(&k, "layers.0.attn.wq_a.scale", DSV4_F8_E8M0, 2, 1, 2);
    refused(&f, &k, "dense BF16 weight but the source also has a scale 'layers.0.attn.wq_a.scale'", NULL, __LINE__);

    REQUIRE(tp_fake_build(&k, &f.cfg, 0, set_f32, "layers.0.attn.wq_a.weight") == 0);
    {
        /* A wider dense weight is fine (the packers round it); a release-dtype weight needs its scale. */
        dsv4_plan p;
        dsv4_err e;
        if (tp_plan(&k.ck, &f.cfg, f.source_config, "recipes/w4a16-rtn.yaml", &p, &e) == 0) {
            TP_OUT(&p, "layers.0.attn.wq_a.weight", DSV4_JOB_FP8_RTN, DSV4_F8_E4M3, 2, 128, 256);
            dsv4_plan_free(&p);
        } else
            th_fail(__FILE__, __LINE__, "%s", e.msg);
        tp_fake_free(&k);
    }
    tp_close(&f);
}

static int set_fp8_noscale(void *ctx, const dsv4_inv_tensor *it, dsv4_tensor *t)
{
    if (!strcmp(it->name, "layers.0.attn.wq_a.weight"))
        t->dtype = DSV4_F8_E4M3;
    return 0;
}

TEST(plan_bf16_source_mixed)
{
    tp_fixture f;
    tp_fake k;
    dsv4_plan p;
    dsv4_err e;
    REQUIRE(tp_open(&f) == 0);
    REQUIRE(tp_fake_build(&k, &f.cfg, 0, set_fp8_noscale, NULL) == 0);
    CHECK(tp_plan(&k.ck, &f.cfg, f.source_config, "recipes/w4a16-rtn.yaml", &p, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "'layers.0.attn.wq_a.weight' is F8_E4M3 but its scale 'layers.0.attn.wq_a.scale' is missing");
    tp_fake_free(&k);

    /* A norm stored wider than the release's BF16 is rounded back; the served aliases in a source
     * are left out (they are written again from head and embed). */
    REQUIRE(tp_fake_build(&k, &f.cfg, 0, set_f32, "layers.0.attn_norm.weight") == 0);
    tp_fake_add(&k, "mtp.0.head.weight", DSV4_BF16, 2, 1024, 256);
    tp_fake_add(&k, "mtp.0.emb.tok_emb.weight", DSV4_BF16, 2, 1024, 256);
    if (plan_fake(&k, &f, "recipes/w4a16-rtn.yaml", &p, __LINE__) == 0) {
        CHECK_EQ_INT(p.n, 385);
        TP_OUT(&p, "layers.0.attn_norm.weight", DSV4_JOB_BF16, DSV4_BF16, 1, 256, 0);
        const dsv4_plan_job *j;
        if (tp_out(&p, "mtp.0.head.weight", &j))
            CHECK(!strcmp(j->src[0]->name, "head.weight"));
        dsv4_plan_free(&p);
    }
    tp_fake_free(&k);
    tp_close(&f);
}

/* V4-Flash at full size (43 layers, 256 experts, MTP): a BF16 checkpoint in memory. */
TEST(plan_bf16_source_flash_scale)
{
    tp_fixture f;
    tp_fake k;
    dsv4_plan p;
    int c[7];
    dsv4_err e;
    REQUIRE(tp_open(&f) == 0);
    dsv4_config flash;
    REQUIRE(dsv4_config_load(th_path("fixtures/configs/deepseek-v4-flash.config.json"), &flash, &e) == 0);
    REQUIRE(tp_fake_build(&k, &flash, 0, NULL, NULL) == 0);
    if (tp_plan(&k.ck, &flash, NULL, "recipes/w4a16-rtn.yaml", &p, &e) == 0) {
        tp_counts(&p, c);
        CHECK_EQ_INT(c[INT4], 43 * 256 * 3);
        CHECK_EQ_INT(c[FP8_RTN], 43 * 8 + 21); /* attention + shared experts, indexer.wq_b of the CSA layers */
        CHECK_EQ_INT(p.n, 69187 - 34167 + 2);  /* every tensor but the scales, + 2 aliases */
        /* A config made from nothing gets the release keys vLLM reads. */
        CHECK_EQ_INT(json_array_size(json_object_get(p.config, "compress_ratios")), 44);
        CHECK_EQ_INT(json_integer_value(json_object_get(p.config, "num_hash_layers")), 3);
        CHECK(json_is_false(json_object_get(p.config, "tie_word_embeddings")));
        CHECK(json_object_get(json_object_get(p.config, "rope_scaling"), "factor"));
        dsv4_plan_free(&p);
    } else
        th_fail(__FILE__, __LINE__, "%s", e.msg);
    tp_fake_free(&k);
    tp_close(&f);
}
