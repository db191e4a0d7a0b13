/* Scenario files: their settings, sources and sweeps, and every way one can be wrong,
 * refused with the exact message, line and column before any work starts. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"

/* clang-format off */
static const char *const BASE =
    "name: Test scenario\n"              /* 1 */
    "models: [llama-3.1-8b]\n"           /* 2 */
    "hardware: [h100-sxm, l4]\n"         /* 3 */
    "workload:\n"                        /* 4 */
    "  input_tokens: 32Ki\n"             /* 5 */
    "  output_tokens: 1.5k\n"            /* 6 */
    "  concurrency: 256\n"               /* 7 */
    "slo:\n"                             /* 8 */
    "  tpot_ms: 40\n"                    /* 9 */
    "cost:\n"                            /* 10 */
    "  model: owned\n"                   /* 11 */
    "  pue: {value: 1.2, source: \"our hall\"}\n" /* 12 */
    "sweeps:\n"                          /* 13 */
    "  - path: workload.input_tokens\n"  /* 14 */
    "    values: [1k, 8k, x4]\n"         /* 15 */
    "  - path: hw.*.memory.bandwidth_gbps\n" /* 16 */
    "    values: [x0.5, x1, x2]\n"       /* 17 */
    "    lockstep: memory\n"             /* 18 */
    "  - path: slo.tpot_ms\n"            /* 19 */
    "    values: [20, 40, 80]\n"         /* 20 */
    "    lockstep: memory\n";            /* 21 */
/* clang-format on */

static isim_scenario *load_text(const char *text, isim_error *e)
{
    char *path = tu_write("scn.yaml", text);
    isim_scenario *s = NULL;
    isim_status st = isim_scenario_load(path, &s, e);
    tu_discard(path);
    return st ? NULL : s;
}

Test(scenario, settings_sweeps_and_sources_load)
{
    isim_error e = {0};
    isim_scenario *s = load_text(BASE, &e);
    cr_assert_not_null(s, "%s", e.message);
    cr_expect_str_eq(s->name, "Test scenario");
    cr_expect_eq(s->fidelity, ISIM_DEPLOY);
    cr_assert_eq(s->n_models, 1u);
    cr_expect_str_eq(s->models[0].text, "llama-3.1-8b");
    cr_expect_eq(s->models[0].line, 2);
    cr_assert_eq(s->n_hw, 2u);
    cr_expect_str_eq(s->hw[1].text, "l4");
    cr_expect_eq(s->hw[1].column, 22);
    const isim_scenario_settings *v = &s->settings;
    cr_expect(tu_close(v->input_tokens, 32768, 1e-15));
    cr_expect(tu_close(v->output_tokens, 1500, 1e-15));
    cr_expect(tu_close(v->concurrency, 256, 1e-15));
    cr_expect(tu_close(v->tpot_ms, 40, 1e-15));
    cr_expect_eq(v->cost_model, ISIM_COST_OWNED);
    cr_expect(tu_close(v->pue, 1.2, 1e-15));
    /* defaults of what the file leaves out */
    cr_expect(tu_close(v->spec_alpha, 0.8, 1e-15));
    cr_expect(tu_close(v->customer_alpha, 3, 1e-15));
    cr_expect(tu_close(v->percentile, 50, 1e-15));
    cr_expect_eq(s->max_points, 10000u);
    cr_assert_eq(s->n_sweeps, 3u);
    cr_expect_str_eq(s->sweeps[1].path, "hw.*.memory.bandwidth_gbps");
    cr_expect_str_eq(s->sweeps[1].lockstep, "memory");
    cr_expect_null(s->sweeps[0].lockstep);
    cr_expect_str_eq(s->sweeps[0].values[2].text, "x4");
    cr_expect_eq(s->sweeps[0].values[2].line, 15);
    cr_expect_eq(s->sweeps[0].values[2].column, 22);
    /* a number with its own source keeps it; the others cite the scenario */
    bool pue = false, input = false;
    for (size_t i = 0; i < s->n_facts; i++) {
        if (strcmp(s->facts[i].path, "cost.pue") == 0) {
            cr_expect_str_eq(s->facts[i].source, "our hall");
            pue = true;
        }
        if (strcmp(s->facts[i].path, "workload.input_tokens") == 0) {
            cr_expect(strncmp(s->facts[i].source, "scenario ", 9) == 0, "%s", s->facts[i].source);
            cr_expect_eq(s->facts[i].line, 5);
            input = true;
        }
    }
    cr_expect(pue && input);
    isim_scenario_free(s);
}

Test(scenario, settings_are_set_by_path_with_the_files_checks)
{
    isim_error e = {0};
    isim_scenario *s = load_text(BASE, &e);
    cr_assert_not_null(s, "%s", e.message);
    isim_scenario_settings v = s->settings;
    cr_assert_eq(isim_scenario_set(&v, "workload.input_tokens", "x0.25", "f", 1, 1, &e), ISIM_OK);
    cr_expect(tu_close(v.input_tokens, 8192, 1e-15));
    cr_expect(tu_close(isim_scenario_get(&v, "workload.input_tokens"), 8192, 1e-15));
    cr_assert_eq(isim_scenario_set(&v, "cost.model", "cloud", "f", 1, 1, &e), ISIM_OK);
    cr_expect_eq(v.cost_model, ISIM_COST_CLOUD);
    cr_expect(isim_scenario_is_setting("slo.ttft_ms"));
    cr_expect(!isim_scenario_is_setting("hw.h100-sxm.memory.capacity_gb"));
    cr_expect(isnan(isim_scenario_get(&v, "slo.ttft")));
    cr_expect_eq(isim_scenario_set(&v, "slo.ttft", "3", "f.yaml", 7, 9, &e), ISIM_ESCHEMA);
    char buf[1600];
    isim_error_format(&e, buf, sizeof buf);
    cr_expect(strncmp(buf, "f.yaml:7:9: unknown setting 'slo.ttft' (expected one of: ", 57) == 0,
              "%s", buf);
    isim_scenario_free(s);
}

static void expect_refused(const char *from, const char *to, const char *want)
{
    char *text = tu_replace(BASE, from, to);
    isim_error e = {0};
    isim_scenario *s = load_text(text, &e);
    cr_expect_null(s, "accepted: %s", to);
    isim_scenario_free(s);
    char buf[1600];
    isim_error_format(&e, buf, sizeof buf);
    const char *msg = strstr(buf, "scn.yaml:");
    cr_expect(msg && strncmp(msg, want, strlen(want)) == 0, "\n got: %s\nwant: %s", msg, want);
    free(text);
}

/* Each case edits one line and names the message with its line and column: the value's
 * place where a value is wrong. */
Test(scenario, bad_scenarios_are_refused_where_they_are_wrong)
{
    expect_refused("  input_tokens: 32Ki\n", "  input: 32Ki\n",
                   "scn.yaml:5:3: unknown key 'input' in 'workload' (expected: input_tokens, "
                   "output_tokens, request_rate_per_s, concurrency, prefix_cache_hit_rate)");
    expect_refused("  input_tokens: 32Ki\n", "  input_tokens: lots\n",
                   "scn.yaml:5:17: 'workload.input_tokens' must be a number of tokens (8k, 32Ki, "
                   "1M), got 'lots'");
    expect_refused("  input_tokens: 32Ki\n", "  input_tokens: x2\n",
                   "scn.yaml:5:17: 'workload.input_tokens': a multiplier needs a base value; "
                   "write the number itself");
    expect_refused("  concurrency: 256\n", "  concurrency: 2.5\n",
                   "scn.yaml:7:16: 'workload.concurrency' must be a whole number, got 2.5");
    expect_refused("  tpot_ms: 40\n", "  tpot_ms: 40\n  min_tokens_per_s_per_user: 30\n",
                   "scn.yaml:10:30: contradictory SLOs: a TPOT of 40 ms allows at most 25 "
                   "tokens/s per user, below the minimum of 30");
    expect_refused("  concurrency: 256\n", "  concurrency: 256\n  request_rate_per_s: 3\n",
                   "scn.yaml:7:16: give the workload as request_rate_per_s or as concurrency, "
                   "not both");
    expect_refused("  model: owned\n", "  model: leased\n",
                   "scn.yaml:11:10: 'cost.model' must be cloud or owned, got 'leased'");
    expect_refused("  - path: workload.input_tokens\n", "  - path: workload.inputs\n",
                   "scn.yaml:14:11: unknown path 'workload.inputs' (expected one of: "
                   "workload.input_tokens, ");
    expect_refused("  - path: hw.*.memory.bandwidth_gbps\n", "  - path: hw.h100-sxm\n",
                   "scn.yaml:16:11: unknown path 'hw.h100-sxm'");
    expect_refused("    values: [1k, 8k, x4]\n", "    values: [1k, 8k, x0]\n",
                   "scn.yaml:15:22: 'workload.input_tokens': a multiplier is x and a positive "
                   "number, got 'x0'");
    expect_refused("    values: [20, 40, 80]\n", "    values: [20, 40, 80, 160]\n",
                   "scn.yaml:19:5: sweeps in lockstep 'memory' need as many values each: 4 "
                   "here, 3 at line 16");
    expect_refused("    values: [20, 40, 80]\n", "    values: [20, 40, 9e9]\n",
                   "scn.yaml:20:22: 'slo.tpot_ms' = 9e+09 is out of range [0, 1e+09]");
    expect_refused("  model: owned\n", "  model: owned\n  pue: 1.1\n",
                   "scn.yaml:13:3: duplicate key 'pue' (first at line 12)");
    expect_refused("name: Test scenario\n",
                   "name: Test scenario\nsearch: {max_points: 8}\n",
                   "scn.yaml:15:3: the sweeps make 9 points, more than search.max_points (8)");
    expect_refused("  - path: slo.tpot_ms\n", "  - path: workload.input_tokens\n",
                   "scn.yaml:19:11: 'workload.input_tokens' is swept twice (first at line 14)");
    expect_refused("    values: [1k, 8k, x4]\n", "    values: [1k, 8k, x4]\n  - path: cost.model\n"
                                                  "    values: [x2]\n",
                   "scn.yaml:17:14: 'cost.model' is a choice (cloud or owned), a multiplier "
                   "cannot scale it");
}

/* The shipped scenarios load. */
Test(scenario, shipped_scenarios_load)
{
    char **ids = NULL;
    isim_error e = {0};
    cr_assert_eq(isim_catalog_list(ISIM_DATA_DIR, "scenarios", &ids, &e), ISIM_OK, "%s", e.message);
    size_t n = 0;
    for (char **id = ids; *id; id++, n++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/scenarios/%s.yaml", ISIM_DATA_DIR, *id);
        isim_scenario *s = NULL;
        char buf[1600];
        cr_expect_eq(isim_scenario_load(path, &s, &e), ISIM_OK, "%s",
                     isim_error_format(&e, buf, sizeof buf));
        isim_scenario_free(s);
    }
    cr_expect_geq(n, 1u);
    isim_ids_free(ids);
}
