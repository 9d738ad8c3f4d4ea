/* Typed reads of config.json values with messages that name the file, the key (dotted path for
 * nested keys) and what was expected. Internal to libquant/model. A JSON null counts as absent. */
#ifndef DSV4_CONFIG_JSON_H
#define DSV4_CONFIG_JSON_H

#include <jansson.h>
#include <stdint.h>

#include "util/err.h"

typedef struct dsv4_jctx {
    const char *path; /* file named in messages */
    dsv4_err *e;
} dsv4_jctx;

/* Value of `key` in `obj`, or NULL when absent or null (or when obj is not an object). */
json_t *dsv4_jget(const json_t *obj, const char *key);
/* Compact JSON text of v, truncated to fit buf. */
const char *dsv4_jshow(const json_t *v, char *buf, size_t cap);
/* Fails with "<path>: \"<where>\" = <value>: expected <what>". */
int dsv4_jbad(const dsv4_jctx *j, const char *where, const json_t *v, const char *what);

/* Each reads obj[key] (displayed as prefix+key). Returns 1 when present, 0 when absent (out is
 * left unchanged) and -1 on a wrong type. */
int dsv4_jint(const dsv4_jctx *j, const json_t *obj, const char *prefix, const char *key, int64_t *out);
int dsv4_jnum(const dsv4_jctx *j, const json_t *obj, const char *prefix, const char *key, double *out);
int dsv4_jbool(const dsv4_jctx *j, const json_t *obj, const char *prefix, const char *key, int *out);
/* Copies the string into buf (fails when it does not fit). */
int dsv4_jstr(const dsv4_jctx *j, const json_t *obj, const char *prefix, const char *key, char *buf,
              size_t cap);
/* Like dsv4_jint, but absence is an error that says what the key is needed for. */
int dsv4_jint_req(const dsv4_jctx *j, const json_t *obj, const char *key, const char *why, int64_t *out);

#endif
