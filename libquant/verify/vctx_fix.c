/* The fix-op helpers rules call (vctx.h): each fills a dsv4_fix_op tagged with the running rule. */
#include <stdlib.h>
#include <string.h>

#include "verify/vctx.h"

int dsv4_vctx_fix(dsv4_vctx *v, const dsv4_fix_op *op)
{
    dsv4_fix_op o = *op;
    o.rule = v->cur ? v->cur->rule->id : "?";
    return dsv4_fix_list_add(&v->fixes, &o);
}

int dsv4_vctx_fix_rename(dsv4_vctx *v, const char *old_name, const char *new_name, const char *why)
{
    dsv4_fix_op o = {.kind = DSV4_FIX_RENAME, .name = (char *)old_name, .new_name = (char *)new_name,
                     .why = (char *)why};
    return dsv4_vctx_fix(v, &o);
}

int dsv4_vctx_fix_drop(dsv4_vctx *v, const char *name, const char *why)
{
    dsv4_fix_op o = {.kind = DSV4_FIX_DROP, .name = (char *)name, .why = (char *)why};
    return dsv4_vctx_fix(v, &o);
}

int dsv4_vctx_fix_reshape(dsv4_vctx *v, const char *name, dsv4_dtype dtype, int ndim, const int64_t *shape,
                          const char *why)
{
    dsv4_fix_op o = {.kind = DSV4_FIX_RESHAPE, .name = (char *)name, .dtype = dtype, .ndim = ndim,
                     .why = (char *)why};
    for (int i = 0; i < ndim && i < DSV4_MAX_DIMS; i++)
        o.shape[i] = shape[i];
    return dsv4_vctx_fix(v, &o);
}

int dsv4_vctx_fix_put(dsv4_vctx *v, const char *name, dsv4_dtype dtype, int ndim, const int64_t *shape,
                      dsv4_produce how, const dsv4_tensor *from, const dsv4_tensor *from_scale,
                      const char *near, const char *why)
{
    dsv4_fix_op o = {.kind = DSV4_FIX_PUT, .name = (char *)name, .dtype = dtype, .ndim = ndim,
                     .produce = how, .from = from, .from_scale = from_scale, .near = (char *)near,
                     .why = (char *)why};
    for (int i = 0; i < ndim && i < DSV4_MAX_DIMS; i++)
        o.shape[i] = shape[i];
    return dsv4_vctx_fix(v, &o);
}

int dsv4_vctx_fix_config(dsv4_vctx *v, const char *dotted, json_t *value, const char *why)
{
    char *keys[16];
    size_t depth = 0;
    char *copy = strdup(dotted);
    if (!copy) {
        json_decref(value);
        return -1;
    }
    for (char *p = copy, *save = NULL, *k; depth < 16 && (k = strtok_r(p, ".", &save)); p = NULL)
        keys[depth++] = k;
    dsv4_fix_op o = {.kind = DSV4_FIX_CONFIG, .path = keys, .depth = depth, .value = value,
                     .why = (char *)why};
    int rc = dsv4_vctx_fix(v, &o);
    free(copy);
    return rc;
}

int dsv4_vctx_fix_index(dsv4_vctx *v, const char *why)
{
    for (size_t i = 0; i < v->fixes.n; i++)
        if (v->fixes.v[i].kind == DSV4_FIX_INDEX)
            return 0;
    dsv4_fix_op o = {.kind = DSV4_FIX_INDEX, .why = (char *)why};
    return dsv4_vctx_fix(v, &o);
}
