/* Crash-safe file and folder creation. A file is written under a temporary name in its own folder,
 * fsync'd, renamed into place and the folder fsync'd, so a reader (or a run killed at any instant)
 * sees either no file / the old file, or the complete new one. A whole output folder is built
 * under a temporary sibling name `<out>.tmp-<pid>` and renamed into place once complete.
 *
 * Temporary names: files `<dir>/.<name>.tmp-<pid>-<seq>`, folders `<out>.tmp-<pid>`. Both begin
 * with a dot or carry a suffix, so checkpoint openers never mistake them for shards. */
#ifndef DSV4_ATOMIC_H
#define DSV4_ATOMIC_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

enum {
    DSV4_ATOMIC_CREATE = 0,  /* the destination must not exist; refused (not replaced) if it does */
    DSV4_ATOMIC_REPLACE = 1, /* the destination must exist; it is replaced, keeping its permissions */
};

typedef struct dsv4_atomic_file {
    int fd;      /* open read-write on the temporary file; -1 once committed or aborted */
    int mode;    /* DSV4_ATOMIC_CREATE or DSV4_ATOMIC_REPLACE */
    char *path;  /* destination */
    char *tmp;   /* temporary sibling */
} dsv4_atomic_file;

/* Creates the temporary file for `path` (mode CREATE: refused when `path` exists already). */
int dsv4_atomic_file_open(dsv4_atomic_file *f, const char *path, int mode, dsv4_err *e);
/* fsync, close, rename into place (CREATE never replaces a file that appeared meanwhile), fsync
 * the folder. On failure the temporary file is removed. Either way `f` is released. */
int dsv4_atomic_file_commit(dsv4_atomic_file *f, dsv4_err *e);
/* Closes and removes the temporary file; `f` is released. Safe on a released or zeroed file. */
void dsv4_atomic_file_abort(dsv4_atomic_file *f);

/* One-call forms: write `n` bytes to a new file, or replace an existing file (in-place repairs). */
int dsv4_atomic_write(const char *path, const void *buf, size_t n, dsv4_err *e);
int dsv4_atomic_replace(const char *path, const void *buf, size_t n, dsv4_err *e);

/* pwrite loop; `path` only names the file in messages. */
int dsv4_pwrite_all(int fd, const void *buf, size_t n, uint64_t off, const char *path, dsv4_err *e);
/* fsync a folder (makes a rename or a new entry in it durable). */
int dsv4_fsync_dir(const char *dir, dsv4_err *e);

typedef struct dsv4_atomic_dir {
    char *path;  /* destination folder */
    char *tmp;   /* `<path>.tmp-<pid>`, where the content is built */
} dsv4_atomic_dir;

/* Refuses when `path` exists. Removes stale temporary siblings (dsv4_atomic_dir_clean_stale) and
 * creates `<path>.tmp-<pid>`. */
int dsv4_atomic_dir_begin(dsv4_atomic_dir *d, const char *path, dsv4_err *e);
/* fsyncs the temporary folder, renames it to `path` (refused, never merged or replaced, when
 * `path` appeared meanwhile) and fsyncs the parent. On failure the temporary folder is removed.
 * Either way `d` is released. Files inside must already be complete and fsync'd. */
int dsv4_atomic_dir_commit(dsv4_atomic_dir *d, dsv4_err *e);
/* Removes the temporary folder and everything in it; `d` is released. Safe on a released one. */
void dsv4_atomic_dir_abort(dsv4_atomic_dir *d);
/* Removes siblings `<path>.tmp-<pid>` left by killed runs: those whose pid is no process on this
 * host (kill(pid, 0) fails with ESRCH) and the one named with our own pid (no other live process
 * can hold it). `removed` (may be NULL) receives the count. */
int dsv4_atomic_dir_clean_stale(const char *path, size_t *removed, dsv4_err *e);

/* Removes a file or a folder tree (no symlinks followed). 0 when it is gone or was absent. */
int dsv4_rmtree(const char *path);

#endif
