/* Rules: the artifact holds every tensor of the model the config describes, in a recognizable
 * storage form with the right logical shape, and as many tensors of each role as the inventory
 * derived from the config. The MTP block and the router's bias / tid2eid have rules of their own
 * (rules_mtp.c, rules_router.c), and the FP32 set's dtype is rules_fp32.c's, so they are left out
 * here: one defect, one rule. */
#include <stdio.h>
#include <string.h>

#include "model/inventory_diff.h"
#include "model/names.h"
#include "verify/vctx.h"

static int counted(const dsv4_inv_tensor *t)
{
    return t->role != DSV4_ROLE_SCALE && !t->is_mtp && t->role != DSV4_ROLE_GATE_BIAS &&
           t->role != DSV4_ROLE_TID2EID;
}

static int is_linear(const dsv4_inv_tensor *t)
{
    size_t n = strlen(t->name);
    return t->ndim == 2 && n > 7 && !strcmp(t->name + n - 7, ".weight");
}

/* Logical [rows, cols] of an inventory weight (FP4 stores two values per byte). */
static void logical(const dsv4_inv_tensor *t, int64_t *r, int64_t *c)
{
    *r = t->shape[0];
    *c = t->store == DSV4_STORE_FP4_PACKED ? t->shape[1] * 2 : t->shape[1];
}

/* The index places this tensor in a shard that does not parse: shards-readable's defect. */
static int in_bad_shard(const dsv4_vctx *v, const char *name)
{
    const dsv4_ckpt *c = &v->art.ck;
    const char *f = c->has_index && c->n_bad_shards ? dsv4_index_lookup(&c->index, name) : NULL;
    for (size_t i = 0; f && i < c->n_bad_shards; i++)
        if (!strcmp(c->bad_shards[i].file, f))
            return 1;
    return 0;
}

static int in_bad_shard_module(const dsv4_vctx *v, const char *mod)
{
    static const char *const parts[] = {".weight", ".weight_packed", ".scale", ".weight_scale"};
    char n[DSV4_NAME_MAX + 32];
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        snprintf(n, sizeof n, "%s%s", mod, parts[i]);
        if (in_bad_shard(v, n))
            return 1;
    }
    return 0;
}

/* 1 when present and right (or unknowable: in an unreadable shard); otherwise records why. */
static int check_one(dsv4_vctx *v, const dsv4_inv_tensor *t, int report)
{
    char want[64], got[64];
    if (is_linear(t)) {
        char mod[DSV4_NAME_MAX];
        snprintf(mod, sizeof mod, "%.*s", (int)(strlen(t->name) - 7), t->name);
        const dsv4_amod *m = dsv4_side_module(&v->art, mod);
        int64_t r, c;
        logical(t, &r, &c);
        if (!m || !m->is_module) {
            if (in_bad_shard_module(v, mod))
                return 1;
            if (report)
                dsv4_vctx_fail(v, "%s: missing (expected a [%lld, %lld] linear in some storage form)", mod,
                               (long long)r, (long long)c);
            return 0;
        }
        if (m->form == DSV4_QF_BROKEN) {
            if (report)
                dsv4_vctx_fail(v, "%s: %s", mod, m->why);
            return 0;
        }
        if (m->rows != r || m->cols != c) {
            if (report)
                dsv4_vctx_fail(v, "%s: logical shape [%lld, %lld] (%s), expected [%lld, %lld]", mod,
                               (long long)m->rows, (long long)m->cols, dsv4_qform_name(m->form), (long long)r,
                               (long long)c);
            return 0;
        }
        return 1;
    }
    const dsv4_vtensor *x = dsv4_side_find(&v->art, t->name);
    if (!x) {
        if (in_bad_shard(v, t->name))
            return 1;
        if (report)
            dsv4_vctx_fail(v, "%s: missing (expected %s %s)", t->name, dsv4_dtype_name(t->dtype),
                           dsv4_inv_shape_str(t, want, sizeof want));
        return 0;
    }
    int shape_ok = x->t->ndim == t->ndim;
    for (int i = 0; shape_ok && i < t->ndim; i++)
        shape_ok = x->t->shape[i] == t->shape[i];
    int dtype_ok = t->is_fp32_set || x->t->dtype == t->dtype ||
                   (t->dtype == DSV4_BF16 && (x->t->dtype == DSV4_F32 || x->t->dtype == DSV4_F16));
    if (!shape_ok || !dtype_ok) {
        if (report)
            dsv4_vctx_fail(v, "%s: expected %s %s, found %s %s", t->name, dsv4_dtype_name(t->dtype),
                           dsv4_inv_shape_str(t, want, sizeof want), dsv4_dtype_name(x->t->dtype),
                           dsv4_dims_str(x->t->shape, x->t->ndim, got, sizeof got));
        return 0;
    }
    return 1;
}

static int need_inv(dsv4_vctx *v)
{
    if (v->inv)
        return 1;
    dsv4_vctx_skip(v, "no usable model config: %s", v->art.config_problem);
    return 0;
}

static void run_tensors(dsv4_vctx *v, const dsv4_rule *self)
{
    if (!need_inv(v))
        return;
    for (size_t i = 0; i < v->inv->n; i++)
        if (counted(&v->inv->t[i]))
            check_one(v, &v->inv->t[i], 1);
}

static void run_roles(dsv4_vctx *v, const dsv4_rule *self)
{
    if (!need_inv(v))
        return;
    size_t want[DSV4_ROLE_COUNT] = {0}, have[DSV4_ROLE_COUNT] = {0};
    for (size_t i = 0; i < v->inv->n; i++) {
        const dsv4_inv_tensor *t = &v->inv->t[i];
        if (!counted(t))
            continue;
        want[t->role]++;
        have[t->role] += (size_t)check_one(v, t, 0);
    }
    for (int r = 0; r < DSV4_ROLE_COUNT; r++)
        if (want[r] != have[r])
            dsv4_vctx_fail(v, "%s: %zu expected from the config (main layers), %zu present and well-formed",
                           dsv4_role_name((dsv4_role)r), want[r], have[r]);
}

static const dsv4_rule TENSORS = {
    "inventory-tensors", "every tensor of the model is present and well-formed",
    "Each main-layer tensor of the inventory derived from config.json is present: linears in a recognized storage "
    "form (plain, release FP8/FP4, compressed-tensors FP8/INT4/NVFP4, ModelOpt NVFP4) with the right logical shape, "
    "other tensors with the right dtype and shape.",
    DSV4_SEV_ERROR, 0, NULL, run_tensors};
static const dsv4_rule ROLES = {
    "role-counts", "tensor counts per role match the config",
    "Per role (attention linears, routed experts, norms, hyper-connection mixers, ...), the number of well-formed "
    "main-layer tensors equals the inventory's.",
    DSV4_SEV_ERROR, 0, NULL, run_roles};

const dsv4_rule *const dsv4_rules_counts[] = {&TENSORS, &ROLES, NULL};
