/* Model files: every one loads, its derived parameter counts match the published totals
 * within 1%, and KV-cache bytes and FLOPs per token match hand calculations. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/testutil.h"

static const char *const REQUIRED[] = {
    "llama-3.1-8b",    "llama-3.1-70b", "llama-3.1-405b", "llama-3.2-1b", "llama-3.2-3b",
    "mistral-large-2", "mixtral-8x7b",  "mixtral-8x22b",  "deepseek-v3",  "qwen3-32b",
    "qwen3-235b-a22b", "gpt-oss-120b",  "gpt-oss-20b",    "gpt-3-175b",   "llama-2-7b",
    "llama-2-13b",     "llama-2-70b",   "stories260k"};

Test(models, the_catalog_has_every_required_model)
{
    char **ids = NULL;
    cr_assert_eq(isim_catalog_list(ISIM_DATA_DIR, "models", &ids, NULL), ISIM_OK);
    for (size_t i = 0; i < sizeof REQUIRED / sizeof REQUIRED[0]; i++) {
        bool found = false;
        for (char **p = ids; *p; p++)
            found |= strcmp(*p, REQUIRED[i]) == 0;
        cr_expect(found, "models/%s.yaml is missing", REQUIRED[i]);
    }
    isim_ids_free(ids);
}

/* Publishers whose total follows another architecture than the checkpoint's: the total is
 * compared with the derived count of the architecture as they counted it. */
static const struct {
    const char *id, *path, *value, *why;
} COUNTED_AS[] = {
    {"kimi-k2.5", "moe.first_dense_layers", "0",
     "Moonshot's 1.04T counts all 61 layers as MoE; the checkpoint's layer 0 is dense (1.026T)"},
};

/* The published totals are rounded to 2-4 significant figures in most announcements;
 * 1% is the tolerance the foundation issue sets. */
Test(models, derived_parameters_match_published_totals_within_one_percent)
{
    char **ids = NULL;
    cr_assert_eq(isim_catalog_list(ISIM_DATA_DIR, "models", &ids, NULL), ISIM_OK);
    int n = 0;
    for (char **p = ids; *p; p++, n++) {
        isim_model *m = tu_model(*p);
        double total = m->d.params_total;
        for (size_t k = 0; k < sizeof COUNTED_AS / sizeof COUNTED_AS[0]; k++) {
            if (strcmp(*p, COUNTED_AS[k].id) != 0)
                continue;
            char path[512];
            snprintf(path, sizeof path, "%s/models/%s.yaml", ISIM_DATA_DIR, *p);
            isim_override ov = {.path = COUNTED_AS[k].path,
                                .value = COUNTED_AS[k].value,
                                .source = COUNTED_AS[k].why,
                                .file = "test",
                                .line = 1,
                                .column = 1};
            isim_model *as = NULL;
            cr_assert_eq(isim_model_load_with(path, &ov, 1, &as, NULL), ISIM_OK);
            cr_expect_lt(total, as->d.params_total, "%s", COUNTED_AS[k].why);
            total = as->d.params_total;
            isim_model_free(as);
        }
        cr_expect(tu_close(total, m->declared_total, 0.01), "%s: derived %.6g vs declared %.6g", *p,
                  total, m->declared_total);
        if (m->has_moe)
            cr_expect(tu_close(isim_model_active_as_declared(m), m->declared_active, 0.01),
                      "%s: derived active %.6g vs declared %.6g", *p,
                      isim_model_active_as_declared(m), m->declared_active);
        else
            cr_expect_float_eq(m->d.params_active, m->d.params_total, 0.5, "%s", *p);
        isim_model_free(m);
    }
    cr_expect_geq(n, 18);
    isim_ids_free(ids);
}

Test(models, llama_3_1_70b_counts_by_hand)
{
    isim_model *m = tu_model("llama-3.1-70b");
    const double d = 8192, L = 80, V = 128256, ff = 28672;
    /* q 64x128, k and v 8x128 each, o back to d */
    double attn = d * (64 + 16) * 128 + 64 * 128 * d;
    double total = 2 * V * d + L * (attn + 3 * d * ff + 2 * d) + d;
    cr_expect_float_eq(m->d.params_total, total, 0.5);
    cr_expect_float_eq(m->d.params_total, 70553706496.0, 0.5); /* safetensors count */
    /* K and V, 8 heads of 128, 80 layers, 2 bytes: 327,680 B/token (Erdil 2025 §3 table) */
    cr_expect_float_eq(isim_model_kv_bytes(m, 1, ISIM_BF16), 327680, 1e-6);
    cr_expect_float_eq(isim_model_kv_bytes(m, 1000, ISIM_FP8), 163840000, 1e-3);
    isim_model_free(m);
}

Test(models, deepseek_v3_mla_and_moe_by_hand)
{
    isim_model *m = tu_model("deepseek-v3");
    /* MLA caches the 512-wide latent and the 64-wide rotary key: (512 + 64) x 61 x 2 B */
    cr_expect_float_eq(isim_model_kv_bytes(m, 1, ISIM_BF16), 576 * 61 * 2, 1e-6);
    cr_expect_eq(m->d.n_dense_layers, 3);
    cr_expect_eq(m->d.n_moe_layers, 58);
    /* one expert: SwiGLU 3 x 7168 x 2048 */
    cr_expect_float_eq(m->d.expert_params, 3.0 * 7168 * 2048, 0.5);
    /* 671B total, 36.6B active without the input embedding (README_WEIGHTS.md) */
    cr_expect(tu_close(m->d.params_total, 671e9, 0.001), "%.6g", m->d.params_total);
    cr_expect(tu_close(isim_model_active_as_declared(m), 36.6e9, 0.005));
    isim_model_free(m);
}

Test(models, sliding_window_layers_cap_the_kv_cache)
{
    isim_model *m = tu_model("gpt-oss-120b");
    /* 36 layers alternate sliding (128 tokens) and full; K+V of 8 heads x 64 in bf16 is
     * 2048 B per token per layer. */
    cr_expect_eq(m->d.n_sliding_layers, 18);
    cr_expect_float_eq(isim_model_kv_bytes(m, 1, ISIM_BF16), 36 * 2048.0, 1e-6);
    cr_expect_float_eq(isim_model_kv_bytes(m, 1000, ISIM_BF16), (18 * 1000.0 + 18 * 128.0) * 2048,
                       1e-3);
    isim_model_free(m);
}

Test(models, flops_per_token_by_hand)
{
    isim_model *m = tu_model("llama-3.1-8b");
    const double d = 4096, V = 128256, L = 32;
    double matmul = L * (d * (32 + 16) * 128 + 32 * 128 * d + 3 * d * 14336) + V * d;
    cr_expect(tu_close(isim_model_flops_per_token(m, 0), 2 * matmul, 1e-9));
    /* q.k and p.v: 2 x 32 heads x (128 + 128) x context, per layer */
    double attn = 2 * 32 * 256 * 4096 * L;
    cr_expect(tu_close(isim_model_flops_per_token(m, 4096), 2 * matmul + attn, 1e-9));
    isim_model_free(m);
    /* tied: the classifier multiplies by the embedding matrix, 2 vocab d FLOPs all the same.
     * Llama 3.2 1B: 16 layers, d 2048, 32 q + 8 kv heads of 64, d_ff 8192, vocab 128256 */
    m = tu_model("llama-3.2-1b");
    double d1 = 2048, V1 = 128256;
    double mm1 = 16 * (d1 * (32 + 16) * 64 + 32 * 64 * d1 + 3 * d1 * 8192) + V1 * d1;
    cr_expect(tu_close(isim_model_flops_per_token(m, 0), 2 * mm1, 1e-9), "%g vs %g",
              isim_model_flops_per_token(m, 0), 2 * mm1);
    isim_model_free(m);
}

/* The llama2.c checkpoint stores the parameters and the RoPE tables (seq_len x head_size/2,
 * real and imaginary) as fp32 after a 28-byte header: an independent count. */
Test(models, stories260k_matches_the_fixture_checkpoint)
{
    const char *path = ISIM_FIXTURES_DIR "/stories260K.bin";
    struct stat sb;
    if (stat(path, &sb) != 0)
        cr_skip_test("fixture %s absent", path);
    isim_model *m = tu_model("stories260k");
    double rope = 512.0 * (64 / 8 / 2) * 2;
    cr_expect_float_eq(m->d.params_total + rope, ((double)sb.st_size - 28) / 4, 0.5);
    FILE *f = fopen(path, "rb");
    int hdr[7];
    cr_assert_eq(fread(hdr, sizeof hdr[0], 7, f), 7u);
    fclose(f);
    cr_expect_eq(hdr[0], m->d_model);
    cr_expect_eq(hdr[1], m->d_ff);
    cr_expect_eq(hdr[2], m->n_layers);
    cr_expect_eq(hdr[3], m->n_heads);
    cr_expect_eq(hdr[4], m->n_kv_heads);
    cr_expect_eq(hdr[5], m->vocab); /* positive: tied classifier */
    cr_expect(m->tied_embeddings);
    isim_model_free(m);
}
