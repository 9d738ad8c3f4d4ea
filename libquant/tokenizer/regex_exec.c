/* Regex matcher: runs the compiled program (regex_compile.c) with an explicit backtracking stack
 * (no recursion over the text, so long inputs cannot overflow the C stack; only lookaround and
 * atomic groups recurse, as deep as they nest in the pattern). Searches try each start position
 * in turn, as Oniguruma's search does, and the first match found by the alternatives' order wins. */
#include "tokenizer/regex.h"
#include "tokenizer/regex_internal.h"
#include "tokenizer/unicode.h"

#include <stdlib.h>

#define STEP_BUDGET 200000000L

typedef struct { uint32_t pc; size_t pos; } bt;

typedef struct {
    const dsv4_re *re;
    const uint32_t *s;
    size_t n;
    bt *stack;
    size_t sn, scap;
    long steps;
} vm;

static int items_match(const re_class *c, uint32_t cp)
{
    int hit = 0;
    for (int i = 0; i < c->n && !hit; i++) {
        const re_item *it = &c->items[i];
        int m;
        switch (it->kind) {
        case RC_RANGE: m = cp >= it->lo && cp <= it->hi; break;
        case RC_CAT: m = (it->mask & DSV4_UC_BIT(dsv4_uc_category(cp))) != 0; break;
        case RC_SPACE: m = dsv4_uc_is_space(cp); break;
        case RC_WORD: m = dsv4_uc_is_onig_word(cp); break;
        case RC_DIGIT: m = dsv4_uc_category(cp) == DSV4_UC_Nd; break;
        default: m = (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'f') || (cp >= 'A' && cp <= 'F'); break;
        }
        hit = it->neg ? !m : m;
    }
    return hit;
}

/* Under (?i) the class holds the case closure of its members: cp matches when any code point
 * folding like it is a member; negation applies to that closure. */
int dsv4_re_class_match(const re_class *c, uint32_t cp)
{
    int hit = items_match(c, cp);
    if (!hit && c->icase) {
        uint32_t alt[8];
        int k = dsv4_uc_fold_class(cp, alt, 8);
        for (int i = 1; i < k && !hit; i++)
            hit = items_match(c, alt[i]);
    }
    return c->neg ? !hit : hit;
}

static int assert_ok(const vm *v, int kind, size_t pos)
{
    const uint32_t *s = v->s;
    size_t n = v->n;
    switch (kind) {
    case RA_BOL: return pos == 0 || s[pos - 1] == '\n';
    case RA_EOL: return pos == n || s[pos] == '\n';
    case RA_BOS: return pos == 0;
    case RA_EOS: return pos == n;
    case RA_EOS_NL: return pos == n || (pos + 1 == n && s[pos] == '\n');
    default: {
        int a = pos > 0 && dsv4_uc_is_onig_word(s[pos - 1]);
        int b = pos < n && dsv4_uc_is_onig_word(s[pos]);
        return kind == RA_WORDB ? a != b : a == b;
    }
    }
}

static int push(vm *v, uint32_t pc, size_t pos)
{
    if (v->sn == v->scap) {
        size_t cap = v->scap ? 2 * v->scap : 256;
        bt *ns = realloc(v->stack, cap * sizeof *ns);
        if (!ns)
            return -1;
        v->stack = ns;
        v->scap = cap;
    }
    v->stack[v->sn++] = (bt){pc, pos};
    return 0;
}

/* Runs from pc at pos until the body's RI_MATCH: its end position, -1 for no match, -2 when the
 * step budget ran out or memory failed. */
static long run(vm *v, uint32_t pc, size_t pos)
{
    const re_ins *prog = v->re->prog;
    size_t base = v->sn;
    for (;;) {
        if (++v->steps > STEP_BUDGET) {
            v->sn = base;
            return -2;
        }
        const re_ins *in = &prog[pc];
        int ok = 1;
        switch (in->op) {
        case RI_CHAR: ok = pos < v->n && v->s[pos] == in->x; if (ok) pos++, pc++; break;
        case RI_CHARI: ok = pos < v->n && dsv4_uc_fold(v->s[pos]) == in->x; if (ok) pos++, pc++; break;
        case RI_ANY: ok = pos < v->n && v->s[pos] != '\n'; if (ok) pos++, pc++; break;
        case RI_CLASS:
            ok = pos < v->n && dsv4_re_class_match(&v->re->classes[in->x], v->s[pos]);
            if (ok) pos++, pc++;
            break;
        case RI_SPLIT:
            if (push(v, in->y, pos)) {
                v->sn = base;
                return -2;
            }
            pc = in->x;
            break;
        case RI_JMP: pc = in->x; break;
        case RI_MATCH: v->sn = base; return (long)pos;
        case RI_ASSERT: ok = assert_ok(v, (int)in->x, pos); if (ok) pc++; break;
        default: { /* RI_LOOK, RI_NLOOK, RI_ATOMIC */
            long r = run(v, pc + 1, pos);
            if (r == -2) {
                v->sn = base;
                return -2;
            }
            if (in->op == RI_ATOMIC) {
                ok = r >= 0;
                if (ok) pos = (size_t)r;
            } else {
                ok = (r >= 0) == (in->op == RI_LOOK);
            }
            if (ok) pc = in->x;
            break;
        }
        }
        if (!ok) {
            if (v->sn == base)
                return -1;
            bt b = v->stack[--v->sn];
            pc = b.pc;
            pos = b.pos;
        }
    }
}

/* The step budget is per search (one leftmost match), so long texts are not penalized. */
static int search(vm *v, size_t from, size_t *ms, size_t *me)
{
    v->steps = 0;
    for (size_t st = from; st <= v->n; st++) {
        long r = run(v, 0, st);
        if (r == -2)
            return -1;
        if (r >= 0) {
            *ms = st;
            *me = (size_t)r;
            return 1;
        }
    }
    return 0;
}

int dsv4_re_search(const dsv4_re *re, const uint32_t *cps, size_t n, size_t from, size_t *ms, size_t *me)
{
    vm v = {.re = re, .s = cps, .n = n};
    int r = search(&v, from, ms, me);
    free(v.stack);
    return r;
}

long dsv4_re_find_all(const dsv4_re *re, const uint32_t *cps, size_t n, size_t **spans)
{
    vm v = {.re = re, .s = cps, .n = n};
    size_t cnt = 0, cap = 16, last_end = 0;
    int skip_next_empty = 0;
    size_t *sp = malloc(2 * cap * sizeof *sp);
    if (!sp)
        return -1;
    while (last_end <= n) {
        size_t s, e;
        int r = search(&v, last_end, &s, &e);
        if (r < 0) {
            free(sp);
            free(v.stack);
            return -1;
        }
        if (r == 0)
            break;
        last_end = e;
        if (e == s) { /* the onig crate: step over one character; drop an empty match right after a match */
            last_end += 1;
            if (skip_next_empty) {
                skip_next_empty = 0;
                continue;
            }
        } else {
            skip_next_empty = 1;
        }
        if (cnt == cap) {
            cap *= 2;
            size_t *ns = realloc(sp, 2 * cap * sizeof *ns);
            if (!ns) {
                free(sp);
                free(v.stack);
                return -1;
            }
            sp = ns;
        }
        sp[2 * cnt] = s;
        sp[2 * cnt + 1] = e;
        cnt++;
    }
    free(v.stack);
    *spans = sp;
    return (long)cnt;
}
