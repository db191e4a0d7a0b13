/* How long the YAML reader takes on hostile files (issue: a 10 MB file of distinct keys
 * must load or be refused in under a second): files of many distinct keys, at and past each
 * limit of sim.h, loaded as a model. Prints the median of 5 loads of each, with the message
 * the load ends with. It is a benchmark, not a test.
 *   usage: bench_yaml [DIR]   (DIR: where to write the files; default /tmp) */
#include "sim/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Writes `maps` top-level keys each holding a flow mapping of `keys` distinct keys, or with
 * maps 0, `keys` distinct top-level keys, padded with a comment to `pad` bytes. */
static int write_file(const char *path, size_t maps, size_t keys, size_t pad)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return 1;
    long n = 0;
    if (maps == 0)
        for (size_t i = 0; i < keys; i++)
            n += fprintf(f, "key_%zu: 1\n", i);
    for (size_t m = 0; m < maps; m++) {
        n += fprintf(f, "map_%zu: {", m);
        for (size_t i = 0; i < keys; i++)
            n += fprintf(f, "%sk%zu: 1", i ? ", " : "", i);
        n += fprintf(f, "}\n");
    }
    /* comment lines of 100 bytes, the last one shorter */
    for (size_t i = 0; (size_t)n + i < pad; i++)
        fputc((size_t)n + i + 1 == pad || i % 100 == 99 ? '\n' : i % 100 ? 'x' : '#', f);
    return fclose(f) != 0;
}

static void run(const char *dir, const char *what, size_t maps, size_t keys, size_t pad)
{
    char path[512];
    snprintf(path, sizeof path, "%s/bench-yaml.yaml", dir);
    if (write_file(path, maps, keys, pad)) {
        fprintf(stderr, "bench_yaml: cannot write %s\n", path);
        exit(1);
    }
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fclose(f);
    double t[5];
    isim_error e = {0};
    for (int r = 0; r < 5; r++) {
        isim_model *m = NULL;
        double t0 = now_s();
        isim_model_load(path, &m, &e);
        t[r] = now_s() - t0;
        isim_model_free(m);
    }
    qsort(t, 5, sizeof t[0], cmp);
    printf("%-44s %9.2f MB %10.2f ms  (%s)\n", what, bytes / 1e6, t[2] * 1e3, e.message);
    remove(path);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    printf("%-44s %12s %13s  %s\n", "file", "size", "median load", "how it ends");
    run(dir, "10 MB of distinct top-level keys", 0, 800000, 0);
    run(dir, "40,000 distinct top-level keys (19 s before)", 0, 40000, 0);
    run(dir, "1,024 distinct top-level keys (the limit)", 0, ISIM_YAML_MAX_KEYS, 0);
    run(dir, "100 mappings of 1,024 keys each", 100, ISIM_YAML_MAX_KEYS, 0);
    run(dir, "1,024 keys and a comment to 1 MiB (the limit)", 0, ISIM_YAML_MAX_KEYS,
        ISIM_YAML_MAX_BYTES);
    return 0;
}
