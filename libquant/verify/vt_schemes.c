/* Stored schemes of modules and the schemes config groups describe (vt_schemes.h). */
#include "verify/vt_schemes.h"

#include <stdio.h>
#include <string.h>

static dsv4_vt_scheme mk(dsv4_vt_kind k, dsv4_vt_strategy s, int g)
{
    return (dsv4_vt_scheme){k, s, g, 0};
}

/* Strategy of an FP8 scale of a [r, c] weight: 128x128 blocks, per row, or one value. */
static dsv4_vt_strategy fp8_strategy(const dsv4_tensor *s, int64_t r, int64_t c)
{
    if (!s)
        return DSV4_VT_ST_NONE;
    if (s->ndim == 2 && s->shape[0] == (r + 127) / 128 && s->shape[1] == (c + 127) / 128)
        return DSV4_VT_ST_BLOCK;
    if (s->ndim == 2 && s->shape[0] == r && s->shape[1] == 1)
        return DSV4_VT_ST_CHANNEL;
    if (s->ndim == 0 || (s->ndim == 1 && s->shape[0] == 1))
        return DSV4_VT_ST_TENSOR;
    return DSV4_VT_ST_NONE;
}

/* A module whose parts make no clean form (a scale under another name or dtype, which the scale
 * rules report and repair) is still judged by its weight: an F8_E4M3 weight with one scale is
 * FP8, I32 / U8 weight_packed with a weight_scale are INT4 / NVFP4. */
static dsv4_vt_scheme broken_by_parts(const dsv4_amod *m)
{
    const dsv4_tensor *w = m->part[DSV4_PART_WEIGHT], *pk = m->part[DSV4_PART_PACKED],
                      *ws = m->part[DSV4_PART_WEIGHT_SCALE], *sc = m->part[DSV4_PART_SCALE],
                      *inv = m->part[DSV4_PART_SCALE_INV];
    int n_scales = !!ws + !!sc + !!inv;
    if (w && !pk && w->dtype == DSV4_F8_E4M3 && w->ndim == 2 && n_scales == 1) {
        dsv4_vt_strategy st = fp8_strategy(ws ? ws : sc ? sc : inv, w->shape[0], w->shape[1]);
        if (st != DSV4_VT_ST_NONE)
            return mk(DSV4_VT_FP8, st, 0);
    }
    if (pk && !w && n_scales == 1 && pk->ndim == 2) {
        const dsv4_tensor *s = ws ? ws : sc ? sc : inv;
        if (pk->dtype == DSV4_U8 && s->ndim == 2 && s->shape[1] * 16 == pk->shape[1] * 2)
            return mk(DSV4_VT_NVFP4, DSV4_VT_ST_GROUP, 16);
        if (pk->dtype == DSV4_I32 && s->ndim == 2 && s->shape[1] > 0 && (pk->shape[1] * 8) % s->shape[1] == 0) {
            dsv4_vt_scheme r = mk(DSV4_VT_INT4, DSV4_VT_ST_GROUP, (int)(pk->shape[1] * 8 / s->shape[1]));
            r.one_per_row = s->shape[1] == 1;
            return r;
        }
    }
    return mk(DSV4_VT_UNKNOWN, DSV4_VT_ST_NONE, 0);
}

dsv4_vt_scheme dsv4_vt_stored(const dsv4_amod *m)
{
    switch (m->form) {
    case DSV4_QF_PLAIN:
        return mk(DSV4_VT_UNQUANT, DSV4_VT_ST_NONE, 0);
    case DSV4_QF_RELEASE_FP8:
    case DSV4_QF_FP8_SCALE_INV:
    case DSV4_QF_CT_FP8: {
        const dsv4_tensor *s = m->part[DSV4_PART_WEIGHT_SCALE] ? m->part[DSV4_PART_WEIGHT_SCALE]
                               : m->part[DSV4_PART_SCALE_INV] ? m->part[DSV4_PART_SCALE_INV]
                                                              : m->part[DSV4_PART_SCALE];
        dsv4_vt_strategy st = fp8_strategy(s, m->rows, m->cols);
        return mk(st == DSV4_VT_ST_NONE ? DSV4_VT_UNKNOWN : DSV4_VT_FP8, st, 0);
    }
    case DSV4_QF_CT_INT4: {
        dsv4_vt_scheme s = mk(DSV4_VT_INT4, DSV4_VT_ST_GROUP, m->group_size);
        const dsv4_tensor *ws = m->part[DSV4_PART_WEIGHT_SCALE];
        s.one_per_row = ws && ws->ndim == 2 && ws->shape[1] == 1;
        return s;
    }
    case DSV4_QF_CT_NVFP4:
    case DSV4_QF_MODELOPT_NVFP4:
        return mk(DSV4_VT_NVFP4, DSV4_VT_ST_GROUP, 16);
    case DSV4_QF_RELEASE_FP4:
        return mk(DSV4_VT_MXFP4, DSV4_VT_ST_GROUP, 32);
    case DSV4_QF_BROKEN:
        return broken_by_parts(m);
    default:
        return mk(DSV4_VT_UNKNOWN, DSV4_VT_ST_NONE, 0);
    }
}

static const char *str_of(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

dsv4_vt_scheme dsv4_vt_from_args(const json_t *w, char *why, size_t cap)
{
    dsv4_vt_scheme bad = mk(DSV4_VT_UNKNOWN, DSV4_VT_ST_NONE, 0);
    if (!json_is_object(w)) {
        snprintf(why, cap, "\"weights\" is not an object");
        return bad;
    }
    const json_t *nb = json_object_get(w, "num_bits"), *gs = json_object_get(w, "group_size"),
                 *bs = json_object_get(w, "block_structure");
    const char *type = str_of(w, "type"), *st = str_of(w, "strategy");
    long long bits = json_is_integer(nb) ? json_integer_value(nb) : -1;
    long long g = json_is_integer(gs) ? json_integer_value(gs) : 0;
    if (bits == 8 && !strcmp(type, "float")) {
        if (!strcmp(st, "block")) {
            if (json_array_size(bs) == 2 && json_integer_value(json_array_get(bs, 0)) == 128 &&
                json_integer_value(json_array_get(bs, 1)) == 128)
                return mk(DSV4_VT_FP8, DSV4_VT_ST_BLOCK, 0);
            snprintf(why, cap, "FP8 block strategy with a block_structure other than [128, 128]");
            return bad;
        }
        if (!strcmp(st, "channel"))
            return mk(DSV4_VT_FP8, DSV4_VT_ST_CHANNEL, 0);
        if (!strcmp(st, "tensor"))
            return mk(DSV4_VT_FP8, DSV4_VT_ST_TENSOR, 0);
    } else if (bits == 4 && !strcmp(type, "int")) {
        if (!strcmp(st, "group") && g > 0 && g <= 1 << 20)
            return mk(DSV4_VT_INT4, DSV4_VT_ST_GROUP, (int)g);
        if (!strcmp(st, "channel"))
            return mk(DSV4_VT_INT4, DSV4_VT_ST_CHANNEL, 0);
    } else if (bits == 4 && !strcmp(type, "float")) {
        if (!strcmp(st, "tensor_group") && g == 16)
            return mk(DSV4_VT_NVFP4, DSV4_VT_ST_GROUP, 16);
        if (!strcmp(st, "group") && g == 32)
            return mk(DSV4_VT_MXFP4, DSV4_VT_ST_GROUP, 32);
    }
    snprintf(why, cap, "num_bits %lld, type \"%s\", strategy \"%s\", group_size %lld describe no storage form this "
             "checker knows (FP8 block/channel/tensor, INT4 group/channel, NVFP4 tensor_group 16, MXFP4 group 32)",
             bits, type, st, g);
    return bad;
}

int dsv4_vt_fits(dsv4_vt_scheme s, dsv4_vt_scheme a)
{
    if (s.kind == DSV4_VT_UNKNOWN || a.kind == DSV4_VT_UNKNOWN || s.kind != a.kind)
        return 0;
    if (s.kind == DSV4_VT_FP8)
        return s.strategy == a.strategy;
    if (s.kind == DSV4_VT_INT4)
        return a.strategy == DSV4_VT_ST_CHANNEL ? s.one_per_row : s.group_size == a.group_size;
    return 1;
}

int dsv4_vt_same(dsv4_vt_scheme a, dsv4_vt_scheme b)
{
    return a.kind == b.kind && a.strategy == b.strategy && a.group_size == b.group_size;
}

const char *dsv4_vt_scheme_str(dsv4_vt_scheme s, char *buf, size_t cap)
{
    static const char *const st[] = {"", "block 128x128", "per channel", "per tensor", "group"};
    switch (s.kind) {
    case DSV4_VT_UNQUANT:
        snprintf(buf, cap, "unquantized");
        break;
    case DSV4_VT_FP8:
        snprintf(buf, cap, "FP8 %s", st[s.strategy]);
        break;
    case DSV4_VT_INT4:
        if (s.strategy == DSV4_VT_ST_GROUP)
            snprintf(buf, cap, "INT4 group %d", s.group_size);
        else
            snprintf(buf, cap, "INT4 per channel");
        break;
    case DSV4_VT_NVFP4:
        snprintf(buf, cap, "NVFP4 (groups of 16)");
        break;
    case DSV4_VT_MXFP4:
        snprintf(buf, cap, "MXFP4 (groups of 32)");
        break;
    default:
        snprintf(buf, cap, "unrecognized");
        break;
    }
    return buf;
}
