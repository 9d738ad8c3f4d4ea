/* Config parsing: the three fixture configs, the transformers key style, agreement between the two
 * styles, and refusals that name the file, the key and the expected value. */
#include "harness.h"
#include "model/config.h"

#include <stdlib.h>
#include <string.h>

#define TINY "fixtures/dsv4-tiny/config.json"
#define FLASH "fixtures/configs/deepseek-v4-flash.config.json"
#define PRO "fixtures/configs/deepseek-v4-pro.config.json"

/* From test_config_util.c. */
const char *tcfg_patch(const char *rel, const char *patch, dsv4_config *c);
const char *tcfg_transformers(const char *rel, const char *patch, dsv4_config *c);

TEST(config_flash_release_keys)
{
    dsv4_config c;
    dsv4_err e;
    int rc = dsv4_config_load(th_path(FLASH), &c, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    REQUIRE(rc == 0);
    CHECK_EQ_INT(c.key_style, DSV4_KEYS_RELEASE);
    CHECK_EQ_INT(c.vocab_size, 129280);
    CHECK_EQ_INT(c.hidden_size, 4096);
    CHECK_EQ_INT(c.n_layers, 43);
    CHECK_EQ_INT(c.n_mtp, 1);
    CHECK_EQ_INT(c.n_heads, 64);
    CHECK_EQ_INT(c.head_dim, 512);
    CHECK_EQ_INT(c.rope_head_dim, 64);
    CHECK_EQ_INT(c.q_lora_rank, 1024);
    CHECK_EQ_INT(c.o_groups, 8);
    CHECK_EQ_INT(c.o_lora_rank, 1024);
    CHECK_EQ_INT(c.index_n_heads, 64);
    CHECK_EQ_INT(c.index_head_dim, 128);
    CHECK_EQ_INT(c.index_topk, 512);
    CHECK_EQ_INT(c.n_routed_experts, 256);
    CHECK_EQ_INT(c.n_shared_experts, 1);
    CHECK_EQ_INT(c.n_activated_experts, 6);
    CHECK_EQ_INT(c.moe_inter_dim, 2048);
    CHECK_EQ_INT(c.n_hash_layers, 3);
    CHECK_EQ_INT(c.hc_mult, 4);
    CHECK_EQ_INT(c.hc_sinkhorn_iters, 20);
    CHECK_EQ_INT(dsv4_config_mix_hc(&c), 24);
    CHECK_EQ_INT(dsv4_config_hc_dim(&c), 16384);
    CHECK(c.hc_eps == 1e-6 && c.rms_eps == 1e-6);
    CHECK_EQ_INT(c.window, 128);
    CHECK(c.rope_theta == 10000 && c.compress_rope_theta == 160000);
    CHECK(c.has_yarn && c.yarn_factor == 16 && c.yarn_beta_fast == 32 && c.yarn_beta_slow == 1);
    CHECK_EQ_INT(c.yarn_orig_max_pos, 65536);
    CHECK(c.route_scale == 1.5 && c.swiglu_limit == 10.0);
    CHECK_EQ_INT(c.score_func, DSV4_SCORE_SQRTSOFTPLUS);
    CHECK_EQ_INT(c.expert_fmt, DSV4_EXPERTS_FP4);
    CHECK(c.expert_dtype_given);
    CHECK(!c.tie_word_embeddings);
    CHECK(!strcmp(c.torch_dtype, "bfloat16"));
    CHECK(!strcmp(c.quant_method, "fp8"));
    int swa = 0, csa = 0, hca = 0;
    for (int i = 0; i < 43; i++) {
        dsv4_attn_type t = dsv4_config_attn(&c, i);
        swa += t == DSV4_ATTN_SWA;
        csa += t == DSV4_ATTN_CSA;
        hca += t == DSV4_ATTN_HCA;
        CHECK_EQ_INT(c.is_hash[i], i < 3);
    }
    CHECK_EQ_INT(swa, 2);
    CHECK_EQ_INT(csa, 21);
    CHECK_EQ_INT(hca, 20);
    CHECK_EQ_INT(dsv4_config_attn(&c, 2), DSV4_ATTN_CSA);
    CHECK_EQ_INT(dsv4_config_attn(&c, 3), DSV4_ATTN_HCA);
    CHECK_EQ_INT(dsv4_config_attn(&c, 43), DSV4_ATTN_SWA);
    CHECK_EQ_INT(c.is_hash[43], 0);
    CHECK(!strcmp(dsv4_attn_type_name(DSV4_ATTN_HCA), "heavily_compressed_attention"));
    CHECK(!strcmp(dsv4_key_style_name(c.key_style), "release"));
}

TEST(config_pro_and_tiny)
{
    dsv4_config c;
    dsv4_err e;
    int rc = dsv4_config_load(th_path(PRO), &c, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    REQUIRE(rc == 0);
    CHECK_EQ_INT(c.n_layers, 61);
    CHECK_EQ_INT(c.hidden_size, 7168);
    CHECK_EQ_INT(dsv4_config_attn(&c, 0), DSV4_ATTN_HCA);
    CHECK_EQ_INT(dsv4_config_attn(&c, 1), DSV4_ATTN_HCA);
    CHECK_EQ_INT(dsv4_config_attn(&c, 61), DSV4_ATTN_SWA);
    CHECK(c.route_scale == 2.5);
    rc = dsv4_config_load(th_path("fixtures/dsv4-tiny"), &c, &e); /* a folder: reads its config.json */
    CHECK_MSG(rc == 0, "%s", e.msg);
    REQUIRE(rc == 0);
    CHECK_EQ_INT(c.n_layers, 4);
    CHECK_EQ_INT(c.n_hash_layers, 2);
    int want[5] = {0, 4, 128, 4, 0};
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(c.compress_ratio[i], want[i]);
    CHECK_STR_CONTAINS(c.path, "dsv4-tiny/config.json");
}

static int same_config(const dsv4_config *a, const dsv4_config *b)
{
    int n = a->n_layers + a->n_mtp;
    return a->n_layers == b->n_layers && a->n_mtp == b->n_mtp && a->hidden_size == b->hidden_size &&
           a->rope_head_dim == b->rope_head_dim && a->n_hash_layers == b->n_hash_layers &&
           a->rope_theta == b->rope_theta && a->compress_rope_theta == b->compress_rope_theta &&
           a->has_yarn == b->has_yarn && a->yarn_factor == b->yarn_factor &&
           a->yarn_orig_max_pos == b->yarn_orig_max_pos && a->yarn_beta_fast == b->yarn_beta_fast &&
           a->yarn_beta_slow == b->yarn_beta_slow && !strcmp(a->torch_dtype, b->torch_dtype) &&
           !memcmp(a->compress_ratio, b->compress_ratio, (size_t)n * sizeof *a->compress_ratio) &&
           !memcmp(a->is_hash, b->is_hash, (size_t)n);
}

TEST(config_transformers_style_equals_release)
{
    const char *fix[3] = {TINY, FLASH, PRO};
    for (int i = 0; i < 3; i++) {
        dsv4_config r, t;
        CHECK_STR_CONTAINS(tcfg_patch(fix[i], NULL, &r), "");
        const char *m = tcfg_transformers(fix[i], NULL, &t);
        CHECK_MSG(!*m, "%s: %s", fix[i], m);
        CHECK_EQ_INT(t.key_style, DSV4_KEYS_TRANSFORMERS);
        CHECK_MSG(same_config(&r, &t), "%s: transformers-style parse differs", fix[i]);
        CHECK_EQ_INT(t.compress_ratio[t.n_layers], 0); /* MTP: sliding */
    }
    /* The flat rope_parameters form (rope_scaling standardised, no main/compress split). */
    dsv4_config t, r;
    tcfg_patch(FLASH, NULL, &r);
    const char *m = tcfg_transformers(FLASH, "{\"rope_parameters\": {\"rope_type\": \"yarn\", \"factor\": 16, "
                                             "\"original_max_position_embeddings\": 65536, \"beta_fast\": 32, "
                                             "\"beta_slow\": 1, \"rope_theta\": 10000}, \"compress_rope_theta\": 160000}",
                                      &t);
    CHECK_MSG(!*m, "%s", m);
    CHECK(same_config(&r, &t));
}

TEST(config_both_styles_agree_or_fail)
{
    dsv4_config c;
    /* Both styles together, agreeing: accepted. */
    const char *m = tcfg_transformers(FLASH, "{\"compress_ratios\": [0,0,4,128,4,128,4,128,4,128,4,128,4,128,4,128,4,"
                                             "128,4,128,4,128,4,128,4,128,4,128,4,128,4,128,4,128,4,128,4,128,4,128,4,"
                                             "128,4,0], \"num_hash_layers\": 3, \"qk_rope_head_dim\": 64, "
                                             "\"rope_scaling\": {\"type\": \"yarn\", \"factor\": 16, "
                                             "\"original_max_position_embeddings\": 65536, \"beta_fast\": 32, "
                                             "\"beta_slow\": 1}, \"torch_dtype\": \"bfloat16\"}",
                                      &c);
    CHECK_MSG(!*m, "%s", m);
    CHECK_EQ_INT(c.key_style, DSV4_KEYS_RELEASE | DSV4_KEYS_TRANSFORMERS);
    /* Disagreements name both keys. */
    m = tcfg_transformers(TINY, "{\"compress_ratios\": [0, 4, 4, 4, 0]}", &c);
    CHECK_STR_CONTAINS(m, "fixtures/dsv4-tiny/config.json: \"compress_ratios[2]\" = 4 disagrees with "
                          "\"layer_types[2]\" = \"heavily_compressed_attention\" (rate 128)");
    m = tcfg_transformers(TINY, "{\"num_hash_layers\": 1}", &c);
    CHECK_STR_CONTAINS(m, "\"mlp_layer_types[1]\" = \"hash_moe\" disagrees with \"num_hash_layers\" = 1");
    m = tcfg_transformers(TINY, "{\"qk_rope_head_dim\": 32}", &c);
    CHECK_STR_CONTAINS(m, "\"qk_rope_head_dim\" = 32 disagrees with \"partial_rotary_factor\" = 0.5");
    m = tcfg_transformers(TINY, "{\"rope_theta\": 50000}", &c);
    CHECK_STR_CONTAINS(m, "\"rope_theta\" = 50000 disagrees with \"rope_parameters.main.rope_theta\" = 10000");
    m = tcfg_transformers(TINY, "{\"compress_rope_theta\": 1}", &c);
    CHECK_STR_CONTAINS(m, "\"compress_rope_theta\" = 1 disagrees with \"rope_parameters.compress.rope_theta\"");
    m = tcfg_transformers(TINY, "{\"rope_scaling\": {\"type\": \"yarn\", \"factor\": 8, "
                                "\"original_max_position_embeddings\": 65536}}", &c);
    CHECK_STR_CONTAINS(m, "\"rope_scaling.factor\" = 8 disagrees with \"rope_parameters.compress.factor\" = 16");
    m = tcfg_transformers(TINY, "{\"compress_rate_hca\": 64}", &c);
    CHECK_STR_CONTAINS(m, "\"compress_rate_hca\" = 64 disagrees with \"compress_rates.heavily_compressed_attention\" = 128");
    m = tcfg_patch(TINY, "{\"compress_rates\": {\"compressed_sparse_attention\": 4, "
                         "\"heavily_compressed_attention\": 64}}", &c);
    CHECK_STR_CONTAINS(m, "\"compress_ratios[2]\" = 128 disagrees with the heavily_compressed_attention rate 64");
    m = tcfg_transformers(TINY, "{\"torch_dtype\": \"float32\"}", &c);
    CHECK_STR_CONTAINS(m, "\"torch_dtype\" = \"float32\" disagrees with \"dtype\" = \"bfloat16\"");
}

TEST(config_schedule_refusals)
{
    dsv4_config c;
    const char *m = tcfg_patch(TINY, "{\"compress_ratios\": null}", &c);
    CHECK_STR_CONTAINS(m, "fixtures/dsv4-tiny/config.json: neither \"compress_ratios\" nor \"layer_types\" is present");
    m = tcfg_patch(TINY, "{\"compress_ratios\": [0, 4, 128, 4]}", &c);
    CHECK_STR_CONTAINS(m, "\"compress_ratios\" = [0,4,128,4]: expected an array of num_hidden_layers + "
                          "num_nextn_predict_layers = 4 + 1 = 5 integers");
    m = tcfg_patch(TINY, "{\"compress_ratios\": [0, 4, 128, 4, 4]}", &c);
    CHECK_STR_CONTAINS(m, "\"compress_ratios[4]\" = 4 is the ratio of MTP layer 0: expected 0");
    m = tcfg_patch(TINY, "{\"compress_ratios\": [0, 4, -1, 4, 0]}", &c);
    CHECK_STR_CONTAINS(m, "\"compress_ratios[2]\" = -1: expected an integer in [0, 65536]");
    m = tcfg_patch(TINY, "{\"num_hash_layers\": null}", &c);
    CHECK_STR_CONTAINS(m, "neither \"num_hash_layers\" nor \"mlp_layer_types\"");
    m = tcfg_patch(TINY, "{\"num_hash_layers\": 5}", &c);
    CHECK_STR_CONTAINS(m, "\"num_hash_layers\" = 5: expected an integer in [0, num_hidden_layers = 4]");
    m = tcfg_transformers(TINY, "{\"layer_types\": [\"sliding_attention\", \"compressed_sparse_attention\", "
                                "\"heavily_compressed_attention\", \"compressed_sparse_attention\", "
                                "\"sliding_attention\"]}", &c);
    CHECK_STR_CONTAINS(m, "expected an array of num_hidden_layers = 4 layer types (transformers' layer_types has no "
                          "MTP entries)");
    m = tcfg_transformers(TINY, "{\"layer_types\": [\"sliding_attention\", \"csa\", \"sliding_attention\", "
                                "\"sliding_attention\"]}", &c);
    CHECK_STR_CONTAINS(m, "\"layer_types[1]\" = \"csa\": expected \"sliding_attention\"");
    m = tcfg_transformers(TINY, "{\"compress_rates\": {\"compressed_sparse_attention\": 8, "
                                "\"heavily_compressed_attention\": 128}}", &c);
    CHECK_STR_CONTAINS(m, "sets the compressed_sparse_attention rate to 8: expected 4");
    /* An HCA ratio other than 128 is fine in release keys (any ratio other than 4 is HCA). */
    m = tcfg_patch(TINY, "{\"compress_ratios\": [0, 4, 16, 4, 0]}", &c);
    CHECK_MSG(!*m, "%s", m);
    CHECK_EQ_INT(dsv4_config_attn(&c, 2), DSV4_ATTN_HCA);
    /* ... and in transformers keys through compress_rates. */
    m = tcfg_transformers(TINY, "{\"compress_rates\": {\"compressed_sparse_attention\": 4, "
                                "\"heavily_compressed_attention\": 16}}", &c);
    CHECK_MSG(!*m, "%s", m);
    CHECK_EQ_INT(c.compress_ratio[2], 16);
    /* transformers-only: MTP layers are sliding, non-hash, whatever the last layer is. */
    m = tcfg_transformers(TINY, "{\"num_nextn_predict_layers\": 2}", &c);
    CHECK_MSG(!*m, "%s", m);
    CHECK_EQ_INT(c.compress_ratio[4] + c.compress_ratio[5] + c.is_hash[4] + c.is_hash[5], 0);
    /* Non-prefix hash layers are representable through mlp_layer_types. */
    m = tcfg_transformers(TINY, "{\"mlp_layer_types\": [\"moe\", \"hash_moe\", \"moe\", \"moe\"]}", &c);
    CHECK_MSG(!*m, "%s", m);
    CHECK(!c.is_hash[0] && c.is_hash[1] && c.n_hash_layers == 1);
}

TEST(config_constraint_refusals)
{
    dsv4_config c;
    struct { const char *patch, *want; } cases[] = {
        {"{\"hidden_size\": 320}", "\"hidden_size\" = 320: expected a multiple of 128"},
        {"{\"q_lora_rank\": 96}", "\"q_lora_rank\" = 96: expected an integer in [128, 65536]"},
        {"{\"moe_intermediate_size\": 200}", "\"moe_intermediate_size\" = 200: expected a multiple of 128"},
        {"{\"o_lora_rank\": 100}", "\"o_groups\" x \"o_lora_rank\" = 2 x 100 = 200: expected a multiple of 128"},
        {"{\"head_dim\": 160}", "\"head_dim\" - rope dims = 160 - 64 = 96: expected a multiple of 64"},
        {"{\"qk_rope_head_dim\": 63}", "\"qk_rope_head_dim\" gives 63 RoPE dims: expected an even number"},
        {"{\"qk_rope_head_dim\": 256}", "\"qk_rope_head_dim\" = 256: expected an integer in [0, 128]"},
        {"{\"index_head_dim\": 96}", "\"index_head_dim\" = 96: expected a power of two"},
        {"{\"index_head_dim\": 16}", "\"index_head_dim\" = 16: expected an integer in [32, 4096]"},
        {"{\"num_attention_heads\": 3}", "\"num_attention_heads\" = 3 is not divisible by \"o_groups\" = 2"},
        {"{\"n_shared_experts\": 2}", "\"n_shared_experts\" = 2: expected an integer in [1, 1]"},
        {"{\"num_experts_per_tok\": 17}", "\"num_experts_per_tok\" = 17: expected an integer in [1, 16]"},
        {"{\"num_key_value_heads\": 4}", "\"num_key_value_heads\" = 4: expected an integer in [1, 1]"},
        {"{\"n_routed_experts\": 5000, \"num_experts_per_tok\": 4}",
         "\"n_routed_experts\" = 5000: expected an integer in [1, 4096]"},
        {"{\"num_hidden_layers\": 1025}", "\"num_hidden_layers\" = 1025: expected an integer in [1, 1024]"},
        {"{\"num_nextn_predict_layers\": 17}", "\"num_nextn_predict_layers\" = 17: expected an integer in [0, 16]"},
        {"{\"vocab_size\": 0}", "\"vocab_size\" = 0: expected an integer in [1, 4194304]"},
        {"{\"hc_mult\": 0}", "\"hc_mult\" = 0: expected an integer in [1, 16]"},
        {"{\"rms_norm_eps\": -1}", "\"rms_norm_eps\" = -1: expected a positive number"},
        {"{\"hidden_size\": null}", "missing required key \"hidden_size\""},
        {"{\"hidden_size\": \"256\"}", "\"hidden_size\" = \"256\": expected an integer"},
        {"{\"hidden_size\": 256.0}", "\"hidden_size\" = 256.0: expected an integer"},
        {"{\"tie_word_embeddings\": 0}", "\"tie_word_embeddings\" = 0: expected true or false"},
        {"{\"expert_dtype\": \"int4\"}", "\"expert_dtype\" = \"int4\": expected \"fp4\" or \"fp8\""},
        {"{\"scoring_func\": \"relu\"}", "\"scoring_func\" = \"relu\": expected \"sqrtsoftplus\""},
        {"{\"model_type\": \"deepseek_v3\"}", "\"model_type\" = \"deepseek_v3\": expected \"deepseek_v4\""},
        {"{\"qk_rope_head_dim\": null}", "neither \"qk_rope_head_dim\" nor \"partial_rotary_factor\""},
        {"{\"rope_theta\": null}", "missing \"rope_theta\""},
        {"{\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2}}", "\"rope_scaling.type\" = \"linear\": expected \"yarn\" or \"default\""},
        {"{\"rope_scaling\": {\"type\": \"yarn\"}}", "missing \"rope_scaling.factor\" (required for YaRN)"},
        {"{\"quantization_config\": {\"quant_method\": \"fp8\", \"weight_block_size\": [64, 64]}}",
         "\"quantization_config.weight_block_size\" = [64, 64]: expected [128, 128]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *m = tcfg_patch(TINY, cases[i].patch, &c);
        CHECK_MSG(strstr(m, cases[i].want) && strstr(m, "fixtures/dsv4-tiny/config.json: "),
                  "patch %s: expected \"%s\" in \"%s\"", cases[i].patch, cases[i].want, m);
    }
    /* Defaults: absent optional keys take transformers' defaults. */
    const char *m = tcfg_patch(TINY, "{\"expert_dtype\": null, \"n_shared_experts\": null, \"torch_dtype\": null, "
                                     "\"num_nextn_predict_layers\": null}", &c);
    CHECK_MSG(!*m, "%s", m);
    CHECK(!c.expert_dtype_given && c.expert_fmt == DSV4_EXPERTS_FP4 && c.n_shared_experts == 1 && c.n_mtp == 1);
    CHECK(!strcmp(c.torch_dtype, "bfloat16"));
    m = tcfg_patch(TINY, "{\"expert_dtype\": \"fp8\"}", &c);
    CHECK_MSG(!*m && c.expert_fmt == DSV4_EXPERTS_FP8, "%s", m);
}

TEST(config_refuses_bad_json)
{
    dsv4_config c;
    dsv4_err e;
    const char *bad[] = {"", "[1]", "{\"a\": 1, \"a\": 2}", "{\"hidden_size\": 1e999}", "{\"x\":"};
    const char *want[] = {"not valid JSON", "expected a JSON object", "not valid JSON", "not valid JSON",
                          "not valid JSON"};
    for (int i = 0; i < 5; i++) {
        CHECK(dsv4_config_parse(bad[i], strlen(bad[i]), "c.json", &c, &e) == -1);
        CHECK_STR_CONTAINS(e.msg, want[i]);
        CHECK_STR_CONTAINS(e.msg, "c.json: ");
    }
    CHECK(dsv4_config_load(th_path("fixtures/nonexistent/config.json"), &c, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "no such file");
}
