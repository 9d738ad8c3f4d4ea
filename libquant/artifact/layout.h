/* Which kind of checkpoint is this? DeepSeek's release layout (FP8 e4m3 + e8m0 block scales, FP4
 * experts), a plain BF16 checkpoint, a compressed-tensors artifact (and with which schemes), or a
 * native FP8 checkpoint with weight_scale_inv; and whether names are the release's or
 * transformers'. Decided from the tensors and config.json together. */
#ifndef DSV4_LAYOUT_H
#define DSV4_LAYOUT_H

#include <jansson.h>

#include "io/checkpoint.h"

typedef enum dsv4_layout {
    DSV4_LAYOUT_UNKNOWN,
    DSV4_LAYOUT_RELEASE,            /* FP8 + e8m0 `.scale`, FP4 (or FP8) experts */
    DSV4_LAYOUT_BF16,               /* every linear weight BF16/F16/F32, no scales */
    DSV4_LAYOUT_COMPRESSED_TENSORS, /* quant_method compressed-tensors / weight_packed tensors */
    DSV4_LAYOUT_FP8_SCALE_INV,      /* FP8 weights with weight_scale_inv (HF FP8 quantizer, vLLM) */
} dsv4_layout;

typedef enum dsv4_naming {
    DSV4_NAMING_RELEASE, /* layers.N.attn.wq_a.weight, no model. prefix */
    DSV4_NAMING_HF,      /* model.layers.N.self_attn.q_a_proj.weight */
    DSV4_NAMING_MIXED,
} dsv4_naming;

typedef struct dsv4_layout_info {
    dsv4_layout layout;
    dsv4_naming naming;
    size_t n_release_names, n_hf_names;
    size_t n_fp8_weights, n_fp4_weights, n_e8m0_scales, n_scale_inv, n_packed, n_global_scales;
    char quant_method[64]; /* config.json quantization_config.quant_method, "" if none */
    char ct_format[64];    /* compressed-tensors "format", "" if none */
    char schemes[1024];    /* one line per compressed-tensors config group: name: description */
} dsv4_layout_info;

/* `config` may be NULL (no config.json). */
void dsv4_layout_detect(const dsv4_ckpt *c, const json_t *config, dsv4_layout_info *out);
const char *dsv4_layout_name(dsv4_layout l);
const char *dsv4_naming_name(dsv4_naming n);

#endif
