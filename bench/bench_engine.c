/* The CPU engine's speed against this machine's own limits, measured in the same run:
 * DRAM read bandwidth (a STREAM-like sum over 2 GiB on every thread) and peak FLOP/s
 * (independent FMAs, and bf16 dot products, on registers). Then decode at batch 1 on a
 * model larger than the caches as a fraction of the bandwidth, prefill and large-batch
 * decode as a fraction of peak, and the allocations of steady-state decode. Prints figures;
 * it is a benchmark, not a test.
 *   usage: bench_engine [MODEL] [THREADS]      (MODEL default llama-3.2-1b) */
#include "runtime/cpu/internal.h"
#include "runtime/runtime.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- counting allocations (glibc: the program's own malloc wins over libc's) ------------ */

#if !defined(ISIM_SANITIZE_BUILD)
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
static atomic_long allocations;

void *malloc(size_t n)
{
    atomic_fetch_add(&allocations, 1);
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    atomic_fetch_add(&allocations, 1);
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    atomic_fetch_add(&allocations, 1);
    return __libc_realloc(p, n);
}

void *aligned_alloc(size_t al, size_t n)
{
    atomic_fetch_add(&allocations, 1);
    return __libc_memalign(al, n);
}
#define ALLOCATIONS() atomic_load(&allocations)
#else
#define ALLOCATIONS() (-1L)
#endif

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return v[n / 2];
}

/* ---- the machine ------------------------------------------------------------------------ */

typedef struct {
    const rt_kernels *k;
    const float *x;
    size_t n;
    int which;
    long iters;
    double flops[64];
    volatile float sink[64];
} probe;

static void read_task(void *p, int tid, int n)
{
    probe *b = p;
    size_t a = b->n * (size_t)tid / (size_t)n, z = b->n * (size_t)(tid + 1) / (size_t)n;
    b->sink[tid] = b->k->read(b->x + a, z - a);
}

static void peak_task(void *p, int tid, int n)
{
    (void)n;
    probe *b = p;
    b->flops[tid] = b->k->peak(b->which, b->iters);
}

static void fail(const char *what, const isim_error *e)
{
    fprintf(stderr, "bench_engine: %s: %s\n", what, e->message);
    exit(1);
}

/* One engine run: prefill `prompt` tokens in each of `batch` sequences, then `steps` decode
 * steps; the median step and the prefill time. */
static void run(const isim_model *m, isim_dtype wt, int threads, int batch, int prompt, int steps,
                double *prefill_s, double *step_s, double *weight_bytes, long *allocs)
{
    isim_rt_options o;
    isim_rt_options_init(&o);
    o.model = m;
    o.weights = wt;
    o.threads = threads;
    o.max_batch = batch;
    o.max_context = prompt + steps + 1;
    o.max_chunk = prompt * batch < 512 ? prompt * batch : 512;
    isim_rt *rt = NULL;
    isim_error e = {0};
    if (isim_rt_open(&o, &rt, &e))
        fail(m->id, &e);
    int *slots = malloc((size_t)batch * sizeof *slots),
        *lens = malloc((size_t)batch * sizeof *lens);
    int *ones = malloc((size_t)batch * sizeof *ones), *next = malloc((size_t)batch * sizeof *next);
    int **prompts = malloc((size_t)batch * sizeof *prompts);
    const int **tok = malloc((size_t)batch * sizeof *tok);
    double *t = malloc((size_t)steps * sizeof *t);
    for (int i = 0; i < batch; i++) {
        slots[i] = i;
        lens[i] = prompt;
        ones[i] = 1;
        prompts[i] = malloc((size_t)prompt * sizeof **prompts);
        isim_rt_random_prompt(1, i, prompt, (int)m->vocab, prompts[i]);
    }
    double t0 = now_s();
    if (isim_rt_forward(rt, batch, slots, (const int *const *)prompts, lens, NULL, &e))
        fail("prefill", &e);
    *prefill_s = now_s() - t0;
    for (int i = 0; i < batch; i++) {
        next[i] = prompts[i][prompt - 1];
        tok[i] = &next[i];
    }
    long a0 = ALLOCATIONS();
    for (int s = 0; s < steps; s++) {
        double t1 = now_s();
        if (isim_rt_forward(rt, batch, slots, tok, ones, NULL, &e))
            fail("decode", &e);
        t[s] = now_s() - t1;
    }
    *allocs = a0 < 0 ? -1 : ALLOCATIONS() - a0;
    *step_s = median(t, steps);
    *weight_bytes = isim_rt_weight_bytes(rt, batch);
    for (int i = 0; i < batch; i++)
        free(prompts[i]);
    free(prompts);
    free(slots);
    free(lens);
    free(ones);
    free(next);
    free(tok);
    free(t);
    isim_rt_close(rt);
}

int main(int argc, char **argv)
{
    const char *model_id = argc > 1 ? argv[1] : "llama-3.2-1b";
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = argc > 2 ? atoi(argv[2]) : (int)(cpus > 0 ? cpus : 1);
    const rt_kernels *k = isim__rt_kernels_pick(NULL);
    rt_pool *pool = NULL;
    isim_error e = {0};
    if (isim__rt_pool_new(threads, &pool, &e))
        fail("threads", &e);
    printf("CPU engine on %d thread%s, %s kernels\n", threads, threads == 1 ? "" : "s", k->name);

    /* read bandwidth: 2 GiB, far beyond the caches, read 5 times */
    size_t n = (size_t)1 << 29;
    float *x = aligned_alloc(64, n * sizeof *x);
    if (!x) {
        fprintf(stderr, "bench_engine: no memory for the bandwidth probe\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(i & 1023);
    probe b = {.k = k, .x = x, .n = n};
    double t[9];
    for (int r = 0; r < 7; r++) {
        double t0 = now_s();
        isim__rt_pool_run(pool, read_task, &b);
        t[r] = now_s() - t0;
    }
    double bw = (double)(n * sizeof *x) / median(t, 7);
    free(x);
    printf("machine  read bandwidth      %7.2f GB/s (sum over 2 GiB, median of 7)\n", bw / 1e9);
    double peak[2];
    for (int which = 0; which < 2; which++) {
        b.which = which;
        b.iters = 20000000;
        for (int r = 0; r < 5; r++) {
            double t0 = now_s();
            isim__rt_pool_run(pool, peak_task, &b);
            double dt = now_s() - t0, f = 0;
            for (int i = 0; i < threads; i++)
                f += b.flops[i];
            t[r] = f / dt;
        }
        peak[which] = median(t, 5);
    }
    isim__rt_pool_free(pool);
    printf("machine  peak fp32 FMA       %7.1f GFLOP/s\n", peak[0] / 1e9);
    printf("machine  peak bf16 dot       %7.1f GFLOP/s\n", peak[1] / 1e9);

    isim_model *m = NULL;
    if (isim_catalog_model(ISIM_DATA_DIR, model_id, &m, &e))
        fail(model_id, &e);
    printf("model    %s: %.3g parameters, random weights\n", m->name, m->d.params_total);
    static const isim_dtype dts[] = {ISIM_BF16, ISIM_FP32};
    for (int di = 0; di < 2; di++) {
        isim_dtype dt = dts[di];
        double pre, step, wb;
        long allocs;
        run(m, dt, threads, 1, 16, 32, &pre, &step, &wb, &allocs);
        printf(
            "%-5s    decode batch 1       %7.2f ms/step, %.3f GB of weights: %6.2f GB/s = %.3f of "
            "the read bandwidth\n",
            isim_dtype_name(dt), step * 1e3, wb / 1e9, wb / step / 1e9, wb / step / bw);
        if (allocs >= 0)
            printf("%-5s    allocations in 32 decode steps: %ld\n", isim_dtype_name(dt), allocs);
        double pk = dt == ISIM_BF16 ? peak[1] : peak[0];
        /* prefill: 512 tokens of one sequence; FLOPs from the analytical model */
        run(m, dt, threads, 1, 512, 2, &pre, &step, &wb, &allocs);
        /* the classifier runs for the last prompt token only */
        double cls = 2.0 * (double)m->vocab * (double)m->d_model, fl = cls;
        for (int p = 0; p < 512; p++)
            fl += isim_model_flops_per_token(m, p) - cls;
        printf("%-5s    prefill 512 tokens   %7.1f ms, %7.1f GFLOP/s = %.3f of peak\n",
               isim_dtype_name(dt), pre * 1e3, fl / pre / 1e9, fl / pre / pk);
        /* decode at batch 128, context about 64 */
        run(m, dt, threads, 128, 48, 8, &pre, &step, &wb, &allocs);
        fl = 128 * isim_model_flops_per_token(m, 52);
        printf("%-5s    decode batch 128     %7.1f ms/step, %7.1f GFLOP/s = %.3f of peak\n",
               isim_dtype_name(dt), step * 1e3, fl / step / 1e9, fl / step / pk);
    }
    isim_model_free(m);
    return 0;
}
