/* Shared by the runner tests: the tiny model opened on a backend, its eval rows, and the golden
 * values transformers computed (fixtures/dsv4-tiny/golden*.{json,safetensors}). */
#ifndef DSV4_TEST_RUNNER_FIXTURE_H
#define DSV4_TEST_RUNNER_FIXTURE_H

#include "io/safetensors.h"
#include "runner/runner.h"

typedef struct rf_fixture {
    dsv4_ops *ops;
    dsv4_model m;
    dsv4_st_file eval, gold;
    const int32_t *rows;      /* eval input_ids [64, 513] */
    int64_t n_rows, row_len;
    const float *logits0;     /* golden logits_row0_pos0_31 [32, 1024] */
    const float *nll;         /* golden nll [64, 512] */
    const float *nll_mtp;     /* golden nll_mtp [64, 511] */
    const int32_t *greedy;    /* golden greedy_tokens [16, 160] */
} rf_fixture;

/* Opens everything on `ops` (taken over: released by rf_close); 0 or -1 with the reason printed. */
int rf_open(rf_fixture *f, dsv4_ops *ops, int flags);
void rf_close(rf_fixture *f);
/* A number from golden.json ("ppl", "mtp_accept_teacher_forced", ...). */
double rf_golden_num(const char *key);
/* golden.json's rope_inv_freq table ("main" or "compress") into out[n]; returns n read. */
int rf_golden_rope(const char *which, float *out, int cap);
/* Largest |a - ref| over n values and largest |ref|; returns their ratio (the difference itself
 * when ref is all zero). Either output pointer may be NULL. */
double rf_max_diff(const float *a, const float *ref, int64_t n, double *max_abs_diff, double *max_abs_ref);

#endif
