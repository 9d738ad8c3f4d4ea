/* Pieces of the GPTQ calibration walk (calib.h) shared by calib.c (the walk), calib_hess.c (the
 * Hessian table, taps, saved Hessians), calib_module.c (GPTQ of one module, packing, the weight
 * swapped into the layer) and store.c (the work folder). */
#ifndef DSV4_GPTQ_CALIB_INTERNAL_H
#define DSV4_GPTQ_CALIB_INTERNAL_H

#include "gptq/calib.h"
#include "runner/runner.h"

#define CALIB_FORMAT 1

/* One quantized module of the layer being calibrated (a GPTQ job of the plan). */
typedef struct cmod {
    char stem[160];              /* release module name, "layers.3.ffn.experts.7.w1" */
    const dsv4_plan_job *job;
    const dsv4_recipe_group *g;
    dsv4_tap_site site;          /* where its input is tapped */
    int expert;                  /* routed expert, or -1 */
    int groups;                  /* wo_a: o_groups row blocks with one Hessian each; else 1 */
    dsv4_lin *lin;               /* its weight in the loaded layer */
    /* outcome */
    const char *how;             /* "gptq", "gptq-all-tokens", "rtn", "exact" */
    double loss, damp, seconds;
    int attempts, rtn_fallback;
    int64_t dead;
    uint8_t *out[3];             /* the job's outputs, as the artifact stores them */
} cmod;

/* A Hessian: the input site it comes from (expert DSV4_TAP_EXPERT_ALL: every token; grp: wo_a's
 * row group). */
typedef struct hent {
    dsv4_tap_site site;
    int expert, grp;
    int64_t cols;
    float *H;                    /* backend [cols, cols], upper triangle */
    double n;                    /* rows accumulated */
} hent;

typedef struct clayer {
    const dsv4_model *m;
    int id;                      /* layer id (n_layers + i for MTP block i) */
    dsv4_layer_w w;
    cmod *mods;
    size_t n_mods;
    hent *hs;
    size_t n_hs;
    int64_t *tokens;             /* [E] tokens routed to each expert */
    uint8_t *mode;               /* [E] DSV4_TAP_ROUTED / ALL_TOKENS / SKIP for the current pass */
    int collecting_counts;       /* pass 1: count routed tokens */
} clayer;

/* ---- modules (calib_module.c) ---- */
/* "layers.<id>" or "mtp.<i>" (MTP block i = layer n_layers + i). */
void calib_layer_name(const dsv4_config *c, int id, char *out, size_t n);
/* 1 when plan job j is a GPTQ job of the layer named `layer` (calib_layer_name). */
int calib_job_in(const dsv4_plan_job *j, const dsv4_recipe *r, const char *layer);
/* The GPTQ modules of layer `id` in plan p (with their sites) into L->mods; 0 modules is fine. */
int calib_modules(clayer *L, const dsv4_plan *p, const dsv4_recipe *r, dsv4_err *e);
void calib_modules_free(clayer *L);
/* The Hessian a module uses (NULL when it has none). */
hent *calib_module_hess(clayer *L, const cmod *c, int grp);
/* Quantizes module i into c->out: GPTQ with its Hessian, or the plan job (rtn / exact). */
int calib_module_quantize(clayer *L, size_t i, dsv4_err *e);
/* Swaps the module's weight in the loaded layer for its quantized form (from c->out). */
int calib_module_swap(clayer *L, size_t i, dsv4_err *e);

/* ---- Hessians (calib_hess.c) ---- */
/* Creates the table entries the modules need (zeroed backend Hessians). */
int calib_hess_init(clayer *L, dsv4_err *e);
void calib_hess_free(clayer *L);
hent *calib_hess_find(clayer *L, dsv4_tap_site site, int expert, int grp);
/* The taps of a calibration pass over L (sites the modules read, expert modes from L->mode). */
void calib_taps(clayer *L, dsv4_taps *t);
/* Zeroes the Hessians of the experts whose mode is ALL_TOKENS (before the all-tokens pass). */
int calib_hess_reset_all_tokens(clayer *L, dsv4_err *e);
/* Saved Hessians: the layer's table into dir/layer-<id>/ (atomic), or back from it. */
int calib_hess_save(clayer *L, const char *dir, dsv4_err *e);
int calib_hess_load(clayer *L, const char *dir, dsv4_err *e);

/* ---- the work folder (store.c) ---- */
/* dir/layer-NNN (or mtp-N): the layer's finished tensors. */
void calib_layer_dir(const char *work, const dsv4_config *c, int id, char *out, size_t n);
/* Writes the layer's outputs and its report (JSON, stored as the file's metadata) atomically. */
int calib_layer_store(const char *work, clayer *L, json_t *report, dsv4_err *e);
/* Reads a finished layer's outputs back into L->mods[i].out (1 = found, 0 = not done yet). */
int calib_layer_load(const char *work, clayer *L, dsv4_err *e);
/* calib.json: the run's identity; a folder made by another run is refused. */
int calib_fingerprint(const char *work, json_t *id, dsv4_err *e);

#endif
