/* Shared by test_plan*.c and test_ct_config*.c (see test_plan_util.c). */
#ifndef DSV4_TEST_PLAN_UTIL_H
#define DSV4_TEST_PLAN_UTIL_H

#include "artifact/plan.h"
#include "model/inventory.h"

typedef struct tp_fixture {
    dsv4_config cfg;
    dsv4_ckpt ck;
    json_t *source_config;
} tp_fixture;

int tp_open(tp_fixture *f);
void tp_close(tp_fixture *f);
/* A recipe from a repository path, or from YAML text (anything with a newline). */
int tp_recipe(const char *yaml_or_rel, dsv4_recipe *r, dsv4_err *e);
int tp_plan(const dsv4_ckpt *ck, const dsv4_config *cfg, const json_t *sc, const char *recipe, dsv4_plan *p,
            dsv4_err *e);
void tp_counts(const dsv4_plan *p, int counts[7]);
const dsv4_plan_out *tp_out(const dsv4_plan *p, const char *name, const dsv4_plan_job **job);
int tp_check_out(const dsv4_plan *p, const char *name, dsv4_job_kind kind, dsv4_dtype dt, int ndim, int64_t d0,
                 int64_t d1, int line);
/* Same jobs: kinds, groups, shapes, source dtypes and every output (name, dtype, shape). */
void tp_same_jobs(const dsv4_plan *a, const dsv4_plan *b, int line);
#define TP_OUT(p, name, kind, dt, ndim, d0, d1) tp_check_out(p, name, kind, dt, ndim, d0, d1, __LINE__)

/* An in-memory BF16 checkpoint: every inventory weight dense BF16 with its logical shape, scales
 * left out, the rest as in the release; optionally in transformers names. `edit` may change a
 * tensor (return 0) or drop it (return 1). */
typedef int (*tp_fake_edit)(void *ctx, const dsv4_inv_tensor *it, dsv4_tensor *t);
typedef struct tp_fake {
    dsv4_ckpt ck;
    dsv4_tensor *t;
    dsv4_tensor **ptr;
    size_t n;
} tp_fake;

int tp_fake_build(tp_fake *f, const dsv4_config *cfg, int hf_names, tp_fake_edit edit, void *ctx);
/* Adds a tensor (room for 8 extra) and re-sorts. */
int tp_fake_add(tp_fake *f, const char *name, dsv4_dtype dt, int ndim, int64_t d0, int64_t d1);
int tp_fake_finish(tp_fake *f);
void tp_fake_free(tp_fake *f);

#endif
