/* Derivation of the release-layout tensor list from a config (see inventory.h). The per-layer
 * tensor set follows spec/dsv4_architecture.md §2.3: every layer has norms, hyper-connection
 * mixers, attention and MoE; a non-zero compress ratio adds a compressor (two series, overlapped,
 * when the ratio is exactly 4), and a ratio of 4 adds the indexer with its own compressor. */
#include "model/inventory.h"
#include "util/sorted.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bld {
    const dsv4_config *c;
    dsv4_inventory *inv;
    size_t cap, pool_len, pool_cap;
    size_t *name_off;
    char prefix[32];
    int32_t layer, expert;
    int16_t mtp;
    int oom;
} bld;

static int32_t add(bld *b, const char *suffix, dsv4_dtype dt, int ndim, int64_t d0, int64_t d1, dsv4_role role)
{
    if (b->oom || b->inv->n >= b->cap) {
        b->oom = 1;
        return -1;
    }
    char name[160];
    int len = snprintf(name, sizeof name, "%s%s", b->prefix, suffix);
    if (b->pool_len + (size_t)len + 1 > b->pool_cap) {
        size_t nc = b->pool_cap ? b->pool_cap * 2 : 1 << 16;
        char *np = realloc(b->inv->pool, nc);
        if (!np) {
            b->oom = 1;
            return -1;
        }
        b->inv->pool = np;
        b->pool_cap = nc;
    }
    memcpy(b->inv->pool + b->pool_len, name, (size_t)len + 1);
    int32_t i = (int32_t)b->inv->n++;
    b->name_off[i] = b->pool_len;
    b->pool_len += (size_t)len + 1;
    dsv4_inv_tensor *t = &b->inv->t[i];
    memset(t, 0, sizeof *t);
    t->dtype = dt;
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = ndim > 1 ? d1 : 0;
    t->nbytes = (uint64_t)dsv4_dtype_nbytes(dt, (uint64_t)d0 * (uint64_t)(ndim > 1 ? d1 : 1));
    t->role = role;
    t->scale_of = DSV4_ROLE_UNKNOWN;
    t->store = DSV4_STORE_PLAIN;
    t->pair = -1;
    t->layer = b->layer;
    t->mtp = b->mtp;
    t->expert = role == DSV4_ROLE_ROUTED_EXPERT ? b->expert : -1;
    t->is_mtp = b->mtp >= 0;
    t->is_fp32_set = role == DSV4_ROLE_HC || role == DSV4_ROLE_SINK || role == DSV4_ROLE_GATE_BIAS ||
                     role == DSV4_ROLE_COMPRESSOR_APE || role == DSV4_ROLE_INDEXER_APE ||
                     role == DSV4_ROLE_MTP_HC_HEAD;
    b->inv->total_bytes += t->nbytes;
    return i;
}

static void pair(bld *b, int32_t w, int32_t s, dsv4_role role, dsv4_store ws, dsv4_store ss)
{
    if (w < 0 || s < 0)
        return;
    dsv4_inv_tensor *t = b->inv->t;
    t[w].pair = s;
    t[w].store = ws;
    t[s].pair = w;
    t[s].store = ss;
    t[s].scale_of = role;
    t[s].expert = t[w].expert;
}

static int64_t cdiv(int64_t a, int64_t d) { return (a + d - 1) / d; }

/* An FP8 block-quantized linear [out, in]: `stem.weight` and `stem.scale`. */
static void fp8(bld *b, const char *stem, int64_t out, int64_t in, dsv4_role role)
{
    char w[128], s[128];
    snprintf(w, sizeof w, "%s.weight", stem);
    snprintf(s, sizeof s, "%s.scale", stem);
    int32_t wi = add(b, w, DSV4_F8_E4M3, 2, out, in, role);
    int32_t si = add(b, s, DSV4_F8_E8M0, 2, cdiv(out, 128), cdiv(in, 128), DSV4_ROLE_SCALE);
    pair(b, wi, si, role, DSV4_STORE_FP8_BLOCK, DSV4_STORE_SCALE_BLOCK);
}

/* A routed-expert linear [out, in] in the config's expert format. */
static void expert(bld *b, const char *stem, int64_t out, int64_t in)
{
    if (b->c->expert_fmt == DSV4_EXPERTS_FP8) {
        fp8(b, stem, out, in, DSV4_ROLE_ROUTED_EXPERT);
        return;
    }
    char w[128], s[128];
    snprintf(w, sizeof w, "%s.weight", stem);
    snprintf(s, sizeof s, "%s.scale", stem);
    int32_t wi = add(b, w, DSV4_I8, 2, out, in / 2, DSV4_ROLE_ROUTED_EXPERT);
    int32_t si = add(b, s, DSV4_F8_E8M0, 2, out, in / 32, DSV4_ROLE_SCALE);
    pair(b, wi, si, DSV4_ROLE_ROUTED_EXPERT, DSV4_STORE_FP4_PACKED, DSV4_STORE_SCALE_FP4);
}

static void hc(bld *b, const char *stem, int64_t rows, int64_t scales, dsv4_role role)
{
    const dsv4_config *c = b->c;
    char n[64];
    snprintf(n, sizeof n, "%s_fn", stem);
    add(b, n, DSV4_F32, 2, rows, dsv4_config_hc_dim(c), role);
    snprintf(n, sizeof n, "%s_base", stem);
    add(b, n, DSV4_F32, 1, rows, 0, role);
    snprintf(n, sizeof n, "%s_scale", stem);
    add(b, n, DSV4_F32, 1, scales, 0, role);
}

static void attention(bld *b, int ratio)
{
    const dsv4_config *c = b->c;
    int64_t d = c->hidden_size, D = c->head_dim, hd = c->n_heads * c->head_dim, ol = c->o_groups * c->o_lora_rank;
    add(b, "attn.attn_sink", DSV4_F32, 1, c->n_heads, 0, DSV4_ROLE_SINK);
    fp8(b, "attn.wq_a", c->q_lora_rank, d, DSV4_ROLE_ATTN_LINEAR);
    add(b, "attn.q_norm.weight", DSV4_BF16, 1, c->q_lora_rank, 0, DSV4_ROLE_ATTN_NORM);
    fp8(b, "attn.wq_b", hd, c->q_lora_rank, DSV4_ROLE_ATTN_LINEAR);
    fp8(b, "attn.wkv", D, d, DSV4_ROLE_ATTN_LINEAR);
    add(b, "attn.kv_norm.weight", DSV4_BF16, 1, D, 0, DSV4_ROLE_ATTN_NORM);
    fp8(b, "attn.wo_a", ol, hd / c->o_groups, DSV4_ROLE_ATTN_LINEAR);
    fp8(b, "attn.wo_b", d, ol, DSV4_ROLE_ATTN_LINEAR);
    if (ratio == 0)
        return;
    int64_t coff = ratio == 4 ? 2 : 1;
    add(b, "attn.compressor.wkv.weight", DSV4_BF16, 2, coff * D, d, DSV4_ROLE_COMPRESSOR);
    add(b, "attn.compressor.wgate.weight", DSV4_BF16, 2, coff * D, d, DSV4_ROLE_COMPRESSOR);
    add(b, "attn.compressor.ape", DSV4_F32, 2, ratio, coff * D, DSV4_ROLE_COMPRESSOR_APE);
    add(b, "attn.compressor.norm.weight", DSV4_BF16, 1, D, 0, DSV4_ROLE_COMPRESSOR);
    if (ratio != 4)
        return;
    int64_t ih = c->index_n_heads, id = c->index_head_dim;
    fp8(b, "attn.indexer.wq_b", ih * id, c->q_lora_rank, DSV4_ROLE_INDEXER);
    add(b, "attn.indexer.weights_proj.weight", DSV4_BF16, 2, ih, d, DSV4_ROLE_INDEXER);
    add(b, "attn.indexer.compressor.wkv.weight", DSV4_BF16, 2, 2 * id, d, DSV4_ROLE_INDEXER_COMPRESSOR);
    add(b, "attn.indexer.compressor.wgate.weight", DSV4_BF16, 2, 2 * id, d, DSV4_ROLE_INDEXER_COMPRESSOR);
    add(b, "attn.indexer.compressor.ape", DSV4_F32, 2, 4, 2 * id, DSV4_ROLE_INDEXER_APE);
    add(b, "attn.indexer.compressor.norm.weight", DSV4_BF16, 1, id, 0, DSV4_ROLE_INDEXER_COMPRESSOR);
}

static void moe(bld *b, int is_hash)
{
    const dsv4_config *c = b->c;
    int64_t d = c->hidden_size, E = c->n_routed_experts, inter = c->moe_inter_dim;
    add(b, "ffn.gate.weight", DSV4_BF16, 2, E, d, DSV4_ROLE_GATE);
    if (is_hash)
        add(b, "ffn.gate.tid2eid", DSV4_I64, 2, c->vocab_size, c->n_activated_experts, DSV4_ROLE_TID2EID);
    else
        add(b, "ffn.gate.bias", DSV4_F32, 1, E, 0, DSV4_ROLE_GATE_BIAS);
    int64_t si = inter * c->n_shared_experts;
    fp8(b, "ffn.shared_experts.w1", si, d, DSV4_ROLE_SHARED_EXPERT);
    fp8(b, "ffn.shared_experts.w2", d, si, DSV4_ROLE_SHARED_EXPERT);
    fp8(b, "ffn.shared_experts.w3", si, d, DSV4_ROLE_SHARED_EXPERT);
    for (int e = 0; e < E; e++) {
        char stem[64];
        b->expert = e;
        snprintf(stem, sizeof stem, "ffn.experts.%d.w1", e);
        expert(b, stem, inter, d);
        snprintf(stem, sizeof stem, "ffn.experts.%d.w2", e);
        expert(b, stem, d, inter);
        snprintf(stem, sizeof stem, "ffn.experts.%d.w3", e);
        expert(b, stem, inter, d);
    }
    b->expert = -1;
}

static void block(bld *b, int layer)
{
    const dsv4_config *c = b->c;
    int64_t d = c->hidden_size, mix = dsv4_config_mix_hc(c);
    b->layer = layer;
    add(b, "attn_norm.weight", DSV4_BF16, 1, d, 0, DSV4_ROLE_NORM);
    add(b, "ffn_norm.weight", DSV4_BF16, 1, d, 0, DSV4_ROLE_NORM);
    hc(b, "hc_attn", mix, 3, DSV4_ROLE_HC);
    hc(b, "hc_ffn", mix, 3, DSV4_ROLE_HC);
    attention(b, c->compress_ratio[layer]);
    moe(b, c->is_hash[layer]);
}

static void mtp_extras(bld *b)
{
    const dsv4_config *c = b->c;
    int64_t d = c->hidden_size;
    fp8(b, "e_proj", d, d, DSV4_ROLE_MTP_PROJ);
    fp8(b, "h_proj", d, d, DSV4_ROLE_MTP_PROJ);
    add(b, "enorm.weight", DSV4_BF16, 1, d, 0, DSV4_ROLE_MTP_NORM);
    add(b, "hnorm.weight", DSV4_BF16, 1, d, 0, DSV4_ROLE_MTP_NORM);
    add(b, "norm.weight", DSV4_BF16, 1, d, 0, DSV4_ROLE_MTP_NORM);
    hc(b, "hc_head", c->hc_mult, 1, DSV4_ROLE_MTP_HC_HEAD);
}

size_t dsv4_inventory_count(const dsv4_config *c)
{
    size_t n = 6 + (size_t)c->n_mtp * 10;
    for (int i = 0; i < c->n_layers + c->n_mtp; i++) {
        int r = c->compress_ratio[i];
        n += 29 + 6 * (size_t)c->n_routed_experts + (r ? 4 : 0) + (r == 4 ? 7 : 0);
    }
    return n;
}

typedef struct name_idx {
    const char *name;
    uint32_t idx;
} name_idx;

static int cmp_name_idx(const void *a, const void *b)
{
    return strcmp(((const name_idx *)a)->name, ((const name_idx *)b)->name);
}

static int sort_names(dsv4_inventory *inv)
{
    name_idx *tmp = malloc((inv->n ? inv->n : 1) * sizeof *tmp);
    inv->by_name = malloc((inv->n ? inv->n : 1) * sizeof *inv->by_name);
    if (!tmp || !inv->by_name) {
        free(tmp);
        return -1;
    }
    for (size_t i = 0; i < inv->n; i++)
        tmp[i] = (name_idx){inv->t[i].name, (uint32_t)i};
    qsort(tmp, inv->n, sizeof *tmp, cmp_name_idx);
    for (size_t i = 0; i < inv->n; i++)
        inv->by_name[i] = tmp[i].idx;
    free(tmp);
    return 0;
}

int dsv4_inventory_build(const dsv4_config *c, dsv4_inventory *inv, dsv4_err *e)
{
    memset(inv, 0, sizeof *inv);
    if (dsv4_config_validate(c, e))
        return -1;
    bld b = {.c = c, .inv = inv, .cap = dsv4_inventory_count(c), .layer = -1, .expert = -1, .mtp = -1};
    inv->n_layers = c->n_layers;
    inv->n_mtp = c->n_mtp;
    inv->t = malloc(b.cap * sizeof *inv->t);
    b.name_off = malloc(b.cap * sizeof *b.name_off);
    if (!inv->t || !b.name_off)
        b.oom = 1;
    add(&b, "embed.weight", DSV4_BF16, 2, c->vocab_size, c->hidden_size, DSV4_ROLE_EMBED);
    add(&b, "head.weight", DSV4_BF16, 2, c->vocab_size, c->hidden_size, DSV4_ROLE_HEAD);
    add(&b, "norm.weight", DSV4_BF16, 1, c->hidden_size, 0, DSV4_ROLE_NORM);
    hc(&b, "hc_head", c->hc_mult, 1, DSV4_ROLE_HC);
    for (int i = 0; i < c->n_layers && !b.oom; i++) {
        snprintf(b.prefix, sizeof b.prefix, "layers.%d.", i);
        block(&b, i);
    }
    for (int i = 0; i < c->n_mtp && !b.oom; i++) {
        snprintf(b.prefix, sizeof b.prefix, "mtp.%d.", i);
        b.mtp = (int16_t)i;
        block(&b, c->n_layers + i);
        mtp_extras(&b);
    }
    if (!b.oom && inv->n != b.cap) {
        free(b.name_off);
        dsv4_inventory_free(inv);
        return dsv4_fail_rt(e, "%s: inventory built %zu tensors but counted %zu (internal error)", c->path, inv->n,
                            b.cap);
    }
    for (size_t i = 0; i < inv->n && !b.oom; i++)
        inv->t[i].name = inv->pool + b.name_off[i];
    free(b.name_off);
    if (b.oom || sort_names(inv)) {
        dsv4_inventory_free(inv);
        return dsv4_fail_rt(e, "%s: out of memory building the tensor inventory", c->path);
    }
    return 0;
}

void dsv4_inventory_free(dsv4_inventory *inv)
{
    free(inv->t);
    free(inv->by_name);
    free(inv->pool);
    memset(inv, 0, sizeof *inv);
}

static const char *inv_name_at(const void *ctx, size_t i)
{
    const dsv4_inventory *inv = ctx;
    return inv->t[inv->by_name[i]].name;
}

const dsv4_inv_tensor *dsv4_inventory_find(const dsv4_inventory *inv, const char *name)
{
    size_t i = dsv4_find_name(inv->n, inv_name_at, inv, name);
    return i == DSV4_NOT_FOUND ? NULL : &inv->t[inv->by_name[i]];
}

static const char *const ROLE_NAMES[DSV4_ROLE_COUNT] = {
    "embed", "head", "norm", "hc", "sink", "attn_linear", "attn_norm", "compressor", "compressor_ape", "indexer",
    "indexer_compressor", "indexer_ape", "gate", "gate_bias", "tid2eid", "shared_expert", "routed_expert",
    "mtp_proj", "mtp_norm", "mtp_hc_head", "scale", "unknown",
};

const char *dsv4_role_name(dsv4_role r)
{
    return (unsigned)r < DSV4_ROLE_COUNT ? ROLE_NAMES[r] : "?";
}

dsv4_role dsv4_role_parse(const char *s)
{
    for (int r = 0; r < DSV4_ROLE_COUNT; r++)
        if (!strcmp(s, ROLE_NAMES[r]))
            return (dsv4_role)r;
    return DSV4_ROLE_COUNT;
}

const char *dsv4_store_name(dsv4_store s)
{
    static const char *const n[] = {"plain", "fp8_block", "fp4_packed", "scale_block", "scale_fp4"};
    return (unsigned)s < sizeof n / sizeof *n ? n[s] : "?";
}

uint64_t dsv4_inv_numel(const dsv4_inv_tensor *t)
{
    return (uint64_t)t->shape[0] * (uint64_t)(t->ndim > 1 ? t->shape[1] : 1);
}
