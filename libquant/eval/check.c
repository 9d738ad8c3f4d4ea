/* Static rules + dynamic comparison + gates as one verification (check.h). */
#include "eval/check.h"

#include <stdlib.h>
#include <string.h>

#include "eval/report.h"

int dsv4_check_load_data(dsv4_check *c, const char *source, const dsv4_check_opts *o, dsv4_err *e)
{
    dsv4_data_opts dopt = o->data;
    if (!dopt.tokenizer)
        dopt.tokenizer = source;
    if (dsv4_data_load(o->eval_data, &dopt, &c->d, e))
        return -1;
    return 0;
}

int dsv4_check_run(dsv4_check *c, const char *artifact, const char *source, const dsv4_check_opts *o, dsv4_err *e)
{
    c->gates = o->gates;
    c->skip_reason = o->skip_reason;
    if (dsv4_vctx_open(&c->v, artifact, source, e))
        return -1;
    c->have_v = 1;
    if (dsv4_vctx_run(&c->v, o->only, e))
        return -1;
    if (o->report_name) { /* reports name the artifact by the name given (not a temporary folder's) */
        char *n = strdup(o->report_name);
        if (!n)
            return dsv4_fail_rt(e, "out of memory");
        free(c->v.art.path);
        c->v.art.path = n;
    }
    c->static_failed = dsv4_vctx_count(&c->v, DSV4_SEV_ERROR) > 0 ||
                       (o->strict && dsv4_vctx_count(&c->v, DSV4_SEV_WARNING) > 0);
    if (!o->eval_data)
        return 0;
    if (!source) {
        c->eval_state = -1;
        dsv4_fail(&c->eval_err, "the dynamic verification compares the artifact with its source: give --source");
        return 0;
    }
    if (dsv4_eval_run(artifact, source, &c->d, &o->ev, &c->r, &c->eval_err)) {
        c->eval_state = -1;
        return 0;
    }
    c->eval_state = 1;
    c->gates_failed = dsv4_gates_check(&c->gates, &c->r, c->gr);
    return 0;
}

static const char *verdict(const dsv4_check *c)
{
    if (c->static_failed || c->gates_failed)
        return "fail";
    return c->eval_state < 0 ? "error" : "pass";
}

json_t *dsv4_check_report(const dsv4_check *c, int timing)
{
    json_t *o = dsv4_vctx_report(&c->v);
    if (c->eval_state > 0)
        json_object_set_new(o, "eval", dsv4_eval_json(&c->r, &c->d, &c->gates, c->gr, timing));
    else if (c->eval_state < 0)
        json_object_set_new(o, "eval", dsv4_eval_json_not_run("error", c->eval_err.msg));
    else if (c->skip_reason)
        json_object_set_new(o, "eval", dsv4_eval_json_not_run("skipped", c->skip_reason));
    json_object_set_new(o, "verdict", json_string(verdict(c)));
    return o;
}

void dsv4_check_print(const dsv4_check *c, FILE *f, int verbose)
{
    dsv4_vctx_print(&c->v, f, verbose);
    if (c->eval_state > 0)
        dsv4_eval_print(f, &c->r, &c->d, &c->gates, c->gr);
    else if (c->eval_state < 0)
        fprintf(f, "EVAL ERROR: the dynamic verification did not run: %s\n", c->eval_err.msg);
    else if (c->skip_reason)
        fprintf(f, "EVAL SKIPPED: %s\n", c->skip_reason);
}

int dsv4_check_exit(const dsv4_check *c)
{
    if (c->static_failed || c->gates_failed)
        return DSV4_EXIT_GATE;
    if (c->eval_state < 0)
        return c->eval_err.code ? c->eval_err.code : DSV4_EXIT_RUNTIME;
    return DSV4_EXIT_OK;
}

void dsv4_check_free(dsv4_check *c)
{
    if (c->have_v)
        dsv4_vctx_close(&c->v);
    dsv4_data_free(&c->d);
    dsv4_eval_result_free(&c->r);
    memset(c, 0, sizeof *c);
}
