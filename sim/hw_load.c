/* Loads hw-profiles/<id>.yaml (schema in docs/formats.md) into an isim_hw in SI units
 * (bytes, seconds, FLOP/s), refusing anything unknown, mistyped, implausible or unsourced
 * with file:line:col. */
#include "sim/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static isim_status read_compute(isim__map *top, isim_hw *h)
{
    static const struct {
        const char *key;
        isim_dtype t;
    } rates[] = {{"fp32_tflops", ISIM_FP32}, {"bf16_tflops", ISIM_BF16}, {"fp16_tflops", ISIM_FP16},
                 {"fp8_tflops", ISIM_FP8},   {"int8_tops", ISIM_INT8},   {"int4_tops", ISIM_INT4},
                 {"fp4_tflops", ISIM_FP4}};
    static const char *const keys[] = {"fp32_tflops", "bf16_tflops", "fp16_tflops", "fp8_tflops",
                                       "int8_tops",   "int4_tops",   "fp4_tflops",  NULL};
    isim__map c;
    isim_status st = isim__map_sub(top, "compute", keys, true, &c, NULL);
    for (size_t i = 0; !st && i < sizeof rates / sizeof rates[0]; i++) {
        double v = 0;
        st = isim__map_number(&c, rates[i].key, false, 0.001, 100000, &v, NULL);
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
        st = isim__map_number(&c, "per_rank_us", true, 0, 1e6, &us, NULL);
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
            st = isim__map_number(&q, "base_us", true, 0, 1e6, &base, NULL);
        if (!st)
            st = isim__map_number(&q, "per_rank_us", true, 0, 1e6, &rank, NULL);
        if (!st)
            st = isim__map_number(&q, "per_node_log2_us", true, 0, 1e6, &node, NULL);
        if (!st)
            st = isim__map_number(&q, "bandwidth_factor", true, 0.01, 1, &pr->bandwidth_factor,
                                  NULL);
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
        "memory_utilization",   "runtime_reserve_gb",  "step_overhead_us", "kernels_per_layer",
        "prefill_chunk_tokens", "request_overhead_us", "activation_bytes", NULL};
    isim__map s;
    h->activation_bytes = 2; /* 16-bit activations unless the engine's profile says otherwise */
    isim_status st = isim__map_sub(top, "serving", keys, false, &s, &h->has_serving);
    if (st || !h->has_serving)
        return st;
    double gb = 0, us = 0;
    if (!st)
        st = isim__map_number(&s, "memory_utilization", true, 0.05, 1, &h->mem_utilization, NULL);
    if (!st)
        st = isim__map_number(&s, "runtime_reserve_gb", true, 0, 100000, &gb, NULL);
    if (!st)
        st = isim__map_number(&s, "step_overhead_us", true, 0, 1e6, &us, NULL);
    if (!st)
        st = isim__map_number(&s, "kernels_per_layer", true, 0, 1000, &h->kernels_per_layer, NULL);
    if (!st)
        st = isim__map_number(&s, "prefill_chunk_tokens", true, 1, 1e7, &h->prefill_chunk_tokens,
                              NULL);
    double req_us = 0;
    if (!st)
        st = isim__map_number(&s, "request_overhead_us", false, 0, 1e7, &req_us, NULL);
    h->request_overhead_s = req_us * 1e-6;
    if (!st)
        st = isim__map_number(&s, "activation_bytes", false, 1, 8, &h->activation_bytes, NULL);
    h->runtime_reserve_bytes = gb * 1e9;
    h->step_overhead_s = us * 1e-6;
    if (!st && h->runtime_reserve_bytes >= h->mem_bytes * h->mem_utilization)
        st = isim__map_error(&s, "runtime_reserve_gb",
                             "'serving.runtime_reserve_gb' (%g) leaves no memory of the %g GB "
                             "the engine may use",
                             gb, h->mem_bytes * h->mem_utilization / 1e9);
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
    static const char *const dtypes[] = {
#define ISIM_X(name, str, bytes) str,
        ISIM_DTYPE_LIST(ISIM_X)
#undef ISIM_X
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
            isim__map e;
            isim_hw_fit *fit = &h->fits[h->n_fits];
            double us = 0, v = 0;
            int kv = 0;
            if (strlen(name) >= sizeof fit->backend)
                return isim__map_error(&b, name, "engine name '%s' is too long", name);
            snprintf(fit->backend, sizeof fit->backend, "%s", name);
            st = isim__map_sub(&b, name, fit_keys, true, &e, NULL);
            if (!st)
                st = isim__map_number(&e, "flops", true, 0.01, 1, &fit->eff_flops, NULL);
            if (!st)
                st = isim__map_number(&e, "hbm", true, 0.01, 1, &fit->eff_hbm, NULL);
            if (!st)
                st = isim__map_number(&e, "step_overhead_us", true, 0, 1e6, &us, NULL);
            if (!st)
                st = isim__map_number(&e, "collective_latency_scale", true, 1e-3, 1e3,
                                      &fit->coll_latency_scale, NULL);
            if (!st)
                st = isim__map_enum(&e, "kv", true, dtypes, &kv, NULL);
            double req = h->request_overhead_s * 1e6, launch = h->kernel_launch_s * 1e6;
            if (!st)
                st = isim__map_number(&e, "request_overhead_us", false, 0, 1e7, &req, NULL);
            if (!st)
                st = isim__map_number(&e, "kernel_launch_us", false, 0, 1e5, &launch, NULL);
            fit->eff_flops_full_rows = h->eff_flops_full_rows;
            if (!st)
                st = isim__map_number(&e, "flops_full_rows", false, 0, 1e6,
                                      &fit->eff_flops_full_rows, NULL);
            fit->eff_hbm_fp4 = h->eff_hbm_fp4;
            fit->eff_hbm_int4 = h->eff_hbm_int4;
            if (!st)
                st = isim__map_number(&e, "hbm_fp4", false, 0.01, 1, &fit->eff_hbm_fp4, NULL);
            if (!st)
                st = isim__map_number(&e, "hbm_int4", false, 0.01, 1, &fit->eff_hbm_int4, NULL);
            fit->eff_hbm_experts = h->eff_hbm_experts;
            if (!st)
                st = isim__map_number(&e, "hbm_experts", false, 0.01, 1, &fit->eff_hbm_experts,
                                      NULL);
            if (!st)
                st = isim__map_number(&e, "lockstep", false, 0, 1, &fit->lockstep, NULL);
            fit->a2a_latency_scale = 1;
            if (!st)
                st = isim__map_number(&e, "all_to_all_latency_scale", false, 1e-3, 1e3,
                                      &fit->a2a_latency_scale, NULL);
            double *info[] = {&fit->train_rows, &fit->heldout_rows, &fit->heldout_tpot_median_pct,
                              &fit->heldout_tpot_p90_pct};
            for (int k = 13; !st && fit_keys[k]; k++)
                st = isim__map_number(&e, fit_keys[k], false, 0, 1e9,
                                      k - 13 < 4 ? info[k - 13] : &v, NULL);
            fit->step_overhead_s = us * 1e-6;
            fit->request_overhead_s = req * 1e-6;
            fit->kernel_launch_s = launch * 1e-6;
            fit->kv = (isim_dtype)kv;
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
        st = isim__map_number(&s, "flops", true, 0.01, 1, &h->eff_flops, NULL);
    if (!st)
        st = isim__map_number(&s, "hbm", true, 0.01, 1, &h->eff_hbm, NULL);
    /* optional: matmul efficiency rising with the rows of a pass, flops x min(1, r / full), and
     * attention's own share of the 16-bit rate (defaults: flat, and the matmuls' `flops`) */
    bool has_attn = false;
    if (!st)
        st = isim__map_number(&s, "flops_full_rows", false, 0, 1e6, &h->eff_flops_full_rows, NULL);
    if (!st)
        st = isim__map_number(&s, "attention", false, 0.001, 1, &h->eff_attention, &has_attn);
    /* optional: the share of the shorter of a kernel's arithmetic and traffic that does not
     * overlap with the longer (0: perfect overlap, the default) */
    if (!st)
        st = isim__map_number(&s, "overlap", false, 0, 1, &h->eff_overlap, NULL);
    /* optional: the rows of a matmul's tile, past which the arithmetic runs after the weights'
     * streaming instead of under it (0: one tile, the default; docs/model.md) */
    if (!st)
        st = isim__map_number(&s, "tile_rows", false, 0, 1e6, &h->eff_tile_rows, NULL);
    /* optional: the bandwidth fractions at which fp4 and int4 weights stream (default: hbm's) */
    if (!st)
        st = isim__map_number(&s, "hbm_fp4", false, 0.01, 1, &h->eff_hbm_fp4, NULL);
    if (!st)
        st = isim__map_number(&s, "hbm_int4", false, 0.01, 1, &h->eff_hbm_int4, NULL);
    /* optional: the bandwidth fraction at which routed experts' weights stream (default: hbm's) */
    if (!st)
        st = isim__map_number(&s, "hbm_experts", false, 0.01, 1, &h->eff_hbm_experts, NULL);
    /* optional: the bandwidth fraction at which attention reads the KV cache (default: hbm's,
     * following a fit of hbm) */
    if (!st)
        st = isim__map_number(&s, "hbm_kv", false, 0.01, 1, &h->eff_hbm_kv, NULL);
    h->attention_follows_flops = !has_attn;
    if (!st && !has_attn)
        h->eff_attention = h->eff_flops;

    if (!st)
        st = isim__map_sub(&top, "memory", mem_keys, true, &s, NULL);
    if (!st)
        st = isim__map_number(&s, "capacity_gb", true, 0.001, 100000, &v, NULL);
    h->mem_bytes = v * 1e9;
    if (!st)
        st = isim__map_number(&s, "bandwidth_gbps", true, 0.1, 1e6, &v, NULL);
    h->mem_bytes_per_s = v * 1e9;
    /* optional: what one thread streams alone (a CPU profile: ranks sharing the machine) */
    v = 0;
    if (!st)
        st = isim__map_number(&s, "thread_bandwidth_gbps", false, 0.1, 1e6, &v, NULL);
    h->mem_thread_bytes_per_s = v * 1e9;

    if (!st)
        st = isim__map_sub(&top, "scale_up", up_keys, true, &s, NULL);
    if (!st)
        st = isim__map_int(&s, "domain_size", true, 1, 1000000, &h->domain_size, NULL);
    if (!st)
        st = isim__map_number(&s, "bandwidth_gbps", true, 0.01, 1e6, &v, NULL);
    h->scale_up_bytes_per_s = v * 1e9;

    if (!st)
        st = isim__map_sub(&top, "scale_out", out_keys, true, &s, NULL);
    if (!st)
        st = isim__map_number(&s, "bandwidth_gbps", true, 0.01, 1e6, &v, NULL);
    h->scale_out_bytes_per_s = v * 1e9;

    if (!st)
        st = read_collectives(&top, h);

    if (!st)
        st = isim__map_sub(&top, "kernel", kernel_keys, true, &s, NULL);
    if (!st)
        st = isim__map_number(&s, "launch_us", true, 0, 1e5, &v, NULL);
    h->kernel_launch_s = v * 1e-6;

    if (!st)
        st = isim__map_sub(&top, "power", power_keys, false, &s, &h->has_power);
    if (!st && h->has_power)
        st = isim__map_number(&s, "tdp_w", true, 1, 1e6, &h->tdp_w, NULL);

    if (!st)
        st = isim__map_sub(&top, "price", price_keys, true, &s, NULL);
    if (!st)
        st = isim__map_number(&s, "cloud_usd_per_h", true, 0.001, 10000, &h->cloud_usd_per_h, NULL);
    if (!st)
        st =
            isim__map_number(&s, "purchase_usd", false, 1, 1e9, &h->purchase_usd, &h->has_purchase);
    bool has_life = false;
    if (!st)
        st = isim__map_number(&s, "life_years", false, 0.5, 30, &h->life_years, &has_life);
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
