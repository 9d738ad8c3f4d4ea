/* Python re -> POSIX ERE translation and compiled target patterns (see target.h). The translator
 * walks the pattern once; character classes are rebuilt so that ']' goes first, '-' last and '^'
 * never first, which is how POSIX brackets take those characters literally. */
#include "recipe/target.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DSV4_MAX_REPEAT 100

struct dsv4_target {
    int is_re;
    regex_t re;
    char *name; /* exact-name targets */
};

typedef struct out_buf {
    char *p;
    size_t n, cap;
    int full;
} out_buf;

static void put(out_buf *o, const char *s)
{
    size_t l = strlen(s);
    if (o->n + l + 1 > o->cap) {
        o->full = 1;
        return;
    }
    memcpy(o->p + o->n, s, l + 1);
    o->n += l;
}

static void putc1(out_buf *o, char c)
{
    char s[2] = {c, 0};
    put(o, s);
}

static int fail(char *why, size_t cap, const char *fmt, const char *a, size_t pos)
{
    char m[160];
    snprintf(m, sizeof m, fmt, a);
    snprintf(why, cap, "%s (at offset %zu)", m, pos);
    return -1;
}

/* Characters that an ERE treats specially outside brackets: these keep their backslash. */
static int ere_special(char c) { return c && strchr(".[\\()*+?{|^$", c) != NULL; }

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alnum(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* A Python class escape (\d \D \w \W \s \S) as an ERE bracket expression; NULL otherwise. */
static const char *class_escape(char c)
{
    switch (c) {
    case 'd': return "[0-9]";
    case 'D': return "[^0-9]";
    case 'w': return "[A-Za-z0-9_]";
    case 'W': return "[^A-Za-z0-9_]";
    case 's': return "[[:space:]]";
    case 'S': return "[^[:space:]]";
    default: return NULL;
    }
}

/* One escape inside [...] at p[*k] == '\\': a class (\d \w \s) into *cls, or a literal into *lit. */
static int bracket_escape(const char *p, size_t *k, const char **cls, char *lit, char *why, size_t cap)
{
    char d = p[*k + 1];
    size_t at = *k;
    *cls = NULL;
    *k += d ? 2 : 1;
    if (d == 'd')
        *cls = "0-9";
    else if (d == 'w')
        *cls = "A-Za-z0-9_";
    else if (d == 's')
        *cls = "[:space:]";
    else if (d == 'D' || d == 'W' || d == 'S')
        return fail(why, cap, "negated class escape '\\%s' inside [...] is not supported", (char[]){d, 0}, at);
    else if (d && !is_alnum(d))
        *lit = d;
    else
        return fail(why, cap, "unsupported escape '\\%s' inside [...]", (char[]){d, 0}, at);
    return 0;
}

static int append(char *items, size_t *ni, size_t cap, const char *s)
{
    size_t l = strlen(s);
    if (*ni + l + 8 > cap)
        return -1;
    memcpy(items + *ni, s, l + 1);
    *ni += l;
    return 0;
}

/* [...] starting at p[*i] == '['; appends the rebuilt bracket and advances *i past ']'. */
static int bracket(const char *p, size_t *i, out_buf *o, char *why, size_t cap)
{
    size_t start = *i, k = *i + 1;
    int neg = 0, rbr = 0, dash = 0, caret = 0;
    char items[512] = "";
    size_t ni = 0;
    if (p[k] == '^') {
        neg = 1;
        k++;
    }
    for (int first = 1;; first = 0) {
        char c = p[k], lit = 0;
        const char *cls = NULL;
        size_t at = k;
        if (!c)
            return fail(why, cap, "unterminated character class%s", "", start);
        if (c == ']' && !first) {
            k++;
            break;
        }
        if (c == '[')
            return fail(why, cap, "'[' inside a character class is not supported%s", "", k);
        if (c == '\\') {
            if (bracket_escape(p, &k, &cls, &lit, why, cap))
                return -1;
        } else {
            lit = c;
            k++;
        }
        int ok = 0;
        if (cls) {
            if (p[k] == '-' && p[k + 1] && p[k + 1] != ']')
                return fail(why, cap, "bad character range in [...]%s", "", at);
            ok = append(items, &ni, sizeof items, cls);
        } else if (p[k] == '-' && p[k + 1] && p[k + 1] != ']') {
            size_t k2 = k + 1;
            char hi = 0;
            const char *hcls = NULL;
            if (p[k2] == '\\') {
                if (bracket_escape(p, &k2, &hcls, &hi, why, cap))
                    return -1;
            } else if (p[k2] == '[')
                return fail(why, cap, "'[' inside a character class is not supported%s", "", k2);
            else
                hi = p[k2++];
            if (hcls || (unsigned char)lit > (unsigned char)hi)
                return fail(why, cap, "bad character range in [...]%s", "", at);
            if (strchr("]^-", lit) || strchr("]^-", hi))
                return fail(why, cap, "character ranges that start or end with ']', '^' or '-' are not supported%s",
                            "", at);
            ok = append(items, &ni, sizeof items, (char[]){lit, '-', hi, 0});
            k = k2;
        } else if (lit == ']')
            rbr = 1;
        else if (lit == '^')
            caret = 1;
        else if (lit == '-')
            dash = 1;
        else
            ok = append(items, &ni, sizeof items, (char[]){lit, 0});
        if (ok)
            return fail(why, cap, "character class too long%s", "", start);
    }
    if (!ni && !rbr && !dash && caret && !neg)
        put(o, "\\^");
    else {
        put(o, neg ? "[^" : "[");
        if (rbr)
            put(o, "]");
        put(o, items);
        if (caret)
            put(o, "^");
        if (dash)
            put(o, "-");
        put(o, "]");
    }
    *i = k;
    return 0;
}

/* A Python {m}, {m,}, {,n} or {m,n} at p[i]; its length, or 0 when '{' is a literal. *largest gets
 * the largest count written. */
static size_t interval(const char *p, size_t i, char *ere, size_t cap, long *largest)
{
    size_t k = i + 1, a = 0, b = 0;
    char m[16] = "", n[16] = "";
    while (is_digit(p[k]) && a < 8)
        m[a++] = p[k++];
    m[a] = 0;
    int comma = p[k] == ',';
    if (comma) {
        k++;
        while (is_digit(p[k]) && b < 8)
            n[b++] = p[k++];
        n[b] = 0;
    }
    if (p[k] != '}' || (!a && !b))
        return 0;
    long lm = a ? strtol(m, NULL, 10) : 0, ln = b ? strtol(n, NULL, 10) : 0;
    *largest = lm > ln ? lm : ln;
    if (!comma)
        snprintf(ere, cap, "{%s}", m);
    else
        snprintf(ere, cap, "{%s,%s}", a ? m : "0", n);
    return k + 1 - i;
}

int dsv4_pyre_to_ere(const char *p, char *out, size_t cap, char *why, size_t why_cap)
{
    out_buf o = {out, 0, cap, 0};
    if (cap)
        out[0] = 0;
    put(&o, "^(");
    int atom = 0;      /* something a quantifier can apply to precedes */
    long repeat = 1;   /* product of the repetition counts: regcomp copies the atom that often */
    for (size_t i = 0; p[i];) {
        char c = p[i];
        if (c == '\\') {
            char d = p[i + 1];
            const char *cls = class_escape(d);
            if (!d)
                return fail(why, why_cap, "the pattern ends with a backslash%s", "", i);
            if (cls)
                put(&o, cls);
            else if (ere_special(d)) {
                putc1(&o, '\\');
                putc1(&o, d);
            } else if (!is_alnum(d))
                putc1(&o, d);
            else
                return fail(why, why_cap,
                            "unsupported escape '\\%s' (word boundaries, anchors \\A \\Z, backreferences and "
                            "control escapes are not supported)", (char[]){d, 0}, i);
            i += 2;
            atom = 1;
        } else if (c == '[') {
            if (bracket(p, &i, &o, why, why_cap))
                return -1;
            atom = 1;
        } else if (c == '(') {
            if (p[i + 1] == '?') {
                if (p[i + 2] == ':')
                    i += 3;
                else if (p[i + 2] == 'P' && p[i + 3] == '<') {
                    const char *end = strchr(p + i + 4, '>');
                    if (!end)
                        return fail(why, why_cap, "unterminated group name%s", "", i);
                    i = (size_t)(end - p) + 1;
                } else
                    return fail(why, why_cap, "unsupported group '(?%s' (lookarounds, inline flags, comments and "
                                "named backreferences are not supported)", (char[]){p[i + 2], 0}, i);
            } else
                i++;
            put(&o, "(");
            atom = 0;
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            char iv[40];
            size_t len = 1;
            if (c == '{') {
                long most = 0;
                len = interval(p, i, iv, sizeof iv, &most);
                if (len && (most > DSV4_MAX_REPEAT || (repeat *= most + 1) > DSV4_MAX_REPEAT * 10))
                    return fail(why, why_cap, "repetition counts above %s are not supported", "100 (or 1000 in "
                                "product)", i);
                if (!len) {
                    put(&o, "\\{");
                    i++;
                    atom = 1;
                    continue;
                }
            }
            if (!atom)
                return fail(why, why_cap, "nothing to repeat before '%s'", (char[]){c, 0}, i);
            put(&o, c == '{' ? iv : (char[]){c, 0});
            i += len;
            if (p[i] == '?')
                i++; /* lazy: the same strings match */
            else if (p[i] == '+')
                return fail(why, why_cap, "possessive quantifier '%s+' is not supported", (char[]){c, 0}, i);
            atom = 0;
        } else if (c == '|') {
            put(&o, "|");
            i++;
            atom = 0;
        } else if (c == ')') {
            put(&o, ")");
            i++;
            atom = 1;
        } else if (c == '^' || c == '$') {
            putc1(&o, c);
            i++;
            atom = 0;
        } else {
            putc1(&o, c);
            i++;
            atom = 1;
        }
        if (o.full)
            return fail(why, why_cap, "pattern too long%s", "", i);
    }
    put(&o, ")");
    if (o.full)
        return fail(why, why_cap, "pattern too long%s", "", strlen(p));
    return 0;
}

dsv4_target *dsv4_target_compile(const char *pattern, char *why, size_t why_cap)
{
    dsv4_target *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(why, why_cap, "out of memory");
        return NULL;
    }
    if (strncmp(pattern, "re:", 3)) {
        t->name = strdup(pattern);
        if (!t->name) {
            free(t);
            snprintf(why, why_cap, "out of memory");
            return NULL;
        }
        return t;
    }
    size_t cap = 4 * strlen(pattern) + 64;
    char *ere = malloc(cap);
    if (!ere) {
        free(t);
        snprintf(why, why_cap, "out of memory");
        return NULL;
    }
    if (dsv4_pyre_to_ere(pattern + 3, ere, cap, why, why_cap)) {
        free(ere);
        free(t);
        return NULL;
    }
    int rc = regcomp(&t->re, ere, REG_EXTENDED | REG_NOSUB);
    free(ere);
    if (rc) {
        char m[160];
        regerror(rc, &t->re, m, sizeof m);
        snprintf(why, why_cap, "not a valid regular expression: %s", m);
        free(t);
        return NULL;
    }
    t->is_re = 1;
    return t;
}

int dsv4_target_match(const dsv4_target *t, const char *name)
{
    if (!t->is_re)
        return strcmp(t->name, name) == 0;
    return regexec(&t->re, name, 0, NULL, 0) == 0;
}

void dsv4_target_free(dsv4_target *t)
{
    if (!t)
        return;
    if (t->is_re)
        regfree(&t->re);
    free(t->name);
    free(t);
}

int dsv4_target_matches(const char *pattern, const char *name, dsv4_err *e)
{
    char why[256];
    dsv4_target *t = dsv4_target_compile(pattern, why, sizeof why);
    if (!t)
        return dsv4_fail(e, "target \"%s\": %s", pattern, why);
    int m = dsv4_target_match(t, name);
    dsv4_target_free(t);
    return m;
}
