/* Opening the CPU engine: the model and layout checked, this rank's share of the weights
 * read and packed, the KV cache and every activation buffer allocated up front, and the
 * memory all that takes checked against the machine before any of it is touched. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "runtime/cpu/engine.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

isim_status isim__rt_fail(isim_error *err, isim_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    isim_status st = isim_error_setv(err, code, NULL, 0, 0, fmt, ap);
    va_end(ap);
    return st;
}

double isim__rt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void isim_rt_options_init(isim_rt_options *o)
{
    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->weights = ISIM_FP32;
    o->kv = ISIM_FP32;
    o->tp = o->pp = 1;
    o->max_batch = 1;
}

const char *isim_rt_kernels(const isim_rt *rt)
{
    return rt->k->name;
}

int isim_rt_rank(const isim_rt *rt)
{
    return rt->comm.world_rank;
}

int isim_rt_threads(const isim_rt *rt)
{
    return isim__rt_pool_size(rt->pool);
}

/* ---- sizes -------------------------------------------------------------------------- */

/* a * b, false on overflow */
static bool mul_ok(size_t a, size_t b, size_t *out)
{
    if (a && b > SIZE_MAX / a)
        return false;
    *out = a * b;
    return true;
}

static size_t align64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

/* Bytes the machine has for this process: MemAvailable shared by the ranks on it. */
static double available_bytes(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    double kb = 0;
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    double bytes = kb > 0 ? kb * 1024 : (double)sysconf(_SC_AVPHYS_PAGES) * sysconf(_SC_PAGESIZE);
    const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    int n = local ? atoi(local) : 1;
    return bytes / (n > 0 ? n : 1);
}

/* Zeroed memory for an arena, in huge pages where the kernel allows (fewer TLB misses when
 * decode streams the weights); with `touch`, faulted in now, so that no page fault lands in
 * a measured step. */
static void *map_zeroed(size_t bytes, bool touch)
{
    if (!bytes)
        bytes = 64;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, bytes, MADV_HUGEPAGE);
#endif
    if (touch)
        memset(p, 0, bytes);
    return p;
}

/* A bump allocator over one mapping, 64-byte aligned pieces; with base NULL it only
 * counts. */
typedef struct {
    char *base;
    size_t used;
} carve;

static void *take(carve *c, size_t bytes)
{
    void *p = c->base ? c->base + c->used : NULL;
    c->used += align64(bytes);
    return p;
}

/* ---- the layout ---------------------------------------------------------------------- */

static isim_status check_model(const isim_rt_options *o, isim_error *err)
{
    const isim_model *m = o->model;
    if (!m)
        return isim__rt_fail(err, ISIM_EINVAL, "no model");
    const char *why = m->norm != ISIM_NORM_RMS       ? "LayerNorm"
                      : m->ffn != ISIM_FFN_SWIGLU    ? "a GELU feed-forward"
                      : m->position != ISIM_POS_ROPE ? "learned positions"
                      : m->has_mla                   ? "multi-head latent attention"
                                                     : NULL;
    if (why)
        return isim__rt_fail(err, ISIM_EINVAL,
                             "model '%s' uses %s; the CPU engine runs the Llama family (RMSNorm, "
                             "RoPE, SwiGLU; GQA, MoE, q/k norms, biases and sliding windows)",
                             m->id, why);
    if (m->head_dim % 2)
        return isim__rt_fail(err, ISIM_EINVAL, "model '%s': RoPE needs an even head_dim, not %lld",
                             m->id, (long long)m->head_dim);
    if (o->weights != ISIM_FP32 && o->weights != ISIM_BF16 && o->weights != ISIM_INT8)
        return isim__rt_fail(err, ISIM_EINVAL,
                             "weights in %s: the CPU engine takes fp32, bf16 "
                             "or int8",
                             isim_dtype_name(o->weights));
    if (o->kv != ISIM_FP32 && o->kv != ISIM_BF16)
        return isim__rt_fail(err, ISIM_EINVAL,
                             "a KV cache in %s: the CPU engine takes fp32 or bf16",
                             isim_dtype_name(o->kv));
    int tp = o->tp, pp = o->pp;
    if (tp < 1 || pp < 1)
        return isim__rt_fail(err, ISIM_EINVAL, "tp and pp must be at least 1");
    struct {
        const char *what;
        int64_t n;
    } split[] = {{"n_heads", m->n_heads},
                 {"n_kv_heads", m->n_kv_heads},
                 {"d_ff", m->d_ff},
                 {"vocab", m->vocab},
                 {"expert_d_ff", m->has_moe ? m->expert_d_ff : 0},
                 {"n_shared_experts x shared_expert_d_ff",
                  m->has_moe ? m->n_shared_experts * m->shared_expert_d_ff : 0}};
    for (size_t i = 0; i < sizeof split / sizeof split[0]; i++)
        if (split[i].n % tp)
            return isim__rt_fail(err, ISIM_EINVAL,
                                 "model '%s': %s = %lld does not divide over tp %d (tensor "
                                 "parallelism splits it evenly)",
                                 m->id, split[i].what, (long long)split[i].n, tp);
    if (pp > m->n_layers)
        return isim__rt_fail(err, ISIM_EINVAL,
                             "model '%s' has %lld layers, fewer than pp %d stages", m->id,
                             (long long)m->n_layers, pp);
    if (o->max_context > m->max_context)
        return isim__rt_fail(err, ISIM_EINVAL,
                             "a context of %d tokens is longer than model '%s''s limit of %lld",
                             o->max_context, m->id, (long long)m->max_context);
    if (o->max_context < 0 || o->max_batch < 1 || o->max_chunk < 0)
        return isim__rt_fail(err, ISIM_EINVAL,
                             "the batch, the context and the chunk must be positive");
    return ISIM_OK;
}

/* Shapes of this rank's share. */
static void layout(isim_rt *rt)
{
    const isim_model *m = rt->m;
    const isim_rt_options *o = &rt->o;
    int tp = o->tp, pp = o->pp, tr = rt->comm.tp_rank, st = rt->comm.stage;
    rt->d = (int)m->d_model;
    rt->hd = (int)m->head_dim;
    rt->nh = (int)m->n_heads;
    rt->nkv = (int)m->n_kv_heads;
    rt->group = rt->nh / rt->nkv;
    rt->nh_l = rt->nh / tp;
    rt->nkv_l = rt->nkv / tp;
    rt->ff_l = (int)(m->d_ff / tp);
    rt->ne = m->has_moe ? (int)m->n_experts : 0;
    rt->topk = m->has_moe ? (int)m->n_active_experts : 0;
    rt->eff_l = m->has_moe ? (int)(m->expert_d_ff / tp) : 0;
    rt->sff_l = m->has_moe ? (int)(m->n_shared_experts * m->shared_expert_d_ff / tp) : 0;
    rt->ff_max_l = rt->ff_l > rt->eff_l ? rt->ff_l : rt->eff_l;
    rt->ff_max_l = rt->sff_l > rt->ff_max_l ? rt->sff_l : rt->ff_max_l;
    rt->vocab = (int)m->vocab;
    rt->vocab_l = rt->vocab / tp;
    rt->v0 = tr * rt->vocab_l;
    int L = (int)m->n_layers;
    rt->l0 = (int)((int64_t)L * st / pp);
    rt->l1 = (int)((int64_t)L * (st + 1) / pp);
    rt->first = st == 0;
    rt->last = st == pp - 1;
    rt->ctx = o->max_context ? o->max_context : (int)m->max_context;
    /* positions each head's cache holds: the context in whole tiles of 16 */
    rt->ldk = (rt->ctx + 15) / 16 * 16;
    rt->batch_cap = o->max_batch;
    rt->chunk = o->max_chunk ? o->max_chunk : 512;
    /* a pass never holds more rows than every sequence's whole context: a larger chunk would
     * only size scratch nothing uses (--chunk 1048576 took 4.4 GB for a 4-token prompt) */
    if ((int64_t)rt->chunk > (int64_t)rt->batch_cap * rt->ctx)
        rt->chunk = (int)((int64_t)rt->batch_cap * rt->ctx);
    rt->micro = o->micro_batches > 0 ? o->micro_batches : pp;
    int kmax = rt->d;
    if (rt->nh_l * rt->hd > kmax)
        kmax = rt->nh_l * rt->hd;
    if (rt->ff_max_l > kmax)
        kmax = rt->ff_max_l;
    rt->kmax_pad = kmax + (kmax & 1);
}

/* ---- weights ---------------------------------------------------------------------------- */

/* A packed matrix's rows as runs of consecutive rows of source tensors. */
typedef struct {
    rt_tensor t;
    int layer, expert;
    size_t row0, rows, col0; /* rows [row0, row0 + rows) of t, columns from col0 */
} segment;

typedef struct {
    isim_rt *rt;
    rt_source *src;
    rt_matrix *mat;
    const segment *seg;
    int n_seg;
    pthread_mutex_t lock;
    size_t stop; /* the lowest row that failed (SIZE_MAX: none): rows from it on are not
                    read, rows below it still are, so that the error reported is the lowest
                    failing row's, whichever thread finds its error first */
    isim_status st;
    isim_error err;
} load_job;

static void load_failed(load_job *j, size_t row, isim_status st, const isim_error *e)
{
    pthread_mutex_lock(&j->lock);
    if (row < j->stop) {
        j->st = st;
        j->err = *e;
        __atomic_store_n(&j->stop, row, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&j->lock);
}

static void load_rows(void *p, int tid, int n)
{
    load_job *j = p;
    size_t rows = j->mat->n, k = j->mat->k;
    size_t r0 = rows * (size_t)tid / (size_t)n, r1 = rows * (size_t)(tid + 1) / (size_t)n;
    float *buf = malloc(k * sizeof *buf);
    if (!buf) {
        isim_error e;
        load_failed(j, r0, isim__rt_fail(&e, ISIM_ENOMEM, "out of memory"), &e);
        return;
    }
    for (size_t r = r0; r < r1 && r < __atomic_load_n(&j->stop, __ATOMIC_RELAXED); r++) {
        size_t base = 0;
        const segment *s = j->seg;
        while (r >= base + s->rows) {
            base += s->rows;
            s++;
        }
        isim_error e;
        isim_status st = isim__rt_source_read(j->src, s->t, s->layer, s->expert, s->row0 + r - base,
                                              s->col0, s->col0 + k, buf, &e);
        if (st) {
            load_failed(j, r, st, &e);
            break;
        }
        isim__rt_matrix_set_row(j->mat, r, buf);
    }
    free(buf);
}

/* Sets m's shape and carves its storage; loads its rows from the segments when the
 * arena exists. */
static isim_status matrix(isim_rt *rt, carve *c, rt_source *src, rt_matrix *m, size_t n, size_t k,
                          const segment *seg, int n_seg, isim_error *err)
{
    memset(m, 0, sizeof *m);
    m->n = n;
    m->k = k;
    m->kp = k + (k & 1);
    m->panels = (n + RT_NR - 1) / RT_NR;
    m->dt = rt->o.weights;
    size_t data = isim__rt_matrix_bytes(n, k, m->dt);
    size_t scales = m->dt == ISIM_INT8 ? m->panels * RT_NR * sizeof(float) : 0;
    m->data = take(c, data - scales);
    if (scales)
        m->scale = take(c, scales);
    rt->dense_bytes_local += (double)data;
    if (!c->base || !n)
        return ISIM_OK;
    load_job j = {.rt = rt, .src = src, .mat = m, .seg = seg, .n_seg = n_seg, .stop = SIZE_MAX};
    pthread_mutex_init(&j.lock, NULL);
    isim__rt_pool_run(rt->pool, load_rows, &j);
    pthread_mutex_destroy(&j.lock);
    if (j.st && err)
        *err = j.err;
    return j.st;
}

/* A vector: values [col0, col0 + n) of tensor t's row 0. */
static isim_status vector(isim_rt *rt, carve *c, rt_source *src, float **out, rt_tensor t,
                          int layer, int expert, size_t col0, size_t n, isim_error *err)
{
    *out = take(c, n * sizeof(float));
    rt->dense_bytes_local += (double)(n * sizeof(float));
    if (!c->base)
        return ISIM_OK;
    return isim__rt_source_read(src, t, layer, expert, 0, col0, col0 + n, *out, err);
}

/* Every weight of this rank: carved (and read when c->base is set). */
static isim_status weights(isim_rt *rt, carve *c, rt_source *src, isim_error *err)
{
    const isim_model *m = rt->m;
    const size_t d = (size_t)rt->d, hd = (size_t)rt->hd, tr = (size_t)rt->comm.tp_rank;
    const size_t q_l = (size_t)rt->nh_l * hd, kv_l = (size_t)rt->nkv_l * hd;
    const size_t ff_l = (size_t)rt->ff_l, eff_l = (size_t)rt->eff_l, sff_l = (size_t)rt->sff_l;
    isim_status st = ISIM_OK;
    rt->dense_bytes_local = 0;
    for (int li = 0; li < rt->l1 - rt->l0 && !st; li++) {
        rt_layer *L = &rt->layers[li];
        int g = rt->l0 + li;
        L->global = g;
        L->moe = m->has_moe && g >= m->first_dense_layers;
        L->local = m->window > 0 && m->pattern_len > 0 && m->pattern[g % m->pattern_len];
        segment qkv[3] = {{RT_T_WQ, g, -1, tr * q_l, q_l, 0},
                          {RT_T_WK, g, -1, tr * kv_l, kv_l, 0},
                          {RT_T_WV, g, -1, tr * kv_l, kv_l, 0}};
        segment o[1] = {{RT_T_WO, g, -1, 0, d, tr * q_l}};
        if ((st = vector(rt, c, src, &L->attn_norm, RT_T_ATTN_NORM, g, -1, 0, d, err)) ||
            (st = vector(rt, c, src, &L->ffn_norm, RT_T_FFN_NORM, g, -1, 0, d, err)) ||
            (st = matrix(rt, c, src, &L->qkv, q_l + 2 * kv_l, d, qkv, 3, err)) ||
            (st = matrix(rt, c, src, &L->o, d, q_l, o, 1, err)))
            break;
        if (m->qk_norm && ((st = vector(rt, c, src, &L->q_norm, RT_T_Q_NORM, g, -1, 0, hd, err)) ||
                           (st = vector(rt, c, src, &L->k_norm, RT_T_K_NORM, g, -1, 0, hd, err))))
            break;
        if (m->attn_bias) {
            /* the fused q, k, v bias in one piece; the output bias added once, by TP rank 0 */
            float *b = take(c, (q_l + 2 * kv_l) * sizeof(float));
            rt->dense_bytes_local += (double)((q_l + 2 * kv_l) * sizeof(float));
            if (c->base && ((st = isim__rt_source_read(src, RT_T_BQ, g, -1, 0, tr * q_l,
                                                       (tr + 1) * q_l, b, err)) ||
                            (st = isim__rt_source_read(src, RT_T_BK, g, -1, 0, tr * kv_l,
                                                       (tr + 1) * kv_l, b + q_l, err)) ||
                            (st = isim__rt_source_read(src, RT_T_BV, g, -1, 0, tr * kv_l,
                                                       (tr + 1) * kv_l, b + q_l + kv_l, err))))
                break;
            L->qkv.bias = b;
            if ((st = vector(rt, c, src, &L->o.bias, RT_T_BO, g, -1, 0, d, err)))
                break;
            if (tr != 0)
                L->o.bias = NULL;
        }
        if (!L->moe) {
            segment gu[2] = {{RT_T_W1, g, -1, tr * ff_l, ff_l, 0},
                             {RT_T_W3, g, -1, tr * ff_l, ff_l, 0}};
            segment dn[1] = {{RT_T_W2, g, -1, 0, d, tr * ff_l}};
            if ((st = matrix(rt, c, src, &L->gate_up, 2 * ff_l, d, gu, 2, err)) ||
                (st = matrix(rt, c, src, &L->down, d, ff_l, dn, 1, err)))
                break;
            if (m->mlp_bias) {
                float *b = take(c, 2 * ff_l * sizeof(float));
                rt->dense_bytes_local += (double)(2 * ff_l * sizeof(float));
                if (c->base && ((st = isim__rt_source_read(src, RT_T_B1, g, -1, 0, tr * ff_l,
                                                           (tr + 1) * ff_l, b, err)) ||
                                (st = isim__rt_source_read(src, RT_T_B3, g, -1, 0, tr * ff_l,
                                                           (tr + 1) * ff_l, b + ff_l, err))))
                    break;
                L->gate_up.bias = b;
                if ((st = vector(rt, c, src, &L->down.bias, RT_T_B2, g, -1, 0, d, err)))
                    break;
                if (tr != 0)
                    L->down.bias = NULL;
            }
            continue;
        }
        /* MoE: the router on every rank, each expert split by its width */
        segment r[1] = {{RT_T_ROUTER, g, -1, 0, (size_t)rt->ne, 0}};
        if ((st = matrix(rt, c, src, &L->router, (size_t)rt->ne, d, r, 1, err)))
            break;
        if (m->router_bias && (st = vector(rt, c, src, &L->router.bias, RT_T_ROUTER_B, g, -1, 0,
                                           (size_t)rt->ne, err)))
            break;
        L->e_gate_up = take(c, (size_t)rt->ne * sizeof(rt_matrix));
        L->e_down = take(c, (size_t)rt->ne * sizeof(rt_matrix));
        rt_matrix scratch_gu, scratch_dn;
        for (int e = 0; e < rt->ne && !st; e++) {
            segment gu[2] = {{RT_T_E1, g, e, tr * eff_l, eff_l, 0},
                             {RT_T_E3, g, e, tr * eff_l, eff_l, 0}};
            segment dn[1] = {{RT_T_E2, g, e, 0, d, tr * eff_l}};
            rt_matrix *mg = c->base ? &L->e_gate_up[e] : &scratch_gu;
            rt_matrix *md = c->base ? &L->e_down[e] : &scratch_dn;
            if ((st = matrix(rt, c, src, mg, 2 * eff_l, d, gu, 2, err)) ||
                (st = matrix(rt, c, src, md, d, eff_l, dn, 1, err)))
                break;
            /* experts are read only when routed to: counted per step */
            rt->dense_bytes_local -= (double)(isim__rt_matrix_bytes(2 * eff_l, d, rt->o.weights) +
                                              isim__rt_matrix_bytes(d, eff_l, rt->o.weights));
        }
        if (st)
            break;
        if (sff_l) {
            segment gu[2] = {{RT_T_S1, g, -1, tr * sff_l, sff_l, 0},
                             {RT_T_S3, g, -1, tr * sff_l, sff_l, 0}};
            segment dn[1] = {{RT_T_S2, g, -1, 0, d, tr * sff_l}};
            if ((st = matrix(rt, c, src, &L->s_gate_up, 2 * sff_l, d, gu, 2, err)) ||
                (st = matrix(rt, c, src, &L->s_down, d, sff_l, dn, 1, err)))
                break;
        }
    }
    if (st)
        return st;
    /* the vocabulary rows of this rank: the embedding (first stage) and the classifier
     * (last stage); one matrix when they are tied and this stage needs either */
    segment emb[1] = {{RT_T_EMBED, -1, -1, (size_t)rt->v0, (size_t)rt->vocab_l, 0}};
    segment cls[1] = {{m->tied_embeddings ? RT_T_EMBED : RT_T_CLASSIFIER, -1, -1, (size_t)rt->v0,
                       (size_t)rt->vocab_l, 0}};
    if (m->tied_embeddings) {
        if ((st = matrix(rt, c, src, &rt->vocab_m, (size_t)rt->vocab_l, d, emb, 1, err)))
            return st;
        if (!rt->last) /* the embedding is read a row at a time, not as a classifier */
            rt->dense_bytes_local -=
                (double)isim__rt_matrix_bytes((size_t)rt->vocab_l, d, rt->o.weights);
    } else {
        if (rt->first) {
            if ((st = matrix(rt, c, src, &rt->embed_m, (size_t)rt->vocab_l, d, emb, 1, err)))
                return st;
            rt->dense_bytes_local -=
                (double)isim__rt_matrix_bytes((size_t)rt->vocab_l, d, rt->o.weights);
        }
        if (rt->last &&
            (st = matrix(rt, c, src, &rt->vocab_m, (size_t)rt->vocab_l, d, cls, 1, err)))
            return st;
    }
    if (rt->last && (st = vector(rt, c, src, &rt->final_norm, RT_T_FINAL_NORM, -1, -1, 0, d, err)))
        return st;
    return ISIM_OK;
}

/* ---- buffers ------------------------------------------------------------------------------ */

static void activations(isim_rt *rt, carve *c)
{
    const size_t ch = (size_t)rt->chunk, d = (size_t)rt->d, hd = (size_t)rt->hd,
                 B = (size_t)rt->batch_cap;
    const size_t threads = (size_t)isim__rt_pool_size(rt->pool);
    rt->x = take(c, ch * d * sizeof(float));
    rt->xn = take(c, ch * d * sizeof(float));
    rt->tmp = take(c, ch * d * sizeof(float));
    rt->qkv = take(c, ch * (size_t)(rt->nh_l + 2 * rt->nkv_l) * hd * sizeof(float));
    rt->att = take(c, ch * (size_t)rt->nh_l * hd * sizeof(float));
    rt->ffn = take(c, ch * 2 * (size_t)rt->ff_max_l * sizeof(float));
    rt->hid = take(c, ch * (size_t)rt->ff_max_l * sizeof(float));
    size_t x_rows = ch > B ? ch : B;
    rt->xpack = take(c, isim__rt_xpack_bytes((int)x_rows, (size_t)rt->kmax_pad, ISIM_FP32));
    rt->scores = take(c, threads * 32 * (size_t)rt->ctx * sizeof(float)); /* QMAX queries */
    rt->row_slot = take(c, ch * sizeof(int));
    rt->row_pos = take(c, ch * sizeof(int));
    rt->row_tok = take(c, ch * sizeof(int));
    rt->blk_start = take(c, ch * sizeof(int));
    rt->blk_len = take(c, ch * sizeof(int));
    rt->sel_row = take(c, B * sizeof(int));
    rt->sel_seq = take(c, B * sizeof(int));
    rt->sel_x = take(c, B * d * sizeof(float));
    rt->logit_l = take(c, B * (size_t)rt->vocab_l * sizeof(float));
    rt->logit_all = take(c, B * (size_t)rt->vocab * sizeof(float));
    rt->gather = take(c, (size_t)rt->o.tp * B * (size_t)rt->vocab_l * sizeof(float));
    if (rt->ne) {
        rt->router = take(c, ch * (size_t)rt->ne * sizeof(float));
        rt->top_e = take(c, ch * (size_t)rt->topk * sizeof(int));
        rt->top_w = take(c, ch * (size_t)rt->topk * sizeof(float));
        rt->e_count = take(c, (size_t)rt->ne * sizeof(int));
        rt->e_start = take(c, ((size_t)rt->ne + 1) * sizeof(int));
        rt->e_list = take(c, ch * (size_t)rt->topk * sizeof(int));
        rt->moe_x = take(c, ch * d * sizeof(float));
        rt->moe_out = take(c, ch * d * sizeof(float));
        rt->e_used = take(c, (size_t)rt->ne * sizeof(bool));
    }
    rt->requests = take(c, (size_t)rt->micro * isim__rt_comm_request_size());
    rt->pos = take(c, B * sizeof(int));
    rt->base_pos = take(c, B * sizeof(int));
    rt->rope_cos = take(c, (size_t)rt->ctx * hd / 2 * sizeof(float));
    rt->rope_sin = take(c, (size_t)rt->ctx * hd / 2 * sizeof(float));
}

static void rope_tables(isim_rt *rt)
{
    /* RoPE (Su et al. 2021) as Meta's Llama and llama2.c apply it: the pair (2i, 2i+1) of
     * each head rotated by pos x theta^(-2i / hd); angles in double precision */
    int half = rt->hd / 2;
    for (int p = 0; p < rt->ctx; p++)
        for (int i = 0; i < half; i++) {
            double f = pow(rt->m->rope_theta, -2.0 * i / rt->hd), a = (double)p * f;
            rt->rope_cos[(size_t)p * half + i] = (float)cos(a);
            rt->rope_sin[(size_t)p * half + i] = (float)sin(a);
        }
}

isim_status isim_rt_open(const isim_rt_options *o, isim_rt **out, isim_error *err)
{
    *out = NULL;
    isim_status st = check_model(o, err);
    if (st)
        return st;
    isim_rt *rt = calloc(1, sizeof *rt);
    if (!rt)
        return isim__rt_fail(err, ISIM_ENOMEM, "out of memory");
    rt->o = *o;
    rt->m = o->model;
    rt_source *src = NULL;
    if ((st = isim__rt_kernels_choose(o->kernels, &rt->k, err)))
        goto fail;
    if ((st = isim__rt_comm_open(&rt->comm, o->tp, o->pp, err)))
        goto fail;
    int threads = o->threads;
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
        int ranks = local ? atoi(local) : 1;
        threads = (int)(n > 0 ? n : 1) / (ranks > 0 ? ranks : 1);
        if (threads < 1)
            threads = 1;
    }
    layout(rt);
    if (rt->micro > rt->batch_cap && o->pp > 1)
        rt->micro = rt->batch_cap;
    if (rt->micro < 1)
        rt->micro = 1;
    /* the source first: a mismatched or truncated file is refused before anything big */
    if (o->weights_file)
        st = isim__rt_source_llama2c(rt->m, o->weights_file, &src, err);
    else
        st = isim__rt_source_random(rt->m, o->seed, &src, err);
    if (st)
        goto fail;
    if ((st = isim__rt_pool_new(threads, &rt->pool, err)))
        goto fail;
    /* what it all takes: counted with a null arena */
    size_t n_layers = (size_t)(rt->l1 - rt->l0);
    rt->layers = calloc(n_layers ? n_layers : 1, sizeof *rt->layers);
    if (!rt->layers) {
        st = isim__rt_fail(err, ISIM_ENOMEM, "out of memory");
        goto fail;
    }
    carve wc = {0}, ac = {0};
    if ((st = weights(rt, &wc, src, err)))
        goto fail;
    activations(rt, &ac);
    size_t kv_elems = 0;
    if (!mul_ok((size_t)rt->batch_cap * (size_t)rt->nkv_l * (size_t)rt->hd, (size_t)rt->ldk,
                &kv_elems) ||
        !mul_ok(kv_elems, 2 * n_layers * (o->kv == ISIM_BF16 ? 2 : 4), &rt->kv_arena_bytes)) {
        st = isim__rt_fail(err, ISIM_EINVAL, "the KV cache's size overflows");
        goto fail;
    }
    rt->kv_layer_elems = kv_elems;
    double need = (double)wc.used + (double)ac.used + (double)rt->kv_arena_bytes;
    double have = available_bytes();
    if (need > 0.9 * have) {
        st = isim__rt_fail(err, ISIM_ENOMEM,
                           "model '%s' needs %.2f GB per process here (weights %.2f GB, KV cache "
                           "%.2f GB for %d x %d tokens, buffers %.2f GB); the machine has %.2f GB "
                           "available per process",
                           rt->m->id, need / 1e9, (double)wc.used / 1e9,
                           (double)rt->kv_arena_bytes / 1e9, rt->batch_cap, rt->ctx,
                           (double)ac.used / 1e9, have / 1e9);
        goto fail;
    }
    /* every rank has checked: one that cannot go on stops all before the big allocations */
    if (isim__rt_comm_any(&rt->comm, false)) {
        st = isim__rt_fail(err, ISIM_EINVAL, "another rank could not open the engine");
        goto fail;
    }
    rt->warena_bytes = wc.used;
    rt->aarena_bytes = ac.used;
    if (!(rt->warena = map_zeroed(rt->warena_bytes, false)) ||
        !(rt->aarena = map_zeroed(rt->aarena_bytes, true)) ||
        !(rt->kv_arena = map_zeroed(rt->kv_arena_bytes, true))) {
        st = isim__rt_fail(err, ISIM_ENOMEM, "cannot map %.2f GB", need / 1e9);
        goto fail;
    }
    wc = (carve){rt->warena, 0};
    ac = (carve){rt->aarena, 0};
    activations(rt, &ac);
    if ((st = weights(rt, &wc, src, err)))
        goto fail;
    rope_tables(rt);
    isim__rt_source_free(src);
    *out = rt;
    return ISIM_OK;
fail:
    isim__rt_source_free(src);
    isim_rt_close(rt);
    return st;
}

void isim_rt_close(isim_rt *rt)
{
    if (!rt)
        return;
    if (rt->warena)
        munmap(rt->warena, rt->warena_bytes);
    if (rt->aarena)
        munmap(rt->aarena, rt->aarena_bytes);
    if (rt->kv_arena)
        munmap(rt->kv_arena, rt->kv_arena_bytes);
    isim__rt_pool_free(rt->pool);
    isim__rt_comm_close(&rt->comm);
    free(rt->layers);
    free(rt);
}

void isim_rt_reset(isim_rt *rt, int slot)
{
    if (slot >= 0 && slot < rt->batch_cap)
        rt->pos[slot] = 0;
}

int isim_rt_position(const isim_rt *rt, int slot)
{
    return slot >= 0 && slot < rt->batch_cap ? rt->pos[slot] : -1;
}

void isim_rt_times_get(const isim_rt *rt, isim_rt_times *t)
{
    *t = rt->t;
}

void isim_rt_times_reset(isim_rt *rt)
{
    memset(&rt->t, 0, sizeof rt->t);
}
