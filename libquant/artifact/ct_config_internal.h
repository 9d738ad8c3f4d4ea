/* Shared by the quantization_config builder's parts: the table of vLLM module families
 * (ct_config_names.c), the pattern generator (ct_config_targets.c) and the JSON writer
 * (ct_config.c). Internal to libquant/artifact. */
#ifndef DSV4_CT_CONFIG_INTERNAL_H
#define DSV4_CT_CONFIG_INTERNAL_H

#include "artifact/ct_config.h"

#define CT_MAX_LEAVES 5
#define CT_NO_STATUS (-2) /* a leaf the block does not have */

/* One release linear layer of a family, and its names under the family's path in vLLM. */
typedef struct ct_leaf {
    const char *release;  /* suffix inside the block: "attn.wq_a" */
    const char *names[3]; /* literal names under the path: "wq_a", "fused_wqa_wkv" (NULL-terminated) */
} ct_leaf;

/* Modules that share one path in vLLM. The routed experts are the family with moe = 1 (leaves
 * w1, w2, w3; one status per block). */
typedef struct ct_family {
    const char *path_re;  /* regex of the path after the block prefix: "attn\\.(mla_attn\\.)?compressor\\." */
    const char *paths[3]; /* the literal paths that regex stands for (NULL-terminated) */
    int n_leaves;
    ct_leaf leaves[CT_MAX_LEAVES];
    int moe;
} ct_family;

extern const ct_family CT_FAMILIES[];
extern const int CT_N_FAMILIES;

/* A classified module: block (main layer L is L, MTP block i is n_layers + i; -1 for head),
 * family and leaf (-1 for head), routed expert index (or -1), status (recipe group or -1). */
typedef struct ct_mod {
    int block, fam, leaf, expert, group;
} ct_mod;

/* "unquantized" or "recipe group '<name>'" (buf holds the text). */
const char *ct_label(const dsv4_recipe *r, int group, char buf[96]);

/* Classifies every module; fails on a name that is not a linear layer of this config. */
int ct_classify(const dsv4_config *cfg, const dsv4_ct_module *mods, size_t n, ct_mod *out, dsv4_err *e);

/* Per block, family and leaf: the status (recipe group, -1 unquantized, CT_NO_STATUS absent).
 * Checks fused halves and MoE uniformity. Array of n_blocks * CT_N_FAMILIES * CT_MAX_LEAVES. */
int ct_status_table(const dsv4_recipe *r, const dsv4_config *cfg, const dsv4_ct_module *mods, const ct_mod *cm,
                    size_t n, int **out, dsv4_err *e);

/* Recipe group -> config group rank (first appearance), -1 when the group quantizes nothing. */
void ct_group_ranks(const dsv4_recipe *r, const dsv4_ct_module *mods, size_t n, int *rank);

/* The targets of each config group (array of r->n_groups JSON lists, by recipe group) and the
 * ignore list, generated from the status table. */
int ct_patterns(const dsv4_recipe *r, const dsv4_config *cfg, const int *status, int has_head, json_t **targets,
                json_t *ignore, dsv4_err *e);

#endif
