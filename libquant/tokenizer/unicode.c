/* Lookups over the generated Unicode tables (unicode_tables.c): binary searches, plus the
 * property-name table of \p{...}. */
#include "tokenizer/unicode.h"

#include <ctype.h>
#include <string.h>

int dsv4_uc_category(uint32_t cp)
{
    size_t lo = 0, hi = dsv4_uc_cat_nranges;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const dsv4_uc_range *r = &dsv4_uc_cat_ranges[mid];
        if (cp < r->lo)
            hi = mid;
        else if (cp > r->hi)
            lo = mid + 1;
        else
            return r->cat;
    }
    return DSV4_UC_Cn;
}

uint32_t dsv4_uc_fold(uint32_t cp)
{
    size_t lo = 0, hi = dsv4_uc_fold_nsimple;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < dsv4_uc_fold_simple[mid].a)
            hi = mid;
        else if (cp > dsv4_uc_fold_simple[mid].a)
            lo = mid + 1;
        else
            return dsv4_uc_fold_simple[mid].b;
    }
    return cp;
}

static int in_ranges(const dsv4_uc_pair *r, size_t n, uint32_t cp)
{
    for (size_t i = 0; i < n; i++)
        if (cp >= r[i].a && cp <= r[i].b)
            return 1;
    return 0;
}

int dsv4_uc_is_space(uint32_t cp)
{
    return in_ranges(dsv4_uc_white_space, dsv4_uc_white_space_n, cp);
}

int dsv4_uc_is_word(uint32_t cp)
{
    uint32_t m = DSV4_UC_BIT(dsv4_uc_category(cp));
    if (m & (DSV4_UC_MASK_L | DSV4_UC_MASK_M | DSV4_UC_BIT(DSV4_UC_Nd) | DSV4_UC_BIT(DSV4_UC_Nl) |
             DSV4_UC_BIT(DSV4_UC_Pc)))
        return 1;
    if (cp == 0x200C || cp == 0x200D) /* Join_Control */
        return 1;
    return in_ranges(dsv4_uc_other_alpha_so, dsv4_uc_other_alpha_so_n, cp);
}

int dsv4_uc_is_onig_word(uint32_t cp)
{
    if (cp == 0xB2 || cp == 0xB3 || cp == 0xB9 || cp == 0xBC || cp == 0xBD || cp == 0xBE)
        return 1;
    return cp != 0x200C && cp != 0x200D && dsv4_uc_is_word(cp);
}

int dsv4_uc_fold_class(uint32_t cp, uint32_t *out, int max)
{
    uint32_t f = dsv4_uc_fold(cp);
    int n = 0;
    if (n < max)
        out[n++] = cp;
    if (f != cp && n < max)
        out[n++] = f;
    for (size_t i = 0; i < dsv4_uc_fold_nsimple && n < max; i++)
        if (dsv4_uc_fold_simple[i].b == f && dsv4_uc_fold_simple[i].a != cp)
            out[n++] = dsv4_uc_fold_simple[i].a;
    return n;
}

/* Long names of the categories and groups; short ones come from dsv4_uc_cat_names. */
static const struct { const char *name; uint32_t mask; } long_names[] = {
    {"letter", DSV4_UC_MASK_L}, {"mark", DSV4_UC_MASK_M}, {"combiningmark", DSV4_UC_MASK_M},
    {"number", DSV4_UC_MASK_N},
    {"punctuation", DSV4_UC_BIT(DSV4_UC_Pc) | DSV4_UC_BIT(DSV4_UC_Pd) | DSV4_UC_BIT(DSV4_UC_Ps) |
                    DSV4_UC_BIT(DSV4_UC_Pe) | DSV4_UC_BIT(DSV4_UC_Pi) | DSV4_UC_BIT(DSV4_UC_Pf) |
                    DSV4_UC_BIT(DSV4_UC_Po)},
    {"symbol", DSV4_UC_BIT(DSV4_UC_Sm) | DSV4_UC_BIT(DSV4_UC_Sc) | DSV4_UC_BIT(DSV4_UC_Sk) |
               DSV4_UC_BIT(DSV4_UC_So)},
    {"separator", DSV4_UC_BIT(DSV4_UC_Zs) | DSV4_UC_BIT(DSV4_UC_Zl) | DSV4_UC_BIT(DSV4_UC_Zp)},
    {"other", DSV4_UC_BIT(DSV4_UC_Cc) | DSV4_UC_BIT(DSV4_UC_Cf) | DSV4_UC_BIT(DSV4_UC_Cs) |
              DSV4_UC_BIT(DSV4_UC_Co) | DSV4_UC_BIT(DSV4_UC_Cn)},
    {"uppercaseletter", DSV4_UC_BIT(DSV4_UC_Lu)}, {"lowercaseletter", DSV4_UC_BIT(DSV4_UC_Ll)},
    {"titlecaseletter", DSV4_UC_BIT(DSV4_UC_Lt)}, {"modifierletter", DSV4_UC_BIT(DSV4_UC_Lm)},
    {"otherletter", DSV4_UC_BIT(DSV4_UC_Lo)}, {"nonspacingmark", DSV4_UC_BIT(DSV4_UC_Mn)},
    {"spacingmark", DSV4_UC_BIT(DSV4_UC_Mc)}, {"enclosingmark", DSV4_UC_BIT(DSV4_UC_Me)},
    {"decimalnumber", DSV4_UC_BIT(DSV4_UC_Nd)}, {"letternumber", DSV4_UC_BIT(DSV4_UC_Nl)},
    {"othernumber", DSV4_UC_BIT(DSV4_UC_No)}, {"connectorpunctuation", DSV4_UC_BIT(DSV4_UC_Pc)},
    {"dashpunctuation", DSV4_UC_BIT(DSV4_UC_Pd)}, {"openpunctuation", DSV4_UC_BIT(DSV4_UC_Ps)},
    {"closepunctuation", DSV4_UC_BIT(DSV4_UC_Pe)}, {"initialpunctuation", DSV4_UC_BIT(DSV4_UC_Pi)},
    {"finalpunctuation", DSV4_UC_BIT(DSV4_UC_Pf)}, {"otherpunctuation", DSV4_UC_BIT(DSV4_UC_Po)},
    {"mathsymbol", DSV4_UC_BIT(DSV4_UC_Sm)}, {"currencysymbol", DSV4_UC_BIT(DSV4_UC_Sc)},
    {"modifiersymbol", DSV4_UC_BIT(DSV4_UC_Sk)}, {"othersymbol", DSV4_UC_BIT(DSV4_UC_So)},
    {"spaceseparator", DSV4_UC_BIT(DSV4_UC_Zs)}, {"lineseparator", DSV4_UC_BIT(DSV4_UC_Zl)},
    {"paragraphseparator", DSV4_UC_BIT(DSV4_UC_Zp)}, {"control", DSV4_UC_BIT(DSV4_UC_Cc)},
    {"format", DSV4_UC_BIT(DSV4_UC_Cf)}, {"surrogate", DSV4_UC_BIT(DSV4_UC_Cs)},
    {"privateuse", DSV4_UC_BIT(DSV4_UC_Co)}, {"unassigned", DSV4_UC_BIT(DSV4_UC_Cn)},
};

uint32_t dsv4_uc_property_mask(const char *name, size_t len)
{
    char k[40];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (c == ' ' || c == '_' || c == '-')
            continue;
        if (n + 1 >= sizeof k)
            return 0;
        k[n++] = (char)tolower((unsigned char)c);
    }
    k[n] = 0;
    if (n == 1) {
        static const char groups[] = "lmnpszc";
        const char *g = strchr(groups, k[0]);
        if (!g)
            return 0;
        uint32_t m = 0;
        for (int c = 0; c < DSV4_UC_NCAT; c++)
            if (tolower((unsigned char)dsv4_uc_cat_names[c][0]) == k[0])
                m |= DSV4_UC_BIT(c);
        return m;
    }
    if (n == 2)
        for (int c = 0; c < DSV4_UC_NCAT; c++)
            if (tolower((unsigned char)dsv4_uc_cat_names[c][0]) == k[0] &&
                tolower((unsigned char)dsv4_uc_cat_names[c][1]) == k[1])
                return DSV4_UC_BIT(c);
    for (size_t i = 0; i < sizeof long_names / sizeof long_names[0]; i++)
        if (!strcmp(k, long_names[i].name))
            return long_names[i].mask;
    return 0;
}
