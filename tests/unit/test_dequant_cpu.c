/* The CPU dequant kernel (kernels/cpu/dequant.c) equals libquant's single-threaded reference for
 * any thread count, writes every output element, and refuses bad output dtypes and shapes. */
#include "harness.h"
#include "dequant_cases.h"

#include <stdlib.h>
#include <string.h>

static const dq_case cases[] = {
    {DSV4_QFMT_FP8_BLOCK, 300, 520, 0, 254}, /* ragged: partial blocks, every scale byte */
    {DSV4_QFMT_FP8_BLOCK, 512, 1024, 110, 130},
    {DSV4_QFMT_FP4, 257, 72, 0, 254},        /* in = 144: a partial 32-group */
    {DSV4_QFMT_FP4, 384, 1024, 110, 130},
};

TEST(dequant_cpu_threads_match_reference)
{
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        dsv4_qweight q;
        int64_t n = dq_case_make(&cases[c], &q);
        float *ref = malloc((size_t)n * 4), *got = malloc((size_t)n * 4);
        uint16_t *refb = malloc((size_t)n * 2), *gotb = malloc((size_t)n * 2);
        REQUIRE(q.w && q.s && ref && got && refb && gotb);
        dsv4_err e;
        int fp4 = cases[c].fmt == DSV4_QFMT_FP4;
        REQUIRE((fp4 ? dsv4_fp4_dequant_f32(&q, ref, &e) : dsv4_fp8_block_dequant_f32(&q, ref, &e)) == 0);
        REQUIRE((fp4 ? dsv4_fp4_dequant_bf16(&q, refb, &e) : dsv4_fp8_block_dequant_bf16(&q, refb, &e)) == 0);
        static const int threads[] = {1, 2, 3, 7, 0};
        for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
            dq_poison(DSV4_F32, got, n);
            dq_poison(DSV4_BF16, gotb, n);
            CHECK(dsv4_dequant_cpu_mt(cases[c].fmt, &q, DSV4_F32, got, threads[t], &e) == 0);
            CHECK(dsv4_dequant_cpu_mt(cases[c].fmt, &q, DSV4_BF16, gotb, threads[t], &e) == 0);
            CHECK_EQ_INT(dq_poisoned(DSV4_F32, got, n), 0);
            CHECK_EQ_INT(dq_poisoned(DSV4_BF16, gotb, n), 0);
            CHECK_MSG(memcmp(ref, got, (size_t)n * 4) == 0, "case %zu, %d threads: f32 differs", c, threads[t]);
            CHECK_MSG(memcmp(refb, gotb, (size_t)n * 2) == 0, "case %zu, %d threads: bf16 differs", c, threads[t]);
        }
        free(ref);
        free(got);
        free(refb);
        free(gotb);
        dq_case_free(&q);
    }
}

TEST(dequant_cpu_refuses_bad_requests)
{
    uint8_t w[256] = {0}, s[2] = {127, 127};
    float out[256];
    dsv4_err e;
    dsv4_qweight q = {"layers.1.attn.wkv.weight", w, s, 1, 256, 1, 2};
    CHECK(dsv4_dequant_cpu(DSV4_QFMT_FP8_BLOCK, &q, DSV4_F16, out, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "layers.1.attn.wkv.weight");
    CHECK_STR_CONTAINS(e.msg, "F16");
    CHECK(dsv4_dequant_cpu(DSV4_QFMT_FP4, &q, DSV4_F32, out, &e) == -1); /* FP4 needs [1, 16] */
    CHECK_STR_CONTAINS(e.msg, "[1, 16]");
    CHECK(dsv4_dequant_cpu((dsv4_qformat)7, &q, DSV4_F32, out, &e) == -1);
    CHECK(dsv4_dequant_cpu(DSV4_QFMT_FP8_BLOCK, &q, DSV4_F32, out, &e) == 0);
}
