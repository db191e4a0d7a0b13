/* Human-readable tables and CSV rows of predictions and specifications. */
#include "reports/report.h"

#include <math.h>
#include <string.h>

/* Writes a CSV field; quotes it when it holds a comma, quote or newline (RFC 4180). */
static void csv_str(FILE *out, const char *s, bool last)
{
    if (strpbrk(s, ",\"\n")) {
        fputc('"', out);
        for (const char *c = s; *c; c++) {
            if (*c == '"')
                fputc('"', out);
            fputc(*c, out);
        }
        fputc('"', out);
    } else {
        fputs(s, out);
    }
    fputc(last ? '\n' : ',', out);
}

static void csv_num(FILE *out, double v, bool present)
{
    if (present && isfinite(v))
        fprintf(out, "%.6g,", v);
    else
        fputc(',', out);
}

static const char *const csv_columns[] = {"model",
                                          "hw",
                                          "fidelity",
                                          "devices",
                                          "tp",
                                          "pp",
                                          "ep",
                                          "dp",
                                          "batch",
                                          "input_tokens",
                                          "output_tokens",
                                          "weights",
                                          "kv",
                                          "spec_draft",
                                          "spec_gamma",
                                          "feasible",
                                          "reason",
                                          "tpot_ms",
                                          "ttft_ms",
                                          "tokens_per_s_per_user",
                                          "tokens_per_s_per_device",
                                          "cost_usd_per_mtok_output",
                                          "cost_usd_per_mtok_input",
                                          "energy_j_per_token_output",
                                          "arithmetic_ms",
                                          "hbm_ms",
                                          "network_ms",
                                          "fixed_ms",
                                          "binding",
                                          "memory_weights_bytes",
                                          "memory_kv_cache_bytes",
                                          "memory_activations_bytes",
                                          "memory_reserve_bytes",
                                          "memory_total_bytes",
                                          "memory_capacity_bytes",
                                          NULL};

void isim_report_predict_csv_header(FILE *out)
{
    for (int i = 0; csv_columns[i]; i++)
        fprintf(out, "%s%c", csv_columns[i], csv_columns[i + 1] ? ',' : '\n');
}

void isim_report_predict_csv_row(FILE *out, const isim_model *m, const isim_hw *hw,
                                 const isim_query *q, const isim_result *r)
{
    bool ok = r->feasible, paper = r->fidelity == ISIM_PAPER;
    csv_str(out, m->id, false);
    csv_str(out, hw->id, false);
    csv_str(out, isim_fidelity_name(r->fidelity), false);
    csv_num(out, r->devices, true);
    csv_num(out, r->tp, !paper);
    csv_num(out, paper ? r->pp_paper : r->pp, !paper || ok);
    csv_num(out, r->ep, !paper);
    csv_num(out, r->dp, !paper);
    csv_num(out, q->batch, true);
    csv_num(out, q->input_tokens, true);
    csv_num(out, q->output_tokens, true);
    csv_str(out, isim_dtype_name(r->weights), false);
    csv_str(out, isim_dtype_name(r->kv), false);
    csv_str(out, q->draft ? q->draft->id : "", false);
    csv_num(out, r->spec_gamma, q->draft != NULL);
    csv_str(out, ok ? "true" : "false", false);
    csv_str(out, ok ? "" : isim_reason_name(r->reason), false);
    csv_num(out, r->tpot_s * 1e3, ok);
    csv_num(out, r->ttft_s * 1e3, ok);
    csv_num(out, r->tokens_per_s_per_user, ok);
    csv_num(out, r->tokens_per_s_per_device, ok);
    csv_num(out, r->cost_usd_per_mtok_output, ok);
    csv_num(out, r->cost_usd_per_mtok_input, ok);
    csv_num(out, r->j_per_token_output, ok && r->has_energy);
    for (int i = 0; i < ISIM_TERM_COUNT; i++)
        csv_num(out, r->decode.t[i] * 1e3, ok);
    csv_str(out, ok ? isim_term_name(r->decode.binding) : "", false);
    csv_num(out, r->memory.weights, true);
    csv_num(out, r->memory.kv_cache, true);
    csv_num(out, r->memory.activations, true);
    csv_num(out, r->memory.reserve, true);
    csv_num(out, r->memory.total, true);
    fprintf(out, "%.6g\n", r->memory.capacity);
}

static void terms_line(FILE *out, const char *label, const isim_terms *t)
{
    fprintf(out,
            "  %-16s arithmetic %.4g ms | hbm %.4g ms | network %.4g ms | fixed %.4g ms"
            "  -> %s binds\n",
            label, t->t[0] * 1e3, t->t[1] * 1e3, t->t[2] * 1e3, t->t[3] * 1e3,
            isim_term_name(t->binding));
}

void isim_report_predict_table(FILE *out, const isim_model *m, const isim_hw *hw,
                               const isim_query *q, const isim_result *r)
{
    bool paper = r->fidelity == ISIM_PAPER;
    fprintf(out, "%s on %g x %s (%s fidelity)\n", m->name, r->devices, hw->name,
            isim_fidelity_name(r->fidelity));
    if (paper)
        fprintf(out, "  %-16s %s tensor parallelism, pp %.3g, attention scale-down %.3g\n",
                "layout", r->two_d ? "2-D" : "1-D", r->pp_paper, r->attn_scaledown);
    else if (r->tp > 0)
        fprintf(out, "  %-16s tp %d, pp %d, ep %d, dp %d\n", "layout", r->tp, r->pp, r->ep, r->dp);
    else /* the degrees asked for do not make a layout: the reason says why */
        fprintf(out, "  %-16s none\n", "layout");
    fprintf(out, "  %-16s batch %g; %g input / %g output tokens; weights %s, kv %s\n", "workload",
            q->batch, q->input_tokens, q->output_tokens, isim_dtype_name(r->weights),
            isim_dtype_name(r->kv));
    if (q->draft)
        fprintf(out, "  %-16s draft %s (%s), alpha %g, gamma %d%s\n", "speculative", q->draft->id,
                isim_dtype_name(q->draft_weights), q->spec_alpha, r->spec_gamma,
                r->spec_gamma ? "" : " (plain decoding is faster)");
    const isim_memory *mm = &r->memory;
    if (paper)
        fprintf(out, "  %-16s weights %.2f + KV cache of a micro-batch %.2f = %.2f of %.2f GB\n",
                "memory/device", mm->weights / 1e9, mm->kv_cache / 1e9, mm->total / 1e9,
                mm->capacity / 1e9);
    else if (r->tp > 0) /* no layout, no memory per device */
        fprintf(out,
                "  %-16s weights %.2f + KV cache %.2f + activations %.2f + reserve %.2f = "
                "%.2f of %.2f GB\n",
                "memory/device", mm->weights / 1e9, mm->kv_cache / 1e9, mm->activations / 1e9,
                mm->reserve / 1e9, mm->total / 1e9, mm->capacity / 1e9);
    if (!r->feasible) {
        fprintf(out, "  %-16s NO: %s (%s)\n", "feasible", isim_reason_text(r->reason),
                r->reason_detail);
        return;
    }
    fprintf(out, "  %-16s yes\n", "feasible");
    fprintf(out, "  %-16s %.4g ms per output token (%.4g tokens/s per user)\n", "TPOT",
            r->tpot_s * 1e3, r->tokens_per_s_per_user);
    fprintf(out, "  %-16s %.4g ms\n", "TTFT", r->ttft_s * 1e3);
    fprintf(out, "  %-16s %.5g tokens/s in all, %.5g per device\n", "throughput",
            r->tokens_per_s_total, r->tokens_per_s_per_device);
    fprintf(out,
            "  %-16s $%.4g per M output tokens, $%.4g per M input tokens (at $%.4g per "
            "device-hour)\n",
            "cost", r->cost_usd_per_mtok_output, r->cost_usd_per_mtok_input, hw->cloud_usd_per_h);
    if (r->has_energy)
        fprintf(out,
                "  %-16s %.4g J per output token, %.4g J per input token (at %g W per "
                "device)\n",
                "energy", r->j_per_token_output, r->j_per_token_input, hw->tdp_w);
    fprintf(out, "  %-16s %.3g%%\n", "MFU", r->mfu * 100);
    terms_line(out, "per token", &r->decode);
    terms_line(out, "prefill", &r->prefill);
    if (!paper && r->pp > 1)
        fprintf(out, "  %-16s %g micro-batches, %s, %.1f%% bubble\n", "pipeline", r->micro_batches,
                isim_pp_schedule_name(q->pp_schedule), r->pp_bubble * 100);
}

/* 70553706496 -> "70.55B": counts in K, M, B or T with 4 significant digits. */
static const char *count(double x, char *buf, size_t n)
{
    static const struct {
        double scale;
        const char *unit;
    } units[] = {{1e12, "T"}, {1e9, "B"}, {1e6, "M"}, {1e3, "K"}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (fabs(x) >= units[i].scale) {
            snprintf(buf, n, "%.4g%s", x / units[i].scale, units[i].unit);
            return buf;
        }
    snprintf(buf, n, "%.4g", x);
    return buf;
}

void isim_report_model_line(FILE *out, const isim_model *m, bool header)
{
    if (header) {
        fprintf(out, "%-18s %-26s %10s %10s %7s %14s\n", "id", "name", "params", "active", "layers",
                "KV B/token");
        return;
    }
    char total[16], active[16];
    fprintf(out, "%-18s %-26s %10s %10s %7lld %14.0f\n", m->id, m->name,
            count(m->d.params_total, total, sizeof total),
            count(m->d.params_active, active, sizeof active), (long long)m->n_layers,
            isim_model_kv_bytes(m, 1, ISIM_BF16));
}

void isim_report_hw_line(FILE *out, const isim_hw *h, bool header)
{
    if (header) {
        fprintf(out, "%-15s %-44s %9s %8s %9s %7s %8s %7s\n", "id", "name", "bf16 TF/s", "HBM GB",
                "HBM GB/s", "domain", "$/h", "deploy");
        return;
    }
    double r16 = h->peak_flops[ISIM_BF16] > 0 ? h->peak_flops[ISIM_BF16] : h->peak_flops[ISIM_FP16];
    fprintf(out, "%-15s %-44.44s %9.5g %8.4g %9.5g %7lld %8.4g %7s\n", h->id, h->name, r16 / 1e12,
            h->mem_bytes / 1e9, h->mem_bytes_per_s / 1e9, (long long)h->domain_size,
            h->cloud_usd_per_h, h->has_serving ? "yes" : "no");
}

static void facts_table(FILE *out, const isim_fact *f, size_t n)
{
    const char *last = NULL;
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "  %-34s %-14.10g", f[i].path, f[i].value);
        if (!last || strcmp(last, f[i].source) != 0)
            fprintf(out, " [%s]", f[i].source);
        else
            fprintf(out, " [same]");
        fputc('\n', out);
        last = f[i].source;
    }
}

void isim_report_model_table(FILE *out, const isim_model *m)
{
    const isim_model_derived *x = &m->d;
    char a[16], b[16], c[16], e[16];
    fprintf(out, "%s (%s), family %s, released in %s\n", m->name, m->id, m->family,
            isim_dtype_name(m->release_weights));
    fprintf(out, "  %-34s %s = %.0f (declared %s, %+.2f%%)\n", "parameters",
            count(x->params_total, a, sizeof a), x->params_total,
            count(m->declared_total, b, sizeof b), 100 * (x->params_total / m->declared_total - 1));
    if (m->has_moe)
        fprintf(out, "  %-34s %s as declared (declared %s, %+.2f%%); %s with both embeddings\n",
                "active parameters", count(isim_model_active_as_declared(m), a, sizeof a),
                count(m->declared_active, b, sizeof b),
                100 * (isim_model_active_as_declared(m) / m->declared_active - 1),
                count(x->params_active, c, sizeof c));
    fprintf(out, "  %-34s attention %s per layer, embedding %s, classifier %s\n", "components",
            count(x->attn_params_layer, a, sizeof a), count(x->embedding_params, b, sizeof b),
            x->unembedding_params > 0 ? count(x->unembedding_params, c, sizeof c) : "tied");
    if (x->n_dense_layers)
        fprintf(out, "  %-34s %lld layers with a dense FFN of %s\n", "dense layers",
                (long long)x->n_dense_layers, count(x->dense_ffn_params, a, sizeof a));
    if (m->has_moe)
        fprintf(out, "  %-34s %lld layers of %lld experts (%lld active) of %s, %lld shared of %s\n",
                "MoE layers", (long long)x->n_moe_layers, (long long)m->n_experts,
                (long long)m->n_active_experts, count(x->expert_params, a, sizeof a),
                (long long)m->n_shared_experts, count(x->shared_expert_params, e, sizeof e));
    fprintf(out, "  %-34s %.0f bytes (bf16)", "KV cache per token",
            isim_model_kv_bytes(m, 1, ISIM_BF16));
    if (x->n_sliding_layers)
        fprintf(out, "; %lld sliding layers hold at most %lld tokens",
                (long long)x->n_sliding_layers, (long long)m->window);
    fputc('\n', out);
    fprintf(out, "  %-34s %.4g at context 0, %.4g at 4096\n", "FLOPs per token",
            isim_model_flops_per_token(m, 0), isim_model_flops_per_token(m, 4096));
    fprintf(out, "numbers and sources:\n");
    facts_table(out, m->facts, m->n_facts);
}

void isim_report_hw_table(FILE *out, const isim_hw *h)
{
    fprintf(out, "%s (%s), %s\n", h->name, h->id, h->vendor);
    for (int t = 0; t < ISIM_DTYPE_COUNT; t++)
        if (h->peak_flops[t] > 0)
            fprintf(out, "  %-34s %.5g T/s peak, %.5g sustained\n", isim_dtype_name((isim_dtype)t),
                    h->peak_flops[t] / 1e12, h->peak_flops[t] * h->eff_flops / 1e12);
    fprintf(out, "  %-34s %.4g GB at %.5g GB/s (%.5g sustained)\n", "memory", h->mem_bytes / 1e9,
            h->mem_bytes_per_s / 1e9, h->mem_bytes_per_s * h->eff_hbm / 1e9);
    fprintf(out, "  %-34s %lld devices at %.4g GB/s per direction; scale-out %.4g GB/s\n",
            "scale-up domain", (long long)h->domain_size, h->scale_up_bytes_per_s / 1e9,
            h->scale_out_bytes_per_s / 1e9);
    fprintf(out, "  %-34s %s\n", "deploy fidelity",
            h->has_serving ? "yes" : "no (no 'serving' section)");
    fprintf(out, "numbers and sources:\n");
    facts_table(out, h->facts, h->n_facts);
}
