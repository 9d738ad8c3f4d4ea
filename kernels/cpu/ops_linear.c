/* Host GEMMs of the runner: linear (OpenBLAS sgemm, y = x·Wᵀ), the grouped output projection and
 * embedding lookup. Weights are F32 here (the host backend dequantizes at load); a BF16 table is
 * accepted by embed. */
#include <cblas.h>
#include <string.h>

#include "cpu/ops_cpu.h"
#include "formats/fp.h"

void dsv4_cpu_set_threads(int nthreads)
{
    if (nthreads > 0) openblas_set_num_threads(nthreads);
}

static int need_f32(const dsv4_lin *w, const char *op, dsv4_err *e)
{
    if (w->fmt == DSV4_LW_F32) return 0;
    return dsv4_fail(e, "cpu %s: weight [%lld, %lld] is %s; the host backend takes F32 weights (load it "
                     "with lin_load)", op, (long long)w->out, (long long)w->in, dsv4_lw_fmt_name(w->fmt));
}

int dsv4_cpu_linear(dsv4_ops *o, const dsv4_lin *w, const float *x, int64_t T, float *y, dsv4_err *e)
{
    if (need_f32(w, "linear", e)) return -1;
    if (T <= 0) return 0;
    if (T == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)w->out, (int)w->in, 1.0f, w->w, (int)w->in, x, 1, 0.0f,
                    y, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)w->out, (int)w->in, 1.0f, x,
                    (int)w->in, w->w, (int)w->in, 0.0f, y, (int)w->out);
    return 0;
}

int dsv4_cpu_linear_grouped(dsv4_ops *o, const dsv4_lin *w, int64_t G, const float *x, int64_t T, float *y,
                            dsv4_err *e)
{
    if (need_f32(w, "linear_grouped", e)) return -1;
    if (G <= 0 || w->out % G)
        return dsv4_fail(e, "cpu linear_grouped: %lld output rows do not split into %lld groups",
                         (long long)w->out, (long long)G);
    int64_t R = w->out / G, K = w->in;
    const float *W = w->w;
    for (int64_t g = 0; g < G; g++)
        /* y[t, g·R + r] = Σ_k x[t, g·K + k] · W[g·R + r, k] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)R, (int)K, 1.0f, x + g * K,
                    (int)(G * K), W + g * R * K, (int)K, 0.0f, y + g * R, (int)w->out);
    return 0;
}

int dsv4_cpu_embed(dsv4_ops *o, const dsv4_lin *table, const int32_t *ids, int64_t T, float *y, dsv4_err *e)
{
    if (table->fmt != DSV4_LW_F32 && table->fmt != DSV4_LW_BF16)
        return dsv4_fail(e, "cpu embed: the table is %s; expected F32 or BF16", dsv4_lw_fmt_name(table->fmt));
    int64_t d = table->in;
    for (int64_t t = 0; t < T; t++) {
        if (ids[t] < 0 || ids[t] >= table->out)
            return dsv4_fail(e, "token id %d at position %lld is outside the vocabulary [0, %lld)", ids[t],
                             (long long)t, (long long)table->out);
        if (table->fmt == DSV4_LW_F32) {
            memcpy(y + t * d, (const float *)table->w + (int64_t)ids[t] * d, (size_t)d * sizeof(float));
        } else {
            const uint16_t *r = (const uint16_t *)table->w + (int64_t)ids[t] * d;
            for (int64_t i = 0; i < d; i++) y[t * d + i] = dsv4_bf16_to_f32(r[i]);
        }
    }
    return 0;
}
