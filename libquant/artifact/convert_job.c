/* One plan job (plan.h): read the source weight (dequantizing release FP8/FP4 to BF16 when the
 * scheme needs values), and produce the job's one to three outputs with the packers of
 * quant/pack.h into caller-provided destinations. NVFP4 keeps FP4 values exactly wherever the
 * source holds them, as release FP4 bytes or as their BF16 copy; everything else is RTN. */
#include "artifact/convert_job.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/dequant.h"
#include "formats/fp.h"
#include "quant/pack.h"

static dsv4_qweight qweight(const dsv4_tensor *w, const dsv4_tensor *s)
{
    dsv4_qweight q = {w->name, w->data, s ? s->data : NULL, w->shape[0], w->ndim > 1 ? w->shape[1] : 1,
                      s ? s->shape[0] : 0, s && s->ndim > 1 ? s->shape[1] : 1};
    return q;
}

static int is_fp4(const dsv4_tensor *w, const dsv4_tensor *s)
{
    return s && (w->dtype == DSV4_I8 || w->dtype == DSV4_U8);
}

int dsv4_source_bf16(const dsv4_tensor *w, const dsv4_tensor *s, uint16_t *dst, dsv4_err *e)
{
    dsv4_qweight q = qweight(w, s);
    if (w->dtype == DSV4_F8_E4M3 && s)
        return dsv4_fp8_block_dequant_bf16(&q, dst, e);
    if (is_fp4(w, s))
        return dsv4_fp4_dequant_bf16(&q, dst, e);
    uint64_t n = dsv4_tensor_numel(w);
    switch (w->dtype) {
    case DSV4_BF16:
        memcpy(dst, w->data, n * 2);
        return 0;
    case DSV4_F32:
    case DSV4_F16: {
        for (uint64_t i = 0; i < n; i++)
            dst[i] = dsv4_f32_to_bf16(dsv4_decode_elem(w->dtype, w->data, i));
        return 0;
    }
    default:
        return dsv4_fail(e, "%s: dtype %s cannot be converted to BF16 (expected FP8 with a .scale, FP4 "
                         "experts, BF16, F16 or F32)", w->name, dsv4_dtype_name(w->dtype));
    }
}

static uint16_t *alloc_bf16(int64_t rows, int64_t cols, const char *name, dsv4_err *e)
{
    uint16_t *b = malloc((size_t)(rows * cols) * 2 + 2);
    if (!b)
        dsv4_fail_rt(e, "%s: out of memory for a %lld x %lld BF16 copy", name, (long long)rows, (long long)cols);
    return b;
}

/* The logical [rows, cols] of a source weight (release FP4 stores two values per byte). */
static void logical_shape(const dsv4_tensor *w, const dsv4_tensor *s, int64_t *rows, int64_t *cols)
{
    *rows = w->shape[0];
    *cols = w->ndim > 1 ? (is_fp4(w, s) ? 2 * w->shape[1] : w->shape[1]) : 1;
}

/* A weight as release FP4 (MXFP4) for NVFP4's exact conversion: the release's own bytes, or dense
 * values that are E2M1 times one power of two per 32 inputs (a BF16 copy of release FP4 weights,
 * as transformers saves V4), packed into `buf` by dsv4_mxfp4_from_bf16. */
typedef struct mx_view {
    dsv4_qweight q;
    uint8_t *buf; /* the packed dense values (NULL for release FP4) */
} mx_view;

/* 0: *v holds w as MXFP4; 1: w is not representable; -1: error (e set). A BF16 weight is checked
 * in its mapping, so one that is not representable costs only the groups up to the first miss. */
static int mx_view_of(const dsv4_tensor *w, const dsv4_tensor *s, mx_view *v, dsv4_err *e)
{
    int64_t rows, cols;
    memset(v, 0, sizeof *v);
    if (is_fp4(w, s)) {
        v->q = qweight(w, s);
        return 0;
    }
    logical_shape(w, s, &rows, &cols);
    if (w->ndim != 2 || rows <= 0 || cols % 32)
        return 1;
    size_t nw = (size_t)(rows * cols) / 2, ns = (size_t)(rows * cols) / 32;
    if (!(v->buf = malloc(nw + ns + 1)))
        return dsv4_fail_rt(e, "%s: out of memory", w->name);
    int ok;
    if (w->dtype == DSV4_BF16 && !s && w->data && (uintptr_t)w->data % 2 == 0) {
        ok = dsv4_mxfp4_from_bf16((const uint16_t *)(const void *)w->data, rows, cols, v->buf, v->buf + nw);
    } else {
        uint16_t *b = alloc_bf16(rows, cols, w->name, e);
        if (!b || dsv4_source_bf16(w, s, b, e)) {
            free(b);
            free(v->buf);
            v->buf = NULL;
            return -1;
        }
        ok = dsv4_mxfp4_from_bf16(b, rows, cols, v->buf, v->buf + nw);
        free(b);
    }
    if (!ok) {
        free(v->buf);
        v->buf = NULL;
        return 1;
    }
    v->q = (dsv4_qweight){w->name, v->buf, v->buf + nw, rows, cols / 2, rows, cols / 32};
    return 0;
}

/* Job j's weight as MXFP4 in *a, with the power-of-two global scale under which it and its fused
 * partner both convert exactly: 0 (free a->buf), 1 when there is none, -1 on error. */
static int nvfp4_exact(const dsv4_plan_job *j, mx_view *a, float *gs, dsv4_err *e)
{
    mx_view b = {0};
    int rc = mx_view_of(j->src[0], j->src[1], a, e);
    if (rc == 0 && j->src[2])
        rc = mx_view_of(j->src[2], j->src[3], &b, e);
    if (rc == 0) {
        const dsv4_qweight *qs[2] = {&a->q, &b.q};
        dsv4_err ignored;
        rc = dsv4_nvfp4_mx_global_scale(qs, j->src[2] ? 2 : 1, gs, &ignored) ? 1 : 0;
    }
    free(b.buf);
    if (rc) {
        free(a->buf);
        a->buf = NULL;
    }
    return rc;
}

/* compressed-tensors' NVFP4 global scale, bf16(2688 / amax), over the fused pair (w holds the
 * job's own weight as BF16; the partner has its own shape: attn.wkv is smaller than wq_a). */
static int nvfp4_rtn_scale(const dsv4_plan_job *j, const uint16_t *w, float *gs, dsv4_err *e)
{
    const dsv4_tensor *b = j->src[2], *bs = j->src[3];
    float amax = dsv4_bf16_amax(w, (size_t)(j->rows * j->cols));
    if (b) {
        int64_t rows, cols;
        logical_shape(b, bs, &rows, &cols);
        uint16_t *pb = alloc_bf16(rows, cols, b->name, e);
        if (!pb || dsv4_source_bf16(b, bs, pb, e)) {
            free(pb);
            return -1;
        }
        float bmax = dsv4_bf16_amax(pb, (size_t)(rows * cols));
        free(pb);
        if (bmax > amax)
            amax = bmax;
    }
    *gs = dsv4_nvfp4_global_scale(amax);
    return 0;
}

int dsv4_job_nvfp4_scale(const dsv4_plan_job *j, int *exact, float *gs, dsv4_err *e)
{
    mx_view a;
    int rc = nvfp4_exact(j, &a, gs, e);
    free(a.buf);
    if (rc < 0)
        return -1;
    if ((*exact = rc == 0))
        return 0;
    uint16_t *v = alloc_bf16(j->rows, j->cols, j->src[0]->name, e);
    rc = !v || dsv4_source_bf16(j->src[0], j->src[1], v, e) || nvfp4_rtn_scale(j, v, gs, e) ? -1 : 0;
    free(v);
    return rc;
}

int dsv4_job_nvfp4_exact(const dsv4_plan_job *j)
{
    if (j->kind != DSV4_JOB_NVFP4)
        return 0;
    mx_view a;
    float gs;
    dsv4_err ignored;
    int rc = nvfp4_exact(j, &a, &gs, &ignored);
    free(a.buf);
    return rc == 0;
}

const dsv4_recipe_group *dsv4_job_group(const dsv4_plan_job *j, const dsv4_recipe *r)
{
    return j->group >= 0 && (size_t)j->group < r->n_groups ? &r->groups[j->group] : NULL;
}

int dsv4_job_run(const dsv4_plan_job *j, const dsv4_recipe_group *g, uint8_t *const dst[3], dsv4_job_report *rep,
                 dsv4_err *e)
{
    int group_size = g && g->group_size > 0 ? g->group_size : 128, mse = g && !strcmp(g->observer, "mse");
    const dsv4_tensor *w = j->src[0], *s = j->src[1];
    memset(rep, 0, sizeof *rep);
    rep->exact = 1;
    switch (j->kind) {
    case DSV4_JOB_COPY:
        memcpy(dst[0], w->data, dsv4_tensor_nbytes(w));
        return 0;
    case DSV4_JOB_BF16:
        return dsv4_source_bf16(w, s, (uint16_t *)dst[0], e);
    case DSV4_JOB_FP8_PASS:
        if (w->dtype != DSV4_F8_E4M3 || !s || s->dtype != DSV4_F8_E8M0)
            return dsv4_fail(e, "%s: FP8 pass-through needs an F8_E4M3 weight and an F8_E8M0 .scale", w->name);
        memcpy(dst[0], w->data, dsv4_tensor_nbytes(w));
        dsv4_e8m0_to_bf16(s->data, dsv4_tensor_numel(s), (uint16_t *)dst[1]);
        return 0;
    case DSV4_JOB_FP8_FROM_FP4: {
        dsv4_qweight q = qweight(w, s);
        uint64_t ns = (uint64_t)((j->rows + 127) / 128) * (uint64_t)((j->cols + 127) / 128);
        uint8_t *sc = malloc(ns + 1);
        dsv4_conv_report cr;
        if (!sc)
            return dsv4_fail_rt(e, "%s: out of memory", w->name);
        int rc = dsv4_fp4_to_fp8_block(&q, dst[0], sc, &cr, e);
        if (rc == 0)
            dsv4_e8m0_to_bf16(sc, ns, (uint16_t *)dst[1]);
        free(sc);
        rep->exact = cr.exact;
        rep->inexact = cr.inexact;
        rep->max_abs_err = cr.max_abs_err;
        return rc;
    }
    default:
        break;
    }
    /* The value-based schemes: INT4, NVFP4, FP8 RTN. NVFP4 first tries the exact conversion. */
    if (j->kind == DSV4_JOB_NVFP4) {
        float gs;
        mx_view a;
        int rc = nvfp4_exact(j, &a, &gs, e);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            dsv4_conv_report cr;
            rc = dsv4_nvfp4_from_mxfp4(&a.q, gs, dst[0], dst[1], &cr, e);
            free(a.buf);
            if (rc)
                return -1;
            memcpy(dst[2], &gs, 4);
            rep->exact = cr.exact;
            rep->inexact = cr.inexact;
            rep->max_abs_err = cr.max_abs_err;
            return 0;
        }
    }
    uint16_t *v = alloc_bf16(j->rows, j->cols, w->name, e);
    if (!v || dsv4_source_bf16(w, s, v, e)) {
        free(v);
        return -1;
    }
    int rc;
    switch (j->kind) {
    case DSV4_JOB_INT4: {
        rc = (mse ? dsv4_int4_rtn_mse : dsv4_int4_rtn)(v, j->rows, j->cols, group_size, (int32_t *)dst[0],
                                                       (uint16_t *)dst[1], e);
        int64_t shape[2] = {j->rows, j->cols};
        memcpy(dst[2], shape, sizeof shape);
        break;
    }
    case DSV4_JOB_NVFP4: {
        float gs = 1.0f;
        rc = nvfp4_rtn_scale(j, v, &gs, e) ||
             (mse ? dsv4_nvfp4_rtn_mse : dsv4_nvfp4_rtn)(v, j->rows, j->cols, gs, dst[0], dst[1], e);
        memcpy(dst[2], &gs, 4);
        if (rc == 0 && is_fp4(w, s))
            rep->exact = 0; /* a release FP4 weight whose scales did not fit NVFP4 exactly */
        break;
    }
    case DSV4_JOB_FP8_RTN:
        rc = dsv4_fp8_block_rtn(v, j->rows, j->cols, dst[0], (uint16_t *)dst[1], e);
        break;
    default:
        rc = dsv4_fail(e, "%s: unknown job kind %d", w->name, (int)j->kind);
    }
    free(v);
    return rc;
}
