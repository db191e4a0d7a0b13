/* infersim plan: the speed-cost frontier of serving a model on candidate hardware, the
 * recommended configuration, and the answers to the constraints given. */
#include "cli/cli.h"
#include "planner/planner.h"
#include "reports/report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void help(cli_opt *opts)
{
    printf("usage: infersim plan --model ID --hw ID[,ID...] [OPTIONS]\n\n"
           "Searches hardware, device counts, parallelism, batch, precision and speculative\n"
           "decoding for the frontier of tokens/s per user against $ per million output tokens,\n"
           "under the constraints given, marks the recommended configuration (the most\n"
           "speed^alpha per dollar) and answers: the cheapest at --min-speed, the fastest at\n"
           "--max-cost, the fewest devices for --demand. --hw all takes every profile.\n\n"
           "options:\n");
    cli_print_options(opts);
}

static int dtypes(const char *cmd, const cli_opt *o, bool deploy_all, isim_dtype *out, size_t *n)
{
    static const isim_dtype all[] = {ISIM_BF16, ISIM_FP8, ISIM_INT8, ISIM_INT4, ISIM_FP4};
    if (strcmp(o->value, "all") == 0) {
        size_t m = deploy_all ? sizeof all / sizeof all[0] : 2;
        memcpy(out, all, m * sizeof *out);
        *n = m;
        return CLI_OK;
    }
    char **items = NULL;
    size_t k = 0;
    int rc = cli_list(cmd, o, &items, &k);
    /* distinct names of precisions: at most ISIM_DTYPE_COUNT of them parse */
    isim_dtype d;
    for (size_t i = 0; !rc && i < k; i++) {
        if (!isim_dtype_parse(items[i], &d))
            out[i] = d;
        else if (strcmp(items[i], "all") == 0)
            rc = cli_usage_error(cmd,
                                 "--%s: 'all' names every precision and stands alone, "
                                 "not in a list",
                                 o->name);
        else
            rc = cli_usage_error(cmd,
                                 "--%s: unknown precision '%s' (expected fp32 bf16 fp16 "
                                 "fp8 int8 int4 fp4, or 'all')",
                                 o->name, items[i]);
    }
    *n = k;
    free(items);
    return rc;
}

int cmd_plan(int argc, char **argv)
{
    const char *cmd = "plan";
    cli_opt opts[] = {
        {"model", true, "model id (infersim list models)", NULL},
        {"hw", true, "hardware ids, comma-separated, or 'all'", NULL},
        {"fidelity", true, "deploy (default) or paper (the released code's pareto_fronts)", NULL},
        {"input-tokens", true, "prompt tokens per sequence (default 1024; paper: context)", NULL},
        {"output-tokens", true, "generated tokens per sequence (default 1024)", NULL},
        {"min-speed", true, "tokens/s per user at least (answers: the cheapest)", NULL},
        {"max-cost", true, "$ per million output tokens at most (answers: the fastest)", NULL},
        {"demand", true, "tokens/s to serve (deploy: fewest devices; paper: the code's cap)", NULL},
        {"rate", true, "requests/s to serve (deploy): a demand of rate x output tokens", NULL},
        {"ttft-slo", true, "time to first token at most, ms (deploy)", NULL},
        {"tpot-slo", true, "time per output token at most, ms", NULL},
        {"slo-percentile", true,
         "deploy: the SLOs hold at this percentile of the requests, simulated under the "
         "demand's traffic (1 to 99.99)",
         NULL},
        {"sim-requests", true, "requests simulated per configuration (default 1000)", NULL},
        {"seed", true, "seed of the simulated arrivals (default 1)", NULL},
        {"weights", true,
         "weight precisions to try, comma-separated or 'all' (default: as released)", NULL},
        {"kv", true, "KV-cache precisions to try (default bf16)", NULL},
        {"spec-draft", true, "draft model id: also try speculative decoding", NULL},
        {"spec-draft-weights", true, "draft weight precision (default bf16, as in the paper)",
         NULL},
        {"spec-alpha", true, "draft token acceptance probability (default 0.8)", NULL},
        {"spec-gamma-max", true, "largest number of draft tokens per step (default 5)", NULL},
        {"max-devices", true, "deploy: devices of one replica at most (default 64)", NULL},
        {"allow-cross-domain-tp", false, "deploy: let TP span scale-up domains", NULL},
        {"pareto-ttft", false, "deploy: TTFT as a third objective of the frontier", NULL},
        {"alpha", true, "exponent of the recommended point's speed^alpha / price (default 3)",
         NULL},
        {"no-pp", false, "paper: without the code's pipeline-parallel candidates", NULL},
        {"grid", true, "paper: points per side of the devices x batch grid (default 400)", NULL},
        {"threads", true,
         "threads for the paper grid and for the simulations of --slo-percentile (default: one "
         "per CPU)",
         NULL},
        {"json", false, "print JSON", NULL},
        {"csv", false, "print CSV: every hardware's frontier", NULL},
        {"no-elapsed", false, "leave elapsed_ms out of the JSON (byte-identical runs)", NULL},
        {"plot", true, "draw the frontiers with gnuplot into FILE.png or FILE.svg", NULL},
        {"data", true, "directory holding models/ and hw-profiles/", NULL},
        {NULL, false, NULL, NULL}};
    const char *pos[1];
    int n_pos = 0, rc = cli_parse(cmd, argc, argv, 2, opts, pos, 0, &n_pos);
    if (rc < 0) {
        help(opts);
        return CLI_OK;
    }
    if (rc)
        return rc;
    if (!cli_find(opts, "model")->value)
        return cli_usage_error(cmd, "missing --model");
    if (!cli_find(opts, "hw")->value)
        return cli_usage_error(cmd, "missing --hw");
    if (cli_find(opts, "json")->value && cli_find(opts, "csv")->value)
        return cli_usage_error(cmd, "--json and --csv are exclusive");

    isim_plan_request r;
    isim_plan_request_init(&r);
    const cli_opt *o;
    if (!cli_fidelity(cmd, cli_find(opts, "fidelity"), &r.fidelity))
        return CLI_USAGE;
    struct {
        const char *name;
        double min, max, scale, *dst;
    } nums[] = {
        {"input-tokens", 0, 1e9, 1, &r.input_tokens},
        {"output-tokens", 1, 1e9, 1, &r.output_tokens},
        {"min-speed", 1e-6, 1e9, 1, &r.min_tokens_per_s_per_user},
        {"max-cost", 1e-9, 1e12, 1, &r.max_cost_usd_per_mtok},
        {"demand", 1e-6, 1e15, 1, &r.demand_tokens_per_s},
        {"ttft-slo", 1e-6, 1e9, 1e-3, &r.ttft_slo_s},
        {"tpot-slo", 1e-6, 1e9, 1e-3, &r.tpot_slo_s},
        {"spec-alpha", 1e-6, 1 - 1e-6, 1, &r.spec_alpha},
        {"alpha", 1e-6, 100, 1, &r.customer_alpha},
        {"slo-percentile", 1, 99.99, 1, &r.slo_percentile},
    };
    if (cli_find(opts, "rate")->value && cli_find(opts, "demand")->value)
        return cli_usage_error(cmd, "--rate and --demand are exclusive (a rate is a demand of "
                                    "rate x output tokens)");
    for (const char *const *n = (const char *const[]){"sim-requests", "seed", NULL}; *n; n++)
        if (cli_find(opts, *n)->value && !cli_find(opts, "slo-percentile")->value)
            return cli_usage_error(cmd, "--%s needs --slo-percentile", *n);
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        if (!(o = cli_find(opts, nums[i].name))->value)
            continue;
        if (!cli_number(cmd, o, nums[i].min, nums[i].max, nums[i].dst))
            return CLI_USAGE;
        *nums[i].dst *= nums[i].scale;
    }
    double rate = 0;
    if ((o = cli_find(opts, "rate"))->value) {
        if (!cli_number(cmd, o, 1e-6, 1e9, &rate))
            return CLI_USAGE;
        r.demand_tokens_per_s = rate * r.output_tokens;
    }
    int iv;
    if ((o = cli_find(opts, "sim-requests"))->value) {
        if (!cli_int(cmd, o, 1, 1000000, &iv))
            return CLI_USAGE;
        r.sim_requests = iv;
    }
    if ((o = cli_find(opts, "seed"))->value) {
        if (!cli_int(cmd, o, 0, 2147483647, &iv))
            return CLI_USAGE;
        r.seed = (uint64_t)iv;
    }
    if (r.slo_percentile > 0 && !(r.demand_tokens_per_s > 0))
        return cli_usage_error(cmd, "--slo-percentile needs the traffic: --rate or --demand");
    int grid = 400;
    if ((o = cli_find(opts, "spec-gamma-max"))->value && !cli_int(cmd, o, 1, 64, &r.spec_gamma_max))
        return CLI_USAGE;
    if ((o = cli_find(opts, "max-devices"))->value && !cli_int(cmd, o, 1, 100000, &r.max_devices))
        return CLI_USAGE;
    if ((o = cli_find(opts, "grid"))->value && !cli_int(cmd, o, 2, 4000, &grid))
        return CLI_USAGE;
    if ((o = cli_find(opts, "threads"))->value && !cli_int(cmd, o, 1, 64, &r.threads))
        return CLI_USAGE;
    r.grid_devices = r.grid_batch = grid;
    r.allow_cross_domain_tp = cli_find(opts, "allow-cross-domain-tp")->value != NULL;
    r.ttft_objective = cli_find(opts, "pareto-ttft")->value != NULL;
    r.use_pp = cli_find(opts, "no-pp")->value == NULL;
    static const char *const spec_opts[] = {"spec-alpha", "spec-gamma-max", "spec-draft-weights"};
    for (int i = 0; i < 3; i++)
        if (!cli_find(opts, "spec-draft")->value && cli_find(opts, spec_opts[i])->value)
            return cli_usage_error(cmd, "--%s needs --spec-draft", spec_opts[i]);
    if ((o = cli_find(opts, "spec-draft-weights"))->value &&
        isim_dtype_parse(o->value, &r.draft_weights))
        return cli_usage_error(
            cmd, "--spec-draft-weights: expected one of fp32 bf16 fp16 fp8 int8 int4 fp4, got '%s'",
            o->value);
    isim_dtype ws[ISIM_DTYPE_COUNT], kvs[ISIM_DTYPE_COUNT];
    if ((o = cli_find(opts, "weights"))->value) {
        if ((rc = dtypes(cmd, o, true, ws, &r.n_weights)))
            return rc;
        r.weights = ws;
    }
    if ((o = cli_find(opts, "kv"))->value) {
        if ((rc = dtypes(cmd, o, false, kvs, &r.n_kv)))
            return rc;
        r.kv = kvs;
    }

    const char *plot = cli_find(opts, "plot")->value;
    char *plot_tmp = NULL;
    if (plot && (rc = cli_plot_target(cmd, plot, &plot_tmp)))
        return rc;

    const char *dir = cli_data_dir(cli_find(opts, "data"));
    isim_error err = {0};
    isim_model *m = NULL, *draft = NULL;
    isim_hw **hws = NULL;
    char **ids = NULL;
    size_t n_hw = 0;
    isim_plan *plan = NULL;
    char **items = NULL;
    rc = CLI_OK;
    if (isim_catalog_model(dir, cli_find(opts, "model")->value, &m, &err) ||
        ((o = cli_find(opts, "spec-draft"))->value &&
         isim_catalog_model(dir, o->value, &draft, &err))) {
        rc = cli_error(&err);
        goto cleanup;
    }
    const cli_opt *hw_opt = cli_find(opts, "hw");
    size_t k = 0;
    if (strcmp(hw_opt->value, "all") == 0) {
        if (isim_catalog_list(dir, "hw-profiles", &ids, &err)) {
            rc = cli_error(&err);
            goto cleanup;
        }
        while (ids[k])
            k++;
    } else if ((rc = cli_list(cmd, hw_opt, &items, &k))) {
        goto cleanup;
    }
    hws = calloc(k ? k : 1, sizeof *hws);
    if (!hws) {
        fprintf(stderr, "infersim: error: out of memory\n");
        rc = CLI_FAIL;
        goto cleanup;
    }
    for (size_t i = 0; i < k; i++) {
        if (isim_catalog_hw(dir, ids ? ids[i] : items[i], &hws[n_hw], &err)) {
            rc = cli_error(&err);
            goto cleanup;
        }
        /* 'all' in deploy fidelity: the profiles a deployment can use */
        if (ids && r.fidelity == ISIM_DEPLOY && !hws[n_hw]->has_serving) {
            isim_hw_free(hws[n_hw]);
            hws[n_hw] = NULL;
            continue;
        }
        n_hw++;
    }
    r.model = m;
    r.hw = (const isim_hw *const *)hws;
    r.n_hw = n_hw;
    r.draft = draft;
    if (isim_plan_run(&r, &plan, &err)) {
        rc = cli_error(&err);
        goto cleanup;
    }
    if (plot && plan->n_frontier && isim_report_plan_plot(&r, plan, plot, &err)) {
        rc = cli_error(&err);
        goto cleanup;
    }
    if (cli_find(opts, "json")->value) {
        char *s = isim_report_plan_json(&r, plan, !cli_find(opts, "no-elapsed")->value);
        if (!s) {
            fprintf(stderr, "infersim: error: out of memory\n");
            rc = CLI_FAIL;
            goto cleanup;
        }
        printf("%s\n", s);
        free(s);
    } else if (cli_find(opts, "csv")->value) {
        isim_report_plan_csv(stdout, &r, plan);
    } else {
        isim_report_plan_table(stdout, &r, plan);
        if (plot && plan->n_frontier)
            printf("plot: %s\n", plot);
    }
    if (plan->n_frontier == 0) {
        fprintf(stderr, "infersim: error: %s\n", plan->empty_reason);
        rc = CLI_FAIL;
    }
cleanup:
    isim_plan_free(plan);
    for (size_t i = 0; hws && i < k; i++)
        isim_hw_free(hws[i]);
    free(hws);
    free(items);
    cli_plot_done(plot_tmp);
    isim_ids_free(ids);
    isim_model_free(m);
    isim_model_free(draft);
    return rc;
}
