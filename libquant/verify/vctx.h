/* The verification context: the artifact (and optionally its source) opened leniently, each with
 * its config.json, model config, release inventory, detected layout, a canonical view of its
 * tensor names and the module view (astore.h) over those names; the rules' results; and the fix
 * ops they asked for. dsv4-verify prints the results; dsv4-fixup applies the fixes.
 *
 * Canonical names: every tensor is also known by the release name it should have. The mapping
 * undoes, in this order, a `model.` prefix on release names, transformers names (model/names.h,
 * quantization suffixes kept: `model.layers.0.mlp.experts.3.gate_proj.weight_packed` ->
 * `layers.0.ffn.experts.3.w1.weight_packed`), `ffn.gate.e_score_correction_bias` -> `ffn.gate.bias`,
 * and the naive-replace corruption `.weight_scales_proj` -> `.weights_proj`. Rules look tensors up
 * by canonical name, so one wrong name is reported once (by the names rules) and every other rule
 * still sees the tensor. */
#ifndef DSV4_VCTX_H
#define DSV4_VCTX_H

#include <jansson.h>
#include <stdio.h>

#include "artifact/layout.h"
#include "io/checkpoint.h"
#include "model/config.h"
#include "model/inventory.h"
#include "verify/astore.h"
#include "verify/fix.h"
#include "verify/rule.h"

typedef enum dsv4_canon {
    DSV4_CANON_SAME = 0,       /* already a release name (or unknown: see the names rules) */
    DSV4_CANON_MODEL_PREFIX,   /* release name behind a `model.` prefix */
    DSV4_CANON_HF,             /* transformers name */
    DSV4_CANON_GATE_BIAS,      /* ffn.gate.e_score_correction_bias */
    DSV4_CANON_NAIVE_SUFFIX,   /* `.weights_proj` corrupted by a naive `.weight` replace */
} dsv4_canon;

typedef struct dsv4_vtensor {
    char *name;                /* canonical (release) name */
    const dsv4_tensor *t;      /* t->name is the name on disk */
    dsv4_canon how;
} dsv4_vtensor;

/* One opened checkpoint (the artifact or the source). */
typedef struct dsv4_side {
    char *path;
    dsv4_ckpt ck;              /* opened with DSV4_CKPT_LENIENT | DSV4_CKPT_SKIP_BAD */
    json_t *config;            /* config.json, NULL when absent or not JSON */
    char config_problem[2048];  /* why config is NULL or does not describe a model ("" when fine) */
    int have_model;            /* cfg and inv are valid */
    dsv4_config cfg;
    dsv4_inventory inv;
    dsv4_layout_info layout;
    size_t n;
    dsv4_vtensor *v;           /* sorted by canonical name (strcmp) */
    dsv4_astore st;            /* module view over the canonical names */
} dsv4_side;

enum { DSV4_RS_PASS, DSV4_RS_FAIL, DSV4_RS_SKIP };

#define DSV4_VCTX_MAX_EVIDENCE 20

typedef struct dsv4_rule_result {
    const dsv4_rule *rule;
    int status;                /* DSV4_RS_* */
    char skip_reason[300];
    size_t n_found;            /* evidence lines recorded in all (problems found) */
    size_t n_kept;             /* the first DSV4_VCTX_MAX_EVIDENCE of them */
    char *evidence[DSV4_VCTX_MAX_EVIDENCE];
    size_t n_fixes;            /* fix ops this rule added */
} dsv4_rule_result;

typedef struct dsv4_vctx {
    dsv4_side art;
    int have_src;
    dsv4_side src;
    const json_t *qc;          /* art.config's quantization_config, or NULL */
    int is_ct;                 /* its quant_method is "compressed-tensors" */
    const dsv4_config *model;  /* art.cfg, else src.cfg when only the source's config is usable, else NULL */
    const dsv4_inventory *inv; /* the inventory of `model`, or NULL */
    dsv4_fix_list fixes;
    size_t n_results;
    dsv4_rule_result *results; /* in rule order, after dsv4_vctx_run */
    dsv4_rule_result *cur;     /* the rule running now */
    /* The quantization_config simulated against vLLM's names (verify/vt_targets.h): built once by the
     * first targets rule, shared by the others, freed at close. */
    struct dsv4_vt_view *targets_view;
    int targets_view_built, targets_view_rc; /* dsv4_vt_view_open's result */
    char targets_view_why[600];
} dsv4_vctx;

/* Opens the artifact (and the source when not NULL). Fails (code 2) only when a path cannot be
 * read as a checkpoint at all; everything else wrong is left to the rules. */
int dsv4_vctx_open(dsv4_vctx *v, const char *artifact, const char *source, dsv4_err *e);
void dsv4_vctx_close(dsv4_vctx *v);
/* Runs every rule (or those whose id is in the comma-separated `only`); rules that need the source
 * are skipped without one. */
int dsv4_vctx_run(dsv4_vctx *v, const char *only, dsv4_err *e);

/* For rules: record one problem (printf-style; the current rule fails). */
void dsv4_vctx_fail(dsv4_vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* For rules: the rule does not apply or cannot run here (reason recorded; status SKIP unless it
 * already failed). */
void dsv4_vctx_skip(dsv4_vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* For rules: add a fix op (tagged with the current rule). The fix helpers fill the op. */
int dsv4_vctx_fix(dsv4_vctx *v, const dsv4_fix_op *op);
int dsv4_vctx_fix_rename(dsv4_vctx *v, const char *old_name, const char *new_name, const char *why);
int dsv4_vctx_fix_drop(dsv4_vctx *v, const char *name, const char *why);
int dsv4_vctx_fix_reshape(dsv4_vctx *v, const char *name, dsv4_dtype dtype, int ndim, const int64_t *shape,
                          const char *why);
int dsv4_vctx_fix_put(dsv4_vctx *v, const char *name, dsv4_dtype dtype, int ndim, const int64_t *shape,
                      dsv4_produce how, const dsv4_tensor *from, const dsv4_tensor *from_scale,
                      const char *near, const char *why);
/* `dotted` is a key path "quantization_config.scale_fmt" (keys contain no dots); value is taken
 * over (NULL deletes the key). */
int dsv4_vctx_fix_config(dsv4_vctx *v, const char *dotted, json_t *value, const char *why);
int dsv4_vctx_fix_index(dsv4_vctx *v, const char *why);

/* Lookups by canonical name. */
const dsv4_vtensor *dsv4_side_find(const dsv4_side *s, const char *name);
const dsv4_amod *dsv4_side_module(const dsv4_side *s, const char *module);
/* The canonical name of a tensor name; returns how it was derived. */
dsv4_canon dsv4_canonical_name(const char *name, char *out, size_t cap);

/* Results: failed rules of each severity; the JSON report; the human summary. */
size_t dsv4_vctx_count(const dsv4_vctx *v, dsv4_severity sev);
json_t *dsv4_vctx_report(const dsv4_vctx *v);
void dsv4_vctx_print(const dsv4_vctx *v, FILE *f, int verbose);

#endif
