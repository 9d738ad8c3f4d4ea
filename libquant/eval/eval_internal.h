/* State shared by the steps of the artifact-against-source comparison (eval.c: layer walk,
 * logits, teacher-forced MTP; eval_spec.c: speculative decoding). Internal to libquant/eval. */
#ifndef DSV4_EVAL_INTERNAL_H
#define DSV4_EVAL_INTERNAL_H

#include "eval/eval.h"
#include "runner/runner.h"

typedef struct ev_side {
    dsv4_model m;          /* the walk's model: globals (+ MTP block) */
    int open;
    dsv4_eval_mtp *mtp;    /* the result's MTP numbers of this side */
    float *X;              /* backend [rows, len, hc, d]: the rows' streams */
    float *logits;         /* host [chunk, vocab] */
    int32_t *amax;         /* host [rows, len]: main-model argmax per position */
} ev_side;

typedef struct ev_ctx {
    const dsv4_eval_data *d;
    const dsv4_eval_opts *o;
    dsv4_eval_result *r;
    dsv4_ops *ops;
    ev_side a, s;          /* artifact, source */
    ev_side *side[2];      /* {&a, &s} */
    int64_t chunk;         /* positions per logits / MTP call */
    int64_t *pos;          /* host [len]: 0, 1, ... */
    float *dlog;           /* backend [chunk, vocab] */
    float *hbuf[2];        /* host [len, hc, d] download buffers (GPU backends) */
} ev_ctx;

void ev_progress(const dsv4_eval_opts *o, const char *stage, int64_t done, int64_t total);
/* Step 4: greedy speculative decoding with each side's MTP block, whole models loaded one at a time. */
int ev_spec(ev_ctx *c, const char *artifact, const char *source, dsv4_err *e);

#endif
