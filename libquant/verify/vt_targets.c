/* The quantization_config as vLLM sees it (vt_targets.h): groups, ignore, the model's linear
 * layers with their stored schemes, and every name vLLM asks about, with its expected status. */
#include "verify/vt_targets.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact/ct_config.h"

/* vLLM's linear layer classes: a target that is no regex and is contained in one of them (vLLM
 * compares class names with `in`, case-insensitively) selects every linear layer. */
static const char *const LINEAR_CLASSES[] = {"columnparallellinear", "rowparallellinear",
                                             "mergedcolumnparallellinear", "qkvparallellinear",
                                             "replicatedlinear", NULL};

static int class_target(const char *text)
{
    char low[64];
    size_t n = strlen(text);
    if (!n || n >= sizeof low || !strncmp(text, "re:", 3))
        return 0;
    for (size_t i = 0; i <= n; i++)
        low[i] = (char)tolower((unsigned char)text[i]);
    for (int i = 0; LINEAR_CLASSES[i]; i++)
        if (strstr(LINEAR_CLASSES[i], low))
            return 1;
    return 0;
}

int dsv4_vt_pat_match(const dsv4_vt_pat *p, const char *name)
{
    return p->is_class || dsv4_target_match(p->t, name);
}

long dsv4_vt_group_hit(const dsv4_vt_group *g, const char *name)
{
    for (size_t i = 0; i < g->n; i++)
        if (dsv4_vt_pat_match(&g->pat[i], name))
            return (long)i;
    return -1;
}

long dsv4_vt_ignore_hit(const dsv4_vt_view *w, const char *name)
{
    for (size_t i = 0; i < w->n_ignore; i++)
        if (dsv4_vt_pat_match(&w->ignore[i], name))
            return (long)i;
    return -1;
}

uint64_t dsv4_vt_groups_hit(const dsv4_vt_view *w, const char *name)
{
    uint64_t m = 0;
    for (size_t k = 0; k < w->n_groups; k++)
        if (dsv4_vt_group_hit(&w->g[k], name) >= 0)
            m |= (uint64_t)1 << k;
    return m;
}

const char *dsv4_vt_mask_str(const dsv4_vt_view *w, uint64_t mask, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = 0;
    for (size_t k = 0; k < w->n_groups && len + 1 < cap; k++)
        if (mask & ((uint64_t)1 << k)) {
            int r = snprintf(buf + len, cap - len, "%s%s", len ? " and " : "", w->g[k].key);
            len = r < 0 ? cap : len + (size_t)r;
        }
    if (!buf[0])
        snprintf(buf, cap, "no group");
    return buf;
}

/* Compiles a JSON list of patterns; 1 (why set) when an entry cannot be evaluated, -1 out of memory. */
static int compile_list(const json_t *list, const char *where, int targets, dsv4_vt_pat **out, size_t *n, char *why,
                        size_t cap)
{
    size_t k = json_array_size(list);
    *n = 0;
    *out = calloc(k ? k : 1, sizeof **out);
    if (!*out)
        return -1;
    for (size_t i = 0; i < k; i++) {
        const char *text = json_string_value(json_array_get(list, i));
        char w[300];
        if (!text) {
            snprintf(why, cap, "%s[%zu] is not a string", where, i);
            return 1;
        }
        dsv4_vt_pat *p = &(*out)[(*n)++];
        p->text = text;
        p->is_class = targets && class_target(text);
        if (!(p->t = dsv4_target_compile(text, w, sizeof w))) {
            snprintf(why, cap, "%s[%zu] \"%.120s\" cannot be evaluated: %s", where, i, text, w);
            return 1;
        }
    }
    return 0;
}

static void free_list(dsv4_vt_pat *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dsv4_target_free(p[i].t);
    free(p);
}

void dsv4_vt_view_free(dsv4_vt_view *w)
{
    for (size_t k = 0; k < w->n_groups; k++)
        free_list(w->g[k].pat, w->g[k].n);
    free(w->g);
    free_list(w->ignore, w->n_ignore);
    free(w->lin);
    free(w->names);
    memset(w, 0, sizeof *w);
}

static int open_groups(const json_t *qc, dsv4_vt_view *w, char *why, size_t cap)
{
    const json_t *groups = json_object_get(qc, "config_groups");
    size_t n = json_is_object(groups) ? json_object_size(groups) : 0;
    if (n > DSV4_VT_MAX_GROUPS) {
        snprintf(why, cap, "quantization_config has %zu config groups; this checker handles at most %d", n,
                 DSV4_VT_MAX_GROUPS);
        return 1;
    }
    w->g = calloc(n ? n : 1, sizeof *w->g);
    if (!w->g)
        return -1;
    const char *key;
    const json_t *g;
    json_object_foreach((json_t *)groups, key, g)
    {
        dsv4_vt_group *x = &w->g[w->n_groups++];
        char where[200];
        x->key = key;
        x->args = dsv4_vt_from_args(json_object_get(g, "weights"), x->args_why, sizeof x->args_why);
        snprintf(where, sizeof where, "quantization_config.config_groups.%.100s.targets", key);
        int rc = compile_list(json_object_get(g, "targets"), where, 1, &x->pat, &x->n, why, cap);
        if (rc)
            return rc;
    }
    return compile_list(json_object_get(qc, "ignore"), "quantization_config.ignore", 0, &w->ignore, &w->n_ignore,
                        why, cap);
}

/* On-disk expert names (experts.E.w1) and whole-MoE names (experts, experts.w13, ...) are
 * alternatives vLLM's DeepSeek-V4 MoE does not ask for; its probe is experts.E.gate_proj. */
static int alternative(const char *name)
{
    const char *p = strstr(name, "ffn.experts");
    if (!p)
        return 0;
    p += 11;
    if (!*p || !strcmp(p, ".w13") || !strcmp(p, ".w2") || !strcmp(p, ".gate_up_proj") || !strcmp(p, ".down_proj"))
        return 1;
    if (*p++ != '.' || !isdigit((unsigned char)*p))
        return 0;
    while (isdigit((unsigned char)*p))
        p++;
    return !strcmp(p, ".w1") || !strcmp(p, ".w2") || !strcmp(p, ".w3");
}

static int cmp_name(const void *a, const void *b)
{
    const dsv4_vt_name *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->lin > y->lin) - (x->lin < y->lin);
}

/* For a routed expert wK: which leaf (1, 2, 3) a name of its expert belongs to; whole-MoE names
 * (experts, experts.w13, ...) go with w1. */
static int expert_leaf(const char *name)
{
    const char *p = strstr(name, "ffn.experts");
    if (!p)
        return 0;
    p += 11;
    if (*p != '.' || !isdigit((unsigned char)p[1]))
        return 1;
    p++;
    while (isdigit((unsigned char)*p))
        p++;
    static const char *const leaf[6] = {".w1", ".gate_proj", ".w2", ".down_proj", ".w3", ".up_proj"};
    for (int k = 0; k < 6; k++)
        if (!strcmp(p, leaf[k]))
            return k / 2 + 1;
    return 0;
}

static int add_names(const dsv4_vctx *v, dsv4_vt_view *w, size_t li, size_t *cap)
{
    static const dsv4_recipe none; /* names only: every module given status -1 */
    const dsv4_vt_linear *l = &w->lin[li];
    dsv4_ct_module mods[3] = {{l->module, -1}};
    char sib[3][DSV4_NAME_MAX];
    size_t nm_in = 1, ml = strlen(l->module);
    int leaf = 0;
    /* The vLLM MoE is one module: its names are made for the expert's w1, w2 and w3 together. */
    if (strstr(l->module, ".ffn.experts.") && ml > 3 && l->module[ml - 3] == '.' && l->module[ml - 2] == 'w') {
        leaf = l->module[ml - 1] - '0';
        for (int k = 0; k < 3; k++) {
            snprintf(sib[k], sizeof sib[k], "%.*s.w%d", (int)(ml - 3), l->module, k + 1);
            mods[k] = (dsv4_ct_module){sib[k], -1};
        }
        nm_in = 3;
    }
    dsv4_ct_vllm_name *nm = NULL;
    size_t cnt = 0;
    dsv4_err e;
    if (dsv4_ct_vllm_names(&none, v->model, mods, nm_in, 1, &nm, &cnt, &e))
        return e.code == DSV4_EXIT_RUNTIME ? -1 : 0; /* not a layer of this config: names rules report it */
    if (w->n_names + cnt > *cap) {
        size_t nc = (*cap + cnt) * 2;
        dsv4_vt_name *nv = realloc(w->names, nc * sizeof *nv);
        if (!nv) {
            free(nm);
            return -1;
        }
        w->names = nv;
        *cap = nc;
    }
    for (size_t i = 0; i < cnt; i++) {
        if (leaf && expert_leaf(nm[i].name) != leaf)
            continue;
        dsv4_vt_name *x = &w->names[w->n_names++];
        memset(x, 0, sizeof *x);
        snprintf(x->name, sizeof x->name, "%s", nm[i].name);
        x->lin = li;
        x->required = !alternative(x->name);
        x->quantized = l->stored.kind != DSV4_VT_UNQUANT;
        x->fit = l->fit;
    }
    free(nm);
    return 0;
}

/* Sorts the names and merges duplicates (a fused module's name comes from both halves). */
static void merge_names(dsv4_vt_view *w)
{
    if (!w->n_names)
        return;
    qsort(w->names, w->n_names, sizeof *w->names, cmp_name);
    size_t o = 0;
    for (size_t i = 1; i < w->n_names; i++) {
        dsv4_vt_name *a = &w->names[o], *b = &w->names[i];
        if (strcmp(a->name, b->name)) {
            w->names[++o] = *b;
            continue;
        }
        a->required |= b->required;
        if (a->quantized != b->quantized || a->fit != b->fit)
            a->conflict = 1;
    }
    w->n_names = o + 1;
}

static int open_linears(const dsv4_vctx *v, dsv4_vt_view *w)
{
    const dsv4_inventory *inv = v->inv;
    size_t cap = 0;
    w->lin = calloc(inv->n ? inv->n : 1, sizeof *w->lin);
    if (!w->lin)
        return -1;
    for (size_t i = 0; i < inv->n; i++) {
        const dsv4_inv_tensor *t = &inv->t[i];
        size_t len = strlen(t->name);
        if (t->role == DSV4_ROLE_SCALE || len <= 7 || len - 7 >= DSV4_NAME_MAX || strcmp(t->name + len - 7, ".weight"))
            continue;
        dsv4_vt_linear *l = &w->lin[w->n_lin];
        memset(l, 0, sizeof *l);
        snprintf(l->module, sizeof l->module, "%.*s", (int)(len - 7), t->name);
        l->kind = dsv4_module_kind(l->module);
        if (l->kind == DSV4_MOD_OTHER)
            continue;
        w->n_lin++;
        l->is_mtp = t->is_mtp;
        l->m = dsv4_side_module(&v->art, l->module);
        if (l->m && !l->m->is_module)
            l->m = NULL;
        l->stored = l->m ? dsv4_vt_stored(l->m) : (dsv4_vt_scheme){DSV4_VT_UNQUANT, DSV4_VT_ST_NONE, 0, 0};
        /* The config must describe the artifact as it should be: the layers vLLM always builds
         * unquantized and, in a compressed-tensors artifact, the MTP block are BF16 whatever is
         * stored (compressor-unquantized and the mtp rules report and repair the tensors). */
        if (l->kind == DSV4_MOD_ULINEAR || l->is_mtp)
            l->stored = (dsv4_vt_scheme){DSV4_VT_UNQUANT, DSV4_VT_ST_NONE, 0, 0};
        for (size_t k = 0; k < w->n_groups; k++)
            if (dsv4_vt_fits(l->stored, w->g[k].args))
                l->fit |= (uint64_t)1 << k;
        if (l->m && l->stored.kind != DSV4_VT_UNKNOWN && add_names(v, w, w->n_lin - 1, &cap))
            return -1;
    }
    merge_names(w);
    return 0;
}

int dsv4_vt_view_open(const dsv4_vctx *v, dsv4_vt_view *w, char *why, size_t cap)
{
    memset(w, 0, sizeof *w);
    if (!v->is_ct) {
        const char *qm = v->qc ? json_string_value(json_object_get(v->qc, "quant_method")) : NULL;
        snprintf(why, cap, "not a compressed-tensors artifact (quantization_config.quant_method %s%s%s)",
                 qm ? "\"" : "", qm ? qm : "absent", qm ? "\"" : "");
        return 1;
    }
    if (!v->model || !v->inv) {
        snprintf(why, cap, "no usable model config (see config-readable), so the module names are unknown");
        return 1;
    }
    w->qc = v->qc;
    int rc = open_groups(v->qc, w, why, cap);
    if (!rc)
        rc = open_linears(v, w) ? -1 : 0;
    if (rc)
        dsv4_vt_view_free(w);
    return rc;
}
