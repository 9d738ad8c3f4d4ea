/* Regex parser: Oniguruma (Ruby syntax) pattern -> syntax tree, for the subset regex.h lists.
 * Everything outside that subset is refused with the construct and its offset. */
#include "tokenizer/regex_internal.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REPEAT 1000

typedef struct {
    const uint32_t *s;
    size_t n, i;
    re_parsed *p;
    char *why;
    size_t whylen;
    int failed;
} ps;

static void *fail_null(ps *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void *fail_null(ps *x, const char *fmt, ...)
{
    if (!x->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(x->why, x->whylen, fmt, ap);
        va_end(ap);
        x->failed = 1;
    }
    return NULL;
}

static re_node *node(ps *x, int type)
{
    re_parsed *p = x->p;
    if (p->npool == p->cappool) {
        int cap = p->cappool ? 2 * p->cappool : 64;
        re_node **np = realloc(p->pool, (size_t)cap * sizeof *np);
        if (!np)
            return fail_null(x, "out of memory");
        p->pool = np;
        p->cappool = cap;
    }
    re_node *n = calloc(1, sizeof *n);
    if (!n)
        return fail_null(x, "out of memory");
    n->type = type;
    p->pool[p->npool++] = n;
    return n;
}

static int add_kid(ps *x, re_node *n, re_node *k)
{
    if (n->nkids == n->capkids) {
        int cap = n->capkids ? 2 * n->capkids : 4;
        re_node **nk = realloc(n->kids, (size_t)cap * sizeof *nk);
        if (!nk) {
            fail_null(x, "out of memory");
            return -1;
        }
        n->kids = nk;
        n->capkids = cap;
    }
    n->kids[n->nkids++] = k;
    return 0;
}

static re_class *new_class(ps *x, int *idx)
{
    re_parsed *p = x->p;
    if (p->nclasses == p->capclasses) {
        int cap = p->capclasses ? 2 * p->capclasses : 8;
        re_class *nc = realloc(p->classes, (size_t)cap * sizeof *nc);
        if (!nc)
            return fail_null(x, "out of memory");
        p->classes = nc;
        p->capclasses = cap;
    }
    *idx = p->nclasses;
    re_class *c = &p->classes[p->nclasses++];
    memset(c, 0, sizeof *c);
    return c;
}

static int add_item(ps *x, re_class *c, re_item it)
{
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 8;
        re_item *ni = realloc(c->items, (size_t)cap * sizeof *ni);
        if (!ni) {
            fail_null(x, "out of memory");
            return -1;
        }
        c->items = ni;
        c->cap = cap;
    }
    c->items[c->n++] = it;
    return 0;
}

static int hexval(uint32_t c)
{
    if (c >= '0' && c <= '9') return (int)(c - '0');
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
    return -1;
}

/* Parses \p{..} / \P{..} after the 'p' or 'P' (x->i at '{'); fills a class item. */
static int parse_property(ps *x, int upper, re_item *it)
{
    size_t at = x->i - 2;
    if (x->i >= x->n || x->s[x->i] != '{') {
        fail_null(x, "\\%c without {name} at offset %zu is not supported", upper ? 'P' : 'p', at);
        return -1;
    }
    x->i++;
    int neg = upper;
    if (x->i < x->n && x->s[x->i] == '^') {
        neg = !neg;
        x->i++;
    }
    char name[64];
    size_t nl = 0;
    while (x->i < x->n && x->s[x->i] != '}') {
        if (x->s[x->i] > 0x7e || nl + 1 >= sizeof name) {
            fail_null(x, "bad property name at offset %zu", at);
            return -1;
        }
        name[nl++] = (char)x->s[x->i++];
    }
    name[nl] = 0;
    if (x->i >= x->n) {
        fail_null(x, "unterminated \\p{ at offset %zu", at);
        return -1;
    }
    x->i++;
    uint32_t m = dsv4_uc_property_mask(name, nl);
    if (!m) {
        fail_null(x, "property \\p{%s} at offset %zu is not a Unicode general category "
                     "(scripts and other properties are not supported)", name, at);
        return -1;
    }
    *it = (re_item){.kind = RC_CAT, .neg = neg, .mask = m};
    return 0;
}

/* After a backslash (x->i past it): a single-char escape -> *cp and 0; a class escape -> *it and
 * 1; an anchor (outside classes) -> *anchor and 2; -1 on error. */
static int parse_escape(ps *x, int in_class, uint32_t *cp, re_item *it, int *anchor)
{
    size_t at = x->i - 1;
    if (x->i >= x->n)
        return fail_null(x, "pattern ends with a backslash"), -1;
    uint32_t c = x->s[x->i++];
    switch (c) {
    case 't': *cp = 9; return 0;
    case 'n': *cp = 10; return 0;
    case 'r': *cp = 13; return 0;
    case 'f': *cp = 12; return 0;
    case 'v': *cp = 11; return 0;
    case 'a': *cp = 7; return 0;
    case 'e': *cp = 27; return 0;
    case 'd': case 'D': *it = (re_item){.kind = RC_DIGIT, .neg = c == 'D'}; return 1;
    case 's': case 'S': *it = (re_item){.kind = RC_SPACE, .neg = c == 'S'}; return 1;
    case 'w': case 'W': *it = (re_item){.kind = RC_WORD, .neg = c == 'W'}; return 1;
    case 'h': case 'H': *it = (re_item){.kind = RC_HEX, .neg = c == 'H'}; return 1;
    case 'p': case 'P': return parse_property(x, c == 'P', it) ? -1 : 1;
    case 'x': {
        uint32_t v = 0;
        if (x->i < x->n && x->s[x->i] == '{') {
            size_t k = x->i + 1, nd = 0;
            while (k < x->n && hexval(x->s[k]) >= 0 && nd < 8) v = v * 16 + (uint32_t)hexval(x->s[k++]), nd++;
            if (k >= x->n || x->s[k] != '}' || nd == 0 || v > 0x10FFFF)
                return fail_null(x, "bad \\x{...} at offset %zu", at), -1;
            x->i = k + 1;
        } else {
            int nd = 0;
            while (nd < 2 && x->i < x->n && hexval(x->s[x->i]) >= 0) v = v * 16 + (uint32_t)hexval(x->s[x->i++]), nd++;
            if (nd == 0)
                return fail_null(x, "bad \\x at offset %zu", at), -1;
        }
        *cp = v;
        return 0;
    }
    case 'u': {
        uint32_t v = 0;
        for (int k = 0; k < 4; k++) {
            if (x->i >= x->n || hexval(x->s[x->i]) < 0)
                return fail_null(x, "bad \\u at offset %zu (4 hex digits expected)", at), -1;
            v = v * 16 + (uint32_t)hexval(x->s[x->i++]);
        }
        *cp = v;
        return 0;
    }
    case '0': {
        uint32_t v = 0;
        for (int k = 0; k < 2 && x->i < x->n && x->s[x->i] >= '0' && x->s[x->i] <= '7'; k++) v = v * 8 + (x->s[x->i++] - '0');
        *cp = v;
        return 0;
    }
    case 'A': case 'z': case 'Z': case 'b': case 'B':
        if (in_class)
            return fail_null(x, "\\%c inside a class at offset %zu is not supported", (char)c, at), -1;
        *anchor = c == 'A' ? RA_BOS : c == 'z' ? RA_EOS : c == 'Z' ? RA_EOS_NL : c == 'b' ? RA_WORDB : RA_NWORDB;
        return 2;
    default:
        break;
    }
    if ((c >= '1' && c <= '9') || c == 'k' || c == 'g')
        return fail_null(x, "backreference / subexpression call \\%c at offset %zu is not supported", (char)c, at), -1;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return fail_null(x, "escape \\%c at offset %zu is not supported", (char)c, at), -1;
    *cp = c; /* escaped punctuation, digits handled above, or a non-ASCII character */
    return 0;
}

static re_node *parse_class(ps *x)
{
    size_t at = x->i - 1;
    int idx;
    re_class *c = new_class(x, &idx);
    if (!c)
        return NULL;
    if (x->i < x->n && x->s[x->i] == '^') {
        c->neg = 1;
        x->i++;
    }
    if (x->i < x->n && x->s[x->i] == ']')
        return fail_null(x, "']' first in the class at offset %zu is not supported", at);
    for (;;) {
        if (x->i >= x->n)
            return fail_null(x, "unterminated class at offset %zu", at);
        uint32_t ch = x->s[x->i];
        if (ch == ']') {
            x->i++;
            break;
        }
        if (ch == '[')
            return fail_null(x, "nested class or POSIX bracket at offset %zu is not supported", x->i);
        if (ch == '&' && x->i + 1 < x->n && x->s[x->i + 1] == '&')
            return fail_null(x, "class intersection && at offset %zu is not supported", x->i);
        uint32_t lo;
        re_item it;
        int anchor;
        x->i++;
        if (ch == '\\') {
            int r = parse_escape(x, 1, &lo, &it, &anchor);
            if (r < 0)
                return NULL;
            if (r == 1) {
                if (add_item(x, c, it))
                    return NULL;
                continue;
            }
        } else {
            lo = ch;
        }
        uint32_t hi = lo;
        if (x->i + 1 < x->n && x->s[x->i] == '-' && x->s[x->i + 1] != ']') {
            size_t rat = x->i;
            x->i++;
            uint32_t e = x->s[x->i++];
            if (e == '[')
                return fail_null(x, "nested class at offset %zu is not supported", x->i - 1);
            if (e == '\\') {
                int r = parse_escape(x, 1, &hi, &it, &anchor);
                if (r < 0)
                    return NULL;
                if (r != 0)
                    return fail_null(x, "range ending in a class escape at offset %zu", rat);
            } else {
                hi = e;
            }
            if (hi < lo)
                return fail_null(x, "empty range at offset %zu", rat);
        }
        if (add_item(x, c, (re_item){.kind = RC_RANGE, .lo = lo, .hi = hi}))
            return NULL;
    }
    re_node *n = node(x, RN_CLASS);
    if (n)
        n->cls = idx;
    return n;
}

static re_node *class_node(ps *x, re_item it)
{
    int idx;
    re_class *c = new_class(x, &idx);
    if (!c || add_item(x, c, it))
        return NULL;
    re_node *n = node(x, RN_CLASS);
    if (n)
        n->cls = idx;
    return n;
}

static re_node *parse_alt(ps *x, int icase);

static re_node *char_node(ps *x, uint32_t cp, int icase)
{
    re_node *n = node(x, RN_CHAR);
    if (!n)
        return NULL;
    if (icase) {
        for (size_t k = 0; k < dsv4_uc_fold_nmulti; k++)
            if (dsv4_uc_fold_multi[k][0] == cp || dsv4_uc_fold(cp) == dsv4_uc_fold_multi[k][0])
                return fail_null(x, "case-insensitive U+%04X folds to several characters (not supported)", cp);
        n->icase = 1;
        n->c = dsv4_uc_fold(cp);
    } else {
        n->c = cp;
    }
    return n;
}

/* Group after '(' (x->i past it). */
static re_node *parse_group(ps *x, int icase)
{
    size_t at = x->i - 1;
    re_node *n;
    if (x->i < x->n && x->s[x->i] == '?') {
        x->i++;
        uint32_t k = x->i < x->n ? x->s[x->i] : 0;
        if (k == ':' || k == '=' || k == '!' || k == '>') {
            x->i++;
            re_node *body = parse_alt(x, icase);
            if (!body)
                return NULL;
            if (k == ':') {
                n = body;
            } else {
                n = node(x, k == '>' ? RN_ATOMIC : RN_LOOK);
                if (!n || add_kid(x, n, body))
                    return NULL;
                n->kind = k == '!';
            }
        } else if (k == 'i' || (k == '-' && x->i + 1 < x->n && x->s[x->i + 1] == 'i')) {
            int on = k == 'i';
            x->i += on ? 1 : 2;
            if (x->i >= x->n || x->s[x->i] != ':')
                return fail_null(x, "group option at offset %zu is not supported (only (?i:...), (?-i:...), (?i))", at);
            x->i++;
            n = parse_alt(x, on);
            if (!n)
                return NULL;
        } else if (k == '<' && x->i + 1 < x->n && (x->s[x->i + 1] == '=' || x->s[x->i + 1] == '!')) {
            return fail_null(x, "lookbehind at offset %zu is not supported", at);
        } else {
            return fail_null(x, "group (?%c at offset %zu is not supported", k ? (char)k : ' ', at);
        }
    } else {
        n = parse_alt(x, icase);
        if (!n)
            return NULL;
    }
    if (x->i >= x->n || x->s[x->i] != ')')
        return fail_null(x, "unterminated group at offset %zu", at);
    x->i++;
    return n;
}

/* {n}, {n,}, {n,m}, {,m} at x->i ('{'): 1 and bounds when it is one, 0 when '{' is a literal. */
static int parse_interval(ps *x, int *mn, int *mx)
{
    size_t k = x->i + 1;
    long a = -1, b = -1;
    if (k < x->n && x->s[k] >= '0' && x->s[k] <= '9') {
        a = 0;
        while (k < x->n && x->s[k] >= '0' && x->s[k] <= '9' && a <= 100000) a = a * 10 + (x->s[k++] - '0');
    }
    int comma = k < x->n && x->s[k] == ',';
    if (comma) {
        k++;
        if (k < x->n && x->s[k] >= '0' && x->s[k] <= '9') {
            b = 0;
            while (k < x->n && x->s[k] >= '0' && x->s[k] <= '9' && b <= 100000) b = b * 10 + (x->s[k++] - '0');
        }
    }
    if (k >= x->n || x->s[k] != '}' || (a < 0 && b < 0))
        return 0;
    x->i = k + 1;
    *mn = a < 0 ? 0 : (int)a;
    *mx = comma ? (b < 0 ? -1 : (int)b) : (int)a;
    return 1;
}

static int nullable(const re_node *n)
{
    switch (n->type) {
    case RN_EMPTY: case RN_ASSERT: case RN_LOOK: return 1;
    case RN_CAT:
        for (int i = 0; i < n->nkids; i++)
            if (!nullable(n->kids[i])) return 0;
        return 1;
    case RN_ALT:
        for (int i = 0; i < n->nkids; i++)
            if (nullable(n->kids[i])) return 1;
        return 0;
    case RN_REPEAT: return n->min == 0 || nullable(n->kids[0]);
    case RN_ATOMIC: return nullable(n->kids[0]);
    default: return 0;
    }
}

static re_node *parse_quantifiers(ps *x, re_node *atom)
{
    int quantified = 0;
    while (x->i < x->n) {
        uint32_t q = x->s[x->i];
        size_t at = x->i;
        int mn, mx, interval = 0;
        if (q == '?') mn = 0, mx = 1;
        else if (q == '*') mn = 0, mx = -1;
        else if (q == '+') mn = 1, mx = -1;
        else if (q == '{' && parse_interval(x, &mn, &mx)) interval = 1;
        else break;
        if (!interval)
            x->i++;
        if (quantified)
            return fail_null(x, "nested quantifier at offset %zu is not supported", at);
        if (atom->type == RN_ASSERT || atom->type == RN_LOOK)
            return fail_null(x, "quantified assertion at offset %zu is not supported", at);
        if ((mx >= 0 && mx < mn) || mn > MAX_REPEAT || mx > MAX_REPEAT)
            return fail_null(x, "repetition bounds at offset %zu are not supported (0..%d)", at, MAX_REPEAT);
        if (mx < 0 && nullable(atom))
            return fail_null(x, "unbounded repetition of something that can match empty at offset %zu "
                                "is not supported", at);
        int quant = RQ_GREEDY;
        if (x->i < x->n && x->s[x->i] == '?') {
            quant = RQ_LAZY;
            x->i++;
        } else if (x->i < x->n && x->s[x->i] == '+') {
            if (interval)
                return fail_null(x, "'+' after an interval at offset %zu (a nested quantifier in Ruby "
                                    "syntax) is not supported", x->i);
            quant = RQ_POSSESSIVE;
            x->i++;
        }
        re_node *r = node(x, RN_REPEAT);
        if (!r || add_kid(x, r, atom))
            return NULL;
        r->min = mn;
        r->max = mx;
        r->quant = quant;
        atom = r;
        quantified = 1;
    }
    return atom;
}

/* Refuses (?i) literal runs that contain a multi-character case folding (Oniguruma would let one
 * text character match several pattern characters there). */
static int check_fold_runs(ps *x, const re_node *cat)
{
    for (int i = 0; i + 1 < cat->nkids; i++) {
        for (size_t k = 0; k < dsv4_uc_fold_nmulti; k++) {
            const uint32_t *f = &dsv4_uc_fold_multi[k][1];
            int len = f[2] ? 3 : 2, ok = 1;
            for (int j = 0; j < len && ok; j++) {
                const re_node *c = i + j < cat->nkids ? cat->kids[i + j] : NULL;
                ok = c && c->type == RN_CHAR && c->icase && c->c == f[j];
            }
            if (ok) {
                fail_null(x, "case-insensitive literal run matches the folding of U+%04X "
                             "(multi-character case folding is not supported)", dsv4_uc_fold_multi[k][0]);
                return -1;
            }
        }
    }
    return 0;
}

static re_node *parse_cat(ps *x, int icase)
{
    re_node *cat = node(x, RN_CAT);
    if (!cat)
        return NULL;
    while (x->i < x->n && !x->failed) {
        uint32_t c = x->s[x->i];
        if (c == '|' || c == ')')
            break;
        size_t at = x->i++;
        re_node *a = NULL;
        if (c == '(') {
            if (at + 3 < x->n && x->s[at + 1] == '?' &&
                ((x->s[at + 2] == 'i' && x->s[at + 3] == ')') ||
                 (x->s[at + 2] == '-' && at + 4 < x->n && x->s[at + 3] == 'i' && x->s[at + 4] == ')'))) {
                int on = x->s[at + 2] == 'i';
                x->i = at + (on ? 4 : 5);
                re_node *rest = parse_alt(x, on); /* (?i) applies to the rest of the group */
                if (!rest || add_kid(x, cat, rest))
                    return NULL;
                break;
            }
            a = parse_group(x, icase);
        } else if (c == '[') {
            a = parse_class(x);
            if (a)
                x->p->classes[a->cls].icase = icase;
        } else if (c == '.') {
            a = node(x, RN_ANY);
        } else if (c == '^' || c == '$') {
            a = node(x, RN_ASSERT);
            if (a)
                a->kind = c == '^' ? RA_BOL : RA_EOL;
        } else if (c == '\\') {
            uint32_t cp;
            re_item it;
            int anchor;
            int r = parse_escape(x, 0, &cp, &it, &anchor);
            if (r < 0)
                return NULL;
            if (r == 0) {
                a = char_node(x, cp, icase);
            } else if (r == 1) {
                a = class_node(x, it);
                if (a)
                    x->p->classes[a->cls].icase = icase;
            } else {
                a = node(x, RN_ASSERT);
                if (a)
                    a->kind = anchor;
            }
        } else if (c == '*' || c == '+' || c == '?') {
            return fail_null(x, "quantifier '%c' at offset %zu has nothing to repeat", (char)c, at);
        } else {
            a = char_node(x, c, icase);
        }
        if (!a)
            return NULL;
        a = parse_quantifiers(x, a);
        if (!a || add_kid(x, cat, a))
            return NULL;
    }
    if (x->failed)
        return NULL;
    if (icase && check_fold_runs(x, cat))
        return NULL;
    return cat;
}

static re_node *parse_alt(ps *x, int icase)
{
    re_node *first = parse_cat(x, icase);
    if (!first)
        return NULL;
    if (x->i >= x->n || x->s[x->i] != '|')
        return first;
    re_node *alt = node(x, RN_ALT);
    if (!alt || add_kid(x, alt, first))
        return NULL;
    while (x->i < x->n && x->s[x->i] == '|') {
        x->i++;
        re_node *k = parse_cat(x, icase);
        if (!k || add_kid(x, alt, k))
            return NULL;
    }
    return alt;
}

int dsv4_re_parse(const char *pattern, size_t len, re_parsed *p, re_node **root, char *why, size_t whylen)
{
    memset(p, 0, sizeof *p);
    uint32_t *cps = NULL;
    size_t n = 0;
    if (tok_utf8_decode(pattern, len, &cps, NULL, &n) < 0) {
        snprintf(why, whylen, "the pattern is not valid UTF-8");
        return -1;
    }
    ps x = {.s = cps, .n = n, .p = p, .why = why, .whylen = whylen};
    re_node *r = parse_alt(&x, 0);
    if (r && x.i < n)
        fail_null(&x, "unbalanced ')' at offset %zu", x.i);
    free(cps);
    if (!r || x.failed)
        return -1;
    *root = r;
    return 0;
}

void dsv4_re_parsed_free(re_parsed *p)
{
    for (int i = 0; i < p->npool; i++) {
        free(p->pool[i]->kids);
        free(p->pool[i]);
    }
    free(p->pool);
    for (int i = 0; i < p->nclasses; i++)
        free(p->classes[i].items);
    free(p->classes);
    memset(p, 0, sizeof *p);
}
