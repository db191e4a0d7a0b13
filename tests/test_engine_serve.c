/* The CPU engine serving requests under traffic (runtime/cpu/serve.c): every request
 * generates what it generates alone, admission waits for KV blocks, a cache too small
 * preempts and recomputes without changing a token, the simulator's scheduler replaying the
 * engine's passes makes the same decisions, and bad input is refused with the reason;
 * `infersim run --engine cpu --rate|--concurrency` and its outputs. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/runtime.h"
#include "sim/serve.h"
#include "testutil.h"

#define STORIES ISIM_FIXTURES_DIR "/stories260K.bin"

typedef struct {
    isim_model *m;
    isim_rt *rt;
} engine;

/* stories260k on two threads: the real checkpoint when it is there, else seeded random
 * weights of its shape (the checks below hold for any weights). */
static void open_engine(engine *g, int max_batch, int context, int chunk)
{
    g->m = tu_model("stories260k");
    isim_rt_options o;
    isim_rt_options_init(&o);
    o.model = g->m;
    o.weights_file = access(STORIES, R_OK) == 0 ? STORIES : NULL;
    o.threads = 2;
    o.max_batch = max_batch;
    o.max_context = context;
    o.max_chunk = chunk;
    isim_error e = {0};
    cr_assert_eq(isim_rt_open(&o, &g->rt, &e), ISIM_OK, "%s", e.message);
}

static void close_engine(engine *g)
{
    isim_rt_close(g->rt);
    isim_model_free(g->m);
}

/* Each request's tokens from the run equal those of generating it alone, from the same
 * prompt, on the same engine. */
static void expect_alone(engine *g, const isim_rt_serving *sv, uint64_t seed)
{
    const isim_serve_result *r = sv->res;
    for (size_t i = 0; i < r->n; i++) {
        int len = (int)r->req[i].input_tokens, out = (int)r->req[i].output_tokens;
        int *prompt = malloc((size_t)len * sizeof *prompt);
        isim_rt_random_prompt(seed, (int)i, len, 512, prompt);
        const int *p = prompt;
        isim_rt_result alone;
        isim_error e = {0};
        cr_assert_eq(isim_rt_generate(g->rt, 1, &p, &len, out, NULL, NULL, &alone, &e), ISIM_OK,
                     "%s", e.message);
        cr_assert_eq(sv->tok_at[i + 1] - sv->tok_at[i], (size_t)out);
        for (int k = 0; k < out; k++)
            cr_expect_eq(sv->generated[sv->tok_at[i] + (size_t)k], alone.generated[k],
                         "request %zu (%d + %d tokens, %lld preemptions), token %d: served %d, "
                         "alone %d",
                         i, len, out, (long long)r->req[i].preemptions, k,
                         sv->generated[sv->tok_at[i] + (size_t)k], alone.generated[k]);
        isim_rt_result_release(&alone);
        free(prompt);
    }
}

static isim_traffic open_traffic(double rate, int64_t requests, uint64_t seed)
{
    return (isim_traffic){.kind = ISIM_ARRIVE_POISSON,
                          .rate = rate,
                          .requests = requests,
                          .input = {ISIM_LEN_UNIFORM, 3, 90},
                          .output = {ISIM_LEN_UNIFORM, 1, 24},
                          .seed = seed};
}

/* Requests arriving faster than they are served: passes mix decodes with prompt chunks of
 * several sequences, prompts longer than the budget are cut over passes. */
Test(engine_serve, every_request_generates_what_it_generates_alone)
{
    tu_deadline(20);
    engine g;
    open_engine(&g, 6, 128, 40);
    isim_sched s = {.max_seqs = 6, .token_budget = 40, .block_tokens = 16, .kv_tokens = 6 * 128};
    isim_traffic t = open_traffic(400, 24, 5);
    isim_rt_serving sv;
    isim_error e = {0};
    cr_assert_eq(isim_rt_serve(g.rt, &s, &t, 0, &sv, &e), ISIM_OK, "%s", e.message);
    const isim_serve_result *r = sv.res;
    cr_assert_eq(r->n, 24u);
    size_t mixed = 0, cut = 0;
    for (size_t p = 0; p < r->n_passes; p++) {
        const isim_step_mix *x = &r->passes[p].mix;
        mixed += x->decode_seqs > 0 && x->prefill_tokens > 0;
        cut += x->prefill_tokens >= 40 - x->decode_seqs && x->finishing < x->prefill_seqs;
        cr_assert_leq(x->decode_seqs + x->prefill_tokens, 40);
    }
    cr_expect_gt(mixed, 5u, "passes of decodes and prompts together: %zu", mixed);
    cr_expect_gt(cut, 0u, "no prompt was cut over passes");
    cr_expect_eq(r->preemptions, 0u);
    for (size_t i = 0; i < r->n; i++) {
        const isim_served *q = &r->req[i];
        cr_expect_leq(q->arrival_s, q->admitted_s);
        cr_expect_lt(q->admitted_s, q->first_token_s);
        cr_expect_leq(q->first_token_s, q->done_s);
        /* its tokens' times: the first at its first token, the last at its end */
        cr_expect_eq(sv.token_s[sv.tok_at[i]], q->first_token_s);
        cr_expect_eq(sv.token_s[sv.tok_at[i + 1] - 1], q->done_s);
    }
    expect_alone(&g, &sv, t.seed);
    isim_rt_serving_release(&sv);
    close_engine(&g);
}

/* A cache of 20 blocks of 4 tokens for requests of up to 80: running sequences that cannot
 * grow preempt the latest admitted, which recomputes its prompt and what it generated;
 * every request still finishes with the tokens it generates alone. */
Test(engine_serve, a_cache_too_small_preempts_and_every_token_stays_the_same)
{
    tu_deadline(20);
    engine g;
    open_engine(&g, 4, 128, 32);
    isim_sched s = {.max_seqs = 4, .token_budget = 32, .block_tokens = 4, .kv_tokens = 80};
    isim_traffic t = {.kind = ISIM_ARRIVE_CLOSED,
                      .clients = 4,
                      .requests = 16,
                      .input = {ISIM_LEN_UNIFORM, 20, 50},
                      .output = {ISIM_LEN_UNIFORM, 10, 30},
                      .seed = 11};
    isim_rt_serving sv;
    isim_error e = {0};
    cr_assert_eq(isim_rt_serve(g.rt, &s, &t, 0, &sv, &e), ISIM_OK, "%s", e.message);
    cr_expect_gt(sv.res->preemptions, 3u, "preemptions: %zu", sv.res->preemptions);
    expect_alone(&g, &sv, t.seed);
    isim_rt_serving_release(&sv);
    close_engine(&g);
}

/* Two requests of 30 + 2 tokens at once with 3 blocks of 16: the first takes 2 blocks, the
 * second waits for them until the first is done. */
Test(engine_serve, a_request_is_admitted_when_its_blocks_are_free)
{
    tu_deadline(20);
    engine g;
    open_engine(&g, 4, 64, 64);
    isim_sched s = {.max_seqs = 4, .token_budget = 64, .block_tokens = 16, .kv_tokens = 48};
    const isim_trace_req tr[2] = {{0, 30, 2}, {0, 30, 2}};
    isim_traffic t = {.kind = ISIM_ARRIVE_TRACE, .requests = 2, .trace = tr, .seed = 3};
    isim_rt_serving sv;
    isim_error e = {0};
    cr_assert_eq(isim_rt_serve(g.rt, &s, &t, 0, &sv, &e), ISIM_OK, "%s", e.message);
    const isim_serve_result *r = sv.res;
    /* passes: the first prompt (the second waiting), its decode, the second's prompt, its
     * decode */
    cr_assert_eq(r->n_passes, 4u);
    static const double prefill[4] = {30, 0, 30, 0}, decode[4] = {0, 1, 0, 1};
    static const int64_t waiting[4] = {1, 1, 0, 0};
    for (int p = 0; p < 4; p++) {
        cr_expect_eq(r->passes[p].mix.prefill_tokens, prefill[p], "pass %d", p);
        cr_expect_eq(r->passes[p].mix.decode_seqs, decode[p], "pass %d", p);
        cr_expect_eq(r->passes[p].running, 1, "pass %d", p);
        cr_expect_eq(r->passes[p].waiting, waiting[p], "pass %d", p);
    }
    cr_expect_eq(r->passes[1].mix.decode_ctx, 30);
    cr_expect_eq(r->req[1].admitted_s, r->req[0].done_s);
    cr_expect_eq(r->req[0].preemptions + r->req[1].preemptions, 0);
    cr_expect_eq(r->max_waiting, 1u);
    expect_alone(&g, &sv, t.seed);
    isim_rt_serving_release(&sv);
    close_engine(&g);
}

/* The engine's pass times, replayed through the simulator's scheduler with the engine's
 * arrivals as a trace, give the engine's schedule: the same passes and every request's
 * times to the bit (times on a 2^-30 s grid sum exactly). */
static double engine_pass(void *ctx, size_t k, const isim_step_mix *mix)
{
    (void)mix;
    const isim_serve_result *r = ctx;
    return k < r->n_passes ? r->passes[k].time_s : 1;
}

static void expect_replay(const isim_rt_serving *sv, const isim_sched *s)
{
    isim_model *m = tu_model("stories260k");
    isim_hw *hw = tu_hw("cpu-server");
    isim_query q;
    isim_query_init(&q);
    q.devices = 1;
    q.weights = ISIM_FP32;
    q.input_tokens = 16;
    q.output_tokens = 16;
    isim_step_ctx *x = NULL;
    isim_result res;
    isim_error e = {0};
    cr_assert_eq(isim_step_ctx_new(m, hw, &q, &x, &res, &e), ISIM_OK, "%s", e.message);
    cr_assert_not_null(x);
    const isim_serve_result *r = sv->res;
    isim_trace_req *tr = malloc(r->n * sizeof *tr);
    for (size_t i = 0; i < r->n; i++)
        tr[i] =
            (isim_trace_req){r->req[i].arrival_s, r->req[i].input_tokens, r->req[i].output_tokens};
    isim_traffic t = {.kind = ISIM_ARRIVE_TRACE, .requests = (int64_t)r->n, .trace = tr};
    isim_serve_opts o = {.step_time = engine_pass, .ctx = (void *)r, .keep_passes = true};
    isim_serve_result *rp = NULL;
    cr_assert_eq(isim_serve_run_opts(m, x, s, &t, &o, &rp, &e), ISIM_OK, "%s", e.message);
    cr_assert_eq(rp->n_passes, r->n_passes);
    for (size_t p = 0; p < r->n_passes; p++) {
        const isim_pass *a = &r->passes[p], *b = &rp->passes[p];
        cr_assert(a->start_s == b->start_s && a->running == b->running &&
                      a->waiting == b->waiting && a->mix.decode_seqs == b->mix.decode_seqs &&
                      a->mix.prefill_tokens == b->mix.prefill_tokens &&
                      a->mix.prefill_seqs == b->mix.prefill_seqs &&
                      a->mix.finishing == b->mix.finishing &&
                      fabs(a->mix.decode_ctx - b->mix.decode_ctx) < 1e-9 &&
                      fabs(a->mix.prefill_ctx - b->mix.prefill_ctx) < 1e-9,
                  "pass %zu differs: engine %g decodes + %g prompt tokens at %.9f s, replay %g + "
                  "%g at %.9f s",
                  p, a->mix.decode_seqs, a->mix.prefill_tokens, a->start_s, b->mix.decode_seqs,
                  b->mix.prefill_tokens, b->start_s);
    }
    for (size_t i = 0; i < r->n; i++) {
        const isim_served *a = &r->req[i], *b = &rp->req[i];
        cr_expect(a->admitted_s == b->admitted_s && a->first_token_s == b->first_token_s &&
                      a->done_s == b->done_s && a->preemptions == b->preemptions,
                  "request %zu: engine first token %.9f done %.9f, replay %.9f %.9f", i,
                  a->first_token_s, a->done_s, b->first_token_s, b->done_s);
    }
    cr_expect_eq(rp->ttft_s.p90, r->ttft_s.p90);
    cr_expect_eq(rp->e2e_s.p50, r->e2e_s.p50);
    isim_serve_result_free(rp);
    free(tr);
    isim_step_ctx_free(x);
    isim_hw_free(hw);
    isim_model_free(m);
}

Test(engine_serve, the_simulators_scheduler_replaying_the_engines_passes_makes_its_decisions)
{
    tu_deadline(20);
    engine g;
    open_engine(&g, 4, 128, 32);
    /* open loop at wall-clock times, a cache that preempts */
    isim_sched s = {.max_seqs = 4, .token_budget = 32, .block_tokens = 4, .kv_tokens = 120};
    isim_traffic t = open_traffic(300, 20, 9);
    isim_rt_serving sv;
    isim_error e = {0};
    cr_assert_eq(isim_rt_serve(g.rt, &s, &t, 0, &sv, &e), ISIM_OK, "%s", e.message);
    cr_expect_gt(sv.res->preemptions, 0u);
    /* the arrivals drawn for the simulation, each request admitted after it */
    isim_trace_req *drawn = malloc(20 * sizeof *drawn);
    cr_assert_eq(isim_serve_draw(g.m, NULL, &s, &t, drawn, &e), ISIM_OK, "%s", e.message);
    for (size_t i = 0; i < 20; i++) {
        cr_expect(fabs(sv.res->req[i].arrival_s - drawn[i].arrival_s) < 1e-9);
        cr_expect_eq(sv.res->req[i].input_tokens, drawn[i].input_tokens);
        cr_expect_leq(sv.res->req[i].arrival_s, sv.res->req[i].admitted_s);
    }
    free(drawn);
    expect_replay(&sv, &s);
    isim_rt_serving_release(&sv);
    /* a closed loop: each client's next request arrives when its last one ends */
    s.kv_tokens = 4 * 128;
    t = (isim_traffic){.kind = ISIM_ARRIVE_CLOSED,
                       .clients = 3,
                       .requests = 12,
                       .input = {ISIM_LEN_UNIFORM, 3, 60},
                       .output = {ISIM_LEN_UNIFORM, 1, 20},
                       .seed = 2};
    cr_assert_eq(isim_rt_serve(g.rt, &s, &t, 0, &sv, &e), ISIM_OK, "%s", e.message);
    for (size_t i = 3; i < 12; i++) {
        bool ends = false; /* some request ended when it arrived */
        for (size_t j = 0; j < i; j++)
            ends = ends || sv.res->req[j].done_s == sv.res->req[i].arrival_s;
        cr_expect(ends, "request %zu arrived at %.9f s, when none ended", i,
                  sv.res->req[i].arrival_s);
    }
    expect_replay(&sv, &s);
    isim_rt_serving_release(&sv);
    close_engine(&g);
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Open-loop arrivals are waited for: a request arriving at 0.2 s is admitted then, not
 * before, and the run lasts past the last arrival on the wall clock. */
Test(engine_serve, requests_arrive_at_their_wall_clock_times)
{
    tu_deadline(20);
    engine g;
    open_engine(&g, 2, 64, 64);
    isim_sched s = {.max_seqs = 2, .token_budget = 64, .block_tokens = 16, .kv_tokens = 128};
    const isim_trace_req tr[3] = {{0, 10, 3}, {0.2, 10, 3}, {0.3, 10, 3}};
    isim_traffic t = {.kind = ISIM_ARRIVE_TRACE, .requests = 3, .trace = tr, .seed = 1};
    isim_rt_serving sv;
    isim_error e = {0};
    double t0 = wall_s();
    cr_assert_eq(isim_rt_serve(g.rt, &s, &t, 0, &sv, &e), ISIM_OK, "%s", e.message);
    double took = wall_s() - t0;
    cr_expect(took >= 0.3 && took < 3, "the run took %g s", took);
    for (int i = 0; i < 3; i++) {
        cr_expect(fabs(sv.res->req[i].arrival_s - tr[i].arrival_s) < 1e-9);
        cr_expect(sv.res->req[i].admitted_s > tr[i].arrival_s - 1e-9);
        cr_expect_lt(sv.res->req[i].admitted_s, tr[i].arrival_s + 0.05, "request %d at %g", i,
                     sv.res->req[i].admitted_s);
    }
    cr_expect_geq(sv.res->duration_s, 0.3);
    isim_rt_serving_release(&sv);
    close_engine(&g);
}

/* What the engine cannot serve is refused before any request runs, with the reason. */
static void refused(engine *g, isim_sched s, isim_traffic t, double max_s, const char *message)
{
    isim_rt_serving sv;
    isim_error e = {0};
    cr_expect_eq(isim_rt_serve(g->rt, &s, &t, max_s, &sv, &e), ISIM_EINVAL, "%s", message);
    cr_expect(strstr(e.message, message), "expected '%s', got '%s'", message, e.message);
    cr_expect_null(sv.res);
}

Test(engine_serve, what_the_engine_cannot_serve_is_refused_with_the_reason)
{
    tu_deadline(20);
    engine g;
    open_engine(&g, 2, 64, 32);
    const isim_sched s = {.max_seqs = 2, .token_budget = 32, .block_tokens = 16, .kv_tokens = 128};
    isim_traffic t = {.kind = ISIM_ARRIVE_CLOSED,
                      .clients = 2,
                      .requests = 4,
                      .input = {ISIM_LEN_FIXED, 10, 0},
                      .output = {ISIM_LEN_FIXED, 5, 0}};
    isim_traffic u = t;
    u.prefix_hit = 0.5;
    refused(&g, s, u, 0,
            "the CPU engine has no prefix cache: a prefix-cache hit rate of 0.5 is simulated "
            "only (serve with 0)");
    isim_sched v = s;
    v.token_budget = 0;
    refused(&g, v, t, 0,
            "the engine's scheduler needs every limit set: running sequences 2, token budget 0, "
            "KV block 16, KV cache 128 tokens");
    v = s;
    v.max_seqs = 3;
    refused(&g, v, t, 0, "3 running sequences at most, but the engine holds 2 (its max_batch)");
    u = t;
    u.input.a = 61;
    refused(&g, s, u, 0,
            "request 1 of 61 input + 5 output tokens needs 65 positions, more than the engine's "
            "context of 64");
    refused(&g, s, t, 1e-9, "4 requests of 60 tokens in all need at least about");
    const isim_trace_req apart[4] = {{0, 10, 5}, {1, 10, 5}, {2, 10, 5}, {3, 10, 5}};
    u = (isim_traffic){.kind = ISIM_ARRIVE_TRACE, .requests = 4, .trace = apart};
    refused(&g, s, u, 2,
            "the arrivals span 3 s, more than the 2 s a serving run may take: a higher rate or "
            "fewer requests");
    u = t;
    u.kind = ISIM_ARRIVE_POISSON;
    u.rate = 0;
    refused(&g, s, u, 0, "the request rate must be in (0, 1e6] per second, got 0");
    close_engine(&g);
}

/* ---- infersim run --engine cpu under traffic, and validate --serving ------------------- */

#define RUN "run --engine cpu --model stories260k "

static size_t lines_of(const char *text)
{
    size_t n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    return n;
}

/* The table as simulate prints it, the engine's passes and every token written. */
Test(engine_serve_cli, run_under_traffic_prints_the_percentiles_and_writes_its_logs)
{
    tu_deadline(20);
    char dir[] = "/tmp/isim-serve-XXXXXX", args[600], path[300];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(args, sizeof args,
             RUN "--rate 500 --requests 12 --input-dist uniform:5:60 --output-dist uniform:2:20 "
                 "--batch 4 --token-budget 32 --pass-log %s/passes.csv --token-log %s/tokens.csv",
             dir, dir);
    char *out = NULL, *err = NULL;
    cr_assert_eq(tu_run(args, &out, &err), 0, "%s", err);
    /* the KV cache: the longest request drawn (72 tokens) in each of the 4 slots */
    static const char *const lines[] = {
        "stories260K on the CPU engine: 1 process, ",
        "served request by request at wall-clock times (seed 1; the warm-up pass ran ",
        "  arrivals         poisson, 500 per s, 12 requests\n",
        "  lengths          input uniform 5 to 60, output uniform 2 to 20 tokens",
        "  scheduler        vllm: at most 4 running, 32 tokens per pass, KV cache 288 tokens\n",
        "  TTFT             p50 ",
        "  TPOT             p50 ",
        "  end to end       p50 "};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        cr_expect(strstr(out, lines[i]), "no '%s' in:\n%s", lines[i], out);
    snprintf(path, sizeof path, "%s/passes.csv", dir);
    char *passes = tu_read(path, NULL);
    cr_assert_not_null(passes);
    static const char head[] = "pass,start_s,time_ms,decode_seqs,decode_ctx,prefill_tokens,"
                               "prefill_seqs,prefill_ctx,finishing,running,waiting\n0,0,";
    cr_expect(strncmp(passes, head, strlen(head)) == 0, "%s", passes);
    remove(path);
    snprintf(path, sizeof path, "%s/tokens.csv", dir);
    char *tokens = tu_read(path, NULL);
    cr_assert_not_null(tokens);
    static const char thead[] = "request,token,id,time_s,gap_ms\n0,0,";
    cr_expect(strncmp(tokens, thead, strlen(thead)) == 0, "%s", tokens);
    remove(path);
    rmdir(dir);
    /* the same requests as a JSON document: one token row per generated token */
    snprintf(args, sizeof args,
             RUN "--rate 500 --requests 12 --input-dist uniform:5:60 --output-dist uniform:2:20 "
                 "--batch 4 --token-budget 32 --json");
    cJSON *j = tu_run_json(args);
    const cJSON *tr = cJSON_GetObjectItem(j, "traffic"),
                *per = cJSON_GetObjectItem(tr, "per_request");
    cr_assert_eq(cJSON_GetArraySize(per), 12);
    double generated = 0, computed = 0;
    for (int i = 0; i < 12; i++) {
        const cJSON *r = cJSON_GetArrayItem(per, i);
        generated += tu_num(r, "output_tokens");
        /* its prompt, then a decode for each token after the first */
        computed += tu_num(r, "input_tokens") + tu_num(r, "output_tokens") - 1;
    }
    cr_expect_eq(lines_of(tokens) - 1, (size_t)generated);
    /* the passes computed every token once (no preemption: the cache holds every slot) */
    double in_passes = 0;
    for (const char *p = strchr(passes, '\n'); p && p[1]; p = strchr(p + 1, '\n')) {
        double d, t;
        cr_assert_eq(sscanf(p + 1, "%*[^,],%*[^,],%*[^,],%lf,%*[^,],%lf", &d, &t), 2);
        in_passes += d + t;
    }
    cr_expect_eq(in_passes, computed);
    free(passes);
    free(tokens);
    free(out);
    free(err);
    cJSON_Delete(j);
}

/* --json: what ran, the traffic's figures under simulate's names, every request. */
Test(engine_serve_cli, run_under_traffic_prints_json_with_every_request)
{
    tu_deadline(20);
    cJSON *j = tu_run_json(RUN "--concurrency 3 --requests 9 --input-tokens 20 --output-tokens 6 "
                               "--batch 2 --kv-block 8 --seed 4 --json");
    cr_expect_str_eq(cJSON_GetObjectItem(j, "engine")->valuestring, "cpu");
    cr_expect_str_eq(cJSON_GetObjectItem(j, "model")->valuestring, "stories260k");
    cr_expect_str_eq(cJSON_GetObjectItem(j, "weights")->valuestring, "fp32");
    cr_expect_gt(tu_num(j, "threads"), 0);
    cr_expect_gt(tu_num(j, "warm_up_tokens_per_s"), 0);
    const cJSON *t = cJSON_GetObjectItem(j, "traffic");
    cr_expect_str_eq(cJSON_GetObjectItem(t, "arrivals")->valuestring, "closed");
    cr_expect_eq(tu_num(t, "clients"), 3);
    cr_expect_eq(tu_num(t, "requests"), 9);
    cr_expect_eq(tu_num(t, "seed"), 4);
    const cJSON *sc = cJSON_GetObjectItem(t, "scheduler");
    cr_expect_eq(tu_num(sc, "max_running_sequences"), 2);
    cr_expect_eq(tu_num(sc, "token_budget_per_pass"), 512);
    cr_expect_eq(tu_num(sc, "kv_cache_tokens"), 2 * 26);
    static const char *const stats[] = {"ttft_ms", "tpot_ms", "e2e_ms", "itl_ms"};
    for (int i = 0; i < 4; i++) {
        const cJSON *s = cJSON_GetObjectItem(t, stats[i]);
        cr_assert_not_null(s, "%s", stats[i]);
        cr_expect_leq(tu_num(s, "p50"), tu_num(s, "p90"));
        cr_expect_leq(tu_num(s, "p90"), tu_num(s, "max"));
    }
    const cJSON *per = cJSON_GetObjectItem(t, "per_request");
    cr_assert_eq(cJSON_GetArraySize(per), 9);
    /* two running at most: the third client's first request waits for a slot */
    cr_expect_gt(tu_num(cJSON_GetArrayItem(per, 2), "ttft_ms"),
                 tu_num(cJSON_GetArrayItem(per, 0), "e2e_ms") - 1e-9);
    cr_expect_eq(tu_num(cJSON_GetArrayItem(per, 8), "output_tokens"), 6);
    cJSON_Delete(j);
}

/* Bad input: the reason, exit 2, nothing run. */
Test(engine_serve_cli, bad_traffic_for_the_engine_is_refused_with_the_reason)
{
    tu_deadline(30);
    static const struct {
        const char *args, *message;
    } cases[] = {
        {"--rate 0 --input-tokens 10 --output-tokens 5",
         "--rate: 0 is out of range [1e-06, 1e+06]"},
        {"--rate -1 --input-tokens 10 --output-tokens 5",
         "--rate: -1 is out of range [1e-06, 1e+06]"},
        {"--rate 2 --input-dist normal:3:4 --output-tokens 5",
         "--input-dist: expected uniform:MIN:MAX or lognormal:MEAN:CV, got 'normal:3:4'"},
        {"--rate 2 --input-tokens 500 --output-tokens 20",
         "a request of up to 500 input + 20 output tokens exceeds stories260K's context of 512"},
        {"--rate 2 --input-dist uniform:10:20 --output-dist lognormal:5:11",
         "output tokens lognormal: the coefficient of variation must be in (0, 10], got 11"},
        {"--rate 0.001 --requests 10 --input-tokens 10 --output-tokens 5",
         "the arrivals span 17988 s, more than the 3600 s a serving run may take: a higher rate "
         "or fewer requests"},
        {"--concurrency 20 --requests 1000000 --input-tokens 400 --output-tokens 100",
         "1000000 requests of 500000000 tokens in all need at least about "},
        {"--concurrency 2 --requests 4 --input-tokens 10 --output-tokens 5 --kv-tokens 10",
         "a request of up to 15 tokens does not fit the KV cache of 10 tokens"},
        {"--rate 2 --output-tokens 5", "missing --input-tokens or --input-dist"},
        {"--concurrency 2 --requests 10 --input-tokens 10 --output-tokens 5 --tp 2",
         "--tp: serving under traffic (--rate, --concurrency) runs in one process"},
        {"--concurrency 2 --requests 10 --prompt-ids 1,2 --output-tokens 5",
         "--prompt-ids: serving under traffic (--rate, --concurrency) gives each request a "
         "seeded random prompt of its length"},
        {"--concurrency 2 --input-tokens 10 --output-tokens 5 --dump-logits /tmp/x",
         "--dump-logits: serving under traffic (--rate, --concurrency) writes every token with "
         "--token-log FILE, not the logits"},
        {"--concurrency 2 --input-tokens 10 --output-tokens 5 --json --csv",
         "--json and --csv are exclusive"},
        {"--requests 10 --input-tokens 10 --output-tokens 5",
         "--requests needs traffic: --rate R or --concurrency C"},
        {"--input-tokens 10 --output-tokens 5 --pass-log /tmp/x.csv",
         "--pass-log needs traffic: --rate R or --concurrency C"},
        {"--concurrency 3 --requests 2 --input-tokens 10 --output-tokens 5",
         "--concurrency 3 is more than --requests 2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[400];
        snprintf(args, sizeof args, RUN "%s", cases[i].args);
        tu_expect_error(args, 2, cases[i].message, true);
    }
    tu_expect_error(RUN "--concurrency 2 --requests 4 --input-tokens 10 --output-tokens 5 "
                        "--pass-log /tmp",
                    1, "/tmp: is a directory", true);
}

/* validate --serving on a tiny model with a catalog profile (seconds): the figures of each
 * load, the replay taking the engine's passes exactly, the spread, and the files. */
Test(engine_serve_cli, validate_serving_compares_each_load_and_replays_the_engine_exactly)
{
    tu_deadline(30);
    char dir[] = "/tmp/isim-vserve-XXXXXX", args[300], path[300];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(args, sizeof args,
             "validate --engine cpu --serving --model stories260k --profile cpu-server "
             "--requests 6 --json -o %s",
             dir);
    cJSON *j = tu_run_json(args);
    cr_expect_str_eq(cJSON_GetObjectItem(j, "profile")->valuestring, "cpu-server");
    const cJSON *h = cJSON_GetObjectItem(j, "held_fixed");
    cr_expect_eq(tu_num(h, "requests"), 6);
    cr_expect_eq(tu_num(cJSON_GetObjectItem(h, "input_tokens"), "min"), 64);
    cr_expect_eq(tu_num(cJSON_GetObjectItem(h, "output_tokens"), "max"), 64);
    cr_expect_eq(tu_num(h, "max_running_sequences"), 32);
    /* the token budget is the profile's prefill chunk */
    cr_expect_eq(tu_num(h, "token_budget_per_pass"), 2048);
    double cap = tu_num(j, "capacity_per_s");
    cr_expect_gt(cap, 0);
    const cJSON *loads = cJSON_GetObjectItem(j, "loads");
    cr_assert_eq(cJSON_GetArraySize(loads), 5);
    static const char *const names[5] = {"open", "open", "open", "closed 4 clients", "open"};
    static const double share[5] = {0.3, 0.6, 0.9, 0, 0.6};
    for (int k = 0; k < 5; k++) {
        const cJSON *l = cJSON_GetArrayItem(loads, k);
        const char *name = cJSON_GetObjectItem(l, "load")->valuestring;
        cr_expect(strncmp(name, names[k], strlen(names[k])) == 0, "%s", name);
        if (share[k] > 0)
            cr_expect(tu_close(tu_num(l, "rate_per_s"), share[k] * cap, 1e-12));
        static const char *const parts[5] = {"engine_ms", "simulated_ms", "replayed_ms",
                                             "error_pct", "replay_error_pct"};
        for (int p = 0; p < 5; p++)
            for (int m = 0; m < 3; m++) {
                const cJSON *x = cJSON_GetObjectItem(
                    cJSON_GetObjectItem(cJSON_GetObjectItem(l, parts[p]), m == 0   ? "ttft"
                                                                          : m == 1 ? "tpot"
                                                                                   : "e2e"),
                    "p90");
                cr_assert(cJSON_IsNumber(x), "load %d %s", k, parts[p]);
                if (p == 4)
                    cr_expect_eq(x->valuedouble, 0, "load %d: the replay is off", k);
            }
        const cJSON *ps = cJSON_GetObjectItem(l, "passes");
        cr_expect_eq(tu_num(ps, "replayed_as_the_engine"), tu_num(ps, "engine"));
        cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(l, "pass_time_error")), 3);
    }
    cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(j, "spread_pct"), "e2e"), "p50")));
    cJSON_Delete(j);
    snprintf(path, sizeof path, "%s/serving.csv", dir);
    char *csv = tu_read(path, NULL);
    cr_assert_not_null(csv);
    cr_expect_eq(lines_of(csv), 1 + 5 * 3 * 2u);
    free(csv);
    remove(path);
    snprintf(path, sizeof path, "%s/serving-requests.csv", dir);
    csv = tu_read(path, NULL);
    cr_assert_not_null(csv);
    cr_expect_eq(lines_of(csv), 1 + 5 * 6u);
    free(csv);
    remove(path);
    snprintf(path, sizeof path, "%s/serving-passes.csv", dir);
    cr_expect_eq(access(path, R_OK), 0);
    remove(path);
    rmdir(dir);
}

Test(engine_serve_cli, validate_serving_refuses_what_it_does_not_take)
{
    tu_deadline(20);
    tu_expect_error("validate --engine cpu --serving --batches 1,2", 2,
                    "--batches shapes the engine's grid, not --serving", true);
    tu_expect_error("validate --engine cpu --serving --requests 2", 2,
                    "--requests: 2 is out of range", true);
    tu_expect_error("validate --engine cpu --requests 5", 2,
                    "--requests counts the requests of --serving", true);
    tu_expect_error("validate --engine cpu --serving --profile no-such-profile -o /tmp", 2,
                    "no-such-profile", true);
    /* no calibration on this machine yet: the command that makes one */
    char dir[] = "/tmp/isim-nocal-XXXXXX", cmd[400];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(cmd, sizeof cmd, "mkdir '%s/hw-profiles' && ln -s '%s/models' '%s/models'", dir,
             ISIM_SOURCE_DIR, dir);
    cr_assert_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "validate --engine cpu --serving --data %s -o %s/v", dir, dir);
    tu_expect_error(cmd, 1,
                    "no profile of this machine yet: run `infersim calibrate --engine cpu` first "
                    "(it writes hw-profiles/local-cpu.yaml)",
                    true);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}
