/* Helpers of the rule tests (test_rules_util.h). */
#include "test_rules_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/st_plan.h"
#include "io/st_write.h"

static const char *bin(void)
{
    const char *b = getenv("BUILD");
    return b ? b : "build";
}

const char *tr_clean(const char *recipe)
{
    static char paths[8][600];
    static char made[8][32];
    for (int i = 0; i < 8; i++)
        if (made[i][0] && !strcmp(made[i], recipe))
            return paths[i];
    for (int i = 0; i < 8; i++)
        if (!made[i][0]) {
            snprintf(paths[i], sizeof paths[i], "%s/clean-%s", th_tmpdir(), recipe);
            char cmd[2048];
            snprintf(cmd, sizeof cmd, "%s/bin/dsv4-quant --quiet --recipe %s/%s.yaml %s %s >/dev/null", bin(),
                     th_path("recipes"), !strcmp(recipe, "w4a16") ? "w4a16-rtn" : !strcmp(recipe, "w4a8") ? "w4a8-rtn" : recipe, /* data-free */
                     th_path("fixtures/dsv4-tiny"), paths[i]);
            if (system(cmd) != 0)
                return NULL;
            snprintf(made[i], sizeof made[i], "%s", recipe);
            return paths[i];
        }
    return NULL;
}

const char *tr_out(const char *tag)
{
    static char buf[8][600];
    static int slot;
    char *b = buf[slot++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", th_tmpdir(), tag);
    return b;
}

/* Copies every file of src except the shards, the index and (when skip_config) config.json. */
static int copy_files(const char *src, const char *dst, int skip_config)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s' && cd '%s' && for f in *; do case \"$f\" in *.safetensors|*.index.json) ;; "
             "config.json) [ %d = 1 ] || cp \"$f\" '%s/' ;; *) cp \"$f\" '%s/' ;; esac; done",
             dst, src, skip_config, dst, dst);
    return system(cmd) == 0 ? 0 : -1;
}

int tr_copy_config(const char *src, const char *dst, tr_config_fn edit, void *ctx)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", src, dst);
    if (system(cmd) != 0)
        return -1;
    return tr_edit_config(dst, edit, ctx);
}

int tr_edit_config(const char *dir, tr_config_fn edit, void *ctx)
{
    char path[700];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_error_t je;
    json_t *cfg = json_load_file(path, 0, &je);
    if (!cfg)
        return -1;
    if (edit)
        edit(cfg, ctx);
    int rc = json_dump_file(cfg, path, JSON_INDENT(2));
    json_decref(cfg);
    return rc;
}

int tr_rewrite(const char *src, const char *dst, tr_tensor_fn edit, void *ctx)
{
    return tr_rewrite_add(src, dst, edit, ctx, NULL, NULL);
}

int tr_rewrite_add(const char *src, const char *dst, tr_tensor_fn edit, void *ctx, const char *add_from,
                   const char *add_prefix)
{
    dsv4_ckpt c, a = {0};
    dsv4_err e;
    if (dsv4_ckpt_open(src, 0, &c, &e) || (add_from && dsv4_ckpt_open(add_from, 0, &a, &e))) {
        fprintf(stderr, "tr_rewrite: %s\n", e.msg);
        return -1;
    }
    dsv4_st_plan p;
    dsv4_st_plan_init(&p, 0, DSV4_ST_ALWAYS_INDEX);
    tr_tensor *ts = calloc(c.n ? c.n : 1, sizeof *ts);
    const void **data = calloc(c.n + a.n + 1, sizeof *data);
    size_t k = 0;
    int rc = !ts || !data ? -1 : 0;
    for (size_t i = 0; i < a.n && !rc; i++) {
        const dsv4_tensor *t = a.by_name[i];
        if (strncmp(t->name, add_prefix, strlen(add_prefix)))
            continue;
        rc = dsv4_st_plan_add(&p, t->name, t->dtype, t->ndim, t->shape, &e);
        data[k++] = t->data;
    }
    for (size_t i = 0; i < c.n && !rc; i++) {
        const dsv4_tensor *t = c.by_name[i];
        tr_tensor *x = &ts[i];
        snprintf(x->name, sizeof x->name, "%s", t->name);
        x->dtype = t->dtype;
        x->ndim = t->ndim;
        memcpy(x->shape, t->shape, sizeof x->shape);
        x->data = t->data;
        x->nbytes = dsv4_tensor_nbytes(t);
        if (edit && !edit(x, ctx))
            continue;
        rc = dsv4_st_plan_add(&p, x->name, x->dtype, x->ndim, x->shape, &e);
        data[k++] = x->data; /* the plan keeps declaration order */
    }
    if (!rc)
        rc = dsv4_st_plan_finish(&p, &e);
    if (!rc)
        rc = dsv4_st_write_all(&p, dst, data, &e);
    if (rc)
        fprintf(stderr, "tr_rewrite: %s\n", e.msg);
    if (!rc)
        rc = copy_files(src, dst, 0);
    free(ts);
    free(data);
    dsv4_st_plan_free(&p);
    dsv4_ckpt_close(&c);
    if (add_from)
        dsv4_ckpt_close(&a);
    return rc;
}

int tr_run(dsv4_vctx *v, const char *art, const char *src, const char *ids)
{
    dsv4_err e;
    if (dsv4_vctx_open(v, art, src, &e)) {
        fprintf(stderr, "tr_run: %s\n", e.msg);
        return -1;
    }
    if (dsv4_vctx_run(v, ids, &e)) {
        fprintf(stderr, "tr_run: %s\n", e.msg);
        dsv4_vctx_close(v);
        return -1;
    }
    return 0;
}

const dsv4_rule_result *tr_result(const dsv4_vctx *v, const char *id)
{
    for (size_t i = 0; i < v->n_results; i++)
        if (!strcmp(v->results[i].rule->id, id))
            return &v->results[i];
    return NULL;
}

int tr_status(const dsv4_vctx *v, const char *id)
{
    const dsv4_rule_result *r = tr_result(v, id);
    return r ? r->status : -1;
}

int tr_says(const dsv4_vctx *v, const char *id, const char *needle)
{
    const dsv4_rule_result *r = tr_result(v, id);
    if (!r)
        return 0;
    for (size_t k = 0; k < r->n_kept; k++)
        if (strstr(r->evidence[k], needle))
            return 1;
    return strstr(r->skip_reason, needle) != NULL;
}

const dsv4_fix_op *tr_op(const dsv4_vctx *v, const char *id, size_t k)
{
    for (size_t i = 0; i < v->fixes.n; i++)
        if (!strcmp(v->fixes.v[i].rule, id) && k-- == 0)
            return &v->fixes.v[i];
    return NULL;
}

size_t tr_n_ops(const dsv4_vctx *v, const char *id)
{
    size_t n = 0;
    for (size_t i = 0; i < v->fixes.n; i++)
        n += !strcmp(v->fixes.v[i].rule, id);
    return n;
}

json_t *tr_apply_config(const json_t *cfg, const dsv4_fix_list *ops)
{
    json_t *out = json_deep_copy(cfg);
    for (size_t i = 0; out && i < ops->n; i++) {
        const dsv4_fix_op *o = &ops->v[i];
        if (o->kind != DSV4_FIX_CONFIG || !o->depth)
            continue;
        json_t *at = out;
        for (size_t d = 0; d + 1 < o->depth; d++) {
            json_t *next = json_object_get(at, o->path[d]);
            if (!json_is_object(next)) {
                next = json_object();
                json_object_set_new(at, o->path[d], next);
            }
            at = next;
        }
        if (o->value)
            json_object_set_new(at, o->path[o->depth - 1], json_deep_copy(o->value));
        else
            json_object_del(at, o->path[o->depth - 1]);
    }
    return out;
}

const char *tr_ids(const dsv4_rule *const *group)
{
    static char buf[1024];
    buf[0] = 0;
    for (size_t i = 0; group[i]; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? "," : "", group[i]->id);
    return buf;
}
