/* JSON emission with reference-compatible escaping (see json_out.h). */
#include "io/json_out.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dsv4_jbuf_free(dsv4_jbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static int reserve(dsv4_jbuf *b, size_t extra)
{
    if (b->oom)
        return -1;
    if (b->n + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra + 1)
        cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) {
        b->oom = 1;
        return -1;
    }
    b->p = np;
    b->cap = cap;
    return 0;
}

void dsv4_jbuf_put(dsv4_jbuf *b, const void *s, size_t n)
{
    if (reserve(b, n))
        return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void dsv4_jbuf_puts(dsv4_jbuf *b, const char *s)
{
    dsv4_jbuf_put(b, s, strlen(s));
}

void dsv4_jbuf_printf(dsv4_jbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0 || reserve(b, (size_t)k))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

/* The short escape for c, or 0 when it has none. */
static char short_escape(unsigned char c)
{
    switch (c) {
    case '"': return '"';
    case '\\': return '\\';
    case '\b': return 'b';
    case '\f': return 'f';
    case '\n': return 'n';
    case '\r': return 'r';
    case '\t': return 't';
    default: return 0;
    }
}

void dsv4_jbuf_str_serde(dsv4_jbuf *b, const char *s)
{
    dsv4_jbuf_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc = short_escape(*p);
        if (esc) {
            char two[2] = {'\\', esc};
            dsv4_jbuf_put(b, two, 2);
        } else if (*p < 0x20) {
            dsv4_jbuf_printf(b, "\\u%04x", *p);
        } else {
            dsv4_jbuf_put(b, p, 1);
        }
    }
    dsv4_jbuf_put(b, "\"", 1);
}

/* Decodes one UTF-8 sequence at s (n bytes available); returns its length, or 0 when malformed. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len;
    uint32_t min;
    if ((s[0] & 0xE0) == 0xC0) {
        len = 2, min = 0x80, *cp = s[0] & 0x1F;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3, min = 0x800, *cp = s[0] & 0x0F;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4, min = 0x10000, *cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3F);
    }
    if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF))
        return 0;
    return len;
}

int dsv4_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = utf8_decode(p + i, n - i, &cp);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

void dsv4_jbuf_str_ascii(dsv4_jbuf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    dsv4_jbuf_put(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = utf8_decode(p + i, n - i, &cp);
        if (!k) { /* not UTF-8: callers validate first; keep the output well-formed regardless */
            cp = 0xFFFD;
            k = 1;
        }
        i += k;
        char esc = cp < 0x80 ? short_escape((unsigned char)cp) : 0;
        if (esc) {
            char two[2] = {'\\', esc};
            dsv4_jbuf_put(b, two, 2);
        } else if (cp >= 0x20 && cp <= 0x7E) {
            char c = (char)cp;
            dsv4_jbuf_put(b, &c, 1);
        } else if (cp < 0x10000) {
            dsv4_jbuf_printf(b, "\\u%04x", (unsigned)cp);
        } else {
            uint32_t v = cp - 0x10000;
            dsv4_jbuf_printf(b, "\\u%04x\\u%04x", (unsigned)(0xD800 + (v >> 10)),
                             (unsigned)(0xDC00 + (v & 0x3FF)));
        }
    }
    dsv4_jbuf_put(b, "\"", 1);
}
