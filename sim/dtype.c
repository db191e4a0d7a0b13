/* Precisions: names and bytes per element (one X-macro list in sim.h). */
#include "sim/internal.h"

#include <string.h>

static const struct {
    const char *name;
    double bytes;
} dtypes[] = {
#define ISIM_X(name, str, bytes) {str, bytes},
    ISIM_DTYPE_LIST(ISIM_X)
#undef ISIM_X
};

const char *isim_dtype_name(isim_dtype t)
{
    return (unsigned)t < ISIM_DTYPE_COUNT ? dtypes[t].name : "?";
}

double isim_dtype_bytes(isim_dtype t)
{
    return (unsigned)t < ISIM_DTYPE_COUNT ? dtypes[t].bytes : 0.0;
}

isim_status isim_dtype_parse(const char *s, isim_dtype *out)
{
    for (int i = 0; i < ISIM_DTYPE_COUNT; i++) {
        if (strcmp(s, dtypes[i].name) == 0) {
            *out = (isim_dtype)i;
            return ISIM_OK;
        }
    }
    return ISIM_EINVAL;
}
