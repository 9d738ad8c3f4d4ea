/* Regex parser, the character-level part: escapes (\\t \\x{..} \\u.... \\d \\s \\w \\h \\p{..}
 * and anchors), bracketed classes with ranges and negation, and the class table they fill. */
#include "tokenizer/regex_parse.h"
#include "tokenizer/unicode.h"

#include <stdlib.h>
#include <string.h>

static re_class *new_class(ps *x, int *idx)
{
    re_parsed *p = x->p;
    if (p->nclasses == p->capclasses) {
        int cap = p->capclasses ? 2 * p->capclasses : 8;
        re_class *nc = realloc(p->classes, (size_t)cap * sizeof *nc);
        if (!nc)
            return re_fail(x, "out of memory");
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
            re_fail(x, "out of memory");
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
        re_fail(x, "\\%c without {name} at offset %zu is not supported", upper ? 'P' : 'p', at);
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
            re_fail(x, "bad property name at offset %zu", at);
            return -1;
        }
        name[nl++] = (char)x->s[x->i++];
    }
    name[nl] = 0;
    if (x->i >= x->n) {
        re_fail(x, "unterminated \\p{ at offset %zu", at);
        return -1;
    }
    x->i++;
    uint32_t m = dsv4_uc_property_mask(name, nl);
    if (!m) {
        re_fail(x, "property \\p{%s} at offset %zu is not a Unicode general category "
                     "(scripts and other properties are not supported)", name, at);
        return -1;
    }
    *it = (re_item){.kind = RC_CAT, .neg = neg, .mask = m};
    return 0;
}

int re_parse_escape(ps *x, int in_class, uint32_t *cp, re_item *it, int *anchor)
{
    size_t at = x->i - 1;
    if (x->i >= x->n)
        return re_fail(x, "pattern ends with a backslash"), -1;
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
                return re_fail(x, "bad \\x{...} at offset %zu", at), -1;
            x->i = k + 1;
        } else {
            int nd = 0;
            while (nd < 2 && x->i < x->n && hexval(x->s[x->i]) >= 0) v = v * 16 + (uint32_t)hexval(x->s[x->i++]), nd++;
            if (nd == 0)
                return re_fail(x, "bad \\x at offset %zu", at), -1;
        }
        *cp = v;
        return 0;
    }
    case 'u': {
        uint32_t v = 0;
        for (int k = 0; k < 4; k++) {
            if (x->i >= x->n || hexval(x->s[x->i]) < 0)
                return re_fail(x, "bad \\u at offset %zu (4 hex digits expected)", at), -1;
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
            return re_fail(x, "\\%c inside a class at offset %zu is not supported", (char)c, at), -1;
        *anchor = c == 'A' ? RA_BOS : c == 'z' ? RA_EOS : c == 'Z' ? RA_EOS_NL : c == 'b' ? RA_WORDB : RA_NWORDB;
        return 2;
    default:
        break;
    }
    if ((c >= '1' && c <= '9') || c == 'k' || c == 'g')
        return re_fail(x, "backreference / subexpression call \\%c at offset %zu is not supported", (char)c, at), -1;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return re_fail(x, "escape \\%c at offset %zu is not supported", (char)c, at), -1;
    *cp = c; /* escaped punctuation, digits handled above, or a non-ASCII character */
    return 0;
}

re_node *re_parse_class(ps *x)
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
        return re_fail(x, "']' first in the class at offset %zu is not supported", at);
    for (;;) {
        if (x->i >= x->n)
            return re_fail(x, "unterminated class at offset %zu", at);
        uint32_t ch = x->s[x->i];
        if (ch == ']') {
            x->i++;
            break;
        }
        if (ch == '[')
            return re_fail(x, "nested class or POSIX bracket at offset %zu is not supported", x->i);
        if (ch == '&' && x->i + 1 < x->n && x->s[x->i + 1] == '&')
            return re_fail(x, "class intersection && at offset %zu is not supported", x->i);
        uint32_t lo;
        re_item it;
        int anchor;
        x->i++;
        if (ch == '\\') {
            int r = re_parse_escape(x, 1, &lo, &it, &anchor);
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
                return re_fail(x, "nested class at offset %zu is not supported", x->i - 1);
            if (e == '\\') {
                int r = re_parse_escape(x, 1, &hi, &it, &anchor);
                if (r < 0)
                    return NULL;
                if (r != 0)
                    return re_fail(x, "range ending in a class escape at offset %zu", rat);
            } else {
                hi = e;
            }
            if (hi < lo)
                return re_fail(x, "empty range at offset %zu", rat);
        }
        if (add_item(x, c, (re_item){.kind = RC_RANGE, .lo = lo, .hi = hi}))
            return NULL;
    }
    re_node *n = re_new_node(x, RN_CLASS);
    if (n)
        n->cls = idx;
    return n;
}

re_node *re_class_node(ps *x, re_item it)
{
    int idx;
    re_class *c = new_class(x, &idx);
    if (!c || add_item(x, c, it))
        return NULL;
    re_node *n = re_new_node(x, RN_CLASS);
    if (n)
        n->cls = idx;
    return n;
}

