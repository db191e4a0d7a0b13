/* The procurement report of a scenario (docs/scenarios.md, "Reports"): an executive summary
 * in plain words, each hardware option's recommended configuration and fleet for the
 * demand, the frontiers, the time terms of the recommended configurations, the what-if
 * results, the sensitivity of the recommended configuration, every assumption with its
 * source, the infeasible configurations by reason, and the fidelity's validation status.
 * Written once (doc.h) as index.html and report.md, figures by gnuplot as PNG and SVG. */
#include "reports/doc.h"
#include "reports/internal.h"
#include "reports/report.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FIG(buf, v) isim__fig(buf, sizeof buf, v)

/* ---- figures -------------------------------------------------------------------------- */

typedef struct {
    const char *dir;
    isim_error *err;
    isim_status st;
} figs;

/* dir/figures/name.ext in a new string; NULL (and the figures' status set) when out of
 * memory. */
static char *figure_path(figs *g, const char *name, const char *ext)
{
    size_t n = strlen(g->dir) + strlen(name) + strlen(ext) + sizeof "/figures/.";
    char *path = malloc(n);
    if (path)
        snprintf(path, n, "%s/figures/%s.%s", g->dir, name, ext);
    else
        g->st = isim__gnuplot_fail(g->err, "out of memory");
    return path;
}

/* Draws body into dir/figures/name.svg and .png. */
static bool draw(figs *g, const char *name, int w, int h, const char *body)
{
    if (g->st)
        return false;
    const char *ext[] = {"svg", "png"};
    for (int i = 0; i < 2 && !g->st; i++) {
        char *path = figure_path(g, name, ext[i]);
        if (path)
            g->st = isim__gnuplot(path, w, h, body, g->err);
        free(path);
    }
    return !g->st;
}

/* A gnuplot script being written in memory; NULL (and the figures' status set) when out
 * of memory. */
static FILE *script(figs *g, char **body, size_t *size)
{
    FILE *f = open_memstream(body, size);
    if (!f)
        g->st = isim__gnuplot_fail(g->err, "out of memory");
    return f;
}

/* Closes a script written in memory; false (the figures' status set) when it could not
 * hold the whole script. */
static bool script_done(figs *g, FILE *f)
{
    if (fclose(f) == 0)
        return true;
    g->st = isim__gnuplot_fail(g->err, "out of memory");
    return false;
}

static bool frontier_figure(figs *g, const isim_scenario_result *res, size_t m, const char *name)
{
    if (g->st)
        return false;
    const isim_scenario_point *p = &res->base;
    const isim_hw **hw = calloc(res->n_hw ? res->n_hw : 1, sizeof *hw);
    if (!hw) {
        g->st = isim__gnuplot_fail(g->err, "out of memory");
        return false;
    }
    isim_plan_request r;
    isim_report_scenario_request(res, p, m, hw, &r);
    const char *ext[] = {"svg", "png"};
    for (int i = 0; i < 2 && !g->st; i++) {
        char *path = figure_path(g, name, ext[i]);
        if (path)
            g->st = isim_report_plan_plot(&r, p->plans[m], path, g->err);
        free(path);
    }
    free(hw);
    return !g->st;
}

/* The recommended configuration of hardware h (scenario index) at point p for model m,
 * or NULL. */
static const isim_plan_point *recommended(const isim_scenario_point *p, size_t m, size_t h,
                                          const isim_plan_answers **answers)
{
    const isim_plan *plan = p->plans ? p->plans[m] : NULL;
    for (size_t k = 0; plan && k < p->n_priced; k++)
        if (p->hw_index[k] == h) {
            const isim_plan_answers *a = &plan->hw_answers[k];
            if (answers)
                *answers = a;
            return a->customer_choice >= 0 ? &plan->hw_frontier[k][a->customer_choice] : NULL;
        }
    return NULL;
}

static bool terms_figure(figs *g, const isim_scenario_result *res, size_t m, const char *name)
{
    char *body = NULL;
    size_t size = 0;
    FILE *f = script(g, &body, &size);
    if (!f)
        return false;
    fputs("set title ", f);
    char title[300];
    /* under traffic the TPOT shown elsewhere is a simulated percentile: these terms are the
     * decode pass's at the full batch, which that simulation times */
    const isim_scenario_settings *v = &res->base.settings;
    snprintf(title, sizeof title,
             v->percentile > 0 && v->request_rate_per_s > 0
                 ? "%s: each recommended configuration's decode pass at its full batch, per "
                   "output token"
                 : "%s: time per output token of each recommended configuration",
             res->models[m]->name);
    isim__gp_string(f, title);
    fputs("\nset style data histogram\nset style histogram rowstacked\n"
          "set style fill solid 0.85 border -1\nset boxwidth 0.55\n"
          "set ylabel 'milliseconds per output token'\nset grid ytics lc rgb '#dddddd'\n"
          "set key outside right top\nset yrange [0:*]\nset datafile missing '?'\n"
          "set bmargin 4\n$d << EOD\n",
          f);
    size_t rows = 0;
    for (size_t h = 0; h < res->n_hw; h++) {
        const isim_plan_point *x = recommended(&res->base, m, h, NULL);
        if (!x || !x->detailed)
            continue;
        const isim_terms *t = &x->terms;
        double big = fmax(t->t[ISIM_TERM_HBM], t->t[ISIM_TERM_ARITHMETIC]);
        double small = fmin(t->t[ISIM_TERM_HBM], t->t[ISIM_TERM_ARITHMETIC]);
        char label[300];
        snprintf(label, sizeof label, "%s\n(%s binds)", res->hw[h]->id, isim_term_name(t->binding));
        isim__gp_string(f, label);
        fprintf(f, " %.6g %.6g %.6g %.6g %zu\n", t->t[ISIM_TERM_FIXED] * 1e3,
                t->t[ISIM_TERM_NETWORK] * 1e3, big * 1e3, small * 1e3, rows);
        rows++;
    }
    fputs("EOD\n", f);
    /* the smaller of HBM and arithmetic overlaps the larger: drawn inside it, dashed */
    fputs("plot $d using 2:xtic(1) title 'fixed latency' lc rgb '#7f7f7f', "
          "'' using 3 title 'network bandwidth' lc rgb '#2ca02c', "
          "'' using 4 title 'HBM or arithmetic (larger)' lc rgb '#1f77b4', "
          "'' using 6:($2+$3+$5/2):(0.2):($5/2) with boxxyerror fs empty border lc rgb "
          "'#000000' lc rgb '#000000' dt 2 lw 2.5 title 'the smaller, overlapped'\n",
          f);
    bool ok = script_done(g, f) && rows > 0 && draw(g, name, 1000, 560, body);
    free(body);
    return ok;
}

/* The sweep groups: lockstep sweeps together, the others alone. */
typedef struct {
    size_t n_groups;
    size_t first[64]; /* a sweep of each group */
    size_t size[64];
    size_t group_of[64];
    size_t base[64]; /* the value where the group is at the scenario as written, else 0 */
} groups;

/* Whether value v of sweep w leaves its input as written: "x1", or a setting's own value. */
static bool as_written(const isim_scenario *s, const isim_scenario_sweep *w, size_t v)
{
    const char *text = w->values[v].text;
    if (strcmp(text, "x1") == 0)
        return true;
    if (!isim_scenario_is_setting(w->path))
        return false;
    isim_scenario_settings probe = s->settings;
    if (isim_scenario_set(&probe, w->path, text, s->path, 0, 0, NULL))
        return false;
    return isim_scenario_get(&probe, w->path) == isim_scenario_get(&s->settings, w->path) &&
           (isim_scenario_setting_is_number(w->path) ||
            isim_scenario_setting_text(&s->settings, w->path) != NULL);
}

static void make_groups(const isim_scenario *s, groups *g)
{
    memset(g, 0, sizeof *g);
    for (size_t i = 0; i < s->n_sweeps && i < 64; i++) {
        size_t k = g->n_groups;
        for (size_t j = 0; s->sweeps[i].lockstep && j < i; j++)
            if (s->sweeps[j].lockstep &&
                strcmp(s->sweeps[j].lockstep, s->sweeps[i].lockstep) == 0) {
                k = g->group_of[j];
                break;
            }
        g->group_of[i] = k;
        if (k == g->n_groups) {
            g->first[k] = i;
            g->size[k] = s->sweeps[i].n;
            g->n_groups++;
        }
    }
    for (size_t k = 0; k < g->n_groups; k++)
        for (size_t v = 0; v < g->size[k]; v++) {
            bool all = true;
            for (size_t i = 0; i < s->n_sweeps && i < 64 && all; i++)
                all = g->group_of[i] != k || as_written(s, &s->sweeps[i], v);
            if (all) {
                g->base[k] = v;
                break;
            }
        }
}

/* Point index with group gi at value v and every other group at its base value (the
 * runner's order: the last group moves fastest). */
static size_t slice_point(const groups *g, size_t gi, size_t v)
{
    size_t k = 0;
    for (size_t j = 0; j < g->n_groups; j++)
        k = k * g->size[j] + (j == gi ? v : g->base[j]);
    return k;
}

/* The text written to memory stream f, which open_memstream points at *buf: a new string
 * once f is closed (*buf is only set then), or NULL when out of memory. */
static char *closed(FILE *f, char **buf)
{
    if (fclose(f) != 0) {
        free(*buf);
        return NULL;
    }
    return *buf;
}

/* printf into a new string as long as it needs; NULL when out of memory. */
static char *textf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *textf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *t = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (t) {
        va_start(ap, fmt);
        vsnprintf(t, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return t;
}

/* The label of value v of group gi: its sweeps' values, once when they are all the same. A
 * new string; NULL when out of memory. */
static char *value_label(const isim_scenario *s, const groups *g, size_t gi, size_t v)
{
    const char *first = NULL;
    bool same = true;
    for (size_t i = 0; i < s->n_sweeps; i++)
        if (g->group_of[i] == gi) {
            if (!first)
                first = s->sweeps[i].values[v].text;
            same &= strcmp(first, s->sweeps[i].values[v].text) == 0;
        }
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return NULL;
    bool any = false;
    for (size_t i = 0; i < s->n_sweeps && !(same && any); i++)
        if (g->group_of[i] == gi) {
            fprintf(f, "%s%s", any ? " / " : "", s->sweeps[i].values[v].text);
            any = true;
        }
    return closed(f, &buf);
}

/* A group's name: its path alone, or the lockstep name of sweeps moved together (a new
 * string; NULL when out of memory). */
static char *group_label(const isim_scenario *s, const groups *g, size_t gi)
{
    const isim_scenario_sweep *w = &s->sweeps[g->first[gi]];
    size_t members = 0;
    for (size_t i = 0; i < s->n_sweeps; i++)
        members += g->group_of[i] == gi;
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return NULL;
    if (members > 1 && w->lockstep)
        fprintf(f, "%s (%zu inputs together)", w->lockstep, members);
    else
        fputs(w->path, f);
    return closed(f, &buf);
}

/* Every path of a group, for captions (a new string; NULL when out of memory). */
static char *group_paths(const isim_scenario *s, const groups *g, size_t gi)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return NULL;
    bool any = false;
    for (size_t i = 0; i < s->n_sweeps; i++)
        if (g->group_of[i] == gi) {
            fprintf(f, "%s%s", any ? ", " : "", s->sweeps[i].path);
            any = true;
        }
    return closed(f, &buf);
}

/* One what-if chart: per hardware, the lowest cost or the highest speed among the
 * configurations that meet the targets, or the fleet for the demand, at each value of a
 * group. The ends of the frontier move smoothly with an input; the recommended point can
 * jump from one configuration to another. */
typedef enum { COST, SPEED, FLEET } metric;

static double metric_of(const isim_scenario_point *p, size_t m, size_t h, metric what)
{
    const isim_plan *plan = p->plans ? p->plans[m] : NULL;
    for (size_t k = 0; plan && k < p->n_priced; k++) {
        if (p->hw_index[k] != h)
            continue;
        if (what == FLEET) {
            const isim_plan_answer *a = &plan->hw_answers[k].fewest_devices;
            return a->found ? a->usd_per_month : NAN;
        }
        double best = NAN;
        for (size_t i = 0; i < plan->hw_n[k]; i++) {
            const isim_plan_point *x = &plan->hw_frontier[k][i];
            double y = what == COST ? x->cost_usd_per_mtok_output : x->tokens_per_s_per_user;
            if (isnan(best) || (what == COST ? y < best : y > best))
                best = y;
        }
        return best;
    }
    return NAN;
}

static bool whatif_figure(figs *g, const isim_scenario_result *res, const groups *gr, size_t gi,
                          size_t m, metric what, const char *name)
{
    const isim_scenario *s = res->scenario;
    char *body = NULL;
    size_t size = 0;
    FILE *f = script(g, &body, &size);
    if (!f)
        return false;
    char *label = group_label(s, gr, gi);
    char *title = label ? textf("%s: what if %s", res->models[m]->name, label) : NULL;
    static const char *const ylabel[] = {"US$ per million output tokens (cheapest)",
                                         "tokens per second per user (fastest)",
                                         "US$ per month to serve the demand"};
    bool ok = title != NULL;
    fputs("set title ", f);
    isim__gp_string(f, ok ? title : "");
    fprintf(f, "\nset ylabel '%s'\nset xlabel ", ylabel[what]);
    isim__gp_string(f, ok ? label : "");
    free(title);
    free(label);
    /* a cost that moves by more than 20x reads better on a log scale */
    double lo = INFINITY, hi = 0;
    for (size_t v = 0; v < gr->size[gi]; v++)
        for (size_t h = 0; h < res->n_hw; h++) {
            double y = metric_of(&res->points[slice_point(gr, gi, v)], m, h, what);
            if (isfinite(y) && y > 0) {
                lo = fmin(lo, y);
                hi = fmax(hi, y);
            }
        }
    bool log_y = what != SPEED && hi > 20 * lo;
    fprintf(f,
            "\nset grid ytics mytics lc rgb '#dddddd'\nset key below\n"
            "set datafile missing '?'\nset offsets 0.3, 0.3, 0, 0\n%s\nset format y '%s'\n"
            "$d << EOD\n",
            log_y ? "set logscale y\nset yrange [*:*]" : "set yrange [0:*]",
            what == FLEET ? "%.0f" : "%g");
    bool any = false;
    for (size_t v = 0; v < gr->size[gi]; v++) {
        const isim_scenario_point *p = &res->points[slice_point(gr, gi, v)];
        char *vl = value_label(s, gr, gi, v);
        ok &= vl != NULL;
        fprintf(f, "%zu ", v);
        isim__gp_string(f, vl ? vl : "");
        free(vl);
        for (size_t h = 0; h < res->n_hw; h++) {
            double y = metric_of(p, m, h, what);
            any |= isfinite(y);
            if (isfinite(y))
                fprintf(f, " %.6g", y);
            else
                fputs(" ?", f);
        }
        fputc('\n', f);
    }
    fputs("EOD\nplot ", f);
    for (size_t h = 0; h < res->n_hw; h++) {
        fprintf(f, "%s$d using 1:%zu:xtic(2) with linespoints pt 7 lw 2 title ", h ? ", " : "",
                h + 3);
        isim__gp_string(f, res->hw[h]->name);
    }
    fputc('\n', f);
    bool whole = script_done(g, f);
    if (whole && !ok)
        g->st = isim__gnuplot_fail(g->err, "out of memory"); /* a label */
    ok = whole && ok && any && draw(g, name, 1000, 600, body);
    free(body);
    return ok;
}

/* The left margin, in characters, that fits the longest input label. */
static int tornado_margin(const isim_sensitivity *sv)
{
    size_t longest = 20;
    for (size_t i = 0; i < sv->n_bars; i++) {
        size_t n = strlen(sv->bars[i].path) + strlen(sv->bars[i].low_text) +
                   strlen(sv->bars[i].high_text) + 9;
        longest = n > longest ? n : longest;
    }
    return (int)(longest > 90 ? 90 : longest);
}

static bool tornado_figure(figs *g, const isim_scenario_result *res, size_t m, const char *name)
{
    const isim_sensitivity *sv = &res->sensitivity[m];
    char *body = NULL;
    size_t size = 0;
    FILE *f = script(g, &body, &size);
    if (!f)
        return false;
    char title[400];
    snprintf(title, sizeof title, "%s on %s: the inputs that move its cost most",
             res->models[m]->name, res->hw[sv->point.hw]->id);
    fputs("set title ", f);
    isim__gp_string(f, title);
    fprintf(f,
            "\nset xlabel 'US$ per million output tokens (base %.4g)'\n"
            "set grid xtics lc rgb '#dddddd'\nset key outside bottom center horizontal\n"
            "set bmargin 6\n"
            "set ytics nomirror\nset yrange [-0.7:%zu.7]\nset style fill solid 0.8 border -1\n"
            "set arrow from %.6g, graph 0 to %.6g, graph 1 nohead dt 2 lw 1.5\n"
            "set lmargin %d\n$d << EOD\n",
            sv->cost_base, sv->n_bars ? sv->n_bars - 1 : 0, sv->cost_base, sv->cost_base,
            tornado_margin(sv));
    bool any = false;
    for (size_t i = 0; i < sv->n_bars; i++) {
        const isim_sensitivity_bar *b = &sv->bars[i];
        /* the largest swing on top */
        double y = (double)(sv->n_bars - 1 - i);
        double lo = isfinite(b->cost_low) ? b->cost_low : sv->cost_base;
        double hi = isfinite(b->cost_high) ? b->cost_high : sv->cost_base;
        any |= isfinite(b->cost_low) || isfinite(b->cost_high);
        fprintf(f, "%.6g %.6g %.6g %.6g %.6g ", y, (sv->cost_base + lo) / 2,
                fabs(lo - sv->cost_base) / 2, (sv->cost_base + hi) / 2,
                fabs(hi - sv->cost_base) / 2);
        char label[600];
        snprintf(label, sizeof label, "%s (%s / %s%s)", b->path, b->low_text, b->high_text,
                 isfinite(b->cost_low) && isfinite(b->cost_high) ? "" : "; one end infeasible");
        isim__gp_string(f, label);
        fputc('\n', f);
    }
    fputs("EOD\nplot $d using 2:1:3:(0.35):ytic(6) with boxxyerror lc rgb '#1f77b4' title "
          "'the input at its low value', '' using 4:1:5:(0.35) with boxxyerror lc rgb "
          "'#ff7f0e' title 'the input at its high value'\n",
          f);
    int height = 220 + 34 * (int)sv->n_bars;
    bool ok = script_done(g, f) && any && draw(g, name, 1100, height, body);
    free(body);
    return ok;
}

/* ---- the document --------------------------------------------------------------------- */

static void layout_text(const isim_scenario_result *res, const isim_plan_point *x, char *buf,
                        size_t n)
{
    char d[32], b[32];
    if (res->scenario->fidelity == ISIM_PAPER)
        snprintf(buf, n, "%s x %s, pp %.3g, batch %s, %s weights", FIG(d, x->devices),
                 res->hw[x->hw]->id, x->pp_paper, FIG(b, x->batch), isim_dtype_name(x->weights));
    else {
        /* attention data parallelism and expert parallelism, where used (MoE) */
        char moe[48] = "";
        if (x->dp > 1 || x->ep > 1)
            snprintf(moe, sizeof moe, " dp %d ep %d", x->dp, x->ep);
        snprintf(buf, n, "%s x %s, tp %d pp %d%s, batch %s, %s weights, %s KV%s",
                 FIG(d, x->devices), res->hw[x->hw]->id, x->tp, x->pp, moe, FIG(b, x->batch),
                 isim_dtype_name(x->weights), isim_dtype_name(x->kv),
                 x->spec && x->spec_gamma ? ", speculative" : "");
    }
}

static void workload_text(const isim_scenario_result *res, char *buf, size_t n)
{
    const isim_scenario_settings *v = &res->base.settings;
    char a[32], b[32], c[32];
    int w = snprintf(buf, n, "%s input and %s output tokens per request", FIG(a, v->input_tokens),
                     FIG(b, v->output_tokens));
    if (v->request_rate_per_s > 0 && w > 0 && (size_t)w < n)
        w += snprintf(buf + w, n - (size_t)w, ", %s requests per second (%s output tokens/s)",
                      FIG(a, v->request_rate_per_s),
                      FIG(c, v->request_rate_per_s * v->output_tokens));
    if (v->concurrency > 0 && w > 0 && (size_t)w < n)
        w += snprintf(buf + w, n - (size_t)w, ", %s concurrent requests", FIG(a, v->concurrency));
    if (v->prefix_cache_hit_rate > 0 && w > 0 && (size_t)w < n)
        snprintf(buf + w, n - (size_t)w, ", %.0f%% of each prompt in the prefix cache",
                 100 * v->prefix_cache_hit_rate);
}

static void slo_text(const isim_scenario_settings *v, char *buf, size_t n)
{
    char a[32];
    int w = 0;
    buf[0] = '\0';
    if (v->ttft_ms > 0)
        w += snprintf(buf + w, n - (size_t)w, "first token within %s ms", FIG(a, v->ttft_ms));
    if (v->tpot_ms > 0 && (size_t)w < n)
        w += snprintf(buf + w, n - (size_t)w, "%sat most %s ms per output token", w ? ", " : "",
                      FIG(a, v->tpot_ms));
    if (v->min_tokens_per_s_per_user > 0 && (size_t)w < n)
        w += snprintf(buf + w, n - (size_t)w, "%sat least %s tokens/s per user", w ? ", " : "",
                      FIG(a, v->min_tokens_per_s_per_user));
    if (v->max_cost_usd_per_mtok > 0 && (size_t)w < n)
        w += snprintf(buf + w, n - (size_t)w, "%sat most $%s per M output tokens", w ? ", " : "",
                      FIG(a, v->max_cost_usd_per_mtok));
    if (!w)
        snprintf(buf, n, "no latency targets");
}

static void cost_text(const isim_scenario_settings *v, char *buf, size_t n)
{
    if (v->cost_model == ISIM_COST_CLOUD)
        snprintf(buf, n, "rented by the hour at each profile's cloud price");
    else
        snprintf(buf, n,
                 "owned: purchase over its life, power at %.3g x TDP x server factor "
                 "%.3g x PUE %.3g at $%.4g/kWh, colocation at $%.4g per kW-month",
                 v->power_fraction_of_tdp, v->server_power_factor, v->pue,
                 v->electricity_usd_per_kwh, v->colocation_usd_per_kw_month);
}

/* The binding term in words. */
static const char *binds_text(const isim_plan_point *x)
{
    static const char *const words[ISIM_TERM_COUNT] = {"arithmetic", "HBM traffic", "network",
                                                       "fixed latency"};
    if (!x->detailed || (unsigned)x->terms.binding >= ISIM_TERM_COUNT)
        return "-";
    return words[x->terms.binding];
}

static void summary(isim_doc *d, const isim_scenario_result *res, size_t m)
{
    const isim_scenario_point *p = &res->base;
    const isim_plan *plan = p->plans ? p->plans[m] : NULL;
    char buf[600], a[32], b[32], c[32], e[32];
    if (!plan || plan->customer_choice < 0) {
        isim_doc_p(d, "%s: no configuration meets the scenario's targets. %s", res->models[m]->name,
                   plan ? plan->empty_reason : "No hardware could be priced.");
        return;
    }
    isim_plan_point x = plan->frontier[plan->customer_choice];
    x.hw = (int)p->hw_index[x.hw];
    layout_text(res, &x, buf, sizeof buf);
    char energy[200] = "";
    double dj, fj;
    if (isim_scenario_energy(p, &x, &dj, &fj)) {
        char g[32], h[32];
        if (fj > dj)
            snprintf(energy, sizeof energy,
                     " Each output token takes %s J at the devices, %s J with the server around "
                     "them and the facility's overhead.",
                     FIG(g, dj), FIG(h, fj));
        else
            snprintf(energy, sizeof energy, " Each output token takes %s J at the devices.",
                     FIG(g, dj));
    }
    /* simulated under traffic: the figures are a percentile of the requests */
    char pct[48] = "";
    if (x.simulated)
        snprintf(pct, sizeof pct, "p%g ", p->settings.percentile);
    isim_doc_p(d,
               "%s: the recommended configuration is %s, serving each user at %s tokens/s "
               "for $%s per million output tokens (%s %sTTFT %s ms, %stime per output token "
               "%s ms%s, bound by %s).%s",
               res->models[m]->name, buf, FIG(a, x.tokens_per_s_per_user),
               FIG(b, x.cost_usd_per_mtok_output), res->hw[x.hw]->id, pct,
               x.detailed ? FIG(c, x.ttft_s * 1e3) : "-", pct, FIG(e, x.tpot_s * 1e3),
               x.simulated ? " under the stated traffic" : "", binds_text(&x), energy);
    const isim_plan_answer *f = &plan->fewest_devices;
    if (f->found) {
        isim_plan_point y = f->point;
        y.hw = (int)p->hw_index[y.hw];
        layout_text(res, &y, buf, sizeof buf);
        isim_doc_p(d,
                   "Serving the stated demand takes the fewest devices on %s: %s %s of "
                   "%s, %s devices in all, about $%s per month.",
                   res->hw[y.hw]->name, FIG(a, f->replicas),
                   f->replicas == 1 ? "replica" : "replicas", buf, FIG(b, f->total_devices),
                   FIG(c, f->usd_per_month));
    }
    char ttft_head[40] = "TTFT ms";
    if (x.simulated)
        snprintf(ttft_head, sizeof ttft_head, "p%g TTFT ms", p->settings.percentile);
    const char *const head[] = {"Hardware",
                                "Recommended configuration",
                                "Tokens/s per user",
                                "$ per M output tokens",
                                ttft_head,
                                "Binds",
                                "Fewest devices for the demand",
                                "$ per month for those",
                                "J per output token"};
    isim_doc_table(d, 9, head);
    for (size_t h = 0; h < res->n_hw; h++) {
        const isim_plan_answers *ans = NULL;
        const isim_plan_point *r = recommended(p, m, h, &ans);
        char c1[300], c2[32], c3[32], c4[32], c6[48], c7[32], c8[32], name[200];
        const char *row[9];
        bool best = r && isim_plan_point_same(r, &plan->frontier[plan->customer_choice]);
        snprintf(name, sizeof name, "%s%s", best ? "=> " : "", res->hw[h]->name);
        row[0] = name;
        if (!r) {
            row[1] = p->unpriced[h][0] ? p->unpriced[h] : "nothing meets the targets";
            for (int i = 2; i < 9; i++)
                row[i] = "-";
            isim_doc_row(d, row);
            continue;
        }
        isim_plan_point y = *r;
        y.hw = (int)h;
        layout_text(res, &y, c1, sizeof c1);
        row[1] = c1;
        row[2] = FIG(c2, r->tokens_per_s_per_user);
        row[3] = FIG(c3, r->cost_usd_per_mtok_output);
        row[4] = r->detailed ? FIG(c4, r->ttft_s * 1e3) : "-";
        row[5] = binds_text(r);
        double device_j, facility_j;
        row[8] = isim_scenario_energy(p, &y, &device_j, &facility_j) ? FIG(c8, device_j) : "-";
        if (ans && ans->fewest_devices.found) {
            snprintf(c6, sizeof c6, "%s (%s x %s)", FIG(a, ans->fewest_devices.total_devices),
                     FIG(b, ans->fewest_devices.replicas),
                     FIG(c, ans->fewest_devices.point.devices));
            row[6] = c6;
            row[7] = FIG(c7, ans->fewest_devices.usd_per_month);
        } else {
            row[6] = row[7] = "-";
        }
        isim_doc_row(d, row);
    }
}

/* With cost.model swept over both models: each hardware's monthly cost to serve the
 * demand, and its $/Mtok, rented and owned. */
static void rent_or_buy(isim_doc *d, const isim_scenario_result *res, const groups *gr, size_t m)
{
    const isim_scenario *s = res->scenario;
    for (size_t gi = 0; gi < gr->n_groups; gi++) {
        const isim_scenario_sweep *w = &s->sweeps[gr->first[gi]];
        if (strcmp(w->path, "cost.model") != 0)
            continue;
        isim_doc_h3(d, "Rent or buy: %s", res->models[m]->name);
        size_t nv = w->n, cols = 1 + 2 * nv;
        const char **head = calloc(cols, sizeof *head), **row = calloc(cols, sizeof *row);
        char **text = calloc(cols, sizeof *text); /* the cells made for this table */
        if (!head || !row || !text) {
            isim_doc_oom(d);
            free(head);
            free(row);
            free(text);
            return;
        }
        head[0] = "Hardware";
        for (size_t v = 0; v < nv; v++) {
            head[1 + v] = text[1 + v] =
                isim_doc_format(d, "%s: $/M output tokens", w->values[v].text);
            head[1 + nv + v] = text[1 + nv + v] =
                isim_doc_format(d, "%s: $ per month for the demand", w->values[v].text);
        }
        if (!isim_doc_failed(d))
            isim_doc_table(d, cols, head);
        for (size_t h = 0; h < res->n_hw && !isim_doc_failed(d); h++) {
            char(*cells)[32] = calloc(cols, sizeof *cells);
            if (!cells) {
                isim_doc_oom(d);
                break;
            }
            row[0] = res->hw[h]->name;
            for (size_t v = 0; v < nv; v++) {
                const isim_scenario_point *p = &res->points[slice_point(gr, gi, v)];
                double c = metric_of(p, m, h, COST), f = metric_of(p, m, h, FLEET);
                row[1 + v] = isfinite(c) ? FIG(cells[1 + v], c) : "-";
                row[1 + nv + v] = isfinite(f) ? FIG(cells[1 + nv + v], f) : "-";
            }
            isim_doc_row(d, row);
            free(cells);
        }
        for (size_t i = 0; i < cols; i++)
            free(text[i]);
        free(head);
        free(row);
        free(text);
        isim_doc_p(d, "A dash: the profile has no purchase price or power rating for owning it, "
                      "or nothing meets the targets. Owning assumes the device runs for its whole "
                      "life at the stated power; a fleet bought for a demand that shrinks costs "
                      "more per token than shown.");
    }
}

/* One what-if group's charts and their numbers as a table, for model m. */
static void whatif_group(isim_doc *d, figs *g, const isim_scenario_result *res, const groups *gr,
                         size_t gi, size_t m, bool demand)
{
    const isim_scenario *s = res->scenario;
    static const char *const what_text[] = {"the cheapest configuration's $ per M output tokens",
                                            "the fastest configuration's tokens/s per user",
                                            ("$ per month of the fewest devices that serve "
                                             "the demand")};
    static const char *const suffix[] = {"cost", "speed", "fleet"};
    char *label = group_label(s, gr, gi), *paths = group_paths(s, gr, gi);
    size_t cols = 1 + res->n_hw;
    const char **row = calloc(cols, sizeof *row);
    char(*cells)[96] = calloc(cols, sizeof *cells);
    if (!label || !paths || !row || !cells) {
        isim_doc_oom(d);
        goto done;
    }
    const char *others = gr->n_groups > 1 ? ", the other inputs as written" : "";
    isim_doc_h3(d, "%s: %s", res->models[m]->name, label);
    if (strcmp(label, paths) != 0)
        isim_doc_p(d, "The sweeps in lockstep '%s' move these inputs together, value by value: %s.",
                   s->sweeps[gr->first[gi]].lockstep, paths);
    for (int what = COST; what <= FLEET; what++) {
        if (what == FLEET && !demand)
            continue;
        char name[64];
        snprintf(name, sizeof name, "whatif-%zu-%zu-%s", m, gi, suffix[what]);
        if (!whatif_figure(g, res, gr, gi, m, (metric)what, name))
            continue;
        char *cap = isim_doc_format(d, "%s: %s on each hardware as %s changes%s",
                                    res->models[m]->name, what_text[what], label, others);
        if (cap)
            isim_doc_figure(d, name, cap);
        free(cap);
    }
    /* the same numbers as a table: a column per hardware */
    row[0] = label;
    for (size_t h = 0; h < res->n_hw; h++)
        row[1 + h] = res->hw[h]->id;
    isim_doc_fold(d, "%s: the numbers (cheapest $/M output tokens; fastest tokens/s per user%s)",
                  label, demand ? "; $/month for the demand" : "");
    isim_doc_table(d, cols, row);
    for (size_t v = 0; v < gr->size[gi] && !isim_doc_failed(d); v++) {
        const isim_scenario_point *p = &res->points[slice_point(gr, gi, v)];
        char *vl = value_label(s, gr, gi, v);
        if (!vl) {
            isim_doc_oom(d);
            break;
        }
        row[0] = vl;
        for (size_t h = 0; h < res->n_hw; h++) {
            double c = metric_of(p, m, h, COST), sp = metric_of(p, m, h, SPEED),
                   f = metric_of(p, m, h, FLEET);
            char a[32], b[32], e[32];
            if (!isfinite(c))
                snprintf(cells[h], sizeof cells[h], "-");
            else if (demand)
                snprintf(cells[h], sizeof cells[h], "$%s; %s; $%s", FIG(a, c), FIG(b, sp),
                         isfinite(f) ? FIG(e, f) : "-");
            else
                snprintf(cells[h], sizeof cells[h], "$%s; %s", FIG(a, c), FIG(b, sp));
            row[1 + h] = cells[h];
        }
        isim_doc_row(d, row);
        free(vl);
    }
    isim_doc_fold_end(d);
done:
    free(label);
    free(paths);
    free(row);
    free(cells);
}

static void whatif_section(isim_doc *d, figs *g, const isim_scenario_result *res, const groups *gr)
{
    if (!res->n_points)
        return;
    isim_doc_h2(d, "What if");
    isim_doc_p(d,
               "Each chart changes one input (or inputs swept together) with the others as "
               "written (or at their first value when the sweep leaves that out); every point "
               "is planned again, so the configuration adapts. The cheapest and the fastest "
               "are the two ends of each hardware's frontier among the configurations that "
               "meet the targets. %zu points in all.",
               res->n_points);
    bool demand = res->base.settings.request_rate_per_s > 0 || res->base.settings.concurrency > 0;
    for (size_t m = 0; m < res->n_models && !isim_doc_failed(d); m++)
        for (size_t gi = 0; gi < gr->n_groups && !isim_doc_failed(d); gi++)
            whatif_group(d, g, res, gr, gi, m, demand);
}

static void sensitivity_section(isim_doc *d, figs *g, const isim_scenario_result *res)
{
    isim_doc_h2(d, "Sensitivity");
    isim_doc_p(d, "The recommended configuration held fixed and predicted again with one input at "
                  "a time moved to a low and a high value (a factor xF scales it): which inputs "
                  "move its cost per token most. Costs are the configuration's own at its batch, "
                  "without rounding a fleet to whole replicas.");
    for (size_t m = 0; m < res->n_models; m++) {
        const isim_sensitivity *sv = &res->sensitivity[m];
        if (!sv->found || !sv->n_bars)
            continue;
        char name[64];
        snprintf(name, sizeof name, "tornado-%zu", m);
        if (tornado_figure(g, res, m, name)) {
            char cap[300];
            snprintf(cap, sizeof cap,
                     "%s: cost per M output tokens of the recommended "
                     "configuration with each input at its low and high value",
                     res->models[m]->name);
            isim_doc_figure(d, name, cap);
        }
        static const char *const head[] = {"Input", "Low / high", "$/M tokens at low",
                                           "$/M tokens at high", "Swing"};
        isim_doc_table(d, 5, head);
        for (size_t i = 0; i < sv->n_bars; i++) {
            const isim_sensitivity_bar *b = &sv->bars[i];
            char lh[2 * sizeof b->low_text + 4], lo[32], hi[32], sw[32];
            snprintf(lh, sizeof lh, "%s / %s", b->low_text, b->high_text);
            const char *row[5] = {
                b->path, lh, isfinite(b->cost_low) ? FIG(lo, b->cost_low) : "infeasible",
                isfinite(b->cost_high) ? FIG(hi, b->cost_high) : "infeasible", "-"};
            if (isfinite(b->cost_low) && isfinite(b->cost_high)) {
                snprintf(sw, sizeof sw, "%.1f%%",
                         100 * fabs(b->cost_high - b->cost_low) / sv->cost_base);
                row[4] = sw;
            }
            isim_doc_row(d, row);
        }
    }
}

static void facts_table(isim_doc *d, const isim_fact *facts, size_t n)
{
    static const char *const head[] = {"Key", "Value", "Source"};
    isim_doc_table(d, 3, head);
    for (size_t i = 0; i < n; i++) {
        char v[32];
        const char *row[3] = {facts[i].path, FIG(v, facts[i].value), facts[i].source};
        isim_doc_row(d, row);
    }
}

static void assumptions(isim_doc *d, const isim_scenario_result *res)
{
    const isim_scenario *s = res->scenario;
    const isim_scenario_settings *v = &res->base.settings;
    isim_doc_h2(d, "Assumptions and their sources");
    char buf[600];
    cost_text(v, buf, sizeof buf);
    isim_doc_p(d, "Cost model of the base case: %s. A device-hour costs:", buf);
    static const char *const head[] = {"Hardware", "$ per device-hour", "From"};
    isim_doc_table(d, 3, head);
    for (size_t h = 0; h < res->n_hw; h++) {
        const isim_hw *hw = res->hw[h];
        char price[32], from[400];
        if (v->cost_model == ISIM_COST_CLOUD)
            snprintf(from, sizeof from, "the profile's cloud price");
        else if (!res->base.unpriced[h][0])
            snprintf(from, sizeof from, "$%.0f over %.3g years, %.3g kW IT load with its server",
                     hw->purchase_usd, hw->life_years, hw->tdp_w / 1000 * v->server_power_factor);
        const char *row[3] = {hw->name,
                              isfinite(res->base.usd_per_device_h[h])
                                  ? FIG(price, res->base.usd_per_device_h[h])
                                  : "-",
                              res->base.unpriced[h][0] ? res->base.unpriced[h] : from};
        isim_doc_row(d, row);
    }
    if (v->percentile > 0 && v->request_rate_per_s > 0 && s->fidelity == ISIM_DEPLOY)
        isim_doc_note(d,
                      "TTFT and TPOT are the %gth percentile of requests simulated at the load "
                      "each configuration's replicas receive (Poisson arrivals of %g requests "
                      "per second); the SLOs are met there.",
                      v->percentile, v->request_rate_per_s);
    else if (v->percentile > 0)
        isim_doc_note(d,
                      "The SLOs are stated at the %gth percentile, but a percentile is simulated "
                      "only under a request rate (workload.request_rate_per_s) in the deploy "
                      "fidelity: the figures here are the static batch's, compared with the "
                      "SLOs as they are. Leave headroom for the tail.",
                      v->percentile);
    isim_doc_h3(d, "Scenario");
    isim_doc_p(d, "Settings written in %s; the others take their defaults (docs/scenarios.md).",
               s->path);
    facts_table(d, s->facts, s->n_facts);
    for (size_t m = 0; m < res->n_models; m++) {
        isim_doc_fold(d, "Model %s: %zu numbers", res->models[m]->name, res->models[m]->n_facts);
        facts_table(d, res->models[m]->facts, res->models[m]->n_facts);
        isim_doc_fold_end(d);
    }
    for (size_t h = 0; h < res->n_hw; h++) {
        isim_doc_fold(d, "Hardware %s: %zu numbers", res->hw[h]->name, res->hw[h]->n_facts);
        facts_table(d, res->hw[h]->facts, res->hw[h]->n_facts);
        isim_doc_fold_end(d);
    }
}

static void infeasible(isim_doc *d, const isim_scenario_result *res)
{
    isim_doc_h2(d, "What did not qualify");
    for (size_t m = 0; m < res->n_models; m++) {
        const isim_plan *p = res->base.plans ? res->base.plans[m] : NULL;
        if (!p)
            continue;
        char ev[32];
        isim_doc_p(d, "%s, base case: %s configurations evaluated.", res->models[m]->name,
                   FIG(ev, (double)p->evaluated));
        static const char *const head[] = {"Why", "Configurations"};
        isim_doc_table(d, 2, head);
        for (int i = 1; i < ISIM_REASON_COUNT; i++)
            if (p->infeasible_by_reason[i]) {
                char n[32];
                const char *row[2] = {isim_reason_text((isim_reason)i),
                                      FIG(n, (double)p->infeasible_by_reason[i])};
                isim_doc_row(d, row);
            }
        static const char *const what[] = {"below the minimum speed per user",
                                           "above the maximum cost", "over the TPOT target",
                                           "over the TTFT target"};
        for (int i = 0; i < ISIM_PLAN_CONSTRAINTS; i++)
            if (p->rejected_by_constraint[i]) {
                char n[32];
                const char *row[2] = {what[i], FIG(n, (double)p->rejected_by_constraint[i])};
                isim_doc_row(d, row);
            }
    }
}

static void validation(isim_doc *d, const isim_scenario_result *res)
{
    isim_doc_h2(d, "How far to trust these numbers");
    if (res->scenario->fidelity == ISIM_PAPER)
        isim_doc_note(d, "Paper fidelity: Erdil, Inference Economics of Language Models "
                         "(arXiv:2506.04645), as its released code computes it. It reproduces the "
                         "code's reference values within 1%% and the paper's frontier findings "
                         "(docs/planner.md). It is an idealised model: continuous device counts, "
                         "no engine overhead, no pipeline bubbles.");
    else
        isim_doc_note(d, "Deploy fidelity: whole devices, exact memory, engine overhead and "
                         "pipeline bubbles. Its equations are checked against hand calculations; "
                         "its efficiencies and overheads are fitted, where a profile says so, to "
                         "public measurements of real serving engines (docs/validation.md). TTFT "
                         "assumes the requests of a batch arrive together.");
    if (res->scenario->fidelity == ISIM_PAPER)
        return;
    /* model validation: each profile's fit and its accuracy on the rows held out of it */
    bool any = false;
    for (size_t h = 0; h < res->n_hw && !any; h++)
        any = res->hw[h]->n_fits > 0;
    isim_doc_h3(d, "Model validation against measured serving");
    if (!any) {
        isim_doc_p(d, "None of these profiles is fitted to measured serving yet: their times rest "
                      "on datasheet rates and engineering defaults.");
        return;
    }
    isim_doc_p(d, "Each profile's deploy-fidelity parameters were fitted per serving engine to "
                  "measured TTFT and TPOT (closed-loop concurrency on real models), a fifth of the "
                  "rows held out by a fixed hash of their id. The error of the time per output "
                  "token on those held-out rows (|predicted - measured| / measured) says how far "
                  "a prediction for that hardware and engine may be off; the plans above use the "
                  "fit over every engine.");
    static const char *const head[] = {"hardware",        "engine",        "fitted on",
                                       "training rows",   "held-out rows", "TPOT median |error|",
                                       "TPOT P90 |error|"};
    isim_doc_table(d, 7, head);
    for (size_t h = 0; h < res->n_hw; h++) {
        const isim_hw *hw = res->hw[h];
        char on[sizeof hw->fitted_dataset + sizeof hw->fitted_date + 2], tr[24], ho[24], med[24],
            p90[24];
        if (hw->n_fits == 0) {
            const char *row[7] = {hw->id, "-", "not fitted (profile's own values)", "-", "-",
                                  "-",    "-"};
            isim_doc_row(d, row);
            continue;
        }
        snprintf(on, sizeof on, "%s, %s", hw->fitted_dataset, hw->fitted_date);
        for (size_t k = 1; k < hw->n_fits; k++) {
            const isim_hw_fit *f = &hw->fits[k];
            snprintf(tr, sizeof tr, "%.0f", f->train_rows);
            snprintf(ho, sizeof ho, "%.0f", f->heldout_rows);
            snprintf(med, sizeof med, "-");
            snprintf(p90, sizeof p90, "-");
            if (f->heldout_rows > 0) {
                snprintf(med, sizeof med, "%.1f%%", f->heldout_tpot_median_pct);
                snprintf(p90, sizeof p90, "%.1f%%", f->heldout_tpot_p90_pct);
            }
            const char *row[7] = {
                k == 1 ? hw->id : "", f->backend, k == 1 ? on : "", tr, ho, med, p90};
            isim_doc_row(d, row);
        }
    }
}

static isim_status build(isim_doc *d, figs *g, const isim_scenario_result *res)
{
    const isim_scenario *s = res->scenario;
    groups gr;
    make_groups(s, &gr);
    char buf[800], slo[400], cost[600];
    isim_doc_h1(d, "%s", s->name);
    if (s->description)
        isim_doc_p(d, "%s", s->description);
    workload_text(res, buf, sizeof buf);
    slo_text(&res->base.settings, slo, sizeof slo);
    cost_text(&res->base.settings, cost, sizeof cost);
    isim_doc_p(d, "Workload: %s. Targets: %s. Devices %s. Fidelity: %s.", buf, slo, cost,
               isim_fidelity_name(s->fidelity));
    isim_doc_h2(d, "Summary");
    for (size_t m = 0; m < res->n_models; m++) {
        summary(d, res, m);
        if (res->n_points)
            rent_or_buy(d, res, &gr, m);
    }
    isim_doc_p(d,
               "The recommended configuration is the one with the most (tokens/s per user)^%g "
               "per dollar (Erdil 2025 §4); the marked row is the best over all hardware.",
               res->base.settings.customer_alpha);
    isim_doc_h2(d, "Speed against cost");
    for (size_t m = 0; m < res->n_models; m++) {
        const isim_plan *p = res->base.plans ? res->base.plans[m] : NULL;
        char name[64], cap[300];
        snprintf(name, sizeof name, "frontier-%zu", m);
        if (p && p->n_frontier && frontier_figure(g, res, m, name)) {
            snprintf(cap, sizeof cap,
                     "%s: each hardware's frontier of speed per user against "
                     "cost per token, the recommended point circled",
                     res->models[m]->name);
            isim_doc_figure(d, name, cap);
        }
        snprintf(name, sizeof name, "terms-%zu", m);
        if (p && p->n_frontier && terms_figure(g, res, m, name)) {
            snprintf(cap, sizeof cap,
                     "%s: the four terms of the time per output token of each "
                     "hardware's recommended configuration (HBM and arithmetic overlap: the "
                     "larger counts)",
                     res->models[m]->name);
            isim_doc_figure(d, name, cap);
        }
    }
    whatif_section(d, g, res, &gr);
    sensitivity_section(d, g, res);
    assumptions(d, res);
    infeasible(d, res);
    validation(d, res);
    if (g->st)
        return g->st;
    return isim_doc_failed(d) ? isim__gnuplot_fail(g->err, "out of memory") : ISIM_OK;
}

static isim_status write_file(const char *dir, const char *name, isim_doc *d,
                              const isim_scenario_result *res, int what, isim_error *err)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    if (!path)
        return isim__gnuplot_fail(err, "out of memory");
    snprintf(path, n, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        isim_status st = isim__gnuplot_fail(err, "%s: %s", path, strerror(errno));
        free(path);
        return st;
    }
    char *json = NULL;
    switch (what) {
    case 0:
        isim_doc_html(d, f, res->scenario->name);
        break;
    case 1:
        isim_doc_markdown(d, f);
        break;
    case 2:
        isim_report_scenario_csv(f, res);
        break;
    default:
        json = isim_report_scenario_json(res, false);
        if (json)
            fprintf(f, "%s\n", json);
        break;
    }
    isim_status st;
    if (what == 3 && !json) {
        fclose(f);
        st = isim__gnuplot_fail(err, "out of memory");
    } else {
        st = isim__close_written(f, path, err);
    }
    free(json);
    free(path);
    return st;
}

isim_status isim_report_scenario_write(const isim_scenario_result *res, const char *dir,
                                       isim_error *err)
{
    size_t n = strlen(dir) + sizeof "/figures";
    char *fdir = malloc(n);
    if (!fdir)
        return isim__gnuplot_fail(err, "out of memory");
    snprintf(fdir, n, "%s/figures", dir);
    if (mkdir(fdir, 0777) != 0 && errno != EEXIST) {
        isim_status st = isim__gnuplot_fail(err, "%s: cannot create: %s", fdir, strerror(errno));
        free(fdir);
        return st;
    }
    free(fdir);
    isim_doc *d = isim_doc_new();
    if (!d)
        return isim__gnuplot_fail(err, "out of memory");
    figs g = {.dir = dir, .err = err};
    isim_status st = build(d, &g, res);
    static const char *const names[] = {"index.html", "report.md", "results.csv", "results.json"};
    for (int i = 0; i < 4 && !st; i++)
        st = write_file(dir, names[i], d, res, i, err);
    isim_doc_free(d);
    return st;
}
