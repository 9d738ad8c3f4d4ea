/* The per-layer schedule of a config: which attention each layer runs (its compress ratio) and
 * which layers are hash-routed, from the release keys, the transformers keys, or both (then they
 * must agree). transformers' layer_types has no MTP entries; MTP layers are sliding, non-hash. */
#include "model/config_parts.h"

#include <stdio.h>
#include <string.h>

#define MAX_RATIO 65536

static const char *const LAYER_TYPES[3] = {"sliding_attention", "compressed_sparse_attention",
                                           "heavily_compressed_attention"};

/* The CSA and HCA rates: transformers' compress_rates dict and the legacy compress_rate_csa/hca
 * scalars, which must agree when both are given. `given` says which were set explicitly. */
static int parse_rates(const dsv4_jctx *j, const json_t *root, dsv4_config *c, int given[2])
{
    const json_t *rates = dsv4_jget(root, "compress_rates");
    if (rates && !json_is_object(rates))
        return dsv4_jbad(j, "compress_rates", rates,
                         "an object {\"compressed_sparse_attention\": 4, \"heavily_compressed_attention\": 128}");
    const char *legacy[2] = {"compress_rate_csa", "compress_rate_hca"};
    int64_t dflt[2] = {4, 128};
    for (int k = 0; k < 2; k++) {
        int64_t a = 0, b = 0;
        int ha = dsv4_jint(j, root, NULL, legacy[k], &a);
        int hb = dsv4_jint(j, rates, "compress_rates.", LAYER_TYPES[k + 1], &b);
        if (ha < 0 || hb < 0)
            return -1;
        if (ha && hb && a != b)
            return dsv4_fail(j->e, "%s: \"%s\" = %lld disagrees with \"compress_rates.%s\" = %lld", j->path,
                             legacy[k], (long long)a, LAYER_TYPES[k + 1], (long long)b);
        int64_t v = ha ? a : hb ? b : dflt[k];
        given[k] = ha || hb;
        const char *where = ha ? legacy[k] : "compress_rates";
        if (k == 0 && v != 4)
            return dsv4_fail(j->e, "%s: \"%s\" sets the compressed_sparse_attention rate to %lld: expected 4 (a ratio "
                             "of exactly 4 is what selects the overlapped compressor + indexer; any other "
                             "ratio is heavily compressed attention)", j->path, where, (long long)v);
        if (k == 1 && (v < 1 || v == 4 || v > MAX_RATIO))
            return dsv4_fail(j->e, "%s: \"%s\" sets the heavily_compressed_attention rate to %lld: expected an "
                             "integer in [1, %d] other than 4 (4 means compressed_sparse_attention)", j->path,
                             where, (long long)v, MAX_RATIO);
        if (k == 0)
            c->compress_rate_csa = (int)v;
        else
            c->compress_rate_hca = (int)v;
    }
    return 0;
}

static int parse_ratios(const dsv4_jctx *j, const json_t *cr, dsv4_config *c, const int given[2])
{
    int total = c->n_layers + c->n_mtp;
    if (!json_is_array(cr) || json_array_size(cr) != (size_t)total) {
        char what[200];
        snprintf(what, sizeof what, "an array of num_hidden_layers + num_nextn_predict_layers = %d + %d = %d "
                 "integers (one per decoder layer, then one per MTP layer)", c->n_layers, c->n_mtp, total);
        return dsv4_jbad(j, "compress_ratios", cr, what);
    }
    for (int i = 0; i < total; i++) {
        json_t *v = json_array_get(cr, (size_t)i);
        char where[64];
        snprintf(where, sizeof where, "compress_ratios[%d]", i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > MAX_RATIO) {
            char what[64];
            snprintf(what, sizeof what, "an integer in [0, %d]", MAX_RATIO);
            return dsv4_jbad(j, where, v, what);
        }
        int r = (int)json_integer_value(v);
        if (i >= c->n_layers && r != 0)
            return dsv4_fail(j->e, "%s: \"%s\" = %d is the ratio of MTP layer %d: expected 0 (the MTP block is a "
                             "sliding-window layer)", j->path, where, r, i - c->n_layers);
        int k = r == 4 ? 0 : 1;
        int rate = k == 0 ? c->compress_rate_csa : c->compress_rate_hca;
        if (r != 0 && given[k] && r != rate)
            return dsv4_fail(j->e, "%s: \"%s\" = %d disagrees with the %s rate %d set by \"%s\"", j->path, where, r,
                             LAYER_TYPES[k + 1], rate, k == 0 ? "compress_rate_csa" : "compress_rate_hca");
        c->compress_ratio[i] = r;
    }
    return 0;
}

static int parse_layer_types(const dsv4_jctx *j, const json_t *lt, dsv4_config *c, int have_ratios)
{
    if (!json_is_array(lt) || json_array_size(lt) != (size_t)c->n_layers) {
        char what[200];
        snprintf(what, sizeof what, "an array of num_hidden_layers = %d layer types (transformers' layer_types "
                 "has no MTP entries)", c->n_layers);
        return dsv4_jbad(j, "layer_types", lt, what);
    }
    for (int i = 0; i < c->n_layers; i++) {
        json_t *v = json_array_get(lt, (size_t)i);
        char where[64];
        snprintf(where, sizeof where, "layer_types[%d]", i);
        int t = -1;
        for (int k = 0; k < 3 && json_is_string(v); k++)
            if (!strcmp(json_string_value(v), LAYER_TYPES[k]))
                t = k;
        if (t < 0)
            return dsv4_jbad(j, where, v, "\"sliding_attention\", \"compressed_sparse_attention\" or "
                             "\"heavily_compressed_attention\"");
        int r = t == 0 ? 0 : t == 1 ? c->compress_rate_csa : c->compress_rate_hca;
        if (have_ratios && c->compress_ratio[i] != r)
            return dsv4_fail(j->e, "%s: \"compress_ratios[%d]\" = %d disagrees with \"%s\" = \"%s\" (rate %d)",
                             j->path, i, c->compress_ratio[i], where, LAYER_TYPES[t], r);
        c->compress_ratio[i] = r;
    }
    return 0;
}

static int parse_hash(const dsv4_jctx *j, const json_t *root, dsv4_config *c)
{
    int64_t nh = 0;
    int has_nh = dsv4_jint(j, root, NULL, "num_hash_layers", &nh);
    const json_t *mt = dsv4_jget(root, "mlp_layer_types");
    if (has_nh < 0)
        return -1;
    if (!has_nh && !mt)
        return dsv4_fail(j->e, "%s: neither \"num_hash_layers\" nor \"mlp_layer_types\" is present: expected one of "
                         "them to say which layers route by token hash (tid2eid) instead of the gate bias", j->path);
    if (has_nh && (nh < 0 || nh > c->n_layers)) {
        char what[96];
        snprintf(what, sizeof what, "an integer in [0, num_hidden_layers = %d]", c->n_layers);
        return dsv4_jbad(j, "num_hash_layers", dsv4_jget(root, "num_hash_layers"), what);
    }
    for (int i = 0; i < c->n_layers; i++)
        c->is_hash[i] = has_nh && i < nh;
    if (mt) {
        if (!json_is_array(mt) || json_array_size(mt) != (size_t)c->n_layers) {
            char what[160];
            snprintf(what, sizeof what, "an array of num_hidden_layers = %d entries \"hash_moe\" or \"moe\"",
                     c->n_layers);
            return dsv4_jbad(j, "mlp_layer_types", mt, what);
        }
        for (int i = 0; i < c->n_layers; i++) {
            json_t *v = json_array_get(mt, (size_t)i);
            char where[64];
            snprintf(where, sizeof where, "mlp_layer_types[%d]", i);
            const char *s = json_is_string(v) ? json_string_value(v) : "";
            int h = !strcmp(s, "hash_moe") ? 1 : !strcmp(s, "moe") ? 0 : -1;
            if (h < 0)
                return dsv4_jbad(j, where, v, "\"hash_moe\" or \"moe\"");
            if (has_nh && h != c->is_hash[i])
                return dsv4_fail(j->e, "%s: \"%s\" = \"%s\" disagrees with \"num_hash_layers\" = %lld (layers below "
                                 "it are hash_moe, the others moe)", j->path, where, s, (long long)nh);
            c->is_hash[i] = (uint8_t)h;
        }
    }
    c->n_hash_layers = 0;
    for (int i = 0; i < c->n_layers; i++)
        c->n_hash_layers += c->is_hash[i];
    return 0;
}

int dsv4_config_parse_schedule(const dsv4_jctx *j, const json_t *root, dsv4_config *c)
{
    int given[2];
    if (parse_rates(j, root, c, given))
        return -1;
    const json_t *cr = dsv4_jget(root, "compress_ratios"), *lt = dsv4_jget(root, "layer_types");
    if (!cr && !lt)
        return dsv4_fail(j->e, "%s: neither \"compress_ratios\" nor \"layer_types\" is present: expected one of them "
                         "to give each layer's attention type (the schedule is not guessed)", j->path);
    memset(c->compress_ratio, 0, sizeof c->compress_ratio);
    memset(c->is_hash, 0, sizeof c->is_hash);
    if (cr && parse_ratios(j, cr, c, given))
        return -1;
    if (lt && parse_layer_types(j, lt, c, cr != NULL))
        return -1;
    return parse_hash(j, root, c);
}
