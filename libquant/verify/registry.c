/* The rule registry (rule.h): every group in report order. The names rules come first: their
 * renames are the first fix ops, and every later op names tensors by canonical name (fix.h). */
#include <string.h>

#include "verify/rule.h"

#define MAX_RULES 128

static const dsv4_rule *const *const GROUPS[] = {
    dsv4_rules_names,  dsv4_rules_index,  dsv4_rules_counts, dsv4_rules_mtp,     dsv4_rules_fp32,
    dsv4_rules_router, dsv4_rules_compressor, dsv4_rules_scales, dsv4_rules_config, dsv4_rules_targets,
};

static const dsv4_rule *all[MAX_RULES];
static size_t n_all;

const dsv4_rule *const *dsv4_rules(size_t *n)
{
    if (!n_all)
        for (size_t g = 0; g < sizeof GROUPS / sizeof *GROUPS; g++)
            for (size_t i = 0; GROUPS[g][i] && n_all < MAX_RULES; i++)
                all[n_all++] = GROUPS[g][i];
    *n = n_all;
    return all;
}

const dsv4_rule *dsv4_rule_find(const char *id)
{
    size_t n;
    const dsv4_rule *const *r = dsv4_rules(&n);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(r[i]->id, id))
            return r[i];
    return NULL;
}
