/* dsv4-fixup: repair an artifact made by another tool. Runs the contract rules (libquant/verify),
 * collects the fix ops they ask for (renames, restored tensors, MTP aliases, scale names, config
 * keys, index), applies them with the crash-safe rewriter (libquant/fixup/rewrite.h) into a new
 * folder or in place, then re-checks the result. Idempotent: a repaired artifact gets "nothing to
 * fix" and is not touched.
 * Exit codes: 0 the result passes every rule, 3 rules still fail (nothing a fix op can repair), 2
 * bad usage or input refused (nothing written), 1 runtime failure (nothing written). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "artifact/version.h"
#include "fixup/produce.h"
#include "fixup/rewrite.h"
#include "fixup/w4a8.h"
#include "verify/vctx.h"


static void usage(FILE *f)
{
    fputs("usage: dsv4-fixup ARTIFACT [--source SRC] (-o OUT | --in-place | --dry-run) [--to-w4a8] [--json]\n"
          "                  [--quiet] [--only RULE,...] [--threads N]\n"
          "  ARTIFACT        the checkpoint folder to repair\n"
          "  --source SRC    the checkpoint it was made from (restores the MTP block, the FP32 set, config keys)\n"
          "  -o OUT          write the repaired artifact to the new folder OUT (unchanged files are hard links)\n"
          "  --in-place      replace ARTIFACT atomically (the old and new folders are exchanged in one rename)\n"
          "  --dry-run       print the repairs and what would be written; write nothing\n"
          "  --to-w4a8       rewrite a W4A16 artifact's config as W4A8 (FP8 dynamic per-token activations on the\n"
          "                  INT4 experts group; weights unchanged; provenance recorded)\n"
          "  --json          print a JSON report on stdout\n"
          "  --quiet         no progress, no listing of the repairs\n"
          "  --only IDS      run only these rules (comma-separated ids, see dsv4-verify --list-rules)\n"
          "  --threads N     shards rewritten in parallel (default: one per core)\n",
          f);
}

/* One op as a line: "rename  a -> b   [rule]". */
static void op_text(const dsv4_fix_op *op, char *buf, size_t cap)
{
    char shape[200], from[600], *val = NULL;
    size_t off = (size_t)snprintf(buf, cap, "%-7s ", dsv4_fix_kind_name(op->kind));
    switch (op->kind) {
    case DSV4_FIX_RENAME:
        off += (size_t)snprintf(buf + off, cap - off, "%s -> %s", op->name, op->new_name);
        break;
    case DSV4_FIX_RESHAPE:
        off += (size_t)snprintf(buf + off, cap - off, "%s %s %s", op->name, dsv4_dtype_name(op->dtype),
                                dsv4_dims_str(op->shape, op->ndim, shape, sizeof shape));
        break;
    case DSV4_FIX_PUT:
        off += (size_t)snprintf(buf + off, cap - off, "%s %s %s = %s", op->name, dsv4_dtype_name(op->dtype),
                                dsv4_dims_str(op->shape, op->ndim, shape, sizeof shape),
                                dsv4_fix_produce_text(op, from, sizeof from));
        break;
    case DSV4_FIX_DROP:
        off += (size_t)snprintf(buf + off, cap - off, "%s", op->name);
        break;
    case DSV4_FIX_CONFIG:
        for (size_t k = 0; k < op->depth && off < cap; k++)
            off += (size_t)snprintf(buf + off, cap - off, "%s%s", k ? "." : "", op->path[k]);
        val = op->value ? json_dumps(op->value, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        if (off < cap)
            off += (size_t)snprintf(buf + off, cap - off, op->value ? " = %s" : " (deleted)", val ? val : "?");
        free(val);
        break;
    case DSV4_FIX_INDEX:
        off += (size_t)snprintf(buf + off, cap - off, "rebuild %s from the shard headers", DSV4_INDEX_NAME);
        break;
    }
    if (off < cap)
        snprintf(buf + off, cap - off, "   [%s]", op->rule ? op->rule : "?");
}

static json_t *op_json(const dsv4_fix_op *op)
{
    char line[2048], shape[200];
    op_text(op, line, sizeof line);
    json_t *o = json_pack("{s:s,s:s,s:s}", "kind", dsv4_fix_kind_name(op->kind), "rule", op->rule ? op->rule : "?",
                          "text", line);
    if (op->name)
        json_object_set_new(o, "name", json_string(op->name));
    if (op->new_name)
        json_object_set_new(o, "new_name", json_string(op->new_name));
    if (op->kind == DSV4_FIX_RESHAPE || op->kind == DSV4_FIX_PUT) {
        json_object_set_new(o, "dtype", json_string(dsv4_dtype_name(op->dtype)));
        json_object_set_new(o, "shape", json_string(dsv4_dims_str(op->shape, op->ndim, shape, sizeof shape)));
    }
    if (op->kind == DSV4_FIX_PUT) {
        char from[600];
        json_object_set_new(o, "from", json_string(dsv4_fix_produce_text(op, from, sizeof from)));
        if (op->near)
            json_object_set_new(o, "near", json_string(op->near));
    }
    if (op->kind == DSV4_FIX_CONFIG)
        json_object_set(o, "value", op->value ? op->value : json_null());
    if (op->why)
        json_object_set_new(o, "why", json_string(op->why));
    return o;
}

/* Failed rules that asked for no fix op: what this run cannot repair. */
static size_t unrepaired(const dsv4_vctx *v, FILE *f, json_t *arr)
{
    size_t n = 0;
    for (size_t i = 0; i < v->n_results; i++) {
        const dsv4_rule_result *r = &v->results[i];
        if (r->status != DSV4_RS_FAIL || r->n_fixes)
            continue;
        n++;
        if (f)
            fprintf(f, "not repaired: %s: %s%s\n", r->rule->id, r->n_kept ? r->evidence[0] : r->rule->title,
                    r->n_found > 1 ? " (and more)" : "");
        if (arr) {
            json_t *ev = json_array();
            for (size_t k = 0; k < r->n_kept; k++)
                json_array_append_new(ev, json_string(r->evidence[k]));
            json_array_append_new(arr, json_pack("{s:s,s:s,s:I,s:o}", "rule", r->rule->id, "severity",
                                                 r->rule->severity == DSV4_SEV_ERROR ? "error" : "warning", "found",
                                                 (json_int_t)r->n_found, "evidence", ev));
        }
    }
    return n;
}

static json_t *stats_json(const dsv4_rewrite_stats *st)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:b,s:b}", "shards_linked",
                     (json_int_t)st->shards_linked, "shards_header_only", (json_int_t)st->shards_header_only,
                     "shards_rewritten", (json_int_t)st->shards_rewritten, "renamed", (json_int_t)st->renamed,
                     "reshaped", (json_int_t)st->reshaped, "put", (json_int_t)st->put, "dropped",
                     (json_int_t)st->dropped, "config_ops", (json_int_t)st->config_ops, "bytes_written",
                     (json_int_t)st->bytes_written, "bytes_kernel_copied", (json_int_t)st->bytes_kernel_copied,
                     "index_rewritten", st->index_rewritten, "manifest_rewritten", st->manifest_rewritten,
                     "config_rewritten", st->config_rewritten);
}

static void print_json(json_t *r)
{
    char *s = json_dumps(r, JSON_INDENT(2));
    if (s)
        puts(s);
    free(s);
}

typedef struct args {
    const char *artifact, *source, *out, *only;
    int in_place, dry_run, to_w4a8, as_json, quiet, threads;
} args;

static int parse_args(int argc, char **argv, args *a)
{
    enum { OPT_SOURCE = 256, OPT_IN_PLACE, OPT_DRY, OPT_W4A8, OPT_JSON, OPT_QUIET, OPT_ONLY, OPT_THREADS, OPT_HELP };
    static const struct option opts[] = {
        {"source", required_argument, 0, OPT_SOURCE}, {"in-place", no_argument, 0, OPT_IN_PLACE},
        {"dry-run", no_argument, 0, OPT_DRY},         {"to-w4a8", no_argument, 0, OPT_W4A8},
        {"json", no_argument, 0, OPT_JSON},           {"quiet", no_argument, 0, OPT_QUIET},
        {"only", required_argument, 0, OPT_ONLY},     {"threads", required_argument, 0, OPT_THREADS},
        {"output", required_argument, 0, 'o'},        {"help", no_argument, 0, OPT_HELP},
        {0, 0, 0, 0},
    };
    memset(a, 0, sizeof *a);
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case OPT_SOURCE: a->source = optarg; break;
        case 'o': a->out = optarg; break;
        case OPT_IN_PLACE: a->in_place = 1; break;
        case OPT_DRY: a->dry_run = 1; break;
        case OPT_W4A8: a->to_w4a8 = 1; break;
        case OPT_JSON: a->as_json = 1; break;
        case OPT_QUIET: a->quiet = 1; break;
        case OPT_ONLY: a->only = optarg; break;
        case OPT_THREADS:
            a->threads = (int)strtol(optarg, &end, 10);
            if (*end || a->threads < 1 || a->threads > 64) {
                fprintf(stderr, "dsv4-fixup: --threads expects 1 to 64, got '%s'\n", optarg);
                return -1;
            }
            break;
        case OPT_HELP: usage(stdout); exit(0);
        default: return -1;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "dsv4-fixup: expected one ARTIFACT path\n");
        return -1;
    }
    a->artifact = argv[optind];
    if (a->out && a->in_place) {
        fprintf(stderr, "dsv4-fixup: -o and --in-place exclude each other\n");
        return -1;
    }
    if (!a->dry_run && !a->out && !a->in_place) {
        fprintf(stderr, "dsv4-fixup: say where the result goes: -o OUT (a new folder) or --in-place (or --dry-run)\n");
        return -1;
    }
    return 0;
}

static int fail(const args *a, const char *what, const dsv4_err *e)
{
    fprintf(stderr, "dsv4-fixup: %s%s%s\n", what ? what : "", what ? ": " : "", e->msg);
    (void)a;
    return e->code ? e->code : 1;
}

/* Re-opens the result and runs the rules again: 0 clean, 3 failing, or an error code. */
static int recheck(const args *a, const char *path, json_t *report)
{
    dsv4_vctx v;
    dsv4_err e = {{0}, 0};
    if (dsv4_vctx_open(&v, path, a->source, &e) || dsv4_vctx_run(&v, a->only, &e)) {
        dsv4_wrap(&e, "the repaired artifact %s does not check", path);
        return fail(a, NULL, &e);
    }
    size_t errors = dsv4_vctx_count(&v, DSV4_SEV_ERROR);
    if (report)
        json_object_set_new(report, "result", dsv4_vctx_report(&v));
    else if (errors || dsv4_vctx_count(&v, DSV4_SEV_WARNING))
        dsv4_vctx_print(&v, stdout, 0);
    else if (!a->quiet)
        printf("PASS: every rule passes on %s\n", path);
    dsv4_vctx_close(&v);
    return errors ? 3 : 0;
}

int main(int argc, char **argv)
{
    args a;
    if (parse_args(argc, argv, &a)) {
        usage(stderr);
        return 2;
    }
    struct stat sb;
    if (stat(a.artifact, &sb)) {
        fprintf(stderr, "dsv4-fixup: %s: %s\n", a.artifact, errno == ENOENT ? "no such file or folder" : strerror(errno));
        return 2;
    }
    dsv4_vctx v;
    dsv4_err e = {{0}, 0};
    if (dsv4_vctx_open(&v, a.artifact, a.source, &e))
        return fail(&a, NULL, &e);
    int rc = 0;
    json_t *report = a.as_json ? json_pack("{s:s,s:s,s:s,s:s?}", "tool", "dsv4-fixup", "version", DSV4_VERSION,
                                           "artifact", a.artifact, "source", a.source)
                               : NULL;
    if (dsv4_vctx_run(&v, a.only, &e)) {
        rc = fail(&a, NULL, &e);
        goto out;
    }
    if (a.to_w4a8) {
        if (dsv4_fix_to_w4a8(&v, &e)) {
            rc = fail(&a, "--to-w4a8", &e);
            goto out;
        }
    }
    FILE *txt = a.as_json ? NULL : stdout;
    json_t *ops = report ? json_array() : NULL, *unrep = report ? json_array() : NULL;
    for (size_t i = 0; i < v.fixes.n; i++) {
        char line[2048];
        op_text(&v.fixes.v[i], line, sizeof line);
        if (txt && (!a.quiet || a.dry_run))
            printf("%s\n", line);
        if (ops)
            json_array_append_new(ops, op_json(&v.fixes.v[i]));
    }
    size_t n_unrep = unrepaired(&v, txt, unrep);
    if (report) {
        json_object_set_new(report, "ops", ops);
        json_object_set_new(report, "not_repaired", unrep);
    }
    size_t errors_left = 0;
    for (size_t i = 0; i < v.n_results; i++)
        errors_left += v.results[i].status == DSV4_RS_FAIL && !v.results[i].n_fixes &&
                       v.results[i].rule->severity == DSV4_SEV_ERROR;
    if (!v.fixes.n) {
        if (txt)
            printf("nothing to fix: %s already satisfies every rule it can repair%s\n", a.artifact,
                   n_unrep ? " (the failures above need a re-conversion or a person)" : "");
        if (report)
            json_object_set_new(report, "status", json_string("nothing-to-fix"));
        rc = errors_left ? 3 : 0;
        goto out;
    }
    dsv4_rewrite_opts o = {.out = a.out, .dry_run = a.dry_run, .threads = a.threads, .quiet = a.quiet || a.as_json};
    dsv4_rewrite_stats st;
    if (dsv4_rewrite(&v.art.ck, v.art.config, &v.fixes, &o, &st, &e)) {
        rc = fail(&a, NULL, &e);
        if (report)
            json_object_set_new(report, "error", json_string(e.msg));
        goto out;
    }
    if (report)
        json_object_set_new(report, "stats", stats_json(&st));
    if (txt && (!a.quiet || a.dry_run))
        printf("%s %zu ops: %zu renamed, %zu reshaped, %zu put, %zu dropped, %zu config; shards: %zu linked, %zu "
               "header-only, %zu rewritten%s\n",
               a.dry_run ? "would apply" : "applied", v.fixes.n, st.renamed, st.reshaped, st.put, st.dropped,
               st.config_ops, st.shards_linked, st.shards_header_only, st.shards_rewritten,
               a.dry_run ? " (dry run: nothing written)" : "");
    if (a.dry_run) {
        if (report)
            json_object_set_new(report, "status", json_string("dry-run"));
        rc = 0;
        goto out;
    }
    if (txt && !a.quiet)
        printf("wrote %s (%.1f MB written, %.1f MB copied by the kernel or linked)\n", a.out ? a.out : a.artifact,
               (double)st.bytes_written / 1e6, (double)st.bytes_kernel_copied / 1e6);
    dsv4_vctx_close(&v);
    rc = recheck(&a, a.out ? a.out : a.artifact, report);
    if (report) {
        json_object_set_new(report, "output", json_string(a.out ? a.out : a.artifact));
        json_object_set_new(report, "status", json_string(rc == 0 ? "clean" : rc == 3 ? "rules-fail" : "error"));
        print_json(report);
        json_decref(report);
    }
    return rc;
out:
    if (report) {
        print_json(report);
        json_decref(report);
    }
    dsv4_vctx_close(&v);
    return rc;
}
