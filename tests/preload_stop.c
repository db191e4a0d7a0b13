/* LD_PRELOAD'd into infersim by the output tests to stop it at an exact point:
 *   ISIM_STOP_AT_FORK=N:SIG      send signal SIG to the process at its Nth fork (gnuplot's
 *                                Nth run), then go on: the signal arrives while it draws;
 *   ISIM_STOP_AT_EXCHANGE=before|after
 *                                SIGKILL the process just before or just after its first
 *                                renameat2 (the report's exchange with the previous one).
 * Unset, each call goes straight to the C library's. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

pid_t fork(void);
int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
              unsigned int flags);

pid_t fork(void)
{
    static int calls;
    pid_t (*real)(void);
    *(void **)&real = dlsym(RTLD_NEXT, "fork"); /* POSIX's way to a function from dlsym */
    const char *at = getenv("ISIM_STOP_AT_FORK");
    int n = 0, sig = 0;
    if (at && sscanf(at, "%d:%d", &n, &sig) == 2 && ++calls == n)
        kill(getpid(), sig);
    return real();
}

int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
              unsigned int flags)
{
    int (*real)(int, const char *, int, const char *, unsigned int);
    *(void **)&real = dlsym(RTLD_NEXT, "renameat2");
    const char *at = getenv("ISIM_STOP_AT_EXCHANGE");
    if (at && strcmp(at, "before") == 0)
        raise(SIGKILL);
    int rc = real(olddirfd, oldpath, newdirfd, newpath, flags);
    if (at && strcmp(at, "after") == 0)
        raise(SIGKILL);
    return rc;
}
