/* Loads hw-profiles/<id>.yaml (schema in docs/formats.md) into an isim_hw in SI units
 * (bytes, seconds, FLOP/s), refusing anything unknown, mistyped, implausible or unsourced
 * with file:line:col. */
#include "sim/internal.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static isim_status read_compute(isim__map *top, isim_hw *h)
{
    static const struct {
        const char *key;
        isim_dtype t;
    } rates[] = {{"fp32_tflops", ISIM_FP32}, {"bf16_tflops", ISIM_BF16},
                 {"fp16_tflops", ISIM_FP16}, {"fp8_tflops", ISIM_FP8},
                 {"int8_tops", ISIM_INT8},   {"int4_tops", ISIM_INT4},
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
        st = isim__map_error(&c, NULL, "'compute' needs a 16-bit rate: bf16_tflops or "
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
    if (!st) st = isim__map_enum(&c, "model", true, models, &model, NULL);
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
        if (!st) st = isim__map_number(&q, "base_us", true, 0, 1e6, &base, NULL);
        if (!st) st = isim__map_number(&q, "per_rank_us", true, 0, 1e6, &rank, NULL);
        if (!st) st = isim__map_number(&q, "per_node_log2_us", true, 0, 1e6, &node, NULL);
        if (!st) st = isim__map_number(&q, "bandwidth_factor", true, 0.01, 1, &pr->bandwidth_factor, NULL);
        pr->base_s = base * 1e-6;
        pr->per_rank_s = rank * 1e-6;
        pr->per_node_log2_s = node * 1e-6;
    }
    if (!st && h->n_protocols == 0)
        st = isim__map_error(&p, NULL, "'collectives.protocols' lists no protocol (expected: LL, "
                                       "LL128, Simple)");
    return st;
}

static isim_status read_serving(isim__map *top, isim_hw *h)
{
    static const char *const keys[] = {"memory_utilization", "runtime_reserve_gb",
                                       "step_overhead_us",   "kernels_per_layer",
                                       "prefill_chunk_tokens", NULL};
    isim__map s;
    isim_status st = isim__map_sub(top, "serving", keys, false, &s, &h->has_serving);
    if (st || !h->has_serving)
        return st;
    double gb = 0, us = 0;
    if (!st) st = isim__map_number(&s, "memory_utilization", true, 0.05, 1, &h->mem_utilization, NULL);
    if (!st) st = isim__map_number(&s, "runtime_reserve_gb", true, 0, 100000, &gb, NULL);
    if (!st) st = isim__map_number(&s, "step_overhead_us", true, 0, 1e6, &us, NULL);
    if (!st) st = isim__map_number(&s, "kernels_per_layer", true, 0, 1000, &h->kernels_per_layer, NULL);
    if (!st) st = isim__map_number(&s, "prefill_chunk_tokens", true, 1, 1e7, &h->prefill_chunk_tokens, NULL);
    h->runtime_reserve_bytes = gb * 1e9;
    h->step_overhead_s = us * 1e-6;
    if (!st && h->runtime_reserve_bytes >= h->mem_bytes * h->mem_utilization)
        st = isim__map_error(&s, "runtime_reserve_gb",
                             "'serving.runtime_reserve_gb' (%g) leaves no memory of the %g GB "
                             "the engine may use",
                             gb, h->mem_bytes * h->mem_utilization / 1e9);
    return st;
}

static isim_status read_hw(isim__reader *r, const isim__ynode *root, void *obj)
{
    isim_hw *h = obj;
    static const char *const keys[] = {"name",        "vendor",    "kind",      "compute",
                                       "efficiency",  "memory",    "scale_up",  "scale_out",
                                       "collectives", "kernel",    "power",     "price",
                                       "serving",     NULL};
    static const char *const kinds[] = {"gpu", "tpu", "lpu", "cpu", "accelerator", NULL};
    static const char *const eff_keys[] = {"flops", "hbm", NULL};
    static const char *const mem_keys[] = {"capacity_gb", "bandwidth_gbps", NULL};
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
    if (!st) st = isim__map_string(&top, "name", true, &str, NULL);
    if (!st && !(h->name = strdup(str))) st = ISIM_ENOMEM;
    if (!st) st = isim__map_string(&top, "vendor", true, &str, NULL);
    if (!st && !(h->vendor = strdup(str))) st = ISIM_ENOMEM;
    if (!st) st = isim__map_enum(&top, "kind", true, kinds, &kind, NULL);
    h->kind = (isim_hw_kind)kind;
    if (!st) st = read_compute(&top, h);

    if (!st) st = isim__map_sub(&top, "efficiency", eff_keys, true, &s, NULL);
    if (!st) st = isim__map_number(&s, "flops", true, 0.01, 1, &h->eff_flops, NULL);
    if (!st) st = isim__map_number(&s, "hbm", true, 0.01, 1, &h->eff_hbm, NULL);

    if (!st) st = isim__map_sub(&top, "memory", mem_keys, true, &s, NULL);
    if (!st) st = isim__map_number(&s, "capacity_gb", true, 0.001, 100000, &v, NULL);
    h->mem_bytes = v * 1e9;
    if (!st) st = isim__map_number(&s, "bandwidth_gbps", true, 0.1, 1e6, &v, NULL);
    h->mem_bytes_per_s = v * 1e9;

    if (!st) st = isim__map_sub(&top, "scale_up", up_keys, true, &s, NULL);
    if (!st) st = isim__map_int(&s, "domain_size", true, 1, 1000000, &h->domain_size, NULL);
    if (!st) st = isim__map_number(&s, "bandwidth_gbps", true, 0.01, 1e6, &v, NULL);
    h->scale_up_bytes_per_s = v * 1e9;

    if (!st) st = isim__map_sub(&top, "scale_out", out_keys, true, &s, NULL);
    if (!st) st = isim__map_number(&s, "bandwidth_gbps", true, 0.01, 1e6, &v, NULL);
    h->scale_out_bytes_per_s = v * 1e9;

    if (!st) st = read_collectives(&top, h);

    if (!st) st = isim__map_sub(&top, "kernel", kernel_keys, true, &s, NULL);
    if (!st) st = isim__map_number(&s, "launch_us", true, 0, 1e5, &v, NULL);
    h->kernel_launch_s = v * 1e-6;

    if (!st) st = isim__map_sub(&top, "power", power_keys, false, &s, &h->has_power);
    if (!st && h->has_power) st = isim__map_number(&s, "tdp_w", true, 1, 1e6, &h->tdp_w, NULL);

    if (!st) st = isim__map_sub(&top, "price", price_keys, true, &s, NULL);
    if (!st) st = isim__map_number(&s, "cloud_usd_per_h", true, 0.001, 10000, &h->cloud_usd_per_h, NULL);
    if (!st) st = isim__map_number(&s, "purchase_usd", false, 1, 1e9, &h->purchase_usd, &h->has_purchase);
    bool has_life = false;
    if (!st) st = isim__map_number(&s, "life_years", false, 0.5, 30, &h->life_years, &has_life);
    if (!st && h->has_purchase != has_life)
        st = isim__map_error(&s, has_life ? "life_years" : "purchase_usd",
                             "'price.purchase_usd' and 'price.life_years' go together");

    if (!st) st = read_serving(&top, h);
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
