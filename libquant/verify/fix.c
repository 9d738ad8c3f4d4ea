/* The fix-op list (fix.h): appending deep copies, freeing, kind names. */
#include "verify/fix.h"

#include <stdlib.h>
#include <string.h>

static void op_free(dsv4_fix_op *o)
{
    free(o->name);
    free(o->new_name);
    free(o->near);
    free(o->why);
    for (size_t i = 0; i < o->depth; i++)
        free(o->path[i]);
    free(o->path);
    json_decref(o->value);
}

void dsv4_fix_list_free(dsv4_fix_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        op_free(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int dup(char **dst, const char *s)
{
    *dst = s ? strdup(s) : NULL;
    return s && !*dst ? -1 : 0;
}

int dsv4_fix_list_add(dsv4_fix_list *l, const dsv4_fix_op *op)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        dsv4_fix_op *nv = realloc(l->v, cap * sizeof *nv);
        if (!nv) {
            json_decref(op->value);
            return -1;
        }
        l->v = nv;
        l->cap = cap;
    }
    dsv4_fix_op o = *op;
    o.name = o.new_name = o.near = o.why = NULL;
    o.path = NULL;
    o.depth = 0;
    int bad = dup(&o.name, op->name) | dup(&o.new_name, op->new_name) | dup(&o.near, op->near) |
              dup(&o.why, op->why);
    if (op->depth) {
        o.path = calloc(op->depth, sizeof *o.path);
        bad |= !o.path;
        for (size_t i = 0; o.path && i < op->depth; i++, o.depth++)
            bad |= dup(&o.path[i], op->path[i]);
    }
    if (bad) {
        op_free(&o);
        return -1;
    }
    l->v[l->n++] = o;
    return 0;
}

const char *dsv4_fix_kind_name(dsv4_fix_kind k)
{
    switch (k) {
    case DSV4_FIX_RENAME: return "rename";
    case DSV4_FIX_RESHAPE: return "reshape";
    case DSV4_FIX_PUT: return "put";
    case DSV4_FIX_DROP: return "drop";
    case DSV4_FIX_CONFIG: return "config";
    case DSV4_FIX_INDEX: return "index";
    }
    return "?";
}
