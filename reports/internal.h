/* Shared by the report writers: a rounded JSON number (null when not finite) and the
 * terms of a step in milliseconds. */
#ifndef ISIM_REPORTS_INTERNAL_H
#define ISIM_REPORTS_INTERNAL_H

#include <cjson/cJSON.h>

#include "sim/sim.h"

void isim__json_num(cJSON *o, const char *key, double v);
/* {arithmetic, hbm, network, fixed, total, binding} */
cJSON *isim__json_terms_ms(const isim_terms *t);

#endif
