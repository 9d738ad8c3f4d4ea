/* Linear views of the weight source (runner/weights.h dsv4_wsrc_lin): finds the module by its
 * canonical stem, checks its logical shape, and turns the plain (BF16 / F16 / F32), release FP8
 * block, FP8 weight_scale_inv / compressed-tensors FP8 block and release FP4 storage into the
 * backend formats of kernels/ops.h, exactly. The compressed-tensors INT4 / NVFP4 forms, ModelOpt
 * NVFP4 and transformers' fused experts are in wsrc_ct.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/fp.h"
#include "runner/wsrc_internal.h"

/* The tensor that carries the weight's data (.weight, or .weight_packed). */
static const dsv4_tensor *data_part(const dsv4_amod *m, dsv4_part *which)
{
    *which = m->part[DSV4_PART_WEIGHT] ? DSV4_PART_WEIGHT : DSV4_PART_PACKED;
    return m->part[*which];
}

static int plain(dsv4_wsrc *s, const dsv4_amod *m, dsv4_lin *h, dsv4_err *e)
{
    const dsv4_tensor *w = m->part[DSV4_PART_WEIGHT];
    const char *file = dsv4_wsrc_part_file(s, m, DSV4_PART_WEIGHT), *name = m->part_name[DSV4_PART_WEIGHT];
    if (w->ndim != 2)
        return dsv4_fail(e, "%s: linear weight '%s' has %d dimensions (expected 2: [%lld, %lld])", file, name, w->ndim,
                         (long long)h->out, (long long)h->in);
    if (w->dtype == DSV4_BF16) {
        h->fmt = DSV4_LW_BF16;
        h->w = (void *)dsv4_wsrc_aligned(s, w, 2, e);
    } else if (w->dtype == DSV4_F32) {
        h->fmt = DSV4_LW_F32;
        h->w = (void *)dsv4_wsrc_aligned(s, w, 4, e);
    } else { /* F16: widened to F32, exactly */
        h->fmt = DSV4_LW_F32;
        float *f = dsv4_wsrc_scratch(s, (size_t)(h->out * h->in) * sizeof *f, name, e);
        if (f)
            dsv4_decode_row(DSV4_F16, w->data, f, (size_t)(h->out * h->in));
        h->w = f;
    }
    return h->w ? 0 : -1;
}

static int scale_dtype_ok(dsv4_dtype d)
{
    return d == DSV4_F8_E8M0 || d == DSV4_F32 || d == DSV4_BF16 || d == DSV4_F16;
}

/* FP8 e4m3 weight with a block, per-row or per-tensor scale (.scale, .weight_scale_inv or
 * .weight_scale: all multiply the e4m3 value). */
static int fp8(dsv4_wsrc *s, const dsv4_amod *m, dsv4_lin *h, dsv4_err *e)
{
    dsv4_part sp = m->part[DSV4_PART_SCALE] ? DSV4_PART_SCALE
                   : m->part[DSV4_PART_SCALE_INV] ? DSV4_PART_SCALE_INV
                                                  : DSV4_PART_WEIGHT_SCALE;
    const dsv4_tensor *w = m->part[DSV4_PART_WEIGHT], *sc = m->part[sp];
    const char *sname = m->part_name[sp];
    int64_t sr = (h->out + 127) / 128, scc = (h->in + 127) / 128;
    if (!scale_dtype_ok(sc->dtype))
        return dsv4_fail(e, "%s: FP8 scale '%s' has dtype %s (expected F8_E8M0, F32, BF16 or F16)",
                         dsv4_wsrc_part_file(s, m, sp), sname, dsv4_dtype_name(sc->dtype));
    if (sc->ndim == 2 && sc->shape[0] == sr && sc->shape[1] == scc) {
        float *f = dsv4_wsrc_scratch(s, (size_t)(sr * scc) * sizeof *f, sname, e);
        if (!f)
            return -1;
        dsv4_decode_row(sc->dtype, sc->data, f, (size_t)(sr * scc));
        h->fmt = DSV4_LW_FP8_BLOCK;
        h->w = (void *)w->data;
        h->s = f;
        return 0;
    }
    /* per row [out, 1] or per tensor: dequantized to F32 (e4m3·s is exact in float) */
    int per_row = sc->ndim == 2 && sc->shape[0] == h->out && sc->shape[1] == 1;
    float *f = dsv4_wsrc_scratch(s, (size_t)(h->out * h->in) * sizeof *f, m->part_name[DSV4_PART_WEIGHT], e);
    if (!f)
        return -1;
    for (int64_t r = 0; r < h->out; r++) {
        float v = dsv4_decode_elem(sc->dtype, sc->data, per_row ? (size_t)r : 0);
        for (int64_t c = 0; c < h->in; c++)
            f[r * h->in + c] = dsv4_e4m3_to_f32(w->data[r * h->in + c]) * v;
    }
    h->fmt = DSV4_LW_F32;
    h->w = f;
    return 0;
}

static int fp4(dsv4_wsrc *s, const dsv4_amod *m, dsv4_lin *h, dsv4_err *e)
{
    (void)s;
    (void)e;
    h->fmt = DSV4_LW_MXFP4;
    h->w = (void *)m->part[DSV4_PART_WEIGHT]->data;
    h->s = (void *)m->part[DSV4_PART_SCALE]->data;
    return 0;
}

int dsv4_wsrc_lin(dsv4_wsrc *s, const char *stem, int64_t out, int64_t in, dsv4_lin *host, dsv4_err *e)
{
    memset(host, 0, sizeof *host);
    host->out = out;
    host->in = in;
    const dsv4_amod *m = dsv4_astore_find(&s->st, stem);
    if (!m || !m->is_module) {
        int rc = dsv4_wsrc_fused(s, stem, out, in, host, e);
        if (rc <= 0)
            return rc;
        return dsv4_fail(e, "%s: linear weight '%s.weight' is missing (expected logical shape [%lld, %lld])", s->path,
                         stem, (long long)out, (long long)in);
    }
    dsv4_part wp;
    const dsv4_tensor *wt = data_part(m, &wp);
    const char *wname = wt ? m->part_name[wp] : stem, *wfile = wt ? dsv4_wsrc_part_file(s, m, wp) : s->path;
    if (m->form == DSV4_QF_BROKEN)
        return dsv4_fail(e, "%s: linear weight '%s' (%s form) cannot be read: %s", wfile, stem,
                         dsv4_qform_name(m->form), m->why);
    if (m->rows != out || m->cols != in)
        return dsv4_fail(e, "%s: linear weight '%s' (%s, stored as '%s') has logical shape [%lld, %lld] (expected "
                            "[%lld, %lld])",
                         wfile, wname, dsv4_qform_name(m->form), wt->name, (long long)m->rows, (long long)m->cols,
                         (long long)out, (long long)in);
    int rc;
    switch (m->form) {
    case DSV4_QF_PLAIN: rc = plain(s, m, host, e); break;
    case DSV4_QF_RELEASE_FP8:
    case DSV4_QF_FP8_SCALE_INV:
    case DSV4_QF_CT_FP8: rc = fp8(s, m, host, e); break;
    case DSV4_QF_RELEASE_FP4: rc = fp4(s, m, host, e); break;
    case DSV4_QF_CT_INT4: rc = dsv4_wsrc_ct_int4(s, m, host, e); break;
    case DSV4_QF_CT_NVFP4:
    case DSV4_QF_MODELOPT_NVFP4: rc = dsv4_wsrc_nvfp4(s, m, host, e); break;
    default: rc = dsv4_fail(e, "%s: linear weight '%s': storage form %s is not supported", wfile, wname,
                            dsv4_qform_name(m->form));
    }
    if (rc == 0 && dsv4_lw_sizes(host->fmt, out, in, host->group, &host->w_bytes, &host->s_bytes))
        rc = dsv4_fail(e, "%s: linear weight '%s' of shape [%lld, %lld] does not fit the %s format (group %d)", wfile,
                       wname, (long long)out, (long long)in, dsv4_lw_fmt_name(host->fmt), host->group);
    if (rc)
        dsv4_wsrc_lin_done(s, host);
    return rc;
}

int dsv4_wsrc_lin_f32(dsv4_wsrc *s, const char *stem, int64_t out, int64_t in, dsv4_lin *host, dsv4_err *e)
{
    dsv4_lin q;
    if (dsv4_wsrc_lin(s, stem, out, in, &q, e))
        return -1;
    if (q.fmt == DSV4_LW_F32) {
        *host = q;
        return 0;
    }
    memset(host, 0, sizeof *host);
    float *f = dsv4_wsrc_scratch(s, (size_t)(out * in) * sizeof *f, stem, e);
    if (!f || dsv4_lin_dequant_f32(&q, f, e)) {
        dsv4_wsrc_scratch_free(s, f);
        dsv4_wsrc_lin_done(s, &q);
        return dsv4_wrap(e, "%s: %s", s->path, stem);
    }
    dsv4_wsrc_lin_done(s, &q);
    *host = (dsv4_lin){.out = out, .in = in, .fmt = DSV4_LW_F32, .w = f, .w_bytes = (size_t)(out * in) * sizeof *f};
    return 0;
}
