/* isim_predict(): validates a query, dispatches to the chosen fidelity and derives the
 * economics (throughput, $ per million tokens, J per token) shared by both. */
#include "sim/internal.h"

#include <math.h>
#include <string.h>

static const char *const term_names[] = {"arithmetic", "hbm", "network", "fixed"};

const char *isim_term_name(isim_term t)
{
    return (unsigned)t < ISIM_TERM_COUNT ? term_names[t] : "?";
}

const char *isim_fidelity_name(isim_fidelity f)
{
    return f == ISIM_PAPER ? "paper" : "deploy";
}

const char *isim_pp_schedule_name(isim_pp_schedule s)
{
    return s == ISIM_PP_STEPWISE ? "stepwise" : "interleaved";
}

static const struct {
    const char *name, *text;
} reasons[] = {
#define ISIM_X(name, str, msg) {str, msg},
    ISIM_REASON_LIST(ISIM_X)
#undef ISIM_X
};

const char *isim_reason_name(isim_reason r)
{
    return (unsigned)r < ISIM_REASON_COUNT ? reasons[r].name : "?";
}

const char *isim_reason_text(isim_reason r)
{
    return (unsigned)r < ISIM_REASON_COUNT ? reasons[r].text : "?";
}

/* The binding term is the one that contributes most to the total: fixed and network
 * add, and only the larger of arithmetic and HBM counts. */
void isim__terms_finish(isim_terms *t)
{
    double a = t->t[ISIM_TERM_ARITHMETIC], h = t->t[ISIM_TERM_HBM];
    double n = t->t[ISIM_TERM_NETWORK], f = t->t[ISIM_TERM_FIXED];
    t->total_s = f + n + fmax(a, h);
    isim_term best = a >= h ? ISIM_TERM_ARITHMETIC : ISIM_TERM_HBM;
    double v = fmax(a, h);
    if (n > v) {
        best = ISIM_TERM_NETWORK;
        v = n;
    }
    if (f > v)
        best = ISIM_TERM_FIXED;
    t->binding = best;
}

/* acc += scale x, term by term and total by total (several passes in sequence). */
void isim__terms_add(isim_terms *acc, const isim_terms *x, double scale)
{
    for (int i = 0; i < ISIM_TERM_COUNT; i++)
        acc->t[i] += scale * x->t[i];
    acc->matmul_s += scale * x->matmul_s;
    acc->attention_s += scale * x->attention_s;
    acc->elementwise_s += scale * x->elementwise_s;
    double total = acc->total_s + scale * x->total_s;
    isim__terms_finish(acc);
    acc->total_s = total;
}

void isim__spec_record(isim_result *res, int gamma, double tokens, const isim_terms *target,
                       const isim_terms *draft)
{
    res->spec_gamma = gamma;
    res->spec_tokens_per_step = tokens;
    res->spec_target = *target;
    res->spec_draft = *draft;
    memset(&res->decode, 0, sizeof res->decode);
    isim__terms_add(&res->decode, target, 1 / tokens);
    isim__terms_add(&res->decode, draft, gamma / tokens);
}

void isim_query_init(isim_query *q)
{
    memset(q, 0, sizeof *q);
    q->fidelity = ISIM_DEPLOY;
    q->devices = 1;
    q->batch = 1;
    q->input_tokens = 0;
    q->output_tokens = 1;
    q->weights = ISIM_DTYPE_COUNT;
    q->kv = ISIM_BF16;
    q->draft_weights = ISIM_BF16;
    q->spec_alpha = 0.8;
    q->spec_gamma_max = 5;
}

void isim__result_economics(const isim_hw *hw, const isim_query *q, double prefill_device_s,
                            isim_result *res)
{
    double n = res->devices, b = q->batch;
    double price = q->usd_per_device_h > 0 ? q->usd_per_device_h : hw->cloud_usd_per_h;
    double usd_per_s = n * price / 3600.0;
    res->tokens_per_s_per_user = 1.0 / res->tpot_s;
    res->tokens_per_s_total = b / res->tpot_s;
    res->tokens_per_s_per_device = res->tokens_per_s_total / n;
    /* Erdil 2025 §4: cost per token = devices x latency / batch, priced per device-hour. */
    res->cost_usd_per_mtok_output = 1e6 * usd_per_s * res->tpot_s / b;
    double in_tok = b * q->input_tokens;
    res->cost_usd_per_mtok_input = in_tok > 0 ? 1e6 * usd_per_s * prefill_device_s / in_tok : 0;
    res->has_energy = hw->has_power;
    if (hw->has_power) {
        /* Upper bound: every device at its rated power for the whole step. */
        res->j_per_token_output = n * hw->tdp_w * res->tpot_s / b;
        res->j_per_token_input = in_tok > 0 ? n * hw->tdp_w * prefill_device_s / in_tok : 0;
    }
}

static isim_status check_query(const isim_model *m, const isim_query *q, isim_error *err)
{
    (void)m;
    if (!(q->devices > 0) || !isfinite(q->devices) || q->devices > 1e7)
        return isim__fail(err, ISIM_EINVAL, "", 0, 0, "devices must be in (0, 1e7], got %g",
                          q->devices);
    if (!(q->batch >= 1) || !isfinite(q->batch) || q->batch > 1e9)
        return isim__fail(err, ISIM_EINVAL, "", 0, 0, "batch must be in [1, 1e9], got %g",
                          q->batch);
    if (!(q->input_tokens >= 0) || !isfinite(q->input_tokens) || q->input_tokens > 1e9)
        return isim__fail(err, ISIM_EINVAL, "", 0, 0, "input tokens must be in [0, 1e9], got %g",
                          q->input_tokens);
    if (!(q->output_tokens >= 1) || !isfinite(q->output_tokens) || q->output_tokens > 1e9)
        return isim__fail(err, ISIM_EINVAL, "", 0, 0, "output tokens must be in [1, 1e9], got %g",
                          q->output_tokens);
    if (!(q->prefix_hit_rate >= 0 && q->prefix_hit_rate < 1))
        return isim__fail(err, ISIM_EINVAL, "", 0, 0,
                          "the prefix-cache hit rate must be in [0, 1), got %g",
                          q->prefix_hit_rate);
    if (!(q->usd_per_device_h >= 0) || !isfinite(q->usd_per_device_h))
        return isim__fail(err, ISIM_EINVAL, "", 0, 0, "the device-hour price must be >= 0, got %g",
                          q->usd_per_device_h);
    if (q->backend && q->fidelity != ISIM_DEPLOY)
        return isim__fail(err, ISIM_EINVAL, "", 0, 0,
                          "an engine's fitted parameters (backend '%s') apply to the deploy "
                          "fidelity only",
                          q->backend);
    if (q->tp < 0 || q->pp < 0 || q->ep < 0)
        return isim__fail(err, ISIM_EINVAL, "", 0, 0, "tp, pp and ep must be positive");
    if ((unsigned)q->weights > ISIM_DTYPE_COUNT || (unsigned)q->kv >= ISIM_DTYPE_COUNT ||
        (unsigned)q->draft_weights >= ISIM_DTYPE_COUNT)
        return isim__fail(err, ISIM_EINVAL, "", 0, 0, "unknown precision");
    if (q->draft) {
        if (!(q->spec_alpha > 0 && q->spec_alpha < 1))
            return isim__fail(err, ISIM_EINVAL, "", 0, 0,
                              "speculative acceptance rate must be in (0, 1), got %g",
                              q->spec_alpha);
        if (q->spec_gamma < 0 || q->spec_gamma > 64)
            return isim__fail(err, ISIM_EINVAL, "", 0, 0,
                              "speculative gamma must be in [1, 64], got %d", q->spec_gamma);
        if (q->spec_gamma == 0 && (q->spec_gamma_max < 1 || q->spec_gamma_max > 64))
            return isim__fail(err, ISIM_EINVAL, "", 0, 0,
                              "speculative gamma limit must be in [1, 64], got %d",
                              q->spec_gamma_max);
    }
    return ISIM_OK;
}

/* No layout serves a sequence longer than the model's context, or than the draft's that
 * must read the same sequence: that overrides whatever else the fidelity found (a query
 * out of range is still refused first). */
static void check_context(const isim_model *m, const isim_query *q, isim_result *res)
{
    char *why = res->reason_detail;
    size_t n = sizeof res->reason_detail;
    if (isim_model_context_fits(m, q->input_tokens, q->output_tokens, false, why, n) &&
        (!q->draft ||
         isim_model_context_fits(q->draft, q->input_tokens, q->output_tokens, true, why, n)))
        return;
    res->feasible = false;
    res->reason = ISIM_REASON_CONTEXT;
}

isim_status isim_predict(const isim_model *m, const isim_hw *hw, const isim_query *q,
                         isim_result *res, isim_error *err)
{
    memset(res, 0, sizeof *res);
    isim_status st = check_query(m, q, err);
    if (st)
        return st;
    res->fidelity = q->fidelity;
    res->weights = q->weights == ISIM_DTYPE_COUNT ? m->release_weights : q->weights;
    res->kv = q->kv;
    res->devices = q->devices;
    res->memory.capacity = hw->mem_bytes;
    st = q->fidelity == ISIM_PAPER ? isim__paper_predict(m, hw, q, res, err)
                                   : isim__deploy_predict(m, hw, q, res, err);
    if (!st)
        check_context(m, q, res);
    return st;
}
