/* Shape validation for the release FP8-block and FP4-expert layouts (see dequant.h): every
 * dequant entry point runs it first, so a mismatched .scale is refused with its name and shapes. */
#include "formats/dequant.h"

#include <stddef.h>

static const char *nm(const dsv4_qweight *q) { return q->name ? q->name : "(unnamed)"; }

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Rows and stored columns non-negative, the logical element count small enough for float32
 * output sizes, and the data pointers present when there is data. */
static int common(const dsv4_qweight *q, const char *layout, int64_t cols, dsv4_err *e)
{
    if (q->w_rows < 0 || q->w_cols < 0 || q->s_rows < 0 || q->s_cols < 0)
        return dsv4_fail(e, "%s: negative dimension in %s weight [%lld, %lld] / scale [%lld, %lld]",
                         nm(q), layout, (long long)q->w_rows, (long long)q->w_cols,
                         (long long)q->s_rows, (long long)q->s_cols);
    if (cols > 0 && q->w_rows > (int64_t)(PTRDIFF_MAX / 4) / cols)
        return dsv4_fail(e, "%s: %s weight [%lld, %lld] is too large to dequantize in memory",
                         nm(q), layout, (long long)q->w_rows, (long long)q->w_cols);
    if ((q->w_rows && q->w_cols && !q->w) || (q->s_rows && q->s_cols && !q->s))
        return dsv4_fail(e, "%s: %s weight or scale data missing", nm(q), layout);
    return 0;
}

int dsv4_fp8_block_check(const dsv4_qweight *q, dsv4_err *e)
{
    if (common(q, "FP8-block", q->w_cols, e))
        return -1;
    int64_t er = ceil_div(q->w_rows, DSV4_FP8_BLOCK), ec = ceil_div(q->w_cols, DSV4_FP8_BLOCK);
    if (q->s_rows != er || q->s_cols != ec)
        return dsv4_fail(e, "%s: F8_E8M0 scale has shape [%lld, %lld] but the F8_E4M3 weight [%lld, %lld] "
                            "needs [%lld, %lld] (one scale per %dx%d block)",
                         nm(q), (long long)q->s_rows, (long long)q->s_cols, (long long)q->w_rows,
                         (long long)q->w_cols, (long long)er, (long long)ec, DSV4_FP8_BLOCK, DSV4_FP8_BLOCK);
    return 0;
}

int dsv4_fp4_check(const dsv4_qweight *q, dsv4_err *e)
{
    if (q->w_cols > INT64_MAX / 2)
        return dsv4_fail(e, "%s: FP4 weight has %lld columns", nm(q), (long long)q->w_cols);
    int64_t in = 2 * q->w_cols;
    if (common(q, "FP4", in, e))
        return -1;
    int64_t ec = ceil_div(in, DSV4_FP4_GROUP);
    if (q->s_rows != q->w_rows || q->s_cols != ec)
        return dsv4_fail(e, "%s: F8_E8M0 scale has shape [%lld, %lld] but the packed FP4 weight "
                            "[%lld, %lld] (logical [%lld, %lld]) needs [%lld, %lld] (one scale per %d inputs)",
                         nm(q), (long long)q->s_rows, (long long)q->s_cols, (long long)q->w_rows,
                         (long long)q->w_cols, (long long)q->w_rows, (long long)in,
                         (long long)q->w_rows, (long long)ec, DSV4_FP4_GROUP);
    return 0;
}
