/* Recipes in our schema: the five shipped recipes load with the documented values and the file's
 * xxh3-128; every kind of mistake is refused with a message that names the file, line and column. */
#include "harness.h"
#include "test_recipe_util.h"
#include "io/checkpoint.h"
#include "recipe/recipe.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static int load(const char *rel, dsv4_recipe *r)
{
    dsv4_err e;
    if (dsv4_recipe_load(th_path(rel), r, &e)) {
        th_fail(__FILE__, __LINE__, "%s: %s", rel, e.msg);
        return -1;
    }
    return 0;
}


static void file_hash(const char *rel, char out[33])
{
    char *buf;
    size_t len;
    dsv4_err e;
    out[0] = 0;
    if (dsv4_read_file(th_path(rel), 1 << 20, &buf, &len, &e))
        return;
    XXH128_hash_t h = XXH3_128bits(buf, len);
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
    free(buf);
}

TEST(recipe_w4a16_file)
{
    dsv4_recipe r;
    char h[33];
    REQUIRE(load("recipes/w4a16-rtn.yaml", &r) == 0);
    CHECK(!r.llm_compressor);
    REQUIRE(r.n_groups == 2);
    CHECK(!strcmp(r.groups[0].name, "attention"));
    CHECK_EQ_INT(r.groups[0].scheme, DSV4_SCHEME_FP8_BLOCK);
    CHECK_EQ_INT(r.groups[0].method, DSV4_METHOD_RTN);
    CHECK_EQ_INT(r.groups[0].n_targets, 3);
    CHECK_EQ_INT(r.groups[1].scheme, DSV4_SCHEME_W4A16);
    CHECK_EQ_INT(r.groups[1].method, DSV4_METHOD_RTN); /* until GPTQ lands */
    CHECK_EQ_INT(r.groups[1].group_size, 128);
    CHECK_EQ_INT(r.groups[1].symmetric, 1);
    CHECK(!strcmp(r.groups[1].actorder, ""));
    CHECK(!strcmp(r.groups[1].observer, "minmax"));
    CHECK_EQ_INT(r.mtp, DSV4_MTP_BF16);
    CHECK_EQ_INT(r.mtp_aliases, 1);
    CHECK_EQ_INT(r.experts_fp8_lossless, 0);
    CHECK_EQ_INT(r.max_shard_bytes, 5ULL << 30);
    CHECK_EQ_INT(r.calib_samples, 512);
    CHECK_EQ_INT(r.calib_seq_len, 2048);
    file_hash("recipes/w4a16-rtn.yaml", h);
    CHECK(!strcmp(r.hash, h));
    CHECK_STR_CONTAINS(r.path, "recipes/w4a16-rtn.yaml");
    dsv4_recipe_free(&r);
}

TEST(recipe_other_files)
{
    dsv4_recipe r;
    REQUIRE(load("recipes/w4a8.yaml", &r) == 0);
    REQUIRE(r.n_groups == 2);
    CHECK_EQ_INT(r.groups[1].scheme, DSV4_SCHEME_W4AFP8);
    CHECK_EQ_INT(r.groups[1].group_size, 128);
    dsv4_recipe_free(&r);

    REQUIRE(load("recipes/nvfp4.yaml", &r) == 0);
    REQUIRE(r.n_groups == 2);
    CHECK_EQ_INT(r.groups[1].scheme, DSV4_SCHEME_NVFP4);
    CHECK_EQ_INT(r.groups[1].group_size, 16);
    CHECK_EQ_INT(r.groups[1].method, DSV4_METHOD_RTN);
    CHECK(!strcmp(r.groups[1].actorder, ""));
    dsv4_recipe_free(&r);

    REQUIRE(load("recipes/fp8.yaml", &r) == 0);
    REQUIRE(r.n_groups == 1);
    CHECK_EQ_INT(r.groups[0].scheme, DSV4_SCHEME_FP8_BLOCK);
    CHECK(!strcmp(r.groups[0].targets[0], "Linear"));
    CHECK_EQ_INT(r.experts_fp8_lossless, 1);
    dsv4_recipe_free(&r);

    REQUIRE(load("recipes/bf16.yaml", &r) == 0);
    REQUIRE(r.n_groups == 1);
    CHECK_EQ_INT(r.groups[0].scheme, DSV4_SCHEME_BF16);
    CHECK_EQ_INT(r.mtp_aliases, 0);
    CHECK_EQ_INT(r.mtp, DSV4_MTP_BF16);
    dsv4_recipe_free(&r);
}

TEST(recipe_matching)
{
    dsv4_recipe r;
    REQUIRE(load("recipes/w4a16-rtn.yaml", &r) == 0);
    const dsv4_recipe_group *g;
    CHECK((g = dsv4_recipe_match(&r, "layers.0.attn.wq_a")) && g == &r.groups[0]);
    CHECK((g = dsv4_recipe_match(&r, "layers.3.attn.indexer.wq_b")) && g == &r.groups[0]);
    CHECK((g = dsv4_recipe_match(&r, "layers.2.ffn.shared_experts.w2")) && g == &r.groups[0]);
    CHECK((g = dsv4_recipe_match(&r, "layers.2.ffn.experts.15.w3")) && g == &r.groups[1]);
    /* Anchored at the start: nothing under mtp. */
    CHECK(!dsv4_recipe_match(&r, "mtp.0.attn.wq_a"));
    CHECK(!dsv4_recipe_match(&r, "mtp.0.ffn.experts.0.w1"));
    CHECK(!dsv4_recipe_match(&r, "layers.1.attn.compressor.wkv"));
    CHECK(!dsv4_recipe_match(&r, "head"));
    dsv4_recipe_free(&r);

    const char *y = "groups:\n"
                    "  - {name: a, scheme: fp8_block, targets: [Linear]}\n"
                    "ignore: ['re:layers\\.1\\.', lm_head]\n";
    dsv4_err e;
    REQUIRE(dsv4_recipe_parse(y, strlen(y), "m.yaml", &r, &e) == 0);
    CHECK(dsv4_recipe_match(&r, "layers.0.attn.wo_a") == &r.groups[0]);
    CHECK(dsv4_recipe_match(&r, "mtp.0.e_proj") == &r.groups[0]);
    CHECK(!dsv4_recipe_match(&r, "layers.0.attn.compressor.wgate")); /* Linear: only what vLLM quantizes */
    CHECK(!dsv4_recipe_match(&r, "layers.0.ffn.gate"));
    CHECK(!dsv4_recipe_match(&r, "layers.1.attn.wo_a"));
    CHECK(dsv4_recipe_ignored(&r, "layers.1.attn.wo_a"));
    CHECK(dsv4_recipe_ignored(&r, "head")); /* lm_head is head's transformers and vLLM name */
    CHECK(!dsv4_recipe_ignored(&r, "layers.10.attn.wo_a"));
    dsv4_recipe_free(&r);
}

TEST(recipe_defaults_and_units)
{
    dsv4_recipe r;
    dsv4_err e;
    const char *y = "groups:\n"
                    "  - scheme: W4A16\n"
                    "    targets: 're:.*experts.*'\n"
                    "  - {scheme: nvfp4, targets: [x], method: gptq}\n"
                    "mtp: {policy: keep, aliases: false}\n"
                    "max_shard_bytes: 500MB\n"
                    "calibration: {data: calib.jsonl, samples: 64, seq_len: 512}\n";
    REQUIRE(dsv4_recipe_parse(y, strlen(y), "d.yaml", &r, &e) == 0);
    REQUIRE(r.n_groups == 2);
    CHECK(!strcmp(r.groups[0].name, "group_0"));
    CHECK_EQ_INT(r.groups[0].n_targets, 1);
    CHECK_EQ_INT(r.groups[0].group_size, 128);
    CHECK(!strcmp(r.groups[0].actorder, ""));
    CHECK(!strcmp(r.groups[1].actorder, "static"));
    CHECK_EQ_INT(r.groups[1].group_size, 16);
    CHECK_EQ_INT(r.mtp, DSV4_MTP_KEEP);
    CHECK_EQ_INT(r.mtp_aliases, 0);
    CHECK_EQ_INT(r.max_shard_bytes, 500000000);
    CHECK(!strcmp(r.calib_data, "calib.jsonl"));
    CHECK_EQ_INT(r.calib_samples, 64);
    CHECK_EQ_INT(r.calib_seq_len, 512);
    dsv4_recipe_free(&r);

    const char *empty_groups = "version: 1\nmax_shard_bytes: 4096\n";
    REQUIRE(dsv4_recipe_parse(empty_groups, strlen(empty_groups), "d.yaml", &r, &e) == 0);
    CHECK_EQ_INT(r.n_groups, 0);
    CHECK_EQ_INT(r.max_shard_bytes, 4096);
    dsv4_recipe_free(&r);
}

TEST(recipe_errors_keys_and_types)
{
    REFUSED("groups: []\nbogus: 1\n", 2, 1, "unknown key 'bogus'");
    REFUSED("groups:\n  - scheme: W4A16\n    targets: [a]\n    gruop_size: 64\n", 4, 5, "unknown key 'gruop_size'");
    REFUSED("mtp: {policy: bf16, alias: true}\n", 1, 21, "unknown key 'alias'");
    REFUSED("calibration: {samples: 1, seqlen: 2}\n", 1, 27, "unknown key 'seqlen'");
    REFUSED("groups:\n  - scheme: W5A16\n    targets: [a]\n", 2, 13, "unknown scheme 'W5A16'");
    REFUSED("groups:\n  - targets: [a]\n", 2, 5, "'scheme' is required");
    REFUSED("groups:\n  - scheme: BF16\n", 2, 5, "'targets' is required");
    REFUSED("groups:\n  - scheme: W4A16\n    targets: [a]\n    group_size: '128'\n", 4, 17,
            "group_size: expected an integer, got a string");
    REFUSED("groups:\n  - scheme: W4A16\n    targets: [a]\n    symmetric: 1\n", 4, 16,
            "symmetric: expected true or false, got an integer");
    REFUSED("groups:\n  - scheme: W4A16\n    targets: 5\n", 3, 14, "targets: expected a string, got an integer");
    REFUSED("groups:\n  - scheme: W4A16\n    targets: []\n", 3, 14, "targets: the list is empty");
    REFUSED("groups: {a: 1}\n", 1, 9, "groups: expected a list of groups, got a mapping");
    REFUSED("experts_fp8_lossless: yes\n", 1, 23, "expected true or false, got a string");
    REFUSED("max_shard_bytes: 5XB\n", 1, 18, "expected a byte count");
    REFUSED("max_shard_bytes: 0\n", 1, 18, "outside");
    REFUSED("version: 2\n", 1, 10, "version: 2 is outside [1, 1]");
    REFUSED("mtp: {policy: drop}\n", 1, 15, "unknown policy 'drop'");
    REFUSED("groups: []\ngroups: []\n", 2, 1, "duplicate key 'groups'");
    REFUSED("calibration: {samples: 0}\n", 1, 24, "calibration.samples: 0 is outside");
    REFUSED("groups:\n  - {name: a, scheme: BF16, targets: [x]}\n  - {name: a, scheme: BF16, targets: [y]}\n", 3, 5,
            "a second group named 'a'");
}

TEST(recipe_errors_values)
{
    REFUSED("groups:\n  - {scheme: W4A16, targets: [a], symmetric: false}\n", 2, 5, "asymmetric");
    REFUSED("groups:\n  - {scheme: W4A16, targets: [a], group_size: 100}\n", 2, 5, "32, 64 or 128");
    REFUSED("groups:\n  - {scheme: W4AFP8, targets: [a], group_size: 64}\n", 2, 5, "W4AFP8 needs group_size 128");
    REFUSED("groups:\n  - {scheme: NVFP4, targets: [a], group_size: 32}\n", 2, 5, "NVFP4 uses groups of 16");
    REFUSED("groups:\n  - {scheme: FP8_BLOCK, targets: [a], group_size: 128}\n", 2, 5, "group_size does not apply");
    REFUSED("groups:\n  - {scheme: FP8_BLOCK, targets: [a], method: gptq}\n", 2, 5, "data-free");
    REFUSED("groups:\n  - {scheme: W4A16, targets: [a], method: awq}\n", 2, 43, "unknown method 'awq'");
    REFUSED("groups:\n  - {scheme: W4A16, targets: [a], dampening_frac: 0.1}\n", 2, 51, "applies to method gptq only");
    REFUSED("groups:\n  - {scheme: W4A16, targets: [a], method: gptq, actorder: group}\n", 2, 59, "actorder group");
    REFUSED("groups:\n  - {scheme: W4A16, targets: [a], method: gptq, dampening_frac: 2}\n", 2, 65, "outside");
    REFUSED("groups:\n  - {scheme: W4A16, targets: [a], observer: ema}\n", 2, 45, "unknown observer 'ema'");
    REFUSED("groups:\n  - {scheme: W4A16, targets: [Attention]}\n", 2, 31, "unsupported target class 'Attention'");
}

TEST(recipe_errors_regex)
{
    REFUSED("groups:\n  - scheme: W4A16\n    targets: ['re:layers\\.(']\n", 3, 15, "not a valid regular expression");
    REFUSED("groups:\n  - scheme: W4A16\n    targets:\n      - ok\n      - 're:\\bexperts'\n", 5, 9,
            "unsupported escape '\\b'");
    REFUSED("ignore: ['re:(?=mtp)']\n", 1, 10, "unsupported group '(?='");
    REFUSED("ignore: ['re:*x']\n", 1, 10, "nothing to repeat");
    REFUSED("ignore: ['re:a[b']\n", 1, 10, "unterminated character class");
}

TEST(recipe_errors_document)
{
    REFUSED("", 0, 0, "t.yaml: the recipe is empty");
    REFUSED("- a\n- b\n", 1, 1, "the recipe must be a mapping, got a list");
    REFUSED("groups: [\n", 2, 1, "not valid YAML");
    REFUSED("groups: []\n---\nignore: []\n", 3, 1, "a second YAML document");
    /* libyaml's document keeps no position for an alias: messages point at its anchor. */
    REFUSED("ignore: &x [a]\nmtp: *x\n", 1, 9, "mtp: expected a mapping");
    REFUSED("groups:\n  - &g {scheme: BF16, targets: [a]}\n  - *g\n", 2, 5, "YAML aliases are not supported");
    REFUSED("ignore: [\"a\\0b\"]\n", 1, 10, "NUL byte");
}

TEST(recipe_missing_file)
{
    dsv4_recipe r;
    dsv4_err e;
    CHECK(dsv4_recipe_load("/nonexistent/recipe.yaml", &r, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "/nonexistent/recipe.yaml: no such file");
    dsv4_recipe_free(&r); /* safe on a failed load */
}
