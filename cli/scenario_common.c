/* What `scenario run` and `report` share: finding and running a scenario with a progress
 * bar on a terminal, and writing files so that none is ever half written. */
#include "cli/cli.h"
#include "planner/planner.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    double t0, last;
} bar;

/* A bar with the count and the elapsed time, redrawn at most ten times a second; called
 * only when stderr is a terminal. */
static void draw(void *ctx, size_t done, size_t total)
{
    bar *b = ctx;
    double t = now_s();
    if (done < total && t - b->last < 0.1)
        return;
    b->last = t;
    const int width = 30;
    int fill = total ? (int)((double)width * (double)done / (double)total) : width;
    fprintf(stderr, "\r  [%.*s%*s] %zu/%zu points, %.1f s", fill, "##############################",
            width - fill, "", done, total, t - b->t0);
    if (done == total)
        fputc('\n', stderr);
    fflush(stderr);
}

int cli_run_scenario(const char *file, const char *data_dir, int threads, isim_scenario **sc,
                     isim_scenario_result **res)
{
    char path[1200];
    isim_error err = {0};
    *sc = NULL;
    *res = NULL;
    /* a bare id names a shipped scenario; a path is used as it is */
    bool id = !strchr(file, '/') && !strstr(file, ".yaml");
    if (id && isim_catalog_path(data_dir, "scenario", file, path, sizeof path, &err))
        return cli_error(&err);
    if (isim_scenario_load(id ? path : file, sc, &err))
        return cli_error(&err);
    bar b = {now_s(), 0};
    isim_scenario_run_opts o = {.data_dir = data_dir, .threads = threads};
    if (isatty(fileno(stderr))) {
        o.progress = draw;
        o.progress_ctx = &b;
    }
    if (isim_scenario_run(*sc, &o, res, &err)) {
        isim_scenario_free(*sc);
        *sc = NULL;
        return cli_error(&err);
    }
    return CLI_OK;
}

int cli_mkdirs(const char *dir)
{
    char *buf = cli_concat(dir, "");
    if (!buf)
        return cli_oom();
    int rc = CLI_OK;
    for (char *p = buf + 1; *p && !rc; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            rc = CLI_FAIL;
        else
            *p = '/';
    }
    if (!rc && mkdir(buf, 0777) != 0 && errno != EEXIST)
        rc = CLI_FAIL;
    if (rc)
        fprintf(stderr, "infersim: error: %s: cannot create directory: %s\n", buf, strerror(errno));
    free(buf);
    return rc;
}

int cli_writable_dir(const char *dir, bool make)
{
    int rc = make ? cli_mkdirs(dir) : CLI_OK;
    if (rc)
        return rc;
    char name[48];
    snprintf(name, sizeof name, "/.infersim-probe.tmp-%ld", (long)getpid());
    char *probe = cli_concat(dir, name);
    if (!probe)
        return cli_oom();
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "infersim: error: %s: cannot write there: %s\n", dir, strerror(errno));
        rc = CLI_FAIL;
    } else {
        close(fd);
        unlink(probe);
    }
    free(probe);
    return rc;
}

int cli_not_a_directory(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return CLI_OK;
    fprintf(stderr, "infersim: error: %s: is a directory\n", path);
    return CLI_FAIL;
}

int cli_write_file(const char *path, void (*write)(FILE *out, void *ctx), void *ctx)
{
    char pid[32];
    snprintf(pid, sizeof pid, ".tmp-%ld", (long)getpid());
    char *tmp = cli_concat(path, pid);
    if (!tmp)
        return cli_oom();
    cli_remove_stale(path);
    int rc = cli_guard(tmp);
    if (rc) {
        free(tmp);
        return rc;
    }
    FILE *f = fopen(tmp, "w");
    int e = f ? 0 : errno;
    if (f) {
        write(f, ctx);
        /* a full disk may show only at the flush or, with delayed allocation, at fsync */
        if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0)
            e = errno ? errno : EIO;
        if (fclose(f) != 0 && !e)
            e = errno ? errno : EIO;
    }
    if (!e && rename(tmp, path) != 0)
        e = errno;
    if (e) {
        fprintf(stderr, "infersim: error: %s: cannot write: %s\n", path, strerror(e));
        remove(tmp);
        rc = CLI_FAIL;
    }
    cli_unguard(tmp);
    free(tmp);
    return rc;
}
