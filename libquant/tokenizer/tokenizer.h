/* Hugging Face tokenizer.json, byte-level BPE, in C: the normalizer and pre-tokenizer the file
 * specifies (Split with its regex and behavior, ByteLevel with or without its regex, Sequence of
 * them), the merges, added and special tokens, and the ByteLevel decoder. Encoding and decoding
 * match the `tokenizers` library exactly (test vectors made with it on the GPU machine:
 * tests/data/tokenizer/). Anything the file asks for that is not implemented is refused with an
 * error naming the file and the component, never approximated. */
#ifndef DSV4_TOKENIZER_H
#define DSV4_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef struct dsv4_tok dsv4_tok;

/* `path`: a tokenizer.json file or a folder holding one (tokenizer_config.json beside it, when
 * present, supplies bos/eos and add_bos_token). */
int dsv4_tok_load(const char *path, dsv4_tok **out, dsv4_err *e);
void dsv4_tok_free(dsv4_tok *t);

/* Encodes UTF-8 text (invalid UTF-8 is refused). add_special: also apply the post-processor /
 * add_bos_token the files specify (as tokenizer(text) does); 0 = as encode(text,
 * add_special_tokens=False). *ids is malloc'ed. */
int dsv4_tok_encode(const dsv4_tok *t, const char *text, size_t len, int add_special, int32_t **ids,
                    size_t *n, dsv4_err *e);
/* Decodes ids to UTF-8 (skip_special: drop special added tokens). *text is malloc'ed, NUL-ended. */
int dsv4_tok_decode(const dsv4_tok *t, const int32_t *ids, size_t n, int skip_special, char **text,
                    size_t *len, dsv4_err *e);

int64_t dsv4_tok_vocab_size(const dsv4_tok *t);    /* largest id + 1, added tokens included */
int32_t dsv4_tok_bos(const dsv4_tok *t);           /* -1 when none */
int32_t dsv4_tok_eos(const dsv4_tok *t);
/* Id of a token string (vocab or added), -1 when absent. */
int32_t dsv4_tok_id(const dsv4_tok *t, const char *token);

#endif
