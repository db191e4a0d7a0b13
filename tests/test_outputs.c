/* What the commands leave on disk when they are stopped, killed, refused a directory or
 * short of space: the previous output whole, no temporary left behind (or removed by the
 * next run), and a message with the system's reason. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/testutil.h"

/* One model on one device, no sweeps: three figures, drawn in a second or two. */
#define SMALL_SCENARIO(name)                                                                       \
    "name: " name "\n"                                                                             \
    "models: [llama-3.2-1b]\n"                                                                     \
    "hardware: [l4]\n"                                                                             \
    "workload:\n"                                                                                  \
    "  source: \"test\"\n"                                                                         \
    "  input_tokens: 512\n"                                                                        \
    "  output_tokens: 128\n"                                                                       \
    "  request_rate_per_s: 2\n"

typedef struct {
    char *parent; /* a new directory holding only the outputs */
    char *scenario, *scenario2;
    char *out; /* parent/rep */
} place;

static void place_init(place *p)
{
    char dir[] = "/tmp/isim-out-XXXXXX";
    cr_assert(mkdtemp(dir));
    p->parent = strdup(dir);
    p->out = malloc(strlen(dir) + 8);
    sprintf(p->out, "%s/rep", dir);
    p->scenario = tu_write("s.yaml", SMALL_SCENARIO("First"));
    p->scenario2 = tu_write("s.yaml", SMALL_SCENARIO("Second"));
}

static void place_release(place *p)
{
    char *cmd = malloc(strlen(p->parent) + 16);
    sprintf(cmd, "rm -rf '%s'", p->parent);
    cr_expect_eq(system(cmd), 0);
    free(cmd);
    free(p->parent);
    free(p->out);
    tu_discard(p->scenario);
    tu_discard(p->scenario2);
}

/* The names in dir, sorted and joined by spaces. */
static char *entries(const char *dir)
{
    struct dirent **list;
    int n = scandir(dir, &list, NULL, alphasort);
    cr_assert(n >= 0, "%s", dir);
    char *s = calloc(1, 4096);
    for (int i = 0; i < n; i++) {
        if (list[i]->d_name[0] != '.' || strlen(list[i]->d_name) > 2) {
            if (s[0])
                strcat(s, " ");
            strncat(s, list[i]->d_name, 4096 - strlen(s) - 2);
        }
        free(list[i]);
    }
    free(list);
    return s;
}

static char *index_of(const place *p)
{
    char path[600];
    snprintf(path, sizeof path, "%s/index.html", p->out);
    return tu_read(path, NULL);
}

static int report(const place *p, const char *scenario, const char *prefix, char **err)
{
    char args[1200];
    snprintf(args, sizeof args, "report '%s' -o '%s' --threads 1", scenario, p->out);
    return tu_run_with(prefix, args, NULL, err);
}

#define PRELOAD "ASAN_OPTIONS=verify_asan_link_order=0 LD_PRELOAD='" ISIM_PRELOAD "' "

Test(outputs, a_report_stopped_while_it_draws_leaves_the_previous_one_and_nothing_else)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    place p;
    place_init(&p);
    cr_assert_eq(report(&p, p.scenario, "", NULL), 0);
    char *before = index_of(&p);
    cr_assert(before && strstr(before, "First"));
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        char prefix[512];
        snprintf(prefix, sizeof prefix, PRELOAD "ISIM_STOP_AT_FORK=2:%d", sigs[i]);
        int rc = report(&p, p.scenario2, prefix, NULL);
        cr_expect_eq(rc, 128 + sigs[i], "signal %d: exit %d", sigs[i], rc);
        char *now = index_of(&p), *left = entries(p.parent);
        cr_expect_str_eq(now, before, "signal %d changed the previous report", sigs[i]);
        cr_expect_str_eq(left, "rep", "signal %d left: %s", sigs[i], left);
        free(now);
        free(left);
    }
    free(before);
    place_release(&p);
}

Test(outputs, a_kill_at_the_exchange_leaves_a_whole_report_and_the_next_run_cleans_up)
{
    place p;
    place_init(&p);
    cr_assert_eq(report(&p, p.scenario, "", NULL), 0);
    char *first = index_of(&p);
    /* killed just before: the previous report is in place, the new one beside it */
    cr_expect_eq(report(&p, p.scenario2, PRELOAD "ISIM_STOP_AT_EXCHANGE=before", NULL), 137);
    char *now = index_of(&p);
    cr_expect_str_eq(now, first);
    free(now);
    /* killed just after: the new report is in place, the previous one beside it */
    cr_expect_eq(report(&p, p.scenario2, PRELOAD "ISIM_STOP_AT_EXCHANGE=after", NULL), 137);
    now = index_of(&p);
    cr_expect(now && strstr(now, "Second"), "the new report is not in place");
    free(now);
    char *left = entries(p.parent);
    cr_expect_neq(strcmp(left, "rep"), 0, "the killed runs left nothing: %s", left);
    free(left);
    /* the next run removes what the killed ones left */
    cr_assert_eq(report(&p, p.scenario, "", NULL), 0);
    left = entries(p.parent);
    cr_expect_str_eq(left, "rep");
    free(left);
    free(first);
    place_release(&p);
}

Test(outputs, a_report_moved_aside_by_a_killed_run_is_put_back)
{
    place p;
    place_init(&p);
    cr_assert_eq(report(&p, p.scenario, "", NULL), 0);
    char *first = index_of(&p);
    /* as two renames leave it when killed between them: no PID runs 99999999 */
    char aside[600];
    snprintf(aside, sizeof aside, "%s.old-99999999", p.out);
    cr_assert_eq(rename(p.out, aside), 0);
    char *err = NULL;
    cr_expect_eq(report(&p, "no-such-scenario", "", &err), 2);
    char *now = index_of(&p), *left = entries(p.parent);
    cr_expect_str_eq(now, first);
    cr_expect_str_eq(left, "rep");
    free(now);
    free(left);
    free(err);
    free(first);
    place_release(&p);
}

Test(outputs, a_report_needs_a_directory_of_its_own)
{
    static const char *const bad[][2] = {
        {".", "'.'"}, {"..", "'..'"}, {"/", "'/'"}, {"x/.", "'.'"}, {"x/..//", "'..'"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[256], want[256];
        snprintf(args, sizeof args, "report default -o '%s'", bad[i][0]);
        snprintf(want, sizeof want,
                 "-o %s: name the report's own directory (the report "
                 "replaces it), not %s",
                 bad[i][0], bad[i][1]);
        tu_expect_error(args, 2, want, true);
    }
}

/* Runs ARGS so that `dir` cannot be written: as the user nobody when running as root (who
 * may write anywhere), else with dir made read-only. */
static int unwritable(const char *dir, const char *args, char **out, char **err)
{
    cr_assert_eq(chmod(dir, 0555), 0);
    int rc = geteuid() == 0 ? tu_run_with("setpriv --reuid=65534 --regid=65534 --clear-groups env",
                                          args, out, err)
                            : tu_run_with("", args, out, err);
    cr_assert_eq(chmod(dir, 0700), 0);
    return rc;
}

Test(outputs, a_directory_that_cannot_be_written_is_refused_before_the_work)
{
    char dir[] = "/tmp/isim-ro-XXXXXX";
    cr_assert(mkdtemp(dir));
    cr_assert_eq(chmod(dir, 0755), 0);
    /* the command before the directory, its output in it, the message after it */
    static const char *const cmds[][3] = {
        {"report default -o", "/rep", "/rep.tmp-"},
        {"scenario run default -o", "/res", "/res: cannot create directory: "},
        {"plan --model llama-3.2-1b --hw l4 --plot", "/p.png", ": cannot write there: "},
        {"calibrate --engine cpu --no-mpi -o", "/p.yaml", ": cannot write there: "},
        {"validate --engine cpu --no-mpi -o", "/v", "/v: cannot create directory: "},
        {"run --engine cpu --model stories260k --input-tokens 4 --output-tokens 2 --dump-logits",
         "/d.bin", "/d.bin: cannot create: "},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char args[512], want[512];
        snprintf(args, sizeof args, "%s '%s%s'", cmds[i][0], dir, cmds[i][1]);
        snprintf(want, sizeof want, "%s%s", dir, cmds[i][2]);
        char *out = NULL, *err = NULL;
        cr_expect_eq(unwritable(dir, args, &out, &err), 1, "%s", args);
        /* refused before the work: nothing planned, nothing printed */
        cr_expect_str_eq(out, "", "%s printed: %s", args, out);
        cr_expect(strstr(err, want) && strstr(err, "Permission denied"), "%s: %s", args, err);
        free(out);
        free(err);
    }
    char *left = entries(dir);
    cr_expect_str_eq(left, "");
    free(left);
    rmdir(dir);
}

/* A file size limit of `kib` KiB (a disk that fills there), SIGXFSZ ignored so that a
 * write past it fails with EFBIG as on a full disk, instead of killing the process. */
#define FULL(kib) "trap '' XFSZ; ulimit -f " #kib ";"

Test(outputs, a_full_disk_fails_with_the_reason_and_keeps_the_previous_outputs)
{
    place p;
    place_init(&p);
    cr_assert_eq(report(&p, p.scenario, "", NULL), 0);
    char *first = index_of(&p);
    char *err = NULL;
    cr_expect_eq(report(&p, p.scenario2, FULL(24), &err), 1);
    cr_expect(strstr(err, "File too large") || strstr(err, "could not write the whole image"), "%s",
              err);
    char *now = index_of(&p), *left = entries(p.parent);
    cr_expect_str_eq(now, first);
    cr_expect_str_eq(left, "rep");
    free(now);
    free(left);
    free(err);

    /* the scenario's results */
    char args[1200];
    snprintf(args, sizeof args, "scenario run default -o '%s/res'", p.parent);
    cr_assert_eq(tu_run(args, NULL, NULL), 0);
    char csv[700];
    snprintf(csv, sizeof csv, "%s/res/results.csv", p.parent);
    char *csv_before = tu_read(csv, NULL);
    cr_expect_eq(tu_run_with(FULL(4), args, NULL, &err), 1);
    cr_expect(strstr(err, "results.csv: cannot write: File too large"), "%s", err);
    char *csv_now = tu_read(csv, NULL);
    cr_expect_str_eq(csv_now, csv_before);
    free(err);
    free(csv_now);
    free(csv_before);
    snprintf(csv, sizeof csv, "%s/res", p.parent);
    left = entries(csv);
    cr_expect_str_eq(left, "results.csv results.json");
    free(left);

    /* a plot */
    snprintf(args, sizeof args, "plan --model llama-3.2-1b --hw l4 --plot '%s/p.png'", p.parent);
    cr_expect_eq(tu_run_with(FULL(8), args, NULL, &err), 1);
    cr_expect(strstr(err, "p.png: gnuplot could not write the whole image (is the disk full, or "
                          "a file size limit set?)"),
              "%s", err);
    left = entries(p.parent);
    cr_expect_str_eq(left, "rep res");
    free(left);
    free(err);
    free(first);
    place_release(&p);
}

Test(outputs, paths_longer_than_a_kilobyte_are_used_whole)
{
    /* five levels of 250 bytes: past every buffer of 1024 or 1200 bytes the writers had */
    place p;
    place_init(&p);
    char *deep = malloc(strlen(p.parent) + 5 * 251 + 16);
    strcpy(deep, p.parent);
    for (int level = 0; level < 5; level++) {
        size_t n = strlen(deep);
        deep[n] = '/';
        memset(deep + n + 1, 'a' + level, 250);
        deep[n + 251] = '\0';
    }
    char *args = malloc(2 * strlen(deep) + 256);
    sprintf(args, "report '%s' -o '%s/rep' --threads 1", p.scenario, deep);
    char *err = NULL;
    cr_expect_eq(tu_run(args, NULL, &err), 0, "%s", err);
    free(err);
    char *index = malloc(strlen(deep) + 32);
    sprintf(index, "%s/rep/index.html", deep);
    cr_expect_eq(access(index, R_OK), 0, "no %s", index);
    sprintf(args, "scenario run '%s' -o '%s/res'", p.scenario, deep);
    cr_expect_eq(tu_run(args, NULL, &err), 0, "%s", err);
    free(err);
    sprintf(index, "%s/res/results.csv", deep);
    cr_expect_eq(access(index, R_OK), 0, "no %s", index);
    sprintf(args, "plan --model llama-3.2-1b --hw l4 --plot '%s/p.svg'", deep);
    cr_expect_eq(tu_run(args, NULL, &err), 0, "%s", err);
    free(err);
    sprintf(index, "%s/p.svg", deep);
    cr_expect_eq(access(index, R_OK), 0, "no %s", index);
    free(index);
    free(args);
    free(deep);
    place_release(&p);
}

Test(outputs, a_reports_labels_hold_their_whole_text)
{
    /* three sweeps in lockstep, each value 120 bytes: a what-if row's label joins them (the
     * report cut it at 199 bytes) */
    char a[121], b[121];
    memset(a, 'a', 120);
    memset(b, 'b', 120);
    a[120] = b[120] = '\0';
    char text[2048];
    snprintf(text, sizeof text,
             SMALL_SCENARIO("Labels") "sweeps:\n"
                                      "  - {path: hw.l4.name, values: [%s1, %s2], lockstep: n}\n"
                                      "  - {path: hw.l4.vendor, values: [%s1, %s2], lockstep: n}\n"
                                      "  - {path: hw.l4.price.cloud_usd_per_h, values: [x1, x2], "
                                      "lockstep: n}\n",
             a, a, b, b);
    place p;
    place_init(&p);
    char *scenario = tu_write("labels.yaml", text);
    char *err = NULL;
    cr_assert_eq(report(&p, scenario, "", &err), 0, "%s", err);
    free(err);
    char *html = index_of(&p);
    char want[512];
    snprintf(want, sizeof want, "%s1 / %s1 / x1", a, b);
    cr_expect(html && strstr(html, want), "no whole label '%s'", want);
    free(html);
    tu_discard(scenario);
    place_release(&p);
}
