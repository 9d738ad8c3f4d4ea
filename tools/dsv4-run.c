/* dsv4-run: run a DeepSeek-V4 checkpoint (any storage the toolchain reads or writes) with the
 * built-in runner: perplexity over token rows or text, greedy generation from text or token ids,
 * optionally by k = 1 speculative decoding with the MTP block as drafter (with its acceptance).
 * Exit codes: 0 done, 1 runtime failure, 2 bad usage or input. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/ppl.h"
#include "eval/report.h"
#include "tokenizer/tokenizer.h"
#include "util/clock.h"

static void usage(FILE *f)
{
    fputs("usage: dsv4-run MODEL --ppl DATA [--rows N] [--len L] [--offset K] [--chunk C]\n"
          "       dsv4-run MODEL --generate TEXT [-n N] [--spec]\n"
          "       dsv4-run MODEL --tokens ID,ID,... [-n N] [--spec]\n"
          "  MODEL            checkpoint folder (release layout, BF16, compressed-tensors W4A16 / NVFP4 /\n"
          "                   FP8-block artifacts), with tokenizer.json for text\n"
          "  --ppl DATA       perplexity over token rows (.safetensors input_ids I32/I64 [rows, len]) or\n"
          "                   text (.jsonl {\"text\": ...} lines, tokenized and cut into rows)\n"
          "  --rows N         rows (default all); --offset K: skip K rows first\n"
          "  --len L          predictions per row (a row is L+1 tokens; default: the file's rows, JSONL 512)\n"
          "  --chunk C        tokens per forward call (default: the whole row)\n"
          "  --generate TEXT  greedy continuation of TEXT (tokenized as tokenizer(TEXT)); prints the text\n"
          "  --tokens IDS     greedy continuation of these token ids; prints the generated ids (--json adds\n"
          "                   their text when MODEL has a tokenizer)\n"
          "  -n N             tokens to generate (default 32)\n"
          "  --spec           generate by k=1 speculative decoding with the MTP block (same tokens) and\n"
          "                   report drafted / accepted drafts\n"
          "  --device D       auto (GPU when there is one, the default), cpu or cuda; --threads N: CPU threads\n"
          "  --json           print the result as JSON\n",
          f);
}

static int parse_ids(const char *s, int32_t **out, size_t *n, dsv4_err *e)
{
    size_t cap = 16, k = 0;
    int32_t *v = malloc(cap * sizeof *v);
    if (!v)
        return dsv4_fail_rt(e, "out of memory");
    for (const char *p = s;;) {
        char *end;
        long long x = strtoll(p, &end, 10);
        if (end == p || x < 0 || x > INT32_MAX) {
            free(v);
            return dsv4_fail(e, "--tokens %s: expected comma-separated non-negative token ids", s);
        }
        if (k == cap) {
            int32_t *w = realloc(v, (cap *= 2) * sizeof *v);
            if (!w) {
                free(v);
                return dsv4_fail_rt(e, "out of memory");
            }
            v = w;
        }
        v[k++] = (int32_t)x;
        if (!*end)
            break;
        if (*end != ',') {
            free(v);
            return dsv4_fail(e, "--tokens %s: expected comma-separated non-negative token ids", s);
        }
        p = end + 1;
    }
    *out = v;
    *n = k;
    return 0;
}

typedef struct run_args {
    const char *model, *ppl, *text, *tokens, *device;
    int64_t rows, len, offset, chunk, n;
    int spec, json, threads;
} run_args;

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2));
    if (s)
        puts(s);
    free(s);
    json_decref(j);
}

static int run_ppl(const run_args *a, dsv4_model *m, dsv4_err *e)
{
    dsv4_data_opts o = {.rows = a->rows, .len = a->len, .offset = a->offset, .tokenizer = a->model,
                        .vocab = m->cfg.vocab_size};
    dsv4_eval_data d;
    if (dsv4_data_load(a->ppl, &o, &d, e))
        return -1;
    dsv4_tty_progress prog;
    dsv4_tty_progress_init(&prog, "dsv4-run");
    dsv4_nll_acc acc = {0};
    double t0 = dsv4_now();
    int rc = dsv4_ppl_run(m, &d, a->chunk, dsv4_tty_progress_fn, &prog, &acc, e);
    double dt = dsv4_now() - t0;
    dsv4_tty_progress_end(&prog);
    if (rc == 0) {
        double ppl, unc, mean, se;
        dsv4_nll_ppl(&acc, &ppl, &unc);
        dsv4_mean_se(acc.sum, acc.sum2, acc.count, &mean, &se);
        double tps = dt > 0 ? (double)acc.count / dt : 0;
        if (a->json)
            print_json(json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:o,s:o,s:o,s:o,s:f,s:f}", "model", a->model, "data",
                                 d.path, "device", m->ops->name, "rows", (json_int_t)d.rows, "len", (json_int_t)d.len,
                                 "offset", (json_int_t)d.offset, "positions", (json_int_t)acc.count, "ppl",
                                 isfinite(ppl) ? json_real(ppl) : json_null(), "ppl_unc",
                                 isfinite(unc) ? json_real(unc) : json_null(), "mean_nll",
                                 isfinite(mean) ? json_real(mean) : json_null(), "mean_nll_unc",
                                 isfinite(se) ? json_real(se) : json_null(), "seconds", dt, "tokens_per_second", tps));
        else
            printf("%s on %s: %lld rows x %lld positions from row %lld (%lld predictions) on %s\n"
                   "PPL %.4f ± %.4f (mean NLL %.5f ± %.5f) in %.2f s, %.0f tokens/s\n",
                   a->model, d.path, (long long)d.rows, (long long)d.len, (long long)d.offset, (long long)acc.count,
                   m->ops->name, ppl, unc, mean, se, dt, tps);
    }
    dsv4_data_free(&d);
    return rc;
}

static int run_generate(const run_args *a, dsv4_model *m, dsv4_err *e)
{
    dsv4_tok *tok = NULL;
    dsv4_err te = {{0}, 0};
    int32_t *prompt = NULL, *out = NULL;
    size_t P = 0;
    char *text = NULL;
    size_t tlen = 0;
    int rc = -1;
    if (a->text) {
        if (dsv4_tok_load(a->model, &tok, e) ||
            dsv4_tok_encode(tok, a->text, strlen(a->text), 1, &prompt, &P, e))
            goto out;
        if (P == 0) {
            dsv4_fail(e, "--generate: the text tokenizes to no tokens");
            goto out;
        }
    } else {
        if (parse_ids(a->tokens, &prompt, &P, e))
            goto out;
        if (dsv4_tok_load(a->model, &tok, &te)) /* optional: decode the output when there is a tokenizer */
            tok = NULL;
    }
    for (size_t i = 0; i < P; i++)
        if (prompt[i] >= m->cfg.vocab_size) {
            dsv4_fail(e, "prompt token %d is outside the model's vocabulary [0, %lld)", prompt[i],
                      (long long)m->cfg.vocab_size);
            goto out;
        }
    if (a->spec && (m->cfg.n_mtp < 1 || m->layers[m->cfg.n_layers].id < 0)) {
        dsv4_fail(e, "%s: --spec drafts with the MTP block, and this model has none", a->model);
        goto out;
    }
    dsv4_seq s;
    int64_t chunk = (int64_t)P < 512 ? (int64_t)P : 512;
    if (chunk < 2)
        chunk = 2;
    if (dsv4_seq_init(m, (int64_t)P + a->n + 2, chunk, &s, e))
        goto out;
    out = malloc((size_t)a->n * sizeof *out);
    dsv4_spec_stats st = {0};
    double t0 = dsv4_now();
    int grc = !out ? dsv4_fail_rt(e, "out of memory")
              : a->spec ? dsv4_generate_spec(&s, prompt, (int64_t)P, a->n, out, &st, e)
                        : dsv4_generate_greedy(&s, prompt, (int64_t)P, a->n, out, e);
    double dt = dsv4_now() - t0;
    dsv4_seq_free(&s);
    if (grc)
        goto out;
    if (tok && dsv4_tok_decode(tok, out, (size_t)a->n, 0, &text, &tlen, e))
        goto out;
    if (a->json) {
        json_t *ids = json_array(), *pids = json_array();
        for (int64_t i = 0; i < a->n; i++)
            json_array_append_new(ids, json_integer(out[i]));
        for (size_t i = 0; i < P; i++)
            json_array_append_new(pids, json_integer(prompt[i]));
        json_t *j = json_pack("{s:s,s:s,s:o,s:o,s:o,s:f}", "model", a->model, "device", m->ops->name, "prompt_tokens",
                              pids, "tokens", ids, "text", text ? json_string(text) : json_null(), "seconds", dt);
        if (a->spec)
            json_object_set_new(j, "speculative", json_pack("{s:I,s:I,s:I,s:f}", "drafted", (json_int_t)st.drafted,
                                                            "accepted", (json_int_t)st.accepted, "main_calls",
                                                            (json_int_t)st.main_calls, "acceptance",
                                                            st.drafted ? (double)st.accepted / (double)st.drafted : 0.0));
        print_json(j);
    } else {
        if (a->text)
            printf("%s\n", text);
        else
            for (int64_t i = 0; i < a->n; i++)
                printf("%d%s", out[i], i + 1 < a->n ? "," : "\n");
        fprintf(stderr, "dsv4-run: %lld prompt tokens, %lld generated in %.2f s on %s", (long long)P, (long long)a->n,
                dt, m->ops->name);
        if (a->spec)
            fprintf(stderr, "; speculative: %lld of %lld drafts accepted (%.2f %%), %lld main-model calls",
                    (long long)st.accepted, (long long)st.drafted,
                    st.drafted ? 100.0 * (double)st.accepted / (double)st.drafted : 0.0, (long long)st.main_calls);
        fputc('\n', stderr);
    }
    rc = 0;
out:
    free(text);
    free(out);
    free(prompt);
    dsv4_tok_free(tok);
    return rc;
}

static int pos_int(const char *name, const char *v, int zero_ok, int64_t *out)
{
    char *end;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || x < (zero_ok ? 0 : 1) || x > (1LL << 40)) {
        fprintf(stderr, "dsv4-run: %s expects %s integer, got '%s'\n", name, zero_ok ? "a non-negative" : "a positive", v);
        return -1;
    }
    *out = x;
    return 0;
}

int main(int argc, char **argv)
{
    run_args a;
    memset(&a, 0, sizeof a);
    a.n = 32;
    int64_t threads = 0;
    enum { O_PPL = 256, O_GEN, O_TOK, O_ROWS, O_LEN, O_OFF, O_CHUNK, O_SPEC, O_DEV, O_THR, O_JSON, O_HELP };
    static const struct option opts[] = {
        {"ppl", required_argument, 0, O_PPL},     {"generate", required_argument, 0, O_GEN},
        {"tokens", required_argument, 0, O_TOK},  {"rows", required_argument, 0, O_ROWS},
        {"len", required_argument, 0, O_LEN},     {"offset", required_argument, 0, O_OFF},
        {"chunk", required_argument, 0, O_CHUNK}, {"spec", no_argument, 0, O_SPEC},
        {"device", required_argument, 0, O_DEV},  {"threads", required_argument, 0, O_THR},
        {"json", no_argument, 0, O_JSON},         {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case O_PPL: a.ppl = optarg; break;
        case O_GEN: a.text = optarg; break;
        case O_TOK: a.tokens = optarg; break;
        case O_ROWS: bad = pos_int("--rows", optarg, 0, &a.rows); break;
        case O_LEN: bad = pos_int("--len", optarg, 0, &a.len); break;
        case O_OFF: bad = pos_int("--offset", optarg, 1, &a.offset); break;
        case O_CHUNK: bad = pos_int("--chunk", optarg, 0, &a.chunk); break;
        case 'n': bad = pos_int("-n", optarg, 0, &a.n); break;
        case O_SPEC: a.spec = 1; break;
        case O_DEV: a.device = optarg; break;
        case O_THR: bad = pos_int("--threads", optarg, 0, &threads); break;
        case O_JSON: a.json = 1; break;
        case O_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (bad)
            return 2;
    }
    if (optind != argc - 1) {
        fprintf(stderr, "dsv4-run: expected one MODEL path\n");
        usage(stderr);
        return 2;
    }
    a.model = argv[optind];
    if (!!a.ppl + !!a.text + !!a.tokens != 1) {
        fprintf(stderr, "dsv4-run: give exactly one of --ppl, --generate and --tokens\n");
        usage(stderr);
        return 2;
    }
    if (a.spec && a.ppl) {
        fprintf(stderr, "dsv4-run: --spec applies to --generate and --tokens\n");
        return 2;
    }
    a.threads = (int)threads;
    dsv4_err e = {{0}, 0};
    dsv4_ops *ops = dsv4_ops_by_name(a.device ? a.device : "auto", a.threads, &e);
    if (!ops) {
        fprintf(stderr, "dsv4-run: %s\n", e.msg);
        return e.code ? e.code : 2;
    }
    dsv4_model m;
    int rc = dsv4_model_open(a.model, ops, DSV4_LOAD_LAYERS | (a.spec ? DSV4_LOAD_MTP : 0), &m, &e);
    if (rc == 0) {
        rc = a.ppl ? run_ppl(&a, &m, &e) : run_generate(&a, &m, &e);
        dsv4_model_close(&m);
    }
    dsv4_ops_release(ops);
    if (rc) {
        fprintf(stderr, "dsv4-run: %s\n", e.msg);
        return e.code ? e.code : 1;
    }
    return 0;
}
