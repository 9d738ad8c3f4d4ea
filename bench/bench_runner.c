/* Runner speed on the tiny model (fixtures/dsv4-tiny): prefill tokens/s (4 eval rows of 512
 * tokens, one call each) and decode tokens/s (one token per call, 256 tokens after a 64-token
 * prompt), on the CPU backend and, when a GPU is there, the CUDA backend; each the best of 3
 * runs after a warm-up. bench/hf_speed.py measures transformers' eager DeepseekV4ForCausalLM on
 * the same rows for the ratio (GPU machine).
 * Usage: bench_runner [FIXTURE]   (default fixtures/dsv4-tiny) */
#include <stdio.h>
#include <stdlib.h>

#include "gpu.h"
#include "io/safetensors.h"
#include "runner/runner.h"
#include "util/clock.h"

static int run(const char *dir, dsv4_ops *ops, const int32_t *rows, int64_t row_len)
{
    dsv4_model m;
    dsv4_seq s;
    dsv4_err e = {0};
    if (!ops) { fprintf(stderr, "bench_runner: no backend\n"); return -1; }
    const char *name = ops->name;
    if (dsv4_model_open(dir, ops, DSV4_LOAD_LAYERS, &m, &e) || dsv4_seq_init(&m, 512, 512, &s, &e)) {
        fprintf(stderr, "bench_runner: %s\n", e.msg);
        return -1;
    }
    float *lg = malloc((size_t)(512 * m.cfg.vocab_size) * sizeof(float));
    double best_p = 1e30, best_d = 1e30;
    int rc = 0;
    for (int it = 0; it < 4 && !rc; it++) {
        double t0 = dsv4_now();
        for (int r = 0; r < 4 && !rc; r++) {
            dsv4_seq_reset(&s);
            rc = dsv4_forward(&s, rows + r * row_len, 512, lg, NULL, &e);
        }
        double t1 = dsv4_now();
        dsv4_seq_reset(&s);
        rc = rc || dsv4_forward(&s, rows, 64, lg, NULL, &e);
        double t2 = dsv4_now();
        for (int p = 64; p < 320 && !rc; p++) rc = dsv4_forward(&s, rows + p, 1, lg, NULL, &e);
        double t3 = dsv4_now();
        if (it > 0) { /* the first run is the warm-up */
            best_p = t1 - t0 < best_p ? t1 - t0 : best_p;
            best_d = t3 - t2 < best_d ? t3 - t2 : best_d;
        }
    }
    if (rc) fprintf(stderr, "bench_runner: %s\n", e.msg);
    else
        printf("runner %-4s  prefill %9.0f tokens/s (4 x 512)   decode %8.1f tokens/s (256 steps, logits each)\n",
               name, 4 * 512 / best_p, 256 / best_d);
    free(lg);
    dsv4_seq_free(&s);
    dsv4_model_close(&m);
    dsv4_ops_release(ops);
    return rc;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "fixtures/dsv4-tiny";
    char path[1024];
    snprintf(path, sizeof path, "%s/eval.tokens.safetensors", dir);
    dsv4_st_file f;
    dsv4_err e = {0};
    if (dsv4_st_open(path, &f, &e)) { fprintf(stderr, "bench_runner: %s\n", e.msg); return 1; }
    const dsv4_tensor *t = dsv4_st_find(&f, "input_ids");
    if (!t || t->dtype != DSV4_I32 || t->ndim != 2 || t->shape[0] < 4 || t->shape[1] < 513) {
        fprintf(stderr, "bench_runner: %s: input_ids must be I32 [>=4, >=513]\n", path);
        return 1;
    }
    int rc = run(dir, dsv4_ops_cpu(0), (const int32_t *)t->data, t->shape[1]);
    if (dsv4_gpu_count() > 0) rc |= run(dir, dsv4_ops_cuda(&e), (const int32_t *)t->data, t->shape[1]);
    else printf("runner cuda  (no GPU: not measured)\n");
    dsv4_st_close(&f);
    return rc ? 1 : 0;
}
