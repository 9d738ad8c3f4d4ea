/* The MoE sub-layer's calibration taps (runner.h, issue 6) on the tiny model, part 2: with every
 * expert ROUTED, EXPERT_IN carries exactly the FFN_IN rows of the tokens routed to each expert, in
 * token order (hash layers: tid2eid's experts; the others: the top K of score + bias), T·K rows
 * in all; EXPERT_W2 and SHARED_W2 equal act(w1 x, w3 x) computed on the host in double from the
 * source's dequantized weights; w2 over the tapped hiddens, weighted by the routing and summed
 * with the shared expert, rebuilds the MoE output. Tolerance 1e-5 of each row's largest value
 * (fp32 GEMMs of 128-256 terms against double: ~1e-6 measured). On the CPU and on CUDA (skipped
 * without a GPU). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gpu.h"
#include "harness.h"
#include "runner_taps_util.h"

/* Token of each EXPERT_IN row: the FFN_IN row it equals bit for bit, tokens ascending. */
static int match_rows(const float *y, int64_t d, const rt_call *c, int32_t *tok)
{
    int64_t t = 0;
    for (int64_t r = 0; r < c->rows; r++, t++) {
        while (t < NT && memcmp(y + t * d, c->x + r * d, (size_t)d * sizeof(float))) t++;
        if (t == NT) return -1;
        tok[r] = (int32_t)t;
    }
    return 0;
}

static int cmp_i32(const void *a, const void *b) { return *(const int32_t *)a - *(const int32_t *)b; }

/* One layer's taps (every site, every expert ROUTED) against host references. */
static void check_layer(rt_walk *k, int L, const rt_rec *r)
{
    const dsv4_config *c = &k->f.m.cfg;
    const dsv4_layer_w *w = &k->f.m.layers[L];
    dsv4_ops *o = k->f.ops;
    dsv4_wsrc *src = k->f.m.src;
    int64_t E = c->n_routed_experts, K = c->n_activated_experts, d = c->hidden_size, I = c->moe_inter_dim;
    int64_t Is = w->ffn.sh_w1.out, total = 0;
    const rt_call *fi = rt_find(r, DSV4_TAP_FFN_IN, -1), *sh = rt_find(r, DSV4_TAP_SHARED_W2, -1);
    REQUIRE(rt_count(r, DSV4_TAP_FFN_IN) == 1 && fi && fi->rows == NT && fi->cols == d);
    REQUIRE(rt_count(r, DSV4_TAP_SHARED_W2) == 1 && sh && sh->rows == NT && sh->cols == Is);
    CHECK(!rt_find(r, DSV4_TAP_EXPERT_IN, DSV4_TAP_EXPERT_ALL));
    const float *y = fi->x;
    float *gate = rt_deq_ffn(src, L, "gate", E, d), *s1 = rt_deq_ffn(src, L, "shared_experts.w1", Is, d);
    float *s3 = rt_deq_ffn(src, L, "shared_experts.w3", Is, d), *s2 = rt_deq_ffn(src, L, "shared_experts.w2", d, Is);
    double *sc = malloc((size_t)(NT * E) * sizeof(double)), *acc = calloc((size_t)(NT * d), sizeof(double));
    double *ref = calloc((size_t)(NT * d), sizeof(double)), *h = malloc((size_t)(NT * (Is > I ? Is : I)) * sizeof(double));
    double S[NT] = {0}, worst_h = 0;
    int32_t *chosen = malloc((size_t)(NT * K) * sizeof(int32_t)), nk[NT] = {0}, tok[NT];
    dsv4_err e = {0};
    float *yb = dsv4_scratch(o, NT * d, &e), *out = dsv4_scratch(o, NT * d, &e);
    float *got = malloc((size_t)(NT * d) * sizeof(float));
    REQUIRE(gate && s1 && s3 && s2 && sc && acc && ref && h && chosen && yb && out && got && K <= 8);
    for (int64_t t = 0; t < NT; t++) /* routing scores sqrt(softplus(gate y)) */
        for (int64_t x = 0; x < E; x++) {
            double l = 0;
            for (int64_t i = 0; i < d; i++) l += (double)gate[x * d + i] * y[t * d + i];
            sc[t * E + x] = sqrt(l > 30 ? l : log1p(exp(l)));
        }
    for (int64_t x = 0; x < E; x++) {
        const rt_call *xi = rt_find(r, DSV4_TAP_EXPERT_IN, (int)x), *xw = rt_find(r, DSV4_TAP_EXPERT_W2, (int)x);
        if (!xi) { CHECK_MSG(!xw, "layer %d expert %lld: EXPERT_W2 without EXPERT_IN", L, (long long)x); continue; }
        REQUIRE(xi->cols == d && xi->rows > 0 && xi->rows <= NT && xw && xw->rows == xi->rows && xw->cols == I);
        if (match_rows(y, d, xi, tok)) {
            CHECK_MSG(0, "layer %d expert %lld: EXPERT_IN rows are not FFN_IN rows in token order", L, (long long)x);
            continue;
        }
        char n1[48], n3[48], n2[48];
        snprintf(n1, sizeof n1, "experts.%lld.w1", (long long)x);
        snprintf(n3, sizeof n3, "experts.%lld.w3", (long long)x);
        snprintf(n2, sizeof n2, "experts.%lld.w2", (long long)x);
        float *w1 = rt_deq_ffn(src, L, n1, I, d), *w3 = rt_deq_ffn(src, L, n3, I, d), *w2 = rt_deq_ffn(src, L, n2, d, I);
        if (w1 && w3 && w2) {
            rt_act_ref(w1, w3, xi->x, xi->rows, d, I, c->swiglu_limit, h);
            worst_h = fmax(worst_h, rt_row_rel(xw->x, h, xi->rows, I));
            for (int64_t q = 0; q < xi->rows; q++) { /* s · w2(tapped hidden), normalized below */
                int32_t t = tok[q];
                if (nk[t] < K) chosen[t * K + nk[t]] = (int32_t)x;
                nk[t]++;
                S[t] += sc[t * E + x];
                for (int64_t i = 0; i < d; i++) {
                    double v = 0;
                    for (int64_t j = 0; j < I; j++) v += (double)w2[i * I + j] * xw->x[q * I + j];
                    acc[t * d + i] += sc[t * E + x] * v;
                }
            }
        }
        total += xi->rows;
        free(w1), free(w3), free(w2);
    }
    CHECK_MSG(total == NT * K, "layer %d: %lld expert rows, expected T·K = %lld", L, (long long)total, (long long)(NT * K));
    int64_t ties = 0;
    float *bias = w->ffn.tid2eid ? NULL : malloc((size_t)E * sizeof(float));
    char bn[64];
    snprintf(bn, sizeof bn, "layers.%d.ffn.gate.bias", L);
    CHECK_MSG(w->ffn.tid2eid || (bias && dsv4_wsrc_f32(src, bn, E, bias, &e) == 0), "%s: %s", bn, e.msg);
    for (int64_t t = 0; t < NT && (w->ffn.tid2eid || bias); t++) {
        CHECK_MSG(nk[t] == K, "layer %d token %lld: in %d experts' rows, expected %lld", L, (long long)t, nk[t], (long long)K);
        if (nk[t] != K) continue;
        int32_t *ch = chosen + t * K;
        if (w->ffn.tid2eid) { /* the table's experts */
            int32_t want[8];
            memcpy(want, w->ffn.tid2eid + (int64_t)k->ids[t] * K, (size_t)K * sizeof(int32_t));
            qsort(want, (size_t)K, sizeof(int32_t), cmp_i32);
            qsort(ch, (size_t)K, sizeof(int32_t), cmp_i32);
            CHECK_MSG(!memcmp(want, ch, (size_t)K * sizeof(int32_t)), "layer %d token %lld: not tid2eid's experts", L, (long long)t);
        } else { /* the top K of score + bias */
            double lo = INFINITY, hi = -INFINITY;
            for (int64_t x = 0; x < E; x++) {
                int in = 0;
                for (int64_t j = 0; j < K; j++) in |= ch[j] == x;
                double b = sc[t * E + x] + bias[x];
                if (in) lo = fmin(lo, b); else hi = fmax(hi, b);
            }
            CHECK_MSG(lo >= hi - 1e-5, "layer %d token %lld: a chosen expert scores %.6g below an unchosen %.6g", L,
                      (long long)t, lo, hi);
            ties += lo < hi + 1e-5;
        }
    }
    /* SHARED_W2 and the MoE output */
    rt_act_ref(s1, s3, y, NT, d, Is, c->swiglu_limit, h);
    double rel_sh = rt_row_rel(sh->x, h, NT, Is);
    for (int64_t t = 0; t < NT; t++)
        for (int64_t i = 0; i < d; i++) {
            double v = 0;
            for (int64_t j = 0; j < Is; j++) v += (double)s2[i * Is + j] * sh->x[t * Is + j];
            ref[t * d + i] = v + acc[t * d + i] / (S[t] + 1e-20) * c->route_scale;
        }
    REQUIRE(o->upload(o, yb, y, (size_t)(NT * d) * sizeof(float), &e) == 0);
    REQUIRE(dsv4_ffn_forward(&k->f.m, w, yb, k->ids, NT, NULL, out, &e) == 0);
    REQUIRE(o->download(o, got, out, (size_t)(NT * d) * sizeof(float), &e) == 0);
    double rel_moe = rt_row_rel(got, ref, NT, d);
    printf("unit: taps layer %d (%s, %s): %lld expert rows; relative error of EXPERT_W2 %.3g, SHARED_W2 %.3g, "
           "MoE output rebuilt from the taps %.3g; near-tie tokens %lld\n", L, w->ffn.tid2eid ? "hash" : "top-k",
           o->name, (long long)total, worst_h, rel_sh, rel_moe, (long long)ties);
    CHECK_MSG(worst_h <= 1e-5, "layer %d: EXPERT_W2 differs from act(w1 x, w3 x) by %.3g", L, worst_h);
    CHECK_MSG(rel_sh <= 1e-5, "layer %d: SHARED_W2 differs from the host by %.3g", L, rel_sh);
    CHECK_MSG(rel_moe <= 1e-5, "layer %d: the MoE output differs from w2 over the taps by %.3g", L, rel_moe);
    free(gate), free(s1), free(s3), free(s2), free(sc), free(acc), free(ref), free(h), free(chosen), free(bias), free(got);
    dsv4_scratch_free(o, yb);
    dsv4_scratch_free(o, out);
}

/* Every main layer of the walk on `ops`, all sites, every expert ROUTED. */
static void expert_rows(dsv4_ops *ops)
{
    rt_walk k;
    REQUIRE(rt_walk_open(&k, ops) == 0);
    rt_rec r = {.o = k.f.ops, .fail_site = -1};
    dsv4_taps taps = {&r, rt_rec_fn, 0, NULL, NULL};
    dsv4_err e = {0};
    for (int L = 0; L < k.f.m.cfg.n_layers; L++) {
        float *h = rt_layer_run(&k, L, &taps, &e);
        CHECK_MSG(h, "layer %d: %s", L, e.msg);
        if (h) check_layer(&k, L, &r);
        free(h);
        rt_rec_clear(&r);
        if (rt_walk_next(&k, L, &e)) { CHECK_MSG(0, "%s", e.msg); break; }
    }
    free(r.c);
    rt_walk_close(&k);
}

TEST(runner_taps_expert_rows_hidden_and_moe) { expert_rows(dsv4_ops_cpu(0)); }

TEST(runner_taps_cuda_expert_rows_hidden_and_moe)
{
    if (dsv4_gpu_count() == 0) {
        printf("unit: SKIP runner_taps_cuda_expert_rows_hidden_and_moe (no GPU)\n");
        return;
    }
    dsv4_err e = {0};
    dsv4_ops *g = dsv4_ops_cuda(&e);
    REQUIRE(g != NULL);
    expert_rows(g);
}
