/* The host GPTQ op's special cases: dead input columns, Hessians that are not positive definite
 * (damping retries, then the round-to-nearest fallback), the g_idx of act order "group" (a stable
 * descending argsort of diag(H), ties included), and refused arguments. */
#include "harness.h"
#include "formats/fp.h"
#include "formats/fp_round.h"
#include "quant/pack.h"
#include "test_gptq_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { N = 32, K = 256, ROWS = 768 };

TEST(gptq_dead_columns)
{
    static const int dead[] = {3, 17, 100, 200, 255};
    uint16_t *w = malloc(N * K * 2);
    float *wf = malloc(N * K * 4), *x = malloc(ROWS * K * 4), *H = malloc(K * K * 4);
    dsv4_ops *o = dsv4_ops_cpu(0);
    tg_weights(N, K, 0.02f, w, wf);
    tg_corr_x(ROWS, K, x);
    for (int r = 0; r < ROWS; r++)
        for (int d = 0; d < 5; d++)
            x[r * K + dead[d]] = 0.0f;
    REQUIRE(tg_hessian(o, x, ROWS, K, H) == 0);
    for (int f = 0; f < 2; f++)
        for (int ao = 0; ao < 3; ao++) {
            tg_run r;
            char msg[TG_MSG];
            int g = f ? 16 : 64;
            int rc = tg_gptq(o, &r, wf, H, N, K, f ? DSV4_GPTQ_NVFP4 : DSV4_GPTQ_INT4, g, f ? tg_gscale(w, N, K) : 0.0f,
                             (dsv4_actorder)ao, DSV4_OBSERVER_MINMAX, 0, 0.01, msg);
            CHECK_MSG(rc == 0, "%s", msg);
            if (rc == 0) {
                CHECK_EQ_INT(r.a.dead, 5);
                int bad = 0, live_nonzero = 0;
                for (int i = 0; i < N; i++) {
                    for (int d = 0; d < 5; d++)
                        bad += r.W[i * K + dead[d]] != 0.0f || r.q[i * K + dead[d]] != 0;
                    live_nonzero += r.W[i * K + 4] != 0.0f;
                }
                CHECK_MSG(bad == 0, "fmt %d actorder %d: %d dead-column values are not 0", f, ao, bad);
                CHECK(live_nonzero > 0);
            }
            tg_free(&r);
        }
    dsv4_ops_release(o);
    free(w);
    free(wf);
    free(x);
    free(H);
}

TEST(gptq_not_positive_definite)
{
    uint16_t *w = malloc(N * K * 2);
    float *wf = malloc(N * K * 4), *H = malloc(K * K * 4), *rtn = malloc(N * K * 4);
    dsv4_ops *o = dsv4_ops_cpu(0);
    tg_weights(N, K, 0.02f, w, wf);
    REQUIRE(tg_rtn(w, N, K, 128, 0, rtn) == 0);
    /* H = -I: no damping up to 1 makes it positive definite -> round-to-nearest */
    for (int i = 0; i < K * K; i++)
        H[i] = i % (K + 1) == 0 ? -1.0f : 0.0f;
    tg_run r;
    char msg[TG_MSG];
    int rc = tg_gptq(o, &r, wf, H, N, K, DSV4_GPTQ_INT4, 128, 0, DSV4_ACTORDER_NONE, DSV4_OBSERVER_MINMAX, 0, 0.01, msg);
    CHECK_MSG(rc == 0, "%s", msg);
    if (rc == 0) {
        CHECK(r.a.rtn_fallback == 1);
        CHECK_EQ_INT(r.a.attempts, 100); /* 0.01, 0.02, ..., 1.00 */
        int bad = 0;
        for (int i = 0; i < N * K; i++)
            bad += dsv4_f32_bits(rtn[i]) != dsv4_f32_bits(r.W[i]) && !(rtn[i] == 0 && r.W[i] == 0);
        CHECK_MSG(bad == 0, "the fallback is not round-to-nearest: %d values differ", bad);
    }
    tg_free(&r);
    /* one diagonal entry of -0.02 (mean diag ≈ 1): damping 0.01 and 0.02 leave it <= 0, 0.03 does not */
    for (int i = 0; i < K * K; i++)
        H[i] = i % (K + 1) == 0 ? 1.0f : 0.0f;
    H[5 * K + 5] = -0.02f;
    H[5 * K + 9] = 0.001f;
    rc = tg_gptq(o, &r, wf, H, N, K, DSV4_GPTQ_INT4, 128, 0, DSV4_ACTORDER_STATIC, DSV4_OBSERVER_MINMAX, 0, 0.01, msg);
    CHECK_MSG(rc == 0, "%s", msg);
    if (rc == 0) {
        CHECK(r.a.rtn_fallback == 0);
        CHECK_EQ_INT(r.a.attempts, 3);
        CHECK_MSG(fabs(r.a.damp_used - 0.03) < 1e-12, "damp_used %g", r.a.damp_used);
        CHECK(isfinite(r.a.loss) && r.a.loss > 0);
    }
    tg_free(&r);
    dsv4_ops_release(o);
    free(w);
    free(wf);
    free(H);
    free(rtn);
}

TEST(gptq_group_gidx)
{
    uint16_t *w = malloc(N * K * 2);
    float *wf = malloc(N * K * 4), *H = malloc(K * K * 4), *x = malloc(ROWS * K * 4), *deq = malloc(N * K * 4);
    int64_t perm[K];
    dsv4_ops *o = dsv4_ops_cpu(0);
    tg_weights(N, K, 0.02f, w, wf);
    tg_corr_x(ROWS, K, x);
    REQUIRE(tg_hessian(o, x, ROWS, K, H) == 0);
    /* H = D^½·C·D^½ with C the correlation matrix of X and D from 4 values: diag(H) = D has many
     * ties, which must keep column order */
    float d[K];
    for (int i = 0; i < K; i++)
        d[i] = (float)(1 + th_rand() % 4);
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++)
            if (i != j)
                H[i * K + j] = (float)(H[i * K + j] * sqrt((double)d[i] * d[j] / ((double)H[i * K + i] * H[j * K + j])));
    for (int i = 0; i < K; i++)
        H[i * K + i] = d[i];
    for (int j = 0, n = 0; j < K; j++) { /* the expected order: insertion sort, stable by construction */
        int64_t c = j;
        int at = n++;
        while (at > 0 && H[perm[at - 1] * K + perm[at - 1]] < H[c * K + c]) {
            perm[at] = perm[at - 1];
            at--;
        }
        perm[at] = c;
    }
    static const int groups[] = {32, 128, 16};
    for (int gi = 0; gi < 3; gi++)
        for (int rc = 0; rc < 2; rc++) {
            int g = groups[gi];
            dsv4_gptq_fmt f = g == 16 ? DSV4_GPTQ_NVFP4 : DSV4_GPTQ_INT4;
            tg_run r;
            char msg[TG_MSG];
            int res = tg_gptq(o, &r, wf, H, N, K, f, g, f ? tg_gscale(w, N, K) : 0.0f, DSV4_ACTORDER_GROUP,
                              DSV4_OBSERVER_MINMAX, rc, 0.01, msg);
            CHECK_MSG(res == 0, "%s", msg);
            if (res == 0) {
                int count[K] = {0}, bad = 0;
                for (int j = 0; j < K; j++)
                    bad += r.g_idx[perm[j]] != j / g;
                CHECK_MSG(bad == 0, "group %d: %d g_idx entries are not the stable act order's", g, bad);
                for (int c = 0; c < K; c++)
                    if (r.g_idx[c] >= 0 && r.g_idx[c] < K / g)
                        count[r.g_idx[c]]++;
                for (int q = 0; q < K / g; q++)
                    CHECK_MSG(count[q] == g, "group %d of %d holds %d columns", q, g, count[q]);
                REQUIRE(tg_dequant(&r, deq) == 0);
                bad = 0;
                for (int i = 0; i < N * K; i++)
                    bad += dsv4_f32_bits(deq[i]) != dsv4_f32_bits(r.W[i]) && !(deq[i] == 0 && r.W[i] == 0);
                CHECK_MSG(bad == 0, "group %d: %d values are not q and the scales through g_idx", g, bad);
            }
            tg_free(&r);
        }
    dsv4_ops_release(o);
    free(w);
    free(wf);
    free(H);
    free(x);
    free(deq);
}

/* One refused call: rc -1 with `want` in the message. */
static void refused(dsv4_ops *o, dsv4_gptq_args a, const char *want, int line)
{
    dsv4_err e = {0};
    int rc = o->gptq(o, &a, &e);
    if (rc != -1 || !strstr(e.msg, want))
        th_fail(__FILE__, line, "expected a refusal with \"%s\", got rc %d: %s", want, rc, e.msg);
}

TEST(gptq_bad_args)
{
    enum { n = 4, k = 64 };
    float W[n * k], H[k * k];
    uint8_t q[n * k];
    uint16_t s[n * k / 16];
    int32_t gidx[k];
    for (int i = 0; i < n * k; i++)
        W[i] = th_randf(-1, 1);
    for (int i = 0; i < k * k; i++)
        H[i] = i % (k + 1) == 0 ? 1.0f : 0.0f;
    dsv4_ops *o = dsv4_ops_cpu(0);
    dsv4_gptq_args ok = {.W = W, .H = H, .N = n, .K = k, .fmt = DSV4_GPTQ_INT4, .group = 32, .block = 64,
                         .damp_frac = 0.01, .q = q, .scale = s};
    dsv4_gptq_args a = ok;
#define REFUSE(field, value, want) do { a = ok; a.field = value; refused(o, a, want, __LINE__); } while (0)
    REFUSE(N, 0, "0 < N");
    REFUSE(K, -64, "0 < K");
    REFUSE(W, NULL, "must all be given");
    REFUSE(q, NULL, "must all be given");
    REFUSE(group, 48, "group 48, expected 32, 64 or 128");
    REFUSE(K, 48, "K is not a multiple of the group 32");
    REFUSE(block, 48, "block 48, expected a positive multiple of the group 32");
    REFUSE(block, 0, "block 0");
    REFUSE(damp_frac, -0.1, "dampening fraction");
    REFUSE(damp_frac, NAN, "dampening fraction");
    REFUSE(fmt, (dsv4_gptq_fmt)7, "unknown format 7");
    REFUSE(actorder, (dsv4_actorder)9, "actorder 9");
    REFUSE(observer, (dsv4_observer)3, "observer 3");
    REFUSE(recompute, 2, "recompute 2");
    REFUSE(actorder, DSV4_ACTORDER_GROUP, "needs a g_idx output");
    a = ok;
    a.actorder = DSV4_ACTORDER_STATIC;
    a.recompute = 1;
    refused(o, a, "actorder static has none", __LINE__);
    a = ok;
    a.fmt = DSV4_GPTQ_NVFP4;
    a.gscale = 100.0f;
    a.group = 32;
    refused(o, a, "NVFP4 weight [4, 64]: group 32, expected 16", __LINE__);
    a.group = 16;
    a.block = 64;
    a.gscale = 0.0f;
    refused(o, a, "global scale 0", __LINE__);
    a.gscale = INFINITY;
    refused(o, a, "global scale inf", __LINE__);
    a.gscale = NAN;
    refused(o, a, "global scale nan", __LINE__);
    W[2 * k + 5] = NAN;
    refused(o, ok, "element [2, 5] is not finite", __LINE__);
    W[2 * k + 5] = 0.5f;
    H[3 * k + 40] = INFINITY;
    refused(o, ok, "Hessian [64, 64] of weight [4, 64]: element [3, 40] is not finite", __LINE__);
    H[3 * k + 40] = 0.0f;
    H[40 * k + 3] = NAN; /* the lower triangle is never read */
    a = ok;
    a.actorder = DSV4_ACTORDER_GROUP;
    a.g_idx = gidx;
    dsv4_err e;
    CHECK_MSG(o->gptq(o, &a, &e) == 0, "%s", e.msg);
#undef REFUSE
    dsv4_ops_release(o);
}

TEST(gptq_nvfp4_pack)
{
    /* two rows of 5 codes: even element in the low nibble, the odd tail padded with 0 */
    const uint8_t codes[10] = {0x1, 0x2, 0xF, 0x8, 0x7, 0x0, 0x9, 0x3, 0xA, 0xC};
    const uint8_t want[6] = {0x21, 0x8F, 0x07, 0x90, 0xA3, 0x0C};
    uint8_t p[6];
    memset(p, 0xEE, sizeof p);
    dsv4_nvfp4_pack(codes, 2, 5, p);
    CHECK(!memcmp(p, want, 6));
    uint8_t c16[16], p16[8];
    for (int i = 0; i < 16; i++)
        c16[i] = (uint8_t)(15 - i);
    dsv4_nvfp4_pack(c16, 1, 16, p16);
    for (int i = 0; i < 8; i++)
        CHECK_EQ_INT(p16[i], (15 - 2 * i) | (14 - 2 * i) << 4);
}
