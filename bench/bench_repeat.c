/* How far this machine's engine moves from one validation run to the next: the grid points
 * that two or more `infersim validate --engine cpu` runs have in common (same kind,
 * precisions, layout, batch and tokens), their measured times compared pair by pair, as if
 * one run's measurement had predicted the other's. It is the floor under a prediction
 * calibrated in one window and checked in another: a predictor that knew one run exactly
 * scores this against the next. Prints, for the decode and the prefill points, each pair's
 * median and P90 |difference| and median signed difference, each run's own error as
 * calibrated, and over all the runs each point's largest move from its median. Prints
 * figures; it is a benchmark, not a test.
 *   usage: bench_repeat RUN1/validation.csv RUN2/validation.csv [...] */
#include "reports/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RUNS 32
#define MAX_POINTS 512
#define MAX_COLS 64

typedef struct {
    char key[96];      /* kind,weights,kv,tp,pp,batch,tokens */
    double meas, pred; /* ms */
    bool decode;
} point;

typedef struct {
    const char *path;
    point p[MAX_POINTS];
    int n;
} run;

/* The fields of one CSV line (no quoting: validate writes none), in place. */
static int split(char *line, char **f, int cap)
{
    int n = 0;
    line[strcspn(line, "\r\n")] = '\0';
    for (char *s = line; n < cap;) {
        f[n++] = s;
        char *c = strchr(s, ',');
        if (!c)
            break;
        *c = '\0';
        s = c + 1;
    }
    return n;
}

static int column(char **h, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(h[i], name) == 0)
            return i;
    return -1;
}

/* Reads a run's grid points; 0, or -1 with the reason printed. */
static int read_run(run *r)
{
    FILE *f = fopen(r->path, "r");
    if (!f) {
        perror(r->path);
        return -1;
    }
    char line[4096], *h[MAX_COLS], *v[MAX_COLS];
    static const char *const names[] = {"kind",         "weights", "kv",     "tp",
                                        "pp",           "batch",   "tokens", "measured_ms",
                                        "predicted_ms", "source"};
    enum { NCOL = sizeof names / sizeof names[0] };
    int col[NCOL];
    char head[4096];
    if (!fgets(head, sizeof head, f)) {
        fprintf(stderr, "%s:1:1: empty file\n", r->path);
        fclose(f);
        return -1;
    }
    int nh = split(head, h, MAX_COLS);
    for (int c = 0; c < NCOL; c++)
        if ((col[c] = column(h, nh, names[c])) < 0) {
            fprintf(stderr,
                    "%s:1:1: no column `%s` (not a validation.csv of infersim validate "
                    "--engine)\n",
                    r->path, names[c]);
            fclose(f);
            return -1;
        }
    for (int ln = 2; fgets(line, sizeof line, f); ln++) {
        int nv = split(line, v, MAX_COLS);
        if (nv < nh) {
            fprintf(stderr, "%s:%d:1: %d fields, the header has %d\n", r->path, ln, nv, nh);
            fclose(f);
            return -1;
        }
        if (strcmp(v[col[9]], "grid") != 0)
            continue;
        if (r->n == MAX_POINTS) {
            fprintf(stderr, "%s:%d:1: more than %d grid points\n", r->path, ln, MAX_POINTS);
            fclose(f);
            return -1;
        }
        point *p = &r->p[r->n++];
        snprintf(p->key, sizeof p->key, "%s,%s,%s,%s,%s,%s,%s", v[col[0]], v[col[1]], v[col[2]],
                 v[col[3]], v[col[4]], v[col[5]], v[col[6]]);
        p->meas = atof(v[col[7]]);
        p->pred = atof(v[col[8]]);
        p->decode = strcmp(v[col[0]], "decode") == 0;
        if (!(p->meas > 0) || !(p->pred > 0)) {
            fprintf(stderr, "%s:%d:1: a measured or predicted time that is not positive\n", r->path,
                    ln);
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

static const point *find(const run *r, const char *key)
{
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->p[i].key, key) == 0)
            return &r->p[i];
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int nr = argc - 1;
    if (nr < 2 || nr > MAX_RUNS) {
        fprintf(stderr,
                "usage: bench_repeat RUN1/validation.csv RUN2/validation.csv [... up to "
                "%d]\n",
                MAX_RUNS);
        return 2;
    }
    run *r = calloc((size_t)nr, sizeof *r);
    if (!r) {
        fprintf(stderr, "bench_repeat: out of memory\n");
        return 1;
    }
    for (int i = 0; i < nr; i++) {
        r[i].path = argv[i + 1];
        if (read_run(&r[i])) {
            free(r);
            return 1;
        }
    }
    for (int i = 0; i < nr; i++)
        printf("run %d: %s\n", i + 1, r[i].path);
    static double a[MAX_POINTS], b[MAX_POINTS];
    for (int kind = 0; kind < 2; kind++) {
        bool decode = kind == 0;
        /* the points every run has */
        const char *keys[MAX_POINTS];
        int nk = 0;
        for (int i = 0; i < r[0].n; i++) {
            bool all = r[0].p[i].decode == decode;
            for (int k = 1; k < nr && all; k++)
                all = find(&r[k], r[0].p[i].key) != NULL;
            if (all)
                keys[nk++] = r[0].p[i].key;
        }
        printf("%s: %d grid points in all %d runs\n", decode ? "decode step" : "prefill (TTFT)", nk,
               nr);
        if (!nk)
            continue;
        printf("  %-36s %10s %10s %10s\n", "", "median|e|", "P90|e|", "median e");
        isim_accuracy acc;
        for (int i = 0; i < nr; i++) {
            for (int k = 0; k < nk; k++) {
                const point *p = find(&r[i], keys[k]);
                a[k] = p->meas;
                b[k] = p->pred;
            }
            isim_report_accuracy(a, b, (size_t)nk, &acc);
            char label[64];
            snprintf(label, sizeof label, "run %d predicted as calibrated", i + 1);
            printf("  %-36s %9.1f%% %9.1f%% %+9.1f%%\n", label, acc.median_abs_pct, acc.p90_abs_pct,
                   acc.median_pct);
        }
        for (int i = 0; i < nr; i++)
            for (int j = i + 1; j < nr; j++) {
                for (int k = 0; k < nk; k++) {
                    a[k] = find(&r[j], keys[k])->meas;
                    b[k] = find(&r[i], keys[k])->meas;
                }
                isim_report_accuracy(a, b, (size_t)nk, &acc);
                char label[64];
                snprintf(label, sizeof label, "run %d measured against run %d", i + 1, j + 1);
                printf("  %-36s %9.1f%% %9.1f%% %+9.1f%%\n", label, acc.median_abs_pct,
                       acc.p90_abs_pct, acc.median_pct);
            }
        /* each point's largest move from its median over the runs */
        for (int k = 0; k < nk; k++) {
            double m[MAX_RUNS];
            for (int i = 0; i < nr; i++)
                m[i] = find(&r[i], keys[k])->meas;
            qsort(m, (size_t)nr, sizeof *m, cmp_double);
            a[k] = nr % 2 ? m[nr / 2] : 0.5 * (m[nr / 2 - 1] + m[nr / 2]);
            b[k] = a[k] - m[0] > m[nr - 1] - a[k] ? m[0] : m[nr - 1];
        }
        isim_report_accuracy(a, b, (size_t)nk, &acc);
        printf("  a point's largest move from its median over the runs: median %.1f%%, P90 "
               "%.1f%%, largest %.1f%%\n",
               acc.median_abs_pct, acc.p90_abs_pct, acc.max_abs_pct);
    }
    free(r);
    return 0;
}
