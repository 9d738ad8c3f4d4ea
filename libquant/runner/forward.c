/* Sequence-level forward (runner.h): appends tokens to a sequence's state through every main
 * layer and returns logits and/or the final streams; the MTP block's forward on those streams. */
#include <stdlib.h>

#include "runner/layer_internal.h"

static int64_t *positions(int64_t p0, int64_t T, dsv4_err *e)
{
    int64_t *p = malloc((size_t)T * sizeof(int64_t) + 1);
    if (!p) { dsv4_fail_rt(e, "out of memory"); return NULL; }
    for (int64_t t = 0; t < T; t++) p[t] = p0 + t;
    return p;
}

static int check_chunk(const dsv4_seq *s, int64_t len, int64_t T, const char *what, dsv4_err *e)
{
    if (T < 1 || T > s->max_chunk)
        return dsv4_fail(e, "%s: %lld tokens in one call; this sequence takes 1 to %lld (max_chunk)", what,
                         (long long)T, (long long)s->max_chunk);
    if (len + T > s->max_len)
        return dsv4_fail(e, "%s: %lld + %lld tokens exceed the sequence's max_len %lld", what, (long long)len,
                         (long long)T, (long long)s->max_len);
    return 0;
}

/* Logits of streams X [T, hc, d] (backend) downloaded to host. */
static int logits_out(const dsv4_model *m, const dsv4_layer_w *mtp, const float *X, int64_t T, float *logits,
                      dsv4_err *e)
{
    dsv4_ops *o = m->ops;
    float *L = dsv4_scratch(o, T * m->cfg.vocab_size, e);
    int rc = !L || dsv4_head_logits(m, mtp, X, T, L, e) ||
             o->download(o, logits, L, (size_t)(T * m->cfg.vocab_size) * sizeof(float), e) ? -1 : 0;
    dsv4_scratch_free(o, L);
    return rc;
}

int dsv4_forward(dsv4_seq *s, const int32_t *ids, int64_t T, float *logits, float *streams_out, dsv4_err *e)
{
    const dsv4_model *m = s->m;
    const dsv4_config *c = &m->cfg;
    dsv4_ops *o = m->ops;
    if (check_chunk(s, s->len, T, "forward", e)) return -1;
    size_t xs = (size_t)(T * c->hc_mult * c->hidden_size);
    int64_t *pos = positions(s->len, T, e);
    float *X = pos ? dsv4_scratch(o, (int64_t)xs, e) : NULL;
    int rc = -1;
    if (!X || dsv4_embed_streams(m, ids, T, X, e)) goto out;
    for (int i = 0; i < c->n_layers; i++)
        if (dsv4_layer_forward(m, &m->layers[i], &s->ls[i], X, ids, pos, T, NULL, e)) goto out;
    if (streams_out && o->download(o, streams_out, X, xs * sizeof(float), e)) goto out;
    if (logits && logits_out(m, NULL, X, T, logits, e)) goto out;
    s->len += T;
    rc = 0;
out:
    dsv4_scratch_free(o, X);
    free(pos);
    return rc;
}

int dsv4_mtp_input(const dsv4_model *m, const dsv4_layer_w *w, const float *H, const int32_t *next_ids, int64_t T,
                   float *X, dsv4_err *e)
{
    dsv4_ops *o = m->ops;
    int64_t hc = m->cfg.hc_mult, d = m->cfg.hidden_size;
    float eps = (float)m->cfg.rms_eps;
    float *hs = dsv4_scratch(o, T * hc * d, e), *em = hs ? dsv4_scratch(o, T * d, e) : NULL;
    float *ep = em ? dsv4_scratch(o, T * d, e) : NULL;
    /* X = h_proj(hnorm(H_i)) per stream + e_proj(enorm(embed(t_{p+1}))) broadcast over streams */
    int rc = !ep || o->upload(o, hs, H, (size_t)(T * hc * d) * sizeof(float), e) ||
                     o->rmsnorm(o, hs, T * hc, d, w->hnorm, eps, hs, e) || o->linear(o, &w->h_proj, hs, T * hc, X, e) ||
                     o->embed(o, &m->g.embed, next_ids, T, em, e) || o->rmsnorm(o, em, T, d, w->enorm, eps, em, e) ||
                     o->linear(o, &w->e_proj, em, T, ep, e) || o->add_bcast(o, ep, T, hc, d, X, e)
                 ? -1 : 0;
    dsv4_scratch_free(o, hs);
    dsv4_scratch_free(o, em);
    dsv4_scratch_free(o, ep);
    return rc;
}

int dsv4_mtp_forward(dsv4_seq *s, const float *H, const int32_t *next_ids, int64_t T, float *logits, dsv4_err *e)
{
    const dsv4_model *m = s->m;
    const dsv4_config *c = &m->cfg;
    dsv4_ops *o = m->ops;
    if (c->n_mtp < 1) return dsv4_fail(e, "MTP forward: the model has no MTP block (num_nextn_predict_layers 0)");
    const dsv4_layer_w *w = &m->layers[c->n_layers];
    if (w->id < 0) return dsv4_fail(e, "MTP forward: the MTP block is not loaded (open with DSV4_LOAD_MTP)");
    if (check_chunk(s, s->mtp_len, T, "MTP forward", e)) return -1;
    int64_t *pos = positions(s->mtp_len, T, e);
    float *X = pos ? dsv4_scratch(o, T * c->hc_mult * c->hidden_size, e) : NULL;
    int rc = -1;
    if (!X || dsv4_mtp_input(m, w, H, next_ids, T, X, e)) goto out;
    if (dsv4_layer_forward(m, w, &s->ls[c->n_layers], X, next_ids, pos, T, NULL, e)) goto out;
    if (logits && logits_out(m, w, X, T, logits, e)) goto out;
    s->mtp_len += T;
    rc = 0;
out:
    dsv4_scratch_free(o, X);
    free(pos);
    return rc;
}
