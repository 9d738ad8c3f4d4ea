/* dsv4-fixup --to-w4a8 (fixup/w4a8.h): on the W4A16 artifact its config ops give exactly the
 * quantization_config dsv4-quant writes for recipes/w4a8-rtn.yaml (same RTN INT4 weights), plus the
 * provenance record; the result passes the config and target rules; artifacts that are not W4A16
 * compressed-tensors are refused with code 2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact/version.h"
#include "fixup/w4a8.h"
#include "harness.h"
#include "test_rules_util.h"

static json_t *config_of(const char *dir)
{
    char p[700];
    json_error_t je;
    snprintf(p, sizeof p, "%s/config.json", dir);
    return json_load_file(p, 0, &je);
}

TEST(w4a8_from_w4a16_equals_dsv4_quant)
{
    dsv4_vctx v;
    dsv4_err e;
    REQUIRE(tr_clean("w4a16") && tr_clean("w4a8"));
    REQUIRE(dsv4_vctx_open(&v, tr_clean("w4a16"), NULL, &e) == 0);
    REQUIRE(dsv4_fix_to_w4a8(&v, &e) == 0);
    CHECK_EQ_INT(v.fixes.n, 2); /* the INT4 group's input_activations, the provenance record */
    for (size_t i = 0; i < v.fixes.n; i++)
        CHECK(v.fixes.v[i].kind == DSV4_FIX_CONFIG && !strcmp(v.fixes.v[i].rule, DSV4_W4A8_OP_TAG));
    json_t *got = tr_apply_config(v.art.config, &v.fixes), *want = config_of(tr_clean("w4a8"));
    const json_t *gq = json_object_get(got, "quantization_config"), *wq = json_object_get(want, "quantization_config");
    CHECK(json_equal(gq, wq));
    char *a = json_dumps(gq, JSON_COMPACT), *b = json_dumps(wq, JSON_COMPACT); /* same key order too */
    CHECK(a && b && !strcmp(a, b));
    free(a);
    free(b);
    const json_t *p = json_object_get(got, "dsv4_w4a8_conversion");
    CHECK(!strcmp(json_string_value(json_object_get(p, "from")), "w4a16"));
    CHECK(!strcmp(json_string_value(json_object_get(p, "weights")), "unchanged"));
    CHECK(!strcmp(json_string_value(json_object_get(p, "tool")), "dsv4-fixup"));
    CHECK(!strcmp(json_string_value(json_object_get(p, "version")), DSV4_VERSION));
    /* Everything else of config.json is untouched. */
    json_object_del(got, "dsv4_w4a8_conversion");
    json_object_set(got, "quantization_config", json_object_get(v.art.config, "quantization_config"));
    CHECK(json_equal(got, v.art.config));

    /* The converted artifact (the same tensors with the new config) passes the rules. */
    json_t *conv = tr_apply_config(v.art.config, &v.fixes);
    const char *out = tr_out("converted");
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cp -r %s %s", tr_clean("w4a16"), out);
    REQUIRE(system(cmd) == 0);
    char path[700];
    snprintf(path, sizeof path, "%s/config.json", out);
    REQUIRE(json_dump_file(conv, path, JSON_INDENT(2)) == 0);
    json_decref(conv);
    json_decref(got);
    json_decref(want);
    dsv4_vctx_close(&v);
    char rules[2048];
    snprintf(rules, sizeof rules, "%s,%s,%s", tr_ids(dsv4_rules_config), tr_ids(dsv4_rules_targets),
             tr_ids(dsv4_rules_scales));
    REQUIRE(tr_run(&v, out, NULL, rules) == 0);
    CHECK_EQ_INT(dsv4_vctx_count(&v, DSV4_SEV_ERROR) + dsv4_vctx_count(&v, DSV4_SEV_WARNING), 0);
    dsv4_vctx_close(&v);
}

static void refused(const char *art, const char *needle)
{
    dsv4_vctx v;
    dsv4_err e;
    REQUIRE(art && dsv4_vctx_open(&v, art, NULL, &e) == 0);
    CHECK_MSG(dsv4_fix_to_w4a8(&v, &e) == -1, "%s accepted", art);
    CHECK_EQ_INT(e.code, DSV4_EXIT_BADINPUT);
    CHECK_STR_CONTAINS(e.msg, needle);
    CHECK_EQ_INT(v.fixes.n, 0);
    dsv4_vctx_close(&v);
}

TEST(w4a8_refuses)
{
    refused(tr_clean("w4a8"), "already quantizes its input activations");
    refused(tr_clean("nvfp4"), "has no INT4 config group");
    refused(tr_clean("fp8"), "has no INT4 config group");
    refused(tr_clean("bf16"), "quant_method is absent");
    refused(th_path("fixtures/dsv4-tiny"), "quant_method is \"fp8\"");
}
