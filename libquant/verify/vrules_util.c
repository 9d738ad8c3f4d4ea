/* Helpers shared by the rule groups (vrules_util.h): names, descriptions, lookups, fix ops added
 * once, value comparison. The source side is vrules_source.c. */
#include "verify/vrules_util.h"

#include <stdio.h>
#include <string.h>

#include "formats/fp.h"

int vr_starts(const char *s, const char *prefix)
{
    return !strncmp(s, prefix, strlen(prefix));
}

int vr_ends(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

char *vr_desc(const dsv4_tensor *t, char *buf, size_t cap)
{
    char shape[96];
    snprintf(buf, cap, "%s %s", dsv4_dtype_name(t->dtype), dsv4_shape_str(t, shape, sizeof shape));
    return buf;
}

char *vr_inv_desc(const dsv4_inv_tensor *t, char *buf, size_t cap)
{
    char shape[96];
    snprintf(buf, cap, "%s %s", dsv4_dtype_name(t->dtype), dsv4_dims_str(t->shape, t->ndim, shape, sizeof shape));
    return buf;
}

int vr_shape_is(const dsv4_tensor *t, const dsv4_inv_tensor *it)
{
    if (t->ndim != it->ndim)
        return 0;
    for (int i = 0; i < it->ndim; i++)
        if (t->shape[i] != it->shape[i])
            return 0;
    return 1;
}

int vr_module_of(const char *name, char *buf, size_t cap)
{
    size_t l = strlen(name);
    if (!vr_ends(name, ".weight") || l - 7 >= cap)
        return 0;
    snprintf(buf, cap, "%.*s", (int)(l - 7), name);
    return 1;
}

const dsv4_tensor *vr_art(const dsv4_vctx *v, const char *name)
{
    const dsv4_vtensor *x = dsv4_side_find(&v->art, name);
    return x ? x->t : NULL;
}

const dsv4_tensor *vr_src(const dsv4_vctx *v, const char *name)
{
    if (!v->have_src)
        return NULL;
    const dsv4_vtensor *x = dsv4_side_find(&v->src, name);
    return x ? x->t : NULL;
}

int vr_art_has_prefix(const dsv4_vctx *v, const char *prefix)
{
    size_t lo = 0, hi = v->art.n, k = strlen(prefix);
    while (lo < hi) { /* first name >= prefix */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(v->art.v[mid].name, prefix) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < v->art.n && !strncmp(v->art.v[lo].name, prefix, k);
}

int vr_unreadable(const dsv4_vctx *v, const char *name, int prefix_only)
{
    const dsv4_ckpt *ck = &v->art.ck;
    if (!ck->n_bad_shards || !ck->has_index)
        return 0;
    for (size_t i = 0; i < ck->index.n; i++) {
        char canon[DSV4_NAME_MAX * 2];
        dsv4_canonical_name(ck->index.names[i], canon, sizeof canon);
        if (prefix_only ? !vr_starts(canon, name) : strcmp(canon, name) != 0)
            continue;
        for (size_t k = 0; k < ck->n_bad_shards; k++)
            if (!strcmp(ck->bad_shards[k].file, ck->index.files[i]))
                return 1;
    }
    return 0;
}

int vr_need_inv(dsv4_vctx *v)
{
    if (v->inv && v->model)
        return 1;
    dsv4_vctx_skip(v, "no usable model config: %s", v->art.config_problem[0] ? v->art.config_problem : "none");
    return 0;
}

static const dsv4_fix_op *find_op(const dsv4_vctx *v, dsv4_fix_kind k, const char *name)
{
    for (size_t i = 0; i < v->fixes.n; i++)
        if (v->fixes.v[i].kind == k && v->fixes.v[i].name && !strcmp(v->fixes.v[i].name, name))
            return &v->fixes.v[i];
    return NULL;
}

int vr_put(dsv4_vctx *v, const char *name, dsv4_dtype dtype, int ndim, const int64_t *shape, dsv4_produce how,
           const dsv4_tensor *from, const dsv4_tensor *from_scale, const char *near, const char *why)
{
    if (find_op(v, DSV4_FIX_PUT, name))
        return 0;
    return dsv4_vctx_fix_put(v, name, dtype, ndim, shape, how, from, from_scale, near, why);
}

int vr_drop(dsv4_vctx *v, const char *name, const char *why)
{
    if (find_op(v, DSV4_FIX_DROP, name))
        return 0;
    return dsv4_vctx_fix_drop(v, name, why);
}

/* An artifact tensor whose name starts with `prefix` and that no repair removes (no quantization part). */
static const char *plain_with_prefix(const dsv4_vctx *v, const char *prefix)
{
    for (size_t i = 0; i < v->art.n; i++) {
        const char *name = v->art.v[i].name;
        size_t ml;
        int p = dsv4_part_of(name, &ml);
        if (vr_starts(name, prefix) && (p < 0 || p == DSV4_PART_WEIGHT))
            return name;
    }
    return NULL;
}

const char *vr_mtp_near(const dsv4_vctx *v)
{
    const char *n = plain_with_prefix(v, "mtp.");
    if (n)
        return n;
    if (v->model && v->model->n_layers > 0) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "layers.%d.", v->model->n_layers - 1);
        if ((n = plain_with_prefix(v, prefix)))
            return n;
    }
    const dsv4_vtensor *h = dsv4_side_find(&v->art, "head.weight");
    return h ? h->name : NULL;
}

/* Element i as a double: float dtypes decoded, integer dtypes read. */
static double elem(dsv4_dtype t, const void *base, uint64_t i)
{
    const uint8_t *p = base;
    switch (t) {
    case DSV4_I8: return (double)((const int8_t *)p)[i];
    case DSV4_U8: return (double)p[i];
    case DSV4_I16: { int16_t x; memcpy(&x, p + 2 * i, 2); return x; }
    case DSV4_U16: { uint16_t x; memcpy(&x, p + 2 * i, 2); return x; }
    case DSV4_I32: { int32_t x; memcpy(&x, p + 4 * i, 4); return x; }
    case DSV4_U32: { uint32_t x; memcpy(&x, p + 4 * i, 4); return x; }
    case DSV4_I64: { int64_t x; memcpy(&x, p + 8 * i, 8); return (double)x; }
    case DSV4_U64: { uint64_t x; memcpy(&x, p + 8 * i, 8); return (double)x; }
    default: return dsv4_dtype_is_float(t) ? (double)dsv4_decode_elem(t, base, (size_t)i) : 0.0;
    }
}

static int castable(dsv4_dtype t)
{
    return t == DSV4_BF16 || t == DSV4_F16 || t == DSV4_F32;
}

int vr_compare(const void *a, dsv4_dtype da, const void *b, dsv4_dtype db, uint64_t n, vr_cmp *c)
{
    memset(c, 0, sizeof *c);
    const uint8_t *pa = a, *pb = b;
    int bits = dsv4_dtype_bits(da);
    if (da == db && bits >= 8) {
        size_t es = (size_t)bits / 8;
        for (uint64_t i = 0; i < n; i++)
            if (memcmp(pa + i * es, pb + i * es, es) && c->n_diff++ == 0)
                c->first = i;
    } else if (da == db) {
        uint64_t nb = (uint64_t)dsv4_dtype_nbytes(da, n);
        for (uint64_t i = 0; i < nb; i++)
            if (pa[i] != pb[i] && c->n_diff++ == 0)
                c->first = i * 8 / (uint64_t)bits;
        return 0; /* sub-byte values: the index only */
    } else {
        if (!castable(da) || !castable(db))
            return -1;
        size_t es = (size_t)bits / 8;
        for (uint64_t i = 0; i < n; i++) {
            float x = dsv4_decode_elem(db, pb, (size_t)i);
            uint8_t enc[4];
            dsv4_encode_row(da, &x, enc, 1, DSV4_FP_CAST);
            if (memcmp(pa + i * es, enc, es) && c->n_diff++ == 0)
                c->first = i;
        }
    }
    if (c->n_diff) {
        c->a = elem(da, a, c->first);
        c->b = elem(db, b, c->first);
    }
    return 0;
}

char *vr_cmp_str(const vr_cmp *c, uint64_t n, char *buf, size_t cap)
{
    snprintf(buf, cap, "in %llu of %llu values (first at index %llu: %.9g vs %.9g)", (unsigned long long)c->n_diff,
             (unsigned long long)n, (unsigned long long)c->first, c->a, c->b);
    return buf;
}

