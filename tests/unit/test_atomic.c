/* Atomic file and folder creation: refusal to overwrite, replacement keeping permissions, no
 * temporary names left behind, and removal of stale temporary folders of dead processes only. */
#include "harness.h"
#include "io/atomic.h"
#include "test_writer_util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int slurp_equals(const char *path, const char *want)
{
    char buf[256] = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    return n == strlen(want) && !memcmp(buf, want, n);
}

TEST(atomic_write_creates_and_refuses_to_overwrite)
{
    const char *dir = th_tmpdir();
    const char *p = tw_join(dir, "f.json");
    dsv4_err e;
    REQUIRE(dsv4_atomic_write(p, "one", 3, &e) == 0);
    CHECK(slurp_equals(p, "one"));
    CHECK(dsv4_atomic_write(p, "two", 3, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "/f.json: already exists; refusing to overwrite it");
    CHECK(slurp_equals(p, "one"));
    CHECK_EQ_INT(tw_count_prefix(dir, ""), 3); /* ".", "..", f.json: no temporary left */
    CHECK(dsv4_atomic_write(tw_join(dir, "missing/f"), "x", 1, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "missing/f: cannot create the temporary file");
}

TEST(atomic_replace_keeps_permissions)
{
    const char *dir = th_tmpdir();
    const char *p = tw_join(dir, "config.json");
    dsv4_err e;
    CHECK(dsv4_atomic_replace(p, "x", 1, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "/config.json: expected an existing regular file to replace");
    REQUIRE(dsv4_atomic_write(p, "old", 3, &e) == 0);
    REQUIRE(chmod(p, 0640) == 0);
    REQUIRE(dsv4_atomic_replace(p, "new!", 4, &e) == 0);
    CHECK(slurp_equals(p, "new!"));
    struct stat st;
    REQUIRE(stat(p, &st) == 0);
    CHECK_EQ_INT(st.st_mode & 07777, 0640);
    CHECK_EQ_INT(tw_count_prefix(dir, "."), 2);
}

TEST(atomic_file_abort_leaves_nothing)
{
    const char *dir = th_tmpdir();
    dsv4_atomic_file f;
    dsv4_err e;
    REQUIRE(dsv4_atomic_file_open(&f, tw_join(dir, "a.bin"), DSV4_ATOMIC_CREATE, &e) == 0);
    CHECK(strstr(f.tmp, "/.a.bin.tmp-") != NULL);
    REQUIRE(dsv4_pwrite_all(f.fd, "abc", 3, 0, f.tmp, &e) == 0);
    CHECK_EQ_INT(tw_count_prefix(dir, ".a.bin.tmp-"), 1);
    dsv4_atomic_file_abort(&f);
    dsv4_atomic_file_abort(&f); /* twice is harmless */
    CHECK_EQ_INT(tw_count_prefix(dir, ""), 2);
    /* A destination that appears while the temporary file is written is not replaced. */
    REQUIRE(dsv4_atomic_file_open(&f, tw_join(dir, "b.bin"), DSV4_ATOMIC_CREATE, &e) == 0);
    REQUIRE(dsv4_atomic_write(tw_join(dir, "b.bin"), "first", 5, &e) == 0);
    CHECK(dsv4_atomic_file_commit(&f, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "/b.bin: appeared while it was being written");
    CHECK(slurp_equals(tw_join(dir, "b.bin"), "first"));
    CHECK_EQ_INT(tw_count_prefix(dir, ".b.bin"), 0);
}

TEST(atomic_dir_builds_under_a_temporary_name)
{
    const char *dir = th_tmpdir();
    const char *out = tw_join(dir, "out");
    dsv4_atomic_dir d;
    dsv4_err e;
    REQUIRE(dsv4_atomic_dir_begin(&d, tw_join(dir, "out/"), &e) == 0);
    char want[1024];
    snprintf(want, sizeof want, "%s.tmp-%ld", out, (long)getpid());
    CHECK(!strcmp(d.tmp, want));
    CHECK(!strcmp(d.path, out));
    REQUIRE(dsv4_atomic_write(tw_join(d.tmp, "f"), "x", 1, &e) == 0);
    CHECK(access(out, F_OK) != 0);
    REQUIRE(dsv4_atomic_dir_commit(&d, &e) == 0);
    CHECK(slurp_equals(tw_join(out, "f"), "x"));
    CHECK_EQ_INT(tw_count_prefix(dir, "out.tmp-"), 0);

    CHECK(dsv4_atomic_dir_begin(&d, out, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "/out: already exists; refusing to overwrite it");
    CHECK(dsv4_atomic_dir_begin(&d, "/", &e) == -1);

    /* Abort removes the whole tree. */
    REQUIRE(dsv4_atomic_dir_begin(&d, tw_join(dir, "o2"), &e) == 0);
    REQUIRE(mkdir(tw_join(d.tmp, "sub"), 0777) == 0);
    REQUIRE(dsv4_atomic_write(tw_join(d.tmp, "sub/f"), "x", 1, &e) == 0);
    dsv4_atomic_dir_abort(&d);
    dsv4_atomic_dir_abort(&d);
    CHECK_EQ_INT(tw_count_prefix(dir, "o2"), 0);

    /* A destination (even an empty folder) that appears before the rename is never replaced. */
    REQUIRE(dsv4_atomic_dir_begin(&d, tw_join(dir, "o3"), &e) == 0);
    REQUIRE(mkdir(tw_join(dir, "o3"), 0777) == 0);
    CHECK(dsv4_atomic_dir_commit(&d, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "/o3: appeared while the output was being written");
    CHECK_EQ_INT(tw_count_prefix(dir, "o3.tmp-"), 0);
}

TEST(atomic_dir_removes_only_stale_temporaries)
{
    const char *dir = th_tmpdir();
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    REQUIRE(dead > 0);
    waitpid(dead, NULL, 0);
    char name[256];
    snprintf(name, sizeof name, "out.tmp-%ld", (long)dead);
    REQUIRE(mkdir(tw_join(dir, name), 0777) == 0);
    REQUIRE(mkdir(tw_join(tw_join(dir, name), "deep"), 0777) == 0);
    snprintf(name, sizeof name, "out.tmp-%ld", (long)getppid()); /* alive: must stay */
    REQUIRE(mkdir(tw_join(dir, name), 0777) == 0);
    REQUIRE(mkdir(tw_join(dir, "out.tmp-12x"), 0777) == 0);     /* not ours: must stay */
    REQUIRE(mkdir(tw_join(dir, "outer.tmp-1"), 0777) == 0);     /* another output: must stay */
    size_t removed = 99;
    dsv4_err e;
    REQUIRE(dsv4_atomic_dir_clean_stale(tw_join(dir, "out"), &removed, &e) == 0);
    CHECK_EQ_INT(removed, 1);
    CHECK_EQ_INT(tw_count_prefix(dir, "out.tmp-"), 2);
    CHECK_EQ_INT(tw_count_prefix(dir, "outer.tmp-"), 1);
    /* begin cleans the same way, and replaces a leftover with our own pid. */
    snprintf(name, sizeof name, "out.tmp-%ld", (long)getpid());
    REQUIRE(mkdir(tw_join(dir, name), 0777) == 0);
    REQUIRE(dsv4_atomic_write(tw_join(tw_join(dir, name), "old"), "x", 1, &e) == 0);
    dsv4_atomic_dir d;
    REQUIRE(dsv4_atomic_dir_begin(&d, tw_join(dir, "out"), &e) == 0);
    CHECK(access(tw_join(d.tmp, "old"), F_OK) != 0);
    dsv4_atomic_dir_abort(&d);
    CHECK_EQ_INT(tw_count_prefix(dir, "out.tmp-"), 2);
}
