/* fp32-dtype and fp32-matches-source on clean and damaged artifacts made from fixtures/dsv4-tiny:
 * the downcast of the FP32 set (failure modes 4 and 5), a wrong shape, changed values, and sources
 * that cannot repair it. */
#include "harness.h"

#include <string.h>

#include "test_rulesa_util.h"

#define RULES "fp32-dtype,fp32-matches-source"

TEST(rules_fp32_clean_artifacts_pass)
{
    static const char *const recipes[] = {"recipes/w4a16-rtn.yaml", "recipes/nvfp4.yaml", "recipes/bf16.yaml"};
    for (size_t i = 0; i < sizeof recipes / sizeof *recipes; i++) {
        dsv4_vctx v;
        const char *art = ra_clean(recipes[i]);
        REQUIRE(ra_verify(&v, art, ra_source(), RULES) == 0);
        CHECK(ra_status_is(&v, "fp32-dtype", DSV4_RS_PASS));
        CHECK(ra_status_is(&v, "fp32-matches-source", DSV4_RS_PASS));
        CHECK_EQ_INT(v.fixes.n, 0);
        dsv4_vctx_close(&v);
        REQUIRE(ra_verify(&v, art, NULL, RULES) == 0);
        CHECK(ra_status_is(&v, "fp32-dtype", DSV4_RS_PASS));
        CHECK(ra_status_is(&v, "fp32-matches-source", DSV4_RS_SKIP));
        dsv4_vctx_close(&v);
    }
}

/* Mode 4 / 5: FP32-set tensors saved BF16 (a main-layer mixer, the MTP mixer, a gate bias and an
 * indexer ape). Detected without the source; repaired only from it. */
TEST(rules_fp32_downcast)
{
    static const char *const names[] = {"layers.2.hc_attn_fn", "mtp.0.hc_attn_fn", "layers.3.ffn.gate.bias",
                                        "layers.1.attn.indexer.compressor.ape"};
    ra_art a;
    REQUIRE(ra_load(ra_clean("recipes/w4a16-rtn.yaml"), &a) == 0);
    for (size_t i = 0; i < 4; i++)
        REQUIRE(ra_cast(&a, names[i], DSV4_BF16) == 0);
    const char *bad = ra_write(&a);
    ra_free(&a);
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, bad, ra_source(), RULES) == 0);
    CHECK(ra_status_is(&v, "fp32-dtype", DSV4_RS_FAIL));
    CHECK_EQ_INT(ra_result(&v, "fp32-dtype")->n_found, 4);
    CHECK(ra_evidence(&v, "fp32-dtype", "mtp.0.hc_attn_fn: expected F32 [24, 1024] (release FP32 set), found BF16 "
                      "[24, 1024]", NULL));
    CHECK(ra_evidence(&v, "fp32-dtype", "layers.3.ffn.gate.bias: expected F32 [16]", "found BF16 [16]", NULL));
    for (size_t i = 0; i < 4; i++) {
        const dsv4_fix_op *o = ra_op(&v, DSV4_FIX_PUT, names[i], "fp32-dtype");
        CHECK_MSG(o != NULL, "no PUT for %s", names[i]);
        if (!o)
            continue;
        const dsv4_vtensor *s = dsv4_side_find(&v.src, names[i]);
        CHECK(o->produce == DSV4_PRODUCE_COPY && o->dtype == DSV4_F32 && s && o->from == s->t);
    }
    CHECK_EQ_INT(ra_n_ops(&v, "fp32-dtype"), 4);
    /* The BF16 ones are fp32-dtype's; everything F32 still equals the source. */
    CHECK(ra_status_is(&v, "fp32-matches-source", DSV4_RS_PASS));
    dsv4_vctx_close(&v);

    REQUIRE(ra_verify(&v, bad, NULL, RULES) == 0);
    CHECK(ra_status_is(&v, "fp32-dtype", DSV4_RS_FAIL));
    CHECK(ra_evidence(&v, "fp32-dtype", "layers.2.hc_attn_fn", "repair needs --source",
                      "a BF16 upcast is no repair", NULL));
    CHECK_EQ_INT(v.fixes.n, 0);
    dsv4_vctx_close(&v);
}

TEST(rules_fp32_wrong_shape)
{
    ra_art a;
    REQUIRE(ra_load(ra_clean("recipes/w4a16-rtn.yaml"), &a) == 0);
    int64_t s25[1] = {25};
    ra_put(&a, "layers.2.hc_ffn_base", DSV4_F32, 1, s25, NULL);
    const char *bad = ra_write(&a);
    ra_free(&a);
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, bad, ra_source(), RULES) == 0);
    CHECK(ra_status_is(&v, "fp32-dtype", DSV4_RS_FAIL));
    CHECK(ra_evidence(&v, "fp32-dtype", "layers.2.hc_ffn_base: expected F32 [24] (release FP32 set), found F32 [25]",
                      NULL));
    const dsv4_fix_op *o = ra_op(&v, DSV4_FIX_PUT, "layers.2.hc_ffn_base", "fp32-dtype");
    CHECK(o && o->ndim == 1 && o->shape[0] == 24 && o->produce == DSV4_PRODUCE_COPY);
    CHECK(ra_status_is(&v, "fp32-matches-source", DSV4_RS_PASS));
    dsv4_vctx_close(&v);
}

/* Right dtype, wrong values: only the comparison with the source sees it; MTP tensors are
 * mtp-matches-source's. */
TEST(rules_fp32_values_differ)
{
    ra_art a;
    REQUIRE(ra_load(ra_clean("recipes/nvfp4.yaml"), &a) == 0);
    ra_tensor *t = ra_find(&a, "layers.3.ffn.gate.bias");
    REQUIRE(t && t->dtype == DSV4_F32);
    float x;
    memcpy(&x, t->data + 5 * 4, 4);
    x = x * 2 + 1;
    memcpy(t->data + 5 * 4, &x, 4);
    ra_tensor *m = ra_find(&a, "mtp.0.hc_head_base");
    REQUIRE(m);
    m->data[0] ^= 1;
    const char *bad = ra_write(&a);
    ra_free(&a);
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, bad, ra_source(), RULES ",mtp-matches-source") == 0);
    CHECK(ra_status_is(&v, "fp32-dtype", DSV4_RS_PASS));
    CHECK(ra_status_is(&v, "fp32-matches-source", DSV4_RS_FAIL));
    CHECK_EQ_INT(ra_result(&v, "fp32-matches-source")->n_found, 1);
    CHECK(ra_evidence(&v, "fp32-matches-source", "layers.3.ffn.gate.bias: F32 [16] differs from the source in 1 of 16 "
                      "values (first at index 5", NULL));
    const dsv4_fix_op *o = ra_op(&v, DSV4_FIX_PUT, "layers.3.ffn.gate.bias", "fp32-matches-source");
    CHECK(o && o->produce == DSV4_PRODUCE_COPY && o->from == dsv4_side_find(&v.src, "layers.3.ffn.gate.bias")->t);
    CHECK(ra_status_is(&v, "mtp-matches-source", DSV4_RS_FAIL));
    CHECK(ra_evidence(&v, "mtp-matches-source", "mtp.0.hc_head_base: F32 [4] differs from the source", NULL));
    dsv4_vctx_close(&v);
}

/* A source whose FP32 set is itself downcast cannot repair: the failure says why, no op. */
TEST(rules_fp32_source_without_f32)
{
    ra_art a;
    REQUIRE(ra_load(ra_clean("recipes/w4a16-rtn.yaml"), &a) == 0);
    REQUIRE(ra_cast(&a, "layers.0.attn.attn_sink", DSV4_BF16) == 0);
    const char *bad = ra_write(&a);
    ra_free(&a);
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, bad, bad, RULES) == 0);
    CHECK(ra_status_is(&v, "fp32-dtype", DSV4_RS_FAIL));
    CHECK(ra_evidence(&v, "fp32-dtype", "layers.0.attn.attn_sink: expected F32 [4]", "the source's "
                      "layers.0.attn.attn_sink is BF16 [4], the release stores F32 [4] (the F32 values are not in "
                      "the source)", NULL));
    CHECK_EQ_INT(v.fixes.n, 0);
    dsv4_vctx_close(&v);
}
