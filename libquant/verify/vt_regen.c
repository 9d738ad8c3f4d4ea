/* Regenerating a quantization_config's targets and ignore from the stored schemes (vt_regen.h). */
#include "verify/vt_regen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact/ct_config.h"

static dsv4_scheme recipe_scheme(dsv4_vt_kind k)
{
    /* Only whether a group quantizes matters to the patterns; the group's own args are kept. */
    return k == DSV4_VT_INT4 ? DSV4_SCHEME_W4A16 : k == DSV4_VT_FP8 ? DSV4_SCHEME_FP8_BLOCK : DSV4_SCHEME_NVFP4;
}

/* Each linear's config group (-1 unquantized); 0, or 1 with why when no regeneration is possible. */
static int assign(const dsv4_vt_view *w, int *grp, int *quant_mtp, char *why, size_t cap)
{
    uint64_t used = 0;
    char s[64], b[200];
    *quant_mtp = 0;
    for (size_t i = 0; i < w->n_lin; i++) {
        const dsv4_vt_linear *l = &w->lin[i];
        grp[i] = -1;
        if (!l->m) {
            snprintf(why, cap, "%s is missing, so its scheme is unknown", l->module);
            return 1;
        }
        if (l->stored.kind == DSV4_VT_UNKNOWN) {
            snprintf(why, cap, "%s is stored in no recognized form (%s)", l->module, l->m->why);
            return 1;
        }
        if (l->stored.kind == DSV4_VT_UNQUANT)
            continue;
        if (dsv4_vt_popcount(l->fit) != 1) {
            snprintf(why, cap, "%s is stored as %s, which %s", l->module, dsv4_vt_scheme_str(l->stored, s, sizeof s),
                     l->fit ? "the args of several groups fit" : "no config group's weights args describe");
            if (l->fit)
                snprintf(why + strlen(why), cap - strlen(why), " (%s)", dsv4_vt_mask_str(w, l->fit, b, sizeof b));
            return 1;
        }
        grp[i] = dsv4_vt_first_bit(l->fit);
        used |= l->fit;
        *quant_mtp |= l->is_mtp;
        if (!strcmp(l->module, "head")) {
            snprintf(why, cap, "head is stored quantized; vLLM builds lm_head unquantized");
            return 1;
        }
    }
    for (size_t k = 0; k < w->n_groups; k++) {
        if (strchr(w->g[k].key, '.')) {
            snprintf(why, cap, "config group \"%s\" has a '.' in its name", w->g[k].key);
            return 1;
        }
        if (!(used & ((uint64_t)1 << k))) {
            snprintf(why, cap, "config group %s describes no stored module (%s)", w->g[k].key,
                     w->g[k].args.kind == DSV4_VT_UNKNOWN ? w->g[k].args_why
                                                          : dsv4_vt_scheme_str(w->g[k].args, s, sizeof s));
            return 1;
        }
    }
    return 0;
}

json_t *dsv4_vt_regen(const dsv4_vctx *v, const dsv4_vt_view *w, char *why, size_t cap)
{
    int *grp = calloc(w->n_lin ? w->n_lin : 1, sizeof *grp), quant_mtp = 0;
    dsv4_ct_module *mods = calloc(w->n_lin ? w->n_lin : 1, sizeof *mods);
    dsv4_recipe_group *rg = calloc(w->n_groups ? w->n_groups : 1, sizeof *rg);
    json_t *built = NULL, *out = NULL;
    int rank[DSV4_VT_MAX_GROUPS], next = 0;
    if (!grp || !mods || !rg) {
        snprintf(why, cap, "out of memory");
        goto done;
    }
    if (assign(w, grp, &quant_mtp, why, cap))
        goto done;
    dsv4_recipe r = {.n_groups = w->n_groups, .groups = rg, .mtp = quant_mtp ? DSV4_MTP_QUANTIZE : DSV4_MTP_BF16};
    for (size_t k = 0; k < w->n_groups; k++) {
        snprintf(rg[k].name, sizeof rg[k].name, "%s", w->g[k].key);
        rg[k].scheme = recipe_scheme(w->g[k].args.kind);
        rg[k].group_size = w->g[k].args.group_size;
        rank[k] = -1;
    }
    for (size_t i = 0; i < w->n_lin; i++) {
        mods[i] = (dsv4_ct_module){w->lin[i].module, grp[i]};
        if (grp[i] >= 0 && rank[grp[i]] < 0)
            rank[grp[i]] = next++;
    }
    dsv4_err e;
    if (dsv4_ct_config_build(&r, v->model, mods, w->n_lin, &built, &e)) {
        snprintf(why, cap, "%s", e.msg);
        goto done;
    }
    out = json_deep_copy(w->qc);
    const json_t *bg = json_object_get(built, "config_groups");
    for (size_t k = 0; out && k < w->n_groups; k++) {
        char key[32];
        snprintf(key, sizeof key, "group_%d", rank[k]);
        json_t *t = json_deep_copy(json_object_get(json_object_get(bg, key), "targets"));
        json_t *g = json_object_get(json_object_get(out, "config_groups"), w->g[k].key);
        if (!t || json_object_set_new(g, "targets", t)) {
            json_decref(out);
            out = NULL;
        }
    }
    if (out && json_object_set(out, "ignore", json_object_get(built, "ignore"))) {
        json_decref(out);
        out = NULL;
    }
    if (!out)
        snprintf(why, cap, "out of memory");
done:
    json_decref(built);
    free(grp);
    free(mods);
    free(rg);
    return out;
}

int dsv4_vt_regen_fix(dsv4_vctx *v, const dsv4_vt_view *w, char *why, size_t cap)
{
    json_t *nq = dsv4_vt_regen(v, w, why, cap);
    if (!nq)
        return 0;
    int n = 0, rc = 0;
    const json_t *og = json_object_get(w->qc, "config_groups"), *ng = json_object_get(nq, "config_groups");
    for (size_t k = 0; k < w->n_groups && !rc; k++) {
        const json_t *a = json_object_get(json_object_get(og, w->g[k].key), "targets");
        json_t *b = json_object_get(json_object_get(ng, w->g[k].key), "targets");
        if (a && json_equal(a, b))
            continue;
        char path[200];
        snprintf(path, sizeof path, "quantization_config.config_groups.%s.targets", w->g[k].key);
        n++;
        rc = dsv4_vctx_fix_config(v, path, json_incref(b),
                                     "regenerate the group's targets from the stored schemes (vLLM's names, "
                                     "enumerated layers, anchored)");
    }
    const json_t *oi = json_object_get(w->qc, "ignore");
    json_t *ni = json_object_get(nq, "ignore");
    if (!rc && !(oi && json_equal(oi, ni))) {
        n++;
        rc = dsv4_vctx_fix_config(v, "quantization_config.ignore", json_incref(ni),
                                     "regenerate ignore from the stored schemes (every unquantized linear by "
                                     "vLLM's names, the MTP block under all its names)");
    }
    json_decref(nq);
    if (!rc && !n)
        snprintf(why, cap, "regenerating the targets from the stored schemes gives the config it already has");
    return rc ? -1 : n;
}
