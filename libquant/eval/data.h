/* Evaluation data: rows of token ids that the models read (input = row[0..len), targets =
 * row[1..len]). Two sources:
 *  - a safetensors file with a tensor `input_ids`, I32 or I64, shape [N, Lf] (the fixture's
 *    eval.tokens.safetensors is [64, 513]): row r is used from its first token, len + 1 <= Lf;
 *  - a JSONL file, one JSON object per line with a string "text": each text is tokenized
 *    (libquant/tokenizer, special tokens as the tokenizer files ask: tokenizer(text)), the ids
 *    of all lines are concatenated in order and cut into consecutive rows of len + 1 tokens (the
 *    remainder is dropped).
 * Held-out selection: `offset` rows are skipped, then `rows` rows are taken. Every refusal names
 * the file, the tensor (or line) and what was expected (code 2). */
#ifndef DSV4_EVAL_DATA_H
#define DSV4_EVAL_DATA_H

#include <stdint.h>

#include "util/err.h"

#define DSV4_DATA_TENSOR "input_ids"
#define DSV4_DATA_JSONL_LEN 512 /* default predictions per row for JSONL */

typedef struct dsv4_data_opts {
    int64_t rows;          /* rows to use; 0 = every row after offset */
    int64_t len;           /* predictions per row (a row is len + 1 tokens); 0 = the file's row
                              length - 1, at most max_len (JSONL: max_len when set, else
                              DSV4_DATA_JSONL_LEN) */
    int64_t offset;        /* rows skipped first */
    int64_t max_rows, max_len; /* when rows / len are 0: at most this many (0: no limit) */
    const char *tokenizer; /* JSONL: tokenizer.json or the folder that holds it */
    int64_t vocab;         /* > 0: every id must be below it */
} dsv4_data_opts;

typedef struct dsv4_eval_data {
    char path[1024];
    char kind[16];         /* "safetensors", "jsonl" or "tokens" */
    int64_t rows, len;     /* ids holds rows × (len + 1) */
    int64_t avail_rows;    /* rows the file holds (JSONL: after cutting) */
    int64_t offset;
    int32_t *ids;
} dsv4_eval_data;

/* Loads `path`: *.safetensors as token rows, *.jsonl as text lines. */
int dsv4_data_load(const char *path, const dsv4_data_opts *o, dsv4_eval_data *d, dsv4_err *e);
/* Cuts a stream of n ids (already in memory: JSONL after tokenizing, dsv4-run --tokens) into rows
 * as dsv4_data_load does; `what` names the data in messages. */
int dsv4_data_from_stream(const int32_t *ids, int64_t n, const char *what, const dsv4_data_opts *o,
                          dsv4_eval_data *d, dsv4_err *e);
void dsv4_data_free(dsv4_eval_data *d);
/* Row r (r < d->rows): len + 1 ids. */
static inline const int32_t *dsv4_data_row(const dsv4_eval_data *d, int64_t r)
{
    return d->ids + r * (d->len + 1);
}

/* JSONL texts through the tokenizer: the concatenated ids (malloc'ed) of every line. */
int dsv4_data_jsonl_tokens(const char *path, const char *tokenizer, int32_t **ids, int64_t *n, dsv4_err *e);

#endif
