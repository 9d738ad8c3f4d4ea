/* Pieces of one decoder layer's forward shared by layer.c, layer_attn.c, layer_cmp.c and
 * layer_ffn.c (runner.h has the public entry points). */
#ifndef DSV4_RUNNER_LAYER_INTERNAL_H
#define DSV4_RUNNER_LAYER_INTERNAL_H

#include "runner/runner.h"

/* Backend scratch of n floats (zeroed); NULL with a message. */
float *dsv4_scratch(dsv4_ops *o, int64_t n, dsv4_err *e);
void dsv4_scratch_free(dsv4_ops *o, float *p);

/* Rows of W floats in a ring of cap slots indexed by position (slot = position % cap), for
 * positions [p0, p0 + n) (n <= cap): put copies src into the ring, get copies the ring out to dst;
 * one backend copy, or two where the range wraps. */
int dsv4_ring_put(dsv4_ops *o, float *ring, int64_t cap, int64_t W, int64_t p0, int64_t n, const float *src,
                  dsv4_err *e);
int dsv4_ring_get(dsv4_ops *o, const float *ring, int64_t cap, int64_t W, int64_t p0, int64_t n, float *dst,
                  dsv4_err *e);

/* One compressor (the attention's or the indexer's) on the T new tokens y [T, d] at positions pos:
 * projections in fp32, softmax pooling per block of `ratio` (overlapping when overlap), RMSNorm,
 * RoPE at the block's first position (compress table). Stateless (st NULL, pos[0] == 0): the
 * entries of the complete blocks go to a new buffer *own (caller frees with dsv4_scratch_free),
 * *ent = *own. Stateful: new entries are appended to st->ent, *ent = st->ent, *own = NULL.
 * *n_ent: number of entries. */
typedef struct dsv4_cmp_w {
    const dsv4_lin *wkv, *wgate;
    const float *ape, *norm;
    int64_t ratio, Dc;
    int overlap;
} dsv4_cmp_w;

int dsv4_compress(const dsv4_model *m, const dsv4_cmp_w *w, const float *y, const int64_t *pos, int64_t T,
                  dsv4_cmp_state *st, float **ent, float **own, int64_t *n_ent, dsv4_err *e);

/* Attention sub-layer: y [T, d] normed input → out [T, d]. */
int dsv4_attn_forward(const dsv4_model *m, const dsv4_layer_w *w, dsv4_layer_state *st, const float *y,
                      const int64_t *pos, int64_t T, const dsv4_taps *taps, float *out, dsv4_err *e);
/* MoE sub-layer: y [T, d] normed input, token ids (host) → out [T, d]. */
int dsv4_ffn_forward(const dsv4_model *m, const dsv4_layer_w *w, const float *y, const int32_t *ids, int64_t T,
                     const dsv4_taps *taps, float *out, dsv4_err *e);

/* 1 when the taps ask for a site. */
static inline int dsv4_tap_wants(const dsv4_taps *t, dsv4_tap_site site)
{
    return t && t->fn && (!t->sites || (t->sites & DSV4_TAP_BIT(site)));
}

/* Calls the tap when there is one and it wants the site. */
static inline int dsv4_tap(const dsv4_taps *t, int layer, dsv4_tap_site site, int expert, const float *x,
                           int64_t rows, int64_t cols, dsv4_err *e)
{
    return dsv4_tap_wants(t, site) ? t->fn(t->ud, layer, site, expert, x, rows, cols, e) : 0;
}

#endif
