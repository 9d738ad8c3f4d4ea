/* Shared by test_gptq*.c (see test_gptq_util.c): random weights and correlated activations, the
 * round-to-nearest references from quant/pack.h, and one GPTQ call through the host backend. */
#ifndef DSV4_TEST_GPTQ_UTIL_H
#define DSV4_TEST_GPTQ_UTIL_H

#include <stdint.h>

#include "ops.h"

#define TG_MSG 2048 /* room for a dsv4_err message */

/* A standard normal sample. */
float tg_normal(void);
/* W [n, k]: normal · sd rounded to BF16 (w holds the bits, wf the same values as float). */
void tg_weights(int64_t n, int64_t k, float sd, uint16_t *w, float *wf);
/* X [rows, k]: correlated activations, rank-k/4 factors plus noise, columns on different scales. */
void tg_corr_x(int64_t rows, int64_t k, float *x);
/* H [k, k] = 2/rows XᵀX through the host hess_acc (upper triangle; the lower one mirrored). */
int tg_hessian(dsv4_ops *o, const float *x, int64_t rows, int64_t k, float *H);
/* Round-to-nearest dequantized weights [n, k] as the packers compute them (INT4 group g, or NVFP4
 * with global scale gs when group == 16). */
int tg_rtn(const uint16_t *w, int64_t n, int64_t k, int group, float gs, float *out);
/* NVFP4 global scale of a BF16 weight (compressed-tensors' formula). */
float tg_gscale(const uint16_t *w, int64_t n, int64_t k);
/* ‖(A − B)·Xᵀ‖_F for A, B [n, k], X [rows, k]. */
double tg_out_err(const float *A, const float *B, const float *x, int64_t n, int64_t k, int64_t rows);
/* Arguments for W/H copies of the caller's (the op overwrites both); outputs allocated here. */
typedef struct tg_run {
    dsv4_gptq_args a;
    float *W, *H;
    uint8_t *q;
    void *scale;
    int32_t *g_idx;
} tg_run;
/* Copies W and H, fills a with the given options (block 128, damp 0.01 unless changed later) and
 * runs the op. Returns its result; msg (TG_MSG bytes, or NULL) gets the error. */
int tg_gptq(dsv4_ops *o, tg_run *r, const float *W, const float *H, int64_t n, int64_t k, dsv4_gptq_fmt fmt,
            int group, float gs, dsv4_actorder ao, dsv4_observer ob, int recompute, double damp, char *msg);
void tg_free(tg_run *r);
/* Dequantizes the run's q / scale / g_idx independently of the op (INT4 BF16 products, NVFP4
 * E2M1·e4m3/gs) into out [n, k]; -1 when a g_idx entry is not a group. */
int tg_dequant(const tg_run *r, float *out);

#endif
