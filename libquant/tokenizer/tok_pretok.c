/* The pre-tokenizers of `tokenizers` on a list of splits (PreTokenizedString semantics): Split
 * with a regex or string pattern and one of the five delimiter behaviors (optionally inverted),
 * Digits, and ByteLevel (prefix space, GPT-2 regex, byte -> code point mapping). Splits that are
 * added tokens are left alone; empty splits are dropped. */
#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"

#include <stdlib.h>
#include <string.h>

typedef struct { size_t s, e; int flag; } span; /* flag: is a match (find_matches) / remove (split) */
typedef struct { span *v; size_t n, cap; } spans;

static int spans_push(spans *a, size_t s, size_t e, int flag)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 16;
        span *nv = realloc(a->v, cap * sizeof *nv);
        if (!nv)
            return -1;
        a->v = nv;
        a->cap = cap;
    }
    a->v[a->n++] = (span){s, e, flag};
    return 0;
}

int tok_splits_push(tok_splits *s, uint32_t *cps, size_t n, int32_t id)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        tok_split *nv = realloc(s->v, cap * sizeof *nv);
        if (!nv) {
            free(cps);
            return -1;
        }
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n++] = (tok_split){cps, n, id};
    return 0;
}

void tok_splits_free(tok_splits *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].cps);
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* Pattern::find_matches: the content cut into matched / unmatched spans covering it. */
static int find_matches(const tok_pretok *p, const uint32_t *c, size_t n, spans *out)
{
    if (n == 0)
        return spans_push(out, 0, 0, 0);
    if (p->type == PT_DIGITS) { /* char predicate: every numeric character is its own match */
        size_t last = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t m = DSV4_UC_BIT(dsv4_uc_category(c[i]));
            if (!(m & DSV4_UC_MASK_N))
                continue;
            if (last < i && spans_push(out, last, i, 0))
                return -1;
            if (spans_push(out, i, i + 1, 1))
                return -1;
            last = i + 1;
        }
        return last < n ? spans_push(out, last, n, 0) : 0;
    }
    size_t *sp;
    long k = dsv4_re_find_all(p->re, c, n, &sp);
    if (k < 0)
        return -2;
    size_t prev = 0;
    int rc = 0;
    for (long i = 0; i < k && !rc; i++) {
        size_t s = sp[2 * i], e = sp[2 * i + 1];
        if (prev != s)
            rc = spans_push(out, prev, s, 0);
        if (!rc)
            rc = spans_push(out, s, e, 1);
        prev = e;
    }
    free(sp);
    if (!rc && prev != n)
        rc = spans_push(out, prev, n, 0);
    return rc;
}

/* NormalizedString::split: matches -> (span, remove) by behavior. */
static int by_behavior(int behavior, const spans *m, spans *out)
{
    int prev = 0;
    switch (behavior) {
    case SB_ISOLATED:
        for (size_t i = 0; i < m->n; i++)
            if (spans_push(out, m->v[i].s, m->v[i].e, 0)) return -1;
        return 0;
    case SB_REMOVED:
        for (size_t i = 0; i < m->n; i++)
            if (spans_push(out, m->v[i].s, m->v[i].e, m->v[i].flag)) return -1;
        return 0;
    case SB_CONTIGUOUS:
        for (size_t i = 0; i < m->n; i++) {
            if (m->v[i].flag == prev && out->n)
                out->v[out->n - 1].e = m->v[i].e;
            else if (spans_push(out, m->v[i].s, m->v[i].e, 0))
                return -1;
            prev = m->v[i].flag;
        }
        return 0;
    case SB_MERGED_PREV:
        for (size_t i = 0; i < m->n; i++) {
            if (m->v[i].flag && !prev && out->n)
                out->v[out->n - 1].e = m->v[i].e;
            else if (spans_push(out, m->v[i].s, m->v[i].e, 0))
                return -1;
            prev = m->v[i].flag;
        }
        return 0;
    default: /* SB_MERGED_NEXT: the same from the right */
        for (size_t i = m->n; i-- > 0;) {
            if (m->v[i].flag && !prev && out->n)
                out->v[out->n - 1].s = m->v[i].s;
            else if (spans_push(out, m->v[i].s, m->v[i].e, 0))
                return -1;
            prev = m->v[i].flag;
        }
        for (size_t i = 0; i < out->n / 2; i++) {
            span t = out->v[i];
            out->v[i] = out->v[out->n - 1 - i];
            out->v[out->n - 1 - i] = t;
        }
        return 0;
    }
}

/* Splits one content by p (Split / Digits / ByteLevel's regex) into out. */
static int split_one(const tok_pretok *p, int behavior, int invert, const uint32_t *c, size_t n,
                     tok_splits *out)
{
    spans m = {0}, b = {0};
    int rc = find_matches(p, c, n, &m);
    if (!rc && invert)
        for (size_t i = 0; i < m.n; i++)
            m.v[i].flag = !m.v[i].flag;
    if (!rc)
        rc = by_behavior(behavior, &m, &b) ? -1 : 0;
    for (size_t i = 0; i < b.n && !rc; i++) {
        if (b.v[i].flag || b.v[i].e == b.v[i].s)
            continue;
        size_t len = b.v[i].e - b.v[i].s;
        uint32_t *cp = malloc(len * sizeof *cp);
        if (!cp) {
            rc = -1;
            break;
        }
        memcpy(cp, c + b.v[i].s, len * sizeof *cp);
        rc = tok_splits_push(out, cp, len, -1);
    }
    free(m.v);
    free(b.v);
    return rc;
}

/* ByteLevel's normalize step: UTF-8 bytes of the content, each mapped to its printable code point. */
static int bytelevel_map(tok_split *s)
{
    uint32_t *o = malloc((4 * s->n + 1) * sizeof *o);
    if (!o)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        char b[4];
        int l = tok_utf8_put(s->cps[i], b);
        for (int j = 0; j < l; j++)
            o[k++] = tok_byte_to_cp((uint8_t)b[j]);
    }
    free(s->cps);
    s->cps = o;
    s->n = k;
    return 0;
}

int tok_pretok_apply(const dsv4_tok *t, const tok_pretok *p, tok_splits *in, dsv4_err *e)
{
    tok_splits out = {0};
    int rc = 0;
    for (size_t i = 0; i < in->n && !rc; i++) {
        tok_split *s = &in->v[i];
        if (s->id >= 0) { /* an added token: passes through */
            rc = tok_splits_push(&out, s->cps, s->n, s->id);
            s->cps = NULL;
            continue;
        }
        if (p->type == PT_BYTELEVEL) {
            if (p->add_prefix_space && (s->n == 0 || s->cps[0] != ' ')) {
                uint32_t *np = malloc((s->n + 1) * sizeof *np);
                if (!np) {
                    rc = -1;
                    break;
                }
                np[0] = ' ';
                memcpy(np + 1, s->cps, s->n * sizeof *np);
                free(s->cps);
                s->cps = np;
                s->n++;
            }
            size_t first = out.n;
            if (p->use_regex) {
                rc = split_one(p, SB_ISOLATED, 0, s->cps, s->n, &out);
            } else if (s->n) {
                rc = tok_splits_push(&out, s->cps, s->n, -1);
                s->cps = NULL;
            }
            for (size_t k = first; k < out.n && !rc; k++)
                rc = bytelevel_map(&out.v[k]);
            continue;
        }
        int behavior = p->type == PT_DIGITS ? (p->individual ? SB_ISOLATED : SB_CONTIGUOUS) : p->behavior;
        rc = split_one(p, behavior, p->type == PT_SPLIT && p->invert, s->cps, s->n, &out);
    }
    if (rc) {
        tok_splits_free(&out);
        return rc == -2 ? dsv4_fail(e, "%s: a pre-tokenizer regex ran out of its backtracking budget on this text", t->path)
                        : dsv4_fail_rt(e, "out of memory");
    }
    tok_splits_free(in);
    *in = out;
    return 0;
}
