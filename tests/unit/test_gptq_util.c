/* Helpers of the GPTQ tests (test_gptq_util.h). */
#include "test_gptq_util.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/fp.h"
#include "harness.h"
#include "quant/pack.h"

float tg_normal(void)
{
    float u = th_randf(1e-7f, 1.0f), v = th_randf(0.0f, 1.0f);
    return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}

void tg_weights(int64_t n, int64_t k, float sd, uint16_t *w, float *wf)
{
    for (int64_t i = 0; i < n * k; i++) {
        w[i] = dsv4_f32_to_bf16(sd * tg_normal());
        wf[i] = dsv4_bf16_to_f32(w[i]);
    }
}

void tg_corr_x(int64_t rows, int64_t k, float *x)
{
    int64_t f = k / 4 > 0 ? k / 4 : 1;
    float *M = malloc((size_t)(f * k) * sizeof(float)), *z = malloc((size_t)(rows * f) * sizeof(float));
    float *cs = malloc((size_t)k * sizeof(float));
    for (int64_t i = 0; i < f * k; i++)
        M[i] = tg_normal() / sqrtf((float)f);
    for (int64_t i = 0; i < rows * f; i++)
        z[i] = tg_normal();
    for (int64_t j = 0; j < k; j++)
        cs[j] = expf(0.7f * tg_normal());
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)k, (int)f, 1.0f, z, (int)f, M, (int)k,
                0.0f, x, (int)k);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < k; j++)
            x[r * k + j] = cs[j] * (x[r * k + j] + 0.1f * tg_normal());
    free(M);
    free(z);
    free(cs);
}

int tg_hessian(dsv4_ops *o, const float *x, int64_t rows, int64_t k, float *H)
{
    dsv4_err e;
    double n = 0;
    if (o->hess_acc(o, x, rows, k, k, H, &n, &e)) {
        printf("  hess_acc: %s\n", e.msg);
        return -1;
    }
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < i; j++)
            H[i * k + j] = H[j * k + i];
    return 0;
}

float tg_gscale(const uint16_t *w, int64_t n, int64_t k)
{
    return dsv4_nvfp4_global_scale(dsv4_bf16_amax(w, (size_t)(n * k)));
}

int tg_rtn(const uint16_t *w, int64_t n, int64_t k, int group, float gs, float *out)
{
    dsv4_err e;
    int rc;
    if (group == 16) {
        uint8_t *p = malloc((size_t)(n * k / 2)), *s = malloc((size_t)(n * k / 16));
        rc = dsv4_nvfp4_rtn(w, n, k, gs, p, s, &e) || dsv4_nvfp4_dequant(p, s, gs, n, k, out, &e);
        free(p);
        free(s);
    } else {
        int32_t *p = malloc((size_t)(n * k / 8) * sizeof(int32_t));
        uint16_t *s = malloc((size_t)(n * k / group) * sizeof(uint16_t)), *d = malloc((size_t)(n * k) * sizeof(uint16_t));
        rc = dsv4_int4_rtn(w, n, k, group, p, s, &e) || dsv4_int4_dequant(p, s, n, k, group, d, &e);
        for (int64_t i = 0; !rc && i < n * k; i++)
            out[i] = dsv4_bf16_to_f32(d[i]);
        free(p);
        free(s);
        free(d);
    }
    return rc ? -1 : 0;
}

double tg_out_err(const float *A, const float *B, const float *x, int64_t n, int64_t k, int64_t rows)
{
    float *D = malloc((size_t)(n * k) * sizeof(float)), *Y = malloc((size_t)(n * rows) * sizeof(float));
    for (int64_t i = 0; i < n * k; i++)
        D[i] = A[i] - B[i];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)rows, (int)k, 1.0f, D, (int)k, x, (int)k, 0.0f,
                Y, (int)rows);
    double s = 0.0;
    for (int64_t i = 0; i < n * rows; i++)
        s += (double)Y[i] * Y[i];
    free(D);
    free(Y);
    return sqrt(s);
}

int tg_gptq(dsv4_ops *o, tg_run *r, const float *W, const float *H, int64_t n, int64_t k, dsv4_gptq_fmt fmt,
            int group, float gs, dsv4_actorder ao, dsv4_observer ob, int recompute, double damp, char *msg)
{
    memset(r, 0, sizeof *r);
    r->W = malloc((size_t)(n * k) * sizeof(float));
    r->H = malloc((size_t)(k * k) * sizeof(float));
    r->q = malloc((size_t)(n * k));
    r->scale = malloc((size_t)(n * (k / group)) * 2);
    r->g_idx = malloc((size_t)k * sizeof(int32_t));
    memcpy(r->W, W, (size_t)(n * k) * sizeof(float));
    memcpy(r->H, H, (size_t)(k * k) * sizeof(float));
    memset(r->q, 0xA5, (size_t)(n * k)); /* poisoned: every element must be written */
    memset(r->scale, 0xA5, (size_t)(n * (k / group)) * 2);
    for (int64_t i = 0; i < k; i++)
        r->g_idx[i] = -7;
    r->a = (dsv4_gptq_args){.W = r->W, .H = r->H, .N = n, .K = k, .fmt = fmt, .group = group, .gscale = gs,
                            .block = 128, .damp_frac = damp, .actorder = ao, .observer = ob, .recompute = recompute,
                            .q = r->q, .scale = r->scale, .g_idx = ao == DSV4_ACTORDER_GROUP ? r->g_idx : NULL};
    dsv4_err e = {0};
    int rc = o->gptq(o, &r->a, &e);
    if (msg)
        snprintf(msg, TG_MSG, "%s", rc ? e.msg : "");
    return rc;
}

void tg_free(tg_run *r)
{
    free(r->W);
    free(r->H);
    free(r->q);
    free(r->scale);
    free(r->g_idx);
    memset(r, 0, sizeof *r);
}

int tg_dequant(const tg_run *r, float *out)
{
    const dsv4_gptq_args *a = &r->a;
    int64_t ng = a->K / a->group;
    for (int64_t c = 0; a->g_idx && c < a->K; c++)
        if (a->g_idx[c] < 0 || a->g_idx[c] >= ng)
            return -1;
    for (int64_t i = 0; i < a->N; i++)
        for (int64_t c = 0; c < a->K; c++) {
            int64_t g = i * ng + (a->g_idx ? a->g_idx[c] : c / a->group);
            uint8_t q = r->q[i * a->K + c];
            if (a->fmt == DSV4_GPTQ_INT4)
                out[i * a->K + c] = dsv4_bf16_to_f32(
                    dsv4_f32_to_bf16((float)(int8_t)q * dsv4_bf16_to_f32(((const uint16_t *)r->scale)[g])));
            else
                out[i * a->K + c] = dsv4_e2m1_to_f32(q) * (dsv4_e4m3_to_f32(((const uint8_t *)r->scale)[g]) / a->gscale);
        }
    return 0;
}
