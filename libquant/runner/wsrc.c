/* The weight source (runner/weights.h): the checkpoint opened once, its config, the canonical
 * release name of every tensor (verify/vctx.h) and the module view over those names
 * (verify/astore.h); lookups by canonical name, small float tensors converted to float, and the
 * conversion buffers that linear views hand out. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/fp.h"
#include "model/names.h"
#include "runner/wsrc_internal.h"
#include "verify/vctx.h"

static int cmp_named(const void *a, const void *b)
{
    return strcmp(((const dsv4_named_tensor *)a)->name, ((const dsv4_named_tensor *)b)->name);
}

static int cmp_named_key(const void *k, const void *b)
{
    return strcmp(k, ((const dsv4_named_tensor *)b)->name);
}

static int build_names(dsv4_wsrc *s, dsv4_err *e)
{
    s->v = calloc(s->ck.n ? s->ck.n : 1, sizeof *s->v);
    if (!s->v)
        return dsv4_fail_rt(e, "%s: out of memory", s->path);
    for (size_t i = 0; i < s->ck.n; i++) {
        char buf[DSV4_NAME_MAX * 2];
        dsv4_canonical_name(s->ck.by_name[i]->name, buf, sizeof buf);
        s->v[i].t = s->ck.by_name[i];
        s->v[i].name = strdup(buf);
        if (!s->v[i].name)
            return dsv4_fail_rt(e, "%s: out of memory", s->path);
        s->n++;
    }
    qsort(s->v, s->n, sizeof *s->v, cmp_named);
    for (size_t i = 1; i < s->n; i++)
        if (!strcmp(s->v[i].name, s->v[i - 1].name))
            return dsv4_fail(e, "%s: tensors '%s' (%s) and '%s' (%s) are the same weight '%s' under two names",
                             s->path, s->v[i - 1].t->name, dsv4_ckpt_file_of(&s->ck, s->v[i - 1].t),
                             s->v[i].t->name, dsv4_ckpt_file_of(&s->ck, s->v[i].t), s->v[i].name);
    return dsv4_astore_build(s->v, s->n, &s->st, e);
}

int dsv4_wsrc_open(const char *path, dsv4_wsrc **out, dsv4_err *e)
{
    *out = NULL;
    dsv4_wsrc *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return dsv4_fail_rt(e, "%s: out of memory", path);
    }
    if (dsv4_ckpt_open(path, 0, &s->ck, e)) {
        free(s->path);
        free(s);
        return -1;
    }
    if (dsv4_config_load(path, &s->cfg, e) || build_names(s, e)) {
        dsv4_wsrc_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

void dsv4_wsrc_close(dsv4_wsrc *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_scratch; i++)
        free(s->scratch[i]);
    free(s->scratch);
    dsv4_astore_free(&s->st);
    for (size_t i = 0; i < s->n; i++)
        free((char *)s->v[i].name);
    free(s->v);
    dsv4_ckpt_close(&s->ck);
    free(s->path);
    free(s);
}

const dsv4_config *dsv4_wsrc_config(const dsv4_wsrc *s) { return &s->cfg; }
const char *dsv4_wsrc_path(const dsv4_wsrc *s) { return s->path; }

const dsv4_tensor *dsv4_wsrc_tensor(const dsv4_wsrc *s, const char *name)
{
    const dsv4_named_tensor *v = s->n ? bsearch(name, s->v, s->n, sizeof *s->v, cmp_named_key) : NULL;
    return v ? v->t : NULL;
}

const char *dsv4_wsrc_file_of(const dsv4_wsrc *s, const dsv4_tensor *t)
{
    return t ? dsv4_ckpt_file_of(&s->ck, t) : s->path;
}

const char *dsv4_wsrc_part_file(const dsv4_wsrc *s, const dsv4_amod *m, dsv4_part p)
{
    return m->part[p] ? dsv4_ckpt_file_of(&s->ck, m->part[p]) : "?";
}

void *dsv4_wsrc_scratch(dsv4_wsrc *s, size_t n, const char *what, dsv4_err *e)
{
    if (s->n_scratch == s->cap_scratch) {
        size_t cap = s->cap_scratch ? 2 * s->cap_scratch : 16;
        void **p = realloc(s->scratch, cap * sizeof *p);
        if (!p) {
            dsv4_fail_rt(e, "out of memory converting %s", what);
            return NULL;
        }
        s->scratch = p;
        s->cap_scratch = cap;
    }
    void *b = calloc(1, n ? n : 1);
    if (!b) {
        dsv4_fail_rt(e, "out of memory converting %s (%zu bytes)", what, n);
        return NULL;
    }
    s->scratch[s->n_scratch++] = b;
    return b;
}

void dsv4_wsrc_scratch_free(dsv4_wsrc *s, void *p)
{
    if (!p)
        return;
    for (size_t i = s->n_scratch; i-- > 0;)
        if (s->scratch[i] == p) {
            free(p);
            s->scratch[i] = s->scratch[--s->n_scratch];
            return;
        }
}

void dsv4_wsrc_lin_done(dsv4_wsrc *s, dsv4_lin *host)
{
    if (!host)
        return;
    if (s) {
        dsv4_wsrc_scratch_free(s, host->w);
        if (host->s != host->w)
            dsv4_wsrc_scratch_free(s, host->s);
    }
    memset(host, 0, sizeof *host);
}

const void *dsv4_wsrc_aligned(dsv4_wsrc *s, const dsv4_tensor *t, size_t align, dsv4_err *e)
{
    if (((uintptr_t)t->data % align) == 0)
        return t->data;
    uint64_t n = dsv4_tensor_nbytes(t);
    void *b = dsv4_wsrc_scratch(s, (size_t)n, t->name, e);
    if (b)
        memcpy(b, t->data, (size_t)n);
    return b;
}

static int is_float_dtype(dsv4_dtype d)
{
    return d == DSV4_BF16 || d == DSV4_F16 || d == DSV4_F32;
}

/* Loads a float tensor: exact shape `dims` when ndim >= 0, else only its element count n. */
static int load_f32(dsv4_wsrc *s, const char *name, int ndim, const int64_t *dims, int64_t n, float *dst,
                    dsv4_err *e)
{
    const dsv4_tensor *t = dsv4_wsrc_tensor(s, name);
    char want[160], got[160];
    if (ndim >= 0) {
        dsv4_dims_str(dims, ndim, want, sizeof want);
        n = 1;
        for (int i = 0; i < ndim; i++)
            n *= dims[i];
    } else {
        snprintf(want, sizeof want, "%lld elements", (long long)n);
    }
    if (!t)
        return dsv4_fail(e, "%s: tensor '%s' is missing (expected BF16, F16 or F32 %s)", s->path, name, want);
    const char *file = dsv4_wsrc_file_of(s, t);
    if (!is_float_dtype(t->dtype))
        return dsv4_fail(e, "%s: tensor '%s' (stored as '%s') has dtype %s (expected BF16, F16 or F32 %s)", file,
                         name, t->name, dsv4_dtype_name(t->dtype), want);
    int same = ndim >= 0 ? t->ndim == ndim : (int64_t)dsv4_tensor_numel(t) == n;
    for (int i = 0; same && i < ndim; i++)
        same = t->shape[i] == dims[i];
    if (!same)
        return dsv4_fail(e, "%s: tensor '%s' (stored as '%s') has shape %s (expected %s)", file, name, t->name,
                         dsv4_shape_str(t, got, sizeof got), want);
    dsv4_decode_row(t->dtype, t->data, dst, (size_t)n);
    return 0;
}

int dsv4_wsrc_f32_dims(dsv4_wsrc *s, const char *name, int ndim, const int64_t *dims, float *dst, dsv4_err *e)
{
    if (ndim < 0 || ndim > DSV4_MAX_DIMS)
        return dsv4_fail(e, "%s: tensor '%s': bad rank %d asked for", s->path, name, ndim);
    return load_f32(s, name, ndim, dims, 0, dst, e);
}

int dsv4_wsrc_f32(dsv4_wsrc *s, const char *name, int64_t n, float *dst, dsv4_err *e)
{
    return load_f32(s, name, -1, NULL, n, dst, e);
}
