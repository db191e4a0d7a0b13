/* infersim scenario run FILE: a what-if scenario's base point and sweep points, planned
 * (docs/scenarios.md); a summary on stdout, the results as CSV and JSON with --out. */
#include "cli/cli.h"
#include "reports/report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(const cli_opt *opts)
{
    printf("usage: infersim scenario run FILE|ID [OPTIONS]\n\n"
           "Runs a what-if scenario (scenarios/*.yaml; an ID names a shipped one): the base\n"
           "point as written and every point of its sweeps, each planned per model under its\n"
           "cost model, and the sensitivity of the recommended configuration. Prints a\n"
           "summary; --out DIR also writes DIR/results.csv and DIR/results.json.\n\n"
           "options:\n");
    cli_print_options(opts);
}

static void write_csv(FILE *out, void *ctx)
{
    isim_report_scenario_csv(out, ctx);
}

typedef struct {
    const char *text;
} text_ctx;

static void write_text(FILE *out, void *ctx)
{
    fputs(((text_ctx *)ctx)->text, out);
    fputc('\n', out);
}

int cmd_scenario(int argc, char **argv)
{
    const char *cmd = "scenario";
    cli_opt opts[] = {
        {"out", true, "also write DIR/results.csv and DIR/results.json (-o DIR)", NULL},
        {"json", false, "print the JSON document instead of the summary", NULL},
        {"no-elapsed", false, "leave elapsed_ms out of the JSON (byte-identical runs)", NULL},
        {"threads", true, "points run in parallel (default: one per CPU)", NULL},
        {"data", true, "directory holding models/, hw-profiles/ and scenarios/", NULL},
        {NULL, false, NULL, NULL}};
    const char *pos[2];
    int n_pos = 0, rc = cli_parse(cmd, argc, argv, 2, opts, pos, 2, &n_pos);
    if (rc < 0) {
        help(opts);
        return CLI_OK;
    }
    if (rc)
        return rc;
    if (n_pos < 1)
        return cli_usage_error(cmd, "expected 'run FILE'");
    if (strcmp(pos[0], "run") != 0)
        return cli_usage_error(cmd, "expected 'run FILE', got '%s'", pos[0]);
    if (n_pos < 2)
        return cli_usage_error(cmd, "missing the scenario FILE");
    int threads = 0;
    const cli_opt *o = cli_find(opts, "threads");
    if (o->value && !cli_int(cmd, o, 1, 64, &threads))
        return CLI_USAGE;
    const char *dir = cli_find(opts, "out")->value;
    if ((rc = cli_cleanup_start()) || (dir && (rc = cli_writable_dir(dir, true))))
        return rc;
    isim_scenario *sc = NULL;
    isim_scenario_result *res = NULL;
    if ((rc = cli_run_scenario(pos[1], cli_data_dir(cli_find(opts, "data")), threads, &sc, &res)))
        return rc;
    bool timing = !cli_find(opts, "no-elapsed")->value;
    char *json = isim_report_scenario_json(res, timing);
    if (!json) {
        fprintf(stderr, "infersim: error: out of memory\n");
        rc = CLI_FAIL;
        goto cleanup;
    }
    if (dir) {
        text_ctx t = {json};
        char *csv = cli_concat(dir, "/results.csv"), *js = cli_concat(dir, "/results.json");
        rc = !csv || !js ? cli_oom() : cli_write_file(csv, write_csv, res);
        if (!rc)
            rc = cli_write_file(js, write_text, &t);
        free(csv);
        free(js);
        if (rc)
            goto cleanup;
    }
    if (cli_find(opts, "json")->value)
        printf("%s\n", json);
    else
        isim_report_scenario_table(stdout, res, true);
    if (dir && !cli_find(opts, "json")->value)
        printf("results: %s/results.csv, %s/results.json\n", dir, dir);
cleanup:
    free(json);
    isim_scenario_result_free(res);
    isim_scenario_free(sc);
    return rc;
}
