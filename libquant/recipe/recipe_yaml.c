/* Typed, located reads of a libyaml document (see recipe_yaml.h). */
#include "recipe/recipe_yaml.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ry_fail(ry *y, const yaml_node_t *n, const char *fmt, ...)
{
    char m[1600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    if (n)
        return dsv4_fail(y->e, "%s:%zu:%zu: %s", y->path, n->start_mark.line + 1, n->start_mark.column + 1, m);
    return dsv4_fail(y->e, "%s: %s", y->path, m);
}

int ry_enter(ry *y, const yaml_node_t *n)
{
    size_t i = (size_t)(n - y->doc->nodes.start);
    if (i >= y->n_nodes)
        return ry_fail(y, n, "internal error: node outside the document");
    if (y->seen[i])
        return ry_fail(y, n, "YAML aliases are not supported in recipes (this node is read a second time)");
    y->seen[i] = 1;
    return 0;
}

const char *ry_text(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : "";
}

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static int is_int(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    return all_digits(s);
}

static int is_float(const char *s)
{
    static const char *const special[] = {".inf", ".Inf", ".INF", "+.inf", "-.inf", "+.Inf", "-.Inf", "+.INF",
                                          "-.INF", ".nan", ".NaN", ".NAN", NULL};
    for (const char *const *p = special; *p; p++)
        if (!strcmp(s, *p))
            return 1;
    if (*s == '-' || *s == '+')
        s++;
    int digits = 0;
    while (*s >= '0' && *s <= '9')
        s++, digits++;
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9')
            s++, digits++;
    }
    if (!digits)
        return 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+')
            s++;
        if (!all_digits(s))
            return 0;
        return 1;
    }
    return *s == 0;
}

ry_type ry_type_of(const yaml_node_t *n)
{
    if (!n)
        return RY_NULL;
    if (n->type == YAML_SEQUENCE_NODE)
        return RY_SEQ;
    if (n->type == YAML_MAPPING_NODE)
        return RY_MAP;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return RY_STR;
    const char *s = ry_text(n);
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const bools[] = {"true", "True", "TRUE", "false", "False", "FALSE", NULL};
    for (const char *const *p = nulls; *p; p++)
        if (!strcmp(s, *p))
            return RY_NULL;
    for (const char *const *p = bools; *p; p++)
        if (!strcmp(s, *p))
            return RY_BOOL;
    if (is_int(s))
        return RY_INT;
    if (is_float(s))
        return RY_FLOAT;
    return RY_STR;
}

const char *ry_type_name(ry_type t)
{
    static const char *const n[] = {"null", "a boolean", "an integer", "a number", "a string", "a list", "a mapping"};
    return n[t];
}

static int scalar_ok(ry *y, const yaml_node_t *n, const char *what)
{
    if (n->type == YAML_SCALAR_NODE && strlen(ry_text(n)) != n->data.scalar.length)
        return ry_fail(y, n, "%s: the value contains a NUL byte", what);
    return 0;
}

static int wrong(ry *y, const yaml_node_t *n, const char *what, const char *expected)
{
    return ry_fail(y, n, "%s: expected %s, got %s", what, expected, ry_type_name(ry_type_of(n)));
}

int ry_str(ry *y, const yaml_node_t *n, const char *what, char *buf, size_t cap)
{
    if (ry_enter(y, n) || scalar_ok(y, n, what))
        return -1;
    if (ry_type_of(n) != RY_STR)
        return wrong(y, n, what, "a string");
    const char *s = ry_text(n);
    if (strlen(s) >= cap)
        return ry_fail(y, n, "%s: the string is longer than %zu bytes", what, cap - 1);
    memcpy(buf, s, strlen(s) + 1);
    return 0;
}

int ry_bool(ry *y, const yaml_node_t *n, const char *what, int *out)
{
    if (ry_enter(y, n))
        return -1;
    if (ry_type_of(n) != RY_BOOL)
        return wrong(y, n, what, "true or false");
    *out = ry_text(n)[0] == 't' || ry_text(n)[0] == 'T';
    return 0;
}

int ry_int(ry *y, const yaml_node_t *n, const char *what, long long lo, long long hi, long long *out)
{
    if (ry_enter(y, n))
        return -1;
    if (ry_type_of(n) != RY_INT)
        return wrong(y, n, what, "an integer");
    errno = 0;
    long long v = strtoll(ry_text(n), NULL, 10);
    if (errno || v < lo || v > hi)
        return ry_fail(y, n, "%s: %s is outside [%lld, %lld]", what, ry_text(n), lo, hi);
    *out = v;
    return 0;
}

int ry_num(ry *y, const yaml_node_t *n, const char *what, double lo, double hi, double *out)
{
    if (ry_enter(y, n))
        return -1;
    ry_type t = ry_type_of(n);
    if (t != RY_INT && t != RY_FLOAT)
        return wrong(y, n, what, "a number");
    double v = strtod(ry_text(n), NULL);
    if (!isfinite(v) || v < lo || v > hi)
        return ry_fail(y, n, "%s: %s is outside [%g, %g]", what, ry_text(n), lo, hi);
    *out = v;
    return 0;
}

int ry_bytes(ry *y, const yaml_node_t *n, const char *what, uint64_t lo, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mul;
    } units[] = {{"B", 1},          {"KB", 1000},      {"MB", 1000000},   {"GB", 1000000000},
                 {"TB", 1000000000000ULL}, {"KiB", 1ULL << 10}, {"MiB", 1ULL << 20}, {"GiB", 1ULL << 30},
                 {"TiB", 1ULL << 40}};
    const uint64_t max = 1ULL << 50;
    if (ry_enter(y, n) || scalar_ok(y, n, what))
        return -1;
    ry_type t = ry_type_of(n);
    const char *s = ry_text(n);
    uint64_t v = 0;
    if (t == RY_INT && all_digits(s) && strlen(s) <= 16) {
        v = strtoull(s, NULL, 10);
    } else if (t == RY_STR) {
        const char *p = s;
        while (*p >= '0' && *p <= '9')
            p++;
        size_t nd = (size_t)(p - s);
        uint64_t mul = 0;
        for (size_t i = 0; i < sizeof units / sizeof *units; i++)
            if (!strcmp(p, units[i].unit))
                mul = units[i].mul;
        if (!nd || nd > 16 || !mul)
            return ry_fail(y, n, "%s: expected a byte count such as 5GiB, 500MB or 4096 (units B, KB, MB, GB, TB, "
                           "KiB, MiB, GiB, TiB), got \"%s\"", what, s);
        v = strtoull(s, NULL, 10);
        if (v > max / mul)
            v = max + 1;
        else
            v *= mul;
    } else
        return wrong(y, n, what, "a byte count (an integer or a string such as 5GiB)");
    if (v < lo || v > max)
        return ry_fail(y, n, "%s: %s is outside [%llu bytes, 1 PiB]", what, s, (unsigned long long)lo);
    *out = v;
    return 0;
}

int ry_strlist(ry *y, const yaml_node_t *n, const char *what, char ***list, size_t *count)
{
    size_t m = n->type == YAML_SEQUENCE_NODE ? ry_len(n) : 1;
    if (n->type == YAML_MAPPING_NODE || ry_type_of(n) == RY_NULL)
        return wrong(y, n, what, "a list of strings");
    if (n->type == YAML_SEQUENCE_NODE && ry_enter(y, n))
        return -1;
    if (m > 100000)
        return ry_fail(y, n, "%s: more than 100000 entries", what);
    char **nl = realloc(*list, (*count + m + 1) * sizeof *nl);
    if (!nl)
        return dsv4_fail_rt(y->e, "%s: out of memory", y->path);
    *list = nl;
    for (size_t i = 0; i < m; i++) {
        yaml_node_t *it = n->type == YAML_SEQUENCE_NODE ? ry_item(y, n, i) : (yaml_node_t *)n;
        char buf[1024];
        if (!it)
            return ry_fail(y, n, "%s: broken list", what);
        if (ry_str(y, it, what, buf, sizeof buf))
            return -1;
        if (!buf[0])
            return ry_fail(y, it, "%s: empty string", what);
        if (!(nl[*count] = strdup(buf)))
            return dsv4_fail_rt(y->e, "%s: out of memory", y->path);
        ++*count;
    }
    return 0;
}

size_t ry_len(const yaml_node_t *n)
{
    if (n->type == YAML_SEQUENCE_NODE)
        return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (n->type == YAML_MAPPING_NODE)
        return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    return 0;
}

yaml_node_t *ry_key_at(ry *y, const yaml_node_t *map, size_t i)
{
    return yaml_document_get_node(y->doc, map->data.mapping.pairs.start[i].key);
}

yaml_node_t *ry_val_at(ry *y, const yaml_node_t *map, size_t i)
{
    return yaml_document_get_node(y->doc, map->data.mapping.pairs.start[i].value);
}

yaml_node_t *ry_item(ry *y, const yaml_node_t *seq, size_t i)
{
    return yaml_document_get_node(y->doc, seq->data.sequence.items.start[i]);
}

int ry_map(ry *y, const yaml_node_t *n, const char *where, const char *const *allowed)
{
    if (n->type != YAML_MAPPING_NODE)
        return ry_fail(y, n, "%s: expected a mapping, got %s", where, ry_type_name(ry_type_of(n)));
    if (ry_enter(y, n))
        return -1;
    size_t m = ry_len(n);
    if (m > 4096)
        return ry_fail(y, n, "%s: more than 4096 keys", where);
    for (size_t i = 0; i < m; i++) {
        yaml_node_t *k = ry_key_at(y, n, i);
        if (!k || !ry_val_at(y, n, i))
            return ry_fail(y, n, "%s: broken mapping", where);
        if (k->type != YAML_SCALAR_NODE || scalar_ok(y, k, where))
            return ry_fail(y, k, "%s: keys must be plain strings", where);
        if (ry_enter(y, k))
            return -1;
        const char *ks = ry_text(k);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(ry_text(ry_key_at(y, n, j)), ks))
                return ry_fail(y, k, "%s: duplicate key '%s'", where, ks);
        if (!allowed)
            continue;
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = !strcmp(*a, ks);
        if (!ok) {
            char list[600] = "";
            for (const char *const *a = allowed; *a; a++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", a == allowed ? "" : ", ", *a);
            return ry_fail(y, k, "%s: unknown key '%.100s' (expected one of: %s)", where, ks, list);
        }
    }
    return 0;
}

yaml_node_t *ry_get(ry *y, const yaml_node_t *map, const char *key)
{
    size_t m = ry_len(map);
    for (size_t i = 0; i < m; i++)
        if (!strcmp(ry_text(ry_key_at(y, map, i)), key))
            return ry_val_at(y, map, i);
    return NULL;
}
