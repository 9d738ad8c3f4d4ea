/* Temporary-name-then-rename file and folder creation (see atomic.h). */
#include "io/atomic.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned long tmp_seq;

/* Folder part of a path ("." when none, "/" for a file at the root). Caller frees. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static const char *base_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int dsv4_pwrite_all(int fd, const void *buf, size_t n, uint64_t off, const char *path, dsv4_err *e)
{
    const char *p = buf;
    while (n) {
        ssize_t k = pwrite(fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return dsv4_fail_rt(e, "%s: write failed at byte %llu: %s", path, (unsigned long long)off,
                                k < 0 ? strerror(errno) : "no progress");
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

int dsv4_fsync_dir(const char *dir, dsv4_err *e)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return dsv4_fail_rt(e, "%s: cannot open folder to fsync it: %s", dir, strerror(errno));
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    if (rc && err != EINVAL) /* some filesystems cannot fsync folders; nothing more we can do */
        return dsv4_fail_rt(e, "%s: fsync of the folder failed: %s", dir, strerror(err));
    return 0;
}

/* rename() that never replaces an existing destination. EEXIST when it exists. */
static int rename_noreplace(const char *from, const char *to, int is_dir)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    /* The filesystem lacks RENAME_NOREPLACE: a hard link is an atomic no-replace for files. */
    if (!is_dir && link(from, to) == 0) {
        unlink(from);
        return 0;
    }
    if (!is_dir && errno == EEXIST)
        return -1;
    struct stat st;
    if (lstat(to, &st) == 0) {
        errno = EEXIST;
        return -1;
    }
    return rename(from, to);
}

static void file_release(dsv4_atomic_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    free(f->path);
    free(f->tmp);
    memset(f, 0, sizeof *f);
    f->fd = -1;
}

int dsv4_atomic_file_open(dsv4_atomic_file *f, const char *path, int mode, dsv4_err *e)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    struct stat st;
    int exists = lstat(path, &st) == 0;
    if (mode == DSV4_ATOMIC_CREATE && exists)
        return dsv4_fail(e, "%s: already exists; refusing to overwrite it", path);
    if (mode == DSV4_ATOMIC_REPLACE && (!exists || !S_ISREG(st.st_mode)))
        return dsv4_fail(e, "%s: expected an existing regular file to replace", path);
    char *dir = dir_of(path);
    size_t cap = strlen(path) + 64;
    f->path = strdup(path);
    f->tmp = malloc(cap);
    if (!dir || !f->path || !f->tmp) {
        free(dir);
        file_release(f);
        return dsv4_fail_rt(e, "%s: out of memory", path);
    }
    unsigned long seq = __atomic_fetch_add(&tmp_seq, 1, __ATOMIC_RELAXED);
    snprintf(f->tmp, cap, "%s/.%s.tmp-%ld-%lu", dir, base_of(path), (long)getpid(), seq);
    free(dir);
    f->mode = mode;
    f->fd = open(f->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (f->fd < 0) {
        int err = errno;
        dsv4_fail_rt(e, "%s: cannot create the temporary file %s: %s", path, f->tmp, strerror(err));
        file_release(f);
        return -1;
    }
    if (mode == DSV4_ATOMIC_REPLACE && fchmod(f->fd, st.st_mode & 07777)) {
        dsv4_fail_rt(e, "%s: cannot copy the permissions onto %s: %s", path, f->tmp, strerror(errno));
        dsv4_atomic_file_abort(f);
        return -1;
    }
    return 0;
}

int dsv4_atomic_file_commit(dsv4_atomic_file *f, dsv4_err *e)
{
    if (fsync(f->fd)) {
        dsv4_fail_rt(e, "%s: fsync failed: %s", f->tmp, strerror(errno));
        dsv4_atomic_file_abort(f);
        return -1;
    }
    int rc = close(f->fd);
    f->fd = -1;
    if (rc) {
        dsv4_fail_rt(e, "%s: close failed: %s", f->tmp, strerror(errno));
        dsv4_atomic_file_abort(f);
        return -1;
    }
    rc = f->mode == DSV4_ATOMIC_REPLACE ? rename(f->tmp, f->path) : rename_noreplace(f->tmp, f->path, 0);
    if (rc) {
        int err = errno;
        if (err == EEXIST)
            dsv4_fail(e, "%s: appeared while it was being written; refusing to overwrite it", f->path);
        else
            dsv4_fail_rt(e, "%s: cannot rename %s into place: %s", f->path, f->tmp, strerror(err));
        dsv4_atomic_file_abort(f);
        return -1;
    }
    char *dir = dir_of(f->path);
    rc = dir ? dsv4_fsync_dir(dir, e) : dsv4_fail_rt(e, "%s: out of memory", f->path);
    free(dir);
    file_release(f);
    return rc;
}

void dsv4_atomic_file_abort(dsv4_atomic_file *f)
{
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
    if (f->tmp)
        unlink(f->tmp);
    file_release(f);
}

static int write_whole(const char *path, const void *buf, size_t n, int mode, dsv4_err *e)
{
    dsv4_atomic_file f;
    if (dsv4_atomic_file_open(&f, path, mode, e))
        return -1;
    if (dsv4_pwrite_all(f.fd, buf, n, 0, f.tmp, e)) {
        dsv4_atomic_file_abort(&f);
        return -1;
    }
    return dsv4_atomic_file_commit(&f, e);
}

int dsv4_atomic_write(const char *path, const void *buf, size_t n, dsv4_err *e)
{
    return write_whole(path, buf, n, DSV4_ATOMIC_CREATE, e);
}

int dsv4_atomic_replace(const char *path, const void *buf, size_t n, dsv4_err *e)
{
    return write_whole(path, buf, n, DSV4_ATOMIC_REPLACE, e);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p) && errno != ENOENT ? -1 : 0;
}

int dsv4_rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) && errno == ENOENT)
        return 0;
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* `path` without trailing slashes; NULL when nothing remains (the root) or out of memory. */
static char *strip_slashes(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    if (n == 0 || (n == 1 && path[0] == '/'))
        return NULL;
    return strndup(path, n);
}

int dsv4_atomic_dir_clean_stale(const char *path, size_t *removed, dsv4_err *e)
{
    if (removed)
        *removed = 0;
    char *p = strip_slashes(path);
    if (!p)
        return dsv4_fail(e, "'%s': expected a folder path other than the root", path);
    char *dir = dir_of(p);
    char prefix[4096];
    snprintf(prefix, sizeof prefix, "%s.tmp-", base_of(p));
    size_t plen = strlen(prefix);
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d) {
        int rc = errno == ENOENT ? 0 : dsv4_fail_rt(e, "%s: cannot list the folder: %s", dir ? dir : p,
                                                    strerror(errno));
        free(dir);
        free(p);
        return rc;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *s = de->d_name;
        if (strncmp(s, prefix, plen) || !s[plen] || strspn(s + plen, "0123456789") != strlen(s + plen))
            continue;
        long pid = strtol(s + plen, NULL, 10);
        if (pid <= 0 || (pid != (long)getpid() && !(kill((pid_t)pid, 0) && errno == ESRCH)))
            continue;
        char full[8192];
        snprintf(full, sizeof full, "%s/%s", dir, s);
        if (dsv4_rmtree(full)) {
            rc = dsv4_fail_rt(e, "%s: cannot remove this stale temporary folder: %s", full, strerror(errno));
            break;
        }
        if (removed)
            (*removed)++;
    }
    closedir(d);
    free(dir);
    free(p);
    return rc;
}

static void dir_release(dsv4_atomic_dir *d)
{
    free(d->path);
    free(d->tmp);
    memset(d, 0, sizeof *d);
}

int dsv4_atomic_dir_begin(dsv4_atomic_dir *d, const char *path, dsv4_err *e)
{
    memset(d, 0, sizeof *d);
    d->path = strip_slashes(path);
    if (!d->path)
        return dsv4_fail(e, "'%s': expected an output folder path other than the root", path);
    struct stat st;
    if (lstat(d->path, &st) == 0) {
        dsv4_fail(e, "%s: already exists; refusing to overwrite it (remove it or choose another "
                  "output folder)", d->path);
        dir_release(d);
        return -1;
    }
    if (dsv4_atomic_dir_clean_stale(d->path, NULL, e)) {
        dir_release(d);
        return -1;
    }
    size_t cap = strlen(d->path) + 32;
    if (!(d->tmp = malloc(cap))) {
        dir_release(d);
        return dsv4_fail_rt(e, "%s: out of memory", path);
    }
    snprintf(d->tmp, cap, "%s.tmp-%ld", d->path, (long)getpid());
    if (mkdir(d->tmp, 0777)) {
        dsv4_fail_rt(e, "%s: cannot create the temporary folder %s: %s", d->path, d->tmp, strerror(errno));
        dir_release(d);
        return -1;
    }
    return 0;
}

int dsv4_atomic_dir_commit(dsv4_atomic_dir *d, dsv4_err *e)
{
    if (dsv4_fsync_dir(d->tmp, e)) {
        dsv4_atomic_dir_abort(d);
        return -1;
    }
    if (rename_noreplace(d->tmp, d->path, 1)) {
        int err = errno;
        if (err == EEXIST || err == ENOTEMPTY)
            dsv4_fail(e, "%s: appeared while the output was being written; refusing to overwrite it "
                      "(the new output is discarded)", d->path);
        else
            dsv4_fail_rt(e, "%s: cannot rename %s into place: %s", d->path, d->tmp, strerror(err));
        dsv4_atomic_dir_abort(d);
        return -1;
    }
    char *parent = dir_of(d->path);
    int rc = parent ? dsv4_fsync_dir(parent, e) : dsv4_fail_rt(e, "%s: out of memory", d->path);
    free(parent);
    dir_release(d);
    return rc;
}

void dsv4_atomic_dir_abort(dsv4_atomic_dir *d)
{
    if (d->tmp)
        dsv4_rmtree(d->tmp);
    dir_release(d);
}
