/* Loading one decoder layer, one MTP block or the global tensors into a compute backend
 * (runner/weights.h): every tensor of spec/dsv4_architecture.md §2.2-2.4, its shape derived from
 * the config, linears through ops->lin_load, float vectors through ops->alloc + ops->upload,
 * tid2eid into host int32 with its expert ids range-checked and the router bias into host floats
 * (routing runs on the host). A failed load frees what it loaded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/weights.h"

typedef struct ld {
    dsv4_wsrc *s;
    dsv4_ops *o;
    size_t *bytes;
    dsv4_err *e;
    char pre[32];                 /* "layers.3." / "mtp.0." / "" */
} ld;

enum { AS_STORED = 0, AS_F32 = 1 };

static int lin(ld *L, const char *suffix, int64_t out, int64_t in, int how, dsv4_lin *dev)
{
    char stem[160];
    snprintf(stem, sizeof stem, "%s%s", L->pre, suffix);
    dsv4_lin h;
    if ((how == AS_F32 ? dsv4_wsrc_lin_f32 : dsv4_wsrc_lin)(L->s, stem, out, in, &h, L->e))
        return -1;
    /* the embed op reads F32 or BF16 rows: any other storage of a table is widened to F32 */
    if (!strcmp(stem, "embed") && h.fmt != DSV4_LW_F32 && h.fmt != DSV4_LW_BF16) {
        dsv4_wsrc_lin_done(L->s, &h);
        if (dsv4_wsrc_lin_f32(L->s, stem, out, in, &h, L->e))
            return -1;
    }
    memset(dev, 0, sizeof *dev);
    int rc = L->o->lin_load(L->o, &h, dev, L->e);
    dsv4_wsrc_lin_done(L->s, &h);
    if (rc)
        return dsv4_wrap(L->e, "%s: loading '%s' (%s) into the %s backend", dsv4_wsrc_path(L->s), stem,
                         dsv4_lw_fmt_name(h.fmt), L->o->name);
    *L->bytes += dev->w_bytes + dev->s_bytes;
    return 0;
}

/* A float tensor of shape [d0] (d1 == 0) or [d0, d1] into host memory (malloc'ed). */
static int host_vec(ld *L, const char *suffix, int64_t d0, int64_t d1, float **dst)
{
    char name[160];
    snprintf(name, sizeof name, "%s%s", L->pre, suffix);
    int64_t dims[2] = {d0, d1};
    float *h = malloc((size_t)(d0 * (d1 ? d1 : 1)) * sizeof(float));
    if (!h)
        return dsv4_fail_rt(L->e, "out of memory reading %s", name);
    if (dsv4_wsrc_f32_dims(L->s, name, d1 ? 2 : 1, dims, h, L->e)) {
        free(h);
        return -1;
    }
    *dst = h;
    return 0;
}

/* The same tensor into backend memory. */
static int vec(ld *L, const char *suffix, int64_t d0, int64_t d1, float **dst)
{
    size_t n = (size_t)(d0 * (d1 ? d1 : 1)) * sizeof(float);
    float *h;
    if (host_vec(L, suffix, d0, d1, &h))
        return -1;
    float *d = L->o->alloc(L->o, n, L->e);
    if (!d || L->o->upload(L->o, d, h, n, L->e)) {
        if (d)
            L->o->free(L->o, d);
        free(h);
        return dsv4_wrap(L->e, "%s: uploading '%s%s'", dsv4_wsrc_path(L->s), L->pre, suffix);
    }
    free(h);
    *dst = d;
    *L->bytes += n;
    return 0;
}

/* tid2eid: I64 or I32 [vocab, K] -> host int32, every id in [0, E). */
static int tid2eid(ld *L, const dsv4_config *c, int32_t **out)
{
    char name[160], got[96];
    snprintf(name, sizeof name, "%sffn.gate.tid2eid", L->pre);
    int64_t V = c->vocab_size, K = c->n_activated_experts, E = c->n_routed_experts;
    const dsv4_tensor *t = dsv4_wsrc_tensor(L->s, name);
    if (!t)
        return dsv4_fail(L->e, "%s: tensor '%s' is missing (expected I64 or I32 [%lld, %lld]: a hash layer routes by "
                               "token id)", dsv4_wsrc_path(L->s), name, (long long)V, (long long)K);
    const char *file = dsv4_wsrc_file_of(L->s, t);
    if ((t->dtype != DSV4_I64 && t->dtype != DSV4_I32) || t->ndim != 2 || t->shape[0] != V || t->shape[1] != K)
        return dsv4_fail(L->e, "%s: tensor '%s' is %s %s (expected I64 or I32 [%lld, %lld])", file, t->name,
                         dsv4_dtype_name(t->dtype), dsv4_shape_str(t, got, sizeof got), (long long)V, (long long)K);
    int32_t *m = malloc((size_t)(V * K) * sizeof *m);
    if (!m)
        return dsv4_fail_rt(L->e, "out of memory reading %s", name);
    for (int64_t i = 0; i < V * K; i++) {
        int64_t v;
        if (t->dtype == DSV4_I64) {
            memcpy(&v, t->data + 8 * i, 8);
        } else {
            int32_t x;
            memcpy(&x, t->data + 4 * i, 4);
            v = x;
        }
        if (v < 0 || v >= E) {
            free(m);
            return dsv4_fail(L->e, "%s: tensor %s[%lld, %lld] = %lld is not an expert id in [0, %lld)", file,
                             t->name, (long long)(i / K), (long long)(i % K), (long long)v, (long long)E);
        }
        m[i] = (int32_t)v;
    }
    *out = m;
    return 0;
}

static int load_attn(ld *L, const dsv4_config *c, int id, dsv4_attn_w *a)
{
    int64_t d = c->hidden_size, H = c->n_heads, hd = c->head_dim, ql = c->q_lora_rank, og = c->o_groups,
            ol = c->o_lora_rank, ratio = c->compress_ratio[id];
    if (lin(L, "attn.wq_a", ql, d, AS_STORED, &a->wq_a) || vec(L, "attn.q_norm.weight", ql, 0, &a->q_norm) ||
        lin(L, "attn.wq_b", H * hd, ql, AS_STORED, &a->wq_b) || lin(L, "attn.wkv", hd, d, AS_STORED, &a->wkv) ||
        vec(L, "attn.kv_norm.weight", hd, 0, &a->kv_norm) ||
        lin(L, "attn.wo_a", og * ol, H * hd / og, AS_STORED, &a->wo_a) ||
        lin(L, "attn.wo_b", d, og * ol, AS_STORED, &a->wo_b) || vec(L, "attn.attn_sink", H, 0, &a->sink))
        return -1;
    if (ratio == 0)
        return 0;
    int64_t C = dsv4_config_attn(c, id) == DSV4_ATTN_CSA ? 2 : 1; /* overlapping windows: two series */
    if (lin(L, "attn.compressor.wkv", C * hd, d, AS_F32, &a->c_wkv) ||
        lin(L, "attn.compressor.wgate", C * hd, d, AS_F32, &a->c_wgate) ||
        vec(L, "attn.compressor.ape", ratio, C * hd, &a->c_ape) ||
        vec(L, "attn.compressor.norm.weight", hd, 0, &a->c_norm))
        return -1;
    if (dsv4_config_attn(c, id) != DSV4_ATTN_CSA)
        return 0;
    int64_t ih = c->index_n_heads, ihd = c->index_head_dim;
    return lin(L, "attn.indexer.wq_b", ih * ihd, ql, AS_STORED, &a->i_wq_b) ||
                   lin(L, "attn.indexer.weights_proj", ih, d, AS_STORED, &a->i_wproj) ||
                   lin(L, "attn.indexer.compressor.wkv", 2 * ihd, d, AS_F32, &a->i_wkv) ||
                   lin(L, "attn.indexer.compressor.wgate", 2 * ihd, d, AS_F32, &a->i_wgate) ||
                   vec(L, "attn.indexer.compressor.ape", ratio, 2 * ihd, &a->i_ape) ||
                   vec(L, "attn.indexer.compressor.norm.weight", ihd, 0, &a->i_norm)
               ? -1
               : 0;
}

static int load_ffn(ld *L, const dsv4_config *c, int is_hash, dsv4_ffn_w *f)
{
    int64_t d = c->hidden_size, E = c->n_routed_experts, I = c->moe_inter_dim, Is = I * c->n_shared_experts;
    if (lin(L, "ffn.gate", E, d, AS_F32, &f->gate))
        return -1;
    if (is_hash ? tid2eid(L, c, &f->tid2eid) : host_vec(L, "ffn.gate.bias", E, 0, &f->gate_bias))
        return -1;
    if (Is && (lin(L, "ffn.shared_experts.w1", Is, d, AS_STORED, &f->sh_w1) ||
               lin(L, "ffn.shared_experts.w3", Is, d, AS_STORED, &f->sh_w3) ||
               lin(L, "ffn.shared_experts.w2", d, Is, AS_STORED, &f->sh_w2)))
        return -1;
    f->w1 = calloc((size_t)E, sizeof *f->w1);
    f->w3 = calloc((size_t)E, sizeof *f->w3);
    f->w2 = calloc((size_t)E, sizeof *f->w2);
    f->n_experts = E;
    if (!f->w1 || !f->w3 || !f->w2)
        return dsv4_fail_rt(L->e, "out of memory for %lld experts", (long long)E);
    for (int64_t x = 0; x < E; x++) {
        char n1[64], n2[64], n3[64];
        snprintf(n1, sizeof n1, "ffn.experts.%lld.w1", (long long)x);
        snprintf(n2, sizeof n2, "ffn.experts.%lld.w2", (long long)x);
        snprintf(n3, sizeof n3, "ffn.experts.%lld.w3", (long long)x);
        if (lin(L, n1, I, d, AS_STORED, &f->w1[x]) || lin(L, n3, I, d, AS_STORED, &f->w3[x]) ||
            lin(L, n2, d, I, AS_STORED, &f->w2[x]))
            return -1;
    }
    return 0;
}

static int load_layer(ld *L, const dsv4_config *c, int id, dsv4_layer_w *w)
{
    int64_t d = c->hidden_size, hc = c->hc_mult, mix = dsv4_config_mix_hc(c), hcd = dsv4_config_hc_dim(c);
    if (vec(L, "attn_norm.weight", d, 0, &w->attn_norm) || vec(L, "ffn_norm.weight", d, 0, &w->ffn_norm) ||
        vec(L, "hc_attn_fn", mix, hcd, &w->hc_attn_fn) || vec(L, "hc_attn_base", mix, 0, &w->hc_attn_base) ||
        vec(L, "hc_attn_scale", 3, 0, &w->hc_attn_scale) || vec(L, "hc_ffn_fn", mix, hcd, &w->hc_ffn_fn) ||
        vec(L, "hc_ffn_base", mix, 0, &w->hc_ffn_base) || vec(L, "hc_ffn_scale", 3, 0, &w->hc_ffn_scale) ||
        load_attn(L, c, id, &w->attn) || load_ffn(L, c, w->is_hash, &w->ffn))
        return -1;
    if (!w->is_mtp)
        return 0;
    return lin(L, "e_proj", d, d, AS_STORED, &w->e_proj) || lin(L, "h_proj", d, d, AS_STORED, &w->h_proj) ||
                   vec(L, "enorm.weight", d, 0, &w->enorm) || vec(L, "hnorm.weight", d, 0, &w->hnorm) ||
                   vec(L, "norm.weight", d, 0, &w->norm) || vec(L, "hc_head_fn", hc, hcd, &w->hc_head_fn) ||
                   vec(L, "hc_head_base", hc, 0, &w->hc_head_base) || vec(L, "hc_head_scale", 1, 0, &w->hc_head_scale)
               ? -1
               : 0;
}

int dsv4_layer_w_load(dsv4_wsrc *s, int id, dsv4_ops *o, dsv4_layer_w *w, dsv4_err *e)
{
    const dsv4_config *c = dsv4_wsrc_config(s);
    memset(w, 0, sizeof *w);
    if (id < 0 || id >= c->n_layers + c->n_mtp)
        return dsv4_fail(e, "%s: layer %d does not exist (%d layers + %d MTP blocks)", dsv4_wsrc_path(s), id,
                         c->n_layers, c->n_mtp);
    ld L = {s, o, &w->bytes, e, ""};
    w->id = id;
    w->is_mtp = id >= c->n_layers;
    w->is_hash = c->is_hash[id];
    w->type = dsv4_config_attn(c, id);
    if (w->is_mtp)
        snprintf(L.pre, sizeof L.pre, "mtp.%d.", id - c->n_layers);
    else
        snprintf(L.pre, sizeof L.pre, "layers.%d.", id);
    if (load_layer(&L, c, id, w)) {
        dsv4_layer_w_free(o, w);
        return -1;
    }
    return 0;
}

int dsv4_global_w_load(dsv4_wsrc *s, dsv4_ops *o, dsv4_global_w *w, dsv4_err *e)
{
    const dsv4_config *c = dsv4_wsrc_config(s);
    memset(w, 0, sizeof *w);
    ld L = {s, o, &w->bytes, e, ""};
    int64_t d = c->hidden_size, V = c->vocab_size, hc = c->hc_mult, hcd = dsv4_config_hc_dim(c);
    if (lin(&L, "embed", V, d, AS_STORED, &w->embed) || lin(&L, "head", V, d, AS_STORED, &w->head) ||
        vec(&L, "norm.weight", d, 0, &w->norm) || vec(&L, "hc_head_fn", hc, hcd, &w->hc_head_fn) ||
        vec(&L, "hc_head_base", hc, 0, &w->hc_head_base) || vec(&L, "hc_head_scale", 1, 0, &w->hc_head_scale)) {
        dsv4_global_w_free(o, w);
        return -1;
    }
    return 0;
}
