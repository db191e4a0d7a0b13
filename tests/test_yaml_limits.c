/* The YAML reader under hostile files: control characters refused in every value, each
 * limit of sim.h (docs/limits.md) met exactly and refused one past it with its place, the
 * duplicate-key check linear in the keys, and what is not a regular file refused at once. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/testutil.h"

/* Loads text as a model file; returns the status and fills e. */
static isim_status load_model(const char *text, size_t len, isim_error *e)
{
    char *path = tu_write("m.yaml", "");
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(text, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
    isim_model *m = NULL;
    isim_status st = isim_model_load(path, &m, e);
    isim_model_free(m);
    tu_discard(path);
    return st;
}

static void expect_refused(const char *text, int line, int column, const char *message)
{
    isim_error e;
    cr_assert_neq(load_model(text, strlen(text), &e), ISIM_OK, "loaded: %s", text);
    cr_expect_str_eq(e.message, message);
    cr_expect_eq(e.line, line, "line %d, want %d (%s)", e.line, line, e.message);
    cr_expect_eq(e.column, column, "column %d, want %d (%s)", e.column, column, e.message);
}

typedef struct {
    const char *yaml;
    int line, column;
    int byte;
} control_case;

/* Every control character a YAML escape can write, in a quoted value or a key, and raw
 * ones libyaml lets through (a tab inside a quoted value). */
static const control_case CONTROLS[] = {
    {"name: \"a\\nb\"\n", 1, 7, 0x0a},
    {"name: \"a\\x01b\"\n", 1, 7, 0x01},
    {"name: \"\\x1f\"\n", 1, 7, 0x1f},
    {"name: \"\\x7f\"\n", 1, 7, 0x7f},
    {"name: \"a\\rb\"\n", 1, 7, 0x0d},
    {"name: \"a\\eb\"\n", 1, 7, 0x1b},
    {"name: \"a\tb\"\n", 1, 7, 0x09},
    {"family: x\n\"ke\\ny\": 1\n", 2, 1, 0x0a},
    {"name: x\nfamily: [\"a\", \"b\\x08\"]\n", 2, 15, 0x08},
    {"name: 'a\n\n  b'\n", 1, 7, 0x0a},
};

Test(yaml_limits, a_control_character_in_any_value_or_key_is_refused_with_its_place)
{
    for (size_t i = 0; i < sizeof CONTROLS / sizeof CONTROLS[0]; i++) {
        char want[128];
        snprintf(want, sizeof want,
                 "a value holds control character 0x%02x (only a | or > block may span lines)",
                 CONTROLS[i].byte);
        expect_refused(CONTROLS[i].yaml, CONTROLS[i].line, CONTROLS[i].column, want);
    }
}

Test(yaml_limits, a_block_scalar_may_hold_line_breaks)
{
    /* the scenarios' descriptions are folded blocks */
    isim_error e;
    const char *text = "name: x\nfamily: |\n  one\n  two\nzzz: 1\n";
    cr_assert_neq(load_model(text, strlen(text), &e), ISIM_OK);
    /* past the reader: the schema's own message about the document */
    cr_expect_null(strstr(e.message, "control character"), "%s", e.message);
}

Test(yaml_limits, a_sweep_value_that_would_close_a_gnuplot_data_block_is_refused_at_load)
{
    /* the value that ran `id` through gnuplot in a report at 2ff97f2 */
    char *path = tu_write("inj.yaml", "name: t\n"
                                      "models: [llama-3.2-1b]\n"
                                      "hardware: [l4]\n"
                                      "workload:\n"
                                      "  source: \"test\"\n"
                                      "  input_tokens: 1k\n"
                                      "  output_tokens: 256\n"
                                      "  request_rate_per_s: 5\n"
                                      "sweeps:\n"
                                      "  - path: hw.*.name\n"
                                      "    values: [\"A\\\" 0\\nEOD\\n!id > /tmp/x\\n\", \"B\"]\n");
    isim_scenario *s = NULL;
    isim_error e;
    cr_assert_neq(isim_scenario_load(path, &s, &e), ISIM_OK);
    cr_expect_str_eq(e.message,
                     "a value holds control character 0x0a (only a | or > block may span lines)");
    cr_expect_eq(e.line, 11);
    cr_expect_eq(e.column, 14);
    tu_discard(path);
}

/* A model file of `keys` distinct top-level keys k0, k1, ... */
static char *many_keys(size_t keys, size_t *len)
{
    char *text = malloc(keys * 16 + 1), *p = text;
    cr_assert(text);
    for (size_t i = 0; i < keys; i++)
        p += sprintf(p, "k%zu: 1\n", i);
    *len = (size_t)(p - text);
    return text;
}

Test(yaml_limits, a_mapping_may_hold_1024_keys_and_not_1025)
{
    size_t len;
    char *text = many_keys(ISIM_YAML_MAX_KEYS, &len);
    isim_error e;
    cr_assert_neq(load_model(text, len, &e), ISIM_OK);
    /* read whole: the schema names the first key it does not know */
    cr_expect_str_eq(e.message, "unknown key 'k0' (expected: name, family, architecture, moe, mla, "
                                "sliding_window, release, declared_params, aliases)");
    free(text);
    text = many_keys(ISIM_YAML_MAX_KEYS + 1, &len);
    cr_assert_neq(load_model(text, len, &e), ISIM_OK);
    cr_expect_str_eq(e.message, "more than 1024 keys in one mapping");
    cr_expect_eq(e.line, ISIM_YAML_MAX_KEYS + 1);
    cr_expect_eq(e.column, 1);
    free(text);
}

Test(yaml_limits, a_duplicate_among_a_thousand_keys_names_the_first)
{
    size_t len;
    char *text = many_keys(1000, &len);
    char *dup = malloc(len + 16);
    cr_assert(dup);
    memcpy(dup, text, len);
    strcpy(dup + len, "k517: 2\n");
    isim_error e;
    cr_assert_neq(load_model(dup, strlen(dup), &e), ISIM_OK);
    cr_expect_str_eq(e.message, "duplicate key 'k517' (first at line 518)");
    cr_expect_eq(e.line, 1001);
    free(dup);
    free(text);
}

Test(yaml_limits, a_list_may_hold_65536_items_and_not_65537)
{
    for (size_t n = ISIM_YAML_MAX_ITEMS; n <= ISIM_YAML_MAX_ITEMS + 1; n++) {
        char *text = malloc(16 + 3 * n), *p = text;
        cr_assert(text);
        p += sprintf(p, "name: [");
        for (size_t i = 0; i < n; i++)
            p += sprintf(p, "%s1", i ? "," : "");
        strcpy(p, "]\n");
        isim_error e;
        cr_assert_neq(load_model(text, strlen(text), &e), ISIM_OK);
        if (n == ISIM_YAML_MAX_ITEMS) {
            cr_expect_null(strstr(e.message, "items"), "%s", e.message);
        } else {
            cr_expect_str_eq(e.message, "more than 65536 items in one list");
            cr_expect_eq(e.line, 1);
            cr_expect_eq(e.column, 8 + 2 * ISIM_YAML_MAX_ITEMS);
        }
        free(text);
    }
}

Test(yaml_limits, a_value_may_hold_65536_bytes_and_not_65537)
{
    for (size_t n = ISIM_YAML_MAX_SCALAR; n <= ISIM_YAML_MAX_SCALAR + 1; n++) {
        char *text = malloc(n + 16);
        cr_assert(text);
        strcpy(text, "name: ");
        memset(text + 6, 'a', n);
        strcpy(text + 6 + n, "\n");
        isim_error e;
        cr_assert_neq(load_model(text, strlen(text), &e), ISIM_OK);
        if (n == ISIM_YAML_MAX_SCALAR) {
            cr_expect_null(strstr(e.message, "longer"), "%s", e.message);
        } else {
            cr_expect_str_eq(e.message, "a value longer than 65536 bytes");
            cr_expect_eq(e.line, 1);
            cr_expect_eq(e.column, 7);
        }
        free(text);
    }
}

Test(yaml_limits, a_file_may_hold_a_megabyte_and_not_a_byte_more)
{
    for (size_t n = ISIM_YAML_MAX_BYTES; n <= ISIM_YAML_MAX_BYTES + 1; n++) {
        /* a comment fills the file: what is past the reader's limit is the schema's */
        char *text = malloc(n);
        cr_assert(text);
        memset(text, ' ', n);
        memcpy(text, "name: x\n#", 9);
        text[n - 1] = '\n';
        isim_error e;
        cr_assert_neq(load_model(text, n, &e), ISIM_OK);
        if (n == ISIM_YAML_MAX_BYTES)
            cr_expect_str_eq(e.message, "missing key 'family'");
        else
            cr_expect_str_eq(e.message,
                             "1048577 bytes, more than the 1048576 a YAML file may hold");
        free(text);
    }
}

Test(yaml_limits, a_directory_or_a_fifo_is_refused_at_once)
{
    char *path = tu_write("m.yaml", "");
    char *dir = strdup(path);
    *strrchr(dir, '/') = '\0';
    isim_model *m = NULL;
    isim_error e;
    cr_assert_eq(isim_model_load(dir, &m, &e), ISIM_EIO);
    cr_expect_str_eq(e.message, "is a directory, not a YAML file");
    remove(path);
    /* a FIFO with no writer would block an open for reading */
    cr_assert_eq(mkfifo(path, 0600), 0);
    cr_assert_eq(isim_model_load(path, &m, &e), ISIM_EIO);
    cr_expect_str_eq(e.message, "is not a regular file");
    free(dir);
    tu_discard(path);
}

Test(yaml_limits, an_error_too_long_for_its_fields_is_cut_where_it_says_so)
{
    char path[700], text[1000];
    memset(path, 'd', sizeof path);
    memcpy(path + sizeof path - 12, "/model.yaml", 12); /* ends the string */
    memset(text, 'w', sizeof text - 1);
    memcpy(text + sizeof text - 8, "reason", 7); /* ends the string */
    isim_error e;
    cr_assert_eq(isim_error_set(&e, ISIM_ESCHEMA, path, 3, 4, "%s", text), ISIM_ESCHEMA);
    /* the path keeps its end, behind "..." */
    cr_expect_eq(strlen(e.file), sizeof e.file - 1);
    cr_expect_eq(strncmp(e.file, "...ddd", 6), 0, "%s", e.file);
    cr_expect_str_eq(e.file + strlen(e.file) - 11, "/model.yaml");
    /* the message keeps its start and its end, around " ... " */
    cr_expect_leq(strlen(e.message), sizeof e.message - 1);
    cr_expect_eq(strncmp(e.message, "wwww", 4), 0, "%s", e.message);
    cr_expect(strstr(e.message, "www ... www"), "%s", e.message);
    cr_expect_str_eq(e.message + strlen(e.message) - 6, "reason");
    cr_expect_eq(e.line, 3);
    cr_expect_eq(e.column, 4);
    /* what fits is as written */
    isim_error_set(&e, ISIM_EIO, "a.yaml", 0, 0, "cannot open: %s", "denied");
    cr_expect_str_eq(e.file, "a.yaml");
    cr_expect_str_eq(e.message, "cannot open: denied");
}

/* A string of n copies of c (malloc'd). */
static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    cr_assert(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

Test(yaml_limits, a_name_or_key_may_hold_128_bytes_and_not_129)
{
    for (size_t n = ISIM_MAX_NAME; n <= ISIM_MAX_NAME + 1; n++) {
        char *name = repeat('n', n), text[512];
        snprintf(text, sizeof text, "name: %s\nfamily: x\n", name);
        isim_error e;
        cr_assert_neq(load_model(text, strlen(text), &e), ISIM_OK);
        if (n == ISIM_MAX_NAME) {
            cr_expect_str_eq(e.message, "missing key 'architecture'");
        } else {
            cr_expect_str_eq(e.message, "'name' is 129 bytes, more than the 128 a name may hold");
            cr_expect_eq(e.line, 1);
            cr_expect_eq(e.column, 7);
        }
        /* a key */
        snprintf(text, sizeof text, "name: x\n%s: 1\n", name);
        cr_assert_neq(load_model(text, strlen(text), &e), ISIM_OK);
        if (n == ISIM_MAX_NAME) {
            cr_expect(strstr(e.message, "unknown key 'nnn"), "%s", e.message);
        } else {
            cr_expect_str_eq(e.message, "a key longer than 128 bytes");
            cr_expect_eq(e.line, 2);
            cr_expect_eq(e.column, 1);
        }
        free(name);
    }
}

/* A scenario of one model and one device with `body` after its workload. */
static isim_status load_scenario(const char *body, isim_error *e)
{
    size_t n = strlen(body) + 512;
    char *text = malloc(n);
    snprintf(text, n,
             "name: t\nmodels: [llama-3.2-1b]\nhardware: [l4]\nworkload:\n  source: \"test\"\n"
             "  input_tokens: 512\n  output_tokens: 128\n  request_rate_per_s: 2\n"
             "search: {max_points: 10000000}\n%s",
             body);
    char *path = tu_write("s.yaml", text);
    isim_scenario *s = NULL;
    isim_status st = isim_scenario_load(path, &s, e);
    isim_scenario_free(s);
    tu_discard(path);
    free(text);
    return st;
}

Test(yaml_limits, a_sweep_value_may_hold_128_bytes_and_not_129)
{
    for (size_t n = ISIM_MAX_NAME; n <= ISIM_MAX_NAME + 1; n++) {
        char *value = repeat('v', n), body[512];
        snprintf(body, sizeof body, "sweeps:\n  - path: hw.l4.name\n    values: [%s]\n", value);
        isim_error e = {0};
        isim_status st = load_scenario(body, &e);
        if (n == ISIM_MAX_NAME) {
            cr_expect_eq(st, ISIM_OK, "%s", e.message);
        } else {
            cr_expect_str_eq(e.message, "a value of 129 bytes, more than the 128 a sweep or "
                                        "sensitivity value may hold");
            cr_expect_eq(e.line, 12);
            cr_expect_eq(e.column, 14);
        }
        free(value);
    }
}

/* `n` sweeps of one value each (distinct paths: the loader checks their form and id, the
 * runner their keys) or sensitivity inputs. */
static char *many(const char *section, size_t n)
{
    char *body = malloc(64 + n * 80), *p = body;
    p += sprintf(p, "%s:\n", section);
    for (size_t i = 0; i < n; i++)
        p += strcmp(section, "sweeps") == 0
                 ? sprintf(p, "  - {path: model.llama-3.2-1b.k%zu, values: [1]}\n", i)
                 : sprintf(p, "  - {path: workload.output_tokens, low: 64, high: %zu}\n", i + 200);
    return body;
}

Test(yaml_limits, a_scenario_may_have_64_sweeps_and_64_sensitivity_inputs_and_not_65)
{
    static const char *const sections[] = {"sweeps", "sensitivity"};
    static const char *const past[] = {"more than 64 sweeps", "more than 64 sensitivity inputs"};
    for (size_t k = 0; k < 2; k++)
        for (size_t n = 64; n <= 65; n++) {
            char *body = many(sections[k], n);
            isim_error e = {0};
            isim_status st = load_scenario(body, &e);
            if (n == 64) {
                cr_expect_eq(st, ISIM_OK, "%s", e.message);
            } else {
                cr_expect_str_eq(e.message, past[k]);
                cr_expect_eq(e.line, 10 + 65, "%s", e.message);
                cr_expect_eq(e.column, 5);
            }
            free(body);
        }
}

Test(yaml_limits, an_alias_may_hold_128_bytes_and_max_points_ten_million)
{
    char *alias = repeat('a', ISIM_MAX_NAME + 1), text[512];
    snprintf(text, sizeof text, "name: x\nfamily: y\naliases: [ok, %s]\n", alias);
    isim_error e;
    cr_assert_neq(load_model(text, strlen(text), &e), ISIM_OK);
    cr_expect_str_eq(e.message,
                     "an item of 'aliases' is 129 bytes, more than the 128 a name may hold");
    cr_expect_eq(e.line, 3);
    cr_expect_eq(e.column, 15);
    free(alias);
    /* search.max_points: ten million, not one more (load_scenario sets it to ten million) */
    cr_expect_eq(load_scenario("", &e), ISIM_OK, "%s", e.message);
    char *path = tu_write("s.yaml", "name: t\nmodels: [llama-3.2-1b]\nhardware: [l4]\n"
                                    "workload: {source: t, input_tokens: 1, output_tokens: 1}\n"
                                    "search: {max_points: 10000001}\n");
    isim_scenario *s = NULL;
    cr_expect_neq(isim_scenario_load(path, &s, &e), ISIM_OK);
    cr_expect_str_eq(e.message, "'search.max_points' = 1e+07 is out of range [1, 1e+07]");
    tu_discard(path);
}
