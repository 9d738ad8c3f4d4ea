/* Helpers of the CUDA calibration-op tests (see gptq_cuda_util.h). */
#include "gptq_cuda_util.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_libs.h"
#include "gptq_math.h"
#include "gpu.h"
#include "harness.h"

static void *xmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p)
        abort();
    return p;
}

float *gc_rows(int64_t rows, int64_t cols, int64_t ld, const int64_t *dead, int ndead)
{
    enum { F = 8 };
    float *x = xmalloc((size_t)(rows * ld) * sizeof *x), *A = xmalloc((size_t)(cols * F) * sizeof *A);
    float *sc = xmalloc((size_t)cols * sizeof *sc);
    for (int64_t c = 0; c < cols * F; c++)
        A[c] = th_randf(-1, 1);
    for (int64_t c = 0; c < cols; c++)
        sc[c] = th_randf(0.2f, 2.0f);
    for (int64_t r = 0; r < rows; r++) {
        float f[F];
        for (int k = 0; k < F; k++)
            f[k] = th_randf(-1, 1);
        for (int64_t c = 0; c < ld; c++) {
            float v = 0.5f * th_randf(-1, 1);
            for (int k = 0; k < F; k++)
                v += 0.6f * A[c % cols * F + k] * f[k];
            x[r * ld + c] = c < cols ? sc[c] * v : NAN; /* padding past cols must never be read */
        }
        for (int i = 0; i < ndead; i++)
            x[r * ld + dead[i]] = 0.0f;
    }
    free(A);
    free(sc);
    return x;
}

double *gc_hessian(const float *x, int64_t rows, int64_t cols, int64_t ld)
{
    double *H = xmalloc((size_t)(cols * cols) * sizeof *H);
    for (int64_t i = 0; i < cols; i++)
        for (int64_t j = i; j < cols; j++) {
            double s = 0;
            for (int64_t r = 0; r < rows; r++)
                s += (double)x[r * ld + i] * (double)x[r * ld + j];
            H[i * cols + j] = H[j * cols + i] = 2.0 * s / (double)rows;
        }
    return H;
}

float *gc_upper(const double *H, int64_t K)
{
    float *u = xmalloc((size_t)(K * K) * sizeof *u);
    for (int64_t i = 0; i < K; i++)
        for (int64_t j = 0; j < K; j++)
            u[i * K + j] = j >= i ? (float)H[i * K + j] : 0.0f;
    return u;
}

float *gc_weight(int64_t N, int64_t K)
{
    float *w = xmalloc((size_t)(N * K) * sizeof *w);
    for (int64_t n = 0; n < N; n++) {
        float rs = th_randf(0.5f, 2.0f);
        for (int64_t k = 0; k < K; k++)
            w[n * K + k] = dsv4_gq_bf16(rs * th_randf(-1, 1));
    }
    return w;
}

float gc_gscale(const float *W, int64_t n)
{
    float m = 0.0f;
    for (int64_t i = 0; i < n; i++)
        m = fabsf(W[i]) > m ? fabsf(W[i]) : m;
    return 448.0f * 6.0f / m;
}

size_t gc_scale_bytes(const dsv4_gptq_args *cfg)
{
    return (size_t)(cfg->N * (cfg->K / cfg->group)) * (cfg->fmt == DSV4_GPTQ_INT4 ? 2 : 1);
}

static void *put(dsv4_ops *o, const void *h, size_t n)
{
    dsv4_err e;
    void *d = o->alloc(o, n, &e);
    if (!d)
        th_fail(__FILE__, __LINE__, "%s alloc of %zu bytes: %s", o->name, n, e.msg);
    else if (h && o->upload(o, d, h, n, &e))
        th_fail(__FILE__, __LINE__, "%s upload: %s", o->name, e.msg);
    return d;
}

static void get(dsv4_ops *o, void *h, const void *d, size_t n)
{
    dsv4_err e;
    if (o->sync(o, &e) || o->download(o, h, d, n, &e))
        th_fail(__FILE__, __LINE__, "%s download: %s", o->name, e.msg);
}

void gc_gptq(dsv4_ops *o, const float *W, const float *Hup, const dsv4_gptq_args *cfg, gc_run *r)
{
    memset(r, 0, sizeof *r);
    int64_t N = cfg->N, K = cfg->K;
    size_t nw = (size_t)(N * K), ns = gc_scale_bytes(cfg);
    r->a = *cfg;
    r->a.W = put(o, W, nw * 4);
    r->a.H = put(o, Hup, (size_t)(K * K) * 4);
    r->a.q = put(o, NULL, nw);
    r->a.scale = put(o, NULL, ns);
    r->g_idx = xmalloc((size_t)K * sizeof *r->g_idx);
    for (int64_t k = 0; k < K; k++)
        r->g_idx[k] = -1;
    r->a.g_idx = cfg->actorder == DSV4_ACTORDER_GROUP ? r->g_idx : NULL;
    r->W = xmalloc(nw * 4);
    r->q = xmalloc(nw);
    r->scale = xmalloc(ns);
    r->rc = -1;
    if (!r->a.W || !r->a.H || !r->a.q || !r->a.scale)
        return;
    if (!o->gptq) {
        snprintf(r->msg, sizeof r->msg, "%s backend: gptq op missing", o->name);
        return;
    }
    dsv4_err e = {{0}, 0};
    r->rc = o->gptq(o, &r->a, &e);
    snprintf(r->msg, sizeof r->msg, "%.500s", e.msg);
    if (r->rc == 0) {
        get(o, r->W, r->a.W, nw * 4);
        get(o, r->q, r->a.q, nw);
        get(o, r->scale, r->a.scale, ns);
    }
    o->free(o, r->a.W);
    o->free(o, r->a.H);
    o->free(o, r->a.q);
    o->free(o, r->a.scale);
}

void gc_free(gc_run *r)
{
    free(r->W);
    free(r->q);
    free(r->scale);
    free(r->g_idx);
    memset(r, 0, sizeof *r);
}

float gc_value(const dsv4_gptq_args *cfg, uint8_t q, const uint8_t *scale, int64_t si)
{
    if (cfg->fmt == DSV4_GPTQ_INT4) {
        uint16_t b;
        memcpy(&b, scale + 2 * si, 2);
        return dsv4_gq_int4_value((int8_t)q, dsv4_bits_f32((uint32_t)b << 16));
    }
    return dsv4_gq_e2m1_value(q) * dsv4_gq_nvfp4_eff(scale[si], cfg->gscale);
}

void gc_rtn(const float *W, const dsv4_gptq_args *cfg, float *Wq, uint8_t *q)
{
    int64_t N = cfg->N, K = cfg->K;
    int g = cfg->group, mse = cfg->observer == DSV4_OBSERVER_MSE;
    for (int64_t n = 0; n < N; n++)
        for (int64_t c0 = 0; c0 < K; c0 += g) {
            const float *x = W + n * K + c0;
            if (cfg->fmt == DSV4_GPTQ_INT4) {
                float s = mse ? dsv4_gq_int4_scale_mse(x, g, 1) : dsv4_gq_int4_scale(dsv4_gq_amax(x, g, 1));
                for (int j = 0; j < g; j++) {
                    int v = dsv4_gq_int4_q(x[j], s);
                    if (Wq)
                        Wq[n * K + c0 + j] = dsv4_gq_int4_value(v, s);
                    if (q)
                        q[n * K + c0 + j] = (uint8_t)(int8_t)v;
                }
            } else {
                uint32_t sc = mse ? dsv4_gq_nvfp4_scale_mse(x, g, 1, cfg->gscale)
                                  : dsv4_gq_nvfp4_scale(dsv4_gq_amax(x, g, 1), cfg->gscale);
                float eff = dsv4_gq_nvfp4_eff(sc, cfg->gscale);
                for (int j = 0; j < g; j++) {
                    uint32_t code = dsv4_gq_e2m1_code(x[j] / eff);
                    if (Wq)
                        Wq[n * K + c0 + j] = dsv4_gq_e2m1_value(code) * eff;
                    if (q)
                        q[n * K + c0 + j] = (uint8_t)code;
                }
            }
        }
}

double gc_out_err(const float *W, const float *Wq, const double *H, int64_t N, int64_t K)
{
    double *E = xmalloc((size_t)(N * K) * sizeof *E), *EH = xmalloc((size_t)(N * K) * sizeof *EH);
    for (int64_t i = 0; i < N * K; i++)
        E[i] = (double)W[i] - (double)Wq[i];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)K, (int)K, 1.0, E, (int)K, H, (int)K, 0.0, EH,
                (int)K);
    double s = 0;
    for (int64_t i = 0; i < N * K; i++)
        s += E[i] * EH[i];
    free(E);
    free(EH);
    return s;
}

dsv4_ops *gc_open_nolibs(void)
{
    if (dsv4_gpu_count() == 0)
        return NULL;
    dsv4_err e;
    setenv("DSV4_NO_CUDA_LIBS", "1", 1);
    dsv4_ops *o = dsv4_ops_cuda(&e);
    if (!o)
        th_fail(__FILE__, __LINE__, "a GPU is present but the CUDA backend did not open: %s", e.msg);
    else
        printf("  fallback backend: %s\n", dsv4_cuda_gptq_path(o)); /* decides the path while the variable is set */
    unsetenv("DSV4_NO_CUDA_LIBS");
    return o;
}
