/* infersim run --engine cpu: runs a model for real (docs/engine.md) and prints what it
 * measured, split like the simulator's terms. Under mpirun it is one rank of a tensor x
 * pipeline parallel run; rank 0 prints, a failing rank prints why and ends the run. */
#include "cli/cli.h"
#include "runtime/runtime.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void help(const cli_opt *opts)
{
    printf(
        "usage: infersim run --engine cpu --model ID --batch B (--input-tokens I | --prompt-ids "
        "1,2,3)\n"
        "                    --output-tokens O [--weights-file F] [--tp T --pp P] [--dtype "
        "fp32|bf16|int8]\n"
        "                    [--threads N] [--json]\n"
        "       mpirun -np T*P infersim run ... --tp T --pp P\n\n"
        "Runs the model (seeded random weights, or a llama2.c checkpoint) on this machine:\n"
        "prefills B prompts, decodes O tokens per sequence greedily, and prints the prefill\n"
        "time, the decode step time (median and spread), tokens/s and each step's time\n"
        "split into matmul, attention, collective and other. Without --prompt-ids each\n"
        "sequence gets a seeded random prompt of I ids.\n\n"
        "       infersim run --engine cpu --model ID (--rate R | --concurrency C) [--requests N]\n"
        "                    (--input-tokens I | --input-dist D) (--output-tokens O | "
        "--output-dist D)\n"
        "                    [--batch B] [--json | --csv] [--pass-log F] [--token-log F]\n\n"
        "Under traffic the engine serves requests one by one as infersim simulate's scheduler\n"
        "does (docs/engine.md, Serving): the same requests for the same options, arriving at\n"
        "wall-clock times, at most B running (default 128), passes of decodes and prompt\n"
        "chunks within the token budget (default --chunk, 512), KV cache blocks (default:\n"
        "what the B slots hold). Prints TTFT, TPOT and end-to-end latency at p50, p90 and\n"
        "p99 as simulate does; --pass-log writes the engine's passes, --token-log every\n"
        "token with its time.\n\noptions:\n");
    cli_print_options(opts);
}

int cli_run_serve(cli_opt *opts, const isim_model *m, isim_rt_options *o, int batch, bool json);

/* The options of run: its own, then the traffic options of simulate (--seed is run's: it
 * seeds the weights, the prompts and the traffic alike) and serving's outputs. */
static const cli_opt run_opts[] = {
    {"engine", true, "cpu (the GPU engine is built with CUDA)", NULL},
    {"model", true, "model id (models/ID.yaml): the shape", NULL},
    {"weights-file", true, "llama2.c checkpoint to load (default: seeded random weights)", NULL},
    {"batch", true,
     "sequences decoded together (default 1); under traffic the running sequences at most "
     "(default 128)",
     NULL},
    {"input-tokens", true, "prompt length of each sequence (seeded random ids)", NULL},
    {"prompt-ids", true, "the prompt of every sequence, as token ids: 1,2,3", NULL},
    {"output-tokens", true, "tokens to generate per sequence", NULL},
    {"tp", true, "tensor-parallel processes (default 1)", NULL},
    {"pp", true, "pipeline stages (default 1)", NULL},
    {"micro-batches", true, "pipeline micro-batches (default pp)", NULL},
    {"dtype", true, "weights: fp32 (default), bf16 or int8", NULL},
    {"kv", true, "KV cache: fp32 (default) or bf16", NULL},
    {"threads", true, "threads per process (default: the CPUs over the processes)", NULL},
    {"seed", true, "seed of the random weights, prompts and traffic (default 1)", NULL},
    {"chunk", true, "rows per forward pass of the prefill (default 512)", NULL},
    {"kernels", true, "auto (default), avx512, avx2 or scalar", NULL},
    {"dump-logits", true, "write every step's logits (float32, batch x vocab) to FILE", NULL},
    {"json", false, "print JSON (under traffic: with every request)", NULL},
    {"csv", false, "under traffic: print one CSV row per request", NULL},
    {"pass-log", true, "under traffic: write the engine's passes to FILE (CSV)", NULL},
    {"token-log", true, "under traffic: write every generated token and its time to FILE (CSV)",
     NULL},
    {"data", true, "directory holding models/", NULL},
};
static const cli_opt traffic_opts[] = {CLI_TRAFFIC_OPTS};
#define RUN_N_OPTS                                                                                 \
    (sizeof run_opts / sizeof run_opts[0] + sizeof traffic_opts / sizeof traffic_opts[0] + 1)

/* "1,2,3" -> ids; false (usage error printed) when not a list of ids in [0, vocab). */
static bool parse_ids(const char *text, int vocab, int **ids, int *n)
{
    size_t cap = 1;
    for (const char *p = text; *p; p++)
        cap += *p == ',';
    *ids = malloc(cap * sizeof **ids);
    *n = 0;
    if (!*ids)
        return false;
    const char *p = text;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v >= vocab || (*end && *end != ',')) {
            cli_usage_error("run", "--prompt-ids: '%s' is not a list of token ids in [0, %d)", text,
                            vocab);
            free(*ids);
            *ids = NULL;
            return false;
        }
        (*ids)[(*n)++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (!*n) {
        cli_usage_error("run", "--prompt-ids is empty");
        free(*ids);
        *ids = NULL;
        return false;
    }
    return true;
}

/* Whether o's value, when given, is one of `allowed` (NULL-terminated); the usage error,
 * naming the choices, when it is not. */
static bool one_of(const cli_opt *o, const char *const *allowed)
{
    if (!o->value)
        return true;
    char list[128] = "";
    size_t at = 0;
    for (int i = 0; allowed[i]; i++) {
        if (strcmp(o->value, allowed[i]) == 0)
            return true;
        at += (size_t)snprintf(list + at, sizeof list - at, "%s%s",
                               !i               ? ""
                               : allowed[i + 1] ? ", "
                                                : " or ",
                               allowed[i]);
    }
    cli_usage_error("run", "--%s: '%s' is not one of %s", o->name, o->value, list);
    return false;
}

static bool dtype_opt(const cli_opt *o, const char *const *allowed, isim_dtype *out)
{
    if (!one_of(o, allowed))
        return false;
    if (o->value)
        isim_dtype_parse(o->value, out);
    return true;
}

/* --dump-logits FILE: the logits go to FILE.tmp-PID, renamed over FILE once the run has
 * finished, so that FILE is either whole or as it was. A failed run removes the temporary,
 * and so does SIGINT, SIGTERM or SIGHUP (SIGKILL cannot be caught: it leaves the
 * temporary). A FIFO or a device (/dev/stdout) is written as the run goes. */
typedef struct {
    const char *path;
    char *tmp; /* NULL when writing path itself */
    FILE *f;
    int error; /* errno of the first failed write */
} dump;

/* The temporary for the signal handler: set before `dump_armed`. A handler, not the thread
 * of cleanup.c that the other commands use: the engine runs under mpirun, whose library
 * starts threads of its own that must keep the signals they expect, and one file needs no
 * more than unlink, which a handler may call. */
static char *volatile dump_tmp;
static volatile sig_atomic_t dump_armed;

static void dump_on_signal(int sig)
{
    if (dump_armed)
        unlink(dump_tmp);
    raise(sig); /* SA_RESETHAND: the default action, the exit status of that signal */
}

static const int dump_signals[] = {SIGINT, SIGTERM, SIGHUP};

static void dump_arm(dump *d)
{
    dump_tmp = d->tmp;
    dump_armed = 1;
    struct sigaction sa = {.sa_handler = dump_on_signal, .sa_flags = SA_RESETHAND};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof dump_signals / sizeof dump_signals[0]; i++)
        sigaction(dump_signals[i], &sa, NULL);
}

static void dump_disarm(void)
{
    for (size_t i = 0; i < sizeof dump_signals / sizeof dump_signals[0]; i++)
        signal(dump_signals[i], SIG_DFL);
    dump_armed = 0;
}

/* Opens the dump before the engine does: a path that cannot be written is refused before
 * any heavy work. Prints the error. */
static int dump_open(dump *d, const char *path)
{
    d->path = path;
    struct stat sb;
    bool exists = stat(path, &sb) == 0;
    if (exists && S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "infersim: error: %s: is a directory\n", path);
        return CLI_FAIL;
    }
    if (!exists || S_ISREG(sb.st_mode)) {
        cli_remove_stale(path); /* what a SIGKILL'd run left */
        size_t n = strlen(path) + 32;
        if (!(d->tmp = malloc(n))) {
            fprintf(stderr, "infersim: error: out of memory\n");
            return CLI_FAIL;
        }
        snprintf(d->tmp, n, "%s.tmp-%ld", path, (long)getpid());
    }
    if (!(d->f = fopen(d->tmp ? d->tmp : path, "wb"))) {
        fprintf(stderr, "infersim: error: %s: cannot create: %s\n", path, strerror(errno));
        free(d->tmp);
        d->tmp = NULL;
        return CLI_FAIL;
    }
    if (d->tmp)
        dump_arm(d);
    return CLI_OK;
}

/* A run that failed: the temporary removed, FILE untouched. */
static void dump_discard(dump *d)
{
    if (d->f)
        fclose(d->f);
    d->f = NULL;
    if (d->tmp) {
        unlink(d->tmp);
        dump_disarm();
        free(d->tmp);
        d->tmp = NULL;
    }
}

/* A run that finished: the temporary renamed over FILE. Prints the error. */
static int dump_finish(dump *d)
{
    if (!d->f)
        return CLI_OK;
    if (fclose(d->f) != 0 && !d->error)
        d->error = errno;
    d->f = NULL;
    if (!d->error && d->tmp && rename(d->tmp, d->path) != 0)
        d->error = errno;
    if (d->error) {
        fprintf(stderr, "infersim: error: %s: cannot write: %s\n", d->path, strerror(d->error));
        dump_discard(d);
        return CLI_FAIL;
    }
    if (d->tmp) {
        dump_disarm();
        free(d->tmp);
        d->tmp = NULL;
    }
    return CLI_OK;
}

static void write_logits(void *ctx, int step, int batch, int vocab, const float *logits)
{
    (void)step;
    dump *d = ctx;
    size_t n = (size_t)batch * (size_t)vocab;
    if (d->f && !d->error && fwrite(logits, sizeof *logits, n, d->f) != n)
        d->error = errno ? errno : EIO;
}

static double ms(double s)
{
    return s * 1e3;
}

static void terms_json(cJSON *o, const char *key, const isim_rt_times *t, double per)
{
    cJSON *x = cJSON_AddObjectToObject(o, key);
    cJSON_AddNumberToObject(x, "matmul", ms(t->matmul_s) / per);
    cJSON_AddNumberToObject(x, "attention", ms(t->attention_s) / per);
    cJSON_AddNumberToObject(x, "collective", ms(t->collective_s) / per);
    cJSON_AddNumberToObject(x, "other", ms(t->other_s) / per);
}

static int print_result(const isim_model *m, const isim_rt_options *o, const char *kernels,
                        int threads, const int *prompt_len, const isim_rt_result *r, bool json)
{
    int steps = r->n_steps > 0 ? r->n_steps : 1;
    const isim_rt_times *t = &r->decode;
    double measured = t->matmul_s + t->attention_s + t->collective_s + t->other_s;
    double total_steps = 0;
    for (int s = 0; s < r->n_steps; s++)
        total_steps += r->step_s[s];
    /* the rest of the step's wall time, outside the four kinds, goes to "other" */
    isim_rt_times dec = *t;
    if (total_steps > measured)
        dec.other_s += total_steps - measured;
    if (json) {
        cJSON *j = cli_json_new();
        cJSON_AddStringToObject(j, "engine", "cpu");
        cJSON_AddStringToObject(j, "model", m->id);
        cJSON_AddStringToObject(j, "weights", isim_dtype_name(o->weights));
        cJSON_AddStringToObject(j, "kv", isim_dtype_name(o->kv));
        cJSON_AddStringToObject(j, "kernels", kernels);
        cJSON_AddNumberToObject(j, "threads", threads);
        cJSON_AddNumberToObject(j, "tp", o->tp);
        cJSON_AddNumberToObject(j, "pp", o->pp);
        cJSON_AddNumberToObject(j, "batch", r->batch);
        cJSON_AddNumberToObject(j, "input_tokens", prompt_len[0]);
        cJSON_AddNumberToObject(j, "output_tokens", r->output_tokens);
        cJSON *ids = cJSON_AddArrayToObject(j, "generated_ids");
        for (int i = 0; i < r->batch; i++) {
            cJSON *row =
                cJSON_CreateIntArray(r->generated + (size_t)i * r->output_tokens, r->output_tokens);
            cJSON_AddItemToArray(ids, row);
        }
        cJSON_AddNumberToObject(j, "prefill_ms", ms(r->prefill_s));
        cJSON *st = cJSON_AddObjectToObject(j, "decode_step_ms");
        cJSON_AddNumberToObject(st, "median", ms(r->step_median_s));
        cJSON_AddNumberToObject(st, "p10", ms(r->step_p10_s));
        cJSON_AddNumberToObject(st, "p90", ms(r->step_p90_s));
        cJSON_AddNumberToObject(j, "tokens_per_s", r->tokens_per_s);
        cJSON_AddNumberToObject(j, "weight_bytes", r->weight_bytes);
        cJSON_AddNumberToObject(j, "weight_read_bytes_per_s",
                                r->step_median_s > 0 ? r->weight_bytes / r->step_median_s : 0);
        terms_json(j, "terms_ms", &dec, steps);
        terms_json(j, "prefill_terms_ms", &r->prefill, 1);
        return cli_json_print(j);
    }
    printf("%s on the CPU engine: %d sequence%s, %d prompt + %d output tokens, weights %s, KV %s\n",
           m->name, r->batch, r->batch == 1 ? "" : "s", prompt_len[0], r->output_tokens,
           isim_dtype_name(o->weights), isim_dtype_name(o->kv));
    printf("  layout       tp %d x pp %d process%s, %d thread%s each, %s kernels\n", o->tp, o->pp,
           o->tp * o->pp == 1 ? "" : "es", threads, threads == 1 ? "" : "s", kernels);
    printf("  prefill      %.2f ms (%.0f tokens/s)\n", ms(r->prefill_s),
           r->prefill_s > 0 ? r->batch * prompt_len[0] / r->prefill_s : 0);
    if (r->n_steps > 0) {
        printf("  decode step  median %.3f ms (p10 %.3f, p90 %.3f) over %d steps\n",
               ms(r->step_median_s), ms(r->step_p10_s), ms(r->step_p90_s), r->n_steps);
        printf("  throughput   %.1f tokens/s (%.1f per sequence)\n", r->tokens_per_s,
               r->tokens_per_s / r->batch);
        printf("  weights read %.3f GB per step, %.2f GB/s at the median step\n",
               r->weight_bytes / 1e9,
               r->step_median_s > 0 ? r->weight_bytes / r->step_median_s / 1e9 : 0);
        printf("  per step     matmul %.3f ms | attention %.3f ms | collective %.3f ms | other "
               "%.3f ms\n",
               ms(dec.matmul_s) / steps, ms(dec.attention_s) / steps, ms(dec.collective_s) / steps,
               ms(dec.other_s) / steps);
    }
    printf("  generated    ");
    for (int i = 0; i < r->output_tokens && i < 16; i++)
        printf("%s%d", i ? "," : "", r->generated[i]);
    printf("%s (sequence 0)\n", r->output_tokens > 16 ? ",..." : "");
    return CLI_OK;
}

/* A static run takes no traffic option and none of serving's outputs: the usage error. */
static int static_run(cli_opt *opts)
{
    static const char *const outputs[] = {"csv", "pass-log", "token-log"};
    for (size_t i = 0; i < sizeof outputs / sizeof outputs[0]; i++)
        if (cli_find(opts, outputs[i])->value)
            return cli_usage_error("run", "--%s needs traffic: --rate R or --concurrency C",
                                   outputs[i]);
    if (cli_find(opts, "trace")->value)
        return cli_usage_error("run", "--trace: the CPU engine serves drawn traffic (--rate or "
                                      "--concurrency), not a trace");
    for (size_t i = 0; i < sizeof traffic_opts / sizeof traffic_opts[0]; i++)
        if (strcmp(traffic_opts[i].name, "seed") != 0 &&
            cli_find(opts, traffic_opts[i].name)->value)
            return cli_usage_error("run", "--%s needs traffic: --rate R or --concurrency C",
                                   traffic_opts[i].name);
    return CLI_OK;
}

int cmd_run(int argc, char **argv)
{
    const char *cmd = "run";
    const char *env_rank = getenv("OMPI_COMM_WORLD_RANK");
    int rank = env_rank ? atoi(env_rank) : 0;
    cli_opt opts[RUN_N_OPTS];
    size_t n_opts = 0;
    for (size_t i = 0; i < sizeof run_opts / sizeof run_opts[0]; i++)
        opts[n_opts++] = run_opts[i];
    for (size_t i = 0; i < sizeof traffic_opts / sizeof traffic_opts[0]; i++)
        if (strcmp(traffic_opts[i].name, "seed") != 0)
            opts[n_opts++] = traffic_opts[i];
    opts[n_opts] = (cli_opt){NULL, false, NULL, NULL};
    /* only rank 0 reports argument errors: the others see the same ones */
    int saved = -1;
    if (rank != 0) {
        fflush(stderr);
        saved = dup(2);
        int nul = open("/dev/null", O_WRONLY);
        if (nul >= 0) {
            dup2(nul, 2);
            close(nul);
        }
    }
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(cmd, argc, argv, 2, opts, pos, 0, &n_pos);
    isim_model *m = NULL;
    int *ids = NULL, n_ids = 0, batch = 1, in_tokens = 0, out_tokens = 0, threads = 0;
    int **prompts = NULL, *lens = NULL;
    isim_rt_options o;
    isim_rt_options_init(&o);
    bool mpi = false, json = false;
    isim_rt *rt = NULL;
    isim_rt_result res = {0};
    dump dmp = {0};
    isim_error err = {0};
    if (rc < 0) {
        if (rank == 0)
            help(opts);
        rc = CLI_OK;
        goto cleanup;
    }
    if (rc)
        goto cleanup;
    const char *engine = cli_find(opts, "engine")->value;
    if (!engine || strcmp(engine, "cpu") != 0) {
        rc = cli_usage_error(cmd, "--engine %s: this build runs --engine cpu",
                             engine ? engine : "(missing)");
        goto cleanup;
    }
    const char *model_id = cli_find(opts, "model")->value;
    if (!model_id) {
        rc = cli_usage_error(cmd, "missing --model ID");
        goto cleanup;
    }
    if (isim_catalog_model(cli_data_dir(cli_find(opts, "data")), model_id, &m, &err)) {
        rc = cli_error(&err);
        goto cleanup;
    }
    const cli_opt *ip = cli_find(opts, "input-tokens"), *pi = cli_find(opts, "prompt-ids");
    const bool traffic = cli_find(opts, "rate")->value || cli_find(opts, "concurrency")->value;
    static const char *const wts[] = {"fp32", "bf16", "int8", NULL}, *const kvs[] = {"fp32", "bf16",
                                                                                     NULL};
    if (cli_find(opts, "batch")->value &&
        !cli_int(cmd, cli_find(opts, "batch"), 1, 1 << 20, &batch))
        rc = CLI_USAGE;
    else if (!traffic && !cli_find(opts, "output-tokens")->value)
        rc = cli_usage_error(cmd, "missing --output-tokens O");
    else if (cli_find(opts, "output-tokens")->value &&
             !cli_int(cmd, cli_find(opts, "output-tokens"), 1, 1 << 24, &out_tokens))
        rc = CLI_USAGE;
    else if (!traffic && !ip->value == !pi->value)
        rc = cli_usage_error(cmd,
                             "give the prompt as --input-tokens I or as --prompt-ids, one of them");
    else if (ip->value && !cli_int(cmd, ip, 1, 1 << 24, &in_tokens))
        rc = CLI_USAGE;
    else if (pi->value && !parse_ids(pi->value, (int)m->vocab, &ids, &n_ids))
        rc = CLI_USAGE;
    else if (!dtype_opt(cli_find(opts, "dtype"), wts, &o.weights) ||
             !dtype_opt(cli_find(opts, "kv"), kvs, &o.kv) ||
             !one_of(cli_find(opts, "kernels"), isim_rt_kernel_sets))
        rc = CLI_USAGE;
    if (rc)
        goto cleanup;
    struct {
        const char *name;
        int *out;
        long min, max;
    } ints[] = {{"tp", &o.tp, 1, 4096},
                {"pp", &o.pp, 1, 4096},
                {"micro-batches", &o.micro_batches, 1, 1 << 20},
                {"threads", &threads, 1, 4096},
                {"chunk", &o.max_chunk, 1, 1 << 20}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        const cli_opt *x = cli_find(opts, ints[i].name);
        if (x->value && !cli_int(cmd, x, ints[i].min, ints[i].max, ints[i].out)) {
            rc = CLI_USAGE;
            goto cleanup;
        }
    }
    const cli_opt *seed = cli_find(opts, "seed");
    if (seed->value) {
        double s;
        if (!cli_number(cmd, seed, 0, 9007199254740992.0, &s)) {
            rc = CLI_USAGE;
            goto cleanup;
        }
        o.seed = (uint64_t)s;
    }
    json = cli_find(opts, "json")->value != NULL;
    o.kernels = cli_find(opts, "kernels")->value;
    o.weights_file = cli_find(opts, "weights-file")->value;
    o.model = m;
    o.threads = threads;
    if (traffic) {
        rc = cli_run_serve(opts, m, &o, cli_find(opts, "batch")->value ? batch : 0, json);
        goto cleanup;
    }
    if ((rc = static_run(opts)))
        goto cleanup;
    o.max_batch = batch;
    int plen = ids ? n_ids : in_tokens;
    /* the rule predict, plan and scenarios apply (docs/model.md, "Context"): prompt and answer
     * together, as serving engines count them, though the last token's keys are never kept */
    if ((int64_t)plen + out_tokens > m->max_context) {
        rc = cli_usage_error(
            cmd, "%d prompt + %d output tokens are longer than model '%s''s context of %lld", plen,
            out_tokens, m->id, (long long)m->max_context);
        goto cleanup;
    }
    o.max_context = plen + out_tokens;
    /* processes */
    int world = 1;
    if (isim_rt_under_mpirun() || o.tp * o.pp > 1) {
        if (!isim_rt_under_mpirun()) {
            rc = cli_usage_error(cmd,
                                 "--tp %d --pp %d needs %d processes: start it with mpirun -np %d",
                                 o.tp, o.pp, o.tp * o.pp, o.tp * o.pp);
            goto cleanup;
        }
        if (isim_rt_mpi_init(&argc, &argv, &rank, &world, &err)) {
            rc = cli_error(&err);
            goto cleanup;
        }
        mpi = true;
    }
    /* errors from here on are this rank's own: every rank may print */
    if (saved >= 0) {
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        saved = -1;
    }
    prompts = calloc((size_t)batch, sizeof *prompts);
    lens = calloc((size_t)batch, sizeof *lens);
    if (!prompts || !lens) {
        rc = cli_error(&(isim_error){.code = ISIM_ENOMEM, .message = "out of memory"});
        goto fail;
    }
    for (int i = 0; i < batch; i++) {
        lens[i] = plen;
        if (!(prompts[i] = malloc((size_t)plen * sizeof **prompts))) {
            rc = cli_error(&(isim_error){.code = ISIM_ENOMEM, .message = "out of memory"});
            goto fail;
        }
        if (ids)
            memcpy(prompts[i], ids, (size_t)plen * sizeof **prompts);
        else
            isim_rt_random_prompt(o.seed, i, plen, (int)m->vocab, prompts[i]);
    }
    const char *dump_path = cli_find(opts, "dump-logits")->value;
    if (dump_path && rank == 0 && (rc = dump_open(&dmp, dump_path)))
        goto fail;
    if (isim_rt_open(&o, &rt, &err) ||
        isim_rt_generate(rt, batch, (const int *const *)prompts, lens, out_tokens,
                         dump_path ? write_logits : NULL, &dmp, &res, &err)) {
        if (world > 1)
            fprintf(stderr, "infersim: error: [rank %d] %s\n", rank, err.message);
        else
            cli_error(&err);
        rc = CLI_FAIL;
        goto fail;
    }
    if ((rc = dump_finish(&dmp)))
        goto fail;
    if (rank == 0)
        rc = print_result(m, &o, isim_rt_kernels(rt), isim_rt_threads(rt), lens, &res, json);
    goto cleanup;
fail:
    dump_discard(&dmp);
    /* a failing rank ends every rank of the run, so that none waits for it */
    if (mpi && world > 1) {
        fflush(stdout);
        fflush(stderr);
        isim_rt_mpi_abort(rc ? rc : CLI_FAIL);
    }
cleanup:
    if (saved >= 0) {
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
    }
    dump_discard(&dmp);
    isim_rt_result_release(&res);
    isim_rt_close(rt);
    if (mpi)
        isim_rt_mpi_finalize();
    for (int i = 0; prompts && i < batch; i++)
        free(prompts[i]);
    free(prompts);
    free(lens);
    free(ids);
    isim_model_free(m);
    return rc;
}
