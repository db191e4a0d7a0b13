/* The CPU engine's internals: packed weight matrices, the kernel sets chosen at run time,
 * the thread pool, the weight sources and the processes' communication. */
#ifndef ISIM_RT_CPU_INTERNAL_H
#define ISIM_RT_CPU_INTERNAL_H

#include "runtime/runtime.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fills err (no file position) and returns code. */
isim_status isim__rt_fail(isim_error *err, isim_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- packed matrices ----------------------------------------------------------------- */

/* Outputs per panel. A matrix of n outputs and k inputs (y = W x, W n x k) is stored as
 * ceil(n / 32) panels, each holding its 32 rows interleaved so that one step along k
 * reads 32 consecutive outputs' weights:
 *   fp32  [panel][k][32]              float
 *   int8  [panel][k][32]              int8, y = scale[row] * sum
 *   bf16  [panel][k/2][32][2]         the pairs (k, k+1) of each row side by side, the
 *                                     operand shape of AVX-512 BF16's dot product
 * k is padded to kp (even) and the last panel's missing rows with zeros. The same layout
 * serves decode (one row of x streams the panels once) and prefill (a tile of rows of x
 * reuses each panel block from the L1 cache). */
#define RT_NR 32
#define RT_MR 12 /* rows of x per microkernel call at most */

typedef struct rt_matrix {
    size_t n, k;   /* outputs, inputs */
    size_t kp;     /* k padded to even */
    size_t panels; /* ceil(n / RT_NR) */
    isim_dtype dt; /* ISIM_FP32, ISIM_BF16, ISIM_INT8 */
    void *data;    /* packed panels (carved from the engine's weight arena) */
    float *scale;  /* int8: (panels * RT_NR) per-row scales; else NULL */
    float *bias;   /* (n) or NULL */
} rt_matrix;

size_t isim__rt_matrix_bytes(size_t n, size_t k, isim_dtype dt); /* data + scales */
/* Packs row `row` (k values) into m. For int8, call with every row: the row's scale is
 * its largest magnitude / 127. */
void isim__rt_matrix_set_row(rt_matrix *m, size_t row, const float *values);
/* Row `row` as the engine computes with it (bf16 and int8 dequantized). */
void isim__rt_matrix_get_row(const rt_matrix *m, size_t row, float *out);

/* ---- kernels ------------------------------------------------------------------------- */

/* x as the matmul reads it: tiles of RT_MR rows (the last padded with zero rows), each tile
 * laid out along k so that one step of the microkernel reads the tile's rows at k side by
 * side:
 *   fp32 (for fp32 and int8 matrices)  [tile][kp][RT_MR]     float
 *   bf16 (for bf16 matrices)           [tile][kp/2][RT_MR][2] uint16_t, the pair (k, k+1)
 * Bytes for `rows` rows of width kp: */
size_t isim__rt_xpack_bytes(int rows, size_t kp, isim_dtype matrix_dt);
/* Packs rows x k of x (ldx floats per row) for a matrix of width kp and type matrix_dt;
 * bf16 rounds to nearest even. */
void isim__rt_xpack(const float *x, size_t ldx, int rows, size_t k, size_t kp, isim_dtype matrix_dt,
                    void *out);

/* A kernel set. matmul computes y[t][j] = sum_k x[t][k] W[j][k] (+ bias[j] when add_bias)
 * for rows t < rows and outputs j of panels [p0, p1), overwriting y; x packed as above. */
typedef struct rt_kernels {
    const char *name;
    void (*matmul)(const rt_matrix *w, const void *xpack, int rows, float *y, size_t ldy, size_t p0,
                   size_t p1, bool add_bias);
    float (*dot)(const float *a, const float *b, int n);
    void (*axpy)(float a, const float *x, float *y, int n);      /* y += a x */
    float (*dot_bf16)(const float *a, const uint16_t *b, int n); /* b bf16 */
    void (*axpy_bf16)(float a, const uint16_t *x, float *y, int n);
    void (*silu_mul)(const float *g, const float *u, float *out, int n); /* out = silu(g) u */
    void (*softmax)(float *x, int n); /* in place, max subtracted */
    /* for measuring the machine: the sum of n floats read with enough independent
     * accumulators to stream at memory speed, and `iters` rounds of independent fp32 FMAs
     * (which 0) or bf16 dot products (which 1) on registers, returning the FLOPs done */
    float (*read)(const float *x, size_t n);
    double (*peak)(int which, long iters);
    /* Attention of nq query vectors (q[i], hd each) over one KV head's cache, query i
     * seeing positions [first[i], last[i]] (all below span). Keys in tiles of 16 positions,
     * each tile hd x 16 (the key of position p, element d at
     * kt[((p / 16) * hd + d) * 16 + p % 16]); values by position, v[p * hd + d]; fp32, or
     * bf16 when kv_bf16. Writes out[i] (hd each); scores (nq, span) is scratch. */
    void (*attend)(const float *const *q, const int *first, const int *last, int nq, int hd,
                   const void *kt, const void *v, int span, float scale, bool kv_bf16,
                   float *scores, float *const *out);
} rt_kernels;

extern const rt_kernels isim__rt_kernels_scalar;
/* the scalar set's attention, shared by the AVX2 set */
void isim__rt_attend_scalar(const float *const *q, const int *first, const int *last, int nq,
                            int hd, const void *kt, const void *v, int span, float scale,
                            bool kv_bf16, float *scores, float *const *out);
/* Where element d of the key at position p lives in a head's tiled key cache. */
static inline size_t isim__rt_kt_at(int hd, int p, int d)
{
    return ((size_t)(p / 16) * (size_t)hd + (size_t)d) * 16 + (size_t)(p % 16);
}
extern const rt_kernels isim__rt_kernels_avx2;
extern const rt_kernels isim__rt_kernels_avx512;
/* The best set this CPU runs ("auto"), or the named one; NULL if the CPU cannot. */
const rt_kernels *isim__rt_kernels_pick(const char *name);
/* isim__rt_kernels_pick with the reason when there is none: a name that is not one of
 * isim_rt_kernel_sets, or a set this CPU cannot run. */
isim_status isim__rt_kernels_choose(const char *name, const rt_kernels **out, isim_error *err);

/* fp32 -> bf16 with round to nearest even (NaN kept a NaN), and back. */
static inline uint16_t isim__rt_bf16(float f)
{
    union {
        float f;
        uint32_t u;
    } v = {f};
    if ((v.u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((v.u >> 16) | 0x40u);
    v.u += 0x7fffu + ((v.u >> 16) & 1u);
    return (uint16_t)(v.u >> 16);
}

static inline float isim__rt_f32(uint16_t b)
{
    union {
        uint32_t u;
        float f;
    } v = {(uint32_t)b << 16};
    return v.f;
}

/* "nan", "inf" or "-inf": what a value that is not finite is, for messages. */
static inline const char *isim__rt_nonfinite_name(float v)
{
    return isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
}

/* ---- threads -------------------------------------------------------------------------- */

typedef struct rt_pool rt_pool;
typedef void (*rt_task)(void *ctx, int tid, int n_threads);
/* n threads in all, the caller included (n - 1 are started). */
isim_status isim__rt_pool_new(int n, rt_pool **out, isim_error *err);
void isim__rt_pool_free(rt_pool *p);
int isim__rt_pool_size(const rt_pool *p);
/* Tasks handed to the workers so far (a single-thread pool hands none). */
unsigned long isim__rt_pool_dispatches(const rt_pool *p);
/* Runs fn(ctx, tid, n) on every thread (tid 0 on the caller) and returns when all have
 * finished. */
void isim__rt_pool_run(rt_pool *p, rt_task fn, void *ctx);

/* ---- machine probes (calibrate.c; also bench/bench_engine.c) ----------------------------- */

/* One read of x[0 .. n) split over the pool's threads (at most 256): bytes per second. */
double isim__rt_read_rate(rt_pool *pool, const rt_kernels *k, const float *x, size_t n);
/* The kernels' peak loop (which: 0 fp32 FMA, 1 bf16 dot) of `iters` on every thread:
 * FLOP/s over all of them. */
double isim__rt_peak_rate(rt_pool *pool, const rt_kernels *k, int which, long iters);

/* ---- weight sources --------------------------------------------------------------------- */

/* The tensors of a Llama-family model, as [rows][cols] (outputs x inputs) or vectors. */
typedef enum {
    RT_T_EMBED,      /* vocab x d */
    RT_T_CLASSIFIER, /* vocab x d (untied) */
    RT_T_FINAL_NORM, /* d */
    RT_T_ATTN_NORM,  /* per layer: d */
    RT_T_FFN_NORM,   /* d */
    RT_T_WQ,         /* n_heads*hd x d */
    RT_T_WK,         /* n_kv*hd x d */
    RT_T_WV,         /* n_kv*hd x d */
    RT_T_WO,         /* d x n_heads*hd */
    RT_T_BQ,         /* biases */
    RT_T_BK,
    RT_T_BV,
    RT_T_BO,
    RT_T_Q_NORM, /* hd */
    RT_T_K_NORM, /* hd */
    RT_T_W1,     /* dense gate: d_ff x d */
    RT_T_W3,     /* dense up: d_ff x d */
    RT_T_W2,     /* dense down: d x d_ff */
    RT_T_B1,
    RT_T_B3,
    RT_T_B2,
    RT_T_ROUTER,   /* n_experts x d */
    RT_T_ROUTER_B, /* n_experts */
    RT_T_E1,       /* per expert: expert_d_ff x d */
    RT_T_E3,
    RT_T_E2, /* d x expert_d_ff */
    RT_T_S1, /* shared experts, concatenated: n_shared*shared_d_ff x d */
    RT_T_S3,
    RT_T_S2, /* d x n_shared*shared_d_ff */
    RT_T_COUNT
} rt_tensor;

typedef struct rt_source rt_source;
/* Seeded random weights: each value a function of (seed, tensor, layer, expert, index),
 * so that every split of a tensor over ranks holds the same numbers. */
isim_status isim__rt_source_random(const isim_model *m, uint64_t seed, rt_source **out,
                                   isim_error *err);
/* A llama2.c v0 checkpoint: header checked against the model, size against the header. */
isim_status isim__rt_source_llama2c(const isim_model *m, const char *path, rt_source **out,
                                    isim_error *err);
void isim__rt_source_free(rt_source *s);
/* Values cols [c0, c1) of row `row` of tensor t (layer, expert where they apply). */
isim_status isim__rt_source_read(rt_source *s, rt_tensor t, int layer, int expert, size_t row,
                                 size_t c0, size_t c1, float *out, isim_error *err);
/* Whether the source has tensor t (biases, q/k norms and MoE tensors are optional). */
bool isim__rt_source_has(const rt_source *s, rt_tensor t);

/* ---- processes ------------------------------------------------------------------------ */

/* This rank's place: world rank = stage * tp + tp_rank. All calls are no-ops when the
 * world has one process. Errors end up in err with the MPI message. */
typedef struct rt_comm {
    int world_rank, world_size;
    int tp, pp, tp_rank, stage;
    void *tp_comm; /* MPI_Comm of this stage's TP ranks (malloc'd), NULL when tp = 1 */
} rt_comm;

isim_status isim__rt_comm_open(rt_comm *c, int tp, int pp, isim_error *err);
void isim__rt_comm_close(rt_comm *c);
/* Sum of x (n floats) over this stage's TP ranks, in place. */
isim_status isim__rt_comm_allreduce(rt_comm *c, float *x, size_t n, isim_error *err);
/* TP all-gather of row blocks: each rank holds rows x cols_local of `local` (its
 * columns [rank * cols_local, ...) of each row); out gets rows x (cols_local * tp). */
isim_status isim__rt_comm_allgather_cols(rt_comm *c, const float *local, size_t rows,
                                         size_t cols_local, float *out, float *scratch,
                                         isim_error *err);
/* Pipeline hand-offs to the same TP rank of the next / from the previous stage. */
isim_status isim__rt_comm_send_next(rt_comm *c, const float *x, size_t n, int tag, void *request,
                                    isim_error *err);
isim_status isim__rt_comm_recv_prev(rt_comm *c, float *x, size_t n, int tag, isim_error *err);
isim_status isim__rt_comm_wait(rt_comm *c, void *requests, int n, isim_error *err);
size_t isim__rt_comm_request_size(void);
/* Broadcast from world rank `root` to every rank. */
isim_status isim__rt_comm_bcast(rt_comm *c, void *x, size_t bytes, int root, isim_error *err);
/* Sum of *x over the world's ranks, in place. */
isim_status isim__rt_comm_sum(rt_comm *c, double *x, isim_error *err);
/* Whether any rank passes `failed`; every rank must call it. */
bool isim__rt_comm_any(rt_comm *c, bool failed);

#endif
