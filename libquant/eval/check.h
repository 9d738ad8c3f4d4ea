/* One verification of an artifact, as dsv4-verify and dsv4-quant run it: the static contract
 * rules (verify/vctx.h) and, when asked, the dynamic comparison with the source (eval.h) judged by
 * the gates (gates.h); one report (the static report's JSON with an "eval" object and an overall
 * "verdict") and one exit code.
 *
 * Exit code: 0 everything passed; 3 a rule failed (a warning too with strict) or a gate failed;
 * when the dynamic part could not run, its error's code (2 bad input, 1 runtime), unless a rule
 * failed already (3: the failed rule is the finding; the report says why the eval did not run). */
#ifndef DSV4_EVAL_CHECK_H
#define DSV4_EVAL_CHECK_H

#include <jansson.h>
#include <stdio.h>

#include "eval/data.h"
#include "eval/eval.h"
#include "eval/gates.h"
#include "verify/vctx.h"

typedef struct dsv4_check_opts {
    const char *only;            /* static rules to run (comma-separated ids), NULL = all */
    int strict;                  /* warnings fail too */
    const char *eval_data;       /* dynamic part on this data (needs a source); NULL = not run */
    const char *skip_reason;     /* eval_data NULL: why (recorded as "skipped"); NULL = no eval key */
    dsv4_data_opts data;         /* data.tokenizer NULL: the source folder's tokenizer */
    dsv4_eval_opts ev;
    dsv4_gates gates;
    const char *report_name;     /* the artifact's name in reports (NULL: its path) */
} dsv4_check_opts;

typedef struct dsv4_check {
    dsv4_vctx v;
    int have_v;
    int static_failed;           /* rules failed (errors, or warnings with strict) */
    int eval_state;              /* 0 not run, 1 ran, -1 could not run (eval_err) */
    dsv4_err eval_err;
    const char *skip_reason;
    dsv4_eval_data d;
    dsv4_eval_result r;
    dsv4_gates gates;
    dsv4_gate_result gr[DSV4_GATE_COUNT];
    int gates_failed;
} dsv4_check;

/* Loads the evaluation data only (so a bad --eval file is refused before anything runs). */
int dsv4_check_load_data(dsv4_check *c, const char *source, const dsv4_check_opts *o, dsv4_err *e);
/* Runs the static rules, then the dynamic part when o->eval_data is set. Fails (-1) only when the
 * artifact or source cannot be opened at all; a dynamic part that cannot run is recorded. Call
 * dsv4_check_load_data first when o->eval_data is set. */
int dsv4_check_run(dsv4_check *c, const char *artifact, const char *source, const dsv4_check_opts *o, dsv4_err *e);
json_t *dsv4_check_report(const dsv4_check *c, int timing);
void dsv4_check_print(const dsv4_check *c, FILE *f, int verbose);
int dsv4_check_exit(const dsv4_check *c);
void dsv4_check_free(dsv4_check *c);

#endif
