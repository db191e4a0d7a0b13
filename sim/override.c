/* What-if overrides: changes to single values of a parsed specification before the schema
 * reads it, so that a changed value meets the checks a written one meets and every error
 * points at the place the change was written (isim_override in sim.h). */
#include "sim/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static isim_status oom(const isim_override *o, isim_error *err)
{
    return isim__fail(err, ISIM_ENOMEM, o->file, o->line, o->column, "out of memory");
}

static isim__ynode *new_node(const isim_override *o, isim__ykind kind, const char *text)
{
    isim__ynode *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->kind = kind;
    n->line = o->line;
    n->column = o->column;
    n->file = o->file;
    if (text && !(n->text = strdup(text))) {
        free(n);
        return NULL;
    }
    return n;
}

/* Adds key: val to a mapping; the mapping owns both on success. */
static bool add_entry(isim__ynode *map, isim__ynode *key, isim__ynode *val)
{
    isim__ynode **keys = realloc(map->keys, (map->n + 1) * sizeof *keys);
    if (!keys)
        return false;
    map->keys = keys;
    isim__ynode **items = realloc(map->items, (map->n + 1) * sizeof *items);
    if (!items)
        return false;
    map->items = items;
    map->keys[map->n] = key;
    map->items[map->n] = val;
    map->n++;
    return true;
}

static isim__ynode **entry(isim__ynode *map, const char *key)
{
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i]->text, key) == 0)
            return &map->items[i];
    return NULL;
}

/* {value: text, source: o->source}, the long form of a number with its own source. */
static isim__ynode *long_form(const isim_override *o, const char *text)
{
    isim__ynode *m = new_node(o, ISIM__YMAP, NULL);
    isim__ynode *kv = new_node(o, ISIM__YSCALAR, "value"), *v = new_node(o, ISIM__YSCALAR, text);
    isim__ynode *ks = new_node(o, ISIM__YSCALAR, "source");
    isim__ynode *s = new_node(o, ISIM__YSCALAR, o->source ? o->source : "what-if override");
    if (m && kv && v && ks && s && add_entry(m, kv, v)) {
        kv = v = NULL;
        if (add_entry(m, ks, s))
            return m;
    }
    isim__ynode_free(m);
    isim__ynode_free(kv);
    isim__ynode_free(v);
    isim__ynode_free(ks);
    isim__ynode_free(s);
    return NULL;
}

static bool is_number_text(const char *text)
{
    isim__ynode probe = {.kind = ISIM__YSCALAR, .text = (char *)text};
    double v;
    return isim__ynode_number(&probe, &v);
}

static isim_status apply_one(isim__ynode *root, const char *file, const isim_override *o,
                             isim_error *err)
{
    char path[256];
    if (!o->path || !o->path[0] || strlen(o->path) >= sizeof path)
        return isim__fail(err, ISIM_ESCHEMA, o->file, o->line, o->column,
                          "an override needs a key path");
    if (!(o->scale > 0) && !o->value)
        return isim__fail(err, ISIM_ESCHEMA, o->file, o->line, o->column,
                          "an override of '%s' needs a value or a scale", o->path);
    snprintf(path, sizeof path, "%s", o->path);
    /* walk to the parent of the last key, creating missing sections */
    isim__ynode *map = root, **slot = NULL;
    char *save = NULL, *key = strtok_r(path, ".", &save), *prev = NULL;
    while (key) {
        char *next = strtok_r(NULL, ".", &save);
        if (map->kind != ISIM__YMAP)
            return isim__fail(err, ISIM_ESCHEMA, o->file, o->line, o->column,
                              "'%s' in %s: '%s' is not a section", o->path, file, prev);
        slot = entry(map, key);
        if (!slot) {
            if (o->scale > 0) {
                char has[400] = "";
                size_t used = 0;
                for (size_t i = 0; i < map->n && used < sizeof has; i++) {
                    int w = snprintf(has + used, sizeof has - used, "%s%s", i ? ", " : "",
                                     map->keys[i]->text);
                    if (w < 0)
                        break;
                    used += (size_t)w;
                }
                return isim__fail(err, ISIM_ESCHEMA, o->file, o->line, o->column,
                                  "'%s' in %s: nothing to scale, '%s' has no '%s' (it has: %s)",
                                  o->path, file, prev ? prev : "the file", key, has);
            }
            isim__ynode *k = new_node(o, ISIM__YSCALAR, key);
            isim__ynode *v = next ? new_node(o, ISIM__YMAP, NULL) : NULL;
            if (!k || (next && !v) || !add_entry(map, k, v)) {
                isim__ynode_free(k);
                isim__ynode_free(v);
                return oom(o, err);
            }
            slot = &map->items[map->n - 1];
        }
        if (!next)
            break;
        map = *slot;
        prev = key;
        key = next;
    }
    isim__ynode *target = *slot;
    /* a number in the long form: change its value and its source */
    isim__ynode **value = target && target->kind == ISIM__YMAP ? entry(target, "value") : NULL;
    if (target && target->kind != ISIM__YSCALAR && !value)
        return isim__fail(err, ISIM_ESCHEMA, o->file, o->line, o->column,
                          "'%s' in %s is a %s, not a single value", o->path, file,
                          target->kind == ISIM__YMAP ? "section" : "list");
    const isim__ynode *old = value ? *value : target;
    char text[64];
    const char *nv = o->value;
    if (o->scale > 0) {
        double v;
        if (!old || !isim__ynode_number(old, &v))
            return isim__fail(err, ISIM_ESCHEMA, o->file, o->line, o->column,
                              "'%s' in %s: a scale needs a number there, not '%s'", o->path, file,
                              old ? old->text : "");
        snprintf(text, sizeof text, "%.17g", v * o->scale);
        nv = text;
    }
    isim__ynode *repl = is_number_text(nv) ? long_form(o, nv) : new_node(o, ISIM__YSCALAR, nv);
    if (!repl)
        return oom(o, err);
    isim__ynode_free(*slot);
    *slot = repl;
    return ISIM_OK;
}

isim_status isim__overrides_apply(isim__ynode *root, const char *file, const isim_override *ov,
                                  size_t n, isim_error *err)
{
    for (size_t i = 0; i < n; i++) {
        isim_status st = apply_one(root, file, &ov[i], err);
        if (st)
            return st;
    }
    return ISIM_OK;
}
