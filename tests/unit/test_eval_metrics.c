/* Quality metrics (libquant/eval/metrics.h) on synthetic logits with known answers: identical
 * models (KL 0, same top-1, ratio 1), a two-token case computed by hand, the paired uncertainty
 * against its closed form, percentiles, numerical range, and the hidden-state error. */
#include "harness.h"

#include <math.h>
#include <string.h>

#include "eval/metrics.h"

#define NEAR(a, b, tol) (fabs((double)(a) - (double)(b)) <= (tol))

TEST(eval_metrics_identical_models)
{
    enum { V = 50, N = 40 };
    dsv4_kld_acc a;
    dsv4_kld_init(&a);
    dsv4_err e;
    float x[V];
    for (int n = 0; n < N; n++) {
        for (int i = 0; i < V; i++)
            x[i] = th_randf(-6, 6);
        REQUIRE(dsv4_kld_add(&a, x, x, V, (int32_t)(th_rand() % V), &e) == 0);
    }
    dsv4_kld_stats s;
    REQUIRE(dsv4_kld_stats_get(&a, &s, &e) == 0);
    CHECK_EQ_INT(s.count, N);
    CHECK_MSG(fabs(s.kld_mean) < 1e-12 && fabs(s.kld_pct[12]) < 1e-12, "KL of identical rows: mean %g max %g",
              s.kld_mean, s.kld_pct[12]);
    CHECK(s.same_top == 1.0 && s.same_top_unc == 0);
    CHECK(s.ratio == 1.0 && s.ln_ratio == 0 && s.diff == 0);
    /* se² + se_base² − 2·cov of identical columns: zero up to rounding (a few ulps of the variances) */
    CHECK_MSG(s.ln_ratio_unc < 1e-6, "ln ratio uncertainty of identical rows %g", s.ln_ratio_unc);
    CHECK(s.ppl == s.ppl_base && s.ppl_unc > 0);
    CHECK_MSG(NEAR(s.nll_cor, 1.0, 1e-12), "correlation %g", s.nll_cor);
    CHECK(s.dp_mean == 0 && s.dp_rms == 0 && s.dp_pct[0] == 0 && s.dp_pct[12] == 0);
    dsv4_kld_free(&a);
}

TEST(eval_metrics_hand_computed)
{
    /* base: p = (1/4, 3/4) (logits 0, ln 3); artifact: p = (1/2, 1/2); correct token 1.
     * KL = 1/4 ln(1/2) + 3/4 ln(3/2); NLL_base = ln(4/3), NLL_q = ln 2; Δp = 1/2 - 3/4;
     * top-1: base 1, artifact 0 (a tie goes to the first index). */
    float base[2] = {0.0f, (float)log(3.0)}, q[2] = {0.0f, 0.0f};
    dsv4_kld_acc a;
    dsv4_kld_init(&a);
    dsv4_err e;
    REQUIRE(dsv4_kld_add(&a, q, base, 2, 1, &e) == 0);
    REQUIRE(dsv4_kld_add(&a, q, base, 2, 1, &e) == 0);
    dsv4_kld_stats s;
    REQUIRE(dsv4_kld_stats_get(&a, &s, &e) == 0);
    double kl = 0.25 * log(0.5) + 0.75 * log(1.5);
    CHECK_MSG(NEAR(s.kld_mean, kl, 1e-7), "KL %.9f, expected %.9f", s.kld_mean, kl);
    CHECK_MSG(NEAR(s.kld_pct[6], kl, 1e-7), "median KL %.9f", s.kld_pct[6]);
    CHECK_MSG(NEAR(s.ppl, 2.0, 1e-6) && NEAR(s.ppl_base, 4.0 / 3.0, 1e-6), "PPL %g / %g", s.ppl, s.ppl_base);
    CHECK_MSG(NEAR(s.ratio, 1.5, 1e-6) && NEAR(s.diff, 2.0 - 4.0 / 3.0, 1e-6), "ratio %g diff %g", s.ratio, s.diff);
    CHECK_MSG(NEAR(s.dp_mean, -0.25, 1e-7) && NEAR(s.dp_rms, 0.25, 1e-7), "dp %g rms %g", s.dp_mean, s.dp_rms);
    CHECK(s.same_top == 0.0);
    dsv4_kld_free(&a);
}

TEST(eval_metrics_paired_uncertainty)
{
    /* se_q² + se_b² - 2 cov must equal the squared standard error of the per-position difference. */
    enum { V = 16, N = 300 };
    dsv4_kld_acc a;
    dsv4_kld_init(&a);
    dsv4_err e;
    double d[N], sd = 0, sd2 = 0;
    for (int n = 0; n < N; n++) {
        float b[V], q[V];
        for (int i = 0; i < V; i++) {
            b[i] = th_randf(-3, 3);
            q[i] = b[i] + th_randf(-0.5f, 0.5f);
        }
        int32_t t = (int32_t)(th_rand() % V);
        REQUIRE(dsv4_kld_add(&a, q, b, V, t, &e) == 0);
        dsv4_lsm lq = dsv4_log_softmax_row(q, V), lb = dsv4_log_softmax_row(b, V);
        d[n] = (lq.lse - q[t]) - (lb.lse - b[t]);
        sd += d[n];
        sd2 += d[n] * d[n];
    }
    dsv4_kld_stats s;
    REQUIRE(dsv4_kld_stats_get(&a, &s, &e) == 0);
    double m, se;
    dsv4_mean_se(sd, sd2, N, &m, &se);
    CHECK_MSG(NEAR(s.ln_ratio, m, 1e-12), "ln ratio %.12g vs mean difference %.12g", s.ln_ratio, m);
    CHECK_MSG(NEAR(s.ln_ratio_unc, se, 1e-9 * se + 1e-12), "ln ratio uncertainty %.12g vs %.12g", s.ln_ratio_unc, se);
    CHECK_MSG(s.nll_cor > 0.5 && s.nll_cor <= 1.0 + 1e-12, "correlation %g", s.nll_cor);
    CHECK(s.kld_mean > 0 && s.kld_pct[0] >= 0);
    for (int i = 1; i < DSV4_KLD_NPCT; i++)
        CHECK(s.kld_pct[i] >= s.kld_pct[i - 1] && s.dp_pct[i] >= s.dp_pct[i - 1]);
    dsv4_kld_free(&a);
}

TEST(eval_metrics_mean_se_and_percentiles)
{
    double m, se;
    dsv4_mean_se(10.0, 30.0, 4, &m, &se); /* values 1 2 3 4 */
    CHECK(NEAR(m, 2.5, 1e-15) && NEAR(se, sqrt(1.25 / 3.0), 1e-15));
    dsv4_mean_se(5.0, 25.0, 1, &m, &se);
    CHECK(m == 5.0 && se == 0);
    float v[4] = {1, 2, 3, 4};
    CHECK(NEAR(dsv4_percentile_sorted(v, 4, 0.5), 2.5, 1e-12));
    CHECK(NEAR(dsv4_percentile_sorted(v, 4, 0.99), 3.97, 1e-6));
    CHECK(dsv4_percentile_sorted(v, 4, 0) == 1 && dsv4_percentile_sorted(v, 4, 1) == 4);
    CHECK(isnan(dsv4_percentile_sorted(v, 0, 0.5)));
}

TEST(eval_metrics_range_and_errors)
{
    /* large logits: exp must not overflow; NLL of a two-way tie is ln 2 */
    float x[2] = {1000.0f, 1000.0f};
    dsv4_nll_acc n = {0};
    dsv4_err e;
    REQUIRE(dsv4_nll_add(&n, x, 2, 0, &e) == 0);
    CHECK_MSG(NEAR(n.sum, log(2.0), 1e-12), "NLL %.15g", n.sum);
    double ppl, unc;
    dsv4_nll_ppl(&n, &ppl, &unc);
    CHECK(NEAR(ppl, 2.0, 1e-12) && unc == 0);
    CHECK(dsv4_nll_add(&n, x, 2, 2, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "token id 2 is outside the vocabulary [0, 2)");
    CHECK(e.code == 2);
    /* a NaN row makes the metrics NaN (never a silently finite value) */
    dsv4_kld_acc a;
    dsv4_kld_init(&a);
    float ok[2] = {0, 1}, bad[2] = {NAN, 1};
    REQUIRE(dsv4_kld_add(&a, bad, ok, 2, 1, &e) == 0);
    REQUIRE(dsv4_kld_add(&a, ok, ok, 2, 1, &e) == 0);
    dsv4_kld_stats s;
    REQUIRE(dsv4_kld_stats_get(&a, &s, &e) == 0);
    CHECK(isnan(s.kld_mean) && isnan(s.ppl) && isnan(s.kld_pct[12]));
    dsv4_kld_free(&a);
}

TEST(eval_metrics_relative_error)
{
    enum { R = 3, N = 64 };
    float ref[R * N], x[R * N];
    for (int i = 0; i < R * N; i++) {
        ref[i] = th_randf(-2, 2);
        x[i] = i < N ? ref[i] * 1.1f : ref[i];
    }
    dsv4_relerr_acc a = {0};
    dsv4_relerr_add(&a, x, ref, R, N);
    double r0 = 0, rt = 0;
    for (int i = 0; i < R * N; i++)
        rt += (double)ref[i] * ref[i];
    for (int i = 0; i < N; i++)
        r0 += (double)ref[i] * ref[i];
    double want = sqrt(0.01 * r0 / rt);
    CHECK_MSG(NEAR(dsv4_relerr_value(&a), want, 1e-6), "relative error %g, expected %g", dsv4_relerr_value(&a), want);
    CHECK_MSG(NEAR(a.max_row, 0.1, 1e-6), "worst row %g", a.max_row);
    x[5] = INFINITY;
    dsv4_relerr_add(&a, x, ref, 1, N);
    CHECK(isinf(dsv4_relerr_value(&a)) && a.nonfinite == 1);
}
