/* Test runner for the unit tests (see harness.h). Usage: unit [substring-filter...] */
#include "harness.h"

#include <ftw.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_TESTS 1024
static struct { const char *name; th_fn fn; } tests[MAX_TESTS];
static int ntests, cur_failures;
static const char *cur_name;
static char tmpdirs[MAX_TESTS][256];
static int ntmp;
static uint64_t rng_state;

void th_register(const char *name, th_fn fn)
{
    if (ntests < MAX_TESTS) {
        tests[ntests].name = name;
        tests[ntests].fn = fn;
        ntests++;
    }
}

void th_fail(const char *file, int line, const char *fmt, ...)
{
    if (cur_failures < 10) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stdout, "  %s:%d: %s: ", file, line, cur_name);
        vfprintf(stdout, fmt, ap);
        fputc('\n', stdout);
        va_end(ap);
    }
    cur_failures++;
}

int th_failures(void) { return cur_failures; }

const char *th_path(const char *rel)
{
    static char buf[8][4096];
    static int slot;
    const char *root = getenv("DSV4_ROOT");
    char *b = buf[slot++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", root ? root : ".", rel);
    return b;
}

const char *th_tmpdir(void)
{
    if (ntmp >= MAX_TESTS)
        abort();
    const char *base = getenv("TMPDIR");
    snprintf(tmpdirs[ntmp], sizeof tmpdirs[0], "%s/dsv4-test-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(tmpdirs[ntmp])) {
        perror("mkdtemp");
        abort();
    }
    return tmpdirs[ntmp++];
}

uint64_t th_rand(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

float th_randf(float lo, float hi)
{
    return lo + (hi - lo) * (float)((th_rand() >> 40) * (1.0 / 16777216.0));
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < ntests; i++) {
        int selected = argc < 2;
        for (int a = 1; a < argc; a++)
            if (strstr(tests[i].name, argv[a]))
                selected = 1;
        if (!selected)
            continue;
        cur_name = tests[i].name;
        cur_failures = 0;
        rng_state = 0x9E3779B97F4A7C15ULL ^ (uint64_t)(i + 1) * 0xD1B54A32D192ED03ULL;
        tests[i].fn();
        printf("%s %s\n", cur_failures ? "FAIL" : "PASS", cur_name);
        if (cur_failures)
            failed++;
        else
            passed++;
    }
    if (!getenv("DSV4_KEEP_TMP"))
        for (int i = 0; i < ntmp; i++)
            nftw(tmpdirs[i], rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    printf("unit: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
