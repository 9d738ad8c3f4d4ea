/* The module view of an artifact (astore.h): split names into module + part, group the parts of
 * each module, and recognize the storage form with its logical shape. */
#include "verify/astore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest suffixes first, so `.weight_scale_inv` is not taken for `.weight_scale`. */
static const struct {
    const char *suffix;
    dsv4_part part;
} SUFFIXES[] = {
    {".weight_global_scale", DSV4_PART_GLOBAL}, {".input_global_scale", DSV4_PART_INPUT_GLOBAL},
    {".weight_zero_point", DSV4_PART_ZERO_POINT}, {".weight_scale_inv", DSV4_PART_SCALE_INV},
    {".weight_scale_2", DSV4_PART_SCALE_2},     {".weight_packed", DSV4_PART_PACKED},
    {".weight_shape", DSV4_PART_SHAPE},         {".weight_scale", DSV4_PART_WEIGHT_SCALE},
    {".weight_g_idx", DSV4_PART_G_IDX},         {".input_scale", DSV4_PART_INPUT_SCALE},
    {".weight", DSV4_PART_WEIGHT},              {".scale", DSV4_PART_SCALE},
};
#define N_SUFFIXES (sizeof SUFFIXES / sizeof SUFFIXES[0])

int dsv4_part_of(const char *name, size_t *module_len)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < N_SUFFIXES; i++) {
        size_t k = strlen(SUFFIXES[i].suffix);
        if (n > k && !strcmp(name + n - k, SUFFIXES[i].suffix)) {
            *module_len = n - k;
            return (int)SUFFIXES[i].part;
        }
    }
    *module_len = n;
    return -1;
}

const char *dsv4_part_suffix(dsv4_part p)
{
    for (size_t i = 0; i < N_SUFFIXES; i++)
        if (SUFFIXES[i].part == p)
            return SUFFIXES[i].suffix;
    return "?";
}

const char *dsv4_qform_name(dsv4_qform f)
{
    static const char *const names[DSV4_QF_COUNT] = {
        "plain", "release_fp8", "release_fp4", "fp8_scale_inv", "ct_fp8_block",
        "ct_int4", "ct_nvfp4", "modelopt_nvfp4", "broken",
    };
    return (unsigned)f < DSV4_QF_COUNT ? names[f] : "?";
}

int dsv4_qform_is_quantized(dsv4_qform f)
{
    return f != DSV4_QF_PLAIN && f != DSV4_QF_BROKEN;
}

static int cmp_named(const void *a, const void *b)
{
    const dsv4_named_tensor *x = a, *y = b;
    size_t lx, ly;
    dsv4_part_of(x->name, &lx);
    dsv4_part_of(y->name, &ly);
    size_t l = lx < ly ? lx : ly;
    int c = memcmp(x->name, y->name, l);
    if (c)
        return c;
    return lx < ly ? -1 : lx > ly;
}

static int64_t dim(const dsv4_tensor *t, int i)
{
    return t && i < t->ndim ? t->shape[i] : -1;
}

static int is_float(dsv4_dtype d)
{
    return d == DSV4_BF16 || d == DSV4_F16 || d == DSV4_F32;
}

static int broken(dsv4_amod *m, const char *fmt, const char *a)
{
    m->form = DSV4_QF_BROKEN;
    snprintf(m->why, sizeof m->why, fmt, a);
    return 0;
}

/* Checks a scale's shape against [ceil(r/128), ceil(c/128)] (block) or per-group [r, c/g]. */
static int block_scale_ok(const dsv4_tensor *s, int64_t r, int64_t c)
{
    return s->ndim == 2 && s->shape[0] == (r + 127) / 128 && s->shape[1] == (c + 127) / 128;
}

static int scale_is_f8e8m0(const dsv4_tensor *s)
{
    return s->dtype == DSV4_F8_E8M0;
}

/* Parts other than these make the form broken. */
static int only_parts(const dsv4_amod *m, unsigned allowed)
{
    for (int p = 0; p < DSV4_PART_COUNT; p++)
        if (m->part[p] && !(allowed & (1u << p)))
            return 0;
    return 1;
}
#define B(p) (1u << (p))

static void classify(dsv4_amod *m)
{
    const dsv4_tensor *w = m->part[DSV4_PART_WEIGHT], *sc = m->part[DSV4_PART_SCALE],
                      *ws = m->part[DSV4_PART_WEIGHT_SCALE], *inv = m->part[DSV4_PART_SCALE_INV],
                      *pk = m->part[DSV4_PART_PACKED];
    m->rows = m->cols = -1;
    m->group_size = 0;
    m->form = DSV4_QF_PLAIN;
    if (!m->is_module)
        return;
    if (w && is_float(w->dtype)) {
        m->rows = dim(w, 0);
        m->cols = w->ndim > 1 ? dim(w, 1) : 1;
        if (!only_parts(m, B(DSV4_PART_WEIGHT)))
            broken(m, "%s weight with quantization parts beside it", dsv4_dtype_name(w->dtype));
        return;
    }
    if (w && w->dtype == DSV4_F8_E4M3) {
        m->rows = dim(w, 0);
        m->cols = dim(w, 1);
        if (w->ndim != 2)
            return (void)broken(m, "F8_E4M3 weight of %d dimensions (expected 2)", w->ndim == 1 ? "1" : "not 2");
        if (sc && !ws && !inv && only_parts(m, B(DSV4_PART_WEIGHT) | B(DSV4_PART_SCALE))) {
            m->form = DSV4_QF_RELEASE_FP8;
            if (!scale_is_f8e8m0(sc) || !block_scale_ok(sc, m->rows, m->cols))
                broken(m, "release FP8 weight whose .scale is not F8_E8M0 [ceil(rows/128), ceil(cols/128)]%s", "");
            return;
        }
        const dsv4_tensor *s = ws ? ws : inv;
        if (s && !(ws && inv) && !sc &&
            only_parts(m, B(DSV4_PART_WEIGHT) | B(DSV4_PART_WEIGHT_SCALE) | B(DSV4_PART_SCALE_INV) |
                              B(DSV4_PART_INPUT_SCALE))) {
            m->form = ws ? DSV4_QF_CT_FP8 : DSV4_QF_FP8_SCALE_INV;
            int channel = s->ndim == 2 && s->shape[0] == m->rows && s->shape[1] == 1;
            int tensor = s->ndim == 0 || (s->ndim == 1 && s->shape[0] == 1);
            if (!block_scale_ok(s, m->rows, m->cols) && !channel && !tensor)
                broken(m, "FP8 weight whose scale is neither per 128x128 block, per row nor per tensor%s", "");
            return;
        }
        return (void)broken(m, "F8_E4M3 weight without exactly one scale (.scale, .weight_scale or "
                               ".weight_scale_inv)%s", "");
    }
    if (w && w->dtype == DSV4_I8) {
        m->rows = dim(w, 0);
        m->cols = dim(w, 1) * 2;
        m->group_size = 32;
        if (sc && only_parts(m, B(DSV4_PART_WEIGHT) | B(DSV4_PART_SCALE)) && w->ndim == 2 &&
            scale_is_f8e8m0(sc) && sc->ndim == 2 && sc->shape[0] == m->rows && sc->shape[1] * 32 == m->cols) {
            m->form = DSV4_QF_RELEASE_FP4;
            return;
        }
        return (void)broken(m, "I8 (FP4) weight without an F8_E8M0 .scale [rows, cols/32]%s", "");
    }
    if (w && w->dtype == DSV4_U8) {
        const dsv4_tensor *s = ws ? ws : sc;
        m->rows = dim(w, 0);
        m->cols = dim(w, 1) * 2;
        m->group_size = 16;
        if (s && !(ws && sc) && m->part[DSV4_PART_SCALE_2] && s->dtype == DSV4_F8_E4M3 &&
            only_parts(m, B(DSV4_PART_WEIGHT) | B(DSV4_PART_WEIGHT_SCALE) | B(DSV4_PART_SCALE) |
                              B(DSV4_PART_SCALE_2) | B(DSV4_PART_INPUT_SCALE))) {
            m->form = DSV4_QF_MODELOPT_NVFP4;
            return;
        }
        return (void)broken(m, "U8 weight without the ModelOpt NVFP4 parts (F8_E4M3 scale and "
                               ".weight_scale_2)%s", "");
    }
    if (w)
        return (void)broken(m, "weight of dtype %s, which no storage form uses", dsv4_dtype_name(w->dtype));
    if (pk && pk->dtype == DSV4_I32) {
        const dsv4_tensor *shp = m->part[DSV4_PART_SHAPE];
        m->rows = dim(pk, 0);
        m->cols = dim(pk, 1) * 8;
        if (shp && shp->dtype == DSV4_I64 && shp->ndim == 1 && shp->shape[0] == 2 && shp->data) {
            int64_t v[2];
            memcpy(v, shp->data, sizeof v);
            m->rows = v[0];
            m->cols = v[1];
        }
        if (!ws || !shp || !only_parts(m, B(DSV4_PART_PACKED) | B(DSV4_PART_WEIGHT_SCALE) | B(DSV4_PART_SHAPE) |
                                              B(DSV4_PART_ZERO_POINT) | B(DSV4_PART_G_IDX)))
            return (void)broken(m, "I32 weight_packed without weight_scale and weight_shape%s", "");
        if (pk->ndim != 2 || pk->shape[0] != m->rows || pk->shape[1] != (m->cols + 7) / 8 || ws->ndim != 2 ||
            ws->shape[0] != m->rows || ws->shape[1] <= 0 || m->cols % ws->shape[1])
            return (void)broken(m, "INT4 weight_packed / weight_scale shapes do not fit weight_shape%s", "");
        m->group_size = (int)(m->cols / ws->shape[1]);
        m->form = DSV4_QF_CT_INT4;
        return;
    }
    if (pk && pk->dtype == DSV4_U8) {
        m->rows = dim(pk, 0);
        m->cols = dim(pk, 1) * 2;
        m->group_size = 16;
        if (!ws || !m->part[DSV4_PART_GLOBAL] ||
            !only_parts(m, B(DSV4_PART_PACKED) | B(DSV4_PART_WEIGHT_SCALE) | B(DSV4_PART_GLOBAL) |
                               B(DSV4_PART_INPUT_GLOBAL)))
            return (void)broken(m, "U8 weight_packed without F8_E4M3 weight_scale and weight_global_scale%s", "");
        if (ws->dtype != DSV4_F8_E4M3 || ws->ndim != 2 || ws->shape[0] != m->rows || ws->shape[1] * 16 != m->cols)
            return (void)broken(m, "NVFP4 weight_scale is not F8_E4M3 [rows, cols/16]%s", "");
        m->form = DSV4_QF_CT_NVFP4;
        return;
    }
    if (pk)
        return (void)broken(m, "weight_packed of dtype %s (expected I32 for INT4 or U8 for NVFP4)",
                            dsv4_dtype_name(pk->dtype));
    broken(m, "quantization parts without a weight or weight_packed%s", "");
}

int dsv4_astore_build(const dsv4_named_tensor *t, size_t n, dsv4_astore *s, dsv4_err *e)
{
    memset(s, 0, sizeof *s);
    dsv4_named_tensor *v = malloc((n ? n : 1) * sizeof *v);
    s->m = calloc(n ? n : 1, sizeof *s->m);
    if (!v || !s->m) {
        free(v);
        free(s->m);
        s->m = NULL;
        return dsv4_fail_rt(e, "out of memory");
    }
    memcpy(v, t, n * sizeof *v);
    qsort(v, n, sizeof *v, cmp_named);
    for (size_t i = 0; i < n;) {
        size_t ml;
        int p = dsv4_part_of(v[i].name, &ml);
        dsv4_amod *m = &s->m[s->n++];
        m->module = strndup(v[i].name, ml);
        if (!m->module) {
            dsv4_astore_free(s);
            free(v);
            return dsv4_fail_rt(e, "out of memory");
        }
        if (p < 0) {
            m->part[DSV4_PART_WEIGHT] = v[i].t;
            m->part_name[DSV4_PART_WEIGHT] = v[i].name;
            classify(m);
            i++;
            continue;
        }
        m->is_module = 1;
        size_t j = i;
        for (; j < n; j++) {
            size_t l2;
            int p2 = dsv4_part_of(v[j].name, &l2);
            if (p2 < 0 || l2 != ml || memcmp(v[j].name, v[i].name, ml))
                break;
            m->part[p2] = v[j].t;
            m->part_name[p2] = v[j].name;
        }
        classify(m);
        i = j;
    }
    free(v);
    return 0;
}

void dsv4_astore_free(dsv4_astore *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->m[i].module);
    free(s->m);
    memset(s, 0, sizeof *s);
}

static int cmp_mod_key(const void *k, const void *b)
{
    return strcmp(k, ((const dsv4_amod *)b)->module);
}

const dsv4_amod *dsv4_astore_find(const dsv4_astore *s, const char *module)
{
    return s->n ? bsearch(module, s->m, s->n, sizeof *s->m, cmp_mod_key) : NULL;
}
