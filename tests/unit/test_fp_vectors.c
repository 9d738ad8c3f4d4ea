/* The float encoders and decoders against tests/data/fp_vectors.bin, which ml_dtypes and numpy
 * produced (tests/gen/gen_fp_vectors.py documents the layout and the versions). Exact comparison;
 * where a NaN is expected, the checks below say what must match. */
#include "harness.h"
#include "formats/fp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HDR 64
#define NDEC (256 * 3 + 16)

typedef struct {
    uint8_t *buf;
    size_t len;
    uint32_t n;
    const uint8_t *dec, *rec;
} vectors;

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static float bits_f32(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static uint32_t f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static int load(vectors *v)
{
    FILE *f = fopen(th_path("tests/data/fp_vectors.bin"), "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    v->len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    v->buf = malloc(v->len);
    size_t got = v->buf ? fread(v->buf, 1, v->len, f) : 0;
    fclose(f);
    if (got != v->len || v->len < HDR + 4 * NDEC || memcmp(v->buf, "DSV4FPV1", 8) != 0 ||
        le32(v->buf + 12) != 16)
        return -1;
    v->n = le32(v->buf + 8);
    v->dec = v->buf + HDR;
    v->rec = v->dec + 4 * NDEC;
    return v->len == HDR + 4 * NDEC + (size_t)v->n * 16 ? 0 : -1;
}

TEST(fp_vectors_decode_tables)
{
    vectors v;
    REQUIRE(load(&v) == 0);
    float (*dec[4])(uint8_t) = {dsv4_e4m3_to_f32, dsv4_e5m2_to_f32, dsv4_e8m0_to_f32, dsv4_e2m1_to_f32};
    const char *names[4] = {"e4m3", "e5m2", "e8m0", "e2m1"};
    for (int t = 0; t < 4; t++) {
        int ncodes = t == 3 ? 16 : 256;
        for (int c = 0; c < ncodes; c++) {
            uint32_t want = le32(v.dec + 4 * (256 * t + c)), got = f32_bits(dec[t]((uint8_t)c));
            if (isnan(bits_f32(want)))
                CHECK_MSG(isnan(bits_f32(got)), "%s code 0x%02x: want NaN, got 0x%08x", names[t], c, got);
            else
                CHECK_MSG(got == want, "%s code 0x%02x: want 0x%08x, got 0x%08x", names[t], c, want, got);
        }
    }
    free(v.buf);
}

/* 16-bit results: bf16 is compared exactly (ml_dtypes also gives the canonical 0x7FC0 NaN); for f16
 * numpy keeps NaN payload bits while we quieten and drop them, so a NaN needs only NaN + sign. */
static void check16(const char *what, uint32_t in, uint16_t want, uint16_t got, int nan_loose)
{
    int want_nan = (want & 0x7FFF) > (nan_loose ? 0x7C00 : 0x7F80);
    int got_nan = (got & 0x7FFF) > (nan_loose ? 0x7C00 : 0x7F80);
    if (nan_loose && want_nan)
        CHECK_MSG(got_nan && (got & 0x8000) == (want & 0x8000), "%s(0x%08x): want NaN 0x%04x, got 0x%04x",
                  what, in, want, got);
    else
        CHECK_MSG(got == want, "%s(0x%08x) [%g]: want 0x%04x, got 0x%04x", what, in,
                  (double)bits_f32(in), want, got);
}

static void check8(const char *what, uint32_t in, unsigned want, unsigned got)
{
    CHECK_MSG(got == want, "%s(0x%08x) [%g]: want 0x%02x, got 0x%02x", what, in, (double)bits_f32(in),
              want, got);
}

TEST(fp_vectors_encode)
{
    vectors v;
    REQUIRE(load(&v) == 0);
    CHECK(v.n > 5000);
    for (uint32_t i = 0; i < v.n; i++) {
        const uint8_t *r = v.rec + 16 * (size_t)i;
        uint32_t in = le32(r);
        float x = bits_f32(in);
        check16("bf16", in, le16(r + 4), dsv4_f32_to_bf16(x), 0);
        check16("f16", in, le16(r + 6), dsv4_f32_to_f16(x), 1);
        check8("e4m3/cast", in, r[8], dsv4_f32_to_e4m3(x, DSV4_FP_CAST));
        check8("e4m3/sat", in, r[9], dsv4_f32_to_e4m3(x, DSV4_FP_SAT));
        check8("e5m2/cast", in, r[10], dsv4_f32_to_e5m2(x, DSV4_FP_CAST));
        check8("e5m2/sat", in, r[11], dsv4_f32_to_e5m2(x, DSV4_FP_SAT));
        check8("e8m0", in, r[12], dsv4_f32_to_e8m0(x));
        if (isnan(x)) /* documented difference: ml_dtypes gives ±0 with the sign inverted, we give +0 */
            check8("e2m1(NaN)", in, 0, dsv4_f32_to_e2m1(x));
        else
            check8("e2m1", in, r[13], dsv4_f32_to_e2m1(x));
        if ((in >> 31) == 0 && ((in >> 23) & 0xFF) != 0 && ((in >> 23) & 0xFF) != 0xFF)
            check8("ceil_pow2", in, r[14], dsv4_e8m0_ceil_pow2(x));
        if (th_failures() > 20)
            break;
    }
    free(v.buf);
}

TEST(fp_vectors_rows_match_scalars)
{
    vectors v;
    REQUIRE(load(&v) == 0);
    float *x = malloc(v.n * sizeof *x);
    uint8_t *b8 = malloc(v.n), *b16 = malloc(2 * (size_t)v.n);
    REQUIRE(x && b8 && b16);
    for (uint32_t i = 0; i < v.n; i++)
        x[i] = bits_f32(le32(v.rec + 16 * (size_t)i));
    CHECK(dsv4_encode_row(DSV4_F8_E4M3, x, b8, v.n, DSV4_FP_SAT) == 0);
    for (uint32_t i = 0; i < v.n; i++)
        check8("row e4m3/sat", f32_bits(x[i]), v.rec[16 * (size_t)i + 9], b8[i]);
    CHECK(dsv4_encode_row(DSV4_F8_E5M2, x, b8, v.n, DSV4_FP_CAST) == 0);
    for (uint32_t i = 0; i < v.n; i++)
        check8("row e5m2/cast", f32_bits(x[i]), v.rec[16 * (size_t)i + 10], b8[i]);
    CHECK(dsv4_encode_row(DSV4_F8_E8M0, x, b8, v.n, DSV4_FP_SAT) == 0);
    for (uint32_t i = 0; i < v.n; i++)
        check8("row e8m0", f32_bits(x[i]), v.rec[16 * (size_t)i + 12], b8[i]);
    CHECK(dsv4_encode_row(DSV4_BF16, x, b16, v.n, DSV4_FP_SAT) == 0);
    for (uint32_t i = 0; i < v.n; i++)
        check16("row bf16", f32_bits(x[i]), le16(v.rec + 16 * (size_t)i + 4), le16(b16 + 2 * i), 0);
    CHECK(dsv4_encode_row(DSV4_F16, x, b16, v.n, DSV4_FP_SAT) == 0);
    for (uint32_t i = 0; i < v.n; i++)
        check16("row f16", f32_bits(x[i]), le16(v.rec + 16 * (size_t)i + 6), le16(b16 + 2 * i), 1);
    free(x);
    free(b8);
    free(b16);
    free(v.buf);
}
