/* Host manifold-constrained hyper-connections (spec §3.2, §3.5; transformers'
 * DeepseekV4HyperConnection / HyperHead): the mixer logits from the RMS-normalized flattened
 * streams, pre/post weights, the Sinkhorn-projected combination matrix, the collapse to one
 * stream and the expansion back (hc_post). All fp32. */
#include <math.h>
#include <stdlib.h>

#include "cpu/ops_cpu.h"

static float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* mix[m] = (fn[m] · xf) · rsqrt(mean(xf²) + eps) over the flattened streams of one token. */
static void mixes(const float *xf, int64_t n, const float *fn, int64_t nmix, float norm_eps, float *mix)
{
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)xf[i] * xf[i];
    float rho = 1.0f / sqrtf((float)(ss / (double)n) + norm_eps);
    for (int64_t m = 0; m < nmix; m++) {
        const float *f = fn + m * n;
        double acc = 0;
        for (int64_t i = 0; i < n; i++) acc += (double)f[i] * (xf[i] * rho);
        mix[m] = (float)acc;
    }
}

static void collapse(const float *X, int64_t hc, int64_t d, const float *pre, float *y)
{
    for (int64_t k = 0; k < d; k++) {
        float acc = 0;
        for (int64_t i = 0; i < hc; i++) acc += pre[i] * X[i * d + k];
        y[k] = acc;
    }
}

int dsv4_cpu_hc_pre(dsv4_ops *o, const dsv4_hc_args *a, dsv4_err *e)
{
    int64_t hc = a->hc, d = a->d, nmix = (2 + hc) * hc;
    if (hc > 16) return dsv4_fail(e, "hc_pre: hc_mult %lld is larger than 16", (long long)hc);
    float mix[(2 + 16) * 16], pre[16];
    for (int64_t t = 0; t < a->T; t++) {
        const float *X = a->X + t * hc * d;
        mixes(X, hc * d, a->fn, nmix, a->norm_eps, mix);
        float *post = a->post + t * hc, *C = a->comb + t * hc * hc;
        for (int64_t i = 0; i < hc; i++) {
            pre[i] = sigmoidf(mix[i] * a->scale[0] + a->base[i]) + a->eps;
            post[i] = 2.0f * sigmoidf(mix[hc + i] * a->scale[1] + a->base[hc + i]);
        }
        for (int64_t i = 0; i < hc; i++) { /* softmax over k of each row i, then + eps */
            float *row = C + i * hc, m = -INFINITY, z = 0;
            for (int64_t k = 0; k < hc; k++) {
                row[k] = mix[2 * hc + i * hc + k] * a->scale[2] + a->base[2 * hc + i * hc + k];
                m = fmaxf(m, row[k]);
            }
            for (int64_t k = 0; k < hc; k++) z += (row[k] = expf(row[k] - m));
            for (int64_t k = 0; k < hc; k++) row[k] = row[k] / z + a->eps;
        }
        for (int it = 0; it < a->iters; it++) {
            if (it > 0) /* row normalisation (sum over k), from the second iteration on */
                for (int64_t i = 0; i < hc; i++) {
                    float s = 0;
                    for (int64_t k = 0; k < hc; k++) s += C[i * hc + k];
                    for (int64_t k = 0; k < hc; k++) C[i * hc + k] /= s + a->eps;
                }
            for (int64_t k = 0; k < hc; k++) { /* column normalisation (sum over i) */
                float s = 0;
                for (int64_t i = 0; i < hc; i++) s += C[i * hc + k];
                for (int64_t i = 0; i < hc; i++) C[i * hc + k] /= s + a->eps;
            }
        }
        collapse(X, hc, d, pre, a->y + t * d);
    }
    return 0;
}

int dsv4_cpu_hc_head(dsv4_ops *o, const dsv4_hc_args *a, dsv4_err *e)
{
    int64_t hc = a->hc, d = a->d;
    if (hc > 16) return dsv4_fail(e, "hc_head: hc_mult %lld is larger than 16", (long long)hc);
    float mix[16], pre[16];
    for (int64_t t = 0; t < a->T; t++) {
        const float *X = a->X + t * hc * d;
        mixes(X, hc * d, a->fn, hc, a->norm_eps, mix);
        for (int64_t i = 0; i < hc; i++) pre[i] = sigmoidf(mix[i] * a->scale[0] + a->base[i]) + a->eps;
        collapse(X, hc, d, pre, a->y + t * d);
    }
    return 0;
}

int dsv4_cpu_hc_post(dsv4_ops *o, const float *a, const float *R, const float *post, const float *comb,
                     int64_t T, int64_t hc, int64_t d, float *X, dsv4_err *e)
{
    for (int64_t t = 0; t < T; t++) {
        const float *Rt = R + t * hc * d, *C = comb + t * hc * hc, *at = a + t * d;
        float *Xt = X + t * hc * d;
        for (int64_t k = 0; k < hc; k++)
            for (int64_t j = 0; j < d; j++) {
                float acc = post[t * hc + k] * at[j];
                for (int64_t i = 0; i < hc; i++) acc += C[i * hc + k] * Rt[i * d + j];
                Xt[k * d + j] = acc;
            }
    }
    return 0;
}
