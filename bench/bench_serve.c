/* The request-level simulator's speed (issue target: 100,000 requests of Llama 3.1 70B on
 * 8 x H100 at 80% load in under 0.5 s on one core): the replica's capacity is read off a
 * saturated run (the requests per second it serves when arrivals far outrun it), then
 * 100,000 Poisson requests at 80% of it are simulated 5 times. Prints the median CPU time,
 * simulated requests and passes per second, and the percentiles, which must repeat byte
 * for byte. It is a benchmark, not a test.
 *   usage: bench_serve [DATA_DIR] */
#include "sim/serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static isim_serve_result *run(const isim_model *m, const isim_step_ctx *x, const isim_sched *s,
                              const isim_traffic *t)
{
    isim_serve_result *r = NULL;
    isim_error e = {0};
    if (isim_serve_run(m, x, s, t, &r, &e)) {
        fprintf(stderr, "bench_serve: %s\n", e.message);
        exit(1);
    }
    return r;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ISIM_DATA_DIR;
    isim_error e = {0};
    isim_model *m = NULL;
    isim_hw *h = NULL;
    if (isim_catalog_model(dir, "llama-3.1-70b", &m, &e) ||
        isim_catalog_hw(dir, "h100-sxm", &h, &e)) {
        fprintf(stderr, "bench_serve: %s\n", e.message);
        return 1;
    }
    isim_query q;
    isim_query_init(&q);
    q.devices = 8;
    q.input_tokens = 1000;
    q.output_tokens = 200;
    isim_result res;
    isim_step_ctx *x = NULL;
    if (isim_step_ctx_new(m, h, &q, &x, &res, &e) || !x) {
        fprintf(stderr, "bench_serve: %s%s\n", e.message, res.reason_detail);
        return 1;
    }
    /* vLLM's limits on a GPU of 70 GiB or more: 1024 sequences, 8192 tokens per pass */
    isim_sched s = {.max_seqs = 1024};
    isim_traffic t = {.kind = ISIM_ARRIVE_POISSON,
                      .rate = 1000,
                      .requests = 20000,
                      .input = {ISIM_LEN_UNIFORM, 800, 1000},
                      .output = {ISIM_LEN_UNIFORM, 160, 200},
                      .seed = 1};
    isim_serve_result *sat = run(m, x, &s, &t);
    double capacity = sat->served_rps;
    printf("Llama 3.1 70B, 8 x H100 SXM (tp %d), 800-1000 in / 160-200 out tokens, at most %lld "
           "running: capacity %.4g requests/s (a saturated run of %lld)\n",
           res.tp, (long long)s.max_seqs, capacity, (long long)t.requests);
    isim_serve_result_free(sat);
    t.rate = 0.8 * capacity;
    t.requests = 100000;
    double secs[5];
    isim_serve_result *first = NULL;
    for (int i = 0; i < 5; i++) {
        double t0 = cpu_s();
        isim_serve_result *r = run(m, x, &s, &t);
        secs[i] = cpu_s() - t0;
        if (!first) {
            first = r;
            continue;
        }
        if (memcmp(r->req, first->req, r->n * sizeof *r->req) != 0) {
            fprintf(stderr, "bench_serve: run %d differs from the first\n", i + 1);
            return 1;
        }
        isim_serve_result_free(r);
    }
    qsort(secs, 5, sizeof secs[0], cmp);
    printf("100000 requests at %.4g per s (80%% of capacity): median %.3f s CPU of 5 (%.3f to "
           "%.3f), %.3g requests/s and %.3g passes/s simulated\n",
           t.rate, secs[2], secs[0], secs[4], 1e5 / secs[2], (double)first->steps / secs[2]);
    printf("  TTFT p50 %.1f p99 %.1f ms; TPOT p50 %.2f p99 %.2f ms; %.3g running on average; "
           "%zu passes; overloaded %s; identical in all 5 runs\n",
           first->ttft_s.p50 * 1e3, first->ttft_s.p99 * 1e3, first->tpot_s.p50 * 1e3,
           first->tpot_s.p99 * 1e3, first->mean_running, first->steps,
           first->overloaded ? "yes" : "no");
    isim_serve_result_free(first);
    isim_step_ctx_free(x);
    isim_model_free(m);
    isim_hw_free(h);
    return 0;
}
