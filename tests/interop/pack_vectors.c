/* Writes the interop vectors that tests/interop/ct_check.py checks against the real
 * compressed-tensors package: BF16 weights, what our packers (libquant/quant/pack.h) make of them
 * (INT4 g128 and g32, NVFP4, FP8 block), our dequantized values, and two release-format MXFP4
 * weights with their NVFP4 and FP8-block conversions. One safetensors checkpoint folder, written
 * with the project's writer. Build and run: see tests/interop/README.md.
 *
 * Weights: `a` [256, 512], random with magnitudes spread over 2^-12..2^4 per row, zeros, -0.0 and
 * an all-zero row; `x` [R, 128], every finite BF16 value of magnitude <= 2 once, 127 to a row
 * behind ±2 (so every rounding case of every packer is met); `r` [130, 200], random, ragged for
 * the 128x128 FP8 blocks. MXFP4: `m` [256, 512] with scale bytes 118..130 (converts exactly) and
 * `me` [64, 256] with bytes 90..140 (does not; the report is stored as F64 [3]: exact, inexact,
 * max_abs_err). `s61`, `s62`, `s63` are the weights of the spec's worked examples §6.1-§6.3.
 * Every dequantized value is stored as F32 (INT4: BF16, as compressed-tensors computes it). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/fp.h"
#include "io/st_plan.h"
#include "io/st_write.h"
#include "quant/pack.h"

#define MAX_T 128

typedef struct {
    dsv4_st_plan plan;
    const void *data[MAX_T];
    void *owned[MAX_T];
    size_t n;
    dsv4_err e;
    int failed;
} vecs;

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1Dull;
}

static float unif(void) { return (float)((next() >> 40) * 0x1p-24) * 2.0f - 1.0f; }

/* Declares a tensor whose bytes are `data` (owned by the table from now on). */
static void *add(vecs *v, const char *name, dsv4_dtype t, int64_t d0, int64_t d1, void *data)
{
    int64_t shape[2] = {d0, d1};
    if (v->failed || v->n == MAX_T || !data ||
        dsv4_st_plan_add(&v->plan, name, t, d1 < 0 ? 1 : 2, shape, &v->e)) {
        if (!v->failed && (v->n == MAX_T || !data))
            dsv4_fail(&v->e, "%s: out of memory or too many tensors", name);
        v->failed = 1;
        free(data);
        return NULL;
    }
    v->data[v->n] = data;
    v->owned[v->n++] = data;
    return data;
}

static void *alloc(size_t n) { return calloc(n ? n : 1, 1); }

static void check(vecs *v, int rc, const char *what)
{
    if (rc && !v->failed) {
        dsv4_wrap(&v->e, "%s", what);
        v->failed = 1;
    }
}

static char *nm(const char *a, const char *b)
{
    static char buf[8][128];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "%s.%s", a, b);
    return buf[i];
}

/* The packers on one BF16 weight [n, k]: INT4 (when k allows), NVFP4 (k % 16 == 0), FP8 block. */
static void pack_all(vecs *v, const char *p, const uint16_t *w, int64_t n, int64_t k)
{
    static const int groups[2] = {128, 32};
    for (int gi = 0; gi < 2; gi++) {
        int g = groups[gi];
        if (k % g != 0)
            continue;
        char pre[64];
        snprintf(pre, sizeof pre, "%s.int4_g%d", p, g);
        int32_t *pk = add(v, nm(pre, "weight_packed"), DSV4_I32, n, k / 8, alloc((size_t)(n * k / 2)));
        uint16_t *sc = add(v, nm(pre, "weight_scale"), DSV4_BF16, n, k / g, alloc((size_t)(n * k / g * 2)));
        int64_t *sh = add(v, nm(pre, "weight_shape"), DSV4_I64, 2, -1, alloc(16));
        uint16_t *dq = add(v, nm(pre, "dequant"), DSV4_BF16, n, k, alloc((size_t)(n * k * 2)));
        if (v->failed)
            return;
        sh[0] = n;
        sh[1] = k;
        check(v, dsv4_int4_rtn(w, n, k, g, pk, sc, &v->e), pre);
        check(v, dsv4_int4_dequant(pk, sc, n, k, g, dq, &v->e), pre);
    }
    if (k % 16 == 0) {
        char pre[64];
        snprintf(pre, sizeof pre, "%s.nvfp4", p);
        uint8_t *pk = add(v, nm(pre, "weight_packed"), DSV4_U8, n, k / 2, alloc((size_t)(n * k / 2)));
        uint8_t *sc = add(v, nm(pre, "weight_scale"), DSV4_F8_E4M3, n, k / 16, alloc((size_t)(n * k / 16)));
        float *gs = add(v, nm(pre, "weight_global_scale"), DSV4_F32, 1, -1, alloc(4));
        float *dq = add(v, nm(pre, "dequant"), DSV4_F32, n, k, alloc((size_t)(n * k * 4)));
        if (v->failed)
            return;
        *gs = dsv4_nvfp4_global_scale(dsv4_bf16_amax(w, (size_t)(n * k)));
        check(v, dsv4_nvfp4_rtn(w, n, k, *gs, pk, sc, &v->e), pre);
        check(v, dsv4_nvfp4_dequant(pk, sc, *gs, n, k, dq, &v->e), pre);
    }
    char pre[64];
    snprintf(pre, sizeof pre, "%s.fp8", p);
    int64_t sr = (n + 127) / 128, scn = (k + 127) / 128;
    uint8_t *q = add(v, nm(pre, "weight"), DSV4_F8_E4M3, n, k, alloc((size_t)(n * k)));
    uint16_t *sc = add(v, nm(pre, "weight_scale"), DSV4_BF16, sr, scn, alloc((size_t)(sr * scn * 2)));
    float *dq = add(v, nm(pre, "dequant"), DSV4_F32, n, k, alloc((size_t)(n * k * 4)));
    if (v->failed)
        return;
    check(v, dsv4_fp8_block_rtn(w, n, k, q, sc, &v->e), pre);
    check(v, dsv4_fp8_block_dequant_ct(q, sc, n, k, dq, &v->e), pre);
}

/* A release MXFP4 weight [n, k] with scale bytes lo..hi, and its two conversions. */
static void mx_case(vecs *v, const char *p, int64_t n, int64_t k, int lo, int hi)
{
    uint8_t *w = add(v, nm(p, "weight"), DSV4_U8, n, k / 2, alloc((size_t)(n * k / 2)));
    uint8_t *s = add(v, nm(p, "scale"), DSV4_F8_E8M0, n, k / 32, alloc((size_t)(n * k / 32)));
    float *src = add(v, nm(p, "dequant"), DSV4_F32, n, k, alloc((size_t)(n * k * 4)));
    char pn[64], pf[64];
    snprintf(pn, sizeof pn, "%s.nvfp4", p);
    snprintf(pf, sizeof pf, "%s.fp8", p);
    uint8_t *pk = add(v, nm(pn, "weight_packed"), DSV4_U8, n, k / 2, alloc((size_t)(n * k / 2)));
    uint8_t *sc = add(v, nm(pn, "weight_scale"), DSV4_F8_E4M3, n, k / 16, alloc((size_t)(n * k / 16)));
    float *gs = add(v, nm(pn, "weight_global_scale"), DSV4_F32, 1, -1, alloc(4));
    float *ndq = add(v, nm(pn, "dequant"), DSV4_F32, n, k, alloc((size_t)(n * k * 4)));
    double *nrep = add(v, nm(pn, "report"), DSV4_F64, 3, -1, alloc(24));
    int64_t sr = (n + 127) / 128, scn = (k + 127) / 128;
    uint8_t *q8 = add(v, nm(pf, "weight"), DSV4_F8_E4M3, n, k, alloc((size_t)(n * k)));
    uint16_t *s8 = add(v, nm(pf, "weight_scale"), DSV4_BF16, sr, scn, alloc((size_t)(sr * scn * 2)));
    double *frep = add(v, nm(pf, "report"), DSV4_F64, 3, -1, alloc(24));
    uint8_t *e8 = alloc((size_t)(sr * scn));
    if (v->failed || !e8) {
        free(e8);
        return;
    }
    for (int64_t i = 0; i < n * k / 2; i++)
        w[i] = (uint8_t)next();
    for (int64_t i = 0; i < n * k / 32; i++)
        s[i] = (uint8_t)(lo + (int)(next() % (uint64_t)(hi - lo + 1)));
    dsv4_qweight q = {p, w, s, n, k / 2, n, k / 32};
    const dsv4_qweight *one[1] = {&q};
    dsv4_conv_report rep;
    dsv4_err ignored;
    dsv4_nvfp4_mx_global_scale(one, 1, gs, &ignored); /* -1 for `me`: gs is still the best one */
    check(v, dsv4_fp4_dequant_f32(&q, src, &v->e), p);
    check(v, dsv4_nvfp4_from_mxfp4(&q, *gs, pk, sc, &rep, &v->e), pn);
    check(v, dsv4_nvfp4_dequant(pk, sc, *gs, n, k, ndq, &v->e), pn);
    nrep[0] = rep.exact;
    nrep[1] = (double)rep.inexact;
    nrep[2] = rep.max_abs_err;
    check(v, dsv4_fp4_to_fp8_block(&q, q8, e8, &rep, &v->e), pf);
    dsv4_e8m0_to_bf16(e8, (size_t)(sr * scn), s8);
    frep[0] = rep.exact;
    frep[1] = (double)rep.inexact;
    frep[2] = rep.max_abs_err;
    free(e8);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT_DIR   (OUT_DIR must not exist)\n", argv[0]);
        return 2;
    }
    vecs v;
    memset(&v, 0, sizeof v);
    dsv4_st_plan_init(&v.plan, 0, 0);

    uint16_t *a = add(&v, "a.weight", DSV4_BF16, 256, 512, alloc(256 * 512 * 2));
    if (a) {
        for (int r = 0; r < 256; r++) {
            float mag = ldexpf(1.0f, (int)(next() % 17) - 12);
            for (int c = 0; c < 512; c++) {
                uint64_t kind = next() % 40;
                float x = kind == 0 ? 0.0f : kind == 1 ? -0.0f : unif() * mag;
                a[r * 512 + c] = r == 7 ? 0 : dsv4_f32_to_bf16(x);
            }
        }
        pack_all(&v, "a", a, 256, 512);
    }

    static uint16_t xs[70000];
    int64_t nx = 0;
    uint16_t two = dsv4_f32_to_bf16(2.0f);
    for (uint32_t b = 0; b < 65536u; b++) {
        float f = dsv4_bf16_to_f32((uint16_t)b);
        if (nx % 128 == 0) {
            xs[nx] = (nx / 128) % 2 ? two : (uint16_t)(two | 0x8000u);
            nx++;
        }
        if (isfinite(f) && fabsf(f) <= 2.0f)
            xs[nx++] = (uint16_t)b;
    }
    while (nx % 128)
        xs[nx++] = 0;
    uint16_t *x = add(&v, "x.weight", DSV4_BF16, nx / 128, 128, alloc((size_t)nx * 2));
    if (x) {
        memcpy(x, xs, (size_t)nx * 2);
        pack_all(&v, "x", x, nx / 128, 128);
    }

    uint16_t *rw = add(&v, "r.weight", DSV4_BF16, 130, 200, alloc(130 * 200 * 2));
    if (rw) {
        for (int i = 0; i < 130 * 200; i++)
            rw[i] = dsv4_f32_to_bf16(unif() * (i < 128 * 200 ? 0.05f : 3.0f));
        pack_all(&v, "r", rw, 130, 200);
    }

    /* The spec's worked examples (formats_algorithms.md §6.1-§6.3), whose bytes the unit tests
     * pin: compressed-tensors must produce the same. */
    static const float s61r1[16] = {7.5f, -7.5f, 3.5f, 2.5f, -0.5f, 0.5f, 1.5f, -1.5f,
                                    6.6f, -6.4f, 0.0f, -0.0f, 1.0f, -1.0f, 7.49f, -0.0f};
    uint16_t *s61 = add(&v, "s61.weight", DSV4_BF16, 2, 128, alloc(2 * 128 * 2));
    if (s61) {
        for (int c = 0; c < 128; c++) {
            s61[c] = dsv4_f32_to_bf16((float)((c % 16) - 8) * 0.25f);
            s61[128 + c] = c < 16 ? dsv4_f32_to_bf16(s61r1[c]) : 0;
        }
        pack_all(&v, "s61", s61, 2, 128);
    }
    static const float s62v[32] = {0.125f, 0.375f, 0.625f, 1.25f, 1.75f, 2.5f, -0.05f, 3.0f,
                                   -3.0f, -0.375f, 0.0f, 0.3f, -1.0f, 2.75f, -2.0f, 0.875f,
                                   0.75f, -0.75f, 0.03125f, 0.09375f, -0.15625f, 0.2f, 0.3125f, 0.4375f,
                                   -0.5f, 0.5625f, 0.6875f, -0.71875f, 0.046875f, -0.015625f, 0.25f, 0.125f};
    uint16_t *s62 = add(&v, "s62.weight", DSV4_BF16, 1, 32, alloc(32 * 2));
    if (s62) {
        for (int c = 0; c < 32; c++)
            s62[c] = dsv4_f32_to_bf16(s62v[c]);
        pack_all(&v, "s62", s62, 1, 32);
    }
    static const float s63v[8] = {0.5f, -1.0f, 0.0078125f, 3.0f, -2.75f, 0.1f, 1.2f, -0.333f};
    uint16_t *s63 = add(&v, "s63.weight", DSV4_BF16, 2, 4, alloc(8 * 2));
    if (s63) {
        for (int c = 0; c < 8; c++)
            s63[c] = dsv4_f32_to_bf16(s63v[c]);
        pack_all(&v, "s63", s63, 2, 4);
    }

    /* The NVFP4 global scale for every finite non-negative BF16 amax. */
    uint16_t *ga = add(&v, "gs.amax", DSV4_BF16, 0x7F80, -1, alloc(0x7F80 * 2));
    float *go = add(&v, "gs.ours", DSV4_F32, 0x7F80, -1, alloc(0x7F80 * 4));
    if (ga && go)
        for (uint16_t b = 0; b < 0x7F80; b++) {
            ga[b] = b;
            go[b] = dsv4_nvfp4_global_scale(dsv4_bf16_to_f32(b));
        }

    mx_case(&v, "m", 256, 512, 118, 130);
    mx_case(&v, "me", 64, 256, 90, 140);

    int rc = v.failed || dsv4_st_plan_finish(&v.plan, &v.e) || dsv4_st_write_all(&v.plan, argv[1], v.data, &v.e);
    if (rc)
        fprintf(stderr, "pack_vectors: %s\n", v.e.msg);
    else
        printf("pack_vectors: %zu tensors written to %s/%s\n", v.n, argv[1], DSV4_ST_SINGLE_NAME);
    for (size_t i = 0; i < v.n; i++)
        free(v.owned[i]);
    dsv4_st_plan_free(&v.plan);
    return rc ? 1 : 0;
}
