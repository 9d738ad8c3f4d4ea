/* Layout and naming detection through the inspect report, on small checkpoints written with the
 * project's writer: a compressed-tensors W4A16 artifact, a BF16 checkpoint in transformers'
 * names, a release checkpoint that lost its MTP block and had FP32 tensors downcast to BF16. */
#include "harness.h"
#include "artifact/inspect.h"
#include "io/st_plan.h"
#include "io/st_write.h"
#include "formats/fp.h"

#include <stdlib.h>
#include <string.h>

typedef struct { const char *name; dsv4_dtype dtype; int64_t r, c; } spec;

/* Writes the tensors (random bytes) and config.json into dir/name; returns the folder. */
static const char *write_ckpt(const char *name, const spec *t, size_t n, const char *config)
{
    static char out[4096];
    snprintf(out, sizeof out, "%s/%s", th_tmpdir(), name);
    dsv4_st_plan p;
    dsv4_err e;
    dsv4_st_plan_init(&p, 0, 0);
    void **data = calloc(n, sizeof *data);
    for (size_t i = 0; i < n; i++) {
        int64_t shape[2] = {t[i].r, t[i].c};
        if (dsv4_st_plan_add(&p, t[i].name, t[i].dtype, t[i].c ? 2 : 1, shape, &e))
            th_fail(__FILE__, __LINE__, "%s", e.msg);
        size_t nb = (size_t)dsv4_dtype_nbytes(t[i].dtype, (uint64_t)(t[i].r * (t[i].c ? t[i].c : 1)));
        uint8_t *b = malloc(nb + 1);
        for (size_t k = 0; k < nb; k++)
            b[k] = (uint8_t)(th_rand() & 0x3F); /* never a NaN code */
        data[i] = b;
    }
    if (dsv4_st_plan_finish(&p, &e) || dsv4_st_write_all(&p, out, (const void *const *)data, &e))
        th_fail(__FILE__, __LINE__, "%s", e.msg);
    for (size_t i = 0; i < n; i++)
        free(data[i]);
    free(data);
    dsv4_st_plan_free(&p);
    char cpath[4200];
    snprintf(cpath, sizeof cpath, "%s/config.json", out);
    FILE *f = fopen(cpath, "w");
    if (f) {
        fputs(config, f);
        fclose(f);
    }
    return out;
}

static const char *CT_QC =
    "{\"quant_method\": \"compressed-tensors\", \"format\": \"pack-quantized\","
    " \"config_groups\": {\"group_0\": {\"targets\": [\"re:.*experts.*w[123]$\"], \"format\": \"pack-quantized\","
    " \"weights\": {\"num_bits\": 4, \"type\": \"int\", \"strategy\": \"group\", \"group_size\": 128,"
    " \"symmetric\": true, \"dynamic\": false}, \"input_activations\": null}}}";

/* The tiny fixture's config with a compressed-tensors quantization_config put in its place. */
static char *ct_config(void)
{
    json_error_t je;
    json_t *cfg = json_load_file(th_path("fixtures/dsv4-tiny/config.json"), 0, &je);
    json_t *qc = json_loads(CT_QC, 0, &je);
    json_object_set_new(cfg, "quantization_config", qc);
    char *s = json_dumps(cfg, 0);
    json_decref(cfg);
    return s;
}


TEST(inspect_layout_compressed_tensors)
{
    const spec t[] = {{"layers.0.ffn.experts.0.w1.weight_packed", DSV4_I32, 128, 32},
                      {"layers.0.ffn.experts.0.w1.weight_scale", DSV4_BF16, 128, 2},
                      {"layers.0.ffn.experts.0.w1.weight_shape", DSV4_I64, 2, 0},
                      {"layers.0.attn_norm.weight", DSV4_BF16, 256, 0}};
    char *config = ct_config();
    const char *dir = write_ckpt("ct", t, 4, config);
    free(config);
    dsv4_err e;
    json_t *r = dsv4_inspect_report(dir, &e);
    REQUIRE(r);
    CHECK(!strcmp(json_string_value(json_object_get(r, "layout")), "compressed-tensors"));
    CHECK(!strcmp(json_string_value(json_object_get(r, "naming")), "release"));
    json_t *ct = json_object_get(r, "compressed_tensors");
    CHECK_EQ_INT(json_integer_value(json_object_get(ct, "packed_weights")), 1);
    CHECK_STR_CONTAINS(json_string_value(json_array_get(json_object_get(ct, "schemes"), 0)),
                       "group_0: weights int4 group 128 symmetric; activations 16-bit; pack-quantized; 1 targets");
    /* The inventory is the release layout's, so a compressed-tensors artifact deviates from it. */
    json_t *inv = json_object_get(r, "inventory");
    CHECK(json_is_false(json_object_get(inv, "clean")));
    CHECK_EQ_INT(json_array_size(json_object_get(inv, "unexpected")), 3);
    json_decref(r);
}

TEST(inspect_layout_bf16_transformers_names)
{
    const spec t[] = {{"model.embed_tokens.weight", DSV4_BF16, 64, 32},
                      {"model.layers.0.self_attn.q_a_proj.weight", DSV4_BF16, 32, 32},
                      {"lm_head.weight", DSV4_BF16, 64, 32}};
    const char *dir = write_ckpt("bf16", t, 3, "{}");
    dsv4_err e;
    json_t *r = dsv4_inspect_report(dir, &e);
    /* "{}" is not a DeepSeek-V4 config: the report is refused with the config named. */
    CHECK(r == NULL);
    CHECK_STR_CONTAINS(e.msg, "config.json");
    json_decref(r);
    char cpath[4200];
    snprintf(cpath, sizeof cpath, "%s/config.json", dir);
    remove(cpath);
    r = dsv4_inspect_report(dir, &e);
    REQUIRE(r);
    CHECK(!strcmp(json_string_value(json_object_get(r, "layout")), "bf16"));
    CHECK(!strcmp(json_string_value(json_object_get(r, "naming")), "transformers"));
    CHECK(json_is_null(json_object_get(r, "config")));
    json_decref(r);
}

/* The fixture rewritten the way other pipelines broke it: mtp.* dropped and the hc_* mixers saved
 * as BF16. */
TEST(inspect_reports_dropped_mtp_and_downcast_fp32)
{
    dsv4_ckpt c;
    dsv4_err e;
    REQUIRE(dsv4_ckpt_open(th_path("fixtures/dsv4-tiny"), 0, &c, &e) == 0);
    dsv4_st_plan p;
    dsv4_st_plan_init(&p, 4 << 20, 0);
    const void **data = calloc(c.n, sizeof *data);
    void **owned = calloc(c.n, sizeof *owned);
    size_t n = 0, downcast = 0;
    for (size_t i = 0; i < c.n; i++) {
        const dsv4_tensor *t = c.by_name[i];
        if (!strncmp(t->name, "mtp.", 4))
            continue;
        int to_bf16 = t->dtype == DSV4_F32 && strstr(t->name, "hc_") != NULL;
        if (dsv4_st_plan_add(&p, t->name, to_bf16 ? DSV4_BF16 : t->dtype, t->ndim, t->shape, &e))
            th_fail(__FILE__, __LINE__, "%s", e.msg);
        if (to_bf16) {
            uint64_t k = dsv4_tensor_numel(t);
            uint16_t *b = malloc(k * 2 + 2);
            for (uint64_t j = 0; j < k; j++) {
                float v;
                memcpy(&v, t->data + 4 * j, 4);
                b[j] = dsv4_f32_to_bf16(v);
            }
            owned[n] = b;
            data[n] = b;
            downcast++;
        } else {
            data[n] = t->data;
        }
        n++;
    }
    const char *out = th_tmpdir();
    char dir[4200], cfg_src[9000];
    snprintf(dir, sizeof dir, "%s/broken", out);
    REQUIRE(dsv4_st_plan_finish(&p, &e) == 0);
    CHECK_MSG(dsv4_st_write_all(&p, dir, data, &e) == 0, "%s", e.msg);
    snprintf(cfg_src, sizeof cfg_src, "cp %s %s/config.json", th_path("fixtures/dsv4-tiny/config.json"), dir);
    REQUIRE(system(cfg_src) == 0);
    json_t *r = dsv4_inspect_report(dir, &e);
    REQUIRE(r);
    json_t *mtp = json_object_get(r, "mtp"), *fp = json_object_get(r, "fp32_set"), *inv = json_object_get(r, "inventory");
    CHECK(json_is_false(json_object_get(mtp, "present")));
    CHECK_EQ_INT(json_integer_value(json_object_get(mtp, "expected")), 135);
    CHECK(json_is_false(json_object_get(fp, "intact")));
    /* Of the 49 F32-set tensors, the 27 main-model hc_* are now BF16 and the MTP's 11 (9 hc_*, its
     * sink and its gate bias) are gone: 11 remain (4 sinks, 2 gate biases, 5 ape). */
    CHECK_EQ_INT(downcast, 27);
    CHECK_EQ_INT(json_integer_value(json_object_get(fp, "ok")), 49 - 27 - 11);
    CHECK_EQ_INT(json_array_size(json_object_get(inv, "missing")), 135);
    CHECK_EQ_INT(json_array_size(json_object_get(inv, "wrong_dtype")), 27);
    CHECK(!strcmp(json_string_value(json_object_get(r, "layout")), "release"));
    json_decref(r);
    for (size_t i = 0; i < n; i++)
        free(owned[i]);
    free(owned);
    free(data);
    dsv4_st_plan_free(&p);
    dsv4_ckpt_close(&c);
}
