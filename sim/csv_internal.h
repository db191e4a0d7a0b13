/* The library's one CSV reader, for the files it takes from users (measured serving data,
 * sim/dataset.c; traces of requests, sim/trace.c). libcsv in strict mode is fed one byte at
 * a time so that every field's line and column are known; the file must be UTF-8 text
 * without control characters (tab, CR and LF aside), a byte-order mark is skipped, lines
 * end in LF, CRLF or CR, and each limit is refused with its value. The header names the
 * columns, each once; those a reader asks for must be there, in any order, and the others
 * are read and ignored. Every refusal is `file:line:column: message` (docs/validation.md,
 * "The file"). Internal to sim/. */
#ifndef ISIM_CSV_INTERNAL_H
#define ISIM_CSV_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/sim.h"

#define ISIM__CSV_MAX_COLUMNS 64 /* columns a reader asks for */

/* A place in the file: its line and the column in characters, both from 1. */
typedef struct isim__csv_pos {
    long line, col;
} isim__csv_pos;

typedef struct isim__csv_field {
    size_t off;       /* of its text in the record's */
    isim__csv_pos at; /* where it begins: its first character, or its opening quote */
} isim__csv_field;

/* The fields of one record, their text NUL-terminated one after another. */
typedef struct isim__csv_record {
    isim__csv_field *f;
    size_t n, cap;
    char *text;
    size_t len, size;
} isim__csv_record;

typedef struct isim__csv isim__csv;

/* What a reader reads: its columns, its limits, and what it does with each row. */
typedef struct isim__csv_spec {
    const char *const *columns; /* the header names it needs */
    int n_columns;              /* at most ISIM__CSV_MAX_COLUMNS */
    long long max_bytes;        /* of the file */
    size_t max_fields;          /* in a record */
    size_t max_field_bytes;     /* of a field as written, quotes included */
    size_t max_rows;            /* records after the header */
    /* each record after the header, once it has every field of the header; a refusal is
     * made with isim__csv_fail or isim__csv_fail_col */
    void (*row)(isim__csv *c, void *ctx);
    void *ctx;
} isim__csv_spec;

/* Reads the CSV file at path: a regular file or a pipe (a FIFO without a writer reads as
 * empty). *digest (when not NULL) gets the FNV-1a 64 of its bytes as read. An empty file,
 * one of a header alone, or any refusal of a row returns its status with err set. */
isim_status isim__csv_read(const char *path, const isim__csv_spec *spec, uint64_t *digest,
                           isim_error *err);

/* The row's text in spec column k, and where that field begins. */
const char *isim__csv_get(const isim__csv *c, int k);
isim__csv_pos isim__csv_at(const isim__csv *c, int k);
/* Where the row begins: its first field. */
isim__csv_pos isim__csv_row_at(const isim__csv *c);
/* Refuses the file at `at` (the first refusal stands). */
void isim__csv_fail(isim__csv *c, isim_status code, isim__csv_pos at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* ISIM_ESCHEMA at spec column k's field: "column 'NAME': message". */
void isim__csv_fail_col(isim__csv *c, int k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Whether the reading has been refused. */
bool isim__csv_failed(const isim__csv *c);

/* A value for a message: quoted, its first 40 bytes (whole characters) and "..." when
 * longer; buf of at least 64 bytes. */
const char *isim__csv_shown(const char *s, char *buf, size_t n);
/* s, the text of spec column k or a part of it, as a whole number written with digits only,
 * in [lo, hi] (hi at most 1e17); false with the refusal made, its message prefixed by
 * `what`. */
bool isim__csv_whole(isim__csv *c, int k, const char *what, const char *s, long long lo,
                     long long hi, long long *out);
/* s as a decimal number: digits, an optional fraction and an optional exponent; no sign,
 * hex, inf or nan. False when it is not one. */
bool isim__csv_decimal(const char *s, double *out);
/* p grown to hold `need` items of `size` bytes, doubling; NULL when out of memory (p is then
 * unchanged). */
void *isim__csv_grown(void *p, size_t *cap, size_t need, size_t size);

/* FNV-1a 64 of n bytes continued from h (ISIM__FNV_OFFSET to start). */
#define ISIM__FNV_OFFSET 0xcbf29ce484222325ULL
uint64_t isim__fnv1a64(const void *data, size_t n, uint64_t h);

#endif
