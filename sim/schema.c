/* The strict schema reader: typed access to the keys of a YAML mapping that refuses
 * unknown keys, wrong types, out-of-range numbers and numbers without a source, each with
 * file:line:col and the key path (docs/formats.md). Every number read is recorded as a
 * fact with its source, so that `infersim show` and reports can cite it. */
#include "sim/internal.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void full_path(const isim__map *m, const char *key, char *buf, size_t n)
{
    if (m->path[0])
        snprintf(buf, n, "%s.%s", m->path, key);
    else
        snprintf(buf, n, "%s", key);
}

/* The error at node n: in the specification file, or where an override wrote it (then
 * naming the file it changes). */
static isim_status fail_node(const isim__map *m, const isim__ynode *n, const char *msg)
{
    if (n->file)
        return isim__fail(m->r->err, ISIM_ESCHEMA, n->file, n->line, n->column, "%s (in %s)", msg,
                          m->r->file);
    return isim__fail(m->r->err, ISIM_ESCHEMA, m->r->file, n->line, n->column, "%s", msg);
}

isim_status isim__map_error(const isim__map *m, const char *key, const char *fmt, ...)
{
    const isim__ynode *n = key ? isim__map_get(m, key) : NULL;
    if (!n)
        n = m->key ? m->key : m->node;
    if (!m->r->err)
        return ISIM_ESCHEMA;
    char msg[sizeof m->r->err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail_node(m, n, msg);
}

static isim_status fail_at(const isim__map *m, const isim__ynode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static isim_status fail_at(const isim__map *m, const isim__ynode *n, const char *fmt, ...)
{
    if (!m->r->err)
        return ISIM_ESCHEMA;
    char msg[sizeof m->r->err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail_node(m, n, msg);
}

const isim__ynode *isim__map_get(const isim__map *m, const char *key)
{
    for (size_t i = 0; i < m->node->n; i++)
        if (strcmp(m->node->keys[i]->text, key) == 0)
            return m->node->items[i];
    return NULL;
}

static const isim__ynode *key_node(const isim__map *m, const char *key)
{
    for (size_t i = 0; i < m->node->n; i++)
        if (strcmp(m->node->keys[i]->text, key) == 0)
            return m->node->keys[i];
    return NULL;
}

/* Refuses keys outside `allowed`; "source" is always allowed and never listed. */
static isim_status check_keys(const isim__map *m, const char *const *allowed)
{
    for (size_t i = 0; allowed && i < m->node->n; i++) {
        const char *k = m->node->keys[i]->text;
        bool ok = strcmp(k, "source") == 0;
        for (const char *const *a = allowed; !ok && *a; a++)
            ok = strcmp(k, *a) == 0;
        if (ok)
            continue;
        char expected[512] = "";
        size_t used = 0;
        for (const char *const *a = allowed; *a; a++) {
            int w = snprintf(expected + used, sizeof expected - used, "%s%s",
                             a == allowed ? "" : ", ", *a);
            if (w < 0 || (size_t)w >= sizeof expected - used)
                break;
            used += (size_t)w;
        }
        if (m->path[0])
            return fail_at(m, m->node->keys[i], "unknown key '%s' in '%s' (expected: %s)", k,
                           m->path, expected);
        return fail_at(m, m->node->keys[i], "unknown key '%s' (expected: %s)", k, expected);
    }
    return ISIM_OK;
}

/* A source is a non-empty string. */
static isim_status read_source(const isim__map *m, const isim__ynode *n, const char *where,
                               const char **out)
{
    if (n->kind != ISIM__YSCALAR || !n->text[0])
        return fail_at(m, n, "'%s' must be a non-empty string", where);
    *out = n->text;
    return ISIM_OK;
}

static isim_status open_map(isim__reader *r, const isim__map *parent, const isim__ynode *node,
                            const char *path, const char *const *allowed, isim__map *out)
{
    memset(out, 0, sizeof *out);
    out->r = r;
    out->node = node;
    snprintf(out->path, sizeof out->path, "%s", path);
    out->source = parent && parent->path[0] ? parent->source : NULL;
    isim_status st = check_keys(out, allowed);
    if (st)
        return st;
    const isim__ynode *src = isim__map_get(out, "source");
    if (src) {
        char where[200];
        full_path(out, "source", where, sizeof where);
        if (!path[0])
            return fail_at(out, key_node(out, "source"),
                           "a top-level 'source' would cover nothing; put it in a section");
        return read_source(out, src, where, &out->source);
    }
    return ISIM_OK;
}

isim_status isim__map_root(isim__reader *r, const isim__ynode *root, const char *const *allowed,
                           isim__map *out)
{
    return open_map(r, NULL, root, "", allowed, out);
}

/* A missing key is reported at the key that opens its section, or the section itself when
 * no key names it (an item of a list), or 1:1 for the root. */
static isim_status missing(const isim__map *m, const char *key)
{
    static const isim__ynode top = {.line = 1, .column = 1};
    if (m->path[0])
        return fail_at(m, m->key ? m->key : m->node, "missing key '%s' in '%s'", key, m->path);
    return fail_at(m, &top, "missing key '%s'", key);
}

/* Finds key: *node is NULL when it is absent, which is an error only if required. */
static isim_status lookup(isim__map *m, const char *key, bool required, bool *present,
                          const isim__ynode **node)
{
    *node = isim__map_get(m, key);
    if (present)
        *present = *node != NULL;
    return !*node && required ? missing(m, key) : ISIM_OK;
}

isim_status isim__map_sub(isim__map *parent, const char *key, const char *const *allowed,
                          bool required, isim__map *out, bool *present)
{
    const isim__ynode *n;
    isim_status found = lookup(parent, key, required, present, &n);
    if (found || !n)
        return found;
    char path[200];
    full_path(parent, key, path, sizeof path);
    if (n->kind != ISIM__YMAP)
        return fail_at(parent, n, "'%s' must be a mapping of keys to values", path);
    isim_status st = open_map(parent->r, parent, n, path, allowed, out);
    out->key = key_node(parent, key);
    return st;
}

static isim_status add_fact(isim__map *m, const char *path, double value, const char *source,
                            const isim__ynode *n)
{
    isim__reader *r = m->r;
    if (r->n_facts == r->cap_facts) {
        size_t cap = r->cap_facts ? 2 * r->cap_facts : 32;
        isim_fact *f = realloc(r->facts, cap * sizeof *f);
        if (!f)
            return isim__fail(r->err, ISIM_ENOMEM, r->file, 0, 0, "out of memory");
        r->facts = f;
        r->cap_facts = cap;
    }
    char *p = strdup(path), *s = strdup(source);
    if (!p || !s) {
        free(p);
        free(s);
        return isim__fail(r->err, ISIM_ENOMEM, r->file, 0, 0, "out of memory");
    }
    r->facts[r->n_facts++] = (isim_fact){p, value, s, n->line, n->column};
    return ISIM_OK;
}

isim_status isim__map_fact(isim__map *m, const char *key, double value, const char *source,
                           const isim__ynode *n)
{
    char path[200];
    full_path(m, key, path, sizeof path);
    if (!source)
        source = m->source ? m->source : m->r->default_source;
    if (!source)
        return fail_at(m, n, "no source for '%s'", path);
    return add_fact(m, path, value, source, n);
}

void isim__facts_free(isim_fact *facts, size_t n)
{
    if (!facts)
        return;
    for (size_t i = 0; i < n; i++) {
        free((char *)facts[i].path);
        free((char *)facts[i].source);
    }
    free(facts);
}

bool isim__ynode_number(const isim__ynode *n, double *out)
{
    if (n->kind != ISIM__YSCALAR || n->quoted || !n->text[0])
        return false;
    const char *s = n->text;
    for (const char *c = s; *c; c++)
        if (!(isdigit((unsigned char)*c) || strchr("+-.eE", *c)))
            return false; /* no hex, inf, nan, underscores */
    char *end;
    double v = strtod(s, &end);
    if (*end || !isfinite(v))
        return false;
    *out = v;
    return true;
}

/* "80 GB", "80GB": a number followed by a unit. */
static bool looks_like_unit(const char *s)
{
    char *end;
    strtod(s, &end);
    if (end == s)
        return false;
    while (*end == ' ')
        end++;
    return isalpha((unsigned char)*end) != 0;
}

isim_status isim__map_number(isim__map *m, const char *key, bool required, double min, double max,
                             double *out, bool *present)
{
    const isim__ynode *n;
    isim_status found = lookup(m, key, required, present, &n);
    if (found || !n)
        return found;
    char path[200];
    full_path(m, key, path, sizeof path);
    const char *source = m->source;
    const isim__ynode *vn = n;
    if (n->kind == ISIM__YMAP) {
        /* long form {value: X, source: "..."} */
        isim__map sub;
        static const char *const long_form[] = {"value", NULL};
        isim_status st = open_map(m->r, m, n, path, long_form, &sub);
        if (st)
            return st;
        vn = isim__map_get(&sub, "value");
        if (!vn)
            return fail_at(m, n, "missing key 'value' in '%s'", path);
        if (!isim__map_get(&sub, "source"))
            return fail_at(m, n, "missing key 'source' in '%s'", path);
        source = sub.source;
    }
    double v;
    if (!isim__ynode_number(vn, &v)) {
        if (vn->kind == ISIM__YSCALAR && looks_like_unit(vn->text))
            return fail_at(m, vn, "'%s' must be a number, got '%s' (the unit is in the key name)",
                           path, vn->text);
        if (vn->kind == ISIM__YSCALAR)
            return fail_at(m, vn, "'%s' must be a number, got '%s'", path, vn->text);
        return fail_at(m, vn, "'%s' must be a number", path);
    }
    if (v < min || v > max)
        return fail_at(m, vn, "'%s' = %g is out of range [%g, %g]", path, v, min, max);
    if (!source)
        source = m->r->default_source;
    if (!source)
        return fail_at(m, vn,
                       "no source for '%s' (add 'source:' to its section or write "
                       "{value: %s, source: \"...\"})",
                       path, vn->text);
    isim_status st = add_fact(m, path, v, source, vn);
    if (st)
        return st;
    *out = v;
    return ISIM_OK;
}

isim_status isim__map_int(isim__map *m, const char *key, bool required, int64_t min, int64_t max,
                          int64_t *out, bool *present)
{
    double v = 0;
    bool here = false;
    isim_status st = isim__map_number(m, key, required, (double)min, (double)max, &v, &here);
    if (present)
        *present = here;
    if (st || !here)
        return st;
    if (v != floor(v)) {
        char path[200];
        full_path(m, key, path, sizeof path);
        return isim__map_error(m, key, "'%s' must be a whole number, got %g", path, v);
    }
    *out = (int64_t)v;
    return ISIM_OK;
}

isim_status isim__map_text(isim__map *m, const char *key, bool required, const char **out,
                           bool *present)
{
    const isim__ynode *n;
    isim_status found = lookup(m, key, required, present, &n);
    if (found || !n)
        return found;
    char path[200];
    full_path(m, key, path, sizeof path);
    if (n->kind != ISIM__YSCALAR || !n->text[0])
        return fail_at(m, n, "'%s' must be a non-empty string", path);
    *out = n->text;
    return ISIM_OK;
}

isim_status isim__map_string(isim__map *m, const char *key, bool required, const char **out,
                             bool *present)
{
    const char *s = NULL;
    isim_status st = isim__map_text(m, key, required, &s, present);
    if (st || !s)
        return st;
    if (strlen(s) > ISIM_MAX_NAME) {
        char path[200];
        full_path(m, key, path, sizeof path);
        return fail_at(m, isim__map_get(m, key),
                       "'%s' is %zu bytes, more than the %d a name may hold", path, strlen(s),
                       ISIM_MAX_NAME);
    }
    *out = s;
    return ISIM_OK;
}

isim_status isim__map_strings(isim__map *m, const char *key, bool required, char ***out,
                              bool *present)
{
    const isim__ynode *n;
    isim_status found = lookup(m, key, required, present, &n);
    if (found || !n)
        return found;
    char path[200];
    full_path(m, key, path, sizeof path);
    if (n->kind != ISIM__YSEQ || n->n == 0)
        return fail_at(m, n, "'%s' must be a list of strings", path);
    for (size_t i = 0; i < n->n; i++) {
        if (n->items[i]->kind != ISIM__YSCALAR || !n->items[i]->text[0])
            return fail_at(m, n->items[i], "'%s' items must be non-empty strings", path);
        if (strlen(n->items[i]->text) > ISIM_MAX_NAME)
            return fail_at(m, n->items[i],
                           "an item of '%s' is %zu bytes, more than the %d a name "
                           "may hold",
                           path, strlen(n->items[i]->text), ISIM_MAX_NAME);
    }
    char **v = calloc(n->n + 1, sizeof *v);
    for (size_t i = 0; v && i < n->n; i++)
        if (!(v[i] = strdup(n->items[i]->text))) {
            isim_ids_free(v);
            v = NULL;
        }
    if (!v)
        return ISIM_ENOMEM;
    isim_ids_free(*out);
    *out = v;
    return ISIM_OK;
}

isim_status isim__map_bool(isim__map *m, const char *key, bool required, bool *out, bool *present)
{
    const isim__ynode *n;
    isim_status found = lookup(m, key, required, present, &n);
    if (found || !n)
        return found;
    char path[200];
    full_path(m, key, path, sizeof path);
    if (n->kind == ISIM__YSCALAR && !n->quoted && strcmp(n->text, "true") == 0)
        *out = true;
    else if (n->kind == ISIM__YSCALAR && !n->quoted && strcmp(n->text, "false") == 0)
        *out = false;
    else if (n->kind == ISIM__YSCALAR)
        return fail_at(m, n, "'%s' must be true or false, got '%s'", path, n->text);
    else
        return fail_at(m, n, "'%s' must be true or false", path);
    return ISIM_OK;
}

isim_status isim__map_enum(isim__map *m, const char *key, bool required, const char *const *names,
                           int *out, bool *present)
{
    const char *s = NULL;
    bool here = false;
    isim_status st = isim__map_string(m, key, required, &s, &here);
    if (present)
        *present = here;
    if (st || !here)
        return st;
    for (int i = 0; names[i]; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return ISIM_OK;
        }
    }
    char list[256] = "";
    size_t used = 0;
    for (int i = 0; names[i]; i++) {
        int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", names[i]);
        if (w < 0 || (size_t)w >= sizeof list - used)
            break;
        used += (size_t)w;
    }
    char path[200];
    full_path(m, key, path, sizeof path);
    return isim__map_error(m, key, "'%s' must be one of %s; got '%s'", path, list, s);
}

isim_status isim__spec_read(const char *path, const isim_override *ov, size_t n_ov,
                            isim__read_fn read, void *obj, isim_fact **facts, size_t *n_facts,
                            isim_error *err)
{
    isim__ynode *root = NULL;
    isim_status st = isim__yaml_load(path, &root, err);
    if (!st && n_ov)
        st = isim__overrides_apply(root, path, ov, n_ov, err);
    if (st) {
        isim__ynode_free(root);
        return st;
    }
    isim__reader r = {.file = path, .err = err, .ov = ov, .n_ov = n_ov};
    st = read(&r, root, obj);
    isim__ynode_free(root);
    if (st) {
        isim__facts_free(r.facts, r.n_facts);
        return st;
    }
    *facts = r.facts;
    *n_facts = r.n_facts;
    return ISIM_OK;
}
