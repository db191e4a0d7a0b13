/* Scenario runs and reports through the CLI: the results files, byte-identical reruns, the
 * report's files and links, the report rendered in a real browser (Debian's chromium,
 * headless) with every figure loaded, and a failed report leaving the previous one intact. */
#include <criterion/criterion.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

/* clang-format off */
static const char *const SMALL =
    "name: small what-if\n"
    "models: [llama-3.1-8b]\n"
    "hardware: [h100-sxm, l4]\n"
    "workload: {input_tokens: 512, output_tokens: 256, request_rate_per_s: 5}\n"
    "search: {max_devices: 4}\n"
    "sweeps:\n"
    "  - path: hw.*.memory.bandwidth_gbps\n"
    "    values: [x0.5, x1]\n"
    "  - path: workload.input_tokens\n"
    "    values: [256, 1Ki, 4k]\n";
/* clang-format on */

static void make_tmpdir(char *dir)
{
    strcpy(dir, "/tmp/isim-report-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_tmpdir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

static bool exists(const char *dir, const char *name)
{
    char path[1200];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &sb) == 0;
}

static bool same_file(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    char *x = tu_read(a, &na), *y = tu_read(b, &nb);
    bool same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

/* The number of CSV fields of a line (no quoted commas in these files' numbers and ids). */
static size_t csv_fields(const char *line, size_t len)
{
    size_t n = 1;
    bool quoted = false;
    for (size_t i = 0; i < len; i++) {
        if (line[i] == '"')
            quoted = !quoted;
        else if (line[i] == ',' && !quoted)
            n++;
    }
    return n;
}

Test(report, scenario_run_writes_a_csv_row_per_frontier_point_and_the_json)
{
    char dir[64], args[1200];
    make_tmpdir(dir);
    char *spec = tu_write("small.yaml", SMALL);
    snprintf(args, sizeof args, "scenario run '%s' -o '%s/out' --no-elapsed --threads 2", spec,
             dir);
    char *out = NULL, *err = NULL;
    cr_assert_eq(tu_run(args, &out, &err), 0, "%s", err);
    cr_expect(strstr(out, "results: ") != NULL, "%s", out);
    char path[1200];
    snprintf(path, sizeof path, "%s/out/results.json", dir);
    char *text = tu_read(path, NULL);
    cr_assert_not_null(text);
    cJSON *j = cJSON_Parse(text);
    cr_assert_not_null(j, "results.json is not JSON");
    const cJSON *points = cJSON_GetObjectItemCaseSensitive(j, "points");
    cr_expect_eq(cJSON_GetArraySize(points), 6, "2 bandwidths x 3 input lengths");
    const cJSON *base = cJSON_GetObjectItemCaseSensitive(j, "base");
    cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(base, "cost_model")->valuestring, "cloud");
    cr_expect_null(cJSON_GetObjectItemCaseSensitive(j, "elapsed_ms"));
    /* the sweep's value in force at each point, the 1Ki as written */
    const cJSON *p1 = cJSON_GetArrayItem(points, 1);
    const cJSON *vals = cJSON_GetObjectItemCaseSensitive(p1, "values");
    cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(vals, "workload.input_tokens")->valuestring,
                     "1Ki");
    const cJSON *set = cJSON_GetObjectItemCaseSensitive(p1, "settings");
    cr_expect_eq(tu_num(set, "workload.input_tokens"), 1024);
    /* CSV: a header with the sweeps' paths as columns, every row as wide as the header, one
     * row per frontier point of each hardware at each point */
    snprintf(path, sizeof path, "%s/out/results.csv", dir);
    char *csv = tu_read(path, NULL);
    cr_assert_not_null(csv);
    const char *nl = strchr(csv, '\n');
    cr_assert_not_null(nl);
    cr_expect_eq(
        strncmp(csv, "point,hw.*.memory.bandwidth_gbps,workload.input_tokens,cost_model,", 66), 0,
        "%.*s", (int)(nl - csv), csv);
    cr_expect(strstr(csv, ",j_per_output_token,facility_j_per_output_token\n") != NULL);
    size_t width = csv_fields(csv, (size_t)(nl - csv)), rows = 0, base_rows = 0;
    for (const char *line = nl + 1; *line;) {
        const char *end = strchr(line, '\n');
        cr_assert_not_null(end, "the last row ends with a newline");
        cr_expect_eq(csv_fields(line, (size_t)(end - line)), width, "%.*s", (int)(end - line),
                     line);
        rows++;
        base_rows += strncmp(line, "base,", 5) == 0;
        line = end + 1;
    }
    size_t want = 0;
    const cJSON *plan = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(base, "plans"), "llama-3.1-8b");
    const cJSON *byhw = cJSON_GetObjectItemCaseSensitive(plan, "frontier_by_hw");
    for (const cJSON *h = byhw->child; h; h = h->next)
        want += (size_t)cJSON_GetArraySize(h);
    cr_expect_eq(base_rows, want, "the base point's rows are its frontiers' points");
    cr_expect_gt(rows, base_rows * 3);
    /* the same command again: the same bytes */
    char again[1300];
    snprintf(again, sizeof again, "scenario run '%s' -o '%s/again' --no-elapsed --threads 1", spec,
             dir);
    cr_assert_eq(tu_run(again, NULL, NULL), 0);
    char a[1200], b[1200];
    snprintf(a, sizeof a, "%s/out/results.json", dir);
    snprintf(b, sizeof b, "%s/again/results.json", dir);
    cr_expect(same_file(a, b), "results.json differs between runs");
    snprintf(a, sizeof a, "%s/out/results.csv", dir);
    snprintf(b, sizeof b, "%s/again/results.csv", dir);
    cr_expect(same_file(a, b), "results.csv differs between runs");
    cJSON_Delete(j);
    free(text);
    free(csv);
    free(out);
    free(err);
    tu_discard(spec);
    remove_tmpdir(dir);
}

/* Every src= and href= of the page that is not an anchor: the targets, relative. */
static size_t links(const char *html, char targets[][256], size_t max, size_t *n_img)
{
    size_t n = 0;
    *n_img = 0;
    static const char *const attrs[] = {"src=\"", "href=\""};
    for (size_t a = 0; a < 2; a++)
        for (const char *p = strstr(html, attrs[a]); p; p = strstr(p + 1, attrs[a])) {
            const char *v = p + strlen(attrs[a]), *end = strchr(v, '"');
            cr_assert_not_null(end);
            if (*v == '#')
                continue;
            cr_assert_lt(n, max);
            snprintf(targets[n], sizeof targets[n], "%.*s", (int)(end - v), v);
            n++;
            *n_img += a == 0;
        }
    return n;
}

/* The browser: ISIM_CHROMIUM or Debian's chromium on the PATH. */
static const char *browser(void)
{
    const char *env = getenv("ISIM_CHROMIUM");
    if (env && *env)
        return env;
    return system("command -v chromium >/dev/null 2>&1") == 0 ? "chromium" : NULL;
}

/* A copy of the report's page with a script that, once the page has loaded, checks that every
 * image drew (complete, with a width) and that every linked figure loads too, and writes what
 * it found into the body's attributes for --dump-dom to show. */
static const char *const CHECK_SCRIPT =
    "<script>\n"
    "window.addEventListener('load', function () {\n"
    "  var broken = [], imgs = document.images, pending = 0, links = [];\n"
    "  for (var i = 0; i < imgs.length; i++)\n"
    "    if (!imgs[i].complete || imgs[i].naturalWidth === 0)\n"
    "      broken.push(imgs[i].getAttribute('src'));\n"
    "  var as = document.querySelectorAll('a[href]');\n"
    "  for (var k = 0; k < as.length; k++) {\n"
    "    var h = as[k].getAttribute('href');\n"
    "    if (/\\.(png|svg)$/.test(h)) links.push(h);\n"
    "  }\n"
    "  function done() {\n"
    "    document.body.setAttribute('data-images', String(imgs.length));\n"
    "    document.body.setAttribute('data-links', String(links.length));\n"
    "    document.body.setAttribute('data-broken', broken.join(' ') || 'none');\n"
    "  }\n"
    "  if (!links.length) done();\n"
    "  links.forEach(function (h) {\n"
    "    pending++;\n"
    "    var im = new Image();\n"
    "    im.onload = function () { if (im.naturalWidth === 0) broken.push(h);\n"
    "                              if (--pending === 0) done(); };\n"
    "    im.onerror = function () { broken.push(h); if (--pending === 0) done(); };\n"
    "    im.src = h;\n"
    "  });\n"
    "});\n"
    "</script>\n";

static char *attr(const char *dom, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, "%s=\"", name);
    const char *p = strstr(dom, key);
    if (!p)
        return NULL;
    p += strlen(key);
    const char *end = strchr(p, '"');
    return end ? strndup(p, (size_t)(end - p)) : NULL;
}

/* The report of the default scenario: its files, its links all relative and present, and,
 * in chromium, every figure loaded; a screenshot of the page is left in the build's tests
 * directory (report-default.png) to look at. */
Test(report, the_default_report_renders_in_a_browser_with_every_figure)
{
    char dir[64], args[600];
    make_tmpdir(dir);
    snprintf(args, sizeof args, "report default -o '%s/rep' --threads 2", dir);
    char *out = NULL, *err = NULL;
    cr_assert_eq(tu_run(args, &out, &err), 0, "%s", err);
    char rep[128];
    snprintf(rep, sizeof rep, "%s/rep", dir);
    static const char *const files[] = {"index.html",
                                        "report.md",
                                        "results.csv",
                                        "results.json",
                                        "figures/frontier-0.svg",
                                        "figures/frontier-0.png",
                                        "figures/terms-0.svg",
                                        "figures/tornado-0.svg",
                                        "figures/whatif-0-0-cost.svg"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        cr_expect(exists(rep, files[i]), "no %s", files[i]);
    char path[300];
    snprintf(path, sizeof path, "%s/index.html", rep);
    char *html = tu_read(path, NULL);
    cr_assert_not_null(html);
    /* self-contained: no fetch leaves the directory */
    cr_expect_null(strstr(html, "src=\"http"));
    cr_expect_null(strstr(html, "<link"));
    cr_expect_null(strstr(html, "@import"));
    static char targets[400][256];
    size_t n_img = 0, n = links(html, targets, 400, &n_img);
    cr_expect_geq(n_img, 6u, "figures in the page");
    for (size_t i = 0; i < n; i++) {
        cr_expect(targets[i][0] != '/' && !strstr(targets[i], "://"), "not relative: %s",
                  targets[i]);
        cr_expect(exists(rep, targets[i]), "broken link: %s", targets[i]);
    }
    /* the Markdown report points at the same figures */
    snprintf(path, sizeof path, "%s/report.md", rep);
    char *md = tu_read(path, NULL);
    cr_assert_not_null(md);
    cr_expect(strstr(md, "](figures/frontier-0.png)") != NULL);

    const char *chromium = browser();
    if (!chromium) {
        cr_assert(getenv("ISIM_NO_BROWSER"),
                  "chromium is needed to check the report in a browser (apt-get install "
                  "chromium), or set ISIM_NO_BROWSER=1 to leave that check out");
        cr_log_warn("ISIM_NO_BROWSER: the report was not checked in a browser");
    } else {
        /* the page with the check script, beside it so that its links resolve the same */
        char *body = strstr(html, "</body>");
        cr_assert_not_null(body);
        snprintf(path, sizeof path, "%s/check.html", rep);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fprintf(f, "%.*s%s%s", (int)(body - html), html, CHECK_SCRIPT, body);
        fclose(f);
        char cmd[2000];
        snprintf(cmd, sizeof cmd,
                 "timeout 120 '%s' --headless --no-sandbox --disable-gpu --no-first-run "
                 "--user-data-dir='%s/profile' --allow-file-access-from-files "
                 "--virtual-time-budget=10000 --dump-dom 'file://%s' 2>/dev/null",
                 chromium, dir, path);
        FILE *p = popen(cmd, "r");
        cr_assert_not_null(p);
        size_t cap = 1 << 20, len = 0;
        char *dom = malloc(cap);
        cr_assert_not_null(dom);
        size_t got;
        while ((got = fread(dom + len, 1, cap - 1 - len, p)) > 0) {
            len += got;
            if (len + 1 == cap) {
                cap *= 2;
                dom = realloc(dom, cap);
                cr_assert_not_null(dom);
            }
        }
        dom[len] = '\0';
        int st = pclose(p);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "chromium failed (%d)", st);
        char *images = attr(dom, "data-images"), *broken = attr(dom, "data-broken"),
             *linked = attr(dom, "data-links");
        cr_assert_not_null(broken, "the check did not run in chromium");
        cr_expect_str_eq(broken, "none", "figures that did not load: %s", broken);
        cr_expect_eq(atol(images), (long)n_img, "images in the rendered page");
        cr_expect_geq(atol(linked), 6, "linked PNG figures");
        free(images);
        free(broken);
        free(linked);
        free(dom);
        /* a screenshot of the page itself */
        char shot[1200];
        snprintf(shot, sizeof shot, "%s/report-default.png", ISIM_TEST_OUT_DIR);
        snprintf(cmd, sizeof cmd,
                 "timeout 120 '%s' --headless --no-sandbox --disable-gpu --no-first-run "
                 "--user-data-dir='%s/profile' --hide-scrollbars --window-size=1200,9000 "
                 "--virtual-time-budget=10000 --screenshot='%s' 'file://%s/index.html' "
                 ">/dev/null 2>&1",
                 chromium, dir, shot, rep);
        remove(shot);
        cr_assert_eq(system(cmd), 0, "chromium could not take the screenshot");
        size_t shot_len = 0;
        char *png = tu_read(shot, &shot_len);
        cr_assert_not_null(png, "no screenshot at %s", shot);
        cr_expect_eq(memcmp(png, "\x89PNG\r\n\x1a\n", 8), 0, "not a PNG");
        /* a blank page of this size compresses to a few kB; the report's text, tables and
         * figures take hundreds */
        cr_expect_gt(shot_len, 100000u, "the screenshot looks blank (%zu bytes)", shot_len);
        free(png);
    }
    free(md);
    free(html);
    free(out);
    free(err);
    remove_tmpdir(dir);
}

/* Runs infersim with its PATH emptied, so that gnuplot cannot be found midway. */
static int run_without_gnuplot(const char *args, char **err)
{
    char dir[64];
    make_tmpdir(dir);
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "PATH=/nonexistent INFERSIM_DATA='%s' '%s' %s >/dev/null 2>'%s/err'",
             ISIM_DATA_DIR, ISIM_BIN, args, dir);
    int st = system(cmd);
    char path[128];
    snprintf(path, sizeof path, "%s/err", dir);
    *err = tu_read(path, NULL);
    remove_tmpdir(dir);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A report that fails while drawing leaves the previous report as it was and no temporary
 * directory; a directory holding other files is not replaced. */
Test(report, a_failed_report_leaves_the_previous_one_intact)
{
    char dir[64], args[1200];
    make_tmpdir(dir);
    char *spec = tu_write("small.yaml", SMALL);
    snprintf(args, sizeof args, "report '%s' -o '%s/rep' --threads 2", spec, dir);
    char *err = NULL;
    cr_assert_eq(tu_run(args, NULL, &err), 0, "%s", err);
    free(err);
    char index[200];
    snprintf(index, sizeof index, "%s/rep/index.html", dir);
    size_t before_len = 0;
    char *before = tu_read(index, &before_len);
    cr_assert_not_null(before);
    cr_assert_eq(run_without_gnuplot(args, &err), 1);
    cr_expect(strstr(err, "gnuplot was not found (install gnuplot-nox)") != NULL, "%s", err);
    free(err);
    size_t after_len = 0;
    char *after = tu_read(index, &after_len);
    cr_assert_not_null(after, "the previous report is gone");
    cr_expect(after_len == before_len && memcmp(before, after, before_len) == 0);
    cr_expect(exists(dir, "rep/figures/frontier-0.svg"));
    /* nothing left beside it */
    char cmd[300];
    snprintf(cmd, sizeof cmd, "test \"$(ls '%s')\" = rep", dir);
    cr_expect_eq(system(cmd), 0, "temporary files left in %s", dir);
    /* a directory with the user's own files is refused before any work */
    snprintf(cmd, sizeof cmd, "mkdir '%s/mine' && touch '%s/mine/notes.txt'", dir, dir);
    cr_assert_eq(system(cmd), 0);
    snprintf(args, sizeof args, "report '%s' -o '%s/mine'", spec, dir);
    tu_expect_error(args, 1, "holds files that are not a report's", true);
    cr_expect(exists(dir, "mine/notes.txt"));
    cr_expect(!exists(dir, "mine/index.html"));
    snprintf(args, sizeof args, "report '%s' -o '%s/mine/notes.txt'", spec, dir);
    tu_expect_error(args, 1, "exists and is not a directory", true);
    free(before);
    free(after);
    tu_discard(spec);
    remove_tmpdir(dir);
}

/* Bad input through the CLI: refused with its place and reason before any work, with the
 * exit codes of the other commands (2 usage and unknown ids, 1 bad input). */
static void expect_refused(const char *from, const char *to, const char *needle)
{
    char *text = tu_replace(SMALL, from, to);
    char *spec = tu_write("bad.yaml", text);
    char dir[64], args[1200];
    make_tmpdir(dir);
    snprintf(args, sizeof args, "report '%s' -o '%s/rep'", spec, dir);
    tu_expect_error(args, 1, needle, true);
    cr_expect(!exists(dir, "rep"), "nothing written for %s", to);
    remove_tmpdir(dir);
    tu_discard(spec);
    free(text);
}

Test(report, bad_scenarios_and_flags_are_refused_with_their_place)
{
    tu_expect_error("report default", 2, "missing -o DIR", true);
    tu_expect_error("scenario walk default", 2, "expected 'run FILE'", true);
    tu_expect_error("scenario run no-such-scenario", 2, "no-such-scenario", true);
    /* an unknown path, at its first value */
    expect_refused("hw.*.memory.bandwidth_gbps", "hw.*.memory.bandwith_gbps",
                   "bad.yaml:8:14: 'memory.bandwith_gbps' in ");
    /* a multiplier on text */
    expect_refused("workload.input_tokens\n    values: [256, 1Ki, 4k]",
                   "hw.l4.name\n    values: [x2]", "bad.yaml:10:14: 'name' in ");
    expect_refused("workload.input_tokens\n    values: [256, 1Ki, 4k]",
                   "cost.model\n    values: [owned, x2]", "a multiplier cannot scale it");
    /* more points than the limit: 2 x 3 = 6 */
    expect_refused("search: {max_devices: 4}", "search: {max_devices: 4, max_points: 5}",
                   "the sweeps make 6 points, more than search.max_points (5)");
}

/* A workload longer than the model's context is refused by `scenario run` and `report` alike,
 * at its place, before anything is written. */
Test(report, a_workload_beyond_the_models_context_is_refused)
{
    expect_refused("workload: {input_tokens: 512,", "workload: {input_tokens: 1e7,",
                   "bad.yaml:4:26: 10000000 in + 256 out = 10000256 tokens of context exceed "
                   "Llama 3.1 8B's 131072");
    char *text = tu_replace(SMALL, "input_tokens: 512", "input_tokens: 1e7");
    char *spec = tu_write("bad.yaml", text);
    char args[1200];
    snprintf(args, sizeof args, "scenario run '%s'", spec);
    tu_expect_error(args, 1, "bad.yaml:4:26: 10000000 in + 256 out", true);
    tu_discard(spec);
    free(text);
}

/* A sweep by a dotted model id runs through the CLI; an id the scenario does not list is
 * refused at the path, with the ids it lists. */
Test(report, a_sweep_names_a_model_by_its_dotted_id)
{
    char *text = tu_replace(SMALL, "hw.*.memory.bandwidth_gbps\n    values: [x0.5, x1]",
                            "model.llama-3.1-8b.architecture.n_layers\n    values: [16, 32]");
    char *spec = tu_write("dot.yaml", text);
    char args[1200], *out = NULL, *err = NULL;
    snprintf(args, sizeof args, "scenario run '%s'", spec);
    cr_expect_eq(tu_run(args, &out, &err), 0, "%s", err);
    cr_expect(strstr(out, "model.llama-3.1-8b.architecture.n_layers=16") != NULL, "%s", out);
    free(out);
    free(err);
    tu_discard(spec);
    free(text);
    expect_refused("hw.*.memory.bandwidth_gbps", "model.llama-3.1-70b.architecture.n_layers",
                   "bad.yaml:7:11: 'model.llama-3.1-70b.architecture.n_layers' names no model of "
                   "the scenario (its models: llama-3.1-8b)");
}
