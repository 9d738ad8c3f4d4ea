/* A BF16 source in transformers' naming, with the routed experts fused as transformers saves them
 * (mlp.experts.gate_up_proj [E, 2I, H], w1 rows then w3 rows; mlp.experts.down_proj [E, H, I]),
 * converts to exactly the artifact that the same weights under release names give: same tensors
 * byte for byte, same index, same manifest. The transformers checkpoint is built here from the
 * fixture's BF16 conversion; the MTP block keeps its release names (transformers has none). */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#include "artifact/convert.h"
#include "io/st_plan.h"
#include "io/st_write.h"
#include "model/names.h"

/* Converts src with recipe into out. */
static int quant(const char *src, const char *recipe, const char *out)
{
    dsv4_ckpt c;
    dsv4_config cfg;
    dsv4_recipe r;
    dsv4_plan p;
    dsv4_err e;
    char cpath[8400];
    snprintf(cpath, sizeof cpath, "%s/config.json", src);
    json_error_t je;
    json_t *raw = json_load_file(cpath, 0, &je);
    int rc = dsv4_ckpt_open(src, 0, &c, &e);
    if (rc == 0) {
        rc = dsv4_config_load(cpath, &cfg, &e) || dsv4_recipe_load(th_path(recipe), &r, &e);
        if (rc == 0) {
            rc = dsv4_plan_build(&c, &cfg, raw, &r, &p, &e);
            if (rc == 0) {
                dsv4_convert_opts o = {.threads = 2};
                dsv4_convert_stats st;
                rc = dsv4_convert_run(&c, &p, &r, out, &o, &st, &e);
                if (rc == 0)
                    dsv4_convert_stats_free(&st);
                dsv4_plan_free(&p);
            }
            dsv4_recipe_free(&r);
        }
        dsv4_ckpt_close(&c);
    }
    json_decref(raw);
    if (rc)
        th_fail(__FILE__, __LINE__, "%s -> %s: %s", src, out, e.msg);
    return rc;
}

/* Rewrites the release-named BF16 checkpoint `src` in transformers' names with fused experts. */
static int to_transformers(const char *src, const char *out)
{
    dsv4_ckpt c;
    dsv4_config cfg;
    dsv4_err e;
    char cpath[8400];
    snprintf(cpath, sizeof cpath, "%s/config.json", src);
    if (dsv4_ckpt_open(src, 0, &c, &e) || dsv4_config_load(cpath, &cfg, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        return -1;
    }
    int64_t E = cfg.n_routed_experts, I = cfg.moe_inter_dim, H = cfg.hidden_size;
    dsv4_st_plan p;
    dsv4_st_plan_init(&p, 0, DSV4_ST_ALWAYS_INDEX);
    const void **data = calloc(c.n + 64, sizeof *data);
    uint8_t *fused[64] = {0};
    size_t nd = 0, nf = 0;
    for (int l = 0; l < cfg.n_layers; l++) {
        for (int k = 0; k < 2; k++) {
            char n[128];
            snprintf(n, sizeof n, "model.layers.%d.mlp.experts.%s", l, k ? "down_proj" : "gate_up_proj");
            int64_t shape[3] = {E, k ? H : 2 * I, k ? I : H};
            uint8_t *buf = malloc((size_t)(E * 2 * I * H) * 2);
            for (int64_t x = 0; x < E; x++)
                for (int w = 0; w < (k ? 1 : 2); w++) {
                    char rn[128];
                    snprintf(rn, sizeof rn, "layers.%d.ffn.experts.%lld.w%d.weight", l, (long long)x, k ? 2 : w ? 3 : 1);
                    const dsv4_tensor *t = dsv4_ckpt_find(&c, rn);
                    if (!t || t->dtype != DSV4_BF16) {
                        th_fail(__FILE__, __LINE__, "%s: no BF16 %s", src, rn);
                        return -1;
                    }
                    size_t off = k ? (size_t)(x * H * I) * 2 : (size_t)((x * 2 + w) * I * H) * 2;
                    memcpy(buf + off, t->data, dsv4_tensor_nbytes(t));
                }
            dsv4_st_plan_add(&p, n, DSV4_BF16, 3, shape, &e);
            fused[nf++] = buf;
            data[nd++] = buf;
        }
    }
    for (size_t i = 0; i < c.n; i++) {
        const dsv4_tensor *t = c.by_name[i];
        dsv4_name_map m;
        dsv4_map_kind kind = dsv4_name_to_hf(t->name, &cfg, &m);
        if (kind == DSV4_MAP_FUSED)
            continue;
        const char *name = kind == DSV4_MAP_DIRECT ? m.name : t->name; /* mtp.*: kept */
        if (dsv4_st_plan_add(&p, name, t->dtype, t->ndim, t->shape, &e))
            th_fail(__FILE__, __LINE__, "%s", e.msg);
        data[nd++] = t->data;
    }
    int rc = dsv4_st_plan_finish(&p, &e) || dsv4_st_write_all(&p, out, data, &e);
    if (rc)
        th_fail(__FILE__, __LINE__, "%s", e.msg);
    char cmd[20000];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s/config.json'", cpath, out);
    rc = rc || system(cmd) != 0;
    for (size_t i = 0; i < nf; i++)
        free(fused[i]);
    free(data);
    dsv4_st_plan_free(&p);
    dsv4_ckpt_close(&c);
    return rc;
}

TEST(quant_transformers_fused_source_equals_release_source)
{
    const char *d = th_tmpdir();
    char bf16[4200], hf[4200], a[4200], b[4200], cmd[20000];
    snprintf(bf16, sizeof bf16, "%s/bf16", d);
    snprintf(hf, sizeof hf, "%s/hf", d);
    snprintf(a, sizeof a, "%s/from-release", d);
    snprintf(b, sizeof b, "%s/from-transformers", d);
    REQUIRE(quant(th_path("fixtures/dsv4-tiny"), "recipes/bf16.yaml", bf16) == 0);
    REQUIRE(to_transformers(bf16, hf) == 0);
    dsv4_ckpt c;
    dsv4_err e;
    REQUIRE(dsv4_ckpt_open(hf, 0, &c, &e) == 0);
    CHECK(dsv4_ckpt_find(&c, "model.layers.3.mlp.experts.gate_up_proj") != NULL);
    CHECK(dsv4_ckpt_find(&c, "layers.0.attn.wq_a.weight") == NULL);
    dsv4_ckpt_close(&c);
    REQUIRE(quant(bf16, "recipes/w4a16-rtn.yaml", a) == 0);
    REQUIRE(quant(hf, "recipes/w4a16-rtn.yaml", b) == 0);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && for f in *.safetensors model.safetensors.index.json dsv4-manifest.json; do cmp -s \"$f\" "
             "'%s'/\"$f\" || exit 1; done",
             a, b);
    CHECK_MSG(system(cmd) == 0, "artifacts from release and transformers names differ (%s vs %s)", a, b);
}
