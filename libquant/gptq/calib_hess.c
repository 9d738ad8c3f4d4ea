/* The Hessians of the layer being calibrated (calib_internal.h): one per input site a module
 * reads, accumulated by the calibration taps on the backend (kernels/ops.h hess_acc: running
 * 2/n Σ x xᵀ in fp32), and their save / load for reuse across packs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gptq/calib_internal.h"
#include "io/checkpoint.h"
#include "io/st_write.h"

hent *calib_hess_find(clayer *L, dsv4_tap_site site, int expert, int grp)
{
    for (size_t i = 0; i < L->n_hs; i++)
        if (L->hs[i].site == site && L->hs[i].expert == expert && L->hs[i].grp == grp)
            return &L->hs[i];
    return NULL;
}

static int add(clayer *L, dsv4_tap_site site, int expert, int grp, int64_t cols, dsv4_err *e)
{
    hent *h = calib_hess_find(L, site, expert, grp);
    if (h)
        return h->cols == cols ? 0 : dsv4_fail(e, "layer %d: tap site %d read with %lld and %lld columns", L->id,
                                               (int)site, (long long)h->cols, (long long)cols);
    hent *t = realloc(L->hs, (L->n_hs + 1) * sizeof *t);
    if (!t)
        return dsv4_fail_rt(e, "out of memory");
    L->hs = t;
    h = &L->hs[L->n_hs];
    *h = (hent){.site = site, .expert = expert, .grp = grp, .cols = cols};
    dsv4_ops *o = L->m->ops;
    if (!(h->H = o->alloc(o, (size_t)(cols * cols) * sizeof(float), e)))
        return dsv4_wrap(e, "layer %d: Hessian [%lld, %lld]", L->id, (long long)cols, (long long)cols);
    L->n_hs++;
    return 0;
}

int calib_hess_init(clayer *L, dsv4_err *e)
{
    for (size_t i = 0; i < L->n_mods; i++) {
        const cmod *c = &L->mods[i];
        int64_t K = c->job->cols;
        for (int g = 0; g < c->groups; g++) {
            int x = c->expert;
            if (c->site == DSV4_TAP_EXPERT_IN && L->mode[x] == DSV4_TAP_ALL_TOKENS)
                x = DSV4_TAP_EXPERT_ALL;
            if (add(L, c->site, x, g, K, e))
                return -1;
        }
    }
    return 0;
}

void calib_hess_free(clayer *L)
{
    dsv4_ops *o = L->m->ops;
    for (size_t i = 0; i < L->n_hs; i++)
        o->free(o, L->hs[i].H);
    free(L->hs);
    L->hs = NULL;
    L->n_hs = 0;
}

int calib_hess_reset_all_tokens(clayer *L, dsv4_err *e)
{
    dsv4_ops *o = L->m->ops;
    for (size_t i = 0; i < L->n_mods; i++) {
        const cmod *c = &L->mods[i];
        if (c->expert < 0 || L->mode[c->expert] != DSV4_TAP_ALL_TOKENS)
            continue;
        int x = c->site == DSV4_TAP_EXPERT_IN ? DSV4_TAP_EXPERT_ALL : c->expert;
        hent *h = calib_hess_find(L, c->site, x, 0);
        if (!h) { /* new entries start zeroed */
            if (add(L, c->site, x, 0, c->job->cols, e))
                return -1;
        } else if (h->n > 0) { /* the routed-token Hessian of the first pass */
            o->free(o, h->H);
            if (!(h->H = o->alloc(o, (size_t)(h->cols * h->cols) * sizeof(float), e)))
                return -1;
            h->n = 0;
        }
    }
    return 0;
}

static int tap(void *ud, int layer, dsv4_tap_site site, int expert, const float *x, int64_t rows, int64_t cols,
               dsv4_err *e)
{
    clayer *L = ud;
    dsv4_ops *o = L->m->ops;
    (void)layer;
    if (site == DSV4_TAP_WO_A) {
        int64_t G = L->m->cfg.o_groups;
        for (int64_t g = 0; g < G; g++) {
            hent *h = calib_hess_find(L, site, -1, (int)g);
            if (h && o->hess_acc(o, x + g * cols, rows / G, cols, G * cols, h->H, &h->n, e))
                return -1;
        }
        return 0;
    }
    if ((site == DSV4_TAP_EXPERT_IN || site == DSV4_TAP_EXPERT_W2) && expert >= 0 &&
        L->mode[expert] == DSV4_TAP_SKIP)
        return 0;
    hent *h = calib_hess_find(L, site, expert, 0);
    return h ? o->hess_acc(o, x, rows, cols, cols, h->H, &h->n, e) : 0;
}

void calib_taps(clayer *L, dsv4_taps *t)
{
    unsigned sites = 0;
    for (size_t i = 0; i < L->n_mods; i++)
        sites |= DSV4_TAP_BIT(L->mods[i].site);
    *t = (dsv4_taps){.ud = L, .fn = tap, .sites = sites, .expert_mode = L->mode,
                     .routed_counts = L->collecting_counts ? L->tokens : NULL};
}

/* ---- saved Hessians: dir/layer-NNN/ with one F32 tensor per Hessian and hessians.json ---- */

static void hname(const hent *h, char *out, size_t n)
{
    if (h->expert == DSV4_TAP_EXPERT_ALL)
        snprintf(out, n, "site%d.all.g%d", (int)h->site, h->grp);
    else
        snprintf(out, n, "site%d.e%d.g%d", (int)h->site, h->expert, h->grp);
}

int calib_hess_save(clayer *L, const char *dir, dsv4_err *e)
{
    char path[4096];
    calib_layer_dir(dir, &L->m->cfg, L->id, path, sizeof path);
    dsv4_ops *o = L->m->ops;
    dsv4_st_plan sp;
    dsv4_st_plan_init(&sp, 0, 0);
    json_t *meta = json_object(), *ns = json_object(), *tok = json_array(), *modes = json_array();
    json_object_set_new(meta, "rows", ns);
    json_object_set_new(meta, "tokens", tok);
    json_object_set_new(meta, "modes", modes);
    int64_t E = L->m->cfg.n_routed_experts;
    for (int64_t x = 0; x < E; x++) {
        json_array_append_new(tok, json_integer((json_int_t)L->tokens[x]));
        json_array_append_new(modes, json_integer(L->mode[x]));
    }
    float **host = calloc(L->n_hs + 1, sizeof *host);
    int rc = host ? 0 : dsv4_fail_rt(e, "out of memory");
    for (size_t i = 0; i < L->n_hs && rc == 0; i++) {
        hent *h = &L->hs[i];
        char nm[96];
        hname(h, nm, sizeof nm);
        int64_t shape[2] = {h->cols, h->cols};
        size_t b = (size_t)(h->cols * h->cols) * sizeof(float);
        json_object_set_new(ns, nm, json_real(h->n));
        if (!(host[i] = malloc(b + 4)))
            rc = dsv4_fail_rt(e, "out of memory");
        else
            rc = o->download(o, host[i], h->H, b, e) || dsv4_st_plan_add(&sp, nm, DSV4_F32, 2, shape, e) ? -1 : 0;
    }
    dsv4_st_writer *w = NULL;
    if (rc == 0)
        rc = dsv4_st_plan_finish(&sp, e) || dsv4_st_writer_open(&w, &sp, path, NULL, e) ? -1 : 0;
    for (size_t i = 0; i < L->n_hs && rc == 0; i++)
        rc = dsv4_st_writer_put(w, i, host[i], sp.tensors[i].nbytes, e);
    char *s = rc == 0 ? json_dumps(meta, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
    if (rc == 0 && (!s || dsv4_st_writer_add_file(w, "hessians.json", s, strlen(s), e)))
        rc = s ? -1 : dsv4_fail_rt(e, "out of memory");
    if (w)
        rc = rc ? (dsv4_st_writer_abort(w), -1) : dsv4_st_writer_close(w, e);
    free(s);
    for (size_t i = 0; host && i < L->n_hs; i++)
        free(host[i]);
    free(host);
    json_decref(meta);
    dsv4_st_plan_free(&sp);
    return rc;
}

int calib_hess_load(clayer *L, const char *dir, dsv4_err *e)
{
    char path[4096], jp[4200];
    calib_layer_dir(dir, &L->m->cfg, L->id, path, sizeof path);
    snprintf(jp, sizeof jp, "%s/hessians.json", path);
    dsv4_ckpt c;
    char *buf = NULL;
    size_t len;
    if (dsv4_ckpt_open(path, 0, &c, e))
        return dsv4_wrap(e, "saved Hessians of layer %d", L->id);
    json_t *meta = NULL;
    int rc = dsv4_read_file(jp, 1u << 30, &buf, &len, e);
    json_error_t je;
    if (rc == 0 && !(meta = json_loadb(buf, len, 0, &je)))
        rc = dsv4_fail(e, "%s:%d: %s", jp, je.line, je.text);
    json_t *ns = meta ? json_object_get(meta, "rows") : NULL, *tok = meta ? json_object_get(meta, "tokens") : NULL;
    json_t *modes = meta ? json_object_get(meta, "modes") : NULL;
    size_t E = (size_t)L->m->cfg.n_routed_experts;
    if (rc == 0 && (!json_is_object(ns) || !json_is_array(tok) || !json_is_array(modes) || json_array_size(tok) != E ||
                    json_array_size(modes) != E))
        rc = dsv4_fail(e, "%s: expected {\"rows\": {...}, \"tokens\": [%zu counts], \"modes\": [%zu modes]}", jp, E, E);
    for (size_t x = 0; rc == 0 && x < E; x++) {
        L->tokens[x] = (int64_t)json_integer_value(json_array_get(tok, x));
        json_int_t md = json_integer_value(json_array_get(modes, x));
        if (md < DSV4_TAP_ROUTED || md > DSV4_TAP_SKIP)
            rc = dsv4_fail(e, "%s: modes[%zu] = %lld: expected 0, 1 or 2", jp, x, (long long)md);
        L->mode[x] = (uint8_t)md;
    }
    if (rc == 0)
        rc = calib_hess_init(L, e);
    dsv4_ops *o = L->m->ops;
    for (size_t i = 0; i < L->n_hs && rc == 0; i++) {
        hent *h = &L->hs[i];
        char nm[96];
        hname(h, nm, sizeof nm);
        const dsv4_tensor *t = dsv4_ckpt_find(&c, nm);
        json_t *nv = json_object_get(ns, nm);
        if (!t || t->dtype != DSV4_F32 || t->ndim != 2 || t->shape[0] != h->cols || t->shape[1] != h->cols || !json_is_number(nv))
            rc = dsv4_fail(e, "%s: no Hessian %s [%lld, %lld] F32 with its row count (the Hessians were saved for "
                           "other targets or another expert policy)", path, nm, (long long)h->cols, (long long)h->cols);
        else {
            h->n = json_number_value(nv);
            rc = o->upload(o, h->H, t->data, dsv4_tensor_nbytes(t), e);
        }
    }
    json_decref(meta);
    free(buf);
    dsv4_ckpt_close(&c);
    return rc;
}
