/* Ops the rewriter refuses before writing anything (code 2, nothing at the output, no temporary
 * folder left): unknown names, collisions, byte-count changes, contradictions, lossy casts,
 * mismatched produce shapes, CONFIG ops without a config, artifacts it cannot rewrite safely. */
#include "harness.h"
#include "test_rewrite_util.h"
#include "test_writer_util.h"

#include <stdlib.h>
#include <string.h>

#include "io/atomic.h"

typedef void (*build_fn)(dsv4_fix_list *l, const dsv4_ckpt *c);

static void unknown_rename(dsv4_fix_list *l, const dsv4_ckpt *c)
{
    (void)c;
    trw_rename(l, "r", "no.such.weight", "x.weight");
}
static void colliding_rename(dsv4_fix_list *l, const dsv4_ckpt *c)
{
    (void)c;
    trw_rename(l, "r", "head.weight", "embed.weight");
}
static void rename_after_rename(dsv4_fix_list *l, const dsv4_ckpt *c)
{
    (void)c;
    trw_rename(l, "r", "head.weight", "lm_head.weight");
    trw_rename(l, "r", "head.weight", "x.weight"); /* gone by now */
}
static void reshape_bytes(dsv4_fix_list *l, const dsv4_ckpt *c)
{
    (void)c;
    trw_reshape(l, "r", "norm.weight", DSV4_F32, 1, (int64_t[]){65});
}
static void drop_absent(dsv4_fix_list *l, const dsv4_ckpt *c)
{
    (void)c;
    trw_drop(l, "r", "layers.9.attn.wq_a.weight");
}
static void put_then_drop(dsv4_fix_list *l, const dsv4_ckpt *c)
{
    trw_put(l, "a", "x.weight", DSV4_BF16, 2, (int64_t[]){256, 64}, DSV4_PRODUCE_COPY, dsv4_ckpt_find(c, "head.weight"),
            NULL, NULL);
    trw_drop(l, "b", "x.weight");
}
static void two_puts(dsv4_fix_list *l, const dsv4_ckpt *c)
{
    trw_put(l, "a", "x.weight", DSV4_BF16, 2, (int64_t[]){256, 64}, DSV4_PRODUCE_COPY, dsv4_ckpt_find(c, "head.weight"),
            NULL, NULL);
    trw_put(l, "b", "x.weight", DSV4_BF16, 2, (int64_t[]){256, 64}, DSV4_PRODUCE_COPY, dsv4_ckpt_find(c, "embed.weight"),
            NULL, NULL);
}
static void reshape_then_put(dsv4_fix_list *l, const dsv4_ckpt *c)
{
    trw_reshape(l, "a", "norm.weight", DSV4_F32, 2, (int64_t[]){8, 8});
    trw_put(l, "b", "norm.weight", DSV4_BF16, 1, (int64_t[]){64}, DSV4_PRODUCE_CAST, dsv4_ckpt_find(c, "norm.weight"),
            NULL, NULL);
}
static void two_reshapes(dsv4_fix_list *l, const dsv4_ckpt *c)
{
    (void)c;
    trw_reshape(l, "a", "norm.weight", DSV4_F32, 2, (int64_t[]){8, 8});
    trw_reshape(l, "b", "norm.weight", DSV4_F32, 2, (int64_t[]){4, 16});
}
static void lossy_cast(dsv4_fix_list *l, const dsv4_ckpt *c)
{
    trw_put(l, "fp32-test", "layers.0.ffn.gate.bias", DSV4_BF16, 1, (int64_t[]){16}, DSV4_PRODUCE_CAST,
            dsv4_ckpt_find(c, "layers.0.ffn.gate.bias"), NULL, NULL);
}
static void copy_wrong_size(dsv4_fix_list *l, const dsv4_ckpt *c)
{
    trw_put(l, "a", "x.weight", DSV4_BF16, 2, (int64_t[]){256, 32}, DSV4_PRODUCE_COPY, dsv4_ckpt_find(c, "head.weight"),
            NULL, NULL);
}
static void bf16_wrong_shape(dsv4_fix_list *l, const dsv4_ckpt *c)
{
    trw_put(l, "a", "x.weight", DSV4_BF16, 2, (int64_t[]){128, 512}, DSV4_PRODUCE_BF16,
            dsv4_ckpt_find(c, "layers.0.attn.wq_a.weight"), dsv4_ckpt_find(c, "layers.0.attn.wq_a.scale"), NULL);
}
static void dequant_wrong_scale(dsv4_fix_list *l, const dsv4_ckpt *c)
{
    trw_put(l, "a", "x.weight", DSV4_BF16, 2, (int64_t[]){256, 256}, DSV4_PRODUCE_CT_DEQUANT,
            dsv4_ckpt_find(c, "layers.0.attn.wq_a.weight"), dsv4_ckpt_find(c, "layers.1.attn.wkv.weight_scale"), NULL);
}
static void near_absent(dsv4_fix_list *l, const dsv4_ckpt *c)
{
    trw_put(l, "a", "x.weight", DSV4_BF16, 2, (int64_t[]){256, 64}, DSV4_PRODUCE_COPY, dsv4_ckpt_find(c, "head.weight"),
            NULL, "no.such.tensor");
}
static void config_contradiction(dsv4_fix_list *l, const dsv4_ckpt *c)
{
    (void)c;
    trw_config(l, "a", "quantization_config.scale_fmt", json_string("ue8m0"));
    trw_config(l, "b", "quantization_config.scale_fmt", json_string("float"));
}
static void config_through_value(dsv4_fix_list *l, const dsv4_ckpt *c)
{
    (void)c;
    trw_config(l, "a", "model_type.x", json_true());
}

static const struct {
    const char *name;
    build_fn build;
    const char *msg;
} cases[] = {
    {"unknown rename", unknown_rename, "no tensor is named 'no.such.weight'"},
    {"colliding rename", colliding_rename, "a tensor named 'embed.weight' exists already"},
    {"rename of a name gone", rename_after_rename, "no tensor is named 'head.weight' (after the ops before it)"},
    {"reshape bytes", reshape_bytes, "is 260 bytes, the tensor (F32 [64]) holds 256"},
    {"drop absent", drop_absent, "drop 'layers.9.attn.wq_a.weight' [r]: no such tensor"},
    {"put then drop", put_then_drop, "contradicts the put of the same tensor [a]"},
    {"two puts", two_puts, "put 'x.weight' [b]: contradicts an earlier put of the same tensor [a]"},
    {"reshape then put", reshape_then_put, "contradicts the reshape of the same tensor [a]"},
    {"two reshapes", two_reshapes, "contradicts an earlier reshape of it [a]"},
    {"lossy cast", lossy_cast, "'layers.0.ffn.gate.bias' element 0 (1.00000012) does not survive a cast from F32 to BF16"},
    {"copy of the wrong size", copy_wrong_size, "cannot be declared BF16 [256, 32]"},
    {"bf16 shape", bf16_wrong_shape, "declares BF16 [128, 512], but bf16 of 'layers.0.attn.wq_a.weight' gives BF16 [256, 256]"},
    {"dequant scale", dequant_wrong_scale, "expected one BF16/F32/F16/F8_E8M0 value per 128x128 block"},
    {"near absent", near_absent, "it should go beside 'no.such.tensor'"},
    {"config contradiction", config_contradiction, "contradicts an earlier change of the same key [a]"},
    {"config through a value", config_through_value, "config.json's 'model_type' is not an object"},
};

TEST(rewrite_refuses_bad_ops_before_writing)
{
    const char *dir = th_tmpdir();
    char *art = strdup(tw_join(dir, "art")), *out = strdup(tw_join(dir, "out"));
    REQUIRE(trw_make_artifact(art) == 0);
    dsv4_ckpt c;
    json_t *cfg;
    REQUIRE(trw_open(art, &c, &cfg) == 0);
    char before[4096], now[4096];
    trw_list(art, before, sizeof before);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        for (int in_place = 0; in_place < 2; in_place++) {
            dsv4_fix_list l = {0};
            cases[k].build(&l, &c);
            dsv4_rewrite_opts o = {.out = in_place ? NULL : out, .quiet = 1};
            dsv4_rewrite_stats st;
            dsv4_err e = {{0}, 0};
            int rc = dsv4_rewrite(&c, cfg, &l, &o, &st, &e);
            CHECK_MSG(rc == -1 && e.code == DSV4_EXIT_BADINPUT, "%s: rc %d code %d (%s)", cases[k].name, rc, e.code,
                      e.msg);
            CHECK_MSG(strstr(e.msg, cases[k].msg) != NULL, "%s: expected \"%s\" in \"%s\"", cases[k].name,
                      cases[k].msg, e.msg);
            CHECK_MSG(!strcmp(trw_list(dir, now, sizeof now), "art"), "%s: left %s", cases[k].name, now);
            CHECK_MSG(!strcmp(trw_list(art, now, sizeof now), before), "%s: the artifact changed", cases[k].name);
            dsv4_fix_list_free(&l);
        }
    }
    /* CONFIG without a config.json */
    dsv4_fix_list l = {0};
    trw_config(&l, "a", "x", json_true());
    dsv4_rewrite_opts o = {.out = out, .quiet = 1};
    dsv4_rewrite_stats st;
    dsv4_err e;
    CHECK(dsv4_rewrite(&c, NULL, &l, &o, &st, &e) == -1 && e.code == DSV4_EXIT_BADINPUT);
    CHECK_STR_CONTAINS(e.msg, "no readable config.json");
    dsv4_fix_list_free(&l);
    /* identical duplicates are not contradictions */
    trw_rename(&l, "a", "norm.weight", "norm.weight");
    trw_reshape(&l, "a", "norm.weight", DSV4_F32, 2, (int64_t[]){8, 8});
    trw_reshape(&l, "b", "norm.weight", DSV4_F32, 2, (int64_t[]){8, 8});
    o.dry_run = 1;
    CHECK_MSG(dsv4_rewrite(&c, cfg, &l, &o, &st, &e) == 0, "%s", e.msg);
    CHECK_EQ_INT(st.reshaped, 1);
    dsv4_fix_list_free(&l);
    /* an existing output folder */
    REQUIRE(dsv4_atomic_write(tw_join(dir, "out"), "x", 1, &e) == 0);
    trw_drop(&l, "a", "norm.weight");
    o.dry_run = 0;
    CHECK(dsv4_rewrite(&c, cfg, &l, &o, &st, &e) == -1 && e.code == DSV4_EXIT_BADINPUT);
    CHECK_STR_CONTAINS(e.msg, "already exists");
    dsv4_fix_list_free(&l);
    json_decref(cfg);
    dsv4_ckpt_close(&c);
    free(art), free(out);
}

/* A shard that does not parse (left out by a lenient open) or a tensor stored twice: refused. */
TEST(rewrite_refuses_artifacts_it_cannot_rewrite_safely)
{
    const char *dir = th_tmpdir();
    char *art = strdup(tw_join(dir, "art")), *out = strdup(tw_join(dir, "out"));
    REQUIRE(trw_make_artifact(art) == 0);
    dsv4_err e;
    REQUIRE(dsv4_atomic_replace(tw_join(art, TRW_SHARD2), "garbage!", 8, &e) == 0);
    dsv4_ckpt c;
    REQUIRE(dsv4_ckpt_open(art, DSV4_CKPT_LENIENT | DSV4_CKPT_SKIP_BAD, &c, &e) == 0);
    REQUIRE(c.n_bad_shards == 1);
    dsv4_fix_list l = {0};
    trw_rename(&l, "a", "norm.weight", "x.weight");
    dsv4_rewrite_opts o = {.out = out, .quiet = 1};
    dsv4_rewrite_stats st;
    CHECK(dsv4_rewrite(&c, NULL, &l, &o, &st, &e) == -1 && e.code == DSV4_EXIT_BADINPUT);
    CHECK_STR_CONTAINS(e.msg, TRW_SHARD2 ": this shard cannot be read");
    dsv4_ckpt_close(&c);
    dsv4_fix_list_free(&l);
    free(art), free(out);
}
