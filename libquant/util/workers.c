/* dsv4_run_workers (workers.h). */
#include "util/workers.h"

#include <pthread.h>

void dsv4_run_workers(int threads, void *(*fn)(void *), void *arg)
{
    pthread_t tid[64];
    int started = 0;
    for (; started < threads && started < 64; started++)
        if (pthread_create(&tid[started], NULL, fn, arg))
            break;
    if (started == 0)
        fn(arg);
    for (int k = 0; k < started; k++)
        pthread_join(tid[k], NULL);
}
