/* Out of memory: every allocation of the loaders, the catalog, the planner and the JSON
 * writers is made to fail in turn (tests/faults.h); of the scenario runner and the report
 * writer, a sample of them and every stream they open. Each call must then return
 * ISIM_ENOMEM, or fail with a message that says out of memory; never crash, never report
 * success with a result missing a part, and give back every allocation, stream and file
 * descriptor it took. Each test logs how many allocations a call makes and how many runs
 * failed one. */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "planner/planner.h"
#include "sim/dataset.h"
#include "reports/report.h"
#include "tests/faults.h"
#include "tests/testutil.h"

/* cJSON allocates through the wrappers too (cJSON is a shared library: without its hooks
 * the writers' documents would escape the count). */
static void hook_cjson(void)
{
    cJSON_Hooks h = {.malloc_fn = __wrap_malloc, .free_fn = __wrap_free};
    cJSON_InitHooks(&h);
}

TestSuite(faults, .init = hook_cjson);

/* One call under test: it runs the entry point on ctx and frees what it made. */
typedef isim_status (*fault_call)(const void *ctx, isim_error *err);

static bool says_out_of_memory(isim_status st, const isim_error *e)
{
    return st == ISIM_ENOMEM || strstr(e->message, "out of memory") ||
           strstr(e->message, strerror(ENOMEM));
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) * 1e-9;
}

/* The file descriptors open (-1 without /proc), counted outside a session. */
static int open_files(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* A sampled loop's stride: twice as sparse under the sanitizers, which run each call about
 * three times slower. */
#if defined(ISIM_SANITIZE_BUILD)
#define SAMPLED(stride) (2 * (stride))
#else
#define SAMPLED(stride) (stride)
#endif

/* The allocations a sampled loop fails: those of the series 1, 1 + stride, 1 + 2 stride, ...
 * and every marked one (a stream or a directory opened, a memory stream grown;
 * tests/faults.h). */
typedef struct {
    size_t stride;
    size_t marked[FAULT_MARKS], n_marked, k;
} series;

/* The first allocation after n to fail. */
static size_t next_n(series *v, size_t n)
{
    if (n == 0)
        return 1;
    size_t s = n - (n - 1) % v->stride + v->stride;
    while (v->k < v->n_marked && v->marked[v->k] <= n)
        v->k++;
    return v->k < v->n_marked && v->marked[v->k] < s ? v->marked[v->k] : s;
}

/* Runs call without a failure, then with allocation n failing for every n of the series
 * until a run makes fewer than n allocations. ISIM_FAULT_STRIDE=1 in the environment fails
 * every allocation of every call (minutes). */
static void inject(const char *what, fault_call call, const void *ctx, size_t stride)
{
    const char *every = getenv("ISIM_FAULT_STRIDE");
    series *v = calloc(1, sizeof *v);
    cr_assert_not_null(v);
    v->stride = every && strtoul(every, NULL, 10) > 0 ? strtoul(every, NULL, 10) : stride;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t total = 0, failed = 0;
    int files = open_files();
    for (size_t n = 0;; n = next_n(v, n)) {
        isim_error e = {0};
        fault_begin(n);
        isim_status st = call(ctx, &e);
        fault_stats s = fault_end();
        cr_assert_eq(s.live, 0,
                     "%s, allocation %zu failing: %zu allocations not given back, the first "
                     "made by allocation %zu",
                     what, n, s.live, s.first_live);
        cr_assert_eq(open_files(), files, "%s, allocation %zu failing: a file left open", what, n);
        if (!s.failed) {
            cr_assert_eq(st, ISIM_OK, "%s, allocation %zu failing: %s", what, n, e.message);
            if (n > 0)
                break;
            total = s.calls;
            cr_assert_gt(total, 0u, "%s allocates nothing", what);
            for (size_t m; v->n_marked < FAULT_MARKS && (m = fault_marked(v->n_marked));)
                v->marked[v->n_marked++] = m;
            continue;
        }
        failed++;
        cr_assert_neq(st, ISIM_OK, "%s, allocation %zu of %zu failing: success reported", what, n,
                      total);
        cr_assert(says_out_of_memory(st, &e), "%s, allocation %zu of %zu failing: %s: %s", what, n,
                  total, isim_status_name(st), e.message);
    }
    cr_log_info("%s: %zu allocations; %zu runs, each failing one (stride %zu, and the %zu that "
                "open or grow a stream), %.2f s",
                what, total, failed, v->stride, v->n_marked, seconds_since(&t0));
    free(v);
}

static char *data_path(const char *sub, const char *id)
{
    size_t n = strlen(ISIM_DATA_DIR) + strlen(sub) + strlen(id) + 8;
    char *p = malloc(n);
    cr_assert_not_null(p);
    snprintf(p, n, "%s/%s/%s.yaml", ISIM_DATA_DIR, sub, id);
    return p;
}

/* ---- loaders and the catalog ------------------------------------------------------------ */

static isim_status load_model(const void *path, isim_error *e)
{
    isim_model *m = NULL;
    isim_status st = isim_model_load(path, &m, e);
    cr_assert_eq(st == ISIM_OK, m != NULL);
    isim_model_free(m);
    return st;
}

static isim_status load_hw(const void *path, isim_error *e)
{
    isim_hw *h = NULL;
    isim_status st = isim_hw_load(path, &h, e);
    cr_assert_eq(st == ISIM_OK, h != NULL);
    isim_hw_free(h);
    return st;
}

/* A dense model, a mixture of experts with latent attention, a profile with fitted
 * engines and one with power and purchase prices. */
Test(faults, the_model_and_hardware_loaders_survive_every_failed_allocation)
{
    static const char *const models[] = {"llama-3.1-8b", "deepseek-v3"};
    static const char *const hw[] = {"b200", "h100-sxm"};
    for (size_t i = 0; i < 2; i++) {
        char *p = data_path("models", models[i]), what[64];
        snprintf(what, sizeof what, "isim_model_load %s", models[i]);
        inject(what, load_model, p, 1);
        free(p);
        p = data_path("hw-profiles", hw[i]);
        snprintf(what, sizeof what, "isim_hw_load %s", hw[i]);
        inject(what, load_hw, p, 1);
        free(p);
    }
}

/* What-ifs applied before the schema reads the file: a number scaled, a number set and a
 * key created (each written back in the long form {value, source}), and a string set. */
static const isim_override HW_WHATIF[] = {
    {.path = "memory.bandwidth_gbps", .scale = 0.5, .source = "half", .file = "w.yaml"},
    {.path = "price.cloud_usd_per_h", .value = "3.5", .source = "quote", .file = "w.yaml"},
    {.path = "serving.request_overhead_us", .value = "900", .file = "w.yaml"},
    {.path = "name", .value = "H100 at half bandwidth", .file = "w.yaml"},
};
static const isim_override MODEL_WHATIF[] = {
    {.path = "architecture.n_layers", .value = "16", .source = "pruned", .file = "w.yaml"},
    {.path = "architecture.d_ff", .scale = 2, .file = "w.yaml"},
};

static isim_status load_hw_with(const void *path, isim_error *e)
{
    isim_hw *h = NULL;
    isim_status st = isim_hw_load_with(path, HW_WHATIF, 4, &h, e);
    cr_assert_eq(st == ISIM_OK, h != NULL);
    isim_hw_free(h);
    return st;
}

static isim_status load_model_with(const void *path, isim_error *e)
{
    isim_model *m = NULL;
    isim_status st = isim_model_load_with(path, MODEL_WHATIF, 2, &m, e);
    cr_assert_eq(st == ISIM_OK, m != NULL);
    isim_model_free(m);
    return st;
}

Test(faults, the_loaders_with_what_ifs_survive_every_failed_allocation)
{
    char *p = data_path("hw-profiles", "h100-sxm");
    inject("isim_hw_load_with h100-sxm", load_hw_with, p, 1);
    free(p);
    p = data_path("models", "llama-3.1-8b");
    inject("isim_model_load_with llama-3.1-8b", load_model_with, p, 1);
    free(p);
}

/* clang-format off */
static const char *const SCENARIO =
    "name: out of memory\n"
    "description: a small what-if with two sweep points and a sensitivity\n"
    "models: [llama-3.2-1b]\n"
    "hardware: [h100-sxm, l4]\n"
    "workload: {input_tokens: 512, output_tokens: 128, request_rate_per_s: 2}\n"
    "slo: {tpot_ms: 200}\n"
    "search: {max_devices: 2, kv: [bf16]}\n"
    "sweeps:\n"
    "  - path: hw.*.memory.bandwidth_gbps\n"
    "    values: [x0.5, x1]\n"
    "sensitivity:\n"
    "  - path: model.llama-3.2-1b.architecture.n_layers\n"
    "    low: 12\n"
    "    high: 20\n"
    "  - path: workload.output_tokens\n"
    "    low: x0.5\n"
    "    high: x2\n";
/* clang-format on */

static isim_status load_scenario(const void *path, isim_error *e)
{
    isim_scenario *s = NULL;
    isim_status st = isim_scenario_load(path, &s, e);
    cr_assert_eq(st == ISIM_OK, s != NULL);
    isim_scenario_free(s);
    return st;
}

Test(faults, the_scenario_loader_survives_every_failed_allocation)
{
    char *path = tu_write("faults.yaml", SCENARIO);
    inject("isim_scenario_load", load_scenario, path, 1);
    tu_discard(path);
}

static isim_status catalog_model(const void *id, isim_error *e)
{
    isim_model *m = NULL;
    isim_status st = isim_catalog_model(ISIM_DATA_DIR, id, &m, e);
    cr_assert_eq(st == ISIM_OK, m != NULL);
    isim_model_free(m);
    return st;
}

static isim_status catalog_hw(const void *id, isim_error *e)
{
    isim_hw *h = NULL;
    isim_status st = isim_catalog_hw(ISIM_DATA_DIR, id, &h, e);
    cr_assert_eq(st == ISIM_OK, h != NULL);
    isim_hw_free(h);
    return st;
}

static isim_status catalog_list(const void *sub, isim_error *e)
{
    char **ids = NULL;
    isim_status st = isim_catalog_list(ISIM_DATA_DIR, sub, &ids, e);
    cr_assert_eq(st == ISIM_OK, ids != NULL);
    for (size_t i = 0; ids && ids[i]; i++)
        cr_assert_neq(ids[i][0], '\0');
    isim_ids_free(ids);
    return st;
}

/* kind, then the name to find */
static isim_status catalog_find(const void *ctx, isim_error *e)
{
    const char *const *q = ctx;
    char id[128] = "";
    isim_status st = isim_catalog_find(ISIM_DATA_DIR, q[0], q[1], id, sizeof id, e);
    cr_assert(st != ISIM_OK || id[0]);
    return st;
}

Test(faults, the_catalog_survives_every_failed_allocation)
{
    inject("isim_catalog_model llama-3.1-8b", catalog_model, "llama-3.1-8b", 1);
    inject("isim_catalog_hw h100-sxm", catalog_hw, "h100-sxm", 1);
    inject("isim_catalog_list models", catalog_list, "models", 1);
    inject("isim_catalog_list hw-profiles", catalog_list, "hw-profiles", 1);
    /* names early in the catalog's order: each load before the match is counted again */
    static const char *const model_alias[] = {"model", "deepseek-ai/DeepSeek-V3"};
    static const char *const hw_alias[] = {"hw", "B200_SXM"};
    inject("isim_catalog_find model", catalog_find, model_alias, 1);
    inject("isim_catalog_find hw", catalog_find, hw_alias, 1);
}

/* ---- the planner and the scenario runner -------------------------------------------- */

typedef struct {
    isim_model *model;
    const isim_hw *hw[2];
    isim_plan_request r;
} plan_fixture;

static void plan_setup(plan_fixture *f, isim_fidelity fidelity)
{
    f->model = tu_model("llama-3.2-1b");
    f->hw[0] = tu_hw("h100-sxm");
    f->hw[1] = tu_hw("l4");
    isim_plan_request_init(&f->r);
    f->r.fidelity = fidelity;
    f->r.model = f->model;
    f->r.hw = f->hw;
    f->r.n_hw = 2;
    f->r.input_tokens = 512;
    f->r.output_tokens = 128;
    f->r.max_devices = 2;
    f->r.min_tokens_per_s_per_user = 20;
    f->r.demand_tokens_per_s = 1000;
    f->r.grid_devices = 12;
    f->r.grid_batch = 12;
    f->r.threads = 1;
}

static void plan_teardown(plan_fixture *f)
{
    isim_model_free(f->model);
    isim_hw_free((isim_hw *)f->hw[0]);
    isim_hw_free((isim_hw *)f->hw[1]);
}

static isim_status run_plan(const void *ctx, isim_error *e)
{
    isim_plan *p = NULL;
    isim_status st = isim_plan_run(ctx, &p, e);
    cr_assert_eq(st == ISIM_OK, p != NULL);
    cr_assert(st != ISIM_OK || p->n_frontier > 0);
    isim_plan_free(p);
    return st;
}

Test(faults, a_deploy_plan_survives_every_failed_allocation)
{
    plan_fixture f;
    plan_setup(&f, ISIM_DEPLOY);
    inject("isim_plan_run deploy", run_plan, &f.r, 1);
    plan_teardown(&f);
}

Test(faults, a_paper_plan_survives_every_failed_allocation)
{
    plan_fixture f;
    plan_setup(&f, ISIM_PAPER);
    inject("isim_plan_run paper", run_plan, &f.r, 1);
    plan_teardown(&f);
}

static isim_scenario *scenario(char **path)
{
    *path = tu_write("faults.yaml", SCENARIO);
    isim_scenario *s = NULL;
    isim_error e = {0};
    cr_assert_eq(isim_scenario_load(*path, &s, &e), ISIM_OK, "%s", e.message);
    return s;
}

static isim_status run_scenario(const void *s, isim_error *e)
{
    isim_scenario_run_opts o = {.data_dir = ISIM_DATA_DIR, .threads = 1};
    isim_scenario_result *r = NULL;
    isim_status st = isim_scenario_run(s, &o, &r, e);
    cr_assert_eq(st == ISIM_OK, r != NULL);
    cr_assert(st != ISIM_OK || (r->n_points == 2 && r->sensitivity[0].n_bars == 2));
    isim_scenario_result_free(r);
    return st;
}

Test(faults, a_scenario_run_survives_failed_allocations)
{
    char *path;
    isim_scenario *s = scenario(&path);
    /* every other allocation: all of them take 10 s (50 s under the sanitizers) */
    inject("isim_scenario_run", run_scenario, s, SAMPLED(2));
    isim_scenario_free(s);
    tu_discard(path);
}

/* ---- the writers ---------------------------------------------------------------------- */

static isim_scenario_result *scenario_result(const isim_scenario *s)
{
    isim_scenario_run_opts o = {.data_dir = ISIM_DATA_DIR, .threads = 1};
    isim_scenario_result *r = NULL;
    isim_error e = {0};
    cr_assert_eq(isim_scenario_run(s, &o, &r, &e), ISIM_OK, "%s", e.message);
    return r;
}

/* A writer's document (an object: parsing it here would allocate), or ISIM_ENOMEM for
 * NULL. */
static isim_status document(char *text, isim_error *e)
{
    if (!text) {
        e->code = ISIM_ENOMEM;
        return ISIM_ENOMEM;
    }
    size_t n = strlen(text);
    cr_assert(n > 2 && text[0] == '{' && text[n - 1] == '}', "not a JSON object: %s", text);
    free(text);
    return ISIM_OK;
}

static isim_status plan_json(const void *ctx, isim_error *e)
{
    const void *const *a = ctx;
    return document(isim_report_plan_json(a[0], a[1], false), e);
}

static isim_status scenario_json(const void *res, isim_error *e)
{
    return document(isim_report_scenario_json(res, false), e);
}

static isim_status model_json(const void *m, isim_error *e)
{
    return document(isim_report_model_json(m), e);
}

static isim_status hw_json(const void *h, isim_error *e)
{
    return document(isim_report_hw_json(h), e);
}

typedef struct {
    const isim_model *m;
    const isim_hw *h;
    isim_query q;
    isim_result r;
} prediction;

static isim_status predict_json(const void *ctx, isim_error *e)
{
    const prediction *p = ctx;
    return document(isim_report_predict_json(p->m, p->h, &p->q, &p->r), e);
}

/* cJSON leaves out an item it cannot allocate and goes on: a writer must notice and
 * return NULL rather than a document missing a part. */
Test(faults, the_json_writers_return_null_rather_than_part_of_a_document)
{
    plan_fixture f;
    plan_setup(&f, ISIM_DEPLOY);
    isim_plan *p = NULL;
    isim_error e = {0};
    cr_assert_eq(isim_plan_run(&f.r, &p, &e), ISIM_OK, "%s", e.message);
    const void *plan[] = {&f.r, p};
    inject("isim_report_plan_json", plan_json, plan, 1);
    inject("isim_report_model_json", model_json, f.model, 1);
    inject("isim_report_hw_json", hw_json, f.hw[0], 1);
    prediction pr = {.m = f.model, .h = f.hw[0]};
    isim_query_init(&pr.q);
    pr.q.devices = 1;
    cr_assert_eq(isim_predict(pr.m, pr.h, &pr.q, &pr.r, &e), ISIM_OK, "%s", e.message);
    inject("isim_report_predict_json", predict_json, &pr, 1);
    isim_plan_free(p);
    plan_teardown(&f);

    char *path;
    isim_scenario *s = scenario(&path);
    isim_scenario_result *res = scenario_result(s);
    inject("isim_report_scenario_json", scenario_json, res, 1);
    isim_scenario_result_free(res);
    isim_scenario_free(s);
    tu_discard(path);
}

/* The CSV and table writers take the caller's stream and allocate nothing of their own:
 * they cannot run out of memory (the stream's buffer is libc's). */
Test(faults, the_csv_and_table_writers_allocate_nothing)
{
    plan_fixture f;
    plan_setup(&f, ISIM_DEPLOY);
    isim_plan *p = NULL;
    isim_error e = {0};
    cr_assert_eq(isim_plan_run(&f.r, &p, &e), ISIM_OK, "%s", e.message);
    char *path;
    isim_scenario *s = scenario(&path);
    isim_scenario_result *res = scenario_result(s);
    FILE *out = fopen("/dev/null", "w");
    cr_assert_not_null(out);
    fault_begin(0);
    isim_report_plan_table(out, &f.r, p);
    isim_report_plan_csv(out, &f.r, p);
    isim_report_scenario_csv(out, res);
    isim_report_scenario_table(out, res, true);
    fault_stats st = fault_end();
    cr_expect_eq(st.calls, 0u, "the writers made %zu allocations", st.calls);
    fclose(out);
    isim_scenario_result_free(res);
    isim_scenario_free(s);
    tu_discard(path);
    isim_plan_free(p);
    plan_teardown(&f);
}

/* A stand-in for gnuplot on PATH: it writes a minimal whole image (an SVG's closing tag,
 * a PNG's IEND chunk) at the script's output, so that a report takes milliseconds. */
static char *fake_gnuplot(void)
{
    /* clang-format off */
    char *path = tu_write("gnuplot",
        "#!/bin/sh\n"
        "while read -r line; do\n"
        "  case \"$line\" in 'set output \"'*) out=${line#*\\\"}; out=${out%\\\"}; break ;; esac\n"
        "done <\"$1\"\n"
        "case \"$out\" in\n"
        "*.png) printf '\\211PNG\\r\\n\\032\\n\\000\\000\\000\\000IEND\\256B`\\202' >\"$out\" ;;\n"
        "*) printf '<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>\\n' >\"$out\" ;;\n"
        "esac\n");
    /* clang-format on */
    cr_assert_eq(chmod(path, 0755), 0);
    char *dir = strdup(path);
    *strrchr(dir, '/') = '\0';
    const char *old = getenv("PATH");
    size_t n = strlen(dir) + strlen(old ? old : "") + 2;
    char *search = malloc(n);
    snprintf(search, n, "%s:%s", dir, old ? old : "");
    cr_assert_eq(setenv("PATH", search, 1), 0);
    free(search);
    free(dir);
    return path;
}

/* A new directory for a writer's files, in memory where there is a tmpfs (the writers sync
 * every file they write); dir holds "/dev/shm/isim-faults-XXXXXX". */
static void scratch_dir(char *dir)
{
    struct stat sb;
    strcpy(dir, "/dev/shm/isim-faults-XXXXXX");
    if (stat("/dev/shm", &sb) != 0 || !S_ISDIR(sb.st_mode))
        memcpy(dir, "/tmp/", 5);
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

static isim_status plan_plot(const void *ctx, isim_error *e)
{
    const void *const *a = ctx;
    return isim_report_plan_plot(a[0], a[1], a[2], e);
}

typedef struct {
    const isim_scenario_result *res;
    const char *dir;
} report_job;

static isim_status write_report(const void *ctx, isim_error *e)
{
    const report_job *j = ctx;
    return isim_report_scenario_write(j->res, j->dir, e);
}

Test(faults, the_report_writers_survive_failed_allocations)
{
    char *gnuplot = fake_gnuplot(), dir[32];
    scratch_dir(dir);

    plan_fixture f;
    plan_setup(&f, ISIM_DEPLOY);
    isim_plan *p = NULL;
    isim_error e = {0};
    cr_assert_eq(isim_plan_run(&f.r, &p, &e), ISIM_OK, "%s", e.message);
    char svg[64];
    snprintf(svg, sizeof svg, "%s/plan.svg", dir);
    const void *plot[] = {&f.r, p, svg};
    inject("isim_report_plan_plot", plan_plot, plot, 1);
    isim_plan_free(p);
    plan_teardown(&f);

    char *path;
    isim_scenario *s = scenario(&path);
    isim_scenario_result *res = scenario_result(s);
    report_job job = {res, dir};
    /* each run draws every figure up to the failure, 12 gnuplots: all of them take 9 minutes */
    inject("isim_report_scenario_write", write_report, &job, SAMPLED(29));
    char index[64];
    struct stat sb;
    snprintf(index, sizeof index, "%s/index.html", dir);
    cr_expect_eq(stat(index, &sb), 0);
    isim_scenario_result_free(res);
    isim_scenario_free(s);
    tu_discard(path);
    remove_dir(dir);
    tu_discard(gnuplot);
}

static const double MEASURED[] = {10, 20, 40}, PREDICTED[] = {11, 19, 44};

static isim_status accuracy(const void *ctx, isim_error *e)
{
    (void)ctx;
    isim_accuracy a;
    isim_status st = isim_accuracy_of(MEASURED, PREDICTED, 3, &a);
    cr_assert(st != ISIM_OK || a.n == 3);
    e->code = st;
    return st;
}

static isim_status scatter(const void *path, isim_error *e)
{
    static const int engine[] = {0, 0, 1};
    static const char *const names[] = {"vllm", "sglang"};
    return isim_report_scatter(path, MEASURED, PREDICTED, engine, 3, names, 2, "TPOT", "ms", e);
}

/* A validation's accuracy figures: the errors' quantiles, and the scatter plot. */
Test(faults, the_accuracy_writers_survive_every_failed_allocation)
{
    char *gnuplot = fake_gnuplot(), dir[32], png[64];
    scratch_dir(dir);
    inject("isim_accuracy_of", accuracy, NULL, 1);
    snprintf(png, sizeof png, "%s/scatter.png", dir);
    inject("isim_report_scatter", scatter, png, 1);
    remove_dir(dir);
    tu_discard(gnuplot);
}

/* ---- a dataset of measurements ------------------------------------------------------ */

static isim_status load_dataset(const void *path, isim_error *e)
{
    isim_dataset *d = NULL;
    isim_status st = isim_dataset_load(path, ISIM_DATA_DIR, &d, e);
    cr_assert_eq(st == ISIM_OK, d != NULL);
    /* every row names a catalogued model and profile: none may be set aside as unknown for
     * want of memory */
    for (size_t i = 0; d && i < d->n_rows; i++)
        cr_assert(d->rows[i].model >= 0 && d->rows[i].hw >= 0, "row %zu: %s", i + 1,
                  d->rows[i].skip);
    isim_dataset_free(d);
    return st;
}

/* Loading a dataset reads every model and profile of the catalog to match the rows' names;
 * a catalog file that could not be read for want of memory fails the load instead of
 * leaving its rows unmatched. */
Test(faults, a_dataset_load_survives_failed_allocations)
{
    char *csv = tu_write(
        "faults.csv",
        "id,silicon_data_source,backend,backend_version,model_path,system,precision,mode,isl,osl,"
        "gemm_quant_mode,moe_quant_mode,batch_size,tp_size,pp_size,attention_dp_size,moe_tp_size,"
        "moe_ep_size,prefill_batch_size,prefill_num_workers,prefill_tp_size,prefill_pp_size,"
        "prefill_attention_dp_size,prefill_moe_tp_size,prefill_moe_ep_size,decode_batch_size,"
        "decode_num_workers,decode_tp_size,decode_pp_size,decode_attention_dp_size,"
        "decode_moe_tp_size,decode_moe_ep_size,silicon_ttft_ms,silicon_tpot_ms\n"
        "a,silicon_concurrency=4,vllm,0.10.1,Qwen/Qwen3-32B,h100_sxm,fp8,agg,1024,128,fp8,,4,1,"
        "1,,1,1,,,,,,,,,,,,,,,95.25,11.8\n"
        "b,silicon_concurrency=8,sglang,0.5,Qwen/Qwen3-235B-A22B-FP8,gb200,fp8,agg,2048,256,fp8,"
        "fp8,8,4,1,,1,4,,,,,,,,,,,,,,,180.5,20.25\n");
    inject("isim_dataset_load", load_dataset, csv, SAMPLED(7));
    tu_discard(csv);
}

/* ---- serving under traffic ------------------------------------------------------------ */

typedef struct {
    isim_model *m;
    isim_hw *h;
    isim_query q;
    const char *plot; /* the figure's path; NULL: none */
} serve_fixture;

static isim_status serve_run(const void *ctx, isim_error *e)
{
    const serve_fixture *f = ctx;
    isim_result r;
    isim_step_ctx *x = NULL;
    isim_status st = isim_step_ctx_new(f->m, f->h, &f->q, &x, &r, e);
    cr_assert(st != ISIM_OK || x != NULL);
    isim_traffic t = {.kind = ISIM_ARRIVE_POISSON,
                      .rate = 20,
                      .requests = 40,
                      .input = {ISIM_LEN_UNIFORM, 500, 900},
                      .output = {ISIM_LEN_FIXED, 20, 0},
                      .seed = 3};
    isim_sched s = {.max_seqs = 8};
    isim_serve_result *res = NULL;
    if (!st)
        st = isim_serve_run(f->m, x, &s, &t, &res, e);
    cr_assert_eq(st == ISIM_OK, res != NULL);
    char *json = NULL;
    if (!st) {
        isim_query q = f->q;
        json = isim_report_serve_json(f->m, f->h, &q, &t, res, true);
        if (!json)
            st = isim_error_set(e, ISIM_ENOMEM, "", 0, 0, "out of memory");
    }
    free(json);
    if (!st && f->plot)
        st = isim_report_serve_plot(f->plot, "a simulation", res, e);
    isim_serve_result_free(res);
    isim_step_ctx_free(x);
    return st;
}

/* The step context, the simulation of 40 requests and its JSON with every request. */
Test(faults, a_simulation_under_traffic_survives_every_failed_allocation)
{
    serve_fixture f = {tu_model("llama-3.1-8b"), tu_hw("h100-sxm"), {0}, NULL};
    isim_query_init(&f.q);
    f.q.input_tokens = 900;
    f.q.output_tokens = 20;
    inject("isim_serve_run and its JSON", serve_run, &f, 1);
    /* and its figure, drawn by the stand-in for gnuplot */
    char *gnuplot = fake_gnuplot(), dir[32], png[64];
    scratch_dir(dir);
    snprintf(png, sizeof png, "%s/serve.png", dir);
    f.plot = png;
    inject("isim_serve_run and its figure", serve_run, &f, 1);
    remove_dir(dir);
    tu_discard(gnuplot);
    isim_model_free(f.m);
    isim_hw_free(f.h);
}

static isim_status load_trace(const void *path, isim_error *e)
{
    isim_trace *t = NULL;
    isim_status st = isim_trace_load(path, &t, e);
    cr_assert_eq(st == ISIM_OK, t != NULL);
    cr_assert(st != ISIM_OK || t->n == 40);
    isim_trace_free(t);
    return st;
}

/* A trace of 40 requests: its arrays grow several times, and its fields are copied. */
Test(faults, a_trace_load_survives_every_failed_allocation)
{
    char text[4096] = "arrival_s,input_tokens,output_tokens,note\n";
    for (int i = 0; i < 40; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "%d.5,%d,%d,\"a, %d\"\n", i,
                 100 + i, 10 + i, i);
    char *csv = tu_write("faults.csv", text);
    inject("isim_trace_load", load_trace, csv, 1);
    tu_discard(csv);
}
