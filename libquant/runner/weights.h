/* Model weights for the runner, read from any artifact the toolchain reads or writes: DeepSeek's
 * release layout (FP8 e4m3 + e8m0 block scales, FP4 e2m1 experts), BF16 / F32 conversions,
 * compressed-tensors W4A16 (pack-quantized INT4), NVFP4 and FP8-block, FP8 with weight_scale_inv,
 * in release names or transformers names (model. prefix, e_score_correction_bias, ...).
 *
 * The source is opened once (dsv4_wsrc_open); weights are then loaded one layer at a time into a
 * backend (kernels/ops.h), so a caller that walks the layers (calibration) holds one layer, and
 * the runner that keeps them all loads each once. Small tensors (norms, hc_*, sinks, ape) become
 * F32 arrays in backend memory; the router's tid2eid (int32) and gate bias (float) stay in host
 * memory, because routing runs on the host. */
#ifndef DSV4_RUNNER_WEIGHTS_H
#define DSV4_RUNNER_WEIGHTS_H

#include "io/safetensors.h"
#include "model/config.h"
#include "ops.h"
#include "util/err.h"

typedef struct dsv4_wsrc dsv4_wsrc; /* opened checkpoint + canonical-name view (opaque) */

/* Opens the artifact folder (config.json + safetensors). The config is read from the folder. Two
 * on-disk names with one canonical name (e.g. `layers.0.attn.wq_a.weight` beside
 * `model.layers.0.self_attn.q_a_proj.weight`) are refused. A source serves one thread at a time
 * (views share its list of conversion buffers). */
int dsv4_wsrc_open(const char *path, dsv4_wsrc **out, dsv4_err *e);
void dsv4_wsrc_close(dsv4_wsrc *s);
const dsv4_config *dsv4_wsrc_config(const dsv4_wsrc *s);
const char *dsv4_wsrc_path(const dsv4_wsrc *s);

/* Host view of one linear module by canonical release stem ("layers.3.attn.wq_a",
 * "layers.1.ffn.experts.7.w2", "mtp.0.e_proj"), whatever its storage: w/s point into the mapped
 * file, or into buffers owned by the source when a conversion was needed (e8m0 or BF16 scales
 * into float, F16 into F32, a misaligned tensor copied); dsv4_wsrc_lin_done releases those (they
 * are released at close otherwise). Fails naming the file, the tensor and the expected shape/dtype.
 * Storage forms (verify/astore.h) and what they become:
 *   BF16 / F32 weight -> DSV4_LW_BF16 / DSV4_LW_F32; F16 -> DSV4_LW_F32 (exact)
 *   release FP8 (.scale e8m0), .weight_scale_inv (F32/BF16/F16/E8M0), compressed-tensors FP8
 *     .weight_scale (BF16/F32) per 128x128 block -> DSV4_LW_FP8_BLOCK with float scales (exact);
 *     per-row or per-tensor FP8 scales -> DSV4_LW_F32 (e4m3·s, exact)
 *   release FP4 (I8 + e8m0 per 32) -> DSV4_LW_MXFP4
 *   compressed-tensors INT4 pack-quantized (BF16 scale) -> DSV4_LW_INT4 (group = in / scale
 *     columns); with an act-order weight_g_idx that is not the plain grouping -> DSV4_LW_BF16
 *     holding bf16((u-8)·s[g_idx]) (exact); weight_zero_point (asymmetric) is refused
 *   compressed-tensors NVFP4 -> DSV4_LW_NVFP4, gscale = weight_global_scale;
 *   ModelOpt NVFP4 -> DSV4_LW_NVFP4, gscale = 1 / weight_scale_2 (f32(s·scale_2) and
 *     f32(s / (1/scale_2)) can differ in the last bit unless weight_scale_2 is a power of two)
 *   transformers' fused BF16/F32 experts (mlp.experts.gate_up_proj / down_proj) -> a row slice */
int dsv4_wsrc_lin(dsv4_wsrc *s, const char *stem, int64_t out, int64_t in, dsv4_lin *host, dsv4_err *e);
/* The same module as DSV4_LW_F32 (dequantized, exact), for the projections the model runs in fp32. */
int dsv4_wsrc_lin_f32(dsv4_wsrc *s, const char *stem, int64_t out, int64_t in, dsv4_lin *host, dsv4_err *e);
/* Releases the buffers a view was converted into (no-op for views into the file); zeroes *host. */
void dsv4_wsrc_lin_done(dsv4_wsrc *s, dsv4_lin *host);
/* A small float tensor by canonical name, converted to float (BF16/F16/F32 accepted); n elements
 * expected. `dst` is host memory. */
int dsv4_wsrc_f32(dsv4_wsrc *s, const char *name, int64_t n, float *dst, dsv4_err *e);
/* The same with the exact shape checked (ndim dims). */
int dsv4_wsrc_f32_dims(dsv4_wsrc *s, const char *name, int ndim, const int64_t *dims, float *dst, dsv4_err *e);
/* A tensor by canonical name (NULL when absent) and the path of the file that holds it. */
const dsv4_tensor *dsv4_wsrc_tensor(const dsv4_wsrc *s, const char *name);
const char *dsv4_wsrc_file_of(const dsv4_wsrc *s, const dsv4_tensor *t);

/* ------------------------------------------------------------------------------------------ */

typedef struct dsv4_attn_w {
    dsv4_lin wq_a, wq_b, wkv, wo_a, wo_b;
    float *q_norm, *kv_norm, *sink;              /* [q_lora], [head_dim], [n_heads] */
    /* compressor (ratio != 0) */
    dsv4_lin c_wkv, c_wgate;                     /* F32 on every backend (the projection is fp32) */
    float *c_ape, *c_norm;                       /* [ratio, C·head_dim], [head_dim] */
    /* indexer (ratio == 4) */
    dsv4_lin i_wq_b, i_wproj, i_wkv, i_wgate;
    float *i_ape, *i_norm;                       /* [ratio, 2·index_head_dim], [index_head_dim] */
} dsv4_attn_w;

typedef struct dsv4_ffn_w {
    dsv4_lin gate;                               /* [E, d], F32 */
    float *gate_bias;                            /* host [E] or NULL (hash layers) */
    int32_t *tid2eid;                            /* host [vocab, K] or NULL */
    dsv4_lin sh_w1, sh_w3, sh_w2;
    dsv4_lin *w1, *w3, *w2;                      /* [E] each */
    int64_t n_experts;                           /* E: entries of w1 / w3 / w2 */
} dsv4_ffn_w;

typedef struct dsv4_layer_w {
    int id;                                      /* 0..n_layers-1, or n_layers+i for MTP block i */
    dsv4_attn_type type;
    int is_hash, is_mtp;
    float *attn_norm, *ffn_norm;
    float *hc_attn_fn, *hc_attn_base, *hc_attn_scale;
    float *hc_ffn_fn, *hc_ffn_base, *hc_ffn_scale;
    dsv4_attn_w attn;
    dsv4_ffn_w ffn;
    /* MTP only */
    dsv4_lin e_proj, h_proj;
    float *enorm, *hnorm, *norm;
    float *hc_head_fn, *hc_head_base, *hc_head_scale;
    size_t bytes;                                /* backend bytes held */
} dsv4_layer_w;

typedef struct dsv4_global_w {
    dsv4_lin embed, head;                        /* [vocab, d] */
    float *norm;                                 /* [d] */
    float *hc_head_fn, *hc_head_base, *hc_head_scale;
    size_t bytes;
} dsv4_global_w;

/* Loads layer `id` (main layer or n_layers + i for MTP block i) into the backend: every tensor of
 * spec/dsv4_architecture.md §2.3-2.4 with its shape checked against the config. Linears go through
 * o->lin_load (the gate and the compressor / indexer-compressor wkv, wgate as F32), float vectors
 * through o->alloc + o->upload; tid2eid (I64 or I32) becomes host int32 with every id checked in
 * [0, n_routed_experts). On failure nothing stays loaded and *w is zeroed. */
int dsv4_layer_w_load(dsv4_wsrc *s, int id, dsv4_ops *o, dsv4_layer_w *w, dsv4_err *e);
/* Releases everything (NULL-safe; idempotent on a zeroed struct). */
void dsv4_layer_w_free(dsv4_ops *o, dsv4_layer_w *w);
/* embed (F32 or BF16 as stored; another storage is dequantized to F32, the embed op reads rows),
 * head (as stored), norm and hc_head_*. */
int dsv4_global_w_load(dsv4_wsrc *s, dsv4_ops *o, dsv4_global_w *w, dsv4_err *e);
void dsv4_global_w_free(dsv4_ops *o, dsv4_global_w *w);

#endif
