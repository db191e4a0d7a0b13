/* The forms of a simulation under traffic (sim/serve.h): JSON, a table and a CSV row per
 * request. Nothing here models: every figure is the simulator's. */
#include <math.h>
#include <stdio.h>

#include "reports/internal.h"
#include "reports/report.h"

static const char *len_name(isim_len_kind k)
{
    return k == ISIM_LEN_FIXED ? "fixed" : k == ISIM_LEN_UNIFORM ? "uniform" : "lognormal";
}

static const char *arrival_name(isim_arrival_kind k)
{
    return k == ISIM_ARRIVE_POISSON ? "poisson" : k == ISIM_ARRIVE_GAMMA ? "gamma" : "closed";
}

static cJSON *len_json(isim__json *j, const isim_len_dist *d)
{
    cJSON *o = isim__json_new(j);
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
    } else {
        isim__json_num(j, o, "rate_per_s", t->rate);
        if (t->kind == ISIM_ARRIVE_GAMMA)
            isim__json_num(j, o, "cv", t->cv);
    }
    isim__json_num(j, o, "requests", (double)t->requests);
    isim__json_num(j, o, "seed", (double)t->seed);
    isim__json_item(j, o, "input_tokens", len_json(j, &t->input));
    isim__json_item(j, o, "output_tokens", len_json(j, &t->output));
    isim__json_num(j, o, "prefix_hit_rate", t->prefix_hit);
    cJSON *sc = isim__json_obj(j, o, "scheduler");
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

static void len_text(FILE *out, const isim_len_dist *d)
{
    if (d->kind == ISIM_LEN_FIXED)
        fprintf(out, "%g", d->a);
    else if (d->kind == ISIM_LEN_UNIFORM)
        fprintf(out, "uniform %g to %g", d->a, d->b);
    else
        fprintf(out, "lognormal, mean %g, cv %g", d->a, d->b);
}

void isim_report_serve_table(FILE *out, const isim_traffic *t, const isim_serve_result *s)
{
    fprintf(out, "under traffic (simulated request by request, seed %llu):\n",
            (unsigned long long)t->seed);
    if (t->kind == ISIM_ARRIVE_CLOSED)
        fprintf(out, "  %-16s %lld clients, %lld requests, the first %lld together\n", "arrivals",
                (long long)t->clients, (long long)t->requests, (long long)t->clients);
    else
        fprintf(out, "  %-16s %s, %g per s%s, %lld requests\n", "arrivals", arrival_name(t->kind),
                t->rate, t->kind == ISIM_ARRIVE_GAMMA ? " (gamma gaps)" : "",
                (long long)t->requests);
    fprintf(out, "  %-16s input ", "lengths");
    len_text(out, &t->input);
    fprintf(out, ", output ");
    len_text(out, &t->output);
    fprintf(out, " tokens; prefix-cache hits %g%%\n", t->prefix_hit * 100);
    fprintf(out, "  %-16s at most %lld running, %lld tokens per pass, KV cache %.0f tokens\n",
            "scheduler", (long long)s->max_running, (long long)s->token_budget, s->kv_tokens);
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
    if (s->overloaded)
        fprintf(out,
                "  %-16s OVERLOADED: %.4g requests/s offered, %.4g served (%.2fx); the queue "
                "grows for as long as the traffic lasts\n",
                "load", s->offered_rps, s->served_rps,
                s->served_rps > 0 ? s->offered_rps / s->served_rps : INFINITY);
}

void isim_report_serve_csv(FILE *out, const isim_serve_result *s)
{
    fprintf(out, "request,arrival_s,ttft_ms,e2e_ms,tpot_ms,input_tokens,output_tokens,"
                 "preemptions\n");
    for (size_t i = 0; i < s->n; i++) {
        const isim_served *r = &s->req[i];
        double tpot = r->output_tokens > 1
                          ? (r->done_s - r->first_token_s) / (double)(r->output_tokens - 1) * 1e3
                          : NAN;
        fprintf(out, "%zu,%.9g,%.6g,%.6g,", i, r->arrival_s,
                (r->first_token_s - r->arrival_s) * 1e3, (r->done_s - r->arrival_s) * 1e3);
        if (isfinite(tpot))
            fprintf(out, "%.6g", tpot);
        fprintf(out, ",%lld,%lld,%lld\n", (long long)r->input_tokens, (long long)r->output_tokens,
                (long long)r->preemptions);
    }
}
