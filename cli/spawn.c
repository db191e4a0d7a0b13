/* Running another program (mpirun, to measure across ranks) from an argument vector, never
 * through a shell: a data directory or a path with a quote in it stays one argument. */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

bool cli_on_path(const char *program)
{
    const char *path = getenv("PATH");
    if (!path || !path[0])
        path = "/usr/bin:/bin";
    size_t n = strlen(program);
    for (const char *dir = path; *dir;) {
        size_t len = strcspn(dir, ":");
        char *full = malloc(len + n + 2);
        if (!full)
            return false;
        snprintf(full, len + n + 2, "%.*s/%s", (int)len, dir, program);
        bool found = access(full, X_OK) == 0;
        free(full);
        if (found)
            return true;
        dir += len + (dir[len] == ':');
    }
    return false;
}

int cli_capture(char *const argv[], bool with_stderr, size_t cap, char **out, int *status)
{
    *out = NULL;
    *status = -1;
    int fds[2];
    if (pipe(fds) != 0)
        return errno;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    if (with_stderr)
        posix_spawn_file_actions_adddup2(&fa, fds[1], STDERR_FILENO);
    else
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    pid_t pid;
    int e = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    char *buf = e ? NULL : malloc(cap + 1);
    size_t len = 0;
    while (buf) {
        ssize_t got = read(fds[0], buf + len, cap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
        if (len == cap) { /* the rest is read and dropped, so that the child can finish */
            char sink[4096];
            while (read(fds[0], sink, sizeof sink) > 0)
                ;
            break;
        }
    }
    close(fds[0]);
    if (e)
        return e;
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    if (!buf)
        return ENOMEM;
    buf[len] = '\0';
    *out = buf;
    return 0;
}
