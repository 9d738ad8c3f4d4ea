/* compressor-unquantized on artifacts made from fixtures/dsv4-tiny: the layers vLLM builds
 * unquantized (compressor / indexer-compressor wkv, wgate, indexer.weights_proj, ffn.gate, head)
 * quantized in each storage form, and which of them get an in-place dequantization. */
#include "harness.h"

#include <string.h>

#include "test_rulesa_util.h"

#define RULE "compressor-unquantized"

TEST(rules_compressor_clean_artifacts_pass)
{
    static const char *const recipes[] = {"recipes/w4a16-rtn.yaml", "recipes/nvfp4.yaml", "recipes/fp8.yaml",
                                          "recipes/bf16.yaml", "version: 1\nmtp:\n  policy: keep\n"};
    for (size_t i = 0; i < sizeof recipes / sizeof *recipes; i++) {
        dsv4_vctx v;
        REQUIRE(ra_verify(&v, ra_clean(recipes[i]), NULL, RULE) == 0);
        CHECK_MSG(ra_status_is(&v, RULE, DSV4_RS_PASS), "%s", recipes[i]);
        dsv4_vctx_close(&v);
    }
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, ra_source(), NULL, RULE) == 0);
    CHECK(ra_status_is(&v, RULE, DSV4_RS_PASS));
    dsv4_vctx_close(&v);
}

/* A/D's recipe: compressor wkv FP8-block with a BF16 weight_scale (failure mode 15), the indexer's
 * weights_proj with an F32 weight_scale_inv, the gate with a release e8m0 .scale. */
TEST(rules_compressor_fp8_forms_dequantized)
{
    ra_art a;
    REQUIRE(ra_load(ra_clean("recipes/w4a16-rtn.yaml"), &a) == 0);
    REQUIRE(ra_quant_fp8(&a, "layers.1.attn.compressor.wkv", ".weight_scale", DSV4_BF16) == 0);
    REQUIRE(ra_quant_fp8(&a, "layers.3.attn.indexer.weights_proj", ".weight_scale_inv", DSV4_F32) == 0);
    REQUIRE(ra_quant_fp8(&a, "layers.2.ffn.gate", ".scale", DSV4_F8_E8M0) == 0);
    const char *bad = ra_write(&a);
    ra_free(&a);
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, bad, NULL, RULE) == 0);
    CHECK(ra_status_is(&v, RULE, DSV4_RS_FAIL));
    CHECK_EQ_INT(ra_result(&v, RULE)->n_found, 3);
    CHECK(ra_evidence(&v, RULE, "layers.1.attn.compressor.wkv: stored ct_fp8_block (.weight F8_E4M3 [256, 256] + "
                      ".weight_scale BF16 [2, 2])", "failure mode 15", NULL));
    CHECK(ra_evidence(&v, RULE, "layers.3.attn.indexer.weights_proj: stored fp8_scale_inv", ".weight_scale_inv F32",
                      NULL));
    CHECK(ra_evidence(&v, RULE, "layers.2.ffn.gate: stored release_fp8", NULL));

    const dsv4_fix_op *o = ra_op(&v, DSV4_FIX_PUT, "layers.1.attn.compressor.wkv.weight", RULE);
    const dsv4_vtensor *w = dsv4_side_find(&v.art, "layers.1.attn.compressor.wkv.weight"),
                       *s = dsv4_side_find(&v.art, "layers.1.attn.compressor.wkv.weight_scale");
    CHECK(o && w && s && o->produce == DSV4_PRODUCE_CT_DEQUANT && o->dtype == DSV4_BF16 && o->ndim == 2 &&
          o->shape[0] == 256 && o->shape[1] == 256 && o->from == w->t && o->from_scale == s->t);
    CHECK(ra_op(&v, DSV4_FIX_DROP, "layers.1.attn.compressor.wkv.weight_scale", RULE) != NULL);

    o = ra_op(&v, DSV4_FIX_PUT, "layers.3.attn.indexer.weights_proj.weight", RULE);
    CHECK(o && o->produce == DSV4_PRODUCE_CT_DEQUANT && o->shape[0] == 4 && o->shape[1] == 256);
    CHECK(ra_op(&v, DSV4_FIX_DROP, "layers.3.attn.indexer.weights_proj.weight_scale_inv", RULE) != NULL);

    o = ra_op(&v, DSV4_FIX_PUT, "layers.2.ffn.gate.weight", RULE);
    CHECK(o && o->produce == DSV4_PRODUCE_BF16 && o->from_scale &&
          o->from_scale == dsv4_side_find(&v.art, "layers.2.ffn.gate.scale")->t);
    CHECK(ra_op(&v, DSV4_FIX_DROP, "layers.2.ffn.gate.scale", RULE) != NULL);
    CHECK_EQ_INT(ra_n_ops(&v, RULE), 6);
    dsv4_vctx_close(&v);
}

/* INT4 / NVFP4 values are not the release's: reported, no repair. */
TEST(rules_compressor_int4_nvfp4_no_repair)
{
    ra_art a;
    REQUIRE(ra_load(ra_clean("recipes/nvfp4.yaml"), &a) == 0);
    REQUIRE(ra_quant_int4(&a, "head") == 0);
    /* NVFP4 parts borrowed from a routed expert of the same shape ([128, 256]). */
    static const char *const parts[] = {".weight_packed", ".weight_scale", ".weight_global_scale"};
    for (int k = 0; k < 3; k++) {
        char from[128], to[128];
        snprintf(from, sizeof from, "layers.1.ffn.experts.0.w1%s", parts[k]);
        snprintf(to, sizeof to, "layers.1.attn.indexer.compressor.wgate%s", parts[k]);
        ra_tensor *t = ra_find(&a, from);
        REQUIRE(t);
        ra_put(&a, to, t->dtype, t->ndim, t->shape, t->data);
    }
    ra_drop(&a, "layers.1.attn.indexer.compressor.wgate.weight");
    const char *bad = ra_write(&a);
    ra_free(&a);
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, bad, ra_source(), RULE) == 0);
    CHECK(ra_status_is(&v, RULE, DSV4_RS_FAIL));
    CHECK(ra_evidence(&v, RULE, "head: stored ct_int4 (.weight_packed I32 [1024, 32] + .weight_scale BF16 [1024, 2] + "
                      ".weight_shape I64 [2])", "no repair: ct_int4 values", NULL));
    CHECK(ra_evidence(&v, RULE, "layers.1.attn.indexer.compressor.wgate: stored ct_nvfp4", "no repair", NULL));
    CHECK_EQ_INT(v.fixes.n, 0);
    dsv4_vctx_close(&v);
}

/* FP8 with a per-row scale, and an F16 weight: reported without a repair. */
TEST(rules_compressor_unrepairable_forms)
{
    ra_art a;
    REQUIRE(ra_load(ra_clean("recipes/w4a16-rtn.yaml"), &a) == 0);
    REQUIRE(ra_quant_fp8(&a, "layers.2.attn.compressor.wgate", ".weight_scale", DSV4_BF16) == 0);
    int64_t rows[2] = {128, 1};
    ra_put(&a, "layers.2.attn.compressor.wgate.weight_scale", DSV4_BF16, 2, rows, NULL);
    REQUIRE(ra_cast(&a, "layers.3.ffn.gate.weight", DSV4_F16) == 0);
    const char *bad = ra_write(&a);
    ra_free(&a);
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, bad, NULL, RULE) == 0);
    CHECK(ra_status_is(&v, RULE, DSV4_RS_FAIL));
    CHECK(ra_evidence(&v, RULE, "layers.2.attn.compressor.wgate: stored ct_fp8_block",
                      "no repair: its scale is not per 128x128 block", NULL));
    CHECK(ra_evidence(&v, RULE, "layers.3.ffn.gate: stored .weight F16 [16, 256], expected a BF16 (or F32) .weight",
                      "no repair", NULL));
    CHECK_EQ_INT(v.fixes.n, 0);
    dsv4_vctx_close(&v);
}

/* The naive `.replace(".weight", ".weight_scale")` name (failure mode 28) is judged under its
 * canonical name: the module is indexer.weights_proj, and the op names the canonical tensors. */
TEST(rules_compressor_canonical_names)
{
    ra_art a;
    REQUIRE(ra_load(ra_clean("recipes/w4a16-rtn.yaml"), &a) == 0);
    REQUIRE(ra_quant_fp8(&a, "layers.1.attn.indexer.weights_proj", ".weight_scale", DSV4_BF16) == 0);
    ra_tensor *t = ra_find(&a, "layers.1.attn.indexer.weights_proj.weight_scale");
    REQUIRE(t);
    snprintf(t->name, sizeof t->name, "layers.1.attn.indexer.weight_scales_proj.weight_scale");
    const char *bad = ra_write(&a);
    ra_free(&a);
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, bad, NULL, RULE) == 0);
    CHECK(ra_status_is(&v, RULE, DSV4_RS_FAIL));
    CHECK(ra_evidence(&v, RULE, "layers.1.attn.indexer.weights_proj: stored ct_fp8_block", NULL));
    CHECK(ra_op(&v, DSV4_FIX_DROP, "layers.1.attn.indexer.weights_proj.weight_scale", RULE) != NULL);
    CHECK(ra_op(&v, DSV4_FIX_PUT, "layers.1.attn.indexer.weights_proj.weight", RULE) != NULL);
    dsv4_vctx_close(&v);
}
