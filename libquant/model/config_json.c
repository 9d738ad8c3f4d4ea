/* Typed config.json reads (see config_json.h). */
#include "model/config_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *dsv4_jget(const json_t *obj, const char *key)
{
    if (!json_is_object(obj))
        return NULL;
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

const char *dsv4_jshow(const json_t *v, char *buf, size_t cap)
{
    char *s = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    snprintf(buf, cap, "%s", s ? s : "null");
    if (s && strlen(s) >= cap && cap > 4)
        memcpy(buf + cap - 4, "...", 4);
    free(s);
    return buf;
}

int dsv4_jbad(const dsv4_jctx *j, const char *where, const json_t *v, const char *what)
{
    char buf[96];
    return dsv4_fail(j->e, "%s: \"%s\" = %s: expected %s", j->path, where, dsv4_jshow(v, buf, sizeof buf),
                     what);
}

static const char *joined(const char *prefix, const char *key, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s", prefix ? prefix : "", key);
    return buf;
}

int dsv4_jint(const dsv4_jctx *j, const json_t *obj, const char *prefix, const char *key, int64_t *out)
{
    json_t *v = dsv4_jget(obj, key);
    if (!v)
        return 0;
    char w[160];
    if (!json_is_integer(v))
        return dsv4_jbad(j, joined(prefix, key, w, sizeof w), v, "an integer");
    *out = (int64_t)json_integer_value(v);
    return 1;
}

int dsv4_jnum(const dsv4_jctx *j, const json_t *obj, const char *prefix, const char *key, double *out)
{
    json_t *v = dsv4_jget(obj, key);
    if (!v)
        return 0;
    char w[160];
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return dsv4_jbad(j, joined(prefix, key, w, sizeof w), v, "a finite number");
    *out = json_number_value(v);
    return 1;
}

int dsv4_jbool(const dsv4_jctx *j, const json_t *obj, const char *prefix, const char *key, int *out)
{
    json_t *v = dsv4_jget(obj, key);
    if (!v)
        return 0;
    char w[160];
    if (!json_is_boolean(v))
        return dsv4_jbad(j, joined(prefix, key, w, sizeof w), v, "true or false");
    *out = json_is_true(v);
    return 1;
}

int dsv4_jstr(const dsv4_jctx *j, const json_t *obj, const char *prefix, const char *key, char *buf,
              size_t cap)
{
    json_t *v = dsv4_jget(obj, key);
    if (!v)
        return 0;
    char w[160], what[64];
    snprintf(what, sizeof what, "a string of at most %zu bytes", cap - 1);
    if (!json_is_string(v) || json_string_length(v) >= cap)
        return dsv4_jbad(j, joined(prefix, key, w, sizeof w), v, what);
    memcpy(buf, json_string_value(v), json_string_length(v) + 1);
    return 1;
}

int dsv4_jint_req(const dsv4_jctx *j, const json_t *obj, const char *key, const char *why, int64_t *out)
{
    int rc = dsv4_jint(j, obj, NULL, key, out);
    if (rc == 0)
        return dsv4_fail(j->e, "%s: missing required key \"%s\" (an integer: %s)", j->path, key, why);
    return rc;
}
