/* The forms of a simulation under traffic (sim/serve.h): JSON, a table and a CSV row per
 * request. Nothing here models: every figure is the simulator's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reports/internal.h"
#include "reports/report.h"

static const char *len_name(isim_len_kind k)
{
    return k == ISIM_LEN_FIXED ? "fixed" : k == ISIM_LEN_UNIFORM ? "uniform" : "lognormal";
}

static const char *arrival_name(isim_arrival_kind k)
{
    return k == ISIM_ARRIVE_POISSON ? "poisson"
           : k == ISIM_ARRIVE_GAMMA ? "gamma"
           : k == ISIM_ARRIVE_TRACE ? "trace"
                                    : "closed";
}

/* A trace's file as reports name it: its base name, not the path it was given by (NULL
 * when the trace came from no file). */
static const char *trace_name(const isim_traffic *t)
{
    if (!t->file)
        return NULL;
    const char *slash = strrchr(t->file->path, '/');
    return slash ? slash + 1 : t->file->path;
}

typedef struct {
    double mean, min, max;
} len_range;

/* The input (output false) or output lengths of a trace's requests. */
static len_range trace_lengths(const isim_traffic *t, bool output)
{
    len_range r = {0, INFINITY, 0};
    for (int64_t i = 0; i < t->requests; i++) {
        double v = (double)(output ? t->trace[i].output_tokens : t->trace[i].input_tokens);
        r.mean += v / (double)t->requests;
        r.min = fmin(r.min, v);
        r.max = fmax(r.max, v);
    }
    return r;
}

static cJSON *len_json(isim__json *j, const isim_traffic *t, bool output)
{
    const isim_len_dist *d = output ? &t->output : &t->input;
    cJSON *o = isim__json_new(j);
    if (t->kind == ISIM_ARRIVE_TRACE) {
        len_range r = trace_lengths(t, output);
        isim__json_str(j, o, "distribution", "trace");
        isim__json_num(j, o, "mean", r.mean);
        isim__json_num(j, o, "min", r.min);
        isim__json_num(j, o, "max", r.max);
        return o;
    }
    isim__json_str(j, o, "distribution", len_name(d->kind));
    if (d->kind == ISIM_LEN_FIXED) {
        isim__json_num(j, o, "tokens", d->a);
    } else if (d->kind == ISIM_LEN_UNIFORM) {
        isim__json_num(j, o, "min", d->a);
        isim__json_num(j, o, "max", d->b);
    } else {
        isim__json_num(j, o, "mean", d->a);
        isim__json_num(j, o, "cv", d->b);
    }
    return o;
}

static cJSON *stats_ms(isim__json *j, const isim_stats *s)
{
    cJSON *o = isim__json_new(j);
    isim__json_num(j, o, "mean", s->mean * 1e3);
    isim__json_num(j, o, "p50", s->p50 * 1e3);
    isim__json_num(j, o, "p90", s->p90 * 1e3);
    isim__json_num(j, o, "p99", s->p99 * 1e3);
    isim__json_num(j, o, "max", s->max * 1e3);
    return o;
}

cJSON *isim__serve_json(isim__json *j, const isim_traffic *t, const isim_serve_result *s,
                        bool requests)
{
    cJSON *o = isim__json_new(j);
    isim__json_str(j, o, "arrivals", arrival_name(t->kind));
    if (t->kind == ISIM_ARRIVE_CLOSED) {
        isim__json_num(j, o, "clients", (double)t->clients);
    } else if (t->kind == ISIM_ARRIVE_TRACE) {
        if (trace_name(t))
            isim__json_str(j, o, "trace_file", trace_name(t));
    } else {
        isim__json_num(j, o, "rate_per_s", t->rate);
        if (t->kind == ISIM_ARRIVE_GAMMA)
            isim__json_num(j, o, "cv", t->cv);
    }
    isim__json_num(j, o, "requests", (double)t->requests);
    if (t->kind != ISIM_ARRIVE_TRACE) /* a trace draws nothing */
        isim__json_num(j, o, "seed", (double)t->seed);
    isim__json_item(j, o, "input_tokens", len_json(j, t, false));
    isim__json_item(j, o, "output_tokens", len_json(j, t, true));
    isim__json_num(j, o, "prefix_hit_rate", t->prefix_hit);
    cJSON *sc = isim__json_obj(j, o, "scheduler");
    isim__json_str(j, sc, "policy", isim_sched_policy_name(s->policy));
    isim__json_num(j, sc, "max_running_sequences", (double)s->max_running);
    isim__json_num(j, sc, "token_budget_per_pass", (double)s->token_budget);
    isim__json_num(j, sc, "kv_cache_tokens", s->kv_tokens);
    isim__json_item(j, o, "ttft_ms", stats_ms(j, &s->ttft_s));
    isim__json_item(j, o, "tpot_ms", stats_ms(j, &s->tpot_s));
    isim__json_item(j, o, "e2e_ms", stats_ms(j, &s->e2e_s));
    isim__json_item(j, o, "itl_ms", stats_ms(j, &s->itl_s));
    isim__json_num(j, o, "duration_s", s->duration_s);
    isim__json_num(j, o, "input_tokens_per_s", s->input_tokens_per_s);
    isim__json_num(j, o, "output_tokens_per_s", s->output_tokens_per_s);
    isim__json_num(j, o, "output_tokens_per_s_per_device", s->output_tokens_per_s / s->devices);
    isim__json_num(j, o, "busy_fraction", s->busy);
    isim__json_num(j, o, "mean_running", s->mean_running);
    isim__json_num(j, o, "mean_waiting", s->mean_waiting);
    isim__json_num(j, o, "max_waiting", (double)s->max_waiting);
    isim__json_num(j, o, "passes", (double)s->steps);
    isim__json_num(j, o, "preemptions", (double)s->preemptions);
    isim__json_bool(j, o, "overloaded", s->overloaded);
    if (t->kind != ISIM_ARRIVE_CLOSED) {
        isim__json_num(j, o, "offered_per_s", s->offered_rps);
        isim__json_num(j, o, "served_per_s", s->served_rps);
    }
    const isim_goodput *g = &s->goodput;
    if (g->ttft_slo_s > 0 || g->tpot_slo_s > 0) {
        cJSON *gp = isim__json_obj(j, o, "goodput");
        isim__json_num(j, gp, "ttft_slo_ms", g->ttft_slo_s * 1e3);
        isim__json_num(j, gp, "tpot_slo_ms", g->tpot_slo_s * 1e3);
        isim__json_num(j, gp, "requests_within", (double)g->within);
        isim__json_num(j, gp, "share", g->share);
        isim__json_num(j, gp, "requests_per_s", g->per_s);
    }
    if (requests) {
        cJSON *a = isim__json_arr(j, o, "per_request");
        for (size_t i = 0; a && i < s->n; i++) {
            const isim_served *r = &s->req[i];
            cJSON *x = isim__json_new(j);
            isim__json_num(j, x, "arrival_s", r->arrival_s);
            isim__json_num(j, x, "ttft_ms", (r->first_token_s - r->arrival_s) * 1e3);
            isim__json_num(j, x, "e2e_ms", (r->done_s - r->arrival_s) * 1e3);
            isim__json_num(j, x, "input_tokens", (double)r->input_tokens);
            isim__json_num(j, x, "output_tokens", (double)r->output_tokens);
            isim__json_num(j, x, "preemptions", (double)r->preemptions);
            isim__json_item(j, a, NULL, x);
        }
    }
    return o;
}

char *isim_report_serve_json(const isim_model *m, const isim_hw *hw, const isim_query *q,
                             const isim_traffic *t, const isim_serve_result *s, bool requests)
{
    isim__json doc = {false}, *j = &doc;
    cJSON *o = isim__json_new(j);
    isim__json_str(j, o, "model", m->id);
    isim__json_str(j, o, "hw", hw->id);
    isim__json_num(j, o, "devices", q->devices);
    isim__json_str(
        j, o, "weights",
        isim_dtype_name(q->weights == ISIM_DTYPE_COUNT ? m->release_weights : q->weights));
    isim__json_str(j, o, "kv", isim_dtype_name(q->kv));
    isim__json_item(j, o, "traffic", isim__serve_json(j, t, s, requests));
    return isim__json_finish(j, o);
}

static void stats_line(FILE *out, const char *name, const isim_stats *s)
{
    fprintf(out, "  %-16s p50 %.4g  p90 %.4g  p99 %.4g  mean %.4g  max %.4g ms\n", name,
            s->p50 * 1e3, s->p90 * 1e3, s->p99 * 1e3, s->mean * 1e3, s->max * 1e3);
}

static void len_text(FILE *out, const isim_traffic *t, bool output)
{
    const isim_len_dist *d = output ? &t->output : &t->input;
    if (t->kind == ISIM_ARRIVE_TRACE) {
        len_range r = trace_lengths(t, output);
        fprintf(out, "%g to %g (mean %.4g)", r.min, r.max, r.mean);
    } else if (d->kind == ISIM_LEN_FIXED)
        fprintf(out, "%g", d->a);
    else if (d->kind == ISIM_LEN_UNIFORM)
        fprintf(out, "uniform %g to %g", d->a, d->b);
    else
        fprintf(out, "lognormal, mean %g, cv %g", d->a, d->b);
}

void isim_report_serve_table(FILE *out, const isim_traffic *t, const isim_serve_result *s)
{
    if (t->kind == ISIM_ARRIVE_TRACE)
        fprintf(out, "under traffic (simulated request by request):\n");
    else
        fprintf(out, "under traffic (simulated request by request, seed %llu):\n",
                (unsigned long long)t->seed);
    isim_report_serve_figures(out, t, s);
}

void isim_report_serve_figures(FILE *out, const isim_traffic *t, const isim_serve_result *s)
{
    if (t->kind == ISIM_ARRIVE_TRACE)
        fprintf(out, "  %-16s trace %s, %lld requests over %.4g s\n", "arrivals",
                trace_name(t) ? trace_name(t) : "(given)", (long long)t->requests,
                t->trace[t->requests - 1].arrival_s - t->trace[0].arrival_s);
    else if (t->kind == ISIM_ARRIVE_CLOSED)
        fprintf(out, "  %-16s %lld clients, %lld requests, the first %lld together\n", "arrivals",
                (long long)t->clients, (long long)t->requests, (long long)t->clients);
    else
        fprintf(out, "  %-16s %s, %g per s%s, %lld requests\n", "arrivals", arrival_name(t->kind),
                t->rate, t->kind == ISIM_ARRIVE_GAMMA ? " (gamma gaps)" : "",
                (long long)t->requests);
    fprintf(out, "  %-16s %sinput ", "lengths",
            t->kind == ISIM_ARRIVE_TRACE ? "the trace's: " : "");
    len_text(out, t, false);
    fprintf(out, ", output ");
    len_text(out, t, true);
    fprintf(out, " tokens; prefix-cache hits %g%%\n", t->prefix_hit * 100);
    fprintf(out, "  %-16s %s: at most %lld running, %lld tokens per pass, KV cache %.0f tokens\n",
            "scheduler", isim_sched_policy_name(s->policy), (long long)s->max_running,
            (long long)s->token_budget, s->kv_tokens);
    stats_line(out, "TTFT", &s->ttft_s);
    stats_line(out, "TPOT", &s->tpot_s);
    stats_line(out, "inter-token", &s->itl_s);
    stats_line(out, "end to end", &s->e2e_s);
    fprintf(out, "  %-16s %.5g output tokens/s (%.5g per device), %.5g input tokens/s\n",
            "throughput", s->output_tokens_per_s, s->output_tokens_per_s / s->devices,
            s->input_tokens_per_s);
    fprintf(out,
            "  %-16s %.3g running, %.3g waiting on average (at most %zu); passes busy %.0f%% of "
            "%.4g s; %zu preemptions\n",
            "queue", s->mean_running, s->mean_waiting, s->max_waiting, s->busy * 100, s->duration_s,
            s->preemptions);
    const isim_goodput *g = &s->goodput;
    if (g->ttft_slo_s > 0 || g->tpot_slo_s > 0) {
        fprintf(out, "  %-16s %zu of %zu requests (%.1f%%) within", "goodput", g->within, s->n,
                g->share * 100);
        if (g->ttft_slo_s > 0)
            fprintf(out, " TTFT %.4g ms", g->ttft_slo_s * 1e3);
        if (g->tpot_slo_s > 0)
            fprintf(out, "%s TPOT %.4g ms", g->ttft_slo_s > 0 ? " and" : "", g->tpot_slo_s * 1e3);
        fprintf(out, ": %.4g requests/s\n", g->per_s);
    }
    if (s->overloaded)
        fprintf(out,
                "  %-16s OVERLOADED: %.4g requests/s offered, %.4g served (%.2fx); the queue "
                "grows for as long as the traffic lasts\n",
                "load", s->offered_rps, s->served_rps,
                s->served_rps > 0 ? s->offered_rps / s->served_rps : INFINITY);
}

void isim_report_serve_csv(FILE *out, const isim_traffic *t, const isim_serve_result *s)
{
    /* a trace's requests name their place in its file */
    const char *trace = trace_name(t);
    fprintf(out,
            "request,arrival_s,ttft_ms,e2e_ms,tpot_ms,input_tokens,output_tokens,"
            "preemptions%s\n",
            trace ? ",trace" : "");
    for (size_t i = 0; i < s->n; i++) {
        const isim_served *r = &s->req[i];
        double tpot = r->output_tokens > 1
                          ? (r->done_s - r->first_token_s) / (double)(r->output_tokens - 1) * 1e3
                          : NAN;
        fprintf(out, "%zu,%.9g,%.6g,%.6g,", i, r->arrival_s,
                (r->first_token_s - r->arrival_s) * 1e3, (r->done_s - r->arrival_s) * 1e3);
        if (isfinite(tpot))
            fprintf(out, "%.6g", tpot);
        fprintf(out, ",%lld,%lld,%lld", (long long)r->input_tokens, (long long)r->output_tokens,
                (long long)r->preemptions);
        if (trace) {
            char place[320]; /* a base name holds at most 255 bytes */
            snprintf(place, sizeof place, "%s:%d", trace, t->file->at[i].line);
            fputc(',', out);
            isim__csv_field(out, place);
        }
        fputc('\n', out);
    }
}

char *isim_report_engine_serve_json(const isim_model *m, const isim_report_engine *e,
                                    const isim_traffic *t, const isim_serve_result *s)
{
    isim__json doc = {false}, *j = &doc;
    cJSON *o = isim__json_new(j);
    isim__json_str(j, o, "engine", "cpu");
    isim__json_str(j, o, "model", m->id);
    isim__json_str(j, o, "weights", e->weights);
    isim__json_str(j, o, "kv", e->kv);
    isim__json_str(j, o, "kernels", e->kernels);
    isim__json_num(j, o, "threads", e->threads);
    isim__json_num(j, o, "warm_up_tokens_per_s", e->warm_tokens_per_s);
    if (isfinite(e->others_cpu_share))
        isim__json_num(j, o, "others_cpu_share", e->others_cpu_share);
    isim__json_item(j, o, "traffic", isim__serve_json(j, t, s, true));
    return isim__json_finish(j, o);
}

void isim_report_serve_passes_csv(FILE *out, const isim_serve_result *s)
{
    fprintf(out, "pass,start_s,time_ms,decode_seqs,decode_ctx,prefill_tokens,prefill_seqs,"
                 "prefill_ctx,finishing,running,waiting\n");
    for (size_t k = 0; k < s->n_passes; k++) {
        const isim_pass *p = &s->passes[k];
        fprintf(out, "%zu,%.9g,%.6g,%g,%.6g,%g,%g,%.6g,%g,%lld,%lld\n", k, p->start_s,
                p->time_s * 1e3, p->mix.decode_seqs, p->mix.decode_ctx, p->mix.prefill_tokens,
                p->mix.prefill_seqs, p->mix.prefill_ctx, p->mix.finishing, (long long)p->running,
                (long long)p->waiting);
    }
}

void isim_report_serve_tokens_csv(FILE *out, const isim_serve_result *s, const size_t *tok_at,
                                  const int *ids, const double *token_s)
{
    fprintf(out, "request,token,id,time_s,gap_ms\n");
    for (size_t i = 0; i < s->n; i++)
        for (size_t k = tok_at[i]; k < tok_at[i + 1]; k++) {
            fprintf(out, "%zu,%zu,%d,%.9g,", i, k - tok_at[i], ids[k], token_s[k]);
            if (k > tok_at[i])
                fprintf(out, "%.6g", (token_s[k] - token_s[k - 1]) * 1e3);
            fputc('\n', out);
        }
}

/* A data block of the share of values at or under each value, at most 400 points. */
static void cdf_block(FILE *f, const char *name, double *v, size_t n)
{
    qsort(v, n, sizeof *v, isim_cmp_double);
    fprintf(f, "$%s << EOD\n", name);
    size_t step = n > 400 ? n / 400 : 1;
    for (size_t i = 0; i < n; i += step)
        fprintf(f, "%.6g %.6g\n", v[i], (double)(i + 1) / (double)n);
    if (n)
        fprintf(f, "%.6g 1\n", v[n - 1]);
    fputs("EOD\n", f);
}

typedef struct {
    double t;
    int waiting, in_system; /* the change at t */
} queue_event;

static int cmp_event(const void *a, const void *b)
{
    const queue_event *x = a, *y = b;
    return (x->t > y->t) - (x->t < y->t);
}

/* The requests waiting and in the system after each of at most 1000 evenly spaced events. */
static void queue_block(FILE *f, queue_event *e, size_t n)
{
    qsort(e, n, sizeof *e, cmp_event);
    fputs("$queue << EOD\n0 0 0\n", f);
    long waiting = 0, in_system = 0;
    size_t step = n > 1000 ? n / 1000 : 1;
    for (size_t i = 0; i < n; i++) {
        waiting += e[i].waiting;
        in_system += e[i].in_system;
        if (i % step == 0 || i + 1 == n)
            fprintf(f, "%.6g %ld %ld\n", e[i].t, waiting, in_system);
    }
    fputs("EOD\n", f);
}

isim_status isim_report_serve_plot(const char *path, const char *title, const isim_serve_result *s,
                                   isim_error *err)
{
    size_t n = s->n;
    double *v = malloc((n ? n : 1) * sizeof *v);
    queue_event *e = malloc((3 * n + 1) * sizeof *e);
    char *body = NULL;
    size_t size = 0;
    FILE *f = v && e ? open_memstream(&body, &size) : NULL;
    if (!f) {
        free(v);
        free(e);
        return isim__gnuplot_fail(err, "out of memory");
    }
    static const char *const names[3] = {"ttft", "tpot", "e2e"};
    for (int k = 0; k < 3; k++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            const isim_served *r = &s->req[i];
            if (k == 0)
                v[m++] = (r->first_token_s - r->arrival_s) * 1e3;
            else if (k == 2)
                v[m++] = (r->done_s - r->arrival_s) * 1e3;
            else if (r->output_tokens > 1)
                v[m++] = (r->done_s - r->first_token_s) / (double)(r->output_tokens - 1) * 1e3;
        }
        cdf_block(f, names[k], v, m);
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const isim_served *r = &s->req[i];
        e[m++] = (queue_event){r->arrival_s, 1, 1};
        e[m++] = (queue_event){r->admitted_s, -1, 0};
        e[m++] = (queue_event){r->done_s, 0, -1};
    }
    queue_block(f, e, m);
    fputs("set multiplot layout 1,2 title ", f);
    isim__gp_string(f, title);
    fputs("\nset grid lc rgb '#dddddd'\nset logscale x\nset format x '%g'\n"
          "set xlabel 'latency (ms)'\nset ylabel 'share of requests at or under it'\n"
          "set yrange [0:1]\nset key bottom right box opaque\n"
          "plot $ttft with steps lw 2 title 'TTFT', $tpot with steps lw 2 title 'TPOT', "
          "$e2e with steps lw 2 title 'end to end'\n"
          "unset logscale x\nset xlabel 'time from the first arrival (s)'\n"
          "set ylabel 'requests'\nset yrange [0:*]\nset key top left box opaque\n"
          "plot $queue using 1:3 with steps lw 2 title 'in the system', "
          "$queue using 1:2 with steps lw 2 title 'waiting for admission'\n"
          "unset multiplot\n",
          f);
    free(v);
    free(e);
    if (fclose(f) != 0) {
        free(body);
        return isim__gnuplot_fail(err, "out of memory");
    }
    isim_status st = isim__gnuplot(path, 1200, 520, body, err);
    free(body);
    return st;
}
