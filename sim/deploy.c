/* The `deploy` fidelity: what a serving engine on whole devices does. 1-D Megatron tensor
 * parallelism (Shoeybi et al. 2019) inside a scale-up domain, pipeline stages with
 * micro-batches and bubbles, expert parallelism with dispatch/combine all-to-alls and
 * attention data parallelism for MoE, exact per-device memory (weights, KV cache of every
 * sequence at full context, activations, runtime reserve), chunked prefill for TTFT and a
 * per-pass engine overhead. Equations and choices: docs/model.md, "Deploy fidelity". */
#include "sim/internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double isim__rate16(const isim_hw *hw)
{
    if (hw->peak_flops[ISIM_BF16] > 0)
        return hw->peak_flops[ISIM_BF16];
    if (hw->peak_flops[ISIM_FP16] > 0)
        return hw->peak_flops[ISIM_FP16];
    return hw->peak_flops[ISIM_FP32];
}

/* fp8, int8 and fp4 weights run W8A8/W4A4 matmuls where the device has the rate; int4
 * weights are weight-only (W4A16, as AWQ/GPTQ kernels); fp32 weights run at the profile's
 * fp32 rate (datasheets give the non-tensor one, a conservative bound); the rest 16-bit. */
isim_dtype isim__deploy_compute_dtype(const isim_hw *hw, isim_dtype w)
{
    switch (w) {
    case ISIM_FP8:
    case ISIM_INT8:
    case ISIM_FP4:
    case ISIM_FP32:
        if (hw->peak_flops[w] > 0)
            return w;
        break;
    default:
        break;
    }
    return hw->peak_flops[ISIM_BF16] > 0   ? ISIM_BF16
           : hw->peak_flops[ISIM_FP16] > 0 ? ISIM_FP16
                                           : ISIM_FP32;
}

typedef struct {
    const isim_model *m;
    const isim_hw *hw;
    double wp, kvb, ap;
    double F_gemm, F_attn, BW;
    double BW_w;  /* the rate at which the weights stream (4-bit kernels have their own) */
    double BW_e;  /* the rate at which routed experts' weights stream (grouped matmuls) */
    double BW_kv; /* the rate at which attention reads the KV cache */
    int64_t N, tp, pp, ep, dp, G, etp;
    double kv_shard;   /* ways the KV cache is split over a TP group */
    double kv_w_shard; /* ways the K and V projections are split (replicated past n_kv) */
    /* the collectives of a pass, per byte (their latency and slope do not depend on the
     * message but in proportion): made once per layout, not once per pass */
    isim__coll_line ar_tp, a2a_g, ar_etp, ar_g, p2p;
} dctx;

typedef struct {
    int64_t layers, dense, moe, sliding;
    bool first, last;
    bool logits; /* the classifier runs in this stage's pass (the last stage's, unless the
                    schedule runs it apart) */
    bool send;   /* the pass ends by sending its activations to the next stage */
} stage_info;

/* Layers split evenly over stages, the remainder on the first stages. */
static void stage_of(const isim_model *m, int64_t pp, int64_t s, stage_info *si)
{
    int64_t base = m->n_layers / pp, rem = m->n_layers % pp;
    int64_t start = s * base + (s < rem ? s : rem), n = base + (s < rem);
    memset(si, 0, sizeof *si);
    si->layers = n;
    si->first = s == 0;
    si->last = s == pp - 1;
    si->logits = si->last;
    si->send = !si->last;
    for (int64_t i = start; i < start + n; i++) {
        if (i < m->d.n_dense_layers)
            si->dense++;
        else
            si->moe++;
        if (m->window > 0 && m->pattern[i % m->pattern_len])
            si->sliding++;
    }
}

typedef struct {
    double seqs;       /* sequences of this device's data-parallel group in the pass */
    double q;          /* tokens per sequence in the pass */
    double ctx;        /* mean number of earlier tokens each token attends to */
    double logit_seqs; /* prefill: sequences whose prompt ends in this pass */
    bool prefill;      /* logits only for the last token; MLA without weight absorption */
    /* a mixed pass (continuous batching): decode sequences riding in the same pass, one
     * token each at a mean earlier context of dec_ctx; 0 in a pass of one kind */
    double dec_seqs, dec_ctx;
} pass;

static void coll_line(const isim_hw *hw, isim_coll kind, double ranks, isim__coll_line *out)
{
    double nodes = ceil(ranks / (double)hw->domain_size);
    isim__coll_line_make(hw, ISIM_DEPLOY, kind, ranks, nodes, 1.0, out);
}

/* `times` collectives of `bytes` each on line l (coll_line) */
static void add_coll(const isim__coll_line *l, double bytes, double *lat, double *bw, double times)
{
    double a, b;
    isim__coll_line_eval(l, bytes, &a, &b);
    *lat += times * a;
    *bw += times * b;
}

/* sim.h. One tile (tile_rows 0, the GPU profiles): fewer rows than `full` pay for `full`,
 * as a GEMM tile computes all its rows. In tiles (a CPU microkernel), each tile runs over
 * the weights in turn: the first reads them from memory, the others from the cache they
 * were left in, with no memory traffic left to hide under. A tile of fewer rows than
 * `full` has too few independent sums to keep the FMA units busy (latency-bound), so from
 * cache it costs `full` rows; the first tile's arithmetic waits on memory, which hides
 * that latency, and it costs its own rows. */
void isim_matmul_tiles(double rows, double full, double tile_rows, double *first, double *rest)
{
    *first = *rest = 0;
    if (rows <= 0)
        return;
    if (tile_rows <= 0) {
        *first = fmax(rows, full);
        return;
    }
    if (rows <= tile_rows) {
        *first = rows;
        return;
    }
    double tiles = floor(rows / tile_rows), left = rows - tiles * tile_rows;
    *first = tile_rows;
    *rest = (tiles - 1) * fmax(tile_rows, full) + (left > 0 ? fmax(left, full) : 0);
}

/* sim.h. docs/model.md, "Overlap". */
double isim_overlap_time(double a, double h, double overlap, double after)
{
    return fmax(a, h) + overlap * fmin(a, h) + after;
}

/* Adds to *first and *after the seconds of `flops` of matmuls of `rows` rows each, split
 * as isim_matmul_tiles splits their rows (the profile's full and tile rows). */
static void tiled_arithmetic(const dctx *c, double flops, double rows, double *first, double *after)
{
    if (flops <= 0 || rows <= 0)
        return;
    double r1, r2;
    isim_matmul_tiles(rows, c->hw->eff_flops_full_rows, c->hw->eff_tile_rows, &r1, &r2);
    *first += flops * (r1 / rows) / c->F_gemm;
    *after += flops * (r2 / rows) / c->F_gemm;
}

/* Terms of one pass through one pipeline stage on its busiest device. */
/* The attention core of `seqs` sequences of q new tokens each, at a mean earlier context
 * of ctx, in one stage: q.k and p.v FLOPs added to *flops, the context's KV cache read
 * added to *kv_bytes. Decode with MLA runs in the latent space (weight absorption,
 * arXiv:2405.04434 §2.1.2); a sliding-window layer reads at most its window. */
static void attention_core(const dctx *c, const stage_info *si, double seqs, double q, double ctx,
                           bool prefill, double *flops, double *kv_bytes)
{
    const isim_model *m = c->m;
    const isim_model_derived *x = &m->d;
    double qk = x->qk_head_dim, v = x->v_head_dim;
    if (m->has_mla && !prefill) {
        qk = (double)(m->kv_lora_rank + m->rope_head_dim);
        v = (double)m->kv_lora_rank;
    }
    double heads = (double)m->n_heads / (double)c->tp;
    double kv_tok = x->kv_elems_per_token_layer * c->kvb / c->kv_shard;
    double n_full = (double)(si->layers - si->sliding), n_local = (double)si->sliding;
    double ctx_local = m->window > 0 ? fmin(ctx, (double)m->window) : ctx;
    *flops += 2 * seqs * q * heads * (qk + v) * (n_full * ctx + n_local * ctx_local);
    *kv_bytes += seqs * kv_tok * (n_full * ctx + n_local * ctx_local);
}

static void stage_terms(const dctx *c, const stage_info *si, const pass *ps, isim_terms *t)
{
    const isim_model *m = c->m;
    const isim_model_derived *x = &m->d;
    const double tp = (double)c->tp, d = (double)m->d_model, ap = c->ap, wp = c->wp;
    const double tok = ps->seqs * ps->q + ps->dec_seqs, tok_stage = tok * (double)c->dp;
    const double c0 = m->ffn == ISIM_FFN_SWIGLU ? 2 : 1;
    double fl_gemm = 0, fl_attn = 0, bytes = 0, wbytes = 0, ebytes = 0, lat = 0, bw = 0;
    /* The element-wise kernels' traffic, values read and written per token and layer: two
     * RMSNorms (read x, write its norm: 2 d each) and two residual adds (read both, write
     * the sum: 3 d each), replicated on every TP rank, and the FFN's activation (gated: read
     * gate and up, write their product; else read and write), on the rank's share of the
     * width. Separate kernels between the matmuls (unfused, as the CPU engine and eager
     * PyTorch run them): their traffic adds to the step rather than hiding under the
     * matmuls' arithmetic. docs/model.md, "Element-wise kernels". */
    double elem = (double)si->layers * tok * ap * 10 * d;
    double fl_expert = 0, expert_rows = 0; /* routed experts' matmuls, rows of each */

    /* Attention: projections sharded by heads over tp; q.k and p.v over the context. */
    double fl_attn_core = 0, kv_read = 0;
    attention_core(c, si, ps->seqs, ps->q, ps->ctx, ps->prefill, &fl_attn_core, &kv_read);
    if (ps->dec_seqs > 0)
        attention_core(c, si, ps->dec_seqs, 1, ps->dec_ctx, false, &fl_attn_core, &kv_read);
    double kv_tok = x->kv_elems_per_token_layer * c->kvb / c->kv_shard;
    double qkv_width = (double)((m->n_heads + 2 * m->n_kv_heads) * m->head_dim);
    /* Q and O shard by tp; K and V by the KV heads a rank holds (copies once tp > n_kv). */
    double attn_dev = (x->attn_params_layer - x->kv_proj_params_layer) / tp +
                      x->kv_proj_params_layer / c->kv_w_shard;
    fl_gemm += (double)si->layers * 2 * tok * attn_dev;
    fl_attn += fl_attn_core;
    wbytes += (double)si->layers * attn_dev * wp;
    bytes += (double)si->layers * tok * ap * (4 * d + 2 * qkv_width / tp);
    /* the attention core's own traffic: the new tokens' K and V written, the context read */
    double kv_bytes = (double)si->layers * tok * kv_tok + kv_read;
    if (c->tp > 1)
        add_coll(&c->ar_tp, tok * d * ap, &lat, &bw, (double)si->layers);

    /* Dense FFN: column-parallel up/gate, row-parallel down, one all-reduce. */
    double dff = (double)m->d_ff;
    fl_gemm += (double)si->dense * 2 * tok * x->dense_ffn_params / tp;
    wbytes += (double)si->dense * x->dense_ffn_params * wp / tp;
    bytes += (double)si->dense * tok * ap * (2 * d + (c0 + 1) * dff / tp);
    elem += (double)si->dense * tok * ap * (c0 + 1) * dff / tp;
    if (c->tp > 1)
        add_coll(&c->ar_tp, tok * d * ap, &lat, &bw, (double)si->dense);

    if (si->moe > 0) {
        double E = (double)m->n_experts, k = (double)m->n_active_experts;
        double G = (double)c->G, ep = (double)c->ep, etp = (double)c->etp;
        double dff_e = (double)m->expert_d_ff, sh = (double)m->n_shared_experts;
        /* Distinct local experts touched by tok_stage uniformly routed tokens. */
        double touched = E / ep * -expm1(tok_stage * log1p(-k / E));
        ebytes += (double)si->moe * touched * x->expert_params * wp / etp;
        wbytes += (double)si->moe *
                  (sh * x->shared_expert_params * wp / tp + x->router_params_layer * wp);
        double per_layer_bytes =
            tok_stage * k / ep * ap * (2 * d + (c0 + 1) * dff_e / etp) +
            (sh > 0 ? tok * ap * (2 * d + (c0 + 1) * (double)m->shared_expert_d_ff / tp) : 0);
        bytes += (double)si->moe * per_layer_bytes;
        elem += (double)si->moe * ap * (c0 + 1) *
                (tok_stage * k / ep * dff_e / etp +
                 (sh > 0 ? tok * (double)m->shared_expert_d_ff / tp : 0));
        fl_expert += (double)si->moe * 2 * tok_stage * k * x->expert_params / G;
        expert_rows = tok_stage * k / ep / fmax(touched, 1.0);
        fl_gemm += (double)si->moe *
                   (2 * tok * sh * x->shared_expert_params / tp + 2 * tok * x->router_params_layer);
        if (c->ep > 1) {
            /* Dispatch and combine: each rank sends its distinct tokens' k copies. */
            add_coll(&c->a2a_g, tok_stage / G * k * d * ap, &lat, &bw, 2.0 * (double)si->moe);
            if (c->etp > 1)
                add_coll(&c->ar_etp, tok_stage * k / ep * d * ap, &lat, &bw, (double)si->moe);
        } else if (c->G > 1) {
            add_coll(&c->ar_g, tok_stage * d * ap, &lat, &bw, (double)si->moe);
        }
    }

    /* Embedding lookup on the first stage, classifier on the last (vocab-parallel). */
    double V = (double)m->vocab;
    if (si->first)
        wbytes += tok * d * wp;
    if (si->logits) {
        double logit_tok = ps->prefill ? ps->logit_seqs + ps->dec_seqs : tok;
        wbytes += V * d * wp / tp;
        bytes += logit_tok * V / tp * 4;
        fl_gemm += 2 * logit_tok * V * d / tp;
    } else if (si->send) {
        add_coll(&c->p2p, tok * d * ap, &lat, &bw, 1.0);
    }

    memset(t, 0, sizeof *t);
    /* a profile's efficiency curve: matmuls of fewer rows than `full` run at rows / full of
     * the sustained rate (a tile only partly filled: on a CPU a microkernel loads weights
     * for every row it may hold; on a GPU a GEMM tile of `full` rows computes them all),
     * and with tile_rows, the rows past the first tile run after the weights' streaming
     * (isim_matmul_tiles). The routed experts' matmuls have the rows of one expert each:
     * the tokens a device's touched experts receive, shared among them. */
    double a_first = 0, a_after = 0;
    tiled_arithmetic(c, fl_gemm, tok, &a_first, &a_after);
    tiled_arithmetic(c, fl_expert, expert_rows, &a_first, &a_after);
    double a_gemm = a_first + a_after;
    double a_attn = fl_attn / c->F_attn;
    double h_gemm = bytes / c->BW + wbytes / c->BW_w + ebytes / c->BW_e,
           h_attn = kv_bytes / c->BW_kv;
    t->t[ISIM_TERM_ARITHMETIC] = a_gemm + a_attn;
    t->elementwise_s = elem / c->BW;
    t->t[ISIM_TERM_HBM] = h_gemm + h_attn + t->elementwise_s;
    t->t[ISIM_TERM_NETWORK] = bw;
    t->t[ISIM_TERM_FIXED] =
        lat + (double)si->layers * c->hw->kernels_per_layer * c->hw->kernel_launch_s;
    isim__terms_finish(t);
    /* The matmuls and the attention core are separate kernels, one after the other: each
     * overlaps its own arithmetic with its own memory traffic, not with the other's (a
     * decode step whose matmuls are compute-bound and whose attention is bound by a long
     * cache pays for both). docs/model.md, "Overlap". */
    const double ov = c->hw->eff_overlap;
    t->matmul_s = isim_overlap_time(a_first, h_gemm, ov, a_after);
    t->attention_s = isim_overlap_time(a_attn, h_attn, ov, 0);
    t->total_s = t->t[ISIM_TERM_FIXED] + bw + t->matmul_s + t->attention_s + t->elementwise_s;
}

/* One pass (all stages) with the pipeline schedule: m micro-batches each traverse every
 * stage; the slowest stage gates the cycle (GPipe bubble analysis, Huang et al. 2019). */
typedef struct {
    isim_terms sum, slowest; /* sum over stages; the slowest stage */
    double sum_s, max_s;
} pass_result;

static void run_pass(const dctx *c, const pass *ps, pass_result *r)
{
    memset(r, 0, sizeof *r);
    for (int64_t s = 0; s < c->pp; s++) {
        stage_info si;
        isim_terms t;
        stage_of(c->m, c->pp, s, &si);
        stage_terms(c, &si, ps, &t);
        isim__terms_add(&r->sum, &t, 1.0);
        r->sum_s += t.total_s;
        if (t.total_s > r->max_s) {
            r->max_s = t.total_s;
            r->slowest = t;
        }
    }
}

/* Terms of a fixed latency of s seconds (engine overhead, a request's own path). */
static isim_terms fixed_terms(double s)
{
    return (isim_terms){.t = {[ISIM_TERM_FIXED] = s}, .total_s = s, .binding = ISIM_TERM_FIXED};
}

/* Decode cycle of m micro-batches: max(sum over stages, m x slowest) + engine overhead. */
static double decode_cycle(const dctx *c, const pass_result *r, double mb, isim_terms *terms)
{
    memset(terms, 0, sizeof *terms);
    if (mb * r->max_s > r->sum_s)
        isim__terms_add(terms, &r->slowest, mb);
    else
        isim__terms_add(terms, &r->sum, 1.0);
    isim_terms ovh = fixed_terms(c->hw->step_overhead_s);
    isim__terms_add(terms, &ovh, 1.0);
    return terms->total_s;
}

/* c with the bandwidth one rank has while `n` stages stream at once: ranks sharing one
 * machine (isim_hw_rank_share) split its bandwidth among the G n ranks streaming (G the
 * ranks of a stage), each up
 * to what one thread streams alone; a device of its own keeps its bandwidth whatever the
 * other stages do. Every rate of fill_ctx's is a fixed fraction of the bandwidth. */
static void with_stages_streaming(const dctx *c, double n, dctx *out)
{
    *out = *c;
    const isim_hw *hw = c->hw;
    if (hw->mem_machine_bytes_per_s <= 0 || hw->mem_bytes_per_s <= 0)
        return;
    double bw = hw->mem_machine_bytes_per_s / ((double)c->G * n);
    if (hw->mem_thread_bytes_per_s > 0 && hw->mem_thread_bytes_per_s < bw)
        bw = hw->mem_thread_bytes_per_s;
    double f = bw / hw->mem_bytes_per_s;
    out->BW *= f;
    out->BW_w *= f;
    out->BW_e *= f;
    out->BW_kv *= f;
}

/* One pass of ISIM_PP_STEPWISE: M micro-batches (each `mb`) fill and drain the pipeline,
 * then the last stage runs the classifier once over the pass's rows (`cls`). Micro-batch j
 * is on stage s in wavefront s + j: the pass is the sum over the M + S - 1 wavefronts of
 * the slowest stage in each (equal stages: the GPipe fill-and-drain time (M + S - 1) t,
 * Huang et al. 2019), each stage at the bandwidth the stages beside it in that wavefront
 * leave it. *busy_s: the stages' summed busy time. */
static double stepwise_pass(const dctx *c, const pass *mb, double M, const pass *cls,
                            isim_terms *terms, double *busy_s)
{
    const int64_t S = c->pp, nm = (int64_t)M;
    memset(terms, 0, sizeof *terms);
    double busy = 0;
    for (int64_t k = 0; k < nm + S - 1; k++) {
        int64_t lo = k - nm + 1 > 0 ? k - nm + 1 : 0, hi = k < S - 1 ? k : S - 1;
        dctx cn;
        with_stages_streaming(c, (double)(hi - lo + 1), &cn);
        isim_terms slowest = {0};
        for (int64_t s = lo; s <= hi; s++) {
            stage_info si;
            isim_terms t;
            stage_of(c->m, S, s, &si);
            si.logits = false;
            stage_terms(&cn, &si, mb, &t);
            busy += t.total_s;
            if (s == lo || t.total_s > slowest.total_s)
                slowest = t;
        }
        isim__terms_add(terms, &slowest, 1.0);
    }
    dctx c1;
    with_stages_streaming(c, 1, &c1);
    stage_info head = {.logits = true}; /* the classifier alone: no layers, nothing sent */
    isim_terms t;
    stage_terms(&c1, &head, cls, &t);
    isim__terms_add(terms, &t, 1.0);
    *busy_s = busy + t.total_s;
    return terms->total_s;
}

/* Mean over requests i = 1..n of ceil(i P / C), the chunk in which request i's prompt
 * ends. Exact up to 1e5 requests; beyond, the continuous form P (n + 1) / (2 C) + 1/2,
 * which is off by less than half a chunk (exact when P divides C or C divides P). */
static double mean_finishing_chunk(double n, double P, double C)
{
    if (n > 1e5)
        return P * (n + 1) / (2 * C) + 0.5;
    double sum = 0;
    for (double i = 1; i <= n; i++)
        sum += ceil(i * P / C);
    return sum / n;
}

static bool kv_compatible(int64_t tp, int64_t n_kv)
{
    return n_kv % tp == 0 || tp % n_kv == 0;
}

static bool tp_valid(const isim_model *m, const isim_hw *hw, const isim_query *q, int64_t tp)
{
    return m->n_heads % tp == 0 && kv_compatible(tp, m->n_kv_heads) &&
           (tp <= hw->domain_size || q->allow_cross_domain_tp);
}

static isim_status infeasible(isim_result *res, isim_reason r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static isim_status infeasible(isim_result *res, isim_reason r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->reason_detail, sizeof res->reason_detail, fmt, ap);
    va_end(ap);
    res->feasible = false;
    res->reason = r;
    return ISIM_OK;
}

/* Resolves tp, pp, ep and dp; returns false with the reason set when the layout is
 * impossible. Unset degrees: the largest valid TP inside the scale-up domain, PP for the
 * rest, EP over every device of a stage (docs/model.md, "Default layout"). */
static bool resolve_layout(const isim_model *m, const isim_hw *hw, const isim_query *q, dctx *c,
                           isim_result *res)
{
    int64_t N = (int64_t)q->devices;
    int64_t tp = q->tp, pp = q->pp, ep = q->ep;
    if (tp == 0) {
        int64_t room = pp > 0 && N % pp == 0 ? N / pp : N;
        for (int64_t t = room; t >= 1; t--)
            if (room % t == 0 && tp_valid(m, hw, q, t)) {
                tp = t;
                break;
            }
    }
    if (pp == 0)
        pp = N % tp == 0 ? N / tp : 1;
    if (N % (tp * pp) != 0) {
        infeasible(res, ISIM_REASON_LAYOUT, "%lld devices are not a multiple of tp %lld x pp %lld",
                   (long long)N, (long long)tp, (long long)pp);
        return false;
    }
    int64_t G = N / pp;
    if (ep == 0) {
        ep = 1;
        if (m->has_moe)
            for (int64_t e = G; e >= 1; e--)
                if (G % e == 0 && m->n_experts % e == 0) {
                    ep = e;
                    break;
                }
    }
    c->N = N;
    c->tp = tp;
    c->pp = pp;
    c->ep = ep;
    c->G = G;
    c->dp = G / tp;
    c->etp = G % ep == 0 ? G / ep : 1;
    res->tp = (int)tp;
    res->pp = (int)pp;
    res->ep = (int)ep;
    res->dp = (int)c->dp;
    if (m->n_heads % tp != 0 || !kv_compatible(tp, m->n_kv_heads)) {
        infeasible(res, ISIM_REASON_TP_HEADS, "tp %lld vs %lld query and %lld kv heads",
                   (long long)tp, (long long)m->n_heads, (long long)m->n_kv_heads);
        return false;
    }
    if (tp > hw->domain_size && !q->allow_cross_domain_tp) {
        infeasible(res, ISIM_REASON_TP_DOMAIN, "tp %lld > scale-up domain of %lld", (long long)tp,
                   (long long)hw->domain_size);
        return false;
    }
    if (pp > m->n_layers) {
        infeasible(res, ISIM_REASON_PP_LAYERS, "pp %lld > %lld layers", (long long)pp,
                   (long long)m->n_layers);
        return false;
    }
    if (ep > 1 && (!m->has_moe || G % ep != 0 || m->n_experts % ep != 0)) {
        infeasible(res, ISIM_REASON_EP_EXPERTS, "ep %lld vs %lld experts on %lld devices per stage",
                   (long long)ep, (long long)m->n_experts, (long long)G);
        return false;
    }
    return true;
}

static void fill_ctx(dctx *c, const isim_model *m, const isim_hw *hw, isim_dtype w, isim_dtype kv)
{
    c->m = m;
    c->hw = hw;
    c->wp = isim_dtype_bytes(w);
    c->kvb = isim_dtype_bytes(kv);
    c->ap = hw->activation_bytes; /* 2 unless the profile says otherwise (the CPU engine: 4) */
    c->F_gemm = hw->peak_flops[isim__deploy_compute_dtype(hw, w)] * hw->eff_flops;
    c->F_attn = isim__rate16(hw) * hw->eff_attention;
    c->BW = hw->mem_bytes_per_s * hw->eff_hbm;
    /* 4-bit weights unpack in the matmul's inner loop (fp4 block scales for W4A4, int4 to
     * 16 bits for W4A16): their kernels reach bandwidths of their own, measured
     * (docs/validation.md) */
    double e4 = w == ISIM_FP4 ? hw->eff_hbm_fp4 : w == ISIM_INT4 ? hw->eff_hbm_int4 : 0;
    c->BW_w = e4 > 0 ? hw->mem_bytes_per_s * e4 : c->BW;
    /* a grouped matmul over many small experts reaches a bandwidth of its own, the same
     * fraction of the dense one for every weight precision */
    c->BW_e = hw->eff_hbm_experts > 0 ? c->BW_w * hw->eff_hbm_experts / hw->eff_hbm : c->BW_w;
    /* attention reads each sequence's cache in rows of one head (head_dim values), not in
     * the long contiguous runs of a weight matrix: its own measured fraction
     * (infersim calibrate), else the weights' */
    c->BW_kv = hw->eff_hbm_kv > 0 ? hw->mem_bytes_per_s * hw->eff_hbm_kv : c->BW;
    /* GQA heads are split over tp, replicated once tp exceeds them; the MLA latent is
     * shared by all heads, so every TP rank holds it whole. */
    c->kv_shard = m->has_mla ? 1.0 : (double)(c->tp < m->n_kv_heads ? c->tp : m->n_kv_heads);
    c->kv_w_shard = m->has_mla ? (double)c->tp : c->kv_shard;
    coll_line(hw, ISIM_ALL_REDUCE, (double)c->tp, &c->ar_tp);
    coll_line(hw, ISIM_ALL_TO_ALL, (double)c->G, &c->a2a_g);
    coll_line(hw, ISIM_ALL_REDUCE, (double)c->etp, &c->ar_etp);
    coll_line(hw, ISIM_ALL_REDUCE, (double)c->G, &c->ar_g);
    /* a stage's activations to the next: across the network once a stage fills a domain */
    isim__coll_line_make(hw, ISIM_DEPLOY, ISIM_P2P, 2, c->G >= hw->domain_size ? 2 : 1, 1.0,
                         &c->p2p);
}

/* Weights held by one device of stage si. */
static double stage_weight_bytes(const dctx *c, const stage_info *si)
{
    const isim_model *m = c->m;
    const isim_model_derived *x = &m->d;
    double tp = (double)c->tp, wp = c->wp, V = (double)m->vocab, d = (double)m->d_model;
    double attn = (x->attn_params_layer - x->kv_proj_params_layer) / tp +
                  x->kv_proj_params_layer / c->kv_w_shard;
    double w = (double)si->layers * (attn * wp + x->norm_params_layer * wp) +
               (double)si->dense * x->dense_ffn_params * wp / tp;
    if (si->moe)
        w += (double)si->moe *
             ((double)m->n_experts / (double)c->ep * x->expert_params * wp / (double)c->etp +
              (double)m->n_shared_experts * x->shared_expert_params * wp / tp +
              x->router_params_layer * wp);
    if (si->first)
        w += x->embedding_params * wp / tp;
    if (si->last) {
        /* A tied classifier shares the embedding on one stage; a last stage of a pipeline
         * needs its own copy. */
        double cls = m->tied_embeddings ? (c->pp > 1 ? V * d : 0) : x->unembedding_params;
        w += cls * wp / tp + x->final_norm_params * wp;
    }
    return w;
}

static double stage_kv_bytes(const dctx *c, const stage_info *si, double ctx, double seqs)
{
    const isim_model *m = c->m;
    double local = m->window > 0 ? fmin(ctx, (double)m->window) : ctx;
    return seqs * ((double)(si->layers - si->sliding) * ctx + (double)si->sliding * local) *
           m->d.kv_elems_per_token_layer * c->kvb / c->kv_shard;
}

/* Peak transient memory of a prefill chunk of `tok` tokens (hidden states, q/k/v, FFN
 * intermediates, fp32 logits of the sequences that finish in it). */
static double activation_bytes(const dctx *c, double tok, double seqs)
{
    const isim_model *m = c->m;
    double tp = (double)c->tp, d = (double)m->d_model;
    double qkv = (double)((m->n_heads + 2 * m->n_kv_heads) * m->head_dim) / tp;
    double ffn = 3 * (double)m->d_ff / tp;
    if (m->has_moe) {
        double moe_tok = tok * (double)c->dp * (double)m->n_active_experts / (double)c->ep;
        ffn = fmax(ffn, moe_tok / tok * 3 * (double)m->expert_d_ff / (double)c->etp);
    }
    return tok * c->ap * (4 * d + qkv + ffn) + seqs * (double)m->vocab / tp * 4;
}

isim_status isim__deploy_predict(const isim_model *m, const isim_hw *hw, const isim_query *q,
                                 isim_result *res, isim_error *err)
{
    if (q->devices != floor(q->devices))
        return isim__fail(err, ISIM_EINVAL, "", 0, 0,
                          "deploy fidelity uses whole devices, got %g (use --fidelity paper "
                          "for continuous counts)",
                          q->devices);
    if (q->batch != floor(q->batch) || q->input_tokens != floor(q->input_tokens) ||
        q->output_tokens != floor(q->output_tokens))
        return isim__fail(err, ISIM_EINVAL, "", 0, 0,
                          "deploy fidelity counts whole sequences and tokens, got batch %g, "
                          "%g input and %g output tokens",
                          q->batch, q->input_tokens, q->output_tokens);
    /* a serving engine's fitted parameters in place of the profile's */
    isim_hw fitted;
    if (q->backend) {
        const isim_hw_fit *f = isim_hw_fit_for(hw, q->backend);
        if (!f) {
            char have[200] = "";
            size_t used = 0;
            for (size_t i = 0; i < hw->n_fits && used < sizeof have; i++)
                used += (size_t)snprintf(have + used, sizeof have - used, "%s%s", i ? ", " : "",
                                         hw->fits[i].backend);
            return isim__fail(err, ISIM_EINVAL, "", 0, 0,
                              "%s has no parameters fitted for engine '%s' (%s%s)", hw->id,
                              q->backend, hw->n_fits ? "fitted: " : "no fitted section", have);
        }
        isim_hw_apply_fit(hw, f, &fitted);
        hw = &fitted;
    }
    res->feasible = true;
    res->reason = ISIM_REASON_NONE;
    if (!hw->has_serving)
        return infeasible(res, ISIM_REASON_NO_SERVING,
                          "%s has no 'serving' section (deploy fidelity needs it)", hw->id);
    dctx c = {0};
    if (!resolve_layout(m, hw, q, &c, res))
        return ISIM_OK;
    fill_ctx(&c, m, hw, res->weights, q->kv);

    const double B = q->batch, I = q->input_tokens, O = q->output_tokens;
    const double b_dp = ceil(B / (double)c.dp);
    /* A prefix-cache hit skips the cached share of each prompt; an empty prompt still
     * needs one pass (BOS). */
    const double cached = floor(I * q->prefix_hit_rate), fresh = fmax(I - cached, 1.0);

    /* Speculative decoding: the draft runs on the same devices with the same TP. */
    dctx dc = {0};
    if (q->draft) {
        const isim_model *dm = q->draft;
        if (dm->vocab != m->vocab)
            return infeasible(res, ISIM_REASON_DRAFT, "draft vocabulary %lld != target %lld",
                              (long long)dm->vocab, (long long)m->vocab);
        if (c.pp > 1)
            return infeasible(res, ISIM_REASON_DRAFT,
                              "speculative decoding with pipeline parallelism is not modelled");
        if (dm->n_heads % c.tp != 0 || !kv_compatible(c.tp, dm->n_kv_heads))
            return infeasible(res, ISIM_REASON_DRAFT, "draft heads (%lld) not divisible by tp %lld",
                              (long long)dm->n_heads, (long long)c.tp);
        dc = c;
        dc.ep = dm->has_moe ? c.ep : 1;
        dc.etp = dc.G / dc.ep;
        fill_ctx(&dc, dm, hw, q->draft_weights, q->kv);
    }

    /* Memory of the most loaded stage: every sequence holds its full context. */
    double chunk = fmin(hw->prefill_chunk_tokens, b_dp * fresh);
    double reserve = hw->mem_bytes * (1 - hw->mem_utilization) + hw->runtime_reserve_bytes;
    for (int64_t s = 0; s < c.pp; s++) {
        stage_info si;
        stage_of(m, c.pp, s, &si);
        isim_memory mem = {.weights = stage_weight_bytes(&c, &si),
                           .kv_cache = stage_kv_bytes(&c, &si, I + O, b_dp),
                           .activations = activation_bytes(&c, chunk, fmax(1, chunk / fresh)),
                           .reserve = reserve,
                           .capacity = hw->mem_bytes};
        if (q->draft) {
            stage_info dsi;
            stage_of(dc.m, 1, 0, &dsi);
            mem.weights += stage_weight_bytes(&dc, &dsi);
            mem.kv_cache += stage_kv_bytes(&dc, &dsi, I + O, b_dp);
        }
        mem.total = mem.weights + mem.kv_cache + mem.activations + mem.reserve;
        if (s == 0 || mem.total > res->memory.total)
            res->memory = mem;
    }

    /* Decode: m micro-batches of the data-parallel group's sequences, at the mean context
     * over the generation. */
    double mb = fmin((double)c.pp, b_dp);
    res->micro_batches = mb;
    pass dec = {.seqs = b_dp / mb, .q = 1, .ctx = I + (O - 1) / 2, .prefill = false};
    const bool stepwise = q->pp_schedule == ISIM_PP_STEPWISE && c.pp > 1;
    isim_terms plain;
    double tpot;
    if (stepwise) {
        pass cls = dec;
        cls.seqs = b_dp;
        double busy, t = stepwise_pass(&c, &dec, mb, &cls, &plain, &busy);
        isim_terms ovh = fixed_terms(hw->step_overhead_s);
        isim__terms_add(&plain, &ovh, 1.0);
        tpot = plain.total_s;
        res->pp_bubble = t > 0 ? 1 - busy / ((double)c.pp * t) : 0;
    } else {
        pass_result pr;
        run_pass(&c, &dec, &pr);
        tpot = decode_cycle(&c, &pr, mb, &plain);
        double cycle = fmax(pr.sum_s, mb * pr.max_s);
        res->pp_bubble = cycle > 0 ? 1 - mb * pr.sum_s / ((double)c.pp * cycle) : 0;
    }
    res->decode = plain;

    if (q->draft) {
        /* Leviathan et al. 2023: gamma draft tokens, one verify pass over gamma + 1 tokens,
         * expected (1 - a^(g+1)) / (1 - a) tokens per step. */
        pass_result dr;
        pass dpass = dec;
        run_pass(&dc, &dpass, &dr);
        isim_terms draft;
        decode_cycle(&dc, &dr, 1, &draft);
        int g_lo = q->spec_gamma ? q->spec_gamma : 1;
        int g_hi = q->spec_gamma ? q->spec_gamma : q->spec_gamma_max;
        double a = q->spec_alpha;
        for (int g = g_lo; g <= g_hi; g++) {
            pass ver = dec;
            ver.q = g + 1;
            pass_result vr;
            run_pass(&c, &ver, &vr);
            isim_terms target;
            decode_cycle(&c, &vr, 1, &target);
            double tokens = (1 - pow(a, g + 1)) / (1 - a);
            double t = (target.total_s + g * draft.total_s) / tokens;
            if (t < tpot || (q->spec_gamma && g == q->spec_gamma)) {
                tpot = t;
                isim__spec_record(res, g, tokens, &target, &draft);
            }
        }
    }
    res->tpot_s = tpot;
    /* MFU counts the model's FLOPs of the tokens produced (not recomputation). */
    double peak = hw->peak_flops[isim__deploy_compute_dtype(hw, res->weights)];
    res->mfu = isim_model_flops_per_token(m, dec.ctx) * B / ((double)c.N * peak * tpot);

    /* Prefill: the data-parallel group's prompts in chunks; request i finishes with chunk
     * ceil(i I / C). TTFT is the mean over the requests of one arrival burst. With a
     * prefix-cache hit the new tokens attend over the cached prefix and themselves. */
    double total_tok = b_dp * fresh, C = fmin(hw->prefill_chunk_tokens, total_tok);
    double n_chunks = ceil(total_tok / C);
    pass pre = {.seqs = fmax(C / fresh, 1.0),
                .q = fmin(C, fresh),
                .ctx = cached + fresh / 2,
                .logit_seqs = C / fresh,
                .prefill = true};
    pass_result fr;
    if (!stepwise) {
        run_pass(&c, &pre, &fr);
    } else {
        /* each chunk fills and drains the pipeline in min(pp, rows) micro-batches, split
         * by sequence where it holds enough, else by token */
        double rows = pre.seqs * pre.q, M = fmin((double)c.pp, fmax(floor(rows), 1.0));
        pass one = pre, cls = {.seqs = pre.logit_seqs, .q = 1, .ctx = pre.ctx};
        if (pre.seqs >= M)
            one.seqs /= M;
        else
            one.q /= M;
        isim_terms chunk_terms;
        double busy, t = stepwise_pass(&c, &one, M, &cls, &chunk_terms, &busy);
        /* every chunk alike and none overlapping the next: the sum is each one's time */
        fr.sum = fr.slowest = chunk_terms;
        fr.sum_s = fr.max_s = t;
    }
    if (q->draft) {
        /* The draft prefills the same prompts, chunk by chunk, on the same devices. */
        pass_result dfr;
        run_pass(&dc, &pre, &dfr);
        isim__terms_add(&fr.sum, &dfr.sum, 1.0);
        isim__terms_add(&fr.slowest, &dfr.sum, 1.0);
        fr.sum_s += dfr.sum_s;
        fr.max_s += dfr.sum_s;
    }
    double mean_chunk = mean_finishing_chunk(b_dp, fresh, C);
    memset(&res->prefill, 0, sizeof res->prefill);
    isim__terms_add(&res->prefill, &fr.sum, 1.0);
    isim__terms_add(&res->prefill, &fr.slowest, mean_chunk - 1);
    isim_terms ovh = fixed_terms(hw->step_overhead_s);
    isim__terms_add(&res->prefill, &ovh, mean_chunk);
    /* the request's own path to its first token outside the passes (API server, tokenizer) */
    isim_terms req = fixed_terms(hw->request_overhead_s);
    isim__terms_add(&res->prefill, &req, 1.0);
    res->ttft_s = res->prefill.total_s;
    double prefill_wall = fr.sum_s + (n_chunks - 1) * fr.max_s + n_chunks * hw->step_overhead_s;
    res->prefill_all_s = prefill_wall;
    res->prefill_chunks = n_chunks;

    if (res->memory.total > hw->mem_bytes) {
        infeasible(res, ISIM_REASON_MEMORY, "needs %.1f GB per device of %.1f GB",
                   res->memory.total / 1e9, hw->mem_bytes / 1e9);
    }
    isim__result_economics(hw, q, prefill_wall, res);
    return ISIM_OK;
}

/* ---- the mixed step of continuous batching (sim/serve.c) ------------------------------- */

struct isim_step_ctx {
    dctx c;
    isim_hw hw; /* the profile, an engine's fit applied */
    double kv_tokens;
};

isim_status isim_step_ctx_new(const isim_model *m, const isim_hw *hw, const isim_query *q,
                              isim_step_ctx **out, isim_result *res, isim_error *err)
{
    *out = NULL;
    if (q->fidelity != ISIM_DEPLOY)
        return isim__fail(err, ISIM_EINVAL, "", 0, 0,
                          "serving under traffic is simulated in the deploy fidelity only");
    if (q->draft)
        return isim__fail(err, ISIM_EINVAL, "", 0, 0,
                          "speculative decoding is not simulated under traffic");
    isim_status st = isim_predict(m, hw, q, res, err);
    if (st)
        return st;
    /* too big a static batch is no obstacle: the simulator admits what the cache holds */
    if (!res->feasible && res->reason != ISIM_REASON_MEMORY)
        return ISIM_OK;
    isim_step_ctx *x = calloc(1, sizeof *x);
    if (!x)
        return isim__fail(err, ISIM_ENOMEM, "", 0, 0, "out of memory");
    x->hw = *hw;
    if (q->backend)
        isim_hw_apply_fit(hw, isim_hw_fit_for(hw, q->backend), &x->hw);
    isim_result scratch = *res;
    if (!resolve_layout(m, &x->hw, q, &x->c, &scratch)) {
        free(x);
        return isim__fail(err, ISIM_EINVAL, "", 0, 0, "layout: %s", scratch.reason_detail);
    }
    fill_ctx(&x->c, m, &x->hw, res->weights, q->kv);
    /* The KV cache a data-parallel group holds, in tokens: what the most loaded stage's
     * devices keep free after weights, the largest chunk's activations and the reserve
     * (the memory model of isim_predict), over the bytes one token's KV takes there. */
    double reserve = x->hw.mem_bytes * (1 - x->hw.mem_utilization) + x->hw.runtime_reserve_bytes;
    double chunk = x->hw.prefill_chunk_tokens;
    x->kv_tokens = INFINITY;
    for (int64_t s = 0; s < x->c.pp; s++) {
        stage_info si;
        stage_of(m, x->c.pp, s, &si);
        double room = x->hw.mem_bytes - stage_weight_bytes(&x->c, &si) -
                      activation_bytes(&x->c, chunk, 1) - reserve;
        double per_token = stage_kv_bytes(&x->c, &si, 1, 1);
        if (per_token > 0)
            x->kv_tokens = fmin(x->kv_tokens, floor(fmax(room, 0) / per_token));
    }
    if (!(x->kv_tokens >= 1)) {
        infeasible(res, ISIM_REASON_MEMORY,
                   "the weights leave no room for a KV cache: %.1f GB per device of %.1f GB",
                   res->memory.weights / 1e9, x->hw.mem_bytes / 1e9);
        free(x);
        return ISIM_OK;
    }
    res->feasible = true;
    res->reason = ISIM_REASON_NONE;
    res->reason_detail[0] = '\0';
    *out = x;
    return ISIM_OK;
}

void isim_step_ctx_free(isim_step_ctx *x)
{
    free(x);
}

int isim_step_dp(const isim_step_ctx *x)
{
    return (int)x->c.dp;
}

double isim_step_devices(const isim_step_ctx *x)
{
    return (double)x->c.N;
}

double isim_step_kv_tokens(const isim_step_ctx *x)
{
    return x->kv_tokens;
}

double isim_step_chunk_tokens(const isim_step_ctx *x)
{
    return x->hw.prefill_chunk_tokens;
}

double isim_step_time(const isim_step_ctx *x, const isim_step_mix *mix, isim_terms *terms)
{
    pass ps;
    if (mix->prefill_tokens > 0)
        ps = (pass){.seqs = mix->prefill_seqs,
                    .q = mix->prefill_tokens / mix->prefill_seqs,
                    .ctx = mix->prefill_ctx,
                    .logit_seqs = mix->finishing,
                    .prefill = true,
                    .dec_seqs = mix->decode_seqs,
                    .dec_ctx = mix->decode_ctx};
    else
        ps = (pass){.seqs = mix->decode_seqs, .q = 1, .ctx = mix->decode_ctx};
    pass_result pr;
    run_pass(&x->c, &ps, &pr);
    /* the sequences split into as many micro-batches as there are stages (at most one per
     * sequence), as a decode step does */
    double seqs = mix->decode_seqs + (mix->prefill_tokens > 0 ? mix->prefill_seqs : 0);
    isim_terms t;
    double total = decode_cycle(&x->c, &pr, fmin((double)x->c.pp, fmax(seqs, 1)), &t);
    if (terms)
        *terms = t;
    return total;
}
