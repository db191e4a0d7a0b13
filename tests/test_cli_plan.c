/* infersim plan through the command line: the JSON a script reads, the table and CSV, the
 * plot gnuplot draws, determinism, and every way a request can be wrong (exit 2 for the
 * request itself, 1 when nothing qualifies, with what removed it). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/testutil.h"

#define SMALL "plan --model llama-3.1-8b --hw l4,h100-sxm --input-tokens 512 --output-tokens 256"
#define PAPER                                                                                      \
    "plan --fidelity paper --model llama-3.1-70b --hw epoch-h100 --input-tokens 0 "                \
    "--output-tokens 1 --grid 60"

static cJSON *plan_json(const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s --json", args);
    return tu_run_json(cmd);
}

static double num(const cJSON *j, const char *key)
{
    return tu_num(j, key);
}

static const char *str(const cJSON *j, const char *key)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);
    cr_assert(cJSON_IsString(x), "no string '%s'", key);
    return x->valuestring;
}

/* The field list, on every frontier point; the frontier runs from cheap and slow
 * to fast and dear, and its ends are the summary figures. */
Test(cli_plan, json_has_the_frontier_and_the_summary)
{
    cJSON *j = plan_json(SMALL);
    const cJSON *f = cJSON_GetObjectItem(j, "frontier");
    int n = cJSON_GetArraySize(f);
    cr_assert_gt(n, 3);
    static const char *const keys[] = {"devices",
                                       "tp",
                                       "pp",
                                       "ep",
                                       "batch",
                                       "tokens_per_s_per_user",
                                       "cost_usd_per_mtok_output",
                                       "ttft_ms",
                                       "tpot_ms"};
    double prev_speed = 0, prev_cost = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *p = cJSON_GetArrayItem(f, i);
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
            num(p, keys[k]);
        const char *hw = str(p, "hw");
        cr_expect(strcmp(hw, "l4") == 0 || strcmp(hw, "h100-sxm") == 0, "%s", hw);
        str(p, "weights");
        const cJSON *terms = cJSON_GetObjectItem(p, "terms_ms");
        /* matmuls and attention each overlap their own arithmetic and memory traffic
         * (docs/model.md, "Overlap"): the step lies between the two rules' totals */
        double base = num(terms, "fixed") + num(terms, "network"), a = num(terms, "arithmetic"),
               h = num(terms, "hbm"), t = num(p, "tpot_ms");
        cr_expect(t >= (base + fmax(a, h)) * (1 - 1e-4) && t <= (base + a + h) * (1 + 1e-4),
                  "terms %g + max(%g, %g) vs %g", base, a, h, t);
        double speed = num(p, "tokens_per_s_per_user"), cost = num(p, "cost_usd_per_mtok_output");
        cr_expect(tu_close(speed, 1000 / num(p, "tpot_ms"), 1e-4));
        if (i > 0) {
            cr_expect_gt(speed, prev_speed, "point %d not faster", i);
            cr_expect_gt(cost, prev_cost, "point %d not dearer", i);
        }
        prev_speed = speed;
        prev_cost = cost;
    }
    cr_expect(tu_close(num(j, "max_tokens_per_s_per_user"), prev_speed, 1e-9));
    cr_expect(tu_close(num(j, "min_cost_usd_per_mtok_output"),
                       num(cJSON_GetArrayItem(f, 0), "cost_usd_per_mtok_output"), 1e-9));
    const cJSON *c = cJSON_GetObjectItem(j, "customer_choice");
    cr_expect_eq(num(c, "alpha"), 3);
    cr_expect_gt(num(j, "evaluated"), n);
    cr_expect(cJSON_IsObject(cJSON_GetObjectItem(j, "infeasible_by_reason")));
    cr_expect_geq(num(j, "elapsed_ms"), 0);
    const cJSON *byhw = cJSON_GetObjectItem(j, "frontier_by_hw");
    cr_expect(cJSON_IsArray(cJSON_GetObjectItem(byhw, "l4")));
    cr_expect(cJSON_IsArray(cJSON_GetObjectItem(byhw, "h100-sxm")));
    cJSON_Delete(j);
}

/* The paper fidelity on a small grid: continuous device counts, the cheapest point per
 * latency budget, details for the points it keeps. */
Test(cli_plan, paper_fidelity_json)
{
    cJSON *j = plan_json(PAPER);
    cr_expect_str_eq(str(j, "fidelity"), "paper");
    const cJSON *f = cJSON_GetObjectItem(j, "frontier");
    cr_assert_gt(cJSON_GetArraySize(f), 10);
    const cJSON *p = cJSON_GetArrayItem(f, 0);
    num(p, "ttft_ms");
    cr_expect_gt(num(p, "devices"), 1);
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(p, "ep")));
    cr_expect(cJSON_IsObject(cJSON_GetObjectItem(p, "terms_ms")));
    cr_expect_eq(num(j, "evaluated"), 60 * 60);
    cJSON_Delete(j);
}

/* The answers the issue names, through their flags. */
Test(cli_plan, answers_to_the_capacity_questions)
{
    cJSON *j = plan_json(SMALL " --min-speed 100 --max-cost 0.5 --demand 20000 --tpot-slo 9 "
                               "--ttft-slo 2000");
    const cJSON *a = cJSON_GetObjectItem(j, "cheapest_at_min_speed");
    cr_expect_geq(num(a, "tokens_per_s_per_user"), 100);
    const cJSON *b = cJSON_GetObjectItem(j, "fastest_at_max_cost");
    cr_expect_leq(num(b, "cost_usd_per_mtok_output"), 0.5);
    const cJSON *c = cJSON_GetObjectItem(j, "fewest_devices_for_demand");
    cr_expect_leq(num(c, "tpot_ms"), 9);
    cr_expect_leq(num(c, "ttft_ms"), 2000);
    cr_expect_geq(num(c, "replicas") * num(c, "batch") * num(c, "tokens_per_s_per_user"),
                  20000 * (1 - 1e-9));
    cr_expect(tu_close(num(c, "total_devices"), num(c, "replicas") * num(c, "devices"), 1e-12));
    cr_expect_gt(num(c, "usd_per_month"), 0);
    cJSON_Delete(j);
}

Test(cli_plan, the_same_request_prints_the_same_bytes)
{
    const char *cmds[] = {SMALL " --json --no-elapsed", PAPER " --json --no-elapsed",
                          SMALL " --csv", SMALL};
    for (size_t i = 0; i < 4; i++) {
        char *a = NULL, *b = NULL;
        cr_expect_eq(tu_run(cmds[i], &a, NULL), 0);
        cr_expect_eq(tu_run(cmds[i], &b, NULL), 0);
        cr_expect_str_eq(a, b, "%s", cmds[i]);
        if (i < 2)
            cr_expect(strstr(a, "elapsed_ms") == NULL);
        free(a);
        free(b);
    }
}

Test(cli_plan, table_marks_the_recommended_point_and_csv_lists_every_frontier)
{
    char *out = NULL;
    cr_assert_eq(tu_run(SMALL, &out, NULL), 0);
    cr_expect(strstr(out, "\n=> ") != NULL, "%s", out);
    cr_expect(strstr(out, "=> recommended:") != NULL, "%s", out);
    cr_expect(strstr(out, "tok/s/user") != NULL);
    free(out);
    cr_assert_eq(tu_run(SMALL " --csv", &out, NULL), 0);
    cr_expect(strncmp(out, "hw,on_overall_frontier,recommended,devices,tp,pp,", 49) == 0, "%s",
              out);
    int rec = 0;
    for (char *s = out; (s = strstr(s, ",true,true,")); s++)
        rec++;
    cr_expect_eq(rec, 1, "one recommended row: %s", out);
    free(out);
}

static bool starts_with_file(const char *path, const char *magic, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    char buf[64] = {0};
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    for (size_t i = 0; i + n <= got; i++)
        if (memcmp(buf + i, magic, n) == 0)
            return true;
    return false;
}

/* gnuplot draws a PNG or an SVG; the table says where; a bad name is a usage error. */
Test(cli_plan, plot_png_and_svg)
{
    char *dirfile = tu_write("keep", "");
    char dir[600];
    snprintf(dir, sizeof dir, "%s", dirfile);
    *strrchr(dir, '/') = '\0';
    const char *ext[] = {"png", "svg"};
    const char *magic[] = {"\x89PNG\r\n", "<svg"};
    for (int i = 0; i < 2; i++) {
        char path[700], cmd[1024];
        snprintf(path, sizeof path, "%s/frontier.%s", dir, ext[i]);
        snprintf(cmd, sizeof cmd, SMALL " --plot '%s'", path);
        char *out = NULL, *err = NULL;
        int rc = tu_run(cmd, &out, &err);
        cr_expect_eq(rc, 0, "%s: %s", cmd, err);
        cr_expect(strstr(out, "plot: ") != NULL);
        cr_expect(starts_with_file(path, magic[i], strlen(magic[i])), "%s is not a %s", path,
                  ext[i]);
        remove(path);
        free(out);
        free(err);
    }
    char *out = NULL, *err = NULL;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, SMALL " --plot '%s/frontier.jpg'", dir);
    cr_expect_eq(tu_run(cmd, &out, &err), 2);
    cr_expect(strstr(err, "frontier.jpg' must name a .png or .svg file") != NULL, "%s", err);
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, SMALL " --plot '%s/no/such/dir/frontier.png'", dir);
    cr_expect_eq(tu_run(cmd, &out, &err), 1);
    cr_expect(strstr(err, "/no/such/dir: cannot write there: No such file or directory") != NULL,
              "%s", err);
    free(out);
    free(err);
    tu_discard(dirfile);
}

static void expect_error(const char *args, int code, const char *needle)
{
    tu_expect_error(args, code, needle, false);
}

Test(cli_plan, bad_requests_say_what_is_wrong)
{
    expect_error("plan --model llama-70b --hw h100-sxm --input-tokens 1 --output-tokens 1", 2,
                 "unknown model 'llama-70b' (did you mean");
    expect_error("plan --model llama-3.1-70b --hw h100 --input-tokens 1 --output-tokens 1", 2,
                 "unknown hardware 'h100' (did you mean");
    expect_error("plan --hw h100-sxm", 2, "missing --model");
    expect_error(SMALL " --fidelity exact", 2, "--fidelity: expected paper or deploy");
    expect_error(SMALL " --weights fp7", 2, "--weights");
    expect_error(SMALL " --spec-alpha 0.7", 2, "--spec-alpha needs --spec-draft");
    expect_error(PAPER " --ttft-slo 500", 2, "no TTFT");
    expect_error(SMALL " --min-speed -3", 2, "--min-speed");
}

/* Nothing qualifies: exit 1 and the constraint that removed everything, with the margin. */
Test(cli_plan, an_empty_frontier_says_which_constraint_and_by_how_much)
{
    char *out = NULL, *err = NULL;
    int rc = tu_run(SMALL " --min-speed 5000", &out, &err);
    cr_expect_eq(rc, 1, "%s", err);
    cr_expect(strstr(err, "infersim: error: ") == err, "%s", err);
    cr_expect(strstr(err, "5000") != NULL && strstr(err, "tokens/s") != NULL, "%s", err);
    cr_expect(strstr(out, "no frontier:") != NULL, "%s", out);
    free(out);
    free(err);
    rc = tu_run(SMALL " --tpot-slo 40 --min-speed 20", &out, &err);
    cr_expect_eq(rc, 0, "compatible constraints: %s", err);
    free(out);
    free(err);
    /* the speed can be met, the cost not with it */
    rc = tu_run(SMALL " --min-speed 250 --max-cost 0.01", &out, &err);
    cr_expect_eq(rc, 1, "%s", err);
    cr_expect(strstr(err, "max_cost") != NULL || strstr(err, "$") != NULL, "%s", err);
    free(out);
    free(err);
    /* neither with the other, and the speed not even alone: named, not "each can be met" */
    rc = tu_run(SMALL " --min-speed 400 --max-cost 0.01", &out, &err);
    cr_expect_eq(rc, 1, "%s", err);
    cr_expect(strstr(err, "tokens/s per user >= 400") != NULL, "%s", err);
    free(out);
    free(err);
    /* a TPOT SLO that forbids the minimum speed outright is a contradiction in the request */
    expect_error(SMALL " --tpot-slo 10 --min-speed 200", 2, "contradictory constraints");
}

/* A context longer than the model's empties the plan in either fidelity: exit 1 and both
 * numbers. */
Test(cli_plan, a_context_longer_than_the_models_says_so)
{
    static const char *const want = "infersim: error: no configuration is feasible: 32000 in + "
                                    "1000 out = 33000 tokens of context exceed Llama 2 7B's 4096\n";
    static const char *const fidelities[] = {"deploy", "paper"};
    for (size_t i = 0; i < 2; i++) {
        char args[300], *out = NULL, *err = NULL;
        snprintf(args, sizeof args,
                 "plan --model llama-2-7b --hw h100-sxm --input-tokens 32000 --output-tokens 1000 "
                 "--fidelity %s",
                 fidelities[i]);
        cr_expect_eq(tu_run(args, &out, &err), 1, "%s", err);
        cr_expect_str_eq(err, want);
        cr_expect(strstr(out, "no frontier: no configuration is feasible: 32000 in") != NULL, "%s",
                  out);
        free(out);
        free(err);
    }
}
