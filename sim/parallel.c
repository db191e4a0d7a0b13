/* isim_parallel_for (sim/sim.h): items taken in turn from one counter by the threads. */
#include "sim/sim.h"

#include <pthread.h>
#include <unistd.h>

typedef struct {
    size_t n, next;
    void (*fn)(void *ctx, size_t i);
    void *ctx;
    pthread_mutex_t lock;
} work;

static void *worker(void *arg)
{
    work *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        size_t i = w->next++;
        pthread_mutex_unlock(&w->lock);
        if (i >= w->n)
            return NULL;
        w->fn(w->ctx, i);
    }
}

void isim_parallel_for(size_t n, int threads, void (*fn)(void *ctx, size_t i), void *ctx)
{
    work w = {.n = n, .fn = fn, .ctx = ctx};
    pthread_mutex_init(&w.lock, NULL);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int nt = threads > 0 ? threads : (int)(cpus > 0 ? cpus : 1);
    pthread_t tid[64];
    int started = 0;
    for (int i = 0; i < nt && i < 64 && (size_t)i < n; i++)
        if (pthread_create(&tid[started], NULL, worker, &w) == 0)
            started++;
    if (started == 0) /* no thread could start: this one does it all */
        worker(&w);
    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    pthread_mutex_destroy(&w.lock);
}
