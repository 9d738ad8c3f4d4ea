/* The KV compressors of CSA and HCA layers and of the lightning indexer (spec §3.3; transformers'
 * DeepseekV4HCACompressor / CSACompressor / Indexer): fp32 projections of every token, softmax
 * pooling per channel over each block of `ratio` tokens (CSA also over the previous block's first
 * series), RMSNorm, RoPE at the block's first position. With a state, raw projections are kept
 * in a ring so that entries are produced exactly when their block completes, across calls, and
 * survive a rewind. */
#include <stdlib.h>

#include "runner/layer_internal.h"

float *dsv4_scratch(dsv4_ops *o, int64_t n, dsv4_err *e)
{
    return o->alloc(o, (size_t)(n > 0 ? n : 1) * sizeof(float), e);
}

void dsv4_scratch_free(dsv4_ops *o, float *p)
{
    if (p) o->free(o, p);
}

/* RMSNorm and RoPE of entries [w0, w0 + n) stored at ent (rows of Dc). */
static int finish(const dsv4_model *m, const dsv4_cmp_w *w, float *ent, int64_t w0, int64_t n, dsv4_err *e)
{
    dsv4_ops *o = m->ops;
    if (o->rmsnorm(o, ent, n, w->Dc, w->norm, (float)m->cfg.rms_eps, ent, e)) return -1;
    int64_t *p = malloc((size_t)n * sizeof(int64_t) + 1);
    if (!p) return dsv4_fail_rt(e, "out of memory");
    for (int64_t i = 0; i < n; i++) p[i] = (w0 + i) * w->ratio;
    int rc = o->rope(o, ent, n, 1, w->Dc, m->cfg.rope_head_dim, p, m->rope_compress, 0, e);
    free(p);
    return rc;
}

static int stateful(const dsv4_model *m, const dsv4_cmp_w *w, const float *a, const float *b, const int64_t *pos,
                    int64_t T, dsv4_cmp_state *st, dsv4_err *e)
{
    dsv4_ops *o = m->ops;
    int64_t W = st->C * st->Dc, r = w->ratio, cap = st->cap;
    if (dsv4_ring_put(o, st->ra, cap, W, pos[0], T, a, e) || dsv4_ring_put(o, st->rb, cap, W, pos[0], T, b, e))
        return -1;
    int64_t want = (pos[T - 1] + 1) / r;
    if (want > st->max_entries)
        return dsv4_fail(e, "compressor: %lld entries exceed the state's capacity %lld (max_len too small)",
                         (long long)want, (long long)st->max_entries);
    if (want <= st->n_ent) return 0;
    float *buf = dsv4_scratch(o, 4 * r * W, e);
    if (!buf) return -1;
    float *ca = buf, *cb = buf + r * W, *pa = buf + 2 * r * W, *pb = buf + 3 * r * W;
    int rc = 0;
    for (int64_t x = st->n_ent; x < want && !rc; x++) {
        int prev = w->overlap && x > 0;
        rc = dsv4_ring_get(o, st->ra, cap, W, x * r, r, ca, e) || dsv4_ring_get(o, st->rb, cap, W, x * r, r, cb, e) ||
             (prev && (dsv4_ring_get(o, st->ra, cap, W, (x - 1) * r, r, pa, e) || dsv4_ring_get(o, st->rb, cap, W, (x - 1) * r, r, pb, e)));
        if (rc) break;
        dsv4_pool_args pl = {.a = ca, .b = cb, .prev_a = prev ? pa : NULL, .prev_b = prev ? pb : NULL, .ape = w->ape,
                             .n_win = 1, .ratio = r, .Dc = w->Dc, .overlap = w->overlap, .out = st->ent + x * w->Dc};
        rc = o->pool(o, &pl, e) || finish(m, w, st->ent + x * w->Dc, x, 1, e);
    }
    dsv4_scratch_free(o, buf);
    if (rc) return -1;
    st->n_ent = want;
    return 0;
}

int dsv4_compress(const dsv4_model *m, const dsv4_cmp_w *w, const float *y, const int64_t *pos, int64_t T,
                  dsv4_cmp_state *st, float **ent, float **own, int64_t *n_ent, dsv4_err *e)
{
    dsv4_ops *o = m->ops;
    int64_t W = (w->overlap ? 2 : 1) * w->Dc;
    *ent = *own = NULL;
    *n_ent = 0;
    float *a = dsv4_scratch(o, T * W, e), *b = a ? dsv4_scratch(o, T * W, e) : NULL;
    int rc = -1;
    if (!a || !b) goto out;
    if (o->linear(o, w->wkv, y, T, a, e) || o->linear(o, w->wgate, y, T, b, e)) goto out;
    if (st) {
        if (stateful(m, w, a, b, pos, T, st, e)) goto out;
        *ent = st->ent;
        *n_ent = st->n_ent;
        rc = 0;
        goto out;
    }
    if (pos[0] != 0) {
        dsv4_fail(e, "stateless compressor: the tokens must start at position 0, not %lld", (long long)pos[0]);
        goto out;
    }
    int64_t nw = T / w->ratio;
    if (nw == 0) { rc = 0; goto out; }
    float *buf = dsv4_scratch(o, nw * w->Dc, e);
    if (!buf) goto out;
    dsv4_pool_args pl = {.a = a, .b = b, .ape = w->ape, .n_win = nw, .ratio = w->ratio, .Dc = w->Dc,
                         .overlap = w->overlap, .out = buf};
    if (o->pool(o, &pl, e) || finish(m, w, buf, 0, nw, e)) { dsv4_scratch_free(o, buf); goto out; }
    *ent = *own = buf;
    *n_ent = nw;
    rc = 0;
out:
    dsv4_scratch_free(o, a);
    dsv4_scratch_free(o, b);
    return rc;
}
