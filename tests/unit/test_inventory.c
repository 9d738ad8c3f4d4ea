/* The tensor inventory: exact counts and byte totals of the Flash and Pro releases, spot shapes from
 * the spec tables, and an exact match with the tiny fixture's files. */
#include "harness.h"
#include "io/checkpoint.h"
#include "model/inventory.h"

#include <string.h>

#define TINY "fixtures/dsv4-tiny/config.json"
#define FLASH "fixtures/configs/deepseek-v4-flash.config.json"
#define PRO "fixtures/configs/deepseek-v4-pro.config.json"

/* From test_config_util.c. */
const char *tcfg_patch(const char *rel, const char *patch, dsv4_config *c);
const char *tcfg_transformers(const char *rel, const char *patch, dsv4_config *c);

static int build(const char *rel, const char *patch, dsv4_inventory *inv)
{
    dsv4_config c;
    dsv4_err e;
    const char *m = tcfg_patch(rel, patch, &c);
    if (*m) {
        th_fail(__FILE__, __LINE__, "%s", m);
        return -1;
    }
    if (dsv4_inventory_build(&c, inv, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        return -1;
    }
    if (dsv4_inventory_count(&c) != inv->n)
        th_fail(__FILE__, __LINE__, "count %zu != built %zu", dsv4_inventory_count(&c), inv->n);
    return 0;
}

static void check_shape(const dsv4_inventory *inv, const char *name, dsv4_dtype dt, int64_t d0, int64_t d1)
{
    const dsv4_inv_tensor *t = dsv4_inventory_find(inv, name);
    if (!t) {
        th_fail(__FILE__, __LINE__, "%s missing", name);
        return;
    }
    int ndim = d1 ? 2 : 1;
    if (t->dtype != dt || t->ndim != ndim || t->shape[0] != d0 || (ndim == 2 && t->shape[1] != d1))
        th_fail(__FILE__, __LINE__, "%s: %s [%lld, %lld] (ndim %d), expected %s [%lld, %lld]", name,
                dsv4_dtype_name(t->dtype), (long long)t->shape[0], (long long)t->shape[1], t->ndim,
                dsv4_dtype_name(dt), (long long)d0, (long long)d1);
}

TEST(inventory_flash_counts_and_bytes)
{
    dsv4_inventory inv;
    REQUIRE(build(FLASH, NULL, &inv) == 0);
    CHECK_EQ_INT(inv.n, 69187);
    CHECK_EQ_INT(inv.total_bytes, 159609485896ULL);
    size_t f32 = 0, fp32_set = 0, fp4 = 0, fp8 = 0, scales = 0, mtp = 0, bf16 = 0, i64 = 0, e8m0 = 0;
    for (size_t i = 0; i < inv.n; i++) {
        const dsv4_inv_tensor *t = &inv.t[i];
        f32 += t->dtype == DSV4_F32;
        fp32_set += t->is_fp32_set;
        CHECK_EQ_INT(t->is_fp32_set, t->dtype == DSV4_F32);
        fp4 += t->store == DSV4_STORE_FP4_PACKED;
        fp8 += t->store == DSV4_STORE_FP8_BLOCK;
        scales += t->role == DSV4_ROLE_SCALE;
        e8m0 += t->dtype == DSV4_F8_E8M0;
        mtp += t->is_mtp;
        bf16 += t->dtype == DSV4_BF16;
        i64 += t->dtype == DSV4_I64;
        CHECK_EQ_INT(t->is_mtp, !strncmp(t->name, "mtp.", 4));
        if (t->pair >= 0)
            CHECK_EQ_INT(inv.t[t->pair].pair, (int64_t)i);
        CHECK(dsv4_inventory_find(&inv, t->name) == t);
    }
    CHECK_EQ_INT(f32, 417);
    CHECK_EQ_INT(fp32_set, 417);
    CHECK_EQ_INT(fp4, 33792);
    CHECK_EQ_INT(fp8, 375);
    CHECK_EQ_INT(scales, 34167);
    CHECK_EQ_INT(e8m0, 34167);
    CHECK_EQ_INT(mtp, 1575);
    CHECK_EQ_INT(bf16, 433);
    CHECK_EQ_INT(i64, 3);
    for (size_t i = 1; i < inv.n; i++)
        CHECK(strcmp(inv.t[inv.by_name[i - 1]].name, inv.t[inv.by_name[i]].name) < 0);
    CHECK(dsv4_inventory_find(&inv, "layers.43.attn.wq_a.weight") == NULL);
    CHECK(dsv4_inventory_find(&inv, "") == NULL);
    dsv4_inventory_free(&inv);
}

TEST(inventory_flash_spec_shapes)
{
    dsv4_inventory inv;
    REQUIRE(build(FLASH, NULL, &inv) == 0);
    check_shape(&inv, "embed.weight", DSV4_BF16, 129280, 4096);
    check_shape(&inv, "head.weight", DSV4_BF16, 129280, 4096);
    check_shape(&inv, "hc_head_fn", DSV4_F32, 4, 16384);
    check_shape(&inv, "hc_head_scale", DSV4_F32, 1, 0);
    check_shape(&inv, "layers.0.hc_attn_fn", DSV4_F32, 24, 16384);
    check_shape(&inv, "layers.0.hc_ffn_scale", DSV4_F32, 3, 0);
    check_shape(&inv, "layers.7.attn.attn_sink", DSV4_F32, 64, 0);
    check_shape(&inv, "layers.7.attn.wq_a.scale", DSV4_F8_E8M0, 8, 32);
    check_shape(&inv, "layers.7.attn.wq_b.weight", DSV4_F8_E4M3, 32768, 1024);
    check_shape(&inv, "layers.7.attn.wq_b.scale", DSV4_F8_E8M0, 256, 8);
    check_shape(&inv, "layers.7.attn.wkv.scale", DSV4_F8_E8M0, 4, 32);
    check_shape(&inv, "layers.7.attn.wo_a.weight", DSV4_F8_E4M3, 8192, 4096);
    check_shape(&inv, "layers.7.attn.wo_a.scale", DSV4_F8_E8M0, 64, 32);
    check_shape(&inv, "layers.7.attn.wo_b.scale", DSV4_F8_E8M0, 32, 64);
    check_shape(&inv, "layers.2.attn.compressor.wkv.weight", DSV4_BF16, 1024, 4096);
    check_shape(&inv, "layers.2.attn.compressor.ape", DSV4_F32, 4, 1024);
    check_shape(&inv, "layers.3.attn.compressor.wgate.weight", DSV4_BF16, 512, 4096);
    check_shape(&inv, "layers.3.attn.compressor.ape", DSV4_F32, 128, 512);
    check_shape(&inv, "layers.3.attn.compressor.norm.weight", DSV4_BF16, 512, 0);
    check_shape(&inv, "layers.4.attn.indexer.wq_b.scale", DSV4_F8_E8M0, 64, 8);
    check_shape(&inv, "layers.4.attn.indexer.weights_proj.weight", DSV4_BF16, 64, 4096);
    check_shape(&inv, "layers.4.attn.indexer.compressor.wkv.weight", DSV4_BF16, 256, 4096);
    check_shape(&inv, "layers.4.attn.indexer.compressor.ape", DSV4_F32, 4, 256);
    check_shape(&inv, "layers.4.attn.indexer.compressor.norm.weight", DSV4_BF16, 128, 0);
    check_shape(&inv, "layers.2.ffn.gate.tid2eid", DSV4_I64, 129280, 6);
    check_shape(&inv, "layers.3.ffn.gate.bias", DSV4_F32, 256, 0);
    check_shape(&inv, "layers.3.ffn.gate.weight", DSV4_BF16, 256, 4096);
    check_shape(&inv, "layers.9.ffn.shared_experts.w2.scale", DSV4_F8_E8M0, 32, 16);
    check_shape(&inv, "layers.9.ffn.experts.255.w1.weight", DSV4_I8, 2048, 2048);
    check_shape(&inv, "layers.9.ffn.experts.255.w1.scale", DSV4_F8_E8M0, 2048, 128);
    check_shape(&inv, "layers.9.ffn.experts.0.w2.weight", DSV4_I8, 4096, 1024);
    check_shape(&inv, "layers.9.ffn.experts.0.w2.scale", DSV4_F8_E8M0, 4096, 64);
    check_shape(&inv, "mtp.0.e_proj.scale", DSV4_F8_E8M0, 32, 32);
    check_shape(&inv, "mtp.0.hc_head_fn", DSV4_F32, 4, 16384);
    check_shape(&inv, "mtp.0.ffn.gate.bias", DSV4_F32, 256, 0);
    CHECK(!dsv4_inventory_find(&inv, "layers.0.attn.compressor.wkv.weight"));
    CHECK(!dsv4_inventory_find(&inv, "layers.3.attn.indexer.wq_b.weight"));
    CHECK(!dsv4_inventory_find(&inv, "layers.3.ffn.gate.tid2eid"));
    CHECK(!dsv4_inventory_find(&inv, "layers.2.ffn.gate.bias"));
    CHECK(!dsv4_inventory_find(&inv, "mtp.0.attn.compressor.ape"));
    CHECK(!dsv4_inventory_find(&inv, "mtp.0.head.weight"));
    const dsv4_inv_tensor *t = dsv4_inventory_find(&inv, "mtp.0.ffn.experts.7.w3.scale");
    REQUIRE(t);
    CHECK_EQ_INT(t->role, DSV4_ROLE_SCALE);
    CHECK_EQ_INT(t->scale_of, DSV4_ROLE_ROUTED_EXPERT);
    CHECK_EQ_INT(t->store, DSV4_STORE_SCALE_FP4);
    CHECK_EQ_INT(t->layer, 43);
    CHECK_EQ_INT(t->mtp, 0);
    CHECK_EQ_INT(t->expert, 7);
    CHECK(!strcmp(inv.t[t->pair].name, "mtp.0.ffn.experts.7.w3.weight"));
    t = dsv4_inventory_find(&inv, "layers.5.attn.indexer.compressor.ape");
    CHECK(t == NULL); /* layer 5 is HCA */
    t = dsv4_inventory_find(&inv, "hc_head_base");
    REQUIRE(t);
    CHECK(t->layer == -1 && t->mtp == -1 && t->expert == -1 && t->role == DSV4_ROLE_HC && t->is_fp32_set);
    dsv4_inventory_free(&inv);
}

TEST(inventory_pro_and_fp8_experts)
{
    dsv4_inventory inv;
    REQUIRE(build(PRO, NULL, &inv) == 0);
    CHECK_EQ_INT(inv.n, 145116);
    check_shape(&inv, "layers.0.attn.wo_a.weight", DSV4_F8_E4M3, 16384, 4096);
    check_shape(&inv, "layers.0.attn.wq_b.weight", DSV4_F8_E4M3, 65536, 1536);
    check_shape(&inv, "layers.0.attn.wq_a.weight", DSV4_F8_E4M3, 1536, 7168);
    check_shape(&inv, "layers.0.ffn.experts.383.w1.weight", DSV4_I8, 3072, 3584);
    check_shape(&inv, "layers.0.attn.compressor.ape", DSV4_F32, 128, 512);
    dsv4_inventory_free(&inv);
    /* expert_dtype fp8: the experts are FP8-block like the other linears; the count is unchanged. */
    REQUIRE(build(FLASH, "{\"expert_dtype\": \"fp8\"}", &inv) == 0);
    CHECK_EQ_INT(inv.n, 69187);
    check_shape(&inv, "layers.1.ffn.experts.3.w1.weight", DSV4_F8_E4M3, 2048, 4096);
    check_shape(&inv, "layers.1.ffn.experts.3.w1.scale", DSV4_F8_E8M0, 16, 32);
    check_shape(&inv, "layers.1.ffn.experts.3.w2.scale", DSV4_F8_E8M0, 32, 16);
    const dsv4_inv_tensor *t = dsv4_inventory_find(&inv, "layers.1.ffn.experts.3.w2.weight");
    REQUIRE(t);
    CHECK_EQ_INT(t->store, DSV4_STORE_FP8_BLOCK);
    CHECK_EQ_INT(t->role, DSV4_ROLE_ROUTED_EXPERT);
    dsv4_inventory_free(&inv);
}

TEST(inventory_transformers_style_same_as_release)
{
    dsv4_config a, b;
    dsv4_err e;
    REQUIRE(!*tcfg_patch(FLASH, NULL, &a));
    REQUIRE(!*tcfg_transformers(FLASH, NULL, &b));
    dsv4_inventory ia, ib;
    REQUIRE(dsv4_inventory_build(&a, &ia, &e) == 0);
    REQUIRE(dsv4_inventory_build(&b, &ib, &e) == 0);
    CHECK_EQ_INT(ia.n, ib.n);
    CHECK_EQ_INT(ia.total_bytes, ib.total_bytes);
    for (size_t i = 0; i < ia.n && i < ib.n; i++)
        if (strcmp(ia.t[i].name, ib.t[i].name) || ia.t[i].dtype != ib.t[i].dtype ||
            ia.t[i].shape[0] != ib.t[i].shape[0] || ia.t[i].shape[1] != ib.t[i].shape[1]) {
            CHECK_MSG(0, "entry %zu differs: %s vs %s", i, ia.t[i].name, ib.t[i].name);
            break;
        }
    dsv4_inventory_free(&ia);
    dsv4_inventory_free(&ib);
}

TEST(inventory_matches_tiny_fixture_exactly)
{
    dsv4_config c;
    dsv4_err e;
    dsv4_inventory inv;
    dsv4_ckpt ck;
    int rc = dsv4_config_load(th_path("fixtures/dsv4-tiny"), &c, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    REQUIRE(rc == 0);
    REQUIRE(dsv4_inventory_build(&c, &inv, &e) == 0);
    rc = dsv4_ckpt_open(th_path("fixtures/dsv4-tiny"), 0, &ck, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    REQUIRE(rc == 0);
    CHECK_EQ_INT(inv.n, 667);
    CHECK_EQ_INT(ck.n, 667);
    CHECK_EQ_INT(inv.total_bytes, ck.data_bytes);
    for (size_t i = 0; i < ck.n && i < inv.n; i++) {
        const dsv4_tensor *f = ck.by_name[i];
        const dsv4_inv_tensor *t = &inv.t[inv.by_name[i]];
        CHECK_MSG(!strcmp(f->name, t->name), "name %zu: file %s, inventory %s", i, f->name, t->name);
        CHECK_MSG(f->dtype == t->dtype, "%s: file %s, inventory %s", f->name, dsv4_dtype_name(f->dtype),
                  dsv4_dtype_name(t->dtype));
        int same = f->ndim == t->ndim;
        for (int d = 0; same && d < f->ndim; d++)
            same = f->shape[d] == t->shape[d];
        char buf[64];
        CHECK_MSG(same, "%s: file shape %s, inventory [%lld, %lld] ndim %d", f->name, dsv4_shape_str(f, buf, sizeof buf),
                  (long long)t->shape[0], (long long)t->shape[1], t->ndim);
        CHECK_EQ_INT(dsv4_tensor_nbytes(f), t->nbytes);
    }
    dsv4_ckpt_close(&ck);
    dsv4_inventory_free(&inv);
}

TEST(inventory_role_names_are_stable)
{
    const char *want[] = {"embed", "head", "norm", "hc", "sink", "attn_linear", "attn_norm", "compressor",
                          "compressor_ape", "indexer", "indexer_compressor", "indexer_ape", "gate", "gate_bias",
                          "tid2eid", "shared_expert", "routed_expert", "mtp_proj", "mtp_norm", "mtp_hc_head",
                          "scale", "unknown"};
    CHECK_EQ_INT(sizeof want / sizeof *want, DSV4_ROLE_COUNT);
    for (int r = 0; r < DSV4_ROLE_COUNT; r++) {
        CHECK(!strcmp(dsv4_role_name((dsv4_role)r), want[r]));
        CHECK_EQ_INT(dsv4_role_parse(want[r]), r);
    }
    CHECK_EQ_INT(dsv4_role_parse("nope"), DSV4_ROLE_COUNT);
    CHECK(!strcmp(dsv4_store_name(DSV4_STORE_FP4_PACKED), "fp4_packed"));
}
