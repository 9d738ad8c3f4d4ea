/* Round-to-nearest with the MSE observer (quant/rtn_mse.c, recipe `observer: mse` on an RTN group):
 * the same packed bytes and scales as the GPTQ op with H = I and the MSE observer, INT4 g128/g32
 * and NVFP4; per group never a larger 2.4-norm error than minmax RTN (its first grid point), and
 * strictly smaller somewhere on normal weights; non-finite weights and bad shapes refused. */
#include "harness.h"
#include "formats/fp.h"
#include "quant/pack.h"
#include "test_gptq_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Σ |w − ŵ|^2.4 over group g of row r (dequantized values deq, weights wf). */
static double group_err(const float *wf, const float *deq, int64_t k, int64_t r, int64_t g, int group)
{
    double s = 0;
    for (int64_t i = g * group; i < (g + 1) * group; i++)
        s += pow(fabs((double)wf[r * k + i] - deq[r * k + i]), 2.4);
    return s;
}

TEST(rtn_mse_equals_gptq_identity)
{
    enum { N = 16, K = 256 };
    uint16_t *w = malloc(N * K * 2);
    float *wf = malloc(N * K * 4), *H = calloc((size_t)K * K, 4), *deq = malloc(N * K * 4), *mm = malloc(N * K * 4);
    tg_weights(N, K, 0.02f, w, wf);
    for (int i = 0; i < K; i++)
        H[i * K + i] = 1.0f;
    static const int groups[] = {128, 32, 16};
    for (int gi = 0; gi < 3; gi++) {
        int g = groups[gi], nvfp4 = g == 16;
        int64_t ng = K / g;
        float gs = nvfp4 ? tg_gscale(w, N, K) : 0.0f;
        char msg[TG_MSG];
        dsv4_ops *o = dsv4_ops_cpu(0);
        tg_run r;
        int rc = tg_gptq(o, &r, wf, H, N, K, nvfp4 ? DSV4_GPTQ_NVFP4 : DSV4_GPTQ_INT4, g, gs, DSV4_ACTORDER_NONE,
                         DSV4_OBSERVER_MSE, 0, 0.0, msg);
        CHECK_MSG(rc == 0, "g%d: %s", g, msg);
        dsv4_err e;
        if (rc == 0 && !nvfp4) {
            int32_t *p = malloc(N * K / 2), *pg = malloc(N * K / 2);
            uint16_t *s = malloc((size_t)(N * ng) * 2);
            REQUIRE(dsv4_int4_rtn_mse(w, N, K, g, p, s, &e) == 0);
            dsv4_int4_pack((const int8_t *)r.q, N, K, pg);
            CHECK_MSG(!memcmp(p, pg, N * K / 2), "INT4 g%d: packed words differ from GPTQ(H = I, mse)", g);
            CHECK_MSG(!memcmp(s, r.scale, (size_t)(N * ng) * 2), "INT4 g%d: scales differ from GPTQ(H = I, mse)", g);
            REQUIRE(dsv4_int4_dequant(p, s, N, K, g, (uint16_t *)deq, &e) == 0);
            for (int64_t i = N * K - 1; i >= 0; i--) /* BF16 in place -> float, from the end */
                deq[i] = dsv4_bf16_to_f32(((uint16_t *)deq)[i]);
            free(p);
            free(pg);
            free(s);
        } else if (rc == 0) {
            uint8_t *p = malloc(N * K / 2), *pg = malloc(N * K / 2), *s = malloc((size_t)(N * ng));
            REQUIRE(dsv4_nvfp4_rtn_mse(w, N, K, gs, p, s, &e) == 0);
            dsv4_nvfp4_pack(r.q, N, K, pg);
            CHECK_MSG(!memcmp(p, pg, N * K / 2), "NVFP4: packed bytes differ from GPTQ(H = I, mse)");
            CHECK_MSG(!memcmp(s, r.scale, (size_t)(N * ng)), "NVFP4: scales differ from GPTQ(H = I, mse)");
            REQUIRE(dsv4_nvfp4_dequant(p, s, gs, N, K, deq, &e) == 0);
            free(p);
            free(pg);
            free(s);
        }
        if (rc == 0) {
            REQUIRE(tg_rtn(w, N, K, g, gs, mm) == 0);
            int worse = 0, better = 0;
            for (int64_t row = 0; row < N; row++)
                for (int64_t grp = 0; grp < ng; grp++) {
                    double a = group_err(wf, deq, K, row, grp, g), b = group_err(wf, mm, K, row, grp, g);
                    worse += a > b * (1 + 1e-6);
                    better += a < b * (1 - 1e-6);
                }
            CHECK_MSG(worse == 0, "g%d: %d groups have a larger 2.4-norm error than minmax RTN", g, worse);
            CHECK_MSG(better > 0, "g%d: no group improved on minmax RTN", g);
        }
        tg_free(&r);
        dsv4_ops_release(o);
    }
    free(w);
    free(wf);
    free(H);
    free(deq);
    free(mm);
}

TEST(rtn_mse_refuses_bad_input)
{
    uint16_t w[2 * 32];
    int32_t p[2 * 4];
    uint16_t s[4];
    uint8_t p8[32], s8[4];
    dsv4_err e;
    for (int i = 0; i < 64; i++)
        w[i] = dsv4_f32_to_bf16(0.01f * (float)(i - 32));
    w[40] = 0x7FC0; /* NaN */
    CHECK(dsv4_int4_rtn_mse(w, 2, 32, 32, p, s, &e) != 0 && strstr(e.msg, "[1, 8] is not finite"));
    CHECK(dsv4_nvfp4_rtn_mse(w, 2, 32, 1.0f, p8, s8, &e) != 0 && strstr(e.msg, "not finite"));
    CHECK(dsv4_int4_rtn_mse(w, 2, 32, 24, p, s, &e) != 0 && strstr(e.msg, "multiple of the group"));
    CHECK(dsv4_nvfp4_rtn_mse(w, 2, 24, 1.0f, p8, s8, &e) != 0 && strstr(e.msg, "multiple of 16"));
    CHECK(dsv4_nvfp4_rtn_mse(w, 1, 32, 0.0f, p8, s8, &e) != 0 && strstr(e.msg, "global scale"));
}
