/* FP8-block (e4m3 weight, one e8m0 scale per 128x128 block) dequantization and re-encoding; see
 * dequant.h for the formula. */
#include "formats/dequant.h"
#include "formats/fp.h"
#include "formats/fp_round.h"

static void e4m3_table(float lut[256])
{
    for (int c = 0; c < 256; c++)
        lut[c] = dsv4_e4m3_to_f32((uint8_t)c);
}

static int64_t block_end(int64_t c0, int64_t cols)
{
    return c0 + DSV4_FP8_BLOCK < cols ? c0 + DSV4_FP8_BLOCK : cols;
}

void dsv4_fp8_block_dequant_rows_f32(const dsv4_qweight *q, int64_t r0, int64_t r1, float *out)
{
    float lut[256];
    e4m3_table(lut);
    int64_t cols = q->w_cols;
    if (cols == 0)
        return;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *w = q->w + r * cols, *s = q->s + (r / DSV4_FP8_BLOCK) * q->s_cols;
        float *o = out + r * cols;
        for (int64_t b = 0, c0 = 0; c0 < cols; b++, c0 += DSV4_FP8_BLOCK) {
            float sc = dsv4_e8m0_to_f32(s[b]);
            for (int64_t c = c0, c1 = block_end(c0, cols); c < c1; c++)
                o[c] = lut[w[c]] * sc;
        }
    }
}

void dsv4_fp8_block_dequant_rows_bf16(const dsv4_qweight *q, int64_t r0, int64_t r1, uint16_t *out)
{
    float lut[256];
    e4m3_table(lut);
    int64_t cols = q->w_cols;
    if (cols == 0)
        return;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *w = q->w + r * cols, *s = q->s + (r / DSV4_FP8_BLOCK) * q->s_cols;
        uint16_t *o = out + r * cols;
        for (int64_t b = 0, c0 = 0; c0 < cols; b++, c0 += DSV4_FP8_BLOCK) {
            float sc = dsv4_e8m0_to_f32(s[b]);
            for (int64_t c = c0, c1 = block_end(c0, cols); c < c1; c++)
                o[c] = dsv4_bf16_from_bits(dsv4_f32_bits(lut[w[c]] * sc));
        }
    }
}

int dsv4_fp8_block_dequant_f32(const dsv4_qweight *q, float *out, dsv4_err *e)
{
    if (dsv4_fp8_block_check(q, e))
        return -1;
    dsv4_fp8_block_dequant_rows_f32(q, 0, q->w_rows, out);
    return 0;
}

int dsv4_fp8_block_dequant_bf16(const dsv4_qweight *q, uint16_t *out, dsv4_err *e)
{
    if (dsv4_fp8_block_check(q, e))
        return -1;
    dsv4_fp8_block_dequant_rows_bf16(q, 0, q->w_rows, out);
    return 0;
}

int dsv4_fp8_block_requant(const dsv4_qweight *q, const float *in, uint8_t *w_out, dsv4_err *e)
{
    dsv4_qweight out = *q; /* the weight shape describes w_out */
    out.w = w_out;
    if (dsv4_fp8_block_check(&out, e))
        return -1;
    int64_t cols = q->w_cols;
    if (cols == 0)
        return 0;
    for (int64_t r = 0; r < q->w_rows; r++) {
        const uint8_t *s = q->s + (r / DSV4_FP8_BLOCK) * q->s_cols;
        for (int64_t c = 0; c < cols; c++) {
            float sc = dsv4_e8m0_to_f32(s[c / DSV4_FP8_BLOCK]);
            w_out[r * cols + c] = dsv4_f32_to_e4m3(in[r * cols + c] / sc, DSV4_FP_SAT);
        }
    }
    return 0;
}
