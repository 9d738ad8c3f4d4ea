/* A compressed-tensors quantization_config evaluated the way vLLM evaluates it on DeepSeek-V4
 * (seed_pipelines §1.5, §3.12, §4): the config's groups (their `weights` args as a scheme, their
 * targets compiled) and `ignore`; every linear layer of the model (release inventory order: the
 * order dsv4-quant builds its config in) with the scheme its parts are stored in and the config
 * groups whose args fit it; and every name vLLM may ask the config about for those layers
 * (artifact/ct_config.h dsv4_ct_vllm_names: unfused and fused names, both compressor paths, the
 * MoE probes, the MTP block under mtp.N / model.mtp.N / model.layers.<num_hidden_layers + N>),
 * deduplicated, each with what the config must say about it.
 *
 * Matching follows vLLM's compressed-tensors utilities: "re:" targets are Python regexes applied
 * with re.match (recipe/target.h), other targets are exact names or, for targets (not ignore
 * entries), a class name contained in vLLM's linear classes ("Linear" matches every linear). */
#ifndef DSV4_VT_TARGETS_H
#define DSV4_VT_TARGETS_H

#include <stdint.h>

#include "model/names.h"
#include "recipe/modules.h"
#include "recipe/target.h"
#include "verify/vctx.h"
#include "verify/vt_schemes.h"

#define DSV4_VT_MAX_GROUPS 64

typedef struct dsv4_vt_pat {
    const char *text;      /* the entry as written (points into the config) */
    dsv4_target *t;
    int is_class;          /* a target that also matches vLLM's linear class names */
} dsv4_vt_pat;

typedef struct dsv4_vt_group {
    const char *key;       /* "group_0" (points into the config) */
    dsv4_vt_scheme args;   /* what its `weights` describe */
    char args_why[300];    /* args.kind UNKNOWN: why */
    size_t n;
    dsv4_vt_pat *pat;      /* its targets */
} dsv4_vt_group;

typedef struct dsv4_vt_linear {
    char module[DSV4_NAME_MAX]; /* release module name */
    const dsv4_amod *m;    /* NULL when the artifact lacks it */
    dsv4_mod_kind kind;    /* QLINEAR or ULINEAR */
    int is_mtp;
    dsv4_vt_scheme stored; /* UNQUANT when missing */
    uint64_t fit;          /* config groups whose args fit `stored` (bit k = group k); 0 when unquantized */
} dsv4_vt_linear;

typedef struct dsv4_vt_name {
    char name[192];
    size_t lin;            /* index of the (first) linear this name belongs to */
    int required;          /* vLLM asks for it; else an alternative spelling (on-disk expert names
                              w1/w2/w3, whole-MoE names) that must only be matched consistently */
    int quantized;         /* its module is stored quantized */
    uint64_t fit;          /* groups that may target it */
    int conflict;          /* a fused name whose halves are stored differently (targets-fused-halves) */
} dsv4_vt_name;

typedef struct dsv4_vt_view {
    const json_t *qc;
    size_t n_groups;
    dsv4_vt_group *g;
    size_t n_ignore;
    dsv4_vt_pat *ignore;
    size_t n_lin;
    dsv4_vt_linear *lin;
    size_t n_names;
    dsv4_vt_name *names;   /* sorted by name */
} dsv4_vt_view;

/* Builds the view. Returns 0; or 1 when the check cannot run here (not compressed-tensors, no
 * model, a pattern this checker cannot evaluate: `why` says it, for dsv4_vctx_skip); or -1 when
 * out of memory. On 0 the caller frees the view. */
int dsv4_vt_view_open(const dsv4_vctx *v, dsv4_vt_view *w, char *why, size_t cap);
void dsv4_vt_view_free(dsv4_vt_view *w);

int dsv4_vt_pat_match(const dsv4_vt_pat *p, const char *name);
/* Index of the first of group g's targets matching `name`, or -1. */
long dsv4_vt_group_hit(const dsv4_vt_group *g, const char *name);
/* Index of the first ignore entry matching `name`, or -1. */
long dsv4_vt_ignore_hit(const dsv4_vt_view *w, const char *name);
/* Bit mask of the groups with a target matching `name`. */
uint64_t dsv4_vt_groups_hit(const dsv4_vt_view *w, const char *name);
/* Bits set in a group mask, and the lowest one (-1 when none). */
static inline int dsv4_vt_popcount(uint64_t m)
{
    int n = 0;
    for (; m; m &= m - 1)
        n++;
    return n;
}
static inline int dsv4_vt_first_bit(uint64_t m)
{
    for (int k = 0; k < 64; k++)
        if (m & ((uint64_t)1 << k))
            return k;
    return -1;
}
/* "group_0" or "group_0 and group_1" ... for a mask, into buf. */
const char *dsv4_vt_mask_str(const dsv4_vt_view *w, uint64_t mask, char *buf, size_t cap);

#endif
