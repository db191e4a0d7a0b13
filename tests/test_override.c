/* What-if overrides of specification values: scales and replacements by key path, the new
 * value's source, and every error pointing at the place the override was written. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tests/testutil.h"

static const char *profile(const char *id)
{
    static char path[1024];
    cr_assert_eq(isim_catalog_path(ISIM_DATA_DIR, "hw", id, path, sizeof path, NULL), ISIM_OK);
    return path;
}

static isim_override at(const char *path, const char *value, double scale, int line)
{
    return (isim_override){.path = path, .value = value, .scale = scale,
                           .source = "what-if in sweep.yaml", .file = "sweep.yaml",
                           .line = line, .column = 7};
}

static const isim_fact *fact(const isim_hw *h, const char *path)
{
    for (size_t i = 0; i < h->n_facts; i++)
        if (strcmp(h->facts[i].path, path) == 0)
            return &h->facts[i];
    cr_assert_fail("no fact '%s'", path);
    return NULL;
}

Test(override, scales_and_replaces_numbers_and_records_their_source)
{
    isim_hw *base = tu_hw("h100-sxm"), *h = NULL;
    isim_override ov[] = {
        at("scale_up.bandwidth_gbps", NULL, 2, 3),          /* plain number under a source */
        at("collectives.protocols.LL.base_us", "3.4", 0, 4), /* inside a flow mapping */
        at("serving.step_overhead_us", NULL, 0.5, 5),       /* long form {value, source} */
        at("price.cloud_usd_per_h", "2.5", 0, 6)};
    isim_error e = {0};
    cr_assert_eq(isim_hw_load_with(profile("h100-sxm"), ov, 4, &h, &e), ISIM_OK, "%s", e.message);
    cr_expect(tu_close(h->scale_up_bytes_per_s, 2 * base->scale_up_bytes_per_s, 1e-15));
    cr_expect(tu_close(h->protocols[0].base_s, 3.4e-6, 1e-15));
    cr_expect(tu_close(h->step_overhead_s, 0.5 * base->step_overhead_s, 1e-15));
    cr_expect(tu_close(h->cloud_usd_per_h, 2.5, 1e-15));
    /* untouched values stay */
    cr_expect(tu_close(h->mem_bytes_per_s, base->mem_bytes_per_s, 1e-15));
    cr_expect(tu_close(h->protocols[1].base_s, base->protocols[1].base_s, 1e-15));
    const isim_fact *f = fact(h, "scale_up.bandwidth_gbps");
    cr_expect_str_eq(f->source, "what-if in sweep.yaml");
    cr_expect(tu_close(f->value, 900, 1e-15));
    cr_expect_eq(f->line, 3);
    cr_expect_str_eq(fact(h, "serving.step_overhead_us")->source, "what-if in sweep.yaml");
    cr_expect_str_neq(fact(h, "scale_up.domain_size")->source, "what-if in sweep.yaml");
    isim_hw_free(h);
    isim_hw_free(base);
}

Test(override, models_change_like_hardware)
{
    isim_model *base = tu_model("llama-3.1-70b"), *m = NULL;
    char path[1024];
    cr_assert_eq(isim_catalog_path(ISIM_DATA_DIR, "model", "llama-3.1-70b", path, sizeof path, NULL),
                 ISIM_OK);
    isim_override ov = at("architecture.n_layers", NULL, 0.5, 2);
    isim_error e = {0};
    cr_assert_eq(isim_model_load_with(path, &ov, 1, &m, &e), ISIM_OK, "%s", e.message);
    cr_expect_eq(m->n_layers, 40);
    /* half the layers: the per-layer parameters halve, embeddings stay */
    double per_layer = (base->d.params_total - m->d.params_total) / 40;
    cr_expect(tu_close(m->d.params_total, base->d.params_total - 40 * per_layer, 1e-12));
    cr_expect_lt(m->d.params_total, 0.55 * base->d.params_total);
    isim_model_free(m);
    isim_model_free(base);
}

static void expect_refused(isim_override ov, const char *needle)
{
    isim_hw *h = NULL;
    isim_error e = {0};
    cr_expect_neq(isim_hw_load_with(profile("h100-sxm"), &ov, 1, &h, &e), ISIM_OK, "%s", ov.path);
    char buf[600];
    isim_error_format(&e, buf, sizeof buf);
    cr_expect(strstr(buf, needle) != NULL, "'%s' not in '%s'", needle, buf);
    cr_expect(strncmp(buf, "sweep.yaml:9:7: ", 16) == 0, "not at the override: %s", buf);
    isim_hw_free(h);
}

/* Each way an override can be wrong, reported where it was written. */
Test(override, errors_point_at_the_override)
{
    expect_refused(at("scale_up.latency_us", "3", 0, 9),
                   "unknown key 'latency_us' in 'scale_up' (expected: domain_size, bandwidth_gbps)");
    expect_refused(at("scale_upp.bandwidth_gbps", "3", 0, 9), "unknown key 'scale_upp'");
    expect_refused(at("kind", NULL, 0.5, 9), "a scale needs a number there, not 'gpu'");
    expect_refused(at("power.peak_w", NULL, 2, 9), "nothing to scale, ");
    expect_refused(at("efficiency.flops", "2", 0, 9),
                   "'efficiency.flops' = 2 is out of range [0.01, 1]");
    expect_refused(at("memory.capacity_gb", "80 GB", 0, 9), "the unit is in the key name");
    expect_refused(at("collectives.protocols", "3", 0, 9), "is a section, not a single value");
    expect_refused(at("memory.capacity_gb.x", "3", 0, 9), "'capacity_gb' is not a section");
    /* a value that conflicts with others of the file: the conflict is named where it is */
    isim_hw *h = NULL;
    isim_error e = {0};
    isim_override flat = at("collectives.model", "flat", 0, 9);
    cr_expect_neq(isim_hw_load_with(profile("h100-sxm"), &flat, 1, &h, &e), ISIM_OK);
    cr_expect(strstr(e.message, "'collectives.protocols' applies to model nccl only") != NULL,
              "%s", e.message);
}
