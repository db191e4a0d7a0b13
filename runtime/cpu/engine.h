/* The CPU engine's state, shared by its files: shapes of this rank's share of the model,
 * its packed weights, the KV cache, and every activation buffer, all allocated when the
 * engine opens so that a step allocates nothing. */
#ifndef ISIM_RT_CPU_ENGINE_H
#define ISIM_RT_CPU_ENGINE_H

#include "runtime/cpu/internal.h"

typedef struct rt_layer {
    int global;                    /* index in the model */
    bool moe, local;               /* MoE feed-forward; sliding-window attention */
    float *attn_norm, *ffn_norm;   /* (d) */
    float *q_norm, *k_norm;        /* (hd) or NULL */
    rt_matrix qkv;                 /* (nh_l*hd + 2*nkv_l*hd) x d: this rank's q, k and v heads */
    rt_matrix o;                   /* d x nh_l*hd (this rank's columns) */
    rt_matrix gate_up;             /* dense: 2*ff_l x d (gate rows, then up rows) */
    rt_matrix down;                /* dense: d x ff_l */
    rt_matrix router;              /* MoE: n_experts x d, on every rank */
    rt_matrix *e_gate_up, *e_down; /* MoE: (n_experts) 2*eff_l x d and d x eff_l */
    rt_matrix s_gate_up, s_down;   /* shared experts: 2*sff_l x d and d x sff_l (n = 0: none) */
} rt_layer;

struct isim_rt {
    isim_rt_options o;
    const isim_model *m;
    const rt_kernels *k;
    rt_pool *pool;
    rt_comm comm;
    /* shapes: model, and this rank's share (_l) */
    int d, hd, nh, nkv, group; /* group: q heads per kv head */
    int nh_l, nkv_l, ff_l, eff_l, sff_l, ff_max_l;
    int vocab, vocab_l, v0; /* this rank's vocabulary rows [v0, v0 + vocab_l) */
    int ne, topk;
    int l0, l1;                            /* this stage's layers [l0, l1) */
    int ctx, ldk, batch_cap, chunk, micro; /* ldk: positions a head's cache holds (>= ctx) */
    bool first, last;                      /* first and last pipeline stage */
    int kmax_pad;                          /* widest matmul input, padded: bf16 input rows */
    /* weights */
    void *warena;
    size_t warena_bytes;
    rt_layer *layers;           /* (l1 - l0) */
    rt_matrix vocab_m;          /* tied: embedding and classifier rows [v0, v0+vocab_l) */
    rt_matrix embed_m;          /* untied: the embedding's rows (first stage) */
    float *final_norm;          /* (d), last stage */
    float *rope_cos, *rope_sin; /* (ctx, hd/2) */
    /* KV cache: per local layer, K and V (slot, kv head, position, hd), fp32 or bf16 */
    void *kv_arena;
    size_t kv_arena_bytes, kv_layer_elems;
    int *pos;      /* (batch_cap) tokens each slot holds */
    int *base_pos; /* (batch_cap) positions at the start of a pass */
    /* activations, (chunk rows, ...) */
    void *aarena;
    size_t aarena_bytes;
    float *x, *xn, *tmp;               /* (chunk, d) */
    float *qkv;                        /* (chunk, (nh_l + 2 nkv_l) hd) */
    float *att;                        /* (chunk, nh_l hd) */
    float *ffn;                        /* (chunk, 2 ff_max_l) */
    float *hid;                        /* (chunk, ff_max_l) */
    void *xpack;                       /* matmul inputs, packed (isim__rt_xpack): chunk rows of
                                          kmax_pad, fp32 or bf16 */
    float *scores;                     /* (threads, ctx) */
    int *row_slot, *row_pos, *row_tok; /* (chunk) */
    int *blk_start, *blk_len;          /* (chunk) attention blocks */
    int *sel_row, *sel_seq;            /* (batch_cap) rows whose logits are wanted, and for which
                                          sequence */
    float *sel_x;                      /* (batch_cap, d) */
    float *logit_l;                    /* (batch_cap, vocab_l) */
    float *logit_all;                  /* (batch_cap, vocab) */
    float *gather;                     /* (tp, batch_cap, vocab_l) */
    float *router;                     /* (chunk, ne) */
    int *top_e;                        /* (chunk, topk) */
    float *top_w;                      /* (chunk, topk) */
    int *e_count, *e_start, *e_list;   /* (ne), (ne + 1), (chunk * topk) */
    float *moe_x, *moe_out;            /* (chunk, d) */
    bool *e_used;                      /* (ne) routed to in the last forward pass */
    void *requests;                    /* (micro) pipeline sends in flight */
    /* measurement */
    isim_rt_times t;
    double dense_bytes_local; /* every matrix and norm one step reads, MoE experts aside */
};

/* now, in seconds (monotonic) */
double isim__rt_now(void);

/* The machine's busy and total CPU seconds and this process's own (every thread). */
typedef struct {
    double busy, total, own;
} rt_cpu_times;
/* now; false where /proc/stat cannot be read */
bool isim__rt_cpu_times_now(rt_cpu_times *t);
/* The share of the machine's CPU time from t0 to t1 that other programs and the hypervisor
 * (steal) took, 0 to 1; NAN when no time passed. */
double isim__rt_others_share(const rt_cpu_times *t0, const rt_cpu_times *t1);

/* y (rows x w->n, ldy) = x (rows x w->k, ldx fp32) W^T on every thread; bf16 matrices take
 * their input rounded to bf16. Adds the bias when add_bias. Counted as matmul time. */
/* isim_rt_forward; with `argmax` (batch), also each sequence's greedy next token on every
 * rank; the logits reach every rank only when `logits` is set. */
isim_status isim__rt_forward(isim_rt *rt, int batch, const int *slots, const int *const *tokens,
                             const int *n, float *logits, int *argmax, isim_error *err);

void isim__rt_matmul(isim_rt *rt, const rt_matrix *w, const float *x, size_t ldx, int rows,
                     float *y, size_t ldy, bool add_bias);

#endif
