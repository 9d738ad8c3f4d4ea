/* vLLM's module families for DeepSeek-V4 (seed_pipelines.md §1.5, §3.12): which release linear
 * layers share a path, what vLLM calls them (fused modules included), and the per-block status
 * table the patterns are generated from. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact/ct_config_internal.h"

enum { F_ATTN, F_COMPRESSOR, F_INDEXER, F_GATE, F_SHARED, F_EXPERTS, F_MTP };

const ct_family CT_FAMILIES[] = {
    [F_ATTN] = {"attn\\.", {"attn.", NULL}, 5,
                {{"attn.wq_a", {"wq_a", "fused_wqa_wkv", NULL}},
                 {"attn.wkv", {"wkv", "fused_wqa_wkv", NULL}},
                 {"attn.wq_b", {"wq_b", NULL}},
                 {"attn.wo_a", {"wo_a", NULL}},
                 {"attn.wo_b", {"wo_b", NULL}}},
                0},
    /* vLLM maps `.attn.compressor.` to `.attn.mla_attn.compressor.`; older builds did not. */
    [F_COMPRESSOR] = {"attn\\.(mla_attn\\.)?compressor\\.", {"attn.mla_attn.compressor.", "attn.compressor.", NULL}, 2,
                      {{"attn.compressor.wkv", {"wkv", "fused_wkv_wgate", NULL}},
                       {"attn.compressor.wgate", {"wgate", "fused_wkv_wgate", NULL}}},
                      0},
    [F_INDEXER] = {"attn\\.indexer\\.", {"attn.indexer.", NULL}, 4,
                   {{"attn.indexer.wq_b", {"wq_b", NULL}},
                    {"attn.indexer.weights_proj", {"weights_proj", NULL}},
                    {"attn.indexer.compressor.wkv", {"compressor.wkv", "compressor.fused_wkv_wgate", NULL}},
                    {"attn.indexer.compressor.wgate", {"compressor.wgate", "compressor.fused_wkv_wgate", NULL}}},
                   0},
    [F_GATE] = {"ffn\\.", {"ffn.", NULL}, 1, {{"ffn.gate", {"gate", NULL}}}, 0},
    /* vLLM maps `.shared_experts.w2` to `.shared_experts.down_proj` and fuses w1 + w3. */
    [F_SHARED] = {"ffn\\.shared_experts\\.", {"ffn.shared_experts.", NULL}, 3,
                  {{"ffn.shared_experts.w1", {"w1", "gate_up_proj", NULL}},
                   {"ffn.shared_experts.w2", {"w2", "down_proj", NULL}},
                   {"ffn.shared_experts.w3", {"w3", "gate_up_proj", NULL}}},
                  0},
    [F_EXPERTS] = {"ffn\\.experts", {"ffn.experts", NULL}, 3, {{"w1", {NULL}}, {"w2", {NULL}}, {"w3", {NULL}}}, 1},
    [F_MTP] = {"", {"", NULL}, 2, {{"e_proj", {"e_proj", NULL}}, {"h_proj", {"h_proj", NULL}}}, 0},
};
const int CT_N_FAMILIES = (int)(sizeof CT_FAMILIES / sizeof *CT_FAMILIES);

/* Fused modules: both halves must carry one status. */
static const struct {
    int fam, a, b;
    const char *what;
} FUSED[] = {
    {F_ATTN, 0, 1, "attn.fused_wqa_wkv (wq_a + wkv)"},
    {F_COMPRESSOR, 0, 1, "attn.compressor.fused_wkv_wgate (wkv + wgate)"},
    {F_INDEXER, 2, 3, "attn.indexer.compressor.fused_wkv_wgate (wkv + wgate)"},
    {F_SHARED, 0, 2, "ffn.shared_experts.gate_up_proj (w1 + w3)"},
};

static int block_of(const dsv4_config *cfg, const char *m, const char **rest)
{
    int mtp = !strncmp(m, "mtp.", 4);
    const char *p = m + (mtp ? 4 : strncmp(m, "layers.", 7) ? 0 : 7);
    if (p == m)
        return -1;
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || *end != '.' || v < 0 || v >= (mtp ? cfg->n_mtp : cfg->n_layers))
        return -1;
    *rest = end + 1;
    return (int)v + (mtp ? cfg->n_layers : 0);
}

const char *ct_label(const dsv4_recipe *r, int group, char buf[96])
{
    if (group < 0)
        return "unquantized";
    if (r && (size_t)group < r->n_groups)
        snprintf(buf, 96, "recipe group '%s'", r->groups[group].name);
    else
        snprintf(buf, 96, "recipe group %d", group);
    return buf;
}

/* "layers.L" or "mtp.N" of a block. */
static const char *block_name(const dsv4_config *cfg, size_t b, char buf[32])
{
    if (b < (size_t)cfg->n_layers)
        snprintf(buf, 32, "layers.%zu", b);
    else
        snprintf(buf, 32, "mtp.%zu", b - (size_t)cfg->n_layers);
    return buf;
}

int ct_classify(const dsv4_config *cfg, const dsv4_ct_module *mods, size_t n, ct_mod *out, dsv4_err *e)
{
    for (size_t i = 0; i < n; i++) {
        ct_mod *c = &out[i];
        const char *rest = NULL;
        *c = (ct_mod){-1, -1, -1, -1, mods[i].group};
        if (!strcmp(mods[i].module, "head"))
            continue;
        c->block = block_of(cfg, mods[i].module, &rest);
        int is_mtp = c->block >= cfg->n_layers;
        if (c->block >= 0 && !strncmp(rest, "ffn.experts.", 12)) {
            char *end;
            long ex = strtol(rest + 12, &end, 10);
            if (end > rest + 12 && ex >= 0 && ex < cfg->n_routed_experts && end[0] == '.' && end[1] == 'w' &&
                end[2] >= '1' && end[2] <= '3' && !end[3]) {
                c->fam = F_EXPERTS;
                c->leaf = end[2] - '1';
                c->expert = (int)ex;
                continue;
            }
        }
        for (int f = 0; c->block >= 0 && c->fam < 0 && f < CT_N_FAMILIES; f++) {
            if (CT_FAMILIES[f].moe || (f == F_MTP && !is_mtp))
                continue;
            for (int l = 0; l < CT_FAMILIES[f].n_leaves; l++)
                if (!strcmp(rest, CT_FAMILIES[f].leaves[l].release)) {
                    c->fam = f;
                    c->leaf = l;
                }
        }
        if (c->fam < 0)
            return dsv4_fail(e, "quantization_config: '%s' is not a linear layer of this model", mods[i].module);
    }
    return 0;
}

int ct_status_table(const dsv4_recipe *r, const dsv4_config *cfg, const dsv4_ct_module *mods, const ct_mod *cm,
                    size_t n, int **out, dsv4_err *e)
{
    size_t nb = (size_t)(cfg->n_layers + cfg->n_mtp), cells = nb * (size_t)CT_N_FAMILIES * CT_MAX_LEAVES;
    int *st = malloc((cells ? cells : 1) * sizeof *st);
    if (!st)
        return dsv4_fail_rt(e, "quantization_config: out of memory");
    for (size_t i = 0; i < cells; i++)
        st[i] = CT_NO_STATUS;
    for (size_t i = 0; i < n; i++) {
        const ct_mod *c = &cm[i];
        if (c->block < 0)
            continue;
        int *cell = &st[((size_t)c->block * CT_N_FAMILIES + (size_t)c->fam) * CT_MAX_LEAVES + (size_t)c->leaf];
        if (c->fam == F_EXPERTS && *cell != CT_NO_STATUS && *cell != c->group) {
            char lb[96];
            const char *l = ct_label(r, *cell, lb);
            free(st);
            return dsv4_fail(e, "quantization_config: the routed experts of one layer are one MoE in vLLM and need one "
                             "scheme, but '%s' differs from the other experts (%s)", mods[i].module, l);
        }
        *cell = c->group;
    }
    for (size_t b = 0; b < nb; b++) {
        const int *ex = &st[(b * CT_N_FAMILIES + F_EXPERTS) * CT_MAX_LEAVES];
        char bn[32];
        if ((ex[0] != ex[1] && ex[1] != CT_NO_STATUS) || (ex[0] != ex[2] && ex[2] != CT_NO_STATUS)) {
            free(st);
            return dsv4_fail(e, "quantization_config: the routed experts of %s mix schemes across w1 / w2 / w3; "
                             "vLLM's MoE needs one scheme for all three", block_name(cfg, b, bn));
        }
        for (size_t k = 0; k < sizeof FUSED / sizeof *FUSED; k++) {
            const int *f = &st[(b * CT_N_FAMILIES + (size_t)FUSED[k].fam) * CT_MAX_LEAVES];
            if (f[FUSED[k].a] != f[FUSED[k].b] && f[FUSED[k].a] != CT_NO_STATUS && f[FUSED[k].b] != CT_NO_STATUS) {
                char la[96], lb[96];
                const char *sa = ct_label(r, f[FUSED[k].a], la), *sb = ct_label(r, f[FUSED[k].b], lb);
                free(st);
                return dsv4_fail(e, "quantization_config: %s: vLLM fuses %s into one module, so both halves need the "
                                 "same recipe group (got %s and %s)", block_name(cfg, b, bn), FUSED[k].what, sa, sb);
            }
        }
    }
    *out = st;
    return 0;
}


void ct_group_ranks(const dsv4_recipe *r, const dsv4_ct_module *mods, size_t n, int *rank)
{
    int next = 0;
    for (size_t g = 0; g < r->n_groups; g++)
        rank[g] = -1;
    for (size_t i = 0; i < n; i++) {
        int g = mods[i].group;
        if (g >= 0 && (size_t)g < r->n_groups && rank[g] < 0)
            rank[g] = next++;
    }
}

typedef struct names_out {
    dsv4_ct_vllm_name *v;
    size_t n, cap;
    int oom;
} names_out;

static void emit(names_out *o, int group, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void emit(names_out *o, int group, const char *fmt, ...)
{
    if (o->oom)
        return;
    if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 256;
        dsv4_ct_vllm_name *nv = realloc(o->v, nc * sizeof *nv);
        if (!nv) {
            o->oom = 1;
            return;
        }
        o->v = nv;
        o->cap = nc;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->v[o->n].name, sizeof o->v[o->n].name, fmt, ap);
    va_end(ap);
    o->v[o->n++].group = group;
}

/* The block prefixes vLLM and the disk use: "model.layers.L." (main), and for MTP block i the
 * on-disk "mtp.i.", the mapped "model.mtp.i." and the spec layer "model.layers.<n_layers + i>.". */
static int prefixes(const dsv4_config *cfg, int b, char pre[3][48])
{
    if (b < cfg->n_layers) {
        snprintf(pre[0], 48, "model.layers.%d.", b);
        return 1;
    }
    snprintf(pre[0], 48, "model.layers.%d.", b);
    snprintf(pre[1], 48, "model.mtp.%d.", b - cfg->n_layers);
    snprintf(pre[2], 48, "mtp.%d.", b - cfg->n_layers);
    return 3;
}

int dsv4_ct_vllm_names(const dsv4_recipe *r, const dsv4_config *cfg, const dsv4_ct_module *mods, size_t n,
                       int all_experts, dsv4_ct_vllm_name **out, size_t *count, dsv4_err *e)
{
    static const char *const EXPERT_NAMES[3][2] = {{"w1", "gate_proj"}, {"w2", "down_proj"}, {"w3", "up_proj"}};
    ct_mod *cm = malloc((n ? n : 1) * sizeof *cm);
    names_out o = {0};
    int *st = NULL;
    if (!cm)
        return dsv4_fail_rt(e, "quantization_config: out of memory");
    if (ct_classify(cfg, mods, n, cm, e) || ct_status_table(r, cfg, mods, cm, n, &st, e)) {
        free(cm);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const ct_mod *c = &cm[i];
        char pre[3][48];
        if (c->block < 0) {
            emit(&o, c->group, "lm_head");
            continue;
        }
        int np = prefixes(cfg, c->block, pre);
        const ct_family *f = &CT_FAMILIES[c->fam];
        for (int p = 0; p < np; p++) {
            if (f->moe) {
                if (!all_experts && c->expert != 0 && c->expert != cfg->n_routed_experts - 1)
                    continue;
                for (int k = 0; k < 2; k++)
                    emit(&o, c->group, "%sffn.experts.%d.%s", pre[p], c->expert, EXPERT_NAMES[c->leaf][k]);
                if (c->expert == 0 && c->leaf == 0) {
                    static const char *const whole[] = {"", ".w13", ".w2", ".gate_up_proj", ".down_proj"};
                    for (int k = 0; k < 5; k++)
                        emit(&o, c->group, "%sffn.experts%s", pre[p], whole[k]);
                }
                continue;
            }
            for (int q = 0; f->paths[q]; q++)
                for (int k = 0; f->leaves[c->leaf].names[k]; k++)
                    emit(&o, c->group, "%s%s%s", pre[p], f->paths[q], f->leaves[c->leaf].names[k]);
        }
    }
    free(cm);
    free(st);
    if (o.oom) {
        free(o.v);
        return dsv4_fail_rt(e, "quantization_config: out of memory");
    }
    *out = o.v;
    *count = o.n;
    return 0;
}
