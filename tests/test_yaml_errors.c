/* Bad specifications are refused with the exact message, line and column: one case per
 * kind of error (docs/formats.md). Each case edits one line of a valid base file. */
#include <criterion/criterion.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"

/* clang-format off */
/* Line numbers of the keys referred to below are written next to them. */
static const char *const HW_BASE =
    "name: Test GPU\n"                /* 1 */
    "vendor: Test\n"                  /* 2 */
    "kind: gpu\n"                     /* 3 */
    "compute:\n"                      /* 4 */
    "  source: \"test datasheet\"\n"  /* 5 */
    "  bf16_tflops: 1000\n"           /* 6 */
    "efficiency:\n"                   /* 7 */
    "  source: \"test\"\n"            /* 8 */
    "  flops: 0.7\n"                  /* 9 */
    "  hbm: 0.75\n"                   /* 10 */
    "memory:\n"                       /* 11 */
    "  source: \"test datasheet\"\n"  /* 12 */
    "  capacity_gb: 80\n"             /* 13 */
    "  bandwidth_gbps: 3300\n"        /* 14 */
    "scale_up:\n"                     /* 15 */
    "  source: \"test\"\n"            /* 16 */
    "  domain_size: 8\n"              /* 17 */
    "  bandwidth_gbps: 450\n"         /* 18 */
    "scale_out:\n"                    /* 19 */
    "  source: \"test\"\n"            /* 20 */
    "  bandwidth_gbps: 50\n"          /* 21 */
    "collectives:\n"                  /* 22 */
    "  source: \"test\"\n"            /* 23 */
    "  model: nccl\n"                 /* 24 */
    "  protocols:\n"                  /* 25 */
    "    LL: {base_us: 6.8, per_rank_us: 0.6, per_node_log2_us: 5, bandwidth_factor: 0.5}\n"
    "kernel:\n"                       /* 27 */
    "  source: \"test\"\n"            /* 28 */
    "  launch_us: 4\n"                /* 29 */
    "price:\n"                        /* 30 */
    "  source: \"test\"\n"            /* 31 */
    "  cloud_usd_per_h: 2\n";         /* 32 */

static const char *const MODEL_BASE =
    "name: Tiny\n"                       /* 1 */
    "family: test\n"                     /* 2 */
    "architecture:\n"                    /* 3 */
    "  source: \"hand-written test\"\n"  /* 4 */
    "  d_model: 64\n"                    /* 5 */
    "  n_layers: 2\n"                    /* 6 */
    "  n_heads: 8\n"                     /* 7 */
    "  n_kv_heads: 4\n"                  /* 8 */
    "  head_dim: 8\n"                    /* 9 */
    "  d_ff: 172\n"                      /* 10 */
    "  ffn: swiglu\n"                    /* 11 */
    "  vocab: 512\n"                     /* 12 */
    "  tied_embeddings: true\n"          /* 13 */
    "  norm: rmsnorm\n"                  /* 14 */
    "  position: rope\n"                 /* 15 */
    "  max_context: 512\n"               /* 16 */
    "release:\n"                         /* 17 */
    "  source: \"test\"\n"               /* 18 */
    "  weights: fp32\n"                  /* 19 */
    "declared_params:\n"                 /* 20 */
    "  source: \"test\"\n"               /* 21 */
    "  total: 123712\n";                 /* 22 */
/* clang-format on */

/* a serving section appended to HW_BASE (lines 33 to 39) */
#define HW_SERVING                                                                                 \
    "serving:\n"                                                                                   \
    "  source: \"test\"\n"                                                                         \
    "  memory_utilization: 0.9\n"                                                                  \
    "  runtime_reserve_gb: 1\n"                                                                    \
    "  step_overhead_us: 100\n"                                                                    \
    "  kernels_per_layer: 8\n"                                                                     \
    "  prefill_chunk_tokens: 512\n"

typedef struct {
    const char *what;
    bool model;
    const char *from, *to;
    int line, column;
    const char *message; /* "": only the prefix below is checked */
    const char *prefix;
} bad_case;

static const bad_case cases[] = {
    {"unknown key", false, "  capacity_gb: 80\n", "  hbm_gib: 80\n", 13, 3,
     "unknown key 'hbm_gib' in 'memory' (expected: capacity_gb, bandwidth_gbps, "
     "thread_bandwidth_gbps)",
     ""},
    {"unknown top-level key", false, "kind: gpu\n", "kind: gpu\ncolor: green\n", 4, 1,
     "unknown key 'color' (expected: name, vendor, kind, compute, efficiency, memory, "
     "scale_up, scale_out, collectives, kernel, power, price, serving, aliases, fitted)",
     ""},
    {"missing key", false, "  bandwidth_gbps: 3300\n", "", 11, 1,
     "missing key 'bandwidth_gbps' in 'memory'", ""},
    {"missing section", false, "kernel:\n  source: \"test\"\n  launch_us: 4\n", "", 1, 1,
     "missing key 'kernel'", ""},
    {"wrong type", false, "  capacity_gb: 80\n", "  capacity_gb: eighty\n", 13, 16,
     "'memory.capacity_gb' must be a number, got 'eighty'", ""},
    {"quoted number", false, "  capacity_gb: 80\n", "  capacity_gb: \"80\"\n", 13, 16,
     "'memory.capacity_gb' must be a number, got '80'", ""},
    {"unit in the value", false, "  capacity_gb: 80\n", "  capacity_gb: 80 GB\n", 13, 16,
     "'memory.capacity_gb' must be a number, got '80 GB' (the unit is in the key name)", ""},
    {"negative", false, "  capacity_gb: 80\n", "  capacity_gb: -80\n", 13, 16,
     "'memory.capacity_gb' = -80 is out of range [0.001, 4096]", ""},
    {"absurd: bytes where GB/s are expected", false, "  bandwidth_gbps: 3300\n",
     "  bandwidth_gbps: 3.3e12\n", 14, 19,
     "'memory.bandwidth_gbps' = 3.3e+12 is out of range [0.1, 100000]", ""},
    {"efficiency above one", false, "  hbm: 0.75\n", "  hbm: 75\n", 10, 8,
     "'efficiency.hbm' = 75 is out of range [0.01, 1]", ""},
    {"no source", false, "  source: \"test datasheet\"\n  capacity_gb", "  capacity_gb", 12, 16,
     "no source for 'memory.capacity_gb' (add 'source:' to its section or write "
     "{value: 80, source: \"...\"})",
     ""},
    {"long form without source", false, "  source: \"test datasheet\"\n  capacity_gb: 80\n",
     "  capacity_gb: {value: 80}\n", 12, 16, "missing key 'source' in 'memory.capacity_gb'", ""},
    {"not a whole number", false, "  domain_size: 8\n", "  domain_size: 8.5\n", 17, 16,
     "'scale_up.domain_size' must be a whole number, got 8.5", ""},
    {"enum", false, "kind: gpu\n", "kind: gpus\n", 3, 7,
     "'kind' must be one of gpu, tpu, lpu, cpu, accelerator; got 'gpus'", ""},
    {"duplicate key", false, "  capacity_gb: 80\n", "  capacity_gb: 80\n  capacity_gb: 81\n", 14, 3,
     "duplicate key 'capacity_gb' (first at line 13)", ""},
    {"section not a mapping", false,
     "memory:\n  source: \"test datasheet\"\n  capacity_gb: 80\n  bandwidth_gbps: 3300\n",
     "memory: 80\n", 11, 9, "'memory' must be a mapping of keys to values", ""},
    {"yaml syntax", false, "  capacity_gb: 80\n", "  capacity_gb: [80\n", 14, 17, "",
     "yaml syntax error: did not find expected ',' or ']'"},
    {"nesting too deep", false, "  bandwidth_gbps: 450\n",
     "  bandwidth_gbps: "
     "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
     18, 49, "nesting deeper than 32 levels", ""},
    {"alias", false, "  bandwidth_gbps: 450\n", "  bandwidth_gbps: *x\n", 18, 19,
     "aliases are not supported; write the value out", ""},
    {"protocol key of the other model", false, "  model: nccl\n",
     "  model: nccl\n  per_rank_us: 1\n", 25, 16,
     "'collectives.per_rank_us' applies to model flat only", ""},
    {"no 16-bit rate", false, "  bf16_tflops: 1000\n", "  fp8_tflops: 1000\n", 4, 1,
     "'compute' needs a 16-bit rate: bf16_tflops or fp16_tflops", ""},
    {"heads not a multiple of kv heads", true, "  n_kv_heads: 4\n", "  n_kv_heads: 3\n", 8, 15,
     "'architecture.n_heads' (8) is not a multiple of 'architecture.n_kv_heads' (3)", ""},
    {"bool", true, "  tied_embeddings: true\n", "  tied_embeddings: yes\n", 13, 20,
     "'architecture.tied_embeddings' must be true or false, got 'yes'", ""},
    {"unknown precision", true, "  weights: fp32\n", "  weights: fp12\n", 19, 12,
     "'release.weights' must be one of fp32, bf16, fp16, fp8, int8, int4, fp4; got 'fp12'", ""},
    {"active count on a dense model", true, "  total: 123712\n",
     "  total: 123712\n  active: 1000\n", 23, 11,
     "'declared_params.active' applies to MoE models only", ""},
    {"MoE without active count", true, "release:\n",
     "moe:\n  source: \"t\"\n  n_experts: 4\n  n_active_experts: 2\n  n_shared_experts: 0\n"
     "  expert_d_ff: 64\n  first_dense_layers: 0\nrelease:\n",
     27, 1,
     "missing key 'active' in 'declared_params' (a MoE model declares its active parameters)", ""},
    {"more active experts than experts", true, "release:\n",
     "moe:\n  source: \"t\"\n  n_experts: 4\n  n_active_experts: 5\n  n_shared_experts: 0\n"
     "  expert_d_ff: 64\n  first_dense_layers: 0\nrelease:\n",
     20, 21, "'moe.n_active_experts' (5) exceeds 'moe.n_experts' (4)", ""},
    {"sliding pattern item", true, "release:\n",
     "sliding_window:\n  source: \"t\"\n  window: 128\n  pattern: [sliding, global]\nrelease:\n",
     20, 22, "'sliding_window.pattern' items must be one of sliding, full; got 'global'", ""},
    {"one thread's bandwidth below 0.1 GB/s", false, "  bandwidth_gbps: 3300\n",
     "  bandwidth_gbps: 3300\n  thread_bandwidth_gbps: 0.01\n", 15, 26,
     "'memory.thread_bandwidth_gbps' = 0.01 is out of range [0.1, 1000]", ""},
    {"kv cache's bandwidth share above one", false, "  hbm: 0.75\n", "  hbm: 0.75\n  hbm_kv: 1.5\n",
     11, 11, "'efficiency.hbm_kv' = 1.5 is out of range [0.01, 1]", ""},
    {"activation bytes above 8", false, "  cloud_usd_per_h: 2\n",
     "  cloud_usd_per_h: 2\n" HW_SERVING "  activation_bytes: 16\n", 40, 21,
     "'serving.activation_bytes' = 16 is out of range [1, 8]", ""},
    {"negative tile rows", false, "  hbm: 0.75\n", "  hbm: 0.75\n  tile_rows: -12\n", 11, 14,
     "'efficiency.tile_rows' = -12 is out of range [0, 65536]", ""},
};

static void check(const bad_case *c)
{
    char *text = tu_replace(c->model ? MODEL_BASE : HW_BASE, c->from, c->to);
    char *path = tu_write("t.yaml", text);
    isim_error e = {0};
    isim_status st;
    if (c->model) {
        isim_model *m = NULL;
        st = isim_model_load(path, &m, &e);
        cr_expect_null(m);
    } else {
        isim_hw *h = NULL;
        st = isim_hw_load(path, &h, &e);
        cr_expect_null(h);
    }
    cr_expect_neq(st, ISIM_OK, "%s: accepted", c->what);
    cr_expect_str_eq(e.file, path, "%s: file", c->what);
    cr_expect_eq(e.line, c->line, "%s: line %d, expected %d (%s)", c->what, e.line, c->line,
                 e.message);
    cr_expect_eq(e.column, c->column, "%s: column %d, expected %d (%s)", c->what, e.column,
                 c->column, e.message);
    if (c->message[0])
        cr_expect_str_eq(e.message, c->message, "%s", c->what);
    else
        cr_expect(strncmp(e.message, c->prefix, strlen(c->prefix)) == 0, "%s: '%s'", c->what,
                  e.message);
    free(text);
    tu_discard(path);
}

/* One test per kind of error, named after it. */
Test(yaml_errors, unknown_key)
{
    check(&cases[0]);
}
Test(yaml_errors, unknown_top_level_key)
{
    check(&cases[1]);
}
Test(yaml_errors, missing_key)
{
    check(&cases[2]);
}
Test(yaml_errors, missing_section)
{
    check(&cases[3]);
}
Test(yaml_errors, wrong_type)
{
    check(&cases[4]);
}
Test(yaml_errors, quoted_number)
{
    check(&cases[5]);
}
Test(yaml_errors, unit_in_the_value)
{
    check(&cases[6]);
}
Test(yaml_errors, negative)
{
    check(&cases[7]);
}
Test(yaml_errors, absurd_bytes_where_gb_s_are_expected)
{
    check(&cases[8]);
}
Test(yaml_errors, efficiency_above_one)
{
    check(&cases[9]);
}
Test(yaml_errors, no_source)
{
    check(&cases[10]);
}
Test(yaml_errors, long_form_without_source)
{
    check(&cases[11]);
}
Test(yaml_errors, not_a_whole_number)
{
    check(&cases[12]);
}
Test(yaml_errors, enum)
{
    check(&cases[13]);
}
Test(yaml_errors, duplicate_key)
{
    check(&cases[14]);
}
Test(yaml_errors, section_not_a_mapping)
{
    check(&cases[15]);
}
Test(yaml_errors, yaml_syntax)
{
    check(&cases[16]);
}
Test(yaml_errors, nesting_too_deep)
{
    check(&cases[17]);
}
Test(yaml_errors, alias)
{
    check(&cases[18]);
}
Test(yaml_errors, protocol_key_of_the_other_model)
{
    check(&cases[19]);
}
Test(yaml_errors, no_16_bit_rate)
{
    check(&cases[20]);
}
Test(yaml_errors, heads_not_a_multiple_of_kv_heads)
{
    check(&cases[21]);
}
Test(yaml_errors, bool)
{
    check(&cases[22]);
}
Test(yaml_errors, unknown_precision)
{
    check(&cases[23]);
}
Test(yaml_errors, active_count_on_a_dense_model)
{
    check(&cases[24]);
}
Test(yaml_errors, moe_without_active_count)
{
    check(&cases[25]);
}
Test(yaml_errors, more_active_experts_than_experts)
{
    check(&cases[26]);
}
Test(yaml_errors, sliding_pattern_item)
{
    check(&cases[27]);
}
Test(yaml_errors, one_threads_bandwidth_below_0_1_gb_s)
{
    check(&cases[28]);
}
Test(yaml_errors, kv_caches_bandwidth_share_above_one)
{
    check(&cases[29]);
}
Test(yaml_errors, activation_bytes_above_8)
{
    check(&cases[30]);
}
Test(yaml_errors, negative_tile_rows)
{
    check(&cases[31]);
}

Test(yaml_errors, the_base_files_are_valid)
{
    isim_error e = {0};
    char buf[1400];
    char *p = tu_write("base-gpu.yaml", HW_BASE);
    isim_hw *h = NULL;
    cr_assert_eq(isim_hw_load(p, &h, &e), ISIM_OK, "%s", isim_error_format(&e, buf, sizeof buf));
    cr_expect_str_eq(h->id, "base-gpu");
    cr_expect_float_eq(h->mem_bytes, 80e9, 1);
    cr_expect_float_eq(h->protocols[0].base_s, 6.8e-6, 1e-12);
    isim_hw_free(h);
    char *q = tu_write("tiny.yaml", MODEL_BASE);
    isim_model *m = NULL;
    cr_assert_eq(isim_model_load(q, &m, &e), ISIM_OK, "%s", isim_error_format(&e, buf, sizeof buf));
    /* embedding 512x64 + 2 x (attention 12288 + norms 128 + SwiGLU 3x64x172) + final norm 64 */
    cr_expect_float_eq(m->d.params_total, 32768 + 2 * (12288 + 128 + 33024) + 64, 0.5);
    isim_model_free(m);
    tu_discard(p);
    tu_discard(q);
}

Test(yaml_errors, every_number_is_recorded_with_its_source)
{
    char *text =
        tu_replace(HW_BASE, "  launch_us: 4\n", "  launch_us: {value: 3, source: \"measured\"}\n");
    char *p = tu_write("g.yaml", text);
    isim_hw *h = NULL;
    cr_assert_eq(isim_hw_load(p, &h, NULL), ISIM_OK);
    bool found_capacity = false, found_launch = false;
    for (size_t i = 0; i < h->n_facts; i++) {
        if (strcmp(h->facts[i].path, "memory.capacity_gb") == 0) {
            found_capacity = true;
            cr_expect_str_eq(h->facts[i].source, "test datasheet");
            cr_expect_eq(h->facts[i].line, 13);
        }
        if (strcmp(h->facts[i].path, "kernel.launch_us") == 0) {
            found_launch = true;
            cr_expect_str_eq(h->facts[i].source, "measured");
        }
    }
    cr_expect(found_capacity && found_launch);
    cr_expect_float_eq(h->kernel_launch_s, 3e-6, 1e-15);
    isim_hw_free(h);
    free(text);
    tu_discard(p);
}

Test(yaml_errors, an_empty_file_and_a_missing_file_are_refused)
{
    isim_error e = {0};
    isim_model *m = NULL;
    char *p = tu_write("empty.yaml", "");
    cr_expect_eq(isim_model_load(p, &m, &e), ISIM_ESCHEMA);
    cr_expect_str_eq(e.message, "the file is empty");
    cr_expect_eq(isim_model_load("/nonexistent/x.yaml", &m, &e), ISIM_EIO);
    cr_expect(strncmp(e.message, "cannot open:", 12) == 0);
    tu_discard(p);
}

/* HW_BASE with `from` replaced by `to`, loaded (and required to load). */
static isim_hw *hw_changed(const char *from, const char *to)
{
    isim_error e = {0};
    char *text = tu_replace(HW_BASE, from, to);
    char *p = tu_write("t.yaml", text);
    isim_hw *h = NULL;
    isim_status st = isim_hw_load(p, &h, &e);
    free(text);
    tu_discard(p);
    cr_assert_eq(st, ISIM_OK, "%s", e.message);
    return h;
}

/* efficiency's optional keys, read when given and 0 when not (refused outside their
 * ranges: the table above): hbm_kv, the KV cache's own share of the bandwidth (0: the
 * deploy fidelity then uses hbm's), and tile_rows, the rows of a matmul's tile (0: one
 * tile). */
Test(yaml_errors, the_optional_efficiencies_are_read_when_given)
{
    static const struct {
        const char *line;
        size_t field; /* the isim_hw double it fills */
        double value;
    } keys[] = {{"  hbm_kv: 0.6\n", offsetof(isim_hw, eff_hbm_kv), 0.6},
                {"  tile_rows: 12\n", offsetof(isim_hw, eff_tile_rows), 12}};
    isim_hw *plain = tu_hw("h100-sxm");
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char to[64];
        snprintf(to, sizeof to, "  hbm: 0.75\n%s", keys[i].line);
        isim_hw *h = hw_changed("  hbm: 0.75\n", to);
        double got = *(const double *)((const char *)h + keys[i].field),
               absent = *(const double *)((const char *)plain + keys[i].field);
        cr_expect_float_eq(got, keys[i].value, 1e-12, "%s", keys[i].line);
        cr_expect_eq(absent, 0, "%s", keys[i].line);
        isim_hw_free(h);
    }
    isim_hw_free(plain);
}

/* serving.activation_bytes, the bytes of an activation value in the engine: 2 when not
 * written, read when given (refused outside 1..8: the table above). */
Test(yaml_errors, the_engines_activation_bytes_are_read_and_checked)
{
    const double want[2] = {2, 4};
    for (int i = 0; i < 2; i++) {
        isim_hw *h = hw_changed("  cloud_usd_per_h: 2\n", i ? "  cloud_usd_per_h: 2\n" HW_SERVING
                                                              "  activation_bytes: 4\n"
                                                            : "  cloud_usd_per_h: 2\n" HW_SERVING);
        cr_expect_float_eq(h->activation_bytes, want[i], 1e-12);
        isim_hw_free(h);
    }
}

/* memory.thread_bandwidth_gbps, what one thread streams alone (a CPU profile written by
 * calibrate): 0 when not written, read when given (refused below 0.1: the table above). */
Test(yaml_errors, a_threads_bandwidth_is_read_and_checked)
{
    for (int i = 0; i < 2; i++) {
        isim_hw *h = hw_changed("  bandwidth_gbps: 3300\n",
                                i ? "  bandwidth_gbps: 3300\n  thread_bandwidth_gbps: 37.5\n"
                                  : "  bandwidth_gbps: 3300\n");
        cr_expect_float_eq(h->mem_thread_bytes_per_s, i ? 37.5e9 : 0, 1);
        cr_expect_float_eq(h->mem_bytes_per_s, 3300e9, 1);
        isim_hw_free(h);
    }
}
