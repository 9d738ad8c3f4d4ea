/* The dynamic verification as text (report.h): the llama-perplexity --kl-divergence statistics,
 * MTP acceptance, the per-layer stream error and the gates, ending with one verdict line
 * ("EVAL PASS: ..." / "EVAL FAIL: ..."). */
#include <math.h>
#include <stdio.h>

#include "eval/report.h"

static void mtp_line(FILE *f, const char *who, const dsv4_eval_mtp *m)
{
    if (!m->ran) {
        fprintf(f, "  %-9s no MTP: %s\n", who, m->why);
        return;
    }
    fprintf(f, "  %-9s teacher-forced %6.2f %% (%lld of %lld)", who, 100 * dsv4_eval_tf_rate(m),
            (long long)m->tf_accepted, (long long)m->tf_total);
    if (m->spec_ran)
        fprintf(f, "   speculative %6.2f %% (%lld of %lld drafts, %lld tokens in %lld main calls)",
                100 * dsv4_eval_spec_rate(m), (long long)m->spec_accepted, (long long)m->spec_drafted,
                (long long)m->spec_generated, (long long)m->spec_main_calls);
    fputc('\n', f);
}

void dsv4_eval_print(FILE *f, const dsv4_eval_result *r, const dsv4_eval_data *d, const dsv4_gates *g,
                     const dsv4_gate_result *gr)
{
    const dsv4_kld_stats *s = &r->s;
    fprintf(f, "eval      %s: %lld rows x %lld positions from row %lld (%lld predictions), on %s, %.1f s\n", d->path,
            (long long)r->rows, (long long)r->len, (long long)r->offset, (long long)s->count, r->device, r->seconds);
    fprintf(f, "perplexity\n");
    fprintf(f, "  PPL(artifact)              %12.6f ± %10.6f\n", s->ppl, s->ppl_unc);
    fprintf(f, "  PPL(source)                %12.6f ± %10.6f\n", s->ppl_base, s->ppl_base_unc);
    fprintf(f, "  Cor(ln PPL(a), ln PPL(s))  %11.2f %%\n", 100 * s->nll_cor);
    fprintf(f, "  ln(PPL(a)/PPL(s))          %12.6f ± %10.6f\n", s->ln_ratio, s->ln_ratio_unc);
    fprintf(f, "  PPL(a)/PPL(s)              %12.6f ± %10.6f\n", s->ratio, s->ratio_unc);
    fprintf(f, "  PPL(a)-PPL(s)              %12.6f ± %10.6f\n", s->diff, s->diff_unc);
    fprintf(f, "KL divergence (source || artifact), nats per position\n");
    fprintf(f, "  mean %.6f ± %.6f   median %.6f   p90 %.6f   p95 %.6f   p99 %.6f   p99.9 %.6f\n", s->kld_mean,
            s->kld_unc, s->kld_pct[6], s->kld_pct[8], s->kld_pct[9], s->kld_pct[10], s->kld_pct[11]);
    fprintf(f, "  min %.6f   max %.6f\n", s->kld_pct[0], s->kld_pct[12]);
    fprintf(f, "token probability: Δp = p_artifact(correct) - p_source(correct)\n");
    fprintf(f, "  mean %.3f ± %.3f %%   RMS %.3f ± %.3f %%   same top-1 %.3f ± %.3f %%\n", 100 * s->dp_mean,
            100 * s->dp_unc, 100 * s->dp_rms, 100 * s->dp_rms_unc, 100 * s->same_top, 100 * s->same_top_unc);
    fprintf(f, "  min %.3f %%  p1 %.3f %%  p5 %.3f %%  p25 %.3f %%  median %.3f %%  p75 %.3f %%  p95 %.3f %%  p99 %.3f %%  "
               "max %.3f %%\n", 100 * s->dp_pct[0], 100 * s->dp_pct[2], 100 * s->dp_pct[3], 100 * s->dp_pct[5],
            100 * s->dp_pct[6], 100 * s->dp_pct[7], 100 * s->dp_pct[9], 100 * s->dp_pct[10], 100 * s->dp_pct[12]);
    fprintf(f, "MTP acceptance\n");
    mtp_line(f, "artifact", &r->art);
    mtp_line(f, "source", &r->src);
    if (r->art.spec_ran && r->src.spec_ran)
        fprintf(f, "  greedy continuations equal to the source's: %lld of %lld prompts (%lld + %lld tokens)\n",
                (long long)r->spec_same, (long long)r->spec_prompts, (long long)r->spec_prompt_len,
                (long long)r->spec_tokens);
    fprintf(f, "hidden streams after each layer, relative RMS error against the source\n");
    for (int i = 0; i < r->n_layers; i++) {
        const dsv4_eval_layer *l = &r->layers[i];
        fprintf(f, "  layer %-3d %s%s  %.3e  (worst row %.3e)", l->id, dsv4_attn_type_short(l->type),
                l->is_hash ? " hash" : "     ", l->rel_rms, l->max_row);
        if (l->nonfinite)
            fprintf(f, "  %lld non-finite values", (long long)l->nonfinite);
        fputc('\n', f);
    }
    fprintf(f, "gates\n");
    int nf = 0, np = 0;
    for (int i = 0; i < DSV4_GATE_COUNT; i++) {
        const dsv4_gate_def *df = &dsv4_gate_defs[i];
        const dsv4_gate_result *x = &gr[i];
        if (x->status == DSV4_GATE_SKIP) {
            fprintf(f, "  skipped  %-17s %s\n", df->key, x->note);
            continue;
        }
        nf += x->status == DSV4_GATE_FAIL;
        np += x->status == DSV4_GATE_PASS;
        fprintf(f, "  %-8s %-17s %10.4g %-6s %s %g (%s)\n", x->status == DSV4_GATE_PASS ? "pass" : "FAIL", df->key,
                x->measured, df->unit, df->is_min ? ">=" : "<=", x->limit, g->origin[i]);
        if (x->status == DSV4_GATE_FAIL && !isfinite(x->measured))
            fprintf(f, "           %s\n", x->note);
    }
    if (nf) {
        fprintf(f, "EVAL FAIL: %d of %d gates failed (", nf, nf + np);
        for (int i = 0, k = 0; i < DSV4_GATE_COUNT; i++)
            if (gr[i].status == DSV4_GATE_FAIL)
                fprintf(f, "%s%s", k++ ? ", " : "", dsv4_gate_defs[i].key);
        fprintf(f, ")\n");
    } else {
        fprintf(f, "EVAL PASS: %d gates passed\n", np);
    }
}
