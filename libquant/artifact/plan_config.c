/* The artifact's config.json: the source config with every key kept, the release keys vLLM reads
 * added back when a transformers-style source dropped them (compress_ratios with the MTP entry,
 * num_hash_layers, qk_rope_head_dim, rope_scaling, compress_rope_theta, torch_dtype,
 * num_nextn_predict_layers, tie_word_embeddings: false), the quantization_config for the artifact's
 * form (compressed-tensors: built by ct_config; BF16: none; native FP8 storage: the source's), and
 * a provenance block: tool, version, recipe path and xxh3-128, whether the MTP aliases were written
 * (verifiers read it), and the xxh3-128 of the source's
 * index (model.safetensors.index.json bytes; for a lone .safetensors file its JSON header; for a
 * checkpoint held in memory, its sorted "name dtype shape" lines). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "artifact/plan_internal.h"
#include "artifact/version.h"

static json_t *number(double v)
{
    return v == floor(v) && fabs(v) < 9e15 ? json_integer((json_int_t)v) : json_real(v);
}

static int restore(json_t *o, const char *key, json_t *v)
{
    if (!v)
        return -1;
    if (json_object_get(o, key)) {
        json_decref(v);
        return 0;
    }
    return json_object_set_new(o, key, v);
}

static int restore_release_keys(json_t *o, const dsv4_config *cfg)
{
    json_t *ratios = json_array();
    for (int i = 0; ratios && i < cfg->n_layers + cfg->n_mtp; i++)
        json_array_append_new(ratios, json_integer(cfg->compress_ratio[i]));
    int rc = restore(o, "compress_ratios", ratios) || restore(o, "num_hash_layers", json_integer(cfg->n_hash_layers)) ||
             restore(o, "qk_rope_head_dim", json_integer(cfg->rope_head_dim)) ||
             restore(o, "num_hidden_layers", json_integer(cfg->n_layers)) ||
             restore(o, "num_nextn_predict_layers", json_integer(cfg->n_mtp)) ||
             restore(o, "torch_dtype", json_string(cfg->torch_dtype[0] ? cfg->torch_dtype : "bfloat16")) ||
             restore(o, "tie_word_embeddings", json_false()) ||
             restore(o, "compress_rope_theta", number(cfg->compress_rope_theta));
    if (!rc && cfg->has_yarn)
        rc = restore(o, "rope_scaling",
                     json_pack("{s:o, s:o, s:o, s:I, s:s}", "beta_fast", number(cfg->yarn_beta_fast), "beta_slow",
                               number(cfg->yarn_beta_slow), "factor", number(cfg->yarn_factor),
                               "original_max_position_embeddings", (json_int_t)cfg->yarn_orig_max_pos, "type", "yarn"));
    return rc;
}

static void hex128(const void *data, size_t len, char out[33])
{
    static const char empty = 0;
    XXH128_hash_t h = XXH3_128bits(len ? data : &empty, len);
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
}

static int source_index_hash(const dsv4_ckpt *ck, char out[33], dsv4_err *e)
{
    if (ck->has_index && ck->dir) {
        char path[4096], *buf;
        size_t len;
        snprintf(path, sizeof path, "%s/%s", ck->dir, DSV4_INDEX_NAME);
        if (dsv4_read_file(path, 256u << 20, &buf, &len, e))
            return -1;
        hex128(buf, len, out);
        free(buf);
        return 0;
    }
    if (ck->n_files == 1 && ck->files[0].map) {
        hex128(ck->files[0].map + 8, ck->files[0].header_len, out);
        return 0;
    }
    XXH3_state_t *st = XXH3_createState();
    if (!st)
        return dsv4_fail_rt(e, "out of memory");
    XXH3_128bits_reset(st);
    for (size_t i = 0; i < ck->n; i++) {
        char line[512], shape[160];
        const dsv4_tensor *t = ck->by_name[i];
        dsv4_shape_str(t, shape, sizeof shape);
        int n = snprintf(line, sizeof line, "%s %s %s\n", t->name, dsv4_dtype_name(t->dtype), shape);
        XXH3_128bits_update(st, line, n < (int)sizeof line ? (size_t)n : sizeof line - 1);
    }
    XXH128_hash_t h = XXH3_128bits_digest(st);
    XXH3_freeState(st);
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
    return 0;
}

int plan_config(plan_ctx *c, const json_t *source_config)
{
    json_t *o = source_config ? json_deep_copy(source_config) : json_object();
    char idx[33];
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return dsv4_fail(c->e, "plan: the source config is not a JSON object");
    }
    c->p->config = o;
    if (restore_release_keys(o, c->cfg))
        return dsv4_fail_rt(c->e, "plan: out of memory");
    if (c->mode == PLAN_CT) {
        json_t *qc;
        if (dsv4_ct_config_build(c->r, c->cfg, c->mods, c->n_mods, &qc, c->e))
            return -1;
        json_object_set_new(o, "quantization_config", qc);
    } else if (c->mode == PLAN_PLAIN)
        json_object_del(o, "quantization_config");
    if (source_index_hash(c->ck, idx, c->e))
        return -1;
    json_t *path = json_string(c->r->path);
    if (!path)
        return dsv4_fail(c->e, "%s: the recipe path is not valid UTF-8 and cannot go into config.json", c->r->path);
    json_t *prov = json_pack("{s:s, s:s, s:o, s:s, s:s, s:b}", "tool", DSV4_TOOL_NAME, "version", DSV4_VERSION,
                             "recipe", path, "recipe_xxh3_128", c->r->hash, "source_index_xxh3_128", idx,
                             "mtp_aliases", c->r->mtp_aliases);
    if (!prov || json_object_set_new(o, "dsv4_provenance", prov))
        return dsv4_fail_rt(c->e, "plan: out of memory");
    return 0;
}
