/* Every number of a hardware profile and of a model has a plausible range (docs/formats.md,
 * "Plausible ranges"). Each bound is proven on a shipped file with that one value replaced:
 * at the bound the file loads, just past it the file is refused with the exact message at
 * the value's line and column. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"

typedef struct {
    const char *base;  /* the shipped file: an id of hw-profiles/, or of models/ when kinds is
                          NULL */
    const char *kinds; /* the kinds of device the bound holds for, space-separated */
    const char *path;  /* the number's key path, as messages name it */
    const char *at;    /* the bound */
    const char *past;  /* the nearest value past it that the message prints apart (%g) */
    const char *range; /* the range as the message prints it */
    const char *also;  /* "path=value" set first, so that only the bound decides; or NULL */
} bound;

/* kinds */
#define ALL "gpu tpu lpu cpu accelerator"
#define CHIPS "gpu tpu lpu"
#define GPU "gpu"

/* clang-format off */
static const bound HW[] = {
    /* the peak rates: chips by precision, CPU machines below them all, wafer-scale above */
    {"h100-sxm", "gpu tpu lpu cpu", "compute.fp32_tflops", "0.001", "0.000999", "[0.001, 10000]", NULL},
    {"h100-sxm", "gpu tpu lpu cpu", "compute.fp32_tflops", "10000", "10000.1", "[0.001, 10000]", NULL},
    {"h100-sxm", "accelerator", "compute.fp32_tflops", "0.001", "0.000999", "[0.001, 1e+06]", NULL},
    {"h100-sxm", "accelerator", "compute.fp32_tflops", "1e+06", "1.00001e+06", "[0.001, 1e+06]", NULL},
    {"h100-sxm", CHIPS, "compute.bf16_tflops", "0.001", "0.000999", "[0.001, 50000]", NULL},
    {"h100-sxm", CHIPS, "compute.bf16_tflops", "50000", "50000.1", "[0.001, 50000]", NULL},
    {"h100-sxm", "cpu", "compute.bf16_tflops", "0.001", "0.000999", "[0.001, 10000]", NULL},
    {"h100-sxm", "cpu", "compute.bf16_tflops", "10000", "10000.1", "[0.001, 10000]", NULL},
    {"h100-sxm", "accelerator", "compute.bf16_tflops", "0.001", "0.000999", "[0.001, 1e+06]", NULL},
    {"h100-sxm", "accelerator", "compute.bf16_tflops", "1e+06", "1.00001e+06", "[0.001, 1e+06]", NULL},
    {"h100-sxm", CHIPS, "compute.fp16_tflops", "0.001", "0.000999", "[0.001, 50000]", NULL},
    {"h100-sxm", CHIPS, "compute.fp16_tflops", "50000", "50000.1", "[0.001, 50000]", NULL},
    {"h100-sxm", "cpu", "compute.fp16_tflops", "0.001", "0.000999", "[0.001, 10000]", NULL},
    {"h100-sxm", "cpu", "compute.fp16_tflops", "10000", "10000.1", "[0.001, 10000]", NULL},
    {"h100-sxm", "accelerator", "compute.fp16_tflops", "0.001", "0.000999", "[0.001, 1e+06]", NULL},
    {"h100-sxm", "accelerator", "compute.fp16_tflops", "1e+06", "1.00001e+06", "[0.001, 1e+06]", NULL},
    {"h100-sxm", CHIPS, "compute.fp8_tflops", "0.001", "0.000999", "[0.001, 100000]", NULL},
    {"h100-sxm", CHIPS, "compute.fp8_tflops", "100000", "100001", "[0.001, 100000]", NULL},
    {"h100-sxm", "cpu", "compute.fp8_tflops", "0.001", "0.000999", "[0.001, 10000]", NULL},
    {"h100-sxm", "cpu", "compute.fp8_tflops", "10000", "10000.1", "[0.001, 10000]", NULL},
    {"h100-sxm", "accelerator", "compute.fp8_tflops", "0.001", "0.000999", "[0.001, 1e+06]", NULL},
    {"h100-sxm", "accelerator", "compute.fp8_tflops", "1e+06", "1.00001e+06", "[0.001, 1e+06]", NULL},
    {"h100-sxm", CHIPS, "compute.int8_tops", "0.001", "0.000999", "[0.001, 100000]", NULL},
    {"h100-sxm", CHIPS, "compute.int8_tops", "100000", "100001", "[0.001, 100000]", NULL},
    {"h100-sxm", "cpu", "compute.int8_tops", "0.001", "0.000999", "[0.001, 10000]", NULL},
    {"h100-sxm", "cpu", "compute.int8_tops", "10000", "10000.1", "[0.001, 10000]", NULL},
    {"h100-sxm", "accelerator", "compute.int8_tops", "0.001", "0.000999", "[0.001, 1e+06]", NULL},
    {"h100-sxm", "accelerator", "compute.int8_tops", "1e+06", "1.00001e+06", "[0.001, 1e+06]", NULL},
    {"h100-sxm", CHIPS, "compute.fp4_tflops", "0.001", "0.000999", "[0.001, 200000]", NULL},
    {"h100-sxm", CHIPS, "compute.fp4_tflops", "200000", "200001", "[0.001, 200000]", NULL},
    {"h100-sxm", "cpu", "compute.fp4_tflops", "0.001", "0.000999", "[0.001, 10000]", NULL},
    {"h100-sxm", "cpu", "compute.fp4_tflops", "10000", "10000.1", "[0.001, 10000]", NULL},
    {"h100-sxm", "accelerator", "compute.fp4_tflops", "0.001", "0.000999", "[0.001, 1e+06]", NULL},
    {"h100-sxm", "accelerator", "compute.fp4_tflops", "1e+06", "1.00001e+06", "[0.001, 1e+06]", NULL},
    {"h100-sxm", CHIPS, "compute.int4_tops", "0.001", "0.000999", "[0.001, 200000]", NULL},
    {"h100-sxm", CHIPS, "compute.int4_tops", "200000", "200001", "[0.001, 200000]", NULL},
    {"h100-sxm", "cpu", "compute.int4_tops", "0.001", "0.000999", "[0.001, 10000]", NULL},
    {"h100-sxm", "cpu", "compute.int4_tops", "10000", "10000.1", "[0.001, 10000]", NULL},
    {"h100-sxm", "accelerator", "compute.int4_tops", "0.001", "0.000999", "[0.001, 1e+06]", NULL},
    {"h100-sxm", "accelerator", "compute.int4_tops", "1e+06", "1.00001e+06", "[0.001, 1e+06]", NULL},
    /* fractions and row counts, the same for every kind */
    {"h100-sxm", GPU, "efficiency.flops", "0.01", "0.00999", "[0.01, 1]", NULL},
    {"h100-sxm", GPU, "efficiency.flops", "1", "1.00001", "[0.01, 1]", NULL},
    {"h100-sxm", GPU, "efficiency.hbm", "0.01", "0.00999", "[0.01, 1]", NULL},
    {"h100-sxm", GPU, "efficiency.hbm", "1", "1.00001", "[0.01, 1]", NULL},
    {"h100-sxm", GPU, "efficiency.flops_full_rows", "0", "-1e-06", "[0, 65536]", NULL},
    {"h100-sxm", GPU, "efficiency.flops_full_rows", "65536", "65536.1", "[0, 65536]", NULL},
    {"h100-sxm", GPU, "efficiency.attention", "0.001", "0.000999", "[0.001, 1]", NULL},
    {"h100-sxm", GPU, "efficiency.attention", "1", "1.00001", "[0.001, 1]", NULL},
    {"h100-sxm", GPU, "efficiency.overlap", "0", "-1e-06", "[0, 1]", NULL},
    {"h100-sxm", GPU, "efficiency.overlap", "1", "1.00001", "[0, 1]", NULL},
    {"h100-sxm", GPU, "efficiency.tile_rows", "0", "-1e-06", "[0, 65536]", NULL},
    {"h100-sxm", GPU, "efficiency.tile_rows", "65536", "65536.1", "[0, 65536]", NULL},
    {"h100-sxm", GPU, "efficiency.hbm_fp4", "0.01", "0.00999", "[0.01, 1]", NULL},
    {"h100-sxm", GPU, "efficiency.hbm_fp4", "1", "1.00001", "[0.01, 1]", NULL},
    {"h100-sxm", GPU, "efficiency.hbm_int4", "0.01", "0.00999", "[0.01, 1]", NULL},
    {"h100-sxm", GPU, "efficiency.hbm_int4", "1", "1.00001", "[0.01, 1]", NULL},
    {"h100-sxm", GPU, "efficiency.hbm_experts", "0.01", "0.00999", "[0.01, 1]", NULL},
    {"h100-sxm", GPU, "efficiency.hbm_experts", "1", "1.00001", "[0.01, 1]", NULL},
    {"h100-sxm", GPU, "efficiency.hbm_kv", "0.01", "0.00999", "[0.01, 1]", NULL},
    {"h100-sxm", GPU, "efficiency.hbm_kv", "1", "1.00001", "[0.01, 1]", NULL},
    /* memory: HBM packages, on-chip SRAM, a CPU machine's DRAM (no serving reserve here) */
    {"epoch-h100", "gpu tpu lpu accelerator", "memory.capacity_gb", "0.001", "0.000999", "[0.001, 4096]", NULL},
    {"epoch-h100", "gpu tpu lpu accelerator", "memory.capacity_gb", "4096", "4096.01", "[0.001, 4096]", NULL},
    {"epoch-h100", "cpu", "memory.capacity_gb", "0.001", "0.000999", "[0.001, 100000]", NULL},
    {"epoch-h100", "cpu", "memory.capacity_gb", "100000", "100001", "[0.001, 100000]", NULL},
    {"h100-sxm", "gpu tpu", "memory.bandwidth_gbps", "0.1", "0.0999", "[0.1, 100000]", NULL},
    {"h100-sxm", "gpu tpu", "memory.bandwidth_gbps", "100000", "100001", "[0.1, 100000]", NULL},
    {"h100-sxm", "lpu", "memory.bandwidth_gbps", "0.1", "0.0999", "[0.1, 1e+06]", NULL},
    {"h100-sxm", "lpu", "memory.bandwidth_gbps", "1e+06", "1.00001e+06", "[0.1, 1e+06]", NULL},
    {"h100-sxm", "cpu", "memory.bandwidth_gbps", "0.1", "0.0999", "[0.1, 20000]", NULL},
    {"h100-sxm", "cpu", "memory.bandwidth_gbps", "20000", "20000.1", "[0.1, 20000]", NULL},
    {"h100-sxm", "accelerator", "memory.bandwidth_gbps", "0.1", "0.0999", "[0.1, 1e+08]", NULL},
    {"h100-sxm", "accelerator", "memory.bandwidth_gbps", "1e+08", "1.00001e+08", "[0.1, 1e+08]", NULL},
    {"h100-sxm", ALL, "memory.thread_bandwidth_gbps", "0.1", "0.0999", "[0.1, 1000]", NULL},
    {"h100-sxm", ALL, "memory.thread_bandwidth_gbps", "1000", "1000.01", "[0.1, 1000]", NULL},
    /* the links: a domain of one device, so that either tier may take any value */
    {"h100-sxm", ALL, "scale_up.domain_size", "1", "0", "[1, 65536]", NULL},
    {"h100-sxm", ALL, "scale_up.domain_size", "65536", "65537", "[1, 65536]", NULL},
    {"cpu-server", "gpu tpu lpu accelerator", "scale_up.bandwidth_gbps", "0.01", "0.00999", "[0.01, 10000]", NULL},
    {"cpu-server", "gpu tpu lpu accelerator", "scale_up.bandwidth_gbps", "10000", "10000.1", "[0.01, 10000]", NULL},
    {"cpu-server", "cpu", "scale_up.bandwidth_gbps", "0.01", "0.00999", "[0.01, 20000]", NULL},
    {"cpu-server", "cpu", "scale_up.bandwidth_gbps", "20000", "20000.1", "[0.01, 20000]", NULL},
    {"cpu-server", "gpu tpu lpu accelerator", "scale_out.bandwidth_gbps", "0.01", "0.00999", "[0.01, 10000]", NULL},
    {"cpu-server", "gpu tpu lpu accelerator", "scale_out.bandwidth_gbps", "10000", "10000.1", "[0.01, 10000]", NULL},
    {"cpu-server", "cpu", "scale_out.bandwidth_gbps", "0.01", "0.00999", "[0.01, 20000]", NULL},
    {"cpu-server", "cpu", "scale_out.bandwidth_gbps", "20000", "20000.1", "[0.01, 20000]", NULL},
    {"cpu-server", GPU, "collectives.per_rank_us", "0", "-1e-06", "[0, 10000]", NULL},
    {"cpu-server", GPU, "collectives.per_rank_us", "10000", "10000.1", "[0, 10000]", NULL},
    {"h100-sxm", GPU, "collectives.protocols.LL.base_us", "0", "-1e-06", "[0, 10000]", NULL},
    {"h100-sxm", GPU, "collectives.protocols.LL.base_us", "10000", "10000.1", "[0, 10000]", NULL},
    {"h100-sxm", GPU, "collectives.protocols.LL128.per_rank_us", "0", "-1e-06", "[0, 10000]", NULL},
    {"h100-sxm", GPU, "collectives.protocols.LL128.per_rank_us", "10000", "10000.1", "[0, 10000]", NULL},
    {"h100-sxm", GPU, "collectives.protocols.Simple.per_node_log2_us", "0", "-1e-06", "[0, 10000]", NULL},
    {"h100-sxm", GPU, "collectives.protocols.Simple.per_node_log2_us", "10000", "10000.1", "[0, 10000]", NULL},
    {"h100-sxm", GPU, "collectives.protocols.LL.bandwidth_factor", "0.01", "0.00999", "[0.01, 1]", NULL},
    {"h100-sxm", GPU, "collectives.protocols.LL.bandwidth_factor", "1", "1.00001", "[0.01, 1]", NULL},
    {"h100-sxm", GPU, "kernel.launch_us", "0", "-1e-06", "[0, 10000]", NULL},
    {"h100-sxm", GPU, "kernel.launch_us", "10000", "10000.1", "[0, 10000]", NULL},
    /* power and price: a chip, a CPU machine, a wafer-scale system */
    {"h100-sxm", CHIPS, "power.tdp_w", "1", "0.99999", "[1, 10000]", NULL},
    {"h100-sxm", CHIPS, "power.tdp_w", "10000", "10000.1", "[1, 10000]", NULL},
    {"h100-sxm", "cpu accelerator", "power.tdp_w", "1", "0.99999", "[1, 50000]", NULL},
    {"h100-sxm", "cpu accelerator", "power.tdp_w", "50000", "50000.1", "[1, 50000]", NULL},
    {"h100-sxm", CHIPS, "price.cloud_usd_per_h", "0.001", "0.000999", "[0.001, 50]", NULL},
    {"h100-sxm", CHIPS, "price.cloud_usd_per_h", "50", "50.0001", "[0.001, 50]", NULL},
    {"h100-sxm", "cpu", "price.cloud_usd_per_h", "0.001", "0.000999", "[0.001, 1000]", NULL},
    {"h100-sxm", "cpu", "price.cloud_usd_per_h", "1000", "1000.01", "[0.001, 1000]", NULL},
    {"h100-sxm", "accelerator", "price.cloud_usd_per_h", "0.001", "0.000999", "[0.001, 500]", NULL},
    {"h100-sxm", "accelerator", "price.cloud_usd_per_h", "500", "500.001", "[0.001, 500]", NULL},
    {"h100-sxm", CHIPS, "price.purchase_usd", "1", "0.99999", "[1, 500000]", NULL},
    {"h100-sxm", CHIPS, "price.purchase_usd", "500000", "500001", "[1, 500000]", NULL},
    {"h100-sxm", "cpu accelerator", "price.purchase_usd", "1", "0.99999", "[1, 1e+07]", NULL},
    {"h100-sxm", "cpu accelerator", "price.purchase_usd", "1e+07", "1.00001e+07", "[1, 1e+07]", NULL},
    {"h100-sxm", GPU, "price.life_years", "0.5", "0.49999", "[0.5, 15]", NULL},
    {"h100-sxm", GPU, "price.life_years", "15", "15.0001", "[0.5, 15]", NULL},
    /* the serving engine (runtime_reserve_gb's maximum is the check against capacity) */
    {"h100-sxm", GPU, "serving.memory_utilization", "0.05", "0.04999", "[0.05, 1]", NULL},
    {"h100-sxm", GPU, "serving.memory_utilization", "1", "1.00001", "[0.05, 1]", NULL},
    {"h100-sxm", "gpu tpu lpu accelerator", "serving.runtime_reserve_gb", "0", "-1e-06", "[0, 4096]", NULL},
    {"h100-sxm", "cpu", "serving.runtime_reserve_gb", "0", "-1e-06", "[0, 100000]", NULL},
    {"h100-sxm", GPU, "serving.step_overhead_us", "0", "-1e-06", "[0, 100000]", NULL},
    {"h100-sxm", GPU, "serving.step_overhead_us", "100000", "100001", "[0, 100000]", NULL},
    {"h100-sxm", GPU, "serving.kernels_per_layer", "0", "-1e-06", "[0, 1000]", NULL},
    {"h100-sxm", GPU, "serving.kernels_per_layer", "1000", "1000.01", "[0, 1000]", NULL},
    {"h100-sxm", GPU, "serving.prefill_chunk_tokens", "1", "0.99999", "[1, 1e+07]", NULL},
    {"h100-sxm", GPU, "serving.prefill_chunk_tokens", "1e+07", "1.00001e+07", "[1, 1e+07]", NULL},
    {"h100-sxm", GPU, "serving.max_running_sequences", "1", "0.5", "[1, 1e+06]", NULL},
    {"h100-sxm", GPU, "serving.max_running_sequences", "1e+06", "1.00001e+06", "[1, 1e+06]", NULL},
    {"h100-sxm", GPU, "serving.request_overhead_us", "0", "-1e-06", "[0, 1e+07]", NULL},
    {"h100-sxm", GPU, "serving.request_overhead_us", "1e+07", "1.00001e+07", "[0, 1e+07]", NULL},
    {"h100-sxm", GPU, "serving.activation_bytes", "1", "0.99999", "[1, 8]", NULL},
    {"h100-sxm", GPU, "serving.activation_bytes", "8", "8.00001", "[1, 8]", NULL},
    /* fitted values: the profile's own ranges, and the statistics of the fit */
    {"h100-sxm", GPU, "fitted.backends.all.flops", "0.01", "0.00999", "[0.01, 1]", NULL},
    {"h100-sxm", GPU, "fitted.backends.all.flops", "1", "1.00001", "[0.01, 1]", NULL},
    {"h100-sxm", GPU, "fitted.backends.all.hbm", "0.01", "0.00999", "[0.01, 1]", NULL},
    {"h100-sxm", GPU, "fitted.backends.all.hbm", "1", "1.00001", "[0.01, 1]", NULL},
    {"h100-sxm", GPU, "fitted.backends.all.step_overhead_us", "0", "-1e-06", "[0, 100000]", NULL},
    {"h100-sxm", GPU, "fitted.backends.all.step_overhead_us", "100000", "100001", "[0, 100000]", NULL},
    {"h100-sxm", GPU, "fitted.backends.all.collective_latency_scale", "0.001", "0.000999", "[0.001, 1000]", NULL},
    {"h100-sxm", GPU, "fitted.backends.all.collective_latency_scale", "1000", "1000.01", "[0.001, 1000]", NULL},
    {"h100-sxm", GPU, "fitted.backends.all.request_overhead_us", "0", "-1e-06", "[0, 1e+07]", NULL},
    {"h100-sxm", GPU, "fitted.backends.all.request_overhead_us", "1e+07", "1.00001e+07", "[0, 1e+07]", NULL},
    {"h100-sxm", GPU, "fitted.backends.all.kernel_launch_us", "0", "-1e-06", "[0, 10000]", NULL},
    {"h100-sxm", GPU, "fitted.backends.all.kernel_launch_us", "10000", "10000.1", "[0, 10000]", NULL},
    {"h100-sxm", GPU, "fitted.backends.all.flops_full_rows", "0", "-1e-06", "[0, 65536]", NULL},
    {"h100-sxm", GPU, "fitted.backends.all.flops_full_rows", "65536", "65536.1", "[0, 65536]", NULL},
    {"h100-sxm", GPU, "fitted.backends.all.hbm_fp4", "0.01", "0.00999", "[0.01, 1]", NULL},
    {"h100-sxm", GPU, "fitted.backends.all.hbm_fp4", "1", "1.00001", "[0.01, 1]", NULL},
    {"h100-sxm", GPU, "fitted.backends.all.hbm_int4", "0.01", "0.00999", "[0.01, 1]", NULL},
    {"h100-sxm", GPU, "fitted.backends.all.hbm_int4", "1", "1.00001", "[0.01, 1]", NULL},
    {"h100-sxm", GPU, "fitted.backends.all.hbm_experts", "0.01", "0.00999", "[0.01, 1]", NULL},
    {"h100-sxm", GPU, "fitted.backends.all.hbm_experts", "1", "1.00001", "[0.01, 1]", NULL},
    {"h100-sxm", GPU, "fitted.backends.all.lockstep", "0", "-1e-06", "[0, 1]", NULL},
    {"h100-sxm", GPU, "fitted.backends.all.lockstep", "1", "1.00001", "[0, 1]", NULL},
    {"h100-sxm", GPU, "fitted.backends.all.all_to_all_latency_scale", "0.001", "0.000999", "[0.001, 1000]", NULL},
    {"h100-sxm", GPU, "fitted.backends.all.all_to_all_latency_scale", "1000", "1000.01", "[0.001, 1000]", NULL},
    {"h100-sxm", GPU, "fitted.backends.all.train_rows", "0", "-1e-06", "[0, 1e+09]", NULL},
    {"h100-sxm", GPU, "fitted.backends.all.train_rows", "1e+09", "1.00001e+09", "[0, 1e+09]", NULL},
    {"h100-sxm", GPU, "fitted.backends.vllm.heldout_rows", "0", "-1e-06", "[0, 1e+09]", NULL},
    {"h100-sxm", GPU, "fitted.backends.vllm.heldout_rows", "1e+09", "1.00001e+09", "[0, 1e+09]", NULL},
    {"h100-sxm", GPU, "fitted.backends.vllm.heldout_tpot_median_abs_pct", "0", "-1e-06", "[0, 1e+09]", NULL},
    {"h100-sxm", GPU, "fitted.backends.vllm.heldout_tpot_median_abs_pct", "1e+09", "1.00001e+09", "[0, 1e+09]", NULL},
    {"h100-sxm", GPU, "fitted.backends.vllm.heldout_tpot_p90_abs_pct", "0", "-1e-06", "[0, 1e+09]", NULL},
    {"h100-sxm", GPU, "fitted.backends.vllm.heldout_tpot_p90_abs_pct", "1e+09", "1.00001e+09", "[0, 1e+09]", NULL},
};

static const bound MODELS[] = {
    {"llama-3.1-8b", NULL, "architecture.d_model", "1", "0", "[1, 65536]", NULL},
    {"llama-3.1-8b", NULL, "architecture.d_model", "65536", "65537", "[1, 65536]", NULL},
    {"llama-3.1-8b", NULL, "architecture.n_layers", "1", "0", "[1, 2048]", NULL},
    {"llama-3.1-8b", NULL, "architecture.n_layers", "2048", "2049", "[1, 2048]", NULL},
    {"llama-3.1-8b", NULL, "architecture.n_heads", "1", "0", "[1, 1024]", "architecture.n_kv_heads=1"},
    {"llama-3.1-8b", NULL, "architecture.n_heads", "1024", "1025", "[1, 1024]", NULL},
    {"llama-3.1-8b", NULL, "architecture.n_kv_heads", "1", "0", "[1, 1024]", NULL},
    {"llama-3.1-8b", NULL, "architecture.n_kv_heads", "1024", "1025", "[1, 1024]", "architecture.n_heads=1024"},
    {"llama-3.1-8b", NULL, "architecture.head_dim", "1", "0", "[1, 1024]", NULL},
    {"llama-3.1-8b", NULL, "architecture.head_dim", "1024", "1025", "[1, 1024]", NULL},
    {"llama-3.1-8b", NULL, "architecture.d_ff", "1", "0", "[1, 262144]", NULL},
    {"llama-3.1-8b", NULL, "architecture.d_ff", "262144", "262145", "[1, 262144]", NULL},
    {"llama-3.1-8b", NULL, "architecture.vocab", "1", "0", "[1, 4e+06]", NULL},
    {"llama-3.1-8b", NULL, "architecture.vocab", "4e+06", "4.00004e+06", "[1, 4e+06]", NULL},
    {"llama-3.1-8b", NULL, "architecture.max_context", "1", "0", "[1, 1e+09]", NULL},
    {"llama-3.1-8b", NULL, "architecture.max_context", "1e+09", "1.00001e+09", "[1, 1e+09]", NULL},
    {"llama-3.1-8b", NULL, "architecture.rope_theta", "1", "0.99999", "[1, 1e+12]", NULL},
    {"llama-3.1-8b", NULL, "architecture.rope_theta", "1e+12", "1.00001e+12", "[1, 1e+12]", NULL},
    {"llama-3.1-8b", NULL, "architecture.norm_eps", "1e-12", "9.9999e-13", "[1e-12, 0.001]", NULL},
    {"llama-3.1-8b", NULL, "architecture.norm_eps", "0.001", "0.00100001", "[1e-12, 0.001]", NULL},
    {"deepseek-v3", NULL, "moe.n_experts", "1", "0", "[1, 16384]", "moe.n_active_experts=1"},
    {"deepseek-v3", NULL, "moe.n_experts", "16384", "16385", "[1, 16384]", NULL},
    {"deepseek-v3", NULL, "moe.n_active_experts", "1", "0", "[1, 16384]", NULL},
    {"deepseek-v3", NULL, "moe.n_active_experts", "16384", "16385", "[1, 16384]", "moe.n_experts=16384"},
    {"deepseek-v3", NULL, "moe.n_shared_experts", "0", "-1", "[0, 64]", NULL},
    {"deepseek-v3", NULL, "moe.n_shared_experts", "64", "65", "[0, 64]", NULL},
    {"deepseek-v3", NULL, "moe.expert_d_ff", "1", "0", "[1, 262144]", NULL},
    {"deepseek-v3", NULL, "moe.expert_d_ff", "262144", "262145", "[1, 262144]", NULL},
    {"deepseek-v3", NULL, "moe.shared_expert_d_ff", "0", "-1", "[0, 262144]", "moe.n_shared_experts=0"},
    {"deepseek-v3", NULL, "moe.shared_expert_d_ff", "262144", "262145", "[0, 262144]", NULL},
    {"deepseek-v3", NULL, "moe.first_dense_layers", "0", "-1", "[0, 2047]", NULL},
    {"deepseek-v3", NULL, "moe.first_dense_layers", "2047", "2048", "[0, 2047]", "architecture.n_layers=2048"},
    {"deepseek-v3", NULL, "mla.kv_lora_rank", "1", "0", "[1, 65536]", NULL},
    {"deepseek-v3", NULL, "mla.kv_lora_rank", "65536", "65537", "[1, 65536]", NULL},
    {"deepseek-v3", NULL, "mla.q_lora_rank", "0", "-1", "[0, 65536]", NULL},
    {"deepseek-v3", NULL, "mla.q_lora_rank", "65536", "65537", "[0, 65536]", NULL},
    {"deepseek-v3", NULL, "mla.rope_head_dim", "0", "-1", "[0, 1024]", NULL},
    {"deepseek-v3", NULL, "mla.rope_head_dim", "1024", "1025", "[0, 1024]", NULL},
    {"deepseek-v3", NULL, "mla.v_head_dim", "1", "0", "[1, 1024]", NULL},
    {"deepseek-v3", NULL, "mla.v_head_dim", "1024", "1025", "[1, 1024]", NULL},
    {"gpt-oss-120b", NULL, "sliding_window.window", "1", "0", "[1, 1e+09]", NULL},
    {"gpt-oss-120b", NULL, "sliding_window.window", "1e+09", "1.00001e+09", "[1, 1e+09]", NULL},
    {"llama-3.1-8b", NULL, "declared_params.total", "1", "0.99999", "[1, 1e+14]", NULL},
    {"llama-3.1-8b", NULL, "declared_params.total", "1e+14", "1.00001e+14", "[1, 1e+14]", NULL},
    {"deepseek-v3", NULL, "declared_params.active", "1", "0.99999", "[1, 1e+14]", NULL},
    {"deepseek-v3", NULL, "declared_params.active", "1e+14", "1.00001e+14", "[1, 1e+14]", "declared_params.total=1e+14"},
};
/* clang-format on */

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot read %s", path);
    char *s = NULL;
    size_t n = 0, got;
    char buf[4096];
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        s = realloc(s, n + got + 1);
        cr_assert_not_null(s);
        memcpy(s + n, buf, got);
        n += got;
    }
    fclose(f);
    cr_assert_not_null(s, "%s is empty", path);
    s[n] = '\0';
    return s;
}

/* Loads text as a profile (hw) or a model: ISIM_OK and the facts it read, or the error. */
typedef struct {
    isim_status st;
    isim_error err;
    isim_hw *h;
    isim_model *m;
    const isim_fact *facts;
    size_t n_facts;
    char *file;
} loaded;

static loaded load(const char *text, bool hw)
{
    loaded l = {.file = tu_write(hw ? "profile.yaml" : "model.yaml", text)};
    if (hw) {
        l.st = isim_hw_load(l.file, &l.h, &l.err);
        if (l.h) {
            l.facts = l.h->facts;
            l.n_facts = l.h->n_facts;
        }
    } else {
        l.st = isim_model_load(l.file, &l.m, &l.err);
        if (l.m) {
            l.facts = l.m->facts;
            l.n_facts = l.m->n_facts;
        }
    }
    return l;
}

static void unload(loaded *l)
{
    isim_hw_free(l->h);
    isim_model_free(l->m);
    tu_discard(l->file);
}

static const isim_fact *fact_of(const loaded *l, const char *path)
{
    for (size_t i = 0; i < l->n_facts; i++)
        if (strcmp(l->facts[i].path, path) == 0)
            return &l->facts[i];
    return NULL;
}

/* A copy of text with the characters from line:column to the end of the number there
 * replaced by value. */
static char *replace_at(const char *text, int line, int column, const char *value)
{
    const char *p = text;
    for (int i = 1; i < line; i++) {
        p = strchr(p, '\n');
        cr_assert_not_null(p);
        p++;
    }
    p += column - 1;
    size_t len = strcspn(p, ",} \t\r\n#");
    size_t head = (size_t)(p - text), n = strlen(text) - len + strlen(value) + 1;
    char *s = malloc(n);
    memcpy(s, text, head);
    strcpy(s + head, value);
    strcat(s, p + len);
    return s;
}

/* A copy of text (loaded) with the number at path set to value, and where it stands. A key
 * the file leaves out is written first in its section. */
static char *set_number(const char *text, bool hw, const char *path, const char *value, int *line,
                        int *column)
{
    loaded l = load(text, hw);
    cr_assert_eq(l.st, ISIM_OK, "the base does not load: %s", l.err.message);
    const isim_fact *f = fact_of(&l, path);
    char *s;
    if (f) {
        *line = f->line;
        *column = f->column;
        s = replace_at(text, f->line, f->column, value);
    } else {
        const char *key = strrchr(path, '.') + 1;
        char header[64], entry[128];
        snprintf(header, sizeof header, "\n%.*s:\n", (int)strcspn(path, "."), path);
        const char *at = strstr(text, header);
        cr_assert_not_null(at, "no section for %s", path);
        *line = 2;
        for (const char *c = text; c <= at; c++)
            *line += *c == '\n';
        *column = (int)strlen(key) + 5;
        snprintf(entry, sizeof entry, "  %s: %s\n", key, value);
        size_t head = (size_t)(at - text) + strlen(header);
        s = malloc(strlen(text) + strlen(entry) + 1);
        memcpy(s, text, head);
        strcpy(s + head, entry);
        strcat(s, at + strlen(header));
    }
    unload(&l);
    return s;
}

/* The shipped file of b, as a device of kind, with b's other value set. */
static char *base_text(const bound *b, const char *kind)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%s.yaml", ISIM_DATA_DIR, kind ? "hw-profiles" : "models",
             b->base);
    char *text = read_text(path);
    if (kind) {
        char *k = strstr(text, "\nkind: ");
        cr_assert_not_null(k, "%s has no kind", path);
        int l = 1;
        for (const char *p = text; p <= k; p++)
            l += *p == '\n';
        char *s = replace_at(text, l, 7, kind);
        free(text);
        text = s;
    }
    if (b->also) {
        char other[128];
        snprintf(other, sizeof other, "%.*s", (int)strcspn(b->also, "="), b->also);
        int l, c;
        char *s = set_number(text, kind != NULL, other, strchr(b->also, '=') + 1, &l, &c);
        free(text);
        text = s;
    }
    return text;
}

/* The bound loads and is read as written; the value past it is refused at its place. */
static void prove(const bound *b, const char *kind)
{
    bool hw = kind != NULL;
    const char *as = hw ? kind : "model";
    char *text = base_text(b, kind);
    int line, column;
    char *at = set_number(text, hw, b->path, b->at, &line, &column);
    loaded l = load(at, hw);
    cr_expect_eq(l.st, ISIM_OK, "%s %s = %s (%s): refused: %s", as, b->path, b->at, b->base,
                 l.err.message);
    const isim_fact *f = l.st == ISIM_OK ? fact_of(&l, b->path) : NULL;
    if (l.st == ISIM_OK)
        cr_expect(f && tu_close(f->value, strtod(b->at, NULL), 1e-12), "%s %s: read as %g", as,
                  b->path, f ? f->value : NAN);
    unload(&l);
    free(at);

    char *past = set_number(text, hw, b->path, b->past, &line, &column);
    l = load(past, hw);
    char want[256];
    snprintf(want, sizeof want, "'%s' = %s is out of range %s", b->path, b->past, b->range);
    cr_expect_neq(l.st, ISIM_OK, "%s %s = %s (%s): accepted", as, b->path, b->past, b->base);
    cr_expect_str_eq(l.err.message, want, "%s (%s):\n got: %s\nwant: %s", as, b->base,
                     l.err.message, want);
    cr_expect_str_eq(l.err.file, l.file, "%s %s: file", as, b->path);
    cr_expect(l.err.line == line && l.err.column == column, "%s %s: at %d:%d, expected %d:%d", as,
              b->path, l.err.line, l.err.column, line, column);
    unload(&l);
    free(past);
    free(text);
}

Test(ranges, every_bound_of_a_hardware_profile_loads_and_the_value_past_it_is_refused)
{
    for (size_t i = 0; i < sizeof HW / sizeof HW[0]; i++) {
        char kinds[64];
        snprintf(kinds, sizeof kinds, "%s", HW[i].kinds);
        for (char *save = NULL, *k = strtok_r(kinds, " ", &save); k; k = strtok_r(NULL, " ", &save))
            prove(&HW[i], k);
    }
}

Test(ranges, every_bound_of_a_model_loads_and_the_value_past_it_is_refused)
{
    for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++)
        prove(&MODELS[i], NULL);
}

/* Sets path to value in the shipped profile id (as a device of kind) and loads it: refused
 * with want at the value's place when want is given, else loaded. */
static void expect_profile(const char *id, const char *kind, const char *path, const char *value,
                           const char *want)
{
    bound b = {.base = id};
    char *text = base_text(&b, kind);
    int line, column;
    char *edited = set_number(text, true, path, value, &line, &column);
    loaded l = load(edited, true);
    if (want) {
        cr_expect_str_eq(l.err.message, want, "%s %s = %s:\n got: %s\nwant: %s", id, path, value,
                         l.err.message, want);
        cr_expect(l.err.line == line && l.err.column == column, "%s %s: at %d:%d, expected %d:%d",
                  id, path, l.err.line, l.err.column, line, column);
    } else {
        cr_expect_eq(l.st, ISIM_OK, "%s %s = %s: refused: %s", id, path, value, l.err.message);
    }
    unload(&l);
    free(edited);
    free(text);
}

/* The audit's profile: memory, power and price no GPU has; 24 TiB is a real CPU machine's
 * (AWS u-24tb1.112xlarge). */
Test(ranges, a_gpu_with_24576_gb_450_kw_or_69_usd_per_hour_is_refused)
{
    expect_profile("h100-sxm", "gpu", "memory.capacity_gb", "24576",
                   "'memory.capacity_gb' = 24576 is out of range [0.001, 4096]");
    expect_profile("h100-sxm", "gpu", "power.tdp_w", "450000",
                   "'power.tdp_w' = 450000 is out of range [1, 10000]");
    expect_profile("h100-sxm", "gpu", "price.cloud_usd_per_h", "69",
                   "'price.cloud_usd_per_h' = 69 is out of range [0.001, 50]");
    expect_profile("cpu-server", "cpu", "memory.capacity_gb", "24576", NULL);
}

/* The links within a domain are the faster tier; a domain of one device has none. */
Test(ranges, scale_out_faster_than_the_scale_up_domain_is_refused)
{
    expect_profile("h100-sxm", "gpu", "scale_out.bandwidth_gbps", "450", NULL);
    expect_profile("h100-sxm", "gpu", "scale_out.bandwidth_gbps", "450.1",
                   "'scale_out.bandwidth_gbps' (450.1) exceeds 'scale_up.bandwidth_gbps' (450), "
                   "the faster tier of a domain of 8 devices");
    expect_profile("cpu-server", "cpu", "scale_out.bandwidth_gbps", "100", NULL);
}

/* runtime_reserve_gb's maximum: below what the engine may use of the memory. */
Test(ranges, a_runtime_reserve_of_all_the_usable_memory_is_refused)
{
    bound b = {.base = "epoch-h100"};
    char *text = base_text(&b, "gpu");
    int lines = 0;
    for (const char *c = text; *c; c++)
        lines += *c == '\n';
    const char *reserves[] = {"71.99", "72"};
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(text) + 256;
        char *with = malloc(n);
        snprintf(with, n,
                 "%sserving:\n  source: \"test\"\n  memory_utilization: 0.9\n"
                 "  runtime_reserve_gb: %s\n  step_overhead_us: 500\n  kernels_per_layer: 8\n"
                 "  prefill_chunk_tokens: 8192\n",
                 text, reserves[i]);
        loaded l = load(with, true);
        if (i == 0) {
            cr_expect_eq(l.st, ISIM_OK, "%s", l.err.message);
        } else {
            cr_expect_str_eq(l.err.message, "'serving.runtime_reserve_gb' (72) leaves no memory "
                                            "of the 72 GB the engine may use");
            cr_expect(l.err.line == lines + 4 && l.err.column == 23, "at %d:%d", l.err.line,
                      l.err.column);
        }
        unload(&l);
        free(with);
    }
    free(text);
}
