/* Helpers of the CUDA-vs-CPU op tests (test_ops_cuda*.c): both backends side by side, random
 * inputs copied into each, NaN-poisoned outputs (so an element a kernel forgot shows), random
 * packed weights of every format, and tolerance comparisons that report the worst element. */
#ifndef DSV4_TEST_OPS_CUDA_UTIL_H
#define DSV4_TEST_OPS_CUDA_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "ops.h"

typedef struct oc_pair {
    dsv4_ops *cpu, *gpu;
} oc_pair;

/* Opens both backends. Without a GPU it prints "SKIP <test>: ..." and returns -1 (the test then
 * returns without asserting); a GPU that is there but fails to open is a test failure. */
int oc_open(oc_pair *p, const char *test);
void oc_close(oc_pair *p);

/* n random floats in [lo, hi) (malloc'd). */
float *oc_rand(int64_t n, float lo, float hi);
/* A backend copy of n bytes of host data (alloc + upload); NULL on failure (recorded). */
void *oc_put(dsv4_ops *o, const void *host, size_t n);
/* A backend buffer of n floats filled with NaN. */
float *oc_nan(dsv4_ops *o, int64_t n);
/* Downloads n floats into a fresh malloc'd array (NULL on failure, recorded). */
float *oc_get(dsv4_ops *o, const float *dev, int64_t n);

/* Random packed weight of a format on the host (w and s malloc'd, valid non-NaN scales). Returns
 * -1 when the shape does not fit the format. */
int oc_rand_lin(dsv4_lw_fmt f, int64_t out, int64_t in, int group, dsv4_lin *host);
void oc_free_host_lin(dsv4_lin *host);

/* Checks |got - ref| <= tol[i] (or <= tol[0] when ntol == 1) for n elements; NaN anywhere fails.
 * Records one failure naming `what` and the worst element; returns the number of violations. */
int64_t oc_compare(const char *what, const float *ref, const float *got, int64_t n, const float *tol, int64_t ntol);
/* Same with tol = rel·|ref| + abs per element. */
int64_t oc_compare_rel(const char *what, const float *ref, const float *got, int64_t n, float rel, float abs);

#endif
