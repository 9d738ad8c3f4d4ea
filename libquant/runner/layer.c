/* One decoder block (spec §3.2; transformers' DeepseekV4DecoderLayer): mHC pre → RMSNorm →
 * attention → mHC post, then mHC pre → RMSNorm → MoE → mHC post, on the hc_mult residual streams;
 * plus the embedding into streams and the final hc_head → norm → head. */
#include <stdlib.h>

#include "runner/layer_internal.h"

/* One sub-layer site: X [T, hc, d] in place. which = 0 attention, 1 MoE. */
static int site(const dsv4_model *m, const dsv4_layer_w *w, dsv4_layer_state *st, float *X, const int32_t *ids,
                const int64_t *pos, int64_t T, const dsv4_taps *taps, int which, float *R, float *y, float *a,
                float *post, float *comb, dsv4_err *e)
{
    const dsv4_config *c = &m->cfg;
    dsv4_ops *o = m->ops;
    int64_t hc = c->hc_mult, d = c->hidden_size;
    dsv4_hc_args h = {.X = X, .T = T, .hc = hc, .d = d, .fn = which ? w->hc_ffn_fn : w->hc_attn_fn,
                      .base = which ? w->hc_ffn_base : w->hc_attn_base,
                      .scale = which ? w->hc_ffn_scale : w->hc_attn_scale, .iters = (int)c->hc_sinkhorn_iters,
                      .eps = (float)c->hc_eps, .norm_eps = (float)c->rms_eps, .y = y, .post = post, .comb = comb};
    if (o->copy(o, R, X, (size_t)(T * hc * d) * sizeof(float), e) || o->hc_pre(o, &h, e) ||
        o->rmsnorm(o, y, T, d, which ? w->ffn_norm : w->attn_norm, (float)c->rms_eps, y, e))
        return -1;
    if (which ? dsv4_ffn_forward(m, w, y, ids, T, taps, a, e) : dsv4_attn_forward(m, w, st, y, pos, T, taps, a, e))
        return -1;
    return o->hc_post(o, a, R, post, comb, T, hc, d, X, e);
}

int dsv4_layer_forward(const dsv4_model *m, const dsv4_layer_w *w, dsv4_layer_state *st, float *X,
                       const int32_t *ids, const int64_t *pos, int64_t T, const dsv4_taps *taps, dsv4_err *e)
{
    const dsv4_config *c = &m->cfg;
    dsv4_ops *o = m->ops;
    int64_t hc = c->hc_mult, d = c->hidden_size;
    if (w->id < 0) return dsv4_fail(e, "layer forward: the layer's weights are not loaded");
    for (int64_t t = 1; t < T; t++)
        if (pos[t] != pos[t - 1] + 1)
            return dsv4_fail(e, "layer %d: positions must be consecutive (%lld follows %lld)", w->id,
                             (long long)pos[t], (long long)pos[t - 1]);
    float *R = dsv4_scratch(o, T * hc * d, e), *y = R ? dsv4_scratch(o, T * d, e) : NULL;
    float *a = y ? dsv4_scratch(o, T * d, e) : NULL, *pc = a ? dsv4_scratch(o, T * (hc + hc * hc), e) : NULL;
    int rc = -1;
    if (pc && !site(m, w, st, X, ids, pos, T, taps, 0, R, y, a, pc, pc + T * hc, e) &&
        !site(m, w, st, X, ids, pos, T, taps, 1, R, y, a, pc, pc + T * hc, e))
        rc = 0;
    dsv4_scratch_free(o, R);
    dsv4_scratch_free(o, y);
    dsv4_scratch_free(o, a);
    dsv4_scratch_free(o, pc);
    return rc;
}

int dsv4_embed_streams(const dsv4_model *m, const int32_t *ids, int64_t T, float *X, dsv4_err *e)
{
    dsv4_ops *o = m->ops;
    int64_t hc = m->cfg.hc_mult, d = m->cfg.hidden_size;
    float *y = dsv4_scratch(o, T * d, e);
    if (!y) return -1;
    int rc = o->embed(o, &m->g.embed, ids, T, y, e);
    if (!rc) { /* X = 0 + broadcast(y) */
        float *z = dsv4_scratch(o, T * hc * d, e);
        rc = !z || o->copy(o, X, z, (size_t)(T * hc * d) * sizeof(float), e) || o->add_bcast(o, y, T, hc, d, X, e) ? -1 : 0;
        dsv4_scratch_free(o, z);
    }
    dsv4_scratch_free(o, y);
    return rc;
}

int dsv4_head_logits(const dsv4_model *m, const dsv4_layer_w *mtp, const float *X, int64_t T, float *logits,
                     dsv4_err *e)
{
    const dsv4_config *c = &m->cfg;
    dsv4_ops *o = m->ops;
    int64_t hc = c->hc_mult, d = c->hidden_size;
    float *y = dsv4_scratch(o, T * d, e);
    if (!y) return -1;
    dsv4_hc_args h = {.X = X, .T = T, .hc = hc, .d = d, .fn = mtp ? mtp->hc_head_fn : m->g.hc_head_fn,
                      .base = mtp ? mtp->hc_head_base : m->g.hc_head_base,
                      .scale = mtp ? mtp->hc_head_scale : m->g.hc_head_scale, .eps = (float)c->hc_eps,
                      .norm_eps = (float)c->rms_eps, .y = y};
    int rc = o->hc_head(o, &h, e) || o->rmsnorm(o, y, T, d, mtp ? mtp->norm : m->g.norm, (float)c->rms_eps, y, e) ||
             o->linear(o, &m->g.head, y, T, logits, e) ? -1 : 0;
    dsv4_scratch_free(o, y);
    return rc;
}
