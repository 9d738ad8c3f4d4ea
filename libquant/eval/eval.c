/* The artifact-against-source comparison (eval.h), steps 1–3: the layer walk with per-layer
 * stream errors, the streamed logits metrics, and teacher-forced MTP acceptance. Step 4
 * (speculative decoding) is eval_spec.c. */
#include "eval/eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval_internal.h"
#include "util/clock.h"

double dsv4_eval_tf_rate(const dsv4_eval_mtp *m)
{
    return m->ran && m->tf_total > 0 ? (double)m->tf_accepted / (double)m->tf_total : NAN;
}

double dsv4_eval_spec_rate(const dsv4_eval_mtp *m)
{
    return m->spec_ran && m->spec_drafted > 0 ? (double)m->spec_accepted / (double)m->spec_drafted : NAN;
}

void dsv4_eval_result_free(dsv4_eval_result *r)
{
    free(r->layers);
    memset(r, 0, sizeof *r);
}

void ev_progress(const dsv4_eval_opts *o, const char *stage, int64_t done, int64_t total)
{
    if (o && o->progress)
        o->progress(o->progress_ctx, stage, done, total);
}

/* The two models must share every shape the comparison relies on. */
static int same_model(const dsv4_config *a, const dsv4_config *s, const char *art, const char *src, dsv4_err *e)
{
#define SAME(f)                                                                                                    \
    if (a->f != s->f)                                                                                              \
        return dsv4_fail(e, "%s and %s do not describe the same model: " #f " %lld in the artifact, %lld in the "  \
                         "source", art, src, (long long)a->f, (long long)s->f);
    SAME(vocab_size) SAME(hidden_size) SAME(n_layers) SAME(hc_mult)
#undef SAME
    for (int i = 0; i < a->n_layers; i++)
        if (a->compress_ratio[i] != s->compress_ratio[i])
            return dsv4_fail(e, "%s and %s do not describe the same model: layer %d has compress ratio %d in the "
                             "artifact, %d in the source", art, src, i, a->compress_ratio[i], s->compress_ratio[i]);
    return 0;
}

/* Opens one model for the walk: globals and, when it has one, its MTP block. A block that does not
 * load is recorded (why) and the model is reopened without it. */
static int open_walk(const char *path, dsv4_ops *ops, ev_side *sd, dsv4_err *e)
{
    dsv4_config c;
    if (dsv4_config_load(path, &c, e))
        return -1;
    if (c.n_mtp < 1) {
        snprintf(sd->mtp->why, sizeof sd->mtp->why, "%s: config.json declares no MTP block", path);
        sd->open = dsv4_model_open(path, ops, 0, &sd->m, e) == 0;
        return sd->open ? 0 : -1;
    }
    dsv4_err me = {{0}, 0};
    if (dsv4_model_open(path, ops, DSV4_LOAD_MTP, &sd->m, &me) == 0) {
        sd->mtp->ran = sd->open = 1;
        return 0;
    }
    if (me.code != DSV4_EXIT_BADINPUT) {
        *e = me;
        return -1;
    }
    snprintf(sd->mtp->why, sizeof sd->mtp->why, "%.590s", me.msg);
    sd->open = dsv4_model_open(path, ops, 0, &sd->m, e) == 0;
    return sd->open ? 0 : -1;
}

/* Host view of backend floats: the pointer itself on the CPU backend, else a download into buf. */
static const float *host_view(dsv4_ops *o, const float *p, int64_t n, float *buf, dsv4_err *e)
{
    if (o->on_host)
        return p;
    return o->download(o, buf, p, (size_t)n * sizeof(float), e) ? NULL : buf;
}

/* Step 1: every row through each layer of both models; stream errors per layer. */
static int walk(ev_ctx *c, dsv4_err *e)
{
    const dsv4_config *cf = &c->a.m.cfg;
    dsv4_ops *o = c->ops;
    int64_t L = c->d->len, sd = cf->hc_mult * cf->hidden_size;
    for (int64_t r = 0; r < c->d->rows; r++)
        for (int k = 0; k < 2; k++)
            if (dsv4_embed_streams(&c->side[k]->m, dsv4_data_row(c->d, r), L, c->side[k]->X + r * L * sd, e))
                return -1;
    for (int l = 0; l < cf->n_layers; l++) {
        dsv4_layer_w w[2];
        memset(w, 0, sizeof w);
        int rc = 0;
        for (int k = 0; k < 2 && !rc; k++)
            rc = dsv4_layer_w_load(c->side[k]->m.src, l, o, &w[k], e);
        dsv4_relerr_acc acc = {0};
        for (int64_t r = 0; r < c->d->rows && !rc; r++) {
            for (int k = 0; k < 2 && !rc; k++)
                rc = dsv4_layer_forward(&c->side[k]->m, &w[k], NULL, c->side[k]->X + r * L * sd,
                                        dsv4_data_row(c->d, r), c->pos, L, NULL, e);
            const float *xa = rc ? NULL : host_view(o, c->a.X + r * L * sd, L * sd, c->hbuf[0], e);
            const float *xs = xa ? host_view(o, c->s.X + r * L * sd, L * sd, c->hbuf[1], e) : NULL;
            if (!xs)
                rc = -1;
            else
                dsv4_relerr_add(&acc, xa, xs, L, sd);
        }
        for (int k = 0; k < 2; k++)
            dsv4_layer_w_free(o, &w[k]);
        if (rc) {
            dsv4_wrap(e, "layer %d", l);
            return -1;
        }
        dsv4_eval_layer *ly = &c->r->layers[l];
        ly->id = l;
        ly->type = dsv4_config_attn(cf, l);
        ly->is_hash = cf->is_hash[l];
        ly->rel_rms = dsv4_relerr_value(&acc);
        ly->max_row = acc.nonfinite ? INFINITY : acc.max_row;
        ly->nonfinite = acc.nonfinite;
        ev_progress(c->o, "layers", l + 1, cf->n_layers);
    }
    return 0;
}

/* Step 2: logits of both models, chunk by chunk, into the metrics; main argmaxes kept per side. */
static int logits_pass(ev_ctx *c, dsv4_kld_acc *acc, dsv4_err *e)
{
    const dsv4_config *cf = &c->a.m.cfg;
    dsv4_ops *o = c->ops;
    int64_t L = c->d->len, sd = cf->hc_mult * cf->hidden_size, V = cf->vocab_size;
    for (int64_t r = 0; r < c->d->rows; r++) {
        const int32_t *row = dsv4_data_row(c->d, r);
        for (int64_t p0 = 0; p0 < L; p0 += c->chunk) {
            int64_t T = L - p0 < c->chunk ? L - p0 : c->chunk;
            for (int k = 0; k < 2; k++)
                if (dsv4_head_logits(&c->side[k]->m, NULL, c->side[k]->X + (r * L + p0) * sd, T, c->dlog, e) ||
                    o->download(o, c->side[k]->logits, c->dlog, (size_t)(T * V) * sizeof(float), e))
                    return -1;
            for (int64_t t = 0; t < T; t++) {
                const float *qa = c->a.logits + t * V, *qs = c->s.logits + t * V;
                if (dsv4_kld_add(acc, qa, qs, V, row[p0 + t + 1], e))
                    return dsv4_wrap(e, "%s: row %lld", c->d->path, (long long)(r + c->d->offset));
                c->a.amax[r * L + p0 + t] = (int32_t)acc->top_q; /* the pass above found them */
                c->s.amax[r * L + p0 + t] = (int32_t)acc->top_base;
            }
        }
        ev_progress(c->o, "logits", r + 1, c->d->rows);
    }
    return 0;
}

/* Step 3 for one side: MTP(p) on (streams p, token p+1) against the main argmax at p+1. */
static int mtp_teacher_forced(ev_ctx *c, ev_side *sd, dsv4_err *e)
{
    const dsv4_config *cf = &sd->m.cfg;
    dsv4_ops *o = c->ops;
    int64_t L = c->d->len, w = cf->hc_mult * cf->hidden_size, V = cf->vocab_size, P = L - 1;
    if (!sd->mtp->ran || P < 1)
        return 0;
    dsv4_seq s;
    if (dsv4_seq_init(&sd->m, L, c->chunk, &s, e))
        return -1;
    int rc = 0;
    for (int64_t r = 0; r < c->d->rows && !rc; r++) {
        const int32_t *row = dsv4_data_row(c->d, r);
        const float *H = host_view(o, sd->X + r * L * w, L * w, c->hbuf[0], e);
        if (!H) {
            rc = -1;
            break;
        }
        dsv4_seq_reset(&s);
        for (int64_t p0 = 0; p0 < P && !rc; p0 += c->chunk) {
            int64_t T = P - p0 < c->chunk ? P - p0 : c->chunk;
            rc = dsv4_mtp_forward(&s, H + p0 * w, row + p0 + 1, T, sd->logits, e);
            for (int64_t t = 0; t < T && !rc; t++) {
                int64_t p = p0 + t;
                sd->mtp->tf_accepted += dsv4_argmax(sd->logits + t * V, V) == sd->amax[r * L + p + 1];
                sd->mtp->tf_total++;
            }
        }
        ev_progress(c->o, "mtp", r + 1, c->d->rows);
    }
    dsv4_seq_free(&s);
    return rc;
}

static void side_free(dsv4_ops *o, ev_side *sd)
{
    if (sd->X)
        o->free(o, sd->X);
    free(sd->logits);
    free(sd->amax);
    if (sd->open)
        dsv4_model_close(&sd->m);
    sd->X = sd->logits = NULL;
    sd->amax = NULL;
    sd->open = 0;
}

int dsv4_eval_run(const char *artifact, const char *source, const dsv4_eval_data *d, const dsv4_eval_opts *o,
                  dsv4_eval_result *r, dsv4_err *e)
{
    memset(r, 0, sizeof *r);
    double t0 = dsv4_now();
    ev_ctx c;
    memset(&c, 0, sizeof c);
    c.d = d;
    c.o = o;
    c.r = r;
    c.a.mtp = &r->art;
    c.s.mtp = &r->src;
    c.side[0] = &c.a;
    c.side[1] = &c.s;
    r->rows = d->rows;
    r->len = d->len;
    r->offset = d->offset;
    if (!(c.ops = dsv4_ops_by_name(o && o->device ? o->device : "auto", o ? o->threads : 0, e)))
        return -1;
    snprintf(r->device, sizeof r->device, "%s", c.ops->name);
    int rc = -1;
    dsv4_kld_acc acc;
    dsv4_kld_init(&acc);
    if (open_walk(artifact, c.ops, &c.a, e) || open_walk(source, c.ops, &c.s, e) ||
        same_model(&c.a.m.cfg, &c.s.m.cfg, artifact, source, e))
        goto out;
    const dsv4_config *cf = &c.a.m.cfg;
    int64_t L = d->len, sd = cf->hc_mult * cf->hidden_size, V = cf->vocab_size;
    for (int64_t i = 0; i < d->rows * (L + 1); i++)
        if (d->ids[i] >= V) {
            dsv4_fail(e, "%s: token id %d is outside the model's vocabulary [0, %lld)", d->path, d->ids[i],
                      (long long)V);
            goto out;
        }
    /* positions of one chunk of logits: at most 2^22 floats (16 MiB) per model, at most the row */
    c.chunk = (1 << 22) / V;
    c.chunk = c.chunk < 1 ? 1 : c.chunk > 128 ? 128 : c.chunk;
    if (c.chunk > L)
        c.chunk = L;
    r->n_layers = cf->n_layers;
    c.pos = malloc((size_t)L * sizeof *c.pos);
    r->layers = calloc((size_t)cf->n_layers, sizeof *r->layers);
    int mem_ok = c.pos && r->layers;
    for (int k = 0; k < 2; k++) {
        ev_side *s = c.side[k];
        s->logits = malloc((size_t)(c.chunk * V) * sizeof(float));
        s->amax = malloc((size_t)(d->rows * L) * sizeof(int32_t));
        c.hbuf[k] = c.ops->on_host ? NULL : malloc((size_t)(L * sd) * sizeof(float));
        mem_ok = mem_ok && s->logits && s->amax && (c.ops->on_host || c.hbuf[k]);
    }
    if (!mem_ok) {
        dsv4_fail_rt(e, "out of memory for %lld rows of %lld positions", (long long)d->rows, (long long)L);
        goto out;
    }
    for (int k = 0; k < 2; k++)
        if (!(c.side[k]->X = c.ops->alloc(c.ops, (size_t)(d->rows * L * sd) * sizeof(float), e)))
            goto out;
    if (!(c.dlog = c.ops->alloc(c.ops, (size_t)(c.chunk * V) * sizeof(float), e)))
        goto out;
    for (int64_t t = 0; t < L; t++)
        c.pos[t] = t;
    if (walk(&c, e) || logits_pass(&c, &acc, e) || dsv4_kld_stats_get(&acc, &r->s, e))
        goto out;
    for (int k = 0; k < 2; k++)
        if (mtp_teacher_forced(&c, c.side[k], e)) {
            dsv4_wrap(e, "MTP of %s", k ? source : artifact);
            goto out;
        }
    /* the walk's memory goes before the whole models are loaded for speculative decoding */
    c.ops->free(c.ops, c.dlog);
    c.dlog = NULL;
    for (int k = 0; k < 2; k++)
        side_free(c.ops, c.side[k]);
    if (ev_spec(&c, artifact, source, e))
        goto out;
    rc = 0;
out:
    if (c.dlog)
        c.ops->free(c.ops, c.dlog);
    for (int k = 0; k < 2; k++) {
        side_free(c.ops, c.side[k]);
        free(c.hbuf[k]);
    }
    free(c.pos);
    dsv4_kld_free(&acc);
    dsv4_ops_release(c.ops);
    r->seconds = dsv4_now() - t0;
    if (rc)
        dsv4_eval_result_free(r);
    return rc;
}
