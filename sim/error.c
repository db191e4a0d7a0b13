/* Status names and messages (one X-macro list in sim.h) and the error formatter. */
#include "sim/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *isim_status_name(isim_status s)
{
    switch (s) {
#define ISIM_X(name, msg)                                                                          \
    case ISIM_##name:                                                                              \
        return "ISIM_" #name;
        ISIM_STATUS_LIST(ISIM_X)
#undef ISIM_X
    default:
        return "ISIM_UNKNOWN";
    }
}

const char *isim_strerror(isim_status s)
{
    switch (s) {
#define ISIM_X(name, msg)                                                                          \
    case ISIM_##name:                                                                              \
        return msg;
        ISIM_STATUS_LIST(ISIM_X)
#undef ISIM_X
    default:
        return "unknown status";
    }
}

const char *isim_error_format(const isim_error *e, char *buf, size_t n)
{
    if (n == 0)
        return buf;
    if (e->file[0] && e->line > 0)
        snprintf(buf, n, "%s:%d:%d: %s", e->file, e->line, e->column, e->message);
    else if (e->file[0])
        snprintf(buf, n, "%s: %s", e->file, e->message);
    else
        snprintf(buf, n, "%s", e->message[0] ? e->message : isim_strerror(e->code));
    return buf;
}

isim_status isim_error_setv(isim_error *e, isim_status code, const char *file, int line, int column,
                            const char *fmt, va_list ap)
{
    if (!e)
        return code;
    memset(e, 0, sizeof *e);
    e->code = code;
    e->line = line;
    e->column = column;
    size_t n = file ? strlen(file) : 0;
    if (n < sizeof e->file)
        memcpy(e->file, file ? file : "", n + 1);
    else /* the end names the file: keep it */
        snprintf(e->file, sizeof e->file, "...%s", file + n - (sizeof e->file - 4));
    va_list again;
    va_copy(again, ap);
    int w = vsnprintf(e->message, sizeof e->message, fmt, ap);
    char *whole = w >= (int)sizeof e->message ? malloc((size_t)w + 1) : NULL;
    if (whole) {
        /* its start and its end, which in "PATH: reason" holds the reason */
        vsnprintf(whole, (size_t)w + 1, fmt, again);
        size_t half = (sizeof e->message - sizeof " ... ") / 2;
        snprintf(e->message, sizeof e->message, "%.*s ... %s", (int)half, whole,
                 whole + (size_t)w - half);
        free(whole);
    } else if (w >= (int)sizeof e->message) {
        memcpy(e->message + sizeof e->message - 4, "...", 4);
    }
    va_end(again);
    return code;
}

isim_status isim_error_set(isim_error *e, isim_status code, const char *file, int line, int column,
                           const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    isim_status st = isim_error_setv(e, code, file, line, column, fmt, ap);
    va_end(ap);
    return st;
}
