/* Quantization schemes as the verifier compares them: the scheme a linear module is stored in
 * (read from its parts, whatever the config says) and the scheme a compressed-tensors config
 * group's `weights` args describe (num_bits / type / strategy / group_size / block_structure), and
 * whether the two fit. The stored scheme is the truth a quantization_config must describe
 * (seed_pipelines §4, formats: FP8 block 128x128, INT4 groups, NVFP4 groups of 16, MXFP4). */
#ifndef DSV4_VT_SCHEMES_H
#define DSV4_VT_SCHEMES_H

#include <jansson.h>
#include <stddef.h>

#include "verify/astore.h"

typedef enum dsv4_vt_kind {
    DSV4_VT_UNQUANT, /* BF16 / F16 / F32 weight */
    DSV4_VT_FP8,     /* F8_E4M3 weight with one scale (any name): block, channel or tensor */
    DSV4_VT_INT4,    /* INT4 pack-quantized, symmetric groups along the input (group_size) or per row */
    DSV4_VT_NVFP4,   /* E2M1 codes, F8_E4M3 scale per 16 inputs, a global scale */
    DSV4_VT_MXFP4,   /* E2M1 codes, E8M0 scale per 32 inputs (DeepSeek's release FP4) */
    DSV4_VT_UNKNOWN, /* broken parts, or args no scheme here fits */
} dsv4_vt_kind;

typedef enum dsv4_vt_strategy {
    DSV4_VT_ST_NONE,
    DSV4_VT_ST_BLOCK,   /* 128 x 128 blocks */
    DSV4_VT_ST_CHANNEL, /* one scale per output row */
    DSV4_VT_ST_TENSOR,  /* one scale */
    DSV4_VT_ST_GROUP,   /* one scale per group_size inputs of a row */
} dsv4_vt_strategy;

typedef struct dsv4_vt_scheme {
    dsv4_vt_kind kind;
    dsv4_vt_strategy strategy;
    int group_size;          /* DSV4_VT_ST_GROUP */
    int one_per_row;         /* stored INT4 whose scale has one column (fits "channel" args too) */
} dsv4_vt_scheme;

/* The scheme a module's parts are stored in (a non-module or a plain weight is UNQUANT). */
dsv4_vt_scheme dsv4_vt_stored(const dsv4_amod *m);
/* The scheme a config group's `weights` object describes; UNKNOWN with one sentence in why. */
dsv4_vt_scheme dsv4_vt_from_args(const json_t *weights, char *why, size_t cap);
/* 1 when a module stored as `stored` is what a group with weights `args` loads. */
int dsv4_vt_fits(dsv4_vt_scheme stored, dsv4_vt_scheme args);
/* "FP8 block 128x128", "INT4 group 128", "NVFP4 (groups of 16)", "unquantized" ... into buf. */
const char *dsv4_vt_scheme_str(dsv4_vt_scheme s, char *buf, size_t cap);
/* Two stored schemes are the same (kind, strategy, group size). */
int dsv4_vt_same(dsv4_vt_scheme a, dsv4_vt_scheme b);

#endif
