/* Helpers of the rewriter tests (test_rewrite*.c, test_fixup_kill.c): a small synthetic artifact in
 * three shards (release FP8 blocks with e8m0 scales, a compressed-tensors FP8 weight with a block
 * weight_scale, BF16 and F32 tensors, config.json, a tokenizer file, index and manifest), a real
 * multi-shard dsv4-quant artifact of the tiny fixture, header-only damage, fix ops built by hand,
 * and folder comparisons. */
#ifndef DSV4_TEST_REWRITE_UTIL_H
#define DSV4_TEST_REWRITE_UTIL_H

#include <stddef.h>

#include "fixup/rewrite.h"

/* The artifact's shards hold (declaration order; max_shard_bytes TRW_SHARD):
 *   1: embed.weight BF16 [256, 64], layers.0.attn.wq_a.weight F8_E4M3 [256, 256] + .scale F8_E8M0
 *      [2, 2], layers.0.ffn.gate.bias F32 [16]
 *   2: layers.1.attn.wq_a.weight/.scale (as above), layers.1.ffn.gate.bias F32 [16],
 *      layers.1.attn.wkv.weight F8_E4M3 [128, 256] + .weight_scale F32 [1, 2]
 *   3: head.weight BF16 [256, 64], mtp.0.norm.weight BF16 [64], norm.weight F32 [64] (values
 *      that BF16 holds exactly)
 * config.json is {"model_type": "deepseek_v4", "hidden_size": 64, "quantization_config":
 * {"quant_method": "compressed-tensors"}} as convert.c dumps it. */
#define TRW_SHARD 100000u
#define TRW_SHARD1 "model-00001-of-00003.safetensors"
#define TRW_SHARD2 "model-00002-of-00003.safetensors"
#define TRW_SHARD3 "model-00003-of-00003.safetensors"

/* Writes the artifact into `dir` (which must not exist). 0 or -1 (test failure recorded). */
int trw_make_artifact(const char *dir);

/* Opens `dir` (strictly) and its config.json; 0 or -1 (test failure recorded). */
int trw_open(const char *dir, dsv4_ckpt *c, json_t **config);

/* Op builders appending to `l` (rule ids are static strings). */
void trw_rename(dsv4_fix_list *l, const char *rule, const char *from, const char *to);
void trw_drop(dsv4_fix_list *l, const char *rule, const char *name);
void trw_reshape(dsv4_fix_list *l, const char *rule, const char *name, dsv4_dtype dt, int ndim, const int64_t *shape);
void trw_put(dsv4_fix_list *l, const char *rule, const char *name, dsv4_dtype dt, int ndim, const int64_t *shape,
             dsv4_produce how, const dsv4_tensor *from, const dsv4_tensor *from_scale, const char *near);
/* `dotted` key path; `value` taken over (NULL deletes). */
void trw_config(dsv4_fix_list *l, const char *rule, const char *dotted, json_t *value);

/* dsv4-quant's W4A16 of fixtures/dsv4-tiny in 3 MiB shards (about 5) written to `out`; the recipe
 * copy goes into `dir`. 0 or -1 (test failure recorded). */
int trw_quant_fixture(const char *dir, const char *out);
/* Renames header keys of shard `shard` in `dir` in place of the old ones, keeping every data offset
 * (what a header-only rename script writes), and the same keys in the index and the manifest. */
int trw_header_rename(const char *dir, const char *shard, const char *const *from, const char *const *to, int n);
/* Copies the files of folder `from` (no subfolders, no dot files) into the new folder `to`. */
int trw_copy_tree(const char *from, const char *to);

/* 1 when both folders hold the same file names (ignoring none) with the same bytes. */
int trw_same_tree(const char *a, const char *b);
/* Names in `dir`, sorted, joined by spaces, into buf (the caller's). */
char *trw_list(const char *dir, char *buf, size_t cap);

#endif
