/* What the rewriter's files share (rewrite.h is the public contract): the artifact's tensors after
 * the fix ops (rewrite_plan.c, rewrite_ops.c), what happens to each shard, and the helpers that
 * write shards (rewrite_shard.c), carry the other files, config, index and manifest
 * (rewrite_files.c) and commit the folder (rewrite_commit.c). */
#ifndef DSV4_REWRITE_INTERNAL_H
#define DSV4_REWRITE_INTERNAL_H

#include "fixup/rewrite.h"
#include "io/manifest.h"
#include "io/st_plan.h"

/* One tensor of the result (or a dropped one, kept so that indices stay stable). */
typedef struct rw_tensor {
    char *name;                  /* final name (owned) */
    const dsv4_tensor *orig;     /* the artifact tensor whose bytes it keeps; NULL when a PUT makes them */
    const dsv4_fix_op *put;      /* the PUT that makes its bytes, or NULL */
    const dsv4_fix_op *reshape;  /* the RESHAPE applied to it, or NULL */
    dsv4_dtype dtype;
    int ndim;
    int64_t shape[DSV4_MAX_DIMS];
    uint64_t nbytes;
    long shard;                  /* index into art->files; -1 while a new tensor has no shard yet */
    int renamed, dropped;
    const char *near;            /* new tensor: the op's placement hint */
    dsv4_hash128 hash;           /* manifest hash (when the artifact has a manifest), set while writing */
} rw_tensor;

enum { RW_LINK, RW_HEADER_ONLY, RW_REWRITE, RW_OMIT };

typedef struct rw_shard {
    const dsv4_st_file *f;       /* the artifact's shard */
    const char *name;            /* its file name in the folder */
    int kind;                    /* RW_* */
    int touched;                 /* an op changed one of its tensors */
    size_t n, cap;
    size_t *member;              /* rw_tensor indices of its (live) tensors, in plan declaration order */
    dsv4_st_plan plan;           /* HEADER_ONLY / REWRITE: the new layout, one shard */
} rw_shard;

typedef struct rw_state {
    const dsv4_ckpt *art;
    size_t n, cap;
    rw_tensor *t;
    size_t hcap;                 /* name table: open addressing, power of two */
    long *slot;                  /* -1 empty, -2 deleted, else a tensor index */
    size_t n_shards;
    rw_shard *sh;
    json_t *config;              /* the new config.json (owned), NULL when the artifact has none */
    json_t *rules;               /* ids of the rules whose ops were applied, in order */
    int index_op;                /* a DSV4_FIX_INDEX op: write the index even where there was none */
    int have_manifest;           /* the artifact has dsv4-manifest.json: regenerate it */
    dsv4_manifest old_manifest;  /* its entries (empty when it does not parse) */
} rw_state;

/* Applies the ops to a model of the artifact, validating each (code 2 on any refusal), places new
 * tensors, decides each shard's fate and fills the op and shard counts of `st`. Writes nothing. */
int rw_plan(rw_state *s, const dsv4_ckpt *art, const json_t *config, const dsv4_fix_list *ops,
            dsv4_rewrite_stats *st, dsv4_err *e);
void rw_state_free(rw_state *s);
/* Applies ops->v[k] to the table, checking it first (rewrite_ops.c). */
int rw_apply_op(rw_state *s, const dsv4_fix_list *ops, size_t k, dsv4_rewrite_stats *st, dsv4_err *e);
/* Index of the live tensor with this final name, or -1; adds tensor `idx` under its name. */
long rw_find(const rw_state *s, const char *name);
void rw_table_put(rw_state *s, long idx);
const char *rw_rule_of(const dsv4_fix_op *op);
/* File name part of a path. */
const char *rw_base(const char *path);

/* Writes shard `sh` into folder `dir` (link, header + kernel copy, or full rewrite) and sets the
 * manifest hash of each of its tensors when s->have_manifest. Thread-safe across shards. */
int rw_write_shard(rw_state *s, rw_shard *sh, const char *dir, dsv4_rewrite_stats *st, dsv4_err *e);
/* Copies len bytes between files with copy_file_range (read/write where the kernel refuses). */
int rw_copy_range(int in, uint64_t off_in, int out, uint64_t off_out, uint64_t len, const char *what,
                  dsv4_err *e);
/* Hard link, or a copy where linking is impossible; adds the copied bytes to *copied. */
int rw_link_or_copy(const char *from, const char *to, uint64_t *copied, dsv4_err *e);

/* Links every file of the artifact folder that is not a shard, the index, the manifest or (when
 * rewritten) config.json into `dir`; subfolders are recreated, symlinks copied as links. */
int rw_carry_files(const rw_state *s, const char *dir, dsv4_rewrite_stats *st, dsv4_err *e);
/* Writes config.json (when the artifact has one), the index (when it has one or an INDEX op asks)
 * and the manifest (when it has one) into `dir`, the last two from the headers of the shards now
 * in `dir`. */
int rw_write_meta(rw_state *s, const char *dir, dsv4_rewrite_stats *st, dsv4_err *e);

/* The folder being built and how it replaces the target. */
typedef struct rw_target {
    int in_place;
    char *path;                  /* the folder that receives the result */
    char *tmp;                   /* where it is built */
} rw_target;

int rw_target_begin(rw_target *t, const char *art_dir, const char *out, dsv4_err *e);
/* Renames (out) or swaps (in place) the built folder into place; `ev` reports the swap. */
int rw_target_commit(rw_target *t, const dsv4_rewrite_opts *o, dsv4_err *e);
void rw_target_abort(rw_target *t);

#endif
