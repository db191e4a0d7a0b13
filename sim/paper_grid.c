/* The released code's pareto_fronts grid (Erdil 2025, code c2c4fa9): the latency of every
 * (devices, batch) point, minimised over new_token_latency_seconds's candidates, and over
 * plain and speculative decoding. The values are those of isim_paper_best at each point;
 * the speed comes from branch and bound, not from approximation (docs/planner.md):
 *   - candidates are built once per device count where they do not depend on the batch
 *     (the PP degrees for batch >= layers, the six attention scale-downs, 2-D and 1-D), so
 *     evaluating one is a few multiply-adds (the candidate form of paper_internal.h);
 *   - a candidate or a whole PP degree is skipped when a lower bound of its latency cannot
 *     beat the best found so far, starting from the previous batch's winner: the
 *     candidate's terms at an earlier batch for the fixed degrees, tables of all-reduce
 *     latency and bandwidth bounds for the degrees that change with the batch. */
#include "sim/paper_internal.h"

#include <pthread.h>
#include <unistd.h>

#include <stdlib.h>
#include <string.h>

#define N_SCALE 6 /* attention scale-downs */
#define N_PP 10   /* 1 and min(b, L)^(k/9), k = 1..9 */
#define GROUP (2 * N_SCALE)

/* The candidates of one PP degree (2-D and 1-D x six scale-downs). The terms of their
 * bounds (isim__paper_cand_bound) sit here side by side; the candidates themselves, apart,
 * are touched only to evaluate one. */
typedef struct {
    double pp, K, b_cap;
    /* lo[i]: candidate i's bound or total at an earlier batch of the row; every term grows
     * with the batch, so it bounds later batches too; lo_min the least of them */
    double lo_min, lo[GROUP];
    double seen[GROUP], lat[GROUP], slope[GROUP], c0[GROUP], c1[GROUP], fl[GROUP];
    isim__paper_cand *cand; /* GROUP of them */
} group;

static void group_build(const isim_paper_ctx *c, double N, double pp, double seq, double input,
                        group *g, isim__paper_cand *cand)
{
    g->pp = pp;
    g->cand = cand;
    double lt = log2(N / pp);
    isim__paper_parts s;
    isim__paper_parts_build(c, N, pp, seq, input, false, 7, &s);
    for (int td = 0; td < 2; td++)
        for (int j = 0; j < N_SCALE; j++) {
            int i = td * N_SCALE + j;
            isim__paper_cand *k = &cand[i];
            isim__paper_cand_from_parts(c, &s, td == 0, exp2(lt * j / 5.0), k);
            g->seen[i] = k->coll_seen;
            g->lat[i] = k->lat_min;
            g->slope[i] = k->s_min;
            g->c0[i] = k->m0;
            g->c1[i] = k->m1;
            g->fl[i] = k->f1;
            g->lo[i] = 0;
        }
    g->K = cand[0].K;
    g->b_cap = cand[0].b_cap;
    g->lo_min = 0;
}

/* isim__paper_cand_bound from the group's copy of the terms */
static inline double member_bound(const group *g, int i, double b)
{
    return g->K + isim__max(g->seen[i], g->lat[i] + g->slope[i] * b) +
           isim__max(g->c0[i] + g->c1[i] * b, g->fl[i] * b);
}

/* Candidate i's total at b; its collectives' time joins its bound and the total bounds
 * later batches. */
static inline double member_total(group *g, int i, double b)
{
    double t = isim__paper_cand_total_seen(&g->cand[i], b);
    g->seen[i] = g->cand[i].coll_seen;
    g->lo[i] = t;
    return t;
}

/* Lowers *best with the group's candidates at batch b (batches ascend across calls);
 * *win keeps the winner's index. */
static void group_scan(group *g, double N, double b, double *best, int *win)
{
    if (g->pp > isim__min(N, b) || b > g->b_cap || g->lo_min >= *best)
        return;
    /* every member's bound, branch-free (the compiler vectorizes it), then the few that
     * can still win evaluated */
    for (int i = 0; i < GROUP; i++)
        g->lo[i] = isim__max(g->lo[i], member_bound(g, i, b));
    double lo_min = INFINITY;
    for (int i = 0; i < GROUP; i++) {
        if (g->lo[i] < *best) {
            double t = member_total(g, i, b);
            if (t < *best) {
                *best = t;
                *win = i;
            }
        }
        lo_min = isim__min(lo_min, g->lo[i]);
    }
    g->lo_min = lo_min;
}

/* Lower bounds of one all-reduce's latency and of its bandwidth time per byte of a rank's
 * word, as functions of the group size NT (the stage, or the attention's scaled-down
 * group), tabulated over log2 NT in steps of 1/RES octave, for the 2-D layout ([0]: over
 * sqrt(NT) ranks, words split sqrt(NT) ways) and the 1-D one ([1]). */
#define RES 64
#define TABLE (RES * 24)

typedef struct {
    double lat, bw;
} ar_entry;

typedef struct {
    ar_entry e[2][TABLE];
} ar_table;

/* Over ranks r_lo .. r_hi on n_lo .. n_hi domains, words split at most par_hi ways:
 * collective.c's all-reduce with every term at its least (hops and the log2 of domains at
 * their least; the intra-domain share 1 - n/r and the cross-domain (n - 1)/r at theirs;
 * the best protocol's latency and bandwidth factor, each on its own). */
static void piece_bound(const isim_hw *hw, double r_lo, double r_hi, double n_lo, double n_hi,
                        double par_hi, double *lat, double *bw)
{
    *lat = *bw = 0;
    if (r_hi <= 1)
        return;
    if (hw->coll_model == ISIM_COLL_FLAT) {
        *lat = 2 * isim__max(0.0, r_lo - 1) * hw->flat_per_rank_s * hw->coll_latency_scale;
        *bw = 2 * isim__max(0.0, r_lo - 1) / (r_lo * hw->scale_up_bytes_per_s) / par_hi;
        return;
    }
    double hops = isim__max(0.0, r_lo / n_hi - 1), lg = n_lo > 1 ? log2(n_lo) : 0;
    double intra = isim__max(0.0, 1 - n_hi / r_lo) / hw->scale_up_bytes_per_s;
    double inter = isim__max(0.0, n_lo - 1) / (r_hi * hw->scale_out_bytes_per_s);
    double best = INFINITY, factor = 0;
    for (int i = 0; i < hw->n_protocols; i++) {
        const isim_protocol *p = &hw->protocols[i];
        best = isim__min(best, p->base_s + 2 * (hops * p->per_rank_s + lg * p->per_node_log2_s));
        factor = isim__max(factor, p->bandwidth_factor);
    }
    *lat = best * hw->coll_latency_scale;
    *bw = 2 * isim__max(intra, inter) / factor / par_hi;
}

static void layout_bound(const isim_hw *hw, double a, double b, double v_lo, double v_hi,
                         bool two_d, double *lat, double *bw)
{
    if (two_d)
        piece_bound(hw, sqrt(a), sqrt(b), sqrt(v_lo), sqrt(v_hi), sqrt(b), lat, bw);
    else
        piece_bound(hw, a, b, v_lo, v_hi, 1, lat, bw);
}

/* The bounds over a group of more than lo and at most hi devices (a group of exactly lo
 * is the step below's: see tab_at): its domain count v = ceil(NT / node) takes few values
 * over a table step, so each bound is the least over v of the bound with v fixed and NT
 * within [(v - 1) node, v node] (the bound over the whole step where v takes many). */
static void step_bound(const isim_hw *hw, double node, double lo, double hi, bool two_d,
                       double *lat, double *bw)
{
    double v_lo = floor(lo / node) + 1, v_hi = ceil(hi / node);
    if (v_hi - v_lo > 8) {
        layout_bound(hw, lo, hi, v_lo, v_hi, two_d, lat, bw);
        return;
    }
    *lat = *bw = INFINITY;
    for (double v = v_lo; v <= v_hi; v++) {
        double l, w;
        layout_bound(hw, isim__max(lo, (v - 1) * node), isim__min(hi, v * node), v, v, two_d, &l,
                     &w);
        *lat = isim__min(*lat, l);
        *bw = isim__min(*bw, w);
    }
}

static void ar_tables(const isim_paper_ctx *c, ar_table *t)
{
    for (int i = 0; i < TABLE; i++) {
        double lo = exp2((double)i / RES), hi = exp2((double)(i + 1) / RES);
        for (int td = 0; td < 2; td++)
            step_bound(c->hw, c->node, lo, hi, td == 0, &t->e[td][i].lat, &t->e[td][i].bw);
    }
    /* A log2 computed along another route than the candidate's group size may differ from
     * it in the last bits and land in the next step. Across most edges that moves a bound
     * by a rounding error (SLACK covers it); where an edge falls on a multiple of the
     * domain (powers of two), the domain count itself steps there, so the two steps
     * around such an edge take the lesser bounds. */
    for (int i = 1; i < TABLE; i++) {
        double v = exp2((double)i / RES) / c->node;
        if (fabs(v - nearbyint(v)) > 1e-9 * v)
            continue;
        for (int td = 0; td < 2; td++) {
            ar_entry *lo = &t->e[td][i - 1], *hi = &t->e[td][i];
            lo->lat = hi->lat = isim__min(lo->lat, hi->lat);
            lo->bw = hi->bw = isim__min(lo->bw, hi->bw);
        }
    }
    /* The first step holds a group of one device, which has no all-reduce; the last
     * stands for every larger group, with no bound. */
    for (int td = 0; td < 2; td++)
        t->e[td][0] = t->e[td][TABLE - 1] = (ar_entry){0, 0};
}

/* Constants of the bounds for the PP degrees that are only known per batch (batch <
 * layers): kernels, hand-off latencies, weights read once per micro-batch (without
 * activations), the KV cache, the arithmetic and the attention's and FFN's all-reduces
 * (latency and bandwidth, from the tables). */
typedef struct {
    double K, kv, p2p_lat, room, kv_seq, log2N, rN; /* rN = N^(1/5) */
    double wc, wa; /* weights read per pass at PP 1: FFN and classifier; attention (x a) */
    double fc, fa; /* arithmetic per unit batch: FFN and scores; projections (x a) */
    double ff_mult[2], attn_mult[2]; /* all-reduces per pass: 2-D, 1-D */
    /* bytes per pass per unit of b / N_PP of a rank's words before the 2-D split, FFN and
     * attention: from_parts's words x seq_len x activation bytes x layers */
    double ff_bytes[2], attn_bytes[2];
    const ar_table *ar;
} loose_bound;

static void loose_init(const isim_paper_ctx *c, double N, double seq, double input,
                       const ar_table *ar, loose_bound *lb)
{
    isim__paper_cand k1, k2;
    isim__paper_cand_build(c, N, 1, false, 1, seq, input, false, &k1);
    isim__paper_cand_build(c, N, 1, false, 2, seq, input, false, &k2);
    lb->K = k1.K;
    /* m0 and f1 are affine in the scale-down a: split them at a = 1 and a = 2 */
    lb->wa = k2.m0 - k1.m0;
    lb->wc = k1.m0 - lb->wa;
    lb->fa = k2.f1 - k1.f1;
    lb->fc = k1.f1 - lb->fa;
    double kv_seq = c->kv_full * input + c->kv_local * isim__min(input, c->window);
    lb->kv = kv_seq / (N * c->BW);
    isim__coll_line p2p;
    isim__coll_line_make(c->hw, ISIM_PAPER, ISIM_P2P, 2, 2, 0, &p2p);
    double lat = 0, bw = 0;
    isim__coll_line_eval(&p2p, 0, &lat, &bw);
    lb->p2p_lat = lat;
    lb->room = N * c->cap - c->weight_bytes;
    lb->kv_seq = kv_seq;
    lb->log2N = log2(N);
    lb->rN = exp2(lb->log2N / 5);
    lb->ff_mult[0] = 2 * c->n_dense;
    lb->ff_mult[1] = c->n_dense;
    lb->attn_mult[0] = 2 * c->L;
    lb->attn_mult[1] = c->L;
    double unit = seq * c->ap;
    lb->ff_bytes[0] = c->n_dense * (c->c0 * c->dff + c->c1 * c->d) * unit;
    lb->ff_bytes[1] = c->n_dense * c->c1 * c->d * unit;
    lb->attn_bytes[0] = c->L * (c->d + c->d_all) * unit;
    lb->attn_bytes[1] = c->L * c->d * unit;
    lb->ar = ar;
}

/* A table's bounds at log2 group size x: x >= 0 up to rounding (the degree is at most the
 * device count) and the conversion truncates, so a value a hair below 0 lands on step 0. */
static inline ar_entry tab_at(const ar_entry *t, double x)
{
    return t[(int)isim__min(x * RES, TABLE - 1)];
}

/* The bounds of the GROUP candidates of PP degree pp at batch b (stage size 2^x, scale-down
 * step r = 2^(x/5)) into each[], their least returned (INFINITY when the degree does not
 * fit): kernels, N_PP - 1 hand-offs, the FFN's and the attention's all-reduces and
 * max(memory, arithmetic) without activations. */
static inline double dyn_bound(const loose_bound *lb, double b, double pp, double x, double r,
                               double *each)
{
    if (lb->kv_seq > 0 ? b > pp * lb->room / lb->kv_seq : lb->room < 0)
        return INFINITY;
    double fixed = lb->K + (pp - 1) * lb->p2p_lat, best = INFINITY, micro = b / pp;
    double a = 1, mem[N_SCALE], flop[N_SCALE];
    for (int j = 0; j < N_SCALE; j++) {
        mem[j] = pp * (lb->wc + a * lb->wa) + lb->kv * b;
        flop[j] = (lb->fc + a * lb->fa) * b;
        a *= r;
    }
    /* the attention of scale-down a spans 2^(x (1 - j/5)) devices; j = 0 is the FFN's */
    for (int td = 0; td < 2; td++) {
        const ar_entry *tab = lb->ar->e[td];
        ar_entry ff = tab_at(tab, x);
        double base = fixed + lb->ff_mult[td] * ff.lat + lb->ff_bytes[td] * micro * ff.bw;
        for (int j = 0; j < N_SCALE; j++) {
            ar_entry at = j == 0 ? ff : tab_at(tab, x * (1 - j / 5.0));
            double t = base + lb->attn_mult[td] * at.lat + lb->attn_bytes[td] * micro * at.bw +
                       isim__max(mem[j], flop[j]);
            each[td * N_SCALE + j] = t;
            best = isim__min(best, t);
        }
    }
    return best;
}

/* Bounds are compared with this relative slack: they are computed along another route
 * than the candidates and may differ from them in the last bits. */
#define SLACK (1 - 1e-12)

/* Candidate i of PP degree pp at batch b, built for one evaluation: only its layout's
 * collectives, no envelopes; *parts is reused while (k, layout) repeats. */
typedef struct {
    isim__paper_parts parts;
    int k, layouts;
} parts_cache;

static double dyn_eval(const isim_paper_ctx *c, double N, double pp, int k, int i, double b,
                       double seq, double input, parts_cache *pc)
{
    int layout = i < N_SCALE ? 1 : 2;
    if (pc->k != k || !(pc->layouts & layout)) {
        isim__paper_parts_build(c, N, pp, seq, input, false, layout, &pc->parts);
        pc->k = k;
        pc->layouts = layout;
    }
    return isim__paper_cand_at(c, &pc->parts, i < N_SCALE, exp2(log2(N / pp) * (i % N_SCALE) / 5.0),
                               b);
}

/* The dynamic degrees of the grid's batch j: pp[k] = exp2(log2(b) k / 9) as
 * isim_paper_best computes them, log2(pp[k]) and 2^(-log2(pp[k]) / 5). */
typedef struct {
    double pp[N_PP], lpp[N_PP], rpp[N_PP];
} dyn_batch;

/* The dynamic PP degrees (batch < layers: min(b, L)^(k/9) depends on the batch) at one
 * point: their candidates in the order of their bounds, each built only when its bound
 * can still beat the best; best enters as an upper bound and leaves exact. */
static void resolve_dynamic(const isim_paper_ctx *c, double N, double b, double seq, double input,
                            const loose_bound *lb, const dyn_batch *db, int *hint, double *best)
{
    double each[GROUP];
    parts_cache pc; /* no initializer: zeroing the parts costs more than building them */
    pc.k = 0;
    pc.layouts = 0;
    /* the previous batch's winning degree and candidate first: it usually wins again */
    if (*hint > 0) {
        int k = *hint / GROUP, i = *hint % GROUP;
        if (db->pp[k] <= N) {
            double t = dyn_eval(c, N, db->pp[k], k, i, b, seq, input, &pc);
            if (t < *best)
                *best = t;
        }
    }
    struct {
        double bound;
        int k, i;
    } live[N_PP * GROUP];
    int n = 0;
    for (int k = 1; k < N_PP; k++) {
        double pp = db->pp[k];
        if (pp > N)
            break;
        if (pp == 1)
            continue; /* batch 1: the PP 1 group has these candidates */
        /* without collectives and at scale-down 1 this degree and every larger one take
         * at least this (hand-offs and weight reads grow with the degree) */
        if ((lb->K + (pp - 1) * lb->p2p_lat +
             isim__max(pp * (lb->wc + lb->wa) + lb->kv * b, (lb->fc + lb->fa) * b)) *
                SLACK >=
            *best)
            break;
        double x = lb->log2N - db->lpp[k];
        if (dyn_bound(lb, b, pp, x, lb->rN * db->rpp[k], each) * SLACK >= *best)
            continue;
        for (int i = 0; i < GROUP; i++) {
            /* the hint was evaluated above: best is already at most its total */
            if (each[i] * SLACK >= *best || k * GROUP + i == *hint)
                continue;
            live[n].bound = each[i];
            live[n].k = k;
            live[n].i = i;
            n++;
        }
    }
    /* take the least bound each time: the first build usually settles the point */
    while (n > 0) {
        int m = 0;
        for (int x = 1; x < n; x++)
            if (live[x].bound < live[m].bound)
                m = x;
        if (live[m].bound * SLACK >= *best)
            break;
        int k = live[m].k, i = live[m].i;
        live[m] = live[--n];
        double t = dyn_eval(c, N, db->pp[k], k, i, b, seq, input, &pc);
        if (t < *best) {
            *best = t;
            *hint = k * GROUP + i;
        }
    }
}

/* The groups of one device count: PP 1 and, with use_pp, the fixed list L^(k/9) that
 * applies from batch >= layers on; the dynamic degrees' bound and last winner. */
typedef struct {
    int n;
    group g[N_PP];
    isim__paper_cand cand[N_PP][GROUP];
    loose_bound lb;
    int hint; /* the last dynamic winner: k x GROUP + candidate, 0 for none */
} row_groups;

/* One speculative step g of spec_dec_token_latency_seconds: the target at seq_len g where
 * the step can still beat the best so far, folded into it. */
typedef struct {
    const double *plain, *draft; /* the plain target's and the draft's latencies */
    double *latency;             /* the best so far, lowered in place */
    double g, tokens;            /* tokens = (1 - a^g)/(1 - a) */
    double kernels, flop_tok;    /* the step's floor: kernels + g flop_tok b / N */
} spec_step;

/* A target pass over g tokens takes at least the plain pass (every candidate's time grows
 * with seq_len) and at least the kernels plus g times the arithmetic of one token at
 * scale-down 1 (Eq. 38 at the least context), so (floor + g t_Q)/tokens bounds step g from
 * below: the point is computed only where that bound still beats the best so far. */
static inline bool spec_needed(const spec_step *s, size_t p, double b, double N)
{
    double floor_g = isim__max(s->plain[p], s->kernels + s->g * s->flop_tok * b / N);
    return (floor_g + s->g * s->draft[p]) / s->tokens * SLACK < s->latency[p];
}

static inline void spec_fold(const spec_step *s, size_t p, double target)
{
    s->latency[p] = isim__min(s->latency[p], (target + s->g * s->draft[p]) / s->tokens);
}

/* One latency grid: a context and seq_len, where the values go (t, or with spec the
 * speculative step they feed). */
typedef struct {
    const isim_paper_ctx *c;
    double seq;
    double *t;
    const spec_step *spec;
    const dyn_batch *dyn; /* per batch of the grid */
    ar_table ar;          /* ar_tables of the context */
} subgrid;

static void row_build(const subgrid *sg, const isim_paper_grid_query *q, double N, row_groups *r)
{
    const isim_paper_ctx *c = sg->c;
    r->n = 0;
    r->hint = 0;
    group_build(c, N, 1, sg->seq, q->input_len, &r->g[r->n], r->cand[r->n]);
    r->n++;
    if (q->use_pp)
        for (int k = 1; k < N_PP; k++) {
            double pp = exp2(log2(c->L) * k / 9.0);
            if (pp > N)
                break; /* the degrees ascend: none of the rest applies to this row */
            group_build(c, N, pp, sg->seq, q->input_len, &r->g[r->n], r->cand[r->n]);
            r->n++;
        }
    loose_init(c, N, sg->seq, q->input_len, &sg->ar, &r->lb);
}

/* One row of a dense model's grid, batches ascending: the previous batch's winner first,
 * then every applicable group under its bound, then (batch < layers) the dynamic PP
 * degrees min(b, L)^(k/9). */
static void row_dense(const isim_paper_grid_query *q, const subgrid *sg, size_t i, row_groups *r)
{
    const isim_paper_ctx *c = sg->c;
    const double N = q->devices[i];
    bool built = false;
    int wg = 0, wc = 0;
    for (size_t j = 0; j < q->n_batch; j++) {
        size_t p = j * q->n_devices + i;
        if (sg->spec && !spec_needed(sg->spec, p, q->batch[j], N))
            continue;
        if (!built) {
            row_build(sg, q, N, r);
            built = true;
        }
        const double b = q->batch[j];
        int n = q->use_pp && b >= c->L ? r->n : 1;
        if (wg >= n)
            wg = wc = 0;
        double best = member_total(&r->g[wg], wc, b);
        for (int k = 0; k < n; k++) {
            double before = best;
            int w = wc;
            group_scan(&r->g[k], N, b, &best, &w);
            if (best < before) {
                wg = k;
                wc = w;
            }
        }
        if (q->use_pp && b < c->L)
            resolve_dynamic(c, N, b, sg->seq, q->input_len, &r->lb, &sg->dyn[j], &r->hint, &best);
        if (sg->spec)
            spec_fold(sg->spec, p, best);
        else
            sg->t[p] = best;
    }
}

/* Any model (MoE included): isim_paper_best at every point of the row. */
static void row_generic(const isim_paper_grid_query *q, const subgrid *sg, size_t i)
{
    for (size_t j = 0; j < q->n_batch; j++) {
        size_t p = j * q->n_devices + i;
        if (sg->spec && !spec_needed(sg->spec, p, q->batch[j], q->devices[i]))
            continue;
        double t = isim_paper_best(sg->c, q->devices[i], q->batch[j], q->use_pp ? 0 : 1, sg->seq,
                                   q->input_len, NULL, NULL);
        if (sg->spec)
            spec_fold(sg->spec, p, t);
        else
            sg->t[p] = t;
    }
}

/* Rows are independent: threads take every n-th row, so the result does not depend on
 * the number of threads. */
typedef struct {
    const isim_paper_grid_query *q;
    const subgrid *sg;
    size_t first, step;
    row_groups *r;
} row_job;

static void *row_worker(void *arg)
{
    const row_job *jb = arg;
    for (size_t i = jb->first; i < jb->q->n_devices; i += jb->step) {
        if (jb->sg->c->dense)
            row_dense(jb->q, jb->sg, i, jb->r);
        else
            row_generic(jb->q, jb->sg, i);
    }
    return NULL;
}

static isim_status run_rows(const isim_paper_grid_query *q, subgrid *sg, int threads,
                            isim_error *err)
{
    if (sg->c->dense)
        ar_tables(sg->c, &sg->ar);
    row_job jobs[ISIM_PAPER_GRID_MAX_THREADS];
    pthread_t tid[ISIM_PAPER_GRID_MAX_THREADS];
    row_groups *rows = malloc((size_t)threads * sizeof *rows);
    if (!rows)
        return isim__fail(err, ISIM_ENOMEM, "", 0, 0, "out of memory");
    int started = 0;
    for (int t = 0; t < threads; t++)
        jobs[t] = (row_job){q, sg, (size_t)t, (size_t)threads, &rows[t]};
    for (int t = 1; t < threads; t++) {
        if (pthread_create(&tid[t], NULL, row_worker, &jobs[t]) != 0)
            break;
        started = t;
    }
    /* rows of threads that did not start are done here */
    for (int t = started + 1; t < threads; t++)
        row_worker(&jobs[t]);
    row_worker(&jobs[0]);
    for (int t = 1; t <= started; t++)
        pthread_join(tid[t], NULL);
    free(rows);
    return ISIM_OK;
}

isim_status isim_paper_grid(const isim_paper_ctx *c, const isim_paper_grid_query *q,
                            double *latency, isim_error *err)
{
    size_t n = q->n_devices * q->n_batch;
    if (q->n_devices == 0 || q->n_batch == 0 || n / q->n_batch != q->n_devices)
        return isim__fail(err, ISIM_EINVAL, "", 0, 0, "empty or oversized grid");
    for (size_t j = 1; j < q->n_batch; j++)
        if (!(q->batch[j] >= q->batch[j - 1]))
            return isim__fail(err, ISIM_EINVAL, "", 0, 0, "grid batches must ascend");
    if (q->draft && (q->spec_gamma_max < 2 || q->spec_gamma_max > 64 ||
                     !(q->spec_alpha > 0 && q->spec_alpha < 1)))
        return isim__fail(err, ISIM_EINVAL, "", 0, 0, "speculative gamma or alpha out of range");
    int threads = q->threads;
    if (threads <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cpus > 0 ? (int)cpus : 1;
    }
    threads = threads > ISIM_PAPER_GRID_MAX_THREADS ? ISIM_PAPER_GRID_MAX_THREADS : threads;

    subgrid *sg = malloc(sizeof *sg);
    dyn_batch *dyn = malloc(q->n_batch * sizeof *dyn);
    double *draft = NULL, *plain = NULL;
    isim_status st = ISIM_OK;
    if (!sg || !dyn) {
        st = isim__fail(err, ISIM_ENOMEM, "", 0, 0, "out of memory");
        goto cleanup;
    }
    for (size_t j = 0; j < q->n_batch; j++) {
        double lb2 = log2(q->batch[j]);
        for (int k = 0; k < N_PP; k++) {
            dyn[j].lpp[k] = lb2 * k / 9.0;
            dyn[j].pp[k] = exp2(lb2 * k / 9.0);
            dyn[j].rpp[k] = exp2(-dyn[j].lpp[k] / 5);
        }
    }
    *sg = (subgrid){.c = c, .seq = 1, .t = latency, .dyn = dyn};
    if ((st = run_rows(q, sg, threads, err)) || !q->draft)
        goto cleanup;

    /* spec_dec_token_latency_seconds: min(plain, (t_P(seq = g) + g t_Q) (1 - a)/(1 - a^g)) */
    draft = malloc(2 * n * sizeof *draft);
    if (!draft) {
        st = isim__fail(err, ISIM_ENOMEM, "", 0, 0, "out of memory");
        goto cleanup;
    }
    plain = draft + n;
    memcpy(plain, latency, n * sizeof *plain);
    *sg = (subgrid){.c = q->draft, .seq = 1, .t = draft, .dyn = dyn};
    if ((st = run_rows(q, sg, threads, err)))
        goto cleanup;
    spec_step step = {.plain = plain,
                      .draft = draft,
                      .latency = latency,
                      .kernels = c->L * 4 * c->launch,
                      .flop_tok =
                          (c->ff_flop_tok + c->proj_flop_tok + c->attn_flop_full * q->input_len +
                           c->attn_flop_local * isim__min(q->input_len, c->window)) /
                          c->F};
    for (int g = 2; g <= q->spec_gamma_max; g++) {
        step.g = g;
        step.tokens = (1 - pow(q->spec_alpha, g)) / (1 - q->spec_alpha);
        *sg = (subgrid){.c = c, .seq = g, .spec = &step, .dyn = dyn};
        if ((st = run_rows(q, sg, threads, err)))
            goto cleanup;
    }
cleanup:
    free(draft);
    free(dyn);
    free(sg);
    return st;
}
