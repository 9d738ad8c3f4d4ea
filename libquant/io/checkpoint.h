/* A checkpoint: one .safetensors file, or shards tied together by model.safetensors.index.json.
 * Opening validates every shard header and the index against the shards (entries pointing to
 * missing shards or tensors, tensors a shard holds but the index does not list, a tensor in two
 * shards, a wrong total_size). Tensors are looked up by name in a sorted table. */
#ifndef DSV4_CHECKPOINT_H
#define DSV4_CHECKPOINT_H

#include "io/safetensors.h"

#define DSV4_INDEX_NAME "model.safetensors.index.json"

typedef struct dsv4_index {
    int has_total_size;
    uint64_t total_size;
    size_t n;            /* weight_map entries, sorted by tensor name */
    char **names;
    char **files;        /* shard file name for names[i] (points into shard_names) */
    size_t n_shards;     /* distinct shard file names, sorted */
    char **shard_names;
} dsv4_index;

/* Parses an index (the JSON bytes). Shard names must be plain file names ending in .safetensors
 * (no directories, so an index cannot reach outside its folder). Pure: usable on untrusted bytes. */
int dsv4_index_parse(const char *json, size_t len, const char *path, dsv4_index *out, dsv4_err *e);
void dsv4_index_free(dsv4_index *ix);
/* Shard that the index assigns to a tensor, or NULL. */
const char *dsv4_index_lookup(const dsv4_index *ix, const char *name);

enum {
    DSV4_CKPT_LENIENT = 1,   /* record index inconsistencies in `problems` instead of failing */
    DSV4_CKPT_SKIP_BAD = 2,  /* a shard whose header does not parse (truncated write, garbage) is
                                left out and recorded in `bad_shards` instead of failing the open */
};

typedef struct dsv4_bad_shard {
    char *file;            /* shard file name */
    char *why;             /* the reader's error message */
} dsv4_bad_shard;

typedef struct dsv4_ckpt {
    char *dir;             /* folder holding the files */
    int has_index;
    dsv4_index index;
    size_t n_files;
    dsv4_st_file *files;   /* in shard-name order */
    size_t n;              /* all tensors of all files, sorted by name */
    const dsv4_tensor **by_name;
    uint64_t data_bytes;   /* sum of tensor byte sizes */
    size_t n_problems;     /* index drift found (lenient mode) and warnings (orphan shards) */
    char **problems;
    size_t n_bad_shards;   /* DSV4_CKPT_SKIP_BAD: shards left out, in name order */
    dsv4_bad_shard *bad_shards;
} dsv4_ckpt;

/* Opens a checkpoint from a folder (index, or a lone .safetensors file), a .safetensors file or an
 * index .json file. */
int dsv4_ckpt_open(const char *path, int flags, dsv4_ckpt *c, dsv4_err *e);
void dsv4_ckpt_close(dsv4_ckpt *c);
const dsv4_tensor *dsv4_ckpt_find(const dsv4_ckpt *c, const char *name);
/* Path of the file holding a tensor. */
const char *dsv4_ckpt_file_of(const dsv4_ckpt *c, const dsv4_tensor *t);

/* Reads a whole small file (config.json, an index) into a NUL-terminated buffer. */
int dsv4_read_file(const char *path, size_t max_bytes, char **out, size_t *len, dsv4_err *e);

#endif
