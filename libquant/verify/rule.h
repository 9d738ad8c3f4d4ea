/* The artifact contract rules (spec/seed_pipelines.md §6.3): each has a stable id, a one-line
 * title, what it checks, a severity, whether it needs the source checkpoint, and the repair
 * dsv4-fixup makes (NULL when there is none). A rule's `run` reads the context (vctx.h), records
 * evidence lines for what it found wrong (dsv4_vctx_fail) and, where it can, the fix ops that
 * repair it (dsv4_vctx_fix_*). Rules are grouped by concern in rules_*.c; registry.c lists them in
 * report order. */
#ifndef DSV4_RULE_H
#define DSV4_RULE_H

#include <stddef.h>

typedef enum dsv4_severity {
    DSV4_SEV_ERROR,   /* the artifact fails: dsv4-verify exits 3 */
    DSV4_SEV_WARNING, /* reported; exit 0 unless --strict */
} dsv4_severity;

struct dsv4_vctx;

typedef struct dsv4_rule {
    const char *id;        /* "mtp-aliases", lower-case words joined by '-' */
    const char *title;     /* one line */
    const char *checks;    /* what is compared with what (one or two sentences) */
    dsv4_severity severity;
    int needs_source;      /* 1: skipped without --source */
    const char *fix;       /* what dsv4-fixup does about it, or NULL */
    void (*run)(struct dsv4_vctx *v, const struct dsv4_rule *self);
} dsv4_rule;

/* Every rule, in report order. */
const dsv4_rule *const *dsv4_rules(size_t *n);
const dsv4_rule *dsv4_rule_find(const char *id);

/* The rule groups (one per rules_*.c file), each a NULL-terminated array. */
extern const dsv4_rule *const dsv4_rules_mtp[];      /* rules_mtp.c */
extern const dsv4_rule *const dsv4_rules_fp32[];     /* rules_fp32.c */
extern const dsv4_rule *const dsv4_rules_names[];    /* rules_names.c */
extern const dsv4_rule *const dsv4_rules_router[];   /* rules_router.c: gate bias, tid2eid */
extern const dsv4_rule *const dsv4_rules_compressor[]; /* rules_compressor.c */
extern const dsv4_rule *const dsv4_rules_scales[];   /* rules_scales.c: scale names/dtypes, NVFP4 */
extern const dsv4_rule *const dsv4_rules_config[];   /* rules_config.c: config.json keys */
extern const dsv4_rule *const dsv4_rules_targets[];  /* rules_targets.c: quantization_config vs vLLM */
extern const dsv4_rule *const dsv4_rules_index[];    /* rules_index.c: index, shards */
extern const dsv4_rule *const dsv4_rules_counts[];   /* rules_counts.c: inventory and role counts */

#endif
