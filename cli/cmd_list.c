/* infersim list models|hardware|scenarios: the catalog, one line per entry. */
#include "cli/cli.h"
#include "reports/report.h"

#include <stdio.h>
#include <string.h>

/* The shipped scenarios: id and name. */
static int list_scenarios(const char *dir)
{
    char **ids = NULL;
    isim_error err = {0};
    if (isim_catalog_list(dir, "scenarios", &ids, &err))
        return cli_error(&err);
    int rc = CLI_OK;
    printf("%-24s %s\n", "id", "name");
    for (char **id = ids; *id; id++) {
        char path[1200];
        isim_scenario *s = NULL;
        if (isim_catalog_path(dir, "scenario", *id, path, sizeof path, &err) ||
            isim_scenario_load(path, &s, &err)) {
            fflush(stdout);
            cli_error(&err);
            rc = CLI_FAIL;
            continue;
        }
        printf("%-24s %s\n", *id, s->name);
        isim_scenario_free(s);
    }
    isim_ids_free(ids);
    return rc;
}

int cmd_list(int argc, char **argv)
{
    const char *cmd = "list";
    cli_opt opts[] = {
        {"data", true, "directory holding models/, hw-profiles/ and scenarios/", NULL},
        {NULL, false, NULL, NULL}};
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(cmd, argc, argv, 2, opts, pos, 1, &n_pos);
    if (rc < 0) {
        printf("usage: infersim list models|hardware|scenarios [--data DIR]\n\n"
               "Lists the catalog with key figures. A file that does not load is reported with\n"
               "its file:line:col and the command exits 1 after listing the rest.\n\noptions:\n");
        cli_print_options(opts);
        return CLI_OK;
    }
    if (rc)
        return rc;
    if (n_pos != 1)
        return cli_usage_error(cmd, "expected 'models', 'hardware' or 'scenarios'");
    bool models = strcmp(pos[0], "models") == 0;
    if (strcmp(pos[0], "scenarios") == 0)
        return list_scenarios(cli_data_dir(cli_find(opts, "data")));
    if (!models && strcmp(pos[0], "hardware") != 0 && strcmp(pos[0], "hw") != 0)
        return cli_usage_error(cmd, "expected 'models', 'hardware' or 'scenarios', got '%s'",
                               pos[0]);
    const char *dir = cli_data_dir(cli_find(opts, "data"));
    char **ids = NULL;
    isim_error err = {0};
    if (isim_catalog_list(dir, models ? "models" : "hw-profiles", &ids, &err))
        return cli_error(&err);
    if (models)
        isim_report_model_line(stdout, NULL, true);
    else
        isim_report_hw_line(stdout, NULL, true);
    for (char **id = ids; *id; id++) {
        if (models) {
            isim_model *m = NULL;
            if (isim_catalog_model(dir, *id, &m, &err)) {
                fflush(stdout);
                cli_error(&err);
                rc = CLI_FAIL;
                continue;
            }
            isim_report_model_line(stdout, m, false);
            isim_model_free(m);
        } else {
            isim_hw *h = NULL;
            if (isim_catalog_hw(dir, *id, &h, &err)) {
                fflush(stdout);
                cli_error(&err);
                rc = CLI_FAIL;
                continue;
            }
            isim_report_hw_line(stdout, h, false);
            isim_hw_free(h);
        }
    }
    isim_ids_free(ids);
    return rc;
}
