/* UTF-8 decoding, encoding and lossy repair (see utf8.h). */
#include "tokenizer/utf8.h"

#include <stdlib.h>
#include <string.h>

int tok_utf8_seq(const unsigned char *s, size_t left, uint32_t *cp)
{
    if (left == 0)
        return 0;
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int n;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) n = 2, v = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) n = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) n = 4, v = c & 0x07, min = 0x10000;
    else return 0;
    if (left < (size_t)n)
        return 0;
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

size_t tok_utf8_valid(const char *s, size_t len)
{
    size_t i = 0;
    uint32_t cp;
    while (i < len) {
        int k = tok_utf8_seq((const unsigned char *)s + i, len - i, &cp);
        if (!k)
            return i;
        i += (size_t)k;
    }
    return len;
}

int tok_utf8_decode(const char *s, size_t len, uint32_t **cps, size_t **offs, size_t *n)
{
    *cps = malloc((len + 1) * sizeof **cps);
    size_t *o = offs ? malloc((len + 1) * sizeof *o) : NULL;
    if (!*cps || (offs && !o)) {
        free(*cps);
        free(o);
        *cps = NULL;
        return -1;
    }
    size_t i = 0, k = 0;
    while (i < len) {
        uint32_t cp;
        int m = tok_utf8_seq((const unsigned char *)s + i, len - i, &cp);
        if (!m) {
            free(*cps);
            free(o);
            *cps = NULL;
            return -1;
        }
        if (o)
            o[k] = i;
        (*cps)[k++] = cp;
        i += (size_t)m;
    }
    if (o) {
        o[k] = len;
        *offs = o;
    }
    *n = k;
    return 0;
}

int tok_utf8_put(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the maximal prefix of an ill-formed sequence at s (Unicode "maximal subpart"), as
 * Rust's Utf8Chunks uses: the lead byte plus the continuation bytes that a valid sequence with
 * that lead could still have. At least 1. */
static size_t invalid_len(const unsigned char *s, size_t left)
{
    unsigned c = s[0];
    unsigned lo = 0x80, hi = 0xBF;
    int need;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c == 0xE0) need = 2, lo = 0xA0;
    else if (c >= 0xE1 && c <= 0xEC) need = 2;
    else if (c == 0xED) need = 2, hi = 0x9F;
    else if (c >= 0xEE && c <= 0xEF) need = 2;
    else if (c == 0xF0) need = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) need = 3;
    else if (c == 0xF4) need = 3, hi = 0x8F;
    else return 1;
    size_t k = 1;
    for (int i = 0; i < need && k < left; i++, k++) {
        unsigned b = s[k];
        if (i == 0 ? (b < lo || b > hi) : (b & 0xC0) != 0x80)
            break;
    }
    return k;
}

int tok_utf8_lossy(const unsigned char *s, size_t len, char **out, size_t *outlen)
{
    char *o = malloc(len * 3 + 1); /* each invalid byte -> at most 3 bytes of U+FFFD */
    if (!o)
        return -1;
    size_t i = 0, k = 0;
    while (i < len) {
        uint32_t cp;
        int m = tok_utf8_seq(s + i, len - i, &cp);
        if (m) {
            memcpy(o + k, s + i, (size_t)m);
            k += (size_t)m;
            i += (size_t)m;
        } else {
            i += invalid_len(s + i, len - i);
            k += (size_t)tok_utf8_put(0xFFFD, o + k);
        }
    }
    o[k] = 0;
    *out = o;
    *outlen = k;
    return 0;
}
