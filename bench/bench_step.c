/* Single-configuration evaluations per second of the step model, the planner's inner
 * loop: isim_paper_step over a sweep of points (paper fidelity) and isim_predict (both
 * fidelities). Prints figures; it is a benchmark, not a test.
 *   usage: bench_step [DATA_DIR] */
#include "sim/sim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int load(const char *dir, const char *model, const char *hw, isim_model **m,
                isim_hw **h)
{
    isim_error e = {0};
    char buf[1400];
    if (isim_catalog_model(dir, model, m, &e) || isim_catalog_hw(dir, hw, h, &e)) {
        fprintf(stderr, "bench_step: %s\n", isim_error_format(&e, buf, sizeof buf));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ISIM_DATA_DIR;
    isim_model *m = NULL;
    isim_hw *h = NULL, *hd = NULL;
    isim_model *m2 = NULL;
    if (load(dir, "llama-3.1-70b", "epoch-h100", &m, &h) ||
        load(dir, "llama-3.1-70b", "h100-sxm", &m2, &hd))
        return 1;
    isim_error e = {0};
    isim_paper_ctx *c = NULL;
    if (isim_paper_ctx_new(m, h, ISIM_BF16, ISIM_BF16, &c, &e))
        return 1;

    /* paper: one candidate configuration per call, sweeping N, batch and the choices */
    const int n = 4000000;
    double sink = 0, t0 = now_s();
    isim_paper_point p = {.seq_len = 1, .input_len = 0};
    for (int i = 0; i < n; i++) {
        p.devices = 4 + (i & 255);
        p.batch = 1 + ((i >> 8) & 1023);
        p.pp = 1 + ((i >> 3) & 3);
        p.attn_scaledown = 1 + (i & 1);
        p.two_d = (i >> 1) & 1;
        double t = isim_paper_step(c, &p, NULL);
        sink += isfinite(t) ? t : 0;
    }
    double dt = now_s() - t0;
    printf("paper isim_paper_step:  %.3g evaluations/s (%.1f ns each, %d calls, checksum %.6g)\n",
           n / dt, 1e9 * dt / n, n, sink);

    /* paper: the released code's full candidate search for one (N, batch) */
    const int nb = 50000;
    t0 = now_s();
    for (int i = 0; i < nb; i++)
        sink += isim_paper_best(c, 8 + (i & 63), 1 + (i % 500), 0, 1, 1000, NULL, NULL);
    dt = now_s() - t0;
    printf("paper isim_paper_best:  %.3g searches/s (132 candidates each, %.2f us each)\n",
           nb / dt, 1e6 * dt / nb);

    /* both fidelities through the public isim_predict */
    for (int f = 0; f < 2; f++) {
        isim_query q;
        isim_query_init(&q);
        q.fidelity = f == 0 ? ISIM_PAPER : ISIM_DEPLOY;
        q.input_tokens = 1024;
        q.output_tokens = 1024;
        const isim_hw *hw = f == 0 ? h : hd;
        const isim_model *mm = f == 0 ? m : m2;
        const int np = f == 0 ? 5000 : 50000;
        isim_result r;
        t0 = now_s();
        for (int i = 0; i < np; i++) {
            q.devices = 8 * (1 + (i & 1));
            q.batch = 1 + (i % 256);
            if (isim_predict(mm, hw, &q, &r, &e))
                return 1;
            sink += r.tpot_s;
        }
        dt = now_s() - t0;
        printf("%-6s isim_predict:   %.3g predictions/s (%.2f us each; decode, prefill, "
               "memory, cost)\n",
               isim_fidelity_name(q.fidelity), np / dt, 1e6 * dt / np);
    }
    printf("(checksum %.6g)\n", sink);
    isim_paper_ctx_free(c);
    isim_model_free(m);
    isim_model_free(m2);
    isim_hw_free(h);
    isim_hw_free(hd);
    return 0;
}
