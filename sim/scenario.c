/* What-if scenarios (docs/scenarios.md): models, hardware candidates, workload, SLOs,
 * search limits, the cost model, sweeps and sensitivity ranges, read with the strict
 * schema reader. Numbers without a source cite the scenario file itself. The settings
 * table below is the one description of every single-valued setting: the loader reads
 * the file through it and isim_scenario_set applies a swept value through it, so a swept
 * value meets the checks a written one does. */
#include "sim/internal.h"

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { NUMBER, WHOLE, TOKENS, COST, DTYPE } kind;

typedef struct {
    const char *path; /* section.key */
    kind k;
    double min, max, fallback;
    size_t offset;
} setting;

#define AT(field) offsetof(isim_scenario_settings, field)

static const setting SETTINGS[] = {
    {"workload.input_tokens", TOKENS, 0, 1e7, -1, AT(input_tokens)},
    {"workload.output_tokens", TOKENS, 1, 1e7, -1, AT(output_tokens)},
    {"workload.request_rate_per_s", NUMBER, 0, 1e9, 0, AT(request_rate_per_s)},
    {"workload.concurrency", WHOLE, 0, 1e9, 0, AT(concurrency)},
    {"workload.prefix_cache_hit_rate", NUMBER, 0, 0.99, 0, AT(prefix_cache_hit_rate)},
    {"slo.ttft_ms", NUMBER, 0, 1e9, 0, AT(ttft_ms)},
    {"slo.tpot_ms", NUMBER, 0, 1e9, 0, AT(tpot_ms)},
    {"slo.min_tokens_per_s_per_user", NUMBER, 0, 1e9, 0, AT(min_tokens_per_s_per_user)},
    {"slo.max_cost_usd_per_mtok", NUMBER, 0, 1e9, 0, AT(max_cost_usd_per_mtok)},
    {"slo.percentile", NUMBER, 1, 99.99, 0, AT(percentile)},
    {"search.max_devices", WHOLE, 1, 100000, 64, AT(max_devices)},
    {"search.spec_alpha", NUMBER, 0.01, 0.99, 0.8, AT(spec_alpha)},
    {"search.spec_gamma_max", WHOLE, 1, 64, 5, AT(spec_gamma_max)},
    {"search.grid", WHOLE, 2, 4000, 400, AT(grid)},
    /* precisions: lists in the file (read apart), one precision per point in a sweep */
    {"search.weights", DTYPE, 0, 0, ISIM_DTYPE_COUNT, AT(weights)},
    {"search.kv", DTYPE, 0, 0, ISIM_DTYPE_COUNT, AT(kv)},
    {"recommend.alpha", NUMBER, 0.1, 100, 3, AT(customer_alpha)},
    {"cost.model", COST, 0, 0, ISIM_COST_CLOUD, AT(cost_model)},
    {"cost.pue", NUMBER, 1, 5, 1, AT(pue)},
    {"cost.electricity_usd_per_kwh", NUMBER, 0, 10, 0, AT(electricity_usd_per_kwh)},
    {"cost.colocation_usd_per_kw_month", NUMBER, 0, 1e5, 0, AT(colocation_usd_per_kw_month)},
    {"cost.server_power_factor", NUMBER, 1, 5, 1, AT(server_power_factor)},
    {"cost.power_fraction_of_tdp", NUMBER, 0.05, 1.5, 1, AT(power_fraction_of_tdp)},
};
#define N_SETTINGS (sizeof SETTINGS / sizeof SETTINGS[0])

static const char *const COST_NAMES[] = {"cloud", "owned", NULL};

const char *isim_cost_model_name(isim_cost_model m)
{
    return (unsigned)m < 2 ? COST_NAMES[m] : "unknown";
}

static const setting *find_setting(const char *path)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strcmp(SETTINGS[i].path, path) == 0)
            return &SETTINGS[i];
    return NULL;
}

const char *isim_scenario_setting_path(size_t i)
{
    return i < N_SETTINGS ? SETTINGS[i].path : NULL;
}

bool isim_scenario_is_setting(const char *path)
{
    return find_setting(path) != NULL;
}

/* A setting's value as a number (a choice or precision as its enum value). */
static double get_value(const isim_scenario_settings *s, const setting *e)
{
    const char *at = (const char *)s + e->offset;
    if (e->k == COST)
        return (double)*(const isim_cost_model *)(const void *)at;
    if (e->k == DTYPE)
        return (double)*(const isim_dtype *)(const void *)at;
    return *(const double *)(const void *)at;
}

static void set_value(isim_scenario_settings *s, const setting *e, double v)
{
    char *at = (char *)s + e->offset;
    if (e->k == COST)
        *(isim_cost_model *)(void *)at = (isim_cost_model)(int)v;
    else if (e->k == DTYPE)
        *(isim_dtype *)(void *)at = (isim_dtype)(int)v;
    else
        *(double *)(void *)at = v;
}

double isim_scenario_get(const isim_scenario_settings *s, const char *path)
{
    const setting *e = find_setting(path);
    return e ? get_value(s, e) : NAN;
}

bool isim_scenario_setting_is_number(const char *path)
{
    const setting *e = find_setting(path);
    return e && e->k != COST && e->k != DTYPE;
}

const char *isim_scenario_setting_text(const isim_scenario_settings *s, const char *path)
{
    const setting *e = find_setting(path);
    if (e && e->k == COST)
        return isim_cost_model_name(s->cost_model);
    if (e && e->k == DTYPE) {
        isim_dtype t = (isim_dtype)(int)get_value(s, e);
        return t < ISIM_DTYPE_COUNT ? isim_dtype_name(t) : NULL;
    }
    return NULL;
}

/* "8k" = 8000, "32Ki" = 32768, "1M" = 1e6, "2Mi" = 2097152, or a plain number. */
static bool parse_tokens(const char *text, double *out)
{
    char *end;
    double v = strtod(text, &end);
    if (end == text || !isfinite(v))
        return false;
    static const struct {
        const char *suffix;
        double scale;
    } units[] = {{"", 1}, {"k", 1e3}, {"K", 1e3}, {"Ki", 1024}, {"M", 1e6}, {"Mi", 1048576}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i].suffix) == 0) {
            *out = v * units[i].scale;
            return true;
        }
    return false;
}

static bool parse_plain(const char *text, double *out)
{
    isim__ynode probe = {.kind = ISIM__YSCALAR, .text = (char *)text};
    return isim__ynode_number(&probe, out);
}

/* Parses text for setting e (a multiplier "xF" scales *base when base is not NULL) and
 * checks its range; on error writes the reason into why. */
static bool parse_setting(const setting *e, const char *text, const double *base, double *out,
                          char *why, size_t n)
{
    if (text[0] == 'x' && base) {
        double f;
        if (e->k == COST) {
            snprintf(why, n, "'%s' is a choice (cloud or owned), a multiplier cannot scale it",
                     e->path);
            return false;
        }
        if (e->k == DTYPE) {
            snprintf(why, n,
                     "'%s' is a precision (bf16, fp8, int4, ...), a multiplier cannot "
                     "scale it",
                     e->path);
            return false;
        }
        if (!parse_plain(text + 1, &f) || !(f > 0)) {
            snprintf(why, n, "'%s': a multiplier is x and a positive number, got '%s'", e->path,
                     text);
            return false;
        }
        if (*base == 0) {
            snprintf(why, n,
                     "'%s': a multiplier scales the value as written, and this one is unset or "
                     "0; write the number itself",
                     e->path);
            return false;
        }
        *out = *base * f;
        if (e->k == WHOLE || e->k == TOKENS)
            *out = floor(*out + 0.5);
    } else if (e->k == COST) {
        for (int i = 0; COST_NAMES[i]; i++)
            if (strcmp(text, COST_NAMES[i]) == 0) {
                *out = i;
                return true;
            }
        snprintf(why, n, "'%s' must be cloud or owned, got '%s'", e->path, text);
        return false;
    } else if (e->k == DTYPE) {
        isim_dtype t;
        if (isim_dtype_parse(text, &t) == ISIM_OK) {
            *out = t;
            return true;
        }
        snprintf(why, n,
                 "'%s' in a sweep is one precision (fp32 bf16 fp16 fp8 int8 int4 fp4), got '%s'",
                 e->path, text);
        return false;
    } else if (!(e->k == TOKENS ? parse_tokens(text, out) : parse_plain(text, out))) {
        if (text[0] == 'x')
            snprintf(why, n, "'%s': a multiplier needs a base value; write the number itself",
                     e->path);
        else
            snprintf(why, n, "'%s' must be a number%s, got '%s'", e->path,
                     e->k == TOKENS ? " of tokens (8k, 32Ki, 1M)" : "", text);
        return false;
    }
    if ((e->k == WHOLE || e->k == TOKENS) && *out != floor(*out)) {
        snprintf(why, n, "'%s' must be a whole number, got %g", e->path, *out);
        return false;
    }
    if (*out < e->min || *out > e->max) {
        snprintf(why, n, "'%s' = %g is out of range [%g, %g]", e->path, *out, e->min, e->max);
        return false;
    }
    return true;
}

static void expected_paths(char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_SETTINGS && used < n; i++) {
        int w = snprintf(buf + used, n - used, "%s%s", i ? ", " : "", SETTINGS[i].path);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

isim_status isim_scenario_set(isim_scenario_settings *s, const char *path, const char *text,
                              const char *file, int line, int column, isim_error *err)
{
    const setting *e = find_setting(path);
    if (!e) {
        char list[1200];
        expected_paths(list, sizeof list);
        return isim__fail(err, ISIM_ESCHEMA, file, line, column,
                          "unknown setting '%s' (expected one of: %s; or hw.ID.<key path>, "
                          "model.ID.<key path>)",
                          path, list);
    }
    double v, base = get_value(s, e);
    char why[300];
    if (!parse_setting(e, text, &base, &v, why, sizeof why))
        return isim__fail(err, ISIM_ESCHEMA, file, line, column, "%s", why);
    set_value(s, e, v);
    return ISIM_OK;
}

/* ---- the specification a path names ------------------------------------------------- */

/* A key path begins with a key of a specification file: a lowercase word (a letter, then
 * letters, digits and underscores). */
static bool starts_with_key(const char *k)
{
    if (!islower((unsigned char)k[0]))
        return false;
    for (size_t n = 1; k[n] && k[n] != '.'; n++)
        if (!islower((unsigned char)k[n]) && !isdigit((unsigned char)k[n]) && k[n] != '_')
            return false;
    return true;
}

/* The length of id when rest goes on with it, a dot and a key path; 0 otherwise. */
static size_t id_fits(const char *rest, const char *id)
{
    size_t len = strlen(id);
    return strncmp(rest, id, len) == 0 && rest[len] == '.' && starts_with_key(rest + len + 1) ? len
                                                                                              : 0;
}

/* "a, b, c" into buf, ending in "..." when they do not all fit. */
static void list_ids(const char *const *ids, size_t n, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *sep = i ? ", " : "";
        if (used + strlen(sep) + strlen(ids[i]) + 5 >= size) {
            snprintf(buf + used, size - used, "%s...", sep);
            return;
        }
        used += (size_t)snprintf(buf + used, size - used, "%s%s", sep, ids[i]);
    }
}

static isim_status no_such_id(const char *path, const char *rest, bool hw, const char *const *ids,
                              size_t n, const char *file, int line, int column, isim_error *err)
{
    const char *what = hw ? "hardware" : "model";
    for (size_t i = 0; i < n; i++)
        if (strcmp(rest, ids[i]) == 0)
            return isim__fail(err, ISIM_ESCHEMA, file, line, column,
                              "'%s' names %s '%s' but no key in it (expected %s.%s.<key path>)",
                              path, what, ids[i], hw ? "hw" : "model", ids[i]);
    char list[400];
    list_ids(ids, n, list, sizeof list);
    return isim__fail(err, ISIM_ESCHEMA, file, line, column,
                      "'%s' names no %s of the scenario (its %s: %s)", path, what,
                      hw ? "hardware" : "models", list);
}

isim_status isim_scenario_path_spec(const char *path, const char *const *ids, size_t n,
                                    size_t *index, const char **key, const char *file, int line,
                                    int column, isim_error *err)
{
    bool hw = strncmp(path, "hw.", 3) == 0;
    const char *rest = hw ? path + 3 : strncmp(path, "model.", 6) == 0 ? path + 6 : NULL;
    if (!rest)
        return isim__fail(err, ISIM_ESCHEMA, file, line, column,
                          "'%s' names no model (model.ID.<key path>) and no hardware "
                          "(hw.ID.<key path>)",
                          path);
    if (rest[0] == '*' && rest[1] == '.' && rest[2]) {
        *index = ISIM_SCENARIO_EVERY;
        *key = rest + 2;
        return ISIM_OK;
    }
    /* the longest id the path goes on with; a shorter one (a prefix of it) only fits when
     * what follows it could be a key path too, and then the path is ambiguous */
    size_t best = n, best_len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = id_fits(rest, ids[i]);
        if (len > best_len) {
            best = i;
            best_len = len;
        }
    }
    if (best == n)
        return no_such_id(path, rest, hw, ids, n, file, line, column, err);
    for (size_t i = 0; i < n; i++) {
        size_t len = id_fits(rest, ids[i]);
        if (len && len < best_len)
            return isim__fail(err, ISIM_ESCHEMA, file, line, column,
                              "'%s' is ambiguous: it names %s '%s' (key path '%s') or '%s' (key "
                              "path '%s')",
                              path, hw ? "hardware" : "model", ids[best], rest + best_len + 1,
                              ids[i], rest + len + 1);
    }
    *index = best;
    *key = rest + best_len + 1;
    return ISIM_OK;
}

/* ---- reading the file ---------------------------------------------------------------- */

static isim_status oom(isim__reader *r)
{
    return isim__fail(r->err, ISIM_ENOMEM, r->file, 0, 0, "out of memory");
}

static char *dup_text(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Reads section.key for every setting of `section` (defaults where absent). */
static isim_status read_settings(isim__map *m, const char *section, isim_scenario_settings *s)
{
    size_t len = strlen(section);
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting *e = &SETTINGS[i];
        if (strncmp(e->path, section, len) != 0 || e->path[len] != '.')
            continue;
        const char *key = e->path + len + 1;
        const isim__ynode *n = m ? isim__map_get(m, key) : NULL;
        if (!n || e->k == DTYPE) { /* precisions: the file's lists are read apart */
            if (!n && e->fallback < 0)
                return isim__map_error(m, NULL, "missing key '%s' in '%s'", key, section);
            set_value(s, e, e->fallback);
            continue;
        }
        char why[300];
        double v;
        const char *source = NULL;
        if (n->kind == ISIM__YMAP) {
            /* the long form {value, source} */
            const isim__ynode *vn = NULL, *sn = NULL;
            for (size_t k = 0; k < n->n; k++) {
                const char *kk = n->keys[k]->text;
                if (strcmp(kk, "value") == 0)
                    vn = n->items[k];
                else if (strcmp(kk, "source") == 0)
                    sn = n->items[k];
                else
                    return isim__fail(
                        m->r->err, ISIM_ESCHEMA, m->r->file, n->keys[k]->line, n->keys[k]->column,
                        "unknown key '%s' in '%s' (expected: value, source)", kk, e->path);
            }
            if (!vn || !sn || sn->kind != ISIM__YSCALAR || !sn->text[0])
                return isim__map_error(m, key,
                                       "'%s' in the long form needs 'value' and a "
                                       "non-empty 'source'",
                                       e->path);
            source = sn->text;
            n = vn;
        }
        if (n->kind != ISIM__YSCALAR || (n->quoted && e->k != COST))
            return isim__map_error(m, key, "'%s' must be a single value", e->path);
        if (!parse_setting(e, n->text, NULL, &v, why, sizeof why))
            return isim__map_error(m, key, "%s", why);
        set_value(s, e, v);
        if (e->k != COST) {
            isim_status st = isim__map_fact(m, key, v, source, n);
            if (st)
                return st;
        }
    }
    return ISIM_OK;
}

/* The keys a section allows: its settings, then `extra`. */
static void section_keys(const char *section, const char *const *extra, const char **keys,
                         size_t cap)
{
    size_t n = 0, len = strlen(section);
    for (size_t i = 0; i < N_SETTINGS && n + 1 < cap; i++)
        if (strncmp(SETTINGS[i].path, section, len) == 0 && SETTINGS[i].path[len] == '.')
            keys[n++] = SETTINGS[i].path + len + 1;
    for (; extra && *extra && n + 1 < cap; extra++)
        keys[n++] = *extra;
    keys[n] = NULL;
}

static isim_status open_section(isim__map *top, const char *section, const char *const *extra,
                                bool required, isim__map *out, bool *present)
{
    const char *keys[32];
    section_keys(section, extra, keys, 32);
    return isim__map_sub(top, section, keys, required, out, present);
}

/* A list of non-empty plain words (ids, precisions) with their places; a single word is
 * a list of one. */
static isim_status read_words(isim__map *m, const char *key, bool required,
                              isim_scenario_value **out, size_t *n)
{
    const isim__ynode *node = isim__map_get(m, key);
    *out = NULL;
    *n = 0;
    if (!node) {
        if (required)
            return isim__map_error(m, NULL, "missing key '%s'", key);
        return ISIM_OK;
    }
    const isim__ynode *const *items = &node;
    size_t count = 1;
    if (node->kind == ISIM__YSEQ) {
        items = (const isim__ynode *const *)node->items;
        count = node->n;
    }
    if (count == 0)
        return isim__map_error(m, key, "'%s' must list at least one entry", key);
    isim_scenario_value *words = calloc(count, sizeof *words);
    if (!words)
        return oom(m->r);
    for (size_t i = 0; i < count; i++) {
        const isim__ynode *it = items[i];
        if (it->kind != ISIM__YSCALAR || !it->text[0] || !(words[i].text = strdup(it->text))) {
            for (size_t k = 0; k < i; k++)
                free(words[k].text);
            free(words);
            if (it->kind == ISIM__YSCALAR && it->text[0])
                return oom(m->r);
            return isim__map_error(m, key, "'%s' must be a word or a list of words", key);
        }
        words[i].line = it->line;
        words[i].column = it->column;
    }
    *out = words;
    *n = count;
    return ISIM_OK;
}

static void free_words(isim_scenario_value *w, size_t n)
{
    for (size_t i = 0; w && i < n; i++)
        free(w[i].text);
    free(w);
}

static isim_status read_dtypes(isim__map *m, const char *key, isim_dtype **out, size_t *n)
{
    isim_scenario_value *words = NULL;
    size_t count = 0;
    isim_status st = read_words(m, key, false, &words, &count);
    if (st || !count)
        return st;
    bool all = count == 1 && strcmp(words[0].text, "all") == 0;
    static const isim_dtype every[] = {ISIM_BF16, ISIM_FP8, ISIM_INT8, ISIM_INT4, ISIM_FP4};
    size_t total = all ? sizeof every / sizeof every[0] : count;
    isim_dtype *v = calloc(total, sizeof *v);
    if (!v) {
        free_words(words, count);
        return oom(m->r);
    }
    for (size_t i = 0; i < total && !st; i++) {
        if (all)
            v[i] = every[i];
        else if (isim_dtype_parse(words[i].text, &v[i]))
            st = isim__fail(m->r->err, ISIM_ESCHEMA, m->r->file, words[i].line, words[i].column,
                            "'search.%s': unknown precision '%s' (expected fp32 bf16 fp16 fp8 "
                            "int8 int4 fp4, or all)",
                            key, words[i].text);
    }
    free_words(words, count);
    if (st) {
        free(v);
        return st;
    }
    *out = v;
    *n = total;
    return ISIM_OK;
}

/* A value of a sweep or a sensitivity range of `path`, where written. A value that reads as
 * a multiplier (x, then a number) must scale by a positive factor: `x0`, `x-1` and a bare
 * `x` are refused here, whatever the path (a text value such as "xenon" is not one). */
static isim_status read_value(isim__map *m, const isim__ynode *n, const char *path,
                              isim_scenario_value *out)
{
    if (n->kind != ISIM__YSCALAR || !n->text[0])
        return isim__fail(m->r->err, ISIM_ESCHEMA, m->r->file, n->line, n->column,
                          "'%s': a value is one word or number, not %s", path,
                          n->kind == ISIM__YSEQ   ? "a list"
                          : n->kind == ISIM__YMAP ? "a mapping"
                                                  : "empty");
    if (strlen(n->text) > ISIM_MAX_NAME)
        return isim__fail(m->r->err, ISIM_ESCHEMA, m->r->file, n->line, n->column,
                          "a value of %zu bytes, more than the %d a sweep or sensitivity value "
                          "may hold",
                          strlen(n->text), ISIM_MAX_NAME);
    const char *t = n->text;
    double f;
    if (t[0] == 'x' && (t[1] == '\0' || strchr("+-.0123456789", t[1])) &&
        (!parse_plain(t + 1, &f) || !(f > 0)))
        return isim__fail(m->r->err, ISIM_ESCHEMA, m->r->file, n->line, n->column,
                          "'%s': a multiplier is x and a positive number, got '%s'", path, t);
    if (!(out->text = strdup(t)))
        return oom(m->r);
    out->line = n->line;
    out->column = n->column;
    return ISIM_OK;
}

/* A path a sweep or a range may take: a setting, or hw./model. then an id (or *) and a
 * key path. */
static bool path_form(const char *path)
{
    if (find_setting(path))
        return true;
    const char *rest = strncmp(path, "hw.", 3) == 0      ? path + 3
                       : strncmp(path, "model.", 6) == 0 ? path + 6
                                                         : NULL;
    if (!rest)
        return false;
    const char *dot = strchr(rest, '.');
    return dot && dot > rest && dot[1] != '\0' && dot[strlen(dot) - 1] != '.';
}

static isim_status bad_path(isim__map *m, const isim__ynode *n, const char *path)
{
    char list[1200];
    expected_paths(list, sizeof list);
    isim__map at = *m;
    (void)n;
    return isim__map_error(&at, "path",
                           "unknown path '%s' (expected one of: %s; or hw.ID.<key path>, "
                           "hw.*.<key path>, model.ID.<key path>)",
                           path, list);
}

/* The id a model or hardware path names is one of the scenario's, resolved as the runner
 * resolves it; with the hardware "all" the ids are the catalog's, which the runner reads. */
static isim_status check_path_id(const isim_scenario *sc, const char *path, const isim__ynode *at,
                                 isim__reader *r)
{
    bool hw = strncmp(path, "hw.", 3) == 0;
    const isim_scenario_value *v = hw ? sc->hw : sc->models;
    size_t n = hw ? sc->n_hw : sc->n_models;
    if (hw && n == 1 && strcmp(v[0].text, "all") == 0)
        return ISIM_OK;
    const char **ids = malloc(n * sizeof *ids);
    if (!ids)
        return oom(r);
    for (size_t i = 0; i < n; i++)
        ids[i] = v[i].text;
    size_t index;
    const char *key;
    isim_status st =
        isim_scenario_path_spec(path, ids, n, &index, &key, r->file, at->line, at->column, r->err);
    free(ids);
    return st;
}

/* A path's form and, for a model or hardware path, its id; its place is recorded. */
static isim_status check_path(isim__map *m, const isim_scenario *sc, const char *path, int *line,
                              int *column)
{
    const isim__ynode *at = isim__map_get(m, "path");
    *line = at->line;
    *column = at->column;
    if (!path_form(path))
        return bad_path(m, at, path);
    return find_setting(path) ? ISIM_OK : check_path_id(sc, path, at, m->r);
}

/* A swept setting's values are checked now, on the file's own settings. */
static isim_status check_setting_values(isim__map *m, const isim_scenario_settings *base,
                                        const char *path, const isim_scenario_value *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        isim_scenario_settings probe = *base;
        isim_status st = isim_scenario_set(&probe, path, v[i].text, m->r->file, v[i].line,
                                           v[i].column, m->r->err);
        if (st)
            return st;
    }
    return ISIM_OK;
}

static isim_status read_sweeps(isim__map *top, isim_scenario *sc)
{
    const isim__ynode *list = isim__map_get(top, "sweeps");
    if (!list)
        return ISIM_OK;
    if (list->kind != ISIM__YSEQ)
        return isim__map_error(top, "sweeps", "'sweeps' must be a list of {path, values}");
    if (list->n > ISIM_SCENARIO_MAX_SWEEPS) {
        const isim__ynode *past = list->items[ISIM_SCENARIO_MAX_SWEEPS];
        return isim__fail(top->r->err, ISIM_ESCHEMA, top->r->file, past->line, past->column,
                          "more than %d sweeps", ISIM_SCENARIO_MAX_SWEEPS);
    }
    sc->sweeps = calloc(list->n ? list->n : 1, sizeof *sc->sweeps);
    if (!sc->sweeps)
        return oom(top->r);
    static const char *const keys[] = {"path", "values", "lockstep", NULL};
    for (size_t i = 0; i < list->n; i++) {
        const isim__ynode *it = list->items[i];
        isim_scenario_sweep *w = &sc->sweeps[sc->n_sweeps++];
        w->line = it->line;
        w->column = it->column;
        if (it->kind != ISIM__YMAP)
            return isim__fail(top->r->err, ISIM_ESCHEMA, top->r->file, it->line, it->column,
                              "a sweep must be a mapping {path, values[, lockstep]}");
        isim__map m;
        char where[32];
        snprintf(where, sizeof where, "sweeps[%zu]", i);
        isim_status st = isim__map_root(top->r, it, keys, &m);
        if (st)
            return st;
        snprintf(m.path, sizeof m.path, "%s", where);
        const char *s = NULL;
        if ((st = isim__map_string(&m, "path", true, &s, NULL)))
            return st;
        if (!(w->path = strdup(s)))
            return oom(top->r);
        if ((st = check_path(&m, sc, w->path, &w->path_line, &w->path_column)))
            return st;
        bool here = false;
        if ((st = isim__map_string(&m, "lockstep", false, &s, &here)))
            return st;
        if (here && !(w->lockstep = strdup(s)))
            return oom(top->r);
        const isim__ynode *vals = isim__map_get(&m, "values");
        if (!vals)
            return isim__map_error(&m, NULL, "missing key 'values' in '%s'", where);
        if (vals->kind != ISIM__YSEQ || vals->n == 0)
            return isim__map_error(&m, "values", "'%s.values' must be a non-empty list", where);
        if (!(w->values = calloc(vals->n, sizeof *w->values)))
            return oom(top->r);
        for (size_t k = 0; k < vals->n; k++, w->n++)
            if ((st = read_value(&m, vals->items[k], w->path, &w->values[k])))
                return st;
        if (find_setting(w->path) &&
            (st = check_setting_values(&m, &sc->settings, w->path, w->values, w->n)))
            return st;
        for (size_t k = 0; k + 1 < sc->n_sweeps; k++)
            if (strcmp(sc->sweeps[k].path, w->path) == 0)
                return isim__map_error(&m, "path", "'%s' is swept twice (first at line %d)",
                                       w->path, sc->sweeps[k].line);
    }
    /* lockstep groups move together: the same number of values in each */
    size_t points = 1;
    for (size_t i = 0; i < sc->n_sweeps; i++) {
        const isim_scenario_sweep *w = &sc->sweeps[i];
        bool first = true;
        for (size_t k = 0; w->lockstep && k < i; k++)
            if (sc->sweeps[k].lockstep && strcmp(sc->sweeps[k].lockstep, w->lockstep) == 0) {
                first = false;
                if (sc->sweeps[k].n != w->n)
                    return isim__fail(top->r->err, ISIM_ESCHEMA, top->r->file, w->line, w->column,
                                      "sweeps in lockstep '%s' need as many values each: %zu "
                                      "here, %zu at line %d",
                                      w->lockstep, w->n, sc->sweeps[k].n, sc->sweeps[k].line);
                break;
            }
        if (first) {
            if (points > SIZE_MAX / w->n)
                points = SIZE_MAX;
            else
                points *= w->n;
        }
    }
    if (points > sc->max_points)
        return isim__map_error(top, "sweeps",
                               "the sweeps make %zu points, more than search.max_points (%zu)",
                               points, sc->max_points);
    return ISIM_OK;
}

static isim_status read_sensitivity(isim__map *top, isim_scenario *sc)
{
    const isim__ynode *list = isim__map_get(top, "sensitivity");
    if (!list)
        return ISIM_OK;
    if (list->kind != ISIM__YSEQ)
        return isim__map_error(top, "sensitivity",
                               "'sensitivity' must be a list of {path, low, high}");
    if (list->n > ISIM_SCENARIO_MAX_SENSITIVITY) {
        const isim__ynode *past = list->items[ISIM_SCENARIO_MAX_SENSITIVITY];
        return isim__fail(top->r->err, ISIM_ESCHEMA, top->r->file, past->line, past->column,
                          "more than %d sensitivity inputs", ISIM_SCENARIO_MAX_SENSITIVITY);
    }
    sc->sensitivity = calloc(list->n ? list->n : 1, sizeof *sc->sensitivity);
    if (!sc->sensitivity)
        return oom(top->r);
    static const char *const keys[] = {"path", "low", "high", NULL};
    for (size_t i = 0; i < list->n; i++) {
        const isim__ynode *it = list->items[i];
        isim_scenario_range *g = &sc->sensitivity[sc->n_sensitivity++];
        g->line = it->line;
        g->column = it->column;
        if (it->kind != ISIM__YMAP)
            return isim__fail(top->r->err, ISIM_ESCHEMA, top->r->file, it->line, it->column,
                              "a sensitivity entry must be a mapping {path, low, high}");
        isim__map m;
        isim_status st = isim__map_root(top->r, it, keys, &m);
        if (st)
            return st;
        snprintf(m.path, sizeof m.path, "sensitivity[%zu]", i);
        const char *s = NULL;
        if ((st = isim__map_string(&m, "path", true, &s, NULL)))
            return st;
        if (!(g->path = strdup(s)))
            return oom(top->r);
        if ((st = check_path(&m, sc, g->path, &g->path_line, &g->path_column)))
            return st;
        const isim__ynode *lo = isim__map_get(&m, "low"), *hi = isim__map_get(&m, "high");
        if (!lo || !hi)
            return isim__map_error(&m, NULL, "missing key '%s' in 'sensitivity[%zu]'",
                                   lo ? "high" : "low", i);
        if ((st = read_value(&m, lo, g->path, &g->low)) ||
            (st = read_value(&m, hi, g->path, &g->high)))
            return st;
        if (find_setting(g->path) &&
            ((st = check_setting_values(&m, &sc->settings, g->path, &g->low, 1)) ||
             (st = check_setting_values(&m, &sc->settings, g->path, &g->high, 1))))
            return st;
    }
    return ISIM_OK;
}

static isim_status read_scenario(isim__reader *r, const isim__ynode *root, void *obj)
{
    isim_scenario *sc = obj;
    static const char *const keys[] = {
        "name",   "description", "fidelity", "models", "hardware",    "workload", "slo",
        "search", "recommend",   "cost",     "sweeps", "sensitivity", NULL};
    static const char *const fidelities[] = {"paper", "deploy", NULL};
    static const char *const search_extra[] = {"spec_draft", "spec_draft_weights", "ttft_objective",
                                               "max_points", NULL};
    isim__map top, sec;
    const char *s = NULL;
    bool here = false;
    int fid = ISIM_DEPLOY;
    isim_status st = isim__map_root(r, root, keys, &top);
    if (!st)
        st = isim__map_string(&top, "name", true, &s, NULL);
    if (!st && !(sc->name = strdup(s)))
        return oom(r);
    if (!st)
        st = isim__map_text(&top, "description", false, &s, &here);
    if (!st && here && !(sc->description = strdup(s)))
        return oom(r);
    /* a folded block ends in a line break */
    for (size_t n = sc->description ? strlen(sc->description) : 0;
         n > 0 && (sc->description[n - 1] == '\n' || sc->description[n - 1] == ' '); n--)
        sc->description[n - 1] = '\0';
    if (!st)
        st = isim__map_enum(&top, "fidelity", false, fidelities, &fid, NULL);
    sc->fidelity = (isim_fidelity)fid;
    if (!st)
        st = read_words(&top, "models", true, &sc->models, &sc->n_models);
    if (!st)
        st = read_words(&top, "hardware", true, &sc->hw, &sc->n_hw);
    if (st)
        return st;

    isim_scenario_settings *set = &sc->settings;
    if ((st = open_section(&top, "workload", NULL, true, &sec, NULL)) ||
        (st = read_settings(&sec, "workload", set)))
        return st;
    if (set->request_rate_per_s > 0 && set->concurrency > 0)
        return isim__map_error(&sec, "concurrency",
                               "give the workload as request_rate_per_s or as concurrency, "
                               "not both");
    const char *const *none = NULL;
    if ((st = open_section(&top, "slo", none, false, &sec, &here)) ||
        (st = read_settings(here ? &sec : NULL, "slo", set)))
        return st;
    if (set->tpot_ms > 0 && set->min_tokens_per_s_per_user > 1000 / set->tpot_ms)
        return isim__map_error(&sec, "min_tokens_per_s_per_user",
                               "contradictory SLOs: a TPOT of %g ms allows at most %g tokens/s "
                               "per user, below the minimum of %g",
                               set->tpot_ms, 1000 / set->tpot_ms, set->min_tokens_per_s_per_user);
    bool has_search = false;
    if ((st = open_section(&top, "search", search_extra, false, &sec, &has_search)) ||
        (st = read_settings(has_search ? &sec : NULL, "search", set)))
        return st;
    sc->max_points = 10000;
    sc->spec_draft_weights = ISIM_BF16;
    if (has_search) {
        double mp = 10000;
        if ((st = isim__map_number(&sec, "max_points", false, 1, 1e7, &mp, NULL)))
            return st;
        sc->max_points = (size_t)mp;
        if ((st = read_dtypes(&sec, "weights", &sc->weights, &sc->n_weights)) ||
            (st = read_dtypes(&sec, "kv", &sc->kv, &sc->n_kv)))
            return st;
        if ((st = isim__map_string(&sec, "spec_draft", false, &s, &here)))
            return st;
        if (here) {
            sc->spec_draft_line = isim__map_get(&sec, "spec_draft")->line;
            sc->spec_draft_column = isim__map_get(&sec, "spec_draft")->column;
        }
        if (here && !(sc->spec_draft = strdup(s)))
            return oom(r);
        if ((st = isim__map_string(&sec, "spec_draft_weights", false, &s, &here)))
            return st;
        if (here && isim_dtype_parse(s, &sc->spec_draft_weights))
            return isim__map_error(&sec, "spec_draft_weights",
                                   "'search.spec_draft_weights': unknown precision '%s' "
                                   "(expected fp32 bf16 fp16 fp8 int8 int4 fp4)",
                                   s);
        if ((st = isim__map_bool(&sec, "ttft_objective", false, &sc->ttft_objective, NULL)))
            return st;
    }
    if ((st = open_section(&top, "recommend", none, false, &sec, &here)) ||
        (st = read_settings(here ? &sec : NULL, "recommend", set)))
        return st;
    if ((st = open_section(&top, "cost", none, false, &sec, &here)) ||
        (st = read_settings(here ? &sec : NULL, "cost", set)))
        return st;
    if ((st = read_sweeps(&top, sc)) || (st = read_sensitivity(&top, sc)))
        return st;
    return ISIM_OK;
}

void isim_scenario_free(isim_scenario *s)
{
    if (!s)
        return;
    free(s->id);
    free(s->path);
    free(s->name);
    free(s->description);
    free_words(s->models, s->n_models);
    free_words(s->hw, s->n_hw);
    free(s->weights);
    free(s->kv);
    free(s->spec_draft);
    for (size_t i = 0; s->sweeps && i < s->n_sweeps; i++) {
        free(s->sweeps[i].path);
        free(s->sweeps[i].lockstep);
        for (size_t k = 0; k < s->sweeps[i].n; k++)
            free(s->sweeps[i].values[k].text);
        free(s->sweeps[i].values);
    }
    free(s->sweeps);
    for (size_t i = 0; s->sensitivity && i < s->n_sensitivity; i++) {
        free(s->sensitivity[i].path);
        free(s->sensitivity[i].low.text);
        free(s->sensitivity[i].high.text);
    }
    free(s->sensitivity);
    isim__facts_free(s->facts, s->n_facts);
    free(s);
}

isim_status isim_scenario_load(const char *path, isim_scenario **out, isim_error *err)
{
    *out = NULL;
    isim_scenario *sc = calloc(1, sizeof *sc);
    if (!sc)
        return isim__fail(err, ISIM_ENOMEM, path, 0, 0, "out of memory");
    /* the source of the numbers the file sets: its whole path */
    size_t wn = strlen(path) + sizeof "scenario ";
    char *where = malloc(wn);
    if (!where) {
        free(sc);
        return isim__fail(err, ISIM_ENOMEM, path, 0, 0, "out of memory");
    }
    snprintf(where, wn, "scenario %s", path);
    isim__ynode *root = NULL;
    isim_status st = isim__yaml_load(path, &root, err);
    if (!st) {
        isim__reader r = {.file = path, .err = err, .default_source = where};
        st = read_scenario(&r, root, sc);
        sc->facts = r.facts;
        sc->n_facts = r.n_facts;
    }
    isim__ynode_free(root);
    free(where);
    if (!st && (!(sc->id = isim__file_stem(path)) || !(sc->path = dup_text(path))))
        st = isim__fail(err, ISIM_ENOMEM, path, 0, 0, "out of memory");
    if (st) {
        isim_scenario_free(sc);
        return st;
    }
    *out = sc;
    return ISIM_OK;
}
