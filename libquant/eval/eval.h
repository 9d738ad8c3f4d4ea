/* The dynamic verification of an artifact against its source, with the built-in runner
 * (libquant/runner) on the same token rows (data.h):
 *
 *  1. Layer walk (memory: both models' globals and MTP block, one decoder layer of each at a
 *     time, and the residual streams of the rows): embed the rows (dsv4_embed_streams), run each
 *     layer of both models over every row (dsv4_layer_forward, stateless prefill), and measure the
 *     relative RMS error of the artifact's streams against the source's after each layer — where
 *     quality is lost.
 *  2. Head: logits of both models for every position, streamed into the metrics (metrics.h):
 *     perplexities, KL(source || artifact), same top-1, Δp. Nothing of size vocab is kept beyond
 *     one chunk of positions.
 *  3. MTP, teacher-forced (fixtures/dsv4-tiny/README.md): for every position p < len - 1 of each
 *     row, the MTP block's argmax on (final streams at p, token p+1) against the main model's
 *     argmax at p+1; for each model on its own streams.
 *  4. MTP by greedy k = 1 speculative decoding (dsv4_generate_spec) on prompts taken from the
 *     first rows: drafted / accepted, for each model (each loaded whole, one after the other), and
 *     how many prompts the artifact continues exactly as the source does.
 * Gates (gates.h) judge the result; report.h renders it. */
#ifndef DSV4_EVAL_H
#define DSV4_EVAL_H

#include <stdint.h>

#include "eval/data.h"
#include "eval/metrics.h"
#include "model/config.h"

/* Progress: stage ("layers", "logits", "mtp", "spec"), done of total. */
typedef void (*dsv4_eval_progress_fn)(void *ctx, const char *stage, int64_t done, int64_t total);

typedef struct dsv4_eval_opts {
    const char *device;        /* "auto" (NULL), "cpu" or "cuda" */
    int threads;               /* CPU backend threads (<= 0: one per core) */
    int64_t spec_prompts;      /* speculative decoding prompts (the first rows); < 0: default
                                  min(rows, 4); 0: off */
    int64_t spec_prompt_len;   /* tokens per prompt; 0: min(64, len / 2) */
    int64_t spec_tokens;       /* tokens generated per prompt; 0: 32 */
    dsv4_eval_progress_fn progress;
    void *progress_ctx;
} dsv4_eval_opts;

typedef struct dsv4_eval_mtp {
    int ran;                   /* 1 when the MTP block ran; else why says why not */
    char why[600];
    int64_t tf_accepted, tf_total;               /* teacher-forced */
    int spec_ran;
    int64_t spec_drafted, spec_accepted, spec_main_calls, spec_generated;
} dsv4_eval_mtp;

typedef struct dsv4_eval_layer {
    int id;
    dsv4_attn_type type;
    int is_hash;
    double rel_rms, max_row;   /* relative RMS error of the streams after the layer; worst row */
    int64_t nonfinite;         /* non-finite values in the artifact's streams */
} dsv4_eval_layer;

typedef struct dsv4_eval_result {
    char device[16];
    int64_t rows, len, offset;
    dsv4_kld_stats s;          /* artifact (Q) against the source (base) */
    dsv4_eval_mtp art, src;
    int64_t spec_prompts, spec_prompt_len, spec_tokens;
    int64_t spec_same;         /* prompts the artifact continues exactly as the source */
    int n_layers;
    dsv4_eval_layer *layers;   /* n_layers main layers */
    double seconds;
} dsv4_eval_result;

/* Runs the comparison. Bad input (unreadable or mismatched models, data out of the vocabulary)
 * fails with code 2, runtime failures with code 1. */
int dsv4_eval_run(const char *artifact, const char *source, const dsv4_eval_data *d, const dsv4_eval_opts *o,
                  dsv4_eval_result *r, dsv4_err *e);
void dsv4_eval_result_free(dsv4_eval_result *r);

/* Acceptance fractions (NAN when nothing was counted). */
double dsv4_eval_tf_rate(const dsv4_eval_mtp *m);
double dsv4_eval_spec_rate(const dsv4_eval_mtp *m);

#endif
