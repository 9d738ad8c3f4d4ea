/* The linear-weight formats of kernels/ops.h on the host: their names, their byte sizes, and the
 * reference dequantization of each to float [out, in]. The dequantization reuses the release
 * dequant (formats/dequant.h) and the compressed-tensors unpackers (quant/pack.h), so the numbers
 * are exactly what the packers and compressed-tensors produce; every backend's GEMM is tested
 * against these values. */
#include <stdlib.h>
#include <string.h>

#include "formats/dequant.h"
#include "formats/fp.h"
#include "ops.h"
#include "quant/pack.h"

const char *dsv4_lw_fmt_name(dsv4_lw_fmt f)
{
    static const char *const names[DSV4_LW_FMT_COUNT] = {"f32", "bf16", "fp8_block", "mxfp4", "int4", "nvfp4"};
    return (unsigned)f < DSV4_LW_FMT_COUNT ? names[f] : "?";
}

/* a·b·c bytes without overflow (all positive), or -1. */
static int mul3(int64_t a, int64_t b, int64_t c, size_t *out)
{
    if (a < 0 || b < 0 || c < 0)
        return -1;
    if (a && b > INT64_MAX / a)
        return -1;
    int64_t ab = a * b;
    if (ab && c > INT64_MAX / ab)
        return -1;
    *out = (size_t)(a * b * c);
    return 0;
}

int dsv4_lw_sizes(dsv4_lw_fmt f, int64_t out, int64_t in, int group, size_t *w_bytes, size_t *s_bytes)
{
    size_t w = 0, s = 0;
    if (out <= 0 || in <= 0)
        return -1;
    switch (f) {
    case DSV4_LW_F32:
        if (mul3(out, in, 4, &w))
            return -1;
        break;
    case DSV4_LW_BF16:
        if (mul3(out, in, 2, &w))
            return -1;
        break;
    case DSV4_LW_FP8_BLOCK:
        if (mul3(out, in, 1, &w) || mul3((out + 127) / 128, (in + 127) / 128, 4, &s))
            return -1;
        break;
    case DSV4_LW_MXFP4:
        if (in % DSV4_FP4_GROUP || mul3(out, in / 2, 1, &w) || mul3(out, in / DSV4_FP4_GROUP, 1, &s))
            return -1;
        break;
    case DSV4_LW_INT4:
        if (in % 8 || group <= 0 || in % group || mul3(out, in / 8, 4, &w) || mul3(out, in / group, 2, &s))
            return -1;
        break;
    case DSV4_LW_NVFP4:
        if (in % 16 || mul3(out, in / 2, 1, &w) || mul3(out, in / 16, 1, &s))
            return -1;
        break;
    default:
        return -1;
    }
    if (w_bytes)
        *w_bytes = w;
    if (s_bytes)
        *s_bytes = s;
    return 0;
}

/* FP8 block with float scales: e4m3(q)·s, the product formats/dequant.h and quant/pack.h compute
 * for e8m0 and BF16 scales (both exact in float, so the same float scale gives the same value). */
static void fp8_block_f32(const dsv4_lin *h, float *out)
{
    const uint8_t *q = h->w;
    const float *s = h->s;
    int64_t sc = (h->in + 127) / 128;
    for (int64_t r = 0; r < h->out; r++) {
        const float *srow = s + (r / 128) * sc;
        for (int64_t c = 0; c < h->in; c++)
            out[r * h->in + c] = dsv4_e4m3_to_f32(q[r * h->in + c]) * srow[c / 128];
    }
}

/* INT4 row by row through the compressed-tensors unpacker: bf16((u-8)·s), widened to float. */
static int int4_f32(const dsv4_lin *h, float *out, dsv4_err *e)
{
    uint16_t *row = malloc((size_t)h->in * sizeof *row);
    if (!row)
        return dsv4_fail_rt(e, "out of memory dequantizing an INT4 weight [%lld, %lld]", (long long)h->out,
                            (long long)h->in);
    const int32_t *w = h->w;
    const uint16_t *s = h->s;
    int64_t nw = h->in / 8, ng = h->in / h->group;
    for (int64_t r = 0; r < h->out; r++) {
        if (dsv4_int4_dequant(w + r * nw, s + r * ng, 1, h->in, h->group, row, e)) {
            free(row);
            return -1;
        }
        for (int64_t c = 0; c < h->in; c++)
            out[r * h->in + c] = dsv4_bf16_to_f32(row[c]);
    }
    free(row);
    return 0;
}

int dsv4_lin_dequant_f32(const dsv4_lin *h, float *out, dsv4_err *e)
{
    size_t wb, sb;
    if (dsv4_lw_sizes(h->fmt, h->out, h->in, h->group, &wb, &sb))
        return dsv4_fail(e, "linear weight [%lld, %lld] does not fit format %s (group %d)", (long long)h->out,
                         (long long)h->in, dsv4_lw_fmt_name(h->fmt), h->group);
    if (!h->w || (sb && !h->s))
        return dsv4_fail(e, "linear weight [%lld, %lld] (%s) has no data", (long long)h->out, (long long)h->in,
                         dsv4_lw_fmt_name(h->fmt));
    size_t n = (size_t)h->out * (size_t)h->in;
    switch (h->fmt) {
    case DSV4_LW_F32:
        memcpy(out, h->w, n * sizeof *out);
        return 0;
    case DSV4_LW_BF16: {
        const uint16_t *w = h->w;
        for (size_t i = 0; i < n; i++)
            out[i] = dsv4_bf16_to_f32(w[i]);
        return 0;
    }
    case DSV4_LW_FP8_BLOCK:
        fp8_block_f32(h, out);
        return 0;
    case DSV4_LW_MXFP4: {
        dsv4_qweight q = {"mxfp4 weight", h->w, h->s, h->out, h->in / 2, h->out, h->in / DSV4_FP4_GROUP};
        return dsv4_fp4_dequant_f32(&q, out, e);
    }
    case DSV4_LW_INT4:
        return int4_f32(h, out, e);
    case DSV4_LW_NVFP4:
        return dsv4_nvfp4_dequant(h->w, h->s, h->gscale, h->out, h->in, out, e);
    default:
        return dsv4_fail(e, "unknown linear weight format %d", (int)h->fmt);
    }
}
