/* Loads hw-profiles/<id>.yaml (schema in docs/formats.md) into an isim_hw in SI units
 * (bytes, seconds, FLOP/s), refusing anything unknown, mistyped, implausible or unsourced
 * with file:line:col. */
#include "sim/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The kinds of device, in the order of isim_hw_kind. */
#define N_KINDS (ISIM_HW_ACCEL + 1)

/* The plausible range of a profile's number: what a real device of its kind could have,
 * with headroom for those of the next few years, the maximum per kind (gpu, tpu, lpu, cpu,
 * accelerator). docs/formats.md ("Plausible ranges") gives each bound's reason; '*' stands
 * for a protocol's or an engine's name. */
typedef struct {
    const char *path;
    double min, max[N_KINDS];
} hw_range;

/* clang-format off */
#define EVERY(x) {x, x, x, x, x}

static const hw_range RANGES[] = {
    /* path, min, max: {gpu, tpu, lpu, cpu, accelerator} or the same for every kind */
    {"compute.fp32_tflops",                           0.001, {1e4,   1e4,   1e4,   1e4,   1e6}},
    {"compute.bf16_tflops",                           0.001, {5e4,   5e4,   5e4,   1e4,   1e6}},
    {"compute.fp16_tflops",                           0.001, {5e4,   5e4,   5e4,   1e4,   1e6}},
    {"compute.fp8_tflops",                            0.001, {1e5,   1e5,   1e5,   1e4,   1e6}},
    {"compute.int8_tops",                             0.001, {1e5,   1e5,   1e5,   1e4,   1e6}},
    {"compute.fp4_tflops",                            0.001, {2e5,   2e5,   2e5,   1e4,   1e6}},
    {"compute.int4_tops",                             0.001, {2e5,   2e5,   2e5,   1e4,   1e6}},
    {"efficiency.flops",                              0.01,  EVERY(1)},
    {"efficiency.hbm",                                0.01,  EVERY(1)},
    {"efficiency.flops_full_rows",                    0,     EVERY(65536)},
    {"efficiency.attention",                          0.001, EVERY(1)},
    {"efficiency.overlap",                            0,     EVERY(1)},
    {"efficiency.tile_rows",                          0,     EVERY(65536)},
    {"efficiency.hbm_fp4",                            0.01,  EVERY(1)},
    {"efficiency.hbm_int4",                           0.01,  EVERY(1)},
    {"efficiency.hbm_experts",                        0.01,  EVERY(1)},
    {"efficiency.hbm_kv",                             0.01,  EVERY(1)},
    {"memory.capacity_gb",                            0.001, {4096,  4096,  4096,  1e5,   4096}},
    {"memory.bandwidth_gbps",                         0.1,   {1e5,   1e5,   1e6,   2e4,   1e8}},
    {"memory.thread_bandwidth_gbps",                  0.1,   EVERY(1000)},
    {"scale_up.domain_size",                          1,     EVERY(65536)},
    {"scale_up.bandwidth_gbps",                       0.01,  {1e4,   1e4,   1e4,   2e4,   1e4}},
    {"scale_out.bandwidth_gbps",                      0.01,  {1e4,   1e4,   1e4,   2e4,   1e4}},
    {"collectives.per_rank_us",                       0,     EVERY(1e4)},
    {"collectives.protocols.*.base_us",               0,     EVERY(1e4)},
    {"collectives.protocols.*.per_rank_us",           0,     EVERY(1e4)},
    {"collectives.protocols.*.per_node_log2_us",      0,     EVERY(1e4)},
    {"collectives.protocols.*.bandwidth_factor",      0.01,  EVERY(1)},
    {"kernel.launch_us",                              0,     EVERY(1e4)},
    {"power.tdp_w",                                   1,     {1e4,   1e4,   1e4,   5e4,   5e4}},
    {"price.cloud_usd_per_h",                         0.001, {50,    50,    50,    1000,  500}},
    {"price.purchase_usd",                            1,     {5e5,   5e5,   5e5,   1e7,   1e7}},
    {"price.life_years",                              0.5,   EVERY(15)},
    {"serving.memory_utilization",                    0.05,  EVERY(1)},
    /* held below capacity_gb x memory_utilization by a check once both are read */
    {"serving.runtime_reserve_gb",                    0,     {4096,  4096,  4096,  1e5,   4096}},
    {"serving.step_overhead_us",                      0,     EVERY(1e5)},
    {"serving.kernels_per_layer",                     0,     EVERY(1000)},
    {"serving.prefill_chunk_tokens",                  1,     EVERY(1e7)},
    {"serving.max_running_sequences",                 1,     EVERY(1e6)},
    {"serving.request_overhead_us",                   0,     EVERY(1e7)},
    {"serving.activation_bytes",                      1,     EVERY(8)},
    {"fitted.backends.*.flops",                       0.01,  EVERY(1)},
    {"fitted.backends.*.hbm",                         0.01,  EVERY(1)},
    {"fitted.backends.*.step_overhead_us",            0,     EVERY(1e5)},
    {"fitted.backends.*.collective_latency_scale",    1e-3,  EVERY(1e3)},
    {"fitted.backends.*.request_overhead_us",         0,     EVERY(1e7)},
    {"fitted.backends.*.kernel_launch_us",            0,     EVERY(1e4)},
    {"fitted.backends.*.flops_full_rows",             0,     EVERY(65536)},
    {"fitted.backends.*.hbm_fp4",                     0.01,  EVERY(1)},
    {"fitted.backends.*.hbm_int4",                    0.01,  EVERY(1)},
    {"fitted.backends.*.hbm_experts",                 0.01,  EVERY(1)},
    {"fitted.backends.*.lockstep",                    0,     EVERY(1)},
    {"fitted.backends.*.all_to_all_latency_scale",    1e-3,  EVERY(1e3)},
    {"fitted.backends.*.train_rows",                  0,     EVERY(1e9)},
    {"fitted.backends.*.heldout_rows",                0,     EVERY(1e9)},
    {"fitted.backends.*.heldout_tpot_median_abs_pct", 0,     EVERY(1e9)},
    {"fitted.backends.*.heldout_tpot_p90_abs_pct",    0,     EVERY(1e9)},
};
#undef EVERY
/* clang-format on */

static const hw_range *range_of(const char *path)
{
    for (size_t i = 0; i < sizeof RANGES / sizeof RANGES[0]; i++)
        if (strcmp(RANGES[i].path, path) == 0)
            return &RANGES[i];
    return NULL;
}

/* Reads the number at `path`, the last part of which is a key of m, within its range for
 * h's kind. */
static isim_status number(isim__map *m, const isim_hw *h, const char *path, bool required,
                          double *out, bool *present)
{
    const hw_range *r = range_of(path);
    if (!r)
        return isim__map_error(m, NULL, "'%s' has no plausible range", path);
    return isim__map_number(m, strrchr(path, '.') + 1, required, r->min, r->max[h->kind], out,
                            present);
}

/* The same for a whole number. */
static isim_status whole(isim__map *m, const isim_hw *h, const char *path, bool required,
                         int64_t *out, bool *present)
{
    const hw_range *r = range_of(path);
    if (!r)
        return isim__map_error(m, NULL, "'%s' has no plausible range", path);
    return isim__map_int(m, strrchr(path, '.') + 1, required, (int64_t)r->min,
                         (int64_t)r->max[h->kind], out, present);
}

static isim_status read_compute(isim__map *top, isim_hw *h)
{
    static const struct {
        const char *path;
        isim_dtype t;
    } rates[] = {{"compute.fp32_tflops", ISIM_FP32}, {"compute.bf16_tflops", ISIM_BF16},
                 {"compute.fp16_tflops", ISIM_FP16}, {"compute.fp8_tflops", ISIM_FP8},
                 {"compute.int8_tops", ISIM_INT8},   {"compute.int4_tops", ISIM_INT4},
                 {"compute.fp4_tflops", ISIM_FP4}};
    static const char *const keys[] = {"fp32_tflops", "bf16_tflops", "fp16_tflops", "fp8_tflops",
                                       "int8_tops",   "int4_tops",   "fp4_tflops",  NULL};
    isim__map c;
    isim_status st = isim__map_sub(top, "compute", keys, true, &c, NULL);
    for (size_t i = 0; !st && i < sizeof rates / sizeof rates[0]; i++) {
        double v = 0;
        st = number(&c, h, rates[i].path, false, &v, NULL);
        h->peak_flops[rates[i].t] = v * 1e12;
    }
    if (!st && h->peak_flops[ISIM_BF16] == 0 && h->peak_flops[ISIM_FP16] == 0)
        st = isim__map_error(&c, NULL,
                             "'compute' needs a 16-bit rate: bf16_tflops or "
                             "fp16_tflops");
    return st;
}

static isim_status read_collectives(isim__map *top, isim_hw *h)
{
    static const char *const keys[] = {"model", "protocols", "per_rank_us", NULL};
    static const char *const models[] = {"nccl", "flat", NULL};
    static const char *const protocols[] = {"LL", "LL128", "Simple", NULL};
    static const char *const pkeys[] = {"base_us", "per_rank_us", "per_node_log2_us",
                                        "bandwidth_factor", NULL};
    isim__map c;
    int model = 0;
    isim_status st = isim__map_sub(top, "collectives", keys, true, &c, NULL);
    if (!st)
        st = isim__map_enum(&c, "model", true, models, &model, NULL);
    if (st)
        return st;
    h->coll_model = (isim_coll_model)model;
    if (h->coll_model == ISIM_COLL_FLAT) {
        if (isim__map_get(&c, "protocols"))
            return isim__map_error(&c, "protocols",
                                   "'collectives.protocols' applies to model nccl only");
        double us = 0;
        st = number(&c, h, "collectives.per_rank_us", true, &us, NULL);
        h->flat_per_rank_s = us * 1e-6;
        return st;
    }
    if (isim__map_get(&c, "per_rank_us"))
        return isim__map_error(&c, "per_rank_us",
                               "'collectives.per_rank_us' applies to model flat only");
    isim__map p;
    st = isim__map_sub(&c, "protocols", protocols, true, &p, NULL);
    for (int i = 0; !st && protocols[i]; i++) {
        isim__map q;
        bool here = false;
        st = isim__map_sub(&p, protocols[i], pkeys, false, &q, &here);
        if (st || !here)
            continue;
        isim_protocol *pr = &h->protocols[h->n_protocols++];
        snprintf(pr->name, sizeof pr->name, "%s", protocols[i]);
        double base = 0, rank = 0, node = 0;
        if (!st)
            st = number(&q, h, "collectives.protocols.*.base_us", true, &base, NULL);
        if (!st)
            st = number(&q, h, "collectives.protocols.*.per_rank_us", true, &rank, NULL);
        if (!st)
            st = number(&q, h, "collectives.protocols.*.per_node_log2_us", true, &node, NULL);
        if (!st)
            st = number(&q, h, "collectives.protocols.*.bandwidth_factor", true,
                        &pr->bandwidth_factor, NULL);
        pr->base_s = base * 1e-6;
        pr->per_rank_s = rank * 1e-6;
        pr->per_node_log2_s = node * 1e-6;
    }
    if (!st && h->n_protocols == 0)
        st = isim__map_error(&p, NULL,
                             "'collectives.protocols' lists no protocol (expected: LL, "
                             "LL128, Simple)");
    return st;
}

static isim_status read_serving(isim__map *top, isim_hw *h)
{
    static const char *const keys[] = {
        "memory_utilization", "runtime_reserve_gb",    "step_overhead_us",
        "kernels_per_layer",  "prefill_chunk_tokens",  "request_overhead_us",
        "activation_bytes",   "max_running_sequences", NULL};
    isim__map s;
    h->activation_bytes = 2; /* 16-bit activations unless the engine's profile says otherwise */
    isim_status st = isim__map_sub(top, "serving", keys, false, &s, &h->has_serving);
    if (st || !h->has_serving)
        return st;
    double gb = 0, us = 0;
    if (!st)
        st = number(&s, h, "serving.memory_utilization", true, &h->mem_utilization, NULL);
    if (!st)
        st = number(&s, h, "serving.runtime_reserve_gb", true, &gb, NULL);
    if (!st)
        st = number(&s, h, "serving.step_overhead_us", true, &us, NULL);
    if (!st)
        st = number(&s, h, "serving.kernels_per_layer", true, &h->kernels_per_layer, NULL);
    if (!st)
        st = number(&s, h, "serving.prefill_chunk_tokens", true, &h->prefill_chunk_tokens, NULL);
    double req_us = 0;
    if (!st)
        st = number(&s, h, "serving.request_overhead_us", false, &req_us, NULL);
    h->request_overhead_s = req_us * 1e-6;
    if (!st)
        st = number(&s, h, "serving.activation_bytes", false, &h->activation_bytes, NULL);
    if (!st)
        st = number(&s, h, "serving.max_running_sequences", false, &h->max_running_sequences, NULL);
    if (!st && h->max_running_sequences != floor(h->max_running_sequences))
        st = isim__map_error(&s, "max_running_sequences",
                             "'serving.max_running_sequences' must be a whole number, got %g",
                             h->max_running_sequences);
    h->runtime_reserve_bytes = gb * 1e9;
    h->step_overhead_s = us * 1e-6;
    if (!st && h->runtime_reserve_bytes >= h->mem_bytes * h->mem_utilization)
        st = isim__map_error(&s, "runtime_reserve_gb",
                             "'serving.runtime_reserve_gb' (%g) leaves no memory of the %g GB "
                             "the engine may use",
                             gb, h->mem_bytes * h->mem_utilization / 1e9);
    return st;
}

/* One engine's entry of fitted.backends; what it leaves out keeps the profile's value. */
static isim_status read_fit(isim__map *e, const isim_hw *h, isim_hw_fit *fit)
{
    static const char *const dtypes[] = {
#define ISIM_X(name, str, bytes) str,
        ISIM_DTYPE_LIST(ISIM_X)
#undef ISIM_X
            NULL};
    double us = 0, req = h->request_overhead_s * 1e6, launch = h->kernel_launch_s * 1e6;
    int kv = 0;
    fit->eff_flops_full_rows = h->eff_flops_full_rows;
    fit->eff_hbm_fp4 = h->eff_hbm_fp4;
    fit->eff_hbm_int4 = h->eff_hbm_int4;
    fit->eff_hbm_experts = h->eff_hbm_experts;
    fit->a2a_latency_scale = 1;
    isim_status st = number(e, h, "fitted.backends.*.flops", true, &fit->eff_flops, NULL);
    if (!st)
        st = number(e, h, "fitted.backends.*.hbm", true, &fit->eff_hbm, NULL);
    if (!st)
        st = number(e, h, "fitted.backends.*.step_overhead_us", true, &us, NULL);
    if (!st)
        st = number(e, h, "fitted.backends.*.collective_latency_scale", true,
                    &fit->coll_latency_scale, NULL);
    if (!st)
        st = isim__map_enum(e, "kv", true, dtypes, &kv, NULL);
    if (!st)
        st = number(e, h, "fitted.backends.*.request_overhead_us", false, &req, NULL);
    if (!st)
        st = number(e, h, "fitted.backends.*.kernel_launch_us", false, &launch, NULL);
    if (!st)
        st = number(e, h, "fitted.backends.*.flops_full_rows", false, &fit->eff_flops_full_rows,
                    NULL);
    if (!st)
        st = number(e, h, "fitted.backends.*.hbm_fp4", false, &fit->eff_hbm_fp4, NULL);
    if (!st)
        st = number(e, h, "fitted.backends.*.hbm_int4", false, &fit->eff_hbm_int4, NULL);
    if (!st)
        st = number(e, h, "fitted.backends.*.hbm_experts", false, &fit->eff_hbm_experts, NULL);
    if (!st)
        st = number(e, h, "fitted.backends.*.lockstep", false, &fit->lockstep, NULL);
    if (!st)
        st = number(e, h, "fitted.backends.*.all_to_all_latency_scale", false,
                    &fit->a2a_latency_scale, NULL);
    if (!st)
        st = number(e, h, "fitted.backends.*.train_rows", false, &fit->train_rows, NULL);
    if (!st)
        st = number(e, h, "fitted.backends.*.heldout_rows", false, &fit->heldout_rows, NULL);
    if (!st)
        st = number(e, h, "fitted.backends.*.heldout_tpot_median_abs_pct", false,
                    &fit->heldout_tpot_median_pct, NULL);
    if (!st)
        st = number(e, h, "fitted.backends.*.heldout_tpot_p90_abs_pct", false,
                    &fit->heldout_tpot_p90_pct, NULL);
    fit->step_overhead_s = us * 1e-6;
    fit->request_overhead_s = req * 1e-6;
    fit->kernel_launch_s = launch * 1e-6;
    fit->kv = (isim_dtype)kv;
    return st;
}

/* fitted: the deploy fidelity's parameters fitted to measured serving data, per engine
 * (written by `infersim validate --dataset`; docs/validation.md). */
static isim_status read_fitted(isim__map *top, isim_hw *h)
{
    static const char *const keys[] = {"source", "dataset",  "digest", "split",
                                       "date",   "backends", NULL};
    static const char *const fit_keys[] = {"flops",
                                           "hbm",
                                           "step_overhead_us",
                                           "collective_latency_scale",
                                           "kv",
                                           "request_overhead_us",
                                           "kernel_launch_us",
                                           "flops_full_rows",
                                           "hbm_fp4",
                                           "hbm_int4",
                                           "hbm_experts",
                                           "lockstep",
                                           "all_to_all_latency_scale",
                                           "train_rows",
                                           "heldout_rows",
                                           "heldout_tpot_median_abs_pct",
                                           "heldout_tpot_p90_abs_pct",
                                           NULL};
    isim__map f, b;
    bool here = false;
    const char *str = NULL;
    isim_status st = isim__map_sub(top, "fitted", keys, false, &f, &here);
    if (st || !here)
        return st;
    for (int k = 1; !st && k <= 4; k++) {
        st = isim__map_string(&f, keys[k], k < 4, &str, NULL);
        if (!st && str && k == 1)
            snprintf(h->fitted_dataset, sizeof h->fitted_dataset, "%s", str);
        if (!st && str && k == 4)
            snprintf(h->fitted_date, sizeof h->fitted_date, "%s", str);
        str = NULL;
    }
    if (!st)
        st = isim__map_sub(&f, "backends", NULL, true, &b, NULL);
    if (st)
        return st;
    if (!isim__map_get(&b, "all"))
        return isim__map_error(&b, NULL, "'fitted.backends' needs 'all' (every engine together)");
    if (b.node->n > ISIM_MAX_FITS + (isim__map_get(&b, "source") != NULL))
        return isim__map_error(&b, NULL, "'fitted.backends' holds more than %d engines",
                               ISIM_MAX_FITS);
    /* "all" first, then the others in the order written */
    for (int pass = 0; pass < 2 && !st; pass++)
        for (size_t i = 0; i < b.node->n && !st; i++) {
            const char *name = b.node->keys[i]->text;
            if (strcmp(name, "source") == 0 || (pass == 0) != (strcmp(name, "all") == 0))
                continue;
            isim_hw_fit *fit = &h->fits[h->n_fits];
            if (strlen(name) >= sizeof fit->backend)
                return isim__map_error(&b, name, "engine name '%s' is too long", name);
            snprintf(fit->backend, sizeof fit->backend, "%s", name);
            isim__map e;
            st = isim__map_sub(&b, name, fit_keys, true, &e, NULL);
            if (!st)
                st = read_fit(&e, h, fit);
            h->n_fits++;
        }
    return st;
}

void isim_hw_apply_fit(const isim_hw *h, const isim_hw_fit *f, isim_hw *out)
{
    *out = *h;
#define ISIM_SET(bit, field, value)                                                                \
    do {                                                                                           \
        if (!(h->pinned & (1u << (bit))))                                                          \
            out->field = (value);                                                                  \
    } while (0)
    ISIM_SET(ISIM_FIT_FLOPS, eff_flops, f->eff_flops);
    ISIM_SET(ISIM_FIT_HBM, eff_hbm, f->eff_hbm);
    ISIM_SET(ISIM_FIT_HBM_FP4, eff_hbm_fp4, f->eff_hbm_fp4);
    ISIM_SET(ISIM_FIT_HBM_INT4, eff_hbm_int4, f->eff_hbm_int4);
    ISIM_SET(ISIM_FIT_HBM_EXPERTS, eff_hbm_experts, f->eff_hbm_experts);
    ISIM_SET(ISIM_FIT_FULL_ROWS, eff_flops_full_rows, f->eff_flops_full_rows);
    if (h->attention_follows_flops)
        out->eff_attention = out->eff_flops;
    ISIM_SET(ISIM_FIT_STEP, step_overhead_s, f->step_overhead_s);
    ISIM_SET(ISIM_FIT_REQUEST, request_overhead_s, f->request_overhead_s);
    ISIM_SET(ISIM_FIT_LAUNCH, kernel_launch_s, f->kernel_launch_s);
#undef ISIM_SET
    out->coll_latency_scale = f->coll_latency_scale;
    out->a2a_latency_scale = f->a2a_latency_scale;
}

void isim_hw_rank_share(const isim_hw *h, int ranks, int streaming, isim_hw *out)
{
    *out = *h;
    if (ranks <= 1)
        return;
    streaming = streaming < 1 ? 1 : streaming > ranks ? ranks : streaming;
    for (int d = 0; d < ISIM_DTYPE_COUNT; d++)
        out->peak_flops[d] /= ranks; /* one core of the machine's each */
    out->mem_bytes /= ranks;
    out->domain_size = ranks;
    out->kernel_launch_s = 0; /* one thread: no task handed to others */
    /* ranks streaming at once split the machine's bandwidth; a rank streaming alone is held
     * to what one thread can keep in flight (Little's law: its outstanding misses over the
     * memory latency), measured as memory.thread_bandwidth_gbps */
    double bw = h->mem_bytes_per_s / streaming;
    if (h->mem_thread_bytes_per_s > 0 && h->mem_thread_bytes_per_s < bw)
        bw = h->mem_thread_bytes_per_s;
    out->mem_bytes_per_s = bw;
    out->mem_machine_bytes_per_s = h->mem_bytes_per_s;
}

const isim_hw_fit *isim_hw_fit_for(const isim_hw *h, const char *backend)
{
    for (size_t i = 0; i < h->n_fits; i++)
        if (strcmp(h->fits[i].backend, backend) == 0)
            return &h->fits[i];
    return NULL;
}

static isim_status read_hw(isim__reader *r, const isim__ynode *root, void *obj)
{
    isim_hw *h = obj;
    static const char *const keys[] = {"name",        "vendor",  "kind",     "compute",
                                       "efficiency",  "memory",  "scale_up", "scale_out",
                                       "collectives", "kernel",  "power",    "price",
                                       "serving",     "aliases", "fitted",   NULL};
    static const char *const kinds[] = {"gpu", "tpu", "lpu", "cpu", "accelerator", NULL};
    static const char *const eff_keys[] = {
        "flops",    "hbm",         "flops_full_rows", "attention", "overlap", "hbm_fp4",
        "hbm_int4", "hbm_experts", "hbm_kv",          "tile_rows", NULL};
    static const char *const mem_keys[] = {"capacity_gb", "bandwidth_gbps", "thread_bandwidth_gbps",
                                           NULL};
    static const char *const up_keys[] = {"domain_size", "bandwidth_gbps", NULL};
    static const char *const out_keys[] = {"bandwidth_gbps", NULL};
    static const char *const kernel_keys[] = {"launch_us", NULL};
    static const char *const power_keys[] = {"tdp_w", NULL};
    static const char *const price_keys[] = {"cloud_usd_per_h", "purchase_usd", "life_years", NULL};
    isim__map top, s;
    const char *str = NULL;
    int kind = 0;
    double v = 0;
    isim_status st = isim__map_root(r, root, keys, &top);
    if (!st)
        st = isim__map_string(&top, "name", true, &str, NULL);
    if (!st && !(h->name = strdup(str)))
        st = ISIM_ENOMEM;
    if (!st)
        st = isim__map_string(&top, "vendor", true, &str, NULL);
    if (!st && !(h->vendor = strdup(str)))
        st = ISIM_ENOMEM;
    /* other names of the device (a dataset's spelling) */
    if (!st)
        st = isim__map_strings(&top, "aliases", false, &h->aliases, NULL);
    if (!st)
        st = isim__map_enum(&top, "kind", true, kinds, &kind, NULL);
    h->kind = (isim_hw_kind)kind;
    if (!st)
        st = read_compute(&top, h);

    if (!st)
        st = isim__map_sub(&top, "efficiency", eff_keys, true, &s, NULL);
    if (!st)
        st = number(&s, h, "efficiency.flops", true, &h->eff_flops, NULL);
    if (!st)
        st = number(&s, h, "efficiency.hbm", true, &h->eff_hbm, NULL);
    /* optional: matmul efficiency rising with the rows of a pass, flops x min(1, r / full), and
     * attention's own share of the 16-bit rate (defaults: flat, and the matmuls' `flops`) */
    bool has_attn = false;
    if (!st)
        st = number(&s, h, "efficiency.flops_full_rows", false, &h->eff_flops_full_rows, NULL);
    if (!st)
        st = number(&s, h, "efficiency.attention", false, &h->eff_attention, &has_attn);
    /* optional: the share of the shorter of a kernel's arithmetic and traffic that does not
     * overlap with the longer (0: perfect overlap, the default) */
    if (!st)
        st = number(&s, h, "efficiency.overlap", false, &h->eff_overlap, NULL);
    /* optional: the rows of a matmul's tile, past which the arithmetic runs after the weights'
     * streaming instead of under it (0: one tile, the default; docs/model.md) */
    if (!st)
        st = number(&s, h, "efficiency.tile_rows", false, &h->eff_tile_rows, NULL);
    /* optional: the bandwidth fractions at which fp4 and int4 weights stream (default: hbm's) */
    if (!st)
        st = number(&s, h, "efficiency.hbm_fp4", false, &h->eff_hbm_fp4, NULL);
    if (!st)
        st = number(&s, h, "efficiency.hbm_int4", false, &h->eff_hbm_int4, NULL);
    /* optional: the bandwidth fraction at which routed experts' weights stream (default: hbm's) */
    if (!st)
        st = number(&s, h, "efficiency.hbm_experts", false, &h->eff_hbm_experts, NULL);
    /* optional: the bandwidth fraction at which attention reads the KV cache (default: hbm's,
     * following a fit of hbm) */
    if (!st)
        st = number(&s, h, "efficiency.hbm_kv", false, &h->eff_hbm_kv, NULL);
    h->attention_follows_flops = !has_attn;
    if (!st && !has_attn)
        h->eff_attention = h->eff_flops;

    if (!st)
        st = isim__map_sub(&top, "memory", mem_keys, true, &s, NULL);
    if (!st)
        st = number(&s, h, "memory.capacity_gb", true, &v, NULL);
    h->mem_bytes = v * 1e9;
    if (!st)
        st = number(&s, h, "memory.bandwidth_gbps", true, &v, NULL);
    h->mem_bytes_per_s = v * 1e9;
    /* optional: what one thread streams alone (a CPU profile: ranks sharing the machine) */
    v = 0;
    if (!st)
        st = number(&s, h, "memory.thread_bandwidth_gbps", false, &v, NULL);
    h->mem_thread_bytes_per_s = v * 1e9;

    if (!st)
        st = isim__map_sub(&top, "scale_up", up_keys, true, &s, NULL);
    if (!st)
        st = whole(&s, h, "scale_up.domain_size", true, &h->domain_size, NULL);
    if (!st)
        st = number(&s, h, "scale_up.bandwidth_gbps", true, &v, NULL);
    h->scale_up_bytes_per_s = v * 1e9;

    if (!st)
        st = isim__map_sub(&top, "scale_out", out_keys, true, &s, NULL);
    if (!st)
        st = number(&s, h, "scale_out.bandwidth_gbps", true, &v, NULL);
    h->scale_out_bytes_per_s = v * 1e9;
    /* the domain is the faster tier; a domain of one device has no links within it to
     * compare */
    if (!st && h->domain_size > 1 && h->scale_out_bytes_per_s > h->scale_up_bytes_per_s)
        st = isim__map_error(&s, "bandwidth_gbps",
                             "'scale_out.bandwidth_gbps' (%g) exceeds 'scale_up.bandwidth_gbps' "
                             "(%g), the faster tier of a domain of %lld devices",
                             v, h->scale_up_bytes_per_s / 1e9, (long long)h->domain_size);

    if (!st)
        st = read_collectives(&top, h);

    if (!st)
        st = isim__map_sub(&top, "kernel", kernel_keys, true, &s, NULL);
    if (!st)
        st = number(&s, h, "kernel.launch_us", true, &v, NULL);
    h->kernel_launch_s = v * 1e-6;

    if (!st)
        st = isim__map_sub(&top, "power", power_keys, false, &s, &h->has_power);
    if (!st && h->has_power)
        st = number(&s, h, "power.tdp_w", true, &h->tdp_w, NULL);

    if (!st)
        st = isim__map_sub(&top, "price", price_keys, true, &s, NULL);
    if (!st)
        st = number(&s, h, "price.cloud_usd_per_h", true, &h->cloud_usd_per_h, NULL);
    if (!st)
        st = number(&s, h, "price.purchase_usd", false, &h->purchase_usd, &h->has_purchase);
    bool has_life = false;
    if (!st)
        st = number(&s, h, "price.life_years", false, &h->life_years, &has_life);
    if (!st && h->has_purchase != has_life)
        st = isim__map_error(&s, has_life ? "life_years" : "purchase_usd",
                             "'price.purchase_usd' and 'price.life_years' go together");

    if (!st)
        st = read_serving(&top, h);
    h->coll_latency_scale = 1;
    h->a2a_latency_scale = 1;
    /* the profile's own values, kept beside the fits (the prior of a new fit) */
    isim_hw_fit *u = &h->unfitted;
    snprintf(u->backend, sizeof u->backend, "profile");
    u->eff_flops = h->eff_flops;
    u->eff_hbm = h->eff_hbm;
    u->eff_hbm_fp4 = h->eff_hbm_fp4;
    u->eff_hbm_int4 = h->eff_hbm_int4;
    u->eff_hbm_experts = h->eff_hbm_experts;
    u->eff_flops_full_rows = h->eff_flops_full_rows;
    u->step_overhead_s = h->step_overhead_s;
    u->request_overhead_s = h->request_overhead_s;
    u->kernel_launch_s = h->kernel_launch_s;
    u->coll_latency_scale = 1;
    u->a2a_latency_scale = 1;
    u->kv = ISIM_BF16;
    /* a what-if on a value a fit replaces wins over the fit */
    static const char *const pin_paths[] = {[ISIM_FIT_FLOPS] = "efficiency.flops",
                                            [ISIM_FIT_HBM] = "efficiency.hbm",
                                            [ISIM_FIT_HBM_FP4] = "efficiency.hbm_fp4",
                                            [ISIM_FIT_HBM_INT4] = "efficiency.hbm_int4",
                                            [ISIM_FIT_HBM_EXPERTS] = "efficiency.hbm_experts",
                                            [ISIM_FIT_FULL_ROWS] = "efficiency.flops_full_rows",
                                            [ISIM_FIT_STEP] = "serving.step_overhead_us",
                                            [ISIM_FIT_REQUEST] = "serving.request_overhead_us",
                                            [ISIM_FIT_LAUNCH] = "kernel.launch_us"};
    for (size_t i = 0; i < r->n_ov; i++)
        for (unsigned k = 0; k < sizeof pin_paths / sizeof *pin_paths; k++)
            if (strcmp(r->ov[i].path, pin_paths[k]) == 0)
                h->pinned |= 1u << k;
    if (!st)
        st = read_fitted(&top, h);
    if (!st && h->n_fits) {
        if (!h->has_serving)
            return isim__map_error(&top, "fitted",
                                   "'fitted' needs the 'serving' section it "
                                   "replaces values of");
        isim_hw declared = *h;
        isim_hw_apply_fit(&declared, &h->fits[0], h);
    }
    if (st == ISIM_ENOMEM)
        return isim__fail(r->err, ISIM_ENOMEM, r->file, 0, 0, "out of memory");
    return st;
}

void isim_hw_free(isim_hw *h)
{
    if (!h)
        return;
    free(h->id);
    free(h->path);
    free(h->name);
    free(h->vendor);
    isim_ids_free(h->aliases);
    isim__facts_free(h->facts, h->n_facts);
    free(h);
}

isim_status isim_hw_load(const char *path, isim_hw **out, isim_error *err)
{
    return isim_hw_load_with(path, NULL, 0, out, err);
}

isim_status isim_hw_load_with(const char *path, const isim_override *ov, size_t n, isim_hw **out,
                              isim_error *err)
{
    *out = NULL;
    isim_hw *h = calloc(1, sizeof *h);
    if (!h)
        return isim__fail(err, ISIM_ENOMEM, path, 0, 0, "out of memory");
    isim_status st = isim__spec_read(path, ov, n, read_hw, h, &h->facts, &h->n_facts, err);
    if (!st && (!(h->id = isim__file_stem(path)) || !(h->path = strdup(path))))
        st = isim__fail(err, ISIM_ENOMEM, path, 0, 0, "out of memory");
    if (st) {
        isim_hw_free(h);
        return st;
    }
    *out = h;
    return ISIM_OK;
}
