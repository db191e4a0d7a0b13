/* What a command leaves on disk until it completes (a report's directory being built, a
 * file's temporary beside it): removed when SIGINT, SIGTERM or SIGHUP stops the process,
 * and, after a kill nothing can catch, by the next command that writes to the same place.
 * The signals are taken by one thread with sigwait, so that the removal runs as ordinary
 * code, not inside a signal handler. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "cli/cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The paths to remove if stopped; a few per command. */
#define MAX_GUARDED 8

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *guarded[MAX_GUARDED];
static sigset_t stops;

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void cli_remove_tree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void *watch(void *arg)
{
    (void)arg;
    int sig = 0;
    if (sigwait(&stops, &sig) != 0)
        return NULL;
    pthread_mutex_lock(&lock);
    /* the other threads still run until the signal ends the process: what they print now is
     * an echo of the stop, and what they write must not land in what is being removed. So
     * each path is first renamed out of their way (a write to the old name then fails), and
     * the renamed tree, which nothing can add to, is removed. */
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0)
        dup2(null, STDERR_FILENO);
    for (size_t i = 0; i < MAX_GUARDED; i++) {
        if (!guarded[i])
            continue;
        char *gone = cli_concat(guarded[i], ".stopped");
        if (gone && rename(guarded[i], gone) == 0)
            cli_remove_tree(gone);
        else
            cli_remove_tree(guarded[i]);
        free(gone);
    }
    /* die of the signal, as the shell expects of an interrupted command */
    signal(sig, SIG_DFL);
    pthread_sigmask(SIG_UNBLOCK, &stops, NULL);
    raise(sig);
    _exit(128 + sig);
}

int cli_cleanup_start(void)
{
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGHUP);
    /* blocked here, before any other thread starts, so that every thread inherits it and
     * only the watcher takes them */
    pthread_t t;
    if (pthread_sigmask(SIG_BLOCK, &stops, NULL) != 0 || pthread_create(&t, NULL, watch, NULL)) {
        fprintf(stderr, "infersim: error: cannot watch for interruptions: %s\n", strerror(errno));
        return CLI_FAIL;
    }
    pthread_detach(t);
    return CLI_OK;
}

int cli_guard(const char *path)
{
    pthread_mutex_lock(&lock);
    size_t i = 0;
    while (i < MAX_GUARDED && guarded[i])
        i++;
    char *copy = i < MAX_GUARDED ? strdup(path) : NULL;
    if (copy)
        guarded[i] = copy;
    pthread_mutex_unlock(&lock);
    if (!copy) {
        fprintf(stderr, "infersim: error: %s: %s\n", path,
                i < MAX_GUARDED ? "out of memory" : "more than 8 temporary paths at once");
        return CLI_FAIL;
    }
    return CLI_OK;
}

void cli_unguard(const char *path)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < MAX_GUARDED; i++)
        if (guarded[i] && strcmp(guarded[i], path) == 0) {
            free(guarded[i]);
            guarded[i] = NULL;
            break;
        }
    pthread_mutex_unlock(&lock);
}

/* Whether name is stem".tmp-PID" or stem".old-PID" (*old), then nothing or '.' and anything
 * (".png", ".stopped"), for a PID that is not running: what a killed command left. */
static bool stale(const char *name, const char *stem, bool *old)
{
    size_t n = strlen(stem);
    if (strncmp(name, stem, n) != 0)
        return false;
    *old = strncmp(name + n, ".old-", 5) == 0;
    if (!*old && strncmp(name + n, ".tmp-", 5) != 0)
        return false;
    const char *digits = name + n + 5;
    char *end;
    errno = 0;
    long pid = strtol(digits, &end, 10);
    if (end == digits || errno || pid <= 0 || (*end && *end != '.'))
        return false;
    return pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

void cli_remove_stale(const char *path)
{
    char *dir = strdup(path);
    if (!dir)
        return;
    char *slash = strrchr(dir, '/');
    const char *stem = slash ? slash + 1 : dir;
    const char *where = slash ? (slash == dir ? "/" : dir) : ".";
    if (slash)
        *slash = '\0';
    DIR *d = stem[0] ? opendir(where) : NULL;
    struct dirent *e;
    bool old;
    while (d && (e = readdir(d))) {
        if (!stale(e->d_name, stem, &old))
            continue;
        char *full = malloc(strlen(where) + strlen(e->d_name) + 2);
        if (!full)
            break;
        sprintf(full, "%s/%s", where, e->d_name);
        struct stat sb;
        if (!old || stat(path, &sb) == 0 || rename(full, path) != 0)
            cli_remove_tree(full);
        free(full);
    }
    if (d)
        closedir(d);
    free(dir);
}

/* Checks, before the work, that the plot can be written where asked: a .png or .svg name in
 * a directory that takes a file. Its temporary (reports/report.h) is guarded until the plot
 * is in place (*tmp, freed by the caller). */
int cli_plot_target(const char *cmd, const char *plot, char **tmp)
{
    const char *dot = strrchr(plot, '.');
    if (!dot || (strcmp(dot, ".png") != 0 && strcmp(dot, ".svg") != 0))
        return cli_usage_error(cmd, "--plot: '%s' must name a .png or .svg file", plot);
    const char *slash = strrchr(plot, '/');
    char *dir = slash ? strndup(plot, (size_t)(slash - plot) + (slash == plot)) : strdup(".");
    char pid[40];
    snprintf(pid, sizeof pid, ".tmp-%ld%s", (long)getpid(), dot);
    *tmp = cli_concat(plot, pid);
    int rc = !dir || !*tmp ? cli_oom() : cli_cleanup_start();
    if (!rc)
        rc = cli_writable_dir(dir, false);
    if (!rc)
        rc = cli_not_a_directory(plot);
    free(dir);
    if (!rc) {
        cli_remove_stale(plot);
        rc = cli_guard(*tmp);
    }
    if (rc) {
        free(*tmp);
        *tmp = NULL;
    }
    return rc;
}

void cli_plot_done(char *tmp)
{
    if (!tmp)
        return;
    remove(tmp);
    cli_unguard(tmp);
    free(tmp);
}
