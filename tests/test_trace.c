/* Traces of requests (sim/serve.h, isim_trace_load; docs/formats.md "Traces"): a good file in
 * the forms spreadsheets and scripts write, and each refusal with its exact message at the
 * line and column of the field. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim/serve.h"
#include "tests/testutil.h"

#define HEAD "arrival_s,input_tokens,output_tokens\n"

static char *write_bytes(const char *data, size_t n)
{
    char *path = tu_write("trace.csv", "");
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
    return path;
}

static isim_trace *load(const char *text, char **path)
{
    *path = write_bytes(text, strlen(text));
    isim_trace *t = NULL;
    isim_error e = {0};
    cr_assert_eq(isim_trace_load(*path, &t, &e), ISIM_OK, "%s:%d:%d: %s", e.file, e.line, e.column,
                 e.message);
    cr_assert_not_null(t);
    return t;
}

/* Loading the n bytes is refused with status st and exactly this message at line:column. */
static void expect_refused(const char *data, size_t n, isim_status st, int line, int column,
                           const char *message)
{
    char *path = write_bytes(data, n);
    isim_trace *t = NULL;
    isim_error e = {0};
    cr_expect_eq(isim_trace_load(path, &t, &e), st, "%s: status %s", message,
                 isim_status_name(e.code));
    cr_expect_null(t);
    cr_expect_str_eq(e.message, message);
    cr_expect_str_eq(e.file, path);
    cr_expect_eq(e.line, line, "%s: line %d, expected %d", message, e.line, line);
    cr_expect_eq(e.column, column, "%s: column %d, expected %d", message, e.column, column);
    isim_trace_free(t);
    tu_discard(path);
}

/* A byte-order mark, CRLF line ends, columns in another order among others, quoted fields
 * (one spanning two lines), an exponent, equal arrivals and a last line without its end. */
Test(trace, a_spreadsheets_file_with_extra_columns_and_quoted_fields_is_read)
{
    char *path;
    isim_trace *t = load("\xef\xbb\xbfid,output_tokens,arrival_s,\"input_tokens\",note\r\n"
                         "1,20,0.5,100,\"a, b\"\r\n"
                         "2,\"7\",1.25e0,\"300\",\"two\r\nlines\"\r\n"
                         "3,1,1.25,1,",
                         &path);
    cr_assert_eq(t->n, 3u);
    cr_assert_str_eq(t->path, path);
    const isim_trace_req want[3] = {{0.5, 100, 20}, {1.25, 300, 7}, {1.25, 1, 1}};
    const isim_trace_at at[3] = {{2, 10}, {3, 14}, {5, 10}}; /* of each input_tokens */
    for (size_t i = 0; i < 3; i++) {
        cr_expect(tu_close(t->req[i].arrival_s, want[i].arrival_s, 1e-15), "request %zu", i + 1);
        cr_expect_eq(t->req[i].input_tokens, want[i].input_tokens, "request %zu", i + 1);
        cr_expect_eq(t->req[i].output_tokens, want[i].output_tokens, "request %zu", i + 1);
        cr_expect_eq(t->at[i].line, at[i].line, "request %zu", i + 1);
        cr_expect_eq(t->at[i].column, at[i].column, "request %zu", i + 1);
    }
    isim_trace_free(t);
    tu_discard(path);
    /* lines that end in CR alone; a first arrival past 0 is kept as written */
    t = load("arrival_s,input_tokens,output_tokens\r7,10,5\r8.5,12,6\r", &path);
    cr_assert_eq(t->n, 2u);
    cr_expect(tu_close(t->req[1].arrival_s, 8.5, 1e-15));
    cr_expect_eq(t->at[1].line, 3);
    cr_expect_eq(t->at[1].column, 5);
    isim_trace_free(t);
    tu_discard(path);
}

Test(trace, malformed_files_are_refused_at_the_line_and_column_of_the_field)
{
    static const char quoted_long[] = HEAD "0,\"12,1\n";
    const struct {
        const char *data;
        isim_status st;
        int line, col;
        const char *message;
    } cases[] = {
        {"", ISIM_ESCHEMA, 1, 1, "empty file: no header"},
        {"\xef\xbb\xbf", ISIM_ESCHEMA, 1, 1, "only a UTF-8 byte-order mark: no header"},
        {"\n\r\n", ISIM_ESCHEMA, 1, 1, "only blank lines: no header"},
        {HEAD, ISIM_ESCHEMA, 1, 1, "no rows: the file holds only its header"},
        {HEAD "\n\n", ISIM_ESCHEMA, 1, 1, "no rows: the file holds only its header"},
        {"arrival_s,input_tokens\n0,1\n", ISIM_ESCHEMA, 1, 1,
         "no column 'output_tokens' in the header"},
        {"arrival_s,input_tokens,output_tokens,input_tokens\n0,1,1,1\n", ISIM_ESCHEMA, 1, 38,
         "column 'input_tokens' given twice in the header (first at 1:11)"},
        {HEAD "0,1\n", ISIM_ESCHEMA, 2, 4, "2 fields where the header has 3: no 'output_tokens'"},
        {HEAD "0,1,1,9\n", ISIM_ESCHEMA, 2, 7, "field 4 where the header has 3"},
        {HEAD "0,1\"2,1\n", ISIM_EPARSE, 2, 4,
         "a quote inside an unquoted field (quote the field and double the quote)"},
        {HEAD "0,\"1\"2,1\n", ISIM_EPARSE, 2, 6, "text after the closing quote of a quoted field"},
        {quoted_long, ISIM_EPARSE, 2, 3,
         "unterminated quoted field: the quote opened here is never closed"},
        {HEAD "0,1,\x01\n", ISIM_EPARSE, 2, 5, "control character 0x01: not CSV text"},
        {HEAD "0,1,\xff\n", ISIM_EPARSE, 2, 5, "byte 0xff: not UTF-8 text"},
        {HEAD "soon,1,1\n", ISIM_ESCHEMA, 2, 1,
         "column 'arrival_s': 'soon' is not a number of seconds (digits, an optional fraction "
         "and exponent)"},
        {HEAD ",1,1\n", ISIM_ESCHEMA, 2, 1,
         "column 'arrival_s': '' is not a number of seconds (digits, an optional fraction and "
         "exponent)"},
        {HEAD "0x10,1,1\n", ISIM_ESCHEMA, 2, 1,
         "column 'arrival_s': '0x10' is not a number of seconds (digits, an optional fraction "
         "and exponent)"},
        {HEAD "-0.5,1,1\n", ISIM_ESCHEMA, 2, 1,
         "column 'arrival_s': '-0.5' is negative: arrivals are seconds, from 0 up"},
        {HEAD "inf,1,1\n", ISIM_ESCHEMA, 2, 1,
         "column 'arrival_s': 'inf' is not a finite number of seconds"},
        {HEAD "NaN,1,1\n", ISIM_ESCHEMA, 2, 1,
         "column 'arrival_s': 'NaN' is not a finite number of seconds"},
        {HEAD "1000000000.5,1,1\n", ISIM_ESCHEMA, 2, 1,
         "column 'arrival_s': '1000000000.5' s is more than the limit of 1e+09 (about 32 "
         "years)"},
        {HEAD "1e999,1,1\n", ISIM_ESCHEMA, 2, 1,
         "column 'arrival_s': '1e999' s is more than the limit of 1e+09 (about 32 years)"},
        {HEAD "0,1.5,1\n", ISIM_ESCHEMA, 2, 3,
         "column 'input_tokens': '1.5' is not a whole number (digits only)"},
        {HEAD "0,-3,1\n", ISIM_ESCHEMA, 2, 3,
         "column 'input_tokens': '-3' is not a whole number (digits only)"},
        {HEAD "0,,1\n", ISIM_ESCHEMA, 2, 3,
         "column 'input_tokens': '' is not a whole number (digits only)"},
        {HEAD "0,1,0\n", ISIM_ESCHEMA, 2, 5,
         "column 'output_tokens': '0' is less than the minimum of 1"},
        {HEAD "0,1000000001,1\n", ISIM_ESCHEMA, 2, 3,
         "column 'input_tokens': '1000000001' is more than the limit of 1000000000"},
        {HEAD "0,1,99999999999999999999999\n", ISIM_ESCHEMA, 2, 5,
         "column 'output_tokens': '99999999999999999999999' is more than the limit of "
         "1000000000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_refused(cases[i].data, strlen(cases[i].data), cases[i].st, cases[i].line,
                       cases[i].col, cases[i].message);
    /* a NUL, which strlen would not count */
    expect_refused(HEAD "0,1,\0\n", sizeof HEAD + 5, ISIM_EPARSE, 2, 5,
                   "control character 0x00: not CSV text");
}

/* The arrival before is named by its line; equal arrivals are in order. */
Test(trace, arrivals_out_of_order_are_refused_naming_both_lines)
{
    static const char text[] = HEAD "0,1,1\n2.5,1,1\n\n2.5,1,1\n1,1,1\n";
    expect_refused(text, strlen(text), ISIM_ESCHEMA, 6, 1,
                   "column 'arrival_s': '1' s is before the 2.5 s of line 5: arrivals must be in "
                   "ascending order");
}

Test(trace, fields_and_files_past_their_limits_are_refused)
{
    /* a field of 4097 bytes, and one of 4096 */
    size_t n = strlen(HEAD) + 4097 + 8;
    char *text = malloc(n + 1);
    snprintf(text, n + 1, HEAD "0,1,%04097d\n", 1);
    expect_refused(text, strlen(text), ISIM_ESCHEMA, 2, 5,
                   "a field of more than 4096 bytes (the limit)");
    snprintf(text, n + 1, HEAD "0,1,%04096d\n", 1);
    char *path;
    isim_trace *t = load(text, &path);
    cr_expect_eq(t->req[0].output_tokens, 1);
    isim_trace_free(t);
    tu_discard(path);
    /* 257 fields in the header */
    size_t used = (size_t)snprintf(text, n + 1, "arrival_s,input_tokens,output_tokens");
    for (int k = 4; k <= 257; k++)
        used += (size_t)snprintf(text + used, n + 1 - used, ",c%d", k);
    snprintf(text + used, n + 1 - used, "\n");
    expect_refused(text, strlen(text), ISIM_ESCHEMA, 1, (int)used - 3,
                   "more than 256 fields in a record (the limit)");
    free(text);
    /* a file past 1 GiB, refused before it is read */
    path = tu_write("trace.csv", HEAD);
    cr_assert_eq(truncate(path, ((off_t)1 << 30) + 1), 0);
    isim_error e = {0};
    cr_expect_eq(isim_trace_load(path, &t, &e), ISIM_ESCHEMA);
    cr_expect_null(t);
    cr_expect_str_eq(e.message, "1073741825 bytes, more than the limit of 1073741824 (1024 MiB)");
    cr_expect_eq(e.line, 0);
    tu_discard(path);
}

/* ISIM_SERVE_MAX_REQUESTS rows load; one more is refused at its line. */
Test(trace, more_requests_than_a_simulation_takes_are_refused)
{
    tu_deadline(120);
    static const char row[] = "0,1,1\n";
    size_t head = strlen(HEAD), k = strlen(row);
    size_t n = head + (size_t)(ISIM_SERVE_MAX_REQUESTS + 1) * k;
    char *text = malloc(n);
    memcpy(text, HEAD, head);
    for (size_t i = 0; i <= ISIM_SERVE_MAX_REQUESTS; i++)
        memcpy(text + head + i * k, row, k);
    char *path = write_bytes(text, n - k);
    isim_trace *t = NULL;
    isim_error e = {0};
    cr_expect_eq(isim_trace_load(path, &t, &e), ISIM_OK, "%s", e.message);
    cr_expect_eq(t ? t->n : 0, (size_t)ISIM_SERVE_MAX_REQUESTS);
    isim_trace_free(t);
    tu_discard(path);
    expect_refused(text, n, ISIM_ESCHEMA, ISIM_SERVE_MAX_REQUESTS + 2, 1,
                   "more than 10000000 rows (the limit)");
    free(text);
}

Test(trace, a_directory_or_a_missing_file_is_refused_with_the_reason)
{
    char *path = tu_write("trace.csv", HEAD), other[1024];
    isim_trace *t = NULL;
    isim_error e = {0};
    snprintf(other, sizeof other, "%.*s", (int)(strrchr(path, '/') - path), path);
    cr_expect_eq(isim_trace_load(other, &t, &e), ISIM_EIO);
    cr_expect_str_eq(e.message, "a directory, not a CSV file");
    snprintf(other, sizeof other, "%s.missing", path);
    cr_expect_eq(isim_trace_load(other, &t, &e), ISIM_EIO);
    cr_expect_str_eq(e.message, "cannot open: No such file or directory");
    cr_expect_null(t);
    tu_discard(path);
}

/* The simulator would name the request by its number; the file names its line. */
Test(trace, a_request_longer_than_the_models_context_is_refused_at_its_line)
{
    char *path;
    isim_trace *t = load(HEAD "0,1000,200\n1,131000,72\n2,131000,73\n", &path);
    isim_model *m = tu_model("llama-3.1-8b");
    isim_error e = {0};
    cr_expect_eq(isim_trace_fits(t, m, &e), ISIM_ESCHEMA);
    cr_expect_str_eq(e.message, "request 3: 131000 input + 73 output tokens exceed Llama 3.1 "
                                "8B's context of 131072");
    cr_expect_eq(e.line, 4);
    cr_expect_eq(e.column, 3);
    t->n = 2; /* 131072 tokens exactly fit */
    cr_expect_eq(isim_trace_fits(t, m, &e), ISIM_OK);
    isim_model_free(m);
    isim_trace_free(t);
    tu_discard(path);
}
