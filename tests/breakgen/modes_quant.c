/* Modes that break quantized forms and scale conventions (spec/seed_pipelines.md §3.7, §3.8,
 * §3.10, §6.3 modes 15, 16, 17, 19): compressor/indexer quantized FP8 as A/D's recipe did, D's
 * header-only `weight_scale_inv` rename, B's F32 `weight_scale_inv` attention scales, NVFP4 global
 * scales of shape [1], and an expert whose w1 and w3 no longer share the global scale. */
#include "modes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/fp.h"
#include "quant/pack.h"

static int is_compressor_linear(const bt_tensor *t, const void *ctx)
{
    const bt_art *a = ctx;
    const dsv4_inv_tensor *it = bt_inv(a, t->name);
    if (!it || t->dtype != DSV4_BF16)
        return 0;
    if (it->role == DSV4_ROLE_COMPRESSOR || it->role == DSV4_ROLE_INDEXER_COMPRESSOR)
        return bt_has_suffix(t->name, ".wkv.weight") || bt_has_suffix(t->name, ".wgate.weight");
    return bt_has_suffix(t->name, ".attn.indexer.weights_proj.weight");
}

/* The compressor/indexer target regexes of D's postprocess_for_vllm.py (§4.1, before the fix). */
static const char *const COMPRESSOR_TARGETS[] = {
    "re:.*attn\\.compressor\\.(wgate|wkv|fused_wkv_wgate|gate_proj|kv_proj)$",
    "re:.*attn\\.indexer\\.(weights_proj|wq_b|q_b_proj)$",
    "re:.*attn\\.indexer\\.compressor\\.(wgate|wkv|gate_proj|kv_proj)$",
};

/* Mode 15: A/D's recipe quantized the compressor and indexer linears (wkv, wgate, weights_proj)
 * to FP8 block with BF16 weight_scale, and the postprocess put them in the FP8 group's targets; the
 * ignore list had no compressor/indexer entries (those came with the later fix). */
static int compressor_quantized(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    bt_names l;
    if (bt_select(a, is_compressor_linear, a, "a BF16 compressor/indexer wkv, wgate or weights_proj", &l, e))
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        char scale[DSV4_NAME_MAX_BREAK];
        snprintf(scale, sizeof scale, "%.*s.weight_scale", (int)(strlen(l.v[i]) - strlen(".weight")), l.v[i]);
        rc = bt_fp8_block_quantize(a, l.v[i], scale, e);
    }
    bt_names_free(&l);
    if (rc)
        return -1;
    json_t *g = bt_ct_group(a, "attn\\.(wq_a", e);
    json_t *qc = g ? bt_config_obj(a, "quantization_config", e) : NULL;
    if (!qc)
        return -1;
    a->config_changed = 1;
    json_t *targets = json_object_get(g, "targets");
    for (size_t i = 0; i < sizeof COMPRESSOR_TARGETS / sizeof *COMPRESSOR_TARGETS; i++)
        json_array_append_new(targets, json_string(COMPRESSOR_TARGETS[i]));
    json_t *ignore = json_object_get(qc, "ignore");
    size_t removed = 0;
    for (size_t i = 0; i < json_array_size(ignore);) {
        const char *s = json_string_value(json_array_get(ignore, i));
        if (s && (strstr(s, "compressor") || strstr(s, "weights_proj"))) {
            json_array_remove(ignore, i);
            removed++;
        } else {
            i++;
        }
    }
    if (!removed)
        return dsv4_fail(e, "%s/config.json: no ignore entry names the compressor: expected dsv4-quant's ignore list",
                         a->dir);
    return 0;
}

static int is_fp8_scale(const bt_tensor *t, const void *ctx)
{
    bt_art *a = (bt_art *)ctx;
    if (!bt_has_suffix(t->name, ".weight_scale"))
        return 0;
    char w[DSV4_NAME_MAX_BREAK];
    snprintf(w, sizeof w, "%.*s.weight", (int)(strlen(t->name) - strlen(".weight_scale")), t->name);
    const bt_tensor *wt = bt_find(a, w);
    return wt && wt->dtype == DSV4_F8_E4M3;
}

/* Mode 16 (D's rename_weight_scale_to_inv.py, §3.8): `X.weight_scale` -> `X.weight_scale_inv` where
 * X.weight is F8_E4M3, in the headers only; the data sections are copied as they are. */
static int scale_inv_renamed(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    bt_names l;
    if (bt_select(a, is_fp8_scale, a, "the weight_scale of an F8_E4M3 weight", &l, e))
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        char name[DSV4_NAME_MAX_BREAK];
        snprintf(name, sizeof name, "%s_inv", l.v[i]);
        rc = bt_rename(a, l.v[i], name, e);
    }
    bt_names_free(&l);
    a->header_only = 1;
    return rc;
}

/* B's convert_attn_scales_for_vllm.py pattern:
 * ^(layers\.\d+|mtp\.\d+)\.attn(?:\.compressor)?\.(wq_a|wq_b|wkv|wgate|wo_a|wo_b)\.weight_scale$ */
static int is_b_attn_scale(const bt_tensor *t, const void *ctx)
{
    (void)ctx;
    const char *p = t->name;
    if (bt_has_prefix(p, "layers."))
        p += 7;
    else if (bt_has_prefix(p, "mtp."))
        p += 4;
    else
        return 0;
    if (*p < '0' || *p > '9')
        return 0;
    while (*p >= '0' && *p <= '9')
        p++;
    if (!bt_has_prefix(p, ".attn."))
        return 0;
    p += 6;
    if (bt_has_prefix(p, "compressor."))
        p += 11;
    static const char *const mods[] = {"wq_a", "wq_b", "wkv", "wgate", "wo_a", "wo_b"};
    for (int i = 0; i < 6; i++) {
        size_t n = strlen(mods[i]);
        if (!strncmp(p, mods[i], n) && !strcmp(p + n, ".weight_scale"))
            return t->dtype == DSV4_BF16;
    }
    return 0;
}

/* Modes 16/17 (B's convert_attn_scales_for_vllm.py): the attention FP8 scales renamed to
 * `weight_scale_inv` and widened BF16 -> F32 (DeepGemm wants F32); the shared-expert and indexer
 * scales, which its pattern does not match, keep `weight_scale` BF16. The script also sets the
 * FP8 group's input_activations to dynamic FP8 group 128, which dsv4-quant's config already has. */
static int scale_f32(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    json_t *g = bt_ct_group(a, "attn\\.(wq_a", e);
    if (!g)
        return -1;
    if (!json_is_object(json_object_get(g, "input_activations")))
        return dsv4_fail(e, "%s/config.json: the FP8 group has no input_activations: expected dsv4-quant's dynamic "
                         "FP8 activations (B's script would set them)", a->dir);
    bt_names l;
    if (bt_select(a, is_b_attn_scale, NULL, "a BF16 attention weight_scale", &l, e))
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        bt_tensor *t = bt_find(a, l.v[i]);
        size_t n = (size_t)(t->nbytes / 2);
        float *v = malloc(n ? 4 * n : 4);
        if (!v) {
            rc = dsv4_fail_rt(e, "%s: out of memory", l.v[i]);
            break;
        }
        for (size_t k = 0; k < n; k++) {
            uint16_t h;
            memcpy(&h, t->data + 2 * k, 2);
            v[k] = dsv4_bf16_to_f32(h);
        }
        char name[DSV4_NAME_MAX_BREAK];
        snprintf(name, sizeof name, "%s_inv", l.v[i]);
        int64_t shape[DSV4_MAX_DIMS];
        int ndim = t->ndim;
        memcpy(shape, t->shape, sizeof shape);
        rc = bt_drop(a, l.v[i], e);
        if (rc == 0)
            rc = bt_put(a, name, DSV4_F32, ndim, shape, (uint8_t *)v, e);
        else
            free(v);
    }
    bt_names_free(&l);
    return rc;
}

static int is_global_0d(const bt_tensor *t, const void *ctx)
{
    (void)ctx;
    return bt_has_suffix(t->name, "_global_scale") && t->ndim == 0 && t->dtype == DSV4_F32;
}

/* Mode 19: NVFP4 global scales of shape [1], as compressed-tensors saves them before B's
 * squeeze_global_scales.py. */
static int nvfp4_global_1d(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    bt_names l;
    if (bt_select(a, is_global_0d, NULL, "a 0-d F32 NVFP4 global scale", &l, e))
        return -1;
    int rc = 0;
    int64_t one[1] = {1};
    for (size_t i = 0; rc == 0 && i < l.n; i++)
        rc = bt_reshape(a, l.v[i], DSV4_F32, 1, one, e);
    bt_names_free(&l);
    return rc;
}

/* Re-quantizes w3 of one expert (`base` = "layers.L.ffn.experts.E.w3") with its own global scale.
 * Returns 1 when done, 0 when that scale equals the shared one (nothing to change), -1 on error. */
static int requant_alone(bt_art *a, const char *base, dsv4_err *e)
{
    char pn[DSV4_NAME_MAX_BREAK + 32], sn[DSV4_NAME_MAX_BREAK + 32], gn[DSV4_NAME_MAX_BREAK + 32];
    snprintf(pn, sizeof pn, "%s.weight_packed", base);
    snprintf(sn, sizeof sn, "%s.weight_scale", base);
    snprintf(gn, sizeof gn, "%s.weight_global_scale", base);
    bt_tensor *p = bt_need(a, pn, DSV4_U8, e), *s = p ? bt_need(a, sn, DSV4_F8_E4M3, e) : NULL;
    bt_tensor *g = s ? bt_need(a, gn, DSV4_F32, e) : NULL;
    if (!g)
        return -1;
    int64_t n = p->shape[0], k = p->shape[1] * 2;
    float gs_old;
    memcpy(&gs_old, g->data, 4);
    float *f = malloc((size_t)(n * k) * 4);
    uint16_t *w = malloc((size_t)(n * k) * 2);
    uint8_t *np = malloc((size_t)(n * k / 2)), *ns = malloc((size_t)(n * k / 16));
    float *ng = malloc(4);
    int rc = f && w && np && ns && ng ? dsv4_nvfp4_dequant(p->data, s->data, gs_old, n, k, f, e)
                                      : dsv4_fail_rt(e, "%s: out of memory", base);
    float gs = 0;
    if (rc == 0) {
        for (int64_t i = 0; i < n * k; i++)
            w[i] = dsv4_f32_to_bf16(f[i]);
        gs = dsv4_nvfp4_global_scale(dsv4_bf16_amax(w, (size_t)(n * k)));
        rc = gs == gs_old || !isfinite(gs) ? 0 : dsv4_nvfp4_rtn(w, n, k, gs, np, ns, e) ? -1 : 1;
    }
    free(f);
    free(w);
    if (rc != 1) {
        free(np);
        free(ns);
        free(ng);
        return rc;
    }
    *ng = gs;
    int64_t ps[2] = {n, k / 2}, ss[2] = {n, k / 16};
    if (bt_put(a, pn, DSV4_U8, 2, ps, np, e)) {
        free(ns);
        free(ng);
        return -1;
    }
    if (bt_put(a, sn, DSV4_F8_E4M3, 2, ss, ns, e)) {
        free(ng);
        return -1;
    }
    return bt_put(a, gn, DSV4_F32, g->ndim, g->shape, (uint8_t *)ng, e) ? -1 : 1;
}

static int is_trunk_w3_global(const bt_tensor *t, const void *ctx)
{
    (void)ctx;
    return bt_has_prefix(t->name, "layers.") && bt_has_suffix(t->name, ".w3.weight_global_scale");
}

/* vLLM's NVFP4 MoE takes one global scale for the fused w1/w3 (compressed-tensors computes it
 * from both halves). Here the first expert whose w3 alone gives a different global scale gets
 * that scale, and its codes and group scales are re-quantized to match: self-consistent, but no
 * longer shared with w1. The values cannot be recovered from the artifact. */
static int nvfp4_global_unshared(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    bt_names l;
    if (bt_select(a, is_trunk_w3_global, NULL, "an NVFP4 routed-expert w3 global scale", &l, e))
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        char base[DSV4_NAME_MAX_BREAK];
        snprintf(base, sizeof base, "%.*s", (int)(strlen(l.v[i]) - strlen(".weight_global_scale")), l.v[i]);
        rc = requant_alone(a, base, e);
    }
    bt_names_free(&l);
    if (rc == 0)
        return dsv4_fail(e, "%s: every expert's w3 gives the shared global scale on its own: nothing to unshare",
                         a->dir);
    return rc < 0 ? -1 : 0;
}

const bt_mode bt_modes_quant[] = {
    {"compressor-quantized", "compressor/indexer wkv, wgate, weights_proj FP8-block with BF16 weight_scale and "
     "targeted by the FP8 group (mode 15, A/D's recipe)", 0, compressor_quantized},
    {"scale-inv-renamed", "FP8 weight_scale renamed weight_scale_inv in the headers only (mode 16, D's "
     "rename_weight_scale_to_inv.py)", 0, scale_inv_renamed},
    {"scale-f32", "attention FP8 scales renamed weight_scale_inv and widened to F32 (modes 16/17, B's "
     "convert_attn_scales_for_vllm.py)", 0, scale_f32},
    {"nvfp4-global-1d", "NVFP4 weight_global_scale of shape [1] instead of [] (mode 19)", 0, nvfp4_global_1d},
    {"nvfp4-global-unshared", "one expert's w3 global scale differs from w1's, its codes re-quantized to "
     "match", 0, nvfp4_global_unshared},
    {NULL, NULL, 0, NULL},
};
