/* config.json parsing (see config.h). Required keys are those that shape tensors or whose default
 * differs between DeepSeek's reference and transformers; the others take transformers' defaults. */
#include "model/config.h"
#include "util/json_in.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/checkpoint.h"
#include "model/config_parts.h"

static const char *const RELEASE_KEYS[] = {"compress_ratios", "compress_rate_csa", "compress_rate_hca",
                                           "num_hash_layers", "qk_rope_head_dim", "rope_scaling"};
static const char *const TRANSFORMERS_KEYS[] = {"layer_types", "mlp_layer_types", "compress_rates",
                                                "partial_rotary_factor", "rope_parameters"};

static int key_style(const json_t *root)
{
    int s = 0;
    for (size_t i = 0; i < sizeof RELEASE_KEYS / sizeof *RELEASE_KEYS; i++)
        if (dsv4_jget(root, RELEASE_KEYS[i]))
            s |= DSV4_KEYS_RELEASE;
    for (size_t i = 0; i < sizeof TRANSFORMERS_KEYS / sizeof *TRANSFORMERS_KEYS; i++)
        if (dsv4_jget(root, TRANSFORMERS_KEYS[i]))
            s |= DSV4_KEYS_TRANSFORMERS;
    return s;
}

static int parse_required(const dsv4_jctx *j, const json_t *r, dsv4_config *c)
{
    int64_t nl = 0;
    if (dsv4_jint_req(j, r, "vocab_size", "rows of embed and head", &c->vocab_size) < 0 ||
        dsv4_jint_req(j, r, "hidden_size", "the model width", &c->hidden_size) < 0 ||
        dsv4_jint_req(j, r, "num_hidden_layers", "the number of decoder layers", &nl) < 0 ||
        dsv4_jint_req(j, r, "num_attention_heads", "query heads", &c->n_heads) < 0 ||
        dsv4_jint_req(j, r, "head_dim", "the attention head size", &c->head_dim) < 0 ||
        dsv4_jint_req(j, r, "q_lora_rank", "the low-rank query width", &c->q_lora_rank) < 0 ||
        dsv4_jint_req(j, r, "o_groups", "groups of the grouped output projection", &c->o_groups) < 0 ||
        dsv4_jint_req(j, r, "o_lora_rank", "the per-group output rank", &c->o_lora_rank) < 0 ||
        dsv4_jint_req(j, r, "index_n_heads", "indexer heads", &c->index_n_heads) < 0 ||
        dsv4_jint_req(j, r, "index_head_dim", "the indexer head size", &c->index_head_dim) < 0 ||
        dsv4_jint_req(j, r, "index_topk", "compressed entries kept by the indexer", &c->index_topk) < 0 ||
        dsv4_jint_req(j, r, "n_routed_experts", "routed experts per layer", &c->n_routed_experts) < 0 ||
        dsv4_jint_req(j, r, "num_experts_per_tok", "experts activated per token", &c->n_activated_experts) < 0 ||
        dsv4_jint_req(j, r, "moe_intermediate_size", "the expert width", &c->moe_inter_dim) < 0 ||
        dsv4_jint_req(j, r, "hc_mult", "hyper-connection streams", &c->hc_mult) < 0)
        return -1;
    if (nl < 1 || nl > DSV4_MAX_LAYERS) {
        char what[64];
        snprintf(what, sizeof what, "an integer in [1, %d]", DSV4_MAX_LAYERS);
        return dsv4_jbad(j, "num_hidden_layers", dsv4_jget(r, "num_hidden_layers"), what);
    }
    c->n_layers = (int)nl;
    int64_t nm = 1;
    if (dsv4_jint(j, r, NULL, "num_nextn_predict_layers", &nm) < 0)
        return -1;
    if (nm < 0 || nm > DSV4_MAX_MTP) {
        char what[64];
        snprintf(what, sizeof what, "an integer in [0, %d]", DSV4_MAX_MTP);
        return dsv4_jbad(j, "num_nextn_predict_layers", dsv4_jget(r, "num_nextn_predict_layers"), what);
    }
    c->n_mtp = (int)nm;
    return 0;
}

static int parse_optional(const dsv4_jctx *j, const json_t *r, dsv4_config *c)
{
    c->n_kv_heads = 1;
    c->n_shared_experts = 1;
    c->hc_sinkhorn_iters = 20;
    c->window = 128;
    c->max_position_embeddings = 1048576;
    c->hc_eps = 1e-6;
    c->rms_eps = 1e-6;
    c->route_scale = 1.5;
    c->swiglu_limit = 10.0;
    if (dsv4_jint(j, r, NULL, "num_key_value_heads", &c->n_kv_heads) < 0 ||
        dsv4_jint(j, r, NULL, "n_shared_experts", &c->n_shared_experts) < 0 ||
        dsv4_jint(j, r, NULL, "hc_sinkhorn_iters", &c->hc_sinkhorn_iters) < 0 ||
        dsv4_jint(j, r, NULL, "sliding_window", &c->window) < 0 ||
        dsv4_jint(j, r, NULL, "max_position_embeddings", &c->max_position_embeddings) < 0 ||
        dsv4_jnum(j, r, NULL, "hc_eps", &c->hc_eps) < 0 || dsv4_jnum(j, r, NULL, "rms_norm_eps", &c->rms_eps) < 0 ||
        dsv4_jnum(j, r, NULL, "routed_scaling_factor", &c->route_scale) < 0 ||
        dsv4_jnum(j, r, NULL, "swiglu_limit", &c->swiglu_limit) < 0 ||
        dsv4_jbool(j, r, NULL, "tie_word_embeddings", &c->tie_word_embeddings) < 0)
        return -1;
    return 0;
}

static int parse_strings(const dsv4_jctx *j, const json_t *r, dsv4_config *c)
{
    char s[64] = "deepseek_v4";
    if (dsv4_jstr(j, r, NULL, "model_type", s, sizeof s) < 0)
        return -1;
    if (strcmp(s, "deepseek_v4"))
        return dsv4_jbad(j, "model_type", dsv4_jget(r, "model_type"), "\"deepseek_v4\"");
    snprintf(s, sizeof s, "sqrtsoftplus");
    if (dsv4_jstr(j, r, NULL, "scoring_func", s, sizeof s) < 0)
        return -1;
    const char *funcs[3] = {"sqrtsoftplus", "softmax", "sigmoid"};
    int f = -1;
    for (int k = 0; k < 3; k++)
        if (!strcmp(s, funcs[k]))
            f = k;
    if (f < 0)
        return dsv4_jbad(j, "scoring_func", dsv4_jget(r, "scoring_func"), "\"sqrtsoftplus\", \"softmax\" or \"sigmoid\"");
    c->score_func = (dsv4_score_func)f;
    s[0] = 0;
    c->expert_dtype_given = dsv4_jstr(j, r, NULL, "expert_dtype", s, sizeof s);
    if (c->expert_dtype_given < 0)
        return -1;
    if (c->expert_dtype_given && strcmp(s, "fp4") && strcmp(s, "fp8"))
        return dsv4_jbad(j, "expert_dtype", dsv4_jget(r, "expert_dtype"), "\"fp4\" or \"fp8\"");
    c->expert_fmt = !strcmp(s, "fp8") ? DSV4_EXPERTS_FP8 : DSV4_EXPERTS_FP4;
    char a[32] = "", b[32] = "";
    int ha = dsv4_jstr(j, r, NULL, "torch_dtype", a, sizeof a);
    int hb = ha < 0 ? -1 : dsv4_jstr(j, r, NULL, "dtype", b, sizeof b);
    if (ha < 0 || hb < 0)
        return -1;
    if (ha && hb && strcmp(a, b))
        return dsv4_fail(j->e, "%s: \"torch_dtype\" = \"%s\" disagrees with \"dtype\" = \"%s\"", j->path, a, b);
    snprintf(c->torch_dtype, sizeof c->torch_dtype, "%s", ha ? a : hb ? b : "bfloat16");
    return 0;
}

static int parse_quant(const dsv4_jctx *j, const json_t *r, dsv4_config *c)
{
    c->fp8_block[0] = c->fp8_block[1] = 128;
    const json_t *q = dsv4_jget(r, "quantization_config");
    if (!q)
        return 0;
    if (!json_is_object(q))
        return dsv4_jbad(j, "quantization_config", q, "an object");
    if (dsv4_jstr(j, q, "quantization_config.", "quant_method", c->quant_method, sizeof c->quant_method) < 0)
        return -1;
    const json_t *bs = dsv4_jget(q, "weight_block_size");
    if (strcmp(c->quant_method, "fp8") || !bs)
        return 0;
    if (!json_is_array(bs) || json_array_size(bs) != 2 || !json_is_integer(json_array_get(bs, 0)) ||
        !json_is_integer(json_array_get(bs, 1)))
        return dsv4_jbad(j, "quantization_config.weight_block_size", bs, "[128, 128]");
    c->fp8_block[0] = json_integer_value(json_array_get(bs, 0));
    c->fp8_block[1] = json_integer_value(json_array_get(bs, 1));
    return 0;
}

int dsv4_config_parse(const char *json, size_t len, const char *path, dsv4_config *c, dsv4_err *e)
{
    memset(c, 0, sizeof *c);
    snprintf(c->path, sizeof c->path, "%s", path ? path : "config.json");
    dsv4_jctx j = {c->path, e};
    json_t *root = dsv4_json_parse(json, len, c->path, NULL, e);
    if (!root)
        return -1;
    int rc = -1;
    if (!json_is_object(root)) {
        dsv4_fail(e, "%s: expected a JSON object of model settings", c->path);
        goto done;
    }
    c->key_style = key_style(root);
    if (parse_required(&j, root, c) || parse_optional(&j, root, c) || parse_strings(&j, root, c) ||
        parse_quant(&j, root, c) || dsv4_config_parse_schedule(&j, root, c) || dsv4_config_parse_rope(&j, root, c))
        goto done;
    rc = dsv4_config_validate(c, e);
done:
    json_decref(root);
    return rc;
}

int dsv4_config_load(const char *path, dsv4_config *c, dsv4_err *e)
{
    char p[4096];
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(p, sizeof p, "%s/config.json", path);
    else
        snprintf(p, sizeof p, "%s", path);
    char *buf;
    size_t len;
    if (dsv4_read_file(p, DSV4_MAX_CONFIG_BYTES, &buf, &len, e))
        return -1;
    int rc = dsv4_config_parse(buf, len, p, c, e);
    free(buf);
    return rc;
}

dsv4_attn_type dsv4_config_attn(const dsv4_config *c, int layer)
{
    int r = c->compress_ratio[layer];
    return r == 0 ? DSV4_ATTN_SWA : r == 4 ? DSV4_ATTN_CSA : DSV4_ATTN_HCA;
}

const char *dsv4_attn_type_name(dsv4_attn_type t)
{
    static const char *const n[3] = {"sliding_attention", "compressed_sparse_attention",
                                     "heavily_compressed_attention"};
    return (unsigned)t < 3 ? n[t] : "?";
}

const char *dsv4_attn_type_short(dsv4_attn_type t)
{
    static const char *const n[3] = {"SWA", "CSA", "HCA"};
    return (unsigned)t < 3 ? n[t] : "?";
}

const char *dsv4_key_style_name(int key_style)
{
    static const char *const n[4] = {"none", "release", "transformers", "release+transformers"};
    return n[key_style & 3];
}

const char *dsv4_score_func_name(dsv4_score_func f)
{
    static const char *const n[3] = {"sqrtsoftplus", "softmax", "sigmoid"};
    return (unsigned)f < 3 ? n[f] : "?";
}

const char *dsv4_expert_fmt_name(dsv4_expert_fmt f)
{
    return f == DSV4_EXPERTS_FP8 ? "fp8" : "fp4";
}
