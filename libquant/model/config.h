/* The DeepSeek-V4 model configuration: every hyper-parameter the toolchain needs, read from a
 * config.json in either key style (DeepSeek's release keys such as compress_ratios and
 * num_hash_layers, or transformers 5.x keys such as layer_types, compress_rates, mlp_layer_types,
 * partial_rotary_factor and rope_parameters), cross-checked when both are present, and validated
 * against the architecture constraints (spec/dsv4_architecture.md §1, §5). */
#ifndef DSV4_CONFIG_H
#define DSV4_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* Limits the validator enforces, so a hostile config cannot ask for an absurd inventory. */
#define DSV4_MAX_LAYERS 1024
#define DSV4_MAX_MTP 16
#define DSV4_MAX_EXPERTS 4096
#define DSV4_MAX_CONFIG_BYTES (16u << 20)

typedef enum dsv4_attn_type {
    DSV4_ATTN_SWA = 0, /* ratio 0: sliding window only ("sliding_attention") */
    DSV4_ATTN_CSA = 1, /* ratio exactly 4: overlapped compressor + indexer ("compressed_sparse_attention") */
    DSV4_ATTN_HCA = 2, /* any other ratio: compressor only ("heavily_compressed_attention") */
} dsv4_attn_type;

typedef enum dsv4_expert_fmt {
    DSV4_EXPERTS_FP4 = 0, /* I8 [out, in/2] packed e2m1 + F8_E8M0 scale [out, in/32] */
    DSV4_EXPERTS_FP8 = 1, /* F8_E4M3 [out, in] + F8_E8M0 scale per 128x128 block */
} dsv4_expert_fmt;

typedef enum dsv4_score_func {
    DSV4_SCORE_SQRTSOFTPLUS = 0,
    DSV4_SCORE_SOFTMAX = 1,
    DSV4_SCORE_SIGMOID = 2,
} dsv4_score_func;

/* Which key styles a config.json carried (bit mask). */
enum {
    DSV4_KEYS_RELEASE = 1,      /* compress_ratios / num_hash_layers / qk_rope_head_dim / rope_scaling ... */
    DSV4_KEYS_TRANSFORMERS = 2, /* layer_types / mlp_layer_types / compress_rates / partial_rotary_factor / rope_parameters */
};

typedef struct dsv4_config {
    char path[512];         /* where it was read from (for messages) */
    int key_style;          /* DSV4_KEYS_* mask */

    int64_t vocab_size, hidden_size;
    int n_layers;           /* num_hidden_layers (main decoder layers) */
    int n_mtp;              /* num_nextn_predict_layers; MTP block i is layer n_layers + i */
    int64_t n_heads, n_kv_heads, head_dim, rope_head_dim;
    int64_t q_lora_rank, o_groups, o_lora_rank;
    int64_t index_n_heads, index_head_dim, index_topk;
    int64_t n_routed_experts, n_shared_experts, n_activated_experts, moe_inter_dim;
    int n_hash_layers;      /* number of layers with is_hash set */
    int64_t hc_mult, hc_sinkhorn_iters;
    double hc_eps, rms_eps;
    int64_t window;         /* sliding_window */
    int64_t max_position_embeddings;

    double rope_theta, compress_rope_theta;
    int has_yarn;           /* compressed layers use YaRN scaling */
    double yarn_factor;     /* 1 when !has_yarn */
    int64_t yarn_orig_max_pos;
    double yarn_beta_fast, yarn_beta_slow;

    double route_scale, swiglu_limit;
    dsv4_score_func score_func;
    dsv4_expert_fmt expert_fmt;
    int expert_dtype_given; /* 0: the key was absent and FP4 (the release's format) is assumed */
    int tie_word_embeddings;
    char torch_dtype[32];   /* "bfloat16" unless the config says otherwise */
    char quant_method[64];  /* quantization_config.quant_method, "" when absent */
    int64_t fp8_block[2];   /* weight_block_size (128, 128) */

    int compress_rate_csa, compress_rate_hca; /* transformers' compress_rates (4, 128 by default) */
    /* Per layer, main layers then MTP layers (n_layers + n_mtp entries). */
    int32_t compress_ratio[DSV4_MAX_LAYERS + DSV4_MAX_MTP];
    uint8_t is_hash[DSV4_MAX_LAYERS + DSV4_MAX_MTP];
} dsv4_config;

/* Parses config.json bytes. `path` is only used in messages. Pure: usable on untrusted bytes.
 * Unknown keys are ignored. Fails (naming path, key and the expected value) on a missing required
 * key, a wrong type, disagreeing key styles, or a violated constraint (dsv4_config_validate). */
int dsv4_config_parse(const char *json, size_t len, const char *path, dsv4_config *c, dsv4_err *e);
/* Reads a config.json file, or <dir>/config.json when `path` is a folder. */
int dsv4_config_load(const char *path, dsv4_config *c, dsv4_err *e);
/* Checks the architecture constraints of spec/dsv4_architecture.md §5 and the size limits above.
 * dsv4_config_parse already calls it; tools that edit a config call it again. */
int dsv4_config_validate(const dsv4_config *c, dsv4_err *e);

/* Derived sizes (spec/dsv4_architecture.md §1.5): the hyper-connection mixer rows
 * (2 + hc_mult)·hc_mult (pre, post, comb) and the stream width hc_mult·hidden. */
static inline int64_t dsv4_config_mix_hc(const dsv4_config *c) { return (2 + c->hc_mult) * c->hc_mult; }
static inline int64_t dsv4_config_hc_dim(const dsv4_config *c) { return c->hc_mult * c->hidden_size; }

/* Layer id in [0, n_layers + n_mtp). */
dsv4_attn_type dsv4_config_attn(const dsv4_config *c, int layer);
/* "sliding_attention" / "compressed_sparse_attention" / "heavily_compressed_attention". */
const char *dsv4_attn_type_name(dsv4_attn_type t);
/* "SWA" / "CSA" / "HCA". */
const char *dsv4_attn_type_short(dsv4_attn_type t);
/* "release", "transformers", "release+transformers" or "none". */
const char *dsv4_key_style_name(int key_style);
const char *dsv4_score_func_name(dsv4_score_func f);
const char *dsv4_expert_fmt_name(dsv4_expert_fmt f); /* "fp4" / "fp8" */

#endif
