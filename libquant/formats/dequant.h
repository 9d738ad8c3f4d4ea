/* Dequantization of DeepSeek-V4 release weights (dsv4_architecture.md §2.5), and the inverse
 * re-encoding given the stored scales (to prove that a dequantized tensor re-encodes to the same
 * bytes). Two layouts:
 *
 *   FP8 block: weight F8_E4M3 [out, in], scale F8_E8M0 [ceil(out/128), ceil(in/128)]
 *              W[o,i] = e4m3(w[o,i]) · 2^(S[o/128, i/128] − 127)
 *   FP4 expert: weight I8 [out, in/2] (element 2k = low nibble of byte k, 2k+1 = high nibble),
 *              scale F8_E8M0 [out, ceil(in/32)]
 *              W[o,i] = E2M1[nibble(o,i)] · 2^(S[o, i/32] − 127)
 *
 * The float32 result is exact (a code times a power of two; only 448·2^127 overflows to inf). The
 * BF16 result is the RNE rounding of the float32 one, also exact unless it falls below 2^-126
 * (bf16 subnormals). A 0xFF (NaN) scale gives NaN elements; callers that care check finiteness.
 * Outputs are row-major [out, in] (logical shape). */
#ifndef DSV4_FORMATS_DEQUANT_H
#define DSV4_FORMATS_DEQUANT_H

#include <stdint.h>

#include "util/err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DSV4_FP8_BLOCK 128 /* FP8 scale block, both dims */
#define DSV4_FP4_GROUP 32  /* FP4 scale group along the input dim */

/* One quantized weight as stored: the shapes are the on-disk ones (FP4: w_cols = in/2 bytes). */
typedef struct dsv4_qweight {
    const char *name;   /* weight tensor name, used in error messages (may be NULL) */
    const uint8_t *w;   /* FP8: e4m3 codes; FP4: packed E2M1 pairs */
    const uint8_t *s;   /* e8m0 scales */
    int64_t w_rows, w_cols;
    int64_t s_rows, s_cols;
} dsv4_qweight;

/* Shape checks: 0, or -1 with a message naming the tensor, the shapes found and the ones expected. */
int dsv4_fp8_block_check(const dsv4_qweight *q, dsv4_err *e);
int dsv4_fp4_check(const dsv4_qweight *q, dsv4_err *e);

/* Whole tensor: checks the shapes, then writes w_rows × in elements to out. */
int dsv4_fp8_block_dequant_f32(const dsv4_qweight *q, float *out, dsv4_err *e);
int dsv4_fp8_block_dequant_bf16(const dsv4_qweight *q, uint16_t *out, dsv4_err *e);
int dsv4_fp4_dequant_f32(const dsv4_qweight *q, float *out, dsv4_err *e);
int dsv4_fp4_dequant_bf16(const dsv4_qweight *q, uint16_t *out, dsv4_err *e);

/* Rows [r0, r1) only, with no checks (call the check first). `out` is the whole output tensor;
 * only its rows r0..r1-1 are written. For splitting work across threads. */
void dsv4_fp8_block_dequant_rows_f32(const dsv4_qweight *q, int64_t r0, int64_t r1, float *out);
void dsv4_fp8_block_dequant_rows_bf16(const dsv4_qweight *q, int64_t r0, int64_t r1, uint16_t *out);
void dsv4_fp4_dequant_rows_f32(const dsv4_qweight *q, int64_t r0, int64_t r1, float *out);
void dsv4_fp4_dequant_rows_bf16(const dsv4_qweight *q, int64_t r0, int64_t r1, uint16_t *out);

/* Re-encoding with the scales in q (q->w is not read): FP8 code = e4m3_sat(x / scale); FP4 nibble
 * = e2m1(x / scale), saturating at ±6. `in` is [w_rows, in] float32 and w_out receives
 * w_rows × w_cols bytes. Dequantized values re-encode to the bytes they came from. */
int dsv4_fp8_block_requant(const dsv4_qweight *q, const float *in, uint8_t *w_out, dsv4_err *e);
int dsv4_fp4_requant(const dsv4_qweight *q, const float *in, uint8_t *w_out, dsv4_err *e);

#ifdef __cplusplus
}
#endif

#endif
