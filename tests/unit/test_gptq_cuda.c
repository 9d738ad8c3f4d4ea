/* The CUDA gptq op (kernels/cuda/ops_gptq*.cu) against the CPU backend's op on random correlated
 * inputs, with cuBLAS/cuSOLVER and with the fallback paths (DSV4_NO_CUDA_LIBS); hess_acc is
 * test_gptq_cuda_hess.c. Without a GPU each test prints SKIP and asserts nothing, except the path
 * query on the host backend.
 *
 * Tolerances: the factorizations (LAPACK vs cuSOLVER, fp64) and the lazy-update GEMMs (fp32, other
 * orders) differ in the last bits, and a weight within that of a rounding boundary can take the
 * other code; the error that choice feeds forward changes later codes of that row. So codes and
 * scales agree in >= 99% of places (a few diverging rows of 256), the loss within 1%, and both
 * backends' output error ‖(W−Ŵ)X‖ stays below round-to-nearest's. Where both run the same
 * arithmetic (the fallback is the CPU op; H = I is round-to-nearest) they must be equal bit for
 * bit. */
#include "gptq_cuda_util.h"
#include "harness.h"
#include "ops_cuda_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_libs.h"

static const char *ao_name[] = {"none", "static", "group"};

static dsv4_gptq_args cfg_of(int64_t N, int64_t K, dsv4_gptq_fmt fmt, int group, float gs, int ao, int obs, int rec)
{
    dsv4_gptq_args a;
    memset(&a, 0, sizeof a);
    a.N = N;
    a.K = K;
    a.fmt = fmt;
    a.group = group;
    a.gscale = fmt == DSV4_GPTQ_NVFP4 ? gs : 0.0f;
    a.block = 128;
    a.damp_frac = 0.01;
    a.actorder = (dsv4_actorder)ao;
    a.observer = (dsv4_observer)obs;
    a.recompute = rec;
    return a;
}

static const char *cfg_name(const dsv4_gptq_args *a, char *buf, size_t n)
{
    snprintf(buf, n, "%s g%d actorder %s %s recompute %d", a->fmt == DSV4_GPTQ_INT4 ? "int4" : "nvfp4", a->group,
             ao_name[a->actorder], a->observer == DSV4_OBSERVER_MSE ? "mse" : "minmax", a->recompute);
    return buf;
}

/* Every stored value of a run is what its code and scale stand for. */
static int64_t inconsistent(const dsv4_gptq_args *a, const gc_run *r)
{
    int64_t bad = 0, G = a->K / a->group;
    for (int64_t n = 0; n < a->N; n++)
        for (int64_t k = 0; k < a->K; k++) {
            int64_t g = a->actorder == DSV4_ACTORDER_GROUP ? r->g_idx[k] : k / a->group;
            float v = g >= 0 && g < G ? gc_value(a, r->q[n * a->K + k], r->scale, n * G + g) : NAN;
            bad += !(v == r->W[n * a->K + k]);
        }
    return bad;
}

static double frac_equal(const uint8_t *x, const uint8_t *y, int64_t n, int width)
{
    int64_t same = 0;
    for (int64_t i = 0; i < n; i++)
        same += memcmp(x + i * width, y + i * width, (size_t)width) == 0;
    return (double)same / (double)n;
}

TEST(gptq_cuda_matches_cpu)
{
    oc_pair p;
    if (oc_open(&p, "gptq_cuda_matches_cpu"))
        return;
    printf("  gptq on: %s\n", dsv4_cuda_gptq_path(p.gpu));
    const int64_t N = 256, K = 512, rows = 1024, dead[2] = {5, 300};
    float *x = gc_rows(rows, K, K, dead, 2), *W = gc_weight(N, K);
    double *H = gc_hessian(x, rows, K, K);
    float *Hup = gc_upper(H, K), *Wr = malloc((size_t)(N * K) * 4);
    REQUIRE(Wr);
    struct { dsv4_gptq_fmt f; int g; } fm[] = {{DSV4_GPTQ_INT4, 128}, {DSV4_GPTQ_INT4, 32}, {DSV4_GPTQ_NVFP4, 16}};
    for (int f = 0; f < 3; f++)
        for (int ao = 0; ao < 3; ao++)
            for (int obs = 0; obs < 2; obs++)
                for (int rec = 0; rec < 2; rec++) {
                    dsv4_gptq_args a = cfg_of(N, K, fm[f].f, fm[f].g, gc_gscale(W, N * K), ao, obs, rec);
                    char nm[96];
                    cfg_name(&a, nm, sizeof nm);
                    gc_run c, g;
                    gc_gptq(p.gpu, W, Hup, &a, &g);
                    if (rec && ao == DSV4_ACTORDER_STATIC) {
                        CHECK_MSG(g.rc == -1 && strstr(g.msg, "static"), "%s: expected a refusal, got %d (%s)", nm,
                                  g.rc, g.msg);
                        gc_free(&g);
                        continue;
                    }
                    gc_gptq(p.cpu, W, Hup, &a, &c);
                    CHECK_MSG(c.rc == 0 && g.rc == 0, "%s: cpu %d (%s), cuda %d (%s)", nm, c.rc, c.msg, g.rc, g.msg);
                    if (c.rc == 0 && g.rc == 0) {
                        int64_t ns = N * (K / a.group);
                        double qs = frac_equal(c.q, g.q, N * K, 1);
                        double ss = frac_equal(c.scale, g.scale, ns, a.fmt == DSV4_GPTQ_INT4 ? 2 : 1);
                        gc_rtn(W, &a, Wr, NULL);
                        double er = gc_out_err(W, Wr, H, N, K), ec = gc_out_err(W, c.W, H, N, K),
                               eg = gc_out_err(W, g.W, H, N, K);
                        printf("  %-44s codes %.4f scales %.4f loss cpu %.6g cuda %.6g err rtn %.4g cpu %.4g "
                               "cuda %.4g\n", nm, qs, ss, c.a.loss, g.a.loss, er, ec, eg);
                        CHECK_MSG(qs >= 0.99 && ss >= 0.99, "%s: codes %.4f, scales %.4f identical", nm, qs, ss);
                        CHECK_MSG(fabs(g.a.loss - c.a.loss) <= 0.01 * c.a.loss, "%s: loss cpu %.9g cuda %.9g", nm,
                                  c.a.loss, g.a.loss);
                        CHECK_MSG(ec < er && eg < er, "%s: output error rtn %.6g cpu %.6g cuda %.6g", nm, er, ec, eg);
                        CHECK_MSG(g.a.dead == 2 && c.a.dead == 2, "%s: dead cpu %lld cuda %lld", nm,
                                  (long long)c.a.dead, (long long)g.a.dead);
                        CHECK_MSG(g.a.attempts == 1 && c.a.attempts == 1 && !g.a.rtn_fallback && !c.a.rtn_fallback &&
                                      g.a.damp_used == c.a.damp_used,
                                  "%s: attempts cpu %d cuda %d, fallback %d %d", nm, c.a.attempts, g.a.attempts,
                                  c.a.rtn_fallback, g.a.rtn_fallback);
                        if (ao == DSV4_ACTORDER_GROUP)
                            CHECK_MSG(memcmp(c.g_idx, g.g_idx, (size_t)K * 4) == 0, "%s: g_idx differs", nm);
                        int64_t inc = inconsistent(&a, &g);
                        CHECK_MSG(inc == 0, "%s: %lld cuda values differ from their code × scale", nm, (long long)inc);
                    }
                    gc_free(&c);
                    gc_free(&g);
                }
    free(x);
    free(W);
    free(H);
    free(Hup);
    free(Wr);
    oc_close(&p);
}

TEST(gptq_cuda_fallback_equals_cpu)
{
    oc_pair p;
    if (oc_open(&p, "gptq_cuda_fallback_equals_cpu"))
        return;
    dsv4_ops *nl = gc_open_nolibs();
    REQUIRE(nl);
    CHECK_STR_CONTAINS(dsv4_cuda_gptq_path(nl), "DSV4_NO_CUDA_LIBS");
    const int64_t N = 64, K = 256, rows = 600, dead[1] = {17};
    float *x = gc_rows(rows, K, K, dead, 1), *W = gc_weight(N, K);
    double *H = gc_hessian(x, rows, K, K);
    float *Hup = gc_upper(H, K);
    dsv4_gptq_args cf[3] = {cfg_of(N, K, DSV4_GPTQ_INT4, 128, 0, DSV4_ACTORDER_STATIC, DSV4_OBSERVER_MINMAX, 0),
                            cfg_of(N, K, DSV4_GPTQ_INT4, 32, 0, DSV4_ACTORDER_GROUP, DSV4_OBSERVER_MSE, 1),
                            cfg_of(N, K, DSV4_GPTQ_NVFP4, 16, gc_gscale(W, N * K), DSV4_ACTORDER_NONE,
                                   DSV4_OBSERVER_MINMAX, 1)};
    for (int i = 0; i < 3; i++) {
        char nm[96];
        cfg_name(&cf[i], nm, sizeof nm);
        gc_run c, g;
        gc_gptq(p.cpu, W, Hup, &cf[i], &c);
        gc_gptq(nl, W, Hup, &cf[i], &g);
        CHECK_MSG(c.rc == 0 && g.rc == 0, "%s: cpu %d (%s), cuda fallback %d (%s)", nm, c.rc, c.msg, g.rc, g.msg);
        if (c.rc == 0 && g.rc == 0) {
            CHECK_MSG(memcmp(c.W, g.W, (size_t)(N * K) * 4) == 0 && memcmp(c.q, g.q, (size_t)(N * K)) == 0 &&
                          memcmp(c.scale, g.scale, gc_scale_bytes(&cf[i])) == 0,
                      "%s: the fallback's W, codes or scales differ from the CPU op's", nm);
            CHECK_MSG(c.a.loss == g.a.loss && c.a.dead == g.a.dead && c.a.attempts == g.a.attempts,
                      "%s: report differs: loss %.17g vs %.17g", nm, c.a.loss, g.a.loss);
            if (cf[i].actorder == DSV4_ACTORDER_GROUP)
                CHECK(memcmp(c.g_idx, g.g_idx, (size_t)K * 4) == 0);
        }
        gc_free(&c);
        gc_free(&g);
    }
    free(x);
    free(W);
    free(H);
    free(Hup);
    dsv4_ops_release(nl);
    oc_close(&p);
}

/* H = I: U is diagonal, nothing propagates, GPTQ is round-to-nearest bit for bit. */
TEST(gptq_cuda_identity_is_rtn)
{
    oc_pair p;
    if (oc_open(&p, "gptq_cuda_identity_is_rtn"))
        return;
    const int64_t N = 96, K = 384;
    float *W = gc_weight(N, K), *Hup = calloc((size_t)(K * K), 4), *Wr = malloc((size_t)(N * K) * 4);
    uint8_t *qr = malloc((size_t)(N * K));
    REQUIRE(Hup && Wr && qr);
    for (int64_t i = 0; i < K; i++)
        Hup[i * K + i] = 1.0f;
    dsv4_gptq_args cf[3] = {cfg_of(N, K, DSV4_GPTQ_INT4, 128, 0, DSV4_ACTORDER_NONE, DSV4_OBSERVER_MINMAX, 0),
                            cfg_of(N, K, DSV4_GPTQ_INT4, 32, 0, DSV4_ACTORDER_GROUP, DSV4_OBSERVER_MINMAX, 1),
                            cfg_of(N, K, DSV4_GPTQ_NVFP4, 16, gc_gscale(W, N * K), DSV4_ACTORDER_STATIC,
                                   DSV4_OBSERVER_MSE, 0)};
    for (int i = 0; i < 3; i++) {
        char nm[96];
        cfg_name(&cf[i], nm, sizeof nm);
        gc_run g;
        gc_gptq(p.gpu, W, Hup, &cf[i], &g);
        CHECK_MSG(g.rc == 0, "%s: %s", nm, g.msg);
        if (g.rc == 0) {
            gc_rtn(W, &cf[i], Wr, qr);
            double sq = 0;
            for (int64_t t = 0; t < N * K; t++)
                sq += ((double)W[t] - Wr[t]) * ((double)W[t] - Wr[t]);
            double d = (double)(float)(1.0 / sqrt(1.01)), want = sq / (d * d) / 2;
            CHECK_MSG(memcmp(g.q, qr, (size_t)(N * K)) == 0 && memcmp(g.W, Wr, (size_t)(N * K) * 4) == 0,
                      "%s: GPTQ with H = I is not round-to-nearest", nm);
            CHECK_MSG(fabs(g.a.loss - want) <= 1e-5 * want, "%s: loss %.9g, expected %.9g", nm, g.a.loss, want);
            if (cf[i].actorder == DSV4_ACTORDER_GROUP)
                for (int64_t k = 0; k < K; k++)
                    CHECK(g.g_idx[k] == k / cf[i].group);
        }
        gc_free(&g);
    }
    free(W);
    free(Hup);
    free(Wr);
    free(qr);
    oc_close(&p);
}

/* Damping retries: an H whose smallest eigenvalue is -0.035·mean(diag) factors at damp 0.04 (the
 * fourth try); H = -I never factors and GPTQ falls back to round-to-nearest (U = I). */
TEST(gptq_cuda_damping_retries)
{
    oc_pair p;
    if (oc_open(&p, "gptq_cuda_damping_retries"))
        return;
    const int64_t N = 32, K = 128, rows = 64; /* rows < K: XᵀX has a null space */
    float *x = gc_rows(rows, K, K, NULL, 0), *W = gc_weight(N, K);
    double *H = gc_hessian(x, rows, K, K), m = 0;
    for (int64_t i = 0; i < K; i++)
        m += H[i * K + i] / (double)K;
    double delta = 0.035 * m / 1.035; /* = 0.035 · the mean after the shift */
    for (int64_t i = 0; i < K; i++)
        H[i * K + i] -= delta;
    float *Hup = gc_upper(H, K);
    dsv4_gptq_args a = cfg_of(N, K, DSV4_GPTQ_INT4, 32, 0, DSV4_ACTORDER_NONE, DSV4_OBSERVER_MINMAX, 0);
    gc_run c, g;
    gc_gptq(p.gpu, W, Hup, &a, &g);
    gc_gptq(p.cpu, W, Hup, &a, &c);
    CHECK_MSG(g.rc == 0 && c.rc == 0, "cuda %s / cpu %s", g.msg, c.msg);
    CHECK_MSG(g.a.attempts == 4 && fabs(g.a.damp_used - 0.04) < 1e-9 && !g.a.rtn_fallback,
              "cuda: %d attempts, damp %.17g, fallback %d; expected 4, 0.04, 0", g.a.attempts, g.a.damp_used,
              g.a.rtn_fallback);
    CHECK_MSG(c.a.attempts == g.a.attempts && c.a.damp_used == g.a.damp_used, "cpu: %d attempts, damp %.17g",
              c.a.attempts, c.a.damp_used);
    gc_free(&c);
    gc_free(&g);

    memset(Hup, 0, (size_t)(K * K) * 4);
    for (int64_t i = 0; i < K; i++)
        Hup[i * K + i] = -1.0f;
    uint8_t *qr = malloc((size_t)(N * K));
    REQUIRE(qr);
    gc_rtn(W, &a, NULL, qr);
    gc_gptq(p.gpu, W, Hup, &a, &g);
    gc_gptq(p.cpu, W, Hup, &a, &c);
    CHECK_MSG(g.rc == 0 && c.rc == 0, "cuda %s / cpu %s", g.msg, c.msg);
    CHECK_MSG(g.rc == 0 && g.a.rtn_fallback == 1 && g.a.attempts >= 99 && memcmp(g.q, qr, (size_t)(N * K)) == 0,
              "cuda: fallback %d after %d attempts; codes must be round-to-nearest's", g.a.rtn_fallback,
              g.a.attempts);
    CHECK_MSG(c.a.attempts == g.a.attempts && c.a.rtn_fallback == 1, "cpu: fallback %d after %d attempts",
              c.a.rtn_fallback, c.a.attempts);
    gc_free(&c);
    gc_free(&g);
    free(qr);
    free(x);
    free(W);
    free(H);
    free(Hup);
    oc_close(&p);
}

TEST(gptq_cuda_refuses_bad_arguments)
{
    oc_pair p;
    if (oc_open(&p, "gptq_cuda_refuses_bad_arguments"))
        return;
    const int64_t N = 8, K = 64;
    float *W = gc_weight(N, K), *Hup = calloc((size_t)(K * K), 4);
    REQUIRE(Hup);
    struct { dsv4_gptq_args a; const char *want; } bad[] = {
        {cfg_of(N, K, DSV4_GPTQ_INT4, 16, 0, 0, 0, 0), "group"},
        {cfg_of(N, 48, DSV4_GPTQ_INT4, 32, 0, 0, 0, 0), "multiple"},
        {cfg_of(N, K, DSV4_GPTQ_NVFP4, 16, 0.0f, 0, 0, 0), "global scale"},
        {cfg_of(N, K, DSV4_GPTQ_INT4, 32, 0, DSV4_ACTORDER_STATIC, 0, 1), "static"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gc_run g;
        gc_gptq(p.gpu, W, Hup, &bad[i].a, &g);
        CHECK_MSG(g.rc == -1 && strstr(g.msg, bad[i].want), "case %zu: rc %d, message \"%s\"", i, g.rc, g.msg);
        gc_free(&g);
    }
    dsv4_gptq_args blk = cfg_of(N, K, DSV4_GPTQ_INT4, 32, 0, 0, 0, 0);
    blk.block = 48;
    gc_run g;
    gc_gptq(p.gpu, W, Hup, &blk, &g);
    CHECK_MSG(g.rc == -1 && strstr(g.msg, "block"), "block 48: rc %d, message \"%s\"", g.rc, g.msg);
    gc_free(&g);
    free(W);
    free(Hup);
    oc_close(&p);
}

TEST(gptq_cuda_path_query)
{
    dsv4_ops *c = dsv4_ops_cpu(1);
    REQUIRE(c);
    CHECK(strncmp(dsv4_cuda_gptq_path(c), "cpu", 3) == 0);
    dsv4_ops_release(c);
    oc_pair p;
    if (oc_open(&p, "gptq_cuda_path_query"))
        return;
    const char *path = dsv4_cuda_gptq_path(p.gpu);
    printf("  path: %s\n", path);
    CHECK(strstr(path, "hess_acc: ") && strstr(path, "gptq: "));
    oc_close(&p);
}
