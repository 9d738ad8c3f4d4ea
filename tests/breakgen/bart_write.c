/* Writing a broken artifact (see bart.h): shards re-saved in save_file's layout (io/st_plan.h) or,
 * for header-only edits, the clean shards' data under new headers; the index as transformers
 * writes it (io/index_write.h's format) with the mode's index edits; config.json; the carried
 * tokenizer/generation files. All of it in `<out>.tmp-<pid>`, renamed into place at the end. */
#include "bart.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "artifact/convert.h"
#include "io/atomic.h"
#include "io/json_out.h"
#include "io/st_plan.h"

typedef struct ix_entry {
    const char *name, *file;
} ix_entry;

typedef struct ix_list {
    size_t n, cap;
    ix_entry *v;
    uint64_t total;
} ix_list;

static int ix_add(ix_list *l, const char *name, const char *file, dsv4_err *e)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        ix_entry *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return dsv4_fail_rt(e, "index: out of memory");
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (ix_entry){name, file};
    return 0;
}

static int cmp_entry(const void *x, const void *y)
{
    return strcmp(((const ix_entry *)x)->name, ((const ix_entry *)y)->name);
}

/* Creates `dir/name` and writes `n` bytes (or nothing) to it, fsync'd. Returns the open fd in
 * *fd_out when asked (the caller writes more and closes), else closes it. */
static int create_file(const char *dir, const char *name, const void *buf, size_t n, int *fd_out, dsv4_err *e)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return dsv4_fail_rt(e, "%s: cannot create: %m", path);
    if (n && dsv4_pwrite_all(fd, buf, n, 0, path, e)) {
        close(fd);
        return -1;
    }
    if (fd_out) {
        *fd_out = fd;
        return 0;
    }
    if (fsync(fd) || close(fd))
        return dsv4_fail_rt(e, "%s: cannot sync: %m", path);
    return 0;
}

static int finish_fd(int fd, const char *dir, const char *name, dsv4_err *e)
{
    if (fsync(fd) || close(fd))
        return dsv4_fail_rt(e, "%s/%s: cannot sync: %m", dir, name);
    return 0;
}

/* Re-saves every tensor as save_file would (one shard, or shards of max_shard_bytes). */
static int write_resaved(bt_art *a, const char *tmp, dsv4_st_plan *p, ix_list *ix, dsv4_err *e)
{
    dsv4_st_plan_init(p, a->max_shard_bytes, DSV4_ST_ALWAYS_INDEX);
    for (size_t i = 0; i < a->n; i++)
        if (dsv4_st_plan_add(p, a->t[i].name, a->t[i].dtype, a->t[i].ndim, a->t[i].shape, e))
            return -1;
    if (dsv4_st_plan_finish(p, e))
        return -1;
    for (size_t s = 0; s < p->n_shards; s++) {
        const dsv4_st_plan_shard *ps = &p->shards[s];
        uint8_t len[8];
        for (int k = 0; k < 8; k++)
            len[k] = (uint8_t)(ps->header_len >> (8 * k));
        int fd;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", tmp, ps->name);
        if (create_file(tmp, ps->name, len, 8, &fd, e))
            return -1;
        int rc = dsv4_pwrite_all(fd, ps->header, ps->header_len, 8, path, e);
        for (size_t k = 0; rc == 0 && k < ps->n; k++) {
            const dsv4_st_plan_tensor *pt = &p->tensors[ps->order[k]];
            const bt_tensor *t = &a->t[ps->order[k]]; /* declared in a->t order */
            rc = dsv4_pwrite_all(fd, t->data, pt->nbytes, pt->file_offset, path, e);
        }
        if (rc) {
            close(fd);
            return -1;
        }
        if (finish_fd(fd, tmp, ps->name, e))
            return -1;
    }
    for (size_t i = 0; i < p->n; i++)
        if (ix_add(ix, p->tensors[i].name, p->shards[p->tensors[i].shard].name, e))
            return -1;
    ix->total = p->total_bytes;
    return 0;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The tensor of `a` that came from clean tensor `o`, or NULL. */
static const bt_tensor *from_orig(const bt_art *a, const dsv4_tensor *o)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->t[i].orig == o)
            return &a->t[i];
    return NULL;
}

/* D's rename_weight_scale_to_inv.py: the header re-serialized compactly in its original order
 * (json.dumps(separators=(",", ":"))), padded with spaces to a multiple of 8, then the original
 * data bytes. Only renames and same-size re-declarations are possible this way. */
static int write_header_only(bt_art *a, const char *tmp, ix_list *ix, dsv4_err *e)
{
    for (size_t i = 0; i < a->n; i++)
        if (!a->t[i].orig || a->t[i].nbytes != dsv4_tensor_nbytes(a->t[i].orig) || a->t[i].owned)
            return dsv4_fail(e, "tensor '%s': a header-only edit cannot add tensors or change bytes", a->t[i].name);
    uint64_t total = 0;
    for (size_t f = 0; f < a->ck.n_files; f++) {
        const dsv4_st_file *sf = &a->ck.files[f];
        dsv4_jbuf b = {0};
        dsv4_jbuf_puts(&b, "{\"__metadata__\":{");
        for (size_t m = 0; m < sf->n_meta; m++) {
            dsv4_jbuf_puts(&b, m ? "," : "");
            dsv4_jbuf_str_ascii(&b, sf->meta_keys[m]);
            dsv4_jbuf_puts(&b, ":");
            dsv4_jbuf_str_ascii(&b, sf->meta_vals[m]);
        }
        dsv4_jbuf_puts(&b, "}");
        for (size_t k = 0; k < sf->n; k++) {
            const bt_tensor *t = from_orig(a, &sf->tensors[k]);
            if (!t) {
                dsv4_jbuf_free(&b);
                return dsv4_fail(e, "tensor '%s': a header-only edit cannot drop tensors (the data section "
                                 "would no longer be tiled)", sf->tensors[k].name);
            }
            dsv4_jbuf_puts(&b, ",");
            dsv4_jbuf_str_ascii(&b, t->name);
            dsv4_jbuf_printf(&b, ":{\"dtype\":\"%s\",\"shape\":[", dsv4_dtype_name(t->dtype));
            for (int d = 0; d < t->ndim; d++)
                dsv4_jbuf_printf(&b, "%s%lld", d ? "," : "", (long long)t->shape[d]);
            dsv4_jbuf_printf(&b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)sf->tensors[k].begin,
                             (unsigned long long)sf->tensors[k].end);
            if (ix_add(ix, t->name, base_name(sf->path), e)) {
                dsv4_jbuf_free(&b);
                return -1;
            }
            total += t->nbytes;
        }
        dsv4_jbuf_puts(&b, "}");
        while (b.n % 8)
            dsv4_jbuf_puts(&b, " ");
        if (b.oom)
            return dsv4_fail_rt(e, "%s: out of memory", sf->path);
        uint8_t len[8];
        for (int k = 0; k < 8; k++)
            len[k] = (uint8_t)((uint64_t)b.n >> (8 * k));
        int fd;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", tmp, base_name(sf->path));
        int rc = create_file(tmp, base_name(sf->path), len, 8, &fd, e);
        if (rc == 0) {
            rc = dsv4_pwrite_all(fd, b.p, b.n, 8, path, e);
            uint64_t data = 8 + sf->header_len;
            if (rc == 0)
                rc = dsv4_pwrite_all(fd, sf->map + data, sf->size - data, 8 + b.n, path, e);
            rc = rc ? (close(fd), -1) : finish_fd(fd, tmp, base_name(sf->path), e);
        }
        dsv4_jbuf_free(&b);
        if (rc)
            return -1;
    }
    ix->total = total;
    return 0;
}

static int write_index(bt_art *a, const char *tmp, ix_list *ix, dsv4_err *e)
{
    uint64_t total = a->ix.stale_total ? a->ix.total_override : ix->total;
    if (a->ix.extra_name && ix_add(ix, a->ix.extra_name, ix->n ? ix->v[ix->n - 1].file : "", e))
        return -1;
    qsort(ix->v, ix->n, sizeof *ix->v, cmp_entry);
    int missing_found = !a->ix.missing_name;
    dsv4_jbuf b = {0};
    dsv4_jbuf_printf(&b, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n  \"weight_map\": {",
                     (unsigned long long)total);
    size_t written = 0;
    for (size_t k = 0; k < ix->n; k++) {
        if (a->ix.missing_name && !strcmp(ix->v[k].name, a->ix.missing_name)) {
            missing_found = 1;
            continue;
        }
        dsv4_jbuf_puts(&b, written++ ? ",\n    " : "\n    ");
        dsv4_jbuf_str_ascii(&b, ix->v[k].name);
        dsv4_jbuf_puts(&b, ": ");
        dsv4_jbuf_str_ascii(&b, ix->v[k].file);
    }
    dsv4_jbuf_puts(&b, written ? "\n  }\n}\n" : "}\n}\n");
    int rc = b.oom ? dsv4_fail_rt(e, "index: out of memory") : 0;
    if (rc == 0 && !missing_found)
        rc = dsv4_fail(e, "index: tensor '%s' (to leave out) is not in the artifact", a->ix.missing_name);
    if (rc == 0)
        rc = create_file(tmp, DSV4_INDEX_NAME, b.p, b.n, NULL, e);
    dsv4_jbuf_free(&b);
    return rc;
}

static int copy_file(const char *from_dir, const char *name, const char *to_dir, int must_exist, dsv4_err *e)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", from_dir, name);
    if (!must_exist && access(path, F_OK) != 0)
        return 0;
    char *buf;
    size_t n;
    if (dsv4_read_file(path, 1u << 30, &buf, &n, e))
        return -1;
    int rc = create_file(to_dir, name, buf, n, NULL, e);
    free(buf);
    return rc;
}

static int write_config(bt_art *a, const char *tmp, dsv4_err *e)
{
    if (!a->config_changed)
        return copy_file(a->dir, "config.json", tmp, 1, e);
    char *s = json_dumps(a->config, JSON_INDENT(2));
    if (!s)
        return dsv4_fail_rt(e, "config.json: out of memory");
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        return dsv4_fail_rt(e, "config.json: out of memory");
    }
    t[n] = '\n';
    int rc = create_file(tmp, "config.json", t, n + 1, NULL, e);
    free(t);
    return rc;
}

int bt_write(bt_art *a, const char *out, dsv4_err *e)
{
    dsv4_atomic_dir d;
    if (dsv4_atomic_dir_begin(&d, out, e))
        return -1;
    dsv4_st_plan p;
    memset(&p, 0, sizeof p);
    ix_list ix = {0};
    int rc = a->header_only ? write_header_only(a, d.tmp, &ix, e) : write_resaved(a, d.tmp, &p, &ix, e);
    if (rc == 0)
        rc = write_index(a, d.tmp, &ix, e);
    if (rc == 0)
        rc = write_config(a, d.tmp, e);
    for (int i = 0; rc == 0 && dsv4_carried_files[i]; i++)
        rc = copy_file(a->dir, dsv4_carried_files[i], d.tmp, 0, e);
    if (rc == 0 && a->post)
        rc = a->post(a, d.tmp, e);
    if (rc == 0 && dsv4_fsync_dir(d.tmp, e))
        rc = -1;
    free(ix.v);
    if (!a->header_only)
        dsv4_st_plan_free(&p);
    if (rc) {
        dsv4_atomic_dir_abort(&d);
        return -1;
    }
    return dsv4_atomic_dir_commit(&d, e);
}
