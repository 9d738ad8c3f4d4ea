/* The rewriter's model of the result (see rewrite_internal.h): the artifact's tensors in a table,
 * the fix ops applied to it (rewrite_ops.c), new tensors placed, and each shard's fate decided
 * (link, new header only, rewrite, or gone). Nothing is written here. */
#include "fixup/rewrite_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *rw_base(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

void rw_state_free(rw_state *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->t[i].name);
    free(s->t);
    free(s->slot);
    for (size_t i = 0; i < s->n_shards; i++) {
        free(s->sh[i].member);
        dsv4_st_plan_free(&s->sh[i].plan);
    }
    free(s->sh);
    json_decref(s->config);
    json_decref(s->rules);
    dsv4_manifest_free(&s->old_manifest);
    memset(s, 0, sizeof *s);
}
/* Common prefix length of two strings. */
static size_t common(const char *a, const char *b)
{
    size_t k = 0;
    while (a[k] && a[k] == b[k])
        k++;
    return k;
}

static int cmp_idx_name(const void *a, const void *b, void *ctx)
{
    const rw_state *s = ctx;
    return strcmp(s->t[*(const size_t *)a].name, s->t[*(const size_t *)b].name);
}

/* New tensors go to the shard of `near`, or of the alphabetically nearest placed tensor (the
 * neighbour sharing the longer prefix; the one before on a tie). */
static int place_new(rw_state *s, dsv4_err *e)
{
    size_t *placed = malloc((s->n ? s->n : 1) * sizeof *placed), np = 0;
    if (!placed)
        return dsv4_fail_rt(e, "out of memory");
    for (size_t i = 0; i < s->n; i++)
        if (!s->t[i].dropped && s->t[i].shard >= 0)
            placed[np++] = i;
    qsort_r(placed, np, sizeof *placed, cmp_idx_name, s);
    int rc = 0;
    for (size_t i = 0; i < s->n && rc == 0; i++) {
        rw_tensor *t = &s->t[i];
        if (t->dropped || t->shard >= 0)
            continue;
        if (t->near) {
            long k = rw_find(s, t->near);
            if (k < 0 || s->t[k].shard < 0)
                rc = dsv4_fail(e, "put '%s' [%s]: it should go beside '%s', which is no tensor of the artifact",
                               t->name, rw_rule_of(t->put), t->near);
            else
                t->shard = s->t[k].shard;
            continue;
        }
        if (!np) {
            rc = dsv4_fail(e, "put '%s' [%s]: the artifact has no shard to put it in", t->name, rw_rule_of(t->put));
            break;
        }
        size_t lo = 0, hi = np;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (strcmp(s->t[placed[mid]].name, t->name) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        size_t pick = lo == 0 ? placed[0] : lo == np ? placed[np - 1]
                      : common(s->t[placed[lo - 1]].name, t->name) >= common(s->t[placed[lo]].name, t->name)
                          ? placed[lo - 1] : placed[lo];
        t->shard = s->t[pick].shard;
    }
    free(placed);
    return rc;
}

static int add_member(rw_shard *sh, size_t i, dsv4_err *e)
{
    if (sh->n == sh->cap) {
        size_t cap = sh->cap ? 2 * sh->cap : 64;
        size_t *nm = realloc(sh->member, cap * sizeof *nm);
        if (!nm)
            return dsv4_fail_rt(e, "out of memory");
        sh->member = nm;
        sh->cap = cap;
    }
    sh->member[sh->n++] = i;
    return 0;
}

/* Lays a touched shard out anew and decides: header only (same data section), rewrite, or link
 * (the new header is the old one byte for byte). */
static int decide_shard(rw_state *s, rw_shard *sh, dsv4_err *e)
{
    if (!sh->touched) {
        sh->kind = RW_LINK;
        return 0;
    }
    if (!sh->n) {
        sh->kind = RW_OMIT;
        return 0;
    }
    dsv4_st_plan *p = &sh->plan;
    dsv4_st_plan_init(p, 0, DSV4_ST_ALWAYS_INDEX);
    if (sh->f->n_meta && dsv4_st_plan_set_metadata(p, sh->f->n_meta, sh->f->meta_keys, sh->f->meta_vals, e))
        return dsv4_wrap(e, "%s", sh->f->path);
    int kernel_only = 1;
    for (size_t k = 0; k < sh->n; k++) {
        const rw_tensor *t = &s->t[sh->member[k]];
        if (dsv4_st_plan_add(p, t->name, t->dtype, t->ndim, t->shape, e) < 0)
            return dsv4_wrap(e, "%s", sh->f->path);
        if (!t->orig)
            kernel_only = 0;
    }
    if (dsv4_st_plan_finish(p, e))
        return dsv4_wrap(e, "%s", sh->f->path);
    const dsv4_st_plan_shard *ps = &p->shards[0];
    kernel_only = kernel_only && ps->data_bytes == sh->f->size - 8 - sh->f->header_len;
    for (size_t k = 0; kernel_only && k < sh->n; k++) {
        const rw_tensor *t = &s->t[sh->member[k]];
        kernel_only = p->tensors[k].begin == t->orig->begin && p->tensors[k].end == t->orig->end;
    }
    if (!kernel_only)
        sh->kind = RW_REWRITE;
    else if (ps->header_len == sh->f->header_len && !memcmp(ps->header, sh->f->map + 8, ps->header_len))
        sh->kind = RW_LINK;
    else
        sh->kind = RW_HEADER_ONLY;
    return 0;
}

static int refuse_artifact(const dsv4_ckpt *art, dsv4_err *e)
{
    if (art->n_bad_shards)
        return dsv4_fail(e, "%s/%s: this shard cannot be read (%s); dsv4-fixup does not rewrite an artifact with an "
                         "unreadable shard: re-create the shard first", art->dir, art->bad_shards[0].file,
                         art->bad_shards[0].why);
    for (size_t i = 0; i + 1 < art->n; i++)
        if (!strcmp(art->by_name[i]->name, art->by_name[i + 1]->name))
            return dsv4_fail(e, "tensor '%s' is stored twice (%s and %s); dsv4-fixup cannot tell which copy an op "
                             "means: remove one first", art->by_name[i]->name,
                             art->files[art->by_name[i]->file].path, art->files[art->by_name[i + 1]->file].path);
    return 0;
}

int rw_plan(rw_state *s, const dsv4_ckpt *art, const json_t *config, const dsv4_fix_list *ops,
            dsv4_rewrite_stats *st, dsv4_err *e)
{
    memset(s, 0, sizeof *s);
    s->art = art;
    if (refuse_artifact(art, e))
        return -1;
    size_t nput = 0;
    for (size_t i = 0; i < ops->n; i++)
        nput += ops->v[i].kind == DSV4_FIX_PUT;
    s->cap = art->n + nput;
    s->hcap = 16;
    while (s->hcap < 2 * (s->cap + ops->n) + 16)
        s->hcap *= 2;
    s->t = calloc(s->cap ? s->cap : 1, sizeof *s->t);
    s->slot = malloc(s->hcap * sizeof *s->slot);
    s->sh = calloc(art->n_files ? art->n_files : 1, sizeof *s->sh);
    s->rules = json_array();
    s->config = config ? json_deep_copy(config) : NULL;
    if (!s->t || !s->slot || !s->sh || !s->rules || (config && !s->config))
        return dsv4_fail_rt(e, "out of memory planning the rewrite");
    memset(s->slot, 0xff, s->hcap * sizeof *s->slot); /* all -1 */
    s->n_shards = art->n_files;
    for (size_t f = 0; f < art->n_files; f++) {
        s->sh[f].f = &art->files[f];
        s->sh[f].name = rw_base(art->files[f].path);
    }
    for (size_t i = 0; i < art->n; i++) {
        const dsv4_tensor *x = art->by_name[i];
        rw_tensor *t = &s->t[s->n];
        if (!(t->name = strdup(x->name)))
            return dsv4_fail_rt(e, "out of memory");
        t->orig = x;
        t->dtype = x->dtype;
        t->ndim = x->ndim;
        memcpy(t->shape, x->shape, sizeof t->shape);
        t->nbytes = dsv4_tensor_nbytes(x);
        t->shard = (long)x->file;
        rw_table_put(s, (long)s->n++);
    }
    for (size_t k = 0; k < ops->n; k++)
        if (rw_apply_op(s, ops, k, st, e))
            return -1;
    if (place_new(s, e))
        return -1;
    for (size_t i = 0; i < s->n; i++) {
        rw_tensor *t = &s->t[i];
        if (t->dropped)
            continue;
        rw_shard *sh = &s->sh[t->shard];
        if (t->renamed || t->reshape || t->put)
            sh->touched = 1;
        if (add_member(sh, i, e))
            return -1;
    }
    for (size_t f = 0; f < s->n_shards; f++) {
        if (decide_shard(s, &s->sh[f], e))
            return -1;
        st->shards_linked += s->sh[f].kind == RW_LINK;
        st->shards_header_only += s->sh[f].kind == RW_HEADER_ONLY;
        st->shards_rewritten += s->sh[f].kind == RW_REWRITE;
    }
    return 0;
}
