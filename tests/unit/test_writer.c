/* The checkpoint writer: exact header and index bytes (hand-computed and cross-checked against the
 * Python safetensors 0.8.0 serializer and json.dumps), shard planning, round trips through the
 * strict reader, determinism, concurrent filling and clean failure. */
#include "harness.h"
#include "io/index_write.h"
#include "io/st_write.h"
#include "test_writer_util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static void add(dsv4_st_plan *p, const char *name, dsv4_dtype dt, int ndim, const int64_t *shape)
{
    dsv4_err e;
    if (dsv4_st_plan_add(p, name, dt, ndim, shape, &e))
        th_fail(__FILE__, __LINE__, "plan_add(%s): %s", name, e.msg);
}

/* The worked example of spec/formats_algorithms.md §6.5, computed by hand there. */
TEST(writer_header_matches_spec_6_5)
{
    static const char want[] =
        "{\"__metadata__\":{\"format\":\"pt\"},\"model.layers.0.mlp.down_proj.weight_shape\":"
        "{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]},\"model.layers.0.mlp.down_proj."
        "weight_packed\":{\"dtype\":\"I32\",\"shape\":[2,16],\"data_offsets\":[16,144]},"
        "\"model.layers.0.mlp.down_proj.weight_scale\":{\"dtype\":\"BF16\",\"shape\":[2,1],"
        "\"data_offsets\":[144,148]}}  ";
    dsv4_st_plan p;
    dsv4_err e;
    dsv4_st_plan_init(&p, 0, 0);
    /* Declared in an order the writer must not keep: the layout sorts by dtype, then name. */
    add(&p, "model.layers.0.mlp.down_proj.weight_scale", DSV4_BF16, 2, (int64_t[]){2, 1});
    add(&p, "model.layers.0.mlp.down_proj.weight_packed", DSV4_I32, 2, (int64_t[]){2, 16});
    add(&p, "model.layers.0.mlp.down_proj.weight_shape", DSV4_I64, 1, (int64_t[]){2});
    REQUIRE(dsv4_st_plan_finish(&p, &e) == 0);
    CHECK_EQ_INT(p.n_shards, 1);
    CHECK(!p.has_index);
    CHECK(!strcmp(p.shards[0].name, "model.safetensors"));
    CHECK_EQ_INT(p.shards[0].header_len, 328);
    CHECK_EQ_INT(strlen(want), 328);
    CHECK_MSG(!strcmp(p.shards[0].header, want), "header:\n%s\nwant:\n%s", p.shards[0].header, want);
    CHECK_EQ_INT(p.shards[0].file_bytes, 484);
    CHECK_EQ_INT(p.tensors[0].file_offset, 8 + 328 + 144);

    const char *out = tw_join(th_tmpdir(), "ckpt");
    uint8_t shape_bytes[16] = {2, 0, 0, 0, 0, 0, 0, 0, 128};
    uint8_t packed[128], scale[4] = {0x89, 0x3e, 0x80, 0x3f};
    tw_pattern(packed, sizeof packed, 1);
    const void *data[3] = {scale, packed, shape_bytes};
    REQUIRE(dsv4_st_write_all(&p, out, data, &e) == 0);
    FILE *f = fopen(tw_join(out, "model.safetensors"), "rb");
    REQUIRE(f);
    uint8_t file[600];
    size_t n = fread(file, 1, sizeof file, f);
    fclose(f);
    CHECK_EQ_INT(n, 484);
    CHECK(!memcmp(file, "\x48\x01\0\0\0\0\0\0", 8));
    CHECK(!memcmp(file + 8, want, 328));
    CHECK(!memcmp(file + 336, shape_bytes, 16));
    CHECK(!memcmp(file + 480, scale, 4));
    CHECK(!exists(tw_join(out, DSV4_INDEX_NAME)));
    dsv4_st_plan_free(&p);
}

/* serde_json escaping and the dtype-descending order over several dtypes. Expected bytes are
 * what safetensors 0.8.0's `serialize(..., metadata={"format": "pt"})` produced for the same
 * tensors: quote, backslash, newline as short escapes, U+0001 as \u0001, DEL and non-ASCII raw. */
TEST(writer_header_escapes_like_serde)
{
    static const char want[] =
        "{\"__metadata__\":{\"format\":\"pt\"},\"\xc3\xa9\xf0\x9f\x98\x80\":{\"dtype\":\"I64\","
        "\"shape\":[0],\"data_offsets\":[0,0]},\"A\":{\"dtype\":\"F32\",\"shape\":[1],"
        "\"data_offsets\":[0,4]},\"B\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[4,28]},"
        "\"w\\\"q\\\\\\n\\u0001\x7f\":{\"dtype\":\"BF16\",\"shape\":[2,1],\"data_offsets\":[28,32]},"
        "\"c\":{\"dtype\":\"F8_E4M3\",\"shape\":[],\"data_offsets\":[32,33]},\"a.b\":{\"dtype\":"
        "\"F4\",\"shape\":[2,2],\"data_offsets\":[33,35]}}     ";
    dsv4_st_plan p;
    dsv4_err e;
    dsv4_st_plan_init(&p, 0, 0);
    add(&p, "w\"q\\\n\x01\x7f", DSV4_BF16, 2, (int64_t[]){2, 1});
    add(&p, "\xc3\xa9\xf0\x9f\x98\x80", DSV4_I64, 1, (int64_t[]){0});
    add(&p, "a.b", DSV4_F4, 2, (int64_t[]){2, 2});
    add(&p, "c", DSV4_F8_E4M3, 0, NULL);
    add(&p, "B", DSV4_F32, 2, (int64_t[]){2, 3});
    add(&p, "A", DSV4_F32, 1, (int64_t[]){1});
    REQUIRE(dsv4_st_plan_finish(&p, &e) == 0);
    CHECK_EQ_INT(p.shards[0].header_len, 392);
    CHECK_EQ_INT(strlen(want), 392);
    CHECK_MSG(!strcmp(p.shards[0].header, want), "header:\n%s\nwant:\n%s", p.shards[0].header, want);
    CHECK_EQ_INT(p.total_bytes, 35);
    dsv4_st_plan_free(&p);
}

TEST(writer_plan_splits_shards_in_declaration_order)
{
    dsv4_st_plan p;
    dsv4_err e;
    dsv4_st_plan_init(&p, 100, 0);
    add(&p, "t0", DSV4_U8, 1, (int64_t[]){40});
    add(&p, "t1", DSV4_F32, 1, (int64_t[]){10});
    add(&p, "t2", DSV4_U8, 1, (int64_t[]){40});   /* 120 > 100: new shard */
    add(&p, "t3", DSV4_U8, 1, (int64_t[]){200});  /* larger than the maximum: a shard of its own */
    add(&p, "t4", DSV4_U8, 1, (int64_t[]){10});
    add(&p, "t5", DSV4_I64, 1, (int64_t[]){0});
    add(&p, "t6", DSV4_U8, 1, (int64_t[]){90});   /* 100 exactly still fits */
    add(&p, "t7", DSV4_U8, 1, (int64_t[]){1});
    REQUIRE(dsv4_st_plan_finish(&p, &e) == 0);
    static const int want_shard[] = {0, 0, 1, 2, 3, 3, 3, 4};
    for (int i = 0; i < 8; i++)
        CHECK_MSG(p.tensors[i].shard == (uint32_t)want_shard[i], "t%d in shard %u, want %d", i,
                  p.tensors[i].shard, want_shard[i]);
    CHECK_EQ_INT(p.n_shards, 5);
    CHECK(p.has_index);
    CHECK(!strcmp(p.shards[0].name, "model-00001-of-00005.safetensors"));
    CHECK(!strcmp(p.shards[4].name, "model-00005-of-00005.safetensors"));
    /* Inside shard 0, F32 comes before U8; in shard 3, I64 (zero bytes) before the U8 pair. */
    CHECK_EQ_INT(p.tensors[1].begin, 0);
    CHECK_EQ_INT(p.tensors[0].begin, 40);
    CHECK_EQ_INT(p.tensors[5].begin, 0);
    CHECK_EQ_INT(p.tensors[5].end, 0);
    CHECK_EQ_INT(p.tensors[4].begin, 0);
    CHECK_EQ_INT(p.tensors[6].begin, 10);
    CHECK_EQ_INT(p.shards[3].data_bytes, 100);
    CHECK_EQ_INT(p.total_bytes, 40 + 40 + 40 + 200 + 10 + 90 + 1);
    CHECK_EQ_INT(dsv4_st_plan_find(&p, "t6"), 6);
    CHECK_EQ_INT(dsv4_st_plan_find(&p, "t8"), -1);
    dsv4_st_plan_free(&p);

    dsv4_st_plan_init(&p, 0, DSV4_ST_ALWAYS_INDEX);
    add(&p, "x", DSV4_U8, 0, NULL);
    REQUIRE(dsv4_st_plan_finish(&p, &e) == 0);
    CHECK(p.has_index);
    CHECK(!strcmp(p.shards[0].name, "model-00001-of-00001.safetensors"));
    dsv4_st_plan_free(&p);
}

static const char *plan_error(const char *name, dsv4_dtype dt, int ndim, const int64_t *shape)
{
    static dsv4_err e;
    dsv4_st_plan p;
    dsv4_st_plan_init(&p, 0, 0);
    int rc = dsv4_st_plan_add(&p, name, dt, ndim, shape, &e);
    dsv4_st_plan_free(&p);
    return rc ? e.msg : "";
}

TEST(writer_plan_refusals_name_the_tensor)
{
    CHECK_STR_CONTAINS(plan_error("", DSV4_U8, 0, NULL), "expected a non-empty name");
    CHECK_STR_CONTAINS(plan_error("__metadata__", DSV4_U8, 0, NULL), "reserved");
    CHECK_STR_CONTAINS(plan_error("bad\xff", DSV4_U8, 0, NULL), "not valid UTF-8");
    CHECK_STR_CONTAINS(plan_error("f4", DSV4_F4, 1, (int64_t[]){3}),
                       "tensor 'f4': 3 elements of F4 are 12 bits, not a whole number of bytes");
    CHECK_STR_CONTAINS(plan_error("neg", DSV4_F32, 2, (int64_t[]){2, -1}),
                       "tensor 'neg': shape[1] is -1, expected a non-negative size");
    CHECK_STR_CONTAINS(plan_error("deep", DSV4_F32, 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}),
                       "tensor 'deep': 9 dimensions, expected 0 to 8");
    CHECK_STR_CONTAINS(plan_error("huge", DSV4_U64, 2, (int64_t[]){1LL << 40, 1LL << 40}),
                       "tensor 'huge': the shape's size in bits overflows 64 bits");
    CHECK_STR_CONTAINS(plan_error("big", DSV4_U64, 1, (int64_t[]){1LL << 60}), "overflows 64 bits");
    dsv4_st_plan p;
    dsv4_err e;
    dsv4_st_plan_init(&p, 0, 0);
    add(&p, "a", DSV4_U8, 0, NULL);
    add(&p, "b", DSV4_U8, 0, NULL);
    add(&p, "a", DSV4_F32, 0, NULL);
    CHECK(dsv4_st_plan_finish(&p, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "tensor 'a': declared twice (#0 and #2)");
    dsv4_st_plan_free(&p);
}

/* Byte for byte what transformers writes: json.dumps(index, indent=2, sort_keys=True) + "\n"
 * (the expected text was produced by Python's json module for the same map). */
TEST(writer_index_is_formatted_like_transformers)
{
    static const char want[] =
        "{\n"
        "  \"metadata\": {\n"
        "    \"total_size\": 7\n"
        "  },\n"
        "  \"weight_map\": {\n"
        "    \"a\": \"model-00002-of-00002.safetensors\",\n"
        "    \"w\\\"q\\\\\\n\\u0001\\u007f\": \"model-00001-of-00002.safetensors\",\n"
        "    \"\\u00e9\\ud83d\\ude00\": \"model-00001-of-00002.safetensors\"\n"
        "  }\n"
        "}\n";
    dsv4_st_plan p;
    dsv4_err e;
    dsv4_st_plan_init(&p, 4, 0);
    add(&p, "\xc3\xa9\xf0\x9f\x98\x80", DSV4_U8, 1, (int64_t[]){3});
    add(&p, "w\"q\\\n\x01\x7f", DSV4_U8, 0, NULL);
    add(&p, "a", DSV4_U8, 1, (int64_t[]){3});
    REQUIRE(dsv4_st_plan_finish(&p, &e) == 0);
    REQUIRE(p.n_shards == 2);
    dsv4_jbuf b = {0};
    REQUIRE(dsv4_index_render(&p, &b, &e) == 0);
    CHECK_MSG(!strcmp(b.p, want), "index:\n%s\nwant:\n%s", b.p, want);
    dsv4_jbuf_free(&b);
    dsv4_st_plan_free(&p);
}

/* Declares a random tensor of dtype dt with up to 4 dimensions (some zero) and a whole number of
 * bytes. */
static void random_tensor(dsv4_st_plan *p, const char *name, dsv4_dtype dt, int zero_ok)
{
    int64_t shape[DSV4_MAX_DIMS];
    int ndim = (int)(th_rand() % 5);
    for (int d = 0; d < ndim; d++)
        shape[d] = (int64_t)(th_rand() % 9) + (zero_ok ? 0 : 1);
    uint64_t numel = 1;
    for (int d = 0; d < ndim; d++)
        numel *= (uint64_t)shape[d];
    if (dsv4_dtype_nbytes(dt, numel) < 0)
        shape[ndim++] = 4; /* F4 and F6 need 2 or 4 elements per whole byte */
    add(p, name, dt, ndim, shape);
}

typedef struct model {
    dsv4_st_plan plan;
    uint8_t **data;
} model;

/* A model with every dtype, 0-d and zero-size tensors, split into shards of at most max bytes. */
static void make_model(model *m, uint64_t max, int per_dtype)
{
    dsv4_err e;
    dsv4_st_plan_init(&m->plan, max, 0);
    for (int k = 0; k < per_dtype; k++)
        for (int dt = 0; dt < DSV4_DTYPE_COUNT; dt++) {
            char name[64];
            snprintf(name, sizeof name, "layers.%d.%s.w%d", k, dsv4_dtype_name((dsv4_dtype)dt), dt);
            random_tensor(&m->plan, name, (dsv4_dtype)dt, k != 0);
        }
    add(&m->plan, "scalar", DSV4_F64, 0, NULL);
    add(&m->plan, "empty", DSV4_BF16, 2, (int64_t[]){0, 7});
    if (dsv4_st_plan_finish(&m->plan, &e))
        th_fail(__FILE__, __LINE__, "finish: %s", e.msg);
    m->data = calloc(m->plan.n, sizeof *m->data);
    for (size_t i = 0; i < m->plan.n; i++) {
        m->data[i] = malloc(m->plan.tensors[i].nbytes + 1);
        tw_pattern(m->data[i], m->plan.tensors[i].nbytes, i + 1);
    }
}

static void free_model(model *m)
{
    for (size_t i = 0; i < m->plan.n; i++)
        free(m->data[i]);
    free(m->data);
    dsv4_st_plan_free(&m->plan);
}

/* Reopens `dir` strictly and compares every tensor with the model. */
static void check_roundtrip(const model *m, const char *dir)
{
    dsv4_err e;
    dsv4_ckpt c;
    int rc = dsv4_ckpt_open(dir, 0, &c, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (rc)
        return;
    CHECK_EQ_INT(c.n, m->plan.n);
    CHECK_EQ_INT(c.n_files, m->plan.n_shards);
    CHECK_EQ_INT(c.has_index, m->plan.has_index);
    CHECK_EQ_INT(c.n_problems, 0);
    CHECK_EQ_INT(c.data_bytes, m->plan.total_bytes);
    for (size_t i = 0; i < m->plan.n; i++) {
        const dsv4_st_plan_tensor *pt = &m->plan.tensors[i];
        const dsv4_tensor *t = dsv4_ckpt_find(&c, pt->name);
        CHECK_MSG(t != NULL, "tensor %s missing", pt->name);
        if (!t)
            continue;
        CHECK_EQ_INT(t->dtype, pt->dtype);
        CHECK_EQ_INT(t->ndim, pt->ndim);
        for (int d = 0; d < t->ndim; d++)
            CHECK_EQ_INT(t->shape[d], pt->shape[d]);
        CHECK_EQ_INT(dsv4_tensor_nbytes(t), pt->nbytes);
        CHECK_MSG(!memcmp(t->data, m->data[i], pt->nbytes), "tensor %s bytes differ", pt->name);
        CHECK(!strcmp(strrchr(dsv4_ckpt_file_of(&c, t), '/') + 1, m->plan.shards[pt->shard].name));
        CHECK_EQ_INT(t->data - c.files[t->file].map, pt->file_offset);
    }
    for (size_t f = 0; f < c.n_files; f++) {
        const char *fmt = dsv4_st_meta(&c.files[f], "format");
        CHECK(fmt && !strcmp(fmt, "pt"));
    }
    dsv4_manifest man;
    rc = dsv4_manifest_load(dir, &man, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (rc == 0) {
        CHECK_EQ_INT(man.n, m->plan.n);
        CHECK_EQ_INT(man.total_size, m->plan.total_bytes);
        rc = dsv4_manifest_verify(&man, &c, &e);
        CHECK_MSG(rc == 0, "%s", e.msg);
        for (size_t i = 0; i < man.n; i++) {
            long k = dsv4_st_plan_find(&m->plan, man.v[i].name);
            REQUIRE(k >= 0);
            dsv4_hash128 h = dsv4_xxh128(m->data[k], m->plan.tensors[k].nbytes);
            CHECK(h.hi == man.v[i].hash.hi && h.lo == man.v[i].hash.lo);
        }
        dsv4_manifest_free(&man);
    }
    dsv4_ckpt_close(&c);
}

TEST(writer_roundtrip_every_dtype_sharded)
{
    model m;
    make_model(&m, 600, 4);
    REQUIRE(th_failures() == 0);
    CHECK(m.plan.n_shards > 3);
    const char *out = tw_join(th_tmpdir(), "out");
    dsv4_err e;
    /* Fill in reverse declaration order: order is free. */
    dsv4_st_writer *w;
    REQUIRE(dsv4_st_writer_open(&w, &m.plan, out, NULL, &e) == 0);
    for (size_t i = m.plan.n; i-- > 0;) {
        int rc = dsv4_st_writer_put(w, i, m.data[i], m.plan.tensors[i].nbytes, &e);
        CHECK_MSG(rc == 0, "%s", e.msg);
    }
    int rc = dsv4_st_writer_close(w, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    check_roundtrip(&m, out);
    free_model(&m);
}

TEST(writer_roundtrip_single_file)
{
    model m;
    make_model(&m, 0, 2);
    REQUIRE(th_failures() == 0);
    CHECK_EQ_INT(m.plan.n_shards, 1);
    const char *out = tw_join(th_tmpdir(), "one");
    dsv4_err e;
    int rc = dsv4_st_write_all(&m.plan, out, (const void *const *)m.data, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    CHECK(exists(tw_join(out, "model.safetensors")));
    CHECK(!exists(tw_join(out, DSV4_INDEX_NAME)));
    CHECK(exists(tw_join(out, DSV4_MANIFEST_NAME)));
    check_roundtrip(&m, out);
    free_model(&m);
}

TEST(writer_output_is_deterministic)
{
    model m;
    make_model(&m, 500, 3);
    REQUIRE(th_failures() == 0);
    const char *dir = th_tmpdir();
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    dsv4_err e;
    REQUIRE(dsv4_st_write_all(&m.plan, a, (const void *const *)m.data, &e) == 0);
    REQUIRE(dsv4_st_write_all(&m.plan, b, (const void *const *)m.data, &e) == 0);
    for (size_t s = 0; s < m.plan.n_shards; s++) {
        char pa[1200], pb[1200];
        snprintf(pa, sizeof pa, "%s/%s", a, m.plan.shards[s].name);
        snprintf(pb, sizeof pb, "%s/%s", b, m.plan.shards[s].name);
        CHECK_MSG(tw_same_file(pa, pb), "%s differs", m.plan.shards[s].name);
    }
    CHECK(tw_same_file(tw_join(a, DSV4_INDEX_NAME), tw_join(b, DSV4_INDEX_NAME)));
    CHECK(tw_same_file(tw_join(a, DSV4_MANIFEST_NAME), tw_join(b, DSV4_MANIFEST_NAME)));
    /* Nothing else in the folder: shards, index, manifest. */
    CHECK_EQ_INT(tw_count_prefix(a, ""), (int)m.plan.n_shards + 2 + 2);
    free_model(&m);
}

typedef struct fill_job {
    dsv4_st_writer *w;
    const model *m;
    size_t first;       /* this thread fills tensors first, first + 2, first + 4, ... */
    int failures;
    dsv4_err e;
} fill_job;

static int fill_from_model(void *ctx, const dsv4_st_plan_tensor *t, uint8_t *dst, dsv4_err *e)
{
    const model *m = ctx;
    long i = dsv4_st_plan_find(&m->plan, t->name);
    if (i < 0)
        return dsv4_fail(e, "tensor '%s': unknown", t->name);
    memcpy(dst, m->data[i], t->nbytes);
    return 0;
}

static void *fill_thread(void *arg)
{
    fill_job *j = arg;
    for (size_t i = j->first; i < j->m->plan.n; i += 2)
        if (dsv4_st_writer_fill(j->w, i, fill_from_model, (void *)j->m, &j->e))
            j->failures++;
    return NULL;
}

TEST(writer_two_threads_fill_distinct_tensors)
{
    model m;
    make_model(&m, 300, 6);
    REQUIRE(th_failures() == 0);
    const char *out = tw_join(th_tmpdir(), "mt");
    dsv4_err e;
    dsv4_st_writer *w;
    REQUIRE(dsv4_st_writer_open(&w, &m.plan, out, NULL, &e) == 0);
    fill_job jobs[2] = {{.w = w, .m = &m, .first = 0}, {.w = w, .m = &m, .first = 1}};
    pthread_t th[2];
    for (int k = 0; k < 2; k++)
        pthread_create(&th[k], NULL, fill_thread, &jobs[k]);
    for (int k = 0; k < 2; k++) {
        pthread_join(th[k], NULL);
        CHECK_MSG(jobs[k].failures == 0, "thread %d: %s", k, jobs[k].e.msg);
    }
    int rc = dsv4_st_writer_close(w, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    check_roundtrip(&m, out);
    free_model(&m);
}

TEST(writer_failures_leave_no_output)
{
    const char *dir = th_tmpdir();
    const char *out = tw_join(dir, "x");
    dsv4_st_plan p;
    dsv4_err e;
    dsv4_st_plan_init(&p, 8, 0);
    add(&p, "a", DSV4_F32, 1, (int64_t[]){2});
    add(&p, "b", DSV4_F32, 1, (int64_t[]){2});
    REQUIRE(dsv4_st_plan_finish(&p, &e) == 0);
    float v[2] = {1, 2};

    /* A tensor never filled: close refuses, names it, and removes the temporary folder. */
    dsv4_st_writer *w;
    REQUIRE(dsv4_st_writer_open(&w, &p, out, NULL, &e) == 0);
    CHECK_EQ_INT(tw_count_prefix(dir, "x.tmp-"), 1);
    REQUIRE(dsv4_st_writer_put(w, 0, v, 8, &e) == 0);
    CHECK(dsv4_st_writer_put(w, 0, v, 8, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "/x/model-00001-of-00002.safetensors: tensor 'a': filled twice");
    CHECK(dsv4_st_writer_put(w, 1, v, 4, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "tensor 'b': given 4 bytes, expected 8");
    CHECK(dsv4_st_writer_put(w, 7, v, 4, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "tensor #7: the plan has only 2 tensors");
    CHECK(dsv4_st_writer_close(w, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "/x/model-00002-of-00002.safetensors: tensor 'b' was declared but never filled");
    CHECK(!exists(out));
    CHECK_EQ_INT(tw_count_prefix(dir, "x"), 0);

    /* Abort after partial writing. */
    REQUIRE(dsv4_st_writer_open(&w, &p, out, NULL, &e) == 0);
    REQUIRE(dsv4_st_writer_put(w, 1, v, 8, &e) == 0);
    dsv4_st_writer_abort(w);
    CHECK_EQ_INT(tw_count_prefix(dir, "x"), 0);

    /* A fill callback that fails makes the writer refuse to go on. */
    REQUIRE(dsv4_st_writer_open(&w, &p, out, NULL, &e) == 0);
    CHECK(dsv4_st_writer_fill(w, 0, fill_from_model, &(model){.plan = {0}}, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "tensor 'a': unknown");
    CHECK(dsv4_st_writer_put(w, 1, v, 8, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "writing was abandoned after an earlier error");
    CHECK(dsv4_st_writer_close(w, &e) == -1);
    CHECK_EQ_INT(tw_count_prefix(dir, "x"), 0);

    /* An existing destination is refused before anything is created. */
    const void *data[2] = {v, v};
    REQUIRE(dsv4_st_write_all(&p, out, data, &e) == 0);
    CHECK(dsv4_st_write_all(&p, out, data, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "/x: already exists; refusing to overwrite it");
    CHECK_EQ_INT(tw_count_prefix(dir, "x.tmp-"), 0);
    int rc = tw_verify_dir(out, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    dsv4_st_plan_free(&p);
}

TEST(writer_empty_plan_writes_an_empty_file)
{
    dsv4_st_plan p;
    dsv4_err e;
    dsv4_st_plan_init(&p, 0, 0);
    REQUIRE(dsv4_st_plan_finish(&p, &e) == 0);
    /* safetensors 0.8.0 serialize({}, {"format": "pt"}): 32 bytes, no padding needed. */
    CHECK(!strcmp(p.shards[0].header, "{\"__metadata__\":{\"format\":\"pt\"}}"));
    CHECK_EQ_INT(p.shards[0].file_bytes, 40);
    const char *out = tw_join(th_tmpdir(), "empty");
    REQUIRE(dsv4_st_write_all(&p, out, NULL, &e) == 0);
    int rc = tw_verify_dir(out, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    dsv4_st_plan_free(&p);
}

typedef struct events {
    int seq[64];
    int n;
    uint64_t last_done;
} events;

static void record(void *ctx, int ev, size_t index, uint64_t done, uint64_t total)
{
    events *v = ctx;
    if (v->n < 64)
        v->seq[v->n++] = ev;
    v->last_done = done;
    (void)index, (void)total;
}

TEST(writer_reports_progress_in_order)
{
    dsv4_st_plan p;
    dsv4_err e;
    dsv4_st_plan_init(&p, 4, 0);
    add(&p, "a", DSV4_F32, 0, NULL);
    add(&p, "b", DSV4_F32, 0, NULL);
    REQUIRE(dsv4_st_plan_finish(&p, &e) == 0);
    events v = {0};
    dsv4_st_write_opts o = {.progress = record, .progress_ctx = &v};
    dsv4_st_writer *w;
    REQUIRE(dsv4_st_writer_open(&w, &p, tw_join(th_tmpdir(), "ev"), &o, &e) == 0);
    float x = 1;
    REQUIRE(dsv4_st_writer_put(w, 0, &x, 4, &e) == 0);
    REQUIRE(dsv4_st_writer_put(w, 1, &x, 4, &e) == 0);
    REQUIRE(dsv4_st_writer_close(w, &e) == 0);
    static const int want[] = {DSV4_ST_EV_OPENED, DSV4_ST_EV_TENSOR, DSV4_ST_EV_SHARD,
                               DSV4_ST_EV_TENSOR, DSV4_ST_EV_SHARD, DSV4_ST_EV_INDEX,
                               DSV4_ST_EV_MANIFEST, DSV4_ST_EV_COMMITTED};
    CHECK_EQ_INT(v.n, 8);
    for (int i = 0; i < 8 && i < v.n; i++)
        CHECK_EQ_INT(v.seq[i], want[i]);
    CHECK_EQ_INT(v.last_done, 8);
    dsv4_st_plan_free(&p);
}
