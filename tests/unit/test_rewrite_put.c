/* PUT fix ops through the rewriter: each produce kind (COPY, BF16 from release FP8 blocks, exact
 * CAST, CT_DEQUANT) checked value by value against an independent computation, placement of new
 * tensors (`near`, and the alphabetically nearest tensor), manifest hashes carried over or
 * recomputed, and a shard's own header metadata kept. */
#include "harness.h"
#include "test_rewrite_util.h"
#include "test_writer_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "artifact/convert_job.h"
#include "formats/fp.h"
#include "io/atomic.h"
#include "io/manifest.h"
#include "io/st_write.h"

static const char *file_of(const dsv4_ckpt *c, const char *name)
{
    const dsv4_tensor *t = dsv4_ckpt_find(c, name);
    return t ? strrchr(dsv4_ckpt_file_of(c, t), '/') + 1 : "(absent)";
}

static uint16_t bf16_at(const dsv4_tensor *t, size_t i)
{
    uint16_t h;
    memcpy(&h, t->data + 2 * i, 2);
    return h;
}

TEST(rewrite_put_produces_every_kind)
{
    const char *dir = th_tmpdir();
    char *art = strdup(tw_join(dir, "art")), *out = strdup(tw_join(dir, "out"));
    REQUIRE(trw_make_artifact(art) == 0);
    dsv4_ckpt c;
    json_t *cfg;
    REQUIRE(trw_open(art, &c, &cfg) == 0);
    const dsv4_tensor *head = dsv4_ckpt_find(&c, "head.weight"), *wq = dsv4_ckpt_find(&c, "layers.0.attn.wq_a.weight"),
                      *wqs = dsv4_ckpt_find(&c, "layers.0.attn.wq_a.scale"), *norm = dsv4_ckpt_find(&c, "norm.weight"),
                      *wkv = dsv4_ckpt_find(&c, "layers.1.attn.wkv.weight"),
                      *wkvs = dsv4_ckpt_find(&c, "layers.1.attn.wkv.weight_scale");
    REQUIRE(head && wq && wqs && norm && wkv && wkvs);
    dsv4_fix_list l = {0};
    trw_put(&l, "mtp-aliases", "mtp.0.head.weight", DSV4_BF16, 2, (int64_t[]){256, 64}, DSV4_PRODUCE_COPY, head, NULL,
            NULL);
    trw_put(&l, "bf16-test", "layers.0.attn.wq_a.weight", DSV4_BF16, 2, (int64_t[]){256, 256}, DSV4_PRODUCE_BF16, wq,
            wqs, NULL);
    trw_drop(&l, "bf16-test", "layers.0.attn.wq_a.scale");
    trw_put(&l, "cast-test", "norm.weight", DSV4_BF16, 1, (int64_t[]){64}, DSV4_PRODUCE_CAST, norm, NULL, NULL);
    trw_put(&l, "dequant-test", "layers.1.attn.wkv.weight", DSV4_BF16, 2, (int64_t[]){128, 256},
            DSV4_PRODUCE_CT_DEQUANT, wkv, wkvs, NULL);
    trw_drop(&l, "dequant-test", "layers.1.attn.wkv.weight_scale");
    trw_put(&l, "near-test", "extra.bias", DSV4_F32, 1, (int64_t[]){16}, DSV4_PRODUCE_COPY,
            dsv4_ckpt_find(&c, "layers.0.ffn.gate.bias"), NULL, "layers.1.ffn.gate.bias");
    dsv4_rewrite_opts o = {.out = out, .quiet = 1};
    dsv4_rewrite_stats st;
    dsv4_err e;
    CHECK_MSG(dsv4_rewrite(&c, cfg, &l, &o, &st, &e) == 0, "%s", e.msg);
    CHECK_EQ_INT(st.put, 5);
    CHECK_EQ_INT(st.dropped, 2);
    CHECK_EQ_INT(st.shards_rewritten, 3);
    CHECK_MSG(tw_verify_dir(out, &e) == 0, "%s", e.msg);
    dsv4_ckpt r;
    json_t *rcfg;
    REQUIRE(trw_open(out, &r, &rcfg) == 0);
    /* placement: nearest name (mtp.0.head.weight sorts beside mtp.0.norm.weight), and `near` */
    CHECK(!strcmp(file_of(&r, "mtp.0.head.weight"), TRW_SHARD3));
    CHECK(!strcmp(file_of(&r, "extra.bias"), TRW_SHARD2));
    const dsv4_tensor *t = dsv4_ckpt_find(&r, "mtp.0.head.weight");
    CHECK(t && t->dtype == DSV4_BF16 && !memcmp(t->data, head->data, dsv4_tensor_nbytes(head)));
    /* BF16 of release FP8: e4m3 code x 2^(e8m0 - 127) per 128x128 block */
    t = dsv4_ckpt_find(&r, "layers.0.attn.wq_a.weight");
    REQUIRE(t && t->dtype == DSV4_BF16 && t->shape[0] == 256 && t->shape[1] == 256);
    int bad = 0;
    for (int i = 0; i < 256; i++)
        for (int j = 0; j < 256; j++) {
            float v = dsv4_e4m3_to_f32(wq->data[i * 256 + j]) * ldexpf(1.0f, wqs->data[(i / 128) * 2 + j / 128] - 127);
            bad += bf16_at(t, (size_t)(i * 256 + j)) != dsv4_f32_to_bf16(v);
        }
    CHECK_EQ_INT(bad, 0);
    CHECK(dsv4_ckpt_find(&r, "layers.0.attn.wq_a.scale") == NULL);
    /* exact cast F32 -> BF16 */
    t = dsv4_ckpt_find(&r, "norm.weight");
    REQUIRE(t && t->dtype == DSV4_BF16);
    for (int i = 0; i < 64; i++) {
        float f;
        memcpy(&f, norm->data + 4 * i, 4);
        bad += dsv4_bf16_to_f32(bf16_at(t, (size_t)i)) != f;
    }
    CHECK_EQ_INT(bad, 0);
    /* compressed-tensors FP8 block dequant: bf16(e4m3 * F32 scale of the column block) */
    t = dsv4_ckpt_find(&r, "layers.1.attn.wkv.weight");
    REQUIRE(t && t->dtype == DSV4_BF16 && t->shape[0] == 128 && t->shape[1] == 256);
    for (int i = 0; i < 128; i++)
        for (int j = 0; j < 256; j++) {
            float s;
            memcpy(&s, wkvs->data + 4 * (j / 128), 4);
            bad += bf16_at(t, (size_t)(i * 256 + j)) != dsv4_f32_to_bf16(dsv4_e4m3_to_f32(wkv->data[i * 256 + j]) * s);
        }
    CHECK_EQ_INT(bad, 0);
    json_decref(rcfg);
    dsv4_ckpt_close(&r);
    dsv4_fix_list_free(&l);
    json_decref(cfg);
    dsv4_ckpt_close(&c);
    free(art), free(out);
}

/* The fixture's own FP4 experts and FP8 attention: BF16 produce equals dsv4-quant's BF16 job. */
TEST(rewrite_put_bf16_matches_the_convert_job_on_the_fixture)
{
    const char *dir = th_tmpdir();
    char *out = strdup(tw_join(dir, "out")), *art = strdup(tw_join(dir, "art"));
    REQUIRE(trw_make_artifact(art) == 0);
    dsv4_ckpt src, c;
    json_t *cfg;
    dsv4_err e;
    REQUIRE(dsv4_ckpt_open(th_path("fixtures/dsv4-tiny"), 0, &src, &e) == 0);
    REQUIRE(trw_open(art, &c, &cfg) == 0);
    const dsv4_tensor *w = dsv4_ckpt_find(&src, "layers.3.ffn.experts.15.w2.weight"),
                      *s = dsv4_ckpt_find(&src, "layers.3.ffn.experts.15.w2.scale");
    REQUIRE(w && s && w->dtype == DSV4_I8);
    int64_t shape[2] = {w->shape[0], 2 * w->shape[1]};
    dsv4_fix_list l = {0};
    trw_put(&l, "mtp-test", "mtp.0.ffn.experts.15.w2.weight", DSV4_BF16, 2, shape, DSV4_PRODUCE_BF16, w, s, NULL);
    dsv4_rewrite_opts o = {.out = out, .quiet = 1};
    dsv4_rewrite_stats st;
    CHECK_MSG(dsv4_rewrite(&c, cfg, &l, &o, &st, &e) == 0, "%s", e.msg);
    dsv4_ckpt r;
    json_t *rcfg;
    REQUIRE(trw_open(out, &r, &rcfg) == 0);
    uint16_t *want = malloc((size_t)(shape[0] * shape[1]) * 2);
    REQUIRE(dsv4_source_bf16(w, s, want, &e) == 0);
    const dsv4_tensor *t = dsv4_ckpt_find(&r, "mtp.0.ffn.experts.15.w2.weight");
    CHECK(t && dsv4_tensor_nbytes(t) == (uint64_t)(shape[0] * shape[1]) * 2 &&
          !memcmp(t->data, want, dsv4_tensor_nbytes(t)));
    free(want);
    json_decref(rcfg);
    dsv4_ckpt_close(&r);
    dsv4_fix_list_free(&l);
    json_decref(cfg);
    dsv4_ckpt_close(&c);
    dsv4_ckpt_close(&src);
    free(art), free(out);
}

/* Unchanged tensors keep the old manifest's hash (here a deliberately wrong one, to tell a carried
 * hash from a recomputed one); a manifest that does not parse is rebuilt from the bytes. */
TEST(rewrite_manifest_hashes_carried_or_recomputed)
{
    const char *dir = th_tmpdir();
    char *art = strdup(tw_join(dir, "art")), *out = strdup(tw_join(dir, "out")), *out2 = strdup(tw_join(dir, "out2"));
    REQUIRE(trw_make_artifact(art) == 0);
    char *m;
    size_t n;
    dsv4_err e;
    REQUIRE(dsv4_read_file(tw_join(art, "dsv4-manifest.json"), 1 << 20, &m, &n, &e) == 0);
    char *at = strstr(m, "\"embed.weight\"");
    REQUIRE(at && (at = strstr(at, "\"xxh3_128\": \"")));
    at += strlen("\"xxh3_128\": \"");
    memcpy(at, "00000000000000000000000000000000", 32);
    REQUIRE(dsv4_atomic_replace(tw_join(art, "dsv4-manifest.json"), m, n, &e) == 0);
    free(m);
    dsv4_ckpt c;
    json_t *cfg;
    REQUIRE(trw_open(art, &c, &cfg) == 0);
    dsv4_fix_list l = {0};
    trw_rename(&l, "names-test", "embed.weight", "model.embed.weight"); /* shard 1, header only */
    dsv4_rewrite_opts o = {.out = out, .quiet = 1};
    dsv4_rewrite_stats st;
    CHECK_MSG(dsv4_rewrite(&c, cfg, &l, &o, &st, &e) == 0, "%s", e.msg);
    CHECK_EQ_INT(st.shards_header_only, 1);
    dsv4_manifest mf;
    REQUIRE(dsv4_manifest_load(out, &mf, &e) == 0);
    int found = 0;
    for (size_t i = 0; i < mf.n; i++)
        if (!strcmp(mf.v[i].name, "model.embed.weight"))
            found = mf.v[i].hash.hi == 0 && mf.v[i].hash.lo == 0;
    CHECK_MSG(found, "the renamed tensor's hash was not carried over");
    dsv4_manifest_free(&mf);
    CHECK(tw_verify_dir(out, &e) != 0); /* the carried (wrong) hash still shows */
    dsv4_ckpt_close(&c);
    json_decref(cfg);
    /* garbage manifest: rebuilt */
    REQUIRE(dsv4_atomic_replace(tw_join(art, "dsv4-manifest.json"), "{", 1, &e) == 0);
    REQUIRE(trw_open(art, &c, &cfg) == 0);
    o.out = out2;
    CHECK_MSG(dsv4_rewrite(&c, cfg, &l, &o, &st, &e) == 0, "%s", e.msg);
    CHECK_MSG(tw_verify_dir(out2, &e) == 0, "%s", e.msg);
    dsv4_fix_list_free(&l);
    json_decref(cfg);
    dsv4_ckpt_close(&c);
    free(art), free(out), free(out2);
}

/* A lone model.safetensors (no index, no config) whose header carries extra metadata. */
TEST(rewrite_keeps_shard_metadata_and_single_file_layout)
{
    const char *dir = th_tmpdir();
    char *art = strdup(tw_join(dir, "art")), *out = strdup(tw_join(dir, "out"));
    dsv4_st_plan p;
    dsv4_err e;
    dsv4_st_plan_init(&p, 0, 0);
    char *keys[] = {"format", "conversion_version"}, *vals[] = {"pt", "7"};
    REQUIRE(dsv4_st_plan_set_metadata(&p, 2, keys, vals, &e) == 0);
    dsv4_st_plan_add(&p, "a.weight", DSV4_F32, 1, (int64_t[]){8}, &e);
    dsv4_st_plan_add(&p, "b.weight", DSV4_BF16, 1, (int64_t[]){8}, &e);
    REQUIRE(dsv4_st_plan_finish(&p, &e) == 0);
    uint8_t a[32], b[16];
    tw_pattern(a, 32, 1), tw_pattern(b, 16, 2);
    const void *data[2] = {a, b};
    REQUIRE(dsv4_st_write_all(&p, art, data, &e) == 0);
    dsv4_st_plan_free(&p);
    dsv4_ckpt c;
    REQUIRE(dsv4_ckpt_open(art, 0, &c, &e) == 0);
    dsv4_fix_list l = {0};
    trw_rename(&l, "names-test", "b.weight", "c.weight");
    dsv4_rewrite_opts o = {.out = out, .quiet = 1};
    dsv4_rewrite_stats st;
    CHECK_MSG(dsv4_rewrite(&c, NULL, &l, &o, &st, &e) == 0, "%s", e.msg);
    CHECK_EQ_INT(st.shards_header_only, 1);
    CHECK(!st.index_rewritten && st.manifest_rewritten && !st.config_rewritten);
    char buf[1024];
    CHECK_MSG(!strcmp(trw_list(out, buf, sizeof buf), "dsv4-manifest.json model.safetensors"), "%s", buf);
    CHECK_MSG(tw_verify_dir(out, &e) == 0, "%s", e.msg);
    dsv4_st_file f;
    REQUIRE(dsv4_st_open(tw_join(out, "model.safetensors"), &f, &e) == 0);
    CHECK(f.n_meta == 2 && dsv4_st_meta(&f, "conversion_version") && !strcmp(dsv4_st_meta(&f, "conversion_version"), "7"));
    CHECK(dsv4_st_find(&f, "c.weight") && !memcmp(dsv4_st_find(&f, "c.weight")->data, b, 16));
    dsv4_st_close(&f);
    dsv4_fix_list_free(&l);
    dsv4_ckpt_close(&c);
    free(art), free(out);
}
