/* Verification of a conversion's output inside its temporary folder (after_convert.h). */
#include "eval/after_convert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/report.h"
#include "gpu.h"
#include "io/atomic.h"
#include "util/pages.h"
#include "util/clock.h"

/* The F32 bytes the CPU runner would hold for the source's weights (FP4 bytes hold two values). */
static double cpu_weight_bytes(const dsv4_ckpt *c)
{
    double n = 0;
    for (size_t i = 0; i < c->n; i++)
        n += (double)dsv4_tensor_numel(c->by_name[i]) * (c->by_name[i]->dtype == DSV4_I8 ? 2 : 1);
    return 4 * n;
}

int dsv4_after_convert_setup(dsv4_after_convert *a, const char *src, const char *out, const dsv4_ckpt *c,
                             const dsv4_recipe *r, const dsv4_after_convert_flags *f, int threads,
                             dsv4_eval_progress_fn progress, void *progress_ctx, dsv4_err *e)
{
    memset(a, 0, sizeof *a);
    a->source = src;
    a->out = out;
    dsv4_check_opts *co = &a->co;
    dsv4_gates_default(&co->gates);
    dsv4_gates_from_recipe(&co->gates, r);
    for (int i = 0; i < DSV4_GATE_COUNT; i++)
        if (f->flag_set[i]) {
            co->gates.limit[i] = f->flags.limit[i];
            co->gates.origin[i] = f->flags.origin[i];
        }
    char def[4200];
    snprintf(def, sizeof def, "%s/eval.tokens.safetensors", c->dir);
    const char *data = f->data ? f->data : access(def, R_OK) == 0 ? def : NULL;
    const char *device = f->device ? f->device : "auto";
    if (f->no_eval) {
        snprintf(a->why, sizeof a->why, "--no-eval: the dynamic verification was not asked for");
    } else if (!data) {
        snprintf(a->why, sizeof a->why,
                 "no evaluation data: %.400s has no eval.tokens.safetensors and --eval-data was not given", src);
    } else if (!strcmp(device, "auto") && dsv4_gpu_count() == 0) {
        double need = cpu_weight_bytes(c), have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGE_SIZE);
        if (need > have / 2)
            snprintf(a->why, sizeof a->why, "no GPU, and the CPU runner would hold about %.1f GB of F32 weights, "
                     "more than half of this machine's %.1f GB; run dsv4-verify --eval on a GPU machine",
                     need / 1e9, have / 1e9);
    }
    if (a->why[0]) {
        co->skip_reason = a->why;
        return 0;
    }
    co->eval_data = data;
    co->data.rows = f->rows;
    co->data.len = f->len;
    co->data.offset = f->offset;
    co->data.max_rows = 4;
    co->data.max_len = 128;
    co->ev.device = device;
    co->ev.threads = threads;
    co->ev.spec_prompts = f->spec_prompts;
    co->ev.progress = progress;
    co->ev.progress_ctx = progress_ctx;
    return dsv4_check_load_data(&a->ck, src, co, e);
}

void dsv4_after_convert_print(const dsv4_after_convert *a, FILE *f, int quiet)
{
    const dsv4_check *ck = &a->ck;
    if (a->exit_code == 0 && quiet)
        return;
    if (a->exit_code != 0) {
        dsv4_check_print(ck, f, 0);
        return;
    }
    size_t passed = 0;
    for (size_t i = 0; i < ck->v.n_results; i++)
        passed += ck->v.results[i].status == DSV4_RS_PASS;
    fprintf(f, "dsv4-quant: verified %s in %.1f s: %zu rules passed", a->out, a->seconds, passed);
    if (ck->eval_state > 0) {
        const dsv4_kld_stats *s = &ck->r.s;
        fprintf(f, "; eval on %lld x %lld positions (%s): PPL %.4f vs %.4f (%+.2f %%), KL %.5f, top-1 %.2f %%",
                (long long)ck->r.rows, (long long)ck->r.len, ck->r.device, s->ppl, s->ppl_base, 100 * (s->ratio - 1),
                s->kld_mean, 100 * s->same_top);
        if (ck->r.art.ran && ck->r.src.ran)
            fprintf(f, ", MTP acceptance %.2f %% vs %.2f %%", 100 * dsv4_eval_tf_rate(&ck->r.art),
                    100 * dsv4_eval_tf_rate(&ck->r.src));
        fprintf(f, "; every gate passed\n");
    } else {
        fprintf(f, "; dynamic verification skipped: %s\n", ck->skip_reason ? ck->skip_reason : "not asked for");
    }
}

int dsv4_after_convert_hook(void *ctx, const char *tmp_dir, dsv4_err *e)
{
    dsv4_after_convert *a = ctx;
    a->convert_peak_rss = dsv4_peak_rss();
    double t0 = dsv4_now();
    dsv4_check_opts co = a->co;
    co.report_name = a->out;
    if (dsv4_check_run(&a->ck, tmp_dir, a->source, &co, e))
        return dsv4_wrap(e, "verifying the new artifact");
    a->ran = 1;
    a->exit_code = dsv4_check_exit(&a->ck);
    a->report = dsv4_check_report(&a->ck, 0);
    char *s = json_dumps(a->report, JSON_INDENT(2));
    if (!s)
        return dsv4_fail_rt(e, "out of memory rendering %s", DSV4_VERIFY_REPORT);
    size_t n = strlen(s);
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, DSV4_VERIFY_REPORT);
    char *buf = malloc(n + 1);
    int rc = -1;
    if (!buf) {
        dsv4_fail_rt(e, "out of memory rendering %s", DSV4_VERIFY_REPORT);
    } else {
        memcpy(buf, s, n);
        buf[n] = '\n';
        rc = dsv4_atomic_write(path, buf, n + 1, e);
    }
    free(buf);
    free(s);
    a->seconds = dsv4_now() - t0;
    return rc;
}

void dsv4_after_convert_free(dsv4_after_convert *a)
{
    dsv4_check_free(&a->ck);
    json_decref(a->report);
    a->report = NULL;
}
