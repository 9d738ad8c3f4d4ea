/* The MoE sub-layer's calibration taps (runner.h, issue 6) on the tiny model, part 1: tapping
 * (every site, the expert modes mixed) leaves each main layer's output bit for bit as it is, on
 * the CPU and on CUDA (skipped without a GPU); the expert modes (ROUTED / ALL_TOKENS / SKIP) and
 * the site mask steer what is emitted; a mode outside the enum and a failing tap are errors.
 * Part 2 (the rows' contents) is test_runner_taps_moe.c. */
#include <stdlib.h>
#include <string.h>

#include "gpu.h"
#include "harness.h"
#include "runner_taps_util.h"

/* The tapped outputs of every main layer (taps in several configurations) equal the untapped. */
static void output_unchanged(dsv4_ops *ops)
{
    rt_walk k;
    REQUIRE(rt_walk_open(&k, ops) == 0);
    const dsv4_config *c = &k.f.m.cfg;
    int64_t n = NT * c->hc_mult * c->hidden_size;
    uint8_t mixed[64], all[64];
    REQUIRE(c->n_routed_experts <= 64);
    for (int x = 0; x < 64; x++) mixed[x] = (uint8_t)(x % 3), all[x] = DSV4_TAP_ALL_TOKENS;
    rt_rec r = {.o = ops, .fail_site = -1};
    dsv4_taps cfg[3] = {{&r, rt_rec_fn, 0, NULL, NULL}, {&r, rt_rec_fn, 0, mixed, NULL},
                        {&r, rt_rec_fn, DSV4_TAP_BIT(DSV4_TAP_EXPERT_W2), all, NULL}};
    dsv4_err e = {0};
    for (int L = 0; L < c->n_layers; L++) {
        float *ref = rt_layer_run(&k, L, NULL, &e);
        CHECK_MSG(ref, "layer %d: %s", L, e.msg);
        for (int i = 0; i < 3 && ref; i++) {
            float *got = rt_layer_run(&k, L, &cfg[i], &e);
            CHECK_MSG(got, "layer %d taps %d: %s", L, i, e.msg);
            CHECK_MSG(got && !memcmp(got, ref, (size_t)n * sizeof(float)), "layer %d: taps %d change the output", L, i);
            CHECK_MSG(rt_count(&r, DSV4_TAP_EXPERT_W2) > 0, "layer %d taps %d: no EXPERT_W2", L, i);
            rt_rec_clear(&r);
            free(got);
        }
        free(ref);
        REQUIRE(rt_walk_next(&k, L, &e) == 0);
    }
    free(r.c);
    rt_walk_close(&k);
}

TEST(runner_taps_output_bit_identical) { output_unchanged(dsv4_ops_cpu(0)); }

TEST(runner_taps_cuda_output_bit_identical)
{
    if (dsv4_gpu_count() == 0) {
        printf("unit: SKIP runner_taps_cuda_output_bit_identical (no GPU)\n");
        return;
    }
    dsv4_err e = {0};
    dsv4_ops *g = dsv4_ops_cuda(&e);
    REQUIRE(g != NULL);
    output_unchanged(g);
}

/* Every call in r is at `site` (and there is at least one). */
static void only_site(const rt_rec *r, int site, const char *what)
{
    CHECK_MSG(r->n > 0 && rt_count(r, site) == r->n, "%s: %d calls, %d at site %d", what, r->n, rt_count(r, site), site);
}

/* Expert modes and site masks on one layer, against the all-routed taps `base`. */
static void modes_layer(rt_walk *k, int L, const rt_rec *base)
{
    const dsv4_config *c = &k->f.m.cfg;
    int64_t E = c->n_routed_experts, d = c->hidden_size, I = c->moe_inter_dim;
    uint8_t mode[64] = {0};
    rt_rec r = {.o = k->f.ops, .fail_site = -1};
    dsv4_taps t = {&r, rt_rec_fn, 0, mode, NULL};
    dsv4_err e = {0};
    float *h;
    mode[5] = DSV4_TAP_ALL_TOKENS, mode[3] = DSV4_TAP_SKIP;
    REQUIRE((h = rt_layer_run(k, L, &t, &e)) != NULL);
    free(h);
    const rt_call *all = rt_find(&r, DSV4_TAP_EXPERT_IN, DSV4_TAP_EXPERT_ALL), *fi = rt_find(&r, DSV4_TAP_FFN_IN, -1);
    const rt_call *w5 = rt_find(&r, DSV4_TAP_EXPERT_W2, 5);
    CHECK_EQ_INT(rt_count(&r, DSV4_TAP_EXPERT_IN), rt_count(base, DSV4_TAP_EXPERT_IN) - !!rt_find(base, DSV4_TAP_EXPERT_IN, 3) -
                 !!rt_find(base, DSV4_TAP_EXPERT_IN, 5) + 1);
    REQUIRE(all && fi && w5 && all->rows == NT && all->cols == d && w5->rows == NT && w5->cols == I);
    CHECK_MSG(!memcmp(all->x, fi->x, (size_t)(NT * d) * sizeof(float)), "layer %d: EXPERT_ALL rows are not FFN_IN", L);
    CHECK(!rt_find(&r, DSV4_TAP_EXPERT_IN, 5) && !rt_find(&r, DSV4_TAP_EXPERT_IN, 3) && !rt_find(&r, DSV4_TAP_EXPERT_W2, 3));
    float *w1 = rt_deq_ffn(k->f.m.src, L, "experts.5.w1", I, d), *w3 = rt_deq_ffn(k->f.m.src, L, "experts.5.w3", I, d);
    double *ref = malloc((size_t)(NT * I) * sizeof(double));
    REQUIRE(w1 && w3 && ref);
    rt_act_ref(w1, w3, fi->x, NT, d, I, c->swiglu_limit, ref);
    double rel = rt_row_rel(w5->x, ref, NT, I);
    CHECK_MSG(rel <= 1e-5, "layer %d: ALL_TOKENS EXPERT_W2 of expert 5 differs from the host by %.3g", L, rel);
    free(w1), free(w3), free(ref);
    for (int x = 0; x < E; x++) { /* the routed experts are tapped as in the all-routed run */
        if (x == 3 || x == 5) continue;
        for (int s = DSV4_TAP_EXPERT_IN; s <= DSV4_TAP_EXPERT_W2; s++) {
            const rt_call *a = rt_find(base, s, x), *b = rt_find(&r, s, x);
            CHECK_MSG(!a == !b && (!a || (a->rows == b->rows && a->cols == b->cols &&
                                          !memcmp(a->x, b->x, (size_t)(a->rows * a->cols) * sizeof(float)))),
                      "layer %d expert %d site %d differs from the all-routed taps", L, x, s);
        }
    }
    rt_rec_clear(&r);
    memset(mode, DSV4_TAP_SKIP, sizeof mode); /* SKIP everywhere: no expert site */
    REQUIRE((h = rt_layer_run(k, L, &t, &e)) != NULL);
    free(h);
    CHECK(rt_count(&r, DSV4_TAP_EXPERT_IN) == 0 && rt_count(&r, DSV4_TAP_EXPERT_W2) == 0 && rt_count(&r, DSV4_TAP_SHARED_W2) == 1);
    rt_rec_clear(&r);
    t.expert_mode = NULL; /* each site alone */
    static const int sites[] = {DSV4_TAP_ATTN_IN, DSV4_TAP_FFN_IN, DSV4_TAP_SHARED_W2, DSV4_TAP_EXPERT_IN, DSV4_TAP_EXPERT_W2};
    for (size_t i = 0; i < sizeof sites / sizeof *sites; i++) {
        char what[64];
        t.sites = DSV4_TAP_BIT(sites[i]);
        snprintf(what, sizeof what, "layer %d, sites = site %d only", L, sites[i]);
        REQUIRE((h = rt_layer_run(k, L, &t, &e)) != NULL);
        free(h);
        only_site(&r, sites[i], what);
        if (sites[i] >= DSV4_TAP_EXPERT_IN) CHECK_EQ_INT(r.n, rt_count(base, sites[i]));
        rt_rec_clear(&r);
    }
    memset(mode, DSV4_TAP_ALL_TOKENS, sizeof mode); /* EXPERT_IN only, every expert ALL_TOKENS: one call */
    t.expert_mode = mode;
    t.sites = DSV4_TAP_BIT(DSV4_TAP_EXPERT_IN);
    REQUIRE((h = rt_layer_run(k, L, &t, &e)) != NULL);
    free(h);
    CHECK(r.n == 1 && r.c[0].expert == DSV4_TAP_EXPERT_ALL && r.c[0].rows == NT);
    rt_rec_clear(&r);
    t.sites = 0; /* a mode outside the enum, a failing tap: errors */
    mode[0] = 7;
    CHECK((h = rt_layer_run(k, L, &t, &e)) == NULL);
    CHECK_STR_CONTAINS(e.msg, "expert_mode[0] = 7");
    free(h);
    rt_rec_clear(&r);
    t.expert_mode = NULL;
    r.fail_site = DSV4_TAP_EXPERT_W2;
    CHECK((h = rt_layer_run(k, L, &t, &e)) == NULL);
    CHECK_STR_CONTAINS(e.msg, "test tap refuses site");
    free(h);
    rt_rec_clear(&r);
    free(r.c);
}

TEST(runner_taps_modes_and_sites)
{
    rt_walk k;
    REQUIRE(rt_walk_open(&k, dsv4_ops_cpu(0)) == 0);
    rt_rec base = {.o = k.f.ops, .fail_site = -1};
    dsv4_taps all = {&base, rt_rec_fn, 0, NULL, NULL};
    dsv4_err e = {0};
    REQUIRE(k.f.m.cfg.n_routed_experts <= 64 && k.f.m.cfg.n_layers >= 3);
    for (int L = 0; L <= 2; L++) { /* layer 0 routes by hash, layer 2 by score */
        if (L != 1) {
            float *h = rt_layer_run(&k, L, &all, &e);
            REQUIRE(h);
            free(h);
            modes_layer(&k, L, &base);
            rt_rec_clear(&base);
        }
        REQUIRE(rt_walk_next(&k, L, &e) == 0);
    }
    free(base.c);
    rt_walk_close(&k);
}
