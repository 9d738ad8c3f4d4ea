/* Scalar and row conversions between float32 and the narrow float formats found in DeepSeek-V4
 * checkpoints (BF16, F16, F8_E4M3, F8_E5M2, F8_E8M0, E2M1). Decoding is exact. Encoding is
 * round-to-nearest-even, checked bit for bit against ml_dtypes (tests/gen/gen_fp_vectors.py).
 *
 * Two overflow behaviours for the 8-bit formats:
 *   DSV4_FP_SAT   clamp to ±max finite first, as quantizers do (inf → ±max, NaN stays NaN);
 *   DSV4_FP_CAST  the cast of PyTorch/ml_dtypes: e4m3fn overflow → NaN, e5m2 overflow → ±inf.
 * NaN inputs give the format's NaN with the input's sign (e4m3 0x7F/0xFF, e5m2 0x7E/0xFE,
 * bf16 0x7FC0/0xFFC0, f16 0x7E00/0xFE00: always quiet, payload dropped). */
#ifndef DSV4_FP_H
#define DSV4_FP_H

#include <stddef.h>
#include <stdint.h>

#include "formats/dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dsv4_fp_mode { DSV4_FP_SAT = 0, DSV4_FP_CAST = 1 } dsv4_fp_mode;

#define DSV4_E4M3_MAX 448.0f
#define DSV4_E5M2_MAX 57344.0f
#define DSV4_E2M1_MAX 6.0f

/* BF16 and F16: IEEE semantics (overflow → ±inf, subnormals kept, NaN → quiet NaN). */
float dsv4_bf16_to_f32(uint16_t h);
uint16_t dsv4_f32_to_bf16(float x);
float dsv4_f16_to_f32(uint16_t h);
uint16_t dsv4_f32_to_f16(float x);

/* F8_E4M3 (e4m3fn: no inf, max 448, NaN = 0x7F/0xFF) and F8_E5M2 (IEEE-like, has inf). */
float dsv4_e4m3_to_f32(uint8_t b);
uint8_t dsv4_f32_to_e4m3(float x, dsv4_fp_mode mode);
float dsv4_e5m2_to_f32(uint8_t b);
uint8_t dsv4_f32_to_e5m2(float x, dsv4_fp_mode mode);

/* F8_E8M0 (e8m0fnu): 2^(b−127), b = 0 is 2^-127, 0xFF is NaN; no zero, no sign. */
float dsv4_e8m0_to_f32(uint8_t b);
/* The ml_dtypes cast: nearest power of two, where a tie (1.5·2^e) goes up; a float32 subnormal
 * above 2^-127 goes to 2^-126 (ml_dtypes' and torch's guard/round/sticky rule). NaN, ±inf, zero
 * and negative inputs give 0xFF (torch instead drops the sign and maps zero to 0x00). */
uint8_t dsv4_f32_to_e8m0(float x);
/* DeepSeek's ue8m0 `fast_round_scale`: biased exponent of the fp32 bits, plus one when the
 * mantissa is non-zero. An exact ceil-to-power-of-two for positive normal floats. The sign bit is
 * ignored, zero gives 0x00, subnormals give 0x01, and inf, NaN or anything above 2^127 give 0xFF. */
uint8_t dsv4_e8m0_ceil_pow2(float s);

/* E2M1 (FP4) code 0..15: bit 3 is the sign, magnitudes 0, .5, 1, 1.5, 2, 3, 4, 6.
 * Encoding is RNE with saturation to ±6 (±inf → ±6). NaN gives code 0 (+0); ml_dtypes gives ±0
 * there too, but with the sign bit inverted. Negative values that round to zero give 0x8. */
float dsv4_e2m1_to_f32(uint8_t code);
uint8_t dsv4_f32_to_e2m1(float x);

/* Rows. `src`/`dst` hold n elements of type t, little-endian. Decode supports the dtypes for which
 * dsv4_dtype_is_float() is true; encode supports F32, BF16, F16, F8_E4M3, F8_E5M2 and F8_E8M0
 * (mode matters only for the two F8 formats with a sign). Both return -1 for another dtype. */
int dsv4_decode_row(dsv4_dtype t, const void *src, float *dst, size_t n);
int dsv4_encode_row(dsv4_dtype t, const float *src, void *dst, size_t n, dsv4_fp_mode mode);
/* Element i of a little-endian array of t, as float (F64 is rounded to nearest float). Returns NaN
 * for a dtype that dsv4_dtype_is_float() rejects. */
float dsv4_decode_elem(dsv4_dtype t, const void *base, size_t i);

#ifdef __cplusplus
}
#endif

#endif
