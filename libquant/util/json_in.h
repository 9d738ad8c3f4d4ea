/* Parsing untrusted JSON (headers, indexes, manifests, configs) the same way everywhere:
 * duplicate keys refused, and a failure located by line and column in the file it came from. */
#ifndef DSV4_JSON_IN_H
#define DSV4_JSON_IN_H

#include <jansson.h>
#include <stddef.h>

#include "util/err.h"

/* Parses len bytes; on failure returns NULL with "<path>: <what> is not valid JSON (line L,
 * column C): <reason>" (or "<path>: not valid JSON ..." when what is NULL). */
json_t *dsv4_json_parse(const char *buf, size_t len, const char *path, const char *what, dsv4_err *e);

#endif
