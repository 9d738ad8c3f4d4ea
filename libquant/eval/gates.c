/* Quality gates (gates.h): defaults, recipe values, flags, and the verdict on an eval result. */
#include "eval/gates.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const dsv4_gate_def dsv4_gate_defs[DSV4_GATE_COUNT] = {
    [DSV4_GATE_PPL] = {"max_ppl_increase", "max-ppl-increase", "%", 0, 5.0, 1e6,
                       "perplexity increase over the source, 100*(PPL(artifact)/PPL(source) - 1)"},
    [DSV4_GATE_KL] = {"max_kl", "max-kl", "nats", 0, 0.05, 1e6, "mean KL(source || artifact) per position"},
    [DSV4_GATE_TOP1] = {"min_top1", "min-top1", "%", 1, 85.0, 100, "positions whose top-1 token equals the source's"},
    [DSV4_GATE_ACCEPT] = {"min_accept", "min-accept", "%", 1, NAN, 100,
                          "artifact's MTP acceptance, teacher-forced"},
    [DSV4_GATE_ACCEPT_DROP] = {"max_accept_drop", "max-accept-drop", "points", 0, 5.0, 100,
                               "source's minus artifact's MTP acceptance, teacher-forced"},
};

void dsv4_gates_default(dsv4_gates *g)
{
    for (int i = 0; i < DSV4_GATE_COUNT; i++) {
        g->limit[i] = dsv4_gate_defs[i].def;
        g->origin[i] = "default";
    }
}

void dsv4_gates_from_recipe(dsv4_gates *g, const dsv4_recipe *r)
{
    for (int k = 0; k < DSV4_RECIPE_GATES; k++) {
        if (!r->gate_set[k])
            continue;
        for (int i = 0; i < DSV4_GATE_COUNT; i++)
            if (!strcmp(dsv4_gate_defs[i].key, dsv4_recipe_gate_keys[k])) {
                g->limit[i] = r->gate_val[k];
                g->origin[i] = "recipe";
            }
    }
}

int dsv4_gate_by_flag(const char *flag)
{
    for (int i = 0; i < DSV4_GATE_COUNT; i++)
        if (!strcmp(dsv4_gate_defs[i].flag, flag))
            return i;
    return -1;
}

int dsv4_gates_set_flag(dsv4_gates *g, dsv4_gate_id id, const char *value, dsv4_err *e)
{
    const dsv4_gate_def *d = &dsv4_gate_defs[id];
    double v;
    if (!strcmp(value, "off")) {
        v = NAN;
    } else {
        char *end;
        v = strtod(value, &end);
        if (end != value && *end == '%' && !strcmp(d->unit, "%"))
            end++;
        double hi = d->max;
        if (end == value || *end || !isfinite(v) || v < 0 || v > hi)
            return dsv4_fail(e, "--%s %s: expected a number from 0 to %g (%s) or 'off'", d->flag, value, hi, d->unit);
    }
    g->limit[id] = v;
    g->origin[id] = "flag";
    return 0;
}

double dsv4_gate_measure(dsv4_gate_id id, const dsv4_eval_result *r)
{
    switch (id) {
    case DSV4_GATE_PPL: return 100.0 * (r->s.ratio - 1.0);
    case DSV4_GATE_KL: return r->s.kld_mean;
    case DSV4_GATE_TOP1: return 100.0 * r->s.same_top;
    case DSV4_GATE_ACCEPT: return 100.0 * dsv4_eval_tf_rate(&r->art);
    case DSV4_GATE_ACCEPT_DROP: return 100.0 * (dsv4_eval_tf_rate(&r->src) - dsv4_eval_tf_rate(&r->art));
    default: return NAN;
    }
}

int dsv4_gates_check(const dsv4_gates *g, const dsv4_eval_result *r, dsv4_gate_result out[DSV4_GATE_COUNT])
{
    int failed = 0;
    for (int i = 0; i < DSV4_GATE_COUNT; i++) {
        dsv4_gate_result *o = &out[i];
        const dsv4_gate_def *d = &dsv4_gate_defs[i];
        memset(o, 0, sizeof *o);
        o->id = (dsv4_gate_id)i;
        o->limit = g->limit[i];
        o->measured = dsv4_gate_measure((dsv4_gate_id)i, r);
        int mtp_gate = i == DSV4_GATE_ACCEPT || i == DSV4_GATE_ACCEPT_DROP;
        if (isnan(o->limit)) {
            o->status = DSV4_GATE_SKIP;
            snprintf(o->note, sizeof o->note, "off");
            continue;
        }
        if (mtp_gate && !r->src.ran && !r->art.ran) {
            o->status = DSV4_GATE_SKIP;
            snprintf(o->note, sizeof o->note, "no MTP block ran: %.500s", r->src.why);
            continue;
        }
        if (mtp_gate && !r->art.ran) {
            o->status = DSV4_GATE_FAIL;
            snprintf(o->note, sizeof o->note, "the artifact's MTP block did not run: %.500s", r->art.why);
            failed++;
            continue;
        }
        if (i == DSV4_GATE_ACCEPT_DROP && !r->src.ran) {
            o->status = DSV4_GATE_SKIP;
            snprintf(o->note, sizeof o->note, "the source's MTP block did not run: %.500s", r->src.why);
            continue;
        }
        int ok = d->is_min ? o->measured >= o->limit : o->measured <= o->limit; /* false for NAN */
        o->status = ok ? DSV4_GATE_PASS : DSV4_GATE_FAIL;
        if (!ok) {
            failed++;
            snprintf(o->note, sizeof o->note, "%s %.4g %s, %s %s %.4g", d->what, o->measured, d->unit,
                     isfinite(o->measured) ? (d->is_min ? "below the minimum" : "above the maximum") : "not a number;",
                     d->is_min ? "min" : "max", o->limit);
        }
    }
    return failed;
}

void dsv4_gates_usage(FILE *f)
{
    fputs("gates (a flag beats the recipe's `gates:`, which beats the default; 'off' turns one off):\n", f);
    for (int i = 0; i < DSV4_GATE_COUNT; i++) {
        const dsv4_gate_def *d = &dsv4_gate_defs[i];
        char flag[64], def[32];
        snprintf(flag, sizeof flag, "--%s %s", d->flag, !strcmp(d->unit, "%") ? "PCT" : !strcmp(d->unit, "nats") ? "MEAN" : "PTS");
        if (isnan(d->def))
            snprintf(def, sizeof def, "off");
        else
            snprintf(def, sizeof def, "%g", d->def);
        fprintf(f, "  %-25s %s %s %s (default %s)\n", flag, d->is_min ? "min" : "max", d->what,
                d->unit, def);
    }
}
