/* infersim report FILE -o DIR: runs a scenario and writes its procurement report
 * (index.html, report.md, figures, results). The report is built beside DIR and moved
 * into place only when complete: a failure leaves the previous report as it was. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "cli/cli.h"
#include "reports/report.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void help(const cli_opt *opts)
{
    printf("usage: infersim report FILE|ID -o DIR [OPTIONS]\n\n"
           "Runs a what-if scenario (scenarios/*.yaml; an ID names a shipped one) and writes\n"
           "its report into DIR: index.html (open it in a browser; figures beside it),\n"
           "report.md, figures/ (PNG and SVG, drawn by gnuplot), results.csv and\n"
           "results.json. DIR is replaced only when the new report is complete.\n\n"
           "options:\n");
    cli_print_options(opts);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Whether dir holds nothing but what a report writes (or nothing at all), so that replacing
 * it loses nothing of the user's. */
static bool only_a_report(const char *dir, bool figures)
{
    static const char *const top[] = {"index.html",   "report.md", "results.csv",
                                      "results.json", "figures",   NULL};
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool ok = true;
    struct dirent *e;
    while (ok && (e = readdir(d))) {
        const char *n = e->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
            continue;
        if (figures) {
            const char *dot = strrchr(n, '.');
            ok = dot && (strcmp(dot, ".png") == 0 || strcmp(dot, ".svg") == 0);
            continue;
        }
        ok = false;
        for (size_t i = 0; top[i] && !ok; i++)
            ok = strcmp(n, top[i]) == 0;
        if (ok && strcmp(n, "figures") == 0) {
            char sub[1200];
            snprintf(sub, sizeof sub, "%s/figures", dir);
            ok = only_a_report(sub, true);
        }
    }
    closedir(d);
    return ok;
}

int cmd_report(int argc, char **argv)
{
    const char *cmd = "report";
    cli_opt opts[] = {
        {"out", true, "the report's directory (-o DIR)", NULL},
        {"threads", true, "points run in parallel (default: one per CPU)", NULL},
        {"data", true, "directory holding models/, hw-profiles/ and scenarios/", NULL},
        {NULL, false, NULL, NULL}};
    const char *pos[1];
    int n_pos = 0, rc = cli_parse(cmd, argc, argv, 2, opts, pos, 1, &n_pos);
    if (rc < 0) {
        help(opts);
        return CLI_OK;
    }
    if (rc)
        return rc;
    if (n_pos < 1)
        return cli_usage_error(cmd, "missing the scenario FILE");
    const char *dir = cli_find(opts, "out")->value;
    if (!dir || !dir[0])
        return cli_usage_error(cmd, "missing -o DIR");
    int threads = 0;
    const cli_opt *o = cli_find(opts, "threads");
    if (o->value && !cli_int(cmd, o, 1, 64, &threads))
        return CLI_USAGE;
    char clean[1024];
    snprintf(clean, sizeof clean, "%s", dir);
    for (size_t n = strlen(clean); n > 1 && clean[n - 1] == '/'; n--)
        clean[n - 1] = '\0';
    /* refuse to replace anything but a previous report, before the work */
    struct stat sb;
    bool had = stat(clean, &sb) == 0;
    if (had && !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "infersim: error: %s: exists and is not a directory\n", clean);
        return CLI_FAIL;
    }
    if (had && !only_a_report(clean, false)) {
        fprintf(stderr,
                "infersim: error: %s: holds files that are not a report's; the report "
                "replaces its directory, so name a new or empty one\n",
                clean);
        return CLI_FAIL;
    }
    isim_scenario *sc = NULL;
    isim_scenario_result *res = NULL;
    if ((rc = cli_run_scenario(pos[0], cli_data_dir(cli_find(opts, "data")), threads, &sc, &res)))
        return rc;
    char tmp[1100], old[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", clean, (long)getpid());
    snprintf(old, sizeof old, "%s.old-%ld", clean, (long)getpid());
    /* the parent of DIR must exist; DIR itself is made below */
    char parent[1024];
    snprintf(parent, sizeof parent, "%s", clean);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        if ((rc = cli_mkdirs(parent)))
            goto cleanup;
    }
    if (mkdir(tmp, 0777) != 0) {
        fprintf(stderr, "infersim: error: %s: cannot create: %s\n", tmp, strerror(errno));
        rc = CLI_FAIL;
        goto cleanup;
    }
    isim_error err = {0};
    if (isim_report_scenario_write(res, tmp, &err)) {
        remove_tree(tmp);
        rc = cli_error(&err);
        goto cleanup;
    }
    if (had && rename(clean, old) != 0) {
        fprintf(stderr, "infersim: error: %s: cannot replace: %s\n", clean, strerror(errno));
        remove_tree(tmp);
        rc = CLI_FAIL;
        goto cleanup;
    }
    if (rename(tmp, clean) != 0) {
        fprintf(stderr, "infersim: error: %s: cannot write: %s\n", clean, strerror(errno));
        if (had)
            rename(old, clean);
        remove_tree(tmp);
        rc = CLI_FAIL;
        goto cleanup;
    }
    if (had)
        remove_tree(old);
    isim_report_scenario_table(stdout, res, false);
    printf("report: %s/index.html (%s/report.md; figures, results.csv and results.json beside "
           "it)\n",
           clean, clean);
cleanup:
    isim_scenario_result_free(res);
    isim_scenario_free(sc);
    return rc;
}
