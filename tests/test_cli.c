/* The infersim command line: the paper's reference values through the JSON output, exit
 * codes 0/1/2 with one-line errors, help and version, determinism. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/testutil.h"

static cJSON *predict_json(const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "predict %s --json", args);
    return tu_run_json(cmd);
}

static double field(const cJSON *j, const char *key)
{
    return tu_num(j, key);
}

/* paper-model.md §5 through the CLI: Llama 3 70B on the paper's H100, 8 devices, no PP. */
Test(cli, paper_reference_values_through_json)
{
    static const struct {
        const char *args;
        double ms;
    } ref[] = {{"--batch 1", 10.76},
               {"--batch 64", 12.22},
               {"--batch 256", 16.69},
               {"--batch 1 --weights fp8", 7.25}};
    for (size_t i = 0; i < 4; i++) {
        char args[512];
        snprintf(args, sizeof args,
                 "--fidelity paper --model llama-3.1-70b --hw epoch-h100 --devices 8 --pp 1 "
                 "--input-tokens 0 --output-tokens 1 %s",
                 ref[i].args);
        cJSON *j = predict_json(args);
        double ms = field(j, "tpot_ms");
        cr_expect(tu_close(ms, ref[i].ms, 0.01), "%s: %.4f ms vs %.2f", ref[i].args, ms, ref[i].ms);
        cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(j, "feasible")));
        cr_expect(tu_close(field(j, "tokens_per_s_per_user"), 1000 / ms, 1e-5));
        const cJSON *terms = cJSON_GetObjectItem(j, "terms_ms");
        cr_assert(cJSON_IsObject(terms));
        double sum = field(terms, "fixed") + field(terms, "network") +
                     fmax(field(terms, "arithmetic"), field(terms, "hbm"));
        cr_expect(tu_close(sum, ms, 1e-4), "terms %.4f vs total %.4f", sum, ms);
        cJSON_Delete(j);
    }
}

Test(cli, deploy_json_has_every_field_with_units)
{
    cJSON *j = predict_json("--model llama-3.1-70b --hw h100-sxm --devices 8 --batch 32 "
                            "--input-tokens 1024 --output-tokens 1024");
    static const char *const keys[] = {"tpot_ms",
                                       "ttft_ms",
                                       "tokens_per_s_per_user",
                                       "tokens_per_s_per_device",
                                       "cost_usd_per_mtok_output",
                                       "cost_usd_per_mtok_input",
                                       "energy_j_per_token_output",
                                       "tp",
                                       "pp",
                                       "ep",
                                       "devices"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        field(j, keys[i]);
    const cJSON *mem = cJSON_GetObjectItem(j, "memory_bytes_per_device");
    static const char *const mkeys[] = {"weights", "kv_cache", "activations",
                                        "reserve", "total",    "capacity"};
    for (size_t i = 0; i < 6; i++)
        field(mem, mkeys[i]);
    const cJSON *terms = cJSON_GetObjectItem(j, "terms_ms");
    static const char *const tkeys[] = {"arithmetic", "hbm", "network", "fixed"};
    for (size_t i = 0; i < 4; i++)
        field(terms, tkeys[i]);
    cr_expect_str_eq(cJSON_GetObjectItem(j, "fidelity")->valuestring, "deploy");
    cr_expect_str_eq(cJSON_GetObjectItem(j, "reason")->valuestring, "");
    cJSON_Delete(j);
}

Test(cli, infeasible_is_reported_not_an_error)
{
    cJSON *j = predict_json("--model llama-3.1-405b --hw h100-sxm --devices 8 --batch 1 "
                            "--input-tokens 128 --output-tokens 128");
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(j, "feasible")));
    cr_expect_str_eq(cJSON_GetObjectItem(j, "reason")->valuestring, "memory");
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(j, "tpot_ms")));
    cJSON_Delete(j);
}

/* A context longer than the model's is an infeasible configuration like any other: exit 0,
 * the reason and both numbers, in each fidelity and each output. */
Test(cli, a_context_longer_than_the_models_is_infeasible_with_its_reason)
{
    static const char *const fidelities[] = {"deploy", "paper"};
    for (size_t i = 0; i < 2; i++) {
        char args[300];
        snprintf(args, sizeof args,
                 "--model llama-3.1-8b --hw h100-sxm --devices 8 --batch 1 --input-tokens 1000000 "
                 "--output-tokens 1000 --fidelity %s",
                 fidelities[i]);
        cJSON *j = predict_json(args);
        cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(j, "feasible")));
        cr_expect_str_eq(cJSON_GetObjectItem(j, "reason")->valuestring, "context");
        cr_expect_str_eq(cJSON_GetObjectItem(j, "reason_detail")->valuestring,
                         "1000000 in + 1000 out = 1001000 tokens of context exceed Llama 3.1 "
                         "8B's 131072");
        cr_expect(cJSON_IsNull(cJSON_GetObjectItem(j, "tpot_ms")));
        cJSON_Delete(j);
    }
    char *out = NULL, *err = NULL;
    int rc = tu_run("predict --model llama-3.1-8b --hw h100-sxm --devices 8 --batch 1 "
                    "--input-tokens 1000000 --output-tokens 1000",
                    &out, &err);
    cr_expect_eq(rc, 0, "%s", err);
    cr_expect(strstr(out, "  feasible         NO: context longer than the model holds (1000000 "
                          "in + 1000 out = 1001000 tokens of context exceed Llama 3.1 8B's "
                          "131072)\n") != NULL,
              "%s", out);
    free(out);
    free(err);
}

Test(cli, the_same_command_prints_the_same_bytes)
{
    const char *args = "predict --model deepseek-v3 --hw h200 --devices 8 --batch 64 "
                       "--input-tokens 4096 --output-tokens 512 --spec-draft deepseek-v3 --json";
    char *a = NULL, *b = NULL;
    tu_run(args, &a, NULL);
    tu_run(args, &b, NULL);
    cr_expect_str_eq(a, b);
    free(a);
    free(b);
}

static void expect_error(const char *args, int code, const char *needle)
{
    tu_expect_error(args, code, needle, true);
}

#define BASE                                                                                       \
    "predict --model llama-3.1-8b --hw h100-sxm --devices 1 --input-tokens 8 --output-tokens 8"

Test(cli, bad_flags_are_usage_errors)
{
    expect_error(BASE, 2, "missing --batch");
    expect_error(BASE " --batch 1 --batchs 2", 2,
                 "unknown option '--batchs' (did you mean '--batch'?)");
    expect_error(BASE " --batch one", 2, "--batch: expected a number, got 'one'");
    expect_error(BASE " --batch 0", 2, "--batch: 0 is out of range");
    expect_error(BASE " --batch 1 --batch 2", 2, "given twice");
    expect_error(BASE " --batch 1 --weights fp7", 2, "--weights: expected one of");
    expect_error(BASE " --batch 1 --fidelity exact", 2, "--fidelity: expected paper or deploy");
    expect_error(BASE " --batch 1 --tp 2.5", 2, "--tp: expected a whole number");
    expect_error(BASE " --batch 1 --spec-alpha 0.8", 2, "--spec-alpha needs --spec-draft");
    expect_error(BASE " --batch 1 --json --csv", 2, "exclusive");
    expect_error(BASE " --batch 1 --pp-schedule gpipe", 2,
                 "--pp-schedule: expected interleaved or stepwise, got 'gpipe'");
    expect_error("predict --model llama-9 --hw h100-sxm --devices 1 --batch 1 --input-tokens 8 "
                 "--output-tokens 8",
                 2, "unknown model 'llama-9'");
    expect_error("predict --model ../x --hw h100-sxm --devices 1 --batch 1 --input-tokens 8 "
                 "--output-tokens 8",
                 2, "invalid model id");
    expect_error(BASE " --batch 1 --devices 1.5", 2, "given twice");
    expect_error("predict --model llama-3.1-8b --hw h100-sxm --devices 1.5 --batch 1 "
                 "--input-tokens 8 --output-tokens 8",
                 2, "whole devices");
    expect_error("frobnicate", 2, "unknown command 'frobnicate'");
    expect_error("list gpus", 2, "expected 'models', 'hardware' or 'scenarios'");
    expect_error("show model", 2, "expected 'model ID' or 'hw ID'");
}

Test(cli, a_broken_spec_file_is_an_input_error_with_its_place)
{
    char *path = tu_write("broken.yaml", "name: X\nfamily: y\narchitecture:\n  d_model: big\n");
    char dir[600];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    char models[700], cmd[1600];
    snprintf(models, sizeof models, "%s/models", dir);
    mkdir(models, 0700);
    snprintf(cmd, sizeof cmd, "%s/broken.yaml", models);
    cr_assert_eq(rename(path, cmd), 0);
    snprintf(cmd, sizeof cmd, "show model broken --data '%s'", dir);
    char *out = NULL, *err = NULL;
    int rc = tu_run(cmd, &out, &err);
    cr_expect_eq(rc, 1);
    cr_expect(strstr(err, "broken.yaml:4:12: 'architecture.d_model' must be a number, got 'big'"),
              "%s", err);
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, "%s/broken.yaml", models);
    remove(cmd);
    rmdir(models);
    rmdir(dir);
    free(path);
}

Test(cli, help_version_list_and_show)
{
    char *out = NULL, *err = NULL;
    cr_expect_eq(tu_run("--version", &out, NULL), 0);
    cr_expect(strncmp(out, "infersim ", 9) == 0);
    free(out);
    static const char *const helps[] = {"--help",       "predict --help", "list -h",
                                        "show --help",  "plan --help",    "scenario --help",
                                        "report --help"};
    for (size_t i = 0; i < sizeof helps / sizeof *helps; i++) {
        cr_expect_eq(tu_run(helps[i], &out, &err), 0, "%s", helps[i]);
        cr_expect(strstr(out, "usage: infersim") != NULL, "%s", helps[i]);
        free(out);
        free(err);
    }
    cr_expect_eq(tu_run("list models", &out, NULL), 0);
    cr_expect(strstr(out, "deepseek-v3") && strstr(out, "stories260k"));
    free(out);
    cr_expect_eq(tu_run("list hardware", &out, NULL), 0);
    cr_expect(strstr(out, "h100-sxm") && strstr(out, "epoch-h100-zl"));
    free(out);
    cr_expect_eq(tu_run("list scenarios", &out, NULL), 0);
    cr_expect(strstr(out, "\ndefault ") != NULL, "%s", out);
    free(out);
    cr_expect_eq(tu_run("show model deepseek-v3 --json", &out, NULL), 0);
    cJSON *j = cJSON_Parse(out);
    cr_assert_not_null(j);
    const cJSON *d = cJSON_GetObjectItem(j, "derived");
    cr_expect(tu_close(field(d, "kv_bytes_per_token_bf16"), 70272, 1e-9));
    cr_expect(cJSON_GetArraySize(cJSON_GetObjectItem(j, "facts")) >= 20);
    cJSON_Delete(j);
    free(out);
    cr_expect_eq(tu_run("show hw h100-sxm", &out, NULL), 0);
    cr_expect(strstr(out, "memory.capacity_gb") != NULL);
    free(out);
}

Test(cli, csv_has_a_header_and_one_row)
{
    char *out = NULL;
    cr_expect_eq(tu_run(BASE " --batch 4 --csv", &out, NULL), 0);
    int lines = 0;
    for (char *c = out; *c; c++)
        lines += *c == '\n';
    cr_expect_eq(lines, 2);
    cr_expect(strncmp(out, "model,hw,fidelity,devices", 25) == 0);
    cr_expect(strstr(out, "\nllama-3.1-8b,h100-sxm,deploy,1,") != NULL, "%s", out);
    free(out);
}
