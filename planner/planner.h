/* infersim planner: the frontier of speed per user against cost per token for serving a
 * model on candidate hardware, and the answers capacity planners ask of it: the cheapest
 * configuration at a speed, the fastest at a price, the fewest devices for a demand, and
 * the alpha-weighted customer choice of Erdil 2025 §4.
 *   ISIM_PAPER  - the released code's pareto_fronts (a 400 x 400 grid of continuous device
 *                 counts and batches, one cheapest point per latency budget);
 *   ISIM_DEPLOY - whole devices x TP x PP x EP x batch x precisions x speculative
 *                 decoding, feasible configurations only, infeasible ones counted by reason.
 * Uses only sim/sim.h. Never prints. docs/planner.md describes the search. */
#ifndef ISIM_PLANNER_H
#define ISIM_PLANNER_H

#include <stdint.h>

#include "sim/sim.h"

/* One configuration with its figures. */
typedef struct isim_plan_point {
    int hw;             /* index into the request's hardware */
    double devices;     /* devices of one replica (continuous in paper fidelity) */
    double batch;       /* sequences per replica */
    int tp, pp, ep, dp; /* deploy layout; paper: pp is rounded pp_paper, the rest 0 */
    double pp_paper;    /* paper: pipeline degree chosen (may be fractional) */
    isim_dtype weights, kv;
    bool spec;      /* evaluated with the draft model loaded */
    int spec_gamma; /* draft tokens per step; 0 = plain decoding */
    double tpot_s, ttft_s;
    double tokens_per_s_per_user, tokens_per_s_per_device, tokens_per_s_total;
    double tokens_per_s_sustained;   /* deploy: output tokens/s one replica sustains while it
                                        also prefills its requests' prompts
                                        (isim_serve_capacity x output tokens) */
    double cost_usd_per_mtok_output; /* with a demand (deploy): the fleet's, idle share included */
    double cost_usd_per_mtok_input;
    double replicas;  /* with a demand (deploy): replicas serving it */
    isim_terms terms; /* per output token */
    double memory_bytes_per_device;
    bool detailed;  /* terms, TTFT and memory filled in */
    bool simulated; /* slo_percentile: TTFT, TPOT (and speed) are that percentile of the
                       requests simulated at load_rps per replica, replicas and cost those
                       that meet the SLOs there */
    double load_rps;
    int64_t sim_requests; /* requests that simulation ran (fewer for a small batch) */
    double tpot_loaded_s; /* deploy: the closed form's mean TPOT with the batch running full
                             and its requests' prompts riding in the passes (the screen) */
} isim_plan_point;

typedef enum {
    ISIM_PLAN_MIN_SPEED,
    ISIM_PLAN_MAX_COST,
    ISIM_PLAN_TPOT_SLO,
    ISIM_PLAN_TTFT_SLO,
    ISIM_PLAN_CONSTRAINTS
} isim_plan_constraint;
const char *isim_plan_constraint_name(isim_plan_constraint c); /* "min_speed", ... */

typedef struct isim_plan_request {
    isim_fidelity fidelity; /* ISIM_DEPLOY */
    const isim_model *model;
    const isim_hw *const *hw;
    size_t n_hw;
    double input_tokens, output_tokens; /* 1024, 1024 */
    double prefix_hit_rate;             /* share of each prompt in the prefix cache; 0 */
    const double *usd_per_device_h;     /* per hardware (n_hw): the cost model's device-hour
                                           price; NULL = each profile's cloud price */
    /* constraints, 0 = none */
    double min_tokens_per_s_per_user;
    double max_cost_usd_per_mtok;
    double demand_tokens_per_s; /* paper: the code's cap batch / latency <= demand;
                                   deploy: replicas to serve it, and the fewest devices */
    double demand_sequences;    /* deploy: concurrent sequences to hold (replicas of `batch`
                                   each); with a tokens/s demand too, the replicas meet both */
    double tpot_slo_s, ttft_slo_s;
    /* deploy with demand_tokens_per_s: the SLOs (and the minimum speed) hold at this
     * percentile of the requests, simulated under Poisson arrivals of the demand's requests
     * (demand / output tokens per second) spread over the replicas (docs/planner.md, "Under
     * traffic"); 0: the static batch's figures, as without traffic. [1, 99.99] */
    double slo_percentile;
    int64_t sim_requests; /* requests simulated per configuration; 1000 */
    uint64_t seed;        /* of the simulated arrivals; 1 */
    /* search space */
    const isim_dtype *weights; /* NULL: the model's release precision */
    size_t n_weights;
    const isim_dtype *kv; /* NULL: bf16 */
    size_t n_kv;
    const isim_model *draft;  /* speculative decoding: NULL = none */
    isim_dtype draft_weights; /* bf16: the paper keeps 16-bit drafts */
    double spec_alpha;        /* 0.8 */
    int spec_gamma_max;       /* 5 */
    int max_devices;          /* deploy: devices of one replica at most (64) */
    bool allow_cross_domain_tp;
    bool ttft_objective;          /* deploy: TTFT as a third objective of the frontier */
    double customer_alpha;        /* speed^alpha / price; 3 */
    bool use_pp;                  /* paper: the code's PP list (true, as in the paper's plots) */
    int grid_devices, grid_batch; /* paper: 400 x 400 */
    double grid_min_devices;      /* paper: first device count of the grid; 0 = the code's
                                     weights / HBM */
    bool details;                 /* fill terms, TTFT and memory of the frontier points (true) */
    bool exhaustive;              /* deploy: no pruning (every batch of every layout); for tests */
    int threads; /* paper grid, and slo_percentile's simulations: 0 = one per CPU */
} isim_plan_request;

void isim_plan_request_init(isim_plan_request *r);

/* An answer to one question; found = false when nothing qualifies. */
typedef struct isim_plan_answer {
    bool found;
    isim_plan_point point;
    double replicas, total_devices, usd_per_month; /* fewest-devices answer only */
} isim_plan_answer;

/* The answers for one hardware profile alone. */
typedef struct isim_plan_answers {
    long customer_choice; /* index into that profile's frontier; -1 when it has none */
    isim_plan_answer cheapest_at_min_speed, fastest_at_max_cost, fewest_devices;
} isim_plan_answers;

typedef struct isim_plan {
    isim_plan_point *frontier; /* overall, by speed ascending (cost descending) */
    size_t n_frontier;
    isim_plan_point **hw_frontier; /* per hardware, same order; hw_n[i] points */
    size_t *hw_n;
    size_t n_hw;
    long customer_choice; /* index into frontier; -1 when empty */
    double max_tokens_per_s_per_user, min_cost_usd_per_mtok_output;
    isim_plan_answer cheapest_at_min_speed; /* with min_tokens_per_s_per_user */
    isim_plan_answer fastest_at_max_cost;   /* with max_cost_usd_per_mtok */
    isim_plan_answer fewest_devices;        /* deploy with demand_tokens_per_s */
    isim_plan_answers *hw_answers;          /* n_hw: the same, per hardware profile */
    uint64_t evaluated;                     /* configurations predicted */
    uint64_t simulated;                     /* slo_percentile: configurations simulated */
    uint64_t rejected_by_simulation;        /* of those, missing the SLOs at every load tried */
    uint64_t infeasible_by_reason[ISIM_REASON_COUNT];
    uint64_t rejected_by_constraint[ISIM_PLAN_CONSTRAINTS];
    double elapsed_s;
    /* When the frontier is empty: which constraint removed everything and by how much it
     * was missed, in one line. */
    char empty_reason[640];
} isim_plan;

/* Runs the search. ISIM_EINVAL for a request out of range (the message names the field).
 * An empty frontier is not an error: empty_reason says why. */
/* Whether two points are the same configuration (hardware, devices, batch, layout,
 * precisions, speculative setting); structures are not compared byte for byte, their
 * padding being undefined. */
bool isim_plan_point_same(const isim_plan_point *a, const isim_plan_point *b);

isim_status isim_plan_run(const isim_plan_request *r, isim_plan **out, isim_error *err);
void isim_plan_free(isim_plan *p); /* NULL is a no-op */

/* ---- scenarios: sweeps, cost models, sensitivity (docs/scenarios.md) ---------------- */

/* A device-hour of h under the settings' cost model: the cloud price, or when owned the
 * purchase over its life plus power (TDP x server factor x average fraction x PUE) at
 * the electricity price plus colocation on the IT load. False, with the reason in `why`,
 * when the profile lacks what the cost model needs. */
bool isim_scenario_price(const isim_hw *h, const isim_scenario_settings *s, double *usd_per_h,
                         char *why, size_t n);

/* The plan request of model m (draft: its speculative draft, or NULL) under scenario s's
 * settings v; the hardware and its prices are the caller's to set. */
void isim_scenario_request(const isim_scenario *s, const isim_scenario_settings *v,
                           const isim_model *m, const isim_model *draft, isim_plan_request *r);

/* One point of a scenario: the settings in force and, per model, the plan over the
 * hardware that could be priced. */
typedef struct isim_scenario_point {
    const char **values; /* per sweep: the value in force (text); NULL for the base */
    isim_scenario_settings settings;
    double *usd_per_device_h; /* per scenario hardware; NAN where it could not be priced */
    double *device_w;         /* per scenario hardware: average power drawn by one device
                                 (TDP x cost.power_fraction_of_tdp); NAN without a rating */
    char (*unpriced)[200];    /* per scenario hardware: why not, "" when priced */
    size_t n_priced;
    size_t *hw_index;  /* plan hardware k is scenario hardware hw_index[k] */
    isim_plan **plans; /* per model; NULL when nothing could be priced */
} isim_scenario_point;

/* Energy of one output token of configuration x (x->hw: scenario hardware index) at
 * point p: the decode step's device energy, devices x average power x time per output
 * token / sequences in the batch, and the facility's, that times the server factor and the
 * PUE. False (both NAN) when the hardware has no power rating. */
bool isim_scenario_energy(const isim_scenario_point *p, const isim_plan_point *x, double *device_j,
                          double *facility_j);

/* One input of the sensitivity chart, at the recommended configuration held fixed; costs
 * are the configuration's own per token at its batch (not a fleet's whole replicas). */
typedef struct isim_sensitivity_bar {
    /* the input ("hw.b200.memory.bandwidth_gbps"): a scenario's path, or a default input's
     * "hw." id "." key path, each at most ISIM_MAX_NAME */
    char path[2 * ISIM_MAX_NAME + 8];
    char low_text[ISIM_MAX_NAME + 1], high_text[ISIM_MAX_NAME + 1];
    double cost_low, cost_high;     /* $ per M output tokens; NAN when infeasible */
    double tpot_low_s, tpot_high_s; /* NAN when infeasible */
} isim_sensitivity_bar;

/* The sensitivity of one model's recommended configuration. */
typedef struct isim_sensitivity {
    bool found;            /* false: the base plan recommends nothing */
    isim_plan_point point; /* the configuration (point.hw: scenario hardware index) */
    double cost_base, tpot_base_s;
    size_t n_bars;
    isim_sensitivity_bar *bars; /* largest swing first */
} isim_sensitivity;

typedef struct isim_scenario_result {
    const isim_scenario *scenario; /* borrowed */
    size_t n_models, n_hw;
    isim_model **models; /* the scenario's models and hardware as written */
    isim_hw **hw;
    isim_model *draft;        /* NULL without speculative decoding */
    isim_scenario_point base; /* the scenario as written */
    size_t n_points;
    isim_scenario_point *points;   /* the sweeps' points (none without sweeps) */
    isim_sensitivity *sensitivity; /* per model, around the base point */
    uint64_t evaluated;            /* configurations predicted, all points and plans */
    double elapsed_s;
} isim_scenario_result;

typedef struct isim_scenario_run_opts {
    const char *data_dir; /* holding models/ and hw-profiles/ */
    int threads;          /* points run in parallel; 0 = one per CPU */
    void (*progress)(void *ctx, size_t done, size_t total); /* may be NULL; called from the
                                                               workers, one at a time */
    void *progress_ctx;
} isim_scenario_run_opts;

/* Checks every sweep and sensitivity value against the specifications it changes
 * (file:line:col of the value on error), then runs the base point, the sweeps' points
 * and the sensitivity. */
isim_status isim_scenario_run(const isim_scenario *s, const isim_scenario_run_opts *o,
                              isim_scenario_result **out, isim_error *err);
void isim_scenario_result_free(isim_scenario_result *r); /* NULL is a no-op */

#endif
