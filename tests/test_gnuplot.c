/* Text from data files reaches gnuplot only through isim__gp_string: every byte value and
 * hostile strings in a command and in a data block draw a figure, run nothing, and come
 * out as the same text. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reports/internal.h"

/* Payloads that would create MARK if any of them escaped its string: a line break that
 * closes the data block or the command, then a shell escape, a backquote substitution, a
 * system() call, a line continuation. */
static const char *const HOSTILE[] = {
    "A\" 0\nEOD\n!touch MARK\n$d << EOD\n0 \"A",
    "'\n!touch MARK\n'",
    "x' ; !touch MARK ; print '",
    "\"; !touch MARK; \"",
    "`touch MARK`",
    "$(touch MARK)",
    "'.system('touch MARK').'",
    "\".system(\"touch MARK\").\"",
    "a\\\n!touch MARK",
    "a\\",
    "\\\"",
    "\rEOD\r!touch MARK\r",
    "EOD",
    "@MARK",
};

/* p with every MARK replaced by mark (malloc'd). */
static char *payload(const char *p, const char *mark)
{
    char *out = calloc(1, strlen(p) * strlen(mark) + 1);
    cr_assert(out);
    for (char *o = out; *p;) {
        if (strncmp(p, "MARK", 4) == 0) {
            o = stpcpy(o, mark);
            p += 4;
        } else {
            *o++ = *p++;
        }
    }
    return out;
}

/* Whether every line of s is drawn in svg, each control character as a space. */
static bool drawn(const char *svg, const char *s)
{
    char *copy = strdup(s), *save = NULL;
    cr_assert(copy);
    for (char *c = copy; *c; c++)
        if (*c != '\n' && ((unsigned char)*c < 0x20 || *c == 0x7f))
            *c = ' ';
    bool all = true;
    for (char *line = strtok_r(copy, "\n", &save); line && all; line = strtok_r(NULL, "\n", &save))
        all = strstr(svg, line) != NULL;
    free(copy);
    return all;
}

/* The text gnuplot wrote into an SVG, with XML's entities read back. */
static char *svg_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f);
    char *buf = calloc(1, 1 << 22);
    cr_assert(buf);
    size_t n = fread(buf, 1, (1 << 22) - 1, f);
    fclose(f);
    buf[n] = '\0';
    static const char *const ent[][2] = {
        {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}, {"&amp;", "&"}};
    for (size_t e = 0; e < 5; e++) {
        size_t k = strlen(ent[e][0]);
        for (char *p = buf; (p = strstr(p, ent[e][0]));) {
            p[0] = ent[e][1][0];
            memmove(p + 1, p + k, strlen(p + k) + 1);
            p++;
        }
    }
    return buf;
}

/* Draws a figure whose title, key and data labels are `text`, each payload in a label of
 * its own; asserts gnuplot drew it and ran nothing. Returns the SVG's text. */
static char *draw(const char *text, const char *mark)
{
    char *body = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&body, &size);
    cr_assert(f);
    fputs("set title ", f);
    isim__gp_string(f, text);
    fputs("\n$d << EOD\n", f);
    size_t n = sizeof HOSTILE / sizeof HOSTILE[0];
    for (size_t i = 0; i <= n; i++) {
        char *s = i < n ? payload(HOSTILE[i], mark) : strdup(text);
        fprintf(f, "%zu ", i);
        isim__gp_string(f, s);
        fprintf(f, " %zu\n", i + 1);
        free(s);
    }
    fputs("EOD\nplot $d using 1:3:xtic(2) with points title ", f);
    isim__gp_string(f, text);
    fputc('\n', f);
    cr_assert_eq(fclose(f), 0);
    char dir[] = "/tmp/isim-gp-XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/f.svg", dir);
    isim_error e;
    isim_status st = isim__gnuplot(path, 900, 500, body, &e);
    cr_assert_eq(st, ISIM_OK, "gnuplot failed: %s", e.message);
    struct stat sb;
    cr_assert_neq(stat(mark, &sb), 0, "gnuplot ran a command: %s exists", mark);
    char *svg = svg_text(path);
    remove(path);
    rmdir(dir);
    free(body);
    return svg;
}

/* A path in a new directory where a payload would create its file. */
static void mark_path(char *mark, size_t n)
{
    char dir[] = "/tmp/isim-mark-XXXXXX";
    cr_assert(mkdtemp(dir));
    snprintf(mark, n, "%s/ran", dir);
}

Test(gnuplot, every_byte_value_in_a_command_and_a_data_block_draws_and_runs_nothing)
{
    char text[256], mark[64];
    for (int b = 1; b < 256; b++)
        text[b - 1] = (char)b;
    text[255] = '\0';
    mark_path(mark, sizeof mark);
    char *svg = draw(text, mark);
    /* the printable characters come out as they went in, quotes and backslashes included */
    char printable[96];
    for (int b = 0x20; b < 0x7f; b++)
        printable[b - 0x20] = (char)b;
    printable[0x7f - 0x20] = '\0';
    cr_expect(strstr(svg, printable), "the title lost text: %s", printable);
    free(svg);
}

Test(gnuplot, hostile_strings_are_drawn_as_their_own_text)
{
    char mark[64];
    mark_path(mark, sizeof mark);
    for (size_t i = 0; i < sizeof HOSTILE / sizeof HOSTILE[0]; i++) {
        char *text = payload(HOSTILE[i], mark);
        char *svg = draw(text, mark);
        cr_expect(drawn(svg, text), "payload %zu not drawn as text: %s", i, text);
        free(svg);
        free(text);
    }
}

Test(gnuplot, a_data_label_keeps_its_quotes_backslashes_and_line_breaks)
{
    char mark[64];
    mark_path(mark, sizeof mark);
    char *svg = draw("title", mark);
    /* data labels of draw(): HOSTILE[2], [9] and [10] have no line break */
    char *p2 = payload(HOSTILE[2], mark);
    cr_expect(strstr(svg, p2), "%s", p2);
    cr_expect(strstr(svg, ">a\\<"), "a label ending in a backslash");
    cr_expect(strstr(svg, ">\\\"<"), "a backslash and a quote");
    /* HOSTILE[0]'s line breaks are the label's: each line its own text */
    cr_expect(strstr(svg, ">EOD<"));
    free(p2);
    free(svg);
}
