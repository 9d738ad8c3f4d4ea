/* Crash safety of an in-place repair: a child process rewrites a damaged multi-shard artifact in
 * place (renames that make one shard header-only, a PUT that rewrites another, a config op; the
 * other shards are hard-linked) and is killed with SIGKILL at spread-out random instants and at
 * fixed points (after the temporary folder appears, after the first and the last shard, right
 * before the folder exchange, a few microseconds after it, inside the removal of the old tree,
 * after the commit). After every kill the artifact folder must hold, byte for byte, either the
 * damaged artifact or the repaired one (the result of the same repair written with -o), ignoring
 * `.tmp-<pid>` siblings; the rules must agree: the old state fails them, the new one passes. The
 * artifact is dsv4-quant's W4A16 of the tiny fixture in 3 MiB shards. */
#include "harness.h"
#include "test_rewrite_util.h"
#include "test_writer_util.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io/atomic.h"
#include "verify/vctx.h"

#define RANDOM_KILLS 24

static char A[1024], D0[1024], D[1024], R[1024];
static const char *renamed[2]; /* the two tensors of shard 1 given a `model.` prefix */
static char renamed_buf[2][256];

/* The repair of D0's damage, as the rules ask for it (names first, then the alias, then config). */
static void fix_ops(const dsv4_ckpt *c, dsv4_fix_list *l)
{
    for (int i = 0; i < 2; i++) {
        char from[300];
        snprintf(from, sizeof from, "model.%s", renamed[i]);
        trw_rename(l, "names-model-prefix", from, renamed[i]);
    }
    trw_put(l, "mtp-aliases", "mtp.0.head.weight", DSV4_BF16, 2, (int64_t[]){1024, 256}, DSV4_PRODUCE_COPY,
            dsv4_ckpt_find(c, "head.weight"), NULL, NULL);
    trw_config(l, "config-scale-fmt", "quantization_config.scale_fmt", json_string("ue8m0"));
}

static int repair(const char *art, const char *out, dsv4_rewrite_progress_fn fn, void *ctx, dsv4_rewrite_stats *st,
                  dsv4_err *e)
{
    dsv4_ckpt c;
    json_error_t je;
    if (dsv4_ckpt_open(art, 0, &c, e))
        return -1;
    json_t *cfg = json_load_file(tw_join(art, "config.json"), 0, &je);
    dsv4_fix_list l = {0};
    fix_ops(&c, &l);
    dsv4_rewrite_opts o = {.out = out, .quiet = 1, .threads = 2, .progress = fn, .progress_ctx = ctx};
    int rc = dsv4_rewrite(&c, cfg, &l, &o, st, e);
    dsv4_fix_list_free(&l);
    json_decref(cfg);
    dsv4_ckpt_close(&c);
    return rc;
}

static size_t errors_of(const char *path)
{
    dsv4_vctx v;
    dsv4_err e;
    if (dsv4_vctx_open(&v, path, NULL, &e) || dsv4_vctx_run(&v, NULL, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        return (size_t)-1;
    }
    size_t n = dsv4_vctx_count(&v, DSV4_SEV_ERROR);
    dsv4_vctx_close(&v);
    return n;
}

static int setup(const char *dir)
{
    snprintf(A, sizeof A, "%s/clean", dir);
    snprintf(D0, sizeof D0, "%s/damaged0", dir);
    snprintf(D, sizeof D, "%s/art", dir);
    snprintf(R, sizeof R, "%s/repaired", dir);
    if (trw_quant_fixture(dir, A))
        return -1;
    /* damage 1 (rewriter): the MTP head alias gone, scale_fmt gone */
    dsv4_ckpt c;
    dsv4_err e;
    if (dsv4_ckpt_open(A, 0, &c, &e))
        return th_fail(__FILE__, __LINE__, "%s", e.msg), -1;
    json_t *cfg = json_load_file(tw_join(A, "config.json"), 0, NULL);
    dsv4_fix_list l = {0};
    trw_drop(&l, "damage", "mtp.0.head.weight");
    trw_config(&l, "damage", "quantization_config.scale_fmt", NULL);
    dsv4_rewrite_opts o = {.out = D0, .quiet = 1};
    dsv4_rewrite_stats st;
    int rc = dsv4_rewrite(&c, cfg, &l, &o, &st, &e);
    /* damage 2 (header only): two tensors of shard 1 get a `model.` prefix */
    const dsv4_st_file *f = &c.files[0];
    int k = 0;
    for (size_t i = 0; i < f->n && k < 2; i++)
        if (!strncmp(f->tensors[i].name, "layers.", 7)) {
            snprintf(renamed_buf[k], sizeof renamed_buf[k], "%s", f->tensors[i].name);
            renamed[k] = renamed_buf[k];
            k++;
        }
    char shard[256];
    snprintf(shard, sizeof shard, "%s", strrchr(f->path, '/') + 1);
    size_t n_files = c.n_files;
    dsv4_fix_list_free(&l);
    json_decref(cfg);
    dsv4_ckpt_close(&c);
    if (rc || k < 2 || n_files < 4)
        return th_fail(__FILE__, __LINE__, "setup: %s (%d names, %zu shards)", e.msg, k, n_files), -1;
    char to[2][300];
    const char *tov[2] = {to[0], to[1]};
    for (int i = 0; i < 2; i++)
        snprintf(to[i], sizeof to[i], "model.%s", renamed[i]);
    if (trw_header_rename(D0, shard, renamed, tov, 2))
        return -1;
    /* the new state: the same repair written to a new folder */
    if (repair(D0, R, NULL, NULL, &st, &e))
        return th_fail(__FILE__, __LINE__, "reference repair: %s", e.msg), -1;
    CHECK_MSG(st.shards_linked >= 1 && st.shards_header_only == 1 && st.shards_rewritten == 1,
              "shards: %zu linked, %zu header-only, %zu rewritten", st.shards_linked, st.shards_header_only,
              st.shards_rewritten);
    CHECK_MSG(tw_same_file(tw_join(A, shard), tw_join(R, shard)), "the header-only shard differs from dsv4-quant's");
    return 0;
}

typedef struct child_ctx {
    int fd, block_ev;
    size_t block_n;
} child_ctx;

static void child_progress(void *arg, int ev, size_t done, size_t total)
{
    child_ctx *c = arg;
    unsigned char b = (unsigned char)ev;
    (void)total;
    if (write(c->fd, &b, 1) != 1)
        _exit(3);
    if (ev == c->block_ev && (ev != DSV4_RW_EV_SHARD || done == c->block_n))
        for (;;)
            pause();
}

static pid_t spawn(int block_ev, size_t block_n, int *ev_rd)
{
    int fds[2];
    if (pipe(fds))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        child_ctx c = {fds[1], block_ev, block_n};
        dsv4_rewrite_stats st;
        dsv4_err e;
        _exit(repair(D, NULL, child_progress, &c, &st, &e) ? 1 : 0);
    }
    close(fds[1]);
    *ev_rd = fds[0];
    return pid;
}

/* Reads events until the n-th `target` arrives; 0 on success. */
static int wait_event(int fd, int target, size_t n)
{
    unsigned char b;
    size_t seen = 0;
    while (read(fd, &b, 1) == 1)
        if (b == target && ++seen == n)
            return 0;
    return -1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts))
        ;
}

/* After a kill: 0 old state, 1 new state, -1 neither (a failure is recorded). Then restores the
 * damaged artifact and removes temporaries. */
static int judge_and_reset(const char *what, size_t *temps)
{
    int old = trw_same_tree(D, D0), neu = trw_same_tree(D, R), state = old ? 0 : neu ? 1 : -1;
    if (state < 0) {
        char buf[4096];
        th_fail(__FILE__, __LINE__, "%s: the artifact is neither the old nor the new state: %s", what,
                trw_list(D, buf, sizeof buf));
    } else {
        size_t errors = errors_of(D);
        CHECK_MSG(state == 0 ? errors > 0 : errors == 0, "%s: %s state but the rules found %zu errors", what,
                  state ? "new" : "old", errors);
    }
    size_t removed = 0;
    dsv4_err e;
    if (dsv4_atomic_dir_clean_stale(D, &removed, &e))
        th_fail(__FILE__, __LINE__, "%s", e.msg);
    *temps += removed;
    dsv4_rmtree(D);
    if (trw_copy_tree(D0, D))
        th_fail(__FILE__, __LINE__, "cannot restore %s", D);
    return state;
}

TEST(fixup_in_place_survives_sigkill_anywhere)
{
    const char *dir = th_tmpdir();
    REQUIRE(setup(dir) == 0);
    REQUIRE(errors_of(D0) > 0);
    REQUIRE(errors_of(R) == 0);
    REQUIRE(trw_copy_tree(D0, D) == 0);
    size_t temps = 0;
    int states[2] = {0, 0};

    /* An unkilled run: its time T, and the result is the new state. */
    int ev, status;
    double t0 = now_s();
    pid_t pid = spawn(-1, 0, &ev);
    REQUIRE(pid > 0);
    waitpid(pid, &status, 0);
    double T = now_s() - t0;
    close(ev);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ_INT(judge_and_reset("unkilled", &temps), 1);

    for (int k = 0; k < RANDOM_KILLS; k++) {
        double at = T * 1.15 * (k + (double)(th_rand() % 1000) / 1000.0) / RANDOM_KILLS;
        pid = spawn(-1, 0, &ev);
        REQUIRE(pid > 0);
        sleep_s(at);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        close(ev);
        int s = judge_and_reset("random kill", &temps);
        if (s >= 0)
            states[s]++;
    }
    static const struct { int ev; size_t n; int state; const char *what; } at_event[] = {
        {DSV4_RW_EV_BEGUN, 0, 0, "temporary folder created"},
        {DSV4_RW_EV_SHARD, 1, 0, "first shard written"},
        {DSV4_RW_EV_SHARD, 0, 0, "last shard written"}, /* n filled in below */
        {DSV4_RW_EV_BUILT, 0, 0, "built, before the exchange"},
        {DSV4_RW_EV_SWAPPED, 0, 1, "exchanged, old tree not yet removed"},
        {DSV4_RW_EV_COMMITTED, 0, 1, "committed"},
    };
    dsv4_ckpt c;
    dsv4_err e;
    REQUIRE(dsv4_ckpt_open(D0, 0, &c, &e) == 0);
    size_t n_shards = c.n_files;
    dsv4_ckpt_close(&c);
    for (size_t k = 0; k < sizeof at_event / sizeof at_event[0]; k++) {
        size_t n = at_event[k].ev == DSV4_RW_EV_SHARD ? (at_event[k].n ? at_event[k].n : n_shards) : 0;
        pid = spawn(at_event[k].ev, n, &ev);
        REQUIRE(pid > 0);
        CHECK_MSG(wait_event(ev, at_event[k].ev, n ? n : 1) == 0, "%s: the event never came", at_event[k].what);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        close(ev);
        CHECK(WIFSIGNALED(status));
        int s = judge_and_reset(at_event[k].what, &temps);
        CHECK_MSG(s == at_event[k].state, "%s: state %d, want %d", at_event[k].what, s, at_event[k].state);
        if (s >= 0)
            states[s]++;
    }
    /* Inside the commit: microseconds after "built" (the fsync and the exchange) and after
     * "swapped" (the parent fsync and the removal of the old tree). */
    for (int k = 0; k < 9; k++) {
        int after = k < 6 ? DSV4_RW_EV_BUILT : DSV4_RW_EV_SWAPPED;
        pid = spawn(-1, 0, &ev);
        REQUIRE(pid > 0);
        CHECK(wait_event(ev, after, 1) == 0);
        sleep_s((double)(th_rand() % 2000) * 1e-6);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        close(ev);
        int s = judge_and_reset(after == DSV4_RW_EV_BUILT ? "inside the exchange" : "inside the old tree's removal",
                                &temps);
        if (after == DSV4_RW_EV_SWAPPED)
            CHECK_EQ_INT(s, 1);
        if (s >= 0)
            states[s]++;
    }
    printf("  fixup_in_place_survives_sigkill_anywhere: T=%.3fs, %d kills left the damaged artifact, %d the "
           "repaired one, %zu temporary folders cleaned\n", T, states[0], states[1], temps);
    CHECK(states[0] + states[1] >= 30);
    CHECK(states[0] > 0 && states[1] > 0);
    CHECK(temps > 0);
}

/* Idempotence: a second repair of the repaired artifact finds nothing to do and writes nothing. */
TEST(fixup_second_run_writes_nothing)
{
    const char *dir = th_tmpdir();
    REQUIRE(setup(dir) == 0);
    dsv4_vctx v;
    dsv4_err e;
    REQUIRE(dsv4_vctx_open(&v, R, NULL, &e) == 0);
    REQUIRE(dsv4_vctx_run(&v, NULL, &e) == 0);
    CHECK_EQ_INT(v.fixes.n, 0);
    char before[8192], after[8192];
    trw_list(R, before, sizeof before);
    dsv4_rewrite_opts o = {.quiet = 1};
    dsv4_rewrite_stats st;
    CHECK(dsv4_rewrite(&v.art.ck, v.art.config, &v.fixes, &o, &st, &e) == 0);
    CHECK_EQ_INT(st.shards_linked + st.shards_header_only + st.shards_rewritten, 0);
    CHECK(!strcmp(before, trw_list(R, after, sizeof after)));
    dsv4_vctx_close(&v);
    /* the damaged one: the names rules ask for exactly the renames of the repair */
    REQUIRE(dsv4_vctx_open(&v, D0, NULL, &e) == 0);
    REQUIRE(dsv4_vctx_run(&v, NULL, &e) == 0);
    size_t renames = 0;
    for (size_t i = 0; i < v.fixes.n; i++)
        renames += v.fixes.v[i].kind == DSV4_FIX_RENAME && !strncmp(v.fixes.v[i].name, "model.", 6);
    CHECK_EQ_INT(renames, 2);
    dsv4_vctx_close(&v);
}
