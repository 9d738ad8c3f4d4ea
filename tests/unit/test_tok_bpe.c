/* The tokenizer on small hand-made tokenizer.json files whose results follow from the BPE rules
 * (merge order by rank, leftmost first; unk and byte fallback; ignore_merges; added tokens with
 * lstrip / rstrip / single_word), on random-text round trips through the real ones, and the
 * refusals: what the loader does not implement, and bad input. */
#include "harness.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes a tokenizer.json: model fields, extra vocab entries ("tok": id, ...), merges, added
 * tokens and pipeline parts as JSON fragments. The 256 byte-level characters get ids 0..255. */
static const char *write_tok(const char *name, const char *model_extra, const char *vocab_extra, const char *merges,
                             const char *added, const char *pre, const char *post, const char *normalizer)
{
    static char path[4][512];
    static int slot;
    char *p = path[slot++ % 4];
    snprintf(p, 512, "%s/%s", th_tmpdir(), name);
    FILE *f = fopen(p, "w");
    if (!f)
        return p;
    fprintf(f, "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, \"added_tokens\": [%s],\n"
               "\"normalizer\": %s, \"pre_tokenizer\": %s, \"post_processor\": %s,\n"
               "\"decoder\": {\"type\": \"ByteLevel\"},\n\"model\": {\"type\": \"BPE\", \"dropout\": null, %s \"vocab\": {",
            added, normalizer, pre, post, model_extra);
    for (int b = 0; b < 256; b++) {
        char u[4];
        int l = tok_utf8_put(tok_byte_to_cp((uint8_t)b), u);
        fprintf(f, "%s\"", b ? ", " : "");
        if (b == '"' || b == '\\')
            fputc('\\', f);
        fwrite(u, 1, (size_t)l, f);
        fprintf(f, "\": %d", b);
    }
    fprintf(f, "%s%s}, \"merges\": [%s]}}\n", *vocab_extra ? ", " : "", vocab_extra, merges);
    fclose(f);
    return p;
}

#define BL "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}"

static void expect_ids(dsv4_tok *t, const char *text, int special, const int32_t *want, size_t nwant, int line)
{
    dsv4_err e;
    int32_t *ids;
    size_t n;
    if (dsv4_tok_encode(t, text, strlen(text), special, &ids, &n, &e)) {
        th_fail(__FILE__, line, "\"%s\": %s", text, e.msg);
        return;
    }
    int ok = n == nwant && !memcmp(ids, want, n * sizeof *ids);
    if (!ok) {
        char got[256] = "";
        size_t off = 0;
        for (size_t i = 0; i < n && off < sizeof got; i++)
            off += (size_t)snprintf(got + off, sizeof got - off, " %d", ids[i]);
        th_fail(__FILE__, line, "\"%s\": got%s", text, got);
    }
    free(ids);
}
#define IDS(t, text, sp, ...) do { const int32_t w_[] = {__VA_ARGS__}; \
    expect_ids(t, text, sp, w_, sizeof w_ / sizeof w_[0], __LINE__); } while (0)

TEST(tok_bpe_merge_order)
{
    dsv4_err e;
    dsv4_tok *t;
    /* b+c has the lowest rank: "abc" -> a, bc -> abc (via "a bc"); "ab" alone -> ab */
    const char *p = write_tok("order.json", "", "\"ab\": 256, \"bc\": 257, \"abc\": 258, \"aa\": 259",
                              "\"b c\", \"a b\", \"a bc\", [\"a\", \"a\"]", "", BL, "null", "null");
    REQUIRE(dsv4_tok_load(p, &t, &e) == 0);
    IDS(t, "abc", 0, 258);
    IDS(t, "ab", 0, 256);
    IDS(t, "abab", 0, 256, 256);
    IDS(t, "aaa", 0, 259, 'a');                 /* equal ranks: the leftmost pair first */
    IDS(t, "aaaa", 0, 259, 259);
    IDS(t, "cab", 0, 'c', 256);
    dsv4_tok_free(t);
    /* the same vocabulary with a+b first: "abc" -> ab, c (no "ab c" merge) */
    p = write_tok("order2.json", "", "\"ab\": 256, \"bc\": 257, \"abc\": 258", "\"a b\", \"b c\", \"a bc\"", "", BL,
                  "null", "null");
    REQUIRE(dsv4_tok_load(p, &t, &e) == 0);
    IDS(t, "abc", 0, 256, 'c');
    dsv4_tok_free(t);
}

TEST(tok_bpe_ignore_merges_unk_byte_fallback)
{
    dsv4_err e;
    dsv4_tok *t;
    /* ignore_merges: a whole pre-token in the vocabulary is taken as is, even with no merge path */
    const char *p = write_tok("ignore.json", "\"ignore_merges\": true,", "\"xyz\": 256", "", "", BL, "null", "null");
    REQUIRE(dsv4_tok_load(p, &t, &e) == 0);
    IDS(t, "xyz", 0, 256);
    IDS(t, "xy", 0, 'x', 'y');
    dsv4_tok_free(t);
    /* No pre-tokenizer, no byte-level mapping: characters outside the vocabulary become <unk>
     * (fused when fuse_unk) or byte-fallback tokens. */
    p = write_tok("unk.json", "\"unk_token\": \"<unk>\", \"fuse_unk\": true,", "\"<unk>\": 256", "", "", "null", "null",
                  "null");
    REQUIRE(dsv4_tok_load(p, &t, &e) == 0);
    IDS(t, "a\xe4\xb8\xad\xe4\xb8\xad" "b", 0, 'a', 256, 'b'); /* a中中b */
    dsv4_tok_free(t);
    p = write_tok("unk2.json", "\"unk_token\": \"<unk>\", \"fuse_unk\": false,", "\"<unk>\": 256", "", "", "null", "null",
                  "null");
    REQUIRE(dsv4_tok_load(p, &t, &e) == 0);
    IDS(t, "a\xe4\xb8\xad\xe4\xb8\xad" "b", 0, 'a', 256, 256, 'b');
    dsv4_tok_free(t);
    p = write_tok("fallback.json", "\"byte_fallback\": true,", "\"<0xE4>\": 256, \"<0xB8>\": 257, \"<0xAD>\": 258", "", "", "null", "null",
                  "null");
    REQUIRE(dsv4_tok_load(p, &t, &e) == 0);
    IDS(t, "a\xe4\xb8\xad", 0, 'a', 256, 257, 258);
    int32_t *ids;
    size_t n;
    CHECK(dsv4_tok_encode(t, "\xd4\x80", 2, 0, &ids, &n, &e) == -1); /* no <0xD4>, no unk: refused */
    CHECK_STR_CONTAINS(e.msg, "U+0500, which is not in the vocabulary");
    dsv4_tok_free(t);
}

TEST(tok_added_token_rules)
{
    dsv4_err e;
    dsv4_tok *t;
    const char *added =
        "{\"id\": 256, \"content\": \"<s>\", \"special\": true, \"normalized\": false, \"lstrip\": false, \"rstrip\": false, \"single_word\": false},"
        "{\"id\": 257, \"content\": \"<m>\", \"special\": true, \"normalized\": false, \"lstrip\": true, \"rstrip\": true, \"single_word\": false},"
        "{\"id\": 258, \"content\": \"cat\", \"special\": false, \"normalized\": true, \"lstrip\": false, \"rstrip\": false, \"single_word\": true},"
        "{\"id\": 259, \"content\": \"<s><s>\", \"special\": false, \"normalized\": false, \"lstrip\": false, \"rstrip\": false, \"single_word\": false}";
    const char *post = "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}, "
                       "{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"pair\": [], \"special_tokens\": "
                       "{\"<s>\": {\"id\": \"<s>\", \"ids\": [256], \"tokens\": [\"<s>\"]}}}";
    const char *p = write_tok("added.json", "", "", "", added, "null", post, "null");
    REQUIRE(dsv4_tok_load(p, &t, &e) == 0);
    IDS(t, "a<s>b", 0, 'a', 256, 'b');
    IDS(t, "<s><s><s>", 0, 259, 256);           /* leftmost, then longest */
    IDS(t, "a  <m>  b", 0, 'a', 257, 'b');      /* lstrip / rstrip take the spaces */
    IDS(t, "cat-cats", 0, 258, '-', 'c', 'a', 't', 's'); /* single_word: not inside a word */
    IDS(t, "x", 1, 256, 'x');                   /* the template's BOS */
    IDS(t, "", 1, 256);
    CHECK_EQ_INT(dsv4_tok_bos(t), 256);
    CHECK_EQ_INT(dsv4_tok_eos(t), -1);
    CHECK_EQ_INT(dsv4_tok_vocab_size(t), 260);
    int32_t ids[] = {256, 'h', 'i', 257};
    char *text;
    size_t len;
    REQUIRE(dsv4_tok_decode(t, ids, 4, 1, &text, &len, &e) == 0);
    CHECK(!strcmp(text, "hi"));
    free(text);
    REQUIRE(dsv4_tok_decode(t, ids, 4, 0, &text, &len, &e) == 0);
    CHECK(!strcmp(text, "<s>hi<m>"));
    free(text);
    int32_t bad[] = {'a', 9999};
    CHECK(dsv4_tok_decode(t, bad, 2, 0, &text, &len, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "id 9999 (position 1) is not a token");
    CHECK_EQ_INT(e.code, DSV4_EXIT_BADINPUT);
    dsv4_tok_free(t);
}

static void refused(const char *name, const char *model_extra, const char *merges, const char *pre, const char *post,
                    const char *normalizer, const char *needle, int line)
{
    dsv4_err e;
    dsv4_tok *t;
    const char *p = write_tok(name, model_extra, "\"ab\": 256", merges, "", pre, post, normalizer);
    if (dsv4_tok_load(p, &t, &e) == 0) {
        th_fail(__FILE__, line, "%s loaded", name);
        dsv4_tok_free(t);
        return;
    }
    if (!strstr(e.msg, needle) || !strstr(e.msg, name) || e.code != DSV4_EXIT_BADINPUT)
        th_fail(__FILE__, line, "%s: expected \"%s\" in \"%s\" (code %d)", name, needle, e.msg, e.code);
}
#define REFUSED(name, me, merges, pre, post, norm, needle) refused(name, me, merges, pre, post, norm, needle, __LINE__)

TEST(tok_load_refusals)
{
    REFUSED("merge.json", "", "\"a b\", \"x y\"", BL, "null", "null", "\"xy\" is not in model.vocab");
    REFUSED("mergefmt.json", "", "\"a b c\"", BL, "null", "null", "not two tokens separated by one space");
    REFUSED("nfc.json", "", "", BL, "null", "{\"type\": \"NFC\"}", "normalizer NFC is not supported");
    REFUSED("dropout.json", "\"dropout\": 0.1,", "", BL, "null", "null", "duplicate"); /* set twice: bad JSON */
    REFUSED("meta.json", "", "", "{\"type\": \"Metaspace\"}", "null", "null", "pre_tokenizer Metaspace is not supported");
    REFUSED("lookbehind.json", "", "", "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(?<=a)b\"}, \"behavior\": \"Isolated\"}",
            "null", "null", "lookbehind");
    REFUSED("behavior.json", "", "", "{\"type\": \"Split\", \"pattern\": {\"String\": \"a\"}, \"behavior\": \"Sideways\"}",
            "null", "null", "behavior must be");
    REFUSED("roberta.json", "", "", BL, "{\"type\": \"RobertaProcessing\"}", "null", "post_processor RobertaProcessing");
    REFUSED("prefix.json", "\"continuing_subword_prefix\": \"##\",", "", BL, "null", "null", "continuing_subword_prefix");
    dsv4_err e;
    dsv4_tok *t;
    CHECK(dsv4_tok_load(th_path("tests/data/tokenizer/nope.json"), &t, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "nope.json: No such file");
    /* invalid UTF-8 text is refused, naming the byte */
    REQUIRE(dsv4_tok_load(th_path("fixtures/dsv4-tiny"), &t, &e) == 0);
    int32_t *ids;
    size_t n;
    CHECK(dsv4_tok_encode(t, "ab\xff", 3, 0, &ids, &n, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "not valid UTF-8 (byte 2)");
    dsv4_tok_free(t);
}

/* Random text (ASCII, Latin, CJK, emoji, combining marks, whitespace, the special tokens) encodes
 * and decodes back to itself through byte-level tokenizers. */
TEST(tok_random_round_trips)
{
    const char *paths[] = {"fixtures/dsv4-tiny", "tests/data/tokenizer/deepseek_style.tokenizer.json",
                           "tests/data/tokenizer/cl100k_style.tokenizer.json"};
    static const uint32_t ranges[][2] = {{0x20, 0x7e}, {0x09, 0x0d}, {0xa0, 0x17f}, {0x300, 0x36f}, {0x4e00, 0x9fa5},
                                         {0x3040, 0x30ff}, {0x1f300, 0x1f64f}, {0x600, 0x6ff}, {0x10000, 0x10ffff}};
    for (size_t k = 0; k < sizeof paths / sizeof paths[0]; k++) {
        dsv4_err e;
        dsv4_tok *t;
        REQUIRE(dsv4_tok_load(th_path(paths[k]), &t, &e) == 0);
        for (int it = 0; it < 200; it++) {
            char text[1024];
            size_t len = 0;
            int nchar = (int)(th_rand() % 60);
            for (int c = 0; c < nchar; c++) {
                if (th_rand() % 40 == 0) {
                    const char *bos = "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>";
                    memcpy(text + len, bos, strlen(bos));
                    len += strlen(bos);
                    continue;
                }
                const uint32_t *r = ranges[th_rand() % (sizeof ranges / sizeof ranges[0])];
                uint32_t cp = r[0] + (uint32_t)(th_rand() % (r[1] - r[0] + 1));
                if (cp >= 0xd800 && cp <= 0xdfff)
                    cp = 'x';
                len += (size_t)tok_utf8_put(cp, text + len);
            }
            int32_t *ids;
            size_t n;
            char *back;
            size_t bl;
            if (dsv4_tok_encode(t, text, len, 0, &ids, &n, &e) || dsv4_tok_decode(t, ids, n, 0, &back, &bl, &e)) {
                th_fail(__FILE__, __LINE__, "%s: %s", paths[k], e.msg);
                break;
            }
            CHECK_MSG(bl == len && !memcmp(back, text, len), "%s: round trip %d differs", paths[k], it);
            free(ids);
            free(back);
        }
        dsv4_tok_free(t);
    }
}
