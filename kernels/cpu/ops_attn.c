/* Host attention pieces (spec §3.3, transformers' DeepseekV4Attention / compressors / indexer):
 * sparse attention with a per-head sink over window entries and compressed entries, compressor
 * softmax pooling (with the overlapping two-series layout of CSA), and the lightning indexer's
 * scores and causal top-k. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/ops_cpu.h"

static float dotf(const float *a, const float *b, int64_t n)
{
    float acc = 0;
    for (int64_t i = 0; i < n; i++) acc += a[i] * b[i];
    return acc;
}

int dsv4_cpu_attention(dsv4_ops *o, const dsv4_attn_args *a, dsv4_err *e)
{
    int64_t D = a->D, nk = a->nwin + (a->ckv ? a->ncmp : 0);
    float *l = malloc((size_t)(nk + 1) * sizeof(float));
    const float **kp = malloc((size_t)(nk + 1) * sizeof(float *));
    if (!l || !kp) { free(l); free(kp); return dsv4_fail_rt(e, "attention: out of memory"); }
    for (int64_t t = 0; t < a->T; t++) {
        int64_t p = a->qpos[t], n = 0;
        for (int64_t j = 0; j < a->nwin; j++)
            if (a->kvpos[j] >= 0 && a->kvpos[j] <= p && a->kvpos[j] > p - a->window) kp[n++] = a->kv + j * D;
        if (a->ckv && a->ncmp > 0) {
            int64_t vis = a->ratio > 0 ? (p + 1) / a->ratio : 0;
            if (vis > a->ncmp) vis = a->ncmp;
            if (a->sel) {
                const int32_t *s = a->sel + t * a->nsel;
                for (int64_t j = 0; j < a->nsel; j++)
                    if (s[j] >= 0 && s[j] < vis) kp[n++] = a->ckv + (int64_t)s[j] * D;
            } else {
                for (int64_t w = 0; w < vis; w++) kp[n++] = a->ckv + w * D;
            }
        }
        for (int64_t h = 0; h < a->H; h++) {
            const float *q = a->q + (t * a->H + h) * D;
            float *out = a->out + (t * a->H + h) * D;
            float m = a->sink[h];
            for (int64_t j = 0; j < n; j++) {
                l[j] = dotf(q, kp[j], D) * a->scale;
                if (l[j] > m) m = l[j];
            }
            float z = expf(a->sink[h] - m);
            for (int64_t j = 0; j < n; j++) z += (l[j] = expf(l[j] - m));
            memset(out, 0, (size_t)D * sizeof(float));
            for (int64_t j = 0; j < n; j++) {
                float pj = l[j] / z;
                for (int64_t i = 0; i < D; i++) out[i] += pj * kp[j][i];
            }
        }
    }
    free(l);
    free(kp);
    return 0;
}

int dsv4_cpu_pool(dsv4_ops *o, const dsv4_pool_args *a, dsv4_err *e)
{
    int64_t m = a->ratio, Dc = a->Dc, C = a->overlap ? 2 : 1, W = C * Dc;
    float *lg = malloc((size_t)(2 * m) * sizeof(float));
    const float **vp = malloc((size_t)(2 * m) * sizeof(float *));
    if (!lg || !vp) { free(lg); free(vp); return dsv4_fail_rt(e, "pool: out of memory"); }
    for (int64_t w = 0; w < a->n_win; w++)
        for (int64_t c = 0; c < Dc; c++) {
            int64_t n = 0;
            if (a->overlap) { /* previous block's first series */
                const float *pa = w > 0 ? a->a + (w - 1) * m * W : a->prev_a;
                const float *pb = w > 0 ? a->b + (w - 1) * m * W : a->prev_b;
                if (pa && pb)
                    for (int64_t j = 0; j < m; j++) {
                        lg[n] = pb[j * W + c] + a->ape[j * W + c];
                        vp[n++] = pa + j * W + c;
                    }
            }
            int64_t off = a->overlap ? Dc : 0;
            for (int64_t j = 0; j < m; j++) {
                int64_t r = (w * m + j) * W + off + c;
                lg[n] = a->b[r] + a->ape[j * W + off + c];
                vp[n++] = a->a + r;
            }
            float mx = -INFINITY, z = 0, acc = 0;
            for (int64_t j = 0; j < n; j++) mx = fmaxf(mx, lg[j]);
            for (int64_t j = 0; j < n; j++) z += (lg[j] = expf(lg[j] - mx));
            for (int64_t j = 0; j < n; j++) acc += (lg[j] / z) * *vp[j];
            a->out[w * Dc + c] = acc;
        }
    free(lg);
    free(vp);
    return 0;
}

int dsv4_cpu_indexer(dsv4_ops *o, const dsv4_index_args *a, dsv4_err *e)
{
    int64_t Di = a->Di;
    float *sc = malloc((size_t)(a->nk + 1) * sizeof(float));
    if (!sc) return dsv4_fail_rt(e, "indexer: out of memory");
    for (int64_t t = 0; t < a->T; t++) {
        int64_t vis = (a->qpos[t] + 1) / a->ratio;
        if (vis > a->nk) vis = a->nk;
        for (int64_t w = 0; w < vis; w++) {
            float s = 0;
            for (int64_t h = 0; h < a->Hi; h++) {
                float d = dotf(a->q + (t * a->Hi + h) * Di, a->k + w * Di, Di);
                s += (d > 0 ? d * a->qscale : 0.0f) * (a->wts[t * a->Hi + h] * a->wscale);
            }
            sc[w] = s;
        }
        int32_t *sel = a->sel + t * a->topk;
        int64_t kk = a->topk < a->nk ? a->topk : a->nk;
        for (int64_t j = 0; j < a->topk; j++) sel[j] = -1;
        for (int64_t j = 0; j < kk && j < vis; j++) { /* selection: best remaining, lower index on ties */
            int64_t best = -1;
            for (int64_t w = 0; w < vis; w++)
                if (!isnan(sc[w]) && (best < 0 || sc[w] > sc[best])) best = w;
            if (best < 0) break;
            sel[j] = (int32_t)best;
            sc[best] = NAN;
        }
    }
    free(sc);
    return 0;
}
