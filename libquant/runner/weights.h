/* Model weights for the runner, read from any artifact the toolchain reads or writes: DeepSeek's
 * release layout (FP8 e4m3 + e8m0 block scales, FP4 e2m1 experts), BF16 / F32 conversions,
 * compressed-tensors W4A16 (pack-quantized INT4), NVFP4 and FP8-block, FP8 with weight_scale_inv,
 * in release names or transformers names (model. prefix, e_score_correction_bias, ...).
 *
 * The source is opened once (dsv4_wsrc_open); weights are then loaded one layer at a time into a
 * backend (kernels/ops.h), so a caller that walks the layers (calibration) holds one layer, and
 * the runner that keeps them all loads each once. Small tensors (norms, hc_*, sinks, ape, gate
 * bias) become F32 arrays in backend memory; tid2eid stays a host int32 array (routing is on the
 * host). */
#ifndef DSV4_RUNNER_WEIGHTS_H
#define DSV4_RUNNER_WEIGHTS_H

#include "model/config.h"
#include "ops.h"
#include "util/err.h"

typedef struct dsv4_wsrc dsv4_wsrc; /* opened checkpoint + canonical-name view (opaque) */

/* Opens the artifact folder (config.json + safetensors). The config is read from the folder. */
int dsv4_wsrc_open(const char *path, dsv4_wsrc **out, dsv4_err *e);
void dsv4_wsrc_close(dsv4_wsrc *s);
const dsv4_config *dsv4_wsrc_config(const dsv4_wsrc *s);
const char *dsv4_wsrc_path(const dsv4_wsrc *s);

/* Host view of one linear module by canonical release stem ("layers.3.attn.wq_a",
 * "layers.1.ffn.experts.7.w2", "mtp.0.e_proj"), whatever its storage: w/s point into the mapped
 * file, or into buffers owned by the source when a conversion was needed (e.g. e8m0 or BF16
 * scales into float). Fails naming the file, the tensor and the expected shape/dtype. */
int dsv4_wsrc_lin(dsv4_wsrc *s, const char *stem, int64_t out, int64_t in, dsv4_lin *host, dsv4_err *e);
/* A small float tensor by canonical name, converted to float (BF16/F16/F32 accepted); n elements
 * expected. `dst` is host memory. */
int dsv4_wsrc_f32(dsv4_wsrc *s, const char *name, int64_t n, float *dst, dsv4_err *e);

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
    float *gate_bias;                            /* [E] or NULL (hash layers) */
    int32_t *tid2eid;                            /* host [vocab, K] or NULL */
    dsv4_lin sh_w1, sh_w3, sh_w2;
    dsv4_lin *w1, *w3, *w2;                      /* [E] each */
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

/* Loads layer `id` (main layer or n_layers + i for MTP block i) into the backend. */
int dsv4_layer_w_load(dsv4_wsrc *s, int id, dsv4_ops *o, dsv4_layer_w *w, dsv4_err *e);
void dsv4_layer_w_free(dsv4_ops *o, dsv4_layer_w *w);
int dsv4_global_w_load(dsv4_wsrc *s, dsv4_ops *o, dsv4_global_w *w, dsv4_err *e);
void dsv4_global_w_free(dsv4_ops *o, dsv4_global_w *w);

#endif
