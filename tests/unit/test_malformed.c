/* Every hand-made malformed file and folder in tests/malformed/ (made by tests/malformed/make.py)
 * is refused by the strict checkpoint opener with exactly the message expected.tsv records for it,
 * naming the file, the tensor where there is one, and what was expected. */
#include "harness.h"
#include "io/checkpoint.h"

#include <stdlib.h>
#include <string.h>

/* Replaces each "{M}" in `tmpl` with `dir`. */
static void expand(const char *tmpl, const char *dir, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = tmpl; *p && n + 1 < cap;) {
        if (!strncmp(p, "{M}", 3)) {
            n += (size_t)snprintf(out + n, cap - n, "%s", dir);
            p += 3;
        } else {
            out[n++] = *p++;
        }
    }
    out[n < cap ? n : cap - 1] = 0;
}

TEST(malformed_inputs_give_exact_messages)
{
    char *tsv;
    size_t len;
    dsv4_err e;
    int rc = dsv4_read_file(th_path("tests/malformed/expected.tsv"), 1 << 20, &tsv, &len, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (rc)
        return;
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s", th_path("tests/malformed")) >= (int)sizeof dir)
        return;
    int n = 0;
    for (char *line = strtok(tsv, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#')
            continue;
        char *tab = strchr(line, '\t');
        CHECK_MSG(tab != NULL, "expected.tsv: no tab in '%s'", line);
        if (!tab)
            continue;
        *tab = 0;
        char path[8192], want[2048];
        if (snprintf(path, sizeof path, "%s/%s", dir, line) >= (int)sizeof path)
            continue;
        expand(tab + 1, dir, want, sizeof want);
        dsv4_ckpt c;
        e.msg[0] = 0;
        if (dsv4_ckpt_open(path, 0, &c, &e) == 0) {
            th_fail(__FILE__, __LINE__, "%s: opened, but should be refused with: %s", line, want);
            dsv4_ckpt_close(&c);
            continue;
        }
        CHECK_MSG(!strcmp(e.msg, want), "%s:\n    got:  %s\n    want: %s", line, e.msg, want);
        CHECK_MSG(e.code == DSV4_EXIT_BADINPUT, "%s: exit code %d, want %d", line, e.code,
                  DSV4_EXIT_BADINPUT);
        n++;
    }
    CHECK_MSG(n >= 30, "only %d cases in expected.tsv", n);
    free(tsv);
}

/* The folders are broken only in their index: lenient opening records the drift instead. */
TEST(malformed_index_drift_is_recorded_when_lenient)
{
    static const char *drift[] = {"idx_tensor_missing", "idx_unlisted_tensor", "idx_wrong_shard",
                                  "idx_total_size", "idx_missing_shard", "idx_two_shards"};
    for (size_t i = 0; i < sizeof drift / sizeof drift[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "tests/malformed/%s", drift[i]);
        dsv4_ckpt c;
        dsv4_err e;
        int rc = dsv4_ckpt_open(th_path(path), DSV4_CKPT_LENIENT, &c, &e);
        CHECK_MSG(rc == 0, "%s: %s", drift[i], e.msg);
        if (rc == 0) {
            CHECK_MSG(c.n_problems >= 1, "%s: no problem recorded", drift[i]);
            dsv4_ckpt_close(&c);
        }
    }
}
