/* Plans a recipe cannot have: each refusal names the tensor or module and says what to change.
 * Also the two non-default artifact forms: the release's native storage kept whole, and the MTP
 * block quantized with the main layers (mtp.policy quantize). */
#include "harness.h"
#include "test_plan_util.h"

#include <stdlib.h>
#include <string.h>

static void refused(const tp_fixture *f, const char *yaml, const char *n1, const char *n2, int line)
{
    dsv4_plan p;
    dsv4_err e;
    if (tp_plan(&f->ck, &f->cfg, f->source_config, yaml, &p, &e) == 0) {
        th_fail(__FILE__, line, "accepted: %s", yaml);
        dsv4_plan_free(&p);
        return;
    }
    if (!strstr(e.msg, n1) || (n2 && !strstr(e.msg, n2)))
        th_fail(__FILE__, line, "expected \"%s\"%s%s in \"%s\"", n1, n2 ? " and " : "", n2 ? n2 : "", e.msg);
    if (e.code != DSV4_EXIT_BADINPUT)
        th_fail(__FILE__, line, "exit code %d", e.code);
}
#define REFUSED(y, a, b) refused(&f, y, a, b, __LINE__)

#define ATTN "'re:layers\\.\\d+\\.attn\\.(wq_a|wq_b|wkv|wo_a|wo_b|indexer\\.wq_b)$'"
#define SHARED "'re:layers\\.\\d+\\.ffn\\.shared_experts\\.'"
#define EXPERTS "'re:layers\\.\\d+\\.ffn\\.experts\\.'"

TEST(plan_refusals)
{
    tp_fixture f;
    REQUIRE(tp_open(&f) == 0);
    REFUSED("groups:\n  - {name: fp8, scheme: FP8_BLOCK, targets: [Linear]}\n", "layers.0.ffn.experts.0.w1.weight",
            "experts_fp8_lossless");
    REFUSED("groups:\n  - {name: a, scheme: FP8_BLOCK, targets: [" ATTN ", " SHARED "]}\n"
            "  - {name: e, scheme: W4A16, targets: [" EXPERTS "]}\n"
            "ignore: ['re:.*\\.wkv$']\n",
            "fused_wqa_wkv", "same recipe group");
    REFUSED("groups:\n  - {name: a, scheme: FP8_BLOCK, targets: [" ATTN ", " SHARED ", 're:.*compressor\\.wkv$']}\n"
            "  - {name: e, scheme: W4A16, targets: [" EXPERTS "]}\n",
            "layers.1.attn.compressor.wkv", "builds this layer unquantized");
    REFUSED("groups:\n  - {name: a, scheme: FP8_BLOCK, targets: [" ATTN "]}\n"
            "  - {name: e, scheme: W4A16, targets: [" EXPERTS "]}\n",
            "layers.0.ffn.shared_experts.w1.weight keeps DeepSeek's native", "compressed-tensors");
    REFUSED("groups:\n  - {name: a, scheme: FP8_BLOCK, targets: [" ATTN ", " SHARED "]}\n"
            "  - {name: e, scheme: W4A16, targets: [" EXPERTS "]}\n"
            "mtp: {policy: keep}\n",
            "mtp.0.attn.wq_a.weight keeps", "mtp.policy is keep");
    REFUSED("version: 1\n", "keeps DeepSeek's native FP8 / FP4 storage while mtp.0.attn.wq_a.weight is dequantized",
            NULL);
    REFUSED("groups:\n  - {name: a, scheme: FP8_BLOCK, targets: [" ATTN ", " SHARED "]}\n"
            "  - {name: lo, scheme: W4A16, targets: ['re:layers\\.\\d+\\.ffn\\.experts\\.[0-7]\\.']}\n"
            "  - {name: hi, scheme: NVFP4, targets: [" EXPERTS "]}\n",
            "routed experts of one layer are one MoE", NULL);
    REFUSED("groups:\n  - {name: a, scheme: FP8_BLOCK, targets: [" ATTN ", " SHARED "]}\n"
            "  - {name: e, scheme: W4A16, targets: ['re:layers\\.\\d+\\.ffn\\.experts\\.\\d+\\.w[13]']}\n"
            "ignore: ['re:layers\\.\\d+\\.ffn\\.experts\\.\\d+\\.w2']\n",
            "mix schemes across w1 / w2 / w3", NULL);

    dsv4_recipe r;
    dsv4_plan p;
    dsv4_err e;
    memset(&r, 0, sizeof r);
    snprintf(r.path, sizeof r.path, "unloaded.yaml");
    CHECK(dsv4_plan_build(&f.ck, &f.cfg, f.source_config, &r, &p, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "was not loaded");
    tp_close(&f);
}

TEST(plan_native_keep)
{
    tp_fixture f;
    dsv4_plan p;
    dsv4_err e;
    REQUIRE(tp_open(&f) == 0);
    if (tp_plan(&f.ck, &f.cfg, f.source_config, "mtp: {policy: keep}\n", &p, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        tp_close(&f);
        return;
    }
    CHECK_EQ_INT(p.n, 667 + 2);
    for (size_t i = 0; i < p.n; i++)
        CHECK(p.jobs[i].kind == DSV4_JOB_COPY);
    TP_OUT(&p, "layers.0.ffn.experts.0.w1.weight", DSV4_JOB_COPY, DSV4_I8, 2, 128, 128);
    TP_OUT(&p, "layers.0.ffn.experts.0.w1.scale", DSV4_JOB_COPY, DSV4_F8_E8M0, 2, 128, 8);
    TP_OUT(&p, "mtp.0.e_proj.scale", DSV4_JOB_COPY, DSV4_F8_E8M0, 2, 2, 2);
    /* The release's own quantization_config stays. */
    CHECK(json_equal(json_object_get(p.config, "quantization_config"),
                     json_object_get(f.source_config, "quantization_config")));
    dsv4_plan_free(&p);
    tp_close(&f);
}

TEST(plan_mtp_quantize)
{
    tp_fixture f;
    dsv4_plan p;
    dsv4_err e;
    REQUIRE(tp_open(&f) == 0);
    const char *y = "groups:\n"
                    "  - name: attention\n"
                    "    scheme: FP8_BLOCK\n"
                    "    targets: ['re:(layers|mtp)\\.\\d+\\.(attn\\.(wq_a|wq_b|wkv|wo_a|wo_b|indexer\\.wq_b)|"
                    "ffn\\.shared_experts\\.w\\d|e_proj|h_proj)$']\n"
                    "  - {name: experts, scheme: W4A16, targets: ['re:(layers|mtp)\\.\\d+\\.ffn\\.experts\\.']}\n"
                    "mtp: {policy: quantize}\n";
    if (tp_plan(&f.ck, &f.cfg, f.source_config, y, &p, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        tp_close(&f);
        return;
    }
    TP_OUT(&p, "mtp.0.ffn.experts.3.w1.weight_packed", DSV4_JOB_INT4, DSV4_I32, 2, 128, 32);
    TP_OUT(&p, "mtp.0.e_proj.weight_scale", DSV4_JOB_FP8_PASS, DSV4_BF16, 2, 2, 2);
    const json_t *qc = json_object_get(p.config, "quantization_config");
    char *s = json_dumps(qc, JSON_COMPACT);
    REQUIRE(s);
    /* MTP targets name the block both ways vLLM does; no block-wide MTP ignore. */
    CHECK_STR_CONTAINS(s, "(mtp\\\\.0|layers\\\\.4)\\\\.attn\\\\.");
    CHECK_STR_CONTAINS(s, "(mtp\\\\.0|layers\\\\.4)\\\\.(e_proj|h_proj)$");
    CHECK(!strstr(s, "\"re:^(model\\\\.)?mtp\\\\.\\\\d+\\\\.\""));
    free(s);
    dsv4_plan_free(&p);
    tp_close(&f);
}

/* NVFP4 on every fused pair vLLM builds: the global scale's partner is the other half. */
TEST(plan_nvfp4_partners)
{
    tp_fixture f;
    dsv4_plan p;
    dsv4_err e;
    REQUIRE(tp_open(&f) == 0);
    if (tp_plan(&f.ck, &f.cfg, f.source_config, "groups:\n  - {scheme: NVFP4, targets: [Linear]}\n", &p, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        tp_close(&f);
        return;
    }
    static const char *const pairs[][2] = {
        {"layers.0.attn.wq_a", "layers.0.attn.wkv"},
        {"layers.0.attn.wkv", "layers.0.attn.wq_a"},
        {"layers.2.ffn.shared_experts.w1", "layers.2.ffn.shared_experts.w3"},
        {"layers.2.ffn.shared_experts.w3", "layers.2.ffn.shared_experts.w1"},
        {"layers.3.ffn.experts.9.w3", "layers.3.ffn.experts.9.w1"},
        {"layers.0.attn.wq_b", NULL},
        {"layers.1.attn.indexer.wq_b", NULL},
        {"layers.2.ffn.shared_experts.w2", NULL},
        {"layers.3.ffn.experts.9.w2", NULL},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        char out[128], want[128];
        const dsv4_plan_job *j;
        snprintf(out, sizeof out, "%s.weight_global_scale", pairs[i][0]);
        if (!tp_out(&p, out, &j)) {
            th_fail(__FILE__, __LINE__, "no %s", out);
            continue;
        }
        if (!pairs[i][1]) {
            CHECK(!j->src[2] && !j->src[3]);
            continue;
        }
        snprintf(want, sizeof want, "%s.weight", pairs[i][1]);
        CHECK_MSG(j->src[2] && !strcmp(j->src[2]->name, want), "%s: partner %s", pairs[i][0],
                  j->src[2] ? j->src[2]->name : "none");
        snprintf(want, sizeof want, "%s.scale", pairs[i][1]);
        CHECK(j->src[3] && !strcmp(j->src[3]->name, want));
    }
    dsv4_plan_free(&p);
    tp_close(&f);
}
