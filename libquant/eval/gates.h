/* Quality gates of the dynamic verification: limits on what eval.h measures, each from a default,
 * the recipe (`gates:`, recipes/README.md) or a flag (a flag beats the recipe, the recipe beats the
 * default). A gate is off when its limit is NAN.
 *
 *   gate              flag                 measured on the eval rows                 default
 *   max_ppl_increase  --max-ppl-increase   100·(PPL(artifact)/PPL(source) - 1), %    5
 *   max_kl            --max-kl             mean KL(source || artifact), nats          0.05
 *   min_top1          --min-top1           same top-1 token as the source, %          85
 *   min_accept        --min-accept         artifact's MTP acceptance (teacher-forced), %   off
 *   max_accept_drop   --max-accept-drop    source's minus artifact's MTP acceptance
 *                                          (teacher-forced), percentage points       5
 *
 * The defaults are what a faithful quantization of the tiny fixture passes (round-to-nearest
 * W4A16 of its FP4 experts: KL 0.03, top-1 87-92 %, PPL within 2 % on 4 x 128 positions; the
 * lossless recipes: 0) and what a damaged artifact fails (one expert's w2 scrambled in every
 * layer: KL 0.18, top-1 76 %, PPL +7 %; MTP e_proj/h_proj swapped: acceptance -58 points);
 * README.md "Quality gates" lists the measurements. A measurement that is not a finite number
 * fails its gate. The acceptance gates are skipped when neither model has an MTP block, and fail
 * when the source has one the artifact cannot run. */
#ifndef DSV4_EVAL_GATES_H
#define DSV4_EVAL_GATES_H

#include <stdio.h>

#include "eval/eval.h"
#include "recipe/recipe.h"

typedef enum dsv4_gate_id {
    DSV4_GATE_PPL,
    DSV4_GATE_KL,
    DSV4_GATE_TOP1,
    DSV4_GATE_ACCEPT,
    DSV4_GATE_ACCEPT_DROP,
    DSV4_GATE_COUNT
} dsv4_gate_id;

typedef struct dsv4_gate_def {
    const char *key;       /* recipe key and JSON name: "max_ppl_increase" */
    const char *flag;      /* "max-ppl-increase" */
    const char *unit;      /* "%", "nats", "points" */
    int is_min;            /* 1: measured must be >= limit; 0: <= limit */
    double def;            /* default limit (NAN = off) */
    double max;            /* largest limit accepted */
    const char *what;      /* one line for help and reports */
} dsv4_gate_def;
extern const dsv4_gate_def dsv4_gate_defs[DSV4_GATE_COUNT];

typedef struct dsv4_gates {
    double limit[DSV4_GATE_COUNT];
    const char *origin[DSV4_GATE_COUNT]; /* "default", "recipe" or "flag" (static strings) */
} dsv4_gates;

void dsv4_gates_default(dsv4_gates *g);
/* The gates a recipe sets (recipe.h gate_set / gate_val). */
void dsv4_gates_from_recipe(dsv4_gates *g, const dsv4_recipe *r);
/* A flag's value: a number (a trailing % is accepted for percent gates) or "off". Code 2 when it
 * is not, naming the flag. */
int dsv4_gates_set_flag(dsv4_gates *g, dsv4_gate_id id, const char *value, dsv4_err *e);
/* The gate flags with their defaults, for a tool's --help. */
void dsv4_gates_usage(FILE *f);
/* The gate of a long option name ("max-kl"), -1 when none. */
int dsv4_gate_by_flag(const char *flag);

enum { DSV4_GATE_PASS, DSV4_GATE_FAIL, DSV4_GATE_SKIP };

typedef struct dsv4_gate_result {
    dsv4_gate_id id;
    double limit, measured;
    int status;            /* DSV4_GATE_*; an off gate is SKIP */
    char note[600];        /* why skipped, or what failed */
} dsv4_gate_result;

/* Judges r against g; returns the number of failed gates. */
int dsv4_gates_check(const dsv4_gates *g, const dsv4_eval_result *r, dsv4_gate_result out[DSV4_GATE_COUNT]);
/* The measured value of one gate (NAN when not measured). */
double dsv4_gate_measure(dsv4_gate_id id, const dsv4_eval_result *r);

#endif
