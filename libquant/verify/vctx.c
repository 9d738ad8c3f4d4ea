/* The verification context (vctx.h): opening the artifact and the source, the canonical view of
 * their names, the module view, the choice of model config, and running the rules. Results are
 * printed by vreport.c; fix ops are built by vctx_fix.c. */
#include "verify/vctx.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/names.h"
#include "util/json_in.h"
#include "verify/vt_targets.h"

static int starts(const char *s, const char *p)
{
    return !strncmp(s, p, strlen(p));
}

static int ends(const char *s, const char *p)
{
    size_t n = strlen(s), k = strlen(p);
    return n >= k && !strcmp(s + n - k, p);
}

/* transformers -> release for a name with a quantization suffix: map module + ".weight". */
static int from_hf(const char *name, char *out, size_t cap)
{
    dsv4_name_map m;
    if (dsv4_name_from_hf(name, &m) == DSV4_MAP_DIRECT) {
        snprintf(out, cap, "%s", m.name);
        return strcmp(out, name) != 0;
    }
    size_t ml;
    int p = dsv4_part_of(name, &ml);
    if (p < 0 || p == DSV4_PART_WEIGHT || ml + 8 >= DSV4_NAME_MAX)
        return 0;
    char w[DSV4_NAME_MAX];
    snprintf(w, sizeof w, "%.*s.weight", (int)ml, name);
    if (dsv4_name_from_hf(w, &m) != DSV4_MAP_DIRECT || !ends(m.name, ".weight"))
        return 0;
    snprintf(out, cap, "%.*s%s", (int)(strlen(m.name) - 7), m.name, name + ml);
    return strcmp(out, name) != 0;
}

static void replace_once(char *s, size_t cap, const char *from, const char *to)
{
    char *p = strstr(s, from);
    if (!p)
        return;
    char tail[512];
    snprintf(tail, sizeof tail, "%s", p + strlen(from));
    snprintf(p, cap - (size_t)(p - s), "%s%s", to, tail);
}

dsv4_canon dsv4_canonical_name(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s", name);
    if (from_hf(name, out, cap)) {
        /* `model.mtp.0.e_proj.weight` maps by dropping the prefix: a prefixed release name */
        if (!strncmp(name, "model.", 6) && !strcmp(out, name + 6))
            return DSV4_CANON_MODEL_PREFIX;
        return DSV4_CANON_HF;
    }
    dsv4_canon how = DSV4_CANON_SAME;
    if (starts(name, "model.") &&
        (starts(name + 6, "layers.") || starts(name + 6, "mtp.") || starts(name + 6, "embed.") ||
         starts(name + 6, "head.") || starts(name + 6, "norm.") || starts(name + 6, "hc_head_"))) {
        snprintf(out, cap, "%s", name + 6);
        how = DSV4_CANON_MODEL_PREFIX;
    }
    if (strstr(out, ".ffn.gate.e_score_correction_bias")) {
        replace_once(out, cap, ".ffn.gate.e_score_correction_bias", ".ffn.gate.bias");
        if (how == DSV4_CANON_SAME)
            how = DSV4_CANON_GATE_BIAS;
    }
    if (strstr(out, ".weight_scales_proj")) {
        replace_once(out, cap, ".weight_scales_proj", ".weights_proj");
        if (how == DSV4_CANON_SAME)
            how = DSV4_CANON_NAIVE_SUFFIX;
    }
    return how;
}

static int cmp_vt(const void *a, const void *b)
{
    return strcmp(((const dsv4_vtensor *)a)->name, ((const dsv4_vtensor *)b)->name);
}

static int cmp_vt_key(const void *k, const void *b)
{
    return strcmp(k, ((const dsv4_vtensor *)b)->name);
}

const dsv4_vtensor *dsv4_side_find(const dsv4_side *s, const char *name)
{
    return s->n ? bsearch(name, s->v, s->n, sizeof *s->v, cmp_vt_key) : NULL;
}

const dsv4_amod *dsv4_side_module(const dsv4_side *s, const char *module)
{
    return dsv4_astore_find(&s->st, module);
}

/* Number of main decoder layers the tensors show (1 + the largest N of `layers.N.`), 0 if none. */
static int layers_in_tensors(const dsv4_side *s)
{
    int n = 0;
    for (size_t i = 0; i < s->n; i++)
        if (starts(s->v[i].name, "layers.")) {
            int l = atoi(s->v[i].name + 7);
            if (l + 1 > n && l < DSV4_MAX_LAYERS)
                n = l + 1;
        }
    return n;
}

static int parse_model(dsv4_side *s, const json_t *cfg, dsv4_err *e)
{
    char *txt = json_dumps(cfg, JSON_COMPACT);
    if (!txt)
        return dsv4_fail_rt(e, "out of memory");
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", s->path);
    int rc = dsv4_config_parse(txt, strlen(txt), path, &s->cfg, e);
    free(txt);
    return rc;
}

/* The model config. When config.json disagrees with the tensors about the layer count (a config
 * saved with the MTP counted as a layer, transformers lists of the wrong length), the model is
 * read from a copy corrected to the tensors, so the other rules still see the right inventory;
 * the config rules report the disagreement. */
static void load_model(dsv4_side *s)
{
    dsv4_err e = {0};
    if (!s->config)
        return;
    int nt = layers_in_tensors(s);
    int ok = parse_model(s, s->config, &e) == 0;
    if (ok && (nt == 0 || s->cfg.n_layers == nt)) {
        s->have_model = 1;
    } else if (nt > 0) {
        json_t *c = json_deep_copy(s->config);
        static const char *const lists[] = {"layer_types", "mlp_layer_types", "compress_rates"};
        json_object_set_new(c, "num_hidden_layers", json_integer(nt));
        for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
            json_t *a = json_object_get(c, lists[i]);
            while (json_is_array(a) && json_array_size(a) > (size_t)nt)
                json_array_remove(a, json_array_size(a) - 1);
        }
        dsv4_err e2 = {0};
        if (parse_model(s, c, &e2) == 0) {
            s->have_model = 1;
            if (!ok)
                snprintf(s->config_problem, sizeof s->config_problem, "%.2000s", e.msg);
        } else if (!ok) {
            snprintf(s->config_problem, sizeof s->config_problem, "%.2000s", e.msg);
        }
        json_decref(c);
    } else {
        snprintf(s->config_problem, sizeof s->config_problem, "%.2000s", e.msg);
    }
    if (s->have_model && dsv4_inventory_build(&s->cfg, &s->inv, &e)) {
        s->have_model = 0;
        snprintf(s->config_problem, sizeof s->config_problem, "%.2000s", e.msg);
    }
}

static void load_config(dsv4_side *s)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", s->ck.dir);
    struct stat st;
    if (stat(path, &st)) {
        snprintf(s->config_problem, sizeof s->config_problem, "%s: no config.json", s->ck.dir);
        return;
    }
    char *buf = NULL;
    size_t len = 0;
    dsv4_err e = {0};
    if (dsv4_read_file(path, DSV4_MAX_CONFIG_BYTES, &buf, &len, &e) == 0) {
        s->config = dsv4_json_parse(buf, len, path, NULL, &e);
        if (s->config && !json_is_object(s->config)) {
            json_decref(s->config);
            s->config = NULL;
            snprintf(e.msg, sizeof e.msg, "%.1900s: the top level is not a JSON object", path);
        }
    }
    free(buf);
    if (!s->config)
        snprintf(s->config_problem, sizeof s->config_problem, "%.2000s", e.msg);
}

static int side_open(dsv4_side *s, const char *path, dsv4_err *e)
{
    memset(s, 0, sizeof *s);
    s->path = strdup(path);
    if (!s->path)
        return dsv4_fail_rt(e, "out of memory");
    if (dsv4_ckpt_open(path, DSV4_CKPT_LENIENT | DSV4_CKPT_SKIP_BAD, &s->ck, e))
        return -1;
    load_config(s);
    s->v = calloc(s->ck.n ? s->ck.n : 1, sizeof *s->v);
    dsv4_named_tensor *nt = calloc(s->ck.n ? s->ck.n : 1, sizeof *nt);
    if (!s->v || !nt) {
        free(nt);
        return dsv4_fail_rt(e, "out of memory");
    }
    for (size_t i = 0; i < s->ck.n; i++) {
        char buf[DSV4_NAME_MAX * 2];
        s->v[i].t = s->ck.by_name[i];
        s->v[i].how = dsv4_canonical_name(s->ck.by_name[i]->name, buf, sizeof buf);
        s->v[i].name = strdup(buf);
        if (!s->v[i].name) {
            free(nt);
            return dsv4_fail_rt(e, "out of memory");
        }
        s->n++;
    }
    qsort(s->v, s->n, sizeof *s->v, cmp_vt);
    for (size_t i = 0; i < s->n; i++)
        nt[i] = (dsv4_named_tensor){s->v[i].name, s->v[i].t};
    int rc = dsv4_astore_build(nt, s->n, &s->st, e);
    free(nt);
    if (rc)
        return -1;
    load_model(s);
    dsv4_layout_detect(&s->ck, s->config, &s->layout);
    return 0;
}

static void side_close(dsv4_side *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].name);
    free(s->v);
    dsv4_astore_free(&s->st);
    if (s->have_model)
        dsv4_inventory_free(&s->inv);
    json_decref(s->config);
    if (s->path)
        dsv4_ckpt_close(&s->ck);
    free(s->path);
    memset(s, 0, sizeof *s);
}

int dsv4_vctx_open(dsv4_vctx *v, const char *artifact, const char *source, dsv4_err *e)
{
    memset(v, 0, sizeof *v);
    if (side_open(&v->art, artifact, e))
        goto fail;
    if (source) {
        if (side_open(&v->src, source, e))
            goto fail;
        v->have_src = 1;
        if (v->src.ck.n_bad_shards) {
            dsv4_fail(e, "source %s: shard %s does not parse: %s", source, v->src.ck.bad_shards[0].file,
                      v->src.ck.bad_shards[0].why);
            goto fail;
        }
    }
    v->qc = v->art.config ? json_object_get(v->art.config, "quantization_config") : NULL;
    if (v->qc && !json_is_object(v->qc))
        v->qc = NULL;
    const char *qm = v->qc ? json_string_value(json_object_get(v->qc, "quant_method")) : NULL;
    v->is_ct = qm && !strcmp(qm, "compressed-tensors");
    if (v->art.have_model) {
        v->model = &v->art.cfg;
        v->inv = &v->art.inv;
    } else if (v->have_src && v->src.have_model) {
        v->model = &v->src.cfg;
        v->inv = &v->src.inv;
    }
    return 0;
fail:
    dsv4_vctx_close(v);
    return -1;
}

void dsv4_vctx_close(dsv4_vctx *v)
{
    side_close(&v->art);
    if (v->have_src)
        side_close(&v->src);
    for (size_t i = 0; i < v->n_results; i++)
        for (size_t k = 0; k < v->results[i].n_kept; k++)
            free(v->results[i].evidence[k]);
    free(v->results);
    dsv4_fix_list_free(&v->fixes);
    if (v->targets_view) {
        dsv4_vt_view_free(v->targets_view);
        free(v->targets_view);
    }
    memset(v, 0, sizeof *v);
}

static int in_list(const char *only, const char *id)
{
    size_t k = strlen(id);
    for (const char *p = only; p && *p;) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (n == k && !strncmp(p, id, k))
            return 1;
        p = c ? c + 1 : NULL;
    }
    return 0;
}

int dsv4_vctx_run(dsv4_vctx *v, const char *only, dsv4_err *e)
{
    size_t n;
    const dsv4_rule *const *all = dsv4_rules(&n);
    for (const char *p = only; p && *p;) {
        const char *c = strchr(p, ',');
        char id[96];
        snprintf(id, sizeof id, "%.*s", (int)(c ? (size_t)(c - p) : strlen(p)), p);
        if (!dsv4_rule_find(id))
            return dsv4_fail(e, "unknown rule '%s' (dsv4-verify --list-rules lists them)", id);
        p = c ? c + 1 : NULL;
    }
    v->results = calloc(n ? n : 1, sizeof *v->results);
    if (!v->results)
        return dsv4_fail_rt(e, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (only && !in_list(only, all[i]->id))
            continue;
        dsv4_rule_result *r = &v->results[v->n_results++];
        r->rule = all[i];
        v->cur = r;
        if (all[i]->needs_source && !v->have_src) {
            r->status = DSV4_RS_SKIP;
            snprintf(r->skip_reason, sizeof r->skip_reason, "needs --source");
            continue;
        }
        size_t before = v->fixes.n;
        all[i]->run(v, all[i]);
        r->n_fixes = v->fixes.n - before;
    }
    v->cur = NULL;
    return 0;
}

void dsv4_vctx_fail(dsv4_vctx *v, const char *fmt, ...)
{
    dsv4_rule_result *r = v->cur;
    if (!r)
        return;
    r->status = DSV4_RS_FAIL;
    r->n_found++;
    if (r->n_kept >= DSV4_VCTX_MAX_EVIDENCE)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *s = strdup(buf);
    if (s)
        r->evidence[r->n_kept++] = s;
}

void dsv4_vctx_skip(dsv4_vctx *v, const char *fmt, ...)
{
    dsv4_rule_result *r = v->cur;
    if (!r)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->skip_reason, sizeof r->skip_reason, fmt, ap);
    va_end(ap);
    if (r->status != DSV4_RS_FAIL)
        r->status = DSV4_RS_SKIP;
}

size_t dsv4_vctx_count(const dsv4_vctx *v, dsv4_severity sev)
{
    size_t n = 0;
    for (size_t i = 0; i < v->n_results; i++)
        n += v->results[i].status == DSV4_RS_FAIL && v->results[i].rule->severity == sev;
    return n;
}
