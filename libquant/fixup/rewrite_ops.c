/* The fix ops applied, in list order, to the rewriter's table of tensors (rewrite_internal.h):
 * each op is checked against the state the ops before it left (names present or free, byte counts,
 * contradictions with earlier ops on the same tensor or key) and refused with code 2 before
 * anything is written. Identical repeats of an op are accepted once. Also the name table the
 * planner keeps (open addressing, names move with renames). */
#include "fixup/rewrite_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixup/produce.h"

static size_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)(h ^ (h >> 29));
}

/* Slot holding `name`, or the first free slot for it when absent (*found = 0). */
static size_t probe(const rw_state *s, const char *name, int *found)
{
    size_t m = s->hcap - 1, i = hash_name(name) & m, free_at = SIZE_MAX;
    for (;; i = (i + 1) & m) {
        long v = s->slot[i];
        if (v == -1) {
            *found = 0;
            return free_at != SIZE_MAX ? free_at : i;
        }
        if (v == -2) {
            if (free_at == SIZE_MAX)
                free_at = i;
        } else if (!strcmp(s->t[v].name, name)) {
            *found = 1;
            return i;
        }
    }
}

long rw_find(const rw_state *s, const char *name)
{
    int found;
    size_t i = probe(s, name, &found);
    return found ? s->slot[i] : -1;
}

void rw_table_put(rw_state *s, long idx)
{
    int found;
    s->slot[probe(s, s->t[idx].name, &found)] = idx;
}

static void table_del(rw_state *s, const char *name)
{
    int found;
    size_t i = probe(s, name, &found);
    if (found)
        s->slot[i] = -2;
}

const char *rw_rule_of(const dsv4_fix_op *op) { return op->rule ? op->rule : "?"; }

static int same_decl(const dsv4_fix_op *a, const dsv4_fix_op *b)
{
    return a->dtype == b->dtype && a->ndim == b->ndim && !memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim);
}

static int op_rename(rw_state *s, const dsv4_fix_op *op, dsv4_rewrite_stats *st, dsv4_err *e)
{
    if (!op->name || !op->new_name || !*op->new_name)
        return dsv4_fail(e, "rename [%s]: needs an old and a non-empty new name", rw_rule_of(op));
    long i = rw_find(s, op->name);
    if (i < 0)
        return dsv4_fail(e, "rename '%s' -> '%s' [%s]: no tensor is named '%s' (after the ops before it)", op->name,
                         op->new_name, rw_rule_of(op), op->name);
    if (!strcmp(op->name, op->new_name))
        return 0;
    if (rw_find(s, op->new_name) >= 0)
        return dsv4_fail(e, "rename '%s' -> '%s' [%s]: a tensor named '%s' exists already", op->name, op->new_name,
                         rw_rule_of(op), op->new_name);
    char *nn = strdup(op->new_name);
    if (!nn)
        return dsv4_fail_rt(e, "out of memory");
    table_del(s, op->name);
    free(s->t[i].name);
    s->t[i].name = nn;
    s->t[i].renamed = 1;
    rw_table_put(s, i);
    st->renamed++;
    return 0;
}

static int op_reshape(rw_state *s, const dsv4_fix_op *op, dsv4_rewrite_stats *st, dsv4_err *e)
{
    long i = op->name ? rw_find(s, op->name) : -1;
    if (i < 0)
        return dsv4_fail(e, "reshape '%s' [%s]: no such tensor (after the ops before it)", op->name ? op->name : "",
                         rw_rule_of(op));
    rw_tensor *t = &s->t[i];
    if (t->put)
        return dsv4_fail(e, "reshape '%s' [%s]: contradicts the put of the same tensor [%s], which declares its "
                         "dtype and shape", op->name, rw_rule_of(op), rw_rule_of(t->put));
    if (t->reshape) {
        if (same_decl(t->reshape, op))
            return 0; /* the same reshape asked twice */
        return dsv4_fail(e, "reshape '%s' [%s]: contradicts an earlier reshape of it [%s]", op->name, rw_rule_of(op),
                         rw_rule_of(t->reshape));
    }
    int64_t nb = op->ndim >= 0 && op->ndim <= DSV4_MAX_DIMS ? dsv4_fix_op_nbytes(op) : -1;
    if (nb < 0 || (uint64_t)nb != t->nbytes) {
        char a[160], b[160];
        return dsv4_fail(e, "reshape '%s' [%s]: %s %s is %lld bytes, the tensor (%s %s) holds %llu", op->name,
                         rw_rule_of(op), dsv4_dtype_name(op->dtype),
                         dsv4_dims_str(op->shape, op->ndim < 0 ? 0 : op->ndim, a, sizeof a), (long long)nb,
                         dsv4_dtype_name(t->dtype), dsv4_dims_str(t->shape, t->ndim, b, sizeof b),
                         (unsigned long long)t->nbytes);
    }
    t->reshape = op;
    t->dtype = op->dtype;
    t->ndim = op->ndim;
    memcpy(t->shape, op->shape, sizeof t->shape);
    st->reshaped++;
    return 0;
}

static int same_put(const dsv4_fix_op *a, const dsv4_fix_op *b)
{
    return a->produce == b->produce && a->from == b->from && a->from_scale == b->from_scale && same_decl(a, b);
}

static int op_put(rw_state *s, const dsv4_fix_op *op, dsv4_rewrite_stats *st, dsv4_err *e)
{
    if (!op->name || !*op->name)
        return dsv4_fail(e, "put [%s]: needs a tensor name", rw_rule_of(op));
    long i = rw_find(s, op->name);
    if (i >= 0 && s->t[i].put) {
        if (same_put(s->t[i].put, op))
            return 0;
        return dsv4_fail(e, "put '%s' [%s]: contradicts an earlier put of the same tensor [%s]", op->name,
                         rw_rule_of(op), rw_rule_of(s->t[i].put));
    }
    if (i >= 0 && s->t[i].reshape)
        return dsv4_fail(e, "put '%s' [%s]: contradicts the reshape of the same tensor [%s], whose bytes it "
                         "replaces", op->name, rw_rule_of(op), rw_rule_of(s->t[i].reshape));
    if (dsv4_fix_produce_check(op, e))
        return -1;
    if (i < 0) {
        if (s->n == s->cap)
            return dsv4_fail_rt(e, "internal: tensor table full");
        i = (long)s->n++;
        memset(&s->t[i], 0, sizeof s->t[i]);
        if (!(s->t[i].name = strdup(op->name)))
            return dsv4_fail_rt(e, "out of memory");
        s->t[i].shard = -1;
        s->t[i].near = op->near;
        rw_table_put(s, i);
    }
    rw_tensor *t = &s->t[i];
    t->put = op;
    t->orig = NULL;
    t->dtype = op->dtype;
    t->ndim = op->ndim;
    memcpy(t->shape, op->shape, sizeof t->shape);
    t->nbytes = (uint64_t)dsv4_fix_op_nbytes(op);
    st->put++;
    return 0;
}

static int op_drop(rw_state *s, const dsv4_fix_op *op, dsv4_rewrite_stats *st, dsv4_err *e)
{
    long i = op->name ? rw_find(s, op->name) : -1;
    if (i < 0)
        return dsv4_fail(e, "drop '%s' [%s]: no such tensor (after the ops before it)", op->name ? op->name : "",
                         rw_rule_of(op));
    if (s->t[i].put)
        return dsv4_fail(e, "drop '%s' [%s]: contradicts the put of the same tensor [%s]", op->name, rw_rule_of(op),
                         rw_rule_of(s->t[i].put));
    table_del(s, op->name);
    s->t[i].dropped = 1;
    if (s->t[i].shard >= 0)
        s->sh[s->t[i].shard].touched = 1;
    st->dropped++;
    return 0;
}

/* Sets or deletes config[path...]; intermediate objects are created for a set. */
static int op_config(rw_state *s, const dsv4_fix_op *op, const dsv4_fix_list *ops, size_t at,
                     dsv4_rewrite_stats *st, dsv4_err *e)
{
    char dotted[1024] = "";
    for (size_t k = 0, off = 0; k < op->depth && off < sizeof dotted; k++)
        off += (size_t)snprintf(dotted + off, sizeof dotted - off, "%s%s", k ? "." : "", op->path[k]);
    if (!s->config)
        return dsv4_fail(e, "config %s [%s]: the artifact has no readable config.json to change", dotted, rw_rule_of(op));
    if (!op->depth)
        return dsv4_fail(e, "config [%s]: empty key path", rw_rule_of(op));
    for (size_t j = 0; j < at; j++) { /* an earlier op on the same key */
        const dsv4_fix_op *p = &ops->v[j];
        if (p->kind != DSV4_FIX_CONFIG || p->depth != op->depth)
            continue;
        size_t k = 0;
        while (k < op->depth && !strcmp(p->path[k], op->path[k]))
            k++;
        if (k < op->depth)
            continue;
        if ((!p->value && !op->value) || (p->value && op->value && json_equal(p->value, op->value)))
            return 0;
        return dsv4_fail(e, "config %s [%s]: contradicts an earlier change of the same key [%s]", dotted,
                         rw_rule_of(op), rw_rule_of(p));
    }
    json_t *o = s->config;
    for (size_t k = 0; k + 1 < op->depth; k++) {
        json_t *c = json_object_get(o, op->path[k]);
        if (!c) {
            if (!op->value)
                goto done; /* deleting a key under an absent object: nothing to do */
            c = json_object();
            if (!c || json_object_set_new(o, op->path[k], c))
                return dsv4_fail_rt(e, "out of memory");
        } else if (!json_is_object(c)) {
            return dsv4_fail(e, "config %s [%s]: config.json's '%s' is not an object", dotted, rw_rule_of(op),
                             op->path[k]);
        }
        o = c;
    }
    if (op->value ? json_object_set(o, op->path[op->depth - 1], op->value) : 0)
        return dsv4_fail_rt(e, "out of memory");
    if (!op->value)
        json_object_del(o, op->path[op->depth - 1]);
done:
    st->config_ops++;
    return 0;
}

static int note_rule(rw_state *s, const char *rule, dsv4_err *e)
{
    size_t k;
    json_t *v;
    json_array_foreach(s->rules, k, v)
        if (!strcmp(json_string_value(v), rule))
            return 0;
    return json_array_append_new(s->rules, json_string(rule)) ? dsv4_fail_rt(e, "out of memory") : 0;
}

int rw_apply_op(rw_state *s, const dsv4_fix_list *ops, size_t k, dsv4_rewrite_stats *st, dsv4_err *e)
{
    const dsv4_fix_op *op = &ops->v[k];
    int rc;
    switch (op->kind) {
    case DSV4_FIX_RENAME: rc = op_rename(s, op, st, e); break;
    case DSV4_FIX_RESHAPE: rc = op_reshape(s, op, st, e); break;
    case DSV4_FIX_PUT: rc = op_put(s, op, st, e); break;
    case DSV4_FIX_DROP: rc = op_drop(s, op, st, e); break;
    case DSV4_FIX_CONFIG: rc = op_config(s, op, ops, k, st, e); break;
    case DSV4_FIX_INDEX: s->index_op = 1, rc = 0; break; /* rebuilt on every write anyway */
    default: rc = dsv4_fail(e, "fix op #%zu [%s]: unknown kind %d", k, rw_rule_of(op), (int)op->kind);
    }
    return rc || note_rule(s, rw_rule_of(op), e) ? -1 : 0;
}
