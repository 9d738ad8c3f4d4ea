/* Shared writer-test helpers (see test_writer_util.h). */
#include "test_writer_util.h"
#include "harness.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/manifest.h"

void tw_pattern(uint8_t *dst, uint64_t n, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + n;
    for (uint64_t i = 0; i < n; i += 8) {
        uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        memcpy(dst + i, &z, n - i < 8 ? n - i : 8);
    }
}

int tw_count_prefix(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int k = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (!strncmp(de->d_name, prefix, strlen(prefix)))
            k++;
    closedir(d);
    return k;
}

int tw_same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        char x[65536], y[65536];
        size_t na = fread(x, 1, sizeof x, fa), nb = fread(y, 1, sizeof y, fb);
        if (na != nb || memcmp(x, y, na))
            same = 0;
        if (na < sizeof x)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

int tw_verify_dir(const char *dir, dsv4_err *e)
{
    dsv4_ckpt c;
    if (dsv4_ckpt_open(dir, 0, &c, e))
        return -1;
    dsv4_manifest m;
    int rc = dsv4_manifest_load(dir, &m, e);
    if (rc == 0) {
        rc = dsv4_manifest_verify(&m, &c, e);
        if (rc == 0 && m.total_size != c.data_bytes)
            rc = dsv4_fail(e, "%s: manifest total_size %llu, the checkpoint holds %llu bytes", dir,
                           (unsigned long long)m.total_size, (unsigned long long)c.data_bytes);
        dsv4_manifest_free(&m);
    }
    if (rc == 0 && c.n_problems)
        rc = dsv4_fail(e, "%s: %s", dir, c.problems[0]);
    dsv4_ckpt_close(&c);
    return rc;
}

char *tw_join(const char *dir, const char *name)
{
    static char buf[8][1024];
    static int slot;
    char tmp[1024];
    if (snprintf(tmp, sizeof tmp, "%s/%s", dir, name) >= (int)sizeof tmp)
        th_fail(__FILE__, __LINE__, "path too long: %s/%s", dir, name);
    char *b = buf[slot++ % 8];
    memcpy(b, tmp, sizeof tmp);
    return b;
}
