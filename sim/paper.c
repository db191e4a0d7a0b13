/* The `paper` fidelity: Erdil 2025, "Inference Economics of Language Models"
 * (arXiv:2506.04645), §3 Eqs. 29-44 as the released code c2c4fa9 computes them
 * (new_token_latency_seconds, spec_dec_token_latency_seconds). Continuous device counts,
 * 2-D or 1-D tensor parallelism, PP without bubbles, EP with two all-to-alls per MoE
 * layer, attention scale-down, utilisation caps. docs/model.md, "Paper fidelity", lists
 * where infersim departs from the code (real architectures instead of its simplified
 * DeepSeek-V3, sliding windows). */
#include "sim/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct isim_paper_ctx {
    const isim_hw *hw;
    double L, d, nq, d_all, q_width; /* d_all = (n_q + 2 n_kv) d_head; q_width = n_q d_head */
    bool mla;
    double mla_in;                   /* kv_lora_rank + q_lora_rank */
    double wp, ap, kvb;              /* bytes: weights, activations, KV cache */
    double c0, c1;                   /* ff_matrix_count: (2, 1) SwiGLU, (1, 1) GELU */
    double n_dense, dff;             /* dense FFN layers and their width */
    double n_moe, E, k, s, dff_e, n_sh, dff_sh, log_keep; /* MoE layers; log(1 - 1/s) */
    double kv_full, kv_local, window; /* KV bytes per token over full / sliding layers */
    double attn_flop_full, attn_flop_local; /* attention-score FLOP per token per context token */
    double ff_flop_tok, proj_flop_tok;      /* FFN and projection FLOP per token */
    double unembed_bytes, weight_bytes;
    double peak, F, BW, cap, node, launch;
    bool has_rate;
};

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
    *out = c;
    return ISIM_OK;
}

void isim_paper_ctx_free(isim_paper_ctx *c)
{
    free(c);
}

/* matmul_rw_bytes of the code: an (m x k) weight read once, input (k x n) and output
 * (m x n) activations replicated over a near-square split tp1 x tp2 of tp devices. */
static inline double matmul_rw(double m, double k, double n, double wp, double ap, double tp)
{
    double tp1 = isim__min(isim__max(sqrt(m * tp / k), 1.0), tp);
    double tp2 = tp / tp1;
    return m * k * wp + tp1 * k * n * ap + tp2 * m * n * ap;
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

static inline void coll(const isim_hw *hw, tp_layout lo, double bytes, isim_coll kind,
                        double *lat, double *bw)
{
    double l, b;
    isim_collective_time(hw, ISIM_PAPER, kind, lo.ranks, lo.nodes, bytes, &l, &b);
    *lat += l;
    *bw += b;
}

double isim_paper_step(const isim_paper_ctx *c, const isim_paper_point *p, isim_terms *terms)
{
    const double N = p->devices, b = p->batch, npp = p->pp, a = p->attn_scaledown;
    const double seq = p->seq_len;
    const double micro = b / npp, NT = N / npp;
    if (!c->has_rate || npp > isim__min(N, b))
        return INFINITY;
    /* Capacity: weights plus the KV cache of one micro-batch (the code's check). */
    double ctx = p->input_len;
    double kv_seq = c->kv_full * ctx + c->kv_local * isim__min(ctx, c->window);
    double kv_cache = kv_seq * micro;
    if (N * c->cap < kv_cache + c->weight_bytes)
        return INFINITY;

    /* Expert parallelism only once each expert sees two tokens (code: micro_bs < 2 s). */
    double n_ep = 1, nt_ff = NT;
    if (c->n_moe > 0) {
        n_ep = isim__min(NT, c->E);
        if (micro < 2 * c->s)
            n_ep = 1;
        nt_ff = isim__max(1.0, NT / isim__max(1.0, n_ep));
    }
    double nt_attn = NT / a;
    tp_layout la = layout(nt_attn, p->two_d, c->node);
    tp_layout lf = layout(nt_ff, p->two_d, c->node);
    tp_layout ld = layout(NT, p->two_d, c->node);

    /* Network (Eq. 39 as coded): per layer, all-reduces of the attention and FFN outputs. */
    const isim_hw *hw = c->hw;
    double lat = 0, bw = 0, lat_l = 0, bw_l = 0;
    double tok_bytes = micro * seq * c->ap;
    if (p->two_d) {
        coll(hw, la, c->d / la.par * tok_bytes, ISIM_ALL_REDUCE, &lat_l, &bw_l);
        coll(hw, la, c->d_all / la.par * tok_bytes, ISIM_ALL_REDUCE, &lat_l, &bw_l);
    } else {
        coll(hw, la, c->d * tok_bytes, ISIM_ALL_REDUCE, &lat_l, &bw_l);
    }
    lat += c->L * lat_l;
    bw += c->L * bw_l;
    if (c->n_dense > 0) {
        double l = 0, w = 0, split = NT / ld.ranks;
        if (p->two_d)
            coll(hw, ld, c->c0 * c->dff / split * tok_bytes, ISIM_ALL_REDUCE, &l, &w);
        coll(hw, ld, c->c1 * c->d / split * tok_bytes, ISIM_ALL_REDUCE, &l, &w);
        lat += c->n_dense * l;
        bw += c->n_dense * w;
    }
    if (c->n_moe > 0) {
        double l = 0, w = 0, split = NT / lf.ranks;
        double width = c->k * c->dff_e + c->n_sh * c->dff_sh, outs = c->k + c->n_sh;
        if (p->two_d)
            coll(hw, lf, c->c0 * width / split * tok_bytes, ISIM_ALL_REDUCE, &l, &w);
        coll(hw, lf, c->c1 * outs * c->d / split * tok_bytes, ISIM_ALL_REDUCE, &l, &w);
        /* Two all-to-alls (dispatch, combine) over r = min(n_active, N_EP) ranks (§3.5). */
        double r = isim__min(c->k, n_ep);
        tp_layout le = {r, 1, ceil(r / c->node)};
        double l2 = 0, w2 = 0;
        coll(hw, le, c->d * micro * r * seq * c->ap / NT, ISIM_ALL_TO_ALL, &l2, &w2);
        lat += c->n_moe * (l + 2 * l2);
        bw += c->n_moe * (w + 2 * w2);
    }
    if (npp > 1) {
        /* N_PP - 1 sequential point-to-point hand-offs between stages (§3.5). */
        double l = 0, w = 0;
        coll(hw, (tp_layout){2, 1, 2}, c->d * micro * seq * c->ap / NT, ISIM_P2P, &l, &w);
        lat += (npp - 1) * l;
        bw += (npp - 1) * w;
    }

    /* HBM (Eqs. 31-35 as coded): each micro-batch reads the weights and its KV cache. */
    double bt = micro * seq, wp = c->wp, ap = c->ap;
    double attn_rw;
    if (c->mla)
        attn_rw = matmul_rw(c->mla_in, c->d, bt, wp, ap, nt_attn) +
                  matmul_rw(c->d_all, c->mla_in, bt, wp, ap, nt_attn) +
                  matmul_rw(c->d, c->q_width, bt, wp, ap, nt_attn);
    else
        attn_rw = matmul_rw(c->d_all, c->d, bt, wp, ap, nt_attn) +
                  matmul_rw(c->d, c->q_width, bt, wp, ap, nt_attn);
    double ff_rw = 0;
    if (c->n_dense > 0)
        ff_rw += c->n_dense * (c->c0 + c->c1) * matmul_rw(c->d, c->dff, bt, wp, ap, NT);
    if (c->n_moe > 0) {
        /* Eq. 32: expected fraction of experts touched, 1 - (1 - 1/s)^tokens. */
        double used = c->s > 1 ? -expm1(bt * c->log_keep) : 1.0;
        double moe = used * c->E * (c->c0 + c->c1) *
                     matmul_rw(c->d, c->dff_e, bt / c->s, wp, ap, nt_ff);
        if (c->n_sh > 0)
            moe += c->n_sh * (c->c0 + c->c1) * matmul_rw(c->d, c->dff_sh, bt, wp, ap, nt_ff);
        ff_rw += c->n_moe * moe;
    }
    double nbw = N * c->BW;
    double mem = npp * ((kv_cache + ff_rw + c->unembed_bytes) / nbw + c->L * attn_rw * a / nbw);

    /* Arithmetic (Eqs. 36-38): the whole batch, attention projections on the scaled-down
     * attention group, scores over the mean context input_len + (seq_len - 1)/2 of
     * arithmetic_cost_flop (docs/model.md lists where this departs from the code). */
    double tok = b * seq, actx = ctx + (seq - 1) / 2;
    double attn_kv = (c->attn_flop_full * actx + c->attn_flop_local * isim__min(actx, c->window)) * tok;
    double nf = N * c->F;
    double flop = (c->ff_flop_tok * tok + attn_kv) / nf + c->proj_flop_tok * tok * a / nf;

    /* Eq. 29-30: latency and network add; memory and arithmetic overlap. */
    double fixed = c->L * 4 * c->launch + lat;
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

double isim_paper_best(const isim_paper_ctx *c, double devices, double batch, double pp,
                       double seq_len, double input_len, isim_terms *terms,
                       isim_paper_point *best)
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
    isim_paper_point pt = {.devices = devices, .batch = batch, .seq_len = seq_len,
                           .input_len = input_len};
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
            snprintf(res->reason_detail, sizeof res->reason_detail, "%s has no %s rate",
                     hw->id, isim_dtype_name(res->weights));
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
    double ttft = 0;
    if (I > 0)
        ttft = isim_paper_best(c, N, b, q->pp, I, 0, &res->prefill, NULL);
    res->ttft_s = isfinite(ttft) ? ttft : 0;
    res->mfu = isim_model_flops_per_token(m, I) * b / (N * c->peak * res->tpot_s);
    isim__result_economics(hw, q, res->ttft_s, res);
cleanup:
    isim_paper_ctx_free(c);
    isim_paper_ctx_free(dc);
    return st;
}
