/* Option parsing and error reporting for every subcommand. */
#include "cli/cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fputs("infersim: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'infersim %s --help'.\n", cmd);
    return CLI_USAGE;
}

int cli_error(const isim_error *e)
{
    char buf[1400];
    fprintf(stderr, "infersim: error: %s\n", isim_error_format(e, buf, sizeof buf));
    return e->code == ISIM_ENOTFOUND || e->code == ISIM_EINVAL ? CLI_USAGE : CLI_FAIL;
}

cli_opt *cli_find(cli_opt *opts, const char *name)
{
    for (cli_opt *o = opts; o->name; o++)
        if (strcmp(o->name, name) == 0)
            return o;
    return NULL;
}

int cli_parse(const char *cmd, int argc, char **argv, int first, cli_opt *opts, const char **pos,
              int max_pos, int *n_pos)
{
    *n_pos = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return -1;
        if (strcmp(a, "-o") == 0 && cli_find(opts, "out"))
            a = "--out"; /* the one short option: -o DIR */
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (a[0] == '-' && a[1] != '\0')
                return cli_usage_error(cmd, "unknown option '%s'", a);
            if (*n_pos >= max_pos)
                return cli_usage_error(cmd, "unexpected argument '%s'", a);
            pos[(*n_pos)++] = a;
            continue;
        }
        char name[64];
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        if (len >= sizeof name)
            return cli_usage_error(cmd, "unknown option '%s'", a);
        memcpy(name, a + 2, len);
        name[len] = '\0';
        cli_opt *o = cli_find(opts, name);
        if (!o) {
            const char *near = NULL;
            size_t best = 3;
            for (cli_opt *c = opts; c->name; c++) {
                size_t d = isim_edit_distance(name, c->name);
                if (d < best) {
                    best = d;
                    near = c->name;
                }
            }
            if (near)
                return cli_usage_error(cmd, "unknown option '--%s' (did you mean '--%s'?)", name,
                                       near);
            return cli_usage_error(cmd, "unknown option '--%s'", name);
        }
        if (o->value)
            return cli_usage_error(cmd, "option '--%s' given twice", name);
        if (!o->has_value) {
            if (eq)
                return cli_usage_error(cmd, "option '--%s' takes no value", name);
            o->value = "";
        } else if (eq) {
            o->value = eq + 1;
        } else if (i + 1 < argc) {
            o->value = argv[++i];
        } else {
            return cli_usage_error(cmd, "option '--%s' needs a value", name);
        }
        if (o->has_value && o->value[0] == '\0')
            return cli_usage_error(cmd, "option '--%s' has an empty value", name);
    }
    return CLI_OK;
}

void cli_print_options(const cli_opt *opts)
{
    for (const cli_opt *o = opts; o->name; o++) {
        char left[48];
        snprintf(left, sizeof left, "--%s%s", o->name, o->has_value ? " VALUE" : "");
        printf("  %-26s %s\n", left, o->help);
    }
    printf("  %-26s %s\n", "-h, --help", "show this help");
}

/* Whether s is written as the docs describe numbers: decimal digits, a sign, a point, an
 * exponent; not hex (0x10), not inf or nan, no spaces (strtod and strtol take all three). */
static bool decimal(const char *s)
{
    for (const char *c = s; *c; c++)
        if (!((*c >= '0' && *c <= '9') || strchr("+-.eE", *c)))
            return false;
    return s[0] != '\0';
}

/* v in the fewest significant digits that read back as v: a limit such as 2^53 printed
 * whole (9007199254740992), not rounded by %g to a number past it or short of it */
static const char *exact(double v, char *buf, size_t n)
{
    for (int digits = 6; digits <= 17; digits++) {
        snprintf(buf, n, "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return buf;
}

bool cli_number(const char *cmd, const cli_opt *o, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(o->value, &end);
    if (!decimal(o->value) || end == o->value || *end || errno || !isfinite(v)) {
        cli_usage_error(cmd, "--%s: expected a number, got '%s'", o->name, o->value);
        return false;
    }
    if (v < min || v > max) {
        char lo[32], hi[32];
        cli_usage_error(cmd, "--%s: %s is out of range [%s, %s]", o->name, o->value,
                        exact(min, lo, sizeof lo), exact(max, hi, sizeof hi));
        return false;
    }
    *out = v;
    return true;
}

bool cli_int(const char *cmd, const cli_opt *o, long min, long max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(o->value, &end, 10);
    if (!decimal(o->value) || end == o->value || *end || errno) {
        cli_usage_error(cmd, "--%s: expected a whole number, got '%s'", o->name, o->value);
        return false;
    }
    if (v < min || v > max) {
        cli_usage_error(cmd, "--%s: %s is out of range [%ld, %ld]", o->name, o->value, min, max);
        return false;
    }
    *out = (int)v;
    return true;
}

const char *cli_data_dir(const cli_opt *data_opt)
{
    if (data_opt && data_opt->value)
        return data_opt->value;
    const char *env = getenv("INFERSIM_DATA");
    return env && env[0] ? env : ISIM_DATA_DIR;
}

bool cli_fidelity(const char *cmd, const cli_opt *o, isim_fidelity *out)
{
    if (!o->value)
        return true;
    if (strcmp(o->value, "paper") == 0)
        *out = ISIM_PAPER;
    else if (strcmp(o->value, "deploy") == 0)
        *out = ISIM_DEPLOY;
    else {
        cli_usage_error(cmd, "--fidelity: expected paper or deploy, got '%s'", o->value);
        return false;
    }
    return true;
}

char *cli_concat(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 1);
    if (s) {
        memcpy(s, a, na);
        memcpy(s + na, b, nb + 1);
    }
    return s;
}

int cli_oom(void)
{
    fputs("infersim: error: out of memory\n", stderr);
    return CLI_FAIL;
}

int cli_list(const char *cmd, const cli_opt *o, char ***items, size_t *n)
{
    *items = NULL;
    *n = 0;
    size_t count = 1;
    for (const char *c = o->value; *c; c++)
        count += *c == ',';
    /* the pointers, then a copy of the text they point into */
    char **out = malloc(count * sizeof *out + strlen(o->value) + 1);
    if (!out)
        return cli_oom();
    char *text = (char *)(out + count);
    strcpy(text, o->value);
    for (size_t i = 0; i < count; i++) {
        out[i] = text;
        text += strcspn(text, ",");
        *text++ = '\0';
        if (!out[i][0]) {
            free(out);
            return cli_usage_error(cmd,
                                   "--%s: item %zu of the list is empty (items are "
                                   "separated by single commas)",
                                   o->name, i + 1);
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(out[j], out[i]) == 0) {
                int rc = cli_usage_error(cmd, "--%s: '%s' is named twice", o->name, out[i]);
                free(out);
                return rc;
            }
    }
    *items = out;
    *n = count;
    return CLI_OK;
}
