/* The weight source's private state, shared by wsrc.c (opening, names, float tensors, scratch
 * buffers), wsrc_lin.c (linear views of the release and plain forms) and wsrc_ct.c (the
 * compressed-tensors, ModelOpt and transformers-fused forms). */
#ifndef DSV4_RUNNER_WSRC_INTERNAL_H
#define DSV4_RUNNER_WSRC_INTERNAL_H

#include "io/checkpoint.h"
#include "runner/weights.h"
#include "verify/astore.h"

struct dsv4_wsrc {
    char *path;
    dsv4_ckpt ck;
    dsv4_config cfg;
    size_t n;
    dsv4_named_tensor *v;  /* canonical name -> tensor, sorted by name (names owned) */
    dsv4_astore st;        /* module view over the canonical names */
    size_t n_scratch, cap_scratch;
    void **scratch;        /* conversion buffers handed out in views, until lin_done or close */
};

/* A zero-filled buffer of n bytes the source owns until dsv4_wsrc_lin_done / close; NULL with a
 * message when out of memory. */
void *dsv4_wsrc_scratch(dsv4_wsrc *s, size_t n, const char *what, dsv4_err *e);
/* Releases one scratch buffer (NULL or unknown pointers are ignored). */
void dsv4_wsrc_scratch_free(dsv4_wsrc *s, void *p);

/* The file holding the tensor of part p of module m ("?" when absent). */
const char *dsv4_wsrc_part_file(const dsv4_wsrc *s, const dsv4_amod *m, dsv4_part p);
/* Data of a tensor as an array of `align`-byte elements: the mapping when aligned, else a scratch
 * copy. */
const void *dsv4_wsrc_aligned(dsv4_wsrc *s, const dsv4_tensor *t, size_t align, dsv4_err *e);

/* The compressed-tensors / ModelOpt forms (wsrc_ct.c): fills `host` (shape already checked). */
int dsv4_wsrc_ct_int4(dsv4_wsrc *s, const dsv4_amod *m, dsv4_lin *host, dsv4_err *e);
int dsv4_wsrc_nvfp4(dsv4_wsrc *s, const dsv4_amod *m, dsv4_lin *host, dsv4_err *e);
/* transformers' fused experts: the slice for a release expert stem with no module of its own.
 * Returns 1 when no fused tensor covers the stem (nothing filled), 0 on success, -1 on error. */
int dsv4_wsrc_fused(dsv4_wsrc *s, const char *stem, int64_t out, int64_t in, dsv4_lin *host, dsv4_err *e);

#endif
