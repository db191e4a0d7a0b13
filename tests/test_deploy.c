/* The deploy fidelity against hand calculations written out here from datasheet numbers
 * (H100 SXM: 3.35 TB/s, 989.4 TFLOP/s bf16) and the profile's engine parameters
 * (efficiency 0.7 / 0.8, 8 kernels of 4 us per layer, 500 us per pass). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "tests/testutil.h"

typedef struct {
    isim_model *m, *draft;
    isim_hw *h;
    isim_query q;
    isim_result r;
} fixture;

static void setup(fixture *f, const char *model, const char *hw, double devices, double batch,
                  double in, double out)
{
    memset(f, 0, sizeof *f);
    f->m = tu_model(model);
    f->h = tu_hw(hw);
    isim_query_init(&f->q);
    f->q.devices = devices;
    f->q.batch = batch;
    f->q.input_tokens = in;
    f->q.output_tokens = out;
}

static void run(fixture *f)
{
    isim_error e = {0};
    char buf[1400];
    cr_assert_eq(isim_predict(f->m, f->h, &f->q, &f->r, &e), ISIM_OK, "%s",
                 isim_error_format(&e, buf, sizeof buf));
}

static void release(fixture *f)
{
    isim_model_free(f->m);
    isim_model_free(f->draft);
    isim_hw_free(f->h);
}

static const double H100_BW = 3350e9 * 0.8, H100_BF16 = 989.4e12 * 0.7;
static const double LAUNCH = 8 * 4e-6, OVERHEAD = 500e-6;

/* Llama 3.1 8B: every matmul weight (all but the input embedding and the norms) is read
 * once per step, plus 128 tokens of KV cache (4096 B per token per layer). */
Test(deploy, single_device_decode_reads_every_weight_once)
{
    fixture f;
    setup(&f, "llama-3.1-8b", "h100-sxm", 1, 1, 128, 1);
    run(&f);
    double matmul = 8030261248.0 - 128256.0 * 4096 - 32 * 2 * 4096.0 - 4096;
    double bytes = 2 * matmul + 32 * 128 * 4096.0;
    double want = 32 * LAUNCH + OVERHEAD + bytes / H100_BW;
    /* activations and the KV write add ~0.2% */
    cr_expect(tu_close(f.r.tpot_s, want, 0.005), "%.4f ms vs %.4f ms", f.r.tpot_s * 1e3,
              want * 1e3);
    cr_expect_eq(f.r.decode.binding, ISIM_TERM_HBM);
    cr_expect(f.r.feasible);
    cr_expect_eq(f.r.tp, 1);
    release(&f);
}

/* The element-wise kernels' bytes per token and layer of Llama 3.1 8B in bf16: two RMSNorms
 * (2 d each), two residual adds (3 d each) and SwiGLU's activation (read gate and up, write
 * their product: 3 x 14336). */
static const double LLAMA8_ELEM = 2 * (10 * 4096.0 + 3 * 14336.0);

/* Prefill of 1000 tokens is compute-bound: 2 FLOPs per weight per token, q.k and p.v over
 * a mean context of 500 tokens, and the classifier for the last token only; the
 * element-wise kernels' traffic adds to it. */
Test(deploy, prefill_is_compute_bound_and_gives_ttft)
{
    fixture f;
    setup(&f, "llama-3.1-8b", "h100-sxm", 1, 1, 1000, 1);
    run(&f);
    double layers = 32 * (4096.0 * 48 * 128 + 4096.0 * 4096 + 3 * 4096.0 * 14336);
    double gemm = 2 * 1000 * layers + 2 * 128256.0 * 4096;
    double attn = 2 * 1000 * 32 * 256 * 500.0 * 32;
    double want =
        32 * LAUNCH + OVERHEAD + (gemm + attn) / H100_BF16 + 1000 * 32 * LLAMA8_ELEM / H100_BW;
    cr_expect(tu_close(f.r.ttft_s, want, 0.002), "%.4f ms vs %.4f ms", f.r.ttft_s * 1e3,
              want * 1e3);
    cr_expect_eq(f.r.prefill.binding, ISIM_TERM_ARITHMETIC);
    release(&f);
}

/* A prefix-cache hit of 75% on a 4000-token prompt: 1000 new tokens, each attending over
 * the 3000 cached ones and half of its own (mean context 3500); the KV cache still holds
 * the whole context and decoding is unchanged. */
Test(deploy, a_prefix_cache_hit_computes_only_the_new_tokens)
{
    fixture f;
    setup(&f, "llama-3.1-8b", "h100-sxm", 1, 1, 4000, 16);
    run(&f);
    isim_result full = f.r;
    f.q.prefix_hit_rate = 0.75;
    run(&f);
    double layers = 32 * (4096.0 * 48 * 128 + 4096.0 * 4096 + 3 * 4096.0 * 14336);
    double gemm = 2 * 1000 * layers + 2 * 128256.0 * 4096;
    double attn = 2 * 1000 * 32 * 256 * 3500.0 * 32;
    double want =
        32 * LAUNCH + OVERHEAD + (gemm + attn) / H100_BF16 + 1000 * 32 * LLAMA8_ELEM / H100_BW;
    cr_expect(tu_close(f.r.ttft_s, want, 0.002), "%.4f ms vs %.4f ms", f.r.ttft_s * 1e3,
              want * 1e3);
    cr_expect_lt(f.r.ttft_s, 0.3 * full.ttft_s);
    cr_expect(tu_close(f.r.memory.kv_cache, full.memory.kv_cache, 1e-12));
    cr_expect(tu_close(f.r.tpot_s, full.tpot_s, 1e-12));
    /* the same input tokens cost less to take in */
    cr_expect_lt(f.r.cost_usd_per_mtok_input, 0.3 * full.cost_usd_per_mtok_input);
    f.q.prefix_hit_rate = 1;
    isim_error e = {0};
    cr_expect_eq(isim_predict(f.m, f.h, &f.q, &f.r, &e), ISIM_EINVAL);
    release(&f);
}

/* A cost model's device-hour price replaces the profile's: $ per M output tokens =
 * devices x price / 3600 x TPOT / batch x 1e6. */
Test(deploy, the_device_hour_price_can_be_set)
{
    fixture f;
    setup(&f, "llama-3.1-70b", "h100-sxm", 8, 32, 1024, 256);
    f.q.usd_per_device_h = 1.25;
    run(&f);
    cr_expect(
        tu_close(f.r.cost_usd_per_mtok_output, 8 * 1.25 / 3600 * f.r.tpot_s / 32 * 1e6, 1e-12));
    release(&f);
}

/* KV cache for every sequence at full context: 64 x (1024 + 1024) tokens x 327,680 B,
 * split over 8 KV heads by tp 8; weights split 8 ways. */
Test(deploy, memory_per_device_is_exact)
{
    fixture f;
    setup(&f, "llama-3.1-70b", "h100-sxm", 8, 64, 1024, 1024);
    run(&f);
    cr_expect_float_eq(f.r.memory.kv_cache, 64 * 2048 * 327680.0 / 8, 1);
    cr_expect(tu_close(f.r.memory.weights, 2 * 70553706496.0 / 8, 0.002), "%.6g",
              f.r.memory.weights);
    /* vLLM keeps 10% of the 80 GB free; 2 GB of runtime buffers */
    cr_expect_float_eq(f.r.memory.reserve, 8e9 + 2e9, 1);
    cr_expect(f.r.feasible);
    release(&f);
}

/* Two all-reduces per layer of 16 KB over 8 ranks: NCCL LL, 6.8 + 2 x 7 x 0.6 us each. */
Test(deploy, tensor_parallel_all_reduces_are_fixed_latency_at_batch_one)
{
    fixture f;
    setup(&f, "llama-3.1-70b", "h100-sxm", 8, 1, 16, 1);
    run(&f);
    double ar = 6.8e-6 + 2 * 7 * 0.6e-6;
    cr_expect(tu_close(f.r.decode.t[ISIM_TERM_FIXED], 160 * ar + 80 * LAUNCH + OVERHEAD, 1e-9),
              "%.6f ms", f.r.decode.t[ISIM_TERM_FIXED] * 1e3);
    cr_expect(
        tu_close(f.r.decode.t[ISIM_TERM_NETWORK], 160 * 2 * 7 * 16384.0 / (8 * 450e9 * 0.5), 1e-9));
    release(&f);
}

Test(deploy, infeasible_layouts_say_why)
{
    static const struct {
        const char *model, *hw;
        double devices;
        int tp, pp;
        isim_reason why;
    } cases[] = {
        {"llama-3.1-70b", "h100-sxm", 1, 0, 0, ISIM_REASON_MEMORY},
        {"llama-3.1-70b", "h100-sxm", 3, 3, 1, ISIM_REASON_TP_HEADS},
        {"llama-3.1-70b", "h100-sxm", 16, 16, 1, ISIM_REASON_TP_DOMAIN},
        {"llama-3.1-8b", "h100-sxm", 33, 1, 33, ISIM_REASON_PP_LAYERS},
        {"llama-3.1-70b", "h100-sxm", 12, 8, 0, ISIM_REASON_LAYOUT},
        {"llama-3.1-70b", "epoch-h100", 8, 0, 0, ISIM_REASON_NO_SERVING},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fixture f;
        setup(&f, cases[i].model, cases[i].hw, cases[i].devices, 1, 128, 128);
        f.q.tp = cases[i].tp;
        f.q.pp = cases[i].pp;
        run(&f);
        cr_expect(!f.r.feasible, "case %zu", i);
        cr_expect_eq(f.r.reason, cases[i].why, "case %zu: %s (%s)", i, isim_reason_name(f.r.reason),
                     f.r.reason_detail);
        release(&f);
    }
}

/* One sequence through 8 stages keeps 7 of them idle (GPipe bubble); 64 sequences in 8
 * micro-batches keep them all busy, up to the imbalance of the first and last stages. */
Test(deploy, pipeline_bubbles)
{
    fixture f;
    setup(&f, "llama-3.1-70b", "h100-sxm", 8, 1, 128, 128);
    f.q.tp = 1;
    f.q.pp = 8;
    run(&f);
    cr_expect_float_eq(f.r.pp_bubble, 7.0 / 8, 1e-9);
    f.q.batch = 64;
    run(&f);
    cr_expect_float_eq(f.r.micro_batches, 8, 1e-12);
    cr_expect_lt(f.r.pp_bubble, 0.1);
    release(&f);
}

/* Mixtral 8x7B at batch 1 reads 2 of its 8 experts per layer; at batch 64 all of them. The
 * element-wise kernels move 2 x (10 d + 2 x 3 x 14336) bytes per token and layer (norms and
 * adds, and SwiGLU in each of the token's 2 experts). */
Test(deploy, moe_reads_only_the_experts_it_routes_to)
{
    fixture f;
    setup(&f, "mixtral-8x7b", "h200", 1, 1, 16, 1);
    run(&f);
    const double BW = 4800e9 * 0.8, d = 4096, L = 32;
    double attn = L * (d * 48 * 128 + d * 4096), expert = 3 * d * 14336, head = 32000 * d;
    double elem = L * 2 * (10 * d + 2 * 3 * 14336.0);
    double want = 2 * (attn + L * 2 * expert + L * 8 * d + head) + elem;
    cr_expect(tu_close(f.r.decode.t[ISIM_TERM_HBM] * BW, want, 0.005), "%.6g vs %.6g bytes",
              f.r.decode.t[ISIM_TERM_HBM] * BW, want);
    f.q.batch = 64;
    run(&f);
    double all = 2 * (attn + L * 8 * expert * (1 - pow(0.75, 64)) + L * 8 * d + head) + 64 * elem;
    cr_expect(tu_close(f.r.decode.t[ISIM_TERM_HBM] * BW, all, 0.01));
    release(&f);
}

/* Leviathan et al. 2023: expected tokens per step (1 - a^(g+1)) / (1 - a). */
Test(deploy, speculative_decoding_speeds_up_batch_one)
{
    fixture f;
    setup(&f, "llama-3.1-70b", "h100-sxm", 8, 1, 512, 256);
    run(&f);
    double plain = f.r.tpot_s;
    f.draft = tu_model("llama-3.1-8b");
    f.q.draft = f.draft;
    f.q.spec_alpha = 0.8;
    run(&f);
    cr_expect_gt(f.r.spec_gamma, 0);
    cr_expect_float_eq(f.r.spec_tokens_per_step, (1 - pow(0.8, f.r.spec_gamma + 1)) / 0.2, 1e-12);
    cr_expect_lt(f.r.tpot_s, 0.8 * plain, "%.3f vs %.3f ms", f.r.tpot_s * 1e3, plain * 1e3);
    cr_expect(tu_close(f.r.tpot_s,
                       (f.r.spec_target.total_s + f.r.spec_gamma * f.r.spec_draft.total_s) /
                           f.r.spec_tokens_per_step,
                       1e-12));
    /* the draft's weights and cache take memory too */
    cr_expect_gt(f.r.memory.weights, 2 * 70553706496.0 / 8);
    release(&f);
}

Test(deploy, throughput_grows_and_speed_falls_with_batch)
{
    fixture f;
    setup(&f, "llama-3.1-70b", "h100-sxm", 8, 1, 1024, 1024);
    double last_tpot = 0, last_tput = 0;
    for (double b = 1; b <= 256; b *= 2) {
        f.q.batch = b;
        run(&f);
        cr_expect_geq(f.r.tpot_s, last_tpot, "batch %g", b);
        cr_expect_gt(f.r.tokens_per_s_total, last_tput, "batch %g", b);
        last_tpot = f.r.tpot_s;
        last_tput = f.r.tokens_per_s_total;
    }
    /* $ per Mtok = devices x $/h / 3600 x TPOT / batch x 1e6 */
    cr_expect(
        tu_close(f.r.cost_usd_per_mtok_output, 8 * 3.99 / 3600 * f.r.tpot_s / 256 * 1e6, 1e-12));
    cr_expect(tu_close(f.r.j_per_token_output, 8 * 700 * f.r.tpot_s / 256, 1e-12));
    release(&f);
}

Test(deploy, the_same_query_gives_the_same_bytes)
{
    fixture f;
    setup(&f, "deepseek-v3", "h200", 8, 32, 2048, 512);
    run(&f);
    isim_result first = f.r;
    run(&f);
    cr_expect(memcmp(&first, &f.r, sizeof first) == 0);
    cr_expect(f.r.feasible, "%s", f.r.reason_detail);
    cr_expect_eq(f.r.ep, 8);
    release(&f);
}

Test(deploy, fractional_devices_are_refused)
{
    fixture f;
    setup(&f, "llama-3.1-8b", "h100-sxm", 1.5, 1, 128, 1);
    isim_error e = {0};
    cr_expect_eq(isim_predict(f.m, f.h, &f.q, &f.r, &e), ISIM_EINVAL);
    cr_expect(strstr(e.message, "whole devices") != NULL, "%s", e.message);
    release(&f);
}

/* An all-to-all cannot reduce on the way: across 2 domains of 8 H100s each rank sends half
 * of a 117 MB buffer through its own 50 GB/s port. NCCL LL128 wins: 14 + 7 x 1.25 +
 * 8.5 us of latency and 1.17 ms / 0.95 of bandwidth. A point-to-point message inside a
 * domain crosses one 450 GB/s link whole (Simple wins: 28 us + 0.26 ms against LL128's
 * 15.25 us + 0.26 / 0.95 ms). */
Test(deploy, all_to_all_and_point_to_point_use_the_links_that_carry_them)
{
    isim_hw *h = tu_hw("h100-sxm");
    double lat, bw, S = 117e6;
    isim_collective_time(h, ISIM_DEPLOY, ISIM_ALL_TO_ALL, 16, 2, S, &lat, &bw);
    cr_expect(tu_close(lat, (14 + 7 * 1.25 + 8.5) * 1e-6, 1e-9), "%.3f us", lat * 1e6);
    cr_expect(tu_close(bw, S / 2 / 50e9 / 0.95, 1e-9), "%.4f ms", bw * 1e3);
    isim_collective_time(h, ISIM_DEPLOY, ISIM_P2P, 2, 1, S, &lat, &bw);
    cr_expect(tu_close(bw, S / 450e9, 1e-9), "%.4f ms", bw * 1e3);
    cr_expect(tu_close(lat, 28e-6, 1e-9));
    /* the paper's code charges the all-to-all as a halved hierarchical all-reduce */
    isim_collective_time(h, ISIM_PAPER, ISIM_ALL_TO_ALL, 16, 2, S, &lat, &bw);
    cr_expect_lt(bw, S / 2 / 50e9 / 2);
    isim_hw_free(h);
}

/* TP 16 over a 72-GPU NVLink domain and 8 KV heads: Q and O split 16 ways, K and V only 8
 * (each KV head on two ranks). bf16, per device:
 * 80 layers x (2x64x128x8192 / 16 + 2x8x128x8192 / 8 + 3x8192x28672 / 16 + 2x8192 norms)
 * + embedding and classifier 128256 x 8192 / 16 each + the final norm. */
Test(deploy, kv_projections_are_copied_once_tp_exceeds_the_kv_heads)
{
    fixture f;
    setup(&f, "llama-3.1-70b", "gb200-nvl72", 16, 1, 128, 128);
    f.q.tp = 16;
    run(&f);
    double layer = 134217728.0 / 16 + 16777216.0 / 8 + 704643072.0 / 16 + 16384;
    double want = 2 * (80 * layer + 2 * 1050673152.0 / 16 + 8192);
    cr_expect(tu_close(f.r.memory.weights, want, 1e-9), "%.6g vs %.6g", f.r.memory.weights, want);
    release(&f);
}

/* MFU is the model's FLOPs per generated token x tokens/s / (devices x peak), whatever the
 * pipeline schedule. */
Test(deploy, mfu_counts_model_flops_of_the_tokens_produced)
{
    for (int pp = 1; pp <= 4; pp *= 2) {
        fixture f;
        setup(&f, "llama-3.1-8b", "h100-sxm", pp, 64, 512, 128);
        f.q.tp = 1;
        f.q.pp = pp;
        run(&f);
        double want = isim_model_flops_per_token(f.m, 512 + 127 / 2.0) * f.r.tokens_per_s_total /
                      (pp * 989.4e12);
        cr_expect(tu_close(f.r.mfu, want, 1e-9), "pp %d: %.4f vs %.4f", pp, f.r.mfu, want);
        release(&f);
    }
}

Test(deploy, the_draft_prefills_the_prompt_too)
{
    fixture f;
    setup(&f, "llama-3.1-70b", "h100-sxm", 8, 4, 2048, 128);
    run(&f);
    double plain = f.r.ttft_s;
    f.draft = tu_model("llama-3.1-8b");
    f.q.draft = f.draft;
    run(&f);
    cr_expect_gt(f.r.ttft_s, plain * 1.05, "%.2f vs %.2f ms", f.r.ttft_s * 1e3, plain * 1e3);
    release(&f);
}

/* Attention reads the KV cache at its own fraction of the bandwidth when the profile gives
 * one (efficiency.hbm_kv, measured by infersim calibrate), else at the weights' (0.8). Llama
 * 3.1 8B, 32 sequences at 4096 tokens: 32 x 4096 x 32 layers x 4096 B of cache per step,
 * memory-bound (its q.k and p.v take 3.1 ms at 0.7 of the bf16 rate, the reads 6.4 ms). */
Test(deploy, attention_reads_the_cache_at_its_own_bandwidth)
{
    fixture f;
    setup(&f, "llama-3.1-8b", "h100-sxm", 1, 32, 4096, 1);
    run(&f);
    double kv = 32.0 * 4096 * 32 * 4096;
    cr_expect(tu_close(f.r.decode.attention_s, kv / H100_BW, 0.005), "%.4f ms vs %.4f ms",
              f.r.decode.attention_s * 1e3, kv / H100_BW * 1e3);
    double matmul = f.r.decode.matmul_s;
    f.h->eff_hbm_kv = 0.4;
    run(&f);
    cr_expect(tu_close(f.r.decode.attention_s, kv / (3350e9 * 0.4), 0.005), "%.4f ms vs %.4f ms",
              f.r.decode.attention_s * 1e3, kv / (3350e9 * 0.4) * 1e3);
    cr_expect(tu_close(f.r.decode.matmul_s, matmul, 1e-12), "the matmuls do not change");
    release(&f);
}

/* The element-wise kernels at batch 64 of Llama 3.1 8B decode: 64 x 32 x LLAMA8_ELEM bytes
 * at the bandwidth, added to the step (not hidden under the matmuls); an engine keeping
 * activations in fp32 (the CPU engine: serving.activation_bytes 4) moves twice as much. */
Test(deploy, element_wise_kernels_add_their_traffic_to_the_step)
{
    fixture f;
    setup(&f, "llama-3.1-8b", "h100-sxm", 1, 64, 128, 16);
    run(&f);
    double want = 64 * 32 * LLAMA8_ELEM / H100_BW;
    cr_expect(tu_close(f.r.decode.elementwise_s, want, 1e-9), "%.4f ms vs %.4f ms",
              f.r.decode.elementwise_s * 1e3, want * 1e3);
    cr_expect(tu_close(f.r.decode.total_s,
                       f.r.decode.t[ISIM_TERM_FIXED] + f.r.decode.t[ISIM_TERM_NETWORK] +
                           f.r.decode.matmul_s + f.r.decode.attention_s + want,
                       1e-9));
    double two = f.r.decode.elementwise_s;
    f.h->activation_bytes = 4;
    run(&f);
    cr_expect(tu_close(f.r.decode.elementwise_s, 2 * two, 1e-9));
    release(&f);
}

/* Matmul tiles (docs/model.md): the rows of a tile's share of the arithmetic, worked by hand,
 * and Llama 3.1 8B decoding 16 sequences in tiles of 12 rows with full 6 and overlap 0.3.
 * Bound by the weights' streaming either way, the step differs from one tile of 16 rows by
 * the second tile's 4 rows (costing 6) after the streaming, less 0.3 x the 4 rows it no
 * longer overlaps: 2 W (6 - 0.3 x 4) / F, W the matmul weights. */
Test(deploy, rows_past_the_first_tile_compute_after_the_weights_stream)
{
    double a, b;
    isim_matmul_tiles(16, 6, 12, &a, &b);
    cr_expect(a == 12 && b == 6, "%g %g", a, b);
    isim_matmul_tiles(25, 6, 12, &a, &b); /* 12 | 12 + max(1, 6) */
    cr_expect(a == 12 && b == 18, "%g %g", a, b);
    isim_matmul_tiles(24, 0, 12, &a, &b);
    cr_expect(a == 12 && b == 12, "%g %g", a, b);
    isim_matmul_tiles(5, 6, 12, &a, &b); /* the first tile, under the streaming: its rows */
    cr_expect(a == 5 && b == 0, "%g %g", a, b);
    isim_matmul_tiles(5, 6, 0, &a, &b); /* one tile (a GPU's), partly filled: full */
    cr_expect(a == 6 && b == 0, "%g %g", a, b);
    isim_matmul_tiles(40, 6, 0, &a, &b); /* no tiles: all rows under the streaming */
    cr_expect(a == 40 && b == 0, "%g %g", a, b);
    isim_matmul_tiles(0, 6, 12, &a, &b);
    cr_expect(a == 0 && b == 0, "%g %g", a, b);
    cr_expect_float_eq(isim_overlap_time(2, 5, 0.3, 1), 5 + 0.6 + 1, 1e-12);

    fixture f;
    setup(&f, "llama-3.1-8b", "h100-sxm", 1, 16, 128, 16);
    f.h->eff_flops_full_rows = 6;
    f.h->eff_overlap = 0.3;
    run(&f);
    double one = f.r.decode.matmul_s;
    f.h->eff_tile_rows = 12;
    run(&f);
    double W = 8030261248.0 - 128256.0 * 4096 - 32 * 2 * 4096.0 - 4096;
    double want = 2 * W * (6 - 0.3 * 4) / H100_BF16;
    cr_expect(tu_close(f.r.decode.matmul_s - one, want, 1e-9), "%.6f ms vs %.6f ms",
              (f.r.decode.matmul_s - one) * 1e3, want * 1e3);
    cr_expect_eq(f.r.decode.binding, ISIM_TERM_HBM);
    release(&f);
}

/* A step of the stepwise pipeline schedule (ISIM_PP_STEPWISE, the CPU engine's): Llama 3.1
 * 8B over 2 stages of 16 layers, 2 sequences in 2 micro-batches of one row. Stage 0 runs
 * micro-batch 0, then both stages run at once, then stage 1 runs micro-batch 1: three
 * stage-times, each 16 layers' weights (2 bytes a parameter) and 128
 * tokens of KV cache, then the classifier once (128256 x 4096 weights), then the pass's
 * overhead. Interleaved (a serving engine keeping both micro-batches in flight across
 * steps): two cycles of the last stage, the classifier in each. */
static const double LLAMA8_LAYER =
    4096.0 * 48 * 128 + 4096.0 * 4096 + 3 * 4096.0 * 14336; /* matmul weights of a layer */
static const double LLAMA8_CLS = 128256.0 * 4096;
/* bytes one stage of 16 layers streams per micro-batch at 128 tokens of context: its
 * weights and its KV cache */
static const double LLAMA8_STAGE_BYTES = 16 * (2 * LLAMA8_LAYER + 128 * 4096.0);

/* Llama 3.1 8B on 2 H100s as 2 pipeline stages (tp 1) */
static void setup_pp2(fixture *f, double batch, double in, isim_pp_schedule schedule)
{
    setup(f, "llama-3.1-8b", "h100-sxm", 2, batch, in, 1);
    f->q.tp = 1;
    f->q.pp = 2;
    f->q.pp_schedule = schedule;
}

Test(deploy, a_stepwise_pipeline_fills_and_drains_every_step)
{
    fixture f;
    setup_pp2(&f, 2, 128, ISIM_PP_INTERLEAVED);
    run(&f);
    double stage = LLAMA8_STAGE_BYTES / H100_BW + 16 * LAUNCH;
    double cls = 2 * LLAMA8_CLS / H100_BW;
    double interleaved = f.r.tpot_s;
    cr_expect(tu_close(interleaved, 2 * (stage + cls) + OVERHEAD, 0.01), "%.4f ms vs %.4f ms",
              interleaved * 1e3, (2 * (stage + cls) + OVERHEAD) * 1e3);
    f.q.pp_schedule = ISIM_PP_STEPWISE;
    run(&f);
    double want = 3 * stage + cls + OVERHEAD;
    cr_expect(tu_close(f.r.tpot_s, want, 0.01), "%.4f ms vs %.4f ms", f.r.tpot_s * 1e3, want * 1e3);
    cr_expect_float_eq(f.r.micro_batches, 2, 1e-12);
    /* each stage busy 2 of the 3 stage-times, the last also for the classifier */
    double bubble = 1 - (4 * stage + cls) / (2 * (3 * stage + cls));
    cr_expect(tu_close(f.r.pp_bubble, bubble, 0.01), "%g vs %g", f.r.pp_bubble, bubble);
    /* one stage: the schedules are the same */
    f.q.devices = 1;
    f.q.pp = 1;
    run(&f);
    double one = f.r.tpot_s;
    f.q.pp_schedule = ISIM_PP_INTERLEAVED;
    run(&f);
    cr_expect_float_eq(f.r.tpot_s, one, 1e-15);
    release(&f);
}

/* The same step on two ranks sharing one machine's 2.68 TB/s (isim_hw_rank_share): the
 * fill and the drain stream alone at all of it, the middle at half each, so the middle
 * stage-time's traffic takes twice as long; the classifier runs alone. Rank shares start
 * no tasks on other threads (no launch time). */
Test(deploy, stages_sharing_a_machine_split_its_bandwidth_only_while_both_stream)
{
    fixture f;
    setup_pp2(&f, 2, 128, ISIM_PP_STEPWISE);
    isim_hw share;
    isim_hw_rank_share(f.h, 2, 1, &share);
    cr_expect_float_eq(share.mem_machine_bytes_per_s, f.h->mem_bytes_per_s, 1);
    isim_error e = {0};
    cr_assert_eq(isim_predict(f.m, &share, &f.q, &f.r, &e), ISIM_OK, "%s", e.message);
    double bytes = LLAMA8_STAGE_BYTES;
    double want = 2 * bytes / H100_BW + bytes / (H100_BW / 2) + 2 * LLAMA8_CLS / H100_BW + OVERHEAD;
    cr_expect(tu_close(f.r.tpot_s, want, 0.01), "%.4f ms vs %.4f ms", f.r.tpot_s * 1e3, want * 1e3);
    release(&f);
}

/* The stepwise prefill of a 1000-token prompt over 2 stages: 2 micro-batches of 500 tokens
 * (by token: one sequence), three stage-times of 16 layers' arithmetic on 500 tokens each
 * (q.k and p.v at the mean context of 500, the element-wise kernels' traffic besides), then
 * the classifier for the prompt's last token (compute-bound prefill; the classifier's weights
 * stream). */
Test(deploy, a_stepwise_pipeline_splits_a_prompt_in_micro_batches)
{
    fixture f;
    setup_pp2(&f, 1, 1000, ISIM_PP_STEPWISE);
    run(&f);
    double gemm = 2 * 500 * 16 * LLAMA8_LAYER, attn = 2 * 500 * 32 * 256 * 500.0 * 16;
    double stage = (gemm + attn) / H100_BF16 + 500 * 16 * LLAMA8_ELEM / H100_BW + 16 * LAUNCH;
    double want = 3 * stage + 2 * LLAMA8_CLS / H100_BW + OVERHEAD;
    cr_expect(tu_close(f.r.ttft_s, want, 0.01), "%.4f ms vs %.4f ms", f.r.ttft_s * 1e3, want * 1e3);
    release(&f);
}

/* A prompt and an answer longer together than the model's context fit no layout, whatever
 * the memory; at exactly max_context they fit. The draft of speculative decoding reads the
 * same sequence, so its context bounds it too. */
Test(deploy, a_context_longer_than_the_models_is_infeasible_with_its_numbers)
{
    static const struct {
        const char *model, *draft;
        double in, out;
        bool feasible;
        const char *detail;
    } cases[] = {
        {"llama-3.1-8b", NULL, 1000000, 1000, false,
         "1000000 in + 1000 out = 1001000 tokens of context exceed Llama 3.1 8B's 131072"},
        {"llama-3.1-8b", NULL, 130072, 1000, true, ""},
        {"llama-3.1-8b", NULL, 130073, 1000, false,
         "130073 in + 1000 out = 131073 tokens of context exceed Llama 3.1 8B's 131072"},
        {"llama-2-7b", NULL, 0, 4097, false,
         "0 in + 4097 out = 4097 tokens of context exceed Llama 2 7B's 4096"},
        {"llama-3.1-70b", "llama-3.1-8b", 131000, 73, false,
         "131000 in + 73 out = 131073 tokens of context exceed Llama 3.1 70B's 131072"},
        {"llama-3.1-8b", "stories260k", 512, 1, false,
         "512 in + 1 out = 513 tokens of context exceed the draft stories260K's 512"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fixture f;
        setup(&f, cases[i].model, "h100-sxm", 8, 1, cases[i].in, cases[i].out);
        if (cases[i].draft) {
            f.draft = tu_model(cases[i].draft);
            f.q.draft = f.draft;
        }
        run(&f);
        cr_expect_eq(f.r.feasible, cases[i].feasible, "case %zu: %s", i, f.r.reason_detail);
        cr_expect_eq(f.r.reason, cases[i].feasible ? ISIM_REASON_NONE : ISIM_REASON_CONTEXT,
                     "case %zu: %s", i, isim_reason_name(f.r.reason));
        cr_expect_str_eq(f.r.reason_detail, cases[i].detail, "case %zu", i);
        release(&f);
    }
}

/* A query out of range is an error before the context makes it infeasible. */
Test(deploy, a_bad_query_is_refused_before_its_context_is_judged)
{
    fixture f;
    setup(&f, "llama-3.1-8b", "h100-sxm", 1.5, 1, 1000000, 1000);
    isim_error e = {0};
    cr_expect_eq(isim_predict(f.m, f.h, &f.q, &f.r, &e), ISIM_EINVAL);
    cr_expect(strstr(e.message, "whole devices") != NULL, "%s", e.message);
    release(&f);
}
