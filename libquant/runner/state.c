/* A sequence's decode state (runner.h): per layer a window ring of post-norm, post-RoPE K=V rows
 * with their positions, and per compressor (attention's, indexer's) a ring of raw projections and
 * the compressed entries. Every piece of state is a function of the kept rows and the length, so
 * rewinding is setting the length (within max_chunk tokens; spec §4.2). */
#include <stdlib.h>
#include <string.h>

#include "runner/runner.h"

static int cmp_init(dsv4_ops *o, dsv4_cmp_state *c, int64_t ratio, int64_t Dc, int overlap, int64_t max_len,
                    int64_t max_chunk, dsv4_err *e)
{
    c->ratio = ratio;
    c->Dc = Dc;
    c->C = overlap ? 2 : 1;
    c->cap = 2 * ratio + max_chunk;
    c->max_entries = max_len / ratio + 1;
    size_t row = (size_t)(c->C * Dc) * sizeof(float);
    if (!(c->ra = o->alloc(o, (size_t)c->cap * row, e)) || !(c->rb = o->alloc(o, (size_t)c->cap * row, e)) ||
        !(c->ent = o->alloc(o, (size_t)c->max_entries * (size_t)Dc * sizeof(float), e)))
        return -1;
    return 0;
}

static void cmp_free(dsv4_ops *o, dsv4_cmp_state *c)
{
    if (c->ra) o->free(o, c->ra);
    if (c->rb) o->free(o, c->rb);
    if (c->ent) o->free(o, c->ent);
    memset(c, 0, sizeof *c);
}

void dsv4_seq_free(dsv4_seq *s)
{
    if (!s || !s->m) return;
    dsv4_ops *o = s->m->ops;
    int nl = s->m->cfg.n_layers + s->m->cfg.n_mtp;
    for (int i = 0; s->ls && i < nl; i++) {
        dsv4_layer_state *l = &s->ls[i];
        if (l->ring) o->free(o, l->ring);
        free(l->ring_pos);
        cmp_free(o, &l->cmp);
        cmp_free(o, &l->idx);
    }
    free(s->ls);
    memset(s, 0, sizeof *s);
}

void dsv4_seq_reset(dsv4_seq *s)
{
    int nl = s->m->cfg.n_layers + s->m->cfg.n_mtp;
    for (int i = 0; i < nl; i++) {
        dsv4_layer_state *l = &s->ls[i];
        for (int64_t j = 0; j < l->cap; j++) l->ring_pos[j] = -1;
        l->cmp.n_ent = l->idx.n_ent = 0;
    }
    s->len = s->mtp_len = 0;
}

int dsv4_seq_init(const dsv4_model *m, int64_t max_len, int64_t max_chunk, dsv4_seq *s, dsv4_err *e)
{
    memset(s, 0, sizeof *s);
    const dsv4_config *c = &m->cfg;
    if (max_len < 1 || max_chunk < 1 || max_chunk > max_len)
        return dsv4_fail(e, "sequence state: max_len %lld and max_chunk %lld must satisfy 1 <= max_chunk <= max_len",
                         (long long)max_len, (long long)max_chunk);
    s->m = m;
    s->max_len = max_len;
    s->max_chunk = max_chunk;
    int nl = c->n_layers + c->n_mtp;
    if (!(s->ls = calloc((size_t)nl, sizeof *s->ls))) return dsv4_fail_rt(e, "out of memory");
    dsv4_ops *o = m->ops;
    for (int i = 0; i < nl; i++) {
        dsv4_layer_state *l = &s->ls[i];
        l->cap = c->window + max_chunk;
        if (!(l->ring = o->alloc(o, (size_t)(l->cap * c->head_dim) * sizeof(float), e))) goto fail;
        if (!(l->ring_pos = malloc((size_t)l->cap * sizeof(int64_t)))) { dsv4_fail_rt(e, "out of memory"); goto fail; }
        dsv4_attn_type t = dsv4_config_attn(c, i);
        if (t != DSV4_ATTN_SWA) {
            l->has_cmp = 1;
            if (cmp_init(o, &l->cmp, c->compress_ratio[i], c->head_dim, t == DSV4_ATTN_CSA, max_len, max_chunk, e))
                goto fail;
        }
        if (t == DSV4_ATTN_CSA) {
            l->has_idx = 1;
            if (cmp_init(o, &l->idx, c->compress_ratio[i], c->index_head_dim, 1, max_len, max_chunk, e)) goto fail;
        }
    }
    dsv4_seq_reset(s);
    return 0;
fail:
    dsv4_seq_free(s);
    return -1;
}

static void layer_rewind(dsv4_layer_state *l, int64_t new_len)
{
    for (int64_t j = 0; j < l->cap; j++)
        if (l->ring_pos[j] >= new_len) l->ring_pos[j] = -1;
    if (l->has_cmp) l->cmp.n_ent = new_len / l->cmp.ratio;
    if (l->has_idx) l->idx.n_ent = new_len / l->idx.ratio;
}

int dsv4_seq_rewind(dsv4_seq *s, int64_t new_len, int64_t mtp_new_len, dsv4_err *e)
{
    if (new_len < 0 || new_len > s->len || s->len - new_len > s->max_chunk)
        return dsv4_fail(e, "rewind from %lld to %lld tokens: only up to %lld tokens back can be restored",
                         (long long)s->len, (long long)new_len, (long long)s->max_chunk);
    if (mtp_new_len < 0 || mtp_new_len > s->mtp_len || s->mtp_len - mtp_new_len > s->max_chunk)
        return dsv4_fail(e, "rewind of the MTP block from %lld to %lld positions: only up to %lld back can be restored",
                         (long long)s->mtp_len, (long long)mtp_new_len, (long long)s->max_chunk);
    const dsv4_config *c = &s->m->cfg;
    for (int i = 0; i < c->n_layers; i++) layer_rewind(&s->ls[i], new_len);
    for (int i = c->n_layers; i < c->n_layers + c->n_mtp; i++) layer_rewind(&s->ls[i], mtp_new_len);
    s->len = new_len;
    s->mtp_len = mtp_new_len;
    return 0;
}
