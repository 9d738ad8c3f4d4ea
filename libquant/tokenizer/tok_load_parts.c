/* tokenizer.json components: the BPE model, the normalizer (only the identity is accepted), the
 * pre-tokenizer, the decoder and the post-processor. Each refuses, naming the file and the
 * component, whatever it does not implement. */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

static const char *type_of(json_t *o)
{
    json_t *t = json_is_object(o) ? json_object_get(o, "type") : NULL;
    return json_is_string(t) ? json_string_value(t) : NULL;
}

/* A boolean field with its default; -1 (error set) when present but not a boolean. */
static int get_bool(dsv4_tok *t, json_t *o, const char *key, int def, const char *what, dsv4_err *e)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return def;
    if (!json_is_boolean(v))
        return dsv4_fail(e, "%s: %s.%s must be true or false", t->path, what, key);
    return json_is_true(v);
}

static int merge_strings(dsv4_tok *t, json_t *m, size_t rank, const char **a, size_t *al, const char **b,
                         size_t *bl, dsv4_err *e)
{
    if (json_is_string(m)) {
        const char *s = json_string_value(m);
        size_t len = json_string_length(m);
        const char *sp = memchr(s, ' ', len);
        if (!sp || memchr(sp + 1, ' ', len - (size_t)(sp + 1 - s)))
            return dsv4_fail(e, "%s: model.merges[%zu] \"%s\" is not two tokens separated by one space",
                             t->path, rank, s);
        *a = s, *al = (size_t)(sp - s), *b = sp + 1, *bl = len - *al - 1;
        return 0;
    }
    if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
        json_is_string(json_array_get(m, 1))) {
        *a = json_string_value(json_array_get(m, 0)), *al = json_string_length(json_array_get(m, 0));
        *b = json_string_value(json_array_get(m, 1)), *bl = json_string_length(json_array_get(m, 1));
        return 0;
    }
    return dsv4_fail(e, "%s: model.merges[%zu] must be \"a b\" or [\"a\", \"b\"]", t->path, rank);
}

int tok_load_model(dsv4_tok *t, json_t *model, dsv4_err *e)
{
    const char *type = type_of(model);
    if (!type || strcmp(type, "BPE"))
        return dsv4_fail(e, "%s: model.type is %s; only \"BPE\" is supported", t->path, type ? type : "missing");
    json_t *d = json_object_get(model, "dropout");
    if (d && !json_is_null(d) && !(json_is_number(d) && json_number_value(d) == 0.0))
        return dsv4_fail(e, "%s: model.dropout must be null (BPE dropout is random; not supported)", t->path);
    const char *strs[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(model, strs[i]);
        if (v && !json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0))
            return dsv4_fail(e, "%s: model.%s is set; not supported (byte-level BPE files leave it null)", t->path, strs[i]);
    }
    if ((t->ignore_merges = get_bool(t, model, "ignore_merges", 0, "model", e)) < 0 ||
        (t->byte_fallback = get_bool(t, model, "byte_fallback", 0, "model", e)) < 0 ||
        (t->fuse_unk = get_bool(t, model, "fuse_unk", 0, "model", e)) < 0)
        return -1;
    json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab))
        return dsv4_fail(e, "%s: model.vocab must be an object of token -> id", t->path);
    int64_t maxid = -1;
    const char *k;
    json_t *v;
    json_object_foreach(vocab, k, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX - 1)
            return dsv4_fail(e, "%s: model.vocab[\"%s\"] must be a non-negative integer id", t->path, k);
        if (json_integer_value(v) > maxid)
            maxid = json_integer_value(v);
    }
    t->nid = (int32_t)(maxid + 1);
    t->vocab_entries = (int32_t)json_object_size(vocab);
    t->id_str = calloc((size_t)t->nid + 1, sizeof *t->id_str);
    t->id_len = calloc((size_t)t->nid + 1, sizeof *t->id_len);
    if (!t->id_str || !t->id_len)
        return dsv4_fail_rt(e, "out of memory");
    json_object_foreach(vocab, k, v) {
        int32_t id = (int32_t)json_integer_value(v);
        size_t len = strlen(k);
        if (t->id_str[id])
            return dsv4_fail(e, "%s: model.vocab gives id %d to both \"%s\" and \"%s\"", t->path, id, t->id_str[id], k);
        t->id_str[id] = malloc(len + 1);
        if (!t->id_str[id] || tok_map_put(&t->vocab, k, len, id))
            return dsv4_fail_rt(e, "out of memory");
        memcpy(t->id_str[id], k, len + 1);
        t->id_len[id] = len;
    }
    t->unk_id = -1;
    json_t *unk = json_object_get(model, "unk_token");
    if (unk && !json_is_null(unk)) {
        if (!json_is_string(unk))
            return dsv4_fail(e, "%s: model.unk_token must be a string or null", t->path);
        t->unk_id = tok_map_get(&t->vocab, json_string_value(unk), json_string_length(unk));
        if (t->unk_id < 0)
            return dsv4_fail(e, "%s: model.unk_token \"%s\" is not in model.vocab", t->path, json_string_value(unk));
    }
    json_t *merges = json_object_get(model, "merges");
    if (!json_is_array(merges))
        return dsv4_fail(e, "%s: model.merges must be an array", t->path);
    char *buf = NULL;
    size_t bufcap = 0;
    for (size_t r = 0; r < json_array_size(merges); r++) {
        const char *a = NULL, *b = NULL;
        size_t al = 0, bl = 0;
        if (merge_strings(t, json_array_get(merges, r), r, &a, &al, &b, &bl, e)) {
            free(buf);
            return -1;
        }
        if (al + bl + 1 > bufcap) {
            bufcap = 2 * (al + bl + 1);
            char *nb = realloc(buf, bufcap);
            if (!nb) {
                free(buf);
                return dsv4_fail_rt(e, "out of memory");
            }
            buf = nb;
        }
        memcpy(buf, a, al);
        memcpy(buf + al, b, bl);
        int32_t ia = tok_map_get(&t->vocab, a, al), ib = tok_map_get(&t->vocab, b, bl);
        int32_t im = tok_map_get(&t->vocab, buf, al + bl);
        if (ia < 0 || ib < 0 || im < 0) {
            buf[al + bl] = 0;
            dsv4_fail(e, "%s: model.merges[%zu] (\"%.*s\" + \"%.*s\"): \"%s\" is not in model.vocab", t->path, r,
                      (int)al, a, (int)bl, b, ia < 0 ? "left part" : ib < 0 ? "right part" : buf);
            free(buf);
            return -1;
        }
        if (tok_merges_put(&t->merges, ia, ib, (uint32_t)r, im)) {
            free(buf);
            return dsv4_fail_rt(e, "out of memory");
        }
    }
    free(buf);
    return 0;
}

int tok_load_normalizer(dsv4_tok *t, json_t *nm, dsv4_err *e)
{
    if (!nm || json_is_null(nm))
        return 0;
    const char *type = type_of(nm);
    if (type && !strcmp(type, "Sequence")) {
        json_t *list = json_object_get(nm, "normalizers");
        if (!json_is_array(list))
            return dsv4_fail(e, "%s: normalizer Sequence without a \"normalizers\" array", t->path);
        for (size_t i = 0; i < json_array_size(list); i++)
            if (tok_load_normalizer(t, json_array_get(list, i), e))
                return -1;
        return 0;
    }
    return dsv4_fail(e, "%s: normalizer %s is not supported (only null or an empty Sequence)", t->path,
                     type ? type : "(no type)");
}

static int add_pretok(dsv4_tok *t, tok_pretok p, dsv4_err *e)
{
    tok_pretok *np = realloc(t->pretok, ((size_t)t->npretok + 1) * sizeof *np);
    if (!np) {
        dsv4_re_free(p.re);
        return dsv4_fail_rt(e, "out of memory");
    }
    t->pretok = np;
    t->pretok[t->npretok++] = p;
    return 0;
}

static int compile(dsv4_tok *t, const char *pat, size_t len, dsv4_re **re, const char *what, dsv4_err *e)
{
    char why[256];
    if (dsv4_re_compile(pat, len, re, why, sizeof why))
        return dsv4_fail(e, "%s: %s regex \"%s\": %s", t->path, what, pat, why);
    return 0;
}

/* `tokenizers`' ByteLevel pre-tokenizer regex (GPT-2's). */
static const char gpt2_re[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

int tok_load_pretok(dsv4_tok *t, json_t *pt, dsv4_err *e)
{
    if (!pt || json_is_null(pt))
        return 0;
    const char *type = type_of(pt);
    if (!type)
        return dsv4_fail(e, "%s: pre_tokenizer without a type", t->path);
    tok_pretok p = {0};
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(pt, "pretokenizers");
        if (!json_is_array(list))
            return dsv4_fail(e, "%s: pre_tokenizer Sequence without a \"pretokenizers\" array", t->path);
        for (size_t i = 0; i < json_array_size(list); i++)
            if (tok_load_pretok(t, json_array_get(list, i), e))
                return -1;
        return 0;
    }
    if (!strcmp(type, "ByteLevel")) {
        p.type = PT_BYTELEVEL;
        if ((p.add_prefix_space = get_bool(t, pt, "add_prefix_space", 1, "pre_tokenizer ByteLevel", e)) < 0 ||
            (p.use_regex = get_bool(t, pt, "use_regex", 1, "pre_tokenizer ByteLevel", e)) < 0)
            return -1;
        if (p.use_regex && compile(t, gpt2_re, sizeof gpt2_re - 1, &p.re, "ByteLevel", e))
            return -1;
        return add_pretok(t, p, e);
    }
    if (!strcmp(type, "Digits")) {
        p.type = PT_DIGITS;
        if ((p.individual = get_bool(t, pt, "individual_digits", 0, "pre_tokenizer Digits", e)) < 0)
            return -1;
        return add_pretok(t, p, e);
    }
    if (strcmp(type, "Split"))
        return dsv4_fail(e, "%s: pre_tokenizer %s is not supported (ByteLevel, Split, Digits, Sequence)", t->path, type);
    p.type = PT_SPLIT;
    static const char *const behaviors[] = {"Isolated", "Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    json_t *b = json_object_get(pt, "behavior");
    p.behavior = -1;
    for (int i = 0; i < 5 && json_is_string(b); i++)
        if (!strcmp(json_string_value(b), behaviors[i]))
            p.behavior = i;
    if (p.behavior < 0)
        return dsv4_fail(e, "%s: pre_tokenizer Split behavior must be Isolated, Removed, MergedWithPrevious, "
                            "MergedWithNext or Contiguous", t->path);
    if ((p.invert = get_bool(t, pt, "invert", 0, "pre_tokenizer Split", e)) < 0)
        return -1;
    json_t *pat = json_object_get(pt, "pattern");
    json_t *rx = json_is_object(pat) ? json_object_get(pat, "Regex") : NULL;
    json_t *st = json_is_object(pat) ? json_object_get(pat, "String") : NULL;
    if (json_is_string(rx)) {
        if (compile(t, json_string_value(rx), json_string_length(rx), &p.re, "pre_tokenizer Split", e))
            return -1;
    } else if (json_is_string(st)) { /* a literal: every ASCII punctuation character escaped */
        size_t len = json_string_length(st);
        const char *s = json_string_value(st);
        char *q = malloc(2 * len + 1);
        if (!q)
            return dsv4_fail_rt(e, "out of memory");
        size_t k = 0;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c < 0x80 && c > 0x20 && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
                q[k++] = '\\';
            q[k++] = (char)c;
        }
        int rc = compile(t, q, k, &p.re, "pre_tokenizer Split String", e);
        free(q);
        if (rc)
            return -1;
    } else {
        return dsv4_fail(e, "%s: pre_tokenizer Split pattern must be {\"Regex\": ...} or {\"String\": ...}", t->path);
    }
    return add_pretok(t, p, e);
}

int tok_load_decoder(dsv4_tok *t, json_t *dec, dsv4_err *e)
{
    if (!dec || json_is_null(dec))
        return 0;
    const char *type = type_of(dec);
    if (type && !strcmp(type, "Sequence")) {
        json_t *list = json_object_get(dec, "decoders");
        if (!json_is_array(list))
            return dsv4_fail(e, "%s: decoder Sequence without a \"decoders\" array", t->path);
        for (size_t i = 0; i < json_array_size(list); i++)
            if (tok_load_decoder(t, json_array_get(list, i), e))
                return -1;
        return 0;
    }
    if (!type || strcmp(type, "ByteLevel"))
        return dsv4_fail(e, "%s: decoder %s is not supported (ByteLevel, or a Sequence of one)", t->path,
                         type ? type : "(no type)");
    if (t->decoder_bytelevel)
        return dsv4_fail(e, "%s: decoder Sequence with two ByteLevel decoders is not supported", t->path);
    t->decoder_bytelevel = 1;
    return 0;
}
