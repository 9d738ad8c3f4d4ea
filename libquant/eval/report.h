/* Rendering the dynamic verification: the JSON object (the "eval" key of dsv4-verify --json and of
 * dsv4_verify.json), the text report, and a progress line on a terminal.
 *
 * JSON numbers that are not finite (a broken artifact's NaN perplexity) are written as null. The
 * object's "status" is "pass", "fail" (a gate failed), "skipped" (with "reason") or "error" (the
 * evaluation could not run; "reason" says why). */
#ifndef DSV4_EVAL_REPORT_H
#define DSV4_EVAL_REPORT_H

#include <jansson.h>
#include <stdio.h>

#include "eval/data.h"
#include "eval/eval.h"
#include "eval/gates.h"

/* The result with its gates. timing 0 leaves out the wall time (reports stored in an artifact stay
 * the same from run to run). */
json_t *dsv4_eval_json(const dsv4_eval_result *r, const dsv4_eval_data *d, const dsv4_gates *g,
                       const dsv4_gate_result *gr, int timing);
/* {"status": "skipped" or "error", "reason": why}. */
json_t *dsv4_eval_json_not_run(const char *status, const char *reason);

void dsv4_eval_print(FILE *f, const dsv4_eval_result *r, const dsv4_eval_data *d, const dsv4_gates *g,
                     const dsv4_gate_result *gr);

/* A progress line on stderr, only when stderr is a terminal: "\r<tool>: eval <stage> done/total". */
typedef struct dsv4_tty_progress {
    const char *tool;
    int on;                /* stderr is a TTY */
    int shown;             /* a line is on screen */
} dsv4_tty_progress;
void dsv4_tty_progress_init(dsv4_tty_progress *p, const char *tool);
void dsv4_tty_progress_fn(void *ctx, const char *stage, int64_t done, int64_t total); /* dsv4_eval_progress_fn */
/* Clears the line (before other output). */
void dsv4_tty_progress_end(dsv4_tty_progress *p);

#endif
