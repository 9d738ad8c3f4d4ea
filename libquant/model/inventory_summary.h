/* What an inspect tool reports about a checkpoint next to its expected inventory: tensor counts and
 * bytes by role and by dtype (expected and found), each layer's attention type and routing as the
 * config says and as the files show, whether the MTP block is present and complete, and whether the
 * FP32 set is intact. */
#ifndef DSV4_INVENTORY_SUMMARY_H
#define DSV4_INVENTORY_SUMMARY_H

#include "io/checkpoint.h"
#include "model/inventory.h"

typedef struct dsv4_count {
    size_t n;
    uint64_t bytes;
} dsv4_count;

typedef struct dsv4_layer_summary {
    int layer;                /* layer id; MTP block i is n_layers + i */
    int mtp;                  /* MTP block index, -1 for a decoder layer */
    dsv4_attn_type expected;  /* from the config */
    int found;                /* dsv4_attn_type the files show, -1 when the layer has no attention tensors */
    int64_t found_ratio;      /* rows of attn.compressor.ape; 0 without a compressor; -1 when unreadable */
    int hash_expected;        /* 1 hash-routed (tid2eid), 0 bias-routed */
    int hash_found;           /* 1 tid2eid only, 0 gate.bias only, -1 neither or both */
} dsv4_layer_summary;

typedef struct dsv4_inv_summary {
    dsv4_count expected_by_role[DSV4_ROLE_COUNT], found_by_role[DSV4_ROLE_COUNT];
    dsv4_count expected_by_dtype[DSV4_DTYPE_COUNT], found_by_dtype[DSV4_DTYPE_COUNT];
    int n_layers;             /* decoder layers + MTP blocks */
    dsv4_layer_summary *layers;
    size_t layer_mismatches;  /* layers whose found attention type, ratio or routing differs */
    size_t mtp_expected;      /* mtp.* tensors of the inventory */
    size_t mtp_ok;            /* ... present with the expected dtype and shape */
    size_t mtp_found;         /* checkpoint tensors named mtp.* (expected or not) */
    int mtp_present;          /* mtp_found > 0 */
    int mtp_complete;         /* mtp_expected > 0 and mtp_ok == mtp_expected */
    size_t fp32_expected;     /* the release's F32 set (417 for Flash) */
    size_t fp32_ok;           /* ... present and F32 */
    int fp32_intact;          /* fp32_ok == fp32_expected */
} dsv4_inv_summary;

/* Found tensors are classified by the inventory's role for their name; names outside it count as
 * DSV4_ROLE_UNKNOWN. */
int dsv4_inventory_summarize(const dsv4_inventory *inv, const dsv4_config *cfg, const dsv4_ckpt *c,
                             dsv4_inv_summary *s, dsv4_err *e);
void dsv4_inv_summary_free(dsv4_inv_summary *s);

#endif
