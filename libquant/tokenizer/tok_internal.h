/* Internal state of a loaded tokenizer, shared by the loader (tok_load*.c), the encoder
 * (tok_encode.c, tok_added.c, tok_pretok.c, tok_bpe.c) and the decoder (tok_decode.c). */
#ifndef DSV4_TOK_INTERNAL_H
#define DSV4_TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer/regex.h"
#include "tokenizer/tokenizer.h"

/* Open-addressing hash map: byte string -> int32 (strings owned by the map). */
typedef struct { char *s; uint32_t len; int32_t val; } tok_slot;
typedef struct { tok_slot *slots; size_t cap, n; } tok_map;
int tok_map_put(tok_map *m, const char *s, size_t len, int32_t val); /* replaces; -1 on memory */
int32_t tok_map_get(const tok_map *m, const char *s, size_t len);      /* -1 when absent */
void tok_map_free(tok_map *m);

/* Merge table: (left id, right id) -> (rank, merged id). */
typedef struct { uint64_t key; uint32_t rank; int32_t id; int used; } tok_merge;
typedef struct { tok_merge *slots; size_t cap, n; } tok_merges;
int tok_merges_put(tok_merges *m, int32_t a, int32_t b, uint32_t rank, int32_t id);
const tok_merge *tok_merges_get(const tok_merges *m, int32_t a, int32_t b);

enum { PT_BYTELEVEL, PT_SPLIT, PT_DIGITS };
enum { SB_ISOLATED, SB_REMOVED, SB_MERGED_PREV, SB_MERGED_NEXT, SB_CONTIGUOUS };
typedef struct {
    int type;
    int add_prefix_space, use_regex; /* ByteLevel */
    dsv4_re *re;                     /* Split (the pattern), ByteLevel with use_regex (GPT-2's) */
    int behavior, invert;            /* Split */
    int individual;                  /* Digits */
} tok_pretok;

typedef struct {
    char *content;
    size_t len;
    int32_t id;
    int special, normalized, single_word, lstrip, rstrip;
} tok_added;

struct dsv4_tok {
    char path[1100];
    /* model (BPE) */
    tok_map vocab;
    char **id_str;     /* id -> vocab string (NULL where the vocab has no such id) */
    size_t *id_len;
    int32_t nid;       /* id_str entries: largest vocab id + 1 */
    int32_t vocab_entries;
    tok_merges merges;
    int ignore_merges, byte_fallback, fuse_unk;
    int32_t unk_id;    /* -1 without unk_token */
    /* added vocabulary, in the order tokenizers keeps them (specials first in each trie) */
    tok_added *added;
    int nadded;
    int32_t *trie_raw, *trie_norm; /* indexes into added, longest first per first byte */
    int ntrie_raw, ntrie_norm;
    /* pipeline */
    tok_pretok *pretok;
    int npretok;
    int decoder_bytelevel;  /* 1: ByteLevel decoder; 0: none (tokens joined with spaces) */
    /* add_special: ids before and after the sequence */
    int32_t *pre_ids, *post_ids;
    int npre, npost;
    int32_t bos, eos;
    int32_t vocab_size;     /* largest id + 1 over vocab and added tokens */
    int32_t *added_of_id;   /* id -> index into added, -1 (vocab_size entries) */
};

/* GPT-2's byte <-> printable code point map. */
uint32_t tok_byte_to_cp(uint8_t b);
int tok_cp_to_byte(uint32_t cp); /* -1 when cp is not in the map */

/* Added-token extraction: splits [0, n) bytes of text into pieces; token pieces have id >= 0. */
typedef struct { size_t start, end; int32_t id; } tok_piece;
int tok_added_split(const dsv4_tok *t, int normalized_trie, const char *text, size_t n,
                    tok_piece **pieces, size_t *npieces);
int tok_added_build(dsv4_tok *t, dsv4_err *e);

/* A pre-tokenizer split: current content as code points, or an added token (id >= 0). */
typedef struct { uint32_t *cps; size_t n; int32_t id; } tok_split;
typedef struct { tok_split *v; size_t n, cap; } tok_splits;
int tok_splits_push(tok_splits *s, uint32_t *cps, size_t n, int32_t id); /* takes cps */
void tok_splits_free(tok_splits *s);
int tok_pretok_apply(const dsv4_tok *t, const tok_pretok *p, tok_splits *in, dsv4_err *e);

/* BPE of one pre-token (UTF-8 bytes): appends ids to *ids (growable, *cap). */
int tok_bpe(const dsv4_tok *t, const char *w, size_t len, int32_t **ids, size_t *n, size_t *cap,
            dsv4_err *e);
int tok_ids_push(int32_t **ids, size_t *n, size_t *cap, int32_t id);

/* Loader parts (tok_load_parts.c). */
#include <jansson.h>
int tok_load_model(dsv4_tok *t, json_t *model, dsv4_err *e);
int tok_load_pretok(dsv4_tok *t, json_t *pt, dsv4_err *e);
int tok_load_normalizer(dsv4_tok *t, json_t *nm, dsv4_err *e);
int tok_load_decoder(dsv4_tok *t, json_t *dec, dsv4_err *e);
int tok_load_post(dsv4_tok *t, json_t *post, dsv4_err *e);

#endif
