/* Release FP4 (MXFP4: E2M1 codes, one e8m0 scale per 32 inputs) -> NVFP4 without re-quantizing
 * (quant/pack.h). The E2M1 codes and their nibble order are the same in both formats, so a
 * 16-block can keep its codes whenever its MX scale 2^(s-127), times the global scale gs, is an
 * e4m3 value L: NVFP4 dequantizes to E2M1 · f32(L / gs) = E2M1 · 2^(s-127), the release value.
 *
 * Choice of gs. With gs = 2^g every L is a power of two, and e4m3 holds the powers 2^-9 (its
 * smallest subnormal) to 2^8, so the blocks of a fused group (w1 and w3 of an expert share gs in
 * vLLM) all fit when s_max - s_min <= 17. Of the g that fit we take the largest, 135 - s_max
 * (capped at 127 so gs stays a finite float32), which puts the largest block at L = 256 and keeps
 * the small blocks as far from the e4m3 subnormals as possible: for a spread <= 14 every L is a
 * normal e4m3 value (>= 2^-6). That matters beyond exactness: older vLLM Marlin NVFP4 kernels
 * (W4A16 on Hopper) assume normal scales. Blocks whose codes are all ±0 reproduce under any
 * scale; they are left out of the spread and get L when it is a normal e4m3, else 0.125.
 *
 * A block that cannot keep its codes (spread too wide for the chosen gs, or a gs that is not a
 * power of two) is re-quantized by compressed-tensors' RTN from its release values (exact in
 * BF16) and the resulting error is reported. A 0xFF (NaN) MX scale is refused. */
#include "quant/pack.h"

#include <math.h>
#include <string.h>

#include "formats/fp.h"

#define NVFP4_BLOCK 16

static int mx_check(const dsv4_qweight *q, dsv4_err *e)
{
    if (dsv4_fp4_check(q, e))
        return -1;
    if ((2 * q->w_cols) % NVFP4_BLOCK != 0)
        return dsv4_fail(e, "%s: %lld inputs are not a multiple of %d (NVFP4 block)", q->name ? q->name : "FP4 weight",
                         (long long)(2 * q->w_cols), NVFP4_BLOCK);
    return 0;
}

/* 1 when the 8 packed bytes of a 16-block hold only ±0 codes. */
static int block_is_zero(const uint8_t *p)
{
    for (int i = 0; i < NVFP4_BLOCK / 2; i++)
        if (p[i] & 0x77u)
            return 0;
    return 1;
}

/* Visits every 16-block of q: its 8 packed bytes and its MX scale byte. Fails on a NaN scale. */
static int mx_scale_range(const dsv4_qweight *q, int *smin, int *smax, dsv4_err *e)
{
    int64_t in = 2 * q->w_cols, nb = in / NVFP4_BLOCK;
    for (int64_t r = 0; r < q->w_rows; r++)
        for (int64_t b = 0; b < nb; b++) {
            int s = q->s[r * q->s_cols + b / 2];
            if (s == 0xFF)
                return dsv4_fail(e, "%s: MX scale [%lld, %lld] is NaN (0xFF)", q->name ? q->name : "FP4 weight",
                                 (long long)r, (long long)(b / 2));
            if (block_is_zero(q->w + r * q->w_cols + b * (NVFP4_BLOCK / 2)))
                continue;
            *smin = s < *smin ? s : *smin;
            *smax = s > *smax ? s : *smax;
        }
    return 0;
}

int dsv4_nvfp4_mx_global_scale(const dsv4_qweight *const *q, int nq, float *gs, dsv4_err *e)
{
    int smin = 255, smax = -1;
    for (int i = 0; i < nq; i++)
        if (mx_check(q[i], e) || mx_scale_range(q[i], &smin, &smax, e))
            return -1;
    if (smax < 0) {
        *gs = 1.0f; /* all zero: any scale reproduces it */
        return 0;
    }
    int g = 135 - smax < 127 ? 135 - smax : 127;
    *gs = ldexpf(1.0f, g);
    if (g < 118 - smin)
        return dsv4_fail(e, "%s: MX scale exponents span %d..%d (spread %d > 17): no power-of-two global scale "
                            "makes every block an e4m3 scale; gs = 2^%d keeps the largest blocks exact",
                         q[0]->name ? q[0]->name : "FP4 weights", smin - 127, smax - 127, smax - smin, g);
    return 0;
}

/* Source value (dsv4_fp4_dequant_f32) and NVFP4 value (dsv4_nvfp4_dequant) of one code. */
static float mx_value(uint8_t code, uint8_t s) { return dsv4_e2m1_to_f32(code) * dsv4_e8m0_to_f32(s); }
static float nv_value(uint8_t code, uint8_t sc, float gs)
{
    return dsv4_e2m1_to_f32(code) * (dsv4_e4m3_to_f32(sc) / gs);
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* One 16-block: keeps the codes under scale L when that reproduces every value, else RTN. */
static void convert_block(const uint8_t *src, uint8_t s, float gs, uint8_t *dst, uint8_t *sc,
                          dsv4_conv_report *rep)
{
    float L = dsv4_e8m0_to_f32(s) * gs;
    uint8_t cand = dsv4_f32_to_e4m3(L, DSV4_FP_SAT);
    if (block_is_zero(src) && !(dsv4_e4m3_to_f32(cand) >= 0x1p-6f))
        cand = 0x20; /* 0.125 */
    int keep = 1;
    for (int i = 0; i < NVFP4_BLOCK && keep; i++) {
        uint8_t c = (uint8_t)(src[i / 2] >> (4 * (i & 1)) & 15u);
        keep = same_bits(nv_value(c, cand, gs), mx_value(c, s));
    }
    if (keep) {
        memcpy(dst, src, NVFP4_BLOCK / 2);
        *sc = cand;
        return;
    }
    uint16_t w[NVFP4_BLOCK];
    for (int i = 0; i < NVFP4_BLOCK; i++)
        w[i] = dsv4_f32_to_bf16(mx_value((uint8_t)(src[i / 2] >> (4 * (i & 1)) & 15u), s));
    dsv4_err ignored;
    if (dsv4_nvfp4_rtn(w, 1, NVFP4_BLOCK, gs, dst, sc, &ignored)) { /* an infinite release value */
        memcpy(dst, src, NVFP4_BLOCK / 2);
        *sc = cand;
    }
    int differs = 0;
    for (int i = 0; i < NVFP4_BLOCK; i++) {
        float a = mx_value((uint8_t)(src[i / 2] >> (4 * (i & 1)) & 15u), s);
        float b = nv_value((uint8_t)(dst[i / 2] >> (4 * (i & 1)) & 15u), *sc, gs);
        if (!same_bits(a, b)) {
            differs = 1;
            double d = fabs((double)a - (double)b);
            rep->max_abs_err = d > rep->max_abs_err ? d : rep->max_abs_err;
        }
    }
    rep->inexact += differs;
}

int dsv4_nvfp4_from_mxfp4(const dsv4_qweight *q, float gs, uint8_t *packed, uint8_t *scale,
                          dsv4_conv_report *rep, dsv4_err *e)
{
    *rep = (dsv4_conv_report){1, 0, 0.0};
    if (mx_check(q, e))
        return -1;
    if (!(gs > 0.0f) || !isfinite(gs))
        return dsv4_fail(e, "%s: global scale %g must be finite and positive", q->name ? q->name : "FP4 weight",
                         (double)gs);
    int smin = 255, smax = -1;
    if (mx_scale_range(q, &smin, &smax, e)) /* refuses a NaN scale before anything is written */
        return -1;
    int64_t in = 2 * q->w_cols, nb = in / NVFP4_BLOCK;
    for (int64_t r = 0; r < q->w_rows; r++)
        for (int64_t b = 0; b < nb; b++)
            convert_block(q->w + r * q->w_cols + b * (NVFP4_BLOCK / 2), q->s[r * q->s_cols + b / 2], gs,
                          packed + r * q->w_cols + b * (NVFP4_BLOCK / 2), scale + r * nb + b, rep);
    rep->exact = rep->inexact == 0;
    return 0;
}
