/* Calibration and validation: the least-squares fits, names in measured data matched to
 * catalog entries, profiles' fitted sections (loaded, applied per engine, overridden by
 * what-ifs), and validation against measured serving rows: parsing with file:line:column,
 * rows that cannot be predicted set aside with the reason, a fit that recovers known
 * parameters from rows made with them, and fits written into a profile and read back; and
 * validation against the engine runs the planner's own frontier points. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reports/dataset.h"
#include "tests/testutil.h"

/* ---- least squares ------------------------------------------------------------------------ */

Test(fit, a_line_through_exact_points)
{
    double x[] = {0, 1, 2, 5}, y[4], a = 0, b = 0;
    for (int i = 0; i < 4; i++)
        y[i] = 3 + 2 * x[i];
    cr_assert_eq(isim_fit_line(x, y, 4, &a, &b, NULL), ISIM_OK);
    cr_expect(fabs(a - 3) < 1e-12 && fabs(b - 2) < 1e-12, "%g + %g x", a, b);
    isim_error e = {0};
    cr_expect_eq(isim_fit_line(x, y, 1, &a, &b, &e), ISIM_EINVAL);
}

typedef struct {
    const double *x, *y;
    size_t n;
} decay;

static void decay_residuals(const double *p, double *r, void *ctx)
{
    const decay *d = ctx;
    for (size_t i = 0; i < d->n; i++)
        r[i] = p[0] * exp(-p[1] * d->x[i]) - d->y[i];
}

/* y = 2.5 exp(-0.4 x) from a start a factor of 2.5 off in both parameters */
Test(fit, positive_parameters_recovered)
{
    double x[12], y[12];
    for (int i = 0; i < 12; i++) {
        x[i] = 0.5 * i;
        y[i] = 2.5 * exp(-0.4 * x[i]);
    }
    decay d = {x, y, 12};
    double p[2] = {1, 1}, rms = 1;
    isim_error e = {0};
    cr_assert_eq(isim_fit_positive(2, p, 12, decay_residuals, &d, &rms, &e), ISIM_OK, "%s",
                 e.message);
    cr_expect(fabs(p[0] - 2.5) < 1e-6 && fabs(p[1] - 0.4) < 1e-6, "%g %g", p[0], p[1]);
    cr_expect(rms < 1e-9);
    /* refused: a start that is not positive, fewer residuals than parameters */
    double bad[2] = {-1, 1};
    cr_expect_eq(isim_fit_positive(2, bad, 12, decay_residuals, &d, NULL, &e), ISIM_EINVAL);
    cr_expect_eq(isim_fit_positive(2, p, 1, decay_residuals, &d, NULL, &e), ISIM_EINVAL);
}

/* ---- names ---------------------------------------------------------------------------------- */

Test(catalog, datasets_names_find_catalog_entries)
{
    char id[64];
    isim_error e = {0};
    cr_expect_eq(isim_catalog_find(ISIM_DATA_DIR, "hw", "H100_SXM", id, sizeof id, &e), ISIM_OK);
    cr_expect_str_eq(id, "h100-sxm");
    cr_expect_eq(
        isim_catalog_find(ISIM_DATA_DIR, "model", "nvidia/Qwen3-32B-NVFP4", id, sizeof id, &e),
        ISIM_OK);
    cr_expect_str_eq(id, "qwen3-32b");
    cr_expect_eq(isim_catalog_find(ISIM_DATA_DIR, "model", "llama-3.1-8b", id, sizeof id, &e),
                 ISIM_OK, "an id is its own name");
    cr_expect_eq(isim_catalog_find(ISIM_DATA_DIR, "model", "no/such-model", id, sizeof id, &e),
                 ISIM_ENOTFOUND);
}

/* ---- fitted sections ------------------------------------------------------------------------ */

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}

static double deploy_tpot(const isim_hw *h, const char *backend, isim_status *st, isim_error *e)
{
    isim_model *m = tu_model("llama-3.1-70b");
    isim_query q;
    isim_query_init(&q);
    q.fidelity = ISIM_DEPLOY;
    q.devices = 4;
    q.tp = 4;
    q.batch = 16;
    q.input_tokens = 1024;
    q.output_tokens = 256;
    q.weights = ISIM_FP8;
    q.backend = backend;
    isim_result r;
    *st = isim_predict(m, h, &q, &r, e);
    isim_model_free(m);
    return r.tpot_s;
}

Test(fitted, the_all_fit_applies_at_load_and_an_engine_fit_when_named)
{
    isim_hw *h = NULL;
    isim_error e = {0};
    cr_assert_eq(isim_catalog_hw(ISIM_DATA_DIR, "h100-sxm", &h, &e), ISIM_OK, "%s", e.message);
    cr_assert_geq(h->n_fits, 2);
    cr_expect_str_eq(h->fits[0].backend, "all");
    cr_expect_eq(h->eff_hbm, h->fits[0].eff_hbm);
    cr_expect_eq(h->step_overhead_s, h->fits[0].step_overhead_s);
    /* the profile's own values are kept */
    isim_hw *own = tu_hw("h100-sxm");
    cr_expect_eq(own->eff_hbm, h->unfitted.eff_hbm);
    cr_expect_neq(own->eff_hbm, h->eff_hbm);
    /* naming an engine is the same as applying its fit */
    const isim_hw_fit *v = isim_hw_fit_for(h, "vllm");
    cr_assert_not_null(v);
    isim_hw with;
    isim_hw_apply_fit(h, v, &with);
    isim_status st;
    double named = deploy_tpot(h, "vllm", &st, &e), applied = deploy_tpot(&with, NULL, &st, &e);
    cr_expect_eq(st, ISIM_OK);
    cr_expect(tu_close(named, applied, 1e-12), "%g vs %g", named, applied);
    cr_expect_neq(named, deploy_tpot(h, NULL, &st, &e));
    /* an engine the profile was not fitted for is refused with the ones it was */
    deploy_tpot(h, "tgi", &st, &e);
    cr_expect_neq(st, ISIM_OK);
    cr_expect(strstr(e.message, "tgi") && strstr(e.message, "vllm"), "%s", e.message);
    isim_hw_free(own);
    isim_hw_free(h);
}

Test(fitted, a_what_if_wins_over_the_fit)
{
    char path[1024];
    cr_assert_eq(isim_catalog_path(ISIM_DATA_DIR, "hw", "h100-sxm", path, sizeof path, NULL),
                 ISIM_OK);
    isim_override ov = {.path = "efficiency.hbm",
                        .value = "0.5",
                        .source = "what-if",
                        .file = "t.yaml",
                        .line = 1,
                        .column = 1};
    isim_hw *h = NULL;
    isim_error e = {0};
    cr_assert_eq(isim_hw_load_with(path, &ov, 1, &h, &e), ISIM_OK, "%s", e.message);
    cr_expect_eq(h->eff_hbm, 0.5);
    isim_hw with;
    isim_hw_apply_fit(h, isim_hw_fit_for(h, "trtllm"), &with);
    cr_expect_eq(with.eff_hbm, 0.5);
    cr_expect_eq(with.step_overhead_s, isim_hw_fit_for(h, "trtllm")->step_overhead_s);
    isim_hw_free(h);
}

Test(fitted, a_section_without_all_is_refused_where_it_is)
{
    char path[1024];
    cr_assert_eq(isim_catalog_path(ISIM_DATA_DIR, "hw", "h100-sxm", path, sizeof path, NULL),
                 ISIM_OK);
    char *text = read_text(path);
    char *bad = tu_replace(text, "    all: {", "    every: {");
    char *p = tu_write("h.yaml", bad);
    isim_hw *h = NULL;
    isim_error e = {0};
    cr_expect_neq(isim_hw_load(p, &h, &e), ISIM_OK);
    cr_expect_null(h);
    cr_expect(strstr(e.message, "'all'") != NULL, "%s", e.message);
    cr_expect_gt(e.line, 1);
    tu_discard(p);
    free(bad);
    free(text);
}

/* ---- measured serving rows ------------------------------------------------------------------ */

#define HEADER                                                                                     \
    "id,silicon_data_source,backend,backend_version,model_path,system,precision,mode,isl,osl,"     \
    "gemm_quant_mode,moe_quant_mode,batch_size,tp_size,pp_size,attention_dp_size,moe_tp_size,"     \
    "moe_ep_size,prefill_batch_size,prefill_num_workers,prefill_tp_size,prefill_pp_size,"          \
    "prefill_attention_dp_size,prefill_moe_tp_size,prefill_moe_ep_size,decode_batch_size,"         \
    "decode_num_workers,decode_tp_size,decode_pp_size,decode_attention_dp_size,"                   \
    "decode_moe_tp_size,decode_moe_ep_size,silicon_ttft_ms,silicon_tpot_ms\n"

/* An aggregated row of Qwen3-32B in fp8 on H100 under vLLM. */
static int agg_row(char *buf, size_t n, const char *id, const char *model, int isl, int osl,
                   int conc, int tp, double ttft_ms, double tpot_ms)
{
    return snprintf(buf, n,
                    "%s,source_file=test.csv; silicon_concurrency=%d,vllm,0.1,%s,h100_sxm,fp8,agg,"
                    "%d,%d,fp8,,%d,%d,1,1,1,1,,,,,,,,,,,,,,,%g,%g\n",
                    id, conc, model, isl, osl, conc, tp, ttft_ms, tpot_ms);
}

/* A temporary data directory with copies of the profile and model the rows need. */
static void make_data_dir(char *dir, size_t n)
{
    snprintf(dir, n, "%s/validate-data-%d", ISIM_TEST_OUT_DIR, (int)getpid());
    char sub[1200], cmd[4096];
    snprintf(
        cmd, sizeof cmd,
        "rm -rf '%s' && mkdir -p '%s/hw-profiles' '%s/models' && cp '%s/hw-profiles/h100-sxm.yaml' "
        "'%s/hw-profiles/' && cp '%s/models/qwen3-32b.yaml' '%s/models/'",
        dir, dir, dir, ISIM_DATA_DIR, dir, ISIM_DATA_DIR, dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    snprintf(sub, sizeof sub, "%s/hw-profiles", dir);
    struct stat sb;
    cr_assert_eq(stat(sub, &sb), 0);
}

static void remove_dir(const char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

static isim_dataset *load_text(const char *text, const char *data_dir, isim_status *st,
                               isim_error *e, char **path)
{
    *path = tu_write("rows.csv", text);
    isim_dataset *d = NULL;
    *st = isim_dataset_load(*path, data_dir, &d, e);
    return d;
}

Test(dataset, a_malformed_number_is_refused_at_its_line_and_column)
{
    char text[4096], row[512];
    strcpy(text, HEADER);
    agg_row(row, sizeof row, "a", "Qwen/Qwen3-32B", 1024, 128, 4, 1, 100, 10);
    strcat(text, row);
    agg_row(row, sizeof row, "b", "Qwen/Qwen3-32B", 1024, 128, 8, 1, 100, 10);
    char *bad = tu_replace(row, ",100,10\n", ",100,ten\n");
    strcat(text, bad);
    isim_status st;
    isim_error e = {0};
    char *path;
    isim_dataset *d = load_text(text, ISIM_DATA_DIR, &st, &e, &path);
    cr_expect_null(d);
    cr_expect_eq(st, ISIM_ESCHEMA);
    cr_expect_str_eq(e.file, path);
    cr_expect_eq(e.line, 3);
    cr_expect_eq(e.column, 34, "the 34th column, silicon_tpot_ms: %d", e.column);
    cr_expect(strstr(e.message, "silicon_tpot_ms") && strstr(e.message, "'ten'"), "%s", e.message);
    tu_discard(path);
    free(bad);
    /* a header without a needed column */
    char *nohead = tu_replace(HEADER, ",silicon_tpot_ms", "");
    d = load_text(nohead, ISIM_DATA_DIR, &st, &e, &path);
    cr_expect_neq(st, ISIM_OK);
    cr_expect_eq(e.line, 1);
    cr_expect(strstr(e.message, "silicon_tpot_ms") != NULL, "%s", e.message);
    tu_discard(path);
    free(nohead);
}

static const isim_ds_row *row_of(const isim_dataset *d, const char *id)
{
    for (size_t i = 0; i < d->n_rows; i++)
        if (strcmp(d->rows[i].id, id) == 0)
            return &d->rows[i];
    cr_assert_fail("no row %s", id);
    return NULL;
}

Test(dataset, rows_that_cannot_be_predicted_say_why)
{
    char text[8192], row[512];
    strcpy(text, HEADER);
    agg_row(row, sizeof row, "ok", "Qwen/Qwen3-32B", 1024, 128, 4, 1, 100, 10);
    strcat(text, row);
    agg_row(row, sizeof row, "unknown", "acme/NoSuchModel-7B", 1024, 128, 4, 1, 100, 10);
    strcat(text, row);
    /* the same measurement twice under two ids: kept once */
    agg_row(row, sizeof row, "twice-1", "Qwen/Qwen3-32B", 2048, 128, 8, 2, 150, 12);
    strcat(text, row);
    agg_row(row, sizeof row, "twice-2", "Qwen/Qwen3-32B", 2048, 128, 8, 2, 150, 12);
    strcat(text, row);
    /* one configuration measured twice with results far apart: neither is trusted */
    agg_row(row, sizeof row, "amb-1", "Qwen/Qwen3-32B", 1024, 1024, 16, 4, 90, 8);
    strcat(text, row);
    agg_row(row, sizeof row, "amb-2", "Qwen/Qwen3-32B", 1024, 1024, 16, 4, 95, 15);
    strcat(text, row);
    /* amb-2's measurement again in another source: as ambiguous as amb-2 */
    strcat(text, "amb-copy,source_file=other.csv; silicon_concurrency=16,vllm,0.1,Qwen/Qwen3-32B,"
                 "h100_sxm,fp8,agg,1024,1024,fp8,,16,4,1,1,1,1,,,,,,,,,,,,,,,95,15\n");
    /* one run written under two model names (R1's runs appear as V3's): kept once */
    agg_row(row, sizeof row, "name-1", "Qwen/Qwen3-32B", 4096, 256, 2, 2, 210, 9.5);
    strcat(text, row);
    agg_row(row, sizeof row, "name-2", "meta-llama/Llama-3.1-8B-Instruct", 4096, 256, 2, 2, 210,
            9.5);
    strcat(text, row);
    isim_status st;
    isim_error e = {0};
    char *path;
    isim_dataset *d = load_text(text, ISIM_DATA_DIR, &st, &e, &path);
    cr_assert_eq(st, ISIM_OK, "%s", e.message);
    cr_expect_eq(d->n_rows, 9);
    cr_expect_str_eq(row_of(d, "ok")->skip, "");
    cr_expect(strstr(row_of(d, "unknown")->skip, "acme/NoSuchModel-7B") != NULL, "%s",
              row_of(d, "unknown")->skip);
    cr_expect((row_of(d, "twice-1")->skip[0] != 0) + (row_of(d, "twice-2")->skip[0] != 0) == 1);
    cr_expect(row_of(d, "amb-1")->skip[0] && row_of(d, "amb-2")->skip[0]);
    cr_expect(strstr(row_of(d, "amb-copy")->skip, "speculative") != NULL, "%s",
              row_of(d, "amb-copy")->skip);
    cr_expect(row_of(d, "name-1")->skip[0] == 0, "%s", row_of(d, "name-1")->skip);
    cr_expect(strstr(row_of(d, "name-2")->skip, "written again") != NULL, "%s",
              row_of(d, "name-2")->skip);
    cr_expect_eq(row_of(d, "ok")->concurrency, 4);
    cr_expect_eq(row_of(d, "ok")->agg.tp, 1);
    cr_expect_eq(row_of(d, "ok")->weights, ISIM_FP8);
    isim_dataset_free(d);
    tu_discard(path);
}

/* Rows made with known parameters: the fit finds parameters that predict them again, and
 * writes them into the profile, which reads them back and writes the same text again. */
Test(dataset, a_fit_recovers_rows_made_with_known_parameters, .timeout = 120)
{
    char dir[1024];
    make_data_dir(dir, sizeof dir);
    static const int lens[][2] = {{1024, 128}, {1024, 1024}, {4096, 512}, {2048, 256}};
    static const int concs[] = {1, 4, 16, 64};
    static const int tps[] = {1, 2, 4};
    size_t cap = 64 + sizeof lens / sizeof lens[0] * 4 * 3 * 256;
    char *text = malloc(cap + sizeof HEADER);
    strcpy(text, HEADER);
    size_t used = strlen(text);
    int n = 0;
    for (size_t l = 0; l < 4; l++)
        for (size_t c = 0; c < 4; c++)
            for (size_t t = 0; t < 3; t++) {
                char id[32];
                snprintf(id, sizeof id, "synthetic-%d", n++);
                /* placeholders, distinct (a repeated measurement is set aside) */
                used += (size_t)agg_row(text + used, cap - used, id, "Qwen/Qwen3-32B", lens[l][0],
                                        lens[l][1], concs[c], tps[t], 100 + n, 10 + n);
            }
    isim_status st;
    isim_error e = {0};
    char *path;
    isim_dataset *d = load_text(text, dir, &st, &e, &path);
    cr_assert_eq(st, ISIM_OK, "%s", e.message);
    cr_assert_eq(d->n_hw, 1);
    /* the "measurements": the step model with parameters unlike the profile's */
    isim_hw_fit truth;
    isim_ds_prior(d->hw[0], &truth);
    truth.eff_hbm = 0.6;
    truth.eff_flops = 0.45;
    truth.step_overhead_s = 300e-6;
    truth.request_overhead_s = 20e-3;
    truth.lockstep = 0.3;
    size_t predicted = 0;
    for (size_t i = 0; i < d->n_rows; i++) {
        isim_ds_row *r = &d->rows[i];
        char why[160];
        cr_assert_str_empty(r->skip, "%s: %s", r->id, r->skip);
        cr_assert(isim_ds_predict(d, r, &truth, &r->ttft_s, &r->tpot_s, NULL, why, sizeof why),
                  "%s", why);
        predicted++;
    }
    cr_assert_eq(predicted, 48);
    cr_assert_eq(isim_dataset_fit(d, 2, &e), ISIM_OK, "%s", e.message);
    double worst = 0;
    size_t heldout = 0;
    for (size_t i = 0; i < d->n_rows; i++) {
        const isim_ds_row *r = &d->rows[i];
        worst = fmax(worst, fabs(r->pred_tpot_s / r->tpot_s - 1));
        heldout += !r->train;
        cr_expect_eq(r->train, !isim_ds_heldout(r->id));
    }
    cr_expect(worst < 0.03, "worst TPOT error %.2f%%", 100 * worst);
    cr_expect(heldout > 0 && heldout < d->n_rows);

    /* written into the profile, read back */
    cr_assert_eq(isim_dataset_write_profile(d, 0, "2026-01-01", &e), ISIM_OK, "%s", e.message);
    char *first = read_text(d->hw[0]->path);
    isim_hw *h = NULL;
    cr_assert_eq(isim_hw_load(d->hw[0]->path, &h, &e), ISIM_OK, "%s", e.message);
    const isim_hw_fit *v = isim_hw_fit_for(h, "vllm");
    const isim_ds_fit *fv = NULL;
    for (size_t i = 0; i < d->n_fits; i++)
        if (d->fits[i].own && strcmp(d->fits[i].backend, "vllm") == 0)
            fv = &d->fits[i];
    cr_assert_not_null(v);
    cr_assert_not_null(fv);
    cr_expect(tu_close(v->eff_hbm, fv->p.eff_hbm, 1e-3), "%g vs %g", v->eff_hbm, fv->p.eff_hbm);
    cr_expect(tu_close(v->step_overhead_s, fv->p.step_overhead_s, 1e-3));
    cr_expect(strstr(first, "date: \"2026-01-01\"") != NULL);
    cr_expect(strstr(first, ISIM_DS_SPLIT_RULE) != NULL);
    /* rewriting replaces the section: the same text */
    cr_assert_eq(isim_dataset_write_profile(d, 0, "2026-01-01", &e), ISIM_OK, "%s", e.message);
    char *second = read_text(d->hw[0]->path);
    cr_expect_str_eq(first, second);
    free(first);
    free(second);
    isim_hw_free(h);
    isim_dataset_free(d);
    tu_discard(path);
    free(text);
    remove_dir(dir);
}

/* The command: --json with the fields other programs track. */
Test(dataset, the_command_prints_the_accuracy_as_json, .timeout = 120)
{
    char text[16384], row[512];
    strcpy(text, HEADER);
    int k = 0;
    for (int tp = 1; tp <= 4; tp *= 2)
        for (int conc = 1; conc <= 64; conc *= 4) {
            char id[32];
            snprintf(id, sizeof id, "r%d", k++);
            agg_row(row, sizeof row, id, "Qwen/Qwen3-32B", 1024, 256, conc, tp,
                    60.0 + 10 * conc / tp, 20.0 / tp + 0.1 * conc);
            strcat(text, row);
        }
    char *path = tu_write("rows.csv", text);
    char args[2048], out_dir[1100];
    snprintf(out_dir, sizeof out_dir, "%s/validate-json-%d", ISIM_TEST_OUT_DIR, (int)getpid());
    snprintf(args, sizeof args, "validate --dataset '%s' -o '%s' --json", path, out_dir);
    cJSON *j = tu_run_json(args);
    const cJSON *h = cJSON_GetObjectItem(j, "heldout");
    cr_assert_not_null(h);
    const cJSON *tpot = cJSON_GetObjectItem(h, "tpot");
    cr_assert_not_null(tpot);
    cr_expect(tu_num(tpot, "n") >= 1);
    cr_expect(tu_num(tpot, "median_abs_pct") >= 0);
    cr_expect(tu_num(tpot, "p90_abs_pct") >= tu_num(tpot, "median_abs_pct"));
    cr_expect_not_null(cJSON_GetObjectItem(h, "ttft"));
    cr_expect_not_null(cJSON_GetObjectItem(j, "train"));
    cr_expect(cJSON_IsArray(cJSON_GetObjectItem(j, "by_group")));
    char csv[1200];
    snprintf(csv, sizeof csv, "%s/dataset.csv", out_dir);
    struct stat sb;
    cr_expect_eq(stat(csv, &sb), 0, "%s", csv);
    cJSON_Delete(j);
    tu_discard(path);
    remove_dir(out_dir);
}

/* ---- against the engine ---------------------------------------------------------------- */

/* The planner's frontier points run on the engine are the planner's own: every one of batch
 * up to the grid's largest, each with its TPOT and TTFT as `infersim plan` prints them, and
 * a measurement of each. */
Test(engine_validation, runs_the_planners_frontier_points, .timeout = 300)
{
    char out_dir[1100], args[2048];
    snprintf(out_dir, sizeof out_dir, "%s/validate-engine-%d", ISIM_TEST_OUT_DIR, (int)getpid());
    snprintf(args, sizeof args,
             "validate --engine cpu --model stories260k --profile cpu-server --dtype fp32 "
             "--no-mpi --batches 1,4 --contexts 8 --prompts 16 --steps 3 --rounds 2 "
             "--threads 1 --frontier 32,4 -o '%s' --json",
             out_dir);
    cJSON *j = tu_run_json(args);
    cr_assert_not_null(j);
    /* the bandwidth streamed around the points, against the profile's (cpu-server: 614.4
     * GB/s at efficiency.hbm 0.8) */
    const cJSON *bw = cJSON_GetObjectItem(j, "bandwidth_gb_per_s");
    cr_assert_not_null(bw);
    cr_expect(tu_close(tu_num(bw, "profile"), 614.4 * 0.8, 1e-9), "%g", tu_num(bw, "profile"));
    cr_expect_gt(tu_num(bw, "run_min"), 0);
    cr_expect_leq(tu_num(bw, "run_min"), tu_num(bw, "run_median"));
    cr_expect_leq(tu_num(bw, "run_median"), tu_num(bw, "run_max"));
    /* and the bf16 peak read beside them, against the profile's 229.4 TFLOP/s */
    const cJSON *pk = cJSON_GetObjectItem(j, "bf16_peak_tflops");
    cr_assert_not_null(pk);
    cr_expect(tu_close(tu_num(pk, "profile"), 229.4, 1e-9), "%g", tu_num(pk, "profile"));
    cr_expect_gt(tu_num(pk, "run_min"), 0);
    cr_expect_leq(tu_num(pk, "run_min"), tu_num(pk, "run_median"));
    cr_expect_leq(tu_num(pk, "run_median"), tu_num(pk, "run_max"));
    cJSON *plan = tu_run_json("plan --model stories260k --hw cpu-server --input-tokens 32 "
                              "--output-tokens 4 --max-devices 1 --weights fp32 --kv bf16 "
                              "--json --no-elapsed");
    cr_assert_not_null(plan);
    /* the planner's points of batch <= 4 */
    double want_tpot[64] = {0}, want_ttft[64] = {0};
    int n_want = 0;
    const cJSON *pt;
    cJSON_ArrayForEach(pt, cJSON_GetObjectItem(plan, "frontier"))
    {
        int b = (int)tu_num(pt, "batch");
        if (b <= 4) {
            want_tpot[b] = tu_num(pt, "tpot_ms");
            want_ttft[b] = tu_num(pt, "ttft_ms");
            n_want++;
        }
    }
    cr_assert(n_want >= 2, "the frontier has %d points of batch <= 4", n_want);
    cr_expect_eq((int)tu_num(j, "frontier_points"), n_want);
    bool tpot_group = false;
    const cJSON *g;
    cJSON_ArrayForEach(g, cJSON_GetObjectItem(j, "groups"))
    {
        const cJSON *name = cJSON_GetObjectItem(g, "group");
        if (cJSON_IsString(name) && strcmp(name->valuestring, "frontier TPOT") == 0) {
            tpot_group = true;
            cr_expect_eq((int)tu_num(g, "n"), n_want);
        }
    }
    cr_expect(tpot_group);
    /* the CSV: one decode and one prefill row per point, predicted = the planner's figure */
    char csv[1200], line[2048];
    snprintf(csv, sizeof csv, "%s/validation.csv", out_dir);
    FILE *f = fopen(csv, "r");
    cr_assert_not_null(f, "%s", csv);
    int rows = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, ",frontier,"))
            continue;
        char kind[16];
        int batch = 0;
        double meas = 0, pred = 0;
        cr_assert_eq(sscanf(line, "%15[^,],%*[^,],%*[^,],%*d,%*d,%d,%*d,%lf,%lf", kind, &batch,
                            &meas, &pred),
                     4, "%s", line);
        cr_assert(batch >= 1 && batch <= 4, "%s", line);
        double want = strcmp(kind, "decode") == 0 ? want_tpot[batch] : want_ttft[batch];
        cr_expect(tu_close(pred, want, 1e-4), "%s: planner %g ms", line, want);
        cr_expect(meas > 0, "%s", line);
        cr_expect(strstr(line, ",32,4") != NULL, "%s", line);
        rows++;
    }
    fclose(f);
    cr_expect_eq(rows, 2 * n_want);
    /* the engine against itself: each one-process decode grid point (batch 1 and 4 at
     * context 8) has its two halves of rounds, one round each here, and its time, the mean
     * of its middle rounds, is with two rounds the mean of the two */
    f = fopen(csv, "r");
    cr_assert_not_null(f, "%s", csv);
    int halves = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "decode,", 7) != 0 || !strstr(line, ",grid,"))
            continue;
        const char *c = strstr(line, ",grid,");
        double meas = 0, h0 = 0, h1 = 0;
        cr_assert_eq(sscanf(line, "%*[^,],%*[^,],%*[^,],%*d,%*d,%*d,%*d,%lf", &meas), 1, "%s",
                     line);
        cr_assert_eq(sscanf(c, ",grid,,,%lf,%lf", &h0, &h1), 2, "%s", line);
        cr_expect(h0 > 0 && h1 > 0, "%s", line);
        cr_expect(tu_close(meas, (h0 + h1) / 2, 1e-4), "%s", line);
        halves++;
    }
    fclose(f);
    cr_expect_eq(halves, 2);
    const cJSON *rep = cJSON_GetObjectItem(j, "repeatability");
    cr_assert_not_null(rep);
    cr_expect_eq((int)tu_num(rep, "n"), 2);
    cr_expect_gt(tu_num(rep, "minutes_apart"), 0);
    cr_expect_geq(tu_num(rep, "median_abs_pct"), 0);
    cr_expect_geq(tu_num(rep, "p90_abs_pct"), tu_num(rep, "median_abs_pct"));
    cJSON_Delete(plan);
    cJSON_Delete(j);
    remove_dir(out_dir);
}
