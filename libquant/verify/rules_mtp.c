/* Rules: the MTP block (seed_pipelines.md §3.6, §3.12, §9.3; failure modes 1, 2, 3, 6, 20-22).
 * The artifact's MTP policy (vrules_util.h) is what dsv4-quant writes: a compressed-tensors or a
 * plain BF16 artifact holds every MTP linear dequantized to BF16 with no quantization suffix under
 * `mtp.` and the rest copied; a native artifact keeps the MTP bytes as the source has them. Repairs
 * re-insert tensors from the source in that policy, so a repaired block is byte-identical to
 * dsv4-quant's. The aliases `mtp.N.head.weight` / `mtp.N.emb.tok_emb.weight` are copies of the
 * artifact's own head / embed; dsv4-quant leaves them out when its recipe says `mtp.aliases: false`
 * (bf16.yaml), which config.json records only through the recipe path and hash of its provenance
 * block (or an explicit `dsv4_provenance.mtp_aliases`), and this rule honours both. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recipe/modules.h"
#include "verify/vrules_util.h"

/* 1 when the rule applies: a model config with at least one MTP block. */
static int need_mtp(dsv4_vctx *v)
{
    if (!vr_need_inv(v))
        return 0;
    if (v->model->n_mtp >= 1)
        return 1;
    dsv4_vctx_skip(v, "the config has no MTP block (num_nextn_predict_layers 0)");
    return 0;
}

/* 1 when the artifact holds some mtp.* tensor; else records the skip (mtp-present's defect). */
static int need_art_mtp(dsv4_vctx *v)
{
    if (vr_art_has_prefix(v, "mtp."))
        return 1;
    dsv4_vctx_skip(v, "the artifact holds no mtp.* tensor (mtp-present reports it)");
    return 0;
}

static int mtp_tensor(const dsv4_inv_tensor *it)
{
    return it->is_mtp && it->role != DSV4_ROLE_SCALE;
}

/* The artifact's entry for an inventory tensor: its module for a `.weight`, else its own entry. */
static const dsv4_amod *art_entry(const dsv4_vctx *v, const char *name)
{
    char module[DSV4_NAME_MAX];
    return dsv4_side_module(&v->art, vr_module_of(name, module, sizeof module) ? module : name);
}

/* Any part beyond `.weight`: a quantization suffix vLLM's MTP detector (#43319) may see. */
static int quantized(const dsv4_amod *m)
{
    for (int p = 0; p < DSV4_PART_COUNT; p++)
        if (p != DSV4_PART_WEIGHT && m->part[p])
            return 1;
    return 0;
}

/* Replaces what the artifact holds for `it` by the policy's tensors from the source. */
static int reinsert(dsv4_vctx *v, const dsv4_inv_tensor *it, vr_policy pol, const char *near, const char *line,
                    char *why, size_t cap)
{
    vr_out out[2];
    int n;
    if (vr_from_source(v, it, pol, out, &n, why, cap))
        return -1;
    if (vr_replace(v, art_entry(v, it->name), out, n, near, line)) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    return 0;
}

/* Re-inserts, in the artifact's policy, the MTP inventory tensors `want` selects; `note` gets
 * "; <why>" when the repair is not available. Every tensor is checked first, so a block is
 * repaired whole or not at all. */
static void repair(dsv4_vctx *v, int (*want)(dsv4_vctx *, const dsv4_inv_tensor *, vr_policy), const char *line,
                   char *note, size_t cap)
{
    char pol_why[300], why[600] = "";
    vr_policy pol = vr_mtp_policy(v, pol_why, sizeof pol_why);
    vr_out out[2];
    int n, ok = 1;
    note[0] = 0;
    for (size_t i = 0; ok && i < v->inv->n; i++)
        if (mtp_tensor(&v->inv->t[i]) && want(v, &v->inv->t[i], pol))
            ok = vr_from_source(v, &v->inv->t[i], pol, out, &n, why, sizeof why) == 0;
    if (!ok) {
        snprintf(note, cap, "; %s%s%s", why, pol == VR_POLICY_NONE ? ": " : "", pol == VR_POLICY_NONE ? pol_why : "");
        return;
    }
    const char *near = vr_mtp_near(v);
    char full[400];
    snprintf(full, sizeof full, "%s (%s)", line, pol_why);
    for (size_t i = 0; i < v->inv->n; i++)
        if (mtp_tensor(&v->inv->t[i]) && want(v, &v->inv->t[i], pol) &&
            reinsert(v, &v->inv->t[i], pol, near, full, why, sizeof why)) {
            snprintf(note, cap, "; %s", why);
            return;
        }
}

static int every(dsv4_vctx *v, const dsv4_inv_tensor *it, vr_policy pol)
{
    return 1;
}

static void run_present(dsv4_vctx *v, const dsv4_rule *self)
{
    if (!need_mtp(v) || vr_art_has_prefix(v, "mtp."))
        return;
    if (vr_unreadable(v, "mtp.", 1)) {
        dsv4_vctx_skip(v, "the index places mtp.* tensors in a shard that cannot be read (shards-readable reports it)");
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < v->inv->n; i++)
        n += v->inv->t[i].is_mtp;
    char note[900], why[700];
    repair(v, every, "insert the MTP block from the source", note, sizeof note);
    if (!note[0] && !vr_aliases_omitted(v, why, sizeof why)) {
        /* dsv4-quant writes the aliases with the block: copies of head / embed. */
        static const char *const pairs[2][2] = {{"head.weight", "head.weight"}, {"emb.tok_emb.weight", "embed.weight"}};
        for (int b = 0; b < v->model->n_mtp; b++)
            for (int k = 0; k < 2; k++) {
                const dsv4_tensor *o = vr_art(v, pairs[k][1]);
                char alias[64], line[96];
                snprintf(alias, sizeof alias, "mtp.%d.%s", b, pairs[k][0]);
                snprintf(line, sizeof line, "MTP alias: copy of the artifact's %s", pairs[k][1]);
                if (o)
                    vr_put(v, alias, o->dtype, o->ndim, o->shape, DSV4_PRODUCE_COPY, o, NULL, vr_mtp_near(v), line);
            }
    }
    dsv4_vctx_fail(v, "num_nextn_predict_layers is %d but the artifact holds no mtp.* tensor (the release layout has "
                   "%zu; transformers drops mtp.* at load, failure mode 1)%s", v->model->n_mtp, n, note);
}

/* Why the artifact's entry for `it` is incomplete ("" when it is fine). */
static const char *incomplete(const dsv4_vctx *v, const dsv4_inv_tensor *it, char *buf, size_t cap)
{
    const dsv4_amod *m = art_entry(v, it->name);
    char want[128], scale[128];
    buf[0] = 0;
    if (!m && vr_unreadable(v, it->name, 0))
        return buf; /* unreadable, not missing: shards-readable's */
    if (!m) {
        vr_inv_desc(it, want, sizeof want);
        if (it->pair >= 0)
            snprintf(buf, cap, "missing (the release stores %s + .scale %s)", want,
                     vr_inv_desc(&v->inv->t[it->pair], scale, sizeof scale));
        else
            snprintf(buf, cap, "missing (the release stores %s)", want);
    } else if (m->form == DSV4_QF_BROKEN) {
        snprintf(buf, cap, "stored in no complete form: %s", m->why);
    }
    return buf;
}

static int is_incomplete(dsv4_vctx *v, const dsv4_inv_tensor *it, vr_policy pol)
{
    char buf[400];
    return incomplete(v, it, buf, sizeof buf)[0] != 0;
}

static void run_complete(dsv4_vctx *v, const dsv4_rule *self)
{
    if (!need_mtp(v) || !need_art_mtp(v))
        return;
    char note[900];
    repair(v, is_incomplete, "insert the missing MTP tensor from the source", note, sizeof note);
    for (int b = 0; b < v->model->n_mtp; b++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "mtp.%d.", b);
        if (!vr_art_has_prefix(v, prefix) && !vr_unreadable(v, prefix, 1)) {
            dsv4_vctx_fail(v, "%s*: the whole MTP block %d is missing%s", prefix, b, note);
            continue;
        }
        for (size_t i = 0; i < v->inv->n; i++) {
            const dsv4_inv_tensor *it = &v->inv->t[i];
            char why[400];
            if (mtp_tensor(it) && it->mtp == b && incomplete(v, it, why, sizeof why)[0])
                dsv4_vctx_fail(v, "%s: %s%s", it->name, why, note);
        }
    }
}

/* The MTP linears: modules under mtp. that vLLM builds with a quantization method, and any other
 * module carrying quantization parts. */
static int mtp_linear(const dsv4_amod *m)
{
    return m->is_module && vr_starts(m->module, "mtp.") &&
           (dsv4_module_kind(m->module) == DSV4_MOD_QLINEAR || quantized(m));
}

/* Under the artifact's policy, 1 when the module's quantization state is not the policy's. */
static int off_policy(dsv4_vctx *v, const dsv4_inv_tensor *it, vr_policy pol)
{
    char module[DSV4_NAME_MAX];
    const dsv4_amod *m = vr_module_of(it->name, module, sizeof module) ? dsv4_side_module(&v->art, module) : NULL;
    if (!m || !mtp_linear(m))
        return 0;
    if (pol != VR_POLICY_COPY)
        return quantized(m);
    const dsv4_amod *sm = v->have_src ? dsv4_side_module(&v->src, module) : NULL;
    return sm && quantized(sm) != quantized(m);
}

static void run_all_or_nothing(dsv4_vctx *v, const dsv4_rule *self)
{
    if (!need_mtp(v) || !need_art_mtp(v))
        return;
    size_t n_lin = 0, n_q = 0;
    const dsv4_amod *q = NULL, *plain = NULL;
    for (size_t i = 0; i < v->art.st.n; i++) {
        const dsv4_amod *m = &v->art.st.m[i];
        if (!mtp_linear(m))
            continue;
        n_lin++;
        if (quantized(m)) {
            n_q++;
            q = q ? q : m;
        } else {
            plain = plain ? plain : m;
        }
    }
    if (!n_q || n_q == n_lin)
        return;
    char note[900];
    repair(v, off_policy, "bring the MTP block to one quantization state", note, sizeof note);
    dsv4_vctx_fail(v, "%zu of %zu MTP linears are quantized (e.g. %s: %s) and %zu are not (e.g. %s: %s): vLLM's MTP "
                   "detector (#43319) decides for the whole block from the index suffixes, so part of the block loads "
                   "with the wrong method%s", n_q, n_lin, q->module, dsv4_qform_name(q->form), n_lin - n_q,
                   plain->module, dsv4_qform_name(plain->form), note);
}

/* The main-layer module with the same role as an MTP module (`mtp.0.ffn.experts.3.w1` ->
 * `layers.L.ffn.experts.3.w1` for the first L that has it), or NULL. */
static const dsv4_amod *main_twin(const dsv4_vctx *v, const dsv4_amod *m)
{
    const char *rest = strchr(m->module + 4, '.');
    for (int l = 0; rest && l < v->model->n_layers; l++) {
        char name[DSV4_NAME_MAX];
        snprintf(name, sizeof name, "layers.%d%s", l, rest);
        const dsv4_amod *t = dsv4_side_module(&v->art, name);
        if (t)
            return t;
    }
    return NULL;
}

static void run_quantized(dsv4_vctx *v, const dsv4_rule *self)
{
    if (!need_mtp(v))
        return;
    static const dsv4_part detector[] = {DSV4_PART_WEIGHT_SCALE, DSV4_PART_SCALE_INV, DSV4_PART_PACKED,
                                         DSV4_PART_GLOBAL, DSV4_PART_INPUT_GLOBAL, DSV4_PART_ZERO_POINT};
    size_t n_q = 0, n_twins = 0, n_same = 0;
    int seen = 0, dot_scale = 0;
    const dsv4_amod *first = NULL, *twin_m = NULL, *twin = NULL;
    for (size_t i = 0; i < v->art.st.n; i++) {
        const dsv4_amod *m = &v->art.st.m[i];
        if (!vr_starts(m->module, "mtp.") || !quantized(m))
            continue;
        n_q++;
        first = first ? first : m;
        for (size_t k = 0; k < sizeof detector / sizeof *detector; k++)
            seen |= m->part[detector[k]] != NULL;
        dot_scale |= m->part[DSV4_PART_SCALE] != NULL;
        const dsv4_amod *t = main_twin(v, m);
        if (t && dsv4_qform_is_quantized(m->form)) {
            n_twins++;
            if (t->form == m->form) {
                n_same++;
                twin_m = twin_m ? twin_m : m;
                twin = twin ? twin : t;
            }
        }
    }
    if (!n_q)
        return;
    dsv4_vctx_fail(v, "%zu MTP modules are quantized (e.g. %s: %s): loading them needs vLLM #43319, whose detector "
                   "builds the MTP tower with the quantization config only when it finds a quantization suffix under "
                   "mtp.* in the index (.weight_scale, .weight_scale_inv, .weight_packed, .weight_global_scale, "
                   ".input_global_scale, .weight_zero_point; .scale only after C's fix)", n_q, first->module,
                   dsv4_qform_name(first->form));
    if (!seen && dot_scale)
        dsv4_vctx_fail(v, "failure mode 22: the MTP block is quantized with native .scale names only; #43319's detector "
                       "without C's fix ignores .scale and builds the tower unquantized (KeyError "
                       "'model.layers.N.e_proj.weight_scale_inv', or 2.6-3.3%% acceptance)");
    if (n_same)
        dsv4_vctx_fail(v, "failure mode 20: %zu of %zu quantized MTP linears are stored like their main-layer "
                       "counterparts (e.g. %s and %s are both %s), so the draft inherits the main scheme; vLLM without "
                       "#43319 builds it wrongly (KeyError: model.layers.N.mtp_block.ffn.experts.w13_weight, "
                       "AttributeError: ColumnParallelLinear has no attribute weight_scale)", n_same, n_twins,
                       twin_m->module, twin->module, dsv4_qform_name(twin->form));
    for (int b = 0; b < v->model->n_mtp; b++) {
        char name[48];
        snprintf(name, sizeof name, "mtp.%d.attn.wo_a", b);
        const dsv4_amod *m = dsv4_side_module(&v->art, name);
        if (m && m->form == DSV4_QF_PLAIN)
            dsv4_vctx_fail(v, "failure mode 21: %s is BF16 while the MTP block is quantized: vLLM's attention needs "
                           "its BF16 wo_a path (#43319 / patch_wo_a_bf16_path), else AttributeError in the forward",
                           name);
    }
}

static void run_matches(dsv4_vctx *v, const dsv4_rule *self)
{
    if (!need_mtp(v) || !need_art_mtp(v))
        return;
    char pol_why[300], line[400];
    vr_policy pol = vr_mtp_policy(v, pol_why, sizeof pol_why);
    snprintf(line, sizeof line, "re-insert the source's values (%s)", pol_why);
    const char *near = vr_mtp_near(v);
    size_t n_same = 0, n_other = 0;
    char other[600] = "";
    for (size_t i = 0; i < v->inv->n; i++) {
        const dsv4_inv_tensor *it = &v->inv->t[i];
        const dsv4_amod *m = mtp_tensor(it) ? art_entry(v, it->name) : NULL;
        if (!m)
            continue; /* missing: mtp-complete's */
        char msg[600], why[600], note[640] = "";
        int rc = vr_compare_source(v, it, m, msg, sizeof msg);
        if (rc == 1) {
            n_same++;
        } else if (rc < 0) {
            if (n_other++ == 0)
                snprintf(other, sizeof other, "%.200s: %.380s", it->name, msg);
        } else {
            if (reinsert(v, it, pol, near, line, why, sizeof why))
                snprintf(note, sizeof note, "; %s", why);
            dsv4_vctx_fail(v, "%s: %s (failure mode 2: an MTP block not converted from the source)%s", it->name, msg,
                           note);
        }
    }
    if (n_other)
        dsv4_vctx_skip(v, "%zu MTP tensors not comparable with the source (e.g. %s); %zu equal", n_other, other, n_same);
}

/* Checks one alias against its original; repairs with a copy of the original. */
static int check_alias(dsv4_vctx *v, const char *alias, const char *orig, int omitted, const char *note,
                       const char *near)
{
    const dsv4_tensor *a = vr_art(v, alias), *o = vr_art(v, orig);
    char d[128], od[128], problem[1100];
    vr_cmp c;
    if (!a && (omitted || vr_unreadable(v, alias, 0)))
        return 0;
    if (!a)
        snprintf(problem, sizeof problem, "missing: vLLM builds without #43459 leave the MTP %s uninitialized "
                 "(0%% acceptance, no error; failure mode 6)%s", vr_ends(orig, "head.weight") ? "head" : "embedding", note);
    else if (!o)
        snprintf(problem, sizeof problem, "present, but the artifact has no %s to compare it with", orig);
    else if (a->ndim != o->ndim || memcmp(a->shape, o->shape, sizeof a->shape[0] * (size_t)a->ndim))
        snprintf(problem, sizeof problem, "%s, but %s is %s", vr_desc(a, d, sizeof d), orig, vr_desc(o, od, sizeof od));
    else if (vr_compare(a->data, a->dtype, o->data, o->dtype, dsv4_tensor_numel(a), &c))
        snprintf(problem, sizeof problem, "%s cannot be compared with %s (%s)", vr_desc(a, d, sizeof d), orig,
                 vr_desc(o, od, sizeof od));
    else if (c.n_diff) {
        char diff[200];
        snprintf(problem, sizeof problem, "%s differs from %s (%s, cast to the alias's dtype) %s (failure mode 6)",
                 vr_desc(a, d, sizeof d), orig, vr_desc(o, od, sizeof od),
                 vr_cmp_str(&c, dsv4_tensor_numel(a), diff, sizeof diff));
    } else
        return 0;
    if (o) {
        char line[200];
        snprintf(line, sizeof line, "copy of the artifact's %s", orig);
        vr_put(v, alias, o->dtype, o->ndim, o->shape, DSV4_PRODUCE_COPY, o, NULL, a ? NULL : near, line);
    } else if (!a) {
        snprintf(problem + strlen(problem), sizeof problem - strlen(problem), "; no repair: the artifact has no %s", orig);
    }
    dsv4_vctx_fail(v, "%s: %s", alias, problem);
    return 1;
}

static void run_aliases(dsv4_vctx *v, const dsv4_rule *self)
{
    if (!need_mtp(v) || !need_art_mtp(v))
        return;
    static const char *const pairs[2][2] = {{"head.weight", "head.weight"}, {"emb.tok_emb.weight", "embed.weight"}};
    char why[700];
    int omitted = vr_aliases_omitted(v, why, sizeof why);
    const char *near = vr_mtp_near(v);
    size_t n_absent = 0;
    for (int b = 0; b < v->model->n_mtp; b++)
        for (int k = 0; k < 2; k++) {
            char alias[64];
            snprintf(alias, sizeof alias, "mtp.%d.%s", b, pairs[k][0]);
            n_absent += !vr_art(v, alias);
            check_alias(v, alias, pairs[k][1], omitted, omitted ? "" : why, near);
        }
    if (omitted && n_absent)
        dsv4_vctx_skip(v, "the artifact leaves the aliases out on purpose: %s", why);
}

static const dsv4_rule PRESENT = {
    "mtp-present", "the MTP block the config declares is in the artifact",
    "When num_nextn_predict_layers >= 1, the artifact holds mtp.* tensors (failure mode 1: transformers drops them "
    "at load).",
    DSV4_SEV_ERROR, 0,
    "insert the whole MTP block from the source in the artifact's MTP policy, with the aliases unless dsv4-quant's "
    "recipe left them out (needs --source)",
    run_present};
static const dsv4_rule COMPLETE = {
    "mtp-complete", "every tensor of each MTP block is present",
    "Each tensor the release layout has in mtp.N is in the artifact (weights in any complete storage form; a module "
    "whose parts make no form counts as incomplete).",
    DSV4_SEV_ERROR, 0, "insert the missing tensors from the source in the artifact's MTP policy (needs --source)",
    run_complete};
static const dsv4_rule ALL_OR_NOTHING = {
    "mtp-quant-all-or-nothing", "the MTP linears are all quantized or none",
    "Either no MTP module carries a quantization part or every MTP linear does: vLLM #43319 decides for the whole "
    "block from the index suffixes (.weight_scale, .weight_scale_inv, .weight_packed, .weight_global_scale, "
    ".input_global_scale, .weight_zero_point, .scale).",
    DSV4_SEV_ERROR, 0,
    "re-insert the off-policy modules from the source (compressed-tensors / BF16 artifact: every MTP linear BF16, no "
    "quantization part under mtp.; native artifact: the source's bytes)",
    run_all_or_nothing};
static const dsv4_rule QUANTIZED = {
    "mtp-quantized", "the MTP block is not quantized",
    "Warns when any MTP module is quantized, naming the vLLM behaviour that load depends on: #43319's detector "
    "(failure mode 20), native .scale naming it misses (22), a BF16 wo_a next to quantized MTP layers (21).",
    DSV4_SEV_WARNING, 0, NULL, run_quantized};
static const dsv4_rule MATCHES = {
    "mtp-matches-source", "the MTP block equals the source",
    "Every MTP tensor is bit-equal to the source where stored as the source stores it, or equal to the source's "
    "BF16 dequantization (plain BF16 weights of FP8/FP4 source weights); quantized MTP storage is not compared "
    "(failure mode 2: random-init MTP).",
    DSV4_SEV_ERROR, 1, "re-insert the differing tensors from the source in the artifact's MTP policy", run_matches};
static const dsv4_rule ALIASES = {
    "mtp-aliases", "mtp.N.head.weight and mtp.N.emb.tok_emb.weight are copies of head and embed",
    "For each MTP block, mtp.N.head.weight and mtp.N.emb.tok_emb.weight are present with the shapes of head.weight "
    "and embed.weight and equal to them after a dtype cast (failure mode 6), unless dsv4-quant's recipe left them "
    "out on purpose.",
    DSV4_SEV_ERROR, 0, "insert or replace the alias with a copy of the artifact's head.weight / embed.weight",
    run_aliases};

const dsv4_rule *const dsv4_rules_mtp[] = {&PRESENT, &COMPLETE, &ALL_OR_NOTHING, &MATCHES, &ALIASES, &QUANTIZED,
                                           NULL};
