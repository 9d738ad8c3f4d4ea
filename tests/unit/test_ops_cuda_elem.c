/* The CUDA backend's row and element-wise ops and mHC against the CPU backend on random inputs
 * (see test_ops_cuda.c for the setup). Tolerances, each from what differs between the two:
 *  - axpy, add_bcast, hc_post: the same fp32 operations in the same order: equal bit for bit.
 *  - rmsnorm: the same float steps after a double sum of squares (order differs, ~1e-16): 1e-6
 *    relative (a few ulp) covers a one-ulp change of the scale.
 *  - rope: correctly rounded cos/sin on the GPU vs glibc's cosf/sinf (rarely one ulp apart):
 *    1e-6·(|a|+|b|) per rotated pair.
 *  - score: CUDA's expf/log1pf are within 2 ulp of glibc's: 1e-6 relative.
 *  - hc_pre/hc_head: the mixer logits are double sums (order differs) rounded to float, then
 *    expf-based sigmoids/softmax and 20 Sinkhorn steps of divisions (contractive): 1e-5 relative
 *    on post/comb, and 1e-5·Σ_i|X_i| on the collapsed stream. */
#include "harness.h"
#include "ops_cuda_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/config.h"

/* Both backends' copies of a host array, and the downloaded results after an op. */
typedef struct both {
    float *c, *g;
} both;

static both put2(oc_pair *p, const float *h, int64_t n)
{
    both b = {oc_put(p->cpu, h, (size_t)n * 4), oc_put(p->gpu, h, (size_t)n * 4)};
    return b;
}

static both nan2(oc_pair *p, int64_t n)
{
    both b = {oc_nan(p->cpu, n), oc_nan(p->gpu, n)};
    return b;
}

static void free2(oc_pair *p, both *b)
{
    if (b->c)
        p->cpu->free(p->cpu, b->c);
    if (b->g)
        p->gpu->free(p->gpu, b->g);
    b->c = b->g = NULL;
}

/* Downloads both and compares with tol = rel·|ref| + abs. */
static void cmp2(oc_pair *p, const char *what, both b, int64_t n, float rel, float abs)
{
    float *rc = oc_get(p->cpu, b.c, n), *rg = oc_get(p->gpu, b.g, n);
    if (rc && rg)
        oc_compare_rel(what, rc, rg, n, rel, abs);
    free(rc);
    free(rg);
}

TEST(ops_cuda_rmsnorm)
{
    oc_pair p;
    if (oc_open(&p, "ops_cuda_rmsnorm"))
        return;
    dsv4_err e;
    static const struct { int64_t rows, n; int weighted, in_place; } cases[] = {
        {1, 256, 1, 0}, {300, 256, 1, 1}, {1200, 128, 0, 1}, {5, 1000, 1, 0}, {3, 4099, 0, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t rows = cases[c].rows, n = cases[c].n;
        float *x = oc_rand(rows * n, -3, 3), *w = oc_rand(n, 0.5f, 1.5f);
        both bx = put2(&p, x, rows * n), bw = put2(&p, w, n);
        both by = cases[c].in_place ? bx : nan2(&p, rows * n);
        REQUIRE(bx.c && bx.g && bw.c && bw.g && by.c && by.g);
        CHECK(p.cpu->rmsnorm(p.cpu, bx.c, rows, n, cases[c].weighted ? bw.c : NULL, 1e-6f, by.c, &e) == 0);
        CHECK(p.gpu->rmsnorm(p.gpu, bx.g, rows, n, cases[c].weighted ? bw.g : NULL, 1e-6f, by.g, &e) == 0);
        char what[64];
        snprintf(what, sizeof what, "rmsnorm [%lld, %lld]", (long long)rows, (long long)n);
        cmp2(&p, what, by, rows * n, 1e-6f, 1e-30f);
        if (!cases[c].in_place)
            free2(&p, &by);
        free2(&p, &bx);
        free2(&p, &bw);
        free(x);
        free(w);
    }
    oc_close(&p);
}

TEST(ops_cuda_rope)
{
    oc_pair p;
    if (oc_open(&p, "ops_cuda_rope"))
        return;
    dsv4_err e;
    static const struct { int64_t T, sub, dim, rd; } cases[] = {
        {1, 4, 128, 64}, {300, 4, 128, 64}, {7, 1, 512, 64}, {300, 3, 66, 10},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int inv = 0; inv < 2; inv++) {
            int64_t T = cases[c].T, sub = cases[c].sub, dim = cases[c].dim, rd = cases[c].rd, n = T * sub * dim;
            float *x = oc_rand(n, -2, 2), *freq = malloc((size_t)(rd / 2) * 4), *tol = malloc((size_t)n * 4);
            int64_t *pos = malloc((size_t)T * 8);
            REQUIRE(freq && tol && pos);
            for (int64_t i = 0; i < rd / 2; i++)
                freq[i] = powf(160000.0f, -2.0f * (float)i / (float)rd);
            for (int64_t t = 0; t < T; t++)
                pos[t] = t == 0 ? 1048575 : (int64_t)(th_rand() % 70000);
            for (int64_t i = 0; i < n; i++) {
                int64_t k = i % dim, off = dim - rd;
                tol[i] = k < off ? 0.0f : 1e-6f * (fabsf(x[i - (k - off) % 2]) + fabsf(x[i - (k - off) % 2 + 1]));
            }
            both b = put2(&p, x, n);
            REQUIRE(b.c && b.g);
            CHECK(p.cpu->rope(p.cpu, b.c, T, sub, dim, rd, pos, freq, inv, &e) == 0);
            CHECK(p.gpu->rope(p.gpu, b.g, T, sub, dim, rd, pos, freq, inv, &e) == 0);
            float *rc = oc_get(p.cpu, b.c, n), *rg = oc_get(p.gpu, b.g, n);
            char what[80];
            snprintf(what, sizeof what, "rope%s T %lld × %lld × %lld, rope %lld", inv ? " inverse" : "", (long long)T,
                     (long long)sub, (long long)dim, (long long)rd);
            if (rc && rg)
                oc_compare(what, rc, rg, n, tol, n);
            free(rc);
            free(rg);
            free2(&p, &b);
            free(x);
            free(freq);
            free(tol);
            free(pos);
        }
    oc_close(&p);
}

TEST(ops_cuda_axpy_add_bcast_score)
{
    oc_pair p;
    if (oc_open(&p, "ops_cuda_axpy_add_bcast_score"))
        return;
    dsv4_err e;
    int64_t T = 300, rep = 4, d = 256, n = T * rep * d;
    float *x = oc_rand(n, -1, 1), *y = oc_rand(n, -1, 1);
    both bx = put2(&p, x, n), by = put2(&p, y, n);
    REQUIRE(bx.c && bx.g && by.c && by.g);
    CHECK(p.cpu->axpy(p.cpu, 0.37f, bx.c, n - 3, by.c, &e) == 0);
    CHECK(p.gpu->axpy(p.gpu, 0.37f, bx.g, n - 3, by.g, &e) == 0);
    cmp2(&p, "axpy", by, n, 0, 0);
    CHECK(p.cpu->add_bcast(p.cpu, bx.c, T, rep, d, by.c, &e) == 0);
    CHECK(p.gpu->add_bcast(p.gpu, bx.g, T, rep, d, by.g, &e) == 0);
    cmp2(&p, "add_bcast", by, n, 0, 0);
    free2(&p, &bx);
    free2(&p, &by);
    static const int funcs[] = {DSV4_SCORE_SQRTSOFTPLUS, DSV4_SCORE_SIGMOID, DSV4_SCORE_SOFTMAX};
    static const int64_t shapes[][2] = {{1, 16}, {300, 16}, {3, 256}, {2, 1000}};
    for (int f = 0; f < 3; f++)
        for (int s = 0; s < 4; s++) {
            int64_t rows = shapes[s][0], E = shapes[s][1];
            float *l = oc_rand(rows * E, -30, 30);
            both b = put2(&p, l, rows * E);
            REQUIRE(b.c && b.g);
            CHECK(p.cpu->score(p.cpu, b.c, rows, E, funcs[f], &e) == 0);
            CHECK(p.gpu->score(p.gpu, b.g, rows, E, funcs[f], &e) == 0);
            char what[64];
            snprintf(what, sizeof what, "score %d [%lld, %lld]", funcs[f], (long long)rows, (long long)E);
            cmp2(&p, what, b, rows * E, 1e-6f, 1e-37f);
            free2(&p, &b);
            free(l);
        }
    float v = 0;
    CHECK(p.gpu->score(p.gpu, &v, 1, 1, 9, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "score function 9");
    free(x);
    free(y);
    oc_close(&p);
}

static void hc_case(oc_pair *p, int64_t T, int64_t hc, int64_t d, int head)
{
    dsv4_err e;
    int64_t n = hc * d, nmix = head ? hc : (2 + hc) * hc;
    float *X = oc_rand(T * n, -1, 1), *fn = oc_rand(nmix * n, -0.05f, 0.05f);
    float *base = oc_rand(nmix, -1, 1), *scale = oc_rand(3, 0.5f, 2.0f);
    both bX = put2(p, X, T * n), bfn = put2(p, fn, nmix * n), bb = put2(p, base, nmix), bs = put2(p, scale, 3);
    both by = nan2(p, T * d), bpost = nan2(p, T * hc), bcomb = nan2(p, T * hc * hc);
    dsv4_hc_args a = {.T = T, .hc = hc, .d = d, .iters = 20, .eps = 1e-6f, .norm_eps = 1e-6f};
    dsv4_hc_args ac = a, ag = a;
    ac.X = bX.c, ac.fn = bfn.c, ac.base = bb.c, ac.scale = bs.c, ac.y = by.c;
    ag.X = bX.g, ag.fn = bfn.g, ag.base = bb.g, ag.scale = bs.g, ag.y = by.g;
    if (!head) {
        ac.post = bpost.c, ac.comb = bcomb.c;
        ag.post = bpost.g, ag.comb = bcomb.g;
    }
    if (head) {
        CHECK(p->cpu->hc_head(p->cpu, &ac, &e) == 0);
        CHECK(p->gpu->hc_head(p->gpu, &ag, &e) == 0);
    } else {
        CHECK(p->cpu->hc_pre(p->cpu, &ac, &e) == 0);
        CHECK(p->gpu->hc_pre(p->gpu, &ag, &e) == 0);
    }
    float *tol = malloc((size_t)(T * d) * 4);
    REQUIRE(tol);
    for (int64_t t = 0; t < T; t++)
        for (int64_t k = 0; k < d; k++) {
            float s = 0;
            for (int64_t i = 0; i < hc; i++)
                s += fabsf(X[t * n + i * d + k]);
            tol[t * d + k] = 1e-5f * s + 1e-30f;
        }
    char what[80];
    snprintf(what, sizeof what, "%s T %lld, hc %lld, d %lld: y", head ? "hc_head" : "hc_pre", (long long)T,
             (long long)hc, (long long)d);
    float *rc = oc_get(p->cpu, by.c, T * d), *rg = oc_get(p->gpu, by.g, T * d);
    if (rc && rg)
        oc_compare(what, rc, rg, T * d, tol, T * d);
    free(rc);
    free(rg);
    if (!head) {
        cmp2(p, "hc_pre post", bpost, T * hc, 1e-5f, 1e-30f);
        cmp2(p, "hc_pre comb", bcomb, T * hc * hc, 1e-5f, 1e-30f);
        /* hc_post from the CPU's post/comb on both: the same operations in the same order */
        float *a_ = oc_rand(T * d, -1, 1), *post = oc_get(p->cpu, bpost.c, T * hc), *comb = oc_get(p->cpu, bcomb.c, T * hc * hc);
        REQUIRE(post && comb);
        both ba = put2(p, a_, T * d), bp2 = put2(p, post, T * hc), bc2 = put2(p, comb, T * hc * hc), bo = nan2(p, T * n);
        CHECK(p->cpu->hc_post(p->cpu, ba.c, bX.c, bp2.c, bc2.c, T, hc, d, bo.c, &e) == 0);
        CHECK(p->gpu->hc_post(p->gpu, ba.g, bX.g, bp2.g, bc2.g, T, hc, d, bo.g, &e) == 0);
        cmp2(p, "hc_post", bo, T * n, 0, 0);
        free2(p, &ba);
        free2(p, &bp2);
        free2(p, &bc2);
        free2(p, &bo);
        free(a_);
        free(post);
        free(comb);
    }
    both *all[] = {&bX, &bfn, &bb, &bs, &by, &bpost, &bcomb};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        free2(p, all[i]);
    free(X);
    free(fn);
    free(base);
    free(scale);
    free(tol);
}

TEST(ops_cuda_hc)
{
    oc_pair p;
    if (oc_open(&p, "ops_cuda_hc"))
        return;
    static const int64_t Ts[] = {1, 7, 300};
    for (int head = 0; head < 2; head++)
        for (size_t t = 0; t < 3; t++) {
            hc_case(&p, Ts[t], 4, 256, head); /* the tiny model */
            hc_case(&p, Ts[t], 3, 100, head); /* odd sizes */
        }
    hc_case(&p, 2, 4, 4096, 0);               /* Flash's width */
    oc_close(&p);
}
