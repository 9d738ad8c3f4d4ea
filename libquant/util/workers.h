/* Running one worker function on several threads that pull work from a shared queue (the caller's
 * `arg`): start up to `threads` (at most 64), run it on the calling thread when none could be
 * started, and join them all. */
#ifndef DSV4_WORKERS_H
#define DSV4_WORKERS_H

void dsv4_run_workers(int threads, void *(*fn)(void *), void *arg);

#endif
