/* Drawing with gnuplot, run as a program: the terminal and output for a .png or .svg, the
 * image written beside its destination and renamed over it when complete, gnuplot's own
 * message when it fails. */
#include "reports/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

isim_status isim__gnuplot_fail(isim_error *err, const char *fmt, ...)
{
    if (err) {
        memset(err, 0, sizeof *err);
        err->code = ISIM_EIO;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return ISIM_EIO;
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

/* gnuplot's message is the last line it printed that says something. */
static void last_message(const char *log, char *msg, size_t n)
{
    char line[300];
    msg[0] = '\0';
    FILE *e = fopen(log, "r");
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
    size_t len = strlen(path) + 32;
    char *tmp = malloc(len);
    char sdir[] = "/tmp/infersim-plot-XXXXXX", script[64], errlog[64];
    if (!tmp)
        return isim__gnuplot_fail(err, "out of memory");
    if (!mkdtemp(sdir)) {
        free(tmp);
        return isim__gnuplot_fail(err, "%s: cannot create a temporary file: %s", path,
                                  strerror(errno));
    }
    snprintf(tmp, len, "%s.tmp-%ld%s", path, (long)getpid(), dot);
    snprintf(script, sizeof script, "%s/plot.gp", sdir);
    snprintf(errlog, sizeof errlog, "%s/err.txt", sdir);
    isim_status st = ISIM_OK;
    FILE *f = fopen(script, "w");
    if (!f) {
        st = isim__gnuplot_fail(err, "%s: %s", script, strerror(errno));
        goto cleanup;
    }
    /* labels are literal text: no sub- and superscripts from underscores and carets */
    fprintf(f, "set terminal %s noenhanced\n", term);
    /* one palette for every figure: Okabe and Ito's colour-blind-safe set, its yellow left
     * out (too light on white) */
    static const char *const colors[] = {"#0072b2", "#e69f00", "#009e73", "#cc79a7",
                                         "#d55e00", "#56b4e9", "#000000", "#999999"};
    for (int i = 0; i < 8; i++)
        fprintf(f, "set linetype %d lc rgb '%s' lw 1\n", i + 1, colors[i]);
    fputs("set linetype cycle 8\nset output ", f);
    isim__gp_string(f, tmp);
    fprintf(f, "\n%s\nunset output\n", body);
    if (fclose(f) != 0) {
        st = isim__gnuplot_fail(err, "%s: cannot write: %s", script, strerror(errno));
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
    char cmd[256];
    snprintf(cmd, sizeof cmd, "gnuplot '%s' 2>'%s'", script, errlog);
    int rc = system(cmd);
    if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
        char msg[300];
        last_message(errlog, msg, sizeof msg);
        if (WIFEXITED(rc) && WEXITSTATUS(rc) == 127)
            st = isim__gnuplot_fail(err, "%s: gnuplot was not found (install gnuplot-nox)", path);
        else
            st = isim__gnuplot_fail(err, "%s: gnuplot failed: %s", path,
                                    msg[0] ? msg : "no message");
        remove(tmp);
        goto cleanup;
    }
    if (rename(tmp, path) != 0) {
        st = isim__gnuplot_fail(err, "%s: cannot write: %s", path, strerror(errno));
        remove(tmp);
    }
cleanup:
    remove(script);
    remove(errlog);
    rmdir(sdir);
    free(tmp);
    return st;
}
