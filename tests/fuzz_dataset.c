/* libFuzzer target: arbitrary bytes as the measured serving data of `validate --dataset`
 * must load or be refused with an error, never crash, leak, hang or read out of bounds;
 * whatever loads has each row predicted with its profile's own parameters and, when few
 * rows are predicted (the fit's cost grows with them), the profiles fitted on them. The
 * catalog is a copy of four entries under /tmp (a dense and a MoE model, two profiles), so
 * that a run reads four files, not the whole catalog; it is removed at exit.
 *   tests/fuzz.sh 60 fuzz_dataset */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim/dataset.h"

#include "tests/fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIT_MAX_ROWS 8

static const char *const entries[] = {"models/qwen3-32b.yaml", "models/qwen3-235b-a22b.yaml",
                                      "hw-profiles/h100-sxm.yaml", "hw-profiles/gb200-nvl72.yaml"};
#define N_ENTRIES (sizeof entries / sizeof entries[0])

static char catalog[] = "/tmp/isim-fuzz-dataset-XXXXXX";

static void remove_catalog(void)
{
    char path[256];
    for (size_t i = 0; i < N_ENTRIES; i++) {
        snprintf(path, sizeof path, "%s/%s", catalog, entries[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/models", catalog);
    rmdir(path);
    snprintf(path, sizeof path, "%s/hw-profiles", catalog);
    rmdir(path);
    rmdir(catalog);
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    if (!in || !out)
        abort(); /* the harness itself is broken */
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, got, out);
    fclose(in);
    if (fclose(out) != 0)
        abort();
}

static void make_catalog(void)
{
    char path[256], from[1200];
    if (!mkdtemp(catalog))
        abort();
    atexit(remove_catalog);
    snprintf(path, sizeof path, "%s/models", catalog);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/hw-profiles", catalog);
    mkdir(path, 0700);
    for (size_t i = 0; i < N_ENTRIES; i++) {
        snprintf(from, sizeof from, "%s/%s", ISIM_DATA_DIR, entries[i]);
        snprintf(path, sizeof path, "%s/%s", catalog, entries[i]);
        copy_file(from, path);
    }
}

static void exercise(isim_dataset *d)
{
    size_t predicted = 0;
    for (size_t i = 0; i < d->n_rows; i++) {
        const isim_ds_row *r = &d->rows[i];
        if (r->skip[0])
            continue;
        predicted++;
        isim_hw_fit p;
        isim_ds_prior(d->hw[r->hw], &p);
        double ttft, tpot;
        char why[160];
        (void)isim_ds_predict(d, r, &p, &ttft, &tpot, NULL, why, sizeof why);
    }
    isim_error e;
    if (predicted > 0 && predicted <= FIT_MAX_ROWS)
        (void)isim_dataset_fit(d, 1, &e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool made;
    if (!made)
        make_catalog();
    made = true;
    char path[] = "/tmp/isim-fuzz-XXXXXX";
    if (!fuzz_input_file(path, data, size))
        return 0;
    isim_error e;
    isim_dataset *d = NULL;
    if (isim_dataset_load(path, catalog, &d, &e) == ISIM_OK) {
        if (d->n_rows == 0)
            abort(); /* a file without rows is refused */
        exercise(d);
    } else if (!e.message[0] || e.line < 0 || e.column < 0) {
        abort(); /* every refusal says why, and where when it can */
    }
    isim_dataset_free(d);
    unlink(path);
    return 0;
}
