/* The artifact and config comparisons of dsv4-break (see diff.h). */
#include "diff.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/checkpoint.h"
#include "io/json_out.h"
#include "util/json_in.h"

static void leaf(FILE *f, const char *path, const char *what, size_t *n)
{
    (*n)++;
    if (f)
        fprintf(f, "  c %s: %s\n", *path ? path : "(top)", what);
}

static void diff_rec(const json_t *a, const json_t *b, const char *path, const char *ignore_key, FILE *f, size_t *n)
{
    char sub[2048];
    if (json_is_object(a) && json_is_object(b)) {
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)a, k, v) {
            if (ignore_key && !*path && !strcmp(k, ignore_key))
                continue;
            snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", k);
            const json_t *w = json_object_get(b, k);
            if (!w)
                leaf(f, sub, "only in the first", n);
            else
                diff_rec(v, w, sub, NULL, f, n);
        }
        json_object_foreach((json_t *)b, k, v) {
            if (ignore_key && !*path && !strcmp(k, ignore_key))
                continue;
            snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", k);
            if (!json_object_get(a, k))
                leaf(f, sub, "only in the second", n);
        }
        return;
    }
    if (json_is_array(a) && json_is_array(b) && json_array_size(a) == json_array_size(b)) {
        for (size_t i = 0; i < json_array_size(a); i++) {
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            diff_rec(json_array_get(a, i), json_array_get(b, i), sub, NULL, f, n);
        }
        return;
    }
    if (!json_equal((json_t *)a, (json_t *)b))
        leaf(f, path, json_is_array(a) && json_is_array(b) ? "arrays of different lengths" : "values differ", n);
}

size_t bt_json_diff(const json_t *a, const json_t *b, const char *ignore_key, FILE *f)
{
    size_t n = 0;
    diff_rec(a, b, "", ignore_key, f, &n);
    return n;
}

static json_t *load_json(const char *path, dsv4_err *e)
{
    char p[8192];
    struct stat st;
    snprintf(p, sizeof p, "%s%s", path, stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? "/config.json" : "");
    char *buf;
    size_t len;
    if (dsv4_read_file(p, 64u << 20, &buf, &len, e))
        return NULL;
    json_t *j = dsv4_json_parse(buf, len, p, "config", e);
    free(buf);
    return j;
}

int bt_config_equal(const char *a, const char *b, FILE *f, dsv4_err *e)
{
    json_t *ja = load_json(a, e), *jb = ja ? load_json(b, e) : NULL;
    if (!jb) {
        json_decref(ja);
        return -1;
    }
    size_t n = bt_json_diff(ja, jb, "dsv4_fixup", f);
    json_decref(ja);
    json_decref(jb);
    return n ? 1 : 0;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int same_tensor(const dsv4_tensor *x, const dsv4_tensor *y)
{
    if (x->dtype != y->dtype || x->ndim != y->ndim || dsv4_tensor_nbytes(x) != dsv4_tensor_nbytes(y))
        return 0;
    for (int i = 0; i < x->ndim; i++)
        if (x->shape[i] != y->shape[i])
            return 0;
    return !memcmp(x->data, y->data, dsv4_tensor_nbytes(x));
}

/* 1 when the index file is not exactly what the opened shards imply (as transformers writes it). */
static int index_drift(const dsv4_ckpt *c, dsv4_err *e)
{
    char p[8192];
    snprintf(p, sizeof p, "%s/%s", c->dir, DSV4_INDEX_NAME);
    char *buf;
    size_t len;
    if (dsv4_read_file(p, 1u << 30, &buf, &len, e))
        return -1;
    dsv4_jbuf b = {0};
    dsv4_jbuf_printf(&b, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n  \"weight_map\": {",
                     (unsigned long long)c->data_bytes);
    for (size_t i = 0; i < c->n; i++) {
        dsv4_jbuf_puts(&b, i ? ",\n    " : "\n    ");
        dsv4_jbuf_str_ascii(&b, c->by_name[i]->name);
        dsv4_jbuf_puts(&b, ": ");
        dsv4_jbuf_str_ascii(&b, base_name(dsv4_ckpt_file_of(c, c->by_name[i])));
    }
    dsv4_jbuf_puts(&b, c->n ? "\n  }\n}\n" : "}\n}\n");
    int drift = b.oom || b.n != len || memcmp(b.p, buf, len) != 0;
    dsv4_jbuf_free(&b);
    free(buf);
    return drift || c->n_bad_shards;
}

/* model*.safetensors files in the folder that the index does not name. */
static size_t orphans(const dsv4_ckpt *c)
{
    DIR *d = opendir(c->dir);
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (strncmp(de->d_name, "model", 5) || l < 12 || strcmp(de->d_name + l - 12, ".safetensors"))
            continue;
        int named = 0;
        for (size_t i = 0; i < c->index.n_shards; i++)
            named |= !strcmp(c->index.shard_names[i], de->d_name);
        n += !named;
    }
    if (d)
        closedir(d);
    return n;
}

int bt_diff(const char *clean, const char *broken, FILE *f, dsv4_err *e)
{
    dsv4_ckpt a, b;
    if (dsv4_ckpt_open(clean, DSV4_CKPT_LENIENT | DSV4_CKPT_SKIP_BAD, &a, e))
        return -1;
    if (dsv4_ckpt_open(broken, DSV4_CKPT_LENIENT | DSV4_CKPT_SKIP_BAD, &b, e)) {
        dsv4_ckpt_close(&a);
        return -1;
    }
    json_t *ca = load_json(clean, e), *cb = ca ? load_json(broken, e) : NULL;
    int ix = cb && b.has_index ? index_drift(&b, e) : -1;
    if (ix < 0) {
        json_decref(ca);
        json_decref(cb);
        dsv4_ckpt_close(&a);
        dsv4_ckpt_close(&b);
        return -1;
    }
    size_t removed = 0, added = 0, changed = 0, i = 0, j = 0;
    char *lines = NULL;
    size_t lines_len = 0;
    FILE *detail = open_memstream(&lines, &lines_len);
    while (i < a.n || j < b.n) {
        int c = i == a.n ? 1 : j == b.n ? -1 : strcmp(a.by_name[i]->name, b.by_name[j]->name);
        if (c < 0) {
            removed++;
            fprintf(detail, "  - %s\n", a.by_name[i++]->name);
        } else if (c > 0) {
            added++;
            fprintf(detail, "  + %s\n", b.by_name[j++]->name);
        } else {
            if (!same_tensor(a.by_name[i], b.by_name[j])) {
                char s1[96], s2[96];
                changed++;
                fprintf(detail, "  ~ %s: %s %s -> %s %s\n", a.by_name[i]->name, dsv4_dtype_name(a.by_name[i]->dtype),
                        dsv4_shape_str(a.by_name[i], s1, sizeof s1), dsv4_dtype_name(b.by_name[j]->dtype),
                        dsv4_shape_str(b.by_name[j], s2, sizeof s2));
            }
            i++;
            j++;
        }
    }
    size_t nc = bt_json_diff(ca, cb, NULL, detail);
    fclose(detail);
    fprintf(f, "-%zu +%zu ~%zu c%zu ix%d bad%zu orph%zu\n", removed, added, changed, nc, ix, b.n_bad_shards,
            orphans(&b));
    if (lines)
        fputs(lines, f);
    free(lines);
    json_decref(ca);
    json_decref(cb);
    dsv4_ckpt_close(&a);
    dsv4_ckpt_close(&b);
    return 0;
}
