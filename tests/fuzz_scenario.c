/* libFuzzer target: arbitrary bytes as a scenario file must load or be refused with an
 * error, never crash, leak, hang or read out of bounds. A scenario that loads and is small
 * (one model, at most two hardware profiles, at most 9 points) is then run through the
 * planner (its devices capped at 8, the sensitivity included) and written as the JSON of
 * results.json, so that the sweeps, the overrides they make and the writers are fuzzed too.
 *   tests/fuzz.sh 60 fuzz_scenario */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "planner/planner.h"
#include "reports/report.h"

#include "tests/fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The points the sweeps make, as the runner counts them: lockstep groups advance together,
 * the rest cross. Saturates at SIZE_MAX. */
static size_t points(const isim_scenario *s)
{
    size_t n = 1;
    for (size_t i = 0; i < s->n_sweeps; i++) {
        bool grouped = false;
        for (size_t j = 0; j < i && s->sweeps[i].lockstep && !grouped; j++)
            grouped =
                s->sweeps[j].lockstep && strcmp(s->sweeps[j].lockstep, s->sweeps[i].lockstep) == 0;
        if (!grouped)
            n = s->sweeps[i].n && n > SIZE_MAX / s->sweeps[i].n ? SIZE_MAX : n * s->sweeps[i].n;
    }
    return n;
}

static bool small(const isim_scenario *s)
{
    for (size_t h = 0; h < s->n_hw; h++)
        if (strcmp(s->hw[h].text, "all") == 0)
            return false;
    return s->n_models == 1 && s->n_hw <= 2 && points(s) <= 9 && s->settings.grid <= 400;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[] = "/tmp/isim-fuzz-scenario-XXXXXX";
    if (!fuzz_input_file(path, data, size))
        return 0;
    isim_error e;
    isim_scenario *s = NULL;
    if (isim_scenario_load(path, &s, &e) == ISIM_OK && small(s)) {
        if (s->settings.max_devices > 8)
            s->settings.max_devices = 8;
        isim_scenario_run_opts o = {.data_dir = ISIM_DATA_DIR, .threads = 1};
        isim_scenario_result *res = NULL;
        if (isim_scenario_run(s, &o, &res, &e) == ISIM_OK)
            free(isim_report_scenario_json(res, false));
        isim_scenario_result_free(res);
    }
    char buf[1400];
    (void)isim_error_format(&e, buf, sizeof buf);
    isim_scenario_free(s);
    unlink(path);
    return 0;
}
