/* Rules: the router's own tensors. Non-hash layers and the MTP blocks route with a score
 * correction bias, `ffn.gate.bias` F32 [n_experts]; hash layers route by token id through
 * `ffn.gate.tid2eid` I64 [vocab, top-k] and have no bias (seed_pipelines.md §1.2). These rules
 * check where the tensors are, on canonical names: an on-disk `e_score_correction_bias` (failure
 * mode 14) is the names rules' to rename, and is seen here under its canonical name. The bias is
 * in the release's FP32 set, whose dtype and shape are fp32-dtype's (one defect, one rule);
 * tid2eid's storage and values are checked here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verify/vrules_util.h"

/* "layer 3" / "MTP block 0" of an inventory tensor. */
static char *where(const dsv4_inv_tensor *it, char *buf, size_t cap)
{
    if (it->mtp >= 0)
        snprintf(buf, cap, "MTP block %d", it->mtp);
    else
        snprintf(buf, cap, "layer %d", it->layer);
    return buf;
}

/* The shard for a new router tensor: the one holding its gate weight. */
static const char *near_gate(const dsv4_vctx *v, const dsv4_inv_tensor *it, char *buf, size_t cap)
{
    size_t l = strlen(it->name), k = strlen(strrchr(it->name, '.'));
    snprintf(buf, cap, "%.*s.weight", (int)(l - k), it->name);
    return vr_art(v, buf) ? buf : NULL;
}

/* Checks one expected tensor: present (unless the index places it in an unreadable shard) and,
 * with `storage`, its dtype and shape and the extra check `bad_values`; repairs from the source. */
static void expect(dsv4_vctx *v, const dsv4_inv_tensor *it, const char *role_note, int storage,
                   int (*bad_values)(const dsv4_vctx *, const dsv4_tensor *, char *, size_t))
{
    const dsv4_tensor *t = vr_art(v, it->name);
    char want[128], got[128], loc[48], problem[400] = "";
    where(it, loc, sizeof loc);
    if (!t && vr_unreadable(v, it->name, 0))
        return;
    if (!t)
        snprintf(problem, sizeof problem, "missing (expected %s on %s%s)", vr_inv_desc(it, want, sizeof want), loc,
                 role_note);
    else if (!storage)
        return;
    else if (t->dtype != it->dtype || !vr_shape_is(t, it))
        snprintf(problem, sizeof problem, "expected %s (%s%s), found %s", vr_inv_desc(it, want, sizeof want), loc,
                 role_note, vr_desc(t, got, sizeof got));
    else if (!bad_values || !bad_values(v, t, problem, sizeof problem))
        return;
    vr_out out[2];
    int n;
    char why[600], note[700] = "", near[DSV4_NAME_MAX];
    if (vr_from_source(v, it, VR_POLICY_COPY, out, &n, why, sizeof why) ||
        vr_replace(v, NULL, out, n, near_gate(v, it, near, sizeof near), "insert the source's tensor"))
        snprintf(note, sizeof note, "; %s", why);
    dsv4_vctx_fail(v, "%s: %s%s", it->name, problem, note);
}

/* Artifact tensors named `*.<suffix>` that the inventory does not list: dropped. */
static void unexpected(dsv4_vctx *v, const char *suffix, const char *which)
{
    for (size_t i = 0; i < v->art.n; i++) {
        const char *name = v->art.v[i].name;
        if (!vr_ends(name, suffix) || dsv4_inventory_find(v->inv, name))
            continue;
        int layer = vr_starts(name, "layers.") ? atoi(name + 7) : -1;
        char why[200];
        if (layer >= 0 && layer < v->model->n_layers && vr_starts(name + 7 + strcspn(name + 7, "."), ".ffn."))
            snprintf(why, sizeof why, "layer %d is %s", layer, v->model->is_hash[layer] ? "a hash layer" : "not a hash layer");
        else
            snprintf(why, sizeof why, "no layer of the config has it");
        dsv4_vctx_fail(v, "%s: present, but %s (only %s have %s)", name, why, which, suffix + 1);
        vr_drop(v, name, "not part of the release layout");
    }
}

static void run_bias(dsv4_vctx *v, const dsv4_rule *self)
{
    if (!vr_need_inv(v))
        return;
    for (size_t i = 0; i < v->inv->n; i++) {
        const dsv4_inv_tensor *it = &v->inv->t[i];
        char prefix[32];
        snprintf(prefix, sizeof prefix, "mtp.%d.", it->mtp);
        if (it->role != DSV4_ROLE_GATE_BIAS || (it->mtp >= 0 && !vr_art_has_prefix(v, prefix)))
            continue; /* an MTP block missing as a whole is mtp-present's */
        expect(v, it, ", a non-hash layer", 0, NULL);
    }
    unexpected(v, ".ffn.gate.bias", "non-hash layers and MTP blocks");
}

/* tid2eid maps a token to expert ids: every value in [0, n_routed_experts). */
static int bad_ids(const dsv4_vctx *v, const dsv4_tensor *t, char *buf, size_t cap)
{
    uint64_t n = dsv4_tensor_numel(t), bad = 0, first = 0;
    int64_t first_v = 0, e = v->model->n_routed_experts;
    for (uint64_t i = 0; i < n; i++) {
        int64_t x;
        memcpy(&x, t->data + 8 * i, 8);
        if ((x < 0 || x >= e) && bad++ == 0) {
            first = i;
            first_v = x;
        }
    }
    if (!bad)
        return 0;
    snprintf(buf, cap, "%llu of %llu expert ids outside [0, %lld) (first at index %llu: %lld)",
             (unsigned long long)bad, (unsigned long long)n, (long long)e, (unsigned long long)first,
             (long long)first_v);
    return 1;
}

static void run_tid2eid(dsv4_vctx *v, const dsv4_rule *self)
{
    if (!vr_need_inv(v))
        return;
    for (size_t i = 0; i < v->inv->n; i++)
        if (v->inv->t[i].role == DSV4_ROLE_TID2EID)
            expect(v, &v->inv->t[i], ", a hash layer", 1, bad_ids);
    unexpected(v, ".ffn.gate.tid2eid", "hash layers");
}

static const dsv4_rule GATE_BIAS = {
    "router-gate-bias", "ffn.gate.bias on every non-hash layer and MTP block, nowhere else",
    "layers.N.ffn.gate.bias (F32 [n_routed_experts]) is present on every non-hash layer and MTP block and absent on "
    "hash layers (names are canonical: an e_score_correction_bias is judged under its release name; its dtype and "
    "shape are fp32-dtype's).",
    DSV4_SEV_ERROR, 0, "insert the missing bias from the source (needs --source); drop a bias on a hash layer",
    run_bias};
static const dsv4_rule TID2EID = {
    "router-tid2eid", "ffn.gate.tid2eid on every hash layer, nowhere else",
    "layers.N.ffn.gate.tid2eid is I64 [vocab_size, num_experts_per_tok] with expert ids in [0, n_routed_experts) "
    "on every hash layer and absent elsewhere.",
    DSV4_SEV_ERROR, 0, "insert the missing or malformed table from the source (needs --source); drop it elsewhere",
    run_tid2eid};

const dsv4_rule *const dsv4_rules_router[] = {&GATE_BIAS, &TID2EID, NULL};
