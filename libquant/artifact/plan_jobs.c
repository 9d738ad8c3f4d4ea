/* One job per source weight, in release inventory order (MTP last, then the MTP aliases). A
 * weight's `.scale` travels with its job. The scheme comes from the recipe (ignore first, then the
 * first group whose targets match; the MTP policy overrides for mtp.*), and the job kind from the
 * scheme and the source's storage: release FP8 / FP4 (weight + e8m0 scale) or dense (BF16, F16,
 * F32, no scale). Everything that is not a linear layer is copied, or rounded to the release's
 * BF16 when the source holds it wider; the release's F32 tensors must arrive as F32. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact/plan_internal.h"
#include "recipe/modules.h"

typedef enum src_form { FORM_RELEASE, FORM_DENSE } src_form;

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

static int is_dense(dsv4_dtype t) { return t == DSV4_BF16 || t == DSV4_F16 || t == DSV4_F32; }

static int same_shape(const dsv4_tensor *t, int ndim, int64_t d0, int64_t d1)
{
    return t->ndim == ndim && t->shape[0] == d0 && (ndim < 2 || t->shape[1] == d1);
}

static int bad_shape(plan_ctx *c, const dsv4_tensor *t, const char *release, int ndim, int64_t d0, int64_t d1)
{
    char want[64], got[64];
    int64_t w[2] = {d0, d1};
    dsv4_dims_str(w, ndim, want, sizeof want);
    dsv4_dims_str(t->shape, t->ndim > 2 ? 2 : t->ndim, got, sizeof got);
    return dsv4_fail(c->e, "source tensor '%s' (release %s): %s %s%s, expected %s %s", t->name, release,
                     dsv4_dtype_name(t->dtype), got, t->ndim > 2 ? " (more than 2 dims)" : "",
                     dsv4_dtype_name(t->dtype), want);
}

static dsv4_plan_job *new_job(plan_ctx *c, dsv4_job_kind kind, int group)
{
    dsv4_plan *p = c->p;
    if (p->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 1024;
        dsv4_plan_job *nj = realloc(p->jobs, nc * sizeof *nj);
        if (!nj) {
            dsv4_fail_rt(c->e, "plan: out of memory");
            return NULL;
        }
        p->jobs = nj;
        c->cap = nc;
    }
    dsv4_plan_job *j = &p->jobs[p->n++];
    memset(j, 0, sizeof *j);
    j->kind = kind;
    j->group = group;
    return j;
}

static int add_out(plan_ctx *c, dsv4_plan_job *j, const char *base, const char *suffix, dsv4_dtype dt, int ndim,
                   int64_t d0, int64_t d1)
{
    size_t l = strlen(base) + strlen(suffix) + 1;
    dsv4_plan_out *o = &j->out[j->n_out];
    if (!(o->name = malloc(l)))
        return dsv4_fail_rt(c->e, "plan: out of memory");
    snprintf(o->name, l, "%s%s", base, suffix);
    o->dtype = dt;
    o->ndim = ndim;
    o->shape[0] = ndim > 0 ? d0 : 0;
    o->shape[1] = ndim > 1 ? d1 : 0;
    j->n_out++;
    return 0;
}

static int add_mod(plan_ctx *c, const char *module, int group)
{
    if (c->n_mods == c->cap_mods) {
        size_t nc = c->cap_mods ? c->cap_mods * 2 : 1024;
        dsv4_ct_module *nm = realloc(c->mods, nc * sizeof *nm);
        if (!nm)
            return dsv4_fail_rt(c->e, "plan: out of memory");
        c->mods = nm;
        c->cap_mods = nc;
    }
    char *m = strdup(module);
    if (!m)
        return dsv4_fail_rt(c->e, "plan: out of memory");
    c->mods[c->n_mods++] = (dsv4_ct_module){m, group};
    return 0;
}

/* The scheme a quantizable linear layer gets, with its recipe group (-1 when none decides). */
static dsv4_scheme decide(const plan_ctx *c, const dsv4_inv_tensor *t, const char *module, int *group)
{
    const dsv4_recipe *r = c->r;
    *group = -1;
    if (t->is_mtp && r->mtp == DSV4_MTP_BF16)
        return DSV4_SCHEME_BF16;
    if (t->is_mtp && r->mtp == DSV4_MTP_KEEP)
        return DSV4_SCHEME_KEEP;
    const dsv4_recipe_group *g = dsv4_recipe_match(r, module);
    if (g) {
        *group = (int)(g - r->groups);
        return g->scheme;
    }
    return dsv4_recipe_ignored(r, module) ? DSV4_SCHEME_BF16 : DSV4_SCHEME_KEEP;
}

/* Module name of a weight ("x.weight" -> "x") into buf; 0 when the name does not end in ".weight". */
static int module_of(const char *name, char *buf, size_t cap)
{
    size_t l = strlen(name);
    if (l < 8 || strcmp(name + l - 7, ".weight") || l - 7 >= cap)
        return 0;
    memcpy(buf, name, l - 7);
    buf[l - 7] = 0;
    return 1;
}

/* The weight fused with this one in vLLM (whose NVFP4 global scale it shares), or NULL. */
static const dsv4_inv_tensor *partner(const plan_ctx *c, const dsv4_inv_tensor *t)
{
    static const char *const pairs[][2] = {{".attn.wq_a.weight", ".attn.wkv.weight"},
                                           {".ffn.shared_experts.w1.weight", ".ffn.shared_experts.w3.weight"},
                                           {".w1.weight", ".w3.weight"}};
    size_t l = strlen(t->name);
    for (size_t k = 0; k < sizeof pairs / sizeof *pairs; k++)
        for (int side = 0; side < 2; side++) {
            const char *from = pairs[k][side], *to = pairs[k][!side];
            size_t fl = strlen(from);
            if (l <= fl || strcmp(t->name + l - fl, from))
                continue;
            if (k == 2 && t->role != DSV4_ROLE_ROUTED_EXPERT)
                continue;
            char buf[256];
            if (l - fl + strlen(to) + 1 > sizeof buf)
                return NULL;
            snprintf(buf, sizeof buf, "%.*s%s", (int)(l - fl), t->name, to);
            return dsv4_inventory_find(&c->inv, buf);
        }
    return NULL;
}

/* The source weight and scale of an inventory weight stored FP8 / FP4 in the release. */
static int release_weight(plan_ctx *c, const dsv4_inv_tensor *t, const dsv4_tensor **w, const dsv4_tensor **s,
                          src_form *form)
{
    const dsv4_inv_tensor *si = &c->inv.t[t->pair];
    int64_t rows = t->shape[0], cols = t->shape[1] * (t->store == DSV4_STORE_FP4_PACKED ? 2 : 1);
    *w = plan_src_find(&c->src, t->name);
    *s = plan_src_find(&c->src, si->name);
    if (!*w)
        return dsv4_fail(c->e, "the source has no tensor '%s' (the config's release inventory expects it)", t->name);
    if ((*w)->dtype == t->dtype) {
        *form = FORM_RELEASE;
        if (!same_shape(*w, 2, t->shape[0], t->shape[1]))
            return bad_shape(c, *w, t->name, 2, t->shape[0], t->shape[1]);
        if (!*s)
            return dsv4_fail(c->e, "source tensor '%s' is %s but its scale '%s' is missing", (*w)->name,
                             dsv4_dtype_name((*w)->dtype), si->name);
        if ((*s)->dtype != si->dtype)
            return dsv4_fail(c->e, "source tensor '%s' (scale of %s) is %s, expected %s", (*s)->name, t->name,
                             dsv4_dtype_name((*s)->dtype), dsv4_dtype_name(si->dtype));
        if (!same_shape(*s, 2, si->shape[0], si->shape[1]))
            return bad_shape(c, *s, si->name, 2, si->shape[0], si->shape[1]);
        return 0;
    }
    if (!is_dense((*w)->dtype))
        return dsv4_fail(c->e, "source tensor '%s' (release %s) is %s: expected %s with its scale (the release "
                         "layout) or a dense BF16 / F16 / F32 weight", (*w)->name, t->name,
                         dsv4_dtype_name((*w)->dtype), dsv4_dtype_name(t->dtype));
    *form = FORM_DENSE;
    if (!same_shape(*w, 2, rows, cols))
        return bad_shape(c, *w, t->name, 2, rows, cols);
    if (*s)
        return dsv4_fail(c->e, "source tensor '%s' is a dense %s weight but the source also has a scale '%s' for it",
                         (*w)->name, dsv4_dtype_name((*w)->dtype), (*s)->name);
    return 0;
}

static uint64_t out_bytes(const dsv4_plan_out *o)
{
    uint64_t n = o->ndim == 0 ? 1 : (uint64_t)o->shape[0] * (uint64_t)(o->ndim > 1 ? o->shape[1] : 1);
    int64_t b = dsv4_dtype_nbytes(o->dtype, n);
    return b > 0 ? (uint64_t)b : 0;
}

/* Working set: sources as read, the BF16 dequantized weights a transforming job holds, outputs. */
static void account(plan_ctx *c, dsv4_plan_job *j, int64_t partner_elems)
{
    uint64_t w = 0;
    for (int k = 0; k < 4; k++)
        if (j->src[k])
            w += dsv4_tensor_nbytes(j->src[k]);
    if (j->kind != DSV4_JOB_COPY)
        w += 2 * (uint64_t)(j->rows * j->cols + partner_elems);
    for (int k = 0; k < j->n_out; k++) {
        uint64_t b = out_bytes(&j->out[k]);
        w += b;
        c->p->out_bytes += b;
    }
    if (w > c->p->peak_job_bytes)
        c->p->peak_job_bytes = w;
}

/* COPY when the source already has dtype `want`, else BF16 (a wider float rounded to the release's
 * BF16; callers only ask for that). */
static dsv4_plan_job *plain_job(plan_ctx *c, const dsv4_tensor *s, const char *out_name, dsv4_dtype want, int group)
{
    dsv4_plan_job *j = new_job(c, s->dtype == want ? DSV4_JOB_COPY : DSV4_JOB_BF16, group);
    if (!j)
        return NULL;
    j->src[0] = s;
    j->rows = s->ndim > 0 ? s->shape[0] : 1;
    j->cols = s->ndim > 1 ? s->shape[1] : 1;
    if (add_out(c, j, out_name, "", j->kind == DSV4_JOB_COPY ? s->dtype : DSV4_BF16, s->ndim > 2 ? 2 : s->ndim,
                s->shape[0], s->shape[1]))
        return NULL;
    account(c, j, 0);
    return j;
}

static int quantized_weight(plan_ctx *c, const dsv4_inv_tensor *t, const char *module)
{
    const dsv4_tensor *w, *s;
    src_form form;
    if (release_weight(c, t, &w, &s, &form))
        return -1;
    int group;
    dsv4_scheme sch = decide(c, t, module, &group);
    int64_t rows = t->shape[0], cols = t->shape[1] * (t->store == DSV4_STORE_FP4_PACKED ? 2 : 1);
    int fp4 = t->store == DSV4_STORE_FP4_PACKED;
    dsv4_plan_job *j;
    if (add_mod(c, module, dsv4_scheme_is_quantized(sch) ? group : -1))
        return -1;
    if (sch == DSV4_SCHEME_KEEP || sch == DSV4_SCHEME_BF16 || form == FORM_DENSE) {
        if (form == FORM_DENSE && !dsv4_scheme_is_quantized(sch))
            return plain_job(c, w, t->name, DSV4_BF16, group) ? 0 : -1;
        if (sch == DSV4_SCHEME_KEEP) {
            /* Release storage kept: the weight and its scale as they are. */
            c->first_native = c->first_native ? c->first_native : t->name;
            if (!plain_job(c, w, t->name, w->dtype, group) || !plain_job(c, s, c->inv.t[t->pair].name, s->dtype, group))
                return -1;
            return 0;
        }
        if (sch == DSV4_SCHEME_BF16) {
            c->first_deq = c->first_deq ? c->first_deq : t->name;
            if (!(j = new_job(c, DSV4_JOB_BF16, group)))
                return -1;
            j->src[0] = w;
            j->src[1] = s;
            j->rows = rows;
            j->cols = cols;
            if (add_out(c, j, module, ".weight", DSV4_BF16, 2, rows, cols))
                return -1;
            account(c, j, 0);
            return 0;
        }
    }
    const dsv4_recipe_group *g = &c->r->groups[group];
    c->first_ct = c->first_ct ? c->first_ct : t->name;
    dsv4_job_kind kind;
    const dsv4_inv_tensor *pt = NULL;
    switch (sch) {
    case DSV4_SCHEME_FP8_BLOCK:
        if (form == FORM_DENSE)
            kind = DSV4_JOB_FP8_RTN;
        else if (!fp4)
            kind = DSV4_JOB_FP8_PASS;
        else if (c->r->experts_fp8_lossless)
            kind = DSV4_JOB_FP8_FROM_FP4;
        else
            return dsv4_fail(c->e, "%s: recipe group '%s' asks for FP8_BLOCK but the source weight is FP4; set "
                             "experts_fp8_lossless: true to convert it by DeepSeek's lossless FP4 -> FP8 rule",
                             t->name, g->name);
        break;
    case DSV4_SCHEME_W4A16:
    case DSV4_SCHEME_W4AFP8:
        if (cols % g->group_size)
            return dsv4_fail(c->e, "%s: %lld input columns are not a multiple of group '%s''s group_size %d", t->name,
                             (long long)cols, g->name, g->group_size);
        kind = DSV4_JOB_INT4;
        break;
    default:
        if (cols % 16)
            return dsv4_fail(c->e, "%s: %lld input columns are not a multiple of NVFP4's 16", t->name,
                             (long long)cols);
        kind = DSV4_JOB_NVFP4;
        pt = partner(c, t);
        break;
    }
    if (!(j = new_job(c, kind, group)))
        return -1;
    j->src[0] = w;
    j->src[1] = form == FORM_RELEASE ? s : NULL;
    j->rows = rows;
    j->cols = cols;
    int64_t pelems = 0;
    if (pt) {
        const dsv4_tensor *pw, *ps;
        src_form pf;
        if (release_weight(c, pt, &pw, &ps, &pf))
            return -1;
        j->src[2] = pw;
        j->src[3] = pf == FORM_RELEASE ? ps : NULL;
        pelems = pt->shape[0] * pt->shape[1] * (pt->store == DSV4_STORE_FP4_PACKED ? 2 : 1);
    }
    int rc;
    if (kind == DSV4_JOB_INT4)
        rc = add_out(c, j, module, ".weight_packed", DSV4_I32, 2, rows, cols / 8) ||
             add_out(c, j, module, ".weight_scale", DSV4_BF16, 2, rows, cols / g->group_size) ||
             add_out(c, j, module, ".weight_shape", DSV4_I64, 1, 2, 0);
    else if (kind == DSV4_JOB_NVFP4)
        rc = add_out(c, j, module, ".weight_packed", DSV4_U8, 2, rows, cols / 2) ||
             add_out(c, j, module, ".weight_scale", DSV4_F8_E4M3, 2, rows, cols / 16) ||
             add_out(c, j, module, ".weight_global_scale", DSV4_F32, 0, 0, 0);
    else
        rc = add_out(c, j, module, ".weight", DSV4_F8_E4M3, 2, rows, cols) ||
             add_out(c, j, module, ".weight_scale", DSV4_BF16, 2, cdiv(rows, 128), cdiv(cols, 128));
    if (rc)
        return -1;
    account(c, j, pelems);
    return 0;
}

static int plain_tensor(plan_ctx *c, const dsv4_inv_tensor *t, const dsv4_plan_job **made)
{
    const dsv4_tensor *s = plan_src_find(&c->src, t->name);
    char module[256];
    if (!s)
        return dsv4_fail(c->e, "the source has no tensor '%s' (the config's release inventory expects it)", t->name);
    if (s->dtype != t->dtype && !(t->dtype == DSV4_BF16 && (s->dtype == DSV4_F16 || s->dtype == DSV4_F32))) {
        if (t->dtype == DSV4_F32)
            return dsv4_fail(c->e, "source tensor '%s' is %s; the release stores it in F32 and the artifact must keep "
                             "the exact F32 values (restore them from the release, e.g. with dsv4-fixup)", s->name,
                             dsv4_dtype_name(s->dtype));
        return dsv4_fail(c->e, "source tensor '%s' is %s, expected %s", s->name, dsv4_dtype_name(s->dtype),
                         dsv4_dtype_name(t->dtype));
    }
    if (!same_shape(s, t->ndim, t->shape[0], t->shape[1]))
        return bad_shape(c, s, t->name, t->ndim, t->shape[0], t->shape[1]);
    int group = -1;
    if (module_of(t->name, module, sizeof module) && dsv4_module_kind(module) == DSV4_MOD_ULINEAR) {
        const dsv4_recipe_group *g = t->is_mtp && c->r->mtp != DSV4_MTP_QUANTIZE ? NULL : dsv4_recipe_match(c->r, module);
        if (g && dsv4_scheme_is_quantized(g->scheme))
            return dsv4_fail(c->e, "%s: recipe group '%s' (%s) targets it, but vLLM builds this layer unquantized "
                             "(compressor / indexer wkv, wgate, weights_proj, ffn.gate and head stay BF16); remove "
                             "it from the group's targets or add it to ignore", module, g->name,
                             dsv4_scheme_name(g->scheme));
        group = g ? (int)(g - c->r->groups) : -1;
        if (add_mod(c, module, -1))
            return -1;
    }
    return (*made = plain_job(c, s, t->name, t->dtype, group)) ? 0 : -1;
}

/* mtp.N.head.weight and mtp.N.emb.tok_emb.weight: copies of head and embed (seed_pipelines §3.6),
 * made by the same kind of job as the original. `from` are job indices (SIZE_MAX: absent). */
static int aliases(plan_ctx *c, const size_t from[2])
{
    static const char *const suffix[2] = {"head.weight", "emb.tok_emb.weight"};
    for (int i = 0; i < c->cfg->n_mtp; i++)
        for (int k = 0; k < 2; k++) {
            if (from[k] == SIZE_MAX)
                continue;
            dsv4_plan_job o = c->p->jobs[from[k]]; /* copied: new_job may move the array */
            char name[64];
            snprintf(name, sizeof name, "mtp.%d.%s", i, suffix[k]);
            dsv4_plan_job *j = new_job(c, o.kind, -1);
            if (!j)
                return -1;
            j->src[0] = o.src[0];
            j->rows = o.rows;
            j->cols = o.cols;
            if (add_out(c, j, name, "", o.out[0].dtype, o.out[0].ndim, o.out[0].shape[0], o.out[0].shape[1]))
                return -1;
            account(c, j, 0);
        }
    return 0;
}

int plan_jobs(plan_ctx *c)
{
    const dsv4_plan_job *made = NULL;
    size_t alias_src[2] = {SIZE_MAX, SIZE_MAX}; /* head, embed */
    for (size_t i = 0; i < c->inv.n; i++) {
        const dsv4_inv_tensor *t = &c->inv.t[i];
        char module[256];
        if (t->role == DSV4_ROLE_SCALE)
            continue; /* travels with its weight */
        if (t->store == DSV4_STORE_FP8_BLOCK || t->store == DSV4_STORE_FP4_PACKED) {
            if (!module_of(t->name, module, sizeof module))
                return dsv4_fail(c->e, "internal error: quantized inventory tensor '%s' is not a .weight", t->name);
            if (quantized_weight(c, t, module))
                return -1;
            continue;
        }
        if (plain_tensor(c, t, &made))
            return -1;
        if (t->role == DSV4_ROLE_HEAD)
            alias_src[0] = c->p->n - 1;
        if (t->role == DSV4_ROLE_EMBED)
            alias_src[1] = c->p->n - 1;
    }
    if (c->r->mtp_aliases && aliases(c, alias_src))
        return -1;
    if (c->first_ct && c->first_native)
        return dsv4_fail(c->e, "%s keeps DeepSeek's native FP8 / FP4 storage (no recipe group targets it, or "
                         "mtp.policy is keep) while %s is written in compressed-tensors form; one artifact cannot "
                         "hold both: target every FP8 / FP4 weight with a group (FP8_BLOCK passes release FP8 "
                         "through losslessly) or list it in ignore (dequantized to BF16)",
                         c->first_native, c->first_ct);
    if (c->first_native && c->first_deq)
        return dsv4_fail(c->e, "%s keeps DeepSeek's native FP8 / FP4 storage while %s is dequantized to BF16; a "
                         "native-format artifact keeps every FP8 / FP4 weight (for the MTP block: mtp.policy keep)",
                         c->first_native, c->first_deq);
    c->mode = c->first_ct ? PLAN_CT : c->first_native ? PLAN_NATIVE : PLAN_PLAIN;
    return 0;
}
