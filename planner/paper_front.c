/* The paper fidelity's frontier: the released code's pareto_fronts (Erdil 2025, code
 * c2c4fa9). A log grid of continuous device counts (from the least that holds the
 * weights to 2^18) and batches (1 to 2^(18 + log2 s)), the latency of every point
 * (isim_paper_grid), then 1000 latency budgets from the fastest point to 100x it: for each,
 * the cheapest point within the budget (and the demand cap) joins the frontier. */
#include "planner/internal.h"

#include <pthread.h>
#include <unistd.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* numpy.logspace(lo, hi, n, base=2): 2^(lo + i (hi - lo)/(n - 1)), the last exactly 2^hi */
static void logspace2(double lo, double hi, int n, double *out)
{
    double step = (hi - lo) / (n - 1);
    for (int i = 0; i < n; i++)
        out[i] = exp2(i == n - 1 ? hi : lo + i * step);
}

typedef struct {
    double cost, t;
    size_t p;
} pick;

static bool better(const pick *a, const pick *b)
{
    return a->cost < b->cost || (a->cost == b->cost && a->t < b->t);
}

#define N_BUDGET 1000

/* The first of the 1000 budgets t_min 10^(2k/999) that admits latency t (t_min <= t <=
 * budget[999]): a guess from the binary exponent and a quadratic in the mantissa (within
 * a bucket or two), then the exact comparisons settle it. */
static int first_budget(double t, double t_min, const double *budget)
{
    double r = t / t_min;
    uint64_t u;
    memcpy(&u, &r, sizeof u);
    int e = (int)((u >> 52) & 0x7ff) - 1023;
    u = (u & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
    double m;
    memcpy(&m, &u, sizeof m);
    double l2 = e + (m - 1) * (1.3465735903 - 0.3465735903 * (m - 1));
    int k = (int)(l2 * (999 / 2.0 / 3.321928094887362));
    k = k < 0 ? 0 : k > N_BUDGET - 1 ? N_BUDGET - 1 : k;
    while (k > 0 && t <= budget[k - 1])
        k--;
    while (k < N_BUDGET - 1 && t > budget[k])
        k++;
    return k;
}

/* The cheapest point of each budget bucket over the points lo .. hi - 1. */
typedef struct {
    const double *t, *N, *B, *budget;
    size_t gn, lo, hi;
    double t_min, demand;
    pick bucket[N_BUDGET];
} bucket_job;

static void *fill_buckets(void *arg)
{
    bucket_job *j = arg;
    for (int k = 0; k < N_BUDGET; k++)
        j->bucket[k] = (pick){INFINITY, INFINITY, 0};
    const double top = j->budget[N_BUDGET - 1];
    /* points p = row x gn + column: batch B[row], devices N[column] */
    size_t row = j->lo / j->gn, col = j->lo % j->gn;
    for (size_t p = j->lo; p < j->hi; p++) {
        double tp = j->t[p];
        if (tp <= top) { /* finite and within the last budget */
            double b = j->B[row];
            if (!(j->demand < INFINITY && b / tp > j->demand)) {
                int k = first_budget(tp, j->t_min, j->budget);
                pick x = {j->N[col] * tp / b, tp, p};
                if (better(&x, &j->bucket[k]))
                    j->bucket[k] = x;
            }
        }
        if (++col == j->gn) {
            col = 0;
            row++;
        }
    }
    return NULL;
}

/* fill_buckets over `threads` contiguous ranges, merged in range order: ties keep the
 * lowest index, as one pass would. */
static isim_status buckets(bucket_job *proto, size_t n, int threads, pick *out, isim_error *err)
{
    if (threads <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cpus > 0 ? (int)cpus : 1;
    }
    if ((size_t)threads > n / 4096 + 1)
        threads = (int)(n / 4096 + 1);
    if (threads > ISIM_PAPER_GRID_MAX_THREADS)
        threads = ISIM_PAPER_GRID_MAX_THREADS;
    bucket_job *jobs = malloc((size_t)threads * sizeof *jobs);
    if (!jobs)
        return isim__plan_fail(err, "out of memory");
    pthread_t tid[ISIM_PAPER_GRID_MAX_THREADS];
    bool started[ISIM_PAPER_GRID_MAX_THREADS] = {false};
    for (int i = 0; i < threads; i++) {
        jobs[i] = *proto;
        jobs[i].lo = n * (size_t)i / (size_t)threads;
        jobs[i].hi = n * (size_t)(i + 1) / (size_t)threads;
        if (i > 0)
            started[i] = pthread_create(&tid[i], NULL, fill_buckets, &jobs[i]) == 0;
    }
    for (int i = 0; i < threads; i++)
        if (!started[i])
            fill_buckets(&jobs[i]);
    for (int i = 1; i < threads; i++)
        if (started[i])
            pthread_join(tid[i], NULL);
    for (int k = 0; k < N_BUDGET; k++) {
        out[k] = jobs[0].bucket[k];
        for (int i = 1; i < threads; i++)
            if (better(&jobs[i].bucket[k], &out[k]))
                out[k] = jobs[i].bucket[k];
    }
    free(jobs);
    return ISIM_OK;
}

static isim_status one_setting(const isim_plan_request *r, int h, isim_dtype w, isim_dtype kv,
                               isim__points *out, isim_plan *plan, isim_error *err)
{
    const isim_model *m = r->model;
    const isim_hw *hw = r->hw[h];
    const int gn = r->grid_devices, gb = r->grid_batch;
    isim_paper_ctx *c = NULL, *dc = NULL;
    double *N = NULL, *B = NULL, *t = NULL;
    pick *bucket = NULL;
    size_t n = (size_t)gn * (size_t)gb;
    /* a draft that cannot hold the sequence leaves plain decoding: every point's speculative
     * variant is infeasible */
    bool spec = r->draft &&
                isim_model_context_fits(r->draft, r->input_tokens, r->output_tokens, true, NULL, 0);
    if (r->draft && !spec) {
        plan->evaluated += n;
        plan->infeasible_by_reason[ISIM_REASON_CONTEXT] += n;
    }
    isim_status st = isim_paper_ctx_new(m, hw, w, kv, &c, err);
    if (!st && spec)
        st = isim_paper_ctx_new(r->draft, hw, r->draft_weights, kv, &dc, err);
    if (st)
        goto cleanup;
    if (!isim_paper_ctx_has_rate(c) || (dc && !isim_paper_ctx_has_rate(dc))) {
        plan->evaluated += n;
        plan->infeasible_by_reason[ISIM_REASON_NO_RATE] += n;
        goto cleanup;
    }
    N = malloc((size_t)gn * sizeof *N);
    B = malloc((size_t)gb * sizeof *B);
    t = malloc(n * sizeof *t);
    bucket = malloc(N_BUDGET * sizeof *bucket);
    if (!N || !B || !t || !bucket) {
        st = isim__plan_fail(err, "out of memory");
        goto cleanup;
    }
    /* min_num_of_gpus = total params x weight bytes / HBM; s = n_experts // n_active */
    double min_gpus = r->grid_min_devices > 0
                          ? r->grid_min_devices
                          : m->d.params_total * isim_dtype_bytes(w) / hw->mem_bytes;
    double s = m->has_moe ? (double)m->n_experts / (double)m->n_active_experts : 1;
    logspace2(log2(min_gpus), 18, gn, N);
    logspace2(0, 18 + log2(s), gb, B);
    isim_paper_grid_query q = {.devices = N,
                               .n_devices = (size_t)gn,
                               .batch = B,
                               .n_batch = (size_t)gb,
                               .input_len = r->input_tokens,
                               .use_pp = r->use_pp,
                               .draft = dc,
                               .spec_alpha = r->spec_alpha,
                               .spec_gamma_max = r->spec_gamma_max,
                               .threads = r->threads};
    if ((st = isim_paper_grid(c, &q, t, err)))
        goto cleanup;

    plan->evaluated += n;
    double t_min = INFINITY;
    for (size_t p = 0; p < n; p++) {
        if (isfinite(t[p])) {
            if (t[p] < t_min)
                t_min = t[p];
        } else {
            double dev = N[p % (size_t)gn];
            plan->infeasible_by_reason[dev < 1 ? ISIM_REASON_PP_LAYERS : ISIM_REASON_MEMORY]++;
        }
    }
    if (!isfinite(t_min))
        goto cleanup;
    /* token_latency_seconds_range = min latency x logspace(0, 2, 1000, base=10) */
    double budget[N_BUDGET];
    for (int k = 0; k < N_BUDGET; k++)
        budget[k] = t_min * pow(10.0, k == N_BUDGET - 1 ? 2 : k * (2.0 / 999));
    bucket_job *proto = malloc(sizeof *proto);
    if (!proto) {
        st = isim__plan_fail(err, "out of memory");
        goto cleanup;
    }
    *proto = (bucket_job){.t = t,
                          .N = N,
                          .B = B,
                          .budget = budget,
                          .gn = (size_t)gn,
                          .t_min = t_min,
                          .demand = r->demand_tokens_per_s > 0 ? r->demand_tokens_per_s : INFINITY};
    st = buckets(proto, n, r->threads, bucket, err);
    free(proto);
    if (st)
        goto cleanup;
    pick run = {INFINITY, INFINITY, 0};
    double last_t = -1;
    for (int k = 0; k < N_BUDGET; k++) {
        if (better(&bucket[k], &run))
            run = bucket[k];
        if (!isfinite(run.cost) || run.t == last_t)
            continue;
        last_t = run.t;
        size_t p = run.p;
        double b = B[p / (size_t)gn], dev = N[p % (size_t)gn], price = isim__plan_price(r, h);
        isim_plan_point x = {.hw = h,
                             .devices = dev,
                             .batch = b,
                             .weights = w,
                             .kv = kv,
                             .spec = spec,
                             .tpot_s = run.t};
        x.tokens_per_s_per_user = 1 / run.t;
        x.tokens_per_s_total = b / run.t;
        x.tokens_per_s_per_device = b / (run.t * dev);
        /* Erdil 2025 §4: GPU-seconds per token x price per GPU-second, per million */
        x.cost_usd_per_mtok_output = 1e6 * run.cost * price / 3600;
        if ((st = isim__points_push(out, &x, err)))
            goto cleanup;
    }
cleanup:
    free(bucket);
    free(t);
    free(B);
    free(N);
    isim_paper_ctx_free(dc);
    isim_paper_ctx_free(c);
    return st;
}

isim_status isim__paper_candidates(const isim_plan_request *r, isim__points *out, isim_plan *plan,
                                   isim_error *err)
{
    isim_dtype release = r->model->release_weights, bf16 = ISIM_BF16;
    const isim_dtype *ws = r->weights ? r->weights : &release;
    const isim_dtype *kvs = r->kv ? r->kv : &bf16;
    size_t nw = r->weights ? r->n_weights : 1, nkv = r->kv ? r->n_kv : 1;
    for (size_t h = 0; h < r->n_hw; h++)
        for (size_t i = 0; i < nw; i++)
            for (size_t j = 0; j < nkv; j++) {
                isim_status st = one_setting(r, (int)h, ws[i], kvs[j], out, plan, err);
                if (st)
                    return st;
            }
    return ISIM_OK;
}
