/* The catalog: specification files under a data directory, found by id (file stem). */
#include "sim/internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void isim_ids_free(char **ids)
{
    if (!ids)
        return;
    for (char **p = ids; *p; p++)
        free(*p);
    free(ids);
}

isim_status isim_catalog_list(const char *dir, const char *sub, char ***out, isim_error *err)
{
    *out = NULL;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    DIR *d = opendir(path);
    if (!d)
        return isim__fail(err, ISIM_EIO, path, 0, 0, "cannot open directory: %s",
                          strerror(errno));
    size_t n = 0, cap = 16;
    char **ids = calloc(cap + 1, sizeof *ids);
    isim_status st = ids ? ISIM_OK : ISIM_ENOMEM;
    struct dirent *e;
    while (!st && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= 5 || strcmp(e->d_name + len - 5, ".yaml") != 0 || e->d_name[0] == '.')
            continue;
        if (n == cap) {
            char **grown = realloc(ids, (2 * cap + 1) * sizeof *ids);
            if (!grown) {
                st = ISIM_ENOMEM;
                break;
            }
            ids = grown;
            cap *= 2;
        }
        if (!(ids[n] = isim__file_stem(e->d_name)))
            st = ISIM_ENOMEM;
        else
            ids[++n] = NULL;
    }
    closedir(d);
    if (st) {
        isim_ids_free(ids);
        return isim__fail(err, st, path, 0, 0, "out of memory");
    }
    qsort(ids, n, sizeof *ids, cmp_str);
    *out = ids;
    return ISIM_OK;
}

/* Ids are file stems: letters, digits, '.', '_' and '-' only, so an id cannot leave its
 * directory. */
static bool valid_id(const char *id)
{
    if (!id[0] || id[0] == '.')
        return false;
    for (const char *c = id; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
              (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-'))
            return false;
    return true;
}

static isim_status find(const char *dir, const char *sub, const char *what, const char *id,
                        char *path, size_t n, isim_error *err)
{
    if (!valid_id(id))
        return isim__fail(err, ISIM_ENOTFOUND, "", 0, 0, "invalid %s id '%s'", what, id);
    snprintf(path, n, "%s/%s/%s.yaml", dir, sub, id);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return isim__fail(err, ISIM_ENOTFOUND, "", 0, 0, "unknown %s '%s' (no %s/%s.yaml in %s)",
                          what, id, sub, id, dir);
    return ISIM_OK;
}

isim_status isim_catalog_model(const char *dir, const char *id, isim_model **out,
                               isim_error *err)
{
    char path[1024];
    *out = NULL;
    isim_status st = find(dir, "models", "model", id, path, sizeof path, err);
    return st ? st : isim_model_load(path, out, err);
}

isim_status isim_catalog_hw(const char *dir, const char *id, isim_hw **out, isim_error *err)
{
    char path[1024];
    *out = NULL;
    isim_status st = find(dir, "hw-profiles", "hardware", id, path, sizeof path, err);
    return st ? st : isim_hw_load(path, out, err);
}
