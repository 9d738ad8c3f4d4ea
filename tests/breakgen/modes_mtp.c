/* Modes that break the MTP block (spec/seed_pipelines.md §6.3 modes 1, 2, 3, 6, 23): stripped by
 * transformers' load, random-initialized, partly quantized at save, aliases missing or wrong, and
 * MXFP4 MTP experts under an NVFP4 trunk. */
#include "modes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/fp.h"
#include "quant/pack.h"

static int is_mtp(const bt_tensor *t, const void *ctx)
{
    (void)ctx;
    return bt_has_prefix(t->name, "mtp.");
}

/* The MTP head/embedding aliases D's fixup_artifact.py injects (`mtp.N.head.weight`,
 * `mtp.N.emb.tok_emb.weight`). */
static int is_alias(const char *name)
{
    const char *p = name + 4, *dot = strchr(p, '.');
    return bt_has_prefix(name, "mtp.") && dot && (!strcmp(dot, ".head.weight") || !strcmp(dot, ".emb.tok_emb.weight"));
}

/* Mode 1: transformers' from_pretrained drops every mtp.* key (`_keys_to_ignore_on_load_unexpected`),
 * so save_pretrained writes none (artifact A). config.json still says num_nextn_predict_layers 1. */
static int mtp_stripped(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    bt_names l;
    if (bt_select(a, is_mtp, NULL, "an MTP tensor (mtp.*)", &l, e))
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l.n; i++)
        rc = bt_drop(a, l.v[i], e);
    bt_names_free(&l);
    return rc;
}

static int is_mtp_bf16_own(const bt_tensor *t, const void *ctx)
{
    (void)ctx;
    return is_mtp(t, NULL) && t->dtype == DSV4_BF16 && !is_alias(t->name);
}

/* Mode 2 (D's Bug N1/N2): the MTP modules exist but their weights never load and `_init_weights`
 * fills them with random values; the aliases are copied later from the (correct) head/embed. The
 * F32 members (hc_*, attn_sink, gate.bias) keep their values so that only the MTP comparison
 * against the source fails, not fp32-matches-source as well. Values: uniform in [-0.05, 0.05),
 * seeded by tensor name, so the output is the same on every run. */
static int mtp_random(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    bt_names l;
    if (bt_select(a, is_mtp_bf16_own, NULL, "a BF16 MTP tensor", &l, e))
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        bt_tensor *t = bt_find(a, l.v[i]);
        size_t n = (size_t)(t->nbytes / 2);
        uint16_t *v = malloc(n ? 2 * n : 2);
        if (!v) {
            rc = dsv4_fail_rt(e, "%s: out of memory", l.v[i]);
            break;
        }
        uint64_t st = bt_seed(l.v[i]);
        for (size_t k = 0; k < n; k++) {
            float u = (float)(bt_next(&st) >> 40) * (1.0f / 16777216.0f);
            v[k] = dsv4_f32_to_bf16((2.0f * u - 1.0f) * 0.05f);
        }
        rc = bt_put(a, t->name, DSV4_BF16, t->ndim, t->shape, (uint8_t *)v, e);
    }
    bt_names_free(&l);
    return rc;
}

/* mtp.N.ffn.experts.E.wK.weight */
static int is_mtp_expert_weight(const bt_tensor *t, const void *ctx)
{
    (void)ctx;
    return is_mtp(t, NULL) && strstr(t->name, ".ffn.experts.") && bt_has_suffix(t->name, ".weight");
}

/* Mode 3 (compressed-tensors #712): at save time the W4A16 targets are applied to the MTP's routed
 * experts despite `ignore`, so they are written pack-quantized (weight_packed I32 [n, k/8],
 * weight_scale BF16 [n, k/128], weight_shape I64 [2]) while the rest of the MTP stays BF16. */
static int mtp_partly_quantized(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    bt_names l;
    if (bt_select(a, is_mtp_expert_weight, NULL, "an MTP routed-expert weight", &l, e))
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        bt_tensor *t = bt_need(a, l.v[i], DSV4_BF16, e);
        if (!t || t->ndim != 2 || t->shape[1] % 128) {
            rc = t ? dsv4_fail(e, "'%s': expected a 2-D BF16 weight whose columns are a multiple of 128", l.v[i]) : -1;
            break;
        }
        int64_t n = t->shape[0], k = t->shape[1];
        size_t numel;
        uint16_t *w = bt_bf16_of(t, &numel, e);
        int32_t *packed = malloc((size_t)(n * k / 8) * 4);
        uint16_t *scale = malloc((size_t)(n * k / 128) * 2);
        int64_t *shape = malloc(2 * sizeof *shape);
        if (!w || !packed || !scale || !shape) {
            rc = w ? dsv4_fail_rt(e, "%s: out of memory", l.v[i]) : -1;
        } else {
            rc = dsv4_int4_rtn(w, n, k, 128, packed, scale, e);
        }
        free(w);
        if (rc) {
            free(packed);
            free(scale);
            free(shape);
            break;
        }
        shape[0] = n;
        shape[1] = k;
        char base[512], name[560];
        snprintf(base, sizeof base, "%.*s", (int)(strlen(l.v[i]) - strlen(".weight")), l.v[i]);
        int64_t ps[2] = {n, k / 8}, ss[2] = {n, k / 128}, shs[1] = {2};
        rc = bt_drop(a, l.v[i], e);
        snprintf(name, sizeof name, "%s.weight_packed", base);
        if (rc == 0)
            rc = bt_put(a, name, DSV4_I32, 2, ps, (uint8_t *)packed, e);
        else
            free(packed);
        snprintf(name, sizeof name, "%s.weight_scale", base);
        if (rc == 0)
            rc = bt_put(a, name, DSV4_BF16, 2, ss, (uint8_t *)scale, e);
        else
            free(scale);
        snprintf(name, sizeof name, "%s.weight_shape", base);
        if (rc == 0)
            rc = bt_put(a, name, DSV4_I64, 1, shs, (uint8_t *)shape, e);
        else
            free(shape);
    }
    bt_names_free(&l);
    return rc;
}

/* Mode 6: the artifact as D had it before fixup_artifact.py injected the aliases. */
static int mtp_aliases_missing(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    for (int m = 0; m < a->cfg.n_mtp; m++) {
        char h[64], emb[64];
        snprintf(h, sizeof h, "mtp.%d.head.weight", m);
        snprintf(emb, sizeof emb, "mtp.%d.emb.tok_emb.weight", m);
        if (bt_drop(a, h, e) || bt_drop(a, emb, e))
            return -1;
    }
    return 0;
}

/* Mode 6, variant: the embedding alias made from the wrong donor (head.weight; same shape and
 * dtype in DeepSeek-V4, so only the bytes tell). */
static int mtp_alias_wrong(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    bt_tensor *head = bt_need(a, "head.weight", DSV4_BF16, e);
    bt_tensor *emb = head ? bt_need(a, "mtp.0.emb.tok_emb.weight", DSV4_BF16, e) : NULL;
    if (!emb)
        return -1;
    if (emb->nbytes != head->nbytes || memcmp(emb->shape, head->shape, sizeof emb->shape))
        return dsv4_fail(e, "%s: head.weight and mtp.0.emb.tok_emb.weight differ in shape: expected equal shapes",
                         a->dir);
    uint8_t *copy = malloc(head->nbytes);
    if (!copy)
        return dsv4_fail_rt(e, "%s: out of memory", a->dir);
    memcpy(copy, head->data, head->nbytes);
    return bt_put(a, "mtp.0.emb.tok_emb.weight", DSV4_BF16, head->ndim, head->shape, copy, e);
}

/* Mode 23 (N, C before v12): the trunk's experts are NVFP4 but the MTP experts are passed through
 * in the release's MXFP4 form (I8 .weight [n, k/2] + F8_E8M0 .scale [n, k/32]) from the source. */
static int experts_mixed_format(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    if (!src)
        return dsv4_fail(e, "experts-mixed-format copies the MTP experts' MXFP4 bytes from the source: give --source");
    bt_names l;
    if (bt_select(a, is_mtp_expert_weight, NULL, "an MTP routed-expert weight", &l, e))
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        char scale[560];
        snprintf(scale, sizeof scale, "%.*s.scale", (int)(strlen(l.v[i]) - strlen(".weight")), l.v[i]);
        const dsv4_tensor *w = dsv4_ckpt_find(src, l.v[i]), *s = dsv4_ckpt_find(src, scale);
        if (!w || !s || w->dtype != DSV4_I8 || s->dtype != DSV4_F8_E8M0) {
            rc = dsv4_fail(e, "%s: expected the source to hold '%s' (I8) and '%s' (F8_E8M0): MXFP4 release experts",
                           src->dir, l.v[i], scale);
            break;
        }
        rc = bt_put_view(a, l.v[i], w, e);
        if (rc == 0)
            rc = bt_put_view(a, scale, s, e);
    }
    bt_names_free(&l);
    return rc;
}

const bt_mode bt_modes_mtp[] = {
    {"mtp-stripped", "all mtp.* tensors removed, as transformers' load drops them (mode 1; artifact A)", 0,
     mtp_stripped},
    {"mtp-random", "MTP BF16 tensors replaced by seeded random values of the same dtype/shape (mode 2)", 0,
     mtp_random},
    {"mtp-partly-quantized", "MTP routed experts packed INT4 (weight_packed/scale/shape), rest BF16 (mode 3, "
     "compressed-tensors #712)", 0, mtp_partly_quantized},
    {"mtp-aliases-missing", "mtp.N.head.weight and mtp.N.emb.tok_emb.weight removed (mode 6)", 0,
     mtp_aliases_missing},
    {"mtp-alias-wrong", "mtp.0.emb.tok_emb.weight made from head.weight instead of embed.weight (mode 6)", 0,
     mtp_alias_wrong},
    {"experts-mixed-format", "MTP routed experts in release MXFP4 (I8 + e8m0 .scale) from the source under an "
     "NVFP4 trunk (mode 23)", 1, experts_mixed_format},
    {NULL, NULL, 0, NULL},
};
