/* The CUDA attention, compressor pooling and indexer against the CPU backend on random inputs
 * (see test_ops_cuda.c for the setup), in the layouts the runner uses: stateless prefill (the
 * window is the T tokens), decode from a ring with empty and expired slots, CSA with an indexer
 * selection (with -1 and invisible entries), HCA dense over compressed entries.
 * Tolerances:
 *  - attention: the logits are fp32 dot products summed in another order (an error of order
 *    sqrt(D)·2^-24·Σ|q||k|·scale, below 1e-6 here) and the softmax is accumulated online instead
 *    of in two passes; each output is a weighted mean of key rows with |k| <= 1, so it moves by
 *    at most a few times the logit error: 1e-5 absolute.
 *  - pool: the host's sequence of fp32 operations, except CUDA's expf (within 2 ulp of glibc's)
 *    in the softmax weights; outputs are weighted means of values with |a| <= 1: 2e-6 absolute.
 *  - indexer: the scores are the host's expression evaluated in the host's order with the same
 *    roundings, so the selection must be identical, ties and -1 padding included. */
#include "harness.h"
#include "ops_cuda_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct attn_case {
    const char *name;
    int64_t T, H, D, window, ratio, nsel;
    int64_t p0;    /* position of the first query */
    int64_t nwin;  /* 0: stateless (window = the queries); else a ring of nwin slots */
    int64_t ncmp;  /* compressed entries (0: none) */
} attn_case;

static void attn_run(oc_pair *p, const attn_case *c)
{
    dsv4_err e;
    int64_t T = c->T, H = c->H, D = c->D, nwin = c->nwin ? c->nwin : T;
    int64_t *qpos = malloc((size_t)T * 8), *kvpos = malloc((size_t)nwin * 8);
    int32_t *sel = c->nsel ? malloc((size_t)(T * c->nsel) * 4) : NULL;
    REQUIRE(qpos && kvpos && (!c->nsel || sel));
    for (int64_t t = 0; t < T; t++)
        qpos[t] = c->p0 + t;
    for (int64_t j = 0; j < nwin; j++) {
        if (!c->nwin) {
            kvpos[j] = qpos[j];
        } else { /* ring slot j holds the newest position ≡ j (mod nwin) up to the last query, some slots empty */
            int64_t last = qpos[T - 1], pj = last - ((last - j) % nwin + nwin) % nwin;
            kvpos[j] = (j % 7 == 3 || pj < 0) ? -1 : pj;
        }
    }
    for (int64_t i = 0; i < T * c->nsel; i++) {
        int64_t r = (int64_t)(th_rand() % 10);
        sel[i] = r == 0 ? -1 : (int32_t)(th_rand() % (uint64_t)(c->ncmp + 3)); /* some beyond the visible */
    }
    float *q = oc_rand(T * H * D, -3, 3), *kv = oc_rand(nwin * D, -1, 1), *ckv = oc_rand(c->ncmp * D + 1, -1, 1);
    float *sink = oc_rand(H, -2, 2);
    float *qc = oc_put(p->cpu, q, (size_t)(T * H * D) * 4), *qg = oc_put(p->gpu, q, (size_t)(T * H * D) * 4);
    float *kc = oc_put(p->cpu, kv, (size_t)(nwin * D) * 4), *kg = oc_put(p->gpu, kv, (size_t)(nwin * D) * 4);
    float *cc = oc_put(p->cpu, ckv, (size_t)(c->ncmp * D + 1) * 4), *cg = oc_put(p->gpu, ckv, (size_t)(c->ncmp * D + 1) * 4);
    float *sc = oc_put(p->cpu, sink, (size_t)H * 4), *sg = oc_put(p->gpu, sink, (size_t)H * 4);
    int32_t *selc = sel ? oc_put(p->cpu, sel, (size_t)(T * c->nsel) * 4) : NULL;
    int32_t *selg = sel ? oc_put(p->gpu, sel, (size_t)(T * c->nsel) * 4) : NULL;
    float *oc = oc_nan(p->cpu, T * H * D), *og = oc_nan(p->gpu, T * H * D);
    REQUIRE(qc && qg && kc && kg && cc && cg && sc && sg && oc && og);
    dsv4_attn_args a = {.T = T, .H = H, .D = D, .qpos = qpos, .kvpos = kvpos, .nwin = nwin, .window = c->window,
                        .ncmp = c->ncmp, .ratio = c->ratio, .nsel = c->nsel, .scale = 1.0f / sqrtf((float)D)};
    dsv4_attn_args ac = a, ag = a;
    ac.q = qc, ac.kv = kc, ac.ckv = c->ncmp ? cc : NULL, ac.sel = selc, ac.sink = sc, ac.out = oc;
    ag.q = qg, ag.kv = kg, ag.ckv = c->ncmp ? cg : NULL, ag.sel = selg, ag.sink = sg, ag.out = og;
    CHECK(p->cpu->attention(p->cpu, &ac, &e) == 0);
    CHECK_MSG(p->gpu->attention(p->gpu, &ag, &e) == 0, "%s: %s", c->name, e.msg);
    float *rc = oc_get(p->cpu, oc, T * H * D), *rg = oc_get(p->gpu, og, T * H * D);
    if (rc && rg)
        oc_compare_rel(c->name, rc, rg, T * H * D, 0, 1e-5f);
    free(rc);
    free(rg);
    p->cpu->free(p->cpu, qc), p->gpu->free(p->gpu, qg), p->cpu->free(p->cpu, kc), p->gpu->free(p->gpu, kg);
    p->cpu->free(p->cpu, cc), p->gpu->free(p->gpu, cg), p->cpu->free(p->cpu, sc), p->gpu->free(p->gpu, sg);
    p->cpu->free(p->cpu, oc), p->gpu->free(p->gpu, og);
    if (sel)
        p->cpu->free(p->cpu, selc), p->gpu->free(p->gpu, selg);
    free(q), free(kv), free(ckv), free(sink), free(qpos), free(kvpos), free(sel);
}

TEST(ops_cuda_attention)
{
    oc_pair p;
    if (oc_open(&p, "ops_cuda_attention"))
        return;
    static const attn_case cases[] = {
        /* name                              T    H  D    win  ratio nsel p0    nwin ncmp */
        {"attention SWA prefill",            300, 4, 128, 16,  0,    0,   0,    0,   0},
        {"attention CSA prefill, selection", 300, 4, 128, 16,  4,    8,   0,    0,   75},
        {"attention HCA prefill, D 512",     300, 3, 512, 128, 128,  0,   0,    0,   2},
        {"attention decode from a ring",     1,   4, 128, 16,  4,    0,   1000, 20,  250},
        {"attention decode, selection",      2,   5, 512, 128, 4,    512, 4999, 640, 1250},
        {"attention chunk, one head D 64",   9,   1, 64,  4,   0,    0,   33,   13,  0},
        {"attention Flash heads, HCA",       3,   64, 512, 128, 128, 0,   70000, 140, 547},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        attn_run(&p, &cases[c]);
    oc_close(&p);
}

static void pool_run(oc_pair *p, int64_t n_win, int64_t ratio, int64_t Dc, int overlap, int prev)
{
    dsv4_err e;
    int64_t W = (overlap ? 2 : 1) * Dc, rows = n_win * ratio;
    float *a = oc_rand(rows * W, -1, 1), *b = oc_rand(rows * W, -5, 5), *ape = oc_rand(ratio * W, -1, 1);
    float *pa = oc_rand(ratio * W, -1, 1), *pb = oc_rand(ratio * W, -5, 5);
    float *ac = oc_put(p->cpu, a, (size_t)(rows * W) * 4), *ag = oc_put(p->gpu, a, (size_t)(rows * W) * 4);
    float *bc = oc_put(p->cpu, b, (size_t)(rows * W) * 4), *bg = oc_put(p->gpu, b, (size_t)(rows * W) * 4);
    float *ec = oc_put(p->cpu, ape, (size_t)(ratio * W) * 4), *eg = oc_put(p->gpu, ape, (size_t)(ratio * W) * 4);
    float *pac = oc_put(p->cpu, pa, (size_t)(ratio * W) * 4), *pag = oc_put(p->gpu, pa, (size_t)(ratio * W) * 4);
    float *pbc = oc_put(p->cpu, pb, (size_t)(ratio * W) * 4), *pbg = oc_put(p->gpu, pb, (size_t)(ratio * W) * 4);
    float *oc = oc_nan(p->cpu, n_win * Dc), *og = oc_nan(p->gpu, n_win * Dc);
    REQUIRE(ac && ag && bc && bg && ec && eg && pac && pag && pbc && pbg && oc && og);
    dsv4_pool_args pc = {ac, bc, prev ? pac : NULL, prev ? pbc : NULL, ec, n_win, ratio, Dc, overlap, oc};
    dsv4_pool_args pg = {ag, bg, prev ? pag : NULL, prev ? pbg : NULL, eg, n_win, ratio, Dc, overlap, og};
    CHECK(p->cpu->pool(p->cpu, &pc, &e) == 0);
    CHECK(p->gpu->pool(p->gpu, &pg, &e) == 0);
    float *rc = oc_get(p->cpu, oc, n_win * Dc), *rg = oc_get(p->gpu, og, n_win * Dc);
    char what[96];
    snprintf(what, sizeof what, "pool %lld entries, ratio %lld, Dc %lld%s%s", (long long)n_win, (long long)ratio,
             (long long)Dc, overlap ? ", overlap" : "", prev ? ", previous block" : "");
    if (rc && rg)
        oc_compare_rel(what, rc, rg, n_win * Dc, 0, 2e-6f);
    free(rc), free(rg);
    float *bufs[][2] = {{ac, ag}, {bc, bg}, {ec, eg}, {pac, pag}, {pbc, pbg}, {oc, og}};
    for (size_t i = 0; i < 6; i++)
        p->cpu->free(p->cpu, bufs[i][0]), p->gpu->free(p->gpu, bufs[i][1]);
    free(a), free(b), free(ape), free(pa), free(pb);
}

TEST(ops_cuda_pool)
{
    oc_pair p;
    if (oc_open(&p, "ops_cuda_pool"))
        return;
    pool_run(&p, 75, 4, 128, 1, 0);  /* CSA stateless prefill (the tiny model's head dim) */
    pool_run(&p, 1, 4, 512, 1, 1);   /* CSA decode: one entry with the previous block */
    pool_run(&p, 3, 4, 128, 1, 1);
    pool_run(&p, 2, 128, 512, 0, 0); /* HCA */
    pool_run(&p, 3, 4, 100, 0, 0);   /* non-overlapping, odd width */
    oc_close(&p);
}

static void index_run(oc_pair *p, int64_t T, int64_t p0, int64_t Hi, int64_t Di, int64_t nk, int64_t topk,
                      int ties)
{
    dsv4_err e;
    int64_t *qpos = malloc((size_t)T * 8);
    REQUIRE(qpos);
    for (int64_t t = 0; t < T; t++)
        qpos[t] = p0 + t;
    float *q = oc_rand(T * Hi * Di, -1, 1), *k = oc_rand(nk * Di + 1, -1, 1), *w = oc_rand(T * Hi, -1, 1);
    if (ties) /* repeated key rows: exactly equal scores, which the selection orders by index */
        for (int64_t r = 5; r < nk; r++)
            memcpy(k + r * Di, k + (r % 5) * Di, (size_t)Di * 4);
    float *qc = oc_put(p->cpu, q, (size_t)(T * Hi * Di) * 4), *qg = oc_put(p->gpu, q, (size_t)(T * Hi * Di) * 4);
    float *kc = oc_put(p->cpu, k, (size_t)(nk * Di + 1) * 4), *kg = oc_put(p->gpu, k, (size_t)(nk * Di + 1) * 4);
    float *wc = oc_put(p->cpu, w, (size_t)(T * Hi) * 4), *wg = oc_put(p->gpu, w, (size_t)(T * Hi) * 4);
    /* selections start poisoned (NaN bits: a large positive int) so unwritten slots show */
    int32_t *sc = (int32_t *)oc_nan(p->cpu, T * topk), *sg = (int32_t *)oc_nan(p->gpu, T * topk);
    REQUIRE(qc && qg && kc && kg && wc && wg && sc && sg);
    dsv4_index_args a = {.T = T, .Hi = Hi, .Di = Di, .nk = nk, .ratio = 4, .topk = topk, .qpos = qpos,
                         .qscale = 1.0f / sqrtf((float)Di), .wscale = 1.0f / sqrtf((float)Hi)};
    dsv4_index_args ac = a, ag = a;
    ac.q = qc, ac.k = kc, ac.wts = wc, ac.sel = sc;
    ag.q = qg, ag.k = kg, ag.wts = wg, ag.sel = sg;
    CHECK(p->cpu->indexer(p->cpu, &ac, &e) == 0);
    CHECK_MSG(p->gpu->indexer(p->gpu, &ag, &e) == 0, "indexer: %s", e.msg);
    int32_t *rc = malloc((size_t)(T * topk) * 4), *rg = malloc((size_t)(T * topk) * 4);
    REQUIRE(rc && rg);
    CHECK(p->cpu->download(p->cpu, rc, sc, (size_t)(T * topk) * 4, &e) == 0);
    CHECK(p->gpu->download(p->gpu, rg, sg, (size_t)(T * topk) * 4, &e) == 0);
    int64_t first = -1, none = 0;
    for (int64_t i = 0; i < T * topk; i++) {
        if (rc[i] != rg[i] && first < 0)
            first = i;
        none += rc[i] < 0;
    }
    CHECK_MSG(first < 0, "indexer T %lld at %lld, %lld entries, top-%lld%s: query %lld slot %lld: cpu %d, cuda %d",
              (long long)T, (long long)p0, (long long)nk, (long long)topk, ties ? ", ties" : "",
              (long long)(first / topk), (long long)(first % topk), first < 0 ? 0 : rc[first], first < 0 ? 0 : rg[first]);
    if (p0 == 0) /* the first queries see fewer entries than top-k: -1 padding is part of the check */
        CHECK(none > 0);
    float *bufs[][2] = {{qc, qg}, {kc, kg}, {wc, wg}, {(float *)sc, (float *)sg}};
    for (size_t i = 0; i < 4; i++)
        p->cpu->free(p->cpu, bufs[i][0]), p->gpu->free(p->gpu, bufs[i][1]);
    free(q), free(k), free(w), free(qpos), free(rc), free(rg);
}

TEST(ops_cuda_indexer)
{
    oc_pair p;
    if (oc_open(&p, "ops_cuda_indexer"))
        return;
    index_run(&p, 300, 0, 4, 128, 75, 8, 0);     /* the tiny model's CSA prefill */
    index_run(&p, 300, 0, 4, 128, 75, 8, 1);     /* with exact ties */
    index_run(&p, 64, 0, 4, 128, 16, 64, 0);     /* top-k beyond the entries */
    index_run(&p, 3, 2397, 64, 128, 600, 512, 0); /* Flash's indexer shape */
    index_run(&p, 2, 20000, 4, 128, 5001, 512, 0); /* more entries than the in-shared-memory sort */
    index_run(&p, 1, 20003, 4, 64, 5001, 16, 1);
    oc_close(&p);
}
