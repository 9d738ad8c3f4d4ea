/* Helpers shared by the rule groups (rules_mtp.c, rules_fp32.c, rules_router.c,
 * rules_compressor.c): tensor descriptions for evidence lines, fix ops that are not added twice
 * when two rules ask for the same repair, the artifact's MTP policy and the tensors that policy
 * makes of one inventory tensor from the source (dsv4-quant's own choices, artifact/plan_jobs.c),
 * and value comparisons. */
#ifndef DSV4_VRULES_UTIL_H
#define DSV4_VRULES_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "model/names.h"
#include "verify/vctx.h"

int vr_starts(const char *s, const char *prefix);
int vr_ends(const char *s, const char *suffix);
/* "BF16 [24, 1024]" of a tensor / of an inventory tensor. Return buf. */
char *vr_desc(const dsv4_tensor *t, char *buf, size_t cap);
char *vr_inv_desc(const dsv4_inv_tensor *t, char *buf, size_t cap);
/* 1 when t has the inventory tensor's dimensions. */
int vr_shape_is(const dsv4_tensor *t, const dsv4_inv_tensor *it);
/* Module of an inventory weight ("x.weight" -> "x") into buf; 0 when the name is no ".weight". */
int vr_module_of(const char *name, char *buf, size_t cap);
/* Tensor of the artifact / the source by canonical name, or NULL. */
const dsv4_tensor *vr_art(const dsv4_vctx *v, const char *name);
const dsv4_tensor *vr_src(const dsv4_vctx *v, const char *name);
/* 1 when some artifact tensor's canonical name starts with `prefix`. */
int vr_art_has_prefix(const dsv4_vctx *v, const char *prefix);
/* 1 when the artifact's index places a tensor whose canonical name is `name` (or, with
 * `prefix_only`, starts with it) in a shard that could not be read: such a tensor is not missing,
 * it is unreadable (shards-readable reports that), so presence rules leave it alone. */
int vr_unreadable(const dsv4_vctx *v, const char *name, int prefix_only);
/* 1 when a model config (v->inv) is usable; otherwise records the skip and returns 0. */
int vr_need_inv(dsv4_vctx *v);

/* Fix ops that are added only when no earlier op (of any rule) already does the same: a PUT of
 * that name, or a DROP of that name. Return 0, or -1 when out of memory. */
int vr_put(dsv4_vctx *v, const char *name, dsv4_dtype dtype, int ndim, const int64_t *shape, dsv4_produce how,
           const dsv4_tensor *from, const dsv4_tensor *from_scale, const char *near, const char *why);
int vr_drop(dsv4_vctx *v, const char *name, const char *why);

/* The MTP policy of the artifact (see rules_mtp.c): BF16 for a compressed-tensors or a plain BF16
 * artifact (every MTP linear dequantized to BF16, the rest copied), COPY for a native artifact
 * that keeps the release's FP8 / FP4 storage (bytes as the source has them, `.scale` included),
 * NONE for storage forms dsv4-quant never writes (no repair is offered). `why` gets one phrase. */
typedef enum vr_policy { VR_POLICY_BF16, VR_POLICY_COPY, VR_POLICY_NONE } vr_policy;
vr_policy vr_mtp_policy(const dsv4_vctx *v, char *why, size_t cap);

/* One tensor a repair writes. */
typedef struct vr_out {
    char name[DSV4_NAME_MAX];
    dsv4_dtype dtype;
    int ndim;
    int64_t shape[2];
    dsv4_produce how;
    const dsv4_tensor *from, *from_scale;
} vr_out;

/* The tensors the artifact holds for inventory tensor `it` (not a `.scale`) made from the source
 * under `pol` (COPY also serves the FP32 set and the router tensors: the source's bytes): one
 * tensor, or a release weight and its `.scale`. 0, or -1 with the reason in `why` (no source, the
 * source lacks it or holds it in a form the policy cannot use). */
int vr_from_source(const dsv4_vctx *v, const dsv4_inv_tensor *it, vr_policy pol, vr_out out[2], int *n, char *why,
                   size_t cap);
/* Writes `out` into the artifact: DROPs the parts of the artifact's entry `m` (may be NULL) that
 * no output replaces, then PUTs the outputs (`near`: the shard for new tensors, NULL: nearest). */
int vr_replace(dsv4_vctx *v, const dsv4_amod *m, const vr_out *out, int n, const char *near, const char *why);

/* A tensor beside which new MTP tensors go: a present MTP tensor, else one of the last main
 * layer's, else head.weight (dsv4-quant writes the MTP block right after the last layer). NULL when
 * the artifact has none of them. */
const char *vr_mtp_near(const dsv4_vctx *v);

/* Element comparison of `n` values: `a` (dtype da) against reference `b` (dtype db). Equal dtypes:
 * element bytes; float dtypes that differ: `b` cast to `da` (round to nearest even), then bytes.
 * Returns -1 when the dtypes cannot be compared (one is not a float dtype), else 0 with c filled. */
typedef struct vr_cmp {
    uint64_t n_diff, first; /* elements that differ; index of the first */
    double a, b;            /* their values at `first` */
} vr_cmp;
int vr_compare(const void *a, dsv4_dtype da, const void *b, dsv4_dtype db, uint64_t n, vr_cmp *c);
/* "in 12 of 4096 values (first at index 7: 0.5 vs -0.25)" */
char *vr_cmp_str(const vr_cmp *c, uint64_t n, char *buf, size_t cap);

/* Compares the artifact's entry `m` for inventory tensor `it` with the source: 1 equal, 0 different
 * (what differs in msg), -1 not comparable (why in msg). Bit-exact where the artifact stores the
 * tensor as the source does (a release FP8/FP4 weight with its .scale included); else against the
 * source's values in the artifact's dtype: the BF16 dequantization of an FP8/FP4 source weight (as
 * dsv4-quant's BF16 job computes it), a float cast of a plain tensor. Quantized storage that is not
 * the source's, and FP32-set tensors not stored F32, are not comparable. */
int vr_compare_source(const dsv4_vctx *v, const dsv4_inv_tensor *it, const dsv4_amod *m, char *msg, size_t cap);

/* 1 when the artifact leaves the MTP aliases out on purpose: dsv4-quant's recipe said `mtp.aliases:
 * false`, which config.json records as `dsv4_provenance.mtp_aliases` when present and otherwise
 * only through the recipe's path and xxh3-128 in dsv4_provenance (the recipe is read back when it
 * is still there, unchanged). `why` says how it is known, or, with 0, what could not be checked
 * (" (dsv4-quant records ...)", ready to append to a message; "" when nothing applies). */
int vr_aliases_omitted(const dsv4_vctx *v, char *why, size_t cap);

#endif
