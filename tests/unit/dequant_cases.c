/* Random release-layout weights for the dequant kernel tests (see dequant_cases.h). */
#include "dequant_cases.h"
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#define POISON32 0x7FBADBADu
#define POISON16 0x7FBAu

int64_t dq_case_make(const dq_case *c, dsv4_qweight *q)
{
    int64_t in = c->fmt == DSV4_QFMT_FP4 ? 2 * c->w_cols : c->w_cols;
    int64_t s_rows = c->fmt == DSV4_QFMT_FP4 ? c->w_rows : (c->w_rows + 127) / 128;
    int64_t s_cols = c->fmt == DSV4_QFMT_FP4 ? (in + 31) / 32 : (in + 127) / 128;
    size_t nw = (size_t)(c->w_rows * c->w_cols), ns = (size_t)(s_rows * s_cols);
    uint8_t *w = malloc(nw ? nw : 1), *s = malloc(ns ? ns : 1);
    uint8_t perm[256];
    for (int i = 0; i < 256; i++)
        perm[i] = (uint8_t)i;
    for (int i = 255; i > 0; i--) {
        int j = (int)(th_rand() % (uint64_t)(i + 1));
        uint8_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (size_t i = 0; w && i < nw; i++)
        w[i] = perm[(i + th_rand() % 7) % 256]; /* every code, cycled with some jitter */
    for (int i = 0; w && i < 256 && (size_t)i < nw; i++)
        w[i] = (uint8_t)i; /* and certainly every code once */
    int span = c->s_hi - c->s_lo + 1;
    for (size_t i = 0; s && i < ns; i++)
        s[i] = (uint8_t)(c->s_lo + (int)((i + th_rand() % 3) % (size_t)span));
    *q = (dsv4_qweight){"random", w, s, c->w_rows, c->w_cols, s_rows, s_cols};
    return c->w_rows * in;
}

void dq_case_free(dsv4_qweight *q)
{
    free((void *)q->w);
    free((void *)q->s);
}

static uint32_t get(dsv4_dtype t, const void *p, int64_t i)
{
    if (t == DSV4_F32) {
        uint32_t u;
        memcpy(&u, (const uint8_t *)p + 4 * i, 4);
        return u;
    }
    uint16_t h;
    memcpy(&h, (const uint8_t *)p + 2 * i, 2);
    return h;
}

static int is_nan(dsv4_dtype t, uint32_t u)
{
    return t == DSV4_F32 ? (u & 0x7FFFFFFFu) > 0x7F800000u : (u & 0x7FFFu) > 0x7F80u;
}

int64_t dq_first_diff(dsv4_dtype out_t, const void *a, const void *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        uint32_t x = get(out_t, a, i), y = get(out_t, b, i);
        if (x != y && !(is_nan(out_t, x) && is_nan(out_t, y)))
            return i + 1;
    }
    return 0;
}

void dq_poison(dsv4_dtype out_t, void *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (out_t == DSV4_F32) {
            uint32_t u = POISON32;
            memcpy((uint8_t *)p + 4 * i, &u, 4);
        } else {
            uint16_t h = POISON16;
            memcpy((uint8_t *)p + 2 * i, &h, 2);
        }
    }
}

int64_t dq_poisoned(dsv4_dtype out_t, const void *p, int64_t n)
{
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        k += get(out_t, p, i) == (out_t == DSV4_F32 ? POISON32 : POISON16);
    return k;
}
