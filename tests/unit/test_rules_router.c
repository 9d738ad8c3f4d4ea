/* router-gate-bias and router-tid2eid on artifacts made from fixtures/dsv4-tiny (layers 0 and 1 are
 * hash layers, 2 and 3 and the MTP block route with a bias; 16 experts, top-4, vocab 1024). */
#include "harness.h"

#include <string.h>

#include "test_rulesa_util.h"

#define RULES "router-gate-bias,router-tid2eid,fp32-dtype"

TEST(rules_router_clean_artifacts_pass)
{
    static const char *const recipes[] = {"recipes/w4a16-rtn.yaml", "recipes/fp8.yaml", "recipes/bf16.yaml"};
    for (size_t i = 0; i < sizeof recipes / sizeof *recipes; i++) {
        dsv4_vctx v;
        REQUIRE(ra_verify(&v, ra_clean(recipes[i]), NULL, RULES) == 0);
        CHECK(ra_status_is(&v, "router-gate-bias", DSV4_RS_PASS));
        CHECK(ra_status_is(&v, "router-tid2eid", DSV4_RS_PASS));
        CHECK_EQ_INT(v.fixes.n, 0);
        dsv4_vctx_close(&v);
    }
    /* The release itself. */
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, ra_source(), ra_source(), RULES) == 0);
    CHECK(ra_status_is(&v, "router-gate-bias", DSV4_RS_PASS));
    CHECK(ra_status_is(&v, "router-tid2eid", DSV4_RS_PASS));
    dsv4_vctx_close(&v);
}

static void drop_bias3(ra_art *a) { ra_drop(a, "layers.3.ffn.gate.bias"); }

TEST(rules_router_gate_bias_missing)
{
    const char *bad = ra_edited("recipes/w4a16-rtn.yaml", drop_bias3);
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, bad, ra_source(), RULES) == 0);
    CHECK(ra_status_is(&v, "router-gate-bias", DSV4_RS_FAIL));
    CHECK_EQ_INT(ra_result(&v, "router-gate-bias")->n_found, 1);
    CHECK(ra_evidence(&v, "router-gate-bias", "layers.3.ffn.gate.bias: missing (expected F32 [16] on layer 3, a "
                      "non-hash layer)", NULL));
    const dsv4_fix_op *o = ra_op(&v, DSV4_FIX_PUT, "layers.3.ffn.gate.bias", "router-gate-bias");
    CHECK(o && o->produce == DSV4_PRODUCE_COPY && o->dtype == DSV4_F32 && o->ndim == 1 && o->shape[0] == 16 &&
          o->from == dsv4_side_find(&v.src, "layers.3.ffn.gate.bias")->t && o->near &&
          !strcmp(o->near, "layers.3.ffn.gate.weight"));
    CHECK(ra_status_is(&v, "router-tid2eid", DSV4_RS_PASS));
    dsv4_vctx_close(&v);
    REQUIRE(ra_verify(&v, bad, NULL, RULES) == 0);
    CHECK(ra_evidence(&v, "router-gate-bias", "layers.3.ffn.gate.bias: missing", "repair needs --source", NULL));
    CHECK_EQ_INT(v.fixes.n, 0);
    dsv4_vctx_close(&v);
}

static void bias_on_hash_layer(ra_art *a)
{
    int64_t s[1] = {16};
    ra_put(a, "layers.0.ffn.gate.bias", DSV4_F32, 1, s, ra_find(a, "layers.2.ffn.gate.bias")->data);
}

TEST(rules_router_gate_bias_on_hash_layer)
{
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, ra_edited("recipes/nvfp4.yaml", bias_on_hash_layer), NULL, RULES) == 0);
    CHECK(ra_status_is(&v, "router-gate-bias", DSV4_RS_FAIL));
    CHECK(ra_evidence(&v, "router-gate-bias", "layers.0.ffn.gate.bias: present, but layer 0 is a hash layer", NULL));
    CHECK(ra_op(&v, DSV4_FIX_DROP, "layers.0.ffn.gate.bias", "router-gate-bias") != NULL);
    CHECK_EQ_INT(ra_n_ops(&v, "router-gate-bias"), 1);
    dsv4_vctx_close(&v);
}

/* Its dtype is the FP32 set's (fp32-dtype), its on-disk name the names rules'. */
static void bias_bf16_and_renamed(ra_art *a)
{
    ra_cast(a, "layers.2.ffn.gate.bias", DSV4_BF16);
    ra_tensor *t = ra_find(a, "layers.3.ffn.gate.bias");
    snprintf(t->name, sizeof t->name, "layers.3.ffn.gate.e_score_correction_bias");
}

TEST(rules_router_gate_bias_dtype_and_name_are_other_rules)
{
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, ra_edited("recipes/w4a16-rtn.yaml", bias_bf16_and_renamed), NULL, RULES) == 0);
    CHECK(ra_status_is(&v, "router-gate-bias", DSV4_RS_PASS));
    CHECK(ra_status_is(&v, "fp32-dtype", DSV4_RS_FAIL));
    CHECK(ra_evidence(&v, "fp32-dtype", "layers.2.ffn.gate.bias: expected F32 [16]", "found BF16 [16]", NULL));
    dsv4_vctx_close(&v);
}

static void drop_mtp(ra_art *a) { ra_drop_prefix(a, "mtp."); }

TEST(rules_router_mtp_block_missing_is_mtp_present_s)
{
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, ra_edited("recipes/w4a16-rtn.yaml", drop_mtp), NULL, RULES ",mtp-present") == 0);
    CHECK(ra_status_is(&v, "router-gate-bias", DSV4_RS_PASS));
    CHECK(ra_status_is(&v, "mtp-present", DSV4_RS_FAIL));
    dsv4_vctx_close(&v);
}

static void drop_tid2eid1(ra_art *a) { ra_drop(a, "layers.1.ffn.gate.tid2eid"); }

TEST(rules_router_tid2eid_missing)
{
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, ra_edited("recipes/fp8.yaml", drop_tid2eid1), ra_source(), RULES) == 0);
    CHECK(ra_status_is(&v, "router-tid2eid", DSV4_RS_FAIL));
    CHECK(ra_evidence(&v, "router-tid2eid", "layers.1.ffn.gate.tid2eid: missing (expected I64 [1024, 4] on layer 1, "
                      "a hash layer)", NULL));
    const dsv4_fix_op *o = ra_op(&v, DSV4_FIX_PUT, "layers.1.ffn.gate.tid2eid", "router-tid2eid");
    CHECK(o && o->dtype == DSV4_I64 && o->shape[0] == 1024 && o->shape[1] == 4 && o->produce == DSV4_PRODUCE_COPY &&
          o->near && !strcmp(o->near, "layers.1.ffn.gate.weight"));
    CHECK(ra_status_is(&v, "router-gate-bias", DSV4_RS_PASS));
    dsv4_vctx_close(&v);
}

/* model.py declares tid2eid int32; the release stores I64. */
static void tid2eid_i32(ra_art *a)
{
    ra_tensor *t = ra_find(a, "layers.0.ffn.gate.tid2eid");
    int32_t v32[4096];
    for (int i = 0; i < 4096; i++) {
        int64_t x;
        memcpy(&x, t->data + 8 * i, 8);
        v32[i] = (int32_t)x;
    }
    int64_t s[2] = {1024, 4};
    ra_put(a, t->name, DSV4_I32, 2, s, v32);
}

TEST(rules_router_tid2eid_i32)
{
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, ra_edited("recipes/w4a16-rtn.yaml", tid2eid_i32), ra_source(), RULES) == 0);
    CHECK(ra_status_is(&v, "router-tid2eid", DSV4_RS_FAIL));
    CHECK(ra_evidence(&v, "router-tid2eid", "layers.0.ffn.gate.tid2eid: expected I64 [1024, 4] (layer 0, a hash "
                      "layer), found I32 [1024, 4]", NULL));
    const dsv4_fix_op *o = ra_op(&v, DSV4_FIX_PUT, "layers.0.ffn.gate.tid2eid", "router-tid2eid");
    CHECK(o && o->dtype == DSV4_I64 && o->from == dsv4_side_find(&v.src, "layers.0.ffn.gate.tid2eid")->t);
    dsv4_vctx_close(&v);
}

static void tid2eid_out_of_range(ra_art *a)
{
    ra_tensor *t = ra_find(a, "layers.1.ffn.gate.tid2eid");
    int64_t x = 16, y = -1;
    memcpy(t->data + 8 * 7, &x, 8);
    memcpy(t->data + 8 * 100, &y, 8);
}

TEST(rules_router_tid2eid_values)
{
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, ra_edited("recipes/w4a16-rtn.yaml", tid2eid_out_of_range), NULL, RULES) == 0);
    CHECK(ra_status_is(&v, "router-tid2eid", DSV4_RS_FAIL));
    CHECK(ra_evidence(&v, "router-tid2eid", "layers.1.ffn.gate.tid2eid: 2 of 4096 expert ids outside [0, 16) (first "
                      "at index 7: 16)", "repair needs --source", NULL));
    CHECK_EQ_INT(v.fixes.n, 0);
    dsv4_vctx_close(&v);
}

static void tid2eid_on_bias_layer(ra_art *a)
{
    int64_t s[2] = {1024, 4};
    ra_put(a, "layers.2.ffn.gate.tid2eid", DSV4_I64, 2, s, ra_find(a, "layers.0.ffn.gate.tid2eid")->data);
}

TEST(rules_router_tid2eid_on_non_hash_layer)
{
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, ra_edited("recipes/w4a16-rtn.yaml", tid2eid_on_bias_layer), ra_source(), RULES) == 0);
    CHECK(ra_status_is(&v, "router-tid2eid", DSV4_RS_FAIL));
    CHECK(ra_evidence(&v, "router-tid2eid", "layers.2.ffn.gate.tid2eid: present, but layer 2 is not a hash layer "
                      "(only hash layers have ffn.gate.tid2eid)", NULL));
    CHECK(ra_op(&v, DSV4_FIX_DROP, "layers.2.ffn.gate.tid2eid", "router-tid2eid") != NULL);
    CHECK_EQ_INT(ra_n_ops(&v, "router-tid2eid"), 1);
    dsv4_vctx_close(&v);
}
