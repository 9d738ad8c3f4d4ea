/* FP4-expert (packed E2M1 pairs, one e8m0 scale per 32 inputs) dequantization and re-encoding;
 * see dequant.h for the layout and formula. */
#include "formats/dequant.h"
#include "formats/fp.h"
#include "formats/fp_round.h"

/* A 16-entry table per scale byte maps a code straight to its output value (the code's value times
 * the scale, converted). Tables are built on first use within a call and reused by every group with
 * the same scale byte (a tensor uses only a handful); each group's 16 bytes are then split into
 * nibbles through its table. Entries are computed exactly as the formula says. */
static void e2m1_table(float lut[16])
{
    for (int c = 0; c < 16; c++)
        lut[c] = dsv4_e2m1_to_f32((uint8_t)c);
}

/* Bytes per scale group: 32 elements are 16 packed bytes. */
#define GROUP_BYTES (DSV4_FP4_GROUP / 2)

#define DEQUANT_ROWS(T, CONVERT)                                                                    \
    float lut[16];                                                                                  \
    T tab[256][16];                                                                                 \
    uint8_t built[256] = {0};                                                                       \
    e2m1_table(lut);                                                                                \
    int64_t nb = q->w_cols, cols = 2 * nb;                                                          \
    if (nb == 0)                                                                                    \
        return;                                                                                     \
    for (int64_t r = r0; r < r1; r++) {                                                             \
        const uint8_t *w = q->w + r * nb, *s = q->s + r * q->s_cols;                                \
        T *o = out + r * cols;                                                                      \
        for (int64_t g = 0, k0 = 0; k0 < nb; g++, k0 += GROUP_BYTES) {                              \
            uint8_t sb = s[g];                                                                      \
            if (!built[sb]) {                                                                       \
                float sc = dsv4_e8m0_to_f32(sb);                                                    \
                for (int c = 0; c < 16; c++)                                                        \
                    tab[sb][c] = CONVERT(lut[c] * sc);                                              \
                built[sb] = 1;                                                                      \
            }                                                                                       \
            const T *tb = tab[sb];                                                                  \
            int64_t k1 = k0 + GROUP_BYTES < nb ? k0 + GROUP_BYTES : nb;                             \
            for (int64_t k = k0; k < k1; k++) {                                                     \
                o[2 * k] = tb[w[k] & 15u];                                                          \
                o[2 * k + 1] = tb[w[k] >> 4];                                                       \
            }                                                                                       \
        }                                                                                           \
    }

static float as_f32(float x) { return x; }

static uint16_t as_bf16(float x) { return dsv4_bf16_from_bits(dsv4_f32_bits(x)); }

void dsv4_fp4_dequant_rows_f32(const dsv4_qweight *q, int64_t r0, int64_t r1, float *out)
{
    DEQUANT_ROWS(float, as_f32)
}

void dsv4_fp4_dequant_rows_bf16(const dsv4_qweight *q, int64_t r0, int64_t r1, uint16_t *out)
{
    DEQUANT_ROWS(uint16_t, as_bf16)
}

int dsv4_fp4_dequant_f32(const dsv4_qweight *q, float *out, dsv4_err *e)
{
    if (dsv4_fp4_check(q, e))
        return -1;
    dsv4_fp4_dequant_rows_f32(q, 0, q->w_rows, out);
    return 0;
}

int dsv4_fp4_dequant_bf16(const dsv4_qweight *q, uint16_t *out, dsv4_err *e)
{
    if (dsv4_fp4_check(q, e))
        return -1;
    dsv4_fp4_dequant_rows_bf16(q, 0, q->w_rows, out);
    return 0;
}

int dsv4_fp4_requant(const dsv4_qweight *q, const float *in, uint8_t *w_out, dsv4_err *e)
{
    dsv4_qweight out = *q; /* the weight shape describes w_out */
    out.w = w_out;
    if (dsv4_fp4_check(&out, e))
        return -1;
    int64_t nb = q->w_cols, cols = 2 * nb;
    if (nb == 0)
        return 0;
    for (int64_t r = 0; r < q->w_rows; r++) {
        const uint8_t *s = q->s + r * q->s_cols;
        const float *x = in + r * cols;
        for (int64_t k = 0; k < nb; k++) {
            float sc = dsv4_e8m0_to_f32(s[k / GROUP_BYTES]);
            uint8_t lo = dsv4_f32_to_e2m1(x[2 * k] / sc), hi = dsv4_f32_to_e2m1(x[2 * k + 1] / sc);
            w_out[r * nb + k] = (uint8_t)(lo | hi << 4);
        }
    }
    return 0;
}
