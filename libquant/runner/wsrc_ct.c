/* Linear views of the compressed-tensors and ModelOpt forms (runner/weights.h): INT4
 * pack-quantized (with act-order g_idx), NVFP4 with its global scale (compressed-tensors divides by
 * weight_global_scale; ModelOpt multiplies by weight_scale_2 = 1 / that), and the slices of
 * transformers' fused BF16/F32 expert tensors. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/fp.h"
#include "model/names.h"
#include "runner/wsrc_internal.h"

/* g_idx: 1 when it is the plain grouping c / group (so INT4 serves as is), 0 when it permutes the
 * groups, -1 (error set) when it is not an I32/I64 [in] of group indices. */
static int g_idx_plain(dsv4_wsrc *s, const dsv4_amod *m, const dsv4_lin *h, int32_t *g, dsv4_err *e)
{
    const dsv4_tensor *t = m->part[DSV4_PART_G_IDX];
    const char *file = dsv4_wsrc_part_file(s, m, DSV4_PART_G_IDX), *name = m->part_name[DSV4_PART_G_IDX];
    if ((t->dtype != DSV4_I32 && t->dtype != DSV4_I64) || t->ndim != 1 || t->shape[0] != h->in)
        return dsv4_fail(e, "%s: '%s' is not an I32/I64 [%lld] of group indices", file, name, (long long)h->in);
    int64_t ng = h->in / h->group;
    int plain = 1;
    for (int64_t c = 0; c < h->in; c++) {
        int64_t v;
        if (t->dtype == DSV4_I32) {
            int32_t x;
            memcpy(&x, t->data + 4 * c, 4);
            v = x;
        } else {
            memcpy(&v, t->data + 8 * c, 8);
        }
        if (v < 0 || v >= ng)
            return dsv4_fail(e, "%s: '%s'[%lld] = %lld is not a group index in [0, %lld)", file, name, (long long)c,
                             (long long)v, (long long)ng);
        g[c] = (int32_t)v;
        plain &= v == c / h->group;
    }
    return plain;
}

int dsv4_wsrc_ct_int4(dsv4_wsrc *s, const dsv4_amod *m, dsv4_lin *h, dsv4_err *e)
{
    const dsv4_tensor *pk = m->part[DSV4_PART_PACKED], *ws = m->part[DSV4_PART_WEIGHT_SCALE];
    const char *file = dsv4_wsrc_part_file(s, m, DSV4_PART_PACKED);
    if (m->part[DSV4_PART_ZERO_POINT])
        return dsv4_fail(e, "%s: '%s': asymmetric INT4 (weight_zero_point) is not supported (symmetric "
                            "pack-quantized INT4 only)", dsv4_wsrc_part_file(s, m, DSV4_PART_ZERO_POINT),
                         m->part_name[DSV4_PART_ZERO_POINT]);
    if (ws->dtype != DSV4_BF16)
        return dsv4_fail(e, "%s: INT4 scale '%s' has dtype %s (expected BF16; other scale dtypes are not supported)",
                         dsv4_wsrc_part_file(s, m, DSV4_PART_WEIGHT_SCALE), m->part_name[DSV4_PART_WEIGHT_SCALE],
                         dsv4_dtype_name(ws->dtype));
    if (h->in % 8)
        return dsv4_fail(e, "%s: INT4 weight '%s' has %lld columns (expected a multiple of 8)", file,
                         m->part_name[DSV4_PART_PACKED], (long long)h->in);
    h->fmt = DSV4_LW_INT4;
    h->group = m->group_size;
    h->w = (void *)dsv4_wsrc_aligned(s, pk, 4, e);
    h->s = h->w ? (void *)dsv4_wsrc_aligned(s, ws, 2, e) : NULL;
    if (!h->s || !m->part[DSV4_PART_G_IDX])
        return h->s ? 0 : -1;
    int32_t *g = malloc((size_t)h->in * sizeof *g);
    if (!g)
        return dsv4_fail_rt(e, "out of memory reading %s", m->part_name[DSV4_PART_G_IDX]);
    int plain = g_idx_plain(s, m, h, g, e);
    if (plain != 0) {
        free(g);
        return plain < 0 ? -1 : 0;
    }
    /* act-order: W[r, c] = bf16((u - 8) · s[r, g[c]]), kept as exact BF16 values */
    uint16_t *b = dsv4_wsrc_scratch(s, (size_t)(h->out * h->in) * 2, m->part_name[DSV4_PART_PACKED], e);
    if (!b) {
        free(g);
        return -1;
    }
    const uint32_t *w = h->w;
    const uint16_t *sc = h->s;
    int64_t nw = h->in / 8, ng = h->in / h->group;
    for (int64_t r = 0; r < h->out; r++)
        for (int64_t c = 0; c < h->in; c++) {
            float q = (float)((int)((w[r * nw + c / 8] >> (4 * (c % 8))) & 15u) - 8);
            b[r * h->in + c] = dsv4_f32_to_bf16(q * dsv4_bf16_to_f32(sc[r * ng + g[c]]));
        }
    free(g);
    dsv4_wsrc_scratch_free(s, h->w);
    dsv4_wsrc_scratch_free(s, h->s);
    h->fmt = DSV4_LW_BF16;
    h->group = 0;
    h->w = b;
    h->s = NULL;
    return 0;
}

/* One float scalar (F32/BF16/F16, one element), finite and positive. */
static int scalar(dsv4_wsrc *s, const dsv4_amod *m, dsv4_part p, float *v, dsv4_err *e)
{
    const dsv4_tensor *t = m->part[p];
    const char *file = dsv4_wsrc_part_file(s, m, p), *name = m->part_name[p];
    if ((t->dtype != DSV4_F32 && t->dtype != DSV4_BF16 && t->dtype != DSV4_F16) || dsv4_tensor_numel(t) != 1)
        return dsv4_fail(e, "%s: '%s' is not one F32 value (found %s with %llu elements)", file, name,
                         dsv4_dtype_name(t->dtype), (unsigned long long)dsv4_tensor_numel(t));
    *v = dsv4_decode_elem(t->dtype, t->data, 0);
    if (!isfinite(*v) || *v <= 0)
        return dsv4_fail(e, "%s: '%s' = %g (expected a finite positive global scale)", file, name, (double)*v);
    return 0;
}

int dsv4_wsrc_nvfp4(dsv4_wsrc *s, const dsv4_amod *m, dsv4_lin *h, dsv4_err *e)
{
    int ct = m->form == DSV4_QF_CT_NVFP4;
    dsv4_part wp = ct ? DSV4_PART_PACKED : DSV4_PART_WEIGHT;
    dsv4_part sp = m->part[DSV4_PART_WEIGHT_SCALE] ? DSV4_PART_WEIGHT_SCALE : DSV4_PART_SCALE;
    const dsv4_tensor *w = m->part[wp], *sc = m->part[sp];
    if (h->in % 16)
        return dsv4_fail(e, "%s: NVFP4 weight '%s' has %lld columns (expected a multiple of 16)",
                         dsv4_wsrc_part_file(s, m, wp), m->part_name[wp], (long long)h->in);
    if (w->ndim != 2 || sc->dtype != DSV4_F8_E4M3 || sc->ndim != 2 || sc->shape[0] != h->out ||
        sc->shape[1] != h->in / 16) {
        char got[96];
        return dsv4_fail(e, "%s: NVFP4 scale '%s' is %s %s (expected F8_E4M3 [%lld, %lld])",
                         dsv4_wsrc_part_file(s, m, sp), m->part_name[sp], dsv4_dtype_name(sc->dtype),
                         dsv4_shape_str(sc, got, sizeof got), (long long)h->out, (long long)(h->in / 16));
    }
    float g = 0;
    if (scalar(s, m, ct ? DSV4_PART_GLOBAL : DSV4_PART_SCALE_2, &g, e))
        return -1;
    h->fmt = DSV4_LW_NVFP4;
    h->gscale = ct ? g : 1.0f / g;
    if (!isfinite(h->gscale) || h->gscale <= 0)
        return dsv4_fail(e, "%s: '%s' = %g has no finite reciprocal", dsv4_wsrc_part_file(s, m, DSV4_PART_SCALE_2),
                         m->part_name[DSV4_PART_SCALE_2], (double)g);
    h->w = (void *)w->data;
    h->s = (void *)sc->data;
    return 0;
}

int dsv4_wsrc_fused(dsv4_wsrc *s, const char *stem, int64_t out, int64_t in, dsv4_lin *h, dsv4_err *e)
{
    char rel[DSV4_NAME_MAX + 16];
    dsv4_name_map nm;
    if (!strstr(stem, ".ffn.experts.") || snprintf(rel, sizeof rel, "%s.weight", stem) >= (int)sizeof rel ||
        dsv4_name_to_hf(rel, &s->cfg, &nm) != DSV4_MAP_FUSED)
        return 1;
    const dsv4_tensor *t = dsv4_ckpt_find(&s->ck, nm.name);
    if (!t)
        return 1;
    const char *file = dsv4_ckpt_file_of(&s->ck, t);
    char got[96];
    if (t->dtype != DSV4_BF16 && t->dtype != DSV4_F32)
        return dsv4_fail(e, "%s: fused expert tensor '%s' has dtype %s (only BF16 and F32 fused experts are "
                            "supported)", file, t->name, dsv4_dtype_name(t->dtype));
    if (t->ndim != 3 || nm.expert >= t->shape[0] || nm.row_end > t->shape[1] || nm.row_end - nm.row_begin != out ||
        t->shape[2] != in)
        return dsv4_fail(e, "%s: fused expert tensor '%s' has shape %s (expected [>%d, %lld rows from %lld, %lld] "
                            "for %s)", file, t->name, dsv4_shape_str(t, got, sizeof got), nm.expert,
                         (long long)out, (long long)nm.row_begin, (long long)in, stem);
    size_t elt = t->dtype == DSV4_BF16 ? 2 : 4, n = (size_t)(out * in) * elt;
    const uint8_t *p = t->data + ((size_t)nm.expert * (size_t)t->shape[1] + (size_t)nm.row_begin) * (size_t)in * elt;
    if ((uintptr_t)p % elt) {
        void *b = dsv4_wsrc_scratch(s, n, t->name, e);
        if (!b)
            return -1;
        memcpy(b, p, n);
        p = b;
    }
    h->fmt = t->dtype == DSV4_BF16 ? DSV4_LW_BF16 : DSV4_LW_F32;
    h->w = (void *)p;
    h->w_bytes = n;
    return 0;
}
