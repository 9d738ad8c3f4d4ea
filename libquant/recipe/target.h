/* Target and ignore patterns as compressed-tensors and vLLM read them: a "re:" prefix means a
 * Python regular expression applied with re.match (anchored at the start of the name, not at its
 * end); anything else is an exact module name. The Python syntax is translated to POSIX extended
 * regular expressions (regcomp REG_EXTENDED): \d \D \w \W \s \S (also inside [...]), escaped
 * punctuation, (?:...), (?P<name>...), {m,n} / {,n}, and lazy quantifiers (which cannot change
 * whether re.match finds a match) are supported; repetition counts stay at most 100 (1000 as a
 * product over the pattern). Word boundaries, backreferences, lookarounds,
 * inline flags, possessive quantifiers and other escapes are refused with a message, never
 * approximated. */
#ifndef DSV4_TARGET_H
#define DSV4_TARGET_H

#include <stddef.h>

#include "util/err.h"

typedef struct dsv4_target dsv4_target;

/* Translates a Python pattern (without "re:") to an ERE anchored as re.match is: "^(...)".
 * Returns 0, or -1 with one sentence in why. */
int dsv4_pyre_to_ere(const char *py, char *out, size_t cap, char *why, size_t why_cap);

/* Compiles a target ("re:<python regex>" or an exact name). Returns NULL with one sentence in why
 * (out of memory included). */
dsv4_target *dsv4_target_compile(const char *pattern, char *why, size_t why_cap);
/* 1 when the name matches. */
int dsv4_target_match(const dsv4_target *t, const char *name);
void dsv4_target_free(dsv4_target *t);
/* One-shot match: 1 or 0, or -1 (message in e) on a bad pattern. */
int dsv4_target_matches(const char *pattern, const char *name, dsv4_err *e);

#endif
