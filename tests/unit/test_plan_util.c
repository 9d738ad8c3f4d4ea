/* Helpers for the plan and quantization_config tests: the tiny fixture opened once per test, plans
 * built from a recipe file or YAML text, and in-memory BF16 checkpoints (release or transformers
 * names) made from the config's inventory, for the RTN paths. */
#include "harness.h"
#include "io/checkpoint.h"
#include "model/inventory.h"
#include "model/names.h"
#include "test_plan_util.h"
#include "util/json_in.h"

#include <stdlib.h>
#include <string.h>

#define TINY "fixtures/dsv4-tiny"

int tp_open(tp_fixture *f)
{
    dsv4_err e;
    char *buf;
    size_t len;
    memset(f, 0, sizeof *f);
    if (dsv4_config_load(th_path(TINY), &f->cfg, &e) || dsv4_ckpt_open(th_path(TINY), 0, &f->ck, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        return -1;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", th_path(TINY));
    if (dsv4_read_file(path, 1 << 20, &buf, &len, &e) ||
        !(f->source_config = dsv4_json_parse(buf, len, path, NULL, &e))) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        return -1;
    }
    free(buf);
    return 0;
}

void tp_close(tp_fixture *f)
{
    dsv4_ckpt_close(&f->ck);
    json_decref(f->source_config);
}

int tp_recipe(const char *yaml_or_rel, dsv4_recipe *r, dsv4_err *e)
{
    if (!strchr(yaml_or_rel, '\n'))
        return dsv4_recipe_load(th_path(yaml_or_rel), r, e);
    return dsv4_recipe_parse(yaml_or_rel, strlen(yaml_or_rel), "inline.yaml", r, e);
}

int tp_plan(const dsv4_ckpt *ck, const dsv4_config *cfg, const json_t *sc, const char *recipe, dsv4_plan *p,
            dsv4_err *e)
{
    dsv4_recipe r;
    if (tp_recipe(recipe, &r, e))
        return -1;
    int rc = dsv4_plan_build(ck, cfg, sc, &r, p, e);
    dsv4_recipe_free(&r);
    return rc;
}

void tp_counts(const dsv4_plan *p, int counts[7])
{
    memset(counts, 0, 7 * sizeof *counts);
    for (size_t i = 0; i < p->n; i++)
        counts[p->jobs[i].kind]++;
}

const dsv4_plan_out *tp_out(const dsv4_plan *p, const char *name, const dsv4_plan_job **job)
{
    for (size_t i = 0; i < p->n; i++)
        for (int k = 0; k < p->jobs[i].n_out; k++)
            if (!strcmp(p->jobs[i].out[k].name, name)) {
                if (job)
                    *job = &p->jobs[i];
                return &p->jobs[i].out[k];
            }
    return NULL;
}

int tp_check_out(const dsv4_plan *p, const char *name, dsv4_job_kind kind, dsv4_dtype dt, int ndim, int64_t d0,
                 int64_t d1, int line)
{
    const dsv4_plan_job *j;
    const dsv4_plan_out *o = tp_out(p, name, &j);
    if (!o) {
        th_fail(__FILE__, line, "no output %s", name);
        return -1;
    }
    if (j->kind != kind || o->dtype != dt || o->ndim != ndim || (ndim > 0 && o->shape[0] != d0) ||
        (ndim > 1 && o->shape[1] != d1)) {
        th_fail(__FILE__, line, "%s: %s %s ndim %d [%lld, %lld], expected %s %s ndim %d [%lld, %lld]", name,
                dsv4_job_kind_name(j->kind), dsv4_dtype_name(o->dtype), o->ndim, (long long)o->shape[0],
                (long long)o->shape[1], dsv4_job_kind_name(kind), dsv4_dtype_name(dt), ndim, (long long)d0,
                (long long)d1);
        return -1;
    }
    return 0;
}

void tp_same_jobs(const dsv4_plan *a, const dsv4_plan *b, int line)
{
    if (a->n != b->n || a->out_bytes != b->out_bytes) {
        th_fail(__FILE__, line, "%zu jobs / %llu bytes vs %zu / %llu", a->n, (unsigned long long)a->out_bytes, b->n,
                (unsigned long long)b->out_bytes);
        return;
    }
    for (size_t i = 0; i < a->n; i++) {
        const dsv4_plan_job *x = &a->jobs[i], *y = &b->jobs[i];
        int same = x->kind == y->kind && x->group == y->group && x->n_out == y->n_out && x->rows == y->rows &&
                   x->cols == y->cols;
        for (int k = 0; k < 4 && same; k++)
            same = (!x->src[k] && !y->src[k]) ||
                   (x->src[k] && y->src[k] && x->src[k]->dtype == y->src[k]->dtype &&
                    x->src[k]->shape[0] == y->src[k]->shape[0]);
        for (int k = 0; k < x->n_out && same; k++)
            same = !strcmp(x->out[k].name, y->out[k].name) && x->out[k].dtype == y->out[k].dtype &&
                   x->out[k].ndim == y->out[k].ndim && x->out[k].shape[0] == y->out[k].shape[0] &&
                   x->out[k].shape[1] == y->out[k].shape[1];
        if (!same) {
            th_fail(__FILE__, line, "job %zu differs (%s)", i, x->n_out ? x->out[0].name : "?");
            return;
        }
    }
}

/* ---- in-memory checkpoints ---- */

static int cmp_tensor_ptr(const void *a, const void *b)
{
    return strcmp((*(const dsv4_tensor *const *)a)->name, (*(const dsv4_tensor *const *)b)->name);
}

/* The transformers name of a release tensor (MTP blocks under model.mtp.N, experts linearized). */
static void hf_name(const char *rel, const dsv4_config *cfg, char *out, size_t cap)
{
    dsv4_name_map m;
    dsv4_map_kind k = dsv4_name_to_hf(rel, cfg, &m);
    if (k == DSV4_MAP_DIRECT) {
        snprintf(out, cap, "%s", m.name);
        return;
    }
    const char *p = rel;
    char pre[32] = "", rest[256];
    if (!strncmp(rel, "mtp.", 4)) {
        p = strchr(rel + 4, '.') + 1;
        snprintf(pre, sizeof pre, "model.mtp.%.*s.", (int)(p - rel - 5), rel + 4);
        snprintf(rest, sizeof rest, "layers.0.%s", p);
        if (dsv4_name_to_hf(rest, cfg, &m) == DSV4_MAP_DIRECT) {
            snprintf(out, cap, "%s%s", pre, m.name + strlen("model.layers.0."));
            return;
        }
        if (dsv4_name_to_hf(rest, cfg, &m) != DSV4_MAP_FUSED) {
            snprintf(out, cap, "%s%s", pre, p);
            return;
        }
        rel = rest;
    }
    /* A routed expert: linearized per-expert name. */
    int layer = 0, ex = 0, w = 0;
    char kind[16] = "";
    if (sscanf(rel, "layers.%d.ffn.experts.%d.w%d.%15s", &layer, &ex, &w, kind) == 4) {
        static const char *const proj[] = {"", "gate_proj", "down_proj", "up_proj"};
        if (pre[0])
            snprintf(out, cap, "%smlp.experts.%d.%s.weight", pre, ex, proj[w]);
        else
            snprintf(out, cap, "model.layers.%d.mlp.experts.%d.%s.weight", layer, ex, proj[w]);
        return;
    }
    snprintf(out, cap, "%s", rel);
}

int tp_fake_build(tp_fake *f, const dsv4_config *cfg, int hf_names, tp_fake_edit edit, void *ctx)
{
    dsv4_inventory inv;
    dsv4_err e;
    memset(f, 0, sizeof *f);
    if (dsv4_inventory_build(cfg, &inv, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        return -1;
    }
    f->t = calloc(inv.n + 8, sizeof *f->t);
    f->ptr = calloc(inv.n + 8, sizeof *f->ptr);
    for (size_t i = 0; i < inv.n; i++) {
        const dsv4_inv_tensor *it = &inv.t[i];
        if (it->role == DSV4_ROLE_SCALE)
            continue;
        dsv4_tensor *t = &f->t[f->n];
        char name[1024];
        int quant = it->store == DSV4_STORE_FP8_BLOCK || it->store == DSV4_STORE_FP4_PACKED;
        t->dtype = quant ? DSV4_BF16 : it->dtype;
        t->ndim = it->ndim;
        t->shape[0] = it->shape[0];
        t->shape[1] = it->shape[1] * (it->store == DSV4_STORE_FP4_PACKED ? 2 : 1);
        if (hf_names)
            hf_name(it->name, cfg, name, sizeof name);
        else
            snprintf(name, sizeof name, "%s", it->name);
        t->name = strdup(name);
        if (edit && edit(ctx, it, t)) {
            free(t->name);
            continue; /* dropped */
        }
        f->n++;
    }
    dsv4_inventory_free(&inv);
    return tp_fake_finish(f);
}

int tp_fake_add(tp_fake *f, const char *name, dsv4_dtype dt, int ndim, int64_t d0, int64_t d1)
{
    dsv4_tensor *t = &f->t[f->n++];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->dtype = dt;
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = d1;
    return tp_fake_finish(f);
}

int tp_fake_finish(tp_fake *f)
{
    for (size_t i = 0; i < f->n; i++) {
        dsv4_tensor *t = &f->t[i];
        uint64_t n = (uint64_t)(t->ndim > 0 ? t->shape[0] : 1) * (uint64_t)(t->ndim > 1 ? t->shape[1] : 1);
        t->begin = 0;
        t->end = (uint64_t)dsv4_dtype_nbytes(t->dtype, n);
        f->ptr[i] = t;
    }
    qsort(f->ptr, f->n, sizeof *f->ptr, cmp_tensor_ptr);
    memset(&f->ck, 0, sizeof f->ck);
    f->ck.n = f->n;
    f->ck.by_name = (const dsv4_tensor **)f->ptr;
    return 0;
}

void tp_fake_free(tp_fake *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->t[i].name);
    free(f->t);
    free(f->ptr);
    memset(f, 0, sizeof *f);
}
