/* GPTQ calibration (issue 6; spec/formats_algorithms.md §4): the sequential, streaming walk that
 * turns a plan's GPTQ jobs into quantized tensors.
 *
 * For each decoder layer L in order (then the MTP block when the recipe quantizes it):
 *  1. load layer L's weights from the source (the release's FP8 / FP4 dequantized on the fly by the
 *     backend's lin_load; no BF16 copy of the model is ever written);
 *  2. calibration pass: run every calibration row's streams (the output of layers < L, already
 *     quantized) through the layer with taps; the taps accumulate one Hessian per input site that a
 *     GPTQ module reads (routed experts: the tokens routed to each expert; the shared expert;
 *     attention projections; wo_a per output group);
 *  3. experts with fewer routed tokens than `min_tokens` get the recipe's fallback: a second pass
 *     that routes every token through them for their Hessians (the layer output keeps the real
 *     routing), or round-to-nearest;
 *  4. GPTQ every module (kernels/ops.h gptq), pack it as the artifact stores it, and write the
 *     layer's tensors to the work folder as one atomic checkpoint (the done marker);
 *  5. propagation pass: the layer with its quantized weights produces the next layer's input.
 * Only one layer's weights, its Hessians and the streams (host memory) are resident.
 *
 * Resume: a work folder that already holds layers 0..L-1 (and was made by the same source, recipe,
 * data and options: calib.json) continues at layer L; the finished layers are replayed from their
 * stored tensors (propagation only), so the output is byte-identical to an uninterrupted run.
 * Hessians can be saved per layer and reused for other packs (dsv4_calib_opts.save_hessians /
 * load_hessians): reuse skips every forward pass. */
#ifndef DSV4_GPTQ_CALIB_H
#define DSV4_GPTQ_CALIB_H

#include <jansson.h>

#include "artifact/plan.h"

typedef struct dsv4_calib_opts {
    const char *device;          /* "auto" (default), "cpu", "cuda" */
    int threads;                 /* CPU backend threads (<= 0: one per core) */
    const char *data;            /* token rows (.safetensors input_ids) or .jsonl text; NULL: the
                                    recipe's calibration.data (a relative path is taken from the
                                    recipe file's folder), else SRC/calib.tokens.safetensors */
    int samples, seq_len;        /* 0: the recipe's. At most `samples` rows are used (fewer when the
                                    data holds fewer); token rows longer than seq_len are cut to it,
                                    shorter ones used whole; JSONL text (tokenized line by line as
                                    tokenizer(text), concatenated) is cut into rows of exactly
                                    seq_len tokens, and text shorter than one row is refused */
    const char *work_dir;        /* per-layer checkpoints (required) */
    const char *save_hessians;   /* folder to save Hessians into, or NULL */
    const char *load_hessians;   /* folder of saved Hessians to quantize from, or NULL */
    int progress;                /* progress lines on stderr */
} dsv4_calib_opts;

/* The finished calibration: the work folder's per-layer tensors, by artifact tensor name. */
typedef struct dsv4_gptq_store dsv4_gptq_store;

/* Runs (or resumes) the calibration of every GPTQ job of plan `p` from the checkpoint at `src_path`
 * into o->work_dir and opens the result. Fails when the plan has no GPTQ job. */
int dsv4_calib_run(const char *src_path, const dsv4_plan *p, const dsv4_recipe *r, const dsv4_calib_opts *o,
                   dsv4_gptq_store **out, dsv4_err *e);
/* Opens a finished work folder (every layer done). */
int dsv4_gptq_store_open(const char *work_dir, dsv4_gptq_store **out, dsv4_err *e);
void dsv4_gptq_store_close(dsv4_gptq_store *s);
/* The stored bytes of artifact tensor `name` (NULL when the store does not hold it), *n bytes. */
const void *dsv4_gptq_store_get(const dsv4_gptq_store *s, const char *name, uint64_t *n);
/* What the calibration did, for dsv4-quant-report.json's "calibration": the run's identity (the
 * hashes of the source config, the recipe and the token rows used, samples and seq_len used,
 * backend, hessians_from), "data" (the file, its kind, rows available, the samples and seq_len
 * asked for; absent when quantizing from saved Hessians) and "layers": per layer the expert token
 * counts, which experts got GPTQ on routed tokens, on all tokens or round-to-nearest, per-module
 * how, loss, damping, fallbacks, times. Borrowed reference. */
json_t *dsv4_gptq_store_report(const dsv4_gptq_store *s);

#endif
