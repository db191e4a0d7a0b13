/* infersim run --engine cpu under traffic (--rate R or --concurrency C): the CPU engine
 * serving requests one by one with the simulator's scheduler (runtime/cpu/serve.c,
 * docs/engine.md "Serving"), with simulate's traffic options and writers. */
#include "cli/cli.h"
#include "reports/report.h"
#include "runtime/runtime.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_run_serve(cli_opt *opts, const isim_model *m, isim_rt_options *o, int batch, bool json);

/* The running sequences' limit when --batch is not given: vLLM's default on CPUs
 * (docs/serving.md, "Slots"). */
#define RUN_SERVE_SEQS 128

/* Options of a static run that serving does not take; the usage error when one is given. */
static int static_only(cli_opt *opts)
{
    static const struct {
        const char *name, *why;
    } no[] = {
        {"tp", "runs in one process"},
        {"pp", "runs in one process"},
        {"micro-batches", "runs in one process"},
        {"prompt-ids", "gives each request a seeded random prompt of its length"},
        {"dump-logits", "writes every token with --token-log FILE, not the logits"},
    };
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (cli_find(opts, no[i].name)->value)
            return cli_usage_error("run", "--%s: serving under traffic (--rate, --concurrency) %s",
                                   no[i].name, no[i].why);
    if (isim_rt_under_mpirun())
        return cli_usage_error("run", "serving under traffic (--rate, --concurrency) runs in one "
                                      "process: start it without mpirun");
    return CLI_OK;
}

/* A file an option names, checked before the run: not a directory, in a directory that
 * takes a file. Prints the error. */
static int output_target(const char *path)
{
    if (!path)
        return CLI_OK;
    int rc = cli_not_a_directory(path);
    if (rc)
        return rc;
    const char *slash = strrchr(path, '/');
    if (!slash)
        return cli_writable_dir(".", false);
    char *dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
    if (!dir)
        return cli_oom();
    rc = cli_writable_dir(dir, false);
    free(dir);
    return rc;
}

static void write_passes(FILE *out, void *ctx)
{
    isim_report_serve_passes_csv(out, ((const isim_rt_serving *)ctx)->res);
}

static void write_tokens(FILE *out, void *ctx)
{
    const isim_rt_serving *sv = ctx;
    isim_report_serve_tokens_csv(out, sv->res, sv->tok_at, sv->generated, sv->token_s);
}

/* The traffic and the scheduler: the options as simulate reads them, the limits the
 * engine's own where not given (the token budget its chunk, the KV cache what its slots
 * hold); *context the longest request, which sizes the engine. */
static int traffic(cli_opt *opts, const isim_model *m, const isim_rt_options *o, int batch,
                   isim_traffic *t, isim_sched *s, int *context)
{
    isim_query q;
    isim_query_init(&q);
    static const char *const len[2][2] = {{"input-tokens", "input-dist"},
                                          {"output-tokens", "output-dist"}};
    double *val[2] = {&q.input_tokens, &q.output_tokens};
    for (int i = 0; i < 2; i++) {
        const cli_opt *fixed = cli_find(opts, len[i][0]);
        int v;
        if (!fixed->value && !cli_find(opts, len[i][1])->value)
            return cli_usage_error("run", "missing --%s or --%s", len[i][0], len[i][1]);
        if (fixed->value && !cli_int("run", fixed, 1, 1 << 24, &v))
            return CLI_USAGE;
        *val[i] = fixed->value ? v : 1;
    }
    bool given;
    int rc = cli_traffic("run", opts, &q, batch, t, s, &given);
    if (rc)
        return rc;
    if (t->kind == ISIM_ARRIVE_TRACE)
        return cli_usage_error("run", "--trace: the CPU engine serves drawn traffic (--rate or "
                                      "--concurrency), not a trace");
    if (s->policy != ISIM_POLICY_VLLM)
        return cli_usage_error("run",
                               "--policy %s: the CPU engine's serving loop schedules as "
                               "vLLM does (--policy vllm)",
                               isim_sched_policy_name(s->policy));
    s->token_budget = s->token_budget ? s->token_budget : o->max_chunk ? o->max_chunk : 512;
    s->block_tokens = s->block_tokens ? s->block_tokens : 16;
    bool kv_given = s->kv_tokens > 0;
    if (!kv_given) /* for the draw: lengths within the model's context */
        s->kv_tokens = (double)batch * (double)m->max_context;
    isim_trace_req *reqs = malloc((size_t)t->requests * sizeof *reqs);
    if (!reqs)
        return cli_oom();
    isim_error err = {0};
    if (isim_serve_draw(m, NULL, s, t, reqs, &err)) {
        free(reqs);
        return cli_error(&err);
    }
    int64_t longest = 1;
    for (int64_t i = 0; i < t->requests; i++)
        if (reqs[i].input_tokens + reqs[i].output_tokens > longest)
            longest = reqs[i].input_tokens + reqs[i].output_tokens;
    free(reqs);
    *context = (int)longest; /* within the model's context: checked by the draw */
    if (!kv_given)
        s->kv_tokens = (double)batch * (double)longest;
    return CLI_OK;
}

static void print_table(const isim_model *m, const isim_rt_options *o, const isim_rt *rt,
                        const isim_traffic *t, const isim_rt_serving *sv)
{
    printf("%s on the CPU engine: 1 process, %d thread%s, %s kernels, weights %s, KV %s\n", m->name,
           isim_rt_threads(rt), isim_rt_threads(rt) == 1 ? "" : "s", isim_rt_kernels(rt),
           isim_dtype_name(o->weights), isim_dtype_name(o->kv));
    printf("served request by request at wall-clock times (seed %llu; the warm-up pass ran "
           "%.4g tokens/s",
           (unsigned long long)t->seed, sv->warm_tokens_per_s);
    if (isfinite(sv->others_cpu_share))
        printf("; other programs took %.0f%% of the CPU time", sv->others_cpu_share * 100);
    printf("):\n");
    isim_report_serve_figures(stdout, t, sv->res);
}

int cli_run_serve(cli_opt *opts, const isim_model *m, isim_rt_options *o, int batch, bool json)
{
    int rc = static_only(opts);
    if (rc)
        return rc;
    bool csv = cli_find(opts, "csv")->value != NULL;
    if (json && csv)
        return cli_usage_error("run", "--json and --csv are exclusive");
    isim_traffic t;
    isim_sched s;
    int context = 0;
    batch = batch ? batch : RUN_SERVE_SEQS;
    if ((rc = traffic(opts, m, o, batch, &t, &s, &context)))
        return rc;
    const char *pass_log = cli_find(opts, "pass-log")->value,
               *token_log = cli_find(opts, "token-log")->value;
    if ((rc = output_target(pass_log)) || (rc = output_target(token_log)))
        return rc;
    o->max_batch = batch;
    o->max_context = context;
    /* a pass is one forward pass of at most the budget's rows */
    o->max_chunk = o->max_chunk ? o->max_chunk : (int)s.token_budget;
    isim_rt *rt = NULL;
    isim_rt_serving sv = {0};
    isim_error err = {0};
    if (isim_rt_open(o, &rt, &err) || isim_rt_serve(rt, &s, &t, 0, &sv, &err)) {
        rc = cli_error(&err);
        goto done;
    }
    if ((pass_log && (rc = cli_write_file(pass_log, write_passes, &sv))) ||
        (token_log && (rc = cli_write_file(token_log, write_tokens, &sv))))
        goto done;
    if (json) {
        isim_report_engine e = {isim_dtype_name(o->weights), isim_dtype_name(o->kv),
                                isim_rt_kernels(rt),         isim_rt_threads(rt),
                                sv.warm_tokens_per_s,        sv.others_cpu_share};
        rc = cli_print_doc(isim_report_engine_serve_json(m, &e, &t, sv.res));
    } else if (csv) {
        isim_report_serve_csv(stdout, &t, sv.res);
    } else {
        print_table(m, o, rt, &t, &sv);
    }
done:
    isim_rt_serving_release(&sv);
    isim_rt_close(rt);
    return rc;
}
