/* Scenario files: their settings, sources and sweeps, and every way one can be wrong,
 * refused with the exact message, line and column before any work starts. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "planner/planner.h"
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
    cr_expect_eq(v->percentile, 0, "not stated: the static batch's figures");
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
    /* a list item that misses a key: its place is the item's */
    expect_refused("  - path: slo.tpot_ms\n", "  -\n",
                   "scn.yaml:20:5: missing key 'path' in 'sweeps[2]'");
    expect_refused("  model: owned\n", "  model: owned\n  pue: 1.1\n",
                   "scn.yaml:13:3: duplicate key 'pue' (first at line 12)");
    expect_refused("name: Test scenario\n", "name: Test scenario\nsearch: {max_points: 8}\n",
                   "scn.yaml:15:3: the sweeps make 9 points, more than search.max_points (8)");
    expect_refused("  - path: slo.tpot_ms\n", "  - path: workload.input_tokens\n",
                   "scn.yaml:19:11: 'workload.input_tokens' is swept twice (first at line 14)");
    expect_refused("    values: [1k, 8k, x4]\n",
                   "    values: [1k, 8k, x4]\n  - path: cost.model\n"
                   "    values: [x2]\n",
                   "scn.yaml:17:14: 'cost.model' is a choice (cloud or owned), a multiplier "
                   "cannot scale it");
    expect_refused("    values: [1k, 8k, x4]\n",
                   "    values: [1k, 8k, x4]\n  - path: search.weights\n"
                   "    values: [fp8, x2]\n",
                   "scn.yaml:17:19: 'search.weights' is a precision (bf16, fp8, int4, ...), a "
                   "multiplier cannot scale it");
    expect_refused("    values: [1k, 8k, x4]\n",
                   "    values: [1k, 8k, x4]\n  - path: search.kv\n"
                   "    values: [fp8, fp6]\n",
                   "scn.yaml:17:19: 'search.kv' in a sweep is one precision (fp32 bf16 fp16 fp8 "
                   "int8 int4 fp4), got 'fp6'");
}

/* The shipped scenarios load, every one the issue asks for is there, and each runs with a
 * recommendation for every model at its base point and a plan at every sweep point. */
Test(scenario, shipped_scenarios_load_and_run)
{
    static const char *const wanted[] = {"default", "long-context", "network-latency",
                                         "quantization", "deepseek-v3-sizing"};
    for (size_t i = 0; i < sizeof wanted / sizeof *wanted; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/scenarios/%s.yaml", ISIM_DATA_DIR, wanted[i]);
        isim_scenario *s = NULL;
        isim_error e = {0};
        char buf[1600];
        cr_assert_eq(isim_scenario_load(path, &s, &e), ISIM_OK, "%s",
                     isim_error_format(&e, buf, sizeof buf));
        cr_expect_geq(s->n_sweeps, 1u, "%s asks a what-if", wanted[i]);
        isim_scenario_run_opts o = {.data_dir = ISIM_DATA_DIR, .threads = 2};
        isim_scenario_result *r = NULL;
        cr_assert_eq(isim_scenario_run(s, &o, &r, &e), ISIM_OK, "%s: %s", wanted[i],
                     isim_error_format(&e, buf, sizeof buf));
        for (size_t m = 0; m < r->n_models; m++) {
            cr_expect(r->base.plans[m] && r->base.plans[m]->customer_choice >= 0, "%s: %s",
                      wanted[i], r->models[m]->id);
            for (size_t k = 0; k < r->n_points; k++)
                cr_expect(r->points[k].plans && r->points[k].plans[m], "%s point %zu", wanted[i],
                          k + 1);
        }
        isim_scenario_result_free(r);
        isim_scenario_free(s);
    }
}

/* Every file under scenarios/ loads. */
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

/* ---- running scenarios ---------------------------------------------------------------- */

static isim_scenario_result *run_text(const char *text, int threads, isim_error *e,
                                      isim_scenario **sc)
{
    char *path = tu_write("run.yaml", text);
    *sc = NULL;
    isim_scenario_result *r = NULL;
    if (isim_scenario_load(path, sc, e) == ISIM_OK) {
        isim_scenario_run_opts o = {.data_dir = ISIM_DATA_DIR, .threads = threads};
        if (isim_scenario_run(*sc, &o, &r, e) != ISIM_OK)
            r = NULL;
    }
    tu_discard(path);
    return r;
}

/* Owned: purchase over the life, power at the IT load with PUE, colocation on the load.
 * H100 SXM: $33,750 over 5 years; 0.7 kW x 1.82 = 1.274 kW; x 1.3 PUE x $0.0806/kWh;
 * $184.06 per kW-month. */
Test(scenario, owned_devices_are_priced_from_capex_power_and_space)
{
    isim_hw *h = tu_hw("h100-sxm");
    isim_scenario_settings v = {.cost_model = ISIM_COST_OWNED,
                                .pue = 1.3,
                                .electricity_usd_per_kwh = 0.0806,
                                .colocation_usd_per_kw_month = 184.06,
                                .server_power_factor = 1.82,
                                .power_fraction_of_tdp = 1};
    double usd = 0;
    char why[200] = "";
    cr_assert(isim_scenario_price(h, &v, &usd, why, sizeof why), "%s", why);
    double want = 33750 / (5 * 8760.0) + 1.274 * 1.3 * 0.0806 + 1.274 * 184.06 * 12 / 8760;
    cr_expect(tu_close(usd, want, 1e-12), "%.6f vs %.6f", usd, want);
    v.cost_model = ISIM_COST_CLOUD;
    cr_assert(isim_scenario_price(h, &v, &usd, why, sizeof why));
    cr_expect(tu_close(usd, 3.99, 1e-15));
    isim_hw_free(h);
    isim_hw *m = tu_hw("mi300x");
    v.cost_model = ISIM_COST_OWNED;
    cr_expect(!isim_scenario_price(m, &v, &usd, why, sizeof why));
    cr_expect_str_eq(why, "mi300x has no purchase price (price.purchase_usd and life_years)");
    isim_hw_free(m);
}

/* The default scenario: a base point, its two cost models, per-hardware answers for the
 * demand, and the sensitivity of the recommended configuration. */
Test(scenario, the_default_scenario_runs)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/scenarios/default.yaml", ISIM_DATA_DIR);
    isim_scenario *s = NULL;
    isim_error e = {0};
    cr_assert_eq(isim_scenario_load(path, &s, &e), ISIM_OK, "%s", e.message);
    isim_scenario_run_opts o = {.data_dir = ISIM_DATA_DIR, .threads = 2};
    isim_scenario_result *r = NULL;
    cr_assert_eq(isim_scenario_run(s, &o, &r, &e), ISIM_OK, "%s", e.message);
    cr_assert_eq(r->n_hw, 4u);
    cr_assert_eq(r->n_points, 2u);
    const isim_scenario_point *owned = &r->points[1];
    cr_expect_str_eq(owned->values[0], "owned");
    cr_expect_eq(owned->settings.cost_model, ISIM_COST_OWNED);
    cr_expect_eq(owned->n_priced, 2u, "H100 SXM and B200 have purchase prices");
    cr_expect(isnan(owned->usd_per_device_h[1]));
    cr_expect(strstr(owned->unpriced[1], "h200 has no purchase price") != NULL);
    const isim_plan *base = r->base.plans[0];
    cr_assert(base && base->customer_choice >= 0);
    for (size_t h = 0; h < r->base.n_priced; h++) {
        const isim_plan_answer *a = &base->hw_answers[h].fewest_devices;
        cr_assert(a->found, "%s", r->hw[r->base.hw_index[h]]->id);
        /* 20 requests/s x 1000 output tokens */
        cr_expect_geq(a->replicas * a->point.tokens_per_s_total, 20000 * (1 - 1e-12));
        cr_expect_leq(a->point.ttft_s, 2.0);
        cr_expect_geq(a->point.tokens_per_s_per_user, 20);
    }
    /* owning costs less per token than renting the same configuration here */
    cr_expect_lt(r->points[1].plans[0]->min_cost_usd_per_mtok_output,
                 r->points[0].plans[0]->min_cost_usd_per_mtok_output);
    const isim_sensitivity *sv = &r->sensitivity[0];
    cr_assert(sv->found);
    /* the fleet pays for its whole replicas' idle share: the configuration's own cost,
     * prompts included, times the capacity bought over the demand */
    const isim_plan_point *rec = &base->frontier[base->customer_choice];
    double bought = rec->replicas * rec->tokens_per_s_sustained / 20000;
    cr_expect(bought >= 1 && tu_close(sv->cost_base * bought, rec->cost_usd_per_mtok_output, 1e-9),
              "the configuration's %g x %g bought over the demand vs the fleet's %g", sv->cost_base,
              bought, rec->cost_usd_per_mtok_output);
    cr_assert_geq(sv->n_bars, 5u);
    for (size_t i = 1; i < sv->n_bars; i++)
        cr_expect_geq(fabs(sv->bars[i - 1].cost_high - sv->bars[i - 1].cost_low),
                      fabs(sv->bars[i].cost_high - sv->bars[i].cost_low));
    /* the price moves the cost in proportion: x0.8 .. x1.2 */
    for (size_t i = 0; i < sv->n_bars; i++)
        if (strstr(sv->bars[i].path, "price.cloud_usd_per_h")) {
            cr_expect(tu_close(sv->bars[i].cost_low, 0.8 * sv->cost_base, 1e-9));
            cr_expect(tu_close(sv->bars[i].cost_high, 1.2 * sv->cost_base, 1e-9));
        }
    isim_scenario_result_free(r);
    isim_scenario_free(s);
}

/* Energy per output token: devices x average power x time per token / batch at the
 * devices (H100 SXM: 700 W TDP, NVIDIA datasheet; half of it on average here), then x the
 * server factor and the PUE. A profile without a power rating has none. */
Test(scenario, energy_per_token_is_device_power_times_step_time)
{
    isim_error e = {0};
    isim_scenario *s = NULL;
    isim_scenario_result *r =
        run_text("name: energy\nmodels: [llama-3.1-8b]\nhardware: [h100-sxm, tpu-v5e]\n"
                 "workload: {input_tokens: 512, output_tokens: 256}\nsearch: {max_devices: 4}\n"
                 "cost: {power_fraction_of_tdp: 0.5, server_power_factor: 2, pue: 1.5}\n",
                 1, &e, &s);
    cr_assert_not_null(r, "%s", e.message);
    const isim_scenario_point *p = &r->base;
    cr_expect(tu_close(p->device_w[0], 350, 1e-15));
    cr_expect(isnan(p->device_w[1]));
    const isim_plan *plan = p->plans[0];
    size_t seen = 0;
    for (size_t k = 0; k < plan->n_hw; k++)
        for (size_t i = 0; i < plan->hw_n[k]; i++) {
            isim_plan_point x = plan->hw_frontier[k][i];
            x.hw = (int)p->hw_index[k];
            double dj = 0, fj = 0;
            bool has = isim_scenario_energy(p, &x, &dj, &fj);
            if (x.hw == 1) {
                cr_expect(!has && isnan(dj) && isnan(fj));
                continue;
            }
            cr_assert(has);
            double want = x.devices * 350 * x.tpot_s / x.batch;
            cr_expect(tu_close(dj, want, 1e-12), "%g vs %g J", dj, want);
            cr_expect(tu_close(fj, want * 3, 1e-12));
            /* and so per device-second: batch x tokens/s per user tokens at 350 W */
            cr_expect(tu_close(dj * x.tokens_per_s_per_device, 350, 1e-9));
            seen++;
        }
    cr_expect_gt(seen, 0u);
    isim_scenario_result_free(r);
    isim_scenario_free(s);
}

/* A quantization what-if: search.weights swept to one precision per point, the lists of the
 * file otherwise; fewer bytes of weights, faster decoding on a memory-bound GPU. */
Test(scenario, precision_sweeps_search_one_precision_per_point)
{
    isim_error e = {0};
    isim_scenario *s = NULL;
    isim_scenario_result *r =
        run_text("name: quantization\nmodels: [llama-3.1-8b]\nhardware: [h100-sxm]\n"
                 "workload: {input_tokens: 1k, output_tokens: 1k}\n"
                 "search: {max_devices: 2, weights: [bf16, fp8], kv: [bf16]}\n"
                 "sweeps:\n  - path: search.weights\n    values: [bf16, fp8, int4]\n",
                 1, &e, &s);
    cr_assert_not_null(r, "%s", e.message);
    cr_assert_eq(r->n_points, 3u);
    cr_expect_eq(r->base.settings.weights, ISIM_DTYPE_COUNT, "the base keeps the lists");
    bool base_has[ISIM_DTYPE_COUNT] = {false};
    const isim_plan *b = r->base.plans[0];
    for (size_t i = 0; i < b->n_frontier; i++)
        base_has[b->frontier[i].weights] = true;
    cr_expect(!base_has[ISIM_INT4]);
    static const isim_dtype want[] = {ISIM_BF16, ISIM_FP8, ISIM_INT4};
    double fastest[3];
    for (size_t k = 0; k < 3; k++) {
        const isim_scenario_point *p = &r->points[k];
        cr_expect_eq(p->settings.weights, want[k]);
        cr_expect_str_eq(isim_scenario_setting_text(&p->settings, "search.weights"),
                         isim_dtype_name(want[k]));
        const isim_plan *plan = p->plans[0];
        cr_assert_gt(plan->n_frontier, 0u);
        for (size_t i = 0; i < plan->n_frontier; i++) {
            cr_expect_eq(plan->frontier[i].weights, want[k]);
            cr_expect_eq(plan->frontier[i].kv, ISIM_BF16);
        }
        fastest[k] = plan->max_tokens_per_s_per_user;
    }
    cr_expect(fastest[0] < fastest[1] && fastest[1] < fastest[2], "%g %g %g", fastest[0],
              fastest[1], fastest[2]);
    isim_scenario_result_free(r);
    isim_scenario_free(s);
}

/* clang-format off */
static const char *const SWEEP =
    "name: bandwidth what-if\n"                 /* 1 */
    "models: [llama-3.1-8b]\n"                  /* 2 */
    "hardware: [h100-sxm, l4]\n"                /* 3 */
    "workload: {input_tokens: 512, output_tokens: 256}\n" /* 4 */
    "search: {max_devices: 8}\n"                /* 5 */
    "sweeps:\n"                                 /* 6 */
    "  - path: hw.*.memory.bandwidth_gbps\n"    /* 7 */
    "    values: [x0.5, x1, x2]\n"              /* 8 */
    "    lockstep: mem\n"                       /* 9 */
    "  - path: hw.h100-sxm.price.cloud_usd_per_h\n" /* 10 */
    "    values: [2, 3, 4]\n"                   /* 11 */
    "    lockstep: mem\n"                       /* 12 */
    "  - path: workload.output_tokens\n"        /* 13 */
    "    values: [128, 256]\n";                 /* 14 */
/* clang-format on */

/* Model and hardware values swept by path: more bandwidth, more speed; lockstep sweeps
 * move together (3 x 2 points, not 3 x 3 x 2); the same answer on any number of threads. */
Test(scenario, sweeps_change_hardware_values_and_combine)
{
    isim_error e = {0};
    isim_scenario *s = NULL;
    isim_scenario_result *r = run_text(SWEEP, 2, &e, &s);
    cr_assert_not_null(r, "%s", e.message);
    cr_assert_eq(r->n_points, 6u);
    /* point k: (bandwidth, price) index k / 2, output tokens k % 2 */
    cr_expect_str_eq(r->points[5].values[0], "x2");
    cr_expect_str_eq(r->points[5].values[1], "4");
    cr_expect_str_eq(r->points[5].values[2], "256");
    cr_expect(tu_close(r->points[2].usd_per_device_h[0], 3, 1e-15));
    cr_expect(tu_close(r->points[2].usd_per_device_h[1], r->hw[1]->cloud_usd_per_h, 1e-15));
    double s0 = r->points[1].plans[0]->max_tokens_per_s_per_user,
           s1 = r->points[3].plans[0]->max_tokens_per_s_per_user,
           s2 = r->points[5].plans[0]->max_tokens_per_s_per_user;
    cr_expect(s0 < s1 && s1 < s2, "%g %g %g", s0, s1, s2);
    isim_scenario *s1c = NULL;
    isim_scenario_result *one = run_text(SWEEP, 1, &e, &s1c);
    cr_assert_not_null(one, "%s", e.message);
    for (size_t k = 0; k < 6; k++) {
        const isim_plan *a = r->points[k].plans[0], *b = one->points[k].plans[0];
        cr_assert_eq(a->n_frontier, b->n_frontier);
        for (size_t i = 0; i < a->n_frontier; i++)
            cr_expect(isim_plan_point_same(&a->frontier[i], &b->frontier[i]));
    }
    isim_scenario_result_free(one);
    isim_scenario_free(s1c);
    isim_scenario_result_free(r);
    isim_scenario_free(s);
}

static void expect_run_refused(const char *from, const char *to, const char *want)
{
    char *text = tu_replace(SWEEP, from, to);
    isim_error e = {0};
    isim_scenario *s = NULL;
    isim_scenario_result *r = run_text(text, 1, &e, &s);
    cr_expect_null(r, "accepted: %s", to);
    isim_scenario_result_free(r);
    isim_scenario_free(s);
    char buf[1600];
    isim_error_format(&e, buf, sizeof buf);
    const char *msg = strstr(buf, "run.yaml:");
    cr_expect(msg && strncmp(msg, want, strlen(want)) == 0, "\n got: %s\nwant: %s", buf, want);
    free(text);
}

/* Refused before any work, at the value that is wrong. */
Test(scenario, bad_sweeps_are_refused_before_the_run)
{
    expect_run_refused("    values: [x0.5, x1, x2]\n", "    values: [x0.5, x1, 2e9]\n",
                       "run.yaml:8:24: 'memory.bandwidth_gbps' = 2e+09 is out of range [0.1, "
                       "100000] (in ");
    expect_run_refused("  - path: hw.*.memory.bandwidth_gbps\n",
                       "  - path: hw.*.memory.bandwith_gbps\n",
                       "run.yaml:8:14: 'memory.bandwith_gbps' in ");
    expect_run_refused("  - path: workload.output_tokens\n",
                       "  - path: hw.l4.memory.bandwith_gbps\n",
                       "run.yaml:14:14: unknown key 'bandwith_gbps' in 'memory' (expected: "
                       "capacity_gb, bandwidth_gbps, thread_bandwidth_gbps) (in ");
    expect_run_refused("  - path: hw.*.memory.bandwidth_gbps\n", "  - path: hw.*.kind\n",
                       "run.yaml:8:14: 'kind' in ");
    expect_run_refused("  - path: hw.h100-sxm.price.cloud_usd_per_h\n",
                       "  - path: hw.b200.price.cloud_usd_per_h\n",
                       "run.yaml:10:11: 'hw.b200.price.cloud_usd_per_h' names no hardware of the "
                       "scenario (its hardware: h100-sxm, l4)");
    expect_run_refused("hardware: [h100-sxm, l4]\n", "hardware: [h100-sxm, h100]\n",
                       "run.yaml:3:22: unknown hardware 'h100' (did you mean");
    expect_run_refused("models: [llama-3.1-8b]\n", "models: [llama-8b]\n",
                       "run.yaml:2:10: unknown model 'llama-8b' (did you mean");
}

/* ---- contexts longer than the models' ------------------------------------------------ */

/* clang-format off */
static const char *const LONG =
    "name: long prompts\n"                          /* 1 */
    "models: [llama-3.1-8b, llama-2-7b]\n"          /* 2 */
    "hardware: [h100-sxm]\n"                        /* 3 */
    "workload:\n"                                   /* 4 */
    "  input_tokens: 3k\n"                          /* 5 */
    "  output_tokens: 96\n"                         /* 6 */
    "search: {max_devices: 2}\n"                    /* 7 */
    "sweeps:\n"                                     /* 8 */
    "  - path: workload.input_tokens\n"             /* 9 */
    "    values: [4000, 4001, 130976, 130977]\n";   /* 10 */
/* clang-format on */

/* A sweep point beyond a model's context is infeasible for that model alone, its plan
 * naming both numbers; up to the context it is planned. The sensitivity's doubled prompt
 * is infeasible where it passes the context. */
Test(scenario, a_sweep_point_beyond_a_models_context_is_infeasible_for_it)
{
    isim_error e = {0};
    isim_scenario *s = NULL;
    isim_scenario_result *r = run_text(LONG, 2, &e, &s);
    cr_assert_not_null(r, "%s", e.message);
    cr_assert_eq(r->n_points, 4u);
    static const struct {
        size_t point, model;
        const char *empty; /* NULL: planned */
    } cases[] = {
        {0, 0, NULL},
        {0, 1, NULL},
        {1, 0, NULL},
        {1, 1,
         "no configuration is feasible: 4001 in + 96 out = 4097 tokens of context exceed "
         "Llama 2 7B's 4096"},
        {2, 0, NULL},
        {3, 0,
         "no configuration is feasible: 130977 in + 96 out = 131073 tokens of context "
         "exceed Llama 3.1 8B's 131072"},
        {3, 1,
         "no configuration is feasible: 130977 in + 96 out = 131073 tokens of context "
         "exceed Llama 2 7B's 4096"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const isim_plan *p = r->points[cases[i].point].plans[cases[i].model];
        cr_assert_not_null(p);
        if (cases[i].empty) {
            cr_expect_eq(p->n_frontier, 0u, "case %zu", i);
            cr_expect_str_eq(p->empty_reason, cases[i].empty, "case %zu", i);
        } else {
            cr_expect_gt(p->n_frontier, 0u, "case %zu: %s", i, p->empty_reason);
        }
    }
    for (size_t m = 0; m < 2; m++) {
        const isim_sensitivity *sv = &r->sensitivity[m];
        cr_assert(sv->found);
        bool seen = false;
        for (size_t i = 0; i < sv->n_bars; i++)
            if (strcmp(sv->bars[i].path, "workload.input_tokens") == 0) {
                seen = true;
                cr_expect(isfinite(sv->bars[i].cost_low));
                /* 6000 + 96 tokens: within Llama 3.1 8B's context, past Llama 2 7B's */
                cr_expect_eq(isnan(sv->bars[i].cost_high), m == 1, "model %zu", m);
            }
        cr_expect(seen);
    }
    isim_scenario_result_free(r);
    isim_scenario_free(s);
}

/* A what-if on the model's own context: the point where it is too short plans nothing. */
Test(scenario, a_swept_max_context_shorter_than_the_workload_is_infeasible)
{
    isim_error e = {0};
    isim_scenario *s = NULL;
    isim_scenario_result *r =
        run_text("name: shorter context\nmodels: [llama-2-7b]\nhardware: [h100-sxm]\n"
                 "workload: {input_tokens: 3k, output_tokens: 96}\nsearch: {max_devices: 2}\n"
                 "sweeps:\n  - path: model.llama-2-7b.architecture.max_context\n"
                 "    values: [3095, 3096]\n",
                 1, &e, &s);
    cr_assert_not_null(r, "%s", e.message);
    cr_assert_eq(r->n_points, 2u);
    cr_expect_eq(r->points[0].plans[0]->n_frontier, 0u);
    cr_expect_str_eq(r->points[0].plans[0]->empty_reason,
                     "no configuration is feasible: 3000 in + 96 out = 3096 tokens of context "
                     "exceed Llama 2 7B's 3095");
    cr_expect_gt(r->points[1].plans[0]->n_frontier, 0u);
    isim_scenario_result_free(r);
    isim_scenario_free(s);
}

static void expect_long_refused(const char *from, const char *to, const char *want)
{
    char *text = tu_replace(LONG, from, to);
    isim_error e = {0};
    isim_scenario *s = NULL;
    isim_scenario_result *r = run_text(text, 1, &e, &s);
    cr_expect_null(r, "accepted: %s", to);
    isim_scenario_result_free(r);
    isim_scenario_free(s);
    char buf[1600];
    isim_error_format(&e, buf, sizeof buf);
    const char *msg = strstr(buf, "run.yaml:");
    cr_expect(msg && strcmp(msg, want) == 0, "\n got: %s\nwant: %s", buf, want);
    free(text);
}

/* A base workload that no model of the scenario (or its draft) can hold is a mistake in
 * the file: refused before any work, at the longer of the two lengths. */
Test(scenario, a_workload_beyond_every_models_context_is_refused_at_its_place)
{
    expect_long_refused("  input_tokens: 3k\n", "  input_tokens: 1e7\n",
                        "run.yaml:5:17: 10000000 in + 96 out = 10000096 tokens of context exceed "
                        "Llama 3.1 8B's 131072, the longest context of the scenario's models");
    expect_long_refused("  output_tokens: 96\n", "  output_tokens: 200k\n",
                        "run.yaml:6:18: 3000 in + 200000 out = 203000 tokens of context exceed "
                        "Llama 3.1 8B's 131072, the longest context of the scenario's models");
    expect_long_refused("models: [llama-3.1-8b, llama-2-7b]\nhardware: [h100-sxm]\nworkload:\n"
                        "  input_tokens: 3k\n",
                        "models: [llama-2-7b]\nhardware: [h100-sxm]\nworkload:\n"
                        "  input_tokens: 5k\n",
                        "run.yaml:5:17: 5000 in + 96 out = 5096 tokens of context exceed Llama 2 "
                        "7B's 4096");
    expect_long_refused("  input_tokens: 3k\n  output_tokens: 96\nsearch: {max_devices: 2}\n",
                        "  input_tokens: 5k\n  output_tokens: 96\n"
                        "search: {max_devices: 2, spec_draft: llama-2-7b}\n",
                        "run.yaml:5:17: 5000 in + 96 out = 5096 tokens of context exceed the "
                        "draft Llama 2 7B's 4096 (search.spec_draft)");
}

/* ---- ids with dots in sweep and sensitivity paths ------------------------------------ */

/* Which id a path names, table-driven: ids may hold dots; the longest id the path goes on
 * with wins, so an id that is a prefix of another is not taken for it. */
Test(scenario, a_path_names_the_longest_id_it_goes_on_with)
{
    static const char *const hw[] = {"h100-sxm", "h100-sxm.2x"};
    static const char *const models[] = {"llama-3", "llama-3.1-8b", "llama-3.1-70b"};
    static const struct {
        const char *path;
        const char *const *ids;
        size_t n, index;
        const char *key;
    } cases[] = {
        {"hw.h100-sxm.2x.memory.bandwidth_gbps", hw, 2, 1, "memory.bandwidth_gbps"},
        {"hw.h100-sxm.memory.bandwidth_gbps", hw, 2, 0, "memory.bandwidth_gbps"},
        {"hw.*.kernel.launch_us", hw, 2, ISIM_SCENARIO_EVERY, "kernel.launch_us"},
        {"model.llama-3.1-8b.architecture.n_layers", models, 3, 1, "architecture.n_layers"},
        {"model.llama-3.1-70b.architecture.n_layers", models, 3, 2, "architecture.n_layers"},
        {"model.llama-3.architecture.n_layers", models, 3, 0, "architecture.n_layers"},
        {"model.*.architecture.max_context", models, 3, ISIM_SCENARIO_EVERY,
         "architecture.max_context"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t index = 99;
        const char *key = NULL;
        isim_error e = {0};
        cr_assert_eq(isim_scenario_path_spec(cases[i].path, cases[i].ids, cases[i].n, &index, &key,
                                             "f.yaml", 3, 4, &e),
                     ISIM_OK, "%s: %s", cases[i].path, e.message);
        cr_expect_eq(index, cases[i].index, "%s", cases[i].path);
        cr_expect_str_eq(key, cases[i].key, "%s", cases[i].path);
    }
}

/* clang-format off */
static const char *const PATHS =
    "name: paths\n"                                         /* 1 */
    "models: [llama-3.1-8b, llama-3.1-70b]\n"               /* 2 */
    "hardware: [h100-sxm, h100-sxm.2x]\n"                   /* 3 */
    "workload: {input_tokens: 1k, output_tokens: 256}\n"    /* 4 */
    "sweeps:\n"                                             /* 5 */
    "  - path: model.llama-3.1-8b.architecture.n_layers\n"  /* 6 */
    "    values: [16, 32]\n"                                /* 7 */
    "sensitivity:\n"                                        /* 8 */
    "  - path: hw.h100-sxm.2x.memory.bandwidth_gbps\n"      /* 9 */
    "    low: x0.5\n"                                       /* 10 */
    "    high: x2\n";                                       /* 11 */
/* clang-format on */

static void expect_path_refused(const char *from, const char *to, const char *from2,
                                const char *to2, const char *want)
{
    char *once = tu_replace(PATHS, from, to);
    char *text = from2 ? tu_replace(once, from2, to2) : strdup(once);
    isim_error e = {0};
    isim_scenario *s = load_text(text, &e);
    cr_expect_null(s, "accepted: %s", text);
    isim_scenario_free(s);
    char buf[1600];
    isim_error_format(&e, buf, sizeof buf);
    const char *msg = strstr(buf, "scn.yaml:");
    cr_expect(msg && strcmp(msg, want) == 0, "\n got: %s\nwant: %s", buf, want);
    free(text);
    free(once);
}

/* The loader resolves a path's id as the runner does: one that names no model or hardware
 * of the scenario, or two at once, is refused at the path with the ids it could mean. */
Test(scenario, a_path_to_an_unknown_or_ambiguous_id_is_refused_with_the_ids_it_could_mean)
{
    isim_error e = {0};
    isim_scenario *s = load_text(PATHS, &e);
    cr_assert_not_null(s, "%s", e.message);
    cr_expect_eq(s->sweeps[0].path_line, 6);
    cr_expect_eq(s->sweeps[0].path_column, 11);
    cr_expect_eq(s->sensitivity[0].path_line, 9);
    isim_scenario_free(s);
    expect_path_refused("model.llama-3.1-8b.architecture", "model.llama-3.2-1b.architecture", NULL,
                        NULL,
                        "scn.yaml:6:11: 'model.llama-3.2-1b.architecture.n_layers' names no model "
                        "of the scenario (its models: llama-3.1-8b, llama-3.1-70b)");
    expect_path_refused("model.llama-3.1-8b.architecture.n_layers", "model.llama-3.1-8b", NULL,
                        NULL,
                        "scn.yaml:6:11: 'model.llama-3.1-8b' names model 'llama-3.1-8b' but no "
                        "key in it (expected model.llama-3.1-8b.<key path>)");
    expect_path_refused("hw.h100-sxm.2x.memory", "hw.h100.memory", NULL, NULL,
                        "scn.yaml:9:11: 'hw.h100.memory.bandwidth_gbps' names no hardware of the "
                        "scenario (its hardware: h100-sxm, h100-sxm.2x)");
    expect_path_refused("hardware: [h100-sxm, h100-sxm.2x]",
                        "hardware: [h100-sxm, h100-sxm.memory]", "hw.h100-sxm.2x.memory",
                        "hw.h100-sxm.memory",
                        "scn.yaml:9:11: 'hw.h100-sxm.memory.bandwidth_gbps' is ambiguous: it names "
                        "hardware 'h100-sxm.memory' (key path 'bandwidth_gbps') or 'h100-sxm' (key "
                        "path 'memory.bandwidth_gbps')");
}

/* The reproducer: a sweep of a Llama 3.1 model's layers by its dotted id runs, and gives
 * what the same sweep through model.* gives. */
Test(scenario, a_sweep_path_names_a_model_whose_id_holds_dots)
{
    static const char *const text =
        "name: t\nmodels: [llama-3.1-8b]\nhardware: [h100-sxm]\n"
        "workload: {input_tokens: 1k, output_tokens: 256, request_rate_per_s: 5}\n"
        "search: {max_devices: 2}\n"
        "sweeps:\n  - path: model.llama-3.1-8b.architecture.n_layers\n    values: [16, 32]\n";
    isim_error e = {0};
    isim_scenario *s = NULL, *star_s = NULL;
    isim_scenario_result *r = run_text(text, 1, &e, &s);
    cr_assert_not_null(r, "%s", e.message);
    char *star_text = tu_replace(text, "model.llama-3.1-8b.", "model.*.");
    isim_scenario_result *star = run_text(star_text, 1, &e, &star_s);
    cr_assert_not_null(star, "%s", e.message);
    cr_assert_eq(r->n_points, 2u);
    for (size_t k = 0; k < 2; k++) {
        const isim_plan *a = r->points[k].plans[0], *b = star->points[k].plans[0];
        cr_assert_eq(a->n_frontier, b->n_frontier);
        for (size_t i = 0; i < a->n_frontier; i++)
            cr_expect(isim_plan_point_same(&a->frontier[i], &b->frontier[i]));
    }
    cr_expect_gt(r->points[0].plans[0]->max_tokens_per_s_per_user,
                 1.5 * r->points[1].plans[0]->max_tokens_per_s_per_user,
                 "16 layers decode faster than 32");
    isim_scenario_result_free(star);
    isim_scenario_free(star_s);
    free(star_text);
    isim_scenario_result_free(r);
    isim_scenario_free(s);
}

/* A data directory of its own: hw-profiles/h100-sxm.yaml, a copy as h100-sxm.2x.yaml, and
 * models/llama-3.1-8b.yaml. */
static void copy_spec(const char *dir, const char *sub, const char *from, const char *to)
{
    char src[1024], dst[1024];
    snprintf(src, sizeof src, "%s/%s/%s.yaml", ISIM_DATA_DIR, sub, from);
    snprintf(dst, sizeof dst, "%s/%s", dir, sub);
    mkdir(dst, 0777);
    snprintf(dst, sizeof dst, "%s/%s/%s.yaml", dir, sub, to);
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    cr_assert(in && out, "%s -> %s", src, dst);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
}

static const char *const DOTTED[][3] = {{"hw-profiles", "h100-sxm", "h100-sxm"},
                                        {"hw-profiles", "h100-sxm", "h100-sxm.2x"},
                                        {"models", "llama-3.1-8b", "llama-3.1-8b"}};

static void make_dotted_catalog(char *dir)
{
    cr_assert_not_null(mkdtemp(dir));
    for (size_t i = 0; i < 3; i++)
        copy_spec(dir, DOTTED[i][0], DOTTED[i][1], DOTTED[i][2]);
}

static void remove_dotted_catalog(const char *dir)
{
    char path[1024];
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s/%s.yaml", dir, DOTTED[i][0], DOTTED[i][2]);
        remove(path);
    }
    snprintf(path, sizeof path, "%s/hw-profiles", dir);
    rmdir(path);
    snprintf(path, sizeof path, "%s/models", dir);
    rmdir(path);
    rmdir(dir);
}

static isim_scenario_result *run_in(const char *dir, const char *text, isim_error *e,
                                    isim_scenario **sc)
{
    char *path = tu_write("run.yaml", text);
    *sc = NULL;
    isim_scenario_result *r = NULL;
    if (isim_scenario_load(path, sc, e) == ISIM_OK) {
        isim_scenario_run_opts o = {.data_dir = dir, .threads = 1};
        if (isim_scenario_run(*sc, &o, &r, e) != ISIM_OK)
            r = NULL;
    }
    tu_discard(path);
    return r;
}

/* A hardware id with a dot, named as the scenario lists it and as the catalog holds it
 * (hardware: all): the sweep changes that profile alone, the one whose id is a prefix of it
 * untouched; the sensitivity range through the same path moves its cost. An id the catalog
 * does not hold is refused at the path with the catalog's ids. */
Test(scenario, a_path_names_hardware_whose_id_holds_dots)
{
    char dir[] = "/tmp/isim-catalog-XXXXXX";
    make_dotted_catalog(dir);
    static const char *const base =
        "name: dotted\nmodels: [llama-3.1-8b]\nhardware: [h100-sxm, h100-sxm.2x]\n"
        "workload: {input_tokens: 1k, output_tokens: 256}\nsearch: {max_devices: 2}\n"
        "sweeps:\n  - path: hw.h100-sxm.2x.price.cloud_usd_per_h\n    values: [1, 2]\n"
        "sensitivity:\n  - path: hw.h100-sxm.2x.price.cloud_usd_per_h\n"
        "    low: x0.5\n    high: x2\n";
    for (int all = 0; all < 2; all++) {
        char *text = all ? tu_replace(base, "[h100-sxm, h100-sxm.2x]", "all") : strdup(base);
        isim_error e = {0};
        isim_scenario *s = NULL;
        isim_scenario_result *r = run_in(dir, text, &e, &s);
        cr_assert_not_null(r, "%s", e.message);
        cr_assert_eq(r->n_hw, 2u);
        cr_assert_str_eq(r->hw[1]->id, "h100-sxm.2x");
        for (size_t k = 0; k < 2; k++) {
            cr_expect(tu_close(r->points[k].usd_per_device_h[1], (double)(k + 1), 1e-15));
            cr_expect(tu_close(r->points[k].usd_per_device_h[0], r->hw[0]->cloud_usd_per_h, 1e-15));
        }
        const isim_sensitivity *sv = &r->sensitivity[0];
        cr_assert(sv->found);
        for (size_t i = 0; i < sv->n_bars; i++) {
            cr_expect_str_eq(sv->bars[i].path, "hw.h100-sxm.2x.price.cloud_usd_per_h");
            if (sv->point.hw == 1) {
                cr_expect(tu_close(sv->bars[i].cost_low, 0.5 * sv->cost_base, 1e-9));
                cr_expect(tu_close(sv->bars[i].cost_high, 2 * sv->cost_base, 1e-9));
            }
        }
        isim_scenario_result_free(r);
        isim_scenario_free(s);
        free(text);
    }
    isim_error e = {0};
    isim_scenario *s = NULL;
    char *text = tu_replace(base, "[h100-sxm, h100-sxm.2x]", "all");
    char *bad = tu_replace(text, "hw.h100-sxm.2x.price", "hw.h100-sxm.3x.price");
    cr_expect_null(run_in(dir, bad, &e, &s));
    isim_scenario_free(s);
    char buf[1600];
    isim_error_format(&e, buf, sizeof buf);
    const char *msg = strstr(buf, "run.yaml:");
    cr_expect(msg && strcmp(msg, "run.yaml:7:11: 'hw.h100-sxm.3x.price.cloud_usd_per_h' names no "
                                 "hardware of the scenario (its hardware: h100-sxm, "
                                 "h100-sxm.2x)") == 0,
              "%s", buf);
    free(bad);
    free(text);
    remove_dotted_catalog(dir);
}

/* A sensitivity range on a model's value by its dotted id moves the recommended
 * configuration's cost (fewer layers, less time per token). */
Test(scenario, a_sensitivity_path_names_a_model_whose_id_holds_dots)
{
    isim_error e = {0};
    isim_scenario *s = NULL;
    isim_scenario_result *r =
        run_text("name: t\nmodels: [llama-3.1-8b]\nhardware: [h100-sxm]\n"
                 "workload: {input_tokens: 1k, output_tokens: 256}\nsearch: {max_devices: 2}\n"
                 "sensitivity:\n  - path: model.llama-3.1-8b.architecture.n_layers\n"
                 "    low: 16\n    high: 40\n",
                 1, &e, &s);
    cr_assert_not_null(r, "%s", e.message);
    const isim_sensitivity *sv = &r->sensitivity[0];
    cr_assert(sv->found);
    cr_assert_eq(sv->n_bars, 1u);
    cr_expect_lt(sv->bars[0].cost_low, sv->cost_base);
    cr_expect_gt(sv->bars[0].cost_high, sv->cost_base);
    isim_scenario_result_free(r);
    isim_scenario_free(s);
}

/* A scenario's SLOs at a percentile under its request rate: the plan simulates, and the
 * report says so where it shows the latencies (the summary, its table's heading, the terms'
 * figure is the decode pass's). */
Test(scenario, slos_at_a_percentile_are_labelled_as_simulated_in_the_report)
{
    char *yaml = tu_write("p99.yaml", "name: \"p99\"\n"
                                      "models: [llama-3.1-8b]\n"
                                      "hardware: [h100-sxm]\n"
                                      "workload:\n"
                                      "  input_tokens: 512\n"
                                      "  output_tokens: 64\n"
                                      "  request_rate_per_s: 20\n"
                                      "slo:\n"
                                      "  ttft_ms: 500\n"
                                      "  tpot_ms: 30\n"
                                      "  percentile: 99\n"
                                      "search:\n"
                                      "  max_devices: 2\n");
    char args[2400], dir[1200], *out = NULL, *err = NULL;
    snprintf(dir, sizeof dir, "%s/p99-report-%d", ISIM_TEST_OUT_DIR, (int)getpid());
    snprintf(args, sizeof args, "report %s -o %s", yaml, dir);
    cr_assert_eq(tu_run(args, &out, &err), 0, "%s", err);
    char path[1300];
    snprintf(path, sizeof path, "%s/report.md", dir);
    char *md = tu_read(path, NULL);
    cr_assert(md);
    cr_expect(strstr(md, "p99 TTFT ms |"), "table heading");
    cr_expect(strstr(md, "p99 time per output token"), "summary");
    cr_expect(strstr(md, "TTFT and TPOT are the 99th percentile of requests simulated"), "note");
    free(md);
    free(out);
    free(err);
    tu_discard(yaml);
    snprintf(args, sizeof args, "rm -rf '%s'", dir);
    cr_expect_eq(system(args), 0);
}
