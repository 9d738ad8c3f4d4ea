/* Internals of the host GPTQ op (kernels/ops.h dsv4_gptq_args), shared by ops_gptq.c (argument
 * checks, act order, dead columns, the factor U of H⁻¹, the outputs) and ops_gptq_loop.c (the group
 * scales and the column loop with lazy updates). */
#ifndef DSV4_OPS_GPTQ_H
#define DSV4_OPS_GPTQ_H

#include <stdint.h>

#include "ops.h"

typedef struct dsv4_gq_job {
    dsv4_gptq_args *a;
    int64_t N, K, ng;        /* ng = K / group: scale columns */
    float *Wp;               /* [N, K] the weight in loop (permuted) column order */
    const float *U;          /* [K, K] upper factor of H⁻¹ in loop order (row-major, i <= j read) */
    const int64_t *perm;     /* loop column j -> original column */
    const int32_t *colg;     /* loop column j -> scale column of its group */
    float *sv;               /* [N, ng] group scales as the loop uses them (INT4 s, NVFP4 eff) */
    double *rowloss;         /* [N] Σ (w - q)² / d² per row */
    float *err;              /* [N, block] the block's scaled errors (Err1) */
    int threads;             /* workers for the row-parallel parts */
} dsv4_gq_job;

/* Up-front scales (recompute 0): group g of row r is columns [g·group, (g+1)·group) of src
 * [N, K] (the original W for actorder NONE/STATIC, the permuted original W for GROUP). */
void dsv4_cpu_gptq_scales(dsv4_gq_job *j, const float *src);
/* The column loop over Wp (§4.4): fake-quantizes every column into Wp, writes the codes to a->q in
 * original column order (and the scales when a->recompute), accumulates rowloss. */
void dsv4_cpu_gptq_loop(dsv4_gq_job *j);

#endif
