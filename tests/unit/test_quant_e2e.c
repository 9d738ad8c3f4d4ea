/* dsv4-quant end to end on fixtures/dsv4-tiny, one test per recipe. The expected artifact
 * inventory is derived here from the release inventory with the rules of the issue (not from
 * the planner), then every tensor is checked: names, dtypes and shapes exactly; FP32 set, MTP
 * and every unquantized tensor bit-equal to the source (MTP FP8/FP4 weights to their exact BF16
 * dequantization); FP8 pass-through bytes and exact scales; INT4 / NVFP4 / FP8 values against
 * the source; the MTP aliases; config.json; byte reproducibility across thread counts. */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "artifact/convert.h"
#include "formats/dequant.h"
#include "formats/fp.h"
#include "model/inventory.h"
#include "quant/pack.h"

typedef struct want {
    char name[256];
    dsv4_dtype dtype;
    int ndim;
    int64_t shape[2];
    const dsv4_inv_tensor *from; /* the release tensor it comes from */
    const char *kind;            /* "copy", "bf16", "fp8", "fp8_scale", "packed", "scale", "shape", "global" */
} want;

typedef struct fixture {
    dsv4_ckpt src;
    dsv4_config cfg;
    dsv4_inventory inv;
    json_t *raw;
} fixture;

static int fixture_open(fixture *f)
{
    dsv4_err e;
    json_error_t je;
    if (dsv4_ckpt_open(th_path("fixtures/dsv4-tiny"), 0, &f->src, &e) ||
        dsv4_config_load(th_path("fixtures/dsv4-tiny/config.json"), &f->cfg, &e) ||
        dsv4_inventory_build(&f->cfg, &f->inv, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        return -1;
    }
    f->raw = json_load_file(th_path("fixtures/dsv4-tiny/config.json"), 0, &je);
    return 0;
}

static void fixture_close(fixture *f)
{
    json_decref(f->raw);
    dsv4_inventory_free(&f->inv);
    dsv4_ckpt_close(&f->src);
}

static void add(want *w, size_t *n, const dsv4_inv_tensor *t, const char *suffix, dsv4_dtype dt, int ndim,
                int64_t a, int64_t b, const char *kind)
{
    want *x = &w[(*n)++];
    size_t len = strlen(t->name);
    if (suffix && len > 7 && !strcmp(t->name + len - 7, ".weight"))
        snprintf(x->name, sizeof x->name, "%.*s.%s", (int)(len - 7), t->name, suffix);
    else
        snprintf(x->name, sizeof x->name, "%s", t->name);
    x->dtype = dt;
    x->ndim = ndim;
    x->shape[0] = a;
    x->shape[1] = b;
    x->from = t;
    x->kind = kind;
}

/* The artifact's tensors under a recipe: scheme of the routed experts ("int4", "nvfp4", "fp8",
 * "bf16"); whether the release's FP8 linears stay FP8 (ct recipes) or become BF16 (bf16); MTP
 * quantized storage to BF16 unless mtp_keep. */
static size_t expected(const fixture *f, const char *experts, int fp8_linears, int mtp_keep, int aliases,
                       want *w)
{
    size_t n = 0;
    for (size_t i = 0; i < f->inv.n; i++) {
        const dsv4_inv_tensor *t = &f->inv.t[i];
        if (t->role == DSV4_ROLE_SCALE)
            continue;
        int quantized = t->store == DSV4_STORE_FP8_BLOCK || t->store == DSV4_STORE_FP4_PACKED;
        int64_t rows = t->shape[0], cols = t->store == DSV4_STORE_FP4_PACKED ? 2 * t->shape[1] : t->shape[1];
        if (!quantized) {
            add(w, &n, t, NULL, t->dtype, t->ndim, t->shape[0], t->shape[1], "copy");
        } else if (t->is_mtp && !mtp_keep) {
            add(w, &n, t, NULL, DSV4_BF16, 2, rows, cols, "bf16");
        } else if (t->store == DSV4_STORE_FP4_PACKED && !strcmp(experts, "int4")) {
            add(w, &n, t, "weight_packed", DSV4_I32, 2, rows, cols / 8, "packed");
            add(w, &n, t, "weight_scale", DSV4_BF16, 2, rows, cols / 128, "scale");
            add(w, &n, t, "weight_shape", DSV4_I64, 1, 2, 0, "shape");
        } else if (t->store == DSV4_STORE_FP4_PACKED && !strcmp(experts, "nvfp4")) {
            add(w, &n, t, "weight_packed", DSV4_U8, 2, rows, cols / 2, "packed");
            add(w, &n, t, "weight_scale", DSV4_F8_E4M3, 2, rows, cols / 16, "scale");
            add(w, &n, t, "weight_global_scale", DSV4_F32, 0, 0, 0, "global");
        } else if ((t->store == DSV4_STORE_FP4_PACKED && !strcmp(experts, "fp8")) ||
                   (t->store == DSV4_STORE_FP8_BLOCK && fp8_linears)) {
            add(w, &n, t, NULL, DSV4_F8_E4M3, 2, rows, cols, "fp8");
            add(w, &n, t, "weight_scale", DSV4_BF16, 2, (rows + 127) / 128, (cols + 127) / 128, "fp8_scale");
        } else {
            add(w, &n, t, NULL, DSV4_BF16, 2, rows, cols, "bf16");
        }
    }
    if (aliases) {
        const dsv4_inv_tensor *h = dsv4_inventory_find(&f->inv, "head.weight"),
                              *em = dsv4_inventory_find(&f->inv, "embed.weight");
        add(w, &n, h, NULL, h->dtype, 2, h->shape[0], h->shape[1], "copy");
        snprintf(w[n - 1].name, sizeof w[0].name, "mtp.0.head.weight");
        add(w, &n, em, NULL, em->dtype, 2, em->shape[0], em->shape[1], "copy");
        snprintf(w[n - 1].name, sizeof w[0].name, "mtp.0.emb.tok_emb.weight");
    }
    return n;
}

static const dsv4_tensor *scale_of(const dsv4_ckpt *c, const char *weight)
{
    char s[300];
    snprintf(s, sizeof s, "%.*s.scale", (int)(strlen(weight) - 7), weight);
    return dsv4_ckpt_find(c, s);
}

/* The release weight as float (exact). */
static float *source_f32(const dsv4_ckpt *c, const dsv4_inv_tensor *t)
{
    const dsv4_tensor *w = dsv4_ckpt_find(c, t->name), *s = scale_of(c, t->name);
    dsv4_qweight q = {w->name, w->data, s->data, w->shape[0], w->shape[1], s->shape[0], s->shape[1]};
    int64_t n = w->shape[0] * w->shape[1] * (t->store == DSV4_STORE_FP4_PACKED ? 2 : 1);
    float *out = malloc((size_t)n * sizeof(float));
    dsv4_err e;
    int rc = t->store == DSV4_STORE_FP4_PACKED ? dsv4_fp4_dequant_f32(&q, out, &e) : dsv4_fp8_block_dequant_f32(&q, out, &e);
    if (rc) {
        free(out);
        return NULL;
    }
    return out;
}

static const dsv4_tensor *sibling(const dsv4_ckpt *a, const char *weight, const char *suffix)
{
    char s[300];
    snprintf(s, sizeof s, "%.*s.%s", (int)(strlen(weight) - 7), weight, suffix);
    return dsv4_ckpt_find(a, s);
}

/* Checks values of one artifact tensor against its source. */
static void check_values(const fixture *f, const dsv4_ckpt *a, const want *x, const dsv4_tensor *t)
{
    const dsv4_tensor *s = dsv4_ckpt_find(&f->src, x->from->name);
    if (!strcmp(x->kind, "copy")) {
        CHECK_MSG(memcmp(t->data, s->data, dsv4_tensor_nbytes(s)) == 0, "%s differs from %s", x->name, s->name);
        return;
    }
    if (!strcmp(x->kind, "shape")) {
        int64_t sh[2];
        memcpy(sh, t->data, 16);
        CHECK_MSG(sh[0] == x->from->shape[0] && sh[1] == 2 * x->from->shape[1], "%s = [%lld, %lld]", x->name,
                  (long long)sh[0], (long long)sh[1]);
        return;
    }
    if (strcmp(x->kind, "bf16") && strcmp(x->kind, "fp8") && strcmp(x->kind, "packed"))
        return; /* scales are checked with their weights */
    int64_t rows = x->from->shape[0];
    int64_t cols = x->from->store == DSV4_STORE_FP4_PACKED ? 2 * x->from->shape[1] : x->from->shape[1];
    size_t n = (size_t)(rows * cols);
    float *src = source_f32(&f->src, x->from), *got = malloc(n * sizeof(float));
    dsv4_err e;
    REQUIRE(src && got);
    double tol_scale = 0; /* INT4: half a step */
    if (!strcmp(x->kind, "bf16")) {
        for (size_t i = 0; i < n; i++)
            got[i] = dsv4_bf16_to_f32(((const uint16_t *)t->data)[i]);
    } else if (!strcmp(x->kind, "fp8")) {
        const dsv4_tensor *sc = sibling(a, x->from->name, "weight_scale");
        CHECK(sc && dsv4_fp8_block_dequant_ct(t->data, (const uint16_t *)sc->data, rows, cols, got, &e) == 0);
        if (x->from->store == DSV4_STORE_FP8_BLOCK)
            CHECK_MSG(memcmp(t->data, s->data, n) == 0, "%s: FP8 bytes not passed through", x->name);
    } else if (t->dtype == DSV4_I32) {
        const dsv4_tensor *sc = sibling(a, x->from->name, "weight_scale");
        uint16_t *b = malloc(n * 2);
        CHECK(sc && dsv4_int4_dequant((const int32_t *)t->data, (const uint16_t *)sc->data, rows, cols, 128, b, &e) == 0);
        for (size_t i = 0; i < n; i++)
            got[i] = dsv4_bf16_to_f32(b[i]);
        free(b);
        /* RTN error bound, in units of the group's stored scale s = bf16(amax/7.5): the +amax end
         * clamps to 7, up to 7.5·(1 + 2^-8) - 7 = 0.529 s away when s was rounded down; rounding
         * x/s to BF16 (|x/s| < 8: half an ulp is 2^-6) moves a value near a half step by at most
         * 0.016 s; the dequantized q·s is rounded to BF16 (≤ 8 s · 2^-9 = 0.016 s). */
        tol_scale = 0.529 + 0.016 + 0.016;
    } else {
        const dsv4_tensor *sc = sibling(a, x->from->name, "weight_scale"), *gs = sibling(a, x->from->name, "weight_global_scale");
        float g;
        memcpy(&g, gs->data, 4);
        CHECK(dsv4_nvfp4_dequant(t->data, sc->data, g, rows, cols, got, &e) == 0);
    }
    int64_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double tol = 0;
        if (tol_scale > 0) {
            const dsv4_tensor *sc = sibling(a, x->from->name, "weight_scale");
            tol = tol_scale * dsv4_bf16_to_f32(((const uint16_t *)sc->data)[(i / (size_t)cols) * (size_t)(cols / 128) +
                                                                             (i % (size_t)cols) / 128]);
        }
        if (!(fabs((double)got[i] - (double)src[i]) <= tol))
            bad++;
    }
    CHECK_MSG(bad == 0, "%s: %lld of %zu values off the source (tolerance %s)", x->name, (long long)bad, n,
              tol_scale > 0 ? "the INT4 RTN bound" : "exact");
    free(src);
    free(got);
}

/* Converts the fixture with `recipe` into a fresh folder and checks everything. Returns the folder. */
static const char *run_recipe(const char *recipe, const char *experts, int fp8_linears, int ct, int threads)
{
    static char out[4096];
    fixture f;
    if (fixture_open(&f))
        return NULL;
    dsv4_recipe r;
    dsv4_plan p;
    dsv4_err e;
    if (dsv4_recipe_load(th_path(recipe), &r, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        fixture_close(&f);
        return NULL;
    }
    snprintf(out, sizeof out, "%s/artifact", th_tmpdir());
    dsv4_convert_opts o = {.threads = threads};
    dsv4_convert_stats st;
    int ok = dsv4_plan_build(&f.src, &f.cfg, f.raw, &r, &p, &e) == 0;
    CHECK_MSG(ok, "%s", e.msg);
    if (ok) {
        ok = dsv4_convert_run(&f.src, &p, &r, out, &o, &st, &e) == 0;
        CHECK_MSG(ok, "%s", e.msg);
        if (ok) {
            CHECK_MSG(json_array_size(st.inexact) == 0, "%zu conversions were not exact", json_array_size(st.inexact));
            dsv4_convert_stats_free(&st);
        }
        dsv4_plan_free(&p);
    }
    dsv4_ckpt a;
    if (ok && dsv4_ckpt_open(out, 0, &a, &e) == 0) {
        want *w = calloc(f.inv.n + 8, 3 * sizeof *w);
        size_t n = expected(&f, experts, fp8_linears, r.mtp == DSV4_MTP_KEEP, r.mtp_aliases, w);
        CHECK_EQ_INT(a.n, n);
        for (size_t i = 0; i < n; i++) {
            const dsv4_tensor *t = dsv4_ckpt_find(&a, w[i].name);
            CHECK_MSG(t != NULL, "%s: missing from the artifact", w[i].name);
            if (!t)
                continue;
            int shape_ok = t->ndim == w[i].ndim && (t->ndim < 1 || t->shape[0] == w[i].shape[0]) &&
                           (t->ndim < 2 || t->shape[1] == w[i].shape[1]);
            CHECK_MSG(t->dtype == w[i].dtype && shape_ok, "%s: %s ndim %d, expected %s ndim %d [%lld, %lld]", w[i].name,
                      dsv4_dtype_name(t->dtype), t->ndim, dsv4_dtype_name(w[i].dtype), w[i].ndim,
                      (long long)w[i].shape[0], (long long)w[i].shape[1]);
            if (t->dtype == w[i].dtype && shape_ok)
                check_values(&f, &a, &w[i], t);
            if (!strncmp(w[i].name, "mtp.", 4))
                CHECK_MSG((!strstr(w[i].name, "weight_packed") && !strstr(w[i].name, "weight_scale")) ||
                              r.mtp == DSV4_MTP_KEEP,
                          "%s: quantized tensor under mtp.", w[i].name);
        }
        free(w);
        json_error_t je;
        char cp[4200];
        snprintf(cp, sizeof cp, "%s/config.json", out);
        json_t *cfg = json_load_file(cp, 0, &je);
        CHECK_MSG(cfg != NULL, "%s: %s", cp, je.text);
        json_t *qc = json_object_get(cfg, "quantization_config");
        if (ct) {
            CHECK(!strcmp(json_string_value(json_object_get(qc, "quant_method")), "compressed-tensors"));
            CHECK(!strcmp(json_string_value(json_object_get(qc, "scale_fmt")), "ue8m0"));
            CHECK(json_object_size(json_object_get(qc, "config_groups")) >= 1);
        }
        CHECK_EQ_INT(json_array_size(json_object_get(cfg, "compress_ratios")), 5);
        CHECK_EQ_INT(json_integer_value(json_object_get(cfg, "num_hash_layers")), 2);
        CHECK_EQ_INT(json_integer_value(json_object_get(cfg, "num_hidden_layers")), 4);
        CHECK_EQ_INT(json_integer_value(json_object_get(cfg, "qk_rope_head_dim")), 64);
        CHECK(json_is_false(json_object_get(cfg, "tie_word_embeddings")));
        CHECK(json_is_object(json_object_get(cfg, "rope_scaling")));
        CHECK(json_is_string(json_object_get(cfg, "torch_dtype")));
        CHECK(json_is_object(json_object_get(cfg, "dsv4_provenance")));
        json_decref(cfg);
        snprintf(cp, sizeof cp, "%s/tokenizer.json", out);
        CHECK_MSG(access(cp, F_OK) == 0, "tokenizer.json not carried over");
        dsv4_ckpt_close(&a);
    } else if (ok) {
        th_fail(__FILE__, __LINE__, "artifact does not open: %s", e.msg);
    }
    dsv4_recipe_free(&r);
    fixture_close(&f);
    return out;
}

TEST(quant_e2e_w4a16) { run_recipe("recipes/w4a16-rtn.yaml", "int4", 1, 1, 2); }
TEST(quant_e2e_w4a8) { run_recipe("recipes/w4a8-rtn.yaml", "int4", 1, 1, 2); }
TEST(quant_e2e_nvfp4) { run_recipe("recipes/nvfp4.yaml", "nvfp4", 1, 1, 2); }
TEST(quant_e2e_fp8) { run_recipe("recipes/fp8.yaml", "fp8", 1, 1, 2); }
TEST(quant_e2e_bf16) { run_recipe("recipes/bf16.yaml", "bf16", 0, 0, 2); }

/* The same inputs and recipe give identical files, whatever the thread count. */
TEST(quant_e2e_byte_reproducible)
{
    char a[4096], cmd[9000];
    const char *o = run_recipe("recipes/w4a16-rtn.yaml", "int4", 1, 1, 1);
    REQUIRE(o);
    snprintf(a, sizeof a, "%s", o);
    const char *b = run_recipe("recipes/w4a16-rtn.yaml", "int4", 1, 1, 2);
    REQUIRE(b);
    snprintf(cmd, sizeof cmd, "diff -r '%s' '%s' >/dev/null", a, b);
    CHECK_MSG(system(cmd) == 0, "two runs of the same conversion differ (%s vs %s)", a, b);
}
