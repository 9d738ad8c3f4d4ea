/* dsv4-verify JSON reading for the end-to-end test (see report.h). */
#include "report.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "io/checkpoint.h"
#include "util/json_in.h"

typedef struct idset {
    size_t n;
    const char *v[512];
} idset;

static int add(idset *s, const json_t *id, const char *path, dsv4_err *e)
{
    if (!json_is_string(id))
        return dsv4_fail(e, "%s: a rule id is not a string", path);
    if (s->n == sizeof s->v / sizeof *s->v)
        return dsv4_fail(e, "%s: more than %zu rule ids", path, sizeof s->v / sizeof *s->v);
    s->v[s->n++] = json_string_value(id);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void print_set(FILE *f, const char *label, idset *s)
{
    qsort(s->v, s->n, sizeof *s->v, cmp_str);
    fprintf(f, "%s ", label);
    for (size_t i = 0; i < s->n; i++)
        fprintf(f, "%s%s", i ? "," : "", s->v[i]);
    fprintf(f, "%s\n", s->n ? "" : "-");
}

/* One entry of "rules" (report) or of the --list-rules array. */
static int rule_fields(const json_t *r, const char *path, const json_t **id, const char **severity, dsv4_err *e)
{
    *id = json_object_get(r, "id");
    const json_t *sev = json_object_get(r, "severity");
    if (!json_is_string(*id) || !json_is_string(sev))
        return dsv4_fail(e, "%s: a rule entry lacks a string \"id\" or \"severity\"", path);
    *severity = json_string_value(sev);
    return 0;
}

int bt_report(const char *path, FILE *f, dsv4_err *e)
{
    char *buf;
    size_t len;
    if (dsv4_read_file(path, 64u << 20, &buf, &len, e))
        return -1;
    json_t *j = dsv4_json_parse(buf, len, path, "the dsv4-verify output", e);
    free(buf);
    if (!j)
        return -1;
    idset a = {0}, b = {0}, c = {0};
    int rc = 0;
    size_t i;
    json_t *r;
    const json_t *id;
    const char *sev;
    if (json_is_array(j)) {
        json_array_foreach(j, i, r) {
            if ((rc = rule_fields(r, path, &id, &sev, e)) || (rc = add(&a, id, path, e)))
                break;
            if (json_is_true(json_object_get(r, "needs_source")) && (rc = add(&b, id, path, e)))
                break;
        }
        if (rc == 0) {
            print_set(f, "rules", &a);
            print_set(f, "source", &b);
        }
    } else if (json_is_object(j) && json_is_array(json_object_get(j, "rules")) &&
               json_is_array(json_object_get(j, "skipped"))) {
        json_array_foreach(json_object_get(j, "rules"), i, r) {
            if ((rc = rule_fields(r, path, &id, &sev, e)))
                break;
            const json_t *st = json_object_get(r, "status");
            if (!json_is_string(st) || strcmp(json_string_value(st), "fail"))
                continue;
            if ((rc = add(!strcmp(sev, "error") ? &a : &b, id, path, e)))
                break;
        }
        json_array_foreach(json_object_get(j, "skipped"), i, r) {
            if (rc || (rc = add(&c, r, path, e)))
                break;
        }
        if (rc == 0) {
            print_set(f, "errors", &a);
            print_set(f, "warnings", &b);
            print_set(f, "skipped", &c);
        }
    } else {
        rc = dsv4_fail(e, "%s: expected a dsv4-verify report (an object with \"rules\" and \"skipped\") or a "
                       "--list-rules array", path);
    }
    json_decref(j);
    return rc ? -1 : 0;
}
