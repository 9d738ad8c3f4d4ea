/* Helpers shared by the config, inventory and names tests: parse a fixture config with some keys
 * replaced or removed, and rewrite a release config into transformers 5.x keys (layer_types,
 * mlp_layer_types, compress_rates, partial_rotary_factor, nested rope_parameters; the release keys
 * removed). Each test file declares the few it uses. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "model/config.h"

const char *tcfg_patch(const char *rel, const char *patch, dsv4_config *c);
const char *tcfg_transformers(const char *rel, const char *patch, dsv4_config *c);
char *tcfg_transformers_json(const char *rel);

static void apply_patch(json_t *root, const char *patch)
{
    if (!patch)
        return;
    json_error_t je;
    json_t *p = json_loads(patch, 0, &je);
    if (!p) {
        fprintf(stderr, "bad test patch: %s\n", je.text);
        abort();
    }
    const char *k;
    json_t *v;
    json_object_foreach(p, k, v) {
        if (json_is_null(v))
            json_object_del(root, k);
        else
            json_object_set(root, k, v);
    }
    json_decref(p);
}

static const char *parse_root(json_t *root, const char *rel, dsv4_config *c)
{
    static dsv4_err e;
    char *s = json_dumps(root, JSON_INDENT(1));
    e.msg[0] = 0;
    int rc = dsv4_config_parse(s, strlen(s), rel, c, &e);
    free(s);
    json_decref(root);
    return rc ? e.msg : "";
}

static json_t *load(const char *rel)
{
    json_error_t je;
    json_t *root = json_load_file(th_path(rel), 0, &je);
    if (!root) {
        fprintf(stderr, "%s: %s\n", rel, je.text);
        abort();
    }
    return root;
}

const char *tcfg_patch(const char *rel, const char *patch, dsv4_config *c)
{
    json_t *root = load(rel);
    apply_patch(root, patch);
    return parse_root(root, rel, c);
}

static void to_transformers(json_t *root)
{
    json_t *cr = json_object_get(root, "compress_ratios");
    int n = (int)json_integer_value(json_object_get(root, "num_hidden_layers"));
    int nh = (int)json_integer_value(json_object_get(root, "num_hash_layers"));
    json_t *lt = json_array(), *mt = json_array();
    for (int i = 0; i < n; i++) {
        json_int_t r = json_integer_value(json_array_get(cr, (size_t)i));
        json_array_append_new(lt, json_string(r == 0   ? "sliding_attention"
                                              : r == 4 ? "compressed_sparse_attention"
                                                       : "heavily_compressed_attention"));
        json_array_append_new(mt, json_string(i < nh ? "hash_moe" : "moe"));
    }
    json_object_set_new(root, "layer_types", lt);
    json_object_set_new(root, "mlp_layer_types", mt);
    json_object_set_new(root, "compress_rates",
                        json_pack("{s:i,s:i}", "compressed_sparse_attention", 4, "heavily_compressed_attention", 128));
    double hd = (double)json_integer_value(json_object_get(root, "head_dim"));
    double prf = (double)json_integer_value(json_object_get(root, "qk_rope_head_dim")) / hd;
    json_object_set_new(root, "partial_rotary_factor", json_real(prf));
    json_t *rs = json_object_get(root, "rope_scaling");
    json_t *comp = json_deep_copy(rs);
    json_object_set_new(comp, "rope_type", json_string("yarn"));
    json_object_set_new(comp, "rope_theta", json_real(json_number_value(json_object_get(root, "compress_rope_theta"))));
    json_object_set_new(comp, "partial_rotary_factor", json_real(prf));
    json_object_set_new(comp, "attention_factor", json_real(1.0));
    json_t *rmain = json_pack("{s:s,s:f,s:f}", "rope_type", "default", "rope_theta",
                             json_number_value(json_object_get(root, "rope_theta")), "partial_rotary_factor", prf);
    json_object_set_new(root, "rope_parameters", json_pack("{s:o,s:o}", "main", rmain, "compress", comp));
    json_object_set_new(root, "dtype", json_string("bfloat16"));
    const char *drop[] = {"compress_ratios", "num_hash_layers", "qk_rope_head_dim", "rope_scaling", "torch_dtype"};
    for (size_t i = 0; i < sizeof drop / sizeof *drop; i++)
        json_object_del(root, drop[i]);
}

char *tcfg_transformers_json(const char *rel)
{
    json_t *root = load(rel);
    to_transformers(root);
    char *s = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    return s;
}

const char *tcfg_transformers(const char *rel, const char *patch, dsv4_config *c)
{
    json_t *root = load(rel);
    to_transformers(root);
    apply_patch(root, patch);
    return parse_root(root, rel, c);
}
