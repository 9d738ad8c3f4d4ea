/* Sharded checkpoint opening and index validation (see checkpoint.h, spec/formats_algorithms.md
 * §1.5). */
#include "io/checkpoint.h"
#include "util/json_in.h"
#include "util/sorted.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int dsv4_read_file(const char *path, size_t max_bytes, char **out, size_t *len, dsv4_err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? dsv4_fail(e, "%s: no such file", path)
                               : dsv4_fail_rt(e, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (!buf) {
            fclose(f);
            return dsv4_fail_rt(e, "%s: out of memory", path);
        }
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        if (cap >= max_bytes) {
            free(buf);
            fclose(f);
            return dsv4_fail(e, "%s: larger than the %zu-byte limit for this kind of file", path,
                             max_bytes);
        }
        cap *= 2;
        char *nb = realloc(buf, cap + 1);
        if (!nb)
            free(buf);
        buf = nb;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return dsv4_fail_rt(e, "%s: read error", path);
    }
    buf[n] = 0;
    *out = buf;
    if (len)
        *len = n;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int valid_shard_name(const char *s)
{
    size_t n = strlen(s);
    const char *ext = ".safetensors";
    size_t m = strlen(ext);
    return n > m && !strchr(s, '/') && !strchr(s, '\\') && strcmp(s + n - m, ext) == 0 && s[0] != '.';
}

int dsv4_index_parse(const char *json, size_t len, const char *path, dsv4_index *out, dsv4_err *e)
{
    memset(out, 0, sizeof *out);
    json_t *root = dsv4_json_parse(json, len, path, NULL, e);
    if (!root)
        return -1;
    int rc = -1;
    json_t *wm = json_object_get(root, "weight_map"), *md = json_object_get(root, "metadata");
    if (!json_is_object(root) || !json_is_object(wm)) {
        dsv4_fail(e, "%s: expected an object with a \"weight_map\" object", path);
        goto done;
    }
    if (md && !json_is_null(md)) {
        if (!json_is_object(md)) {
            dsv4_fail(e, "%s: \"metadata\" is not an object", path);
            goto done;
        }
        json_t *ts = json_object_get(md, "total_size");
        if (ts) {
            double d = json_is_real(ts) ? json_real_value(ts) : 0;
            if (json_is_integer(ts) && json_integer_value(ts) >= 0)
                out->total_size = (uint64_t)json_integer_value(ts);
            else if (json_is_real(ts) && d >= 0 && d < 1.8e19 && d == (double)(uint64_t)d)
                out->total_size = (uint64_t)d;
            else {
                dsv4_fail(e, "%s: \"metadata.total_size\" is not a non-negative integer", path);
                goto done;
            }
            out->has_total_size = 1;
        }
    }
    size_t n = json_object_size(wm);
    out->names = calloc(n ? n : 1, sizeof(char *));
    char **files = calloc(n ? n : 1, sizeof(char *));
    out->files = calloc(n ? n : 1, sizeof(char *));
    out->shard_names = calloc(n ? n : 1, sizeof(char *));
    if (!out->names || !files || !out->files || !out->shard_names) {
        free(files);
        dsv4_fail_rt(e, "%s: out of memory", path);
        goto done;
    }
    /* Collect (name, file) pairs, sort them by name, and intern the file names. */
    const char *key;
    json_t *val;
    size_t i = 0;
    char **pairs = calloc(n ? 2 * n : 2, sizeof(char *));
    if (!pairs) {
        free(files);
        dsv4_fail_rt(e, "%s: out of memory", path);
        goto done;
    }
    json_object_foreach(wm, key, val) {
        if (!json_is_string(val) || !valid_shard_name(json_string_value(val))) {
            dsv4_fail(e, "%s: weight_map entry '%s' must name a .safetensors file in the same folder",
                      path, key);
            free(pairs);
            free(files);
            goto done;
        }
        pairs[2 * i] = (char *)key;
        pairs[2 * i + 1] = (char *)json_string_value(val);
        files[i] = pairs[2 * i + 1];
        i++;
    }
    qsort(pairs, n, 2 * sizeof(char *), cmp_str);
    qsort(files, n, sizeof(char *), cmp_str);
    for (i = 0; i < n; i++)
        if (i == 0 || strcmp(files[i], files[i - 1]))
            out->shard_names[out->n_shards++] = strdup(files[i]);
    for (i = 0; i < n; i++) {
        out->names[i] = strdup(pairs[2 * i]);
        char **hit = bsearch(&pairs[2 * i + 1], out->shard_names, out->n_shards, sizeof(char *), cmp_str);
        out->files[i] = *hit;
        out->n++;
    }
    free(pairs);
    free(files);
    rc = 0;
done:
    json_decref(root);
    if (rc)
        dsv4_index_free(out);
    return rc;
}

void dsv4_index_free(dsv4_index *ix)
{
    for (size_t i = 0; i < ix->n; i++)
        free(ix->names[i]);
    for (size_t i = 0; i < ix->n_shards; i++)
        free(ix->shard_names[i]);
    free(ix->names);
    free(ix->files);
    free(ix->shard_names);
    memset(ix, 0, sizeof *ix);
}

static const char *index_name_at(const void *ctx, size_t i)
{
    return ((const dsv4_index *)ctx)->names[i];
}

const char *dsv4_index_lookup(const dsv4_index *ix, const char *name)
{
    size_t i = dsv4_find_name(ix->n, index_name_at, ix, name);
    return i == DSV4_NOT_FOUND ? NULL : ix->files[i];
}

static int cmp_tensor_name(const void *a, const void *b)
{
    const dsv4_tensor *x = *(const dsv4_tensor *const *)a, *y = *(const dsv4_tensor *const *)b;
    int r = strcmp(x->name, y->name);
    return r ? r : (x->file > y->file) - (x->file < y->file); /* qsort is not stable */
}

/* Records an index inconsistency: a problem in lenient mode, an error otherwise. */
static int problem(dsv4_ckpt *c, int flags, dsv4_err *e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int problem(dsv4_ckpt *c, int flags, dsv4_err *e, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (!(flags & DSV4_CKPT_LENIENT))
        return dsv4_fail(e, "%s", buf);
    char **np = realloc(c->problems, (c->n_problems + 1) * sizeof(char *));
    if (!np)
        return dsv4_fail_rt(e, "out of memory");
    c->problems = np;
    c->problems[c->n_problems++] = strdup(buf);
    return 0;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

/* Lists *.safetensors files of a folder, sorted. */
static int list_shards(const char *dir, char ***out, size_t *n, dsv4_err *e)
{
    DIR *d = opendir(dir);
    if (!d)
        return dsv4_fail(e, "%s: cannot open folder: %s", dir, strerror(errno));
    char **v = NULL;
    size_t k = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || !ends_with(de->d_name, ".safetensors"))
            continue;
        char **nv = realloc(v, (k + 1) * sizeof(char *));
        if (!nv)
            break;
        v = nv;
        v[k++] = strdup(de->d_name);
    }
    closedir(d);
    if (k) /* qsort(NULL, 0, ...) is undefined */
        qsort(v, k, sizeof(char *), cmp_str);
    *out = v;
    *n = k;
    return 0;
}

static int skip_bad(dsv4_ckpt *c, const char *name, const dsv4_err *why, dsv4_err *e)
{
    dsv4_bad_shard *nb = realloc(c->bad_shards, (c->n_bad_shards + 1) * sizeof *nb);
    if (!nb)
        return dsv4_fail_rt(e, "out of memory");
    c->bad_shards = nb;
    nb[c->n_bad_shards].file = strdup(name);
    nb[c->n_bad_shards].why = strdup(why->msg);
    if (!nb[c->n_bad_shards].file || !nb[c->n_bad_shards].why) {
        free(nb[c->n_bad_shards].file);
        free(nb[c->n_bad_shards].why);
        return dsv4_fail_rt(e, "out of memory");
    }
    c->n_bad_shards++;
    return 0;
}

static int open_files(dsv4_ckpt *c, char **names, size_t n, int flags, dsv4_err *e)
{
    c->files = calloc(n ? n : 1, sizeof *c->files);
    if (!c->files)
        return dsv4_fail_rt(e, "out of memory");
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        char *p = join(c->dir, names[i]);
        size_t k = c->n_files;
        dsv4_err why = {0};
        int rc = p ? dsv4_st_open(p, &c->files[k], &why) : dsv4_fail_rt(&why, "out of memory");
        free(p);
        if (rc) {
            if ((flags & DSV4_CKPT_SKIP_BAD) && why.code != DSV4_EXIT_RUNTIME) {
                if (skip_bad(c, names[i], &why, e))
                    return -1;
                continue;
            }
            *e = why;
            return -1;
        }
        c->n_files++;
        for (size_t j = 0; j < c->files[k].n; j++)
            c->files[k].tensors[j].file = (uint32_t)k;
        total += c->files[k].n;
    }
    c->by_name = calloc(total ? total : 1, sizeof *c->by_name);
    if (!c->by_name)
        return dsv4_fail_rt(e, "out of memory");
    for (size_t i = 0; i < c->n_files; i++)
        for (size_t j = 0; j < c->files[i].n; j++) {
            c->by_name[c->n++] = &c->files[i].tensors[j];
            c->data_bytes += dsv4_tensor_nbytes(&c->files[i].tensors[j]);
        }
    qsort(c->by_name, c->n, sizeof *c->by_name, cmp_tensor_name);
    return 0;
}

static int check_index(dsv4_ckpt *c, int flags, dsv4_err *e)
{
    const dsv4_index *ix = &c->index;
    for (size_t i = 0; i + 1 < c->n; i++)
        if (!strcmp(c->by_name[i]->name, c->by_name[i + 1]->name) &&
            problem(c, flags, e, "tensor '%s' is stored twice, in %s and in %s", c->by_name[i]->name,
                    c->files[c->by_name[i]->file].path, c->files[c->by_name[i + 1]->file].path))
            return -1;
    for (size_t i = 0; i < ix->n; i++) {
        const dsv4_tensor *t = dsv4_ckpt_find(c, ix->names[i]);
        if (!t) {
            if (problem(c, flags, e, "%s/%s: the index lists tensor '%s' in %s, but none of the shards it names holds it",
                        c->dir, DSV4_INDEX_NAME, ix->names[i], ix->files[i]))
                return -1;
        } else {
            const char *actual = strrchr(c->files[t->file].path, '/') + 1;
            if (strcmp(actual, ix->files[i]) &&
                problem(c, flags, e, "%s/%s: the index lists tensor '%s' in %s, but it is stored in %s",
                        c->dir, DSV4_INDEX_NAME, ix->names[i], ix->files[i], actual))
                return -1;
        }
    }
    for (size_t i = 0; i < c->n; i++)
        if (!dsv4_index_lookup(ix, c->by_name[i]->name) &&
            problem(c, flags, e, "%s: holds tensor '%s', which the index does not list",
                    c->files[c->by_name[i]->file].path, c->by_name[i]->name))
            return -1;
    if (ix->has_total_size && ix->total_size != c->data_bytes &&
        problem(c, flags, e, "%s/%s: metadata.total_size is %llu but the shards hold %llu bytes of "
                "tensor data", c->dir, DSV4_INDEX_NAME, (unsigned long long)ix->total_size,
                (unsigned long long)c->data_bytes))
        return -1;
    return 0;
}

/* Index present: open the shards it names; note shards in the folder that it does not name
 * (files named model*.safetensors; other .safetensors files, such as token data, are not shards). */
static int open_indexed(dsv4_ckpt *c, const char *index_path, int flags, dsv4_err *e)
{
    char *buf;
    size_t len;
    if (dsv4_read_file(index_path, 1u << 30, &buf, &len, e))
        return -1;
    int rc = dsv4_index_parse(buf, len, index_path, &c->index, e);
    free(buf);
    if (rc)
        return -1;
    c->has_index = 1;
    char **present = NULL;
    size_t n_present = 0;
    if (list_shards(c->dir, &present, &n_present, e))
        return -1;
    char **open_list = calloc(c->index.n_shards + 1, sizeof(char *));
    size_t n_open = 0;
    for (size_t i = 0; i < c->index.n_shards && open_list; i++) {
        const char *s = c->index.shard_names[i];
        if (bsearch(&s, present, n_present, sizeof(char *), cmp_str))
            open_list[n_open++] = c->index.shard_names[i];
        else if (problem(c, flags, e, "%s: the index names shard %s, which does not exist", index_path, s))
            goto fail;
    }
    for (size_t i = 0; i < n_present; i++) {
        const char *s = present[i];
        if (!strncmp(s, "model", 5) &&
            !bsearch(&s, c->index.shard_names, c->index.n_shards, sizeof(char *), cmp_str) &&
            problem(c, DSV4_CKPT_LENIENT, e, "%s/%s: orphan shard, not named by the index", c->dir, s))
            goto fail;
    }
    rc = open_files(c, open_list, n_open, flags, e) || check_index(c, flags, e) ? -1 : 0;
    for (size_t i = 0; i < n_present; i++)
        free(present[i]);
    free(present);
    free(open_list);
    return rc;
fail:
    for (size_t i = 0; i < n_present; i++)
        free(present[i]);
    free(present);
    free(open_list);
    return -1;
}

int dsv4_ckpt_open(const char *path, int flags, dsv4_ckpt *c, dsv4_err *e)
{
    memset(c, 0, sizeof *c);
    int rc = -1;
    if (is_dir(path)) {
        c->dir = strdup(path);
        char *ixp = join(path, DSV4_INDEX_NAME);
        struct stat st;
        if (ixp && stat(ixp, &st) == 0) {
            rc = open_indexed(c, ixp, flags, e);
        } else {
            char **names = NULL;
            size_t n = 0;
            if (list_shards(path, &names, &n, e) == 0) {
                if (n == 0)
                    dsv4_fail(e, "%s: no .safetensors files and no %s", path, DSV4_INDEX_NAME);
                else
                    rc = open_files(c, names, n, flags, e);
                for (size_t i = 0; i < n; i++)
                    free(names[i]);
                free(names);
                for (size_t i = 0; rc == 0 && i + 1 < c->n; i++)
                    if (!strcmp(c->by_name[i]->name, c->by_name[i + 1]->name))
                        rc = problem(c, flags, e, "tensor '%s' is stored twice, in %s and in %s",
                                     c->by_name[i]->name, c->files[c->by_name[i]->file].path,
                                     c->files[c->by_name[i + 1]->file].path);
            }
        }
        free(ixp);
    } else {
        const char *slash = strrchr(path, '/');
        c->dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
        if (ends_with(path, ".json")) {
            rc = open_indexed(c, path, flags, e);
        } else {
            char *base = strdup(slash ? slash + 1 : path);
            rc = base ? open_files(c, &base, 1, flags, e) : dsv4_fail_rt(e, "out of memory");
            free(base);
        }
    }
    if (rc)
        dsv4_ckpt_close(c);
    return rc;
}

void dsv4_ckpt_close(dsv4_ckpt *c)
{
    for (size_t i = 0; i < c->n_files; i++)
        dsv4_st_close(&c->files[i]);
    free(c->files);
    free(c->by_name);
    dsv4_index_free(&c->index);
    for (size_t i = 0; i < c->n_problems; i++)
        free(c->problems[i]);
    free(c->problems);
    for (size_t i = 0; i < c->n_bad_shards; i++) {
        free(c->bad_shards[i].file);
        free(c->bad_shards[i].why);
    }
    free(c->bad_shards);
    free(c->dir);
    memset(c, 0, sizeof *c);
}

static const char *ckpt_name_at(const void *ctx, size_t i)
{
    return ((const dsv4_ckpt *)ctx)->by_name[i]->name;
}

const dsv4_tensor *dsv4_ckpt_find(const dsv4_ckpt *c, const char *name)
{
    size_t i = dsv4_find_name(c->n, ckpt_name_at, c, name);
    return i == DSV4_NOT_FOUND ? NULL : c->by_name[i];
}

const char *dsv4_ckpt_file_of(const dsv4_ckpt *c, const dsv4_tensor *t)
{
    return c->files[t->file].path;
}
