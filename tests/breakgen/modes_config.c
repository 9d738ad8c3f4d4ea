/* Modes that break config.json (spec/seed_pipelines.md §3.5, §3.9, §4, §6.3 modes 7, 9, 10, 11,
 * 12, 24): scale_fmt missing, release keys replaced by transformers' on save, B's 44-layer
 * _CompatConfig, and quantization_config targets in HF names, matching the MTP, overlapping the
 * ignore list, or splitting a fused module. The tensors are left as they are. */
#include "modes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int del_key(bt_art *a, json_t *o, const char *where, const char *key, dsv4_err *e)
{
    if (!json_object_get(o, key))
        return dsv4_fail(e, "%s/config.json: %s has no \"%s\": expected a clean dsv4-quant config", a->dir, where, key);
    json_object_del(o, key);
    a->config_changed = 1;
    return 0;
}

/* Mode 10: quantization_config.scale_fmt absent (A's published config). */
static int config_no_scale_fmt(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    json_t *qc = bt_config_obj(a, "quantization_config", e);
    return qc ? del_key(a, qc, "quantization_config", "scale_fmt", e) : -1;
}

static const char *layer_type(const dsv4_config *c, int layer)
{
    return dsv4_attn_type_name(dsv4_config_attn(c, layer));
}

/* transformers' layer_types for layers [0, n). */
static json_t *layer_types(const dsv4_config *c, int n)
{
    json_t *lt = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(lt, json_string(layer_type(c, i)));
    return lt;
}

/* Mode 11: save_pretrained's config. transformers' DeepseekV4Config pops compress_ratios,
 * num_hash_layers and qk_rope_head_dim in __post_init__ and writes layer_types, mlp_layer_types,
 * compress_rates and partial_rotary_factor instead; rope_scaling becomes rope_parameters and
 * torch_dtype becomes dtype. The model it describes is unchanged. */
static int config_dropped_keys(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    json_t *root = a->config;
    const dsv4_config *c = &a->cfg;
    json_t *rs = json_object_get(root, "rope_scaling");
    json_t *td = json_object_get(root, "torch_dtype");
    if (!json_is_object(rs) || !json_is_string(td) || c->head_dim <= 0)
        return dsv4_fail(e, "%s/config.json: expected rope_scaling (an object) and torch_dtype (a string)", a->dir);
    json_t *rp = json_deep_copy(rs);
    json_t *type = json_object_get(rp, "type");
    if (type) {
        json_object_set(rp, "rope_type", type);
        json_object_del(rp, "type");
    }
    json_t *dtype = json_copy(td);
    static const char *const dropped[] = {"compress_ratios", "num_hash_layers", "rope_scaling", "torch_dtype",
                                          "qk_rope_head_dim"};
    for (size_t i = 0; i < sizeof dropped / sizeof *dropped; i++)
        if (del_key(a, root, "the top level", dropped[i], e)) {
            json_decref(rp);
            json_decref(dtype);
            return -1;
        }
    json_object_set_new(root, "layer_types", layer_types(c, c->n_layers));
    json_t *mlt = json_array();
    for (int i = 0; i < c->n_layers; i++)
        json_array_append_new(mlt, json_string(c->is_hash[i] ? "hash_moe" : "moe"));
    json_object_set_new(root, "mlp_layer_types", mlt);
    json_object_set_new(root, "compress_rates",
                        json_pack("{s:i, s:i}", "compressed_sparse_attention", c->compress_rate_csa,
                                  "heavily_compressed_attention", c->compress_rate_hca));
    json_object_set_new(root, "partial_rotary_factor", json_real((double)c->rope_head_dim / (double)c->head_dim));
    json_object_set_new(root, "rope_parameters", rp);
    json_object_set_new(root, "dtype", dtype);
    return 0;
}

/* Mode 12: B's _CompatConfig counts the MTP as a layer (num_hidden_layers = layers + MTP) and ties
 * the embeddings; D's MTP shim leaves layer_types with the MTP's "sliding_attention" appended. */
static int config_44_layers(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    json_t *root = a->config;
    const dsv4_config *c = &a->cfg;
    if (!json_is_integer(json_object_get(root, "num_hidden_layers")) ||
        !json_is_boolean(json_object_get(root, "tie_word_embeddings")) || c->n_mtp < 1)
        return dsv4_fail(e, "%s/config.json: expected num_hidden_layers, tie_word_embeddings and an MTP layer",
                         a->dir);
    json_object_set_new(root, "num_hidden_layers", json_integer(c->n_layers + c->n_mtp));
    json_object_set_new(root, "tie_word_embeddings", json_true());
    json_object_set_new(root, "layer_types", layer_types(c, c->n_layers + c->n_mtp));
    a->config_changed = 1;
    return 0;
}

/* Mode 7: the experts group's targets as D's recipe saved them, anchored on transformers names,
 * which vLLM's module names never match. */
static int targets_hf_names(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    json_t *g = bt_ct_group(a, "ffn\\.experts", e);
    if (!g)
        return -1;
    a->config_changed = 1;
    json_t *t = json_array();
    json_array_append_new(t, json_string("re:^model\\.layers\\.\\d+\\.mlp\\.experts\\.\\d+\\.(gate_proj|up_proj|down_proj)$"));
    json_object_set_new(g, "targets", t);
    return 0;
}

/* The experts group's targets widened by an unanchored pattern (A's patch_targets_v2.py style),
 * which also matches the BF16 MTP experts (mtp.0.ffn.experts.E.w1, model.layers.<L+0>.ffn.experts...). */
static int targets_match_mtp(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    json_t *g = bt_ct_group(a, "ffn\\.experts", e);
    if (!g)
        return -1;
    a->config_changed = 1;
    json_array_append_new(json_object_get(g, "targets"), json_string("re:.*experts\\.\\d+\\.(w1|w2|w3)$"));
    return 0;
}

/* Mode 24: a leftover ignore entry equal to a target (the model-free path's two passes). */
static int targets_ignore_overlap(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    json_t *g = bt_ct_group(a, "attn\\.(wq_a", e);
    json_t *qc = g ? bt_config_obj(a, "quantization_config", e) : NULL;
    if (!qc)
        return -1;
    json_t *ignore = json_object_get(qc, "ignore");
    json_t *first = json_array_get(json_object_get(g, "targets"), 0);
    if (!json_is_array(ignore) || !json_is_string(first))
        return dsv4_fail(e, "%s/config.json: expected an ignore list and a string target", a->dir);
    a->config_changed = 1;
    json_array_append_new(ignore, json_copy(first));
    return 0;
}

/* Mode 9: wkv dropped from the FP8 group's attention target while wq_a stays, so the halves of
 * vLLM's fused_wqa_wkv get different schemes. */
static int targets_fused_split(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    json_t *g = bt_ct_group(a, "attn\\.(wq_a", e);
    if (!g)
        return -1;
    json_t *targets = json_object_get(g, "targets");
    size_t i;
    json_t *t;
    json_array_foreach(targets, i, t) {
        const char *s = json_string_value(t);
        const char *hit = s ? strstr(s, "|wkv|") : NULL;
        if (!hit)
            continue;
        char buf[1024];
        snprintf(buf, sizeof buf, "%.*s|%s", (int)(hit - s), s, hit + 5);
        json_array_set_new(targets, i, json_string(buf));
        a->config_changed = 1;
        return 0;
    }
    return dsv4_fail(e, "%s/config.json: no FP8 target lists wkv as an alternative (\"|wkv|\")", a->dir);
}

const bt_mode bt_modes_config[] = {
    {"config-no-scale-fmt", "quantization_config.scale_fmt removed (mode 10)", 0, config_no_scale_fmt},
    {"config-dropped-keys", "release keys (compress_ratios, num_hash_layers, rope_scaling, torch_dtype, "
     "qk_rope_head_dim) replaced by transformers' (mode 11)", 0, config_dropped_keys},
    {"config-44-layers", "num_hidden_layers = layers + MTP, tie_word_embeddings true, layer_types with the MTP "
     "(mode 12, B's _CompatConfig)", 0, config_44_layers},
    {"targets-hf-names", "experts targets anchored on transformers names `re:^model\\.layers\\.\\d+\\.mlp...` "
     "(mode 7)", 0, targets_hf_names},
    {"targets-match-mtp", "experts targets widened by `re:.*experts\\.\\d+\\.(w1|w2|w3)$`, matching the MTP "
     "experts", 0, targets_match_mtp},
    {"targets-ignore-overlap", "an ignore entry equal to a target (mode 24)", 0, targets_ignore_overlap},
    {"targets-fused-split", "wkv dropped from the FP8 targets while wq_a stays (mode 9)", 0, targets_fused_split},
    {NULL, NULL, 0, NULL},
};
