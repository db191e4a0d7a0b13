/* A YAML file as a small tree of scalars, mappings and sequences with 1-based line and
 * column marks, built from libyaml's event stream. The schema reader (schema.c) walks it;
 * keeping the tree lets every later check point at the right place. */
#include "sim/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

void isim__ynode_free(isim__ynode *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++) {
        if (n->keys)
            isim__ynode_free(n->keys[i]);
        if (n->items)
            isim__ynode_free(n->items[i]);
    }
    free(n->keys);
    free(n->items);
    free(n->text);
    free(n);
}

typedef struct {
    yaml_parser_t parser;
    const char *file;
    isim_error *err;
} loader;

static isim_status oom(loader *L)
{
    return isim__fail(L->err, ISIM_ENOMEM, L->file, 0, 0, "out of memory");
}

static isim_status syntax(loader *L)
{
    yaml_parser_t *p = &L->parser;
    const yaml_mark_t *mk = p->problem ? &p->problem_mark : &p->mark;
    if (p->context)
        return isim__fail(L->err, ISIM_EPARSE, L->file, (int)mk->line + 1, (int)mk->column + 1,
                          "yaml syntax error: %s %s", p->problem ? p->problem : "", p->context);
    return isim__fail(L->err, ISIM_EPARSE, L->file, (int)mk->line + 1, (int)mk->column + 1,
                      "yaml syntax error: %s", p->problem ? p->problem : "unreadable input");
}

static isim_status next(loader *L, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&L->parser, ev))
        return L->parser.error == YAML_MEMORY_ERROR ? oom(L) : syntax(L);
    return ISIM_OK;
}

static isim_status append(loader *L, isim__ynode *parent, isim__ynode *key, isim__ynode *val)
{
    isim__ynode **items = realloc(parent->items, (parent->n + 1) * sizeof *items);
    if (!items)
        return oom(L);
    parent->items = items;
    if (parent->kind == ISIM__YMAP) {
        isim__ynode **keys = realloc(parent->keys, (parent->n + 1) * sizeof *keys);
        if (!keys)
            return oom(L);
        parent->keys = keys;
        parent->keys[parent->n] = key;
    }
    parent->items[parent->n] = val;
    parent->n++;
    return ISIM_OK;
}

/* Specifications nest a few levels; a limit keeps hostile input from exhausting the stack. */
#define MAX_DEPTH 32

static isim_status node_from_event(loader *L, yaml_event_t *ev, int depth, isim__ynode **out);

/* Reads the children of a mapping or sequence until its end event. */
static isim_status read_children(loader *L, isim__ynode *parent, int depth)
{
    for (;;) {
        yaml_event_t ev;
        isim_status st = next(L, &ev);
        if (st)
            return st;
        if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return ISIM_OK;
        }
        isim__ynode *key = NULL;
        if (parent->kind == ISIM__YMAP) {
            if (ev.type != YAML_SCALAR_EVENT) {
                st = isim__fail(L->err, ISIM_EPARSE, L->file, (int)ev.start_mark.line + 1,
                                (int)ev.start_mark.column + 1, "a key must be a plain word");
                yaml_event_delete(&ev);
                return st;
            }
            st = node_from_event(L, &ev, depth, &key);
            yaml_event_delete(&ev);
            if (st)
                return st;
            for (size_t i = 0; i < parent->n; i++) {
                if (strcmp(parent->keys[i]->text, key->text) == 0) {
                    st = isim__fail(L->err, ISIM_ESCHEMA, L->file, key->line, key->column,
                                    "duplicate key '%s' (first at line %d)", key->text,
                                    parent->keys[i]->line);
                    isim__ynode_free(key);
                    return st;
                }
            }
            st = next(L, &ev);
            if (st) {
                isim__ynode_free(key);
                return st;
            }
        }
        isim__ynode *val = NULL;
        st = node_from_event(L, &ev, depth, &val);
        yaml_event_delete(&ev);
        if (!st)
            st = append(L, parent, key, val);
        if (st) {
            isim__ynode_free(key);
            isim__ynode_free(val);
            return st;
        }
    }
}

/* Builds the node that starts with ev (a scalar, mapping-start or sequence-start). */
static isim_status node_from_event(loader *L, yaml_event_t *ev, int depth, isim__ynode **out)
{
    int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
    if (ev->type == YAML_ALIAS_EVENT)
        return isim__fail(L->err, ISIM_EPARSE, L->file, line, col,
                          "aliases are not supported; write the value out");
    const yaml_char_t *tag = ev->type == YAML_SCALAR_EVENT ? ev->data.scalar.tag
                             : ev->type == YAML_MAPPING_START_EVENT
                                 ? ev->data.mapping_start.tag
                                 : ev->type == YAML_SEQUENCE_START_EVENT
                                     ? ev->data.sequence_start.tag
                                     : NULL;
    if (tag)
        return isim__fail(L->err, ISIM_EPARSE, L->file, line, col,
                          "tags are not supported ('%s')", (const char *)tag);
    if (depth >= MAX_DEPTH && ev->type != YAML_SCALAR_EVENT)
        return isim__fail(L->err, ISIM_EPARSE, L->file, line, col,
                          "nesting deeper than %d levels", MAX_DEPTH);
    isim__ynode *n = calloc(1, sizeof *n);
    if (!n)
        return oom(L);
    n->line = line;
    n->column = col;
    isim_status st = ISIM_OK;
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        n->kind = ISIM__YSCALAR;
        n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        n->text = malloc(ev->data.scalar.length + 1);
        if (!n->text) {
            st = oom(L);
            break;
        }
        memcpy(n->text, ev->data.scalar.value, ev->data.scalar.length);
        n->text[ev->data.scalar.length] = '\0';
        if (strlen(n->text) != ev->data.scalar.length)
            st = isim__fail(L->err, ISIM_EPARSE, L->file, line, col,
                            "a value holds a NUL character");
        break;
    case YAML_MAPPING_START_EVENT:
        n->kind = ISIM__YMAP;
        st = read_children(L, n, depth + 1);
        break;
    case YAML_SEQUENCE_START_EVENT:
        n->kind = ISIM__YSEQ;
        st = read_children(L, n, depth + 1);
        break;
    default:
        st = isim__fail(L->err, ISIM_EPARSE, L->file, line, col, "unexpected YAML structure");
        break;
    }
    if (st) {
        isim__ynode_free(n);
        return st;
    }
    *out = n;
    return ISIM_OK;
}

isim_status isim__yaml_load(const char *path, isim__ynode **root, isim_error *err)
{
    *root = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return isim__fail(err, ISIM_EIO, path, 0, 0, "cannot open: %s", strerror(errno));
    loader L = {.file = path, .err = err};
    if (!yaml_parser_initialize(&L.parser)) {
        fclose(f);
        return isim__fail(err, ISIM_ENOMEM, path, 0, 0, "out of memory");
    }
    yaml_parser_set_input_file(&L.parser, f);

    isim__ynode *doc = NULL;
    isim_status st = ISIM_OK;
    bool done = false;
    while (!st && !done) {
        yaml_event_t ev;
        st = next(&L, &ev);
        if (st)
            break;
        switch (ev.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            break;
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        default:
            if (doc) {
                st = isim__fail(err, ISIM_EPARSE, path, (int)ev.start_mark.line + 1,
                                (int)ev.start_mark.column + 1,
                                "more than one YAML document in the file");
                break;
            }
            st = node_from_event(&L, &ev, 0, &doc);
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&L.parser);
    fclose(f);
    if (!st && !doc)
        st = isim__fail(err, ISIM_ESCHEMA, path, 1, 1, "the file is empty");
    if (!st && doc->kind != ISIM__YMAP)
        st = isim__fail(err, ISIM_ESCHEMA, path, doc->line, doc->column,
                        "the document must be a mapping of keys to values");
    if (st) {
        isim__ynode_free(doc);
        return st;
    }
    *root = doc;
    return ISIM_OK;
}
