/* Helpers of the CUDA calibration-op tests (test_gptq_cuda*.c): correlated calibration rows, the
 * exact Hessian in fp64, one gptq call on any backend from host arrays, round-to-nearest on the
 * host with kernels/gptq_math.h, and the output error tr(E·H·Eᵀ) of a quantized weight. */
#ifndef DSV4_TEST_GPTQ_CUDA_UTIL_H
#define DSV4_TEST_GPTQ_CUDA_UTIL_H

#include <stdint.h>

#include "ops.h"

/* rows × cols correlated activations (8 shared factors plus noise, per-column scales 0.2..2), row
 * stride ld; the columns listed in dead[0..ndead) are zero. malloc'd. */
float *gc_rows(int64_t rows, int64_t cols, int64_t ld, const int64_t *dead, int ndead);
/* H = (2/rows)·XᵀX in fp64, full [cols, cols]. malloc'd. */
double *gc_hessian(const float *x, int64_t rows, int64_t cols, int64_t ld);
/* The fp32 upper triangle of a full fp64 H (lower triangle zero), as hess_acc writes it. */
float *gc_upper(const double *H, int64_t K);
/* N × K random weights rounded to BF16, rows scaled 0.5..2. malloc'd. */
float *gc_weight(int64_t N, int64_t K);
/* NVFP4 global scale of a weight: 448·6 / amax. */
float gc_gscale(const float *W, int64_t n);

/* The outputs of one gptq call, on the host. */
typedef struct gc_run {
    dsv4_gptq_args a;   /* the call's arguments and report (pointers are backend memory, freed) */
    float *W;           /* [N, K] */
    uint8_t *q;         /* [N, K] */
    uint8_t *scale;     /* [N, K/group] × (2 INT4, 1 NVFP4) bytes */
    int32_t *g_idx;     /* [K] (GROUP) */
    int rc;
    char msg[512];
} gc_run;

/* Runs backend o's gptq on copies of W [N, K] and the upper-triangle H [K, K]; `cfg` gives every
 * setting (its pointers are ignored). Any failure to move memory is recorded as a test failure. */
void gc_gptq(dsv4_ops *o, const float *W, const float *Hup, const dsv4_gptq_args *cfg, gc_run *r);
void gc_free(gc_run *r);
size_t gc_scale_bytes(const dsv4_gptq_args *cfg);

/* Round-to-nearest of W with the config's format, group and observer (scales from W, groups in
 * original order): values into Wq, codes into q (either may be NULL). */
void gc_rtn(const float *W, const dsv4_gptq_args *cfg, float *Wq, uint8_t *q);
/* The value a stored code and scale stand for (what W must hold next to them). */
float gc_value(const dsv4_gptq_args *cfg, uint8_t q, const uint8_t *scale, int64_t si);
/* Σ_n (W - Wq)_n · H · (W - Wq)_nᵀ with the full fp64 H. */
double gc_out_err(const float *W, const float *Wq, const double *H, int64_t N, int64_t K);

/* Opens the CUDA backend with DSV4_NO_CUDA_LIBS set while its calibration path is decided, so
 * its ops take the fallback paths. NULL without a GPU. */
dsv4_ops *gc_open_nolibs(void);

#endif
