/* The paper fidelity's frontier: the released code's pareto_fronts (Erdil 2025, code
 * c2c4fa9). A log grid of continuous device counts (from the least that holds the
 * weights to 2^18) and batches (1 to 2^(18 + log2 s)), the latency of every point
 * (isim_paper_grid), then 1000 latency budgets from the fastest point to 100x it: for each,
 * the cheapest point within the budget (and the demand cap) joins the frontier. */
#include "planner/internal.h"

#include <math.h>
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

static isim_status one_setting(const isim_plan_request *r, int h, isim_dtype w, isim_dtype kv,
                               isim__points *out, isim_plan *plan, isim_error *err)
{
    const isim_model *m = r->model;
    const isim_hw *hw = r->hw[h];
    const int gn = r->grid_devices, gb = r->grid_batch;
    isim_paper_ctx *c = NULL, *dc = NULL;
    double *N = NULL, *B = NULL, *t = NULL;
    pick *bucket = NULL;
    isim_status st = isim_paper_ctx_new(m, hw, w, kv, &c, err);
    if (!st && r->draft)
        st = isim_paper_ctx_new(r->draft, hw, r->draft_weights, kv, &dc, err);
    if (st)
        goto cleanup;
    size_t n = (size_t)gn * (size_t)gb;
    if (!isim_paper_ctx_has_rate(c) || (dc && !isim_paper_ctx_has_rate(dc))) {
        plan->evaluated += n;
        plan->infeasible_by_reason[ISIM_REASON_NO_RATE] += n;
        goto cleanup;
    }
    N = malloc((size_t)gn * sizeof *N);
    B = malloc((size_t)gb * sizeof *B);
    t = malloc(n * sizeof *t);
    bucket = malloc(1000 * sizeof *bucket);
    if (!N || !B || !t || !bucket) {
        st = isim__plan_fail(err, "out of memory");
        goto cleanup;
    }
    /* min_num_of_gpus = total params x weight bytes / HBM; s = n_experts // n_active */
    double min_gpus = r->grid_min_devices > 0 ? r->grid_min_devices
                                              : m->d.params_total * isim_dtype_bytes(w) / hw->mem_bytes;
    double s = m->has_moe ? (double)m->n_experts / (double)m->n_active_experts : 1;
    logspace2(log2(min_gpus), 18, gn, N);
    logspace2(0, 18 + log2(s), gb, B);
    isim_paper_grid_query q = {.devices = N, .n_devices = (size_t)gn, .batch = B,
                               .n_batch = (size_t)gb, .input_len = r->input_tokens,
                               .use_pp = r->use_pp, .draft = dc, .spec_alpha = r->spec_alpha,
                               .spec_gamma_max = r->spec_gamma_max, .threads = r->threads};
    if ((st = isim_paper_grid(c, &q, t, err)))
        goto cleanup;

    plan->evaluated += n;
    double t_min = INFINITY;
    for (size_t p = 0; p < n; p++) {
        if (isfinite(t[p])) {
            t_min = fmin(t_min, t[p]);
        } else {
            double dev = N[p % (size_t)gn];
            plan->infeasible_by_reason[dev < 1 ? ISIM_REASON_PP_LAYERS : ISIM_REASON_MEMORY]++;
        }
    }
    if (!isfinite(t_min))
        goto cleanup;
    /* token_latency_seconds_range = min latency x logspace(0, 2, 1000, base=10) */
    double budget[1000];
    for (int k = 0; k < 1000; k++) {
        budget[k] = t_min * pow(10.0, k == 999 ? 2 : k * (2.0 / 999));
        bucket[k] = (pick){INFINITY, INFINITY, 0};
    }
    const double demand = r->demand_tokens_per_s > 0 ? r->demand_tokens_per_s : INFINITY;
    for (size_t p = 0; p < n; p++) {
        double tp = t[p], b = B[p / (size_t)gn], dev = N[p % (size_t)gn];
        if (!isfinite(tp) || tp > budget[999] || b / tp > demand)
            continue;
        /* the first budget that admits the point */
        int k = (int)ceil(log10(tp / t_min) * (999 / 2.0));
        k = k < 0 ? 0 : k > 999 ? 999 : k;
        while (k > 0 && tp <= budget[k - 1])
            k--;
        while (k < 999 && tp > budget[k])
            k++;
        pick x = {dev * tp / b, tp, p};
        if (better(&x, &bucket[k]))
            bucket[k] = x;
    }
    pick run = {INFINITY, INFINITY, 0};
    double last_t = -1;
    for (int k = 0; k < 1000; k++) {
        if (better(&bucket[k], &run))
            run = bucket[k];
        if (!isfinite(run.cost) || run.t == last_t)
            continue;
        last_t = run.t;
        size_t p = run.p;
        double b = B[p / (size_t)gn], dev = N[p % (size_t)gn], price = hw->cloud_usd_per_h;
        isim_plan_point x = {.hw = h, .devices = dev, .batch = b, .weights = w, .kv = kv,
                             .spec = r->draft != NULL, .tpot_s = run.t};
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
