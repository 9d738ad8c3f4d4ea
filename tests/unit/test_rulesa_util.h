/* Shared by the rule tests of test_rules_mtp.c, test_rules_fp32.c, test_rules_router.c and
 * test_rules_compressor.c: clean artifacts converted from fixtures/dsv4-tiny (once per process and
 * recipe), an editable in-memory copy of an artifact's tensors written back as a damaged artifact,
 * and lookups into a verification context's results and fix ops. */
#ifndef DSV4_TEST_RULESA_UTIL_H
#define DSV4_TEST_RULESA_UTIL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "verify/vctx.h"

/* The clean artifact of `recipe` (a repository path such as "recipes/w4a16-rtn.yaml", or YAML text
 * with a newline, written to a file first), converted once per process; NULL on failure (reported). */
const char *ra_clean(const char *recipe);
const char *ra_source(void); /* fixtures/dsv4-tiny */

/* An artifact's tensors in memory, editable, and its config.json. */
typedef struct ra_tensor {
    char name[256];
    dsv4_dtype dtype;
    int ndim;
    int64_t shape[DSV4_MAX_DIMS];
    uint8_t *data;
    uint64_t nbytes;
} ra_tensor;

typedef struct ra_art {
    size_t n, cap;
    ra_tensor *t;
    json_t *config;
} ra_art;

int ra_load(const char *dir, ra_art *a);
void ra_free(ra_art *a);
ra_tensor *ra_find(ra_art *a, const char *name);
/* Removes a tensor (1 when it was there). */
int ra_drop(ra_art *a, const char *name);
/* Removes every tensor whose name starts with `prefix`; returns how many. */
size_t ra_drop_prefix(ra_art *a, const char *prefix);
/* Adds (or replaces) a tensor with a copy of `data` (NULL: zero bytes). */
ra_tensor *ra_put(ra_art *a, const char *name, dsv4_dtype dt, int ndim, const int64_t *shape, const void *data);
/* Re-stores a float tensor in another float dtype (values rounded to nearest even). */
int ra_cast(ra_art *a, const char *name, dsv4_dtype dt);
/* Quantizes the BF16 weight `<module>.weight` in place, as compressed-tensors does: INT4 RTN
 * (group 128: .weight_packed I32, .weight_scale BF16, .weight_shape I64), or FP8 128x128 block RTN
 * (.weight F8_E4M3 + a scale named `<module><scale_suffix>` in `scale_dtype`: BF16, F32, or F8_E8M0
 * when the scales are powers of two). 0, or -1 (reported). */
int ra_quant_int4(ra_art *a, const char *module);
int ra_quant_fp8(ra_art *a, const char *module, const char *scale_suffix, dsv4_dtype scale_dtype);
/* Writes the tensors (one shard with an index, as dsv4-quant does) and config.json into a new
 * folder under th_tmpdir(); returns its path or NULL (reported). */
const char *ra_write(const ra_art *a);
/* The same in shards of at most `max_shard_bytes` tensor bytes. */
const char *ra_write_sharded(const ra_art *a, uint64_t max_shard_bytes);

/* The clean artifact of `recipe`, loaded, changed by `fn` and written back (ra_write); NULL on
 * failure (reported). */
const char *ra_edited(const char *recipe, void (*fn)(ra_art *));

/* Opens art (+ src), runs `rules` (comma-separated); returns 0 or -1 (reported). */
int ra_verify(dsv4_vctx *v, const char *art, const char *src, const char *rules);
const dsv4_rule_result *ra_result(const dsv4_vctx *v, const char *id);
/* 1 when the rule's status is `status` (DSV4_RS_*); prints the evidence when not. */
int ra_status_is(const dsv4_vctx *v, const char *id, int status);
/* 1 when some evidence line of the rule contains every one of the strings (NULL-terminated). */
int ra_evidence(const dsv4_vctx *v, const char *id, ...);
/* The fix op of `kind` naming `name`, added by rule `id` (NULL: any rule), or NULL. */
const dsv4_fix_op *ra_op(const dsv4_vctx *v, dsv4_fix_kind kind, const char *name, const char *id);
/* 1 when no two fix ops have the same kind and tensor name (prints the first pair otherwise). */
int ra_no_duplicate_ops(const dsv4_vctx *v);
/* Number of fix ops added by rule `id`. */
size_t ra_n_ops(const dsv4_vctx *v, const char *id);

#endif
