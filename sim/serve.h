/* Serving under traffic: a request-level discrete-event simulation of one replica of a
 * configuration. Requests arrive (open loop: Poisson or gamma gaps; closed loop: C clients
 * each sending its next request when the last one ends), wait for a slot and for KV cache
 * blocks, prefill in chunks that ride in the same passes as the running sequences' decode
 * tokens (continuous batching with chunked prefill, decodes first, as vLLM V1 schedules),
 * decode, and leave; a sequence the cache cannot grow is preempted and recomputed. Each
 * pass is timed by the deploy step model (isim_step_time), so the latency users see under
 * a load comes from the same model as every other figure. docs/serving.md. */
#ifndef ISIM_SERVE_H
#define ISIM_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/sim.h"

/* A length distribution, in tokens: fixed (a), uniform whole numbers in [a, b], or
 * lognormal with mean a and coefficient of variation b, rounded and held within [1, the
 * model's context]. */
typedef enum { ISIM_LEN_FIXED, ISIM_LEN_UNIFORM, ISIM_LEN_LOGNORMAL } isim_len_kind;
typedef struct isim_len_dist {
    isim_len_kind kind;
    double a, b;
} isim_len_dist;

typedef enum {
    ISIM_ARRIVE_POISSON, /* open loop: exponential gaps at `rate` */
    ISIM_ARRIVE_GAMMA,   /* open loop: gamma gaps at `rate` with coefficient of variation cv */
    ISIM_ARRIVE_CLOSED,  /* closed loop: `clients` clients, the first requests together */
    ISIM_ARRIVE_TRACE    /* the requests of `trace`, as they arrived */
} isim_arrival_kind;

/* One request of a trace: when it arrives (seconds, ascending from the first) and its
 * lengths. */
typedef struct isim_trace_req {
    double arrival_s;
    int64_t input_tokens, output_tokens;
} isim_trace_req;

#define ISIM_SERVE_MAX_REQUESTS 10000000

/* ---- a trace file (docs/formats.md, "Traces") ----------------------------------------- */

/* A CSV of one request a row, its columns found by their header names: arrival_s (seconds,
 * ascending; the first need not be 0), input_tokens and output_tokens (whole numbers from
 * 1); other columns are ignored. Read by the library's CSV reader (sim/csv_internal.h), and
 * refused past these limits or any of its rules at file:line:column. */
#define ISIM_TRACE_MAX_BYTES ((long long)1 << 30)
#define ISIM_TRACE_MAX_FIELDS 256        /* in a record */
#define ISIM_TRACE_MAX_FIELD_BYTES 4096  /* of a field as written, quotes included */
#define ISIM_TRACE_MAX_ARRIVAL_S 1e9     /* about 32 years */
#define ISIM_TRACE_MAX_TOKENS 1000000000 /* input_tokens, output_tokens */

/* Where a request's input_tokens field is written in the file. */
typedef struct isim_trace_at {
    int line, column;
} isim_trace_at;

typedef struct isim_trace {
    char *path;          /* as given to isim_trace_load */
    isim_trace_req *req; /* n requests, in the file's order */
    isim_trace_at *at;   /* of each */
    size_t n;            /* [1, ISIM_SERVE_MAX_REQUESTS] */
} isim_trace;

/* Reads the trace at path (a regular file or a pipe) into *out (NULL on failure): ISIM_EIO
 * when it cannot be read, ISIM_EPARSE for bad CSV, ISIM_ESCHEMA for a missing or duplicated
 * column, a value that is not one, out of range or out of order, or a limit passed. */
isim_status isim_trace_load(const char *path, isim_trace **out, isim_error *err);
/* ISIM_ESCHEMA at its place in the file for the first request longer than m's context
 * (input + output tokens), which the simulator would refuse by its number alone. */
isim_status isim_trace_fits(const isim_trace *t, const isim_model *m, isim_error *err);
void isim_trace_free(isim_trace *t);
/* The passes a simulation may take at most, counted before it starts as if every request
 * ran alone: requests x (longest output + chunks of the longest prompt). A bound on the
 * run's time (a pass costs about a microsecond), stated rather than discovered. */
#define ISIM_SERVE_MAX_PASSES 1e9

typedef struct isim_traffic {
    isim_arrival_kind kind;
    double rate;      /* requests per second, (0, 1e6] (open loop) */
    double cv;        /* gamma: the gaps' coefficient of variation, (0, 10] */
    int64_t clients;  /* closed loop: [1, requests] */
    int64_t requests; /* [1, ISIM_SERVE_MAX_REQUESTS] */
    isim_len_dist input, output;
    double prefix_hit; /* share of each prompt already in the prefix cache, [0, 1) */
    uint64_t seed;
    const isim_trace_req *trace; /* ISIM_ARRIVE_TRACE: `requests` of them (input and output
                                    are not drawn) */
    const isim_trace *file;      /* the file they were read from, for reports; or NULL */
} isim_traffic;

/* Whose scheduler (docs/serving.md, "Policies"):
 *   VLLM   - vLLM V1: each pass takes the running sequences' decode tokens first, then chunks
 *            of prompts, within the token budget; a sequence the KV cache cannot grow
 *            preempts the latest admitted, which is recomputed;
 *   SGLANG - SGLang without mixed chunks (ServerArgs.enable_mixed_chunk = False, its
 *            default): a pass of prompt chunks whenever one can run, else a pass of decodes;
 *   TRTLLM - TensorRT-LLM's in-flight batching under GUARANTEED_NO_EVICT (its default
 *            capacity policy): decodes and prompt chunks share a pass as in vLLM, and a
 *            request is admitted only when the cache holds its whole prompt and output,
 *            reserved at once, so that none is ever preempted. */
typedef enum { ISIM_POLICY_VLLM, ISIM_POLICY_SGLANG, ISIM_POLICY_TRTLLM } isim_sched_policy;
/* "vllm", "sglang", "trtllm" */
const char *isim_sched_policy_name(isim_sched_policy p);
/* false when name is none of those */
bool isim_sched_policy_parse(const char *name, isim_sched_policy *out);

/* The engine's scheduler, for one replica (every data-parallel group together). */
typedef struct isim_sched {
    isim_sched_policy policy; /* ISIM_POLICY_VLLM */
    int64_t max_seqs;         /* running sequences at most per data-parallel group, >= 1 */
    int64_t token_budget;     /* tokens per pass per group (decode tokens and prefill chunks);
                                 0 = the profile's prefill_chunk_tokens */
    int64_t block_tokens;     /* KV cache block, tokens; 0 = 16 (vLLM's default block size) */
    double kv_tokens;         /* KV cache per group, tokens; 0 = the memory model's */
} isim_sched;

typedef struct isim_stats {
    double mean, p50, p90, p99, max;
} isim_stats;

/* One request as it was served; times in seconds from the first arrival. */
typedef struct isim_served {
    double arrival_s, admitted_s, first_token_s, done_s; /* admitted: its first admission */
    int64_t input_tokens, output_tokens, preemptions;
} isim_served;

typedef struct isim_goodput {
    double ttft_slo_s, tpot_slo_s; /* both 0: no targets were given */
    size_t within;
    double share, per_s;
} isim_goodput;

/* One pass as the simulation ran it: when it began, how long it took, what it computed
 * (per data-parallel group, as isim_step_time takes it), the sequences running in it
 * and those left waiting. */
typedef struct isim_pass {
    double start_s, time_s;
    isim_step_mix mix;
    int64_t running, waiting;
} isim_pass;

/* Options of a run. step_time, when set, times each pass instead of the step model: the
 * k-th pass (from 0) of composition mix, in seconds (> 0 and finite, or the run fails with
 * ISIM_EINVAL); it replays an engine's measured passes through this scheduler. keep_passes
 * keeps every pass in the result (passes, n_passes). */
typedef struct isim_serve_opts {
    double (*step_time)(void *ctx, size_t pass, const isim_step_mix *mix);
    void *ctx;
    bool keep_passes;
} isim_serve_opts;

typedef struct isim_serve_result {
    size_t n;
    isim_served *req;
    isim_stats ttft_s, tpot_s, e2e_s; /* tpot over the requests of two or more tokens */
    /* the gaps between consecutive tokens of a request, over every token after a first;
     * the quantiles from a histogram of 100 bins per decade (within 1.2%), mean and max
     * exact */
    isim_stats itl_s;
    double duration_s;                              /* the first arrival to the last completion */
    double input_tokens_per_s, output_tokens_per_s; /* the replica's, over the duration */
    double devices;                                 /* of the replica */
    double busy;                                    /* share of the duration a pass runs */
    double mean_running, mean_waiting;              /* sequences, averaged over time */
    size_t max_waiting, steps, preemptions;
    double kv_tokens;     /* the cache of the replica, tokens */
    int64_t max_running;  /* the scheduler's limit for the replica */
    int64_t token_budget; /* per pass, per group */
    isim_sched_policy policy;
    /* open loop: arrivals outran the service. The waiting queue grew through the second
     * half of the arrivals and ended holding over a tenth of the requests; by how much:
     * offered requests per second (over the arrivals) / served (all of them over the
     * duration, the replica's capacity when it is overloaded). */
    bool overloaded;
    double offered_rps, served_rps;
    isim_goodput goodput; /* isim_serve_goodput */
    isim_pass *passes;    /* isim_serve_opts.keep_passes: every pass, in order */
    size_t n_passes;
} isim_serve_result;

/* Validates traffic and sched: ISIM_EINVAL with the reason for a value out of range, a
 * length beyond the model's context, or a request that cannot fit the KV cache. */
isim_status isim_serve_check(const isim_model *m, const isim_step_ctx *x, const isim_sched *s,
                             const isim_traffic *t, isim_error *err);
/* Simulates t on the configuration of x (isim_step_ctx_new) with scheduler s. Every run
 * ends: each pass computes at least one token, and a pass that could compute none is
 * reported as ISIM_EINVAL rather than repeated. Deterministic under t->seed. */
isim_status isim_serve_run(const isim_model *m, const isim_step_ctx *x, const isim_sched *s,
                           const isim_traffic *t, isim_serve_result **out, isim_error *err);
/* isim_serve_run with options (o may be NULL). */
isim_status isim_serve_run_opts(const isim_model *m, const isim_step_ctx *x, const isim_sched *s,
                                const isim_traffic *t, const isim_serve_opts *o,
                                isim_serve_result **out, isim_error *err);
void isim_serve_result_free(isim_serve_result *r);
/* The requests a run of t draws (isim_serve_run serves these): out holds t->requests, in
 * order. Closed loop: the first `clients` arrive at 0 and the others' arrival_s is NAN (a
 * client sends its next request when its last one ends). For an engine serving the same
 * requests as the simulation; x may be NULL when s sets kv_tokens and token_budget. */
isim_status isim_serve_draw(const isim_model *m, const isim_step_ctx *x, const isim_sched *s,
                            const isim_traffic *t, isim_trace_req *out, isim_error *err);

/* ---- the figures of a run: the simulation's, and an engine's that served the same way -- */

/* The gaps between consecutive tokens of a run's requests, as a histogram of 100 log-spaced
 * bins per decade from 1 us to 10^4 s: its quantiles within 1.2%, its mean and largest
 * exact. */
typedef struct isim_itl_hist isim_itl_hist;
isim_itl_hist *isim_itl_hist_new(void); /* empty; NULL when out of memory */
void isim_itl_hist_free(isim_itl_hist *h);
void isim_itl_hist_add(isim_itl_hist *h, double gap_s, uint64_t k); /* k gaps of gap_s */

/* What a run measured over its passes, beside its requests' own times. */
typedef struct isim_serve_totals {
    double duration_s; /* the first arrival to the last completion */
    double busy_s;     /* the passes' time, summed */
    double running_s;  /* each pass's running sequences times its time, summed */
    /* the requests waiting for admission once the arrival past the middle one, and the
     * last one, had joined the queue */
    size_t waiting_mid, waiting_last;
    bool open_loop; /* open loop or a trace: overload is looked for */
} isim_serve_totals;

/* The figures of a run from its requests r->req (r->n of them, at least 1, in arrival
 * order, times from the first arrival), the totals and the gaps: the statistics of TTFT,
 * TPOT, E2E and the gaps, throughput, the busy share, the sequences running and waiting,
 * the preemptions and overload (isim_serve_result). The scheduler's figures, devices and
 * passes are the caller's to set. isim_serve_run ends with it. */
isim_status isim_serve_summarize(isim_serve_result *r, const isim_serve_totals *t,
                                 const isim_itl_hist *itl, isim_error *err);

/* Goodput (s->goodput): the requests whose TTFT and mean TPOT (a one-token request has
 * none) are within the targets (0: no target), as a share of all and per second of the run
 * (DistServe's goodput, Zhong et al. 2024). */
void isim_serve_goodput(isim_serve_result *s, double ttft_slo_s, double tpot_slo_s);

/* ---- the closed loop's steady state in closed form: the fast screen ------------------ */

/* C clients per data-parallel group, each sending its next request when its last one ends,
 * as public benchmarks run a concurrency. */
typedef struct isim_closed_loop {
    double clients;                     /* per data-parallel group, >= 1 */
    double input_tokens, output_tokens; /* the requests' mean lengths */
    bool same_lengths; /* every request of one length: a share of them stays in step */
    double lockstep;   /* that share, [0, 1] (a fitted parameter of the engine) */
    bool first_burst;  /* the run's first C requests arrive together and a tenth of the
                          requests are of that burst (a benchmark of 10 C requests) */
} isim_closed_loop;

typedef struct isim_closed_form {
    double ttft_s, tpot_s;
    double admitted;                    /* sequences per group the KV cache holds of the clients */
    double decode_s;                    /* one decode pass of the admitted sequences */
    double prompt_s;                    /* one request's prompt passes, riding with decodes */
    double burst_ttft_s, steady_ttft_s; /* TTFT of a burst and in the steady state */
} isim_closed_form;

/* The mean TTFT and TPOT of the closed loop c on the configuration of q (q->batch: the
 * replica's clients, q->input_tokens and q->output_tokens the means), from one or two
 * predictions: a request's TPOT carries the prompts of the requests that start during its
 * decode, its TTFT the pass under way, its own chunks and an M/D/1 queue of prompts ahead
 * of it; clients the KV cache cannot hold wait for a slot. res is the prediction at the
 * admitted batch; an infeasible one (other than memory) leaves out unset and res saying
 * why. The simulation (isim_serve_run) is the reference: tests/test_serve.c compares the
 * two at light and heavy load. */
isim_status isim_serve_closed_loop(const isim_model *m, const isim_hw *hw, const isim_query *q,
                                   const isim_closed_loop *c, isim_closed_form *out,
                                   isim_result *res, isim_error *err);
/* Sequences of b (per data-parallel group) whose KV cache fits beside the weights, res
 * the prediction at b sequences (every one at full context): paged engines admit requests
 * while the cache holds their tokens, on average the prompt and half the output. */
double isim_serve_admitted(const isim_result *res, double b, double input_tokens,
                           double output_tokens);
/* Requests per second one replica sustains with b sequences per data-parallel group (res:
 * the prediction at that batch): each group spends output_tokens decode passes of b
 * sequences per b requests, and the prompts' chunks ride in those passes (the closed form's
 * per-prompt time). Prefill included, so that replicas sized by it serve the prompts too. */
double isim_serve_capacity(const isim_result *res, double batch_per_group, double step_overhead_s,
                           double output_tokens);
/* The M/D/1 mean wait of a server busy rho of the time with service s (Pollaczek-Khinchine;
 * rho held at 0.95). */
double isim_md1_wait(double rho, double s);

/* qsort's comparison of doubles, ascending. */
int isim_cmp_double(const void *a, const void *b);
/* The q-quantile (type 7 of Hyndman and Fan 1996, numpy's default) of n sorted values. */
double isim_quantile_sorted(const double *v, size_t n, double q);

#endif
