/* The tokenizer against vectors made by the real `tokenizers` library (tests/interop/tok_vectors.py,
 * see tests/data/tokenizer/README.md): every text of the corpus encoded without and with special
 * tokens and decoded, for each test tokenizer, and the regex engine's matches against Oniguruma's.
 * Any mismatch fails; a vectors file that is absent is skipped with a note (the lead regenerates
 * them on the GPU machine). */
#include "harness.h"
#include "tokenizer/regex.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REPORTS 8

/* Calls fn for each JSON line of path (NULL: the file is absent). */
static int each_line(const char *rel, void (*fn)(json_t *, void *), void *ctx)
{
    FILE *f = fopen(th_path(rel), "r");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lines = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        json_error_t je;
        json_t *j = json_loadb(line, (size_t)n, JSON_ALLOW_NUL, &je);
        if (!j) {
            th_fail(__FILE__, __LINE__, "%s line %d: %s", rel, lines + 1, je.text);
            break;
        }
        if (!json_object_get(j, "meta"))
            fn(j, ctx);
        json_decref(j);
        lines++;
    }
    free(line);
    fclose(f);
    return lines;
}

typedef struct { dsv4_tok *t; const char *name; int checked, bad; } vctx;

static int ids_equal(json_t *want, const int32_t *got, size_t n)
{
    if (!json_is_array(want) || json_array_size(want) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (json_integer_value(json_array_get(want, i)) != got[i])
            return 0;
    return 1;
}

static void report(vctx *c, const char *what, json_t *text)
{
    if (c->bad++ < MAX_REPORTS)
        th_fail(__FILE__, __LINE__, "%s: %s differs for text \"%.80s\"", c->name, what, json_string_value(text));
}

static void check_vector(json_t *v, void *ctx)
{
    vctx *c = ctx;
    json_t *text = json_object_get(v, "text");
    const char *s = json_string_value(text);
    size_t len = json_string_length(text);
    dsv4_err e;
    int32_t *ids[2] = {NULL, NULL};
    size_t n[2] = {0, 0};
    const char *keys[2] = {"ids", "ids_special"};
    for (int sp = 0; sp < 2; sp++) {
        if (dsv4_tok_encode(c->t, s, len, sp, &ids[sp], &n[sp], &e)) {
            if (c->bad++ < MAX_REPORTS)
                th_fail(__FILE__, __LINE__, "%s: encode failed for \"%.80s\": %s", c->name, s, e.msg);
            continue;
        }
        if (!ids_equal(json_object_get(v, keys[sp]), ids[sp], n[sp]))
            report(c, keys[sp], text);
    }
    const char *dkeys[2] = {"decoded", "decoded_skip"};
    for (int sp = 0; sp < 2; sp++) {
        json_t *want = json_object_get(v, dkeys[sp]);
        if (!ids[sp] || !want)
            continue;
        char *out;
        size_t ol;
        if (dsv4_tok_decode(c->t, ids[sp], n[sp], sp, &out, &ol, &e)) {
            if (c->bad++ < MAX_REPORTS)
                th_fail(__FILE__, __LINE__, "%s: decode failed for \"%.80s\": %s", c->name, s, e.msg);
            continue;
        }
        if (ol != json_string_length(want) || memcmp(out, json_string_value(want), ol))
            report(c, dkeys[sp], text);
        free(out);
    }
    free(ids[0]);
    free(ids[1]);
    c->checked++;
}

static void run_vectors(const char *name, const char *tokenizer, const char *vectors)
{
    dsv4_err e;
    vctx c = {.name = name};
    if (dsv4_tok_load(th_path(tokenizer), &c.t, &e)) {
        th_fail(__FILE__, __LINE__, "%s: %s", name, e.msg);
        return;
    }
    int lines = each_line(vectors, check_vector, &c);
    if (lines < 0)
        fprintf(stderr, "note: %s is absent; %s vectors skipped (tests/interop/tok_vectors.py makes it)\n", vectors, name);
    else
        CHECK_MSG(c.checked > 200 && c.bad == 0, "%s: %d of %d vectors differ", name, c.bad, c.checked);
    dsv4_tok_free(c.t);
}

TEST(tok_vectors_fixture)
{
    run_vectors("fixture", "fixtures/dsv4-tiny", "tests/data/tokenizer/vectors_fixture.jsonl");
}

TEST(tok_vectors_deepseek_style)
{
    run_vectors("deepseek_style", "tests/data/tokenizer/deepseek_style.tokenizer.json",
                "tests/data/tokenizer/vectors_deepseek_style.jsonl");
}

TEST(tok_vectors_cl100k_style)
{
    run_vectors("cl100k_style", "tests/data/tokenizer/cl100k_style.tokenizer.json",
                "tests/data/tokenizer/vectors_cl100k_style.jsonl");
}

TEST(tok_vectors_behaviors)
{
    run_vectors("behaviors", "tests/data/tokenizer/behaviors.tokenizer.json", "tests/data/tokenizer/vectors_behaviors.jsonl");
}

typedef struct { char *pattern; dsv4_re *re; int checked, bad; } rctx;

static void check_regex(json_t *v, void *ctx)
{
    rctx *c = ctx;
    json_t *p = json_object_get(v, "pattern"), *text = json_object_get(v, "text"), *spans = json_object_get(v, "spans");
    if (!c->pattern || strcmp(c->pattern, json_string_value(p))) {
        free(c->pattern);
        dsv4_re_free(c->re);
        c->re = NULL;
        c->pattern = strdup(json_string_value(p));
        char why[256];
        if (dsv4_re_compile(c->pattern, strlen(c->pattern), &c->re, why, sizeof why)) {
            th_fail(__FILE__, __LINE__, "regex \"%s\": %s", c->pattern, why);
            c->re = NULL;
        }
    }
    if (!c->re)
        return;
    uint32_t *cps;
    size_t n;
    if (tok_utf8_decode(json_string_value(text), json_string_length(text), &cps, NULL, &n)) {
        th_fail(__FILE__, __LINE__, "vector text is not UTF-8");
        return;
    }
    size_t *sp;
    long k = dsv4_re_find_all(c->re, cps, n, &sp);
    size_t nonempty = 0, w = 0;
    int ok = k >= 0;
    for (long i = 0; ok && i < k; i++) {
        if (sp[2 * i] == sp[2 * i + 1])
            continue; /* the reference cannot show empty matches */
        json_t *want = json_array_get(spans, w++);
        ok = want && (size_t)json_integer_value(json_array_get(want, 0)) == sp[2 * i] &&
             (size_t)json_integer_value(json_array_get(want, 1)) == sp[2 * i + 1];
        nonempty++;
    }
    if (ok && w != json_array_size(spans))
        ok = 0;
    if (!ok && c->bad++ < MAX_REPORTS)
        th_fail(__FILE__, __LINE__, "regex \"%s\" on \"%.60s\": %zu matches, reference %zu (or spans differ)", c->pattern,
                json_string_value(text), nonempty, json_array_size(spans));
    if (k >= 0)
        free(sp);
    free(cps);
    c->checked++;
}

TEST(tok_vectors_regex)
{
    rctx c = {0};
    int lines = each_line("tests/data/tokenizer/vectors_regex.jsonl", check_regex, &c);
    if (lines < 0)
        fprintf(stderr, "note: tests/data/tokenizer/vectors_regex.jsonl is absent; regex vectors skipped\n");
    else
        CHECK_MSG(c.checked > 1000 && c.bad == 0, "regex: %d of %d vectors differ", c.bad, c.checked);
    free(c.pattern);
    dsv4_re_free(c.re);
}
