/* Repair cost of dsv4-fixup against copying the same bytes on the same disk, in the same run.
 * A synthetic artifact of N shards of S MiB each (BF16 expert weights, 16 MiB tensors) whose only
 * damage is names: shard 1 in transformers names (the repair reorders it: rewritten, tensors copied
 * by the kernel), shard 2 with a `model.` prefix (the layout keeps its order: a new header only),
 * the rest already right (hard-linked), plus one small PUT (an MTP head alias, 512 KiB) into
 * shard 1. The repair is what dsv4-fixup -o does: open the verification context, run the names
 * rules, add the PUT, rewrite into a new folder. The baseline copies every file of the artifact
 * with copy_file_range and fsyncs it. Each is timed three times, alternating; medians are printed.
 * Usage: bench_fixup [shard MiB (1024)] [shards (3)]; DSV4_BENCH_FIXUP_MB / _SHARDS also set them;
 * the folder is $TMPDIR (or /tmp). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixup/rewrite.h"
#include "io/atomic.h"
#include "io/st_plan.h"
#include "io/st_write.h"
#include "verify/vctx.h"
#include "util/clock.h"

static void die(const char *what, const dsv4_err *e)
{
    fprintf(stderr, "bench_fixup: %s: %s\n", what, e->msg);
    exit(1);
}

static const char *const HF_PROJ[3] = {"gate_proj", "down_proj", "up_proj"}; /* w1, w2, w3 */

static int fill(void *ctx, const dsv4_st_plan_tensor *t, uint8_t *dst, dsv4_err *e)
{
    (void)ctx, (void)e;
    memset(dst, (int)(t->nbytes + t->begin) & 0x3f, t->nbytes);
    return 0;
}

/* The damaged artifact: `shards` shards of `per` BF16 [rows, 2048] tensors. */
static void make_artifact(const char *dir, int shards, int per, int64_t rows)
{
    dsv4_st_plan p;
    dsv4_err e;
    uint64_t tb = (uint64_t)rows * 2048 * 2;
    dsv4_st_plan_init(&p, tb * (uint64_t)per + 1024 * 256 * 2, 0); /* room for lm_head.weight */
    for (int s = 0; s < shards; s++) {
        for (int k = 0; k < per; k++) {
            char n[256];
            int x = k / 3, w = k % 3;
            if (s == 0)
                snprintf(n, sizeof n, "model.layers.%d.mlp.experts.%d.%s.weight", s, x, HF_PROJ[w]);
            else
                snprintf(n, sizeof n, "%slayers.%d.ffn.experts.%d.w%d.weight", s == 1 ? "model." : "", s, x, w + 1);
            if (dsv4_st_plan_add(&p, n, DSV4_BF16, 2, (int64_t[]){rows, 2048}, &e))
                die("plan", &e);
        }
        if (s == 0 && dsv4_st_plan_add(&p, "lm_head.weight", DSV4_BF16, 2, (int64_t[]){1024, 256}, &e))
            die("plan", &e);
    }
    if (dsv4_st_plan_finish(&p, &e))
        die("plan", &e);
    dsv4_st_writer *w;
    if (dsv4_st_writer_open(&w, &p, dir, NULL, &e))
        die("write", &e);
    for (size_t i = 0; i < p.n; i++)
        if (dsv4_st_writer_fill(w, i, fill, NULL, &e))
            die("write", &e);
    char *cfg;
    size_t n;
    if (dsv4_read_file("fixtures/dsv4-tiny/config.json", 1 << 20, &cfg, &n, &e) ||
        dsv4_st_writer_add_file(w, "config.json", cfg, n, &e) || dsv4_st_writer_close(w, &e))
        die("write", &e);
    free(cfg);
    dsv4_st_plan_free(&p);
}

/* dsv4-fixup -o: rules, ops, rewrite. */
static void repair(const char *art, const char *out, dsv4_rewrite_stats *st)
{
    dsv4_vctx v;
    dsv4_err e;
    if (dsv4_vctx_open(&v, art, NULL, &e) || dsv4_vctx_run(&v, "names-transformers,names-model-prefix", &e))
        die(art, &e);
    const dsv4_vtensor *head = dsv4_side_find(&v.art, "head.weight");
    if (!head)
        die("the names rules", &(dsv4_err){"no tensor has the canonical name head.weight", 2});
    /* the PUT names final names: head.weight after the rename of lm_head.weight */
    if (dsv4_fix_list_add(&v.fixes, &(dsv4_fix_op){.kind = DSV4_FIX_PUT, .rule = "mtp-aliases",
                                                   .name = "mtp.0.head.weight", .dtype = DSV4_BF16, .ndim = 2,
                                                   .shape = {1024, 256}, .produce = DSV4_PRODUCE_COPY,
                                                   .from = head->t, .near = "head.weight"}))
        die("ops", &(dsv4_err){"out of memory", 1});
    dsv4_rewrite_opts o = {.out = out, .quiet = 1};
    if (dsv4_rewrite(&v.art.ck, v.art.config, &v.fixes, &o, st, &e))
        die("rewrite", &e);
    dsv4_vctx_close(&v);
}

/* The baseline: every file of the artifact copied by copy_file_range, then fsync'd. */
static uint64_t copy_all(const char *art, const char *to)
{
    dsv4_ckpt c;
    dsv4_err e;
    if (dsv4_ckpt_open(art, 0, &c, &e))
        die(art, &e);
    if (mkdir(to, 0777))
        die(to, &(dsv4_err){"cannot create the copy folder", 1});
    static const char *const extra[] = {"config.json", DSV4_INDEX_NAME, "dsv4-manifest.json"};
    uint64_t total = 0;
    for (size_t i = 0; i < c.n_files + 3; i++) {
        char src[8400], dst[8400];
        const char *name = i < c.n_files ? strrchr(c.files[i].path, '/') + 1 : extra[i - c.n_files];
        snprintf(src, sizeof src, "%s/%s", art, name);
        snprintf(dst, sizeof dst, "%s/%s", to, name);
        int in = open(src, O_RDONLY), out = open(dst, O_WRONLY | O_CREAT | O_EXCL, 0644);
        struct stat sb;
        if (in < 0 || out < 0 || fstat(in, &sb))
            die(src, &(dsv4_err){"cannot open for the copy", 1});
        loff_t a = 0, b = 0;
        for (uint64_t left = (uint64_t)sb.st_size; left;) {
            ssize_t k = copy_file_range(in, &a, out, &b, left, 0);
            if (k <= 0)
                die(src, &(dsv4_err){"copy_file_range failed", 1});
            left -= (uint64_t)k;
        }
        if (fsync(out))
            die(dst, &(dsv4_err){"fsync failed", 1});
        close(in), close(out);
        total += (uint64_t)sb.st_size;
    }
    dsv4_ckpt_close(&c);
    dsv4_fsync_dir(to, &e);
    return total;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *env_mb = getenv("DSV4_BENCH_FIXUP_MB"), *env_n = getenv("DSV4_BENCH_FIXUP_SHARDS");
    long mb = argc > 1 ? atol(argv[1]) : env_mb ? atol(env_mb) : 1024;
    int shards = argc > 2 ? atoi(argv[2]) : env_n ? atoi(env_n) : 3;
    if (mb < 4 || shards < 3) {
        fprintf(stderr, "usage: bench_fixup [shard MiB >= 4 (1024)] [shards >= 3 (3)]\n");
        return 2;
    }
    int64_t rows = mb >= 64 ? 4096 : mb * 64; /* 16 MiB tensors, or a quarter of a small shard */
    int per = (int)((uint64_t)mb * (1u << 20) / ((uint64_t)rows * 4096));
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char art[4096], out[4200], cp[4200];
    snprintf(art, sizeof art, "%s/bench-fixup-%d", base, (int)getpid());
    snprintf(out, sizeof out, "%s.out", art);
    snprintf(cp, sizeof cp, "%s.copy", art);
    make_artifact(art, shards, per, rows);
    double tf[3], tc[3];
    dsv4_rewrite_stats st;
    uint64_t bytes = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = dsv4_now();
        repair(art, out, &st);
        tf[r] = dsv4_now() - t0;
        dsv4_rmtree(out);
        t0 = dsv4_now();
        bytes = copy_all(art, cp);
        tc[r] = dsv4_now() - t0;
        dsv4_rmtree(cp);
    }
    dsv4_rmtree(art);
    qsort(tf, 3, sizeof *tf, cmp_d);
    qsort(tc, 3, sizeof *tc, cmp_d);
    printf("bench_fixup: %d shards x %ld MiB (%.2f GB): dsv4-fixup -o %.3f s, copy_file_range of every file %.3f s, "
           "ratio %.3f\n", shards, mb, (double)bytes / 1e9, tf[1], tc[1], tc[1] > 0 ? tf[1] / tc[1] : 0.0);
    printf("bench_fixup: shards %zu linked, %zu header-only, %zu rewritten; %zu renamed, %zu put; %.1f MB written, "
           "%.1f MB copied by the kernel or linked\n", st.shards_linked, st.shards_header_only, st.shards_rewritten,
           st.renamed, st.put, (double)st.bytes_written / 1e6, (double)st.bytes_kernel_copied / 1e6);
    if (st.shards_linked < 1 || st.shards_header_only != 1 || st.shards_rewritten != 1) {
        fprintf(stderr, "bench_fixup: expected one rewritten and one header-only shard, the rest linked\n");
        return 1;
    }
    return 0;
}
