/* The tokenizer on the fixture's own data: calib.jsonl holds the first 32 calibration rows decoded
 * to text, so encoding each text must give back exactly its 512-token row of
 * calib.tokens.safetensors (it does for all 32: no row starts or ends inside a pre-token that would
 * merge differently), and decoding each row must give back the text. Also the ids and the
 * BOS / EOS that the fixture's tokenizer_config.json names. */
#include "harness.h"
#include "io/safetensors.h"
#include "tokenizer/tokenizer.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

TEST(tok_fixture_calib_rows_round_trip)
{
    dsv4_err e;
    dsv4_tok *t;
    REQUIRE(dsv4_tok_load(th_path("fixtures/dsv4-tiny"), &t, &e) == 0);
    CHECK_EQ_INT(dsv4_tok_vocab_size(t), 1024);
    CHECK_EQ_INT(dsv4_tok_bos(t), 0);
    CHECK_EQ_INT(dsv4_tok_eos(t), 1);
    CHECK_EQ_INT(dsv4_tok_id(t, "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"), 0);
    CHECK_EQ_INT(dsv4_tok_id(t, "\xc4\xa0return"), 342); /* "Ġreturn" */
    CHECK_EQ_INT(dsv4_tok_id(t, "no such token"), -1);
    dsv4_st_file st;
    if (dsv4_st_open(th_path("fixtures/dsv4-tiny/calib.tokens.safetensors"), &st, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        dsv4_tok_free(t);
        return;
    }
    const dsv4_tensor *rows = dsv4_st_find(&st, "input_ids");
    FILE *f = fopen(th_path("fixtures/dsv4-tiny/calib.jsonl"), "r");
    CHECK(rows && rows->ndim == 2 && rows->shape[1] == 512 && f);
    char *line = NULL;
    size_t cap = 0;
    int r = 0, exact = 0;
    while (rows && f && getline(&line, &cap, f) > 0) {
        json_t *j = json_loads(line, 0, NULL);
        json_t *text = json_object_get(j, "text");
        const int32_t *want = (const int32_t *)rows->data + (size_t)r * 512;
        int32_t *ids;
        size_t n;
        if (!json_is_string(text) || dsv4_tok_encode(t, json_string_value(text), json_string_length(text), 0, &ids, &n, &e)) {
            th_fail(__FILE__, __LINE__, "row %d: %s", r, json_is_string(text) ? e.msg : "no text");
        } else {
            int same = n == 512 && !memcmp(ids, want, 512 * sizeof *ids);
            CHECK_MSG(same, "row %d: encoding calib.jsonl's text gives %zu ids, not the 512 of the row", r, n);
            exact += same;
            free(ids);
            char *back;
            size_t bl;
            REQUIRE(dsv4_tok_decode(t, want, 512, 0, &back, &bl, &e) == 0);
            CHECK_MSG(bl == json_string_length(text) && !memcmp(back, json_string_value(text), bl),
                      "row %d: decoding the row does not give calib.jsonl's text", r);
            free(back);
        }
        json_decref(j);
        r++;
    }
    CHECK_EQ_INT(r, 32);
    CHECK_EQ_INT(exact, 32);
    free(line);
    if (f)
        fclose(f);
    dsv4_st_close(&st);
    dsv4_tok_free(t);
}
