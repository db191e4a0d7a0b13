/* The catalog: specification files under a data directory, found by id (file stem). */
#include "sim/internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
        return isim__fail(err, ISIM_EIO, path, 0, 0, "cannot open directory: %s", strerror(errno));
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
    if (!id[0] || id[0] == '.' || strlen(id) > ISIM_MAX_NAME)
        return false;
    for (const char *c = id; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == '-'))
            return false;
    return true;
}

size_t isim_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[128];
    if (lb >= 128 || la >= 128)
        return 1000;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j], sub = prev + (a[i - 1] != b[j - 1]);
            size_t ins = row[j - 1] + 1, del = row[j] + 1;
            row[j] = sub < ins ? (sub < del ? sub : del) : (ins < del ? ins : del);
            prev = cur;
        }
    }
    return row[lb];
}

/* Parts of an id separated by '-' or '.' that also occur in the other id. */
static int shared_parts(const char *a, const char *b)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", a);
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, "-.", &save); t; t = strtok_r(NULL, "-.", &save))
        n += strstr(b, t) != NULL;
    return n;
}

/* "unknown model 'llama-70b' (did you mean 'llama-2-70b' or 'llama-3.1-70b'?)": up to three
 * ids that share parts with the one given, nearest first. */
static isim_status unknown(const char *dir, const char *sub, const char *what, const char *id,
                           isim_error *err)
{
    char **ids = NULL;
    char hint[400] = "";
    if (isim_catalog_list(dir, sub, &ids, NULL) == ISIM_OK) {
        const char *best[3] = {NULL, NULL, NULL};
        long score[3] = {0, 0, 0};
        for (char **p = ids; *p; p++) {
            int parts = shared_parts(id, *p);
            size_t d = isim_edit_distance(id, *p);
            if (parts == 0 && d > 3)
                continue;
            long s = (long)parts * 1000 - (long)d;
            for (int k = 0; k < 3; k++)
                if (!best[k] || s > score[k]) {
                    for (int j = 2; j > k; j--) {
                        best[j] = best[j - 1];
                        score[j] = score[j - 1];
                    }
                    best[k] = *p;
                    score[k] = s;
                    break;
                }
        }
        if (best[0]) {
            size_t used = (size_t)snprintf(hint, sizeof hint, " (did you mean '%s'", best[0]);
            for (int k = 1; k < 3 && best[k] && used < sizeof hint; k++)
                used += (size_t)snprintf(hint + used, sizeof hint - used, "%s'%s'",
                                         k == 2 || !best[k + 1] ? " or " : ", ", best[k]);
            if (used < sizeof hint)
                snprintf(hint + used, sizeof hint - used, "?)");
        }
        isim_ids_free(ids);
    }
    if (!hint[0])
        snprintf(hint, sizeof hint, " (see 'infersim list %s')",
                 strcmp(sub, "hw-profiles") == 0 ? "hardware" : sub);
    return isim__fail(err, ISIM_ENOTFOUND, "", 0, 0, "unknown %s '%s'%s", what, id, hint);
}

/* Why dir/sub cannot hold the file sought: a data directory that is missing, is a file, or
 * lacks sub/ (a --data pointed at the wrong place reads better so than "unknown model"). */
static isim_status no_catalog(const char *dir, const char *sub, isim_error *err)
{
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return isim__fail(err, ISIM_EINVAL, "", 0, 0, "data directory '%s': %s", dir,
                          strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return isim__fail(err, ISIM_EINVAL, "", 0, 0, "data directory '%s' is not a directory",
                          dir);
    return isim__fail(err, ISIM_EINVAL, "", 0, 0,
                      "data directory '%s' has no %s/ (a data directory holds models/, "
                      "hw-profiles/ and scenarios/)",
                      dir, sub);
}

static isim_status find(const char *dir, const char *sub, const char *what, const char *id,
                        char *path, size_t n, isim_error *err)
{
    if (!valid_id(id))
        return isim__fail(err, ISIM_ENOTFOUND, "", 0, 0,
                          "invalid %s id '%s' (an id is a file's stem: letters, digits, '.', "
                          "'_' and '-', at most %d bytes, not starting with '.')",
                          what, id, ISIM_MAX_NAME);
    int w = snprintf(path, n, "%s/%s/%s.yaml", dir, sub, id);
    if (w < 0 || (size_t)w >= n)
        return isim__fail(err, ISIM_EINVAL, "", 0, 0,
                          "the path of %s '%s' under data directory '%s' is longer than %zu "
                          "bytes",
                          what, id, dir, n - 1);
    struct stat sb;
    if (stat(path, &sb) == 0)
        return ISIM_OK;
    char *subdir = malloc(strlen(dir) + strlen(sub) + 2);
    if (!subdir)
        return isim__fail(err, ISIM_ENOMEM, "", 0, 0, "out of memory");
    sprintf(subdir, "%s/%s", dir, sub);
    bool listed = stat(subdir, &sb) == 0 && S_ISDIR(sb.st_mode);
    free(subdir);
    return listed ? unknown(dir, sub, what, id, err) : no_catalog(dir, sub, err);
}

isim_status isim_catalog_model(const char *dir, const char *id, isim_model **out, isim_error *err)
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

isim_status isim_catalog_path(const char *dir, const char *kind, const char *id, char *path,
                              size_t size, isim_error *err)
{
    if (strcmp(kind, "model") == 0)
        return find(dir, "models", "model", id, path, size, err);
    if (strcmp(kind, "hw") == 0)
        return find(dir, "hw-profiles", "hardware", id, path, size, err);
    if (strcmp(kind, "scenario") == 0)
        return find(dir, "scenarios", "scenario", id, path, size, err);
    return isim__fail(err, ISIM_EINVAL, "", 0, 0, "unknown catalog kind '%s'", kind);
}

static bool named(const char *id, char *const *aliases, const char *name)
{
    if (strcasecmp(id, name) == 0)
        return true;
    for (char *const *a = aliases; a && *a; a++)
        if (strcasecmp(*a, name) == 0)
            return true;
    return false;
}

isim_status isim_catalog_find(const char *dir, const char *kind, const char *name, char *id,
                              size_t size, isim_error *err)
{
    bool model = strcmp(kind, "model") == 0;
    if (!model && strcmp(kind, "hw") != 0)
        return isim__fail(err, ISIM_EINVAL, "", 0, 0, "unknown catalog kind '%s'", kind);
    const char *sub = model ? "models" : "hw-profiles";
    char **ids = NULL;
    isim_status st = isim_catalog_list(dir, sub, &ids, err);
    if (st)
        return st;
    /* a file that does not load names nothing; its failure is reported where it is used.
     * Running out of memory is no answer about the file: the search stops. */
    char broken[1100] = "";
    bool found = false;
    for (char **p = ids; *p && !found && !st; p++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s/%s.yaml", dir, sub, *p);
        isim_error e = {0};
        isim_status ls;
        if (model) {
            isim_model *m = NULL;
            if ((ls = isim_model_load(path, &m, &e)) == ISIM_OK)
                found = named(m->id, m->aliases, name);
            isim_model_free(m);
        } else {
            isim_hw *h = NULL;
            if ((ls = isim_hw_load(path, &h, &e)) == ISIM_OK)
                found = named(h->id, h->aliases, name);
            isim_hw_free(h);
        }
        if (ls == ISIM_ENOMEM) {
            st = ISIM_ENOMEM;
            if (err)
                *err = e;
        } else if (ls && !broken[0]) {
            snprintf(broken, sizeof broken, " (%s does not load)", path);
        }
        if (found)
            snprintf(id, size, "%s", *p);
    }
    isim_ids_free(ids);
    if (st)
        return st;
    if (!found)
        return isim__fail(err, ISIM_ENOTFOUND, "", 0, 0, "no %s under %s/%s is named '%s'%s",
                          model ? "model" : "hardware profile", dir, sub, name, broken);
    return ISIM_OK;
}
