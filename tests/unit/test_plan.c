/* The artifact plan on the tiny fixture (release layout) for each recipe: jobs by kind, output
 * names / dtypes / shapes of representative tensors, the MTP block all BF16 with no quantization
 * suffix, the aliases (and the switch that leaves them out), the F32 set copied as F32, byte totals
 * (computed independently from the fixture's headers: see the comments), and config.json. */
#include "harness.h"
#include "model/inventory.h"
#include "test_plan_util.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

enum { COPY, BF16, FP8_PASS, FP8_RTN, FP8_FROM_FP4, INT4, NVFP4 };

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Every output under mtp.* is a BF16 .weight or one of the F32 set, never a quantization suffix. */
static void check_mtp_plain(const dsv4_plan *p, int line)
{
    int n = 0;
    for (size_t i = 0; i < p->n; i++)
        for (int k = 0; k < p->jobs[i].n_out; k++) {
            const dsv4_plan_out *o = &p->jobs[i].out[k];
            if (strncmp(o->name, "mtp.", 4))
                continue;
            n++;
            if (strstr(o->name, "weight_") || ends_with(o->name, ".scale") ||
                (o->dtype != DSV4_BF16 && o->dtype != DSV4_F32) || p->jobs[i].group != -1)
                th_fail(__FILE__, line, "MTP output %s is %s (job %s, group %d)", o->name, dsv4_dtype_name(o->dtype),
                        dsv4_job_kind_name(p->jobs[i].kind), p->jobs[i].group);
        }
    if (n != 135 - 58 + 2) /* 135 MTP tensors, 58 of them scales (48 experts, 10 FP8), + 2 aliases */
        th_fail(__FILE__, line, "%d MTP outputs", n);
}

/* The release's F32 tensors are copied as F32, tid2eid as I64; no name is written twice. */
static void check_copies(const tp_fixture *f, const dsv4_plan *p, int line)
{
    dsv4_inventory inv;
    dsv4_err e;
    if (dsv4_inventory_build(&f->cfg, &inv, &e))
        return;
    int f32 = 0;
    for (size_t i = 0; i < inv.n; i++) {
        const dsv4_inv_tensor *t = &inv.t[i];
        const dsv4_plan_job *j;
        const dsv4_plan_out *o = tp_out(p, t->name, &j);
        if (!t->is_fp32_set && t->role != DSV4_ROLE_TID2EID)
            continue;
        f32 += t->is_fp32_set;
        if (!o || j->kind != DSV4_JOB_COPY || o->dtype != t->dtype || j->src[0]->dtype != t->dtype ||
            strcmp(j->src[0]->name, t->name))
            th_fail(__FILE__, line, "%s not copied as %s", t->name, dsv4_dtype_name(t->dtype));
    }
    if (f32 != 49) /* 5 blocks x (6 hc + 1 sink) + 2 x 3 hc_head + 3 gate.bias + 3 + 2 ape */
        th_fail(__FILE__, line, "%d F32 tensors", f32);
    dsv4_inventory_free(&inv);
    for (size_t i = 0; i < p->n; i++)
        for (int k = 0; k < p->jobs[i].n_out; k++) {
            const dsv4_plan_job *j;
            tp_out(p, p->jobs[i].out[k].name, &j);
            if (j != &p->jobs[i])
                th_fail(__FILE__, line, "%s written twice", p->jobs[i].out[k].name);
        }
}

static void check_aliases(const dsv4_plan *p, int present, int line)
{
    const dsv4_plan_job *j;
    const dsv4_plan_out *o = tp_out(p, "mtp.0.head.weight", &j);
    if (!present) {
        if (o || tp_out(p, "mtp.0.emb.tok_emb.weight", NULL))
            th_fail(__FILE__, line, "aliases written although switched off");
        return;
    }
    if (!o || j->kind != DSV4_JOB_COPY || strcmp(j->src[0]->name, "head.weight") || o->dtype != DSV4_BF16 ||
        o->shape[0] != 1024 || o->shape[1] != 256)
        th_fail(__FILE__, line, "mtp.0.head.weight is not a copy of head.weight");
    o = tp_out(p, "mtp.0.emb.tok_emb.weight", &j);
    if (!o || j->kind != DSV4_JOB_COPY || strcmp(j->src[0]->name, "embed.weight"))
        th_fail(__FILE__, line, "mtp.0.emb.tok_emb.weight is not a copy of embed.weight");
    if (o && j != &p->jobs[p->n - 1])
        th_fail(__FILE__, line, "the aliases are not the last jobs");
}

/* Every source key is kept (quantization_config aside); provenance is complete. */
static void check_config(const tp_fixture *f, const dsv4_plan *p, const char *recipe_rel, int line)
{
    const char *key;
    json_t *v;
    json_object_foreach(f->source_config, key, v)
    {
        if (!strcmp(key, "quantization_config"))
            continue;
        if (!json_equal(v, json_object_get(p->config, key)))
            th_fail(__FILE__, line, "config key %s changed or dropped", key);
    }
    json_t *prov = json_object_get(p->config, "dsv4_provenance");
    char *buf, hex[33];
    size_t len;
    dsv4_err e;
    if (!prov || strcmp(json_string_value(json_object_get(prov, "tool")), "dsv4-quant") ||
        strcmp(json_string_value(json_object_get(prov, "version")), "0.1.0") ||
        !strstr(json_string_value(json_object_get(prov, "recipe")), recipe_rel) ||
        strlen(json_string_value(json_object_get(prov, "recipe_xxh3_128"))) != 32) {
        th_fail(__FILE__, line, "provenance block incomplete");
        return;
    }
    if (dsv4_read_file(th_path("fixtures/dsv4-tiny/model.safetensors.index.json"), 1 << 20, &buf, &len, &e))
        return;
    XXH128_hash_t h = XXH3_128bits(buf, len);
    free(buf);
    snprintf(hex, sizeof hex, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
    if (strcmp(json_string_value(json_object_get(prov, "source_index_xxh3_128")), hex))
        th_fail(__FILE__, line, "source index hash is not the xxh3-128 of model.safetensors.index.json");
}

static const json_t *qc_of(const dsv4_plan *p) { return json_object_get(p->config, "quantization_config"); }

static const char *group_str(const dsv4_plan *p, int g, const char *a, const char *b)
{
    char k[16];
    snprintf(k, sizeof k, "group_%d", g);
    const json_t *v = json_object_get(json_object_get(json_object_get(qc_of(p), "config_groups"), k), a);
    return b ? json_string_value(json_object_get(v, b)) : json_string_value(v);
}

TEST(plan_w4a16_tiny)
{
    tp_fixture f;
    dsv4_plan p;
    dsv4_err e;
    int c[7];
    REQUIRE(tp_open(&f) == 0);
    if (tp_plan(&f.ck, &f.cfg, f.source_config, "recipes/w4a16-rtn.yaml", &p, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        tp_close(&f);
        return;
    }
    tp_counts(&p, c);
    /* 99 plain tensors + 2 aliases; 58 MTP FP8/FP4 weights dequantized; 4 layers x (5 attention +
     * 3 shared) + 2 indexer.wq_b pass through; 4 x 16 x 3 routed experts INT4. */
    CHECK_EQ_INT(c[COPY], 101);
    CHECK_EQ_INT(c[BF16], 58);
    CHECK_EQ_INT(c[FP8_PASS], 34);
    CHECK_EQ_INT(c[INT4], 192);
    CHECK_EQ_INT(c[FP8_RTN] + c[FP8_FROM_FP4] + c[NVFP4], 0);
    CHECK_EQ_INT(p.n, 385);
    /* Sum of the output sizes worked out from the fixture headers (see the test's comment): */
    CHECK_EQ_INT(p.out_bytes, 13446448);
    CHECK_EQ_INT(p.peak_job_bytes, 1048576); /* embed / head: 512 KiB read + 512 KiB written */

    const dsv4_plan_job *j;
    TP_OUT(&p, "layers.0.attn.wq_a.weight", DSV4_JOB_FP8_PASS, DSV4_F8_E4M3, 2, 128, 256);
    TP_OUT(&p, "layers.0.attn.wq_a.weight_scale", DSV4_JOB_FP8_PASS, DSV4_BF16, 2, 1, 2);
    TP_OUT(&p, "layers.0.attn.wo_a.weight_scale", DSV4_JOB_FP8_PASS, DSV4_BF16, 2, 2, 2);
    TP_OUT(&p, "layers.3.attn.indexer.wq_b.weight", DSV4_JOB_FP8_PASS, DSV4_F8_E4M3, 2, 512, 128);
    TP_OUT(&p, "layers.2.ffn.shared_experts.w2.weight_scale", DSV4_JOB_FP8_PASS, DSV4_BF16, 2, 2, 1);
    TP_OUT(&p, "layers.0.ffn.experts.0.w1.weight_packed", DSV4_JOB_INT4, DSV4_I32, 2, 128, 32);
    TP_OUT(&p, "layers.0.ffn.experts.0.w1.weight_scale", DSV4_JOB_INT4, DSV4_BF16, 2, 128, 2);
    TP_OUT(&p, "layers.0.ffn.experts.0.w1.weight_shape", DSV4_JOB_INT4, DSV4_I64, 1, 2, 0);
    TP_OUT(&p, "layers.3.ffn.experts.15.w2.weight_packed", DSV4_JOB_INT4, DSV4_I32, 2, 256, 16);
    TP_OUT(&p, "layers.3.ffn.experts.15.w2.weight_scale", DSV4_JOB_INT4, DSV4_BF16, 2, 256, 1);
    TP_OUT(&p, "layers.1.attn.compressor.wkv.weight", DSV4_JOB_COPY, DSV4_BF16, 2, 256, 256);
    TP_OUT(&p, "layers.1.attn.indexer.weights_proj.weight", DSV4_JOB_COPY, DSV4_BF16, 2, 4, 256);
    TP_OUT(&p, "layers.0.ffn.gate.tid2eid", DSV4_JOB_COPY, DSV4_I64, 2, 1024, 4);
    TP_OUT(&p, "mtp.0.ffn.experts.3.w1.weight", DSV4_JOB_BF16, DSV4_BF16, 2, 128, 256);
    TP_OUT(&p, "mtp.0.e_proj.weight", DSV4_JOB_BF16, DSV4_BF16, 2, 256, 256);
    CHECK(!tp_out(&p, "layers.0.attn.wq_a.scale", NULL));
    CHECK(!tp_out(&p, "layers.0.ffn.experts.0.w1.weight", NULL));
    if (tp_out(&p, "layers.0.ffn.experts.0.w1.weight_packed", &j)) {
        CHECK(!strcmp(j->src[0]->name, "layers.0.ffn.experts.0.w1.weight") && j->src[0]->dtype == DSV4_I8);
        CHECK(!strcmp(j->src[1]->name, "layers.0.ffn.experts.0.w1.scale"));
        CHECK(!j->src[2] && j->group == 1 && j->rows == 128 && j->cols == 256);
    }
    if (tp_out(&p, "layers.0.attn.wkv.weight", &j))
        CHECK(!strcmp(j->src[1]->name, "layers.0.attn.wkv.scale") && j->group == 0);
    if (tp_out(&p, "mtp.0.attn.wq_a.weight", &j))
        CHECK(j->src[1] && !strcmp(j->src[1]->name, "mtp.0.attn.wq_a.scale"));
    check_mtp_plain(&p, __LINE__);
    check_copies(&f, &p, __LINE__);
    check_aliases(&p, 1, __LINE__);
    check_config(&f, &p, "recipes/w4a16-rtn.yaml", __LINE__);

    const json_t *qc = qc_of(&p);
    CHECK(!strcmp(json_string_value(json_object_get(qc, "quant_method")), "compressed-tensors"));
    CHECK(!strcmp(json_string_value(json_object_get(qc, "format")), "mixed-precision"));
    CHECK(!strcmp(json_string_value(json_object_get(qc, "scale_fmt")), "ue8m0"));
    CHECK(!strcmp(json_string_value(json_object_get(qc, "quantization_status")), "compressed"));
    CHECK_EQ_INT(json_object_size(json_object_get(qc, "config_groups")), 2);
    CHECK(!strcmp(group_str(&p, 0, "format", NULL), "float-quantized"));
    CHECK(!strcmp(group_str(&p, 0, "weights", "strategy"), "block"));
    CHECK(!strcmp(group_str(&p, 1, "format", NULL), "pack-quantized"));
    /* round-to-nearest until GPTQ lands: no act-order in the scheme */
    CHECK(json_is_null(json_object_get(json_object_get(json_object_get(json_object_get(qc, "config_groups"), "group_1"),
                                                       "weights"), "actorder")));
    CHECK(json_is_null(json_object_get(json_object_get(json_object_get(qc, "config_groups"), "group_1"),
                                       "input_activations")));
    dsv4_plan_free(&p);
    tp_close(&f);
}

TEST(plan_w4a8_is_w4a16_bytes)
{
    tp_fixture f;
    dsv4_plan a, b;
    dsv4_err e;
    REQUIRE(tp_open(&f) == 0);
    REQUIRE(tp_plan(&f.ck, &f.cfg, f.source_config, "recipes/w4a16.yaml", &a, &e) == 0); /* both GPTQ */
    if (tp_plan(&f.ck, &f.cfg, f.source_config, "recipes/w4a8.yaml", &b, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        dsv4_plan_free(&a);
        tp_close(&f);
        return;
    }
    tp_same_jobs(&a, &b, __LINE__);
    /* The configs differ only in the experts group's input activations. */
    json_t *qa = json_deep_copy(qc_of(&a));
    json_t *g1 = json_object_get(json_object_get(qa, "config_groups"), "group_1");
    json_object_set_new(g1, "input_activations",
                        json_pack("{s:n, s:n, s:b, s:n, s:i, s:n, s:{}, s:n, s:s, s:b, s:s, s:n}", "actorder",
                                  "block_structure", "dynamic", 1, "group_size", "num_bits", 8, "observer",
                                  "observer_kwargs", "scale_dtype", "strategy", "token", "symmetric", 1, "type",
                                  "float", "zp_dtype"));
    CHECK(json_equal(qa, qc_of(&b)));
    CHECK(!strcmp(group_str(&b, 1, "format", NULL), "pack-quantized"));
    json_decref(qa);
    dsv4_plan_free(&a);
    dsv4_plan_free(&b);
    tp_close(&f);
}

TEST(plan_nvfp4_tiny)
{
    tp_fixture f;
    dsv4_plan p;
    dsv4_err e;
    int c[7];
    REQUIRE(tp_open(&f) == 0);
    if (tp_plan(&f.ck, &f.cfg, f.source_config, "recipes/nvfp4.yaml", &p, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        tp_close(&f);
        return;
    }
    tp_counts(&p, c);
    CHECK_EQ_INT(c[NVFP4], 192);
    CHECK_EQ_INT(c[FP8_PASS], 34);
    CHECK_EQ_INT(c[BF16], 58);
    CHECK_EQ_INT(c[COPY], 101);
    /* Experts: packed N*K/2 + F8 scales N*K/16 + a 4-byte global scale each. */
    CHECK_EQ_INT(p.out_bytes, 13739056);
    TP_OUT(&p, "layers.0.ffn.experts.0.w1.weight_packed", DSV4_JOB_NVFP4, DSV4_U8, 2, 128, 128);
    TP_OUT(&p, "layers.0.ffn.experts.0.w1.weight_scale", DSV4_JOB_NVFP4, DSV4_F8_E4M3, 2, 128, 16);
    TP_OUT(&p, "layers.0.ffn.experts.0.w1.weight_global_scale", DSV4_JOB_NVFP4, DSV4_F32, 0, 0, 0);
    TP_OUT(&p, "layers.2.ffn.experts.7.w2.weight_packed", DSV4_JOB_NVFP4, DSV4_U8, 2, 256, 64);
    const dsv4_plan_job *j;
    if (tp_out(&p, "layers.0.ffn.experts.5.w1.weight_packed", &j))
        CHECK(j->src[2] && !strcmp(j->src[2]->name, "layers.0.ffn.experts.5.w3.weight") && j->src[3] &&
              !strcmp(j->src[3]->name, "layers.0.ffn.experts.5.w3.scale"));
    if (tp_out(&p, "layers.0.ffn.experts.5.w3.weight_packed", &j))
        CHECK(j->src[2] && !strcmp(j->src[2]->name, "layers.0.ffn.experts.5.w1.weight"));
    if (tp_out(&p, "layers.0.ffn.experts.5.w2.weight_packed", &j))
        CHECK(!j->src[2] && !j->src[3]);
    check_mtp_plain(&p, __LINE__);
    check_copies(&f, &p, __LINE__);
    check_aliases(&p, 1, __LINE__);
    check_config(&f, &p, "recipes/nvfp4.yaml", __LINE__);
    CHECK(!strcmp(group_str(&p, 1, "format", NULL), "nvfp4-pack-quantized"));
    CHECK(!strcmp(group_str(&p, 1, "weights", "strategy"), "tensor_group"));
    CHECK(!strcmp(group_str(&p, 1, "weights", "scale_dtype"), "torch.float8_e4m3fn"));
    dsv4_plan_free(&p);
    tp_close(&f);
}

TEST(plan_fp8_tiny)
{
    tp_fixture f;
    dsv4_plan p;
    dsv4_err e;
    int c[7];
    REQUIRE(tp_open(&f) == 0);
    if (tp_plan(&f.ck, &f.cfg, f.source_config, "recipes/fp8.yaml", &p, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        tp_close(&f);
        return;
    }
    tp_counts(&p, c);
    CHECK_EQ_INT(c[FP8_FROM_FP4], 192);
    CHECK_EQ_INT(c[FP8_PASS], 34);
    CHECK_EQ_INT(c[BF16], 58);
    CHECK_EQ_INT(p.out_bytes, 16491568);
    TP_OUT(&p, "layers.1.ffn.experts.2.w1.weight", DSV4_JOB_FP8_FROM_FP4, DSV4_F8_E4M3, 2, 128, 256);
    TP_OUT(&p, "layers.1.ffn.experts.2.w1.weight_scale", DSV4_JOB_FP8_FROM_FP4, DSV4_BF16, 2, 1, 2);
    TP_OUT(&p, "layers.1.ffn.experts.2.w2.weight_scale", DSV4_JOB_FP8_FROM_FP4, DSV4_BF16, 2, 2, 1);
    check_mtp_plain(&p, __LINE__);
    check_copies(&f, &p, __LINE__);
    check_aliases(&p, 1, __LINE__);
    check_config(&f, &p, "recipes/fp8.yaml", __LINE__);
    CHECK(!strcmp(json_string_value(json_object_get(qc_of(&p), "format")), "float-quantized"));
    CHECK_EQ_INT(json_object_size(json_object_get(qc_of(&p), "config_groups")), 1);
    dsv4_plan_free(&p);
    tp_close(&f);
}

TEST(plan_bf16_tiny)
{
    tp_fixture f;
    dsv4_plan p;
    dsv4_err e;
    int c[7];
    REQUIRE(tp_open(&f) == 0);
    if (tp_plan(&f.ck, &f.cfg, f.source_config, "recipes/bf16.yaml", &p, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        tp_close(&f);
        return;
    }
    tp_counts(&p, c);
    CHECK_EQ_INT(c[BF16], 284); /* every FP8 / FP4 weight */
    CHECK_EQ_INT(c[COPY], 99);
    CHECK_EQ_INT(p.n, 383);
    CHECK_EQ_INT(p.out_bytes, 23306352);
    TP_OUT(&p, "layers.0.ffn.experts.0.w1.weight", DSV4_JOB_BF16, DSV4_BF16, 2, 128, 256);
    TP_OUT(&p, "layers.0.attn.wq_a.weight", DSV4_JOB_BF16, DSV4_BF16, 2, 128, 256);
    TP_OUT(&p, "mtp.0.attn.wq_a.weight", DSV4_JOB_BF16, DSV4_BF16, 2, 128, 256);
    check_copies(&f, &p, __LINE__);
    check_aliases(&p, 0, __LINE__);
    check_config(&f, &p, "recipes/bf16.yaml", __LINE__);
    CHECK(!qc_of(&p));
    for (size_t i = 0; i < p.n; i++)
        CHECK(!strstr(p.jobs[i].out[0].name, "weight_") && !ends_with(p.jobs[i].out[0].name, ".scale"));
    dsv4_plan_free(&p);
    tp_close(&f);
}

TEST(plan_aliases_switch)
{
    tp_fixture f;
    dsv4_plan p;
    dsv4_err e;
    REQUIRE(tp_open(&f) == 0);
    const char *y = "groups:\n"
                    "  - name: a\n"
                    "    scheme: FP8_BLOCK\n"
                    "    targets: ['re:layers\\.\\d+\\.(attn\\.(indexer\\.)?w[qkvo]|ffn\\.shared_experts\\.)']\n"
                    "  - {name: e, scheme: W4A16, targets: ['re:layers\\.\\d+\\.ffn\\.experts\\.']}\n"
                    "mtp: {aliases: false}\n";
    REQUIRE(tp_plan(&f.ck, &f.cfg, f.source_config, y, &p, &e) == 0);
    CHECK_EQ_INT(p.n, 383);
    CHECK_EQ_INT(p.out_bytes, 13446448 - 2 * 524288); /* without the two 512 KiB copies */
    check_aliases(&p, 0, __LINE__);
    dsv4_plan_free(&p);
    tp_close(&f);
}

TEST(plan_llmc_example_equals_w4a16)
{
    tp_fixture f;
    dsv4_plan a, b;
    dsv4_err e;
    REQUIRE(tp_open(&f) == 0);
    REQUIRE(tp_plan(&f.ck, &f.cfg, f.source_config, "recipes/w4a16-rtn.yaml", &a, &e) == 0);
    if (tp_plan(&f.ck, &f.cfg, f.source_config, "recipes/examples/llmcompressor-w4a16.yaml", &b, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        dsv4_plan_free(&a);
        tp_close(&f);
        return;
    }
    tp_same_jobs(&a, &b, __LINE__);
    CHECK(json_equal(qc_of(&a), qc_of(&b)));
    dsv4_plan_free(&a);
    dsv4_plan_free(&b);
    tp_close(&f);
}
