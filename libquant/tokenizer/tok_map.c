/* Hash tables of the tokenizer (vocabulary strings -> ids, merge pairs -> rank and result) and
 * GPT-2's byte <-> code point map of the ByteLevel pre-tokenizer and decoder. */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static int map_grow(tok_map *m)
{
    size_t cap = m->cap ? 2 * m->cap : 1024;
    tok_slot *ns = calloc(cap, sizeof *ns);
    if (!ns)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        tok_slot *o = &m->slots[i];
        if (!o->s)
            continue;
        size_t h = (size_t)XXH3_64bits(o->s, o->len) & (cap - 1);
        while (ns[h].s)
            h = (h + 1) & (cap - 1);
        ns[h] = *o;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = cap;
    return 0;
}

int tok_map_put(tok_map *m, const char *s, size_t len, int32_t val)
{
    if ((m->n + 1) * 2 > m->cap && map_grow(m))
        return -1;
    size_t h = (size_t)XXH3_64bits(s, len) & (m->cap - 1);
    while (m->slots[h].s) {
        tok_slot *o = &m->slots[h];
        if (o->len == len && !memcmp(o->s, s, len)) {
            o->val = val;
            return 0;
        }
        h = (h + 1) & (m->cap - 1);
    }
    char *c = malloc(len + 1);
    if (!c)
        return -1;
    memcpy(c, s, len);
    c[len] = 0;
    m->slots[h] = (tok_slot){c, (uint32_t)len, val};
    m->n++;
    return 0;
}

int32_t tok_map_get(const tok_map *m, const char *s, size_t len)
{
    if (!m->cap)
        return -1;
    size_t h = (size_t)XXH3_64bits(s, len) & (m->cap - 1);
    while (m->slots[h].s) {
        const tok_slot *o = &m->slots[h];
        if (o->len == len && !memcmp(o->s, s, len))
            return o->val;
        h = (h + 1) & (m->cap - 1);
    }
    return -1;
}

void tok_map_free(tok_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].s);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static uint64_t pair_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }
static size_t pair_hash(uint64_t k, size_t cap) { return (size_t)XXH3_64bits(&k, sizeof k) & (cap - 1); }

int tok_merges_put(tok_merges *m, int32_t a, int32_t b, uint32_t rank, int32_t id)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 1024;
        tok_merge *ns = calloc(cap, sizeof *ns);
        if (!ns)
            return -1;
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->slots[i].used)
                continue;
            size_t h = pair_hash(m->slots[i].key, cap);
            while (ns[h].used)
                h = (h + 1) & (cap - 1);
            ns[h] = m->slots[i];
        }
        free(m->slots);
        m->slots = ns;
        m->cap = cap;
    }
    uint64_t k = pair_key(a, b);
    size_t h = pair_hash(k, m->cap);
    while (m->slots[h].used && m->slots[h].key != k)
        h = (h + 1) & (m->cap - 1);
    if (!m->slots[h].used)
        m->n++;
    m->slots[h] = (tok_merge){k, rank, id, 1}; /* a repeated pair keeps the later rank, as a Rust HashMap collect does */
    return 0;
}

const tok_merge *tok_merges_get(const tok_merges *m, int32_t a, int32_t b)
{
    if (!m->cap)
        return NULL;
    uint64_t k = pair_key(a, b);
    size_t h = pair_hash(k, m->cap);
    while (m->slots[h].used) {
        if (m->slots[h].key == k)
            return &m->slots[h];
        h = (h + 1) & (m->cap - 1);
    }
    return NULL;
}

/* bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 to 256, 257, ... in
 * byte order. */
static int printable(unsigned b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE); }

uint32_t tok_byte_to_cp(uint8_t b)
{
    if (printable(b))
        return b;
    uint32_t k = 0;
    for (unsigned i = 0; i < b; i++)
        k += !printable(i);
    return 256 + k;
}

int tok_cp_to_byte(uint32_t cp)
{
    if (cp < 256)
        return printable(cp) ? (int)cp : -1;
    if (cp >= 256 + 68)
        return -1;
    uint32_t k = cp - 256;
    for (unsigned i = 0; i < 256; i++)
        if (!printable(i) && k-- == 0)
            return (int)i;
    return -1;
}
