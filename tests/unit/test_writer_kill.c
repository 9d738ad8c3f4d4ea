/* Crash safety of the writer: a child process writes a ~64 MB checkpoint in 5 shards and is killed
 * with SIGKILL at spread-out random instants and at fixed points (after the files are allocated,
 * after the first shard, after the index, right before and right after the final folder rename).
 * After every kill the destination must be absent, or complete: it opens strictly and every
 * tensor matches both the manifest and the bytes the child was asked to write. Temporary folders
 * left by the killed child are removed by dsv4_atomic_dir_clean_stale (the writer itself does the
 * same when it next writes that output). */
#include "harness.h"
#include "io/atomic.h"
#include "io/st_write.h"
#include "test_writer_util.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BIG 30           /* BF16 [1024, 1024] tensors, 2 MiB each */
#define SHARD (14u << 20) /* 7 big tensors per shard: 5 shards */
#define RANDOM_KILLS 24

static void build_plan(dsv4_st_plan *p)
{
    dsv4_err e;
    dsv4_st_plan_init(p, SHARD, 0);
    for (int i = 0; i < BIG; i++) {
        char name[64];
        snprintf(name, sizeof name, "layers.%d.w%d.weight", i / 3, i % 3);
        dsv4_st_plan_add(p, name, DSV4_BF16, 2, (int64_t[]){1024, 1024}, &e);
        snprintf(name, sizeof name, "layers.%d.w%d.scale", i / 3, i % 3);
        dsv4_st_plan_add(p, name, DSV4_F32, 1, (int64_t[]){i % 5}, &e);
    }
    dsv4_st_plan_add(p, "tid2eid", DSV4_I64, 2, (int64_t[]){64, 4}, &e);
    dsv4_st_plan_add(p, "norm", DSV4_F32, 0, NULL, &e);
    if (dsv4_st_plan_finish(p, &e))
        th_fail(__FILE__, __LINE__, "%s", e.msg);
}

static int fill_pattern(void *ctx, const dsv4_st_plan_tensor *t, uint8_t *dst, dsv4_err *e)
{
    (void)e;
    tw_pattern(dst, t->nbytes, (uint64_t)(uintptr_t)ctx);
    return 0;
}

typedef struct child_ctx {
    int ev_fd;
    int block_on; /* event at which the child reports and then waits to be killed; -1: never */
} child_ctx;

static void child_progress(void *arg, int ev, size_t index, uint64_t done, uint64_t total)
{
    child_ctx *c = arg;
    unsigned char b = (unsigned char)ev;
    (void)index, (void)done, (void)total;
    if (write(c->ev_fd, &b, 1) != 1)
        _exit(3);
    if (ev == c->block_on)
        for (;;)
            pause();
}

static void child_main(const char *out, int ev_fd, int block_on)
{
    dsv4_st_plan p;
    build_plan(&p);
    child_ctx c = {ev_fd, block_on};
    dsv4_st_write_opts o = {.progress = child_progress, .progress_ctx = &c};
    dsv4_st_writer *w;
    dsv4_err e;
    if (dsv4_st_writer_open(&w, &p, out, &o, &e))
        _exit(1);
    for (size_t i = 0; i < p.n; i++)
        if (dsv4_st_writer_fill(w, i, fill_pattern, (void *)(uintptr_t)(i + 1), &e)) {
            dsv4_st_writer_abort(w);
            _exit(1);
        }
    _exit(dsv4_st_writer_close(w, &e) ? 1 : 0);
}

/* Forks a writer; returns its pid and the read end of its event pipe. */
static pid_t spawn(const char *out, int block_on, int *ev_rd)
{
    int fds[2];
    if (pipe(fds))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        child_main(out, fds[1], block_on);
    }
    close(fds[1]);
    *ev_rd = fds[0];
    return pid;
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

/* Checks the state after a kill: 0 when absent, 1 when complete and valid, -1 when broken. */
static int check_dest(const char *out, const dsv4_st_plan *p, const dsv4_hash128 *want)
{
    struct stat st;
    if (stat(out, &st))
        return 0;
    dsv4_err e;
    if (tw_verify_dir(out, &e)) {
        th_fail(__FILE__, __LINE__, "destination exists but is broken: %s", e.msg);
        return -1;
    }
    dsv4_manifest m;
    if (dsv4_manifest_load(out, &m, &e)) {
        th_fail(__FILE__, __LINE__, "%s", e.msg);
        return -1;
    }
    int ok = m.n == p->n;
    for (size_t i = 0; ok && i < m.n; i++) {
        long k = dsv4_st_plan_find(p, m.v[i].name);
        ok = k >= 0 && m.v[i].hash.hi == want[k].hi && m.v[i].hash.lo == want[k].lo;
    }
    dsv4_manifest_free(&m);
    if (!ok)
        th_fail(__FILE__, __LINE__, "manifest hashes differ from the bytes the writer was given");
    return ok ? 1 : -1;
}

/* Removes the destination and the killed child's temporary folder; returns how many were left. */
static size_t clean(const char *dir, const char *out)
{
    size_t removed = 0;
    dsv4_err e;
    dsv4_rmtree(out);
    if (dsv4_atomic_dir_clean_stale(out, &removed, &e))
        th_fail(__FILE__, __LINE__, "%s", e.msg);
    if (tw_count_prefix(dir, "ckpt") != 0)
        th_fail(__FILE__, __LINE__, "leftovers after cleaning");
    return removed;
}

/* Reads events until `target` arrives (the child then blocks); 0 on success. */
static int wait_event(int fd, int target)
{
    unsigned char b;
    while (read(fd, &b, 1) == 1)
        if (b == target)
            return 0;
    return -1;
}

TEST(writer_survives_sigkill_anywhere)
{
    dsv4_st_plan p;
    build_plan(&p);
    REQUIRE(th_failures() == 0);
    REQUIRE(p.n_shards == 5);
    dsv4_hash128 *want = calloc(p.n, sizeof *want);
    uint8_t *buf = malloc(2u << 20);
    for (size_t i = 0; i < p.n; i++) {
        tw_pattern(buf, p.tensors[i].nbytes, i + 1);
        want[i] = dsv4_xxh128(buf, p.tensors[i].nbytes);
    }
    free(buf);
    const char *dir = th_tmpdir();
    char out[1024];
    snprintf(out, sizeof out, "%s/ckpt", dir);

    /* An unkilled run: measures the write time T and checks the result. */
    int ev;
    double t0 = now_s();
    pid_t pid = spawn(out, -1, &ev);
    REQUIRE(pid > 0);
    int status;
    waitpid(pid, &status, 0);
    double T = now_s() - t0;
    close(ev);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ_INT(check_dest(out, &p, want), 1);
    clean(dir, out);

    int absent = 0, complete = 0;
    size_t temps = 0;
    /* Kills at instants spread over [0, 1.15 T], each jittered within its slot. */
    for (int k = 0; k < RANDOM_KILLS; k++) {
        double at = T * 1.15 * (k + (double)(th_rand() % 1000) / 1000.0) / RANDOM_KILLS;
        pid = spawn(out, -1, &ev);
        REQUIRE(pid > 0);
        sleep_s(at);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        close(ev);
        int r = check_dest(out, &p, want);
        absent += r == 0;
        complete += r == 1;
        temps += clean(dir, out);
    }
    /* Kills at fixed points: blocked inside the progress callback of that event. */
    static const struct { int ev; int complete; } at_event[] = {
        {DSV4_ST_EV_OPENED, 0}, {DSV4_ST_EV_SHARD, 0}, {DSV4_ST_EV_INDEX, 0},
        {DSV4_ST_EV_MANIFEST, 0},  /* everything written; the folder rename is next */
        {DSV4_ST_EV_COMMITTED, 1}, /* right after the rename and the parent fsync */
    };
    for (size_t k = 0; k < sizeof at_event / sizeof at_event[0]; k++) {
        pid = spawn(out, at_event[k].ev, &ev);
        REQUIRE(pid > 0);
        CHECK_MSG(wait_event(ev, at_event[k].ev) == 0, "event %d never came", at_event[k].ev);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        close(ev);
        CHECK(WIFSIGNALED(status));
        int r = check_dest(out, &p, want);
        CHECK_MSG(r == at_event[k].complete, "event %d: state %d, want %d", at_event[k].ev, r,
                  at_event[k].complete);
        temps += clean(dir, out);
    }
    /* Kills a few microseconds to a millisecond after the manifest: inside the rename window. */
    for (int k = 0; k < 4; k++) {
        pid = spawn(out, -1, &ev);
        REQUIRE(pid > 0);
        CHECK(wait_event(ev, DSV4_ST_EV_MANIFEST) == 0);
        sleep_s((double)(th_rand() % 1000) * 1e-6);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        close(ev);
        int r = check_dest(out, &p, want);
        absent += r == 0;
        complete += r == 1;
        temps += clean(dir, out);
    }
    printf("  writer_survives_sigkill_anywhere: T=%.2fs, %d random/late kills left no output, %d a "
           "complete one, %zu temporary folders cleaned\n", T, absent, complete, temps);
    CHECK(absent > 0);
    CHECK(temps > 0);
    free(want);
    dsv4_st_plan_free(&p);
}
