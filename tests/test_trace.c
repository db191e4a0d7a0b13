/* Traces of requests (sim/serve.h, isim_trace_load; docs/formats.md "Traces"): a good file in
 * the forms spreadsheets and scripts write, each refusal with its exact message at the line
 * and column of the field, and `simulate --trace` against the figures of requests served
 * alone. */
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

/* ---- the commands ---------------------------------------------------------------------- */

#define SIM8B "simulate --model llama-3.1-8b --hw h100-sxm --devices 1 "

static cJSON *traffic_of(const char *args)
{
    cJSON *j = tu_run_json(args);
    cr_assert_not_null(j, "%s", args);
    return j;
}

static const cJSON *item(const cJSON *j, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, a);
    x = b ? cJSON_GetObjectItemCaseSensitive(x, b) : x;
    cr_assert_not_null(x, "no %s.%s", a, b ? b : "");
    return x;
}

/* A trace of one request, arriving at 5 s, is that request served alone (the closed loop of
 * one client and one request): the same TTFT, TPOT and end-to-end latency, from 0. Two
 * requests 100 s apart are each served alone, and the run lasts 100 s and the second's
 * latency. */
Test(trace_cli, a_request_of_a_trace_alone_has_the_figures_of_a_request_alone)
{
    char *one = tu_write("one.csv", HEAD "5,1000,200\n"), args[2048];
    char *two = tu_write("two.csv", HEAD "10,1000,200\n110,1000,200\n");
    cJSON *alone = traffic_of(SIM8B "--concurrency 1 --requests 1 --input-tokens 1000 "
                                    "--output-tokens 200 --json");
    snprintf(args, sizeof args, SIM8B "--trace '%s' --json", one);
    cJSON *trace = traffic_of(args);
    static const char *const stats[] = {"ttft_ms", "tpot_ms", "e2e_ms"};
    const cJSON *a = item(alone, "traffic", NULL), *t = item(trace, "traffic", NULL);
    for (int k = 0; k < 3; k++)
        cr_expect(tu_close(tu_num(item(t, stats[k], NULL), "max"),
                           tu_num(item(a, stats[k], NULL), "max"), 1e-12),
                  "%s", stats[k]);
    const cJSON *r = cJSON_GetArrayItem(item(t, "per_request", NULL), 0);
    cr_expect_eq(tu_num(r, "arrival_s"), 0);
    double e2e = tu_num(item(a, "e2e_ms", NULL), "max"),
           ttft = tu_num(item(a, "ttft_ms", NULL), "max");
    cr_expect(ttft > 0 && e2e > ttft);
    cJSON_Delete(trace);
    snprintf(args, sizeof args, SIM8B "--trace '%s' --json", two);
    trace = traffic_of(args);
    t = item(trace, "traffic", NULL);
    for (int i = 0; i < 2; i++) {
        r = cJSON_GetArrayItem(item(t, "per_request", NULL), i);
        cr_expect(tu_close(tu_num(r, "arrival_s"), 100.0 * i, 1e-12));
        cr_expect(tu_close(tu_num(r, "ttft_ms"), ttft, 1e-5));
        cr_expect(tu_close(tu_num(r, "e2e_ms"), e2e, 1e-5));
    }
    cr_expect(tu_close(tu_num(t, "duration_s"), 100 + e2e * 1e-3, 1e-5));
    cr_expect(tu_close(tu_num(t, "offered_per_s"), 0.01, 1e-12));
    cr_expect_eq(tu_num(t, "requests"), 2);
    cr_expect_str_eq(cJSON_GetStringValue(item(t, "arrivals", NULL)), "trace");
    cr_expect_str_eq(cJSON_GetStringValue(item(t, "trace_file", NULL)), "two.csv");
    cr_expect_null(cJSON_GetObjectItemCaseSensitive(t, "seed"));
    cr_expect_str_eq(cJSON_GetStringValue(item(t, "input_tokens", "distribution")), "trace");
    cr_expect_eq(tu_num(item(t, "output_tokens", NULL), "mean"), 200);
    cJSON_Delete(trace);
    cJSON_Delete(alone);
    tu_discard(one);
    tu_discard(two);
}

/* The table and the CSV name the trace by its file's base name; each CSV row its line. */
Test(trace_cli, the_table_and_csv_name_the_trace_and_each_requests_line)
{
    char *path = tu_write("my trace.csv", HEAD "10,1000,200\n\n110,500,100\n"), args[2048];
    char *out = NULL;
    snprintf(args, sizeof args, SIM8B "--trace '%s'", path);
    cr_assert_eq(tu_run(args, &out, NULL), 0);
    cr_expect(strstr(out, "under traffic (simulated request by request):\n"), "%s", out);
    cr_expect(strstr(out, "  arrivals         trace my trace.csv, 2 requests over 100 s\n"), "%s",
              out);
    cr_expect(strstr(out, "  lengths          the trace's: input 500 to 1000 (mean 750), output "
                          "100 to 200 (mean 150) tokens"),
              "%s", out);
    cr_expect_null(strstr(out, "/my trace.csv"), "%s", out);
    free(out);
    snprintf(args, sizeof args, SIM8B "--trace '%s' --csv", path);
    cr_assert_eq(tu_run(args, &out, NULL), 0);
    cr_expect(strstr(out, ",preemptions,trace\n0,0,"), "%s", out);
    cr_expect(strstr(out, ",0,my trace.csv:2\n1,100,"), "%s", out);
    cr_expect(strstr(out, ",0,my trace.csv:4\n"), "%s", out);
    free(out);
    /* predict: the figures of a request alone at the trace's mean lengths, beside it */
    snprintf(args, sizeof args,
             "predict --model llama-3.1-8b --hw h100-sxm --devices 1 --batch 8 --trace '%s'", path);
    cr_assert_eq(tu_run(args, &out, NULL), 0);
    cr_expect(strstr(out, "750 input / 150 output tokens"), "%s", out);
    cr_expect(strstr(out, "trace my trace.csv, 2 requests"), "%s", out);
    free(out);
    tu_discard(path);
}

Test(trace_cli, options_that_draw_traffic_are_refused_beside_a_trace)
{
    static const char *const drawn[] = {"--rate 2",
                                        "--concurrency 2",
                                        "--requests 5",
                                        "--arrival gamma",
                                        "--arrival-cv 2",
                                        "--input-dist uniform:1:9",
                                        "--output-dist uniform:1:9",
                                        "--seed 3"};
    char args[512], want[256];
    for (size_t i = 0; i < sizeof drawn / sizeof drawn[0]; i++) {
        snprintf(args, sizeof args, SIM8B "--trace t.csv %s", drawn[i]);
        snprintf(want, sizeof want,
                 "--trace and %.*s are exclusive: the trace gives every request's arrival and "
                 "lengths",
                 (int)strcspn(drawn[i], " "), drawn[i]);
        tu_expect_error(args, 2, want, true);
    }
    tu_expect_error(SIM8B "--input-tokens 10 --output-tokens 10", 2,
                    "missing the traffic: --rate R, --concurrency C or --trace FILE", true);
}

/* A bad file fails (exit 1) with its place; a request past the context names its line. */
Test(trace_cli, a_bad_trace_fails_with_the_files_line_and_column)
{
    char *path = tu_write("t.csv", HEAD "0,100,10\n1,100,x\n"), args[2048], want[2048];
    snprintf(args, sizeof args, SIM8B "--trace '%s'", path);
    snprintf(want, sizeof want, "%s:3:7: column 'output_tokens': 'x' is not a whole number", path);
    tu_expect_error(args, 1, want, true);
    tu_discard(path);
    path = tu_write("t.csv", HEAD "0,100,10\n1,131000,100\n");
    snprintf(args, sizeof args, SIM8B "--trace '%s'", path);
    snprintf(want, sizeof want,
             "%s:3:3: request 2: 131000 input + 100 output tokens exceed Llama 3.1 8B's context "
             "of 131072",
             path);
    tu_expect_error(args, 1, want, true);
    tu_discard(path);
}
