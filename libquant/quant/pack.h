/* compressed-tensors packers and their unpackers (spec/formats_algorithms.md §2.1–§2.4, §6), and
 * the conversions from the release's FP8-block and FP4 storage. Weights enter as BF16 [n, k]
 * row-major: the release's FP8 and FP4 values dequantize to BF16 exactly. Every packer has an
 * unpacker; RTN paths reproduce compressed-tensors' compress path bit for bit. */
#ifndef DSV4_PACK_H
#define DSV4_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "formats/dequant.h"
#include "util/err.h"

/* How a conversion that should be lossless came out. */
typedef struct dsv4_conv_report {
    int exact;               /* 1 when every value is reproduced exactly */
    int64_t inexact;         /* values (or blocks, as documented per function) that are not */
    double max_abs_err;      /* largest |converted - source| */
} dsv4_conv_report;

/* ---- pack-quantized INT4 (W4A16, and the weights of W4AFP8): symmetric, groups along k ---- */
/* RTN as compressed-tensors: s = bf16(f32(amax_g)/7.5) (0 -> 2^-7), q = rne(clamp(bf16(w/s), -8, 7)).
 * packed: I32 [n, k/8] (u = q + 8, element j in bits 4·(j%8) of word j/8); scale: BF16 [n, k/group]. */
int dsv4_int4_rtn(const uint16_t *w, int64_t n, int64_t k, int group, int32_t *packed, uint16_t *scale,
                  dsv4_err *e);
/* Packs integer codes q in [-8, 7] (GPTQ's output) and unpacks them back. */
void dsv4_int4_pack(const int8_t *q, int64_t n, int64_t k, int32_t *packed);
void dsv4_int4_unpack(const int32_t *packed, int64_t n, int64_t k, int8_t *q);
/* Dequantized values as compressed-tensors computes them: (u - 8) · s in BF16. */
int dsv4_int4_dequant(const int32_t *packed, const uint16_t *scale, int64_t n, int64_t k, int group,
                      uint16_t *out, dsv4_err *e);

/* ---- nvfp4-pack-quantized (NVFP4 weights) ---- */
/* Largest |value| of a BF16 array (as float). */
float dsv4_bf16_amax(const uint16_t *w, size_t n);
/* compressed-tensors' weight_global_scale for a fused group's amax: bf16(bf16(1 / bf16(amax)) · 2688)
 * (torch evaluates `2688 / tensor` as a reciprocal then a product; spec §2.2's bf16(2688/amax)
 * differs from it, e.g. 358 vs 360 for amax 7.5). */
float dsv4_nvfp4_global_scale(float amax);
/* RTN from BF16 with global scale gs: packed U8 [n, k/2] (even element low nibble), scale F8_E4M3
 * [n, k/16]; bit-exact to compressed-tensors (sign rule for negative zero included). */
int dsv4_nvfp4_rtn(const uint16_t *w, int64_t n, int64_t k, float gs, uint8_t *packed, uint8_t *scale,
                   dsv4_err *e);
/* A power-of-two global scale under which every e8m0 block scale of the given release FP4 weights
 * (a fused group: w1 and w3 of one expert) becomes an exact e4m3 local scale; -1 when the
 * exponent spread is too wide for any. */
int dsv4_nvfp4_mx_global_scale(const dsv4_qweight *const *q, int nq, float *gs, dsv4_err *e);
/* Release FP4 (MXFP4: e8m0 per 32) -> NVFP4 with global scale gs: the codes are kept and each
 * 16-block gets scale 2^(s-127)·gs when that is an e4m3 value (exact); blocks where it is not are
 * re-quantized by RTN and counted in rep (inexact = such 16-blocks, max_abs_err measured). */
int dsv4_nvfp4_from_mxfp4(const dsv4_qweight *q, float gs, uint8_t *packed, uint8_t *scale,
                          dsv4_conv_report *rep, dsv4_err *e);
/* Dense values (BF16 [n, k]) as release FP4 (MXFP4: packed E2M1 [n, k/2] in the release's nibble
 * order, e8m0 scales [n, k/32]) when every 32-group is E2M1 values times one power of two, as
 * the release's FP4 experts are after dequantization: 1 and the outputs filled, else 0 (also for
 * k not a multiple of 32). Dequantizing the result gives back every value bit for bit. */
int dsv4_mxfp4_from_bf16(const uint16_t *w, int64_t n, int64_t k, uint8_t *packed, uint8_t *scale);
/* Packs E2M1 codes (GPTQ's output, one per byte [n, k], low 4 bits used) as compressed-tensors
 * does: packed U8 [n, (k+1)/2], byte j = code[2j] | code[2j+1] << 4 (an odd k pads a 0 nibble). */
void dsv4_nvfp4_pack(const uint8_t *codes, int64_t n, int64_t k, uint8_t *packed);
/* Dequantized values as compressed-tensors computes them: E2M1[code] · f32(scale / gs). */
int dsv4_nvfp4_dequant(const uint8_t *packed, const uint8_t *scale, float gs, int64_t n, int64_t k,
                       float *out, dsv4_err *e);

/* ---- round-to-nearest with the MSE observer (recipe `observer: mse`; quant/rtn_mse.c) ---- */
/* As dsv4_int4_rtn / dsv4_nvfp4_rtn, but each group's scale is kernels/gptq_math.h's MSE grid
 * choice (dsv4_gq_int4_scale_mse / dsv4_gq_nvfp4_scale_mse): GPTQ with H = I, bit for bit. */
int dsv4_int4_rtn_mse(const uint16_t *w, int64_t n, int64_t k, int group, int32_t *packed, uint16_t *scale,
                      dsv4_err *e);
int dsv4_nvfp4_rtn_mse(const uint16_t *w, int64_t n, int64_t k, float gs, uint8_t *packed, uint8_t *scale,
                       dsv4_err *e);

/* ---- float-quantized FP8 block 128x128 ---- */
/* e8m0 block scales as compressed-tensors' weight_scale (BF16), exactly (powers of two). */
void dsv4_e8m0_to_bf16(const uint8_t *s, size_t n, uint16_t *out);
/* FP8_BLOCK RTN from BF16 as compressed-tensors: s = bf16(f32(amax_blk)/448) (0 -> 2^-7),
 * q = e4m3(clamp(bf16(w/s), ±448)); scale BF16 [ceil(n/128), ceil(k/128)]. */
int dsv4_fp8_block_rtn(const uint16_t *w, int64_t n, int64_t k, uint8_t *q, uint16_t *scale, dsv4_err *e);
/* Release FP4 -> FP8 block, DeepSeek's convert.py (lossless when no value underflows e4m3):
 * per 128x128 block S = max(group scales) / 2^6, q8 = e4m3(e2m1 · S_group / S); scale e8m0
 * [n/128, k/128]. rep counts values not reproduced exactly. */
int dsv4_fp4_to_fp8_block(const dsv4_qweight *q, uint8_t *w8, uint8_t *scale, dsv4_conv_report *rep,
                          dsv4_err *e);
/* Dequantized values of an FP8-block weight with BF16 scales: e4m3(q) · s, as float. */
int dsv4_fp8_block_dequant_ct(const uint8_t *q, const uint16_t *scale, int64_t n, int64_t k, float *out,
                              dsv4_err *e);

#endif
