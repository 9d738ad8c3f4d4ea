/* Rules: a compressed-tensors quantization_config simulated against vLLM's module names
 * (seed_pipelines §1.5, §3.12, §4.1-4.3; failure modes 7, 8, 9, 20, 24). The truth is the scheme
 * each linear layer is stored in (vt_schemes.h); the config must make vLLM build every stored-
 * quantized layer with a group whose weights args fit it and every unquantized one (ULINEAR
 * layers, a BF16 MTP block) unquantized. vt_targets.h holds the simulation; vt_regen.h the repair
 * (targets and ignore regenerated as dsv4-quant writes them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verify/vt_fused.h"
#include "verify/vt_regen.h"
#include "verify/vt_targets.h"

/* The shared view (vctx.h: built by the first targets rule), or NULL after recording why the rule
 * cannot run. */
static const dsv4_vt_view *open_view(dsv4_vctx *v)
{
    if (!v->targets_view_built) {
        v->targets_view_built = 1;
        v->targets_view = calloc(1, sizeof *v->targets_view);
        v->targets_view_rc = v->targets_view ? dsv4_vt_view_open(v, v->targets_view, v->targets_view_why,
                                                                 sizeof v->targets_view_why)
                                             : -1;
        if (v->targets_view_rc) {
            free(v->targets_view);
            v->targets_view = NULL;
        }
    }
    if (v->targets_view_rc > 0)
        dsv4_vctx_skip(v, "%s", v->targets_view_why);
    else if (v->targets_view_rc < 0)
        dsv4_vctx_fail(v, "out of memory while simulating the quantization_config");
    return v->targets_view;
}

/* After a failure: add the regenerated targets, or say why there is no repair. */
static void regen_fix(dsv4_vctx *v, const dsv4_vt_view *w)
{
    char why[600];
    if (v->cur && v->cur->status != DSV4_RS_FAIL)
        return;
    int n = dsv4_vt_regen_fix(v, w, why, sizeof why);
    if (n < 0)
        dsv4_vctx_fail(v, "out of memory while regenerating the targets");
    else if (n == 0)
        dsv4_vctx_skip(v, "no automatic fix: %s", why);
}

static const char *args_str(const dsv4_vt_group *g, char *buf, size_t cap)
{
    if (g->args.kind == DSV4_VT_UNKNOWN)
        snprintf(buf, cap, "unrecognized args: %s", g->args_why);
    else
        dsv4_vt_scheme_str(g->args, buf, cap);
    return buf;
}

/* The transformers name of a linear matching `p` (and no vLLM name), or NULL. */
static const char *hf_match(const dsv4_vt_view *w, const dsv4_vt_pat *p, char *buf, size_t cap)
{
    for (size_t i = 0; i < w->n_names; i++)
        if (dsv4_vt_pat_match(p, w->names[i].name))
            return NULL;
    for (size_t i = 0; i < w->n_lin; i++)
        if (w->lin[i].m && dsv4_module_hf_name(w->lin[i].module, buf, cap) == 0 && dsv4_vt_pat_match(p, buf))
            return buf;
    return NULL;
}

/* ---- targets-release-names ---- */

static void check_hf_list(dsv4_vctx *v, const dsv4_vt_view *w, const dsv4_vt_pat *p, size_t n, const char *where)
{
    char hf[DSV4_NAME_MAX];
    for (size_t i = 0; i < n; i++)
        if (hf_match(w, &p[i], hf, sizeof hf))
            dsv4_vctx_fail(v, "%s[%zu] \"%s\" is written in transformers names: it matches %s but none of the "
                           "names vLLM builds DeepSeek-V4 with (model.layers.N.attn.*, ...ffn.experts.E.gate_proj, "
                           "...)", where, i, p[i].text, hf);
}

static void run_release_names(dsv4_vctx *v, const dsv4_rule *self)
{
    (void)self;
    const dsv4_vt_view *w = open_view(v);
    if (!w)
        return;
    for (size_t k = 0; k < w->n_groups; k++) {
        char where[160];
        snprintf(where, sizeof where, "config_groups.%.100s.targets", w->g[k].key);
        check_hf_list(v, w, w->g[k].pat, w->g[k].n, where);
    }
    check_hf_list(v, w, w->ignore, w->n_ignore, "ignore");
    regen_fix(v, w);
}

/* ---- targets-match-vllm ---- */

/* One problem of a name, or 0 when vLLM builds it as stored. */
static int name_problem(const dsv4_vt_view *w, const dsv4_vt_name *x, char *out, size_t cap)
{
    const dsv4_vt_linear *l = &w->lin[x->lin];
    char s[64], a[400], gm[200];
    uint64_t hits = dsv4_vt_groups_hit(w, x->name);
    long ign = dsv4_vt_ignore_hit(w, x->name);
    dsv4_vt_scheme_str(l->stored, s, sizeof s);
    if (!x->quantized) {
        if (!hits || ign >= 0) /* vLLM checks ignore first: ignored is unquantized (overlap has its own rule) */
            return 0;
        int k = dsv4_vt_first_bit(hits);
        snprintf(out, cap, "%s (%s, stored %s) is matched by %s target \"%s\": vLLM would build it %s and find "
                 "no such tensors", x->name, l->module, s, w->g[k].key,
                 w->g[k].pat[dsv4_vt_group_hit(&w->g[k], x->name)].text, args_str(&w->g[k], a, sizeof a));
        return 1;
    }
    if (!x->required && (!hits || (dsv4_vt_popcount(hits) == 1 && (hits & x->fit))))
        return 0;
    if (ign >= 0 && x->required) {
        snprintf(out, cap, "%s (%s, stored %s) is matched by ignore entry \"%s\": vLLM builds it unquantized",
                 x->name, l->module, s, w->ignore[ign].text);
        return 1;
    }
    if (!hits) {
        snprintf(out, cap, "%s (%s, stored %s) is matched by no target: vLLM builds it unquantized and cannot "
                 "load its weights", x->name, l->module, s);
        return 1;
    }
    if (dsv4_vt_popcount(hits) > 1) {
        snprintf(out, cap, "%s (%s, stored %s) is matched by the targets of %s: exactly one group must match (vLLM "
                 "silently takes the first)", x->name, l->module, s, dsv4_vt_mask_str(w, hits, gm, sizeof gm));
        return 1;
    }
    if (!(hits & x->fit)) {
        int k = dsv4_vt_first_bit(hits);
        snprintf(out, cap, "%s (%s) is matched by %s, whose weights are %s, but it is stored %s", x->name, l->module,
                 w->g[k].key, args_str(&w->g[k], a, sizeof a), s);
        return 1;
    }
    return 0;
}

static void run_match_vllm(dsv4_vctx *v, const dsv4_rule *self)
{
    (void)self;
    const dsv4_vt_view *w = open_view(v);
    if (!w)
        return;
    char *done = calloc(w->n_lin ? w->n_lin : 1, 1);
    if (!done) {
        dsv4_vctx_fail(v, "out of memory");
        return;
    }
    if (!w->n_groups)
        dsv4_vctx_fail(v, "quantization_config has no config_groups although the quant_method is compressed-tensors");
    for (size_t i = 0; i < w->n_lin; i++) {
        const dsv4_vt_linear *l = &w->lin[i];
        char s[64], gs[600] = "";
        if (!l->m || l->stored.kind == DSV4_VT_UNQUANT || l->stored.kind == DSV4_VT_UNKNOWN || l->fit)
            continue;
        for (size_t k = 0; k < w->n_groups; k++) {
            char a[400];
            snprintf(gs + strlen(gs), sizeof gs - strlen(gs), "%s%s: %s", k ? "; " : "", w->g[k].key,
                     args_str(&w->g[k], a, sizeof a));
        }
        dsv4_vctx_fail(v, "%s is stored %s, but no config group's weights describe that (%s)", l->module,
                       dsv4_vt_scheme_str(l->stored, s, sizeof s), gs[0] ? gs : "no groups");
        done[i] = 1;
    }
    for (size_t i = 0; i < w->n_names; i++) {
        const dsv4_vt_name *x = &w->names[i];
        char msg[1200];
        if (x->conflict || done[x->lin] || (x->quantized && !x->fit))
            continue;
        if (name_problem(w, x, msg, sizeof msg)) {
            dsv4_vctx_fail(v, "%s", msg);
            done[x->lin] = 1;
        }
    }
    free(done);
    regen_fix(v, w);
}

/* ---- targets-mtp ---- */

static void run_mtp(dsv4_vctx *v, const dsv4_rule *self)
{
    (void)self;
    const dsv4_vt_view *w = open_view(v);
    if (!w)
        return;
    /* A compressed-tensors artifact's MTP block is BF16 by policy (vt_targets: a quantized one is the
     * mtp rules' defect), so no target may reach it. */
    size_t present = 0;
    for (size_t i = 0; i < w->n_lin; i++)
        present += w->lin[i].is_mtp && w->lin[i].m;
    if (!v->model->n_mtp || !present)
        dsv4_vctx_skip(v, "no MTP block (%s)", v->model->n_mtp ? "the artifact has no mtp.* linear layers"
                                                                : "num_nextn_predict_layers is 0");
    else {
        char *done = calloc(w->n_lin, 1);
        for (size_t i = 0; done && i < w->n_names; i++) {
            const dsv4_vt_name *x = &w->names[i];
            uint64_t hits;
            if (!w->lin[x->lin].is_mtp || done[x->lin] || !(hits = dsv4_vt_groups_hit(w, x->name)))
                continue;
            const dsv4_vt_group *g = &w->g[dsv4_vt_first_bit(hits)];
            dsv4_vctx_fail(v, "%s target \"%s\" matches the MTP name %s (%s, stored BF16): the MTP block must "
                           "match no target (llm-compressor quantizes by targets whatever ignore says, "
                           "compressed-tensors #712; vLLM then expects quantized MTP weights)",
                           g->key, g->pat[dsv4_vt_group_hit(g, x->name)].text, x->name, w->lin[x->lin].module);
            done[x->lin] = 1;
        }
        if (!done)
            dsv4_vctx_fail(v, "out of memory");
        free(done);
        regen_fix(v, w);
    }
}

/* ---- targets-unused ---- */

static void run_unused(dsv4_vctx *v, const dsv4_rule *self)
{
    (void)self;
    const dsv4_vt_view *w = open_view(v);
    if (!w)
        return;
    for (size_t k = 0; k < w->n_groups; k++)
        for (size_t j = 0; j < w->g[k].n; j++) {
            const dsv4_vt_pat *p = &w->g[k].pat[j];
            char hf[DSV4_NAME_MAX];
            size_t i = 0;
            while (i < w->n_names && !dsv4_vt_pat_match(p, w->names[i].name))
                i++;
            if (i == w->n_names && !hf_match(w, p, hf, sizeof hf)) /* transformers-named: targets-release-names */
                dsv4_vctx_fail(v, "config_groups.%s.targets[%zu] \"%s\" matches none of the %zu names vLLM builds "
                               "the model's linear layers with", w->g[k].key, j, p->text, w->n_names);
        }
}

/* ---- targets-ignore-overlap ---- */

static void run_ignore_overlap(dsv4_vctx *v, const dsv4_rule *self)
{
    (void)self;
    const dsv4_vt_view *w = open_view(v);
    if (!w)
        return;
    for (size_t i = 0; i < w->n_ignore; i++)
        for (size_t k = 0; k < w->n_groups; k++)
            for (size_t j = 0; j < w->g[k].n; j++)
                if (!strcmp(w->ignore[i].text, w->g[k].pat[j].text))
                    dsv4_vctx_fail(v, "ignore[%zu] \"%s\" is also config_groups.%s.targets[%zu]", i,
                                   w->ignore[i].text, w->g[k].key, j);
    char *done = calloc(w->n_lin ? w->n_lin : 1, 1);
    for (size_t i = 0; done && i < w->n_names; i++) {
        const dsv4_vt_name *x = &w->names[i];
        long ign;
        uint64_t hits;
        if (done[x->lin] || w->lin[x->lin].is_mtp || (ign = dsv4_vt_ignore_hit(w, x->name)) < 0 ||
            !(hits = dsv4_vt_groups_hit(w, x->name)))
            continue; /* a target reaching the MTP block is targets-mtp's defect */
        const dsv4_vt_group *g = &w->g[dsv4_vt_first_bit(hits)];
        const char *t = g->pat[dsv4_vt_group_hit(g, x->name)].text;
        /* A class target ("Linear") with an ignore list is llm-compressor's usual form: ignore carves the
         * exceptions out of the class, it is not a double assignment. */
        if (strncmp(t, "re:", 3) && !strchr(t, '.'))
            continue;
        dsv4_vctx_fail(v, "%s (%s) is matched by both %s target \"%s\" and ignore entry \"%s\"", x->name,
                       w->lin[x->lin].module, g->key, t, w->ignore[ign].text);
        done[x->lin] = 1;
    }
    if (!done)
        dsv4_vctx_fail(v, "out of memory");
    free(done);
    regen_fix(v, w);
}

/* ---- targets-fused-halves ---- */

/* How the config treats a module under the name vLLM asks for: -1 ignored, else a group mask. */
static int64_t outcome(const dsv4_vt_view *w, const char *module, int expert_leaf)
{
    char name[DSV4_NAME_MAX + 32];
    if (dsv4_module_vllm_name(module, name, sizeof name))
        return 0;
    if (expert_leaf) { /* the MoE probe names: experts.E.gate_proj / up_proj */
        char *dot = strrchr(name, '.');
        snprintf(dot + 1, sizeof name - (size_t)(dot + 1 - name), "%s", expert_leaf == 1 ? "gate_proj" : "up_proj");
    }
    return dsv4_vt_ignore_hit(w, name) >= 0 ? -1 : (int64_t)dsv4_vt_groups_hit(w, name);
}

static const char *outcome_str(const dsv4_vt_view *w, int64_t o, char *buf, size_t cap)
{
    if (o < 0)
        return snprintf(buf, cap, "ignore"), buf;
    return dsv4_vt_mask_str(w, (uint64_t)o, buf, cap);
}

static void check_pair(dsv4_vctx *v, const dsv4_vt_view *w, const dsv4_vt_linear *a, const dsv4_amod *bm,
                       const char *fused, int expert)
{
    char sa[64], sb[64];
    dsv4_vt_scheme bs = dsv4_vt_stored(bm);
    if (a->is_mtp || a->kind == DSV4_MOD_ULINEAR)
        return; /* BF16 by policy: the mtp rules and compressor-unquantized own their storage */
    if (a->stored.kind == DSV4_VT_UNKNOWN || bs.kind == DSV4_VT_UNKNOWN)
        return; /* parts in no recognizable form: inventory-tensors reports them */
    if (!dsv4_vt_same(a->stored, bs)) {
        dsv4_vctx_fail(v, "%s is stored %s but %s is stored %s: vLLM fuses them into %s, which has one scheme",
                       a->module, dsv4_vt_scheme_str(a->stored, sa, sizeof sa), bm->module,
                       dsv4_vt_scheme_str(bs, sb, sizeof sb), fused);
        return;
    }
    int64_t oa = outcome(w, a->module, expert ? 1 : 0), ob = outcome(w, bm->module, expert ? 3 : 0);
    if (oa != ob)
        dsv4_vctx_fail(v, "%s is matched by %s but %s by %s: vLLM fuses them into %s, so both need the same group "
                       "(else \"Unable to find matching target\" or a scheme mismatch at load)", a->module,
                       outcome_str(w, oa, sa, sizeof sa), bm->module, outcome_str(w, ob, sb, sizeof sb), fused);
}

static void run_fused_halves(dsv4_vctx *v, const dsv4_rule *self)
{
    (void)self;
    const dsv4_vt_view *w = open_view(v);
    if (!w)
        return;
    for (size_t i = 0; i < w->n_lin; i++) {
        char other[DSV4_NAME_MAX], fused[DSV4_NAME_MAX + 64];
        int expert;
        const dsv4_amod *b;
        if (w->lin[i].m && dsv4_vt_fused_partner(w->lin[i].module, other, sizeof other, fused, sizeof fused, &expert) &&
            (b = dsv4_side_module(&v->art, other)) && b->is_module)
            check_pair(v, w, &w->lin[i], b, fused, expert);
    }
}

static const dsv4_rule RELEASE_NAMES = {
    "targets-release-names", "quantization_config targets are written in vLLM's names, not transformers'",
    "Every target and ignore entry either matches a name vLLM builds DeepSeek-V4 with or matches no "
    "transformers name of the model (model.layers.N.mlp.*, self_attn, gate_proj: mode 7, "
    "UnquantizedFusedMoEMethod then OOM).",
    DSV4_SEV_ERROR, 0,
    "regenerate config_groups[*].targets and ignore from the stored schemes, as dsv4-quant writes them",
    run_release_names};

static const dsv4_rule MATCH_VLLM = {
    "targets-match-vllm", "vLLM builds every linear layer in the scheme it is stored in",
    "Simulates vLLM: each stored-quantized layer's names (unfused, fused_wqa_wkv, compressor.fused_wkv_wgate, "
    "shared gate_up_proj, the MoE probe experts.E.gate_proj) are matched by the targets of exactly one group, "
    "not ignored, and that group's weights args fit the stored scheme; no target matches an unquantized layer "
    "(modes 7, 8).",
    DSV4_SEV_ERROR, 0,
    "regenerate config_groups[*].targets and ignore from the stored schemes, as dsv4-quant writes them",
    run_match_vllm};

static const dsv4_rule MTP = {
    "targets-mtp", "no target matches the BF16 MTP block",
    "With the MTP block stored BF16, no target matches any of its names: mtp.N.*, model.mtp.N.* and "
    "model.layers.<num_hidden_layers + N>.* (mode 20, compressed-tensors #712).",
    DSV4_SEV_ERROR, 0,
    "regenerate config_groups[*].targets and ignore from the stored schemes, as dsv4-quant writes them",
    run_mtp};

static const dsv4_rule UNUSED = {
    "targets-unused", "every target matches some layer",
    "Each config group target matches at least one name vLLM builds the model's linear layers with.",
    DSV4_SEV_WARNING, 0, NULL, run_unused};

static const dsv4_rule IGNORE_OVERLAP = {
    "targets-ignore-overlap", "no layer is both targeted and ignored",
    "No ignore entry equals a target, and no name vLLM builds is matched by both a target pattern and an "
    "ignore entry (mode 24); class targets such as \"Linear\" are narrowed by ignore, as llm-compressor means them.",
    DSV4_SEV_ERROR, 0,
    "regenerate config_groups[*].targets and ignore from the stored schemes, as dsv4-quant writes them",
    run_ignore_overlap};

static const dsv4_rule FUSED_HALVES = {
    "targets-fused-halves", "the halves of each fused module share a scheme and a group",
    "attn wq_a + wkv, compressor wkv + wgate, indexer compressor wkv + wgate, shared w1 + w3 and each routed "
    "expert's w1 + w3 are stored in the same scheme and matched by the same group (or both ignored): vLLM "
    "fuses them (mode 9).",
    DSV4_SEV_ERROR, 0, NULL, run_fused_halves};

const dsv4_rule *const dsv4_rules_targets[] = {&RELEASE_NAMES, &MATCH_VLLM, &MTP, &UNUSED,
                                               &IGNORE_OVERLAP, &FUSED_HALVES, NULL};
