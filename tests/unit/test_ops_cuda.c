/* The CUDA backend (kernels/cuda/ops_*.cu) against the CPU backend, op by op, on random inputs:
 * memory, linear in every weight format (GEMV path T <= 8, tiled path T > 8, aligned and
 * one-element paths), the grouped projection and the embedding. The attention-side ops are in
 * test_ops_cuda_attn.c, mHC and the element-wise ops in test_ops_cuda_elem.c, the experts in
 * test_ops_cuda_moe.c. Without a GPU each test prints SKIP and asserts nothing, except the
 * test of what dsv4_ops_cuda does then.
 *
 * Linear tolerance: both backends multiply the same exactly dequantized weights (checked bit for
 * bit below with identity activations) and sum in fp32 in different orders, so the difference is
 * a sum of rounding errors bounded by about K·2^-24·Σ_k|x_k||w_k|; for random data it is close to
 * sqrt(K)·2^-24 of that sum. The tests allow 1e-5·Σ_k|x_k||w_k| (K <= 1040 here), which no
 * correct kernel exceeds on these inputs and any wrong element, scale or row does. */
#include "harness.h"
#include "ops_cuda_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gpu.h"

TEST(ops_cuda_without_gpu_fails_cleanly)
{
    if (dsv4_gpu_count() > 0) {
        printf("SKIP ops_cuda_without_gpu_fails_cleanly: a GPU is present\n");
        return;
    }
    dsv4_err e = {{0}, 0};
    CHECK(dsv4_ops_cuda(&e) == NULL);
    CHECK_STR_CONTAINS(e.msg, "CUDA");
    dsv4_ops *o = dsv4_ops_by_name("auto", 1, &e); /* falls back to the CPU */
    REQUIRE(o != NULL);
    CHECK(strcmp(o->name, "cpu") == 0);
    dsv4_ops_release(o);
}

TEST(ops_cuda_memory)
{
    oc_pair p;
    if (oc_open(&p, "ops_cuda_memory"))
        return;
    dsv4_ops *g = p.gpu;
    dsv4_err e;
    CHECK(strcmp(g->name, "cuda") == 0 && g->on_host == 0);
    int64_t n = 100003;
    float *d = g->alloc(g, (size_t)n * 4, &e), *d2 = g->alloc(g, (size_t)n * 4, &e);
    REQUIRE(d && d2);
    float *h = oc_get(g, d, n);
    REQUIRE(h);
    int64_t nz = 0;
    for (int64_t i = 0; i < n; i++)
        nz += h[i] != 0.0f;
    CHECK_EQ_INT(nz, 0); /* zero-filled */
    float *src = oc_rand(n, -1, 1);
    CHECK(g->upload(g, d, src, (size_t)n * 4, &e) == 0);
    CHECK(g->copy(g, d2, d, (size_t)n * 4, &e) == 0);
    free(h);
    h = oc_get(g, d2, n);
    REQUIRE(h);
    CHECK(memcmp(h, src, (size_t)n * 4) == 0);
    g->free(g, d);
    g->free(g, d2);
    free(h);
    free(src);
    /* lin_load refuses data that does not match the format's sizes */
    dsv4_lin host, dev;
    REQUIRE(oc_rand_lin(DSV4_LW_FP8_BLOCK, 130, 200, 0, &host) == 0);
    host.s_bytes -= 4;
    CHECK(g->lin_load(g, &host, &dev, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "fp8_block");
    host.s_bytes += 4;
    CHECK(g->lin_load(g, &host, &dev, &e) == 0);
    CHECK(dev.owned && dev.w && dev.s && dev.w != host.w);
    g->lin_free(g, &dev);
    CHECK(dev.w == NULL);
    oc_free_host_lin(&host);
    oc_close(&p);
}

/* Runs one linear on both backends and compares; returns the number of bad elements. */
static int64_t linear_case(oc_pair *p, const dsv4_lin *host, int64_t T, int64_t ldx_pad)
{
    dsv4_err e;
    dsv4_lin wc, wg;
    int64_t in = host->in, out = host->out, bad = -1;
    float *W = malloc((size_t)(in * out) * sizeof *W), *x = oc_rand(T * in + ldx_pad, -1, 1);
    if (!W || dsv4_lin_dequant_f32(host, W, &e))
        abort();
    if (p->cpu->lin_load(p->cpu, host, &wc, &e) || p->gpu->lin_load(p->gpu, host, &wg, &e)) {
        th_fail(__FILE__, __LINE__, "lin_load %s: %s", dsv4_lw_fmt_name(host->fmt), e.msg);
        free(W);
        free(x);
        return -1;
    }
    /* x starts ldx_pad floats into its buffer: pad 1 makes it misaligned for vector loads */
    float *xc = oc_put(p->cpu, x, (size_t)(T * in + ldx_pad) * 4), *xg = oc_put(p->gpu, x, (size_t)(T * in + ldx_pad) * 4);
    float *yc = oc_nan(p->cpu, T * out), *yg = oc_nan(p->gpu, T * out);
    float *tol = malloc((size_t)(T * out) * sizeof *tol);
    if (xc && xg && yc && yg && tol && !p->cpu->linear(p->cpu, &wc, xc + ldx_pad, T, yc, &e) &&
        !p->gpu->linear(p->gpu, &wg, xg + ldx_pad, T, yg, &e)) {
        float *rc = oc_get(p->cpu, yc, T * out), *rg = oc_get(p->gpu, yg, T * out);
        for (int64_t t = 0; t < T; t++)
            for (int64_t r = 0; r < out; r++) {
                double s = 0;
                for (int64_t k = 0; k < in; k++)
                    s += fabs((double)x[ldx_pad + t * in + k] * W[r * in + k]);
                tol[t * out + r] = (float)(1e-5 * s) + 1e-30f;
            }
        char what[160];
        snprintf(what, sizeof what, "linear %s [%lld, %lld] group %d, T = %lld%s", dsv4_lw_fmt_name(host->fmt),
                 (long long)out, (long long)in, host->group, (long long)T, ldx_pad ? ", misaligned x" : "");
        if (rc && rg)
            bad = oc_compare(what, rc, rg, T * out, tol, T * out);
        free(rc);
        free(rg);
    } else {
        th_fail(__FILE__, __LINE__, "linear: %s", e.msg);
    }
    p->cpu->free(p->cpu, xc);
    p->gpu->free(p->gpu, xg);
    p->cpu->free(p->cpu, yc);
    p->gpu->free(p->gpu, yg);
    p->cpu->lin_free(p->cpu, &wc);
    p->gpu->lin_free(p->gpu, &wg);
    free(tol);
    free(W);
    free(x);
    return bad;
}

TEST(ops_cuda_linear_every_format)
{
    oc_pair p;
    if (oc_open(&p, "ops_cuda_linear_every_format"))
        return;
    static const struct { int64_t out, in; int group; } shapes[] = {
        {256, 256, 32},  /* the tiny model's hidden → hidden */
        {128, 256, 64},  /* a tiny expert's w1 */
        {256, 128, 128}, /* its w2 */
        {77, 96, 8},     /* odd rows, short rows */
        {130, 1040, 16}, /* partial FP8 blocks both ways */
        {33, 200, 4},    /* FP8 rows not 16-byte aligned; INT4 group 4: one-element path */
        {5, 37, 0},      /* F32/BF16/FP8 rows of odd length: one-element paths */
    };
    static const int64_t Ts[] = {1, 3, 8, 9, 64, 300};
    for (int f = 0; f < DSV4_LW_FMT_COUNT; f++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            dsv4_lin host;
            if (oc_rand_lin((dsv4_lw_fmt)f, shapes[s].out, shapes[s].in, shapes[s].group, &host))
                continue; /* the shape does not fit this format */
            for (size_t t = 0; t < sizeof Ts / sizeof Ts[0]; t++)
                linear_case(&p, &host, Ts[t], 0);
            linear_case(&p, &host, 1, 1);
            linear_case(&p, &host, 70, 1);
            oc_free_host_lin(&host);
        }
    oc_close(&p);
}

/* With identity activations, y[t, r] = W[r, t] exactly (one product by 1, the rest add zeros):
 * the GPU's dequantized weights equal dsv4_lin_dequant_f32's bit for bit, on both paths. */
TEST(ops_cuda_linear_dequant_is_exact)
{
    oc_pair p;
    if (oc_open(&p, "ops_cuda_linear_dequant_is_exact"))
        return;
    dsv4_err e;
    for (int f = 0; f < DSV4_LW_FMT_COUNT; f++) {
        const int64_t out = 136, in = 96;
        dsv4_lin host, wg;
        REQUIRE(oc_rand_lin((dsv4_lw_fmt)f, out, in, 32, &host) == 0);
        float *W = malloc((size_t)(out * in) * 4), *I = calloc((size_t)(in * in), 4);
        REQUIRE(W && I && dsv4_lin_dequant_f32(&host, W, &e) == 0);
        for (int64_t k = 0; k < in; k++)
            I[k * in + k] = 1.0f;
        REQUIRE(p.gpu->lin_load(p.gpu, &host, &wg, &e) == 0);
        float *xg = oc_put(p.gpu, I, (size_t)(in * in) * 4), *yg = oc_nan(p.gpu, in * out);
        REQUIRE(xg && yg);
        static const int64_t Ts[] = {8, 96}; /* GEMV, tiled */
        for (size_t t = 0; t < 2; t++) {
            CHECK(p.gpu->linear(p.gpu, &wg, xg, Ts[t], yg, &e) == 0);
            float *y = oc_get(p.gpu, yg, Ts[t] * out);
            REQUIRE(y);
            int64_t bad = 0;
            for (int64_t k = 0; k < Ts[t]; k++)
                for (int64_t r = 0; r < out; r++)
                    bad += !(y[k * out + r] == W[r * in + k]);
            CHECK_MSG(bad == 0, "%s, T = %lld: %lld dequantized values differ from dsv4_lin_dequant_f32",
                      dsv4_lw_fmt_name((dsv4_lw_fmt)f), (long long)Ts[t], (long long)bad);
            free(y);
        }
        p.gpu->free(p.gpu, xg);
        p.gpu->free(p.gpu, yg);
        p.gpu->lin_free(p.gpu, &wg);
        free(W);
        free(I);
        oc_free_host_lin(&host);
    }
    oc_close(&p);
}

TEST(ops_cuda_linear_grouped)
{
    oc_pair p;
    if (oc_open(&p, "ops_cuda_linear_grouped"))
        return;
    dsv4_err e;
    /* the tiny model's wo_a (2 groups of 128 rows over 256 inputs each), Flash-like 8 groups, and
     * odd group sizes */
    static const struct { dsv4_lw_fmt f; int64_t G, out, in; } cases[] = {
        {DSV4_LW_FP8_BLOCK, 2, 256, 256}, {DSV4_LW_BF16, 8, 512, 128}, {DSV4_LW_F32, 3, 99, 70},
        {DSV4_LW_INT4, 4, 200, 64},       {DSV4_LW_FP8_BLOCK, 8, 8 * 136, 96},
    };
    static const int64_t Ts[] = {1, 5, 300};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (size_t ti = 0; ti < 3; ti++) {
            int64_t G = cases[c].G, out = cases[c].out, in = cases[c].in, T = Ts[ti], R = out / G;
            dsv4_lin host, wc, wg;
            REQUIRE(oc_rand_lin(cases[c].f, out, in, 32, &host) == 0);
            float *W = malloc((size_t)(out * in) * 4), *x = oc_rand(T * G * in, -1, 1);
            float *tol = malloc((size_t)(T * out) * 4);
            REQUIRE(W && tol && dsv4_lin_dequant_f32(&host, W, &e) == 0);
            REQUIRE(p.cpu->lin_load(p.cpu, &host, &wc, &e) == 0 && p.gpu->lin_load(p.gpu, &host, &wg, &e) == 0);
            float *xc = oc_put(p.cpu, x, (size_t)(T * G * in) * 4), *xg = oc_put(p.gpu, x, (size_t)(T * G * in) * 4);
            float *yc = oc_nan(p.cpu, T * out), *yg = oc_nan(p.gpu, T * out);
            REQUIRE(xc && xg && yc && yg);
            CHECK(p.cpu->linear_grouped(p.cpu, &wc, G, xc, T, yc, &e) == 0);
            CHECK(p.gpu->linear_grouped(p.gpu, &wg, G, xg, T, yg, &e) == 0);
            for (int64_t t = 0; t < T; t++)
                for (int64_t r = 0; r < out; r++) {
                    double s = 0;
                    for (int64_t k = 0; k < in; k++)
                        s += fabs((double)x[t * G * in + (r / R) * in + k] * W[r * in + k]);
                    tol[t * out + r] = (float)(1e-5 * s) + 1e-30f;
                }
            float *rc = oc_get(p.cpu, yc, T * out), *rg = oc_get(p.gpu, yg, T * out);
            char what[128];
            snprintf(what, sizeof what, "linear_grouped %s G = %lld [%lld, %lld], T = %lld",
                     dsv4_lw_fmt_name(cases[c].f), (long long)G, (long long)out, (long long)in, (long long)T);
            if (rc && rg)
                oc_compare(what, rc, rg, T * out, tol, T * out);
            free(rc);
            free(rg);
            p.cpu->free(p.cpu, xc);
            p.gpu->free(p.gpu, xg);
            p.cpu->free(p.cpu, yc);
            p.gpu->free(p.gpu, yg);
            p.cpu->lin_free(p.cpu, &wc);
            p.gpu->lin_free(p.gpu, &wg);
            free(W);
            free(x);
            free(tol);
            oc_free_host_lin(&host);
        }
    /* a group count that does not divide the rows is refused */
    dsv4_lin host, wg;
    REQUIRE(oc_rand_lin(DSV4_LW_F32, 10, 8, 0, &host) == 0);
    REQUIRE(p.gpu->lin_load(p.gpu, &host, &wg, &e) == 0);
    CHECK(p.gpu->linear_grouped(p.gpu, &wg, 3, NULL, 1, NULL, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "3 groups");
    p.gpu->lin_free(p.gpu, &wg);
    oc_free_host_lin(&host);
    oc_close(&p);
}

TEST(ops_cuda_embed)
{
    oc_pair p;
    if (oc_open(&p, "ops_cuda_embed"))
        return;
    dsv4_err e;
    for (int f = 0; f < 2; f++) {
        dsv4_lin host, wc, wg;
        const int64_t vocab = 1024, d = 256;
        REQUIRE(oc_rand_lin(f ? DSV4_LW_BF16 : DSV4_LW_F32, vocab, d, 0, &host) == 0);
        /* the CPU backend takes the table as it comes (F32 or BF16), like the runner does */
        REQUIRE(p.gpu->lin_load(p.gpu, &host, &wg, &e) == 0);
        wc = host;
        static const int64_t Ts[] = {1, 300};
        for (size_t ti = 0; ti < 2; ti++) {
            int64_t T = Ts[ti];
            int32_t *ids = malloc((size_t)T * 4);
            REQUIRE(ids);
            for (int64_t t = 0; t < T; t++)
                ids[t] = (int32_t)(th_rand() % vocab);
            ids[0] = (int32_t)(vocab - 1);
            float *yc = oc_nan(p.cpu, T * d), *yg = oc_nan(p.gpu, T * d);
            REQUIRE(yc && yg);
            CHECK(p.cpu->embed(p.cpu, &wc, ids, T, yc, &e) == 0);
            CHECK(p.gpu->embed(p.gpu, &wg, ids, T, yg, &e) == 0);
            float *rg = oc_get(p.gpu, yg, T * d);
            CHECK(rg && memcmp(yc, rg, (size_t)(T * d) * 4) == 0);
            ids[T - 1] = (int32_t)vocab;
            CHECK(p.gpu->embed(p.gpu, &wg, ids, T, yg, &e) == -1);
            CHECK_STR_CONTAINS(e.msg, "outside the vocabulary");
            free(rg);
            free(ids);
            p.cpu->free(p.cpu, yc);
            p.gpu->free(p.gpu, yg);
        }
        p.gpu->lin_free(p.gpu, &wg);
        oc_free_host_lin(&host);
    }
    oc_close(&p);
}
