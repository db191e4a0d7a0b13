/* infersim: the command table. Each subcommand lives in cli/cmd_<name>.c and uses only
 * the public headers (sim/sim.h, reports/report.h). cli/infersim.c's main() calls cli_main;
 * the CLI's fuzz target calls it with argv made of bytes. */
#include "cli/cli.h"

#include <gsl/gsl_errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"plan", cmd_plan, "the speed-cost frontier and the recommended configuration"},
    {"predict", cmd_predict, "time, cost and memory of one serving configuration"},
    {"simulate", cmd_simulate,
     "one configuration serving requests under traffic, request by request"},
    {"scenario", cmd_scenario, "run a what-if scenario: sweeps, cost models, sensitivity"},
    {"report", cmd_report, "a scenario's procurement report: HTML and Markdown with figures"},
    {"run", cmd_run, "run a model on this machine's CPUs and measure it (--engine cpu)"},
    {"calibrate", cmd_calibrate, "measure this machine and write its hardware profile (local-cpu)"},
    {"validate", cmd_validate, "predictions against the engine or measured serving data"},
    {"list", cmd_list, "list the models, hardware profiles or scenarios in the catalog"},
    {"show", cmd_show, "show a model or hardware profile with its derived numbers and sources"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: infersim COMMAND [OPTIONS]\n\n"
                 "infersim predicts what serving a language model costs and how fast it runs.\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\n'infersim COMMAND --help' describes a command. --version prints the version.\n");
}

/* set when cJSON's allocator returned NULL since cli_json_new */
static bool json_lost;

static void *json_malloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        json_lost = true;
    return p;
}

static void json_free(void *p)
{
    free(p);
}

cJSON *cli_json_new(void)
{
    json_lost = false;
    return cJSON_CreateObject();
}

int cli_print_doc(char *text)
{
    if (!text) {
        fprintf(stderr, "infersim: error: out of memory\n");
        return CLI_FAIL;
    }
    printf("%s\n", text);
    free(text);
    return CLI_OK;
}

int cli_json_print(cJSON *doc)
{
    char *text = doc && !json_lost ? cJSON_Print(doc) : NULL;
    cJSON_Delete(doc);
    return cli_print_doc(text);
}

int cli_main(int argc, char **argv)
{
    /* cJSON's allocations go through json_malloc, which notices a failure */
    cJSON_Hooks hooks = {json_malloc, json_free};
    cJSON_InitHooks(&hooks);
    /* GSL's default handler aborts; the library and CLI check every status instead. */
    gsl_set_error_handler_off();
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0 && argc > 2) {
        fprintf(stderr, "infersim: error: --version takes no argument, got '%s'\n", argv[2]);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("infersim %s\n", ISIM_VERSION);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc, argv);
    const char *near = NULL;
    size_t best = 3; /* a command two edits away is a slip of the keyboard */
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        size_t d = isim_edit_distance(argv[1], commands[i].name);
        if (d < best) {
            best = d;
            near = commands[i].name;
        }
    }
    if (near)
        fprintf(stderr, "infersim: error: unknown command '%s' (did you mean '%s'?)\n", argv[1],
                near);
    else
        fprintf(stderr, "infersim: error: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
