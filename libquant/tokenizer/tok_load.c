/* Loading a tokenizer: finds tokenizer.json (and tokenizer_config.json beside it), checks the
 * top-level fields, loads the components (tok_load_parts.c, tok_post.c), assigns the added tokens
 * their ids as `tokenizers` does, and applies transformers' add_bos_token / add_eos_token rule. */
#include "tokenizer/tok_internal.h"
#include "util/json_in.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static json_t *read_json(const char *path, const char *what, dsv4_err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return dsv4_fail(e, "%s: %s", path, strerror(errno)), NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 65536 > cap) {
            cap = 2 * (len + 65536);
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return dsv4_fail_rt(e, "out of memory reading %s", path), NULL;
            }
            buf = nb;
        }
        size_t k = fread(buf + len, 1, cap - len, f);
        len += k;
        if (k == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return dsv4_fail_rt(e, "%s: read error", path), NULL;
    }
    json_t *j = dsv4_json_parse(buf, len, path, what, e);
    free(buf);
    return j;
}

/* Added tokens in file order, ids as AddedVocabulary::add_tokens gives them: the vocabulary's id
 * when the content is already there, else the next id after the vocabulary / the added ones. */
static int load_added(dsv4_tok *t, json_t *list, dsv4_err *e)
{
    if (!list || json_is_null(list))
        return 0;
    if (!json_is_array(list))
        return dsv4_fail(e, "%s: added_tokens must be a list", t->path);
    t->added = calloc(json_array_size(list) + 1, sizeof *t->added);
    if (!t->added)
        return dsv4_fail_rt(e, "out of memory");
    int32_t max_added = -1;
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *o = json_array_get(list, i), *c = json_object_get(o, "content");
        if (!json_is_string(c))
            return dsv4_fail(e, "%s: added_tokens[%zu].content must be a string", t->path, i);
        size_t len = json_string_length(c);
        if (len == 0 || memchr(json_string_value(c), 0, len))
            continue; /* ignored by tokenizers (empty); NUL cannot be in UTF-8 text we split */
        tok_added a = {.len = len};
        const char *flags[] = {"special", "normalized", "single_word", "lstrip", "rstrip"};
        int *dst[] = {&a.special, &a.normalized, &a.single_word, &a.lstrip, &a.rstrip};
        for (int k = 0; k < 5; k++) {
            json_t *b = json_object_get(o, flags[k]);
            if (b && !json_is_boolean(b))
                return dsv4_fail(e, "%s: added_tokens[%zu].%s must be true or false", t->path, i, flags[k]);
            *dst[k] = b ? json_is_true(b) : (k == 1 ? !a.special : 0);
        }
        int dup = -1;
        for (int k = 0; k < t->nadded && dup < 0; k++)
            if (t->added[k].len == len && !memcmp(t->added[k].content, json_string_value(c), len))
                dup = k;
        if (dup >= 0) { /* same content again: the later flags win, the id stays */
            a.content = t->added[dup].content;
            a.id = t->added[dup].id;
            t->added[dup] = a;
            continue;
        }
        a.content = malloc(len + 1);
        if (!a.content)
            return dsv4_fail_rt(e, "out of memory");
        memcpy(a.content, json_string_value(c), len + 1);
        a.id = tok_map_get(&t->vocab, a.content, len);
        if (a.id < 0)
            a.id = (max_added >= t->vocab_entries || t->vocab_entries == 0) ? max_added + 1 : t->vocab_entries;
        if (a.id > max_added)
            max_added = a.id;
        t->added[t->nadded++] = a;
    }
    /* each matching set lists the special tokens first, then the others (their order only matters
     * for equal contents, which cannot happen) */
    return tok_added_build(t, e);
}

int32_t dsv4_tok_id(const dsv4_tok *t, const char *token)
{
    size_t len = strlen(token);
    for (int i = 0; i < t->nadded; i++)
        if (t->added[i].len == len && !memcmp(t->added[i].content, token, len))
            return t->added[i].id;
    return tok_map_get(&t->vocab, token, len);
}

/* tokenizer_config.json's bos_token / eos_token: a string or {"content": ...}; NULL when absent. */
static const char *config_token(json_t *cfg, const char *key)
{
    json_t *v = json_object_get(cfg, key);
    if (json_is_object(v))
        v = json_object_get(v, "content");
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int apply_config(dsv4_tok *t, json_t *cfg, int post_null, const char *cfg_path, dsv4_err *e)
{
    const char *bos = cfg ? config_token(cfg, "bos_token") : NULL, *eos = cfg ? config_token(cfg, "eos_token") : NULL;
    if (bos && (t->bos = dsv4_tok_id(t, bos)) < 0)
        return dsv4_fail(e, "%s: bos_token \"%s\" is not a token of %s", cfg_path, bos, t->path);
    if (eos && (t->eos = dsv4_tok_id(t, eos)) < 0)
        return dsv4_fail(e, "%s: eos_token \"%s\" is not a token of %s", cfg_path, eos, t->path);
    json_t *ab = cfg ? json_object_get(cfg, "add_bos_token") : NULL, *ae = cfg ? json_object_get(cfg, "add_eos_token") : NULL;
    if ((ab && !json_is_boolean(ab)) || (ae && !json_is_boolean(ae)))
        return dsv4_fail(e, "%s: add_bos_token / add_eos_token must be true or false", cfg_path);
    if (!ab && !ae && !post_null)
        return 0; /* transformers keeps tokenizer.json's post_processor */
    /* transformers 5.17's generic class keeps tokenizer.json's post_processor whatever add_bos_token
     * says (checked on the GPU machine: the fixture's folder, add_bos_token true and a null
     * post_processor, gets no BOS); classes such as LlamaTokenizerFast rebuild it from the flags. */
    json_t *cls = cfg ? json_object_get(cfg, "tokenizer_class") : NULL;
    if (json_is_string(cls) && (!strcmp(json_string_value(cls), "PreTrainedTokenizerFast") ||
                                !strcmp(json_string_value(cls), "TokenizersBackend")))
        return 0;
    free(t->pre_ids);
    free(t->post_ids);
    t->pre_ids = t->post_ids = NULL;
    t->npre = t->npost = 0;
    if (json_is_true(ab) && t->bos >= 0) { /* without a bos_token transformers drops add_bos_token */
        if (!(t->pre_ids = malloc(sizeof *t->pre_ids)))
            return dsv4_fail_rt(e, "out of memory");
        t->pre_ids[t->npre++] = t->bos;
    }
    if (json_is_true(ae) && t->eos >= 0) {
        if (!(t->post_ids = malloc(sizeof *t->post_ids)))
            return dsv4_fail_rt(e, "out of memory");
        t->post_ids[t->npost++] = t->eos;
    }
    return 0;
}

static int load(dsv4_tok *t, const char *json_path, const char *cfg_path, dsv4_err *e)
{
    json_t *root = read_json(json_path, "tokenizer.json", e);
    if (!root)
        return -1;
    json_t *cfg = NULL;
    int rc = -1;
    if (!json_is_object(root)) {
        dsv4_fail(e, "%s: not a tokenizer.json (the top level is not an object)", t->path);
        goto out;
    }
    json_t *ver = json_object_get(root, "version");
    if (ver && !(json_is_string(ver) && !strcmp(json_string_value(ver), "1.0"))) {
        dsv4_fail(e, "%s: tokenizer.json version must be \"1.0\"", t->path);
        goto out;
    }
    const char *unsupported[] = {"truncation", "padding"};
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(root, unsupported[i]);
        if (v && !json_is_null(v)) {
            dsv4_fail(e, "%s: %s is set; not supported (it must be null)", t->path, unsupported[i]);
            goto out;
        }
    }
    json_t *post = json_object_get(root, "post_processor");
    if (tok_load_model(t, json_object_get(root, "model"), e) ||
        tok_load_normalizer(t, json_object_get(root, "normalizer"), e) ||
        tok_load_pretok(t, json_object_get(root, "pre_tokenizer"), e) ||
        tok_load_decoder(t, json_object_get(root, "decoder"), e) ||
        load_added(t, json_object_get(root, "added_tokens"), e) || tok_load_post(t, post, e))
        goto out;
    t->bos = t->eos = -1;
    if (t->npre > 0) /* a template's leading special token is the BOS when no config names one */
        t->bos = t->pre_ids[0];
    if (cfg_path && !(cfg = read_json(cfg_path, "tokenizer_config.json", e)))
        goto out;
    if (cfg && !json_is_object(cfg)) {
        dsv4_fail(e, "%s: the top level is not an object", cfg_path);
        goto out;
    }
    if (apply_config(t, cfg, !post || json_is_null(post), cfg_path, e))
        goto out;
    t->vocab_size = t->nid;
    for (int i = 0; i < t->nadded; i++)
        if (t->added[i].id + 1 > t->vocab_size)
            t->vocab_size = t->added[i].id + 1;
    if (!(t->added_of_id = malloc(((size_t)t->vocab_size + 1) * sizeof *t->added_of_id))) {
        dsv4_fail_rt(e, "out of memory");
        goto out;
    }
    for (int32_t i = 0; i < t->vocab_size; i++)
        t->added_of_id[i] = -1;
    for (int i = 0; i < t->nadded; i++)
        t->added_of_id[t->added[i].id] = i;
    rc = 0;
out:
    json_decref(root);
    json_decref(cfg);
    return rc;
}

int dsv4_tok_load(const char *path, dsv4_tok **out, dsv4_err *e)
{
    *out = NULL;
    struct stat st;
    if (stat(path, &st))
        return dsv4_fail(e, "%s: %s", path, strerror(errno));
    char json_path[1100], cfg_path[1100];
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) : 0;
    if (strlen(path) > 1000)
        return dsv4_fail(e, "%s: path too long", path);
    if (S_ISDIR(st.st_mode)) {
        snprintf(json_path, sizeof json_path, "%s/tokenizer.json", path);
        snprintf(cfg_path, sizeof cfg_path, "%s/tokenizer_config.json", path);
    } else {
        snprintf(json_path, sizeof json_path, "%s", path);
        /* the standard layout only: a file named tokenizer.json takes the config beside it */
        if (!strcmp(slash ? slash + 1 : path, "tokenizer.json"))
            snprintf(cfg_path, sizeof cfg_path, "%.*s%stokenizer_config.json", (int)dirlen, path, slash ? "/" : "");
        else
            cfg_path[0] = 0;
    }
    if (cfg_path[0] && stat(cfg_path, &st))
        cfg_path[0] = 0;
    dsv4_tok *t = calloc(1, sizeof *t);
    if (!t)
        return dsv4_fail_rt(e, "out of memory");
    snprintf(t->path, sizeof t->path, "%s", json_path);
    if (load(t, json_path, cfg_path[0] ? cfg_path : NULL, e)) {
        dsv4_tok_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void dsv4_tok_free(dsv4_tok *t)
{
    if (!t)
        return;
    tok_map_free(&t->vocab);
    for (int32_t i = 0; t->id_str && i < t->nid; i++)
        free(t->id_str[i]);
    free(t->id_str);
    free(t->id_len);
    free(t->merges.slots);
    for (int i = 0; i < t->nadded; i++)
        free(t->added[i].content);
    free(t->added);
    free(t->trie_raw);
    free(t->trie_norm);
    for (int i = 0; i < t->npretok; i++)
        dsv4_re_free(t->pretok[i].re);
    free(t->pretok);
    free(t->pre_ids);
    free(t->post_ids);
    free(t->added_of_id);
    free(t);
}

int64_t dsv4_tok_vocab_size(const dsv4_tok *t) { return t->vocab_size; }
int32_t dsv4_tok_bos(const dsv4_tok *t) { return t->bos; }
int32_t dsv4_tok_eos(const dsv4_tok *t) { return t->eos; }
