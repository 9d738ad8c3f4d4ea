/* The dynamic verification as JSON (report.h), and the terminal progress line. */
#include "eval/report.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static json_t *num(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

static const char *const PCT_KEY[DSV4_KLD_NPCT] = {"min", "p0.1", "p1", "p5", "p10", "p25", "median",
                                                    "p75", "p90", "p95", "p99", "p99.9", "max"};

static json_t *pcts(const double *v)
{
    json_t *o = json_object();
    for (int i = 0; i < DSV4_KLD_NPCT; i++)
        json_object_set_new(o, PCT_KEY[i], num(v[i]));
    return o;
}

static json_t *mtp_json(const dsv4_eval_mtp *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "ran", json_boolean(m->ran));
    if (!m->ran) {
        json_object_set_new(o, "reason", json_string(m->why));
        return o;
    }
    json_object_set_new(o, "teacher_forced", json_pack("{s:I,s:I,s:o}", "accepted", (json_int_t)m->tf_accepted,
                                                       "positions", (json_int_t)m->tf_total, "rate",
                                                       num(dsv4_eval_tf_rate(m))));
    if (m->spec_ran)
        json_object_set_new(o, "speculative",
                            json_pack("{s:I,s:I,s:o,s:I,s:I}", "drafted", (json_int_t)m->spec_drafted, "accepted",
                                      (json_int_t)m->spec_accepted, "rate", num(dsv4_eval_spec_rate(m)),
                                      "main_calls", (json_int_t)m->spec_main_calls, "generated",
                                      (json_int_t)m->spec_generated));
    return o;
}

static const char *gate_status(int s)
{
    return s == DSV4_GATE_PASS ? "pass" : s == DSV4_GATE_FAIL ? "fail" : "skipped";
}

json_t *dsv4_eval_json(const dsv4_eval_result *r, const dsv4_eval_data *d, const dsv4_gates *g,
                       const dsv4_gate_result *gr, int timing)
{
    const dsv4_kld_stats *s = &r->s;
    json_t *o = json_object(), *failed = json_array(), *gates = json_array();
    for (int i = 0; i < DSV4_GATE_COUNT; i++) {
        const dsv4_gate_def *df = &dsv4_gate_defs[i];
        json_t *j = json_pack("{s:s,s:s,s:o,s:s,s:o,s:s,s:s}", "gate", df->key, "checks", df->what, "limit",
                              num(gr[i].limit), "origin", g->origin[i], "measured", num(gr[i].measured), "unit",
                              df->unit, "status", gate_status(gr[i].status));
        if (gr[i].note[0])
            json_object_set_new(j, "note", json_string(gr[i].note));
        json_array_append_new(gates, j);
        if (gr[i].status == DSV4_GATE_FAIL)
            json_array_append_new(failed, json_string(df->key));
    }
    json_object_set_new(o, "status", json_string(json_array_size(failed) ? "fail" : "pass"));
    json_object_set_new(o, "failed_gates", failed);
    json_object_set_new(o, "device", json_string(r->device));
    if (timing)
        json_object_set_new(o, "seconds", json_real(r->seconds));
    json_object_set_new(o, "data", json_pack("{s:s,s:s,s:I,s:I,s:I,s:I}", "path", d->path, "kind", d->kind, "rows",
                                             (json_int_t)r->rows, "len", (json_int_t)r->len, "offset",
                                             (json_int_t)r->offset, "positions", (json_int_t)s->count));
    json_t *ppl = json_object();
    json_object_set_new(ppl, "artifact", num(s->ppl));
    json_object_set_new(ppl, "artifact_unc", num(s->ppl_unc));
    json_object_set_new(ppl, "source", num(s->ppl_base));
    json_object_set_new(ppl, "source_unc", num(s->ppl_base_unc));
    json_object_set_new(ppl, "nll_correlation", num(s->nll_cor));
    json_object_set_new(ppl, "ln_ratio", num(s->ln_ratio));
    json_object_set_new(ppl, "ln_ratio_unc", num(s->ln_ratio_unc));
    json_object_set_new(ppl, "ratio", num(s->ratio));
    json_object_set_new(ppl, "ratio_unc", num(s->ratio_unc));
    json_object_set_new(ppl, "diff", num(s->diff));
    json_object_set_new(ppl, "diff_unc", num(s->diff_unc));
    json_object_set_new(o, "perplexity", ppl);
    json_t *kl = pcts(s->kld_pct);
    json_object_set_new(kl, "mean", num(s->kld_mean));
    json_object_set_new(kl, "mean_unc", num(s->kld_unc));
    json_object_set_new(o, "kl_divergence", kl);
    json_object_set_new(o, "same_top1", json_pack("{s:o,s:o}", "rate", num(s->same_top), "unc", num(s->same_top_unc)));
    json_object_set_new(o, "delta_p", json_pack("{s:o,s:o,s:o,s:o,s:o}", "mean", num(s->dp_mean), "mean_unc",
                                                num(s->dp_unc), "rms", num(s->dp_rms), "rms_unc", num(s->dp_rms_unc),
                                                "percentiles", pcts(s->dp_pct)));
    json_t *mtp = json_object();
    json_object_set_new(mtp, "artifact", mtp_json(&r->art));
    json_object_set_new(mtp, "source", mtp_json(&r->src));
    json_object_set_new(mtp, "spec_prompts", json_integer((json_int_t)r->spec_prompts));
    json_object_set_new(mtp, "spec_prompt_len", json_integer((json_int_t)r->spec_prompt_len));
    json_object_set_new(mtp, "spec_tokens", json_integer((json_int_t)r->spec_tokens));
    json_object_set_new(mtp, "spec_same_as_source", r->art.spec_ran && r->src.spec_ran
                                                        ? json_integer((json_int_t)r->spec_same)
                                                        : json_null());
    json_object_set_new(o, "mtp", mtp);
    json_t *layers = json_array();
    for (int i = 0; i < r->n_layers; i++) {
        const dsv4_eval_layer *l = &r->layers[i];
        json_array_append_new(layers, json_pack("{s:i,s:s,s:b,s:o,s:o,s:I}", "layer", l->id, "type",
                                                dsv4_attn_type_short(l->type), "hash", l->is_hash, "rel_rms",
                                                num(l->rel_rms), "max_row", num(l->max_row), "nonfinite",
                                                (json_int_t)l->nonfinite));
    }
    json_object_set_new(o, "layers", layers);
    json_object_set_new(o, "gates", gates);
    return o;
}

json_t *dsv4_eval_json_not_run(const char *status, const char *reason)
{
    return json_pack("{s:s,s:s}", "status", status, "reason", reason);
}

void dsv4_tty_progress_init(dsv4_tty_progress *p, const char *tool)
{
    p->tool = tool;
    p->on = isatty(2);
    p->shown = 0;
}

void dsv4_tty_progress_fn(void *ctx, const char *stage, int64_t done, int64_t total)
{
    dsv4_tty_progress *p = ctx;
    if (!p->on)
        return;
    fprintf(stderr, "\r%s: eval %-7s %lld/%lld   ", p->tool, stage, (long long)done, (long long)total);
    fflush(stderr);
    p->shown = 1;
}

void dsv4_tty_progress_end(dsv4_tty_progress *p)
{
    if (p->on && p->shown) {
        fprintf(stderr, "\r%60s\r", "");
        fflush(stderr);
    }
    p->shown = 0;
}
