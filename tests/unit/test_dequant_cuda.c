/* The CUDA dequant kernels against the CPU ones on random inputs (every e4m3 code, every FP4 byte,
 * the fixture's scale range 110..130 and the full 0..254 range), for both output dtypes, on
 * shapes that take the vectorized and the byte paths (a thread takes 8 weight bytes for f32
 * output and 16 for bf16; rows not a multiple of that take the byte path). Dequant is exact (a code times a power of
 * two, then one RNE step for bf16), so the comparison is bit for bit with tolerance 0; only NaN
 * elements (NaN codes) compare as "both NaN", because the GPU's multiply returns its own NaN
 * bits. Device outputs are poisoned with a NaN pattern first, so unwritten elements show.
 * Without a GPU (or built with CUDA=0) it prints SKIP and passes without asserting. */
#include "harness.h"
#include "dequant_cases.h"
#include "gpu.h"

#include <stdlib.h>
#include <string.h>

static const dq_case cases[] = {
    {DSV4_QFMT_FP8_BLOCK, 1024, 4096, 110, 130}, /* vectorized path */
    {DSV4_QFMT_FP8_BLOCK, 300, 520, 0, 254},     /* 520 % 16 != 0: bf16 byte path, partial blocks */
    {DSV4_QFMT_FP8_BLOCK, 70, 100, 0, 254},      /* 100 % 8 != 0: byte path for both outputs */
    {DSV4_QFMT_FP8_BLOCK, 129, 16, 110, 130},
    {DSV4_QFMT_FP4, 512, 2048, 110, 130},        /* vectorized path */
    {DSV4_QFMT_FP4, 257, 72, 0, 254},            /* 72 % 16 != 0: bf16 byte path, partial group */
    {DSV4_QFMT_FP4, 9, 36, 0, 254},              /* 36 % 8 != 0: byte path for both outputs */
};

static void run_case(const dq_case *c, dsv4_dtype out_t)
{
    dsv4_qweight q, dq;
    int64_t n = dq_case_make(c, &q);
    size_t esz = out_t == DSV4_F32 ? 4 : 2, nw = (size_t)(q.w_rows * q.w_cols), ns = (size_t)(q.s_rows * q.s_cols);
    void *ref = malloc((size_t)n * esz), *got = malloc((size_t)n * esz);
    dsv4_err e;
    void *dw = dsv4_gpu_malloc(nw, &e), *ds = dsv4_gpu_malloc(ns, &e), *dout = dsv4_gpu_malloc((size_t)n * esz, &e);
    if (!q.w || !q.s || !ref || !got || !dw || !ds || !dout) {
        th_fail(__FILE__, __LINE__, "allocation failed: %s", e.msg);
        goto out;
    }
    dq_poison(out_t, ref, n);
    CHECK(dsv4_dequant_cpu(c->fmt, &q, out_t, ref, &e) == 0);
    dq_poison(out_t, got, n);
    dq = q;
    dq.w = dw;
    dq.s = ds;
    if (dsv4_gpu_upload(dw, q.w, nw, &e) || dsv4_gpu_upload(ds, q.s, ns, &e) ||
        dsv4_gpu_upload(dout, got, (size_t)n * esz, &e) || dsv4_dequant_cuda_dev(c->fmt, &dq, out_t, dout, NULL, &e) ||
        dsv4_gpu_sync(&e) || dsv4_gpu_download(got, dout, (size_t)n * esz, &e)) {
        th_fail(__FILE__, __LINE__, "GPU run failed: %s", e.msg);
        goto out;
    }
    CHECK_EQ_INT(dq_poisoned(out_t, ref, n), 0);
    CHECK_EQ_INT(dq_poisoned(out_t, got, n), 0);
    int64_t d = dq_first_diff(out_t, ref, got, n);
    CHECK_MSG(d == 0, "%s [%lld, %lld] -> %s: first difference at element %lld",
              c->fmt == DSV4_QFMT_FP4 ? "FP4" : "FP8", (long long)c->w_rows, (long long)c->w_cols,
              dsv4_dtype_name(out_t), (long long)d - 1);
    /* the host-pointer entry point gives the same */
    dq_poison(out_t, got, n);
    CHECK(dsv4_dequant_cuda(c->fmt, &q, out_t, got, &e) == 0);
    CHECK(dq_first_diff(out_t, ref, got, n) == 0);
out:
    dsv4_gpu_free(dw);
    dsv4_gpu_free(ds);
    dsv4_gpu_free(dout);
    free(ref);
    free(got);
    dq_case_free(&q);
}

TEST(dequant_cuda_matches_cpu)
{
    if (dsv4_gpu_count() == 0) {
        printf("SKIP dequant_cuda_matches_cpu: no CUDA GPU (dsv4_gpu_count() == 0)\n");
        return;
    }
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        run_case(&cases[c], DSV4_F32);
        run_case(&cases[c], DSV4_BF16);
    }
    dsv4_err e;
    uint8_t w[16] = {0}, s[1] = {127};
    dsv4_qweight bad = {"mtp.0.e_proj.weight", w, s, 1, 16, 2, 1};
    float out[16];
    CHECK(dsv4_dequant_cuda(DSV4_QFMT_FP8_BLOCK, &bad, DSV4_F32, out, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "mtp.0.e_proj.weight");
}
