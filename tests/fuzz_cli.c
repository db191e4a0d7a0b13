/* libFuzzer target: the command line. The input's lines are the arguments after
 * `infersim` (at most 32, each at most 4 KiB), run by cli_main in this process: predict,
 * plan, simulate, show, list and whatever else argv[1] says, except the commands that write files
 * or start processes (report, scenario, run, calibrate, validate). Every argument vector must end
 * in an exit status (0, 1 or 2) and a message, never a crash, a leak, a hang or a read out of
 * bounds. Options that write (--plot, -o) or read elsewhere (--data; --trace, whose files
 * tests/fuzz_trace.c reads) are left out, and so is work that takes seconds by design (the paper
 * grid's --grid, --hw all, more than 256 devices, plan's SLOs at a percentile, traffic of
 * more than 200 requests or long lengths): a plan of the whole catalog is not a parser's
 * concern. tests/fuzz.sh 60 fuzz_cli */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_errno.h>

#include "cli/cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 32
#define MAX_ARG 4096

/* Whether the arguments ask for something the harness leaves out. */
static bool left_out(char **argv, int argc)
{
    static const char *const writers[] = {"report", "scenario", "run", "calibrate", "validate"};
    for (size_t i = 0; argc > 1 && i < sizeof writers / sizeof writers[0]; i++)
        if (strcmp(argv[1], writers[i]) == 0)
            return true;
    bool plan = argc > 1 && strcmp(argv[1], "plan") == 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : "";
        /* the paper fidelity's grid search runs a hundred times slower under the fuzzer's
         * instrumentation (0.05 s becomes 7 s), on threads that libFuzzer's timer cannot
         * stop */
        if (plan && (strcmp(a, "paper") == 0 || strcmp(a, "--fidelity=paper") == 0))
            return true;
        /* --slo-percentile: plan simulates every configuration that can reach the frontier,
         * seconds by design */
        static const char *const options[] = {"--plot", "--data",  "--out",
                                              "--grid", "--trace", "--slo-percentile"};
        for (size_t k = 0; k < sizeof options / sizeof options[0]; k++)
            if (strncmp(a, options[k], strlen(options[k])) == 0)
                return true;
        if (strcmp(a, "-o") == 0 || strcmp(a, "--hw=all") == 0 ||
            (strcmp(a, "--hw") == 0 && strcmp(next, "all") == 0))
            return true;
        if (strncmp(a, "--max-devices", 13) == 0) {
            const char *v = a[13] == '=' ? a + 14 : next;
            if (strtod(v, NULL) > 256)
                return true;
        }
        /* traffic: a simulation of many requests or long outputs takes seconds by design */
        static const struct {
            const char *name;
            double most;
        } sized[] = {{"--requests", 200},    {"--output-tokens", 1024}, {"--input-tokens", 32768},
                     {"--concurrency", 200}, {"--input-dist", 0},       {"--output-dist", 0}};
        for (size_t k = 0; k < sizeof sized / sizeof sized[0]; k++) {
            size_t n = strlen(sized[k].name);
            if (strncmp(a, sized[k].name, n) != 0 || (a[n] != '=' && a[n] != '\0'))
                continue;
            const char *v = a[n] == '=' ? a + n + 1 : next;
            if (sized[k].most == 0) { /* a distribution: every number of it small */
                for (const char *c = strchr(v, ':'); c; c = strchr(c + 1, ':'))
                    if (strtod(c + 1, NULL) > 1024)
                        return true;
            } else if (strtod(v, NULL) > sized[k].most) {
                return true;
            }
        }
    }
    /* traffic without a small --requests simulates 1000 requests or ten per client */
    bool traffic = argc > 1 && strcmp(argv[1], "simulate") == 0, counted = false;
    for (int i = 2; i < argc; i++) {
        traffic |= strncmp(argv[i], "--rate", 6) == 0 || strncmp(argv[i], "--concurrency", 13) == 0;
        counted |= strncmp(argv[i], "--requests", 10) == 0;
    }
    return traffic && !counted;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        gsl_set_error_handler_off();
        setenv("INFERSIM_DATA", ISIM_DATA_DIR, 1);
        ready = true;
    }
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *argv[MAX_ARGS + 2] = {"infersim"};
    int argc = 1;
    for (char *line = text, *end; line && argc <= MAX_ARGS; line = end ? end + 1 : NULL) {
        end = strchr(line, '\n');
        if (end)
            *end = '\0';
        if (strlen(line) > MAX_ARG) {
            argc = 0;
            break;
        }
        argv[argc++] = line;
        if (!end)
            break;
    }
    argv[argc > 0 ? argc : 0] = NULL;
    if (argc > 0 && !left_out(argv, argc)) {
        int rc = cli_main(argc, argv);
        if (rc < 0 || rc > 2)
            abort(); /* an exit status the docs do not describe */
        fflush(stdout);
    }
    free(text);
    return 0;
}
