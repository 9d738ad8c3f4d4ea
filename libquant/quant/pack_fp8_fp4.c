/* Release FP4 experts -> FP8 with 128x128 e8m0 block scales, as DeepSeek's convert.py
 * `--expert-dtype fp8` does (spec/dsv4_architecture.md §2.5, formats_algorithms.md §3.2):
 *
 *   S_blk = max(e8m0 group scales in the block) / 2^6      (byte: s_max - 6, at least 0)
 *   q8    = e4m3(E2M1[code] · 2^(s_group - s_blk))         (<= 6 · 2^6 = 384 < 448)
 *
 * A value is exact unless its group sits more than 8 binades below s_blk (s_group < s_max - 14),
 * where 0.5 · 2^d or 1.5 · 2^d falls under e4m3's 2^-9 grid; then it is rounded to nearest even and
 * counted. The scale is stored as e8m0 [ceil(out/128), ceil(in/128)] (use dsv4_e8m0_to_bf16 for a
 * compressed-tensors weight_scale). A 0xFF (NaN) group scale is refused. */
#include "quant/pack.h"

#include <math.h>
#include <string.h>

#include "formats/fp.h"

#define BLK DSV4_FP8_BLOCK
#define GRP DSV4_FP4_GROUP

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* The block's e8m0 scale byte: max group scale of rows [r0, r1), groups [g0, g1), minus 6. */
static int block_scale(const dsv4_qweight *q, int64_t r0, int64_t r1, int64_t g0, int64_t g1, dsv4_err *e)
{
    int smax = 0;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t g = g0; g < g1; g++) {
            int s = q->s[r * q->s_cols + g];
            if (s == 0xFF)
                return dsv4_fail(e, "%s: FP4 scale [%lld, %lld] is NaN (0xFF)", q->name ? q->name : "FP4 weight",
                                 (long long)r, (long long)g);
            smax = s > smax ? s : smax;
        }
    return smax >= 6 ? smax - 6 : 0;
}

int dsv4_fp4_to_fp8_block(const dsv4_qweight *q, uint8_t *w8, uint8_t *scale, dsv4_conv_report *rep,
                          dsv4_err *e)
{
    *rep = (dsv4_conv_report){1, 0, 0.0};
    if (dsv4_fp4_check(q, e))
        return -1;
    int64_t n = q->w_rows, k = 2 * q->w_cols, sc_cols = cdiv(k, BLK);
    for (int64_t br = 0; br < cdiv(n, BLK); br++)
        for (int64_t bc = 0; bc < sc_cols; bc++) {
            int64_t r0 = br * BLK, r1 = r0 + BLK < n ? r0 + BLK : n;
            int64_t c0 = bc * BLK, c1 = c0 + BLK < k ? c0 + BLK : k;
            int sb = block_scale(q, r0, r1, c0 / GRP, cdiv(c1, GRP), e);
            if (sb < 0)
                return -1;
            scale[br * sc_cols + bc] = (uint8_t)sb;
            float sbf = dsv4_e8m0_to_f32((uint8_t)sb);
            for (int64_t r = r0; r < r1; r++)
                for (int64_t c = c0; c < c1; c++) {
                    uint8_t code = (uint8_t)(q->w[r * q->w_cols + c / 2] >> (4 * (c & 1)) & 15u);
                    int sg = q->s[r * q->s_cols + c / GRP];
                    float v = dsv4_e2m1_to_f32(code);
                    uint8_t b = dsv4_f32_to_e4m3(ldexpf(v, sg - sb), DSV4_FP_SAT);
                    w8[r * k + c] = b;
                    float src = v * dsv4_e8m0_to_f32((uint8_t)sg), dst = dsv4_e4m3_to_f32(b) * sbf;
                    if (memcmp(&src, &dst, sizeof src) != 0) {
                        rep->inexact++;
                        double d = fabs((double)src - (double)dst);
                        rep->max_abs_err = d > rep->max_abs_err ? d : rep->max_abs_err;
                    }
                }
        }
    rep->exact = rep->inexact == 0;
    return 0;
}
