/* The CPU engine's speed against this machine's own limits, measured in the same run:
 * DRAM read bandwidth (a STREAM-like sum over 2 GiB on every thread) and peak FLOP/s
 * (independent FMAs, and bf16 dot products, on registers). Then decode at batch 1 on a
 * model larger than the caches as a fraction of the bandwidth, prefill and large-batch
 * decode as a fraction of peak, and the allocations of steady-state decode. Prints figures;
 * it is a benchmark, not a test.
 *   usage: bench_engine [MODEL] [THREADS] [decode]   (MODEL default llama-3.2-1b; "decode":
 *   the bandwidth and decode at batch 1 only) */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MADV_HUGEPAGE */
#include "runtime/cpu/internal.h"
#include "runtime/runtime.h"

#include <sys/mman.h>

#ifdef ISIM_HAVE_OPENBLAS
#include <cblas.h>
#endif
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

static void fail(const char *what, const isim_error *e)
{
    fprintf(stderr, "bench_engine: %s: %s\n", what, e->message);
    exit(1);
}

/* The engine's matmul alone on every thread: rows x k input by an n x k matrix, best of 5. */
typedef struct {
    const rt_kernels *k;
    const rt_matrix *m;
    const void *x;
    int rows;
    float *y;
} mm_probe;

static void mm_task(void *p, int tid, int n)
{
    mm_probe *j = p;
    size_t p0 = j->m->panels * (size_t)tid / (size_t)n,
           p1 = j->m->panels * (size_t)(tid + 1) / (size_t)n;
    j->k->matmul(j->m, j->x, j->rows, j->y, j->m->n, p0, p1, false);
}

static double matmul_flops(rt_pool *pool, const rt_kernels *k, size_t n, size_t kk, int rows,
                           isim_dtype dt)
{
    rt_matrix m = {
        .n = n, .k = kk, .kp = kk + (kk & 1), .panels = (n + RT_NR - 1) / RT_NR, .dt = dt};
    size_t bytes = isim__rt_matrix_bytes(n, kk, dt);
    m.data = aligned_alloc(64, (bytes + 63) / 64 * 64);
    float *row = malloc(kk * sizeof *row), *x = malloc((size_t)rows * kk * sizeof *x);
    void *xp = aligned_alloc(64, (isim__rt_xpack_bytes(rows, m.kp, dt) + 63) / 64 * 64);
    float *y = malloc((size_t)rows * n * sizeof *y);
    if (!m.data || !row || !x || !xp || !y) {
        fprintf(stderr, "bench_engine: out of memory\n");
        exit(1);
    }
    memset(m.data, 0, bytes);
    for (size_t r = 0; r < n; r++) {
        for (size_t c = 0; c < kk; c++)
            row[c] = 1e-3f * (float)((r + c) % 97);
        isim__rt_matrix_set_row(&m, r, row);
    }
    for (size_t i = 0; i < (size_t)rows * kk; i++)
        x[i] = 1e-3f * (float)(i % 89);
    isim__rt_xpack(x, kk, rows, kk, m.kp, dt, xp);
    mm_probe j = {k, &m, xp, rows, y};
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t0 = now_s();
        isim__rt_pool_run(pool, mm_task, &j);
        double dt_s = now_s() - t0;
        best = dt_s < best ? dt_s : best;
    }
    free(m.data);
    free(row);
    free(x);
    free(xp);
    free(y);
    return 2.0 * (double)n * (double)kk * rows / best;
}

#ifdef ISIM_HAVE_OPENBLAS
/* OpenBLAS's sgemm on the same shape (C = A B^T, A rows x k, B n x k), best of 5. */
static double openblas_flops(size_t n, size_t kk, int rows)
{
    float *a = malloc((size_t)rows * kk * sizeof *a), *b = malloc(n * kk * sizeof *b),
          *c = malloc((size_t)rows * n * sizeof *c);
    for (size_t i = 0; i < (size_t)rows * kk; i++)
        a[i] = 1e-3f * (float)(i % 89);
    for (size_t i = 0; i < n * kk; i++)
        b[i] = 1e-3f * (float)(i % 97);
    double best = 1e30;
    for (int r = 0; r < 6; r++) {
        double t0 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, (int)n, (int)kk, 1.0f, a,
                    (int)kk, b, (int)kk, 0.0f, c, (int)n);
        double dt_s = now_s() - t0;
        if (r > 0) /* the first call sets OpenBLAS up */
            best = dt_s < best ? dt_s : best;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * (double)n * (double)kk * rows / best;
}
#endif

/* An engine with `batch` sequences of `prompt` random tokens each, prefilled. */
typedef struct {
    isim_rt *rt;
    int batch;
    int *slots, *ones, *next;
    const int **tok;
    double prefill_s;
} session;

static void open_session(session *S, const isim_model *m, isim_dtype wt, int threads, int batch,
                         int prompt, int steps)
{
    isim_rt_options o;
    isim_rt_options_init(&o);
    o.model = m;
    o.weights = wt;
    o.threads = threads;
    o.max_batch = batch;
    o.max_context = prompt + steps + 1;
    o.max_chunk = prompt * batch < 512 ? prompt * batch : 512;
    isim_error e = {0};
    if (isim_rt_open(&o, &S->rt, &e))
        fail(m->id, &e);
    S->batch = batch;
    S->slots = malloc((size_t)batch * sizeof *S->slots);
    S->ones = malloc((size_t)batch * sizeof *S->ones);
    S->next = malloc((size_t)batch * sizeof *S->next);
    S->tok = malloc((size_t)batch * sizeof *S->tok);
    int *lens = malloc((size_t)batch * sizeof *lens),
        **prompts = malloc((size_t)batch * sizeof *prompts);
    for (int i = 0; i < batch; i++) {
        S->slots[i] = i;
        S->ones[i] = 1;
        lens[i] = prompt;
        prompts[i] = malloc((size_t)prompt * sizeof **prompts);
        isim_rt_random_prompt(1, i, prompt, (int)m->vocab, prompts[i]);
    }
    double t0 = now_s();
    if (isim_rt_forward(S->rt, batch, S->slots, (const int *const *)prompts, lens, NULL, &e))
        fail("prefill", &e);
    S->prefill_s = now_s() - t0;
    for (int i = 0; i < batch; i++) {
        S->next[i] = prompts[i][prompt - 1];
        S->tok[i] = &S->next[i];
        free(prompts[i]);
    }
    free(prompts);
    free(lens);
}

/* The median time of `steps` decode steps. */
static double decode(session *S, int steps)
{
    double t[64];
    isim_error e = {0};
    for (int s = 0; s < steps; s++) {
        double t0 = now_s();
        if (isim_rt_forward(S->rt, S->batch, S->slots, S->tok, S->ones, NULL, &e))
            fail("decode", &e);
        t[s] = now_s() - t0;
    }
    return median(t, steps);
}

static void close_session(session *S)
{
    isim_rt_close(S->rt);
    free(S->slots);
    free(S->ones);
    free(S->next);
    free(S->tok);
}

int main(int argc, char **argv)
{
    const char *model_id = argc > 1 ? argv[1] : "llama-3.2-1b";
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = argc > 2 ? atoi(argv[2]) : (int)(cpus > 0 ? cpus : 1);
    bool decode_only = argc > 3 && strcmp(argv[3], "decode") == 0;
    const rt_kernels *k = isim__rt_kernels_pick(NULL);
    rt_pool *pool = NULL;
    isim_error e = {0};
    if (isim__rt_pool_new(threads, &pool, &e))
        fail("threads", &e);
    printf("CPU engine on %d thread%s, %s kernels\n", threads, threads == 1 ? "" : "s", k->name);

    /* read bandwidth: 2 GiB, far beyond the caches, in huge pages like the engine's weights */
    size_t n = (size_t)1 << 29;
    float *x =
        mmap(NULL, n * sizeof *x, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (x == MAP_FAILED) {
        fprintf(stderr, "bench_engine: no memory for the bandwidth probe\n");
        return 1;
    }
#ifdef MADV_HUGEPAGE
    madvise(x, n * sizeof *x, MADV_HUGEPAGE);
#endif
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(i & 1023);
    double t[16];
    for (int r = 0; r < 7; r++)
        t[r] = isim__rt_read_rate(pool, k, x, n);
    printf("machine  read bandwidth      %7.2f GB/s (sum over 2 GiB in huge pages, median of 7)\n",
           median(t, 7) / 1e9);
    double peak[2] = {1, 1};
    for (int which = 0; which < 2 && !decode_only; which++) {
        for (int r = 0; r < 5; r++)
            t[r] = isim__rt_peak_rate(pool, k, which, 20000000);
        peak[which] = median(t, 5);
    }
    if (!decode_only) {
        printf("machine  peak fp32 FMA       %7.1f GFLOP/s\n", peak[0] / 1e9);
        printf("machine  peak bf16 dot       %7.1f GFLOP/s (%s)\n", peak[1] / 1e9,
               strcmp(k->name, "avx512") == 0 ? "VDPBF16PS" : "fp32 FMAs, no bf16 instruction");
    }

    /* the matmul alone, on a prefill's shapes (512 rows by d_model 2048 into 2048 and 8192) */
#ifdef ISIM_HAVE_OPENBLAS
    openblas_set_num_threads(threads);
#endif
    for (int i = 0; i < 2 && !decode_only; i++) {
        size_t outs = i ? 8192 : 2048;
        double f32 = matmul_flops(pool, k, outs, 2048, 512, ISIM_FP32);
        double b16 = matmul_flops(pool, k, outs, 2048, 512, ISIM_BF16);
        printf("matmul   512 x 2048 by %4zu x 2048: fp32 %6.1f GFLOP/s (%.3f of peak), bf16 %6.1f "
               "GFLOP/s (%.3f)",
               outs, f32 / 1e9, f32 / peak[0], b16 / 1e9, b16 / peak[1]);
#ifdef ISIM_HAVE_OPENBLAS
        printf("; OpenBLAS sgemm (%s kernels) %6.1f GFLOP/s", openblas_get_corename(),
               openblas_flops(outs, 2048, 512) / 1e9);
#endif
        printf("\n");
    }

    isim_model *m = NULL;
    if (isim_catalog_model(ISIM_DATA_DIR, model_id, &m, &e))
        fail(model_id, &e);
    printf("model    %s: %.3g parameters, random weights\n", m->name, m->d.params_total);
    /* FLOPs of the analytical model: the classifier runs for the last prompt token only */
    const double cls = 2.0 * (double)m->vocab * (double)m->d_model;
    static const isim_dtype dts[] = {ISIM_BF16, ISIM_FP32};
    for (int di = 0; di < 2; di++) {
        isim_dtype dt = dts[di];
        const char *name = isim_dtype_name(dt);
        double pk = dt == ISIM_BF16 ? peak[1] : peak[0];
        /* decode at batch 1, each round's bandwidth measured just before its steps */
        session S;
        open_session(&S, m, dt, threads, 1, 16, 64);
        double wb = isim_rt_weight_bytes(S.rt, 1);
        double frac[5], steps[5], bws[5];
        for (int r = 0; r < 5; r++) {
            double bw[3];
            for (int i = 0; i < 3; i++)
                bw[i] = isim__rt_read_rate(pool, k, x, n);
            bws[r] = median(bw, 3);
            steps[r] = decode(&S, 9);
            frac[r] = wb / steps[r] / bws[r];
        }
        long a0 = ALLOCATIONS();
        decode(&S, 16);
        long allocs = a0 < 0 ? -1 : ALLOCATIONS() - a0;
        close_session(&S);
        double fr_min = frac[0], fr_max = frac[0];
        for (int r = 1; r < 5; r++) {
            fr_min = frac[r] < fr_min ? frac[r] : fr_min;
            fr_max = frac[r] > fr_max ? frac[r] : fr_max;
        }
        double st = median(steps, 5), bwm = median(bws, 5), fr = median(frac, 5);
        printf(
            "%-5s    decode batch 1       %7.2f ms/step, %.3f GB of weights: %6.2f GB/s = %.3f of "
            "the read bandwidth measured beside it (%.2f GB/s; rounds %.3f to %.3f)\n",
            name, st * 1e3, wb / 1e9, wb / st / 1e9, fr, bwm / 1e9, fr_min, fr_max);
        if (allocs >= 0)
            printf("%-5s    allocations in 16 steady-state decode steps: %ld\n", name, allocs);
        else
            printf("%-5s    allocations not counted (sanitizer build)\n", name);
        if (decode_only)
            continue;
        /* prefill: 512 tokens of one sequence */
        double pre[3];
        for (int r = 0; r < 3; r++) {
            open_session(&S, m, dt, threads, 1, 512, 1);
            pre[r] = S.prefill_s;
            close_session(&S);
        }
        double p = median(pre, 3), fl = cls;
        for (int i = 0; i < 512; i++)
            fl += isim_model_flops_per_token(m, i) - cls;
        printf(
            "%-5s    prefill 512 tokens   %7.1f ms, %7.1f GFLOP/s = %.3f of peak (median of 3)\n",
            name, p * 1e3, fl / p / 1e9, fl / p / pk);
        /* decode at batch 128, context about 64 */
        open_session(&S, m, dt, threads, 128, 48, 12);
        double s128 = decode(&S, 9);
        close_session(&S);
        fl = 128 * isim_model_flops_per_token(m, 52);
        printf("%-5s    decode batch 128     %7.1f ms/step, %7.1f GFLOP/s = %.3f of peak\n", name,
               s128 * 1e3, fl / s128 / 1e9, fl / s128 / pk);
    }
    isim__rt_pool_free(pool);
    munmap(x, n * sizeof *x);
    isim_model_free(m);
    return 0;
}
