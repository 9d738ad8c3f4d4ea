/* Unicode character data for the tokenizer's regex engine and pre-tokenizers: general category,
 * simple case folding, White_Space and \w membership. The tables are generated
 * (unicode_tables.c, by scripts/gen_unicode_tables.py) for the Unicode version of the Oniguruma
 * that `tokenizers` links, so that \p{L} or \s classify every code point as it does. */
#ifndef DSV4_TOK_UNICODE_H
#define DSV4_TOK_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* General categories, in the order of the generated table (bit i of a category mask = enum i). */
enum {
    DSV4_UC_Lu, DSV4_UC_Ll, DSV4_UC_Lt, DSV4_UC_Lm, DSV4_UC_Lo, DSV4_UC_Mn, DSV4_UC_Mc, DSV4_UC_Me,
    DSV4_UC_Nd, DSV4_UC_Nl, DSV4_UC_No, DSV4_UC_Pc, DSV4_UC_Pd, DSV4_UC_Ps, DSV4_UC_Pe, DSV4_UC_Pi,
    DSV4_UC_Pf, DSV4_UC_Po, DSV4_UC_Sm, DSV4_UC_Sc, DSV4_UC_Sk, DSV4_UC_So, DSV4_UC_Zs, DSV4_UC_Zl,
    DSV4_UC_Zp, DSV4_UC_Cc, DSV4_UC_Cf, DSV4_UC_Cs, DSV4_UC_Co, DSV4_UC_Cn, DSV4_UC_NCAT
};
#define DSV4_UC_BIT(c) (1u << (c))
#define DSV4_UC_MASK_L (DSV4_UC_BIT(DSV4_UC_Lu) | DSV4_UC_BIT(DSV4_UC_Ll) | DSV4_UC_BIT(DSV4_UC_Lt) | \
                        DSV4_UC_BIT(DSV4_UC_Lm) | DSV4_UC_BIT(DSV4_UC_Lo))
#define DSV4_UC_MASK_M (DSV4_UC_BIT(DSV4_UC_Mn) | DSV4_UC_BIT(DSV4_UC_Mc) | DSV4_UC_BIT(DSV4_UC_Me))
#define DSV4_UC_MASK_N (DSV4_UC_BIT(DSV4_UC_Nd) | DSV4_UC_BIT(DSV4_UC_Nl) | DSV4_UC_BIT(DSV4_UC_No))

typedef struct { uint32_t lo, hi; uint8_t cat; } dsv4_uc_range;
typedef struct { uint32_t a, b; } dsv4_uc_pair;

/* The generated tables (unicode_tables.c). */
extern const char dsv4_uc_version[];
extern const char *const dsv4_uc_cat_names[DSV4_UC_NCAT];
extern const dsv4_uc_range dsv4_uc_cat_ranges[];
extern const size_t dsv4_uc_cat_nranges;
extern const dsv4_uc_pair dsv4_uc_fold_simple[]; /* sorted by a: code point -> its simple folding */
extern const size_t dsv4_uc_fold_nsimple;
extern const uint32_t dsv4_uc_fold_multi[][4];   /* code point, then its 2-3 code point folding */
extern const size_t dsv4_uc_fold_nmulti;
extern const dsv4_uc_pair dsv4_uc_white_space[]; /* ranges lo..hi */
extern const size_t dsv4_uc_white_space_n;
extern const dsv4_uc_pair dsv4_uc_other_alpha_so[];
extern const size_t dsv4_uc_other_alpha_so_n;

int dsv4_uc_category(uint32_t cp);          /* DSV4_UC_Cn for unassigned and out of range */
uint32_t dsv4_uc_fold(uint32_t cp);         /* simple case folding (cp itself when none) */
int dsv4_uc_is_space(uint32_t cp);          /* White_Space: Oniguruma's \s */
/* \w of Rust's regex crate (UTS #18: Alphabetic | M | Nd | Pc | Join_Control), which `tokenizers`
 * uses for added tokens' single_word. */
int dsv4_uc_is_word(uint32_t cp);
/* \w of Oniguruma: the same without Join_Control, plus the Latin-1 fractions and superscript
 * digits that its ISO-8859-1 ctype table marks as word characters (checked over every code point
 * against tokenizers 0.23.2). */
int dsv4_uc_is_onig_word(uint32_t cp);
/* Every code point whose simple case folding equals fold(cp), cp included: up to max into out;
 * returns how many. */
int dsv4_uc_fold_class(uint32_t cp, uint32_t *out, int max);
/* Category mask of a property name as Oniguruma spells it (L, Lu, Letter, Uppercase_Letter, ...;
 * case, spaces, '_' and '-' ignored); 0 when the name is not a general category. */
uint32_t dsv4_uc_property_mask(const char *name, size_t len);

#endif
