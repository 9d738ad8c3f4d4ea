/* The attention sub-layer (spec §3.3; transformers' DeepseekV4Attention): low-rank q with q_norm
 * and the per-head unweighted RMS, the shared K=V head with kv_norm, partial interleaved RoPE with
 * the layer's table, the window (ring of the state, or the T tokens themselves), the compressed
 * entries (dense for HCA, indexer-selected for CSA), the sink, inverse RoPE on the output, and the
 * grouped low-rank output projection. */
#include <math.h>
#include <stdlib.h>

#include "runner/layer_internal.h"

typedef struct bufs {
    float *qr, *q, *kv, *o, *u, *qi, *wi;
    int32_t *sel;
} bufs;

static void bufs_free(dsv4_ops *o, bufs *b)
{
    float **p[] = {&b->qr, &b->q, &b->kv, &b->o, &b->u, &b->qi, &b->wi};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++) dsv4_scratch_free(o, *p[i]);
    if (b->sel) o->free(o, b->sel);
}

/* CSA: the lightning indexer's top-k over the compressed entries, into b->sel [T, topk]. */
static int index_select(const dsv4_model *m, const dsv4_layer_w *w, dsv4_layer_state *st, const float *y,
                        const int64_t *pos, int64_t T, bufs *b, dsv4_err *e)
{
    const dsv4_config *c = &m->cfg;
    dsv4_ops *o = m->ops;
    const dsv4_attn_w *A = &w->attn;
    int64_t Hi = c->index_n_heads, Di = c->index_head_dim;
    dsv4_cmp_w cw = {&A->i_wkv, &A->i_wgate, A->i_ape, A->i_norm, c->compress_ratio[w->id], Di, 1};
    float *keys, *own;
    int64_t nk;
    if (dsv4_compress(m, &cw, y, pos, T, st ? &st->idx : NULL, &keys, &own, &nk, e)) return -1;
    int rc = -1;
    if (!(b->qi = dsv4_scratch(o, T * Hi * Di, e)) || !(b->wi = dsv4_scratch(o, T * Hi, e)) ||
        !(b->sel = o->alloc(o, (size_t)(T * c->index_topk) * sizeof(int32_t), e)))
        goto out;
    if (o->linear(o, &A->i_wq_b, b->qr, T, b->qi, e) ||
        o->rope(o, b->qi, T, Hi, Di, c->rope_head_dim, pos, m->rope_compress, 0, e) ||
        o->linear(o, &A->i_wproj, y, T, b->wi, e))
        goto out;
    dsv4_index_args ia = {.q = b->qi, .k = keys, .wts = b->wi, .T = T, .Hi = Hi, .Di = Di, .nk = nk,
                          .ratio = c->compress_ratio[w->id], .topk = c->index_topk, .qpos = pos,
                          .qscale = 1.0f / sqrtf((float)Di), .wscale = 1.0f / sqrtf((float)Hi), .sel = b->sel};
    rc = o->indexer(o, &ia, e);
out:
    dsv4_scratch_free(o, own);
    return rc;
}

int dsv4_attn_forward(const dsv4_model *m, const dsv4_layer_w *w, dsv4_layer_state *st, const float *y,
                      const int64_t *pos, int64_t T, const dsv4_taps *taps, float *out, dsv4_err *e)
{
    const dsv4_config *c = &m->cfg;
    dsv4_ops *o = m->ops;
    const dsv4_attn_w *A = &w->attn;
    int64_t H = c->n_heads, D = c->head_dim, rd = c->rope_head_dim, G = c->o_groups;
    float eps = (float)c->rms_eps;
    const float *tab = dsv4_model_rope(m, w->id);
    bufs b = {0};
    float *cent = NULL, *cown = NULL;
    int64_t ncmp = 0;
    int rc = -1;
    if (!(b.qr = dsv4_scratch(o, T * c->q_lora_rank, e)) || !(b.q = dsv4_scratch(o, T * H * D, e)) ||
        !(b.kv = dsv4_scratch(o, T * D, e)) || !(b.o = dsv4_scratch(o, T * H * D, e)) ||
        !(b.u = dsv4_scratch(o, T * G * c->o_lora_rank, e)))
        goto out;
    if (dsv4_tap(taps, w->id, DSV4_TAP_ATTN_IN, -1, y, T, c->hidden_size, e)) goto out;
    /* queries */
    if (o->linear(o, &A->wq_a, y, T, b.qr, e) || o->rmsnorm(o, b.qr, T, c->q_lora_rank, A->q_norm, eps, b.qr, e) ||
        dsv4_tap(taps, w->id, DSV4_TAP_Q_LORA, -1, b.qr, T, c->q_lora_rank, e) ||
        o->linear(o, &A->wq_b, b.qr, T, b.q, e) || o->rmsnorm(o, b.q, T * H, D, NULL, eps, b.q, e) ||
        o->rope(o, b.q, T, H, D, rd, pos, tab, 0, e))
        goto out;
    /* the shared K=V head */
    if (o->linear(o, &A->wkv, y, T, b.kv, e) || o->rmsnorm(o, b.kv, T, D, A->kv_norm, eps, b.kv, e) ||
        o->rope(o, b.kv, T, 1, D, rd, pos, tab, 0, e))
        goto out;
    const float *kv = b.kv;
    const int64_t *kvpos = pos;
    int64_t nwin = T;
    if (st) {
        if (dsv4_ring_put(o, st->ring, st->cap, D, pos[0], T, b.kv, e)) goto out;
        for (int64_t t = 0; t < T; t++) st->ring_pos[pos[t] % st->cap] = pos[t];
        kv = st->ring;
        kvpos = st->ring_pos;
        nwin = st->cap;
    }
    /* compressed entries */
    if (w->type != DSV4_ATTN_SWA) {
        dsv4_cmp_w cw = {&A->c_wkv, &A->c_wgate, A->c_ape, A->c_norm, c->compress_ratio[w->id], D,
                         w->type == DSV4_ATTN_CSA};
        if (dsv4_compress(m, &cw, y, pos, T, st ? &st->cmp : NULL, &cent, &cown, &ncmp, e)) goto out;
        if (w->type == DSV4_ATTN_CSA && index_select(m, w, st, y, pos, T, &b, e)) goto out;
    }
    dsv4_attn_args aa = {.q = b.q, .T = T, .H = H, .D = D, .qpos = pos, .kv = kv, .kvpos = kvpos, .nwin = nwin,
                         .window = c->window, .ckv = cent, .ncmp = ncmp,
                         .ratio = w->type != DSV4_ATTN_SWA ? c->compress_ratio[w->id] : 0, .sel = b.sel,
                         .nsel = b.sel ? c->index_topk : 0, .sink = A->sink, .scale = 1.0f / sqrtf((float)D),
                         .out = b.o};
    if (o->attention(o, &aa, e) || o->rope(o, b.o, T, H, D, rd, pos, tab, 1, e)) goto out;
    /* grouped low-rank output projection */
    if (dsv4_tap(taps, w->id, DSV4_TAP_WO_A, -1, b.o, T * G, H * D / G, e) ||
        o->linear_grouped(o, &A->wo_a, G, b.o, T, b.u, e) ||
        dsv4_tap(taps, w->id, DSV4_TAP_WO_B, -1, b.u, T, G * c->o_lora_rank, e) ||
        o->linear(o, &A->wo_b, b.u, T, out, e))
        goto out;
    rc = 0;
out:
    dsv4_scratch_free(o, cown);
    bufs_free(o, &b);
    return rc;
}
