/* kernels/gptq_math.h against libquant/formats and the compressed-tensors packers: every encoder
 * and decoder of the shared GPTQ arithmetic equals the formats/ conversion it stands in for (all
 * e4m3 codes, a dense strided sweep of float bit patterns, the values around every rounding
 * boundary, random values), the INT4 and NVFP4 scales and codes equal what quant/pack_int4.c and
 * quant/pack_nvfp4.c store, and the MSE observers pick a candidate no worse than min-max. */
#include "harness.h"
#include "formats/fp.h"
#include "gptq_math.h"
#include "quant/pack.h"

#include <math.h>
#include <string.h>

#define SWEEP_STRIDE 61u /* odd and prime: every mantissa residue is visited across exponents */

static uint32_t bits(float x) { return dsv4_f32_bits(x); }
static float from_bits(uint32_t u) { return dsv4_bits_f32(u); }

/* compressed-tensors' code for y (quant/pack_nvfp4.c nvfp4_code): clamp, +-0 -> 0, else RNE E2M1 */
static uint32_t ref_e2m1_code(float y)
{
    y = y < -6.0f ? -6.0f : y > 6.0f ? 6.0f : y;
    return y == 0.0f ? 0u : dsv4_f32_to_e2m1(y);
}

static float ref_bf16(float x) { return dsv4_bf16_to_f32(dsv4_f32_to_bf16(x)); }

TEST(gptq_math_decoders)
{
    for (uint32_t b = 0; b < 256; b++) {
        if ((b & 0x7Fu) == 0x7Fu) /* e4m3fn NaN: gptq_math never produces it (codes saturate at 0x7E) */
            continue;
        CHECK_MSG(bits(dsv4_gq_e4m3_value(b)) == bits(dsv4_e4m3_to_f32((uint8_t)b)), "e4m3 %02X", b);
    }
    for (uint32_t c = 0; c < 16; c++)
        CHECK_MSG(bits(dsv4_gq_e2m1_value(c)) == bits(dsv4_e2m1_to_f32((uint8_t)c)), "e2m1 %X", c);
}

/* One float against every encoder that takes it. */
static int check_one(float x)
{
    int bad = 0;
    float b = dsv4_gq_bf16(x), r = ref_bf16(x);
    if (isnan(x) ? !isnan(b) : bits(b) != bits(r)) {
        CHECK_MSG(0, "bf16(%a): %a != %a", (double)x, (double)b, (double)r);
        bad = 1;
    }
    if (!isnan(x)) {
        if (bits(dsv4_gq_fabs(x)) != bits(fabsf(x))) {
            CHECK_MSG(0, "fabs(%a)", (double)x);
            bad = 1;
        }
        if (dsv4_gq_e2m1_code(x) != ref_e2m1_code(x)) {
            CHECK_MSG(0, "e2m1 code(%a): %u != %u", (double)x, dsv4_gq_e2m1_code(x), ref_e2m1_code(x));
            bad = 1;
        }
        float a = fabsf(x);
        if (dsv4_gq_e4m3_code(a) != dsv4_f32_to_e4m3(a, DSV4_FP_SAT)) {
            CHECK_MSG(0, "e4m3 code(%a): %u != %u", (double)a, dsv4_gq_e4m3_code(a), dsv4_f32_to_e4m3(a, DSV4_FP_SAT));
            bad = 1;
        }
    }
    return bad;
}

TEST(gptq_math_encoders_sweep)
{
    int bad = 0;
    for (uint64_t u = 0; u <= 0xFFFFFFFFull && bad < 10; u += SWEEP_STRIDE)
        bad += check_one(from_bits((uint32_t)u));
    /* the specials and both zeros */
    const float sp[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 0x1p-149f, -0x1p-149f, 0x1p-126f, 448.0f, 464.0f,
                        6.0f, -6.0f, 1e30f, -1e30f};
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++)
        bad += check_one(sp[i]);
    /* every rounding boundary: each representable value, the midpoints to the next, one ulp either side */
    for (uint32_t c = 0; c < 0x7E; c++) {
        float v = dsv4_e4m3_to_f32((uint8_t)c), w = dsv4_e4m3_to_f32((uint8_t)(c + 1)), m = (v + w) / 2;
        float pts[] = {v, m, nextafterf(m, 0.0f), nextafterf(m, INFINITY), w};
        for (int i = 0; i < 5; i++)
            bad += check_one(pts[i]);
    }
    for (uint32_t c = 0; c < 7; c++) {
        float v = dsv4_e2m1_to_f32((uint8_t)c), w = dsv4_e2m1_to_f32((uint8_t)(c + 1)), m = (v + w) / 2;
        float pts[] = {v, m, nextafterf(m, 0.0f), nextafterf(m, INFINITY), -m, -nextafterf(m, 0.0f),
                       -nextafterf(m, INFINITY)};
        for (int i = 0; i < 7; i++)
            bad += check_one(pts[i]);
    }
    for (int i = 0; i < 200000; i++) {
        bad += check_one(from_bits((uint32_t)th_rand()));
        bad += check_one(th_randf(-8.0f, 8.0f));
    }
    CHECK_EQ_INT(bad, 0);
}

/* rne(clamp(bf16(w / s), -8, 7)) with libm's rint: the torch arithmetic of quant/pack_int4.c. */
static int ref_int4_q(float w, float s)
{
    float y = ref_bf16(w / s);
    y = y < -8.0f ? -8.0f : y > 7.0f ? 7.0f : y;
    return (int)rintf(y);
}

TEST(gptq_math_int4_q_random)
{
    int bad = 0;
    for (int i = 0; i < 1000000 && bad < 10; i++) {
        float s = ref_bf16(ldexpf(th_randf(1.0f, 2.0f), (int)(th_rand() % 40) - 30));
        float w = ref_bf16(s * th_randf(-9.0f, 9.0f));
        if (i % 4 == 0) /* exact half-integers and integers of w / s */
            w = s * (float)((int)(th_rand() % 37) - 18) * 0.5f;
        int q = dsv4_gq_int4_q(w, s), r = ref_int4_q(w, s);
        if (q != r) {
            CHECK_MSG(0, "q(%a, %a): %d != %d", (double)w, (double)s, q, r);
            bad++;
        }
        float v = dsv4_gq_int4_value(q, s);
        if (bits(v) != bits(ref_bf16((float)q * s))) {
            CHECK_MSG(0, "value(%d, %a)", q, (double)s);
            bad++;
        }
    }
}

/* Random BF16 rows of several groups, magnitudes spread over many binades, one group all zero. */
static void random_row(uint16_t *w, int k, int group)
{
    for (int g = 0; g < k / group; g++) {
        float mag = ldexpf(1.0f, (int)(th_rand() % 24) - 16);
        for (int i = 0; i < group; i++)
            w[g * group + i] = g == 1 ? 0 : dsv4_f32_to_bf16(mag * th_randf(-1.0f, 1.0f));
    }
}

TEST(gptq_math_int4_equals_rtn)
{
    enum { K = 512 };
    static const int groups[] = {32, 64, 128};
    for (int gi = 0; gi < 3; gi++)
        for (int rep = 0; rep < 200; rep++) {
            int group = groups[gi];
            uint16_t w[K], scale[K / 32];
            int32_t packed[K / 8];
            int8_t q[K];
            float x[K];
            dsv4_err e;
            random_row(w, K, group);
            REQUIRE(dsv4_int4_rtn(w, 1, K, group, packed, scale, &e) == 0);
            dsv4_int4_unpack(packed, 1, K, q);
            for (int i = 0; i < K; i++)
                x[i] = dsv4_bf16_to_f32(w[i]);
            for (int g = 0; g < K / group; g++) {
                float s = dsv4_gq_int4_scale(dsv4_gq_amax(x + g * group, group, 1));
                REQUIRE(dsv4_f32_to_bf16(s) == scale[g] && ref_bf16(s) == s);
                for (int i = g * group; i < (g + 1) * group; i++)
                    CHECK_MSG(dsv4_gq_int4_q(x[i], s) == q[i], "group %d element %d", group, i);
            }
        }
}

TEST(gptq_math_nvfp4_equals_rtn)
{
    enum { K = 256 };
    for (int rep = 0; rep < 400; rep++) {
        uint16_t w[K];
        uint8_t packed[K / 2], scale[K / 16];
        float x[K];
        dsv4_err e;
        random_row(w, K, 16);
        float gs = dsv4_nvfp4_global_scale(dsv4_bf16_amax(w, K));
        if (rep % 3 == 0) /* a global scale that pushes some local scales into saturation or to zero */
            gs = ldexpf(1.0f, (int)(th_rand() % 40) - 10);
        REQUIRE(dsv4_nvfp4_rtn(w, 1, K, gs, packed, scale, &e) == 0);
        for (int i = 0; i < K; i++)
            x[i] = dsv4_bf16_to_f32(w[i]);
        for (int g = 0; g < K / 16; g++) {
            uint32_t sc = dsv4_gq_nvfp4_scale(dsv4_gq_amax(x + g * 16, 16, 1), gs);
            REQUIRE(sc == scale[g]);
            float eff = dsv4_gq_nvfp4_eff(sc, gs);
            CHECK(bits(eff) == bits(dsv4_e4m3_to_f32((uint8_t)sc) / gs));
            for (int i = g * 16; i < (g + 1) * 16; i++) {
                uint32_t want = (packed[i / 2] >> (4 * (i % 2))) & 15u;
                CHECK_MSG(dsv4_gq_e2m1_code(x[i] / eff) == want, "rep %d element %d", rep, i);
            }
        }
    }
}

/* Σ |fq(x) - x|^2.4 of a group under an INT4 scale or an NVFP4 effective scale (double). */
static double grp_err(const float *x, int n, int nvfp4, float s)
{
    double err = 0.0;
    for (int i = 0; i < n; i++) {
        float v = nvfp4 ? dsv4_gq_e2m1_value(dsv4_gq_e2m1_code(x[i] / s)) * s : dsv4_gq_int4_value(dsv4_gq_int4_q(x[i], s), s);
        err += pow(fabs((double)v - (double)x[i]), DSV4_GQ_MSE_NORM);
    }
    return err;
}

TEST(gptq_math_mse_observer)
{
    int shrunk = 0;
    for (int rep = 0; rep < 300; rep++) {
        float x[128];
        int n = rep % 2 ? 16 : 128, nv = rep % 2;
        for (int i = 0; i < n; i++) /* heavy tails: a few outliers make shrinking pay */
            x[i] = th_randf(-1.0f, 1.0f) * (th_rand() % 16 == 0 ? 4.0f : 1.0f);
        float amax = dsv4_gq_amax(x, n, 1), gs = 448.0f * 6.0f / 4.0f, s_mm, s_mse;
        if (nv) {
            s_mm = dsv4_gq_nvfp4_eff(dsv4_gq_nvfp4_scale(amax, gs), gs);
            s_mse = dsv4_gq_nvfp4_eff(dsv4_gq_nvfp4_scale_mse(x, n, 1, gs), gs);
        } else {
            s_mm = dsv4_gq_int4_scale(amax);
            s_mse = dsv4_gq_int4_scale_mse(x, n, 1);
        }
        int cand = 0;
        for (int i = 0; i < DSV4_GQ_MSE_STEPS; i++) {
            float p = 1.0f - (float)i / (float)DSV4_GQ_MSE_GRID;
            float s = nv ? dsv4_gq_nvfp4_eff(dsv4_gq_nvfp4_scale(p * amax, gs), gs) : dsv4_gq_int4_scale(p * amax);
            cand |= s == s_mse;
        }
        CHECK_MSG(cand, "rep %d: the MSE scale %g is none of the shrink candidates", rep, (double)s_mse);
        /* the observer's float sum and this double sum may order near-ties differently */
        CHECK_MSG(grp_err(x, n, nv, s_mse) <= grp_err(x, n, nv, s_mm) * (1 + 1e-5), "rep %d", rep);
        shrunk += s_mse < s_mm;
    }
    printf("  mse observer: %d of 300 groups chose a shrunk scale\n", shrunk);
    CHECK(shrunk > 0);
    /* a strided view observes the same values */
    float y[64];
    for (int i = 0; i < 64; i++)
        y[i] = th_randf(-3.0f, 3.0f);
    float z[32];
    for (int i = 0; i < 32; i++)
        z[i] = y[2 * i];
    CHECK(dsv4_gq_int4_scale_mse(y, 32, 2) == dsv4_gq_int4_scale_mse(z, 32, 1));
    CHECK(dsv4_gq_amax(y, 32, 2) == dsv4_gq_amax(z, 32, 1));
}
