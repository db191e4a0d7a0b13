/* The CPU engine serving requests under traffic (runtime.h, docs/engine.md "Serving"): a
 * continuous-batching loop whose scheduler is sim/serve.c's, decision for decision, so
 * that a simulation of the same requests can be checked against real passes and the
 * engine's passes replayed through the simulator. Where the two differ, only the clock
 * does: here a pass takes what the forward pass took. */
#include "runtime/cpu/engine.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Times are whole multiples of 2^-30 s (about a nanosecond): sums and differences of such
 * times under 2^22 s are exact in a double, so that a simulation that adds up the engine's
 * pass times lands on the engine's clock to the bit, and a replay sees each arrival in the
 * pass the engine saw it in. */
static double on_grid(double s)
{
    return ldexp(round(ldexp(s, 30)), -30);
}

typedef struct {
    double arrival, admitted, first, done, last; /* last: its latest token */
    int64_t prompt, out, gen, computed, blocks, preempted;
    bool prefilling;
    bool decoding;      /* has a decode token in the pass being built */
    int slot;           /* the engine's sequence slot while it runs, else -1 */
    int64_t from, take; /* the pass's rows: ids [from, from + take) */
    int at;             /* its place in the pass's batch */
    int *ids;           /* its prompt, then what it generated */
} ereq;

typedef struct {
    isim_rt *rt;
    ereq *q;
    size_t *wait, wait_cap, wait_head, wait_n; /* a ring: the waiting requests in order */
    size_t *run, n_run;
    int *free_slot, n_free;
    int64_t blocks_free, block, max_run;
    int64_t n_dec;  /* decode tokens of the pass being built */
    double dec_ctx; /* their contexts' sum */
} server;

static void wait_push_back(server *s, size_t i)
{
    s->wait[(s->wait_head + s->wait_n++) % s->wait_cap] = i;
}

static void wait_push_front(server *s, size_t i)
{
    s->wait_head = (s->wait_head + s->wait_cap - 1) % s->wait_cap;
    s->wait[s->wait_head] = i;
    s->wait_n++;
}

static int64_t blocks_for(const server *s, int64_t tokens)
{
    return (tokens + s->block - 1) / s->block;
}

/* sim/serve.c's preempt: the k-th running request leaves with its blocks, to recompute its
 * prompt and what it generated from the front of the queue; its slot is emptied. */
static void preempt(server *s, size_t k)
{
    size_t i = s->run[k];
    ereq *r = &s->q[i];
    if (r->decoding) {
        s->n_dec--;
        s->dec_ctx -= (double)r->computed;
    }
    s->blocks_free += r->blocks;
    r->blocks = 0;
    r->computed = 0;
    r->prefilling = true;
    r->decoding = false;
    r->take = 0;
    r->preempted++;
    isim_rt_reset(s->rt, r->slot);
    s->free_slot[s->n_free++] = r->slot;
    r->slot = -1;
    memmove(&s->run[k], &s->run[k + 1], (s->n_run - k - 1) * sizeof *s->run);
    s->n_run--;
    wait_push_front(s, i);
}

static bool grow(server *s, ereq *r, int64_t tokens)
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

/* sim/serve.c's room: the latest admitted are preempted until the k-th running request's
 * blocks hold `tokens`; false when it was the latest itself. */
static bool room(server *s, size_t k, int64_t tokens)
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

typedef struct {
    double tokens, ctx;
    int64_t seqs, finishing;
} prompts;

/* sim/serve.c's chunk, with the rows it puts in the pass. */
static bool chunk(server *s, ereq *r, int64_t *budget, prompts *p)
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
    r->from = r->computed;
    r->take = c;
    r->computed += c;
    return true;
}

/* Builds the next pass as sim/serve.c does (decodes first, then chunks of started prompts,
 * then admissions in arrival order: the engine has no prefix cache, so an admitted request
 * computes from its first token); pr gets its prompt tokens, *n_dec and *dec_ctx its
 * decodes. */
static void plan(server *s, int64_t budget, double now, prompts *pr, int64_t *n_dec,
                 double *dec_ctx)
{
    s->n_dec = 0;
    s->dec_ctx = 0;
    for (size_t k = 0; k < s->n_run; k++)
        s->q[s->run[k]].take = 0;
    for (size_t k = 0; k < s->n_run && budget > 0; k++) {
        ereq *r = &s->q[s->run[k]];
        if (r->prefilling)
            continue;
        if (!room(s, k, r->computed + 1))
            break;
        r->decoding = true;
        r->from = r->computed;
        r->take = 1;
        s->n_dec++;
        s->dec_ctx += (double)r->computed;
        budget--;
    }
    for (size_t k = 0; k < s->n_run && budget > 0; k++) {
        ereq *r = &s->q[s->run[k]];
        if (!r->prefilling)
            continue;
        int64_t left = r->prompt + r->gen - r->computed;
        if (!room(s, k, r->computed + (left < budget ? left : budget)))
            break;
        chunk(s, r, &budget, pr);
    }
    *n_dec = s->n_dec;
    *dec_ctx = s->dec_ctx;
    while (budget > 0 && s->wait_n > 0 && (int64_t)s->n_run < s->max_run) {
        size_t i = s->wait[s->wait_head];
        ereq *r = &s->q[i];
        if (!chunk(s, r, &budget, pr))
            break;
        s->wait_head = (s->wait_head + 1) % s->wait_cap;
        s->wait_n--;
        if (isnan(r->admitted))
            r->admitted = now;
        r->prefilling = true;
        r->slot = s->free_slot[--s->n_free];
        s->run[s->n_run++] = i;
    }
}

/* Appends a pass to the log, doubling it; false when out of memory. */
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

/* Sleeps until `at` on the clock isim__rt_now reads. */
static void sleep_until(double at)
{
    double left = at - isim__rt_now();
    while (left > 0) {
        struct timespec ts = {(time_t)left, (long)((left - floor(left)) * 1e9)};
        if (nanosleep(&ts, NULL) != 0 && errno != EINTR)
            return;
        left = at - isim__rt_now();
    }
}

/* What the loop works with beside the scheduler. */
typedef struct {
    isim_itl_hist *itl;
    int *slots, *n, *next;
    const int **tok;
    size_t pass_cap;
} loop_bufs;

/* The checks of the engine's own limits, before any request is drawn. */
static isim_status check_engine(const isim_rt *rt, const isim_sched *s, const isim_traffic *t,
                                isim_error *err)
{
    if (rt->o.tp * rt->o.pp != 1)
        return isim__rt_fail(err, ISIM_EINVAL,
                             "serving runs in one process: tp %d x pp %d is not served yet",
                             rt->o.tp, rt->o.pp);
    if (t->prefix_hit != 0)
        return isim__rt_fail(err, ISIM_EINVAL,
                             "the CPU engine has no prefix cache: a prefix-cache hit rate of %g "
                             "is simulated only (serve with 0)",
                             t->prefix_hit);
    if (s->max_seqs < 1 || s->token_budget < 1 || s->block_tokens < 1 || !(s->kv_tokens >= 1))
        return isim__rt_fail(err, ISIM_EINVAL,
                             "the engine's scheduler needs every limit set: running sequences "
                             "%lld, token budget %lld, KV block %lld, KV cache %g tokens",
                             (long long)s->max_seqs, (long long)s->token_budget,
                             (long long)s->block_tokens, s->kv_tokens);
    if (s->max_seqs > rt->batch_cap)
        return isim__rt_fail(err, ISIM_EINVAL,
                             "%lld running sequences at most, but the engine holds %d (its "
                             "max_batch)",
                             (long long)s->max_seqs, rt->batch_cap);
    return ISIM_OK;
}

/* The requests against the engine's context and the run's bound on time. */
static isim_status check_requests(const isim_rt *rt, const isim_traffic *t,
                                  const isim_trace_req *reqs, size_t n, double max_s,
                                  isim_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (reqs[i].input_tokens + reqs[i].output_tokens - 1 > rt->ctx)
            return isim__rt_fail(
                err, ISIM_EINVAL,
                "request %zu of %lld input + %lld output tokens needs %lld "
                "positions, more than the engine's context of %d",
                i + 1, (long long)reqs[i].input_tokens, (long long)reqs[i].output_tokens,
                (long long)(reqs[i].input_tokens + reqs[i].output_tokens - 1), rt->ctx);
    if (t->kind != ISIM_ARRIVE_CLOSED && reqs[n - 1].arrival_s > max_s)
        return isim__rt_fail(err, ISIM_EINVAL,
                             "the arrivals span %.0f s, more than the %.0f s a serving run may "
                             "take: a higher rate or fewer requests",
                             reqs[n - 1].arrival_s, max_s);
    return ISIM_OK;
}

/* A pass of the token budget's prompt tokens in slot 0, discarded: it touches every row of
 * the engine's scratch memory (a first pass pays for that, which a serving engine pays once
 * when it starts) and gives the engine's best rate, tokens per second, for the bound. */
static isim_status warm_up(isim_rt *rt, int64_t budget, uint64_t seed, double *rate,
                           isim_error *err)
{
    int w = budget < rt->ctx ? (int)budget : rt->ctx, slot = 0, next = 0;
    if (w > rt->chunk)
        w = rt->chunk;
    int *ids = malloc((size_t)w * sizeof *ids);
    if (!ids)
        return isim__rt_fail(err, ISIM_ENOMEM, "out of memory");
    isim_rt_random_prompt(seed + 1, 0, w, rt->vocab, ids);
    const int *tok = ids;
    isim_rt_reset(rt, 0);
    double t0 = isim__rt_now();
    isim_status st = isim__rt_forward(rt, 1, &slot, &tok, &w, NULL, &next, err);
    double dt = isim__rt_now() - t0;
    isim_rt_reset(rt, 0);
    free(ids);
    *rate = dt > 0 ? w / dt : INFINITY;
    return st;
}

/* The forward pass of the planned rows: one isim_rt_forward of every running request that
 * has rows in it, in running order; b->next gets each one's greedy token. */
static isim_status forward(server *s, loop_bufs *b, isim_error *err)
{
    int batch = 0;
    for (size_t k = 0; k < s->n_run; k++) {
        ereq *r = &s->q[s->run[k]];
        if (r->take == 0)
            continue;
        r->at = batch;
        b->slots[batch] = r->slot;
        b->n[batch] = (int)r->take;
        b->tok[batch] = r->ids + r->from;
        batch++;
    }
    return isim__rt_forward(s->rt, batch, b->slots, b->tok, b->n, NULL, b->next, err);
}

isim_status isim_rt_serve(isim_rt *rt, const isim_sched *sc, const isim_traffic *t, double max_s,
                          isim_rt_serving *out, isim_error *err)
{
    memset(out, 0, sizeof *out);
    max_s = max_s > 0 ? max_s : ISIM_RT_SERVE_MAX_S;
    isim_status st = check_engine(rt, sc, t, err);
    if (st)
        return st;
    if ((st = isim_serve_check(rt->m, NULL, sc, t, err)))
        return st;
    const size_t n = (size_t)t->requests;
    isim_trace_req *reqs = malloc(n * sizeof *reqs);
    if (!reqs)
        return isim__rt_fail(err, ISIM_ENOMEM, "out of memory");
    if ((st = isim_serve_draw(rt->m, NULL, sc, t, reqs, err)) ||
        (st = check_requests(rt, t, reqs, n, max_s, err)) ||
        (st = warm_up(rt, sc->token_budget, t->seed, &out->warm_tokens_per_s, err))) {
        free(reqs);
        return st;
    }
    /* every request's prompt, output and ids: at most 1e7 requests of the model's context
     * each, far within size_t */
    double all = 0;
    size_t ids_n = 0, toks_n = 0;
    for (size_t i = 0; i < n; i++) {
        ids_n += (size_t)(reqs[i].input_tokens + reqs[i].output_tokens);
        toks_n += (size_t)reqs[i].output_tokens;
        all += (double)(reqs[i].input_tokens + reqs[i].output_tokens);
    }
    double least = all / out->warm_tokens_per_s;
    if (least > max_s) {
        free(reqs);
        return isim__rt_fail(err, ISIM_EINVAL,
                             "%zu requests of %.0f tokens in all need at least about %.0f s on "
                             "this engine (%.0f tokens/s in a full pass of its warm-up), more "
                             "than the %.0f s a serving run may take: fewer requests or shorter "
                             "lengths",
                             n, all, least, out->warm_tokens_per_s, max_s);
    }
    server s = {.rt = rt};
    s.block = sc->block_tokens;
    s.blocks_free = (int64_t)floor(sc->kv_tokens / (double)s.block);
    s.max_run = sc->max_seqs;
    const size_t mr = (size_t)s.max_run;
    s.q = calloc(n, sizeof *s.q);
    s.wait = malloc(n * sizeof *s.wait);
    s.wait_cap = n;
    s.run = malloc(mr * sizeof *s.run);
    s.free_slot = malloc(mr * sizeof *s.free_slot);
    int *ids = malloc(ids_n * sizeof *ids);
    loop_bufs b = {.itl = isim_itl_hist_new()};
    b.slots = malloc(mr * sizeof *b.slots);
    b.n = malloc(mr * sizeof *b.n);
    b.next = malloc(mr * sizeof *b.next);
    b.tok = malloc(mr * sizeof *b.tok);
    isim_serve_result *res = calloc(1, sizeof *res);
    out->tok_at = malloc((n + 1) * sizeof *out->tok_at);
    out->generated = malloc(toks_n * sizeof *out->generated);
    out->token_s = malloc(toks_n * sizeof *out->token_s);
    if (!s.q || !s.wait || !s.run || !s.free_slot || !ids || !b.itl || !b.slots || !b.n ||
        !b.next || !b.tok || !res || !out->tok_at || !out->generated || !out->token_s) {
        st = isim__rt_fail(err, ISIM_ENOMEM, "out of memory");
        goto done;
    }
    for (int k = 0; k < s.max_run; k++) {
        s.free_slot[k] = s.max_run - 1 - k; /* slot 0 first */
        isim_rt_reset(rt, k);
    }
    s.n_free = (int)s.max_run;
    size_t known = 0, at = 0;
    for (size_t i = 0; i < n; i++) {
        ereq *r = &s.q[i];
        r->prompt = reqs[i].input_tokens;
        r->out = reqs[i].output_tokens;
        r->arrival = isnan(reqs[i].arrival_s) ? NAN : on_grid(reqs[i].arrival_s);
        r->admitted = r->first = r->done = NAN;
        r->slot = -1;
        r->ids = ids + at;
        isim_rt_random_prompt(t->seed, (int)i, (int)r->prompt, rt->vocab, r->ids);
        at += (size_t)(r->prompt + r->out);
        known += !isnan(r->arrival);
    }
    out->tok_at[0] = 0;
    for (size_t i = 0; i < n; i++)
        out->tok_at[i + 1] = out->tok_at[i] + (size_t)s.q[i].out;

    rt_cpu_times cpu0, cpu1;
    const bool have_cpu0 = isim__rt_cpu_times_now(&cpu0);
    const double t0 = isim__rt_now();
    double now = 0, busy = 0, w_run = 0;
    size_t next = 0, finished = 0, mid = n / 2, wait_mid = 0, wait_last = 0;
    bool seen_mid = false, seen_last = false;
    while (finished < n) {
        while (next < known && s.q[next].arrival <= now) {
            wait_push_back(&s, next++);
            if (next > mid && !seen_mid) {
                seen_mid = true;
                wait_mid = s.wait_n;
            }
            if (next == n && !seen_last) {
                seen_last = true;
                wait_last = s.wait_n;
            }
        }
        if (s.n_run == 0 && s.wait_n == 0) {
            if (next >= known) {
                st = isim__rt_fail(err, ISIM_EINVAL,
                                   "no request left to serve with %zu of %zu unfinished",
                                   n - finished, n);
                goto done;
            }
            /* idle until the next arrival; the pass it starts counts from the arrival, so
             * that a late wake-up is in that pass's time, as a replay times it */
            sleep_until(t0 + s.q[next].arrival);
            now = s.q[next].arrival;
            continue;
        }
        prompts pr = {0};
        int64_t n_dec;
        double dec_ctx;
        plan(&s, sc->token_budget, now, &pr, &n_dec, &dec_ctx);
        if (n_dec == 0 && pr.seqs == 0) {
            st = isim__rt_fail(err, ISIM_EINVAL,
                               "the scheduler could place no token in a pass (%zu running, %zu "
                               "waiting, %lld KV blocks free)",
                               s.n_run, s.wait_n, (long long)s.blocks_free);
            goto done;
        }
        isim_step_mix mix = {.decode_seqs = (double)n_dec,
                             .decode_ctx = n_dec ? dec_ctx / (double)n_dec : 0,
                             .prefill_tokens = pr.tokens,
                             .prefill_seqs = (double)pr.seqs,
                             .prefill_ctx = pr.tokens > 0 ? pr.ctx / pr.tokens : 0,
                             .finishing = (double)pr.finishing};
        if ((st = forward(&s, &b, err)))
            goto done;
        double end = on_grid(isim__rt_now() - t0);
        double dt = end > now ? end - now : ldexp(1, -30);
        if (!log_pass(res, &b.pass_cap,
                      &(isim_pass){now, dt, mix, (int64_t)s.n_run, (int64_t)s.wait_n})) {
            st = isim__rt_fail(err, ISIM_ENOMEM, "out of memory");
            goto done;
        }
        w_run += (double)s.n_run * dt;
        busy += dt;
        now += dt;
        res->steps++;
        /* the pass's tokens, as sim/serve.c emits them */
        size_t kept = 0;
        for (size_t k = 0; k < s.n_run; k++) {
            size_t i = s.run[k];
            ereq *r = &s.q[i];
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
                r->ids[r->prompt + r->gen] = b.next[r->at];
                out->token_s[out->tok_at[i] + (size_t)r->gen] = now;
                r->gen++;
                if (isnan(r->first))
                    r->first = now;
                else
                    isim_itl_hist_add(b.itl, now - r->last, 1);
                r->last = now;
            }
            if (r->gen >= r->out) {
                r->done = now;
                s.blocks_free += r->blocks;
                r->blocks = 0;
                isim_rt_reset(rt, r->slot);
                s.free_slot[s.n_free++] = r->slot;
                r->slot = -1;
                finished++;
                if (known < n) /* a closed loop: the client sends its next request */
                    s.q[known++].arrival = now;
                continue;
            }
            s.run[kept++] = i;
        }
        s.n_run = kept;
        if (now > max_s && finished < n) {
            st = isim__rt_fail(err, ISIM_EINVAL,
                               "the run passed the %.0f s a serving run may take with %zu of "
                               "%zu requests unfinished",
                               max_s, n - finished, n);
            goto done;
        }
    }

    out->others_cpu_share =
        have_cpu0 && isim__rt_cpu_times_now(&cpu1) ? isim__rt_others_share(&cpu0, &cpu1) : NAN;

    /* ---- figures, as the simulation's ---- */
    res->n = n;
    res->req = malloc(n * sizeof *res->req);
    if (!res->req) {
        st = isim__rt_fail(err, ISIM_ENOMEM, "out of memory");
        goto done;
    }
    const double first_arrival = s.q[0].arrival;
    for (size_t i = 0; i < n; i++) {
        const ereq *r = &s.q[i];
        res->req[i] = (isim_served){r->arrival - first_arrival,
                                    r->admitted - first_arrival,
                                    r->first - first_arrival,
                                    r->done - first_arrival,
                                    r->prompt,
                                    r->out,
                                    r->preempted};
        memcpy(out->generated + out->tok_at[i], r->ids + r->prompt,
               (size_t)r->out * sizeof *out->generated);
    }
    for (size_t k = 0; k < toks_n; k++)
        out->token_s[k] -= first_arrival;
    for (size_t p = 0; p < res->n_passes; p++)
        res->passes[p].start_s -= first_arrival;
    res->devices = 1;
    res->kv_tokens = sc->kv_tokens;
    res->max_running = sc->max_seqs;
    res->token_budget = sc->token_budget;
    const isim_serve_totals tot = {.duration_s = now - first_arrival,
                                   .busy_s = busy,
                                   .running_s = w_run,
                                   .waiting_mid = wait_mid,
                                   .waiting_last = wait_last,
                                   .open_loop = t->kind != ISIM_ARRIVE_CLOSED};
    if ((st = isim_serve_summarize(res, &tot, b.itl, err)))
        goto done;
    out->res = res;
    res = NULL;
done:
    isim_serve_result_free(res);
    isim_itl_hist_free(b.itl);
    free(b.slots);
    free(b.n);
    free(b.next);
    free(b.tok);
    free(s.q);
    free(s.wait);
    free(s.run);
    free(s.free_slot);
    free(ids);
    free(reqs);
    if (st)
        isim_rt_serving_release(out);
    return st;
}

void isim_rt_serving_release(isim_rt_serving *s)
{
    isim_serve_result_free(s->res);
    free(s->tok_at);
    free(s->generated);
    free(s->token_s);
    memset(s, 0, sizeof *s);
}
