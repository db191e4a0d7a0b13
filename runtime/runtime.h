/* The execution engines (docs/engine.md): a Llama-family decoder that runs a model's
 * configuration for real, measured and split into the same kinds of time as the
 * simulator's terms. The CPU engine runs in one process or across processes (tensor and
 * pipeline parallelism over Open MPI); MPI stays behind this header. */
#ifndef ISIM_RUNTIME_H
#define ISIM_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/serve.h"
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
    const char *kernels;      /* one of isim_rt_kernel_sets ("auto" or NULL: the best this
                                 CPU runs): force a kernel set, for tests and benchmarks */
} isim_rt_options;

/* The kernel sets one may name: "auto", "avx512", "avx2", "scalar", then NULL. */
extern const char *const isim_rt_kernel_sets[];

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

/* ---- serving under traffic (docs/engine.md, "Serving") ------------------------------ */

/* The longest a serving run may take, wall-clock seconds. */
#define ISIM_RT_SERVE_MAX_S 3600.0

/* What a serving run measured. */
typedef struct isim_rt_serving {
    /* in the simulation's form (sim/serve.h): every request's arrival, first admission,
     * first token and completion (seconds from the first arrival), lengths and
     * preemptions; the figures (isim_serve_summarize); and the engine's log of every pass
     * (passes: its start, its time, its composition as an isim_step_mix, the sequences
     * running and waiting) */
    isim_serve_result *res;
    /* request i's tokens are [tok_at[i], tok_at[i + 1]) of generated (greedy ids) and
     * token_s (when each came out, seconds from the first arrival): its inter-token gaps
     * are the differences */
    size_t *tok_at;
    int *generated;
    double *token_s;
    /* the warm-up: tokens per second of one pass of the token budget's prompt tokens, the
     * engine's best rate, from which the run's least time was estimated */
    double warm_tokens_per_s;
    /* the share of the machine's CPU time that other programs and the hypervisor (steal)
     * took while the requests were served, 0 to 1 (NAN where /proc/stat cannot be read): a
     * machine shared with other work serves slower than one its profile measured alone */
    double others_cpu_share;
} isim_rt_serving;
void isim_rt_serving_release(isim_rt_serving *s);

/* Serves the requests of t on this engine (one process) as the simulator's scheduler
 * (sim/serve.c) would: the requests isim_serve_draw gives for t and s, request i's prompt
 * isim_rt_random_prompt(t->seed, i, its input tokens, the vocabulary); arrivals at their
 * wall-clock times (the loop sleeps while idle; a closed loop's next request arrives when
 * one ends); each pass one forward pass of decode tokens (decodes first), then chunks of
 * started prompts, then admissions in arrival order, within s->token_budget tokens and
 * s->max_seqs sequences, admitted while s->kv_tokens holds their blocks of s->block_tokens,
 * the latest admitted preempted and recomputed when the cache cannot grow; greedy sampling.
 * Every field of s must be set (no defaults here), max_seqs within the engine's max_batch;
 * t's prefix-cache hit rate 0 (the engine has none). ISIM_EINVAL, before any request runs,
 * for traffic the simulator refuses, a request longer than the engine's context, open-loop
 * arrivals spanning more than max_s (0: ISIM_RT_SERVE_MAX_S) or requests that need more
 * than that at the warm-up's rate; and if the run passes max_s. */
isim_status isim_rt_serve(isim_rt *rt, const isim_sched *s, const isim_traffic *t, double max_s,
                          isim_rt_serving *out, isim_error *err);

/* ---- measuring the machine (infersim calibrate; docs/validation.md) ------------------- */

/* A repeated measurement: the best, the median and the worst of `runs` (for rates the best
 * is the highest, for times the lowest), and the mean of the middle runs (a tenth of them,
 * at least one, left out at each end from 3 runs on; for rates the rate of the mean time):
 * on a machine whose rate moves between states, what a long run averages. */
typedef struct isim_rt_stat {
    double best, median, worst, mean;
    int runs;
} isim_rt_stat;

/* The statistics of n measurements (v is sorted in place; n >= 1); rate: higher is better. */
isim_rt_stat isim_rt_summarize(double *v, int n, bool rate);

/* The machine's CPU time from the first line of /proc/stat ("cpu  user nice system idle
 * iowait irq softirq steal guest guest_nice", in ticks of tick_s seconds; proc(5)): busy =
 * user + nice + system + irq + softirq + steal (guest time is counted in user), total = busy
 * + idle + iowait, seconds summed over the CPUs. false if the line is not such a line. */
bool isim_rt_parse_cpu_times(const char *line, double tick_s, double *busy_s, double *total_s);

#define ISIM_RT_CAL_ROWS 16
/* the row counts calibrate's matmuls are measured at: powers of two and their halfway
 * points, and 13 and 25, one row past one and two tiles of the AVX-512 kernel's 12, so
 * that a fit sees where a tile opens (docs/validation.md) */
extern const int isim_rt_cal_rows[ISIM_RT_CAL_ROWS];

typedef struct isim_rt_calibration {
    const char *kernels; /* the kernel set measured */
    int threads;
    double load_1min;                  /* /proc/loadavg when the measurements began */
    double others_cpu_share; /* the share of the machine's CPU time that other programs and
                                the hypervisor (steal) took while the measurements ran, 0 to 1;
                                NAN where /proc/stat cannot be read */
    isim_rt_stat read_bytes_per_s;     /* a sum over 1 GiB in huge pages, every thread */
    isim_rt_stat peak_fp32, peak_bf16; /* FLOP/s on registers, sampled through the whole
                                          calibration (what the profile holds) */
    isim_rt_stat peak_burst_fp32, peak_burst_bf16; /* the same, runs in one burst at the start */
    int rows[ISIM_RT_CAL_ROWS];                    /* matmul rows measured */
    isim_rt_stat mm_fp32[ISIM_RT_CAL_ROWS], mm_bf16[ISIM_RT_CAL_ROWS]; /* FLOP/s, weights
                                                                      in cache */
    /* the sweep from memory: a layer of the mid-size model's matmuls (n outputs x k inputs
     * each), one after the other as a decode step runs them */
    int big_mats; /* matmuls in a layer */
    size_t big_n[4], big_k[4];
    isim_rt_stat big_fp32[ISIM_RT_CAL_ROWS],
        big_bf16[ISIM_RT_CAL_ROWS]; /* seconds of a
     layer's matmuls in the pass, weights streamed from memory */
    isim_rt_stat sweep_stream_fp32,
        sweep_stream_bf16;                         /* the rate below, sampled between
                                          the sweep's rounds: what its curve is fitted against */
    isim_rt_stat sweep_peak_fp32, sweep_peak_bf16; /* the peak, sampled between the sweep's
                                  rounds: what its curve's efficiency is a fraction of */
    isim_rt_stat stream_fp32, stream_bf16;         /* bytes/s of weights one-row matmuls read from
                                                      DRAM (the decode case), sampled through the whole
                                                      calibration */
    isim_rt_stat stream_thread_bf16;               /* the same bf16 on one thread (a rank of one
                                                      thread running alone), sampled with it */
    isim_rt_stat attention_flops; /* the attention kernel, fp32 cache, 1K positions */
    isim_rt_stat kv_stream_bf16, kv_stream_fp32; /* bytes/s of KV cache the attention kernel
                                    reads from memory: decode, 4 queries per head, 2K positions,
                                    every thread; sampled with the streaming rates */
    isim_rt_stat dispatch_s;                     /* handing an empty task to every thread */
    double dispatches_per_layer;                 /* tasks handed out per layer of a decode step */
    isim_rt_stat layer_s;                        /* a small model's decode step, per layer */
    isim_rt_stat step_overhead_s;                /* a decode step less its layers */
} isim_rt_calibration;

/* The matmul efficiency curve fitted to a calibration's layer sweep from memory
 * (docs/validation.md): x = {flops (at most 1), full rows, overlap, tile rows}, the first three
 * fitted (GSL Levenberg-Marquardt) to the fp32 and/or bf16 sweep's times against the rates and
 * peaks sampled between its rounds (flops a fraction of that peak); *rms the relative rms of the
 * fit. The tile's rows are `tile` when it is 0 or more (0: one tile), else the row count of the
 * sweep below its largest whose fit has the least rms, by more than 1% (0, one tile, if none).
 * isim_rt_curve_time is the model's time of one layer's matmuls at row count c->rows[i] at
 * bandwidth bw (isim_matmul_tiles, isim_overlap_time); isim_rt_sweep_params the weights of one
 * layer (the sum of n k). */
isim_status isim_rt_fit_curve(const isim_rt_calibration *c, bool fp32, bool bf16, double tile,
                              double x[4], double *rms, isim_error *err);
double isim_rt_curve_time(const isim_rt_calibration *c, bool bf16, int i, const double x[4],
                          double bw);
double isim_rt_sweep_params(const isim_rt_calibration *c);

/* Runs the microbenchmarks of the calibration on this process's threads (0: one per CPU),
 * `runs` times each (at least 3). `small` and `mid` are models whose shapes the per-layer
 * and per-step measurements use (a copy with 1 and 2 layers of each is built): a small
 * model (stories260k) for the step's fixed cost, a mid-size one (llama-3.2-1b) for the
 * tasks a layer hands out and the shapes of the matmul sweep from memory. */
isim_status isim_rt_calibrate(int threads, int runs, const char *kernels, const isim_model *small,
                              const isim_model *mid, isim_rt_calibration *out, isim_error *err);

/* Under mpirun, on every rank: the time of an all-reduce of sizes[i] bytes of floats over
 * the world (out[i]: seconds, the best the lowest), `runs` times each. */
isim_status isim_rt_measure_allreduce(const size_t *sizes, int n, int runs, isim_rt_stat *out,
                                      isim_error *err);

/* The rate the engine streams weights now: a one-row bf16 matmul over 256 MB on every
 * thread (the decode case), `runs` (1 to 64) summarised as calibrate summarises the
 * profile's bandwidth (the rate of the middle runs' mean time; of 3, the median), in
 * bytes/s. The probe holds its matrix. */
typedef struct isim_rt_stream_probe isim_rt_stream_probe;
isim_status isim_rt_stream_probe_new(int threads, isim_rt_stream_probe **out, isim_error *err);
double isim_rt_stream_probe_run(isim_rt_stream_probe *p, int runs);
/* The bf16 FLOP/s of the engine's peak kernel on the probe's threads (calibrate's
 * compute.bf16_tflops measurement, about 5 ms a run), `runs` summarised as the streaming
 * rate is (of 3, the median). */
double isim_rt_stream_probe_peak(isim_rt_stream_probe *p, int runs);
void isim_rt_stream_probe_free(isim_rt_stream_probe *p);

/* For measuring decode at long contexts without computing the prompts: slot s holds pos
 * tokens from now on (whatever its cache holds). */
void isim_rt_set_position(isim_rt *rt, int slot, int pos);

/* ---- checking ------------------------------------------------------------------------ */

/* Writes the weights as the engine computes with them (bf16 and int8 dequantized) to
 * path.bin, fp32 little-endian, and their names, shapes and offsets with the model's
 * shape to path.json: what an independent reference needs to compute the same forward
 * pass. One process only (tp = pp = 1). */
isim_status isim_rt_export(const isim_rt *rt, const char *path, isim_error *err);

#endif
