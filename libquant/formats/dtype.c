/* dtype names and sizes (see dtype.h). */
#include "formats/dtype.h"

#include <string.h>

static const struct {
    const char *name;
    int bits;
} TABLE[DSV4_DTYPE_COUNT] = {
    [DSV4_BOOL] = {"BOOL", 8},           [DSV4_F4] = {"F4", 4},
    [DSV4_F6_E2M3] = {"F6_E2M3", 6},     [DSV4_F6_E3M2] = {"F6_E3M2", 6},
    [DSV4_U8] = {"U8", 8},               [DSV4_I8] = {"I8", 8},
    [DSV4_F8_E5M2] = {"F8_E5M2", 8},     [DSV4_F8_E4M3] = {"F8_E4M3", 8},
    [DSV4_F8_E8M0] = {"F8_E8M0", 8},     [DSV4_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 8},
    [DSV4_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 8},
    [DSV4_I16] = {"I16", 16},            [DSV4_U16] = {"U16", 16},
    [DSV4_F16] = {"F16", 16},            [DSV4_BF16] = {"BF16", 16},
    [DSV4_I32] = {"I32", 32},            [DSV4_U32] = {"U32", 32},
    [DSV4_F32] = {"F32", 32},            [DSV4_C64] = {"C64", 64},
    [DSV4_F64] = {"F64", 64},            [DSV4_I64] = {"I64", 64},
    [DSV4_U64] = {"U64", 64},
};

const char *dsv4_dtype_name(dsv4_dtype t)
{
    return (t >= 0 && t < DSV4_DTYPE_COUNT) ? TABLE[t].name : "?";
}

dsv4_dtype dsv4_dtype_parse(const char *s, size_t len)
{
    for (int t = 0; t < DSV4_DTYPE_COUNT; t++)
        if (strlen(TABLE[t].name) == len && memcmp(TABLE[t].name, s, len) == 0)
            return (dsv4_dtype)t;
    return DSV4_DTYPE_INVALID;
}

int dsv4_dtype_bits(dsv4_dtype t)
{
    return (t >= 0 && t < DSV4_DTYPE_COUNT) ? TABLE[t].bits : 0;
}

int64_t dsv4_dtype_nbytes(dsv4_dtype t, uint64_t n)
{
    uint64_t bits = (uint64_t)dsv4_dtype_bits(t);
    if (bits == 0 || (n != 0 && n > UINT64_MAX / bits))
        return -1;
    uint64_t total = n * bits;
    if (total % 8 != 0 || total / 8 > (uint64_t)INT64_MAX)
        return -1;
    return (int64_t)(total / 8);
}

int dsv4_dtype_is_float(dsv4_dtype t)
{
    switch (t) {
    case DSV4_F16: case DSV4_BF16: case DSV4_F32: case DSV4_F64:
    case DSV4_F8_E4M3: case DSV4_F8_E5M2: case DSV4_F8_E8M0:
        return 1;
    default:
        return 0;
    }
}
