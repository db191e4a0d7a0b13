/* infersim validate: predictions against measurements (docs/validation.md).
 *   --engine cpu --model ID   runs a grid of configurations on the CPU engine (one process,
 *                             and 2 ranks under mpirun for TP and PP) and the planner's
 *                             frontier points for the profile, and compares the step times,
 *                             TTFT and the split with the deploy fidelity's prediction for
 *                             this machine's measured profile (infersim calibrate);
 *   --dataset FILE            predicts every row of public serving measurements (see
 *                             cli/validate_dataset.c). */
#include "cli/cli.h"
#include "reports/report.h"
#include "runtime/runtime.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int cli_validate_dataset(int argc, char **argv, cli_opt *opts);
int cli_validate_serving(cli_opt *opts);
int cli_validate_profile(const char *data, const char *profile, isim_hw **hw);

/* The profile to predict with: an id of the catalog, or a file; the calibrated local-cpu
 * missing is named with the command that writes it. Prints the error. */
int cli_validate_profile(const char *data, const char *profile, isim_hw **hw)
{
    char ppath[1200];
    isim_error err = {0};
    bool given = strchr(profile, '/') || strstr(profile, ".yaml"); /* a path, used as it is */
    if (!given && isim_catalog_path(data, "hw", profile, ppath, sizeof ppath, &err)) {
        if (strcmp(profile, "local-cpu") != 0)
            return cli_error(&err);
        fprintf(stderr, "infersim: error: no profile of this machine yet: run `infersim calibrate "
                        "--engine cpu` first (it writes hw-profiles/local-cpu.yaml)\n");
        return CLI_FAIL;
    }
    if (isim_hw_load(given ? profile : ppath, hw, &err))
        return cli_error(&err);
    return CLI_OK;
}

static void help(const cli_opt *opts)
{
    printf(
        "usage: infersim validate --engine cpu --model ID [--profile ID|FILE] [-o DIR] [--json]\n"
        "       infersim validate --engine cpu --serving [--requests N] [-o DIR] [--json]\n"
        "       infersim validate --dataset FILE [-o DIR] [--json] [--write-profiles]\n\n"
        "With --engine: runs a grid of configurations on the CPU engine (batches, contexts,\n"
        "prompt lengths, precisions; TP and PP over 2 ranks under mpirun) and the planner's\n"
        "frontier points for the profile (each served as one burst of its batch), and\n"
        "compares the measured decode step time, TTFT and the split of the step with the deploy\n"
        "fidelity's prediction for the machine's measured profile (default local-cpu,\n"
        "written by infersim calibrate). With --dataset: predicts each row of measured\n"
        "serving data (TTFT and TPOT under closed-loop concurrency), fits the deploy\n"
        "fidelity's free parameters per hardware and backend on a training split and\n"
        "reports the accuracy on the held-out rows. Writes DIR/validation.csv, the\n"
        "predicted-against-measured plot DIR/validation.png (and .svg) and a summary.\n"
        "With --serving: the engine serves requests at three open-loop loads and one\n"
        "closed loop, the simulator serves the same requests, and their TTFT, TPOT and\n"
        "end-to-end latency are compared at p50 and p90; the engine's passes are replayed\n"
        "through the simulator's scheduler (DIR/serving.csv, serving-passes.csv and\n"
        "serving-requests.csv).\n\n"
        "options:\n");
    cli_print_options(opts);
}

/* A comma-separated list of positive integers; false (usage error printed) if not. */
static bool int_list(const cli_opt *o, int *v, int cap, int *n)
{
    *n = 0;
    const char *p = o->value;
    while (p && *p) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 1 || x > 1 << 20 || (*end && *end != ',') || *n >= cap) {
            cli_usage_error("validate", "--%s: '%s' is not a list of up to %d positive integers",
                            o->name, o->value, cap);
            return false;
        }
        v[(*n)++] = (int)x;
        p = *end ? end + 1 : end;
    }
    return *n > 0;
}

typedef struct {
    char kind[8]; /* decode, prefill */
    isim_dtype weights, kv;
    int tp, pp, batch, tokens; /* tokens: context (decode) or prompt (prefill) */
    double meas, pred, coarse; /* seconds; coarse: fixed + network + max(arithmetic, hbm) */
    double bw_now;             /* bytes/s the engine streamed around it (the probe) */
    double peak_now;           /* bf16 FLOP/s of the peak kernel around it (the probe) */
    double pred_now;           /* predicted with that bandwidth instead of the profile's */
    double m_mm, p_mm, m_att, p_att, m_rest, p_rest;
    bool memory_bound;   /* by the prediction's larger matmul term */
    bool frontier;       /* a planner frontier point served as a burst: decode is the mean
                            step of the generation, prefill the mean TTFT of its requests */
    int in_tok, out_tok; /* frontier: prompt and output tokens per sequence */
    double half[2];      /* one-process decode: the mean of the middle rounds of the first
                            and of the second half of its rounds (0: not measured so) */
    double half_gap_s;   /* the time between the two halves' mean rounds */
} vpoint;

typedef struct {
    vpoint *v;
    size_t n, cap;
} vlist;

static vpoint *vadd(vlist *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        vpoint *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return NULL;
        l->v = v;
        l->cap = cap;
    }
    memset(&l->v[l->n], 0, sizeof l->v[l->n]);
    return &l->v[l->n++];
}

/* A new point of one configuration; NULL (the error printed) when out of memory. */
static vpoint *vpoint_new(vlist *l, const char *kind, isim_dtype wt, isim_dtype kv, int tp, int pp,
                          int batch, int tokens)
{
    vpoint *p = vadd(l);
    if (!p) {
        cli_error(&(isim_error){.code = ISIM_ENOMEM, .message = "out of memory"});
        return NULL;
    }
    snprintf(p->kind, sizeof p->kind, "%s", kind);
    p->weights = wt;
    p->kv = kv;
    p->tp = tp;
    p->pp = pp;
    p->batch = batch;
    p->tokens = tokens;
    return p;
}

/* The probes run before and after each point (the median of 3 runs: calibrate's
 * statistic): the streaming rate, and the peak kernel's bf16 FLOP/s (the machine's
 * arithmetic moves too); the point's reading is the mean of the two. */
typedef struct {
    double bw, peak;
} reading;

static reading probe_now(isim_rt_stream_probe *probe)
{
    return (reading){isim_rt_stream_probe_run(probe, 3), isim_rt_stream_probe_peak(probe, 3)};
}

/* The mean of two readings. */
static reading reading_mean(reading a, reading b)
{
    return (reading){0.5 * (a.bw + b.bw), 0.5 * (a.peak + b.peak)};
}

/* The mean of a reading taken before and one taken now. */
static reading probe_around(isim_rt_stream_probe *probe, reading before)
{
    return reading_mean(before, probe_now(probe));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The median of n values (sorted in place). */
static double median(double *x, int n)
{
    return isim_rt_summarize(x, n, false).median;
}

/* The deploy prediction of one configuration on hw (decode at `ctx` tokens, or the prefill
 * of one prompt of `ctx` tokens). */
static isim_status predict(const isim_model *m, const isim_hw *hw, const vpoint *p, int steps,
                           isim_result *r, isim_error *err)
{
    isim_query q;
    isim_query_init(&q);
    q.fidelity = ISIM_DEPLOY;
    q.devices = p->tp * p->pp;
    q.tp = p->tp;
    q.pp = p->pp;
    q.batch = p->batch;
    q.weights = p->weights;
    q.kv = p->kv;
    q.input_tokens = p->tokens;
    /* the engine's pipeline fills and drains within each step, the classifier once a step */
    q.pp_schedule = ISIM_PP_STEPWISE;
    /* a one-process decode point is measured at its context (positions set), a 2-rank run
     * decodes `steps` tokens after its prompt (the context grows over them) */
    q.output_tokens = strcmp(p->kind, "decode") == 0 && p->tp * p->pp > 1 ? steps + 1 : 1;
    if (p->frontier) {
        q.input_tokens = p->in_tok;
        q.output_tokens = p->out_tok;
    }
    return isim_predict(m, hw, &q, r, err);
}

static void fill_prediction(vpoint *p, const isim_result *r)
{
    const isim_terms *t = strcmp(p->kind, "decode") == 0 ? &r->decode : &r->prefill;
    p->pred = strcmp(p->kind, "decode") == 0 ? r->tpot_s : r->ttft_s;
    p->p_mm = t->matmul_s;
    p->p_att = t->attention_s;
    p->p_rest = p->pred - p->p_mm - p->p_att;
    p->coarse = t->t[ISIM_TERM_FIXED] + t->t[ISIM_TERM_NETWORK] +
                fmax(t->t[ISIM_TERM_ARITHMETIC], t->t[ISIM_TERM_HBM]);
    p->memory_bound = t->t[ISIM_TERM_HBM] >= t->t[ISIM_TERM_ARITHMETIC];
}

/* One process, every thread: prefill of one prompt of each length, and decode at each batch
 * and context (positions set directly: the cache holds whatever it held). */
static int single_process(const isim_model *m, const isim_hw *hw, isim_dtype wt, isim_dtype kv,
                          int threads, const int *batches, int nb, const int *ctxs, int nc,
                          const int *prompts, int np, int rounds, int reps,
                          isim_rt_stream_probe *probe, vlist *out)
{
    int max_b = 1, max_ctx = 1;
    for (int i = 0; i < nb; i++)
        max_b = batches[i] > max_b ? batches[i] : max_b;
    for (int i = 0; i < nc; i++)
        max_ctx = ctxs[i] + 2 > max_ctx ? ctxs[i] + 2 : max_ctx;
    for (int i = 0; i < np; i++)
        max_ctx = prompts[i] + 1 > max_ctx ? prompts[i] + 1 : max_ctx;
    isim_rt_options o;
    isim_rt_options_init(&o);
    o.model = m;
    o.weights = wt;
    o.kv = kv;
    o.threads = threads;
    o.max_batch = max_b;
    o.max_context = max_ctx;
    isim_rt *rt = NULL;
    isim_error err = {0};
    if (isim_rt_open(&o, &rt, &err))
        return cli_error(&err);
    int rc = CLI_OK;
    int *slots = malloc((size_t)max_b * sizeof *slots),
        *ones = malloc((size_t)max_b * sizeof *ones);
    int *tok = malloc((size_t)max_b * sizeof *tok),
        *prompt = malloc((size_t)max_ctx * sizeof *prompt);
    const int **in = malloc((size_t)max_b * sizeof *in);
    double *t = malloc((size_t)reps * sizeof *t);
    if (!slots || !ones || !tok || !prompt || !in || !t) {
        rc = cli_error(&(isim_error){.code = ISIM_ENOMEM, .message = "out of memory"});
        goto done;
    }
    for (int i = 0; i < max_b; i++) {
        slots[i] = i;
        ones[i] = 1;
        tok[i] = 3 + i;
        in[i] = &tok[i];
    }
    for (int pi = 0; pi < np && !rc; pi++) {
        vpoint *p = vpoint_new(out, "prefill", wt, kv, 1, 1, 1, prompts[pi]);
        if (!p) {
            rc = CLI_FAIL;
            break;
        }
        reading bw0 = probe_now(probe);
        isim_rt_random_prompt(1, 0, prompts[pi], (int)m->vocab, prompt);
        double mm[16], att[16];
        for (int r = 0; r < reps && !rc; r++) {
            isim_rt_reset(rt, 0);
            isim_rt_times_reset(rt);
            const int *pp = prompt;
            int n = prompts[pi];
            double t0 = now_s();
            if (isim_rt_forward(rt, 1, slots, &pp, &n, NULL, &err)) {
                rc = cli_error(&err);
                break;
            }
            t[r] = now_s() - t0;
            isim_rt_times tt;
            isim_rt_times_get(rt, &tt);
            mm[r] = tt.matmul_s;
            att[r] = tt.attention_s;
        }
        if (rc)
            break;
        reading around = probe_around(probe, bw0);
        p->bw_now = around.bw;
        p->peak_now = around.peak;
        p->meas = median(t, reps);
        p->m_mm = median(mm, reps);
        p->m_att = median(att, reps);
        p->m_rest = p->meas - p->m_mm - p->m_att;
    }
    /* decode: the grid `rounds` times over, in each round a warm-up step and one measured
     * step of each point, the probe before and after it. A shared VM's bandwidth moves
     * between states within seconds: a point measured in one go carries the state of that
     * moment, measured once in each round (seconds apart) it samples them as calibrate's
     * bandwidth samples do. Its time is the mean of the middle rounds (isim_rt_summarize,
     * calibrate's statistic for the bandwidth), its bandwidth the rate at the mean of the
     * middle rounds' probe times. */
    size_t first = out->n;
    int npts = nb * nc;
    for (int i = 0; i < npts && !rc; i++)
        if (!vpoint_new(out, "decode", wt, kv, 1, 1, batches[i / nc], ctxs[i % nc]))
            rc = CLI_FAIL;
    double *ts = rc ? NULL : malloc((size_t)npts * (size_t)rounds * sizeof *ts);
    double *bws = rc ? NULL : malloc((size_t)npts * (size_t)rounds * sizeof *bws);
    double *pks = rc ? NULL : malloc((size_t)npts * (size_t)rounds * sizeof *pks);
    double *t_round = rc ? NULL : malloc((size_t)rounds * sizeof *t_round);
    if (!rc && (!ts || !bws || !pks || !t_round))
        rc = cli_error(&(isim_error){.code = ISIM_ENOMEM, .message = "out of memory"});
    for (int r = 0; r < rounds && !rc; r++) {
        t_round[r] = now_s();
        for (int i = 0; i < npts && !rc; i++) {
            vpoint *p = &out->v[first + (size_t)i];
            int B = p->batch;
            reading bw0 = probe_now(probe);
            for (int w = 0; w < 2 && !rc; w++) {
                if (w == 1)
                    isim_rt_times_reset(rt);
                for (int q = 0; q < B; q++)
                    isim_rt_set_position(rt, q, p->tokens);
                double t0 = now_s();
                if (isim_rt_forward(rt, B, slots, in, ones, NULL, &err))
                    rc = cli_error(&err);
                ts[(size_t)i * (size_t)rounds + (size_t)r] = now_s() - t0;
            }
            if (rc)
                break;
            isim_rt_times tt;
            isim_rt_times_get(rt, &tt);
            reading around = probe_around(probe, bw0);
            bws[(size_t)i * (size_t)rounds + (size_t)r] = around.bw;
            pks[(size_t)i * (size_t)rounds + (size_t)r] = around.peak;
            /* the split: summed over the rounds here, divided below */
            p->m_mm += tt.matmul_s;
            p->m_att += tt.attention_s;
        }
    }
    /* the engine against itself: each point's first half of rounds against its second,
     * minutes apart, by the same statistic as the point's time (before it: it sorts) */
    int h = rounds / 2;
    double gap = 0;
    for (int r = 0; r < h && !rc; r++)
        gap += (t_round[rounds - h + r] - t_round[r]) / h;
    for (int i = 0; i < npts && !rc && h > 0; i++) {
        vpoint *p = &out->v[first + (size_t)i];
        double *x = ts + (size_t)i * (size_t)rounds;
        p->half[0] = isim_rt_summarize(x, h, false).mean;
        p->half[1] = isim_rt_summarize(x + rounds - h, h, false).mean;
        p->half_gap_s = gap;
    }
    for (int i = 0; i < npts && !rc; i++) {
        vpoint *p = &out->v[first + (size_t)i];
        p->meas = isim_rt_summarize(ts + (size_t)i * (size_t)rounds, rounds, false).mean;
        p->bw_now = isim_rt_summarize(bws + (size_t)i * (size_t)rounds, rounds, true).mean;
        p->peak_now = isim_rt_summarize(pks + (size_t)i * (size_t)rounds, rounds, true).mean;
        p->m_mm /= rounds;
        p->m_att /= rounds;
        p->m_rest = p->meas - p->m_mm - p->m_att;
    }
    free(ts);
    free(bws);
    free(pks);
    free(t_round);
done:
    free(slots);
    free(ones);
    free(tok);
    free(prompt);
    free(in);
    free(t);
    isim_rt_close(rt);
    (void)hw;
    return rc;
}

/* The planner's frontier for the profile, one device (the whole machine), at `in` prompt
 * and `out` output tokens over the precisions the engine runs; each point of batch at most
 * max_b served on the engine as one burst: the prompts in forward passes of the profile's
 * prefill chunk (C / in whole prompts each, or one prompt chunked by the engine when longer),
 * each request's TTFT from the burst's start to the pass that ends its prompt, then out - 1
 * decode steps of every sequence. Two points per configuration: "prefill" with the mean TTFT
 * and "decode" with the mean step, against the planner's TTFT and TPOT. */
static int frontier_points(const isim_model *m, const isim_hw *hw, const isim_dtype *dts, int nd,
                           int in, int out, int max_b, int threads, isim_rt_stream_probe *probe,
                           vlist *l, int *n_frontier)
{
    *n_frontier = 0;
    isim_plan_request r;
    isim_plan_request_init(&r);
    r.fidelity = ISIM_DEPLOY;
    r.model = m;
    const isim_hw *hws[1] = {hw};
    r.hw = hws;
    r.n_hw = 1;
    r.input_tokens = in;
    r.output_tokens = out;
    r.weights = dts;
    r.n_weights = (size_t)nd;
    static const isim_dtype kv_bf16 = ISIM_BF16;
    r.kv = &kv_bf16;
    r.n_kv = 1;
    r.max_devices = 1;
    isim_plan *plan = NULL;
    isim_error err = {0};
    if (isim_plan_run(&r, &plan, &err))
        return cli_error(&err);
    int rc = CLI_OK;
    int chunk = hw->prefill_chunk_tokens >= 1 ? (int)hw->prefill_chunk_tokens : 512;
    int per = chunk / in > 1 ? chunk / in : 1; /* whole prompts per prefill pass */
    for (size_t k = 0; k < plan->hw_n[0] && !rc; k++) {
        const isim_plan_point *fp = &plan->hw_frontier[0][k];
        int B = (int)fp->batch;
        if (fp->devices != 1 || fp->tp * fp->pp != 1 || fp->spec || B > max_b ||
            (double)B != fp->batch)
            continue;
        (*n_frontier)++;
        fprintf(stderr, "validate: frontier point, %s weights, batch %d, %d + %d tokens...\n",
                isim_dtype_name(fp->weights), B, in, out);
        isim_rt_options o;
        isim_rt_options_init(&o);
        o.model = m;
        o.weights = fp->weights;
        o.kv = fp->kv;
        o.threads = threads;
        o.max_batch = B;
        o.max_context = in + out;
        o.max_chunk = chunk;
        isim_rt *rt = NULL;
        if (isim_rt_open(&o, &rt, &err)) {
            rc = cli_error(&err);
            break;
        }
        int *slots = malloc((size_t)B * sizeof *slots), *lens = malloc((size_t)B * sizeof *lens),
            *ones = malloc((size_t)B * sizeof *ones);
        int *prompts = malloc((size_t)B * (size_t)in * sizeof *prompts);
        const int **ptr = malloc((size_t)B * sizeof *ptr), **tok = malloc((size_t)B * sizeof *tok);
        int *next = malloc((size_t)B * sizeof *next);
        if (!slots || !lens || !ones || !prompts || !ptr || !tok || !next || !vadd(l) || !vadd(l)) {
            rc = cli_error(&(isim_error){.code = ISIM_ENOMEM, .message = "out of memory"});
            goto next_point;
        }
        vpoint *pre = &l->v[l->n - 2], *dec = &l->v[l->n - 1];
        for (int i = 0; i < B; i++) {
            slots[i] = i;
            lens[i] = in;
            ones[i] = 1;
            next[i] = 3 + i;
            tok[i] = &next[i];
            isim_rt_random_prompt(1, i, in, (int)m->vocab, prompts + (size_t)i * (size_t)in);
            ptr[i] = prompts + (size_t)i * (size_t)in;
            isim_rt_reset(rt, i);
        }
        for (int h = 0; h < 2; h++) {
            vpoint *p = h ? dec : pre;
            snprintf(p->kind, sizeof p->kind, h ? "decode" : "prefill");
            p->weights = fp->weights;
            p->kv = fp->kv;
            p->tp = p->pp = 1;
            p->batch = B;
            p->tokens = h ? in + (out - 1) / 2 : in;
            p->frontier = true;
            p->in_tok = in;
            p->out_tok = out;
        }
        /* the bandwidth around each half: probes before, between and after */
        reading bw0 = probe_now(probe);
        /* the burst's prefill */
        isim_rt_times_reset(rt);
        double t0 = now_s(), ttft_sum = 0;
        for (int i = 0; i < B && !rc; i += per) {
            int n = B - i < per ? B - i : per;
            if (isim_rt_forward(rt, n, slots + i, ptr + i, lens + i, NULL, &err)) {
                rc = cli_error(&err);
                break;
            }
            ttft_sum += n * (now_s() - t0);
        }
        if (rc)
            goto next_point;
        reading bw1 = probe_now(probe), mid = reading_mean(bw0, bw1);
        pre->bw_now = mid.bw;
        pre->peak_now = mid.peak;
        isim_rt_times tt;
        isim_rt_times_get(rt, &tt);
        pre->meas = ttft_sum / B;
        /* the split of the whole prefill, scaled to the mean TTFT's share of it */
        double all = now_s() - t0, share = all > 0 ? pre->meas / all : 0;
        pre->m_mm = tt.matmul_s * share;
        pre->m_att = tt.attention_s * share;
        pre->m_rest = pre->meas - pre->m_mm - pre->m_att;
        /* the generation: out - 1 decode steps, each sequence's context growing */
        isim_rt_times_reset(rt);
        t0 = now_s();
        for (int s = 0; s < out - 1 && !rc; s++)
            if (isim_rt_forward(rt, B, slots, tok, ones, NULL, &err))
                rc = cli_error(&err);
        if (rc)
            goto next_point;
        int steps = out - 1 > 0 ? out - 1 : 1;
        dec->meas = (now_s() - t0) / steps;
        reading around = probe_around(probe, bw1);
        dec->bw_now = around.bw;
        dec->peak_now = around.peak;
        isim_rt_times_get(rt, &tt);
        dec->m_mm = tt.matmul_s / steps;
        dec->m_att = tt.attention_s / steps;
        dec->m_rest = dec->meas - dec->m_mm - dec->m_att;
    next_point:
        free(slots);
        free(lens);
        free(ones);
        free(prompts);
        free(ptr);
        free(tok);
        free(next);
        isim_rt_close(rt);
    }
    isim_plan_free(plan);
    return rc;
}

/* One run of a two-rank configuration: the median decode step and its split, the prefill
 * and its split (seconds), the bandwidth the probe read around it (bytes/s). */
enum { R_DEC, R_DEC_MM, R_DEC_ATT, R_PRE, R_PRE_MM, R_PRE_ATT, R_BW, R_PEAK, R_N };

/* Two ranks under mpirun: `infersim run --json` with --tp or --pp 2, one thread each. */
static int two_ranks(const char *self, const char *model, const char *data, isim_dtype wt,
                     isim_dtype kv, int tp, int pp, int batch, int prompt, int steps,
                     double out[R_N])
{
    char np[16], b[16], in[16], outn[16], tps[16], pps[16];
    snprintf(np, sizeof np, "%d", tp * pp);
    snprintf(b, sizeof b, "%d", batch);
    snprintf(in, sizeof in, "%d", prompt);
    snprintf(outn, sizeof outn, "%d", steps + 1);
    snprintf(tps, sizeof tps, "%d", tp);
    snprintf(pps, sizeof pps, "%d", pp);
    char *const args[] = {"mpirun",
                          "--allow-run-as-root",
                          "--oversubscribe",
                          "-np",
                          np,
                          (char *)self,
                          "run",
                          "--engine",
                          "cpu",
                          "--data",
                          (char *)data,
                          "--model",
                          (char *)model,
                          "--dtype",
                          (char *)isim_dtype_name(wt),
                          "--kv",
                          (char *)isim_dtype_name(kv),
                          "--batch",
                          b,
                          "--input-tokens",
                          in,
                          "--output-tokens",
                          outn,
                          "--tp",
                          tps,
                          "--pp",
                          pps,
                          "--threads",
                          "1",
                          "--json",
                          NULL};
    char *buf = NULL;
    int st = -1;
    if (cli_capture(args, true, 1 << 20, &buf, &st) != 0)
        st = -1;
    const char *brace = buf ? strchr(buf, '{') : NULL;
    cJSON *j = st == 0 && brace ? cJSON_Parse(brace) : NULL;
    if (!j) {
        fprintf(stderr, "infersim: error: mpirun -np %s %s run --tp %s --pp %s failed: %s\n", np,
                self, tps, pps, buf ? buf : "");
        free(buf);
        return CLI_FAIL;
    }
    free(buf);
    const cJSON *dec = cJSON_GetObjectItem(j, "decode_step_ms"),
                *t = cJSON_GetObjectItem(j, "terms_ms"),
                *pt = cJSON_GetObjectItem(j, "prefill_terms_ms");
    const cJSON *v[R_BW] = {dec ? cJSON_GetObjectItem(dec, "median") : NULL,
                            t ? cJSON_GetObjectItem(t, "matmul") : NULL,
                            t ? cJSON_GetObjectItem(t, "attention") : NULL,
                            cJSON_GetObjectItem(j, "prefill_ms"),
                            pt ? cJSON_GetObjectItem(pt, "matmul") : NULL,
                            pt ? cJSON_GetObjectItem(pt, "attention") : NULL};
    for (int i = 0; i < R_BW; i++) {
        if (!cJSON_IsNumber(v[i])) {
            cJSON_Delete(j);
            return cli_error(
                &(isim_error){.code = ISIM_EINVAL, .message = "run printed no measurements"});
        }
        out[i] = v[i]->valuedouble / 1e3;
    }
    cJSON_Delete(j);
    return CLI_OK;
}

/* The mean of the middle ones of n values `stride` apart (isim_rt_summarize). */
static double middle_mean(const double *v, int n, size_t stride, bool rate)
{
    double x[128];
    n = n > 128 ? 128 : n;
    for (int i = 0; i < n; i++)
        x[i] = v[(size_t)i * stride];
    return isim_rt_summarize(x, n, rate).mean;
}

/* The two-rank points: TP 2 and PP 2 at four configurations each, every configuration run
 * `runs` times, in turn with the others (one mpirun is seconds long: a slow spell of the
 * machine then falls on one run of a point, not on all of them); a point's time is the mean
 * of its middle runs. */
static int rank_points(const char *self, const char *model, const char *data, isim_dtype wt,
                       isim_dtype kv, int steps, int runs, isim_rt_stream_probe *probe, vlist *l)
{
    static const int layouts[2][2] = {{2, 1}, {1, 2}};
    static const int cfg[4][2] = {{1, 128}, {8, 128}, {32, 128}, {1, 1024}};
    double *rr = calloc((size_t)8 * (size_t)runs * R_N, sizeof *rr);
    if (!rr)
        return cli_error(&(isim_error){.code = ISIM_ENOMEM, .message = "out of memory"});
    int rc = CLI_OK;
    for (int r = 0; r < runs && !rc; r++)
        for (int c = 0; c < 8 && !rc; c++) {
            const int *lay = layouts[c / 4], *cf = cfg[c % 4];
            fprintf(stderr,
                    "validate: %s weights, tp %d pp %d, batch %d, %d tokens (run %d of %d)...\n",
                    isim_dtype_name(wt), lay[0], lay[1], cf[0], cf[1], r + 1, runs);
            double *x = rr + ((size_t)c * (size_t)runs + (size_t)r) * R_N;
            reading bw = probe_now(probe);
            rc = two_ranks(self, model, data, wt, kv, lay[0], lay[1], cf[0], cf[1], steps, x);
            bw = probe_around(probe, bw);
            x[R_BW] = bw.bw;
            x[R_PEAK] = bw.peak;
        }
    for (int c = 0; c < 8 && !rc; c++) {
        const int *lay = layouts[c / 4], *cf = cfg[c % 4];
        const double *x = rr + (size_t)c * (size_t)runs * R_N;
        for (int kind = 0; kind < (cf[0] == 1 ? 2 : 1) && !rc; kind++) {
            vpoint *p =
                vpoint_new(l, kind ? "prefill" : "decode", wt, kv, lay[0], lay[1], cf[0], cf[1]);
            if (!p) {
                rc = CLI_FAIL;
                break;
            }
            int k0 = kind ? R_PRE : R_DEC; /* the time, then its matmuls and attention */
            p->meas = middle_mean(x + k0, runs, R_N, false);
            p->m_mm = middle_mean(x + k0 + 1, runs, R_N, false);
            p->m_att = middle_mean(x + k0 + 2, runs, R_N, false);
            p->m_rest = p->meas - p->m_mm - p->m_att;
            p->bw_now = middle_mean(x + R_BW, runs, R_N, true);
            p->peak_now = middle_mean(x + R_PEAK, runs, R_N, true);
        }
    }
    free(rr);
    return rc;
}

static void csv(FILE *f, const vlist *l)
{
    fputs("kind,weights,kv,tp,pp,batch,tokens,measured_ms,predicted_ms,error_pct,"
          "stream_gb_per_s_beside,bf16_tflops_beside,predicted_beside_ms,error_beside_pct,"
          "predicted_coarse_ms,error_coarse_pct,measured_matmul_ms,predicted_matmul_ms,"
          "measured_attention_ms,predicted_attention_ms,measured_rest_ms,predicted_rest_ms,"
          "predicted_bound,source,input_tokens,output_tokens,first_half_ms,second_half_ms\n",
          f);
    for (size_t i = 0; i < l->n; i++) {
        const vpoint *p = &l->v[i];
        fprintf(
            f,
            "%s,%s,%s,%d,%d,%d,%d,%.6g,%.6g,%.4g,%.4g,%.4g,%.6g,%.4g,%.6g,%.4g,%.6g,%.6g,%.6g,%.6g,"
            "%.6g,"
            "%.6g,%s,%s,",
            p->kind, isim_dtype_name(p->weights), isim_dtype_name(p->kv), p->tp, p->pp, p->batch,
            p->tokens, p->meas * 1e3, p->pred * 1e3, 100 * (p->pred - p->meas) / p->meas,
            p->bw_now / 1e9, p->peak_now / 1e12, p->pred_now * 1e3,
            100 * (p->pred_now - p->meas) / p->meas, p->coarse * 1e3,
            100 * (p->coarse - p->meas) / p->meas, p->m_mm * 1e3, p->p_mm * 1e3, p->m_att * 1e3,
            p->p_att * 1e3, p->m_rest * 1e3, p->p_rest * 1e3,
            p->memory_bound ? "memory" : "compute", p->frontier ? "frontier" : "grid");
        /* a frontier point's prompt and output tokens (a grid point's are `tokens`) */
        if (p->frontier)
            fprintf(f, "%d,%d,", p->in_tok, p->out_tok);
        else
            fputs(",,", f);
        /* a one-process decode point's halves of its rounds */
        if (p->half[0] > 0)
            fprintf(f, "%.6g,%.6g\n", p->half[0] * 1e3, p->half[1] * 1e3);
        else
            fputs(",\n", f);
    }
}

static void write_csv(FILE *f, void *ctx)
{
    csv(f, ctx);
}

/* Accuracy of the points `keep` selects, for the step rule and the coarse one. */
typedef bool (*keep_fn)(const vpoint *p);
static bool k_decode(const vpoint *p)
{
    return strcmp(p->kind, "decode") == 0;
}
static bool k_prefill(const vpoint *p)
{
    return strcmp(p->kind, "prefill") == 0;
}
static bool k_dec_mem(const vpoint *p)
{
    return k_decode(p) && p->memory_bound;
}
static bool k_dec_cmp(const vpoint *p)
{
    return k_decode(p) && !p->memory_bound;
}
static bool k_dec_one(const vpoint *p)
{
    return k_decode(p) && p->tp * p->pp == 1;
}
static bool k_dec_tp(const vpoint *p)
{
    return k_decode(p) && p->tp > 1;
}
static bool k_dec_pp(const vpoint *p)
{
    return k_decode(p) && p->pp > 1;
}
static bool k_front_dec(const vpoint *p)
{
    return k_decode(p) && p->frontier;
}
static bool k_front_pre(const vpoint *p)
{
    return k_prefill(p) && p->frontier;
}

/* false when out of memory */
static bool accuracy(const vlist *l, keep_fn keep, isim_accuracy *a, isim_accuracy *beside,
                     isim_accuracy *coarse)
{
    size_t cap = l->n ? l->n : 1;
    double *m = malloc(cap * sizeof *m), *p = malloc(cap * sizeof *p), *b = malloc(cap * sizeof *b),
           *c = malloc(cap * sizeof *c);
    bool ok = m && p && b && c;
    size_t k = 0;
    for (size_t i = 0; ok && i < l->n; i++)
        if (keep(&l->v[i])) {
            m[k] = l->v[i].meas;
            p[k] = l->v[i].pred;
            b[k] = l->v[i].pred_now;
            c[k] = l->v[i].coarse;
            k++;
        }
    ok = ok && !isim_accuracy_of(m, p, k, a) && !isim_accuracy_of(m, b, k, beside) &&
         !isim_accuracy_of(m, c, k, coarse);
    free(m);
    free(p);
    free(b);
    free(c);
    return ok;
}

int cmd_validate(int argc, char **argv)
{
    const char *cmd = "validate";
    cli_opt opts[] = {
        {"engine", true, "cpu: run configurations on this machine's engine", NULL},
        {"model", true, "model id for --engine (default llama-3.2-1b)", NULL},
        {"profile", true, "hardware profile id or file to predict with (default local-cpu)", NULL},
        {"dtype", true, "weights to run, a list of fp32, bf16, int8 (default bf16,fp32)", NULL},
        {"batches", true, "decode batches (default 1,2,4,8,16,32,64)", NULL},
        {"contexts", true, "decode contexts in tokens (default 16,512,2048)", NULL},
        {"prompts", true, "prefill prompt lengths (default 16,64,256,1024,2048)", NULL},
        {"steps", true, "decode steps of each 2-rank run (default 5)", NULL},
        {"rounds", true,
         "times the one-process decode grid is run through, one step of each point in each "
         "(default 12)",
         NULL},
        {"runs", true,
         "times each 2-rank configuration is run, in turn with the others (default 3)", NULL},
        {"no-mpi", false, "leave out the 2-rank TP and PP runs", NULL},
        {"frontier", true,
         "prompt and output tokens of the planner's frontier points, IN,OUT (default 256,64)",
         NULL},
        {"no-frontier", false, "leave out the planner's frontier points", NULL},
        {"threads", true, "threads of the one-process runs (default: one per CPU)", NULL},
        {"serving", false,
         "with --engine cpu: the engine serving requests under traffic against the simulator",
         NULL},
        {"requests", true, "--serving: requests at each load (default 20)", NULL},
        {"dataset", true, "measured serving data to validate against (a CSV)", NULL},
        {"write-profiles", false, "--dataset: write the fitted parameters into the profiles", NULL},
        {"simulate", false,
         "--dataset: also simulate each held-out aggregated row with the request simulator", NULL},
        {"out", true, "directory for validation.csv and the plot (-o DIR; default validation)",
         NULL},
        {"json", false, "print the summary as JSON", NULL},
        {"data", true, "directory holding models/ and hw-profiles/", NULL},
        {NULL, false, NULL, NULL}};
    const char *pos[1];
    int n_pos = 0, rc = cli_parse(cmd, argc, argv, 2, opts, pos, 0, &n_pos);
    if (rc < 0) {
        help(opts);
        return CLI_OK;
    }
    if (rc)
        return rc;
    if (cli_find(opts, "dataset")->value)
        return cli_validate_dataset(argc, argv, opts);
    const char *engine = cli_find(opts, "engine")->value;
    if (!engine || strcmp(engine, "cpu") != 0)
        return cli_usage_error(cmd, "give --engine cpu or --dataset FILE");
    if (cli_find(opts, "serving")->value)
        return cli_validate_serving(opts);
    if (cli_find(opts, "requests")->value)
        return cli_usage_error(cmd, "--requests counts the requests of --serving");
    int batches[32] = {1, 2, 4, 8, 16, 32, 64}, nb = 7, ctxs[32] = {16, 512, 2048}, nc = 3;
    int prompts[32] = {16, 64, 256, 1024, 2048}, np = 5, steps = 5, rounds = 12, runs = 3,
        threads = 0;
    int plan_tok[2] = {256, 64}, n_plan_tok = 2;
    if ((cli_find(opts, "batches")->value &&
         !int_list(cli_find(opts, "batches"), batches, 32, &nb)) ||
        (cli_find(opts, "contexts")->value &&
         !int_list(cli_find(opts, "contexts"), ctxs, 32, &nc)) ||
        (cli_find(opts, "prompts")->value &&
         !int_list(cli_find(opts, "prompts"), prompts, 32, &np)) ||
        (cli_find(opts, "steps")->value &&
         !cli_int(cmd, cli_find(opts, "steps"), 3, 1000, &steps)) ||
        (cli_find(opts, "rounds")->value &&
         !cli_int(cmd, cli_find(opts, "rounds"), 1, 100, &rounds)) ||
        (cli_find(opts, "runs")->value && !cli_int(cmd, cli_find(opts, "runs"), 1, 100, &runs)) ||
        (cli_find(opts, "threads")->value &&
         !cli_int(cmd, cli_find(opts, "threads"), 1, 4096, &threads)) ||
        (cli_find(opts, "frontier")->value &&
         !int_list(cli_find(opts, "frontier"), plan_tok, 2, &n_plan_tok)))
        return CLI_USAGE;
    if (n_plan_tok != 2 || plan_tok[1] < 2)
        return cli_usage_error(cmd, "--frontier: give IN,OUT with at least 2 output tokens");
    isim_dtype dts[3] = {ISIM_BF16, ISIM_FP32};
    int nd = 2;
    if (cli_find(opts, "dtype")->value) {
        nd = 0;
        char list[64];
        snprintf(list, sizeof list, "%s", cli_find(opts, "dtype")->value);
        for (char *tokp = strtok(list, ","); tokp; tokp = strtok(NULL, ",")) {
            if (nd == 3 || isim_dtype_parse(tokp, &dts[nd]) ||
                (dts[nd] != ISIM_FP32 && dts[nd] != ISIM_BF16 && dts[nd] != ISIM_INT8))
                return cli_usage_error(cmd, "--dtype: '%s' is not a list of fp32, bf16, int8",
                                       cli_find(opts, "dtype")->value);
            nd++;
        }
    }
    const char *data = cli_data_dir(cli_find(opts, "data"));
    const char *model_id =
        cli_find(opts, "model")->value ? cli_find(opts, "model")->value : "llama-3.2-1b";
    const char *profile =
        cli_find(opts, "profile")->value ? cli_find(opts, "profile")->value : "local-cpu";
    const char *dir = cli_find(opts, "out")->value ? cli_find(opts, "out")->value : "validation";
    bool json = cli_find(opts, "json")->value != NULL;
    isim_model *m = NULL;
    isim_hw *hw = NULL;
    isim_error err = {0};
    /* minutes of measuring must not end in a directory that cannot take their results */
    if ((rc = cli_writable_dir(dir, true)))
        return rc;
    if (isim_catalog_model(data, model_id, &m, &err)) {
        rc = cli_error(&err);
        goto cleanup;
    }
    if ((rc = cli_validate_profile(data, profile, &hw)))
        goto cleanup;
    vlist l = {0};
    isim_rt_stream_probe *probe = NULL;
    if (isim_rt_stream_probe_new(threads, &probe, &err)) {
        rc = cli_error(&err);
        goto cleanup;
    }
    char self[1024];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl == (ssize_t)sizeof self - 1)
        sl = 0; /* cut: no path, no runs under mpirun */
    self[sl > 0 ? sl : 0] = 0;
    bool mpi = !cli_find(opts, "no-mpi")->value && sl > 0 && cli_on_path("mpirun");
    for (int di = 0; di < nd && !rc; di++) {
        isim_dtype kv = dts[di] == ISIM_FP32 ? ISIM_FP32 : ISIM_BF16;
        fprintf(stderr, "validate: %s weights, one process...\n", isim_dtype_name(dts[di]));
        rc = single_process(m, hw, dts[di], kv, threads, batches, nb, ctxs, nc, prompts, np, rounds,
                            3, probe, &l);
        if (!rc && mpi)
            rc = rank_points(self, model_id, data, dts[di], kv, steps, runs, probe, &l);
    }
    int n_front = 0;
    if (!rc && !cli_find(opts, "no-frontier")->value) {
        int max_b = 1;
        for (int i = 0; i < nb; i++)
            max_b = batches[i] > max_b ? batches[i] : max_b;
        rc = frontier_points(m, hw, dts, nd, plan_tok[0], plan_tok[1], max_b, threads, probe, &l,
                             &n_front);
    }
    /* predictions: ranks sharing this machine each get a share of its compute and memory,
     * one thread each, and of its bandwidth what the ranks streaming at once leave them:
     * TP's ranks all stream; PP's stages as many as are busy at once, which changes within
     * a step as its micro-batches fill and drain the pipeline (ISIM_PP_STEPWISE works it
     * out from the machine's bandwidth the share keeps) */
    for (size_t i = 0; i < l.n && !rc; i++) {
        vpoint *p = &l.v[i];
        int ranks = p->tp * p->pp;
        isim_hw share;
        isim_hw_rank_share(hw, ranks, p->tp, &share);
        isim_result r;
        if (predict(m, &share, p, steps, &r, &err)) {
            rc = cli_error(&err);
            break;
        }
        fill_prediction(p, &r);
        /* the machine's bandwidth and arithmetic move (a shared VM's by tens of percent):
         * the same prediction with the bandwidth the engine streamed around the point and
         * the peaks scaled by the peak kernel's rate around it; one thread's limit stays the
         * profile's (latency-bound, it did not follow the machine's moves: a PP stage alone
         * streamed 38-40 GB/s while the probe read 45 to 73) */
        isim_hw now = *hw;
        now.mem_bytes_per_s = p->bw_now / hw->eff_hbm;
        double cal_peak = hw->peak_flops[ISIM_BF16];
        for (int d = 0; d < ISIM_DTYPE_COUNT && cal_peak > 0 && p->peak_now > 0; d++)
            now.peak_flops[d] *= p->peak_now / cal_peak;
        isim_hw_rank_share(&now, ranks, p->tp, &share);
        if (predict(m, &share, p, steps, &r, &err)) {
            rc = cli_error(&err);
            break;
        }
        p->pred_now = strcmp(p->kind, "decode") == 0 ? r.tpot_s : r.ttft_s;
    }
    if (rc)
        goto done;
    /* outputs */
    char *csv_path = cli_concat(dir, "/validation.csv");
    rc = csv_path ? cli_write_file(csv_path, write_csv, &l) : cli_oom();
    free(csv_path);
    if (rc)
        goto done;
    char path[1400];
    double *ms = malloc((l.n ? l.n : 1) * sizeof *ms), *ps = malloc((l.n ? l.n : 1) * sizeof *ps);
    int *series = malloc((l.n ? l.n : 1) * sizeof *series);
    for (size_t i = 0; ms && ps && series && i < l.n; i++) {
        ms[i] = l.v[i].meas * 1e3;
        ps[i] = l.v[i].pred * 1e3;
        series[i] = l.v[i].frontier                       ? 3
                    : strcmp(l.v[i].kind, "prefill") == 0 ? 2
                    : l.v[i].tp * l.v[i].pp > 1           ? 1
                                                          : 0;
    }
    static const char *const names[] = {"decode step, one process",
                                        "decode step, 2 ranks (TP or PP)", "prefill (TTFT)",
                                        "planner frontier (TPOT and mean TTFT)"};
    char title[300];
    snprintf(title, sizeof title, "%s on %s: deploy fidelity against the CPU engine", m->name,
             hw->name);
    for (int e = 0; e < 2 && ms && ps && series; e++) {
        snprintf(path, sizeof path, "%s/validation.%s", dir, e ? "svg" : "png");
        if (isim_report_scatter(path, ms, ps, series, l.n, names, 4, title, "ms", &err))
            fprintf(stderr, "infersim: warning: %s\n", err.message);
    }
    free(ms);
    free(ps);
    free(series);
    static const struct {
        const char *name;
        keep_fn keep;
    } groups[] = {{"decode step", k_decode},
                  {"decode, memory-bound", k_dec_mem},
                  {"decode, compute-bound", k_dec_cmp},
                  {"decode, one process", k_dec_one},
                  {"decode, tp 2", k_dec_tp},
                  {"decode, pp 2", k_dec_pp},
                  {"frontier TPOT", k_front_dec},
                  {"prefill (TTFT)", k_prefill},
                  {"frontier TTFT", k_front_pre}};
    cJSON *j = json ? cli_json_new() : NULL;
    if (j) {
        cJSON_AddStringToObject(j, "model", m->id);
        cJSON_AddStringToObject(j, "profile", hw->id);
        cJSON_AddNumberToObject(j, "points", (double)l.n);
        cJSON_AddNumberToObject(j, "frontier_points", n_front);
    }
    cJSON *ga = j ? cJSON_AddArrayToObject(j, "groups") : NULL;
    if (!json)
        printf(
            "%s on %s (profile %s): %zu points; error = (predicted - measured) / measured\n"
            "  %-24s %5s | %-29s | %-29s | %s\n  %-24s %5s | %9s %9s %9s | %9s %9s %9s | %9s %9s\n",
            m->name, hw->name, hw->id, l.n, "", "", "as calibrated", "bandwidth measured beside",
            "coarse overlap rule", "group", "n", "median|e|", "P90|e|", "median e", "median|e|",
            "P90|e|", "median e", "median|e|", "P90|e|");
    bool oom = false;
    for (size_t g = 0; !oom && g < sizeof groups / sizeof groups[0]; g++) {
        isim_accuracy a, b, c;
        oom = !accuracy(&l, groups[g].keep, &a, &b, &c);
        if (oom || !a.n)
            continue;
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "group", groups[g].name);
            cJSON_AddNumberToObject(o, "n", (double)a.n);
            cJSON_AddNumberToObject(o, "median_abs_pct", a.median_abs_pct);
            cJSON_AddNumberToObject(o, "p90_abs_pct", a.p90_abs_pct);
            cJSON_AddNumberToObject(o, "median_pct", a.median_pct);
            cJSON_AddNumberToObject(o, "beside_median_abs_pct", b.median_abs_pct);
            cJSON_AddNumberToObject(o, "beside_p90_abs_pct", b.p90_abs_pct);
            cJSON_AddNumberToObject(o, "beside_median_pct", b.median_pct);
            cJSON_AddNumberToObject(o, "coarse_median_abs_pct", c.median_abs_pct);
            cJSON_AddNumberToObject(o, "coarse_p90_abs_pct", c.p90_abs_pct);
            if (!cJSON_AddItemToArray(ga, o))
                cJSON_Delete(o);
        } else {
            printf("  %-24s %5zu | %8.1f%% %8.1f%% %+8.1f%% | %8.1f%% %8.1f%% %+8.1f%% | %8.1f%% "
                   "%8.1f%%\n",
                   groups[g].name, a.n, a.median_abs_pct, a.p90_abs_pct, a.median_pct,
                   b.median_abs_pct, b.p90_abs_pct, b.median_pct, c.median_abs_pct, c.p90_abs_pct);
        }
    }
    /* the engine against itself, the floor under the errors above: each one-process decode
     * point's second half of rounds against its first, minutes later, as if the first had
     * predicted the second */
    isim_accuracy rep = {0};
    double rep_gap = 0;
    double *h0 = malloc((l.n ? l.n : 1) * sizeof *h0), *h1 = malloc((l.n ? l.n : 1) * sizeof *h1);
    size_t nh = 0;
    oom = oom || !h0 || !h1;
    for (size_t i = 0; !oom && i < l.n; i++)
        if (l.v[i].half[0] > 0) {
            h0[nh] = l.v[i].half[0];
            h1[nh] = l.v[i].half[1];
            rep_gap += l.v[i].half_gap_s;
            nh++;
        }
    if (nh) {
        oom = oom || isim_accuracy_of(h0, h1, nh, &rep);
        rep_gap /= (double)nh;
    }
    free(h0);
    free(h1);
    if (j && rep.n) {
        cJSON *o = cJSON_AddObjectToObject(j, "repeatability");
        cJSON_AddNumberToObject(o, "n", (double)rep.n);
        cJSON_AddNumberToObject(o, "minutes_apart", rep_gap / 60);
        cJSON_AddNumberToObject(o, "median_abs_pct", rep.median_abs_pct);
        cJSON_AddNumberToObject(o, "p90_abs_pct", rep.p90_abs_pct);
        cJSON_AddNumberToObject(o, "median_pct", rep.median_pct);
    } else if (!json && rep.n)
        printf("the engine against itself: %zu one-process decode points, the second half of "
               "their rounds against the first (%.*f %s later): median |difference| %.1f%%, P90 "
               "%.1f%%, median %+.1f%%\n",
               rep.n, rep_gap < 60 ? 0 : 1, rep_gap < 60 ? rep_gap : rep_gap / 60,
               rep_gap < 60 ? "s" : "min", rep.median_abs_pct, rep.p90_abs_pct, rep.median_pct);
    /* the bandwidth and the bf16 peak the probes read around the points against the
     * profile's: how far the machine moved from where it was calibrated */
    double *v = malloc((l.n ? l.n : 1) * sizeof *v), rb[3] = {0}, rp[3] = {0};
    oom = oom || !v;
    for (int w = 0; w < 2 && !oom && l.n; w++) {
        double *o = w ? rp : rb;
        for (size_t i = 0; i < l.n; i++)
            v[i] = w ? l.v[i].peak_now : l.v[i].bw_now;
        o[1] = median(v, (int)l.n); /* sorts them */
        o[0] = v[0];
        o[2] = v[l.n - 1];
    }
    free(v);
    double cal = hw->mem_bytes_per_s * hw->eff_hbm, cal_peak = hw->peak_flops[ISIM_BF16];
    if (oom) {
        /* a summary over the points that happened to fit in memory would pass for one over
         * them all */
        cJSON_Delete(j);
        fprintf(stderr, "infersim: error: out of memory\n");
        rc = CLI_FAIL;
    } else if (json) {
        static const char *const keys[2] = {"bandwidth_gb_per_s", "bf16_peak_tflops"};
        for (int w = 0; w < 2; w++) {
            double sc = w ? 1e-12 : 1e-9, *o = w ? rp : rb;
            cJSON *ob = cJSON_AddObjectToObject(j, keys[w]);
            cJSON_AddNumberToObject(ob, "profile", (w ? cal_peak : cal) * sc);
            cJSON_AddNumberToObject(ob, "run_median", o[1] * sc);
            cJSON_AddNumberToObject(ob, "run_min", o[0] * sc);
            cJSON_AddNumberToObject(ob, "run_max", o[2] * sc);
        }
        rc = cli_json_print(j);
    } else {
        printf("bandwidth streamed around the points: median %.1f GB/s (%.1f to %.1f); the "
               "profile's %.1f GB/s\n",
               rb[1] * 1e-9, rb[0] * 1e-9, rb[2] * 1e-9, cal * 1e-9);
        printf("bf16 peak around the points: median %.3g TFLOP/s (%.3g to %.3g); the profile's "
               "%.3g TFLOP/s\n",
               rp[1] * 1e-12, rp[0] * 1e-12, rp[2] * 1e-12, cal_peak * 1e-12);
        printf("points: %s/validation.csv; plot: %s/validation.png (.svg)\n", dir, dir);
    }
done:
    free(l.v);
    isim_rt_stream_probe_free(probe);
cleanup:
    isim_hw_free(hw);
    isim_model_free(m);
    return rc;
}
