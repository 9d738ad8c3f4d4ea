/* Shared by the rule tests (see test_rulesa_util.h). */
#include "test_rulesa_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact/convert.h"
#include "formats/fp.h"
#include "harness.h"
#include "io/st_plan.h"
#include "io/st_write.h"
#include "quant/pack.h"
#include "recipe/recipe.h"

const char *ra_source(void)
{
    return th_path("fixtures/dsv4-tiny");
}

static int convert(const char *recipe_path, const char *out)
{
    dsv4_err e;
    dsv4_ckpt src;
    dsv4_config cfg;
    dsv4_recipe r;
    dsv4_plan p;
    json_error_t je;
    if (dsv4_ckpt_open(ra_source(), 0, &src, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        return -1;
    }
    json_t *raw = json_load_file(th_path("fixtures/dsv4-tiny/config.json"), 0, &je);
    int ok = raw && dsv4_config_load(th_path("fixtures/dsv4-tiny/config.json"), &cfg, &e) == 0 &&
             dsv4_recipe_load(recipe_path, &r, &e) == 0;
    if (ok) {
        ok = dsv4_plan_build(&src, &cfg, raw, &r, &p, &e) == 0;
        if (ok) {
            dsv4_convert_opts o = {.threads = 2};
            dsv4_convert_stats st;
            ok = dsv4_convert_run(&src, &p, &r, out, &o, &st, &e) == 0;
            if (ok)
                dsv4_convert_stats_free(&st);
            dsv4_plan_free(&p);
        }
        dsv4_recipe_free(&r);
    }
    if (!ok)
        th_fail(__FILE__, __LINE__, "converting with %s: %s", recipe_path, raw ? e.msg : "fixture config unreadable");
    json_decref(raw);
    dsv4_ckpt_close(&src);
    return ok ? 0 : -1;
}

const char *ra_clean(const char *recipe)
{
    static struct {
        char recipe[512];
        char dir[4096];
    } cache[16];
    static int n;
    for (int i = 0; i < n; i++)
        if (!strcmp(cache[i].recipe, recipe))
            return cache[i].dir;
    if (n == 16 || strlen(recipe) >= sizeof cache[0].recipe)
        return NULL;
    const char *tmp = th_tmpdir();
    char path[4096];
    if (strchr(recipe, '\n')) {
        snprintf(path, sizeof path, "%s/recipe.yaml", tmp);
        FILE *f = fopen(path, "w");
        if (!f || fputs(recipe, f) < 0) {
            th_fail(__FILE__, __LINE__, "cannot write %s", path);
            if (f)
                fclose(f);
            return NULL;
        }
        fclose(f);
    } else {
        snprintf(path, sizeof path, "%s", th_path(recipe));
    }
    snprintf(cache[n].dir, sizeof cache[n].dir, "%s/artifact", tmp);
    if (convert(path, cache[n].dir))
        return NULL;
    snprintf(cache[n].recipe, sizeof cache[n].recipe, "%s", recipe);
    return cache[n++].dir;
}

int ra_load(const char *dir, ra_art *a)
{
    memset(a, 0, sizeof *a);
    dsv4_ckpt ck;
    dsv4_err e;
    char cfg[4200];
    json_error_t je;
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    if (dsv4_ckpt_open(dir, 0, &ck, &e) || !(a->config = json_load_file(cfg, 0, &je))) {
        th_fail(__FILE__, __LINE__, "%s: %s", dir, a->config ? e.msg : je.text);
        return -1;
    }
    for (size_t i = 0; i < ck.n; i++) {
        const dsv4_tensor *t = ck.by_name[i];
        ra_put(a, t->name, t->dtype, t->ndim, t->shape, t->data);
    }
    dsv4_ckpt_close(&ck);
    return 0;
}

void ra_free(ra_art *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->t[i].data);
    free(a->t);
    json_decref(a->config);
    memset(a, 0, sizeof *a);
}

ra_tensor *ra_find(ra_art *a, const char *name)
{
    for (size_t i = 0; i < a->n; i++)
        if (!strcmp(a->t[i].name, name))
            return &a->t[i];
    return NULL;
}

int ra_drop(ra_art *a, const char *name)
{
    ra_tensor *t = ra_find(a, name);
    if (!t)
        return 0;
    free(t->data);
    *t = a->t[--a->n];
    return 1;
}

size_t ra_drop_prefix(ra_art *a, const char *prefix)
{
    size_t k = 0;
    for (size_t i = 0; i < a->n;)
        if (!strncmp(a->t[i].name, prefix, strlen(prefix))) {
            free(a->t[i].data);
            a->t[i] = a->t[--a->n];
            k++;
        } else {
            i++;
        }
    return k;
}

ra_tensor *ra_put(ra_art *a, const char *name, dsv4_dtype dt, int ndim, const int64_t *shape, const void *data)
{
    ra_tensor *t = ra_find(a, name);
    if (!t) {
        if (a->n == a->cap) {
            a->cap = a->cap ? 2 * a->cap : 1024;
            a->t = realloc(a->t, a->cap * sizeof *a->t);
        }
        t = &a->t[a->n++];
        memset(t, 0, sizeof *t);
        snprintf(t->name, sizeof t->name, "%s", name);
    }
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= (uint64_t)shape[i];
    uint64_t nb = (uint64_t)dsv4_dtype_nbytes(dt, numel);
    uint8_t *d = calloc(1, nb + 1);
    if (data)
        memcpy(d, data, nb);
    free(t->data);
    t->data = d;
    t->nbytes = nb;
    t->dtype = dt;
    t->ndim = ndim;
    memcpy(t->shape, shape, sizeof t->shape[0] * (size_t)ndim);
    return t;
}

int ra_cast(ra_art *a, const char *name, dsv4_dtype dt)
{
    ra_tensor *t = ra_find(a, name);
    if (!t)
        return -1;
    uint64_t n = t->nbytes * 8 / (uint64_t)dsv4_dtype_bits(t->dtype);
    float *f = malloc(n * sizeof *f + 4);
    uint8_t *d = malloc(n * 4 + 4);
    dsv4_decode_row(t->dtype, t->data, f, n);
    dsv4_encode_row(dt, f, d, n, DSV4_FP_CAST);
    ra_tensor copy = *t;
    t->data = NULL;
    ra_put(a, copy.name, dt, copy.ndim, copy.shape, d);
    free(copy.data);
    free(f);
    free(d);
    return 0;
}

static ra_tensor *bf16_weight(ra_art *a, const char *module, char *name, size_t cap)
{
    snprintf(name, cap, "%s.weight", module);
    ra_tensor *t = ra_find(a, name);
    if (!t || t->dtype != DSV4_BF16 || t->ndim != 2)
        th_fail(__FILE__, __LINE__, "%s: no BF16 2-D weight to quantize", name);
    return t && t->dtype == DSV4_BF16 && t->ndim == 2 ? t : NULL;
}

int ra_quant_int4(ra_art *a, const char *module)
{
    char name[300];
    ra_tensor *t = bf16_weight(a, module, name, sizeof name);
    if (!t)
        return -1;
    int64_t r = t->shape[0], c = t->shape[1], ps[2] = {r, c / 8}, ss[2] = {r, c / 128}, shp[1] = {2}, rc[2] = {r, c};
    int32_t *packed = malloc((size_t)(r * c / 8) * 4 + 4);
    uint16_t *scale = malloc((size_t)(r * c / 128) * 2 + 2);
    dsv4_err e;
    int rcode = dsv4_int4_rtn((const uint16_t *)t->data, r, c, 128, packed, scale, &e);
    if (rcode == 0) {
        ra_drop(a, name);
        snprintf(name, sizeof name, "%s.weight_packed", module);
        ra_put(a, name, DSV4_I32, 2, ps, packed);
        snprintf(name, sizeof name, "%s.weight_scale", module);
        ra_put(a, name, DSV4_BF16, 2, ss, scale);
        snprintf(name, sizeof name, "%s.weight_shape", module);
        ra_put(a, name, DSV4_I64, 1, shp, rc);
    } else {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
    }
    free(packed);
    free(scale);
    return rcode;
}

int ra_quant_fp8(ra_art *a, const char *module, const char *scale_suffix, dsv4_dtype scale_dtype)
{
    char name[300];
    ra_tensor *t = bf16_weight(a, module, name, sizeof name);
    if (!t)
        return -1;
    int64_t r = t->shape[0], c = t->shape[1], ss[2] = {(r + 127) / 128, (c + 127) / 128}, ws[2] = {r, c};
    size_t ns = (size_t)(ss[0] * ss[1]);
    uint8_t *q = malloc((size_t)(r * c) + 1);
    uint16_t *scale = malloc(ns * 2 + 2);
    float *f = malloc(ns * 4 + 4);
    uint8_t *enc = malloc(ns * 4 + 4);
    dsv4_err e;
    int rcode = dsv4_fp8_block_rtn((const uint16_t *)t->data, r, c, q, scale, &e);
    if (rcode == 0) {
        dsv4_decode_row(DSV4_BF16, scale, f, ns);
        if (scale_dtype == DSV4_F8_E8M0)
            for (size_t i = 0; i < ns; i++)
                enc[i] = dsv4_f32_to_e8m0(f[i]);
        else
            dsv4_encode_row(scale_dtype, f, enc, ns, DSV4_FP_CAST);
        ra_put(a, name, DSV4_F8_E4M3, 2, ws, q);
        snprintf(name, sizeof name, "%s%s", module, scale_suffix);
        ra_put(a, name, scale_dtype, 2, ss, enc);
    } else {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
    }
    free(q);
    free(scale);
    free(f);
    free(enc);
    return rcode;
}

const char *ra_write(const ra_art *a)
{
    return ra_write_sharded(a, 0);
}

const char *ra_write_sharded(const ra_art *a, uint64_t max_shard_bytes)
{
    static char out[8][4096];
    static int slot;
    char *dir = out[slot++ % 8];
    snprintf(dir, sizeof out[0], "%s/damaged", th_tmpdir());
    dsv4_st_plan p;
    dsv4_err e;
    dsv4_st_plan_init(&p, max_shard_bytes, DSV4_ST_ALWAYS_INDEX);
    const void **data = calloc(a->n + 1, sizeof *data);
    int ok = 1;
    for (size_t i = 0; ok && i < a->n; i++) {
        ok = dsv4_st_plan_add(&p, a->t[i].name, a->t[i].dtype, a->t[i].ndim, a->t[i].shape, &e) == 0;
        data[i] = a->t[i].data;
    }
    ok = ok && dsv4_st_plan_finish(&p, &e) == 0 && dsv4_st_write_all(&p, dir, data, &e) == 0;
    free(data);
    dsv4_st_plan_free(&p);
    char cfg[4200];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    if (ok && json_dump_file(a->config, cfg, JSON_INDENT(2))) {
        ok = 0;
        snprintf(e.msg, sizeof e.msg, "cannot write %.2000s", cfg);
    }
    if (!ok) {
        th_fail(__FILE__, __LINE__, "writing %s: %s", dir, e.msg);
        return NULL;
    }
    return dir;
}

const char *ra_edited(const char *recipe, void (*fn)(ra_art *))
{
    ra_art a;
    const char *clean = ra_clean(recipe);
    if (!clean || ra_load(clean, &a))
        return NULL;
    fn(&a);
    const char *out = ra_write(&a);
    ra_free(&a);
    return out;
}

int ra_verify(dsv4_vctx *v, const char *art, const char *src, const char *rules)
{
    dsv4_err e;
    if (!art || dsv4_vctx_open(v, art, src, &e)) {
        th_fail(__FILE__, __LINE__, "opening %s: %s", art ? art : "(no artifact)", art ? e.msg : "");
        memset(v, 0, sizeof *v);
        return -1;
    }
    if (dsv4_vctx_run(v, rules, &e)) {
        th_fail(__FILE__, __LINE__, "running %s: %s", rules, e.msg);
        return -1;
    }
    return 0;
}

const dsv4_rule_result *ra_result(const dsv4_vctx *v, const char *id)
{
    for (size_t i = 0; i < v->n_results; i++)
        if (!strcmp(v->results[i].rule->id, id))
            return &v->results[i];
    return NULL;
}

int ra_status_is(const dsv4_vctx *v, const char *id, int status)
{
    static const char *const names[] = {"pass", "fail", "skip"};
    const dsv4_rule_result *r = ra_result(v, id);
    if (r && r->status == status)
        return 1;
    printf("  %s: status %s, expected %s%s%s\n", id, r ? names[r->status] : "(not run)", names[status],
           r && r->skip_reason[0] ? "; skip reason: " : "", r ? r->skip_reason : "");
    for (size_t k = 0; r && k < r->n_kept; k++)
        printf("    %s\n", r->evidence[k]);
    return 0;
}

int ra_evidence(const dsv4_vctx *v, const char *id, ...)
{
    const dsv4_rule_result *r = ra_result(v, id);
    for (size_t k = 0; r && k < r->n_kept; k++) {
        va_list ap;
        va_start(ap, id);
        int all = 1;
        for (const char *s; all && (s = va_arg(ap, const char *));)
            all = strstr(r->evidence[k], s) != NULL;
        va_end(ap);
        if (all)
            return 1;
    }
    printf("  %s: no evidence line with every string of", id);
    va_list ap;
    va_start(ap, id);
    for (const char *s; (s = va_arg(ap, const char *));)
        printf(" \"%s\"", s);
    va_end(ap);
    printf("; the lines are:\n");
    for (size_t k = 0; r && k < r->n_kept; k++)
        printf("    %s\n", r->evidence[k]);
    return 0;
}

const dsv4_fix_op *ra_op(const dsv4_vctx *v, dsv4_fix_kind kind, const char *name, const char *id)
{
    for (size_t i = 0; i < v->fixes.n; i++) {
        const dsv4_fix_op *o = &v->fixes.v[i];
        if (o->kind == kind && o->name && !strcmp(o->name, name) && (!id || !strcmp(o->rule, id)))
            return o;
    }
    return NULL;
}

int ra_no_duplicate_ops(const dsv4_vctx *v)
{
    for (size_t i = 0; i < v->fixes.n; i++)
        for (size_t k = i + 1; k < v->fixes.n; k++) {
            const dsv4_fix_op *a = &v->fixes.v[i], *b = &v->fixes.v[k];
            if (a->kind == b->kind && a->name && b->name && !strcmp(a->name, b->name)) {
                printf("  ops %zu (%s) and %zu (%s) both %s %s\n", i, a->rule, k, b->rule, dsv4_fix_kind_name(a->kind),
                       a->name);
                return 0;
            }
        }
    return 1;
}

size_t ra_n_ops(const dsv4_vctx *v, const char *id)
{
    size_t n = 0;
    for (size_t i = 0; i < v->fixes.n; i++)
        n += !strcmp(v->fixes.v[i].rule, id);
    return n;
}
