/* Shared by the weight-loading tests (test_wload*.c): the CPU backend (dsv4_ops_cpu: every
 * format dequantized to F32 at load) with a count of live allocations and linears; the expected float values of a module
 * computed straight from its stored tensors with the release dequant (formats/dequant.h) and the
 * compressed-tensors unpackers (quant/pack.h); and the named lists of a loaded layer's linears
 * and float vectors. */
#ifndef DSV4_TEST_WLOAD_UTIL_H
#define DSV4_TEST_WLOAD_UTIL_H

#include "io/checkpoint.h"
#include "runner/weights.h"

dsv4_ops *wl_ops(void);
long wl_live(void); /* backend allocations and linears not yet freed */

/* Float values [rows, cols] of the module `stem` as stored in ck (release names), computed from
 * its tensors: .weight BF16/F16/F32, release FP8 (.scale e8m0), FP4 (I8 + .scale), compressed-tensors
 * FP8 (.weight_scale BF16 through pack.h; other dtypes and .weight_scale_inv per 128x128 block),
 * INT4 (.weight_packed I32) or NVFP4 (.weight_packed U8). Also sets
 * *n_parts to the number of the module's tensors it used. NULL (reported) when unknown. */
float *wl_expected(const dsv4_ckpt *ck, const char *stem, int64_t rows, int64_t cols, int *n_parts);

/* Marks tensor `name` of ck as used (used[] is indexed like ck->by_name); 1 when it exists. */
int wl_mark(const dsv4_ckpt *ck, unsigned char *used, const char *name);
/* Marks every part (.weight, .scale, .weight_scale, ... ) of module `stem`. */
void wl_mark_module(const dsv4_ckpt *ck, unsigned char *used, const char *stem);

typedef struct wl_lin {
    char stem[160];
    const dsv4_lin *lin;
} wl_lin;
typedef struct wl_vec {
    char name[160];
    const float *v;
    int64_t n;
    int host;          /* held in host memory (the router's bias), not counted in the backend bytes */
} wl_vec;

/* Every linear / float vector a loaded layer (or the globals) holds, with its canonical name. */
size_t wl_layer_lins(const dsv4_config *c, const dsv4_layer_w *w, wl_lin *out, size_t cap);
size_t wl_layer_vecs(const dsv4_config *c, const dsv4_layer_w *w, wl_vec *out, size_t cap);
size_t wl_global_lins(const dsv4_global_w *w, wl_lin *out);
size_t wl_global_vecs(const dsv4_config *c, const dsv4_global_w *w, wl_vec *out);

#endif
