#include "tests/testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

char *tu_write(const char *name, const char *text)
{
    char dir[] = "/tmp/isim-test-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    snprintf(path, n, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
    return path;
}

void tu_discard(char *path)
{
    remove(path);
    char *slash = strrchr(path, '/');
    if (slash) {
        *slash = '\0';
        rmdir(path);
    }
    free(path);
}

char *tu_replace(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    cr_assert_not_null(at, "'%s' not in the base text", from);
    size_t head = (size_t)(at - text), n = strlen(text) - strlen(from) + strlen(to) + 1;
    char *s = malloc(n);
    memcpy(s, text, head);
    strcpy(s + head, to);
    strcat(s, at + strlen(from));
    return s;
}

char *tu_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *s = NULL;
    size_t n = 0, cap = 0;
    for (;;) { /* not by the file's size: a pipe or a growing file has none */
        if (n + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 65536;
            s = realloc(s, cap);
            cr_assert_not_null(s);
        }
        size_t got = fread(s + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    s[n] = '\0';
    if (len)
        *len = n;
    return s;
}

static char *slurp(const char *path)
{
    char *s = tu_read(path, NULL);
    cr_assert_not_null(s, "cannot read %s", path);
    return s;
}

int tu_run_with(const char *prefix, const char *args, char **out, char **err)
{
    char dir[] = "/tmp/isim-run-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    size_t n = strlen(prefix) + strlen(args) + strlen(ISIM_BIN) + strlen(ISIM_DATA_DIR) + 128;
    char *cmd = malloc(n);
    cr_assert_not_null(cmd);
    snprintf(cmd, n, "%s INFERSIM_DATA='%s' '%s' %s >'%s/out' 2>'%s/err'", prefix, ISIM_DATA_DIR,
             ISIM_BIN, args, dir, dir);
    int st = system(cmd);
    free(cmd);
    cr_assert(st != -1 && (WIFEXITED(st) || WIFSIGNALED(st)), "could not run: %s", args);
    char path[512];
    snprintf(path, sizeof path, "%s/out", dir);
    if (out)
        *out = slurp(path);
    remove(path);
    snprintf(path, sizeof path, "%s/err", dir);
    if (err)
        *err = slurp(path);
    remove(path);
    rmdir(dir);
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

int tu_run(const char *args, char **out, char **err)
{
    int rc = tu_run_with("", args, out, err);
    cr_assert(rc < 128, "infersim did not exit normally (%d): %s", rc, args);
    return rc;
}

isim_model *tu_model(const char *id)
{
    isim_model *m = NULL;
    isim_error e = {0};
    char buf[1400];
    isim_status st = isim_catalog_model(ISIM_DATA_DIR, id, &m, &e);
    cr_assert_eq(st, ISIM_OK, "%s", isim_error_format(&e, buf, sizeof buf));
    return m;
}

isim_hw *tu_hw(const char *id)
{
    isim_hw *h = NULL;
    isim_error e = {0};
    char buf[1400];
    isim_status st = isim_catalog_hw(ISIM_DATA_DIR, id, &h, &e);
    cr_assert_eq(st, ISIM_OK, "%s", isim_error_format(&e, buf, sizeof buf));
    /* the profile's own values: tests check the step model against hand calculations from
     * them, not against a fit to measured serving (tests/test_fit.c checks those) */
    isim_hw_apply_fit(h, &h->unfitted, h);
    return h;
}

int tu_close(double got, double want, double rel)
{
    return fabs(got - want) <= rel * fabs(want);
}

cJSON *tu_run_json(const char *args)
{
    char *out = NULL, *err = NULL;
    int rc = tu_run(args, &out, &err);
    cr_assert_eq(rc, 0, "'%s': exit %d: %s", args, rc, err);
    cJSON *j = cJSON_Parse(out);
    cr_assert_not_null(j, "'%s' printed no JSON: %s", args, out);
    free(out);
    free(err);
    return j;
}

double tu_num(const cJSON *j, const char *key)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);
    cr_assert(cJSON_IsNumber(x), "no number '%s'", key);
    return x->valuedouble;
}

void tu_expect_error(const char *args, int code, const char *needle, bool quiet)
{
    char *out = NULL, *err = NULL;
    int rc = tu_run(args, &out, &err);
    cr_expect_eq(rc, code, "'%s': exit %d, expected %d (%s)", args, rc, code, err);
    cr_expect(strncmp(err, "infersim: error: ", 17) == 0, "'%s': stderr '%s'", args, err);
    cr_expect(strstr(err, needle) != NULL, "'%s': '%s' not in '%s'", args, needle, err);
    if (quiet)
        cr_expect_str_eq(out, "", "'%s' printed to stdout", args);
    free(out);
    free(err);
}

static void deadline_passed(int sig)
{
    static const char msg[] = "the test ran past its deadline\n";
    ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)n;
    signal(sig, SIG_DFL);
    raise(sig);
}

void tu_deadline(unsigned seconds)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = deadline_passed;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    alarm(seconds);
}
