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

#include <csv.h>
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

/* The CSV read with libcsv (as the dataset reader does): columns found by name in the
 * header, a point kept per grid row. */
static const char *const names[] = {"kind",  "weights", "kv",          "tp",           "pp",
                                    "batch", "tokens",  "measured_ms", "predicted_ms", "source"};
enum { NCOL = sizeof names / sizeof names[0] };

typedef struct {
    run *r;
    long record; /* the header is 1 */
    int n_fields;
    char field[MAX_COLS][64];
    int col[NCOL];
    bool failed;
} parse_ctx;

static void on_field(void *s, size_t len, void *data)
{
    parse_ctx *c = data;
    if (c->n_fields < MAX_COLS) {
        size_t k = len < sizeof c->field[0] - 1 ? len : sizeof c->field[0] - 1;
        memcpy(c->field[c->n_fields], s, k);
        c->field[c->n_fields][k] = 0;
    }
    c->n_fields++;
}

static void on_record(int end, void *data)
{
    (void)end;
    parse_ctx *c = data;
    int nf = c->n_fields < MAX_COLS ? c->n_fields : MAX_COLS;
    c->n_fields = 0;
    if (c->failed)
        return;
    c->record++;
    if (c->record == 1) {
        for (int k = 0; k < NCOL; k++) {
            c->col[k] = -1;
            for (int i = 0; i < nf; i++)
                if (strcmp(c->field[i], names[k]) == 0)
                    c->col[k] = i;
            if (c->col[k] < 0) {
                fprintf(stderr,
                        "%s:1:1: no column `%s` (not a validation.csv of infersim validate "
                        "--engine)\n",
                        c->r->path, names[k]);
                c->failed = true;
                return;
            }
        }
        return;
    }
    const char *v[NCOL];
    for (int k = 0; k < NCOL; k++)
        v[k] = c->col[k] < nf ? c->field[c->col[k]] : "";
    if (strcmp(v[9], "grid") != 0)
        return;
    if (c->r->n == MAX_POINTS) {
        fprintf(stderr, "%s:%ld:1: more than %d grid points\n", c->r->path, c->record, MAX_POINTS);
        c->failed = true;
        return;
    }
    point *p = &c->r->p[c->r->n++];
    snprintf(p->key, sizeof p->key, "%s,%s,%s,%s,%s,%s,%s", v[0], v[1], v[2], v[3], v[4], v[5],
             v[6]);
    p->meas = atof(v[7]);
    p->pred = atof(v[8]);
    p->decode = strcmp(v[0], "decode") == 0;
    if (!(p->meas > 0) || !(p->pred > 0)) {
        fprintf(stderr, "%s:%ld:1: a measured or predicted time that is not a positive number\n",
                c->r->path, c->record);
        c->failed = true;
    }
}

/* Reads a run's grid points; 0, or -1 with the reason printed. */
static int read_run(run *r)
{
    FILE *f = fopen(r->path, "r");
    if (!f) {
        perror(r->path);
        return -1;
    }
    static parse_ctx c;
    memset(&c, 0, sizeof c);
    c.r = r;
    struct csv_parser p;
    if (csv_init(&p, CSV_APPEND_NULL) != 0) {
        fclose(f);
        fprintf(stderr, "bench_repeat: out of memory\n");
        return -1;
    }
    char buf[65536];
    size_t got;
    bool bad = false;
    while (!bad && !c.failed && (got = fread(buf, 1, sizeof buf, f)) > 0)
        bad = csv_parse(&p, buf, got, on_field, on_record, &c) != got;
    bad = bad || (!c.failed && csv_fini(&p, on_field, on_record, &c) != 0);
    if (bad)
        fprintf(stderr, "%s:%ld:1: %s\n", r->path, c.record + 1, csv_strerror(csv_error(&p)));
    csv_free(&p);
    fclose(f);
    if (!bad && !c.failed && c.record == 0)
        fprintf(stderr, "%s:1:1: empty file\n", r->path);
    return bad || c.failed || c.record == 0 ? -1 : 0;
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
            if (isim_accuracy_of(a, b, (size_t)nk, &acc))
                goto oom;
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
                if (isim_accuracy_of(a, b, (size_t)nk, &acc))
                    goto oom;
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
        if (isim_accuracy_of(a, b, (size_t)nk, &acc))
            goto oom;
        printf("  a point's largest move from its median over the runs: median %.1f%%, P90 "
               "%.1f%%, largest %.1f%%\n",
               acc.median_abs_pct, acc.p90_abs_pct, acc.max_abs_pct);
    }
    free(r);
    return 0;
oom:
    fprintf(stderr, "bench_repeat: out of memory\n");
    free(r);
    return 1;
}
