/* Every FP8-block and FP4-expert tensor of fixtures/dsv4-tiny dequantizes to finite values and
 * re-encodes (from float32, and from bf16) to exactly the stored bytes.
 *
 * The st_* helpers below are a deliberately minimal safetensors reader local to this test (whole
 * file in memory, jansson header, data_offsets); the project's real reader replaces them. */
#include "harness.h"
#include "formats/dequant.h"
#include "formats/fp.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t *buf;
    size_t len;
    json_t *hdr;
    const uint8_t *data;
    size_t data_len;
} st_file;

typedef struct {
    const char *dtype;
    int ndim;
    int64_t shape[2];
    const uint8_t *p;
    size_t n;
} st_tensor;

static int st_open(st_file *f, const char *path)
{
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return -1;
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    f->buf = len > 8 ? malloc((size_t)len) : NULL;
    int ok = f->buf && fread(f->buf, 1, (size_t)len, fp) == (size_t)len;
    fclose(fp);
    if (!ok)
        return -1;
    f->len = (size_t)len;
    uint64_t n = 0;
    for (int k = 0; k < 8; k++)
        n |= (uint64_t)f->buf[k] << (8 * k);
    if (n > f->len - 8)
        return -1;
    json_error_t jerr;
    f->hdr = json_loadb((const char *)f->buf + 8, (size_t)n, 0, &jerr);
    f->data = f->buf + 8 + n;
    f->data_len = f->len - 8 - (size_t)n;
    return json_is_object(f->hdr) ? 0 : -1;
}

static void st_close(st_file *f)
{
    json_decref(f->hdr);
    free(f->buf);
}

/* Looks `name` up; 0 when found with a rank ≤ 2 and in-bounds offsets. */
static int st_get(const st_file *f, const char *name, st_tensor *t)
{
    json_t *e = json_object_get(f->hdr, name), *shape = json_object_get(e, "shape"),
           *off = json_object_get(e, "data_offsets");
    if (!json_is_object(e) || !json_is_array(shape) || json_array_size(shape) > 2 || json_array_size(off) != 2)
        return -1;
    t->dtype = json_string_value(json_object_get(e, "dtype"));
    t->ndim = (int)json_array_size(shape);
    t->shape[0] = t->shape[1] = 1;
    for (int k = 0; k < t->ndim; k++)
        t->shape[k] = json_integer_value(json_array_get(shape, (size_t)k));
    json_int_t b = json_integer_value(json_array_get(off, 0)), end = json_integer_value(json_array_get(off, 1));
    if (!t->dtype || b < 0 || end < b || (size_t)end > f->data_len)
        return -1;
    t->p = f->data + b;
    t->n = (size_t)(end - b);
    return 0;
}

static const char *shards[2] = {"fixtures/dsv4-tiny/model-00001-of-00002.safetensors",
                                "fixtures/dsv4-tiny/model-00002-of-00002.safetensors"};

static int has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

typedef struct {
    int fp8, fp4, named;
} counts;

/* One weight/scale pair: dequantize (f32 and bf16), check finiteness, re-encode, compare bytes. */
static void check_pair(const char *wname, const st_tensor *w, const st_tensor *s, counts *n)
{
    int fp4 = strstr(wname, ".experts.") != NULL;
    CHECK_MSG(strcmp(w->dtype, fp4 ? "I8" : "F8_E4M3") == 0, "%s has dtype %s", wname, w->dtype);
    CHECK_MSG(strcmp(s->dtype, "F8_E8M0") == 0, "%s scale has dtype %s", wname, s->dtype);
    if (w->ndim != 2 || s->ndim != 2 || (size_t)(w->shape[0] * w->shape[1]) != w->n) {
        th_fail(__FILE__, __LINE__, "%s: unexpected rank or size", wname);
        return;
    }
    dsv4_qweight q = {wname, w->p, s->p, w->shape[0], w->shape[1], s->shape[0], s->shape[1]};
    int64_t cols = fp4 ? 2 * q.w_cols : q.w_cols, ne = q.w_rows * cols;
    float *f = malloc((size_t)ne * sizeof *f), *fb = malloc((size_t)ne * sizeof *fb);
    uint16_t *b = malloc((size_t)ne * sizeof *b);
    uint8_t *re = malloc(w->n);
    dsv4_err e = {{0}, 0};
    if (!f || !fb || !b || !re) {
        th_fail(__FILE__, __LINE__, "out of memory");
        goto out;
    }
    int rc = fp4 ? dsv4_fp4_dequant_f32(&q, f, &e) : dsv4_fp8_block_dequant_f32(&q, f, &e);
    rc |= fp4 ? dsv4_fp4_dequant_bf16(&q, b, &e) : dsv4_fp8_block_dequant_bf16(&q, b, &e);
    CHECK_MSG(rc == 0, "%s: %s", wname, e.msg);
    if (rc)
        goto out;
    int64_t bad = 0;
    for (int64_t i = 0; i < ne; i++) {
        bad += !isfinite(f[i]);
        fb[i] = dsv4_bf16_to_f32(b[i]);
    }
    CHECK_MSG(bad == 0, "%s: %lld non-finite values", wname, (long long)bad);
    rc = fp4 ? dsv4_fp4_requant(&q, f, re, &e) : dsv4_fp8_block_requant(&q, f, re, &e);
    CHECK_MSG(rc == 0 && memcmp(re, w->p, w->n) == 0, "%s: f32 re-encoding differs", wname);
    rc = fp4 ? dsv4_fp4_requant(&q, fb, re, &e) : dsv4_fp8_block_requant(&q, fb, re, &e);
    CHECK_MSG(rc == 0 && memcmp(re, w->p, w->n) == 0, "%s: bf16 re-encoding differs", wname);
    if (fp4)
        n->fp4++;
    else
        n->fp8++;
    n->named += !strcmp(wname, "layers.0.attn.wq_a.weight") + !strcmp(wname, "layers.0.ffn.experts.3.w1.weight") +
                !strcmp(wname, "mtp.0.e_proj.weight");
out:
    free(f);
    free(fb);
    free(b);
    free(re);
}

TEST(dequant_fixture_all_fp8_fp4_tensors)
{
    st_file f[2];
    int opened = 0;
    for (; opened < 2; opened++)
        if (st_open(&f[opened], th_path(shards[opened])) != 0)
            break;
    CHECK_MSG(opened == 2, "cannot read %s", shards[opened < 2 ? opened : 1]);
    counts n = {0, 0, 0};
    for (int i = 0; i < opened; i++) {
        const char *key;
        json_t *val;
        json_object_foreach(f[i].hdr, key, val) {
            if (!has_suffix(key, ".scale"))
                continue;
            char wname[512];
            snprintf(wname, sizeof wname, "%.*s.weight", (int)(strlen(key) - 6), key);
            st_tensor w, s;
            REQUIRE(st_get(&f[i], key, &s) == 0);
            int found = 0;
            for (int j = 0; j < opened && !found; j++)
                found = st_get(&f[j], wname, &w) == 0;
            CHECK_MSG(found, "%s has no %s", key, wname);
            if (found)
                check_pair(wname, &w, &s, &n);
        }
    }
    /* fixtures/dsv4-tiny: 44 FP8 linears (17 + 27) and 240 FP4 experts (96 + 144) */
    CHECK_EQ_INT(n.fp8, 44);
    CHECK_EQ_INT(n.fp4, 240);
    CHECK_EQ_INT(n.named, 3);
    for (int i = 0; i < opened; i++)
        st_close(&f[i]);
}

/* The fixture's ranges, for the CUDA test's choice of random scales: every scale byte lies in
 * [110, 130] and no FP8 weight byte is a NaN code. */
TEST(dequant_fixture_value_ranges)
{
    for (int i = 0; i < 2; i++) {
        st_file f;
        REQUIRE(st_open(&f, th_path(shards[i])) == 0);
        const char *key;
        json_t *val;
        json_object_foreach(f.hdr, key, val) {
            st_tensor t;
            if (st_get(&f, key, &t) != 0)
                continue;
            if (!strcmp(t.dtype, "F8_E8M0"))
                for (size_t k = 0; k < t.n; k++)
                    CHECK_MSG(t.p[k] >= 110 && t.p[k] <= 130, "%s scale byte %u", key, t.p[k]);
            if (!strcmp(t.dtype, "F8_E4M3"))
                for (size_t k = 0; k < t.n; k++)
                    CHECK_MSG((t.p[k] & 0x7F) != 0x7F, "%s holds an e4m3 NaN", key);
        }
        st_close(&f);
    }
}
