/* The request-level simulator of sim/serve.h. docs/serving.md describes the scheduler it
 * models and what it leaves out. */
#include "sim/serve.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sim/internal.h"

int isim_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double isim_quantile_sorted(const double *v, size_t n, double q)
{
    if (n == 0)
        return NAN;
    double at = q * (double)(n - 1);
    size_t i = (size_t)at;
    if (i + 1 >= n)
        return v[n - 1];
    return v[i] + (at - (double)i) * (v[i + 1] - v[i]);
}

const char *isim_sched_policy_name(isim_sched_policy p)
{
    return p == ISIM_POLICY_SGLANG ? "sglang" : p == ISIM_POLICY_TRTLLM ? "trtllm" : "vllm";
}

bool isim_sched_policy_parse(const char *name, isim_sched_policy *out)
{
    for (int p = ISIM_POLICY_VLLM; p <= ISIM_POLICY_TRTLLM; p++)
        if (strcmp(name, isim_sched_policy_name((isim_sched_policy)p)) == 0) {
            *out = (isim_sched_policy)p;
            return true;
        }
    return false;
}

static isim_status bad(isim_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static isim_status bad(isim_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    isim_error_setv(err, ISIM_EINVAL, "", 0, 0, fmt, ap);
    va_end(ap);
    return ISIM_EINVAL;
}

/* The longest a draw of d can be (lognormal draws are held within what fits). */
static double len_max(const isim_len_dist *d, double hi)
{
    switch (d->kind) {
    case ISIM_LEN_FIXED:
        return d->a;
    case ISIM_LEN_UNIFORM:
        return d->b;
    default:
        return hi;
    }
}

static isim_status check_len(const char *what, const isim_len_dist *d, double least,
                             isim_error *err)
{
    switch (d->kind) {
    case ISIM_LEN_FIXED:
        if (!(d->a >= least && d->a <= 1e9 && d->a == floor(d->a)))
            return bad(err, "%s tokens must be a whole number in [%g, 1e9], got %g", what, least,
                       d->a);
        return ISIM_OK;
    case ISIM_LEN_UNIFORM:
        if (!(d->a >= least && d->a == floor(d->a) && d->b == floor(d->b) && d->b >= d->a &&
              d->b <= 1e9))
            return bad(err,
                       "%s tokens uniform in [a, b] needs whole numbers %g <= a <= b <= 1e9, "
                       "got [%g, %g]",
                       what, least, d->a, d->b);
        return ISIM_OK;
    case ISIM_LEN_LOGNORMAL:
        if (!(d->a >= 1 && d->a <= 1e9))
            return bad(err, "%s tokens lognormal: the mean must be in [1, 1e9], got %g", what,
                       d->a);
        if (!(d->b > 0 && d->b <= 10))
            return bad(err,
                       "%s tokens lognormal: the coefficient of variation must be in (0, 10], "
                       "got %g",
                       what, d->b);
        return ISIM_OK;
    }
    return bad(err, "%s tokens: unknown distribution", what);
}

/* A trace's requests: arrivals finite, from 0 and in order, lengths whole and within the
 * model's context (the KV cache is checked with the others' lengths). */
static isim_status check_trace(const isim_model *m, const isim_traffic *t, isim_error *err)
{
    double prev = 0;
    for (int64_t i = 0; i < t->requests; i++) {
        const isim_trace_req *r = &t->trace[i];
        if (!(r->arrival_s >= 0 && r->arrival_s <= 1e9))
            return bad(err, "request %lld arrives at %g s: arrivals must be in [0, 1e9] s",
                       (long long)i + 1, r->arrival_s);
        if (r->arrival_s < prev)
            return bad(err,
                       "request %lld arrives at %g s, before request %lld at %g s: "
                       "arrivals must be in order",
                       (long long)i + 1, r->arrival_s, (long long)i, prev);
        prev = r->arrival_s;
        if (r->input_tokens < 1 || r->output_tokens < 1 ||
            r->input_tokens + r->output_tokens > m->max_context)
            return bad(err,
                       "request %lld of %lld input + %lld output tokens: each must be at least "
                       "1 and together within %s's context of %lld",
                       (long long)i + 1, (long long)r->input_tokens, (long long)r->output_tokens,
                       m->name, (long long)m->max_context);
    }
    return ISIM_OK;
}

isim_status isim_serve_check(const isim_model *m, const isim_step_ctx *x, const isim_sched *s,
                             const isim_traffic *t, isim_error *err)
{
    if (t->requests < 1 || t->requests > ISIM_SERVE_MAX_REQUESTS)
        return bad(err, "requests must be in [1, %d], got %lld", ISIM_SERVE_MAX_REQUESTS,
                   (long long)t->requests);
    switch (t->kind) {
    case ISIM_ARRIVE_GAMMA:
        if (!(t->cv > 0 && t->cv <= 10))
            return bad(err, "the arrivals' coefficient of variation must be in (0, 10], got %g",
                       t->cv);
        /* fall through */
    case ISIM_ARRIVE_POISSON:
        if (!(t->rate > 0 && t->rate <= 1e6))
            return bad(err, "the request rate must be in (0, 1e6] per second, got %g", t->rate);
        break;
    case ISIM_ARRIVE_CLOSED:
        if (t->clients < 1 || t->clients > t->requests)
            return bad(err, "clients must be in [1, requests = %lld], got %lld",
                       (long long)t->requests, (long long)t->clients);
        break;
    case ISIM_ARRIVE_TRACE:
        if (!t->trace)
            return bad(err, "a trace of no requests");
        break;
    default:
        return bad(err, "unknown kind of arrivals");
    }
    isim_status st = ISIM_OK;
    if (t->kind == ISIM_ARRIVE_TRACE)
        st = check_trace(m, t, err);
    else {
        st = check_len("input", &t->input, 1, err);
        if (!st)
            st = check_len("output", &t->output, 1, err);
    }
    if (st)
        return st;
    if (!(t->prefix_hit >= 0 && t->prefix_hit < 1))
        return bad(err, "the prefix-cache hit rate must be in [0, 1), got %g", t->prefix_hit);
    if ((unsigned)s->policy > ISIM_POLICY_TRTLLM)
        return bad(err, "unknown scheduler policy %d", (int)s->policy);
    if (s->max_seqs < 1 || s->max_seqs > 1000000)
        return bad(err, "the running sequences' limit must be in [1, 1000000], got %lld",
                   (long long)s->max_seqs);
    if (s->token_budget < 0 || s->token_budget > 10000000)
        return bad(err, "the token budget per pass must be in [1, 1e7], got %lld",
                   (long long)s->token_budget);
    if (s->block_tokens < 0 || s->block_tokens > 65536)
        return bad(err, "the KV block must be in [1, 65536] tokens, got %lld",
                   (long long)s->block_tokens);
    if (!(s->kv_tokens >= 0) || !isfinite(s->kv_tokens))
        return bad(err, "the KV cache must be >= 0 tokens, got %g", s->kv_tokens);
    /* a request lives in one data-parallel group: its whole context must fit there */
    double kv = s->kv_tokens > 0 ? s->kv_tokens : isim_step_kv_tokens(x);
    double ctx = (double)m->max_context, hi = fmin(ctx, floor(kv));
    bool trace = t->kind == ISIM_ARRIVE_TRACE;
    bool in_free = !trace && t->input.kind == ISIM_LEN_LOGNORMAL,
         out_free = !trace && t->output.kind == ISIM_LEN_LOGNORMAL;
    double in_max = in_free ? 1 : len_max(&t->input, ctx),
           out_max = out_free ? 1 : len_max(&t->output, ctx);
    if (trace) { /* the longest request of the trace */
        in_max = out_max = 0;
        for (int64_t i = 0; i < t->requests; i++) {
            const isim_trace_req *r = &t->trace[i];
            if ((double)(r->input_tokens + r->output_tokens) > in_max + out_max) {
                in_max = (double)r->input_tokens;
                out_max = (double)r->output_tokens;
            }
        }
    }
    if (in_max + out_max > ctx)
        return bad(err, "a request of up to %g input + %g output tokens exceeds %s's context of %g",
                   in_max, out_max, m->name, ctx);
    if (in_max + out_max > hi)
        return bad(err,
                   "a request of up to %g tokens does not fit the KV cache of %g tokens one "
                   "data-parallel group holds",
                   in_max + out_max, floor(kv));
    double budget = s->token_budget > 0 ? (double)s->token_budget : isim_step_chunk_tokens(x);
    double passes = 0;
    if (trace)
        for (int64_t i = 0; i < t->requests; i++)
            passes += (double)t->trace[i].output_tokens +
                      ceil((double)t->trace[i].input_tokens / fmax(budget, 1));
    else
        passes = (double)t->requests *
                 ((out_free ? hi : out_max) + ceil((in_free ? hi : in_max) / fmax(budget, 1)));
    if (passes > ISIM_SERVE_MAX_PASSES)
        return bad(err,
                   "%lld requests of up to %g output tokens could take %.3g passes, more than "
                   "the %.0e a simulation may run: fewer requests or shorter outputs",
                   (long long)t->requests, out_free ? hi : out_max, passes, ISIM_SERVE_MAX_PASSES);
    return ISIM_OK;
}

/* ---- the simulation ----------------------------------------------------------------- */

/* A histogram of inter-token gaps: 100 log-spaced bins per decade from 1 us to 10^4 s. */
#define ITL_LO 1e-6
#define ITL_PER_DECADE 100
#define ITL_BINS (10 * ITL_PER_DECADE)

struct isim_itl_hist {
    uint64_t bin[ITL_BINS];
    uint64_t n;
    double sum, max;
};

isim_itl_hist *isim_itl_hist_new(void)
{
    return calloc(1, sizeof(isim_itl_hist));
}

void isim_itl_hist_free(isim_itl_hist *h)
{
    free(h);
}

void isim_itl_hist_add(isim_itl_hist *h, double gap, uint64_t k)
{
    if (k == 0)
        return;
    int b = gap > ITL_LO ? (int)floor(log10(gap / ITL_LO) * ITL_PER_DECADE) : 0;
    h->bin[b < ITL_BINS ? b : ITL_BINS - 1] += k;
    h->n += k;
    h->sum += gap * (double)k;
    h->max = gap > h->max ? gap : h->max;
}

/* The q-quantile: the geometric middle of the bin that holds it, at most the largest gap. */
static double itl_quantile(const isim_itl_hist *h, double q)
{
    uint64_t want = (uint64_t)ceil(q * (double)h->n), seen = 0;
    for (int b = 0; b < ITL_BINS; b++) {
        seen += h->bin[b];
        if (seen >= want && seen > 0)
            return fmin(ITL_LO * pow(10, (b + 0.5) / ITL_PER_DECADE), h->max);
    }
    return h->max;
}

typedef struct {
    double arrival, admitted, first, done, last; /* last: its latest token */
    int64_t prompt, out, gen, computed, cached, blocks;
    int64_t preempted;
    bool prefilling;
    bool decoding; /* has a decode token in the pass under way */
} sreq;

/* The waiting requests, in order, with room to put a preempted one back in front. */
typedef struct {
    size_t *v, cap, head, n;
} deque;

static void dq_push_back(deque *d, size_t i)
{
    d->v[(d->head + d->n++) % d->cap] = i;
}
static void dq_push_front(deque *d, size_t i)
{
    d->head = (d->head + d->cap - 1) % d->cap;
    d->v[d->head] = i;
    d->n++;
}
static size_t dq_front(const deque *d)
{
    return d->v[d->head];
}
static void dq_pop_front(deque *d)
{
    d->head = (d->head + 1) % d->cap;
    d->n--;
}

static int64_t draw_len(gsl_rng *r, const isim_len_dist *d, double hi)
{
    double v;
    switch (d->kind) {
    case ISIM_LEN_FIXED:
        return (int64_t)d->a;
    case ISIM_LEN_UNIFORM:
        return (int64_t)d->a + (int64_t)gsl_rng_uniform_int(r, (unsigned long)(d->b - d->a + 1));
    default: {
        /* mean a, cv b: sigma^2 = ln(1 + cv^2), mu = ln(a) - sigma^2 / 2 */
        double s2 = log1p(d->b * d->b);
        v = gsl_ran_lognormal(r, log(d->a) - s2 / 2, sqrt(s2));
        v = floor(v + 0.5);
        return (int64_t)fmin(fmax(v, 1), hi);
    }
    }
}

/* The requests of t, in order: lengths, then arrival gaps, each in request order (the same
 * seed, the same requests); lognormal lengths held within the model's context and a
 * group's cache of kv_group tokens. Closed loop: the first `clients` arrive at 0, the
 * others when a client's last request ends (NAN here). */
static void draw(const isim_model *m, const isim_traffic *t, double kv_group, gsl_rng *rng,
                 isim_trace_req *out)
{
    const size_t n = (size_t)t->requests;
    if (t->kind == ISIM_ARRIVE_TRACE) {
        memcpy(out, t->trace, n * sizeof *out);
        return;
    }
    gsl_rng_set(rng, (unsigned long)t->seed);
    const double hi = fmin((double)m->max_context, floor(kv_group));
    for (size_t i = 0; i < n; i++) {
        out[i].output_tokens = draw_len(rng, &t->output, hi - 1);
        out[i].input_tokens = draw_len(rng, &t->input, hi - (double)out[i].output_tokens);
    }
    double at = 0, shape = t->kind == ISIM_ARRIVE_GAMMA ? 1 / (t->cv * t->cv) : 1;
    for (size_t i = 0; i < n; i++) {
        if (t->kind == ISIM_ARRIVE_CLOSED) {
            out[i].arrival_s = i < (size_t)t->clients ? 0 : NAN;
            continue;
        }
        if (i > 0)
            at += t->kind == ISIM_ARRIVE_GAMMA ? gsl_ran_gamma(rng, shape, 1 / (t->rate * shape))
                                               : gsl_ran_exponential(rng, 1 / t->rate);
        out[i].arrival_s = at;
    }
}

isim_status isim_serve_draw(const isim_model *m, const isim_step_ctx *x, const isim_sched *s,
                            const isim_traffic *t, isim_trace_req *out, isim_error *err)
{
    isim_status st = isim_serve_check(m, x, s, t, err);
    if (st)
        return st;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!rng)
        return isim__fail(err, ISIM_ENOMEM, "", 0, 0, "out of memory");
    double kv = s->kv_tokens > 0 ? s->kv_tokens : isim_step_kv_tokens(x);
    draw(m, t, kv, rng, out);
    gsl_rng_free(rng);
    return ISIM_OK;
}

typedef struct {
    sreq *q;
    deque wait;
    size_t *run, n_run;
    int64_t blocks_free, block;
    int64_t max_run, budget;
    int64_t n_dec;  /* decode tokens of the pass being built */
    double dec_ctx; /* their contexts' sum */
} sim;

static int64_t blocks_for(const sim *s, int64_t tokens)
{
    return (tokens + s->block - 1) / s->block;
}

/* Takes request i out of the running set: its blocks back, its state recomputed from its
 * prompt and the tokens it generated (vLLM's preemption by recompute). */
static void preempt(sim *s, size_t k)
{
    size_t i = s->run[k];
    sreq *r = &s->q[i];
    if (r->decoding) { /* its token leaves the pass being built */
        s->n_dec--;
        s->dec_ctx -= (double)r->computed;
    }
    s->blocks_free += r->blocks;
    r->blocks = 0;
    r->computed = 0;
    r->prefilling = true;
    r->decoding = false;
    r->preempted++;
    memmove(&s->run[k], &s->run[k + 1], (s->n_run - k - 1) * sizeof *s->run);
    s->n_run--;
    dq_push_front(&s->wait, i);
}

/* Grows request r's blocks to hold `tokens`; false when the cache has not enough free. */
static bool grow(sim *s, sreq *r, int64_t tokens)
{
    int64_t need = blocks_for(s, tokens) - r->blocks;
    if (need <= 0)
        return true;
    if (need > s->blocks_free)
        return false;
    s->blocks_free -= need;
    r->blocks += need;
    return true;
}

/* Room in the KV cache for the k-th running request to hold `tokens`: the latest admitted
 * are preempted until its blocks grow (vLLM's preemption by recompute); false when it was
 * the latest itself and is preempted. A request alone always fits (isim_serve_check). */
static bool room(sim *s, size_t k, int64_t tokens)
{
    size_t i = s->run[k];
    while (!grow(s, &s->q[i], tokens)) {
        bool self = s->run[s->n_run - 1] == i;
        preempt(s, s->n_run - 1);
        if (self)
            return false;
    }
    return true;
}

/* The prompt tokens a pass computes: how many, of how many sequences, the token-weighted
 * sum of the context each attends over, and the sequences whose prompt ends. */
typedef struct {
    double tokens, ctx;
    int64_t seqs, finishing;
} prompts;

/* Request r's next chunk of its prompt, as much of the budget as it needs, added to p;
 * false (nothing taken) when the KV cache has not the blocks for it. */
static bool chunk(sim *s, sreq *r, int64_t *budget, prompts *p)
{
    int64_t left = r->prompt + r->gen - r->computed;
    int64_t c = left < *budget ? left : *budget;
    if (!grow(s, r, r->computed + c))
        return false;
    p->tokens += (double)c;
    p->ctx += (double)c * ((double)r->computed + (double)c / 2);
    p->seqs++;
    p->finishing += c == left;
    *budget -= c;
    r->computed += c;
    return true;
}

/* The tokens of request r's prompt (with what it generated before a preemption) that the
 * prefix cache holds when it is admitted: at least one token is computed. */
static void admit_state(sreq *r)
{
    int64_t target = r->prompt + r->gen;
    r->computed = r->cached < target ? r->cached : target - 1;
}

/* Every running sequence past its prompt adds one token to the pass; a sequence the cache
 * cannot grow preempts the latest admitted. */
static void decode_tokens(sim *s, int64_t *budget)
{
    for (size_t k = 0; k<s->n_run && * budget> 0; k++) {
        sreq *r = &s->q[s->run[k]];
        if (r->prefilling)
            continue;
        if (!room(s, k, r->computed + 1))
            break; /* it preempted itself, the last one running */
        r->decoding = true;
        s->n_dec++;
        s->dec_ctx += (double)r->computed;
        (*budget)--;
    }
}

/* Prompt tokens for the pass: chunks of the prompts admitted (a chunk the cache cannot take
 * preempts the latest admitted, as a decode does; under SGLang it waits), then new
 * admissions in arrival order.
 * TensorRT-LLM's GUARANTEED_NO_EVICT admits a request only when the cache holds its whole
 * prompt and output, reserved at once, so that none is ever preempted. */
static void prompt_tokens(sim *s, int64_t *budget, prompts *pr, double now,
                          isim_sched_policy policy)
{
    for (size_t k = 0; k<s->n_run && * budget> 0; k++) {
        sreq *r = &s->q[s->run[k]];
        if (!r->prefilling)
            continue;
        int64_t left = r->prompt + r->gen - r->computed;
        /* SGLang retracts decodes when the cache runs out, never for a prompt: a chunk
         * without room waits for the decode passes to free some */
        if (policy == ISIM_POLICY_SGLANG
                ? !chunk(s, r, budget, pr)
                : !room(s, k, r->computed + (left < *budget ? left : *budget)))
            break;
        if (policy != ISIM_POLICY_SGLANG)
            chunk(s, r, budget, pr);
    }
    while (*budget > 0 && s->wait.n > 0 && (int64_t)s->n_run < s->max_run) {
        size_t i = dq_front(&s->wait);
        sreq *r = &s->q[i];
        admit_state(r);
        if (policy == ISIM_POLICY_TRTLLM && !grow(s, r, r->prompt + r->out))
            break;
        if (!chunk(s, r, budget, pr))
            break;
        dq_pop_front(&s->wait);
        if (isnan(r->admitted))
            r->admitted = now;
        r->prefilling = true;
        s->run[s->n_run++] = i;
    }
}

/* The most requests waiting for admission at once: arrivals and admissions in time order
 * (at one time, admissions first). scratch holds n values. */
static size_t most_waiting(const isim_served *req, size_t n, double *scratch)
{
    for (size_t i = 0; i < n; i++)
        scratch[i] = req[i].admitted_s;
    qsort(scratch, n, sizeof *scratch, isim_cmp_double);
    size_t most = 0, admitted = 0;
    /* requests are in arrival order: the i-th arrival finds i earlier arrivals, of which
     * those admitted by then are gone */
    for (size_t i = 0; i < n; i++) {
        while (admitted < n && scratch[admitted] <= req[i].arrival_s)
            admitted++;
        size_t waiting = i + 1 - (admitted < i + 1 ? admitted : i + 1);
        most = waiting > most ? waiting : most;
    }
    return most;
}

isim_status isim_serve_run(const isim_model *m, const isim_step_ctx *x, const isim_sched *sc,
                           const isim_traffic *t, isim_serve_result **out, isim_error *err)
{
    return isim_serve_run_opts(m, x, sc, t, NULL, out, err);
}

/* Appends a pass to the result's log, doubling it; false when out of memory. */
static bool log_pass(isim_serve_result *res, size_t *cap, const isim_pass *p)
{
    if (res->n_passes == *cap) {
        size_t c = *cap ? 2 * *cap : 1024;
        isim_pass *v = realloc(res->passes, c * sizeof *v);
        if (!v)
            return false;
        res->passes = v;
        *cap = c;
    }
    res->passes[res->n_passes++] = *p;
    return true;
}

isim_status isim_serve_run_opts(const isim_model *m, const isim_step_ctx *x, const isim_sched *sc,
                                const isim_traffic *t, const isim_serve_opts *o,
                                isim_serve_result **out, isim_error *err)
{
    *out = NULL;
    const isim_serve_opts none = {0};
    const isim_serve_opts *opt = o ? o : &none;
    size_t pass_cap = 0;
    isim_status st = isim_serve_check(m, x, sc, t, err);
    if (st)
        return st;
    const size_t n = (size_t)t->requests;
    const double dp = isim_step_dp(x);
    sim s = {0};
    s.block = sc->block_tokens > 0 ? sc->block_tokens : 16;
    s.budget = sc->token_budget > 0 ? sc->token_budget : (int64_t)isim_step_chunk_tokens(x);
    double kv = (sc->kv_tokens > 0 ? sc->kv_tokens : isim_step_kv_tokens(x)) * dp;
    s.blocks_free = (int64_t)floor(kv / (double)s.block);
    s.max_run = sc->max_seqs * (int64_t)dp;
    int64_t budget_all = s.budget * (int64_t)dp;
    isim_serve_result *res = calloc(1, sizeof *res);
    s.q = calloc(n, sizeof *s.q);
    s.wait.v = malloc(n * sizeof *s.wait.v);
    s.wait.cap = n;
    s.run = malloc((size_t)(s.max_run < (int64_t)n ? s.max_run : (int64_t)n) * sizeof *s.run);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    isim_trace_req *reqs = malloc(n * sizeof *reqs);
    isim_itl_hist *itl = isim_itl_hist_new();
    if (!res || !s.q || !s.wait.v || !s.run || !rng || !reqs || !itl) {
        st = isim__fail(err, ISIM_ENOMEM, "", 0, 0, "out of memory");
        goto done;
    }
    draw(m, t, kv / dp, rng, reqs);
    size_t known = 0; /* requests whose arrival time is set, in order */
    for (size_t i = 0; i < n; i++) {
        sreq *r = &s.q[i];
        r->out = reqs[i].output_tokens;
        r->prompt = reqs[i].input_tokens;
        r->cached = (int64_t)floor((double)r->prompt * t->prefix_hit);
        r->admitted = r->first = r->done = NAN;
        r->arrival = reqs[i].arrival_s;
        known += !isnan(r->arrival);
    }

    double now = 0, busy = 0, w_run = 0;
    size_t next = 0, finished = 0, mid = n / 2, wait_mid = 0, wait_last = 0;
    bool seen_mid = false, seen_last = false;
    while (finished < n) {
        while (next < known && s.q[next].arrival <= now) {
            dq_push_back(&s.wait, next++);
            if (next > mid && !seen_mid) {
                seen_mid = true;
                wait_mid = s.wait.n;
            }
            if (next == n && !seen_last) {
                seen_last = true;
                wait_last = s.wait.n;
            }
        }
        if (s.n_run == 0 && s.wait.n == 0) {
            if (next >= known) {
                st = bad(err, "no request left to serve with %zu of %zu unfinished", n - finished,
                         n);
                goto done;
            }
            now = s.q[next].arrival; /* idle until the next arrival */
            continue;
        }
        /* vLLM V1 and TensorRT-LLM: decodes first, then prompts in the same pass; SGLang
         * (no mixed chunks): a pass of prompts when any can run, else of decodes */
        int64_t budget = budget_all;
        s.n_dec = 0;
        s.dec_ctx = 0;
        prompts pr = {0};
        if (sc->policy == ISIM_POLICY_SGLANG) {
            prompt_tokens(&s, &budget, &pr, now, sc->policy);
            if (pr.seqs == 0)
                decode_tokens(&s, &budget);
        } else {
            decode_tokens(&s, &budget);
            prompt_tokens(&s, &budget, &pr, now, sc->policy);
        }
        const int64_t n_dec = s.n_dec;
        const double dec_ctx = s.dec_ctx;
        const double pre_tok = pr.tokens, pre_ctx = pr.ctx;
        const int64_t n_pre = pr.seqs, n_fin = pr.finishing;
        if (n_dec == 0 && n_pre == 0) {
            st = bad(err,
                     "the scheduler could place no token in a pass (%zu running, %zu waiting, "
                     "%lld KV blocks free)",
                     s.n_run, s.wait.n, (long long)s.blocks_free);
            goto done;
        }
        isim_step_mix mix = {.decode_seqs = (double)n_dec / dp,
                             .decode_ctx = n_dec ? dec_ctx / (double)n_dec : 0,
                             .prefill_tokens = pre_tok / dp,
                             .prefill_seqs = (double)n_pre / dp,
                             .prefill_ctx = pre_tok > 0 ? pre_ctx / pre_tok : 0,
                             .finishing = (double)n_fin / dp};
        double dt = opt->step_time ? opt->step_time(opt->ctx, res->steps, &mix)
                                   : isim_step_time(x, &mix, NULL);
        if (!(dt > 0) || !isfinite(dt)) {
            st = bad(err, "pass %zu took %g s: a pass takes a positive, finite time", res->steps,
                     dt);
            goto done;
        }
        if (opt->keep_passes &&
            !log_pass(res, &pass_cap,
                      &(isim_pass){now, dt, mix, (int64_t)s.n_run, (int64_t)s.wait.n})) {
            st = isim__fail(err, ISIM_ENOMEM, "", 0, 0, "out of memory");
            goto done;
        }
        w_run += (double)s.n_run * dt;
        const double before = now;
        uint64_t gaps_of_dt = 0;
        now += dt;
        busy += dt;
        res->steps++;
        /* the pass's tokens: a decode's next token, a finished prompt's first */
        size_t kept = 0;
        for (size_t k = 0; k < s.n_run; k++) {
            size_t i = s.run[k];
            sreq *r = &s.q[i];
            bool emits = false;
            if (r->prefilling) {
                if (r->computed == r->prompt + r->gen) {
                    r->prefilling = false;
                    emits = true;
                }
            } else if (r->decoding) {
                r->decoding = false;
                r->computed++;
                emits = true;
            }
            if (emits) {
                r->gen++;
                if (isnan(r->first))
                    r->first = now;
                else if (r->last == before) /* its token of the pass before: a gap of dt */
                    gaps_of_dt++;
                else
                    isim_itl_hist_add(itl, now - r->last, 1);
                r->last = now;
            }
            if (r->gen >= r->out) {
                r->done = now;
                s.blocks_free += r->blocks;
                r->blocks = 0;
                finished++;
                if (t->kind == ISIM_ARRIVE_CLOSED && known < n)
                    s.q[known++].arrival = now;
                continue;
            }
            s.run[kept++] = i;
        }
        s.n_run = kept;
        isim_itl_hist_add(itl, now - before, gaps_of_dt);
    }

    /* ---- figures ---- */
    res->n = n;
    res->req = malloc(n * sizeof *res->req);
    if (!res->req) {
        st = isim__fail(err, ISIM_ENOMEM, "", 0, 0, "out of memory");
        goto done;
    }
    double first_arrival = s.q[0].arrival;
    for (size_t i = 0; i < n; i++) {
        const sreq *r = &s.q[i];
        res->req[i] = (isim_served){r->arrival - first_arrival,
                                    r->admitted - first_arrival,
                                    r->first - first_arrival,
                                    r->done - first_arrival,
                                    r->prompt,
                                    r->out,
                                    r->preempted};
    }
    res->devices = isim_step_devices(x);
    res->kv_tokens = kv;
    res->max_running = s.max_run;
    res->token_budget = s.budget;
    res->policy = sc->policy;
    const isim_serve_totals tot = {.duration_s = now - first_arrival,
                                   .busy_s = busy,
                                   .running_s = w_run,
                                   .waiting_mid = wait_mid,
                                   .waiting_last = wait_last,
                                   .open_loop = t->kind != ISIM_ARRIVE_CLOSED}; /* or a trace */
    if ((st = isim_serve_summarize(res, &tot, itl, err)))
        goto done;
    *out = res;
    res = NULL;
done:
    isim_serve_result_free(res);
    free(s.q);
    free(s.wait.v);
    free(s.run);
    free(reqs);
    isim_itl_hist_free(itl);
    if (rng)
        gsl_rng_free(rng);
    return st;
}

isim_status isim_serve_summarize(isim_serve_result *res, const isim_serve_totals *tot,
                                 const isim_itl_hist *itl, isim_error *err)
{
    const size_t n = res->n;
    double *v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return isim__fail(err, ISIM_ENOMEM, "", 0, 0, "out of memory");
    double in_tok = 0, out_tok = 0;
    res->preemptions = 0;
    for (size_t i = 0; i < n; i++) {
        in_tok += (double)res->req[i].input_tokens;
        out_tok += (double)res->req[i].output_tokens;
        res->preemptions += (size_t)res->req[i].preemptions;
    }
    res->duration_s = tot->duration_s;
    for (int which = 0; which < 3; which++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            const isim_served *r = &res->req[i];
            if (which == 0)
                v[k++] = r->first_token_s - r->arrival_s;
            else if (which == 2)
                v[k++] = r->done_s - r->arrival_s;
            else if (r->output_tokens > 1)
                v[k++] = (r->done_s - r->first_token_s) / (double)(r->output_tokens - 1);
        }
        isim_stats *st_of = which == 0 ? &res->ttft_s : which == 1 ? &res->tpot_s : &res->e2e_s;
        qsort(v, k, sizeof *v, isim_cmp_double);
        double sum = 0;
        for (size_t i = 0; i < k; i++)
            sum += v[i];
        *st_of = (isim_stats){k ? sum / (double)k : NAN, isim_quantile_sorted(v, k, 0.5),
                              isim_quantile_sorted(v, k, 0.9), isim_quantile_sorted(v, k, 0.99),
                              k ? v[k - 1] : NAN};
    }
    res->itl_s = itl->n ? (isim_stats){itl->sum / (double)itl->n, itl_quantile(itl, 0.5),
                                       itl_quantile(itl, 0.9), itl_quantile(itl, 0.99), itl->max}
                        : (isim_stats){NAN, NAN, NAN, NAN, NAN};
    double dur = res->duration_s > 0 ? res->duration_s : 1;
    res->input_tokens_per_s = in_tok / dur;
    res->output_tokens_per_s = out_tok / dur;
    res->busy = tot->busy_s / dur;
    res->mean_running = tot->running_s / dur;
    /* waiting: from arrival to first admission, counted over time from the requests' own
     * times (a request that arrives during a pass waits until the next) */
    double waited = 0;
    for (size_t i = 0; i < n; i++)
        waited += res->req[i].admitted_s - res->req[i].arrival_s;
    res->mean_waiting = waited / dur;
    res->max_waiting = most_waiting(res->req, n, v);
    res->overloaded = false;
    res->offered_rps = res->served_rps = 0;
    if (tot->open_loop && n > 1) {
        double span = res->req[n - 1].arrival_s - res->req[0].arrival_s;
        res->offered_rps = span > 0 ? (double)(n - 1) / span : INFINITY;
        res->served_rps = (double)n / dur;
        res->overloaded =
            tot->waiting_last > tot->waiting_mid && (double)tot->waiting_last > 0.1 * (double)n;
    }
    free(v);
    return ISIM_OK;
}

void isim_serve_result_free(isim_serve_result *r)
{
    if (!r)
        return;
    free(r->req);
    free(r->passes);
    free(r);
}

/* ---- the closed form ------------------------------------------------------------------ */

double isim_serve_admitted(const isim_result *res, double b, double input_tokens,
                           double output_tokens)
{
    const isim_memory *mem = &res->memory;
    if (mem->total <= mem->capacity || !(mem->kv_cache > 0))
        return b;
    double per_seq =
        mem->kv_cache / b * (input_tokens + output_tokens / 2) / (input_tokens + output_tokens);
    double room = mem->capacity - (mem->total - mem->kv_cache);
    /* a layout whose weights leave no room by this memory model still ran: the model is
     * too strict there, and the batch stands */
    if (room < per_seq)
        return b;
    return fmin(b, floor(room / per_seq));
}

double isim_serve_capacity(const isim_result *res, double batch_per_group, double step_overhead_s,
                           double output_tokens)
{
    /* b sequences of a group take osl decode passes per b requests, and each request's
     * prompt chunks ride in those passes, adding their compute (not another pass's fixed
     * overhead): the closed form's per_prompt */
    double b = batch_per_group, dp = res->dp > 0 ? res->dp : 1;
    double per_prompt = fmax(res->prefill_all_s - res->prefill_chunks * step_overhead_s, 0) / b;
    return dp * b / (output_tokens * res->tpot_s + b * per_prompt);
}

double isim_md1_wait(double rho, double s)
{
    rho = rho < 0.95 ? rho : 0.95;
    return rho * s / (2 * (1 - rho));
}

/* isim_predict at `batch` sequences; false when the layout is infeasible for a reason other
 * than memory (a layout the memory model finds too big still runs: its times stand). */
static bool predict_at(const isim_model *m, const isim_hw *hw, const isim_query *q, double batch,
                       isim_result *res, isim_status *st, isim_error *err)
{
    isim_query b = *q;
    b.batch = batch < 1 ? 1 : batch;
    *st = isim_predict(m, hw, &b, res, err);
    return !*st && (res->feasible || res->reason == ISIM_REASON_MEMORY);
}

isim_status isim_serve_closed_loop(const isim_model *m, const isim_hw *hw, const isim_query *q,
                                   const isim_closed_loop *c, isim_closed_form *out,
                                   isim_result *res, isim_error *err)
{
    memset(out, 0, sizeof *out);
    isim_status st;
    if (!predict_at(m, hw, q, q->batch, res, &st, err))
        return st;
    const double dp = res->dp > 0 ? res->dp : 1, osl = q->output_tokens, isl = q->input_tokens;
    const double ovh = hw->step_overhead_s, clients = c->clients;
    double b = isim_serve_admitted(res, clients, isl, osl);
    if (b < clients && !predict_at(m, hw, q, b * dp, res, &st, err))
        return st;
    /* Each data-parallel group decodes b sequences and prefills the prompts of the requests
     * that replace finished ones in the same passes (chunked prefill). Over one request's
     * osl - 1 decode steps the other b - 1 requests each start once: their prefill passes
     * add to its TPOT. */
    double per_prompt = fmax(res->prefill_all_s - res->prefill_chunks * ovh, 0) / b;
    double chunks_each = ceil(isl / hw->prefill_chunk_tokens);
    double tpot = res->tpot_s + (osl > 1 ? (b - 1) / (osl - 1) * per_prompt : 0);
    /* TTFT in the steady state: the pass under way when the request arrives (none when it
     * is alone), its own chunks riding with the others' decodes, and the queue of prompts
     * ahead of it (M/D/1, arrivals b per request cycle). */
    double cycle = osl * tpot + per_prompt;
    double steady = hw->request_overhead_s + per_prompt + chunks_each * ovh +
                    isim_md1_wait(b * per_prompt / cycle, per_prompt);
    if (b > 1)
        steady += 0.5 * tpot + chunks_each * (res->tpot_s - ovh);
    double ttft = c->first_burst ? 0.9 * steady + 0.1 * res->ttft_s : steady;
    /* Requests of one fixed length that start together can stay together: the b prompts
     * prefill as one burst, then decode with no prompt among them. A share of them does
     * (the scheduler decides: one that admits every waiting prompt at once keeps them in
     * step; one that mixes chunks into decode passes spreads them); random lengths break
     * the lock-step. */
    if (c->same_lengths && b > 1) {
        double w = c->lockstep;
        tpot = w * res->tpot_s + (1 - w) * tpot;
        ttft = w * (hw->request_overhead_s + res->ttft_s) + (1 - w) * ttft;
    }
    /* clients beyond the admitted sequences wait for a slot: b slots serve requests of
     * ttft + (osl - 1) tpot each, so a client's cycle is that times clients / b */
    if (b < clients)
        ttft += (ttft + (osl - 1) * tpot) * (clients / b - 1);
    *out = (isim_closed_form){ttft, tpot, b, res->tpot_s, per_prompt, res->ttft_s, steady};
    return ISIM_OK;
}

void isim_serve_goodput(isim_serve_result *s, double ttft_slo_s, double tpot_slo_s)
{
    isim_goodput g = {.ttft_slo_s = ttft_slo_s, .tpot_slo_s = tpot_slo_s};
    for (size_t i = 0; i < s->n; i++) {
        const isim_served *r = &s->req[i];
        double ttft = r->first_token_s - r->arrival_s;
        double tpot = r->output_tokens > 1
                          ? (r->done_s - r->first_token_s) / (double)(r->output_tokens - 1)
                          : 0;
        g.within +=
            (ttft_slo_s <= 0 || ttft <= ttft_slo_s) && (tpot_slo_s <= 0 || tpot <= tpot_slo_s);
    }
    g.share = s->n ? (double)g.within / (double)s->n : 0;
    g.per_s = s->duration_s > 0 ? (double)g.within / s->duration_s : 0;
    s->goodput = g;
}
