/* Internal to reports/: a document written once (headings, paragraphs, tables, figures,
 * folded sections) and rendered to self-contained HTML and to Markdown. Functions that
 * add to a document never fail loudly: isim_doc_failed() tells whether memory ran out. */
#ifndef ISIM_REPORTS_DOC_H
#define ISIM_REPORTS_DOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct isim_doc isim_doc;

isim_doc *isim_doc_new(void); /* NULL when out of memory */
void isim_doc_free(isim_doc *d);
bool isim_doc_failed(const isim_doc *d);
/* Marks the document failed: memory ran out in what its writer made for it. */
void isim_doc_oom(isim_doc *d);

void isim_doc_h1(isim_doc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void isim_doc_h2(isim_doc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void isim_doc_h3(isim_doc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void isim_doc_p(isim_doc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A paragraph set apart: a caveat, a validation status. */
void isim_doc_note(isim_doc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A section folded away in HTML (<details>) until isim_doc_fold_end. */
void isim_doc_fold(isim_doc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void isim_doc_fold_end(isim_doc *d);
/* figures/<file>.svg (HTML) and figures/<file>.png (Markdown, and linked from HTML). */
void isim_doc_figure(isim_doc *d, const char *file, const char *caption);
/* A table: the header, then rows added with isim_doc_row (n_cols cells each; a row whose
 * first cell starts with "=> " is emphasised, the marker dropped). */
void isim_doc_table(isim_doc *d, size_t n_cols, const char *const *header);
/* printf into a new string as long as it needs (the caller frees it); NULL, and the
 * document failed, when out of memory. */
char *isim_doc_format(isim_doc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void isim_doc_row(isim_doc *d, const char *const *cells);

void isim_doc_html(const isim_doc *d, FILE *f, const char *title);
void isim_doc_markdown(const isim_doc *d, FILE *f);

#endif
