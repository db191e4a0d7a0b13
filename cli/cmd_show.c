/* infersim show model ID | show hw ID: a specification with its derived numbers and the
 * source of every number. */
#include "cli/cli.h"
#include "reports/report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_show(int argc, char **argv)
{
    const char *cmd = "show";
    cli_opt opts[] = {{"json", false, "print JSON", NULL},
                      {"data", true, "directory holding models/ and hw-profiles/", NULL},
                      {NULL, false, NULL, NULL}};
    const char *pos[2];
    int n_pos = 0;
    int rc = cli_parse(cmd, argc, argv, 2, opts, pos, 2, &n_pos);
    if (rc < 0) {
        printf("usage: infersim show model ID | infersim show hw ID [--json]\n\n"
               "Shows a model (derived parameters, KV-cache bytes and FLOPs per token) or a\n"
               "hardware profile, and every number of its file with its source.\n\noptions:\n");
        cli_print_options(opts);
        return CLI_OK;
    }
    if (rc)
        return rc;
    if (n_pos != 2)
        return cli_usage_error(cmd, "expected 'model ID' or 'hw ID'");
    bool model = strcmp(pos[0], "model") == 0;
    if (!model && strcmp(pos[0], "hw") != 0 && strcmp(pos[0], "hardware") != 0)
        return cli_usage_error(cmd, "expected 'model' or 'hw', got '%s'", pos[0]);
    const char *dir = cli_data_dir(cli_find(opts, "data"));
    bool json = cli_find(opts, "json")->value != NULL;
    isim_error err = {0};
    char *s = NULL;
    if (model) {
        isim_model *m = NULL;
        if (isim_catalog_model(dir, pos[1], &m, &err))
            return cli_error(&err);
        if (json)
            s = isim_report_model_json(m);
        else
            isim_report_model_table(stdout, m);
        isim_model_free(m);
    } else {
        isim_hw *h = NULL;
        if (isim_catalog_hw(dir, pos[1], &h, &err))
            return cli_error(&err);
        if (json)
            s = isim_report_hw_json(h);
        else
            isim_report_hw_table(stdout, h);
        isim_hw_free(h);
    }
    return json ? cli_print_doc(s) : CLI_OK;
}
