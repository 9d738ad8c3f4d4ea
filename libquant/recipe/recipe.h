/* Recipes: which scheme each weight of the release gets. Our own YAML schema (recipes/NAME.yaml,
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

typedef enum dsv4_method { DSV4_METHOD_RTN, DSV4_METHOD_GPTQ } dsv4_method;
typedef enum dsv4_mtp_policy { DSV4_MTP_BF16, DSV4_MTP_KEEP, DSV4_MTP_QUANTIZE } dsv4_mtp_policy;

typedef struct dsv4_recipe_group {
    char name[64];         /* config group name in the artifact (group_0, ...) */
    dsv4_scheme scheme;
    dsv4_method method;
    int group_size;        /* INT4: 128 by default; NVFP4: 16 */
    int symmetric;
    size_t n_targets;
    char **targets;        /* release module names or "re:" regexes (the prefix kept), matched on
                              release names without ".weight" */
    double dampening_frac; /* GPTQ */
    char actorder[16];     /* GPTQ: "static", "group", "weight", "" */
    char observer[16];     /* GPTQ: "minmax", "mse" */
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
} dsv4_recipe;

int dsv4_recipe_load(const char *path, dsv4_recipe *r, dsv4_err *e);
int dsv4_recipe_parse(const char *yaml, size_t len, const char *path, dsv4_recipe *r, dsv4_err *e);
void dsv4_recipe_free(dsv4_recipe *r);

/* The group whose targets match a release module (its weight name without ".weight"), or NULL
 * (unmatched, or ignored). MTP policy is not applied here (plan.c does that). */
const dsv4_recipe_group *dsv4_recipe_match(const dsv4_recipe *r, const char *module);
const char *dsv4_scheme_name(dsv4_scheme s);

#endif
