/* A minimal test harness: TEST(name) registers a function; CHECK* record failures with file:line
 * and keep going. The runner prints "PASS name" / "FAIL name" per test; tests/run.sh counts them. */
#ifndef DSV4_HARNESS_H
#define DSV4_HARNESS_H

#include <stdint.h>
#include <stdio.h>

typedef void (*th_fn)(void);
void th_register(const char *name, th_fn fn);
void th_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Number of failures recorded so far in the running test. */
int th_failures(void);
/* Path of a repository file (tests run from the repo root; DSV4_ROOT overrides). */
const char *th_path(const char *rel);
/* A fresh temporary directory for this test (removed at exit unless DSV4_KEEP_TMP is set). */
const char *th_tmpdir(void);
/* Deterministic pseudo-random numbers (xorshift64*), seeded per test. */
uint64_t th_rand(void);
float th_randf(float lo, float hi);

#define TEST(name)                                                                   \
    static void name(void);                                                          \
    __attribute__((constructor)) static void th_reg_##name(void) { th_register(#name, name); } \
    static void name(void)

#define CHECK(cond)                                                                  \
    do { if (!(cond)) th_fail(__FILE__, __LINE__, "CHECK(%s)", #cond); } while (0)
#define CHECK_MSG(cond, ...)                                                         \
    do { if (!(cond)) th_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)
#define CHECK_EQ_INT(a, b)                                                           \
    do { long long th_a = (long long)(a), th_b = (long long)(b);                     \
         if (th_a != th_b) th_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, th_a, th_b); } while (0)
#define CHECK_STR_CONTAINS(hay, needle)                                              \
    do { const char *th_h = (hay), *th_n = (needle);                                 \
         if (!th_h || !strstr(th_h, th_n)) th_fail(__FILE__, __LINE__, "expected \"%s\" in \"%s\"", th_n, th_h ? th_h : "(null)"); } while (0)
/* Stops the running test (use after a failed precondition). */
#define REQUIRE(cond)                                                                \
    do { if (!(cond)) { th_fail(__FILE__, __LINE__, "REQUIRE(%s)", #cond); return; } } while (0)

#endif
