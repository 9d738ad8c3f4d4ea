/* Shared by the plan builder's parts: the source name map (plan_source.c), the job decisions
 * (plan_jobs.c) and the artifact config (plan_config.c). Internal to libquant/artifact. */
#ifndef DSV4_PLAN_INTERNAL_H
#define DSV4_PLAN_INTERNAL_H

#include "artifact/ct_config.h"
#include "artifact/plan.h"
#include "model/inventory.h"

/* The source's tensors under their release names. */
typedef struct plan_src_entry {
    const char *release;
    const dsv4_tensor *t;
} plan_src_entry;

typedef struct plan_src {
    size_t n;
    plan_src_entry *e; /* sorted by release name */
    char **owned;      /* release names made from transformers names */
    size_t n_owned;
    int hf_named;      /* at least one tensor came in transformers naming */
    size_t n_aliases;  /* mtp.N.head.weight / mtp.N.emb.tok_emb.weight found in the source and left out */
    dsv4_tensor *views;/* per-expert views into transformers' fused gate_up_proj / down_proj */
    size_t n_views;
} plan_src;

/* Maps every source tensor onto the inventory: release names as they are, transformers names
 * through model/names.h. A tensor that is in neither is an error naming it. */
int plan_src_build(const dsv4_ckpt *ck, const dsv4_inventory *inv, const dsv4_config *cfg, plan_src *s, dsv4_err *e);
const dsv4_tensor *plan_src_find(const plan_src *s, const char *release);
void plan_src_free(plan_src *s);

typedef enum plan_mode {
    PLAN_PLAIN,  /* nothing quantized: no quantization_config */
    PLAN_CT,     /* compressed-tensors */
    PLAN_NATIVE, /* release FP8 / FP4 storage kept: the source's quantization_config */
} plan_mode;

typedef struct plan_ctx {
    const dsv4_ckpt *ck;
    const dsv4_config *cfg;
    const dsv4_recipe *r;
    dsv4_inventory inv;
    plan_src src;
    dsv4_plan *p;
    size_t cap;
    dsv4_ct_module *mods; /* the linear layers and their status, for quantization_config */
    size_t n_mods, cap_mods;
    const char *first_ct, *first_native, *first_deq; /* a tensor of each kind, for messages */
    plan_mode mode;
    dsv4_err *e;
} plan_ctx;

int plan_jobs(plan_ctx *c);
int plan_config(plan_ctx *c, const json_t *source_config);

#endif
