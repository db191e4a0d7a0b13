/* Every numeric option's limits (docs/limits.md): the largest value is taken, the next one
 * refused with the option, the value and the range. The commands are made to stop right
 * after their options are read (an unknown model, a missing scenario or data directory), so
 * that taking the largest value costs nothing. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"

typedef struct {
    const char *args; /* with {} where the value goes */
    const char *max, *past;
    const char *range; /* as the message prints it */
} option_case;

#define PREDICT                                                                                    \
    "predict --model no-such-model --hw l4 --devices 1 --batch 1 --input-tokens 1 "                \
    "--output-tokens 1 "
#define PLAN "plan --model no-such-model --hw l4 "
#define RUN "run --engine cpu --model stories260k --input-tokens 4 --output-tokens 2 "

static const option_case CASES[] = {
    {"predict --model no-such-model --hw l4 --batch 1 --input-tokens 1 --output-tokens 1 "
     "--devices {}",
     "1e7", "10000001", "[1, 1e+07]"},
    {"predict --model no-such-model --hw l4 --devices 1 --input-tokens 1 --output-tokens 1 "
     "--batch {}",
     "1e9", "1000000001", "[1, 1e+09]"},
    {"predict --model no-such-model --hw l4 --devices 1 --batch 1 --output-tokens 1 "
     "--input-tokens {}",
     "1e9", "1000000001", "[0, 1e+09]"},
    {"predict --model no-such-model --hw l4 --devices 1 --batch 1 --input-tokens 1 "
     "--output-tokens {}",
     "1e9", "1000000001", "[1, 1e+09]"},
    {PREDICT "--rate {}", "1000000", "1000001", "[1e-06, 1e+06]"},
    {PREDICT "--rate {}", "0.000001", "0.0000009", "[1e-06, 1e+06]"},
    {PREDICT "--rate 1 --requests {}", "10000000", "10000001", "[1, 10000000]"},
    {PREDICT "--concurrency {}", "10000000", "10000001", "[1, 10000000]"},
    {PREDICT "--rate 1 --arrival gamma --arrival-cv {}", "10", "10.001", "[0.001, 10]"},
    {PREDICT "--rate 1 --token-budget {}", "10000000", "10000001", "[1, 10000000]"},
    {PREDICT "--rate 1 --kv-block {}", "65536", "65537", "[1, 65536]"},
    {PREDICT "--rate 1 --kv-tokens {}", "1000000000000", "1000000000001", "[1, 1e+12]"},
    {PREDICT "--rate 1 --seed {}", "2147483647", "2147483648", "[0, 2147483647]"},
    {PREDICT "--prefix-hit {}", "0.999999", "1", "[0, 0.999999]"},
    {PREDICT "--rate 1 --ttft-slo {}", "1000000000", "1000000001", "[1e-06, 1e+09]"},
    {PREDICT "--rate 1 --tpot-slo {}", "0.000001", "0.0000009", "[1e-06, 1e+09]"},
    {PREDICT "--tp {}", "1000000", "1000001", "[1, 1000000]"},
    {PREDICT "--pp {}", "1000000", "1000001", "[1, 1000000]"},
    {PREDICT "--ep {}", "1000000", "1000001", "[1, 1000000]"},
    {PREDICT "--spec-draft llama-3.2-1b --spec-gamma {}", "64", "65", "[1, 64]"},
    {PREDICT "--spec-draft llama-3.2-1b --spec-gamma-max {}", "64", "65", "[1, 64]"},
    {PREDICT "--spec-draft llama-3.2-1b --spec-alpha {}", "0.999999", "0.9999991",
     "[1e-06, 0.999999]"},
    {PLAN "--input-tokens {}", "1e9", "1000000001", "[0, 1e+09]"},
    {PLAN "--output-tokens {}", "1e9", "1000000001", "[1, 1e+09]"},
    {PLAN "--min-speed {}", "1e9", "1000000001", "[1e-06, 1e+09]"},
    {PLAN "--max-cost {}", "1e12", "1000000000001", "[1e-09, 1e+12]"},
    {PLAN "--demand {}", "1e15", "1000000000000001", "[1e-06, 1e+15]"},
    {PLAN "--ttft-slo {}", "1e9", "1000000001", "[1e-06, 1e+09]"},
    {PLAN "--tpot-slo {}", "1e9", "1000000001", "[1e-06, 1e+09]"},
    {PLAN "--alpha {}", "100", "100.000001", "[1e-06, 100]"},
    {PLAN "--max-devices {}", "100000", "100001", "[1, 100000]"},
    {PLAN "--grid {}", "4000", "4001", "[2, 4000]"},
    {PLAN "--threads {}", "64", "65", "[1, 64]"},
    {PLAN "--spec-draft llama-3.2-1b --spec-gamma-max {}", "64", "65", "[1, 64]"},
    {"scenario run no-such-scenario --threads {}", "64", "65", "[1, 64]"},
    {"report no-such-scenario -o x --threads {}", "64", "65", "[1, 64]"},
    {"calibrate --engine cpu --data /no-such-data --runs {}", "64", "65", "[3, 64]"},
    {"calibrate --engine cpu --data /no-such-data --threads {}", "256", "257", "[1, 256]"},
    {"calibrate --engine cpu --data /no-such-data --usd-per-h {}", "1000", "1000.01",
     "[0.001, 1000]"},
    {"validate --engine cpu --data /no-such-data -o /tmp --steps {}", "1000", "1001", "[3, 1000]"},
    {"validate --engine cpu --data /no-such-data -o /tmp --rounds {}", "100", "101", "[1, 100]"},
    {"validate --engine cpu --data /no-such-data -o /tmp --runs {}", "100", "101", "[1, 100]"},
    {"validate --engine cpu --data /no-such-data -o /tmp --threads {}", "4096", "4097",
     "[1, 4096]"},
    {"validate --dataset /no-such.csv --threads {}", "4096", "4097", "[1, 4096]"},
    {RUN "--batch {}", "1048576", "1048577", "[1, 1048576]"},
    {"run --engine cpu --model stories260k --input-tokens 4 --output-tokens {}", "16777216",
     "16777217", "[1, 16777216]"},
    {"run --engine cpu --model stories260k --output-tokens 2 --input-tokens {}", "16777216",
     "16777217", "[1, 16777216]"},
    {RUN "--tp {}", "4096", "4097", "[1, 4096]"},
    {RUN "--pp {}", "4096", "4097", "[1, 4096]"},
    {RUN "--chunk {}", "1048576", "1048577", "[1, 1048576]"},
    {RUN "--micro-batches {}", "1048576", "1048577", "[1, 1048576]"},
};

/* args with {} replaced by v (malloc'd). */
static char *with(const char *args, const char *v)
{
    const char *at = strstr(args, "{}");
    cr_assert(at);
    char *s = malloc(strlen(args) + strlen(v) + 1);
    sprintf(s, "%.*s%s%s", (int)(at - args), args, v, at + 2);
    return s;
}

Test(limits, every_numeric_option_takes_its_largest_value_and_refuses_the_next)
{
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        const option_case *c = &CASES[i];
        char *args = with(c->args, c->max), *err = NULL;
        tu_run(args, NULL, &err);
        cr_expect_null(strstr(err, "out of range"), "%s: %s", args, err);
        free(err);
        free(args);
        args = with(c->args, c->past);
        const char *opt = strstr(c->args, " --");
        while (strstr(opt + 1, " --") && strstr(opt + 1, " --") < strstr(c->args, "{}"))
            opt = strstr(opt + 1, " --");
        char want[256];
        snprintf(want, sizeof want, "%.*s: %s is out of range %s",
                 (int)(strstr(c->args, " {}") - opt - 1), opt + 1, c->past, c->range);
        cr_expect_eq(tu_run(args, NULL, &err), 2, "%s: %s", args, err);
        cr_expect(strstr(err, want), "%s: want '%s', got: %s", args, want, err);
        free(err);
        free(args);
    }
}

Test(limits, a_catalog_path_longer_than_1023_bytes_is_refused_naming_the_limit)
{
    /* a data directory whose models/<id>.yaml takes 1024 bytes */
    char dir[1100] = "/tmp/";
    size_t n = strlen(dir);
    while (n < 1024 - strlen("/models/llama-3.1-8b.yaml"))
        dir[n++] = 'd';
    dir[n] = '\0';
    char args[1400], *err = NULL;
    snprintf(args, sizeof args, "show model llama-3.1-8b --data '%s'", dir);
    cr_expect_eq(tu_run(args, NULL, &err), 2);
    /* the message is longer than an error holds: its start and its end, the limit named */
    const char *start = "infersim: error: the path of model 'llama-3.1-8b' under data "
                        "directory '/tmp/ddd";
    cr_expect(strncmp(err, start, strlen(start)) == 0, "%s", err);
    cr_expect(strstr(err, "ddd ... ddd"), "%s", err);
    const char *end = "ddd' is longer than 1023 bytes\n";
    cr_expect_str_eq(err + strlen(err) - strlen(end), end);
    free(err);
}
