/* Release <-> transformers name maps: every name of the Flash inventory maps to transformers and
 * back to itself (experts through the fused representation), the spec tables' examples, the older
 * and linearized transformers names, and clear "no mapping" results. */
#include "harness.h"
#include "model/inventory.h"
#include "model/names.h"

#include <stdlib.h>
#include <string.h>

#define FLASH "fixtures/configs/deepseek-v4-flash.config.json"

/* From test_config_util.c. */
const char *tcfg_patch(const char *rel, const char *patch, dsv4_config *c);

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

TEST(names_flash_inventory_round_trips)
{
    dsv4_config c;
    dsv4_err e;
    dsv4_inventory inv;
    REQUIRE(!*tcfg_patch(FLASH, NULL, &c));
    REQUIRE(dsv4_inventory_build(&c, &inv, &e) == 0);
    char **hf = malloc(inv.n * sizeof *hf);
    size_t n_direct = 0, n_fused = 0, n_no_hf = 0;
    for (size_t i = 0; i < inv.n; i++) {
        const dsv4_inv_tensor *t = &inv.t[i];
        dsv4_name_map m, b;
        dsv4_map_kind k = dsv4_name_to_hf(t->name, &c, &m);
        if (t->is_mtp) {
            CHECK_MSG(k == DSV4_MAP_NO_HF, "%s: %s", t->name, dsv4_map_kind_name(k));
            n_no_hf++;
        } else if (t->role == DSV4_ROLE_ROUTED_EXPERT ||
                   (t->role == DSV4_ROLE_SCALE && t->scale_of == DSV4_ROLE_ROUTED_EXPERT)) {
            CHECK_MSG(k == DSV4_MAP_FUSED, "%s: %s", t->name, dsv4_map_kind_name(k));
            CHECK_EQ_INT(m.expert, t->expert);
            CHECK_EQ_INT(m.row_end - m.row_begin, t->shape[0]);
            dsv4_map_kind kb = dsv4_name_from_hf_fused(m.name, m.expert, m.row_begin, &c, &b);
            CHECK_MSG(kb == DSV4_MAP_DIRECT && !strcmp(b.name, t->name), "%s -> %s[%d, %lld] -> %s (%s)", t->name,
                      m.name, m.expert, (long long)m.row_begin, b.name, b.note);
            kb = dsv4_name_from_hf_fused(m.name, m.expert, m.row_end - 1, &c, &b);
            CHECK_MSG(kb == DSV4_MAP_DIRECT && !strcmp(b.name, t->name), "%s: last row maps to %s", t->name, b.name);
            CHECK_EQ_INT(dsv4_name_from_hf(m.name, &b), DSV4_MAP_SPLIT);
            n_fused++;
        } else {
            CHECK_MSG(k == DSV4_MAP_DIRECT, "%s: %s (%s)", t->name, dsv4_map_kind_name(k), m.note);
            dsv4_map_kind kb = dsv4_name_from_hf(m.name, &b);
            CHECK_MSG(kb == DSV4_MAP_DIRECT && !strcmp(b.name, t->name), "%s -> %s -> %s (%s)", t->name, m.name,
                      b.name, b.note);
            hf[n_direct++] = strdup(m.name);
        }
        if (th_failures() > 20)
            break;
    }
    CHECK_EQ_INT(n_no_hf, 1575);
    CHECK_EQ_INT(n_fused, 43 * 256 * 6);
    CHECK_EQ_INT(n_direct + n_fused + n_no_hf, 69187);
    qsort(hf, n_direct, sizeof *hf, cmp_str);
    for (size_t i = 1; i < n_direct; i++)
        CHECK_MSG(strcmp(hf[i - 1], hf[i]), "two release names map to %s", hf[i]);
    for (size_t i = 0; i < n_direct; i++)
        free(hf[i]);
    free(hf);
    dsv4_inventory_free(&inv);
}

static void to_hf(const char *rel, const char *want)
{
    dsv4_name_map m, b;
    dsv4_map_kind k = dsv4_name_to_hf(rel, NULL, &m);
    if (k != DSV4_MAP_DIRECT || strcmp(m.name, want))
        th_fail(__FILE__, __LINE__, "%s -> %s %s, expected %s", rel, dsv4_map_kind_name(k), m.name, want);
    k = dsv4_name_from_hf(want, &b);
    if (k != DSV4_MAP_DIRECT || strcmp(b.name, rel))
        th_fail(__FILE__, __LINE__, "%s -> %s %s, expected %s", want, dsv4_map_kind_name(k), b.name, rel);
}

TEST(names_spec_table_examples)
{
    to_hf("embed.weight", "model.embed_tokens.weight");
    to_hf("head.weight", "lm_head.weight");
    to_hf("norm.weight", "model.norm.weight");
    to_hf("hc_head_fn", "model.hc_head.hc_fn");
    to_hf("hc_head_base", "model.hc_head.hc_base");
    to_hf("hc_head_scale", "model.hc_head.hc_scale");
    to_hf("layers.0.attn_norm.weight", "model.layers.0.input_layernorm.weight");
    to_hf("layers.12.ffn_norm.weight", "model.layers.12.post_attention_layernorm.weight");
    to_hf("layers.3.hc_attn_fn", "model.layers.3.attn_hc.fn");
    to_hf("layers.3.hc_ffn_scale", "model.layers.3.ffn_hc.scale");
    to_hf("layers.3.attn.attn_sink", "model.layers.3.self_attn.sinks");
    to_hf("layers.3.attn.wq_a.weight", "model.layers.3.self_attn.q_a_proj.weight");
    to_hf("layers.3.attn.wq_a.scale", "model.layers.3.self_attn.q_a_proj.weight_scale_inv");
    to_hf("layers.3.attn.q_norm.weight", "model.layers.3.self_attn.q_a_norm.weight");
    to_hf("layers.3.attn.wq_b.weight", "model.layers.3.self_attn.q_b_proj.weight");
    to_hf("layers.3.attn.wkv.scale", "model.layers.3.self_attn.kv_proj.weight_scale_inv");
    to_hf("layers.3.attn.kv_norm.weight", "model.layers.3.self_attn.kv_norm.weight");
    to_hf("layers.3.attn.wo_a.weight", "model.layers.3.self_attn.o_a_proj.weight");
    to_hf("layers.3.attn.wo_b.scale", "model.layers.3.self_attn.o_b_proj.weight_scale_inv");
    to_hf("layers.3.attn.compressor.wkv.weight", "model.layers.3.self_attn.compressor.kv_proj.weight");
    to_hf("layers.3.attn.compressor.wgate.weight", "model.layers.3.self_attn.compressor.gate_proj.weight");
    to_hf("layers.3.attn.compressor.norm.weight", "model.layers.3.self_attn.compressor.kv_norm.weight");
    to_hf("layers.3.attn.compressor.ape", "model.layers.3.self_attn.compressor.position_bias");
    to_hf("layers.2.attn.indexer.wq_b.weight", "model.layers.2.self_attn.compressor.indexer.q_b_proj.weight");
    to_hf("layers.2.attn.indexer.wq_b.scale",
          "model.layers.2.self_attn.compressor.indexer.q_b_proj.weight_scale_inv");
    to_hf("layers.2.attn.indexer.weights_proj.weight",
          "model.layers.2.self_attn.compressor.indexer.scorer.weights_proj.weight");
    to_hf("layers.2.attn.indexer.compressor.wkv.weight", "model.layers.2.self_attn.compressor.indexer.kv_proj.weight");
    to_hf("layers.2.attn.indexer.compressor.wgate.weight",
          "model.layers.2.self_attn.compressor.indexer.gate_proj.weight");
    to_hf("layers.2.attn.indexer.compressor.norm.weight", "model.layers.2.self_attn.compressor.indexer.kv_norm.weight");
    to_hf("layers.2.attn.indexer.compressor.ape", "model.layers.2.self_attn.compressor.indexer.position_bias");
    to_hf("layers.42.ffn.gate.weight", "model.layers.42.mlp.gate.weight");
    to_hf("layers.42.ffn.gate.bias", "model.layers.42.mlp.gate.e_score_correction_bias");
    to_hf("layers.0.ffn.gate.tid2eid", "model.layers.0.mlp.gate.tid2eid");
    to_hf("layers.5.ffn.shared_experts.w1.weight", "model.layers.5.mlp.shared_experts.gate_proj.weight");
    to_hf("layers.5.ffn.shared_experts.w3.scale", "model.layers.5.mlp.shared_experts.up_proj.weight_scale_inv");
    to_hf("layers.5.ffn.shared_experts.w2.weight", "model.layers.5.mlp.shared_experts.down_proj.weight");
}

TEST(names_experts_fused_and_linearized)
{
    dsv4_config c;
    REQUIRE(!*tcfg_patch(FLASH, NULL, &c));
    dsv4_name_map m;
    CHECK_EQ_INT(dsv4_name_to_hf("layers.4.ffn.experts.17.w1.weight", &c, &m), DSV4_MAP_FUSED);
    CHECK(!strcmp(m.name, "model.layers.4.mlp.experts.gate_up_proj"));
    CHECK(m.expert == 17 && m.row_begin == 0 && m.row_end == 2048);
    CHECK_EQ_INT(dsv4_name_to_hf("layers.4.ffn.experts.17.w3.weight", &c, &m), DSV4_MAP_FUSED);
    CHECK(m.row_begin == 2048 && m.row_end == 4096);
    CHECK_EQ_INT(dsv4_name_to_hf("layers.4.ffn.experts.17.w2.weight", &c, &m), DSV4_MAP_FUSED);
    CHECK(!strcmp(m.name, "model.layers.4.mlp.experts.down_proj"));
    CHECK(m.row_begin == 0 && m.row_end == 4096);
    CHECK_EQ_INT(dsv4_name_to_hf("layers.4.ffn.experts.17.w3.scale", &c, &m), DSV4_MAP_FUSED);
    CHECK(!strcmp(m.name, "model.layers.4.mlp.experts.gate_up_proj_scale_inv"));
    CHECK(m.row_begin == 2048 && m.row_end == 4096); /* FP4 scales have one row per output row */
    CHECK_EQ_INT(dsv4_name_to_hf("layers.4.ffn.experts.17.w3.weight", NULL, &m), DSV4_MAP_FUSED);
    CHECK(m.row_begin == -1 && m.row_end == -1);
    dsv4_config c8;
    REQUIRE(!*tcfg_patch(FLASH, "{\"expert_dtype\": \"fp8\"}", &c8));
    CHECK_EQ_INT(dsv4_name_to_hf("layers.4.ffn.experts.17.w3.scale", &c8, &m), DSV4_MAP_FUSED);
    CHECK(m.row_begin == 16 && m.row_end == 32); /* FP8 block scales: one row per 128 output rows */
    CHECK_EQ_INT(dsv4_name_from_hf_fused("model.layers.4.mlp.experts.gate_up_proj_scale_inv", 3, 20, &c8, &m),
                 DSV4_MAP_DIRECT);
    CHECK(!strcmp(m.name, "layers.4.ffn.experts.3.w3.scale"));
    CHECK_EQ_INT(dsv4_name_from_hf_fused("model.layers.4.mlp.experts.gate_up_proj", 3, 4096, &c, &m), DSV4_MAP_NONE);
    CHECK_STR_CONTAINS(m.note, "row 4096 is outside [0, 4096)");
    CHECK_EQ_INT(dsv4_name_from_hf_fused("model.layers.4.mlp.experts.down_proj", 256, 0, &c, &m), DSV4_MAP_NONE);
    CHECK_STR_CONTAINS(m.note, "expert 256 is outside [0, 256)");
    CHECK_EQ_INT(dsv4_name_from_hf_fused("model.layers.4.mlp.experts.down_proj", 0, 0, NULL, &m), DSV4_MAP_NONE);
    CHECK_STR_CONTAINS(m.note, "needs the config");
    CHECK_EQ_INT(dsv4_name_from_hf_fused("model.layers.4.mlp.gate.weight", 0, 0, &c, &m), DSV4_MAP_NONE);
    CHECK_EQ_INT(dsv4_name_from_hf("model.layers.4.mlp.experts.gate_up_proj", &m), DSV4_MAP_SPLIT);
    CHECK(!strcmp(m.name, "layers.4.ffn.experts"));
    CHECK_STR_CONTAINS(m.note, "layers.4.ffn.experts.E.w1.weight");
    /* llm-compressor's linearize_moe names. */
    CHECK_EQ_INT(dsv4_name_from_hf("model.layers.9.mlp.experts.200.gate_proj.weight", &m), DSV4_MAP_DIRECT);
    CHECK(!strcmp(m.name, "layers.9.ffn.experts.200.w1.weight"));
    CHECK_EQ_INT(dsv4_name_from_hf("model.layers.9.mlp.experts.200.up_proj.weight_scale_inv", &m), DSV4_MAP_DIRECT);
    CHECK(!strcmp(m.name, "layers.9.ffn.experts.200.w3.scale"));
    CHECK_EQ_INT(dsv4_name_from_hf("model.layers.9.mlp.experts.0.down_proj.weight", &m), DSV4_MAP_DIRECT);
    CHECK(!strcmp(m.name, "layers.9.ffn.experts.0.w2.weight"));
    CHECK_EQ_INT(dsv4_name_from_hf("model.layers.9.mlp.experts.0.down_proj.weight_packed", &m), DSV4_MAP_NONE);
}

TEST(names_aliases_mtp_and_unknowns)
{
    dsv4_name_map m;
    /* The older (< 5.10.1) indexer weights_proj name is accepted on input. */
    CHECK_EQ_INT(dsv4_name_from_hf("model.layers.2.self_attn.compressor.indexer.weights_proj.weight", &m),
                 DSV4_MAP_DIRECT);
    CHECK(!strcmp(m.name, "layers.2.attn.indexer.weights_proj.weight"));
    /* mtp.* has no transformers name; MTP-aware HF names map back. */
    CHECK_EQ_INT(dsv4_name_to_hf("mtp.0.attn.wq_a.weight", NULL, &m), DSV4_MAP_NO_HF);
    CHECK_STR_CONTAINS(m.note, "transformers has no MTP block");
    CHECK_EQ_INT(dsv4_name_to_hf("mtp.0.e_proj.scale", NULL, &m), DSV4_MAP_NO_HF);
    CHECK_EQ_INT(dsv4_name_to_hf("mtp.0.ffn.experts.3.w2.scale", NULL, &m), DSV4_MAP_NO_HF);
    CHECK_EQ_INT(dsv4_name_to_hf("mtp.0.bogus", NULL, &m), DSV4_MAP_NONE);
    CHECK_EQ_INT(dsv4_name_from_hf("model.mtp.0.self_attn.q_a_proj.weight", &m), DSV4_MAP_DIRECT);
    CHECK(!strcmp(m.name, "mtp.0.attn.wq_a.weight"));
    CHECK_EQ_INT(dsv4_name_from_hf("model.mtp.0.e_proj.weight", &m), DSV4_MAP_DIRECT);
    CHECK(!strcmp(m.name, "mtp.0.e_proj.weight"));
    CHECK_EQ_INT(dsv4_name_from_hf("model.mtp.0.mlp.experts.5.up_proj.weight", &m), DSV4_MAP_DIRECT);
    CHECK(!strcmp(m.name, "mtp.0.ffn.experts.5.w3.weight"));
    CHECK_EQ_INT(dsv4_name_from_hf("model.layers.0.e_proj.weight", &m), DSV4_MAP_NONE);
    /* Unknown names. */
    const char *bad_rel[] = {"layers.01.attn.wq_a.weight", "layers.3.attn.wq_a", "layers.3.attn.wq_a.bias",
                             "layers.3.attn_norm.scale", "layers.3.ffn.experts.1.w4.weight", "layers.x.attn_norm.weight",
                             "model.layers.3.self_attn.q_a_proj.weight", "layers.3.hc_attn_fn.weight", "", "layers.",
                             "layers.3.ffn.experts.01.w1.weight", "layers.99999999.attn_norm.weight"};
    for (size_t i = 0; i < sizeof bad_rel / sizeof *bad_rel; i++) {
        CHECK_MSG(dsv4_name_to_hf(bad_rel[i], NULL, &m) == DSV4_MAP_NONE, "%s maps to %s", bad_rel[i], m.name);
        CHECK(m.note[0] != 0);
    }
    const char *bad_hf[] = {"layers.3.attn.wq_a.weight", "model.layers.3.self_attn.wq_a.weight",
                            "model.layers.3.self_attn.q_a_proj.scale", "embed.weight", "model.lm_head.weight",
                            "model.layers.3.mlp.experts.gate_up_proj.weight", "model.layers.3.input_layernorm.weight_scale_inv"};
    for (size_t i = 0; i < sizeof bad_hf / sizeof *bad_hf; i++) {
        CHECK_MSG(dsv4_name_from_hf(bad_hf[i], &m) == DSV4_MAP_NONE, "%s maps to %s", bad_hf[i], m.name);
        CHECK(m.note[0] != 0);
    }
    CHECK_EQ_INT(dsv4_name_to_hf("layers.3.attn.wq_a.bias", NULL, &m), DSV4_MAP_NONE);
    CHECK_STR_CONTAINS(m.note, "no transformers name");
    CHECK(!strcmp(dsv4_map_kind_name(DSV4_MAP_FUSED), "fused"));
}
