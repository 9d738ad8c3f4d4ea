/* An artifact seen module by module: every tensor name is split into a module and a part
 * (`layers.3.attn.wq_a` + `.weight_scale`), and each module's parts are recognized as one storage
 * form: plain BF16/F32, DeepSeek's release FP8-block or FP4 (MXFP4), FP8 with weight_scale_inv,
 * compressed-tensors FP8-block, INT4 pack-quantized or NVFP4, or ModelOpt NVFP4. Rules judge
 * modules through this view, whatever tool wrote the artifact. Tensors that are not modules
 * (`hc_attn_fn`, `attn.attn_sink`, `ffn.gate.bias`, `compressor.ape`, `tid2eid`) are entries of
 * their own with form PLAIN and no part. Names are taken as given (the caller passes canonical
 * release names, see vctx.h). */
#ifndef DSV4_ASTORE_H
#define DSV4_ASTORE_H

#include <stddef.h>
#include <stdint.h>

#include "io/safetensors.h"
#include "util/err.h"

typedef enum dsv4_part {
    DSV4_PART_WEIGHT,        /* .weight */
    DSV4_PART_SCALE,         /* .scale (release FP8/FP4, ModelOpt) */
    DSV4_PART_WEIGHT_SCALE,  /* .weight_scale */
    DSV4_PART_SCALE_INV,     /* .weight_scale_inv */
    DSV4_PART_PACKED,        /* .weight_packed */
    DSV4_PART_SHAPE,         /* .weight_shape */
    DSV4_PART_GLOBAL,        /* .weight_global_scale */
    DSV4_PART_INPUT_GLOBAL,  /* .input_global_scale */
    DSV4_PART_SCALE_2,       /* .weight_scale_2 (ModelOpt NVFP4) */
    DSV4_PART_INPUT_SCALE,   /* .input_scale */
    DSV4_PART_ZERO_POINT,    /* .weight_zero_point */
    DSV4_PART_G_IDX,         /* .weight_g_idx */
    DSV4_PART_COUNT
} dsv4_part;

typedef enum dsv4_qform {
    DSV4_QF_PLAIN,          /* "plain": .weight in BF16/F16/F32, or a tensor that is no module */
    DSV4_QF_RELEASE_FP8,    /* "release_fp8": F8_E4M3 .weight + F8_E8M0 .scale [ceil(r/128), ceil(c/128)] */
    DSV4_QF_RELEASE_FP4,    /* "release_fp4" (MXFP4): I8 .weight [r, c/2] + F8_E8M0 .scale [r, c/32] */
    DSV4_QF_FP8_SCALE_INV,  /* "fp8_scale_inv": F8_E4M3 .weight + .weight_scale_inv (F32, BF16 or E8M0) */
    DSV4_QF_CT_FP8,         /* "ct_fp8_block": F8_E4M3 .weight + .weight_scale (BF16 or F32) per 128x128 block */
    DSV4_QF_CT_INT4,        /* "ct_int4": I32 .weight_packed [r, c/8] + .weight_scale [r, c/g] + I64 .weight_shape [2] */
    DSV4_QF_CT_NVFP4,       /* "ct_nvfp4": U8 .weight_packed [r, c/2] + F8_E4M3 .weight_scale [r, c/16]
                               + F32 .weight_global_scale (+ .input_global_scale) */
    DSV4_QF_MODELOPT_NVFP4, /* "modelopt_nvfp4": U8 .weight [r, c/2] + F8_E4M3 .weight_scale or .scale
                               [r, c/16] + F32 .weight_scale_2 (+ .input_scale) */
    DSV4_QF_BROKEN,         /* "broken": parts that make no known form; `why` says what is wrong */
    DSV4_QF_COUNT
} dsv4_qform;

typedef struct dsv4_amod {
    char *module;                           /* module name, or the full name of a non-module tensor */
    int is_module;                          /* 1 when it has parts (a .weight or a quantization suffix) */
    dsv4_qform form;
    const dsv4_tensor *part[DSV4_PART_COUNT]; /* NULL where absent; for a non-module, part[WEIGHT] is the tensor */
    const char *part_name[DSV4_PART_COUNT]; /* the name each part was found under (caller's names) */
    int64_t rows, cols;                     /* logical weight shape (FP4 and packed unpacked), -1 when unknown */
    int group_size;                         /* INT4 / NVFP4 / MXFP4 group along the input, 0 otherwise */
    char why[200];                          /* DSV4_QF_BROKEN: what does not fit */
} dsv4_amod;

typedef struct dsv4_astore {
    size_t n;
    dsv4_amod *m;                           /* sorted by module name */
} dsv4_astore;

/* One named tensor handed to the builder (name may differ from t->name: canonical names). */
typedef struct dsv4_named_tensor {
    const char *name;
    const dsv4_tensor *t;
} dsv4_named_tensor;

/* Splits a tensor name: returns the part and sets *module_len to the length of the module name,
 * or returns -1 when the name has no part suffix (a non-module tensor). `.bias` is not a part:
 * `ffn.gate.bias` is a tensor of its own. */
int dsv4_part_of(const char *name, size_t *module_len);
const char *dsv4_part_suffix(dsv4_part p);   /* ".weight_scale" */

int dsv4_astore_build(const dsv4_named_tensor *t, size_t n, dsv4_astore *s, dsv4_err *e);
void dsv4_astore_free(dsv4_astore *s);
const dsv4_amod *dsv4_astore_find(const dsv4_astore *s, const char *module);

const char *dsv4_qform_name(dsv4_qform f);
/* 1 for every form other than PLAIN and BROKEN. */
int dsv4_qform_is_quantized(dsv4_qform f);

#endif
