/* A finished plan built from shard files that already exist (see dsv4_st_plan_describe in
 * st_plan.h): the rewriter (fixup/rewrite.c) keeps some shards as they were and lays others out
 * anew, and renders the index and the manifest of the result from what is really on disk. */
#include "io/st_plan.h"

#include <stdlib.h>
#include <string.h>

static int cmp_name(const void *a, const void *b, void *ctx)
{
    const dsv4_st_plan *p = ctx;
    return strcmp(p->tensors[*(const size_t *)a].name, p->tensors[*(const size_t *)b].name);
}

static int fail_oom(dsv4_st_plan *p, dsv4_err *e)
{
    dsv4_st_plan_free(p);
    return dsv4_fail_rt(e, "out of memory describing the shards");
}

int dsv4_st_plan_describe(dsv4_st_plan *p, const dsv4_st_file *files, char *const *names, size_t n,
                          dsv4_err *e)
{
    dsv4_st_plan_init(p, 0, DSV4_ST_ALWAYS_INDEX);
    size_t total = 0;
    for (size_t s = 0; s < n; s++)
        total += files[s].n;
    p->tensors = calloc(total ? total : 1, sizeof *p->tensors);
    p->by_name = malloc((total ? total : 1) * sizeof *p->by_name);
    p->shards = calloc(n ? n : 1, sizeof *p->shards);
    if (!p->tensors || !p->by_name || !p->shards)
        return fail_oom(p, e);
    p->cap = total;
    p->n_shards = n;
    p->has_index = 1;
    for (size_t s = 0; s < n; s++) {
        const dsv4_st_file *f = &files[s];
        dsv4_st_plan_shard *sh = &p->shards[s];
        sh->name = strdup(names[s]);
        sh->order = malloc((f->n ? f->n : 1) * sizeof *sh->order);
        sh->header = malloc(f->header_len + 1);
        if (!sh->name || !sh->order || !sh->header)
            return fail_oom(p, e);
        memcpy(sh->header, f->map + 8, f->header_len);
        sh->header[f->header_len] = 0;
        sh->header_len = f->header_len;
        sh->data_bytes = f->size - 8 - f->header_len;
        sh->file_bytes = f->size;
        p->file_bytes += f->size;
        for (size_t k = 0; k < f->n; k++) { /* f->tensors are in offset order */
            const dsv4_tensor *t = &f->tensors[k];
            dsv4_st_plan_tensor *pt = &p->tensors[p->n];
            if (!(pt->name = strdup(t->name)))
                return fail_oom(p, e);
            pt->dtype = t->dtype;
            pt->ndim = t->ndim;
            memcpy(pt->shape, t->shape, sizeof pt->shape);
            pt->nbytes = t->end - t->begin;
            pt->shard = (uint32_t)s;
            pt->begin = t->begin;
            pt->end = t->end;
            pt->file_offset = 8 + f->header_len + t->begin;
            sh->order[sh->n++] = p->n;
            p->total_bytes += pt->nbytes;
            p->n++;
        }
    }
    for (size_t i = 0; i < p->n; i++)
        p->by_name[i] = i;
    qsort_r(p->by_name, p->n, sizeof *p->by_name, cmp_name, p);
    for (size_t i = 0; i + 1 < p->n; i++) {
        const dsv4_st_plan_tensor *a = &p->tensors[p->by_name[i]], *b = &p->tensors[p->by_name[i + 1]];
        if (!strcmp(a->name, b->name)) {
            dsv4_fail(e, "tensor '%s' is stored twice, in %s and in %s", a->name, p->shards[a->shard].name,
                      p->shards[b->shard].name);
            dsv4_st_plan_free(p);
            return -1;
        }
    }
    p->finished = 1;
    return 0;
}
