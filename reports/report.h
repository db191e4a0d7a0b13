/* infersim reports: the forms a prediction or a specification is handed over in.
 *   JSON  - for programs (cJSON); stable field names with units in them (docs/output.md);
 *   CSV   - one header line and one row per result;
 *   table - for people.
 * Numbers are rounded to 6 significant digits so that output is short and byte-identical
 * for the same input. Writers take the caller's stream; they never print elsewhere. */
#ifndef ISIM_REPORT_H
#define ISIM_REPORT_H

#include <stdio.h>

#include "planner/planner.h"
#include "sim/dataset.h"
#include "sim/serve.h"
#include "sim/sim.h"

/* The prediction as a JSON document (a malloc'd string the caller frees), or NULL when
 * out of memory. */
char *isim_report_predict_json(const isim_model *m, const isim_hw *hw, const isim_query *q,
                               const isim_result *r);
/* The prediction with "traffic": the simulation of t (isim_serve_run), its percentiles of
 * TTFT, TPOT and end-to-end latency in ms, throughput and queue. */
char *isim_report_predict_traffic_json(const isim_model *m, const isim_hw *hw, const isim_query *q,
                                       const isim_result *r, const isim_traffic *t,
                                       const isim_serve_result *s);
/* A simulation alone (infersim simulate): the configuration, the traffic's figures and, with
 * requests, every request (JSON; NULL when out of memory); the figures for people; one CSV
 * row per request (a trace read from a file adds each request's place in it, NAME:LINE). A
 * trace is named by its file's base name. */
char *isim_report_serve_json(const isim_model *m, const isim_hw *hw, const isim_query *q,
                             const isim_traffic *t, const isim_serve_result *s, bool requests);
void isim_report_serve_table(FILE *out, const isim_traffic *t, const isim_serve_result *s);
void isim_report_serve_csv(FILE *out, const isim_traffic *t, const isim_serve_result *s);
/* The table's figures without its heading line (for a run measured rather than simulated). */
void isim_report_serve_figures(FILE *out, const isim_traffic *t, const isim_serve_result *s);
/* A serving run of the CPU engine (infersim run --engine cpu --rate|--concurrency): what it
 * ran on, and the traffic's figures with every request as a simulation's (NULL when out of
 * memory). */
typedef struct isim_report_engine {
    const char *weights, *kv, *kernels;
    int threads;
    double warm_tokens_per_s; /* the warm-up pass's rate */
    double others_cpu_share;  /* other programs' share of the CPU time (NAN: unknown) */
} isim_report_engine;
char *isim_report_engine_serve_json(const isim_model *m, const isim_report_engine *e,
                                    const isim_traffic *t, const isim_serve_result *s);
/* One CSV row per pass of s->passes: when it began, its time, its composition (an
 * isim_step_mix), the sequences running and waiting. */
void isim_report_serve_passes_csv(FILE *out, const isim_serve_result *s);
/* One CSV row per generated token: its request, place, id, time from the first arrival and
 * the gap since the request's token before it; request i's tokens are [tok_at[i],
 * tok_at[i + 1]) of ids and token_s. */
void isim_report_serve_tokens_csv(FILE *out, const isim_serve_result *s, const size_t *tok_at,
                                  const int *ids, const double *token_s);
/* A simulation's figure by gnuplot (a .png or .svg, written whole or not at all): the
 * distributions of TTFT, TPOT and end-to-end latency (the share of requests at or under each
 * latency), and the requests waiting for admission and in the system over time, counted from
 * each request's arrival, admission and completion. */
isim_status isim_report_serve_plot(const char *path, const char *title, const isim_serve_result *s,
                                   isim_error *err);
/* The header line of the CSV form, then one row. */
void isim_report_predict_csv_header(FILE *out);
void isim_report_predict_csv_row(FILE *out, const isim_model *m, const isim_hw *hw,
                                 const isim_query *q, const isim_result *r);
void isim_report_predict_table(FILE *out, const isim_model *m, const isim_hw *hw,
                               const isim_query *q, const isim_result *r);

/* A specification: derived quantities (models) and every number with its source. */
char *isim_report_model_json(const isim_model *m);
char *isim_report_hw_json(const isim_hw *hw);
void isim_report_model_table(FILE *out, const isim_model *m);
void isim_report_hw_table(FILE *out, const isim_hw *hw);

/* One catalog line per entry, for `infersim list`. */
void isim_report_model_line(FILE *out, const isim_model *m, bool header);
void isim_report_hw_line(FILE *out, const isim_hw *hw, bool header);

/* A plan: JSON (malloc'd; `timing` adds elapsed_ms, the only field that varies between
 * runs), a table, CSV rows of every hardware's frontier, and a gnuplot plot of the
 * frontiers (.png or .svg; the file appears only when complete, drawn as PATH.tmp-PID.EXT
 * beside it and renamed). */
char *isim_report_plan_json(const isim_plan_request *r, const isim_plan *p, bool timing);
void isim_report_plan_table(FILE *out, const isim_plan_request *r, const isim_plan *p);
void isim_report_plan_csv(FILE *out, const isim_plan_request *r, const isim_plan *p);
isim_status isim_report_plan_plot(const isim_plan_request *r, const isim_plan *p, const char *path,
                                  isim_error *err);

/* A scenario's results: JSON with everything (malloc'd; `timing` adds elapsed_ms), CSV
 * with one row per point x hardware x frontier point (the swept values as columns; the
 * base first as point "base"), and a summary for people (the base point, and with
 * `points` every sweep point too). */
char *isim_report_scenario_json(const isim_scenario_result *res, bool timing);
void isim_report_scenario_csv(FILE *out, const isim_scenario_result *res);
void isim_report_scenario_table(FILE *out, const isim_scenario_result *res, bool points);
/* The plan request that point p's plan for model m answered, with the scenario's own
 * hardware (hw: room for every profile) for names: what the plan writers take. */
void isim_report_scenario_request(const isim_scenario_result *res, const isim_scenario_point *p,
                                  size_t m, const isim_hw **hw, isim_plan_request *r);

/* The report of a scenario's results into the existing directory dir: index.html
 * (self-contained, figures beside it), report.md, figures/ (gnuplot, PNG and SVG),
 * results.csv and results.json (docs/scenarios.md, "Reports"). The same results give
 * the same files. */
isim_status isim_report_scenario_write(const isim_scenario_result *res, const char *dir,
                                       isim_error *err);

/* x rounded to 6 significant digits (0 and non-finite values unchanged). */
double isim_report_round(double x);

/* ---- accuracy (docs/validation.md) ----------------------------------------------- */

/* Predicted against measured, log-log, one series of points per name (series[i] indexes
 * names), the diagonal and +-10% lines; a .png or .svg by gnuplot. */
isim_status isim_report_scatter(const char *path, const double *measured, const double *predicted,
                                const int *series, size_t n, const char *const *names, int n_series,
                                const char *title, const char *unit, isim_error *err);

#endif
