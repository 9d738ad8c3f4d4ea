/* llm-compressor recipes: the preset form, the preset mapping form and the config_groups form load
 * into groups; their transformers-named targets select the right release modules; everything we
 * would have to approximate is refused at its line and column. */
#include "harness.h"
#include "test_recipe_util.h"
#include "recipe/recipe.h"

#include <string.h>

static int parse(const char *y, dsv4_recipe *r)
{
    dsv4_err e;
    if (dsv4_recipe_parse(y, strlen(y), "l.yaml", r, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        return -1;
    }
    return 0;
}


TEST(llmc_preset_form)
{
    dsv4_recipe r;
    const char *y = "quant_stage:\n"
                    "  quant_modifiers:\n"
                    "    GPTQModifier:\n"
                    "      targets: [Linear]\n"
                    "      scheme: W4A16\n"
                    "      ignore: [lm_head, 're:.*self_attn.*', 're:.*shared_experts.*']\n"
                    "      dampening_frac: 0.1\n";
    REQUIRE(parse(y, &r) == 0);
    CHECK(r.llm_compressor);
    REQUIRE(r.n_groups == 1);
    CHECK_EQ_INT(r.groups[0].scheme, DSV4_SCHEME_W4A16);
    CHECK_EQ_INT(r.groups[0].method, DSV4_METHOD_GPTQ);
    CHECK_EQ_INT(r.groups[0].group_size, 128);
    CHECK(r.groups[0].dampening_frac == 0.1);
    CHECK(!strcmp(r.groups[0].actorder, "static"));
    CHECK_EQ_INT(r.n_ignore, 3);
    CHECK(dsv4_recipe_match(&r, "layers.1.ffn.experts.3.w2") == &r.groups[0]);
    CHECK(dsv4_recipe_match(&r, "mtp.0.ffn.experts.3.w2") == &r.groups[0]); /* the MTP policy decides later */
    CHECK(!dsv4_recipe_match(&r, "layers.1.attn.wq_a"));            /* self_attn.q_a_proj ignored */
    CHECK(!dsv4_recipe_match(&r, "layers.1.ffn.shared_experts.w1")); /* mlp.shared_experts.gate_proj ignored */
    CHECK(dsv4_recipe_ignored(&r, "head"));
    dsv4_recipe_free(&r);

    /* Default targets are Linear; QuantizationModifier is RTN. */
    const char *q = "default_stage:\n  default_modifiers:\n    QuantizationModifier: {scheme: NVFP4, ignore: [lm_head]}\n";
    REQUIRE(parse(q, &r) == 0);
    REQUIRE(r.n_groups == 1);
    CHECK_EQ_INT(r.groups[0].scheme, DSV4_SCHEME_NVFP4);
    CHECK_EQ_INT(r.groups[0].method, DSV4_METHOD_RTN);
    CHECK(!strcmp(r.groups[0].targets[0], "Linear"));
    dsv4_recipe_free(&r);
}

TEST(llmc_scheme_mapping_form)
{
    dsv4_recipe r;
    const char *y = "quant_stage:\n"
                    "  run_type: oneshot\n"
                    "  quant_modifiers:\n"
                    "    QuantizationModifier:\n"
                    "      scheme:\n"
                    "        FP8_BLOCK: ['re:.*self_attn\\.(q_a_proj|kv_proj)$']\n"
                    "        W4AFP8: ['re:.*mlp\\.experts\\.\\d+\\.(gate|up|down)_proj$']\n"
                    "      ignore: [lm_head]\n";
    REQUIRE(parse(y, &r) == 0);
    REQUIRE(r.n_groups == 2);
    CHECK(!strcmp(r.groups[0].name, "FP8_BLOCK"));
    CHECK_EQ_INT(r.groups[0].scheme, DSV4_SCHEME_FP8_BLOCK);
    CHECK_EQ_INT(r.groups[1].scheme, DSV4_SCHEME_W4AFP8);
    CHECK(dsv4_recipe_match(&r, "layers.0.attn.wkv") == &r.groups[0]);
    CHECK(!dsv4_recipe_match(&r, "layers.0.attn.wq_b"));
    CHECK(dsv4_recipe_match(&r, "layers.0.ffn.experts.0.w3") == &r.groups[1]);
    CHECK(!dsv4_recipe_match(&r, "layers.0.ffn.shared_experts.w3"));
    dsv4_recipe_free(&r);
}

TEST(llmc_config_groups_example)
{
    dsv4_recipe r;
    dsv4_err e;
    REQUIRE(dsv4_recipe_load(th_path("recipes/examples/llmcompressor-w4a16.yaml"), &r, &e) == 0);
    CHECK(r.llm_compressor);
    REQUIRE(r.n_groups == 2);
    CHECK(!strcmp(r.groups[0].name, "attention"));
    CHECK_EQ_INT(r.groups[0].scheme, DSV4_SCHEME_FP8_BLOCK);
    CHECK_EQ_INT(r.groups[0].method, DSV4_METHOD_RTN); /* FP8_BLOCK is data-free */
    CHECK_EQ_INT(r.groups[1].scheme, DSV4_SCHEME_W4A16);
    CHECK_EQ_INT(r.groups[1].method, DSV4_METHOD_RTN); /* QuantizationModifier: data-free */
    CHECK_EQ_INT(r.groups[1].group_size, 128);
    CHECK(!strcmp(r.groups[1].actorder, ""));
    CHECK(dsv4_recipe_match(&r, "layers.3.attn.indexer.wq_b") == &r.groups[0]);
    CHECK(dsv4_recipe_match(&r, "layers.3.attn.wq_b") == &r.groups[0]);
    CHECK(dsv4_recipe_match(&r, "layers.3.ffn.shared_experts.w2") == &r.groups[0]);
    CHECK(dsv4_recipe_match(&r, "layers.3.ffn.experts.9.w2") == &r.groups[1]);
    CHECK(!dsv4_recipe_match(&r, "layers.3.attn.compressor.wkv"));
    CHECK(!dsv4_recipe_match(&r, "mtp.0.attn.wq_a")); /* ignore 're:.*mtp.*' */
    dsv4_recipe_free(&r);
}

TEST(llmc_config_groups_args)
{
    dsv4_recipe r;
    const char *y = "s_stage:\n  m_modifiers:\n    GPTQModifier:\n"
                    "      actorder: weight\n"
                    "      config_groups:\n"
                    "        g:\n"
                    "          targets: [Linear]\n"
                    "          weights: {num_bits: 4, type: int, group_size: 64, symmetric: true, strategy: null,\n"
                    "                    observer: memoryless_minmax, observer_kwargs: {}, scale_dtype: null, zp_dtype: null}\n"
                    "          input_activations: null\n"
                    "          output_activations: null\n"
                    "          format: pack-quantized\n"
                    "        n:\n"
                    "          targets: ['re:.*experts.*']\n"
                    "          weights: {num_bits: 4, type: float, strategy: tensor_group, group_size: 16, actorder: null}\n"
                    "          input_activations: {num_bits: 4, type: float, strategy: tensor_group, group_size: 16,\n"
                    "                              dynamic: local, observer: static_minmax}\n"
                    "        f:\n"
                    "          targets: [x]\n"
                    "          weights: {num_bits: 8, type: float, strategy: block, block_structure: 128x128}\n";
    REQUIRE(parse(y, &r) == 0);
    REQUIRE(r.n_groups == 3);
    CHECK_EQ_INT(r.groups[0].scheme, DSV4_SCHEME_W4A16);
    CHECK_EQ_INT(r.groups[0].group_size, 64);
    CHECK(!strcmp(r.groups[0].actorder, "static"));
    CHECK(!strcmp(r.groups[0].observer, "minmax"));
    CHECK_EQ_INT(r.groups[1].scheme, DSV4_SCHEME_NVFP4);
    CHECK(!strcmp(r.groups[1].actorder, ""));
    CHECK(!strcmp(r.groups[1].observer, "minmax")); /* the input activations' observer is not the weights' */
    CHECK_EQ_INT(r.groups[2].scheme, DSV4_SCHEME_FP8_BLOCK);
    dsv4_recipe_free(&r);
    /* W4AFP8 through config_groups */
    const char *w = "s_stage:\n  m_modifiers:\n    QuantizationModifier:\n      config_groups:\n        g:\n"
                    "          targets: [Linear]\n"
                    "          weights: {num_bits: 4, type: int, strategy: group, group_size: 128}\n"
                    "          input_activations: {num_bits: 8, type: float, strategy: token, dynamic: true}\n";
    REQUIRE(parse(w, &r) == 0);
    CHECK_EQ_INT(r.groups[0].scheme, DSV4_SCHEME_W4AFP8);
    dsv4_recipe_free(&r);
    /* the weights' MSE observer, either name */
    static const char *const mse[] = {"mse", "memoryless_mse"};
    for (int i = 0; i < 2; i++) {
        char m[512];
        snprintf(m, sizeof m, "s_stage:\n  m_modifiers:\n    QuantizationModifier:\n      config_groups:\n"
                 "        g:\n          targets: [Linear]\n"
                 "          weights: {num_bits: 4, type: int, group_size: 128, observer: %s}\n", mse[i]);
        REQUIRE(parse(m, &r) == 0);
        CHECK(!strcmp(r.groups[0].observer, "mse"));
        dsv4_recipe_free(&r);
    }
}

TEST(llmc_refused)
{
    const char *head = "s_stage:\n  m_modifiers:\n";
    char y[1024];
#define WITH(body) (snprintf(y, sizeof y, "%s%s", head, body), y)
    REFUSED(WITH("    GPTQModifier: {scheme: W8A8}\n"), 3, 28, "preset 'W8A8' is not supported");
    REFUSED(WITH("    SmoothQuantModifier: {smoothing_strength: 0.8}\n"), 3, 5, "modifier 'SmoothQuantModifier'");
    REFUSED(WITH("    QuantizationModifier: {scheme: W4A16, dampening_frac: 0.1}\n"), 3, 59,
            "'dampening_frac' is a GPTQModifier argument");
    REFUSED(WITH("    GPTQModifier: {scheme: W4A16, block_size: 64}\n"), 3, 47, "128-column blocks");
    REFUSED(WITH("    GPTQModifier: {scheme: W4A16, actorder: group}\n"), 3, 45, "actorder group");
    REFUSED(WITH("    GPTQModifier:\n      config_groups:\n        g:\n          targets: [x]\n"
                 "          weights: {num_bits: 4, type: int, group_size: 128, observer: imatrix_mse}\n"),
            7, 72, "'imatrix_mse' is not supported");
    REFUSED(WITH("    GPTQModifier: {scheme: W4A16, kv_cache_scheme: {num_bits: 8}}\n"), 3, 52, "KV-cache");
    REFUSED(WITH("    GPTQModifier: {targets: [Linear]}\n"), 3, 19, "needs 'scheme' or 'config_groups'");
    REFUSED(WITH("    GPTQModifier: {scheme: W4A16, mappings: []}\n"), 3, 35, "unknown key 'mappings'");
    REFUSED(WITH("    GPTQModifier:\n      config_groups:\n        g:\n          targets: [x]\n"
                 "          weights: {num_bits: 4, type: int, group_size: 128, symmetric: false}\n"),
            7, 20, "asymmetric");
    REFUSED(WITH("    GPTQModifier:\n      config_groups:\n        g:\n          targets: [x]\n"
                 "          weights: {num_bits: 8, type: float, strategy: block, block_structure: [64, 64]}\n"),
            7, 81, "only [128, 128] blocks");
    REFUSED(WITH("    GPTQModifier:\n      config_groups:\n        g:\n          targets: [x]\n"
                 "          weights: {num_bits: 8, type: int, strategy: channel}\n"),
            7, 20, "unsupported QuantizationArgs");
    REFUSED(WITH("    GPTQModifier:\n      config_groups:\n        g:\n          targets: [x]\n"
                 "          weights: {num_bits: 4, type: int, group_size: 128, zero_point: 0}\n"),
            7, 62, "unknown key 'zero_point'");
    REFUSED(WITH("    GPTQModifier:\n      config_groups:\n        g:\n          targets: [x]\n"
                 "          weights: {num_bits: 4, type: int, group_size: 128}\n"
                 "          input_activations: {num_bits: 8, type: int, strategy: token, dynamic: true}\n"),
            8, 30, "int4 weights pair with");
    REFUSED(WITH("    GPTQModifier:\n      config_groups:\n        g:\n          weights: {num_bits: 4, group_size: 128}\n"),
            6, 11, "'targets' is required");
    REFUSED(WITH("    GPTQModifier:\n      config_groups:\n        g:\n          targets: [x]\n"
                 "          weights: {num_bits: 4, group_size: 128}\n          output_activations: {num_bits: 8}\n"),
            8, 31, "output_activations: only null");
    REFUSED("quant_stage:\n  quant_modifiers: {GPTQModifier: {scheme: W4A16}}\nextra: 1\n", 3, 1,
            "unknown key 'extra'");
    REFUSED("quant_stage:\n  quant_things: {}\n", 2, 3, "expected <name>_modifiers");
    REFUSED("quant_stage:\n  quant_modifiers: {}\n", 1, 1, "no quantization modifier");
#undef WITH
}
