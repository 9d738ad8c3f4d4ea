/* Modes that break the FP32 set and the router (spec/seed_pipelines.md §1.3, §6.3 modes 4, 5, 14):
 * the FP32 tensors saved BF16, the restore that missed gate.bias and both ape, and a missing
 * ffn.gate.bias or ffn.gate.tid2eid. */
#include "modes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/fp.h"

typedef struct fp32_sel {
    bt_art *a;
    int only_103; /* gate.bias and both ape only (the restore predicate that ran before the renames) */
} fp32_sel;

static int is_fp32_member(const bt_tensor *t, const void *ctx)
{
    const fp32_sel *s = ctx;
    const dsv4_inv_tensor *it = bt_inv(s->a, t->name);
    if (!it || !it->is_fp32_set || t->dtype != DSV4_F32)
        return 0;
    if (!s->only_103)
        return 1;
    return it->role == DSV4_ROLE_GATE_BIAS || it->role == DSV4_ROLE_COMPRESSOR_APE || it->role == DSV4_ROLE_INDEXER_APE;
}

/* F32 -> BF16, round to nearest even (torch's .to(torch.bfloat16)). */
static int downcast(bt_art *a, const char *name, dsv4_err *e)
{
    bt_tensor *t = bt_find(a, name);
    size_t n;
    uint16_t *v = bt_bf16_of(t, &n, e);
    if (!v)
        return -1;
    return bt_put(a, name, DSV4_BF16, t->ndim, t->shape, (uint8_t *)v, e);
}

static int downcast_set(bt_art *a, int only_103, dsv4_err *e)
{
    fp32_sel s = {a, only_103};
    bt_names l;
    if (bt_select(a, is_fp32_member, &s, only_103 ? "an F32 gate.bias or ape" : "an F32 member of the FP32 set", &l, e))
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l.n; i++)
        rc = downcast(a, l.v[i], e);
    bt_names_free(&l);
    return rc;
}

/* Mode 4: D's quantize script casts every FP32 parameter to BF16 before calibration, and
 * save_pretrained writes them so: every member of the FP32 set (hc_*, attn_sink, gate.bias, ape,
 * the MTP's too) is BF16. */
static int fp32_downcast(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    return downcast_set(a, 0, e);
}

/* Mode 5: the FP32 restore ran with a predicate written for the final names before the renames,
 * so the 314 hc_* and attn_sink tensors were restored but the 103 gate.bias and both ape stayed BF16. */
static int fp32_restore_before_rename(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    return downcast_set(a, 1, e);
}

/* Mode 14 (router, variant): one non-hash layer's ffn.gate.bias is missing (the last main layer). */
static int gate_bias_missing(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    int L = a->cfg.n_layers - 1;
    if (L < 0 || a->cfg.is_hash[L])
        return dsv4_fail(e, "%s: the last layer routes by hash: expected a layer with ffn.gate.bias", a->dir);
    char name[64];
    snprintf(name, sizeof name, "layers.%d.ffn.gate.bias", L);
    return bt_drop(a, name, e);
}

/* Router: one hash layer's ffn.gate.tid2eid is missing (the last hash layer). */
static int tid2eid_missing(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    int L = a->cfg.n_hash_layers - 1;
    if (L < 0)
        return dsv4_fail(e, "%s: the config has no hash layers: expected one with ffn.gate.tid2eid", a->dir);
    char name[64];
    snprintf(name, sizeof name, "layers.%d.ffn.gate.tid2eid", L);
    return bt_drop(a, name, e);
}

const bt_mode bt_modes_fp32[] = {
    {"fp32-downcast", "every member of the FP32 set saved BF16 (mode 4: D's cast before calibration)", 0,
     fp32_downcast},
    {"fp32-restore-before-rename", "only ffn.gate.bias and both compressor ape left BF16 (mode 5: the restore "
     "missed 103)", 0, fp32_restore_before_rename},
    {"gate-bias-missing", "ffn.gate.bias of the last main layer removed", 0, gate_bias_missing},
    {"tid2eid-missing", "ffn.gate.tid2eid of the last hash layer removed", 0, tid2eid_missing},
    {NULL, NULL, 0, NULL},
};
