/* GPTQ of the attention projections and the shared expert (issue 6: "... and any targeted attention
 * linear"), checked against the activations that actually reach them. The calibration
 * (libquant/gptq/calib.h) quantizes layer 1's wq_a, wkv, wq_b, indexer.wq_b, wo_a (one Hessian per
 * output group), wo_b and shared w1/w2/w3 to W4A16 by GPTQ on 4 calibration rows; an independent
 * walk of the source model over the same rows records each module's inputs with a tap (the sites
 * as runner.h documents them, not as the calibration maps them). For every module:
 *  - the mean squared output error (1/n) Σ_t ‖(W − Ŵ) x_t‖² of the GPTQ weights is below that of
 *    round-to-nearest (the plan's RTN job);
 *  - the report's loss equals that error plus GPTQ's damping term ½ λ ‖W − Ŵ‖² (λ = damp ·
 *    mean diag H, H = 2/n Σ x xᵀ): GPTQ's loss Σ e² / 2 is exactly ½ tr(ΔW (H + λI) ΔWᵀ), so the
 *    match ties each module, and each wo_a row group, to the Hessian of its own input.
 * The calibration runs on the CPU, and again on the GPU where there is one (the _cuda test). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact/convert.h"
#include "artifact/convert_job.h"
#include "eval/data.h"
#include "formats/fp.h"
#include "gptq/calib.h"
#include "gpu.h"
#include "harness.h"
#include "quant/pack.h"
#include "runner/runner.h"
#include "test_plan_util.h"

#define TINY "fixtures/dsv4-tiny"
#define LAYER 1 /* CSA: has the indexer's wq_b */
#define SAMPLES 4
#define SEQ 64

static const char *const RECIPE =
    "groups:\n"
    "  - name: attention\n"
    "    scheme: W4A16\n"
    "    method: gptq\n"
    "    group_size: 128\n"
    "    targets: ['re:layers\\.1\\.attn\\.(wq_a|wq_b|wkv|wo_a|wo_b)$', 're:layers\\.1\\.attn\\.indexer\\.wq_b$',\n"
    "              're:layers\\.1\\.ffn\\.shared_experts\\.(w1|w2|w3)$']\n"
    "  - name: rest\n"
    "    scheme: FP8_BLOCK\n"
    "    targets: ['re:layers\\.\\d+\\.attn\\.(wq_a|wq_b|wkv|wo_a|wo_b|indexer\\.wq_b)$',\n"
    "              're:layers\\.\\d+\\.ffn\\.shared_experts\\.(w1|w2|w3)$']\n"
    "  - name: experts\n"
    "    scheme: W4A16\n"
    "    targets: ['re:layers\\.\\d+\\.ffn\\.experts\\.\\d+\\.(w1|w2|w3)$']\n";

/* Every row a site received, over all samples (host). */
typedef struct site_rows {
    float *x;
    int64_t rows, cols;
} site_rows;

typedef struct rec {
    dsv4_ops *o;
    site_rows s[DSV4_TAP_COUNT];
} rec;

static int rec_fn(void *ud, int layer, dsv4_tap_site site, int expert, const float *x, int64_t rows, int64_t cols,
                  dsv4_err *e)
{
    rec *r = ud;
    site_rows *s = &r->s[site];
    (void)layer;
    (void)expert;
    if (s->rows && s->cols != cols)
        return dsv4_fail(e, "site %d: %lld then %lld columns", (int)site, (long long)s->cols, (long long)cols);
    float *t = realloc(s->x, (size_t)((s->rows + rows) * cols) * sizeof(float));
    if (!t)
        return dsv4_fail_rt(e, "out of memory");
    s->x = t;
    s->cols = cols;
    if (r->o->download(r->o, s->x + s->rows * cols, x, (size_t)(rows * cols) * sizeof(float), e))
        return -1;
    s->rows += rows;
    return 0;
}

/* The tap site a module reads and its row groups, from the module name (runner.h's site list). */
static int site_of(const dsv4_config *c, const char *stem, int *groups)
{
    static const struct { const char *sfx; int site; } map[] = {
        {".attn.wq_a", DSV4_TAP_ATTN_IN}, {".attn.wkv", DSV4_TAP_ATTN_IN},
        {".attn.indexer.wq_b", DSV4_TAP_Q_LORA}, {".attn.wq_b", DSV4_TAP_Q_LORA},
        {".attn.wo_a", DSV4_TAP_WO_A}, {".attn.wo_b", DSV4_TAP_WO_B},
        {".shared_experts.w1", DSV4_TAP_FFN_IN}, {".shared_experts.w3", DSV4_TAP_FFN_IN},
        {".shared_experts.w2", DSV4_TAP_SHARED_W2},
    };
    size_t n = strlen(stem);
    for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
        size_t m = strlen(map[i].sfx);
        if (n > m && !strcmp(stem + n - m, map[i].sfx)) {
            *groups = map[i].site == DSV4_TAP_WO_A ? (int)c->o_groups : 1;
            return map[i].site;
        }
    }
    return -1;
}

/* Row group g of dW [N, K] against its inputs: group g reads rows t·G + g of X [n·G, K].
 * err = (1/n) Σ_t ‖dW_g x_t‖², frob = ‖dW_g‖², mdiag = mean diag of 2/n Σ x xᵀ. */
static void group_err(const float *dW, int64_t N, int64_t K, int G, int g, const site_rows *X, double *err,
                      double *frob, double *mdiag)
{
    int64_t R = N / G, n = X->rows / G;
    const float *D = dW + (int64_t)g * R * K;
    double se = 0, sx = 0, sf = 0;
    for (int64_t t = 0; t < n; t++) {
        const float *x = X->x + (t * G + g) * K;
        for (int64_t k = 0; k < K; k++)
            sx += (double)x[k] * x[k];
        for (int64_t r = 0; r < R; r++) {
            double y = 0;
            for (int64_t k = 0; k < K; k++)
                y += (double)D[r * K + k] * x[k];
            se += y * y;
        }
    }
    for (int64_t i = 0; i < R * K; i++)
        sf += (double)D[i] * D[i];
    *err = se / (double)n;
    *frob = sf;
    *mdiag = 2.0 * sx / (double)n / (double)K;
}

/* INT4 outputs (packed, scale) -> float values as the artifact stores them. */
static int int4_values(const uint8_t *packed, const uint8_t *scale, int64_t N, int64_t K, float *out, dsv4_err *e)
{
    uint16_t *bf = malloc((size_t)(N * K) * 2);
    if (!bf)
        return dsv4_fail_rt(e, "out of memory");
    int rc = dsv4_int4_dequant((const int32_t *)packed, (const uint16_t *)scale, N, K, 128, bf, e);
    for (int64_t i = 0; rc == 0 && i < N * K; i++)
        out[i] = dsv4_bf16_to_f32(bf[i]);
    free(bf);
    return rc;
}

static const json_t *report_module(const json_t *calib, const char *stem)
{
    const json_t *layers = json_object_get(calib, "layers"), *l, *m;
    size_t i, k;
    json_array_foreach(layers, i, l) json_array_foreach(json_object_get(l, "modules"), k, m)
        if (!strcmp(json_string_value(json_object_get(m, "name")), stem))
            return m;
    return NULL;
}

/* The source model's layers 0..LAYER over the calibration rows, LAYER tapped. */
static int walk(const char *src, const dsv4_eval_data *d, rec *r, dsv4_err *e)
{
    dsv4_ops *o = dsv4_ops_by_name("cpu", 2, e);
    if (!o)
        return -1;
    dsv4_model m;
    if (dsv4_model_open(src, o, 0, &m, e)) {
        dsv4_ops_release(o);
        return -1;
    }
    r->o = o;
    int64_t T = d->len + 1, W = m.cfg.hc_mult * m.cfg.hidden_size, pos[SEQ];
    dsv4_layer_w w[LAYER + 1];
    memset(w, 0, sizeof w);
    float *X = o->alloc(o, (size_t)(T * W) * sizeof(float), e);
    int rc = X ? 0 : -1;
    for (int64_t t = 0; t < T; t++)
        pos[t] = t;
    for (int l = 0; l <= LAYER && rc == 0; l++)
        rc = dsv4_layer_w_load(m.src, l, o, &w[l], e);
    dsv4_taps taps = {.ud = r, .fn = rec_fn,
                      .sites = DSV4_TAP_BIT(DSV4_TAP_ATTN_IN) | DSV4_TAP_BIT(DSV4_TAP_Q_LORA) |
                               DSV4_TAP_BIT(DSV4_TAP_WO_A) | DSV4_TAP_BIT(DSV4_TAP_WO_B) |
                               DSV4_TAP_BIT(DSV4_TAP_FFN_IN) | DSV4_TAP_BIT(DSV4_TAP_SHARED_W2)};
    for (int64_t s = 0; s < d->rows && rc == 0; s++) {
        const int32_t *ids = dsv4_data_row(d, s);
        rc = dsv4_embed_streams(&m, ids, T, X, e);
        for (int l = 0; l <= LAYER && rc == 0; l++)
            rc = dsv4_layer_forward(&m, &w[l], NULL, X, ids, pos, T, l == LAYER ? &taps : NULL, e);
    }
    for (int l = 0; l <= LAYER; l++)
        dsv4_layer_w_free(o, &w[l]);
    if (X)
        o->free(o, X);
    dsv4_model_close(&m);
    dsv4_ops_release(o);
    r->o = NULL;
    return rc;
}

/* The whole check with the calibration on `device`; the reference walk runs on the CPU. tol: the
 * loss identity's relative tolerance (the CPU calibration sees exactly the walk's inputs). */
static void check_attention(const char *device, double tol)
{
    char src[1024], data[1024], work[1200];
    snprintf(src, sizeof src, "%s", th_path(TINY));
    snprintf(data, sizeof data, "%s", th_path(TINY "/calib.tokens.safetensors"));
    snprintf(work, sizeof work, "%s/work", th_tmpdir());
    tp_fixture f;
    REQUIRE(tp_open(&f) == 0);
    dsv4_err e;
    dsv4_recipe r;
    dsv4_plan p;
    REQUIRE(tp_recipe(RECIPE, &r, &e) == 0);
    int planned = dsv4_plan_build(&f.ck, &f.cfg, f.source_config, &r, &p, &e) == 0;
    CHECK_MSG(planned, "%s", e.msg);
    dsv4_gptq_store *store = NULL;
    dsv4_calib_opts co = {.device = device, .threads = 2, .data = data, .samples = SAMPLES, .seq_len = SEQ,
                          .work_dir = work};
    int ran = planned && dsv4_calib_run(src, &p, &r, &co, &store, &e) == 0;
    CHECK_MSG(!planned || ran, "%s", e.msg);
    dsv4_eval_data d = {0};
    dsv4_data_opts dopt = {.max_rows = SAMPLES, .max_len = SEQ - 1, .vocab = f.cfg.vocab_size};
    rec rc = {0};
    int walked = ran && dsv4_data_load(data, &dopt, &d, &e) == 0 && walk(src, &d, &rc, &e) == 0;
    CHECK_MSG(!ran || walked, "%s", e.msg);
    int seen[DSV4_TAP_COUNT] = {0}, modules = 0;
    for (size_t i = 0; walked && i < p.n; i++) {
        const dsv4_plan_job *j = &p.jobs[i];
        if (j->group < 0 || strcmp(r.groups[j->group].name, "attention"))
            continue;
        char stem[160];
        snprintf(stem, sizeof stem, "%.*s", (int)(strrchr(j->out[0].name, '.') - j->out[0].name), j->out[0].name);
        int G = 1, site = site_of(&f.cfg, stem, &G);
        CHECK_MSG(site >= 0, "%s: not an attention or shared-expert module", stem);
        if (site < 0)
            continue;
        const site_rows *X = &rc.s[site];
        int64_t N = j->rows, K = j->cols;
        CHECK_MSG(X->rows == (int64_t)SAMPLES * SEQ * G && X->cols == K,
                  "%s: site %d recorded [%lld, %lld], expected [%lld, %lld]", stem, site, (long long)X->rows,
                  (long long)X->cols, (long long)SAMPLES * SEQ * G, (long long)K);
        if (X->rows != (int64_t)SAMPLES * SEQ * G || X->cols != K)
            continue;
        const json_t *m = report_module(dsv4_gptq_store_report(store), stem);
        CHECK_MSG(m && !strcmp(json_string_value(json_object_get(m, "how")), "gptq"), "%s: not reported as gptq", stem);
        if (!m)
            continue;
        /* the source weight as GPTQ read it, the GPTQ result from the store, RTN by the plan's job */
        uint16_t *bf = malloc((size_t)(N * K) * 2);
        float *Wsrc = malloc((size_t)(N * K) * sizeof(float)), *Wg = malloc((size_t)(N * K) * sizeof(float));
        float *Wr = malloc((size_t)(N * K) * sizeof(float));
        uint8_t *out[3] = {0};
        for (int k = 0; k < j->n_out; k++)
            out[k] = malloc(dsv4_plan_out_bytes(&j->out[k]) + 1);
        REQUIRE(bf && Wsrc && Wg && Wr && out[0] && out[1] && out[2]);
        char pk[200], sc[200];
        snprintf(pk, sizeof pk, "%s.weight_packed", stem);
        snprintf(sc, sizeof sc, "%s.weight_scale", stem);
        uint64_t npk = 0, nsc = 0;
        const uint8_t *gp = dsv4_gptq_store_get(store, pk, &npk), *gs = dsv4_gptq_store_get(store, sc, &nsc);
        dsv4_job_report jr;
        int ok = gp && gs && dsv4_source_bf16(j->src[0], j->src[1], bf, &e) == 0 &&
                 int4_values(gp, gs, N, K, Wg, &e) == 0 &&
                 dsv4_job_run(j, dsv4_job_group(j, &r), out, &jr, &e) == 0 &&
                 int4_values(out[0], out[1], N, K, Wr, &e) == 0;
        CHECK_MSG(ok, "%s: %s", stem, gp && gs ? e.msg : "the store lacks its tensors");
        double eg = 0, er = 0, want = 0, damp = json_real_value(json_object_get(m, "damp"));
        for (int64_t x = 0; ok && x < N * K; x++) {
            Wsrc[x] = dsv4_bf16_to_f32(bf[x]);
            Wg[x] = Wsrc[x] - Wg[x];
            Wr[x] = Wsrc[x] - Wr[x];
        }
        for (int g = 0; ok && g < G; g++) {
            double err, frob, md, rerr, rfrob;
            group_err(Wg, N, K, G, g, X, &err, &frob, &md);
            group_err(Wr, N, K, G, g, X, &rerr, &rfrob, &md);
            eg += err;
            er += rerr;
            want += err + 0.5 * damp * md * frob;
        }
        double loss = json_real_value(json_object_get(m, "loss"));
        if (ok) {
            modules++;
            CHECK_MSG(eg < er, "%s: GPTQ output error %.6g is not below round-to-nearest's %.6g", stem, eg, er);
            CHECK_MSG(fabs(loss - want) <= tol * want,
                      "%s: reported loss %.8g, but its inputs give %.8g (output error %.8g + damping term): the "
                      "module's Hessian is not its input's", stem, loss, want, eg);
            CHECK_MSG(json_integer_value(json_object_get(m, "attempts")) == G, "%s: %lld factorizations for %d groups",
                      stem, (long long)json_integer_value(json_object_get(m, "attempts")), G);
            seen[site]++;
            printf("unit: %s %s: output error GPTQ %.5g, RTN %.5g (%.0f %%); loss %.6g vs %.6g from the inputs\n",
                   device, stem, eg, er, 100 * eg / er, loss, want);
        }
        free(bf);
        free(Wsrc);
        free(Wg);
        free(Wr);
        for (int k = 0; k < 3; k++)
            free(out[k]);
    }
    /* wq_a, wkv, wq_b, indexer.wq_b, wo_a, wo_b, shared w1, w3, w2 */
    CHECK_MSG(!walked || modules == 9, "%d modules checked, expected 9", modules);
    CHECK(!walked || (seen[DSV4_TAP_ATTN_IN] == 2 && seen[DSV4_TAP_Q_LORA] == 2 && seen[DSV4_TAP_WO_A] == 1 &&
                      seen[DSV4_TAP_WO_B] == 1 && seen[DSV4_TAP_FFN_IN] == 2 && seen[DSV4_TAP_SHARED_W2] == 1));
    for (int s = 0; s < DSV4_TAP_COUNT; s++)
        free(rc.s[s].x);
    dsv4_data_free(&d);
    dsv4_gptq_store_close(store);
    if (planned)
        dsv4_plan_free(&p);
    dsv4_recipe_free(&r);
    tp_close(&f);
}

TEST(gptq_attention_output_error_below_rtn)
{
    check_attention("cpu", 1e-3);
}

/* The same with the calibration on the GPU (taps, Hessians, GPTQ on CUDA): its activations differ
 * from the CPU walk's in the last bits (fp32 GEMMs in another order), which moves the identity by
 * far less than 1 %; a wrong Hessian moves it by multiples. */
TEST(gptq_attention_output_error_below_rtn_cuda)
{
    if (dsv4_gpu_count() == 0) {
        printf("SKIP gptq_attention_output_error_below_rtn_cuda: no CUDA GPU (dsv4_gpu_count() == 0)\n");
        return;
    }
    check_attention("cuda", 1e-2);
}
