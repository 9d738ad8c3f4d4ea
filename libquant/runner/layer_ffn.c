/* The MoE sub-layer (spec §3.4; transformers' DeepseekV4SparseMoeBlock): fp32 router logits,
 * sqrt(softplus) scores, hash routing by tid2eid on hash layers or top-k of score + bias (the bias
 * selects, it does not weigh), weights normalized over the chosen experts (+1e-20) × route scale,
 * routed experts plus the shared expert. The selection runs on the host.
 * Calibration taps (runner.h): FFN_IN, and when the taps want them the shared expert's hidden
 * (SHARED_W2) and the routed experts' inputs and hiddens (EXPERT_IN / EXPERT_W2), recomputed
 * beside the MoE op (which keeps its tokens inside the backend) from the same routing; the output
 * is the untapped forward's, bit for bit. */
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

/* SHARED_W2: the shared expert's hidden act(sh_w1 y, sh_w3 y) [T, inter]. */
static int shared_tap(const dsv4_model *m, const dsv4_layer_w *w, const float *y, int64_t T, const dsv4_taps *taps,
                      dsv4_err *e)
{
    dsv4_ops *o = m->ops;
    int64_t inter = w->ffn.sh_w1.out;
    float *g = dsv4_scratch(o, T * inter, e), *u = g ? dsv4_scratch(o, T * inter, e) : NULL;
    int rc = !u || o->linear(o, &w->ffn.sh_w1, y, T, g, e) || o->linear(o, &w->ffn.sh_w3, y, T, u, e) ||
             o->swiglu_act(o, g, u, T * inter, (float)m->cfg.swiglu_limit, g, e) ||
             dsv4_tap(taps, w->id, DSV4_TAP_SHARED_W2, -1, g, T, inter, e) ? -1 : 0;
    dsv4_scratch_free(o, g);
    dsv4_scratch_free(o, u);
    return rc;
}

/* EXPERT_W2 of expert x over n rows xs [n, d]: its hidden into g (u: scratch), then the tap. */
static int expert_hidden_tap(const dsv4_model *m, const dsv4_layer_w *w, int x, const float *xs, int64_t n, float *g,
                             float *u, const dsv4_taps *taps, dsv4_err *e)
{
    dsv4_ops *o = m->ops;
    int64_t inter = w->ffn.w1[x].out;
    return o->linear(o, &w->ffn.w1[x], xs, n, g, e) || o->linear(o, &w->ffn.w3[x], xs, n, u, e) ||
                   o->swiglu_act(o, g, u, n * inter, (float)m->cfg.swiglu_limit, g, e) ||
                   dsv4_tap(taps, w->id, DSV4_TAP_EXPERT_W2, x, g, n, inter, e)
               ? -1 : 0;
}

/* EXPERT_IN / EXPERT_W2 from the routing idx [T, K] (host), per expert mode. The (token, k) pairs
 * of the ROUTED experts are grouped by expert in pair order (as the MoE op groups them) and their
 * rows gathered with one embed from y seen as an F32 table of T rows. */
static int expert_taps(const dsv4_model *m, const dsv4_layer_w *w, const float *y, int64_t T, const int32_t *idx,
                       const dsv4_taps *taps, dsv4_err *e)
{
    dsv4_ops *o = m->ops;
    int64_t E = m->cfg.n_routed_experts, K = m->cfg.n_activated_experts, d = m->cfg.hidden_size;
    int64_t inter = w->ffn.w1[0].out;
    int want_w2 = dsv4_tap_wants(taps, DSV4_TAP_EXPERT_W2);
    const uint8_t *mode = taps->expert_mode;
    int64_t *start = calloc((size_t)E + 1, sizeof(int64_t)), *fill = calloc((size_t)E + 1, sizeof(int64_t));
    int32_t *tok = malloc((size_t)(T * K) * sizeof(int32_t) + 1);
    float *xg = NULL, *g = NULL, *u = NULL;
    int rc = -1, any_all = 0;
    if (!start || !fill || !tok) { dsv4_fail_rt(e, "layer %d: expert taps: out of memory", w->id); goto out; }
    for (int64_t x = 0; x < E && mode; x++) {
        if (mode[x] > DSV4_TAP_SKIP) {
            dsv4_fail(e, "layer %d: taps expert_mode[%lld] = %d: expected DSV4_TAP_ROUTED (0), DSV4_TAP_ALL_TOKENS "
                      "(1) or DSV4_TAP_SKIP (2)", w->id, (long long)x, mode[x]);
            goto out;
        }
        any_all |= mode[x] == DSV4_TAP_ALL_TOKENS;
    }
    for (int64_t i = 0; i < T * K; i++)
        if (!mode || mode[idx[i]] == DSV4_TAP_ROUTED) start[idx[i] + 1]++;
    for (int64_t x = 0; x < E; x++) start[x + 1] += start[x];
    for (int64_t i = 0; i < T * K; i++)
        if (!mode || mode[idx[i]] == DSV4_TAP_ROUTED) tok[start[idx[i]] + fill[idx[i]]++] = (int32_t)(i / K);
    int64_t nr = start[E], rows = want_w2 ? (any_all && nr < T ? T : nr) : 0;
    dsv4_lin table = {.out = T, .in = d, .fmt = DSV4_LW_F32, .w = (void *)y, .w_bytes = (size_t)(T * d) * sizeof(float)};
    if ((nr && !(xg = dsv4_scratch(o, nr * d, e))) ||
        (rows && (!(g = dsv4_scratch(o, rows * inter, e)) || !(u = dsv4_scratch(o, rows * inter, e)))))
        goto out;
    if ((nr && o->embed(o, &table, tok, nr, xg, e)) ||
        (any_all && dsv4_tap(taps, w->id, DSV4_TAP_EXPERT_IN, DSV4_TAP_EXPERT_ALL, y, T, d, e)))
        goto out;
    for (int64_t x = 0; x < E; x++) {
        int64_t n = start[x + 1] - start[x];
        if (mode && mode[x] == DSV4_TAP_ALL_TOKENS) {
            if (want_w2 && expert_hidden_tap(m, w, (int)x, y, T, g, u, taps, e)) goto out;
        } else if (n) {
            const float *xs = xg + start[x] * d;
            if (dsv4_tap(taps, w->id, DSV4_TAP_EXPERT_IN, (int)x, xs, n, d, e) ||
                (want_w2 && expert_hidden_tap(m, w, (int)x, xs, n, g + start[x] * inter, u + start[x] * inter, taps,
                                              e)))
                goto out;
        }
    }
    rc = 0;
out:
    dsv4_scratch_free(o, xg);
    dsv4_scratch_free(o, g);
    dsv4_scratch_free(o, u);
    free(start); free(fill); free(tok);
    return rc;
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
    if (taps && taps->routed_counts)
        for (int64_t i = 0; i < T * K; i++)
            taps->routed_counts[idx[i]]++;
    if (T > 0 && ((dsv4_tap_wants(taps, DSV4_TAP_SHARED_W2) && shared_tap(m, w, y, T, taps, e)) ||
                  ((dsv4_tap_wants(taps, DSV4_TAP_EXPERT_IN) || dsv4_tap_wants(taps, DSV4_TAP_EXPERT_W2)) &&
                   expert_taps(m, w, y, T, idx, taps, e))))
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
