/* infersim predict: time, cost, energy and memory of one serving configuration. */
#include "cli/cli.h"
#include "reports/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(cli_opt *opts)
{
    printf("usage: infersim predict --model ID --hw ID --devices N --batch B "
           "--input-tokens I --output-tokens O [OPTIONS]\n\n"
           "Predicts one decode step (TPOT) and the prefill (TTFT) of a configuration, split\n"
           "into arithmetic, HBM, network and fixed-latency time, with memory per device,\n"
           "throughput, $ per million tokens and J per token. docs/model.md has the equations.\n\n"
           "options:\n");
    cli_print_options(opts);
}

static void help_simulate(cli_opt *opts)
{
    printf("usage: infersim simulate --model ID --hw ID --devices N (--rate R | --concurrency C) "
           "--input-tokens I --output-tokens O [OPTIONS]\n"
           "       infersim simulate --model ID --hw ID --devices N --trace FILE [OPTIONS]\n\n"
           "Simulates one replica serving requests one by one: arrivals, admission while the\n"
           "KV cache has room, chunked prefill riding with the running sequences' decode\n"
           "tokens, preemption, completion. Prints TTFT, TPOT and end-to-end latency at p50,\n"
           "p90 and p99, throughput and the queue. docs/serving.md has the scheduler.\n\n"
           "options:\n");
    cli_print_options(opts);
}

static bool has(cli_opt *opts, const char *name)
{
    const cli_opt *o = cli_find(opts, name);
    return o && o->value;
}

/* The query of the options predict and simulate share (those a command lacks are unset). */
static int parse_query(const char *cmd, cli_opt *opts, isim_query *q)
{
    isim_query_init(q);
    const cli_opt *o;
    if (!cli_fidelity(cmd, cli_find(opts, "fidelity"), &q->fidelity))
        return CLI_USAGE;
    if (!cli_number(cmd, cli_find(opts, "devices"), 1, 1e7, &q->devices) ||
        (has(opts, "batch") && !cli_number(cmd, cli_find(opts, "batch"), 1, 1e9, &q->batch)) ||
        (has(opts, "input-tokens") &&
         !cli_number(cmd, cli_find(opts, "input-tokens"), 0, 1e9, &q->input_tokens)) ||
        (has(opts, "output-tokens") &&
         !cli_number(cmd, cli_find(opts, "output-tokens"), 1, 1e9, &q->output_tokens)))
        return CLI_USAGE;
    static const char *const degrees[] = {"tp", "pp", "ep"};
    int *deg[] = {&q->tp, &q->pp, &q->ep};
    for (int i = 0; i < 3; i++)
        if ((o = cli_find(opts, degrees[i]))->value && !cli_int(cmd, o, 1, 1000000, deg[i]))
            return CLI_USAGE;
    static const char *const dtypes[] = {"weights", "kv", "spec-draft-weights"};
    isim_dtype *dt[] = {&q->weights, &q->kv, &q->draft_weights};
    for (int i = 0; i < 3; i++)
        if ((o = cli_find(opts, dtypes[i]))->value && isim_dtype_parse(o->value, dt[i]))
            return cli_usage_error(
                cmd, "--%s: expected one of fp32 bf16 fp16 fp8 int8 int4 fp4, got '%s'", o->name,
                o->value);
    bool spec = cli_find(opts, "spec-draft")->value != NULL;
    static const char *const spec_opts[] = {"spec-alpha", "spec-gamma", "spec-gamma-max",
                                            "spec-draft-weights"};
    for (int i = 0; i < 4; i++)
        if (!spec && cli_find(opts, spec_opts[i])->value)
            return cli_usage_error(cmd, "--%s needs --spec-draft", spec_opts[i]);
    if ((o = cli_find(opts, "spec-alpha"))->value &&
        !cli_number(cmd, o, 1e-6, 1 - 1e-6, &q->spec_alpha))
        return CLI_USAGE;
    if ((o = cli_find(opts, "spec-gamma"))->value && !cli_int(cmd, o, 1, 64, &q->spec_gamma))
        return CLI_USAGE;
    if ((o = cli_find(opts, "spec-gamma-max"))->value &&
        !cli_int(cmd, o, 1, 64, &q->spec_gamma_max))
        return CLI_USAGE;
    if ((o = cli_find(opts, "pp-schedule"))->value) {
        if (strcmp(o->value, isim_pp_schedule_name(ISIM_PP_STEPWISE)) == 0)
            q->pp_schedule = ISIM_PP_STEPWISE;
        else if (strcmp(o->value, isim_pp_schedule_name(ISIM_PP_INTERLEAVED)) != 0)
            return cli_usage_error(cmd, "--pp-schedule: expected interleaved or stepwise, got '%s'",
                                   o->value);
    }
    q->allow_cross_domain_tp = cli_find(opts, "allow-cross-domain-tp")->value != NULL;
    q->backend = cli_find(opts, "backend")->value;
    if ((o = cli_find(opts, "prefix-hit"))->value &&
        !cli_number(cmd, o, 0, 0.999999, &q->prefix_hit_rate))
        return CLI_USAGE;

    return CLI_OK;
}

/* predict (simulate false) and simulate: the same options; simulate needs traffic, takes
 * --batch as the running sequences' limit (default 256) and prints the simulation alone. */
static int predict_or_simulate(int argc, char **argv, bool simulate)
{
    const char *cmd = simulate ? "simulate" : "predict";
    cli_opt opts[] = {
        {"model", true, "model id (infersim list models)", NULL},
        {"hw", true, "hardware profile id (infersim list hardware)", NULL},
        {"devices", true, "devices serving one replica (paper fidelity: any real >= 1)", NULL},
        {"batch", true,
         simulate ? "running sequences at most per data-parallel group (default: the "
                    "profile's serving.max_running_sequences, else 256)"
                  : "sequences decoded together (>= 1); under traffic, the running sequences "
                    "at most per data-parallel group",
         NULL},
        {"input-tokens", true, "prompt tokens per sequence", NULL},
        {"output-tokens", true, "generated tokens per sequence", NULL},
        {"fidelity", true, "deploy (default) or paper (Erdil 2025 as its code computes it)", NULL},
        {"tp", true, "tensor-parallel degree (deploy; default: largest valid in a domain)", NULL},
        {"pp", true, "pipeline stages (default: deploy the rest of the devices; paper searched)",
         NULL},
        {"ep", true, "expert-parallel degree (deploy, MoE; default: every device of a stage)",
         NULL},
        {"pp-schedule", true,
         "deploy: interleaved (default: micro-batches in flight across steps) or stepwise "
         "(each step fills and drains the pipeline, as the CPU engine runs it)",
         NULL},
        {"weights", true,
         "weight precision: fp32 bf16 fp16 fp8 int8 int4 fp4 (default: as released)", NULL},
        {"kv", true, "KV-cache precision (default bf16)", NULL},
        {"prefix-hit", true, "share of each prompt already in the prefix cache, [0, 1)", NULL},
        {"spec-draft", true, "draft model id for speculative decoding", NULL},
        {"spec-draft-weights", true, "draft weight precision (default bf16)", NULL},
        {"spec-alpha", true, "draft token acceptance probability (default 0.8)", NULL},
        {"spec-gamma", true, "draft tokens per step (default: the best up to --spec-gamma-max)",
         NULL},
        {"spec-gamma-max", true, "largest gamma searched (default 5)", NULL},
        {"backend", true,
         "deploy: the serving engine whose fitted parameters to use (the profile's fitted: "
         "section)",
         NULL},
        {"allow-cross-domain-tp", false, "let tensor parallelism span scale-up domains (deploy)",
         NULL},
        CLI_TRAFFIC_OPTS,
        {"json", false, simulate ? "print JSON with every request" : "print JSON", NULL},
        {"csv", false,
         simulate ? "print one CSV row per request" : "print a CSV header and row (no traffic)",
         NULL},
        {"ttft-slo", true, "traffic: a TTFT target in ms; the share of requests within it", NULL},
        {"tpot-slo", true, "traffic: a TPOT target in ms; the share of requests within it", NULL},
        {"plot", true,
         "traffic: draw the latencies' distributions and the queue over time with gnuplot "
         "into FILE.png or FILE.svg",
         NULL},
        {"data", true, "directory holding models/ and hw-profiles/", NULL},
        {NULL, false, NULL, NULL}};
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(cmd, argc, argv, 2, opts, pos, 0, &n_pos);
    if (rc < 0) {
        simulate ? help_simulate(opts) : help(opts);
        return CLI_OK;
    }
    if (rc)
        return rc;
    static const char *const required[] = {"model", "hw",           "devices",
                                           "batch", "input-tokens", "output-tokens"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        const char *name = required[i];
        /* simulate: a default limit, and lengths that a distribution may give; a trace's
         * lengths for either command */
        bool tokens = strcmp(name, "input-tokens") == 0 || strcmp(name, "output-tokens") == 0;
        if ((tokens && has(opts, "trace")) ||
            (simulate && (strcmp(name, "batch") == 0 ||
                          (strcmp(name, "input-tokens") == 0 && has(opts, "input-dist")) ||
                          (strcmp(name, "output-tokens") == 0 && has(opts, "output-dist")))))
            continue;
        if (!cli_find(opts, name)->value)
            return cli_usage_error(cmd, "missing --%s", name);
    }
    if (simulate && !has(opts, "rate") && !has(opts, "concurrency") && !has(opts, "trace"))
        return cli_usage_error(cmd,
                               "missing the traffic: --rate R, --concurrency C or --trace FILE");
    if (has(opts, "json") && has(opts, "csv"))
        return cli_usage_error(cmd, "--json and --csv are exclusive");
    if (strchr(cli_find(opts, "hw")->value, ','))
        return cli_usage_error(cmd,
                               "--hw: %s takes one hardware id, got '%s' (plan compares "
                               "several)",
                               cmd, cli_find(opts, "hw")->value);

    isim_query q;
    if ((rc = parse_query(cmd, opts, &q)))
        return rc;
    isim_traffic t;
    isim_sched sc;
    bool traffic;
    /* simulate without --batch: the profile's engine limit, once the profile is loaded */
    double limit = simulate && !has(opts, "batch") ? 0 : q.batch;
    if ((rc = cli_traffic(cmd, opts, &q, limit, &t, &sc, &traffic)))
        return rc;
    /* lengths given only as distributions: the figures of a request alone take their means */
    const isim_len_dist *d[2] = {&t.input, &t.output};
    double *len[2] = {&q.input_tokens, &q.output_tokens};
    for (int i = 0; traffic && i < 2; i++)
        if (!has(opts, i ? "output-tokens" : "input-tokens"))
            *len[i] = d[i]->kind == ISIM_LEN_UNIFORM ? floor((d[i]->a + d[i]->b) / 2)
                                                     : floor(d[i]->a + 0.5);
    if (traffic && q.fidelity != ISIM_DEPLOY)
        return cli_usage_error(cmd, "traffic is simulated in the deploy fidelity only");
    if (traffic && !simulate && has(opts, "csv"))
        return cli_usage_error(cmd, "--csv prints the static figures; under traffic use the "
                                    "table, --json, or simulate --csv for every request");
    double slo[2] = {0, 0};
    static const char *const slo_opts[2] = {"ttft-slo", "tpot-slo"};
    for (int i = 0; i < 2; i++) {
        const cli_opt *o = cli_find(opts, slo_opts[i]);
        if (o->value && !traffic)
            return cli_usage_error(cmd,
                                   "--%s counts the requests of a simulation: give --rate R, "
                                   "--concurrency C or --trace FILE",
                                   slo_opts[i]);
        if (o->value && !cli_number(cmd, o, 1e-6, 1e9, &slo[i]))
            return CLI_USAGE;
    }
    const char *plot = cli_find(opts, "plot")->value;
    char *plot_tmp = NULL;
    if (plot && !traffic)
        return cli_usage_error(cmd, "--plot draws a simulation: give --rate R, --concurrency C "
                                    "or --trace FILE");
    if (plot && (rc = cli_plot_target(cmd, plot, &plot_tmp)))
        return rc;
    const char *dir = cli_data_dir(cli_find(opts, "data"));
    isim_model *m = NULL, *draft = NULL;
    isim_hw *hw = NULL;
    isim_step_ctx *x = NULL;
    isim_serve_result *sv = NULL;
    isim_trace *tr = NULL;
    isim_error err = {0};
    isim_result r;
    if ((rc = cli_traffic_trace(opts, &t, &q, &tr)))
        goto cleanup;
    if (isim_catalog_model(dir, cli_find(opts, "model")->value, &m, &err) ||
        isim_catalog_hw(dir, cli_find(opts, "hw")->value, &hw, &err) ||
        (has(opts, "spec-draft") &&
         isim_catalog_model(dir, cli_find(opts, "spec-draft")->value, &draft, &err))) {
        rc = cli_error(&err);
        goto cleanup;
    }
    q.draft = draft;
    if (tr && isim_trace_fits(tr, m, &err)) { /* named by its line, not its number */
        rc = cli_error(&err);
        goto cleanup;
    }
    if (traffic && sc.max_seqs == 0)
        sc.max_seqs = hw->max_running_sequences > 0 ? (int64_t)hw->max_running_sequences : 256;
    if (traffic) {
        /* the static figures of one request alone beside the traffic's */
        double b = q.batch;
        q.batch = 1;
        if (isim_step_ctx_new(m, hw, &q, &x, &r, &err)) {
            rc = cli_error(&err);
            goto cleanup;
        }
        q.batch = b;
        if (x && isim_serve_run(m, x, &sc, &t, &sv, &err)) {
            rc = cli_error(&err);
            goto cleanup;
        }
    } else if (isim_predict(m, hw, &q, &r, &err)) {
        rc = cli_error(&err);
        goto cleanup;
    }
    if (sv)
        isim_serve_goodput(sv, slo[0] * 1e-3, slo[1] * 1e-3);
    if (sv && plot) {
        char title[400];
        snprintf(title, sizeof title, "%s on %g x %s under traffic", m->name, q.devices, hw->name);
        if (isim_report_serve_plot(plot, title, sv, &err)) {
            rc = cli_error(&err);
            goto cleanup;
        }
    }
    if (simulate && !sv) {
        fprintf(stderr, "infersim: error: infeasible: %s (%s)\n", isim_reason_text(r.reason),
                r.reason_detail);
        rc = r.reason == ISIM_REASON_CONTEXT ? CLI_USAGE : CLI_FAIL; /* the lengths asked for */
    } else if (simulate && has(opts, "csv")) {
        isim_report_serve_csv(stdout, &t, sv);
    } else if (simulate && has(opts, "json")) {
        rc = cli_print_doc(isim_report_serve_json(m, hw, &q, &t, sv, true));
    } else if (simulate) {
        fprintf(stdout, "%s on %g x %s, layout tp %d, pp %d, ep %d, dp %d (deploy fidelity)\n",
                m->name, q.devices, hw->name, r.tp, r.pp, r.ep, r.dp);
        isim_report_serve_table(stdout, &t, sv);
    } else if (has(opts, "json")) {
        rc = cli_print_doc(sv ? isim_report_predict_traffic_json(m, hw, &q, &r, &t, sv)
                              : isim_report_predict_json(m, hw, &q, &r));
    } else if (has(opts, "csv")) {
        isim_report_predict_csv_header(stdout);
        isim_report_predict_csv_row(stdout, m, hw, &q, &r);
    } else {
        isim_report_predict_table(stdout, m, hw, &q, &r);
        if (sv)
            isim_report_serve_table(stdout, &t, sv);
        else if (r.feasible && q.fidelity == ISIM_DEPLOY)
            printf("  %-16s unloaded: a static batch, every sequence arriving at once "
                   "(--rate R or --concurrency C simulates traffic)\n",
                   "load");
    }
    if (sv && plot && !rc && !has(opts, "json") && !has(opts, "csv"))
        printf("plot: %s\n", plot);
cleanup:
    cli_plot_done(plot_tmp);
    isim_serve_result_free(sv);
    isim_trace_free(tr);
    isim_step_ctx_free(x);
    isim_model_free(m);
    isim_model_free(draft);
    isim_hw_free(hw);
    return rc;
}

int cmd_predict(int argc, char **argv)
{
    return predict_or_simulate(argc, argv, false);
}

int cmd_simulate(int argc, char **argv)
{
    return predict_or_simulate(argc, argv, true);
}
