/* Scale tensors of quantized modules (seed_pipelines §3.8, §3.10, §9 item 5; modes 16-19): the
 * family a module's parts belong to (read from the weight's dtype, so a module whose scale has a
 * wrong name or dtype is still recognized), the part its block / group scale is stored under, the
 * part the artifact's convention wants it under (compressed-tensors `.weight_scale`, DeepSeek's
 * native fp8 config `.scale`, ModelOpt `.weight_scale`; without a config, the majority of the
 * family), the dtypes each scale may have, and whether a cast keeps every value. */
#ifndef DSV4_VT_SCALES_H
#define DSV4_VT_SCALES_H

#include "model/names.h"
#include "verify/vctx.h"

typedef enum dsv4_vt_family {
    DSV4_VT_FAM_NONE,     /* plain, or not a quantized module */
    DSV4_VT_FAM_FP8,      /* F8_E4M3 .weight + one scale (.scale / .weight_scale / .weight_scale_inv) */
    DSV4_VT_FAM_INT4,     /* I32 .weight_packed (compressed-tensors pack-quantized) */
    DSV4_VT_FAM_NVFP4,    /* U8 .weight_packed (compressed-tensors NVFP4) */
    DSV4_VT_FAM_MODELOPT, /* U8 .weight (ModelOpt NVFP4) */
    DSV4_VT_FAM_MXFP4,    /* I8 .weight (DeepSeek's release FP4) */
    DSV4_VT_FAM_COUNT
} dsv4_vt_family;

typedef struct dsv4_vt_conv {
    const char *label;                 /* "compressed-tensors", "fp8 (native)", "modelopt", "none" */
    dsv4_part want[DSV4_VT_FAM_COUNT]; /* DSV4_PART_COUNT: undecided (a tie) or not applicable */
    size_t count[DSV4_VT_FAM_COUNT][DSV4_PART_COUNT]; /* scale parts in use, per family */
} dsv4_vt_conv;

typedef struct dsv4_vt_scale {
    dsv4_vt_family fam;
    dsv4_part part;                    /* where the scale is */
    dsv4_part want;                    /* where the convention puts it (DSV4_PART_COUNT: undecided) */
    const dsv4_tensor *t;
    char name[DSV4_NAME_MAX + 32];     /* canonical name now */
    char final[DSV4_NAME_MAX + 32];    /* the name after the convention's rename */
} dsv4_vt_scale;

dsv4_vt_family dsv4_vt_family_of(const dsv4_amod *m);
const char *dsv4_vt_family_name(dsv4_vt_family f);
/* The convention of the artifact (its quant_method; without one, each family's majority). */
void dsv4_vt_conv_init(const dsv4_vctx *v, dsv4_vt_conv *c);
/* The block / group scale of a module: 1 filled, 0 when the module has none (or is no quantized
 * module), -1 when it has two of the candidate parts (which one is meant is unknown). */
int dsv4_vt_scale_of(const dsv4_vt_conv *c, const dsv4_amod *m, dsv4_vt_scale *s);

/* The dtypes a scale may have, as a bit mask over dsv4_dtype, and the one to cast to (the dtype
 * dsv4-quant writes); `fallback` is the dtype used when that cast is not exact (DSV4_DTYPE_INVALID:
 * none). `part` is the final part of the scale. */
uint32_t dsv4_vt_scale_dtypes(dsv4_vt_family fam, dsv4_part part, dsv4_dtype *prefer, dsv4_dtype *fallback);
/* 1 when every element of `t` survives a cast to `to` exactly (NaN never does). */
int dsv4_vt_cast_exact(const dsv4_tensor *t, dsv4_dtype to);
/* "BF16 or F32" for a mask, into buf. */
const char *dsv4_vt_dtypes_str(uint32_t mask, char *buf, size_t cap);

#endif
