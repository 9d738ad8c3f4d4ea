/* A growing byte buffer for emitting JSON byte-for-byte the way the reference tools do: serde_json
 * string escaping for safetensors headers (what safetensors' Rust writer produces), and Python
 * json.dumps(ensure_ascii=True) escaping for the index and manifest files (what transformers
 * writes). Out-of-memory is sticky: check `oom` once at the end. */
#ifndef DSV4_JSON_OUT_H
#define DSV4_JSON_OUT_H

#include <stddef.h>

typedef struct dsv4_jbuf {
    char *p;     /* NUL-terminated after every append (when not oom) */
    size_t n, cap;
    int oom;
} dsv4_jbuf;

void dsv4_jbuf_free(dsv4_jbuf *b);
void dsv4_jbuf_put(dsv4_jbuf *b, const void *s, size_t n);
void dsv4_jbuf_puts(dsv4_jbuf *b, const char *s);
void dsv4_jbuf_printf(dsv4_jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A quoted string escaped as serde_json does: \" \\ \b \f \n \r \t, other bytes below 0x20 as
 * \u00xx (lowercase hex), everything else (DEL and UTF-8 included) copied as is. */
void dsv4_jbuf_str_serde(dsv4_jbuf *b, const char *s);
/* A quoted string escaped as Python's json.dumps with ensure_ascii=True: the same short escapes,
 * every other code point outside 0x20..0x7e as \uxxxx (UTF-16 surrogate pairs above 0xffff).
 * `s` must be valid UTF-8 (see dsv4_utf8_valid). */
void dsv4_jbuf_str_ascii(dsv4_jbuf *b, const char *s);

/* True when s[0..n) is well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF). */
int dsv4_utf8_valid(const char *s, size_t n);

#endif
