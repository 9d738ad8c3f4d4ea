/* The artifact being broken: a clean artifact opened read-only, held as an editable list of
 * tensors (bytes borrowed from the clean shards' mappings until a mode replaces them), its
 * config.json as JSON, and how to write it back out. Writing re-saves every shard the way Python's
 * safetensors save_file does (io/st_plan.h layout) into a new folder built atomically, with the
 * index as transformers writes it and the tokenizer/generation files carried over; dsv4-quant's own
 * dsv4-manifest.json and report are left out, as a Python pipeline would not have written them.
 * A mode that edited headers only (D's rename_weight_scale_to_inv.py) asks for header-only
 * writing instead: every clean shard keeps its data section byte for byte, under a new header. */
#ifndef DSV4_BREAK_BART_H
#define DSV4_BREAK_BART_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "io/checkpoint.h"
#include "model/config.h"
#include "model/inventory.h"

typedef struct bt_tensor {
    char *name;
    dsv4_dtype dtype;
    int ndim;
    int64_t shape[DSV4_MAX_DIMS];
    uint64_t nbytes;
    const uint8_t *data;        /* borrowed from a mapping, or == owned */
    uint8_t *owned;
    const dsv4_tensor *orig;    /* the clean tensor it came from (NULL for a new one) */
} bt_tensor;

/* A change to model.safetensors.index.json beyond what the shards imply. */
typedef struct bt_index_edit {
    int stale_total;            /* write total_size = total_override */
    uint64_t total_override;
    const char *extra_name;     /* an entry no shard holds (NULL: none) */
    const char *missing_name;   /* a tensor left out of the weight_map (NULL: none) */
} bt_index_edit;

typedef struct bt_art {
    char *dir;                  /* the clean artifact */
    dsv4_ckpt ck;
    size_t n, cap;
    bt_tensor *t;               /* kept sorted by name */
    json_t *config;             /* owned */
    int config_changed;         /* config.json is re-rendered (else copied byte for byte) */
    dsv4_config cfg;            /* the clean config, parsed */
    dsv4_inventory inv;         /* its release inventory */
    uint64_t max_shard_bytes;   /* 0: one shard, as dsv4-quant writes the tiny model */
    int header_only;            /* keep the clean shards' data sections (renames only) */
    bt_index_edit ix;
    /* Called on the temporary output folder after everything is written, before the commit
     * (shard truncation, an orphan shard). */
    int (*post)(struct bt_art *a, const char *tmpdir, dsv4_err *e);
} bt_art;

int bt_open(bt_art *a, const char *clean_dir, dsv4_err *e);
void bt_close(bt_art *a);
int bt_write(bt_art *a, const char *out, dsv4_err *e);

/* Tensors by name; NULL when absent. */
bt_tensor *bt_find(bt_art *a, const char *name);
/* Removes a tensor (-1 with a message when absent). */
int bt_drop(bt_art *a, const char *name, dsv4_err *e);
/* Renames a tensor (refused when the new name exists). */
int bt_rename(bt_art *a, const char *name, const char *new_name, dsv4_err *e);
/* Adds (or replaces) a tensor with `nbytes` bytes taken over from `data` (malloc'd; freed here on
 * failure too). */
int bt_put(bt_art *a, const char *name, dsv4_dtype dtype, int ndim, const int64_t *shape, uint8_t *data,
           dsv4_err *e);
/* Adds (or replaces) a tensor with a copy of the bytes, dtype and shape of a tensor of another open
 * checkpoint (the source). */
int bt_put_view(bt_art *a, const char *name, const dsv4_tensor *from, dsv4_err *e);
/* New dtype/shape for an existing tensor with the same byte count (the bytes are unchanged). */
int bt_reshape(bt_art *a, const char *name, dsv4_dtype dtype, int ndim, const int64_t *shape, dsv4_err *e);

/* A tensor's values as BF16 (BF16 copied, F32 rounded to nearest even); malloc'd, numel in *n. */
uint16_t *bt_bf16_of(const bt_tensor *t, size_t *n, dsv4_err *e);
/* The inventory entry of a release name, or NULL. */
const dsv4_inv_tensor *bt_inv(const bt_art *a, const char *name);

/* Deterministic pseudo-random numbers (splitmix64), seeded from a string. */
uint64_t bt_seed(const char *s);
uint64_t bt_next(uint64_t *state);

#endif
