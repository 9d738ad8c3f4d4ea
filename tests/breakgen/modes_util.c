/* Helpers the breakage modes share (see modes.h): selecting tensors, FP8-block quantizing one
 * weight as llm-compressor does, and finding things in config.json. */
#include "modes.h"

#include <stdlib.h>
#include <string.h>

#include "quant/pack.h"

int bt_has_prefix(const char *s, const char *prefix)
{
    return !strncmp(s, prefix, strlen(prefix));
}

int bt_has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

void bt_names_free(bt_names *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->n = 0;
    l->v = NULL;
}

int bt_select(bt_art *a, int (*pred)(const bt_tensor *t, const void *ctx), const void *ctx, const char *what,
              bt_names *out, dsv4_err *e)
{
    out->n = 0;
    out->v = calloc(a->n ? a->n : 1, sizeof(char *));
    if (!out->v)
        return dsv4_fail_rt(e, "%s: out of memory", a->dir);
    for (size_t i = 0; i < a->n; i++) {
        if (!pred(&a->t[i], ctx))
            continue;
        if (!(out->v[out->n] = strdup(a->t[i].name))) {
            bt_names_free(out);
            return dsv4_fail_rt(e, "%s: out of memory", a->dir);
        }
        out->n++;
    }
    if (out->n == 0) {
        bt_names_free(out);
        return dsv4_fail(e, "%s: no tensor is %s: this mode needs an artifact that has some", a->dir, what);
    }
    return 0;
}

bt_tensor *bt_need(bt_art *a, const char *name, dsv4_dtype dtype, dsv4_err *e)
{
    bt_tensor *t = bt_find(a, name);
    if (!t)
        return dsv4_fail(e, "%s: tensor '%s' is missing: expected a clean dsv4-quant artifact", a->dir, name), NULL;
    if (t->dtype != dtype)
        return dsv4_fail(e, "%s: tensor '%s' is %s: expected %s", a->dir, name, dsv4_dtype_name(t->dtype),
                         dsv4_dtype_name(dtype)), NULL;
    return t;
}

int bt_fp8_block_quantize(bt_art *a, const char *weight, const char *scale_name, dsv4_err *e)
{
    bt_tensor *t = bt_find(a, weight);
    if (!t || t->ndim != 2)
        return dsv4_fail(e, "%s: '%s' is not a 2-D weight of the artifact", a->dir, weight);
    int64_t n = t->shape[0], k = t->shape[1];
    size_t numel;
    uint16_t *w = bt_bf16_of(t, &numel, e);
    if (!w)
        return -1;
    int64_t sr = (n + 127) / 128, sc = (k + 127) / 128;
    uint8_t *q = malloc((size_t)(n * k));
    uint16_t *s = malloc((size_t)(sr * sc) * 2);
    int rc = q && s ? dsv4_fp8_block_rtn(w, n, k, q, s, e) : dsv4_fail_rt(e, "%s: out of memory", weight);
    free(w);
    if (rc) {
        free(q);
        free(s);
        return -1;
    }
    int64_t shape[2] = {n, k}, sshape[2] = {sr, sc};
    if (bt_put(a, weight, DSV4_F8_E4M3, 2, shape, q, e)) {
        free(s);
        return -1;
    }
    return bt_put(a, scale_name, DSV4_BF16, 2, sshape, (uint8_t *)s, e);
}

json_t *bt_config_obj(bt_art *a, const char *dotted, dsv4_err *e)
{
    json_t *o = a->config;
    char key[256];
    const char *p = dotted;
    while (o && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof key)
            return dsv4_fail(e, "config key path '%s' is too long", dotted), NULL;
        memcpy(key, p, n);
        key[n] = 0;
        o = json_object_get(o, key);
        p = dot ? dot + 1 : p + n;
    }
    if (!json_is_object(o))
        return dsv4_fail(e, "%s/config.json: '%s' is missing or not an object: expected a clean dsv4-quant config",
                         a->dir, dotted), NULL;
    return o;
}

json_t *bt_ct_group(bt_art *a, const char *needle, dsv4_err *e)
{
    json_t *groups = bt_config_obj(a, "quantization_config.config_groups", e);
    if (!groups)
        return NULL;
    const char *gname;
    json_t *g;
    json_object_foreach(groups, gname, g) {
        json_t *targets = json_object_get(g, "targets");
        size_t i;
        json_t *t;
        json_array_foreach(targets, i, t) {
            if (json_is_string(t) && strstr(json_string_value(t), needle))
                return g;
        }
    }
    return dsv4_fail(e, "%s/config.json: no quantization_config group targets '%s': expected a clean "
                     "compressed-tensors config that quantizes them", a->dir, needle), NULL;
}
