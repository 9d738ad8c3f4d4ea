/* The BPE model of `tokenizers` on one pre-token: characters to vocabulary ids (unk / byte
 * fallback as configured), then merges by rank with its priority-queue algorithm (lowest rank
 * first, leftmost among equals, stale queue entries recognised only by their merged id), so that
 * every word gives the reference's result, including its quirks. */
#include "tokenizer/tok_internal.h"
#include "tokenizer/utf8.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct { int32_t c; long prev, next; size_t len; } sym;
typedef struct { uint32_t rank; size_t pos; int32_t id; } mrg;

int tok_ids_push(int32_t **ids, size_t *n, size_t *cap, int32_t id)
{
    if (*n == *cap) {
        size_t nc = *cap ? 2 * *cap : 64;
        int32_t *ni = realloc(*ids, nc * sizeof *ni);
        if (!ni)
            return -1;
        *ids = ni;
        *cap = nc;
    }
    (*ids)[(*n)++] = id;
    return 0;
}

static int before(const mrg *a, const mrg *b) { return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos; }

static void heap_push(mrg *h, size_t *n, mrg m)
{
    size_t i = (*n)++;
    h[i] = m;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&h[i], &h[p]))
            break;
        mrg t = h[i]; h[i] = h[p]; h[p] = t;
        i = p;
    }
}

static mrg heap_pop(mrg *h, size_t *n)
{
    mrg top = h[0];
    h[0] = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < *n && before(&h[l], &h[m])) m = l;
        if (r < *n && before(&h[r], &h[m])) m = r;
        if (m == i)
            break;
        mrg t = h[i]; h[i] = h[m]; h[m] = t;
        i = m;
    }
    return top;
}

static void sym_add(sym *s, size_t *n, int32_t c, size_t len)
{
    long k = (long)*n;
    if (k > 0)
        s[k - 1].next = k;
    s[k] = (sym){c, k - 1, -1, len};
    (*n)++;
}

static void merge_all(const dsv4_tok *t, sym *s, size_t n, mrg *heap)
{
    size_t hn = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        const tok_merge *m = tok_merges_get(&t->merges, s[i].c, s[i + 1].c);
        if (m)
            heap_push(heap, &hn, (mrg){m->rank, i, m->id});
    }
    while (hn) {
        mrg top = heap_pop(heap, &hn);
        sym *cur = &s[top.pos];
        if (cur->len == 0 || cur->next == -1)
            continue;
        size_t next_pos = (size_t)cur->next;
        sym right = s[next_pos];
        const tok_merge *m = tok_merges_get(&t->merges, cur->c, right.c);
        if (!m || m->id != top.id)
            continue; /* stale entry */
        cur->c = top.id;
        cur->len += right.len;
        cur->next = right.next;
        s[next_pos].len = 0;
        if (right.next > -1 && (size_t)right.next < n)
            s[right.next].prev = (long)top.pos;
        if (cur->prev >= 0) {
            const tok_merge *pm = tok_merges_get(&t->merges, s[cur->prev].c, cur->c);
            if (pm)
                heap_push(heap, &hn, (mrg){pm->rank, (size_t)cur->prev, pm->id});
        }
        if (cur->next >= 0 && (size_t)cur->next < n) {
            const tok_merge *nm = tok_merges_get(&t->merges, cur->c, s[cur->next].c);
            if (nm)
                heap_push(heap, &hn, (mrg){nm->rank, top.pos, nm->id});
        }
    }
}

int tok_bpe(const dsv4_tok *t, const char *w, size_t len, int32_t **ids, size_t *n, size_t *cap, dsv4_err *e)
{
    if (len == 0)
        return 0;
    if (t->ignore_merges) {
        int32_t id = tok_map_get(&t->vocab, w, len);
        if (id >= 0)
            return tok_ids_push(ids, n, cap, id) ? dsv4_fail_rt(e, "out of memory") : 0;
    }
    /* at most one symbol per byte; the queue holds at most 2 entries per merge plus the initial pairs */
    sym *s = malloc(len * sizeof *s);
    mrg *heap = malloc((3 * len + 1) * sizeof *heap);
    if (!s || !heap) {
        free(s);
        free(heap);
        return dsv4_fail_rt(e, "out of memory");
    }
    size_t ns = 0, i = 0;
    int have_unk = 0;
    int32_t unk_c = -1;
    size_t unk_len = 0;
    while (i < len) {
        uint32_t cp;
        int cl = tok_utf8_seq((const unsigned char *)w + i, len - i, &cp);
        if (!cl)
            cl = 1; /* pre-tokens are valid UTF-8; a stray byte is looked up on its own */
        int32_t id = tok_map_get(&t->vocab, w + i, (size_t)cl);
        if (id >= 0) {
            if (have_unk) {
                sym_add(s, &ns, unk_c, unk_len);
                have_unk = 0;
            }
            sym_add(s, &ns, id, (size_t)cl);
            i += (size_t)cl;
            continue;
        }
        if (t->byte_fallback) {
            int32_t bid[4];
            int all = 1;
            for (int k = 0; k < cl && all; k++) {
                char name[8];
                snprintf(name, sizeof name, "<0x%02X>", (unsigned char)w[i + (size_t)k]);
                bid[k] = tok_map_get(&t->vocab, name, 6);
                all = bid[k] >= 0;
            }
            if (all) {
                for (int k = 0; k < cl; k++)
                    sym_add(s, &ns, bid[k], 1);
                i += (size_t)cl;
                continue;
            }
        }
        if (t->unk_id < 0) {
            free(s);
            free(heap);
            return dsv4_fail(e, "%s: the text has U+%04X, which is not in the vocabulary, and the model has no "
                                "unk_token (tokenizers would silently drop it; refused)", t->path, cp);
        }
        if (have_unk && t->fuse_unk) {
            unk_len += (size_t)cl;
        } else {
            if (have_unk)
                sym_add(s, &ns, unk_c, unk_len);
            have_unk = 1;
            unk_c = t->unk_id;
            unk_len = (size_t)cl;
        }
        i += (size_t)cl;
    }
    if (have_unk)
        sym_add(s, &ns, unk_c, unk_len);
    merge_all(t, s, ns, heap);
    int rc = 0;
    for (size_t k = 0; k < ns && !rc; k++)
        if (s[k].len)
            rc = tok_ids_push(ids, n, cap, s[k].c);
    free(s);
    free(heap);
    return rc ? dsv4_fail_rt(e, "out of memory") : 0;
}
