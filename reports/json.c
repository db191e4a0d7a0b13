/* JSON documents of predictions and specifications (cJSON). Field names carry their units
 * (docs/output.md); fields that do not apply are null rather than absent so that the shape
 * of a document never changes. */
#include "reports/internal.h"
#include "reports/report.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

double isim_report_round(double x)
{
    if (x == 0 || !isfinite(x))
        return x;
    char buf[32];
    snprintf(buf, sizeof buf, "%.6g", x);
    return strtod(buf, NULL);
}

/* Adds a rounded number, or null for a value that is not finite. */
void isim__json_num(cJSON *o, const char *key, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, isim_report_round(v));
    else
        cJSON_AddNullToObject(o, key);
}

static void num(cJSON *o, const char *key, double v)
{
    isim__json_num(o, key, v);
}

static void num_or_null(cJSON *o, const char *key, double v, bool present)
{
    if (present)
        num(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

cJSON *isim__json_terms_ms(const isim_terms *t)
{
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; i < ISIM_TERM_COUNT; i++)
        num(o, isim_term_name((isim_term)i), t->t[i] * 1e3);
    num(o, "total", t->total_s * 1e3);
    cJSON_AddStringToObject(o, "binding", isim_term_name(t->binding));
    return o;
}

static char *finish(cJSON *root)
{
    char *s = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    return s;
}

char *isim_report_predict_json(const isim_model *m, const isim_hw *hw, const isim_query *q,
                               const isim_result *r)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    bool ok = r->feasible, paper = r->fidelity == ISIM_PAPER;
    cJSON_AddStringToObject(o, "model", m->id);
    cJSON_AddStringToObject(o, "hw", hw->id);
    cJSON_AddStringToObject(o, "fidelity", isim_fidelity_name(r->fidelity));
    num(o, "devices", r->devices);
    num(o, "batch", q->batch);
    num(o, "input_tokens", q->input_tokens);
    num(o, "output_tokens", q->output_tokens);
    cJSON_AddStringToObject(o, "weights", isim_dtype_name(r->weights));
    cJSON_AddStringToObject(o, "kv", isim_dtype_name(r->kv));
    num_or_null(o, "tp", r->tp, !paper);
    num_or_null(o, "pp", paper ? r->pp_paper : r->pp, !paper || ok);
    num_or_null(o, "ep", r->ep, !paper);
    num_or_null(o, "dp", r->dp, !paper);
    cJSON_AddBoolToObject(o, "feasible", ok);
    cJSON_AddStringToObject(o, "reason", ok ? "" : isim_reason_name(r->reason));
    cJSON_AddStringToObject(o, "reason_detail", ok ? "" : r->reason_detail);
    num_or_null(o, "tpot_ms", r->tpot_s * 1e3, ok);
    num_or_null(o, "ttft_ms", r->ttft_s * 1e3, ok);
    num_or_null(o, "tokens_per_s_per_user", r->tokens_per_s_per_user, ok);
    num_or_null(o, "tokens_per_s_per_device", r->tokens_per_s_per_device, ok);
    num_or_null(o, "tokens_per_s_total", r->tokens_per_s_total, ok);
    num_or_null(o, "cost_usd_per_mtok_output", r->cost_usd_per_mtok_output, ok);
    num_or_null(o, "cost_usd_per_mtok_input", r->cost_usd_per_mtok_input, ok);
    num_or_null(o, "energy_j_per_token_output", r->j_per_token_output, ok && r->has_energy);
    num_or_null(o, "energy_j_per_token_input", r->j_per_token_input, ok && r->has_energy);
    num_or_null(o, "mfu", r->mfu, ok);
    num(o, "price_usd_per_device_hour", hw->cloud_usd_per_h);
    if (ok) {
        cJSON_AddStringToObject(o, "binding", isim_term_name(r->decode.binding));
        cJSON_AddItemToObject(o, "terms_ms", isim__json_terms_ms(&r->decode));
        cJSON_AddItemToObject(o, "prefill_terms_ms", isim__json_terms_ms(&r->prefill));
    } else {
        cJSON_AddNullToObject(o, "binding");
        cJSON_AddNullToObject(o, "terms_ms");
        cJSON_AddNullToObject(o, "prefill_terms_ms");
    }
    cJSON *mem = cJSON_AddObjectToObject(o, "memory_bytes_per_device");
    num(mem, "weights", r->memory.weights);
    num(mem, "kv_cache", r->memory.kv_cache);
    num(mem, "activations", r->memory.activations);
    num(mem, "reserve", r->memory.reserve);
    num(mem, "total", r->memory.total);
    num(mem, "capacity", r->memory.capacity);
    cJSON *pipe = cJSON_AddObjectToObject(o, "pipeline");
    num(pipe, "micro_batches", r->micro_batches);
    cJSON_AddStringToObject(pipe, "schedule", isim_pp_schedule_name(q->pp_schedule));
    num_or_null(pipe, "bubble_fraction", r->pp_bubble, !paper && ok);
    if (paper && ok) {
        cJSON *p = cJSON_AddObjectToObject(o, "paper");
        cJSON_AddBoolToObject(p, "two_d_tp", r->two_d);
        num(p, "attn_scaledown", r->attn_scaledown);
    } else {
        cJSON_AddNullToObject(o, "paper");
    }
    if (q->draft && ok) {
        cJSON *s = cJSON_AddObjectToObject(o, "speculative");
        cJSON_AddStringToObject(s, "draft", q->draft->id);
        cJSON_AddStringToObject(s, "draft_weights", isim_dtype_name(q->draft_weights));
        num(s, "alpha", q->spec_alpha);
        num(s, "gamma", r->spec_gamma);
        num(s, "tokens_per_step", r->spec_gamma ? r->spec_tokens_per_step : 1);
        if (r->spec_gamma) {
            cJSON_AddItemToObject(s, "target_pass_terms_ms", isim__json_terms_ms(&r->spec_target));
            cJSON_AddItemToObject(s, "draft_pass_terms_ms", isim__json_terms_ms(&r->spec_draft));
        } else {
            cJSON_AddNullToObject(s, "target_pass_terms_ms");
            cJSON_AddNullToObject(s, "draft_pass_terms_ms");
        }
    } else {
        cJSON_AddNullToObject(o, "speculative");
    }
    return finish(o);
}

static cJSON *facts_json(const isim_fact *f, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "key", f[i].path);
        cJSON_AddNumberToObject(x, "value", f[i].value);
        cJSON_AddStringToObject(x, "source", f[i].source);
        cJSON_AddItemToArray(a, x);
    }
    return a;
}

char *isim_report_model_json(const isim_model *m)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    const isim_model_derived *x = &m->d;
    cJSON_AddStringToObject(o, "id", m->id);
    cJSON_AddStringToObject(o, "name", m->name);
    cJSON_AddStringToObject(o, "family", m->family);
    cJSON_AddStringToObject(o, "release_weights", isim_dtype_name(m->release_weights));
    cJSON *d = cJSON_AddObjectToObject(o, "derived");
    num(d, "params_total", x->params_total);
    num(d, "params_active", x->params_active);
    num(d, "params_active_as_declared", isim_model_active_as_declared(m));
    num(d, "declared_params_total", m->declared_total);
    num_or_null(d, "declared_params_active", m->declared_active, m->has_moe);
    num(d, "params_embedding", x->embedding_params);
    num(d, "params_unembedding", x->unembedding_params);
    num(d, "params_attention_per_layer", x->attn_params_layer);
    num(d, "params_dense_ffn_per_layer", x->dense_ffn_params);
    num(d, "params_expert", x->expert_params);
    num(d, "params_shared_expert", x->shared_expert_params);
    num(d, "dense_layers", (double)x->n_dense_layers);
    num(d, "moe_layers", (double)x->n_moe_layers);
    num(d, "sliding_layers", (double)x->n_sliding_layers);
    num(d, "kv_bytes_per_token_bf16", isim_model_kv_bytes(m, 1, ISIM_BF16));
    num(d, "kv_bytes_at_max_context_bf16",
        isim_model_kv_bytes(m, (double)m->max_context, ISIM_BF16));
    num(d, "flops_per_token_at_zero_context", isim_model_flops_per_token(m, 0));
    num(d, "flops_per_token_at_4k_context", isim_model_flops_per_token(m, 4096));
    cJSON_AddItemToObject(o, "facts", facts_json(m->facts, m->n_facts));
    return finish(o);
}

char *isim_report_hw_json(const isim_hw *hw)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "id", hw->id);
    cJSON_AddStringToObject(o, "name", hw->name);
    cJSON_AddStringToObject(o, "vendor", hw->vendor);
    cJSON *p = cJSON_AddObjectToObject(o, "peak_flops_per_s");
    for (int t = 0; t < ISIM_DTYPE_COUNT; t++)
        num_or_null(p, isim_dtype_name((isim_dtype)t), hw->peak_flops[t], hw->peak_flops[t] > 0);
    num(o, "memory_bytes", hw->mem_bytes);
    num(o, "memory_bytes_per_s", hw->mem_bytes_per_s);
    num(o, "scale_up_domain", (double)hw->domain_size);
    num(o, "scale_up_bytes_per_s", hw->scale_up_bytes_per_s);
    num(o, "scale_out_bytes_per_s", hw->scale_out_bytes_per_s);
    num(o, "price_usd_per_device_hour", hw->cloud_usd_per_h);
    num_or_null(o, "tdp_w", hw->tdp_w, hw->has_power);
    cJSON_AddBoolToObject(o, "deploy_ready", hw->has_serving);
    cJSON_AddItemToObject(o, "facts", facts_json(hw->facts, hw->n_facts));
    return finish(o);
}
