/* infersim analytical simulator: the public contract.
 *
 * Specifications (models/ID.yaml, hw-profiles/ID.yaml) are loaded into immutable structs;
 * isim_predict() splits one decode step and one prefill into arithmetic, HBM, network and
 * fixed-latency time (docs/model.md) in one of two fidelities:
 *   ISIM_PAPER  - Erdil 2025 (arXiv:2506.04645) as its released code c2c4fa9 computes it;
 *   ISIM_DEPLOY - whole devices, Megatron TP, PP with bubbles, EP, exact memory.
 * The library never prints, exits or aborts. Fallible functions return an isim_status and
 * fill an isim_error (which may be NULL) with file:line:column for bad input. */
#ifndef ISIM_SIM_H
#define ISIM_SIM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- status and errors ------------------------------------------------------------ */

#define ISIM_STATUS_LIST(X)                                                                        \
    X(OK, "success")                                                                               \
    X(ENOMEM, "out of memory")                                                                     \
    X(EIO, "cannot read file")                                                                     \
    X(EPARSE, "malformed YAML")                                                                    \
    X(ESCHEMA, "invalid specification")                                                            \
    X(EINVAL, "invalid argument")                                                                  \
    X(ENOTFOUND, "not found")

typedef enum {
#define ISIM_X(name, msg) ISIM_##name,
    ISIM_STATUS_LIST(ISIM_X)
#undef ISIM_X
        ISIM_STATUS_COUNT
} isim_status;

const char *isim_status_name(isim_status s); /* "ISIM_ESCHEMA" */
const char *isim_strerror(isim_status s);    /* "invalid specification" */

/* Detail of a failure. file is empty and line/column are 0 when the error is not tied
 * to a place in a file. Lines and columns count from 1. */
typedef struct isim_error {
    isim_status code;
    char file[512];
    int line;
    int column;
    char message[768];
} isim_error;

/* Writes "file:line:col: message" (or just "message") into buf; returns buf. */
const char *isim_error_format(const isim_error *e, char *buf, size_t n);
/* Fills e (when not NULL) and returns code: the one place every module's errors are written.
 * file may be NULL or "" (no place). A path too long for e->file keeps its end behind "...",
 * a message too long for e->message its start and its end (a reason after a long path)
 * around " ... ": never cut unmarked. */
isim_status isim_error_set(isim_error *e, isim_status code, const char *file, int line, int column,
                           const char *fmt, ...) __attribute__((format(printf, 6, 7)));
isim_status isim_error_setv(isim_error *e, isim_status code, const char *file, int line, int column,
                            const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));

/* Limits on a YAML file (model, hardware profile, scenario; docs/limits.md). Past each the
 * file is refused with its place. The largest shipped file holds 5.4 KB and its largest
 * mapping 18 keys: the limits leave room for any hand-written specification and keep a
 * hostile file from taking more than a fraction of a second or a few hundred MB. */
#define ISIM_YAML_MAX_BYTES (1 << 20) /* file size */
#define ISIM_YAML_MAX_KEYS 1024       /* keys in one mapping */
#define ISIM_YAML_MAX_ITEMS 65536     /* items in one list */
#define ISIM_YAML_MAX_SCALAR 65536    /* bytes in one value */
#define ISIM_YAML_MAX_DEPTH 32        /* mappings and lists nested in each other */
/* Bytes of a name (name:, vendor:, family:, aliases), a key, a catalog id, a scenario's sweep
 * or sensitivity path, lockstep name and value: what reports print in titles, labels and
 * table cells. The longest shipped is 31. */
#define ISIM_MAX_NAME 128
#define ISIM_SCENARIO_MAX_SWEEPS 64      /* sweeps of one scenario */
#define ISIM_SCENARIO_MAX_SENSITIVITY 64 /* inputs of one sensitivity chart */

/* ---- precisions ------------------------------------------------------------------- */

#define ISIM_DTYPE_LIST(X)                                                                         \
    X(FP32, "fp32", 4.0)                                                                           \
    X(BF16, "bf16", 2.0)                                                                           \
    X(FP16, "fp16", 2.0)                                                                           \
    X(FP8, "fp8", 1.0)                                                                             \
    X(INT8, "int8", 1.0)                                                                           \
    X(INT4, "int4", 0.5)                                                                           \
    X(FP4, "fp4", 0.5)

typedef enum {
#define ISIM_X(name, str, bytes) ISIM_##name,
    ISIM_DTYPE_LIST(ISIM_X)
#undef ISIM_X
        ISIM_DTYPE_COUNT
} isim_dtype;

const char *isim_dtype_name(isim_dtype t);
double isim_dtype_bytes(isim_dtype t);
/* Parses "bf16" etc.; returns ISIM_EINVAL for anything else. */
isim_status isim_dtype_parse(const char *s, isim_dtype *out);

/* ---- provenance ------------------------------------------------------------------- */

/* One number of a specification with where it came from. Strings are owned by the
 * specification that holds the fact. */
typedef struct isim_fact {
    const char *path;   /* key path, e.g. "memory.capacity_gb" */
    double value;       /* as written, in the unit of the key */
    const char *source; /* the source that covers it */
    int line, column;
} isim_fact;

/* ---- what-if overrides ------------------------------------------------------------ */

/* A change to one value of a specification file, applied before it is validated, so a
 * what-if value meets the same checks as a written one. path is a key path into the file
 * ("scale_up.bandwidth_gbps", "collectives.protocols.LL.base_us"; for a value written in
 * the long form {value, source} the path names the key, not 'value'). With scale > 0 the
 * number there is multiplied by it; otherwise it becomes `value` (text as YAML would hold
 * it). A number that changes is recorded with `source` as its source. Missing keys are
 * created (the schema then refuses the ones it does not know). file/line/column say where
 * the change was written: every error about it points there. Strings are borrowed. */
typedef struct isim_override {
    const char *path;
    const char *value;
    double scale;
    const char *source;
    const char *file;
    int line, column;
} isim_override;

/* ---- models ----------------------------------------------------------------------- */

typedef enum { ISIM_FFN_SWIGLU, ISIM_FFN_GELU } isim_ffn;
typedef enum { ISIM_NORM_RMS, ISIM_NORM_LAYER } isim_norm;
typedef enum { ISIM_POS_ROPE, ISIM_POS_LEARNED } isim_position;

#define ISIM_MAX_PATTERN 16

/* Quantities derived from the architecture (docs/model.md, "Parameter counts"). Counts
 * are exact integers held in doubles (exact below 2^53). */
typedef struct isim_model_derived {
    double attn_params_layer;    /* attention matrices (+biases, q/k norms) of one layer */
    double kv_proj_params_layer; /* of which the K and V projections (GQA; 0 for MLA) */
    double norm_params_layer;    /* the two norms of one layer */
    double dense_ffn_params;     /* one dense FFN block (width d_ff) */
    double expert_params;        /* one routed expert (width expert_d_ff) */
    double shared_expert_params; /* one shared expert */
    double router_params_layer;  /* router of one MoE layer */
    int64_t n_dense_layers;      /* layers with a dense FFN */
    int64_t n_moe_layers;        /* layers with a MoE FFN */
    int64_t n_sliding_layers;    /* layers with local attention */
    double embedding_params;     /* input embedding (+ learned positions) */
    double unembedding_params;   /* output classifier; 0 when tied */
    double final_norm_params;
    double params_total;
    double params_active; /* per token; MoE: n_active routed experts per layer */
    double
        kv_elems_per_token_layer; /* K+V elements cached per token per layer (MLA: latent+rope) */
    double qk_head_dim;           /* per-head q.k width (MLA: head_dim + rope_head_dim) */
    double v_head_dim;            /* per-head value width */
} isim_model_derived;

typedef struct isim_model {
    char *id;   /* file stem */
    char *path; /* file it was loaded from */
    char *name;
    char *family;
    char **aliases; /* other names (hub repositories, datasets' spellings), NULL-terminated;
                       NULL when none */
    /* architecture */
    int64_t d_model, n_layers, n_heads, n_kv_heads, head_dim, d_ff, vocab, max_context;
    isim_ffn ffn;
    isim_norm norm;
    isim_position position;
    bool tied_embeddings, attn_bias, mlp_bias, qk_norm;
    double rope_theta, norm_eps; /* RoPE base (10000) and the norms' epsilon (1e-5) */
    /* mixture of experts (has_moe false: all fields 0) */
    bool has_moe;
    int64_t n_experts, n_active_experts, n_shared_experts, expert_d_ff, shared_expert_d_ff,
        first_dense_layers;
    bool router_bias;
    /* multi-head latent attention */
    bool has_mla;
    int64_t kv_lora_rank, q_lora_rank, rope_head_dim, mla_v_head_dim;
    /* sliding window: window 0 = none; pattern[i % pattern_len] true = layer i is local */
    int64_t window;
    int pattern_len;
    bool pattern[ISIM_MAX_PATTERN];
    isim_dtype release_weights;
    double declared_total, declared_active; /* declared_active 0 for dense models */
    bool active_counts_input_embedding, active_counts_output_embedding;
    isim_model_derived d;
    size_t n_facts;
    isim_fact *facts; /* every number with its source */
} isim_model;

/* Loads and validates one model file; the id is the file stem. On success *out owns
 * everything and is released with isim_model_free(). */
isim_status isim_model_load(const char *path, isim_model **out, isim_error *err);
/* The same with n overrides applied first (docs/scenarios.md). */
isim_status isim_model_load_with(const char *path, const isim_override *ov, size_t n,
                                 isim_model **out, isim_error *err);
void isim_model_free(isim_model *m); /* NULL is a no-op */

/* Bytes of KV cache one sequence of `context` tokens holds (sliding layers hold at most
 * `window` tokens). */
double isim_model_kv_bytes(const isim_model *m, double context, isim_dtype kv);
/* Whether a sequence of input + output tokens fits the model's context (max_context). When
 * it does not, why (n bytes; may be NULL) receives "1000000 in + 1000 out = 1001000 tokens of
 * context exceed Llama 3.1 8B's 131072", with "the draft " before the name when `draft`. */
bool isim_model_context_fits(const isim_model *m, double input_tokens, double output_tokens,
                             bool draft, char *why, size_t n);
/* Parameters the publisher would count as active, following declared conventions. */
double isim_model_active_as_declared(const isim_model *m);
/* Forward FLOPs of one token at `context` earlier tokens: 2 x active matmul parameters
 * (without the embedding lookup) + attention scores and values. */
double isim_model_flops_per_token(const isim_model *m, double context);

/* ---- hardware --------------------------------------------------------------------- */

typedef enum { ISIM_HW_GPU, ISIM_HW_TPU, ISIM_HW_LPU, ISIM_HW_CPU, ISIM_HW_ACCEL } isim_hw_kind;
typedef enum { ISIM_COLL_NCCL, ISIM_COLL_FLAT } isim_coll_model;

/* One NCCL protocol's latency and bandwidth parameters (seconds). */
typedef struct isim_protocol {
    char name[8];
    double base_s, per_rank_s, per_node_log2_s, bandwidth_factor;
} isim_protocol;

/* Parameters of the deploy fidelity fitted to measurements of one serving engine on the
 * device (docs/validation.md): they replace the profile's own values. */
#define ISIM_MAX_FITS 8
enum {
    ISIM_FIT_FLOPS,
    ISIM_FIT_HBM,
    ISIM_FIT_HBM_FP4,
    ISIM_FIT_HBM_INT4,
    ISIM_FIT_HBM_EXPERTS,
    ISIM_FIT_FULL_ROWS,
    ISIM_FIT_STEP,
    ISIM_FIT_REQUEST,
    ISIM_FIT_LAUNCH
};
typedef struct isim_hw_fit {
    char backend[24];                 /* "all": every engine measured together */
    double eff_flops, eff_hbm;        /* as isim_hw's */
    double eff_hbm_fp4, eff_hbm_int4; /* as isim_hw's; 0 = eff_hbm */
    double eff_hbm_experts;           /* as isim_hw's; 0 = eff_hbm */
    double eff_flops_full_rows;
    double step_overhead_s;
    double request_overhead_s; /* added to each request's TTFT */
    double kernel_launch_s;
    double coll_latency_scale;                            /* factor on the collectives' latencies */
    double a2a_latency_scale;                             /* and on all-to-all's besides */
    double train_rows, heldout_rows;                      /* as written by the fit; 0 = not said */
    double heldout_tpot_median_pct, heldout_tpot_p90_pct; /* held-out |error| of TPOT */
    isim_dtype kv;   /* the KV-cache precision the engine ran (informative) */
    double lockstep; /* share of a closed-loop benchmark's fixed-length requests that
                        stay in lock-step: prompts prefilled together, then decoded
                        together (the engine's scheduler; docs/validation.md) */
} isim_hw_fit;

typedef struct isim_hw {
    char *id, *path, *name, *vendor;
    char **aliases; /* other names (datasets' spellings), NULL-terminated; NULL when none */
    isim_hw_kind kind;
    double peak_flops[ISIM_DTYPE_COUNT]; /* FLOP/s (OP/s for integers); 0 = no such rate */
    double eff_flops, eff_hbm;           /* sustained fraction of peak */
    double eff_hbm_fp4, eff_hbm_int4;    /* deploy: fraction of peak bandwidth at which fp4
                                            (W4A4) and int4 (W4A16) weights stream; 0 = eff_hbm */
    double eff_hbm_experts;              /* deploy: fraction of peak bandwidth at which routed
                                            experts' 8/16-bit weights stream; 0 = eff_hbm */
    double eff_hbm_kv;                   /* deploy: fraction of peak bandwidth at which the
                                            attention kernel reads the KV cache; 0 = eff_hbm */
    double eff_flops_full_rows;          /* deploy: matmul efficiency eff_flops min(1, r / this)
                                            for r rows in a pass (in a tile); 0 = flat */
    double eff_tile_rows;                /* deploy: rows of a matmul's tile: the first tile's
                                            arithmetic overlaps the weights' streaming, the
                                            others' runs after it from cache; 0 = one tile */
    double eff_attention;                /* deploy: attention's fraction of the 16-bit rate;
                                            eff_flops unless the profile says */
    double eff_overlap;                  /* deploy: share of the shorter of a kernel's
                                            arithmetic and traffic not hidden by the longer; 0 */
    bool attention_follows_flops;        /* eff_attention not written: it is eff_flops */
    double mem_bytes, mem_bytes_per_s;
    double mem_thread_bytes_per_s;  /* what one thread streams alone; 0 = not measured */
    double mem_machine_bytes_per_s; /* ranks sharing one machine (isim_hw_rank_share): the
                                       machine's bandwidth, split among the ranks streaming at
                                       once; 0 = the device's own (every catalog profile) */
    int64_t domain_size;            /* devices in one scale-up domain */
    double scale_up_bytes_per_s;    /* per device, per direction */
    double scale_out_bytes_per_s;   /* per device, per direction */
    isim_coll_model coll_model;
    int n_protocols;
    isim_protocol protocols[3];
    double flat_per_rank_s;
    double coll_latency_scale; /* factor on every collective latency; 1 */
    double a2a_latency_scale;  /* and on all-to-all's besides; 1 */
    double kernel_launch_s;
    bool has_power;
    double tdp_w;
    double cloud_usd_per_h;
    bool has_purchase;
    double purchase_usd, life_years;
    bool has_serving;
    double mem_utilization, runtime_reserve_bytes, step_overhead_s, kernels_per_layer,
        prefill_chunk_tokens;
    double request_overhead_s;    /* a request's own fixed time to its first token (API server,
                                     tokenizer, scheduling, streaming); 0 unless written */
    double activation_bytes;      /* bytes of an activation value in the engine; 2 unless written */
    double max_running_sequences; /* the engine's default limit on running sequences per
                                     data-parallel group (vLLM's max_num_seqs); 0 unless
                                     written */
    /* fits to measured serving data (the profile's `fitted:` section): fits[0] is the one
     * over every engine ("all"), already applied to the fields above; the others are one
     * engine's each, applied when a query names its backend */
    size_t n_fits;
    isim_hw_fit fits[ISIM_MAX_FITS];
    isim_hw_fit unfitted; /* the profile's own values of the fitted fields */
    /* what the fits came from; "" when none */
    char fitted_dataset[ISIM_MAX_NAME + 1], fitted_date[ISIM_MAX_NAME + 1];
    unsigned pinned; /* fitted fields a what-if set (1 << ISIM_FIT_...): fits leave them */
    size_t n_facts;
    isim_fact *facts;
} isim_hw;

isim_status isim_hw_load(const char *path, isim_hw **out, isim_error *err);
isim_status isim_hw_load_with(const char *path, const isim_override *ov, size_t n, isim_hw **out,
                              isim_error *err);
void isim_hw_free(isim_hw *h);
/* *out becomes a copy of h (sharing its strings and facts: it lives no longer than h) with
 * fit f's values in place of its own. */
void isim_hw_apply_fit(const isim_hw *h, const isim_hw_fit *f, isim_hw *out);
/* *out becomes one rank's share of h when `ranks` ranks of one thread each split the
 * machine h describes as one device (the CPU engine's TP and PP ranks under mpirun on one
 * machine), `streaming` of them reading memory at once (TP: all; PP: as many stages as stream
 * together; ISIM_PP_STEPWISE counts them itself, wavefront by wavefront): a 1/ranks share of the
 * arithmetic and the memory, no task hand-off, and the bandwidth split among the streaming ranks
 * but no more than one thread streams alone (mem_thread_bytes_per_s, when measured);
 * mem_machine_bytes_per_s keeps the machine's, for a schedule whose number of streaming stages
 * changes within a step (ISIM_PP_STEPWISE). ranks <= 1: a copy of h. */
void isim_hw_rank_share(const isim_hw *h, int ranks, int streaming, isim_hw *out);
/* The fit of h for serving engine `backend`; NULL when the profile has none. */
const isim_hw_fit *isim_hw_fit_for(const isim_hw *h, const char *backend);

/* ---- catalog: files under a data directory ----------------------------------------- */

/* Lists the ids (file stems of *.yaml) under dir/sub, sorted. *ids is a NULL-terminated
 * array freed with isim_ids_free(). */
isim_status isim_catalog_list(const char *dir, const char *sub, char ***ids, isim_error *err);
void isim_ids_free(char **ids);
/* Loads dir/models/<id>.yaml or dir/hw-profiles/<id>.yaml; ISIM_ENOTFOUND if absent. */
isim_status isim_catalog_model(const char *dir, const char *id, isim_model **out, isim_error *err);
isim_status isim_catalog_hw(const char *dir, const char *id, isim_hw **out, isim_error *err);
/* Where dir/models/<id>.yaml (kind "model"), dir/hw-profiles/<id>.yaml (kind "hw") or
 * dir/scenarios/<id>.yaml (kind "scenario") is; ISIM_ENOTFOUND with close matches suggested
 * if absent. */
isim_status isim_catalog_path(const char *dir, const char *kind, const char *id, char *path,
                              size_t size, isim_error *err);
/* The id of the model (kind "model") or hardware profile (kind "hw") under dir whose id or
 * one of whose aliases is `name`, compared without regard to case; ISIM_ENOTFOUND if
 * none. */
isim_status isim_catalog_find(const char *dir, const char *kind, const char *name, char *id,
                              size_t size, isim_error *err);
/* Levenshtein distance of two strings, for "did you mean"; strings of 128 characters or
 * more count as far apart (1000). */
size_t isim_edit_distance(const char *a, const char *b);

typedef enum { ISIM_PAPER, ISIM_DEPLOY } isim_fidelity;
const char *isim_fidelity_name(isim_fidelity f);

/* ---- collectives ------------------------------------------------------------------- */

typedef enum { ISIM_ALL_REDUCE, ISIM_ALL_TO_ALL, ISIM_P2P } isim_coll;

/* Time of one collective over `ranks` ranks spread on `nodes` scale-up domains, `bytes` per
 * rank (the message, for ISIM_P2P). The fastest protocol of the profile is taken; its
 * latency and bandwidth parts come back separately, 0 for ranks <= 1. ISIM_PAPER uses the
 * released code's bandwidth term for every kind; ISIM_DEPLOY charges all-to-all and
 * point-to-point traffic on the links that really carry it (docs/model.md, "Collectives"). */
void isim_collective_time(const isim_hw *hw, isim_fidelity f, isim_coll kind, double ranks,
                          double nodes, double bytes, double *latency_s, double *bandwidth_s);

/* ---- the step model ---------------------------------------------------------------- */

typedef enum {
    ISIM_TERM_ARITHMETIC,
    ISIM_TERM_HBM,
    ISIM_TERM_NETWORK,
    ISIM_TERM_FIXED,
    ISIM_TERM_COUNT
} isim_term;
const char *isim_term_name(isim_term t); /* "arithmetic", "hbm", "network", "fixed" */

/* The four terms of one pass, in seconds, and how they combine:
 * total_s = fixed + network + max(arithmetic, hbm) (docs/model.md, "Overlap"). */
typedef struct isim_terms {
    double t[ISIM_TERM_COUNT];
    double total_s;
    isim_term binding; /* the term that contributes most to total_s */
    /* deploy fidelity: the matmul kernels' and the attention core's time, each the larger
     * of its arithmetic and its memory traffic (docs/model.md, "Overlap"); 0 in paper */
    double matmul_s, attention_s;
    /* deploy fidelity: the element-wise kernels (norms, residual adds, the FFN's activation),
     * their activation traffic at the bandwidth, not hidden by the matmuls; 0 in paper */
    double elementwise_s;
} isim_terms;

/* How a pipeline's micro-batches follow one another from step to step. INTERLEAVED: a
 * serving engine keeps pp micro-batches in flight across steps (a micro-batch's next step
 * starts on the first stage while the others are on later stages): a decode cycle is the
 * slowest stage's time per micro-batch, and the classifier runs per micro-batch. STEPWISE:
 * each step's micro-batches fill and drain the pipeline before the next step starts, and
 * the last stage runs the classifier once over all of them (the CPU engine,
 * runtime/cpu/forward.c). */
typedef enum { ISIM_PP_INTERLEAVED, ISIM_PP_STEPWISE } isim_pp_schedule;
const char *isim_pp_schedule_name(isim_pp_schedule s); /* "interleaved", "stepwise" */

/* What to predict. isim_query_init() sets the defaults noted here. */
typedef struct isim_query {
    isim_fidelity fidelity;       /* ISIM_DEPLOY */
    double devices;               /* > 0; whole in deploy fidelity */
    double batch;                 /* sequences decoded together, >= 1 */
    double input_tokens;          /* prompt tokens per sequence, >= 0 */
    double output_tokens;         /* generated tokens per sequence, >= 1 */
    int tp, pp, ep;               /* 0 = chosen (paper: searched as the released code does) */
    isim_dtype weights;           /* ISIM_DTYPE_COUNT = the model's release precision */
    isim_dtype kv;                /* ISIM_BF16 */
    const isim_model *draft;      /* speculative decoding draft; NULL = none */
    isim_dtype draft_weights;     /* ISIM_BF16 (the paper keeps 16-bit drafts) */
    double spec_alpha;            /* acceptance probability, 0 < a < 1 */
    int spec_gamma;               /* draft tokens per step; 0 = the best of 2 (paper) or 1
                                     (deploy) up to spec_gamma_max, or plain decoding */
    int spec_gamma_max;           /* 5, as in the released code's pareto_fronts */
    bool allow_cross_domain_tp;   /* deploy: TP may span scale-up domains */
    double prefix_hit_rate;       /* share of each prompt already in the prefix cache, [0, 1):
                                     its KV is held but not computed again; 0 */
    double usd_per_device_h;      /* price of a device-hour for the cost figures; 0 = the
                                     profile's cloud price (a scenario's cost model sets it) */
    const char *backend;          /* deploy: the serving engine whose fitted parameters the
                                     profile holds (its `fitted:` section); NULL = the profile's
                                     values as loaded */
    isim_pp_schedule pp_schedule; /* deploy: ISIM_PP_INTERLEAVED */
} isim_query;

void isim_query_init(isim_query *q);

#define ISIM_REASON_LIST(X)                                                                        \
    X(NONE, "none", "feasible")                                                                    \
    X(MEMORY, "memory", "does not fit in memory")                                                  \
    X(NO_RATE, "no_rate", "no arithmetic rate for the precision")                                  \
    X(TP_HEADS, "tp_heads", "tensor parallelism does not divide the attention heads")              \
    X(TP_DOMAIN, "tp_domain", "tensor parallelism exceeds the scale-up domain")                    \
    X(PP_LAYERS, "pp_layers", "more pipeline stages than layers, devices or sequences")            \
    X(LAYOUT, "layout", "devices do not factor into tp x pp x dp")                                 \
    X(EP_EXPERTS, "ep_experts", "expert parallelism does not divide the experts")                  \
    X(DRAFT, "draft", "draft model unusable for speculative decoding")                             \
    X(NO_SERVING, "no_serving", "hardware profile lacks serving parameters")                       \
    X(CONTEXT, "context", "context longer than the model holds")

typedef enum {
#define ISIM_X(name, str, msg) ISIM_REASON_##name,
    ISIM_REASON_LIST(ISIM_X)
#undef ISIM_X
        ISIM_REASON_COUNT
} isim_reason;
const char *isim_reason_name(isim_reason r); /* "memory", "tp_heads", ... */
const char *isim_reason_text(isim_reason r);

/* Memory of the most loaded device, in bytes. */
typedef struct isim_memory {
    double weights, kv_cache, activations, reserve, total, capacity;
} isim_memory;

typedef struct isim_result {
    bool feasible;
    isim_reason reason;
    char reason_detail[256]; /* one line with the numbers behind the reason */
    isim_fidelity fidelity;
    isim_dtype weights, kv;
    /* layout: paper fidelity reports its continuous choices too */
    double devices;
    int tp, pp, ep, dp;
    double pp_paper;       /* paper: pipeline degree chosen (may be fractional) */
    bool two_d;            /* paper: 2-D tensor parallelism chosen */
    double attn_scaledown; /* paper: attention TP scale-down factor chosen */
    double micro_batches;  /* pipeline micro-batches */
    double pp_bubble;      /* deploy: idle fraction of pipeline stages */
    /* speculative decoding (spec_gamma 0 = plain decoding chosen or not requested) */
    int spec_gamma;
    double spec_tokens_per_step;
    isim_terms spec_target, spec_draft; /* one target verify pass and one draft pass */
    /* per output token (tpot) and per prefill (ttft) */
    isim_terms decode;
    isim_terms prefill;
    double tpot_s, ttft_s;
    /* deploy: wall time to prefill the prompts of every sequence of the batch (each data-
     * parallel group its own, chunk after chunk, engine overhead included) and the chunks
     * it takes; 0 in paper fidelity */
    double prefill_all_s, prefill_chunks;
    double tokens_per_s_per_user, tokens_per_s_per_device, tokens_per_s_total;
    double cost_usd_per_mtok_output, cost_usd_per_mtok_input;
    bool has_energy;
    double j_per_token_output, j_per_token_input;
    double mfu; /* model FLOPs of the generated tokens / (devices x peak x time) */
    isim_memory memory;
} isim_result;

/* Predicts one configuration. An infeasible configuration is not an error: the result
 * says feasible = false with a reason. A sequence longer than the model's max_context (or
 * the draft's) is infeasible for the reason ISIM_REASON_CONTEXT whatever else the layout
 * allows; its figures are still computed. ISIM_EINVAL for a query out of range. */
isim_status isim_predict(const isim_model *m, const isim_hw *hw, const isim_query *q,
                         isim_result *res, isim_error *err);

/* ---- the deploy fidelity's mixed step, for serving under traffic (sim/serve.h) ------- */

/* A configuration's layout and precisions resolved once, to time many passes. */
typedef struct isim_step_ctx isim_step_ctx;

/* One pass of a data-parallel group under continuous batching: decode_seqs sequences
 * generating one token each at a mean earlier context of decode_ctx, and prefill_tokens
 * prompt tokens of prefill_seqs sequences at a mean earlier context of prefill_ctx (the
 * tokens before the chunk and half the chunk), finishing of which end their prompt in this
 * pass (their first token's logits). One pass, not a decode step plus a prefill: the
 * weights stream once for all its tokens. */
typedef struct isim_step_mix {
    double decode_seqs, decode_ctx;
    double prefill_tokens, prefill_seqs, prefill_ctx, finishing;
} isim_step_mix;

/* isim_predict of q, then its step context (deploy fidelity, no draft: ISIM_EINVAL
 * otherwise). An infeasible configuration leaves *out NULL and res saying why; a static
 * batch too big for memory is not infeasible here (the simulator admits what the KV cache
 * holds) unless the weights leave no room for any KV cache. hw must outlive the context. */
isim_status isim_step_ctx_new(const isim_model *m, const isim_hw *hw, const isim_query *q,
                              isim_step_ctx **out, isim_result *res, isim_error *err);
void isim_step_ctx_free(isim_step_ctx *x);
int isim_step_dp(const isim_step_ctx *x);
double isim_step_devices(const isim_step_ctx *x); /* tp x pp x dp */
/* The KV cache one data-parallel group holds, in tokens (the memory model's room). */
double isim_step_kv_tokens(const isim_step_ctx *x);
/* The profile's prefill chunk (the engine's token budget per pass). */
double isim_step_chunk_tokens(const isim_step_ctx *x);
/* The pass's time in seconds, engine overhead included; its terms when terms is not NULL. */
double isim_step_time(const isim_step_ctx *x, const isim_step_mix *mix, isim_terms *terms);

/* fn(ctx, i) for every i < n, on `threads` threads (0: one per CPU, at most 64), each i
 * once, in no set order: for work whose items do not depend on each other. */
void isim_parallel_for(size_t n, int threads, void (*fn)(void *ctx, size_t i), void *ctx);

/* ---- the paper fidelity's inner loop, for search ----------------------------------- */

/* Constants of one (model, hardware, precision) triple precomputed for fast evaluation. */
typedef struct isim_paper_ctx isim_paper_ctx;

/* One candidate of the released code's new_token_latency_seconds. */
typedef struct isim_paper_point {
    double devices;        /* N_GPU, continuous */
    double batch;          /* sequences */
    double pp;             /* N_PP, continuous */
    double attn_scaledown; /* >= 1 */
    double seq_len;        /* tokens per sequence in this pass (1 = decode) */
    double input_len;      /* context length */
    bool two_d;
} isim_paper_point;

isim_status isim_paper_ctx_new(const isim_model *m, const isim_hw *hw, isim_dtype weights,
                               isim_dtype kv, isim_paper_ctx **out, isim_error *err);
void isim_paper_ctx_free(isim_paper_ctx *c);
/* Whether the profile has an arithmetic rate for the weights' width (else every point of
 * the context is infeasible). */
bool isim_paper_ctx_has_rate(const isim_paper_ctx *c);
/* Seconds for one pass of the point, INFINITY when infeasible; terms may be NULL. No
 * allocation. */
double isim_paper_step(const isim_paper_ctx *c, const isim_paper_point *p, isim_terms *terms);
/* Minimum over the released code's candidates (2-D/1-D, PP list unless pp > 0, six
 * attention scale-downs); *best (may be NULL) receives the winning point. */
double isim_paper_best(const isim_paper_ctx *c, double devices, double batch, double pp,
                       double seq_len, double input_len, isim_terms *terms, isim_paper_point *best);

/* The released code's pareto_fronts grid: the latency (seconds per token) at every
 * devices[i] x batch[j], minimised as new_token_latency_seconds does (2-D or 1-D, the PP
 * list when use_pp, six attention scale-downs) and, with a draft context, as
 * spec_dec_token_latency_seconds (plain or gamma = 2..spec_gamma_max). latency[j n_devices
 * + i]; INFINITY where infeasible; batches ascend. The values are isim_paper_best's (to
 * rounding); branch and bound skips the candidates that cannot win. */
typedef struct isim_paper_grid_query {
    const double *devices;
    size_t n_devices;
    const double *batch;
    size_t n_batch;
    double input_len;
    bool use_pp;
    const isim_paper_ctx *draft; /* NULL: no speculative decoding */
    double spec_alpha;
    int spec_gamma_max;
    int threads; /* rows computed in parallel; 0 = one per online CPU */
} isim_paper_grid_query;

#define ISIM_PAPER_GRID_MAX_THREADS 64

isim_status isim_paper_grid(const isim_paper_ctx *c, const isim_paper_grid_query *q,
                            double *latency, isim_error *err);

/* ---- scenarios (docs/scenarios.md) ------------------------------------------------ */

/* How a device-hour is priced: rented at the profile's cloud price, or owned (purchase
 * over its life, power x PUE x electricity, hosting). */
typedef enum { ISIM_COST_CLOUD, ISIM_COST_OWNED } isim_cost_model;
const char *isim_cost_model_name(isim_cost_model m); /* "cloud", "owned" */

/* Every setting of a scenario that is a single value; each can be swept by its path
 * (isim_scenario_set). Units as in the names; 0 for an optional setting means none. */
typedef struct isim_scenario_settings {
    double input_tokens, output_tokens; /* workload.input_tokens, workload.output_tokens */
    double request_rate_per_s;          /* workload.request_rate_per_s */
    double concurrency;                 /* workload.concurrency (sequences at once) */
    double prefix_cache_hit_rate;       /* workload.prefix_cache_hit_rate, [0, 1) */
    double ttft_ms, tpot_ms;            /* slo.ttft_ms, slo.tpot_ms */
    double min_tokens_per_s_per_user;   /* slo.min_tokens_per_s_per_user */
    double max_cost_usd_per_mtok;       /* slo.max_cost_usd_per_mtok */
    double percentile;  /* slo.percentile the SLOs hold at, simulated under the workload's
                           request rate; 0 (not stated): the static batch's figures */
    double max_devices; /* search.max_devices; 64 */
    double spec_alpha, spec_gamma_max; /* search.spec_alpha 0.8, search.spec_gamma_max 5 */
    double grid;                       /* search.grid (paper fidelity); 400 */
    double customer_alpha;             /* recommend.alpha; 3 */
    /* search.weights, search.kv: a sweep's single precision in place of the scenario's
     * lists; ISIM_DTYPE_COUNT = the lists as written */
    isim_dtype weights, kv;
    /* owned devices (docs/scenarios.md, "Cost models"): a device's IT load is its TDP x
     * server_power_factor (the server around it); it draws power_fraction_of_tdp of that
     * on average, times PUE, at the electricity price, and pays colocation on the load */
    isim_cost_model cost_model;         /* cost.model; cloud */
    double pue;                         /* cost.pue; 1 */
    double electricity_usd_per_kwh;     /* cost.electricity_usd_per_kwh; 0 */
    double colocation_usd_per_kw_month; /* cost.colocation_usd_per_kw_month; 0 */
    double server_power_factor;         /* cost.server_power_factor; 1 */
    double power_fraction_of_tdp;       /* cost.power_fraction_of_tdp; 1 */
} isim_scenario_settings;

/* A value as written, and where. */
typedef struct isim_scenario_value {
    char *text;
    int line, column;
} isim_scenario_value;

/* A sweep: the values one path takes ("workload.input_tokens", "cost.model",
 * "hw.h100-sxm.memory.bandwidth_gbps", "hw.*.kernel.launch_us", "model.<id>.<key path>");
 * a value "xF" multiplies the base. Sweeps with the same lockstep name advance together;
 * the others are crossed. */
typedef struct isim_scenario_sweep {
    char *path;
    char *lockstep; /* NULL: crossed */
    size_t n;
    isim_scenario_value *values;
    int line, column;
    int path_line, path_column; /* where the path was written */
} isim_scenario_sweep;

/* One input of the sensitivity (tornado) chart: its path and the low and high values. */
typedef struct isim_scenario_range {
    char *path;
    isim_scenario_value low, high;
    int line, column;
    int path_line, path_column; /* where the path was written */
} isim_scenario_range;

typedef struct isim_scenario {
    char *id, *path; /* file stem, path */
    char *name, *description;
    isim_fidelity fidelity;
    size_t n_models, n_hw;
    isim_scenario_value *models, *hw; /* catalog ids, where written; hw "all" for every
                                         profile */
    size_t n_weights, n_kv;
    isim_dtype *weights, *kv;               /* n = 0: the release precision; bf16 */
    char *spec_draft;                       /* NULL: no speculative decoding */
    int spec_draft_line, spec_draft_column; /* where spec_draft is written */
    isim_dtype spec_draft_weights;
    bool ttft_objective;
    size_t max_points; /* search.max_points; 10000 */
    isim_scenario_settings settings;
    size_t n_sweeps, n_sensitivity;
    isim_scenario_sweep *sweeps;
    isim_scenario_range *sensitivity; /* none given: the runner's default list */
    size_t n_facts;
    isim_fact *facts; /* every number with its source (the file's line where none) */
} isim_scenario;

/* Loads scenarios/<id>.yaml: checks its shape, its settings, the form of its sweeps and
 * sensitivity ranges and the ids their paths name (isim_scenario_path_spec over the
 * scenario's models and hardware; over the catalog's when the hardware is "all", which the
 * runner resolves); the keys the paths reach are checked by the runner, which loads the
 * specifications. */
isim_status isim_scenario_load(const char *path, isim_scenario **out, isim_error *err);
void isim_scenario_free(isim_scenario *s); /* NULL is a no-op */
/* Which of ids[0 .. n) (a scenario's models or hardware) a path "model.<id>.<key path>" or
 * "hw.<id>.<key path>" names: *index receives its index (ISIM_SCENARIO_EVERY for the id
 * "*") and *key the key path after it (a pointer into path). Ids may hold dots, so an id
 * fits when the path goes on with the whole id, a dot and a key path (its first part a
 * lowercase word, as every key of a specification is); ids are tried longest first, so an
 * id that is a prefix of another is not taken for it, and a path that two ids fit is
 * ambiguous. ISIM_ESCHEMA at file:line:column, naming the ids the path could have meant,
 * when no id or several fit. */
#define ISIM_SCENARIO_EVERY SIZE_MAX
isim_status isim_scenario_path_spec(const char *path, const char *const *ids, size_t n,
                                    size_t *index, const char **key, const char *file, int line,
                                    int column, isim_error *err);
/* Sets the setting at `path` from text as the file would hold it ("8k", "x0.5" to scale
 * the current value, "owned"), with the file's checks; errors at file:line:column. */
isim_status isim_scenario_set(isim_scenario_settings *s, const char *path, const char *text,
                              const char *file, int line, int column, isim_error *err);
/* The path of setting i ("workload.input_tokens", ...); NULL past the last. */
const char *isim_scenario_setting_path(size_t i);
/* Whether path names a setting (rather than a model or hardware value). */
bool isim_scenario_is_setting(const char *path);
/* The value of a setting, for reports (NAN for an unknown path; a choice or a precision as
 * its enum value). */
double isim_scenario_get(const isim_scenario_settings *s, const char *path);
/* Whether a setting is a number, rather than a choice (cost.model) or a precision
 * (search.weights, search.kv). */
bool isim_scenario_setting_is_number(const char *path);
/* A choice's or a precision's name ("owned", "fp8"); NULL for numbers and for a precision
 * left to the scenario's lists. */
const char *isim_scenario_setting_text(const isim_scenario_settings *s, const char *path);

/* ---- the toy model of Erdil 2025 §2.2 ------------------------------------------------ */

/* Eq. 3 with t_reduce = 2 (sqrt(N) - 1) t_hop (Eq. 5): seconds per token. */
double isim_toy_latency(double n_params, double bytes_per_param, double n_layers, double n_reduce,
                        double t_hop_s, double hbm_bytes_per_s, double flops_per_s, double batch,
                        double n_devices);

/* ---- the matmul kernel of the deploy fidelity (docs/model.md, "Matmul tiles") -------- */

/* A matmul of `rows` rows (tokens) whose weights stream from memory runs them in tiles of
 * `tile_rows` (0: one tile of all of them). *first receives the rows' worth of arithmetic
 * of the first tile, which overlaps the weights' streaming, *rest that of the others,
 * which run after it from cache. A tile of r rows costs max(r, full) rows (full 0: r),
 * except, in tiles (tile_rows > 0), the first, which costs r (its latency hidden under
 * memory). */
void isim_matmul_tiles(double rows, double full, double tile_rows, double *first, double *rest);
/* The time of a kernel whose arithmetic `a` overlaps its memory traffic `h` (all but
 * `overlap` x the shorter hidden under the longer), followed by `after` seconds of
 * arithmetic from cache: max(a, h) + overlap min(a, h) + after. */
double isim_overlap_time(double a, double h, double overlap, double after);

/* ---- fitting (docs/validation.md) ------------------------------------------------ */

/* Least squares of y = intercept + slope x over n points. */
isim_status isim_fit_line(const double *x, const double *y, size_t n, double *intercept,
                          double *slope, isim_error *err);

/* Fills r[0 .. n_residuals) for the parameters x[0 .. n_params). */
typedef void (*isim_fit_residuals)(const double *x, double *r, void *ctx);
/* Nonlinear least squares over positive parameters (their logarithms are what moves):
 * params holds the start and receives the fit; *rms (may be NULL) the residuals' root mean
 * square at the fit. Levenberg-Marquardt with geodesic acceleration (GSL). */
isim_status isim_fit_positive(size_t n_params, double *params, size_t n_residuals,
                              isim_fit_residuals fn, void *ctx, double *rms, isim_error *err);

#endif
