/* The rewriter's model of the result (see rewrite_internal.h): the fix ops applied in order to a
 * table of the artifact's tensors, every op checked before anything is written, new tensors
 * placed, and each shard's fate decided (link, new header only, rewrite, or gone). */
#include "fixup/rewrite_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixup/produce.h"

const char *rw_base(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static size_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)(h ^ (h >> 29));
}

/* Slot holding `name`, or the first free slot for it when absent (*found = 0). */
static size_t probe(const rw_state *s, const char *name, int *found)
{
    size_t m = s->hcap - 1, i = hash_name(name) & m, free_at = SIZE_MAX;
    for (;; i = (i + 1) & m) {
        long v = s->slot[i];
        if (v == -1) {
            *found = 0;
            return free_at != SIZE_MAX ? free_at : i;
        }
        if (v == -2) {
            if (free_at == SIZE_MAX)
                free_at = i;
        } else if (!strcmp(s->t[v].name, name)) {
            *found = 1;
            return i;
        }
    }
}

long rw_find(const rw_state *s, const char *name)
{
    int found;
    size_t i = probe(s, name, &found);
    return found ? s->slot[i] : -1;
}

static void table_put(rw_state *s, long idx)
{
    int found;
    s->slot[probe(s, s->t[idx].name, &found)] = idx;
}

static void table_del(rw_state *s, const char *name)
{
    int found;
    size_t i = probe(s, name, &found);
    if (found)
        s->slot[i] = -2;
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

static const char *rule_of(const dsv4_fix_op *op) { return op->rule ? op->rule : "?"; }

static int same_decl(const dsv4_fix_op *a, const dsv4_fix_op *b)
{
    return a->dtype == b->dtype && a->ndim == b->ndim && !memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim);
}

static int64_t decl_nbytes(const dsv4_fix_op *op)
{
    return dsv4_fix_op_nbytes(op);
}

static int op_rename(rw_state *s, const dsv4_fix_op *op, dsv4_rewrite_stats *st, dsv4_err *e)
{
    if (!op->name || !op->new_name || !*op->new_name)
        return dsv4_fail(e, "rename [%s]: needs an old and a non-empty new name", rule_of(op));
    long i = rw_find(s, op->name);
    if (i < 0)
        return dsv4_fail(e, "rename '%s' -> '%s' [%s]: no tensor is named '%s' (after the ops before it)", op->name,
                         op->new_name, rule_of(op), op->name);
    if (!strcmp(op->name, op->new_name))
        return 0;
    if (rw_find(s, op->new_name) >= 0)
        return dsv4_fail(e, "rename '%s' -> '%s' [%s]: a tensor named '%s' exists already", op->name, op->new_name,
                         rule_of(op), op->new_name);
    char *nn = strdup(op->new_name);
    if (!nn)
        return dsv4_fail_rt(e, "out of memory");
    table_del(s, op->name);
    free(s->t[i].name);
    s->t[i].name = nn;
    s->t[i].renamed = 1;
    table_put(s, i);
    st->renamed++;
    return 0;
}

static int op_reshape(rw_state *s, const dsv4_fix_op *op, dsv4_rewrite_stats *st, dsv4_err *e)
{
    long i = op->name ? rw_find(s, op->name) : -1;
    if (i < 0)
        return dsv4_fail(e, "reshape '%s' [%s]: no such tensor (after the ops before it)", op->name ? op->name : "",
                         rule_of(op));
    rw_tensor *t = &s->t[i];
    if (t->put)
        return dsv4_fail(e, "reshape '%s' [%s]: contradicts the put of the same tensor [%s], which declares its "
                         "dtype and shape", op->name, rule_of(op), rule_of(t->put));
    if (t->reshape) {
        if (same_decl(t->reshape, op))
            return 0; /* the same reshape asked twice */
        return dsv4_fail(e, "reshape '%s' [%s]: contradicts an earlier reshape of it [%s]", op->name, rule_of(op),
                         rule_of(t->reshape));
    }
    int64_t nb = op->ndim >= 0 && op->ndim <= DSV4_MAX_DIMS ? decl_nbytes(op) : -1;
    if (nb < 0 || (uint64_t)nb != t->nbytes) {
        char a[160], b[160];
        return dsv4_fail(e, "reshape '%s' [%s]: %s %s is %lld bytes, the tensor (%s %s) holds %llu", op->name,
                         rule_of(op), dsv4_dtype_name(op->dtype),
                         dsv4_dims_str(op->shape, op->ndim < 0 ? 0 : op->ndim, a, sizeof a), (long long)nb,
                         dsv4_dtype_name(t->dtype), dsv4_dims_str(t->shape, t->ndim, b, sizeof b),
                         (unsigned long long)t->nbytes);
    }
    t->reshape = op;
    t->dtype = op->dtype;
    t->ndim = op->ndim;
    memcpy(t->shape, op->shape, sizeof t->shape);
    st->reshaped++;
    return 0;
}

static int same_put(const dsv4_fix_op *a, const dsv4_fix_op *b)
{
    return a->produce == b->produce && a->from == b->from && a->from_scale == b->from_scale && same_decl(a, b);
}

static int op_put(rw_state *s, const dsv4_fix_op *op, dsv4_rewrite_stats *st, dsv4_err *e)
{
    if (!op->name || !*op->name)
        return dsv4_fail(e, "put [%s]: needs a tensor name", rule_of(op));
    long i = rw_find(s, op->name);
    if (i >= 0 && s->t[i].put) {
        if (same_put(s->t[i].put, op))
            return 0;
        return dsv4_fail(e, "put '%s' [%s]: contradicts an earlier put of the same tensor [%s]", op->name,
                         rule_of(op), rule_of(s->t[i].put));
    }
    if (i >= 0 && s->t[i].reshape)
        return dsv4_fail(e, "put '%s' [%s]: contradicts the reshape of the same tensor [%s], whose bytes it "
                         "replaces", op->name, rule_of(op), rule_of(s->t[i].reshape));
    if (dsv4_fix_produce_check(op, e))
        return -1;
    if (i < 0) {
        if (s->n == s->cap)
            return dsv4_fail_rt(e, "internal: tensor table full");
        i = (long)s->n++;
        memset(&s->t[i], 0, sizeof s->t[i]);
        if (!(s->t[i].name = strdup(op->name)))
            return dsv4_fail_rt(e, "out of memory");
        s->t[i].shard = -1;
        s->t[i].near = op->near;
        table_put(s, i);
    }
    rw_tensor *t = &s->t[i];
    t->put = op;
    t->orig = NULL;
    t->dtype = op->dtype;
    t->ndim = op->ndim;
    memcpy(t->shape, op->shape, sizeof t->shape);
    t->nbytes = (uint64_t)dsv4_fix_op_nbytes(op);
    st->put++;
    return 0;
}

static int op_drop(rw_state *s, const dsv4_fix_op *op, dsv4_rewrite_stats *st, dsv4_err *e)
{
    long i = op->name ? rw_find(s, op->name) : -1;
    if (i < 0)
        return dsv4_fail(e, "drop '%s' [%s]: no such tensor (after the ops before it)", op->name ? op->name : "",
                         rule_of(op));
    if (s->t[i].put)
        return dsv4_fail(e, "drop '%s' [%s]: contradicts the put of the same tensor [%s]", op->name, rule_of(op),
                         rule_of(s->t[i].put));
    table_del(s, op->name);
    s->t[i].dropped = 1;
    if (s->t[i].shard >= 0)
        s->sh[s->t[i].shard].touched = 1;
    st->dropped++;
    return 0;
}

/* Sets or deletes config[path...]; intermediate objects are created for a set. */
static int op_config(rw_state *s, const dsv4_fix_op *op, const dsv4_fix_list *ops, size_t at,
                     dsv4_rewrite_stats *st, dsv4_err *e)
{
    char dotted[1024] = "";
    for (size_t k = 0, off = 0; k < op->depth && off < sizeof dotted; k++)
        off += (size_t)snprintf(dotted + off, sizeof dotted - off, "%s%s", k ? "." : "", op->path[k]);
    if (!s->config)
        return dsv4_fail(e, "config %s [%s]: the artifact has no readable config.json to change", dotted, rule_of(op));
    if (!op->depth)
        return dsv4_fail(e, "config [%s]: empty key path", rule_of(op));
    for (size_t j = 0; j < at; j++) { /* an earlier op on the same key */
        const dsv4_fix_op *p = &ops->v[j];
        if (p->kind != DSV4_FIX_CONFIG || p->depth != op->depth)
            continue;
        size_t k = 0;
        while (k < op->depth && !strcmp(p->path[k], op->path[k]))
            k++;
        if (k < op->depth)
            continue;
        if ((!p->value && !op->value) || (p->value && op->value && json_equal(p->value, op->value)))
            return 0;
        return dsv4_fail(e, "config %s [%s]: contradicts an earlier change of the same key [%s]", dotted,
                         rule_of(op), rule_of(p));
    }
    json_t *o = s->config;
    for (size_t k = 0; k + 1 < op->depth; k++) {
        json_t *c = json_object_get(o, op->path[k]);
        if (!c) {
            if (!op->value)
                goto done; /* deleting a key under an absent object: nothing to do */
            c = json_object();
            if (!c || json_object_set_new(o, op->path[k], c))
                return dsv4_fail_rt(e, "out of memory");
        } else if (!json_is_object(c)) {
            return dsv4_fail(e, "config %s [%s]: config.json's '%s' is not an object", dotted, rule_of(op),
                             op->path[k]);
        }
        o = c;
    }
    if (op->value ? json_object_set(o, op->path[op->depth - 1], op->value) : 0)
        return dsv4_fail_rt(e, "out of memory");
    if (!op->value)
        json_object_del(o, op->path[op->depth - 1]);
done:
    st->config_ops++;
    return 0;
}

static int note_rule(rw_state *s, const char *rule, dsv4_err *e)
{
    size_t k;
    json_t *v;
    json_array_foreach(s->rules, k, v)
        if (!strcmp(json_string_value(v), rule))
            return 0;
    return json_array_append_new(s->rules, json_string(rule)) ? dsv4_fail_rt(e, "out of memory") : 0;
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
                               t->name, rule_of(t->put), t->near);
            else
                t->shard = s->t[k].shard;
            continue;
        }
        if (!np) {
            rc = dsv4_fail(e, "put '%s' [%s]: the artifact has no shard to put it in", t->name, rule_of(t->put));
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
        table_put(s, (long)s->n++);
    }
    for (size_t k = 0; k < ops->n; k++) {
        const dsv4_fix_op *op = &ops->v[k];
        int rc;
        switch (op->kind) {
        case DSV4_FIX_RENAME: rc = op_rename(s, op, st, e); break;
        case DSV4_FIX_RESHAPE: rc = op_reshape(s, op, st, e); break;
        case DSV4_FIX_PUT: rc = op_put(s, op, st, e); break;
        case DSV4_FIX_DROP: rc = op_drop(s, op, st, e); break;
        case DSV4_FIX_CONFIG: rc = op_config(s, op, ops, k, st, e); break;
        default: rc = dsv4_fail(e, "fix op #%zu [%s]: unknown kind %d", k, rule_of(op), (int)op->kind);
        }
        if (rc || note_rule(s, rule_of(op), e))
            return -1;
    }
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
