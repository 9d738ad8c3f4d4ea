/* A repair, as data: what dsv4-fixup must do to one tensor or to config.json, and which rule asked
 * for it. Rules emit these while checking (vctx.h: dsv4_vctx_fix_*); dsv4-fixup collects them into
 * a plan, prints them with --dry-run, and the rewriter (fixup/rewrite.h) applies them in one pass
 * per shard. Ops apply in list order (rules run in registry order, the names rules first): a RENAME
 * renames the tensor that has `name` at that point, and every other op names a tensor by the name
 * it has after the ops before it. The names rules rename on-disk names to canonical names (vctx.h),
 * so the later rules, which work on canonical names, name tensors consistently. */
#ifndef DSV4_FIX_H
#define DSV4_FIX_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "io/safetensors.h"

typedef enum dsv4_fix_kind {
    DSV4_FIX_RENAME,   /* tensor `name` (as on disk) becomes `new_name`; bytes, dtype, shape unchanged */
    DSV4_FIX_RESHAPE,  /* tensor `name` gets dtype/ndim/shape (same byte count); bytes unchanged */
    DSV4_FIX_PUT,      /* tensor `name` (new, or replacing the one of that name) = produced bytes */
    DSV4_FIX_DROP,     /* tensor `name` is removed */
    DSV4_FIX_CONFIG,   /* config.json: at `path` (object keys from the top) set `value`, or delete
                          the key when `value` is NULL */
    DSV4_FIX_INDEX,    /* rebuild model.safetensors.index.json from the shard headers (no other
                          field used); the rewriter also does it whenever it writes anything */
} dsv4_fix_kind;

typedef enum dsv4_produce {
    DSV4_PRODUCE_COPY,      /* the bytes of `from` as they are (dtype/shape re-declared, same size) */
    DSV4_PRODUCE_BF16,      /* `from` (+ `from_scale`: release e8m0 FP8-block or FP4 scale) as BF16,
                               exactly as dsv4-quant's BF16 job (artifact/convert_job.c) computes it */
    DSV4_PRODUCE_CAST,      /* `from` converted value by value to `dtype` (float <-> float); refused
                               when a value does not survive exactly */
    DSV4_PRODUCE_CT_DEQUANT,/* `from` F8_E4M3 + `from_scale` compressed-tensors weight_scale (BF16/F32,
                               one per 128x128 block) or weight_scale_inv, to BF16: bf16(fp8 * scale) */
} dsv4_produce;

typedef struct dsv4_fix_op {
    dsv4_fix_kind kind;
    const char *rule;            /* id of the rule that asked for it (static string) */
    char *name;                  /* RENAME: old name; others: final name */
    char *new_name;              /* RENAME only */
    dsv4_dtype dtype;            /* RESHAPE / PUT: declared dtype */
    int ndim;
    int64_t shape[DSV4_MAX_DIMS];
    dsv4_produce produce;        /* PUT */
    const dsv4_tensor *from;     /* PUT: a tensor of the artifact or of the source (both stay open) */
    const dsv4_tensor *from_scale;
    char *near;                  /* PUT of a new tensor: write it into the shard holding this
                                    (final-named) tensor; NULL: the shard of the alphabetically
                                    nearest existing tensor */
    char **path;                 /* CONFIG: keys from the top of config.json */
    size_t depth;
    json_t *value;               /* CONFIG: new value (owned), NULL deletes */
    char *why;                   /* one line for --dry-run: "restore F32 from the source (was BF16)" */
} dsv4_fix_op;

typedef struct dsv4_fix_list {
    size_t n, cap;
    dsv4_fix_op *v;
} dsv4_fix_list;

void dsv4_fix_list_free(dsv4_fix_list *l);
/* Appends a copy of `op` (strings duplicated, value reference taken over). 0 or -1 (out of memory). */
int dsv4_fix_list_add(dsv4_fix_list *l, const dsv4_fix_op *op);
const char *dsv4_fix_kind_name(dsv4_fix_kind k);

#endif
