/* Rules: scale tensors (seed_pipelines §3.8, §3.10, §3.11, §9 item 5; failure modes 16-19, 23).
 * Scale names follow the quantization method (compressed-tensors `.weight_scale`, DeepSeek's
 * native fp8 config `.scale`), scale dtypes fit their form, NVFP4 global scales are 0-d and shared
 * by the halves vLLM fuses, and one MoE layer stores its routed experts in one form. Conventions
 * and allowed dtypes are in vt_scales.h; the fused pairs in vt_fused.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/fp.h"
#include "verify/vrules_util.h"
#include "verify/vt_fused.h"
#include "verify/vt_scales.h"

#define BIT(d) ((uint32_t)1 << (d))

/* compressed-tensors has no scheme for ModelOpt / MXFP4 parts: config-quant-method reports them. */
static int out_of_scope(const dsv4_vctx *v, dsv4_vt_family f)
{
    return v->is_ct && (f == DSV4_VT_FAM_MODELOPT || f == DSV4_VT_FAM_MXFP4);
}

/* ---- scale-convention ---- */

static void run_convention(dsv4_vctx *v, const dsv4_rule *self)
{
    (void)self;
    dsv4_vt_conv c;
    dsv4_vt_conv_init(v, &c);
    int tie_reported[DSV4_VT_FAM_COUNT] = {0};
    for (size_t i = 0; i < v->art.st.n; i++) {
        const dsv4_amod *m = &v->art.st.m[i];
        dsv4_vt_scale s;
        int rc = dsv4_vt_scale_of(&c, m, &s);
        if (rc < 0) {
            dsv4_vctx_fail(v, "%s has more than one scale (%s%s%s): one of .scale, .weight_scale, .weight_scale_inv "
                           "expected", m->module, m->part_name[DSV4_PART_SCALE] ? ".scale " : "",
                           m->part_name[DSV4_PART_WEIGHT_SCALE] ? ".weight_scale " : "",
                           m->part_name[DSV4_PART_SCALE_INV] ? ".weight_scale_inv" : "");
            continue;
        }
        if (!rc || out_of_scope(v, s.fam))
            continue;
        if (s.want == DSV4_PART_COUNT) {
            size_t kinds = 0;
            for (int p = 0; p < DSV4_PART_COUNT; p++)
                kinds += c.count[s.fam][p] > 0;
            if (kinds > 1 && !tie_reported[s.fam]++)
                dsv4_vctx_fail(v, "%s modules are split evenly between scale names (.scale %zu, .weight_scale %zu, "
                               ".weight_scale_inv %zu) and config.json names no quantization method to decide",
                               dsv4_vt_family_name(s.fam), c.count[s.fam][DSV4_PART_SCALE],
                               c.count[s.fam][DSV4_PART_WEIGHT_SCALE], c.count[s.fam][DSV4_PART_SCALE_INV]);
            continue;
        }
        if (s.part == s.want)
            continue;
        dsv4_vctx_fail(v, "%s: %s scales under quantization method %s are named %s, found %s%s", s.name,
                       dsv4_vt_family_name(s.fam), c.label, dsv4_part_suffix(s.want), dsv4_part_suffix(s.part),
                       v->is_ct ? " (vLLM's compressed-tensors layers register weight_scale: KeyError "
                                  "'...fused_wqa_wkv.weight_scale_inv')"
                       : s.want == DSV4_PART_SCALE ? " (vLLM's native path maps .scale to weight_scale_inv)"
                                                   : "");
        char why[200];
        snprintf(why, sizeof why, "rename the scale to %s (header only)", dsv4_part_suffix(s.want));
        dsv4_vctx_fix_rename(v, s.name, s.final, why);
    }
}

/* ---- scale-dtype ---- */

/* Casts `t` (to be named `final`) to `prefer` when exact, else to `fallback` when exact; records
 * why not otherwise. Global scales of one element become 0-d (nvfp4-global-scalar's repair). */
static void cast_fix(dsv4_vctx *v, const dsv4_tensor *t, const char *final, dsv4_part part, dsv4_dtype prefer,
                     dsv4_dtype fallback)
{
    dsv4_dtype to = dsv4_vt_cast_exact(t, prefer) ? prefer
                    : fallback != DSV4_DTYPE_INVALID && dsv4_vt_cast_exact(t, fallback) ? fallback
                                                                                      : DSV4_DTYPE_INVALID;
    if (to == DSV4_DTYPE_INVALID) {
        dsv4_vctx_skip(v, "no automatic fix for %s: its values do not survive a cast to %s%s%s exactly", final,
                       dsv4_dtype_name(prefer), fallback != DSV4_DTYPE_INVALID ? " or " : "",
                       fallback != DSV4_DTYPE_INVALID ? dsv4_dtype_name(fallback) : "");
        return;
    }
    int scalar = (part == DSV4_PART_GLOBAL || part == DSV4_PART_INPUT_GLOBAL) && dsv4_tensor_numel(t) == 1;
    char why[160];
    snprintf(why, sizeof why, "cast %s to %s (every value exact)%s", dsv4_dtype_name(t->dtype), dsv4_dtype_name(to),
             scalar && t->ndim ? ", as a 0-d tensor" : "");
    vr_put(v, final, to, scalar ? 0 : t->ndim, t->shape, DSV4_PRODUCE_CAST, t, NULL, NULL, why);
}

static void check_extra(dsv4_vctx *v, const dsv4_amod *m, dsv4_vt_family fam)
{
    static const dsv4_part extra[] = {DSV4_PART_GLOBAL, DSV4_PART_INPUT_GLOBAL, DSV4_PART_SCALE_2,
                                      DSV4_PART_INPUT_SCALE};
    for (size_t k = 0; k < sizeof extra / sizeof *extra; k++) {
        const dsv4_tensor *t = m->part[extra[k]];
        dsv4_dtype prefer, fallback;
        if (!t || t->dtype == DSV4_F32)
            continue;
        dsv4_vt_scale_dtypes(fam, extra[k], &prefer, &fallback);
        dsv4_vctx_fail(v, "%s is %s, expected F32", m->part_name[extra[k]], dsv4_dtype_name(t->dtype));
        cast_fix(v, t, m->part_name[extra[k]], extra[k], prefer, fallback);
    }
}

static void run_dtype(dsv4_vctx *v, const dsv4_rule *self)
{
    (void)self;
    dsv4_vt_conv c;
    dsv4_vt_conv_init(v, &c);
    /* compressed-tensors FP8 weight_scale: BF16 or F32, one dtype across the artifact. */
    uint32_t ct_fp8 = 0;
    int all_bf16 = 1;
    for (size_t i = 0; i < v->art.st.n; i++) {
        dsv4_vt_scale s;
        if (dsv4_vt_scale_of(&c, &v->art.st.m[i], &s) == 1 && s.fam == DSV4_VT_FAM_FP8 &&
            (s.want == DSV4_PART_COUNT ? s.part : s.want) == DSV4_PART_WEIGHT_SCALE) {
            ct_fp8 |= BIT(s.t->dtype);
            all_bf16 &= dsv4_vt_cast_exact(s.t, DSV4_BF16);
        }
    }
    int ct_uniform = ct_fp8 == BIT(DSV4_BF16) || ct_fp8 == BIT(DSV4_F32) || !ct_fp8;
    dsv4_dtype ct_target = all_bf16 ? DSV4_BF16 : DSV4_F32;
    for (size_t i = 0; i < v->art.st.n; i++) {
        const dsv4_amod *m = &v->art.st.m[i];
        dsv4_vt_scale s;
        if (dsv4_vt_scale_of(&c, m, &s) != 1 || out_of_scope(v, s.fam))
            continue;
        dsv4_part fin = s.want == DSV4_PART_COUNT ? s.part : s.want;
        dsv4_dtype prefer, fallback, d = s.t->dtype;
        uint32_t ok = dsv4_vt_scale_dtypes(s.fam, fin, &prefer, &fallback);
        char want[96];
        if (s.fam == DSV4_VT_FAM_FP8 && fin == DSV4_PART_WEIGHT_SCALE && !ct_uniform) {
            if (d != ct_target) {
                dsv4_vctx_fail(v, "%s is %s; FP8 block weight_scale tensors must be BF16 or F32 and one dtype across "
                               "the artifact (found %s)", s.name, dsv4_dtype_name(d),
                               dsv4_vt_dtypes_str(ct_fp8, want, sizeof want));
                cast_fix(v, s.t, s.final, fin, ct_target, DSV4_F32);
            }
        } else if (!(ok & BIT(d))) {
            dsv4_vctx_fail(v, "%s is %s; %s %s must be %s", s.name, dsv4_dtype_name(d), dsv4_vt_family_name(s.fam),
                           dsv4_part_suffix(fin) + 1, dsv4_vt_dtypes_str(ok, want, sizeof want));
            cast_fix(v, s.t, s.final, fin, prefer, fallback);
        }
        check_extra(v, m, s.fam);
    }
}

/* ---- nvfp4-global-scalar ---- */

typedef struct named_op {
    const char *name; /* the op's own string: it stays where it is when the op list grows */
    size_t idx;
} named_op;

static int cmp_named_op(const void *a, const void *b)
{
    return strcmp(((const named_op *)a)->name, ((const named_op *)b)->name);
}

static void run_global_scalar(dsv4_vctx *v, const dsv4_rule *self)
{
    (void)self;
    static const dsv4_part parts[] = {DSV4_PART_GLOBAL, DSV4_PART_INPUT_GLOBAL};
    size_t seen = 0, n_put = 0;
    /* Tensors an earlier rule already writes (scale-dtype's cast writes a global 0-d): this rule
     * asks for the same PUT (the rewriter applies it once; a reshape would contradict it). */
    named_op *put = malloc((v->fixes.n ? v->fixes.n : 1) * sizeof *put);
    if (!put) {
        dsv4_vctx_fail(v, "out of memory");
        return;
    }
    for (size_t i = 0; i < v->fixes.n; i++)
        if (v->fixes.v[i].kind == DSV4_FIX_PUT)
            put[n_put++] = (named_op){v->fixes.v[i].name, i};
    qsort(put, n_put, sizeof *put, cmp_named_op);
    for (size_t i = 0; i < v->art.st.n; i++) {
        const dsv4_amod *m = &v->art.st.m[i];
        if (dsv4_vt_family_of(m) != DSV4_VT_FAM_NVFP4)
            continue;
        for (size_t k = 0; k < 2; k++) {
            const dsv4_tensor *t = m->part[parts[k]];
            named_op key = {m->part_name[parts[k]], 0}, *hit;
            char shape[64];
            if (!t || (seen++, t->ndim == 0))
                continue;
            dsv4_vctx_fail(v, "%s has shape %s, expected [] (vLLM copies it into a 0-d parameter: \"output with shape "
                           "[] doesn't match the broadcast shape [1]\", vLLM #43297)", key.name,
                           dsv4_shape_str(t, shape, sizeof shape));
            if (dsv4_tensor_numel(t) != 1)
                dsv4_vctx_skip(v, "no automatic fix for %s: more than one value", key.name);
            else if (n_put && (hit = bsearch(&key, put, n_put, sizeof *put, cmp_named_op))) {
                dsv4_fix_op same = v->fixes.v[hit->idx];
                if (same.ndim == 0)
                    dsv4_vctx_fix(v, &same);
            } else
                dsv4_vctx_fix_reshape(v, key.name, t->dtype, 0, NULL, "reshape to 0-d (same bytes, header only)");
        }
    }
    free(put);
    if (!seen)
        dsv4_vctx_skip(v, "no NVFP4 global scales");
}

/* ---- nvfp4-global-shared ---- */

static int same_values(const dsv4_tensor *a, const dsv4_tensor *b)
{
    uint64_t n = dsv4_tensor_numel(a);
    if (n != dsv4_tensor_numel(b) || !a->data || !b->data)
        return 0;
    for (uint64_t i = 0; i < n; i++)
        if (dsv4_decode_elem(a->dtype, a->data, i) != dsv4_decode_elem(b->dtype, b->data, i))
            return 0;
    return 1;
}

static void run_global_shared(dsv4_vctx *v, const dsv4_rule *self)
{
    (void)self;
    size_t pairs = 0;
    for (size_t i = 0; i < v->art.st.n; i++) {
        const dsv4_amod *a = &v->art.st.m[i], *b;
        dsv4_vt_family f = dsv4_vt_family_of(a);
        char other[DSV4_NAME_MAX], fused[DSV4_NAME_MAX + 64];
        int expert;
        if ((f != DSV4_VT_FAM_NVFP4 && f != DSV4_VT_FAM_MODELOPT) ||
            !dsv4_vt_fused_partner(a->module, other, sizeof other, fused, sizeof fused, &expert) ||
            !(b = dsv4_side_module(&v->art, other)) || dsv4_vt_family_of(b) != f)
            continue;
        dsv4_part p = f == DSV4_VT_FAM_NVFP4 ? DSV4_PART_GLOBAL : DSV4_PART_SCALE_2;
        const dsv4_tensor *ga = a->part[p], *gb = b->part[p];
        if (!ga || !gb || !dsv4_dtype_is_float(ga->dtype) || !dsv4_dtype_is_float(gb->dtype))
            continue;
        pairs++;
        if (same_values(ga, gb))
            continue;
        dsv4_vctx_fail(v, "%s = %g but %s = %g: vLLM fuses them into %s with one global scale (requantize the pair "
                       "with a shared one, the max of both amaxes)", a->part_name[p],
                       dsv4_decode_elem(ga->dtype, ga->data, 0), b->part_name[p],
                       dsv4_decode_elem(gb->dtype, gb->data, 0), fused);
    }
    if (!pairs)
        dsv4_vctx_skip(v, "no fused pair stored as NVFP4");
}

/* ---- expert-format-uniform ---- */

static void form_label(const dsv4_amod *m, char *buf, size_t cap)
{
    if (m->form == DSV4_QF_CT_INT4)
        snprintf(buf, cap, "%s g%d", dsv4_qform_name(m->form), m->group_size);
    else
        snprintf(buf, cap, "%s", dsv4_qform_name(m->form));
}

/* Length of "layers.N." / "mtp.N." of a routed expert module ("...ffn.experts.E.wK"), 0 otherwise. */
static size_t expert_block(const char *m)
{
    const char *p = !strncmp(m, "layers.", 7) ? m + 7 : !strncmp(m, "mtp.", 4) ? m + 4 : NULL;
    if (!p || *p < '0' || *p > '9')
        return 0;
    while (*p >= '0' && *p <= '9')
        p++;
    return !strncmp(p, ".ffn.experts.", 13) ? (size_t)(p + 1 - m) : 0;
}

#define MAX_FORMS 8

typedef struct block_forms {
    char block[40];
    size_t n;
    char label[MAX_FORMS][40];
    size_t count[MAX_FORMS];
    const char *first[MAX_FORMS];
} block_forms;

static void report_block(dsv4_vctx *v, const block_forms *b, const char *trunk)
{
    char list[600] = "";
    for (size_t k = 0; k < b->n; k++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s x %zu (first %s)", k ? ", " : "", b->label[k],
                 b->count[k], b->first[k]);
    if (b->n > 1)
        dsv4_vctx_fail(v, "%s routed experts mix storage forms: %s; vLLM builds one MoE method per layer", b->block,
                       list);
    else if (trunk && strcmp(b->label[0], "plain") && strcmp(b->label[0], trunk))
        dsv4_vctx_fail(v, "%s routed experts are %s but the trunk's are %s: vLLM routes the MTP MoE through the trunk's "
                       "method (0%% acceptance, mode 23)", b->block, list, trunk);
}

static void run_expert_format(dsv4_vctx *v, const dsv4_rule *self)
{
    (void)self;
    block_forms cur = {0}, *mtp = NULL;
    size_t n_mtp = 0, n_blocks = 0, trunk_n = 0;
    char trunk[40] = "";
    for (size_t i = 0; i <= v->art.st.n; i++) {
        const dsv4_amod *m = i < v->art.st.n ? &v->art.st.m[i] : NULL;
        size_t bl = m && m->is_module ? expert_block(m->module) : 0;
        if (m && !bl)
            continue;
        if (cur.n && (!m || strlen(cur.block) != bl - 1 || strncmp(cur.block, m->module, bl - 1))) {
            if (!strncmp(cur.block, "mtp.", 4)) { /* judged against the trunk at the end */
                block_forms *nm = realloc(mtp, (n_mtp + 1) * sizeof *nm);
                if (nm)
                    (mtp = nm)[n_mtp++] = cur;
            } else {
                report_block(v, &cur, NULL);
                if (cur.n == 1 && cur.count[0] > trunk_n && strcmp(cur.label[0], trunk)) {
                    snprintf(trunk, sizeof trunk, "%s", cur.label[0]);
                    trunk_n = cur.count[0];
                }
            }
            n_blocks++;
            memset(&cur, 0, sizeof cur);
        }
        if (!m)
            break;
        snprintf(cur.block, sizeof cur.block, "%.*s", (int)(bl - 1), m->module);
        char label[40];
        form_label(m, label, sizeof label);
        size_t k = 0;
        while (k < cur.n && strcmp(cur.label[k], label))
            k++;
        if (k == cur.n && cur.n < MAX_FORMS) {
            snprintf(cur.label[cur.n], sizeof cur.label[0], "%s", label);
            cur.first[cur.n++] = m->module;
        }
        if (k < cur.n)
            cur.count[k]++;
    }
    for (size_t k = 0; k < n_mtp; k++)
        report_block(v, &mtp[k], trunk[0] ? trunk : NULL);
    free(mtp);
    if (!n_blocks)
        dsv4_vctx_skip(v, "no routed experts");
}

static const dsv4_rule CONVENTION = {
    "scale-convention", "scale names follow the quantization method",
    "compressed-tensors artifacts name block / group scales .weight_scale (never .weight_scale_inv or .scale "
    "next to compressed-tensors parts); a native DeepSeek fp8 config (quant_method \"fp8\") names them .scale; "
    "without a config, one convention per scheme (mode 16).",
    DSV4_SEV_ERROR, 0, "rename the scales to the convention (header only)", run_convention};

static const dsv4_rule DTYPE = {
    "scale-dtype", "scale dtypes fit their form",
    "Release .scale F8_E8M0 (or F32); compressed-tensors FP8 block weight_scale BF16 or F32, one dtype across the "
    "artifact; INT4 weight_scale BF16, F16 or F32; NVFP4 weight_scale F8_E4M3 and global scales F32 (modes 17, "
    "18).",
    DSV4_SEV_ERROR, 0,
    "cast to the dtype dsv4-quant writes when every value survives exactly, otherwise to F32 (NVFP4 / MXFP4 "
    "group scales: no fallback)",
    run_dtype};

static const dsv4_rule GLOBAL_SCALAR = {
    "nvfp4-global-scalar", "NVFP4 global scales are 0-d",
    "weight_global_scale and input_global_scale are 0-d tensors (mode 19: shape [1] fails vLLM's copy_ into a "
    "scalar parameter).",
    DSV4_SEV_ERROR, 0, "reshape to [] (same bytes, header only)", run_global_scalar};

static const dsv4_rule GLOBAL_SHARED = {
    "nvfp4-global-shared", "fused NVFP4 halves share their global scale",
    "Each routed expert's w1 and w3, the shared experts' w1 and w3 (and any other pair vLLM fuses) stored as "
    "NVFP4 carry the identical weight_global_scale (ModelOpt: weight_scale_2): vLLM fuses them with one.",
    DSV4_SEV_ERROR, 0, NULL, run_global_shared};

static const dsv4_rule EXPERT_FORMAT = {
    "expert-format-uniform", "one routed-expert storage form per MoE layer",
    "Every MoE layer stores all its routed experts in one form, and a quantized MTP block's experts are in the "
    "trunk's form (mode 23: MXFP4 MTP experts under an NVFP4 trunk give 0% acceptance).",
    DSV4_SEV_ERROR, 0, NULL, run_expert_format};

const dsv4_rule *const dsv4_rules_scales[] = {&CONVENTION, &DTYPE, &GLOBAL_SCALAR, &GLOBAL_SHARED, &EXPERT_FORMAT,
                                              NULL};
