/* Quality gates (libquant/eval/gates.h): defaults, the recipe's `gates:` section, flag values,
 * precedence, and the verdict on hand-made results (pass, each gate failing, NaN, missing MTP). */
#include "harness.h"

#include <math.h>
#include <string.h>

#include "eval/gates.h"
#include "recipe/recipe.h"

/* A result every default gate passes: PPL +1 %, KL 0.01, top-1 95 %, acceptance 60 % vs 61 %. */
static dsv4_eval_result good(void)
{
    dsv4_eval_result r;
    memset(&r, 0, sizeof r);
    r.s.ratio = 1.01;
    r.s.kld_mean = 0.01;
    r.s.same_top = 0.95;
    r.art.ran = r.src.ran = 1;
    r.art.tf_accepted = 600;
    r.art.tf_total = 1000;
    r.src.tf_accepted = 610;
    r.src.tf_total = 1000;
    return r;
}

static int status(const dsv4_gates *g, const dsv4_eval_result *r, dsv4_gate_id id, int *nfail)
{
    dsv4_gate_result out[DSV4_GATE_COUNT];
    *nfail = dsv4_gates_check(g, r, out);
    return out[id].status;
}

TEST(eval_gates_defaults_and_verdicts)
{
    dsv4_gates g;
    dsv4_gates_default(&g);
    CHECK(g.limit[DSV4_GATE_PPL] == 5 && g.limit[DSV4_GATE_KL] == 0.05 && g.limit[DSV4_GATE_TOP1] == 85);
    CHECK(isnan(g.limit[DSV4_GATE_ACCEPT]) && g.limit[DSV4_GATE_ACCEPT_DROP] == 5);
    CHECK(!strcmp(g.origin[DSV4_GATE_KL], "default"));
    dsv4_eval_result r = good();
    int nf;
    CHECK(status(&g, &r, DSV4_GATE_PPL, &nf) == DSV4_GATE_PASS && nf == 0);
    CHECK(status(&g, &r, DSV4_GATE_ACCEPT, &nf) == DSV4_GATE_SKIP);
    CHECK_MSG(fabs(dsv4_gate_measure(DSV4_GATE_ACCEPT_DROP, &r) - 1.0) < 1e-9, "drop %g",
              dsv4_gate_measure(DSV4_GATE_ACCEPT_DROP, &r));
    r.s.ratio = 1.06;
    CHECK(status(&g, &r, DSV4_GATE_PPL, &nf) == DSV4_GATE_FAIL && nf == 1);
    r = good();
    r.s.kld_mean = 0.2;
    CHECK(status(&g, &r, DSV4_GATE_KL, &nf) == DSV4_GATE_FAIL && nf == 1);
    r = good();
    r.s.same_top = 0.80;
    CHECK(status(&g, &r, DSV4_GATE_TOP1, &nf) == DSV4_GATE_FAIL && nf == 1);
    r = good();
    r.art.tf_accepted = 100;
    CHECK(status(&g, &r, DSV4_GATE_ACCEPT_DROP, &nf) == DSV4_GATE_FAIL && nf == 1);
    /* a NaN measurement fails its gate (KL of a broken artifact) */
    r = good();
    r.s.kld_mean = NAN;
    r.s.ratio = NAN;
    dsv4_gate_result out[DSV4_GATE_COUNT];
    CHECK(dsv4_gates_check(&g, &r, out) == 2);
    CHECK(out[DSV4_GATE_KL].status == DSV4_GATE_FAIL);
    CHECK_STR_CONTAINS(out[DSV4_GATE_KL].note, "not a number");
}

TEST(eval_gates_mtp_missing)
{
    dsv4_gates g;
    dsv4_gates_default(&g);
    dsv4_err e;
    REQUIRE(dsv4_gates_set_flag(&g, DSV4_GATE_ACCEPT, "50", &e) == 0);
    dsv4_eval_result r = good();
    r.art.ran = 0;
    snprintf(r.art.why, sizeof r.art.why, "mtp.0.e_proj.weight: missing");
    dsv4_gate_result out[DSV4_GATE_COUNT];
    CHECK(dsv4_gates_check(&g, &r, out) == 2);
    CHECK(out[DSV4_GATE_ACCEPT].status == DSV4_GATE_FAIL && out[DSV4_GATE_ACCEPT_DROP].status == DSV4_GATE_FAIL);
    CHECK_STR_CONTAINS(out[DSV4_GATE_ACCEPT].note, "the artifact's MTP block did not run: mtp.0.e_proj.weight");
    r.src.ran = 0;
    snprintf(r.src.why, sizeof r.src.why, "config.json declares no MTP block");
    CHECK(dsv4_gates_check(&g, &r, out) == 0);
    CHECK(out[DSV4_GATE_ACCEPT].status == DSV4_GATE_SKIP && out[DSV4_GATE_ACCEPT_DROP].status == DSV4_GATE_SKIP);
    r = good();
    r.src.ran = 0; /* the artifact has an MTP block the source has not: the drop cannot be measured */
    CHECK(dsv4_gates_check(&g, &r, out) == 0);
    CHECK(out[DSV4_GATE_ACCEPT].status == DSV4_GATE_PASS && out[DSV4_GATE_ACCEPT_DROP].status == DSV4_GATE_SKIP);
}

TEST(eval_gates_flags)
{
    dsv4_gates g;
    dsv4_gates_default(&g);
    dsv4_err e;
    CHECK(dsv4_gate_by_flag("max-kl") == DSV4_GATE_KL && dsv4_gate_by_flag("max-kl-x") == -1);
    REQUIRE(dsv4_gates_set_flag(&g, DSV4_GATE_TOP1, "92.5%", &e) == 0);
    CHECK(g.limit[DSV4_GATE_TOP1] == 92.5 && !strcmp(g.origin[DSV4_GATE_TOP1], "flag"));
    REQUIRE(dsv4_gates_set_flag(&g, DSV4_GATE_PPL, "off", &e) == 0);
    CHECK(isnan(g.limit[DSV4_GATE_PPL]));
    CHECK(dsv4_gates_set_flag(&g, DSV4_GATE_KL, "0.1%", &e) == -1 && e.code == 2);
    CHECK_STR_CONTAINS(e.msg, "--max-kl 0.1%: expected a number from 0 to 1e+06 (nats) or 'off'");
    CHECK(dsv4_gates_set_flag(&g, DSV4_GATE_TOP1, "101", &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "--min-top1 101: expected a number from 0 to 100 (%)");
    CHECK(dsv4_gates_set_flag(&g, DSV4_GATE_ACCEPT_DROP, "-1", &e) == -1);
    CHECK(dsv4_gates_set_flag(&g, DSV4_GATE_ACCEPT_DROP, "x", &e) == -1);
    dsv4_eval_result r = good();
    r.s.same_top = 0.92;
    dsv4_gate_result out[DSV4_GATE_COUNT];
    CHECK(dsv4_gates_check(&g, &r, out) == 1 && out[DSV4_GATE_TOP1].status == DSV4_GATE_FAIL);
    CHECK(out[DSV4_GATE_PPL].status == DSV4_GATE_SKIP);
}

TEST(eval_gates_from_recipe)
{
    const char *y = "groups:\n  - name: a\n    scheme: BF16\n    targets: [Linear]\n"
                    "gates:\n  max_kl: 0.02\n  min_top1: 97\n  max_accept_drop: null\n";
    dsv4_recipe r;
    dsv4_err e;
    REQUIRE(dsv4_recipe_parse(y, strlen(y), "mine.yaml", &r, &e) == 0);
    dsv4_gates g;
    dsv4_gates_default(&g);
    dsv4_gates_from_recipe(&g, &r);
    CHECK(g.limit[DSV4_GATE_KL] == 0.02 && !strcmp(g.origin[DSV4_GATE_KL], "recipe"));
    CHECK(g.limit[DSV4_GATE_TOP1] == 97);
    CHECK(isnan(g.limit[DSV4_GATE_ACCEPT_DROP]) && !strcmp(g.origin[DSV4_GATE_ACCEPT_DROP], "recipe"));
    CHECK(g.limit[DSV4_GATE_PPL] == 5 && !strcmp(g.origin[DSV4_GATE_PPL], "default"));
    /* a flag beats the recipe (the tools apply flags last) */
    REQUIRE(dsv4_gates_set_flag(&g, DSV4_GATE_KL, "0.5", &e) == 0);
    CHECK(g.limit[DSV4_GATE_KL] == 0.5);
    dsv4_recipe_free(&r);
    const char *bad = "gates:\n  max_kl: 0.02\n  min_topp1: 97\n";
    CHECK(dsv4_recipe_parse(bad, strlen(bad), "bad.yaml", &r, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "bad.yaml:3:3: gates: unknown key 'min_topp1'");
    const char *range = "gates:\n  min_top1: 120\n";
    CHECK(dsv4_recipe_parse(range, strlen(range), "r.yaml", &r, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "gates.min_top1: 120 is outside [0, 100]");
    const char *str = "gates:\n  max_kl: low\n";
    CHECK(dsv4_recipe_parse(str, strlen(str), "s.yaml", &r, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "gates.max_kl");
    /* the shipped recipes have no gates: the defaults apply */
    REQUIRE(dsv4_recipe_load(th_path("recipes/w4a16-rtn.yaml"), &r, &e) == 0);
    for (int i = 0; i < DSV4_RECIPE_GATES; i++)
        CHECK(!r.gate_set[i]);
    dsv4_recipe_free(&r);
}
