/* Perplexity, KL divergence, top-1 agreement and Δp accumulators (metrics.h), the formulas of
 * llama.cpp's llama-perplexity --kl-divergence with exact (double) log-softmax. */
#include "eval/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const double dsv4_kld_pct[DSV4_KLD_NPCT] = {0.0, 0.001, 0.01, 0.05, 0.10, 0.25, 0.50,
                                            0.75, 0.90, 0.95, 0.99, 0.999, 1.0};

dsv4_lsm dsv4_log_softmax_row(const float *x, int64_t vocab)
{
    dsv4_lsm r = {NAN, 0};
    if (vocab <= 0)
        return r;
    double mx = x[0];
    for (int64_t i = 1; i < vocab; i++)
        if (x[i] > mx) {
            mx = x[i];
            r.argmax = i;
        }
    double s = 0;
    for (int64_t i = 0; i < vocab; i++)
        s += exp((double)x[i] - mx);
    r.lse = mx + log(s);
    for (int64_t i = 0; i < vocab; i++) /* a NaN anywhere makes the row's values meaningless */
        if (isnan(x[i]))
            r.lse = NAN;
    return r;
}

void dsv4_mean_se(double sum, double sum2, int64_t n, double *mean, double *se)
{
    *mean = n > 0 ? sum / (double)n : NAN;
    *se = 0;
    if (n >= 2) {
        double var = sum2 / (double)n - *mean * *mean;
        *se = var > 0 ? sqrt(var / (double)(n - 1)) : 0;
    }
}

double dsv4_percentile_sorted(const float *v, size_t n, double q)
{
    if (n == 0)
        return NAN;
    if (q <= 0)
        return v[0];
    if (q >= 1)
        return v[n - 1];
    double p = q * (double)(n - 1);
    size_t i = (size_t)p;
    p -= (double)i;
    size_t j = i + 1 < n ? i + 1 : n - 1;
    return (1 - p) * v[i] + p * v[j];
}

static int check_target(int32_t target, int64_t vocab, dsv4_err *e)
{
    if (target < 0 || target >= vocab)
        return dsv4_fail(e, "token id %d is outside the vocabulary [0, %lld)", target, (long long)vocab);
    return 0;
}

int dsv4_nll_add(dsv4_nll_acc *a, const float *logits, int64_t vocab, int32_t target, dsv4_err *e)
{
    if (check_target(target, vocab, e))
        return -1;
    dsv4_lsm l = dsv4_log_softmax_row(logits, vocab);
    double nll = l.lse - (double)logits[target];
    a->sum += nll;
    a->sum2 += nll * nll;
    a->count++;
    return 0;
}

void dsv4_nll_ppl(const dsv4_nll_acc *a, double *ppl, double *unc)
{
    double m, se;
    dsv4_mean_se(a->sum, a->sum2, a->count, &m, &se);
    *ppl = exp(m);
    *unc = *ppl * se;
}

void dsv4_kld_init(dsv4_kld_acc *a)
{
    memset(a, 0, sizeof *a);
}

void dsv4_kld_free(dsv4_kld_acc *a)
{
    free(a->kld);
    free(a->dp);
    memset(a, 0, sizeof *a);
}

int dsv4_kld_add(dsv4_kld_acc *a, const float *q, const float *base, int64_t vocab, int32_t target, dsv4_err *e)
{
    if (check_target(target, vocab, e))
        return -1;
    if ((size_t)a->count == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 1024;
        float *k = realloc(a->kld, cap * sizeof *k);
        if (k)
            a->kld = k;
        float *d = k ? realloc(a->dp, cap * sizeof *d) : NULL;
        if (!d)
            return dsv4_fail_rt(e, "out of memory for %zu per-position KL values", cap);
        a->dp = d;
        a->cap = cap;
    }
    dsv4_lsm lq = dsv4_log_softmax_row(q, vocab), lb = dsv4_log_softmax_row(base, vocab);
    double nll = lq.lse - (double)q[target], nllb = lb.lse - (double)base[target];
    a->sum_nll += nll;
    a->sum_nll2 += nll * nll;
    a->sum_nll_base += nllb;
    a->sum_nll_base2 += nllb * nllb;
    a->sum_nll_nll_base += nll * nllb;
    double kl = 0;
    for (int64_t i = 0; i < vocab; i++) {
        double lpb = (double)base[i] - lb.lse;
        double lpq = (double)q[i] - lq.lse;
        kl += exp(lpb) * (lpb - lpq);
    }
    a->sum_kld += kl;
    a->sum_kld2 += kl * kl;
    a->top_q = lq.argmax;
    a->top_base = lb.argmax;
    if (lq.argmax == lb.argmax)
        a->n_same_top++;
    double dp = exp(-nll) - exp(-nllb);
    a->sum_dp += dp;
    a->sum_dp2 += dp * dp;
    a->sum_dp4 += dp * dp * dp * dp;
    a->kld[a->count] = (float)kl;
    a->dp[a->count] = (float)dp;
    a->count++;
    return 0;
}

/* NaN sorts after everything, so a broken row shows up as the maximum. */
static int cmp_float(const void *pa, const void *pb)
{
    float a = *(const float *)pa, b = *(const float *)pb;
    if (isnan(a) || isnan(b))
        return isnan(a) - isnan(b);
    return (a > b) - (a < b);
}

static int sorted_pct(const float *v, size_t n, double *out, dsv4_err *e)
{
    float *s = malloc((n ? n : 1) * sizeof *s);
    if (!s)
        return dsv4_fail_rt(e, "out of memory sorting %zu per-position values", n);
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_float);
    for (int i = 0; i < DSV4_KLD_NPCT; i++)
        out[i] = dsv4_percentile_sorted(s, n, dsv4_kld_pct[i]);
    free(s);
    return 0;
}

int dsv4_kld_stats_get(const dsv4_kld_acc *a, dsv4_kld_stats *s, dsv4_err *e)
{
    memset(s, 0, sizeof *s);
    int64_t n = a->count;
    s->count = n;
    double m, se, mb, seb;
    dsv4_mean_se(a->sum_nll, a->sum_nll2, n, &m, &se);
    dsv4_mean_se(a->sum_nll_base, a->sum_nll_base2, n, &mb, &seb);
    s->ppl = exp(m);
    s->ppl_unc = s->ppl * se;
    s->ppl_base = exp(mb);
    s->ppl_base_unc = s->ppl_base * seb;
    /* covariance of the two means: (E[xy] - E[x]E[y]) / (n - 1) */
    double cov = n >= 2 ? (a->sum_nll_nll_base / (double)n - m * mb) / (double)(n - 1) : 0;
    s->nll_cor = se > 0 && seb > 0 ? cov / (se * seb) : NAN;
    s->ln_ratio = m - mb;
    double v = se * se + seb * seb - 2 * cov;
    s->ln_ratio_unc = v > 0 ? sqrt(v) : 0;
    s->ratio = exp(s->ln_ratio);
    s->ratio_unc = s->ratio * s->ln_ratio_unc;
    s->diff = s->ppl - s->ppl_base;
    double vd = s->ppl_unc * s->ppl_unc + s->ppl_base_unc * s->ppl_base_unc - 2 * s->ppl * s->ppl_base * cov;
    s->diff_unc = vd > 0 ? sqrt(vd) : 0;
    dsv4_mean_se(a->sum_kld, a->sum_kld2, n, &s->kld_mean, &s->kld_unc);
    dsv4_mean_se(a->sum_dp, a->sum_dp2, n, &s->dp_mean, &s->dp_unc);
    double mse, mse_se;
    dsv4_mean_se(a->sum_dp2, a->sum_dp4, n, &mse, &mse_se);
    s->dp_rms = sqrt(mse);
    s->dp_rms_unc = s->dp_rms > 0 ? 0.5 / s->dp_rms * mse_se : 0;
    s->same_top = n > 0 ? (double)a->n_same_top / (double)n : NAN;
    s->same_top_unc = n >= 2 ? sqrt(s->same_top * (1 - s->same_top) / (double)(n - 1)) : 0;
    if (sorted_pct(a->kld, (size_t)n, s->kld_pct, e) || sorted_pct(a->dp, (size_t)n, s->dp_pct, e))
        return -1;
    return 0;
}

void dsv4_relerr_add(dsv4_relerr_acc *a, const float *x, const float *ref, int64_t rows, int64_t n)
{
    for (int64_t r = 0; r < rows; r++) {
        double d2 = 0, r2 = 0;
        for (int64_t i = 0; i < n; i++) {
            float xv = x[r * n + i], rv = ref[r * n + i];
            if (!isfinite(xv)) {
                a->nonfinite++;
                continue;
            }
            double d = (double)xv - (double)rv;
            d2 += d * d;
            r2 += (double)rv * rv;
        }
        a->sum_d2 += d2;
        a->sum_r2 += r2;
        double row = r2 > 0 ? sqrt(d2 / r2) : (d2 > 0 ? INFINITY : 0);
        if (row > a->max_row)
            a->max_row = row;
        a->rows++;
    }
}

double dsv4_relerr_value(const dsv4_relerr_acc *a)
{
    if (a->nonfinite)
        return INFINITY;
    if (a->sum_r2 > 0)
        return sqrt(a->sum_d2 / a->sum_r2);
    return a->sum_d2 > 0 ? INFINITY : 0;
}
