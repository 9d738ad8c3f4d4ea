/* Recipes: which scheme each weight of the release gets. Our own YAML schema (the recipes/ folder,
 * documented in recipes/README.md) and llm-compressor's recipe.yaml (GPTQModifier /
 * QuantizationModifier with config_groups or a preset scheme, targets, ignore,
 * dampening_frac) both load into one dsv4_recipe. Errors name the file, line and column. */
#ifndef DSV4_RECIPE_H
#define DSV4_RECIPE_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef enum dsv4_scheme {
    DSV4_SCHEME_KEEP,      /* stored as in the source (release FP8 stays FP8-block, BF16 stays BF16) */
    DSV4_SCHEME_BF16,      /* dequantized to BF16, unquantized in the artifact */
    DSV4_SCHEME_FP8_BLOCK, /* compressed-tensors float-quantized, 128x128 blocks */
    DSV4_SCHEME_W4A16,     /* pack-quantized INT4, symmetric groups */
    DSV4_SCHEME_W4AFP8,    /* W4A16's bytes, FP8 dynamic per-token activations in the config */
    DSV4_SCHEME_NVFP4,     /* nvfp4-pack-quantized, groups of 16, fused w1/w3 global scale */
    DSV4_SCHEME_COUNT
} dsv4_scheme;

#define DSV4_RECIPE_MAX_GROUPS 64

/* Keys of the recipe's `gates:` mapping, in this order (eval/gates.h maps them by name):
 * max_ppl_increase (%), max_kl (nats), min_top1 (%), min_accept (%), max_accept_drop (points). */
#define DSV4_RECIPE_GATES 5
extern const char *const dsv4_recipe_gate_keys[DSV4_RECIPE_GATES + 1]; /* NULL-terminated */

typedef enum dsv4_method { DSV4_METHOD_RTN, DSV4_METHOD_GPTQ } dsv4_method;
typedef enum dsv4_mtp_policy { DSV4_MTP_BF16, DSV4_MTP_KEEP, DSV4_MTP_QUANTIZE } dsv4_mtp_policy;

typedef struct dsv4_recipe_group {
    char name[64];         /* the recipe's name for the group (messages); the artifact's config names
                              groups group_0, group_1, ... in first-appearance order */
    dsv4_scheme scheme;
    dsv4_method method;
    int group_size;        /* INT4: 128 by default; NVFP4: 16 */
    int symmetric;
    size_t n_targets;
    char **targets;        /* module names, "re:" regexes (the prefix kept) or the class "Linear",
                              matched on a release module (its weight name without ".weight") under
                              its release, vLLM and transformers names (recipe/modules.h) */
    double dampening_frac; /* GPTQ */
    char actorder[16];     /* GPTQ: "static" ("weight" is read as "static"); "" for RTN. "group"
                              (g_idx on disk) is refused */
    char observer[16];     /* "minmax", "mse" */
    int recompute_scales;  /* GPTQ: 1 = a group's scale is chosen when the column loop reaches it,
                              from the error-updated weights (IST-DASLab); 0 = up front from the
                              original weights (llm-compressor) */
} dsv4_recipe_group;

typedef struct dsv4_recipe {
    char path[512];
    char hash[33];         /* xxh3-128 of the recipe file's bytes, hex */
    int llm_compressor;    /* 1 when read from an llm-compressor recipe */
    size_t n_groups;
    dsv4_recipe_group *groups;
    size_t n_ignore;
    char **ignore;         /* names or "re:" regexes; beat targets */
    dsv4_mtp_policy mtp;   /* default BF16 */
    int mtp_aliases;       /* write mtp.0.head.weight / mtp.0.emb.tok_emb.weight (default 1) */
    int experts_fp8_lossless; /* fp8 recipe: FP4 experts to FP8 by convert.py's lossless rule */
    uint64_t max_shard_bytes; /* default 5 GiB */
    /* calibration (GPTQ) */
    char calib_data[512];
    int calib_samples, calib_seq_len;
    int calib_all_experts;    /* experts: all — every token through every expert for the Hessians */
    int calib_min_tokens;     /* experts routed fewer tokens get calib_fallback */
    int calib_fallback_rtn;   /* fallback: rtn (1) or all_tokens (0) */
    /* quality gates of the verification that follows a conversion (`gates:`, recipes/README.md);
       gate i is set when gate_set[i]; a NAN value turns it off */
    int gate_set[DSV4_RECIPE_GATES];
    double gate_val[DSV4_RECIPE_GATES];
    struct dsv4_recipe_rx *rx; /* compiled targets and ignore patterns (internal) */
} dsv4_recipe;

int dsv4_recipe_load(const char *path, dsv4_recipe *r, dsv4_err *e);
int dsv4_recipe_parse(const char *yaml, size_t len, const char *path, dsv4_recipe *r, dsv4_err *e);
void dsv4_recipe_free(dsv4_recipe *r);

/* The group whose targets match a release module (its weight name without ".weight"), or NULL
 * (unmatched, or ignored). MTP policy is not applied here (plan.c does that). */
const dsv4_recipe_group *dsv4_recipe_match(const dsv4_recipe *r, const char *module);
/* 1 when a release module matches an `ignore` entry. */
int dsv4_recipe_ignored(const dsv4_recipe *r, const char *module);
/* "KEEP", "BF16", "FP8_BLOCK", "W4A16", "W4AFP8", "NVFP4". */
const char *dsv4_scheme_name(dsv4_scheme s);
/* 1 for the schemes that write compressed-tensors quantized tensors (FP8_BLOCK, W4A16, W4AFP8, NVFP4). */
int dsv4_scheme_is_quantized(dsv4_scheme s);

#endif
