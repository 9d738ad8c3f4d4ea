/* One quantized module of the layer being calibrated (calib_internal.h): which plan job it is,
 * where its input is tapped, its weight in the loaded layer, its GPTQ (kernels/ops.h gptq on the
 * calibration backend) packed as the artifact stores it, and the swap of the quantized weight into
 * the layer for the propagation pass. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact/convert.h"
#include "artifact/convert_job.h"
#include "formats/fp.h"
#include "gptq/calib_internal.h"
#include "quant/pack.h"
#include "util/clock.h"

/* Input site and weight of a module, by its name after "layers.N." / "mtp.N.". */
static int locate(clayer *L, cmod *c, const char *sfx, dsv4_err *e)
{
    dsv4_layer_w *w = &L->w;
    static const struct { const char *name; dsv4_tap_site site; size_t off; } fixed[] = {
        {"attn.wq_a", DSV4_TAP_ATTN_IN, offsetof(dsv4_layer_w, attn.wq_a)},
        {"attn.wkv", DSV4_TAP_ATTN_IN, offsetof(dsv4_layer_w, attn.wkv)},
        {"attn.compressor.wkv", DSV4_TAP_ATTN_IN, offsetof(dsv4_layer_w, attn.c_wkv)},
        {"attn.compressor.wgate", DSV4_TAP_ATTN_IN, offsetof(dsv4_layer_w, attn.c_wgate)},
        {"attn.indexer.weights_proj", DSV4_TAP_ATTN_IN, offsetof(dsv4_layer_w, attn.i_wproj)},
        {"attn.indexer.compressor.wkv", DSV4_TAP_ATTN_IN, offsetof(dsv4_layer_w, attn.i_wkv)},
        {"attn.indexer.compressor.wgate", DSV4_TAP_ATTN_IN, offsetof(dsv4_layer_w, attn.i_wgate)},
        {"attn.wq_b", DSV4_TAP_Q_LORA, offsetof(dsv4_layer_w, attn.wq_b)},
        {"attn.indexer.wq_b", DSV4_TAP_Q_LORA, offsetof(dsv4_layer_w, attn.i_wq_b)},
        {"attn.wo_a", DSV4_TAP_WO_A, offsetof(dsv4_layer_w, attn.wo_a)},
        {"attn.wo_b", DSV4_TAP_WO_B, offsetof(dsv4_layer_w, attn.wo_b)},
        {"ffn.gate", DSV4_TAP_FFN_IN, offsetof(dsv4_layer_w, ffn.gate)},
        {"ffn.shared_experts.w1", DSV4_TAP_FFN_IN, offsetof(dsv4_layer_w, ffn.sh_w1)},
        {"ffn.shared_experts.w3", DSV4_TAP_FFN_IN, offsetof(dsv4_layer_w, ffn.sh_w3)},
        {"ffn.shared_experts.w2", DSV4_TAP_SHARED_W2, offsetof(dsv4_layer_w, ffn.sh_w2)},
    };
    c->expert = -1;
    c->groups = 1;
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        if (!strcmp(sfx, fixed[i].name)) {
            c->site = fixed[i].site;
            c->lin = (dsv4_lin *)((char *)w + fixed[i].off);
            if (c->site == DSV4_TAP_WO_A)
                c->groups = (int)L->m->cfg.o_groups;
            return 0;
        }
    int x, n = 0;
    char which[4] = {0};
    if (sscanf(sfx, "ffn.experts.%d.%3s%n", &x, which, &n) == 2 && sfx[n] == 0 && x >= 0 && x < w->ffn.n_experts) {
        c->expert = x;
        if (!strcmp(which, "w1") || !strcmp(which, "w3")) {
            c->site = DSV4_TAP_EXPERT_IN;
            c->lin = which[1] == '1' ? &w->ffn.w1[x] : &w->ffn.w3[x];
            return 0;
        }
        if (!strcmp(which, "w2")) {
            c->site = DSV4_TAP_EXPERT_W2;
            c->lin = &w->ffn.w2[x];
            return 0;
        }
    }
    return dsv4_fail(e, "%s: GPTQ is not available for this module (calibration taps the inputs of the attention "
                     "projections, the shared and the routed experts; keep it out of the GPTQ group or use "
                     "method: rtn)", c->stem);
}

void calib_layer_name(const dsv4_config *c, int id, char *out, size_t n)
{
    if (id < c->n_layers)
        snprintf(out, n, "layers.%d", id);
    else
        snprintf(out, n, "mtp.%d", id - c->n_layers);
}

int calib_job_in(const dsv4_plan_job *j, const dsv4_recipe *r, const char *layer)
{
    size_t n = strlen(layer);
    return dsv4_job_is_gptq(j, r) && !strncmp(j->out[0].name, layer, n) && j->out[0].name[n] == '.';
}

int calib_modules(clayer *L, const dsv4_plan *p, const dsv4_recipe *r, dsv4_err *e)
{
    char layer[32];
    calib_layer_name(&L->m->cfg, L->id, layer, sizeof layer);
    size_t np = strlen(layer) + 1; /* the module name after "layers.N." */
    for (size_t i = 0; i < p->n; i++) {
        const dsv4_plan_job *j = &p->jobs[i];
        if (!calib_job_in(j, r, layer))
            continue;
        if (j->kind != DSV4_JOB_INT4 && j->kind != DSV4_JOB_NVFP4)
            return dsv4_fail(e, "%s: GPTQ group '%s' plans a %s job; GPTQ packs INT4 and NVFP4", j->out[0].name,
                             r->groups[j->group].name, dsv4_job_kind_name(j->kind));
        cmod *t = realloc(L->mods, (L->n_mods + 1) * sizeof *t);
        if (!t)
            return dsv4_fail_rt(e, "out of memory");
        L->mods = t;
        cmod *c = &L->mods[L->n_mods];
        memset(c, 0, sizeof *c);
        const char *dot = strrchr(j->out[0].name, '.');
        snprintf(c->stem, sizeof c->stem, "%.*s", (int)(dot - j->out[0].name), j->out[0].name);
        c->job = j;
        c->g = &r->groups[j->group];
        L->n_mods++;
        if (locate(L, c, c->stem + np, e))
            return -1;
        if (c->lin->out != j->rows || c->lin->in != j->cols)
            return dsv4_fail(e, "%s: the plan has [%lld, %lld], the loaded layer [%lld, %lld]", c->stem,
                             (long long)j->rows, (long long)j->cols, (long long)c->lin->out, (long long)c->lin->in);
    }
    return 0;
}

void calib_modules_free(clayer *L)
{
    for (size_t i = 0; i < L->n_mods; i++)
        for (int k = 0; k < 3; k++)
            free(L->mods[i].out[k]);
    free(L->mods);
    L->mods = NULL;
    L->n_mods = 0;
}

hent *calib_module_hess(clayer *L, const cmod *c, int grp)
{
    int x = c->expert;
    if (c->site == DSV4_TAP_EXPERT_IN && L->mode && L->mode[x] == DSV4_TAP_ALL_TOKENS)
        x = DSV4_TAP_EXPERT_ALL;
    return calib_hess_find(L, c->site, x, grp);
}

/* The job's outputs by the plan's packer (round-to-nearest, or NVFP4's exact FP4 conversion). */
static int by_job(cmod *c, dsv4_err *e)
{
    dsv4_job_report rep;
    return dsv4_job_run(c->job, c->g, c->out, &rep, e);
}

/* GPTQ of rows [r0, r0 + n) of W (host fp32) with Hessian h: q and scale rows into qh / sh. */
static int gptq_rows(clayer *L, cmod *c, const hent *h, const float *W, int64_t r0, int64_t n, float gs, uint8_t *qh,
                     uint8_t *sh, dsv4_err *e)
{
    dsv4_ops *o = L->m->ops;
    int64_t K = c->job->cols;
    int nv = c->job->kind == DSV4_JOB_NVFP4, grp = nv ? 16 : (c->g->group_size > 0 ? c->g->group_size : 128);
    size_t sb = (size_t)(n * (K / grp)) * (nv ? 1 : 2);
    float *Wb = o->alloc(o, (size_t)(n * K) * sizeof(float), e), *Hb = Wb ? o->alloc(o, (size_t)(K * K) * sizeof(float), e) : NULL;
    uint8_t *qb = Hb ? o->alloc(o, (size_t)(n * K), e) : NULL, *sbuf = qb ? o->alloc(o, sb, e) : NULL;
    int rc = -1;
    if (!sbuf)
        goto out;
    if (o->upload(o, Wb, W + r0 * K, (size_t)(n * K) * sizeof(float), e) ||
        o->copy(o, Hb, h->H, (size_t)(K * K) * sizeof(float), e))
        goto out;
    dsv4_actorder ao = !strcmp(c->g->actorder, "static") ? DSV4_ACTORDER_STATIC
                       : !strcmp(c->g->actorder, "group") ? DSV4_ACTORDER_GROUP : DSV4_ACTORDER_NONE;
    dsv4_gptq_args a = {.W = Wb, .H = Hb, .N = n, .K = K, .fmt = nv ? DSV4_GPTQ_NVFP4 : DSV4_GPTQ_INT4, .group = grp,
                        .gscale = gs, .block = 128, .damp_frac = c->g->dampening_frac, .actorder = ao,
                        .observer = !strcmp(c->g->observer, "mse") ? DSV4_OBSERVER_MSE : DSV4_OBSERVER_MINMAX,
                        .recompute = c->g->recompute_scales, .q = qb, .scale = sbuf};
    if (!o->gptq) {
        dsv4_fail_rt(e, "%s: the %s backend has no GPTQ op", c->stem, o->name);
        goto out;
    }
    if (o->gptq(o, &a, e)) {
        dsv4_wrap(e, "%s", c->stem);
        goto out;
    }
    if (o->download(o, qh, qb, (size_t)(n * K), e) || o->download(o, sh, sbuf, sb, e))
        goto out;
    c->loss += a.loss;
    c->damp = a.damp_used > c->damp ? a.damp_used : c->damp;
    c->attempts += a.attempts;
    c->rtn_fallback |= a.rtn_fallback;
    c->dead += a.dead;
    rc = 0;
out:
    o->free(o, Wb);
    o->free(o, Hb);
    o->free(o, qb);
    o->free(o, sbuf);
    return rc;
}

int calib_module_quantize(clayer *L, size_t i, dsv4_err *e)
{
    cmod *c = &L->mods[i];
    const dsv4_plan_job *j = c->job;
    double t0 = dsv4_now();
    for (int k = 0; k < j->n_out; k++)
        if (!(c->out[k] = calloc(1, dsv4_plan_out_bytes(&j->out[k]) + 1)))
            return dsv4_fail_rt(e, "%s: out of memory", c->stem);
    int nv = j->kind == DSV4_JOB_NVFP4, exact = 0;
    float gs = 1.0f;
    if (nv && dsv4_job_nvfp4_scale(j, &exact, &gs, e))
        return -1;
    int have = 1;
    for (int g = 0; g < c->groups; g++) {
        const hent *h = calib_module_hess(L, c, g);
        have &= h && h->n > 0;
    }
    if (exact || !have || !strcmp(c->how ? c->how : "", "rtn")) {
        c->how = exact ? "exact" : "rtn";
        int rc = by_job(c, e);
        c->seconds = dsv4_now() - t0;
        return rc;
    }
    if (!c->how)
        c->how = "gptq";
    int64_t N = j->rows, K = j->cols, grp = nv ? 16 : (c->g->group_size > 0 ? c->g->group_size : 128);
    uint16_t *bf = malloc((size_t)(N * K) * 2 + 2);
    float *W = malloc((size_t)(N * K) * sizeof(float) + 4);
    uint8_t *q = malloc((size_t)(N * K) + 1), *s = malloc((size_t)(N * (K / grp)) * 2 + 2);
    int rc = -1;
    if (!bf || !W || !q || !s) {
        dsv4_fail_rt(e, "%s: out of memory", c->stem);
        goto out;
    }
    if (dsv4_source_bf16(j->src[0], j->src[1], bf, e))
        goto out;
    for (int64_t x = 0; x < N * K; x++)
        W[x] = dsv4_bf16_to_f32(bf[x]);
    int64_t rows = N / c->groups, sw = (K / grp) * (nv ? 1 : 2);
    for (int g = 0; g < c->groups; g++)
        if (gptq_rows(L, c, calib_module_hess(L, c, g), W, g * rows, rows, gs, q + g * rows * K, s + g * rows * sw, e))
            goto out;
    if (nv) {
        dsv4_nvfp4_pack(q, N, K, c->out[0]);
        memcpy(c->out[1], s, (size_t)(N * (K / 16)));
        memcpy(c->out[2], &gs, 4);
    } else {
        dsv4_int4_pack((const int8_t *)q, N, K, (int32_t *)c->out[0]);
        memcpy(c->out[1], s, (size_t)(N * (K / grp)) * 2);
        int64_t shape[2] = {N, K};
        memcpy(c->out[2], shape, sizeof shape);
    }
    rc = 0;
out:
    free(bf);
    free(W);
    free(q);
    free(s);
    c->seconds = dsv4_now() - t0;
    return rc;
}

int calib_module_swap(clayer *L, size_t i, dsv4_err *e)
{
    cmod *c = &L->mods[i];
    const dsv4_plan_job *j = c->job;
    dsv4_ops *o = L->m->ops;
    int nv = j->kind == DSV4_JOB_NVFP4;
    dsv4_lin h = {.out = j->rows, .in = j->cols, .fmt = nv ? DSV4_LW_NVFP4 : DSV4_LW_INT4,
                  .group = nv ? 0 : (int)(j->cols / j->out[1].shape[1]), .w = c->out[0], .s = c->out[1]};
    if (nv)
        memcpy(&h.gscale, c->out[2], 4);
    if (dsv4_lw_sizes(h.fmt, h.out, h.in, h.group, &h.w_bytes, &h.s_bytes))
        return dsv4_fail(e, "%s: quantized shape [%lld, %lld] does not fit %s", c->stem, (long long)h.out,
                         (long long)h.in, dsv4_lw_fmt_name(h.fmt));
    float *f = NULL;
    if (c->lin->fmt == DSV4_LW_F32) { /* the runner keeps this projection in fp32: its dequantized values */
        if (!(f = malloc((size_t)(h.out * h.in) * sizeof(float) + 4)))
            return dsv4_fail_rt(e, "out of memory");
        if (dsv4_lin_dequant_f32(&h, f, e)) {
            free(f);
            return -1;
        }
        h = (dsv4_lin){.out = j->rows, .in = j->cols, .fmt = DSV4_LW_F32, .w = f,
                       .w_bytes = (size_t)(j->rows * j->cols) * sizeof(float)};
    }
    o->lin_free(o, c->lin);
    int rc = o->lin_load(o, &h, c->lin, e);
    free(f);
    return rc;
}
