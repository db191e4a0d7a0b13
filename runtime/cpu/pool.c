/* A fixed pool of worker threads that run one task at a time on every thread. Workers
 * spin briefly on the task counter before sleeping, since a decode step hands out a few
 * hundred short tasks and a wake-up through the kernel costs as much as a small matmul. */
#include "runtime/cpu/internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#define SPINS 20000

struct rt_pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_ulong generation; /* bumped for each task */
    atomic_int pending;      /* workers still running the current task */
    atomic_bool stop;
    rt_task fn;
    void *ctx;
    unsigned long dispatches; /* tasks handed to the workers (caller's thread only) */
};

typedef struct {
    rt_pool *pool;
    int tid;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    rt_pool *pool = a->pool;
    int tid = a->tid;
    free(a);
    unsigned long seen = 0;
    for (;;) {
        unsigned long g;
        int spins = 0;
        while ((g = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen &&
               !atomic_load(&pool->stop)) {
            if (++spins < SPINS)
                continue;
            pthread_mutex_lock(&pool->lock);
            while (atomic_load(&pool->generation) == seen && !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->wake, &pool->lock);
            pthread_mutex_unlock(&pool->lock);
        }
        if (atomic_load(&pool->stop))
            return NULL;
        seen = g;
        pool->fn(pool->ctx, tid, pool->n);
        atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_release);
    }
}

isim_status isim__rt_pool_new(int n, rt_pool **out, isim_error *err)
{
    *out = NULL;
    if (n < 1)
        n = 1;
    rt_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->threads = calloc((size_t)n, sizeof *p->threads))) {
        free(p);
        return isim__rt_fail(err, ISIM_ENOMEM, "out of memory");
    }
    p->n = n;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    atomic_init(&p->generation, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->stop, false);
    for (int i = 1; i < n; i++) {
        worker_arg *a = malloc(sizeof *a);
        if (a) {
            a->pool = p;
            a->tid = i;
        }
        if (!a || pthread_create(&p->threads[i], NULL, worker, a) != 0) {
            free(a);
            p->n = i;
            isim__rt_pool_free(p);
            return isim__rt_fail(err, ISIM_ENOMEM, "cannot start %d threads", n);
        }
    }
    *out = p;
    return ISIM_OK;
}

void isim__rt_pool_free(rt_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 1; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    free(p->threads);
    free(p);
}

int isim__rt_pool_size(const rt_pool *p)
{
    return p->n;
}

unsigned long isim__rt_pool_dispatches(const rt_pool *p)
{
    return p->dispatches;
}

void isim__rt_pool_run(rt_pool *p, rt_task fn, void *ctx)
{
    if (p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->dispatches++;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->lock);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    fn(ctx, 0, p->n);
    int spins = 0;
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0)
        if (++spins > SPINS)
            sched_yield();
}
