/* dsv4-verify: check an artifact against the contract rules (libquant/verify): names, MTP block and
 * aliases, the FP32 set, router tensors, compressor/indexer storage, scale conventions, config.json
 * and its quantization_config simulated against vLLM's module names, index and shards, and the
 * tensor inventory. With --source, the rules that compare values with the source run too. With
 * --eval DATA (and --source), the dynamic part: both models run on the data with the built-in
 * runner (libquant/eval): perplexity, KL divergence, top-1 agreement, Δp, MTP acceptance and the
 * per-layer error, judged by the quality gates.
 * Exit codes: 0 every rule and gate passed, 3 a rule or gate failed (warnings too with --strict),
 * 2 unreadable input or bad usage, 1 runtime failure. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/check.h"
#include "eval/report.h"
#include "recipe/recipe.h"

static void usage(FILE *f)
{
    fputs("usage: dsv4-verify [--static] ARTIFACT [--source SRC] [--json] [--only RULE,...] [--strict] [-v]\n"
          "       dsv4-verify ARTIFACT --source SRC --eval DATA [--rows N] [--len L] [--offset K]\n"
          "                   [--device auto|cpu|cuda] [--threads N] [--spec-prompts N] [--spec-tokens N]\n"
          "                   [--recipe RECIPE] [--max-ppl-increase PCT] [--max-kl MEAN] [--min-top1 PCT]\n"
          "                   [--min-accept PCT] [--max-accept-drop PTS] [--json]\n"
          "       dsv4-verify --list-rules [--json]\n"
          "  ARTIFACT        the checkpoint folder to check (or its index / single .safetensors file)\n"
          "  --static        run the static contract rules (always run; the default when --eval is absent)\n"
          "  --source SRC    the checkpoint it was made from: also compare MTP, FP32 set and config with it\n"
          "  --json          print the report as JSON on stdout\n"
          "  --only IDS      run only these rules (comma-separated ids, see --list-rules)\n"
          "  --strict        warnings fail too (exit 3)\n"
          "  -v, --verbose   list passed and skipped rules as well\n"
          "  --list-rules    print every rule: id, severity, whether it needs --source, what it checks, its fix\n"
          "dynamic verification (needs --source):\n"
          "  --eval DATA     token rows (.safetensors with input_ids I32/I64 [rows, len]) or text (.jsonl of\n"
          "                  {\"text\": ...} lines, tokenized with the source's tokenizer)\n"
          "  --rows N        rows to use (default: all); --offset K: skip K rows first (held-out selection)\n"
          "  --len L         predictions per row (a row is L+1 tokens; default: the file's rows; JSONL 512)\n"
          "  --device D      auto (GPU when there is one, the default), cpu or cuda; --threads N: CPU threads\n"
          "  --spec-prompts N  greedy speculative decoding on the first N rows (default min(rows, 4); 0: off)\n"
          "  --spec-tokens N   tokens generated per prompt (default 32); prompts are min(64, L/2) tokens\n"
          "  --recipe RECIPE  take the gates from this recipe's `gates:` section (recipes/README.md)\n",
          f);
    dsv4_gates_usage(f);
}

static int list_rules(int as_json)
{
    size_t n;
    const dsv4_rule *const *r = dsv4_rules(&n);
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        if (as_json) {
            json_t *o = json_object();
            json_object_set_new(o, "id", json_string(r[i]->id));
            json_object_set_new(o, "title", json_string(r[i]->title));
            json_object_set_new(o, "checks", json_string(r[i]->checks));
            json_object_set_new(o, "severity", json_string(r[i]->severity == DSV4_SEV_ERROR ? "error" : "warning"));
            json_object_set_new(o, "needs_source", json_boolean(r[i]->needs_source));
            json_object_set_new(o, "fix", r[i]->fix ? json_string(r[i]->fix) : json_null());
            json_array_append_new(a, o);
        } else {
            printf("%-26s %-7s %s%s\n", r[i]->id, r[i]->severity == DSV4_SEV_ERROR ? "error" : "warning",
                   r[i]->title, r[i]->needs_source ? " (needs --source)" : "");
            printf("%-26s         checks: %s\n", "", r[i]->checks);
            printf("%-26s         fix: %s\n", "", r[i]->fix ? r[i]->fix : "none (re-convert)");
        }
    }
    if (as_json) {
        char *s = json_dumps(a, JSON_INDENT(2));
        if (s)
            puts(s);
        free(s);
    }
    json_decref(a);
    return 0;
}

/* A positive (or, with zero_ok, non-negative) integer option. */
static int int_opt(const char *name, const char *v, int zero_ok, int64_t *out)
{
    char *end;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || x < (zero_ok ? 0 : 1) || x > (1LL << 40)) {
        fprintf(stderr, "dsv4-verify: --%s expects %s integer, got '%s'\n", name, zero_ok ? "a non-negative" : "a positive",
                v);
        return -1;
    }
    *out = x;
    return 0;
}

int main(int argc, char **argv)
{
    const char *source = NULL, *recipe = NULL;
    int as_json = 0, verbose = 0, list = 0;
    dsv4_check_opts co;
    memset(&co, 0, sizeof co);
    co.ev.spec_prompts = -1;
    dsv4_gates flags;
    dsv4_gates_default(&flags);
    int flag_set[DSV4_GATE_COUNT] = {0};
    int64_t threads = 0;
    dsv4_err e = {{0}, 0};
    enum { OPT_SOURCE = 256, OPT_JSON, OPT_ONLY, OPT_STRICT, OPT_LIST, OPT_STATIC, OPT_EVAL, OPT_HELP, OPT_ROWS,
           OPT_LEN, OPT_OFFSET, OPT_DEVICE, OPT_THREADS, OPT_SPEC_PROMPTS, OPT_SPEC_TOKENS, OPT_RECIPE, OPT_GATE };
    struct option opts[32] = {
        {"source", required_argument, 0, OPT_SOURCE}, {"json", no_argument, 0, OPT_JSON},
        {"only", required_argument, 0, OPT_ONLY},     {"strict", no_argument, 0, OPT_STRICT},
        {"verbose", no_argument, 0, 'v'},             {"list-rules", no_argument, 0, OPT_LIST},
        {"static", no_argument, 0, OPT_STATIC},       {"eval", required_argument, 0, OPT_EVAL},
        {"help", no_argument, 0, OPT_HELP},           {"rows", required_argument, 0, OPT_ROWS},
        {"len", required_argument, 0, OPT_LEN},       {"offset", required_argument, 0, OPT_OFFSET},
        {"device", required_argument, 0, OPT_DEVICE}, {"threads", required_argument, 0, OPT_THREADS},
        {"spec-prompts", required_argument, 0, OPT_SPEC_PROMPTS},
        {"spec-tokens", required_argument, 0, OPT_SPEC_TOKENS},
        {"recipe", required_argument, 0, OPT_RECIPE},
    };
    int no = 17;
    for (int i = 0; i < DSV4_GATE_COUNT; i++)
        opts[no++] = (struct option){dsv4_gate_defs[i].flag, required_argument, 0, OPT_GATE};
    opts[no] = (struct option){0, 0, 0, 0};
    int c, idx;
    while ((c = getopt_long(argc, argv, "v", opts, &idx)) != -1) {
        int rc = 0;
        switch (c) {
        case OPT_SOURCE: source = optarg; break;
        case OPT_JSON: as_json = 1; break;
        case OPT_ONLY: co.only = optarg; break;
        case OPT_STRICT: co.strict = 1; break;
        case 'v': verbose = 1; break;
        case OPT_LIST: list = 1; break;
        case OPT_STATIC: break;
        case OPT_EVAL: co.eval_data = optarg; break;
        case OPT_ROWS: rc = int_opt("rows", optarg, 0, &co.data.rows); break;
        case OPT_LEN: rc = int_opt("len", optarg, 0, &co.data.len); break;
        case OPT_OFFSET: rc = int_opt("offset", optarg, 1, &co.data.offset); break;
        case OPT_DEVICE: co.ev.device = optarg; break;
        case OPT_THREADS: rc = int_opt("threads", optarg, 0, &threads); break;
        case OPT_SPEC_PROMPTS: rc = int_opt("spec-prompts", optarg, 1, &co.ev.spec_prompts); break;
        case OPT_SPEC_TOKENS: rc = int_opt("spec-tokens", optarg, 0, &co.ev.spec_tokens); break;
        case OPT_RECIPE: recipe = optarg; break;
        case OPT_GATE: {
            int g = dsv4_gate_by_flag(opts[idx].name);
            if (dsv4_gates_set_flag(&flags, (dsv4_gate_id)g, optarg, &e)) {
                fprintf(stderr, "dsv4-verify: %s\n", e.msg);
                return 2;
            }
            flag_set[g] = 1;
            break;
        }
        case OPT_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (rc)
            return 2;
    }
    if (list)
        return list_rules(as_json);
    if (optind != argc - 1) {
        fprintf(stderr, "dsv4-verify: expected one ARTIFACT path\n");
        usage(stderr);
        return 2;
    }
    const char *artifact = argv[optind];
    if (co.eval_data && !source) {
        fprintf(stderr, "dsv4-verify: --eval compares the artifact with its source: give --source SRC\n");
        return 2;
    }
    if (co.ev.device && strcmp(co.ev.device, "auto") && strcmp(co.ev.device, "cpu") && strcmp(co.ev.device, "cuda")) {
        fprintf(stderr, "dsv4-verify: --device expects auto, cpu or cuda, got '%s'\n", co.ev.device);
        return 2;
    }
    co.ev.threads = (int)threads;
    dsv4_gates_default(&co.gates);
    if (recipe) {
        dsv4_recipe r;
        if (dsv4_recipe_load(recipe, &r, &e)) {
            fprintf(stderr, "dsv4-verify: %s\n", e.msg);
            return 2;
        }
        dsv4_gates_from_recipe(&co.gates, &r);
        dsv4_recipe_free(&r);
    }
    for (int i = 0; i < DSV4_GATE_COUNT; i++)
        if (flag_set[i]) {
            co.gates.limit[i] = flags.limit[i];
            co.gates.origin[i] = flags.origin[i];
        }
    dsv4_tty_progress prog;
    dsv4_tty_progress_init(&prog, "dsv4-verify");
    co.ev.progress = dsv4_tty_progress_fn;
    co.ev.progress_ctx = &prog;
    dsv4_check ck;
    memset(&ck, 0, sizeof ck);
    if (co.eval_data && dsv4_check_load_data(&ck, source, &co, &e)) {
        fprintf(stderr, "dsv4-verify: %s\n", e.msg);
        dsv4_check_free(&ck);
        return e.code ? e.code : 2;
    }
    if (dsv4_check_run(&ck, artifact, source, &co, &e)) {
        dsv4_tty_progress_end(&prog);
        fprintf(stderr, "dsv4-verify: %s\n", e.msg);
        dsv4_check_free(&ck);
        return e.code ? e.code : 2;
    }
    dsv4_tty_progress_end(&prog);
    if (as_json) {
        json_t *r = dsv4_check_report(&ck, 1);
        char *s = json_dumps(r, JSON_INDENT(2));
        if (s)
            puts(s);
        free(s);
        json_decref(r);
    } else {
        dsv4_check_print(&ck, stdout, verbose);
    }
    if (ck.eval_state < 0)
        fprintf(stderr, "dsv4-verify: the dynamic verification did not run: %s\n", ck.eval_err.msg);
    int rc = dsv4_check_exit(&ck);
    dsv4_check_free(&ck);
    return rc;
}
