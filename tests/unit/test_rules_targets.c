/* The quantization_config target rules (rules_targets.c) simulated against vLLM's names: no false
 * positive on the clean artifacts, the regenerated config equal to dsv4-quant's exactly, and each
 * damage (modes 7, 8, 9, 20, 24, unused targets, wrong group args, class targets) found with its
 * evidence and, where the rule repairs, fix ops that restore the clean config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "test_rules_util.h"
#include "verify/vt_regen.h"

static const char *const QUANTIZED[] = {"w4a16", "w4a8", "nvfp4", "fp8"};

static json_t *clean_qc(const char *recipe)
{
    char p[700];
    json_error_t je;
    snprintf(p, sizeof p, "%s/config.json", tr_clean(recipe));
    json_t *c = json_load_file(p, 0, &je), *q = json_incref(json_object_get(c, "quantization_config"));
    json_decref(c);
    return q;
}

static int damaged(dsv4_vctx *v, const char *recipe, tr_config_fn edit, void *ctx, const char *ids)
{
    const char *clean = tr_clean(recipe), *out = tr_out("dmg");
    if (!clean || tr_copy_config(clean, out, edit, ctx))
        return -1;
    return tr_run(v, out, NULL, ids ? ids : tr_ids(dsv4_rules_targets));
}

/* The config with every fix op applied has the clean quantization_config. */
static void check_repairs(const dsv4_vctx *v, const char *recipe)
{
    json_t *got = tr_apply_config(v->art.config, &v->fixes), *want = clean_qc(recipe);
    CHECK_MSG(v->fixes.n > 0, "no fix ops");
    CHECK_MSG(json_equal(json_object_get(got, "quantization_config"), want),
              "the fix ops do not restore the clean %s quantization_config", recipe);
    json_decref(got);
    json_decref(want);
}

static json_t *group(json_t *c, const char *g)
{
    return json_object_get(json_object_get(json_object_get(c, "quantization_config"), "config_groups"), g);
}

static json_t *ignore(json_t *c)
{
    return json_object_get(json_object_get(c, "quantization_config"), "ignore");
}

TEST(rules_targets_clean_artifacts_pass)
{
    for (size_t i = 0; i < sizeof QUANTIZED / sizeof *QUANTIZED; i++) {
        dsv4_vctx v;
        REQUIRE(tr_clean(QUANTIZED[i]) && tr_run(&v, tr_clean(QUANTIZED[i]), NULL, tr_ids(dsv4_rules_targets)) == 0);
        for (size_t k = 0; k < v.n_results; k++)
            CHECK_MSG(v.results[k].status == DSV4_RS_PASS, "%s: %s is %d: %s", QUANTIZED[i], v.results[k].rule->id,
                      v.results[k].status, v.results[k].n_kept ? v.results[k].evidence[0] : v.results[k].skip_reason);
        CHECK_EQ_INT(v.fixes.n, 0);
        dsv4_vctx_close(&v);
    }
    dsv4_vctx v;
    REQUIRE(tr_run(&v, tr_clean("bf16"), NULL, tr_ids(dsv4_rules_targets)) == 0);
    for (size_t k = 0; k < v.n_results; k++)
        CHECK(v.results[k].status == DSV4_RS_SKIP);
    CHECK(tr_says(&v, "targets-match-vllm", "not a compressed-tensors artifact"));
    dsv4_vctx_close(&v);
}

TEST(rules_targets_regenerated_equals_dsv4_quant)
{
    for (size_t i = 0; i < sizeof QUANTIZED / sizeof *QUANTIZED; i++) {
        dsv4_vctx v;
        dsv4_vt_view w;
        char why[600];
        dsv4_err e;
        REQUIRE(dsv4_vctx_open(&v, tr_clean(QUANTIZED[i]), NULL, &e) == 0);
        REQUIRE(dsv4_vt_view_open(&v, &w, why, sizeof why) == 0);
        json_t *q = dsv4_vt_regen(&v, &w, why, sizeof why);
        CHECK_MSG(q && json_equal(q, v.qc), "%s: regenerated config differs (%s)", QUANTIZED[i], q ? "" : why);
        if (q) { /* same text too: keys in the same order */
            char *a = json_dumps(q, JSON_COMPACT), *b = json_dumps(v.qc, JSON_COMPACT);
            CHECK(a && b && !strcmp(a, b));
            free(a);
            free(b);
        }
        json_decref(q);
        dsv4_vt_view_free(&w);
        dsv4_vctx_close(&v);
    }
}

static void hf_targets(json_t *c, void *ctx)
{
    (void)ctx;
    json_object_set_new(group(c, "group_1"), "targets",
                        json_pack("[s]", "re:^model\\.layers\\.\\d+\\.mlp\\.experts\\.\\d+\\.(gate_proj|up_proj|down_proj)$"));
    json_array_append_new(ignore(c), json_string("model.layers.0.mlp.shared_experts.gate_proj"));
}

TEST(rules_targets_transformers_names)
{
    dsv4_vctx v;
    REQUIRE(damaged(&v, "w4a16", hf_targets, NULL, NULL) == 0);
    CHECK_EQ_INT(tr_status(&v, "targets-release-names"), DSV4_RS_FAIL);
    CHECK_EQ_INT(tr_result(&v, "targets-release-names")->n_found, 2);
    CHECK(tr_says(&v, "targets-release-names", "matches model.layers.0.mlp.experts.0.gate_proj"));
    CHECK(tr_says(&v, "targets-release-names", "ignore[6]"));
    CHECK_EQ_INT(tr_status(&v, "targets-match-vllm"), DSV4_RS_FAIL);
    CHECK(tr_says(&v, "targets-match-vllm", "model.layers.0.ffn.experts.0.gate_proj (layers.0.ffn.experts.0.w1, "
                                            "stored INT4 group 128) is matched by no target"));
    CHECK_EQ_INT(tr_result(&v, "targets-match-vllm")->n_found, 4 * 16 * 3);
    CHECK_EQ_INT(tr_status(&v, "targets-unused"), DSV4_RS_PASS); /* reported once, as transformers-named */
    CHECK_EQ_INT(tr_n_ops(&v, "targets-release-names"), 2);
    CHECK_EQ_INT(tr_n_ops(&v, "targets-match-vllm"), 2); /* the same ops: each rule is repaired on its own */
    check_repairs(&v, "w4a16");
    dsv4_vctx_close(&v);
}

static void replace_target(json_t *c, const char *g, size_t i, const char *from, const char *to)
{
    json_t *t = json_object_get(group(c, g), "targets");
    const char *s = json_string_value(json_array_get(t, i));
    const char *p = s ? strstr(s, from) : NULL;
    if (!p)
        return;
    char buf[600];
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
    json_array_set_new(t, i, json_string(buf));
}

static void no_fused_names(json_t *c, void *ctx)
{
    (void)ctx;
    replace_target(c, "group_0", 0, "(wq_a|fused_wqa_wkv|wkv|", "(wq_a|wkv|");
}

TEST(rules_targets_fused_name_missing)
{
    dsv4_vctx v;
    REQUIRE(damaged(&v, "nvfp4", no_fused_names, NULL, NULL) == 0);
    CHECK_EQ_INT(tr_status(&v, "targets-match-vllm"), DSV4_RS_FAIL);
    CHECK(tr_says(&v, "targets-match-vllm", "model.layers.0.attn.fused_wqa_wkv (layers.0.attn.wq_a, stored FP8 block "
                                            "128x128) is matched by no target"));
    CHECK_EQ_INT(tr_status(&v, "targets-release-names"), DSV4_RS_PASS);
    CHECK_EQ_INT(tr_n_ops(&v, "targets-match-vllm"), 1);
    check_repairs(&v, "nvfp4");
    dsv4_vctx_close(&v);
}

static void compressor_targeted(json_t *c, void *ctx)
{
    (void)ctx;
    json_array_append_new(json_object_get(group(c, "group_0"), "targets"),
                          json_string("re:.*attn\\.(mla_attn\\.)?compressor\\.(wkv|wgate|fused_wkv_wgate)$"));
    json_array_remove(ignore(c), 1);
}

static void int4_args_wrong(json_t *c, void *ctx)
{
    (void)ctx;
    json_object_set_new(json_object_get(group(c, "group_1"), "weights"), "group_size", json_integer(32));
}

static void two_groups(json_t *c, void *ctx)
{
    (void)ctx;
    json_array_append_new(json_object_get(group(c, "group_0"), "targets"), json_string("re:.*experts\\.\\d+\\.w2$"));
}

TEST(rules_targets_match_vllm)
{
    dsv4_vctx v;
    REQUIRE(damaged(&v, "w4a16", compressor_targeted, NULL, "targets-match-vllm") == 0);
    CHECK(tr_says(&v, "targets-match-vllm", "model.layers.1.attn.compressor.fused_wkv_wgate "
                                            "(layers.1.attn.compressor.wkv, stored unquantized) is matched by "
                                            "group_0 target"));
    CHECK(tr_says(&v, "targets-match-vllm", "model.layers.3.attn.compressor.wgate (layers.3.attn.compressor.wgate, "
                                            "stored unquantized)"));
    check_repairs(&v, "w4a16");
    dsv4_vctx_close(&v);

    REQUIRE(damaged(&v, "w4a16", int4_args_wrong, NULL, "targets-match-vllm") == 0);
    CHECK(tr_says(&v, "targets-match-vllm", "layers.0.ffn.experts.0.w1 is stored INT4 group 128, but no config "
                                            "group's weights describe that"));
    CHECK_EQ_INT(tr_n_ops(&v, "targets-match-vllm"), 0);
    CHECK(tr_says(&v, "targets-match-vllm", "no automatic fix"));
    dsv4_vctx_close(&v);

    REQUIRE(damaged(&v, "w4a16", two_groups, NULL, "targets-match-vllm") == 0);
    CHECK(tr_says(&v, "targets-match-vllm", "is matched by the targets of group_0 and group_1"));
    check_repairs(&v, "w4a16");
    dsv4_vctx_close(&v);
}

/* D's broad targets and no MTP ignore: the BF16 MTP block is matched (mode 20). */
static void broad_mtp(json_t *c, void *ctx)
{
    (void)ctx;
    json_object_set_new(group(c, "group_1"), "targets",
                        json_pack("[s]", "re:.*experts\\.\\d+\\.(w1|w2|w3|gate_proj|up_proj|down_proj|gate_up_proj)$"));
    json_t *ig = ignore(c);
    json_array_remove(ig, json_array_size(ig) - 1);
    json_array_remove(ig, json_array_size(ig) - 1);
}

TEST(rules_targets_mtp)
{
    dsv4_vctx v;
    REQUIRE(damaged(&v, "w4a16", broad_mtp, NULL, "targets-mtp") == 0);
    CHECK_EQ_INT(tr_status(&v, "targets-mtp"), DSV4_RS_FAIL);
    CHECK(tr_says(&v, "targets-mtp", "group_1 target"));
    CHECK(tr_says(&v, "targets-mtp", "matches the MTP name model.layers.4.ffn.experts.0.down_proj "
                                     "(mtp.0.ffn.experts.0.w2, stored BF16)"));
    CHECK_EQ_INT(tr_result(&v, "targets-mtp")->n_found, 16 * 3);
    check_repairs(&v, "w4a16");
    dsv4_vctx_close(&v);
}

static void class_target(json_t *c, void *ctx)
{
    (void)ctx;
    json_object_set_new(group(c, "group_0"), "targets", json_pack("[s]", "Linear"));
}

TEST(rules_targets_class_target)
{
    /* llm-compressor's "Linear": matches every linear; ignore keeps the BF16 ones out of vLLM's
     * way, but llm-compressor would still quantize the MTP block (#712). */
    dsv4_vctx v;
    REQUIRE(damaged(&v, "fp8", class_target, NULL, NULL) == 0);
    CHECK_EQ_INT(tr_status(&v, "targets-match-vllm"), DSV4_RS_PASS);
    CHECK_EQ_INT(tr_status(&v, "targets-unused"), DSV4_RS_PASS);
    CHECK_EQ_INT(tr_status(&v, "targets-mtp"), DSV4_RS_FAIL);
    CHECK(tr_says(&v, "targets-mtp", "group_0 target \"Linear\" matches the MTP name"));
    /* ignore narrows a class target: not an overlap */
    CHECK_EQ_INT(tr_status(&v, "targets-ignore-overlap"), DSV4_RS_PASS);
    check_repairs(&v, "fp8");
    dsv4_vctx_close(&v);
}

static void dead_target(json_t *c, void *ctx)
{
    (void)ctx;
    json_array_append_new(json_object_get(group(c, "group_0"), "targets"),
                          json_string("re:^model\\.layers\\.\\d+\\.attn\\.wq_c$"));
}

TEST(rules_targets_unused)
{
    dsv4_vctx v;
    REQUIRE(damaged(&v, "nvfp4", dead_target, NULL, NULL) == 0);
    const dsv4_rule_result *r = tr_result(&v, "targets-unused");
    REQUIRE(r);
    CHECK_EQ_INT(r->status, DSV4_RS_FAIL);
    CHECK_EQ_INT(r->rule->severity, DSV4_SEV_WARNING);
    CHECK(tr_says(&v, "targets-unused", "config_groups.group_0.targets[3]"));
    CHECK_EQ_INT(dsv4_vctx_count(&v, DSV4_SEV_ERROR), 0);
    CHECK_EQ_INT(v.fixes.n, 0);
    dsv4_vctx_close(&v);
}

static void overlap(json_t *c, void *ctx)
{
    (void)ctx;
    json_t *t = json_object_get(group(c, "group_0"), "targets");
    json_array_append(ignore(c), json_array_get(t, 1));
}

TEST(rules_targets_ignore_overlap)
{
    dsv4_vctx v;
    REQUIRE(damaged(&v, "w4a8", overlap, NULL, NULL) == 0);
    CHECK_EQ_INT(tr_status(&v, "targets-ignore-overlap"), DSV4_RS_FAIL);
    CHECK(tr_says(&v, "targets-ignore-overlap", "ignore[6] \"re:^(model\\.)?layers\\.(1|3)\\.attn\\.indexer\\.wq_b$\" "
                                                "is also config_groups.group_0.targets[1]"));
    CHECK(tr_says(&v, "targets-ignore-overlap", "model.layers.1.attn.indexer.wq_b (layers.1.attn.indexer.wq_b) is "
                                                "matched by both group_0 target"));
    CHECK(tr_says(&v, "targets-match-vllm", "is matched by ignore entry"));
    check_repairs(&v, "w4a8");
    dsv4_vctx_close(&v);
}

static void wkv_ignored(json_t *c, void *ctx)
{
    (void)ctx;
    replace_target(c, "group_0", 0, "(wq_a|fused_wqa_wkv|wkv|", "(wq_a|");
    json_array_append_new(ignore(c), json_string("re:.*attn\\.wkv$"));
}

/* layers.2.attn.wkv stored BF16 (its FP8 weight and scale replaced by a BF16 weight). */
static int wkv_bf16(tr_tensor *t, void *ctx)
{
    static unsigned short zeros[128 * 256];
    (void)ctx;
    if (!strcmp(t->name, "layers.2.attn.wkv.weight_scale"))
        return 0;
    if (!strcmp(t->name, "layers.2.attn.wkv.weight")) {
        t->dtype = DSV4_BF16;
        t->data = zeros;
        t->nbytes = sizeof zeros;
    }
    return 1;
}

TEST(rules_targets_fused_halves)
{
    dsv4_vctx v;
    REQUIRE(damaged(&v, "w4a16", wkv_ignored, NULL, "targets-fused-halves") == 0);
    CHECK_EQ_INT(tr_status(&v, "targets-fused-halves"), DSV4_RS_FAIL);
    CHECK(tr_says(&v, "targets-fused-halves", "layers.0.attn.wq_a is matched by group_0 but layers.0.attn.wkv by "
                                              "ignore: vLLM fuses them into layers.0.attn.fused_wqa_wkv"));
    CHECK_EQ_INT(tr_result(&v, "targets-fused-halves")->n_found, 4);
    CHECK_EQ_INT(v.fixes.n, 0);
    dsv4_vctx_close(&v);

    const char *out = tr_out("wkv-bf16");
    REQUIRE(tr_rewrite(tr_clean("w4a16"), out, wkv_bf16, NULL) == 0);
    REQUIRE(tr_run(&v, out, NULL, "targets-fused-halves,targets-match-vllm") == 0);
    CHECK(tr_says(&v, "targets-fused-halves", "layers.2.attn.wq_a is stored FP8 block 128x128 but layers.2.attn.wkv "
                                              "is stored unquantized"));
    CHECK_EQ_INT(tr_result(&v, "targets-fused-halves")->n_found, 1);
    /* the fused name is left to targets-fused-halves; the unfused wkv is reported */
    CHECK(tr_says(&v, "targets-match-vllm", "model.layers.2.attn.wkv (layers.2.attn.wkv, stored unquantized)"));
    CHECK(tr_says(&v, "targets-match-vllm", "no automatic fix"));
    dsv4_vctx_close(&v);
}
