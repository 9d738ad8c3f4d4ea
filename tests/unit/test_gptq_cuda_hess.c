/* The CUDA running Hessian (kernels/cuda/ops_hess.cu: cublasSsyrk, or our own SYRK kernel with
 * DSV4_NO_CUDA_LIBS) against the CPU op and an fp64 reference, on random correlated rows with a
 * row stride past the columns (NaN padding that must not be read), in two calls and a rows == 0
 * call, with the lower triangle checked untouched. Without a GPU it prints SKIP.
 *
 * Tolerance: both sum fp32 products in different orders (blocked SYRKs; our kernel sums 256 rows
 * in fp32, then in fp64), so an entry differs by rounding errors of order sqrt(rows)·2^-24 of
 * Σ_r|x_ri·x_rj| <= (rows/2)·sqrt(H_ii·H_jj): 1e-5·sqrt(H_ii·H_jj), while a wrong row, column,
 * weight or transposition is off by O(H). */
#include "gptq_cuda_util.h"
#include "harness.h"
#include "ops_cuda_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_libs.h"

static void hess_case(oc_pair *p, dsv4_ops *g, int64_t cols, int64_t ld, int64_t r1, int64_t r2)
{
    int64_t rows = r1 + r2;
    float *x = gc_rows(rows, cols, ld, NULL, 0);
    double *ref = gc_hessian(x, rows, cols, ld);
    float *h0 = malloc((size_t)(cols * cols) * 4), *hc = malloc((size_t)(cols * cols) * 4);
    float *hg = malloc((size_t)(cols * cols) * 4);
    REQUIRE(h0 && hc && hg);
    for (int64_t i = 0; i < cols * cols; i++)
        h0[i] = i / cols > i % cols ? 7.0f : 0.0f; /* the lower triangle must stay untouched */
    float *xc = oc_put(p->cpu, x, (size_t)(rows * ld) * 4), *xg = oc_put(g, x, (size_t)(rows * ld) * 4);
    float *Hc = oc_put(p->cpu, h0, (size_t)(cols * cols) * 4), *Hg = oc_put(g, h0, (size_t)(cols * cols) * 4);
    REQUIRE(xc && xg && Hc && Hg);
    double nc = 0, ng = 0;
    dsv4_err e;
    int64_t parts[2][2] = {{0, r1}, {r1, r2}};
    for (int k = 0; k < 2; k++) {
        int64_t at = parts[k][0], n = parts[k][1];
        CHECK_MSG(g->hess_acc(g, xg + at * ld, n, cols, ld, Hg, &ng, &e) == 0, "cuda hess_acc: %s", e.msg);
        CHECK_MSG(p->cpu->hess_acc && p->cpu->hess_acc(p->cpu, xc + at * ld, n, cols, ld, Hc, &nc, &e) == 0,
                  "cpu hess_acc (op missing?): %s", p->cpu->hess_acc ? e.msg : "no op");
    }
    CHECK(g->hess_acc(g, xg, 0, cols, ld, Hg, &ng, &e) == 0); /* rows == 0: nothing changes */
    CHECK(ng == (double)rows && nc == (double)rows);
    CHECK(g->sync(g, &e) == 0 && g->download(g, hg, Hg, (size_t)(cols * cols) * 4, &e) == 0);
    CHECK(p->cpu->download(p->cpu, hc, Hc, (size_t)(cols * cols) * 4, &e) == 0);
    int64_t bad_c = 0, bad_r = 0, bad_l = 0, worst = -1;
    for (int64_t i = 0; i < cols; i++)
        for (int64_t j = 0; j < cols; j++) {
            int64_t t = i * cols + j;
            if (j < i) {
                bad_l += hg[t] != 7.0f;
                continue;
            }
            double tol = 1e-5 * sqrt(ref[i * cols + i] * ref[j * cols + j]) + 1e-30;
            int oc = fabs((double)hg[t] - (double)hc[t]) <= tol, orf = fabs((double)hg[t] - ref[t]) <= tol;
            bad_c += !oc;
            bad_r += !orf;
            if ((!oc || !orf) && worst < 0)
                worst = t;
        }
    CHECK_MSG(bad_c == 0 && bad_r == 0 && bad_l == 0,
              "hess_acc %lld cols (ld %lld, rows %lld+%lld) on %s: %lld entries off the CPU op, %lld off fp64, %lld "
              "lower entries written; first bad [%lld]: cuda %.9g cpu %.9g fp64 %.9g",
              (long long)cols, (long long)ld, (long long)r1, (long long)r2, dsv4_cuda_gptq_path(g), (long long)bad_c,
              (long long)bad_r, (long long)bad_l, (long long)worst, worst >= 0 ? hg[worst] : 0.0,
              worst >= 0 ? hc[worst] : 0.0, worst >= 0 ? ref[worst] : 0.0);
    p->cpu->free(p->cpu, xc);
    p->cpu->free(p->cpu, Hc);
    g->free(g, xg);
    g->free(g, Hg);
    free(x);
    free(ref);
    free(h0);
    free(hc);
    free(hg);
}

TEST(gptq_cuda_hess_acc)
{
    oc_pair p;
    if (oc_open(&p, "gptq_cuda_hess_acc"))
        return;
    dsv4_ops *nl = gc_open_nolibs();
    dsv4_ops *be[2] = {p.gpu, nl};
    for (int b = 0; b < 2 && be[b]; b++) {
        printf("  hess_acc on: %s\n", dsv4_cuda_gptq_path(be[b]));
        hess_case(&p, be[b], 200, 213, 300, 157);
        hess_case(&p, be[b], 64, 64, 1000, 1);
        hess_case(&p, be[b], 1, 3, 5, 2);
    }
    dsv4_ops_release(nl);
    oc_close(&p);
}
