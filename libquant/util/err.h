/* Error reporting for libquant: every failing call fills a dsv4_err with one sentence that names
 * the file, the tensor and what was expected, and returns -1. Tools print it and map it to an
 * exit code. Distinct exit codes are shared by all tools. */
#ifndef DSV4_ERR_H
#define DSV4_ERR_H

#include <stdarg.h>

enum {
    DSV4_EXIT_OK = 0,        /* success */
    DSV4_EXIT_RUNTIME = 1,   /* runtime failure (I/O error, out of memory, GPU failure) */
    DSV4_EXIT_BADINPUT = 2,  /* bad usage, or input refused */
    DSV4_EXIT_GATE = 3,      /* completed, but a check or quality gate failed */
};

typedef struct dsv4_err {
    char msg[2048];
    int code; /* DSV4_EXIT_BADINPUT for refused input, DSV4_EXIT_RUNTIME otherwise */
} dsv4_err;

/* Sets the message (printf-style) with code DSV4_EXIT_BADINPUT and returns -1. */
int dsv4_fail(dsv4_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, with code DSV4_EXIT_RUNTIME (the input was fine, the system failed us). */
int dsv4_fail_rt(dsv4_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes an existing message: "<prefix>: <old message>". Returns -1. */
int dsv4_wrap(dsv4_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
