/* Regex parser: Oniguruma (Ruby syntax) pattern -> syntax tree, for the subset regex.h lists.
 * Everything outside that subset is refused with the construct and its offset. */
#include "tokenizer/regex_internal.h"
#include "tokenizer/regex_parse.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REPEAT 1000


void *re_fail(ps *x, const char *fmt, ...)
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

re_node *re_new_node(ps *x, int type)
{
    re_parsed *p = x->p;
    if (p->npool == p->cappool) {
        int cap = p->cappool ? 2 * p->cappool : 64;
        re_node **np = realloc(p->pool, (size_t)cap * sizeof *np);
        if (!np)
            return re_fail(x, "out of memory");
        p->pool = np;
        p->cappool = cap;
    }
    re_node *n = calloc(1, sizeof *n);
    if (!n)
        return re_fail(x, "out of memory");
    n->type = type;
    p->pool[p->npool++] = n;
    return n;
}

int re_add_kid(ps *x, re_node *n, re_node *k)
{
    if (n->nkids == n->capkids) {
        int cap = n->capkids ? 2 * n->capkids : 4;
        re_node **nk = realloc(n->kids, (size_t)cap * sizeof *nk);
        if (!nk) {
            re_fail(x, "out of memory");
            return -1;
        }
        n->kids = nk;
        n->capkids = cap;
    }
    n->kids[n->nkids++] = k;
    return 0;
}

static re_node *parse_alt(ps *x, int icase);

static re_node *char_node(ps *x, uint32_t cp, int icase)
{
    re_node *n = re_new_node(x, RN_CHAR);
    if (!n)
        return NULL;
    if (icase) {
        for (size_t k = 0; k < dsv4_uc_fold_nmulti; k++)
            if (dsv4_uc_fold_multi[k][0] == cp || dsv4_uc_fold(cp) == dsv4_uc_fold_multi[k][0])
                return re_fail(x, "case-insensitive U+%04X folds to several characters (not supported)", cp);
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
                n = re_new_node(x, k == '>' ? RN_ATOMIC : RN_LOOK);
                if (!n || re_add_kid(x, n, body))
                    return NULL;
                n->kind = k == '!';
            }
        } else if (k == 'i' || (k == '-' && x->i + 1 < x->n && x->s[x->i + 1] == 'i')) {
            int on = k == 'i';
            x->i += on ? 1 : 2;
            if (x->i >= x->n || x->s[x->i] != ':')
                return re_fail(x, "group option at offset %zu is not supported (only (?i:...), (?-i:...), (?i))", at);
            x->i++;
            n = parse_alt(x, on);
            if (!n)
                return NULL;
        } else if (k == '<' && x->i + 1 < x->n && (x->s[x->i + 1] == '=' || x->s[x->i + 1] == '!')) {
            return re_fail(x, "lookbehind at offset %zu is not supported", at);
        } else {
            return re_fail(x, "group (?%c at offset %zu is not supported", k ? (char)k : ' ', at);
        }
    } else {
        n = parse_alt(x, icase);
        if (!n)
            return NULL;
    }
    if (x->i >= x->n || x->s[x->i] != ')')
        return re_fail(x, "unterminated group at offset %zu", at);
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
            return re_fail(x, "nested quantifier at offset %zu is not supported", at);
        if (atom->type == RN_ASSERT || atom->type == RN_LOOK)
            return re_fail(x, "quantified assertion at offset %zu is not supported", at);
        if ((mx >= 0 && mx < mn) || mn > MAX_REPEAT || mx > MAX_REPEAT)
            return re_fail(x, "repetition bounds at offset %zu are not supported (0..%d)", at, MAX_REPEAT);
        if (mx < 0 && nullable(atom))
            return re_fail(x, "unbounded repetition of something that can match empty at offset %zu "
                                "is not supported", at);
        int quant = RQ_GREEDY;
        if (x->i < x->n && x->s[x->i] == '?') {
            quant = RQ_LAZY;
            x->i++;
        } else if (x->i < x->n && x->s[x->i] == '+') {
            if (interval)
                return re_fail(x, "'+' after an interval at offset %zu (a nested quantifier in Ruby "
                                    "syntax) is not supported", x->i);
            quant = RQ_POSSESSIVE;
            x->i++;
        }
        re_node *r = re_new_node(x, RN_REPEAT);
        if (!r || re_add_kid(x, r, atom))
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
                re_fail(x, "case-insensitive literal run matches the folding of U+%04X "
                             "(multi-character case folding is not supported)", dsv4_uc_fold_multi[k][0]);
                return -1;
            }
        }
    }
    return 0;
}

static re_node *parse_cat(ps *x, int icase)
{
    re_node *cat = re_new_node(x, RN_CAT);
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
                if (!rest || re_add_kid(x, cat, rest))
                    return NULL;
                break;
            }
            a = parse_group(x, icase);
        } else if (c == '[') {
            a = re_parse_class(x);
            if (a)
                x->p->classes[a->cls].icase = icase;
        } else if (c == '.') {
            a = re_new_node(x, RN_ANY);
        } else if (c == '^' || c == '$') {
            a = re_new_node(x, RN_ASSERT);
            if (a)
                a->kind = c == '^' ? RA_BOL : RA_EOL;
        } else if (c == '\\') {
            uint32_t cp;
            re_item it;
            int anchor;
            int r = re_parse_escape(x, 0, &cp, &it, &anchor);
            if (r < 0)
                return NULL;
            if (r == 0) {
                a = char_node(x, cp, icase);
            } else if (r == 1) {
                a = re_class_node(x, it);
                if (a)
                    x->p->classes[a->cls].icase = icase;
            } else {
                a = re_new_node(x, RN_ASSERT);
                if (a)
                    a->kind = anchor;
            }
        } else if (c == '*' || c == '+' || c == '?') {
            return re_fail(x, "quantifier '%c' at offset %zu has nothing to repeat", (char)c, at);
        } else {
            a = char_node(x, c, icase);
        }
        if (!a)
            return NULL;
        a = parse_quantifiers(x, a);
        if (!a || re_add_kid(x, cat, a))
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
    re_node *alt = re_new_node(x, RN_ALT);
    if (!alt || re_add_kid(x, alt, first))
        return NULL;
    while (x->i < x->n && x->s[x->i] == '|') {
        x->i++;
        re_node *k = parse_cat(x, icase);
        if (!k || re_add_kid(x, alt, k))
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
        re_fail(&x, "unbalanced ')' at offset %zu", x.i);
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
