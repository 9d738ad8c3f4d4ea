/* pack-quantized INT4 (quant/pack.h): the spec's worked examples §6.1 (packed words and scales)
 * and §6.5 (the module's safetensors bytes, written with the project's writer), RTN against an
 * independent scalar reference over every finite BF16 input, pack/unpack round trips, dequant,
 * and refused shapes. */
#include "harness.h"
#include "pack_ref.h"
#include "formats/fp.h"
#include "io/st_plan.h"
#include "io/st_write.h"
#include "quant/pack.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint16_t bf(float x) { return dsv4_f32_to_bf16(x); }

/* The spec's §6.1 weight [2, 128]. */
static void spec61_weight(uint16_t w[2 * 128])
{
    static const float row1[16] = {7.5f, -7.5f, 3.5f, 2.5f, -0.5f, 0.5f, 1.5f, -1.5f,
                                   6.6f, -6.4f, 0.0f, -0.0f, 1.0f, -1.0f, 7.49f, -0.0f};
    for (int k = 0; k < 128; k++) {
        w[k] = bf((float)((k % 16) - 8) * 0.25f);
        w[128 + k] = k < 16 ? bf(row1[k]) : 0;
    }
}

TEST(pack_int4_spec_6_1)
{
    uint16_t w[256], s[2], deq[256];
    int32_t p[32];
    int8_t q[256];
    dsv4_err e;
    spec61_weight(w);
    CHECK_EQ_INT(w[128 + 8], 0x40D3);  /* 6.59375 */
    CHECK_EQ_INT(w[128 + 14], 0x40F0); /* 7.49 -> 7.5 */
    REQUIRE(dsv4_int4_rtn(w, 2, 128, 128, p, s, &e) == 0);
    CHECK_EQ_INT(s[0], 0x3E89);
    CHECK_EQ_INT(s[1], 0x3F80);
    for (int j = 0; j < 16; j++) {
        CHECK_EQ_INT((uint32_t)p[j], j % 2 ? 0xFEDCBA98u : 0x76543211u);
        uint32_t want1 = j == 0 ? 0x6A88AC0Fu : j == 1 ? 0x8F79882Fu : 0x88888888u;
        CHECK_EQ_INT((uint32_t)p[16 + j], want1);
    }
    CHECK_EQ_INT(p[0], 1985229329);
    CHECK_EQ_INT(p[1], -19088744);
    CHECK_EQ_INT(p[16], 1787341839);
    CHECK_EQ_INT(p[17], -1887860689);
    CHECK_EQ_INT(p[18], -2004318072);
    static const int8_t q0[16] = {-7, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7};
    static const int8_t q1[16] = {7, -8, 4, 2, 0, 0, 2, -2, 7, -6, 0, 0, 1, -1, 7, 0};
    dsv4_int4_unpack(p, 2, 128, q);
    CHECK(memcmp(q, q0, 16) == 0 && memcmp(q + 16, q0, 16) == 0);
    CHECK(memcmp(q + 128, q1, 16) == 0);
    for (int k = 16; k < 128; k++)
        CHECK(q[128 + k] == 0);
    REQUIRE(dsv4_int4_dequant(p, s, 2, 128, 128, deq, &e) == 0);
    /* row 0: -7 · 0.267578125 = -1.873046875 -> bf16 -1.875; row 1: exact integers */
    CHECK_EQ_INT(deq[0], bf(-1.875f));
    CHECK_EQ_INT(deq[128], bf(7.0f));
    CHECK_EQ_INT(deq[129], bf(-8.0f));
}

static int read_all(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    *len = fread(buf, 1, cap, f);
    fclose(f);
    return 0;
}

/* §6.5: the §6.1 module as compressed-tensors writes it, 484 bytes. */
TEST(pack_int4_spec_6_5_safetensors_bytes)
{
    uint16_t w[256], s[2];
    int32_t p[32];
    int64_t shape_val[2] = {2, 128};
    dsv4_err e;
    spec61_weight(w);
    REQUIRE(dsv4_int4_rtn(w, 2, 128, 128, p, s, &e) == 0);
    dsv4_st_plan pl;
    dsv4_st_plan_init(&pl, 0, 0);
    int64_t sh1[1] = {2}, sh2[2] = {2, 16}, sh3[2] = {2, 1};
    REQUIRE(dsv4_st_plan_add(&pl, "model.layers.0.mlp.down_proj.weight_packed", DSV4_I32, 2, sh2, &e) == 0);
    REQUIRE(dsv4_st_plan_add(&pl, "model.layers.0.mlp.down_proj.weight_scale", DSV4_BF16, 2, sh3, &e) == 0);
    REQUIRE(dsv4_st_plan_add(&pl, "model.layers.0.mlp.down_proj.weight_shape", DSV4_I64, 1, sh1, &e) == 0);
    REQUIRE(dsv4_st_plan_finish(&pl, &e) == 0);
    const void *data[3] = {p, s, shape_val};
    char out[4200], file[4300];
    snprintf(out, sizeof out, "%s/m", th_tmpdir());
    CHECK_MSG(dsv4_st_write_all(&pl, out, data, &e) == 0, "%s", e.msg);
    dsv4_st_plan_free(&pl);
    snprintf(file, sizeof file, "%s/model.safetensors", out);
    static uint8_t buf[1024];
    size_t len = 0;
    REQUIRE(read_all(file, buf, sizeof buf, &len) == 0);
    static const char hdr[] =
        "{\"__metadata__\":{\"format\":\"pt\"},\"model.layers.0.mlp.down_proj.weight_shape\":{\"dtype\":\"I64\","
        "\"shape\":[2],\"data_offsets\":[0,16]},\"model.layers.0.mlp.down_proj.weight_packed\":{\"dtype\":"
        "\"I32\",\"shape\":[2,16],\"data_offsets\":[16,144]},\"model.layers.0.mlp.down_proj.weight_scale\":"
        "{\"dtype\":\"BF16\",\"shape\":[2,1],\"data_offsets\":[144,148]}}  ";
    CHECK_EQ_INT(sizeof hdr - 1, 328);
    REQUIRE(len == 484);
    static const uint8_t n8[8] = {0x48, 0x01, 0, 0, 0, 0, 0, 0};
    CHECK(memcmp(buf, n8, 8) == 0);
    CHECK(memcmp(buf + 8, hdr, 328) == 0);
    const uint8_t *d = buf + 8 + 328;
    static const uint8_t d0[16] = {2, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t d1[8] = {0x11, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe};
    static const uint8_t d2[8] = {0x0f, 0xac, 0x88, 0x6a, 0x2f, 0x88, 0x79, 0x8f};
    static const uint8_t d3[4] = {0x89, 0x3e, 0x80, 0x3f};
    CHECK(memcmp(d, d0, 16) == 0);
    CHECK(memcmp(d + 16, d1, 8) == 0);
    CHECK(memcmp(d + 16 + 64, d2, 8) == 0);
    CHECK(d[16 + 72] == 0x88);
    CHECK(memcmp(d + 144, d3, 4) == 0);
}

/* Independent reference code: the quotient in double (exact up to the single final rounding),
 * bf16 by pack_ref.h's bit rule, RNE to an integer by hand. */
static int ref_code(float w, float s)
{
    float y = dsv4_bf16_to_f32(ref_bf16((double)w / (double)s));
    if (y < -8.0f)
        y = -8.0f;
    if (y > 7.0f)
        y = 7.0f;
    double fl = floor(y), fr = y - fl;
    int q = (int)fl;
    if (fr > 0.5 || (fr == 0.5 && (q & 1)))
        q++;
    return q;
}

/* Every finite BF16 value of magnitude <= amax, in groups whose first element is ±amax, for
 * several amax: codes equal the reference and lie in [-8, 7]; inside the range, |q·s - w| <=
 * 0.52·s (half a step plus the BF16 rounding of the quotient, at most 8·2^-9); outside it the code
 * is the clamp bound. */
TEST(pack_int4_rtn_matches_reference_on_all_bf16)
{
    enum { G = 128 };
    static const float amaxes[] = {2.0f, 7.5f, 1e-3f, 3.3e5f, 0.1f, 1e-38f};
    uint16_t *w = malloc(65536u * 2 * sizeof *w);
    int32_t *p = malloc(65536u * 2 / 8 * sizeof *p);
    uint16_t *s = malloc(65536u * 2 / G * sizeof *s);
    int8_t *q = malloc(65536u * 2);
    REQUIRE(w && p && s && q);
    dsv4_err e;
    for (size_t a = 0; a < sizeof amaxes / sizeof amaxes[0]; a++) {
        uint16_t am = bf(amaxes[a]);
        float amf = dsv4_bf16_to_f32(am);
        int64_t n = 0;
        for (uint32_t v = 0; v < 65536u; v++) {
            float f = dsv4_bf16_to_f32((uint16_t)v);
            if (n % G == 0) {
                w[n] = (n / G) % 2 ? am : (uint16_t)(am | 0x8000u); /* ±amax leads the group */
                n++;
            }
            if (isfinite(f) && fabsf(f) <= amf)
                w[n++] = (uint16_t)v;
        }
        while (n % G)
            w[n++] = 0;
        int64_t rows = n / G;
        REQUIRE(dsv4_int4_rtn(w, rows, G, G, p, s, &e) == 0);
        dsv4_int4_unpack(p, rows, G, q);
        float sref = dsv4_bf16_to_f32(ref_bf16((double)amf / 7.5));
        if (sref == 0.0f)
            sref = 0x1p-7f;
        int64_t bad = 0;
        for (int64_t r = 0; r < rows; r++) {
            CHECK_MSG(dsv4_bf16_to_f32(s[r]) == sref, "amax %g: scale %04x", (double)amf, s[r]);
            for (int c = 0; c < G; c++) {
                float x = dsv4_bf16_to_f32(w[r * G + c]);
                int want = ref_code(x, sref), got = q[r * G + c];
                double y = (double)x / sref;
                int in_range = y >= -8.0 && y <= 7.0;
                bad += want != got || got < -8 || got > 7 ||
                       (in_range ? fabs((double)got * sref - x) > 0.52 * sref : got != (y < 0 ? -8 : 7));
            }
        }
        CHECK_MSG(bad == 0, "amax %g: %lld codes differ from the reference", (double)amf, (long long)bad);
    }
    free(w);
    free(p);
    free(s);
    free(q);
}

/* A zero row gets the BF16 eps 2^-7 as its scale, and codes 0 (u = 8). */
TEST(pack_int4_zero_group_scale_is_eps)
{
    uint16_t w[2 * 64] = {0}, s[4], d[128];
    int32_t p[16];
    dsv4_err e;
    w[64 + 3] = 0x8000; /* -0.0 */
    w[64 + 40] = bf(3.0f);
    REQUIRE(dsv4_int4_rtn(w, 2, 64, 32, p, s, &e) == 0);
    CHECK_EQ_INT(s[0], 0x3C00);
    CHECK_EQ_INT(s[1], 0x3C00);
    CHECK_EQ_INT(s[2], 0x3C00);
    CHECK_EQ_INT(s[3], bf(3.0f / 7.5f));
    for (int i = 0; i < 12; i++)
        CHECK_EQ_INT((uint32_t)p[i], 0x88888888u);
    REQUIRE(dsv4_int4_dequant(p, s, 2, 64, 32, d, &e) == 0);
    for (int i = 0; i < 104; i++)
        CHECK_EQ_INT(d[i], 0);
}

/* pack∘unpack is the identity on codes in [-8, 7] (also for K not a multiple of 8, padded as
 * compressed-tensors does), and dequant is (q)·s rounded to BF16. */
TEST(pack_int4_pack_unpack_round_trip)
{
    enum { N = 7, K = 256, G = 64 };
    static int8_t q[N * K], q2[N * K];
    static int32_t p[N * K / 8];
    static uint16_t s[N * K / G], d[N * K];
    dsv4_err e;
    for (int i = 0; i < N * K; i++)
        q[i] = (int8_t)((int)(th_rand() % 16) - 8);
    for (int i = 0; i < N * K / G; i++)
        s[i] = bf(th_randf(1e-4f, 10.0f));
    dsv4_int4_pack(q, N, K, p);
    dsv4_int4_unpack(p, N, K, q2);
    CHECK(memcmp(q, q2, sizeof q) == 0);
    REQUIRE(dsv4_int4_dequant(p, s, N, K, G, d, &e) == 0);
    for (int i = 0; i < N * K; i++)
        CHECK(d[i] == bf((float)q[i] * dsv4_bf16_to_f32(s[(i / K) * (K / G) + (i % K) / G])));
    /* K = 13: two words per row, the second padded with u = 0 */
    int8_t r[2 * 13], r2[2 * 13];
    int32_t pr[4];
    for (int i = 0; i < 26; i++)
        r[i] = (int8_t)(i % 16 - 8);
    dsv4_int4_pack(r, 2, 13, pr);
    CHECK_EQ_INT((uint32_t)pr[1] >> 20, 0);
    dsv4_int4_unpack(pr, 2, 13, r2);
    CHECK(memcmp(r, r2, sizeof r) == 0);
}

/* RTN on random weights of varied magnitude: the pack of the unpacked codes is the packed
 * tensor, and each dequantized value, divided by its scale the compress path's way, gives back
 * its code (what a GPTQ output W = bf16(q·s) relies on at compress time). */
TEST(pack_int4_rtn_random_dequant_is_a_fixed_point)
{
    enum { N = 16, K = 512, G = 128 };
    static uint16_t w[N * K], s[N * K / G], d[N * K];
    static int32_t p[N * K / 8], p2[N * K / 8];
    static int8_t q[N * K];
    dsv4_err e;
    for (int i = 0; i < N * K; i++)
        w[i] = bf(th_randf(-1.0f, 1.0f) * ldexpf(1.0f, (int)(th_rand() % 20) - 10));
    REQUIRE(dsv4_int4_rtn(w, N, K, G, p, s, &e) == 0);
    dsv4_int4_unpack(p, N, K, q);
    dsv4_int4_pack(q, N, K, p2);
    CHECK(memcmp(p, p2, sizeof p) == 0);
    REQUIRE(dsv4_int4_dequant(p, s, N, K, G, d, &e) == 0);
    int64_t bad = 0;
    for (int i = 0; i < N * K; i++)
        bad += ref_code(dsv4_bf16_to_f32(d[i]), dsv4_bf16_to_f32(s[i / G])) != q[i];
    CHECK_EQ_INT(bad, 0);
}

TEST(pack_int4_refuses_bad_shapes_and_values)
{
    uint16_t w[64] = {0}, s[4], d[64];
    int32_t p[8];
    dsv4_err e;
    CHECK(dsv4_int4_rtn(w, 1, 60, 30, p, s, &e) == -1); /* 60 % 8 */
    CHECK_STR_CONTAINS(e.msg, "multiple");
    CHECK(dsv4_int4_rtn(w, 1, 64, 48, p, s, &e) == -1);
    CHECK(dsv4_int4_rtn(w, 1, 64, 0, p, s, &e) == -1);
    CHECK(dsv4_int4_dequant(p, s, 1, 64, -1, d, &e) == -1);
    CHECK(dsv4_int4_rtn(w, -1, 64, 32, p, s, &e) == -1);
    w[17] = 0x7FC0;
    CHECK(dsv4_int4_rtn(w, 1, 64, 32, p, s, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "[0, 17]");
    CHECK(dsv4_int4_rtn(w, 0, 64, 32, p, s, &e) == 0);
}
