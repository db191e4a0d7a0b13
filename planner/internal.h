/* Internals of the planner shared by its files. */
#ifndef ISIM_PLANNER_INTERNAL_H
#define ISIM_PLANNER_INTERNAL_H

#include "planner/planner.h"

/* Fills err with ISIM_ENOMEM-free messages: an out-of-memory or invalid-request error. */
isim_status isim__plan_fail(isim_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
isim_status isim__plan_invalid(isim_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A specification error at file:line:col (line 0: the file alone). */
isim_status isim__fail_at(isim_error *err, const char *file, int line, int column, const char *fmt,
                          ...) __attribute__((format(printf, 5, 6)));

/* Whole replicas of `devices` at `usd_per_device_h` serving a demand of output tokens/s
 * and/or concurrent sequences with a configuration of `batch` sequences that sustains
 * tokens_per_s output tokens/s while prefilling their prompts too (isim_serve_capacity)
 * at `tpot_s`: *replicas and the fleet's $ per M output tokens, idle capacity included. */
double isim__fleet_cost(double demand_tokens_per_s, double demand_sequences, double batch,
                        double tokens_per_s, double tpot_s, double devices, double usd_per_device_h,
                        double *replicas);

/* A growable array of points. */
typedef struct {
    isim_plan_point *v;
    size_t n, cap;
} isim__points;

/* The device-hour price of hardware h under the request's cost model. */
double isim__plan_price(const isim_plan_request *r, int h);

isim_status isim__points_push(isim__points *p, const isim_plan_point *x, isim_error *err);
void isim__points_release(isim__points *p);

/* Indices of the points on the frontier of (speed up, cost down[, TTFT down]), sorted by
 * speed ascending; ties keep the first point. *idx is malloc'd. */
isim_status isim__pareto(const isim_plan_point *v, size_t n, bool with_ttft, size_t **idx,
                         size_t *n_idx, isim_error *err);

/* The candidates of one fidelity: every point that may reach a frontier, constraints not
 * yet applied; counters of the plan updated. */
isim_status isim__paper_candidates(const isim_plan_request *r, isim__points *out, isim_plan *plan,
                                   isim_error *err);
isim_status isim__deploy_candidates(const isim_plan_request *r, isim__points *out, isim_plan *plan,
                                    isim_error *err);

/* slo_percentile: keeps the points of ok that meet the SLOs in simulation, their figures the
 * simulation's (planner/traffic.c). */
isim_status isim__plan_traffic(const isim_plan_request *r, isim__points *ok, isim_plan *plan,
                               isim_error *err);

#endif
