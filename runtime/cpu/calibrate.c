/* The microbenchmarks of `infersim calibrate` (docs/validation.md): what the step model
 * needs from this machine, measured with the engine's own kernels and threads. Memory read
 * bandwidth; peak FLOP/s; matmul FLOP/s by the number of rows (weights in cache, so that
 * the curve is compute alone); the rate one-row matmuls stream weights from DRAM; the
 * attention kernel's rate; the cost of handing a task to the threads and how many a layer
 * hands out; a small model's step per layer and the step's own fixed cost. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MADV_HUGEPAGE */
#include "runtime/cpu/engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* runtime.h: the best, median, worst and mean of the middle of v, sorted in place. */
isim_rt_stat isim_rt_summarize(double *v, int n, bool rate)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    isim_rt_stat s = {.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]), .runs = n};
    s.best = rate ? v[n - 1] : v[0];
    s.worst = rate ? v[0] : v[n - 1];
    /* the mean of the middle runs: times, or for rates the times of a unit of work (1 / v) */
    int cut = n >= 3 ? (n / 10 > 1 ? n / 10 : 1) : 0;
    double sum = 0;
    for (int i = cut; i < n - cut; i++)
        sum += rate ? 1.0 / v[i] : v[i];
    s.mean = rate ? (n - 2 * cut) / sum : sum / (n - 2 * cut);
    return s;
}

static double load_1min(void)
{
    FILE *f = fopen("/proc/loadavg", "r");
    double l = NAN;
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = NAN;
        fclose(f);
    }
    return l;
}

bool isim_rt_parse_cpu_times(const char *line, double tick_s, double *busy_s, double *total_s)
{
    unsigned long long v[8];
    /* the machine's line, not a CPU's ("cpu0 ...") */
    if (strncmp(line, "cpu ", 4) != 0 ||
        sscanf(line, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7]) != 8)
        return false;
    double busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);
    *busy_s = busy * tick_s;
    *total_s = (busy + (double)(v[3] + v[4])) * tick_s;
    return true;
}

bool isim__rt_cpu_times_now(rt_cpu_times *t)
{
    FILE *f = fopen("/proc/stat", "r");
    char line[512];
    long hz = sysconf(_SC_CLK_TCK);
    bool ok = f && fgets(line, sizeof line, f) && hz > 0 &&
              isim_rt_parse_cpu_times(line, 1.0 / (double)hz, &t->busy, &t->total);
    if (f)
        fclose(f);
    struct rusage ru;
    ok = ok && getrusage(RUSAGE_SELF, &ru) == 0;
    if (ok)
        t->own = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
                 (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
    return ok;
}

double isim__rt_others_share(const rt_cpu_times *t0, const rt_cpu_times *t1)
{
    if (!(t1->total > t0->total))
        return NAN;
    return fmin(1.0,
                fmax(0.0, ((t1->busy - t0->busy) - (t1->own - t0->own)) / (t1->total - t0->total)));
}

/* ---- bandwidth and peaks ----------------------------------------------------------------- */

typedef struct {
    const rt_kernels *k;
    const float *x;
    size_t n;
    int which;
    long iters;
    double flops[256];
    volatile float sink[256];
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

double isim__rt_read_rate(rt_pool *pool, const rt_kernels *k, const float *x, size_t n)
{
    probe b = {.k = k, .x = x, .n = n};
    double t0 = isim__rt_now();
    isim__rt_pool_run(pool, read_task, &b);
    return (double)(n * sizeof *x) / (isim__rt_now() - t0);
}

double isim__rt_peak_rate(rt_pool *pool, const rt_kernels *k, int which, long iters)
{
    probe b = {.k = k, .which = which, .iters = iters};
    double t0 = isim__rt_now();
    isim__rt_pool_run(pool, peak_task, &b);
    double dt = isim__rt_now() - t0, f = 0;
    for (int i = 0; i < isim__rt_pool_size(pool); i++)
        f += b.flops[i];
    return f / dt;
}

static void empty_task(void *p, int tid, int n)
{
    (void)p;
    (void)tid;
    (void)n;
}

/* ---- matmuls ----------------------------------------------------------------------------- */

typedef struct {
    const rt_kernels *k;
    const rt_matrix *m;
    const void *x;
    int rows;
    float *y;
} mm_job;

static void mm_task(void *p, int tid, int n)
{
    mm_job *j = p;
    size_t p0 = j->m->panels * (size_t)tid / (size_t)n,
           p1 = j->m->panels * (size_t)(tid + 1) / (size_t)n;
    if (p1 > p0)
        j->k->matmul(j->m, j->x, j->rows, j->y, j->m->n, p0, p1, false);
}

typedef struct {
    rt_matrix m;
    float *x, *y;
    void *xp;
} mm_case;

static bool mm_make(mm_case *c, size_t n, size_t k, int rows, isim_dtype dt)
{
    memset(c, 0, sizeof *c);
    c->m =
        (rt_matrix){.n = n, .k = k, .kp = k + (k & 1), .panels = (n + RT_NR - 1) / RT_NR, .dt = dt};
    size_t bytes = isim__rt_matrix_bytes(n, k, dt);
    c->m.data = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (c->m.data == MAP_FAILED) {
        c->m.data = NULL;
        return false;
    }
#ifdef MADV_HUGEPAGE
    madvise(c->m.data, bytes, MADV_HUGEPAGE);
#endif
    memset(c->m.data, 0, bytes);
    float *row = malloc(k * sizeof *row);
    c->x = malloc((size_t)rows * k * sizeof *c->x);
    c->y = malloc((size_t)rows * n * sizeof *c->y);
    c->xp = malloc(isim__rt_xpack_bytes(rows, c->m.kp, dt) + 64);
    if (!row || !c->x || !c->y || !c->xp) {
        free(row);
        return false;
    }
    for (size_t r = 0; r < n; r++) {
        for (size_t i = 0; i < k; i++)
            row[i] = 1e-3f * (float)((r * 7 + i) % 101) - 0.05f;
        isim__rt_matrix_set_row(&c->m, r, row);
    }
    free(row);
    for (size_t i = 0; i < (size_t)rows * k; i++)
        c->x[i] = 1e-3f * (float)(i % 89);
    isim__rt_xpack(c->x, k, rows, k, c->m.kp, dt, c->xp);
    return true;
}

static void mm_free(mm_case *c)
{
    if (c->m.data)
        munmap(c->m.data, isim__rt_matrix_bytes(c->m.n, c->m.k, c->m.dt));
    free(c->x);
    free(c->y);
    free(c->xp);
}

/* Seconds of one matmul of the case over the pool: repeated until 20 ms have passed. */
static double mm_time(rt_pool *pool, const rt_kernels *k, mm_case *c, int rows)
{
    mm_job j = {k, &c->m, c->xp, rows, c->y};
    int reps = 0;
    double t0 = isim__rt_now(), t;
    do {
        isim__rt_pool_run(pool, mm_task, &j);
        reps++;
        t = isim__rt_now() - t0;
    } while (t < 0.02);
    return t / reps;
}

/* ---- the streaming rates, sampled through the whole calibration ---------------------- */

/* A shared machine's bandwidth and arithmetic move between states within seconds
 * (docs/validation.md): measured in one burst, the profile would hold one moment's rate. The
 * decode case's rates and the peaks are sampled between the other measurements instead, a
 * sample being one run of each in turn: the one-row matmul over 256 MB of bf16 weights on
 * every thread and on one thread, over 256 MB of fp32 weights on every thread, the KV cache
 * read in bf16 and fp32, and the peak kernels (fp32 and bf16, every thread, a few ms each:
 * validate's probe). */
#define MAX_SAMPLES 128
#define SAMPLE_PEAK_ITERS 1500000
enum { S_BF16, S_THREAD, S_FP32, S_KV_BF16, S_KV_FP32, S_PEAK_FP32, S_PEAK_BF16, S_KINDS };

typedef struct {
    rt_pool *pool, *pool1;
    const rt_kernels *k;
    int threads;
    const float *cache; /* 256 MB or more of the read probe's buffer */
    mm_case bf16, fp32;
    double v[S_KINDS][MAX_SAMPLES];
    int n;
} sampler;

static double kv_rate(rt_pool *pool, const rt_kernels *k, int threads, const void *cache,
                      bool bf16);

static isim_status sample(sampler *s, isim_error *err)
{
    if (s->n == MAX_SAMPLES)
        return ISIM_OK;
    double b16 = (double)isim__rt_matrix_bytes(s->bf16.m.n, s->bf16.m.k, ISIM_BF16),
           b32 = (double)isim__rt_matrix_bytes(s->fp32.m.n, s->fp32.m.k, ISIM_FP32);
    s->v[S_BF16][s->n] = b16 / mm_time(s->pool, s->k, &s->bf16, 1);
    s->v[S_THREAD][s->n] = b16 / mm_time(s->pool1, s->k, &s->bf16, 1);
    s->v[S_FP32][s->n] = b32 / mm_time(s->pool, s->k, &s->fp32, 1);
    s->v[S_KV_BF16][s->n] = kv_rate(s->pool, s->k, s->threads, s->cache, true);
    s->v[S_KV_FP32][s->n] = kv_rate(s->pool, s->k, s->threads, s->cache, false);
    if (s->v[S_KV_BF16][s->n] < 0 || s->v[S_KV_FP32][s->n] < 0)
        return isim__rt_fail(err, ISIM_ENOMEM, "out of memory");
    s->v[S_PEAK_FP32][s->n] = isim__rt_peak_rate(s->pool, s->k, 0, SAMPLE_PEAK_ITERS);
    s->v[S_PEAK_BF16][s->n] = isim__rt_peak_rate(s->pool, s->k, 1, SAMPLE_PEAK_ITERS);
    s->n++;
    return ISIM_OK;
}

/* The statistics of samples [from, to) of one kind. */
static isim_rt_stat sampled(const sampler *s, int kind, int from, int to)
{
    double v[MAX_SAMPLES];
    memcpy(v, s->v[kind] + from, (size_t)(to - from) * sizeof *v);
    return isim_rt_summarize(v, to - from, true);
}

/* The matmuls of layers of `m` (dense FFN), one after the other, for every row count of the
 * calibration: as many layers as hold 256 MB of weights or more (beyond the last-level
 * cache, so that each pass reads them from memory, as a decode step does), in `runs`
 * rounds over the row counts, each pass repeated until 20 ms have passed (times per layer),
 * and a sample of the streaming rates and the peaks after each round: each row count's
 * runs, and the rate and peak the curve is fitted against, spread over the same states of
 * the machine. */
#define SWEEP_MATS 4
static isim_status layer_sweep(rt_pool *pool, const rt_kernels *k, const isim_model *m,
                               isim_dtype dt, int runs, sampler *smp, isim_rt_calibration *out,
                               isim_rt_stat *times, isim_rt_stat *stream, isim_rt_stat *peak,
                               isim_error *err)
{
    size_t d = (size_t)m->d_model, hd = (size_t)m->head_dim;
    size_t n[SWEEP_MATS] = {hd * (size_t)(m->n_heads + 2 * m->n_kv_heads), d, 2 * (size_t)m->d_ff,
                            d};
    size_t kk[SWEEP_MATS] = {d, hd * (size_t)m->n_heads, d, (size_t)m->d_ff};
    size_t layer_bytes = 0;
    for (int i = 0; i < SWEEP_MATS; i++)
        layer_bytes += isim__rt_matrix_bytes(n[i], kk[i], dt);
    int layers = (int)((((size_t)256 << 20) + layer_bytes - 1) / layer_bytes);
    if (layers > 64)
        layers = 64;
    mm_case *c = calloc((size_t)layers * SWEEP_MATS, sizeof *c);
    double *v = malloc((size_t)ISIM_RT_CAL_ROWS * (size_t)runs * sizeof *v);
    if (!c || !v) {
        free(c);
        free(v);
        return isim__rt_fail(err, ISIM_ENOMEM, "out of memory (the layers' matmuls)");
    }
    isim_status st = ISIM_OK;
    out->big_mats = SWEEP_MATS;
    memcpy(out->big_n, n, sizeof n);
    memcpy(out->big_k, kk, sizeof kk);
    for (int i = 0; i < layers * SWEEP_MATS && !st; i++) {
        if (!mm_make(&c[i], n[i % SWEEP_MATS], kk[i % SWEEP_MATS], 512, dt))
            st = isim__rt_fail(err, ISIM_ENOMEM, "out of memory (the layers' matmuls)");
    }
    int s0 = smp->n;
    for (int r = 0; r < runs && !st; r++) {
        for (int ri = 0; ri < ISIM_RT_CAL_ROWS; ri++) {
            int reps = 0;
            double t0 = isim__rt_now(), t;
            do {
                for (int i = 0; i < layers * SWEEP_MATS; i++) {
                    mm_job j = {k, &c[i].m, c[i].xp, out->rows[ri], c[i].y};
                    isim__rt_pool_run(pool, mm_task, &j);
                }
                reps++;
                t = isim__rt_now() - t0;
            } while (t < 0.02);
            v[(size_t)ri * (size_t)runs + (size_t)r] = t / reps / layers;
        }
        st = sample(smp, err);
    }
    if (!st) {
        for (int ri = 0; ri < ISIM_RT_CAL_ROWS; ri++)
            times[ri] = isim_rt_summarize(v + (size_t)ri * (size_t)runs, runs, false);
        *stream = sampled(smp, dt == ISIM_BF16 ? S_BF16 : S_FP32, s0, smp->n);
        *peak = sampled(smp, dt == ISIM_BF16 ? S_PEAK_BF16 : S_PEAK_FP32, s0, smp->n);
    }
    for (int i = 0; i < layers * SWEEP_MATS; i++)
        mm_free(&c[i]);
    free(c);
    free(v);
    return st;
}

/* ---- attention ------------------------------------------------------------------------- */

static double attention_rate(const rt_kernels *k, int runs, isim_rt_stat *out)
{
    const int nq = 32, hd = 64, span = 1024;
    float *kt = calloc((size_t)hd * span, sizeof *kt), *v = calloc((size_t)span * hd, sizeof *v);
    float *q = malloc((size_t)nq * hd * sizeof *q), *o = malloc((size_t)nq * hd * sizeof *o);
    float *sc = malloc((size_t)nq * span * sizeof *sc);
    double *r = malloc((size_t)runs * sizeof *r);
    if (!kt || !v || !q || !o || !sc || !r) {
        free(kt), free(v), free(q), free(o), free(sc), free(r);
        return -1;
    }
    for (int i = 0; i < hd * span; i++)
        kt[i] = 1e-3f * (float)(i % 31);
    for (int i = 0; i < span * hd; i++)
        v[i] = 1e-3f * (float)(i % 37);
    for (int i = 0; i < nq * hd; i++)
        q[i] = 1e-2f * (float)(i % 11);
    const float *qv[32];
    float *ov[32];
    int first[32], last[32];
    for (int i = 0; i < nq; i++) {
        qv[i] = q + (size_t)i * hd;
        ov[i] = o + (size_t)i * hd;
        first[i] = 0;
        last[i] = span - 1;
    }
    for (int s = 0; s < runs; s++) {
        int reps = 0;
        double t0 = isim__rt_now(), t;
        do {
            k->attend(qv, first, last, nq, hd, kt, v, span, 0.125f, false, sc, ov);
            reps++;
            t = isim__rt_now() - t0;
        } while (t < 0.02);
        /* q.k and p.v: 2 x 2 x hd FLOPs per query and position */
        r[s] = 4.0 * nq * hd * span * reps / t;
    }
    *out = isim_rt_summarize(r, runs, true);
    free(kt), free(v), free(q), free(o), free(sc), free(r);
    return 0;
}

/* The decode case of attention: every thread reads its sequences' caches from memory, 4
 * queries (a Llama 3.2 1B KV head's group) over 2048 positions of 64 values per head, heads
 * enough for 256 MB of keys and values (beyond the last-level cache). Bytes/s of cache
 * read. */
typedef struct {
    const rt_kernels *k;
    const char *cache; /* heads x (keys, then values) */
    size_t head_bytes; /* keys and values of one head */
    int heads, hd, span, nq;
    bool bf16;
    float *scratch; /* per thread: scores (nq, span), queries and outputs (nq, hd) */
} kv_probe;

static void kv_task(void *p, int tid, int n)
{
    kv_probe *b = p;
    size_t per = (size_t)b->nq * ((size_t)b->span + 2 * (size_t)b->hd);
    float *sc = b->scratch + (size_t)tid * per, *q = sc + (size_t)b->nq * b->span,
          *o = q + (size_t)b->nq * b->hd;
    const float *qv[8];
    float *ov[8];
    int first[8], last[8];
    for (int i = 0; i < b->nq; i++) {
        qv[i] = q + (size_t)i * b->hd;
        ov[i] = o + (size_t)i * b->hd;
        first[i] = 0;
        last[i] = b->span - 1;
    }
    for (int h = tid; h < b->heads; h += n) {
        const char *kt = b->cache + (size_t)h * b->head_bytes;
        b->k->attend(qv, first, last, b->nq, b->hd, kt, kt + b->head_bytes / 2, b->span, 0.125f,
                     b->bf16, sc, ov);
    }
}

static double kv_rate(rt_pool *pool, const rt_kernels *k, int threads, const void *cache, bool bf16)
{
    kv_probe b = {.k = k, .cache = cache, .hd = 64, .span = 2048, .nq = 4, .bf16 = bf16};
    b.head_bytes = 2 * (size_t)b.span * (size_t)b.hd * (bf16 ? 2 : 4);
    b.heads = (int)(((size_t)256 << 20) / b.head_bytes);
    size_t per = (size_t)b.nq * ((size_t)b.span + 2 * (size_t)b.hd);
    b.scratch = calloc((size_t)threads * per, sizeof *b.scratch);
    if (!b.scratch)
        return -1;
    for (size_t i = 0; i < (size_t)threads * per; i++)
        b.scratch[i] = 1e-3f * (float)(i % 13);
    isim__rt_pool_run(pool, kv_task, &b); /* first touch */
    int reps = 0;
    double t0 = isim__rt_now(), t;
    do {
        isim__rt_pool_run(pool, kv_task, &b);
        reps++;
        t = isim__rt_now() - t0;
    } while (t < 0.05);
    free(b.scratch);
    return (double)b.heads * (double)b.head_bytes * reps / t;
}

/* ---- steps ----------------------------------------------------------------------------- */

/* The median time of `steps` decode steps of batch 1 at about 64 tokens of context, and the
 * tasks handed out per step. */
static isim_status step_time(const isim_model *m, int threads, const char *kernels, int steps,
                             double *median_s, double *dispatches, isim_error *err)
{
    isim_rt_options o;
    isim_rt_options_init(&o);
    o.model = m;
    o.threads = threads;
    o.kernels = kernels;
    o.max_context = 128;
    isim_rt *rt = NULL;
    isim_status st = isim_rt_open(&o, &rt, err);
    if (st)
        return st;
    int prompt[64], slot = 0, n = 64, one = 1, tok = 3;
    isim_rt_random_prompt(1, 0, 64, (int)m->vocab, prompt);
    const int *in = prompt;
    double *t = malloc((size_t)steps * sizeof *t);
    if (!t) {
        isim_rt_close(rt);
        return isim__rt_fail(err, ISIM_ENOMEM, "out of memory");
    }
    st = isim_rt_forward(rt, 1, &slot, &in, &n, NULL, err);
    in = &tok;
    unsigned long d0 = isim__rt_pool_dispatches(rt->pool);
    for (int s = 0; s < steps && !st; s++) {
        double t0 = isim__rt_now();
        st = isim_rt_forward(rt, 1, &slot, &in, &one, NULL, err);
        t[s] = isim__rt_now() - t0;
        isim_rt_set_position(rt, slot, 64); /* every step at the same context */
    }
    *dispatches = (double)(isim__rt_pool_dispatches(rt->pool) - d0) / steps;
    if (!st)
        *median_s = isim_rt_summarize(t, steps, false).median;
    free(t);
    isim_rt_close(rt);
    return st;
}

/* ---- the matmul efficiency curve (docs/validation.md, "Calibrating a CPU") ----------- */

const int isim_rt_cal_rows[ISIM_RT_CAL_ROWS] = {1,  2,  4,  8,  12, 13,  16,  24,
                                                25, 32, 48, 64, 96, 128, 256, 512};

double isim_rt_sweep_params(const isim_rt_calibration *c)
{
    double p = 0;
    for (int i = 0; i < c->big_mats; i++)
        p += (double)c->big_n[i] * (double)c->big_k[i];
    return p;
}

/* The step model's matmul time (the deploy fidelity's matmul kernel, docs/model.md): the
 * rows in tiles of x[3] (isim_matmul_tiles), each but the first costing at least x[1] rows;
 * arithmetic of r rows 2 r P / (peak x flops), P the layer's weights; traffic h = the
 * weights' bytes / bandwidth; time max(a1, h) + overlap x min(a1, h) + a2 (a1 the first
 * tile's arithmetic, a2 the others'). */
double isim_rt_curve_time(const isim_rt_calibration *c, bool bf16, int i, const double x[4],
                          double bw)
{
    double P = isim_rt_sweep_params(c), r1, r2;
    double per_row = 2 * P / ((bf16 ? c->sweep_peak_bf16 : c->sweep_peak_fp32).mean * x[0]);
    isim_matmul_tiles(c->rows[i], x[1], x[3], &r1, &r2);
    return isim_overlap_time(r1 * per_row, P * (bf16 ? 2 : 4) / bw, x[2], r2 * per_row);
}

typedef struct {
    const isim_rt_calibration *c;
    bool fp32, bf16;
    double tile;
} curve_ctx;

/* The curve's parameters {flops, full, overlap, tile} from the fitted ones y: flops is a
 * fraction of the peak, at most 1, fitted as y / (1 + y), y > 0 (a sweep faster than the
 * peak sampled beside it, the peak kernel reading low, then fits 1 with the other
 * parameters, not a fraction the profile cannot hold). */
static void curve_params(const double *y, double tile, double x[4])
{
    x[0] = y[0] / (1 + y[0]);
    x[1] = y[1];
    x[2] = y[2];
    x[3] = tile;
}

/* residuals of the model's times against the sweep's, relative: the means of the middle
 * runs, against the streaming rate sampled between the sweep's rounds (the same states of
 * the machine) and the peak sampled with it */
static void curve_residuals(const double *x, double *r, void *p)
{
    const curve_ctx *cc = p;
    const isim_rt_calibration *c = cc->c;
    double curve[4];
    curve_params(x, cc->tile, curve);
    size_t k = 0;
    for (int d = 0; d < 2; d++) {
        if ((d == 0 && !cc->fp32) || (d == 1 && !cc->bf16))
            continue;
        double bw = (d ? c->sweep_stream_bf16 : c->sweep_stream_fp32).mean;
        const isim_rt_stat *t = d ? c->big_bf16 : c->big_fp32;
        for (int i = 0; i < ISIM_RT_CAL_ROWS; i++) {
            double want = t[i].mean;
            r[k++] = (isim_rt_curve_time(c, d == 1, i, curve, bw) - want) / want;
        }
    }
}

isim_status isim_rt_fit_curve(const isim_rt_calibration *c, bool fp32, bool bf16, double tile,
                              double x[4], double *rms, isim_error *err)
{
    size_t n = (size_t)ISIM_RT_CAL_ROWS * ((fp32 ? 1 : 0) + (bf16 ? 1 : 0));
    if (!n)
        return isim__rt_fail(err, ISIM_EINVAL, "the curve fit needs fp32 or bf16 times");
    /* the tile: given, or each of the sweep's row counts below its largest in turn (the
     * largest is one tile again), one tile first. A tile replaces the best so far only if it
     * fits better by more than 1% of its rms: tiles past the rows where the matmul turns
     * compute-bound give one tile's times (a1 + a2 + overlap h), and a tie keeps the
     * simpler curve. */
    int tries = tile >= 0 ? 1 : ISIM_RT_CAL_ROWS;
    double best = INFINITY;
    for (int t = 0; t < tries; t++) {
        curve_ctx cc = {c, fp32, bf16, tile >= 0 ? tile : t ? c->rows[t - 1] : 0};
        /* from flops 0.85 (curve_params), a tile at least 6 rows, overlap 0.3 */
        double y[3] = {0.85 / 0.15, 6, 0.3}, e = 0;
        isim_status st = isim_fit_positive(3, y, n, curve_residuals, &cc, &e, err);
        if (st)
            return st;
        if (e < 0.99 * best) {
            best = e;
            curve_params(y, cc.tile, x);
        }
    }
    if (rms)
        *rms = best;
    return ISIM_OK;
}

struct isim_rt_stream_probe {
    rt_pool *pool;
    const rt_kernels *k;
    mm_case c;
};

isim_status isim_rt_stream_probe_new(int threads, isim_rt_stream_probe **out, isim_error *err)
{
    *out = NULL;
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    isim_rt_stream_probe *p = calloc(1, sizeof *p);
    if (!p)
        return isim__rt_fail(err, ISIM_ENOMEM, "out of memory");
    p->k = isim__rt_kernels_pick(NULL);
    isim_status st = isim__rt_pool_new(threads, &p->pool, err);
    if (!st && !mm_make(&p->c, 8192, 16384, 1, ISIM_BF16))
        st = isim__rt_fail(err, ISIM_ENOMEM, "no memory for the streaming probe (256 MB)");
    if (st) {
        isim_rt_stream_probe_free(p);
        return st;
    }
    *out = p;
    return ISIM_OK;
}

double isim_rt_stream_probe_run(isim_rt_stream_probe *p, int runs)
{
    double v[64], bytes = (double)isim__rt_matrix_bytes(p->c.m.n, p->c.m.k, ISIM_BF16);
    runs = runs < 1 ? 1 : runs > 64 ? 64 : runs;
    for (int r = 0; r < runs; r++)
        v[r] = bytes / mm_time(p->pool, p->k, &p->c, 1);
    return isim_rt_summarize(v, runs, true).mean; /* the statistic calibrate writes */
}

double isim_rt_stream_probe_peak(isim_rt_stream_probe *p, int runs)
{
    double v[64];
    runs = runs < 1 ? 1 : runs > 64 ? 64 : runs;
    for (int r = 0; r < runs; r++)
        v[r] = isim__rt_peak_rate(p->pool, p->k, 1, SAMPLE_PEAK_ITERS); /* bf16, about 5 ms */
    return isim_rt_summarize(v, runs, true).mean; /* the statistic calibrate writes */
}

void isim_rt_stream_probe_free(isim_rt_stream_probe *p)
{
    if (!p)
        return;
    mm_free(&p->c);
    isim__rt_pool_free(p->pool);
    free(p);
}

void isim_rt_set_position(isim_rt *rt, int slot, int pos)
{
    if (slot >= 0 && slot < rt->batch_cap && pos >= 0 && pos <= rt->ctx)
        rt->pos[slot] = pos;
}

isim_status isim_rt_calibrate(int threads, int runs, const char *kernels, const isim_model *small,
                              const isim_model *mid, isim_rt_calibration *out, isim_error *err)
{
    memset(out, 0, sizeof *out);
    if (runs < 3)
        runs = 3;
    if (runs > 64)
        runs = 64;
    const rt_kernels *k;
    isim_status st = isim__rt_kernels_choose(kernels, &k, err);
    if (st)
        return st;
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    if (threads > 256)
        threads = 256;
    out->kernels = k->name;
    out->threads = threads;
    out->load_1min = load_1min();
    out->others_cpu_share = NAN;
    rt_cpu_times cpu0;
    bool have_cpu0 = isim__rt_cpu_times_now(&cpu0);
    rt_pool *pool = NULL, *pool1 = NULL;
    st = isim__rt_pool_new(threads, &pool, err);
    if (!st && (st = isim__rt_pool_new(1, &pool1, err)))
        isim__rt_pool_free(pool);
    if (st)
        return st;
    double *v = malloc(64 * sizeof *v); /* runs <= 64 */
    sampler *smp = NULL;
    size_t n = (size_t)1 << 28; /* 1 GiB of floats */
    float *x =
        mmap(NULL, n * sizeof *x, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!v || x == MAP_FAILED) {
        st = isim__rt_fail(err, ISIM_ENOMEM, "no memory for the bandwidth probe (1 GiB)");
        x = NULL;
        goto done;
    }
#ifdef MADV_HUGEPAGE
    madvise(x, n * sizeof *x, MADV_HUGEPAGE);
#endif
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(i & 1023);
    /* the streaming rates' samples, taken between the measurements below; the KV cache is
     * 256 MB of the read probe's buffer (values of 0 to 1023: finite read as either) */
    smp = calloc(1, sizeof *smp);
    if (!smp || !mm_make(&smp->bf16, 8192, 16384, 1, ISIM_BF16) ||
        !mm_make(&smp->fp32, 8192, 8192, 1, ISIM_FP32)) {
        st = isim__rt_fail(err, ISIM_ENOMEM, "no memory for the streaming probes (512 MB)");
        goto done;
    }
    smp->pool = pool;
    smp->pool1 = pool1;
    smp->k = k;
    smp->threads = threads;
    smp->cache = x;
    if ((st = sample(smp, err)))
        goto done;
    for (int r = 0; r < runs; r++)
        v[r] = isim__rt_read_rate(pool, k, x, n);
    out->read_bytes_per_s = isim_rt_summarize(v, runs, true);
    for (int which = 0; which < 2; which++) {
        for (int r = 0; r < runs; r++)
            v[r] = isim__rt_peak_rate(pool, k, which, 5000000);
        if (which == 0)
            out->peak_burst_fp32 = isim_rt_summarize(v, runs, true);
        else
            out->peak_burst_bf16 = isim_rt_summarize(v, runs, true);
    }
    if ((st = sample(smp, err)))
        goto done;
    /* matmul by rows, weights in cache: 512 outputs x 1024 inputs (2 MB in fp32, 1 MB in
     * bf16, shared by the threads' L2 caches) */
    for (int di = 0; di < 2 && !st; di++) {
        isim_dtype dt = di ? ISIM_BF16 : ISIM_FP32;
        mm_case c;
        if (!mm_make(&c, 512, 1024, 512, dt)) {
            mm_free(&c);
            st = isim__rt_fail(err, ISIM_ENOMEM, "out of memory");
            break;
        }
        for (int ri = 0; ri < ISIM_RT_CAL_ROWS; ri++) {
            out->rows[ri] = isim_rt_cal_rows[ri];
            for (int r = 0; r < runs; r++)
                v[r] = 2.0 * 512 * 1024 * out->rows[ri] / mm_time(pool, k, &c, out->rows[ri]);
            (di ? out->mm_bf16 : out->mm_fp32)[ri] = isim_rt_summarize(v, runs, true);
        }
        mm_free(&c);
        if ((st = sample(smp, err)))
            break;
        /* the same rows against weights streamed from memory: the matmuls of a layer of the
         * mid-size model in the engine's order and fusion (q, k, v together; o; gate and up
         * together; down), each handed to the threads once, as a decode step runs them:
         * weights of every shape the step model's one efficiency curve stands for, read
         * once per pass (Llama 3.2 1B: 122 MB a layer in bf16; 3 layers, 2 in fp32) */
        if ((st = layer_sweep(pool, k, mid, dt, runs, smp, out, di ? out->big_bf16 : out->big_fp32,
                              di ? &out->sweep_stream_bf16 : &out->sweep_stream_fp32,
                              di ? &out->sweep_peak_bf16 : &out->sweep_peak_fp32, err)))
            break;
    }
    if (st)
        goto done;
    if (attention_rate(k, runs, &out->attention_flops) < 0) {
        st = isim__rt_fail(err, ISIM_ENOMEM, "out of memory");
        goto done;
    }
    if ((st = sample(smp, err)))
        goto done;
    /* handing out a task: 1000 empty ones per run */
    for (int r = 0; r < runs; r++) {
        double t0 = isim__rt_now();
        for (int i = 0; i < 1000; i++)
            isim__rt_pool_run(pool, empty_task, NULL);
        v[r] = (isim__rt_now() - t0) / 1000;
    }
    out->dispatch_s = isim_rt_summarize(v, runs, false);
    if ((st = sample(smp, err)))
        goto done;
    /* steps of 1 and 2 layers: the difference is a layer, the rest the step's own cost */
    {
        isim_model s1 = *small, s2 = *small, m1 = *mid, m2 = *mid;
        s1.n_layers = 1;
        s2.n_layers = 2;
        m1.n_layers = 1;
        m2.n_layers = 2;
        m1.vocab = m2.vocab = 32000; /* a layer's tasks do not depend on the vocabulary */
        m1.tied_embeddings = m2.tied_embeddings = true;
        double layer[64], over[64], d1 = 0, d2 = 0, t1, t2;
        for (int r = 0; r < runs && !st; r++) {
            if ((st = step_time(&s1, threads, kernels, 50, &t1, &d1, err)) ||
                (st = step_time(&s2, threads, kernels, 50, &t2, &d2, err)))
                break;
            layer[r] = t2 - t1;
            over[r] = t1 - (t2 - t1);
            st = sample(smp, err);
        }
        if (!st) {
            out->layer_s = isim_rt_summarize(layer, runs > 64 ? 64 : runs, false);
            out->step_overhead_s = isim_rt_summarize(over, runs > 64 ? 64 : runs, false);
            if (!(st = step_time(&m1, threads, kernels, 5, &t1, &d1, err)) &&
                !(st = step_time(&m2, threads, kernels, 5, &t2, &d2, err)))
                out->dispatches_per_layer = d2 - d1;
        }
    }
    if (!st) {
        out->stream_bf16 = sampled(smp, S_BF16, 0, smp->n);
        out->stream_thread_bf16 = sampled(smp, S_THREAD, 0, smp->n);
        out->stream_fp32 = sampled(smp, S_FP32, 0, smp->n);
        out->kv_stream_bf16 = sampled(smp, S_KV_BF16, 0, smp->n);
        out->kv_stream_fp32 = sampled(smp, S_KV_FP32, 0, smp->n);
        out->peak_fp32 = sampled(smp, S_PEAK_FP32, 0, smp->n);
        out->peak_bf16 = sampled(smp, S_PEAK_BF16, 0, smp->n);
    }
done:;
    /* what the machine's busy time holds beyond this process's own */
    rt_cpu_times cpu1;
    if (!st && have_cpu0 && isim__rt_cpu_times_now(&cpu1))
        out->others_cpu_share = isim__rt_others_share(&cpu0, &cpu1);
    if (smp) {
        mm_free(&smp->bf16);
        mm_free(&smp->fp32);
        free(smp);
    }
    if (x)
        munmap(x, n * sizeof *x);
    free(v);
    isim__rt_pool_free(pool);
    isim__rt_pool_free(pool1);
    return st;
}
