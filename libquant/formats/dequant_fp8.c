/* FP8-block (e4m3 weight, one e8m0 scale per 128x128 block) dequantization and re-encoding; see
 * dequant.h for the formula. */
#include "formats/dequant.h"
#include "formats/fp.h"
#include "formats/fp_round.h"

/* For each band of 128 rows and each tile of up to TILE column blocks, one 256-entry table per block
 * maps a code straight to its output value (the code's value times the block scale, converted);
 * rows are then walked in order, so the inner loop is a byte load, a table load and a store. Each
 * table entry is computed exactly as the formula says, so this ordering does not change results. */
#define TILE 8

static void e4m3_table(float lut[256])
{
    for (int c = 0; c < 256; c++)
        lut[c] = dsv4_e4m3_to_f32((uint8_t)c);
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

#define DEQUANT_ROWS(T, CONVERT, APPLY)                                                                    \
    float lut[256];                                                                                 \
    T tab[TILE][256];                                                                               \
    e4m3_table(lut);                                                                                \
    int64_t cols = q->w_cols, tile_cols = TILE * DSV4_FP8_BLOCK;                                    \
    for (int64_t band = r0; band < r1;) {                                                           \
        int64_t band_end = min64((band / DSV4_FP8_BLOCK + 1) * DSV4_FP8_BLOCK, r1);                 \
        const uint8_t *s = q->s + (band / DSV4_FP8_BLOCK) * q->s_cols;                              \
        for (int64_t t0 = 0; t0 < cols; t0 += tile_cols) {                                          \
            int64_t t1 = min64(t0 + tile_cols, cols), nblk = (t1 - t0 + DSV4_FP8_BLOCK - 1) / DSV4_FP8_BLOCK; \
            for (int64_t b = 0; b < nblk; b++) {                                                    \
                float sc = dsv4_e8m0_to_f32(s[t0 / DSV4_FP8_BLOCK + b]);                            \
                for (int k = 0; k < 256; k++)                                                       \
                    tab[b][k] = CONVERT(lut[k] * sc);                                               \
            }                                                                                       \
            for (int64_t r = band; r < band_end; r++) {                                             \
                const uint8_t *w = q->w + r * cols;                                                 \
                T *o = out + r * cols;                                                              \
                for (int64_t b = 0; b < nblk; b++) {                                                \
                    int64_t c = t0 + b * DSV4_FP8_BLOCK;                                            \
                    APPLY(tab[b], w + c, o + c, min64(c + DSV4_FP8_BLOCK, t1) - c);                 \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
        band = band_end;                                                                            \
    }

static float as_f32(float x) { return x; }

static uint16_t as_bf16(float x) { return dsv4_bf16_from_bits(dsv4_f32_bits(x)); }

/* Four outputs per store (16 bytes of f32, 8 of bf16): measurably faster than one store per
 * element on x86-64 (bench/bench_dequant.c). */
static void apply_f32(const float *tb, const uint8_t *w, float *o, int64_t n)
{
    int64_t c = 0;
    for (; c + 4 <= n; c += 4) {
        float v[4] = {tb[w[c]], tb[w[c + 1]], tb[w[c + 2]], tb[w[c + 3]]};
        memcpy(o + c, v, sizeof v);
    }
    for (; c < n; c++)
        o[c] = tb[w[c]];
}

static void apply_bf16(const uint16_t *tb, const uint8_t *w, uint16_t *o, int64_t n)
{
    int64_t c = 0;
    for (; c + 4 <= n; c += 4) {
        uint64_t v = tb[w[c]] | (uint64_t)tb[w[c + 1]] << 16 | (uint64_t)tb[w[c + 2]] << 32 |
                     (uint64_t)tb[w[c + 3]] << 48;
        memcpy(o + c, &v, sizeof v);
    }
    for (; c < n; c++)
        o[c] = tb[w[c]];
}

void dsv4_fp8_block_dequant_rows_f32(const dsv4_qweight *q, int64_t r0, int64_t r1, float *out)
{
    DEQUANT_ROWS(float, as_f32, apply_f32)
}

void dsv4_fp8_block_dequant_rows_bf16(const dsv4_qweight *q, int64_t r0, int64_t r1, uint16_t *out)
{
    DEQUANT_ROWS(uint16_t, as_bf16, apply_bf16)
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
