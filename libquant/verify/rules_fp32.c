/* Rules: the release's FP32 set (seed_pipelines.md §1.3: hc_*, attn.attn_sink, ffn.gate.bias,
 * compressor.ape, indexer.compressor.ape; the inventory's is_fp32_set) is stored F32 with the
 * source's exact bytes. Failure modes 4 and 5: a calibration cast or save_pretrained downcasts the
 * set to BF16, or a restore script matched names before the renames and missed gate.bias and the
 * ape tensors. The repair always takes the source's bytes: an upcast of a BF16 copy is no repair,
 * the F32 values are gone. Missing tensors are reported by the rules that own them
 * (inventory-tensors, mtp-complete, router-gate-bias). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verify/vrules_util.h"

/* Adds the PUT that restores `it` from the source; 0, or -1 with the reason in why. */
static int restore(dsv4_vctx *v, const dsv4_inv_tensor *it, const char *what, char *why, size_t cap)
{
    vr_out out[2];
    int n;
    if (vr_from_source(v, it, VR_POLICY_COPY, out, &n, why, cap))
        return -1;
    if (out[0].dtype != DSV4_F32) {
        snprintf(why, cap, "the source's %s is %s, not F32", it->name, dsv4_dtype_name(out[0].dtype));
        return -1;
    }
    char line[160];
    snprintf(line, sizeof line, "restore the source's F32 bytes (%s)", what);
    return vr_replace(v, NULL, out, n, NULL, line);
}

static void run_dtype(dsv4_vctx *v, const dsv4_rule *self)
{
    if (!vr_need_inv(v))
        return;
    for (size_t i = 0; i < v->inv->n; i++) {
        const dsv4_inv_tensor *it = &v->inv->t[i];
        const dsv4_tensor *t = it->is_fp32_set ? vr_art(v, it->name) : NULL;
        if (!t || (t->dtype == DSV4_F32 && vr_shape_is(t, it)))
            continue;
        char want[128], got[128], why[600], what[200];
        snprintf(what, sizeof what, "was %s", vr_desc(t, got, sizeof got));
        char note[800] = "";
        if (restore(v, it, what, why, sizeof why))
            snprintf(note, sizeof note, "; %s%s", why,
                     !v->have_src && t->dtype != DSV4_F32 ? " (a BF16 upcast is no repair: the F32 values are lost)" : "");
        dsv4_vctx_fail(v, "%s: expected %s (release FP32 set), found %s%s", it->name, vr_inv_desc(it, want, sizeof want),
                       got, note);
    }
}

static void run_matches(dsv4_vctx *v, const dsv4_rule *self)
{
    if (!vr_need_inv(v))
        return;
    size_t n_compared = 0, n_other = 0;
    char other[300] = "";
    for (size_t i = 0; i < v->inv->n; i++) {
        const dsv4_inv_tensor *it = &v->inv->t[i];
        const dsv4_tensor *a = it->is_fp32_set && !it->is_mtp ? vr_art(v, it->name) : NULL;
        if (!a || a->dtype != DSV4_F32 || !vr_shape_is(a, it))
            continue; /* absent or not F32: fp32-dtype's; MTP: mtp-matches-source's */
        const dsv4_tensor *s = vr_src(v, it->name);
        if (!s || s->dtype != DSV4_F32 || !vr_shape_is(s, it)) {
            if (n_other++ == 0) {
                char d[128];
                snprintf(other, sizeof other, "%s: the source %s%s", it->name, s ? "stores it as " : "has no such tensor",
                         s ? vr_desc(s, d, sizeof d) : "");
            }
            continue;
        }
        n_compared++;
        uint64_t n = dsv4_tensor_numel(a);
        vr_cmp c;
        vr_compare(a->data, DSV4_F32, s->data, DSV4_F32, n, &c);
        if (!c.n_diff)
            continue;
        char d[128], diff[200], why[600];
        vr_cmp_str(&c, n, diff, sizeof diff);
        int fixed = restore(v, it, "values differed", why, sizeof why) == 0;
        dsv4_vctx_fail(v, "%s: %s differs from the source %s%s%s", it->name, vr_desc(a, d, sizeof d), diff,
                       fixed ? "" : "; ", fixed ? "" : why);
    }
    if (n_other)
        dsv4_vctx_skip(v, "%zu FP32-set tensors not comparable with the source (e.g. %s); %zu compared", n_other, other,
                       n_compared);
}

static const dsv4_rule FP32_DTYPE = {
    "fp32-dtype", "the release's FP32 set is stored F32",
    "Every tensor of the release's FP32 set (hc_* mixers, attn_sink, ffn.gate.bias, compressor.ape, "
    "indexer.compressor.ape) that the artifact holds is F32 with the release shape (failure modes 4 and 5).",
    DSV4_SEV_ERROR, 0, "restore the tensor's F32 bytes from the source (needs --source; an upcast is no repair)",
    run_dtype};
static const dsv4_rule FP32_MATCHES = {
    "fp32-matches-source", "the FP32 set is bit-equal to the source",
    "Every F32 tensor of the release's FP32 set in the artifact's main layers is bit-equal to the source's (the "
    "MTP block's are mtp-matches-source's).",
    DSV4_SEV_ERROR, 1, "restore the tensor's F32 bytes from the source", run_matches};

const dsv4_rule *const dsv4_rules_fp32[] = {&FP32_DTYPE, &FP32_MATCHES, NULL};
