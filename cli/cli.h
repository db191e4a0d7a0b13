/* Shared pieces of the infersim command line: the option parser, strict number parsing and
 * the one place that turns failures into `infersim: error: ...` and an exit code
 * (0 ok, 1 failure, 2 usage; STYLE.md). */
#ifndef ISIM_CLI_H
#define ISIM_CLI_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>

#include "sim/serve.h"
#include "sim/sim.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* One --option. Options with has_value take "--name VALUE" or "--name=VALUE". */
typedef struct cli_opt {
    const char *name; /* without the dashes */
    bool has_value;
    const char *help;
    const char *value; /* parsed: the value, or "" for a flag; NULL if absent */
} cli_opt;

/* Parses argv[first..] into opts (NULL-name terminated) and up to max_pos positional
 * arguments. Prints the usage error itself; returns CLI_OK, or CLI_USAGE, or -1 when -h
 * or --help was given (the caller prints help and exits 0). */
int cli_parse(const char *cmd, int argc, char **argv, int first, cli_opt *opts, const char **pos,
              int max_pos, int *n_pos);
cli_opt *cli_find(cli_opt *opts, const char *name);
void cli_print_options(const cli_opt *opts);

/* Strict conversions of an option's value; print the usage error and return false. */
bool cli_number(const char *cmd, const cli_opt *o, double min, double max, double *out);
bool cli_int(const char *cmd, const cli_opt *o, long min, long max, int *out);
/* --fidelity paper|deploy, when given (out unchanged otherwise). */
bool cli_fidelity(const char *cmd, const cli_opt *o, isim_fidelity *out);

int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints an isim_error; returns CLI_USAGE for an unknown id, CLI_FAIL otherwise. */
int cli_error(const isim_error *e);

/* models/ and hw-profiles/ live under --data DIR, else $INFERSIM_DATA, else the
 * directory compiled in. */
const char *cli_data_dir(const cli_opt *data_opt);

/* Loads the scenario FILE (or the shipped scenario of that id) and runs it, with a
 * progress bar when stderr is a terminal; prints the error and returns its exit code. */
typedef struct isim_scenario_result isim_scenario_result;
int cli_run_scenario(const char *file, const char *data_dir, int threads, isim_scenario **sc,
                     isim_scenario_result **res);
/* mkdir -p; prints the error. */
int cli_mkdirs(const char *dir);
/* Makes and removes a file in dir (made first, as by mkdir -p, when `make`): a directory that
 * cannot take the outputs is refused before the work, with the system's reason. Prints the
 * error. */
int cli_writable_dir(const char *dir, bool make);
/* Refuses a file to be written (a profile, a plot) that names a directory, before the work;
 * prints the error. */
int cli_not_a_directory(const char *path);
/* o's value as a comma-separated list: *items (n of them) point into one allocation the
 * caller frees with free(*items). An empty item or one named twice is a usage error
 * (printed). */
int cli_list(const char *cmd, const cli_opt *o, char ***items, size_t *n);
/* a followed by b in a new string (NULL when out of memory); prints nothing. */
char *cli_concat(const char *a, const char *b);
/* Prints "out of memory" and returns CLI_FAIL. */
int cli_oom(void);

/* ---- other programs (spawn.c) ---- */
/* Whether `program` is an executable file in a folder of $PATH. */
bool cli_on_path(const char *program);
/* Runs argv (argv[0] found through $PATH; no shell) and reads its standard output, and its
 * standard error too when `with_stderr` (else that goes to /dev/null), at most `cap` bytes,
 * into *out (NUL-terminated; the caller frees it). *status gets its wait status. Returns 0,
 * or the errno value of what failed. */
int cli_capture(char *const argv[], bool with_stderr, size_t cap, char **out, int *status);

/* ---- what a killed command leaves (cleanup.c) ---- */
/* Blocks SIGINT, SIGTERM and SIGHUP in this thread and every thread it starts later, and
 * starts the one thread that takes them: it removes the guarded paths and lets the signal
 * end the process. Call before any other thread starts. Prints the error. */
int cli_cleanup_start(void);
/* Adds path (a file or a directory tree) to what a stop removes, or takes it off. At most 8
 * at once; prints the error. */
int cli_guard(const char *path);
void cli_unguard(const char *path);
/* rm -r, not following links. */
void cli_remove_tree(const char *path);
/* What commands killed outright left beside path: path.tmp-PID* is removed, and
 * path.old-PID* (the previous version, moved aside) put back when path is missing, else
 * removed; only for PIDs that no longer run. */
void cli_remove_stale(const char *path);
/* Writes path through `write` into a temporary file beside it, then renames it over path:
 * a failure leaves the previous file. Prints the error. */
int cli_write_file(const char *path, void (*write)(FILE *out, void *ctx), void *ctx);

/* cJSON documents the commands build themselves: cli_json_new starts one (a NULL
 * document when out of memory), and cli_json_print prints it on stdout and deletes it, or,
 * when cJSON could not allocate any part of it since cli_json_new (cli_main installs
 * hooks that notice), prints "out of memory" instead of a document with parts left out
 * and returns CLI_FAIL. */
cJSON *cli_json_new(void);
int cli_json_print(cJSON *doc);
/* Prints a document a report writer made (and frees it), or, for NULL (the writer ran out
 * of memory), says so and returns CLI_FAIL. */
int cli_print_doc(char *text);

/* The traffic options of predict and simulate, spliced into a command's options. */
#define CLI_TRAFFIC_OPTS                                                                           \
    {"rate", true, "traffic: requests per second arriving (open loop, Poisson by default)", NULL}, \
        {"concurrency", true,                                                                      \
         "traffic: clients each sending its next request when the last ends (closed loop; the "    \
         "first requests together)",                                                               \
         NULL},                                                                                    \
        {"requests", true,                                                                         \
         "requests simulated (default: 10 x --concurrency, or 1000 with --rate)", NULL},           \
        {"arrival", true, "open-loop gaps: poisson (default) or gamma (needs --arrival-cv)",       \
         NULL},                                                                                    \
        {"arrival-cv", true, "coefficient of variation of gamma gaps, (0, 10]", NULL},             \
        {"input-dist", true,                                                                       \
         "prompt lengths: uniform:MIN:MAX or lognormal:MEAN:CV (default: --input-tokens each)",    \
         NULL},                                                                                    \
        {"output-dist", true, "generated lengths, as --input-dist (default: --output-tokens)",     \
         NULL},                                                                                    \
        {"trace", true,                                                                            \
         "traffic: the requests of a CSV file, columns arrival_s, input_tokens and "               \
         "output_tokens (docs/formats.md)",                                                        \
         NULL},                                                                                    \
        {"seed", true, "seed of the arrivals and lengths (default 1)", NULL},                      \
        {"token-budget", true,                                                                     \
         "tokens per pass per data-parallel group (default: the profile's prefill chunk)", NULL},  \
        {"kv-block", true, "KV cache block, tokens (default 16)", NULL},                           \
        {"policy", true,                                                                           \
         "scheduler: vllm (default), sglang or trtllm (docs/serving.md, \"Policies\")", NULL},     \
    {                                                                                              \
        "kv-tokens", true,                                                                         \
            "KV cache per data-parallel group, tokens (default: what the memory model leaves)",    \
            NULL                                                                                   \
    }
/* Reads the traffic options into t and s (s->max_seqs = max_seqs), the lengths fixed at q's
 * tokens unless a distribution is given; *given says whether --rate, --concurrency or
 * --trace was. A trace is only named here (t->kind ISIM_ARRIVE_TRACE): cli_traffic_trace
 * reads it. Prints the usage error and returns CLI_USAGE. */
int cli_traffic(const char *cmd, cli_opt *opts, const isim_query *q, double max_seqs,
                isim_traffic *t, isim_sched *s, bool *given);
/* For a trace, reads --trace FILE into *tr (the caller frees it with isim_trace_free) and
 * t's requests, and sets q's lengths not given to the trace's means (rounded), for the
 * figures of a request alone; *tr is NULL for other traffic. Prints the error and returns
 * its exit status. */
int cli_traffic_trace(cli_opt *opts, isim_traffic *t, isim_query *q, isim_trace **tr);

/* --plot FILE: checks, before the work, that FILE names a .png or .svg in a directory that
 * takes a file; its temporary (FILE.tmp-PID.EXT, reports/report.h) is guarded until the plot
 * is in place. cli_plot_done removes what a failed drawing left, unguards and frees it. */
int cli_plot_target(const char *cmd, const char *plot, char **tmp);
void cli_plot_done(char *tmp);

/* The whole command line: runs the command argv[1] names; returns the exit status. */
int cli_main(int argc, char **argv);

int cmd_plan(int argc, char **argv);
int cmd_scenario(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_simulate(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_validate(int argc, char **argv);

#endif
