/* CPU implementation of kernels/dequant.h: splits the rows over POSIX threads and runs libquant's
 * reference row loops, so its output is the reference by construction. Also holds the check that
 * the CUDA implementation shares. */
#include "dequant.h"

#include <pthread.h>
#include <unistd.h>

#define MAX_THREADS 64
#define MIN_ELEMS_PER_THREAD (1 << 16)

int dsv4_dequant_check(dsv4_qformat fmt, const dsv4_qweight *q, dsv4_dtype out_t, dsv4_err *e)
{
    if (out_t != DSV4_F32 && out_t != DSV4_BF16)
        return dsv4_fail(e, "%s: cannot dequantize to %s (F32 or BF16 only)",
                         q->name ? q->name : "(unnamed)", dsv4_dtype_name(out_t));
    if (fmt == DSV4_QFMT_FP8_BLOCK)
        return dsv4_fp8_block_check(q, e);
    if (fmt == DSV4_QFMT_FP4)
        return dsv4_fp4_check(q, e);
    return dsv4_fail(e, "%s: unknown quantized format %d", q->name ? q->name : "(unnamed)", (int)fmt);
}

typedef struct {
    dsv4_qformat fmt;
    const dsv4_qweight *q;
    dsv4_dtype out_t;
    void *out;
    int64_t r0, r1;
} job;

static void *run_rows(void *arg)
{
    const job *j = arg;
    if (j->fmt == DSV4_QFMT_FP8_BLOCK && j->out_t == DSV4_F32)
        dsv4_fp8_block_dequant_rows_f32(j->q, j->r0, j->r1, j->out);
    else if (j->fmt == DSV4_QFMT_FP8_BLOCK)
        dsv4_fp8_block_dequant_rows_bf16(j->q, j->r0, j->r1, j->out);
    else if (j->out_t == DSV4_F32)
        dsv4_fp4_dequant_rows_f32(j->q, j->r0, j->r1, j->out);
    else
        dsv4_fp4_dequant_rows_bf16(j->q, j->r0, j->r1, j->out);
    return NULL;
}

int dsv4_dequant_cpu_mt(dsv4_qformat fmt, const dsv4_qweight *q, dsv4_dtype out_t, void *out,
                        int nthreads, dsv4_err *e)
{
    if (dsv4_dequant_check(fmt, q, out_t, e))
        return -1;
    int64_t rows = q->w_rows, elems = rows * q->w_cols * (fmt == DSV4_QFMT_FP4 ? 2 : 1);
    if (nthreads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        nthreads = n > 0 ? (int)n : 1;
    }
    if (nthreads > MAX_THREADS)
        nthreads = MAX_THREADS;
    if (elems / MIN_ELEMS_PER_THREAD < nthreads)
        nthreads = (int)(elems / MIN_ELEMS_PER_THREAD);
    if (nthreads > rows)
        nthreads = (int)rows;
    if (nthreads < 1)
        nthreads = 1;
    job jobs[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int t = 0; t < nthreads; t++) {
        jobs[t] = (job){fmt, q, out_t, out, rows * t / nthreads, rows * (t + 1) / nthreads};
        if (t > 0)
            started[t] = pthread_create(&tid[t], NULL, run_rows, &jobs[t]) == 0;
    }
    run_rows(&jobs[0]);
    for (int t = 1; t < nthreads; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            run_rows(&jobs[t]); /* no thread to be had: do its share here */
    }
    return 0;
}

int dsv4_dequant_cpu(dsv4_qformat fmt, const dsv4_qweight *q, dsv4_dtype out_t, void *out, dsv4_err *e)
{
    return dsv4_dequant_cpu_mt(fmt, q, out_t, out, 0, e);
}
