/* Verification results for people (dsv4_vctx_print) and machines (dsv4_vctx_report, JSON). */
#include <string.h>

#include "artifact/version.h"
#include "verify/vctx.h"

static const char *status_name(int s)
{
    return s == DSV4_RS_PASS ? "pass" : s == DSV4_RS_FAIL ? "fail" : "skipped";
}

static const char *sev_name(dsv4_severity s)
{
    return s == DSV4_SEV_ERROR ? "error" : "warning";
}

json_t *dsv4_vctx_report(const dsv4_vctx *v)
{
    json_t *o = json_object(), *rules = json_array(), *skipped = json_array();
    json_object_set_new(o, "tool", json_string("dsv4-verify"));
    json_object_set_new(o, "version", json_string(DSV4_VERSION));
    json_object_set_new(o, "artifact", json_string(v->art.path));
    json_object_set_new(o, "source", v->have_src ? json_string(v->src.path) : json_null());
    json_object_set_new(o, "layout", json_string(dsv4_layout_name(v->art.layout.layout)));
    json_object_set_new(o, "naming", json_string(dsv4_naming_name(v->art.layout.naming)));
    json_object_set_new(o, "tensors", json_integer((json_int_t)v->art.ck.n));
    json_object_set_new(o, "modules", json_integer((json_int_t)v->art.st.n));
    size_t ne = dsv4_vctx_count(v, DSV4_SEV_ERROR), nw = dsv4_vctx_count(v, DSV4_SEV_WARNING);
    json_object_set_new(o, "status", json_string(ne ? "fail" : "pass"));
    json_object_set_new(o, "errors", json_integer((json_int_t)ne));
    json_object_set_new(o, "warnings", json_integer((json_int_t)nw));
    json_t *failed = json_array();
    for (size_t i = 0; i < v->n_results; i++) {
        const dsv4_rule_result *r = &v->results[i];
        json_t *j = json_object(), *ev = json_array();
        json_object_set_new(j, "id", json_string(r->rule->id));
        json_object_set_new(j, "title", json_string(r->rule->title));
        json_object_set_new(j, "checks", json_string(r->rule->checks));
        json_object_set_new(j, "severity", json_string(sev_name(r->rule->severity)));
        json_object_set_new(j, "status", json_string(status_name(r->status)));
        if (r->skip_reason[0])
            json_object_set_new(j, "reason", json_string(r->skip_reason));
        json_object_set_new(j, "found", json_integer((json_int_t)r->n_found));
        for (size_t k = 0; k < r->n_kept; k++)
            json_array_append_new(ev, json_string(r->evidence[k]));
        json_object_set_new(j, "evidence", ev);
        json_object_set_new(j, "fix", r->rule->fix ? json_string(r->rule->fix) : json_null());
        json_object_set_new(j, "fix_ops", json_integer((json_int_t)r->n_fixes));
        json_array_append_new(rules, j);
        if (r->status == DSV4_RS_SKIP)
            json_array_append_new(skipped, json_string(r->rule->id));
        if (r->status == DSV4_RS_FAIL)
            json_array_append_new(failed, json_string(r->rule->id));
    }
    json_object_set_new(o, "failed", failed);
    json_object_set_new(o, "skipped", skipped);
    json_object_set_new(o, "rules", rules);
    return o;
}

void dsv4_vctx_print(const dsv4_vctx *v, FILE *f, int verbose)
{
    fprintf(f, "artifact  %s (%s, %s names, %zu tensors)\n", v->art.path, dsv4_layout_name(v->art.layout.layout),
            dsv4_naming_name(v->art.layout.naming), v->art.ck.n);
    if (v->have_src)
        fprintf(f, "source    %s (%s)\n", v->src.path, dsv4_layout_name(v->src.layout.layout));
    size_t n_pass = 0, n_skip = 0;
    for (size_t i = 0; i < v->n_results; i++) {
        const dsv4_rule_result *r = &v->results[i];
        if (r->status == DSV4_RS_PASS) {
            n_pass++;
            if (verbose)
                fprintf(f, "  pass     %-26s %s\n", r->rule->id, r->rule->title);
            continue;
        }
        if (r->status == DSV4_RS_SKIP) {
            n_skip++;
            if (verbose)
                fprintf(f, "  skipped  %-26s %s\n", r->rule->id, r->skip_reason);
            continue;
        }
        fprintf(f, "  %-8s %-26s %s (%zu found)\n", r->rule->severity == DSV4_SEV_ERROR ? "FAIL" : "warning",
                r->rule->id, r->rule->title, r->n_found);
        for (size_t k = 0; k < r->n_kept; k++)
            fprintf(f, "           %s\n", r->evidence[k]);
        if (r->skip_reason[0])
            fprintf(f, "           note: %s\n", r->skip_reason);
        if (r->n_found > r->n_kept)
            fprintf(f, "           ... and %zu more\n", r->n_found - r->n_kept);
        if (r->rule->fix)
            fprintf(f, "           fix: %s%s\n", r->rule->fix, r->n_fixes ? "" : " (not available here)");
    }
    size_t ne = dsv4_vctx_count(v, DSV4_SEV_ERROR), nw = dsv4_vctx_count(v, DSV4_SEV_WARNING);
    fprintf(f, "%s: %zu rules passed, %zu failed, %zu warnings, %zu skipped", ne ? "FAIL" : "PASS", n_pass, ne, nw,
            n_skip);
    if (n_skip && !verbose) {
        fprintf(f, " (");
        int first = 1;
        for (size_t i = 0; i < v->n_results; i++)
            if (v->results[i].status == DSV4_RS_SKIP) {
                fprintf(f, "%s%s", first ? "" : ", ", v->results[i].rule->id);
                first = 0;
            }
        fprintf(f, ")");
    }
    fprintf(f, "\n");
}
