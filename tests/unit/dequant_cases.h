/* Random release-layout weights shared by the dequant kernel tests (test_dequant_cpu.c,
 * test_dequant_cuda.c). Weight bytes cycle through every code (all 256 e4m3 bytes, NaN codes
 * included; every FP4 byte) in a shuffled order; scale bytes cycle through a given range. */
#ifndef DSV4_TEST_DEQUANT_CASES_H
#define DSV4_TEST_DEQUANT_CASES_H

#include "dequant.h"

typedef struct {
    dsv4_qformat fmt;
    int64_t w_rows, w_cols; /* stored shape (FP4: bytes) */
    int s_lo, s_hi;         /* scale bytes used: s_lo..s_hi */
} dq_case;

/* Fills q (allocating w and s with malloc) for case c; returns the logical element count. */
int64_t dq_case_make(const dq_case *c, dsv4_qweight *q);
void dq_case_free(dsv4_qweight *q);
/* 0 when a and b (n elements of out_t) are equal bit for bit, or both NaN; else the first index + 1. */
int64_t dq_first_diff(dsv4_dtype out_t, const void *a, const void *b, int64_t n);
/* Fills n elements of out_t with the poison pattern (a NaN no dequant produces). */
void dq_poison(dsv4_dtype out_t, void *p, int64_t n);
/* Number of elements still holding the poison pattern. */
int64_t dq_poisoned(dsv4_dtype out_t, const void *p, int64_t n);

#endif
