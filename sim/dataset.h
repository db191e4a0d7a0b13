/* Validation against public measured serving data (docs/validation.md): rows of TTFT and
 * TPOT measured under closed-loop concurrency on real engines, each predicted with the
 * deploy fidelity for the matching model and hardware profile, the profile's free
 * parameters fitted per hardware and backend on a training split, and the accuracy on the
 * rows held out. Never prints. */
#ifndef ISIM_DATASET_H
#define ISIM_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/sim.h"

/* The errors of predictions against measurements, in percent of the measurement:
 * median and 90th percentile of |predicted - measured| / measured, the median signed
 * error and the largest, over the n pairs with a positive measurement. */
typedef struct isim_accuracy {
    size_t n;
    double median_abs_pct, p90_abs_pct, median_pct, max_abs_pct;
} isim_accuracy;
/* ISIM_ENOMEM (out zeroed) when out of memory. */
isim_status isim_accuracy_of(const double *measured, const double *predicted, size_t n,
                             isim_accuracy *out);

/* One shape of workers: attention tp x pp x dp devices, experts over ep of them. */
typedef struct isim_ds_shape {
    int tp, pp, dp, ep;
    int batch;   /* sequences per worker */
    int workers; /* workers of this shape */
} isim_ds_shape;

/* The parts of a row's prediction: the decode step alone, one prompt's prefill passes, the
 * TTFT of a burst of every client at once and of the steady state. */
typedef struct isim_ds_parts {
    double step_s, prompt_s, burst_ttft_s, steady_ttft_s;
} isim_ds_parts;

typedef struct isim_ds_row {
    char id[200];
    int line; /* of the file where the row begins */
    char backend[24], system[24], model_path[96], precision[16];
    char source[256], version[48]; /* the measurement's origin (file or database dump:
                                      the column's text before its first ';') and the
                                      engine's version */
    bool disagg;
    bool inferencex; /* measured by InferenceX: lengths drawn in [0.8 L, L] */
    isim_dtype weights;
    int isl, osl;                  /* as labelled */
    int concurrency;               /* clients of the whole deployment */
    int replicas;                  /* agg: replicas behind a router sharing the clients (1) */
    int raw[8];                    /* agg tp, pp, attention dp, moe tp, moe ep, batch as written */
    isim_ds_shape agg;             /* aggregated serving: one replica of every device */
    isim_ds_shape prefill, decode; /* disaggregated serving */
    double ttft_s, tpot_s;         /* measured */
    int model, hw;                 /* indexes into the dataset's models and profiles, -1 */
    char skip[160];                /* why the row is not predicted; "" when it is */
    bool train;                    /* in the training split */
    int fit;                       /* index of the fit that predicts it, -1 */
    double pred_ttft_s, pred_tpot_s;   /* with the fit's parameters */
    isim_ds_parts parts;               /* of the prediction with the fit */
    double prior_ttft_s, prior_tpot_s; /* with the profile's own parameters */
    double sim_ttft_s, sim_tpot_s;     /* aggregated, with a fit of its own engine or
                                          hardware: the request simulator's with the fit
                                          (isim_dataset_simulate), TTFT with the API
                                          server's time; NAN otherwise */
    double sim_api_s;                  /* that API server's time, apart */
} isim_ds_row;

/* The fitted parameters of one hardware profile and backend ("all": every backend of
 * the hardware together). */
typedef struct isim_ds_fit {
    int hw;
    char backend[24];
    isim_hw_fit p;
    size_t n_train, n_heldout;
    double train_rms_log;   /* root mean square over the training rows of ln(predicted /
                               measured) TPOT through the fit's robust loss (soft-L1 at 10%):
                               what picks the KV precision */
    bool own;               /* fitted on its own rows; false: too few, the hardware's "all"
                               fit predicts them */
    double api_s_per_token; /* isim_dataset_simulate: the API server's time per prompt
                               token, fitted through the simulation within
                               [0, ISIM_DS_API_S_PER_TOKEN]; NAN before */
} isim_ds_fit;

typedef struct isim_dataset {
    char *path;
    char digest[24]; /* FNV-1a 64 of the file's bytes, hex */
    size_t n_rows;
    isim_ds_row *rows;
    size_t n_models, n_hw;
    isim_model **models;
    isim_hw **hw;
    size_t n_fits;
    isim_ds_fit *fits;
} isim_dataset;

/* The training split: a row is held out when the FNV-1a 64 hash of its id is 0 modulo
 * 5 (a fifth of the rows, the same on every run and machine). */
#define ISIM_DS_SPLIT_RULE "rows whose FNV-1a 64-bit hash of the id is 0 modulo 5 are held out"
bool isim_ds_heldout(const char *id);

/* Limits of the file (docs/validation.md, "The file"): they bound the memory (about 1 KB
 * a row) and the time of a fit (about 1 ms a row). A text column is limited by its field
 * in isim_ds_row. */
#define ISIM_DS_MAX_BYTES ((long long)128 << 20)
#define ISIM_DS_MAX_ROWS 200000
#define ISIM_DS_MAX_FIELDS 256       /* in a record */
#define ISIM_DS_MAX_FIELD_BYTES 4096 /* of a field as written, quotes included */
/* Ranges of the integer columns (digits only, 0 up to these; lengths from 1) and of the
 * products made of them, and of the measured times. */
#define ISIM_DS_MAX_TOKENS 10000000  /* isl, osl */
#define ISIM_DS_MAX_BATCH 1048576    /* batch columns */
#define ISIM_DS_MAX_DEGREE 4096      /* tp, pp, attention dp, moe tp, moe ep, workers */
#define ISIM_DS_MAX_CLIENTS 10000000 /* silicon_concurrency, and batch x dp (x workers) */
#define ISIM_DS_MIN_MS 0.001         /* silicon_ttft_ms, silicon_tpot_ms: a microsecond */
#define ISIM_DS_MAX_MS 86400000.0    /* and a day */

/* Reads the CSV (columns as in aiconfigurator's silicon_sample.csv: docs/validation.md)
 * and matches each row's model_path and system with a model and a hardware profile under
 * data_dir by id or alias. Rows that cannot be predicted stay, with `skip` saying why.
 * A malformed file, a value out of its range or past a limit above is refused with
 * file:line:column (the line of the file, the column in characters, of the field). */
isim_status isim_dataset_load(const char *csv_path, const char *data_dir, isim_dataset **out,
                              isim_error *err);
void isim_dataset_free(isim_dataset *d); /* NULL is a no-op */

/* The profile's own parameters as a fit (kv: bf16). */
void isim_ds_prior(const isim_hw *hw, isim_hw_fit *p);

/* Predicts one row with parameters p: TPOT and TTFT under the closed-loop concurrency of
 * the row (docs/validation.md, "Predicting a row"), and their parts (may be NULL). False
 * when the row's layout is impossible for the model (why says so). */
bool isim_ds_predict(const isim_dataset *d, const isim_ds_row *r, const isim_hw_fit *p,
                     double *ttft_s, double *tpot_s, isim_ds_parts *parts, char *why, size_t n);

/* The requests a row's simulation serves per replica at most (ten times its clients, or
 * its clients alone when they are more). */
#define ISIM_DS_SIM_REQUESTS 4096

/* Simulates an aggregated row as its benchmark ran it (sim/serve.h): its clients in a
 * closed loop, the first requests together, ten times the clients in all (at most
 * ISIM_DS_SIM_REQUESTS), InferenceX's lengths drawn in [0.8 L, L], the engine's running
 * limit its batch column, the KV cache of the memory model; the mean TTFT and TPOT over the
 * requests. Parameters p applied to the row's profile. False with why for a disaggregated
 * row (not simulated) or a layout the simulator cannot run. */
bool isim_ds_simulate(const isim_dataset *d, const isim_ds_row *r, const isim_hw_fit *p,
                      double *ttft_s, double *tpot_s, char *why, size_t n);
/* The API server's time per prompt token at most: a tokenizer measured at 10 to 21.5 us per
 * token of a chat-templated prompt (tenstorrent/tt-inference-server issue #2173, log of
 * 2026-02-22: 131 tokens in 1.32 to 2.82 ms). The time outside the passes is bounded by
 * it, not fitted free. */
#define ISIM_DS_API_S_PER_TOKEN 21.5e-6

/* After isim_dataset_fit: every aggregated row with a fit simulated with it
 * (isim_ds_simulate), each fit's API server time per prompt token fitted through those
 * simulations on its training rows (the median of the measured TTFT's excess over the
 * simulated, per prompt token, within [0, ISIM_DS_API_S_PER_TOKEN]), and each row's
 * simulated TTFT with that time added (sim_api_s apart). threads: 0 = one per CPU.
 * ISIM_ENOMEM when out of memory. */
isim_status isim_dataset_simulate(isim_dataset *d, int threads, isim_error *err);

/* Fits the parameters per (hardware, backend) on the training rows and predicts every
 * row: fills d->fits and each row's predictions. threads: 0 = one per CPU. */
isim_status isim_dataset_fit(isim_dataset *d, int threads, isim_error *err);

/* Writes the fits of hardware profile `hw` into its file under a top-level `fitted:` key
 * (replacing one written before), with the dataset, its digest and the split. */
isim_status isim_dataset_write_profile(const isim_dataset *d, size_t hw, const char *date,
                                       isim_error *err);

#endif
