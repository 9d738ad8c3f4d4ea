/* The compute backend of the inference runner: every numeric operation of the DeepSeek-V4 forward
 * (spec/dsv4_architecture.md §3), behind one table of function pointers. The model code
 * (libquant/runner) is written once against this table; kernels/cpu/ops_*.c implement it on the
 * host (the reference: plain fp32 loops and OpenBLAS), kernels/cuda/ops_*.cu on a GPU. Each CUDA
 * op is tested against the CPU op on random inputs (tests/unit/test_ops_cuda.c).
 *
 * Conventions
 *  - Activations are fp32, row-major, in the backend's memory (host memory for the CPU backend,
 *    device memory for CUDA): `T` rows (tokens) of a fixed width.
 *  - Small integer arrays that steer the math (positions, token ids) are HOST arrays; the backend
 *    copies them where it needs them.
 *  - Every op returns 0, or -1 with a message in `e`.
 *  - Math follows transformers' fp32 forward (what fixtures/dsv4-tiny/golden.json was made with):
 *    no activation quantization, no KV/indexer FP8/FP4 simulation, softmaxes in fp32.
 */
#ifndef DSV4_KERNELS_OPS_H
#define DSV4_KERNELS_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Linear weights in every storage the toolchain reads or writes. y[T, out] = x[T, in] · Wᵀ.      */

typedef enum dsv4_lw_fmt {
    DSV4_LW_F32 = 0,   /* w: float [out, in] */
    DSV4_LW_BF16,      /* w: uint16 bf16 [out, in] */
    DSV4_LW_FP8_BLOCK, /* w: e4m3 bytes [out, in]; s: float [ceil(out/128), ceil(in/128)], W = e4m3·s
                          (release e8m0 .scale, weight_scale_inv and compressed-tensors BF16/F32
                          weight_scale are all turned into these float scales, exactly) */
    DSV4_LW_MXFP4,     /* release FP4 expert: w: bytes [out, in/2] (element 2k low nibble), s: e8m0
                          bytes [out, in/32]; W = E2M1[code]·2^(s-127) */
    DSV4_LW_INT4,      /* compressed-tensors pack-quantized: w: int32 [out, in/8] (u = q+8 in bits
                          4·(j%8)), s: bf16 [out, in/group]; W = bf16((u-8)·s) */
    DSV4_LW_NVFP4,     /* compressed-tensors nvfp4: w: bytes [out, in/2] (even element low nibble),
                          s: e4m3 bytes [out, in/16], gscale: float; W = E2M1[code]·f32(e4m3(s)/gscale) */
    DSV4_LW_FMT_COUNT
} dsv4_lw_fmt;

typedef struct dsv4_lin {
    int64_t out, in;     /* logical shape */
    dsv4_lw_fmt fmt;
    int group;           /* INT4: group size along in; 0 otherwise */
    float gscale;        /* NVFP4 global scale; 0 otherwise */
    void *w, *s;         /* data (backend memory once loaded; host memory as the loader gives it) */
    size_t w_bytes, s_bytes;
    int owned;           /* 1 when free_lin must free w and s */
} dsv4_lin;

/* "f32", "bf16", "fp8_block", "mxfp4", "int4", "nvfp4" */
const char *dsv4_lw_fmt_name(dsv4_lw_fmt f);
/* Byte sizes of w and s for a format and shape; -1 when the shape does not fit the format. */
int dsv4_lw_sizes(dsv4_lw_fmt f, int64_t out, int64_t in, int group, size_t *w_bytes, size_t *s_bytes);
/* Dequantizes a HOST weight of any format to float [out, in] (the CPU reference of every GEMM). */
int dsv4_lin_dequant_f32(const dsv4_lin *host, float *out, dsv4_err *e);

/* ------------------------------------------------------------------------------------------ */
/* Arguments of the larger ops.                                                                  */

/* Sparse attention with a sink, one shared K=V head, for T queries of H heads × D.
 * Keys: `nwin` window entries kv[nwin, D] with positions kvpos[nwin] (host; < 0 = empty slot),
 * visible to query t iff qpos[t] - window < kvpos <= qpos[t]; plus `ncmp` compressed entries
 * ckv[ncmp, D]. Compressed entry w is visible to query t iff w < (qpos[t]+1)/ratio and, when
 * `sel` is given (CSA), w is one of sel[t, 0..nsel) (backend memory, int32, -1 = none; may
 * repeat no entry). Without sel (HCA) every causally visible entry is used.
 * l_j = (q·k_j)·scale; out = Σ softmax_j(l_j ; sink[h] in the denominator) · k_j. */
typedef struct dsv4_attn_args {
    const float *q;          /* [T, H, D] */
    int64_t T, H, D;
    const int64_t *qpos;     /* host [T] */
    const float *kv;         /* [nwin, D] */
    const int64_t *kvpos;    /* host [nwin] */
    int64_t nwin, window;
    const float *ckv;        /* [ncmp, D] or NULL */
    int64_t ncmp, ratio;
    const int32_t *sel;      /* [T, nsel] or NULL */
    int64_t nsel;
    const float *sink;       /* [H] */
    float scale;
    float *out;              /* [T, H, D] */
} dsv4_attn_args;

/* Compressor pooling (spec §3.3): raw projections a (kv) and b (gate scores, before the position
 * bias) of n_win·ratio consecutive tokens starting at a block boundary, each row C·Dc wide
 * (C = 2 with overlap, else 1). Entry w = Σ_slots softmax_slot(b + ape[slot]) ⊙ a per channel over
 * the block's `ratio` tokens (second half of the row when overlapping) and, with overlap, the
 * previous block's tokens (first half of the row); the previous block of entry 0 is prev_a/prev_b
 * ([ratio, C·Dc] rows, or NULL = absent: weight 0). */
typedef struct dsv4_pool_args {
    const float *a, *b;      /* [n_win·ratio, C·Dc] */
    const float *prev_a, *prev_b;
    const float *ape;        /* [ratio, C·Dc] */
    int64_t n_win, ratio, Dc;
    int overlap;
    float *out;              /* [n_win, Dc] */
} dsv4_pool_args;

/* Lightning indexer (spec §3.3, transformers' DeepseekV4Indexer): for each query t,
 * score_w = Σ_h wts[t,h]·wscale · relu(q[t,h]·k[w])·qscale over the causally visible entries
 * w < (qpos[t]+1)/ratio, then the top min(topk, nk) entries by score; slots beyond the visible
 * count are -1. Ties go to the lower index. */
typedef struct dsv4_index_args {
    const float *q;          /* [T, Hi, Di] */
    const float *k;          /* [nk, Di] */
    const float *wts;        /* [T, Hi] */
    int64_t T, Hi, Di, nk, ratio, topk;
    const int64_t *qpos;     /* host [T] */
    float qscale, wscale;
    int32_t *sel;            /* [T, topk] */
} dsv4_index_args;

/* mHC pre (spec §3.2): X [T, hc, d] → y [T, d] = Σ_i pre_i X_i, post [T, hc], comb [T, hc, hc]. */
typedef struct dsv4_hc_args {
    const float *X;
    int64_t T, hc, d;
    const float *fn;         /* [(2+hc)·hc, hc·d] (head: [hc, hc·d]) */
    const float *base;       /* [(2+hc)·hc] (head: [hc]) */
    const float *scale;      /* [3] (head: [1]) */
    int iters;
    float eps, norm_eps;
    float *y, *post, *comb;  /* head: post and comb unused (NULL) */
} dsv4_hc_args;

/* Routed experts (spec §3.4): for each token t and k < K, out[t] += wts[t,k] ·
 * w2(silu(min(w1 x, limit)) · clamp(w3 x, ±limit)) with experts idx[t,k] (host arrays). out is
 * accumulated, not overwritten. */
typedef struct dsv4_moe_args {
    const float *x;          /* [T, d] */
    int64_t T, K, E;
    const int32_t *idx;      /* host [T, K] */
    const float *wts;        /* host [T, K] */
    const dsv4_lin *w1, *w3, *w2; /* [E] each (w2: [d, inter]) */
    float limit;
    float *out;              /* [T, d] */
} dsv4_moe_args;

/* GPTQ (spec/formats_algorithms.md §4.3–§4.8; the quantizer arithmetic is kernels/gptq_math.h).
 * One weight W [N, K] with its Hessian H [K, K], both fp32 in backend memory:
 *  1. H is read from its upper triangle (row-major, H[i][j] for i <= j; what hess_acc writes).
 *  2. Act order (static or group): perm = columns by diag(H) descending, STABLE (ties keep the
 *     lower column first); W and H are permuted.
 *  3. Dead columns (diag(H) == 0): H[c][c] = 1 and W[:, c] = 0.
 *  4. damp = damp_frac · mean(diag H) added to the diagonal; Cholesky of H in fp64, inverse, the
 *     upper Cholesky factor U of H⁻¹ (H⁻¹ = UᵀU), rounded to fp32. When a factorization fails,
 *     damp_frac is raised by 0.01 and retried while it is <= 1 (a.attempts counts the tries);
 *     past that the op falls back to U = I (round-to-nearest) and sets a.rtn_fallback.
 *  5. Scales. recompute == 0 (llm-compressor): every group's scale is chosen up front by the
 *     observer from the original W — in original column order for actorder NONE/STATIC (group
 *     g = columns [g·group, (g+1)·group), a permuted column looks its group up), in permuted order
 *     for GROUP (group g = permuted columns [g·group, ...), g_idx[c] = the group of original
 *     column c). recompute == 1 (IST-DASLab's default): a group's scale is chosen by the observer
 *     when the column loop reaches the group's first (permuted) column, from the current,
 *     error-updated values of the group's columns (in-block updates included); with actorder
 *     STATIC this is refused (its groups are not contiguous in the loop's order).
 *  6. Column loop in blocks of `block` columns with lazy updates (§4.4): q = fake_quant(w),
 *     e = (w - q) / U[c][c], W1[:, c+1:i2] -= e ⊗ U[c, c+1:i2]; W[:, i2:] -= Err1 · U[i1:i2, i2:].
 *     loss = Σ (w - q)² / U[c][c]² / 2 over rows and columns.
 *  7. Outputs in ORIGINAL column order: q[N, K] one byte per element (INT4: the integer in
 *     [-8, 7] as int8; NVFP4: the 4-bit E2M1 code), scale [N, K/group] (INT4: BF16 bits; NVFP4:
 *     e4m3 codes), g_idx [K] (HOST int32, GROUP only; NULL otherwise). W is overwritten with the
 *     fake-quantized values (original order); H is destroyed. */
typedef enum dsv4_gptq_fmt { DSV4_GPTQ_INT4 = 0, DSV4_GPTQ_NVFP4 } dsv4_gptq_fmt;
typedef enum dsv4_actorder { DSV4_ACTORDER_NONE = 0, DSV4_ACTORDER_STATIC, DSV4_ACTORDER_GROUP } dsv4_actorder;
typedef enum dsv4_observer { DSV4_OBSERVER_MINMAX = 0, DSV4_OBSERVER_MSE } dsv4_observer;

typedef struct dsv4_gptq_args {
    float *W;                /* [N, K] in, fake-quantized values out */
    float *H;                /* [K, K] upper triangle in; destroyed */
    int64_t N, K;
    dsv4_gptq_fmt fmt;
    int group;               /* INT4: 32, 64 or 128 (K % group == 0); NVFP4: 16 */
    float gscale;            /* NVFP4 global scale (the fused pair's, computed by the caller) */
    int block;               /* columns per lazy block (128; a multiple of group) */
    double damp_frac;        /* 0.01 */
    dsv4_actorder actorder;
    dsv4_observer observer;
    int recompute;           /* see 5. */
    uint8_t *q;              /* out [N, K] */
    void *scale;             /* out [N, K/group]: uint16 BF16 bits (INT4) or uint8 e4m3 (NVFP4) */
    int32_t *g_idx;          /* out, HOST [K] (GROUP), else NULL */
    /* report (host) */
    double loss;             /* Σ (w - q)² / d² / 2 */
    double damp_used;        /* the damp_frac the factorization succeeded with */
    int attempts;            /* factorizations tried */
    int rtn_fallback;        /* 1 when every damping failed and U = I was used */
    int64_t dead;            /* dead columns */
} dsv4_gptq_args;

/* Start of every backend's gptq op: zeroes the report fields and checks the settings (shapes,
 * format and group, block, damping, enum values, act order with recompute and g_idx); "<who>: ..."
 * errors. W and H's values are the backend's to scan. */
int dsv4_gptq_begin(dsv4_gptq_args *a, const char *who, dsv4_err *e);

/* ------------------------------------------------------------------------------------------ */

typedef struct dsv4_ops dsv4_ops;
struct dsv4_ops {
    const char *name;        /* "cpu" or "cuda" */
    void *ctx;
    int on_host;             /* 1 when backend memory is host memory */
    /* Frees the backend's resources and the table itself (NULL: the table is just free()d). */
    void (*release)(dsv4_ops *o);

    /* Memory: zero-filled allocation. */
    void *(*alloc)(dsv4_ops *o, size_t bytes, dsv4_err *e);
    void (*free)(dsv4_ops *o, void *p);
    int (*upload)(dsv4_ops *o, void *dst, const void *src, size_t n, dsv4_err *e);
    int (*download)(dsv4_ops *o, void *dst, const void *src, size_t n, dsv4_err *e);
    int (*copy)(dsv4_ops *o, void *dst, const void *src, size_t n, dsv4_err *e);
    int (*sync)(dsv4_ops *o, dsv4_err *e);

    /* Weights: takes a HOST weight (as the loader gives it) into backend form. The CPU backend
     * dequantizes every format to F32 once; CUDA keeps the packed format and its kernels read it. */
    int (*lin_load)(dsv4_ops *o, const dsv4_lin *host, dsv4_lin *dev, dsv4_err *e);
    void (*lin_free)(dsv4_ops *o, dsv4_lin *dev);

    /* y[T, out] = x[T, in]·Wᵀ (y overwritten). */
    int (*linear)(dsv4_ops *o, const dsv4_lin *w, const float *x, int64_t T, float *y, dsv4_err *e);
    /* Grouped output projection: x [T, G, in/… ] viewed as G groups of w->in columns; rows
     * [g·out/G, (g+1)·out/G) of W act on group g: y[T, out]. */
    int (*linear_grouped)(dsv4_ops *o, const dsv4_lin *w, int64_t G, const float *x, int64_t T, float *y,
                          dsv4_err *e);
    /* Rows of an F32 or BF16 table: y[t] = table[ids[t]] (ids host). */
    int (*embed)(dsv4_ops *o, const dsv4_lin *table, const int32_t *ids, int64_t T, float *y, dsv4_err *e);

    /* RMSNorm over rows of n: y = x·rsqrt(mean(x²)+eps)·w (w NULL: unweighted). y may be x. */
    int (*rmsnorm)(dsv4_ops *o, const float *x, int64_t rows, int64_t n, const float *w, float eps, float *y,
                   dsv4_err *e);
    /* Interleaved RoPE in place on the last rope_dim of each of `sub` vectors of width `dim` per row
     * (row stride sub·dim), row t at position pos[t] (host), angle fp32(fp32(pos)·inv_freq[i]);
     * inverse = conjugate rotation. inv_freq: host [rope_dim/2]. */
    int (*rope)(dsv4_ops *o, float *x, int64_t T, int64_t sub, int64_t dim, int64_t rope_dim,
                const int64_t *pos, const float *inv_freq, int inverse, dsv4_err *e);

    int (*hc_pre)(dsv4_ops *o, const dsv4_hc_args *a, dsv4_err *e);
    int (*hc_head)(dsv4_ops *o, const dsv4_hc_args *a, dsv4_err *e);
    /* X'[t,k] = post[t,k]·a[t] + Σ_i comb[t,i,k]·R[t,i]  (X' may not alias R). */
    int (*hc_post)(dsv4_ops *o, const float *a, const float *R, const float *post, const float *comb,
                   int64_t T, int64_t hc, int64_t d, float *X, dsv4_err *e);

    int (*attention)(dsv4_ops *o, const dsv4_attn_args *a, dsv4_err *e);
    int (*pool)(dsv4_ops *o, const dsv4_pool_args *a, dsv4_err *e);
    int (*indexer)(dsv4_ops *o, const dsv4_index_args *a, dsv4_err *e);
    int (*moe)(dsv4_ops *o, const dsv4_moe_args *a, dsv4_err *e);
    /* Shared expert: y[T, d] = w2(silu(min(w1 x, limit))·clamp(w3 x, ±limit)) (y overwritten). */
    int (*swiglu)(dsv4_ops *o, const dsv4_lin *w1, const dsv4_lin *w3, const dsv4_lin *w2, const float *x,
                  int64_t T, float limit, float *y, dsv4_err *e);

    /* y[i] += alpha·x[i] for n elements. */
    int (*axpy)(dsv4_ops *o, float alpha, const float *x, int64_t n, float *y, dsv4_err *e);
    /* X[t, i, :] += v[t, :] for each of the `rep` rows per t (broadcast over streams). */
    int (*add_bcast)(dsv4_ops *o, const float *v, int64_t T, int64_t rep, int64_t d, float *X, dsv4_err *e);
    /* Routing scores: s[T, E] = score_func(logits) (sqrt(softplus), sigmoid or softmax), in place. */
    int (*score)(dsv4_ops *o, float *logits, int64_t T, int64_t E, int score_func, dsv4_err *e);

    /* ---- calibration (GPTQ, issue 6) ---- */
    /* Running Hessian: with n the rows seen so far (*n, updated), H = n/(n+rows)·H +
     * 2/(n+rows)·XᵀX over X = rows × cols with row stride ld (>= cols) floats; only the upper
     * triangle of H [cols, cols] (row-major, i <= j) is written. rows == 0 is a no-op. */
    int (*hess_acc)(dsv4_ops *o, const float *x, int64_t rows, int64_t cols, int64_t ld, float *H, double *n,
                    dsv4_err *e);
    /* GPTQ of one weight (dsv4_gptq_args above). */
    int (*gptq)(dsv4_ops *o, dsv4_gptq_args *a, dsv4_err *e);
    /* Expert activation (the middle of swiglu): h[i] = silu(min(g[i], limit)) · clamp(u[i], ±limit)
     * for n elements (h may alias g). */
    int (*swiglu_act)(dsv4_ops *o, const float *g, const float *u, int64_t n, float limit, float *h, dsv4_err *e);
};

/* The host backend (always available). nthreads <= 0: one per core. */
dsv4_ops *dsv4_ops_cpu(int nthreads);
/* The CUDA backend on the current device; NULL with a message when built without CUDA or no GPU. */
dsv4_ops *dsv4_ops_cuda(dsv4_err *e);
/* "cpu", "cuda" or "auto" (CUDA when a GPU is there, else CPU). */
dsv4_ops *dsv4_ops_by_name(const char *name, int nthreads, dsv4_err *e);
void dsv4_ops_release(dsv4_ops *o);

#ifdef __cplusplus
}
#endif

#endif
