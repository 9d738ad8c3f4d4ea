/* Evaluation token rows (data.h): the safetensors reader, the row selection shared with JSONL,
 * and the checks (shape, dtype, row counts, id range) with messages naming file and tensor. */
#include "eval/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

void dsv4_data_free(dsv4_eval_data *d)
{
    free(d->ids);
    memset(d, 0, sizeof *d);
}

/* Rows and length from the options against what the data holds (avail rows of row_len ids). */
static int select_rows(const char *what, int64_t avail, int64_t row_len, const dsv4_data_opts *o, int64_t *rows,
                       int64_t *len, dsv4_err *e)
{
    int64_t off = o ? o->offset : 0, want = o ? o->rows : 0, l = o && o->len ? o->len : row_len - 1;
    if (o && !o->len && o->max_len > 0 && l > o->max_len)
        l = o->max_len;
    if (off < 0 || want < 0 || l < 0)
        return dsv4_fail(e, "%s: rows, length and offset must not be negative", what);
    if (l < 1)
        return dsv4_fail(e, "%s: rows of %lld tokens are too short (expected at least 2: an input and its target)",
                         what, (long long)row_len);
    if (l + 1 > row_len)
        return dsv4_fail(e, "%s: rows hold %lld tokens, fewer than the %lld asked for (length %lld + 1 target)",
                         what, (long long)row_len, (long long)(l + 1), (long long)l);
    if (off >= avail)
        return dsv4_fail(e, "%s: holds %lld rows; offset %lld leaves none", what, (long long)avail, (long long)off);
    if (want == 0)
        want = o && o->max_rows > 0 && avail - off > o->max_rows ? o->max_rows : avail - off;
    if (off + want > avail)
        return dsv4_fail(e, "%s: holds %lld rows; %lld rows from offset %lld were asked for", what, (long long)avail,
                         (long long)want, (long long)off);
    *rows = want;
    *len = l;
    return 0;
}

static int check_ids(const dsv4_eval_data *d, const char *what, int64_t vocab, dsv4_err *e)
{
    for (int64_t r = 0; r < d->rows; r++)
        for (int64_t j = 0; j <= d->len; j++) {
            int32_t v = dsv4_data_row(d, r)[j];
            if (v < 0 || (vocab > 0 && v >= vocab))
                return dsv4_fail(e, "%s: row %lld, position %lld holds token id %d, outside the model's vocabulary "
                                 "[0, %lld)", what, (long long)(r + d->offset), (long long)j, v, (long long)vocab);
        }
    return 0;
}

static int load_st(const char *path, const dsv4_data_opts *o, dsv4_eval_data *d, dsv4_err *e)
{
    dsv4_st_file f;
    if (dsv4_st_open(path, &f, e))
        return -1;
    int rc = -1;
    char what[1200], shape[64];
    snprintf(what, sizeof what, "%s: tensor '%s'", path, DSV4_DATA_TENSOR);
    const dsv4_tensor *t = dsv4_st_find(&f, DSV4_DATA_TENSOR);
    if (!t) {
        dsv4_fail(e, "%s: no tensor '%s' (expected token ids, I32 or I64 [rows, len])", path, DSV4_DATA_TENSOR);
        goto out;
    }
    if ((t->dtype != DSV4_I32 && t->dtype != DSV4_I64) || t->ndim != 2) {
        dsv4_fail(e, "%s is %s %s; expected I32 or I64 [rows, len] token ids", what, dsv4_dtype_name(t->dtype),
                  dsv4_shape_str(t, shape, sizeof shape));
        goto out;
    }
    int64_t rows, len, N = t->shape[0], L = t->shape[1];
    if (select_rows(what, N, L, o, &rows, &len, e))
        goto out;
    d->rows = rows;
    d->len = len;
    d->avail_rows = N;
    d->offset = o ? o->offset : 0;
    snprintf(d->kind, sizeof d->kind, "safetensors");
    if (!(d->ids = malloc((size_t)(rows * (len + 1)) * sizeof *d->ids))) {
        dsv4_fail_rt(e, "%s: out of memory for %lld x %lld ids", what, (long long)rows, (long long)(len + 1));
        goto out;
    }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j <= len; j++) {
            int64_t at = (r + d->offset) * L + j, v;
            if (t->dtype == DSV4_I32) {
                int32_t x;
                memcpy(&x, t->data + 4 * at, 4);
                v = x;
            } else {
                memcpy(&v, t->data + 8 * at, 8);
            }
            if (v < 0 || v > INT32_MAX) {
                dsv4_fail(e, "%s: row %lld, position %lld holds %lld, not a token id", what,
                          (long long)(r + d->offset), (long long)j, (long long)v);
                goto out;
            }
            d->ids[r * (len + 1) + j] = (int32_t)v;
        }
    rc = check_ids(d, what, o ? o->vocab : 0, e);
out:
    dsv4_st_close(&f);
    return rc;
}

int dsv4_data_from_stream(const int32_t *ids, int64_t n, const char *what, const dsv4_data_opts *o,
                          dsv4_eval_data *d, dsv4_err *e)
{
    memset(d, 0, sizeof *d);
    snprintf(d->path, sizeof d->path, "%s", what);
    snprintf(d->kind, sizeof d->kind, "tokens");
    int64_t len = o && o->len ? o->len : o && o->max_len > 0 ? o->max_len : DSV4_DATA_JSONL_LEN;
    if (n < len + 1)
        return dsv4_fail(e, "%s: %lld tokens, fewer than one row of %lld (length %lld + 1 target)", what,
                         (long long)n, (long long)(len + 1), (long long)len);
    int64_t avail = n / (len + 1), rows;
    dsv4_data_opts so = o ? *o : (dsv4_data_opts){0};
    so.len = len;
    if (select_rows(what, avail, len + 1, &so, &rows, &len, e))
        return -1;
    d->rows = rows;
    d->len = len;
    d->avail_rows = avail;
    d->offset = so.offset;
    size_t cnt = (size_t)(rows * (len + 1));
    if (!(d->ids = malloc(cnt * sizeof *d->ids)))
        return dsv4_fail_rt(e, "%s: out of memory for %zu ids", what, cnt);
    memcpy(d->ids, ids + so.offset * (len + 1), cnt * sizeof *d->ids);
    if (check_ids(d, what, so.vocab, e)) {
        dsv4_data_free(d);
        return -1;
    }
    return 0;
}

int dsv4_data_load(const char *path, const dsv4_data_opts *o, dsv4_eval_data *d, dsv4_err *e)
{
    memset(d, 0, sizeof *d);
    int rc;
    if (ends_with(path, ".safetensors")) {
        snprintf(d->path, sizeof d->path, "%s", path);
        rc = load_st(path, o, d, e);
    } else if (ends_with(path, ".jsonl")) {
        if (!o || !o->tokenizer)
            return dsv4_fail(e, "%s: text data needs a tokenizer (tokenizer.json or its folder)", path);
        int32_t *ids;
        int64_t n;
        if (dsv4_data_jsonl_tokens(path, o->tokenizer, &ids, &n, e))
            return -1;
        rc = dsv4_data_from_stream(ids, n, path, o, d, e);
        free(ids);
        if (rc == 0)
            snprintf(d->kind, sizeof d->kind, "jsonl");
        return rc;
    } else {
        return dsv4_fail(e, "%s: expected a .safetensors file with '%s' (I32 or I64 [rows, len]) or a .jsonl file of "
                         "{\"text\": ...} lines", path, DSV4_DATA_TENSOR);
    }
    if (rc)
        dsv4_data_free(d);
    return rc;
}
