/* Writing one shard of the result (see rewrite_internal.h): a hard link when nothing in it
 * changes; a new header and the old data section copied by the kernel when only names or shapes
 * change and the layout keeps every offset; otherwise the shard laid out anew (io/st_plan.h),
 * unchanged tensors copied by the kernel from the old file and PUT tensors produced into place. */
#include "fixup/rewrite_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixup/produce.h"
#include "io/atomic.h"

#define RW_BUF (8u << 20)

/* read/write copy for what the kernel will not copy itself (another filesystem, old kernels). */
static int copy_rw(int in, uint64_t off_in, int out, uint64_t off_out, uint64_t len, const char *what, dsv4_err *e)
{
    char *buf = malloc(RW_BUF);
    if (!buf)
        return dsv4_fail_rt(e, "%s: out of memory", what);
    int rc = 0;
    while (len && rc == 0) {
        size_t want = len < RW_BUF ? (size_t)len : RW_BUF;
        ssize_t k = pread(in, buf, want, (off_t)off_in);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            rc = dsv4_fail_rt(e, "%s: read failed at byte %llu: %s", what, (unsigned long long)off_in,
                              k < 0 ? strerror(errno) : "the file is shorter than its header says");
            break;
        }
        rc = dsv4_pwrite_all(out, buf, (size_t)k, off_out, what, e);
        off_in += (uint64_t)k;
        off_out += (uint64_t)k;
        len -= (uint64_t)k;
    }
    free(buf);
    return rc;
}

int rw_copy_range(int in, uint64_t off_in, int out, uint64_t off_out, uint64_t len, const char *what,
                  dsv4_err *e)
{
    loff_t a = (loff_t)off_in, b = (loff_t)off_out;
    while (len) {
        size_t want = len < (1u << 30) ? (size_t)len : (1u << 30);
        ssize_t k = copy_file_range(in, &a, out, &b, want, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL ||
                      errno == EPERM || errno == ETXTBSY))
            return copy_rw(in, (uint64_t)a, out, (uint64_t)b, len, what, e);
        if (k < 0)
            return dsv4_fail_rt(e, "%s: copy failed at byte %llu: %s", what, (unsigned long long)a, strerror(errno));
        if (k == 0)
            return dsv4_fail_rt(e, "%s: the source ends at byte %llu, before the %llu bytes its header describes",
                                what, (unsigned long long)a, (unsigned long long)len);
        len -= (uint64_t)k;
    }
    return 0;
}

int rw_link_or_copy(const char *from, const char *to, uint64_t *copied, dsv4_err *e)
{
    if (link(from, to) == 0)
        return 0;
    if (errno == EEXIST)
        return dsv4_fail(e, "%s: already exists", to);
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return dsv4_fail_rt(e, "%s: cannot open: %s", from, strerror(errno));
    struct stat st;
    if (fstat(in, &st)) {
        close(in);
        return dsv4_fail_rt(e, "%s: cannot stat: %s", from, strerror(errno));
    }
    dsv4_atomic_file f;
    if (dsv4_atomic_file_open(&f, to, DSV4_ATOMIC_CREATE, e)) {
        close(in);
        return -1;
    }
    int rc = rw_copy_range(in, 0, f.fd, 0, (uint64_t)st.st_size, from, e);
    if (rc == 0 && fchmod(f.fd, st.st_mode & 07777))
        rc = dsv4_fail_rt(e, "%s: cannot set the permissions: %s", to, strerror(errno));
    close(in);
    if (rc) {
        dsv4_atomic_file_abort(&f);
        return -1;
    }
    __atomic_fetch_add(copied, (uint64_t)st.st_size, __ATOMIC_RELAXED);
    return dsv4_atomic_file_commit(&f, e);
}

/* The old manifest's hash for an unchanged tensor, when it describes the same bytes. */
static int carried_hash(const rw_state *s, const rw_shard *home, const dsv4_tensor *orig, dsv4_hash128 *h)
{
    const dsv4_manifest *m = &s->old_manifest;
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(m->v[mid].name, orig->name);
        if (!c) {
            const dsv4_manifest_entry *en = &m->v[mid];
            if (strcmp(en->file, home->name) || en->nbytes != dsv4_tensor_nbytes(orig))
                return 0;
            *h = en->hash;
            return 1;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* Manifest hash of a tensor that keeps its bytes: carried over, else hashed from the mapping. */
static void hash_kept(const rw_state *s, rw_tensor *t)
{
    if (!s->have_manifest)
        return;
    if (!carried_hash(s, &s->sh[t->orig->file], t->orig, &t->hash))
        t->hash = dsv4_xxh128(t->orig->data, dsv4_tensor_nbytes(t->orig));
}

/* The artifact file that holds `x`'s bytes, when x is a tensor of the artifact (not the source). */
static const dsv4_st_file *art_file_of(const rw_state *s, const dsv4_tensor *x)
{
    if (x->file >= s->art->n_files)
        return NULL;
    const dsv4_st_file *f = &s->art->files[x->file];
    return x->data >= f->map && x->data + dsv4_tensor_nbytes(x) <= f->map + f->size ? f : NULL;
}

static int write_header(int fd, const dsv4_st_plan_shard *ps, const char *what, dsv4_err *e)
{
    uint8_t len[8];
    for (int k = 0; k < 8; k++)
        len[k] = (uint8_t)(ps->header_len >> (8 * k));
    return dsv4_pwrite_all(fd, len, 8, 0, what, e) || dsv4_pwrite_all(fd, ps->header, ps->header_len, 8, what, e);
}

/* One PUT tensor into place at `off`. */
static int put_tensor(rw_state *s, rw_tensor *t, int fd, uint64_t off, const char *what, dsv4_rewrite_stats *st,
                      dsv4_err *e)
{
    const dsv4_fix_op *op = t->put;
    const dsv4_st_file *src = op->produce == DSV4_PRODUCE_COPY ? art_file_of(s, op->from) : NULL;
    if (op->produce == DSV4_PRODUCE_COPY) {
        if (s->have_manifest)
            t->hash = dsv4_xxh128(op->from->data, t->nbytes);
        if (src) {
            __atomic_fetch_add(&st->bytes_kernel_copied, t->nbytes, __ATOMIC_RELAXED);
            return rw_copy_range(src->fd, (uint64_t)(op->from->data - src->map), fd, off, t->nbytes, what, e);
        }
        __atomic_fetch_add(&st->bytes_written, t->nbytes, __ATOMIC_RELAXED);
        return dsv4_pwrite_all(fd, op->from->data, t->nbytes, off, what, e);
    }
    uint8_t *buf = malloc(t->nbytes ? t->nbytes : 1);
    if (!buf)
        return dsv4_fail_rt(e, "%s: out of memory for tensor '%s' (%llu bytes)", what, t->name,
                            (unsigned long long)t->nbytes);
    int rc = dsv4_fix_produce(op, buf, e);
    if (rc == 0) {
        if (s->have_manifest)
            t->hash = dsv4_xxh128(buf, t->nbytes);
        rc = dsv4_pwrite_all(fd, buf, t->nbytes, off, what, e);
        __atomic_fetch_add(&st->bytes_written, t->nbytes, __ATOMIC_RELAXED);
    }
    free(buf);
    return rc;
}

int rw_write_shard(rw_state *s, rw_shard *sh, const char *dir, dsv4_rewrite_stats *st, dsv4_err *e)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, sh->name);
    if (sh->kind == RW_OMIT)
        return 0;
    if (sh->kind == RW_LINK) {
        for (size_t k = 0; k < sh->n; k++)
            hash_kept(s, &s->t[sh->member[k]]);
        return rw_link_or_copy(sh->f->path, path, &st->bytes_kernel_copied, e);
    }
    const dsv4_st_plan_shard *ps = &sh->plan.shards[0];
    dsv4_atomic_file af;
    if (dsv4_atomic_file_open(&af, path, DSV4_ATOMIC_CREATE, e))
        return -1;
    int rc = 0;
    if (ftruncate(af.fd, (off_t)ps->file_bytes))
        rc = dsv4_fail_rt(e, "%s: cannot size the file to %llu bytes: %s", path, (unsigned long long)ps->file_bytes,
                          strerror(errno));
    if (rc == 0)
        rc = write_header(af.fd, ps, path, e);
    if (rc == 0)
        __atomic_fetch_add(&st->bytes_written, 8 + ps->header_len, __ATOMIC_RELAXED);
    if (rc == 0 && sh->kind == RW_HEADER_ONLY) {
        uint64_t n = ps->data_bytes;
        rc = rw_copy_range(sh->f->fd, 8 + sh->f->header_len, af.fd, 8 + ps->header_len, n, sh->f->path, e);
        __atomic_fetch_add(&st->bytes_kernel_copied, n, __ATOMIC_RELAXED);
        for (size_t k = 0; k < sh->n; k++)
            hash_kept(s, &s->t[sh->member[k]]);
    }
    for (size_t k = 0; rc == 0 && sh->kind == RW_REWRITE && k < sh->n; k++) {
        rw_tensor *t = &s->t[sh->member[k]]; /* plan tensor k is member k */
        uint64_t off = sh->plan.tensors[k].file_offset;
        if (t->put) {
            rc = put_tensor(s, t, af.fd, off, path, st, e);
            continue;
        }
        const dsv4_st_file *src = &s->art->files[t->orig->file];
        rc = rw_copy_range(src->fd, 8 + src->header_len + t->orig->begin, af.fd, off, t->nbytes, src->path, e);
        __atomic_fetch_add(&st->bytes_kernel_copied, t->nbytes, __ATOMIC_RELAXED);
        hash_kept(s, t);
    }
    if (rc) {
        dsv4_atomic_file_abort(&af);
        return -1;
    }
    return dsv4_atomic_file_commit(&af, e);
}
