/* infersim predict: time, cost, energy and memory of one serving configuration. */
#include "cli/cli.h"
#include "reports/report.h"

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

int cmd_predict(int argc, char **argv)
{
    const char *cmd = "predict";
    cli_opt opts[] = {
        {"model", true, "model id (infersim list models)", NULL},
        {"hw", true, "hardware profile id (infersim list hardware)", NULL},
        {"devices", true, "devices serving one replica (paper fidelity: any real >= 1)", NULL},
        {"batch", true, "sequences decoded together (>= 1)", NULL},
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
        {"json", false, "print JSON", NULL},
        {"csv", false, "print a CSV header and row", NULL},
        {"data", true, "directory holding models/ and hw-profiles/", NULL},
        {NULL, false, NULL, NULL}};
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(cmd, argc, argv, 2, opts, pos, 0, &n_pos);
    if (rc < 0) {
        help(opts);
        return CLI_OK;
    }
    if (rc)
        return rc;
    static const char *const required[] = {"model", "hw",           "devices",
                                           "batch", "input-tokens", "output-tokens"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!cli_find(opts, required[i])->value)
            return cli_usage_error(cmd, "missing --%s", required[i]);
    if (cli_find(opts, "json")->value && cli_find(opts, "csv")->value)
        return cli_usage_error(cmd, "--json and --csv are exclusive");
    if (strchr(cli_find(opts, "hw")->value, ','))
        return cli_usage_error(cmd,
                               "--hw: predict takes one hardware id, got '%s' (plan compares "
                               "several)",
                               cli_find(opts, "hw")->value);

    isim_query q;
    isim_query_init(&q);
    const cli_opt *o;
    if (!cli_fidelity(cmd, cli_find(opts, "fidelity"), &q.fidelity))
        return CLI_USAGE;
    if (!cli_number(cmd, cli_find(opts, "devices"), 1, 1e7, &q.devices) ||
        !cli_number(cmd, cli_find(opts, "batch"), 1, 1e9, &q.batch) ||
        !cli_number(cmd, cli_find(opts, "input-tokens"), 0, 1e9, &q.input_tokens) ||
        !cli_number(cmd, cli_find(opts, "output-tokens"), 1, 1e9, &q.output_tokens))
        return CLI_USAGE;
    static const char *const degrees[] = {"tp", "pp", "ep"};
    int *deg[] = {&q.tp, &q.pp, &q.ep};
    for (int i = 0; i < 3; i++)
        if ((o = cli_find(opts, degrees[i]))->value && !cli_int(cmd, o, 1, 1000000, deg[i]))
            return CLI_USAGE;
    static const char *const dtypes[] = {"weights", "kv", "spec-draft-weights"};
    isim_dtype *dt[] = {&q.weights, &q.kv, &q.draft_weights};
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
        !cli_number(cmd, o, 1e-6, 1 - 1e-6, &q.spec_alpha))
        return CLI_USAGE;
    if ((o = cli_find(opts, "spec-gamma"))->value && !cli_int(cmd, o, 1, 64, &q.spec_gamma))
        return CLI_USAGE;
    if ((o = cli_find(opts, "spec-gamma-max"))->value && !cli_int(cmd, o, 1, 64, &q.spec_gamma_max))
        return CLI_USAGE;
    if ((o = cli_find(opts, "pp-schedule"))->value) {
        if (strcmp(o->value, isim_pp_schedule_name(ISIM_PP_STEPWISE)) == 0)
            q.pp_schedule = ISIM_PP_STEPWISE;
        else if (strcmp(o->value, isim_pp_schedule_name(ISIM_PP_INTERLEAVED)) != 0)
            return cli_usage_error(cmd, "--pp-schedule: expected interleaved or stepwise, got '%s'",
                                   o->value);
    }
    q.allow_cross_domain_tp = cli_find(opts, "allow-cross-domain-tp")->value != NULL;
    q.backend = cli_find(opts, "backend")->value;

    const char *dir = cli_data_dir(cli_find(opts, "data"));
    isim_model *m = NULL, *draft = NULL;
    isim_hw *hw = NULL;
    isim_error err = {0};
    isim_result r;
    rc = CLI_OK;
    if (isim_catalog_model(dir, cli_find(opts, "model")->value, &m, &err) ||
        isim_catalog_hw(dir, cli_find(opts, "hw")->value, &hw, &err) ||
        (spec && isim_catalog_model(dir, cli_find(opts, "spec-draft")->value, &draft, &err))) {
        rc = cli_error(&err);
        goto cleanup;
    }
    q.draft = draft;
    if (isim_predict(m, hw, &q, &r, &err)) {
        rc = cli_error(&err);
        goto cleanup;
    }
    if (cli_find(opts, "json")->value) {
        char *s = isim_report_predict_json(m, hw, &q, &r);
        if (!s) {
            fprintf(stderr, "infersim: error: out of memory\n");
            rc = CLI_FAIL;
            goto cleanup;
        }
        printf("%s\n", s);
        free(s);
    } else if (cli_find(opts, "csv")->value) {
        isim_report_predict_csv_header(stdout);
        isim_report_predict_csv_row(stdout, m, hw, &q, &r);
    } else {
        isim_report_predict_table(stdout, m, hw, &q, &r);
    }
cleanup:
    isim_model_free(m);
    isim_model_free(draft);
    isim_hw_free(hw);
    return rc;
}
