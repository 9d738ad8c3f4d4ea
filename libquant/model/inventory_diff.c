/* Inventory-versus-checkpoint comparison (see inventory_diff.h): a merge of the two name-sorted
 * tables. */
#include "model/inventory_diff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int push(dsv4_diff_list *l, size_t *cap, const dsv4_inv_tensor *want, const dsv4_tensor *got)
{
    if (l->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        dsv4_diff_entry *nv = realloc(l->v, nc * sizeof *nv);
        if (!nv)
            return -1;
        l->v = nv;
        *cap = nc;
    }
    l->v[l->n++] = (dsv4_diff_entry){want, got};
    return 0;
}

static int same_shape(const dsv4_inv_tensor *w, const dsv4_tensor *g)
{
    if (w->ndim != g->ndim)
        return 0;
    for (int d = 0; d < w->ndim; d++)
        if (w->shape[d] != g->shape[d])
            return 0;
    return 1;
}

int dsv4_inventory_diff(const dsv4_inventory *inv, const dsv4_ckpt *c, dsv4_inv_diff *d, dsv4_err *e)
{
    memset(d, 0, sizeof *d);
    for (size_t j = 1; j < c->n; j++)
        if (strcmp(c->by_name[j - 1]->name, c->by_name[j]->name) >= 0)
            return dsv4_fail(e, "%s: the checkpoint's tensor table is not sorted by name at '%s' (internal error)",
                             c->dir ? c->dir : "checkpoint", c->by_name[j]->name);
    size_t cap[4] = {0, 0, 0, 0}, i = 0, j = 0;
    int oom = 0;
    while ((i < inv->n || j < c->n) && !oom) {
        const dsv4_inv_tensor *w = i < inv->n ? &inv->t[inv->by_name[i]] : NULL;
        const dsv4_tensor *g = j < c->n ? c->by_name[j] : NULL;
        int r = !w ? 1 : !g ? -1 : strcmp(w->name, g->name);
        if (r < 0) {
            oom = push(&d->missing, &cap[0], w, NULL);
            i++;
        } else if (r > 0) {
            oom = push(&d->unexpected, &cap[1], NULL, g);
            j++;
        } else {
            int bad_dt = w->dtype != g->dtype, bad_sh = !same_shape(w, g);
            if (bad_dt)
                oom |= push(&d->wrong_dtype, &cap[2], w, g);
            if (bad_sh)
                oom |= push(&d->wrong_shape, &cap[3], w, g);
            d->n_matched += !bad_dt && !bad_sh;
            i++;
            j++;
        }
    }
    if (oom) {
        dsv4_inv_diff_free(d);
        return dsv4_fail_rt(e, "out of memory comparing the inventory with %s", c->dir ? c->dir : "the checkpoint");
    }
    return 0;
}

void dsv4_inv_diff_free(dsv4_inv_diff *d)
{
    free(d->missing.v);
    free(d->unexpected.v);
    free(d->wrong_dtype.v);
    free(d->wrong_shape.v);
    memset(d, 0, sizeof *d);
}

int dsv4_inv_diff_clean(const dsv4_inv_diff *d)
{
    return !d->missing.n && !d->unexpected.n && !d->wrong_dtype.n && !d->wrong_shape.n;
}

char *dsv4_inv_shape_str(const dsv4_inv_tensor *t, char *buf, size_t cap)
{
    return dsv4_dims_str(t->shape, t->ndim, buf, cap);
}

char *dsv4_diff_entry_str(const dsv4_diff_entry *x, char *buf, size_t cap)
{
    char ws[64], gs[256];
    if (x->want)
        dsv4_inv_shape_str(x->want, ws, sizeof ws);
    if (x->got)
        dsv4_shape_str(x->got, gs, sizeof gs);
    if (!x->got)
        snprintf(buf, cap, "%s: missing (expected %s %s)", x->want->name, dsv4_dtype_name(x->want->dtype), ws);
    else if (!x->want)
        snprintf(buf, cap, "%s: unexpected (%s %s)", x->got->name, dsv4_dtype_name(x->got->dtype), gs);
    else
        snprintf(buf, cap, "%s: expected %s %s, found %s %s", x->want->name, dsv4_dtype_name(x->want->dtype), ws,
                 dsv4_dtype_name(x->got->dtype), gs);
    return buf;
}
