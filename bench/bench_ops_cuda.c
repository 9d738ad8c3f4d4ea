/* GPU linear (dequant-GEMM) time in every packed weight format against the memory-bandwidth bound
 * of its bytes, on V4-Flash shapes: a [4096 x 4096] projection and a routed expert's w1
 * [2048 x 4096], for T = 1 (decode: the GEMV path, memory-bound) and T = 64 (the tiled path).
 *
 * The bound: a device-to-device cudaMemcpy of the same number of bytes (packed weight + scales),
 * timed in the same run, moves them twice (read + write), so the bandwidth is 2·bytes / t_copy
 * and reading the weight once takes bytes / bandwidth. Each measurement cycles through enough
 * copies of the weight (and of the memcpy buffers) to exceed the L2 cache, so every call reads
 * from DRAM; times are CUDA-event times of `iters` back-to-back calls on the backend's stream,
 * per call. "ratio" = time / bound (1.0 = at the bandwidth bound).
 * Without a GPU (or built with CUDA=0) it says so and exits 0.
 * Usage: bench_ops_cuda [iterations]   (default 50) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu.h"
#include "ops.h"

#ifdef DSV4_CUDA
#include <cuda_runtime_api.h>

#include "formats/fp.h"

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint32_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (uint32_t)((rng * 0x2545F4914F6CDD1DULL) >> 32);
}

static float rndf(float lo, float hi) { return lo + (hi - lo) * (float)(rnd() >> 8) * (1.0f / 16777216.0f); }

/* Random host weight with valid scales (as in the op tests). */
static int make_host(dsv4_lw_fmt f, int64_t out, int64_t in, dsv4_lin *h)
{
    memset(h, 0, sizeof *h);
    if (dsv4_lw_sizes(f, out, in, 128, &h->w_bytes, &h->s_bytes))
        return -1;
    h->out = out, h->in = in, h->fmt = f, h->group = f == DSV4_LW_INT4 ? 128 : 0;
    h->gscale = f == DSV4_LW_NVFP4 ? 37.5f : 0.0f;
    h->w = malloc(h->w_bytes);
    h->s = h->s_bytes ? malloc(h->s_bytes) : NULL;
    if (!h->w || (h->s_bytes && !h->s))
        return -1;
    uint8_t *w = h->w, *s = h->s;
    for (size_t i = 0; i < h->w_bytes; i++)
        w[i] = (uint8_t)rnd();
    if (f == DSV4_LW_F32)
        for (size_t i = 0; i < h->w_bytes / 4; i++)
            ((float *)h->w)[i] = rndf(-1, 1);
    if (f == DSV4_LW_BF16)
        for (size_t i = 0; i < h->w_bytes / 2; i++)
            ((uint16_t *)h->w)[i] = dsv4_f32_to_bf16(rndf(-1, 1));
    if (f == DSV4_LW_FP8_BLOCK)
        for (size_t i = 0; i < h->w_bytes; i++)
            w[i] = (w[i] & 0x7F) == 0x7F ? 0 : w[i];
    for (size_t i = 0; i < h->s_bytes; i++) {
        if (f == DSV4_LW_FP8_BLOCK && i % 4 == 0)
            ((float *)h->s)[i / 4] = rndf(1e-3f, 1e-2f);
        if (f == DSV4_LW_MXFP4)
            s[i] = (uint8_t)(118 + rnd() % 9);
        if (f == DSV4_LW_NVFP4)
            s[i] = (uint8_t)(0x20 + rnd() % 0x40);
        if (f == DSV4_LW_INT4 && i % 2 == 0)
            ((uint16_t *)h->s)[i / 2] = dsv4_f32_to_bf16(rndf(1e-3f, 1e-2f));
    }
    return 0;
}

static int fail(const char *what, const char *msg)
{
    fprintf(stderr, "bench_ops_cuda: %s: %s\n", what, msg);
    return 1;
}

/* Event time of `iters` calls of fn(i) on the GPU, per call, in seconds (-1 on error). */
typedef int (*call_fn)(void *ud, int i, dsv4_err *e);

static double timed(dsv4_ops *o, call_fn fn, void *ud, int iters, dsv4_err *e)
{
    cudaEvent_t t0, t1;
    float ms = 0;
    if (cudaEventCreate(&t0) != cudaSuccess || cudaEventCreate(&t1) != cudaSuccess)
        return -1;
    double r = -1;
    /* warm-up, then events on the legacy stream, which orders against the backend's (blocking) stream */
    if (fn(ud, 0, e) || o->sync(o, e) || cudaEventRecord(t0, 0) != cudaSuccess)
        goto out;
    for (int i = 0; i < iters; i++)
        if (fn(ud, i, e))
            goto out;
    if (cudaEventRecord(t1, 0) == cudaSuccess && cudaEventSynchronize(t1) == cudaSuccess &&
        cudaEventElapsedTime(&ms, t0, t1) == cudaSuccess)
        r = (double)ms * 1e-3 / iters;
out:
    cudaEventDestroy(t0);
    cudaEventDestroy(t1);
    return r;
}

typedef struct run {
    dsv4_ops *o;
    dsv4_lin *w;     /* ncopy loaded copies */
    int ncopy;
    float *x, *y;
    int64_t T;
    void **src, **dst; /* memcpy buffers, ncopy each */
    size_t bytes;
} run;

static int call_linear(void *ud, int i, dsv4_err *e)
{
    run *r = ud;
    return r->o->linear(r->o, &r->w[i % r->ncopy], r->x, r->T, r->y, e);
}

static int call_copy(void *ud, int i, dsv4_err *e)
{
    run *r = ud;
    return r->o->copy(r->o, r->dst[i % r->ncopy], r->src[i % r->ncopy], r->bytes, e);
}

static int bench_shape(dsv4_ops *o, const char *name, int64_t out, int64_t in, int iters)
{
    dsv4_err e;
    for (int f = 0; f < DSV4_LW_FMT_COUNT; f++) {
        dsv4_lin h;
        if (make_host((dsv4_lw_fmt)f, out, in, &h))
            return fail(name, "out of memory");
        run r = {o, NULL, 0, NULL, NULL, 1, NULL, NULL, h.w_bytes + h.s_bytes};
        r.ncopy = (int)((256u << 20) / r.bytes) + 2; /* > 256 MiB in all: well past the L2 */
        r.w = calloc((size_t)r.ncopy, sizeof *r.w);
        r.src = calloc((size_t)r.ncopy, sizeof *r.src);
        r.dst = calloc((size_t)r.ncopy, sizeof *r.dst);
        if (!r.w || !r.src || !r.dst)
            return fail(name, "out of memory");
        for (int c = 0; c < r.ncopy; c++)
            if (o->lin_load(o, &h, &r.w[c], &e) || !(r.src[c] = o->alloc(o, r.bytes, &e)) ||
                !(r.dst[c] = o->alloc(o, r.bytes, &e)))
                return fail(name, e.msg);
        r.x = o->alloc(o, (size_t)(64 * in) * 4, &e);
        r.y = r.x ? o->alloc(o, (size_t)(64 * out) * 4, &e) : NULL;
        if (!r.y)
            return fail(name, e.msg);
        double tc = timed(o, call_copy, &r, iters, &e);
        if (tc <= 0)
            return fail(name, "memcpy timing failed");
        double bw = 2.0 * (double)r.bytes / tc, bound = (double)r.bytes / bw;
        for (int64_t T = 1; T <= 64; T *= 64) {
            r.T = T;
            double t = timed(o, call_linear, &r, iters, &e);
            if (t <= 0)
                return fail(name, e.msg);
            printf("%-28s %-9s T=%-3lld %8.2f us  bytes %6.2f MiB  bound %7.2f us (d2d %6.0f GB/s)  ratio %5.2f"
                   "  %7.1f GFLOP/s\n",
                   name, dsv4_lw_fmt_name((dsv4_lw_fmt)f), (long long)T, t * 1e6, (double)r.bytes / 1048576.0,
                   bound * 1e6, bw * 1e-9, t / bound, 2.0 * (double)T * (double)out * (double)in / t * 1e-9);
        }
        for (int c = 0; c < r.ncopy; c++) {
            o->lin_free(o, &r.w[c]);
            o->free(o, r.src[c]);
            o->free(o, r.dst[c]);
        }
        o->free(o, r.x);
        o->free(o, r.y);
        free(r.w);
        free(r.src);
        free(r.dst);
        free(h.w);
        free(h.s);
    }
    return 0;
}
#endif

int main(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 50;
    if (iters < 1)
        iters = 1;
#ifdef DSV4_CUDA
    if (dsv4_gpu_count() == 0) {
        printf("bench_ops_cuda: no CUDA GPU on this machine; nothing to measure\n");
        return 0;
    }
    dsv4_err e;
    dsv4_ops *o = dsv4_ops_cuda(&e);
    if (!o)
        return fail("backend", e.msg);
    printf("bench_ops_cuda: linear per call (CUDA events, %d calls each, weights cycled past the L2); bound = "
           "bytes / d2d-memcpy bandwidth\n", iters);
    int rc = bench_shape(o, "flash proj [4096 x 4096]", 4096, 4096, iters) ||
             bench_shape(o, "flash expert w1 [2048 x 4096]", 2048, 4096, iters);
    dsv4_ops_release(o);
    return rc;
#else
    (void)argv;
    printf("bench_ops_cuda: built without CUDA (make CUDA=0); nothing to measure\n");
    return 0;
#endif
}
