/* Host MoE (spec §3.4, transformers' DeepseekV4Experts / MLP): routed experts over the tokens
 * routed to each (gathered, one GEMM per expert), SwiGLU with the gate clamped from above and the
 * up projection clamped both ways, the routing weight applied to the expert output, accumulated;
 * and the shared expert; the activation alone (swiglu_act) for the calibration taps. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/ops_cpu.h"

static void swiglu_act(const float *g, const float *u, int64_t n, float limit, float *h)
{
    for (int64_t i = 0; i < n; i++) {
        float gv = g[i] > limit ? limit : g[i];
        float uv = u[i] > limit ? limit : (u[i] < -limit ? -limit : u[i]);
        h[i] = gv / (1.0f + expf(-gv)) * uv;
    }
}

int dsv4_cpu_swiglu_act(dsv4_ops *o, const float *g, const float *u, int64_t n, float limit, float *h, dsv4_err *e)
{
    swiglu_act(g, u, n, limit, h);
    return 0;
}

/* y[T, d] = w2(act(w1 x, w3 x)) with scratch for the two [T, inter] projections. */
static int ffn(dsv4_ops *o, const dsv4_lin *w1, const dsv4_lin *w3, const dsv4_lin *w2, const float *x, int64_t T,
               float limit, float *g, float *u, float *y, dsv4_err *e)
{
    if (dsv4_cpu_linear(o, w1, x, T, g, e) || dsv4_cpu_linear(o, w3, x, T, u, e)) return -1;
    swiglu_act(g, u, T * w1->out, limit, g);
    return dsv4_cpu_linear(o, w2, g, T, y, e);
}

int dsv4_cpu_swiglu(dsv4_ops *o, const dsv4_lin *w1, const dsv4_lin *w3, const dsv4_lin *w2, const float *x,
                    int64_t T, float limit, float *y, dsv4_err *e)
{
    float *g = malloc((size_t)(T * w1->out) * sizeof(float) + 1), *u = malloc((size_t)(T * w3->out) * sizeof(float) + 1);
    int rc = (!g || !u) ? dsv4_fail_rt(e, "shared expert: out of memory") : ffn(o, w1, w3, w2, x, T, limit, g, u, y, e);
    free(g);
    free(u);
    return rc;
}

int dsv4_cpu_moe(dsv4_ops *o, const dsv4_moe_args *a, dsv4_err *e)
{
    int64_t T = a->T, K = a->K, d = a->w2[0].out, inter = a->w1[0].out;
    int64_t *cnt = calloc((size_t)a->E + 1, sizeof(int64_t));
    int64_t *slot = malloc((size_t)(T * K) * sizeof(int64_t) + 1); /* token·K + k, grouped by expert */
    float *xg = malloc((size_t)(T * K * d) * sizeof(float) + 1), *yg = malloc((size_t)(T * K * d) * sizeof(float) + 1);
    float *g = malloc((size_t)(T * K * inter) * sizeof(float) + 1), *u = malloc((size_t)(T * K * inter) * sizeof(float) + 1);
    int rc = 0;
    if (!cnt || !slot || !xg || !yg || !g || !u) { rc = dsv4_fail_rt(e, "moe: out of memory"); goto out; }
    for (int64_t i = 0; i < T * K; i++) {
        if (a->idx[i] < 0 || a->idx[i] >= a->E) {
            rc = dsv4_fail(e, "moe: token %lld routed to expert %d, outside [0, %lld)", (long long)(i / K), a->idx[i],
                           (long long)a->E);
            goto out;
        }
        cnt[a->idx[i] + 1]++;
    }
    for (int64_t x = 0; x < a->E; x++) cnt[x + 1] += cnt[x];
    {
        int64_t *fill = calloc((size_t)a->E, sizeof(int64_t));
        if (!fill) { rc = dsv4_fail_rt(e, "moe: out of memory"); goto out; }
        for (int64_t i = 0; i < T * K; i++) slot[cnt[a->idx[i]] + fill[a->idx[i]]++] = i;
        free(fill);
    }
    for (int64_t x = 0; x < a->E; x++) {
        int64_t n = cnt[x + 1] - cnt[x];
        if (!n) continue;
        const int64_t *s = slot + cnt[x];
        for (int64_t r = 0; r < n; r++) memcpy(xg + r * d, a->x + (s[r] / K) * d, (size_t)d * sizeof(float));
        if ((rc = ffn(o, &a->w1[x], &a->w3[x], &a->w2[x], xg, n, a->limit, g, u, yg, e))) goto out;
        for (int64_t r = 0; r < n; r++) {
            float wt = a->wts[s[r]];
            float *dst = a->out + (s[r] / K) * d;
            for (int64_t i = 0; i < d; i++) dst[i] += wt * yg[r * d + i];
        }
    }
out:
    free(cnt); free(slot); free(xg); free(yg); free(g); free(u);
    return rc;
}
