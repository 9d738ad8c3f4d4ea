/* Shared by the calibration-tap tests (test_runner_taps*.c): a tap that records every call with a
 * host copy of its rows, a walk through the tiny model's main layers on one eval row (each layer's
 * input is the untapped output of the one before), the host references (dequantized weights from
 * the source, the expert activation in double) and a row-relative comparison. */
#ifndef DSV4_TEST_RUNNER_TAPS_UTIL_H
#define DSV4_TEST_RUNNER_TAPS_UTIL_H

#include "runner/layer_internal.h"
#include "runner_fixture.h"

#define NT 64   /* tokens per layer call */
#define ROW 7   /* eval row */

typedef struct rt_call {
    int layer, site, expert;
    int64_t rows, cols;
    float *x;                  /* host copy */
} rt_call;

typedef struct rt_rec {
    dsv4_ops *o;
    rt_call *c;
    int n, cap;
    int fail_site;             /* a site the tap refuses (-1: none) */
} rt_rec;

/* The tap: records (layer, site, expert, rows, cols) and downloads the rows; refuses fail_site. */
int rt_rec_fn(void *ud, int layer, dsv4_tap_site site, int expert, const float *x, int64_t rows, int64_t cols,
              dsv4_err *e);
void rt_rec_clear(rt_rec *r);
/* The first call at (site, expert), or NULL; the number of calls at a site. */
const rt_call *rt_find(const rt_rec *r, int site, int expert);
int rt_count(const rt_rec *r, int site);

/* layers.<layer>.ffn.<mod> of the source dequantized to float [out, in] (malloc'd; NULL recorded). */
float *rt_deq_ffn(dsv4_wsrc *s, int layer, const char *mod, int64_t out, int64_t in);
/* h[n, inter] = silu(min(w1 x, L))·clamp(w3 x, ±L) in double over x [n, d]. */
void rt_act_ref(const float *w1, const float *w3, const float *x, int64_t n, int64_t d, int64_t inter, double L,
                double *h);
/* Largest over rows of max|got - ref| / max|ref| (per row). */
double rt_row_rel(const float *got, const double *ref, int64_t n, int64_t w);

typedef struct rt_walk {
    rf_fixture f;
    float *X;                  /* backend [NT, hc, d]: the current layer's input */
    int64_t pos[NT];
    const int32_t *ids;
} rt_walk;

/* Opens the fixture on ops (taken over) and embeds NT tokens of eval row ROW: layer 0's input. */
int rt_walk_open(rt_walk *k, dsv4_ops *ops);
void rt_walk_close(rt_walk *k);
/* Layer L on a copy of the walk's input with taps: the output streams on the host (malloc'd), or
 * NULL with e set. */
float *rt_layer_run(rt_walk *k, int L, const dsv4_taps *taps, dsv4_err *e);
/* Moves the walk to layer L + 1's input (layer L untapped, in place). */
int rt_walk_next(rt_walk *k, int L, dsv4_err *e);

#endif
