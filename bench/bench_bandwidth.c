/* How this machine's streaming rate moves over time: the probe `infersim validate` runs
 * beside its points (a one-row bf16 matmul over 256 MB on every thread, the decode case
 * calibrate measures), read back to back for SECONDS. Prints the distribution of the reads
 * (median, the rate at the mean time of the middle reads: calibrate's statistic) and of
 * one-second windows, and the largest move from one second to the next. With --timeline,
 * every read (seconds since the start, GB/s). Prints figures; it is a benchmark, not a
 * test.
 *   usage: bench_bandwidth [SECONDS] [--timeline]   (SECONDS default 30) */
#include "runtime/runtime.h"

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

int main(int argc, char **argv)
{
    double seconds = 30;
    bool timeline = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--timeline") == 0)
            timeline = true;
        else if ((seconds = atof(argv[i])) <= 0 || seconds > 3600) {
            fprintf(stderr, "usage: bench_bandwidth [SECONDS (0 to 3600)] [--timeline]\n");
            return 2;
        }
    }
    isim_rt_stream_probe *probe = NULL;
    isim_error err = {0};
    if (isim_rt_stream_probe_new(0, &probe, &err)) {
        fprintf(stderr, "bench_bandwidth: %s\n", err.message);
        return 1;
    }
    size_t cap = 1 << 15, n = 0;
    double *t = malloc(cap * sizeof *t), *bw = malloc(cap * sizeof *bw),
           *sorted = malloc(cap * sizeof *sorted);
    if (!t || !bw || !sorted) {
        fprintf(stderr, "bench_bandwidth: out of memory\n");
        return 1;
    }
    double t0 = now_s();
    while (n < cap && (t[n] = now_s() - t0) < seconds) {
        bw[n] = isim_rt_stream_probe_run(probe, 1);
        if (timeline)
            printf("%8.3f %7.2f\n", t[n], bw[n] * 1e-9);
        n++;
    }
    double end = now_s() - t0;
    isim_rt_stream_probe_free(probe);
    if (n < 3) {
        fprintf(stderr, "bench_bandwidth: too few reads in %.3g s\n", seconds);
        return 1;
    }
    memcpy(sorted, bw, n * sizeof *bw);
    isim_rt_stat s = isim_rt_summarize(sorted, (int)n, true); /* sorts them */
    double p10 = sorted[n / 10], p90 = sorted[n - 1 - n / 10];
    /* one-second windows: each the rate of its reads' mean time; how far apart they are,
     * and the largest move from one second to the next */
    int nw = (int)ceil(end), w = 0;
    double *win = calloc((size_t)nw, sizeof *win), *inv = calloc((size_t)nw, sizeof *inv);
    int *cnt = calloc((size_t)nw, sizeof *cnt);
    if (!win || !inv || !cnt) {
        fprintf(stderr, "bench_bandwidth: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        int k = (int)t[i] < nw ? (int)t[i] : nw - 1;
        inv[k] += 1.0 / bw[i];
        cnt[k]++;
    }
    double move = 1;
    for (int k = 0; k < nw; k++) {
        if (!cnt[k])
            continue;
        win[w] = cnt[k] / inv[k];
        if (w > 0)
            move = fmax(move, fmax(win[w] / win[w - 1], win[w - 1] / win[w]));
        w++;
    }
    printf("streaming probe (one-row bf16 matmul over 256 MB, every thread): %zu reads in %.1f s\n",
           n, end);
    printf("  reads, GB/s: median %.1f, rate of the middle reads' mean time %.1f, 10th "
           "percentile %.1f, 90th %.1f, worst %.1f, best %.1f\n",
           s.median * 1e-9, s.mean * 1e-9, p10 * 1e-9, p90 * 1e-9, s.worst * 1e-9, s.best * 1e-9);
    isim_rt_stat ws = isim_rt_summarize(win, w, true);
    printf("  %d one-second windows, GB/s: median %.1f, slowest %.1f, fastest %.1f; the largest "
           "move from one second to the next x%.2f\n",
           w, ws.median * 1e-9, ws.worst * 1e-9, ws.best * 1e-9, move);
    free(win);
    free(inv);
    free(cnt);
    free(t);
    free(bw);
    free(sorted);
    return 0;
}
