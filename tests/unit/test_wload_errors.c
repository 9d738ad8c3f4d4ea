/* Weight loading refuses damaged artifacts with an error that names the file, the tensor and what
 * was expected, and leaves nothing allocated: a missing linear or vector, a wrong shape, a wrong
 * dtype, tid2eid ids out of range or missing, one weight under two names; a tid2eid stored as I32
 * loads like the I64 one.
 * Each artifact is the release fixture with one edit (tests/unit/test_rulesa_util.h). */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#include "test_rulesa_util.h"
#include "test_wload_util.h"

/* The fixture edited by fn, written, opened; loads `layer` (-1: the globals). Returns the load's
 * result (-2 when the source did not open) with the message in e. */
static int try_load(void (*fn)(ra_art *), int layer, dsv4_layer_w *keep, dsv4_err *e)
{
    ra_art a;
    if (ra_load(ra_source(), &a))
        return -3;
    fn(&a);
    const char *dir = ra_write(&a);
    ra_free(&a);
    if (!dir)
        return -3;
    dsv4_wsrc *s;
    if (dsv4_wsrc_open(dir, &s, e))
        return -2;
    int rc;
    dsv4_layer_w w;
    if (layer < 0) {
        dsv4_global_w g;
        rc = dsv4_global_w_load(s, wl_ops(), &g, e);
        if (rc == 0)
            dsv4_global_w_free(wl_ops(), &g);
    } else {
        rc = dsv4_layer_w_load(s, layer, wl_ops(), &w, e);
        if (rc == 0 && keep)
            *keep = w;
        else if (rc == 0)
            dsv4_layer_w_free(wl_ops(), &w);
        else
            CHECK(w.attn.wq_a.w == NULL && w.ffn.w1 == NULL && w.attn_norm == NULL && w.bytes == 0);
    }
    dsv4_wsrc_close(s);
    if (!keep || rc)
        CHECK_EQ_INT(wl_live(), 0);
    return rc;
}

static void drop_wo_b(ra_art *a)
{
    ra_drop(a, "layers.2.attn.wo_b.weight");
    ra_drop(a, "layers.2.attn.wo_b.scale");
}

TEST(wload_err_missing_linear)
{
    dsv4_err e;
    CHECK_EQ_INT(try_load(drop_wo_b, 2, NULL, &e), -1);
    CHECK_STR_CONTAINS(e.msg, "layers.2.attn.wo_b.weight");
    CHECK_STR_CONTAINS(e.msg, "missing");
    CHECK_STR_CONTAINS(e.msg, "damaged");   /* the artifact's folder */
    CHECK_STR_CONTAINS(e.msg, "[256, 256]");
}

static void drop_expert(ra_art *a)
{
    ra_drop(a, "mtp.0.ffn.experts.15.w3.weight");
    ra_drop(a, "mtp.0.ffn.experts.15.w3.scale");
}

TEST(wload_err_missing_expert_mtp)
{
    dsv4_err e;
    CHECK_EQ_INT(try_load(drop_expert, 4, NULL, &e), -1); /* fails after 15 experts were loaded */
    CHECK_STR_CONTAINS(e.msg, "mtp.0.ffn.experts.15.w3.weight");
}

static void drop_sink(ra_art *a) { ra_drop(a, "layers.1.attn.attn_sink"); }

TEST(wload_err_missing_vector)
{
    dsv4_err e;
    CHECK_EQ_INT(try_load(drop_sink, 1, NULL, &e), -1);
    CHECK_STR_CONTAINS(e.msg, "layers.1.attn.attn_sink");
    CHECK_STR_CONTAINS(e.msg, "missing");
    CHECK_STR_CONTAINS(e.msg, "[4]");
}

static void short_wkv(ra_art *a)
{
    int64_t shape[2] = {64, 256};
    ra_put(a, "layers.0.attn.wkv.weight", DSV4_F8_E4M3, 2, shape, NULL);
}

TEST(wload_err_linear_shape)
{
    dsv4_err e;
    CHECK_EQ_INT(try_load(short_wkv, 0, NULL, &e), -1);
    CHECK_STR_CONTAINS(e.msg, "layers.0.attn.wkv.weight");
    CHECK_STR_CONTAINS(e.msg, ".safetensors");
    CHECK_STR_CONTAINS(e.msg, "[64, 256]");
    CHECK_STR_CONTAINS(e.msg, "[128, 256]");
}

static void short_norm(ra_art *a)
{
    int64_t shape[1] = {128};
    ra_put(a, "layers.3.attn_norm.weight", DSV4_BF16, 1, shape, NULL);
}

TEST(wload_err_vector_shape)
{
    dsv4_err e;
    CHECK_EQ_INT(try_load(short_norm, 3, NULL, &e), -1);
    CHECK_STR_CONTAINS(e.msg, "layers.3.attn_norm.weight");
    CHECK_STR_CONTAINS(e.msg, ".safetensors");
    CHECK_STR_CONTAINS(e.msg, "has shape [128]");
    CHECK_STR_CONTAINS(e.msg, "expected [256]");
}

static void int_base(ra_art *a)
{
    int64_t shape[1] = {24};
    ra_put(a, "layers.0.hc_attn_base", DSV4_I32, 1, shape, NULL);
}

TEST(wload_err_vector_dtype)
{
    dsv4_err e;
    CHECK_EQ_INT(try_load(int_base, 0, NULL, &e), -1);
    CHECK_STR_CONTAINS(e.msg, "layers.0.hc_attn_base");
    CHECK_STR_CONTAINS(e.msg, ".safetensors");
    CHECK_STR_CONTAINS(e.msg, "dtype I32");
}

static void i16_wq_b(ra_art *a)
{
    int64_t shape[2] = {512, 128};
    ra_put(a, "layers.0.attn.wq_b.weight", DSV4_I16, 2, shape, NULL);
}

TEST(wload_err_linear_dtype)
{
    dsv4_err e;
    CHECK_EQ_INT(try_load(i16_wq_b, 0, NULL, &e), -1);
    CHECK_STR_CONTAINS(e.msg, "layers.0.attn.wq_b");
    CHECK_STR_CONTAINS(e.msg, ".safetensors");
    CHECK_STR_CONTAINS(e.msg, "I16");
}

static void f16_head(ra_art *a) { ra_cast(a, "head.weight", DSV4_F16); }

TEST(wload_f16_head_widens)
{
    dsv4_err e;
    CHECK_EQ_INT(try_load(f16_head, -1, NULL, &e), 0);
}

static void set_tid(ra_art *a, int64_t row, int64_t col, int64_t v)
{
    ra_tensor *t = ra_find(a, "layers.0.ffn.gate.tid2eid");
    memcpy(t->data + 8 * (row * 4 + col), &v, 8);
}

static void tid_big(ra_art *a) { set_tid(a, 5, 2, 16); }
static void tid_neg(ra_art *a) { set_tid(a, 1023, 3, -1); }
static void tid_gone(ra_art *a) { ra_drop(a, "layers.1.ffn.gate.tid2eid"); }

TEST(wload_err_tid2eid)
{
    dsv4_err e;
    CHECK_EQ_INT(try_load(tid_big, 0, NULL, &e), -1);
    CHECK_STR_CONTAINS(e.msg, "layers.0.ffn.gate.tid2eid[5, 2] = 16");
    CHECK_STR_CONTAINS(e.msg, "[0, 16)");
    CHECK_STR_CONTAINS(e.msg, ".safetensors");
    CHECK_EQ_INT(try_load(tid_neg, 0, NULL, &e), -1);
    CHECK_STR_CONTAINS(e.msg, "tid2eid[1023, 3] = -1");
    CHECK_EQ_INT(try_load(tid_gone, 1, NULL, &e), -1);
    CHECK_STR_CONTAINS(e.msg, "layers.1.ffn.gate.tid2eid");
    CHECK_STR_CONTAINS(e.msg, "missing");
}

static void tid_i32(ra_art *a)
{
    ra_tensor *t = ra_find(a, "layers.0.ffn.gate.tid2eid");
    int32_t v[1024 * 4];
    for (int i = 0; i < 1024 * 4; i++) {
        int64_t x;
        memcpy(&x, t->data + 8 * i, 8);
        v[i] = (int32_t)x;
    }
    int64_t shape[2] = {1024, 4};
    ra_put(a, "layers.0.ffn.gate.tid2eid", DSV4_I32, 2, shape, v);
}

TEST(wload_tid2eid_i32)
{
    dsv4_err e;
    dsv4_layer_w w;
    REQUIRE(try_load(tid_i32, 0, &w, &e) == 0);
    dsv4_ckpt ck;
    REQUIRE(dsv4_ckpt_open(ra_source(), 0, &ck, &e) == 0);
    const dsv4_tensor *t = dsv4_ckpt_find(&ck, "layers.0.ffn.gate.tid2eid");
    int bad = 0;
    for (int i = 0; i < 1024 * 4; i++) {
        int64_t x;
        memcpy(&x, t->data + 8 * i, 8);
        bad += w.ffn.tid2eid[i] != x;
    }
    CHECK_EQ_INT(bad, 0);
    dsv4_ckpt_close(&ck);
    dsv4_layer_w_free(wl_ops(), &w);
    CHECK_EQ_INT(wl_live(), 0);
}

static void two_names(ra_art *a)
{
    ra_tensor *t = ra_find(a, "layers.0.attn_norm.weight");
    ra_put(a, "model.layers.0.input_layernorm.weight", t->dtype, t->ndim, t->shape, t->data);
}

TEST(wload_err_two_names_one_weight)
{
    dsv4_err e;
    CHECK_EQ_INT(try_load(two_names, 0, NULL, &e), -2);
    CHECK_STR_CONTAINS(e.msg, "'layers.0.attn_norm.weight'");
    CHECK_STR_CONTAINS(e.msg, "'model.layers.0.input_layernorm.weight'");
    CHECK_STR_CONTAINS(e.msg, "two names");
}
