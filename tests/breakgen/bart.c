/* The editable artifact (see bart.h): opening a clean artifact, editing its tensor list, and the
 * small helpers modes share (BF16 views, inventory lookups, seeded random numbers). Writing is in
 * bart_write.c. */
#include "bart.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/fp.h"
#include "util/json_in.h"

static int cmp_tensor(const void *x, const void *y)
{
    return strcmp(((const bt_tensor *)x)->name, ((const bt_tensor *)y)->name);
}

static void sort_tensors(bt_art *a)
{
    qsort(a->t, a->n, sizeof *a->t, cmp_tensor);
}

static int grow(bt_art *a, dsv4_err *e)
{
    if (a->n < a->cap)
        return 0;
    size_t cap = a->cap ? 2 * a->cap : 256;
    bt_tensor *t = realloc(a->t, cap * sizeof *t);
    if (!t)
        return dsv4_fail_rt(e, "%s: out of memory", a->dir);
    a->t = t;
    a->cap = cap;
    return 0;
}

int bt_open(bt_art *a, const char *clean_dir, dsv4_err *e)
{
    memset(a, 0, sizeof *a);
    if (!(a->dir = strdup(clean_dir)))
        return dsv4_fail_rt(e, "%s: out of memory", clean_dir);
    if (dsv4_ckpt_open(clean_dir, 0, &a->ck, e))
        return dsv4_wrap(e, "%s: the clean artifact does not open strictly (expected dsv4-quant's output)",
                         clean_dir);
    if (!a->ck.has_index)
        return dsv4_fail(e, "%s: no %s: expected an artifact written by dsv4-quant (numbered shards + index)",
                         clean_dir, DSV4_INDEX_NAME);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", clean_dir);
    char *buf;
    size_t len;
    if (dsv4_read_file(path, DSV4_MAX_CONFIG_BYTES, &buf, &len, e))
        return -1;
    a->config = dsv4_json_parse(buf, len, path, "config", e);
    int rc = a->config ? dsv4_config_parse(buf, len, path, &a->cfg, e) : -1;
    free(buf);
    if (rc || dsv4_inventory_build(&a->cfg, &a->inv, e))
        return -1;
    for (size_t i = 0; i < a->ck.n; i++) {
        const dsv4_tensor *s = a->ck.by_name[i];
        if (grow(a, e))
            return -1;
        bt_tensor *t = &a->t[a->n];
        memset(t, 0, sizeof *t);
        if (!(t->name = strdup(s->name)))
            return dsv4_fail_rt(e, "%s: out of memory", clean_dir);
        a->n++;
        t->dtype = s->dtype;
        t->ndim = s->ndim;
        memcpy(t->shape, s->shape, sizeof t->shape);
        t->nbytes = dsv4_tensor_nbytes(s);
        t->data = s->data;
        t->orig = s;
    }
    sort_tensors(a);
    return 0;
}

static void tensor_free(bt_tensor *t)
{
    free(t->name);
    free(t->owned);
}

void bt_close(bt_art *a)
{
    for (size_t i = 0; i < a->n; i++)
        tensor_free(&a->t[i]);
    free(a->t);
    json_decref(a->config);
    dsv4_inventory_free(&a->inv);
    dsv4_ckpt_close(&a->ck);
    free(a->dir);
    memset(a, 0, sizeof *a);
}

bt_tensor *bt_find(bt_art *a, const char *name)
{
    bt_tensor key = {.name = (char *)name};
    return bsearch(&key, a->t, a->n, sizeof *a->t, cmp_tensor);
}

int bt_drop(bt_art *a, const char *name, dsv4_err *e)
{
    bt_tensor *t = bt_find(a, name);
    if (!t)
        return dsv4_fail(e, "%s: tensor '%s' is not in the artifact (cannot drop it)", a->dir, name);
    tensor_free(t);
    size_t i = (size_t)(t - a->t);
    memmove(t, t + 1, (a->n - i - 1) * sizeof *t);
    a->n--;
    return 0;
}

int bt_rename(bt_art *a, const char *name, const char *new_name, dsv4_err *e)
{
    if (bt_find(a, new_name))
        return dsv4_fail(e, "%s: cannot rename '%s' to '%s': that name is taken", a->dir, name, new_name);
    bt_tensor *t = bt_find(a, name);
    if (!t)
        return dsv4_fail(e, "%s: tensor '%s' is not in the artifact (cannot rename it)", a->dir, name);
    char *n = strdup(new_name);
    if (!n)
        return dsv4_fail_rt(e, "%s: out of memory", a->dir);
    free(t->name);
    t->name = n;
    sort_tensors(a);
    return 0;
}

static int set_shape(bt_tensor *t, dsv4_dtype dtype, int ndim, const int64_t *shape, const char *name,
                     dsv4_err *e)
{
    if (ndim < 0 || ndim > DSV4_MAX_DIMS)
        return dsv4_fail(e, "tensor '%s': %d dimensions (at most %d)", name, ndim, DSV4_MAX_DIMS);
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= (uint64_t)shape[i];
    int64_t nb = dsv4_dtype_nbytes(dtype, numel);
    if (nb < 0)
        return dsv4_fail(e, "tensor '%s': the shape is not a whole number of bytes of %s", name,
                         dsv4_dtype_name(dtype));
    t->dtype = dtype;
    t->ndim = ndim;
    memset(t->shape, 0, sizeof t->shape);
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->nbytes = (uint64_t)nb;
    return 0;
}

int bt_put(bt_art *a, const char *name, dsv4_dtype dtype, int ndim, const int64_t *shape, uint8_t *data,
           dsv4_err *e)
{
    bt_tensor nt = {0};
    if (set_shape(&nt, dtype, ndim, shape, name, e)) {
        free(data);
        return -1;
    }
    bt_tensor *t = bt_find(a, name);
    if (!t) {
        if (grow(a, e)) {
            free(data);
            return -1;
        }
        t = &a->t[a->n];
        memset(t, 0, sizeof *t);
        if (!(t->name = strdup(name))) {
            free(data);
            return dsv4_fail_rt(e, "%s: out of memory", a->dir);
        }
        a->n++;
    }
    free(t->owned);
    t->dtype = nt.dtype;
    t->ndim = nt.ndim;
    memcpy(t->shape, nt.shape, sizeof t->shape);
    t->nbytes = nt.nbytes;
    t->owned = data;
    t->data = data;
    t->orig = NULL;
    sort_tensors(a);
    return 0;
}

int bt_put_view(bt_art *a, const char *name, const dsv4_tensor *from, dsv4_err *e)
{
    uint8_t *copy = malloc(dsv4_tensor_nbytes(from) ? dsv4_tensor_nbytes(from) : 1);
    if (!copy)
        return dsv4_fail_rt(e, "%s: out of memory", name);
    memcpy(copy, from->data, dsv4_tensor_nbytes(from));
    return bt_put(a, name, from->dtype, from->ndim, from->shape, copy, e);
}

int bt_reshape(bt_art *a, const char *name, dsv4_dtype dtype, int ndim, const int64_t *shape, dsv4_err *e)
{
    bt_tensor *t = bt_find(a, name);
    if (!t)
        return dsv4_fail(e, "%s: tensor '%s' is not in the artifact (cannot reshape it)", a->dir, name);
    bt_tensor nt = {0};
    if (set_shape(&nt, dtype, ndim, shape, name, e))
        return -1;
    if (nt.nbytes != t->nbytes)
        return dsv4_fail(e, "tensor '%s': the new shape holds %llu bytes, not %llu", name,
                         (unsigned long long)nt.nbytes, (unsigned long long)t->nbytes);
    t->dtype = nt.dtype;
    t->ndim = nt.ndim;
    memcpy(t->shape, nt.shape, sizeof t->shape);
    return 0;
}

uint16_t *bt_bf16_of(const bt_tensor *t, size_t *n, dsv4_err *e)
{
    uint64_t numel = 1;
    for (int i = 0; i < t->ndim; i++)
        numel *= (uint64_t)t->shape[i];
    if (t->dtype != DSV4_BF16 && t->dtype != DSV4_F32)
        return dsv4_fail(e, "tensor '%s' is %s: expected BF16 or F32 values", t->name, dsv4_dtype_name(t->dtype)),
               NULL;
    uint16_t *out = malloc(numel ? numel * 2 : 2);
    if (!out)
        return dsv4_fail_rt(e, "tensor '%s': out of memory", t->name), NULL;
    for (uint64_t i = 0; i < numel; i++) {
        if (t->dtype == DSV4_BF16) {
            memcpy(&out[i], t->data + 2 * i, 2);
        } else {
            float f;
            memcpy(&f, t->data + 4 * i, 4);
            out[i] = dsv4_f32_to_bf16(f);
        }
    }
    *n = (size_t)numel;
    return out;
}

const dsv4_inv_tensor *bt_inv(const bt_art *a, const char *name)
{
    return dsv4_inventory_find(&a->inv, name);
}

uint64_t bt_seed(const char *s)
{
    uint64_t h = 0x9E3779B97F4A7C15ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001B3ull;
    return h;
}

uint64_t bt_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
