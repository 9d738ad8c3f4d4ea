/* quantization_config: the generated targets match every module vLLM builds for the quantized
 * layers (fused and probe names included) and nothing of the MTP block under any of its names; no
 * module is both targeted and ignored; fused halves share a scheme. Checked with our regex engine
 * on the tiny fixture's plans and on the V4-Flash config. */
#include "harness.h"
#include "artifact/ct_config.h"
#include "model/inventory.h"
#include "recipe/modules.h"
#include "recipe/target.h"
#include "test_plan_util.h"

#include <stdlib.h>
#include <string.h>

#define FLASH "fixtures/configs/deepseek-v4-flash.config.json"

/* Index of the first config group whose targets match (-1 none); *ignored when ignore matches. */
static int who(const json_t *qc, const char *name, int *ignored)
{
    dsv4_err e;
    const json_t *groups = json_object_get(qc, "config_groups"), *ign = json_object_get(qc, "ignore");
    int hit = -1;
    *ignored = 0;
    for (size_t i = 0; i < json_array_size(ign); i++)
        *ignored |= dsv4_target_matches(json_string_value(json_array_get(ign, i)), name, &e) == 1;
    for (size_t k = 0; k < json_object_size(groups) && hit < 0; k++) {
        char key[32];
        snprintf(key, sizeof key, "group_%zu", k);
        const json_t *t = json_object_get(json_object_get(groups, key), "targets");
        for (size_t i = 0; i < json_array_size(t) && hit < 0; i++)
            if (dsv4_target_matches(json_string_value(json_array_get(t, i)), name, &e) == 1)
                hit = (int)k;
    }
    return hit;
}

static void expect(const json_t *qc, const char *name, int group, int line)
{
    int ign, g = who(qc, name, &ign);
    if (g != group || ign != (group == -1))
        th_fail(__FILE__, line, "%s: group %d%s, expected %s", name, g, ign ? " and ignored" : "",
                group >= 0 ? "targeted only" : "ignored only");
}
#define TARGETED(qc, n, g) expect(qc, n, g, __LINE__)
#define IGNORED(qc, n) expect(qc, n, -1, __LINE__)

/* Neither targeted nor ignored: a module this layer does not have. */
static void absent(const json_t *qc, const char *name, int line)
{
    int ign, g = who(qc, name, &ign);
    if (g >= 0 || ign)
        th_fail(__FILE__, line, "%s is matched (group %d, ignored %d)", name, g, ign);
}

/* Every name of every MTP module, under mtp.0, model.mtp.0 and model.layers.<n_layers>. */
static void mtp_untouched(const json_t *qc, int n_layers, int line)
{
    static const char *const leaves[] = {"attn.wq_a", "attn.fused_wqa_wkv", "attn.wkv", "attn.wq_b", "attn.wo_a",
                                         "attn.wo_b", "ffn.gate", "ffn.shared_experts.gate_up_proj",
                                         "ffn.shared_experts.down_proj", "ffn.shared_experts.w1", "ffn.experts",
                                         "ffn.experts.0.gate_proj", "ffn.experts.0.up_proj", "ffn.experts.0.down_proj",
                                         "ffn.experts.w13", "ffn.experts.15.w2", "e_proj", "h_proj", NULL};
    char pre[3][32], name[128];
    snprintf(pre[0], 32, "mtp.0.");
    snprintf(pre[1], 32, "model.mtp.0.");
    snprintf(pre[2], 32, "model.layers.%d.", n_layers);
    for (int p = 0; p < 3; p++)
        for (const char *const *l = leaves; *l; l++) {
            int ign;
            snprintf(name, sizeof name, "%s%s", pre[p], *l);
            if (who(qc, name, &ign) >= 0 || !ign)
                th_fail(__FILE__, line, "MTP module %s is targeted or not ignored", name);
        }
}

static void fixture_plan(const char *recipe, dsv4_plan *p, tp_fixture *f, int *ok)
{
    dsv4_err e;
    *ok = tp_open(f) == 0 && tp_plan(&f->ck, &f->cfg, f->source_config, recipe, p, &e) == 0;
    if (!*ok)
        th_fail(__FILE__, __LINE__, "%s", e.msg);
}

TEST(ct_config_w4a16_vllm_names)
{
    tp_fixture f;
    dsv4_plan p;
    int ok;
    fixture_plan("recipes/w4a16-rtn.yaml", &p, &f, &ok);
    REQUIRE(ok);
    const json_t *qc = json_object_get(p.config, "quantization_config");
    for (int l = 0; l < 4; l++) {
        char n[128];
        static const char *const fp8[] = {"attn.fused_wqa_wkv", "attn.wq_a", "attn.wkv", "attn.wq_b", "attn.wo_a",
                                          "attn.wo_b", "ffn.shared_experts.gate_up_proj",
                                          "ffn.shared_experts.down_proj", "ffn.shared_experts.w1",
                                          "ffn.shared_experts.w2", "ffn.shared_experts.w3", NULL};
        static const char *const int4[] = {"ffn.experts", "ffn.experts.w13", "ffn.experts.w2",
                                           "ffn.experts.0.gate_proj", "ffn.experts.0.up_proj",
                                           "ffn.experts.0.down_proj", "ffn.experts.7.w1", "ffn.experts.15.w3", NULL};
        static const char *const bf16[] = {"ffn.gate", NULL};
        for (const char *const *s = fp8; *s; s++) {
            snprintf(n, sizeof n, "model.layers.%d.%s", l, *s);
            TARGETED(qc, n, 0);
            TARGETED(qc, n + 6, 0); /* the on-disk name, without model. */
        }
        for (const char *const *s = int4; *s; s++) {
            snprintf(n, sizeof n, "model.layers.%d.%s", l, *s);
            TARGETED(qc, n, 1);
        }
        for (const char *const *s = bf16; *s; s++) {
            snprintf(n, sizeof n, "model.layers.%d.%s", l, *s);
            IGNORED(qc, n);
        }
    }
    TARGETED(qc, "model.layers.1.attn.indexer.wq_b", 0);
    TARGETED(qc, "model.layers.3.attn.indexer.wq_b", 0);
    absent(qc, "model.layers.2.attn.indexer.wq_b", __LINE__); /* HCA: no indexer */
    IGNORED(qc, "model.layers.1.attn.indexer.weights_proj");
    IGNORED(qc, "model.layers.1.attn.indexer.compressor.fused_wkv_wgate");
    IGNORED(qc, "model.layers.2.attn.mla_attn.compressor.fused_wkv_wgate");
    IGNORED(qc, "model.layers.2.attn.compressor.wkv");
    IGNORED(qc, "layers.3.attn.compressor.wgate");
    IGNORED(qc, "lm_head");
    absent(qc, "model.layers.0.attn.mla_attn.compressor.wkv", __LINE__); /* SWA: no compressor */
    absent(qc, "model.layers.12.attn.wq_a", __LINE__);
    mtp_untouched(qc, 4, __LINE__);

    /* Every vLLM name of every module: exactly its group, or ignored. */
    dsv4_recipe r;
    dsv4_err e;
    REQUIRE(tp_recipe("recipes/w4a16-rtn.yaml", &r, &e) == 0);
    dsv4_inventory inv;
    REQUIRE(dsv4_inventory_build(&f.cfg, &inv, &e) == 0);
    dsv4_ct_module *mods = calloc(inv.n, sizeof *mods);
    char (*names)[128] = calloc(inv.n, sizeof *names);
    size_t nm = 0;
    for (size_t i = 0; i < inv.n; i++) {
        size_t l = strlen(inv.t[i].name);
        if (l < 8 || strcmp(inv.t[i].name + l - 7, ".weight"))
            continue;
        snprintf(names[nm], sizeof names[nm], "%.*s", (int)(l - 7), inv.t[i].name);
        if (dsv4_module_kind(names[nm]) == DSV4_MOD_OTHER)
            continue;
        const dsv4_recipe_group *g = inv.t[i].is_mtp ? NULL : dsv4_recipe_match(&r, names[nm]);
        mods[nm] = (dsv4_ct_module){names[nm], g ? (int)(g - r.groups) : -1};
        nm++;
    }
    dsv4_ct_vllm_name *vn;
    size_t nv;
    REQUIRE(dsv4_ct_vllm_names(&r, &f.cfg, mods, nm, 1, &vn, &nv, &e) == 0);
    CHECK(nv > 4 * 16 * 3 * 2);
    CHECK(dsv4_ct_config_check(qc, &r, mods, nm, vn, nv, &e) == 0);
    for (size_t i = 0; i < nv; i++)
        expect(qc, vn[i].name, vn[i].group < 0 ? -1 : vn[i].group, __LINE__); /* recipe group = config group here */
    /* A config that forgets an ignore entry is caught, naming a module. */
    json_t *bad = json_deep_copy(qc);
    json_array_remove(json_object_get(bad, "ignore"), 0); /* lm_head */
    CHECK(dsv4_ct_config_check(bad, &r, mods, nm, vn, nv, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "lm_head is unquantized but no ignore entry matches it");
    json_decref(bad);
    free(vn);
    free(mods);
    free(names);
    dsv4_inventory_free(&inv);
    dsv4_recipe_free(&r);
    dsv4_plan_free(&p);
    tp_close(&f);
}

TEST(ct_config_nvfp4_and_fp8_names)
{
    tp_fixture f;
    dsv4_plan p;
    int ok;
    fixture_plan("recipes/nvfp4.yaml", &p, &f, &ok);
    REQUIRE(ok);
    const json_t *qc = json_object_get(p.config, "quantization_config");
    TARGETED(qc, "model.layers.3.ffn.experts.w13", 1);
    TARGETED(qc, "model.layers.3.ffn.experts.0.gate_proj", 1);
    TARGETED(qc, "model.layers.0.attn.fused_wqa_wkv", 0);
    mtp_untouched(qc, 4, __LINE__);
    dsv4_plan_free(&p);
    tp_close(&f);

    fixture_plan("recipes/fp8.yaml", &p, &f, &ok);
    REQUIRE(ok);
    qc = json_object_get(p.config, "quantization_config");
    TARGETED(qc, "model.layers.3.ffn.experts.0.down_proj", 0);
    TARGETED(qc, "model.layers.3.ffn.shared_experts.gate_up_proj", 0);
    TARGETED(qc, "model.layers.0.attn.fused_wqa_wkv", 0);
    IGNORED(qc, "model.layers.3.ffn.gate");
    mtp_untouched(qc, 4, __LINE__);
    dsv4_plan_free(&p);
    tp_close(&f);
}

/* The linear layers of a config with the w4a16 recipe's decisions (MTP unquantized). */
static dsv4_ct_module *flash_mods(const dsv4_config *c, const dsv4_recipe *r, dsv4_inventory *inv, size_t *n)
{
    dsv4_err e;
    if (dsv4_inventory_build(c, inv, &e))
        return NULL;
    dsv4_ct_module *m = calloc(inv->n, sizeof *m);
    *n = 0;
    for (size_t i = 0; i < inv->n; i++) {
        char *name = (char *)inv->t[i].name; /* pool memory: cut ".weight" in place */
        size_t l = strlen(name);
        if (l < 8 || strcmp(name + l - 7, ".weight"))
            continue;
        name[l - 7] = 0;
        if (dsv4_module_kind(name) == DSV4_MOD_OTHER)
            continue;
        const dsv4_recipe_group *g = inv->t[i].is_mtp ? NULL : dsv4_recipe_match(r, name);
        m[(*n)++] = (dsv4_ct_module){name, g ? (int)(g - r->groups) : -1};
    }
    return m;
}

TEST(ct_config_flash)
{
    dsv4_config c;
    dsv4_recipe r;
    dsv4_inventory inv;
    dsv4_err e;
    size_t n;
    json_t *qc;
    REQUIRE(dsv4_config_load(th_path(FLASH), &c, &e) == 0);
    REQUIRE(tp_recipe("recipes/w4a16-rtn.yaml", &r, &e) == 0);
    dsv4_ct_module *m = flash_mods(&c, &r, &inv, &n);
    REQUIRE(m);
    if (dsv4_ct_config_build(&r, &c, m, n, &qc, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
    } else {
        char *s = json_dumps(qc, JSON_COMPACT);
        CHECK_STR_CONTAINS(s, "layers\\\\.(\\\\d|[1-3]\\\\d|4[0-2])\\\\.attn\\\\.");
        free(s);
        TARGETED(qc, "model.layers.42.attn.fused_wqa_wkv", 0);
        TARGETED(qc, "model.layers.0.attn.wo_a", 0);
        TARGETED(qc, "model.layers.10.attn.wo_b", 0);
        TARGETED(qc, "model.layers.2.attn.indexer.wq_b", 0);
        TARGETED(qc, "model.layers.42.attn.indexer.wq_b", 0);
        absent(qc, "model.layers.3.attn.indexer.wq_b", __LINE__);
        TARGETED(qc, "model.layers.41.ffn.experts.255.w2", 1);
        TARGETED(qc, "model.layers.0.ffn.experts.0.gate_proj", 1);
        IGNORED(qc, "model.layers.10.attn.mla_attn.compressor.fused_wkv_wgate");
        IGNORED(qc, "model.layers.0.ffn.gate");
        absent(qc, "model.layers.0.attn.mla_attn.compressor.wkv", __LINE__);
        mtp_untouched(qc, 43, __LINE__);
        absent(qc, "model.layers.44.attn.wq_a", __LINE__);
        json_decref(qc);
    }
    /* Fused halves in different groups, a split MoE, a quantized head or MTP layer: refused. */
    for (size_t i = 0; i < n; i++)
        if (!strcmp(m[i].module, "layers.5.attn.wkv"))
            m[i].group = -1;
    CHECK(dsv4_ct_config_build(&r, &c, m, n, &qc, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "layers.5: vLLM fuses attn.fused_wqa_wkv (wq_a + wkv)");
    CHECK_STR_CONTAINS(e.msg, "recipe group 'attention' and unquantized");
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(m[i].module, "layers.5.attn.wkv"))
            m[i].group = 0;
        if (!strcmp(m[i].module, "layers.7.ffn.shared_experts.w3"))
            m[i].group = 1;
    }
    CHECK(dsv4_ct_config_build(&r, &c, m, n, &qc, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "layers.7: vLLM fuses ffn.shared_experts.gate_up_proj (w1 + w3)");
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(m[i].module, "layers.7.ffn.shared_experts.w3"))
            m[i].group = 0;
        if (!strcmp(m[i].module, "layers.9.ffn.experts.100.w2"))
            m[i].group = -1;
    }
    CHECK(dsv4_ct_config_build(&r, &c, m, n, &qc, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "layers.9.ffn.experts.100.w2");
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(m[i].module, "layers.9.ffn.experts.100.w2"))
            m[i].group = 1;
        if (!strcmp(m[i].module, "mtp.0.attn.wo_a"))
            m[i].group = 0;
    }
    CHECK(dsv4_ct_config_build(&r, &c, m, n, &qc, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "mtp.0.attn.wo_a' is quantized although the MTP policy keeps the MTP block out");
    free(m);
    dsv4_inventory_free(&inv);
    dsv4_recipe_free(&r);
}
