/* Dense values back to MXFP4 (quant/pack.h dsv4_mxfp4_from_bf16) and the NVFP4 job that uses it
 * (artifact/convert_job.h): release FP4 dequantized to BF16 is recognized and re-encoded so that
 * it dequantizes bit for bit to the same values (negative zeros, all-zero groups, the largest and
 * smallest e8m0 exponents included); one value off the grid, a non-E2M1 ratio or a width that is
 * not a multiple of 32 is refused. An NVFP4 job from such BF16 values converts exactly (with a
 * power-of-two global scale), one from values off the grid is compressed-tensors' RTN; a fused
 * partner of another shape (attn.wkv beside wq_a) sets the global scale from its own values. */
#include "harness.h"
#include "artifact/convert_job.h"
#include "formats/dequant.h"
#include "formats/fp.h"
#include "quant/pack.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Random release FP4 [rows, in] (codes, e8m0 scales lo .. lo + spread; group 1 of row 0 all ±0)
 * dequantized to BF16 into *v (malloc'd); the FP4 bytes and scales into *w, *s when not NULL. */
static void fp4_values(int64_t rows, int64_t in, int lo, int spread, uint16_t **v, uint8_t **w, uint8_t **s)
{
    int64_t nb = in / 2, ng = in / 32;
    uint8_t *pw = malloc((size_t)(rows * nb)), *ps = malloc((size_t)(rows * ng));
    for (int64_t i = 0; i < rows * nb; i++)
        pw[i] = (uint8_t)th_rand();
    for (int64_t i = 0; i < rows * ng; i++)
        ps[i] = (uint8_t)(lo + (int)(th_rand() % (uint64_t)(spread + 1)));
    if (ng > 1)
        for (int i = 16; i < 32; i++)
            pw[i] = (uint8_t)(th_rand() & 0x88u); /* ±0 only */
    dsv4_qweight q = {"w", pw, ps, rows, nb, rows, ng};
    dsv4_err e;
    *v = malloc((size_t)(rows * in) * 2);
    if (dsv4_fp4_dequant_bf16(&q, *v, &e))
        th_fail(__FILE__, __LINE__, "%s", e.msg);
    if (w)
        *w = pw;
    else
        free(pw);
    if (s)
        *s = ps;
    else
        free(ps);
}

/* dsv4_mxfp4_from_bf16 of v, then dequantized again: 1 when accepted and equal bit for bit. */
static int roundtrip(const uint16_t *v, int64_t rows, int64_t in)
{
    uint8_t *p = malloc((size_t)(rows * in / 2) + 1), *s = malloc((size_t)(rows * in / 32) + 1);
    uint16_t *back = malloc((size_t)(rows * in) * 2 + 2);
    int ok = dsv4_mxfp4_from_bf16(v, rows, in, p, s);
    if (ok) {
        dsv4_qweight q = {"w", p, s, rows, in / 2, rows, in / 32};
        dsv4_err e;
        ok = dsv4_fp4_dequant_bf16(&q, back, &e) == 0 && memcmp(back, v, (size_t)(rows * in) * 2) == 0;
        CHECK_MSG(ok, "accepted but the values do not come back");
    }
    free(p);
    free(s);
    free(back);
    return ok;
}

TEST(mxfp4_from_bf16_roundtrips_release_values)
{
    int los[] = {100, 1, 230}; /* typical, near 2^-127 and near 2^127 */
    for (int k = 0; k < 3; k++) {
        uint16_t *v;
        fp4_values(6, 128, los[k], 20, &v, NULL, NULL);
        CHECK_MSG(roundtrip(v, 6, 128), "scales from e8m0 %d", los[k]);
        free(v);
    }
}

TEST(mxfp4_from_bf16_refuses_values_off_the_grid)
{
    uint16_t *v;
    fp4_values(4, 64, 110, 8, &v, NULL, NULL);
    REQUIRE(roundtrip(v, 4, 64));
    uint16_t keep = v[77];
    v[77] = (uint16_t)(v[77] ^ 1u); /* one BF16 ulp off (nonzero: flips the last mantissa bit) */
    CHECK(!roundtrip(v, 4, 64));
    v[77] = keep;
    for (int i = 64; i < 96; i++) /* a group whose values are 5 · 2^t: not E2M1 under any power of two */
        v[i] = dsv4_f32_to_bf16(i % 2 ? 5.0f : -2.5f);
    CHECK(!roundtrip(v, 4, 64));
    CHECK(!roundtrip(v, 1, 48)); /* 48 inputs: not a multiple of 32 */
    free(v);
}

TEST(mxfp4_from_bf16_keeps_signed_zeros)
{
    uint16_t v[32];
    for (int i = 0; i < 32; i++)
        v[i] = i % 3 ? 0x8000u : 0x0000u; /* -0.0 and +0.0 */
    CHECK(roundtrip(v, 1, 32));
    v[5] = dsv4_f32_to_bf16(0x1p-130f); /* 2^-130 = 0.5 · 2^-129: needs an exponent below e8m0's 2^-127 */
    CHECK(!roundtrip(v, 1, 32));
}

/* A BF16 tensor [rows, cols] over `data` (not owned). */
static dsv4_tensor bf16_tensor(const char *name, int64_t rows, int64_t cols, const uint16_t *data)
{
    dsv4_tensor t = {.name = (char *)name, .dtype = DSV4_BF16, .ndim = 2, .shape = {rows, cols},
                     .end = (uint64_t)(rows * cols) * 2, .data = (const uint8_t *)data};
    return t;
}

/* Runs an NVFP4 job of a over [rows, cols] with partner b (may be NULL) and dequantizes the result. */
static float run_nvfp4(const dsv4_tensor *a, const dsv4_tensor *b, int64_t rows, int64_t cols, float *out)
{
    dsv4_plan_job j = {.kind = DSV4_JOB_NVFP4, .src = {a, NULL, b, NULL}, .n_out = 3, .rows = rows, .cols = cols};
    uint8_t *p = malloc((size_t)(rows * cols / 2)), *s = malloc((size_t)(rows * cols / 16));
    float gs = 0.0f;
    uint8_t *dst[3] = {p, s, (uint8_t *)&gs};
    dsv4_job_report rep;
    dsv4_err e;
    if (dsv4_job_run(&j, NULL, dst, &rep, &e) || dsv4_nvfp4_dequant(p, s, gs, rows, cols, out, &e))
        th_fail(__FILE__, __LINE__, "%s", e.msg);
    free(p);
    free(s);
    return gs;
}

TEST(nvfp4_job_from_bf16_fp4_values_is_exact)
{
    int64_t R = 8, C = 64;
    uint16_t *va, *vb;
    fp4_values(R, C, 118, 6, &va, NULL, NULL);
    fp4_values(R, C, 120, 6, &vb, NULL, NULL);
    dsv4_tensor a = bf16_tensor("layers.0.ffn.experts.0.w1.weight", R, C, va);
    dsv4_tensor b = bf16_tensor("layers.0.ffn.experts.0.w3.weight", R, C, vb);
    dsv4_plan_job j = {.kind = DSV4_JOB_NVFP4, .src = {&a, NULL, &b, NULL}, .n_out = 3, .rows = R, .cols = C};
    CHECK(dsv4_job_nvfp4_exact(&j));
    int exact = 0;
    float gs_scale = 0.0f, out[8 * 64];
    dsv4_err e;
    REQUIRE(dsv4_job_nvfp4_scale(&j, &exact, &gs_scale, &e) == 0);
    CHECK(exact);
    float gs = run_nvfp4(&a, &b, R, C, out);
    CHECK(gs == gs_scale);
    int m;
    CHECK(frexpf(gs, &m) == 0.5f); /* a power of two */
    for (int64_t i = 0; i < R * C; i++) {
        float x = dsv4_bf16_to_f32(va[i]);
        CHECK_MSG(memcmp(&x, &out[i], 4) == 0, "value %lld: %g became %g", (long long)i, (double)x, (double)out[i]);
    }
    free(va);
    free(vb);
}

TEST(nvfp4_job_off_grid_is_rtn_with_the_partners_own_shape)
{
    /* wq_a [16, 64] beside a larger attn.wkv [32, 64] whose last rows hold the pair's amax. */
    int64_t R = 16, C = 64, RB = 32;
    uint16_t *va = malloc((size_t)(R * C) * 2), *vb = malloc((size_t)(RB * C) * 2);
    for (int64_t i = 0; i < R * C; i++)
        va[i] = dsv4_f32_to_bf16(th_randf(-1.0f, 1.0f));
    for (int64_t i = 0; i < RB * C; i++)
        vb[i] = dsv4_f32_to_bf16(i >= R * C ? th_randf(-3.0f, 3.0f) : th_randf(-0.5f, 0.5f));
    vb[RB * C - 1] = dsv4_f32_to_bf16(3.25f);
    dsv4_tensor a = bf16_tensor("layers.0.attn.wq_a.weight", R, C, va);
    dsv4_tensor b = bf16_tensor("layers.0.attn.wkv.weight", RB, C, vb);
    dsv4_plan_job j = {.kind = DSV4_JOB_NVFP4, .src = {&a, NULL, &b, NULL}, .n_out = 3, .rows = R, .cols = C};
    CHECK(!dsv4_job_nvfp4_exact(&j));
    float *out = malloc((size_t)(R * C) * sizeof *out), gs = run_nvfp4(&a, &b, R, C, out);
    CHECK(gs == dsv4_nvfp4_global_scale(3.25f));
    uint8_t *p = malloc((size_t)(R * C / 2)), *s = malloc((size_t)(R * C / 16));
    float *ref = malloc((size_t)(R * C) * sizeof *ref);
    dsv4_err e;
    REQUIRE(dsv4_nvfp4_rtn(va, R, C, gs, p, s, &e) == 0);
    REQUIRE(dsv4_nvfp4_dequant(p, s, gs, R, C, ref, &e) == 0);
    CHECK(memcmp(out, ref, (size_t)(R * C) * sizeof *out) == 0);
    free(va);
    free(vb);
    free(out);
    free(p);
    free(s);
    free(ref);
}
