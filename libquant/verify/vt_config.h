/* Facts about an artifact's config.json the config rules share: the decoder-layer and MTP blocks
 * its tensors show, and the release keys (compress_ratios, num_hash_layers, qk_rope_head_dim,
 * rope_scaling, torch_dtype) rebuilt from the model config when the transformers keys it was read
 * from (layer_types, mlp_layer_types, partial_rotary_factor, rope_parameters, dtype) determine them
 * exactly (model/config.h reads both styles). */
#ifndef DSV4_VT_CONFIG_H
#define DSV4_VT_CONFIG_H

#include "verify/vctx.h"

/* 1 + the largest N of `layers.N.` / `mtp.N.` among a side's canonical names (0 when none). */
void dsv4_vt_tensor_blocks(const dsv4_side *s, int *layers, int *mtp);

/* The release value of `key` as the model config (v->model) determines it, or NULL with why. */
json_t *dsv4_vt_release_key(const dsv4_vctx *v, const char *key, char *why, size_t cap);

#endif
