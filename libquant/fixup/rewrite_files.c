/* The rewritten artifact's files other than shards (see rewrite_internal.h): everything the old
 * folder holds is hard-linked across, config.json gets the CONFIG ops and a provenance record, and
 * the index and the manifest are rendered from the headers of the shards now in the new folder. */
#include "fixup/rewrite_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifact/version.h"
#include "io/atomic.h"
#include "io/index_write.h"

/* Names at the top of the folder that the rewriter writes itself, or leaves out: dsv4-quant's
 * dsv4_verify.json describes the artifact before the repair, so it would be stale. */
static int written_here(const rw_state *s, const char *name)
{
    if (!strcmp(name, "dsv4_verify.json"))
        return 1;
    for (size_t i = 0; i < s->n_shards; i++)
        if (!strcmp(name, s->sh[i].name))
            return 1;
    return ((s->art->has_index || s->index_op) && !strcmp(name, DSV4_INDEX_NAME)) ||
           (s->have_manifest && !strcmp(name, DSV4_MANIFEST_NAME)) || (s->config && !strcmp(name, "config.json"));
}

/* A temporary file of io/atomic.h: `.<name>.tmp-<pid>-<seq>`. */
static int is_atomic_tmp(const char *name)
{
    return name[0] == '.' && strstr(name, ".tmp-") != NULL;
}

static int carry_dir(const rw_state *s, const char *from, const char *to, int top, const struct stat *skip,
                     dsv4_rewrite_stats *st, dsv4_err *e)
{
    DIR *d = opendir(from);
    if (!d)
        return dsv4_fail_rt(e, "%s: cannot list the folder: %s", from, strerror(errno));
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        const char *n = de->d_name;
        if (!strcmp(n, ".") || !strcmp(n, "..") || is_atomic_tmp(n) || (top && written_here(s, n)))
            continue;
        char src[8192], dst[8192];
        snprintf(src, sizeof src, "%s/%s", from, n);
        snprintf(dst, sizeof dst, "%s/%s", to, n);
        struct stat sb;
        if (lstat(src, &sb)) {
            rc = dsv4_fail_rt(e, "%s: cannot stat: %s", src, strerror(errno));
        } else if (sb.st_dev == skip->st_dev && sb.st_ino == skip->st_ino) {
            continue; /* the folder being built (an output inside the artifact) */
        } else if (S_ISREG(sb.st_mode)) {
            rc = rw_link_or_copy(src, dst, &st->bytes_kernel_copied, e);
        } else if (S_ISDIR(sb.st_mode)) {
            if (mkdir(dst, sb.st_mode & 07777))
                rc = dsv4_fail_rt(e, "%s: cannot create the folder: %s", dst, strerror(errno));
            else
                rc = carry_dir(s, src, dst, 0, skip, st, e);
        } else if (S_ISLNK(sb.st_mode)) {
            char target[4096];
            ssize_t k = readlink(src, target, sizeof target - 1);
            if (k < 0 || (size_t)k >= sizeof target - 1)
                rc = dsv4_fail_rt(e, "%s: cannot read the link", src);
            else if ((target[k] = 0, symlink(target, dst)))
                rc = dsv4_fail_rt(e, "%s: cannot create the link: %s", dst, strerror(errno));
        }
        /* sockets, fifos and devices are not part of an artifact: left behind */
    }
    closedir(d);
    return rc;
}

int rw_carry_files(const rw_state *s, const char *dir, dsv4_rewrite_stats *st, dsv4_err *e)
{
    struct stat skip;
    if (stat(dir, &skip))
        return dsv4_fail_rt(e, "%s: cannot stat: %s", dir, strerror(errno));
    return carry_dir(s, s->art->dir, dir, 1, &skip, st, e);
}

/* config.json as artifact/convert.c writes it: two-space indent, keys in their order, a newline. */
static int write_config(rw_state *s, const char *dir, dsv4_rewrite_stats *st, dsv4_err *e)
{
    json_t *list = json_object_get(s->config, "dsv4_fixup");
    if (list && !json_is_array(list))
        return dsv4_fail(e, "%s/config.json: \"dsv4_fixup\" is not a list; cannot append the provenance record",
                         s->art->dir);
    if (!list && json_object_set_new(s->config, "dsv4_fixup", list = json_array()))
        return dsv4_fail_rt(e, "out of memory");
    json_t *rec = json_pack("{s:s,s:s,s:O}", "tool", "dsv4-fixup", "version", DSV4_VERSION, "rules", s->rules);
    if (!rec || json_array_append_new(list, rec))
        return dsv4_fail_rt(e, "out of memory");
    char *txt = json_dumps(s->config, JSON_INDENT(2));
    if (!txt)
        return dsv4_fail_rt(e, "out of memory rendering config.json");
    size_t n = strlen(txt);
    char *t = realloc(txt, n + 2);
    if (!t) {
        free(txt);
        return dsv4_fail_rt(e, "out of memory rendering config.json");
    }
    t[n++] = '\n';
    char path[8192];
    snprintf(path, sizeof path, "%s/config.json", dir);
    int rc = dsv4_atomic_write(path, t, n, e);
    free(t);
    if (rc == 0) {
        st->config_rewritten = 1;
        st->bytes_written += n;
    }
    return rc;
}

static int write_jbuf(const char *dir, const char *name, dsv4_jbuf *b, dsv4_rewrite_stats *st, dsv4_err *e)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (b->oom)
        return dsv4_fail_rt(e, "out of memory rendering %s", path);
    st->bytes_written += b->n;
    return dsv4_atomic_write(path, b->p, b->n, e);
}

/* Index and manifest from the shards now in `dir`. */
static int write_index_manifest(rw_state *s, const char *dir, dsv4_rewrite_stats *st, dsv4_err *e)
{
    size_t n = 0;
    dsv4_st_file *files = calloc(s->n_shards + 1, sizeof *files);
    char **names = calloc(s->n_shards + 1, sizeof *names);
    dsv4_hash128 *hashes = NULL;
    dsv4_st_plan p;
    dsv4_jbuf b = {0};
    int rc = -1, described = 0;
    if (!files || !names) {
        dsv4_fail_rt(e, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < s->n_shards; i++) {
        if (s->sh[i].kind == RW_OMIT)
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, s->sh[i].name);
        if (dsv4_st_open(path, &files[n], e)) {
            dsv4_wrap(e, "the rewritten shard does not read back");
            goto out;
        }
        names[n++] = (char *)s->sh[i].name;
    }
    if (dsv4_st_plan_describe(&p, files, names, n, e))
        goto out;
    described = 1;
    if (s->art->has_index || s->index_op) {
        if (dsv4_index_render(&p, &b, e) || write_jbuf(dir, DSV4_INDEX_NAME, &b, st, e))
            goto out;
        st->index_rewritten = 1;
    }
    if (s->have_manifest) {
        if (!(hashes = calloc(p.n ? p.n : 1, sizeof *hashes))) {
            dsv4_fail_rt(e, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < p.n; i++) {
            long k = rw_find(s, p.tensors[i].name);
            if (k < 0) {
                dsv4_fail_rt(e, "internal: rewritten tensor '%s' is not in the plan", p.tensors[i].name);
                goto out;
            }
            hashes[i] = s->t[k].hash;
        }
        dsv4_jbuf_free(&b);
        if (dsv4_manifest_render(&p, hashes, s->old_manifest.calibration, &b, e) || write_jbuf(dir, DSV4_MANIFEST_NAME, &b, st, e))
            goto out;
        st->manifest_rewritten = 1;
    }
    rc = 0;
out:
    dsv4_jbuf_free(&b);
    free(hashes);
    if (described)
        dsv4_st_plan_free(&p);
    for (size_t i = 0; i < n; i++)
        dsv4_st_close(&files[i]);
    free(files);
    free(names);
    return rc;
}

int rw_write_meta(rw_state *s, const char *dir, dsv4_rewrite_stats *st, dsv4_err *e)
{
    if (s->config && write_config(s, dir, st, e))
        return -1;
    if ((s->art->has_index || s->index_op || s->have_manifest) && write_index_manifest(s, dir, st, e))
        return -1;
    return 0;
}
