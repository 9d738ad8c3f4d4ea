/* The GPTQ calibration walk (calib.h): data, work folder identity, the layers in order with their
 * calibration, fallback and propagation passes, the MTP block on the main model's final streams. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <errno.h>
#include <sys/stat.h>

#include "artifact/convert_job.h"
#include "eval/data.h"
#include "io/atomic.h"
#include "gptq/calib_internal.h"
#include "io/manifest.h"
#include "util/clock.h"

typedef struct walk {
    const dsv4_calib_opts *o;
    const dsv4_recipe *r;
    const dsv4_plan *p;
    dsv4_model m;
    dsv4_eval_data d;
    int64_t S, T, width;         /* samples, tokens per sample, floats per token (hc·d) */
    float *X;                    /* host [S, T, hc, d]: the streams entering the current layer */
    float *Xb;                   /* backend [T, hc, d] */
    int64_t *pos;
    json_t *report;
} walk;

/* The data: --calib-data as given; the recipe's calibration.data from the recipe file's folder
 * when relative (a recipe names its data as it names nothing else: wherever it is run from); else
 * the source's calib.tokens.safetensors. */
static const char *data_path(const walk *w, const char *src, char *buf, size_t n)
{
    const char *d = w->r->calib_data;
    if (w->o->data)
        return w->o->data;
    if (d[0] == '/')
        return d;
    if (d[0]) {
        const char *slash = strrchr(w->r->path, '/');
        if (!slash)
            return d;
        snprintf(buf, n, "%.*s/%s", (int)(slash - w->r->path), w->r->path, d);
        return buf;
    }
    snprintf(buf, n, "%s/calib.tokens.safetensors", src);
    return access(buf, R_OK) == 0 ? buf : NULL;
}

/* GPTQ jobs of layer `id`; *hess: those that need Hessians (all but NVFP4 jobs whose source
 * converts exactly, which keep the exact conversion; saving Hessians wants them all). */
static int jobs_in(const dsv4_plan *p, const dsv4_recipe *r, const dsv4_calib_opts *o, const dsv4_config *c, int id,
                   int *hess)
{
    char layer[32];
    calib_layer_name(c, id, layer, sizeof layer);
    int n = 0;
    *hess = 0;
    for (size_t i = 0; i < p->n; i++)
        if (calib_job_in(&p->jobs[i], r, layer)) {
            n++;
            *hess += o->save_hessians || !dsv4_job_nvfp4_exact(&p->jobs[i]);
        }
    return n;
}

/* One pass of every sample through layer L: the taps (or none), and the streams written back
 * when `keep` (propagation). The MTP block reads the main model's final streams and the next
 * tokens (T - 1 positions). */
static int pass(walk *w, clayer *L, const dsv4_taps *taps, int keep, dsv4_err *e)
{
    dsv4_ops *o = w->m.ops;
    int mtp = L->id >= w->m.cfg.n_layers;
    int64_t T = mtp ? w->T - 1 : w->T;
    size_t bytes = (size_t)(T * w->width) * sizeof(float);
    for (int64_t s = 0; s < w->S; s++) {
        float *Xs = w->X + s * w->T * w->width;
        const int32_t *ids = dsv4_data_row(&w->d, s) + mtp;
        if (mtp ? dsv4_mtp_input(&w->m, &L->w, Xs, ids, T, w->Xb, e) : o->upload(o, w->Xb, Xs, bytes, e))
            return -1;
        if (dsv4_layer_forward(&w->m, &L->w, NULL, w->Xb, ids, w->pos, T, taps, e))
            return -1;
        if (keep && o->download(o, Xs, w->Xb, bytes, e))
            return -1;
    }
    return 0;
}

static json_t *layer_report(const walk *w, clayer *L, int calibrated, double t_hess, double t_gptq)
{
    json_t *mods = json_array(), *tok = json_array(), *how = json_array();
    for (size_t i = 0; i < L->n_mods; i++) {
        const cmod *c = &L->mods[i];
        json_array_append_new(mods, json_pack("{s:s,s:s,s:f,s:f,s:i,s:b,s:I,s:f}", "name", c->stem, "how", c->how,
                                              "loss", c->loss, "damp", c->damp, "attempts", c->attempts,
                                              "rtn_fallback", c->rtn_fallback, "dead_columns", (json_int_t)c->dead,
                                              "seconds", c->seconds));
    }
    static const char *const names[] = {"routed", "all_tokens", "rtn"};
    for (int64_t x = 0; x < w->m.cfg.n_routed_experts; x++) {
        json_array_append_new(tok, json_integer((json_int_t)L->tokens[x]));
        json_array_append_new(how, json_string(calibrated ? names[L->mode[x] % 3] : "none"));
    }
    char name[32];
    calib_layer_name(&w->m.cfg, L->id, name, sizeof name);
    return json_pack("{s:s,s:o,s:{s:o,s:o},s:{s:f,s:f}}", "layer", name, "modules", mods, "experts", "tokens", tok,
                     "hessians", how, "seconds", "hessians", t_hess, "gptq", t_gptq);
}

/* Hessians of a layer not yet done: the calibration pass, the experts' fallback, or the saved ones. */
static int collect(walk *w, clayer *L, dsv4_err *e)
{
    const dsv4_recipe *r = w->r;
    int64_t E = w->m.cfg.n_routed_experts;
    if (w->o->load_hessians)
        return calib_hess_load(L, w->o->load_hessians, e);
    if (calib_hess_init(L, e))
        return -1;
    dsv4_taps t;
    L->collecting_counts = 1;
    calib_taps(L, &t);
    if (pass(w, L, &t, 0, e))
        return -1;
    L->collecting_counts = 0;
    if (r->calib_all_experts)
        return w->o->save_hessians ? calib_hess_save(L, w->o->save_hessians, e) : 0;
    int under = 0;
    for (size_t i = 0; i < L->n_mods; i++) {
        int x = L->mods[i].expert;
        if (x >= 0 && L->tokens[x] < r->calib_min_tokens && L->mode[x] == DSV4_TAP_ROUTED) {
            L->mode[x] = r->calib_fallback_rtn ? DSV4_TAP_SKIP : DSV4_TAP_ALL_TOKENS;
            under += !r->calib_fallback_rtn;
        }
    }
    if (under) { /* every token through the under-covered experts; the others sit this pass out */
        uint8_t *keep = malloc((size_t)E + 1);
        if (!keep)
            return dsv4_fail_rt(e, "out of memory");
        memcpy(keep, L->mode, (size_t)E);
        for (int64_t x = 0; x < E; x++)
            L->mode[x] = keep[x] == DSV4_TAP_ALL_TOKENS ? DSV4_TAP_ALL_TOKENS : DSV4_TAP_SKIP;
        int rc = calib_hess_reset_all_tokens(L, e);
        calib_taps(L, &t);
        t.sites = DSV4_TAP_BIT(DSV4_TAP_EXPERT_IN) | DSV4_TAP_BIT(DSV4_TAP_EXPERT_W2);
        if (rc == 0)
            rc = pass(w, L, &t, 0, e);
        memcpy(L->mode, keep, (size_t)E);
        free(keep);
        if (rc)
            return -1;
    }
    return w->o->save_hessians ? calib_hess_save(L, w->o->save_hessians, e) : 0;
}

/* Layer `id`: its modules quantized (Hessians collected first when `hess`; else every module
 * converts exactly) and stored, or replayed from the work folder; then the propagation pass. */
static int do_layer(walk *w, int id, int hess, int propagate, dsv4_err *e)
{
    int64_t E = w->m.cfg.n_routed_experts;
    clayer L = {.m = &w->m, .id = id};
    int rc = -1;
    double t0 = dsv4_now(), t1 = t0;
    L.tokens = calloc((size_t)E + 1, sizeof *L.tokens);
    L.mode = calloc((size_t)E + 1, 1);
    if (!L.tokens || !L.mode) {
        dsv4_fail_rt(e, "out of memory");
        goto out;
    }
    for (int64_t x = 0; x < E; x++)
        L.mode[x] = w->r->calib_all_experts ? DSV4_TAP_ALL_TOKENS : DSV4_TAP_ROUTED;
    if (dsv4_layer_w_load(w->m.src, id, w->m.ops, &L.w, e) || calib_modules(&L, w->p, w->r, e))
        goto out;
    int done = L.n_mods ? calib_layer_load(w->o->work_dir, &L, e) : 0;
    if (done < 0)
        goto out;
    if (L.n_mods && !done) {
        if (hess && collect(w, &L, e))
            goto out;
        t1 = dsv4_now();
        for (size_t i = 0; i < L.n_mods; i++) {
            cmod *c = &L.mods[i];
            if (c->expert >= 0 && L.mode[c->expert] == DSV4_TAP_SKIP)
                c->how = "rtn";
            else if (c->expert >= 0 && L.mode[c->expert] == DSV4_TAP_ALL_TOKENS)
                c->how = "gptq-all-tokens";
            if (calib_module_quantize(&L, i, e))
                goto out;
        }
        calib_hess_free(&L);
        json_t *rep = layer_report(w, &L, hess, t1 - t0, dsv4_now() - t1);
        int st = calib_layer_store(w->o->work_dir, &L, rep, e);
        json_decref(rep);
        if (st)
            goto out;
    }
    for (size_t i = 0; i < L.n_mods; i++)
        if (calib_module_swap(&L, i, e))
            goto out;
    if (propagate && pass(w, &L, NULL, 1, e))
        goto out;
    if (w->o->progress && L.n_mods)
        fprintf(stderr, "dsv4-quant: gptq layer %d: %zu modules %s (%.2f s)\n", id, L.n_mods,
                done ? "done before (resumed)" : "quantized", dsv4_now() - t0);
    rc = 0;
out:
    calib_hess_free(&L);
    calib_modules_free(&L);
    dsv4_layer_w_free(w->m.ops, &L.w);
    free(L.tokens);
    free(L.mode);
    return rc;
}

static void config_hash(const char *src, char hex[33])
{
    char cfg_path[4096], *buf;
    size_t n;
    dsv4_err ignored;
    hex[0] = 0;
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", src);
    if (dsv4_read_file(cfg_path, 1u << 26, &buf, &n, &ignored) == 0) {
        dsv4_hash128_hex(dsv4_xxh128(buf, n), hex);
        free(buf);
    }
}

/* The saved Hessians' folder: source.json names the source config they were collected on; saving
 * creates the folder (or adds to one made from the same source), loading checks it. */
static int hessian_dir(const char *dir, const char *src, int save, dsv4_err *e)
{
    char hex[33], path[4096];
    config_hash(src, hex);
    snprintf(path, sizeof path, "%s/source.json", dir);
    json_t *want = json_pack("{s:s}", "source_config_xxh3_128", hex);
    char *s = json_dumps(want, JSON_SORT_KEYS);
    json_decref(want);
    if (!s)
        return dsv4_fail_rt(e, "out of memory");
    char *have = NULL;
    size_t n = 0;
    int rc = 0;
    if (access(path, F_OK) != 0) {
        if (!save)
            rc = dsv4_fail(e, "%s: no saved Hessians here (source.json is missing)", dir);
        else if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            rc = dsv4_fail_rt(e, "%s: cannot create the Hessian folder: %s", dir, strerror(errno));
        else
            rc = dsv4_atomic_write(path, s, strlen(s), e);
    } else if ((rc = dsv4_read_file(path, 1u << 20, &have, &n, e)) == 0 && (n != strlen(s) || memcmp(have, s, n))) {
        rc = dsv4_fail(e, "%s: these Hessians were collected on another source (its config.json differs)", path);
    }
    free(have);
    free(s);
    return rc;
}

static json_t *identity(const walk *w, const char *src)
{
    char hex[33], dhex[33];
    config_hash(src, hex);
    dsv4_hash128_hex(dsv4_xxh128(w->d.ids ? (const void *)w->d.ids : "", (size_t)(w->d.rows * (w->d.len + 1)) * sizeof(int32_t)), dhex);
    return json_pack("{s:i,s:s,s:s,s:s,s:I,s:I,s:s,s:s*}", "format", CALIB_FORMAT, "source_config_xxh3_128", hex,
                     "recipe_xxh3_128", w->r->hash, "data_xxh3_128", dhex, "samples", (json_int_t)w->S, "seq_len",
                     (json_int_t)w->T, "backend", w->m.ops->name, "hessians_from", w->o->load_hessians);
}

int dsv4_calib_run(const char *src_path, const dsv4_plan *p, const dsv4_recipe *r, const dsv4_calib_opts *o,
                   dsv4_gptq_store **out, dsv4_err *e)
{
    walk w = {.o = o, .r = r, .p = p};
    dsv4_ops *ops = dsv4_ops_by_name(o->device ? o->device : "auto", o->threads, e);
    if (!ops)
        return -1;
    int rc = -1, *hess = NULL; /* per layer: its modules that need Hessians */
    json_t *id = NULL;
    if (dsv4_model_open(src_path, ops, 0, &w.m, e))
        goto out_ops;
    const dsv4_config *c = &w.m.cfg;
    int total = 0, last = -1, last_hess = -1, exact = 0;
    if (!(hess = calloc((size_t)(c->n_layers + c->n_mtp) + 1, sizeof *hess))) {
        dsv4_fail_rt(e, "out of memory");
        goto out_model;
    }
    for (int i = 0; i < c->n_layers + c->n_mtp; i++) {
        int n = jobs_in(p, r, o, c, i, &hess[i]);
        total += n;
        exact += n - hess[i];
        last = n ? i : last;
        last_hess = hess[i] ? i : last_hess;
    }
    if (!total) {
        dsv4_fail(e, "%s: the plan has no GPTQ module", r->path);
        goto out_model;
    }
    /* No forward pass when no module needs Hessians (quantizing from saved ones, or every module
     * converts exactly); otherwise the streams run up to the last layer that needs them. */
    int forward = !o->load_hessians && last_hess >= 0;
    char buf[4096];
    const char *dp = forward ? data_path(&w, src_path, buf, sizeof buf) : NULL;
    int samples = o->samples > 0 ? o->samples : r->calib_samples, seq = o->seq_len > 0 ? o->seq_len : r->calib_seq_len;
    if (forward) {
        if (!dp) {
            dsv4_fail(e, "GPTQ needs calibration data: give --calib-data (token rows .safetensors with input_ids, or "
                         ".jsonl text), the recipe's calibration.data, or put calib.tokens.safetensors in %s", src_path);
            goto out_model;
        }
        dsv4_data_opts dopt = {.max_rows = samples, .max_len = seq - 1, .tokenizer = src_path, .vocab = c->vocab_size};
        if (seq < 2) {
            dsv4_fail(e, "calibration seq_len %d: need at least 2 tokens", seq);
            goto out_model;
        }
        if (dsv4_data_load(dp, &dopt, &w.d, e)) {
            if (!o->data && r->calib_data[0])
                dsv4_wrap(e, "calibration.data '%s' of %s (a relative path is taken from the recipe's folder)",
                          r->calib_data, r->path);
            goto out_model;
        }
        w.S = w.d.rows;
        w.T = w.d.len + 1;
    }
    w.width = c->hc_mult * c->hidden_size;
    id = identity(&w, src_path);
    if (!o->work_dir) {
        dsv4_fail(e, "GPTQ calibration needs a work folder");
        goto out_data;
    }
    if (calib_fingerprint(o->work_dir, id, e) ||
        (o->save_hessians && hessian_dir(o->save_hessians, src_path, 1, e)) ||
        (o->load_hessians && hessian_dir(o->load_hessians, src_path, 0, e)))
        goto out_data;
    if (o->progress && (forward || o->load_hessians))
        fprintf(stderr, "dsv4-quant: gptq: %d modules, %lld samples x %lld tokens from %s (asked %d x %d), backend %s\n",
                total, (long long)w.S, (long long)w.T, dp ? dp : o->load_hessians, samples, seq, ops->name);
    if (o->progress && exact)
        fprintf(stderr, "dsv4-quant: gptq: %d of %d modules convert to NVFP4 exactly and keep that conversion%s\n",
                exact, total, forward || o->load_hessians ? "" : " (no calibration pass)");
    if (forward) {
        w.X = malloc((size_t)(w.S * w.T * w.width) * sizeof(float) + 4);
        w.pos = malloc((size_t)w.T * sizeof(int64_t));
        w.Xb = ops->alloc(ops, (size_t)(w.T * w.width) * sizeof(float), e);
        if (!w.X || !w.pos || !w.Xb) {
            if (w.Xb)
                dsv4_fail_rt(e, "out of memory for the calibration streams (%lld x %lld x %lld floats)", (long long)w.S,
                             (long long)w.T, (long long)w.width);
            goto out_data;
        }
        for (int64_t t = 0; t < w.T; t++)
            w.pos[t] = t;
        for (int64_t s = 0; s < w.S; s++)
            if (dsv4_embed_streams(&w.m, dsv4_data_row(&w.d, s), w.T, w.Xb, e) ||
                ops->download(ops, w.X + s * w.T * w.width, w.Xb, (size_t)(w.T * w.width) * sizeof(float), e))
                goto out_data;
    }
    for (int i = 0; i <= last; i++)
        if (do_layer(&w, i, hess[i] > 0 && (forward || o->load_hessians), forward && i < last_hess && i < c->n_layers, e))
            goto out_data;
    if ((rc = dsv4_gptq_store_open(o->work_dir, out, e)) == 0 && dp) { /* the data, before the layers */
        json_t *rep = dsv4_gptq_store_report(*out), *layers = json_incref(json_object_get(rep, "layers"));
        json_object_del(rep, "layers");
        json_object_set_new(rep, "data", json_pack("{s:s,s:s,s:I,s:{s:i,s:i}}", "path", dp, "kind", w.d.kind,
                                                   "rows_available", (json_int_t)w.d.avail_rows, "asked", "samples",
                                                   samples, "seq_len", seq));
        json_object_set_new(rep, "layers", layers);
    }
out_data:
    free(w.X);
    free(w.pos);
    if (w.Xb)
        ops->free(ops, w.Xb);
    dsv4_data_free(&w.d);
out_model:
    free(hess);
    dsv4_model_close(&w.m);
out_ops:
    json_decref(id);
    dsv4_ops_release(ops);
    return rc;
}
