/* The artifact plan: from the source checkpoint's tensors, its config and a recipe, every tensor
 * the artifact will hold, grouped into jobs (one job reads one source weight, with its scale and
 * fused partner, and writes the one to three tensors its scheme produces). The executor
 * (convert.c) runs the jobs into the writer; --dry-run prints the plan. Pure: no tensor data is
 * read to make it. */
#ifndef DSV4_PLAN_H
#define DSV4_PLAN_H

#include <jansson.h>

#include "io/checkpoint.h"
#include "model/config.h"
#include "recipe/recipe.h"

typedef enum dsv4_job_kind {
    DSV4_JOB_COPY,          /* out[0] = src[0] bytes, unchanged (BF16/F32/I64, release FP8 bytes) */
    DSV4_JOB_BF16,          /* out[0] = src[0] dequantized to BF16 (FP8 block with scale src[1],
                               FP4 with scale src[1], F16/F32 rounded, BF16 copied) */
    DSV4_JOB_FP8_PASS,      /* release FP8: out[0] weight bytes = src[0], out[1] weight_scale BF16
                               from the e8m0 src[1] */
    DSV4_JOB_FP8_RTN,       /* BF16 src[0] -> out[0] weight F8_E4M3, out[1] weight_scale BF16 */
    DSV4_JOB_FP8_FROM_FP4,  /* release FP4 src[0]+src[1] -> out[0] weight F8_E4M3, out[1]
                               weight_scale BF16 (lossless rule, reported) */
    DSV4_JOB_INT4,          /* src[0] (+src[1] scale) -> out[0] weight_packed I32, out[1]
                               weight_scale BF16, out[2] weight_shape I64 [2] */
    DSV4_JOB_NVFP4,         /* src[0] (+src[1]) with fused partner src[2] (+src[3]) for the
                               global scale -> out[0] weight_packed U8, out[1] weight_scale
                               F8_E4M3, out[2] weight_global_scale F32 [] */
} dsv4_job_kind;

typedef struct dsv4_plan_out {
    char *name;
    dsv4_dtype dtype;
    int ndim;
    int64_t shape[2];
} dsv4_plan_out;

typedef struct dsv4_plan_job {
    dsv4_job_kind kind;
    const dsv4_tensor *src[4];   /* weight, its scale, fused partner weight, its scale (NULL when absent) */
    int n_out;
    dsv4_plan_out out[3];
    int group;                   /* recipe group index, -1 for none */
    int64_t rows, cols;          /* logical shape of the source weight (FP4 cols unpacked) */
} dsv4_plan_job;

typedef struct dsv4_plan {
    size_t n;
    dsv4_plan_job *jobs;         /* in output order: the release inventory's order, MTP last */
    uint64_t out_bytes;          /* sum of output tensor bytes */
    uint64_t peak_job_bytes;     /* largest working set of one job (sources dequantized + outputs) */
    json_t *config;              /* the artifact's config.json (source config + quantization_config
                                    + provenance) */
    dsv4_tensor *views;          /* source tensors the jobs read that the checkpoint does not list:
                                    per-expert views into transformers' fused experts */
    size_t n_views;
} dsv4_plan;

/* Builds the plan. `source_config` is the source's parsed config.json (kept key by key). */
int dsv4_plan_build(const dsv4_ckpt *src, const dsv4_config *cfg, const json_t *source_config,
                    const dsv4_recipe *r, dsv4_plan *p, dsv4_err *e);
void dsv4_plan_free(dsv4_plan *p);
const char *dsv4_job_kind_name(dsv4_job_kind k);
/* 1 when job j belongs to a recipe group with method gptq (its outputs come from calibration). */
int dsv4_job_is_gptq(const dsv4_plan_job *j, const dsv4_recipe *r);
/* 1 when the plan has such a job. */
int dsv4_plan_has_gptq(const dsv4_plan *p, const dsv4_recipe *r);

#endif
