/* The verification core: canonical names, the module view's storage forms on every clean artifact,
 * and the names / index / counts rules on artifacts damaged one way each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "io/st_plan.h"
#include "io/st_write.h"
#include "verify/vctx.h"

static const char *bin(void)
{
    const char *b = getenv("BUILD");
    return b ? b : "build";
}

/* A clean artifact of `recipe` made by dsv4-quant from the fixture (once per recipe per run). */
static const char *clean(const char *recipe)
{
    static char paths[8][600];
    static const char *made[8];
    for (int i = 0; i < 8; i++)
        if (made[i] && !strcmp(made[i], recipe))
            return paths[i];
    for (int i = 0; i < 8; i++)
        if (!made[i]) {
            snprintf(paths[i], sizeof paths[i], "%s/clean-%s", th_tmpdir(), recipe);
            char cmd[2048];
            snprintf(cmd, sizeof cmd, "%s/bin/dsv4-quant --quiet --recipe %s/%s.yaml %s %s >/dev/null", bin(),
                     th_path("recipes"), recipe, th_path("fixtures/dsv4-tiny"), paths[i]);
            if (system(cmd) != 0)
                return NULL;
            made[i] = recipe;
            return paths[i];
        }
    return NULL;
}

typedef int (*edit_fn)(const char *name, char *out, size_t cap); /* 0 drop, 1 keep (out = new name) */

/* Rewrites `src` (one shard) into `dst` with names edited, config.json copied. */
static int rewrite(const char *src, const char *dst, edit_fn edit)
{
    dsv4_ckpt c;
    dsv4_err e;
    if (dsv4_ckpt_open(src, 0, &c, &e))
        return -1;
    dsv4_st_plan p;
    dsv4_st_plan_init(&p, 0, DSV4_ST_ALWAYS_INDEX);
    const void **data = calloc(c.n, sizeof *data);
    size_t k = 0;
    int rc = 0;
    for (size_t i = 0; i < c.n && !rc; i++) {
        char nn[512];
        snprintf(nn, sizeof nn, "%s", c.by_name[i]->name);
        if (!edit(c.by_name[i]->name, nn, sizeof nn))
            continue;
        rc = dsv4_st_plan_add(&p, nn, c.by_name[i]->dtype, c.by_name[i]->ndim, c.by_name[i]->shape, &e);
        data[k++] = c.by_name[i]->data;
    }
    if (!rc)
        rc = dsv4_st_plan_finish(&p, &e);
    /* the plan keeps declaration order: data[] is indexed by declaration */
    if (!rc)
        rc = dsv4_st_write_all(&p, dst, data, &e);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp %s/config.json %s/", src, dst);
    if (!rc && system(cmd) != 0)
        rc = -1;
    if (rc)
        fprintf(stderr, "rewrite: %s\n", e.msg);
    free(data);
    dsv4_st_plan_free(&p);
    dsv4_ckpt_close(&c);
    return rc;
}

/* Runs the rules; returns the context (caller closes). */
static int verify(dsv4_vctx *v, const char *art, const char *src)
{
    dsv4_err e;
    if (dsv4_vctx_open(v, art, src, &e) || dsv4_vctx_run(v, NULL, &e)) {
        fprintf(stderr, "verify: %s\n", e.msg);
        return -1;
    }
    return 0;
}

static const dsv4_rule_result *result(const dsv4_vctx *v, const char *id)
{
    for (size_t i = 0; i < v->n_results; i++)
        if (!strcmp(v->results[i].rule->id, id))
            return &v->results[i];
    return NULL;
}

static int failed(const dsv4_vctx *v, const char *id)
{
    const dsv4_rule_result *r = result(v, id);
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
    REQUIRE(verify(&v, th_path("fixtures/dsv4-tiny"), NULL) == 0);
    CHECK_EQ_INT(count_form(&v, DSV4_QF_RELEASE_FP4), 240);
    CHECK_EQ_INT(count_form(&v, DSV4_QF_BROKEN), 0);
    CHECK_MSG(!core_failures(&v)[0], "release fixture fails %s", core_failures(&v));
    dsv4_vctx_close(&v);
    for (size_t i = 0; i < sizeof recipes / sizeof *recipes; i++) {
        const char *a = clean(recipes[i]);
        REQUIRE(a);
        REQUIRE(verify(&v, a, th_path("fixtures/dsv4-tiny")) == 0);
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

static int to_hf(const char *name, char *out, size_t cap)
{
    if (!strcmp(name, "layers.1.attn.wq_a.weight"))
        snprintf(out, cap, "model.layers.1.self_attn.q_a_proj.weight");
    else if (!strcmp(name, "layers.1.attn.wq_a.weight_scale"))
        snprintf(out, cap, "model.layers.1.self_attn.q_a_proj.weight_scale");
    else if (!strcmp(name, "layers.2.hc_attn_fn"))
        snprintf(out, cap, "model.layers.2.attn_hc.fn");
    else if (!strcmp(name, "layers.3.ffn.gate.bias"))
        snprintf(out, cap, "layers.3.ffn.gate.e_score_correction_bias");
    else if (!strcmp(name, "norm.weight"))
        snprintf(out, cap, "model.norm.weight");
    return 1;
}

TEST(verify_names_rules_detect_and_plan_renames)
{
    const char *a = clean("w4a16");
    REQUIRE(a);
    char out[600];
    snprintf(out, sizeof out, "%s/names", th_tmpdir());
    REQUIRE(rewrite(a, out, to_hf) == 0);
    dsv4_vctx v;
    REQUIRE(verify(&v, out, NULL) == 0);
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

static int prefix_one(const char *name, char *out, size_t cap)
{
    if (!strcmp(name, "layers.0.attn.wkv.weight"))
        snprintf(out, cap, "model.layers.0.attn.wkv.weight");
    return 1;
}

static int drop_expert(const char *name, char *out, size_t cap)
{
    return strncmp(name, "layers.2.ffn.experts.7.", 23) != 0;
}

static int add_unknown(const char *name, char *out, size_t cap)
{
    if (!strcmp(name, "layers.0.attn.attn_sink"))
        snprintf(out, cap, "layers.0.attn.attn_sinks");
    return 1;
}

TEST(verify_prefix_missing_unknown)
{
    const char *a = clean("w4a16");
    REQUIRE(a);
    char out[600];
    dsv4_vctx v;
    snprintf(out, sizeof out, "%s/prefix", th_tmpdir());
    REQUIRE(rewrite(a, out, prefix_one) == 0);
    REQUIRE(verify(&v, out, NULL) == 0);
    CHECK_MSG(!strcmp(core_failures(&v), "names-model-prefix"), "got %s", core_failures(&v));
    dsv4_vctx_close(&v);

    snprintf(out, sizeof out, "%s/dropped", th_tmpdir());
    REQUIRE(rewrite(a, out, drop_expert) == 0);
    REQUIRE(verify(&v, out, NULL) == 0);
    CHECK_MSG(!strcmp(core_failures(&v), "inventory-tensors,role-counts"), "got %s", core_failures(&v));
    const dsv4_rule_result *r = result(&v, "inventory-tensors");
    REQUIRE(r && r->n_kept > 0);
    CHECK_STR_CONTAINS(r->evidence[0], "layers.2.ffn.experts.7.w1: missing");
    CHECK_EQ_INT(r->n_found, 3);
    dsv4_vctx_close(&v);

    snprintf(out, sizeof out, "%s/unknown", th_tmpdir());
    REQUIRE(rewrite(a, out, add_unknown) == 0);
    REQUIRE(verify(&v, out, NULL) == 0);
    CHECK_MSG(!strcmp(core_failures(&v), "names-unknown,inventory-tensors,role-counts"), "got %s",
              core_failures(&v));
    dsv4_vctx_close(&v);
}

TEST(verify_index_and_shard_rules)
{
    const char *a = clean("fp8");
    REQUIRE(a);
    char out[600], cmd[2048];
    dsv4_vctx v;
    snprintf(out, sizeof out, "%s/index", th_tmpdir());
    snprintf(cmd, sizeof cmd, "cp -r %s %s && sed -i 's/\"total_size\": [0-9]*/\"total_size\": 12/' "
                              "%s/model.safetensors.index.json", a, out, out);
    REQUIRE(system(cmd) == 0);
    REQUIRE(verify(&v, out, NULL) == 0);
    CHECK_MSG(!strcmp(core_failures(&v), "index-total-size"), "got %s", core_failures(&v));
    CHECK(v.fixes.n == 1 && v.fixes.v[0].kind == DSV4_FIX_INDEX);
    dsv4_vctx_close(&v);

    snprintf(out, sizeof out, "%s/trunc", th_tmpdir());
    snprintf(cmd, sizeof cmd, "cp -r %s %s && truncate -s 100000 %s/model-00001-of-00001.safetensors", a, out, out);
    REQUIRE(system(cmd) == 0);
    REQUIRE(verify(&v, out, NULL) == 0);
    CHECK(failed(&v, "shards-readable"));
    CHECK(!failed(&v, "index-entries"));
    CHECK_EQ_INT(v.fixes.n, 0);
    dsv4_vctx_close(&v);
}
