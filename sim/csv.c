/* The library's one CSV reader (sim/csv_internal.h): libcsv, strict, fed byte by byte. */
#include "sim/csv_internal.h"
#include "sim/internal.h"

#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

uint64_t isim__fnv1a64(const void *data, size_t n, uint64_t h)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* libcsv is fed one byte at a time so that each field's place is known: the state here
 * follows libcsv's own (no field begun, between fields, in one). */
enum { AT_RECORD, AT_FIELD, IN_FIELD };

struct isim__csv {
    const char *path;
    const isim__csv_spec *spec;
    isim_error *err;
    isim_status st;
    isim__csv_pos at;        /* of the byte being read */
    bool after_cr;           /* the byte before was a CR: an LF after it ends no other line */
    int utf8_left;           /* continuation bytes the character under way still needs */
    isim__csv_pos utf8_at;   /* where that character began */
    int state;               /* AT_RECORD, AT_FIELD, IN_FIELD */
    isim__csv_pos field_at;  /* where the field under way began */
    bool field_quoted;       /* it opened with a quote */
    size_t field_bytes;      /* its bytes so far, as written */
    size_t records;          /* records read, the header being the first */
    isim__csv_record rec;    /* the record under way */
    isim__csv_record header; /* kept for the names of the columns a short record lacks */
    int col[ISIM__CSV_MAX_COLUMNS]; /* field index of each spec column */
};

void isim__csv_fail(isim__csv *c, isim_status code, isim__csv_pos at, const char *fmt, ...)
{
    if (c->st)
        return;
    c->st = code;
    if (!c->err)
        return;
    char msg[sizeof c->err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    isim__fail(c->err, code, c->path, (int)at.line, (int)at.col, "%s", msg);
}

bool isim__csv_failed(const isim__csv *c)
{
    return c->st != ISIM_OK;
}

const char *isim__csv_get(const isim__csv *c, int k)
{
    return c->rec.text + c->rec.f[c->col[k]].off;
}

isim__csv_pos isim__csv_at(const isim__csv *c, int k)
{
    return c->rec.f[c->col[k]].at;
}

isim__csv_pos isim__csv_row_at(const isim__csv *c)
{
    return c->rec.f[0].at;
}

void isim__csv_fail_col(isim__csv *c, int k, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    isim__csv_fail(c, ISIM_ESCHEMA, isim__csv_at(c, k), "column '%s': %s", c->spec->columns[k],
                   msg);
}

const char *isim__csv_shown(const char *s, char *buf, size_t n)
{
    size_t k = strlen(s);
    if (k <= 40) {
        snprintf(buf, n, "'%s'", s);
        return buf;
    }
    k = 40;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
        k--;
    snprintf(buf, n, "'%.*s...'", (int)k, s);
    return buf;
}

bool isim__csv_whole(isim__csv *c, int k, const char *what, const char *s, long long lo,
                     long long hi, long long *out)
{
    char b[64];
    if (!s[0] || strspn(s, "0123456789") != strlen(s)) {
        isim__csv_fail_col(c, k, "%s%s is not a whole number (digits only)", what,
                           isim__csv_shown(s, b, sizeof b));
        return false;
    }
    long long v = 0;
    for (const char *p = s; *p && v <= hi; p++)
        v = 10 * v + (*p - '0');
    if (v > hi) {
        isim__csv_fail_col(c, k, "%s%s is more than the limit of %lld", what,
                           isim__csv_shown(s, b, sizeof b), hi);
        return false;
    }
    if (v < lo) {
        isim__csv_fail_col(c, k, "%s%s is less than the minimum of %lld", what,
                           isim__csv_shown(s, b, sizeof b), lo);
        return false;
    }
    *out = v;
    return true;
}

bool isim__csv_decimal(const char *s, double *out)
{
    const char *p = s + strspn(s, "0123456789");
    bool digits = p > s;
    if (*p == '.') {
        const char *q = p + 1 + strspn(p + 1, "0123456789");
        digits |= q > p + 1;
        p = q;
    }
    if (digits && (*p == 'e' || *p == 'E')) {
        const char *q = p + 1 + (p[1] == '+' || p[1] == '-');
        size_t n = strspn(q, "0123456789");
        p = n ? q + n : p;
    }
    if (!digits || *p)
        return false;
    *out = strtod(s, NULL);
    return true;
}

void *isim__csv_grown(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return p;
    size_t cap2 = *cap ? *cap : 16;
    while (cap2 < need && cap2 <= SIZE_MAX / 2)
        cap2 *= 2;
    if (cap2 < need || cap2 > SIZE_MAX / size)
        return NULL;
    void *q = realloc(p, cap2 * size);
    if (q)
        *cap = cap2;
    return q;
}

/* ---- records ---------------------------------------------------------------------------- */

static void on_field(void *s, size_t len, void *data)
{
    isim__csv *c = data;
    c->state = AT_FIELD;
    if (c->st)
        return;
    isim__csv_record *r = &c->rec;
    if (r->n == c->spec->max_fields) {
        isim__csv_fail(c, ISIM_ESCHEMA, c->field_at, "more than %zu fields in a record (the limit)",
                       c->spec->max_fields);
        return;
    }
    if (c->records > 0 && r->n == c->header.n) {
        isim__csv_fail(c, ISIM_ESCHEMA, c->field_at, "field %zu where the header has %zu", r->n + 1,
                       c->header.n);
        return;
    }
    isim__csv_field *f = isim__csv_grown(r->f, &r->cap, r->n + 1, sizeof *f);
    if (f)
        r->f = f;
    char *text = f ? isim__csv_grown(r->text, &r->size, r->len + len + 1, 1) : NULL;
    if (!text) {
        isim__csv_fail(c, ISIM_ENOMEM, c->field_at, "out of memory");
        return;
    }
    r->text = text;
    memcpy(r->text + r->len, s, len);
    r->text[r->len + len] = 0;
    r->f[r->n++] = (isim__csv_field){r->len, c->field_at};
    r->len += len + 1;
}

/* The header: every column named once, and those the reader asks for present. */
static void read_header(isim__csv *c)
{
    isim__csv_record *h = &c->rec;
    for (size_t i = 0; i < h->n && !c->st; i++)
        for (size_t k = 0; k < i; k++)
            if (strcmp(h->text + h->f[i].off, h->text + h->f[k].off) == 0) {
                isim__csv_fail(c, ISIM_ESCHEMA, h->f[i].at,
                               "column '%s' given twice in the header (first at %ld:%ld)",
                               h->text + h->f[i].off, h->f[k].at.line, h->f[k].at.col);
                break;
            }
    for (int k = 0; k < c->spec->n_columns && !c->st; k++) {
        c->col[k] = -1;
        for (size_t i = 0; i < h->n; i++)
            if (strcmp(h->text + h->f[i].off, c->spec->columns[k]) == 0)
                c->col[k] = (int)i;
        if (c->col[k] < 0)
            isim__csv_fail(c, ISIM_ESCHEMA, h->f[0].at, "no column '%s' in the header",
                           c->spec->columns[k]);
    }
    isim__csv_record t = c->header;
    c->header = c->rec;
    c->rec = t;
}

static void read_row(isim__csv *c)
{
    if (c->records - 2 == c->spec->max_rows) {
        isim__csv_fail(c, ISIM_ESCHEMA, c->rec.f[0].at, "more than %zu rows (the limit)",
                       c->spec->max_rows);
        return;
    }
    if (c->rec.n < c->header.n) {
        isim__csv_fail(c, ISIM_ESCHEMA, c->at, "%zu fields where the header has %zu: no '%s'",
                       c->rec.n, c->header.n, c->header.text + c->header.f[c->rec.n].off);
        return;
    }
    c->spec->row(c, c->spec->ctx);
}

static void on_record(int term, void *data)
{
    (void)term;
    isim__csv *c = data;
    c->state = AT_RECORD;
    if (!c->st && c->records++ == 0)
        read_header(c);
    else if (!c->st)
        read_row(c);
    c->rec.n = c->rec.len = 0;
}

/* ---- bytes ------------------------------------------------------------------------------ */

/* The file is UTF-8 text: no control characters but tab, CR and LF. */
static bool text_byte(isim__csv *c, unsigned char b)
{
    if (c->utf8_left > 0) {
        if ((b & 0xC0) == 0x80) {
            c->utf8_left--;
            return true;
        }
        isim__csv_fail(c, ISIM_EPARSE, c->at,
                       "byte 0x%02x inside a UTF-8 character: not UTF-8 text", b);
        return false;
    }
    if ((b < 0x20 && b != '\t' && b != '\r' && b != '\n') || b == 0x7f) {
        isim__csv_fail(c, ISIM_EPARSE, c->at, "control character 0x%02x: not CSV text", b);
        return false;
    }
    if (b >= 0xC2 && b <= 0xF4) {
        c->utf8_left = b < 0xE0 ? 1 : b < 0xF0 ? 2 : 3;
        c->utf8_at = c->at;
    } else if (b >= 0x80) {
        isim__csv_fail(c, ISIM_EPARSE, c->at, "byte 0x%02x: not UTF-8 text", b);
        return false;
    }
    return true;
}

/* libcsv in strict mode stops at a quote it cannot place. */
static void quote_error(isim__csv *c, struct csv_parser *p, unsigned char b)
{
    if (csv_error(p) != CSV_EPARSE)
        isim__csv_fail(c, ISIM_ENOMEM, c->at, "out of memory");
    else if (b == '"' && !c->field_quoted)
        isim__csv_fail(c, ISIM_EPARSE, c->at,
                       "a quote inside an unquoted field (quote the field and double the quote)");
    else
        isim__csv_fail(c, ISIM_EPARSE, c->at, "text after the closing quote of a quoted field");
}

static void feed(isim__csv *c, struct csv_parser *p, unsigned char b)
{
    if (!text_byte(c, b))
        return;
    bool blank = b == ' ' || b == '\t' || (c->state == AT_RECORD && (b == '\r' || b == '\n'));
    if (c->state != IN_FIELD && !blank) {
        c->state = IN_FIELD;
        c->field_at = c->at;
        c->field_quoted = b == '"';
        c->field_bytes = 0;
    }
    if (csv_parse(p, &b, 1, on_field, on_record, c) != 1)
        quote_error(c, p, b);
    else if (c->state == IN_FIELD && ++c->field_bytes > c->spec->max_field_bytes)
        isim__csv_fail(c, ISIM_ESCHEMA, c->field_at,
                       c->field_quoted
                           ? "a quoted field of more than %zu bytes (the limit): is its closing "
                             "quote missing?"
                           : "a field of more than %zu bytes (the limit)",
                       c->spec->max_field_bytes);
    if (b == '\r' || (b == '\n' && !c->after_cr)) {
        c->at.line++;
        c->at.col = 1;
    } else if (b != '\n' && (b & 0xC0) != 0x80) {
        c->at.col++;
    }
    c->after_cr = b == '\r';
}

/* Why a file holds no record: nothing, a byte-order mark alone, blank lines. */
static void no_header(isim__csv *c, long long bytes, bool bom)
{
    isim__csv_pos start = {1, 1};
    isim__csv_fail(c, ISIM_ESCHEMA, start, "%s: no header",
                   bytes == 0          ? "empty file"
                   : bom && bytes == 3 ? "only a UTF-8 byte-order mark"
                                       : "only blank lines");
}

/* Opens the file: a regular file, or a pipe (`--dataset <(command)`). Opened without
 * blocking, so that a named FIFO with no writer reads as empty instead of waiting forever;
 * reads then block as usual. */
static isim_status open_file(const char *path, long long max_bytes, FILE **out, isim_error *err)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    int flags = fd < 0 ? -1 : fcntl(fd, F_GETFL);
    FILE *f = flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0 ? NULL : fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return isim__fail(err, ISIM_EIO, path, 0, 0, "cannot open: %s", strerror(e));
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        int e = errno;
        fclose(f);
        return isim__fail(err, ISIM_EIO, path, 0, 0, "cannot read: %s", strerror(e));
    }
    if (S_ISDIR(sb.st_mode)) {
        fclose(f);
        return isim__fail(err, ISIM_EIO, path, 0, 0, "a directory, not a CSV file");
    }
    if (S_ISREG(sb.st_mode) && sb.st_size > max_bytes) {
        fclose(f);
        return isim__fail(err, ISIM_ESCHEMA, path, 0, 0,
                          "%lld bytes, more than the limit of %lld (%d MiB)", (long long)sb.st_size,
                          max_bytes, (int)(max_bytes >> 20));
    }
    *out = f;
    return ISIM_OK;
}

static void parse_stream(FILE *f, isim__csv *c, struct csv_parser *p, uint64_t *digest)
{
    static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};
    unsigned char buf[1 << 16];
    size_t got;
    long long bytes = 0, max = c->spec->max_bytes;
    bool has_bom = false;
    uint64_t h = ISIM__FNV_OFFSET;
    while (!c->st && (got = fread(buf, 1, sizeof buf, f)) > 0) {
        h = isim__fnv1a64(buf, got, h);
        size_t i = 0;
        if (bytes == 0 && got >= 3 && memcmp(buf, bom, 3) == 0)
            i = 3, has_bom = true; /* a byte-order mark: not part of the header */
        if ((bytes += (long long)got) > max)
            isim__csv_fail(c, ISIM_ESCHEMA, c->at, "more than %lld bytes (the limit: %d MiB)", max,
                           (int)(max >> 20));
        for (; i < got && !c->st; i++)
            feed(c, p, buf[i]);
    }
    if (!c->st && ferror(f))
        c->st = isim__fail(c->err, ISIM_EIO, c->path, 0, 0, "read error: %s", strerror(errno));
    if (!c->st && c->utf8_left)
        isim__csv_fail(c, ISIM_EPARSE, c->utf8_at, "the file ends inside a UTF-8 character");
    if (!c->st && csv_fini(p, on_field, on_record, c) != 0)
        isim__csv_fail(c, ISIM_EPARSE, c->field_at,
                       "unterminated quoted field: the quote opened here is never closed");
    if (!c->st && c->records == 0)
        no_header(c, bytes, has_bom);
    if (!c->st && c->records == 1)
        isim__csv_fail(c, ISIM_ESCHEMA, c->header.f[0].at,
                       "no rows: the file holds only its header");
    if (digest)
        *digest = h;
}

isim_status isim__csv_read(const char *path, const isim__csv_spec *spec, uint64_t *digest,
                           isim_error *err)
{
    if (digest)
        *digest = ISIM__FNV_OFFSET;
    FILE *f = NULL;
    isim_status st = open_file(path, spec->max_bytes, &f, err);
    if (st)
        return st;
    isim__csv *c = calloc(1, sizeof *c);
    struct csv_parser p;
    if (!c || csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) {
        free(c);
        fclose(f);
        return isim__fail(err, ISIM_ENOMEM, path, 0, 0, "out of memory");
    }
    *c = (isim__csv){.path = path, .spec = spec, .err = err, .at = {1, 1}};
    parse_stream(f, c, &p, digest);
    csv_free(&p);
    fclose(f);
    st = c->st;
    free(c->rec.f);
    free(c->rec.text);
    free(c->header.f);
    free(c->header.text);
    free(c);
    return st;
}
