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

#include "sim/dataset.h"
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
    cr_expect_eq(e.column, (int)(strstr(bad, ",ten\n") - bad) + 2, "the column of 'ten': %d",
                 e.column);
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
Test(dataset, a_fit_recovers_rows_made_with_known_parameters)
{
    tu_deadline(120);
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
    /* a fit the profile's reader would refuse is not written: the previous profile stays */
    ((isim_ds_fit *)fv)->p.eff_hbm = 0.001;
    cr_assert_neq(isim_dataset_write_profile(d, 0, "2026-01-02", &e), ISIM_OK);
    cr_expect(strstr(e.message, "the fitted profile would not load, so it was not written: ") &&
                  strstr(e.message, "0.001 is out of range"),
              "%s", e.message);
    char *third = read_text(d->hw[0]->path);
    cr_expect_str_eq(third, first);
    free(third);
    free(first);
    free(second);
    isim_hw_free(h);
    isim_dataset_free(d);
    tu_discard(path);
    free(text);
    remove_dir(dir);
}

/* The command: --json with the fields other programs track. */
Test(dataset, the_command_prints_the_accuracy_as_json)
{
    tu_deadline(120);
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

/* ---- the file: columns checked, places given, limits stated ---------------------------- */

/* A row of HEADER's columns that loads: Qwen3-32B in fp8 on H100 under vLLM, aggregated,
 * 4 clients. */
#define DEFAULT_ROW                                                                                \
    "r1,source_file=test.csv; silicon_concurrency=4,vllm,0.1,Qwen/Qwen3-32B,h100_sxm,fp8,agg,"     \
    "1024,128,fp8,,4,1,1,1,1,1,,,,,,,,,,,,,,,100,10"
#define N_COLS 34

/* Field k of a line of fields without quotes. */
static void nth_field(const char *line, size_t k, char *out, size_t n)
{
    for (; k > 0; k--)
        line = strchr(line, ',') + 1;
    snprintf(out, n, "%.*s", (int)strcspn(line, ",\n"), line);
}

static size_t col_index(const char *name)
{
    char f[64];
    for (size_t k = 0; k < N_COLS; k++) {
        nth_field(HEADER, k, f, sizeof f);
        if (strcmp(f, name) == 0)
            return k;
    }
    cr_assert_fail("no column %s", name);
    return 0;
}

/* DEFAULT_ROW with `set` ("column=value" ..., NULL-terminated) replacing values; at[k] (may
 * be NULL): the column, in characters from 1, where field k begins. */
static void make_row(char *buf, size_t n, const char *const *set, int *at)
{
    char defaults[N_COLS][64];
    const char *v[N_COLS];
    for (size_t k = 0; k < N_COLS; k++) {
        nth_field(DEFAULT_ROW, k, defaults[k], sizeof defaults[k]);
        v[k] = defaults[k];
    }
    for (const char *const *s = set; s && *s; s++) {
        const char *eq = strchr(*s, '=');
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(eq - *s), *s);
        v[col_index(name)] = eq + 1;
    }
    size_t used = 0;
    for (size_t k = 0; k < N_COLS; k++) {
        if (at)
            at[k] = (int)used + 1;
        used += (size_t)snprintf(buf + used, n - used, "%s%s", v[k], k + 1 < N_COLS ? "," : "\n");
        cr_assert_lt(used, n);
    }
}

/* The bytes as a file (NULs and all). */
static char *write_bytes(const char *data, size_t n)
{
    char *path = tu_write("rows.csv", "");
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
    return path;
}

/* Loading the bytes is refused with exactly this message at line:column. */
static void expect_refused(const char *data, size_t n, int line, int column, const char *message)
{
    char *path = write_bytes(data, n);
    isim_dataset *d = NULL;
    isim_error e = {0};
    isim_status st = isim_dataset_load(path, ISIM_DATA_DIR, &d, &e);
    cr_expect_neq(st, ISIM_OK, "loaded: %s", message);
    cr_expect_null(d);
    cr_expect_str_eq(e.message, message);
    cr_expect_str_eq(e.file, path);
    cr_expect_eq(e.line, line, "%s: line %d, expected %d", message, e.line, line);
    cr_expect_eq(e.column, column, "%s: column %d, expected %d", message, e.column, column);
    isim_dataset_free(d);
    tu_discard(path);
}

/* HEADER and one row with `set`, refused at line 2 in the column of field `col`. */
static void expect_row_refused(const char *const *set, const char *col, const char *message)
{
    char text[16384], row[8192];
    int at[N_COLS];
    make_row(row, sizeof row, set, at);
    snprintf(text, sizeof text, "%s%s", HEADER, row);
    expect_refused(text, strlen(text), 2, at[col_index(col)], message);
}

/* HEADER and the rows, loaded. */
static isim_dataset *load_rows(const char *rows, char **path)
{
    char *text = malloc(strlen(HEADER) + strlen(rows) + 1);
    strcpy(text, HEADER);
    strcat(text, rows);
    isim_status st;
    isim_error e = {0};
    isim_dataset *d = load_text(text, ISIM_DATA_DIR, &st, &e, path);
    cr_assert_eq(st, ISIM_OK, "%s:%d:%d: %s", e.file, e.line, e.column, e.message);
    free(text);
    return d;
}

typedef struct {
    const char *set[5]; /* NULL-terminated */
    const char *col, *message;
} bad_row;

Test(dataset, integer_columns_are_whole_numbers_in_their_range_or_refused_with_the_limit)
{
    static const bad_row cases[] = {
        {{"batch_size=1048577"},
         "batch_size",
         "column 'batch_size': '1048577' is more than the limit of 1048576"},
        {{"tp_size=4097"}, "tp_size", "column 'tp_size': '4097' is more than the limit of 4096"},
        {{"decode_num_workers=99999999999999999999"},
         "decode_num_workers",
         "column 'decode_num_workers': '99999999999999999999' is more than the limit of 4096"},
        {{"osl=10000001"}, "osl", "column 'osl': '10000001' is more than the limit of 10000000"},
        {{"isl=0"}, "isl", "column 'isl': '0' is less than the minimum of 1"},
        {{"isl="}, "isl", "column 'isl': '' is not a whole number (digits only)"},
        {{"pp_size=-1"}, "pp_size", "column 'pp_size': '-1' is not a whole number (digits only)"},
        {{"moe_ep_size=+2"},
         "moe_ep_size",
         "column 'moe_ep_size': '+2' is not a whole number (digits only)"},
        {{"tp_size=0x10"},
         "tp_size",
         "column 'tp_size': '0x10' is not a whole number (digits only)"},
        {{"batch_size=1e3"},
         "batch_size",
         "column 'batch_size': '1e3' is not a whole number (digits only)"},
        {{"prefill_moe_tp_size=two"},
         "prefill_moe_tp_size",
         "column 'prefill_moe_tp_size': 'two' is not a whole number (digits only)"},
        /* the reproducers (d05): the first value out of range in the file's order */
        {{"batch_size=1000000000", "attention_dp_size=1000000000"},
         "batch_size",
         "column 'batch_size': '1000000000' is more than the limit of 1048576"},
        {{"mode=disagg", "decode_batch_size=1000000000", "decode_num_workers=1000000000",
          "decode_attention_dp_size=1000000000"},
         "decode_batch_size",
         "column 'decode_batch_size': '1000000000' is more than the limit of 1048576"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_row_refused(cases[i].set, cases[i].col, cases[i].message);
    /* at the limits: loaded */
    char row[4096], *path;
    make_row(row, sizeof row,
             (const char *const[]){"batch_size=1048576", "tp_size=4096", "isl=10000000", NULL},
             NULL);
    isim_dataset *d = load_rows(row, &path);
    cr_expect_eq(d->rows[0].raw[5], 1048576);
    cr_expect_eq(d->rows[0].raw[0], 4096);
    cr_expect_eq(d->rows[0].isl, 10000000);
    isim_dataset_free(d);
    tu_discard(path);
}

Test(dataset, products_of_columns_past_the_clients_limit_are_refused)
{
    static const bad_row cases[] = {
        /* the clients of an aggregated row without silicon_concurrency: batch x dp */
        {{"silicon_data_source=source_file=test.csv", "batch_size=1048576",
          "attention_dp_size=4096"},
         "batch_size",
         "column 'batch_size': clients batch_size 1048576 x attention_dp_size 4096 is more than "
         "the limit of 10000000"},
        /* of a disaggregated one: batch x dp x workers */
        {{"mode=disagg", "silicon_data_source=source_file=test.csv", "decode_batch_size=4096",
          "decode_num_workers=4096"},
         "decode_batch_size",
         "column 'decode_batch_size': clients decode_batch_size 4096 x decode_attention_dp_size 1 "
         "x decode_num_workers 4096 is more than the limit of 10000000"},
        /* a disaggregated worker's sequences: batch per rank x ranks */
        {{"mode=disagg", "decode_batch_size=1048576", "decode_attention_dp_size=4096"},
         "decode_batch_size",
         "column 'decode_batch_size': sequences per worker decode_batch_size 1048576 x "
         "decode_attention_dp_size 4096 is more than the limit of 10000000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_row_refused(cases[i].set, cases[i].col, cases[i].message);
    /* at the limit, and a MoE layout whose batch x tp is past an int: loaded */
    char rows[8192], *path;
    make_row(rows, sizeof rows,
             (const char *const[]){"silicon_data_source=source_file=test.csv", "batch_size=2500",
                                   "attention_dp_size=4000", NULL},
             NULL);
    make_row(rows + strlen(rows), sizeof rows - strlen(rows),
             (const char *const[]){"id=moe", "model_path=Qwen/Qwen3-235B-A22B-FP8",
                                   "batch_size=1048576", "tp_size=4096",
                                   "attention_dp_size=", "moe_tp_size=4096", "moe_ep_size=1", NULL},
             NULL);
    isim_dataset *d = load_rows(rows, &path);
    cr_expect_eq(d->rows[0].concurrency, 10000000);
    cr_expect_str_neq(d->rows[1].skip, "");
    isim_dataset_free(d);
    tu_discard(path);
}

Test(dataset, silicon_concurrency_is_a_whole_number_in_its_range)
{
    static const bad_row cases[] = {
        {{"silicon_data_source=source_file=x.csv; silicon_concurrency=abc"},
         "silicon_data_source",
         "column 'silicon_data_source': silicon_concurrency 'abc' is not a whole number (digits "
         "only)"},
        {{"silicon_data_source=source_file=x.csv; silicon_concurrency=0"},
         "silicon_data_source",
         "column 'silicon_data_source': silicon_concurrency '0' is less than the minimum of 1"},
        {{"silicon_data_source=source_file=x.csv; silicon_concurrency=10000001"},
         "silicon_data_source",
         "column 'silicon_data_source': silicon_concurrency '10000001' is more than the limit of "
         "10000000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_row_refused(cases[i].set, cases[i].col, cases[i].message);
    char row[4096], *path;
    make_row(row, sizeof row,
             (const char *const[]){
                 "silicon_data_source=source_file=x.csv; silicon_concurrency=12; note=a", NULL},
             NULL);
    isim_dataset *d = load_rows(row, &path);
    cr_expect_eq(d->rows[0].concurrency, 12);
    cr_expect_str_eq(d->rows[0].source, "source_file=x.csv");
    isim_dataset_free(d);
    tu_discard(path);
}

/* Names past the 64th (models and systems the catalog does not have) take no place from the
 * rows of catalogued ones (d07). */
Test(dataset, rows_of_catalogued_names_are_predicted_after_any_number_of_other_names)
{
    size_t cap = 160 * 300;
    char *rows = malloc(cap), id[32], model[32], system[32];
    size_t used = 0;
    for (int k = 0; k < 70; k++) {
        snprintf(id, sizeof id, "id=m%d", k);
        snprintf(model, sizeof model, "model_path=acme/M%d", k);
        snprintf(system, sizeof system, "system=sys%d", k);
        make_row(rows + used, cap - used, (const char *const[]){id, model, system, NULL}, NULL);
        used += strlen(rows + used);
    }
    make_row(rows + used, cap - used, (const char *const[]){"id=known", NULL}, NULL);
    used += strlen(rows + used);
    make_row(rows + used, cap - used, (const char *const[]){"id=sys", "system=sys5", NULL}, NULL);
    char *path;
    isim_dataset *d = load_rows(rows, &path);
    cr_assert_eq(d->n_rows, 72);
    cr_expect_str_eq(row_of(d, "known")->skip, "");
    cr_expect_str_eq(row_of(d, "m69")->skip, "no model named acme/M69 in the catalog");
    cr_expect_str_eq(row_of(d, "sys")->skip, "no hardware profile named sys5");
    cr_expect_eq(d->n_models, 1);
    cr_expect_eq(d->n_hw, 1);
    isim_dataset_free(d);
    tu_discard(path);
    free(rows);
}

/* No silicon_concurrency and a batch of 0: no clients to predict for. */
Test(dataset, a_row_without_clients_is_set_aside_with_the_reason)
{
    char row[2048], *path;
    make_row(row, sizeof row,
             (const char *const[]){"silicon_data_source=source_file=t.csv", "batch_size=0", NULL},
             NULL);
    isim_dataset *d = load_rows(row, &path);
    cr_expect_eq(d->rows[0].concurrency, 0);
    cr_expect_str_eq(d->rows[0].skip,
                     "no clients: no silicon_concurrency, and the batch columns give 0");
    isim_dataset_free(d);
    tu_discard(path);
}

Test(dataset, a_file_with_only_its_header_is_refused)
{
    expect_refused(HEADER, strlen(HEADER), 1, 1, "no rows: the file holds only its header");
}

/* d12: no row predicted is an error, with each reason's rows; not "0.0%" and exit 0. */
Test(dataset, the_command_fails_when_no_row_can_be_predicted_and_says_why)
{
    char rows[8192];
    make_row(rows, sizeof rows, (const char *const[]){"id=a", "model_path=acme/A", NULL}, NULL);
    make_row(rows + strlen(rows), sizeof rows - strlen(rows),
             (const char *const[]){"id=b", "model_path=acme/B", NULL}, NULL);
    make_row(rows + strlen(rows), sizeof rows - strlen(rows),
             (const char *const[]){"id=c", "model_path=acme/A", "isl=2048", NULL}, NULL);
    char *text = malloc(strlen(HEADER) + strlen(rows) + 1);
    strcpy(text, HEADER);
    strcat(text, rows);
    char *path = tu_write("rows.csv", text);
    char args[2048], *out = NULL, *err = NULL, want[1024];
    snprintf(args, sizeof args, "validate --dataset '%s' -o '%s/never'", path, ISIM_TEST_OUT_DIR);
    cr_expect_eq(tu_run(args, &out, &err), 1);
    snprintf(want, sizeof want,
             "infersim: error: %s: none of its 3 rows can be predicted:\n"
             "      2  no model named acme/A in the catalog\n"
             "      1  no model named acme/B in the catalog\n",
             path);
    cr_expect_str_eq(err, want);
    cr_expect_str_eq(out, "");
    free(out);
    free(err);
    tu_discard(path);
    /* a file of its header alone */
    path = tu_write("rows.csv", HEADER);
    snprintf(args, sizeof args, "validate --dataset '%s' -o '%s/never'", path, ISIM_TEST_OUT_DIR);
    snprintf(want, sizeof want, "%s:1:1: no rows: the file holds only its header", path);
    tu_expect_error(args, 1, want, true);
    tu_discard(path);
    free(text);
}

/* Accuracy over no rows (here: every predicted row in the training split) is no value, not
 * 0%. */
Test(dataset, the_accuracy_of_no_rows_is_no_value)
{
    tu_deadline(120);
    char rows[16384], id[32], conc[64];
    size_t used = 0;
    for (int k = 0, n = 0; n < 4; k++) {
        snprintf(id, sizeof id, "id=t%d", k);
        if (isim_ds_heldout(id + 3))
            continue;
        snprintf(conc, sizeof conc, "silicon_data_source=source_file=t.csv; silicon_concurrency=%d",
                 1 << n++);
        make_row(rows + used, sizeof rows - used, (const char *const[]){id, conc, NULL}, NULL);
        used += strlen(rows + used);
    }
    char *text = malloc(strlen(HEADER) + used + 1);
    strcpy(text, HEADER);
    strcat(text, rows);
    char *path = tu_write("rows.csv", text);
    char args[2048], out_dir[1100];
    snprintf(out_dir, sizeof out_dir, "%s/validate-none-%d", ISIM_TEST_OUT_DIR, (int)getpid());
    snprintf(args, sizeof args, "validate --dataset '%s' -o '%s' --json", path, out_dir);
    cJSON *j = tu_run_json(args);
    const cJSON *tpot = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "heldout"), "tpot");
    cr_assert_not_null(tpot);
    cr_expect_eq(tu_num(tpot, "n"), 0);
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(tpot, "median_abs_pct")));
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(tpot, "p90_abs_pct")));
    cJSON_Delete(j);
    char *out = NULL;
    snprintf(args, sizeof args, "validate --dataset '%s' -o '%s'", path, out_dir);
    cr_expect_eq(tu_run(args, &out, NULL), 0);
    cr_expect(
        strstr(out, "  held out, fitted                   0 |         -         -         - |") !=
            NULL,
        "%s", out);
    free(out);
    free(text);
    tu_discard(path);
    remove_dir(out_dir);
}

/* Many groups and reasons (here 150000 models the catalog does not have) are counted by
 * sorting, not by comparing each row with each group. */
Test(dataset, the_command_counts_many_reasons_and_groups_in_little_time)
{
    tu_deadline(20);
    char row[2048];
    make_row(row, sizeof row, (const char *const[]){"id=r", "model_path=acme/M", NULL}, NULL);
    const int n = 150000;
    size_t cap = strlen(HEADER) + (size_t)(n + 2) * (strlen(row) + 16), used;
    char *text = malloc(cap);
    used = (size_t)snprintf(text, cap, "%s", HEADER);
    for (int k = 0; k < n; k++)
        used += (size_t)snprintf(text + used, cap - used, "r%d%.*s%d%s", k,
                                 (int)(strstr(row, "acme/M") - row) + 5, row + 1, k,
                                 strstr(row, "acme/M") + 6);
    make_row(text + used, cap - used, (const char *const[]){"id=known", NULL}, NULL);
    char *path = write_bytes(text, strlen(text));
    char args[2048], out_dir[1100], *out = NULL;
    snprintf(out_dir, sizeof out_dir, "%s/validate-many-%d", ISIM_TEST_OUT_DIR, (int)getpid());
    snprintf(args, sizeof args, "validate --dataset '%s' -o '%s'", path, out_dir);
    cr_expect_eq(tu_run(args, &out, NULL), 0);
    cr_expect(strstr(out, "\n      1  no model named acme/M149999 in the catalog\n") != NULL);
    cr_expect(strstr(out, "150001 rows, 1 predicted") != NULL);
    free(out);
    free(text);
    tu_discard(path);
    remove_dir(out_dir);
}

/* DIR/dataset.csv quotes what the file quoted. */
Test(dataset, the_rows_csv_quotes_fields_with_commas_and_line_breaks)
{
    tu_deadline(120);
    char rows[4096], *text = malloc(8192);
    make_row(rows, sizeof rows, (const char *const[]){"id=\"a,\r\nb\"", "backend=\"v,llm\"", NULL},
             NULL);
    snprintf(text, 8192, "%s%s", HEADER, rows);
    char *path = tu_write("rows.csv", text);
    char args[2048], out_dir[1100], csv[1200];
    snprintf(out_dir, sizeof out_dir, "%s/validate-quote-%d", ISIM_TEST_OUT_DIR, (int)getpid());
    snprintf(args, sizeof args, "validate --dataset '%s' -o '%s'", path, out_dir);
    cr_expect_eq(tu_run(args, NULL, NULL), 0);
    snprintf(csv, sizeof csv, "%s/dataset.csv", out_dir);
    char *got = read_text(csv);
    cr_expect(strstr(got, "\n2,\"a,\r\nb\",qwen3-32b,h100-sxm,\"v,llm\",agg,") != NULL, "%s", got);
    free(got);
    free(text);
    tu_discard(path);
    remove_dir(out_dir);
}

/* A plot's series: one per profile of the rows, past 64 too. */
Test(dataset, the_plots_have_a_series_for_every_profile)
{
    tu_deadline(120);
    char dir[1024], cmd[4096];
    make_data_dir(dir, sizeof dir);
    snprintf(cmd, sizeof cmd,
             "cd '%s/hw-profiles' && for k in $(seq 0 64); do sed 's/^aliases: .*/aliases: "
             "[sys_'$k']/' h100-sxm.yaml > h100-sxm-$k.yaml; done",
             dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    size_t cap = 65 * 300, used = (size_t)snprintf(NULL, 0, "%s", HEADER);
    char *text = malloc(cap + used + 1), id[32], system_[32];
    strcpy(text, HEADER);
    for (int k = 0, n = 0; k < 65; n++) {
        snprintf(id, sizeof id, "id=h%d", n);
        if (!isim_ds_heldout(id + 3))
            continue;
        snprintf(system_, sizeof system_, "system=sys_%d", k++);
        make_row(text + used, cap + 1 - used, (const char *const[]){id, system_, NULL}, NULL);
        used += strlen(text + used);
    }
    char *path = tu_write("rows.csv", text);
    char args[4096], out_dir[1100], svg[1200];
    snprintf(out_dir, sizeof out_dir, "%s/validate-plot-%d", ISIM_TEST_OUT_DIR, (int)getpid());
    snprintf(args, sizeof args, "validate --dataset '%s' -o '%s' --data '%s'", path, out_dir, dir);
    cr_expect_eq(tu_run(args, NULL, NULL), 0);
    snprintf(svg, sizeof svg, "%s/dataset_tpot.svg", out_dir);
    char *got = read_text(svg);
    cr_expect(strstr(got, ">h100-sxm-64<") != NULL, "no series h100-sxm-64 in %s", svg);
    free(got);
    free(text);
    tu_discard(path);
    remove_dir(out_dir);
    remove_dir(dir);
}

/* d13: the header names each column once. */
Test(dataset, a_duplicated_header_column_is_refused_with_its_line_and_column)
{
    char text[4096], row[2048];
    make_row(row, sizeof row, NULL, NULL);
    size_t isl = (size_t)(strstr(HEADER, ",isl,") - HEADER) + 2;
    snprintf(text, sizeof text, "%.*s,isl\n%s", (int)strlen(HEADER) - 1, HEADER, row);
    char msg[128];
    snprintf(msg, sizeof msg, "column 'isl' given twice in the header (first at 1:%zu)", isl);
    expect_refused(text, strlen(text), 1, (int)strlen(HEADER) + 1, msg);
    /* a column that is not read, too */
    size_t mq = (size_t)(strstr(HEADER, "moe_quant_mode") - HEADER) + 1;
    snprintf(text, sizeof text, "%.*s,moe_quant_mode\n%s", (int)strlen(HEADER) - 1, HEADER, row);
    snprintf(msg, sizeof msg, "column 'moe_quant_mode' given twice in the header (first at 1:%zu)",
             mq);
    expect_refused(text, strlen(text), 1, (int)strlen(HEADER) + 1, msg);
}

/* Messages give the line of the file and the column, in characters, where the field
 * begins: blank lines, quoted fields over several lines, CR LF or CR line ends and
 * multi-byte characters counted as they are. */
Test(dataset, a_rows_errors_give_the_files_line_and_the_fields_column)
{
    char row[2048], bad[2048], text[8192];
    int at[N_COLS];
    make_row(row, sizeof row, NULL, NULL);
    make_row(bad, sizeof bad, (const char *const[]){"id=b", "silicon_tpot_ms=ten", NULL}, at);
    const int tpot = at[col_index("silicon_tpot_ms")];
    const char *msg = "column 'silicon_tpot_ms': 'ten' is not a positive number of milliseconds";
    /* blank lines before the bad row: line 5 */
    snprintf(text, sizeof text, "%s%s\n\n%s", HEADER, row, bad);
    expect_refused(text, strlen(text), 5, tpot, msg);
    /* a quoted id over two lines: the bad field is on the row's second line */
    snprintf(text, sizeof text, "%s%s\"two\nlines\"%s", HEADER, row, bad + 1);
    expect_refused(text, strlen(text), 4, tpot - 1 + (int)strlen("lines\""), msg);
    /* CR line ends, and CR LF with a blank line */
    snprintf(text, sizeof text, "%s%s%s", HEADER, row, bad);
    for (char *p = text; (p = strchr(p, '\n')) != NULL;)
        *p = '\r';
    expect_refused(text, strlen(text), 3, tpot, msg);
    snprintf(text, sizeof text, "%s%s\n%s", HEADER, row, bad);
    char *crlf = malloc(2 * strlen(text) + 1), *o = crlf;
    for (const char *p = text; *p; p++)
        o += *p == '\n' ? (size_t)sprintf(o, "\r\n") : (size_t)sprintf(o, "%c", *p);
    expect_refused(crlf, strlen(crlf), 4, tpot, msg);
    free(crlf);
    /* a two-byte character before the field: one column */
    make_row(bad, sizeof bad, (const char *const[]){"id=b\xc3\xa9", "silicon_tpot_ms=ten", NULL},
             NULL);
    snprintf(text, sizeof text, "%s%s", HEADER, bad);
    expect_refused(text, strlen(text), 2, tpot + 1, msg);
    /* a row's line is where it begins */
    char *path;
    snprintf(text, sizeof text, "\n\"two\nlines\"%s", row + 2);
    isim_dataset *d = load_rows(text, &path);
    cr_expect_eq(d->rows[0].line, 3);
    cr_expect_str_eq(d->rows[0].id, "two\nlines");
    isim_dataset_free(d);
    tu_discard(path);
}

Test(dataset, a_utf8_byte_order_mark_is_skipped)
{
    char text[8192], row[2048], *path;
    make_row(row, sizeof row, NULL, NULL);
    snprintf(text, sizeof text, "\xef\xbb\xbf%s%s", HEADER, row);
    isim_status st;
    isim_error e = {0};
    isim_dataset *d = load_text(text, ISIM_DATA_DIR, &st, &e, &path);
    cr_assert_eq(st, ISIM_OK, "%s:%d:%d: %s", e.file, e.line, e.column, e.message);
    cr_expect_eq(d->n_rows, 1);
    cr_expect_str_eq(d->rows[0].id, "r1");
    isim_dataset_free(d);
    tu_discard(path);
    /* and counts for no column */
    snprintf(text, sizeof text, "\xef\xbb\xbf%.*s,id\n%s", (int)strlen(HEADER) - 1, HEADER, row);
    char msg[128];
    snprintf(msg, sizeof msg, "column 'id' given twice in the header (first at 1:1)");
    expect_refused(text, strlen(text), 1, (int)strlen(HEADER) + 1, msg);
}

Test(dataset, an_unterminated_quote_is_reported_where_it_opened)
{
    char text[8192], row[2048];
    make_row(row, sizeof row, NULL, NULL);
    snprintf(text, sizeof text, "%s%s\"r2,%s%s", HEADER, row, row + 3, row);
    expect_refused(text, strlen(text), 3, 1,
                   "unterminated quoted field: the quote opened here is never closed");
    int at[N_COLS];
    make_row(row, sizeof row, (const char *const[]){"backend=\"vllm", NULL}, at);
    snprintf(text, sizeof text, "%s%s", HEADER, row);
    expect_refused(text, strlen(text), 2, at[col_index("backend")],
                   "unterminated quoted field: the quote opened here is never closed");
}

/* Every malformed file: the message and its place. */
Test(dataset, malformed_files_are_refused_with_a_precise_message)
{
    char row[2048];
    int at[N_COLS];
    make_row(row, sizeof row, NULL, at);
    int line_end = (int)strlen(row); /* the column of the row's line end */
    static const char text_after[] = "id,\"a\"b\n", quote_in[] = "id,a\"b\n";
    const struct {
        const char *data;
        size_t n;
        int line, col;
        const char *message;
    } cases[] = {
        {"", 0, 1, 1, "empty file: no header"},
        {"\xef\xbb\xbf", 3, 1, 1, "only a UTF-8 byte-order mark: no header"},
        {"\n\r\n  \n", 6, 1, 1, "only blank lines: no header"},
        {"id,a\0b\n", 7, 1, 5, "control character 0x00: not CSV text"},
        {"id,a\x1b[2Jb\n", 10, 1, 5, "control character 0x1b: not CSV text"},
        {"id,\xff\xfe\n", 6, 1, 4, "byte 0xff: not UTF-8 text"},
        {"id,\xc3(\n", 6, 1, 5, "byte 0x28 inside a UTF-8 character: not UTF-8 text"},
        {"id,x\xe2\x82", 6, 1, 5, "the file ends inside a UTF-8 character"},
        {text_after, strlen(text_after), 1, 7, "text after the closing quote of a quoted field"},
        {quote_in, strlen(quote_in), 1, 5,
         "a quote inside an unquoted field (quote the field and double the quote)"},
        {"id,backend\nr,vllm\n", 18, 1, 1, "no column 'silicon_data_source' in the header"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_refused(cases[i].data, cases[i].n, cases[i].line, cases[i].col, cases[i].message);
    /* a row of too many or too few fields */
    char text[8192];
    snprintf(text, sizeof text, "%s%.*s,x\n", HEADER, line_end - 1, row);
    expect_refused(text, strlen(text), 2, line_end + 1, "field 35 where the header has 34");
    snprintf(text, sizeof text, "%s%.*s\n", HEADER, at[col_index("silicon_tpot_ms")] - 2, row);
    expect_refused(text, strlen(text), 2, at[col_index("silicon_tpot_ms")] - 1,
                   "33 fields where the header has 34: no 'silicon_tpot_ms'");
    /* values */
    static const bad_row values[] = {
        {{"id="}, "id", "column 'id': empty: every row needs an id"},
        {{"mode=both"}, "mode", "column 'mode': 'both' is not agg or disagg"},
        {{"gemm_quant_mode=int3"},
         "gemm_quant_mode",
         "column 'gemm_quant_mode': 'int3' is not a known quantisation (fp8, fp8_block, nvfp4, "
         "int4_wo, empty)"},
        {{"silicon_ttft_ms=0x10"},
         "silicon_ttft_ms",
         "column 'silicon_ttft_ms': '0x10' is not a positive number of milliseconds"},
        {{"silicon_ttft_ms=inf"},
         "silicon_ttft_ms",
         "column 'silicon_ttft_ms': 'inf' is not a positive number of milliseconds"},
        {{"silicon_tpot_ms=nan"},
         "silicon_tpot_ms",
         "column 'silicon_tpot_ms': 'nan' is not a positive number of milliseconds"},
        {{"silicon_tpot_ms=-5"},
         "silicon_tpot_ms",
         "column 'silicon_tpot_ms': '-5' is not a positive number of milliseconds"},
        {{"silicon_tpot_ms=0.0"},
         "silicon_tpot_ms",
         "column 'silicon_tpot_ms': '0.0' is not a positive number of milliseconds"},
        {{"silicon_tpot_ms=1e-400"},
         "silicon_tpot_ms",
         "column 'silicon_tpot_ms': '1e-400' is not a positive number of milliseconds"},
        {{"silicon_tpot_ms=1e999"},
         "silicon_tpot_ms",
         "column 'silicon_tpot_ms': '1e999' ms is more than the limit of 86400000 (a day)"},
        {{"silicon_ttft_ms=86400000.5"},
         "silicon_ttft_ms",
         "column 'silicon_ttft_ms': '86400000.5' ms is more than the limit of 86400000 (a day)"},
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        expect_row_refused(values[i].set, values[i].col, values[i].message);
    /* the decimal forms taken */
    char rows[8192], *path;
    make_row(rows, sizeof rows,
             (const char *const[]){"silicon_ttft_ms=1.5e2", "silicon_tpot_ms=.5", NULL}, NULL);
    make_row(
        rows + strlen(rows), sizeof rows - strlen(rows),
        (const char *const[]){"id=r2", "silicon_ttft_ms=86400000", "silicon_tpot_ms=1e-3", NULL},
        NULL);
    isim_dataset *d = load_rows(rows, &path);
    cr_expect(tu_close(d->rows[0].ttft_s, 0.15, 1e-12));
    cr_expect(tu_close(d->rows[0].tpot_s, 0.5e-3, 1e-12));
    cr_expect(tu_close(d->rows[1].ttft_s, 86400, 1e-12));
    cr_expect(tu_close(d->rows[1].tpot_s, 1e-6, 1e-12));
    isim_dataset_free(d);
    tu_discard(path);
}

Test(dataset, a_directory_or_a_missing_file_is_refused_with_the_reason)
{
    isim_dataset *d = NULL;
    isim_error e = {0};
    cr_expect_eq(isim_dataset_load(ISIM_TEST_OUT_DIR, ISIM_DATA_DIR, &d, &e), ISIM_EIO);
    cr_expect_str_eq(e.message, "a directory, not a CSV file");
    cr_expect_eq(e.line, 0);
    cr_expect_eq(isim_dataset_load("/nonexistent/rows.csv", ISIM_DATA_DIR, &d, &e), ISIM_EIO);
    cr_expect_str_eq(e.message, "cannot open: No such file or directory");
    cr_expect_null(d);
    char args[1200], want[1200];
    snprintf(args, sizeof args, "validate --dataset '%s' -o '%s/never'", ISIM_TEST_OUT_DIR,
             ISIM_TEST_OUT_DIR);
    snprintf(want, sizeof want, "%s: a directory, not a CSV file", ISIM_TEST_OUT_DIR);
    tu_expect_error(args, 1, want, true);
}

Test(dataset, a_fifo_without_a_writer_reads_as_empty_instead_of_waiting)
{
    tu_deadline(10);
    char *path = tu_write("rows.csv", "");
    remove(path);
    cr_assert_eq(mkfifo(path, 0600), 0);
    isim_dataset *d = NULL;
    isim_error e = {0};
    cr_expect_eq(isim_dataset_load(path, ISIM_DATA_DIR, &d, &e), ISIM_ESCHEMA);
    cr_expect_str_eq(e.message, "empty file: no header");
    cr_expect_null(d);
    tu_discard(path);
}

/* The limits (docs/validation.md): each just inside loads, just past is refused with the
 * limit named. */
Test(dataset, text_columns_longer_than_their_field_are_refused)
{
    char id[256] = "id=", backend[64], source[400], model[128];
    memset(id + 3, 'i', 200);
    id[203] = 0;
    snprintf(backend, sizeof backend, "backend=%s", "abcdefghijklmnopqrstuvwx");
    snprintf(model, sizeof model, "model_path=%0*d", 96, 0);
    snprintf(source, sizeof source, "silicon_data_source=%0*d; silicon_concurrency=4", 256, 0);
    static const char *const cols[] = {"id", "backend", "model_path", "silicon_data_source"};
    const char *sets[] = {id, backend, model, source};
    static const char *const msgs[] = {
        "column 'id': 200 bytes, more than the limit of 199",
        "column 'backend': 24 bytes, more than the limit of 23",
        "column 'model_path': 96 bytes, more than the limit of 95",
        "column 'silicon_data_source': 256 bytes before its first ';', more than the limit of 255",
    };
    for (size_t i = 0; i < 4; i++)
        expect_row_refused((const char *const[]){sets[i], NULL}, cols[i], msgs[i]);
    /* one byte less: loaded */
    id[202] = 0;
    backend[strlen(backend) - 1] = 0;
    char rows[4096], *path;
    make_row(rows, sizeof rows, (const char *const[]){id, backend, NULL}, NULL);
    isim_dataset *d = load_rows(rows, &path);
    cr_expect_eq(strlen(d->rows[0].id), 199);
    cr_expect_str_eq(d->rows[0].backend, "abcdefghijklmnopqrstuvw");
    isim_dataset_free(d);
    tu_discard(path);
}

Test(dataset, fields_and_records_past_their_limits_are_refused)
{
    /* a field of 4096 bytes as written loads; 4097 is refused, quoted or not */
    char *big = malloc(5000), *text = malloc(16384), row[2048], *path;
    snprintf(big, 5000, "moe_quant_mode=%0*d", 4096, 0);
    make_row(row, sizeof row, NULL, NULL);
    char *rows = malloc(8192);
    make_row(rows, 8192, (const char *const[]){big, NULL}, NULL);
    isim_dataset *d = load_rows(rows, &path);
    cr_expect_eq(d->n_rows, 1);
    isim_dataset_free(d);
    tu_discard(path);
    int at[N_COLS];
    snprintf(big, 5000, "moe_quant_mode=%0*d", 4097, 0);
    make_row(rows, 8192, (const char *const[]){big, NULL}, at);
    snprintf(text, 16384, "%s%s", HEADER, rows);
    expect_refused(text, strlen(text), 2, at[col_index("moe_quant_mode")],
                   "a field of more than 4096 bytes (the limit)");
    snprintf(big, 5000, "moe_quant_mode=\"%0*d", 4096, 0);
    make_row(rows, 8192, (const char *const[]){big, NULL}, at);
    snprintf(text, 16384, "%s%s", HEADER, rows);
    expect_refused(text, strlen(text), 2, at[col_index("moe_quant_mode")],
                   "a quoted field of more than 4096 bytes (the limit): is its closing quote "
                   "missing?");
    /* 256 fields in a record load; 257 are refused */
    for (int n = 256; n <= 257; n++) {
        size_t used = (size_t)snprintf(text, 16384, "%.*s", (int)strlen(HEADER) - 1, HEADER);
        for (int k = (int)N_COLS; k < n; k++)
            used += (size_t)snprintf(text + used, 16384 - used, ",x%d", k);
        used += (size_t)snprintf(text + used, 16384 - used, "\n%.*s", (int)strlen(row) - 1, row);
        for (int k = (int)N_COLS; k < n; k++)
            used += (size_t)snprintf(text + used, 16384 - used, ",");
        snprintf(text + used, 16384 - used, "\n");
        if (n == 257) {
            expect_refused(text, strlen(text), 1, (int)(strstr(text, ",x256") - text) + 2,
                           "more than 256 fields in a record (the limit)");
            continue;
        }
        isim_status st;
        isim_error e = {0};
        d = load_text(text, ISIM_DATA_DIR, &st, &e, &path);
        cr_expect_eq(st, ISIM_OK, "%s", e.message);
        isim_dataset_free(d);
        tu_discard(path);
    }
    free(big);
    free(text);
    free(rows);
}

Test(dataset, more_rows_than_the_limit_are_refused)
{
    tu_deadline(120);
    /* rows of a model the catalog does not have: read, not predicted */
    const int limit = 200000;
    char row[2048];
    make_row(row, sizeof row, (const char *const[]){"id=r", "model_path=acme/x", NULL}, NULL);
    size_t cap = strlen(HEADER) + (size_t)(limit + 1) * (strlen(row) + 8);
    char *text = malloc(cap);
    size_t used = (size_t)snprintf(text, cap, "%s", HEADER), at_limit = 0;
    for (int k = 1; k <= limit + 1; k++) {
        if (k == limit + 1)
            at_limit = used;
        used += (size_t)snprintf(text + used, cap - used, "r%d%s", k, row + 1);
    }
    char *path = write_bytes(text, at_limit);
    isim_dataset *d = NULL;
    isim_error e = {0};
    cr_expect_eq(isim_dataset_load(path, ISIM_DATA_DIR, &d, &e), ISIM_OK, "%s", e.message);
    cr_expect_eq(d ? d->n_rows : 0, (size_t)limit);
    isim_dataset_free(d);
    tu_discard(path);
    expect_refused(text, used, limit + 2, 1, "more than 200000 rows (the limit)");
    free(text);
}

Test(dataset, a_file_larger_than_the_limit_is_refused_before_it_is_read)
{
    char *path = tu_write("rows.csv", HEADER);
    cr_assert_eq(truncate(path, (off_t)128 * 1024 * 1024 + 1), 0);
    isim_dataset *d = NULL;
    isim_error e = {0};
    cr_expect_eq(isim_dataset_load(path, ISIM_DATA_DIR, &d, &e), ISIM_ESCHEMA);
    cr_expect_str_eq(e.message, "134217729 bytes, more than the limit of 134217728 (128 MiB)");
    cr_expect_eq(e.line, 0);
    tu_discard(path);
}

/* ---- against the engine ---------------------------------------------------------------- */

/* The planner's frontier points run on the engine are the planner's own: every one of batch
 * up to the grid's largest, each with its TPOT and TTFT as `infersim plan` prints them, and
 * a measurement of each. */
Test(engine_validation, runs_the_planners_frontier_points)
{
    tu_deadline(300);
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

/* A row of one client simulated as its benchmark ran it: each request alone, so the mean
 * TTFT is a lone request's prompt passes (the static prediction's TTFT at batch 1 without
 * the time outside the passes) and the TPOT its decode passes'. */
Test(dataset, a_one_client_row_simulates_to_a_lone_requests_figures)
{
    char dir[1024];
    make_data_dir(dir, sizeof dir);
    char text[4096];
    strcpy(text, HEADER);
    agg_row(text + strlen(text), sizeof text - strlen(text), "one", "Qwen/Qwen3-32B", 1000, 100, 1,
            2, 100, 10);
    isim_status st;
    isim_error e = {0};
    char *path;
    isim_dataset *d = load_text(text, dir, &st, &e, &path);
    cr_assert_eq(st, ISIM_OK, "%s", e.message);
    const isim_ds_row *r = row_of(d, "one");
    cr_assert_str_empty(r->skip);
    isim_hw_fit p;
    isim_ds_prior(d->hw[r->hw], &p);
    double ttft, tpot;
    char why[160];
    cr_assert(isim_ds_simulate(d, r, &p, &ttft, &tpot, why, sizeof why), "%s", why);
    isim_hw hw;
    isim_hw_apply_fit(d->hw[r->hw], &p, &hw);
    isim_query q;
    isim_query_init(&q);
    q.fidelity = ISIM_DEPLOY;
    q.devices = 2;
    q.tp = 2;
    q.batch = 1;
    q.input_tokens = 1000;
    q.output_tokens = 100;
    q.weights = ISIM_FP8;
    q.kv = p.kv;
    q.allow_cross_domain_tp = true;
    isim_result res;
    cr_assert_eq(isim_predict(d->models[r->model], &hw, &q, &res, &e), ISIM_OK, "%s", e.message);
    cr_expect(tu_close(ttft, res.ttft_s - hw.request_overhead_s, 0.01), "%g vs %g", ttft,
              res.ttft_s - hw.request_overhead_s);
    /* the decode passes' context grows from 1000 to 1099; the static TPOT is at the mean */
    cr_expect(tu_close(tpot, res.tpot_s, 0.01), "%g vs %g", tpot, res.tpot_s);
    isim_dataset_free(d);
    unlink(path);
    free(path);
    remove_dir(dir);
}
