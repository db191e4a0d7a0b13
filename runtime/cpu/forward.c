/* The forward pass of a Llama-family decoder (Touvron et al. 2023; llama2.c's run.c is the
 * same computation for one sequence): for rows (one token of one sequence each),
 *   x = embed(token)
 *   per layer: x += W_o attn(rope(W_q n(x)), rope(W_k n(x)), W_v n(x))    n = RMSNorm
 *              x += W_down (silu(W_gate n(x)) * W_up n(x))                  (or MoE)
 *   logits = W_cls n(x)
 * with tensor parallelism splitting heads, FFN width and vocabulary (Megatron: column-
 * parallel q/k/v, gate and up; row-parallel o and down, each followed by an all-reduce)
 * and pipeline stages holding consecutive layers, micro-batches in flight between them. */
#include "runtime/cpu/engine.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---- timing -------------------------------------------------------------------------- */

typedef enum { T_MATMUL, T_ATTENTION, T_COLLECTIVE, T_OTHER } kind;

static void charge(isim_rt *rt, kind k, double t0)
{
    double dt = isim__rt_now() - t0;
    double *slot = k == T_MATMUL       ? &rt->t.matmul_s
                   : k == T_ATTENTION  ? &rt->t.attention_s
                   : k == T_COLLECTIVE ? &rt->t.collective_s
                                       : &rt->t.other_s;
    *slot += dt;
}

/* ---- matmul over the pool ------------------------------------------------------------- */

typedef struct {
    const rt_kernels *k;
    const rt_matrix *w;
    const void *x;
    int rows;
    float *y;
    size_t ldy;
    bool bias;
} mm_job;

static void mm_task(void *p, int tid, int n)
{
    mm_job *j = p;
    size_t panels = j->w->panels;
    size_t p0 = panels * (size_t)tid / (size_t)n, p1 = panels * (size_t)(tid + 1) / (size_t)n;
    if (p1 > p0)
        j->k->matmul(j->w, j->x, j->rows, j->y, j->ldy, p0, p1, j->bias);
}

/* Work below this many multiply-adds runs on the calling thread: waking the pool costs a
 * few microseconds, as much as the work itself. */
#define PARALLEL_MIN 131072.0

static void run(isim_rt *rt, rt_task fn, void *ctx, double work)
{
    if (work >= PARALLEL_MIN)
        isim__rt_pool_run(rt->pool, fn, ctx);
    else
        fn(ctx, 0, 1);
}

/* Packing the matmul's input, a tile of RT_MR rows per thread at a time. */
typedef struct {
    const float *x;
    size_t ldx;
    int rows;
    const rt_matrix *w;
    void *out;
} pack_job;

static void pack_task(void *p, int tid, int n)
{
    pack_job *j = p;
    int tiles = (j->rows + RT_MR - 1) / RT_MR;
    int a = tiles * tid / n, b = tiles * (tid + 1) / n;
    if (a >= b)
        return;
    int r0 = a * RT_MR, r1 = b * RT_MR < j->rows ? b * RT_MR : j->rows;
    size_t es = j->w->dt == ISIM_BF16 ? 2 : 4;
    isim__rt_xpack(j->x + (size_t)r0 * j->ldx, j->ldx, r1 - r0, j->w->k, j->w->kp, j->w->dt,
                   (char *)j->out + (size_t)a * RT_MR * j->w->kp * es);
}

void isim__rt_matmul(isim_rt *rt, const rt_matrix *w, const float *x, size_t ldx, int rows,
                     float *y, size_t ldy, bool add_bias)
{
    if (!rows || !w->n)
        return;
    double t0 = isim__rt_now();
    pack_job pj = {x, ldx, rows, w, rt->xpack};
    run(rt, pack_task, &pj, rows > RT_MR ? 4.0 * rows * (double)w->k : 0);
    mm_job j = {rt->k, w, rt->xpack, rows, y, ldy, add_bias};
    run(rt, mm_task, &j, (double)rows * (double)w->n * (double)w->k);
    charge(rt, T_MATMUL, t0);
}

/* ---- element-wise pieces ----------------------------------------------------------------- */

/* RMSNorm (Zhang & Sennrich 2019): y = x / sqrt(mean(x^2) + eps) * w */
static void rmsnorm(const rt_kernels *k, float *y, const float *x, const float *w, int n, float eps)
{
    float ss = k->dot(x, x, n);
    float inv = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = 0; i < n; i++)
        y[i] = x[i] * inv * w[i];
}

typedef struct {
    isim_rt *rt;
    const float *x;
    float *y;
    const float *w;
    int rows;
} norm_job;

static void norm_task(void *p, int tid, int n)
{
    norm_job *j = p;
    int r0 = j->rows * tid / n, r1 = j->rows * (tid + 1) / n;
    for (int r = r0; r < r1; r++)
        rmsnorm(j->rt->k, j->y + (size_t)r * j->rt->d, j->x + (size_t)r * j->rt->d, j->w, j->rt->d,
                (float)j->rt->m->norm_eps);
}

static void norm_rows(isim_rt *rt, float *y, const float *x, const float *w, int rows)
{
    double t0 = isim__rt_now();
    norm_job j = {rt, x, y, w, rows};
    run(rt, norm_task, &j, 2.0 * rows * rt->d);
    charge(rt, T_OTHER, t0);
}

typedef struct {
    isim_rt *rt;
    const float *gu; /* (rows, 2 w): gate then up */
    float *h;        /* (rows, w) */
    int rows, w;
} silu_job;

static void silu_task(void *p, int tid, int n)
{
    silu_job *j = p;
    int r0 = j->rows * tid / n, r1 = j->rows * (tid + 1) / n;
    for (int r = r0; r < r1; r++)
        j->rt->k->silu_mul(j->gu + (size_t)r * 2 * j->w, j->gu + (size_t)r * 2 * j->w + j->w,
                           j->h + (size_t)r * j->w, j->w);
}

static void silu_rows(isim_rt *rt, const float *gu, float *h, int rows, int w)
{
    double t0 = isim__rt_now();
    silu_job j = {rt, gu, h, rows, w};
    run(rt, silu_task, &j, 16.0 * rows * w);
    charge(rt, T_OTHER, t0);
}

static void add_rows(isim_rt *rt, float *x, const float *dx, int rows)
{
    double t0 = isim__rt_now();
    size_t n = (size_t)rows * (size_t)rt->d;
    for (size_t i = 0; i < n; i++)
        x[i] += dx[i];
    charge(rt, T_OTHER, t0);
}

static isim_status allreduce(isim_rt *rt, float *x, size_t n, isim_error *err)
{
    if (rt->o.tp == 1)
        return ISIM_OK;
    double t0 = isim__rt_now();
    isim_status st = isim__rt_comm_allreduce(&rt->comm, x, n, err);
    charge(rt, T_COLLECTIVE, t0);
    return st;
}

/* ---- attention -------------------------------------------------------------------------- */

/* The cache of (local layer li, slot, kv head g): which 0 is K in tiles of 16 positions
 * (isim__rt_kt_at), which 1 is V, (position, hd). Elements of the cache's type; each holds
 * ldk (ctx rounded up to whole tiles) positions. */
static void *kv_base(isim_rt *rt, int li, int which, int slot, int g)
{
    size_t es = rt->o.kv == ISIM_BF16 ? 2 : 4;
    size_t idx = ((size_t)li * 2 + (size_t)which) * rt->kv_layer_elems +
                 ((size_t)slot * (size_t)rt->nkv_l + (size_t)g) * (size_t)rt->ldk * (size_t)rt->hd;
    return (char *)rt->kv_arena + idx * es;
}

typedef struct {
    isim_rt *rt;
    const rt_layer *L;
    int li, r0, rows;
    int n_blocks;
    const int *blk_start, *blk_len; /* rows of one sequence at consecutive positions */
} att_job;

static void rope(const isim_rt *rt, float *v, int pos)
{
    int half = rt->hd / 2;
    const float *c = rt->rope_cos + (size_t)pos * half, *s = rt->rope_sin + (size_t)pos * half;
    for (int i = 0; i < half; i++) {
        float a = v[2 * i], b = v[2 * i + 1];
        v[2 * i] = a * c[i] - b * s[i];
        v[2 * i + 1] = a * s[i] + b * c[i];
    }
}

static void headnorm(const rt_kernels *k, float *v, const float *w, int n, float eps)
{
    rmsnorm(k, v, v, w, n, eps);
}

/* Per row: q/k norms, RoPE on q and k, k and v into the cache. */
static void prep_task(void *p, int tid, int n)
{
    att_job *j = p;
    isim_rt *rt = j->rt;
    const int hd = rt->hd, qw = rt->nh_l * hd, kw = rt->nkv_l * hd, w = qw + 2 * kw;
    const float eps = (float)rt->m->norm_eps;
    int a = j->rows * tid / n, b = j->rows * (tid + 1) / n;
    for (int i = a; i < b; i++) {
        int r = j->r0 + i, pos = rt->row_pos[r], slot = rt->row_slot[r];
        float *q = rt->qkv + (size_t)r * w, *k = q + qw, *v = k + kw;
        for (int h = 0; h < rt->nh_l; h++) {
            if (j->L->q_norm)
                headnorm(rt->k, q + h * hd, j->L->q_norm, hd, eps);
            rope(rt, q + h * hd, pos);
        }
        for (int g = 0; g < rt->nkv_l; g++) {
            if (j->L->k_norm)
                headnorm(rt->k, k + g * hd, j->L->k_norm, hd, eps);
            rope(rt, k + g * hd, pos);
            void *kt = kv_base(rt, j->li, 0, slot, g), *vc = kv_base(rt, j->li, 1, slot, g);
            if (rt->o.kv == ISIM_BF16) {
                for (int e = 0; e < hd; e++) {
                    ((uint16_t *)kt)[isim__rt_kt_at(hd, pos, e)] = isim__rt_bf16(k[g * hd + e]);
                    ((uint16_t *)vc)[(size_t)pos * hd + e] = isim__rt_bf16(v[g * hd + e]);
                }
            } else {
                for (int e = 0; e < hd; e++)
                    ((float *)kt)[isim__rt_kt_at(hd, pos, e)] = k[g * hd + e];
                memcpy((float *)vc + (size_t)pos * hd, v + g * hd, (size_t)hd * sizeof(float));
            }
        }
    }
}

/* Scaled dot-product attention (Vaswani et al. 2017) over the cache, causal: row r at
 * position p sees positions [p - window + 1 (local layers), p]. Tasks are (row, kv head). */
/* Query vectors per attention call at most: rows of one sequence at consecutive positions
 * and the query heads of one KV head, so that each key and value load serves several. */
#define QMAX 32

static void attend_task(void *p, int tid, int n)
{
    att_job *j = p;
    isim_rt *rt = j->rt;
    const int hd = rt->hd, qw = rt->nh_l * hd, w = qw + 2 * rt->nkv_l * hd, G = rt->group;
    const int hchunk = G < QMAX ? G : QMAX, nhc = (G + hchunk - 1) / hchunk;
    const float scale = 1.0f / sqrtf((float)hd);
    const bool bf16 = rt->o.kv == ISIM_BF16;
    float *sc = rt->scores + (size_t)tid * QMAX * (size_t)rt->ctx;
    const float *qv[QMAX];
    float *ov[QMAX];
    int first[QMAX], last[QMAX];
    int tasks = j->n_blocks * rt->nkv_l * nhc;
    for (int t = tid; t < tasks; t += n) {
        int b = t / (rt->nkv_l * nhc), g = t / nhc % rt->nkv_l, hc = t % nhc;
        int r0 = j->blk_start[b], rows = j->blk_len[b], slot = rt->row_slot[r0];
        int h0 = g * G + hc * hchunk, hn = G - hc * hchunk < hchunk ? G - hc * hchunk : hchunk;
        int top = 0, nq = 0;
        for (int i = 0; i < rows; i++) {
            int pos = rt->row_pos[r0 + i], lo = 0;
            if (j->L->local && rt->m->window > 0 && pos - (int)rt->m->window + 1 > 0)
                lo = pos - (int)rt->m->window + 1;
            top = pos > top ? pos : top;
            for (int h = 0; h < hn; h++) {
                qv[nq] = rt->qkv + (size_t)(r0 + i) * w + (size_t)(h0 + h) * hd;
                ov[nq] = rt->att + (size_t)(r0 + i) * qw + (size_t)(h0 + h) * hd;
                first[nq] = lo;
                last[nq] = pos;
                nq++;
            }
        }
        rt->k->attend(qv, first, last, nq, hd, kv_base(rt, j->li, 0, slot, g),
                      kv_base(rt, j->li, 1, slot, g), top + 1, scale, bf16, sc, ov);
    }
}

/* ---- MoE ---------------------------------------------------------------------------------- */

/* Mixture of experts (Shazeer et al. 2017; Mixtral's routing, Jiang et al. 2024): each row
 * goes to its top-k experts by router logit, weighted by the softmax of those k logits;
 * shared experts see every row. Writes the rows' FFN output (this rank's partial sum) to
 * rt->tmp. */
static void moe(isim_rt *rt, const rt_layer *L, const float *xn, int rows)
{
    const int d = rt->d, ne = rt->ne, K = rt->topk, eff = rt->eff_l;
    isim__rt_matmul(rt, &L->router, xn, (size_t)d, rows, rt->router, (size_t)ne, true);
    double t0 = isim__rt_now();
    memset(rt->e_count, 0, (size_t)ne * sizeof(int));
    for (int r = 0; r < rows; r++) {
        const float *lg = rt->router + (size_t)r * ne;
        int *te = rt->top_e + (size_t)r * K;
        float *tw = rt->top_w + (size_t)r * K;
        for (int i = 0; i < K; i++) {
            int best = -1;
            for (int e = 0; e < ne; e++) {
                bool taken = false;
                for (int q = 0; q < i; q++)
                    taken |= te[q] == e;
                if (!taken && (best < 0 || lg[e] > lg[best]))
                    best = e;
            }
            te[i] = best;
            tw[i] = lg[best];
        }
        rt->k->softmax(tw, K);
        for (int i = 0; i < K; i++)
            rt->e_count[te[i]]++;
    }
    rt->e_start[0] = 0;
    for (int e = 0; e < ne; e++) {
        rt->e_start[e + 1] = rt->e_start[e] + rt->e_count[e];
        rt->e_used[e] = rt->e_count[e] > 0;
        rt->e_count[e] = 0;
    }
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < K; i++) {
            int e = rt->top_e[(size_t)r * K + i];
            rt->e_list[rt->e_start[e] + rt->e_count[e]++] = r * K + i;
        }
    memset(rt->tmp, 0, (size_t)rows * d * sizeof(float));
    charge(rt, T_OTHER, t0);
    for (int e = 0; e < ne; e++) {
        int c = rt->e_count[e];
        if (!c)
            continue;
        t0 = isim__rt_now();
        for (int i = 0; i < c; i++) {
            int r = rt->e_list[rt->e_start[e] + i] / K;
            memcpy(rt->moe_x + (size_t)i * d, xn + (size_t)r * d, (size_t)d * sizeof(float));
        }
        charge(rt, T_OTHER, t0);
        isim__rt_matmul(rt, &L->e_gate_up[e], rt->moe_x, (size_t)d, c, rt->ffn, 2 * (size_t)eff,
                        true);
        silu_rows(rt, rt->ffn, rt->hid, c, eff);
        isim__rt_matmul(rt, &L->e_down[e], rt->hid, (size_t)eff, c, rt->moe_out, (size_t)d, false);
        t0 = isim__rt_now();
        for (int i = 0; i < c; i++) {
            int slot = rt->e_list[rt->e_start[e] + i];
            rt->k->axpy(rt->top_w[slot], rt->moe_out + (size_t)i * d,
                        rt->tmp + (size_t)(slot / K) * d, d);
        }
        charge(rt, T_OTHER, t0);
    }
    if (L->s_gate_up.n) {
        int sff = rt->sff_l;
        isim__rt_matmul(rt, &L->s_gate_up, xn, (size_t)d, rows, rt->ffn, 2 * (size_t)sff, true);
        silu_rows(rt, rt->ffn, rt->hid, rows, sff);
        isim__rt_matmul(rt, &L->s_down, rt->hid, (size_t)sff, rows, rt->moe_out, (size_t)d, false);
        add_rows(rt, rt->tmp, rt->moe_out, rows);
    }
}

/* ---- one layer, one micro-batch --------------------------------------------------------- */

static isim_status layer(isim_rt *rt, int li, int r0, int rows, isim_error *err)
{
    const rt_layer *L = &rt->layers[li];
    const int d = rt->d, hd = rt->hd;
    const size_t qw = (size_t)rt->nh_l * hd, w = qw + 2 * (size_t)rt->nkv_l * hd;
    float *x = rt->x + (size_t)r0 * d, *xn = rt->xn + (size_t)r0 * d, *tmp = rt->tmp;
    isim_status st;
    /* attention */
    norm_rows(rt, xn, x, L->attn_norm, rows);
    isim__rt_matmul(rt, &L->qkv, xn, (size_t)d, rows, rt->qkv + (size_t)r0 * w, w, true);
    double t0 = isim__rt_now();
    /* blocks of rows of one sequence at consecutive positions, QMAX query vectors each */
    int rb = QMAX / rt->group > 1 ? QMAX / rt->group : 1, nb = 0;
    double span = 0;
    for (int i = 0; i < rows; i++) {
        int r = r0 + i;
        span += rt->row_pos[r] + 1;
        bool join = nb > 0 && rt->blk_len[nb - 1] < rb && rt->row_slot[r] == rt->row_slot[r - 1] &&
                    rt->row_pos[r] == rt->row_pos[r - 1] + 1;
        if (join) {
            rt->blk_len[nb - 1]++;
        } else {
            rt->blk_start[nb] = r;
            rt->blk_len[nb] = 1;
            nb++;
        }
    }
    att_job aj = {rt, L, li, r0, rows, nb, rt->blk_start, rt->blk_len};
    run(rt, prep_task, &aj, 8.0 * rows * (rt->nh_l + rt->nkv_l) * hd);
    run(rt, attend_task, &aj, 2.0 * span * rt->nh_l * hd);
    charge(rt, T_ATTENTION, t0);
    isim__rt_matmul(rt, &L->o, rt->att + (size_t)r0 * qw, qw, rows, tmp, (size_t)d, true);
    if ((st = allreduce(rt, tmp, (size_t)rows * d, err)))
        return st;
    add_rows(rt, x, tmp, rows);
    /* feed-forward */
    norm_rows(rt, xn, x, L->ffn_norm, rows);
    if (L->moe) {
        moe(rt, L, xn, rows);
    } else {
        size_t ff = (size_t)rt->ff_l;
        isim__rt_matmul(rt, &L->gate_up, xn, (size_t)d, rows, rt->ffn, 2 * ff, true);
        silu_rows(rt, rt->ffn, rt->hid, rows, rt->ff_l);
        isim__rt_matmul(rt, &L->down, rt->hid, ff, rows, tmp, (size_t)d, true);
    }
    if ((st = allreduce(rt, tmp, (size_t)rows * d, err)))
        return st;
    add_rows(rt, x, tmp, rows);
    return ISIM_OK;
}

/* ---- embedding and logits ---------------------------------------------------------------- */

/* Rows [r0, r0 + rows) of x from their tokens: each TP rank fills the tokens of its
 * vocabulary slice, zeros elsewhere, and the all-reduce completes every row. */
static isim_status embed(isim_rt *rt, int r0, int rows, isim_error *err)
{
    double t0 = isim__rt_now();
    const rt_matrix *E = rt->m->tied_embeddings ? &rt->vocab_m : &rt->embed_m;
    for (int i = 0; i < rows; i++) {
        int r = r0 + i, t = rt->row_tok[r] - rt->v0;
        float *x = rt->x + (size_t)r * rt->d;
        if (t >= 0 && t < rt->vocab_l)
            isim__rt_matrix_get_row(E, (size_t)t, x);
        else
            memset(x, 0, (size_t)rt->d * sizeof *x);
    }
    charge(rt, T_OTHER, t0);
    return allreduce(rt, rt->x + (size_t)r0 * rt->d, (size_t)rows * rt->d, err);
}

/* The logits of the selected rows (n of them) into rt->logit_all (n, vocab). */
static isim_status classify(isim_rt *rt, int n, isim_error *err)
{
    double t0 = isim__rt_now();
    for (int i = 0; i < n; i++)
        rmsnorm(rt->k, rt->sel_x + (size_t)i * rt->d, rt->x + (size_t)rt->sel_row[i] * rt->d,
                rt->final_norm, rt->d, (float)rt->m->norm_eps);
    charge(rt, T_OTHER, t0);
    /* one TP rank holds the whole vocabulary: its logits are the answer */
    float *local = rt->o.tp == 1 ? rt->logit_all : rt->logit_l;
    isim__rt_matmul(rt, &rt->vocab_m, rt->sel_x, (size_t)rt->d, n, local, (size_t)rt->vocab_l,
                    false);
    if (rt->o.tp == 1)
        return ISIM_OK;
    t0 = isim__rt_now();
    isim_status st = isim__rt_comm_allgather_cols(
        &rt->comm, rt->logit_l, (size_t)n, (size_t)rt->vocab_l, rt->logit_all, rt->gather, err);
    charge(rt, T_COLLECTIVE, t0);
    return st;
}

/* ---- the pass ---------------------------------------------------------------------------- */

/* One chunk of rows through this stage, micro-batch by micro-batch; on the last stage the
 * logits of the rows rt->sel_row (n_sel) into out (per sequence rt->sel_seq, vocab wide). */
static isim_status chunk(isim_rt *rt, int rows, int n_sel, float *out, isim_error *err)
{
    isim_status st = ISIM_OK;
    const int M = rt->micro < rows ? rt->micro : rows;
    const size_t d = (size_t)rt->d, rq = isim__rt_comm_request_size();
    int sent = 0;
    for (int mb = 0; mb < M && !st; mb++) {
        int a = rows * mb / M, b = rows * (mb + 1) / M;
        if (a == b)
            continue;
        if (rt->first) {
            st = embed(rt, a, b - a, err);
        } else {
            double t0 = isim__rt_now();
            st = isim__rt_comm_recv_prev(&rt->comm, rt->x + (size_t)a * d, (size_t)(b - a) * d, mb,
                                         err);
            charge(rt, T_COLLECTIVE, t0);
        }
        for (int li = 0; li < rt->l1 - rt->l0 && !st; li++)
            st = layer(rt, li, a, b - a, err);
        if (st)
            break;
        if (!rt->last) {
            double t0 = isim__rt_now();
            st = isim__rt_comm_send_next(&rt->comm, rt->x + (size_t)a * d, (size_t)(b - a) * d, mb,
                                         (char *)rt->requests + (size_t)sent * rq, err);
            sent += st ? 0 : 1;
            charge(rt, T_COLLECTIVE, t0);
        }
    }
    if (sent) {
        double t0 = isim__rt_now();
        isim_status ws = isim__rt_comm_wait(&rt->comm, rt->requests, sent, err);
        st = st ? st : ws;
        charge(rt, T_COLLECTIVE, t0);
    }
    if (st || !rt->last || !n_sel)
        return st;
    if ((st = classify(rt, n_sel, err)))
        return st;
    if (out)
        for (int i = 0; i < n_sel; i++)
            memcpy(out + (size_t)rt->sel_seq[i] * rt->vocab, rt->logit_all + (size_t)i * rt->vocab,
                   (size_t)rt->vocab * sizeof(float));
    return ISIM_OK;
}

/* The token of the highest logit of sequence seq. A logit that is not finite means the
 * forward pass left fp32's range (weights far beyond any trained model's): refused, since a
 * greedy pick among NaNs would look like an answer. */
static isim_status greedy(const isim_rt *rt, const float *lg, int seq, int *best, isim_error *err)
{
    *best = 0;
    for (int v = 0; v < rt->vocab; v++) {
        if (!isfinite(lg[v]))
            return isim__rt_fail(err, ISIM_EINVAL,
                                 "sequence %d: the logit of token %d is %s: the forward pass "
                                 "overflowed fp32's range",
                                 seq, v, isim__rt_nonfinite_name(lg[v]));
        if (lg[v] > lg[*best])
            *best = v;
    }
    return ISIM_OK;
}

/* The world rank that holds the finished logits: the last stage's first TP rank. */
static int logits_root(const isim_rt *rt)
{
    return (rt->o.pp - 1) * rt->o.tp;
}

isim_status isim__rt_forward(isim_rt *rt, int batch, const int *slots, const int *const *tokens,
                             const int *n, float *logits, int *argmax, isim_error *err)
{
    if (batch < 1 || batch > rt->batch_cap)
        return isim__rt_fail(err, ISIM_EINVAL, "a batch of %d sequences: the engine holds 1 to %d",
                             batch, rt->batch_cap);
    for (int i = 0; i < batch; i++) {
        int s = slots[i];
        if (s < 0 || s >= rt->batch_cap)
            return isim__rt_fail(err, ISIM_EINVAL, "slot %d is not in [0, %d)", s, rt->batch_cap);
        for (int q = 0; q < i; q++)
            if (slots[q] == s)
                return isim__rt_fail(err, ISIM_EINVAL, "slot %d appears twice in one pass", s);
        if (n[i] < 1)
            return isim__rt_fail(err, ISIM_EINVAL, "sequence %d has no new tokens", i);
        if ((int64_t)rt->pos[s] + n[i] > rt->ctx)
            return isim__rt_fail(err, ISIM_EINVAL,
                                 "sequence %d would hold %lld tokens, more than the context of %d",
                                 i, (long long)rt->pos[s] + n[i], rt->ctx);
        for (int t = 0; t < n[i]; t++)
            if (tokens[i][t] < 0 || tokens[i][t] >= rt->vocab)
                return isim__rt_fail(err, ISIM_EINVAL, "token id %d is not in [0, %d)",
                                     tokens[i][t], rt->vocab);
    }
    isim_status st = ISIM_OK;
    float *out = rt->last ? logits : NULL;
    for (int i = 0; i < batch; i++)
        rt->base_pos[i] = rt->pos[slots[i]];
    /* the rows of every sequence in order, cut into chunks anywhere: each row carries its
     * absolute position, and a sequence's earlier rows are in the cache by then */
    int seq = 0, off = 0;
    while (seq < batch && !st) {
        int rows = 0, n_sel = 0;
        while (rows < rt->chunk && seq < batch) {
            rt->row_slot[rows] = slots[seq];
            rt->row_pos[rows] = rt->base_pos[seq] + off;
            rt->row_tok[rows] = tokens[seq][off];
            rows++;
            if (++off == n[seq]) {
                rt->sel_row[n_sel] = rows - 1;
                rt->sel_seq[n_sel] = seq;
                n_sel++;
                seq++;
                off = 0;
            }
        }
        st = chunk(rt, rows, n_sel, out, err);
        for (int i = 0; !st && argmax && rt->last && i < n_sel; i++)
            st = greedy(rt, rt->logit_all + (size_t)i * rt->vocab, rt->sel_seq[i],
                        &argmax[rt->sel_seq[i]], err);
    }
    if (!st)
        for (int i = 0; i < batch; i++)
            rt->pos[slots[i]] = rt->base_pos[i] + n[i];
    if (rt->comm.world_size == 1)
        return st;
    double t0 = isim__rt_now();
    if (isim__rt_comm_any(&rt->comm, st != ISIM_OK)) {
        charge(rt, T_COLLECTIVE, t0);
        return st ? st : isim__rt_fail(err, ISIM_EIO, "another rank failed during the pass");
    }
    if (argmax)
        st = isim__rt_comm_bcast(&rt->comm, argmax, (size_t)batch * sizeof(int), logits_root(rt),
                                 err);
    if (!st && logits)
        st = isim__rt_comm_bcast(&rt->comm, logits, (size_t)batch * rt->vocab * sizeof(float),
                                 logits_root(rt), err);
    charge(rt, T_COLLECTIVE, t0);
    return st;
}

isim_status isim_rt_forward(isim_rt *rt, int batch, const int *slots, const int *const *tokens,
                            const int *n, float *logits, isim_error *err)
{
    return isim__rt_forward(rt, batch, slots, tokens, n, logits, NULL, err);
}
