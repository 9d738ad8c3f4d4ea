/* The conversion runner (see convert.h): plan → writer plan, a thread pool over the jobs, the
 * carried files, config.json and dsv4-quant-report.json, then the atomic close. */
#include "artifact/convert.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "artifact/convert_job.h"
#include "io/checkpoint.h"
#include "io/st_write.h"
#include "util/pages.h"
#include "util/workers.h"
#include "util/clock.h"

const char *const dsv4_carried_files[] = {"tokenizer.json",          "tokenizer_config.json",
                                          "generation_config.json",  "special_tokens_map.json",
                                          "tokenizer.model",         "chat_template.jinja",
                                          NULL};

uint64_t dsv4_plan_out_bytes(const dsv4_plan_out *o)
{
    uint64_t n = 1;
    for (int i = 0; i < o->ndim; i++)
        n *= (uint64_t)o->shape[i];
    int64_t b = dsv4_dtype_nbytes(o->dtype, n);
    return b < 0 ? 0 : (uint64_t)b;
}

/* The manifest's calibration section (io/manifest.h) from the calibration report: each layer's
 * expert token counts and Hessian sources; NULL without a calibration. */
static json_t *manifest_coverage(const json_t *calibration)
{
    json_t *layers = json_object_get(calibration, "layers"), *v, *cov;
    size_t i;
    if (!json_is_array(layers) || !(cov = json_object()))
        return NULL;
    json_array_foreach(layers, i, v) {
        const char *name = json_string_value(json_object_get(v, "layer"));
        json_t *x = json_object_get(v, "experts");
        if (name && json_is_object(x))
            json_object_set(cov, name, x);
    }
    return cov;
}

/* A GPTQ job's outputs from the finished calibration. */
static int fetch(const dsv4_convert_opts *o, const dsv4_plan_job *j, uint8_t *const dst[3], dsv4_job_report *rep,
                 dsv4_err *e)
{
    memset(rep, 0, sizeof *rep);
    rep->exact = 1;
    for (int k = 0; k < j->n_out; k++) {
        uint64_t n = 0, want = dsv4_plan_out_bytes(&j->out[k]);
        const void *b = o->precomputed(o->precomputed_ctx, j->out[k].name, &n);
        if (!b || n != want)
            return dsv4_fail(e, "%s: the calibration holds no %llu-byte tensor for it (the GPTQ work folder is "
                             "incomplete or from another plan)", j->out[k].name, (unsigned long long)want);
        memcpy(dst[k], b, want);
    }
    return 0;
}

typedef struct pool {
    const dsv4_ckpt *src;
    const dsv4_plan *p;
    const dsv4_recipe *r;
    const dsv4_convert_opts *o;
    dsv4_st_writer *w;
    size_t *first_out;          /* writer tensor index of each job's out[0] */
    size_t next;                /* next job to take */
    size_t done;
    uint64_t bytes_done;
    int failed, progress;
    dsv4_err err;               /* the first failure */
    json_t *inexact;
    pthread_mutex_t mu;
    double t0;             /* dsv4_now() at the start */
} pool;

static void report_job(pool *P, const dsv4_plan_job *j, const dsv4_job_report *rep)
{
    pthread_mutex_lock(&P->mu);
    P->done++;
    for (int k = 0; k < j->n_out; k++)
        P->bytes_done += dsv4_plan_out_bytes(&j->out[k]);
    if (!rep->exact)
        json_array_append_new(P->inexact, json_pack("{s:s,s:s,s:I,s:f}", "tensor", j->out[0].name, "job",
                                                    dsv4_job_kind_name(j->kind), "values",
                                                    (json_int_t)rep->inexact, "max_abs_err", rep->max_abs_err));
    if (P->progress && (P->done % 64 == 0 || P->done == P->p->n)) {
        double s = dsv4_now() - P->t0;
        fprintf(stderr, "\rdsv4-quant: %zu/%zu jobs, %.2f GB written, %.2f GB/s   ", P->done, P->p->n,
                (double)P->bytes_done / 1e9, s > 0 ? (double)P->bytes_done / 1e9 / s : 0.0);
        if (P->done == P->p->n)
            fputc('\n', stderr);
    }
    pthread_mutex_unlock(&P->mu);
}

static void *worker(void *arg)
{
    pool *P = arg;
    for (;;) {
        pthread_mutex_lock(&P->mu);
        size_t i = P->failed ? P->p->n : P->next++;
        pthread_mutex_unlock(&P->mu);
        if (i >= P->p->n)
            return NULL;
        const dsv4_plan_job *j = &P->p->jobs[i];
        uint8_t *dst[3] = {NULL, NULL, NULL};
        dsv4_err e = {{0}, 0};
        dsv4_job_report rep;
        int rc = 0;
        for (int k = 0; k < j->n_out && rc == 0; k++)
            rc = dsv4_st_writer_begin(P->w, P->first_out[i] + (size_t)k, &dst[k], &e);
        if (rc == 0 && dsv4_job_is_gptq(j, P->r))
            rc = fetch(P->o, j, dst, &rep, &e);
        else if (rc == 0)
            rc = dsv4_job_run(j, dsv4_job_group(j, P->r), dst, &rep, &e);
        for (int k = 0; k < j->n_out && rc == 0; k++)
            rc = dsv4_st_writer_end(P->w, P->first_out[i] + (size_t)k, &e);
        if (rc) {
            pthread_mutex_lock(&P->mu);
            if (!P->failed) {
                P->failed = 1;
                P->err = e;
            }
            pthread_mutex_unlock(&P->mu);
            return NULL;
        }
        for (int k = 0; k < 4; k++)
            if (j->src[k])
                dsv4_release_pages(j->src[k]->data, dsv4_tensor_nbytes(j->src[k]), P->src->files[j->src[k]->file].map,
                                   P->src->files[j->src[k]->file].size);
        report_job(P, j, &rep);
    }
}

int dsv4_convert_threads(int asked)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return asked > 0 ? (asked > 64 ? 64 : asked) : n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

static int add_json(dsv4_st_writer *w, const char *name, const json_t *j, dsv4_err *e)
{
    char *s = json_dumps(j, JSON_INDENT(2));
    if (!s)
        return dsv4_fail_rt(e, "out of memory rendering %s", name);
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        return dsv4_fail_rt(e, "out of memory rendering %s", name);
    }
    t[n] = '\n';
    int rc = dsv4_st_writer_add_file(w, name, t, n + 1, e);
    free(t);
    return rc;
}

/* GPTQ jobs need a finished calibration; without one they are refused, never quietly rounded. */
static int check_methods(const dsv4_plan *p, const dsv4_recipe *r, const dsv4_convert_opts *o, dsv4_err *e)
{
    for (size_t i = 0; i < p->n; i++)
        if (dsv4_job_is_gptq(&p->jobs[i], r) && !(o && o->precomputed))
            return dsv4_fail(e, "%s: group '%s' asks for method gptq (%s): its tensors come from a calibration "
                             "run (dsv4-quant runs it; dsv4_calib_run), which this conversion was not given",
                             r->path, r->groups[p->jobs[i].group].name, p->jobs[i].out[0].name);
    return 0;
}

int dsv4_convert_run(const dsv4_ckpt *src, const dsv4_plan *p, const dsv4_recipe *r, const char *out,
                     const dsv4_convert_opts *o, dsv4_convert_stats *st, dsv4_err *e)
{
    return dsv4_convert_run_hooked(src, p, r, out, o, NULL, NULL, st, e);
}

int dsv4_convert_run_hooked(const dsv4_ckpt *src, const dsv4_plan *p, const dsv4_recipe *r, const char *out,
                            const dsv4_convert_opts *o, dsv4_convert_hook before_commit, void *hook_ctx,
                            dsv4_convert_stats *st, dsv4_err *e)
{
    memset(st, 0, sizeof *st);
    if (check_methods(p, r, o, e))
        return -1;
    dsv4_st_plan sp;
    dsv4_st_plan_init(&sp, r->max_shard_bytes, DSV4_ST_ALWAYS_INDEX);
    size_t *first = calloc(p->n + 1, sizeof *first), nt = 0;
    json_t *coverage = NULL;
    if (!first)
        return dsv4_fail_rt(e, "out of memory");
    for (size_t i = 0; i < p->n; i++) {
        first[i] = nt;
        for (int k = 0; k < p->jobs[i].n_out; k++, nt++) {
            const dsv4_plan_out *po = &p->jobs[i].out[k];
            if (dsv4_st_plan_add(&sp, po->name, po->dtype, po->ndim, po->shape, e))
                goto fail_plan;
        }
    }
    if (dsv4_st_plan_finish(&sp, e))
        goto fail_plan;
    pool P = {.src = src, .p = p, .r = r, .o = o, .first_out = first, .progress = o && o->progress, .inexact = json_array()};
    pthread_mutex_init(&P.mu, NULL);
    P.t0 = dsv4_now();
    coverage = manifest_coverage(o ? o->calibration : NULL);
    dsv4_st_write_opts wo = {.before_commit = before_commit, .before_commit_ctx = hook_ctx,
                             .manifest_calibration = coverage};
    if (dsv4_st_writer_open(&P.w, &sp, out, &wo, e)) {
        json_decref(P.inexact);
        goto fail_plan;
    }
    int threads = dsv4_convert_threads(o ? o->threads : 0);
    if ((size_t)threads > p->n)
        threads = p->n ? (int)p->n : 1;
    dsv4_run_workers(threads, worker, &P);
    json_t *report = NULL;
    if (P.failed) {
        *e = P.err;
        goto fail_writer;
    }
    if (dsv4_st_writer_copy_files(P.w, src->dir, dsv4_carried_files, e) || add_json(P.w, "config.json", p->config, e))
        goto fail_writer;
    report = json_pack("{s:s,s:s,s:s,s:I,s:I,s:O}", "tool", "dsv4-quant", "recipe", r->path, "recipe_xxh3_128",
                       r->hash, "tensors", (json_int_t)nt, "bytes", (json_int_t)sp.total_bytes, "inexact_conversions",
                       P.inexact);
    if (o && o->calibration)
        json_object_set(report, "calibration", o->calibration);
    if (add_json(P.w, "dsv4-quant-report.json", report, e))
        goto fail_writer;
    json_decref(report);
    report = NULL;
    if (dsv4_st_writer_close(P.w, e)) {
        P.w = NULL;
        goto fail_writer;
    }
    st->jobs = p->n;
    st->tensors = nt;
    st->shards = sp.n_shards;
    st->out_bytes = sp.total_bytes;
    st->threads = threads;
    st->seconds = dsv4_now() - P.t0;
    st->inexact = P.inexact;
    pthread_mutex_destroy(&P.mu);
    dsv4_st_plan_free(&sp);
    free(first);
    json_decref(coverage);
    return 0;
fail_writer:
    json_decref(report);
    if (P.w)
        dsv4_st_writer_abort(P.w);
    json_decref(P.inexact);
    pthread_mutex_destroy(&P.mu);
fail_plan:
    dsv4_st_plan_free(&sp);
    free(first);
    json_decref(coverage);
    return -1;
}

void dsv4_convert_stats_free(dsv4_convert_stats *st)
{
    json_decref(st->inexact);
    st->inexact = NULL;
}

int dsv4_convert_one(const dsv4_plan *p, const dsv4_recipe *r, const char *name, uint8_t **bytes,
                     uint64_t *n, dsv4_err *e)
{
    if (check_methods(p, r, NULL, e))
        return -1;
    for (size_t i = 0; i < p->n; i++) {
        const dsv4_plan_job *j = &p->jobs[i];
        for (int k = 0; k < j->n_out; k++) {
            if (strcmp(j->out[k].name, name))
                continue;
            uint8_t *dst[3] = {NULL, NULL, NULL};
            int rc = 0;
            for (int m = 0; m < j->n_out; m++)
                if (!(dst[m] = malloc(dsv4_plan_out_bytes(&j->out[m]) + 1)))
                    rc = dsv4_fail_rt(e, "%s: out of memory", name);
            dsv4_job_report rep;
            if (rc == 0)
                rc = dsv4_job_run(j, dsv4_job_group(j, r), dst, &rep, e);
            for (int m = 0; m < j->n_out; m++)
                if (m != k || rc)
                    free(dst[m]);
            if (rc)
                return -1;
            *bytes = dst[k];
            *n = dsv4_plan_out_bytes(&j->out[k]);
            return 0;
        }
    }
    return dsv4_fail(e, "the plan writes no tensor '%s'", name);
}
