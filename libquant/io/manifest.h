/* dsv4-manifest.json: what the writer put in a checkpoint folder, tensor by tensor, with an
 * xxh3-128 hash of each tensor's bytes computed while writing. Verification (dsv4-verify, the
 * SIGKILL test) reopens the checkpoint and compares every tensor against it.
 *
 * Format (deterministic; keys in this fixed order, one tensor per line, sorted by name bytewise,
 * strings escaped as Python's json.dumps with ensure_ascii, so the file is pure ASCII):
 *   {
 *     "format": "dsv4-manifest",
 *     "version": 1,
 *     "hash": "xxh3-128",
 *     "total_size": <sum of tensor bytes>,
 *     "files": {
 *       "<shard>": {"size": <file bytes>, "header_len": <N>, "tensors": <count>},
 *       ...
 *     },
 *     "tensors": {
 *       "<name>": {"file": "<shard>", "dtype": "F32", "shape": [2, 3], "nbytes": 24,
 *                  "data_offsets": [0, 24], "xxh3_128": "<32 hex digits>"},   (on one line)
 *       ...
 *     }
 *   }
 * An artifact made with calibration (GPTQ) has one more key after "tensors", its experts'
 * calibration coverage, one layer per line in bytewise name order (written by dsv4-quant, kept by
 * dsv4-fixup):
 *     "calibration": {
 *       "<layer>": {"hessians": ["routed" | "all_tokens" | "rtn" | "none", ...], "tokens": [<routed
 *                   tokens of expert 0>, ...]},   (on one line; compact JSON, sorted keys, ASCII)
 *       ...
 *     }
 * The hash is XXH3_128bits (libxxhash) of the tensor's bytes, printed as 32 lowercase hex digits,
 * the high 64 bits then the low 64 bits: XXH128's canonical big-endian form, the same string
 * `xxh128sum` prints for a file holding just those bytes. */
#ifndef DSV4_MANIFEST_H
#define DSV4_MANIFEST_H

#include "io/checkpoint.h"
#include "io/json_out.h"
#include "io/st_plan.h"

#include <jansson.h>

#define DSV4_MANIFEST_NAME "dsv4-manifest.json"

typedef struct dsv4_hash128 {
    uint64_t hi, lo;
} dsv4_hash128;

dsv4_hash128 dsv4_xxh128(const void *data, size_t n);
/* 32 hex digits and a NUL into out. */
void dsv4_hash128_hex(dsv4_hash128 h, char out[33]);

/* Appends the manifest for a finished plan; hashes[i] belongs to plan tensor i. `calibration`
 * (NULL: none) is the "calibration" section: an object of per-layer objects. */
int dsv4_manifest_render(const dsv4_st_plan *p, const dsv4_hash128 *hashes, const json_t *calibration,
                         dsv4_jbuf *out, dsv4_err *e);

typedef struct dsv4_manifest_entry {
    char *name, *file;
    dsv4_dtype dtype;
    int ndim;
    int64_t shape[DSV4_MAX_DIMS];
    uint64_t nbytes;
    dsv4_hash128 hash;
} dsv4_manifest_entry;

typedef struct dsv4_manifest {
    uint64_t total_size;
    size_t n;                    /* sorted by name */
    dsv4_manifest_entry *v;
    json_t *calibration;         /* the "calibration" section (owned), or NULL */
} dsv4_manifest;

/* Parses manifest JSON bytes (`path` names it in messages). Pure: usable on untrusted bytes. */
int dsv4_manifest_parse(const char *json, size_t len, const char *path, dsv4_manifest *m, dsv4_err *e);
/* Reads `<dir>/dsv4-manifest.json`. */
int dsv4_manifest_load(const char *dir, dsv4_manifest *m, dsv4_err *e);
void dsv4_manifest_free(dsv4_manifest *m);
/* Checks an opened checkpoint against a manifest: the same tensor names, each in the recorded
 * file with the recorded dtype, shape and size, and bytes that hash to the recorded value. */
int dsv4_manifest_verify(const dsv4_manifest *m, const dsv4_ckpt *c, dsv4_err *e);

#endif
