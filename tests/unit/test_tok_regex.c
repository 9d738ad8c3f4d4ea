/* The tokenizer's regex engine on hand-derived cases (what Oniguruma's leftmost, ordered-
 * alternative backtracking gives), the constructs it refuses, UTF-8 repair as Rust's
 * from_utf8_lossy does it, and the Unicode data (checked over every code point against
 * tokenizers' Oniguruma in test_tok_vectors' regex vectors). */
#include "harness.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"

#include <stdlib.h>
#include <string.h>

/* Matches of pattern in text as "s-e s-e ..." (code point offsets). */
static void expect(const char *pattern, const char *text, const char *want, int line)
{
    char why[256];
    dsv4_re *re;
    if (dsv4_re_compile(pattern, strlen(pattern), &re, why, sizeof why)) {
        th_fail(__FILE__, line, "\"%s\": %s", pattern, why);
        return;
    }
    uint32_t *cps;
    size_t n, *sp;
    REQUIRE(tok_utf8_decode(text, strlen(text), &cps, NULL, &n) == 0);
    long k = dsv4_re_find_all(re, cps, n, &sp);
    char got[512] = "";
    size_t off = 0;
    for (long i = 0; i < k && off < sizeof got; i++)
        off += (size_t)snprintf(got + off, sizeof got - off, "%s%zu-%zu", i ? " " : "", sp[2 * i], sp[2 * i + 1]);
    if (strcmp(got, want))
        th_fail(__FILE__, line, "\"%s\" on \"%s\": got \"%s\", expected \"%s\"", pattern, text, got, want);
    if (k >= 0)
        free(sp);
    free(cps);
    dsv4_re_free(re);
}
#define M(p, t, w) expect(p, t, w, __LINE__)

static void refused(const char *pattern, const char *needle, int line)
{
    char why[256] = "";
    dsv4_re *re;
    if (dsv4_re_compile(pattern, strlen(pattern), &re, why, sizeof why) == 0) {
        th_fail(__FILE__, line, "\"%s\" compiled", pattern);
        dsv4_re_free(re);
    } else if (!strstr(why, needle)) {
        th_fail(__FILE__, line, "\"%s\": expected \"%s\" in \"%s\"", pattern, needle, why);
    }
}
#define R(p, n) refused(p, n, __LINE__)

TEST(tok_regex_alternation_and_quantifiers)
{
    M("ab|a", "aab", "0-1 1-3");           /* leftmost start wins, then the first alternative that matches */
    M("a|ab", "ab", "0-1");                /* ordered, not longest */
    M("a+", "caaab", "1-4");
    M("a+?", "aaa", "0-1 1-2 2-3");
    M("a*?b", "aab", "0-3");
    M("x{2,3}", "xxxxxxx", "0-3 3-6");
    M("x{2,3}?", "xxxxx", "0-2 2-4");
    M("x{2}", "xxxxx", "0-2 2-4");
    M("x{,2}y", "xxxy", "1-4");
    M("x{2,}", "x xx xxxx", "2-4 5-9");
    M("a{1,3}b{0,1}c?", "aaaabc", "0-3 3-6");
    M("(?:ab|a)(?:bc|c)", "abc", "0-3");   /* backtracks into the first group */
    M("(?>ab|a)bc", "abc", "");           /* atomic: no retry of "a" after "ab" */
    M("(?:ab|a)bc", "abc", "0-3");
    M("a++a", "aaaa", "");                 /* possessive never gives back */
    M("a*+b", "aab", "0-3");
    M("colou?r", "color colour colouur", "0-5 6-12");
}

TEST(tok_regex_lookahead_anchors_empty)
{
    M("\\s+(?!\\S)", "a   b", "1-3");    /* leaves the last space to the next word */
    M("\\s+(?!\\S)|\\s+", "a   b", "1-3 3-4");
    M("\\d(?=px)", "1px 2em 3px", "0-1 8-9");
    M("^a", "a\na", "0-1 2-3");           /* Ruby syntax: ^ and $ are line anchors */
    M("a$", "a\na", "0-1 2-3");
    M("\\Aa|a\\z", "a\naa", "0-1 3-4");
    M("a\\Z", "a\na\n", "2-3");
    M("\\bis\\b", "this is his island", "5-7");
    M("\\Bis", "this is", "2-4");
    M("x*", "ab", "0-0 1-1 2-2");          /* empty matches step over one character */
    M("a*", "baa", "0-0 1-3");             /* no empty match right after a match */
    M("", "", "0-0");
}

TEST(tok_regex_classes_and_properties)
{
    M("[a-c]+", "abcd cab", "0-3 5-8");
    M("[^a-c\\s]+", "abcd cab", "3-4");
    M("[\\-.]", "a-b.c", "1-2 3-4");
    M("[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+", "x.foo [bar ^caret", "1-5 6-10 11-17");
    M("\\p{L}+", "h\xc3\xa9llo w\xc3\xb6rld 42", "0-5 6-11");          /* héllo wörld */
    M("\\p{N}{1,3}", "12345", "0-3 3-5");
    M("\\p{Lu}\\p{Ll}*", "CamelCaseX", "0-5 5-9 9-10");
    M("\\P{L}+", "ab12cd", "2-4");
    M("\\p{^N}+", "ab12cd", "0-2 4-6");
    M("\\p{Letter}|\\p{Nd}", "a1-", "0-1 1-2");
    M("[\\p{P}\\p{S}]+", "a+-=!b", "1-5");
    M("\\p{M}", "e\xcc\x81", "1-2");                                       /* e + U+0301 */
    M("[\xe4\xb8\x80-\xe9\xbe\xa5]+", "ab\xe4\xb8\xad\xe6\x96\x87" "cd", "2-4"); /* [一-龥]+ on ab中文cd */
    M("\\s+", "a\xc2\xa0\xe3\x80\x80" "b\x1c" "c", "1-3");                 /* NBSP, U+3000; U+001C is not White_Space */
    M("\\d+", "x\xd9\xa1\xd9\xa2" "3", "1-4");                             /* Arabic-Indic digits are \d */
    M("\\w+", "a_1\xe2\x80\x8d" "b \xc2\xb2", "0-3 4-5 6-7");              /* ZWJ is not \w for Oniguruma, ² is */
    M("\\h+", "0xBEEF zz", "0-1 2-6");
    M(".+", "ab\ncd", "0-2 3-5");
    M("\\x41\\u0042\\x{43}", "ABC", "0-3");
    M("\\t|\\n|\\r", "a\tb\r\n", "1-2 3-4 4-5");
}

TEST(tok_regex_case_insensitive)
{
    M("(?i:'s|'t)", "it's IT'S it'T", "2-4 7-9 12-14");
    M("(?i:'s)", "'\xc5\xbf", "0-2");        /* U+017F LONG S folds to s, as Oniguruma's */
    M("(?i)ab|cd", "AB cD", "0-2 3-5");       /* (?i) holds to the end of the group, alternatives included */
    M("a(?i:b)c", "aBc ABC abC", "0-3");
    M("(?i:[a-c]+)", "xAbCx", "1-4");
    M("(?i:[^a-c])", "aBz", "2-3");
}

TEST(tok_regex_refusals)
{
    R("(a)\\1", "backreference");
    R("(?<=a)b", "lookbehind");
    R("(?<name>a)", "not supported");
    R("\\p{Han}", "not a Unicode general category");
    R("[a[b]]", "nested class");
    R("[a&&b]", "intersection");
    R("(?:a*)*", "can match empty");
    R("a**", "nested quantifier");
    R("a{2}+", "nested quantifier");
    R("(?i:ss)", "multi-character case folding");
    R("(?i:\xc3\x9f)", "folds to several characters");
    R("(?x)a", "not supported");
    R("a)", "unbalanced");
    R("(a", "unterminated group");
    R("[a", "unterminated class");
    R("*a", "nothing to repeat");
    R("\\q", "escape \\q");
    R("a{1001}", "repetition bounds");
}

TEST(tok_utf8_lossy_like_rust)
{
    struct { const char *in; size_t len; const char *out; } c[] = {
        {"ab", 2, "ab"},
        {"\xff", 1, "\xef\xbf\xbd"},
        {"a\xe4\xb8", 3, "a\xef\xbf\xbd"},                       /* truncated 3-byte sequence: one U+FFFD */
        {"\xe4\xb8" "a", 3, "\xef\xbf\xbd" "a"},
        {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate: ED then two stray bytes */
        {"\xf0\x9f\x98", 3, "\xef\xbf\xbd"},
        {"\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xf4\x90\x80\x80", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char *o;
        size_t ol;
        REQUIRE(tok_utf8_lossy((const unsigned char *)c[i].in, c[i].len, &o, &ol) == 0);
        CHECK_MSG(ol == strlen(c[i].out) && !memcmp(o, c[i].out, ol), "case %zu", i);
        free(o);
    }
    CHECK_EQ_INT(tok_utf8_valid("a\xc3\xa9\xff", 4), 3);
}

TEST(tok_unicode_tables)
{
    CHECK(!strcmp(dsv4_uc_version, "16.0.0"));
    CHECK_EQ_INT(dsv4_uc_category('A'), DSV4_UC_Lu);
    CHECK_EQ_INT(dsv4_uc_category(0x4E2D), DSV4_UC_Lo);
    CHECK_EQ_INT(dsv4_uc_category(0x16D40), DSV4_UC_Lm);  /* new in Unicode 16 */
    CHECK_EQ_INT(dsv4_uc_category(0x10940), DSV4_UC_Cn);  /* new in Unicode 17: unassigned here */
    CHECK_EQ_INT(dsv4_uc_category(0x0378), DSV4_UC_Cn);
    CHECK_EQ_INT(dsv4_uc_category(0x110000), DSV4_UC_Cn);
    CHECK_EQ_INT(dsv4_uc_fold('K'), 'k');
    CHECK_EQ_INT(dsv4_uc_fold(0x212A), 'k');              /* KELVIN SIGN */
    CHECK_EQ_INT(dsv4_uc_fold(0x1E9E), 0xDF);
    CHECK(dsv4_uc_is_word(0x200D) && !dsv4_uc_is_onig_word(0x200D));
    CHECK(dsv4_uc_is_onig_word(0xB2) && !dsv4_uc_is_word(0xB2));
    CHECK(dsv4_uc_is_word(0x24B6));                      /* circled A: Other_Alphabetic */
    CHECK_EQ_INT(dsv4_uc_property_mask("Lu", 2), DSV4_UC_BIT(DSV4_UC_Lu));
    CHECK_EQ_INT(dsv4_uc_property_mask("Uppercase_Letter", 16), DSV4_UC_BIT(DSV4_UC_Lu));
    CHECK_EQ_INT(dsv4_uc_property_mask("Han", 3), 0);
}
