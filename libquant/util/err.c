/* Error message formatting (see err.h). */
#include "util/err.h"

#include <stdio.h>
#include <string.h>

static int vset(dsv4_err *e, int code, const char *fmt, va_list ap)
{
    if (e) {
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        e->code = code;
    }
    return -1;
}

int dsv4_fail(dsv4_err *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(e, DSV4_EXIT_BADINPUT, fmt, ap);
    va_end(ap);
    return -1;
}

int dsv4_fail_rt(dsv4_err *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(e, DSV4_EXIT_RUNTIME, fmt, ap);
    va_end(ap);
    return -1;
}

int dsv4_wrap(dsv4_err *e, const char *fmt, ...)
{
    if (!e)
        return -1;
    char prefix[1024], old[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof e->msg - 3)
        n = sizeof e->msg - 3;
    memcpy(e->msg, prefix, n);
    memcpy(e->msg + n, ": ", 2);
    size_t room = sizeof e->msg - n - 3, m = strlen(old);
    if (m > room)
        m = room;
    memcpy(e->msg + n + 2, old, m);
    e->msg[n + 2 + m] = '\0';
    return -1;
}
