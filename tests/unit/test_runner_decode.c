/* The runner's decode state: token-by-token decode gives the prefill's logits, a rewind restores
 * the state exactly, greedy generation reproduces transformers' greedy tokens, and k = 1
 * speculative decoding with the MTP draft produces exactly the greedy tokens with the acceptance
 * rate transformers' MTP gives on the same sequences (golden.json mtp_accept_greedy_gen). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "runner_fixture.h"

TEST(runner_decode_equals_prefill)
{
    rf_fixture f;
    REQUIRE(rf_open(&f, dsv4_ops_cpu(0), DSV4_LOAD_LAYERS) == 0);
    int64_t P = 300, V = f.m.cfg.vocab_size; /* crosses window wraps, CSA blocks and 2 HCA blocks */
    const int32_t *row = f.rows + 5 * f.row_len;
    float *pre = malloc((size_t)(P * V) * sizeof(float)), *dec = malloc((size_t)(P * V) * sizeof(float));
    dsv4_seq a, b;
    dsv4_err e = {0};
    REQUIRE(pre && dec && dsv4_seq_init(&f.m, P, P, &a, &e) == 0 && dsv4_seq_init(&f.m, P, 7, &b, &e) == 0);
    CHECK(dsv4_forward(&a, row, P, pre, NULL, &e) == 0);
    /* decode: 1 token at a time for 130 tokens, then chunks of 7 (and a remainder) */
    int64_t p = 0;
    for (; p < 130; p++) CHECK(dsv4_forward(&b, row + p, 1, dec + p * V, NULL, &e) == 0);
    for (; p < P; p += 7) {
        int64_t T = P - p < 7 ? P - p : 7;
        CHECK(dsv4_forward(&b, row + p, T, dec + p * V, NULL, &e) == 0);
    }
    double r = rf_max_diff(dec, pre, P * V, NULL, NULL);
    printf("unit: decode vs prefill, 300 positions: max |diff| / max |logit| = %.3g\n", r);
    CHECK_MSG(r <= 1e-5, "decode logits differ from prefill: %.3g", r);
    dsv4_seq_free(&a);
    dsv4_seq_free(&b);
    free(pre);
    free(dec);
    rf_close(&f);
}

TEST(runner_rewind_restores_state)
{
    rf_fixture f;
    REQUIRE(rf_open(&f, dsv4_ops_cpu(0), DSV4_LOAD_LAYERS) == 0);
    int64_t V = f.m.cfg.vocab_size;
    const int32_t *row = f.rows + 9 * f.row_len;
    float *ref = malloc((size_t)(4 * V) * sizeof(float)), *got = malloc((size_t)(4 * V) * sizeof(float));
    float *junk = malloc((size_t)(4 * V) * sizeof(float));
    dsv4_seq a, b;
    dsv4_err e = {0};
    REQUIRE(ref && got && junk && dsv4_seq_init(&f.m, 512, 4, &a, &e) == 0 && dsv4_seq_init(&f.m, 512, 4, &b, &e) == 0);
    /* positions 0..254, then the rejected pair ends a CSA block (255) and opens one (256) */
    for (int64_t p = 0; p < 255; p += 3) {
        int64_t T = 255 - p < 3 ? 255 - p : 3;
        CHECK(dsv4_forward(&a, row + p, T, NULL, NULL, &e) == 0 && dsv4_forward(&b, row + p, T, NULL, NULL, &e) == 0);
    }
    int32_t bad[4] = {7, 9, 11, 13};
    CHECK(dsv4_forward(&b, bad, 4, junk, NULL, &e) == 0);
    CHECK(dsv4_seq_rewind(&b, 255, 0, &e) == 0);
    CHECK(dsv4_forward(&a, row + 255, 4, ref, NULL, &e) == 0);
    CHECK(dsv4_forward(&b, row + 255, 4, got, NULL, &e) == 0);
    double r = rf_max_diff(got, ref, 4 * V, NULL, NULL);
    printf("unit: rewind of 4 tokens across a CSA/HCA block boundary: max relative logit diff %.3g\n", r);
    CHECK_MSG(r <= 1e-5, "logits after rewind differ: %.3g", r);
    CHECK(dsv4_seq_rewind(&b, 250, 0, &e) != 0); /* 9 back > max_chunk 4 */
    CHECK_STR_CONTAINS(e.msg, "only up to 4 tokens back");
    dsv4_seq_free(&a);
    dsv4_seq_free(&b);
    free(ref); free(got); free(junk);
    rf_close(&f);
}

TEST(runner_greedy_and_speculative_match_transformers)
{
    rf_fixture f;
    REQUIRE(rf_open(&f, dsv4_ops_cpu(0), DSV4_LOAD_LAYERS | DSV4_LOAD_MTP) == 0);
    int64_t P = 64, N = 96, L = P + N, V = f.m.cfg.vocab_size, sd = f.m.cfg.hc_mult * f.m.cfg.hidden_size;
    int32_t gen[96], spec[96];
    float *H = malloc((size_t)(L * sd) * sizeof(float)), *ml = malloc((size_t)(L * V) * sizeof(float));
    dsv4_seq s;
    dsv4_err e = {0};
    REQUIRE(H && ml && dsv4_seq_init(&f.m, L + 2, L, &s, &e) == 0);
    int64_t same = 0, rows_ok = 0, acc = 0, accn = 0, drafted = 0, accepted = 0, calls = 0;
    for (int r = 0; r < 16; r++) {
        const int32_t *g = f.greedy + r * 160;
        CHECK(memcmp(g, f.rows + r * f.row_len, (size_t)P * sizeof(int32_t)) == 0); /* prompts = eval rows */
        if (dsv4_generate_greedy(&s, g, P, N, gen, &e)) { CHECK_MSG(0, "%s", e.msg); break; }
        int ok = memcmp(gen, g + P, sizeof gen) == 0;
        rows_ok += ok;
        CHECK_MSG(ok, "row %d: greedy tokens differ from transformers'", r);
        dsv4_spec_stats st;
        if (dsv4_generate_spec(&s, g, P, N, spec, &st, &e)) { CHECK_MSG(0, "%s", e.msg); break; }
        same += memcmp(spec, gen, sizeof gen) == 0;
        drafted += st.drafted;
        accepted += st.accepted;
        calls += st.main_calls;
        /* golden's definition: MTP teacher-forced on the greedy sequence, drafts for positions 65..159 */
        dsv4_seq_reset(&s);
        if (dsv4_forward(&s, g, L, NULL, H, &e) || dsv4_mtp_forward(&s, H, g + 1, L - 1, ml, &e)) {
            CHECK_MSG(0, "%s", e.msg);
            break;
        }
        for (int64_t q = P + 1; q < L; q++, accn++) acc += dsv4_argmax(ml + (q - 2) * V, V) == g[q];
    }
    double a = (double)acc / (double)accn, ga = rf_golden_num("mtp_accept_greedy_gen");
    printf("unit: greedy: %lld/16 rows equal transformers'; speculative k=1: %lld/16 rows equal greedy, %lld of %lld "
           "drafts accepted (%.4f) in %lld main calls for %d tokens; MTP acceptance on the greedy sequences %.4f "
           "(golden %.4f)\n", (long long)rows_ok, (long long)same, (long long)accepted, (long long)drafted,
           (double)accepted / (double)drafted, (long long)calls, 16 * 96, a, ga);
    CHECK_EQ_INT(same, 16);
    CHECK_MSG(fabs(a - ga) <= 0.005, "greedy-generation acceptance %.4f vs golden %.4f", a, ga);
    dsv4_seq_free(&s);
    free(H);
    free(ml);
    rf_close(&f);
}
