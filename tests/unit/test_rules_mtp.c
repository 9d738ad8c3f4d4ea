/* The MTP rules on artifacts made from fixtures/dsv4-tiny (one MTP block of 135 release tensors,
 * 77 without the `.scale`s; 58 MTP linears: 5 attention, 3 shared, 48 routed experts, e_proj,
 * h_proj): clean artifacts of each policy, no MTP in the config, the block stripped (mode 1),
 * incomplete, partly or wholly quantized (modes 3, 20-22), random (mode 2), repairs several rules
 * ask for, and unreadable shards. The aliases (mode 6) are test_rules_mtp_aliases.c's. */
#include "harness.h"

#include <string.h>
#include <unistd.h>

#include "test_rulesa_util.h"

#define MTP_RULES "mtp-present,mtp-complete,mtp-quant-all-or-nothing,mtp-matches-source,mtp-aliases,mtp-quantized"
#define NATIVE "version: 1\nmtp:\n  policy: keep\n"

static int only_puts_of(const dsv4_vctx *v, const char *id)
{
    for (size_t i = 0; i < v->fixes.n; i++)
        if (!strcmp(v->fixes.v[i].rule, id) && v->fixes.v[i].kind != DSV4_FIX_PUT)
            return 0;
    return 1;
}

TEST(rules_mtp_clean_artifacts_pass)
{
    static const char *const recipes[] = {"recipes/w4a16-rtn.yaml", "recipes/nvfp4.yaml", "recipes/fp8.yaml",
                                          "recipes/bf16.yaml", NATIVE};
    static const char *const ok[] = {"mtp-present", "mtp-complete", "mtp-quant-all-or-nothing", "mtp-matches-source"};
    for (size_t i = 0; i < sizeof recipes / sizeof *recipes; i++) {
        dsv4_vctx v;
        REQUIRE(ra_verify(&v, ra_clean(recipes[i]), ra_source(), MTP_RULES) == 0);
        for (size_t k = 0; k < 4; k++)
            CHECK_MSG(ra_status_is(&v, ok[k], DSV4_RS_PASS), "%s: %s", recipes[i], ok[k]);
        CHECK_EQ_INT(v.fixes.n, 0);
        int bf16 = i == 3, native = i == 4;
        CHECK(ra_status_is(&v, "mtp-aliases", bf16 ? DSV4_RS_SKIP : DSV4_RS_PASS));
        CHECK(ra_status_is(&v, "mtp-quantized", native ? DSV4_RS_FAIL : DSV4_RS_PASS));
        if (bf16)
            CHECK_STR_CONTAINS(ra_result(&v, "mtp-aliases")->skip_reason, "dsv4_provenance.mtp_aliases is false");
        dsv4_vctx_close(&v);
    }
}

/* The native artifact keeps the release's FP8/FP4 MTP: a warning naming the vLLM behaviour it relies
 * on, with native `.scale` naming (mode 22) and the main layers' storage (mode 20). */
TEST(rules_mtp_quantized_native_warns)
{
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, ra_clean(NATIVE), NULL, "mtp-quantized") == 0);
    CHECK(ra_status_is(&v, "mtp-quantized", DSV4_RS_FAIL));
    CHECK(ra_result(&v, "mtp-quantized")->rule->severity == DSV4_SEV_WARNING);
    CHECK(ra_evidence(&v, "mtp-quantized", "58 MTP modules are quantized", "#43319", NULL));
    CHECK(ra_evidence(&v, "mtp-quantized", "failure mode 22", "ignores .scale", NULL));
    CHECK(ra_evidence(&v, "mtp-quantized", "failure mode 20", "release_fp8", NULL));
    CHECK_EQ_INT(v.fixes.n, 0);
    dsv4_vctx_close(&v);
}

static void no_mtp_config(ra_art *a)
{
    ra_drop_prefix(a, "mtp.");
    json_object_set_new(a->config, "num_nextn_predict_layers", json_integer(0));
    json_object_set_new(a->config, "compress_ratios", json_pack("[iiii]", 0, 4, 128, 4));
}

TEST(rules_mtp_config_without_mtp_skips)
{
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, ra_edited("recipes/w4a16-rtn.yaml", no_mtp_config), NULL, MTP_RULES) == 0);
    static const char *const ids[] = {"mtp-present", "mtp-complete", "mtp-quant-all-or-nothing", "mtp-aliases",
                                      "mtp-quantized"};
    for (size_t k = 0; k < 5; k++) {
        CHECK(ra_status_is(&v, ids[k], DSV4_RS_SKIP));
        CHECK_STR_CONTAINS(ra_result(&v, ids[k])->skip_reason, "no MTP block");
    }
    dsv4_vctx_close(&v);
}

static void strip_mtp(ra_art *a) { ra_drop_prefix(a, "mtp."); }

/* Mode 1. BF16 policy: every MTP weight dequantized from the source, the rest copied, the aliases
 * copied from head / embed, beside the last layer's tensors. */
TEST(rules_mtp_present_bf16_policy)
{
    const char *bad = ra_edited("recipes/w4a16-rtn.yaml", strip_mtp);
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, bad, ra_source(), MTP_RULES) == 0);
    CHECK(ra_status_is(&v, "mtp-present", DSV4_RS_FAIL));
    CHECK(ra_evidence(&v, "mtp-present", "num_nextn_predict_layers is 1 but the artifact holds no mtp.* tensor (the "
                      "release layout has 135", "failure mode 1", NULL));
    CHECK_EQ_INT(ra_n_ops(&v, "mtp-present"), 77 + 2);
    CHECK(only_puts_of(&v, "mtp-present"));
    const dsv4_fix_op *o = ra_op(&v, DSV4_FIX_PUT, "mtp.0.attn.wq_a.weight", "mtp-present");
    CHECK(o && o->produce == DSV4_PRODUCE_BF16 && o->dtype == DSV4_BF16 && o->shape[0] == 128 &&
          o->shape[1] == 256 && o->from == dsv4_side_find(&v.src, "mtp.0.attn.wq_a.weight")->t &&
          o->from_scale == dsv4_side_find(&v.src, "mtp.0.attn.wq_a.scale")->t && o->near &&
          !strncmp(o->near, "layers.3.", 9));
    o = ra_op(&v, DSV4_FIX_PUT, "mtp.0.ffn.experts.5.w2.weight", "mtp-present");
    CHECK(o && o->produce == DSV4_PRODUCE_BF16 && o->shape[0] == 256 && o->shape[1] == 128);
    o = ra_op(&v, DSV4_FIX_PUT, "mtp.0.hc_attn_fn", "mtp-present");
    CHECK(o && o->produce == DSV4_PRODUCE_COPY && o->dtype == DSV4_F32);
    CHECK(ra_op(&v, DSV4_FIX_PUT, "mtp.0.attn.wq_a.scale", NULL) == NULL);
    o = ra_op(&v, DSV4_FIX_PUT, "mtp.0.emb.tok_emb.weight", "mtp-present");
    CHECK(o && o->produce == DSV4_PRODUCE_COPY && o->from == dsv4_side_find(&v.art, "embed.weight")->t);
    /* The other MTP rules leave a missing block to mtp-present. */
    CHECK(ra_status_is(&v, "mtp-complete", DSV4_RS_SKIP));
    CHECK(ra_status_is(&v, "mtp-aliases", DSV4_RS_SKIP));
    CHECK(ra_status_is(&v, "mtp-matches-source", DSV4_RS_SKIP));
    dsv4_vctx_close(&v);

    REQUIRE(ra_verify(&v, bad, NULL, "mtp-present") == 0);
    CHECK(ra_evidence(&v, "mtp-present", "no mtp.* tensor", "repair needs --source", NULL));
    CHECK_EQ_INT(v.fixes.n, 0);
    dsv4_vctx_close(&v);
}

/* Native policy: the source's bytes, `.scale` included; the bf16 recipe: no aliases. */
TEST(rules_mtp_present_native_and_bf16)
{
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, ra_edited(NATIVE, strip_mtp), ra_source(), "mtp-present") == 0);
    CHECK(ra_status_is(&v, "mtp-present", DSV4_RS_FAIL));
    CHECK_EQ_INT(ra_n_ops(&v, "mtp-present"), 135 + 2);
    const dsv4_fix_op *w = ra_op(&v, DSV4_FIX_PUT, "mtp.0.ffn.experts.3.w1.weight", NULL),
                      *s = ra_op(&v, DSV4_FIX_PUT, "mtp.0.ffn.experts.3.w1.scale", NULL);
    CHECK(w && w->produce == DSV4_PRODUCE_COPY && w->dtype == DSV4_I8 && w->shape[1] == 128);
    CHECK(s && s->produce == DSV4_PRODUCE_COPY && s->dtype == DSV4_F8_E8M0 && s->shape[1] == 8);
    dsv4_vctx_close(&v);

    REQUIRE(ra_verify(&v, ra_edited("recipes/bf16.yaml", strip_mtp), ra_source(), "mtp-present") == 0);
    CHECK(ra_status_is(&v, "mtp-present", DSV4_RS_FAIL));
    CHECK_EQ_INT(ra_n_ops(&v, "mtp-present"), 77);
    CHECK(ra_op(&v, DSV4_FIX_PUT, "mtp.0.head.weight", NULL) == NULL);
    dsv4_vctx_close(&v);
}

/* A trunk in a storage dsv4-quant never writes (FP8 with weight_scale_inv): no policy, no repair. */
static void scale_inv_trunk(ra_art *a)
{
    ra_drop_prefix(a, "mtp.");
    for (size_t i = 0; i < a->n; i++) {
        size_t l = strlen(a->t[i].name);
        if (!strncmp(a->t[i].name, "layers.", 7) && l > 6 && !strcmp(a->t[i].name + l - 6, ".scale") &&
            !strstr(a->t[i].name, ".experts."))
            snprintf(a->t[i].name + l - 6, sizeof a->t[i].name - (l - 6), ".weight_scale_inv");
    }
}

TEST(rules_mtp_present_no_policy)
{
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, ra_edited(NATIVE, scale_inv_trunk), ra_source(), "mtp-present") == 0);
    CHECK(ra_status_is(&v, "mtp-present", DSV4_RS_FAIL));
    CHECK(ra_evidence(&v, "mtp-present", "no MTP policy", "fp8_scale_inv", NULL));
    CHECK_EQ_INT(v.fixes.n, 0);
    dsv4_vctx_close(&v);
}

static void incomplete(ra_art *a)
{
    ra_drop(a, "mtp.0.attn.wq_b.weight");
    ra_drop(a, "mtp.0.hc_ffn_scale");
    int64_t s[2] = {1, 2};
    ra_put(a, "mtp.0.attn.wkv.weight_scale", DSV4_BF16, 2, s, NULL); /* beside a BF16 weight: no form */
}

TEST(rules_mtp_complete)
{
    const char *bad = ra_edited("recipes/w4a16-rtn.yaml", incomplete);
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, bad, ra_source(), "mtp-complete") == 0);
    CHECK(ra_status_is(&v, "mtp-complete", DSV4_RS_FAIL));
    CHECK_EQ_INT(ra_result(&v, "mtp-complete")->n_found, 3);
    CHECK(ra_evidence(&v, "mtp-complete", "mtp.0.attn.wq_b.weight: missing (the release stores F8_E4M3 [512, 128] + "
                      ".scale F8_E8M0 [4, 1])", NULL));
    CHECK(ra_evidence(&v, "mtp-complete", "mtp.0.hc_ffn_scale: missing (the release stores F32 [3])", NULL));
    CHECK(ra_evidence(&v, "mtp-complete", "mtp.0.attn.wkv.weight: stored in no complete form", NULL));
    const dsv4_fix_op *o = ra_op(&v, DSV4_FIX_PUT, "mtp.0.attn.wq_b.weight", NULL);
    CHECK(o && o->produce == DSV4_PRODUCE_BF16 && o->shape[0] == 512 && o->near && !strncmp(o->near, "mtp.0.", 6));
    CHECK(ra_op(&v, DSV4_FIX_PUT, "mtp.0.hc_ffn_scale", NULL) != NULL);
    CHECK(ra_op(&v, DSV4_FIX_PUT, "mtp.0.attn.wkv.weight", NULL) != NULL);
    CHECK(ra_op(&v, DSV4_FIX_DROP, "mtp.0.attn.wkv.weight_scale", NULL) != NULL);
    CHECK_EQ_INT(v.fixes.n, 4);
    dsv4_vctx_close(&v);

    REQUIRE(ra_verify(&v, bad, NULL, "mtp-complete") == 0);
    CHECK(ra_evidence(&v, "mtp-complete", "mtp.0.hc_ffn_scale: missing", "repair needs --source", NULL));
    CHECK_EQ_INT(v.fixes.n, 0);
    dsv4_vctx_close(&v);
}

static void quantize_mtp(ra_art *a, int experts, int rest, int wo_a)
{
    for (int e = 0; experts && e < 16; e++)
        for (int w = 1; w <= 3; w++) {
            char m[64];
            snprintf(m, sizeof m, "mtp.0.ffn.experts.%d.w%d", e, w);
            ra_quant_int4(a, m);
        }
    static const char *const others[] = {"mtp.0.attn.wq_a", "mtp.0.attn.wq_b", "mtp.0.attn.wkv", "mtp.0.attn.wo_b",
                                         "mtp.0.ffn.shared_experts.w1", "mtp.0.ffn.shared_experts.w2",
                                         "mtp.0.ffn.shared_experts.w3", "mtp.0.e_proj", "mtp.0.h_proj"};
    for (size_t k = 0; rest && k < sizeof others / sizeof *others; k++)
        ra_quant_int4(a, others[k]);
    if (wo_a)
        ra_quant_int4(a, "mtp.0.attn.wo_a");
}

static void mtp_experts_int4(ra_art *a) { quantize_mtp(a, 1, 0, 0); }
static void mtp_all_int4(ra_art *a) { quantize_mtp(a, 1, 1, 1); }
static void mtp_all_but_wo_a(ra_art *a) { quantize_mtp(a, 1, 1, 0); }

/* compressed-tensors #712: the MTP experts packed INT4, the rest BF16 (mode 3 / 20). */
TEST(rules_mtp_partly_quantized)
{
    const char *bad = ra_edited("recipes/w4a16-rtn.yaml", mtp_experts_int4);
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, bad, ra_source(), MTP_RULES) == 0);
    CHECK(ra_status_is(&v, "mtp-quant-all-or-nothing", DSV4_RS_FAIL));
    CHECK(ra_evidence(&v, "mtp-quant-all-or-nothing", "48 of 58 MTP linears are quantized (e.g. "
                      "mtp.0.ffn.experts.0.w1: ct_int4) and 10 are not (e.g. mtp.0.attn.wkv: plain)", "#43319", NULL));
    /* Each quantized module back to the source's BF16: its three parts dropped, .weight put. */
    CHECK_EQ_INT(ra_n_ops(&v, "mtp-quant-all-or-nothing"), 48 * 4);
    const dsv4_fix_op *o = ra_op(&v, DSV4_FIX_PUT, "mtp.0.ffn.experts.7.w3.weight", "mtp-quant-all-or-nothing");
    CHECK(o && o->produce == DSV4_PRODUCE_BF16 && o->from == dsv4_side_find(&v.src, "mtp.0.ffn.experts.7.w3.weight")->t);
    CHECK(ra_op(&v, DSV4_FIX_DROP, "mtp.0.ffn.experts.7.w3.weight_packed", NULL) != NULL);
    CHECK(ra_op(&v, DSV4_FIX_DROP, "mtp.0.ffn.experts.7.w3.weight_scale", NULL) != NULL);
    CHECK(ra_op(&v, DSV4_FIX_DROP, "mtp.0.ffn.experts.7.w3.weight_shape", NULL) != NULL);
    CHECK(ra_status_is(&v, "mtp-quantized", DSV4_RS_FAIL));
    CHECK(ra_evidence(&v, "mtp-quantized", "48 MTP modules are quantized", NULL));
    /* Quantized MTP values are not compared: a skip line, not a failure. */
    CHECK(ra_status_is(&v, "mtp-matches-source", DSV4_RS_SKIP));
    CHECK_STR_CONTAINS(ra_result(&v, "mtp-matches-source")->skip_reason, "48 MTP tensors not comparable");
    CHECK(ra_status_is(&v, "mtp-complete", DSV4_RS_PASS));
    dsv4_vctx_close(&v);
}

TEST(rules_mtp_wholly_quantized)
{
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, ra_edited("recipes/w4a16-rtn.yaml", mtp_all_int4), NULL, MTP_RULES) == 0);
    CHECK(ra_status_is(&v, "mtp-quant-all-or-nothing", DSV4_RS_PASS));
    CHECK(ra_status_is(&v, "mtp-quantized", DSV4_RS_FAIL));
    CHECK(ra_evidence(&v, "mtp-quantized", "failure mode 20", "ct_int4", NULL));
    dsv4_vctx_close(&v);
    /* All but wo_a: a BF16 wo_a beside quantized MTP layers (mode 21). */
    REQUIRE(ra_verify(&v, ra_edited("recipes/w4a16-rtn.yaml", mtp_all_but_wo_a), NULL, MTP_RULES) == 0);
    CHECK(ra_status_is(&v, "mtp-quant-all-or-nothing", DSV4_RS_FAIL));
    CHECK(ra_evidence(&v, "mtp-quant-all-or-nothing", "57 of 58", "mtp.0.attn.wo_a: plain", "repair needs --source",
                      NULL));
    CHECK(ra_evidence(&v, "mtp-quantized", "failure mode 21: mtp.0.attn.wo_a is BF16", NULL));
    dsv4_vctx_close(&v);
}

/* Native artifact: one MTP linear dequantized to BF16; the repair restores the source's bytes. */
static void native_one_bf16(ra_art *a)
{
    ra_tensor *w = ra_find(a, "mtp.0.e_proj.weight");
    int64_t s[2] = {256, 256};
    ra_put(a, "mtp.0.e_proj.weight", DSV4_BF16, 2, s, NULL);
    ra_drop(a, "mtp.0.e_proj.scale");
    (void)w;
}

TEST(rules_mtp_all_or_nothing_native)
{
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, ra_edited(NATIVE, native_one_bf16), ra_source(), "mtp-quant-all-or-nothing") == 0);
    CHECK(ra_status_is(&v, "mtp-quant-all-or-nothing", DSV4_RS_FAIL));
    CHECK(ra_evidence(&v, "mtp-quant-all-or-nothing", "57 of 58", "mtp.0.e_proj: plain", NULL));
    const dsv4_fix_op *w = ra_op(&v, DSV4_FIX_PUT, "mtp.0.e_proj.weight", NULL),
                      *s = ra_op(&v, DSV4_FIX_PUT, "mtp.0.e_proj.scale", NULL);
    CHECK(w && w->produce == DSV4_PRODUCE_COPY && w->dtype == DSV4_F8_E4M3);
    CHECK(s && s->produce == DSV4_PRODUCE_COPY && s->dtype == DSV4_F8_E8M0);
    CHECK_EQ_INT(v.fixes.n, 2);
    dsv4_vctx_close(&v);
}

/* Mode 2: values that are not the source's (a dequantized weight, an F32 mixer, a norm), and a
 * native artifact whose `.scale` bytes differ. */
static void mtp_random(ra_art *a)
{
    static const char *const names[] = {"mtp.0.attn.wq_a.weight", "mtp.0.hc_head_base", "mtp.0.enorm.weight"};
    for (size_t k = 0; k < 3; k++) {
        ra_tensor *t = ra_find(a, names[k]);
        for (uint64_t i = 0; t && i < t->nbytes; i++)
            t->data[i] = (uint8_t)(th_rand() & 0x3f);
    }
}

static void native_scale_byte(ra_art *a)
{
    ra_find(a, "mtp.0.attn.wq_a.scale")->data[1] ^= 1;
}

static void mtp_norm_shape(ra_art *a)
{
    int64_t s[1] = {255};
    ra_put(a, "mtp.0.hnorm.weight", DSV4_BF16, 1, s, NULL);
}

TEST(rules_mtp_matches_source)
{
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, ra_edited("recipes/nvfp4.yaml", mtp_random), ra_source(), "mtp-matches-source") == 0);
    CHECK(ra_status_is(&v, "mtp-matches-source", DSV4_RS_FAIL));
    CHECK_EQ_INT(ra_result(&v, "mtp-matches-source")->n_found, 3);
    CHECK(ra_evidence(&v, "mtp-matches-source", "mtp.0.attn.wq_a.weight: BF16 [128, 256] differs from the source's "
                      "BF16 dequantization in", "failure mode 2", NULL));
    CHECK(ra_evidence(&v, "mtp-matches-source", "mtp.0.hc_head_base: F32 [4] differs from the source (F32 [4])", NULL));
    CHECK(ra_evidence(&v, "mtp-matches-source", "mtp.0.enorm.weight: BF16 [256] differs", NULL));
    const dsv4_fix_op *o = ra_op(&v, DSV4_FIX_PUT, "mtp.0.attn.wq_a.weight", NULL);
    CHECK(o && o->produce == DSV4_PRODUCE_BF16 && o->from_scale == dsv4_side_find(&v.src, "mtp.0.attn.wq_a.scale")->t);
    CHECK(ra_op(&v, DSV4_FIX_PUT, "mtp.0.hc_head_base", NULL) != NULL);
    CHECK_EQ_INT(v.fixes.n, 3);
    dsv4_vctx_close(&v);

    REQUIRE(ra_verify(&v, ra_edited(NATIVE, native_scale_byte), ra_source(), "mtp-matches-source") == 0);
    CHECK(ra_evidence(&v, "mtp-matches-source", "mtp.0.attn.wq_a.scale (F8_E8M0 [1, 2]) differs from the source's "
                      "bytes in 1 of 2 values (first at index 1", NULL));
    o = ra_op(&v, DSV4_FIX_PUT, "mtp.0.attn.wq_a.scale", NULL);
    CHECK(o && o->produce == DSV4_PRODUCE_COPY && o->from == dsv4_side_find(&v.src, "mtp.0.attn.wq_a.scale")->t);
    dsv4_vctx_close(&v);

    REQUIRE(ra_verify(&v, ra_edited("recipes/w4a16-rtn.yaml", mtp_norm_shape), ra_source(), "mtp-matches-source") == 0);
    CHECK(ra_evidence(&v, "mtp-matches-source", "mtp.0.hnorm.weight: BF16 [255], the source's BF16 [256]", NULL));
    dsv4_vctx_close(&v);
}

/* Several rules that see one defect each ask for the same repair once: a broken MTP module
 * (mtp-complete, mtp-quant-all-or-nothing), a downcast MTP mixer (fp32-dtype; mtp-matches-source
 * leaves it), a missing MTP gate bias (mtp-complete, router-gate-bias). */
static void overlapping(ra_art *a)
{
    int64_t s[2] = {1, 2};
    ra_put(a, "mtp.0.attn.wkv.weight_scale", DSV4_BF16, 2, s, NULL);
    ra_cast(a, "mtp.0.hc_ffn_fn", DSV4_BF16);
    ra_drop(a, "mtp.0.ffn.gate.bias");
}

TEST(rules_mtp_overlapping_repairs_once)
{
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, ra_edited("recipes/w4a16-rtn.yaml", overlapping), ra_source(),
                      MTP_RULES ",fp32-dtype,fp32-matches-source,router-gate-bias,router-tid2eid,"
                      "compressor-unquantized") == 0);
    CHECK(ra_status_is(&v, "mtp-complete", DSV4_RS_FAIL));
    CHECK(ra_status_is(&v, "mtp-quant-all-or-nothing", DSV4_RS_FAIL));
    CHECK(ra_status_is(&v, "fp32-dtype", DSV4_RS_FAIL));
    CHECK(ra_status_is(&v, "router-gate-bias", DSV4_RS_FAIL));
    CHECK(ra_status_is(&v, "mtp-matches-source", DSV4_RS_SKIP));
    CHECK(ra_no_duplicate_ops(&v));
    CHECK(ra_op(&v, DSV4_FIX_PUT, "mtp.0.ffn.gate.bias", "mtp-complete") != NULL);
    CHECK(ra_op(&v, DSV4_FIX_PUT, "mtp.0.hc_ffn_fn", "fp32-dtype") != NULL);
    CHECK(ra_op(&v, DSV4_FIX_DROP, "mtp.0.attn.wkv.weight_scale", "mtp-complete") != NULL);
    CHECK_EQ_INT(v.fixes.n, 4);
    dsv4_vctx_close(&v);
}

/* A shard that cannot be read (a non-atomic writer killed mid-write) is shards-readable's defect:
 * the tensors the index places in it are unreadable, not missing. */
TEST(rules_mtp_unreadable_shard_is_not_missing)
{
    ra_art a;
    REQUIRE(ra_load(ra_clean("recipes/w4a16-rtn.yaml"), &a) == 0);
    const char *dir = ra_write_sharded(&a, 1u << 20);
    ra_free(&a);
    REQUIRE(dir);
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    json_error_t je;
    json_t *ix = json_load_file(path, 0, &je);
    REQUIRE(ix);
    json_t *map = json_object_get(ix, "weight_map");
    const char *name;
    json_t *file;
    int cut = 0;
    json_object_foreach(map, name, file) {
        if (strncmp(name, "mtp.", 4) && strcmp(name, "layers.3.ffn.gate.bias"))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, json_string_value(file));
        cut += truncate(path, 16) == 0;
    }
    json_decref(ix);
    REQUIRE(cut > 0);
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, dir, ra_source(), MTP_RULES ",router-gate-bias") == 0);
    REQUIRE(v.art.ck.n_bad_shards > 0);
    CHECK(ra_status_is(&v, "mtp-present", DSV4_RS_SKIP));
    CHECK_STR_CONTAINS(ra_result(&v, "mtp-present")->skip_reason, "cannot be read");
    CHECK(ra_status_is(&v, "router-gate-bias", DSV4_RS_PASS));
    CHECK_EQ_INT(v.fixes.n, 0);
    dsv4_vctx_close(&v);
}
