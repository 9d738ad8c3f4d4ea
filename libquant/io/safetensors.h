/* safetensors reading: one file, mapped read-only, with the header validated as strictly as the
 * reference Rust reader (and stricter where a malformed file could otherwise slip through).
 * Tensors are zero-copy views into the mapping. */
#ifndef DSV4_SAFETENSORS_H
#define DSV4_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "formats/dtype.h"
#include "util/err.h"

#define DSV4_MAX_DIMS 8
#define DSV4_ST_MAX_HEADER 100000000ULL /* safetensors' MAX_HEADER_SIZE */

typedef struct dsv4_tensor {
    char *name;
    dsv4_dtype dtype;
    int ndim;
    int64_t shape[DSV4_MAX_DIMS];
    uint64_t begin, end;   /* data_offsets, relative to the data region */
    const uint8_t *data;   /* view into the mapping; NULL for a header parsed from memory */
    uint32_t file;         /* index of the file within a checkpoint (0 for a lone file) */
} dsv4_tensor;

typedef struct dsv4_st_file {
    char *path;
    int fd;
    const uint8_t *map;    /* whole file, PROT_READ */
    uint64_t size;         /* file size in bytes */
    uint64_t header_len;   /* N: the JSON header's length, padding included */
    size_t n;              /* tensors, sorted by data offset */
    dsv4_tensor *tensors;
    size_t n_meta;         /* __metadata__ entries (all strings) */
    char **meta_keys, **meta_vals;
} dsv4_st_file;

/* Parses and validates a header (the N JSON bytes) for a file whose data region is data_size
 * bytes. `path` is only used in messages. Pure: usable on untrusted memory (fuzzed). On success
 * `out` owns names and metadata; release with dsv4_st_close. */
int dsv4_st_parse_header(const char *json, size_t len, uint64_t data_size, const char *path,
                         dsv4_st_file *out, dsv4_err *e);

/* Opens, validates and maps a .safetensors file. */
int dsv4_st_open(const char *path, dsv4_st_file *out, dsv4_err *e);
void dsv4_st_close(dsv4_st_file *f);

/* Looks up a tensor by name (linear scan; checkpoints use the sorted index in checkpoint.h). */
const dsv4_tensor *dsv4_st_find(const dsv4_st_file *f, const char *name);
/* Value of a __metadata__ key, or NULL. */
const char *dsv4_st_meta(const dsv4_st_file *f, const char *key);

uint64_t dsv4_tensor_numel(const dsv4_tensor *t);
static inline uint64_t dsv4_tensor_nbytes(const dsv4_tensor *t) { return t->end - t->begin; }
/* "[a, b, c]" of ndim dimensions (ndim 0: "[]") into buf; returns buf. Every shape in a message
 * or a listing is written by this one function. */
char *dsv4_dims_str(const int64_t *shape, int ndim, char *buf, size_t cap);
/* The shape of a tensor, by dsv4_dims_str. */
char *dsv4_shape_str(const dsv4_tensor *t, char *buf, size_t cap);

#endif
