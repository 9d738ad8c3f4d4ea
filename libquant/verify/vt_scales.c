/* Scale families, conventions, allowed dtypes and exact casts (vt_scales.h). */
#include "verify/vt_scales.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "formats/fp.h"

#define BIT(d) ((uint32_t)1 << (d))

dsv4_vt_family dsv4_vt_family_of(const dsv4_amod *m)
{
    const dsv4_tensor *w = m->part[DSV4_PART_WEIGHT], *p = m->part[DSV4_PART_PACKED];
    if (!m->is_module)
        return DSV4_VT_FAM_NONE;
    if (w && !p)
        return w->dtype == DSV4_F8_E4M3 ? DSV4_VT_FAM_FP8
               : w->dtype == DSV4_U8    ? DSV4_VT_FAM_MODELOPT
               : w->dtype == DSV4_I8    ? DSV4_VT_FAM_MXFP4
                                        : DSV4_VT_FAM_NONE;
    if (p && !w)
        return p->dtype == DSV4_I32 ? DSV4_VT_FAM_INT4 : p->dtype == DSV4_U8 ? DSV4_VT_FAM_NVFP4 : DSV4_VT_FAM_NONE;
    return DSV4_VT_FAM_NONE;
}

const char *dsv4_vt_family_name(dsv4_vt_family f)
{
    static const char *const n[DSV4_VT_FAM_COUNT] = {"none", "FP8", "INT4", "NVFP4", "ModelOpt NVFP4", "MXFP4"};
    return (unsigned)f < DSV4_VT_FAM_COUNT ? n[f] : "?";
}

/* The parts a family's block / group scale may be found under. */
static const dsv4_part CANDIDATES[] = {DSV4_PART_WEIGHT_SCALE, DSV4_PART_SCALE, DSV4_PART_SCALE_INV};

static int candidate(dsv4_vt_family f, dsv4_part p)
{
    return p == DSV4_PART_WEIGHT_SCALE || p == DSV4_PART_SCALE ||
           (p == DSV4_PART_SCALE_INV && f != DSV4_VT_FAM_MODELOPT && f != DSV4_VT_FAM_MXFP4);
}

/* The scale part of a module: the part, DSV4_PART_COUNT when none, -1 when two. */
static int scale_part(const dsv4_amod *m, dsv4_vt_family f)
{
    int found = DSV4_PART_COUNT;
    for (size_t i = 0; i < sizeof CANDIDATES / sizeof *CANDIDATES; i++)
        if (candidate(f, CANDIDATES[i]) && m->part[CANDIDATES[i]]) {
            if (found != DSV4_PART_COUNT)
                return -1;
            found = (int)CANDIDATES[i];
        }
    return found;
}

void dsv4_vt_conv_init(const dsv4_vctx *v, dsv4_vt_conv *c)
{
    memset(c, 0, sizeof *c);
    const char *qm = v->qc ? json_string_value(json_object_get(v->qc, "quant_method")) : NULL;
    for (size_t i = 0; i < v->art.st.n; i++) {
        dsv4_vt_family f = dsv4_vt_family_of(&v->art.st.m[i]);
        int p = scale_part(&v->art.st.m[i], f);
        if (f != DSV4_VT_FAM_NONE && p >= 0 && p < DSV4_PART_COUNT)
            c->count[f][p]++;
    }
    for (int f = 0; f < DSV4_VT_FAM_COUNT; f++)
        c->want[f] = DSV4_PART_COUNT;
    /* compressed-tensors parts always carry .weight_scale. */
    c->want[DSV4_VT_FAM_INT4] = c->want[DSV4_VT_FAM_NVFP4] = DSV4_PART_WEIGHT_SCALE;
    if (qm && !strcmp(qm, "compressed-tensors")) {
        c->label = "compressed-tensors";
        c->want[DSV4_VT_FAM_FP8] = DSV4_PART_WEIGHT_SCALE; /* ModelOpt / MXFP4 have no such scheme there */
    } else if (qm && !strcmp(qm, "fp8")) {
        c->label = "fp8 (DeepSeek native)";
        c->want[DSV4_VT_FAM_FP8] = c->want[DSV4_VT_FAM_MODELOPT] = c->want[DSV4_VT_FAM_MXFP4] = DSV4_PART_SCALE;
    } else if (qm && !strcmp(qm, "modelopt")) {
        c->label = "modelopt";
        c->want[DSV4_VT_FAM_FP8] = c->want[DSV4_VT_FAM_MODELOPT] = DSV4_PART_WEIGHT_SCALE;
    } else {
        c->label = "none (each family's majority)";
        static const dsv4_vt_family maj[] = {DSV4_VT_FAM_FP8, DSV4_VT_FAM_MODELOPT, DSV4_VT_FAM_MXFP4};
        for (size_t k = 0; k < sizeof maj / sizeof *maj; k++) {
            size_t best = 0, ties = 0;
            for (int p = 0; p < DSV4_PART_COUNT; p++) {
                size_t n = c->count[maj[k]][p];
                if (n && n > best) {
                    best = n;
                    ties = 0;
                    c->want[maj[k]] = (dsv4_part)p;
                } else if (n && n == best)
                    ties++;
            }
            if (ties)
                c->want[maj[k]] = DSV4_PART_COUNT;
        }
    }
}

int dsv4_vt_scale_of(const dsv4_vt_conv *c, const dsv4_amod *m, dsv4_vt_scale *s)
{
    memset(s, 0, sizeof *s);
    s->fam = dsv4_vt_family_of(m);
    if (s->fam == DSV4_VT_FAM_NONE)
        return 0;
    int p = scale_part(m, s->fam);
    if (p < 0)
        return -1;
    if (p == DSV4_PART_COUNT)
        return 0;
    s->part = (dsv4_part)p;
    s->want = c->want[s->fam];
    s->t = m->part[p];
    snprintf(s->name, sizeof s->name, "%s", m->part_name[p]);
    dsv4_part fin = s->want == DSV4_PART_COUNT ? s->part : s->want;
    snprintf(s->final, sizeof s->final, "%s%s", m->module, dsv4_part_suffix(fin));
    return 1;
}

uint32_t dsv4_vt_scale_dtypes(dsv4_vt_family fam, dsv4_part part, dsv4_dtype *prefer, dsv4_dtype *fallback)
{
    *fallback = DSV4_DTYPE_INVALID;
    if (part == DSV4_PART_GLOBAL || part == DSV4_PART_INPUT_GLOBAL || part == DSV4_PART_SCALE_2 ||
        part == DSV4_PART_INPUT_SCALE) {
        *prefer = DSV4_F32;
        return BIT(DSV4_F32);
    }
    switch (fam) {
    case DSV4_VT_FAM_FP8:
        if (part == DSV4_PART_SCALE) { /* DeepSeek's native block scale */
            *prefer = DSV4_F8_E8M0;
            *fallback = DSV4_F32;
            return BIT(DSV4_F8_E8M0) | BIT(DSV4_F32);
        }
        if (part == DSV4_PART_SCALE_INV) {
            *prefer = DSV4_F32;
            return BIT(DSV4_F32) | BIT(DSV4_BF16) | BIT(DSV4_F8_E8M0);
        }
        *prefer = DSV4_BF16; /* compressed-tensors FP8 block: what dsv4-quant writes */
        *fallback = DSV4_F32;
        return BIT(DSV4_BF16) | BIT(DSV4_F32);
    case DSV4_VT_FAM_INT4:
        *prefer = DSV4_BF16;
        *fallback = DSV4_F32;
        return BIT(DSV4_BF16) | BIT(DSV4_F16) | BIT(DSV4_F32);
    case DSV4_VT_FAM_NVFP4:
    case DSV4_VT_FAM_MODELOPT:
        *prefer = DSV4_F8_E4M3; /* an F32 group scale is no NVFP4 layout: no fallback */
        return BIT(DSV4_F8_E4M3);
    case DSV4_VT_FAM_MXFP4:
        *prefer = DSV4_F8_E8M0;
        return BIT(DSV4_F8_E8M0);
    default:
        *prefer = DSV4_DTYPE_INVALID;
        return 0;
    }
}

/* Value of element i as float, 1 when representable as float (F64 rounded is not). */
static int elem(const dsv4_tensor *t, uint64_t i, float *out)
{
    if (t->dtype == DSV4_F64) {
        double d;
        memcpy(&d, t->data + i * 8, 8);
        *out = (float)d;
        return (double)*out == d || (isnan(d) && isnan(*out));
    }
    *out = dsv4_decode_elem(t->dtype, t->data, i);
    return 1;
}

int dsv4_vt_cast_exact(const dsv4_tensor *t, dsv4_dtype to)
{
    if (!t->data || !dsv4_dtype_is_float(t->dtype) || !dsv4_dtype_is_float(to) || to == DSV4_F64)
        return 0;
    uint64_t n = dsv4_tensor_numel(t);
    for (uint64_t i = 0; i < n; i++) {
        float x, back;
        uint8_t buf[8];
        if (!elem(t, i, &x) || isnan(x))
            return 0;
        if (to == DSV4_F8_E8M0)
            buf[0] = dsv4_f32_to_e8m0(x);
        else if (dsv4_encode_row(to, &x, buf, 1, DSV4_FP_CAST))
            return 0;
        back = dsv4_decode_elem(to, buf, 0);
        if (back != x || signbit(back) != signbit(x))
            return 0;
    }
    return 1;
}

const char *dsv4_vt_dtypes_str(uint32_t mask, char *buf, size_t cap)
{
    size_t len = 0;
    int n = 0, total = 0;
    buf[0] = 0;
    for (int d = 0; d < DSV4_DTYPE_COUNT; d++)
        total += !!(mask & BIT(d));
    for (int d = 0; d < DSV4_DTYPE_COUNT && len + 1 < cap; d++)
        if (mask & BIT(d)) {
            n++;
            int r = snprintf(buf + len, cap - len, "%s%s", n == 1 ? "" : n == total ? " or " : ", ",
                             dsv4_dtype_name((dsv4_dtype)d));
            len = r < 0 ? cap : len + (size_t)r;
        }
    return buf;
}
