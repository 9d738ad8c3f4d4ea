/* JSONL evaluation text (data.h): every line a JSON object with a string "text", tokenized with
 * the model's tokenizer (as tokenizer(text): special tokens the tokenizer files ask for, such as
 * a BOS) and concatenated in file order. Blank lines are skipped; anything else that is not such
 * an object is refused with its line number. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/data.h"
#include "io/checkpoint.h"
#include "tokenizer/tokenizer.h"
#include "util/json_in.h"

#define JSONL_MAX_BYTES ((size_t)1 << 32)

static int append(int32_t **ids, int64_t *n, int64_t *cap, const int32_t *add, size_t k, const char *path,
                  dsv4_err *e)
{
    if (*n + (int64_t)k > *cap) {
        int64_t c = *cap ? *cap : 4096;
        while (c < *n + (int64_t)k)
            c *= 2;
        int32_t *p = realloc(*ids, (size_t)c * sizeof *p);
        if (!p)
            return dsv4_fail_rt(e, "%s: out of memory for %lld token ids", path, (long long)c);
        *ids = p;
        *cap = c;
    }
    memcpy(*ids + *n, add, k * sizeof *add);
    *n += (int64_t)k;
    return 0;
}

/* Every non-blank line's "text" (borrowed from the parsed lines, which *lines owns). */
static int read_lines(const char *path, const char *buf, size_t len, json_t **lines, dsv4_err *e)
{
    json_t *all = json_array();
    size_t line = 0;
    for (size_t at = 0; at < len;) {
        size_t end = at;
        while (end < len && buf[end] != '\n')
            end++;
        line++;
        size_t b = at, k = end;
        at = end + 1;
        while (b < k && (buf[b] == ' ' || buf[b] == '\t' || buf[b] == '\r'))
            b++;
        if (b == k)
            continue;
        char what[64];
        snprintf(what, sizeof what, "line %zu", line);
        json_t *j = dsv4_json_parse(buf + b, k - b, path, what, e);
        if (!j) {
            json_decref(all);
            return -1;
        }
        if (!json_is_string(json_is_object(j) ? json_object_get(j, "text") : NULL)) {
            json_decref(j);
            json_decref(all);
            return dsv4_fail(e, "%s:%zu: expected a JSON object with a string \"text\"", path, line);
        }
        json_object_set_new(j, "line", json_integer((json_int_t)line));
        json_array_append_new(all, j);
    }
    if (json_array_size(all) == 0) {
        json_decref(all);
        return dsv4_fail(e, "%s: no {\"text\": ...} lines", path);
    }
    *lines = all;
    return 0;
}

int dsv4_data_jsonl_tokens(const char *path, const char *tokenizer, int32_t **out, int64_t *n_out, dsv4_err *e)
{
    *out = NULL;
    *n_out = 0;
    char *buf;
    size_t len;
    if (dsv4_read_file(path, JSONL_MAX_BYTES, &buf, &len, e))
        return -1;
    json_t *lines = NULL;
    int rc = read_lines(path, buf, len, &lines, e);
    free(buf);
    if (rc)
        return -1;
    dsv4_tok *tok;
    if (dsv4_tok_load(tokenizer, &tok, e)) {
        json_decref(lines);
        return -1;
    }
    int32_t *ids = NULL;
    int64_t n = 0, cap = 0;
    for (size_t i = 0; i < json_array_size(lines) && rc == 0; i++) {
        json_t *j = json_array_get(lines, i), *t = json_object_get(j, "text");
        int32_t *tid;
        size_t tn;
        if (dsv4_tok_encode(tok, json_string_value(t), json_string_length(t), 1, &tid, &tn, e)) {
            rc = dsv4_wrap(e, "%s:%lld", path, (long long)json_integer_value(json_object_get(j, "line")));
            break;
        }
        rc = append(&ids, &n, &cap, tid, tn, path, e);
        free(tid);
    }
    dsv4_tok_free(tok);
    json_decref(lines);
    if (rc) {
        free(ids);
        return -1;
    }
    *out = ids;
    *n_out = n;
    return 0;
}
