/* The CPU runner against values computed by transformers' DeepseekV4 on the tiny model
 * (fixtures/dsv4-tiny/golden*): RoPE tables, logits, per-position NLL, perplexity, the MTP block's
 * NLL and acceptance, greedy generation. Tolerances are issue 5's; the measured values are
 * printed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/metrics.h"
#include "harness.h"
#include "runner_fixture.h"

TEST(runner_rope_tables_match_transformers)
{
    dsv4_config c;
    dsv4_err e = {0};
    REQUIRE(dsv4_config_load(th_path("fixtures/dsv4-tiny"), &c, &e) == 0);
    float mt[64], ct[64], gm[64], gc[64];
    dsv4_rope_tables(&c, mt, ct);
    REQUIRE(rf_golden_rope("main", gm, 64) == 32 && rf_golden_rope("compress", gc, 64) == 32);
    for (int i = 0; i < 32; i++) {
        CHECK_MSG(fabsf(mt[i] - gm[i]) <= 1e-6f * gm[i], "main[%d] %.9g vs %.9g", i, mt[i], gm[i]);
        CHECK_MSG(fabsf(ct[i] - gc[i]) <= 1e-6f * gc[i], "compress[%d] %.9g vs %.9g", i, ct[i], gc[i]);
    }
}

/* Runs the main model over eval rows [r0, r1) (512 inputs each) and checks NLL, logits and
 * perplexity. With mtp, also the MTP block's NLL and teacher-forced acceptance. */
static void eval_rows(int r0, int r1, int mtp)
{
    rf_fixture f;
    REQUIRE(rf_open(&f, dsv4_ops_cpu(0), DSV4_LOAD_LAYERS | (mtp ? DSV4_LOAD_MTP : 0)) == 0);
    int64_t L = 512, V = f.m.cfg.vocab_size, sd = f.m.cfg.hc_mult * f.m.cfg.hidden_size;
    float *lg = malloc((size_t)(L * V) * sizeof(float)), *H = malloc((size_t)(L * sd) * sizeof(float));
    float *ml = malloc((size_t)(L * V) * sizeof(float));
    int32_t *top = malloc((size_t)L * sizeof(int32_t));
    dsv4_seq s;
    dsv4_err e = {0};
    REQUIRE(lg && H && ml && top && dsv4_seq_init(&f.m, L, L, &s, &e) == 0);
    double sum = 0, gsum = 0, maxd = 0, msum = 0, mmaxd = 0;
    int64_t n = 0, mn = 0, acc = 0, accn = 0;
    for (int r = r0; r < r1; r++) {
        const int32_t *row = f.rows + r * f.row_len;
        dsv4_seq_reset(&s);
        if (dsv4_forward(&s, row, L, lg, mtp ? H : NULL, &e)) { CHECK_MSG(0, "%s", e.msg); break; }
        for (int64_t p = 0; p < L; p++) {
            dsv4_lsm ls = dsv4_log_softmax_row(lg + p * V, V);
            double nl = ls.lse - lg[p * V + row[p + 1]], g = f.nll[r * 512 + p];
            sum += nl;
            gsum += g;
            maxd = fmax(maxd, fabs(nl - g));
            top[p] = (int32_t)ls.argmax;
            n++;
        }
        if (r == 0) { /* logits_row0_pos0_31 */
            double md, mx;
            rf_max_diff(lg, f.logits0, 32 * V, &md, &mx);
            printf("unit: runner logits row 0 pos 0..31: max |diff| %.3g, max |logit| %.3g, relative %.3g\n", md, mx, md / mx);
            CHECK_MSG(md <= 1e-3 * mx, "logits differ: max |diff| %.4g > 1e-3 x %.4g", md, mx);
        }
        if (!mtp) continue;
        for (int64_t p = 0; p + 1 < L; p += 256) { /* MTP over positions 0..510 with t_{p+1} */
            int64_t T = L - 1 - p < 256 ? L - 1 - p : 256;
            if (dsv4_mtp_forward(&s, H + p * sd, row + p + 1, T, ml + p * V, &e)) { CHECK_MSG(0, "%s", e.msg); goto done; }
        }
        for (int64_t p = 0; p + 1 < L; p++) {
            dsv4_lsm ls = dsv4_log_softmax_row(ml + p * V, V);
            double nl = ls.lse - ml[p * V + row[p + 2]], g = f.nll_mtp[r * 511 + p];
            msum += nl;
            mmaxd = fmax(mmaxd, fabs(nl - g));
            mn++;
            acc += ls.argmax == top[p + 1];
            accn++;
        }
    }
    printf("unit: runner rows %d..%d: ppl %.6f (golden rows %.6f), max |nll diff| %.4g\n", r0, r1 - 1, exp(sum / n),
           exp(gsum / n), maxd);
    CHECK_MSG(maxd <= 0.02, "per-position NLL differs by up to %.4g (> 0.02)", maxd);
    CHECK_MSG(fabs(exp(sum / n) / exp(gsum / n) - 1) <= 0.002, "ppl %.6f vs golden %.6f", exp(sum / n), exp(gsum / n));
    if (r0 == 0 && r1 == 64) {
        double gp = rf_golden_num("ppl");
        CHECK_MSG(fabs(exp(sum / n) / gp - 1) <= 0.002, "ppl %.6f vs golden.json %.6f", exp(sum / n), gp);
    }
    if (mtp) {
        double a = (double)acc / (double)accn, ga = rf_golden_num("mtp_accept_teacher_forced");
        printf("unit: runner MTP rows %d..%d: ppl(t+2) %.6f, max |nll diff| %.4g, teacher-forced acceptance %.4f "
               "(golden, all rows: %.4f)\n", r0, r1 - 1, exp(msum / mn), mmaxd, a, ga);
        CHECK_MSG(mmaxd <= 0.02, "MTP NLL differs by up to %.4g (> 0.02)", mmaxd);
        if (r0 == 0 && r1 == 64) {
            CHECK_MSG(fabs(a - ga) <= 0.005, "acceptance %.4f vs golden %.4f", a, ga);
            CHECK_MSG(fabs(exp(msum / mn) / rf_golden_num("mtp_ppl_tplus2") - 1) <= 0.002, "MTP ppl %.6f", exp(msum / mn));
        }
    }
done:
    dsv4_seq_free(&s);
    free(lg); free(H); free(ml); free(top);
    rf_close(&f);
}

/* One pass over the 64 rows checks the main model and the MTP block. */
TEST(runner_golden_ppl_and_mtp_all_rows) { eval_rows(0, 64, 1); }
