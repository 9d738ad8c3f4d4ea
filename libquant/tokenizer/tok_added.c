/* Added tokens (AddedVocabulary of `tokenizers`): the two matching sets (tokens matched on the raw
 * text, and `normalized` ones matched after normalization), leftmost-longest matching as its
 * Aho-Corasick automaton does, and the single_word / lstrip / rstrip rules. */
#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"

#include <stdlib.h>
#include <string.h>

static const dsv4_tok *sort_ctx;

static int by_len_desc(const void *a, const void *b)
{
    const tok_added *x = &sort_ctx->added[*(const int32_t *)a], *y = &sort_ctx->added[*(const int32_t *)b];
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return *(const int32_t *)a - *(const int32_t *)b;
}

int tok_added_build(dsv4_tok *t, dsv4_err *e)
{
    t->trie_raw = malloc(((size_t)t->nadded + 1) * sizeof *t->trie_raw);
    t->trie_norm = malloc(((size_t)t->nadded + 1) * sizeof *t->trie_norm);
    if (!t->trie_raw || !t->trie_norm)
        return dsv4_fail_rt(e, "out of memory");
    t->ntrie_raw = t->ntrie_norm = 0;
    for (int i = 0; i < t->nadded; i++) {
        if (t->added[i].normalized)
            t->trie_norm[t->ntrie_norm++] = i;
        else
            t->trie_raw[t->ntrie_raw++] = i;
    }
    sort_ctx = t;
    qsort(t->trie_raw, (size_t)t->ntrie_raw, sizeof *t->trie_raw, by_len_desc);
    qsort(t->trie_norm, (size_t)t->ntrie_norm, sizeof *t->trie_norm, by_len_desc);
    sort_ctx = NULL;
    return 0;
}

static uint32_t cp_at(const char *s, size_t n, size_t i)
{
    uint32_t cp = 0;
    tok_utf8_seq((const unsigned char *)s + i, n - i, &cp);
    return cp;
}

static uint32_t cp_before(const char *s, size_t i)
{
    size_t k = i;
    while (k > 0 && ((unsigned char)s[k - 1] & 0xC0) == 0x80)
        k--;
    if (k > 0)
        k--;
    return cp_at(s, i, k);
}

static int push_piece(tok_piece **v, size_t *n, size_t *cap, size_t s, size_t e, int32_t id)
{
    if (*n == *cap) {
        size_t nc = *cap ? 2 * *cap : 8;
        tok_piece *nv = realloc(*v, nc * sizeof *nv);
        if (!nv)
            return -1;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = (tok_piece){s, e, id};
    return 0;
}

int tok_added_split(const dsv4_tok *t, int normalized_trie, const char *text, size_t n,
                    tok_piece **pieces, size_t *npieces)
{
    const int32_t *set = normalized_trie ? t->trie_norm : t->trie_raw;
    int nset = normalized_trie ? t->ntrie_norm : t->ntrie_raw;
    tok_piece *v = NULL;
    size_t nv = 0, cap = 0, start_offset = 0;
    if (n == 0) {
        if (push_piece(&v, &nv, &cap, 0, 0, -1))
            return -1;
        *pieces = v;
        *npieces = nv;
        return 0;
    }
    size_t i = 0;
    while (i < n && nset) {
        const tok_added *hit = NULL;
        for (int k = 0; k < nset; k++) { /* longest first: the first that matches here wins */
            const tok_added *a = &t->added[set[k]];
            if (a->len <= n - i && (unsigned char)a->content[0] == (unsigned char)text[i] &&
                !memcmp(a->content, text + i, a->len)) {
                hit = a;
                break;
            }
        }
        if (!hit) {
            i++;
            continue;
        }
        size_t start = i, stop = i + hit->len;
        i = stop; /* the automaton resumes after the match, whatever the strip rules do below */
        if (hit->single_word) {
            int start_space = start == 0 || !dsv4_uc_is_word(cp_before(text, start));
            int stop_space = stop == n || !dsv4_uc_is_word(cp_at(text, n, stop));
            if (!start_space || !stop_space)
                continue;
        }
        if (hit->lstrip) {
            size_t ns = start;
            while (ns > 0) {
                size_t k = ns;
                while (k > 0 && ((unsigned char)text[k - 1] & 0xC0) == 0x80)
                    k--;
                if (k > 0)
                    k--;
                if (!dsv4_uc_is_space(cp_at(text, n, k)))
                    break;
                ns = k;
            }
            start = ns > start_offset ? ns : start_offset;
        }
        if (hit->rstrip) {
            while (stop < n) {
                uint32_t cp;
                int l = tok_utf8_seq((const unsigned char *)text + stop, n - stop, &cp);
                if (!l || !dsv4_uc_is_space(cp))
                    break;
                stop += (size_t)l;
            }
        }
        if (start_offset < start && push_piece(&v, &nv, &cap, start_offset, start, -1))
            goto oom;
        if (push_piece(&v, &nv, &cap, start, stop, hit->id))
            goto oom;
        start_offset = stop;
    }
    if (start_offset != n && push_piece(&v, &nv, &cap, start_offset, n, -1))
        goto oom;
    *pieces = v;
    *npieces = nv;
    return 0;
oom:
    free(v);
    return -1;
}
