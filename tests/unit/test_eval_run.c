/* The dynamic verification end to end on the tiny fixture (CPU runner): the source against itself
 * (KL 0, same top-1, equal perplexity and MTP acceptance, zero stream error, identical greedy
 * continuations), the layer walk's perplexity against the sequence forward's (dsv4_ppl_run), and
 * dsv4-quant's verification hook: the report is inside the artifact when it appears, and a hook
 * that fails leaves nothing at OUT. */
#include "harness.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "artifact/convert.h"
#include "eval/after_convert.h"
#include "eval/eval.h"
#include "eval/ppl.h"
#include "test_writer_util.h"

static const char *fixture(void)
{
    return th_path("fixtures/dsv4-tiny");
}

static int load_rows(int64_t rows, int64_t len, dsv4_eval_data *d)
{
    dsv4_data_opts o = {.rows = rows, .len = len, .offset = 7};
    dsv4_err e;
    if (dsv4_data_load(th_path("fixtures/dsv4-tiny/eval.tokens.safetensors"), &o, d, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        return -1;
    }
    return 0;
}

TEST(eval_run_source_against_itself)
{
    dsv4_eval_data d;
    REQUIRE(load_rows(2, 40, &d) == 0);
    dsv4_eval_opts o = {.device = "cpu", .threads = 2, .spec_prompts = 1, .spec_prompt_len = 12, .spec_tokens = 10};
    dsv4_eval_result r;
    dsv4_err e;
    REQUIRE(dsv4_eval_run(fixture(), fixture(), &d, &o, &r, &e) == 0);
    CHECK(!strcmp(r.device, "cpu") && r.rows == 2 && r.len == 40 && r.s.count == 80);
    CHECK(r.s.kld_mean == 0 && r.s.kld_pct[12] == 0 && r.s.same_top == 1 && r.s.ratio == 1);
    CHECK_MSG(r.s.ppl > 1 && r.s.ppl < 100, "perplexity %g", r.s.ppl);
    CHECK(r.art.ran && r.src.ran && r.art.tf_total == 2 * 39 && r.art.tf_accepted == r.src.tf_accepted);
    CHECK(r.art.spec_ran && r.src.spec_ran && r.art.spec_drafted > 0 && r.art.spec_accepted == r.src.spec_accepted);
    CHECK(r.spec_same == 1 && r.art.spec_generated == 10);
    REQUIRE(r.n_layers == 4);
    for (int i = 0; i < 4; i++)
        CHECK(r.layers[i].rel_rms == 0 && r.layers[i].id == i);
    CHECK(r.layers[1].is_hash && !r.layers[2].is_hash && r.layers[2].type == DSV4_ATTN_HCA);
    /* the walk (stateless prefill per layer) and the sequence forward in chunks agree */
    dsv4_ops *ops = dsv4_ops_by_name("cpu", 2, &e);
    REQUIRE(ops);
    dsv4_model m;
    REQUIRE(dsv4_model_open(fixture(), ops, DSV4_LOAD_LAYERS, &m, &e) == 0);
    dsv4_nll_acc acc = {0};
    REQUIRE(dsv4_ppl_run(&m, &d, 16, NULL, NULL, &acc, &e) == 0);
    double ppl, unc;
    dsv4_nll_ppl(&acc, &ppl, &unc);
    CHECK_MSG(fabs(ppl / r.s.ppl - 1) < 1e-4, "sequence forward PPL %.6f, layer walk %.6f", ppl, r.s.ppl);
    dsv4_model_close(&m);
    dsv4_ops_release(ops);
    dsv4_eval_result_free(&r);
    /* bad input: data outside the vocabulary, an unknown device, a folder that is no model */
    d.ids[3] = 5000;
    CHECK(dsv4_eval_run(fixture(), fixture(), &d, &o, &r, &e) == -1 && e.code == 2);
    CHECK_STR_CONTAINS(e.msg, "token id 5000 is outside the model's vocabulary [0, 1024)");
    dsv4_eval_opts bad = {.device = "tpu"};
    CHECK(dsv4_eval_run(fixture(), fixture(), &d, &bad, &r, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "unknown device 'tpu'");
    CHECK(dsv4_eval_run(th_tmpdir(), fixture(), &d, &o, &r, &e) == -1 && e.code == 2);
    dsv4_data_free(&d);
}

static int fail_hook(void *ctx, const char *tmp, dsv4_err *e)
{
    *(int *)ctx = access(tw_join(tmp, "model.safetensors.index.json"), F_OK) == 0;
    return dsv4_fail(e, "refused by the test");
}

/* Converts the fixture with a recipe through the hooked executor. */
static int convert(const char *recipe, const char *out, dsv4_convert_hook hook, void *ctx, dsv4_err *e)
{
    dsv4_ckpt src;
    dsv4_config cfg;
    dsv4_recipe r;
    dsv4_plan p;
    json_error_t je;
    if (dsv4_ckpt_open(fixture(), 0, &src, e))
        return -1;
    json_t *raw = json_load_file(th_path("fixtures/dsv4-tiny/config.json"), 0, &je);
    int rc = -1;
    if (raw && !dsv4_config_load(th_path("fixtures/dsv4-tiny/config.json"), &cfg, e) &&
        !dsv4_recipe_load(th_path(recipe), &r, e)) {
        if (!dsv4_plan_build(&src, &cfg, raw, &r, &p, e)) {
            dsv4_convert_opts o = {.threads = 2};
            dsv4_convert_stats st;
            rc = dsv4_convert_run_hooked(&src, &p, &r, out, &o, hook, ctx, &st, e);
            if (!rc)
                dsv4_convert_stats_free(&st);
            dsv4_plan_free(&p);
        }
        dsv4_recipe_free(&r);
    }
    json_decref(raw);
    dsv4_ckpt_close(&src);
    return rc;
}

TEST(eval_run_after_convert)
{
    const char *dir = th_tmpdir();
    char out[4200];
    snprintf(out, sizeof out, "%s/fp8", dir);
    dsv4_after_convert ac;
    memset(&ac, 0, sizeof ac);
    ac.source = fixture();
    ac.out = out;
    ac.co.eval_data = th_path("fixtures/dsv4-tiny/eval.tokens.safetensors");
    ac.co.data = (dsv4_data_opts){.rows = 1, .len = 32};
    ac.co.ev = (dsv4_eval_opts){.device = "cpu", .threads = 2, .spec_prompts = 0};
    dsv4_gates_default(&ac.co.gates);
    dsv4_err e;
    REQUIRE(dsv4_check_load_data(&ac.ck, ac.source, &ac.co, &e) == 0);
    REQUIRE(convert("recipes/fp8.yaml", out, dsv4_after_convert_hook, &ac, &e) == 0);
    CHECK(ac.ran && ac.exit_code == 0 && ac.convert_peak_rss > 0);
    json_error_t je;
    json_t *j = json_load_file(tw_join(out, DSV4_VERIFY_REPORT), 0, &je);
    REQUIRE(j);
    CHECK(!strcmp(json_string_value(json_object_get(j, "verdict")), "pass"));
    CHECK(!strcmp(json_string_value(json_object_get(j, "artifact")), out));
    json_t *ev = json_object_get(j, "eval");
    CHECK(!strcmp(json_string_value(json_object_get(ev, "status")), "pass"));
    CHECK(json_real_value(json_object_get(json_object_get(ev, "kl_divergence"), "mean")) == 0);
    CHECK(!json_object_get(ev, "seconds")); /* the stored report is the same from run to run */
    CHECK(json_equal(j, ac.report));
    json_decref(j);
    dsv4_after_convert_free(&ac);
    /* a hook failure discards the complete folder it saw */
    char out2[4200];
    snprintf(out2, sizeof out2, "%s/never", dir);
    int saw_index = 0;
    CHECK(convert("recipes/fp8.yaml", out2, fail_hook, &saw_index, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "refused by the test");
    CHECK(saw_index);
    CHECK(access(out2, F_OK) != 0 && tw_count_prefix(dir, "never") == 0);
}
