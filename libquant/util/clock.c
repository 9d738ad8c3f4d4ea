/* util/clock.h: CLOCK_MONOTONIC in seconds. */
#include <time.h>

#include "util/clock.h"

double dsv4_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
