/* The scale rules (rules_scales.c): no false positive on the clean artifacts and the release, and
 * each damage found with its evidence and fix ops: scale names against the quantization method
 * (mode 16), scale dtypes (17) with exact casts and their fallback, NVFP4 global scales of shape
 * [1] (19) and differing between fused halves, and mixed expert forms per layer and between the
 * trunk and the MTP block (23). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/fp.h"
#include "harness.h"
#include "test_rules_util.h"

static const char *ids(void) { return tr_ids(dsv4_rules_scales); }

TEST(rules_scales_clean_artifacts_pass)
{
    const char *arts[] = {tr_clean("w4a16"), tr_clean("w4a8"), tr_clean("nvfp4"), tr_clean("fp8"), tr_clean("bf16"),
                          th_path("fixtures/dsv4-tiny")};
    for (size_t i = 0; i < sizeof arts / sizeof *arts; i++) {
        dsv4_vctx v;
        REQUIRE(arts[i] && tr_run(&v, arts[i], NULL, ids()) == 0);
        for (size_t k = 0; k < v.n_results; k++)
            CHECK_MSG(v.results[k].status != DSV4_RS_FAIL, "%s: %s failed: %s", arts[i], v.results[k].rule->id,
                      v.results[k].n_kept ? v.results[k].evidence[0] : "");
        CHECK_EQ_INT(v.fixes.n, 0);
        dsv4_vctx_close(&v);
    }
    dsv4_vctx v; /* the NVFP4 artifact has pairs to compare, so the NVFP4 rules really ran */
    REQUIRE(tr_run(&v, tr_clean("nvfp4"), NULL, ids()) == 0);
    CHECK_EQ_INT(tr_status(&v, "nvfp4-global-scalar"), DSV4_RS_PASS);
    CHECK_EQ_INT(tr_status(&v, "nvfp4-global-shared"), DSV4_RS_PASS);
    dsv4_vctx_close(&v);
}

/* Renames: pairs of (old, new) names, NULL-terminated. */
static int rename_fn(tr_tensor *t, void *ctx)
{
    for (const char *const *p = ctx; p[0]; p += 2)
        if (!strcmp(t->name, p[0]))
            snprintf(t->name, sizeof t->name, "%s", p[1]);
    return 1;
}

static int damaged(dsv4_vctx *v, const char *art, tr_tensor_fn fn, void *ctx, const char *rules)
{
    const char *out = tr_out("dmg");
    return art && tr_rewrite(art, out, fn, ctx) == 0 ? tr_run(v, out, NULL, rules ? rules : ids()) : -1;
}

static void check_rename(const dsv4_vctx *v, size_t k, const char *from, const char *to)
{
    const dsv4_fix_op *o = tr_op(v, "scale-convention", k);
    CHECK_MSG(o && o->kind == DSV4_FIX_RENAME && !strcmp(o->name, from) && !strcmp(o->new_name, to),
              "op %zu is not the rename %s -> %s", k, from, to);
}

TEST(rules_scales_convention_compressed_tensors)
{
    static const char *const names[] = {"layers.0.attn.wq_a.weight_scale", "layers.0.attn.wq_a.weight_scale_inv",
                                        "layers.1.ffn.shared_experts.w1.weight_scale",
                                        "layers.1.ffn.shared_experts.w1.scale", NULL};
    dsv4_vctx v;
    char rules[1024];
    snprintf(rules, sizeof rules, "%s,targets-match-vllm,targets-fused-halves", ids());
    REQUIRE(damaged(&v, tr_clean("w4a16"), rename_fn, (void *)names, rules) == 0);
    CHECK_EQ_INT(tr_status(&v, "scale-convention"), DSV4_RS_FAIL);
    CHECK_EQ_INT(tr_result(&v, "scale-convention")->n_found, 2);
    CHECK(tr_says(&v, "scale-convention", "layers.0.attn.wq_a.weight_scale_inv: FP8 scales under quantization method "
                                          "compressed-tensors are named .weight_scale"));
    REQUIRE(tr_n_ops(&v, "scale-convention") == 2);
    check_rename(&v, 0, "layers.0.attn.wq_a.weight_scale_inv", "layers.0.attn.wq_a.weight_scale");
    check_rename(&v, 1, "layers.1.ffn.shared_experts.w1.scale", "layers.1.ffn.shared_experts.w1.weight_scale");
    CHECK_EQ_INT(tr_status(&v, "scale-dtype"), DSV4_RS_PASS); /* judged under the names after the rename */
    /* A misnamed scale is this rule's alone: the target rules still see FP8 block modules. */
    CHECK_EQ_INT(tr_status(&v, "targets-match-vllm"), DSV4_RS_PASS);
    CHECK_EQ_INT(tr_status(&v, "targets-fused-halves"), DSV4_RS_PASS);
    dsv4_vctx_close(&v);
}

static void del_qc(json_t *c, void *ctx)
{
    (void)ctx;
    json_object_del(c, "quantization_config");
}

TEST(rules_scales_convention_native_and_majority)
{
    static const char *const native[] = {"layers.0.attn.wo_a.scale", "layers.0.attn.wo_a.weight_scale", NULL};
    dsv4_vctx v;
    REQUIRE(damaged(&v, th_path("fixtures/dsv4-tiny"), rename_fn, (void *)native, NULL) == 0);
    CHECK(tr_says(&v, "scale-convention", "under quantization method fp8 (DeepSeek native) are named .scale, found "
                                          ".weight_scale"));
    REQUIRE(tr_n_ops(&v, "scale-convention") == 1);
    check_rename(&v, 0, "layers.0.attn.wo_a.weight_scale", "layers.0.attn.wo_a.scale");
    CHECK_EQ_INT(tr_status(&v, "scale-dtype"), DSV4_RS_PASS);
    dsv4_vctx_close(&v);

    /* No quantization_config: the family's majority decides. */
    const char *noqc = tr_out("noqc");
    static const char *const one[] = {"layers.3.attn.wkv.weight_scale", "layers.3.attn.wkv.weight_scale_inv", NULL};
    REQUIRE(tr_rewrite(tr_clean("fp8"), noqc, rename_fn, (void *)one) == 0);
    REQUIRE(tr_edit_config(noqc, del_qc, NULL) == 0);
    REQUIRE(tr_run(&v, noqc, NULL, "scale-convention") == 0);
    CHECK(tr_says(&v, "scale-convention", "under quantization method none (each family's majority) are named "
                                          ".weight_scale, found .weight_scale_inv"));
    REQUIRE(tr_n_ops(&v, "scale-convention") == 1);
    check_rename(&v, 0, "layers.3.attn.wkv.weight_scale_inv", "layers.3.attn.wkv.weight_scale");
    dsv4_vctx_close(&v);
}

/* Re-encodes one tensor's values in another dtype (values taken exactly as decoded); `bump`
 * replaces element 0 by a value BF16 cannot hold. */
typedef struct recast {
    const char *name;
    dsv4_dtype to;
    int bump;
    int64_t shape0; /* > 0: a new leading shape (ndim 1) */
    unsigned char *buf;
} recast;

static int recast_fn(tr_tensor *t, void *ctx)
{
    recast *r = ctx;
    if (strcmp(t->name, r->name))
        return 1;
    uint64_t n = t->nbytes * 8 / (uint64_t)dsv4_dtype_bits(t->dtype);
    float *f = malloc(n * sizeof *f);
    dsv4_decode_row(t->dtype, t->data, f, n);
    if (r->bump)
        f[0] = 1.0000001f;
    r->buf = malloc(n * 4);
    if (r->to == DSV4_F8_E8M0)
        for (uint64_t i = 0; i < n; i++)
            r->buf[i] = dsv4_f32_to_e8m0(f[i]);
    else
        dsv4_encode_row(r->to, f, r->buf, n, DSV4_FP_SAT);
    free(f);
    t->dtype = r->to;
    t->data = r->buf;
    t->nbytes = n * (uint64_t)dsv4_dtype_bits(r->to) / 8;
    if (r->shape0 > 0) {
        t->ndim = 1;
        t->shape[0] = r->shape0;
    }
    return 1;
}

static const dsv4_fix_op *put_of(const dsv4_vctx *v, const char *rule, const char *name)
{
    for (size_t k = 0; k < tr_n_ops(v, rule); k++)
        if (!strcmp(tr_op(v, rule, k)->name, name))
            return tr_op(v, rule, k);
    return NULL;
}

TEST(rules_scales_dtype_compressed_tensors_fp8)
{
    dsv4_vctx v;
    recast r = {"layers.0.attn.wq_a.weight_scale", DSV4_F32, 0, 0, NULL};
    REQUIRE(damaged(&v, tr_clean("w4a16"), recast_fn, &r, "scale-dtype") == 0);
    CHECK_EQ_INT(tr_status(&v, "scale-dtype"), DSV4_RS_FAIL);
    CHECK(tr_says(&v, "scale-dtype", "layers.0.attn.wq_a.weight_scale is F32; FP8 block weight_scale tensors must be "
                                     "BF16 or F32 and one dtype across the artifact (found BF16 or F32)"));
    REQUIRE(tr_n_ops(&v, "scale-dtype") == 1);
    const dsv4_fix_op *o = tr_op(&v, "scale-dtype", 0);
    CHECK(o->kind == DSV4_FIX_PUT && o->produce == DSV4_PRODUCE_CAST && o->dtype == DSV4_BF16 && o->ndim == 2 &&
          o->shape[0] == 1 && o->shape[1] == 2 && o->from && !strcmp(o->from->name, r.name));
    dsv4_vctx_close(&v);
    free(r.buf);

    /* A value BF16 cannot hold: the whole artifact goes to F32 instead (33 BF16 scales). */
    recast b = {"layers.0.attn.wq_a.weight_scale", DSV4_F32, 1, 0, NULL};
    REQUIRE(damaged(&v, tr_clean("w4a16"), recast_fn, &b, "scale-dtype") == 0);
    CHECK_EQ_INT(tr_n_ops(&v, "scale-dtype"), 33);
    CHECK(!put_of(&v, "scale-dtype", "layers.0.attn.wq_a.weight_scale"));
    o = put_of(&v, "scale-dtype", "layers.3.ffn.shared_experts.w2.weight_scale");
    CHECK(o && o->dtype == DSV4_F32);
    dsv4_vctx_close(&v);
    free(b.buf);
}

TEST(rules_scales_dtype_native_int4_nvfp4)
{
    dsv4_vctx v;
    recast n = {"layers.0.attn.wq_a.scale", DSV4_BF16, 0, 0, NULL};
    REQUIRE(damaged(&v, th_path("fixtures/dsv4-tiny"), recast_fn, &n, "scale-dtype") == 0);
    CHECK(tr_says(&v, "scale-dtype", "layers.0.attn.wq_a.scale is BF16; FP8 scale must be F8_E8M0 or F32"));
    const dsv4_fix_op *o = put_of(&v, "scale-dtype", "layers.0.attn.wq_a.scale");
    CHECK(o && o->dtype == DSV4_F8_E8M0 && o->produce == DSV4_PRODUCE_CAST);
    dsv4_vctx_close(&v);
    free(n.buf);

    recast i4 = {"layers.2.ffn.experts.7.w2.weight_scale", DSV4_F8_E4M3, 0, 0, NULL};
    REQUIRE(damaged(&v, tr_clean("w4a16"), recast_fn, &i4, "scale-dtype") == 0);
    CHECK(tr_says(&v, "scale-dtype", "layers.2.ffn.experts.7.w2.weight_scale is F8_E4M3; INT4 weight_scale must be "
                                     "F16, BF16 or F32"));
    o = put_of(&v, "scale-dtype", "layers.2.ffn.experts.7.w2.weight_scale");
    CHECK(o && o->dtype == DSV4_BF16); /* e4m3 values are exact in BF16 */
    dsv4_vctx_close(&v);
    free(i4.buf);

    recast nv = {"layers.1.ffn.experts.2.w3.weight_scale", DSV4_BF16, 0, 0, NULL};
    REQUIRE(damaged(&v, tr_clean("nvfp4"), recast_fn, &nv, "scale-dtype") == 0);
    o = put_of(&v, "scale-dtype", "layers.1.ffn.experts.2.w3.weight_scale");
    CHECK(o && o->dtype == DSV4_F8_E4M3);
    dsv4_vctx_close(&v);
    free(nv.buf);

    /* A global scale rounded to BF16 [1]: back to F32, written 0-d; nvfp4-global-scalar adds nothing. */
    recast g = {"layers.1.ffn.experts.2.w3.weight_global_scale", DSV4_BF16, 0, 1, NULL};
    REQUIRE(damaged(&v, tr_clean("nvfp4"), recast_fn, &g, "scale-dtype,nvfp4-global-scalar") == 0);
    CHECK(tr_says(&v, "scale-dtype", "layers.1.ffn.experts.2.w3.weight_global_scale is BF16, expected F32"));
    o = put_of(&v, "scale-dtype", g.name);
    CHECK(o && o->dtype == DSV4_F32 && o->ndim == 0);
    CHECK_EQ_INT(tr_status(&v, "nvfp4-global-scalar"), DSV4_RS_FAIL);
    REQUIRE(tr_n_ops(&v, "nvfp4-global-scalar") == 1); /* the same PUT again, not a contradicting reshape */
    const dsv4_fix_op *same = tr_op(&v, "nvfp4-global-scalar", 0);
    CHECK(same->kind == DSV4_FIX_PUT && same->ndim == 0 && same->dtype == DSV4_F32 && same->from == o->from);
    dsv4_vctx_close(&v);
    free(g.buf);
}

static int globals_1d(tr_tensor *t, void *ctx)
{
    (void)ctx;
    size_t n = strlen(t->name);
    if (n > 20 && !strcmp(t->name + n - 20, ".weight_global_scale")) {
        t->ndim = 1;
        t->shape[0] = 1;
    }
    return 1;
}

TEST(rules_scales_nvfp4_global_scalar)
{
    dsv4_vctx v;
    REQUIRE(damaged(&v, tr_clean("nvfp4"), globals_1d, NULL, NULL) == 0);
    CHECK_EQ_INT(tr_status(&v, "nvfp4-global-scalar"), DSV4_RS_FAIL);
    CHECK_EQ_INT(tr_result(&v, "nvfp4-global-scalar")->n_found, 4 * 16 * 3);
    CHECK(tr_says(&v, "nvfp4-global-scalar", "layers.0.ffn.experts.0.w1.weight_global_scale has shape [1], expected []"));
    CHECK_EQ_INT(tr_n_ops(&v, "nvfp4-global-scalar"), 4 * 16 * 3);
    const dsv4_fix_op *o = tr_op(&v, "nvfp4-global-scalar", 0);
    CHECK(o->kind == DSV4_FIX_RESHAPE && o->ndim == 0 && o->dtype == DSV4_F32);
    CHECK_EQ_INT(tr_status(&v, "scale-dtype"), DSV4_RS_PASS);
    dsv4_vctx_close(&v);
}

static int unshare(tr_tensor *t, void *ctx)
{
    if (strcmp(t->name, "layers.2.ffn.experts.3.w3.weight_global_scale"))
        return 1;
    float x;
    memcpy(&x, t->data, 4);
    x *= 2;
    memcpy(ctx, &x, 4);
    t->data = ctx;
    return 1;
}

TEST(rules_scales_nvfp4_global_shared)
{
    dsv4_vctx v;
    static unsigned char buf[4];
    REQUIRE(damaged(&v, tr_clean("nvfp4"), unshare, buf, "nvfp4-global-shared") == 0);
    CHECK_EQ_INT(tr_status(&v, "nvfp4-global-shared"), DSV4_RS_FAIL);
    CHECK_EQ_INT(tr_result(&v, "nvfp4-global-shared")->n_found, 1);
    CHECK(tr_says(&v, "nvfp4-global-shared", "layers.2.ffn.experts.3.w1.weight_global_scale = "));
    CHECK(tr_says(&v, "nvfp4-global-shared", "vLLM fuses them into layers.2.ffn.experts.w13 (expert 3)"));
    CHECK_EQ_INT(v.fixes.n, 0);
    dsv4_vctx_close(&v);
}

static int drop_prefix(tr_tensor *t, void *ctx)
{
    return strncmp(t->name, ctx, strlen(ctx)) != 0;
}

TEST(rules_scales_expert_format_uniform)
{
    dsv4_vctx v;
    const char *mixed = tr_out("mixed"), *mtp = tr_out("mtp-mx");
    REQUIRE(tr_rewrite_add(tr_clean("nvfp4"), mixed, drop_prefix, "layers.2.ffn.experts.5.",
                           th_path("fixtures/dsv4-tiny"), "layers.2.ffn.experts.5.") == 0);
    REQUIRE(tr_run(&v, mixed, NULL, "expert-format-uniform") == 0);
    CHECK_EQ_INT(tr_result(&v, "expert-format-uniform")->n_found, 1);
    CHECK(tr_says(&v, "expert-format-uniform", "layers.2 routed experts mix storage forms: ct_nvfp4 x 45 (first "
                                               "layers.2.ffn.experts.0.w1), release_fp4 x 3 (first "
                                               "layers.2.ffn.experts.5.w1)"));
    dsv4_vctx_close(&v);
    REQUIRE(tr_rewrite_add(tr_clean("nvfp4"), mtp, drop_prefix, "mtp.0.ffn.experts.", th_path("fixtures/dsv4-tiny"),
                           "mtp.0.ffn.experts.") == 0);
    REQUIRE(tr_run(&v, mtp, NULL, "expert-format-uniform") == 0);
    CHECK(tr_says(&v, "expert-format-uniform", "mtp.0 routed experts are release_fp4 x 48 (first "
                                               "mtp.0.ffn.experts.0.w1) but the trunk's are ct_nvfp4"));
    CHECK_EQ_INT(v.fixes.n, 0);
    dsv4_vctx_close(&v);
}
