/* Evaluation data (libquant/eval/data.h): the fixture's token rows selected by rows / len /
 * offset, I64 ids, cutting a token stream into rows, and every refusal naming the file, the
 * tensor (or line) and what was expected. */
#include "harness.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/data.h"
#include "io/safetensors.h"
#include "io/st_write.h"
#include "test_writer_util.h"

/* Writes one tensor into a folder and returns the path of the .safetensors file in it. */
static const char *one_tensor_file(const char *name, dsv4_dtype dt, int ndim, const int64_t *shape, const void *data)
{
    static char path[4400];
    const char *dir = tw_join(th_tmpdir(), name);
    dsv4_st_plan p;
    dsv4_err e;
    dsv4_st_plan_init(&p, 1 << 30, 0);
    const void *d[1] = {data};
    if (dsv4_st_plan_add(&p, name, dt, ndim, shape, &e) || dsv4_st_plan_finish(&p, &e) ||
        dsv4_st_write_all(&p, dir, d, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        dsv4_st_plan_free(&p);
        return "";
    }
    dsv4_st_plan_free(&p);
    DIR *dd = opendir(dir);
    struct dirent *de;
    path[0] = 0;
    while (dd && (de = readdir(dd)))
        if (strstr(de->d_name, ".safetensors"))
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    if (dd)
        closedir(dd);
    return path;
}

TEST(eval_data_fixture_rows)
{
    const char *path = th_path("fixtures/dsv4-tiny/eval.tokens.safetensors");
    dsv4_st_file f;
    dsv4_err e;
    REQUIRE(dsv4_st_open(path, &f, &e) == 0);
    const dsv4_tensor *t = dsv4_st_find(&f, "input_ids");
    REQUIRE(t && t->dtype == DSV4_I32 && t->shape[0] == 64 && t->shape[1] == 513);
    const int32_t *raw = (const int32_t *)t->data;
    dsv4_eval_data d;
    dsv4_data_opts o = {.rows = 3, .len = 100, .offset = 5, .vocab = 1024};
    REQUIRE(dsv4_data_load(path, &o, &d, &e) == 0);
    CHECK(d.rows == 3 && d.len == 100 && d.offset == 5 && d.avail_rows == 64 && !strcmp(d.kind, "safetensors"));
    int same = 1;
    for (int r = 0; r < 3; r++)
        for (int j = 0; j <= 100; j++)
            same &= dsv4_data_row(&d, r)[j] == raw[(r + 5) * 513 + j];
    CHECK(same);
    dsv4_data_free(&d);
    /* defaults: every row, the file's length; caps apply only to defaults */
    dsv4_data_opts all = {0};
    REQUIRE(dsv4_data_load(path, &all, &d, &e) == 0);
    CHECK(d.rows == 64 && d.len == 512);
    dsv4_data_free(&d);
    dsv4_data_opts capped = {.max_rows = 4, .max_len = 128, .offset = 62};
    REQUIRE(dsv4_data_load(path, &capped, &d, &e) == 0);
    CHECK(d.rows == 2 && d.len == 128 && dsv4_data_row(&d, 1)[128] == raw[63 * 513 + 128]);
    dsv4_data_free(&d);
    dsv4_st_close(&f);
}

TEST(eval_data_selection_errors)
{
    const char *path = th_path("fixtures/dsv4-tiny/eval.tokens.safetensors");
    dsv4_eval_data d;
    dsv4_err e;
    dsv4_data_opts o = {.rows = 10, .offset = 60};
    CHECK(dsv4_data_load(path, &o, &d, &e) == -1 && e.code == 2);
    CHECK_STR_CONTAINS(e.msg, "eval.tokens.safetensors: tensor 'input_ids': holds 64 rows; 10 rows from offset 60");
    dsv4_data_opts l = {.len = 513};
    CHECK(dsv4_data_load(path, &l, &d, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "rows hold 513 tokens, fewer than the 514 asked for");
    dsv4_data_opts off = {.offset = 64};
    CHECK(dsv4_data_load(path, &off, &d, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "holds 64 rows; offset 64 leaves none");
    dsv4_data_opts v = {.vocab = 100};
    CHECK(dsv4_data_load(path, &v, &d, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "outside the model's vocabulary [0, 100)");
    CHECK(dsv4_data_load(th_path("fixtures/dsv4-tiny/config.json"), &o, &d, &e) == -1 && e.code == 2);
    CHECK_STR_CONTAINS(e.msg, "config.json: expected a .safetensors file with 'input_ids'");
    CHECK(dsv4_data_load(tw_join(th_tmpdir(), "none.safetensors"), &o, &d, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "none.safetensors");
}

TEST(eval_data_tensor_errors)
{
    dsv4_eval_data d;
    dsv4_err e;
    dsv4_data_opts o = {0};
    float f[6] = {0};
    int64_t s2[2] = {2, 3}, s1[1] = {6};
    const char *p = one_tensor_file("tokens", DSV4_I32, 2, s2, f);
    CHECK(dsv4_data_load(p, &o, &d, &e) == -1 && e.code == 2);
    CHECK_STR_CONTAINS(e.msg, ": no tensor 'input_ids' (expected token ids, I32 or I64 [rows, len])");
    p = one_tensor_file("input_ids", DSV4_F32, 2, s2, f);
    CHECK(dsv4_data_load(p, &o, &d, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "tensor 'input_ids' is F32 [2, 3]; expected I32 or I64 [rows, len] token ids");
    int32_t ids[6] = {1, 2, 3, 4, 5, 6};
    p = one_tensor_file("input_ids", DSV4_I32, 1, s1, ids);
    CHECK(dsv4_data_load(p, &o, &d, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "tensor 'input_ids' is I32 [6]; expected");
    int32_t neg[6] = {1, 2, 3, 4, -5, 6};
    p = one_tensor_file("input_ids", DSV4_I32, 2, s2, neg);
    CHECK(dsv4_data_load(p, &o, &d, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "tensor 'input_ids': row 1, position 1 holds -5, not a token id");
    int64_t i64[6] = {7, 8, 9, 10, 11, 12};
    p = one_tensor_file("input_ids", DSV4_I64, 2, s2, i64);
    dsv4_data_opts one = {.rows = 1, .offset = 1};
    REQUIRE(dsv4_data_load(p, &one, &d, &e) == 0);
    CHECK(d.rows == 1 && d.len == 2 && dsv4_data_row(&d, 0)[0] == 10 && dsv4_data_row(&d, 0)[2] == 12);
    dsv4_data_free(&d);
    int64_t s21[2] = {2, 1};
    p = one_tensor_file("input_ids", DSV4_I64, 2, s21, i64);
    CHECK(dsv4_data_load(p, &o, &d, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "rows of 1 tokens are too short");
}

TEST(eval_data_stream_rows)
{
    int32_t ids[100];
    for (int i = 0; i < 100; i++)
        ids[i] = i;
    dsv4_eval_data d;
    dsv4_err e;
    dsv4_data_opts o = {.len = 9, .offset = 2, .rows = 3};
    REQUIRE(dsv4_data_from_stream(ids, 100, "stream", &o, &d, &e) == 0);
    CHECK(d.avail_rows == 10 && d.rows == 3 && dsv4_data_row(&d, 0)[0] == 20 && dsv4_data_row(&d, 2)[9] == 49);
    dsv4_data_free(&d);
    dsv4_data_opts big = {.len = 100};
    CHECK(dsv4_data_from_stream(ids, 100, "stream", &big, &d, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "stream: 100 tokens, fewer than one row of 101");
    dsv4_data_opts v = {.len = 9, .vocab = 50};
    CHECK(dsv4_data_from_stream(ids, 100, "stream", &v, &d, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "row 5, position 0 holds token id 50");
}

TEST(eval_data_jsonl_lines)
{
    /* lines are checked before the tokenizer is read: the refusal names the line */
    const char *p = tw_join(th_tmpdir(), "t.jsonl");
    FILE *f = fopen(p, "w");
    REQUIRE(f);
    fputs("{\"text\": \"def f():\"}\n\n{\"txt\": 1}\n", f);
    fclose(f);
    dsv4_eval_data d;
    dsv4_err e;
    dsv4_data_opts o = {.tokenizer = th_path("fixtures/dsv4-tiny")};
    CHECK(dsv4_data_load(p, &o, &d, &e) == -1 && e.code == 2);
    CHECK_STR_CONTAINS(e.msg, "t.jsonl:3: expected a JSON object with a string \"text\"");
    f = fopen(p, "w");
    fputs("{\"text\": \"x\"\n", f);
    fclose(f);
    CHECK(dsv4_data_load(p, &o, &d, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "t.jsonl: line 1 is not valid JSON");
    f = fopen(p, "w");
    fputs("\n  \n", f);
    fclose(f);
    CHECK(dsv4_data_load(p, &o, &d, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "t.jsonl: no {\"text\": ...} lines");
    dsv4_data_opts none = {0};
    CHECK(dsv4_data_load(p, &none, &d, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "text data needs a tokenizer");
}

TEST(eval_data_jsonl_tokenized)
{
    /* calib.jsonl holds the first 32 calibration rows as text; tokenizer(text) adds no BOS for
     * this tokenizer in transformers 5.17 (tests/data/tokenizer/vectors_fixture.jsonl, made with
     * it), so the concatenated tokens are the 32 × 512 calibration tokens, cut into rows of
     * len + 1 = 513: row r is tokens [r·513, r·513 + 513) of them */
    dsv4_st_file st;
    dsv4_err e;
    REQUIRE(dsv4_st_open(th_path("fixtures/dsv4-tiny/calib.tokens.safetensors"), &st, &e) == 0);
    const dsv4_tensor *t = dsv4_st_find(&st, "input_ids");
    REQUIRE(t && t->shape[1] == 512);
    const int32_t *raw = (const int32_t *)t->data;
    dsv4_eval_data d;
    dsv4_data_opts o = {.len = 512, .offset = 3, .rows = 2, .tokenizer = th_path("fixtures/dsv4-tiny"), .vocab = 1024};
    REQUIRE(dsv4_data_load(th_path("fixtures/dsv4-tiny/calib.jsonl"), &o, &d, &e) == 0);
    CHECK_MSG(!strcmp(d.kind, "jsonl") && d.avail_rows == 31 && d.rows == 2 && d.len == 512, "%s: %lld rows available, %lld taken, len %lld", d.kind, (long long)d.avail_rows, (long long)d.rows, (long long)d.len);
    int same = 1;
    for (int r = 0; r < 2; r++) {
        same &= !memcmp(dsv4_data_row(&d, r), raw + (size_t)(r + 3) * 513, 513 * sizeof(int32_t));
    }
    CHECK_MSG(same, "JSONL rows differ from the calibration rows");
    dsv4_data_free(&d);
    /* the default length for text is 512; a cap lowers it */
    dsv4_data_opts c = {.max_len = 100, .max_rows = 4, .tokenizer = th_path("fixtures/dsv4-tiny")};
    REQUIRE(dsv4_data_load(th_path("fixtures/dsv4-tiny/calib.jsonl"), &c, &d, &e) == 0);
    CHECK(d.len == 100 && d.rows == 4 && d.avail_rows == 32 * 513 / 101);
    dsv4_data_free(&d);
    dsv4_data_opts bad = {.tokenizer = th_path("fixtures/dsv4-tiny/config.json")};
    CHECK(dsv4_data_load(th_path("fixtures/dsv4-tiny/calib.jsonl"), &bad, &d, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "config.json");
    dsv4_st_close(&st);
}
