/* Shared by the report writers: JSON documents built whole or not at all, rounded
 * numbers, the terms of a step in milliseconds, and gnuplot. */
#ifndef ISIM_REPORTS_INTERNAL_H
#define ISIM_REPORTS_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "planner/planner.h"
#include "sim/serve.h"
#include "sim/sim.h"

/* A JSON document being built. cJSON leaves out an item it cannot allocate and carries on,
 * so every addition goes through these helpers, which remember the loss: isim__json_finish
 * then gives no document rather than one missing a part. A NULL parent (its own creation
 * failed, already remembered) takes nothing; key NULL appends to an array. */
typedef struct isim__json {
    bool lost;
} isim__json;
cJSON *isim__json_new(isim__json *j); /* a free-standing object */
void isim__json_item(isim__json *j, cJSON *parent, const char *key, cJSON *item); /* takes item */
cJSON *isim__json_obj(isim__json *j, cJSON *parent, const char *key);
cJSON *isim__json_arr(isim__json *j, cJSON *parent, const char *key);
void isim__json_str(isim__json *j, cJSON *o, const char *key, const char *s);
void isim__json_null(isim__json *j, cJSON *o, const char *key);
void isim__json_bool(isim__json *j, cJSON *o, const char *key, bool b);
/* A rounded number, or null for a value that is not finite. */
void isim__json_num(isim__json *j, cJSON *o, const char *key, double v);
/* The text of root (which it deletes); NULL when anything was lost or out of memory. */
char *isim__json_finish(isim__json *j, cJSON *root);
/* {arithmetic, hbm, network, fixed, total, binding} */
cJSON *isim__json_terms_ms(isim__json *j, const isim_terms *t);
/* A simulation under traffic (sim/serve.h): the traffic, the scheduler's limits, the
 * percentiles, and with `requests` every request. */
cJSON *isim__serve_json(isim__json *j, const isim_traffic *t, const isim_serve_result *s,
                        bool requests);
/* A CSV field: quoted when it holds a comma, a quote or a line break. */
void isim__csv_field(FILE *out, const char *s);
/* The plan document of isim_report_plan_json as a cJSON object. */
cJSON *isim__plan_json_object(isim__json *j, const isim_plan_request *r, const isim_plan *p,
                              bool timing);
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
