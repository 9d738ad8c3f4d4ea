/* dsv4-quant: convert a DeepSeek-V4 checkpoint (the release layout, or BF16) into the artifact a
 * recipe describes, in one streaming pass, then verify it: the static rules against the source
 * always, and the dynamic comparison with the source (libquant/eval) on held-out rows (SRC's
 * eval.tokens.safetensors, or --eval-data), on the GPU when there is one, unless --no-eval. The
 * report is stored in the artifact as dsv4_verify.json, written before the folder is renamed into
 * place (libquant/eval/after_convert.h). --dry-run prints the plan; --compare-tensor regenerates
 * one tensor and byte-compares it with an existing artifact.
 * Exit codes: 0 done and verified, 1 runtime failure, 2 bad usage or input (nothing written), 3 a
 * rule or quality gate failed (the artifact and its report are kept), or a compared tensor
 * differs. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifact/convert.h"
#include "artifact/layout.h"
#include "eval/after_convert.h"
#include "eval/report.h"
#include "gptq/calib.h"
#include "io/atomic.h"
#include "util/pages.h"

static void usage(FILE *f)
{
    fputs("usage: dsv4-quant --recipe RECIPE [--dry-run] [--json] [--threads N] [--quiet]\n"
          "                  [--compare-tensor NAME] [--no-eval | --eval-data DATA ...] [gates] SRC OUT\n"
          "  SRC                  source checkpoint folder (release layout or BF16) with config.json\n"
          "  OUT                  artifact folder to create (must not exist); with --compare-tensor, an\n"
          "                       existing artifact to compare against\n"
          "  --recipe RECIPE      recipes/w4a16.yaml, nvfp4.yaml, w4a8.yaml, fp8.yaml, bf16.yaml, or an\n"
          "                       llm-compressor recipe.yaml\n"
          "  --dry-run            print the plan (every tensor's scheme, bytes, totals, peak memory)\n"
          "  --json               print the plan or the summary as JSON\n"
          "  --threads N          worker threads (default: one per core)\n"
          "  --compare-tensor N   regenerate tensor N and byte-compare it with OUT's\n"
          "verification of the new artifact (report: OUT/dsv4_verify.json; static rules always):\n"
          "  --no-eval            skip the dynamic comparison with the source (the report records it)\n"
          "  --eval-data DATA     its data (default: SRC/eval.tokens.safetensors; .safetensors input_ids or\n"
          "                       .jsonl text); without either the dynamic part is skipped and recorded\n"
          "  --eval-rows N        rows (default 4); --eval-len L: predictions per row (default 128);\n"
          "  --eval-offset K      rows skipped first (default 0)\n"
          "  --eval-device D      auto (the GPU when there is one; the CPU for models that fit in half the\n"
          "                       memory, else skipped), cpu or cuda\n"
          "  --eval-spec-prompts N  speculative decoding prompts (default 2; 0: off)\n"
          "  gate flags (below) override the recipe's `gates:` section, which overrides the defaults\n"
          "GPTQ (recipe groups with method: gptq; libquant/gptq/calib.h):\n"
          "  --calib-data DATA    calibration rows (.safetensors input_ids or .jsonl text; default: the\n"
          "                       recipe's calibration.data, else SRC/calib.tokens.safetensors)\n"
          "  --calib-samples N, --calib-seq-len L   override the recipe's calibration samples / seq_len\n"
          "  --calib-device D     auto (default), cpu or cuda\n"
          "  --work-dir DIR       per-layer checkpoints (default OUT.gptq-work, removed when done); a run\n"
          "                       that was stopped continues from its last finished layer\n"
          "  --keep-work          keep the work folder\n"
          "  --save-hessians DIR  save every layer's Hessians; --hessians DIR: quantize from saved ones\n"
          "                       (no calibration pass: one calibration, many packs)\n",
          f);
    dsv4_gates_usage(f);
}

static json_t *plan_json(const dsv4_plan *p, const dsv4_recipe *r, int threads)
{
    json_t *tensors = json_array();
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++) {
        const dsv4_plan_job *j = &p->jobs[i];
        for (int k = 0; k < j->n_out; k++, n++) {
            json_t *shape = json_array();
            for (int d = 0; d < j->out[k].ndim; d++)
                json_array_append_new(shape, json_integer((json_int_t)j->out[k].shape[d]));
            json_array_append_new(tensors, json_pack("{s:s,s:s,s:o,s:I,s:s,s:s?}", "name", j->out[k].name, "dtype",
                                                     dsv4_dtype_name(j->out[k].dtype), "shape", shape, "bytes",
                                                     (json_int_t)dsv4_plan_out_bytes(&j->out[k]), "job",
                                                     dsv4_job_kind_name(j->kind), "group",
                                                     j->group >= 0 ? r->groups[j->group].name : NULL));
        }
    }
    return json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "recipe", r->path, "recipe_xxh3_128", r->hash, "jobs",
                     (json_int_t)p->n, "tensors", (json_int_t)n, "bytes", (json_int_t)p->out_bytes,
                     "max_shard_bytes", (json_int_t)r->max_shard_bytes, "threads", (json_int_t)threads,
                     "peak_memory_bytes", (json_int_t)(p->peak_job_bytes * (uint64_t)threads), "tensor_list", tensors);
}

static void print_plan(const dsv4_plan *p, const dsv4_recipe *r, int threads)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++) {
        const dsv4_plan_job *j = &p->jobs[i];
        for (int k = 0; k < j->n_out; k++, n++) {
            char shape[64];
            dsv4_dims_str(j->out[k].shape, j->out[k].ndim, shape, sizeof shape);
            printf("%-60s %-8s %-16s %12llu  %s%s%s\n", j->out[k].name, dsv4_dtype_name(j->out[k].dtype), shape,
                   (unsigned long long)dsv4_plan_out_bytes(&j->out[k]), dsv4_job_kind_name(j->kind),
                   j->group >= 0 ? " " : "", j->group >= 0 ? r->groups[j->group].name : "");
        }
    }
    printf("plan: %zu tensors from %zu jobs, %llu bytes (%.3f GB) in shards of at most %.3f GB\n", n, p->n,
           (unsigned long long)p->out_bytes, (double)p->out_bytes / 1e9, (double)r->max_shard_bytes / 1e9);
    printf("peak memory: about %d threads x %llu bytes per job = %.3f GB (independent of the model's size)\n",
           threads, (unsigned long long)p->peak_job_bytes, (double)p->peak_job_bytes * threads / 1e9);
}

/* --compare-tensor: 0 identical, 3 different, -1 error. */
static int compare_tensor(const dsv4_plan *p, const dsv4_recipe *r, const char *out, const char *name,
                          dsv4_err *e)
{
    dsv4_ckpt a;
    if (dsv4_ckpt_open(out, 0, &a, e))
        return -1;
    const dsv4_tensor *t = dsv4_ckpt_find(&a, name);
    if (!t) {
        dsv4_fail(e, "%s: the artifact has no tensor '%s'", out, name);
        dsv4_ckpt_close(&a);
        return -1;
    }
    uint8_t *bytes;
    uint64_t n;
    if (dsv4_convert_one(p, r, name, &bytes, &n, e)) {
        dsv4_ckpt_close(&a);
        return -1;
    }
    int same = n == dsv4_tensor_nbytes(t) && memcmp(bytes, t->data, n) == 0;
    uint64_t first = 0;
    if (!same && n == dsv4_tensor_nbytes(t))
        while (first < n && bytes[first] == t->data[first])
            first++;
    if (same)
        printf("%s: identical (%llu bytes)\n", name, (unsigned long long)n);
    else if (n != dsv4_tensor_nbytes(t))
        printf("%s: DIFFERS: regenerated %llu bytes, artifact holds %llu\n", name, (unsigned long long)n,
               (unsigned long long)dsv4_tensor_nbytes(t));
    else
        printf("%s: DIFFERS from byte %llu of %llu\n", name, (unsigned long long)first, (unsigned long long)n);
    free(bytes);
    dsv4_ckpt_close(&a);
    return same ? 0 : 3;
}

static const void *store_get(const void *ctx, const char *name, uint64_t *n)
{
    return dsv4_gptq_store_get(ctx, name, n);
}

int main(int argc, char **argv)
{
    const char *recipe_path = NULL, *compare = NULL;
    int dry = 0, json = 0, quiet = 0, threads = 0;
    dsv4_after_convert_flags ef;
    memset(&ef, 0, sizeof ef);
    ef.spec_prompts = 2;
    dsv4_gates_default(&ef.flags);
    enum { OPT_NO_EVAL = 256, OPT_EDATA, OPT_EROWS, OPT_ELEN, OPT_EOFF, OPT_EDEV, OPT_ESPEC, OPT_GATE, OPT_CDATA,
           OPT_CSAMP, OPT_CLEN, OPT_CDEV, OPT_WORK, OPT_KEEP, OPT_SAVEH, OPT_LOADH };
    dsv4_calib_opts co = {0};
    int keep_work = 0;
    struct option opts[48] = {{"calib-data", required_argument, 0, OPT_CDATA},
                              {"calib-samples", required_argument, 0, OPT_CSAMP},
                              {"calib-seq-len", required_argument, 0, OPT_CLEN},
                              {"calib-device", required_argument, 0, OPT_CDEV},
                              {"work-dir", required_argument, 0, OPT_WORK},
                              {"keep-work", no_argument, 0, OPT_KEEP},
                              {"save-hessians", required_argument, 0, OPT_SAVEH},
                              {"hessians", required_argument, 0, OPT_LOADH},
                              {"recipe", required_argument, 0, 'r'},      {"dry-run", no_argument, 0, 'n'},
                              {"json", no_argument, 0, 'j'},              {"threads", required_argument, 0, 't'},
                              {"quiet", no_argument, 0, 'q'},             {"compare-tensor", required_argument, 0, 'c'},
                              {"help", no_argument, 0, 'h'},              {"no-eval", no_argument, 0, OPT_NO_EVAL},
                              {"eval-data", required_argument, 0, OPT_EDATA}, {"eval-rows", required_argument, 0, OPT_EROWS},
                              {"eval-len", required_argument, 0, OPT_ELEN}, {"eval-offset", required_argument, 0, OPT_EOFF},
                              {"eval-device", required_argument, 0, OPT_EDEV},
                              {"eval-spec-prompts", required_argument, 0, OPT_ESPEC}};
    int no = 22;
    for (int i = 0; i < DSV4_GATE_COUNT; i++)
        opts[no++] = (struct option){dsv4_gate_defs[i].flag, required_argument, 0, OPT_GATE};
    opts[no] = (struct option){0, 0, 0, 0};
    int ch, idx;
    dsv4_err fe = {{0}, 0};
    while ((ch = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
        switch (ch) {
        case OPT_NO_EVAL: ef.no_eval = 1; break;
        case OPT_CDATA: co.data = optarg; break;
        case OPT_WORK: co.work_dir = optarg; break;
        case OPT_KEEP: keep_work = 1; break;
        case OPT_SAVEH: co.save_hessians = optarg; break;
        case OPT_LOADH: co.load_hessians = optarg; break;
        case OPT_CSAMP:
        case OPT_CLEN: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (end == optarg || *end || v < (ch == OPT_CLEN ? 2 : 1) || v > 10000000) {
                fprintf(stderr, "dsv4-quant: --%s expects a positive integer%s, got '%s'\n", opts[idx].name,
                        ch == OPT_CLEN ? " (at least 2)" : "", optarg);
                return 2;
            }
            *(ch == OPT_CSAMP ? &co.samples : &co.seq_len) = (int)v;
            break;
        }
        case OPT_EDATA: ef.data = optarg; break;
        case OPT_EDEV:
        case OPT_CDEV:
            if (strcmp(optarg, "auto") && strcmp(optarg, "cpu") && strcmp(optarg, "cuda")) {
                fprintf(stderr, "dsv4-quant: --%s expects auto, cpu or cuda, got '%s'\n", opts[idx].name, optarg);
                return 2;
            }
            *(ch == OPT_EDEV ? &ef.device : &co.device) = optarg;
            break;
        case OPT_EROWS:
        case OPT_ELEN:
        case OPT_EOFF:
        case OPT_ESPEC: {
            char *end;
            long long v = strtoll(optarg, &end, 10);
            int zero_ok = ch == OPT_EOFF || ch == OPT_ESPEC;
            if (end == optarg || *end || v < (zero_ok ? 0 : 1) || v > (1LL << 40)) {
                fprintf(stderr, "dsv4-quant: --%s expects %s integer, got '%s'\n", opts[idx].name,
                        zero_ok ? "a non-negative" : "a positive", optarg);
                return 2;
            }
            *(ch == OPT_EROWS ? &ef.rows : ch == OPT_ELEN ? &ef.len : ch == OPT_EOFF ? &ef.offset : &ef.spec_prompts) = v;
            break;
        }
        case OPT_GATE: {
            int g = dsv4_gate_by_flag(opts[idx].name);
            if (dsv4_gates_set_flag(&ef.flags, (dsv4_gate_id)g, optarg, &fe)) {
                fprintf(stderr, "dsv4-quant: %s\n", fe.msg);
                return 2;
            }
            ef.flag_set[g] = 1;
            break;
        }
        case 'r': recipe_path = optarg; break;
        case 'n': dry = 1; break;
        case 'j': json = 1; break;
        case 'q': quiet = 1; break;
        case 'c': compare = optarg; break;
        case 't':
            threads = atoi(optarg);
            if (threads < 1 || threads > 64) {
                fprintf(stderr, "dsv4-quant: --threads takes 1 to 64\n");
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!recipe_path || optind != argc - 2) {
        usage(stderr);
        return 2;
    }
    const char *src = argv[optind], *out = argv[optind + 1];
    dsv4_err e = {{0}, 0};
    struct stat st;
    if (!dry && !compare && lstat(out, &st) == 0) {
        fprintf(stderr, "dsv4-quant: %s already exists; refusing to write over it\n", out);
        return 2;
    }
    dsv4_ckpt c;
    dsv4_config cfg;
    dsv4_recipe r;
    dsv4_plan p;
    memset(&p, 0, sizeof p);
    int rc = 0, have_c = 0, have_r = 0, have_ac = 0;
    dsv4_after_convert ac;
    memset(&ac, 0, sizeof ac);
    json_t *raw = NULL;
    char cpath[4096], work[4200];
    dsv4_gptq_store *store = NULL;
    if (dsv4_ckpt_open(src, 0, &c, &e)) {
        rc = -1;
        goto done;
    }
    have_c = 1;
    snprintf(cpath, sizeof cpath, "%s/config.json", c.dir);
    json_error_t je;
    if (dsv4_config_load(cpath, &cfg, &e) || !(raw = json_load_file(cpath, 0, &je))) {
        if (!raw && !e.msg[0])
            dsv4_fail(&e, "%s: %s", cpath, je.text);
        rc = -1;
        goto done;
    }
    dsv4_layout_info li;
    dsv4_layout_detect(&c, raw, &li);
    if (li.layout == DSV4_LAYOUT_COMPRESSED_TENSORS || li.layout == DSV4_LAYOUT_UNKNOWN) {
        dsv4_fail(&e, "%s: the source is a %s checkpoint; dsv4-quant reads DeepSeek's release layout or a BF16 "
                  "checkpoint", src, dsv4_layout_name(li.layout));
        rc = -1;
        goto done;
    }
    if (!quiet && !json)
        fprintf(stderr, "dsv4-quant: source %s: %s layout, %s names, %zu tensors\n", src, dsv4_layout_name(li.layout),
                dsv4_naming_name(li.naming), c.n);
    if (dsv4_recipe_load(recipe_path, &r, &e)) {
        rc = -1;
        goto done;
    }
    have_r = 1;
    if (dsv4_plan_build(&c, &cfg, raw, &r, &p, &e)) {
        rc = -1;
        goto done;
    }
    if (dry) {
        if (json) {
            json_t *j = plan_json(&p, &r, dsv4_convert_threads(threads));
            json_dumpf(j, stdout, JSON_INDENT(2));
            printf("\n");
            json_decref(j);
        } else {
            print_plan(&p, &r, dsv4_convert_threads(threads));
        }
    } else if (compare) {
        rc = compare_tensor(&p, &r, out, compare, &e);
    } else {
        dsv4_tty_progress prog;
        dsv4_tty_progress_init(&prog, "dsv4-quant");
        prog.on = prog.on && !quiet;
        if (dsv4_after_convert_setup(&ac, src, out, &c, &r, &ef, threads, dsv4_tty_progress_fn, &prog, &e)) {
            rc = -1;
            goto done;
        }
        have_ac = 1;
        dsv4_convert_opts o = {threads, !quiet && isatty(2), NULL, NULL, NULL};
        if (dsv4_plan_has_gptq(&p, &r)) {
            snprintf(work, sizeof work, "%s.gptq-work", out);
            if (!co.work_dir)
                co.work_dir = work;
            else
                keep_work = 1;
            co.threads = threads;
            co.progress = !quiet && !json;
            if (dsv4_calib_run(src, &p, &r, &co, &store, &e)) {
                rc = -1;
                goto done;
            }
            o.precomputed = store_get;
            o.precomputed_ctx = store;
            o.calibration = json_incref(dsv4_gptq_store_report(store));
        }
        dsv4_convert_stats s;
        int crc = dsv4_convert_run_hooked(&c, &p, &r, out, &o, dsv4_after_convert_hook, &ac, &s, &e);
        dsv4_tty_progress_end(&prog);
        json_decref(o.calibration);
        if (crc == 0 && store && !keep_work)
            dsv4_rmtree(co.work_dir);
        if (crc) {
            rc = -1;
            goto done;
        }
        rc = ac.exit_code;
        size_t inexact = json_array_size(s.inexact);
        if (json) {
            json_t *j = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:i,s:f,s:O,s:O}", "artifact", out, "source_layout",
                                  dsv4_layout_name(li.layout), "recipe", r.path, "peak_rss_bytes",
                                  (json_int_t)ac.convert_peak_rss, "verify_peak_rss_bytes",
                                  (json_int_t)dsv4_peak_rss(), "tensors",
                                  (json_int_t)s.tensors, "shards", (json_int_t)s.shards, "bytes",
                                  (json_int_t)s.out_bytes, "threads", s.threads, "seconds", s.seconds - ac.seconds,
                                  "inexact_conversions", s.inexact, "verify", ac.report);
            json_object_set_new(j, "verify_seconds", json_real(ac.seconds));
            json_dumpf(j, stdout, JSON_INDENT(2));
            printf("\n");
            json_decref(j);
        } else if (!quiet) {
            printf("dsv4-quant: wrote %s: %zu tensors, %zu shards, %llu bytes in %.2f s with %d threads, peak "
                   "resident memory %.1f MB (%.1f MB with the verification)\n", out, s.tensors, s.shards,
                   (unsigned long long)s.out_bytes, s.seconds - ac.seconds, s.threads, ac.convert_peak_rss / 1e6,
                   dsv4_peak_rss() / 1e6);
            for (size_t i = 0; i < inexact; i++) {
                json_t *x = json_array_get(s.inexact, i);
                printf("  not exact: %s (%s): %lld values, max abs error %g\n",
                       json_string_value(json_object_get(x, "tensor")), json_string_value(json_object_get(x, "job")),
                       (long long)json_integer_value(json_object_get(x, "values")),
                       json_real_value(json_object_get(x, "max_abs_err")));
            }
        }
        if (!json)
            dsv4_after_convert_print(&ac, stdout, quiet);
        if (rc == DSV4_EXIT_GATE)
            fprintf(stderr, "dsv4-quant: %s was written, but its verification failed (report: %s/%s)\n", out, out,
                    DSV4_VERIFY_REPORT);
        else if (rc)
            fprintf(stderr, "dsv4-quant: %s was written, but its dynamic verification did not run: %s\n", out,
                    ac.ck.eval_err.msg);
        dsv4_convert_stats_free(&s);
    }
done:
    if (rc < 0)
        fprintf(stderr, "dsv4-quant: %s\n", e.msg);
    dsv4_gptq_store_close(store);
    if (have_ac)
        dsv4_after_convert_free(&ac);
    dsv4_plan_free(&p);
    json_decref(raw);
    if (have_r)
        dsv4_recipe_free(&r);
    if (have_c)
        dsv4_ckpt_close(&c);
    return rc < 0 ? (e.code ? e.code : 1) : rc;
}
