/* dsv4-fixup --to-w4a8: turn a W4A16 compressed-tensors artifact into W4A8 by its config alone
 * (seed_pipelines §2 W, §4.5). The INT4 weights, their scales and every other tensor stay byte for
 * byte; each INT4 (pack-quantized) config group gets FP8 dynamic per-token input activations,
 * exactly as dsv4-quant's recipes/w4a8.yaml (scheme W4AFP8) writes them, and config.json gets a
 * provenance record "dsv4_w4a8_conversion". The result loads through vLLM's W4A8 kernels. */
#ifndef DSV4_FIXUP_W4A8_H
#define DSV4_FIXUP_W4A8_H

#include "verify/vctx.h"

/* The rule id the ops are tagged with. */
#define DSV4_W4A8_OP_TAG "to-w4a8"

/* Adds the CONFIG ops to v->fixes. Refuses (code 2) an artifact without config.json, one that is
 * not compressed-tensors, one without an INT4 group, and one whose INT4 group already quantizes
 * its activations. */
int dsv4_fix_to_w4a8(dsv4_vctx *v, dsv4_err *e);

#endif
