/* Shared by the recipe tests: a recipe text that must be refused at a given line and column. */
#ifndef DSV4_TEST_RECIPE_UTIL_H
#define DSV4_TEST_RECIPE_UTIL_H

/* Parses yaml (as "t.yaml") and expects failure with "t.yaml:<line>:<col>: ...<needle>..." (no
 * position check when line is 0) and the bad-input exit code. */
void tr_refused(const char *yaml, int line, int col, const char *needle, const char *file, int src_line);
#define REFUSED(y, l, c, n) tr_refused(y, l, c, n, __FILE__, __LINE__)

#endif
