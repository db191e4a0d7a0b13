/* Serving under traffic (sim/serve.h): the mixed pass against the step model's own passes,
 * the scheduler's bookkeeping against step-by-step sums written out here, queueing at light
 * and heavy load, determinism, preemption and refusals. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/serve.h"
#include "tests/testutil.h"

typedef struct {
    isim_model *m;
    isim_hw *h;
    isim_query q;
    isim_result r;
    isim_step_ctx *x;
} fixture;

static void setup(fixture *f, const char *model, const char *hw, double devices)
{
    memset(f, 0, sizeof *f);
    f->m = tu_model(model);
    f->h = tu_hw(hw);
    isim_query_init(&f->q);
    f->q.devices = devices;
    f->q.input_tokens = 1000;
    f->q.output_tokens = 200;
    isim_error e = {0};
    cr_assert_eq(isim_step_ctx_new(f->m, f->h, &f->q, &f->x, &f->r, &e), ISIM_OK, "%s", e.message);
    cr_assert_not_null(f->x, "%s", f->r.reason_detail);
}

static void release(fixture *f)
{
    isim_step_ctx_free(f->x);
    isim_model_free(f->m);
    isim_hw_free(f->h);
}

static double hbm(const fixture *f, double dec, double pre_tok)
{
    isim_step_mix mix = {.decode_seqs = dec,
                         .decode_ctx = 1500,
                         .prefill_tokens = pre_tok,
                         .prefill_seqs = pre_tok > 0 ? 1 : 0,
                         .prefill_ctx = pre_tok / 2,
                         .finishing = pre_tok > 0 ? 1 : 0};
    isim_terms t;
    isim_step_time(f->x, &mix, &t);
    return t.t[ISIM_TERM_HBM];
}

/* A decode pass of the mix is the decode step isim_predict times: the same sequences at the
 * same mean context give the same seconds. */
Test(serve, a_decode_only_pass_is_the_predicted_decode_step)
{
    fixture f;
    setup(&f, "llama-3.1-8b", "h100-sxm", 1);
    f.q.batch = 32;
    isim_error e = {0};
    cr_assert_eq(isim_predict(f.m, f.h, &f.q, &f.r, &e), ISIM_OK);
    isim_step_mix mix = {.decode_seqs = 32, .decode_ctx = 1000 + (200 - 1) / 2.0};
    cr_assert_eq(isim_step_time(f.x, &mix, NULL), f.r.tpot_s);
    release(&f);
}

/* One pass, not a decode step plus a prefill: the weights stream once. The traffic is
 * linear in the tokens, H(d, p) = W + a d + b p, so W = 2 H(1, 0) - H(2, 0) and a mixed
 * pass's H(d, p) = H(d, 0) + H(0, p) - W. */
Test(serve, a_mixed_pass_streams_the_weights_once)
{
    fixture f;
    setup(&f, "llama-3.1-8b", "h100-sxm", 1);
    double w = 2 * hbm(&f, 1, 0) - hbm(&f, 2, 0);
    /* by hand: every weight streams once but the embedding table (a pass reads only its
     * tokens' rows), 8.03e9 - 128256 x 4096 = 7.50e9 parameters x 2 bytes, at 3.35 TB/s x
     * the profile's HBM efficiency; the norms' few thousand parameters per layer are
     * within the tolerance */
    double by_hand = (f.m->d.params_total - 128256.0 * 4096) * 2 / (3.35e12 * f.h->eff_hbm);
    cr_assert(tu_close(w, by_hand, 1e-3), "weights' time %.6g s, by hand %.6g s", w, by_hand);
    double mixed = hbm(&f, 24, 512), apart = hbm(&f, 24, 0) + hbm(&f, 0, 512);
    cr_assert(fabs(mixed - (apart - w)) <= 1e-9 * apart, "mixed %.9g, apart %.9g, weights %.9g",
              mixed, apart, w);
    isim_step_mix both = {24, 1500, 512, 1, 256, 1}, dec = {24, 1500, 0, 0, 0, 0},
                  pre = {0, 0, 512, 1, 256, 1};
    cr_assert_lt(isim_step_time(f.x, &both, NULL),
                 isim_step_time(f.x, &dec, NULL) + isim_step_time(f.x, &pre, NULL));
    release(&f);
}

static isim_serve_result *serve(const fixture *f, const isim_traffic *t, const isim_sched *s)
{
    isim_serve_result *r = NULL;
    isim_error e = {0};
    cr_assert_eq(isim_serve_run(f->m, f->x, s, t, &r, &e), ISIM_OK, "%s", e.message);
    return r;
}

static isim_traffic fixed(isim_arrival_kind kind, int64_t requests, double in, double out)
{
    return (isim_traffic){.kind = kind,
                          .clients = 1,
                          .rate = 1,
                          .requests = requests,
                          .input = {ISIM_LEN_FIXED, in, 0},
                          .output = {ISIM_LEN_FIXED, out, 0},
                          .seed = 7};
}

/* A request alone: its prompt in chunks of the token budget, one pass each, then one pass
 * per further token at a context one longer each time. */
Test(serve, a_request_alone_is_its_chunks_then_its_decode_passes)
{
    fixture f;
    setup(&f, "llama-3.1-8b", "h100-sxm", 1);
    isim_sched s = {.max_seqs = 8, .token_budget = 512};
    isim_traffic t = fixed(ISIM_ARRIVE_CLOSED, 1, 1200, 5);
    isim_serve_result *r = serve(&f, &t, &s);
    /* chunks of 512, 512 and 176 tokens; the last gives the first token */
    double ttft = 0, done = 0;
    int64_t c0[3] = {0, 512, 1024}, c[3] = {512, 512, 176};
    for (int k = 0; k < 3; k++) {
        isim_step_mix m = {0, 0, (double)c[k], 1, (double)c0[k] + (double)c[k] / 2, k == 2};
        ttft += isim_step_time(f.x, &m, NULL);
    }
    done = ttft;
    for (int j = 0; j < 4; j++) {
        isim_step_mix m = {1, 1200.0 + j, 0, 0, 0, 0};
        done += isim_step_time(f.x, &m, NULL);
    }
    cr_assert(fabs(r->req[0].first_token_s - ttft) <= 1e-12 * ttft, "%.12g vs %.12g",
              r->req[0].first_token_s, ttft);
    cr_assert(fabs(r->req[0].done_s - done) <= 1e-12 * done);
    cr_assert_eq(r->steps, 7u);
    cr_assert(fabs(r->tpot_s.p50 - (done - ttft) / 4) <= 1e-12 * done);
    /* its four gaps between tokens are its four decode passes: their mean exact, their
     * median within the histogram's 1.2% */
    cr_assert(fabs(r->itl_s.mean - (done - ttft) / 4) <= 1e-9 * done);
    isim_step_mix d1 = {1, 1201, 0, 0, 0, 0}, d3 = {1, 1203, 0, 0, 0, 0};
    cr_assert(tu_close(r->itl_s.p50, isim_step_time(f.x, &d1, NULL), 0.012), "%g", r->itl_s.p50);
    cr_assert(tu_close(r->itl_s.max, isim_step_time(f.x, &d3, NULL), 1e-9));
    isim_serve_result_free(r);
    release(&f);
}

/* B clients sending B requests at once: a static batch. Every prompt fits one pass, so every
 * request has its first token after it, and the batch decodes together. */
Test(serve, a_static_batch_prefills_together_then_decodes_together)
{
    fixture f;
    setup(&f, "llama-3.1-8b", "h100-sxm", 1);
    isim_sched s = {.max_seqs = 16, .token_budget = 8192};
    isim_traffic t = fixed(ISIM_ARRIVE_CLOSED, 8, 1000, 3);
    t.clients = 8;
    isim_serve_result *r = serve(&f, &t, &s);
    isim_step_mix pre = {0, 0, 8000, 8, 500, 8};
    double ttft = isim_step_time(f.x, &pre, NULL), e2e = ttft;
    for (int j = 0; j < 2; j++) {
        isim_step_mix d = {8, 1000.0 + j, 0, 0, 0, 0};
        e2e += isim_step_time(f.x, &d, NULL);
    }
    cr_assert(fabs(r->ttft_s.p50 - ttft) <= 1e-12 * ttft);
    cr_assert_eq(r->ttft_s.max, r->ttft_s.p50);
    cr_assert(fabs(r->e2e_s.max - e2e) <= 1e-12 * e2e);
    /* goodput: every request has that TTFT, so a target just above takes all eight and one
     * just below none; a TPOT target alone counts on its own */
    isim_serve_goodput(r, ttft * 1.0001, 0);
    cr_assert_eq(r->goodput.within, 8u);
    cr_assert(tu_close(r->goodput.per_s, 8 / r->duration_s, 1e-12));
    isim_serve_goodput(r, ttft * 0.9999, 0);
    cr_assert_eq(r->goodput.within, 0u);
    cr_assert_eq(r->goodput.share, 0);
    isim_serve_goodput(r, 0, r->tpot_s.max * 1.0001);
    cr_assert_eq(r->goodput.share, 1);
    isim_serve_result_free(r);
    release(&f);
}

/* At 1 request per second an 8B model on an H100 is nearly always idle: the first token
 * comes about as fast as for a request alone. Far past the capacity, the queue grows and
 * the run says so, with the offered and served rates. */
Test(serve, light_load_waits_little_and_overload_is_stated)
{
    fixture f;
    setup(&f, "llama-3.1-8b", "h100-sxm", 1);
    isim_sched s = {.max_seqs = 64};
    isim_traffic alone = fixed(ISIM_ARRIVE_CLOSED, 1, 1000, 200);
    isim_serve_result *a = serve(&f, &alone, &s);
    isim_traffic light = fixed(ISIM_ARRIVE_POISSON, 500, 1000, 200);
    isim_serve_result *l = serve(&f, &light, &s);
    cr_assert(l->ttft_s.p50 < 1.5 * a->ttft_s.p50, "p50 %g alone %g", l->ttft_s.p50, a->ttft_s.p50);
    cr_assert_not(l->overloaded);
    isim_traffic heavy = light;
    heavy.rate = 200;
    isim_serve_result *h = serve(&f, &heavy, &s);
    cr_assert(h->overloaded);
    cr_assert_gt(h->offered_rps, 1.5 * h->served_rps);
    cr_assert_gt(h->ttft_s.p50, 100 * a->ttft_s.p50);
    isim_serve_result_free(a);
    isim_serve_result_free(l);
    isim_serve_result_free(h);
    release(&f);
}

Test(serve, the_same_seed_gives_the_same_requests_and_another_does_not)
{
    fixture f;
    setup(&f, "llama-3.1-8b", "h100-sxm", 1);
    isim_sched s = {.max_seqs = 64};
    isim_traffic t = fixed(ISIM_ARRIVE_GAMMA, 300, 0, 0);
    t.rate = 10;
    t.cv = 2;
    t.input = (isim_len_dist){ISIM_LEN_UNIFORM, 800, 1000};
    t.output = (isim_len_dist){ISIM_LEN_LOGNORMAL, 150, 0.5};
    isim_serve_result *a = serve(&f, &t, &s), *b = serve(&f, &t, &s);
    cr_assert_eq(memcmp(a->req, b->req, a->n * sizeof *a->req), 0);
    t.seed++;
    isim_serve_result *c = serve(&f, &t, &s);
    cr_assert_neq(memcmp(a->req, c->req, a->n * sizeof *a->req), 0);
    for (size_t i = 0; i < a->n; i++) {
        cr_assert(a->req[i].input_tokens >= 800 && a->req[i].input_tokens <= 1000);
        cr_assert(a->req[i].output_tokens >= 1);
    }
    isim_serve_result_free(a);
    isim_serve_result_free(b);
    isim_serve_result_free(c);
    release(&f);
}

/* A cache of 5500 tokens (343 blocks of 16) admits five prompts of 1000 tokens (63 blocks
 * each) but cannot hold the five at 1200 tokens (75 blocks each): as they grow the latest
 * admitted is preempted and recomputed, and every request still finishes. */
Test(serve, a_full_cache_preempts_and_every_request_finishes)
{
    fixture f;
    setup(&f, "llama-3.1-8b", "h100-sxm", 1);
    isim_sched s = {.max_seqs = 16, .kv_tokens = 5500};
    isim_traffic t = fixed(ISIM_ARRIVE_CLOSED, 64, 1000, 200);
    t.clients = 16;
    isim_serve_result *r = serve(&f, &t, &s);
    cr_assert_gt(r->preemptions, 0u);
    for (size_t i = 0; i < r->n; i++)
        cr_assert(isfinite(r->req[i].done_s) && r->req[i].done_s >= r->req[i].first_token_s);
    cr_assert_eq(r->kv_tokens, 5500);
    isim_serve_result_free(r);
    release(&f);
}

/* Prompts of 1500 tokens in chunks of 600 against a cache of 2000: a second prompt half
 * done beside the first leaves neither room to go on. The chunk that cannot be taken
 * preempts the latest admitted, as a decode token does, and every request finishes. */
Test(serve, a_prompt_the_cache_cannot_take_preempts_and_nothing_stalls)
{
    fixture f;
    setup(&f, "llama-3.1-8b", "h100-sxm", 1);
    isim_sched s = {.max_seqs = 8, .token_budget = 600, .kv_tokens = 2000};
    isim_traffic t = fixed(ISIM_ARRIVE_CLOSED, 12, 1500, 50);
    t.clients = 4;
    isim_serve_result *r = serve(&f, &t, &s);
    cr_assert_gt(r->preemptions, 0u);
    for (size_t i = 0; i < r->n; i++)
        cr_assert(isfinite(r->req[i].done_s));
    isim_serve_result_free(r);
    release(&f);
}

static void refused(const fixture *f, const isim_traffic *t, const isim_sched *s,
                    const char *needle)
{
    isim_serve_result *r = NULL;
    isim_error e = {0};
    cr_assert_eq(isim_serve_run(f->m, f->x, s, t, &r, &e), ISIM_EINVAL, "%s", needle);
    cr_assert_null(r);
    cr_assert(strstr(e.message, needle), "'%s' lacks '%s'", e.message, needle);
}

Test(serve, bad_traffic_is_refused_with_the_reason)
{
    fixture f;
    setup(&f, "llama-3.1-8b", "h100-sxm", 1);
    isim_sched s = {.max_seqs = 16};
    isim_traffic t = fixed(ISIM_ARRIVE_POISSON, 10, 1000, 100);
    t.rate = 0;
    refused(&f, &t, &s, "request rate must be in (0, 1e6]");
    t.rate = -3;
    refused(&f, &t, &s, "got -3");
    t.rate = NAN;
    refused(&f, &t, &s, "request rate");
    t = fixed(ISIM_ARRIVE_GAMMA, 10, 1000, 100);
    t.cv = 0;
    refused(&f, &t, &s, "coefficient of variation must be in (0, 10]");
    t = fixed(ISIM_ARRIVE_CLOSED, 10, 1000, 100);
    t.clients = 11;
    refused(&f, &t, &s, "clients must be in [1, requests = 10], got 11");
    t = fixed(ISIM_ARRIVE_CLOSED, 0, 1000, 100);
    refused(&f, &t, &s, "requests must be in [1, 10000000], got 0");
    t = fixed(ISIM_ARRIVE_CLOSED, 10, 1000, 100);
    t.input = (isim_len_dist){ISIM_LEN_UNIFORM, 900, 800};
    refused(&f, &t, &s, "uniform in [a, b]");
    t.input = (isim_len_dist){ISIM_LEN_LOGNORMAL, 900, 11};
    refused(&f, &t, &s, "coefficient of variation must be in (0, 10], got 11");
    t.input = (isim_len_dist){ISIM_LEN_FIXED, 131000, 0};
    refused(&f, &t, &s, "exceeds Llama 3.1 8B's context of 131072");
    t.input = (isim_len_dist){ISIM_LEN_FIXED, 5000, 0};
    isim_sched small = {.max_seqs = 4, .kv_tokens = 4000};
    refused(&f, &t, &small, "does not fit the KV cache of 4000 tokens");
    t.input = (isim_len_dist){ISIM_LEN_FIXED, 1000, 0};
    t.prefix_hit = 1;
    refused(&f, &t, &s, "prefix-cache hit rate must be in [0, 1)");
    t.prefix_hit = 0;
    isim_sched none = {.max_seqs = 0};
    refused(&f, &t, &none, "running sequences' limit");
    release(&f);
}

/* A prefix-cache hit leaves only the new share of each prompt to compute: at half the
 * prompt cached, a request alone gets its first token sooner. */
Test(serve, a_prefix_hit_computes_only_the_new_tokens)
{
    fixture f;
    setup(&f, "llama-3.1-8b", "h100-sxm", 1);
    isim_sched s = {.max_seqs = 8, .token_budget = 8192};
    isim_traffic t = fixed(ISIM_ARRIVE_CLOSED, 1, 4000, 2);
    isim_serve_result *cold = serve(&f, &t, &s);
    t.prefix_hit = 0.5;
    isim_serve_result *warm = serve(&f, &t, &s);
    isim_step_mix m = {0, 0, 2000, 1, 2000 + 1000, 1};
    double want = isim_step_time(f.x, &m, NULL);
    cr_assert(fabs(warm->req[0].first_token_s - want) <= 1e-12 * want);
    cr_assert_lt(warm->ttft_s.p50, cold->ttft_s.p50);
    isim_serve_result_free(cold);
    isim_serve_result_free(warm);
    release(&f);
}

/* ---- the commands ---------------------------------------------------------------------- */

#define SIM8B "simulate --model llama-3.1-8b --hw h100-sxm --devices 1 "

Test(serve_cli, predict_under_traffic_prints_the_percentiles_beside_the_unloaded_figures)
{
    char *out = NULL;
    cr_assert_eq(tu_run("predict --model llama-3.1-8b --hw h100-sxm --devices 1 --batch 64 "
                        "--input-tokens 1000 --output-tokens 200 --rate 5 --requests 200",
                        &out, NULL),
                 0);
    cr_assert(strstr(out, "TTFT             ") && strstr(out, "under traffic"), "%s", out);
    cr_assert(strstr(out, "arrivals         poisson, 5 per s, 200 requests"), "%s", out);
    free(out);
    cr_assert_eq(tu_run(SIM8B "--input-tokens 1000 --output-tokens 200 --rate 5 --requests 200 "
                              "--ttft-slo 1000000 --tpot-slo 1000",
                        &out, NULL),
                 0);
    cr_assert(strstr(out, "goodput          200 of 200 requests (100.0%) within TTFT 1e+06 ms "
                          "and TPOT 1000 ms"),
              "%s", out);
    free(out);
    cr_assert_eq(tu_run("predict --model llama-3.1-8b --hw h100-sxm --devices 1 --batch 64 "
                        "--input-tokens 1000 --output-tokens 200",
                        &out, NULL),
                 0);
    cr_assert(strstr(out, "unloaded: a static batch"), "%s", out);
    free(out);
    cJSON *j = tu_run_json("predict --model llama-3.1-8b --hw h100-sxm --devices 1 --batch 8 "
                           "--input-tokens 1000 --output-tokens 20 --concurrency 8 --requests 8 "
                           "--json");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "traffic");
    cr_assert_not_null(t);
    const cJSON *ttft = cJSON_GetObjectItemCaseSensitive(t, "ttft_ms");
    /* a static batch through the simulator: every request's first token after one pass */
    cr_assert_eq(tu_num(ttft, "p50"), tu_num(ttft, "max"));
    cr_assert_gt(tu_num(ttft, "p99"), 0);
    cr_assert_eq(tu_num(t, "requests"), 8);
    cJSON_Delete(j);
}

Test(serve_cli, simulate_prints_every_request_and_the_same_bytes_each_time)
{
    char *a = NULL, *b = NULL;
    const char *args = SIM8B "--rate 20 --requests 50 --input-dist uniform:800:1000 "
                             "--output-dist lognormal:100:0.5 --seed 4 --csv";
    cr_assert_eq(tu_run(args, &a, NULL), 0);
    cr_assert_eq(tu_run(args, &b, NULL), 0);
    cr_assert_str_eq(a, b);
    size_t lines = 0;
    for (const char *c = a; *c; c++)
        lines += *c == '\n';
    cr_assert_eq(lines, 51u, "%s", a);
    cr_assert(strncmp(a, "request,arrival_s,ttft_ms,e2e_ms,tpot_ms", 40) == 0);
    free(a);
    free(b);
    cJSON *j = tu_run_json(SIM8B "--concurrency 4 --requests 12 --input-tokens 500 "
                                 "--output-tokens 50 --json");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(j, "traffic"), "per_request");
    cr_assert_eq(cJSON_GetArraySize(r), 12);
    cJSON_Delete(j);
}

Test(serve_cli, an_overloaded_replica_says_by_how_much)
{
    char *out = NULL;
    cr_assert_eq(tu_run(SIM8B "--rate 200 --requests 1000 --input-tokens 1000 "
                              "--output-tokens 100",
                        &out, NULL),
                 0);
    cr_assert(strstr(out, "OVERLOADED: 199.9 requests/s offered"), "%s", out);
    free(out);
}

Test(serve_cli, bad_traffic_is_a_usage_error_with_the_reason)
{
    tu_expect_error(SIM8B "--input-tokens 100 --output-tokens 10", 2,
                    "missing the traffic: --rate R, --concurrency C or --trace FILE", true);
    tu_expect_error(SIM8B "--input-tokens 100 --output-tokens 10 --rate 0", 2,
                    "--rate: 0 is out of range", true);
    tu_expect_error(SIM8B "--input-tokens 100 --output-tokens 10 --rate -2", 2,
                    "--rate: -2 is out of range", true);
    tu_expect_error(SIM8B "--input-tokens 100 --output-tokens 10 --rate 2 --concurrency 2", 2,
                    "exclusive", true);
    tu_expect_error(SIM8B "--input-tokens 100 --output-tokens 10 --rate 2 --arrival gamma", 2,
                    "--arrival gamma needs --arrival-cv CV", true);
    tu_expect_error(SIM8B "--input-tokens 100 --output-tokens 10 --rate 2 --arrival pareto", 2,
                    "--arrival: expected poisson or gamma, got 'pareto'", true);
    tu_expect_error(SIM8B "--input-tokens 100 --output-tokens 10 --rate 2 --arrival gamma "
                          "--arrival-cv 11",
                    2, "--arrival-cv: 11 is out of range", true);
    tu_expect_error(SIM8B "--output-tokens 10 --rate 2 --input-dist normal:5:1", 2,
                    "expected uniform:MIN:MAX or lognormal:MEAN:CV, got 'normal:5:1'", true);
    tu_expect_error(SIM8B "--output-tokens 10 --rate 2 --input-dist uniform:5", 2,
                    "expected two decimal numbers after 'uniform:'", true);
    tu_expect_error(SIM8B "--output-tokens 10 --rate 2 --input-dist uniform:9:5", 2,
                    "uniform in [a, b] needs whole numbers", true);
    tu_expect_error(SIM8B "--input-tokens 131000 --output-tokens 100 --rate 2", 2,
                    "131100 tokens of context exceed Llama 3.1 8B's 131072", true);
    tu_expect_error(SIM8B "--input-tokens 100 --output-tokens 10 --concurrency 9 --requests 3", 2,
                    "--concurrency 9 is more than --requests 3", true);
    tu_expect_error(SIM8B "--input-tokens 100 --output-tokens 100000 --rate 2 --requests "
                          "1000000",
                    2, "more than the 1e+09 a simulation may run", true);
    tu_expect_error("predict --model llama-3.1-8b --hw h100-sxm --devices 1 --batch 1 "
                    "--input-tokens 100 --output-tokens 10 --seed 3",
                    2, "--seed needs traffic", true);
    tu_expect_error("predict --model llama-3.1-8b --hw h100-sxm --devices 1 --batch 1 "
                    "--input-tokens 100 --output-tokens 10 --ttft-slo 300",
                    2, "--ttft-slo counts the requests of a simulation", true);
    tu_expect_error(SIM8B "--input-tokens 100 --output-tokens 10 --rate 2 --tpot-slo 0", 2,
                    "--tpot-slo: 0 is out of range", true);
    tu_expect_error("predict --model llama-3.1-8b --hw h100-sxm --devices 1 --batch 1 "
                    "--input-tokens 100 --output-tokens 10 --rate 1 --fidelity paper",
                    2, "deploy fidelity only", true);
}

/* The engine's limit on running sequences is the simulator's default, and a whole number. */
Test(serve, the_profiles_running_sequences_limit_is_a_whole_number)
{
    isim_hw *h = tu_hw("h100-sxm");
    cr_assert_eq(h->max_running_sequences, 1024);
    char *text = tu_read(h->path, NULL);
    cr_assert_not_null(text);
    char *bad = tu_replace(text, "max_running_sequences: {value: 1024,",
                           "max_running_sequences: {value: 1024.5,");
    char *path = tu_write("h100-sxm.yaml", bad);
    isim_hw *b = NULL;
    isim_error e = {0};
    cr_assert_eq(isim_hw_load(path, &b, &e), ISIM_ESCHEMA);
    cr_assert(strstr(e.message, "'serving.max_running_sequences' must be a whole number, got "
                                "1024.5"),
              "%s", e.message);
    tu_discard(path);
    free(bad);
    free(text);
    isim_hw_free(h);
}

/* ---- the closed form against the simulation ---------------------------------------------- */

typedef struct {
    double cf_ttft, cf_tpot, sim_ttft_mean, sim_ttft_p50, sim_tpot;
} compared;

/* C clients, 20 requests each, lengths uniform in [0.8 L, L] (the lock-step of equal lengths
 * broken, as the closed form assumes), 900 / 180 tokens on average; no request overhead,
 * which the simulation leaves out. */
static compared compare(fixture *f, double clients)
{
    f->h->request_overhead_s = 0;
    isim_query q = f->q;
    q.batch = clients;
    q.input_tokens = 900;
    q.output_tokens = 180;
    isim_closed_loop cl = {.clients = clients, .input_tokens = 900, .output_tokens = 180};
    isim_closed_form cf;
    isim_result r;
    isim_error e = {0};
    cr_assert_eq(isim_serve_closed_loop(f->m, f->h, &q, &cl, &cf, &r, &e), ISIM_OK);
    isim_step_ctx *x = NULL;
    q.batch = 1;
    cr_assert_eq(isim_step_ctx_new(f->m, f->h, &q, &x, &r, &e), ISIM_OK);
    isim_traffic t = {.kind = ISIM_ARRIVE_CLOSED,
                      .clients = (int64_t)clients,
                      .requests = (int64_t)(20 * clients),
                      .input = {ISIM_LEN_UNIFORM, 800, 1000},
                      .output = {ISIM_LEN_UNIFORM, 160, 200},
                      .seed = 1};
    isim_sched s = {.max_seqs = 1024};
    isim_serve_result *sv = NULL;
    cr_assert_eq(isim_serve_run(f->m, x, &s, &t, &sv, &e), ISIM_OK, "%s", e.message);
    compared c = {cf.ttft_s, cf.tpot_s, sv->ttft_s.mean, sv->ttft_s.p50, sv->tpot_s.mean};
    cr_log_info("%4.0f clients: closed form TTFT %.1f ms, TPOT %.2f ms; simulated TTFT mean %.1f "
                "ms (p50 %.1f), TPOT %.2f ms",
                clients, c.cf_ttft * 1e3, c.cf_tpot * 1e3, c.sim_ttft_mean * 1e3,
                c.sim_ttft_p50 * 1e3, c.sim_tpot * 1e3);
    isim_serve_result_free(sv);
    isim_step_ctx_free(x);
    return c;
}

/* Llama 3.1 8B on one H100. Where they agree: one client (a request alone), and past the
 * KV cache (512 clients: the slots' queue dominates). Where they do not: in between, the
 * closed form puts TPOT up to a fifth high (every other request's prompt in full in each
 * TPOT) and misses the TTFT's tail (the first requests' burst, the queue of prompts behind
 * a long one): its TTFT lies under the simulated mean. docs/serving.md. */
Test(serve, the_closed_form_agrees_with_the_simulation_at_light_and_heavy_load)
{
    fixture f;
    setup(&f, "llama-3.1-8b", "h100-sxm", 1);
    compared one = compare(&f, 1);
    cr_assert(tu_close(one.cf_ttft, one.sim_ttft_mean, 0.03), "%g %g", one.cf_ttft,
              one.sim_ttft_mean);
    cr_assert(tu_close(one.cf_tpot, one.sim_tpot, 0.03), "%g %g", one.cf_tpot, one.sim_tpot);
    compared full = compare(&f, 512);
    cr_assert(tu_close(full.cf_ttft, full.sim_ttft_mean, 0.15), "%g %g", full.cf_ttft,
              full.sim_ttft_mean);
    cr_assert(tu_close(full.cf_tpot, full.sim_tpot, 0.05), "%g %g", full.cf_tpot, full.sim_tpot);
    for (int k = 0; k < 2; k++) {
        compared mid = compare(&f, k ? 256 : 64);
        cr_assert(mid.cf_tpot > mid.sim_tpot && mid.cf_tpot < 1.2 * mid.sim_tpot, "%g %g",
                  mid.cf_tpot, mid.sim_tpot);
        cr_assert(mid.cf_ttft < mid.sim_ttft_mean && mid.cf_ttft > 0.3 * mid.sim_ttft_mean, "%g %g",
                  mid.cf_ttft, mid.sim_ttft_mean);
    }
    release(&f);
}

/* --plot draws the simulation whole, as a PNG, and is refused without traffic. */
Test(serve_cli, simulate_draws_its_latencies_and_queue)
{
    char *dir = tu_write("keep", "");
    *strrchr(dir, '/') = '\0';
    char png[512], args[1024];
    snprintf(png, sizeof png, "%s/sim.png", dir);
    snprintf(args, sizeof args,
             SIM8B "--rate 20 --requests 100 --input-tokens 800 --output-tokens 50 --plot '%s'",
             png);
    char *out = NULL;
    cr_assert_eq(tu_run(args, &out, NULL), 0);
    cr_assert(strstr(out, "plot: "), "%s", out);
    FILE *f = fopen(png, "rb");
    cr_assert_not_null(f);
    unsigned char head[8];
    cr_assert_eq(fread(head, 1, 8, f), 8u);
    fclose(f);
    cr_assert_eq(memcmp(head, "\x89PNG\r\n\x1a\n", 8), 0);
    tu_expect_error("predict --model llama-3.1-8b --hw h100-sxm --devices 1 --batch 1 "
                    "--input-tokens 100 --output-tokens 10 --plot x.png",
                    2, "--plot draws a simulation", true);
    remove(png);
    strcat(dir, "/keep");
    tu_discard(dir);
    free(out);
}

static double ten_ms(void *ctx, size_t pass, const isim_step_mix *mix)
{
    (void)pass;
    (void)mix;
    return *(const double *)ctx;
}

/* A trace's requests arrive when it says with its lengths; a pass timed by the caller (an
 * engine's measured step, replayed) takes that time, and the log keeps every pass. */
Test(serve, a_trace_replayed_with_given_pass_times_keeps_its_arrivals_and_lengths)
{
    fixture f;
    setup(&f, "llama-3.1-8b", "h100-sxm", 1);
    isim_sched s = {.max_seqs = 8, .token_budget = 512};
    const isim_trace_req tr[2] = {{0.0, 100, 3}, {1.0, 700, 2}};
    isim_traffic t = {.kind = ISIM_ARRIVE_TRACE, .requests = 2, .trace = tr};
    double pass = 0.010;
    isim_serve_opts o = {.step_time = ten_ms, .ctx = &pass, .keep_passes = true};
    isim_serve_result *r = NULL;
    isim_error e = {0};
    cr_assert_eq(isim_serve_run_opts(f.m, f.x, &s, &t, &o, &r, &e), ISIM_OK, "%s", e.message);
    /* request 1: one chunk of 100 (its first token), two decode passes */
    cr_assert(tu_close(r->req[0].first_token_s, 0.010, 1e-12));
    cr_assert(tu_close(r->req[0].done_s, 0.030, 1e-12));
    /* request 2 at 1 s: chunks of 512 and 188, then one decode pass */
    cr_assert(tu_close(r->req[1].arrival_s, 1.0, 1e-12));
    cr_assert(tu_close(r->req[1].first_token_s, 1.020, 1e-12));
    cr_assert(tu_close(r->req[1].done_s, 1.030, 1e-12));
    cr_assert_eq(r->req[1].input_tokens, 700);
    cr_assert_eq(r->req[1].output_tokens, 2);
    cr_assert_eq(r->n_passes, 6u);
    cr_assert_eq(r->passes[0].mix.prefill_tokens, 100);
    cr_assert_eq(r->passes[1].mix.decode_seqs, 1);
    cr_assert(tu_close(r->passes[3].start_s, 1.0, 1e-12));
    cr_assert_eq(r->passes[3].mix.prefill_tokens, 512);
    cr_assert_eq(r->passes[4].mix.prefill_tokens, 188);
    cr_assert_eq(r->passes[4].mix.finishing, 1);
    isim_serve_result_free(r);
    /* refused: arrivals out of order, a request past the context, a pass of no time */
    const isim_trace_req back[2] = {{0.5, 10, 10}, {0.2, 10, 10}};
    t.trace = back;
    cr_assert_eq(isim_serve_run(f.m, f.x, &s, &t, &r, &e), ISIM_EINVAL);
    cr_assert(strstr(e.message, "request 2 arrives at 0.2 s, before request 1"), "%s", e.message);
    const isim_trace_req longer[1] = {{0, 131072, 1}};
    t.trace = longer;
    t.requests = 1;
    cr_assert_eq(isim_serve_run(f.m, f.x, &s, &t, &r, &e), ISIM_EINVAL);
    cr_assert(strstr(e.message, "context"), "%s", e.message);
    t.trace = tr;
    pass = 0;
    cr_assert_eq(isim_serve_run_opts(f.m, f.x, &s, &t, &o, &r, &e), ISIM_EINVAL);
    cr_assert(strstr(e.message, "pass 0 took 0 s"), "%s", e.message);
    cr_assert_null(r);
    release(&f);
}

/* A replica's capacity, worked by hand: b = 10 sequences, 20 ms decode passes, 100 output
 * tokens, the batch's prompts 1 s in 2 chunks of 1 ms overhead each. A request's prompt
 * adds (1 - 2 x 0.001) / 10 = 0.0998 s of compute to passes that run anyway; b requests
 * take 100 x 0.02 + 10 x 0.0998 = 2.998 s; two data-parallel groups serve twice that. */
Test(serve, a_replicas_capacity_counts_its_prompts)
{
    isim_result res = {.dp = 1, .tpot_s = 0.02, .prefill_all_s = 1.0, .prefill_chunks = 2};
    cr_assert(tu_close(isim_serve_capacity(&res, 10, 0.001, 100), 10 / 2.998, 1e-12));
    res.dp = 2;
    cr_assert(tu_close(isim_serve_capacity(&res, 10, 0.001, 100), 20 / 2.998, 1e-12));
    /* without prompts, the decode passes' own rate: b / (osl x tpot) */
    res.prefill_all_s = 0;
    res.prefill_chunks = 0;
    cr_assert(tu_close(isim_serve_capacity(&res, 10, 0.001, 100), 20 / 2.0, 1e-12));
}

/* TensorRT-LLM's GUARANTEED_NO_EVICT: the cache that made vLLM preempt (above) admits a
 * request only with room for its whole prompt and output: 5500 tokens of blocks of 16 hold
 * four requests of 1200 (75 blocks each, 343 blocks in all), never more at once, and none
 * is preempted. */
Test(serve, trtllm_reserves_each_requests_whole_cache_and_never_preempts)
{
    fixture f;
    setup(&f, "llama-3.1-8b", "h100-sxm", 1);
    isim_sched s = {.policy = ISIM_POLICY_TRTLLM, .max_seqs = 16, .kv_tokens = 5500};
    isim_traffic t = fixed(ISIM_ARRIVE_CLOSED, 64, 1000, 200);
    t.clients = 16;
    isim_serve_opts o = {.keep_passes = true};
    isim_serve_result *r = NULL;
    isim_error e = {0};
    cr_assert_eq(isim_serve_run_opts(f.m, f.x, &s, &t, &o, &r, &e), ISIM_OK, "%s", e.message);
    cr_assert_eq(r->preemptions, 0u);
    int64_t most = 0;
    for (size_t k = 0; k < r->n_passes; k++)
        most = r->passes[k].running > most ? r->passes[k].running : most;
    cr_assert_eq(most, 4);
    for (size_t i = 0; i < r->n; i++)
        cr_assert(isfinite(r->req[i].done_s));
    isim_serve_result_free(r);
    release(&f);
}

/* SGLang without mixed chunks: a pass computes prompt chunks or decode tokens, never both;
 * vLLM mixes them. A second request arriving while the first decodes stalls it for its
 * prompt's passes under SGLang. */
Test(serve, sglang_runs_prompts_and_decodes_in_separate_passes)
{
    fixture f;
    setup(&f, "llama-3.1-8b", "h100-sxm", 1);
    const isim_trace_req tr[2] = {{0.0, 100, 50}, {0.05, 2000, 5}};
    isim_traffic t = {.kind = ISIM_ARRIVE_TRACE, .requests = 2, .trace = tr};
    isim_serve_opts o = {.keep_passes = true};
    size_t mixed[2] = {0, 0};
    for (int p = 0; p < 2; p++) {
        isim_sched s = {.policy = p ? ISIM_POLICY_SGLANG : ISIM_POLICY_VLLM,
                        .max_seqs = 8,
                        .token_budget = 512};
        isim_serve_result *r = NULL;
        isim_error e = {0};
        cr_assert_eq(isim_serve_run_opts(f.m, f.x, &s, &t, &o, &r, &e), ISIM_OK, "%s", e.message);
        for (size_t k = 0; k < r->n_passes; k++)
            mixed[p] += r->passes[k].mix.prefill_tokens > 0 && r->passes[k].mix.decode_seqs > 0;
        isim_serve_result_free(r);
    }
    cr_assert_eq(mixed[0], 4u, "vLLM: the second prompt's 4 chunks ride with the decodes");
    cr_assert_eq(mixed[1], 0u);
    cr_assert_str_eq(isim_sched_policy_name(ISIM_POLICY_SGLANG), "sglang");
    isim_sched_policy pol;
    cr_assert(isim_sched_policy_parse("trtllm", &pol) && pol == ISIM_POLICY_TRTLLM);
    cr_assert(!isim_sched_policy_parse("tgi", &pol));
    release(&f);
}
