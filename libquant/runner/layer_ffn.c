/* The MoE sub-layer (spec §3.4; transformers' DeepseekV4SparseMoeBlock): fp32 router logits,
 * sqrt(softplus) scores, hash routing by tid2eid on hash layers or top-k of score + bias (the bias
 * selects, it does not weigh), weights normalized over the chosen experts (+1e-20) × route scale,
 * routed experts plus the shared expert. The selection runs on the host. */
#include <stdlib.h>
#include <string.h>

#include "runner/layer_internal.h"

/* Top-k of v[E] (highest first; the lower index on ties) into idx[K]. */
static void topk(const float *v, int64_t E, int64_t K, int32_t *idx)
{
    for (int64_t k = 0; k < K; k++) {
        int64_t best = -1;
        for (int64_t x = 0; x < E; x++) {
            int taken = 0;
            for (int64_t j = 0; j < k; j++) taken |= idx[j] == x;
            if (!taken && (best < 0 || v[x] > v[best])) best = x;
        }
        idx[k] = (int32_t)best;
    }
}

/* Routing of T tokens from their scores s[T, E] (host): idx and wts [T, K]. */
static int route(const dsv4_model *m, const dsv4_layer_w *w, const float *s, const int32_t *ids, int64_t T,
                 int32_t *idx, float *wts, dsv4_err *e)
{
    const dsv4_config *c = &m->cfg;
    int64_t E = c->n_routed_experts, K = c->n_activated_experts;
    const float *bias = w->ffn.gate_bias;
    float *biased = malloc((size_t)E * sizeof(float));
    if (!biased) return dsv4_fail_rt(e, "out of memory");
    for (int64_t t = 0; t < T; t++) {
        const float *st = s + t * E;
        int32_t *it = idx + t * K;
        if (w->ffn.tid2eid) {
            if (ids[t] < 0 || ids[t] >= c->vocab_size) {
                free(biased);
                return dsv4_fail(e, "layer %d: token id %d is outside the vocabulary [0, %lld)", w->id, ids[t],
                                 (long long)c->vocab_size);
            }
            memcpy(it, w->ffn.tid2eid + (int64_t)ids[t] * K, (size_t)K * sizeof(int32_t));
        } else {
            for (int64_t x = 0; x < E; x++) biased[x] = st[x] + bias[x];
            topk(biased, E, K, it);
        }
        float sum = 0;
        for (int64_t k = 0; k < K; k++) sum += st[it[k]];
        for (int64_t k = 0; k < K; k++) wts[t * K + k] = st[it[k]] / (sum + 1e-20f) * (float)c->route_scale;
    }
    free(biased);
    return 0;
}

int dsv4_ffn_forward(const dsv4_model *m, const dsv4_layer_w *w, const float *y, const int32_t *ids, int64_t T,
                     const dsv4_taps *taps, float *out, dsv4_err *e)
{
    const dsv4_config *c = &m->cfg;
    dsv4_ops *o = m->ops;
    int64_t E = c->n_routed_experts, K = c->n_activated_experts, d = c->hidden_size;
    float *lg = dsv4_scratch(o, T * E, e), *sh = lg ? dsv4_scratch(o, T * d, e) : NULL;
    float *s = malloc((size_t)(T * E) * sizeof(float) + 1), *wts = malloc((size_t)(T * K) * sizeof(float) + 1);
    int32_t *idx = malloc((size_t)(T * K) * sizeof(int32_t) + 1);
    int rc = -1;
    if (!lg || !sh) goto out;
    if (!s || !wts || !idx) { dsv4_fail_rt(e, "out of memory"); goto out; }
    if (dsv4_tap(taps, w->id, DSV4_TAP_FFN_IN, -1, y, T, d, e) || o->linear(o, &w->ffn.gate, y, T, lg, e) ||
        o->score(o, lg, T, E, c->score_func, e) || o->download(o, s, lg, (size_t)(T * E) * sizeof(float), e) ||
        route(m, w, s, ids, T, idx, wts, e))
        goto out;
    dsv4_scratch_free(o, lg);
    lg = dsv4_scratch(o, T * d, e); /* zeroed accumulator for the routed experts */
    if (!lg) goto out;
    dsv4_moe_args ma = {.x = y, .T = T, .K = K, .E = E, .idx = idx, .wts = wts, .w1 = w->ffn.w1, .w3 = w->ffn.w3,
                        .w2 = w->ffn.w2, .limit = (float)c->swiglu_limit, .out = lg};
    if (o->moe(o, &ma, e) ||
        o->swiglu(o, &w->ffn.sh_w1, &w->ffn.sh_w3, &w->ffn.sh_w2, y, T, (float)c->swiglu_limit, sh, e) ||
        o->axpy(o, 1.0f, sh, T * d, lg, e) || o->copy(o, out, lg, (size_t)(T * d) * sizeof(float), e))
        goto out;
    rc = 0;
out:
    dsv4_scratch_free(o, lg);
    dsv4_scratch_free(o, sh);
    free(s); free(wts); free(idx);
    return rc;
}
