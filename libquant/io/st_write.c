/* The streaming checkpoint writer (see st_write.h): preallocated, mapped shard files filled in
 * place, then synced and renamed; index and manifest last; the folder renamed at the end. */
#include "io/st_write.h"
#include "util/pages.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "io/atomic.h"
#include "io/index_write.h"

enum { T_PENDING, T_FILLING, T_DONE };
enum { S_CREATED, S_MAPPED, S_COMMITTED };

typedef struct shard_state {
    dsv4_atomic_file f;
    uint8_t *map;
    size_t remaining;   /* tensors not yet done */
    int state;
} shard_state;

struct dsv4_st_writer {
    const dsv4_st_plan *plan;
    dsv4_atomic_dir dir;
    dsv4_st_write_opts opts;
    shard_state *sh;
    unsigned char *tstate;
    dsv4_hash128 *hash;
    pthread_mutex_t mu;
    int failed;
    uint64_t bytes_done;
};

static void progress(dsv4_st_writer *w, int ev, size_t index)
{
    if (w->opts.progress)
        w->opts.progress(w->opts.progress_ctx, ev, index,
                         __atomic_load_n(&w->bytes_done, __ATOMIC_RELAXED), w->plan->total_bytes);
}

/* Creates a shard's temporary file: header written, full size preallocated. */
static int create_shard(dsv4_st_writer *w, size_t s, dsv4_err *e)
{
    const dsv4_st_plan_shard *ps = &w->plan->shards[s];
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", w->dir.tmp, ps->name);
    if (dsv4_atomic_file_open(&w->sh[s].f, path, DSV4_ATOMIC_CREATE, e))
        return -1;
    int fd = w->sh[s].f.fd;
    int rc = posix_fallocate(fd, 0, (off_t)ps->file_bytes);
    if (rc)
        return dsv4_fail_rt(e, "%s/%s: cannot reserve %llu bytes on disk: %s", w->dir.path, ps->name,
                            (unsigned long long)ps->file_bytes, strerror(rc));
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)(ps->header_len >> (8 * i));
    if (dsv4_pwrite_all(fd, len, 8, 0, path, e) ||
        dsv4_pwrite_all(fd, ps->header, ps->header_len, 8, path, e))
        return -1;
    w->sh[s].remaining = ps->n;
    return 0;
}

int dsv4_st_writer_open(dsv4_st_writer **wp, const dsv4_st_plan *plan, const char *out,
                        const dsv4_st_write_opts *opts, dsv4_err *e)
{
    *wp = NULL;
    if (!plan->finished)
        return dsv4_fail(e, "%s: the write plan is not finished", out);
    dsv4_st_writer *w = calloc(1, sizeof *w);
    if (!w)
        return dsv4_fail_rt(e, "%s: out of memory", out);
    w->plan = plan;
    if (opts)
        w->opts = *opts;
    pthread_mutex_init(&w->mu, NULL);
    w->sh = calloc(plan->n_shards, sizeof *w->sh);
    w->tstate = calloc(plan->n ? plan->n : 1, 1);
    w->hash = calloc(plan->n ? plan->n : 1, sizeof *w->hash);
    for (size_t s = 0; w->sh && s < plan->n_shards; s++)
        w->sh[s].f.fd = -1;
    if (!w->sh || !w->tstate || !w->hash) {
        dsv4_st_writer_abort(w);
        return dsv4_fail_rt(e, "%s: out of memory", out);
    }
    if (dsv4_atomic_dir_begin(&w->dir, out, e)) {
        dsv4_st_writer_abort(w);
        return -1;
    }
    for (size_t s = 0; s < plan->n_shards; s++)
        if (create_shard(w, s, e)) {
            dsv4_st_writer_abort(w);
            return -1;
        }
    *wp = w;
    progress(w, DSV4_ST_EV_OPENED, 0);
    return 0;
}

/* Syncs, unmaps and renames a complete shard (no other thread touches it any more). */
static int commit_shard(dsv4_st_writer *w, size_t s, dsv4_err *e)
{
    shard_state *st = &w->sh[s];
    const dsv4_st_plan_shard *ps = &w->plan->shards[s];
    if (st->map) {
        int rc = msync(st->map, ps->file_bytes, MS_SYNC);
        int err = errno;
        munmap(st->map, ps->file_bytes);
        st->map = NULL;
        if (rc)
            return dsv4_fail_rt(e, "%s/%s: msync failed: %s", w->dir.path, ps->name, strerror(err));
    }
    if (dsv4_atomic_file_commit(&st->f, e))
        return -1;
    st->state = S_COMMITTED;
    progress(w, DSV4_ST_EV_SHARD, s);
    return 0;
}

static void set_failed(dsv4_st_writer *w)
{
    pthread_mutex_lock(&w->mu);
    w->failed = 1;
    pthread_mutex_unlock(&w->mu);
}

int dsv4_st_writer_begin(dsv4_st_writer *w, size_t i, uint8_t **dst, dsv4_err *e)
{
    const dsv4_st_plan *p = w->plan;
    if (i >= p->n)
        return dsv4_fail(e, "%s: tensor #%zu: the plan has only %zu tensors", w->dir.path, i, p->n);
    const dsv4_st_plan_tensor *t = &p->tensors[i];
    const dsv4_st_plan_shard *ps = &p->shards[t->shard];
    shard_state *st = &w->sh[t->shard];
    int rc = 0;
    pthread_mutex_lock(&w->mu);
    if (w->failed) {
        rc = dsv4_fail(e, "%s/%s: tensor '%s': writing was abandoned after an earlier error",
                       w->dir.path, ps->name, t->name);
    } else if (w->tstate[i] != T_PENDING) {
        rc = dsv4_fail(e, "%s/%s: tensor '%s': filled twice (each tensor is written exactly once)",
                       w->dir.path, ps->name, t->name);
    } else if (st->state == S_CREATED) {
        void *m = mmap(NULL, ps->file_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, st->f.fd, 0);
        if (m == MAP_FAILED)
            rc = dsv4_fail_rt(e, "%s/%s: cannot map the shard for writing: %s", w->dir.path, ps->name,
                              strerror(errno));
        else
            st->map = m, st->state = S_MAPPED;
    }
    if (rc == 0) {
        w->tstate[i] = T_FILLING;
        *dst = st->map + t->file_offset;
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int dsv4_st_writer_end(dsv4_st_writer *w, size_t i, dsv4_err *e)
{
    const dsv4_st_plan *p = w->plan;
    if (i >= p->n)
        return dsv4_fail(e, "%s: tensor #%zu: the plan has only %zu tensors", w->dir.path, i, p->n);
    const dsv4_st_plan_tensor *t = &p->tensors[i];
    shard_state *st = &w->sh[t->shard];
    pthread_mutex_lock(&w->mu);
    int ok = w->tstate[i] == T_FILLING;
    const uint8_t *src = st->map + t->file_offset;
    pthread_mutex_unlock(&w->mu);
    if (!ok)
        return dsv4_fail(e, "%s/%s: tensor '%s': end without a matching begin", w->dir.path,
                         p->shards[t->shard].name, t->name);
    dsv4_hash128 h = dsv4_xxh128(src, t->nbytes);
    /* resident memory stays bounded by the tensors in flight */
    dsv4_release_pages(src, t->nbytes, st->map, p->shards[t->shard].file_bytes);
    pthread_mutex_lock(&w->mu);
    w->hash[i] = h;
    w->tstate[i] = T_DONE;
    __atomic_add_fetch(&w->bytes_done, t->nbytes, __ATOMIC_RELAXED);
    int last = --st->remaining == 0;
    pthread_mutex_unlock(&w->mu);
    progress(w, DSV4_ST_EV_TENSOR, i);
    if (last && commit_shard(w, t->shard, e)) {
        set_failed(w);
        return -1;
    }
    return 0;
}

int dsv4_st_writer_fill(dsv4_st_writer *w, size_t i, dsv4_st_fill_fn fn, void *ctx, dsv4_err *e)
{
    uint8_t *dst;
    if (dsv4_st_writer_begin(w, i, &dst, e))
        return -1;
    if (fn(ctx, &w->plan->tensors[i], dst, e)) {
        set_failed(w);
        return -1;
    }
    return dsv4_st_writer_end(w, i, e);
}

int dsv4_st_writer_put(dsv4_st_writer *w, size_t i, const void *src, uint64_t n, dsv4_err *e)
{
    if (i < w->plan->n && n != w->plan->tensors[i].nbytes) {
        const dsv4_st_plan_tensor *t = &w->plan->tensors[i];
        return dsv4_fail(e, "%s/%s: tensor '%s': given %llu bytes, expected %llu for %s of %d "
                         "dimensions", w->dir.path, w->plan->shards[t->shard].name, t->name,
                         (unsigned long long)n, (unsigned long long)t->nbytes,
                         dsv4_dtype_name(t->dtype), t->ndim);
    }
    uint8_t *dst;
    if (dsv4_st_writer_begin(w, i, &dst, e))
        return -1;
    if (n)
        memcpy(dst, src, n);
    return dsv4_st_writer_end(w, i, e);
}

dsv4_hash128 dsv4_st_writer_hash(const dsv4_st_writer *w, size_t i)
{
    return w->hash[i];
}

/* Writes a small file inside the temporary folder, atomically. */
static int write_small(dsv4_st_writer *w, const char *name, const dsv4_jbuf *b, dsv4_err *e)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", w->dir.tmp, name);
    return dsv4_atomic_write(path, b->p, b->n, e);
}

static int finish(dsv4_st_writer *w, dsv4_err *e)
{
    const dsv4_st_plan *p = w->plan;
    if (w->failed)
        return dsv4_fail(e, "%s: writing was abandoned after an earlier error", w->dir.path);
    for (size_t i = 0; i < p->n; i++)
        if (w->tstate[i] != T_DONE)
            return dsv4_fail(e, "%s/%s: tensor '%s' was declared but never filled", w->dir.path,
                             p->shards[p->tensors[i].shard].name, p->tensors[i].name);
    for (size_t s = 0; s < p->n_shards; s++) /* shards without tensors (an empty plan) */
        if (w->sh[s].state != S_COMMITTED && commit_shard(w, s, e))
            return -1;
    dsv4_jbuf b = {0};
    if (p->has_index) {
        if (dsv4_index_render(p, &b, e) || write_small(w, DSV4_INDEX_NAME, &b, e)) {
            dsv4_jbuf_free(&b);
            return -1;
        }
        progress(w, DSV4_ST_EV_INDEX, 0);
        dsv4_jbuf_free(&b);
    }
    if (dsv4_manifest_render(p, w->hash, w->opts.manifest_calibration, &b, e) || write_small(w, DSV4_MANIFEST_NAME, &b, e)) {
        dsv4_jbuf_free(&b);
        return -1;
    }
    dsv4_jbuf_free(&b);
    progress(w, DSV4_ST_EV_MANIFEST, 0);
    if (w->opts.before_commit && w->opts.before_commit(w->opts.before_commit_ctx, w->dir.tmp, e))
        return -1;
    if (dsv4_atomic_dir_commit(&w->dir, e))
        return -1;
    progress(w, DSV4_ST_EV_COMMITTED, 0);
    return 0;
}

static void writer_free(dsv4_st_writer *w)
{
    for (size_t s = 0; w->sh && s < w->plan->n_shards; s++) {
        if (w->sh[s].map)
            munmap(w->sh[s].map, w->plan->shards[s].file_bytes);
        dsv4_atomic_file_abort(&w->sh[s].f);
    }
    dsv4_atomic_dir_abort(&w->dir);
    pthread_mutex_destroy(&w->mu);
    free(w->sh);
    free(w->tstate);
    free(w->hash);
    free(w);
}

int dsv4_st_writer_close(dsv4_st_writer *w, dsv4_err *e)
{
    int rc = finish(w, e);
    writer_free(w); /* after a successful commit the folder is released and nothing is removed */
    return rc;
}

void dsv4_st_writer_abort(dsv4_st_writer *w)
{
    if (w)
        writer_free(w);
}

int dsv4_st_write_all(const dsv4_st_plan *plan, const char *out, const void *const *data, dsv4_err *e)
{
    dsv4_st_writer *w;
    if (dsv4_st_writer_open(&w, plan, out, NULL, e))
        return -1;
    for (size_t i = 0; i < plan->n; i++)
        if (dsv4_st_writer_put(w, i, data[i], plan->tensors[i].nbytes, e)) {
            dsv4_st_writer_abort(w);
            return -1;
        }
    return dsv4_st_writer_close(w, e);
}

int dsv4_st_writer_add_file(dsv4_st_writer *w, const char *name, const void *buf, size_t n, dsv4_err *e)
{
    if (!*name || strchr(name, '/') || name[0] == '.')
        return dsv4_fail(e, "%s: '%s' is not a plain file name", w->dir.path, name);
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", w->dir.tmp, name);
    return dsv4_atomic_write(path, buf, n, e);
}

int dsv4_st_writer_copy_files(dsv4_st_writer *w, const char *src_dir, const char *const *names, dsv4_err *e)
{
    for (const char *const *f = names; *f; f++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", src_dir, *f);
        if (access(path, F_OK) != 0)
            continue;
        char *buf;
        size_t n;
        if (dsv4_read_file(path, 1u << 30, &buf, &n, e))
            return -1;
        int rc = dsv4_st_writer_add_file(w, *f, buf, n, e);
        free(buf);
        if (rc)
            return -1;
    }
    return 0;
}
