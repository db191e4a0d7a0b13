/* Hardware profiles: the catalog loads, the paper's profiles hold exactly the constants of
 * the released code (paper-model.md §2.2, transcribed here by hand), and datasheet profiles
 * agree with their datasheets on the headline numbers. */
#include <criterion/criterion.h>
#include <string.h>

#include "tests/testutil.h"

static const char *const REQUIRED[] = {
    "h100-sxm",    "h200",       "b200",         "gb200-nvl72",    "mi300x",     "mi325x",
    "a100-sxm-80g", "a100-sxm-40g", "l40s",      "l4",             "a10",        "t4",
    "tpu-v5e",     "tpu-v5p",    "gaudi3",       "groq-lpu",       "cpu-server", "epoch-h100",
    "epoch-h200",  "epoch-a100", "epoch-v100",   "epoch-h20",      "epoch-h800", "epoch-tpu-v4",
    "epoch-groq-lpu", "epoch-h100-zl"};

Test(hw, every_profile_loads_and_the_catalog_is_complete)
{
    char **ids = NULL;
    cr_assert_eq(isim_catalog_list(ISIM_DATA_DIR, "hw-profiles", &ids, NULL), ISIM_OK);
    for (size_t i = 0; i < sizeof REQUIRED / sizeof REQUIRED[0]; i++) {
        bool found = false;
        for (char **p = ids; *p; p++)
            found |= strcmp(*p, REQUIRED[i]) == 0;
        cr_expect(found, "hw-profiles/%s.yaml is missing", REQUIRED[i]);
    }
    for (char **p = ids; *p; p++) {
        isim_hw *h = tu_hw(*p);
        cr_expect_gt(h->n_facts, 8u, "%s", *p);
        for (size_t i = 0; i < h->n_facts; i++)
            cr_expect(h->facts[i].source && h->facts[i].source[0], "%s: %s has no source", *p,
                      h->facts[i].path);
        isim_hw_free(h);
    }
    isim_ids_free(ids);
}

/* paper-model.md §2.2: FLOP/s by weight bits, HBM bandwidth and size, intra- and inter-node
 * all-reduce bandwidth (stored per direction: twice the code's figure), $/h, caps. */
static const struct {
    const char *id;
    double f16, f8, f4, bw, mem, intra, inter, usd, cap_f, cap_m;
} EPOCH[] = {
    {"epoch-h100", 1e15, 2e15, 2e15, 3.3e12, 80e9, 9e11 / 4, 5e10 / 2, 3.15 * 2 / 3, 0.7, 0.75},
    {"epoch-h800", 1e15, 2e15, 2e15, 3.3e12, 80e9, 4e11 / 4, 5e10 / 2, 3.15 * 2 / 3, 0.7, 0.75},
    {"epoch-h200", 1e15, 2e15, 2e15, 4.8e12, 141e9, 9e11 / 4, 5e10 / 2, 3.5 / 2.5 * 3.15 * 2 / 3,
     0.6, 0.75},
    {"epoch-h20", 148e12, 296e12, 296e12, 4.0e12, 96e9, 9e11 / 4, 5e10 / 2,
     13.5 / 24 * 3.15 * 2 / 3, 1.0, 0.75},
    {"epoch-a100", 3.12e14, 6.24e14, 0, 2.0e12, 80e9, 6e11 / 4, 2.5e10 / 2, 2.26 * 2 / 3, 0.8,
     0.75},
    {"epoch-v100", 1e14, 1e14, 0, 0.9e12, 16e9, 3e11 / 4, 1.25e10 / 2, 0.63 * 2 / 3, 0.8, 0.75},
    {"epoch-h100-zl", 1e15, 2e15, 2e15, 3.3e12, 80e9, 9e11 / 4, 5e10 / 2, 3.15 * 2 / 3, 1, 1},
};

Test(hw, epoch_profiles_hold_the_released_code_constants)
{
    for (size_t i = 0; i < sizeof EPOCH / sizeof EPOCH[0]; i++) {
        isim_hw *h = tu_hw(EPOCH[i].id);
        const char *id = EPOCH[i].id;
        cr_expect_float_eq(h->peak_flops[ISIM_BF16], EPOCH[i].f16, 1, "%s", id);
        cr_expect_float_eq(h->peak_flops[ISIM_FP8], EPOCH[i].f8, 1, "%s", id);
        cr_expect_float_eq(h->peak_flops[ISIM_INT8], EPOCH[i].f8, 1, "%s", id);
        cr_expect_float_eq(h->peak_flops[ISIM_INT4], EPOCH[i].f4, 1, "%s", id);
        cr_expect_float_eq(h->peak_flops[ISIM_FP4], EPOCH[i].f4, 1, "%s", id);
        cr_expect_float_eq(h->mem_bytes_per_s, EPOCH[i].bw, 1, "%s", id);
        cr_expect_float_eq(h->mem_bytes, EPOCH[i].mem, 1, "%s", id);
        cr_expect_float_eq(h->scale_up_bytes_per_s / 2, EPOCH[i].intra, 1, "%s", id);
        cr_expect_float_eq(h->scale_out_bytes_per_s / 2, EPOCH[i].inter, 1, "%s", id);
        cr_expect_float_eq(h->cloud_usd_per_h, EPOCH[i].usd, 1e-9, "%s", id);
        cr_expect_float_eq(h->eff_flops, EPOCH[i].cap_f, 1e-12, "%s", id);
        cr_expect_float_eq(h->eff_hbm, EPOCH[i].cap_m, 1e-12, "%s", id);
        cr_expect_eq(h->domain_size, 8, "%s", id);
        cr_expect_eq(h->coll_model, ISIM_COLL_NCCL, "%s", id);
        bool zl = strcmp(id, "epoch-h100-zl") == 0;
        cr_expect_float_eq(h->kernel_launch_s, zl ? 0 : 4e-6, 1e-15, "%s", id);
        cr_expect_eq(h->n_protocols, 3, "%s", id);
        /* LL 6.8 us and LL128 14 us base latency; both zero in the zero-latency profile */
        cr_expect_float_eq(h->protocols[0].base_s, zl ? 0 : 6.8e-6, 1e-15, "%s", id);
        cr_expect_float_eq(h->protocols[1].base_s, zl ? 0 : 14e-6, 1e-15, "%s", id);
        cr_expect_float_eq(h->protocols[0].per_rank_s, 0.6e-6, 1e-15, "%s", id);
        cr_expect_float_eq(h->protocols[2].per_node_log2_s, 28e-6, 1e-15, "%s", id);
        cr_expect_float_eq(h->protocols[1].bandwidth_factor, 0.95, 1e-12, "%s", id);
        cr_expect(!h->has_serving, "%s: the paper's profiles are paper-only", id);
        isim_hw_free(h);
    }
}

Test(hw, tpu_and_lpu_use_the_flat_collective_of_the_code)
{
    isim_hw *t = tu_hw("epoch-tpu-v4"), *g = tu_hw("epoch-groq-lpu");
    cr_expect_eq(t->coll_model, ISIM_COLL_FLAT);
    cr_expect_float_eq(t->flat_per_rank_s, 1e-6, 1e-15);
    cr_expect_float_eq(t->peak_flops[ISIM_BF16], 2.6e14, 1);
    cr_expect_float_eq(t->mem_bytes, 32e9, 1);
    cr_expect_float_eq(t->mem_bytes_per_s, 1.6e12, 1);
    /* code: internode_allreduce_bandwidth 2.5e11 used without the /2 of NVIDIA's */
    cr_expect_float_eq(t->scale_up_bytes_per_s / 2, 2.5e11, 1);
    cr_expect_float_eq(g->peak_flops[ISIM_BF16], 1.88e14, 1);
    cr_expect_float_eq(g->peak_flops[ISIM_FP8], 7.5e14, 1);
    cr_expect_float_eq(g->mem_bytes, 230e6, 1);
    cr_expect_float_eq(g->mem_bytes_per_s, 8e13, 1);
    cr_expect_float_eq(g->scale_up_bytes_per_s / 2, 330e9 / 2, 1);
    isim_hw_free(t);
    isim_hw_free(g);
}

/* Headline datasheet numbers (NVIDIA H100 / H200 datasheets, dense tensor rates). */
Test(hw, datasheet_profiles_match_their_datasheets)
{
    isim_hw *h = tu_hw("h100-sxm");
    cr_expect_float_eq(h->peak_flops[ISIM_BF16], 989.4e12, 1e9);
    cr_expect_float_eq(h->peak_flops[ISIM_FP8], 1978.9e12, 1e9);
    cr_expect_float_eq(h->mem_bytes, 80e9, 1);
    cr_expect_float_eq(h->mem_bytes_per_s, 3.35e12, 1);
    cr_expect_float_eq(h->scale_up_bytes_per_s, 450e9, 1);
    cr_expect_float_eq(h->tdp_w, 700, 1e-9);
    cr_expect(h->has_serving);
    isim_hw_free(h);
    isim_hw *g = tu_hw("h200");
    cr_expect_float_eq(g->mem_bytes, 141e9, 1);
    cr_expect_float_eq(g->mem_bytes_per_s, 4.8e12, 1);
    cr_expect_float_eq(g->peak_flops[ISIM_BF16], 989.4e12, 1e9);
    isim_hw_free(g);
    isim_hw *t = tu_hw("t4");
    cr_expect_float_eq(t->peak_flops[ISIM_BF16], 0, 0.5, "Turing has no bf16 rate");
    cr_expect_float_eq(t->peak_flops[ISIM_FP16], 65e12, 1e9);
    isim_hw_free(t);
}

/* Ranks sharing one CPU machine (validate's TP and PP ranks under mpirun, one thread each):
 * a machine that streams 48 GB/s on every thread and 37 GB/s on one, split in 2 ranks. Both
 * streaming (TP, or PP with two micro-batches in flight): 24 GB/s each. One stage streaming
 * alone (PP at batch 1): 37 GB/s, its one thread's limit, not the machine's 48; with no
 * thread figure in the profile, 48. Arithmetic and memory halve whatever streams. */
Test(hw, ranks_sharing_a_machine_split_the_bandwidth_among_those_streaming)
{
    isim_hw *h = tu_hw("cpu-server");
    h->mem_bytes_per_s = 48e9;
    h->mem_thread_bytes_per_s = 37e9;
    h->eff_hbm = 1;
    h->eff_hbm_kv = 0;
    isim_hw s;
    isim_hw_rank_share(h, 2, 2, &s);
    cr_expect_float_eq(s.mem_bytes_per_s, 24e9, 1);
    cr_expect_float_eq(s.peak_flops[ISIM_BF16], 229.4e12 / 2, 1e6);
    cr_expect_float_eq(s.mem_bytes, h->mem_bytes / 2, 1);
    cr_expect_eq(s.domain_size, 2);
    cr_expect_float_eq(s.kernel_launch_s, 0, 1e-15);
    isim_hw_rank_share(h, 2, 5, &s); /* no more streaming than there are ranks */
    cr_expect_float_eq(s.mem_bytes_per_s, 24e9, 1);
    isim_hw alone;
    isim_hw_rank_share(h, 2, 1, &alone);
    cr_expect_float_eq(alone.mem_bytes_per_s, 37e9, 1);
    cr_expect_float_eq(alone.peak_flops[ISIM_BF16], 229.4e12 / 2, 1e6);
    isim_hw_rank_share(h, 1, 1, &s); /* one rank: the machine itself */
    cr_expect_float_eq(s.mem_bytes_per_s, 48e9, 1);
    cr_expect_float_eq(s.kernel_launch_s, h->kernel_launch_s, 1e-15);
    /* Llama 3.2 1B in bf16 at PP 2, batch 1: the stages run one after the other and every
     * matmul weight is read once a step, 16 layers x 60,817,408 + the tied unembedding's
     * 128256 x 2048 = 1,235,746,816 parameters, 2.4715 GB; with the KV cache of 16 tokens and
     * the element-wise traffic the decode's memory term is that over 37 GB/s, within 1%, and
     * streams the same bytes as with both ranks sharing the bandwidth. */
    isim_model *m = tu_model("llama-3.2-1b");
    isim_query q;
    isim_query_init(&q);
    q.devices = 2;
    q.tp = 1;
    q.pp = 2;
    q.batch = 1;
    q.input_tokens = 16;
    q.output_tokens = 2;
    q.weights = ISIM_BF16;
    q.kv = ISIM_BF16;
    isim_result r1, r2;
    isim_error e = {0};
    cr_assert_eq(isim_predict(m, &alone, &q, &r1, &e), ISIM_OK, "%s", e.message);
    isim_hw_rank_share(h, 2, 2, &s);
    cr_assert_eq(isim_predict(m, &s, &q, &r2, &e), ISIM_OK, "%s", e.message);
    double bytes = 1235746816.0 * 2;
    cr_expect_geq(r1.decode.t[ISIM_TERM_HBM] * 37e9, bytes * 0.999);
    cr_expect_leq(r1.decode.t[ISIM_TERM_HBM] * 37e9, bytes * 1.01);
    cr_expect(tu_close(r1.decode.t[ISIM_TERM_HBM] * 37e9, r2.decode.t[ISIM_TERM_HBM] * 24e9, 1e-9));
    isim_model_free(m);
    isim_hw_free(h);
}
