/* Rules: the shards parse and the index agrees with them (seed_pipelines.md §3.13, §6.3 modes 25,
 * 26). The fix rebuilds the index from the shard headers. */
#include <string.h>

#include "verify/vctx.h"

static const char *base(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static int is_bad(const dsv4_ckpt *c, const char *file)
{
    for (size_t i = 0; i < c->n_bad_shards; i++)
        if (!strcmp(c->bad_shards[i].file, file))
            return 1;
    return 0;
}

static void run_readable(dsv4_vctx *v, const dsv4_rule *self)
{
    for (size_t i = 0; i < v->art.ck.n_bad_shards; i++)
        dsv4_vctx_fail(v, "%s/%s: %s", v->art.ck.dir, v->art.ck.bad_shards[i].file, v->art.ck.bad_shards[i].why);
}

static void run_entries(dsv4_vctx *v, const dsv4_rule *self)
{
    const dsv4_ckpt *c = &v->art.ck;
    if (!c->has_index) {
        dsv4_vctx_skip(v, "no %s (a single-file checkpoint)", DSV4_INDEX_NAME);
        return;
    }
    int dup = 0;
    for (size_t i = 0; i + 1 < c->n; i++)
        if (!strcmp(c->by_name[i]->name, c->by_name[i + 1]->name)) {
            dsv4_vctx_fail(v, "%s: stored twice, in %s and in %s", c->by_name[i]->name,
                           base(dsv4_ckpt_file_of(c, c->by_name[i])), base(dsv4_ckpt_file_of(c, c->by_name[i + 1])));
            dup = 1;
        }
    size_t before = v->cur->n_found;
    for (size_t i = 0; i < c->index.n; i++) {
        const char *file = c->index.files[i];
        if (is_bad(c, file))
            continue;
        const dsv4_tensor *t = dsv4_ckpt_find(c, c->index.names[i]);
        if (!t)
            dsv4_vctx_fail(v, "%s: the index lists it in %s, but no shard holds it", c->index.names[i], file);
        else if (strcmp(base(dsv4_ckpt_file_of(c, t)), file))
            dsv4_vctx_fail(v, "%s: the index lists it in %s, but it is stored in %s", c->index.names[i], file,
                           base(dsv4_ckpt_file_of(c, t)));
    }
    for (size_t i = 0; i < c->n; i++)
        if (!dsv4_index_lookup(&c->index, c->by_name[i]->name))
            dsv4_vctx_fail(v, "%s: stored in %s, but the index does not list it", c->by_name[i]->name,
                           base(dsv4_ckpt_file_of(c, c->by_name[i])));
    if (v->cur->n_found > before && !dup && !c->n_bad_shards)
        dsv4_vctx_fix_index(v, "rebuild the index from the shard headers");
}

static void run_total(dsv4_vctx *v, const dsv4_rule *self)
{
    const dsv4_ckpt *c = &v->art.ck;
    if (!c->has_index || !c->index.has_total_size) {
        dsv4_vctx_skip(v, c->has_index ? "the index has no metadata.total_size" : "no index");
        return;
    }
    if (c->n_bad_shards) {
        dsv4_vctx_skip(v, "a shard does not parse (shards-readable)");
        return;
    }
    if (c->index.total_size != c->data_bytes) {
        dsv4_vctx_fail(v, "%s/%s: metadata.total_size is %llu, the shards hold %llu bytes of tensor data", c->dir,
                       DSV4_INDEX_NAME, (unsigned long long)c->index.total_size, (unsigned long long)c->data_bytes);
        dsv4_vctx_fix_index(v, "rebuild the index from the shard headers");
    }
}

static void run_orphans(dsv4_vctx *v, const dsv4_rule *self)
{
    for (size_t i = 0; i < v->art.ck.n_problems; i++)
        if (strstr(v->art.ck.problems[i], "orphan shard"))
            dsv4_vctx_fail(v, "%s (loaders that follow the index never read it; remove it or re-index)",
                           v->art.ck.problems[i]);
}

static const dsv4_rule READABLE = {
    "shards-readable", "every shard parses",
    "Each shard's 8-byte length, JSON header, dtypes, shapes and data offsets are valid and within the file (a "
    "truncated non-atomic write fails here).",
    DSV4_SEV_ERROR, 0, NULL, run_readable};
static const dsv4_rule ENTRIES = {
    "index-entries", "the index lists exactly the stored tensors",
    "Every weight_map entry names a tensor stored in that shard; every stored tensor is listed; no tensor is stored "
    "twice.",
    DSV4_SEV_ERROR, 0, "rebuild the index from the shard headers", run_entries};
static const dsv4_rule TOTAL = {
    "index-total-size", "index total_size is the tensor bytes",
    "metadata.total_size equals the sum of every tensor's byte size.",
    DSV4_SEV_ERROR, 0, "rebuild the index from the shard headers", run_total};
static const dsv4_rule ORPHANS = {
    "index-orphan-shards", "no shard outside the index",
    "Every model*.safetensors file in the folder is named by the index.",
    DSV4_SEV_WARNING, 0, NULL, run_orphans};

const dsv4_rule *const dsv4_rules_index[] = {&READABLE, &ENTRIES, &TOTAL, &ORPHANS, NULL};
