/* libFuzzer target: llama2.c checkpoints for stories260k made from the fuzzer's bytes, two
 * ways: as the whole file, and laid over a copy of the real checkpoint (the first 4 bytes a
 * little-endian word: its bit 31 the precision, int8 or fp32, the rest the offset modulo the
 * file's size + 1; the other bytes are written there and may run past the end), so that header
 * fields lie and weights turn NaN or huge inside an otherwise sound file. The engine must load
 * each or refuse it with an error; what loads runs a 3-token prefill and 2 decode steps on one
 * thread, in chunks of 4 rows (small buffers): the whole file in fp32 and in int8, the overlay
 * in its precision. Each must finish or fail with an error: never a crash, a leak or undefined
 * behaviour.
 *   tests/fuzz.sh 60 fuzz_ckpt */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/runtime.h"
#include "sim/sim.h"

#include "tests/fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static isim_model *model;
static uint8_t *fixture;
static size_t fixture_size;

/* The model and the real checkpoint, once; abort() when the harness itself is broken. */
static void setup(void)
{
    if (model)
        return;
    FILE *f = fopen(ISIM_FIXTURES_DIR "/stories260K.bin", "rb");
    if (!f || isim_catalog_model(ISIM_DATA_DIR, "stories260k", &model, NULL))
        abort();
    fseek(f, 0, SEEK_END);
    fixture_size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    fixture = malloc(fixture_size);
    if (!fixture || fread(fixture, 1, fixture_size, f) != fixture_size)
        abort();
    fclose(f);
}

/* Opens the engine on the file and, when it loads, generates 3 tokens after a 3-token prompt;
 * whether it loaded. */
static bool run(const char *path, isim_dtype weights)
{
    isim_rt_options o;
    isim_rt_options_init(&o);
    o.model = model;
    o.weights_file = path;
    o.weights = weights;
    o.threads = 1;
    o.max_context = 8;
    o.max_chunk = 4;
    isim_error e;
    isim_rt *rt = NULL;
    if (isim_rt_open(&o, &rt, &e) != ISIM_OK)
        return false;
    static const int prompt[] = {1, 2, 3};
    const int *prompts[] = {prompt}, len = 3;
    isim_rt_result r;
    if (isim_rt_generate(rt, 1, prompts, &len, 3, NULL, NULL, &r, &e) == ISIM_OK)
        isim_rt_result_release(&r);
    isim_rt_close(rt);
    return true;
}

/* Writes the n bytes to a new temporary file and runs it in `weights`, and then in int8 too
 * when `both` (the loader's checks do not depend on the precision: only what loaded). */
static void try_file(const uint8_t *b, size_t n, isim_dtype weights, bool both)
{
    char path[] = "/tmp/isim-fuzz-ckpt-XXXXXX";
    if (!fuzz_input_file(path, b, n))
        return;
    if (run(path, weights) && both)
        run(path, ISIM_INT8);
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    try_file(data, size, ISIM_FP32, true);
    if (size < 4)
        return 0;
    /* the overlay: bit 31 of the first word picks the precision (an overlay nearly always
     * loads, and one load is most of an input's time), the rest the offset */
    uint32_t word = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                    (uint32_t)data[3] << 24;
    size_t at = (size_t)(word & 0x7fffffffu) % (fixture_size + 1);
    size_t n = size - 4, total = at + n > fixture_size ? at + n : fixture_size;
    uint8_t *b = malloc(total);
    if (!b)
        return 0;
    memcpy(b, fixture, fixture_size);
    memcpy(b + at, data + 4, n);
    try_file(b, total, word >> 31 ? ISIM_INT8 : ISIM_FP32, false);
    free(b);
    return 0;
}
