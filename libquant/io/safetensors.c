/* safetensors header validation and file mapping (see safetensors.h and
 * spec/formats_algorithms.md §1). Every refusal names the file and, where there is one, the
 * tensor, and says what was expected. */
#include "io/safetensors.h"
#include "util/json_in.h"
#include "io/json_out.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

uint64_t dsv4_tensor_numel(const dsv4_tensor *t)
{
    uint64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (uint64_t)t->shape[i];
    return n;
}

char *dsv4_dims_str(const int64_t *shape, int ndim, char *buf, size_t cap)
{
    size_t off = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && off < cap; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (off < cap)
        snprintf(buf + off, cap - off, "]");
    return buf;
}

char *dsv4_shape_str(const dsv4_tensor *t, char *buf, size_t cap)
{
    return dsv4_dims_str(t->shape, t->ndim, buf, cap);
}

/* A JSON integer that is non-negative and fits in int64. */
static int get_u64(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int parse_entry(const char *path, const char *name, json_t *v, uint64_t data_size,
                       dsv4_tensor *t, dsv4_err *e)
{
    if (!json_is_object(v))
        return dsv4_fail(e, "%s: tensor '%s': header entry is not an object", path, name);
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
            return dsv4_fail(e, "%s: tensor '%s': unexpected key '%s' (expected only dtype, shape, "
                             "data_offsets)", path, name, key);
    }
    json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"),
           *off = json_object_get(v, "data_offsets");
    if (!json_is_string(dt))
        return dsv4_fail(e, "%s: tensor '%s': missing or non-string \"dtype\"", path, name);
    t->dtype = dsv4_dtype_parse(json_string_value(dt), json_string_length(dt));
    if (t->dtype == DSV4_DTYPE_INVALID)
        return dsv4_fail(e, "%s: tensor '%s': unknown dtype \"%s\"", path, name, json_string_value(dt));
    if (!json_is_array(sh))
        return dsv4_fail(e, "%s: tensor '%s': missing or non-array \"shape\"", path, name);
    if (json_array_size(sh) > DSV4_MAX_DIMS)
        return dsv4_fail(e, "%s: tensor '%s': shape has %zu dimensions, at most %d supported", path,
                         name, json_array_size(sh), DSV4_MAX_DIMS);
    t->ndim = (int)json_array_size(sh);
    uint64_t numel = 1;
    int overflow = 0;
    for (int i = 0; i < t->ndim; i++) {
        uint64_t d;
        if (get_u64(json_array_get(sh, (size_t)i), &d))
            return dsv4_fail(e, "%s: tensor '%s': shape[%d] is not a non-negative integer", path, name, i);
        t->shape[i] = (int64_t)d;
        if (d && numel > UINT64_MAX / d)
            overflow = 1;
        numel *= d;
    }
    if (!json_is_array(off) || json_array_size(off) != 2 || get_u64(json_array_get(off, 0), &t->begin) ||
        get_u64(json_array_get(off, 1), &t->end))
        return dsv4_fail(e, "%s: tensor '%s': \"data_offsets\" must be [begin, end] with non-negative "
                         "integers", path, name);
    if (t->end < t->begin)
        return dsv4_fail(e, "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin", path,
                         name, (unsigned long long)t->begin, (unsigned long long)t->end);
    int64_t want = overflow ? -1 : dsv4_dtype_nbytes(t->dtype, numel);
    char sbuf[256];
    if (overflow || (want < 0 && numel > UINT64_MAX / 64))
        return dsv4_fail(e, "%s: tensor '%s': shape %s of %s overflows a 64-bit byte count", path, name,
                         dsv4_shape_str(t, sbuf, sizeof sbuf), dsv4_dtype_name(t->dtype));
    if (want < 0)
        return dsv4_fail(e, "%s: tensor '%s': shape %s of %s is not a whole number of bytes", path, name,
                         dsv4_shape_str(t, sbuf, sizeof sbuf), dsv4_dtype_name(t->dtype));
    if ((uint64_t)want != t->end - t->begin)
        return dsv4_fail(e, "%s: tensor '%s': shape %s of %s needs %lld bytes but data_offsets "
                         "[%llu, %llu] span %llu", path, name, dsv4_shape_str(t, sbuf, sizeof sbuf),
                         dsv4_dtype_name(t->dtype), (long long)want, (unsigned long long)t->begin,
                         (unsigned long long)t->end, (unsigned long long)(t->end - t->begin));
    if (t->end > data_size)
        return dsv4_fail(e, "%s: tensor '%s': data_offsets end at byte %llu but the data region has "
                         "only %llu bytes (truncated file?)", path, name,
                         (unsigned long long)t->end, (unsigned long long)data_size);
    return 0;
}

static int by_offset(const void *a, const void *b)
{
    const dsv4_tensor *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int parse_metadata(const char *path, json_t *v, dsv4_st_file *out, dsv4_err *e)
{
    if (!json_is_object(v))
        return dsv4_fail(e, "%s: \"__metadata__\" is not an object of strings", path);
    size_t n = json_object_size(v);
    out->meta_keys = calloc(n ? n : 1, sizeof(char *));
    out->meta_vals = calloc(n ? n : 1, sizeof(char *));
    if (!out->meta_keys || !out->meta_vals)
        return dsv4_fail_rt(e, "%s: out of memory", path);
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        if (!json_is_string(val))
            return dsv4_fail(e, "%s: \"__metadata__\" value for key '%s' is not a string", path, key);
        out->meta_keys[out->n_meta] = strdup(key);
        out->meta_vals[out->n_meta] = strdup(json_string_value(val));
        out->n_meta++;
        if (!out->meta_keys[out->n_meta - 1] || !out->meta_vals[out->n_meta - 1])
            return dsv4_fail_rt(e, "%s: out of memory", path);
    }
    return 0;
}

int dsv4_st_parse_header(const char *json, size_t len, uint64_t data_size, const char *path,
                         dsv4_st_file *out, dsv4_err *e)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    if (!dsv4_utf8_valid(json, len))
        return dsv4_fail(e, "%s: header is not valid UTF-8", path);
    json_t *root = dsv4_json_parse(json, len, path, "header", e);
    if (!root)
        return -1;
    int rc = -1;
    if (!json_is_object(root)) {
        dsv4_fail(e, "%s: header is not a JSON object", path);
        goto done;
    }
    size_t cap = json_object_size(root);
    out->tensors = calloc(cap ? cap : 1, sizeof *out->tensors);
    if (!out->tensors) {
        dsv4_fail_rt(e, "%s: out of memory", path);
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            if (parse_metadata(path, val, out, e))
                goto done;
            continue;
        }
        if (!*key) {
            dsv4_fail(e, "%s: a tensor has an empty name", path);
            goto done;
        }
        dsv4_tensor *t = &out->tensors[out->n];
        if (!(t->name = strdup(key))) {
            dsv4_fail_rt(e, "%s: out of memory", path);
            goto done;
        }
        out->n++;
        if (parse_entry(path, key, val, data_size, t, e))
            goto done;
    }
    qsort(out->tensors, out->n, sizeof *out->tensors, by_offset);
    uint64_t pos = 0;
    for (size_t i = 0; i < out->n; i++) {
        const dsv4_tensor *t = &out->tensors[i];
        if (t->begin > pos) {
            dsv4_fail(e, "%s: tensor '%s' starts at byte %llu of the data region but the previous "
                      "tensor ends at %llu: a gap of %llu bytes (offsets must tile the data region)",
                      path, t->name, (unsigned long long)t->begin, (unsigned long long)pos,
                      (unsigned long long)(t->begin - pos));
            goto done;
        }
        if (t->begin < pos) {
            dsv4_fail(e, "%s: tensor '%s' starts at byte %llu, inside the previous tensor '%s' which "
                      "ends at %llu (overlapping data_offsets)", path, t->name,
                      (unsigned long long)t->begin, out->tensors[i - 1].name, (unsigned long long)pos);
            goto done;
        }
        pos = t->end;
    }
    if (pos != data_size) {
        dsv4_fail(e, "%s: the data region has %llu bytes but the tensors end at byte %llu: %llu "
                  "trailing bytes", path, (unsigned long long)data_size, (unsigned long long)pos,
                  (unsigned long long)(data_size - pos));
        goto done;
    }
    rc = 0;
done:
    json_decref(root);
    if (rc)
        dsv4_st_close(out);
    return rc;
}

int dsv4_st_open(const char *path, dsv4_st_file *out, dsv4_err *e)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? dsv4_fail(e, "%s: no such file", path)
                               : dsv4_fail_rt(e, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return dsv4_fail(e, "%s: not a regular file", path);
    }
    uint64_t size = (uint64_t)st.st_size, n = 0;
    uint8_t lenbuf[8];
    if (size < 8) {
        close(fd);
        return dsv4_fail(e, "%s: file is %llu bytes, shorter than the 8-byte header length", path,
                         (unsigned long long)size);
    }
    if (pread(fd, lenbuf, 8, 0) != 8) {
        close(fd);
        return dsv4_fail_rt(e, "%s: cannot read the header length: %s", path, strerror(errno));
    }
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | lenbuf[i];
    if (n > DSV4_ST_MAX_HEADER) {
        close(fd);
        return dsv4_fail(e, "%s: header length %llu exceeds the 100,000,000-byte limit", path,
                         (unsigned long long)n);
    }
    if (8 + n > size) {
        close(fd);
        return dsv4_fail(e, "%s: header length %llu runs past the end of the %llu-byte file", path,
                         (unsigned long long)n, (unsigned long long)size);
    }
    const uint8_t *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        close(fd);
        return dsv4_fail_rt(e, "%s: cannot map: %s", path, strerror(errno));
    }
    if (n == 0 || map[8] != '{') {
        munmap((void *)map, size);
        close(fd);
        return dsv4_fail(e, "%s: header does not begin with '{'", path);
    }
    if (dsv4_st_parse_header((const char *)map + 8, n, size - 8 - n, path, out, e)) {
        munmap((void *)map, size);
        close(fd);
        return -1;
    }
    out->fd = fd;
    out->map = map;
    out->size = size;
    out->header_len = n;
    out->path = strdup(path);
    for (size_t i = 0; i < out->n; i++)
        out->tensors[i].data = map + 8 + n + out->tensors[i].begin;
    return 0;
}

void dsv4_st_close(dsv4_st_file *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        free(f->tensors[i].name);
    free(f->tensors);
    for (size_t i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_vals[i]);
    }
    free(f->meta_keys);
    free(f->meta_vals);
    if (f->map)
        munmap((void *)f->map, f->size);
    if (f->fd >= 0 && f->map)
        close(f->fd);
    free(f->path);
    memset(f, 0, sizeof *f);
    f->fd = -1;
}

const dsv4_tensor *dsv4_st_find(const dsv4_st_file *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->tensors[i].name, name))
            return &f->tensors[i];
    return NULL;
}

const char *dsv4_st_meta(const dsv4_st_file *f, const char *key)
{
    for (size_t i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_keys[i], key))
            return f->meta_vals[i];
    return NULL;
}
