/* The verification core: canonical names, the module view's storage forms on every clean artifact,
 * and the names / index / counts rules on artifacts damaged one way each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "test_rulesa_util.h"
#include "verify/vctx.h"

/* Renames one tensor of an editable artifact copy (when it is there). */
static void rename_one(ra_art *a, const char *from, const char *to)
{
    ra_tensor *t = ra_find(a, from);
    if (t)
        snprintf(t->name, sizeof t->name, "%s", to);
}

static int failed(const dsv4_vctx *v, const char *id)
{
    const dsv4_rule_result *r = ra_result(v, id);
    return r && r->status == DSV4_RS_FAIL;
}

/* The ids of the rules (of those this core implements) that failed, comma-joined. */
static const char *core_failures(const dsv4_vctx *v)
{
    static char buf[1024];
    static const char *const core[] = {"names-model-prefix", "names-transformers", "names-gate-bias",
                                       "names-corrupted", "names-unknown", "shards-readable", "index-entries",
                                       "index-total-size", "index-orphan-shards", "inventory-tensors",
                                       "role-counts"};
    buf[0] = 0;
    for (size_t i = 0; i < sizeof core / sizeof *core; i++)
        if (failed(v, core[i]))
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", buf[0] ? "," : "", core[i]);
    return buf;
}

TEST(verify_canonical_names)
{
    static const struct {
        const char *in, *out;
        dsv4_canon how;
    } cases[] = {
        {"layers.0.attn.wq_a.weight", "layers.0.attn.wq_a.weight", DSV4_CANON_SAME},
        {"hc_head_fn", "hc_head_fn", DSV4_CANON_SAME},
        {"model.layers.0.self_attn.q_a_proj.weight", "layers.0.attn.wq_a.weight", DSV4_CANON_HF},
        {"model.layers.0.mlp.experts.3.gate_proj.weight_packed", "layers.0.ffn.experts.3.w1.weight_packed",
         DSV4_CANON_HF},
        {"model.layers.0.attn_hc.fn", "layers.0.hc_attn_fn", DSV4_CANON_HF},
        {"model.hc_head.hc_fn", "hc_head_fn", DSV4_CANON_HF},
        {"model.layers.1.self_attn.compressor.indexer.kv_proj.weight", "layers.1.attn.indexer.compressor.wkv.weight",
         DSV4_CANON_HF},
        {"model.layers.2.attn.wq_a.weight_scale", "layers.2.attn.wq_a.weight_scale", DSV4_CANON_MODEL_PREFIX},
        {"model.mtp.0.ffn.experts.1.w2.weight", "mtp.0.ffn.experts.1.w2.weight", DSV4_CANON_MODEL_PREFIX},
        {"layers.3.ffn.gate.e_score_correction_bias", "layers.3.ffn.gate.bias", DSV4_CANON_GATE_BIAS},
        {"layers.2.attn.indexer.weight_scales_proj.weight_scale", "layers.2.attn.indexer.weights_proj.weight_scale",
         DSV4_CANON_NAIVE_SUFFIX},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[256];
        dsv4_canon how = dsv4_canonical_name(cases[i].in, out, sizeof out);
        CHECK_MSG(!strcmp(out, cases[i].out) && how == cases[i].how, "%s -> %s (%d), expected %s (%d)", cases[i].in,
                  out, (int)how, cases[i].out, (int)cases[i].how);
    }
}

static size_t count_form(const dsv4_vctx *v, dsv4_qform f)
{
    size_t n = 0;
    for (size_t i = 0; i < v->art.st.n; i++)
        n += v->art.st.m[i].form == f;
    return n;
}

TEST(verify_core_clean_artifacts_pass)
{
    static const char *const recipes[] = {"w4a16", "w4a8", "nvfp4", "fp8", "bf16"};
    /* The fixture: (4 layers + 1 MTP) x 16 experts x 3 = 240 FP4 routed expert linears; the artifacts
     * quantize the 192 of the main layers and keep the MTP BF16. */
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, th_path("fixtures/dsv4-tiny"), NULL, NULL) == 0);
    CHECK_EQ_INT(count_form(&v, DSV4_QF_RELEASE_FP4), 240);
    CHECK_EQ_INT(count_form(&v, DSV4_QF_BROKEN), 0);
    CHECK_MSG(!core_failures(&v)[0], "release fixture fails %s", core_failures(&v));
    dsv4_vctx_close(&v);
    for (size_t i = 0; i < sizeof recipes / sizeof *recipes; i++) {
        char recipe[64];
        snprintf(recipe, sizeof recipe, "recipes/%s.yaml", /* the data-free W4A16: w4a16.yaml runs GPTQ */
                 !strcmp(recipes[i], "w4a16") ? "w4a16-rtn" : !strcmp(recipes[i], "w4a8") ? "w4a8-rtn" : recipes[i]);
        const char *a = ra_clean(recipe);
        REQUIRE(a);
        REQUIRE(ra_verify(&v, a, ra_source(), NULL) == 0);
        CHECK_MSG(!core_failures(&v)[0], "%s fails %s", recipes[i], core_failures(&v));
        CHECK_EQ_INT(count_form(&v, DSV4_QF_BROKEN), 0);
        if (!strcmp(recipes[i], "w4a16") || !strcmp(recipes[i], "w4a8"))
            CHECK_EQ_INT(count_form(&v, DSV4_QF_CT_INT4), 192);
        if (!strcmp(recipes[i], "nvfp4"))
            CHECK_EQ_INT(count_form(&v, DSV4_QF_CT_NVFP4), 192);
        CHECK_EQ_INT(v.fixes.n, 0);
        dsv4_vctx_close(&v);
    }
}

static void to_hf(ra_art *a)
{
    rename_one(a, "layers.1.attn.wq_a.weight", "model.layers.1.self_attn.q_a_proj.weight");
    rename_one(a, "layers.1.attn.wq_a.weight_scale", "model.layers.1.self_attn.q_a_proj.weight_scale");
    rename_one(a, "layers.2.hc_attn_fn", "model.layers.2.attn_hc.fn");
    rename_one(a, "layers.3.ffn.gate.bias", "layers.3.ffn.gate.e_score_correction_bias");
    rename_one(a, "norm.weight", "model.norm.weight");
}

TEST(verify_names_rules_detect_and_plan_renames)
{
    const char *out = ra_edited("recipes/w4a16-rtn.yaml", to_hf);
    REQUIRE(out);
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, out, NULL, NULL) == 0);
    CHECK_STR_CONTAINS(core_failures(&v), "names-transformers");
    CHECK_STR_CONTAINS(core_failures(&v), "names-gate-bias");
    /* model.norm.weight is transformers' name for the final norm, not a prefixed release name */
    CHECK(!failed(&v, "names-unknown") && !failed(&v, "inventory-tensors") && !failed(&v, "role-counts"));
    size_t renames = 0;
    for (size_t i = 0; i < v.fixes.n; i++)
        if (v.fixes.v[i].kind == DSV4_FIX_RENAME) {
            renames++;
            if (!strcmp(v.fixes.v[i].name, "model.layers.2.attn_hc.fn"))
                CHECK_STR_CONTAINS(v.fixes.v[i].new_name, "layers.2.hc_attn_fn");
        }
    CHECK_EQ_INT(renames, 5);
    dsv4_vctx_close(&v);
}

static void prefix_one(ra_art *a)
{
    rename_one(a, "layers.0.attn.wkv.weight", "model.layers.0.attn.wkv.weight");
}

static void drop_expert(ra_art *a)
{
    ra_drop_prefix(a, "layers.2.ffn.experts.7.");
}

static void add_unknown(ra_art *a)
{
    rename_one(a, "layers.0.attn.attn_sink", "layers.0.attn.attn_sinks");
}

TEST(verify_prefix_missing_unknown)
{
    const char *out = ra_edited("recipes/w4a16-rtn.yaml", prefix_one);
    dsv4_vctx v;
    REQUIRE(out && ra_verify(&v, out, NULL, NULL) == 0);
    CHECK_MSG(!strcmp(core_failures(&v), "names-model-prefix"), "got %s", core_failures(&v));
    dsv4_vctx_close(&v);

    out = ra_edited("recipes/w4a16-rtn.yaml", drop_expert);
    REQUIRE(out && ra_verify(&v, out, NULL, NULL) == 0);
    CHECK_MSG(!strcmp(core_failures(&v), "inventory-tensors,role-counts"), "got %s", core_failures(&v));
    const dsv4_rule_result *r = ra_result(&v, "inventory-tensors");
    REQUIRE(r && r->n_kept > 0);
    CHECK_STR_CONTAINS(r->evidence[0], "layers.2.ffn.experts.7.w1: missing");
    CHECK_EQ_INT(r->n_found, 3);
    dsv4_vctx_close(&v);

    out = ra_edited("recipes/w4a16-rtn.yaml", add_unknown);
    REQUIRE(out && ra_verify(&v, out, NULL, NULL) == 0);
    CHECK_MSG(!strcmp(core_failures(&v), "names-unknown,inventory-tensors,role-counts"), "got %s",
              core_failures(&v));
    dsv4_vctx_close(&v);
}

TEST(verify_index_and_shard_rules)
{
    const char *a = ra_clean("recipes/fp8.yaml");
    REQUIRE(a);
    char out[600], cmd[2048];
    dsv4_vctx v;
    snprintf(out, sizeof out, "%s/index", th_tmpdir());
    snprintf(cmd, sizeof cmd, "cp -r %s %s && sed -i 's/\"total_size\": [0-9]*/\"total_size\": 12/' "
                              "%s/model.safetensors.index.json", a, out, out);
    REQUIRE(system(cmd) == 0);
    REQUIRE(ra_verify(&v, out, NULL, NULL) == 0);
    CHECK_MSG(!strcmp(core_failures(&v), "index-total-size"), "got %s", core_failures(&v));
    CHECK(v.fixes.n == 1 && v.fixes.v[0].kind == DSV4_FIX_INDEX);
    dsv4_vctx_close(&v);

    snprintf(out, sizeof out, "%s/trunc", th_tmpdir());
    snprintf(cmd, sizeof cmd, "cp -r %s %s && truncate -s 100000 %s/model-00001-of-00001.safetensors", a, out, out);
    REQUIRE(system(cmd) == 0);
    REQUIRE(ra_verify(&v, out, NULL, NULL) == 0);
    CHECK(failed(&v, "shards-readable"));
    CHECK(!failed(&v, "index-entries"));
    CHECK_EQ_INT(v.fixes.n, 0);
    dsv4_vctx_close(&v);
}
