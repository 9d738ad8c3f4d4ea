/* PUT fix ops' bytes (see produce.h): the four DSV4_PRODUCE_* kinds, their checks and their
 * one-line descriptions. */
#include "fixup/produce.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact/convert_job.h"
#include "formats/dequant.h"
#include "formats/fp.h"

#define CHUNK 65536 /* elements converted per step (CAST) */

int64_t dsv4_fix_op_nbytes(const dsv4_fix_op *op)
{
    uint64_t n = 1;
    for (int i = 0; i < op->ndim; i++) {
        if (op->shape[i] < 0)
            return -1;
        if (op->shape[i] && n > UINT64_MAX / 64 / (uint64_t)op->shape[i])
            return -1;
        n *= (uint64_t)op->shape[i];
    }
    return dsv4_dtype_nbytes(op->dtype, n);
}

static uint64_t op_numel(const dsv4_fix_op *op)
{
    uint64_t n = 1;
    for (int i = 0; i < op->ndim; i++)
        n *= (uint64_t)op->shape[i];
    return n;
}

static const char *produce_name(dsv4_produce p)
{
    switch (p) {
    case DSV4_PRODUCE_COPY:
        return "copy";
    case DSV4_PRODUCE_BF16:
        return "bf16";
    case DSV4_PRODUCE_CAST:
        return "cast";
    case DSV4_PRODUCE_CT_DEQUANT:
        return "ct-dequant";
    }
    return "?";
}

static int same_shape(const dsv4_fix_op *op, int ndim, const int64_t *shape)
{
    if (op->ndim != ndim)
        return 0;
    for (int i = 0; i < ndim; i++)
        if (op->shape[i] != shape[i])
            return 0;
    return 1;
}

/* The declared shape differs from the one the produce kind gives. */
static int fail_shape(const dsv4_fix_op *op, int ndim, const int64_t *want, dsv4_err *e)
{
    char a[160], b[160];
    return dsv4_fail(e, "fix for '%s' [%s]: declares %s %s, but %s of '%s' gives %s %s", op->name, op->rule,
                     dsv4_dtype_name(op->dtype), dsv4_dims_str(op->shape, op->ndim, a, sizeof a),
                     produce_name(op->produce), op->from->name, dsv4_dtype_name(op->dtype),
                     dsv4_dims_str(want, ndim, b, sizeof b));
}

static int check_bf16(const dsv4_fix_op *op, dsv4_err *e)
{
    const dsv4_tensor *w = op->from, *s = op->from_scale;
    if (op->dtype != DSV4_BF16)
        return dsv4_fail(e, "fix for '%s' [%s]: a bf16 conversion must declare BF16, not %s", op->name, op->rule,
                         dsv4_dtype_name(op->dtype));
    if (w->dtype == DSV4_F8_E4M3 && s) {
        dsv4_qweight q = {w->name, w->data, s->data, w->shape[0], w->ndim > 1 ? w->shape[1] : 1, s->shape[0],
                          s->ndim > 1 ? s->shape[1] : 1};
        if (w->ndim != 2 || s->ndim != 2 || s->dtype != DSV4_F8_E8M0)
            return dsv4_fail(e, "fix for '%s' [%s]: '%s' is F8_E4M3 with scale '%s' (%s, %d dims): expected a 2-D "
                             "weight and a 2-D F8_E8M0 block scale", op->name, op->rule, w->name, s->name,
                             dsv4_dtype_name(s->dtype), s->ndim);
        if (dsv4_fp8_block_check(&q, e))
            return dsv4_wrap(e, "fix for '%s' [%s]", op->name, op->rule);
        return same_shape(op, 2, w->shape) ? 0 : fail_shape(op, 2, w->shape, e);
    }
    if ((w->dtype == DSV4_I8 || w->dtype == DSV4_U8) && s) {
        dsv4_qweight q = {w->name, w->data, s->data, w->shape[0], w->ndim > 1 ? w->shape[1] : 1, s->shape[0],
                          s->ndim > 1 ? s->shape[1] : 1};
        if (w->ndim != 2 || s->ndim != 2 || s->dtype != DSV4_F8_E8M0)
            return dsv4_fail(e, "fix for '%s' [%s]: '%s' is packed FP4 with scale '%s' (%s, %d dims): expected a "
                             "2-D weight and a 2-D F8_E8M0 group scale", op->name, op->rule, w->name, s->name,
                             dsv4_dtype_name(s->dtype), s->ndim);
        if (dsv4_fp4_check(&q, e))
            return dsv4_wrap(e, "fix for '%s' [%s]", op->name, op->rule);
        int64_t logical[2] = {w->shape[0], 2 * w->shape[1]};
        return same_shape(op, 2, logical) ? 0 : fail_shape(op, 2, logical, e);
    }
    if (w->dtype != DSV4_BF16 && w->dtype != DSV4_F16 && w->dtype != DSV4_F32)
        return dsv4_fail(e, "fix for '%s' [%s]: '%s' is %s%s; a bf16 conversion takes FP8 with an F8_E8M0 .scale, "
                         "FP4 with its scale, BF16, F16 or F32", op->name, op->rule, w->name,
                         dsv4_dtype_name(w->dtype), s ? "" : " without a scale");
    return op_numel(op) == dsv4_tensor_numel(w) ? 0 : fail_shape(op, w->ndim, w->shape, e);
}

static int check_ct_dequant(const dsv4_fix_op *op, dsv4_err *e)
{
    const dsv4_tensor *w = op->from, *s = op->from_scale;
    if (op->dtype != DSV4_BF16)
        return dsv4_fail(e, "fix for '%s' [%s]: a ct-dequant must declare BF16, not %s", op->name, op->rule,
                         dsv4_dtype_name(op->dtype));
    if (!s)
        return dsv4_fail(e, "fix for '%s' [%s]: ct-dequant of '%s' needs its weight_scale", op->name, op->rule,
                         w->name);
    if (w->dtype != DSV4_F8_E4M3 || w->ndim != 2)
        return dsv4_fail(e, "fix for '%s' [%s]: ct-dequant expects a 2-D F8_E4M3 weight, '%s' is %s with %d "
                         "dims", op->name, op->rule, w->name, dsv4_dtype_name(w->dtype), w->ndim);
    int64_t want[2] = {(w->shape[0] + 127) / 128, (w->shape[1] + 127) / 128};
    if (!dsv4_dtype_is_float(s->dtype) || s->dtype == DSV4_F64 || s->ndim != 2 || s->shape[0] != want[0] ||
        s->shape[1] != want[1]) {
        char a[160], b[160];
        return dsv4_fail(e, "fix for '%s' [%s]: scale '%s' is %s %s, expected one BF16/F32/F16/F8_E8M0 value "
                         "per 128x128 block of '%s': %s", op->name, op->rule, s->name, dsv4_dtype_name(s->dtype),
                         dsv4_shape_str(s, a, sizeof a), w->name, dsv4_dims_str(want, 2, b, sizeof b));
    }
    if (!s->data)
        return dsv4_fail(e, "fix for '%s' [%s]: scale '%s' has no bytes to read", op->name, op->rule, s->name);
    return same_shape(op, 2, w->shape) ? 0 : fail_shape(op, 2, w->shape, e);
}

/* Converts elements [i0, i0+n) of `from` to the op's dtype into out; *bad receives the index of the
 * first one that does not survive (or UINT64_MAX). */
static void cast_chunk(const dsv4_fix_op *op, uint64_t i0, size_t n, float *f, float *back, uint8_t *out,
                       uint64_t *bad)
{
    const dsv4_tensor *w = op->from;
    size_t isz = (size_t)dsv4_dtype_bits(w->dtype) / 8;
    *bad = UINT64_MAX;
    for (size_t k = 0; k < n; k++) {
        if (w->dtype == DSV4_F64) {
            double d;
            memcpy(&d, w->data + (i0 + k) * 8, 8);
            f[k] = (float)d;
            if (*bad == UINT64_MAX && (double)f[k] != d && !(isnan(d) && isnan(f[k])))
                *bad = i0 + k;
        } else {
            f[k] = dsv4_decode_elem(w->dtype, w->data + i0 * isz, k);
        }
    }
    dsv4_encode_row(op->dtype, f, out, n, DSV4_FP_CAST);
    dsv4_decode_row(op->dtype, out, back, n);
    for (size_t k = 0; k < n && *bad == UINT64_MAX; k++) {
        uint32_t a, b;
        memcpy(&a, &f[k], 4);
        memcpy(&b, &back[k], 4);
        if (a != b && !(isnan(f[k]) && isnan(back[k])))
            *bad = i0 + k;
    }
}

static int cast_run(const dsv4_fix_op *op, uint8_t *dst, dsv4_err *e)
{
    const dsv4_tensor *w = op->from;
    uint64_t n = dsv4_tensor_numel(w);
    size_t osz = (size_t)dsv4_dtype_bits(op->dtype) / 8;
    float *f = malloc(CHUNK * sizeof *f), *back = malloc(CHUNK * sizeof *back);
    uint8_t *tmp = dst ? NULL : malloc(CHUNK * osz);
    if (!f || !back || (!dst && !tmp)) {
        free(f), free(back), free(tmp);
        return dsv4_fail_rt(e, "fix for '%s': out of memory", op->name);
    }
    int rc = 0;
    for (uint64_t i = 0; i < n && rc == 0; i += CHUNK) {
        size_t k = n - i < CHUNK ? (size_t)(n - i) : CHUNK;
        uint64_t bad;
        cast_chunk(op, i, k, f, back, dst ? dst + i * osz : tmp, &bad);
        if (bad != UINT64_MAX) {
            double v;
            if (w->dtype == DSV4_F64)
                memcpy(&v, w->data + bad * 8, 8);
            else
                v = dsv4_decode_elem(w->dtype, w->data, bad);
            rc = dsv4_fail(e, "fix for '%s' [%s]: '%s' element %llu (%.9g) does not survive a cast from %s to %s; "
                           "refusing a lossy conversion", op->name, op->rule, w->name, (unsigned long long)bad, v,
                           dsv4_dtype_name(w->dtype), dsv4_dtype_name(op->dtype));
        }
    }
    free(f), free(back), free(tmp);
    return rc;
}

static int is_castable_out(dsv4_dtype t)
{
    return t == DSV4_F32 || t == DSV4_BF16 || t == DSV4_F16 || t == DSV4_F8_E4M3 || t == DSV4_F8_E5M2 ||
           t == DSV4_F8_E8M0;
}

int dsv4_fix_produce_check(const dsv4_fix_op *op, dsv4_err *e)
{
    if (op->kind != DSV4_FIX_PUT)
        return dsv4_fail(e, "fix for '%s' [%s]: %s is not a put", op->name, op->rule, dsv4_fix_kind_name(op->kind));
    const dsv4_tensor *w = op->from;
    if (!w || !w->data)
        return dsv4_fail(e, "fix for '%s' [%s]: no tensor to produce it from", op->name, op->rule);
    if (op->from_scale && !op->from_scale->data)
        return dsv4_fail(e, "fix for '%s' [%s]: scale '%s' has no bytes to read", op->name, op->rule,
                         op->from_scale->name);
    if (op->ndim < 0 || op->ndim > DSV4_MAX_DIMS || op->dtype < 0 || op->dtype >= DSV4_DTYPE_COUNT ||
        dsv4_fix_op_nbytes(op) < 0)
        return dsv4_fail(e, "fix for '%s' [%s]: invalid dtype or shape", op->name, op->rule);
    switch (op->produce) {
    case DSV4_PRODUCE_COPY:
        if ((uint64_t)dsv4_fix_op_nbytes(op) != dsv4_tensor_nbytes(w)) {
            char a[160], b[160];
            return dsv4_fail(e, "fix for '%s' [%s]: a copy of '%s' (%s %s, %llu bytes) cannot be declared %s %s "
                             "(%lld bytes)", op->name, op->rule, w->name, dsv4_dtype_name(w->dtype),
                             dsv4_shape_str(w, a, sizeof a), (unsigned long long)dsv4_tensor_nbytes(w),
                             dsv4_dtype_name(op->dtype), dsv4_dims_str(op->shape, op->ndim, b, sizeof b),
                             (long long)dsv4_fix_op_nbytes(op));
        }
        return 0;
    case DSV4_PRODUCE_BF16:
        return check_bf16(op, e);
    case DSV4_PRODUCE_CAST:
        if (!dsv4_dtype_is_float(w->dtype) || !is_castable_out(op->dtype))
            return dsv4_fail(e, "fix for '%s' [%s]: cannot cast '%s' from %s to %s (float to float only: F64, "
                             "F32, BF16, F16, F8_E4M3, F8_E5M2, F8_E8M0 to any of them but F64)", op->name,
                             op->rule, w->name, dsv4_dtype_name(w->dtype), dsv4_dtype_name(op->dtype));
        if (op_numel(op) != dsv4_tensor_numel(w))
            return fail_shape(op, w->ndim, w->shape, e);
        return cast_run(op, NULL, e);
    case DSV4_PRODUCE_CT_DEQUANT:
        return check_ct_dequant(op, e);
    }
    return dsv4_fail(e, "fix for '%s' [%s]: unknown produce kind %d", op->name, op->rule, (int)op->produce);
}

/* bf16(e4m3 * scale): the float32 product rounded to nearest even, as
 * `(fp8.float() * scale.float()).to(torch.bfloat16)` computes it. */
static void ct_dequant(const dsv4_fix_op *op, uint16_t *out)
{
    const dsv4_tensor *w = op->from, *s = op->from_scale;
    int64_t rows = w->shape[0], cols = w->shape[1], sc = s->shape[1];
    float lut[256];
    for (int c = 0; c < 256; c++)
        lut[c] = dsv4_e4m3_to_f32((uint8_t)c);
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *wr = w->data + r * cols;
        for (int64_t c0 = 0; c0 < cols; c0 += 128) {
            float scale = dsv4_decode_elem(s->dtype, s->data, (size_t)((r / 128) * sc + c0 / 128));
            int64_t c1 = c0 + 128 < cols ? c0 + 128 : cols;
            for (int64_t c = c0; c < c1; c++) {
                uint16_t b = dsv4_f32_to_bf16(lut[wr[c]] * scale);
                memcpy(out + r * cols + c, &b, 2);
            }
        }
    }
}

int dsv4_fix_produce(const dsv4_fix_op *op, uint8_t *dst, dsv4_err *e)
{
    switch (op->produce) {
    case DSV4_PRODUCE_COPY:
        memcpy(dst, op->from->data, dsv4_tensor_nbytes(op->from));
        return 0;
    case DSV4_PRODUCE_BF16:
        if (dsv4_source_bf16(op->from, op->from_scale, (uint16_t *)(void *)dst, e))
            return dsv4_wrap(e, "fix for '%s' [%s]", op->name, op->rule);
        return 0;
    case DSV4_PRODUCE_CAST:
        return cast_run(op, dst, e);
    case DSV4_PRODUCE_CT_DEQUANT:
        ct_dequant(op, (uint16_t *)(void *)dst);
        return 0;
    }
    return dsv4_fail(e, "fix for '%s' [%s]: unknown produce kind %d", op->name, op->rule, (int)op->produce);
}

char *dsv4_fix_produce_text(const dsv4_fix_op *op, char *buf, size_t cap)
{
    const char *from = op->from ? op->from->name : "(nothing)";
    const char *sc = op->from_scale ? op->from_scale->name : NULL;
    switch (op->produce) {
    case DSV4_PRODUCE_COPY:
        snprintf(buf, cap, "copy of %s", from);
        break;
    case DSV4_PRODUCE_BF16:
        snprintf(buf, cap, "bf16 of %s%s%s%s", from, sc ? " (+ " : "", sc ? sc : "", sc ? ")" : "");
        break;
    case DSV4_PRODUCE_CAST:
        snprintf(buf, cap, "%s cast of %s (%s)", dsv4_dtype_name(op->dtype), from,
                 op->from ? dsv4_dtype_name(op->from->dtype) : "?");
        break;
    case DSV4_PRODUCE_CT_DEQUANT:
        snprintf(buf, cap, "bf16 dequant of %s x %s", from, sc ? sc : "(no scale)");
        break;
    default:
        snprintf(buf, cap, "? of %s", from);
    }
    return buf;
}
