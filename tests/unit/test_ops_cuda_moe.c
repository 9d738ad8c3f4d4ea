/* The CUDA routed experts (moe) and shared expert (swiglu) against the CPU backend, for expert
 * weights in every format, on the tiny model's shapes (16 experts of [128, 256] / [256, 128],
 * top-4), with decode (T = 1: GEMV), small (T = 5) and prefill (T = 300: tiled) batches, a token
 * routed twice to one expert, and an accumulator that starts non-zero (moe adds to out).
 * Inputs are scaled so that the SwiGLU clamps (limit 10) are active on part of the elements.
 * Tolerance: three chained fp32 GEMMs (w1, w3, then w2 over the clamped product) summed in other
 * orders than the host's sgemm; for random data each output moves by about sqrt(K)·2^-24 of the
 * magnitudes involved (~1e-6 of the token's largest output). The tests allow 1e-4 of the row's
 * largest |output| (plus 1e-6), far below what a wrong expert, weight, slot or clamp gives.
 * swiglu_act alone (the calibration taps' activation): the same fp32 expression, whose only
 * difference is CUDA's expf (within 2 ulp of glibc's) in 1 + e^-g: 1e-6 relative per element. */
#include "harness.h"
#include "ops_cuda_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NE 16
#define TOPK 4
#define DIM 256
#define INTER 128

typedef struct experts {
    dsv4_lin h1[NE], h3[NE], h2[NE];  /* host */
    dsv4_lin c1[NE], c3[NE], c2[NE];  /* cpu backend */
    dsv4_lin g1[NE], g3[NE], g2[NE];  /* gpu backend */
} experts;

static int experts_make(oc_pair *p, dsv4_lw_fmt f, experts *x)
{
    dsv4_err e;
    memset(x, 0, sizeof *x);
    for (int i = 0; i < NE; i++) {
        if (oc_rand_lin(f, INTER, DIM, 32, &x->h1[i]) || oc_rand_lin(f, INTER, DIM, 32, &x->h3[i]) ||
            oc_rand_lin(f, DIM, INTER, 32, &x->h2[i]))
            return -1;
        if (p->cpu->lin_load(p->cpu, &x->h1[i], &x->c1[i], &e) || p->cpu->lin_load(p->cpu, &x->h3[i], &x->c3[i], &e) ||
            p->cpu->lin_load(p->cpu, &x->h2[i], &x->c2[i], &e) || p->gpu->lin_load(p->gpu, &x->h1[i], &x->g1[i], &e) ||
            p->gpu->lin_load(p->gpu, &x->h3[i], &x->g3[i], &e) || p->gpu->lin_load(p->gpu, &x->h2[i], &x->g2[i], &e)) {
            th_fail(__FILE__, __LINE__, "lin_load: %s", e.msg);
            return -1;
        }
    }
    return 0;
}

static void experts_free(oc_pair *p, experts *x)
{
    for (int i = 0; i < NE; i++) {
        p->cpu->lin_free(p->cpu, &x->c1[i]), p->cpu->lin_free(p->cpu, &x->c3[i]), p->cpu->lin_free(p->cpu, &x->c2[i]);
        p->gpu->lin_free(p->gpu, &x->g1[i]), p->gpu->lin_free(p->gpu, &x->g3[i]), p->gpu->lin_free(p->gpu, &x->g2[i]);
        oc_free_host_lin(&x->h1[i]), oc_free_host_lin(&x->h3[i]), oc_free_host_lin(&x->h2[i]);
    }
}

/* Row-relative comparison: |Δ| <= rel·max_c|ref[t, c] - base[t, c]| + abs. */
static void cmp_rows(const char *what, const float *ref, const float *got, const float *base, int64_t T, int64_t d,
                     float rel, float abs)
{
    float *tol = malloc((size_t)(T * d) * 4);
    if (!tol)
        abort();
    for (int64_t t = 0; t < T; t++) {
        float m = 0;
        for (int64_t c = 0; c < d; c++)
            m = fmaxf(m, fabsf(ref[t * d + c] - (base ? base[t * d + c] : 0.0f)));
        for (int64_t c = 0; c < d; c++)
            tol[t * d + c] = rel * m + abs;
    }
    oc_compare(what, ref, got, T * d, tol, T * d);
    free(tol);
}

static void moe_case(oc_pair *p, experts *x, const char *fmt, int64_t T, int repeat)
{
    dsv4_err e;
    float *in = oc_rand(T * DIM, -1, 1), *out0 = oc_rand(T * DIM, -1, 1), *wts = oc_rand(T * TOPK, 0, 1);
    int32_t *idx = malloc((size_t)(T * TOPK) * 4);
    REQUIRE(idx);
    for (int64_t t = 0; t < T; t++)
        for (int k = 0; k < TOPK; k++) { /* distinct experts per token, except the repeat case */
            int32_t v;
            int taken;
            do {
                v = (int32_t)(th_rand() % NE);
                taken = 0;
                for (int j = 0; j < k; j++)
                    taken |= idx[t * TOPK + j] == v;
            } while (taken);
            idx[t * TOPK + k] = v;
        }
    if (repeat)
        idx[0 * TOPK + 1] = idx[0 * TOPK + 0];
    float *xc = oc_put(p->cpu, in, (size_t)(T * DIM) * 4), *xg = oc_put(p->gpu, in, (size_t)(T * DIM) * 4);
    float *oc = oc_put(p->cpu, out0, (size_t)(T * DIM) * 4), *og = oc_put(p->gpu, out0, (size_t)(T * DIM) * 4);
    REQUIRE(xc && xg && oc && og);
    dsv4_moe_args ac = {xc, T, TOPK, NE, idx, wts, x->c1, x->c3, x->c2, 10.0f, oc};
    dsv4_moe_args ag = {xg, T, TOPK, NE, idx, wts, x->g1, x->g3, x->g2, 10.0f, og};
    CHECK(p->cpu->moe(p->cpu, &ac, &e) == 0);
    CHECK_MSG(p->gpu->moe(p->gpu, &ag, &e) == 0, "moe: %s", e.msg);
    float *rc = oc_get(p->cpu, oc, T * DIM), *rg = oc_get(p->gpu, og, T * DIM);
    char what[96];
    snprintf(what, sizeof what, "moe %s experts, T = %lld%s", fmt, (long long)T, repeat ? ", repeated expert" : "");
    if (rc && rg)
        cmp_rows(what, rc, rg, out0, T, DIM, 1e-4f, 1e-6f);
    /* an expert index outside [0, E) is refused before any work */
    idx[T * TOPK - 1] = NE;
    CHECK(p->gpu->moe(p->gpu, &ag, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "outside [0, 16)");
    free(rc), free(rg);
    p->cpu->free(p->cpu, xc), p->gpu->free(p->gpu, xg), p->cpu->free(p->cpu, oc), p->gpu->free(p->gpu, og);
    free(in), free(out0), free(wts), free(idx);
}

static void swiglu_case(oc_pair *p, experts *x, const char *fmt, int64_t T)
{
    dsv4_err e;
    float *in = oc_rand(T * DIM, -1, 1);
    float *xc = oc_put(p->cpu, in, (size_t)(T * DIM) * 4), *xg = oc_put(p->gpu, in, (size_t)(T * DIM) * 4);
    float *yc = oc_nan(p->cpu, T * DIM), *yg = oc_nan(p->gpu, T * DIM);
    REQUIRE(xc && xg && yc && yg);
    CHECK(p->cpu->swiglu(p->cpu, &x->c1[3], &x->c3[3], &x->c2[3], xc, T, 10.0f, yc, &e) == 0);
    CHECK_MSG(p->gpu->swiglu(p->gpu, &x->g1[3], &x->g3[3], &x->g2[3], xg, T, 10.0f, yg, &e) == 0, "swiglu: %s", e.msg);
    float *rc = oc_get(p->cpu, yc, T * DIM), *rg = oc_get(p->gpu, yg, T * DIM);
    char what[64];
    snprintf(what, sizeof what, "swiglu %s, T = %lld", fmt, (long long)T);
    if (rc && rg)
        cmp_rows(what, rc, rg, NULL, T, DIM, 1e-4f, 1e-6f);
    free(rc), free(rg);
    p->cpu->free(p->cpu, xc), p->gpu->free(p->gpu, xg), p->cpu->free(p->cpu, yc), p->gpu->free(p->gpu, yg);
    free(in);
}

TEST(ops_cuda_moe_and_shared_expert)
{
    oc_pair p;
    if (oc_open(&p, "ops_cuda_moe_and_shared_expert"))
        return;
    experts *x = malloc(sizeof *x);
    REQUIRE(x);
    for (int f = 0; f < DSV4_LW_FMT_COUNT; f++) {
        const char *name = dsv4_lw_fmt_name((dsv4_lw_fmt)f);
        if (experts_make(&p, (dsv4_lw_fmt)f, x) == 0) {
            moe_case(&p, x, name, 1, 0);
            moe_case(&p, x, name, 5, 1);
            moe_case(&p, x, name, 300, 0);
            swiglu_case(&p, x, name, 1);
            swiglu_case(&p, x, name, 7);
            swiglu_case(&p, x, name, 300);
        }
        experts_free(&p, x);
    }
    free(x);
    oc_close(&p);
}

/* silu(min(g, 10))·clamp(u, ±10) with g, u in [-15, 15] (both clamps active), into a separate
 * output and in place (h = g); n not a multiple of the block size. */
TEST(ops_cuda_swiglu_act)
{
    oc_pair p;
    if (oc_open(&p, "ops_cuda_swiglu_act"))
        return;
    dsv4_err e;
    const int64_t n = 100003;
    float *g = oc_rand(n, -15, 15), *u = oc_rand(n, -15, 15);
    float *gc = oc_put(p.cpu, g, (size_t)n * 4), *uc = oc_put(p.cpu, u, (size_t)n * 4);
    float *gg = oc_put(p.gpu, g, (size_t)n * 4), *ug = oc_put(p.gpu, u, (size_t)n * 4);
    float *hc = oc_nan(p.cpu, n), *hg = oc_nan(p.gpu, n);
    REQUIRE(gc && uc && gg && ug && hc && hg);
    CHECK(p.cpu->swiglu_act(p.cpu, gc, uc, n, 10.0f, hc, &e) == 0);
    CHECK_MSG(p.gpu->swiglu_act(p.gpu, gg, ug, n, 10.0f, hg, &e) == 0, "swiglu_act: %s", e.msg);
    CHECK_MSG(p.gpu->swiglu_act(p.gpu, gg, ug, n, 10.0f, gg, &e) == 0, "swiglu_act in place: %s", e.msg);
    float *rc = oc_get(p.cpu, hc, n), *rg = oc_get(p.gpu, hg, n), *ri = oc_get(p.gpu, gg, n);
    if (rc && rg && ri) {
        int64_t clamped = 0;
        for (int64_t i = 0; i < n; i++)
            clamped += g[i] > 10 || fabsf(u[i]) > 10;
        CHECK(clamped > n / 4);
        oc_compare_rel("swiglu_act", rc, rg, n, 1e-6f, 0.0f);
        oc_compare_rel("swiglu_act in place", rc, ri, n, 1e-6f, 0.0f);
    }
    CHECK(p.gpu->swiglu_act(p.gpu, gg, ug, 0, 10.0f, hg, &e) == 0); /* n = 0: nothing */
    free(rc), free(rg), free(ri), free(g), free(u);
    p.cpu->free(p.cpu, gc), p.cpu->free(p.cpu, uc), p.cpu->free(p.cpu, hc);
    p.gpu->free(p.gpu, gg), p.gpu->free(p.gpu, ug), p.gpu->free(p.gpu, hg);
    oc_close(&p);
}
