/* The host Hessian accumulation (kernels/ops.h hess_acc): streaming rows in chunks equals one call,
 * both equal 2/n·XᵀX computed directly in fp64, only the upper triangle is written, the row stride
 * is honoured, the previous contents do not leak into the first call, and bad arguments are
 * refused. */
#include "harness.h"
#include "test_gptq_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { ROWS = 300, COLS = 48, LD = 53 };

#define SENTINEL 777.0f

TEST(gptq_hess_streaming)
{
    float *x = malloc(ROWS * LD * 4), *H1 = malloc(COLS * COLS * 4), *H2 = malloc(COLS * COLS * 4);
    dsv4_ops *o = dsv4_ops_cpu(0);
    dsv4_err e;
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < LD; c++) /* the padding past COLS is NaN: the stride must skip it */
            x[r * LD + c] = c < COLS ? tg_normal() * (1.0f + (float)(c % 5)) + (c % 3 ? 0.0f : 0.5f) : NAN;
    for (int i = 0; i < COLS * COLS; i++) /* old contents: NaN above (must not leak), a sentinel below */
        H1[i] = H2[i] = (i / COLS) > (i % COLS) ? SENTINEL : NAN;
    double n1 = 0, n2 = 0;
    REQUIRE(o->hess_acc(o, x, ROWS, COLS, LD, H1, &n1, &e) == 0);
    static const int chunks[] = {7, 0, 100, 1, 192};
    for (int i = 0, at = 0; i < 5; at += chunks[i++])
        REQUIRE(o->hess_acc(o, x + (int64_t)at * LD, chunks[i], COLS, LD, H2, &n2, &e) == 0);
    CHECK(n1 == ROWS && n2 == ROWS);
    double worst1 = 0, worst2 = 0;
    int lower = 0;
    for (int i = 0; i < COLS; i++)
        for (int j = 0; j < COLS; j++) {
            if (j < i) {
                lower += H1[i * COLS + j] != SENTINEL || H2[i * COLS + j] != SENTINEL;
                continue;
            }
            double want = 0;
            for (int r = 0; r < ROWS; r++)
                want += (double)x[r * LD + i] * x[r * LD + j];
            want *= 2.0 / ROWS;
            double scale = sqrt(fabs(H1[i * COLS + i] * (double)H1[j * COLS + j])); /* a relative measure that zero-ish entries do not blow up */
            double d1 = fabs(H1[i * COLS + j] - want) / scale, d2 = fabs(H2[i * COLS + j] - (double)H1[i * COLS + j]) / scale;
            worst1 = isnan(d1) || d1 > worst1 ? (isnan(d1) ? INFINITY : d1) : worst1;
            worst2 = isnan(d2) || d2 > worst2 ? (isnan(d2) ? INFINITY : d2) : worst2;
        }
    CHECK_MSG(lower == 0, "%d lower-triangle entries were written", lower);
    /* fp32 sums of 300 products: a relative error of a few 1e-7 per step, well under 1e-5 */
    CHECK_MSG(worst1 < 1e-5, "one call vs fp64 2/n·XᵀX: %g", worst1);
    CHECK_MSG(worst2 < 1e-5, "chunked vs one call: %g", worst2);
    dsv4_ops_release(o);
    free(x);
    free(H1);
    free(H2);
}

TEST(gptq_hess_running_weights)
{
    /* two rows of ones then two rows of twos: H = 2/4·(2·1 + 2·4) = 5 everywhere */
    float x[4 * 2] = {1, 1, 1, 1, 2, 2, 2, 2}, H[4] = {0, 0, SENTINEL, 0};
    dsv4_ops *o = dsv4_ops_cpu(0);
    dsv4_err e;
    double n = 0;
    REQUIRE(o->hess_acc(o, x, 2, 2, 2, H, &n, &e) == 0);
    CHECK(H[0] == 2.0f && H[1] == 2.0f && H[3] == 2.0f && n == 2);
    REQUIRE(o->hess_acc(o, x + 4, 2, 2, 2, H, &n, &e) == 0);
    CHECK(H[0] == 5.0f && H[1] == 5.0f && H[3] == 5.0f && n == 4);
    CHECK(H[2] == SENTINEL);
    REQUIRE(o->hess_acc(o, NULL, 0, 2, 2, H, &n, &e) == 0); /* rows == 0: nothing happens */
    CHECK(H[0] == 5.0f && n == 4);
    dsv4_ops_release(o);
}

TEST(gptq_hess_bad_args)
{
    float x[16] = {0}, H[16];
    double n = 0, bad_n = -1;
    dsv4_ops *o = dsv4_ops_cpu(0);
    dsv4_err e;
    CHECK(o->hess_acc(o, x, 2, 4, 3, H, &n, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "row stride 3");
    CHECK(o->hess_acc(o, x, -1, 4, 4, H, &n, &e) == -1);
    CHECK(o->hess_acc(o, x, 2, 0, 4, H, &n, &e) == -1);
    CHECK(o->hess_acc(o, x, 2, 4, 4, H, &bad_n, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "row count so far");
    CHECK(o->hess_acc(o, x, 2, 4, 4, H, NULL, &e) == -1);
    CHECK(o->hess_acc(o, NULL, 2, 4, 4, H, &n, &e) == -1);
    CHECK(n == 0);
    dsv4_ops_release(o);
}
