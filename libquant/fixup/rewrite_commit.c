/* Where the rewritten artifact is built and how it takes its place (see rewrite.h, "Commit").
 * With an output folder: io/atomic.h's folder build and no-replace rename. In place: the folder
 * `<artifact>.tmp-<pid>` is built beside the artifact and exchanged with it in one
 * renameat2(RENAME_EXCHANGE), so the artifact path always names a complete folder, old or new; the
 * old tree, now under the temporary name, is removed afterwards (or, if the process dies first, by
 * the next run's dsv4_atomic_dir_clean_stale, since its pid is then gone). */
#include "fixup/rewrite_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/atomic.h"

static char *parent_of(const char *path)
{
    const char *s = strrchr(path, '/');
    if (!s)
        return strdup(".");
    return s == path ? strdup("/") : strndup(path, (size_t)(s - path));
}

void rw_target_abort(rw_target *t)
{
    if (t->tmp)
        dsv4_rmtree(t->tmp);
    free(t->path);
    free(t->tmp);
    memset(t, 0, sizeof *t);
}

int rw_target_begin(rw_target *t, const char *art_dir, const char *out, dsv4_err *e)
{
    memset(t, 0, sizeof *t);
    if (out) {
        dsv4_atomic_dir d;
        if (dsv4_atomic_dir_begin(&d, out, e))
            return -1;
        t->path = d.path; /* the folder is ours now; commit renames it the same way */
        t->tmp = d.tmp;
        return 0;
    }
    t->in_place = 1;
    char real[PATH_MAX];
    if (!realpath(art_dir, real))
        return dsv4_fail(e, "%s: cannot resolve the artifact folder: %s", art_dir, strerror(errno));
    struct stat st;
    if (stat(real, &st) || !S_ISDIR(st.st_mode))
        return dsv4_fail(e, "%s: an in-place rewrite needs the artifact's folder", art_dir);
    if (!strcmp(real, "/"))
        return dsv4_fail(e, "%s: refusing to rewrite the root folder in place", art_dir);
    if (dsv4_atomic_dir_clean_stale(real, NULL, e))
        return -1;
    size_t cap = strlen(real) + 32;
    t->path = strdup(real);
    t->tmp = malloc(cap);
    if (!t->path || !t->tmp) {
        rw_target_abort(t);
        return dsv4_fail_rt(e, "out of memory");
    }
    snprintf(t->tmp, cap, "%s.tmp-%ld", real, (long)getpid());
    if (mkdir(t->tmp, st.st_mode & 07777)) {
        int err = errno;
        free(t->tmp);
        t->tmp = NULL; /* not ours: never remove it */
        rw_target_abort(t);
        return dsv4_fail_rt(e, "%s: cannot create the temporary folder beside it: %s", real, strerror(err));
    }
    if (chmod(t->tmp, st.st_mode & 07777)) { /* mkdir applied the umask */
        int err = errno;
        rw_target_abort(t);
        return dsv4_fail_rt(e, "%s.tmp-%ld: cannot copy the artifact folder's permissions: %s", real,
                            (long)getpid(), strerror(err));
    }
    return 0;
}

static void report(const dsv4_rewrite_opts *o, int ev)
{
    if (o && o->progress)
        o->progress(o->progress_ctx, ev, 0, 0);
}

int rw_target_commit(rw_target *t, const dsv4_rewrite_opts *o, dsv4_err *e)
{
    if (!t->in_place) {
        dsv4_atomic_dir d = {t->path, t->tmp};
        t->path = t->tmp = NULL; /* released by the commit, whatever its outcome */
        if (dsv4_atomic_dir_commit(&d, e))
            return -1;
        report(o, DSV4_RW_EV_COMMITTED);
        return 0;
    }
    if (dsv4_fsync_dir(t->tmp, e)) {
        rw_target_abort(t);
        return -1;
    }
    if (renameat2(AT_FDCWD, t->tmp, AT_FDCWD, t->path, RENAME_EXCHANGE)) {
        int err = errno;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s", t->path);
        rw_target_abort(t);
        if (err == EINVAL || err == ENOSYS)
            return dsv4_fail(e, "%s: the filesystem does not support exchanging two folders atomically "
                             "(renameat2 RENAME_EXCHANGE: %s), which an in-place rewrite needs; write the repaired "
                             "artifact to a new folder with -o instead", path, strerror(err));
        return dsv4_fail_rt(e, "%s: cannot exchange it with the rewritten folder: %s", path, strerror(err));
    }
    report(o, DSV4_RW_EV_SWAPPED);
    char *parent = parent_of(t->path);
    int rc = parent ? dsv4_fsync_dir(parent, e) : dsv4_fail_rt(e, "out of memory");
    free(parent);
    /* t->tmp now holds the old tree; removing it is cleanup (a failure leaves a stale folder that
     * the next run removes), the artifact itself is already the new one. */
    dsv4_rmtree(t->tmp);
    free(t->path);
    free(t->tmp);
    memset(t, 0, sizeof *t);
    if (rc == 0)
        report(o, DSV4_RW_EV_COMMITTED);
    return rc;
}
