/* Parser state shared by the regex parser's two files: regex_parse.c (groups, alternation,
 * quantifiers) and regex_class.c (escapes, classes, \\p{..} properties). */
#ifndef DSV4_TOK_REGEX_PARSE_H
#define DSV4_TOK_REGEX_PARSE_H

#include "tokenizer/regex_internal.h"

typedef struct {
    const uint32_t *s;
    size_t n, i;
    re_parsed *p;
    char *why;
    size_t whylen;
    int failed;
} ps; /* the pattern as code points, the position, the output and the first error */

/* Records the first error (printf-style) and returns NULL. */
void *re_fail(ps *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
re_node *re_new_node(ps *x, int type);
int re_add_kid(ps *x, re_node *n, re_node *k);
/* After a backslash (x->i past it): a single-char escape -> *cp and 0; a class escape -> *it and
 * 1; an anchor (outside classes) -> *anchor and 2; -1 on error. */
int re_parse_escape(ps *x, int in_class, uint32_t *cp, re_item *it, int *anchor);
/* After '[': the class up to its ']'. */
re_node *re_parse_class(ps *x);
/* A one-item class (\\d, \\p{L}, ...). */
re_node *re_class_node(ps *x, re_item it);

#endif
