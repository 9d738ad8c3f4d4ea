/* Hugging Face tokenizer.json, byte-level BPE, in C: the normalizer (identity only), the
 * pre-tokenizer the file specifies (Split with its regex or string, behavior and invert; ByteLevel
 * with or without its regex; Digits; Sequence of them), the BPE model (merges in both forms,
 * ignore_merges, unk_token / fuse_unk, byte_fallback), added and special tokens (lstrip, rstrip,
 * single_word, normalized), the ByteLevel decoder and the TemplateProcessing / ByteLevel
 * post-processors. The regexes run on libquant/tokenizer/regex.h, an engine with Oniguruma's
 * semantics over Unicode 16 tables, as `tokenizers` 0.23 runs them. Encoding and decoding match
 * the `tokenizers` library exactly (vectors made with it: tests/data/tokenizer/README.md).
 * Anything the file asks for that is not implemented is refused with an error naming the file and
 * the component, never approximated. */
#ifndef DSV4_TOKENIZER_H
#define DSV4_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef struct dsv4_tok dsv4_tok;

/* `path`: a tokenizer.json file or a folder holding one. tokenizer_config.json (in the folder, or
 * beside a file named tokenizer.json), when present, names bos_token / eos_token, and its
 * add_bos_token / add_eos_token replace the post-processor as transformers 5 does for classes that
 * rebuild it (LlamaTokenizerFast; a null post-processor then counts as replaced too); with the
 * generic tokenizer_class PreTrainedTokenizerFast the file's post-processor is kept, as
 * transformers 5.17 does. Without a config, bos is the template's leading special token, or -1. */
int dsv4_tok_load(const char *path, dsv4_tok **out, dsv4_err *e);
void dsv4_tok_free(dsv4_tok *t);

/* Encodes UTF-8 text (invalid UTF-8 is refused). add_special: also apply the post-processor /
 * add_bos_token the files specify (as tokenizer(text) does); 0 = as encode(text,
 * add_special_tokens=False). *ids is malloc'ed. */
int dsv4_tok_encode(const dsv4_tok *t, const char *text, size_t len, int add_special, int32_t **ids,
                    size_t *n, dsv4_err *e);
/* Decodes ids to UTF-8 (skip_special: drop special added tokens). *text is malloc'ed, NUL-ended.
 * Bytes that do not form UTF-8 become U+FFFD as in `tokenizers`; an id that is no token is an
 * error (code 2), where `tokenizers` would skip it silently. */
int dsv4_tok_decode(const dsv4_tok *t, const int32_t *ids, size_t n, int skip_special, char **text,
                    size_t *len, dsv4_err *e);

int64_t dsv4_tok_vocab_size(const dsv4_tok *t);    /* largest id + 1, added tokens included */
int32_t dsv4_tok_bos(const dsv4_tok *t);           /* -1 when none */
int32_t dsv4_tok_eos(const dsv4_tok *t);
/* Id of a token string (vocab or added), -1 when absent. */
int32_t dsv4_tok_id(const dsv4_tok *t, const char *token);

#endif
