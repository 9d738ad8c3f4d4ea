/* The safetensors dtype vocabulary. The enum order is safetensors' own declaration order, which is
 * also the order its writer sorts by (increasing alignment), so writers can sort on the value. */
#ifndef DSV4_DTYPE_H
#define DSV4_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum dsv4_dtype {
    DSV4_BOOL, DSV4_F4, DSV4_F6_E2M3, DSV4_F6_E3M2, DSV4_U8, DSV4_I8, DSV4_F8_E5M2, DSV4_F8_E4M3,
    DSV4_F8_E8M0, DSV4_F8_E4M3FNUZ, DSV4_F8_E5M2FNUZ, DSV4_I16, DSV4_U16, DSV4_F16, DSV4_BF16,
    DSV4_I32, DSV4_U32, DSV4_F32, DSV4_C64, DSV4_F64, DSV4_I64, DSV4_U64,
    DSV4_DTYPE_COUNT,
    DSV4_DTYPE_INVALID = -1
} dsv4_dtype;

/* "F8_E4M3" etc., exactly as in safetensors headers; "?" for an invalid value. */
const char *dsv4_dtype_name(dsv4_dtype t);
/* Parses a header dtype string of length len; DSV4_DTYPE_INVALID when unknown. */
dsv4_dtype dsv4_dtype_parse(const char *s, size_t len);
/* Bits per element (4, 6, 8, 16, 32 or 64). */
int dsv4_dtype_bits(dsv4_dtype t);
/* Byte size of n elements, or -1 when n·bits is not a whole number of bytes or overflows. */
int64_t dsv4_dtype_nbytes(dsv4_dtype t, uint64_t n);
/* True for the floating-point dtypes whose elements can be decoded to float one by one
 * (F16, BF16, F32, F64, F8_E4M3, F8_E5M2, F8_E8M0). */
int dsv4_dtype_is_float(dsv4_dtype t);

#endif
