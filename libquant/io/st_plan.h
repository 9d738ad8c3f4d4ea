/* The layout of a checkpoint before a byte is written: which shard each tensor goes to, its
 * data_offsets there, every shard's exact header bytes and size. The writer (st_write.h) follows
 * it; `--dry-run` prints it.
 *
 * Shards: tensors are taken in declaration order; a new shard starts when adding the next tensor
 * would push the current shard's tensor bytes past max_shard_bytes (headers not counted, as in
 * transformers). A tensor larger than the maximum gets a shard of its own.
 * Names: one shard is `model.safetensors` with no index (as transformers writes a small model);
 * several are `model-00001-of-0000N.safetensors` (5 digits) plus model.safetensors.index.json.
 * DSV4_ST_ALWAYS_INDEX uses the numbered name and an index even for one shard.
 * Inside a shard the layout is the reference writer's (safetensors `prepare`): dtype descending in
 * dtype.h's enum order, then name ascending (bytewise), offsets contiguous from 0; the header is
 * serde_json compact with `"__metadata__":{"format":"pt"}` first, padded with spaces to a multiple
 * of 8. So a shard is byte-identical to safetensors.torch.save_file(tensors, path,
 * metadata={"format": "pt"}) of the same tensors. */
#ifndef DSV4_ST_PLAN_H
#define DSV4_ST_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "io/safetensors.h"

#define DSV4_ST_SINGLE_NAME "model.safetensors"
#define DSV4_ST_MAX_SHARDS 99999

enum {
    DSV4_ST_ALWAYS_INDEX = 1, /* numbered shard names and an index even when there is one shard */
};

typedef struct dsv4_st_plan_tensor {
    char *name;
    dsv4_dtype dtype;
    int ndim;
    int64_t shape[DSV4_MAX_DIMS];
    uint64_t nbytes;
    uint32_t shard;        /* index into plan.shards */
    uint64_t begin, end;   /* data_offsets within the shard's data region */
    uint64_t file_offset;  /* absolute byte offset in the shard file: 8 + header_len + begin */
} dsv4_st_plan_tensor;

typedef struct dsv4_st_plan_shard {
    char *name;            /* file name (no folder) */
    size_t n;              /* tensors in this shard */
    size_t *order;         /* their plan indices, in file (offset) order */
    char *header;          /* header_len bytes of padded JSON (NUL-terminated for convenience) */
    uint64_t header_len;   /* N, padding included */
    uint64_t data_bytes;
    uint64_t file_bytes;   /* 8 + header_len + data_bytes */
} dsv4_st_plan_shard;

typedef struct dsv4_st_plan {
    uint64_t max_shard_bytes; /* 0: no limit */
    int flags;
    size_t n, cap;
    dsv4_st_plan_tensor *tensors; /* declaration order */
    size_t *by_name;              /* tensor indices sorted by name (after finish) */
    size_t n_shards;
    dsv4_st_plan_shard *shards;
    int has_index;
    uint64_t total_bytes;         /* sum of tensor bytes (index metadata.total_size), < 2^63 */
    uint64_t file_bytes;          /* sum of shard file sizes */
    int finished;
    size_t n_meta;                /* __metadata__ pairs (dsv4_st_plan_set_metadata); 0: format=pt */
    char **meta_keys, **meta_vals;
} dsv4_st_plan;

void dsv4_st_plan_init(dsv4_st_plan *p, uint64_t max_shard_bytes, int flags);
/* Declares the next tensor. Refuses empty names, "__metadata__", invalid UTF-8, more than
 * DSV4_MAX_DIMS dimensions, negative dimensions, and shapes that are not a whole number of bytes. */
int dsv4_st_plan_add(dsv4_st_plan *p, const char *name, dsv4_dtype dtype, int ndim,
                     const int64_t *shape, dsv4_err *e);
/* Assigns shards and offsets and renders the headers. Refuses duplicate names. */
int dsv4_st_plan_finish(dsv4_st_plan *p, dsv4_err *e);
void dsv4_st_plan_free(dsv4_st_plan *p);
/* Index of a declared tensor (after finish), or -1. */
long dsv4_st_plan_find(const dsv4_st_plan *p, const char *name);

/* Before finish: the headers' "__metadata__" pairs, in this order, instead of {"format":"pt"}
 * (a rewriter keeps a shard's own metadata). Keys and values are copied; n = 0 restores the
 * default. */
int dsv4_st_plan_set_metadata(dsv4_st_plan *p, size_t n, char *const *keys, char *const *vals,
                              dsv4_err *e);

/* A finished plan that describes existing shard files as they are: names[i] is the file name of
 * files[i]; tensors, offsets, header lengths and sizes are the files' own, whatever layout wrote
 * them. For rendering the index and the manifest (index_write.h, manifest.h) of a folder whose
 * shards were not all laid out by one plan (st_describe.c). Refuses a tensor name found twice. */
int dsv4_st_plan_describe(dsv4_st_plan *p, const dsv4_st_file *files, char *const *names, size_t n,
                          dsv4_err *e);

#endif
