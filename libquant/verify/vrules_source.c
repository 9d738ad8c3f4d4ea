/* The source side of the rule helpers (vrules_util.h): the artifact's MTP policy, the tensors a
 * repair makes of one inventory tensor from the source (dsv4-quant's choices, artifact/plan_jobs.c),
 * writing them over what the artifact holds, comparing the artifact with the source, and whether
 * dsv4-quant left the MTP aliases out on purpose. */
#include "verify/vrules_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact/convert_job.h"
#include "recipe/recipe.h"

vr_policy vr_mtp_policy(const dsv4_vctx *v, char *why, size_t cap)
{
    if (v->is_ct) {
        snprintf(why, cap, "compressed-tensors artifact: MTP block in BF16");
        return VR_POLICY_BF16;
    }
    const char *ct = NULL, *rel = NULL, *other = NULL;
    dsv4_qform other_form = DSV4_QF_PLAIN;
    for (size_t i = 0; i < v->art.st.n; i++) {
        const dsv4_amod *m = &v->art.st.m[i];
        if (vr_starts(m->module, "mtp."))
            continue;
        switch (m->form) {
        case DSV4_QF_CT_FP8:
        case DSV4_QF_CT_INT4:
        case DSV4_QF_CT_NVFP4:
            ct = ct ? ct : m->module;
            break;
        case DSV4_QF_RELEASE_FP8:
        case DSV4_QF_RELEASE_FP4:
            rel = rel ? rel : m->module;
            break;
        case DSV4_QF_FP8_SCALE_INV:
        case DSV4_QF_MODELOPT_NVFP4:
            if (!other) {
                other = m->module;
                other_form = m->form;
            }
            break;
        default:
            break;
        }
    }
    if (ct) {
        snprintf(why, cap, "compressed-tensors tensors (%s) without a compressed-tensors config: MTP block in BF16", ct);
        return VR_POLICY_BF16;
    }
    if (other) {
        snprintf(why, cap, "%s stores %s, a form dsv4-quant does not write: no MTP policy is defined for it", other,
                 dsv4_qform_name(other_form));
        return VR_POLICY_NONE;
    }
    if (rel) {
        snprintf(why, cap, "native artifact (release FP8/FP4 storage, e.g. %s): MTP bytes as the source has them",
                 rel);
        return VR_POLICY_COPY;
    }
    snprintf(why, cap, "plain BF16 artifact: MTP block in BF16");
    return VR_POLICY_BF16;
}

static void set_out(vr_out *o, const char *name, dsv4_dtype dt, int ndim, int64_t d0, int64_t d1, dsv4_produce how,
                    const dsv4_tensor *from, const dsv4_tensor *from_scale)
{
    snprintf(o->name, sizeof o->name, "%.*s", (int)sizeof o->name - 1, name); /* inventory names are short */
    o->dtype = dt;
    o->ndim = ndim;
    o->shape[0] = ndim > 0 ? d0 : 0;
    o->shape[1] = ndim > 1 ? d1 : 0;
    o->how = how;
    o->from = from;
    o->from_scale = from_scale;
}

static int is_dense(dsv4_dtype t)
{
    return t == DSV4_BF16 || t == DSV4_F16 || t == DSV4_F32;
}

/* A release FP8 / FP4 weight of the inventory, from the source's module. */
static int weight_from_source(const dsv4_vctx *v, const dsv4_inv_tensor *it, vr_policy pol, vr_out out[2], int *n,
                              char *why, size_t cap)
{
    char module[DSV4_NAME_MAX], d[128];
    vr_module_of(it->name, module, sizeof module);
    int64_t rows = it->shape[0], cols = it->shape[1] * (it->store == DSV4_STORE_FP4_PACKED ? 2 : 1);
    const dsv4_amod *sm = dsv4_side_module(&v->src, module);
    const dsv4_tensor *w = sm ? sm->part[DSV4_PART_WEIGHT] : NULL, *s = sm ? sm->part[DSV4_PART_SCALE] : NULL;
    if (!w) {
        snprintf(why, cap, "the source has no %s", it->name);
        return -1;
    }
    if (sm->rows != rows || sm->cols != cols) {
        snprintf(why, cap, "the source's %s is [%lld, %lld] (%s), the config says [%lld, %lld]", module,
                 (long long)sm->rows, (long long)sm->cols, dsv4_qform_name(sm->form), (long long)rows,
                 (long long)cols);
        return -1;
    }
    if (sm->form == DSV4_QF_RELEASE_FP8 || sm->form == DSV4_QF_RELEASE_FP4) {
        if (pol == VR_POLICY_COPY) {
            char sname[DSV4_NAME_MAX + 8];
            snprintf(sname, sizeof sname, "%s.scale", module);
            set_out(&out[0], it->name, w->dtype, 2, w->shape[0], w->shape[1], DSV4_PRODUCE_COPY, w, NULL);
            set_out(&out[1], sname, s->dtype, 2, s->shape[0], s->shape[1], DSV4_PRODUCE_COPY, s, NULL);
            *n = 2;
        } else {
            set_out(&out[0], it->name, DSV4_BF16, 2, rows, cols, DSV4_PRODUCE_BF16, w, s);
            *n = 1;
        }
        return 0;
    }
    if (sm->form == DSV4_QF_PLAIN && is_dense(w->dtype)) {
        /* A dense source weight: dsv4-quant copies BF16 and rounds F16 / F32 to BF16, whatever the policy. */
        set_out(&out[0], it->name, DSV4_BF16, 2, rows, cols, w->dtype == DSV4_BF16 ? DSV4_PRODUCE_COPY : DSV4_PRODUCE_BF16,
                w, NULL);
        *n = 1;
        return 0;
    }
    snprintf(why, cap, "the source stores %s as %s (%s), not as release FP8/FP4 or a dense weight", module,
             dsv4_qform_name(sm->form), vr_desc(w, d, sizeof d));
    return -1;
}

int vr_from_source(const dsv4_vctx *v, const dsv4_inv_tensor *it, vr_policy pol, vr_out out[2], int *n, char *why,
                   size_t cap)
{
    char d[128], want[128];
    *n = 0;
    if (pol == VR_POLICY_NONE) {
        snprintf(why, cap, "no MTP policy for this artifact's storage");
        return -1;
    }
    if (!v->have_src) {
        snprintf(why, cap, "repair needs --source");
        return -1;
    }
    if (it->store == DSV4_STORE_FP8_BLOCK || it->store == DSV4_STORE_FP4_PACKED)
        return weight_from_source(v, it, pol, out, n, why, cap);
    const dsv4_tensor *s = vr_src(v, it->name);
    if (!s) {
        snprintf(why, cap, "the source has no %s", it->name);
        return -1;
    }
    if (!vr_shape_is(s, it)) {
        snprintf(why, cap, "the source's %s is %s, the release stores %s", it->name, vr_desc(s, d, sizeof d),
                 vr_inv_desc(it, want, sizeof want));
        return -1;
    }
    if (s->dtype == it->dtype) {
        set_out(&out[0], it->name, s->dtype, s->ndim, s->shape[0], s->shape[1], DSV4_PRODUCE_COPY, s, NULL);
    } else if (it->dtype == DSV4_BF16 && (s->dtype == DSV4_F32 || s->dtype == DSV4_F16)) {
        set_out(&out[0], it->name, DSV4_BF16, s->ndim, s->shape[0], s->shape[1], DSV4_PRODUCE_BF16, s, NULL);
    } else {
        snprintf(why, cap, "the source's %s is %s, the release stores %s%s", it->name, vr_desc(s, d, sizeof d),
                 vr_inv_desc(it, want, sizeof want),
                 it->dtype == DSV4_F32 ? " (the F32 values are not in the source)" : "");
        return -1;
    }
    *n = 1;
    return 0;
}

int vr_replace(dsv4_vctx *v, const dsv4_amod *m, const vr_out *out, int n, const char *near, const char *why)
{
    for (int p = 0; m && p < DSV4_PART_COUNT; p++) {
        if (!m->part[p])
            continue;
        int kept = 0;
        for (int k = 0; k < n && !kept; k++)
            kept = !strcmp(out[k].name, m->part_name[p]);
        if (!kept && vr_drop(v, m->part_name[p], why))
            return -1;
    }
    for (int k = 0; k < n; k++)
        if (vr_put(v, out[k].name, out[k].dtype, out[k].ndim, out[k].shape, out[k].how, out[k].from,
                   out[k].from_scale, near, why))
            return -1;
    return 0;
}

/* Release FP8 / FP4 stored exactly as in the source: weight and .scale bytes. */
static int compare_release(const dsv4_amod *m, const dsv4_amod *sm, char *msg, size_t cap)
{
    static const dsv4_part parts[2] = {DSV4_PART_WEIGHT, DSV4_PART_SCALE};
    for (int k = 0; k < 2; k++) {
        const dsv4_tensor *a = m->part[parts[k]], *s = sm->part[parts[k]];
        char d[128], sd[128], diff[200];
        vr_cmp c;
        if (a->ndim != s->ndim || dsv4_tensor_numel(a) != dsv4_tensor_numel(s) ||
            memcmp(a->shape, s->shape, sizeof a->shape[0] * (size_t)a->ndim)) {
            snprintf(msg, cap, "%s is %s, the source's %s", m->part_name[parts[k]], vr_desc(a, d, sizeof d),
                     vr_desc(s, sd, sizeof sd));
            return 0;
        }
        vr_compare(a->data, a->dtype, s->data, s->dtype, dsv4_tensor_numel(a), &c);
        if (c.n_diff) {
            snprintf(msg, cap, "%s (%s) differs from the source's bytes %s", m->part_name[parts[k]],
                     vr_desc(a, d, sizeof d), vr_cmp_str(&c, dsv4_tensor_numel(a), diff, sizeof diff));
            return 0;
        }
    }
    return 1;
}

/* A plain artifact weight against the BF16 dequantization of the source's weight. */
static int compare_dequant(const dsv4_amod *m, const dsv4_amod *sm, char *msg, size_t cap)
{
    const dsv4_tensor *a = m->part[DSV4_PART_WEIGHT];
    char d[128], diff[200];
    if (m->rows != sm->rows || m->cols != sm->cols) {
        snprintf(msg, cap, "%s is %s, the source's logical shape is [%lld, %lld]", m->part_name[DSV4_PART_WEIGHT],
                 vr_desc(a, d, sizeof d), (long long)sm->rows, (long long)sm->cols);
        return 0;
    }
    uint64_t n = (uint64_t)m->rows * (uint64_t)m->cols;
    uint16_t *ref = malloc(n * 2 + 2);
    dsv4_err e;
    if (!ref || dsv4_source_bf16(sm->part[DSV4_PART_WEIGHT], sm->part[DSV4_PART_SCALE], ref, &e)) {
        snprintf(msg, cap, "the source's %s cannot be dequantized: %s", sm->module, ref ? e.msg : "out of memory");
        free(ref);
        return -1;
    }
    vr_cmp c;
    int rc = vr_compare(a->data, a->dtype, ref, DSV4_BF16, n, &c);
    free(ref);
    if (rc) {
        snprintf(msg, cap, "stored %s, which is not a float dtype", vr_desc(a, d, sizeof d));
        return -1;
    }
    if (!c.n_diff)
        return 1;
    snprintf(msg, cap, "%s differs from the source's BF16 dequantization %s", vr_desc(a, d, sizeof d),
             vr_cmp_str(&c, n, diff, sizeof diff));
    return 0;
}

int vr_compare_source(const dsv4_vctx *v, const dsv4_inv_tensor *it, const dsv4_amod *m, char *msg, size_t cap)
{
    char d[128], sd[128], diff[200];
    if (m->form == DSV4_QF_BROKEN) {
        snprintf(msg, cap, "no complete storage form (%s)", m->why);
        return -1;
    }
    if (it->store == DSV4_STORE_FP8_BLOCK || it->store == DSV4_STORE_FP4_PACKED) {
        char module[DSV4_NAME_MAX];
        vr_module_of(it->name, module, sizeof module);
        const dsv4_amod *sm = v->have_src ? dsv4_side_module(&v->src, module) : NULL;
        if (!sm || !sm->part[DSV4_PART_WEIGHT] || sm->form == DSV4_QF_BROKEN) {
            snprintf(msg, cap, "the source has no usable %s", it->name);
            return -1;
        }
        if (m->form == sm->form && (m->form == DSV4_QF_RELEASE_FP8 || m->form == DSV4_QF_RELEASE_FP4))
            return compare_release(m, sm, msg, cap);
        if (m->form != DSV4_QF_PLAIN) {
            snprintf(msg, cap, "stored %s, the source %s: quantized values are not compared", dsv4_qform_name(m->form),
                     dsv4_qform_name(sm->form));
            return -1;
        }
        return compare_dequant(m, sm, msg, cap);
    }
    const dsv4_tensor *a = m->part[DSV4_PART_WEIGHT], *s = vr_src(v, it->name);
    if (!a || m->form != DSV4_QF_PLAIN) {
        snprintf(msg, cap, "stored %s: quantized values are not compared", dsv4_qform_name(m->form));
        return -1;
    }
    if (!s) {
        snprintf(msg, cap, "the source has no %s", it->name);
        return -1;
    }
    if (it->is_fp32_set && a->dtype != DSV4_F32) {
        snprintf(msg, cap, "stored %s, not F32 (fp32-dtype reports it)", vr_desc(a, d, sizeof d));
        return -1;
    }
    if (a->ndim != s->ndim || memcmp(a->shape, s->shape, sizeof a->shape[0] * (size_t)a->ndim)) {
        snprintf(msg, cap, "%s, the source's %s", vr_desc(a, d, sizeof d), vr_desc(s, sd, sizeof sd));
        return 0;
    }
    vr_cmp c;
    if (vr_compare(a->data, a->dtype, s->data, s->dtype, dsv4_tensor_numel(a), &c)) {
        snprintf(msg, cap, "stored %s, the source %s: no value-preserving cast between them", vr_desc(a, d, sizeof d),
                 vr_desc(s, sd, sizeof sd));
        return -1;
    }
    if (!c.n_diff)
        return 1;
    snprintf(msg, cap, "%s differs from the source (%s) %s", vr_desc(a, d, sizeof d), vr_desc(s, sd, sizeof sd),
             vr_cmp_str(&c, dsv4_tensor_numel(a), diff, sizeof diff));
    return 0;
}

int vr_aliases_omitted(const dsv4_vctx *v, char *why, size_t cap)
{
    const json_t *prov = v->art.config ? json_object_get(v->art.config, "dsv4_provenance") : NULL;
    const json_t *flag = json_object_get(prov, "mtp_aliases");
    why[0] = 0;
    if (json_is_boolean(flag)) {
        if (json_is_false(flag))
            snprintf(why, cap, "config.json dsv4_provenance.mtp_aliases is false");
        return json_is_false(flag);
    }
    const char *tool = json_string_value(json_object_get(prov, "tool"));
    const char *path = json_string_value(json_object_get(prov, "recipe"));
    const char *hash = json_string_value(json_object_get(prov, "recipe_xxh3_128"));
    if (!tool || strcmp(tool, "dsv4-quant") || !path || !hash)
        return 0;
    dsv4_recipe r;
    dsv4_err e;
    if (dsv4_recipe_load(path, &r, &e)) {
        snprintf(why, cap, " (dsv4-quant records the alias choice only through its recipe %s, which cannot be read "
                 "here: %.300s)", path, e.msg);
        return 0;
    }
    int omitted = 0;
    if (strcmp(r.hash, hash))
        snprintf(why, cap, " (dsv4-quant records the alias choice only through its recipe %s, which has changed since: "
                 "xxh3-128 %s, config.json says %s)", path, r.hash, hash);
    else if ((omitted = !r.mtp_aliases))
        snprintf(why, cap, "dsv4-quant's recipe %s (xxh3-128 %s, named in dsv4_provenance) sets mtp.aliases: false",
                 path, hash);
    dsv4_recipe_free(&r);
    return omitted;
}
