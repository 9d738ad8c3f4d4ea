/* Streaming checkpoint writer: writes the folder that a finished plan (st_plan.h) describes,
 * one tensor at a time, never holding the model in memory.
 *
 * Design: at open, the output folder is created as `<out>.tmp-<pid>` (atomic.h) and every shard
 * file is created under a temporary name there, its header written and its full size
 * preallocated with posix_fallocate, so a full disk is one clear error up front (not a SIGBUS
 * half-way through a mapping). A shard is mapped writable when its first tensor is filled; the
 * caller gets a pointer to the tensor's destination bytes and writes them in place. Distinct
 * tensors may be filled concurrently from several threads. When a shard's last tensor is done,
 * the thread that finished it syncs and unmaps the shard, and renames it to its final name.
 * Each tensor's xxh3-128 is computed right after it is filled. Close writes the index (when the
 * plan has one) and dsv4-manifest.json (manifest.h), each to a temporary name, fsync'd and
 * renamed, then renames the folder into place and fsyncs its parent. Any failure, or abort,
 * removes the temporary folder; a run killed outright leaves it behind, and the next writer for
 * the same output removes it if its process is gone (dsv4_atomic_dir_clean_stale).
 * Output is deterministic: the same declarations and bytes give identical files. */
#ifndef DSV4_ST_WRITE_H
#define DSV4_ST_WRITE_H

#include "io/manifest.h"
#include "io/st_plan.h"

typedef struct dsv4_st_writer dsv4_st_writer;

/* Progress events, in the order they happen. DSV4_ST_EV_TENSOR may come from several threads. */
enum {
    DSV4_ST_EV_OPENED,      /* temporary folder and preallocated shard files exist */
    DSV4_ST_EV_TENSOR,      /* a tensor is filled and hashed (`index` is the plan tensor) */
    DSV4_ST_EV_SHARD,       /* a shard is complete, synced and renamed (`index` is the shard) */
    DSV4_ST_EV_INDEX,       /* the index file is written (only when the plan has one) */
    DSV4_ST_EV_MANIFEST,    /* the manifest is written; next comes the folder rename */
    DSV4_ST_EV_COMMITTED,   /* the folder is renamed into place and its parent fsync'd */
};
typedef void (*dsv4_st_progress_fn)(void *ctx, int event, size_t index, uint64_t bytes_done,
                                    uint64_t bytes_total);

typedef struct dsv4_st_write_opts {
    dsv4_st_progress_fn progress; /* optional; must be thread-safe when filling from threads */
    void *progress_ctx;
    /* Optional: called by close once the temporary folder is complete (shards, index, manifest,
     * added files) and before it is renamed into place, with the temporary folder's path. It may
     * read the folder as a checkpoint and add files to it (dsv4-quant stores its verification
     * report there, so the folder appears with it or not at all). Failing (-1, `e` set) discards
     * the output like any other failure. */
    int (*before_commit)(void *ctx, const char *tmp_dir, dsv4_err *e);
    void *before_commit_ctx;
    /* Optional: the manifest's "calibration" section (manifest.h); must outlive the writer. */
    const json_t *manifest_calibration;
} dsv4_st_write_opts;

/* Starts writing `plan` (finished; it must outlive the writer) to the folder `out`, which must
 * not exist. `opts` may be NULL. */
int dsv4_st_writer_open(dsv4_st_writer **w, const dsv4_st_plan *plan, const char *out,
                        const dsv4_st_write_opts *opts, dsv4_err *e);

/* Fills plan tensor `i`: `fn` gets the destination (t->nbytes writable bytes, mapped from the
 * shard file) and must write every byte; return 0, or -1 with `e` set. Thread-safe for distinct
 * tensors. Each tensor is filled exactly once; order is free. */
typedef int (*dsv4_st_fill_fn)(void *ctx, const dsv4_st_plan_tensor *t, uint8_t *dst, dsv4_err *e);
int dsv4_st_writer_fill(dsv4_st_writer *w, size_t i, dsv4_st_fill_fn fn, void *ctx, dsv4_err *e);
/* The same as a pair, for callers that produce a tensor in several steps: begin hands out the
 * destination, end hashes it and marks the tensor done. */
int dsv4_st_writer_begin(dsv4_st_writer *w, size_t i, uint8_t **dst, dsv4_err *e);
int dsv4_st_writer_end(dsv4_st_writer *w, size_t i, dsv4_err *e);
/* Copies `n` bytes (which must equal the tensor's size) into tensor `i`. */
int dsv4_st_writer_put(dsv4_st_writer *w, size_t i, const void *src, uint64_t n, dsv4_err *e);

/* Adds a non-tensor file (config.json, tokenizer files) to the output folder, written atomically
 * into the temporary folder so it appears with the rest at close. `name` is a plain file name. */
int dsv4_st_writer_add_file(dsv4_st_writer *w, const char *name, const void *buf, size_t n, dsv4_err *e);
/* Adds each file of the NULL-terminated `names` that exists in `src_dir` (the tokenizer and other
 * files carried from a source checkpoint), as dsv4_st_writer_add_file. */
int dsv4_st_writer_copy_files(dsv4_st_writer *w, const char *src_dir, const char *const *names, dsv4_err *e);

/* Checks every tensor was filled, writes index and manifest, and moves the folder into place.
 * Frees `w` whatever the outcome; on failure nothing is left at `out`. */
int dsv4_st_writer_close(dsv4_st_writer *w, dsv4_err *e);
/* Discards everything written so far and frees `w`. */
void dsv4_st_writer_abort(dsv4_st_writer *w);

/* Hash recorded for tensor `i` (valid once it is filled). */
dsv4_hash128 dsv4_st_writer_hash(const dsv4_st_writer *w, size_t i);

/* Convenience: plan + open + put each of `n` in-memory tensors (data[i] for plan tensor i) + close. */
int dsv4_st_write_all(const dsv4_st_plan *plan, const char *out, const void *const *data, dsv4_err *e);

#endif
