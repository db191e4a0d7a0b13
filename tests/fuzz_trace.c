/* libFuzzer target: arbitrary bytes as a trace of requests (`simulate --trace`) must load or
 * be refused with an error at its place, never crash, leak, hang or read out of bounds.
 * Whatever loads holds requests in order and within their limits, each at a line of the
 * file; a trace of few short requests is then checked against Llama 3.2 1B's context and
 * simulated on one L4, the simulator serving whatever arrivals and lengths the file chose.
 *   tests/fuzz.sh 120 fuzz_trace */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "sim/serve.h"

#include "tests/fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* a trace simulated: few requests, each short (a run stays well under a second) */
#define SIM_MAX_REQUESTS 32
#define SIM_MAX_TOKENS 4096

static void check(const isim_trace *t)
{
    if (t->n < 1 || t->n > ISIM_SERVE_MAX_REQUESTS)
        abort();
    for (size_t i = 0; i < t->n; i++) {
        const isim_trace_req *r = &t->req[i];
        if (!(r->arrival_s >= 0 && r->arrival_s <= ISIM_TRACE_MAX_ARRIVAL_S) ||
            (i > 0 && r->arrival_s < t->req[i - 1].arrival_s))
            abort(); /* arrivals finite, in range and in order */
        if (r->input_tokens < 1 || r->input_tokens > ISIM_TRACE_MAX_TOKENS ||
            r->output_tokens < 1 || r->output_tokens > ISIM_TRACE_MAX_TOKENS)
            abort();
        if (t->at[i].line < 2 || t->at[i].column < 1 ||
            (i > 0 && t->at[i].line <= t->at[i - 1].line))
            abort(); /* each request on a line of its own after the header */
    }
}

static void simulate(const isim_trace *t)
{
    static isim_model *m;
    static isim_step_ctx *x;
    if (!m) {
        isim_hw *h = NULL;
        isim_query q;
        isim_query_init(&q);
        q.devices = 1;
        q.input_tokens = 512;
        q.output_tokens = 64;
        isim_result r;
        if (isim_catalog_model(ISIM_DATA_DIR, "llama-3.2-1b", &m, NULL) ||
            isim_catalog_hw(ISIM_DATA_DIR, "l4", &h, NULL) ||
            isim_step_ctx_new(m, h, &q, &x, &r, NULL) || !x)
            abort(); /* the harness itself is broken */
        isim_hw_free(h);
    }
    isim_error e;
    if (isim_trace_fits(t, m, &e) != ISIM_OK) {
        if (e.line < 2 || e.column < 1)
            abort(); /* a request too long is named by its place */
        return;
    }
    if (t->n > SIM_MAX_REQUESTS)
        return;
    for (size_t i = 0; i < t->n; i++)
        if (t->req[i].input_tokens + t->req[i].output_tokens > SIM_MAX_TOKENS)
            return;
    isim_traffic tr = {.kind = ISIM_ARRIVE_TRACE, .requests = (int64_t)t->n, .trace = t->req};
    isim_sched s = {.max_seqs = 8, .token_budget = 512};
    isim_serve_result *res = NULL;
    if (isim_serve_run(m, x, &s, &tr, &res, &e) != ISIM_OK)
        abort(); /* a trace that loads and fits is served */
    if (res->n != t->n || !(res->duration_s >= 0) || !isfinite(res->e2e_s.max))
        abort();
    isim_serve_result_free(res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[] = "/tmp/isim-fuzz-XXXXXX";
    if (!fuzz_input_file(path, data, size))
        return 0;
    isim_error e;
    isim_trace *t = NULL;
    if (isim_trace_load(path, &t, &e) == ISIM_OK) {
        check(t);
        simulate(t);
    } else if (t || !e.message[0] || e.line < 0 || e.column < 0 || (e.line > 0 && e.column < 1)) {
        abort(); /* every refusal says why, and where when it can */
    }
    isim_trace_free(t);
    unlink(path);
    return 0;
}
