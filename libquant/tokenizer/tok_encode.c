/* Encoding (Tokenizer::encode of `tokenizers`): added tokens split out of the raw text, then out
 * of the normalized pieces, the pre-tokenizer steps on what remains, BPE on each pre-token, and
 * the special tokens of the post-processor when asked. */
#include "tokenizer/tok_internal.h"
#include "tokenizer/utf8.h"

#include <stdlib.h>
#include <string.h>

/* Normalized-trie pass over one raw piece, appending splits. */
static int second_pass(const dsv4_tok *t, const char *s, size_t n, tok_splits *out)
{
    tok_piece *p;
    size_t np;
    if (tok_added_split(t, 1, s, n, &p, &np))
        return -1;
    int rc = 0;
    for (size_t i = 0; i < np && !rc; i++) {
        if (p[i].id >= 0) {
            rc = tok_splits_push(out, NULL, 0, p[i].id);
            continue;
        }
        if (p[i].end == p[i].start)
            continue; /* empty pieces are dropped */
        uint32_t *cps;
        size_t ncp;
        if (tok_utf8_decode(s + p[i].start, p[i].end - p[i].start, &cps, NULL, &ncp))
            rc = -1;
        else
            rc = tok_splits_push(out, cps, ncp, -1);
    }
    free(p);
    return rc;
}

int dsv4_tok_encode(const dsv4_tok *t, const char *text, size_t len, int add_special, int32_t **ids,
                    size_t *n, dsv4_err *e)
{
    *ids = NULL;
    *n = 0;
    size_t bad = tok_utf8_valid(text, len);
    if (bad != len)
        return dsv4_fail(e, "%s: the text to encode is not valid UTF-8 (byte %zu)", t->path, bad);
    tok_piece *p;
    size_t np;
    if (tok_added_split(t, 0, text, len, &p, &np))
        return dsv4_fail_rt(e, "out of memory");
    tok_splits sp = {0};
    int rc = 0;
    for (size_t i = 0; i < np && !rc; i++)
        rc = p[i].id >= 0 ? tok_splits_push(&sp, NULL, 0, p[i].id)
                          : second_pass(t, text + p[i].start, p[i].end - p[i].start, &sp);
    free(p);
    if (rc) {
        tok_splits_free(&sp);
        return dsv4_fail_rt(e, "out of memory");
    }
    for (int k = 0; k < t->npretok; k++)
        if (tok_pretok_apply(t, &t->pretok[k], &sp, e)) {
            tok_splits_free(&sp);
            return -1;
        }
    int32_t *out = NULL;
    size_t nout = 0, cap = 0;
    char *buf = NULL;
    size_t bufcap = 0;
    for (int k = 0; add_special && k < t->npre && !rc; k++)
        rc = tok_ids_push(&out, &nout, &cap, t->pre_ids[k]) ? dsv4_fail_rt(e, "out of memory") : 0;
    for (size_t i = 0; i < sp.n && !rc; i++) {
        if (sp.v[i].id >= 0) {
            rc = tok_ids_push(&out, &nout, &cap, sp.v[i].id) ? dsv4_fail_rt(e, "out of memory") : 0;
            continue;
        }
        if (4 * sp.v[i].n + 1 > bufcap) {
            bufcap = 2 * (4 * sp.v[i].n + 1);
            char *nb = realloc(buf, bufcap);
            if (!nb) {
                rc = dsv4_fail_rt(e, "out of memory");
                break;
            }
            buf = nb;
        }
        size_t bl = 0;
        for (size_t c = 0; c < sp.v[i].n; c++)
            bl += (size_t)tok_utf8_put(sp.v[i].cps[c], buf + bl);
        rc = tok_bpe(t, buf, bl, &out, &nout, &cap, e);
    }
    for (int k = 0; add_special && k < t->npost && !rc; k++)
        rc = tok_ids_push(&out, &nout, &cap, t->post_ids[k]) ? dsv4_fail_rt(e, "out of memory") : 0;
    free(buf);
    tok_splits_free(&sp);
    if (rc) {
        free(out);
        return -1;
    }
    if (!out && !(out = malloc(sizeof *out)))
        return dsv4_fail_rt(e, "out of memory");
    *ids = out;
    *n = nout;
    return 0;
}
