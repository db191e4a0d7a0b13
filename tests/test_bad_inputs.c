/* The corpus of bad inputs (tests/bad-inputs.json; docs/formats.md, "Refusals"): for each
 * case its files are made in a fresh directory, infersim runs there with the case's
 * arguments, and its exit status, its whole stderr and its stdout (empty unless the case
 * gives it) must be as written. Every case that differs is listed by name with what it
 * printed, then the test fails once. A case marked "defect" records a known wrong answer as
 * it stands: it runs and is listed, and does not fail the test. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/testutil.h"

#define CORPUS ISIM_SOURCE_DIR "/tests/bad-inputs.json"
#define MIN_CASES 150
/* a case that runs longer than this (or than its "timeout") is a hang: the whole corpus takes
 * seconds */
#define CASE_SECONDS 30

/* text with {dir} (the case's directory), {data} (INFERSIM_DATA), {src} (the source tree)
 * and {fixtures} (../shared/fixtures) replaced */
static char *expand(const char *text, const char *dir)
{
    static const char *const names[] = {"{dir}", "{data}", "{src}", "{fixtures}"};
    const char *values[] = {dir, ISIM_DATA_DIR, ISIM_SOURCE_DIR, ISIM_FIXTURES_DIR};
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    cr_assert_not_null(f);
    for (const char *c = text; *c;) {
        size_t k = 0;
        while (k < 4 && strncmp(c, names[k], strlen(names[k])) != 0)
            k++;
        if (k < 4) {
            fputs(values[k], f);
            c += strlen(names[k]);
        } else {
            fputc(*c++, f);
        }
    }
    fclose(f);
    return s;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

/* the directories above path, made as needed */
static void make_parents(char *path)
{
    for (char *c = strchr(path + 1, '/'); c; c = strchr(c + 1, '/')) {
        *c = '\0';
        cr_assert(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", path, strerror(errno));
        *c = '/';
    }
}

static void put(const char *path, const char *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(bytes, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

/* "lines": the strings each followed by a line feed */
static char *join_lines(const cJSON *lines)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    cr_assert_not_null(f);
    const cJSON *l;
    cJSON_ArrayForEach(l, lines)
    {
        cr_assert(cJSON_IsString(l), "\"lines\" holds strings only");
        fprintf(f, "%s\n", l->valuestring);
    }
    fclose(f);
    return s;
}

/* "generate": head, then item count times with {i} as 1, 2, ..., then tail */
static char *generate(const cJSON *g)
{
    const char *head = str(g, "head"), *item = str(g, "item"), *tail = str(g, "tail");
    const cJSON *count = cJSON_GetObjectItemCaseSensitive(g, "count");
    cr_assert(item && cJSON_IsNumber(count), "\"generate\" needs item and count");
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    cr_assert_not_null(f);
    fputs(head ? head : "", f);
    for (int i = 1; i <= count->valueint; i++)
        for (const char *c = item; *c; c++)
            if (strncmp(c, "{i}", 3) == 0) {
                fprintf(f, "%d", i);
                c += 2;
            } else {
                fputc(*c, f);
            }
    fputs(tail ? tail : "", f);
    fclose(f);
    return s;
}

/* "replace": [[from, to], ...], each from's first occurrence (it must occur) */
static char *replace_all(char *text, const cJSON *pairs)
{
    const cJSON *p;
    cJSON_ArrayForEach(p, pairs)
    {
        const cJSON *from = cJSON_GetArrayItem(p, 0), *to = cJSON_GetArrayItem(p, 1);
        cr_assert(cJSON_IsString(from) && cJSON_IsString(to), "\"replace\" holds [from, to]");
        char *next = tu_replace(text, from->valuestring, to->valuestring);
        free(text);
        text = next;
    }
    return text;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "patch": [{"at": OFFSET, "hex": "00c07f..."}, ...] laid over bytes (within them) */
static void patch(char *bytes, size_t n, const cJSON *patches)
{
    const cJSON *p;
    cJSON_ArrayForEach(p, patches)
    {
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(p, "at");
        const char *hex = str(p, "hex");
        cr_assert(cJSON_IsNumber(at) && hex && strlen(hex) % 2 == 0, "a patch is {at, hex}");
        size_t off = (size_t)at->valuedouble;
        cr_assert(off + strlen(hex) / 2 <= n, "a patch past the end of the file");
        for (size_t i = 0; hex[2 * i]; i++) {
            int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
            cr_assert(hi >= 0 && lo >= 0, "'%s' is not lower-case hex", hex);
            bytes[off + i] = (char)(hi * 16 + lo);
        }
    }
}

/* The bases a file may start from ("bases" of the corpus: name -> lines). */
static const cJSON *bases;

/* A file's bytes: its "text", "lines", "generate", "base" (lines of the corpus's "bases") or
 * "copy" (a file, its name expanded); then edited by "replace" (text), cut or extended with
 * zeros to "size", and overwritten by "patch". */
static char *file_bytes(const cJSON *spec, const char *dir, size_t *n)
{
    const char *base = str(spec, "base"), *copy = str(spec, "copy");
    const cJSON *lines = cJSON_GetObjectItemCaseSensitive(spec, "lines"),
                *gen = cJSON_GetObjectItemCaseSensitive(spec, "generate");
    char *bytes;
    if (str(spec, "text")) {
        bytes = expand(str(spec, "text"), dir);
    } else if (lines || gen) {
        bytes = lines ? join_lines(lines) : generate(gen);
    } else if (base) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(bases, base);
        cr_assert(cJSON_IsArray(b), "no base '%s' in the corpus", base);
        bytes = join_lines(b);
    } else {
        cr_assert(copy, "file '%s': no text, lines, generate, base, copy, dir or fifo",
                  str(spec, "path"));
        char *from = expand(copy, dir);
        bytes = tu_read(from, n);
        cr_assert_not_null(bytes, "cannot open %s: %s", from, strerror(errno));
        free(from);
    }
    if (!copy)
        *n = strlen(bytes);
    const cJSON *pairs = cJSON_GetObjectItemCaseSensitive(spec, "replace");
    if (pairs) {
        bytes = replace_all(bytes, pairs);
        *n = strlen(bytes);
    }
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(spec, "size");
    if (cJSON_IsNumber(size)) {
        size_t want = (size_t)size->valuedouble;
        bytes = realloc(bytes, want + 1);
        cr_assert_not_null(bytes);
        if (want > *n)
            memset(bytes + *n, 0, want - *n);
        *n = want;
    }
    patch(bytes, *n, cJSON_GetObjectItemCaseSensitive(spec, "patch"));
    return bytes;
}

/* One entry of "files", made under dir: a directory ("dir": true), a FIFO ("fifo": true) or
 * a file of file_bytes. */
static void make_file(const cJSON *spec, const char *dir)
{
    const char *rel = str(spec, "path");
    cr_assert(rel, "a file without a path");
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *path = malloc(n);
    snprintf(path, n, "%s/%s", dir, rel);
    make_parents(path);
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(spec, "dir"))) {
        cr_assert(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s", path);
    } else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(spec, "fifo"))) {
        cr_assert_eq(mkfifo(path, 0644), 0, "mkfifo %s: %s", path, strerror(errno));
    } else {
        size_t len = 0;
        char *bytes = file_bytes(spec, dir, &len);
        put(path, bytes, len);
        free(bytes);
    }
    free(path);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* s as a JSON string, to paste into the corpus */
static void print_json_string(FILE *f, const char *s)
{
    cJSON *j = cJSON_CreateString(s);
    char *text = cJSON_PrintUnformatted(j);
    fputs(text, f);
    free(text);
    cJSON_Delete(j);
}

/* whether a case's files copy ../shared/fixtures (absent from some checkouts) */
static bool needs_fixture(const cJSON *c)
{
    const cJSON *file;
    cJSON_ArrayForEach(file, cJSON_GetObjectItemCaseSensitive(c, "files"))
    {
        const char *from = str(file, "copy");
        if (from && strstr(from, "{fixtures}"))
            return true;
    }
    return false;
}

typedef struct {
    FILE *failed, *defects; /* the lists, by case */
    size_t n_failed, n_defects;
} tally;

/* Runs one case; appends it to the list of failures (or of defects) when it is not as
 * written. */
static void run_case(const cJSON *c, tally *t)
{
    const char *name = str(c, "name"), *args = str(c, "args"), *want_err = str(c, "stderr"),
               *defect = str(c, "defect");
    const cJSON *want_exit = cJSON_GetObjectItemCaseSensitive(c, "exit"),
                *want_out = cJSON_GetObjectItemCaseSensitive(c, "stdout");
    cr_assert(name && args && want_err && cJSON_IsNumber(want_exit),
              "case %s: name, args, exit and stderr are required", name ? name : "?");
    char dir[] = "/tmp/isim-bad-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    const cJSON *file;
    cJSON_ArrayForEach(file, cJSON_GetObjectItemCaseSensitive(c, "files"))
    {
        make_file(file, dir);
    }
    const cJSON *seconds = cJSON_GetObjectItemCaseSensitive(c, "timeout");
    char prefix[128];
    snprintf(prefix, sizeof prefix, "cd '%s' && </dev/null timeout -s KILL %d env", dir,
             cJSON_IsNumber(seconds) ? seconds->valueint : CASE_SECONDS);
    char *cmd = expand(args, dir), *out = NULL, *err = NULL;
    int rc = tu_run_with(prefix, cmd, &out, &err);
    char *exp_err = expand(want_err, dir);
    char *exp_out = cJSON_IsString(want_out) ? expand(want_out->valuestring, dir) : strdup("");
    bool same = rc == want_exit->valueint && strcmp(err, exp_err) == 0 &&
                (cJSON_IsNull(want_out) || strcmp(out, exp_out) == 0);
    FILE *list = defect ? t->defects : t->failed;
    if (defect || !same) {
        *(defect ? &t->n_defects : &t->n_failed) += 1;
        fprintf(list, "%s: %s\n", name, defect ? defect : "not as written");
        fprintf(list, "  infersim %s\n  exit %d (written: %d)\n  stderr: ", cmd, rc,
                want_exit->valueint);
        print_json_string(list, err);
        if (strcmp(err, exp_err) != 0) {
            fputs("\n  written: ", list);
            print_json_string(list, exp_err);
        }
        if (strcmp(out, exp_out) != 0 && !cJSON_IsNull(want_out)) {
            fputs("\n  stdout: ", list);
            print_json_string(list, out);
        }
        fputs(defect && !same ? "\n  (no longer as written: fixed?)\n" : "\n", list);
    }
    free(cmd), free(out), free(err), free(exp_err), free(exp_out);
    cr_assert_eq(nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0, "cannot remove %s", dir);
}

Test(bad_inputs, every_case_of_the_corpus_is_refused_as_written)
{
    tu_deadline(600);
    char *text = tu_read(CORPUS, NULL);
    cr_assert_not_null(text, "cannot open %s: %s", CORPUS, strerror(errno));
    cJSON *doc = cJSON_Parse(text);
    cr_assert_not_null(doc, "%s is not JSON (near '%.40s')", CORPUS, cJSON_GetErrorPtr());
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(doc, "cases");
    bases = cJSON_GetObjectItemCaseSensitive(doc, "bases");
    cr_assert(cJSON_GetArraySize(cases) >= MIN_CASES, "%d cases, fewer than %d",
              cJSON_GetArraySize(cases), MIN_CASES);
    bool fixture = access(ISIM_FIXTURES_DIR "/stories260K.bin", R_OK) == 0;
    char *failed = NULL, *defects = NULL;
    size_t n_failed_text = 0, n_defects_text = 0;
    tally t = {open_memstream(&failed, &n_failed_text), open_memstream(&defects, &n_defects_text),
               0, 0};
    const cJSON *c;
    cJSON_ArrayForEach(c, cases)
    {
        const char *name = str(c, "name");
        const cJSON *twin = c->next;
        for (; twin && name; twin = twin->next)
            cr_assert(!str(twin, "name") || strcmp(str(twin, "name"), name) != 0,
                      "case '%s' is written twice", name);
        if (!fixture && needs_fixture(c))
            continue;
        run_case(c, &t);
    }
    fclose(t.failed);
    fclose(t.defects);
    if (t.n_defects)
        cr_log_warn("%zu known defects (kept as they stand):\n%s", t.n_defects, defects);
    if (!fixture)
        cr_log_warn("%s is absent: the checkpoint cases are left out", ISIM_FIXTURES_DIR);
    cr_expect_eq(t.n_failed, 0, "%zu of %d cases are not as written:\n%s", t.n_failed,
                 cJSON_GetArraySize(cases), failed);
    free(failed);
    free(defects);
    cJSON_Delete(doc);
    free(text);
}
