/* Wall-clock time for durations: seconds on the monotonic clock (arbitrary origin). */
#ifndef DSV4_CLOCK_H
#define DSV4_CLOCK_H

double dsv4_now(void);

#endif
