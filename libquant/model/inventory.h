/* The expected tensor list of a DeepSeek-V4 checkpoint in DeepSeek's release layout, derived from
 * a config (spec/dsv4_architecture.md §2, seed_pipelines.md §1.2–§1.3): every name with its dtype,
 * shape, role, layer, expert and flags. It is what converters write, verifiers compare against and
 * quantizers iterate over. FP8 linears are F8_E4M3 + F8_E8M0 `.scale` [ceil(out/128),
 * ceil(in/128)]; FP4 routed experts are I8 [out, in/2] + F8_E8M0 `.scale` [out, in/32] (with
 * expert_dtype fp8 the experts are FP8-block like the other linears). */
#ifndef DSV4_INVENTORY_H
#define DSV4_INVENTORY_H

#include <stddef.h>
#include <stdint.h>

#include "formats/dtype.h"
#include "model/config.h"
#include "util/err.h"

/* What a tensor is for. The string names (dsv4_role_name) are stable: tools print and match them. */
typedef enum dsv4_role {
    DSV4_ROLE_EMBED,              /* "embed": embed.weight */
    DSV4_ROLE_HEAD,               /* "head": head.weight */
    DSV4_ROLE_NORM,               /* "norm": norm.weight, attn_norm, ffn_norm */
    DSV4_ROLE_HC,                 /* "hc": hc_head_*, hc_attn_*, hc_ffn_* */
    DSV4_ROLE_SINK,               /* "sink": attn.attn_sink */
    DSV4_ROLE_ATTN_LINEAR,        /* "attn_linear": attn.wq_a / wq_b / wkv / wo_a / wo_b */
    DSV4_ROLE_ATTN_NORM,          /* "attn_norm": attn.q_norm, attn.kv_norm */
    DSV4_ROLE_COMPRESSOR,         /* "compressor": attn.compressor.wkv / wgate / norm */
    DSV4_ROLE_COMPRESSOR_APE,     /* "compressor_ape": attn.compressor.ape */
    DSV4_ROLE_INDEXER,            /* "indexer": attn.indexer.wq_b, attn.indexer.weights_proj */
    DSV4_ROLE_INDEXER_COMPRESSOR, /* "indexer_compressor": attn.indexer.compressor.wkv / wgate / norm */
    DSV4_ROLE_INDEXER_APE,        /* "indexer_ape": attn.indexer.compressor.ape */
    DSV4_ROLE_GATE,               /* "gate": ffn.gate.weight */
    DSV4_ROLE_GATE_BIAS,          /* "gate_bias": ffn.gate.bias */
    DSV4_ROLE_TID2EID,            /* "tid2eid": ffn.gate.tid2eid */
    DSV4_ROLE_SHARED_EXPERT,      /* "shared_expert": ffn.shared_experts.w1 / w2 / w3 */
    DSV4_ROLE_ROUTED_EXPERT,      /* "routed_expert": ffn.experts.E.w1 / w2 / w3 */
    DSV4_ROLE_MTP_PROJ,           /* "mtp_proj": mtp.i.e_proj / h_proj */
    DSV4_ROLE_MTP_NORM,           /* "mtp_norm": mtp.i.enorm / hnorm / norm */
    DSV4_ROLE_MTP_HC_HEAD,        /* "mtp_hc_head": mtp.i.hc_head_* */
    DSV4_ROLE_SCALE,              /* "scale": the `.scale` sibling of a quantized weight */
    DSV4_ROLE_UNKNOWN,            /* "unknown": not part of the inventory (used by summaries) */
    DSV4_ROLE_COUNT
} dsv4_role;

/* How a tensor is stored. */
typedef enum dsv4_store {
    DSV4_STORE_PLAIN,      /* "plain": BF16 / F32 / I64 as is */
    DSV4_STORE_FP8_BLOCK,  /* "fp8_block": F8_E4M3 weight with a 128x128-block `.scale` */
    DSV4_STORE_FP4_PACKED, /* "fp4_packed": I8 weight, two e2m1 codes per byte, `.scale` per 32 inputs */
    DSV4_STORE_SCALE_BLOCK,/* "scale_block": F8_E8M0 [ceil(out/128), ceil(in/128)] */
    DSV4_STORE_SCALE_FP4,  /* "scale_fp4": F8_E8M0 [out, in/32] */
} dsv4_store;

typedef struct dsv4_inv_tensor {
    const char *name;       /* points into the inventory's name pool */
    dsv4_dtype dtype;
    int ndim;
    int64_t shape[2];
    uint64_t nbytes;
    dsv4_role role;
    dsv4_role scale_of;     /* for DSV4_ROLE_SCALE: the role of its weight; else DSV4_ROLE_UNKNOWN */
    dsv4_store store;
    int32_t pair;           /* a quantized weight: index of its scale; a scale: index of its weight; else -1 */
    int32_t layer;          /* -1 for global tensors; MTP block i is layer n_layers + i */
    int16_t mtp;            /* MTP block index, -1 outside MTP */
    int32_t expert;         /* routed expert index, -1 otherwise */
    uint8_t is_mtp;         /* name starts with "mtp." */
    uint8_t is_fp32_set;    /* one of the tensors the release stores in F32 (seed_pipelines.md §1.3) */
} dsv4_inv_tensor;

typedef struct dsv4_inventory {
    size_t n;
    dsv4_inv_tensor *t;     /* canonical order: globals, layers 0..n-1 in order, then MTP blocks */
    uint32_t *by_name;      /* indices into t, sorted by name (strcmp) */
    char *pool;             /* names, NUL-separated */
    uint64_t total_bytes;
    int n_layers, n_mtp;
} dsv4_inventory;

/* Number of tensors dsv4_inventory_build would produce, without building (cheap). */
size_t dsv4_inventory_count(const dsv4_config *c);
/* Builds the release-layout inventory for a validated config. */
int dsv4_inventory_build(const dsv4_config *c, dsv4_inventory *inv, dsv4_err *e);
void dsv4_inventory_free(dsv4_inventory *inv);
/* Lookup by name (binary search); NULL when the name is not part of the inventory. */
const dsv4_inv_tensor *dsv4_inventory_find(const dsv4_inventory *inv, const char *name);

const char *dsv4_role_name(dsv4_role r);
/* Role from its string name; DSV4_ROLE_COUNT when unknown. */
dsv4_role dsv4_role_parse(const char *s);
const char *dsv4_store_name(dsv4_store s);
uint64_t dsv4_inv_numel(const dsv4_inv_tensor *t);

#endif
