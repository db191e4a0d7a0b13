/* infersim report FILE -o DIR: runs a scenario and writes its procurement report
 * (index.html, report.md, figures, results). The report is built beside DIR and moved
 * into place only when complete: a failure leaves the previous report as it was. */
#define _GNU_SOURCE /* renameat2 */
#include "cli/cli.h"
#include "reports/report.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
            char *sub = cli_concat(dir, "/figures");
            ok = sub && only_a_report(sub, true);
            free(sub);
        }
    }
    closedir(d);
    return ok;
}

/* Puts the complete report tmp in place of dir. A previous report is exchanged with the new
 * one in one step (renameat2's RENAME_EXCHANGE), so that dir never goes missing: a kill at
 * any moment leaves the old report or the new one there, and tmp (then the old one) is
 * removed by the caller or, after a kill, by the next report into dir. A file system that
 * cannot exchange gets two renames, with the previous report kept as `old` in between. */
static int swap_in(const char *tmp, const char *dir, const char *old, bool had)
{
    if (had && renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) == 0)
        return CLI_OK;
    if (had && errno != EINVAL && errno != ENOSYS) {
        fprintf(stderr, "infersim: error: %s: cannot replace: %s\n", dir, strerror(errno));
        return CLI_FAIL;
    }
    if (had && rename(dir, old) != 0) {
        fprintf(stderr, "infersim: error: %s: cannot replace: %s\n", dir, strerror(errno));
        return CLI_FAIL;
    }
    if (rename(tmp, dir) != 0) {
        fprintf(stderr, "infersim: error: %s: cannot write: %s\n", dir, strerror(errno));
        if (had)
            rename(old, dir);
        return CLI_FAIL;
    }
    if (had)
        cli_remove_tree(old);
    return CLI_OK;
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
    char *clean = cli_concat(dir, "");
    if (!clean)
        return cli_oom();
    for (size_t n = strlen(clean); n > 1 && clean[n - 1] == '/'; n--)
        clean[n - 1] = '\0';
    const char *last = strrchr(clean, '/') ? strrchr(clean, '/') + 1 : clean;
    if (!last[0] || strcmp(last, ".") == 0 || strcmp(last, "..") == 0) {
        rc = cli_usage_error(cmd,
                             "-o %s: name the report's own directory (the report replaces "
                             "it), not '%s'",
                             dir, last[0] ? last : "/");
        free(clean);
        return rc;
    }
    if ((rc = cli_cleanup_start())) {
        free(clean);
        return rc;
    }
    cli_remove_stale(clean);
    isim_scenario *sc = NULL;
    isim_scenario_result *res = NULL;
    char *tmp = NULL, *old = NULL, pid[32];
    snprintf(pid, sizeof pid, ".tmp-%ld", (long)getpid());
    tmp = cli_concat(clean, pid);
    snprintf(pid, sizeof pid, ".old-%ld", (long)getpid());
    old = cli_concat(clean, pid);
    if (!tmp || !old) {
        rc = cli_oom();
        goto cleanup;
    }
    /* refuse to replace anything but a previous report, before the work */
    struct stat sb;
    bool had = stat(clean, &sb) == 0;
    if (had && !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "infersim: error: %s: exists and is not a directory\n", clean);
        rc = CLI_FAIL;
        goto cleanup;
    }
    if (had && !only_a_report(clean, false)) {
        fprintf(stderr,
                "infersim: error: %s: holds files that are not a report's; the report "
                "replaces its directory, so name a new or empty one\n",
                clean);
        rc = CLI_FAIL;
        goto cleanup;
    }
    /* the parent of DIR must exist and take the new report: made and checked before the
     * work, so that a directory that cannot be written is refused at once */
    char *slash = strrchr(clean, '/');
    if (slash && slash != clean) {
        *slash = '\0';
        rc = cli_mkdirs(clean);
        *slash = '/';
        if (rc)
            goto cleanup;
    }
    if (mkdir(tmp, 0777) != 0) {
        fprintf(stderr, "infersim: error: %s: cannot create: %s\n", tmp, strerror(errno));
        rc = CLI_FAIL;
        goto cleanup;
    }
    if ((rc = cli_guard(tmp))) {
        rmdir(tmp);
        goto cleanup;
    }
    if ((rc = cli_run_scenario(pos[0], cli_data_dir(cli_find(opts, "data")), threads, &sc, &res)))
        goto drop;
    isim_error err = {0};
    if (isim_report_scenario_write(res, tmp, &err)) {
        rc = cli_error(&err);
        goto drop;
    }
    if ((rc = swap_in(tmp, clean, old, had)))
        goto drop;
    isim_report_scenario_table(stdout, res, false);
    printf("report: %s/index.html (%s/report.md; figures, results.csv and results.json beside "
           "it)\n",
           clean, clean);
drop:
    /* the new report that failed, or after the exchange the previous one */
    cli_remove_tree(tmp);
    cli_unguard(tmp);
cleanup:
    isim_scenario_result_free(res);
    isim_scenario_free(sc);
    free(clean);
    free(tmp);
    free(old);
    return rc;
}
