/* infersim validate --engine cpu --serving: the CPU engine serving requests under traffic
 * (runtime/cpu/serve.c) against the simulator (sim/serve.c) with the machine's calibrated
 * profile (docs/validation.md, "Serving on the CPU engine"). The same requests at three
 * open-loop loads and one closed loop, TTFT, TPOT and end-to-end latency compared at p50
 * and p90; the engine's passes replayed through the simulator's scheduler to part the
 * scheduler's error from the step model's; the engine against itself at one load. */
#include "cli/cli.h"
#include "reports/report.h"
#include "runtime/runtime.h"
#include "sim/dataset.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_validate_serving(cli_opt *opts);
int cli_validate_profile(const char *data, const char *profile, isim_hw **hw);

/* What is held fixed: short requests, so that the whole validation takes minutes on a
 * 2-core machine (about a second of prefill each for Llama 3.2 1B), and room for every
 * request the loads bring. */
#define VS_SEQS 32     /* running sequences at most */
#define VS_BLOCK 16    /* KV block, tokens */
#define VS_CLIENTS 4   /* the closed loop's */
#define VS_CAP_REQ 320 /* requests of the capacity's simulation */
static const isim_len_dist vs_in = {ISIM_LEN_UNIFORM, 64, 256}, vs_out = {ISIM_LEN_UNIFORM, 16, 64};
static const double vs_share[3] = {0.3, 0.6, 0.9};

enum { N_LOADS = 5, SPREAD = 4 }; /* three open loads, the closed loop, the 60% load again */
enum { M_TTFT, M_TPOT, M_E2E, N_METRICS };
static const char *const metric_name[N_METRICS] = {"TTFT", "TPOT", "E2E"};
static const char *const metric_key[N_METRICS] = {"ttft", "tpot", "e2e"};
enum { P_DECODE, P_PROMPT, P_MIXED, N_KINDS };
static const char *const kind_name[N_KINDS] = {"decodes only", "prompts only", "mixed"};

typedef struct {
    char name[32];
    isim_traffic t;
    isim_rt_serving eng;
    isim_serve_result *sim, *rep;
    size_t rep_same;       /* replayed passes of the engine's composition and start */
    isim_accuracy kind[3]; /* the step model against the engine's passes, by kind */
} vload;

static const isim_stats *stat_of(const isim_serve_result *r, int metric)
{
    return metric == M_TTFT ? &r->ttft_s : metric == M_TPOT ? &r->tpot_s : &r->e2e_s;
}

static double pct(double predicted, double measured)
{
    return (predicted - measured) / measured * 100;
}

/* A pass's time as the engine measured it, for the replay; the step model's past the
 * engine's log (a replay that took other passes). */
typedef struct {
    const isim_serve_result *eng;
    const isim_step_ctx *x;
} replay_ctx;

static double replay_pass(void *ctx, size_t k, const isim_step_mix *mix)
{
    const replay_ctx *c = ctx;
    return k < c->eng->n_passes ? c->eng->passes[k].time_s : isim_step_time(c->x, mix, NULL);
}

static bool same_pass(const isim_pass *a, const isim_pass *b)
{
    return a->start_s == b->start_s && a->mix.decode_seqs == b->mix.decode_seqs &&
           a->mix.prefill_tokens == b->mix.prefill_tokens &&
           a->mix.prefill_seqs == b->mix.prefill_seqs && a->mix.finishing == b->mix.finishing &&
           a->running == b->running && a->waiting == b->waiting;
}

static int pass_kind(const isim_step_mix *m)
{
    return m->prefill_tokens == 0 ? P_DECODE : m->decode_seqs == 0 ? P_PROMPT : P_MIXED;
}

/* The step model against each of the engine's passes, by kind. false when out of memory. */
static bool pass_errors(vload *l, const isim_step_ctx *x)
{
    const isim_serve_result *r = l->eng.res;
    size_t n = r->n_passes ? r->n_passes : 1;
    double *meas = malloc(n * sizeof *meas), *pred = malloc(n * sizeof *pred);
    bool ok = meas && pred;
    for (int k = 0; ok && k < N_KINDS; k++) {
        size_t m = 0;
        for (size_t p = 0; p < r->n_passes; p++)
            if (pass_kind(&r->passes[p].mix) == k) {
                meas[m] = r->passes[p].time_s;
                pred[m++] = isim_step_time(x, &r->passes[p].mix, NULL);
            }
        ok = isim_accuracy_of(meas, pred, m, &l->kind[k]) == ISIM_OK;
    }
    free(meas);
    free(pred);
    return ok;
}

/* One load: the engine serves it, the simulator simulates it and replays the engine's
 * passes. Prints the error. */
static int run_load(isim_rt *rt, const isim_model *m, const isim_step_ctx *x, const isim_sched *s,
                    vload *l)
{
    isim_error err = {0};
    fprintf(stderr, "validate: %s, %lld requests on the engine...\n", l->name,
            (long long)l->t.requests);
    isim_serve_opts keep = {.keep_passes = true};
    if (isim_rt_serve(rt, s, &l->t, 0, &l->eng, &err) ||
        isim_serve_run_opts(m, x, s, &l->t, &keep, &l->sim, &err))
        return cli_error(&err);
    const isim_serve_result *e = l->eng.res;
    isim_trace_req *tr = malloc(e->n * sizeof *tr);
    if (!tr)
        return cli_oom();
    for (size_t i = 0; i < e->n; i++)
        tr[i] =
            (isim_trace_req){e->req[i].arrival_s, e->req[i].input_tokens, e->req[i].output_tokens};
    isim_traffic rt_t = {.kind = ISIM_ARRIVE_TRACE, .requests = (int64_t)e->n, .trace = tr};
    replay_ctx rc = {e, x};
    isim_serve_opts o = {.step_time = replay_pass, .ctx = &rc, .keep_passes = true};
    isim_status st = isim_serve_run_opts(m, x, s, &rt_t, &o, &l->rep, &err);
    free(tr);
    if (st)
        return cli_error(&err);
    for (size_t p = 0; p < e->n_passes && p < l->rep->n_passes; p++)
        l->rep_same += same_pass(&e->passes[p], &l->rep->passes[p]);
    return pass_errors(l, x) ? CLI_OK : cli_oom();
}

/* The simulator's capacity for these requests: every slot kept busy by as many clients,
 * requests per second. */
static int capacity(const isim_model *m, const isim_step_ctx *x, const isim_sched *s, double *out)
{
    isim_traffic t = {.kind = ISIM_ARRIVE_CLOSED,
                      .clients = s->max_seqs,
                      .requests = VS_CAP_REQ,
                      .input = vs_in,
                      .output = vs_out,
                      .seed = 1};
    isim_serve_result *r = NULL;
    isim_error err = {0};
    if (isim_serve_run(m, x, s, &t, &r, &err))
        return cli_error(&err);
    *out = (double)r->n / r->duration_s;
    isim_serve_result_free(r);
    return CLI_OK;
}

/* The grid's options, which --serving does not take. */
static int serving_only(cli_opt *opts)
{
    static const char *const grid[] = {"dtype",    "batches",     "contexts",      "prompts",
                                       "steps",    "rounds",      "runs",          "no-mpi",
                                       "frontier", "no-frontier", "write-profiles"};
    for (size_t i = 0; i < sizeof grid / sizeof grid[0]; i++)
        if (cli_find(opts, grid[i])->value)
            return cli_usage_error("validate", "--%s shapes the engine's grid, not --serving",
                                   grid[i]);
    return CLI_OK;
}

static void write_summary(FILE *f, void *ctx)
{
    const vload *l = ctx;
    fprintf(f, "load,rate_per_s,clients,metric,percentile,engine_ms,simulated_ms,replayed_ms,"
               "error_pct,replay_error_pct\n");
    for (int k = 0; k < N_LOADS; k++)
        for (int mt = 0; mt < N_METRICS; mt++)
            for (int q = 0; q < 2; q++) {
                const isim_stats *e = stat_of(l[k].eng.res, mt), *s = stat_of(l[k].sim, mt),
                                 *r = stat_of(l[k].rep, mt);
                double ev = q ? e->p90 : e->p50, sv = q ? s->p90 : s->p50, rv = q ? r->p90 : r->p50;
                fprintf(f, "%s,%.6g,%lld,%s,%s,%.6g,%.6g,%.6g,%.4g,%.4g\n", l[k].name,
                        l[k].t.kind == ISIM_ARRIVE_CLOSED ? 0 : l[k].t.rate,
                        (long long)l[k].t.clients, metric_key[mt], q ? "p90" : "p50", ev * 1e3,
                        sv * 1e3, rv * 1e3, pct(sv, ev), pct(rv, ev));
            }
}

/* A request's TTFT, TPOT (NAN for one token) and E2E, seconds. */
static void latencies(const isim_served *r, double v[N_METRICS])
{
    v[M_TTFT] = r->first_token_s - r->arrival_s;
    v[M_TPOT] = r->output_tokens > 1
                    ? (r->done_s - r->first_token_s) / (double)(r->output_tokens - 1)
                    : NAN;
    v[M_E2E] = r->done_s - r->arrival_s;
}

static void write_requests(FILE *f, void *ctx)
{
    const vload *l = ctx;
    fprintf(f, "load,request,input_tokens,output_tokens,engine_arrival_s,simulated_arrival_s,"
               "engine_ttft_ms,simulated_ttft_ms,engine_tpot_ms,simulated_tpot_ms,engine_e2e_ms,"
               "simulated_e2e_ms,engine_preemptions,simulated_preemptions\n");
    for (int k = 0; k < N_LOADS; k++)
        for (size_t i = 0; i < l[k].eng.res->n; i++) {
            const isim_served *e = &l[k].eng.res->req[i], *s = &l[k].sim->req[i];
            double ve[N_METRICS], vs[N_METRICS];
            latencies(e, ve);
            latencies(s, vs);
            fprintf(f, "%s,%zu,%lld,%lld,%.9g,%.9g", l[k].name, i, (long long)e->input_tokens,
                    (long long)e->output_tokens, e->arrival_s, s->arrival_s);
            for (int mt = 0; mt < N_METRICS; mt++)
                fprintf(f, ",%.6g,%.6g", ve[mt] * 1e3, vs[mt] * 1e3);
            fprintf(f, ",%lld,%lld\n", (long long)e->preemptions, (long long)s->preemptions);
        }
}

typedef struct {
    const vload *l;
    const isim_step_ctx *x;
} passes_ctx;

static void write_passes(FILE *f, void *ctx)
{
    const passes_ctx *c = ctx;
    fprintf(f, "load,pass,start_s,measured_ms,predicted_ms,decode_seqs,decode_ctx,prefill_tokens,"
               "prefill_seqs,prefill_ctx,finishing,running,waiting\n");
    for (int k = 0; k < N_LOADS; k++) {
        const isim_serve_result *r = c->l[k].eng.res;
        for (size_t p = 0; p < r->n_passes; p++) {
            const isim_pass *a = &r->passes[p];
            fprintf(f, "%s,%zu,%.9g,%.6g,%.6g,%g,%.6g,%g,%g,%.6g,%g,%lld,%lld\n", c->l[k].name, p,
                    a->start_s, a->time_s * 1e3, isim_step_time(c->x, &a->mix, NULL) * 1e3,
                    a->mix.decode_seqs, a->mix.decode_ctx, a->mix.prefill_tokens,
                    a->mix.prefill_seqs, a->mix.prefill_ctx, a->mix.finishing,
                    (long long)a->running, (long long)a->waiting);
        }
    }
}

/* Mean decode sequences and prompt tokens per pass, and the share of mixed passes. */
static void composition(const isim_serve_result *r, double out[3])
{
    out[0] = out[1] = out[2] = 0;
    for (size_t p = 0; p < r->n_passes; p++) {
        out[0] += r->passes[p].mix.decode_seqs;
        out[1] += r->passes[p].mix.prefill_tokens;
        out[2] += pass_kind(&r->passes[p].mix) == P_MIXED;
    }
    for (int i = 0; i < 3 && r->n_passes; i++)
        out[i] /= (double)r->n_passes;
}

/* The engine against itself: the 60% load's second run against its first. */
static double spread_pct(const vload *l, int metric, bool p90)
{
    const isim_stats *a = stat_of(l[1].eng.res, metric), *b = stat_of(l[SPREAD].eng.res, metric);
    return pct(p90 ? b->p90 : b->p50, p90 ? a->p90 : a->p50);
}

static void print_text(const isim_model *m, const isim_hw *hw, const isim_sched *s,
                       const isim_rt *rt, double cap, const vload *l)
{
    printf("%s serving on the CPU engine against the simulator (profile %s): bf16 weights and "
           "KV cache, %d threads, %s kernels\n",
           m->name, hw->id, isim_rt_threads(rt), isim_rt_kernels(rt));
    printf("held fixed: prompts uniform %g-%g tokens, outputs uniform %g-%g, %lld requests a "
           "load (seed 1, the same at every load), at most %lld running, %lld tokens a pass, KV "
           "blocks of %lld tokens, a KV cache of %.0f tokens, no prefix cache\n",
           vs_in.a, vs_in.b, vs_out.a, vs_out.b, (long long)l[0].t.requests, (long long)s->max_seqs,
           (long long)s->token_budget, (long long)s->block_tokens, s->kv_tokens);
    printf("capacity the simulator predicts: %.4g requests/s (%lld clients keeping every slot "
           "busy, %d requests)\n",
           cap, (long long)s->max_seqs, VS_CAP_REQ);
    printf("error = (simulated - engine) / engine; replay: the simulator's scheduler on the "
           "engine's arrivals and pass times\n");
    printf("  %-24s %-5s | %10s %10s %8s | %10s %10s %8s | %8s %8s\n", "load", "", "engine p50",
           "simulated", "error", "engine p90", "simulated", "error", "replay50", "replay90");
    for (int k = 0; k < N_LOADS; k++)
        for (int mt = 0; mt < N_METRICS; mt++) {
            const isim_stats *e = stat_of(l[k].eng.res, mt), *s2 = stat_of(l[k].sim, mt),
                             *r = stat_of(l[k].rep, mt);
            printf("  %-24s %-5s | %7.1f ms %7.1f ms %+7.1f%% | %7.1f ms %7.1f ms %+7.1f%% | "
                   "%+7.1f%% %+7.1f%%\n",
                   mt ? "" : l[k].name, metric_name[mt], e->p50 * 1e3, s2->p50 * 1e3,
                   pct(s2->p50, e->p50), e->p90 * 1e3, s2->p90 * 1e3, pct(s2->p90, e->p90),
                   pct(r->p50, e->p50), pct(r->p90, e->p90));
        }
    printf("replay: passes of the engine's composition and start, replayed:");
    for (int k = 0; k < N_LOADS; k++)
        printf(" %zu of %zu%s", l[k].rep_same, l[k].eng.res->n_passes, k + 1 < N_LOADS ? "," : "");
    printf(" (the scheduler's error; what is left above is the step model's)\n");
    printf("pass times, the step model against the engine's passes (median |e|, P90 |e|, median "
           "e), and the share of the CPU time other programs took while the engine served:\n");
    for (int k = 0; k < N_LOADS; k++) {
        printf("  %-24s others %3.0f%%", l[k].name, l[k].eng.others_cpu_share * 100);
        for (int p = 0; p < N_KINDS; p++)
            if (l[k].kind[p].n)
                printf(" | %s %zu: %.1f%% %.1f%% %+.1f%%", kind_name[p], l[k].kind[p].n,
                       l[k].kind[p].median_abs_pct, l[k].kind[p].p90_abs_pct,
                       l[k].kind[p].median_pct);
        printf("\n");
    }
    printf("passes, engine against simulation (passes; mean decode sequences, prompt tokens a "
           "pass; mixed share):\n");
    for (int k = 0; k < N_LOADS; k++) {
        double a[3], b[3];
        composition(l[k].eng.res, a);
        composition(l[k].sim, b);
        printf("  %-24s %5zu; %.2f, %.1f; %.0f%%  against  %5zu; %.2f, %.1f; %.0f%%\n", l[k].name,
               l[k].eng.res->n_passes, a[0], a[1], a[2] * 100, l[k].sim->n_passes, b[0], b[1],
               b[2] * 100);
    }
    printf("the engine against itself (%s run again, its second run against its first):",
           l[1].name);
    for (int mt = 0; mt < N_METRICS; mt++)
        printf(" %s p50 %+.1f%% p90 %+.1f%%%s", metric_name[mt], spread_pct(l, mt, false),
               spread_pct(l, mt, true), mt + 1 < N_METRICS ? "," : "\n");
    printf("targets at the two lower loads: p50 within 10%%, p90 within 20%%:");
    for (int mt = 0; mt < N_METRICS; mt++) {
        bool met = true;
        for (int k = 0; k < 2; k++) {
            const isim_stats *e = stat_of(l[k].eng.res, mt), *s2 = stat_of(l[k].sim, mt);
            met = met && fabs(pct(s2->p50, e->p50)) <= 10 && fabs(pct(s2->p90, e->p90)) <= 20;
        }
        printf(" %s %s%s", metric_name[mt], met ? "met" : "not met",
               mt + 1 < N_METRICS ? "," : "\n");
    }
}

static cJSON *pair_json(cJSON *o, const char *key, double p50, double p90)
{
    cJSON *x = cJSON_AddObjectToObject(o, key);
    cJSON_AddNumberToObject(x, "p50", p50);
    cJSON_AddNumberToObject(x, "p90", p90);
    return x;
}

static int print_json(const isim_model *m, const isim_hw *hw, const isim_sched *s,
                      const isim_rt *rt, double cap, const vload *l)
{
    cJSON *j = cli_json_new();
    cJSON_AddStringToObject(j, "model", m->id);
    cJSON_AddStringToObject(j, "profile", hw->id);
    cJSON_AddStringToObject(j, "weights", "bf16");
    cJSON_AddStringToObject(j, "kv", "bf16");
    cJSON_AddNumberToObject(j, "threads", isim_rt_threads(rt));
    cJSON *h = cJSON_AddObjectToObject(j, "held_fixed");
    cJSON *in = cJSON_AddObjectToObject(h, "input_tokens");
    cJSON_AddNumberToObject(in, "min", vs_in.a);
    cJSON_AddNumberToObject(in, "max", vs_in.b);
    cJSON *out = cJSON_AddObjectToObject(h, "output_tokens");
    cJSON_AddNumberToObject(out, "min", vs_out.a);
    cJSON_AddNumberToObject(out, "max", vs_out.b);
    cJSON_AddNumberToObject(h, "requests", (double)l[0].t.requests);
    cJSON_AddNumberToObject(h, "seed", 1);
    cJSON_AddNumberToObject(h, "max_running_sequences", (double)s->max_seqs);
    cJSON_AddNumberToObject(h, "token_budget_per_pass", (double)s->token_budget);
    cJSON_AddNumberToObject(h, "kv_block_tokens", (double)s->block_tokens);
    cJSON_AddNumberToObject(h, "kv_cache_tokens", s->kv_tokens);
    cJSON_AddNumberToObject(j, "capacity_per_s", cap);
    cJSON *loads = cJSON_AddArrayToObject(j, "loads");
    for (int k = 0; k < N_LOADS; k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "load", l[k].name);
        bool closed = l[k].t.kind == ISIM_ARRIVE_CLOSED;
        cJSON_AddStringToObject(o, "arrivals", closed ? "closed" : "poisson");
        if (closed)
            cJSON_AddNumberToObject(o, "clients", (double)l[k].t.clients);
        else
            cJSON_AddNumberToObject(o, "rate_per_s", l[k].t.rate);
        static const char *const part[4] = {"engine_ms", "simulated_ms", "replayed_ms",
                                            "error_pct"};
        for (int w = 0; w < 5; w++) {
            cJSON *x = cJSON_AddObjectToObject(o, w < 4 ? part[w] : "replay_error_pct");
            for (int mt = 0; mt < N_METRICS; mt++) {
                const isim_stats *e = stat_of(l[k].eng.res, mt), *s2 = stat_of(l[k].sim, mt),
                                 *r = stat_of(l[k].rep, mt);
                if (w < 3) {
                    const isim_stats *v = w == 0 ? e : w == 1 ? s2 : r;
                    pair_json(x, metric_key[mt], v->p50 * 1e3, v->p90 * 1e3);
                } else if (w == 3) {
                    pair_json(x, metric_key[mt], pct(s2->p50, e->p50), pct(s2->p90, e->p90));
                } else {
                    pair_json(x, metric_key[mt], pct(r->p50, e->p50), pct(r->p90, e->p90));
                }
            }
        }
        if (isfinite(l[k].eng.others_cpu_share))
            cJSON_AddNumberToObject(o, "others_cpu_share", l[k].eng.others_cpu_share);
        cJSON *ps = cJSON_AddObjectToObject(o, "passes");
        cJSON_AddNumberToObject(ps, "engine", (double)l[k].eng.res->n_passes);
        cJSON_AddNumberToObject(ps, "simulated", (double)l[k].sim->n_passes);
        cJSON_AddNumberToObject(ps, "replayed_as_the_engine", (double)l[k].rep_same);
        cJSON *pt = cJSON_AddArrayToObject(o, "pass_time_error");
        for (int p = 0; p < N_KINDS; p++) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "passes", kind_name[p]);
            cJSON_AddNumberToObject(x, "n", (double)l[k].kind[p].n);
            cJSON_AddNumberToObject(x, "median_abs_pct", l[k].kind[p].median_abs_pct);
            cJSON_AddNumberToObject(x, "p90_abs_pct", l[k].kind[p].p90_abs_pct);
            cJSON_AddNumberToObject(x, "median_pct", l[k].kind[p].median_pct);
            if (!cJSON_AddItemToArray(pt, x))
                cJSON_Delete(x);
        }
        if (!cJSON_AddItemToArray(loads, o))
            cJSON_Delete(o);
    }
    cJSON *sp = cJSON_AddObjectToObject(j, "spread_pct");
    cJSON_AddStringToObject(sp, "load", l[1].name);
    for (int mt = 0; mt < N_METRICS; mt++)
        pair_json(sp, metric_key[mt], spread_pct(l, mt, false), spread_pct(l, mt, true));
    return cli_json_print(j);
}

int cli_validate_serving(cli_opt *opts)
{
    int rc = serving_only(opts), requests = 20, threads = 0;
    if (rc)
        return rc;
    const cli_opt *o;
    if (((o = cli_find(opts, "requests"))->value && !cli_int("validate", o, 4, 1000, &requests)) ||
        ((o = cli_find(opts, "threads"))->value && !cli_int("validate", o, 1, 4096, &threads)))
        return CLI_USAGE;
    const char *data = cli_data_dir(cli_find(opts, "data"));
    const char *model_id =
        cli_find(opts, "model")->value ? cli_find(opts, "model")->value : "llama-3.2-1b";
    const char *profile =
        cli_find(opts, "profile")->value ? cli_find(opts, "profile")->value : "local-cpu";
    const char *dir = cli_find(opts, "out")->value ? cli_find(opts, "out")->value : "validation";
    if ((rc = cli_writable_dir(dir, true)))
        return rc;
    isim_model *m = NULL;
    isim_hw *hw = NULL;
    isim_step_ctx *x = NULL;
    isim_rt *rt = NULL;
    vload l[N_LOADS];
    memset(l, 0, sizeof l);
    isim_error err = {0};
    if (isim_catalog_model(data, model_id, &m, &err)) {
        rc = cli_error(&err);
        goto done;
    }
    if ((rc = cli_validate_profile(data, profile, &hw)))
        goto done;
    isim_query q;
    isim_query_init(&q);
    q.devices = 1;
    q.tp = q.pp = 1;
    q.weights = q.kv = ISIM_BF16;
    q.input_tokens = (vs_in.a + vs_in.b) / 2;
    q.output_tokens = (vs_out.a + vs_out.b) / 2;
    isim_result res;
    if (isim_step_ctx_new(m, hw, &q, &x, &res, &err)) {
        rc = cli_error(&err);
        goto done;
    }
    if (!x) {
        fprintf(stderr, "infersim: error: infeasible on %s: %s (%s)\n", hw->id,
                isim_reason_text(res.reason), res.reason_detail);
        rc = CLI_FAIL;
        goto done;
    }
    const int context = (int)(vs_in.b + vs_out.b);
    isim_sched s = {.max_seqs = VS_SEQS,
                    .token_budget = (int64_t)isim_step_chunk_tokens(x),
                    .block_tokens = VS_BLOCK,
                    .kv_tokens = (double)VS_SEQS * context};
    double cap = 0;
    if ((rc = capacity(m, x, &s, &cap)))
        goto done;
    for (int k = 0; k < N_LOADS; k++) {
        isim_traffic *t = &l[k].t;
        *t = (isim_traffic){.kind = ISIM_ARRIVE_POISSON,
                            .requests = requests,
                            .input = vs_in,
                            .output = vs_out,
                            .seed = 1};
        if (k == 3) {
            t->kind = ISIM_ARRIVE_CLOSED;
            t->clients = VS_CLIENTS;
            snprintf(l[k].name, sizeof l[k].name, "closed %d clients", VS_CLIENTS);
            continue;
        }
        double share = vs_share[k == SPREAD ? 1 : k];
        t->rate = share * cap;
        snprintf(l[k].name, sizeof l[k].name, "open %.3g/s (%.0f%%)%s", t->rate, share * 100,
                 k == SPREAD ? " again" : "");
    }
    isim_rt_options ro;
    isim_rt_options_init(&ro);
    ro.model = m;
    ro.weights = ro.kv = ISIM_BF16;
    ro.threads = threads;
    ro.max_batch = VS_SEQS;
    ro.max_context = context;
    ro.max_chunk = (int)s.token_budget;
    fprintf(stderr, "validate: opening the engine (%s, random bf16 weights)...\n", m->name);
    if (isim_rt_open(&ro, &rt, &err)) {
        rc = cli_error(&err);
        goto done;
    }
    for (int k = 0; k < N_LOADS && !rc; k++)
        rc = run_load(rt, m, x, &s, &l[k]);
    if (rc)
        goto done;
    char *csv = cli_concat(dir, "/serving.csv"), *pcsv = cli_concat(dir, "/serving-passes.csv"),
         *rcsv = cli_concat(dir, "/serving-requests.csv");
    passes_ctx pc = {l, x};
    rc = !csv || !pcsv || !rcsv ? cli_oom() : cli_write_file(csv, write_summary, l);
    if (!rc)
        rc = cli_write_file(pcsv, write_passes, &pc);
    if (!rc)
        rc = cli_write_file(rcsv, write_requests, l);
    free(csv);
    free(pcsv);
    free(rcsv);
    if (rc)
        goto done;
    if (cli_find(opts, "json")->value) {
        rc = print_json(m, hw, &s, rt, cap, l);
    } else {
        print_text(m, hw, &s, rt, cap, l);
        printf("per load: %s/serving.csv; every pass: %s/serving-passes.csv; every request: "
               "%s/serving-requests.csv\n",
               dir, dir, dir);
    }
done:
    for (int k = 0; k < N_LOADS; k++) {
        isim_rt_serving_release(&l[k].eng);
        isim_serve_result_free(l[k].sim);
        isim_serve_result_free(l[k].rep);
    }
    isim_rt_close(rt);
    isim_step_ctx_free(x);
    isim_hw_free(hw);
    isim_model_free(m);
    return rc;
}
