/* Quality metrics of a model's next-token distributions, computed as llama.cpp's
 * `llama-perplexity --kl-divergence` reports them (tools/perplexity/perplexity.cpp), from logits
 * streamed one position at a time: nothing of size vocab is kept between positions, only a few
 * running sums and one float per position (for the percentiles).
 *
 *  - Perplexity exp(mean NLL) with its uncertainty: the standard error of the mean NLL,
 *    sqrt((E[x²] - E[x]²) / (n - 1)), propagated through exp (ppl_unc = ppl · se).
 *  - For an artifact Q against its source (base) on the same positions: ln(PPL(Q)/PPL(base)) with
 *    the paired uncertainty sqrt(se_q² + se_b² - 2·cov) (the NLLs of one position are correlated),
 *    the ratio exp(·) and the difference PPL(Q) - PPL(base) with their propagated uncertainties,
 *    and the correlation of the two NLLs.
 *  - KL(base || Q) = Σ_i p_base(i)·(ln p_base(i) - ln p_Q(i)) per position, over the whole
 *    vocabulary (llama.cpp drops base log-probabilities below -16 because it stores them in 16
 *    bits; here both rows are exact): mean ± standard error, minimum, maximum, median and the
 *    0.1/1/5/10/90/95/99/99.9 percentiles (linear interpolation between order statistics).
 *  - Same top-1: share of positions where both argmaxes agree (first index on ties), ± the
 *    binomial standard error sqrt(p(1-p)/(n-1)).
 *  - Δp = p_Q(correct) - p_base(correct): mean ± se, RMS ± se, and percentiles.
 * Log-softmax is computed in double: lse = max + ln Σ exp(x - max). */
#ifndef DSV4_EVAL_METRICS_H
#define DSV4_EVAL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* One row of logits: its log-sum-exp (double) and argmax (first index of the maximum). */
typedef struct dsv4_lsm {
    double lse;
    int64_t argmax;
} dsv4_lsm;
dsv4_lsm dsv4_log_softmax_row(const float *logits, int64_t vocab);

/* Mean and standard error of a sum and a sum of squares over n values (se 0 when n < 2). */
void dsv4_mean_se(double sum, double sum2, int64_t n, double *mean, double *se);
/* Percentile `q` in [0, 1] of n sorted values (linear interpolation, as llama.cpp). */
double dsv4_percentile_sorted(const float *v, size_t n, double q);

/* ---- perplexity of one model ---------------------------------------------------------------- */

typedef struct dsv4_nll_acc {
    double sum, sum2;
    int64_t count;
} dsv4_nll_acc;

/* Adds one position: logits [vocab], the correct next token. Fails (code 2) when target is out
 * of range; a non-finite logit row makes the NLL non-finite (recorded, never hidden). */
int dsv4_nll_add(dsv4_nll_acc *a, const float *logits, int64_t vocab, int32_t target, dsv4_err *e);
/* exp(mean NLL) and its uncertainty. */
void dsv4_nll_ppl(const dsv4_nll_acc *a, double *ppl, double *unc);

/* ---- artifact (Q) against its source (base) -------------------------------------------------- */

typedef struct dsv4_kld_acc {
    double sum_nll, sum_nll2, sum_nll_base, sum_nll_base2, sum_nll_nll_base;
    double sum_kld, sum_kld2;
    double sum_dp, sum_dp2, sum_dp4;
    int64_t n_same_top, count;
    int64_t top_q, top_base;     /* argmax of q and of base in the position added last */
    float *kld, *dp;             /* per position, for the percentiles */
    size_t cap;
} dsv4_kld_acc;

void dsv4_kld_init(dsv4_kld_acc *a);
void dsv4_kld_free(dsv4_kld_acc *a);
/* Adds one position: q and base are the two models' logits [vocab] for the same input, target the
 * correct next token; top_q / top_base receive their argmaxes. Fails (code 2) on a target out of range, (code 1) out of memory. */
int dsv4_kld_add(dsv4_kld_acc *a, const float *q, const float *base, int64_t vocab, int32_t target, dsv4_err *e);

/* Percentiles reported for KL and Δp (fractions); DSV4_KLD_NPCT of them. */
#define DSV4_KLD_NPCT 13
extern const double dsv4_kld_pct[DSV4_KLD_NPCT]; /* 0 .001 .01 .05 .10 .25 .50 .75 .90 .95 .99 .999 1 */

typedef struct dsv4_kld_stats {
    int64_t count;
    double ppl, ppl_unc, ppl_base, ppl_base_unc;
    double nll_cor;                       /* correlation of the two NLLs */
    double ln_ratio, ln_ratio_unc;        /* ln(PPL(Q)/PPL(base)) */
    double ratio, ratio_unc;              /* PPL(Q)/PPL(base) */
    double diff, diff_unc;                /* PPL(Q) - PPL(base) */
    double kld_mean, kld_unc;
    double kld_pct[DSV4_KLD_NPCT];        /* at dsv4_kld_pct; [0] min, [6] median, [12] max */
    double dp_mean, dp_unc, dp_rms, dp_rms_unc;
    double dp_pct[DSV4_KLD_NPCT];
    double same_top, same_top_unc;       /* fractions */
} dsv4_kld_stats;

/* Summarizes (sorts copies of the per-position values; `a` is unchanged). Fails only out of memory. */
int dsv4_kld_stats_get(const dsv4_kld_acc *a, dsv4_kld_stats *s, dsv4_err *e);

/* ---- relative error of hidden states ---------------------------------------------------------- */

typedef struct dsv4_relerr_acc {
    double sum_d2, sum_r2;       /* Σ (x - ref)², Σ ref² */
    double max_row;              /* largest per-row relative RMS error */
    int64_t rows, nonfinite;     /* rows seen; values of x that were not finite */
} dsv4_relerr_acc;

/* Adds `rows` rows of `n` values: x against the reference ref. */
void dsv4_relerr_add(dsv4_relerr_acc *a, const float *x, const float *ref, int64_t rows, int64_t n);
/* sqrt(Σ(x-ref)² / Σ ref²) (infinity when non-finite values were seen). */
double dsv4_relerr_value(const dsv4_relerr_acc *a);

#endif
