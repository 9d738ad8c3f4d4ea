/* Host element-wise ops of the runner: RMSNorm (weighted and unweighted), interleaved partial RoPE
 * (forward and inverse), axpy, broadcast add over streams, and the router score functions. */
#include <math.h>

#include "cpu/ops_cpu.h"
#include "model/config.h"

int dsv4_cpu_rmsnorm(dsv4_ops *o, const float *x, int64_t rows, int64_t n, const float *w, float eps, float *y,
                     dsv4_err *e)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        double ss = 0;
        for (int64_t i = 0; i < n; i++) ss += (double)xr[i] * xr[i];
        float inv = 1.0f / sqrtf((float)(ss / (double)n) + eps);
        for (int64_t i = 0; i < n; i++) yr[i] = w ? w[i] * (xr[i] * inv) : xr[i] * inv;
    }
    return 0;
}

int dsv4_cpu_rope(dsv4_ops *o, float *x, int64_t T, int64_t sub, int64_t dim, int64_t rope_dim,
                  const int64_t *pos, const float *inv_freq, int inverse, dsv4_err *e)
{
    if (rope_dim > dim || rope_dim % 2)
        return dsv4_fail(e, "rope: rope_dim %lld does not fit vectors of %lld", (long long)rope_dim, (long long)dim);
    int64_t half = rope_dim / 2, off = dim - rope_dim;
    for (int64_t t = 0; t < T; t++) {
        float p = (float)pos[t];
        for (int64_t i = 0; i < half; i++) {
            float ang = p * inv_freq[i];
            float c = cosf(ang), s = sinf(ang);
            if (inverse) s = -s;
            for (int64_t h = 0; h < sub; h++) {
                float *v = x + (t * sub + h) * dim + off + 2 * i;
                float a = v[0], b = v[1];
                v[0] = a * c - b * s;
                v[1] = b * c + a * s;
            }
        }
    }
    return 0;
}

int dsv4_cpu_axpy(dsv4_ops *o, float alpha, const float *x, int64_t n, float *y, dsv4_err *e)
{
    for (int64_t i = 0; i < n; i++) y[i] += alpha * x[i];
    return 0;
}

int dsv4_cpu_add_bcast(dsv4_ops *o, const float *v, int64_t T, int64_t rep, int64_t d, float *X, dsv4_err *e)
{
    for (int64_t t = 0; t < T; t++)
        for (int64_t r = 0; r < rep; r++)
            for (int64_t i = 0; i < d; i++) X[(t * rep + r) * d + i] += v[t * d + i];
    return 0;
}

/* torch.nn.functional.softplus (beta 1, threshold 20). */
static float softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

int dsv4_cpu_score(dsv4_ops *o, float *s, int64_t T, int64_t E, int score_func, dsv4_err *e)
{
    for (int64_t t = 0; t < T; t++) {
        float *r = s + t * E;
        switch (score_func) {
        case DSV4_SCORE_SQRTSOFTPLUS:
            for (int64_t i = 0; i < E; i++) r[i] = sqrtf(softplus(r[i]));
            break;
        case DSV4_SCORE_SIGMOID:
            for (int64_t i = 0; i < E; i++) r[i] = 1.0f / (1.0f + expf(-r[i]));
            break;
        case DSV4_SCORE_SOFTMAX: {
            float m = -INFINITY;
            for (int64_t i = 0; i < E; i++) m = fmaxf(m, r[i]);
            double z = 0;
            for (int64_t i = 0; i < E; i++) z += exp((double)r[i] - m);
            for (int64_t i = 0; i < E; i++) r[i] = (float)(exp((double)r[i] - m) / z);
            break;
        }
        default:
            return dsv4_fail(e, "router score function %d is not one of sqrtsoftplus, sigmoid, softmax", score_func);
        }
    }
    return 0;
}
