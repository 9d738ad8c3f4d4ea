/* The host backend's ops (kernels/ops.h), one declaration per table entry, shared by the files
 * that implement them (ops_linear.c, ops_norm.c, ops_hc.c, ops_attn.c, ops_moe.c, ops_hess.c,
 * ops_gptq.c). */
#ifndef DSV4_OPS_CPU_H
#define DSV4_OPS_CPU_H

#include "gpu.h"
#include "ops.h"

void dsv4_cpu_set_threads(int nthreads);

int dsv4_cpu_linear(dsv4_ops *o, const dsv4_lin *w, const float *x, int64_t T, float *y, dsv4_err *e);
int dsv4_cpu_linear_grouped(dsv4_ops *o, const dsv4_lin *w, int64_t G, const float *x, int64_t T, float *y,
                            dsv4_err *e);
int dsv4_cpu_embed(dsv4_ops *o, const dsv4_lin *table, const int32_t *ids, int64_t T, float *y, dsv4_err *e);
int dsv4_cpu_rmsnorm(dsv4_ops *o, const float *x, int64_t rows, int64_t n, const float *w, float eps, float *y,
                     dsv4_err *e);
int dsv4_cpu_rope(dsv4_ops *o, float *x, int64_t T, int64_t sub, int64_t dim, int64_t rope_dim,
                  const int64_t *pos, const float *inv_freq, int inverse, dsv4_err *e);
int dsv4_cpu_hc_pre(dsv4_ops *o, const dsv4_hc_args *a, dsv4_err *e);
int dsv4_cpu_hc_head(dsv4_ops *o, const dsv4_hc_args *a, dsv4_err *e);
int dsv4_cpu_hc_post(dsv4_ops *o, const float *a, const float *R, const float *post, const float *comb,
                     int64_t T, int64_t hc, int64_t d, float *X, dsv4_err *e);
int dsv4_cpu_attention(dsv4_ops *o, const dsv4_attn_args *a, dsv4_err *e);
int dsv4_cpu_pool(dsv4_ops *o, const dsv4_pool_args *a, dsv4_err *e);
int dsv4_cpu_indexer(dsv4_ops *o, const dsv4_index_args *a, dsv4_err *e);
int dsv4_cpu_moe(dsv4_ops *o, const dsv4_moe_args *a, dsv4_err *e);
int dsv4_cpu_swiglu(dsv4_ops *o, const dsv4_lin *w1, const dsv4_lin *w3, const dsv4_lin *w2, const float *x,
                    int64_t T, float limit, float *y, dsv4_err *e);
int dsv4_cpu_swiglu_act(dsv4_ops *o, const float *g, const float *u, int64_t n, float limit, float *h, dsv4_err *e);
int dsv4_cpu_axpy(dsv4_ops *o, float alpha, const float *x, int64_t n, float *y, dsv4_err *e);
int dsv4_cpu_add_bcast(dsv4_ops *o, const float *v, int64_t T, int64_t rep, int64_t d, float *X, dsv4_err *e);
int dsv4_cpu_score(dsv4_ops *o, float *logits, int64_t T, int64_t E, int score_func, dsv4_err *e);
int dsv4_cpu_hess_acc(dsv4_ops *o, const float *x, int64_t rows, int64_t cols, int64_t ld, float *H, double *n,
                      dsv4_err *e);
int dsv4_cpu_gptq(dsv4_ops *o, dsv4_gptq_args *a, dsv4_err *e);

#endif
