/* What add_special adds around the ids: tokenizer.json's post_processor (TemplateProcessing,
 * ByteLevel, a Sequence of them), replaced as transformers does when tokenizer_config.json sets
 * add_bos_token / add_eos_token or when the post_processor is null. */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

static int append(int32_t **v, int *n, const int32_t *ids, int k, int front)
{
    if (k == 0)
        return 0;
    int32_t *nv = realloc(*v, (size_t)(*n + k + 1) * sizeof *nv);
    if (!nv)
        return -1;
    if (front) {
        memmove(nv + k, nv, (size_t)*n * sizeof *nv);
        memcpy(nv, ids, (size_t)k * sizeof *nv);
    } else {
        memcpy(nv + *n, ids, (size_t)k * sizeof *nv);
    }
    *v = nv;
    *n += k;
    return 0;
}

/* One TemplateProcessing: its "single" template wraps what is already there. */
static int template(dsv4_tok *t, json_t *pp, dsv4_err *e)
{
    json_t *single = json_object_get(pp, "single"), *specials = json_object_get(pp, "special_tokens");
    if (!json_is_array(single))
        return dsv4_fail(e, "%s: post_processor TemplateProcessing.single must be a list of pieces", t->path);
    int32_t *pre = NULL, *post = NULL;
    int npre = 0, npost = 0, seen_a = 0, rc = 0;
    for (size_t i = 0; i < json_array_size(single) && !rc; i++) {
        json_t *piece = json_array_get(single, i);
        json_t *sp = json_object_get(piece, "SpecialToken"), *sq = json_object_get(piece, "Sequence");
        if (json_is_object(sq)) {
            json_t *id = json_object_get(sq, "id");
            if (!json_is_string(id) || strcmp(json_string_value(id), "A") || seen_a) {
                rc = dsv4_fail(e, "%s: post_processor TemplateProcessing.single must hold the sequence $A once", t->path);
                break;
            }
            seen_a = 1;
            continue;
        }
        json_t *name = json_is_object(sp) ? json_object_get(sp, "id") : NULL;
        json_t *st = json_is_string(name) ? json_object_get(specials, json_string_value(name)) : NULL;
        json_t *ids = json_is_object(st) ? json_object_get(st, "ids") : NULL;
        if (!json_is_array(ids)) {
            rc = dsv4_fail(e, "%s: post_processor TemplateProcessing piece %zu: a SpecialToken whose id is a key of "
                              "special_tokens with an \"ids\" list was expected", t->path, i);
            break;
        }
        for (size_t k = 0; k < json_array_size(ids) && !rc; k++) {
            json_t *x = json_array_get(ids, k);
            if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > INT32_MAX) {
                rc = dsv4_fail(e, "%s: post_processor special token \"%s\" has a bad id", t->path, json_string_value(name));
                break;
            }
            int32_t id = (int32_t)json_integer_value(x);
            if (append(seen_a ? &post : &pre, seen_a ? &npost : &npre, &id, 1, 0))
                rc = dsv4_fail_rt(e, "out of memory");
        }
    }
    if (!rc && !seen_a)
        rc = dsv4_fail(e, "%s: post_processor TemplateProcessing.single has no $A", t->path);
    if (!rc && (append(&t->pre_ids, &t->npre, pre, npre, 1) || append(&t->post_ids, &t->npost, post, npost, 0)))
        rc = dsv4_fail_rt(e, "out of memory");
    free(pre);
    free(post);
    return rc;
}

int tok_load_post(dsv4_tok *t, json_t *pp, dsv4_err *e)
{
    if (!pp || json_is_null(pp))
        return 0;
    json_t *ty = json_object_get(pp, "type");
    const char *type = json_is_string(ty) ? json_string_value(ty) : "(no type)";
    if (!strcmp(type, "ByteLevel"))
        return 0; /* trims offsets only; the ids are unchanged */
    if (!strcmp(type, "TemplateProcessing"))
        return template(t, pp, e);
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(pp, "processors");
        if (!json_is_array(list))
            return dsv4_fail(e, "%s: post_processor Sequence without a \"processors\" array", t->path);
        for (size_t i = 0; i < json_array_size(list); i++)
            if (tok_load_post(t, json_array_get(list, i), e))
                return -1;
        return 0;
    }
    return dsv4_fail(e, "%s: post_processor %s is not supported (TemplateProcessing, ByteLevel, Sequence)", t->path, type);
}
