/* Internals of the paper fidelity shared by paper.c (one configuration) and
 * paper_grid.c (the released code's 400 x 400 grid): the precomputed context and the
 * candidate form of one configuration. */
#ifndef ISIM_PAPER_INTERNAL_H
#define ISIM_PAPER_INTERNAL_H

#include "sim/internal.h"


/* One collective of a pass: `times` occurrences of a line in the batch b. */
typedef struct {
    double times;
    isim__coll_line line;
    isim__coll_env env; /* the same line as a lower envelope, for fast totals */
} isim__paper_coll;

/* One candidate of new_token_latency_seconds (N, N_PP, 2-D or 1-D, attention scale-down,
 * seq_len, input_len; for MoE also whether expert parallelism is on) as a function of the
 * batch b (Erdil 2025 Eqs. 29-44 as coded):
 *   t(b) = K + sum_c times_c min_p(lat_cp + slope_cp b)
 *          + max(m0 + m1 b + used(tok b) (e0 + e1 b), f1 b)
 * feasible for pp <= min(N, b) and b <= b_cap (weights and one micro-batch's KV fit). */
typedef struct isim__paper_cand {
    double N, pp;
    double K;
    int n_coll;
    isim__paper_coll coll[8]; /* 2-D: attention 2, dense FFN 2, MoE FFN 2, EP 1, PP 1 */
    double lat_min; /* sum of times x the least latency of a protocol: a lower bound */
    double s_min;   /* sum of times x the least bandwidth slope: lat_min + s_min b bounds
                       the collectives from below */
    double m0, m1, f1;
    double e0, e1, tok, log_keep; /* routed experts: used(x) = 1 - (1 - 1/s)^x, x = tok b */
    double b_cap;
    double coll_seen; /* the collectives' time at the last batch evaluated: it only grows
                         with the batch, so it bounds later batches from below */
} isim__paper_cand;

/* A collective over one layout per byte of its word; see add_unit in paper.c. */
typedef struct {
    isim__coll_line line;
    isim__coll_env env;
    double lat_min, slope_min;
} isim__paper_unit;

struct isim_paper_ctx {
    bool dense;                      /* no MoE layer: the candidate form is affine in b */
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
    isim__paper_unit p2p; /* the pipeline hand-off: two ranks on two domains, per byte */
};

/* What the candidates of one (N, N_PP, seq_len, input_len, EP) share: the FFN, EP and
 * point-to-point collectives for 2-D ([0]) and 1-D ([1]) layouts and the FFN's memory. */
typedef struct {
    double N, pp, NT, seq, per_b, nbw, n_ep, nt_ff, r_ep;
    bool env; /* the candidates get envelopes (for isim__paper_cand_total) */
    int layouts; /* the layouts built (bits 0 and 1) */
    isim__paper_unit dense[2], moe[2], ep, p2p;
    double dense_split[2], moe_split[2];
    double w_const, w_tok, e0, e1, kv_seq, attn_kv_flop, b_cap;
} isim__paper_parts;

/* layouts: bit 0 builds the 2-D collectives, bit 1 the 1-D ones; bit 2 the envelopes that
 * isim__paper_cand_total needs. */
void isim__paper_parts_build(const isim_paper_ctx *c, double N, double pp, double seq,
                             double input_len, bool ep_on, int layouts, isim__paper_parts *s);
void isim__paper_cand_from_parts(const isim_paper_ctx *c, const isim__paper_parts *s,
                                 bool two_d, double a, isim__paper_cand *k);
/* isim__paper_cand_from_parts then isim__paper_cand_eval at batch b (> 0), without
 * keeping the collectives: one evaluation. */
double isim__paper_cand_at(const isim_paper_ctx *c, const isim__paper_parts *s, bool two_d,
                           double a, double b);
void isim__paper_cand_build(const isim_paper_ctx *c, double N, double pp, bool two_d, double a,
                            double seq, double input_len, bool ep_on, isim__paper_cand *out);
/* Seconds for batch b, INFINITY when infeasible; terms may be NULL. */
double isim__paper_cand_eval(const isim__paper_cand *k, double b, isim_terms *terms);

/* The same total through the envelopes (no terms): the grid's inner loop. */
static inline double isim__paper_cand_total(const isim__paper_cand *k, double b)
{
    if (k->pp > isim__min(k->N, b) || b > k->b_cap)
        return INFINITY;
    double t = k->K;
    for (int i = 0; i < k->n_coll; i++)
        t += k->coll[i].times * isim__coll_env_eval(&k->coll[i].env, b);
    double mem = k->m0 + k->m1 * b;
    if (k->e0 > 0)
        mem += -expm1(k->tok * b * k->log_keep) * (k->e0 + k->e1 * b);
    return t + isim__max(mem, k->f1 * b);
}

/* The total at b through the envelopes, remembering the collectives' time in coll_seen
 * (batches must then ascend). */
static inline double isim__paper_cand_total_seen(isim__paper_cand *k, double b)
{
    if (k->pp > isim__min(k->N, b) || b > k->b_cap)
        return INFINITY;
    double coll = 0;
    for (int i = 0; i < k->n_coll; i++)
        coll += k->coll[i].times * isim__coll_env_eval(&k->coll[i].env, b);
    k->coll_seen = coll;
    double mem = k->m0 + k->m1 * b;
    if (k->e0 > 0)
        mem += -expm1(k->tok * b * k->log_keep) * (k->e0 + k->e1 * b);
    return k->K + coll + isim__max(mem, k->f1 * b);
}

/* A lower bound of the candidate's total at b >= every batch seen (feasibility not
 * checked): the collectives are increasing in b. */
static inline double isim__paper_cand_bound(const isim__paper_cand *k, double b)
{
    return k->K + isim__max(k->coll_seen, k->lat_min + k->s_min * b) +
           isim__max(k->m0 + k->m1 * b, k->f1 * b);
}
/* The code's expert-parallelism rule: on once a micro-batch gives each expert two tokens. */
static inline bool isim__paper_ep_on(const isim_paper_ctx *c, double micro)
{
    return c->n_moe > 0 && micro >= 2 * c->s;
}

#endif
