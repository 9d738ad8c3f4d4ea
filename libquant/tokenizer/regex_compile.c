/* Regex compiler: syntax tree -> instructions of the backtracking matcher (regex_exec.c), and the
 * public compile / free entry points. Counted repetition is unrolled (bounded by MAX_PROG). */
#include "tokenizer/regex.h"
#include "tokenizer/regex_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PROG 200000

typedef struct {
    re_ins *prog;
    size_t n, cap;
    int overflow;
} emitter;

static size_t put(emitter *e, uint8_t op, uint32_t x, uint32_t y)
{
    if (e->n >= MAX_PROG) {
        e->overflow = 1;
        return e->n;
    }
    if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 64;
        re_ins *np = realloc(e->prog, cap * sizeof *np);
        if (!np) {
            e->overflow = 2;
            return e->n;
        }
        e->prog = np;
        e->cap = cap;
    }
    e->prog[e->n] = (re_ins){op, x, y};
    return e->n++;
}

static void patch_x(emitter *e, size_t at, size_t v) { if (!e->overflow) e->prog[at].x = (uint32_t)v; }
static void patch_y(emitter *e, size_t at, size_t v) { if (!e->overflow) e->prog[at].y = (uint32_t)v; }

static void emit(emitter *e, const re_node *n);

/* One optional / looping copy of kid; greedy prefers entering it. */
static void emit_repeat(emitter *e, const re_node *n)
{
    const re_node *kid = n->kids[0];
    int lazy = n->quant == RQ_LAZY;
    for (int i = 0; i < n->min && !e->overflow; i++)
        emit(e, kid);
    if (n->max < 0) {
        size_t l0 = put(e, RI_SPLIT, 0, 0);
        emit(e, kid);
        put(e, RI_JMP, (uint32_t)l0, 0);
        size_t l2 = e->n;
        if (lazy) { patch_x(e, l0, l2); patch_y(e, l0, l0 + 1); }
        else { patch_x(e, l0, l0 + 1); patch_y(e, l0, l2); }
        return;
    }
    int opt = n->max - n->min;
    size_t *splits = malloc((size_t)(opt > 0 ? opt : 1) * sizeof *splits);
    if (!splits) {
        e->overflow = 2;
        return;
    }
    for (int i = 0; i < opt && !e->overflow; i++) {
        splits[i] = put(e, RI_SPLIT, 0, 0);
        emit(e, kid);
    }
    size_t end = e->n;
    for (int i = 0; i < opt && !e->overflow; i++) {
        if (lazy) { patch_x(e, splits[i], end); patch_y(e, splits[i], splits[i] + 1); }
        else { patch_x(e, splits[i], splits[i] + 1); patch_y(e, splits[i], end); }
    }
    free(splits);
}

static void emit(emitter *e, const re_node *n)
{
    if (e->overflow)
        return;
    switch (n->type) {
    case RN_EMPTY: break;
    case RN_CHAR: put(e, n->icase ? RI_CHARI : RI_CHAR, n->c, 0); break;
    case RN_ANY: put(e, RI_ANY, 0, 0); break;
    case RN_CLASS: put(e, RI_CLASS, (uint32_t)n->cls, 0); break;
    case RN_CAT:
        for (int i = 0; i < n->nkids; i++)
            emit(e, n->kids[i]);
        break;
    case RN_ALT: {
        size_t *jumps = malloc((size_t)n->nkids * sizeof *jumps);
        if (!jumps) {
            e->overflow = 2;
            return;
        }
        for (int i = 0; i < n->nkids; i++) {
            if (i + 1 < n->nkids) {
                size_t s = put(e, RI_SPLIT, 0, 0);
                patch_x(e, s, s + 1);
                emit(e, n->kids[i]);
                jumps[i] = put(e, RI_JMP, 0, 0);
                patch_y(e, s, e->n);
            } else {
                emit(e, n->kids[i]);
            }
        }
        for (int i = 0; i + 1 < n->nkids; i++)
            patch_x(e, jumps[i], e->n);
        free(jumps);
        break;
    }
    case RN_REPEAT:
        if (n->quant == RQ_POSSESSIVE) {
            size_t a = put(e, RI_ATOMIC, 0, 0);
            re_node greedy = *n;
            greedy.quant = RQ_GREEDY;
            emit_repeat(e, &greedy);
            put(e, RI_MATCH, 0, 0);
            patch_x(e, a, e->n);
        } else {
            emit_repeat(e, n);
        }
        break;
    case RN_ASSERT: put(e, RI_ASSERT, (uint32_t)n->kind, 0); break;
    case RN_LOOK:
    case RN_ATOMIC: {
        size_t a = put(e, n->type == RN_ATOMIC ? RI_ATOMIC : n->kind ? RI_NLOOK : RI_LOOK, 0, 0);
        emit(e, n->kids[0]);
        put(e, RI_MATCH, 0, 0);
        patch_x(e, a, e->n);
        break;
    }
    }
}

int dsv4_re_emit(re_parsed *p, re_node *root, struct dsv4_re *re, char *why, size_t whylen)
{
    emitter e = {0};
    emit(&e, root);
    put(&e, RI_MATCH, 0, 0);
    if (e.overflow) {
        free(e.prog);
        snprintf(why, whylen, e.overflow == 1 ? "the pattern unrolls to more than %d instructions"
                                              : "out of memory compiling the pattern (%d)", MAX_PROG);
        return -1;
    }
    re->prog = e.prog;
    re->nprog = e.n;
    re->classes = p->classes;
    re->nclasses = p->nclasses;
    p->classes = NULL;
    p->nclasses = p->capclasses = 0;
    return 0;
}

int dsv4_re_compile(const char *pattern, size_t len, dsv4_re **out, char *why, size_t whylen)
{
    re_parsed p;
    re_node *root;
    *out = NULL;
    if (dsv4_re_parse(pattern, len, &p, &root, why, whylen)) {
        dsv4_re_parsed_free(&p);
        return -1;
    }
    dsv4_re *re = calloc(1, sizeof *re);
    if (!re) {
        dsv4_re_parsed_free(&p);
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    int rc = dsv4_re_emit(&p, root, re, why, whylen);
    dsv4_re_parsed_free(&p);
    if (rc) {
        free(re);
        return -1;
    }
    *out = re;
    return 0;
}

void dsv4_re_free(dsv4_re *re)
{
    if (!re)
        return;
    for (int i = 0; i < re->nclasses; i++)
        free(re->classes[i].items);
    free(re->classes);
    free(re->prog);
    free(re);
}
