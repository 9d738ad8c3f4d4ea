/* Architecture constraints of a DeepSeek-V4 config (spec/dsv4_architecture.md §5 "Constraints")
 * plus size limits that keep a hostile config from asking for an absurd tensor inventory. Every
 * message names the config file, the key, its value and what was expected. */
#include "model/config.h"

#include <math.h>

#define LIM_DIM 65536     /* hidden, q_lora, o_lora, moe_inter */
#define LIM_HEADS 1024    /* n_heads, index heads, o_groups */
#define LIM_HEAD_DIM 4096 /* head_dim, index_head_dim */

static int range(const dsv4_config *c, dsv4_err *e, const char *key, int64_t v, int64_t lo, int64_t hi,
                 const char *why)
{
    if (v >= lo && v <= hi)
        return 0;
    return dsv4_fail(e, "%s: \"%s\" = %lld: expected an integer in [%lld, %lld]%s%s", c->path, key, (long long)v,
                     (long long)lo, (long long)hi, why ? " " : "", why ? why : "");
}

static int mult128(const dsv4_config *c, dsv4_err *e, const char *key, int64_t v, int64_t hi)
{
    if (range(c, e, key, v, 128, hi, NULL))
        return -1;
    if (v % 128)
        return dsv4_fail(e, "%s: \"%s\" = %lld: expected a multiple of 128 (it is the K dimension of FP8/FP4 "
                         "GEMMs, whose activation quantisation works on blocks of 128)", c->path, key, (long long)v);
    return 0;
}

static int positive(const dsv4_config *c, dsv4_err *e, const char *key, double v)
{
    if (isfinite(v) && v > 0)
        return 0;
    return dsv4_fail(e, "%s: \"%s\" = %g: expected a positive number", c->path, key, v);
}

static int check_attention(const dsv4_config *c, dsv4_err *e)
{
    const char *rope_key = c->key_style & DSV4_KEYS_RELEASE ? "qk_rope_head_dim" : "partial_rotary_factor";
    if (range(c, e, "num_attention_heads", c->n_heads, 1, LIM_HEADS, NULL) ||
        range(c, e, "num_key_value_heads", c->n_kv_heads, 1, 1, "(one K=V head shared by all query heads)") ||
        range(c, e, "head_dim", c->head_dim, 1, LIM_HEAD_DIM, NULL) ||
        range(c, e, rope_key, c->rope_head_dim, 0, c->head_dim, "(the RoPE dims are part of head_dim)") ||
        mult128(c, e, "q_lora_rank", c->q_lora_rank, LIM_DIM) ||
        range(c, e, "o_groups", c->o_groups, 1, LIM_HEADS, NULL) ||
        range(c, e, "o_lora_rank", c->o_lora_rank, 1, LIM_DIM, NULL))
        return -1;
    if (c->rope_head_dim % 2)
        return dsv4_fail(e, "%s: \"%s\" gives %lld RoPE dims: expected an even number", c->path, rope_key,
                         (long long)c->rope_head_dim);
    if ((c->head_dim - c->rope_head_dim) % 64)
        return dsv4_fail(e, "%s: \"head_dim\" - rope dims = %lld - %lld = %lld: expected a multiple of 64 (the KV "
                         "cache's FP8 simulation works on blocks of 64 non-RoPE dims)", c->path,
                         (long long)c->head_dim, (long long)c->rope_head_dim,
                         (long long)(c->head_dim - c->rope_head_dim));
    if (c->n_heads % c->o_groups)
        return dsv4_fail(e, "%s: \"num_attention_heads\" = %lld is not divisible by \"o_groups\" = %lld: expected "
                         "whole heads per output group", c->path, (long long)c->n_heads, (long long)c->o_groups);
    if ((c->o_groups * c->o_lora_rank) % 128)
        return dsv4_fail(e, "%s: \"o_groups\" x \"o_lora_rank\" = %lld x %lld = %lld: expected a multiple of 128 "
                         "(the K dimension of wo_b)", c->path, (long long)c->o_groups, (long long)c->o_lora_rank,
                         (long long)(c->o_groups * c->o_lora_rank));
    if (range(c, e, "index_n_heads", c->index_n_heads, 1, LIM_HEADS, NULL) ||
        range(c, e, "index_head_dim", c->index_head_dim, 32, LIM_HEAD_DIM, NULL) ||
        range(c, e, "index_topk", c->index_topk, 1, 1 << 24, NULL))
        return -1;
    if (c->index_head_dim & (c->index_head_dim - 1))
        return dsv4_fail(e, "%s: \"index_head_dim\" = %lld: expected a power of two (the indexer applies a Hadamard "
                         "transform) and a multiple of 32", c->path, (long long)c->index_head_dim);
    if (c->index_head_dim < c->rope_head_dim)
        return dsv4_fail(e, "%s: \"index_head_dim\" = %lld: expected at least the %lld RoPE dims (the indexer "
                         "reuses them)", c->path, (long long)c->index_head_dim, (long long)c->rope_head_dim);
    if (range(c, e, "sliding_window", c->window, 1, 1 << 24, NULL) ||
        range(c, e, "max_position_embeddings", c->max_position_embeddings, 1, (int64_t)1 << 40, NULL) ||
        positive(c, e, "rope_theta", c->rope_theta) || positive(c, e, "compress_rope_theta", c->compress_rope_theta))
        return -1;
    if (c->has_yarn && (positive(c, e, "rope_scaling.factor", c->yarn_factor) ||
                        range(c, e, "rope_scaling.original_max_position_embeddings", c->yarn_orig_max_pos, 1,
                              (int64_t)1 << 40, NULL)))
        return -1;
    return 0;
}

static int check_moe(const dsv4_config *c, dsv4_err *e)
{
    if (range(c, e, "n_routed_experts", c->n_routed_experts, 1, DSV4_MAX_EXPERTS, NULL) ||
        range(c, e, "n_shared_experts", c->n_shared_experts, 1, 1, "(the reference asserts one shared expert)") ||
        range(c, e, "num_experts_per_tok", c->n_activated_experts, 1, c->n_routed_experts,
              "(top-k cannot exceed n_routed_experts)") ||
        mult128(c, e, "moe_intermediate_size", c->moe_inter_dim, LIM_DIM) ||
        positive(c, e, "routed_scaling_factor", c->route_scale))
        return -1;
    if (!isfinite(c->swiglu_limit) || c->swiglu_limit < 0)
        return dsv4_fail(e, "%s: \"swiglu_limit\" = %g: expected a non-negative number", c->path, c->swiglu_limit);
    return 0;
}

static int check_schedule(const dsv4_config *c, dsv4_err *e)
{
    if (range(c, e, "num_hidden_layers", c->n_layers, 1, DSV4_MAX_LAYERS, NULL) ||
        range(c, e, "num_nextn_predict_layers", c->n_mtp, 0, DSV4_MAX_MTP, NULL))
        return -1;
    for (int i = 0; i < c->n_layers + c->n_mtp; i++) {
        int r = c->compress_ratio[i];
        if (r < 0 || r > 65536)
            return dsv4_fail(e, "%s: layer %d has compress ratio %d: expected 0 (sliding window), 4 (CSA) or "
                             "another ratio in [1, 65536] (HCA)", c->path, i, r);
        if (i >= c->n_layers && (r != 0 || c->is_hash[i]))
            return dsv4_fail(e, "%s: MTP layer %d (layer id %d) has compress ratio %d%s: expected a sliding-window, "
                             "non-hash layer", c->path, i - c->n_layers, i, r, c->is_hash[i] ? " and hash routing" : "");
    }
    return 0;
}

int dsv4_config_validate(const dsv4_config *c, dsv4_err *e)
{
    if (range(c, e, "vocab_size", c->vocab_size, 1, 1 << 22, NULL) ||
        mult128(c, e, "hidden_size", c->hidden_size, LIM_DIM) || check_schedule(c, e) || check_attention(c, e) ||
        check_moe(c, e) || range(c, e, "hc_mult", c->hc_mult, 1, 16, NULL) ||
        range(c, e, "hc_sinkhorn_iters", c->hc_sinkhorn_iters, 1, 10000, NULL) ||
        positive(c, e, "hc_eps", c->hc_eps) || positive(c, e, "rms_norm_eps", c->rms_eps))
        return -1;
    if ((c->fp8_block[0] != 128 || c->fp8_block[1] != 128))
        return dsv4_fail(e, "%s: \"quantization_config.weight_block_size\" = [%lld, %lld]: expected [128, 128] (the "
                         "release's FP8 block size, which the tensor inventory assumes)", c->path,
                         (long long)c->fp8_block[0], (long long)c->fp8_block[1]);
    return 0;
}
