/* llm-compressor's recipe.yaml: `<name>_stage: <name>_modifiers: {GPTQModifier | QuantizationModifier:
 * {...}}`. A modifier gives groups through a preset `scheme` (with `targets`), a `scheme` mapping
 * (preset -> targets) or `config_groups` (QuantizationScheme mappings with `weights` /
 * `input_activations` QuantizationArgs); `ignore` and GPTQ's `dampening_frac` / `actorder` apply to
 * all its groups. Presets and QuantizationArgs map onto the schemes we write; anything else is
 * refused at its line and column rather than approximated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recipe/recipe_internal.h"

static const char *const MODIFIER_KEYS[] = {
    "targets", "scheme", "config_groups", "ignore", "kv_cache_scheme", "dampening_frac", "actorder", "block_size",
    "offload_hessians", "sequential_targets", "sequential_update", "true_sequential", "index", "group", "start",
    "end", "update", NULL};
static const char *const SCHEME_KEYS[] = {"targets", "weights", "input_activations", "output_activations", "format",
                                          NULL};
static const char *const ARGS_KEYS[] = {"num_bits", "type", "symmetric", "group_size", "strategy", "block_structure",
                                        "dynamic", "actorder", "observer", "observer_kwargs", "scale_dtype",
                                        "zp_dtype", NULL};
static const char *const GPTQ_ONLY[] = {"dampening_frac", "actorder", "block_size", "offload_hessians",
                                        "sequential_targets", "sequential_update", "true_sequential", NULL};

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

int rc_is_llmc(ry *y, const yaml_node_t *root)
{
    for (size_t i = 0; i < ry_len(root); i++) {
        yaml_node_t *k = ry_key_at(y, root, i);
        if (k && k->type == YAML_SCALAR_NODE && ends_with(ry_text(k), "stage"))
            return 1;
    }
    return 0;
}

/* What the modifier contributes to each of its groups. */
typedef struct modctx {
    dsv4_method method;
    double damp;
    char actorder[16];
    const yaml_node_t *ao_node; /* modifier-level actorder, when given */
} modctx;

/* A preset name as llm-compressor spells it. */
static int preset(ry *y, const yaml_node_t *at, const char *name, dsv4_scheme *s)
{
    if (!strcmp(name, "W4A16"))
        *s = DSV4_SCHEME_W4A16;
    else if (!strcmp(name, "W4AFP8"))
        *s = DSV4_SCHEME_W4AFP8;
    else if (!strcmp(name, "NVFP4") || !strcmp(name, "NVFP4A16"))
        *s = DSV4_SCHEME_NVFP4;
    else if (!strcmp(name, "FP8_BLOCK"))
        *s = DSV4_SCHEME_FP8_BLOCK;
    else
        return ry_fail(y, at, "scheme: preset '%s' is not supported (supported: W4A16, W4AFP8, NVFP4, NVFP4A16, "
                       "FP8_BLOCK)", name);
    return 0;
}

static int taken(const dsv4_recipe *r, const char *name)
{
    for (size_t i = 0; i < r->n_groups; i++)
        if (!strcmp(r->groups[i].name, name))
            return 1;
    return 0;
}

static int add_group(ry *y, const yaml_node_t *at, dsv4_recipe *r, const modctx *m, const char *name,
                     dsv4_scheme s, dsv4_recipe_group **out)
{
    /* Presets and config-group names repeat across modifiers: number the repeats. */
    char unique[64];
    snprintf(unique, sizeof unique, "%s", name);
    for (int k = 1; taken(r, unique) && k < 1000; k++)
        snprintf(unique, sizeof unique, "%.50s_%d", name, k);
    dsv4_recipe_group *g = rc_add_group(y, at, r, unique, s);
    if (!g)
        return -1;
    /* FP8_BLOCK is data-free here: release FP8 weights pass through, BF16 ones are rounded. */
    g->method = s == DSV4_SCHEME_FP8_BLOCK ? DSV4_METHOD_RTN : m->method;
    g->dampening_frac = m->damp;
    if (g->method == DSV4_METHOD_GPTQ)
        snprintf(g->actorder, sizeof g->actorder, "%s", m->actorder);
    *out = g;
    return 0;
}

/* Reads one QuantizationArgs mapping into its fields. */
/* weights.observer: llm-compressor's minmax family (memoryless for weights, as it overrides them)
 * is our minmax, its mse family our MSE grid; the others have no equivalent here. */
static int weights_observer(ry *y, const yaml_node_t *v, dsv4_recipe_group *g)
{
    const char *s = ry_text(v);
    if (!strcmp(s, "minmax") || !strcmp(s, "memoryless_minmax") || !strcmp(s, "static_minmax"))
        snprintf(g->observer, sizeof g->observer, "minmax");
    else if (!strcmp(s, "mse") || !strcmp(s, "memoryless_mse"))
        snprintf(g->observer, sizeof g->observer, "mse");
    else
        return ry_fail(y, v, "weights.observer: '%s' is not supported (expected minmax, memoryless_minmax, "
                       "static_minmax, mse or memoryless_mse)", s);
    return 0;
}

typedef struct qargs {
    long long bits;
    char type[16], strategy[24], dynamic[8];
    long long group_size; /* 0: null */
    int symmetric, block_ok;
    const yaml_node_t *actorder, *observer;
} qargs;

static int read_args(ry *y, const yaml_node_t *n, const char *what, qargs *a)
{
    yaml_node_t *v;
    memset(a, 0, sizeof *a);
    a->symmetric = 1;
    snprintf(a->type, sizeof a->type, "int");
    if (ry_map(y, n, what, ARGS_KEYS))
        return -1;
    if (!(v = ry_get(y, n, "num_bits")))
        return ry_fail(y, n, "%s: 'num_bits' is required", what);
    if (ry_int(y, v, "num_bits", 1, 64, &a->bits))
        return -1;
    if ((v = ry_get(y, n, "type")) && ry_str(y, v, "type", a->type, sizeof a->type))
        return -1;
    if (strcmp(a->type, "int") && strcmp(a->type, "float"))
        return ry_fail(y, v, "type: expected int or float, got '%s'", a->type);
    if ((v = ry_get(y, n, "symmetric")) && ry_bool(y, v, "symmetric", &a->symmetric))
        return -1;
    if ((v = ry_get(y, n, "group_size")) && ry_type_of(v) != RY_NULL &&
        ry_int(y, v, "group_size", -1, 1 << 20, &a->group_size))
        return -1;
    if ((v = ry_get(y, n, "strategy")) && ry_type_of(v) != RY_NULL &&
        ry_str(y, v, "strategy", a->strategy, sizeof a->strategy))
        return -1;
    if (!a->strategy[0] && a->group_size > 0)
        snprintf(a->strategy, sizeof a->strategy, "group");
    if ((v = ry_get(y, n, "block_structure")) && ry_type_of(v) != RY_NULL) {
        if (ry_enter(y, v))
            return -1;
        if (v->type == YAML_SEQUENCE_NODE && ry_len(v) == 2) {
            long long b0, b1;
            if (ry_int(y, ry_item(y, v, 0), "block_structure", 1, 1 << 20, &b0) ||
                ry_int(y, ry_item(y, v, 1), "block_structure", 1, 1 << 20, &b1))
                return -1;
            a->block_ok = b0 == 128 && b1 == 128;
        } else if (ry_type_of(v) == RY_STR)
            a->block_ok = !strcmp(ry_text(v), "128x128");
        if (!a->block_ok)
            return ry_fail(y, v, "block_structure: only [128, 128] blocks are supported");
    }
    if ((v = ry_get(y, n, "dynamic")) && ry_type_of(v) != RY_NULL) {
        if (ry_enter(y, v))
            return -1;
        ry_type t = ry_type_of(v);
        if (t == RY_BOOL)
            snprintf(a->dynamic, sizeof a->dynamic, "%s", ry_text(v)[0] == 't' || ry_text(v)[0] == 'T' ? "true" : "");
        else if (t == RY_STR && !strcmp(ry_text(v), "local"))
            snprintf(a->dynamic, sizeof a->dynamic, "local");
        else
            return ry_fail(y, v, "dynamic: expected true, false or local");
    }
    a->actorder = ry_get(y, n, "actorder");
    if ((v = ry_get(y, n, "observer")) && ry_type_of(v) != RY_NULL)
        a->observer = v;
    /* observer (the weights' one is mapped below), observer_kwargs, scale_dtype, zp_dtype: read for
       their type here. */
    static const char *const free_keys[] = {"observer", "scale_dtype", "zp_dtype", NULL};
    for (const char *const *k = free_keys; *k; k++)
        if ((v = ry_get(y, n, *k)) && ry_type_of(v) != RY_NULL) {
            char buf[64];
            if (ry_str(y, v, *k, buf, sizeof buf))
                return -1;
        }
    if ((v = ry_get(y, n, "observer_kwargs")) && ry_type_of(v) != RY_NULL &&
        (v->type != YAML_MAPPING_NODE || ry_len(v) != 0))
        return ry_fail(y, v, "observer_kwargs: only an empty mapping is supported");
    return 0;
}

/* weights (+ input_activations) -> scheme and group size. */
static int scheme_of(ry *y, const yaml_node_t *wn, const qargs *w, const yaml_node_t *in, const qargs *ia,
                     dsv4_scheme *s, int *group_size)
{
    if (!w->symmetric)
        return ry_fail(y, wn, "weights: asymmetric quantization is not supported (vLLM's MoE kernels need symmetric "
                       "weights, and no zero point is written)");
    if (w->bits == 4 && !strcmp(w->type, "int") && !strcmp(w->strategy, "group") && w->group_size > 0) {
        *s = DSV4_SCHEME_W4A16;
        *group_size = (int)w->group_size;
        if (in) {
            if (ia->bits == 8 && !strcmp(ia->type, "float") && !strcmp(ia->strategy, "token") &&
                !strcmp(ia->dynamic, "true"))
                *s = DSV4_SCHEME_W4AFP8;
            else
                return ry_fail(y, in, "input_activations: int4 weights pair with none (W4A16) or FP8 dynamic "
                               "per-token activations (W4AFP8) only");
        }
        return 0;
    }
    if (w->bits == 4 && !strcmp(w->type, "float") && !strcmp(w->strategy, "tensor_group") && w->group_size == 16) {
        if (in && !(ia->bits == 4 && !strcmp(ia->type, "float")))
            return ry_fail(y, in, "input_activations: NVFP4 weights pair with none or NVFP4 activations only");
        *s = DSV4_SCHEME_NVFP4;
        *group_size = 16;
        return 0;
    }
    if (w->bits == 8 && !strcmp(w->type, "float") && !strcmp(w->strategy, "block") && w->block_ok) {
        if (in && !(ia->bits == 8 && !strcmp(ia->type, "float") && !strcmp(ia->dynamic, "true")))
            return ry_fail(y, in, "input_activations: FP8 block weights pair with none or FP8 dynamic activations "
                           "only");
        *s = DSV4_SCHEME_FP8_BLOCK;
        *group_size = 0;
        return 0;
    }
    return ry_fail(y, wn, "weights: unsupported QuantizationArgs (%lld-bit %s, strategy '%s'): supported are int4 "
                   "group (W4A16 / W4AFP8), float4 tensor_group 16 (NVFP4) and float8 block 128x128 (FP8_BLOCK)",
                   w->bits, w->type, w->strategy[0] ? w->strategy : "none");
}

static int read_config_group(ry *y, const yaml_node_t *key, const yaml_node_t *n, dsv4_recipe *r, const modctx *m)
{
    char where[128], name[64];
    if (ry_type_of(key) != RY_STR || strlen(ry_text(key)) >= sizeof name)
        return ry_fail(y, key, "config_groups: a group name must be a string of at most %zu bytes", sizeof name - 1);
    snprintf(name, sizeof name, "%s", ry_text(key));
    snprintf(where, sizeof where, "config group '%s'", name);
    if (ry_map(y, n, where, SCHEME_KEYS))
        return -1;
    yaml_node_t *wn = ry_get(y, n, "weights"), *in = ry_get(y, n, "input_activations"), *v;
    if (!wn || ry_type_of(wn) == RY_NULL)
        return ry_fail(y, n, "%s: 'weights' is required", where);
    qargs w, ia;
    memset(&ia, 0, sizeof ia);
    if (read_args(y, wn, "weights", &w))
        return -1;
    if (in && ry_type_of(in) == RY_NULL)
        in = NULL;
    if (in && read_args(y, in, "input_activations", &ia))
        return -1;
    if ((v = ry_get(y, n, "output_activations")) && ry_type_of(v) != RY_NULL)
        return ry_fail(y, v, "output_activations: only null is supported");
    if ((v = ry_get(y, n, "format")) && ry_type_of(v) != RY_NULL) {
        char f[64];
        if (ry_str(y, v, "format", f, sizeof f))
            return -1;
    }
    dsv4_scheme s = DSV4_SCHEME_KEEP;
    int gs = 0;
    if (scheme_of(y, wn, &w, in, &ia, &s, &gs))
        return -1;
    dsv4_recipe_group *g;
    if (add_group(y, key, r, m, name, s, &g))
        return -1;
    g->group_size = gs;
    if (w.actorder) {
        /* Checked for every group; it only means something to GPTQ. */
        dsv4_recipe_group tmp;
        memset(&tmp, 0, sizeof tmp);
        if (rc_actorder(y, w.actorder, "weights.actorder", &tmp))
            return -1;
        if (g->method == DSV4_METHOD_GPTQ)
            snprintf(g->actorder, sizeof g->actorder, "%s", tmp.actorder);
    }
    if (w.observer && weights_observer(y, w.observer, g))
        return -1;
    if (rc_group_targets(y, n, where, g))
        return -1;
    return rc_finish_group(y, key, g);
}

/* scheme: "W4A16" (with the modifier's targets) or {W4A16: [targets], FP8_BLOCK: [...]}. */
static int read_scheme(ry *y, const yaml_node_t *n, const yaml_node_t *targets, dsv4_recipe *r, const modctx *m)
{
    dsv4_scheme s;
    dsv4_recipe_group *g;
    char name[64];
    if (n->type == YAML_MAPPING_NODE) {
        if (ry_map(y, n, "scheme", NULL))
            return -1;
        for (size_t i = 0; i < ry_len(n); i++) {
            yaml_node_t *k = ry_key_at(y, n, i), *v = ry_val_at(y, n, i);
            snprintf(name, sizeof name, "%s", ry_text(k));
            if (preset(y, k, name, &s) || add_group(y, k, r, m, name, s, &g) ||
                rc_targets(y, v, "scheme targets", &g->targets, &g->n_targets))
                return -1;
            if (!g->n_targets)
                return ry_fail(y, v, "scheme targets: the list is empty");
            if (rc_finish_group(y, k, g))
                return -1;
        }
        return 0;
    }
    if (ry_str(y, n, "scheme", name, sizeof name) || preset(y, n, name, &s) || add_group(y, n, r, m, name, s, &g))
        return -1;
    if (targets) {
        if (rc_targets(y, targets, "targets", &g->targets, &g->n_targets))
            return -1;
        if (!g->n_targets)
            return ry_fail(y, targets, "targets: the list is empty");
    } else {
        /* llm-compressor's default targets. */
        char *lin = strdup("Linear");
        char **nt = lin ? realloc(g->targets, sizeof *nt) : NULL;
        if (!nt) {
            free(lin);
            return dsv4_fail_rt(y->e, "%s: out of memory", y->path);
        }
        g->targets = nt;
        g->targets[g->n_targets++] = lin;
    }
    return rc_finish_group(y, n, g);
}

static int read_modifier(ry *y, const yaml_node_t *key, const yaml_node_t *n, dsv4_recipe *r)
{
    const char *kind = ry_text(key);
    int gptq = !strcmp(kind, "GPTQModifier");
    if (!gptq && strcmp(kind, "QuantizationModifier"))
        return ry_fail(y, key, "modifier '%.100s' is not supported (dsv4-quant reads GPTQModifier and "
                       "QuantizationModifier)", kind);
    if (ry_map(y, n, kind, MODIFIER_KEYS))
        return -1;
    yaml_node_t *v;
    for (const char *const *k = GPTQ_ONLY; !gptq && *k; k++)
        if ((v = ry_get(y, n, *k)))
            return ry_fail(y, v, "%s: '%s' is a GPTQModifier argument", kind, *k);
    modctx m = {gptq ? DSV4_METHOD_GPTQ : DSV4_METHOD_RTN, 0.01, "static", NULL};
    if ((v = ry_get(y, n, "dampening_frac")) && ry_num(y, v, "dampening_frac", 1e-9, 1.0, &m.damp))
        return -1;
    if ((v = ry_get(y, n, "actorder"))) {
        dsv4_recipe_group tmp;
        memset(&tmp, 0, sizeof tmp);
        if (rc_actorder(y, v, "actorder", &tmp))
            return -1;
        snprintf(m.actorder, sizeof m.actorder, "%s", tmp.actorder);
    }
    if ((v = ry_get(y, n, "block_size"))) {
        long long bs;
        if (ry_int(y, v, "block_size", 1, 1 << 20, &bs))
            return -1;
        if (bs != 128)
            return ry_fail(y, v, "block_size: GPTQ runs 128-column blocks here, got %lld", bs);
    }
    if ((v = ry_get(y, n, "kv_cache_scheme")) && ry_type_of(v) != RY_NULL)
        return ry_fail(y, v, "kv_cache_scheme: KV-cache quantization is not supported (write null)");
    static const char *const bools[] = {"offload_hessians", "sequential_update", "true_sequential", NULL};
    for (const char *const *k = bools; *k; k++) {
        int b;
        if ((v = ry_get(y, n, *k)) && ry_bool(y, v, *k, &b))
            return -1;
    }
    static const char *const ints[] = {"index", "group", "start", "end", "update", NULL};
    for (const char *const *k = ints; *k; k++) {
        long long x;
        if ((v = ry_get(y, n, *k)) && ry_type_of(v) != RY_NULL && ry_int(y, v, *k, -1, 1 << 30, &x))
            return -1;
    }
    if ((v = ry_get(y, n, "sequential_targets")) && ry_type_of(v) != RY_NULL) {
        char **tmp = NULL;
        size_t nt = 0;
        int rc = ry_strlist(y, v, "sequential_targets", &tmp, &nt);
        for (size_t i = 0; i < nt; i++)
            free(tmp[i]);
        free(tmp);
        if (rc)
            return -1;
    }
    yaml_node_t *targets = ry_get(y, n, "targets"), *scheme = ry_get(y, n, "scheme"), *cg = ry_get(y, n, "config_groups");
    if (scheme && ry_type_of(scheme) == RY_NULL)
        scheme = NULL;
    if (cg && ry_type_of(cg) == RY_NULL)
        cg = NULL;
    if (!scheme && !cg)
        return ry_fail(y, n, "%s: needs 'scheme' or 'config_groups'", kind);
    if (scheme && read_scheme(y, scheme, scheme->type == YAML_MAPPING_NODE ? NULL : targets, r, &m))
        return -1;
    if (cg) {
        if (ry_map(y, cg, "config_groups", NULL))
            return -1;
        for (size_t i = 0; i < ry_len(cg); i++)
            if (read_config_group(y, ry_key_at(y, cg, i), ry_val_at(y, cg, i), r, &m))
                return -1;
    }
    /* Unless a preset string used them, the modifier-level targets are llm-compressor's defaults. */
    if (targets && !(scheme && scheme->type != YAML_MAPPING_NODE)) {
        char **tmp = NULL;
        size_t nt = 0;
        int rc = rc_targets(y, targets, "targets", &tmp, &nt);
        for (size_t i = 0; i < nt; i++)
            free(tmp[i]);
        free(tmp);
        if (rc)
            return -1;
    }
    if ((v = ry_get(y, n, "ignore")) && ry_type_of(v) != RY_NULL && rc_targets(y, v, "ignore", &r->ignore, &r->n_ignore))
        return -1;
    return 0;
}

int rc_read_llmc(ry *y, const yaml_node_t *root, dsv4_recipe *r)
{
    if (ry_map(y, root, "the llm-compressor recipe", NULL))
        return -1;
    for (size_t i = 0; i < ry_len(root); i++) {
        yaml_node_t *sk = ry_key_at(y, root, i), *stage = ry_val_at(y, root, i);
        if (!ends_with(ry_text(sk), "stage"))
            return ry_fail(y, sk, "unknown key '%.100s' (an llm-compressor recipe holds <name>_stage mappings)",
                           ry_text(sk));
        if (ry_map(y, stage, ry_text(sk), NULL))
            return -1;
        for (size_t j = 0; j < ry_len(stage); j++) {
            yaml_node_t *mk = ry_key_at(y, stage, j), *mods = ry_val_at(y, stage, j);
            if (!strcmp(ry_text(mk), "run_type")) {
                char rt[32];
                if (ry_str(y, mods, "run_type", rt, sizeof rt))
                    return -1;
                continue;
            }
            if (!ends_with(ry_text(mk), "modifiers"))
                return ry_fail(y, mk, "%s: unknown key '%.100s' (expected <name>_modifiers)", ry_text(sk),
                               ry_text(mk));
            if (ry_map(y, mods, ry_text(mk), NULL))
                return -1;
            for (size_t k = 0; k < ry_len(mods); k++)
                if (read_modifier(y, ry_key_at(y, mods, k), ry_val_at(y, mods, k), r))
                    return -1;
        }
    }
    if (!r->n_groups)
        return ry_fail(y, root, "the llm-compressor recipe has no quantization modifier");
    return 0;
}
