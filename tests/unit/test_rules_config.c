/* The config.json rules (rules_config.c) on the five clean artifacts (no false positives) and on
 * copies whose config.json is damaged one way each (seed_pipelines modes 10-12 and the dropped
 * release keys): the failure, its evidence, and the fix ops, applied to a JSON copy and compared
 * with the clean config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "test_rules_util.h"

static const char *const RECIPES[] = {"w4a16", "w4a8", "nvfp4", "fp8", "bf16"};

static json_t *load_config(const char *dir)
{
    char p[700];
    json_error_t je;
    snprintf(p, sizeof p, "%s/config.json", dir);
    return json_load_file(p, 0, &je);
}

/* Runs `id` on a copy of the clean `recipe` artifact edited by `edit`. */
static int damaged(dsv4_vctx *v, const char *recipe, tr_config_fn edit, void *ctx, const char *src, const char *id)
{
    const char *clean = tr_clean(recipe), *out = tr_out("dmg");
    if (!clean || tr_copy_config(clean, out, edit, ctx))
        return -1;
    return tr_run(v, out, src, id);
}

/* The clean config with the rule's ops applied equals the clean config. */
static void check_repairs(const dsv4_vctx *v, const char *recipe)
{
    json_t *want = load_config(tr_clean(recipe)), *got = tr_apply_config(v->art.config, &v->fixes);
    CHECK_MSG(want && got && json_equal(want, got), "the fix ops do not restore the clean %s config", recipe);
    json_decref(want);
    json_decref(got);
}

TEST(rules_config_clean_artifacts_pass)
{
    const char *ids = tr_ids(dsv4_rules_config);
    for (size_t i = 0; i < sizeof RECIPES / sizeof *RECIPES; i++) {
        dsv4_vctx v;
        const char *art = tr_clean(RECIPES[i]);
        REQUIRE(art && tr_run(&v, art, NULL, ids) == 0);
        for (size_t k = 0; k < v.n_results; k++)
            CHECK_MSG(v.results[k].status != DSV4_RS_FAIL, "%s: %s failed: %s", RECIPES[i], v.results[k].rule->id,
                      v.results[k].n_kept ? v.results[k].evidence[0] : "");
        CHECK_EQ_INT(v.fixes.n, 0);
        CHECK_EQ_INT(tr_status(&v, "config-scale-fmt"), strcmp(RECIPES[i], "bf16") ? DSV4_RS_PASS : DSV4_RS_SKIP);
        dsv4_vctx_close(&v);
        REQUIRE(tr_run(&v, art, th_path("fixtures/dsv4-tiny"), ids) == 0);
        for (size_t k = 0; k < v.n_results; k++)
            CHECK_MSG(v.results[k].status != DSV4_RS_FAIL, "%s with --source: %s failed", RECIPES[i],
                      v.results[k].rule->id);
        dsv4_vctx_close(&v);
    }
    dsv4_vctx v; /* the release itself: native fp8 config over native tensors */
    REQUIRE(tr_run(&v, th_path("fixtures/dsv4-tiny"), NULL, ids) == 0);
    CHECK_EQ_INT(dsv4_vctx_count(&v, DSV4_SEV_ERROR), 0);
    dsv4_vctx_close(&v);
}

static void del_key(json_t *c, void *key) { json_object_del(c, key); }

static void set_key(json_t *c, const char *key, json_t *val) { json_object_set_new(c, key, val); }

TEST(rules_config_readable)
{
    dsv4_vctx v;
    const char *out = tr_out("noconfig"), *clean = tr_clean("fp8");
    char cmd[1400];
    REQUIRE(clean && tr_copy_config(clean, out, NULL, NULL) == 0);
    snprintf(cmd, sizeof cmd, "rm %s/config.json", out);
    REQUIRE(system(cmd) == 0);
    REQUIRE(tr_run(&v, out, NULL, "config-readable,config-tie-embeddings") == 0);
    CHECK_EQ_INT(tr_status(&v, "config-readable"), DSV4_RS_FAIL);
    CHECK(tr_says(&v, "config-readable", "no config.json"));
    CHECK_EQ_INT(tr_status(&v, "config-tie-embeddings"), DSV4_RS_SKIP);
    dsv4_vctx_close(&v);

    snprintf(cmd, sizeof cmd, "printf '{\"model_type\": ' > %s/config.json", out);
    REQUIRE(system(cmd) == 0);
    REQUIRE(tr_run(&v, out, NULL, "config-readable") == 0);
    CHECK(tr_says(&v, "config-readable", "not valid JSON"));
    dsv4_vctx_close(&v);

    REQUIRE(damaged(&v, "fp8", del_key, "hidden_size", NULL, "config-readable") == 0);
    CHECK_EQ_INT(tr_status(&v, "config-readable"), DSV4_RS_FAIL);
    CHECK(tr_says(&v, "config-readable", "hidden_size"));
    dsv4_vctx_close(&v);
}

static void no_scale_fmt(json_t *c, void *ctx)
{
    (void)ctx;
    json_object_del(json_object_get(c, "quantization_config"), "scale_fmt");
}

TEST(rules_config_scale_fmt)
{
    dsv4_vctx v;
    REQUIRE(damaged(&v, "nvfp4", no_scale_fmt, NULL, NULL, "config-scale-fmt") == 0);
    CHECK_EQ_INT(tr_status(&v, "config-scale-fmt"), DSV4_RS_FAIL);
    CHECK(tr_says(&v, "config-scale-fmt", "absent, expected \"ue8m0\""));
    REQUIRE(tr_n_ops(&v, "config-scale-fmt") == 1);
    const dsv4_fix_op *o = tr_op(&v, "config-scale-fmt", 0);
    CHECK(o->kind == DSV4_FIX_CONFIG && o->depth == 2 && !strcmp(o->path[1], "scale_fmt"));
    check_repairs(&v, "nvfp4");
    dsv4_vctx_close(&v);
}

/* The release keys dropped, the transformers keys that determine them present (a save_pretrained). */
static void transformers_style(json_t *c, void *ctx)
{
    (void)ctx;
    static const char *const drop[] = {"compress_ratios", "num_hash_layers", "qk_rope_head_dim", "rope_scaling",
                                       "torch_dtype"};
    for (size_t i = 0; i < 5; i++)
        json_object_del(c, drop[i]);
    set_key(c, "layer_types", json_pack("[ssss]", "sliding_attention", "compressed_sparse_attention",
                                        "heavily_compressed_attention", "compressed_sparse_attention"));
    set_key(c, "mlp_layer_types", json_pack("[ssss]", "hash_moe", "hash_moe", "moe", "moe"));
    set_key(c, "compress_rates", json_pack("{s:i, s:i}", "compressed_sparse_attention", 4,
                                           "heavily_compressed_attention", 128));
    set_key(c, "partial_rotary_factor", json_real(0.5));
    set_key(c, "rope_parameters", json_pack("{s:s, s:i, s:i, s:i, s:i}", "rope_type", "yarn", "factor", 16,
                                            "original_max_position_embeddings", 65536, "beta_fast", 32, "beta_slow", 1));
    set_key(c, "dtype", json_string("bfloat16"));
}

TEST(rules_config_release_keys_from_model)
{
    dsv4_vctx v;
    REQUIRE(damaged(&v, "w4a16", transformers_style, NULL, NULL, "config-release-keys") == 0);
    CHECK_EQ_INT(tr_status(&v, "config-release-keys"), DSV4_RS_FAIL);
    CHECK_EQ_INT(tr_result(&v, "config-release-keys")->n_found, 5);
    CHECK(tr_says(&v, "config-release-keys", "\"compress_ratios\" is missing"));
    CHECK_EQ_INT(tr_n_ops(&v, "config-release-keys"), 5);
    json_t *want = load_config(tr_clean("w4a16")), *got = tr_apply_config(v.art.config, &v.fixes);
    static const char *const keys[] = {"compress_ratios", "num_hash_layers", "qk_rope_head_dim", "rope_scaling",
                                       "torch_dtype"};
    for (size_t i = 0; i < 5; i++)
        CHECK_MSG(json_equal(json_object_get(want, keys[i]), json_object_get(got, keys[i])),
                  "%s not restored to the release value", keys[i]);
    json_decref(want);
    json_decref(got);
    dsv4_vctx_close(&v);
}

TEST(rules_config_release_keys_need_source)
{
    dsv4_vctx v;
    /* Without transformers keys the ratios cannot be derived: no fix, says --source. */
    REQUIRE(damaged(&v, "bf16", del_key, "compress_ratios", NULL, "config-release-keys") == 0);
    CHECK_EQ_INT(tr_status(&v, "config-release-keys"), DSV4_RS_FAIL);
    CHECK_EQ_INT(tr_n_ops(&v, "config-release-keys"), 0);
    CHECK(tr_says(&v, "config-release-keys", "needs --source"));
    dsv4_vctx_close(&v);
    /* With the source: every key the source has and the artifact lacks, never quantization_config. */
    REQUIRE(damaged(&v, "bf16", del_key, "compress_ratios", th_path("fixtures/dsv4-tiny"), "config-release-keys") == 0);
    CHECK_EQ_INT(tr_status(&v, "config-release-keys"), DSV4_RS_FAIL);
    CHECK_EQ_INT(tr_n_ops(&v, "config-release-keys"), 1);
    const dsv4_fix_op *o = tr_op(&v, "config-release-keys", 0);
    REQUIRE(o);
    CHECK(!strcmp(o->path[0], "compress_ratios"));
    CHECK(json_equal(o->value, json_object_get(v.src.config, "compress_ratios")));
    dsv4_vctx_close(&v);
}

static void short_ratios(json_t *c, void *ctx)
{
    (void)ctx;
    set_key(c, "compress_ratios", json_pack("[iiii]", 0, 4, 128, 4)); /* the MTP entry dropped */
    json_object_del(c, "hc_eps");
}

TEST(rules_config_release_keys_wrong_length)
{
    dsv4_vctx v;
    REQUIRE(damaged(&v, "w4a8", short_ratios, NULL, th_path("fixtures/dsv4-tiny"), "config-release-keys") == 0);
    CHECK_EQ_INT(tr_status(&v, "config-release-keys"), DSV4_RS_FAIL);
    CHECK(tr_says(&v, "config-release-keys", "has 4 entries, expected 5"));
    for (size_t k = 0; k < tr_n_ops(&v, "config-release-keys"); k++)
        CHECK(strcmp(tr_op(&v, "config-release-keys", k)->path[0], "quantization_config"));
    json_t *got = tr_apply_config(v.art.config, &v.fixes), *want = load_config(tr_clean("w4a8"));
    CHECK(json_equal(json_object_get(got, "compress_ratios"), json_object_get(want, "compress_ratios")));
    CHECK(json_equal(json_object_get(got, "hc_eps"), json_object_get(want, "hc_eps")));
    json_decref(got);
    json_decref(want);
    dsv4_vctx_close(&v);
}

static void layers_plus_mtp(json_t *c, void *ctx)
{
    (void)ctx;
    set_key(c, "num_hidden_layers", json_integer(5)); /* B's _CompatConfig: 43 + 1 */
}

static void mtp_count(json_t *c, void *n) { set_key(c, "num_nextn_predict_layers", json_integer(*(int *)n)); }

TEST(rules_config_num_layers)
{
    dsv4_vctx v;
    REQUIRE(damaged(&v, "nvfp4", layers_plus_mtp, NULL, NULL, "config-num-layers") == 0);
    CHECK_EQ_INT(tr_status(&v, "config-num-layers"), DSV4_RS_FAIL);
    CHECK(tr_says(&v, "config-num-layers", "\"num_hidden_layers\" = 5, but the artifact has 4 layers.N blocks"));
    CHECK_EQ_INT(tr_n_ops(&v, "config-num-layers"), 1);
    check_repairs(&v, "nvfp4");
    dsv4_vctx_close(&v);

    int two = 2;
    REQUIRE(damaged(&v, "fp8", mtp_count, &two, NULL, "config-num-layers") == 0);
    /* the tensors have fewer MTP blocks than the config: a stripped block, mtp-complete's defect */
    CHECK_EQ_INT(tr_status(&v, "config-num-layers"), DSV4_RS_PASS);
    CHECK_EQ_INT(tr_n_ops(&v, "config-num-layers"), 0);
    dsv4_vctx_close(&v);
    REQUIRE(damaged(&v, "fp8", mtp_count, &two, th_path("fixtures/dsv4-tiny"), "config-num-layers") == 0);
    CHECK(tr_says(&v, "config-num-layers", "the source says 1"));
    CHECK_EQ_INT(tr_n_ops(&v, "config-num-layers"), 1);
    check_repairs(&v, "fp8");
    dsv4_vctx_close(&v);

    int zero = 0; /* an MTP block the config does not count: the tensors decide */
    REQUIRE(damaged(&v, "bf16", mtp_count, &zero, NULL, "config-num-layers") == 0);
    CHECK(tr_says(&v, "config-num-layers", "has 1 mtp.N blocks"));
    CHECK_EQ_INT(tr_n_ops(&v, "config-num-layers"), 1);
    dsv4_vctx_close(&v);
}

static void leaked_lists(json_t *c, void *ctx)
{
    (void)ctx;
    set_key(c, "layer_types", json_pack("[sssss]", "sliding_attention", "compressed_sparse_attention",
                                        "heavily_compressed_attention", "compressed_sparse_attention",
                                        "sliding_attention"));
    set_key(c, "mlp_layer_types", json_pack("[ssss]", "hash_moe", "hash_moe", "moe", "moe"));
}

TEST(rules_config_layer_lists)
{
    dsv4_vctx v;
    REQUIRE(damaged(&v, "w4a16", leaked_lists, NULL, NULL, "config-layer-lists") == 0);
    CHECK_EQ_INT(tr_status(&v, "config-layer-lists"), DSV4_RS_FAIL);
    CHECK_EQ_INT(tr_result(&v, "config-layer-lists")->n_found, 1); /* mlp_layer_types is right */
    CHECK(tr_says(&v, "config-layer-lists", "\"layer_types\" has 5 entries, expected num_hidden_layers = 4"));
    REQUIRE(tr_n_ops(&v, "config-layer-lists") == 1);
    const json_t *val = tr_op(&v, "config-layer-lists", 0)->value;
    CHECK_EQ_INT(json_array_size(val), 4);
    CHECK(!strcmp(json_string_value(json_array_get(val, 3)), "compressed_sparse_attention"));
    dsv4_vctx_close(&v);
}

static void tied(json_t *c, void *ctx)
{
    (void)ctx;
    set_key(c, "tie_word_embeddings", json_true());
}

TEST(rules_config_tie_embeddings)
{
    dsv4_vctx v;
    REQUIRE(damaged(&v, "nvfp4", tied, NULL, NULL, "config-tie-embeddings") == 0);
    CHECK_EQ_INT(tr_status(&v, "config-tie-embeddings"), DSV4_RS_FAIL);
    CHECK(tr_says(&v, "config-tie-embeddings", "is true, expected false"));
    check_repairs(&v, "nvfp4");
    dsv4_vctx_close(&v);
    REQUIRE(damaged(&v, "nvfp4", del_key, "tie_word_embeddings", NULL, "config-tie-embeddings") == 0);
    CHECK_EQ_INT(tr_status(&v, "config-tie-embeddings"), DSV4_RS_PASS);
    dsv4_vctx_close(&v);
}

static void method(json_t *c, void *m)
{
    json_object_set_new(json_object_get(c, "quantization_config"), "quant_method", json_string(m));
}

static void fixture_qc(json_t *c, void *ctx)
{
    (void)ctx;
    set_key(c, "quantization_config", json_pack("{s:s, s:s}", "quant_method", "fp8", "scale_fmt", "ue8m0"));
}

TEST(rules_config_quant_method)
{
    dsv4_vctx v;
    REQUIRE(damaged(&v, "w4a16", del_key, "quantization_config", NULL, "config-quant-method") == 0);
    CHECK(tr_says(&v, "config-quant-method", "but config.json has no quantization_config"));
    dsv4_vctx_close(&v);
    REQUIRE(damaged(&v, "w4a16", method, "fp8", NULL, "config-quant-method") == 0);
    CHECK(tr_says(&v, "config-quant-method", "compressed-tensors form under the native quant_method \"fp8\""));
    dsv4_vctx_close(&v);
    REQUIRE(damaged(&v, "bf16", fixture_qc, NULL, NULL, "config-quant-method") == 0);
    CHECK(tr_says(&v, "config-quant-method", "no tensor is stored quantized"));
    dsv4_vctx_close(&v);
    const char *out = tr_out("release-ct");
    REQUIRE(tr_copy_config(th_path("fixtures/dsv4-tiny"), out, method, "compressed-tensors") == 0);
    REQUIRE(tr_run(&v, out, NULL, "config-quant-method") == 0);
    CHECK(tr_says(&v, "config-quant-method", "native form under quant_method \"compressed-tensors\""));
    CHECK_EQ_INT(v.fixes.n, 0);
    dsv4_vctx_close(&v);
}
