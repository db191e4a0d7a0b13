/* libFuzzer target: arbitrary bytes as a model file and as a hardware file must load or be
 * refused with an error, never crash, leak or read out of bounds; whatever loads is then
 * predicted in both fidelities against a catalog entry (Llama 3.1 8B, H100 SXM).
 *   tests/fuzz.sh 60 fuzz_spec */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "sim/sim.h"

#include "tests/fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[] = "/tmp/isim-fuzz-XXXXXX";
    if (!fuzz_input_file(path, data, size))
        return 0;
    static isim_model *base_m;
    static isim_hw *base_h;
    if (!base_m && (isim_catalog_model(ISIM_DATA_DIR, "llama-3.1-8b", &base_m, NULL) ||
                    isim_catalog_hw(ISIM_DATA_DIR, "h100-sxm", &base_h, NULL)))
        abort(); /* the harness itself is broken */
    isim_error e;
    isim_model *m = NULL;
    isim_hw *h = NULL;
    if (isim_model_load(path, &m, &e) == ISIM_OK) {
        (void)isim_model_kv_bytes(m, 4096, ISIM_BF16);
        (void)isim_model_flops_per_token(m, 4096);
    }
    (void)isim_hw_load(path, &h, &e);
    char buf[1400];
    (void)isim_error_format(&e, buf, sizeof buf);
    for (int fid = 0; fid < 2; fid++) {
        isim_query q;
        isim_query_init(&q);
        q.fidelity = fid ? ISIM_PAPER : ISIM_DEPLOY;
        q.devices = 8;
        q.batch = 16;
        q.input_tokens = 512;
        q.output_tokens = 64;
        isim_result r;
        if (m)
            (void)isim_predict(m, base_h, &q, &r, &e);
        if (h)
            (void)isim_predict(base_m, h, &q, &r, &e);
    }
    isim_model_free(m);
    isim_hw_free(h);
    unlink(path);
    return 0;
}
