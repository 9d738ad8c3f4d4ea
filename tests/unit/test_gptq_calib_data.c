/* The row rules of the GPTQ calibration data (libquant/gptq/calib.h, dsv4_calib_opts.seq_len), as
 * the calibration asks dsv4_data_load for them (max_rows = samples, max_len = seq_len - 1): JSONL
 * text is cut into rows of exactly seq_len tokens, also beyond the evaluation's default of 513
 * (the fixture's calib.jsonl tokenizes to the flattened calib.tokens rows 0..31, see
 * test_eval_data.c); token rows shorter than seq_len are used whole, longer ones are cut. */
#include <string.h>

#include "eval/data.h"
#include "harness.h"
#include "io/safetensors.h"

TEST(gptq_calib_jsonl_rows_of_seq_len)
{
    dsv4_st_file st;
    dsv4_err e;
    REQUIRE(dsv4_st_open(th_path("fixtures/dsv4-tiny/calib.tokens.safetensors"), &st, &e) == 0);
    const dsv4_tensor *t = dsv4_st_find(&st, "input_ids");
    REQUIRE(t && t->ndim == 2 && t->shape[0] >= 32);
    const int32_t *flat = (const int32_t *)t->data;
    dsv4_eval_data d;
    int64_t seq = 1500; /* samples 6, seq_len 1500 */
    dsv4_data_opts o = {.max_rows = 6, .max_len = seq - 1, .tokenizer = th_path("fixtures/dsv4-tiny"), .vocab = 1024};
    REQUIRE(dsv4_data_load(th_path("fixtures/dsv4-tiny/calib.jsonl"), &o, &d, &e) == 0);
    CHECK_MSG(d.rows == 6 && d.len + 1 == seq && d.avail_rows == 32 * t->shape[1] / seq,
              "%lld rows of %lld tokens (%lld available), expected 6 of %lld", (long long)d.rows,
              (long long)(d.len + 1), (long long)d.avail_rows, (long long)seq);
    int same = d.rows == 6;
    for (int64_t r = 0; same && r < d.rows; r++)
        same &= !memcmp(dsv4_data_row(&d, r), flat + r * seq, (size_t)seq * sizeof(int32_t));
    CHECK_MSG(same, "the JSONL rows are not consecutive %lld-token pieces of the text's tokens", (long long)seq);
    dsv4_data_free(&d);
    /* more samples than the text holds: all of its rows */
    dsv4_data_opts all = {.max_rows = 1000, .max_len = seq - 1, .tokenizer = th_path("fixtures/dsv4-tiny")};
    REQUIRE(dsv4_data_load(th_path("fixtures/dsv4-tiny/calib.jsonl"), &all, &d, &e) == 0);
    CHECK_EQ_INT(d.rows, 32 * t->shape[1] / seq);
    dsv4_data_free(&d);
    /* text shorter than one row is refused, naming the file */
    dsv4_data_opts huge = {.max_rows = 1, .max_len = 32 * t->shape[1], .tokenizer = th_path("fixtures/dsv4-tiny")};
    CHECK(dsv4_data_load(th_path("fixtures/dsv4-tiny/calib.jsonl"), &huge, &d, &e) == -1 && e.code == 2);
    CHECK_STR_CONTAINS(e.msg, "calib.jsonl");
    CHECK_STR_CONTAINS(e.msg, "fewer than one row");
    dsv4_st_close(&st);
}

TEST(gptq_calib_token_rows_cut_or_whole)
{
    dsv4_eval_data d;
    dsv4_err e;
    const char *p = th_path("fixtures/dsv4-tiny/calib.tokens.safetensors");
    dsv4_data_opts longer = {.max_rows = 3, .max_len = 2047}; /* seq_len 2048 > the rows' 512 */
    REQUIRE(dsv4_data_load(p, &longer, &d, &e) == 0);
    CHECK(d.rows == 3 && d.len == 511);
    dsv4_data_free(&d);
    dsv4_data_opts shorter = {.max_rows = 3, .max_len = 99}; /* seq_len 100 */
    REQUIRE(dsv4_data_load(p, &shorter, &d, &e) == 0);
    CHECK(d.rows == 3 && d.len == 99);
    dsv4_data_free(&d);
}
