/* The fix-op list of verify/fix.h: appending deep copies, freeing, kind names. */
#include "verify/fix.h"

#include <stdlib.h>
#include <string.h>

static void op_free(dsv4_fix_op *op)
{
    free(op->name);
    free(op->new_name);
    free(op->near);
    free(op->why);
    for (size_t i = 0; i < op->depth; i++)
        free(op->path[i]);
    free(op->path);
    json_decref(op->value);
    memset(op, 0, sizeof *op);
}

void dsv4_fix_list_free(dsv4_fix_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        op_free(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* strdup that keeps NULL; sets *bad when a copy fails. */
static char *dup_or_null(const char *s, int *bad)
{
    if (!s)
        return NULL;
    char *c = strdup(s);
    if (!c)
        *bad = 1;
    return c;
}

int dsv4_fix_list_add(dsv4_fix_list *l, const dsv4_fix_op *op)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        dsv4_fix_op *nv = realloc(l->v, cap * sizeof *nv);
        if (!nv)
            return -1;
        l->v = nv;
        l->cap = cap;
    }
    dsv4_fix_op c = *op;
    int bad = 0;
    c.name = dup_or_null(op->name, &bad);
    c.new_name = dup_or_null(op->new_name, &bad);
    c.near = dup_or_null(op->near, &bad);
    c.why = dup_or_null(op->why, &bad);
    c.path = NULL;
    c.depth = 0;
    c.value = op->value; /* taken over, also on failure (the caller no longer owns it) */
    if (op->depth) {
        c.path = calloc(op->depth, sizeof *c.path);
        if (!c.path)
            bad = 1;
        for (size_t i = 0; c.path && i < op->depth; i++, c.depth++)
            c.path[i] = dup_or_null(op->path[i], &bad);
    }
    if (bad) {
        op_free(&c);
        return -1;
    }
    l->v[l->n++] = c;
    return 0;
}

const char *dsv4_fix_kind_name(dsv4_fix_kind k)
{
    switch (k) {
    case DSV4_FIX_RENAME:
        return "rename";
    case DSV4_FIX_RESHAPE:
        return "reshape";
    case DSV4_FIX_PUT:
        return "put";
    case DSV4_FIX_DROP:
        return "drop";
    case DSV4_FIX_CONFIG:
        return "config";
    }
    return "?";
}
