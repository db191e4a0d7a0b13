/* The planner's speed, against the released notebook's (about 15 s on two cores for the
 * Llama 3 70B frontier on the H100 without speculative decoding, 1-2 min with it), and
 * the deploy search's configurations per second; determinism of the JSON. Prints figures;
 * it is a benchmark, not a test.
 *   usage: bench_plan [DATA_DIR] */
#include "planner/planner.h"
#include "reports/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median wall time of `reps` runs of the request; the last plan in *out. */
static double timed(const isim_plan_request *r, int reps, isim_plan **out)
{
    double t[16];
    for (int i = 0; i < reps; i++) {
        isim_plan *p = NULL;
        isim_error e = {0};
        double t0 = now_s();
        if (isim_plan_run(r, &p, &e)) {
            fprintf(stderr, "bench_plan: %s\n", e.message);
            exit(1);
        }
        t[i] = now_s() - t0;
        if (i == reps - 1)
            *out = p;
        else
            isim_plan_free(p);
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp);
    return t[reps / 2];
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ISIM_DATA_DIR;
    isim_error e = {0};
    isim_model *m70 = NULL, *m8 = NULL, *m405 = NULL;
    isim_hw *h100 = NULL;
    if (isim_catalog_model(dir, "llama-3.1-70b", &m70, &e) ||
        isim_catalog_model(dir, "llama-3.1-8b", &m8, &e) ||
        isim_catalog_model(dir, "llama-3.1-405b", &m405, &e) ||
        isim_catalog_hw(dir, "epoch-h100", &h100, &e)) {
        fprintf(stderr, "bench_plan: %s\n", e.message);
        return 1;
    }

    /* 1. the paper frontier on the notebook's grid: 400 x 400, PP list, 2-D and 1-D */
    printf("paper frontier, Llama 3 70B on the paper's H100, 400 x 400 grid, PP and 2-D "
           "choices, context 0:\n");
    for (int spec = 0; spec < 2; spec++)
        for (int threads = 1; threads <= 2; threads++) {
            isim_plan_request r;
            isim_plan_request_init(&r);
            r.fidelity = ISIM_PAPER;
            r.model = m70;
            const isim_hw *hw[1] = {h100};
            r.hw = hw;
            r.n_hw = 1;
            r.input_tokens = 0;
            r.details = false;
            r.threads = threads;
            r.draft = spec ? m8 : NULL;
            isim_plan *p = NULL;
            double t = timed(&r, spec ? 5 : 15, &p);
            double notebook = spec ? 60.0 : 15.0;
            printf("  %-28s %d thread%s: %8.2f ms (%zu frontier points; %.0fx faster than the "
                   "notebook's %g s)\n",
                   spec ? "with speculative decoding" : "without speculative decoding", threads,
                   threads > 1 ? "s" : " ", t * 1e3, p->n_frontier, notebook / t, notebook);
            isim_plan_free(p);
        }

    /* 2. a deploy plan over the whole catalog, every precision, speculative decoding */
    char **ids = NULL;
    if (isim_catalog_list(dir, "hw-profiles", &ids, &e)) {
        fprintf(stderr, "bench_plan: %s\n", e.message);
        return 1;
    }
    isim_hw *hws[128];
    size_t n_hw = 0;
    for (char **id = ids; *id && n_hw < 128; id++) {
        isim_hw *h = NULL;
        if (isim_catalog_hw(dir, *id, &h, &e)) {
            fprintf(stderr, "bench_plan: %s\n", e.message);
            return 1;
        }
        if (h->has_serving)
            hws[n_hw++] = h;
        else
            isim_hw_free(h);
    }
    const isim_dtype ws[] = {ISIM_BF16, ISIM_FP8, ISIM_INT8, ISIM_INT4, ISIM_FP4};
    const isim_dtype kvs[] = {ISIM_BF16, ISIM_FP8};
    isim_plan_request r;
    isim_plan_request_init(&r);
    r.model = m405;
    r.hw = (const isim_hw *const *)hws;
    r.n_hw = n_hw;
    r.weights = ws;
    r.n_weights = 5;
    r.kv = kvs;
    r.n_kv = 2;
    r.draft = m8;
    isim_plan *p = NULL;
    double t = timed(&r, 5, &p);
    printf("deploy plan, Llama 3.1 405B over %zu profiles x 5 weight x 2 KV precisions x "
           "speculative decoding, one core:\n  %.1f ms, %llu configurations, %.3g configurations/s, "
           "%zu frontier points\n",
           n_hw, t * 1e3, (unsigned long long)p->evaluated, (double)p->evaluated / t,
           p->n_frontier);

    /* 3. determinism: the same request, byte-identical JSON */
    isim_plan *q = NULL;
    if (isim_plan_run(&r, &q, &e)) {
        fprintf(stderr, "bench_plan: %s\n", e.message);
        return 1;
    }
    char *a = isim_report_plan_json(&r, p, false), *b = isim_report_plan_json(&r, q, false);
    printf("determinism: two runs give %s JSON (%zu bytes)\n",
           a && b && strcmp(a, b) == 0 ? "byte-identical" : "DIFFERENT", a ? strlen(a) : 0);
    free(a);
    free(b);
    isim_plan_free(p);
    isim_plan_free(q);
    for (size_t i = 0; i < n_hw; i++)
        isim_hw_free(hws[i]);
    isim_ids_free(ids);
    isim_model_free(m70);
    isim_model_free(m8);
    isim_model_free(m405);
    isim_hw_free(h100);
    return 0;
}
