/* Drawing with gnuplot, run as a program (no shell): the terminal and output for a .png or
 * .svg, the image written beside its destination and renamed over it when complete,
 * gnuplot's own message when it fails. */
#define _GNU_SOURCE /* memfd_create */
#include "reports/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

isim_status isim__gnuplot_fail(isim_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    isim_status st = isim_error_setv(err, ISIM_EIO, NULL, 0, 0, fmt, ap);
    va_end(ap);
    return st;
}

void isim__gp_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '\n')
            fputs("\\n", f); /* an escape gnuplot turns into a line break of the label */
        else if (*c < 0x20 || *c == 0x7f)
            fputc(' ', f); /* a raw line break would end the command or the data block */
        else if (*c == '"')
            fputs("\\042", f); /* the data reader ends a string at any '"', escaped or not */
        else if (*c == '`')
            fputs("\\140", f); /* gnuplot runs `text` even inside double quotes */
        else if (*c == '\\')
            fputs("\\\\", f);
        else
            fputc(*c, f);
    }
    fputc('"', f);
}

isim_status isim__close_written(FILE *f, const char *path, isim_error *err)
{
    /* a full disk may show only at the flush or, with delayed allocation, at fsync */
    int e = 0;
    if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0)
        e = errno ? errno : EIO;
    if (fclose(f) != 0 && !e)
        e = errno ? errno : EIO;
    if (e)
        return isim__gnuplot_fail(err, "%s: cannot write: %s", path, strerror(e));
    return ISIM_OK;
}

/* gnuplot's message is the last line it printed on stderr (the memory file errs) that says
 * something. */
static void last_message(int errs, char *msg, size_t n)
{
    char line[300];
    msg[0] = '\0';
    int fd = lseek(errs, 0, SEEK_SET) == 0 ? dup(errs) : -1;
    FILE *e = fd < 0 ? NULL : fdopen(fd, "r");
    if (!e && fd >= 0)
        close(fd);
    while (e && fgets(line, sizeof line, e)) {
        char *a = line, *z = line + strlen(line);
        while (*a == ' ' || *a == '\t' || *a == '"')
            a++;
        while (z > a && (z[-1] == '\n' || z[-1] == ' ' || z[-1] == '\r'))
            *--z = '\0';
        if (*a && strcmp(a, "^") != 0)
            snprintf(msg, n, "%s", a);
    }
    if (e)
        fclose(e);
}

/* Whether the image gnuplot wrote at path is whole, and on the disk: gnuplot exits 0 having
 * written a cut file when the disk fills or a file size limit stops it. A PNG ends with its
 * IEND chunk, an SVG with its closing tag. */
static bool whole_image(const char *path, bool png)
{
    static const unsigned char iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat sb;
    unsigned char tail[16] = {0};
    size_t n = sizeof tail;
    bool ok = fstat(fd, &sb) == 0 && sb.st_size >= (off_t)n &&
              pread(fd, tail, n, sb.st_size - (off_t)n) == (ssize_t)n && fsync(fd) == 0;
    close(fd);
    if (!ok)
        return false;
    if (png)
        return memcmp(tail + n - sizeof iend, iend, sizeof iend) == 0;
    while (n > 0 && (tail[n - 1] == '\n' || tail[n - 1] == ' '))
        n--;
    return n >= 6 && memcmp(tail + n - 6, "</svg>", 6) == 0;
}

/* Runs gnuplot, no shell between, on the script in memory file `script` (its standard
 * input, read as a file so that the first error stops it), its messages into memory file
 * `errs`. Returns its wait status, or -1 with errno set. The child dies with this process
 * (a killed report must not leave gnuplot writing into it) and takes back the signals that
 * the caller may block or ignore. */
static int run_gnuplot(int script, int errs)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(126);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            signal(sigs[i], SIG_DFL);
        int null = open("/dev/null", O_WRONLY);
        if (null < 0 || dup2(script, 0) < 0 || dup2(null, 1) < 0 || dup2(errs, 2) < 0)
            _exit(126);
        execlp("gnuplot", "gnuplot", "/dev/stdin", (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return status;
}

/* The script: terminal, palette and output, then body. */
static void write_script(FILE *f, const char *term, const char *out, const char *body)
{
    /* labels are literal text: no sub- and superscripts from underscores and carets */
    fprintf(f, "set terminal %s noenhanced\n", term);
    /* one palette for every figure: Okabe and Ito's colour-blind-safe set, its yellow left
     * out (too light on white) */
    static const char *const colors[] = {"#0072b2", "#e69f00", "#009e73", "#cc79a7",
                                         "#d55e00", "#56b4e9", "#000000", "#999999"};
    for (int i = 0; i < 8; i++)
        fprintf(f, "set linetype %d lc rgb '%s' lw 1\n", i + 1, colors[i]);
    fputs("set linetype cycle 8\nset output ", f);
    isim__gp_string(f, out);
    fprintf(f, "\n%s\nunset output\n", body);
}

isim_status isim__gnuplot(const char *path, int width, int height, const char *body,
                          isim_error *err)
{
    const char *dot = strrchr(path, '.');
    char term[128];
    if (dot && strcmp(dot, ".png") == 0)
        snprintf(term, sizeof term, "pngcairo size %d,%d font 'Sans,11'", width, height);
    else if (dot && strcmp(dot, ".svg") == 0)
        snprintf(term, sizeof term, "svg size %d,%d dynamic font 'Sans,11'", width, height);
    else
        return isim__gnuplot_fail(err, "%s: the plot must be a .png or .svg file", path);
    for (const unsigned char *c = (const unsigned char *)path; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return isim__gnuplot_fail(err, "a plot's path holds control character 0x%02x", *c);
    size_t len = strlen(path) + 32;
    char *tmp = malloc(len);
    if (!tmp)
        return isim__gnuplot_fail(err, "out of memory");
    snprintf(tmp, len, "%s.tmp-%ld%s", path, (long)getpid(), dot);
    /* the script and gnuplot's messages live in memory: nothing to leave behind in a
     * temporary directory if the process is killed */
    int script = memfd_create("infersim-plot.gp", MFD_CLOEXEC);
    int errs = memfd_create("infersim-plot.err", MFD_CLOEXEC);
    int fd = script < 0 ? -1 : dup(script);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
    isim_status st = ISIM_OK;
    if (!f || errs < 0) {
        int e = errno;
        if (f)
            fclose(f);
        else if (fd >= 0)
            close(fd);
        st = isim__gnuplot_fail(err, "%s: cannot make gnuplot's script: %s", path, strerror(e));
        goto cleanup;
    }
    write_script(f, term, tmp, body);
    if (fclose(f) != 0 || lseek(script, 0, SEEK_SET) != 0) {
        st = isim__gnuplot_fail(err, "%s: cannot make gnuplot's script: %s", path, strerror(errno));
        goto cleanup;
    }
    /* the destination's directory must take a file: say so plainly rather than through
     * gnuplot */
    FILE *probe = fopen(tmp, "wb");
    if (!probe) {
        st = isim__gnuplot_fail(err, "%s: cannot write: %s", path, strerror(errno));
        goto cleanup;
    }
    fclose(probe);
    int rc = run_gnuplot(script, errs);
    if (rc == -1) {
        st = isim__gnuplot_fail(err, "%s: cannot run gnuplot: %s", path, strerror(errno));
    } else if (WIFEXITED(rc) && WEXITSTATUS(rc) == 127) {
        st = isim__gnuplot_fail(err, "%s: gnuplot was not found (install gnuplot-nox)", path);
    } else if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
        char msg[300];
        last_message(errs, msg, sizeof msg);
        st = isim__gnuplot_fail(err, "%s: gnuplot failed: %s", path, msg[0] ? msg : "no message");
    } else if (!whole_image(tmp, strcmp(dot, ".png") == 0)) {
        st = isim__gnuplot_fail(err,
                                "%s: gnuplot could not write the whole image (is the disk "
                                "full, or a file size limit set?)",
                                path);
    } else if (rename(tmp, path) != 0) {
        st = isim__gnuplot_fail(err, "%s: cannot write: %s", path, strerror(errno));
    }
    if (st)
        remove(tmp);
cleanup:
    if (script >= 0)
        close(script);
    if (errs >= 0)
        close(errs);
    free(tmp);
    return st;
}
