/* The tiny-model fixture for the runner tests (runner_fixture.h). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "runner_fixture.h"

static const void *tensor(const dsv4_st_file *f, const char *name, int64_t a, int64_t b)
{
    const dsv4_tensor *t = dsv4_st_find(f, name);
    if (!t || t->ndim != 2 || t->shape[0] != a || t->shape[1] != b) {
        fprintf(stderr, "fixture: %s: tensor %s [%lld, %lld] missing or of another shape\n", f->path, name,
                (long long)a, (long long)b);
        return NULL;
    }
    return t->data;
}

int rf_open(rf_fixture *f, dsv4_ops *ops, int flags)
{
    memset(f, 0, sizeof *f);
    f->ops = ops;
    dsv4_err e = {0};
    if (!ops) { fprintf(stderr, "fixture: no backend\n"); return -1; }
    if (dsv4_model_open(th_path("fixtures/dsv4-tiny"), ops, flags, &f->m, &e) ||
        dsv4_st_open(th_path("fixtures/dsv4-tiny/eval.tokens.safetensors"), &f->eval, &e) ||
        dsv4_st_open(th_path("fixtures/dsv4-tiny/golden.logits.safetensors"), &f->gold, &e)) {
        fprintf(stderr, "fixture: %s\n", e.msg);
        return -1;
    }
    f->n_rows = 64;
    f->row_len = 513;
    f->rows = tensor(&f->eval, "input_ids", 64, 513);
    f->logits0 = tensor(&f->gold, "logits_row0_pos0_31", 32, 1024);
    f->nll = tensor(&f->gold, "nll", 64, 512);
    f->nll_mtp = tensor(&f->gold, "nll_mtp", 64, 511);
    f->greedy = tensor(&f->gold, "greedy_tokens", 16, 160);
    return f->rows && f->logits0 && f->nll && f->nll_mtp && f->greedy ? 0 : -1;
}

void rf_close(rf_fixture *f)
{
    dsv4_model_close(&f->m);
    dsv4_st_close(&f->eval);
    dsv4_st_close(&f->gold);
    dsv4_ops_release(f->ops);
    memset(f, 0, sizeof *f);
}

static json_t *golden(void)
{
    json_error_t je;
    return json_load_file(th_path("fixtures/dsv4-tiny/golden.json"), 0, &je);
}

double rf_golden_num(const char *key)
{
    json_t *j = golden();
    double v = j ? json_number_value(json_object_get(j, key)) : NAN;
    json_decref(j);
    return v;
}

int rf_golden_rope(const char *which, float *out, int cap)
{
    json_t *j = golden(), *a = j ? json_object_get(json_object_get(j, "rope_inv_freq"), which) : NULL;
    int n = 0;
    for (size_t i = 0; a && i < json_array_size(a) && n < cap; i++) out[n++] = (float)json_number_value(json_array_get(a, i));
    json_decref(j);
    return n;
}

double rf_max_diff(const float *a, const float *ref, int64_t n, double *max_abs_diff, double *max_abs_ref)
{
    double md = 0, mx = 0;
    for (int64_t i = 0; i < n; i++) {
        md = fmax(md, fabs((double)a[i] - ref[i]));
        mx = fmax(mx, fabs((double)ref[i]));
    }
    if (max_abs_diff) *max_abs_diff = md;
    if (max_abs_ref) *max_abs_ref = mx;
    return mx > 0 ? md / mx : md;
}
