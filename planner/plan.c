/* isim_plan_run: validates a request, gathers the candidates of its fidelity, applies the
 * constraints, extracts the frontiers and answers the questions; explains an empty result. */
#include "planner/internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

isim_status isim__plan_fail(isim_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    isim_status st = isim_error_setv(err, ISIM_ENOMEM, NULL, 0, 0, fmt, ap);
    va_end(ap);
    return st;
}

isim_status isim__plan_invalid(isim_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    isim_status st = isim_error_setv(err, ISIM_EINVAL, NULL, 0, 0, fmt, ap);
    va_end(ap);
    return st;
}

double isim__fleet_cost(double demand_tokens_per_s, double demand_sequences, double batch,
                        double tokens_per_s, double tpot_s, double devices, double usd_per_device_h,
                        double *replicas)
{
    double by_rate = demand_tokens_per_s > 0 ? ceil(demand_tokens_per_s / tokens_per_s) : 0;
    double by_seqs = demand_sequences > 0 ? ceil(demand_sequences / batch) : 0;
    *replicas = fmax(by_rate, by_seqs);
    double served = demand_tokens_per_s > 0 ? demand_tokens_per_s
                                            : fmin(demand_sequences, *replicas * batch) / tpot_s;
    return 1e6 * *replicas * devices * usd_per_device_h / 3600 / served;
}

isim_status isim__fail_at(isim_error *err, const char *file, int line, int column, const char *fmt,
                          ...)
{
    va_list ap;
    va_start(ap, fmt);
    isim_status st = isim_error_setv(err, ISIM_ESCHEMA, file, line, column, fmt, ap);
    va_end(ap);
    return st;
}

const char *isim_plan_constraint_name(isim_plan_constraint c)
{
    static const char *const names[] = {"min_speed", "max_cost", "tpot_slo", "ttft_slo"};
    return (unsigned)c < ISIM_PLAN_CONSTRAINTS ? names[c] : "?";
}

void isim_plan_request_init(isim_plan_request *r)
{
    memset(r, 0, sizeof *r);
    r->fidelity = ISIM_DEPLOY;
    r->input_tokens = 1024;
    r->output_tokens = 1024;
    r->draft_weights = ISIM_BF16;
    r->spec_alpha = 0.8;
    r->spec_gamma_max = 5;
    r->max_devices = 64;
    r->customer_alpha = 3;
    r->use_pp = true;
    r->grid_devices = 400;
    r->grid_batch = 400;
    r->details = true;
    r->sim_requests = 1000;
    r->seed = 1;
}

void isim_plan_free(isim_plan *p)
{
    if (!p)
        return;
    free(p->frontier);
    if (p->hw_frontier)
        for (size_t i = 0; i < p->n_hw; i++)
            free(p->hw_frontier[i]);
    free(p->hw_frontier);
    free(p->hw_n);
    free(p->hw_answers);
    free(p);
}

double isim__plan_price(const isim_plan_request *r, int h)
{
    return r->usd_per_device_h ? r->usd_per_device_h[h] : r->hw[h]->cloud_usd_per_h;
}

static isim_status validate(const isim_plan_request *r, isim_error *err)
{
    if (!r->model || !r->hw || r->n_hw == 0)
        return isim__plan_invalid(err, "a plan needs a model and at least one hardware profile");
    if (!(r->input_tokens >= 0 && r->input_tokens <= 1e9) ||
        !(r->output_tokens >= 1 && r->output_tokens <= 1e9))
        return isim__plan_invalid(err, "input tokens must be in [0, 1e9] and output tokens in "
                                       "[1, 1e9]");
    if (!(r->prefix_hit_rate >= 0 && r->prefix_hit_rate < 1))
        return isim__plan_invalid(err, "the prefix-cache hit rate must be in [0, 1), got %g",
                                  r->prefix_hit_rate);
    for (size_t h = 0; r->usd_per_device_h && h < r->n_hw; h++)
        if (!(r->usd_per_device_h[h] > 0) || !isfinite(r->usd_per_device_h[h]))
            return isim__plan_invalid(err, "the device-hour price of %s must be positive, got %g",
                                      r->hw[h]->id, r->usd_per_device_h[h]);
    if (r->fidelity == ISIM_PAPER && r->demand_sequences > 0)
        return isim__plan_invalid(err, "a demand in concurrent sequences needs the deploy "
                                       "fidelity");
    const double limits[] = {r->min_tokens_per_s_per_user,
                             r->max_cost_usd_per_mtok,
                             r->demand_tokens_per_s,
                             r->demand_sequences,
                             r->tpot_slo_s,
                             r->ttft_slo_s};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++)
        if (!(limits[i] >= 0) || !isfinite(limits[i]))
            return isim__plan_invalid(err, "constraints must be positive numbers (0 for none)");
    if (r->min_tokens_per_s_per_user > 0 && r->tpot_slo_s > 0 &&
        1 / r->tpot_slo_s < r->min_tokens_per_s_per_user)
        return isim__plan_invalid(err,
                                  "contradictory constraints: a TPOT SLO of %g ms allows at most "
                                  "%g tokens/s per user, below the minimum speed of %g",
                                  r->tpot_slo_s * 1e3, 1 / r->tpot_slo_s,
                                  r->min_tokens_per_s_per_user);
    if (r->fidelity == ISIM_PAPER) {
        if (r->ttft_slo_s > 0)
            return isim__plan_invalid(err, "the paper fidelity's frontier has no TTFT; use the "
                                           "deploy fidelity for a TTFT SLO");
        if (r->ttft_objective)
            return isim__plan_invalid(err, "the paper fidelity's frontier has no TTFT objective");
        if (r->grid_devices < 2 || r->grid_batch < 2 || r->grid_devices > 4000 ||
            r->grid_batch > 4000)
            return isim__plan_invalid(err, "the paper grid must be 2 to 4000 points a side");
    } else if (r->max_devices < 1 || r->max_devices > 100000) {
        return isim__plan_invalid(err, "max devices must be in [1, 100000], got %d",
                                  r->max_devices);
    }
    if (r->draft && (!(r->spec_alpha > 0 && r->spec_alpha < 1) || r->spec_gamma_max < 1 ||
                     r->spec_gamma_max > 64))
        return isim__plan_invalid(err, "speculative decoding needs alpha in (0, 1) and a gamma "
                                       "limit in [1, 64]");
    if (r->fidelity == ISIM_PAPER && r->draft && r->spec_gamma_max < 2)
        return isim__plan_invalid(err, "the paper's speculative decoding searches gamma from 2; "
                                       "the limit must be at least 2");
    if (r->slo_percentile != 0) {
        if (!(r->slo_percentile >= 1 && r->slo_percentile <= 99.99))
            return isim__plan_invalid(err, "the SLO percentile must be in [1, 99.99], got %g",
                                      r->slo_percentile);
        if (r->fidelity != ISIM_DEPLOY)
            return isim__plan_invalid(err, "SLOs at a percentile are simulated in the deploy "
                                           "fidelity only");
        if (!(r->demand_tokens_per_s > 0))
            return isim__plan_invalid(err, "SLOs at a percentile need the traffic: a demand in "
                                           "tokens/s or requests/s");
        if (r->sim_requests < 1 || r->sim_requests > 1000000)
            return isim__plan_invalid(err, "requests simulated must be in [1, 1000000], got %lld",
                                      (long long)r->sim_requests);
    }
    if (!(r->customer_alpha > 0 && r->customer_alpha <= 100))
        return isim__plan_invalid(err, "the customer-choice exponent must be in (0, 100]");
    return ISIM_OK;
}

/* Which constraints a point misses (a bit per isim_plan_constraint). */
static unsigned misses(const isim_plan_request *r, const isim_plan_point *p)
{
    unsigned m = 0;
    if (r->min_tokens_per_s_per_user > 0 && p->tokens_per_s_per_user < r->min_tokens_per_s_per_user)
        m |= 1u << ISIM_PLAN_MIN_SPEED;
    if (r->max_cost_usd_per_mtok > 0 && p->cost_usd_per_mtok_output > r->max_cost_usd_per_mtok)
        m |= 1u << ISIM_PLAN_MAX_COST;
    if (r->tpot_slo_s > 0 && p->tpot_s > r->tpot_slo_s)
        m |= 1u << ISIM_PLAN_TPOT_SLO;
    /* at a percentile the simulation decides TTFT; the static batch's decode pass (the
     * batch running full, as replicas sized to the demand run it) screens TPOT and speed */
    if (r->ttft_slo_s > 0 && p->ttft_s > r->ttft_slo_s && !(r->slo_percentile > 0))
        m |= 1u << ISIM_PLAN_TTFT_SLO;
    return m;
}

/* The figure a constraint bounds, oriented so that lower is better. */
static double figure(isim_plan_constraint c, const isim_plan_point *p)
{
    switch (c) {
    case ISIM_PLAN_MIN_SPEED:
        return -p->tokens_per_s_per_user;
    case ISIM_PLAN_MAX_COST:
        return p->cost_usd_per_mtok_output;
    case ISIM_PLAN_TPOT_SLO:
        return p->tpot_s;
    default:
        return p->ttft_s;
    }
}

static void describe_point(const isim_plan_request *r, const isim_plan_point *p, char *buf,
                           size_t n)
{
    if (r->fidelity == ISIM_PAPER)
        snprintf(buf, n, "%.4g x %s at batch %.4g", p->devices, r->hw[p->hw]->id, p->batch);
    else
        snprintf(buf, n, "%g x %s, tp %d pp %d ep %d, batch %g, %s", p->devices, r->hw[p->hw]->id,
                 p->tp, p->pp, p->ep, p->batch, isim_dtype_name(p->weights));
}

/* Says which constraint removed everything and by how much it was missed: for each active
 * constraint, the best figure among the points that meet all the others. */
static void explain_empty(const isim_plan_request *r, const isim__points *all, isim_plan *plan)
{
    char *out = plan->empty_reason;
    size_t cap = sizeof plan->empty_reason, used = 0;
    if (all->n == 0) {
        used = (size_t)snprintf(out, cap, "no configuration is feasible (%llu evaluated:",
                                (unsigned long long)plan->evaluated);
        for (int i = 1; i < ISIM_REASON_COUNT && used < cap; i++)
            if (plan->infeasible_by_reason[i])
                used += (size_t)snprintf(out + used, cap - used, " %llu %s,",
                                         (unsigned long long)plan->infeasible_by_reason[i],
                                         isim_reason_text((isim_reason)i));
        if (used < cap && used > 0 && out[used - 1] == ',')
            used--;
        if (used < cap)
            snprintf(out + used, cap - used,
                     "); allow more devices per replica or a lower precision");
        return;
    }
    static const char *const what[] = {
        "tokens/s per user >=", "$ per M output tokens <=", "TPOT (ms) <=", "TTFT (ms) <="};
    const double limit[] = {r->min_tokens_per_s_per_user, r->max_cost_usd_per_mtok,
                            r->tpot_slo_s * 1e3, r->ttft_slo_s * 1e3};
    bool any = false;
    /* first against the points that meet every other constraint; when no constraint has
     * such points (each excludes the others' only candidates), against every point: the
     * constraints that no configuration meets even alone */
    for (int alone = 0; alone < 2 && !any; alone++)
        for (int c = 0; c < ISIM_PLAN_CONSTRAINTS && used < cap; c++) {
            if (!(limit[c] > 0))
                continue;
            const isim_plan_point *best = NULL;
            for (size_t i = 0; i < all->n; i++) {
                const isim_plan_point *p = &all->v[i];
                if (!alone && (misses(r, p) & ~(1u << c)))
                    continue;
                if (!best ||
                    figure((isim_plan_constraint)c, p) < figure((isim_plan_constraint)c, best))
                    best = p;
            }
            if (!best || !(misses(r, best) & (1u << c)))
                continue;
            double v = figure((isim_plan_constraint)c, best);
            double shown = c == ISIM_PLAN_MIN_SPEED ? -v : c >= ISIM_PLAN_TPOT_SLO ? v * 1e3 : v;
            /* the margin as a percentage, or as a factor once it passes 2x */
            double ratio = c == ISIM_PLAN_MIN_SPEED ? limit[c] / shown : shown / limit[c];
            char cond[64], where[160], margin[64];
            if (ratio >= 2)
                snprintf(margin, sizeof margin, "%.3g times %s", ratio,
                         c == ISIM_PLAN_MIN_SPEED ? "too slow" : "the limit");
            else
                snprintf(margin, sizeof margin, "%s by %.1f%%",
                         c == ISIM_PLAN_MIN_SPEED ? "short" : "over",
                         c == ISIM_PLAN_MIN_SPEED ? 100 * (1 - shown / limit[c])
                                                  : 100 * (shown / limit[c] - 1));
            snprintf(cond, sizeof cond, "%s %g", what[c], limit[c]);
            describe_point(r, best, where, sizeof where);
            used += (size_t)snprintf(
                out + used, cap - used, "%s%s: the best feasible is %.4g (%s), %s",
                any ? "; " : "no configuration meets ", cond, shown, where, margin);
            any = true;
        }
    if (!any)
        snprintf(out, cap,
                 "each constraint can be met, but no configuration meets all of them "
                 "at once");
}

static isim_status fill_details(const isim_plan_request *r, isim_plan_point *p, isim_error *err)
{
    isim_query q;
    isim_query_init(&q);
    q.fidelity = ISIM_PAPER;
    q.devices = p->devices;
    q.batch = p->batch;
    q.input_tokens = r->input_tokens;
    q.output_tokens = r->output_tokens;
    q.prefix_hit_rate = r->prefix_hit_rate;
    q.usd_per_device_h = isim__plan_price(r, p->hw);
    q.pp = r->use_pp ? 0 : 1;
    q.weights = p->weights;
    q.kv = p->kv;
    if (r->draft && p->spec) {
        q.draft = r->draft;
        q.draft_weights = r->draft_weights;
        q.spec_alpha = r->spec_alpha;
        q.spec_gamma_max = r->spec_gamma_max;
    }
    isim_result res;
    isim_status st = isim_predict(r->model, r->hw[p->hw], &q, &res, err);
    if (st)
        return st;
    p->pp_paper = res.pp_paper;
    p->pp = (int)lround(res.pp_paper);
    p->spec_gamma = res.spec_gamma;
    p->ttft_s = res.ttft_s;
    p->terms = res.decode;
    p->memory_bytes_per_device = res.memory.total;
    p->cost_usd_per_mtok_input = res.cost_usd_per_mtok_input;
    p->detailed = true;
    return ISIM_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The answers over the points of hardware `hw` (-1: all) that met the constraints, and
 * the recommended point of their frontier: Erdil 2025 §4, customers pick the point
 * maximising speed^alpha / price. */
static void answer(const isim_plan_request *r, const isim_plan_point *pts, size_t n,
                   const isim_plan_point *front, size_t n_front, int hw, isim_plan_answers *out)
{
    memset(out, 0, sizeof *out);
    out->customer_choice = -1;
    double best = -1;
    for (size_t i = 0; i < n_front; i++) {
        const isim_plan_point *p = &front[i];
        double u = pow(p->tokens_per_s_per_user, r->customer_alpha) / p->cost_usd_per_mtok_output;
        if (u > best) {
            best = u;
            out->customer_choice = (long)i;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const isim_plan_point *p = &pts[i];
        if (hw >= 0 && p->hw != hw)
            continue;
        isim_plan_answer *a = &out->cheapest_at_min_speed;
        if (r->min_tokens_per_s_per_user > 0 &&
            (!a->found || p->cost_usd_per_mtok_output < a->point.cost_usd_per_mtok_output)) {
            a->found = true;
            a->point = *p;
        }
        a = &out->fastest_at_max_cost;
        if (r->max_cost_usd_per_mtok > 0 &&
            (!a->found || p->tokens_per_s_per_user > a->point.tokens_per_s_per_user)) {
            a->found = true;
            a->point = *p;
        }
        a = &out->fewest_devices;
        if (r->fidelity == ISIM_DEPLOY && (r->demand_tokens_per_s > 0 || r->demand_sequences > 0)) {
            double total = p->replicas * p->devices;
            if (!a->found || total < a->total_devices ||
                (total == a->total_devices &&
                 p->cost_usd_per_mtok_output < a->point.cost_usd_per_mtok_output)) {
                a->found = true;
                a->point = *p;
                a->replicas = p->replicas;
                a->total_devices = total;
                /* 730 hours in a month (8760 / 12) */
                a->usd_per_month = total * isim__plan_price(r, p->hw) * 730;
            }
        }
    }
}

isim_status isim_plan_run(const isim_plan_request *r, isim_plan **out, isim_error *err)
{
    *out = NULL;
    isim_status st = validate(r, err);
    if (st)
        return st;
    double t0 = now_s();
    isim_plan *plan = calloc(1, sizeof *plan);
    isim__points all = {0}, ok = {0};
    size_t *idx = NULL, n_idx = 0;
    isim_plan_answers overall;
    if (!plan)
        return isim__plan_fail(err, "out of memory");
    plan->customer_choice = -1;
    plan->n_hw = r->n_hw;
    plan->hw_frontier = calloc(r->n_hw, sizeof *plan->hw_frontier);
    plan->hw_n = calloc(r->n_hw, sizeof *plan->hw_n);
    plan->hw_answers = calloc(r->n_hw, sizeof *plan->hw_answers);
    for (size_t h = 0; plan->hw_answers && h < r->n_hw; h++)
        plan->hw_answers[h].customer_choice = -1;
    if (!plan->hw_frontier || !plan->hw_n || !plan->hw_answers) {
        st = isim__plan_fail(err, "out of memory");
        goto cleanup;
    }
    /* no layout holds a sequence longer than the model's context: nothing to search */
    char why[200];
    if (!isim_model_context_fits(r->model, r->input_tokens, r->output_tokens, false, why,
                                 sizeof why)) {
        snprintf(plan->empty_reason, sizeof plan->empty_reason, "no configuration is feasible: %s",
                 why);
        goto done;
    }
    st = r->fidelity == ISIM_PAPER ? isim__paper_candidates(r, &all, plan, err)
                                   : isim__deploy_candidates(r, &all, plan, err);
    if (st)
        goto cleanup;
    for (size_t i = 0; i < all.n; i++) {
        unsigned m = misses(r, &all.v[i]);
        for (int c = 0; c < ISIM_PLAN_CONSTRAINTS; c++)
            plan->rejected_by_constraint[c] += (m >> c) & 1;
        if (!m && (st = isim__points_push(&ok, &all.v[i], err)))
            goto cleanup;
    }
    if (ok.n == 0) {
        explain_empty(r, &all, plan);
        goto done;
    }
    if (r->slo_percentile > 0) {
        if ((st = isim__plan_traffic(r, &ok, plan, err)))
            goto cleanup;
        if (ok.n == 0) {
            snprintf(plan->empty_reason, sizeof plan->empty_reason,
                     "no configuration meets the SLOs at the %gth percentile in simulation "
                     "(%llu simulated, each at 0.9, 0.75, 0.5 and 0.3 of its capacity)",
                     r->slo_percentile, (unsigned long long)plan->simulated);
            goto done;
        }
    }
    /* the paper fidelity's grid gives latency and cost; the rest for its frontier points */
    for (size_t i = 0; r->fidelity == ISIM_PAPER && r->details && i < ok.n; i++)
        if ((st = fill_details(r, &ok.v[i], err)))
            goto cleanup;
    /* the overall frontier */
    if ((st = isim__pareto(ok.v, ok.n, r->ttft_objective, &idx, &n_idx, err)))
        goto cleanup;
    plan->frontier = malloc(n_idx * sizeof *plan->frontier);
    if (!plan->frontier) {
        st = isim__plan_fail(err, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < n_idx; i++)
        plan->frontier[i] = ok.v[idx[i]];
    plan->n_frontier = n_idx;
    free(idx);
    idx = NULL;
    /* per hardware */
    for (size_t h = 0; h < r->n_hw; h++) {
        isim__points mine = {0};
        for (size_t i = 0; i < ok.n && !st; i++)
            if (ok.v[i].hw == (int)h)
                st = isim__points_push(&mine, &ok.v[i], err);
        if (!st)
            st = isim__pareto(mine.v, mine.n, r->ttft_objective, &idx, &n_idx, err);
        if (!st && n_idx && !(plan->hw_frontier[h] = malloc(n_idx * sizeof **plan->hw_frontier)))
            st = isim__plan_fail(err, "out of memory");
        for (size_t i = 0; !st && i < n_idx; i++)
            plan->hw_frontier[h][i] = mine.v[idx[i]];
        if (!st)
            plan->hw_n[h] = n_idx;
        free(idx);
        idx = NULL;
        isim__points_release(&mine);
        if (st)
            goto cleanup;
    }
    /* over all hardware, then each profile alone */
    answer(r, ok.v, ok.n, plan->frontier, plan->n_frontier, -1, &overall);
    plan->customer_choice = overall.customer_choice;
    plan->cheapest_at_min_speed = overall.cheapest_at_min_speed;
    plan->fastest_at_max_cost = overall.fastest_at_max_cost;
    plan->fewest_devices = overall.fewest_devices;
    for (size_t h = 0; h < r->n_hw; h++)
        answer(r, ok.v, ok.n, plan->hw_frontier[h], plan->hw_n[h], (int)h, &plan->hw_answers[h]);
    plan->min_cost_usd_per_mtok_output = INFINITY;
    for (size_t i = 0; i < plan->n_frontier; i++) {
        const isim_plan_point *p = &plan->frontier[i];
        plan->max_tokens_per_s_per_user =
            fmax(plan->max_tokens_per_s_per_user, p->tokens_per_s_per_user);
        plan->min_cost_usd_per_mtok_output =
            fmin(plan->min_cost_usd_per_mtok_output, p->cost_usd_per_mtok_output);
    }
done:
    plan->elapsed_s = now_s() - t0;
    *out = plan;
    plan = NULL;
cleanup:
    free(idx);
    isim__points_release(&all);
    isim__points_release(&ok);
    isim_plan_free(plan);
    return st;
}
