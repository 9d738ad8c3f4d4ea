/* Shard assignment, in-shard ordering and header rendering (see st_plan.h). */
#include "io/st_plan.h"
#include "util/sorted.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json_out.h"

void dsv4_st_plan_init(dsv4_st_plan *p, uint64_t max_shard_bytes, int flags)
{
    memset(p, 0, sizeof *p);
    p->max_shard_bytes = max_shard_bytes;
    p->flags = flags;
}

void dsv4_st_plan_free(dsv4_st_plan *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->tensors[i].name);
    for (size_t i = 0; i < p->n_shards; i++) {
        free(p->shards[i].name);
        free(p->shards[i].order);
        free(p->shards[i].header);
    }
    free(p->tensors);
    free(p->by_name);
    free(p->shards);
    for (size_t i = 0; i < p->n_meta; i++) {
        free(p->meta_keys[i]);
        free(p->meta_vals[i]);
    }
    free(p->meta_keys);
    free(p->meta_vals);
    memset(p, 0, sizeof *p);
}

int dsv4_st_plan_set_metadata(dsv4_st_plan *p, size_t n, char *const *keys, char *const *vals,
                              dsv4_err *e)
{
    if (p->finished)
        return dsv4_fail(e, "header metadata set after the plan was finished");
    for (size_t i = 0; i < p->n_meta; i++) {
        free(p->meta_keys[i]);
        free(p->meta_vals[i]);
    }
    free(p->meta_keys);
    free(p->meta_vals);
    p->n_meta = 0;
    p->meta_keys = p->meta_vals = NULL;
    if (!n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!dsv4_utf8_valid(keys[i], strlen(keys[i])) || !dsv4_utf8_valid(vals[i], strlen(vals[i])))
            return dsv4_fail(e, "header metadata '%s': keys and values must be valid UTF-8", keys[i]);
    p->meta_keys = calloc(n, sizeof(char *));
    p->meta_vals = calloc(n, sizeof(char *));
    if (!p->meta_keys || !p->meta_vals)
        return dsv4_fail_rt(e, "out of memory copying header metadata");
    for (; p->n_meta < n; p->n_meta++) {
        p->meta_keys[p->n_meta] = strdup(keys[p->n_meta]);
        p->meta_vals[p->n_meta] = strdup(vals[p->n_meta]);
        if (!p->meta_keys[p->n_meta] || !p->meta_vals[p->n_meta]) {
            p->n_meta++;
            return dsv4_fail_rt(e, "out of memory copying header metadata");
        }
    }
    return 0;
}

int dsv4_st_plan_add(dsv4_st_plan *p, const char *name, dsv4_dtype dtype, int ndim,
                     const int64_t *shape, dsv4_err *e)
{
    if (p->finished)
        return dsv4_fail(e, "tensor '%s': declared after the plan was finished", name);
    if (!name || !*name)
        return dsv4_fail(e, "tensor #%zu: expected a non-empty name", p->n);
    if (!strcmp(name, "__metadata__"))
        return dsv4_fail(e, "tensor '__metadata__': this name is reserved for the header metadata");
    if (!dsv4_utf8_valid(name, strlen(name)))
        return dsv4_fail(e, "tensor '%s': the name is not valid UTF-8", name);
    if (dtype < 0 || dtype >= DSV4_DTYPE_COUNT)
        return dsv4_fail(e, "tensor '%s': invalid dtype %d", name, (int)dtype);
    if (ndim < 0 || ndim > DSV4_MAX_DIMS)
        return dsv4_fail(e, "tensor '%s': %d dimensions, expected 0 to %d", name, ndim, DSV4_MAX_DIMS);
    dsv4_st_plan_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dtype;
    t.ndim = ndim;
    uint64_t numel = 1;
    int overflow = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return dsv4_fail(e, "tensor '%s': shape[%d] is %lld, expected a non-negative size", name, i,
                             (long long)shape[i]);
        t.shape[i] = shape[i];
        uint64_t d = (uint64_t)shape[i];
        if (d && numel > UINT64_MAX / d)
            overflow = 1;
        numel *= d;
    }
    uint64_t bits = (uint64_t)dsv4_dtype_bits(dtype);
    if (overflow || numel > UINT64_MAX / bits)
        return dsv4_fail(e, "tensor '%s': the shape's size in bits overflows 64 bits", name);
    if (numel * bits % 8)
        return dsv4_fail(e, "tensor '%s': %llu elements of %s are %llu bits, not a whole number of "
                         "bytes", name, (unsigned long long)numel, dsv4_dtype_name(dtype),
                         (unsigned long long)(numel * bits));
    int64_t nb = dsv4_dtype_nbytes(dtype, numel);
    if (nb < 0)
        return dsv4_fail(e, "tensor '%s': %llu bytes overflow", name, (unsigned long long)(numel * bits / 8));
    t.nbytes = (uint64_t)nb;
    if (t.nbytes > (uint64_t)INT64_MAX - p->total_bytes)
        return dsv4_fail(e, "tensor '%s': the checkpoint would exceed 2^63 bytes", name);
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 64;
        dsv4_st_plan_tensor *nt = realloc(p->tensors, cap * sizeof *nt);
        if (!nt)
            return dsv4_fail_rt(e, "tensor '%s': out of memory", name);
        p->tensors = nt;
        p->cap = cap;
    }
    if (!(t.name = strdup(name)))
        return dsv4_fail_rt(e, "tensor '%s': out of memory", name);
    p->tensors[p->n++] = t;
    p->total_bytes += t.nbytes;
    return 0;
}

static int cmp_name(const void *a, const void *b, void *ctx)
{
    const dsv4_st_plan *p = ctx;
    return strcmp(p->tensors[*(const size_t *)a].name, p->tensors[*(const size_t *)b].name);
}

/* The reference writer's order: dtype descending, then name ascending. */
static int cmp_layout(const void *a, const void *b, void *ctx)
{
    const dsv4_st_plan *p = ctx;
    const dsv4_st_plan_tensor *x = &p->tensors[*(const size_t *)a], *y = &p->tensors[*(const size_t *)b];
    if (x->dtype != y->dtype)
        return x->dtype > y->dtype ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Orders one shard's tensors, assigns their offsets and renders its header. */
static int layout_shard(dsv4_st_plan *p, dsv4_st_plan_shard *s, dsv4_err *e)
{
    qsort_r(s->order, s->n, sizeof *s->order, cmp_layout, p);
    dsv4_jbuf b = {0};
    if (!p->n_meta) {
        dsv4_jbuf_puts(&b, "{\"__metadata__\":{\"format\":\"pt\"}");
    } else {
        dsv4_jbuf_puts(&b, "{\"__metadata__\":{");
        for (size_t i = 0; i < p->n_meta; i++) {
            if (i)
                dsv4_jbuf_puts(&b, ",");
            dsv4_jbuf_str_serde(&b, p->meta_keys[i]);
            dsv4_jbuf_puts(&b, ":");
            dsv4_jbuf_str_serde(&b, p->meta_vals[i]);
        }
        dsv4_jbuf_puts(&b, "}");
    }
    uint64_t off = 0;
    for (size_t k = 0; k < s->n; k++) {
        dsv4_st_plan_tensor *t = &p->tensors[s->order[k]];
        t->begin = off;
        t->end = off += t->nbytes;
        dsv4_jbuf_puts(&b, ",");
        dsv4_jbuf_str_serde(&b, t->name);
        dsv4_jbuf_printf(&b, ":{\"dtype\":\"%s\",\"shape\":[", dsv4_dtype_name(t->dtype));
        for (int i = 0; i < t->ndim; i++)
            dsv4_jbuf_printf(&b, "%s%lld", i ? "," : "", (long long)t->shape[i]);
        dsv4_jbuf_printf(&b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)t->begin,
                         (unsigned long long)t->end);
    }
    dsv4_jbuf_puts(&b, "}");
    while (b.n % 8)
        dsv4_jbuf_puts(&b, " ");
    if (b.oom) {
        dsv4_jbuf_free(&b);
        return dsv4_fail_rt(e, "%s: out of memory rendering the header", s->name);
    }
    if (b.n > DSV4_ST_MAX_HEADER) {
        dsv4_jbuf_free(&b);
        return dsv4_fail(e, "%s: the header would be %zu bytes, over safetensors' 100,000,000-byte "
                         "limit: lower max_shard_bytes", s->name, b.n);
    }
    s->header = b.p;
    s->header_len = b.n;
    s->data_bytes = off;
    s->file_bytes = 8 + s->header_len + off;
    for (size_t k = 0; k < s->n; k++) {
        dsv4_st_plan_tensor *t = &p->tensors[s->order[k]];
        t->file_offset = 8 + s->header_len + t->begin;
    }
    return 0;
}

/* Splits the declaration order into shards: sets each tensor's shard and returns the count. A shard
 * that holds no bytes yet takes the next tensor whatever its size. (huggingface_hub instead puts a
 * tensor larger than the maximum in a shard of its own and keeps filling the current one, which
 * reorders tensors; here the declaration order is kept.) */
static size_t assign_shards(dsv4_st_plan *p)
{
    size_t shard = 0;
    uint64_t fill = 0;
    for (size_t i = 0; i < p->n; i++) {
        dsv4_st_plan_tensor *t = &p->tensors[i];
        if (fill && p->max_shard_bytes &&
            (fill > p->max_shard_bytes || t->nbytes > p->max_shard_bytes - fill)) {
            shard++;
            fill = 0;
        }
        t->shard = (uint32_t)shard;
        fill += t->nbytes;
    }
    return shard + 1;
}

int dsv4_st_plan_finish(dsv4_st_plan *p, dsv4_err *e)
{
    if (p->finished)
        return 0;
    if (p->by_name || p->shards)
        return dsv4_fail(e, "the plan failed to finish before; free it and plan again");
    p->by_name = malloc((p->n ? p->n : 1) * sizeof *p->by_name);
    if (!p->by_name)
        return dsv4_fail_rt(e, "out of memory planning %zu tensors", p->n);
    for (size_t i = 0; i < p->n; i++)
        p->by_name[i] = i;
    qsort_r(p->by_name, p->n, sizeof *p->by_name, cmp_name, p);
    for (size_t i = 0; i + 1 < p->n; i++)
        if (!strcmp(p->tensors[p->by_name[i]].name, p->tensors[p->by_name[i + 1]].name))
            return dsv4_fail(e, "tensor '%s': declared twice (#%zu and #%zu)",
                             p->tensors[p->by_name[i]].name, p->by_name[i], p->by_name[i + 1]);
    size_t ns = assign_shards(p);
    if (ns > DSV4_ST_MAX_SHARDS)
        return dsv4_fail(e, "the plan needs %zu shards, more than the %d that 5-digit names allow: "
                         "raise max_shard_bytes", ns, DSV4_ST_MAX_SHARDS);
    p->shards = calloc(ns, sizeof *p->shards);
    if (!p->shards)
        return dsv4_fail_rt(e, "out of memory planning %zu shards", ns);
    p->n_shards = ns;
    p->has_index = ns > 1 || (p->flags & DSV4_ST_ALWAYS_INDEX);
    for (size_t i = 0; i < p->n; i++)
        p->shards[p->tensors[i].shard].n++;
    for (size_t s = 0; s < ns; s++) {
        dsv4_st_plan_shard *sh = &p->shards[s];
        char name[64];
        if (p->has_index)
            snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", s + 1, ns);
        else
            snprintf(name, sizeof name, "%s", DSV4_ST_SINGLE_NAME);
        sh->name = strdup(name);
        sh->order = malloc((sh->n ? sh->n : 1) * sizeof *sh->order);
        if (!sh->name || !sh->order)
            return dsv4_fail_rt(e, "out of memory planning shard %zu", s + 1);
        sh->n = 0;
    }
    for (size_t i = 0; i < p->n; i++) {
        dsv4_st_plan_shard *sh = &p->shards[p->tensors[i].shard];
        sh->order[sh->n++] = i;
    }
    for (size_t s = 0; s < ns; s++) {
        if (layout_shard(p, &p->shards[s], e))
            return -1;
        p->file_bytes += p->shards[s].file_bytes;
    }
    p->finished = 1;
    return 0;
}

static const char *plan_name_at(const void *ctx, size_t i)
{
    const dsv4_st_plan *p = ctx;
    return p->tensors[p->by_name[i]].name;
}

long dsv4_st_plan_find(const dsv4_st_plan *p, const char *name)
{
    size_t i = dsv4_find_name(p->finished ? p->n : 0, plan_name_at, p, name);
    return i == DSV4_NOT_FOUND ? -1 : (long)p->by_name[i];
}
