/* Decoding (Tokenizer::decode of `tokenizers`): ids to token strings (added tokens first, special
 * ones dropped when asked), then the ByteLevel decoder (each token's characters back to bytes, or
 * its own UTF-8 when a character is outside the byte map; the whole repaired as
 * String::from_utf8_lossy does), or, without a decoder, the tokens joined with spaces. Unlike
 * `tokenizers`, an id that is no token is an error rather than silently skipped. */
#include "tokenizer/tok_internal.h"
#include "tokenizer/utf8.h"

#include <stdlib.h>
#include <string.h>

int dsv4_tok_decode(const dsv4_tok *t, const int32_t *ids, size_t n, int skip_special, char **text,
                    size_t *len, dsv4_err *e)
{
    *text = NULL;
    *len = 0;
    size_t cap = 64, k = 0;
    unsigned char *b = malloc(cap);
    if (!b)
        return dsv4_fail_rt(e, "out of memory");
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        const char *s = NULL;
        size_t sl = 0;
        int special = 0;
        if (id >= 0 && id < t->vocab_size && t->added_of_id[id] >= 0) {
            const tok_added *a = &t->added[t->added_of_id[id]];
            s = a->content, sl = a->len, special = a->special;
        } else if (id >= 0 && id < t->nid && t->id_str[id]) {
            s = t->id_str[id], sl = t->id_len[id];
        }
        if (!s) {
            free(b);
            return dsv4_fail(e, "%s: id %d (position %zu) is not a token (vocabulary size %d)", t->path, id, i,
                             t->vocab_size);
        }
        if (skip_special && special)
            continue;
        if (k + 4 * sl + 2 > cap) {
            cap = 2 * (k + 4 * sl + 2);
            unsigned char *nb = realloc(b, cap);
            if (!nb) {
                free(b);
                return dsv4_fail_rt(e, "out of memory");
            }
            b = nb;
        }
        if (!t->decoder_bytelevel) {
            if (!first)
                b[k++] = ' ';
            memcpy(b + k, s, sl);
            k += sl;
            first = 0;
            continue;
        }
        size_t at = k, j = 0;
        int all = 1;
        while (j < sl && all) {
            uint32_t cp;
            int l = tok_utf8_seq((const unsigned char *)s + j, sl - j, &cp);
            int byte = l ? tok_cp_to_byte(cp) : -1;
            if (byte < 0)
                all = 0;
            else
                b[k++] = (unsigned char)byte;
            j += l ? (size_t)l : 1;
        }
        if (!all) {
            k = at;
            memcpy(b + k, s, sl);
            k += sl;
        }
    }
    int rc = tok_utf8_lossy(b, k, text, len);
    free(b);
    return rc ? dsv4_fail_rt(e, "out of memory") : 0;
}
