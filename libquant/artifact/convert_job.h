/* Running one artifact plan job (plan.h) into destination buffers. */
#ifndef DSV4_CONVERT_JOB_H
#define DSV4_CONVERT_JOB_H

#include "artifact/plan.h"

typedef struct dsv4_job_report {
    int exact;          /* 0 when a conversion meant to be lossless was not */
    int64_t inexact;    /* values or blocks that were not reproduced exactly */
    double max_abs_err;
} dsv4_job_report;

/* Runs job j round to nearest: dst[k] receives out[k] (sized by its dtype and shape). g is the job's
 * recipe group (NULL for none): its group_size (INT4; 128 when unset) and its observer (`mse`:
 * INT4 / NVFP4 scales by the MSE grid, quant/rtn_mse.c). */
int dsv4_job_run(const dsv4_plan_job *j, const dsv4_recipe_group *g, uint8_t *const dst[3], dsv4_job_report *rep,
                 dsv4_err *e);
/* The recipe group of job j (NULL when it has none). */
const dsv4_recipe_group *dsv4_job_group(const dsv4_plan_job *j, const dsv4_recipe *r);

/* A source weight as BF16 (rows x cols elements into dst): release FP8-block with its e8m0 `.scale`
 * `s`, FP4 with its scale, F16/F32 rounded to nearest even, BF16 copied. The BF16 job's values. */
int dsv4_source_bf16(const dsv4_tensor *w, const dsv4_tensor *s, uint16_t *dst, dsv4_err *e);

/* The NVFP4 global scale job j's outputs get: a power of two under which the fused pair converts
 * exactly (*exact = 1) when both are release FP4, or dense values that are release FP4 values (a
 * BF16 copy of the release: dsv4_mxfp4_from_bf16), else compressed-tensors' scale over the fused
 * pair's BF16 values (the partner with its own shape). */
int dsv4_job_nvfp4_scale(const dsv4_plan_job *j, int *exact, float *gs, dsv4_err *e);
/* 1 when job j is NVFP4 and converts exactly (the *exact above): GPTQ has nothing to improve
 * there. Reads the release's scales, or a BF16 weight up to its first value off the FP4 grid. */
int dsv4_job_nvfp4_exact(const dsv4_plan_job *j);

#endif
