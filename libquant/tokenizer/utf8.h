/* UTF-8 for the tokenizer: strict decoding to code points (with byte offsets), encoding, and
 * Rust's String::from_utf8_lossy (each maximal invalid subpart becomes U+FFFD), which the
 * ByteLevel decoder of `tokenizers` applies to the decoded bytes. */
#ifndef DSV4_TOK_UTF8_H
#define DSV4_TOK_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes len bytes; *cps (and *offs when offs is not NULL: n+1 byte offsets, the last = len) are
 * malloc'ed. Returns 0, or -1 on invalid UTF-8 or no memory (tok_utf8_valid tells which byte is bad). */
int tok_utf8_decode(const char *s, size_t len, uint32_t **cps, size_t **offs, size_t *n);
/* Byte index of the first invalid sequence, or len when s is valid UTF-8. */
size_t tok_utf8_valid(const char *s, size_t len);
/* Writes cp's UTF-8 into out (4 bytes room); returns its length. */
int tok_utf8_put(uint32_t cp, char *out);
/* Length of the valid sequence at s (1..4), or 0 when invalid / truncated. */
int tok_utf8_seq(const unsigned char *s, size_t left, uint32_t *cp);
/* from_utf8_lossy: *out malloc'ed, NUL-ended, *outlen bytes. -1 on memory failure. */
int tok_utf8_lossy(const unsigned char *s, size_t len, char **out, size_t *outlen);

#endif
