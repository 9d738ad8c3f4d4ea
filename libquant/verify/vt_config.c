/* Layer blocks of the tensors and release keys rebuilt from the model config (vt_config.h). */
#include "verify/vt_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const json_t *present(const json_t *o, const char *key)
{
    const json_t *x = json_object_get(o, key);
    return x && !json_is_null(x) ? x : NULL;
}

void dsv4_vt_tensor_blocks(const dsv4_side *s, int *layers, int *mtp)
{
    *layers = *mtp = 0;
    for (size_t i = 0; i < s->n; i++) {
        const char *n = s->v[i].name, *p = NULL;
        int *dst = NULL;
        if (!strncmp(n, "layers.", 7))
            p = n + 7, dst = layers;
        else if (!strncmp(n, "mtp.", 4))
            p = n + 4, dst = mtp;
        if (!p || *p < '0' || *p > '9')
            continue;
        char *end;
        long b = strtol(p, &end, 10);
        if (*end == '.' && b >= 0 && b < DSV4_MAX_LAYERS && b + 1 > *dst)
            *dst = (int)b + 1;
    }
}

/* The config.json the model config was read from. */
static const json_t *model_json(const dsv4_vctx *v)
{
    return v->model == &v->art.cfg ? v->art.config : v->model == &v->src.cfg ? v->src.config : NULL;
}

static json_t *number(double x)
{
    return x == (double)(long long)x && x < 9e15 && x > -9e15 ? json_integer((json_int_t)x) : json_real(x);
}

json_t *dsv4_vt_release_key(const dsv4_vctx *v, const char *key, char *why, size_t cap)
{
    const dsv4_config *c = v->model;
    const json_t *j = model_json(v);
    if (!c || !j) {
        snprintf(why, cap, "no usable model config");
        return NULL;
    }
    if (!strcmp(key, "compress_ratios")) {
        if (!present(j, "layer_types")) {
            snprintf(why, cap, "no layer_types to derive it from");
            return NULL;
        }
        json_t *a = json_array();
        for (int i = 0; a && i < c->n_layers + c->n_mtp; i++)
            json_array_append_new(a, json_integer(c->compress_ratio[i]));
        return a;
    }
    if (!strcmp(key, "num_hash_layers")) {
        int prefix = 1;
        for (int i = 0; i < c->n_layers; i++)
            prefix &= c->is_hash[i] == (i < c->n_hash_layers);
        if (!present(j, "mlp_layer_types") || !prefix) {
            snprintf(why, cap, "%s", prefix ? "no mlp_layer_types to derive it from"
                                            : "mlp_layer_types' hash layers are not the first ones");
            return NULL;
        }
        return json_integer(c->n_hash_layers);
    }
    if (!strcmp(key, "qk_rope_head_dim"))
        return json_integer(c->rope_head_dim); /* absent, so the model read partial_rotary_factor */
    if (!strcmp(key, "torch_dtype")) {
        if (!present(j, "dtype")) {
            snprintf(why, cap, "no dtype to derive it from");
            return NULL;
        }
        return json_string(c->torch_dtype);
    }
    if (!strcmp(key, "rope_scaling")) {
        if (!present(j, "rope_parameters") || !c->has_yarn) {
            snprintf(why, cap, "%s", c->has_yarn ? "no rope_parameters to derive it from"
                                                 : "the config has no YaRN parameters to derive it from");
            return NULL;
        }
        return json_pack("{s:o, s:o, s:o, s:I, s:s}", "beta_fast", number(c->yarn_beta_fast), "beta_slow",
                         number(c->yarn_beta_slow), "factor", number(c->yarn_factor),
                         "original_max_position_embeddings", (json_int_t)c->yarn_orig_max_pos, "type", "yarn");
    }
    snprintf(why, cap, "not derivable");
    return NULL;
}

