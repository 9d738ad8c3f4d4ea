/* Shared by the rule tests (test_rules_config.c, test_rules_targets.c, test_rules_scales.c,
 * test_w4a8.c): clean artifacts made by dsv4-quant from the fixture, damaged copies (config.json
 * edited with jansson, the single shard rewritten with tensors renamed, reshaped, recast or
 * dropped), running rules, and reading their results and fix ops. */
#ifndef DSV4_TEST_RULES_UTIL_H
#define DSV4_TEST_RULES_UTIL_H

#include <jansson.h>

#include "verify/vctx.h"

/* The clean artifact of recipes/<recipe>.yaml (made once per run), or NULL. */
const char *tr_clean(const char *recipe);
/* A fresh folder name under a new temporary directory (not created). */
const char *tr_out(const char *tag);

/* Copies artifact `src` to `dst` with config.json edited by `edit` (may be NULL). */
typedef void (*tr_config_fn)(json_t *cfg, void *ctx);
int tr_copy_config(const char *src, const char *dst, tr_config_fn edit, void *ctx);
/* Edits the config.json of artifact `dir` in place. */
int tr_edit_config(const char *dir, tr_config_fn edit, void *ctx);

/* One tensor as the rewrite sees it; the edit may change any field. `data` must stay valid until
 * the rewrite returns (point into `buf` for replaced bytes). */
typedef struct tr_tensor {
    char name[256];
    dsv4_dtype dtype;
    int ndim;
    int64_t shape[DSV4_MAX_DIMS];
    const void *data;
    uint64_t nbytes;
    unsigned char buf[64]; /* room for small replacement bytes */
} tr_tensor;
typedef int (*tr_tensor_fn)(tr_tensor *t, void *ctx); /* 0 drop, 1 keep */
/* Rewrites artifact `src` into `dst` (numbered shard + index), every other file copied; with
 * `add_from`, the tensors of that checkpoint whose names start with `add_prefix` are added. */
int tr_rewrite(const char *src, const char *dst, tr_tensor_fn edit, void *ctx);
int tr_rewrite_add(const char *src, const char *dst, tr_tensor_fn edit, void *ctx, const char *add_from,
                   const char *add_prefix);

/* Opens `art` (with `src` unless NULL) and runs the rules in `ids` (comma-separated); 0 or -1. */
int tr_run(dsv4_vctx *v, const char *art, const char *src, const char *ids);
const dsv4_rule_result *tr_result(const dsv4_vctx *v, const char *id);
int tr_status(const dsv4_vctx *v, const char *id);
/* 1 when some evidence line (or the skip reason) of rule `id` contains `needle`. */
int tr_says(const dsv4_vctx *v, const char *id, const char *needle);
/* The k-th fix op of rule `id` (NULL when none), and how many it added. */
const dsv4_fix_op *tr_op(const dsv4_vctx *v, const char *id, size_t k);
size_t tr_n_ops(const dsv4_vctx *v, const char *id);
/* A copy of `cfg` with every CONFIG op of the list applied in order. */
json_t *tr_apply_config(const json_t *cfg, const dsv4_fix_list *ops);
/* The rule ids of a group array, comma-joined. */
const char *tr_ids(const dsv4_rule *const *group);

#endif
