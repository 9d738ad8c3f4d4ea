/* Recipe entry points: load a YAML file (ours or llm-compressor's), hash its bytes, compile the
 * target patterns once, and match release modules against them (see recipe.h). The group checks
 * shared by both readers live here, so both schemas accept exactly the same set of groups. */
#include "recipe/recipe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

#include "io/checkpoint.h"
#include "model/names.h"
#include "recipe/modules.h"
#include "recipe/recipe_internal.h"
#include "recipe/target.h"

#define RECIPE_MAX_BYTES (1u << 20)

typedef struct pat {
    int linear;     /* the class target "Linear" */
    dsv4_target *t; /* otherwise */
} pat;

struct dsv4_recipe_rx {
    pat **group; /* per group, n_targets patterns */
    pat *ignore;
};

static const char *const SCHEME_NAMES[DSV4_SCHEME_COUNT] = {"KEEP", "BF16", "FP8_BLOCK", "W4A16", "W4AFP8", "NVFP4"};

const char *dsv4_scheme_name(dsv4_scheme s)
{
    return (unsigned)s < DSV4_SCHEME_COUNT ? SCHEME_NAMES[s] : "?";
}

int dsv4_scheme_is_quantized(dsv4_scheme s)
{
    return s == DSV4_SCHEME_FP8_BLOCK || s == DSV4_SCHEME_W4A16 || s == DSV4_SCHEME_W4AFP8 || s == DSV4_SCHEME_NVFP4;
}

int rc_scheme_parse(const char *s)
{
    for (int i = 0; i < DSV4_SCHEME_COUNT; i++)
        if (!strcasecmp(s, SCHEME_NAMES[i]))
            return i;
    return -1;
}

dsv4_recipe_group *rc_add_group(ry *y, const yaml_node_t *at, dsv4_recipe *r, const char *name, dsv4_scheme scheme)
{
    if (r->n_groups >= RC_MAX_GROUPS) {
        ry_fail(y, at, "more than %d groups", RC_MAX_GROUPS);
        return NULL;
    }
    for (size_t i = 0; i < r->n_groups; i++)
        if (!strcmp(r->groups[i].name, name)) {
            ry_fail(y, at, "a second group named '%s'", name);
            return NULL;
        }
    dsv4_recipe_group *ng = realloc(r->groups, (r->n_groups + 1) * sizeof *ng);
    if (!ng) {
        dsv4_fail_rt(y->e, "%s: out of memory", y->path);
        return NULL;
    }
    r->groups = ng;
    dsv4_recipe_group *g = &ng[r->n_groups++];
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name);
    g->scheme = scheme;
    g->method = DSV4_METHOD_RTN;
    g->symmetric = 1;
    g->dampening_frac = 0.01;
    snprintf(g->observer, sizeof g->observer, "minmax");
    snprintf(g->actorder, sizeof g->actorder, "-"); /* unset until rc_finish_group */
    return g;
}

int rc_actorder(ry *y, const yaml_node_t *n, const char *what, dsv4_recipe_group *g)
{
    ry_type t = ry_type_of(n);
    const char *s = ry_text(n);
    if (ry_enter(y, n))
        return -1;
    if (t == RY_NULL || (t == RY_BOOL && (s[0] == 'f' || s[0] == 'F')) || (t == RY_STR && !strcmp(s, "none"))) {
        g->actorder[0] = 0;
        return 0;
    }
    if (t == RY_STR && (!strcmp(s, "static") || !strcmp(s, "weight"))) {
        snprintf(g->actorder, sizeof g->actorder, "static");
        return 0;
    }
    if ((t == RY_STR && (!strcmp(s, "group") || !strcmp(s, "dynamic"))) || t == RY_BOOL)
        return ry_fail(y, n, "%s: actorder group (weight_g_idx on disk) is not supported: compressed-tensors removed it "
                       "(0.19, 2026-08-27: QuantizationArgs raises \"actorder='group' has been removed\"), so vLLM "
                       "and transformers could not load the artifact; use static (= weight: the same act order "
                       "during GPTQ, no g_idx)", what);
    return ry_fail(y, n, "%s: expected static, weight, none or null, got '%s'", what, s);
}

int rc_finish_group(ry *y, const yaml_node_t *at, dsv4_recipe_group *g)
{
    const char *sn = dsv4_scheme_name(g->scheme);
    int is_int4 = g->scheme == DSV4_SCHEME_W4A16 || g->scheme == DSV4_SCHEME_W4AFP8;
    if (!strcmp(g->actorder, "-"))
        snprintf(g->actorder, sizeof g->actorder, "%s", g->method == DSV4_METHOD_GPTQ ? "static" : "");
    if (g->method == DSV4_METHOD_GPTQ && !is_int4 && g->scheme != DSV4_SCHEME_NVFP4)
        return ry_fail(y, at, "group '%s': method gptq applies to W4A16, W4AFP8 and NVFP4 groups; %s is data-free "
                       "(release FP8 weights pass through, the rest is dequantized or rounded)", g->name, sn);
    if (!g->symmetric)
        return ry_fail(y, at, "group '%s': asymmetric quantization is not supported (vLLM's MoE kernels need "
                       "symmetric weights, and no zero point is written)", g->name);
    if (is_int4) {
        if (!g->group_size)
            g->group_size = 128;
        if (g->scheme == DSV4_SCHEME_W4AFP8 && g->group_size != 128)
            return ry_fail(y, at, "group '%s': W4AFP8 needs group_size 128 (vLLM's CUTLASS W4A8 kernel), got %d",
                           g->name, g->group_size);
        if (g->group_size != 32 && g->group_size != 64 && g->group_size != 128)
            return ry_fail(y, at, "group '%s': W4A16 group_size must be 32, 64 or 128 (Marlin), got %d", g->name,
                           g->group_size);
    } else if (g->scheme == DSV4_SCHEME_NVFP4) {
        if (!g->group_size)
            g->group_size = 16;
        if (g->group_size != 16)
            return ry_fail(y, at, "group '%s': NVFP4 uses groups of 16, got group_size %d", g->name, g->group_size);
    } else if (g->group_size)
        return ry_fail(y, at, "group '%s': group_size does not apply to %s", g->name, sn);
    return 0;
}

/* A class-name target: an identifier that starts with a capital letter (module names never do). */
static int class_like(const char *s)
{
    if (!(s[0] >= 'A' && s[0] <= 'Z'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

int rc_group_targets(ry *y, const yaml_node_t *n, const char *where, dsv4_recipe_group *g)
{
    const yaml_node_t *v = ry_get(y, n, "targets");
    if (!v)
        return ry_fail(y, n, "%s: 'targets' is required", where);
    if (rc_targets(y, v, "targets", &g->targets, &g->n_targets))
        return -1;
    if (!g->n_targets)
        return ry_fail(y, v, "targets: the list is empty");
    return 0;
}

int rc_targets(ry *y, const yaml_node_t *n, const char *what, char ***list, size_t *count)
{
    size_t from = *count;
    if (ry_strlist(y, n, what, list, count))
        return -1;
    for (size_t i = from; i < *count; i++) {
        const yaml_node_t *at = n->type == YAML_SEQUENCE_NODE ? ry_item(y, n, i - from) : n;
        const char *p = (*list)[i];
        char why[300];
        if (class_like(p)) {
            if (strcmp(p, "Linear"))
                return ry_fail(y, at, "%s: unsupported target class '%s' (the only class is Linear: every linear "
                               "layer vLLM quantizes)", what, p);
            continue;
        }
        dsv4_target *t = dsv4_target_compile(p, why, sizeof why);
        if (!t)
            return ry_fail(y, at, "%s: \"%.300s\": %s", what, p, why);
        dsv4_target_free(t);
    }
    return 0;
}

static int compile_list(char **src, size_t n, pat **out, dsv4_err *e, const char *path)
{
    char why[300];
    *out = calloc(n ? n : 1, sizeof **out);
    if (!*out)
        return dsv4_fail_rt(e, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(src[i], "Linear")) {
            (*out)[i].linear = 1;
            continue;
        }
        if (!((*out)[i].t = dsv4_target_compile(src[i], why, sizeof why)))
            return dsv4_fail(e, "%s: \"%s\": %s", path, src[i], why);
    }
    return 0;
}

static int compile_rx(dsv4_recipe *r, dsv4_err *e)
{
    if (!(r->rx = calloc(1, sizeof *r->rx)) || !(r->rx->group = calloc(r->n_groups ? r->n_groups : 1, sizeof(pat *))))
        return dsv4_fail_rt(e, "%s: out of memory", r->path);
    for (size_t g = 0; g < r->n_groups; g++)
        if (compile_list(r->groups[g].targets, r->groups[g].n_targets, &r->rx->group[g], e, r->path))
            return -1;
    return compile_list(r->ignore, r->n_ignore, &r->rx->ignore, e, r->path);
}

static void free_rx(dsv4_recipe *r)
{
    if (!r->rx)
        return;
    for (size_t g = 0; g < r->n_groups && r->rx->group; g++) {
        for (size_t i = 0; r->rx->group[g] && i < r->groups[g].n_targets; i++)
            dsv4_target_free(r->rx->group[g][i].t);
        free(r->rx->group[g]);
    }
    for (size_t i = 0; r->rx->ignore && i < r->n_ignore; i++)
        dsv4_target_free(r->rx->ignore[i].t);
    free(r->rx->ignore);
    free(r->rx->group);
    free(r->rx);
    r->rx = NULL;
}

static void defaults(dsv4_recipe *r, const char *path)
{
    memset(r, 0, sizeof *r);
    snprintf(r->path, sizeof r->path, "%s", path ? path : "<recipe>");
    r->mtp = DSV4_MTP_BF16;
    r->mtp_aliases = 1;
    r->max_shard_bytes = 5ULL << 30;
    r->calib_samples = 512;
    r->calib_seq_len = 2048;
    r->calib_min_tokens = 32;
}

static void hash_hex(const void *data, size_t len, char out[33])
{
    static const char empty = 0;
    XXH128_hash_t h = XXH3_128bits(len ? data : &empty, len);
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
}

static int read_document(yaml_parser_t *p, yaml_document_t *d, dsv4_recipe *r, dsv4_err *e)
{
    if (yaml_parser_load(p, d))
        return 0;
    const yaml_mark_t *m = &p->problem_mark;
    return dsv4_fail(e, "%s:%zu:%zu: not valid YAML: %s%s%s", r->path, m->line + 1, m->column + 1,
                     p->problem ? p->problem : "parse error", p->context ? " " : "", p->context ? p->context : "");
}

static int parse_doc(yaml_parser_t *p, dsv4_recipe *r, dsv4_err *e)
{
    yaml_document_t doc, extra;
    if (read_document(p, &doc, r, e))
        return -1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    int rc = -1;
    if (!root) {
        dsv4_fail(e, "%s: the recipe is empty", r->path);
        goto done;
    }
    if (read_document(p, &extra, r, e))
        goto done;
    int more = yaml_document_get_root_node(&extra) != NULL;
    size_t line = more ? yaml_document_get_root_node(&extra)->start_mark.line + 1 : 0;
    yaml_document_delete(&extra);
    if (more) {
        dsv4_fail(e, "%s:%zu:1: a second YAML document; a recipe is one document", r->path, line);
        goto done;
    }
    ry y = {&doc, r->path, e, NULL, (size_t)(doc.nodes.top - doc.nodes.start)};
    if (!(y.seen = calloc(y.n_nodes ? y.n_nodes : 1, 1))) {
        dsv4_fail_rt(e, "%s: out of memory", r->path);
        goto done;
    }
    if (root->type != YAML_MAPPING_NODE)
        ry_fail(&y, root, "the recipe must be a mapping, got %s", ry_type_name(ry_type_of(root)));
    else if (rc_is_llmc(&y, root)) {
        r->llm_compressor = 1;
        rc = rc_read_llmc(&y, root, r);
    } else
        rc = rc_read_ours(&y, root, r);
    free(y.seen);
done:
    yaml_document_delete(&doc);
    return rc;
}

int dsv4_recipe_parse(const char *yaml, size_t len, const char *path, dsv4_recipe *r, dsv4_err *e)
{
    defaults(r, path);
    hash_hex(yaml, len, r->hash);
    if (len > RECIPE_MAX_BYTES)
        return dsv4_fail(e, "%s: the recipe is larger than %u bytes", r->path, RECIPE_MAX_BYTES);
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return dsv4_fail_rt(e, "%s: out of memory", r->path);
    yaml_parser_set_input_string(&p, (const unsigned char *)yaml, len);
    int rc = parse_doc(&p, r, e);
    yaml_parser_delete(&p);
    if (!rc)
        rc = compile_rx(r, e);
    if (rc) {
        char saved[sizeof r->path];
        memcpy(saved, r->path, sizeof saved);
        dsv4_recipe_free(r);
        memcpy(r->path, saved, sizeof saved);
    }
    return rc;
}

int dsv4_recipe_load(const char *path, dsv4_recipe *r, dsv4_err *e)
{
    char *buf;
    size_t len;
    defaults(r, path);
    if (dsv4_read_file(path, RECIPE_MAX_BYTES, &buf, &len, e))
        return -1;
    int rc = dsv4_recipe_parse(buf, len, path, r, e);
    free(buf);
    return rc;
}

void dsv4_recipe_free(dsv4_recipe *r)
{
    free_rx(r);
    for (size_t g = 0; g < r->n_groups; g++) {
        for (size_t i = 0; i < r->groups[g].n_targets; i++)
            free(r->groups[g].targets[i]);
        free(r->groups[g].targets);
    }
    free(r->groups);
    for (size_t i = 0; i < r->n_ignore; i++)
        free(r->ignore[i]);
    free(r->ignore);
    char path[sizeof r->path];
    memcpy(path, r->path, sizeof path);
    defaults(r, path);
}

typedef struct names3 {
    dsv4_mod_kind kind;
    const char *n[3]; /* release, vLLM, transformers (NULL when none) */
    char vllm[DSV4_NAME_MAX + 32], hf[DSV4_NAME_MAX + 32];
} names3;

static void names_of(const char *module, names3 *m)
{
    m->kind = dsv4_module_kind(module);
    m->n[0] = module;
    m->n[1] = dsv4_module_vllm_name(module, m->vllm, sizeof m->vllm) ? NULL : m->vllm;
    m->n[2] = dsv4_module_hf_name(module, m->hf, sizeof m->hf) ? NULL : m->hf;
}

static int any_match(const pat *p, size_t n, const names3 *m)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i].linear) {
            if (m->kind == DSV4_MOD_QLINEAR)
                return 1;
            continue;
        }
        for (int k = 0; k < 3; k++)
            if (m->n[k] && dsv4_target_match(p[i].t, m->n[k]))
                return 1;
    }
    return 0;
}

int dsv4_recipe_ignored(const dsv4_recipe *r, const char *module)
{
    if (!r->rx)
        return 0;
    names3 m;
    names_of(module, &m);
    return any_match(r->rx->ignore, r->n_ignore, &m);
}

const dsv4_recipe_group *dsv4_recipe_match(const dsv4_recipe *r, const char *module)
{
    if (!r->rx)
        return NULL;
    names3 m;
    names_of(module, &m);
    if (any_match(r->rx->ignore, r->n_ignore, &m))
        return NULL;
    for (size_t g = 0; g < r->n_groups; g++)
        if (any_match(r->rx->group[g], r->groups[g].n_targets, &m))
            return &r->groups[g];
    return NULL;
}
