/* dsv4-quant's engine: runs an artifact plan (plan.h) into the streaming writer. A pool of
 * threads takes jobs in order; each reads its source tensors through the checkpoint's mapping
 * and writes its outputs straight into the mapped shard files, so resident memory is about
 * threads × the largest job's working set, whatever the model's size. The tokenizer and
 * generation files, config.json and a conversion report join the tensors in the temporary
 * folder, which appears at OUT only when complete (and, with a before_commit hook, checked). */
#ifndef DSV4_CONVERT_H
#define DSV4_CONVERT_H

#include <jansson.h>

#include "artifact/plan.h"

typedef struct dsv4_convert_opts {
    int threads;   /* <= 0: one per core (at most 64) */
    int progress;  /* progress on stderr (a TTY line that rewrites itself) */
    /* GPTQ jobs (recipe groups with method gptq) take their outputs from a finished calibration
     * (gptq/calib.h): `precomputed` hands out the stored bytes of an output tensor (NULL when it
     * has none); without it such jobs are refused. `calibration` (may be NULL) goes into
     * dsv4-quant-report.json. */
    const void *(*precomputed)(const void *ctx, const char *name, uint64_t *n);
    const void *precomputed_ctx;
    json_t *calibration;
} dsv4_convert_opts;

typedef struct dsv4_convert_stats {
    size_t jobs, tensors, shards;
    uint64_t out_bytes;
    int threads;
    double seconds;
    json_t *inexact; /* conversions meant to be lossless that were not: [{tensor, values, max_abs_err}] */
} dsv4_convert_stats;

/* The files beside the weights that an artifact carries over unchanged, when the source has them. */
extern const char *const dsv4_carried_files[];

/* Writes the artifact to `out` (which must not exist) from the checkpoint the plan was made
 * of; its folder holds the carried files. */
int dsv4_convert_run(const dsv4_ckpt *src, const dsv4_plan *p, const dsv4_recipe *r, const char *out,
                     const dsv4_convert_opts *o, dsv4_convert_stats *st, dsv4_err *e);
/* The same, with a hook that runs on the complete temporary folder before it is renamed to OUT
 * (st_write.h before_commit; dsv4-quant verifies its output there). */
typedef int (*dsv4_convert_hook)(void *ctx, const char *tmp_dir, dsv4_err *e);
int dsv4_convert_run_hooked(const dsv4_ckpt *src, const dsv4_plan *p, const dsv4_recipe *r, const char *out,
                            const dsv4_convert_opts *o, dsv4_convert_hook before_commit, void *hook_ctx,
                            dsv4_convert_stats *st, dsv4_err *e);
void dsv4_convert_stats_free(dsv4_convert_stats *st);

/* Regenerates the output tensor `name` in memory (malloc'd into *bytes, *n bytes). */
int dsv4_convert_one(const dsv4_plan *p, const dsv4_recipe *r, const char *name, uint8_t **bytes,
                     uint64_t *n, dsv4_err *e);

/* Worker threads for a request: `asked` when positive, else one per core (at most 64). */
int dsv4_convert_threads(int asked);

/* Bytes of one planned output tensor. */
uint64_t dsv4_plan_out_bytes(const dsv4_plan_out *o);

#endif
