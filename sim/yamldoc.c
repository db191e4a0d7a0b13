/* A YAML file as a small tree of scalars, mappings and sequences with 1-based line and
 * column marks, built from libyaml's event stream. The schema reader (schema.c) walks it;
 * keeping the tree lets every later check point at the right place. */
#include "sim/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
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
    const unsigned char *text; /* the whole file */
    size_t len;
    isim_error *err;
} loader;

static isim_status oom(loader *L)
{
    return isim__fail(L->err, ISIM_ENOMEM, L->file, 0, 0, "out of memory");
}

static isim_status syntax(loader *L)
{
    yaml_parser_t *p = &L->parser;
    if (p->error == YAML_READER_ERROR) {
        /* bytes that are not YAML text: libyaml gives their offset alone; its line and column
         * (in characters, as libyaml counts them) are counted here */
        int line = 1, col = 1;
        for (size_t i = 0; i < p->problem_offset && i < L->len; i++) {
            if (L->text[i] == '\n') {
                line++;
                col = 1;
            } else if ((L->text[i] & 0xC0) != 0x80) {
                col++;
            }
        }
        return isim__fail(L->err, ISIM_EPARSE, L->file, line, col, "yaml syntax error: %s",
                          p->problem ? p->problem : "unreadable input");
    }
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

/* Grows parent's arrays to hold at least n + 1 entries, doubling (linear in the entries). */
static isim_status grow(loader *L, isim__ynode *parent, size_t *cap)
{
    if (parent->n < *cap)
        return ISIM_OK;
    size_t want = *cap ? 2 * *cap : 8;
    isim__ynode **items = realloc(parent->items, want * sizeof *items);
    if (!items)
        return oom(L);
    parent->items = items;
    if (parent->kind == ISIM__YMAP) {
        isim__ynode **keys = realloc(parent->keys, want * sizeof *keys);
        if (!keys)
            return oom(L);
        parent->keys = keys;
    }
    *cap = want;
    return ISIM_OK;
}

/* The keys of one mapping as an open-addressed hash set of indexes into parent->keys, so
 * that finding a duplicate costs the same for the thousandth key as for the first. Its
 * size is a power of two kept at least twice the key count. */
typedef struct {
    size_t *slot; /* index + 1; 0 = empty */
    size_t size;
} keyset;

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

/* Where key lives in the set, or the empty slot where it would go. */
static size_t *keyset_find(const keyset *k, isim__ynode *const *keys, const char *key)
{
    size_t i = hash(key) & (k->size - 1);
    while (k->slot[i] && strcmp(keys[k->slot[i] - 1]->text, key) != 0)
        i = (i + 1) & (k->size - 1);
    return &k->slot[i];
}

/* Makes room for one more key: rehashes into a set twice the size when half full. */
static isim_status keyset_reserve(loader *L, keyset *k, isim__ynode *const *keys, size_t n)
{
    if (2 * (n + 1) <= k->size)
        return ISIM_OK;
    keyset bigger = {.size = k->size ? 2 * k->size : 16};
    bigger.slot = calloc(bigger.size, sizeof *bigger.slot);
    if (!bigger.slot)
        return oom(L);
    for (size_t i = 0; i < n; i++)
        *keyset_find(&bigger, keys, keys[i]->text) = i + 1;
    free(k->slot);
    *k = bigger;
    return ISIM_OK;
}

static isim_status node_from_event(loader *L, yaml_event_t *ev, int depth, isim__ynode **out);

/* Reads a mapping key: a scalar, not seen before in this mapping, within the key limit. */
static isim_status read_key(loader *L, isim__ynode *parent, keyset *seen, yaml_event_t *ev,
                            int depth, isim__ynode **out)
{
    int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
    if (ev->type != YAML_SCALAR_EVENT)
        return isim__fail(L->err, ISIM_EPARSE, L->file, line, col, "a key must be a plain word");
    if (parent->n >= ISIM_YAML_MAX_KEYS)
        return isim__fail(L->err, ISIM_ESCHEMA, L->file, line, col,
                          "more than %d keys in one mapping", ISIM_YAML_MAX_KEYS);
    if (ev->data.scalar.length > ISIM_MAX_NAME)
        return isim__fail(L->err, ISIM_ESCHEMA, L->file, line, col, "a key longer than %d bytes",
                          ISIM_MAX_NAME);
    isim__ynode *key = NULL;
    isim_status st = node_from_event(L, ev, depth, &key);
    if (!st)
        st = keyset_reserve(L, seen, parent->keys, parent->n);
    size_t *slot = st ? NULL : keyset_find(seen, parent->keys, key->text);
    if (slot && *slot)
        st = isim__fail(L->err, ISIM_ESCHEMA, L->file, key->line, key->column,
                        "duplicate key '%s' (first at line %d)", key->text,
                        parent->keys[*slot - 1]->line);
    else if (slot)
        *slot = parent->n + 1; /* the index the key takes when appended */
    if (st) {
        isim__ynode_free(key);
        return st;
    }
    *out = key;
    return ISIM_OK;
}

/* Reads the children of a mapping or sequence until its end event. */
static isim_status read_children(loader *L, isim__ynode *parent, int depth)
{
    keyset seen = {0};
    size_t cap = 0;
    isim_status st = ISIM_OK;
    while (!st) {
        yaml_event_t ev;
        st = next(L, &ev);
        if (st)
            break;
        if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        isim__ynode *key = NULL, *val = NULL;
        if (parent->kind == ISIM__YMAP) {
            st = read_key(L, parent, &seen, &ev, depth, &key);
            yaml_event_delete(&ev);
            if (!st)
                st = next(L, &ev);
            if (st) {
                isim__ynode_free(key);
                break;
            }
        } else if (parent->n >= ISIM_YAML_MAX_ITEMS) {
            st = isim__fail(L->err, ISIM_ESCHEMA, L->file, (int)ev.start_mark.line + 1,
                            (int)ev.start_mark.column + 1, "more than %d items in one list",
                            ISIM_YAML_MAX_ITEMS);
            yaml_event_delete(&ev);
            break;
        }
        st = node_from_event(L, &ev, depth, &val);
        yaml_event_delete(&ev);
        if (!st)
            st = grow(L, parent, &cap);
        if (st) {
            isim__ynode_free(key);
            isim__ynode_free(val);
            break;
        }
        if (key)
            parent->keys[parent->n] = key;
        parent->items[parent->n++] = val;
    }
    free(seen.slot);
    return st;
}

/* Refuses a scalar's control characters (below 0x20, and 0x7f): read from a file they could
 * end a line of a script or a data file that the text is later written into. A block
 * scalar (| or >) may hold line breaks, its own way of spanning lines. */
static isim_status check_text(loader *L, const yaml_event_t *ev, int line, int col)
{
    const unsigned char *v = ev->data.scalar.value;
    bool block = ev->data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
                 ev->data.scalar.style == YAML_FOLDED_SCALAR_STYLE;
    if (ev->data.scalar.length > ISIM_YAML_MAX_SCALAR)
        return isim__fail(L->err, ISIM_ESCHEMA, L->file, line, col, "a value longer than %d bytes",
                          ISIM_YAML_MAX_SCALAR);
    for (size_t i = 0; i < ev->data.scalar.length; i++) {
        if (v[i] == '\n' && block)
            continue;
        if (v[i] == 0)
            return isim__fail(L->err, ISIM_EPARSE, L->file, line, col,
                              "a value holds a NUL character");
        if (v[i] < 0x20 || v[i] == 0x7f)
            return isim__fail(L->err, ISIM_EPARSE, L->file, line, col,
                              "a value holds control character 0x%02x (only a | or > block "
                              "may span lines)",
                              v[i]);
    }
    return ISIM_OK;
}

/* Builds the node that starts with ev (a scalar, mapping-start or sequence-start). */
static isim_status node_from_event(loader *L, yaml_event_t *ev, int depth, isim__ynode **out)
{
    int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
    if (ev->type == YAML_ALIAS_EVENT)
        return isim__fail(L->err, ISIM_EPARSE, L->file, line, col,
                          "aliases are not supported; write the value out");
    const yaml_char_t *tag = ev->type == YAML_SCALAR_EVENT           ? ev->data.scalar.tag
                             : ev->type == YAML_MAPPING_START_EVENT  ? ev->data.mapping_start.tag
                             : ev->type == YAML_SEQUENCE_START_EVENT ? ev->data.sequence_start.tag
                                                                     : NULL;
    if (tag)
        return isim__fail(L->err, ISIM_EPARSE, L->file, line, col, "tags are not supported ('%s')",
                          (const char *)tag);
    if (depth >= ISIM_YAML_MAX_DEPTH && ev->type != YAML_SCALAR_EVENT)
        return isim__fail(L->err, ISIM_EPARSE, L->file, line, col, "nesting deeper than %d levels",
                          ISIM_YAML_MAX_DEPTH);
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
        st = check_text(L, ev, line, col);
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

/* Reads the whole of a regular file of at most ISIM_YAML_MAX_BYTES into *buf. Opened without
 * blocking, so that a FIFO or a device named as a specification is refused, not waited on. */
static isim_status read_file(const char *path, unsigned char **buf, size_t *len, isim_error *err)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return isim__fail(err, ISIM_EIO, path, 0, 0, "cannot open: %s", strerror(errno));
    struct stat sb;
    isim_status st = ISIM_OK;
    if (fstat(fd, &sb) != 0)
        st = isim__fail(err, ISIM_EIO, path, 0, 0, "cannot read: %s", strerror(errno));
    else if (S_ISDIR(sb.st_mode))
        st = isim__fail(err, ISIM_EIO, path, 0, 0, "is a directory, not a YAML file");
    else if (!S_ISREG(sb.st_mode))
        st = isim__fail(err, ISIM_EIO, path, 0, 0, "is not a regular file");
    else if (sb.st_size > ISIM_YAML_MAX_BYTES)
        st = isim__fail(err, ISIM_EIO, path, 0, 0,
                        "%lld bytes, more than the %d a YAML file may hold", (long long)sb.st_size,
                        ISIM_YAML_MAX_BYTES);
    /* one byte more than its size, to see a file that grew since fstat */
    size_t room = st ? 0 : (size_t)sb.st_size + 1;
    unsigned char *b = st ? NULL : malloc(room);
    if (!st && !b)
        st = isim__fail(err, ISIM_ENOMEM, path, 0, 0, "out of memory");
    size_t n = 0;
    while (!st && n < room) {
        ssize_t r = read(fd, b + n, room - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            st = isim__fail(err, ISIM_EIO, path, 0, 0, "cannot read: %s", strerror(errno));
        else if (r == 0)
            break;
        else
            n += (size_t)r;
    }
    if (!st && n == room)
        st = isim__fail(err, ISIM_EIO, path, 0, 0, "changed while it was read");
    close(fd);
    if (st) {
        free(b);
        return st;
    }
    *buf = b;
    *len = n;
    return ISIM_OK;
}

isim_status isim__yaml_load(const char *path, isim__ynode **root, isim_error *err)
{
    *root = NULL;
    unsigned char *text = NULL;
    size_t len = 0;
    isim_status rs = read_file(path, &text, &len, err);
    if (rs)
        return rs;
    loader L = {.file = path, .text = text, .len = len, .err = err};
    if (!yaml_parser_initialize(&L.parser)) {
        free(text);
        return isim__fail(err, ISIM_ENOMEM, path, 0, 0, "out of memory");
    }
    yaml_parser_set_input_string(&L.parser, text, len);

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
    free(text);
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
