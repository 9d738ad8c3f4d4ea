/* Rules: tensor names follow the release grammar (seed_pipelines.md §1.4, §3.4, §6.3 modes 13, 14,
 * 28). Each kind of wrong name has its own rule, so a report says which pipeline step went wrong;
 * the fix is a header-only rename to the canonical name (vctx.h). */
#include <stdio.h>
#include <string.h>

#include "model/names.h"
#include "verify/vctx.h"

/* Another tensor already has (or will get) this canonical name. */
static int collides(const dsv4_vctx *v, size_t i)
{
    const char *n = v->art.v[i].name;
    return (i > 0 && !strcmp(v->art.v[i - 1].name, n)) || (i + 1 < v->art.n && !strcmp(v->art.v[i + 1].name, n));
}

/* In an artifact in transformers names, names that are release names behind `model.` (`model.norm.weight`,
 * and `model.mtp.N.*` as MTP-aware pipelines write the MTP block) are transformers names too. */
static int has_hf(const dsv4_vctx *v)
{
    for (size_t i = 0; i < v->art.n; i++)
        if (v->art.v[i].how == DSV4_CANON_HF)
            return 1;
    return 0;
}

static dsv4_canon how_of(const dsv4_vctx *v, const dsv4_vtensor *t, int hf)
{
    if (t->how == DSV4_CANON_MODEL_PREFIX && hf)
        return DSV4_CANON_HF;
    return t->how;
}

static void rename_rule(dsv4_vctx *v, dsv4_canon how, const char *what)
{
    int hf = has_hf(v);
    for (size_t i = 0; i < v->art.n; i++) {
        const dsv4_vtensor *t = &v->art.v[i];
        if (how_of(v, t, hf) != how)
            continue;
        if (collides(v, i)) {
            dsv4_vctx_fail(v, "%s: %s; its release name %s is taken by another tensor (not renamed)", t->t->name,
                           what, t->name);
            continue;
        }
        dsv4_vctx_fail(v, "%s: %s; release name %s", t->t->name, what, t->name);
        char why[160];
        snprintf(why, sizeof why, "%s -> release name", what);
        dsv4_vctx_fix_rename(v, t->t->name, t->name, why);
    }
}

static void run_prefix(dsv4_vctx *v, const dsv4_rule *self)
{
    rename_rule(v, DSV4_CANON_MODEL_PREFIX, "`model.` prefix");
}

static void run_hf(dsv4_vctx *v, const dsv4_rule *self)
{
    rename_rule(v, DSV4_CANON_HF, "transformers name");
    for (size_t i = 0; i < v->art.n; i++) {
        dsv4_name_map m;
        if (v->art.v[i].how == DSV4_CANON_SAME && dsv4_name_from_hf(v->art.v[i].t->name, &m) == DSV4_MAP_SPLIT)
            dsv4_vctx_fail(v, "%s: transformers' fused expert tensor (all experts in one); vLLM reads per-expert "
                              "tensors: re-convert the artifact with dsv4-quant (not renamed)", v->art.v[i].t->name);
    }
}

static void run_gate_bias(dsv4_vctx *v, const dsv4_rule *self)
{
    rename_rule(v, DSV4_CANON_GATE_BIAS, "`e_score_correction_bias` (current vLLM reads `ffn.gate.bias`)");
}

static void run_corrupted(dsv4_vctx *v, const dsv4_rule *self)
{
    rename_rule(v, DSV4_CANON_NAIVE_SUFFIX, "`.weights_proj` corrupted by a naive `.weight` replace");
}

/* `mtp.N.head.weight` / `mtp.N.emb.tok_emb.weight`: the MTP aliases vLLM's MTP loader reads. */
static int is_alias(const dsv4_vctx *v, const char *name)
{
    int n, k = 0;
    if (sscanf(name, "mtp.%d.%n", &n, &k) != 1 || k == 0 || n < 0 || n >= v->model->n_mtp)
        return 0;
    return !strcmp(name + k, "head.weight") || !strcmp(name + k, "emb.tok_emb.weight");
}

static int known(const dsv4_vctx *v, const dsv4_amod *m)
{
    if (!m->is_module)
        return dsv4_inventory_find(v->inv, m->module) != NULL;
    char w[DSV4_NAME_MAX + 16];
    snprintf(w, sizeof w, "%s.weight", m->module);
    const dsv4_inv_tensor *t = dsv4_inventory_find(v->inv, w);
    if (!t)
        return is_alias(v, w) && m->part[DSV4_PART_WEIGHT] && m->form == DSV4_QF_PLAIN;
    if (t->ndim == 2)
        return 1;
    for (int p = 0; p < DSV4_PART_COUNT; p++)
        if (p != DSV4_PART_WEIGHT && m->part[p])
            return 0;
    return 1;
}

static void run_unknown(dsv4_vctx *v, const dsv4_rule *self)
{
    if (!v->inv) {
        dsv4_vctx_skip(v, "no usable model config: %s", v->art.config_problem);
        return;
    }
    for (size_t i = 0; i < v->art.st.n; i++) {
        const dsv4_amod *m = &v->art.st.m[i];
        if (known(v, m))
            continue;
        for (int p = 0; p < DSV4_PART_COUNT; p++)
            if (m->part[p])
                dsv4_vctx_fail(v, "%s: not a tensor of this model's release layout (config: %d layers, %d MTP, "
                                  "%d experts)", m->part_name[p], v->model->n_layers, v->model->n_mtp,
                               (int)v->model->n_routed_experts);
    }
}

static const dsv4_rule PREFIX = {
    "names-model-prefix", "no `model.` prefix on release names",
    "Every tensor name starts as the release's does (`layers.`, `mtp.`, `embed.`, `head.`, `norm.`, `hc_head_`); "
    "vLLM adds `model.` itself.",
    DSV4_SEV_ERROR, 0, "rename (header only) without the prefix", run_prefix};
static const dsv4_rule HF = {
    "names-transformers", "no transformers names",
    "No tensor carries a transformers name (`self_attn.*`, `mlp.*`, `attn_hc`, `hc_head.hc_fn`, the indexer nested "
    "under the compressor, fused experts); vLLM reads the release names (KeyError otherwise).",
    DSV4_SEV_ERROR, 0, "rename (header only) to the release name; fused experts need a re-conversion", run_hf};
static const dsv4_rule GATE_BIAS = {
    "names-gate-bias", "router bias named `ffn.gate.bias`",
    "The router's correction bias is stored as `ffn.gate.bias`, not `ffn.gate.e_score_correction_bias`.",
    DSV4_SEV_ERROR, 0, "rename (header only) to `ffn.gate.bias`", run_gate_bias};
static const dsv4_rule CORRUPTED = {
    "names-corrupted", "no names corrupted by naive suffix replacement",
    "No name holds `.weight_scales_proj` (what `name.replace(\".weight\", \".weight_scale\")` makes of "
    "`indexer.weights_proj.weight`).",
    DSV4_SEV_ERROR, 0, "rename (header only) back to `.weights_proj`", run_corrupted};
static const dsv4_rule UNKNOWN = {
    "names-unknown", "every tensor belongs to the model",
    "Every canonical name is a release-inventory tensor for this config, a quantization part of one of its linear "
    "layers, or an MTP alias.",
    DSV4_SEV_ERROR, 0, NULL, run_unknown};

const dsv4_rule *const dsv4_rules_names[] = {&PREFIX, &HF, &GATE_BIAS, &CORRUPTED, &UNKNOWN, NULL};
