/* Release <-> transformers tensor-name maps (see names.h). Per-layer names are rewritten suffix by
 * suffix from one table read in both directions; routed experts are handled apart because they are
 * fused on the transformers side. */
#include "model/names.h"

#include <stdio.h>
#include <string.h>

enum { LEAF, NORM, LINEAR };

typedef struct rule {
    const char *rel, *hf;
    int kind;  /* LEAF: exact name; NORM: `.weight`; LINEAR: `.weight` and `.scale` <-> `.weight_scale_inv` */
    int alias; /* an older HF name accepted on input, never emitted */
} rule;

static const rule GLOBAL_RULES[] = {
    {"embed", "model.embed_tokens", NORM, 0},
    {"head", "lm_head", NORM, 0},
    {"norm", "model.norm", NORM, 0},
    {"hc_head_fn", "model.hc_head.hc_fn", LEAF, 0},
    {"hc_head_base", "model.hc_head.hc_base", LEAF, 0},
    {"hc_head_scale", "model.hc_head.hc_scale", LEAF, 0},
};

static const rule LAYER_RULES[] = {
    {"attn_norm", "input_layernorm", NORM, 0},
    {"ffn_norm", "post_attention_layernorm", NORM, 0},
    {"hc_attn_fn", "attn_hc.fn", LEAF, 0},
    {"hc_attn_base", "attn_hc.base", LEAF, 0},
    {"hc_attn_scale", "attn_hc.scale", LEAF, 0},
    {"hc_ffn_fn", "ffn_hc.fn", LEAF, 0},
    {"hc_ffn_base", "ffn_hc.base", LEAF, 0},
    {"hc_ffn_scale", "ffn_hc.scale", LEAF, 0},
    {"attn.attn_sink", "self_attn.sinks", LEAF, 0},
    {"attn.wq_a", "self_attn.q_a_proj", LINEAR, 0},
    {"attn.q_norm", "self_attn.q_a_norm", NORM, 0},
    {"attn.wq_b", "self_attn.q_b_proj", LINEAR, 0},
    {"attn.wkv", "self_attn.kv_proj", LINEAR, 0},
    {"attn.kv_norm", "self_attn.kv_norm", NORM, 0},
    {"attn.wo_a", "self_attn.o_a_proj", LINEAR, 0},
    {"attn.wo_b", "self_attn.o_b_proj", LINEAR, 0},
    {"attn.compressor.wkv", "self_attn.compressor.kv_proj", LINEAR, 0},
    {"attn.compressor.wgate", "self_attn.compressor.gate_proj", LINEAR, 0},
    {"attn.compressor.norm", "self_attn.compressor.kv_norm", NORM, 0},
    {"attn.compressor.ape", "self_attn.compressor.position_bias", LEAF, 0},
    {"attn.indexer.wq_b", "self_attn.compressor.indexer.q_b_proj", LINEAR, 0},
    {"attn.indexer.weights_proj", "self_attn.compressor.indexer.scorer.weights_proj", LINEAR, 0},
    {"attn.indexer.weights_proj", "self_attn.compressor.indexer.weights_proj", LINEAR, 1},
    {"attn.indexer.compressor.wkv", "self_attn.compressor.indexer.kv_proj", LINEAR, 0},
    {"attn.indexer.compressor.wgate", "self_attn.compressor.indexer.gate_proj", LINEAR, 0},
    {"attn.indexer.compressor.norm", "self_attn.compressor.indexer.kv_norm", NORM, 0},
    {"attn.indexer.compressor.ape", "self_attn.compressor.indexer.position_bias", LEAF, 0},
    {"ffn.gate", "mlp.gate", LINEAR, 0},
    {"ffn.gate.bias", "mlp.gate.e_score_correction_bias", LEAF, 0},
    {"ffn.gate.tid2eid", "mlp.gate.tid2eid", LEAF, 0},
    {"ffn.shared_experts.w1", "mlp.shared_experts.gate_proj", LINEAR, 0},
    {"ffn.shared_experts.w3", "mlp.shared_experts.up_proj", LINEAR, 0},
    {"ffn.shared_experts.w2", "mlp.shared_experts.down_proj", LINEAR, 0},
};

/* The MTP block's own tensors, named alike on both sides by MTP-aware pipelines. */
static const rule MTP_RULES[] = {
    {"e_proj", "e_proj", LINEAR, 0},         {"h_proj", "h_proj", LINEAR, 0},
    {"enorm", "enorm", NORM, 0},             {"hnorm", "hnorm", NORM, 0},
    {"norm", "norm", NORM, 0},               {"hc_head_fn", "hc_head_fn", LEAF, 0},
    {"hc_head_base", "hc_head_base", LEAF, 0}, {"hc_head_scale", "hc_head_scale", LEAF, 0},
};

#define N_RULES(t) (sizeof(t) / sizeof *(t))

static const char *const HF_PROJ[4] = {"", "gate_proj", "down_proj", "up_proj"}; /* indexed by w1/w2/w3 */

/* Rewrites suffix s through the rules (release -> HF when to_hf); 1 on a match. */
static int apply(const rule *r, size_t n, const char *s, int to_hf, char *out, size_t cap)
{
    for (size_t i = 0; i < n; i++) {
        if (to_hf && r[i].alias)
            continue;
        const char *from = to_hf ? r[i].rel : r[i].hf, *to = to_hf ? r[i].hf : r[i].rel;
        size_t fl = strlen(from);
        if (strncmp(s, from, fl))
            continue;
        const char *rest = s + fl;
        if (r[i].kind == LEAF && !*rest)
            return snprintf(out, cap, "%s", to), 1;
        if (r[i].kind != LEAF && !strcmp(rest, ".weight"))
            return snprintf(out, cap, "%s.weight", to), 1;
        if (r[i].kind == LINEAR && !strcmp(rest, to_hf ? ".scale" : ".weight_scale_inv"))
            return snprintf(out, cap, "%s%s", to, to_hf ? ".weight_scale_inv" : ".scale"), 1;
    }
    return 0;
}

/* A decimal index without leading zeros, then a '.'; advances *p past the dot. */
static int index_dot(const char **p, int *out)
{
    const char *s = *p;
    long v = 0;
    int n = 0;
    if (s[0] == '0' && s[1] >= '0' && s[1] <= '9')
        return -1;
    for (; *s >= '0' && *s <= '9' && n < 7; s++, n++)
        v = v * 10 + (*s - '0');
    if (n == 0 || n == 7 || *s != '.')
        return -1;
    *out = (int)v;
    *p = s + 1;
    return 0;
}

static int starts(const char **p, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(*p, prefix, n))
        return 0;
    *p += n;
    return 1;
}

static void init(dsv4_name_map *m)
{
    memset(m, 0, sizeof *m);
    m->expert = -1;
    m->row_begin = m->row_end = -1;
}

static dsv4_map_kind none(dsv4_name_map *m, const char *why)
{
    m->kind = DSV4_MAP_NONE;
    m->name[0] = 0;
    snprintf(m->note, sizeof m->note, "%s", why);
    return DSV4_MAP_NONE;
}

static dsv4_map_kind direct(dsv4_name_map *m, const char *a, const char *b)
{
    if (snprintf(m->name, sizeof m->name, "%s%s", a, b) >= (int)sizeof m->name)
        return none(m, "mapped name too long");
    m->kind = DSV4_MAP_DIRECT;
    return DSV4_MAP_DIRECT;
}

/* Rows of one projection inside a fused expert tensor, in the units of that tensor's dim 1. */
static void expert_rows(const dsv4_config *cfg, int w, int is_scale, int64_t *begin, int64_t *end)
{
    if (!cfg) {
        *begin = *end = -1;
        return;
    }
    int64_t unit = is_scale && cfg->expert_fmt == DSV4_EXPERTS_FP8 ? 128 : 1;
    int64_t inter = (cfg->moe_inter_dim + unit - 1) / unit, hidden = (cfg->hidden_size + unit - 1) / unit;
    *begin = w == 3 ? inter : 0;
    *end = w == 2 ? hidden : *begin + inter;
}

/* "ffn.experts.E.wK.(weight|scale)" -> expert, projection (1, 2, 3) and scale flag. */
static int release_expert(const char *s, int *e, int *w, int *is_scale)
{
    if (!starts(&s, "ffn.experts.") || index_dot(&s, e) || s[0] != 'w' || s[1] < '1' || s[1] > '3' || s[2] != '.')
        return -1;
    *w = s[1] - '0';
    *is_scale = !strcmp(s + 3, "scale");
    return *is_scale || !strcmp(s + 3, "weight") ? 0 : -1;
}

static dsv4_map_kind layer_to_hf(const char *s, int layer, const dsv4_config *cfg, dsv4_name_map *m)
{
    char pre[48], out[DSV4_NAME_MAX];
    snprintf(pre, sizeof pre, "model.layers.%d.", layer);
    int e, w, sc;
    if (release_expert(s, &e, &w, &sc) == 0) {
        m->kind = DSV4_MAP_FUSED;
        m->expert = e;
        snprintf(m->name, sizeof m->name, "%smlp.experts.%s%s", pre, w == 2 ? "down_proj" : "gate_up_proj",
                 sc ? "_scale_inv" : "");
        expert_rows(cfg, w, sc, &m->row_begin, &m->row_end);
        return DSV4_MAP_FUSED;
    }
    if (apply(LAYER_RULES, N_RULES(LAYER_RULES), s, 1, out, sizeof out))
        return direct(m, pre, out);
    return none(m, "no transformers name for this layer tensor suffix");
}

dsv4_map_kind dsv4_name_to_hf(const char *release, const dsv4_config *cfg, dsv4_name_map *m)
{
    init(m);
    const char *s = release;
    char out[DSV4_NAME_MAX];
    int n;
    if (strlen(release) > 200)
        return none(m, "name longer than 200 bytes");
    if (apply(GLOBAL_RULES, N_RULES(GLOBAL_RULES), s, 1, out, sizeof out))
        return direct(m, out, "");
    if (starts(&s, "layers.") && index_dot(&s, &n) == 0)
        return layer_to_hf(s, n, cfg, m);
    s = release;
    if (starts(&s, "mtp.") && index_dot(&s, &n) == 0) {
        int e, w, sc;
        if (release_expert(s, &e, &w, &sc) && !apply(LAYER_RULES, N_RULES(LAYER_RULES), s, 1, out, sizeof out) &&
            !apply(MTP_RULES, N_RULES(MTP_RULES), s, 1, out, sizeof out))
            return none(m, "not a tensor of the MTP block");
        m->kind = DSV4_MAP_NO_HF;
        snprintf(m->note, sizeof m->note, "transformers has no MTP block (it drops mtp.* at load): the tensor "
                 "keeps its release name");
        return DSV4_MAP_NO_HF;
    }
    return none(m, "not a DeepSeek-V4 release tensor name (expected embed/head/norm/hc_head_*, layers.N.* or mtp.N.*)");
}

/* "mlp.experts.X" with X a fused tensor name -> projection group (1: gate_up, 2: down) and scale flag. */
static int parse_fused(const char *s, int *w, int *is_scale)
{
    if (!starts(&s, "mlp.experts."))
        return -1;
    *w = starts(&s, "gate_up_proj") ? 1 : starts(&s, "down_proj") ? 2 : 0;
    *is_scale = !strcmp(s, "_scale_inv");
    return *w && (*is_scale || !*s) ? 0 : -1;
}

/* "mlp.experts.E.(gate|up|down)_proj.(weight|weight_scale_inv)" -> release expert suffix. */
static int hf_linear_expert(const char *s, char *out, size_t cap)
{
    int e;
    if (!starts(&s, "mlp.experts.") || index_dot(&s, &e))
        return -1;
    for (int w = 1; w <= 3; w++) {
        const char *p = s;
        if (!starts(&p, HF_PROJ[w]) || *p != '.')
            continue;
        p++;
        if (strcmp(p, "weight") && strcmp(p, "weight_scale_inv"))
            return -1;
        snprintf(out, cap, "ffn.experts.%d.w%d.%s", e, w, strcmp(p, "weight") ? "scale" : "weight");
        return 0;
    }
    return -1;
}

/* The block prefix ("layers.N." or "mtp.N.") of an HF name, and the rest. */
static int hf_block(const char **s, char *pre, size_t cap, int *is_mtp)
{
    int n;
    const char *p = *s;
    *is_mtp = 0;
    if (starts(&p, "model.layers.") && index_dot(&p, &n) == 0) {
        snprintf(pre, cap, "layers.%d.", n);
        *s = p;
        return 0;
    }
    p = *s;
    if (starts(&p, "model.mtp.") && index_dot(&p, &n) == 0) {
        snprintf(pre, cap, "mtp.%d.", n);
        *is_mtp = 1;
        *s = p;
        return 0;
    }
    return -1;
}

dsv4_map_kind dsv4_name_from_hf(const char *hf, dsv4_name_map *m)
{
    init(m);
    const char *s = hf;
    char pre[48], out[DSV4_NAME_MAX];
    int w, sc, is_mtp;
    if (strlen(hf) > 200)
        return none(m, "name longer than 200 bytes");
    if (apply(GLOBAL_RULES, N_RULES(GLOBAL_RULES), s, 0, out, sizeof out))
        return direct(m, out, "");
    if (hf_block(&s, pre, sizeof pre, &is_mtp))
        return none(m, "not a DeepSeek-V4 transformers tensor name (expected model.embed_tokens, lm_head, "
                       "model.norm, model.hc_head.*, model.layers.N.* or model.mtp.N.*)");
    if (parse_fused(s, &w, &sc) == 0) {
        m->kind = DSV4_MAP_SPLIT;
        snprintf(m->name, sizeof m->name, "%sffn.experts", pre);
        if (w == 1)
            snprintf(m->note, sizeof m->note, "fused over experts: for each expert E, the first half of the rows is "
                     "%sffn.experts.E.w1.%s and the second half w3", pre, sc ? "scale" : "weight");
        else
            snprintf(m->note, sizeof m->note, "fused over experts: expert E is %sffn.experts.E.w2.%s", pre,
                     sc ? "scale" : "weight");
        return DSV4_MAP_SPLIT;
    }
    if (hf_linear_expert(s, out, sizeof out) == 0 || apply(LAYER_RULES, N_RULES(LAYER_RULES), s, 0, out, sizeof out) ||
        (is_mtp && apply(MTP_RULES, N_RULES(MTP_RULES), s, 0, out, sizeof out)))
        return direct(m, pre, out);
    return none(m, "no release name for this transformers layer tensor");
}

dsv4_map_kind dsv4_name_from_hf_fused(const char *hf_fused, int expert, int64_t row, const dsv4_config *cfg,
                                      dsv4_name_map *m)
{
    init(m);
    const char *s = hf_fused;
    char pre[48], why[160];
    int w, sc, is_mtp;
    if (strlen(hf_fused) > 200 || hf_block(&s, pre, sizeof pre, &is_mtp) || parse_fused(s, &w, &sc))
        return none(m, "not a fused transformers expert tensor (...mlp.experts.gate_up_proj or down_proj, optionally _scale_inv)");
    if (!cfg)
        return none(m, "splitting a fused expert tensor needs the config (moe_intermediate_size, hidden_size)");
    if (expert < 0 || expert >= cfg->n_routed_experts) {
        snprintf(why, sizeof why, "expert %d is outside [0, %lld)", expert, (long long)cfg->n_routed_experts);
        return none(m, why);
    }
    int64_t b1, e1, b3, e3;
    expert_rows(cfg, w == 1 ? 1 : 2, sc, &b1, &e1);
    expert_rows(cfg, 3, sc, &b3, &e3);
    int64_t end = w == 1 ? e3 : e1;
    if (row < 0 || row >= end) {
        snprintf(why, sizeof why, "row %lld is outside [0, %lld) of one expert's slice", (long long)row, (long long)end);
        return none(m, why);
    }
    int proj = w == 2 ? 2 : row < e1 ? 1 : 3;
    m->kind = DSV4_MAP_DIRECT;
    m->expert = expert;
    m->row_begin = proj == 3 ? b3 : b1;
    m->row_end = proj == 3 ? e3 : e1;
    snprintf(m->name, sizeof m->name, "%sffn.experts.%d.w%d.%s", pre, expert, proj, sc ? "scale" : "weight");
    return DSV4_MAP_DIRECT;
}

const char *dsv4_map_kind_name(dsv4_map_kind k)
{
    static const char *const n[] = {"none", "direct", "fused", "split", "no_hf"};
    return (unsigned)k < N_RULES(n) ? n[k] : "?";
}
