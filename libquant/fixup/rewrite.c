/* dsv4_rewrite (see rewrite.h): plan and check every op (rewrite_plan.c), then build the new
 * folder (shards in parallel by rewrite_shard.c, the other files, config, index and manifest by
 * rewrite_files.c) and commit it (rewrite_commit.c). */
#include "fixup/rewrite.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifact/convert.h"
#include "fixup/rewrite_internal.h"
#include "util/workers.h"

typedef struct pool {
    rw_state *s;
    const char *dir;
    const dsv4_rewrite_opts *o;
    dsv4_rewrite_stats *st;
    size_t next, done, total;
    int failed, tty;
    dsv4_err err;
    pthread_mutex_t mu;
} pool;

static void *worker(void *arg)
{
    pool *P = arg;
    for (;;) {
        pthread_mutex_lock(&P->mu);
        size_t i = P->failed ? P->s->n_shards : P->next++;
        pthread_mutex_unlock(&P->mu);
        if (i >= P->s->n_shards)
            return NULL;
        dsv4_err e = {{0}, 0};
        int rc = rw_write_shard(P->s, &P->s->sh[i], P->dir, P->st, &e);
        pthread_mutex_lock(&P->mu);
        if (rc && !P->failed) {
            P->failed = 1;
            P->err = e;
        }
        if (!rc) {
            P->done++;
            if (P->o->progress)
                P->o->progress(P->o->progress_ctx, DSV4_RW_EV_SHARD, P->done, P->total);
            if (P->tty)
                fprintf(stderr, "\rdsv4-fixup: %zu/%zu shards%s", P->done, P->total, P->done == P->total ? "\n" : "");
        }
        pthread_mutex_unlock(&P->mu);
        if (rc)
            return NULL;
    }
}

static int write_shards(rw_state *s, const char *dir, const dsv4_rewrite_opts *o, dsv4_rewrite_stats *st,
                        dsv4_err *e)
{
    pool P = {.s = s, .dir = dir, .o = o, .st = st, .total = s->n_shards, .tty = !o->quiet && isatty(2)};
    pthread_mutex_init(&P.mu, NULL);
    int threads = dsv4_convert_threads(o->threads);
    if ((size_t)threads > s->n_shards)
        threads = s->n_shards ? (int)s->n_shards : 1;
    dsv4_run_workers(threads, worker, &P);
    pthread_mutex_destroy(&P.mu);
    if (P.failed) {
        *e = P.err;
        return -1;
    }
    return 0;
}

static void report(const dsv4_rewrite_opts *o, int ev)
{
    if (o->progress)
        o->progress(o->progress_ctx, ev, 0, 0);
}

int dsv4_rewrite(const dsv4_ckpt *art, const json_t *config, const dsv4_fix_list *ops,
                 const dsv4_rewrite_opts *o, dsv4_rewrite_stats *st, dsv4_err *e)
{
    static const dsv4_rewrite_opts defaults;
    if (!o)
        o = &defaults;
    memset(st, 0, sizeof *st);
    if (!ops->n)
        return 0;
    struct stat sb;
    if (o->out && lstat(o->out, &sb) == 0)
        return dsv4_fail(e, "%s: already exists; refusing to overwrite it (remove it or choose another output "
                         "folder)", o->out);
    rw_state s;
    int rc = rw_plan(&s, art, config, ops, st, e);
    if (rc || o->dry_run) {
        rw_state_free(&s);
        return rc;
    }
    char mpath[8192];
    snprintf(mpath, sizeof mpath, "%s/%s", art->dir, DSV4_MANIFEST_NAME);
    if (access(mpath, F_OK) == 0) {
        dsv4_err ignored;
        s.have_manifest = 1; /* a manifest that does not parse is rebuilt by hashing every tensor */
        if (dsv4_manifest_load(art->dir, &s.old_manifest, &ignored))
            memset(&s.old_manifest, 0, sizeof s.old_manifest);
    }
    rw_target t;
    if (rw_target_begin(&t, art->dir, o->out, e)) {
        rw_state_free(&s);
        return -1;
    }
    report(o, DSV4_RW_EV_BEGUN);
    if (write_shards(&s, t.tmp, o, st, e) || rw_carry_files(&s, t.tmp, st, e) || rw_write_meta(&s, t.tmp, st, e)) {
        rw_target_abort(&t);
        rw_state_free(&s);
        return -1;
    }
    report(o, DSV4_RW_EV_BUILT);
    rc = rw_target_commit(&t, o, e);
    rw_state_free(&s);
    return rc;
}
