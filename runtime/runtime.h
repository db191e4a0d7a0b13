/* The execution engines (docs/engine.md): a Llama-family decoder that runs a model's
 * configuration for real, measured and split into the same kinds of time as the
 * simulator's terms. The CPU engine runs in one process or across processes (tensor and
 * pipeline parallelism over Open MPI); MPI stays behind this header. */
#ifndef ISIM_RUNTIME_H
#define ISIM_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/sim.h"

/* ---- processes ---------------------------------------------------------------------- */

/* Whether this process was started by mpirun (Open MPI's environment is present). */
bool isim_rt_under_mpirun(void);
/* Starts MPI; *rank and *size of the world. Call once, before isim_rt_open with tp x pp
 * above 1, and end with isim_rt_mpi_finalize. */
isim_status isim_rt_mpi_init(int *argc, char ***argv, int *rank, int *size, isim_error *err);
void isim_rt_mpi_finalize(void);
/* Ends every process of the run with `code` (MPI_Abort): for the program, after it has
 * printed why, so that no rank waits forever for one that failed. */
void isim_rt_mpi_abort(int code);

/* ---- the engine ----------------------------------------------------------------------- */

typedef struct isim_rt isim_rt;

typedef struct isim_rt_options {
    const isim_model *model;  /* shapes (borrowed; must outlive the engine) */
    const char *weights_file; /* llama2.c checkpoint (v0: 7 int32, then fp32), or NULL
                                 for seeded random weights */
    uint64_t seed;            /* random weights and prompts; 1 */
    isim_dtype weights;       /* ISIM_FP32, ISIM_BF16 (fp32 accumulation, matmul inputs
                                 rounded to bf16) or ISIM_INT8 (per-row scales); fp32 */
    isim_dtype kv;            /* ISIM_FP32 or ISIM_BF16; fp32 */
    int threads;              /* per process; 0 = one per CPU this process may use */
    int tp, pp;               /* tensor and pipeline degrees; 1, 1. tp x pp must equal
                                 the MPI world's size when above 1 */
    int micro_batches;        /* pipeline micro-batches; 0 = pp */
    int max_batch;            /* sequences held at once; 1 */
    int max_context;          /* tokens per sequence; 0 = the model's max_context */
    int max_chunk;            /* rows of one forward pass (prefill chunk); 0 = 512 */
    const char *kernels;      /* "auto" (NULL), "avx512", "avx2" or "scalar": force a
                                 kernel set, for tests and benchmarks */
} isim_rt_options;

void isim_rt_options_init(isim_rt_options *o);

/* Builds the engine: checks the model (Llama family: RMSNorm, RoPE, SwiGLU; GQA, MoE,
 * q/k norms, biases and sliding windows allowed), the layout (heads, KV heads, FFN width
 * and vocabulary divisible by tp, layers by pp), the context against the model's limit,
 * the weights file against the model's shape, and the memory it needs against what the
 * machine has, all before reading weights or allocating the big buffers. Every rank
 * calls it. */
isim_status isim_rt_open(const isim_rt_options *o, isim_rt **out, isim_error *err);
void isim_rt_close(isim_rt *rt); /* NULL is a no-op */

/* The kernel set in use ("avx512", "avx2", "scalar") and this rank's place. */
const char *isim_rt_kernels(const isim_rt *rt);
int isim_rt_rank(const isim_rt *rt);
int isim_rt_threads(const isim_rt *rt);

/* Empties sequence slot s (its KV cache is reused from position 0). */
void isim_rt_reset(isim_rt *rt, int slot);
int isim_rt_position(const isim_rt *rt, int slot); /* tokens slot s holds */

/* One forward pass: appends n[i] tokens (tokens[i][0 .. n[i])) to sequence slot
 * slots[i] for i < batch, and writes the logits of each sequence's last new token to
 * logits[i * vocab .. ] when logits is not NULL (on every rank). n[i] = 1 for all i is a
 * decode step; longer inputs are a prefill, run in chunks of max_chunk rows. */
isim_status isim_rt_forward(isim_rt *rt, int batch, const int *slots, const int *const *tokens,
                            const int *n, float *logits, isim_error *err);

/* Wall time spent since the last reset, by kind: the matmuls (every linear layer and the
 * classifier), attention (RoPE, scores, softmax, weighted values), collectives (waiting in
 * all-reduce, all-gather, send and receive) and the rest (norms, activations, residuals,
 * embedding, MoE routing, sampling). Seconds, on this rank. */
typedef struct isim_rt_times {
    double matmul_s, attention_s, collective_s, other_s;
} isim_rt_times;
void isim_rt_times_get(const isim_rt *rt, isim_rt_times *t);
void isim_rt_times_reset(isim_rt *rt);

/* Bytes of weights one decode step of `batch` sequences reads, over all ranks: every
 * matrix, the norms, the embedding rows and, for MoE, the experts the step's tokens
 * were routed to (the last step's, or all active experts when there was none). */
double isim_rt_weight_bytes(const isim_rt *rt, int batch);

/* ---- generation ---------------------------------------------------------------------- */

/* What a generation measured. Times on rank 0 (every rank runs the same steps). */
typedef struct isim_rt_result {
    int batch, output_tokens;
    int *generated;   /* (batch, output_tokens): greedy token ids */
    double prefill_s; /* all prompts, every chunk */
    int n_steps;      /* decode steps: output_tokens - 1 */
    double *step_s;   /* (n_steps) wall time of each decode step */
    double step_median_s, step_p10_s, step_p90_s;
    double tokens_per_s;           /* batch x n_steps / the steps' total time */
    isim_rt_times prefill, decode; /* split of the prefill and of all decode steps */
    double weight_bytes;           /* one decode step's, as isim_rt_weight_bytes */
} isim_rt_result;
void isim_rt_result_release(isim_rt_result *r);

/* Called with each forward pass's logits: step 0 the prefill, then one per decode step;
 * logits (batch, vocab). On rank 0 only. */
typedef void (*isim_rt_logits_fn)(void *ctx, int step, int batch, int vocab, const float *logits);

/* Prefills prompts[i] (prompt_len[i] ids) into slots 0 .. batch-1, then decodes greedily
 * until each sequence has output_tokens new ids (the first from the prefill's logits).
 * The slots are reset first. */
isim_status isim_rt_generate(isim_rt *rt, int batch, const int *const *prompts,
                             const int *prompt_len, int output_tokens, isim_rt_logits_fn on_logits,
                             void *ctx, isim_rt_result *out, isim_error *err);

/* Seeded random prompt ids in [3, vocab): the same for a given seed, sequence and length. */
void isim_rt_random_prompt(uint64_t seed, int sequence, int len, int vocab, int *ids);

/* ---- checking ------------------------------------------------------------------------ */

/* Writes the weights as the engine computes with them (bf16 and int8 dequantized) to
 * path.bin, fp32 little-endian, and their names, shapes and offsets with the model's
 * shape to path.json: what an independent reference needs to compute the same forward
 * pass. One process only (tp = pp = 1). */
isim_status isim_rt_export(const isim_rt *rt, const char *path, isim_error *err);

#endif
