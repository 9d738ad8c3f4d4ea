/* Modes that break tensor names (spec/seed_pipelines.md §1.4, §3.4, §3.7, §6.3 modes 13, 14, 28):
 * a `model.` prefix, transformers names left on the trunk, artifact A's
 * `ffn.gate.e_score_correction_bias`, and the naive `.replace(".weight", ".weight_scale")` that
 * corrupts `indexer.weights_proj`. Renames re-save the shard, as the renaming scripts did. */
#include "modes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/names.h"

static int is_any(const bt_tensor *t, const void *ctx)
{
    (void)t;
    (void)ctx;
    return 1;
}

/* Mode 13: every key behind a `model.` prefix (release names otherwise). */
static int names_model_prefix(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    bt_names l;
    if (bt_select(a, is_any, NULL, "present", &l, e))
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        char name[DSV4_NAME_MAX + 8];
        snprintf(name, sizeof name, "model.%s", l.v[i]);
        rc = bt_rename(a, l.v[i], name, e);
    }
    bt_names_free(&l);
    return rc;
}

/* The quantization suffixes compressed-tensors adds to a module name, longest first. */
static const char *const PARTS[] = {".weight_global_scale", ".input_global_scale", ".weight_scale_inv",
                                    ".weight_packed", ".weight_scale", ".weight_shape", ".weight", NULL};

/* The transformers (llm-compressor, linearized experts) name of a release tensor name, suffix
 * kept: `layers.0.attn.wq_a.weight_scale` -> `model.layers.0.self_attn.q_a_proj.weight_scale`,
 * `layers.0.ffn.experts.3.w1.weight_packed` -> `model.layers.0.mlp.experts.3.gate_proj.weight_packed`. */
static int hf_name(const bt_art *a, const char *rel, char *out, size_t cap, dsv4_err *e)
{
    const char *part = "";
    size_t base = strlen(rel);
    for (int i = 0; PARTS[i]; i++)
        if (bt_has_suffix(rel, PARTS[i])) {
            part = PARTS[i];
            base -= strlen(part);
            break;
        }
    char probe[DSV4_NAME_MAX];
    snprintf(probe, sizeof probe, "%.*s%s", (int)base, rel, *part ? ".weight" : "");
    dsv4_name_map m;
    dsv4_map_kind k = dsv4_name_to_hf(probe, &a->cfg, &m);
    if (k == DSV4_MAP_DIRECT) {
        size_t n = strlen(m.name);
        if (*part && bt_has_suffix(m.name, ".weight"))
            n -= strlen(".weight");
        snprintf(out, cap, "%.*s%s", (int)n, m.name, part);
        return 0;
    }
    int L, E, w;
    if (k == DSV4_MAP_FUSED && sscanf(rel, "layers.%d.ffn.experts.%d.w%d", &L, &E, &w) == 3 && w >= 1 && w <= 3) {
        static const char *const proj[4] = {"", "gate_proj", "down_proj", "up_proj"};
        snprintf(out, cap, "model.layers.%d.mlp.experts.%d.%s%s", L, E, proj[w], part);
        return 0;
    }
    return dsv4_fail(e, "'%s' has no transformers name (%s): expected a release name of the trunk", rel, m.note);
}

static int is_trunk(const bt_tensor *t, const void *ctx)
{
    (void)ctx;
    return !bt_has_prefix(t->name, "mtp.");
}

/* Mode 13: the trunk as transformers' save_pretrained names it (llm-compressor's linearized
 * experts, the indexer nested under the compressor, `attn_hc.*`, `model.hc_head.hc_fn`, the gate
 * bias as `e_score_correction_bias`); quantization suffixes kept; the MTP block keeps its release
 * names (transformers has none for it). */
static int names_transformers(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    bt_names l;
    if (bt_select(a, is_trunk, NULL, "a trunk tensor", &l, e))
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        char name[DSV4_NAME_MAX];
        rc = hf_name(a, l.v[i], name, sizeof name, e);
        if (rc == 0)
            rc = bt_rename(a, l.v[i], name, e);
    }
    bt_names_free(&l);
    return rc;
}

static int is_trunk_gate_bias(const bt_tensor *t, const void *ctx)
{
    (void)ctx;
    return bt_has_prefix(t->name, "layers.") && bt_has_suffix(t->name, ".ffn.gate.bias");
}

/* Mode 14 (artifact A): rewrite_for_vllm.py maps `.mlp.gate.e_score_correction_bias` to
 * `.ffn.gate.e_score_correction_bias`, not `.ffn.gate.bias`. A had no MTP; the MTP keeps its name. */
static int names_gate_bias(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    bt_names l;
    if (bt_select(a, is_trunk_gate_bias, NULL, "a layers.N.ffn.gate.bias", &l, e))
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        char name[DSV4_NAME_MAX];
        snprintf(name, sizeof name, "%.*s.e_score_correction_bias", (int)(strlen(l.v[i]) - strlen(".bias")), l.v[i]);
        rc = bt_rename(a, l.v[i], name, e);
    }
    bt_names_free(&l);
    return rc;
}

/* Python's str.replace(old, new): every non-overlapping occurrence, left to right. */
static void py_replace(const char *s, const char *old, const char *new_, char *out, size_t cap)
{
    size_t n = 0, ol = strlen(old), nl = strlen(new_);
    while (*s && n + 1 < cap) {
        if (!strncmp(s, old, ol)) {
            for (size_t k = 0; k < nl && n + 1 < cap; k++)
                out[n++] = new_[k];
            s += ol;
        } else {
            out[n++] = *s++;
        }
    }
    out[n] = 0;
}

static int is_weights_proj(const bt_tensor *t, const void *ctx)
{
    (void)ctx;
    return bt_has_suffix(t->name, ".attn.indexer.weights_proj.weight") && t->dtype == DSV4_BF16;
}

/* Mode 28: indexer.weights_proj quantized to FP8 block, its scale named with
 * `k.replace(".weight", ".weight_scale")`, which also rewrites the `.weight` inside `.weights_proj`:
 * `layers.1.attn.indexer.weight_scales_proj.weight_scale`. The weight keeps its name. */
static int names_weights_proj(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    bt_names l;
    if (bt_select(a, is_weights_proj, NULL, "a BF16 attn.indexer.weights_proj.weight", &l, e))
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        char scale[DSV4_NAME_MAX * 2];
        py_replace(l.v[i], ".weight", ".weight_scale", scale, sizeof scale);
        rc = bt_fp8_block_quantize(a, l.v[i], scale, e);
    }
    bt_names_free(&l);
    return rc;
}

const bt_mode bt_modes_names[] = {
    {"names-model-prefix", "every tensor name prefixed with `model.` (mode 13)", 0, names_model_prefix},
    {"names-transformers", "the trunk in transformers names with the quantization suffixes kept (mode 13)", 0,
     names_transformers},
    {"names-gate-bias", "layers.N.ffn.gate.bias named ffn.gate.e_score_correction_bias (mode 14, artifact A)", 0,
     names_gate_bias},
    {"names-weights-proj", "indexer.weights_proj FP8-quantized, scale named by a naive .replace(\".weight\", "
     "\".weight_scale\") (mode 28)", 0, names_weights_proj},
    {NULL, NULL, 0, NULL},
};
