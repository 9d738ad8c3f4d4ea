/* GPTQ calibration of one full-size DeepSeek-V4-Flash MoE layer on one GPU, through the backend ops
 * the calibration walk uses: 256 experts with w1/w3 [2048 × 4096] and w2 [4096 × 2048] (synthetic
 * BF16 weights), 768 × 512 calibration tokens of hidden 4096 (random correlated vectors: random
 * BF16 mixing of uniform noise, per-channel scales 1/4..4) routed top-6 (each token to 6 distinct
 * random experts). Hessians per expert: the input one (w1 and w3 share it) from the routed rows
 * (embed as the gather, hess_acc), the w2 one from h = swiglu_act(w1 x, w3 x) (linear, swiglu_act,
 * hess_acc); then gptq INT4 g128 of the 768 matrices. Reports the seconds of each phase, the layer,
 * the extrapolation to 43 layers + MTP, and the comparison with the seed pipeline (21 min per
 * layer on 8 × H200), and which path the calibration ops took (cuBLAS/cuSOLVER or fallback).
 *
 * Usage: bench_gptq_layer [--cpu] [--experts E] [--samples S] [--seq L] [--topk K] [--hidden D]
 *                         [--inter I] [--chunk SAMPLES] [--actorder none|static|group] [--mse]
 *                         [--recompute]
 * Without a GPU (and without --cpu) it says so and exits 0. --cpu runs the host backend at small
 * default shapes (8 experts, 16 × 128 tokens, hidden 512, inter 256). When gptq would take the CPU
 * fallback on the GPU at full size (no cuSOLVER), it runs 4 experts unless --experts is given. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_libs.h"
#include "formats/fp.h"
#include "gpu.h"
#include "ops.h"
#include "util/clock.h"

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rs ^= rs >> 12, rs ^= rs << 25, rs ^= rs >> 27;
    return rs * 2685821657736338717ull;
}
static float unif(void) { return (float)(rnd() >> 40) * (2.0f / 16777216.0f) - 1.0f; } /* [-1, 1) */

typedef struct opts {
    int cpu, mse, recompute, experts_given;
    int64_t E, S, L, topk, D, I, chunk;
    dsv4_actorder actorder;
} opts;

static int usage(const char *why)
{
    fprintf(stderr, "bench_gptq_layer: %s\nusage: bench_gptq_layer [--cpu] [--experts E] [--samples S] [--seq L] "
            "[--topk K] [--hidden D] [--inter I] [--chunk SAMPLES] [--actorder none|static|group] [--mse] "
            "[--recompute]\n", why);
    return 2;
}

static int parse(int argc, char **argv, opts *o)
{
    int cpu = 0;
    for (int i = 1; i < argc; i++)
        cpu |= !strcmp(argv[i], "--cpu");
    *o = (opts){.cpu = cpu, .E = cpu ? 8 : 256, .S = cpu ? 16 : 768, .L = cpu ? 128 : 512, .topk = 6,
                .D = cpu ? 512 : 4096, .I = cpu ? 256 : 2048, .chunk = 64, .actorder = DSV4_ACTORDER_STATIC};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t *dst = !strcmp(a, "--experts") ? &o->E : !strcmp(a, "--samples") ? &o->S : !strcmp(a, "--seq") ? &o->L
                     : !strcmp(a, "--topk") ? &o->topk : !strcmp(a, "--hidden") ? &o->D : !strcmp(a, "--inter") ? &o->I
                     : !strcmp(a, "--chunk") ? &o->chunk : NULL;
        if (dst) {
            if (!v || atoll(v) <= 0)
                return usage("option needs a positive number");
            *dst = atoll(v);
            o->experts_given |= dst == &o->E;
            i++;
        } else if (!strcmp(a, "--actorder") && v) {
            o->actorder = !strcmp(v, "none") ? DSV4_ACTORDER_NONE : !strcmp(v, "group") ? DSV4_ACTORDER_GROUP
                        : !strcmp(v, "static") ? DSV4_ACTORDER_STATIC : (dsv4_actorder)-1;
            if ((int)o->actorder < 0)
                return usage("--actorder takes none, static or group");
            i++;
        } else if (!strcmp(a, "--mse")) {
            o->mse = 1;
        } else if (!strcmp(a, "--recompute")) {
            o->recompute = 1;
        } else if (strcmp(a, "--cpu")) {
            return usage("unknown option");
        }
    }
    if (o->topk > o->E || o->D % 128 || o->I % 128)
        return usage("need topk <= experts and hidden, inter multiples of 128");
    if (o->recompute && o->actorder == DSV4_ACTORDER_STATIC)
        return usage("--recompute needs --actorder none or group");
    return 0;
}

/* A random BF16 [out, in] weight loaded into the backend (rows scaled by rowscale when given). */
static int bf16_lin(dsv4_ops *o, int64_t out, int64_t in, float amp, const float *rowscale, dsv4_lin *dev, dsv4_err *e)
{
    dsv4_lin h = {.out = out, .in = in, .fmt = DSV4_LW_BF16, .w_bytes = (size_t)(out * in) * 2};
    uint16_t *w = malloc(h.w_bytes);
    if (!w)
        return dsv4_fail_rt(e, "out of memory for a [%lld, %lld] weight", (long long)out, (long long)in);
    for (int64_t r = 0; r < out; r++)
        for (int64_t c = 0; c < in; c++)
            w[r * in + c] = dsv4_f32_to_bf16(amp * (rowscale ? rowscale[r] : 1.0f) * unif());
    h.w = w;
    int rc = o->lin_load(o, &h, dev, e);
    free(w);
    return rc;
}

/* h = silu(min(g, limit))·clamp(u, ±limit) on the host, for a backend without swiglu_act. */
static int act_host(dsv4_ops *o, float *g, const float *u, int64_t n, float limit, dsv4_err *e)
{
    float *hg = malloc((size_t)n * 4), *hu = malloc((size_t)n * 4);
    int rc = !hg || !hu ? dsv4_fail_rt(e, "out of memory") : o->download(o, hg, g, (size_t)n * 4, e) ||
             o->download(o, hu, u, (size_t)n * 4, e);
    for (int64_t i = 0; !rc && i < n; i++) {
        float a = hg[i] > limit ? limit : hg[i], b = hu[i] > limit ? limit : hu[i] < -limit ? -limit : hu[i];
        hg[i] = a / (1.0f + expf(-a)) * b;
    }
    rc = rc || o->upload(o, g, hg, (size_t)n * 4, e);
    free(hg);
    free(hu);
    return rc;
}

int main(int argc, char **argv)
{
    opts op;
    if (parse(argc, argv, &op))
        return 2;
    if (!op.cpu && dsv4_gpu_count() == 0) {
        printf("bench_gptq_layer: no GPU: not measured (a full-size layer needs the CUDA backend; --cpu runs small "
               "shapes on the host)\n");
        return 0;
    }
    dsv4_err e = {{0}, 0};
    dsv4_ops *o = op.cpu ? dsv4_ops_cpu(0) : dsv4_ops_cuda(&e);
    if (!o || !o->hess_acc || !o->gptq || !o->embed) {
        fprintf(stderr, "bench_gptq_layer: %s\n", o ? "the backend lacks hess_acc or gptq" : e.msg);
        return 1;
    }
    const char *path = dsv4_cuda_gptq_path(o);
    if (!op.cpu && strstr(path, "gptq: CPU op") && !op.experts_given && op.E > 4) {
        printf("note: gptq takes the CPU fallback on this machine; running 4 experts (pass --experts to override)\n");
        op.E = 4;
    }
    const int64_t E = op.E, D = op.D, I = op.I, T = op.S * op.L, K6 = op.topk, CT = op.chunk * op.L;
    const float limit = 10.0f; /* V4-Flash swiglu_limit */
    printf("bench_gptq_layer: backend %s; calibration path: %s\n", o->name, path);
    printf("layer: %lld experts, w1/w3 [%lld x %lld], w2 [%lld x %lld]; %lld x %lld tokens, top-%lld; chunks of "
           "%lld tokens; gptq int4 g128 actorder %s %s%s\n", (long long)E, (long long)I, (long long)D, (long long)D,
           (long long)I, (long long)op.S, (long long)op.L, (long long)K6, (long long)CT,
           op.actorder == DSV4_ACTORDER_NONE ? "none" : op.actorder == DSV4_ACTORDER_GROUP ? "group" : "static",
           op.mse ? "mse" : "minmax", op.recompute ? " recompute" : "");

    /* weights, the token mixer, Hessians */
    dsv4_lin *w1 = calloc((size_t)E, sizeof *w1), *w3 = calloc((size_t)E, sizeof *w3), *w2 = calloc((size_t)E, sizeof *w2);
    dsv4_lin mix;
    float **H1 = calloc((size_t)E, sizeof *H1), **H2 = calloc((size_t)E, sizeof *H2), *cs = malloc((size_t)D * 4);
    double *n1 = calloc((size_t)E, sizeof *n1), *n2 = calloc((size_t)E, sizeof *n2);
    int rc = !w1 || !w3 || !w2 || !H1 || !H2 || !cs || !n1 || !n2;
    for (int64_t d = 0; d < D && !rc; d++)
        cs[d] = powf(4.0f, unif()) * sqrtf(3.0f / (float)D); /* channel scales 1/4..4 */
    rc = rc || bf16_lin(o, D, D, 1.0f, cs, &mix, &e);
    for (int64_t x = 0; x < E && !rc; x++) {
        rc = bf16_lin(o, I, D, 0.02f, NULL, &w1[x], &e) || bf16_lin(o, I, D, 0.02f, NULL, &w3[x], &e) ||
             bf16_lin(o, D, I, 0.02f, NULL, &w2[x], &e) || !(H1[x] = o->alloc(o, (size_t)(D * D) * 4, &e)) ||
             !(H2[x] = o->alloc(o, (size_t)(I * I) * 4, &e));
    }
    if (rc) {
        fprintf(stderr, "bench_gptq_layer: setup (%lld experts' weights and Hessians): %s\n", (long long)E, e.msg);
        return 1;
    }

    /* the calibration pass, a chunk of tokens at a time */
    int32_t *route = malloc((size_t)(CT * K6) * 4), *ids = malloc((size_t)(CT * K6) * 4);
    int64_t *cnt = calloc((size_t)E, sizeof *cnt), *tot = calloc((size_t)E, sizeof *tot), maxn = 0;
    float *z = malloc((size_t)(CT * D) * 4), *Z = o->alloc(o, (size_t)(CT * D) * 4, &e),
          *X = o->alloc(o, (size_t)(CT * D) * 4, &e), *xg = o->alloc(o, (size_t)(CT * D) * 4, &e),
          *g = o->alloc(o, (size_t)(CT * I) * 4, &e), *u = o->alloc(o, (size_t)(CT * I) * 4, &e);
    if (!route || !ids || !cnt || !tot || !z || !Z || !X || !xg || !g || !u) {
        fprintf(stderr, "bench_gptq_layer: out of memory for a chunk of %lld tokens: %s\n", (long long)CT, e.msg);
        return 1;
    }
    double t_in = 0, t_hx = 0, t_fw = 0, t_hh = 0;
    int host_act = !o->swiglu_act;
    for (int64_t t0 = 0; t0 < T && !rc; t0 += CT) {
        int64_t ct = T - t0 < CT ? T - t0 : CT;
        double a0 = dsv4_now();
        for (int64_t i = 0; i < ct * D; i++)
            z[i] = unif();
        rc = o->upload(o, Z, z, (size_t)(ct * D) * 4, &e) || o->linear(o, &mix, Z, ct, X, &e) || o->sync(o, &e);
        t_in += dsv4_now() - a0;
        memset(cnt, 0, (size_t)E * sizeof *cnt);
        for (int64_t t = 0; t < ct; t++)
            for (int64_t k = 0; k < K6; k++) { /* K6 distinct experts */
                int32_t x;
                int dup;
                do {
                    x = (int32_t)(rnd() % (uint64_t)E);
                    dup = 0;
                    for (int64_t j = 0; j < k; j++)
                        dup |= route[t * K6 + j] == x;
                } while (dup);
                route[t * K6 + k] = x;
                cnt[x]++;
            }
        int64_t *start = calloc((size_t)E + 1, sizeof *start);
        if (!start) {
            rc = dsv4_fail_rt(&e, "out of memory");
            break;
        }
        for (int64_t x = 0; x < E; x++)
            start[x + 1] = start[x] + cnt[x];
        int64_t *fill = calloc((size_t)E, sizeof *fill);
        for (int64_t t = 0; fill && t < ct; t++)
            for (int64_t k = 0; k < K6; k++) {
                int32_t x = route[t * K6 + k];
                ids[start[x] + fill[x]++] = (int32_t)t;
            }
        dsv4_lin xt = {.out = ct, .in = D, .fmt = DSV4_LW_F32, .w = X, .w_bytes = (size_t)(ct * D) * 4};
        for (int64_t x = 0; x < E && !rc && fill; x++) {
            int64_t n = cnt[x];
            if (!n)
                continue;
            tot[x] += n;
            double b0 = dsv4_now();
            rc = o->embed(o, &xt, ids + start[x], n, xg, &e) || o->hess_acc(o, xg, n, D, D, H1[x], &n1[x], &e) ||
                 o->sync(o, &e);
            double b1 = dsv4_now();
            rc = rc || o->linear(o, &w1[x], xg, n, g, &e) || o->linear(o, &w3[x], xg, n, u, &e) ||
                 (host_act ? act_host(o, g, u, n * I, limit, &e) : o->swiglu_act(o, g, u, n * I, limit, g, &e)) ||
                 o->sync(o, &e);
            double b2 = dsv4_now();
            rc = rc || o->hess_acc(o, g, n, I, I, H2[x], &n2[x], &e) || o->sync(o, &e);
            t_hx += b1 - b0;
            t_fw += b2 - b1;
            t_hh += dsv4_now() - b2;
        }
        if (!fill)
            rc = dsv4_fail_rt(&e, "out of memory");
        free(start);
        free(fill);
    }
    if (rc) {
        fprintf(stderr, "bench_gptq_layer: calibration pass: %s\n", e.msg);
        return 1;
    }
    int64_t minn = T;
    for (int64_t x = 0; x < E; x++) {
        maxn = tot[x] > maxn ? tot[x] : maxn;
        minn = tot[x] < minn ? tot[x] : minn;
    }
    o->free(o, Z);
    o->free(o, X);
    o->free(o, xg);
    o->free(o, u);

    /* GPTQ of every expert's three matrices (w1 and w3 share H1: w1 runs on a copy) */
    int64_t big = I * D, iota_n = I > D ? I : D;
    int32_t *iota = malloc((size_t)iota_n * 4), *gidx = malloc((size_t)iota_n * 4);
    float *W = o->alloc(o, (size_t)big * 4, &e), *Hc = o->alloc(o, (size_t)(D * D) * 4, &e);
    uint8_t *q = o->alloc(o, (size_t)big, &e), *sc = o->alloc(o, (size_t)big / 128 * 2, &e);
    if (!iota || !gidx || !W || !Hc || !q || !sc) {
        fprintf(stderr, "bench_gptq_layer: out of memory for GPTQ buffers: %s\n", e.msg);
        return 1;
    }
    for (int64_t i = 0; i < iota_n; i++)
        iota[i] = (int32_t)i;
    double t_gq[3] = {0, 0, 0}, loss = 0;
    int retried = 0, rtn = 0;
    for (int64_t x = 0; x < E && !rc; x++)
        for (int m = 0; m < 3 && !rc; m++) {
            const dsv4_lin *lw = m == 0 ? &w1[x] : m == 1 ? &w3[x] : &w2[x];
            float *H = m == 2 ? H2[x] : m == 1 ? H1[x] : Hc;
            rc = o->embed(o, lw, iota, lw->out, W, &e) || /* the BF16 weight as fp32 rows */
                 (m == 0 && o->copy(o, Hc, H1[x], (size_t)(D * D) * 4, &e)) || o->sync(o, &e);
            dsv4_gptq_args a = {.W = W, .H = H, .N = lw->out, .K = lw->in, .fmt = DSV4_GPTQ_INT4, .group = 128,
                                .block = 128, .damp_frac = 0.01, .actorder = op.actorder,
                                .observer = op.mse ? DSV4_OBSERVER_MSE : DSV4_OBSERVER_MINMAX,
                                .recompute = op.recompute, .q = q, .scale = sc,
                                .g_idx = op.actorder == DSV4_ACTORDER_GROUP ? gidx : NULL};
            double c0 = dsv4_now();
            rc = rc || o->gptq(o, &a, &e) || o->sync(o, &e);
            t_gq[m] += dsv4_now() - c0;
            loss += a.loss;
            retried += a.attempts > 1;
            rtn += a.rtn_fallback;
        }
    if (rc) {
        fprintf(stderr, "bench_gptq_layer: gptq: %s\n", e.msg);
        return 1;
    }

    double th = t_hx + t_fw + t_hh, tg = t_gq[0] + t_gq[1] + t_gq[2], layer = th + tg;
    printf("tokens per expert: %lld..%lld (mean %.0f); synthetic inputs (not counted): %.2f s\n", (long long)minn,
           (long long)maxn, (double)T * (double)K6 / (double)E, t_in);
    printf("hessians: %.2f s = gather + hess_acc(x) %.2f s, expert forward (w1, w3, %s) %.2f s, hess_acc(h) %.2f s\n",
           th, t_hx, host_act ? "activation on the host" : "swiglu_act", t_fw, t_hh);
    printf("gptq: %.2f s for %lld matrices = w1 %.2f s, w3 %.2f s, w2 %.2f s (%.1f ms per matrix); loss sum %.4g; "
           "%d needed more damping, %d fell back to round-to-nearest\n", tg, (long long)(3 * E), t_gq[0], t_gq[1],
           t_gq[2], tg * 1e3 / (double)(3 * E), loss, retried, rtn);
    printf("per layer: %.2f s (hessians %.2f + gptq %.2f)\n", layer, th, tg);
    int full = E == 256 && D == 4096 && I == 2048 && T == 768 * 512 && K6 == 6 && !op.cpu;
    printf("extrapolated x44 (43 layers + MTP): %.1f s = %.2f min on one %s\n", 44 * layer, 44 * layer / 60,
           op.cpu ? "CPU" : "GPU");
    if (full)
        printf("seed pipeline: 21 min per layer on 8 x H200 (924 min, 123.2 GPU-hours for 44 layers); ratio seed / "
               "this: wall time %.1fx, GPU-hours %.1fx (8 GPUs vs 1)\n", 1260.0 / layer, 8.0 * 1260.0 / layer);
    else
        printf("shapes differ from V4-Flash's (256 experts, 4096/2048, 768 x 512 tokens, top-6) or host backend: no "
               "comparison with the seed pipeline\n");
    for (int64_t x = 0; x < E; x++) {
        o->lin_free(o, &w1[x]);
        o->lin_free(o, &w3[x]);
        o->lin_free(o, &w2[x]);
        o->free(o, H1[x]);
        o->free(o, H2[x]);
    }
    o->lin_free(o, &mix);
    o->free(o, W);
    o->free(o, Hc);
    o->free(o, q);
    o->free(o, sc);
    o->free(o, g);
    dsv4_ops_release(o);
    free(w1), free(w3), free(w2), free(H1), free(H2), free(cs), free(n1), free(n2), free(route), free(ids);
    free(cnt), free(tot), free(z), free(iota), free(gidx);
    return 0;
}
