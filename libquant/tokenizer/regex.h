/* A small backtracking regex engine over Unicode code points, for the pre-tokenizer patterns of
 * tokenizer.json files, with Oniguruma's (Ruby syntax) semantics as `tokenizers` runs them:
 * leftmost match, alternatives tried in order, greedy / lazy / possessive quantifiers.
 *
 * Supported: literals and escapes (\t \n \r \f \v \a \e \xHH \x{H..} \uHHHH, escaped punctuation),
 * '.', classes with ranges, negation, \d \D \s \S \w \W \h \H \p{..} \P{..} \p{^..} (general
 * categories), groups (...) (?:...) (?i:...) (?-i:...) (?i) (?=...) (?!...) (?>...),
 * alternation, ? * + {n} {n,} {n,m} {,m} with lazy '?' and possessive '+' (on ? * +),
 * anchors ^ $ \A \z \Z \b \B. Anything else (backreferences, lookbehind, named groups, scripts
 * like \p{Han}, nested classes, class intersection, POSIX brackets, multi-character case folding,
 * unbounded repetition of something that can match empty) is refused at compile time with a
 * message saying what. */
#ifndef DSV4_TOK_REGEX_H
#define DSV4_TOK_REGEX_H

#include <stddef.h>
#include <stdint.h>

typedef struct dsv4_re dsv4_re;

/* Compiles pattern (UTF-8, len bytes). On failure returns -1 and writes why (e.g. "lookbehind
 * (?<= at offset 4 is not supported"). */
int dsv4_re_compile(const char *pattern, size_t len, dsv4_re **out, char *why, size_t whylen);
void dsv4_re_free(dsv4_re *re);

/* Leftmost match in cps[0..n) starting the search at `from` (earlier text is still seen by \b
 * and ^). Returns 1 with [*ms, *me) in code point indexes, 0 when none, -1 when the backtracking
 * budget ran out (pathological pattern and text). */
int dsv4_re_search(const dsv4_re *re, const uint32_t *cps, size_t n, size_t from, size_t *ms,
                   size_t *me);

/* Every match as Oniguruma's find_iter yields them (the onig crate's rules for empty matches):
 * *spans gets 2*count code point indexes (malloc'ed). Returns count, or -1 (budget, memory). */
long dsv4_re_find_all(const dsv4_re *re, const uint32_t *cps, size_t n, size_t **spans);

#endif
