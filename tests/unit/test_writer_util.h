/* Helpers shared by the writer tests (test_writer*.c): deterministic tensor bytes, folder
 * listing, file comparison and a full "open strictly and check the manifest" verification. */
#ifndef DSV4_TEST_WRITER_UTIL_H
#define DSV4_TEST_WRITER_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* "dir/name" in one of 8 rotating buffers (so results can be nested). */
char *tw_join(const char *dir, const char *name);
/* Fills dst with bytes determined by (seed, n) alone (splitmix64). */
void tw_pattern(uint8_t *dst, uint64_t n, uint64_t seed);
/* Entries of `dir` whose name starts with `prefix` (-1 when the folder cannot be read). */
int tw_count_prefix(const char *dir, const char *prefix);
/* 1 when both files exist and hold the same bytes. */
int tw_same_file(const char *a, const char *b);
/* Opens `dir` as a checkpoint (strict) and checks every tensor against dsv4-manifest.json. */
int tw_verify_dir(const char *dir, dsv4_err *e);

#endif
