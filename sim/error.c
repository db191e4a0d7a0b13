/* Status names and messages (one X-macro list in sim.h) and the error formatter. */
#include "sim/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *isim_status_name(isim_status s)
{
    switch (s) {
#define ISIM_X(name, msg)                                                                  \
    case ISIM_##name:                                                                      \
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
#define ISIM_X(name, msg)                                                                  \
    case ISIM_##name:                                                                      \
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

isim_status isim__fail(isim_error *err, isim_status code, const char *file, int line,
                       int column, const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    err->line = line;
    err->column = column;
    snprintf(err->file, sizeof err->file, "%s", file ? file : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}
