/* The host GPTQ op's scales and column loop (spec/formats_algorithms.md §4.4–§4.8): the observers
 * and fake quantization of kernels/gptq_math.h per group and column, the in-block error updates
 * row by row (rows are independent, so they are split over worker threads), and the lazy update
 * W[:, i2:] -= Err1 · U[i1:i2, i2:] of each block as one OpenBLAS sgemm. */
#include <cblas.h>
#include <stdatomic.h>

#include "cpu/ops_gptq.h"
#include "gptq_math.h"
#include "util/workers.h"

#define ROWS_PER_TAKE 8
#define MIN_WORK_PER_THREAD (1 << 16) /* element updates below which a thread costs more than it saves */

/* Observes one group of row r (`group` values at x) and stores its scale: in sv for the loop and
 * in a->scale as written (BF16 bits or e4m3 code). */
static void observe(dsv4_gq_job *j, int64_t r, int64_t g, const float *x)
{
    dsv4_gptq_args *a = j->a;
    int64_t at = r * j->ng + g;
    if (a->fmt == DSV4_GPTQ_INT4) {
        float s = a->observer == DSV4_OBSERVER_MSE ? dsv4_gq_int4_scale_mse(x, a->group, 1)
                                                   : dsv4_gq_int4_scale(dsv4_gq_amax(x, a->group, 1));
        j->sv[at] = s;
        ((uint16_t *)a->scale)[at] = dsv4_bf16_from_bits(dsv4_f32_bits(s)); /* s is a BF16 value */
    } else {
        uint32_t sc = a->observer == DSV4_OBSERVER_MSE ? dsv4_gq_nvfp4_scale_mse(x, a->group, 1, a->gscale)
                                                       : dsv4_gq_nvfp4_scale(dsv4_gq_amax(x, a->group, 1), a->gscale);
        j->sv[at] = dsv4_gq_nvfp4_eff(sc, a->gscale);
        ((uint8_t *)a->scale)[at] = (uint8_t)sc;
    }
}

/* Rows split over threads: each worker takes ROWS_PER_TAKE rows at a time. */
typedef struct row_task {
    dsv4_gq_job *j;
    int64_t i1, i2;          /* the block (loop) or unused (scales) */
    const float *src;        /* the scales' source */
    void (*fn)(struct row_task *t, int64_t r);
    _Atomic int64_t next;
} row_task;

static void *row_worker(void *arg)
{
    row_task *t = arg;
    for (;;) {
        int64_t r0 = atomic_fetch_add(&t->next, ROWS_PER_TAKE);
        if (r0 >= t->j->N)
            return NULL;
        int64_t r1 = r0 + ROWS_PER_TAKE < t->j->N ? r0 + ROWS_PER_TAKE : t->j->N;
        for (int64_t r = r0; r < r1; r++)
            t->fn(t, r);
    }
}

static void run_rows(row_task *t, int64_t work_per_row)
{
    int64_t by_work = t->j->N * work_per_row / MIN_WORK_PER_THREAD;
    int64_t by_rows = (t->j->N + ROWS_PER_TAKE - 1) / ROWS_PER_TAKE;
    int64_t n = t->j->threads;
    n = n < by_work ? n : by_work;
    n = n < by_rows ? n : by_rows;
    atomic_store(&t->next, 0);
    if (n <= 1)
        row_worker(t);
    else
        dsv4_run_workers((int)n, row_worker, t);
}

static void scales_row(row_task *t, int64_t r)
{
    dsv4_gq_job *j = t->j;
    for (int64_t g = 0; g < j->ng; g++)
        observe(j, r, g, t->src + r * j->K + g * j->a->group);
}

void dsv4_cpu_gptq_scales(dsv4_gq_job *j, const float *src)
{
    row_task t = {.j = j, .src = src, .fn = scales_row};
    int64_t cost = j->a->observer == DSV4_OBSERVER_MSE ? DSV4_GQ_MSE_STEPS * j->K : j->K;
    run_rows(&t, cost);
}

/* One row through block [i1, i2): fake quant, Err1, in-block updates W1[:, c+1:i2] -= e·U[c, c+1:i2]. */
static void block_row(row_task *t, int64_t r)
{
    dsv4_gq_job *j = t->j;
    dsv4_gptq_args *a = j->a;
    int64_t K = j->K, i1 = t->i1, i2 = t->i2, group = a->group;
    float *w = j->Wp + r * K, *er = j->err + r * a->block;
    const float *sv = j->sv + r * j->ng;
    uint8_t *q = a->q + r * K;
    double loss = 0.0;
    for (int64_t c = i1; c < i2; c++) {
        if (a->recompute && c % group == 0)
            observe(j, r, c / group, w + c);
        float x = w[c], s = sv[j->colg[c]], v;
        if (a->fmt == DSV4_GPTQ_INT4) {
            int qi = dsv4_gq_int4_q(x, s);
            v = dsv4_gq_int4_value(qi, s);
            q[j->perm[c]] = (uint8_t)(int8_t)qi;
        } else {
            uint32_t code = dsv4_gq_e2m1_code(x / s);
            v = dsv4_gq_e2m1_value(code) * s;
            q[j->perm[c]] = (uint8_t)code;
        }
        const float *u = j->U + c * K;
        float ee = (x - v) / u[c];
        loss += (double)ee * (double)ee;
        w[c] = v;
        er[c - i1] = ee;
        for (int64_t k = c + 1; k < i2; k++)
            w[k] -= ee * u[k];
    }
    j->rowloss[r] += loss;
}

void dsv4_cpu_gptq_loop(dsv4_gq_job *j)
{
    int64_t N = j->N, K = j->K, B = j->a->block;
    for (int64_t i1 = 0; i1 < K; i1 += B) {
        int64_t i2 = i1 + B < K ? i1 + B : K;
        row_task t = {.j = j, .i1 = i1, .i2 = i2, .fn = block_row};
        run_rows(&t, (i2 - i1) * (i2 - i1) / 2 + (i2 - i1));
        if (i2 < K) /* W[:, i2:] -= Err1 [N, i2-i1] · U[i1:i2, i2:] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)(K - i2), (int)(i2 - i1), -1.0f,
                        j->err, (int)B, j->U + i1 * K + i2, (int)K, 1.0f, j->Wp + i2, (int)K);
    }
}
