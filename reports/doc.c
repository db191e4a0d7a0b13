/* A small document model for reports: headings, paragraphs, tables, figures and folded
 * sections, written once and rendered to HTML (self-contained, figures linked beside it)
 * and to Markdown. Text is plain; each renderer escapes it. */
#include "reports/doc.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef enum { H1, H2, H3, PARA, NOTE, TABLE, FIGURE, FOLD_BEGIN, FOLD_END } kind;

typedef struct {
    kind k;
    char *text; /* heading, paragraph, caption, fold summary */
    char *file; /* figure: base name under figures/ (without extension) */
    size_t n_cols, n_rows;
    char **cells; /* table: header row then rows, n_cols each */
    bool mark;    /* table: the first column of rows starting with "=>" is emphasised */
} block;

struct isim_doc {
    block *b;
    size_t n, cap;
    bool oom;
};

isim_doc *isim_doc_new(void)
{
    return calloc(1, sizeof(isim_doc));
}

void isim_doc_free(isim_doc *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->b[i].text);
        free(d->b[i].file);
        for (size_t c = 0; d->b[i].cells && c < (d->b[i].n_rows + 1) * d->b[i].n_cols; c++)
            free(d->b[i].cells[c]);
        free(d->b[i].cells);
    }
    free(d->b);
    free(d);
}

bool isim_doc_failed(const isim_doc *d)
{
    return d->oom;
}

static block *add(isim_doc *d, kind k)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 32;
        block *b = realloc(d->b, cap * sizeof *b);
        if (!b) {
            d->oom = true;
            return NULL;
        }
        d->b = b;
        d->cap = cap;
    }
    block *x = &d->b[d->n++];
    memset(x, 0, sizeof *x);
    x->k = k;
    return x;
}

static char *vformat(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static char *vformat(const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s)
        vsnprintf(s, (size_t)n + 1, fmt, again);
    va_end(again);
    return s;
}

static void text_block(isim_doc *d, kind k, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void text_block(isim_doc *d, kind k, const char *fmt, va_list ap)
{
    block *b = add(d, k);
    if (b && !(b->text = vformat(fmt, ap)))
        d->oom = true;
}

void isim_doc_oom(isim_doc *d)
{
    d->oom = true;
}

char *isim_doc_format(isim_doc *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    if (!s)
        d->oom = true;
    return s;
}

#define TEXT_FN(name, k)                                                                           \
    void name(isim_doc *d, const char *fmt, ...)                                                   \
    {                                                                                              \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        text_block(d, k, fmt, ap);                                                                 \
        va_end(ap);                                                                                \
    }
TEXT_FN(isim_doc_h1, H1)
TEXT_FN(isim_doc_h2, H2)
TEXT_FN(isim_doc_h3, H3)
TEXT_FN(isim_doc_p, PARA)
TEXT_FN(isim_doc_note, NOTE)
TEXT_FN(isim_doc_fold, FOLD_BEGIN)

void isim_doc_fold_end(isim_doc *d)
{
    add(d, FOLD_END);
}

void isim_doc_figure(isim_doc *d, const char *file, const char *caption)
{
    block *b = add(d, FIGURE);
    if (b && (!(b->file = strdup(file)) || !(b->text = strdup(caption))))
        d->oom = true;
}

void isim_doc_table(isim_doc *d, size_t n_cols, const char *const *header)
{
    block *b = add(d, TABLE);
    if (!b)
        return;
    b->n_cols = n_cols;
    if (!(b->cells = calloc(n_cols, sizeof *b->cells))) {
        d->oom = true;
        return;
    }
    for (size_t c = 0; c < n_cols; c++)
        if (!(b->cells[c] = strdup(header[c])))
            d->oom = true;
}

void isim_doc_row(isim_doc *d, const char *const *cells)
{
    block *b = d->n ? &d->b[d->n - 1] : NULL;
    if (!b || b->k != TABLE || !b->cells)
        return;
    char **grown = realloc(b->cells, (b->n_rows + 2) * b->n_cols * sizeof *grown);
    if (!grown) {
        d->oom = true;
        return;
    }
    b->cells = grown;
    char **row = b->cells + (b->n_rows + 1) * b->n_cols;
    for (size_t c = 0; c < b->n_cols; c++)
        if (!(row[c] = strdup(cells[c] ? cells[c] : "")))
            d->oom = true;
    b->n_rows++;
}

/* ---- HTML -------------------------------------------------------------------------- */

static void html_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

static const char *const STYLE =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1150px;"
    "margin:2em auto;padding:0 1em;color:#222;line-height:1.45}"
    "h1{font-size:1.7em;border-bottom:2px solid #333;padding-bottom:.2em}"
    "h2{margin-top:1.8em;border-bottom:1px solid #bbb}"
    "table{border-collapse:collapse;margin:.8em 0;font-size:.92em}"
    "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}"
    "th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}"
    "tr.mark td{background:#fff6d6;font-weight:600}"
    "figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}"
    "figcaption{font-size:.9em;color:#555}"
    ".note{background:#f6f6f6;border-left:4px solid #999;padding:.5em .8em}"
    "details{margin:.5em 0}summary{cursor:pointer;font-weight:600}";

/* A cell that reads as a number (digits, $ , . % x - +) is right-aligned. */
static bool numeric(const char *s)
{
    if (!*s)
        return false;
    bool digit = false;
    for (; *s; s++) {
        if (*s >= '0' && *s <= '9')
            digit = true;
        else if (!strchr("$,.%x-+ e", *s))
            return false;
    }
    return digit;
}

void isim_doc_html(const isim_doc *d, FILE *f, const char *title)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
          f);
    html_text(f, title);
    fprintf(f, "</title>\n<style>%s</style>\n</head>\n<body>\n", STYLE);
    for (size_t i = 0; i < d->n; i++) {
        const block *b = &d->b[i];
        switch (b->k) {
        case H1:
        case H2:
        case H3: {
            int level = b->k == H1 ? 1 : b->k == H2 ? 2 : 3;
            fprintf(f, "<h%d>", level);
            html_text(f, b->text);
            fprintf(f, "</h%d>\n", level);
            break;
        }
        case PARA:
        case NOTE:
            fputs(b->k == NOTE ? "<p class=\"note\">" : "<p>", f);
            html_text(f, b->text);
            fputs("</p>\n", f);
            break;
        case FIGURE:
            fprintf(f, "<figure><a href=\"figures/%s.svg\"><img src=\"figures/%s.svg\" alt=\"",
                    b->file, b->file);
            html_text(f, b->text);
            fputs("\"></a><figcaption>", f);
            html_text(f, b->text);
            fprintf(f, " (<a href=\"figures/%s.png\">PNG</a>)</figcaption></figure>\n", b->file);
            break;
        case FOLD_BEGIN:
            fputs("<details><summary>", f);
            html_text(f, b->text);
            fputs("</summary>\n", f);
            break;
        case FOLD_END:
            fputs("</details>\n", f);
            break;
        case TABLE:
            fputs("<table>\n<tr>", f);
            for (size_t c = 0; c < b->n_cols; c++) {
                fputs("<th>", f);
                html_text(f, b->cells[c]);
                fputs("</th>", f);
            }
            fputs("</tr>\n", f);
            for (size_t r = 1; r <= b->n_rows; r++) {
                char *const *row = b->cells + r * b->n_cols;
                bool mark = strncmp(row[0], "=> ", 3) == 0;
                fputs(mark ? "<tr class=\"mark\">" : "<tr>", f);
                for (size_t c = 0; c < b->n_cols; c++) {
                    const char *cell = c == 0 && mark ? row[c] + 3 : row[c];
                    fputs(numeric(cell) ? "<td class=\"num\">" : "<td>", f);
                    html_text(f, cell);
                    fputs("</td>", f);
                }
                fputs("</tr>\n", f);
            }
            fputs("</table>\n", f);
            break;
        }
    }
    fputs("</body>\n</html>\n", f);
}

/* ---- Markdown ------------------------------------------------------------------------ */

static void md_text(FILE *f, const char *s, bool cell)
{
    for (; *s; s++) {
        if (*s == '|' && cell)
            fputs("\\|", f);
        else if (*s == '\n' && cell)
            fputc(' ', f);
        else if (strchr("*_`[]<>", *s))
            fprintf(f, "\\%c", *s);
        else
            fputc(*s, f);
    }
}

void isim_doc_markdown(const isim_doc *d, FILE *f)
{
    for (size_t i = 0; i < d->n; i++) {
        const block *b = &d->b[i];
        switch (b->k) {
        case H1:
        case H2:
        case H3:
            fprintf(f, "%s ", b->k == H1 ? "#" : b->k == H2 ? "##" : "###");
            md_text(f, b->text, false);
            fputs("\n\n", f);
            break;
        case PARA:
            md_text(f, b->text, false);
            fputs("\n\n", f);
            break;
        case NOTE:
            fputs("> ", f);
            md_text(f, b->text, false);
            fputs("\n\n", f);
            break;
        case FIGURE:
            fputs("![", f);
            md_text(f, b->text, false);
            fprintf(f, "](figures/%s.png)\n\n*", b->file);
            md_text(f, b->text, false);
            fputs("*\n\n", f);
            break;
        case FOLD_BEGIN:
            fputs("**", f);
            md_text(f, b->text, false);
            fputs("**\n\n", f);
            break;
        case FOLD_END:
            break;
        case TABLE:
            for (size_t r = 0; r <= b->n_rows; r++) {
                char *const *row = b->cells + r * b->n_cols;
                bool mark = r > 0 && strncmp(row[0], "=> ", 3) == 0;
                fputc('|', f);
                for (size_t c = 0; c < b->n_cols; c++) {
                    fputc(' ', f);
                    if (mark && c == 0) {
                        fputs("**", f);
                        md_text(f, row[c] + 3, true);
                        fputs("**", f);
                    } else {
                        md_text(f, row[c], true);
                    }
                    fputs(" |", f);
                }
                fputc('\n', f);
                if (r == 0) {
                    fputc('|', f);
                    for (size_t c = 0; c < b->n_cols; c++)
                        fputs(" --- |", f);
                    fputc('\n', f);
                }
            }
            fputc('\n', f);
            break;
        }
    }
}
