/* SLOs at a percentile of the requests under the demand's traffic (docs/planner.md, "Under
 * traffic"): the configurations that can reach a frontier are simulated (sim/serve.h) at the
 * load each of their replicas receives, and a configuration meets the SLOs only when the
 * simulation says so. The search's static figures are the screen: the frontier of what is
 * left is simulated, points that miss are dropped or given more replicas, and the frontier is
 * found again until every point on it has been simulated. */
#include "planner/internal.h"
#include "sim/serve.h"

#include <math.h>
#include <stdlib.h>

/* The replicas tried for a configuration: enough that each runs at these shares of the
 * capacity the closed form gives it (never fewer than that capacity needs), the first that
 * meets the SLOs kept. A queue near full utilisation grows without bound in an open loop,
 * so the search starts below it. */
static const double UTILISATION[] = {0.9, 0.75, 0.5, 0.3};
#define TRIES ((int)(sizeof UTILISATION / sizeof UTILISATION[0]))
/* A simulation's passes at most, counted as if each request ran with the batch full: a
 * small batch, whose passes are many for few tokens, simulates fewer requests (at least
 * MIN_REQUESTS) so that its cost stays that of a large one. */
#define MAX_PASSES 200000.0
#define MIN_REQUESTS 200

/* The q-th percentile (0-100) of n values (sorted in place). */
static double percentile(double *v, size_t n, double q)
{
    qsort(v, n, sizeof *v, isim_cmp_double);
    return isim_quantile_sorted(v, n, q / 100);
}

static void point_query(const isim_plan_request *r, const isim_plan_point *p, isim_query *q)
{
    isim_query_init(q);
    q->fidelity = ISIM_DEPLOY;
    q->devices = p->devices;
    q->tp = p->tp;
    q->pp = p->pp;
    q->ep = p->ep;
    q->batch = p->batch;
    q->input_tokens = r->input_tokens;
    q->output_tokens = r->output_tokens;
    q->weights = p->weights;
    q->kv = p->kv;
    q->allow_cross_domain_tp = r->allow_cross_domain_tp;
    q->prefix_hit_rate = r->prefix_hit_rate;
    q->usd_per_device_h = isim__plan_price(r, p->hw);
}

/* The percentiles of one run; false when the replica was overloaded. */
static isim_status run_once(const isim_plan_request *r, const isim_step_ctx *x, const isim_sched *s,
                            double rate, int64_t requests, double *ttft, double *tpot,
                            bool *overloaded, isim_error *err)
{
    isim_traffic t = {.kind = ISIM_ARRIVE_POISSON,
                      .rate = rate,
                      .requests = requests,
                      .input = {ISIM_LEN_FIXED, fmax(round(r->input_tokens), 1), 0},
                      .output = {ISIM_LEN_FIXED, round(r->output_tokens), 0},
                      .prefix_hit = r->prefix_hit_rate,
                      .seed = r->seed};
    isim_serve_result *res = NULL;
    isim_status st = isim_serve_run(r->model, x, s, &t, &res, err);
    if (st)
        return st;
    double *v = malloc(res->n * sizeof *v);
    if (!v) {
        isim_serve_result_free(res);
        return isim__plan_fail(err, "out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < res->n; i++)
        v[k++] = res->req[i].first_token_s - res->req[i].arrival_s;
    *ttft = percentile(v, k, r->slo_percentile);
    k = 0;
    for (size_t i = 0; i < res->n; i++)
        if (res->req[i].output_tokens > 1)
            v[k++] = (res->req[i].done_s - res->req[i].first_token_s) /
                     (double)(res->req[i].output_tokens - 1);
    *tpot = k ? percentile(v, k, r->slo_percentile) : 0;
    *overloaded = res->overloaded;
    free(v);
    isim_serve_result_free(res);
    return ISIM_OK;
}

static bool meets(const isim_plan_request *r, double ttft, double tpot)
{
    return (r->ttft_slo_s <= 0 || ttft <= r->ttft_slo_s) &&
           (r->tpot_slo_s <= 0 || tpot <= r->tpot_slo_s) &&
           (r->min_tokens_per_s_per_user <= 0 || tpot <= 0 ||
            1 / tpot >= r->min_tokens_per_s_per_user);
}

/* Simulates p at the demand's rate over its replicas, adding replicas while it misses;
 * *kept false when it never meets the SLOs (or cannot be simulated). p's latencies, speed,
 * replicas and cost become the simulation's. */
static isim_status simulate(const isim_plan_request *r, isim_plan_point *p, bool *kept,
                            isim_error *err)
{
    *kept = false;
    isim_query q;
    point_query(r, p, &q);
    isim_step_ctx *x = NULL;
    isim_result res;
    isim_error e = {0};
    isim_status st = isim_step_ctx_new(r->model, r->hw[p->hw], &q, &x, &res, &e);
    if (st == ISIM_ENOMEM) {
        *err = e;
        return st;
    }
    if (st || !x)
        return ISIM_OK; /* a configuration the simulator cannot run is not kept */
    const double rate = r->demand_tokens_per_s / r->output_tokens;
    isim_sched s = {.max_seqs = (int64_t)ceil(p->batch / isim_step_dp(x))};
    const double sized = fmax(p->replicas, 1),
                 capacity = p->tokens_per_s_sustained / r->output_tokens;
    double per_request =
        (r->output_tokens + ceil(fmax(r->input_tokens, 1) / isim_step_chunk_tokens(x))) / p->batch;
    int64_t requests = (int64_t)fmax(fmin((double)r->sim_requests, MAX_PASSES / per_request),
                                     fmin((double)r->sim_requests, MIN_REQUESTS));
    double tried = 0;
    for (int k = 0; k < TRIES && !*kept; k++) {
        double replicas = fmax(sized, ceil(rate / (UTILISATION[k] * capacity)));
        if (replicas == tried)
            continue;
        tried = replicas;
        double ttft = 0, tpot = 0;
        bool over = false;
        st = run_once(r, x, &s, rate / replicas, requests, &ttft, &tpot, &over, &e);
        if (st == ISIM_ENOMEM) {
            *err = e;
            break;
        }
        if (st) { /* a request the cache cannot hold, say: not a configuration for this */
            st = ISIM_OK;
            break;
        }
        if (!over && meets(r, ttft, tpot)) {
            *kept = true;
            p->ttft_s = ttft;
            p->tpot_s = tpot;
            p->tokens_per_s_per_user = tpot > 0 ? 1 / tpot : INFINITY;
            p->replicas = replicas;
            p->cost_usd_per_mtok_output = 1e6 * replicas * p->devices * isim__plan_price(r, p->hw) /
                                          3600 / r->demand_tokens_per_s;
            p->load_rps = rate / replicas;
            p->sim_requests = requests;
            p->simulated = true;
        }
    }
    isim_step_ctx_free(x);
    return st;
}

/* Marks the points on any hardware's frontier (with_ttft as the request's). */
static isim_status frontier_marks(const isim_plan_request *r, const isim__points *pts, bool *on,
                                  isim_error *err)
{
    isim__points mine = {0};
    size_t *at = malloc((pts->n ? pts->n : 1) * sizeof *at), *idx = NULL, n_idx = 0;
    isim_status st = at ? ISIM_OK : isim__plan_fail(err, "out of memory");
    for (size_t h = 0; !st && h < r->n_hw; h++) {
        mine.n = 0;
        size_t n = 0;
        for (size_t i = 0; !st && i < pts->n; i++)
            if (pts->v[i].hw == (int)h) {
                at[n++] = i;
                st = isim__points_push(&mine, &pts->v[i], err);
            }
        if (!st && n)
            st = isim__pareto(mine.v, mine.n, r->ttft_objective, &idx, &n_idx, err);
        for (size_t i = 0; !st && n && i < n_idx; i++)
            on[at[idx[i]]] = true;
        free(idx);
        idx = NULL;
    }
    isim__points_release(&mine);
    free(at);
    return st;
}

/* The points to simulate in one round (isim_parallel_for over them). */
typedef struct {
    const isim_plan_request *r;
    isim_plan_point *v;
    const size_t *idx;
    bool *keep;
    isim_status *st;
    isim_error *errs;
} round_work;

static void simulate_one(void *ctx, size_t k)
{
    round_work *w = ctx;
    w->st[k] = simulate(w->r, &w->v[w->idx[k]], &w->keep[k], &w->errs[k]);
}

/* Simulates v[idx[k]] for k < n on the request's threads (each point alone: the result does
 * not depend on the order); keep[k] says whether each meets the SLOs. The first failure in
 * order is returned. */
static isim_status simulate_round(const isim_plan_request *r, isim_plan_point *v, const size_t *idx,
                                  size_t n, bool *keep, isim_error *err)
{
    isim_status *st = calloc(n ? n : 1, sizeof *st);
    isim_error *errs = calloc(n ? n : 1, sizeof *errs);
    if (!st || !errs) {
        free(st);
        free(errs);
        return isim__plan_fail(err, "out of memory");
    }
    round_work w = {.r = r, .v = v, .idx = idx, .keep = keep, .st = st, .errs = errs};
    isim_parallel_for(n, r->threads, simulate_one, &w);
    isim_status first = ISIM_OK;
    for (size_t k = 0; k < n && !first; k++)
        if ((first = st[k]))
            *err = errs[k];
    free(st);
    free(errs);
    return first;
}

isim_status isim__plan_traffic(const isim_plan_request *r, isim__points *ok, isim_plan *plan,
                               isim_error *err)
{
    bool *on = NULL, *keep = NULL;
    size_t *idx = NULL;
    isim_status st = ISIM_OK;
    /* until simulated, a point's speed is the closed form's under load: the frontier then
     * moves little once its points are simulated */
    for (size_t i = 0; i < ok->n; i++) {
        ok->v[i].tpot_s = ok->v[i].tpot_loaded_s;
        ok->v[i].tokens_per_s_per_user = 1 / ok->v[i].tpot_loaded_s;
    }
    for (bool again = true; again && !st;) {
        free(on);
        free(keep);
        free(idx);
        size_t cap = ok->n ? ok->n : 1;
        on = calloc(cap, sizeof *on);
        keep = calloc(cap, sizeof *keep);
        idx = malloc(cap * sizeof *idx);
        if (!on || !keep || !idx) {
            st = isim__plan_fail(err, "out of memory");
            break;
        }
        if ((st = frontier_marks(r, ok, on, err)))
            break;
        size_t n = 0;
        for (size_t i = 0; i < ok->n; i++)
            if (on[i] && !ok->v[i].simulated)
                idx[n++] = i;
        /* the frontier moves with the simulated figures: found again until it holds none
         * unsimulated */
        again = n > 0;
        if ((st = simulate_round(r, ok->v, idx, n, keep, err)))
            break;
        plan->simulated += n;
        size_t kept = 0, k = 0;
        for (size_t i = 0; i < ok->n; i++) {
            bool stays = true;
            if (k < n && idx[k] == i)
                stays = keep[k++];
            if (stays)
                ok->v[kept++] = ok->v[i];
            else
                plan->rejected_by_simulation++;
        }
        ok->n = kept;
    }
    /* the answers come from simulated points only */
    size_t kept = 0;
    for (size_t i = 0; i < ok->n && !st; i++)
        if (ok->v[i].simulated)
            ok->v[kept++] = ok->v[i];
    if (!st)
        ok->n = kept;
    free(on);
    free(keep);
    free(idx);
    return st;
}
