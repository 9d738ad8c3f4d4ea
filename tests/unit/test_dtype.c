/* dtype names round-trip and sizes follow safetensors' bit widths. */
#include "harness.h"
#include "formats/dtype.h"

#include <string.h>

TEST(dtype_names_roundtrip)
{
    for (int t = 0; t < DSV4_DTYPE_COUNT; t++) {
        const char *n = dsv4_dtype_name((dsv4_dtype)t);
        CHECK_EQ_INT(dsv4_dtype_parse(n, strlen(n)), t);
    }
    CHECK_EQ_INT(dsv4_dtype_parse("F8_E4M3X", 8), DSV4_DTYPE_INVALID);
    CHECK_EQ_INT(dsv4_dtype_parse("F8_E4M3", 6), DSV4_DTYPE_INVALID); /* a prefix is not a name */
    CHECK_EQ_INT(dsv4_dtype_parse("", 0), DSV4_DTYPE_INVALID);
}

TEST(dtype_sizes)
{
    CHECK_EQ_INT(dsv4_dtype_nbytes(DSV4_BF16, 3), 6);
    CHECK_EQ_INT(dsv4_dtype_nbytes(DSV4_I64, 2), 16);
    CHECK_EQ_INT(dsv4_dtype_nbytes(DSV4_F4, 4), 2);
    CHECK_EQ_INT(dsv4_dtype_nbytes(DSV4_F4, 3), -1);   /* half a byte */
    CHECK_EQ_INT(dsv4_dtype_nbytes(DSV4_F6_E2M3, 4), 3);
    CHECK_EQ_INT(dsv4_dtype_nbytes(DSV4_F32, UINT64_MAX / 4), -1); /* overflow */
    CHECK_EQ_INT(dsv4_dtype_nbytes(DSV4_F8_E8M0, 0), 0);
    CHECK(dsv4_dtype_is_float(DSV4_F8_E8M0));
    CHECK(!dsv4_dtype_is_float(DSV4_I8));
}
