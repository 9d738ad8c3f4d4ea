/* Target patterns: Python re.match semantics (anchored at the start, not the end) through the
 * POSIX translation, the escapes and groups it supports, and the syntax it refuses. Expected
 * results are what Python's re.match gives for the same pattern and name. */
#include "harness.h"
#include "recipe/modules.h"
#include "recipe/target.h"

#include <string.h>

static void expect(const char *pattern, const char *name, int want, int line)
{
    dsv4_err e;
    int got = dsv4_target_matches(pattern, name, &e);
    if (got != want)
        th_fail(__FILE__, line, "\"%s\" on \"%s\": %d, expected %d%s%s", pattern, name, got, want,
                got < 0 ? ": " : "", got < 0 ? e.msg : "");
}
#define M(p, n) expect(p, n, 1, __LINE__)
#define NM(p, n) expect(p, n, 0, __LINE__)

static void bad(const char *py, const char *needle, int line)
{
    char ere[256], why[256] = "";
    if (dsv4_pyre_to_ere(py, ere, sizeof ere, why, sizeof why) == 0) {
        th_fail(__FILE__, line, "\"%s\" translated to \"%s\"", py, ere);
        return;
    }
    if (!strstr(why, needle))
        th_fail(__FILE__, line, "\"%s\": expected \"%s\" in \"%s\"", py, needle, why);
}
#define BAD(p, n) bad(p, n, __LINE__)

TEST(regex_anchoring)
{
    M("re:layers\\.\\d+\\.attn", "layers.12.attn.wq_a");       /* prefix match, as re.match */
    NM("re:attn", "layers.0.attn.wq_a");                        /* anchored at the start */
    M("re:.*attn\\.wq_a$", "model.layers.0.attn.wq_a");
    NM("re:.*attn\\.wq_a$", "model.layers.0.attn.wq_a_x");
    M("re:a|b", "bcd");                                         /* alternation inside the anchor */
    NM("re:x|b", "abc");
    M("re:", "anything");
    M("layers.0.attn.wq_a", "layers.0.attn.wq_a");            /* no "re:": exact name */
    NM("layers.0.attn.wq_a", "layers.0.attn.wq_a2");
    NM("layers.0.attn", "layers.0.attn.wq_a");
}

TEST(regex_escapes_and_classes)
{
    M("re:\\d\\d$", "42");
    NM("re:\\d$", "a");
    M("re:\\D", "a");
    M("re:\\w+\\.\\s?x", "ab_9.x");
    M("re:\\W", ".");
    M("re:\\S", "a");
    M("re:[\\d.]+$", "1.2.3");
    M("re:[\\w-]+$", "a-b_c");
    M("re:[]a]+$", "]a]");
    M("re:[^^]$", "a");
    NM("re:[^^]$", "^");
    M("re:[\\^]", "^");
    M("re:[a\\-z]$", "-");
    NM("re:[a\\-z]$", "m");
    M("re:[a-z]+$", "mtp");
    M("re:\\-\\_\\/", "-_/");
    M("re:\\.\\*\\+\\?\\(\\)\\[\\]\\{\\}\\|\\^\\$\\\\", ".*+?()[]{}|^$\\");
    M("re:a{2}$", "aa");
    NM("re:a{2}$", "aaa");
    M("re:a{,2}b", "b");
    M("re:a{1,}$", "aaaa");
    M("re:a{x}", "a{x}");                                       /* not an interval: literal */
    M("re:a{", "a{");
}

TEST(regex_groups_and_lazy)
{
    M("re:(?:mtp|layers)\\.\\d+\\.", "mtp.0.e_proj");
    M("re:(?P<blk>layers)\\.", "layers.3.x");
    M("re:.*?experts", "layers.0.ffn.experts.1.w1");
    M("re:a+?b", "aab");
    M("re:a??b", "b");
    M("re:x{1,2}?y", "xxy");
}

TEST(regex_refused_syntax)
{
    BAD("\\bexperts", "unsupported escape '\\b'");
    BAD("a\\1", "unsupported escape '\\1'");
    BAD("\\Aa", "unsupported escape '\\A'");
    BAD("a\\", "ends with a backslash");
    BAD("(?=a)", "unsupported group '(?='");
    BAD("(?!a)", "unsupported group '(?!'");
    BAD("(?i)a", "unsupported group '(?i'");
    BAD("(?P=x)", "unsupported group '(?P'");
    BAD("*a", "nothing to repeat");
    BAD("(+a)", "nothing to repeat");
    BAD("a|*", "nothing to repeat");
    BAD("a*+", "possessive");
    BAD("[a", "unterminated character class");
    BAD("[\\D]", "negated class escape");
    BAD("[z-a]", "bad character range");
    BAD("[\\d-z]", "bad character range");
    BAD("[a-\\d]", "bad character range");
    BAD("[[:alpha:]]", "'[' inside a character class");
    BAD("[!--]", "ranges that start or end");
    dsv4_err e;
    CHECK(dsv4_target_matches("re:(a", "a", &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "not a valid regular expression");
}

TEST(module_names_and_kinds)
{
    char b[256];
    CHECK_EQ_INT(dsv4_module_kind("layers.0.attn.wq_a"), DSV4_MOD_QLINEAR);
    CHECK_EQ_INT(dsv4_module_kind("layers.3.attn.indexer.wq_b"), DSV4_MOD_QLINEAR);
    CHECK_EQ_INT(dsv4_module_kind("layers.3.ffn.experts.255.w2"), DSV4_MOD_QLINEAR);
    CHECK_EQ_INT(dsv4_module_kind("mtp.0.e_proj"), DSV4_MOD_QLINEAR);
    CHECK_EQ_INT(dsv4_module_kind("layers.0.e_proj"), DSV4_MOD_OTHER);
    CHECK_EQ_INT(dsv4_module_kind("layers.1.attn.compressor.wkv"), DSV4_MOD_ULINEAR);
    CHECK_EQ_INT(dsv4_module_kind("layers.1.attn.indexer.weights_proj"), DSV4_MOD_ULINEAR);
    CHECK_EQ_INT(dsv4_module_kind("layers.1.ffn.gate"), DSV4_MOD_ULINEAR);
    CHECK_EQ_INT(dsv4_module_kind("head"), DSV4_MOD_ULINEAR);
    CHECK_EQ_INT(dsv4_module_kind("embed"), DSV4_MOD_OTHER);
    CHECK_EQ_INT(dsv4_module_kind("layers.0.attn_norm"), DSV4_MOD_OTHER);
    CHECK_EQ_INT(dsv4_module_kind("layers.0.ffn.experts.x.w1"), DSV4_MOD_OTHER);

    CHECK(dsv4_module_vllm_name("layers.2.attn.compressor.wgate", b, sizeof b) == 0 &&
          !strcmp(b, "model.layers.2.attn.mla_attn.compressor.wgate"));
    CHECK(dsv4_module_vllm_name("layers.2.ffn.shared_experts.w2", b, sizeof b) == 0 &&
          !strcmp(b, "model.layers.2.ffn.shared_experts.down_proj"));
    CHECK(dsv4_module_vllm_name("mtp.0.attn.wq_a", b, sizeof b) == 0 && !strcmp(b, "model.mtp.0.attn.wq_a"));
    CHECK(dsv4_module_vllm_name("head", b, sizeof b) == 0 && !strcmp(b, "lm_head"));

    CHECK(dsv4_module_hf_name("layers.2.attn.wq_a", b, sizeof b) == 0 && !strcmp(b, "model.layers.2.self_attn.q_a_proj"));
    CHECK(dsv4_module_hf_name("layers.2.ffn.experts.7.w3", b, sizeof b) == 0 &&
          !strcmp(b, "model.layers.2.mlp.experts.7.up_proj"));
    CHECK(dsv4_module_hf_name("layers.2.attn.indexer.wq_b", b, sizeof b) == 0 &&
          !strcmp(b, "model.layers.2.self_attn.compressor.indexer.q_b_proj"));
    CHECK(dsv4_module_hf_name("mtp.0.ffn.experts.1.w1", b, sizeof b) == 0 &&
          !strcmp(b, "model.mtp.0.mlp.experts.1.gate_proj"));
    CHECK(dsv4_module_hf_name("mtp.0.h_proj", b, sizeof b) == 0 && !strcmp(b, "model.mtp.0.h_proj"));
    CHECK(dsv4_module_hf_name("head", b, sizeof b) == 0 && !strcmp(b, "lm_head"));
    CHECK(dsv4_module_hf_name("embed", b, sizeof b) == 0 && !strcmp(b, "model.embed_tokens"));
}

TEST(regex_repetition_limits)
{
    M("re:a{100}$", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    BAD("a{101}", "repetition counts above 100");
    BAD("(a{20}){20}{20}", "repetition counts above 100");
    M("re:(a{2}){3}$", "aaaaaa");
}
