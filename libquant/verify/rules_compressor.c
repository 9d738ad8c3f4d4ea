/* Rule: the linear layers vLLM always builds unquantized (recipe/modules.h DSV4_MOD_ULINEAR:
 * compressor and indexer-compressor wkv / wgate, indexer.weights_proj, ffn.gate, head) are stored
 * plain BF16 or F32 with no quantization part. vLLM constructs them with quant_config=None, so a
 * scale beside them has no parameter to load into: KeyError
 * '...compressor.fused_wkv_wgate.weight_scale' (failure mode 15, vLLM #43512). The release stores
 * them BF16; quantizing them at all (projects A and D) created the problem. FP8 ones are repaired
 * by dequantizing in place; INT4 / NVFP4 values are not the release's, so those get no repair.
 * The config side (targets / ignore) is rules_targets.c's. */
#include <stdio.h>
#include <string.h>

#include "recipe/modules.h"
#include "verify/vrules_util.h"

/* ".weight F8_E4M3 [128, 256] + .weight_scale BF16 [1, 2]": the data part first. */
static char *parts_str(const dsv4_amod *m, char *buf, size_t cap)
{
    static const dsv4_part order[DSV4_PART_COUNT] = {
        DSV4_PART_WEIGHT, DSV4_PART_PACKED,       DSV4_PART_SCALE,   DSV4_PART_WEIGHT_SCALE,
        DSV4_PART_SCALE_INV, DSV4_PART_SHAPE,     DSV4_PART_GLOBAL,  DSV4_PART_INPUT_GLOBAL,
        DSV4_PART_SCALE_2, DSV4_PART_INPUT_SCALE, DSV4_PART_ZERO_POINT, DSV4_PART_G_IDX};
    size_t off = 0;
    buf[0] = 0;
    for (int k = 0; k < DSV4_PART_COUNT && off < cap; k++) {
        dsv4_part p = order[k];
        if (!m->part[p])
            continue;
        char d[128];
        int len = snprintf(buf + off, cap - off, "%s%s %s", off ? " + " : "", dsv4_part_suffix(p),
                         vr_desc(m->part[p], d, sizeof d));
        off += len > 0 ? (size_t)len : 0;
    }
    return buf;
}

static int block_scale(const dsv4_tensor *s, int64_t rows, int64_t cols)
{
    return s && s->ndim == 2 && s->shape[0] == (rows + 127) / 128 && s->shape[1] == (cols + 127) / 128;
}

/* Adds the in-place dequantization of an FP8 / MXFP4 module; 0, or -1 with the reason. */
static int dequantize(dsv4_vctx *v, const dsv4_amod *m, char *why, size_t cap)
{
    const dsv4_tensor *w = m->part[DSV4_PART_WEIGHT], *s = NULL;
    dsv4_produce how = DSV4_PRODUCE_BF16;
    switch (m->form) {
    case DSV4_QF_RELEASE_FP8:
    case DSV4_QF_RELEASE_FP4:
        s = m->part[DSV4_PART_SCALE];
        break;
    case DSV4_QF_CT_FP8:
    case DSV4_QF_FP8_SCALE_INV:
        s = m->part[DSV4_PART_WEIGHT_SCALE] ? m->part[DSV4_PART_WEIGHT_SCALE] : m->part[DSV4_PART_SCALE_INV];
        if (!block_scale(s, m->rows, m->cols)) {
            snprintf(why, cap, "no repair: its scale is not per 128x128 block");
            return -1;
        }
        how = s->dtype == DSV4_F8_E8M0 ? DSV4_PRODUCE_BF16 : DSV4_PRODUCE_CT_DEQUANT;
        break;
    case DSV4_QF_CT_INT4:
    case DSV4_QF_CT_NVFP4:
    case DSV4_QF_MODELOPT_NVFP4:
        snprintf(why, cap, "no repair: %s values are not the release's BF16 weights (convert it again from the source)",
                 dsv4_qform_name(m->form));
        return -1;
    case DSV4_QF_BROKEN:
        snprintf(why, cap, "no repair: %s", m->why);
        return -1;
    default:
        snprintf(why, cap, "no repair: a %s weight is not rounded to BF16 here (values would change)",
                 w ? dsv4_dtype_name(w->dtype) : "no");
        return -1;
    }
    vr_out out;
    snprintf(out.name, sizeof out.name, "%s.weight", m->module);
    out.dtype = DSV4_BF16;
    out.ndim = 2;
    out.shape[0] = m->rows;
    out.shape[1] = m->cols;
    out.how = how;
    out.from = w;
    out.from_scale = s;
    return vr_replace(v, m, &out, 1, NULL, "dequantize to BF16 and drop the quantization parts (vLLM builds it unquantized)");
}

static void run(dsv4_vctx *v, const dsv4_rule *self)
{
    for (size_t i = 0; i < v->art.st.n; i++) {
        const dsv4_amod *m = &v->art.st.m[i];
        if (!m->is_module || dsv4_module_kind(m->module) != DSV4_MOD_ULINEAR)
            continue;
        const dsv4_tensor *w = m->part[DSV4_PART_WEIGHT];
        if (m->form == DSV4_QF_PLAIN && w && (w->dtype == DSV4_BF16 || w->dtype == DSV4_F32))
            continue;
        char parts[600], why[400] = "", note[420] = "";
        if (dequantize(v, m, why, sizeof why))
            snprintf(note, sizeof note, "; %s", why);
        if (m->form == DSV4_QF_PLAIN) {
            dsv4_vctx_fail(v, "%s: stored %s, expected a BF16 (or F32) .weight%s", m->module,
                           parts_str(m, parts, sizeof parts), note);
            continue;
        }
        dsv4_vctx_fail(v, "%s: stored %s (%s), but vLLM builds this layer unquantized (quant_config=None) and has no "
                       "parameter for a quantization part: KeyError ...weight_scale at load (failure mode 15)%s",
                       m->module, dsv4_qform_name(m->form), parts_str(m, parts, sizeof parts), note);
    }
}

static const dsv4_rule UNQUANTIZED = {
    "compressor-unquantized", "layers vLLM builds unquantized are stored plain BF16/F32",
    "Compressor and indexer-compressor wkv / wgate, indexer.weights_proj, ffn.gate and head are a plain BF16 or "
    "F32 .weight with no quantization part (failure mode 15).",
    DSV4_SEV_ERROR, 0,
    "dequantize FP8 (release .scale, weight_scale or weight_scale_inv per 128x128 block) to BF16 and drop the "
    "scale parts; INT4 / NVFP4 ones have no repair",
    run};

const dsv4_rule *const dsv4_rules_compressor[] = {&UNQUANTIZED, NULL};
