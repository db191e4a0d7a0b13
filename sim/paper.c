/* The `paper` fidelity: Erdil 2025, "Inference Economics of Language Models"
 * (arXiv:2506.04645), §3 Eqs. 29-44 as the released code c2c4fa9 computes them
 * (new_token_latency_seconds, spec_dec_token_latency_seconds). Continuous device counts,
 * 2-D or 1-D tensor parallelism, PP without bubbles, EP with two all-to-alls per MoE
 * layer, attention scale-down, utilisation caps. docs/model.md, "Paper fidelity", lists
 * where infersim departs from the code (real architectures instead of its simplified
 * DeepSeek-V3, sliding windows). */
#include "sim/paper_internal.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The code keys its rates by weight bits: 16 (bf16 or fp16), 8 (fp8 or int8), 4 (int4
 * or fp4). A profile may list only one type of a width. */
static double rate_by_bits(const isim_hw *hw, isim_dtype w)
{
    static const isim_dtype sibling[ISIM_DTYPE_COUNT] = {
        [ISIM_FP32] = ISIM_FP32, [ISIM_BF16] = ISIM_FP16, [ISIM_FP16] = ISIM_BF16,
        [ISIM_FP8] = ISIM_INT8,  [ISIM_INT8] = ISIM_FP8,  [ISIM_INT4] = ISIM_FP4,
        [ISIM_FP4] = ISIM_INT4};
    return hw->peak_flops[w] > 0 ? hw->peak_flops[w] : hw->peak_flops[sibling[w]];
}

typedef struct {
    double ranks, par, nodes;
} tp_layout;

/* _tp_layout of the code: 2-D all-reduces span sqrt(tp) ranks on sqrt(ceil(tp/node))
 * nodes with sqrt(tp) of them in parallel; 1-D spans all tp ranks. */
static inline tp_layout layout(double tp, bool two_d, double node)
{
    if (two_d) {
        double r = sqrt(tp);
        return (tp_layout){r, tp / r, sqrt(ceil(tp / node))};
    }
    return (tp_layout){tp, 1, ceil(tp / node)};
}

/* A collective over one layout, per byte: candidates scale it by their bytes per unit of
 * batch, so one layout's protocol arithmetic serves every word reduced over it. */
static void unit_make(const isim_paper_ctx *c, tp_layout lo, isim_coll kind, bool env,
                      isim__paper_unit *u)
{
    u->line.n = u->env.n = 0;
    u->lat_min = u->slope_min = 0;
    if (lo.ranks <= 1)
        return;
    isim__coll_line_make(c->hw, ISIM_PAPER, kind, lo.ranks, lo.nodes, 1.0, &u->line);
    if (env)
        isim__coll_env_make(&u->line, &u->env);
    u->lat_min = u->slope_min = INFINITY;
    for (int i = 0; i < u->line.n; i++) {
        u->lat_min = isim__min(u->lat_min, u->line.lat[i]);
        u->slope_min = isim__min(u->slope_min, u->line.slope[i]);
    }
}

isim_status isim_paper_ctx_new(const isim_model *m, const isim_hw *hw, isim_dtype weights,
                               isim_dtype kv, isim_paper_ctx **out, isim_error *err)
{
    *out = NULL;
    isim_paper_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return isim__fail(err, ISIM_ENOMEM, "", 0, 0, "out of memory");
    const isim_model_derived *x = &m->d;
    c->hw = hw;
    c->L = (double)m->n_layers;
    c->d = (double)m->d_model;
    c->nq = (double)m->n_heads;
    c->d_all = (double)(m->n_heads + 2 * m->n_kv_heads) * (double)m->head_dim;
    c->q_width = (double)(m->n_heads * m->head_dim);
    c->mla = m->has_mla;
    c->mla_in = (double)(m->kv_lora_rank + m->q_lora_rank);
    c->wp = isim_dtype_bytes(weights);
    /* The code has one activation precision for the KV cache and the collectives (§1.7);
     * the KV precision plays that role here (16-bit by default, as in the paper). */
    c->kvb = isim_dtype_bytes(kv);
    c->ap = c->kvb;
    c->c0 = m->ffn == ISIM_FFN_SWIGLU ? 2 : 1;
    c->c1 = 1;
    c->n_dense = (double)x->n_dense_layers;
    c->dff = (double)m->d_ff;
    c->n_moe = (double)x->n_moe_layers;
    c->dense = x->n_moe_layers == 0;
    if (m->has_moe) {
        c->E = (double)m->n_experts;
        c->k = (double)m->n_active_experts;
        c->s = c->E / c->k; /* sparsity factor (Eq. 32) */
        c->dff_e = (double)m->expert_d_ff;
        c->n_sh = (double)m->n_shared_experts;
        c->dff_sh = (double)m->shared_expert_d_ff;
        c->log_keep = c->s > 1 ? log1p(-1.0 / c->s) : -INFINITY;
    }
    double kv_tok = x->kv_elems_per_token_layer * c->kvb;
    double local = (double)x->n_sliding_layers;
    c->kv_full = (c->L - local) * kv_tok;
    c->kv_local = local * kv_tok;
    c->window = (double)m->window;
    /* Eq. 37 with the code's d_head factor; MLA attends over the d_latent-wide cache. */
    double hd_att = m->has_mla ? (double)m->kv_lora_rank : (double)m->head_dim;
    c->attn_flop_full = 4 * hd_att * c->nq * (c->L - local);
    c->attn_flop_local = 4 * hd_att * c->nq * local;
    /* Eq. 38: 2 (N_attn + N_ff / s + N_unemb); the code counts 2 vocab d_model embedding
     * parameters in its active total. */
    double ff_active = c->n_dense * x->dense_ffn_params +
                       c->n_moe * (c->k * x->expert_params + c->n_sh * x->shared_expert_params);
    c->ff_flop_tok = 2 * ff_active;
    c->proj_flop_tok = 2 * (c->L * x->attn_params_layer + 2 * (double)m->vocab * c->d);
    c->unembed_bytes = c->wp * (double)m->vocab * c->d;
    c->weight_bytes = c->wp * x->params_total;
    /* F = flop_per_second[8 x weight bytes] x cap: the weights' precision picks the rate. */
    c->peak = rate_by_bits(hw, weights);
    c->has_rate = c->peak > 0;
    c->F = c->peak * hw->eff_flops;
    c->BW = hw->mem_bytes_per_s * hw->eff_hbm;
    c->cap = hw->mem_bytes;
    c->node = (double)hw->domain_size;
    c->launch = hw->kernel_launch_s;
    unit_make(c, (tp_layout){2, 1, 2}, ISIM_P2P, true, &c->p2p);
    *out = c;
    return ISIM_OK;
}

void isim_paper_ctx_free(isim_paper_ctx *c)
{
    free(c);
}

bool isim_paper_ctx_has_rate(const isim_paper_ctx *c)
{
    return c->has_rate;
}

/* Adds `times` of a unit collective carrying bytes_per_b x b bytes to the candidate; with
 * at > 0 (one evaluation at batch at) only its time, into k->coll_seen. */
static void add_unit(isim__paper_cand *k, const isim__paper_unit *u, double bytes_per_b,
                     double times, double at)
{
    if (u->line.n == 0 || times <= 0 || bytes_per_b <= 0)
        return;
    if (at > 0) {
        double best = INFINITY;
        for (int i = 0; i < u->line.n; i++)
            best = isim__min(best, u->line.lat[i] + u->line.slope[i] * bytes_per_b * at);
        k->coll_seen += times * best;
        return;
    }
    isim__paper_coll *pc = &k->coll[k->n_coll++];
    pc->times = times;
    pc->line.n = u->line.n;
    for (int i = 0; i < u->line.n; i++) {
        pc->line.lat[i] = u->line.lat[i];
        pc->line.slope[i] = u->line.slope[i] * bytes_per_b;
    }
    pc->env.n = u->env.n;
    for (int i = 0; i < u->env.n; i++) {
        pc->env.lat[i] = u->env.lat[i];
        pc->env.slope[i] = u->env.slope[i] * bytes_per_b;
        pc->env.x[i] = u->env.x[i] / bytes_per_b;
    }
    k->lat_min += times * u->lat_min;
    k->s_min += times * u->slope_min * bytes_per_b;
}

/* Activation part of matmul_rw per token: (tp1 k + tp2 m) ap. */
static inline double matmul_act(double m, double k, double ap, double tp)
{
    double tp1 = isim__min(isim__max(sqrt(m * tp / k), 1.0), tp);
    return (tp1 * k + tp / tp1 * m) * ap;
}

void isim__paper_parts_build(const isim_paper_ctx *c, double N, double pp, double seq,
                             double input_len, bool ep_on, int layouts, isim__paper_parts *s)
{
    memset(s, 0, offsetof(isim__paper_parts, dense));
    const bool env = layouts & 4;
    s->env = env;
    s->layouts = layouts & 3;
    s->dense[0].line.n = s->dense[1].line.n = s->moe[0].line.n = s->moe[1].line.n = 0;
    s->ep.line.n = s->p2p.line.n = 0;
    s->w_const = s->w_tok = s->e0 = s->e1 = 0;
    const double NT = N / pp, wp = c->wp, ap = c->ap;
    s->N = N;
    s->pp = pp;
    s->NT = NT;
    s->seq = seq;
    s->per_b = seq * ap / pp; /* bytes of one word over the micro-batch, per unit of b */
    s->nbw = N * c->BW;
    /* Expert parallelism over min(N_TP, n_experts) devices, the rest of the FFN as TP. */
    s->n_ep = 1;
    s->nt_ff = NT;
    if (c->n_moe > 0 && ep_on) {
        s->n_ep = isim__min(NT, c->E);
        s->nt_ff = isim__max(1.0, NT / isim__max(1.0, s->n_ep));
    }
    for (int td = 0; td < 2; td++) {
        if (!(layouts & (1 << td)))
            continue;
        tp_layout ld = layout(NT, td == 0, c->node), lf = layout(s->nt_ff, td == 0, c->node);
        if (c->n_dense > 0)
            unit_make(c, ld, ISIM_ALL_REDUCE, env, &s->dense[td]);
        if (c->n_moe > 0)
            unit_make(c, lf, ISIM_ALL_REDUCE, env, &s->moe[td]);
        s->dense_split[td] = NT / ld.ranks;
        s->moe_split[td] = NT / lf.ranks;
    }
    /* Two all-to-alls (dispatch, combine) over r = min(n_active, N_EP) ranks (§3.5). */
    s->r_ep = isim__min(c->k, s->n_ep);
    if (c->n_moe > 0)
        unit_make(c, (tp_layout){s->r_ep, 1, ceil(s->r_ep / c->node)}, ISIM_ALL_TO_ALL, env,
                  &s->ep);
    /* N_PP - 1 sequential point-to-point hand-offs between stages (§3.5). */
    if (pp > 1)
        s->p2p = c->p2p;

    /* HBM (Eqs. 31-35 as coded), FFN part: weights read once per micro-batch, activations
     * replicated over the FFN's tensor-parallel split (matmul_rw_bytes). */
    double cc = c->c0 + c->c1;
    s->w_const = c->unembed_bytes;
    if (c->n_dense > 0) {
        s->w_const += c->n_dense * cc * c->d * c->dff * wp;
        s->w_tok += c->n_dense * cc * matmul_act(c->d, c->dff, ap, NT);
    }
    if (c->n_moe > 0) {
        /* Eq. 32: the expected fraction of experts touched, 1 - (1 - 1/s)^tokens, of
         * matmul_rw(d, d_ff, tokens / s); shared experts see every token. */
        s->e0 = pp * c->n_moe * c->E * cc * c->d * c->dff_e * wp / s->nbw;
        s->e1 =
            c->n_moe * c->E * cc * matmul_act(c->d, c->dff_e, ap, s->nt_ff) * seq / c->s / s->nbw;
        if (c->n_sh > 0) {
            s->w_const += c->n_moe * c->n_sh * cc * c->d * c->dff_sh * wp;
            s->w_tok += c->n_moe * c->n_sh * cc * matmul_act(c->d, c->dff_sh, ap, s->nt_ff);
        }
    }
    s->kv_seq = c->kv_full * input_len + c->kv_local * isim__min(input_len, c->window);
    /* Arithmetic (Eqs. 36-38): scores over the mean context input_len + (seq_len - 1)/2
     * of arithmetic_cost_flop (docs/model.md lists where this departs from the code). */
    double actx = input_len + (seq - 1) / 2;
    s->attn_kv_flop = c->attn_flop_full * actx + c->attn_flop_local * isim__min(actx, c->window);
    /* Capacity: weights plus one micro-batch's KV cache (the code's check). */
    double room = N * c->cap - c->weight_bytes;
    s->b_cap = room < 0 || !c->has_rate ? -1 : s->kv_seq > 0 ? pp * room / s->kv_seq : INFINITY;
}

/* The candidate form; with at > 0 only what its total at batch `at` needs, the
 * collectives' time summed into coll_seen. */
static void from_parts(const isim_paper_ctx *c, const isim__paper_parts *s, bool two_d, double a,
                       double at, isim__paper_cand *k)
{
    k->n_coll = 0;
    k->lat_min = k->s_min = k->e0 = k->e1 = k->tok = k->log_keep = k->coll_seen = 0;
    const int td = two_d ? 0 : 1;
    const double wp = c->wp, ap = c->ap, per_b = s->per_b, nt_attn = s->NT / a;
    k->N = s->N;
    k->pp = s->pp;
    k->b_cap = s->b_cap;

    /* Network (Eq. 39 as coded): per layer, all-reduces of the attention and FFN outputs,
     * each of words x micro-batch x seq_len x activation bytes (micro = b / N_PP). */
    tp_layout la = layout(nt_attn, two_d, c->node);
    isim__paper_unit own;
    const isim__paper_unit *pu = &own;
    if (nt_attn == s->NT && c->n_dense > 0 && (s->layouts & (1 << td)))
        pu = &s->dense[td]; /* scale-down 1: the dense FFN's group and layout */
    else
        unit_make(c, la, ISIM_ALL_REDUCE, s->env, &own);
    const isim__paper_unit *ua = pu;
    if (two_d) {
        add_unit(k, ua, c->d / la.par * per_b, c->L, at);
        add_unit(k, ua, c->d_all / la.par * per_b, c->L, at);
    } else {
        add_unit(k, ua, c->d * per_b, c->L, at);
    }
    if (c->n_dense > 0) {
        double split = s->dense_split[td];
        if (two_d)
            add_unit(k, &s->dense[td], c->c0 * c->dff / split * per_b, c->n_dense, at);
        add_unit(k, &s->dense[td], c->c1 * c->d / split * per_b, c->n_dense, at);
    }
    if (c->n_moe > 0) {
        double split = s->moe_split[td];
        double width = c->k * c->dff_e + c->n_sh * c->dff_sh, outs = c->k + c->n_sh;
        if (two_d)
            add_unit(k, &s->moe[td], c->c0 * width / split * per_b, c->n_moe, at);
        add_unit(k, &s->moe[td], c->c1 * outs * c->d / split * per_b, c->n_moe, at);
        add_unit(k, &s->ep, c->d * s->r_ep * per_b / s->NT, 2 * c->n_moe, at);
    }
    add_unit(k, &s->p2p, c->d * per_b / s->NT, s->pp - 1, at);

    /* HBM (Eqs. 31-35 as coded): every micro-batch reads the weights and its own KV cache
     * and activations, attention at 1/a of the bandwidth. */
    double attn_w, attn_act;
    if (c->mla) {
        attn_w = (c->mla_in * c->d + c->d_all * c->mla_in + c->d * c->q_width) * wp;
        attn_act = matmul_act(c->mla_in, c->d, ap, nt_attn) +
                   matmul_act(c->d_all, c->mla_in, ap, nt_attn) +
                   matmul_act(c->d, c->q_width, ap, nt_attn);
    } else {
        attn_w = (c->d_all * c->d + c->d * c->q_width) * wp;
        attn_act =
            matmul_act(c->d_all, c->d, ap, nt_attn) + matmul_act(c->d, c->q_width, ap, nt_attn);
    }
    k->m0 = s->pp * (s->w_const + c->L * a * attn_w) / s->nbw;
    k->m1 = (s->kv_seq + (s->w_tok + c->L * a * attn_act) * s->seq) / s->nbw;
    if (c->n_moe > 0) {
        k->e0 = s->e0;
        k->e1 = s->e1;
        k->tok = s->seq / s->pp;
        k->log_keep = c->log_keep;
    }
    /* Arithmetic: the whole batch, attention projections on the scaled-down group. */
    k->f1 = s->seq * (c->ff_flop_tok + s->attn_kv_flop + c->proj_flop_tok * a) / (s->N * c->F);
    /* Eqs. 29-30: 4 serial kernel launches per layer. */
    k->K = c->L * 4 * c->launch;
    if (at <= 0)
        k->coll_seen = k->lat_min;
}

void isim__paper_cand_from_parts(const isim_paper_ctx *c, const isim__paper_parts *s, bool two_d,
                                 double a, isim__paper_cand *k)
{
    from_parts(c, s, two_d, a, 0, k);
}

double isim__paper_cand_at(const isim_paper_ctx *c, const isim__paper_parts *s, bool two_d,
                           double a, double b)
{
    isim__paper_cand k;
    from_parts(c, s, two_d, a, b, &k);
    if (k.pp > isim__min(k.N, b) || b > k.b_cap)
        return INFINITY;
    double mem = k.m0 + k.m1 * b;
    if (k.e0 > 0)
        mem += -expm1(k.tok * b * k.log_keep) * (k.e0 + k.e1 * b);
    return k.K + k.coll_seen + isim__max(mem, k.f1 * b);
}

void isim__paper_cand_build(const isim_paper_ctx *c, double N, double pp, bool two_d, double a,
                            double seq, double input_len, bool ep_on, isim__paper_cand *k)
{
    isim__paper_parts s;
    isim__paper_parts_build(c, N, pp, seq, input_len, ep_on, two_d ? 1 : 2, &s);
    isim__paper_cand_from_parts(c, &s, two_d, a, k);
}

double isim__paper_cand_eval(const isim__paper_cand *k, double b, isim_terms *terms)
{
    if (k->pp > isim__min(k->N, b) || b > k->b_cap)
        return INFINITY;
    double lat = 0, bw = 0;
    for (int i = 0; i < k->n_coll; i++) {
        double l, w;
        isim__coll_line_eval(&k->coll[i].line, b, &l, &w);
        lat += k->coll[i].times * l;
        bw += k->coll[i].times * w;
    }
    double mem = k->m0 + k->m1 * b;
    if (k->e0 > 0)
        mem += -expm1(k->tok * b * k->log_keep) * (k->e0 + k->e1 * b);
    double flop = k->f1 * b;
    double fixed = k->K + lat;
    /* Eqs. 29-30: latency and network add; memory and arithmetic overlap. */
    double total = fixed + bw + isim__max(mem, flop);
    if (terms) {
        terms->t[ISIM_TERM_ARITHMETIC] = flop;
        terms->t[ISIM_TERM_HBM] = mem;
        terms->t[ISIM_TERM_NETWORK] = bw;
        terms->t[ISIM_TERM_FIXED] = fixed;
        isim__terms_finish(terms);
        terms->total_s = total;
    }
    return total;
}

double isim_paper_step(const isim_paper_ctx *c, const isim_paper_point *p, isim_terms *terms)
{
    isim__paper_cand k;
    isim__paper_cand_build(c, p->devices, p->pp, p->two_d, p->attn_scaledown, p->seq_len,
                           p->input_len, isim__paper_ep_on(c, p->batch / p->pp), &k);
    return isim__paper_cand_eval(&k, p->batch, terms);
}

double isim_paper_best(const isim_paper_ctx *c, double devices, double batch, double pp,
                       double seq_len, double input_len, isim_terms *terms, isim_paper_point *best)
{
    /* PP degrees: [1] + logspace_2(0 .. log2(min(batch, layers)), 10) unless fixed;
     * attention scale-down: logspace_2(0 .. log2(N_TP), 6). */
    double pps[11];
    int n_pp = 0;
    if (pp > 0) {
        pps[n_pp++] = pp;
    } else {
        pps[n_pp++] = 1;
        double top = log2(isim__min(batch, c->L));
        for (int i = 0; i < 10; i++)
            pps[n_pp++] = exp2(top * i / 9.0);
    }
    double best_t = INFINITY;
    isim_paper_point pt = {
        .devices = devices, .batch = batch, .seq_len = seq_len, .input_len = input_len};
    isim_paper_point arg = pt;
    arg.pp = pps[0];
    arg.attn_scaledown = 1;
    arg.two_d = true;
    for (int td = 0; td < 2; td++) {
        pt.two_d = td == 0;
        for (int i = 0; i < n_pp; i++) {
            pt.pp = pps[i];
            double lt = log2(devices / pt.pp);
            for (int j = 0; j < 6; j++) {
                pt.attn_scaledown = exp2(lt * j / 5.0);
                double t = isim_paper_step(c, &pt, NULL);
                if (t < best_t) {
                    best_t = t;
                    arg = pt;
                }
            }
        }
    }
    if (best)
        *best = arg;
    if (terms) {
        if (isfinite(best_t))
            isim_paper_step(c, &arg, terms);
        else
            memset(terms, 0, sizeof *terms);
    }
    return best_t;
}

/* The paper fidelity of isim_predict: decode at the prompt length as context (the code's
 * input_len), speculative decoding as spec_dec_token_latency_seconds, and TTFT as one
 * pass over the prompts (the notebook's commented-out prefill: input_len 0, seq_len I). */
isim_status isim__paper_predict(const isim_model *m, const isim_hw *hw, const isim_query *q,
                                isim_result *res, isim_error *err)
{
    if (q->tp || q->ep)
        return isim__fail(err, ISIM_EINVAL, "", 0, 0,
                          "paper fidelity chooses tensor and expert parallelism itself "
                          "(2-D or 1-D over devices / pp); drop --tp and --ep");
    isim_paper_ctx *c = NULL, *dc = NULL;
    isim_status st = isim_paper_ctx_new(m, hw, res->weights, q->kv, &c, err);
    if (!st && q->draft)
        st = isim_paper_ctx_new(q->draft, hw, q->draft_weights, q->kv, &dc, err);
    if (st)
        goto cleanup;
    const double N = q->devices, b = q->batch, I = q->input_tokens;
    res->feasible = true;
    res->reason = ISIM_REASON_NONE;
    res->tp = res->pp = res->ep = res->dp = 0;

    isim_paper_point bp;
    double t = isim_paper_best(c, N, b, q->pp, 1, I, &res->decode, &bp);
    double pp = bp.pp;
    res->pp_paper = pp;
    res->two_d = bp.two_d;
    res->attn_scaledown = bp.attn_scaledown;
    res->micro_batches = pp;
    double micro = b / pp;
    res->memory.weights = c->weight_bytes / N;
    res->memory.kv_cache = (c->kv_full * I + c->kv_local * isim__min(I, c->window)) * micro / N;
    res->memory.total = res->memory.weights + res->memory.kv_cache;
    if (!isfinite(t)) {
        res->feasible = false;
        if (!c->has_rate) {
            res->reason = ISIM_REASON_NO_RATE;
            snprintf(res->reason_detail, sizeof res->reason_detail, "%s has no %s rate", hw->id,
                     isim_dtype_name(res->weights));
        } else if (N < 1 || (q->pp > 0 && q->pp > isim__min(N, b))) {
            res->reason = ISIM_REASON_PP_LAYERS;
            snprintf(res->reason_detail, sizeof res->reason_detail,
                     "pp %d > min(devices %g, batch %g): the code needs N_PP <= N_GPU",
                     q->pp > 0 ? q->pp : 1, N, b);
        } else {
            res->reason = ISIM_REASON_MEMORY;
            snprintf(res->reason_detail, sizeof res->reason_detail,
                     "weights and KV cache need %.1f GB per device of %.1f GB",
                     res->memory.total / 1e9, hw->mem_bytes / 1e9);
        }
        goto cleanup;
    }

    if (dc) {
        /* Eq. 46 as coded: t = (t_P(seq = g) + g t_Q) (1 - a) / (1 - a^g), g in 2..g_max,
         * the draft on the same devices and batch; the minimum with plain decoding. */
        isim_terms draft;
        double tq = isim_paper_best(dc, N, b, q->pp, 1, I, &draft, NULL);
        int g_lo = q->spec_gamma ? q->spec_gamma : 2;
        int g_hi = q->spec_gamma ? q->spec_gamma : q->spec_gamma_max;
        double a = q->spec_alpha;
        for (int g = g_lo; isfinite(tq) && g <= g_hi; g++) {
            isim_terms target;
            double tp_ = isim_paper_best(c, N, b, q->pp, g, I, &target, NULL);
            double tokens = (1 - pow(a, g)) / (1 - a);
            double ts = (tp_ + g * tq) / tokens;
            if (ts < t || (q->spec_gamma && g == q->spec_gamma)) {
                t = ts;
                isim__spec_record(res, g, tokens, &target, &draft);
            }
        }
    }
    res->tpot_s = t;
    double ttft = 0, cached = floor(I * q->prefix_hit_rate);
    if (I > 0) /* the prompt's uncached tokens in one pass over the cached prefix */
        ttft = isim_paper_best(c, N, b, q->pp, I - cached, cached, &res->prefill, NULL);
    res->ttft_s = isfinite(ttft) ? ttft : 0;
    res->mfu = isim_model_flops_per_token(m, I) * b / (N * c->peak * res->tpot_s);
    isim__result_economics(hw, q, res->ttft_s, res);
cleanup:
    isim_paper_ctx_free(c);
    isim_paper_ctx_free(dc);
    return st;
}
