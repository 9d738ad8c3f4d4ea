/* Modes that break the files around the tensors and the tensor inventory (spec/seed_pipelines.md
 * §3.13, §6.3 modes 25, 26): a stale index total_size, an index entry too many or too few, a shard
 * truncated by a killed non-atomic writer, an orphan shard, a routed expert missing. Also the
 * control mode `unchanged`, which must reproduce the clean artifact byte for byte. */
#include "modes.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/atomic.h"
#include "io/st_plan.h"

/* Control: nothing changed. The output's shards, index and config.json equal the clean ones. */
static int unchanged(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    return 0;
}

/* D's fixup_artifact.py injected the MTP aliases without updating metadata.total_size: the index
 * still gives the size from before they were added. */
static int index_stale_total_size(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    const bt_tensor *h = bt_find(a, "mtp.0.head.weight"), *m = bt_find(a, "mtp.0.emb.tok_emb.weight");
    if (!h || !m)
        return dsv4_fail(e, "%s: expected the MTP aliases (mtp.0.head.weight, mtp.0.emb.tok_emb.weight)", a->dir);
    uint64_t total = 0;
    for (size_t i = 0; i < a->n; i++)
        total += a->t[i].nbytes;
    a->ix.stale_total = 1;
    a->ix.total_override = total - h->nbytes - m->nbytes;
    return 0;
}

/* The index still lists a tensor that a later script dropped from its shard (a compressor
 * weight_scale after dequant_compressor.py-style edits that forgot the index). */
static int index_extra_entry(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    static const char *const name = "layers.1.attn.compressor.wkv.weight_scale";
    if (bt_find(a, name))
        return dsv4_fail(e, "%s: '%s' exists: expected an artifact without it", a->dir, name);
    a->ix.extra_name = name;
    return 0;
}

/* A tensor written into the shard but not added to the index's weight_map. */
static int index_missing_entry(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    static const char *const name = "norm.weight";
    if (!bt_find(a, name))
        return dsv4_fail(e, "%s: '%s' is missing: expected a clean artifact", a->dir, name);
    a->ix.missing_name = name;
    return 0;
}

/* The name of the last shard of a re-saved artifact (model-0000N-of-0000N.safetensors). */
static int last_shard(const char *tmp, char *out, size_t cap, dsv4_err *e)
{
    for (int n = 99; n >= 1; n--) {
        char p[8192];
        snprintf(out, cap, "model-%05d-of-%05d.safetensors", n, n);
        snprintf(p, sizeof p, "%s/%s", tmp, out);
        if (access(p, F_OK) == 0)
            return 0;
    }
    return dsv4_fail(e, "%s: no numbered shard was written", tmp);
}

/* Cuts the last shard in the middle of its data section, as a killed `save_file` straight over the
 * final name leaves it (the header is complete; the data stops short). */
static int truncate_last(bt_art *a, const char *tmp, dsv4_err *e)
{
    char name[64], path[8192];
    if (last_shard(tmp, name, sizeof name, e))
        return -1;
    if (!strcmp(name, "model-00001-of-00001.safetensors"))
        return dsv4_fail(e, "%s: only one shard was written: expected several", tmp);
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    uint8_t len[8];
    struct stat st;
    if (fd < 0 || pread(fd, len, 8, 0) != 8 || fstat(fd, &st)) {
        if (fd >= 0)
            close(fd);
        return dsv4_fail_rt(e, "%s: cannot read: %m", path);
    }
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--)
        n = n << 8 | len[k];
    off_t cut = (off_t)(8 + n + ((uint64_t)st.st_size - 8 - n) / 2);
    int rc = ftruncate(fd, cut) || fsync(fd) ? dsv4_fail_rt(e, "%s: cannot truncate: %m", path) : 0;
    close(fd);
    return rc;
}

/* Mode 25: shards of 4 MiB (a multi-shard save), the last one truncated mid-data. */
static int shard_truncated(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    a->max_shard_bytes = 4u << 20;
    a->post = truncate_last;
    return 0;
}

/* Writes model-00002-of-00002.safetensors: what a killed earlier two-shard save left behind (a
 * complete shard with copies of some tensors), which the single-shard index does not name. */
static int add_orphan(bt_art *a, const char *tmp, dsv4_err *e)
{
    static const char *const names[] = {"head.weight", "norm.weight"};
    dsv4_st_plan p;
    dsv4_st_plan_init(&p, 0, 0);
    const bt_tensor *t[2];
    int rc = 0;
    for (int i = 0; rc == 0 && i < 2; i++) {
        t[i] = bt_find(a, names[i]);
        rc = t[i] ? dsv4_st_plan_add(&p, names[i], t[i]->dtype, t[i]->ndim, t[i]->shape, e)
                  : dsv4_fail(e, "%s: '%s' is missing: expected a clean artifact", a->dir, names[i]);
    }
    if (rc == 0)
        rc = dsv4_st_plan_finish(&p, e);
    char path[8192];
    snprintf(path, sizeof path, "%s/model-00002-of-00002.safetensors", tmp);
    int fd = rc ? -1 : open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (rc == 0 && fd < 0)
        rc = dsv4_fail_rt(e, "%s: cannot create: %m", path);
    if (rc == 0) {
        const dsv4_st_plan_shard *s = &p.shards[0];
        uint8_t len[8];
        for (int k = 0; k < 8; k++)
            len[k] = (uint8_t)(s->header_len >> (8 * k));
        rc = dsv4_pwrite_all(fd, len, 8, 0, path, e) || dsv4_pwrite_all(fd, s->header, s->header_len, 8, path, e);
        for (size_t k = 0; rc == 0 && k < p.n; k++)
            rc = dsv4_pwrite_all(fd, t[k]->data, p.tensors[k].nbytes, p.tensors[k].file_offset, path, e);
        if (fsync(fd) && rc == 0)
            rc = dsv4_fail_rt(e, "%s: cannot sync: %m", path);
        close(fd);
    }
    dsv4_st_plan_free(&p);
    return rc ? -1 : 0;
}

/* Mode 26: an orphan shard next to a single-shard artifact. */
static int orphan_shard(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    if (a->ck.n_files != 1)
        return dsv4_fail(e, "%s: %zu shards: expected dsv4-quant's single shard", a->dir, a->ck.n_files);
    a->post = add_orphan;
    return 0;
}

static int is_expert_7_of_layer_2(const bt_tensor *t, const void *ctx)
{
    (void)ctx;
    return bt_has_prefix(t->name, "layers.2.ffn.experts.7.");
}

/* One routed expert's tensors gone (a rank's slice lost in a merge of per-rank saves, B's
 * merge_rank_subdirs.py): layer 2, expert 7. */
static int inventory_missing_expert(bt_art *a, const dsv4_ckpt *src, dsv4_err *e)
{
    bt_names l;
    if (bt_select(a, is_expert_7_of_layer_2, NULL, "a tensor of layers.2.ffn.experts.7", &l, e))
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l.n; i++)
        rc = bt_drop(a, l.v[i], e);
    bt_names_free(&l);
    return rc;
}

const bt_mode bt_modes_files[] = {
    {"index-stale-total-size", "index metadata.total_size left from before the MTP aliases were added (mode 26)",
     0, index_stale_total_size},
    {"index-extra-entry", "the index lists a tensor no shard holds (mode 26)", 0, index_extra_entry},
    {"index-missing-entry", "a tensor the shard holds is missing from the index (mode 26)", 0, index_missing_entry},
    {"shard-truncated", "4 MiB shards, the last one truncated mid-data by a killed non-atomic writer (mode 25)", 0,
     shard_truncated},
    {"orphan-shard", "an extra model-00002-of-00002.safetensors the index does not name (mode 26)", 0,
     orphan_shard},
    {"inventory-missing-expert", "every tensor of routed expert 7 of layer 2 removed", 0, inventory_missing_expert},
    {"unchanged", "control: nothing changed (the output must equal the clean artifact byte for byte)", 0,
     unchanged},
    {NULL, NULL, 0, NULL},
};
