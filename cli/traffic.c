/* The traffic options of predict and simulate (sim/serve.h). */
#include "cli/cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One number of a distribution's text, up to ':' or the end; false when it is not one. */
static bool dist_number(const char **p, double *out)
{
    char *end;
    errno = 0;
    if (!(**p >= '0' && **p <= '9'))
        return false;
    double v = strtod(*p, &end);
    if (errno || !isfinite(v) || end == *p || (*end && *end != ':'))
        return false;
    for (const char *c = *p; c < end; c++)
        if (!((*c >= '0' && *c <= '9') || *c == '.'))
            return false; /* decimal only: no exponent, hex or sign */
    *out = v;
    *p = *end ? end + 1 : end;
    return true;
}

/* --input-dist / --output-dist: uniform:A:B or lognormal:MEAN:CV. */
static bool parse_dist(const char *cmd, const cli_opt *o, isim_len_dist *d)
{
    const char *p = o->value;
    isim_len_kind kind;
    if (strncmp(p, "uniform:", 8) == 0) {
        kind = ISIM_LEN_UNIFORM;
        p += 8;
    } else if (strncmp(p, "lognormal:", 10) == 0) {
        kind = ISIM_LEN_LOGNORMAL;
        p += 10;
    } else {
        cli_usage_error(cmd, "--%s: expected uniform:MIN:MAX or lognormal:MEAN:CV, got '%s'",
                        o->name, o->value);
        return false;
    }
    double a, b;
    if (!dist_number(&p, &a) || !*p || !dist_number(&p, &b) || *p) {
        cli_usage_error(cmd, "--%s: expected two decimal numbers after '%s', got '%s'", o->name,
                        kind == ISIM_LEN_UNIFORM ? "uniform:" : "lognormal:", o->value);
        return false;
    }
    *d = (isim_len_dist){kind, a, b};
    return true;
}

/* --trace FILE: the file gives every request, its arrival and its lengths; nothing is
 * drawn. */
static int trace_options(const char *cmd, cli_opt *opts, isim_traffic *t)
{
    static const char *const drawn[] = {"rate",       "concurrency", "requests",    "arrival",
                                        "arrival-cv", "input-dist",  "output-dist", "seed"};
    for (size_t i = 0; i < sizeof drawn / sizeof drawn[0]; i++)
        if (cli_find(opts, drawn[i])->value)
            return cli_usage_error(cmd,
                                   "--trace and --%s are exclusive: the trace gives every "
                                   "request's arrival and lengths",
                                   drawn[i]);
    t->kind = ISIM_ARRIVE_TRACE;
    return CLI_OK;
}

int cli_traffic(const char *cmd, cli_opt *opts, const isim_query *q, double max_seqs,
                isim_traffic *t, isim_sched *s, bool *given)
{
    const cli_opt *rate = cli_find(opts, "rate"), *conc = cli_find(opts, "concurrency");
    const cli_opt *trace = cli_find(opts, "trace");
    *given = rate->value || conc->value || trace->value;
    static const char *const only[] = {"arrival",     "arrival-cv", "requests",     "input-dist",
                                       "output-dist", "seed",       "token-budget", "kv-block",
                                       "kv-tokens",   "policy"};
    if (!*given) {
        for (size_t i = 0; i < sizeof only / sizeof only[0]; i++)
            if (cli_find(opts, only[i])->value)
                return cli_usage_error(cmd,
                                       "--%s needs traffic: --rate R, --concurrency C or "
                                       "--trace FILE",
                                       only[i]);
        return CLI_OK;
    }
    if (rate->value && conc->value)
        return cli_usage_error(cmd, "--rate (open loop) and --concurrency (closed loop) are "
                                    "exclusive");
    memset(t, 0, sizeof *t);
    memset(s, 0, sizeof *s);
    t->input = (isim_len_dist){ISIM_LEN_FIXED, q->input_tokens, 0};
    t->output = (isim_len_dist){ISIM_LEN_FIXED, q->output_tokens, 0};
    t->prefix_hit = q->prefix_hit_rate;
    t->seed = 1;
    const cli_opt *o;
    int requests = 0, iv, rc;
    if (trace->value) {
        if ((rc = trace_options(cmd, opts, t)))
            return rc;
    } else if ((o = cli_find(opts, "requests"))->value &&
               !cli_int(cmd, o, 1, ISIM_SERVE_MAX_REQUESTS, &requests)) {
        return CLI_USAGE;
    }
    if (conc->value) {
        if (!cli_int(cmd, conc, 1, ISIM_SERVE_MAX_REQUESTS, &iv))
            return CLI_USAGE;
        t->kind = ISIM_ARRIVE_CLOSED;
        t->clients = iv;
        /* as public benchmarks run a concurrency: about ten requests per client */
        t->requests = requests ? requests : (int64_t)fmin(10.0 * iv, ISIM_SERVE_MAX_REQUESTS);
        if (cli_find(opts, "arrival")->value || cli_find(opts, "arrival-cv")->value)
            return cli_usage_error(cmd, "--arrival and --arrival-cv shape open-loop arrivals "
                                        "(--rate)");
    } else if (rate->value) {
        if (!cli_number(cmd, rate, 1e-6, 1e6, &t->rate))
            return CLI_USAGE;
        t->kind = ISIM_ARRIVE_POISSON;
        t->requests = requests ? requests : 1000;
        if ((o = cli_find(opts, "arrival"))->value) {
            if (strcmp(o->value, "gamma") == 0)
                t->kind = ISIM_ARRIVE_GAMMA;
            else if (strcmp(o->value, "poisson") != 0)
                return cli_usage_error(cmd, "--arrival: expected poisson or gamma, got '%s'",
                                       o->value);
        }
        o = cli_find(opts, "arrival-cv");
        if (t->kind == ISIM_ARRIVE_GAMMA && !o->value)
            return cli_usage_error(cmd, "--arrival gamma needs --arrival-cv CV");
        if (o->value && t->kind != ISIM_ARRIVE_GAMMA)
            return cli_usage_error(cmd, "--arrival-cv needs --arrival gamma");
        if (o->value && !cli_number(cmd, o, 1e-3, 10, &t->cv))
            return CLI_USAGE;
    }
    if (t->kind == ISIM_ARRIVE_CLOSED && t->clients > t->requests)
        return cli_usage_error(cmd, "--concurrency %lld is more than --requests %lld",
                               (long long)t->clients, (long long)t->requests);
    if ((o = cli_find(opts, "input-dist"))->value && !parse_dist(cmd, o, &t->input))
        return CLI_USAGE;
    if ((o = cli_find(opts, "output-dist"))->value && !parse_dist(cmd, o, &t->output))
        return CLI_USAGE;
    if ((o = cli_find(opts, "seed"))->value) {
        if (!cli_int(cmd, o, 0, 2147483647, &iv))
            return CLI_USAGE;
        t->seed = (uint64_t)iv;
    }
    s->max_seqs = (int64_t)max_seqs;
    if ((o = cli_find(opts, "token-budget"))->value) {
        if (!cli_int(cmd, o, 1, 10000000, &iv))
            return CLI_USAGE;
        s->token_budget = iv;
    }
    if ((o = cli_find(opts, "policy"))->value && !isim_sched_policy_parse(o->value, &s->policy))
        return cli_usage_error(cmd,
                               "--policy: unknown scheduler '%s' (expected vllm, sglang or "
                               "trtllm)",
                               o->value);
    if ((o = cli_find(opts, "kv-block"))->value) {
        if (!cli_int(cmd, o, 1, 65536, &iv))
            return CLI_USAGE;
        s->block_tokens = iv;
    }
    if ((o = cli_find(opts, "kv-tokens"))->value && !cli_number(cmd, o, 1, 1e12, &s->kv_tokens))
        return CLI_USAGE;
    return CLI_OK;
}

int cli_traffic_trace(cli_opt *opts, isim_traffic *t, isim_query *q, isim_trace **tr)
{
    *tr = NULL;
    if (t->kind != ISIM_ARRIVE_TRACE)
        return CLI_OK;
    isim_error err = {0};
    if (isim_trace_load(cli_find(opts, "trace")->value, tr, &err))
        return cli_error(&err);
    t->trace = (*tr)->req;
    t->requests = (int64_t)(*tr)->n;
    t->file = *tr;
    /* the figures of a request alone take the trace's mean lengths unless given */
    double sum[2] = {0, 0};
    for (size_t i = 0; i < (*tr)->n; i++) {
        sum[0] += (double)(*tr)->req[i].input_tokens;
        sum[1] += (double)(*tr)->req[i].output_tokens;
    }
    if (!cli_find(opts, "input-tokens")->value)
        q->input_tokens = floor(sum[0] / (double)(*tr)->n + 0.5);
    if (!cli_find(opts, "output-tokens")->value)
        q->output_tokens = floor(sum[1] / (double)(*tr)->n + 0.5);
    return CLI_OK;
}
