/* Shared by the report writers: a rounded JSON number (null when not finite) and the
 * terms of a step in milliseconds. */
#ifndef ISIM_REPORTS_INTERNAL_H
#define ISIM_REPORTS_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "planner/planner.h"
#include "sim/sim.h"

void isim__json_num(cJSON *o, const char *key, double v);
/* {arithmetic, hbm, network, fixed, total, binding} */
cJSON *isim__json_terms_ms(const isim_terms *t);
/* The plan document of isim_report_plan_json as a cJSON object (NULL when out of
 * memory). */
cJSON *isim__plan_json_object(const isim_plan_request *r, const isim_plan *p, bool timing);
/* Runs gnuplot (a program, Debian's gnuplot-nox) on `body` to draw path, a .png or .svg
 * of width x height pixels: the terminal and output are set here, the image is written
 * beside path and renamed over it only when complete. */
isim_status isim__gnuplot(const char *path, int width, int height, const char *body,
                          isim_error *err);
/* Closes f, written as path, after flushing it to the disk: an error on the way (a full
 * disk, a file size limit) fails with the system's reason. */
isim_status isim__close_written(FILE *f, const char *path, isim_error *err);
/* Fills err with an I/O error; returns ISIM_EIO. */
isim_status isim__gnuplot_fail(isim_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Writes s as an inert gnuplot string literal, the one way any text reaches gnuplot, in a
 * command (title, label, key, output) or a data block's text column alike: double quotes,
 * with '"', '`' and '\' written as escapes, a line break as "\n" (the label's line break) and
 * every other control character as a space. Nothing can end the string, the command or the
 * data block, or make gnuplot run a program ('!', `...`, system()). Single quotes would need
 * fewer escapes, but gnuplot cannot read a single-quoted string that begins with a quote. */
void isim__gp_string(FILE *f, const char *s);

/* Four significant digits for people: whole numbers from 1000 up (no exponent below
 * 10^9), '-' for no value. Returns buf. */
const char *isim__fig(char *buf, size_t n, double v);

#endif
