/* The runner against transformers on random small configurations (tests/data/hfref/, made by
 * tests/interop/hf_refs.py on the GPU machine with transformers' DeepseekV4ForCausalLM): other
 * hc_mult, head counts, windows, layer mixes (CSA/HCA/SWA in several orders), index_topk, hash
 * layers, a sequence shorter than one window; a prefill of every position, and a cached decode
 * (prefill P tokens, then one token per call) against transformers' own cached decode. The weights
 * are stored in transformers' names with fused experts, so the loader's name mapping is exercised
 * too. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/safetensors.h"
#include "runner/runner.h"
#include "runner_fixture.h"

static void run_case(const char *name)
{
    char dir[512], refp[600];
    snprintf(dir, sizeof dir, "%s/%s", th_path("tests/data/hfref"), name);
    snprintf(refp, sizeof refp, "%s/ref.safetensors", dir);
    dsv4_model m;
    dsv4_st_file ref;
    dsv4_err e = {0};
    if (dsv4_model_open(dir, dsv4_ops_cpu(0), DSV4_LOAD_LAYERS, &m, &e) || dsv4_st_open(refp, &ref, &e)) {
        CHECK_MSG(0, "%s: %s", name, e.msg);
        return;
    }
    const dsv4_tensor *ti = dsv4_st_find(&ref, "input_ids"), *tp = dsv4_st_find(&ref, "prefill_logits"),
                      *ts = dsv4_st_find(&ref, "decode_start"), *td = dsv4_st_find(&ref, "decode_logits");
    REQUIRE(ti && tp && ts && td);
    int64_t N = ti->shape[0], V = m.cfg.vocab_size, P = *(const int32_t *)ts->data;
    const int32_t *ids = (const int32_t *)ti->data;
    REQUIRE(tp->shape[0] == N && tp->shape[1] == V && td->shape[0] == N - P);
    float *lg = malloc((size_t)(N * V) * sizeof(float)), *dl = malloc((size_t)((N - P) * V) * sizeof(float));
    dsv4_seq s;
    REQUIRE(lg && dl && dsv4_seq_init(&m, N, N, &s, &e) == 0);
    CHECK(dsv4_forward(&s, ids, N, lg, NULL, &e) == 0);
    double rp = rf_max_diff(lg, (const float *)tp->data, N * V, NULL, NULL);
    /* decode: P tokens, then one per call; row 0 is position P-1 (the prefill's last) */
    dsv4_seq_reset(&s);
    CHECK(dsv4_forward(&s, ids, P, lg, NULL, &e) == 0);
    memcpy(dl, lg + (P - 1) * V, (size_t)V * sizeof(float));
    for (int64_t p = P; p < N - 1; p++) CHECK(dsv4_forward(&s, ids + p, 1, dl + (p - P + 1) * V, NULL, &e) == 0);
    double rd = rf_max_diff(dl, (const float *)td->data, (N - P) * V, NULL, NULL);
    printf("unit: %s (%d layers, hc %lld, N %lld): prefill logits vs transformers %.3g relative, cached decode %.3g\n",
           name, m.cfg.n_layers, (long long)m.cfg.hc_mult, (long long)N, rp, rd);
    CHECK_MSG(rp <= 1e-4, "%s: prefill logits differ from transformers by %.3g of the largest", name, rp);
    CHECK_MSG(rd <= 1e-4, "%s: decode logits differ from transformers' cached decode by %.3g", name, rd);
    dsv4_seq_free(&s);
    free(lg);
    free(dl);
    dsv4_st_close(&ref);
    dsv4_ops *o = m.ops;
    dsv4_model_close(&m);
    dsv4_ops_release(o);
}

TEST(runner_hfref_hc2_csa_hca_swa) { run_case("hc2_csa_hca_swa"); }
TEST(runner_hfref_hc4_hca_csa_csa) { run_case("hc4_hca_csa_csa"); }
TEST(runner_hfref_short_seq) { run_case("short_seq"); }
