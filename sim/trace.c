/* A trace of requests from a CSV file (sim/serve.h, docs/formats.md "Traces"): each row's
 * arrival and lengths, checked where they are written, so that a bad row is named by its
 * line and column rather than by its number among the requests. */
#include "sim/csv_internal.h"
#include "sim/internal.h"
#include "sim/serve.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { T_ARRIVAL, T_INPUT, T_OUTPUT, T_COUNT };

static const char *const columns[T_COUNT] = {"arrival_s", "input_tokens", "output_tokens"};

typedef struct {
    isim_trace *t;
    size_t cap_req, cap_at;
    long prev_line; /* of the arrival before */
} trace_ctx;

/* Seconds: a decimal number (digits, an optional fraction and exponent) up to the limit;
 * a sign, inf or nan is refused with what it is. */
static bool read_arrival(isim__csv *c, double *out)
{
    const char *s = isim__csv_get(c, T_ARRIVAL);
    char b[64];
    double v;
    if (isim__csv_decimal(s, &v)) {
        if (v <= ISIM_TRACE_MAX_ARRIVAL_S) {
            *out = v;
            return true;
        }
        isim__csv_fail_col(c, T_ARRIVAL, "%s s is more than the limit of %g (about 32 years)",
                           isim__csv_shown(s, b, sizeof b), ISIM_TRACE_MAX_ARRIVAL_S);
    } else if (s[0] == '-' && isim__csv_decimal(s + 1, &v)) {
        isim__csv_fail_col(c, T_ARRIVAL, "%s is negative: arrivals are seconds, from 0 up",
                           isim__csv_shown(s, b, sizeof b));
    } else {
        char *end;
        double x = strtod(s, &end);
        isim__csv_fail_col(c, T_ARRIVAL,
                           end != s && !*end && !isfinite(x)
                               ? "%s is not a finite number of seconds"
                               : "%s is not a number of seconds (digits, an optional fraction "
                                 "and exponent)",
                           isim__csv_shown(s, b, sizeof b));
    }
    return false;
}

static bool read_length(isim__csv *c, int k, int64_t *out)
{
    long long v;
    if (!isim__csv_whole(c, k, "", isim__csv_get(c, k), 1, ISIM_TRACE_MAX_TOKENS, &v))
        return false;
    *out = v;
    return true;
}

static void read_row(isim__csv *c, void *ctx)
{
    trace_ctx *x = ctx;
    isim_trace *t = x->t;
    isim_trace_req *req = isim__csv_grown(t->req, &x->cap_req, t->n + 1, sizeof *req);
    if (req)
        t->req = req;
    isim_trace_at *at = req ? isim__csv_grown(t->at, &x->cap_at, t->n + 1, sizeof *at) : NULL;
    if (!at) {
        isim__csv_fail(c, ISIM_ENOMEM, isim__csv_row_at(c), "out of memory");
        return;
    }
    t->at = at;
    isim_trace_req r;
    if (!read_arrival(c, &r.arrival_s))
        return;
    if (t->n > 0 && r.arrival_s < t->req[t->n - 1].arrival_s) {
        char b[64];
        isim__csv_fail_col(c, T_ARRIVAL,
                           "%s s is before the %.15g s of line %ld: arrivals must be in "
                           "ascending order",
                           isim__csv_shown(isim__csv_get(c, T_ARRIVAL), b, sizeof b),
                           t->req[t->n - 1].arrival_s, x->prev_line);
        return;
    }
    if (!read_length(c, T_INPUT, &r.input_tokens) || !read_length(c, T_OUTPUT, &r.output_tokens))
        return;
    isim__csv_pos p = isim__csv_at(c, T_INPUT);
    t->req[t->n] = r;
    t->at[t->n++] = (isim_trace_at){(int)p.line, (int)p.col};
    x->prev_line = isim__csv_at(c, T_ARRIVAL).line;
}

isim_status isim_trace_load(const char *path, isim_trace **out, isim_error *err)
{
    *out = NULL;
    isim_trace *t = calloc(1, sizeof *t);
    if (t)
        t->path = strdup(path);
    if (!t || !t->path) {
        isim_trace_free(t);
        return isim__fail(err, ISIM_ENOMEM, path, 0, 0, "out of memory");
    }
    trace_ctx x = {.t = t};
    const isim__csv_spec spec = {
        .columns = columns,
        .n_columns = T_COUNT,
        .max_bytes = ISIM_TRACE_MAX_BYTES,
        .max_fields = ISIM_TRACE_MAX_FIELDS,
        .max_field_bytes = ISIM_TRACE_MAX_FIELD_BYTES,
        .max_rows = ISIM_SERVE_MAX_REQUESTS,
        .row = read_row,
        .ctx = &x,
    };
    isim_status st = isim__csv_read(path, &spec, NULL, err);
    if (st) {
        isim_trace_free(t);
        return st;
    }
    *out = t;
    return ISIM_OK;
}

isim_status isim_trace_fits(const isim_trace *t, const isim_model *m, isim_error *err)
{
    for (size_t i = 0; i < t->n; i++) {
        const isim_trace_req *r = &t->req[i];
        if (r->input_tokens + r->output_tokens > m->max_context)
            return isim__fail(err, ISIM_ESCHEMA, t->path, t->at[i].line, t->at[i].column,
                              "request %zu: %lld input + %lld output tokens exceed %s's context "
                              "of %lld",
                              i + 1, (long long)r->input_tokens, (long long)r->output_tokens,
                              m->name, (long long)m->max_context);
    }
    return ISIM_OK;
}

void isim_trace_free(isim_trace *t)
{
    if (!t)
        return;
    free(t->path);
    free(t->req);
    free(t->at);
    free(t);
}
