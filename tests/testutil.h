/* Helpers shared by the test modules: temporary files, running the infersim binary, and
 * loading catalog entries. */
#ifndef ISIM_TESTUTIL_H
#define ISIM_TESTUTIL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "sim/sim.h"

/* Writes text to a new temporary directory as `name`; returns the file's path (static
 * storage per call site is not used: the string is malloc'd and owned by the caller). */
char *tu_write(const char *name, const char *text);
/* The whole content of the file at path, NUL-terminated (malloc'd), its length in *len when
 * len is not NULL; NULL when it cannot be opened. */
char *tu_read(const char *path, size_t *len);
/* Removes a file made by tu_write, its directory, and frees the path. */
void tu_discard(char *path);
/* A copy of text with the first occurrence of `from` replaced by `to` (must occur). */
char *tu_replace(const char *text, const char *from, const char *to);
/* Runs `infersim ARGS` through the shell; returns the exit status, stdout and stderr
 * (malloc'd; NULL pointers are allowed). */
int tu_run(const char *args, char **out, char **err);
/* tu_run with `prefix` (shell words: variables, `ulimit -f 8;`) before the command; a
 * process ended by signal S returns 128 + S, as a shell says. */
int tu_run_with(const char *prefix, const char *args, char **out, char **err);
/* Runs `infersim ARGS`, which must exit 0 and print JSON; the parsed document. */
cJSON *tu_run_json(const char *args);
/* Runs `infersim ARGS` and expects exit `code` with one `infersim: error: ` line holding
 * `needle`; with quiet, nothing on stdout. */
void tu_expect_error(const char *args, int code, const char *needle, bool quiet);
/* The number at key (asserts there is one). */
double tu_num(const cJSON *j, const char *key);
isim_model *tu_model(const char *id);
isim_hw *tu_hw(const char *id);
/* |got - want| <= rel * |want| */
int tu_close(double got, double want, double rel);
/* Ends the calling test with a message on stderr and SIGALRM if it is still running after
 * `seconds`. Used instead of Criterion's .timeout, whose timer record the runner can leak
 * when parallel tests end together (LeakSanitizer sees it in the runner at exit). Children
 * the test forks do not inherit the timer. */
void tu_deadline(unsigned seconds);

#endif
