/* Shared by the recipe readers: our schema (recipe_ours.c), llm-compressor's (recipe_llmc.c) and
 * the entry points (recipe.c). Internal to libquant/recipe. */
#ifndef DSV4_RECIPE_INTERNAL_H
#define DSV4_RECIPE_INTERNAL_H

#include "recipe/recipe.h"
#include "recipe/recipe_yaml.h"

#define RC_MAX_GROUPS DSV4_RECIPE_MAX_GROUPS

/* Appends a group of `scheme` with the defaults (RTN, symmetric, observer minmax, dampening 0.01);
 * NULL (error set) when there are too many groups or the name is taken. */
dsv4_recipe_group *rc_add_group(ry *y, const yaml_node_t *at, dsv4_recipe *r, const char *name, dsv4_scheme scheme);
/* Fills the scheme-dependent defaults (group size, actorder) and checks the group's values; `at`
 * locates messages. */
int rc_finish_group(ry *y, const yaml_node_t *at, dsv4_recipe_group *g);
/* Scheme by name, case-insensitive ("w4a16", "FP8_BLOCK", ...); -1 when unknown. */
int rc_scheme_parse(const char *s);
/* Reads a list of targets (or ignore entries), checking each pattern where it is written. */
int rc_targets(ry *y, const yaml_node_t *n, const char *what, char ***list, size_t *count);
/* A group's `targets` key of mapping n: required, read with rc_targets, not empty. `where` names
 * the group in the message. */
int rc_group_targets(ry *y, const yaml_node_t *n, const char *where, dsv4_recipe_group *g);
/* GPTQ actorder as given ("static", "weight", "group", "dynamic", none / null / false) into
 * g->actorder ("static" or ""). */
int rc_actorder(ry *y, const yaml_node_t *n, const char *what, dsv4_recipe_group *g);

int rc_read_ours(ry *y, const yaml_node_t *root, dsv4_recipe *r);
/* 1 when the root mapping is an llm-compressor recipe (a key ending in "stage"). */
int rc_is_llmc(ry *y, const yaml_node_t *root);
int rc_read_llmc(ry *y, const yaml_node_t *root, dsv4_recipe *r);

#endif
