/* What `scenario run` and `report` share: finding and running a scenario with a progress
 * bar on a terminal, and writing files so that none is ever half written. */
#include "cli/cli.h"
#include "planner/planner.h"

#include <errno.h>
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
    /* a bare id names a shipped scenario */
    if (!strchr(file, '/') && !strstr(file, ".yaml")) {
        if (isim_catalog_path(data_dir, "scenario", file, path, sizeof path, &err))
            return cli_error(&err);
    } else {
        snprintf(path, sizeof path, "%s", file);
    }
    if (isim_scenario_load(path, sc, &err))
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
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            goto fail;
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        goto fail;
    return CLI_OK;
fail:
    fprintf(stderr, "infersim: error: %s: cannot create directory: %s\n", buf, strerror(errno));
    return CLI_FAIL;
}

int cli_write_file(const char *path, void (*write)(FILE *out, void *ctx), void *ctx)
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "infersim: error: %s: %s\n", path, strerror(errno));
        return CLI_FAIL;
    }
    write(f, ctx);
    bool ok = !ferror(f);
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "infersim: error: %s: cannot write: %s\n", path, strerror(errno));
        remove(tmp);
        return CLI_FAIL;
    }
    return CLI_OK;
}
