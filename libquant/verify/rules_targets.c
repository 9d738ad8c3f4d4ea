/* Rules: targets (being written). */
#include "verify/rule.h"

const dsv4_rule *const dsv4_rules_targets[] = {NULL};
