/* Manifest rendering, parsing and checking (see manifest.h). */
#include "io/manifest.h"
#include "util/json_in.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

dsv4_hash128 dsv4_xxh128(const void *data, size_t n)
{
    static const char empty[1];
    XXH128_hash_t h = XXH3_128bits(n ? data : empty, n);
    return (dsv4_hash128){.hi = h.high64, .lo = h.low64};
}

void dsv4_hash128_hex(dsv4_hash128 h, char out[33])
{
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.hi, (unsigned long long)h.lo);
}

/* The "calibration" section: one layer per line, each compact with sorted keys and ASCII. */
static int render_calibration(const json_t *c, dsv4_jbuf *out, dsv4_err *e)
{
    if (!json_is_object(c))
        return dsv4_fail(e, "manifest: the calibration section must be an object of layers");
    size_t n = json_object_size(c), k = 0;
    const char **keys = calloc(n ? n : 1, sizeof *keys);
    if (!keys)
        return dsv4_fail_rt(e, "manifest: out of memory");
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)c, key, val)
        keys[k++] = key;
    qsort(keys, n, sizeof *keys, cmp_str);
    dsv4_jbuf_puts(out, ",\n  \"calibration\": {");
    for (k = 0; k < n; k++) {
        char *s = json_dumps(json_object_get(c, keys[k]), JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
        if (!s) {
            dsv4_fail_rt(e, "manifest: cannot render the calibration of %s", keys[k]);
            free(keys);
            return -1;
        }
        dsv4_jbuf_puts(out, k ? ",\n    " : "\n    ");
        dsv4_jbuf_str_ascii(out, keys[k]);
        dsv4_jbuf_puts(out, ": ");
        dsv4_jbuf_puts(out, s);
        free(s);
    }
    dsv4_jbuf_puts(out, n ? "\n  }" : "}");
    free(keys);
    return 0;
}

int dsv4_manifest_render(const dsv4_st_plan *p, const dsv4_hash128 *hashes, const json_t *calibration,
                         dsv4_jbuf *out, dsv4_err *e)
{
    if (!p->finished)
        return dsv4_fail(e, "manifest: the plan is not finished");
    dsv4_jbuf_printf(out, "{\n  \"format\": \"dsv4-manifest\",\n  \"version\": 1,\n  \"hash\": "
                     "\"xxh3-128\",\n  \"total_size\": %llu,\n  \"files\": {",
                     (unsigned long long)p->total_bytes);
    for (size_t s = 0; s < p->n_shards; s++) {
        const dsv4_st_plan_shard *sh = &p->shards[s];
        dsv4_jbuf_puts(out, s ? ",\n    " : "\n    ");
        dsv4_jbuf_str_ascii(out, sh->name);
        dsv4_jbuf_printf(out, ": {\"size\": %llu, \"header_len\": %llu, \"tensors\": %zu}",
                         (unsigned long long)sh->file_bytes, (unsigned long long)sh->header_len, sh->n);
    }
    dsv4_jbuf_puts(out, "\n  },\n  \"tensors\": {");
    for (size_t k = 0; k < p->n; k++) {
        size_t i = p->by_name[k];
        const dsv4_st_plan_tensor *t = &p->tensors[i];
        char hex[33];
        dsv4_hash128_hex(hashes[i], hex);
        dsv4_jbuf_puts(out, k ? ",\n    " : "\n    ");
        dsv4_jbuf_str_ascii(out, t->name);
        dsv4_jbuf_puts(out, ": {\"file\": ");
        dsv4_jbuf_str_ascii(out, p->shards[t->shard].name);
        dsv4_jbuf_printf(out, ", \"dtype\": \"%s\", \"shape\": [", dsv4_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++)
            dsv4_jbuf_printf(out, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        dsv4_jbuf_printf(out, "], \"nbytes\": %llu, \"data_offsets\": [%llu, %llu], \"xxh3_128\": \"%s\"}",
                         (unsigned long long)t->nbytes, (unsigned long long)t->begin,
                         (unsigned long long)t->end, hex);
    }
    dsv4_jbuf_puts(out, p->n ? "\n  }" : "}");
    if (calibration && render_calibration(calibration, out, e))
        return -1;
    dsv4_jbuf_puts(out, "\n}\n");
    return out->oom ? dsv4_fail_rt(e, "manifest: out of memory") : 0;
}

void dsv4_manifest_free(dsv4_manifest *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].name);
        free(m->v[i].file);
    }
    free(m->v);
    json_decref(m->calibration);
    memset(m, 0, sizeof *m);
}

static int parse_hex128(const char *s, dsv4_hash128 *h)
{
    if (strlen(s) != 32 || strspn(s, "0123456789abcdef") != 32)
        return -1;
    char part[17];
    memcpy(part, s, 16);
    part[16] = 0;
    h->hi = strtoull(part, NULL, 16);
    memcpy(part, s + 16, 16);
    h->lo = strtoull(part, NULL, 16);
    return 0;
}

static int parse_entry(const char *path, const char *name, json_t *v, dsv4_manifest_entry *en,
                       dsv4_err *e)
{
    json_t *file = json_object_get(v, "file"), *dt = json_object_get(v, "dtype"),
           *sh = json_object_get(v, "shape"), *nb = json_object_get(v, "nbytes"),
           *hx = json_object_get(v, "xxh3_128");
    if (!json_is_object(v) || !json_is_string(file) || !json_is_string(dt) || !json_is_array(sh) ||
        !json_is_integer(nb) || json_integer_value(nb) < 0 || !json_is_string(hx))
        return dsv4_fail(e, "%s: tensor '%s': expected an object with string \"file\", \"dtype\", "
                         "\"xxh3_128\", array \"shape\" and integer \"nbytes\"", path, name);
    en->dtype = dsv4_dtype_parse(json_string_value(dt), json_string_length(dt));
    if (en->dtype == DSV4_DTYPE_INVALID)
        return dsv4_fail(e, "%s: tensor '%s': unknown dtype \"%s\"", path, name, json_string_value(dt));
    if (json_array_size(sh) > DSV4_MAX_DIMS)
        return dsv4_fail(e, "%s: tensor '%s': shape has more than %d dimensions", path, name,
                         DSV4_MAX_DIMS);
    en->ndim = (int)json_array_size(sh);
    for (int d = 0; d < en->ndim; d++) {
        json_t *x = json_array_get(sh, (size_t)d);
        if (!json_is_integer(x) || json_integer_value(x) < 0)
            return dsv4_fail(e, "%s: tensor '%s': shape[%d] is not a non-negative integer", path, name, d);
        en->shape[d] = json_integer_value(x);
    }
    en->nbytes = (uint64_t)json_integer_value(nb);
    if (parse_hex128(json_string_value(hx), &en->hash))
        return dsv4_fail(e, "%s: tensor '%s': \"xxh3_128\" must be 32 lowercase hex digits", path, name);
    en->file = strdup(json_string_value(file));
    return en->file ? 0 : dsv4_fail_rt(e, "%s: out of memory", path);
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const dsv4_manifest_entry *)a)->name, ((const dsv4_manifest_entry *)b)->name);
}

int dsv4_manifest_parse(const char *json, size_t len, const char *path, dsv4_manifest *m, dsv4_err *e)
{
    memset(m, 0, sizeof *m);
    json_t *root = dsv4_json_parse(json, len, path, NULL, e);
    if (!root)
        return -1;
    int rc = -1;
    json_t *fmt = json_object_get(root, "format"), *hash = json_object_get(root, "hash"),
           *ts = json_object_get(root, "total_size"), *tensors = json_object_get(root, "tensors");
    if (!json_is_object(root) || !json_is_string(fmt) || strcmp(json_string_value(fmt), "dsv4-manifest") ||
        !json_is_string(hash) || strcmp(json_string_value(hash), "xxh3-128") ||
        !json_is_integer(ts) || json_integer_value(ts) < 0 || !json_is_object(tensors)) {
        dsv4_fail(e, "%s: expected a dsv4-manifest object with \"hash\": \"xxh3-128\", an integer "
                  "\"total_size\" and a \"tensors\" object", path);
        goto done;
    }
    m->total_size = (uint64_t)json_integer_value(ts);
    size_t n = json_object_size(tensors);
    if (!(m->v = calloc(n ? n : 1, sizeof *m->v))) {
        dsv4_fail_rt(e, "%s: out of memory", path);
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(tensors, key, val) {
        dsv4_manifest_entry *en = &m->v[m->n];
        if (!(en->name = strdup(key))) {
            dsv4_fail_rt(e, "%s: out of memory", path);
            goto done;
        }
        m->n++;
        if (parse_entry(path, key, val, en, e))
            goto done;
    }
    qsort(m->v, m->n, sizeof *m->v, cmp_entry);
    json_t *cal = json_object_get(root, "calibration");
    if (cal && !json_is_object(cal)) {
        dsv4_fail(e, "%s: \"calibration\" must be an object of layers", path);
        goto done;
    }
    m->calibration = json_incref(cal);
    rc = 0;
done:
    json_decref(root);
    if (rc)
        dsv4_manifest_free(m);
    return rc;
}

int dsv4_manifest_load(const char *dir, dsv4_manifest *m, dsv4_err *e)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, DSV4_MANIFEST_NAME);
    char *buf;
    size_t len;
    if (dsv4_read_file(path, (size_t)1 << 30, &buf, &len, e))
        return -1;
    int rc = dsv4_manifest_parse(buf, len, path, m, e);
    free(buf);
    return rc;
}

static int same_shape(const dsv4_manifest_entry *en, const dsv4_tensor *t)
{
    if (en->ndim != t->ndim)
        return 0;
    for (int d = 0; d < t->ndim; d++)
        if (en->shape[d] != t->shape[d])
            return 0;
    return 1;
}

int dsv4_manifest_verify(const dsv4_manifest *m, const dsv4_ckpt *c, dsv4_err *e)
{
    for (size_t i = 0; i < m->n; i++) {
        const dsv4_manifest_entry *en = &m->v[i];
        const dsv4_tensor *t = dsv4_ckpt_find(c, en->name);
        if (!t)
            return dsv4_fail(e, "%s: tensor '%s' is in the manifest but in no file of the checkpoint",
                             c->dir, en->name);
        const char *path = dsv4_ckpt_file_of(c, t), *slash = strrchr(path, '/');
        const char *base = slash ? slash + 1 : path;
        char want[256], got[256];
        if (strcmp(base, en->file))
            return dsv4_fail(e, "%s: tensor '%s': the manifest records it in %s", path, en->name, en->file);
        if (t->dtype != en->dtype || !same_shape(en, t) || dsv4_tensor_nbytes(t) != en->nbytes) {
            dsv4_tensor tmp = {.ndim = en->ndim};
            memcpy(tmp.shape, en->shape, sizeof tmp.shape);
            return dsv4_fail(e, "%s: tensor '%s' is %s %s (%llu bytes); the manifest records %s %s "
                             "(%llu bytes)", path, en->name, dsv4_dtype_name(t->dtype),
                             dsv4_shape_str(t, got, sizeof got), (unsigned long long)dsv4_tensor_nbytes(t),
                             dsv4_dtype_name(en->dtype), dsv4_shape_str(&tmp, want, sizeof want),
                             (unsigned long long)en->nbytes);
        }
        dsv4_hash128 h = dsv4_xxh128(t->data, dsv4_tensor_nbytes(t));
        if (h.hi != en->hash.hi || h.lo != en->hash.lo) {
            char hw[33], hg[33];
            dsv4_hash128_hex(en->hash, hw);
            dsv4_hash128_hex(h, hg);
            return dsv4_fail(e, "%s: tensor '%s': bytes hash to xxh3-128 %s, the manifest records %s",
                             path, en->name, hg, hw);
        }
    }
    if (c->n != m->n) {
        for (size_t i = 0; i < c->n; i++) {
            dsv4_manifest_entry key = {.name = c->by_name[i]->name};
            if (!bsearch(&key, m->v, m->n, sizeof *m->v, cmp_entry))
                return dsv4_fail(e, "%s: holds tensor '%s', which the manifest does not list",
                                 dsv4_ckpt_file_of(c, c->by_name[i]), c->by_name[i]->name);
        }
        return dsv4_fail(e, "%s: %zu tensors, the manifest lists %zu", c->dir, c->n, m->n);
    }
    return 0;
}
