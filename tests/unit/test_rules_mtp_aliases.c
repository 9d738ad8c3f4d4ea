/* mtp-aliases on artifacts made from fixtures/dsv4-tiny: the aliases mtp.N.head.weight and
 * mtp.N.emb.tok_emb.weight (failure mode 6) missing, made from the wrong tensor, in another dtype
 * (equal after the cast, or not), of the wrong shape, left out on purpose by dsv4-quant's recipe,
 * and for a second MTP block the config declares. */
#include "harness.h"

#include <string.h>

#include "test_rulesa_util.h"

static void drop_aliases(ra_art *a)
{
    ra_drop(a, "mtp.0.head.weight");
    ra_drop(a, "mtp.0.emb.tok_emb.weight");
}

static void alias_from_head(ra_art *a)
{
    ra_tensor *h = ra_find(a, "head.weight");
    ra_put(a, "mtp.0.emb.tok_emb.weight", h->dtype, h->ndim, h->shape, h->data);
}

static void alias_f32(ra_art *a) { ra_cast(a, "mtp.0.head.weight", DSV4_F32); }

static void alias_f32_changed(ra_art *a)
{
    ra_cast(a, "mtp.0.head.weight", DSV4_F32);
    float x = 1234.5f;
    memcpy(ra_find(a, "mtp.0.head.weight")->data + 4 * 10, &x, 4);
}

static void alias_wrong_shape(ra_art *a)
{
    int64_t s[2] = {1024, 128};
    ra_put(a, "mtp.0.head.weight", DSV4_BF16, 2, s, ra_find(a, "head.weight")->data);
}

TEST(rules_mtp_aliases)
{
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, ra_edited("recipes/w4a16-rtn.yaml", drop_aliases), NULL, "mtp-aliases") == 0);
    CHECK(ra_status_is(&v, "mtp-aliases", DSV4_RS_FAIL));
    CHECK(ra_evidence(&v, "mtp-aliases", "mtp.0.head.weight: missing", "failure mode 6", NULL));
    CHECK(ra_evidence(&v, "mtp-aliases", "mtp.0.emb.tok_emb.weight: missing", "embedding", NULL));
    const dsv4_fix_op *o = ra_op(&v, DSV4_FIX_PUT, "mtp.0.emb.tok_emb.weight", "mtp-aliases");
    CHECK(o && o->produce == DSV4_PRODUCE_COPY && o->from == dsv4_side_find(&v.art, "embed.weight")->t &&
          o->dtype == DSV4_BF16 && o->near && !strncmp(o->near, "mtp.0.", 6));
    CHECK_EQ_INT(v.fixes.n, 2);
    dsv4_vctx_close(&v);

    REQUIRE(ra_verify(&v, ra_edited("recipes/w4a16-rtn.yaml", alias_from_head), NULL, "mtp-aliases") == 0);
    CHECK(ra_evidence(&v, "mtp-aliases", "mtp.0.emb.tok_emb.weight: BF16 [1024, 256] differs from embed.weight", NULL));
    o = ra_op(&v, DSV4_FIX_PUT, "mtp.0.emb.tok_emb.weight", "mtp-aliases");
    CHECK(o && o->from == dsv4_side_find(&v.art, "embed.weight")->t && !o->near);
    CHECK_EQ_INT(v.fixes.n, 1);
    dsv4_vctx_close(&v);

    /* D's F32 alias of a BF16 head: equal after the cast, so fine; a changed value is not. */
    REQUIRE(ra_verify(&v, ra_edited("recipes/w4a16-rtn.yaml", alias_f32), NULL, "mtp-aliases") == 0);
    CHECK(ra_status_is(&v, "mtp-aliases", DSV4_RS_PASS));
    dsv4_vctx_close(&v);
    REQUIRE(ra_verify(&v, ra_edited("recipes/w4a16-rtn.yaml", alias_f32_changed), NULL, "mtp-aliases") == 0);
    CHECK(ra_evidence(&v, "mtp-aliases", "mtp.0.head.weight: F32 [1024, 256] differs from head.weight (BF16 [1024, "
                      "256], cast to the alias's dtype) in 1 of 262144 values (first at index 10: 1234.5", NULL));
    o = ra_op(&v, DSV4_FIX_PUT, "mtp.0.head.weight", NULL);
    CHECK(o && o->dtype == DSV4_BF16);
    dsv4_vctx_close(&v);

    REQUIRE(ra_verify(&v, ra_edited("recipes/w4a16-rtn.yaml", alias_wrong_shape), NULL, "mtp-aliases") == 0);
    CHECK(ra_evidence(&v, "mtp-aliases", "mtp.0.head.weight: BF16 [1024, 128], but head.weight is BF16 [1024, 256]",
                      NULL));
    dsv4_vctx_close(&v);
}

/* Left out on purpose: dsv4_provenance.mtp_aliases false, or a dsv4-quant recipe that cannot be
 * read back (then the missing aliases are reported, saying so). */
static void aliases_off_flag(ra_art *a)
{
    drop_aliases(a);
    json_object_set_new(json_object_get(a->config, "dsv4_provenance"), "mtp_aliases", json_false());
}

static void aliases_recipe_gone(ra_art *a)
{
    drop_aliases(a);
    /* an artifact from before dsv4-quant recorded mtp_aliases: the rule reads the recipe back */
    json_object_del(json_object_get(a->config, "dsv4_provenance"), "mtp_aliases");
    json_object_set_new(json_object_get(a->config, "dsv4_provenance"), "recipe", json_string("/nonexistent/r.yaml"));
}

TEST(rules_mtp_aliases_omitted)
{
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, ra_edited("recipes/w4a16-rtn.yaml", aliases_off_flag), NULL, "mtp-aliases") == 0);
    CHECK(ra_status_is(&v, "mtp-aliases", DSV4_RS_SKIP));
    CHECK_STR_CONTAINS(ra_result(&v, "mtp-aliases")->skip_reason, "dsv4_provenance.mtp_aliases is false");
    dsv4_vctx_close(&v);
    REQUIRE(ra_verify(&v, ra_edited("recipes/w4a16-rtn.yaml", aliases_recipe_gone), NULL, "mtp-aliases") == 0);
    CHECK(ra_status_is(&v, "mtp-aliases", DSV4_RS_FAIL));
    CHECK(ra_evidence(&v, "mtp-aliases", "mtp.0.head.weight: missing", "/nonexistent/r.yaml, which cannot be read",
                      NULL));
    dsv4_vctx_close(&v);
}

/* A config with two MTP blocks over an artifact (and a source) with one: the second block is
 * reported whole, and the source cannot provide it. */
static void two_blocks(ra_art *a)
{
    json_object_set_new(a->config, "num_nextn_predict_layers", json_integer(2));
    json_object_set_new(a->config, "compress_ratios", json_pack("[iiiiii]", 0, 4, 128, 4, 0, 0));
}

TEST(rules_mtp_complete_second_block_missing)
{
    dsv4_vctx v;
    REQUIRE(ra_verify(&v, ra_edited("recipes/w4a16-rtn.yaml", two_blocks), ra_source(), "mtp-complete,mtp-aliases") == 0);
    REQUIRE(v.model && v.model->n_mtp == 2);
    CHECK(ra_status_is(&v, "mtp-complete", DSV4_RS_FAIL));
    CHECK_EQ_INT(ra_result(&v, "mtp-complete")->n_found, 1);
    CHECK(ra_evidence(&v, "mtp-complete", "mtp.1.*: the whole MTP block 1 is missing; the source has no mtp.1.", NULL));
    CHECK(ra_evidence(&v, "mtp-aliases", "mtp.1.head.weight: missing", NULL));
    CHECK(ra_op(&v, DSV4_FIX_PUT, "mtp.1.head.weight", "mtp-aliases") != NULL);
    CHECK_EQ_INT(ra_n_ops(&v, "mtp-complete"), 0);
    dsv4_vctx_close(&v);
}
