/* The safetensors reader and checkpoint opener on the tiny fixture and on hand-made headers. */
#include "harness.h"
#include "io/checkpoint.h"

#include <stdlib.h>
#include <string.h>

/* Parses `hdr` as a header over a data region of `data_size` bytes; returns the error text or "". */
static const char *parse(const char *hdr, uint64_t data_size)
{
    static dsv4_err e;
    dsv4_st_file f;
    e.msg[0] = 0;
    if (dsv4_st_parse_header(hdr, strlen(hdr), data_size, "t.safetensors", &f, &e) == 0) {
        dsv4_st_close(&f);
        return "";
    }
    return e.msg;
}

TEST(st_header_accepts_valid)
{
    CHECK_EQ_INT(strlen(parse("{\"__metadata__\":{\"format\":\"pt\"},"
                              "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                              "\"b\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[8,10]},"
                              "\"z\":{\"dtype\":\"I8\",\"shape\":[0,4],\"data_offsets\":[10,10]}}  ", 10)), 0);
    CHECK_EQ_INT(strlen(parse("{}", 0)), 0);
}

TEST(st_header_refusals_name_the_tensor)
{
    CHECK_STR_CONTAINS(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                             "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
                       "duplicate");
    CHECK_STR_CONTAINS(parse("{\"a\":{\"dtype\":\"F31\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
                       "tensor 'a': unknown dtype \"F31\"");
    CHECK_STR_CONTAINS(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8),
                       "tensor 'a': shape [3] of F32 needs 12 bytes but data_offsets [0, 8] span 8");
    CHECK_STR_CONTAINS(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8),
                       "gap of 4 bytes");
    CHECK_STR_CONTAINS(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                             "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8),
                       "overlapping");
    CHECK_STR_CONTAINS(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8),
                       "4 trailing bytes");
    CHECK_STR_CONTAINS(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8),
                       "truncated");
    CHECK_STR_CONTAINS(parse("{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2),
                       "not a whole number of bytes");
    CHECK_STR_CONTAINS(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0),
                       "shape[0] is not a non-negative integer");
    CHECK_STR_CONTAINS(parse("{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],"
                             "\"data_offsets\":[0,0]}}", 0), "overflows");
    CHECK_STR_CONTAINS(parse("{\"__metadata__\":{\"format\":1}}", 0), "not a string");
    CHECK_STR_CONTAINS(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4),
                       "unexpected key 'x'");
    CHECK_STR_CONTAINS(parse("[1,2]", 0), "not a JSON object");
    CHECK_STR_CONTAINS(parse("{\"a\":", 0), "not valid JSON");
}

TEST(st_open_refuses_bad_length)
{
    const char *dir = th_tmpdir();
    char p[512];
    snprintf(p, sizeof p, "%s/short.safetensors", dir);
    FILE *f = fopen(p, "wb");
    REQUIRE(f);
    fwrite("\x05\0\0", 1, 3, f);
    fclose(f);
    dsv4_st_file st;
    dsv4_err e;
    CHECK(dsv4_st_open(p, &st, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "shorter than the 8-byte header length");
    f = fopen(p, "wb");
    uint64_t n = 200000000;
    fwrite(&n, 8, 1, f);
    fclose(f);
    CHECK(dsv4_st_open(p, &st, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "exceeds the 100,000,000-byte limit");
    f = fopen(p, "wb");
    n = 100;
    fwrite(&n, 8, 1, f);
    fwrite("{}", 1, 2, f);
    fclose(f);
    CHECK(dsv4_st_open(p, &st, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "runs past the end");
}

TEST(ckpt_opens_tiny_fixture)
{
    dsv4_ckpt c;
    dsv4_err e;
    int rc = dsv4_ckpt_open(th_path("fixtures/dsv4-tiny"), 0, &c, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    REQUIRE(rc == 0);
    CHECK_EQ_INT(c.n, 667);
    CHECK_EQ_INT(c.n_files, 2);
    CHECK(c.has_index);
    CHECK_EQ_INT(c.index.total_size, c.data_bytes);
    CHECK_EQ_INT(c.n_problems, 0);
    const dsv4_tensor *t = dsv4_ckpt_find(&c, "layers.0.attn.wq_a.weight");
    REQUIRE(t);
    CHECK_EQ_INT(t->dtype, DSV4_F8_E4M3);
    CHECK_EQ_INT(t->ndim, 2);
    CHECK_EQ_INT(t->shape[0], 128);
    CHECK_EQ_INT(t->shape[1], 256);
    CHECK(t->data != NULL);
    t = dsv4_ckpt_find(&c, "layers.0.ffn.gate.tid2eid");
    REQUIRE(t);
    CHECK_EQ_INT(t->dtype, DSV4_I64);
    int64_t v;
    memcpy(&v, t->data, 8);
    CHECK(v >= 0 && v < 16);
    CHECK(dsv4_ckpt_find(&c, "layers.0.attn.nonexistent") == NULL);
    CHECK(dsv4_st_meta(&c.files[0], "format") == NULL); /* the release writes no __metadata__ */
    dsv4_ckpt_close(&c);
}

TEST(index_refuses_escaping_shard_names)
{
    dsv4_index ix;
    dsv4_err e;
    const char *bad = "{\"weight_map\":{\"a\":\"../x.safetensors\"}}";
    CHECK(dsv4_index_parse(bad, strlen(bad), "i.json", &ix, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "weight_map entry 'a' must name a .safetensors file in the same folder");
    const char *ok = "{\"metadata\":{\"total_size\":12},\"weight_map\":{\"b\":\"s2.safetensors\","
                     "\"a\":\"s1.safetensors\",\"c\":\"s1.safetensors\"}}";
    REQUIRE(dsv4_index_parse(ok, strlen(ok), "i.json", &ix, &e) == 0);
    CHECK_EQ_INT(ix.n, 3);
    CHECK_EQ_INT(ix.n_shards, 2);
    CHECK_EQ_INT(ix.total_size, 12);
    CHECK(!strcmp(dsv4_index_lookup(&ix, "b"), "s2.safetensors"));
    CHECK(!strcmp(dsv4_index_lookup(&ix, "c"), "s1.safetensors"));
    CHECK(dsv4_index_lookup(&ix, "d") == NULL);
    dsv4_index_free(&ix);
}
