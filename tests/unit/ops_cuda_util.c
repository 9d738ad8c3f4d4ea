/* Helpers of the CUDA-vs-CPU op tests (see ops_cuda_util.h). */
#include "ops_cuda_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/fp.h"
#include "gpu.h"
#include "harness.h"

int oc_open(oc_pair *p, const char *test)
{
    memset(p, 0, sizeof *p);
    if (dsv4_gpu_count() == 0) {
        printf("SKIP %s: no CUDA GPU (dsv4_gpu_count() == 0)\n", test);
        return -1;
    }
    dsv4_err e;
    p->gpu = dsv4_ops_cuda(&e);
    if (!p->gpu) {
        th_fail(__FILE__, __LINE__, "a GPU is present but the CUDA backend did not open: %s", e.msg);
        return -1;
    }
    p->cpu = dsv4_ops_cpu(1);
    if (!p->cpu) {
        th_fail(__FILE__, __LINE__, "the CPU backend did not open");
        dsv4_ops_release(p->gpu);
        p->gpu = NULL;
        return -1;
    }
    return 0;
}

void oc_close(oc_pair *p)
{
    dsv4_ops_release(p->gpu);
    dsv4_ops_release(p->cpu);
    memset(p, 0, sizeof *p);
}

float *oc_rand(int64_t n, float lo, float hi)
{
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    if (!v)
        abort();
    for (int64_t i = 0; i < n; i++)
        v[i] = th_randf(lo, hi);
    return v;
}

void *oc_put(dsv4_ops *o, const void *host, size_t n)
{
    dsv4_err e;
    void *d = o->alloc(o, n, &e);
    if (!d) {
        th_fail(__FILE__, __LINE__, "%s alloc of %zu bytes: %s", o->name, n, e.msg);
        return NULL;
    }
    if (n && o->upload(o, d, host, n, &e)) {
        th_fail(__FILE__, __LINE__, "%s upload: %s", o->name, e.msg);
        o->free(o, d);
        return NULL;
    }
    return d;
}

float *oc_nan(dsv4_ops *o, int64_t n)
{
    float *h = malloc((size_t)(n > 0 ? n : 1) * sizeof *h);
    if (!h)
        abort();
    for (int64_t i = 0; i < n; i++)
        h[i] = NAN;
    float *d = oc_put(o, h, (size_t)n * sizeof *h);
    free(h);
    return d;
}

float *oc_get(dsv4_ops *o, const float *dev, int64_t n)
{
    float *h = malloc((size_t)(n > 0 ? n : 1) * sizeof *h);
    dsv4_err e;
    if (!h)
        abort();
    if (o->sync(o, &e) || o->download(o, h, dev, (size_t)n * sizeof *h, &e)) {
        th_fail(__FILE__, __LINE__, "%s download: %s", o->name, e.msg);
        free(h);
        return NULL;
    }
    return h;
}

int oc_rand_lin(dsv4_lw_fmt f, int64_t out, int64_t in, int group, dsv4_lin *h)
{
    memset(h, 0, sizeof *h);
    size_t wb, sb;
    if (dsv4_lw_sizes(f, out, in, group, &wb, &sb))
        return -1;
    h->out = out;
    h->in = in;
    h->fmt = f;
    h->group = f == DSV4_LW_INT4 ? group : 0;
    h->gscale = f == DSV4_LW_NVFP4 ? 37.5f : 0.0f;
    h->w_bytes = wb;
    h->s_bytes = sb;
    h->w = malloc(wb);
    h->s = sb ? malloc(sb) : NULL;
    h->owned = 1;
    if (!h->w || (sb && !h->s))
        abort();
    uint8_t *wu = h->w, *su = h->s;
    switch (f) {
    case DSV4_LW_F32:
        for (size_t i = 0; i < wb / 4; i++)
            ((float *)h->w)[i] = th_randf(-1, 1);
        break;
    case DSV4_LW_BF16:
        for (size_t i = 0; i < wb / 2; i++)
            ((uint16_t *)h->w)[i] = dsv4_f32_to_bf16(th_randf(-1, 1));
        break;
    case DSV4_LW_FP8_BLOCK:
        for (size_t i = 0; i < wb; i++) {
            uint8_t b = (uint8_t)th_rand();
            wu[i] = (b & 0x7F) == 0x7F ? (uint8_t)(b ^ 1) : b; /* no NaN codes */
        }
        for (size_t i = 0; i < sb / 4; i++)
            ((float *)h->s)[i] = th_randf(1e-3f, 1e-2f);
        break;
    case DSV4_LW_MXFP4:
        for (size_t i = 0; i < wb; i++)
            wu[i] = (uint8_t)th_rand();
        for (size_t i = 0; i < sb; i++)
            su[i] = (uint8_t)(118 + th_rand() % 9); /* 2^-9 .. 2^-1 */
        break;
    case DSV4_LW_INT4:
        for (size_t i = 0; i < wb; i++)
            wu[i] = (uint8_t)th_rand();
        for (size_t i = 0; i < sb / 2; i++)
            ((uint16_t *)h->s)[i] = dsv4_f32_to_bf16(th_randf(1e-3f, 1e-2f));
        break;
    case DSV4_LW_NVFP4:
        for (size_t i = 0; i < wb; i++)
            wu[i] = (uint8_t)th_rand();
        for (size_t i = 0; i < sb; i++)
            su[i] = (uint8_t)(0x20 + th_rand() % 0x40); /* positive normal e4m3 scales */
        break;
    default:
        return -1;
    }
    return 0;
}

void oc_free_host_lin(dsv4_lin *h)
{
    free(h->w);
    free(h->s);
    memset(h, 0, sizeof *h);
}

int64_t oc_compare(const char *what, const float *ref, const float *got, int64_t n, const float *tol, int64_t ntol)
{
    int64_t bad = 0, worst = -1;
    double worst_ratio = 0;
    for (int64_t i = 0; i < n; i++) {
        double t = tol[ntol == 1 ? 0 : i], d = fabs((double)got[i] - (double)ref[i]);
        int ok = !isnan(ref[i]) && !isnan(got[i]) && d <= t;
        if (!ok) {
            bad++;
            double r = isnan(d) ? INFINITY : d / (t > 0 ? t : 1e-300);
            if (worst < 0 || r > worst_ratio) {
                worst = i;
                worst_ratio = r;
            }
        }
    }
    if (bad)
        th_fail(__FILE__, __LINE__, "%s: %lld of %lld elements off; worst [%lld]: cpu %.9g, cuda %.9g, tolerance %.3g",
                what, (long long)bad, (long long)n, (long long)worst, (double)ref[worst], (double)got[worst],
                (double)tol[ntol == 1 ? 0 : worst]);
    return bad;
}

int64_t oc_compare_rel(const char *what, const float *ref, const float *got, int64_t n, float rel, float abs)
{
    float *tol = malloc((size_t)(n > 0 ? n : 1) * sizeof *tol);
    if (!tol)
        abort();
    for (int64_t i = 0; i < n; i++)
        tol[i] = rel * fabsf(ref[i]) + abs;
    int64_t bad = oc_compare(what, ref, got, n, tol, n);
    free(tol);
    return bad;
}
