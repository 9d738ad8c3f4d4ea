/* quantization_config JSON: one QuantizationScheme per quantizing recipe group, every
 * QuantizationArgs key explicit (formats_algorithms.md §2.5 examples), then a self-check of the
 * patterns against the vLLM names (see ct_config.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact/ct_config_internal.h"
#include "recipe/target.h"

/* QuantizationArgs with its keys in compressed-tensors' sorted order. NULL strings are JSON null;
 * group_size 0 is null; dynamic is "true", "false" or "local". */
typedef struct qa {
    int bits;
    const char *type, *strategy, *dynamic, *actorder, *observer, *scale_dtype;
    int group_size, block;
} qa;

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

static json_t *args(const qa *a)
{
    json_t *o = json_object();
    json_object_set_new(o, "actorder", str_or_null(a->actorder));
    json_object_set_new(o, "block_structure", a->block ? json_pack("[ii]", 128, 128) : json_null());
    json_object_set_new(o, "dynamic", !strcmp(a->dynamic, "local") ? json_string("local")
                                                                    : json_boolean(!strcmp(a->dynamic, "true")));
    json_object_set_new(o, "group_size", a->group_size ? json_integer(a->group_size) : json_null());
    json_object_set_new(o, "num_bits", json_integer(a->bits));
    json_object_set_new(o, "observer", str_or_null(a->observer));
    json_object_set_new(o, "observer_kwargs", json_object());
    json_object_set_new(o, "scale_dtype", str_or_null(a->scale_dtype));
    json_object_set_new(o, "strategy", json_string(a->strategy));
    json_object_set_new(o, "symmetric", json_true());
    json_object_set_new(o, "type", json_string(a->type));
    json_object_set_new(o, "zp_dtype", json_null());
    return o;
}

static const char *format_of(dsv4_scheme s)
{
    return s == DSV4_SCHEME_FP8_BLOCK ? "float-quantized"
           : s == DSV4_SCHEME_NVFP4   ? "nvfp4-pack-quantized"
                                      : "pack-quantized";
}

static json_t *scheme_json(const dsv4_recipe_group *g, json_t *targets)
{
    json_t *o = json_object(), *w = NULL, *in = json_null();
    const char *ao = g->actorder[0] ? g->actorder : NULL;
    switch (g->scheme) {
    case DSV4_SCHEME_FP8_BLOCK:
        w = args(&(qa){8, "float", "block", "false", NULL, g->observer, NULL, 0, 1});
        json_decref(in);
        /* The FP8_BLOCK preset: dynamic FP8 activations per token group of 128. */
        in = args(&(qa){8, "float", "group", "true", NULL, NULL, NULL, 128, 0});
        break;
    case DSV4_SCHEME_W4A16:
    case DSV4_SCHEME_W4AFP8:
        w = args(&(qa){4, "int", "group", "false", ao, g->observer, NULL, g->group_size, 0});
        if (g->scheme == DSV4_SCHEME_W4AFP8) {
            json_decref(in);
            in = args(&(qa){8, "float", "token", "true", NULL, NULL, NULL, 0, 0});
        }
        break;
    default: /* NVFP4, weights only (no input_global_scale is written) */
        w = args(&(qa){4, "float", "tensor_group", "false", ao, g->observer, "torch.float8_e4m3fn", 16, 0});
        break;
    }
    json_object_set_new(o, "format", json_string(format_of(g->scheme)));
    json_object_set_new(o, "input_activations", in);
    json_object_set_new(o, "output_activations", json_null());
    json_object_set(o, "targets", targets);
    json_object_set_new(o, "weights", w);
    return o;
}

int dsv4_ct_config_build(const dsv4_recipe *r, const dsv4_config *cfg, const dsv4_ct_module *mods, size_t n,
                         json_t **out, dsv4_err *e)
{
    ct_mod *cm = malloc((n ? n : 1) * sizeof *cm);
    int *st = NULL, rank[DSV4_RECIPE_MAX_GROUPS], has_head = 0, rc = -1;
    json_t *targets[DSV4_RECIPE_MAX_GROUPS] = {0}, *ignore = json_array(), *qc = NULL;
    *out = NULL;
    if (!cm || !ignore || r->n_groups > DSV4_RECIPE_MAX_GROUPS) {
        dsv4_fail_rt(e, "quantization_config: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        int g = mods[i].group;
        if (g >= (int)r->n_groups || (g >= 0 && !dsv4_scheme_is_quantized(r->groups[g].scheme))) {
            dsv4_fail(e, "quantization_config: '%s' is given recipe group %d, which quantizes nothing", mods[i].module, g);
            goto done;
        }
        if (g >= 0 && !strcmp(mods[i].module, "head")) {
            dsv4_fail(e, "quantization_config: head (lm_head) cannot be quantized");
            goto done;
        }
        if (g >= 0 && !strncmp(mods[i].module, "mtp.", 4) && r->mtp != DSV4_MTP_QUANTIZE) {
            dsv4_fail(e, "quantization_config: '%s' is quantized although the MTP policy keeps the MTP block out",
                      mods[i].module);
            goto done;
        }
        has_head |= !strcmp(mods[i].module, "head");
    }
    if (ct_classify(cfg, mods, n, cm, e) || ct_status_table(r, cfg, mods, cm, n, &st, e))
        goto done;
    ct_group_ranks(r, mods, n, rank);
    for (size_t g = 0; g < r->n_groups; g++)
        if (!(targets[g] = json_array())) {
            dsv4_fail_rt(e, "quantization_config: out of memory");
            goto done;
        }
    if (ct_patterns(r, cfg, st, has_head, targets, ignore, e))
        goto done;
    json_t *groups = json_object();
    const char *fmt = NULL;
    int mixed = 0;
    for (int k = 0; k < (int)r->n_groups; k++)
        for (size_t g = 0; g < r->n_groups; g++) {
            if (rank[g] != k)
                continue;
            char name[32];
            snprintf(name, sizeof name, "group_%d", k);
            json_object_set_new(groups, name, scheme_json(&r->groups[g], targets[g]));
            const char *f = format_of(r->groups[g].scheme);
            mixed |= fmt && strcmp(fmt, f);
            fmt = f;
        }
    qc = json_object();
    json_object_set_new(qc, "config_groups", groups);
    json_object_set_new(qc, "format", json_string(!fmt ? "dense" : mixed ? "mixed-precision" : fmt));
    json_object_set_new(qc, "global_compression_ratio", json_null());
    json_object_set(qc, "ignore", ignore);
    json_object_set_new(qc, "kv_cache_scheme", json_null());
    json_object_set_new(qc, "quant_method", json_string("compressed-tensors"));
    json_object_set_new(qc, "quantization_status", json_string("compressed"));
    json_object_set_new(qc, "scale_fmt", json_string("ue8m0"));
    json_object_set_new(qc, "sparsity_config", json_object());
    json_object_set_new(qc, "transform_config", json_object());
    json_object_set_new(qc, "version", json_string(DSV4_CT_FORMAT_VERSION));

    dsv4_ct_vllm_name *names = NULL;
    size_t nn = 0;
    if (dsv4_ct_vllm_names(r, cfg, mods, n, 0, &names, &nn, e))
        goto done;
    rc = dsv4_ct_config_check(qc, r, mods, n, names, nn, e);
    free(names);
    if (rc)
        dsv4_wrap(e, "internal error in the generated quantization_config");
done:
    for (size_t g = 0; g < DSV4_RECIPE_MAX_GROUPS; g++)
        json_decref(targets[g]);
    json_decref(ignore);
    free(cm);
    free(st);
    if (rc)
        json_decref(qc);
    else
        *out = qc;
    return rc;
}

typedef struct compiled {
    dsv4_target **t;
    size_t n;
} compiled;

static int compile_json(const json_t *list, compiled *c, dsv4_err *e)
{
    c->n = json_array_size(list);
    c->t = calloc(c->n ? c->n : 1, sizeof *c->t);
    if (!c->t)
        return dsv4_fail_rt(e, "out of memory");
    for (size_t i = 0; i < c->n; i++) {
        const char *p = json_string_value(json_array_get(list, i));
        char why[300];
        if (!p)
            return dsv4_fail(e, "quantization_config: a pattern is not a string");
        if (!(c->t[i] = dsv4_target_compile(p, why, sizeof why)))
            return dsv4_fail(e, "quantization_config: pattern \"%s\": %s", p, why);
    }
    return 0;
}

static void free_compiled(compiled *c)
{
    for (size_t i = 0; c->t && i < c->n; i++)
        dsv4_target_free(c->t[i]);
    free(c->t);
}

static const char *first_match(const compiled *c, const json_t *list, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (dsv4_target_match(c->t[i], name))
            return json_string_value(json_array_get(list, i));
    return NULL;
}

int dsv4_ct_config_check(const json_t *qc, const dsv4_recipe *r, const dsv4_ct_module *mods, size_t n,
                         const dsv4_ct_vllm_name *names, size_t n_names, dsv4_err *e)
{
    int rank[DSV4_RECIPE_MAX_GROUPS], rc = -1;
    if (r->n_groups > DSV4_RECIPE_MAX_GROUPS)
        return dsv4_fail(e, "quantization_config: too many groups");
    ct_group_ranks(r, mods, n, rank);
    const json_t *groups = json_object_get(qc, "config_groups"), *ign = json_object_get(qc, "ignore");
    size_t ng = json_object_size(groups);
    compiled *gc = calloc(ng + 1, sizeof *gc), ic = {0};
    const json_t **gl = calloc(ng + 1, sizeof *gl);
    if (!gc || !gl) {
        free(gc);
        free(gl);
        return dsv4_fail_rt(e, "out of memory");
    }
    for (size_t k = 0; k < ng; k++) {
        char key[32];
        snprintf(key, sizeof key, "group_%zu", k);
        gl[k] = json_object_get(json_object_get(groups, key), "targets");
        if (!gl[k]) {
            dsv4_fail(e, "quantization_config: %s is missing or has no targets", key);
            goto done;
        }
        if (compile_json(gl[k], &gc[k], e))
            goto done;
    }
    if (compile_json(ign, &ic, e))
        goto done;
    for (size_t i = 0; i < n_names; i++) {
        const char *nm = names[i].name, *hit;
        int want = names[i].group >= 0 ? rank[names[i].group] : -1;
        if (names[i].group >= 0 && want < 0) {
            dsv4_fail(e, "quantization_config: %s belongs to recipe group %d, which has no config group", nm,
                      names[i].group);
            goto done;
        }
        if ((hit = first_match(&ic, ign, nm)) && want >= 0) {
            dsv4_fail(e, "quantization_config: %s is quantized (group_%d) but ignore entry \"%s\" matches it", nm, want,
                      hit);
            goto done;
        }
        if (!hit && want < 0) {
            dsv4_fail(e, "quantization_config: %s is unquantized but no ignore entry matches it", nm);
            goto done;
        }
        for (size_t k = 0; k < ng; k++) {
            hit = first_match(&gc[k], gl[k], nm);
            if (hit && (int)k != want) {
                dsv4_fail(e, "quantization_config: %s is %s but group_%zu's target \"%s\" matches it", nm,
                          want < 0 ? "unquantized" : "in another group", k, hit);
                goto done;
            }
            if (!hit && (int)k == want) {
                dsv4_fail(e, "quantization_config: %s is in group_%zu but none of its targets matches it", nm, k);
                goto done;
            }
        }
    }
    rc = 0;
done:
    for (size_t k = 0; k < ng; k++)
        free_compiled(&gc[k]);
    free_compiled(&ic);
    free(gc);
    free(gl);
    return rc;
}
