/* The deploy fidelity's search: hardware x tensor x pipeline (x attention data and expert)
 * parallelism x weight and KV precision x speculative decoding x batch, each configuration
 * predicted by isim_predict. Whole devices, at most max_devices per replica.
 *
 * Pruning (docs/planner.md; tests/test_planner.c checks it against brute force): for one
 * configuration, memory and TPOT only grow with the batch, so the batch loop stops at the
 * first batch that no longer fits, or whose TPOT already misses the TPOT SLO or the minimum
 * speed; a layout that is infeasible for a reason other than memory is tried once. */
#include "planner/internal.h"
#include "sim/serve.h"

#include <math.h>

/* Batches tried: 1 and then steps of about sqrt(2), up to 8192 sequences per replica. */
static const double BATCHES[] = {1,   2,    3,    4,    6,    8,    12,   16,  24,
                                 32,  48,   64,   96,   128,  192,  256,  384, 512,
                                 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192};
/* Pipeline degrees tried. */
static const int PPS[] = {1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32};

static bool kv_ok(int64_t tp, int64_t n_kv)
{
    return n_kv % tp == 0 || tp % n_kv == 0;
}

/* One configuration over the batches. */
static isim_status batches(const isim_plan_request *r, int h, isim_query *q, isim__points *out,
                           isim_plan *plan, isim_error *err)
{
    const isim_hw *hw = r->hw[h];
    for (size_t i = 0; i < sizeof BATCHES / sizeof BATCHES[0]; i++) {
        q->batch = BATCHES[i];
        isim_result res;
        isim_status st = isim_predict(r->model, hw, q, &res, err);
        if (st)
            return st;
        plan->evaluated++;
        if (!res.feasible) {
            plan->infeasible_by_reason[res.reason]++;
            /* memory grows with the batch; other reasons do not depend on it */
            if (!r->exhaustive)
                return ISIM_OK;
            continue;
        }
        isim_plan_point x = {
            .hw = h,
            .devices = res.devices,
            .batch = q->batch,
            .tp = res.tp,
            .pp = res.pp,
            .ep = res.ep,
            .dp = res.dp,
            .pp_paper = res.pp,
            .weights = res.weights,
            .kv = res.kv,
            .spec = q->draft != NULL,
            .spec_gamma = res.spec_gamma,
            .tpot_s = res.tpot_s,
            .ttft_s = res.ttft_s,
            .tokens_per_s_per_user = res.tokens_per_s_per_user,
            .tokens_per_s_per_device = res.tokens_per_s_per_device,
            .tokens_per_s_total = res.tokens_per_s_total,
            .cost_usd_per_mtok_output = res.cost_usd_per_mtok_output,
            .cost_usd_per_mtok_input = res.cost_usd_per_mtok_input,
            .replicas = 1,
            .terms = res.decode,
            .memory_bytes_per_device = res.memory.total,
            .detailed = true,
        };
        x.tokens_per_s_sustained =
            isim_serve_capacity(&res, q->batch / res.dp, hw->step_overhead_s, r->output_tokens) *
            r->output_tokens;
        /* over a request's decode the batch's other requests each start once (the closed
         * form of sim/serve.h) */
        double b_dp = q->batch / res.dp,
               per_prompt =
                   fmax(res.prefill_all_s - res.prefill_chunks * hw->step_overhead_s, 0) / b_dp;
        x.tpot_loaded_s =
            res.tpot_s +
            (r->output_tokens > 1 ? (b_dp - 1) / (r->output_tokens - 1) * per_prompt : 0);
        if (r->demand_tokens_per_s > 0 || r->demand_sequences > 0)
            /* whole replicas serve the demand, prompts included; idle capacity is paid for */
            x.cost_usd_per_mtok_output = isim__fleet_cost(
                r->demand_tokens_per_s, r->demand_sequences, q->batch, x.tokens_per_s_sustained,
                res.tpot_s, res.devices, isim__plan_price(r, h), &x.replicas);
        if ((st = isim__points_push(out, &x, err)))
            return st;
        /* TPOT only grows with the batch: once an SLO on it is missed, it stays missed */
        if (!r->exhaustive && ((r->tpot_slo_s > 0 && res.tpot_s > r->tpot_slo_s) ||
                               (r->min_tokens_per_s_per_user > 0 &&
                                res.tokens_per_s_per_user < r->min_tokens_per_s_per_user)))
            return ISIM_OK;
    }
    return ISIM_OK;
}

isim_status isim__deploy_candidates(const isim_plan_request *r, isim__points *out, isim_plan *plan,
                                    isim_error *err)
{
    const isim_model *m = r->model;
    isim_dtype release = m->release_weights, bf16 = ISIM_BF16;
    const isim_dtype *ws = r->weights ? r->weights : &release;
    const isim_dtype *kvs = r->kv ? r->kv : &bf16;
    size_t nw = r->weights ? r->n_weights : 1, nkv = r->kv ? r->n_kv : 1;
    for (size_t h = 0; h < r->n_hw; h++) {
        const isim_hw *hw = r->hw[h];
        if (!hw->has_serving) {
            plan->evaluated++;
            plan->infeasible_by_reason[ISIM_REASON_NO_SERVING]++;
            continue;
        }
        for (int64_t tp = 1; tp <= r->max_devices; tp++) {
            if (m->n_heads % tp != 0 || !kv_ok(tp, m->n_kv_heads) ||
                (tp > hw->domain_size && !r->allow_cross_domain_tp))
                continue;
            for (size_t ip = 0; ip < sizeof PPS / sizeof PPS[0]; ip++) {
                int64_t pp = PPS[ip];
                if (pp > m->n_layers || tp * pp > r->max_devices)
                    break;
                /* attention data parallelism only pays with experts to spread */
                for (int64_t dp = 1; tp * pp * dp <= r->max_devices; dp *= 2) {
                    if (dp > 1 && !m->has_moe)
                        break;
                    int64_t G = tp * dp, eps[2] = {1, 1};
                    int n_ep = 1;
                    if (m->has_moe) {
                        for (int64_t e = G; e >= 2; e--)
                            if (G % e == 0 && m->n_experts % e == 0) {
                                eps[n_ep++] = e;
                                break;
                            }
                    }
                    for (int ie = 0; ie < n_ep; ie++)
                        for (size_t iw = 0; iw < nw; iw++)
                            for (size_t ik = 0; ik < nkv; ik++)
                                for (int spec = 0; spec <= (r->draft != NULL); spec++) {
                                    isim_query q;
                                    isim_query_init(&q);
                                    q.fidelity = ISIM_DEPLOY;
                                    q.devices = (double)(tp * pp * dp);
                                    q.tp = (int)tp;
                                    q.pp = (int)pp;
                                    q.ep = (int)eps[ie];
                                    q.input_tokens = r->input_tokens;
                                    q.output_tokens = r->output_tokens;
                                    q.weights = ws[iw];
                                    q.kv = kvs[ik];
                                    q.allow_cross_domain_tp = r->allow_cross_domain_tp;
                                    q.prefix_hit_rate = r->prefix_hit_rate;
                                    q.usd_per_device_h = isim__plan_price(r, (int)h);
                                    if (spec) {
                                        q.draft = r->draft;
                                        q.draft_weights = r->draft_weights;
                                        q.spec_alpha = r->spec_alpha;
                                        q.spec_gamma_max = r->spec_gamma_max;
                                    }
                                    isim_status st = batches(r, (int)h, &q, out, plan, err);
                                    if (st)
                                        return st;
                                }
                }
            }
        }
    }
    return ISIM_OK;
}
