/* Inventory diff and summaries: the tiny fixture is clean; synthetic checkpoints (built in memory
 * from dsv4_tensor structs) with missing, unexpected, mistyped and misshapen tensors are reported. */
#include "harness.h"
#include "model/inventory_diff.h"
#include "model/inventory_summary.h"

#include <stdlib.h>
#include <string.h>

#define TINY "fixtures/dsv4-tiny/config.json"
#define FLASH "fixtures/configs/deepseek-v4-flash.config.json"

/* From test_config_util.c. */
const char *tcfg_patch(const char *rel, const char *patch, dsv4_config *c);

/* An in-memory checkpoint: tensors with names, dtypes and shapes, no data. */
typedef struct fake {
    dsv4_ckpt c;
    dsv4_tensor *t;
    size_t n, cap;
} fake;

static void fake_add(fake *f, const char *name, dsv4_dtype dt, int ndim, int64_t d0, int64_t d1)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 1024;
        f->t = realloc(f->t, f->cap * sizeof *f->t);
    }
    dsv4_tensor *t = &f->t[f->n++];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->dtype = dt;
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = d1;
    int64_t nb = dsv4_dtype_nbytes(dt, (uint64_t)d0 * (uint64_t)(ndim > 1 ? d1 : 1));
    t->end = nb > 0 ? (uint64_t)nb : 0;
}

static void fake_from_inventory(fake *f, const dsv4_inventory *inv)
{
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < inv->n; i++)
        fake_add(f, inv->t[i].name, inv->t[i].dtype, inv->t[i].ndim, inv->t[i].shape[0], inv->t[i].shape[1]);
}

static dsv4_tensor *fake_get(fake *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name))
            return &f->t[i];
    return NULL;
}

/* Removes every tensor whose name starts with prefix; returns how many. */
static size_t fake_drop(fake *f, const char *prefix)
{
    size_t k = 0, dropped = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (!strncmp(f->t[i].name, prefix, strlen(prefix))) {
            free(f->t[i].name);
            dropped++;
        } else {
            f->t[k++] = f->t[i];
        }
    }
    f->n = k;
    return dropped;
}

static int cmp_tensor(const void *a, const void *b)
{
    return strcmp((*(const dsv4_tensor *const *)a)->name, (*(const dsv4_tensor *const *)b)->name);
}

/* Builds the sorted by_name table; call after the last change. */
static void fake_seal(fake *f)
{
    free(f->c.by_name);
    f->c.by_name = malloc((f->n + 1) * sizeof *f->c.by_name);
    for (size_t i = 0; i < f->n; i++)
        f->c.by_name[i] = &f->t[i];
    qsort(f->c.by_name, f->n, sizeof *f->c.by_name, cmp_tensor);
    f->c.n = f->n;
    f->c.dir = "fake";
}

static void fake_free(fake *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->t[i].name);
    free(f->t);
    free(f->c.by_name);
}

TEST(diff_tiny_fixture_is_clean)
{
    dsv4_config c;
    dsv4_err e;
    dsv4_inventory inv;
    dsv4_ckpt ck;
    REQUIRE(dsv4_config_load(th_path("fixtures/dsv4-tiny"), &c, &e) == 0);
    REQUIRE(dsv4_inventory_build(&c, &inv, &e) == 0);
    REQUIRE(dsv4_ckpt_open(th_path("fixtures/dsv4-tiny"), 0, &ck, &e) == 0);
    dsv4_inv_diff d;
    REQUIRE(dsv4_inventory_diff(&inv, &ck, &d, &e) == 0);
    CHECK(dsv4_inv_diff_clean(&d));
    CHECK_EQ_INT(d.n_matched, 667);
    dsv4_inv_summary s;
    REQUIRE(dsv4_inventory_summarize(&inv, &c, &ck, &s, &e) == 0);
    CHECK(s.fp32_intact);
    CHECK_EQ_INT(s.fp32_expected, 49);
    CHECK(s.mtp_present && s.mtp_complete);
    CHECK_EQ_INT(s.mtp_expected, 135);
    CHECK_EQ_INT(s.mtp_found, 135);
    CHECK_EQ_INT(s.layer_mismatches, 0);
    CHECK_EQ_INT(s.n_layers, 5);
    int want[5] = {DSV4_ATTN_SWA, DSV4_ATTN_CSA, DSV4_ATTN_HCA, DSV4_ATTN_CSA, DSV4_ATTN_SWA};
    int64_t ratio[5] = {0, 4, 128, 4, 0};
    for (int i = 0; i < 5; i++) {
        CHECK_EQ_INT(s.layers[i].found, want[i]);
        CHECK_EQ_INT(s.layers[i].found_ratio, ratio[i]);
        CHECK_EQ_INT(s.layers[i].hash_found, i < 2);
    }
    CHECK_EQ_INT(s.layers[4].mtp, 0);
    uint64_t total = 0;
    for (int r = 0; r < DSV4_ROLE_COUNT; r++) {
        CHECK_EQ_INT(s.found_by_role[r].n, s.expected_by_role[r].n);
        CHECK_EQ_INT(s.found_by_role[r].bytes, s.expected_by_role[r].bytes);
        total += s.found_by_role[r].bytes;
    }
    CHECK_EQ_INT(total, ck.data_bytes);
    CHECK_EQ_INT(s.found_by_dtype[DSV4_I64].n, 2);
    CHECK_EQ_INT(s.found_by_role[DSV4_ROLE_ROUTED_EXPERT].n, 5 * 16 * 3);
    CHECK_EQ_INT(s.found_by_role[DSV4_ROLE_UNKNOWN].n, 0);
    dsv4_inv_summary_free(&s);
    dsv4_inv_diff_free(&d);
    dsv4_ckpt_close(&ck);
    dsv4_inventory_free(&inv);
}

TEST(diff_reports_synthetic_deviations)
{
    dsv4_config c;
    dsv4_err e;
    dsv4_inventory inv;
    REQUIRE(!*tcfg_patch(TINY, NULL, &c));
    REQUIRE(dsv4_inventory_build(&c, &inv, &e) == 0);
    fake f;
    fake_from_inventory(&f, &inv);
    CHECK_EQ_INT(fake_drop(&f, "layers.1.attn.wkv.scale"), 1);
    fake_get(&f, "layers.2.ffn.gate.bias")->dtype = DSV4_BF16; /* an FP32-set tensor downcast */
    fake_get(&f, "layers.0.attn.wq_a.weight")->shape[1] = 128;
    dsv4_tensor *both = fake_get(&f, "layers.3.attn.wo_b.weight");
    both->dtype = DSV4_BF16;
    both->ndim = 3;
    both->shape[2] = 1;
    fake_add(&f, "model.layers.0.self_attn.q_a_proj.weight", DSV4_BF16, 2, 128, 256);
    fake_add(&f, "mtp.0.head.weight", DSV4_BF16, 2, 1024, 256);
    fake_seal(&f);
    dsv4_inv_diff d;
    REQUIRE(dsv4_inventory_diff(&inv, &f.c, &d, &e) == 0);
    CHECK(!dsv4_inv_diff_clean(&d));
    char buf[512];
    REQUIRE(d.missing.n == 1);
    CHECK(!strcmp(dsv4_diff_entry_str(&d.missing.v[0], buf, sizeof buf),
                  "layers.1.attn.wkv.scale: missing (expected F8_E8M0 [1, 2])"));
    REQUIRE(d.unexpected.n == 2);
    CHECK(!strcmp(d.unexpected.v[0].got->name, "model.layers.0.self_attn.q_a_proj.weight"));
    CHECK(!strcmp(dsv4_diff_entry_str(&d.unexpected.v[1], buf, sizeof buf),
                  "mtp.0.head.weight: unexpected (BF16 [1024, 256])"));
    REQUIRE(d.wrong_dtype.n == 2);
    CHECK(!strcmp(dsv4_diff_entry_str(&d.wrong_dtype.v[0], buf, sizeof buf),
                  "layers.2.ffn.gate.bias: expected F32 [16], found BF16 [16]"));
    CHECK(!strcmp(d.wrong_dtype.v[1].want->name, "layers.3.attn.wo_b.weight"));
    REQUIRE(d.wrong_shape.n == 2);
    CHECK(!strcmp(dsv4_diff_entry_str(&d.wrong_shape.v[0], buf, sizeof buf),
                  "layers.0.attn.wq_a.weight: expected F8_E4M3 [128, 256], found F8_E4M3 [128, 128]"));
    CHECK(!strcmp(dsv4_diff_entry_str(&d.wrong_shape.v[1], buf, sizeof buf),
                  "layers.3.attn.wo_b.weight: expected F8_E4M3 [256, 256], found BF16 [256, 256, 1]"));
    CHECK_EQ_INT(d.n_matched, 667 - 1 - 3);
    dsv4_inv_summary s;
    REQUIRE(dsv4_inventory_summarize(&inv, &c, &f.c, &s, &e) == 0);
    CHECK(!s.fp32_intact);
    CHECK_EQ_INT(s.fp32_ok, s.fp32_expected - 1);
    CHECK(s.mtp_complete); /* an extra mtp.* name does not make the expected set incomplete */
    CHECK_EQ_INT(s.mtp_found, 136);
    CHECK_EQ_INT(s.found_by_role[DSV4_ROLE_UNKNOWN].n, 2);
    CHECK_EQ_INT(s.found_by_role[DSV4_ROLE_SCALE].n, s.expected_by_role[DSV4_ROLE_SCALE].n - 1);
    CHECK_EQ_INT(s.found_by_dtype[DSV4_F32].n, s.expected_by_dtype[DSV4_F32].n - 1);
    CHECK_EQ_INT(s.layer_mismatches, 0);
    dsv4_inv_summary_free(&s);
    dsv4_inv_diff_free(&d);
    fake_free(&f);
    dsv4_inventory_free(&inv);
}

TEST(summary_layer_types_and_mtp_from_files)
{
    dsv4_config c;
    dsv4_err e;
    dsv4_inventory inv;
    REQUIRE(!*tcfg_patch(FLASH, NULL, &c));
    REQUIRE(dsv4_inventory_build(&c, &inv, &e) == 0);
    fake f;
    fake_from_inventory(&f, &inv);
    CHECK_EQ_INT(fake_drop(&f, "mtp."), 1575);
    CHECK_EQ_INT(fake_drop(&f, "layers.5.attn.compressor."), 4);       /* HCA layer loses its compressor */
    CHECK_EQ_INT(fake_drop(&f, "layers.6.attn.indexer."), 7);          /* CSA layer loses its indexer */
    fake_get(&f, "layers.7.attn.compressor.ape")->shape[0] = 16;       /* HCA ratio 16 on disk */
    CHECK_EQ_INT(fake_drop(&f, "layers.1.ffn.gate.tid2eid"), 1);
    fake_add(&f, "layers.1.ffn.gate.bias", DSV4_F32, 1, 256, 0);       /* hash layer stored as bias-routed */
    fake_seal(&f);
    dsv4_inv_summary s;
    REQUIRE(dsv4_inventory_summarize(&inv, &c, &f.c, &s, &e) == 0);
    CHECK(!s.mtp_present && !s.mtp_complete);
    CHECK_EQ_INT(s.mtp_expected, 1575);
    CHECK_EQ_INT(s.mtp_ok, 0);
    CHECK_EQ_INT(s.n_layers, 44);
    CHECK_EQ_INT(s.layers[5].expected, DSV4_ATTN_HCA);
    CHECK_EQ_INT(s.layers[5].found, DSV4_ATTN_SWA);
    CHECK_EQ_INT(s.layers[6].found, DSV4_ATTN_HCA);
    CHECK_EQ_INT(s.layers[6].found_ratio, 4);
    CHECK_EQ_INT(s.layers[7].found, DSV4_ATTN_HCA);
    CHECK_EQ_INT(s.layers[7].found_ratio, 16);
    CHECK_EQ_INT(s.layers[1].hash_expected, 1);
    CHECK_EQ_INT(s.layers[1].hash_found, 0);
    CHECK_EQ_INT(s.layers[43].found, -1);
    CHECK_EQ_INT(s.layers[43].mtp, 0);
    CHECK_EQ_INT(s.layer_mismatches, 5);
    CHECK(!s.fp32_intact); /* mtp.* F32 tensors and the dropped apes are gone */
    CHECK_EQ_INT(s.fp32_ok, 417 - 11 - 2); /* 11 MTP F32 tensors, two apes */
    dsv4_inv_summary_free(&s);
    dsv4_inv_diff d;
    REQUIRE(dsv4_inventory_diff(&inv, &f.c, &d, &e) == 0);
    CHECK_EQ_INT(d.missing.n, 1575 + 4 + 7 + 1);
    CHECK_EQ_INT(d.unexpected.n, 1);
    CHECK_EQ_INT(d.wrong_shape.n, 1);
    dsv4_inv_diff_free(&d);
    fake_free(&f);
    dsv4_inventory_free(&inv);
}
