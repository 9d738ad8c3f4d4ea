/* Perplexity of one model over token rows (dsv4-run --ppl): each row goes through the runner's
 * sequence forward (dsv4_forward) in chunks of `chunk` tokens, the state carried from chunk to
 * chunk as in decoding, and every position's logits are streamed into an NLL accumulator
 * (metrics.h). */
#ifndef DSV4_EVAL_PPL_H
#define DSV4_EVAL_PPL_H

#include "eval/data.h"
#include "eval/eval.h"
#include "eval/metrics.h"
#include "runner/runner.h"

/* m must be opened with DSV4_LOAD_LAYERS. progress (may be NULL) gets stage "ppl", rows done. */
int dsv4_ppl_run(const dsv4_model *m, const dsv4_eval_data *d, int64_t chunk, dsv4_eval_progress_fn progress,
                 void *progress_ctx, dsv4_nll_acc *acc, dsv4_err *e);

#endif
