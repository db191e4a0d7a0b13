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

/* item added under key (or appended), or NULL with the loss remembered */
static cJSON *added(isim__json *j, cJSON *parent, const char *key, cJSON *item)
{
    if (item && parent &&
        (key ? cJSON_AddItemToObject(parent, key, item) : cJSON_AddItemToArray(parent, item)))
        return item;
    j->lost = true;
    cJSON_Delete(item);
    return NULL;
}

cJSON *isim__json_new(isim__json *j)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        j->lost = true;
    return o;
}

void isim__json_item(isim__json *j, cJSON *parent, const char *key, cJSON *item)
{
    added(j, parent, key, item);
}

cJSON *isim__json_obj(isim__json *j, cJSON *parent, const char *key)
{
    return added(j, parent, key, cJSON_CreateObject());
}

cJSON *isim__json_arr(isim__json *j, cJSON *parent, const char *key)
{
    return added(j, parent, key, cJSON_CreateArray());
}

void isim__json_str(isim__json *j, cJSON *o, const char *key, const char *s)
{
    added(j, o, key, cJSON_CreateString(s));
}

void isim__json_null(isim__json *j, cJSON *o, const char *key)
{
    added(j, o, key, cJSON_CreateNull());
}

void isim__json_bool(isim__json *j, cJSON *o, const char *key, bool b)
{
    added(j, o, key, cJSON_CreateBool(b));
}

void isim__json_num(isim__json *j, cJSON *o, const char *key, double v)
{
    added(j, o, key, isfinite(v) ? cJSON_CreateNumber(isim_report_round(v)) : cJSON_CreateNull());
}

char *isim__json_finish(isim__json *j, cJSON *root)
{
    char *s = root && !j->lost ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    return s;
}

static void num(isim__json *j, cJSON *o, const char *key, double v)
{
    isim__json_num(j, o, key, v);
}

static void num_or_null(isim__json *j, cJSON *o, const char *key, double v, bool present)
{
    if (present)
        num(j, o, key, v);
    else
        isim__json_null(j, o, key);
}

cJSON *isim__json_terms_ms(isim__json *j, const isim_terms *t)
{
    cJSON *o = isim__json_new(j);
    for (int i = 0; i < ISIM_TERM_COUNT; i++)
        num(j, o, isim_term_name((isim_term)i), t->t[i] * 1e3);
    num(j, o, "total", t->total_s * 1e3);
    isim__json_str(j, o, "binding", isim_term_name(t->binding));
    return o;
}

static cJSON *predict_object(isim__json *j, const isim_model *m, const isim_hw *hw,
                             const isim_query *q, const isim_result *r)
{
    cJSON *o = isim__json_new(j);
    bool ok = r->feasible, paper = r->fidelity == ISIM_PAPER;
    isim__json_str(j, o, "model", m->id);
    isim__json_str(j, o, "hw", hw->id);
    isim__json_str(j, o, "fidelity", isim_fidelity_name(r->fidelity));
    num(j, o, "devices", r->devices);
    num(j, o, "batch", q->batch);
    num(j, o, "input_tokens", q->input_tokens);
    num(j, o, "output_tokens", q->output_tokens);
    isim__json_str(j, o, "weights", isim_dtype_name(r->weights));
    isim__json_str(j, o, "kv", isim_dtype_name(r->kv));
    num_or_null(j, o, "tp", r->tp, !paper);
    num_or_null(j, o, "pp", paper ? r->pp_paper : r->pp, !paper || ok);
    num_or_null(j, o, "ep", r->ep, !paper);
    num_or_null(j, o, "dp", r->dp, !paper);
    isim__json_bool(j, o, "feasible", ok);
    isim__json_str(j, o, "reason", ok ? "" : isim_reason_name(r->reason));
    isim__json_str(j, o, "reason_detail", ok ? "" : r->reason_detail);
    num_or_null(j, o, "tpot_ms", r->tpot_s * 1e3, ok);
    num_or_null(j, o, "ttft_ms", r->ttft_s * 1e3, ok);
    num_or_null(j, o, "tokens_per_s_per_user", r->tokens_per_s_per_user, ok);
    num_or_null(j, o, "tokens_per_s_per_device", r->tokens_per_s_per_device, ok);
    num_or_null(j, o, "tokens_per_s_total", r->tokens_per_s_total, ok);
    num_or_null(j, o, "cost_usd_per_mtok_output", r->cost_usd_per_mtok_output, ok);
    num_or_null(j, o, "cost_usd_per_mtok_input", r->cost_usd_per_mtok_input, ok);
    num_or_null(j, o, "energy_j_per_token_output", r->j_per_token_output, ok && r->has_energy);
    num_or_null(j, o, "energy_j_per_token_input", r->j_per_token_input, ok && r->has_energy);
    num_or_null(j, o, "mfu", r->mfu, ok);
    num(j, o, "price_usd_per_device_hour", hw->cloud_usd_per_h);
    if (ok) {
        isim__json_str(j, o, "binding", isim_term_name(r->decode.binding));
        isim__json_item(j, o, "terms_ms", isim__json_terms_ms(j, &r->decode));
        isim__json_item(j, o, "prefill_terms_ms", isim__json_terms_ms(j, &r->prefill));
    } else {
        isim__json_null(j, o, "binding");
        isim__json_null(j, o, "terms_ms");
        isim__json_null(j, o, "prefill_terms_ms");
    }
    cJSON *mem = isim__json_obj(j, o, "memory_bytes_per_device");
    num(j, mem, "weights", r->memory.weights);
    num(j, mem, "kv_cache", r->memory.kv_cache);
    num(j, mem, "activations", r->memory.activations);
    num(j, mem, "reserve", r->memory.reserve);
    num(j, mem, "total", r->memory.total);
    num(j, mem, "capacity", r->memory.capacity);
    cJSON *pipe = isim__json_obj(j, o, "pipeline");
    num(j, pipe, "micro_batches", r->micro_batches);
    isim__json_str(j, pipe, "schedule", isim_pp_schedule_name(q->pp_schedule));
    num_or_null(j, pipe, "bubble_fraction", r->pp_bubble, !paper && ok);
    if (paper && ok) {
        cJSON *p = isim__json_obj(j, o, "paper");
        isim__json_bool(j, p, "two_d_tp", r->two_d);
        num(j, p, "attn_scaledown", r->attn_scaledown);
    } else {
        isim__json_null(j, o, "paper");
    }
    if (q->draft && ok) {
        cJSON *s = isim__json_obj(j, o, "speculative");
        isim__json_str(j, s, "draft", q->draft->id);
        isim__json_str(j, s, "draft_weights", isim_dtype_name(q->draft_weights));
        num(j, s, "alpha", q->spec_alpha);
        num(j, s, "gamma", r->spec_gamma);
        num(j, s, "tokens_per_step", r->spec_gamma ? r->spec_tokens_per_step : 1);
        if (r->spec_gamma) {
            isim__json_item(j, s, "target_pass_terms_ms", isim__json_terms_ms(j, &r->spec_target));
            isim__json_item(j, s, "draft_pass_terms_ms", isim__json_terms_ms(j, &r->spec_draft));
        } else {
            isim__json_null(j, s, "target_pass_terms_ms");
            isim__json_null(j, s, "draft_pass_terms_ms");
        }
    } else {
        isim__json_null(j, o, "speculative");
    }
    return o;
}

char *isim_report_predict_json(const isim_model *m, const isim_hw *hw, const isim_query *q,
                               const isim_result *r)
{
    isim__json doc = {false};
    return isim__json_finish(&doc, predict_object(&doc, m, hw, q, r));
}

char *isim_report_predict_traffic_json(const isim_model *m, const isim_hw *hw, const isim_query *q,
                                       const isim_result *r, const isim_traffic *t,
                                       const isim_serve_result *s)
{
    isim__json doc = {false}, *j = &doc;
    cJSON *o = predict_object(j, m, hw, q, r);
    isim__json_item(j, o, "traffic", isim__serve_json(j, t, s, false));
    return isim__json_finish(j, o);
}

static cJSON *facts_json(isim__json *j, const isim_fact *f, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) {
        cJSON *x = isim__json_new(j);
        isim__json_str(j, x, "key", f[i].path);
        isim__json_item(j, x, "value", cJSON_CreateNumber(f[i].value));
        isim__json_str(j, x, "source", f[i].source);
        isim__json_item(j, a, NULL, x);
    }
    return a;
}

char *isim_report_model_json(const isim_model *m)
{
    isim__json doc = {false}, *j = &doc;
    cJSON *o = isim__json_new(j);
    const isim_model_derived *x = &m->d;
    isim__json_str(j, o, "id", m->id);
    isim__json_str(j, o, "name", m->name);
    isim__json_str(j, o, "family", m->family);
    isim__json_str(j, o, "release_weights", isim_dtype_name(m->release_weights));
    cJSON *d = isim__json_obj(j, o, "derived");
    num(j, d, "params_total", x->params_total);
    num(j, d, "params_active", x->params_active);
    num(j, d, "params_active_as_declared", isim_model_active_as_declared(m));
    num(j, d, "declared_params_total", m->declared_total);
    num_or_null(j, d, "declared_params_active", m->declared_active, m->has_moe);
    num(j, d, "params_embedding", x->embedding_params);
    num(j, d, "params_unembedding", x->unembedding_params);
    num(j, d, "params_attention_per_layer", x->attn_params_layer);
    num(j, d, "params_dense_ffn_per_layer", x->dense_ffn_params);
    num(j, d, "params_expert", x->expert_params);
    num(j, d, "params_shared_expert", x->shared_expert_params);
    num(j, d, "dense_layers", (double)x->n_dense_layers);
    num(j, d, "moe_layers", (double)x->n_moe_layers);
    num(j, d, "sliding_layers", (double)x->n_sliding_layers);
    num(j, d, "kv_bytes_per_token_bf16", isim_model_kv_bytes(m, 1, ISIM_BF16));
    num(j, d, "kv_bytes_at_max_context_bf16",
        isim_model_kv_bytes(m, (double)m->max_context, ISIM_BF16));
    num(j, d, "flops_per_token_at_zero_context", isim_model_flops_per_token(m, 0));
    num(j, d, "flops_per_token_at_4k_context", isim_model_flops_per_token(m, 4096));
    isim__json_item(j, o, "facts", facts_json(j, m->facts, m->n_facts));
    return isim__json_finish(j, o);
}

char *isim_report_hw_json(const isim_hw *hw)
{
    isim__json doc = {false}, *j = &doc;
    cJSON *o = isim__json_new(j);
    isim__json_str(j, o, "id", hw->id);
    isim__json_str(j, o, "name", hw->name);
    isim__json_str(j, o, "vendor", hw->vendor);
    cJSON *p = isim__json_obj(j, o, "peak_flops_per_s");
    for (int t = 0; t < ISIM_DTYPE_COUNT; t++)
        num_or_null(j, p, isim_dtype_name((isim_dtype)t), hw->peak_flops[t], hw->peak_flops[t] > 0);
    num(j, o, "memory_bytes", hw->mem_bytes);
    num(j, o, "memory_bytes_per_s", hw->mem_bytes_per_s);
    num(j, o, "scale_up_domain", (double)hw->domain_size);
    num(j, o, "scale_up_bytes_per_s", hw->scale_up_bytes_per_s);
    num(j, o, "scale_out_bytes_per_s", hw->scale_out_bytes_per_s);
    num(j, o, "price_usd_per_device_hour", hw->cloud_usd_per_h);
    num_or_null(j, o, "tdp_w", hw->tdp_w, hw->has_power);
    isim__json_bool(j, o, "deploy_ready", hw->has_serving);
    isim__json_item(j, o, "facts", facts_json(j, hw->facts, hw->n_facts));
    return isim__json_finish(j, o);
}
