/* The host GPTQ op (kernels/ops.h gptq) through the backend table: with a diagonal Hessian (H = I
 * or distinct diagonal values, any damping) it is round-to-nearest bit for bit (the packed words
 * and scales of quant/pack.h); on correlated activations it beats round-to-nearest in output error
 * for INT4 g128/g64/g32 and NVFP4 under every act order, observer and scale timing, and its loss is
 * GPTQ's identity ½·tr((W−Ŵ)·H_damped·(W−Ŵ)ᵀ). Dead columns, g_idx and the damping retries are
 * test_gptq_cases.c; hess_acc is test_gptq_hess.c. */
#include "harness.h"
#include "formats/fp.h"
#include "formats/fp_round.h"
#include "gptq_math.h"
#include "quant/pack.h"
#include "test_gptq_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *ao_name[] = {"none", "static", "group"};

/* Compares a run's codes and scales with round-to-nearest of the BF16 weights, packed. */
static void same_as_rtn(const tg_run *r, const uint16_t *w, const char *what)
{
    const dsv4_gptq_args *a = &r->a;
    int64_t n = a->N, k = a->K, ng = k / a->group;
    dsv4_err e;
    float *deq = malloc((size_t)(n * k) * sizeof(float));
    REQUIRE(tg_rtn(w, n, k, a->group, a->gscale, deq) == 0);
    int bad_w = 0;
    for (int64_t i = 0; i < n * k; i++)
        bad_w += dsv4_f32_bits(deq[i]) != dsv4_f32_bits(a->W[i]) && !(deq[i] == 0 && a->W[i] == 0);
    CHECK_MSG(bad_w == 0, "%s: %d fake-quantized values differ from RTN's", what, bad_w);
    if (a->fmt == DSV4_GPTQ_INT4) {
        int32_t *p = malloc((size_t)(n * k / 8) * 4), *pr = malloc((size_t)(n * k / 8) * 4);
        uint16_t *sr = malloc((size_t)(n * ng) * 2);
        REQUIRE(dsv4_int4_rtn(w, n, k, a->group, pr, sr, &e) == 0);
        dsv4_int4_pack((const int8_t *)r->q, n, k, p);
        CHECK_MSG(!memcmp(p, pr, (size_t)(n * k / 8) * 4), "%s: packed INT4 words differ from RTN's", what);
        CHECK_MSG(!memcmp(r->scale, sr, (size_t)(n * ng) * 2), "%s: INT4 scales differ from RTN's", what);
        free(p);
        free(pr);
        free(sr);
    } else {
        uint8_t *p = malloc((size_t)(n * k / 2)), *pr = malloc((size_t)(n * k / 2)), *sr = malloc((size_t)(n * ng));
        REQUIRE(dsv4_nvfp4_rtn(w, n, k, a->gscale, pr, sr, &e) == 0);
        dsv4_nvfp4_pack(r->q, n, k, p);
        CHECK_MSG(!memcmp(p, pr, (size_t)(n * k / 2)), "%s: packed NVFP4 bytes differ from RTN's", what);
        CHECK_MSG(!memcmp(r->scale, sr, (size_t)(n * ng)), "%s: NVFP4 scales differ from RTN's", what);
        free(p);
        free(pr);
        free(sr);
    }
    free(deq);
}

TEST(gptq_diagonal_h_is_rtn)
{
    enum { N = 24, K = 256 };
    uint16_t *w = malloc(N * K * 2);
    float *wf = malloc(N * K * 4), *H = malloc(K * K * 4);
    tg_weights(N, K, 0.02f, w, wf);
    for (int i = 0; i < 8; i++) /* some -0.0 and exact zeros */
        w[i * 7] = i % 2 ? 0x8000 : 0, wf[i * 7] = dsv4_bf16_to_f32(w[i * 7]);
    static const double damps[] = {0.0, 0.01, 0.5};
    static const int groups[] = {128, 32, 16};
    const struct { dsv4_actorder ao; int rc; } modes[] = {
        {DSV4_ACTORDER_NONE, 0}, {DSV4_ACTORDER_STATIC, 0}, {DSV4_ACTORDER_NONE, 1}};
    for (int diag = 0; diag < 2; diag++)
        for (int gi = 0; gi < 3; gi++)
            for (int di = 0; di < 3; di++)
                for (int m = 0; m < 3; m++) {
                    /* the lower triangle is poisoned: only the upper one may be read */
                    for (int i = 0; i < K; i++)
                        for (int j = 0; j < K; j++)
                            H[i * K + j] = j < i ? NAN : i != j ? 0.0f : diag ? th_randf(0.5f, 5.0f) : 1.0f;
                    int g = groups[gi];
                    dsv4_gptq_fmt f = g == 16 ? DSV4_GPTQ_NVFP4 : DSV4_GPTQ_INT4;
                    float gs = f == DSV4_GPTQ_NVFP4 ? tg_gscale(w, N, K) : 0.0f;
                    char what[160], msg[TG_MSG];
                    snprintf(what, sizeof what, "%s H, %s g%d damp %g actorder %s recompute %d", diag ? "diagonal" : "identity",
                             f == DSV4_GPTQ_INT4 ? "INT4" : "NVFP4", g, damps[di], ao_name[modes[m].ao], modes[m].rc);
                    dsv4_ops *o = dsv4_ops_cpu(0);
                    tg_run r;
                    int rc = tg_gptq(o, &r, wf, H, N, K, f, g, gs, modes[m].ao, DSV4_OBSERVER_MINMAX, modes[m].rc,
                                     damps[di], msg);
                    CHECK_MSG(rc == 0, "%s: %s", what, msg);
                    if (rc == 0) {
                        same_as_rtn(&r, w, what);
                        CHECK(r.a.attempts == 1 && !r.a.rtn_fallback && r.a.dead == 0 && r.a.damp_used == damps[di]);
                        if (!diag) { /* U = I/sqrt(1+damp): loss = Σ (w-q)²·(1+damp)/2 */
                            double want = 0;
                            for (int i = 0; i < N * K; i++)
                                want += ((double)wf[i] - r.W[i]) * ((double)wf[i] - r.W[i]);
                            want *= (1 + damps[di]) / 2;
                            CHECK_MSG(fabs(r.a.loss - want) <= 1e-5 * want, "%s: loss %g, want %g", what, r.a.loss, want);
                        }
                    }
                    tg_free(&r);
                    dsv4_ops_release(o);
                }
    free(w);
    free(wf);
    free(H);
}

/* ½·tr(D·Hd·Dᵀ), D = W0 − Ŵ, Hd = H + damp·mean(diag H)·I (H full, no dead columns). */
static double loss_identity(const float *W0, const float *Wq, const float *H, int64_t n, int64_t k, double damp)
{
    double mean = 0, tot = 0;
    for (int64_t i = 0; i < k; i++)
        mean += H[i * k + i];
    mean /= (double)k;
    double *dh = malloc((size_t)k * sizeof(double));
    for (int64_t r = 0; r < n; r++) {
        const float *a = W0 + r * k, *b = Wq + r * k;
        for (int64_t j = 0; j < k; j++) {
            double s = 0;
            for (int64_t i = 0; i < k; i++)
                s += ((double)a[i] - b[i]) * (H[i * k + j] + (i == j ? damp * mean : 0.0));
            dh[j] = s;
        }
        for (int64_t j = 0; j < k; j++)
            tot += dh[j] * ((double)a[j] - b[j]);
    }
    free(dh);
    return tot / 2;
}

/* Counts the groups whose stored scale is not the min-max scale of the ORIGINAL weights over the
 * group's columns (contiguous original columns, or the columns g_idx names). */
static int scales_vs_original(const tg_run *r, const float *W0)
{
    const dsv4_gptq_args *a = &r->a;
    int64_t ng = a->K / a->group;
    int moved = 0;
    float *amax = malloc((size_t)ng * sizeof(float));
    for (int64_t i = 0; i < a->N; i++) {
        for (int64_t g = 0; g < ng; g++)
            amax[g] = 0;
        for (int64_t c = 0; c < a->K; c++) {
            int64_t g = a->g_idx ? a->g_idx[c] : c / a->group;
            if (g < 0 || g >= ng) {
                free(amax);
                return -1;
            }
            amax[g] = fmaxf(amax[g], fabsf(W0[i * a->K + c]));
        }
        for (int64_t g = 0; g < ng; g++)
            if (a->fmt == DSV4_GPTQ_INT4)
                moved += ((const uint16_t *)r->scale)[i * ng + g] != dsv4_f32_to_bf16(dsv4_gq_int4_scale(amax[g]));
            else
                moved += ((const uint8_t *)r->scale)[i * ng + g] != dsv4_gq_nvfp4_scale(amax[g], a->gscale);
    }
    free(amax);
    return moved;
}

TEST(gptq_beats_rtn_on_correlated_x)
{
    enum { N = 64, K = 256, ROWS = 1024 };
    uint16_t *w = malloc(N * K * 2);
    float *wf = malloc(N * K * 4), *x = malloc(ROWS * K * 4), *H = malloc(K * K * 4);
    float *rtn = malloc(N * K * 4), *deq = malloc(N * K * 4);
    dsv4_ops *o = dsv4_ops_cpu(0);
    tg_weights(N, K, 0.02f, w, wf);
    tg_corr_x(ROWS, K, x);
    REQUIRE(tg_hessian(o, x, ROWS, K, H) == 0);
    static const int groups[] = {128, 64, 32, 16};
    const struct { dsv4_actorder ao; int rc; } modes[] = {{DSV4_ACTORDER_NONE, 0}, {DSV4_ACTORDER_STATIC, 0},
        {DSV4_ACTORDER_GROUP, 0}, {DSV4_ACTORDER_NONE, 1}, {DSV4_ACTORDER_GROUP, 1}};
    double worst = 0;
    for (int gi = 0; gi < 4; gi++) {
        int g = groups[gi];
        dsv4_gptq_fmt f = g == 16 ? DSV4_GPTQ_NVFP4 : DSV4_GPTQ_INT4;
        float gs = f == DSV4_GPTQ_NVFP4 ? tg_gscale(w, N, K) : 0.0f;
        REQUIRE(tg_rtn(w, N, K, g, gs, rtn) == 0);
        double e_rtn = tg_out_err(wf, rtn, x, N, K, ROWS);
        printf("  %-5s g%-3d RTN ‖(W−Ŵ)Xᵀ‖ %.4f; GPTQ/RTN:", f == DSV4_GPTQ_INT4 ? "INT4" : "NVFP4", g, e_rtn);
        for (int ob = 0; ob < 2; ob++)
            for (int m = 0; m < 5; m++) {
                tg_run r;
                char msg[TG_MSG], what[128];
                snprintf(what, sizeof what, "%s g%d %s %s recompute %d", f == DSV4_GPTQ_INT4 ? "INT4" : "NVFP4", g,
                         ao_name[modes[m].ao], ob ? "mse" : "minmax", modes[m].rc);
                int rc = tg_gptq(o, &r, wf, H, N, K, f, g, gs, modes[m].ao, (dsv4_observer)ob, modes[m].rc, 0.01, msg);
                CHECK_MSG(rc == 0, "%s: %s", what, msg);
                if (rc) {
                    tg_free(&r);
                    continue;
                }
                double ratio = tg_out_err(wf, r.W, x, N, K, ROWS) / e_rtn;
                printf(" %s%s%s %.3f", ao_name[modes[m].ao], modes[m].rc ? "+rc" : "", ob ? "/mse" : "", ratio);
                worst = ratio > worst ? ratio : worst;
                CHECK_MSG(ratio < 0.9, "%s: GPTQ/RTN output error %.3f", what, ratio);
                CHECK_MSG(tg_dequant(&r, deq) == 0, "%s: g_idx names a group that does not exist", what);
                int bad = 0;
                for (int i = 0; i < N * K; i++)
                    bad += dsv4_f32_bits(deq[i]) != dsv4_f32_bits(r.W[i]) && !(deq[i] == 0 && r.W[i] == 0);
                CHECK_MSG(bad == 0, "%s: %d returned values are not the dequantized q and scales", what, bad);
                /* fp32 column loop against an fp64 trace: agreement to 1e-3 relative is ample */
                double li = loss_identity(wf, r.W, H, N, K, r.a.damp_used);
                CHECK_MSG(fabs(r.a.loss - li) <= 1e-3 * li, "%s: loss %g, ½tr(DHDᵀ) %g", what, r.a.loss, li);
                CHECK(r.a.attempts == 1 && !r.a.rtn_fallback && r.a.dead == 0);
                int moved = scales_vs_original(&r, wf);
                if (modes[m].rc)
                    CHECK_MSG(moved > 0, "%s: no group scale moved from the original weights' (recompute ignored?)", what);
                else if (ob == DSV4_OBSERVER_MINMAX)
                    CHECK_MSG(moved == 0, "%s: %d group scales are not the original weights' amax scales", what, moved);
                tg_free(&r);
            }
        printf("\n");
    }
    printf("  worst GPTQ/RTN ratio %.3f\n", worst);
    dsv4_ops_release(o);
    free(w);
    free(wf);
    free(x);
    free(H);
    free(rtn);
    free(deq);
}
