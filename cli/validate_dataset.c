/* infersim validate --dataset FILE: every row of measured serving data (TTFT and TPOT under
 * closed-loop concurrency) predicted with the deploy fidelity, the profiles' free
 * parameters fitted per hardware and engine on the training split, and the accuracy on
 * the held-out rows, overall and by model family, hardware, engine, TP degree,
 * concurrency and serving mode (docs/validation.md). */
#include "cli/cli.h"
#include "reports/report.h"
#include "sim/dataset.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cli_validate_dataset(int argc, char **argv, cli_opt *opts);

/* ---- grouping --------------------------------------------------------------------------- */

static const char *const BY[] = {"family",      "hardware", "backend", "tp",
                                 "concurrency", "mode",     "model",   "precision"};
#define N_BY (sizeof BY / sizeof BY[0])

static void group_of(const isim_dataset *d, const isim_ds_row *r, size_t by, char *out, size_t n)
{
    const isim_ds_shape *s = r->disagg ? &r->decode : &r->agg;
    switch (by) {
    case 0:
        snprintf(out, n, "%s", d->models[r->model]->family);
        break;
    case 1:
        snprintf(out, n, "%s", d->hw[r->hw]->id);
        break;
    case 2:
        snprintf(out, n, "%s", r->backend);
        break;
    case 3:
        snprintf(out, n, "tp %d%s", s->tp, s->dp > 1 ? " + dp" : "");
        break;
    case 4: {
        int c = r->concurrency;
        snprintf(out, n, "%s",
                 c <= 4     ? "1-4"
                 : c <= 16  ? "5-16"
                 : c <= 64  ? "17-64"
                 : c <= 256 ? "65-256"
                            : ">256");
        break;
    }
    case 5:
        snprintf(out, n, "%s", r->disagg ? "disagg" : "agg");
        break;
    case 6:
        snprintf(out, n, "%s", d->models[r->model]->id);
        break;
    default:
        snprintf(out, n, "%s", isim_dtype_name(r->weights));
        break;
    }
}

/* Which predictions of a row: the fit's (closed form), the profile's own values, the
 * request simulator's with the fit, or the fit's on the rows simulated. */
enum { FITTED, PRIOR, SIMULATED, FITTED_SIMULATED_ROWS };

/* Accuracy of TPOT and TTFT over rows[0..n) of the predictions `which`; false when out of
 * memory. */
static bool accuracy(const isim_dataset *d, const size_t *rows, size_t n, int which,
                     isim_accuracy *tpot, isim_accuracy *ttft)
{
    bool prior = which == PRIOR;
    size_t cap = n ? n : 1;
    double *m1 = malloc(cap * sizeof *m1), *p1 = malloc(cap * sizeof *p1),
           *m2 = malloc(cap * sizeof *m2), *p2 = malloc(cap * sizeof *p2);
    bool ok = m1 && p1 && m2 && p2;
    size_t k = 0;
    for (size_t i = 0; ok && i < n; i++) {
        const isim_ds_row *r = &d->rows[rows[i]];
        if (which >= SIMULATED && isnan(r->sim_tpot_s))
            continue;
        m1[k] = r->tpot_s;
        p1[k] = which == SIMULATED ? r->sim_tpot_s : prior ? r->prior_tpot_s : r->pred_tpot_s;
        m2[k] = r->ttft_s;
        p2[k] = which == SIMULATED ? r->sim_ttft_s : prior ? r->prior_ttft_s : r->pred_ttft_s;
        k++;
    }
    ok = ok && !isim_accuracy_of(m1, p1, k, tpot) && !isim_accuracy_of(m2, p2, k, ttft);
    free(m1);
    free(p1);
    free(m2);
    free(p2);
    return ok;
}

/* The predicted rows of the training split (train) or held out. */
static size_t split_rows(const isim_dataset *d, bool train, size_t *rows)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n_rows; i++)
        if (!d->rows[i].skip[0] && d->rows[i].train == train)
            rows[n++] = i;
    return n;
}

/* Rows grouped by a name, the groups in the order of their first row: sorted (name, row)
 * pairs, so that many groups cost n log n, not n x groups. */
typedef struct {
    char name[160];
    size_t row;
} named_row;

typedef struct {
    size_t start, n; /* of the group's pairs in the sorted array */
    size_t first;    /* its first row */
} group_span;

static int cmp_named(const void *x, const void *y)
{
    const named_row *a = x, *b = y;
    int c = strcmp(a->name, b->name);
    return c ? c : (a->row > b->row) - (a->row < b->row);
}

static int cmp_first(const void *x, const void *y)
{
    const group_span *a = x, *b = y;
    return (a->first > b->first) - (a->first < b->first);
}

/* Sorts v[0..n) and returns its groups (malloc'd; NULL when out of memory). */
static group_span *group_rows(named_row *v, size_t n, size_t *n_groups)
{
    qsort(v, n, sizeof *v, cmp_named);
    group_span *g = malloc((n ? n : 1) * sizeof *g);
    *n_groups = 0;
    if (!g)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(v[i].name, v[i - 1].name) != 0)
            g[(*n_groups)++] = (group_span){i, 0, v[i].row};
        g[*n_groups - 1].n++;
    }
    qsort(g, *n_groups, sizeof *g, cmp_first);
    return g;
}

/* ---- outputs ------------------------------------------------------------------------------ */

static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void write_rows(FILE *f, void *ctx)
{
    const isim_dataset *d = ctx;
    fputs("line,id,model,hardware,backend,mode,weights,isl,osl,concurrency,tp,pp,dp,ep,"
          "split,fit,measured_ttft_ms,predicted_ttft_ms,error_ttft_pct,measured_tpot_ms,"
          "predicted_tpot_ms,error_tpot_pct,profile_ttft_ms,profile_tpot_ms,step_ms,prompt_ms,"
          "burst_ttft_ms,steady_ttft_ms,simulated_ttft_ms,simulated_tpot_ms,api_ms,not_predicted\n",
          f);
    for (size_t i = 0; i < d->n_rows; i++) {
        const isim_ds_row *r = &d->rows[i];
        const isim_ds_shape *s = r->disagg ? &r->decode : &r->agg;
        fprintf(f, "%d,", r->line);
        csv_field(f, r->id);
        fprintf(f, ",%s,%s,", r->model >= 0 ? d->models[r->model]->id : "",
                r->hw >= 0 ? d->hw[r->hw]->id : "");
        csv_field(f, r->backend);
        fprintf(f, ",%s,%s,%d,%d,%d,%d,%d,%d,%d,%s,", r->disagg ? "disagg" : "agg",
                isim_dtype_name(r->weights), r->isl, r->osl, r->concurrency, s->tp, s->pp, s->dp,
                s->ep, r->train ? "train" : "heldout");
        if (r->skip[0]) {
            fprintf(f, ",%.6g,,,%.6g,,,,,,,,,,,,", r->ttft_s * 1e3, r->tpot_s * 1e3);
            csv_field(f, r->skip);
            fputc('\n', f);
            continue;
        }
        fprintf(f, "%s,%.6g,%.6g,%.4g,%.6g,%.6g,%.4g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,",
                r->fit >= 0 ? d->fits[r->fit].backend : "profile", r->ttft_s * 1e3,
                r->pred_ttft_s * 1e3, 100 * (r->pred_ttft_s - r->ttft_s) / r->ttft_s,
                r->tpot_s * 1e3, r->pred_tpot_s * 1e3,
                100 * (r->pred_tpot_s - r->tpot_s) / r->tpot_s, r->prior_ttft_s * 1e3,
                r->prior_tpot_s * 1e3, r->parts.step_s * 1e3, r->parts.prompt_s * 1e3,
                r->parts.burst_ttft_s * 1e3, r->parts.steady_ttft_s * 1e3);
        if (isnan(r->sim_ttft_s))
            fputs(",,,\n", f);
        else
            fprintf(f, "%.6g,%.6g,%.6g,\n", r->sim_ttft_s * 1e3, r->sim_tpot_s * 1e3,
                    r->sim_api_s * 1e3);
    }
}

/* "no model named X", "layout columns disagree", ...: the reason without its numbers. */
static void reason_of(const char *skip, char *out, size_t n)
{
    if (strncmp(skip, "the measurement of line", 23) == 0) {
        snprintf(out, n, "the same measurement written again (kept once)");
        return;
    }
    if (strncmp(skip, "one configuration", 17) == 0) {
        snprintf(out, n,
                 "one configuration measured with different results (speculative "
                 "decoding not recorded)");
        return;
    }
    snprintf(out, n, "%s", skip);
    char *colon = strchr(out, ':');
    if (colon && strncmp(out, "no model", 8) != 0)
        *colon = 0;
}

/* The errors of no rows are null, not 0. */
static void pct_json(cJSON *o, const char *key, size_t n, double v)
{
    if (n)
        cJSON_AddNumberToObject(o, key, round(v * 100) / 100);
    else
        cJSON_AddNullToObject(o, key);
}

static cJSON *acc_json(const isim_accuracy *a)
{
    cJSON *o = cJSON_CreateObject();
    pct_json(o, "median_abs_pct", a->n, a->median_abs_pct);
    pct_json(o, "p90_abs_pct", a->n, a->p90_abs_pct);
    pct_json(o, "median_pct", a->n, a->median_pct);
    cJSON_AddNumberToObject(o, "n", (double)a->n);
    return o;
}

static cJSON *pair_json(const isim_accuracy *tpot, const isim_accuracy *ttft)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "tpot", acc_json(tpot));
    cJSON_AddItemToObject(o, "ttft", acc_json(ttft));
    return o;
}

/* A group's accuracy; '-' for the errors of no rows. */
static void print_line(const char *name, const isim_accuracy *tp, const isim_accuracy *tt)
{
    if (!tp->n) {
        printf("  %-30s %5zu | %9s %9s %9s | %9s %9s %9s\n", name, tp->n, "-", "-", "-", "-", "-",
               "-");
        return;
    }
    printf("  %-30s %5zu | %8.1f%% %8.1f%% %+8.1f%% | %8.1f%% %8.1f%% %+8.1f%%\n", name, tp->n,
           tp->median_abs_pct, tp->p90_abs_pct, tp->median_pct, tt->median_abs_pct, tt->p90_abs_pct,
           tt->median_pct);
}

static void print_head(const char *title)
{
    printf("\n%s\n  %-30s %5s | %-28s | %s\n  %-30s %5s | %9s %9s %9s | %9s %9s %9s\n", title, "",
           "", "TPOT", "TTFT", "group", "n", "median|e|", "P90|e|", "median e", "median|e|",
           "P90|e|", "median e");
}

/* DIR/name, malloc'd (NULL when out of memory): no length but the system's. */
static char *in_dir(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    if (path)
        snprintf(path, n, "%s/%s", dir, name);
    return path;
}

static int plot(const isim_dataset *d, const char *dir, bool tpot)
{
    size_t cap = d->n_rows ? d->n_rows : 1;
    double *m = malloc(cap * sizeof *m), *p = malloc(cap * sizeof *p);
    int *series = malloc(cap * sizeof *series);
    const char **names = malloc((d->n_hw + 1) * sizeof *names);
    size_t k = 0;
    for (size_t i = 0; names && i < d->n_hw; i++)
        names[i] = d->hw[i]->id;
    for (size_t i = 0; m && p && series && i < d->n_rows; i++) {
        const isim_ds_row *r = &d->rows[i];
        if (r->skip[0] || r->train)
            continue;
        m[k] = (tpot ? r->tpot_s : r->ttft_s) * 1e3;
        p[k] = (tpot ? r->pred_tpot_s : r->pred_ttft_s) * 1e3;
        series[k] = r->hw;
        k++;
    }
    int rc = CLI_OK;
    char title[300];
    snprintf(title, sizeof title,
             "%s (held-out rows): deploy fidelity, fitted per hardware and engine",
             tpot ? "TPOT" : "TTFT");
    for (int e = 0; e < 2 && m && p && series && names; e++) {
        char *path = in_dir(dir, tpot ? (e ? "dataset_tpot.svg" : "dataset_tpot.png")
                                      : (e ? "dataset_ttft.svg" : "dataset_ttft.png"));
        isim_error err = {0};
        if (!path ||
            isim_report_scatter(path, m, p, series, k, names, (int)d->n_hw, title, "ms", &err)) {
            fprintf(stderr, "infersim: warning: %s\n", path ? err.message : "out of memory");
            rc = CLI_FAIL;
        }
        free(path);
    }
    if (!m || !p || !series || !names) {
        fprintf(stderr, "infersim: warning: out of memory: no %s plot\n", tpot ? "TPOT" : "TTFT");
        rc = CLI_FAIL;
    }
    free(m);
    free(p);
    free(series);
    free(names);
    return rc;
}

/* The rows not predicted, grouped by reason (reason_of) in the order of their first row;
 * NULL when out of memory. */
static group_span *skip_reasons(const isim_dataset *d, named_row **pairs, size_t *n_reasons)
{
    *n_reasons = 0;
    *pairs = malloc((d->n_rows ? d->n_rows : 1) * sizeof **pairs);
    if (!*pairs)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < d->n_rows; i++)
        if (d->rows[i].skip[0]) {
            reason_of(d->rows[i].skip, (*pairs)[n].name, sizeof(*pairs)[n].name);
            (*pairs)[n++].row = i;
        }
    return group_rows(*pairs, n, n_reasons);
}

/* No row predicted: an error, with the rows' reasons (nothing to fit or to measure). */
static int refuse_unpredicted(const isim_dataset *d, const char *file)
{
    named_row *pairs;
    size_t n = 0;
    group_span *g = skip_reasons(d, &pairs, &n);
    fprintf(stderr, "infersim: error: %s: none of its %zu rows can be predicted%s\n", file,
            d->n_rows, g ? ":" : "");
    for (size_t k = 0; g && k < n; k++)
        fprintf(stderr, "  %5zu  %s\n", g[k].n, pairs[g[k].start].name);
    free(g);
    free(pairs);
    return CLI_FAIL;
}

/* The held-out accuracy by each grouping, printed or added to groups; false when out of
 * memory. */
static bool by_groups(const isim_dataset *d, cJSON *groups, bool json, int which)
{
    named_row *v = malloc((d->n_rows ? d->n_rows : 1) * sizeof *v);
    size_t *rows = malloc((d->n_rows ? d->n_rows : 1) * sizeof *rows);
    bool ok = v && rows;
    /* the simulation's by hardware and engine only */
    for (size_t by = 0; ok && by < N_BY; by++) {
        if (which == SIMULATED && by != 1 && by != 2)
            continue;
        size_t n = 0, n_groups = 0;
        for (size_t i = 0; i < d->n_rows; i++) {
            const isim_ds_row *r = &d->rows[i];
            if (r->skip[0] || r->train || (which == SIMULATED && isnan(r->sim_tpot_s)))
                continue;
            group_of(d, r, by, v[n].name, sizeof v[n].name);
            v[n++].row = i;
        }
        group_span *g = group_rows(v, n, &n_groups);
        ok = g != NULL;
        if (!json && ok) {
            char t[80];
            snprintf(t, sizeof t, "held out%s, by %s",
                     which == SIMULATED ? " aggregated, simulated" : "", BY[by]);
            print_head(t);
        }
        for (size_t k = 0; ok && k < n_groups; k++) {
            for (size_t i = 0; i < g[k].n; i++)
                rows[i] = v[g[k].start + i].row;
            isim_accuracy tp, tt;
            ok = accuracy(d, rows, g[k].n, which, &tp, &tt);
            const char *name = v[g[k].start].name;
            if (!ok) {
                break;
            } else if (json) {
                cJSON *o = pair_json(&tp, &tt);
                cJSON_AddStringToObject(o, "by", BY[by]);
                if (which == SIMULATED)
                    cJSON_AddStringToObject(o, "predicted_by", "simulation");
                cJSON_AddStringToObject(o, "group", name);
                cJSON_AddItemToArray(groups, o);
            } else {
                print_line(name, &tp, &tt);
            }
        }
        free(g);
    }
    free(v);
    free(rows);
    return ok;
}

/* DIR/dataset.csv, the plots, and with --write-profiles the fits into the profiles. */
static int write_outputs(const isim_dataset *d, const char *dir, bool profiles)
{
    char path[1200];
    if (snprintf(path, sizeof path, "%s/dataset.csv", dir) >= (int)sizeof path) {
        fprintf(stderr, "infersim: error: output directory '%.40s...' longer than %zu bytes\n", dir,
                sizeof path - sizeof "/dataset_tpot.png");
        return CLI_FAIL;
    }
    int rc = cli_mkdirs(dir);
    if (!rc)
        rc = cli_write_file(path, write_rows, (void *)d);
    if (!rc)
        plot(d, dir, true), plot(d, dir, false);
    if (rc || !profiles)
        return rc;
    char date[16];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&now));
    for (size_t h = 0; h < d->n_hw && !rc; h++) {
        bool any = false;
        for (size_t i = 0; i < d->n_fits; i++)
            any |= d->fits[i].hw == (int)h && d->fits[i].own;
        if (!any)
            continue;
        isim_error err = {0};
        if (isim_dataset_write_profile(d, h, date, &err))
            rc = cli_error(&err);
        else
            fprintf(stderr, "validate: wrote the fits into %s\n", d->hw[h]->path);
    }
    return rc;
}

static void print_fits(const isim_dataset *d, cJSON *fits)
{
    if (!fits)
        printf(
            "\nfitted parameters (per hardware; an engine with fewer than 20 training rows uses "
            "'all')\n  %-14s %-8s %6s %6s %6s %6s %6s %6s %6s %10s %8s %6s %5s %9s %5s %4s %6s\n",
            "hardware", "engine", "train", "flops", "rows", "hbm", "fp4", "int4", "expert", "step",
            "launch", "coll", "a2a", "request", "lock", "kv", "rms");
    for (size_t i = 0; i < d->n_fits; i++) {
        const isim_ds_fit *f = &d->fits[i];
        if (!f->own)
            continue;
        if (fits) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "hardware", d->hw[f->hw]->id);
            cJSON_AddStringToObject(o, "backend", f->backend);
            cJSON_AddNumberToObject(o, "train_rows", (double)f->n_train);
            cJSON_AddNumberToObject(o, "eff_flops", f->p.eff_flops);
            cJSON_AddNumberToObject(o, "eff_hbm", f->p.eff_hbm);
            cJSON_AddNumberToObject(o, "eff_hbm_fp4", f->p.eff_hbm_fp4);
            cJSON_AddNumberToObject(o, "eff_hbm_int4", f->p.eff_hbm_int4);
            cJSON_AddNumberToObject(o, "eff_hbm_experts", f->p.eff_hbm_experts);
            cJSON_AddNumberToObject(o, "eff_flops_full_rows", f->p.eff_flops_full_rows);
            cJSON_AddNumberToObject(o, "step_overhead_us", f->p.step_overhead_s * 1e6);
            cJSON_AddNumberToObject(o, "collective_latency_scale", f->p.coll_latency_scale);
            cJSON_AddNumberToObject(o, "all_to_all_latency_scale", f->p.a2a_latency_scale);
            cJSON_AddNumberToObject(o, "kernel_launch_us", f->p.kernel_launch_s * 1e6);
            cJSON_AddNumberToObject(o, "request_overhead_us", f->p.request_overhead_s * 1e6);
            cJSON_AddNumberToObject(o, "lockstep", f->p.lockstep);
            if (!isnan(f->api_s_per_token))
                cJSON_AddNumberToObject(o, "simulated_api_us_per_prompt_token",
                                        f->api_s_per_token * 1e6);
            cJSON_AddStringToObject(o, "kv", isim_dtype_name(f->p.kv));
            cJSON_AddNumberToObject(o, "train_rms_log", f->train_rms_log);
            cJSON_AddItemToArray(fits, o);
        } else {
            printf("  %-14s %-8s %6zu %6.3f %6.1f %6.3f %6.3f %6.3f %6.3f %8.0fus %6.2fus %6.2f "
                   "%5.2f %7.1fms %5.2f %4s %6.3f\n",
                   d->hw[f->hw]->id, f->backend, f->n_train, f->p.eff_flops,
                   f->p.eff_flops_full_rows, f->p.eff_hbm, f->p.eff_hbm_fp4, f->p.eff_hbm_int4,
                   f->p.eff_hbm_experts, f->p.step_overhead_s * 1e6, f->p.kernel_launch_s * 1e6,
                   f->p.coll_latency_scale, f->p.a2a_latency_scale, f->p.request_overhead_s * 1e3,
                   f->p.lockstep, isim_dtype_name(f->p.kv), f->train_rms_log);
        }
    }
}

/* false when out of memory */
static bool print_reasons(const isim_dataset *d, cJSON *sk)
{
    named_row *pairs;
    size_t n = 0;
    group_span *g = skip_reasons(d, &pairs, &n);
    if (!g) {
        free(pairs);
        return false;
    }
    if (!sk && n)
        printf("\nrows not predicted\n");
    for (size_t k = 0; k < n; k++) {
        const char *why = pairs[g[k].start].name;
        if (sk) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "reason", why);
            cJSON_AddNumberToObject(o, "rows", (double)g[k].n);
            cJSON_AddItemToArray(sk, o);
        } else {
            printf("  %5zu  %s\n", g[k].n, why);
        }
    }
    free(g);
    free(pairs);
    return true;
}

/* The accuracy overall, by group, the fits and the rows not predicted. */
static int print_summary(const isim_dataset *d, const char *file, const char *dir, bool json,
                         bool simulated)
{
    size_t *rows = malloc((d->n_rows ? d->n_rows : 1) * sizeof *rows);
    if (!rows) {
        fprintf(stderr, "infersim: error: out of memory\n");
        return CLI_FAIL;
    }
    isim_accuracy ho_tp, ho_tt, tr_tp, tr_tt, pr_tp, pr_tt;
    size_t train = split_rows(d, true, rows);
    bool ok = accuracy(d, rows, train, FITTED, &tr_tp, &tr_tt);
    size_t heldout = split_rows(d, false, rows);
    isim_accuracy si_tp, si_tt, fs_tp, fs_tt;
    ok = ok && accuracy(d, rows, heldout, FITTED, &ho_tp, &ho_tt) &&
         accuracy(d, rows, heldout, PRIOR, &pr_tp, &pr_tt) &&
         accuracy(d, rows, heldout, SIMULATED, &si_tp, &si_tt) &&
         accuracy(d, rows, heldout, FITTED_SIMULATED_ROWS, &fs_tp, &fs_tt);
    free(rows);
    if (!ok) {
        fprintf(stderr, "infersim: error: out of memory\n");
        return CLI_FAIL;
    }
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    cJSON *j = json ? cli_json_new() : NULL, *by = NULL, *fits = NULL, *reasons = NULL;
    if (j) {
        cJSON *ds = cJSON_AddObjectToObject(j, "dataset");
        cJSON_AddStringToObject(ds, "file", base);
        char dg[40];
        snprintf(dg, sizeof dg, "fnv1a64:%s", d->digest);
        cJSON_AddStringToObject(ds, "digest", dg);
        cJSON_AddNumberToObject(ds, "rows", (double)d->n_rows);
        cJSON_AddNumberToObject(ds, "predicted", (double)(train + heldout));
        cJSON_AddStringToObject(ds, "split", ISIM_DS_SPLIT_RULE);
        cJSON_AddItemToObject(j, "heldout", pair_json(&ho_tp, &ho_tt));
        cJSON_AddItemToObject(j, "train", pair_json(&tr_tp, &tr_tt));
        cJSON_AddItemToObject(j, "heldout_profile_values", pair_json(&pr_tp, &pr_tt));
        if (simulated) {
            cJSON_AddItemToObject(j, "heldout_simulated", pair_json(&si_tp, &si_tt));
            cJSON_AddItemToObject(j, "heldout_closed_form_same_rows", pair_json(&fs_tp, &fs_tt));
        }
        by = cJSON_AddArrayToObject(j, "by_group");
        fits = cJSON_AddArrayToObject(j, "fits");
        reasons = cJSON_AddArrayToObject(j, "not_predicted");
    }
    if (json && (!by || !fits || !reasons)) {
        cJSON_Delete(j);
        fprintf(stderr, "infersim: error: out of memory\n");
        return CLI_FAIL;
    } else if (!json) {
        printf("%s: %zu rows, %zu predicted (%zu for training, %zu held out: %s)\n"
               "error = (predicted - measured) / measured; TPOT and TTFT of each row's clients\n",
               base, d->n_rows, train + heldout, train, heldout, ISIM_DS_SPLIT_RULE);
        print_head("accuracy");
        print_line("held out, fitted", &ho_tp, &ho_tt);
        print_line("training rows, fitted", &tr_tp, &tr_tt);
        print_line("held out, profiles' own values", &pr_tp, &pr_tt);
        if (simulated) {
            print_line("held out agg, simulated", &si_tp, &si_tt);
            print_line("  the same rows, closed form", &fs_tp, &fs_tt);
        }
    }
    if (!by_groups(d, by, json, FITTED) || (simulated && !by_groups(d, by, json, SIMULATED))) {
        cJSON_Delete(j);
        fprintf(stderr, "infersim: error: out of memory\n");
        return CLI_FAIL;
    }
    print_fits(d, fits);
    if (!print_reasons(d, reasons)) {
        cJSON_Delete(j);
        fprintf(stderr, "infersim: error: out of memory\n");
        return CLI_FAIL;
    }
    if (json) {
        return cli_json_print(j);
    } else {
        printf("\nrows: %s/dataset.csv; plots: %s/dataset_tpot.png, %s/dataset_ttft.png (.svg)\n",
               dir, dir, dir);
    }
    return CLI_OK;
}

int cli_validate_dataset(int argc, char **argv, cli_opt *opts)
{
    (void)argc;
    (void)argv;
    const char *cmd = "validate";
    const char *file = cli_find(opts, "dataset")->value;
    const char *dir = cli_find(opts, "out")->value ? cli_find(opts, "out")->value : "validation";
    const char *data = cli_data_dir(cli_find(opts, "data"));
    bool json = cli_find(opts, "json")->value != NULL;
    int threads = 0;
    if (cli_find(opts, "engine")->value)
        return cli_usage_error(cmd, "give --engine or --dataset, not both");
    if (cli_find(opts, "threads")->value &&
        !cli_int(cmd, cli_find(opts, "threads"), 1, 4096, &threads))
        return CLI_USAGE;
    isim_dataset *d = NULL;
    isim_error err = {0};
    if (isim_dataset_load(file, data, &d, &err))
        return cli_error(&err);
    size_t predicted = 0;
    for (size_t i = 0; i < d->n_rows; i++)
        predicted += !d->rows[i].skip[0];
    int rc = predicted ? CLI_OK : refuse_unpredicted(d, file);
    /* the output place is checked before the fit, which takes a while on a large file */
    if (!rc)
        rc = cli_writable_dir(dir, true);
    if (!rc) {
        fprintf(stderr, "validate: %zu rows of %s; fitting...\n", d->n_rows, file);
        if (isim_dataset_fit(d, threads, &err))
            rc = cli_error(&err);
    }
    bool simulate = cli_find(opts, "simulate")->value != NULL;
    if (!rc && simulate) {
        fprintf(stderr, "validate: simulating the rows...\n");
        if (isim_dataset_simulate(d, threads, &err))
            rc = cli_error(&err);
    }
    if (!rc)
        rc = write_outputs(d, dir, cli_find(opts, "write-profiles")->value != NULL);
    if (!rc)
        rc = print_summary(d, file, dir, json, simulate);
    isim_dataset_free(d);
    return rc;
}
