/* dsv4-quant's verification of its own output: the static rules against the source always, and
 * the dynamic comparison (eval.h) when evaluation data is given, run on the complete temporary
 * folder through the converter's before_commit hook (artifact/convert.h). The report is written
 * into that folder as dsv4_verify.json (atomically, like every file there) before the folder is
 * renamed to OUT, so OUT appears complete with its report or not at all; a gate failure does not
 * stop the rename (the artifact and the report that explains the failure are kept, and the tool
 * exits 3). Only a failure to verify at all (the folder cannot be opened, the report cannot be
 * written) discards the output. */
#ifndef DSV4_EVAL_AFTER_CONVERT_H
#define DSV4_EVAL_AFTER_CONVERT_H

#include <jansson.h>
#include <stdio.h>

#include "eval/check.h"
#include "io/checkpoint.h"
#include "recipe/recipe.h"

#define DSV4_VERIFY_REPORT "dsv4_verify.json"

/* dsv4-quant's verification flags. */
typedef struct dsv4_after_convert_flags {
    int no_eval;                 /* --no-eval */
    const char *data;            /* --eval-data (NULL: SRC/eval.tokens.safetensors when present) */
    const char *device;          /* --eval-device (NULL: auto) */
    int64_t rows, len, offset;   /* 0: 4 rows, 128 positions, offset 0 */
    int64_t spec_prompts;
    dsv4_gates flags;            /* gate values given as flags ... */
    int flag_set[DSV4_GATE_COUNT]; /* ... and which */
} dsv4_after_convert_flags;

typedef struct dsv4_after_convert {
    const char *source;          /* SRC */
    const char *out;             /* OUT, the name reports give the artifact */
    dsv4_check_opts co;          /* co.eval_data NULL: dynamic part skipped (co.skip_reason says why) */
    dsv4_check ck;               /* data loaded beforehand with dsv4_check_load_data when eval_data is set */
    int ran;                     /* the hook ran */
    unsigned long long convert_peak_rss; /* the process's peak resident set when the hook began: the
                                            conversion's own (the verification maps and reads both
                                            checkpoints, whose clean file pages then count too) */
    int exit_code;               /* dsv4_check_exit */
    json_t *report;              /* what was written to dsv4_verify.json */
    double seconds;              /* the verification's wall time */
    char why[1024];              /* why the dynamic part is skipped ("" when it runs) */
} dsv4_after_convert;

/* Prepares the verification of a conversion of `c` (SRC, opened) with recipe `r` into `out`: the
 * gates (defaults, the recipe's, the flags'), and either the evaluation data, loaded now so that
 * data that cannot be read is refused before anything is written, or the reason the dynamic part
 * is skipped: --no-eval, no data, or (device auto without a GPU) weights that as F32 would take
 * more than half of this machine's memory. */
int dsv4_after_convert_setup(dsv4_after_convert *a, const char *src, const char *out, const dsv4_ckpt *c,
                             const dsv4_recipe *r, const dsv4_after_convert_flags *f, int threads,
                             dsv4_eval_progress_fn progress, void *progress_ctx, dsv4_err *e);
/* One line when everything passed (nothing when quiet), else the whole report. */
void dsv4_after_convert_print(const dsv4_after_convert *a, FILE *f, int quiet);

/* The before_commit hook; ctx is a dsv4_after_convert. */
int dsv4_after_convert_hook(void *ctx, const char *tmp_dir, dsv4_err *e);
void dsv4_after_convert_free(dsv4_after_convert *a);

#endif
