/* Dequant throughput on real DeepSeek-V4-Flash shapes, against memcpy of the same bytes.
 *
 * Throughput is in GB/s (1e9 bytes/s) of INPUT bytes: the stored weight plus its e8m0 scales.
 * The reference is a single-threaded memcpy of those same input bytes, timed in the same run, and
 * "ratio" is dequant GB/s / memcpy GB/s. Random input (non-NaN e4m3 codes, random FP4 bytes,
 * scales 2^-12..2^-3 as in the fixture), one warm-up run, then the best of N runs.
 * When a GPU is present the CUDA kernels are measured too (cudaEvent timing inside
 * kernels/cuda/dequant.cu, against a device-to-device cudaMemcpy of the same input bytes).
 * Usage: bench_dequant [iterations]   (default 5) */
#include "dequant.h"
#include "gpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "util/clock.h"

typedef struct {
    const char *name;
    dsv4_qformat fmt;
    int64_t w_rows, w_cols; /* stored shape */
} shape;

static const shape shapes[] = {
    {"attn.wq_b  FP8 [32768,1024]", DSV4_QFMT_FP8_BLOCK, 32768, 1024},
    {"experts.w1 FP4 [2048,4096]", DSV4_QFMT_FP4, 2048, 2048},
};

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint8_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (uint8_t)((rng * 0x2545F4914F6CDD1DULL) >> 56);
}

static double best_memcpy(uint8_t *dst, const dsv4_qweight *q, int iters)
{
    size_t nw = (size_t)(q->w_rows * q->w_cols), ns = (size_t)(q->s_rows * q->s_cols);
    double best = 1e30;
    for (int it = -1; it < iters; it++) {
        double t = dsv4_now();
        memcpy(dst, q->w, nw);
        memcpy(dst + nw, q->s, ns);
        t = dsv4_now() - t;
        if (it >= 0 && t < best)
            best = t;
    }
    return best;
}

static double best_cpu(const shape *sh, const dsv4_qweight *q, dsv4_dtype out_t, void *out, int threads, int iters)
{
    double best = 1e30;
    dsv4_err e;
    for (int it = -1; it < iters; it++) {
        double t = dsv4_now();
        if (dsv4_dequant_cpu_mt(sh->fmt, q, out_t, out, threads, &e)) {
            fprintf(stderr, "bench_dequant: %s\n", e.msg);
            exit(1);
        }
        t = dsv4_now() - t;
        if (it >= 0 && t < best)
            best = t;
    }
    return best;
}

int main(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 5;
    if (iters < 1)
        iters = 1;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int gpus = dsv4_gpu_count();
    printf("bench_dequant: GB/s of input bytes (weight + e8m0 scales), best of %d; %ld CPU threads; %d GPU(s)\n",
           iters, ncpu, gpus);
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const shape *sh = &shapes[k];
        int fp4 = sh->fmt == DSV4_QFMT_FP4;
        int64_t in = fp4 ? 2 * sh->w_cols : sh->w_cols;
        dsv4_qweight q = {sh->name, NULL, NULL, sh->w_rows, sh->w_cols, fp4 ? sh->w_rows : (sh->w_rows + 127) / 128,
                          fp4 ? (in + 31) / 32 : (in + 127) / 128};
        size_t nw = (size_t)(q.w_rows * q.w_cols), ns = (size_t)(q.s_rows * q.s_cols), nout = (size_t)(q.w_rows * in);
        uint8_t *w = malloc(nw), *s = malloc(ns), *copy = malloc(nw + ns);
        void *out = malloc(nout * 4);
        if (!w || !s || !copy || !out) {
            fprintf(stderr, "bench_dequant: out of memory\n");
            return 1;
        }
        for (size_t i = 0; i < nw; i++) {
            uint8_t b = rnd();
            w[i] = (!fp4 && (b & 0x7F) == 0x7F) ? 0 : b;
        }
        for (size_t i = 0; i < ns; i++)
            s[i] = (uint8_t)(115 + rnd() % 10);
        q.w = w;
        q.s = s;
        double in_gb = (double)(nw + ns) * 1e-9;
        double mc = in_gb / best_memcpy(copy, &q, iters);
        printf("%s: input %.1f MiB, memcpy %.2f GB/s\n", sh->name, (double)(nw + ns) / 1048576.0, mc);
        static const dsv4_dtype outs[2] = {DSV4_F32, DSV4_BF16};
        for (int o = 0; o < 2; o++) {
            int tcounts[2] = {1, (int)ncpu};
            for (int t = 0; t < (ncpu > 1 ? 2 : 1); t++) {
                double gbs = in_gb / best_cpu(sh, &q, outs[o], out, tcounts[t], iters);
                printf("  cpu  -> %-4s %2d thread(s): %7.2f GB/s  ratio to memcpy %.3f\n",
                       dsv4_dtype_name(outs[o]), tcounts[t], gbs, gbs / mc);
            }
            if (gpus > 0) {
                double ks, ms;
                dsv4_err e;
                if (dsv4_dequant_cuda_bench(sh->fmt, &q, outs[o], iters, &ks, &ms, &e)) {
                    fprintf(stderr, "bench_dequant: %s\n", e.msg);
                    return 1;
                }
                printf("  cuda -> %-4s kernel: %8.2f GB/s  (d2d memcpy %8.2f GB/s, ratio %.3f)\n",
                       dsv4_dtype_name(outs[o]), in_gb / ks, in_gb / ms, ms / ks);
            }
        }
        free(w);
        free(s);
        free(copy);
        free(out);
    }
    return 0;
}
