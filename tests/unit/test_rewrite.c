/* The rewriter (fixup/rewrite.h) on a synthetic three-shard artifact with hand-built fix ops:
 * which shards are linked, get a new header only, or are rewritten; that a rewritten shard is
 * byte-identical to the reference writer's (io/st_plan.h) for the same tensors; that the index,
 * manifest and config.json come out right; in-place, dry-run and empty-list behaviour. The PUT
 * kinds and the refusals have their own files (test_rewrite_put.c, test_rewrite_refuse.c). */
#include "harness.h"
#include "test_rewrite_util.h"
#include "test_writer_util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/atomic.h"
#include "io/st_write.h"

static ino_t inode(const char *path)
{
    struct stat st;
    return stat(path, &st) ? 0 : st.st_ino;
}

/* Writes the tensors of shard `shard` of `c` with the reference writer into ref_dir and compares
 * the file with the shard: 1 when identical. */
static int same_as_reference(const dsv4_ckpt *c, const char *shard, const char *ref_dir)
{
    const dsv4_st_file *f = NULL;
    for (size_t i = 0; i < c->n_files; i++)
        if (!strcmp(strrchr(c->files[i].path, '/') + 1, shard))
            f = &c->files[i];
    if (!f)
        return 0;
    dsv4_st_plan p;
    dsv4_err e;
    dsv4_st_plan_init(&p, 0, 0);
    const void **data = calloc(f->n + 1, sizeof *data);
    for (size_t k = 0; k < f->n; k++)
        dsv4_st_plan_add(&p, f->tensors[k].name, f->tensors[k].dtype, f->tensors[k].ndim, f->tensors[k].shape, &e);
    int ok = dsv4_st_plan_finish(&p, &e) == 0;
    for (size_t k = 0; ok && k < p.n; k++)
        data[k] = dsv4_st_find(f, p.tensors[k].name)->data;
    ok = ok && dsv4_st_write_all(&p, ref_dir, data, &e) == 0;
    if (!ok)
        th_fail(__FILE__, __LINE__, "reference write: %s", e.msg);
    ok = ok && tw_same_file(tw_join(ref_dir, "model.safetensors"), f->path);
    dsv4_rmtree(ref_dir);
    free(data);
    dsv4_st_plan_free(&p);
    return ok;
}

/* Every tensor of `after` named `new_name` holds the bytes `before` has under `old_name`. */
static int same_bytes(const dsv4_ckpt *before, const char *old_name, const dsv4_ckpt *after, const char *new_name)
{
    const dsv4_tensor *a = dsv4_ckpt_find(before, old_name), *b = dsv4_ckpt_find(after, new_name);
    return a && b && dsv4_tensor_nbytes(a) == dsv4_tensor_nbytes(b) && !memcmp(a->data, b->data, dsv4_tensor_nbytes(a));
}

TEST(rewrite_rename_keeping_layout_is_header_only)
{
    const char *dir = th_tmpdir();
    char *art = strdup(tw_join(dir, "art")), *out = strdup(tw_join(dir, "out"));
    REQUIRE(trw_make_artifact(art) == 0);
    dsv4_ckpt c;
    json_t *cfg;
    REQUIRE(trw_open(art, &c, &cfg) == 0);
    dsv4_fix_list l = {0};
    /* shard 3 holds norm.weight (F32) then head.weight, mtp.0.norm.weight (BF16, by name): the new
     * name sorts where the old one did */
    trw_rename(&l, "names-test", "mtp.0.norm.weight", "mtp.0.enorm.weight");
    dsv4_rewrite_opts o = {.out = out, .quiet = 1};
    dsv4_rewrite_stats st;
    dsv4_err e;
    CHECK_MSG(dsv4_rewrite(&c, cfg, &l, &o, &st, &e) == 0, "%s", e.msg);
    CHECK_EQ_INT(st.shards_linked, 2);
    CHECK_EQ_INT(st.shards_header_only, 1);
    CHECK_EQ_INT(st.shards_rewritten, 0);
    CHECK_EQ_INT(st.renamed, 1);
    CHECK(st.index_rewritten && st.manifest_rewritten && st.config_rewritten);
    CHECK_EQ_INT(inode(tw_join(art, TRW_SHARD1)), inode(tw_join(out, TRW_SHARD1)));
    CHECK_EQ_INT(inode(tw_join(art, "tokenizer.json")), inode(tw_join(out, "tokenizer.json")));
    CHECK(inode(tw_join(art, TRW_SHARD3)) != inode(tw_join(out, TRW_SHARD3)));
    CHECK_MSG(tw_verify_dir(out, &e) == 0, "%s", e.msg);
    dsv4_ckpt r;
    json_t *rcfg;
    REQUIRE(trw_open(out, &r, &rcfg) == 0);
    CHECK(same_bytes(&c, "mtp.0.norm.weight", &r, "mtp.0.enorm.weight"));
    CHECK(dsv4_ckpt_find(&r, "mtp.0.norm.weight") == NULL);
    CHECK(same_as_reference(&r, TRW_SHARD3, tw_join(dir, "ref")));
    /* the data section is the old one, byte for byte */
    const dsv4_st_file *o3 = &c.files[2], *n3 = &r.files[2];
    CHECK(o3->size - o3->header_len == n3->size - n3->header_len &&
          !memcmp(o3->map + 8 + o3->header_len, n3->map + 8 + n3->header_len, o3->size - 8 - o3->header_len));
    json_t *rec = json_array_get(json_object_get(rcfg, "dsv4_fixup"), 0);
    CHECK(rec && !strcmp(json_string_value(json_object_get(rec, "tool")), "dsv4-fixup"));
    CHECK(rec && !strcmp(json_string_value(json_array_get(json_object_get(rec, "rules"), 0)), "names-test"));
    json_decref(rcfg);
    dsv4_ckpt_close(&r);
    dsv4_fix_list_free(&l);
    json_decref(cfg);
    dsv4_ckpt_close(&c);
    free(art), free(out);
}

TEST(rewrite_rename_changing_layout_rewrites_like_the_reference_writer)
{
    const char *dir = th_tmpdir();
    char *art = strdup(tw_join(dir, "art")), *out = strdup(tw_join(dir, "out"));
    REQUIRE(trw_make_artifact(art) == 0);
    dsv4_ckpt c;
    json_t *cfg;
    REQUIRE(trw_open(art, &c, &cfg) == 0);
    dsv4_fix_list l = {0};
    trw_rename(&l, "names-test", "head.weight", "zz.head.weight"); /* now sorts after mtp.0.norm.weight */
    trw_reshape(&l, "shape-test", "layers.1.ffn.gate.bias", DSV4_F32, 2, (int64_t[]){4, 4});
    dsv4_rewrite_opts o = {.out = out, .quiet = 1, .threads = 2};
    dsv4_rewrite_stats st;
    dsv4_err e;
    CHECK_MSG(dsv4_rewrite(&c, cfg, &l, &o, &st, &e) == 0, "%s", e.msg);
    CHECK_EQ_INT(st.shards_linked, 1);
    CHECK_EQ_INT(st.shards_header_only, 1); /* the reshape keeps shard 2's offsets */
    CHECK_EQ_INT(st.shards_rewritten, 1);
    CHECK_EQ_INT(st.reshaped, 1);
    CHECK_MSG(tw_verify_dir(out, &e) == 0, "%s", e.msg);
    dsv4_ckpt r;
    json_t *rcfg;
    REQUIRE(trw_open(out, &r, &rcfg) == 0);
    CHECK(same_bytes(&c, "head.weight", &r, "zz.head.weight"));
    CHECK(same_bytes(&c, "norm.weight", &r, "norm.weight"));
    CHECK(same_bytes(&c, "layers.1.ffn.gate.bias", &r, "layers.1.ffn.gate.bias"));
    const dsv4_tensor *b = dsv4_ckpt_find(&r, "layers.1.ffn.gate.bias");
    CHECK(b && b->ndim == 2 && b->shape[0] == 4 && b->shape[1] == 4);
    CHECK(same_as_reference(&r, TRW_SHARD2, tw_join(dir, "ref2")));
    CHECK(same_as_reference(&r, TRW_SHARD3, tw_join(dir, "ref3")));
    json_decref(rcfg);
    dsv4_ckpt_close(&r);
    dsv4_fix_list_free(&l);
    json_decref(cfg);
    dsv4_ckpt_close(&c);
    free(art), free(out);
}

/* Renaming there and back gives the original files byte for byte: shards, index, manifest (only
 * config.json differs, by two provenance records). */
TEST(rewrite_there_and_back_is_byte_identical)
{
    const char *dir = th_tmpdir();
    char *art = strdup(tw_join(dir, "art")), *mid = strdup(tw_join(dir, "mid")), *out = strdup(tw_join(dir, "out"));
    REQUIRE(trw_make_artifact(art) == 0);
    static const char *pairs[][2] = {{"embed.weight", "model.embed_tokens.weight"},
                                     {"layers.1.ffn.gate.bias", "layers.1.ffn.gate.e_score_correction_bias"},
                                     {"head.weight", "zz.head.weight"}}; /* the last one reorders shard 3 */
    const char *from[2] = {art, mid}, *to[2] = {mid, out};
    for (int pass = 0; pass < 2; pass++) {
        dsv4_ckpt c;
        json_t *cfg;
        REQUIRE(trw_open(from[pass], &c, &cfg) == 0);
        dsv4_fix_list l = {0};
        for (int k = 0; k < 3; k++)
            trw_rename(&l, "names-test", pairs[k][pass], pairs[k][!pass]);
        dsv4_rewrite_opts o = {.out = to[pass], .quiet = 1};
        dsv4_rewrite_stats st;
        dsv4_err e;
        CHECK_MSG(dsv4_rewrite(&c, cfg, &l, &o, &st, &e) == 0, "%s", e.msg);
        CHECK_EQ_INT(st.shards_linked + st.shards_header_only + st.shards_rewritten, 3);
        CHECK_MSG(tw_verify_dir(to[pass], &e) == 0, "%s", e.msg);
        dsv4_fix_list_free(&l);
        json_decref(cfg);
        dsv4_ckpt_close(&c);
    }
    static const char *same[] = {TRW_SHARD1, TRW_SHARD2, TRW_SHARD3, "model.safetensors.index.json",
                                 "dsv4-manifest.json", "tokenizer.json"};
    for (size_t k = 0; k < sizeof same / sizeof same[0]; k++)
        CHECK_MSG(tw_same_file(tw_join(art, same[k]), tw_join(out, same[k])), "%s differs", same[k]);
    json_error_t je;
    json_t *cfg = json_load_file(tw_join(out, "config.json"), 0, &je);
    CHECK(cfg && json_array_size(json_object_get(cfg, "dsv4_fixup")) == 2);
    json_decref(cfg);
    free(art), free(mid), free(out);
}

TEST(rewrite_config_ops_and_provenance)
{
    const char *dir = th_tmpdir();
    char *art = strdup(tw_join(dir, "art")), *out = strdup(tw_join(dir, "out"));
    REQUIRE(trw_make_artifact(art) == 0);
    dsv4_ckpt c;
    json_t *cfg;
    REQUIRE(trw_open(art, &c, &cfg) == 0);
    dsv4_fix_list l = {0};
    trw_config(&l, "config-scale-fmt", "quantization_config.scale_fmt", json_string("ue8m0"));
    trw_config(&l, "config-keys", "hidden_size", NULL);
    trw_config(&l, "config-keys", "new.nested.key", json_integer(7));
    trw_config(&l, "config-scale-fmt", "quantization_config.scale_fmt", json_string("ue8m0")); /* duplicate */
    trw_config(&l, "config-keys", "absent.key", NULL); /* deleting what is not there */
    dsv4_rewrite_opts o = {.out = out, .quiet = 1};
    dsv4_rewrite_stats st;
    dsv4_err e;
    CHECK_MSG(dsv4_rewrite(&c, cfg, &l, &o, &st, &e) == 0, "%s", e.msg);
    CHECK_EQ_INT(st.shards_linked, 3);
    CHECK_EQ_INT(st.config_ops, 4);
    json_t *want = json_pack("{s:s,s:{s:s,s:s},s:{s:{s:i}},s:[{s:s,s:s,s:[s,s]}]}", "model_type", "deepseek_v4",
                             "quantization_config", "quant_method", "compressed-tensors", "scale_fmt", "ue8m0", "new",
                             "nested", "key", 7, "dsv4_fixup", "tool", "dsv4-fixup", "version", "0.1.0", "rules",
                             "config-scale-fmt", "config-keys");
    char *txt = json_dumps(want, JSON_INDENT(2)), *got;
    size_t n;
    REQUIRE(dsv4_read_file(tw_join(out, "config.json"), 1 << 20, &got, &n, &e) == 0);
    CHECK(n == strlen(txt) + 1 && !strncmp(got, txt, strlen(txt)) && got[n - 1] == '\n');
    if (strncmp(got, txt, strlen(txt)))
        printf("  got:\n%s\n  want:\n%s\n", got, txt);
    free(got), free(txt);
    json_decref(want);
    dsv4_fix_list_free(&l);
    json_decref(cfg);
    dsv4_ckpt_close(&c);
    free(art), free(out);
}

TEST(rewrite_in_place_matches_out_and_leaves_no_temporaries)
{
    const char *dir = th_tmpdir();
    char *a1 = strdup(tw_join(dir, "a1")), *a2 = strdup(tw_join(dir, "a2")), *out = strdup(tw_join(dir, "out"));
    REQUIRE(trw_make_artifact(a1) == 0);
    REQUIRE(trw_make_artifact(a2) == 0);
    for (int in_place = 0; in_place < 2; in_place++) {
        dsv4_ckpt c;
        json_t *cfg;
        REQUIRE(trw_open(in_place ? a2 : a1, &c, &cfg) == 0);
        dsv4_fix_list l = {0};
        trw_rename(&l, "names-test", "layers.0.attn.wq_a.scale", "layers.0.attn.wq_a.weight_scale_inv");
        trw_put(&l, "mtp-test", "mtp.0.head.weight", DSV4_BF16, 2, (int64_t[]){256, 64}, DSV4_PRODUCE_COPY,
                dsv4_ckpt_find(&c, "head.weight"), NULL, NULL);
        trw_config(&l, "config-test", "quantization_config.scale_fmt", json_string("ue8m0"));
        dsv4_rewrite_opts o = {.out = in_place ? NULL : out, .quiet = 1};
        dsv4_rewrite_stats st;
        dsv4_err e;
        CHECK_MSG(dsv4_rewrite(&c, cfg, &l, &o, &st, &e) == 0, "%s", e.msg);
        CHECK_EQ_INT(st.shards_linked, 1);
        CHECK_EQ_INT(st.shards_header_only + st.shards_rewritten, 2);
        dsv4_fix_list_free(&l);
        json_decref(cfg);
        dsv4_ckpt_close(&c);
    }
    CHECK(trw_same_tree(out, a2));
    char buf[4096];
    CHECK_MSG(!strcmp(trw_list(dir, buf, sizeof buf), "a1 a2 out"), "left in %s: %s", dir, buf);
    dsv4_err e;
    CHECK_MSG(tw_verify_dir(a2, &e) == 0, "%s", e.msg);
    free(a1), free(a2), free(out);
}

TEST(rewrite_dry_run_and_empty_list_write_nothing)
{
    const char *dir = th_tmpdir();
    char *art = strdup(tw_join(dir, "art")), *out = strdup(tw_join(dir, "out"));
    REQUIRE(trw_make_artifact(art) == 0);
    dsv4_ckpt c;
    json_t *cfg;
    REQUIRE(trw_open(art, &c, &cfg) == 0);
    char before[4096], after[4096];
    trw_list(art, before, sizeof before);
    dsv4_fix_list l = {0};
    dsv4_rewrite_opts o = {.out = out, .quiet = 1};
    dsv4_rewrite_stats st;
    dsv4_err e;
    CHECK(dsv4_rewrite(&c, cfg, &l, &o, &st, &e) == 0);
    CHECK_EQ_INT(st.shards_linked + st.shards_header_only + st.shards_rewritten, 0);
    trw_drop(&l, "drop-test", "layers.0.ffn.gate.bias");
    trw_rename(&l, "names-test", "head.weight", "lm_head.weight");
    o.dry_run = 1;
    CHECK_MSG(dsv4_rewrite(&c, cfg, &l, &o, &st, &e) == 0, "%s", e.msg);
    CHECK_EQ_INT(st.dropped, 1);
    CHECK_EQ_INT(st.renamed, 1);
    CHECK_EQ_INT(st.shards_rewritten, 1);   /* shard 1 loses a tensor */
    CHECK_EQ_INT(st.shards_header_only, 1); /* lm_head.weight sorts where head.weight did */
    CHECK_EQ_INT(st.shards_linked, 1);
    o.out = NULL; /* in place, dry */
    CHECK_MSG(dsv4_rewrite(&c, cfg, &l, &o, &st, &e) == 0, "%s", e.msg);
    CHECK(!strcmp(before, trw_list(art, after, sizeof after)));
    CHECK_MSG(!strcmp(trw_list(dir, after, sizeof after), "art"), "left: %s", after);
    dsv4_fix_list_free(&l);
    json_decref(cfg);
    dsv4_ckpt_close(&c);
    free(art), free(out);
}

TEST(rewrite_drop_of_every_tensor_removes_the_shard)
{
    const char *dir = th_tmpdir();
    char *art = strdup(tw_join(dir, "art")), *out = strdup(tw_join(dir, "out"));
    REQUIRE(trw_make_artifact(art) == 0);
    dsv4_ckpt c;
    json_t *cfg;
    REQUIRE(trw_open(art, &c, &cfg) == 0);
    dsv4_fix_list l = {0};
    trw_drop(&l, "drop-test", "head.weight");
    trw_drop(&l, "drop-test", "mtp.0.norm.weight");
    trw_drop(&l, "drop-test", "norm.weight");
    trw_drop(&l, "drop-test", "layers.1.attn.wkv.weight_scale"); /* the first bytes of shard 2 */
    dsv4_rewrite_opts o = {.out = out, .quiet = 1};
    dsv4_rewrite_stats st;
    dsv4_err e;
    CHECK_MSG(dsv4_rewrite(&c, cfg, &l, &o, &st, &e) == 0, "%s", e.msg);
    CHECK_EQ_INT(st.dropped, 4);
    CHECK_EQ_INT(st.shards_rewritten, 1); /* shard 2 (its data section shrinks); shard 3 is gone */
    CHECK_MSG(tw_verify_dir(out, &e) == 0, "%s", e.msg);
    struct stat sb;
    CHECK(stat(tw_join(out, TRW_SHARD3), &sb) != 0);
    dsv4_ckpt r;
    json_t *rcfg;
    REQUIRE(trw_open(out, &r, &rcfg) == 0);
    CHECK_EQ_INT(r.n, c.n - 4);
    CHECK(same_as_reference(&r, TRW_SHARD2, tw_join(dir, "ref")));
    json_decref(rcfg);
    dsv4_ckpt_close(&r);
    dsv4_fix_list_free(&l);
    json_decref(cfg);
    dsv4_ckpt_close(&c);
    free(art), free(out);
}
