/* The shipped scenarios' speed: for each, the points it plans, the configurations it
 * predicts, and the median wall time of its run (planner and sensitivity) on one thread
 * and on every CPU, and of writing its report (gnuplot included). Prints figures; it is a
 * benchmark, not a test.
 *   usage: bench_scenario [DATA_DIR] [REPS] */
#include "planner/planner.h"
#include "reports/report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

static void fail(const char *what, const isim_error *e)
{
    char buf[1600];
    fprintf(stderr, "bench_scenario: %s: %s\n", what, isim_error_format(e, buf, sizeof buf));
    exit(1);
}

/* Median of `reps` runs on `threads` threads (0: one per CPU); the last result kept. */
static double timed_run(const isim_scenario *s, const char *dir, int threads, int reps,
                        isim_scenario_result **out)
{
    double t[32];
    for (int i = 0; i < reps; i++) {
        isim_scenario_run_opts o = {.data_dir = dir, .threads = threads};
        isim_scenario_result *r = NULL;
        isim_error e = {0};
        double t0 = now_s();
        if (isim_scenario_run(s, &o, &r, &e))
            fail(s->id, &e);
        t[i] = now_s() - t0;
        if (i == reps - 1)
            *out = r;
        else
            isim_scenario_result_free(r);
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp);
    return t[reps / 2];
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ISIM_DATA_DIR;
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    if (reps < 1 || reps > 31) {
        fprintf(stderr, "bench_scenario: REPS must be 1 to 31\n");
        return 2;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    char **ids = NULL;
    isim_error e = {0};
    if (isim_catalog_list(dir, "scenarios", &ids, &e))
        fail("scenarios", &e);
    printf("shipped scenarios, deploy fidelity unless noted; medians of %d runs; %ld CPUs\n", reps,
           cpus);
    printf("%-20s %6s %13s %12s %12s %12s\n", "scenario", "points", "configurations",
           "run 1 thread", "run all CPUs", "report");
    for (char **id = ids; *id; id++) {
        char path[1200];
        isim_scenario *s = NULL;
        if (isim_catalog_path(dir, "scenario", *id, path, sizeof path, &e) ||
            isim_scenario_load(path, &s, &e))
            fail(*id, &e);
        isim_scenario_result *r1 = NULL, *rn = NULL;
        double t1 = timed_run(s, dir, 1, reps, &r1);
        double tn = timed_run(s, dir, 0, reps, &rn);
        /* the report, into a fresh temporary directory each time */
        double tr[32];
        for (int i = 0; i < reps; i++) {
            char tmp[] = "/tmp/bench-scenario-XXXXXX";
            if (!mkdtemp(tmp)) {
                perror("bench_scenario: mkdtemp");
                return 1;
            }
            double t0 = now_s();
            if (isim_report_scenario_write(rn, tmp, &e))
                fail(*id, &e);
            tr[i] = now_s() - t0;
            char cmd[128];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
            if (system(cmd) != 0)
                fprintf(stderr, "bench_scenario: could not remove %s\n", tmp);
        }
        qsort(tr, (size_t)reps, sizeof tr[0], cmp);
        printf("%-20s %6zu %13llu %9.1f ms %9.1f ms %9.1f ms%s\n", *id, rn->n_points + 1,
               (unsigned long long)rn->evaluated, t1 * 1e3, tn * 1e3, tr[reps / 2] * 1e3,
               s->fidelity == ISIM_PAPER ? " (paper)" : "");
        isim_scenario_result_free(r1);
        isim_scenario_result_free(rn);
        isim_scenario_free(s);
    }
    isim_ids_free(ids);
    return 0;
}
