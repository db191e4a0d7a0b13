/* infersim calibrate --engine cpu: measures this machine with the engine's own kernels and
 * threads, fits what the step model needs (GSL least squares) and writes a hardware profile
 * of the catalog's schema, every number with how it was measured (docs/validation.md). The
 * collectives are measured by a second run of this program under mpirun (2 ranks). */
#include "cli/cli.h"
#include "runtime/runtime.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const size_t COLL_SIZES[] = {4, 64, 1024, 16384, 65536, 262144, 1048576, 4194304, 16777216};
#define N_COLL (sizeof COLL_SIZES / sizeof COLL_SIZES[0])

static void help(const cli_opt *opts)
{
    printf(
        "usage: infersim calibrate --engine cpu [-o FILE] [--runs N] [--threads N] [--no-mpi]\n\n"
        "Measures this machine (memory read bandwidth, peak FLOP/s, matmul FLOP/s by rows,\n"
        "the rate decode streams weights, attention, task hand-off and per-step costs, and\n"
        "MPI all-reduce by message size over 2 ranks), fits the step model's efficiencies\n"
        "and writes a hardware profile (default: hw-profiles/local-cpu.yaml in the data\n"
        "directory) with each number's measurement as its source.\n\noptions:\n");
    cli_print_options(opts);
}

/* The CPU's model name from /proc/cpuinfo, or "unknown CPU". */
static void cpu_name(char *buf, size_t n, char *vendor, size_t vn)
{
    snprintf(buf, n, "unknown CPU");
    snprintf(vendor, vn, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    bool got_name = false, got_vendor = false;
    while (f && fgets(line, sizeof line, f) && !(got_name && got_vendor)) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        v[strcspn(v, "\n")] = 0;
        if (!got_name && strncmp(line, "model name", 10) == 0) {
            snprintf(buf, n, "%s", v);
            got_name = true;
        } else if (!got_vendor && strncmp(line, "vendor_id", 9) == 0) {
            snprintf(vendor, vn, "%s",
                     strcmp(v, "AuthenticAMD") == 0   ? "AMD"
                     : strcmp(v, "GenuineIntel") == 0 ? "Intel"
                                                      : v);
            got_vendor = true;
        }
    }
    if (f)
        fclose(f);
}

static double mem_total_bytes(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    double kb = 0;
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemTotal: %lf kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024;
}

/* Under mpirun: every rank measures, rank 0 prints the medians as JSON. */
static int collectives_child(int argc, char **argv, int runs)
{
    int rank = 0, size = 1;
    isim_error err = {0};
    if (isim_rt_mpi_init(&argc, &argv, &rank, &size, &err))
        return cli_error(&err);
    isim_rt_stat st[N_COLL];
    int rc = CLI_OK;
    if (isim_rt_measure_allreduce(COLL_SIZES, (int)N_COLL, runs, st, &err)) {
        fprintf(stderr, "infersim: error: [rank %d] %s\n", rank, err.message);
        isim_rt_mpi_abort(CLI_FAIL);
    }
    if (rank == 0) {
        printf("{\"ranks\": %d, \"bytes\": [", size);
        for (size_t i = 0; i < N_COLL; i++)
            printf("%s%zu", i ? ", " : "", COLL_SIZES[i]);
        printf("], \"median_s\": [");
        for (size_t i = 0; i < N_COLL; i++)
            printf("%s%.9g", i ? ", " : "", st[i].median);
        printf("], \"best_s\": [");
        for (size_t i = 0; i < N_COLL; i++)
            printf("%s%.9g", i ? ", " : "", st[i].best);
        printf("]}\n");
    }
    isim_rt_mpi_finalize();
    return rc;
}

typedef struct {
    double lat_s, bytes_per_s, per_rank_us;
    int ranks;
    bool ok;
    char why[300];
} coll_fit;

/* Runs this program's collectives measurement under mpirun and fits t = a + S / bw. */
static void measure_collectives(int runs, coll_fit *cf)
{
    memset(cf, 0, sizeof *cf);
    char self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0 || n == (ssize_t)sizeof self - 1) { /* none, or cut */
        snprintf(cf->why, sizeof cf->why, "cannot find this program's path");
        return;
    }
    self[n] = 0;
    if (!cli_on_path("mpirun")) {
        snprintf(cf->why, sizeof cf->why, "mpirun is not installed (openmpi-bin)");
        return;
    }
    char runs_text[16];
    snprintf(runs_text, sizeof runs_text, "%d", runs);
    char *const args[] = {"mpirun",
                          "--allow-run-as-root",
                          "--oversubscribe",
                          "-np",
                          "2",
                          self,
                          "calibrate",
                          "--engine",
                          "cpu",
                          "--collectives",
                          "--runs",
                          runs_text,
                          NULL};
    char *buf = NULL;
    int st = -1;
    if (cli_capture(args, false, 65535, &buf, &st) != 0)
        st = -1;
    cJSON *j = buf && st == 0 ? cJSON_Parse(buf) : NULL;
    free(buf);
    if (!j) {
        snprintf(cf->why, sizeof cf->why, "the run under mpirun failed (exit %d)", st);
        return;
    }
    const cJSON *b = cJSON_GetObjectItem(j, "bytes"), *t = cJSON_GetObjectItem(j, "median_s");
    double x[N_COLL], y[N_COLL];
    size_t m = 0;
    for (size_t i = 0; i < N_COLL && i < (size_t)cJSON_GetArraySize(b); i++) {
        x[m] = cJSON_GetArrayItem(b, (int)i)->valuedouble;
        y[m] = cJSON_GetArrayItem(t, (int)i)->valuedouble;
        m++;
    }
    cf->ranks = cJSON_GetObjectItem(j, "ranks") ? cJSON_GetObjectItem(j, "ranks")->valueint : 2;
    cJSON_Delete(j);
    double a, slope;
    isim_error err;
    if (m < 2 || isim_fit_line(x, y, m, &a, &slope, &err) || !(slope > 0)) {
        snprintf(cf->why, sizeof cf->why, "the all-reduce times do not fit a line");
        return;
    }
    cf->lat_s = a > 0 ? a : y[0];
    cf->bytes_per_s = 1 / slope;
    /* the flat collective model's all-reduce: 2 (R - 1) per_rank + 2 (R - 1) S / (R bw) */
    int R = cf->ranks;
    cf->per_rank_us = cf->lat_s / (2.0 * (R - 1)) * 1e6;
    cf->bytes_per_s = 2.0 * (R - 1) / R / slope;
    cf->ok = true;
}

/* Above this share of the CPU time taken by others while it measured, calibrate warns: an
 * idle VM here shows 0-1% (kernel threads); one busy program on a 2-CPU machine, 50%. */
#define OTHERS_WARN 0.05
/* Above this relative rms of the matmul curve's fit, calibrate warns: on the 2-core VM of
 * docs/validation.md fits of 0.037 to 0.096 in 17 calibrations, and the two above 0.1 (0.113
 * and 0.179, run S: in a fast spell) gave predictions 8-13% off in the median even with the
 * machine measured beside each point. */
#define RMS_WARN 0.1

static void others_text(char *buf, size_t n, double share)
{
    if (isnan(share))
        snprintf(buf, n, "the CPU time of other programs unknown");
    else
        snprintf(buf, n, "other programs took %.1f%% of the CPU time", 100 * share);
}

static void stat_text(char *buf, size_t n, const isim_rt_stat *s, double scale, const char *unit)
{
    snprintf(buf, n, "median of %d runs %.4g %s (best %.4g, worst %.4g)", s->runs,
             s->median * scale, unit, s->best * scale, s->worst * scale);
}

/* A rate sampled through the calibration: the rate of the middle samples' mean time. */
static void sampled_text(char *buf, size_t n, const isim_rt_stat *s, double scale, const char *unit)
{
    snprintf(buf, n,
             "%d samples spread through the calibration: %.4g %s at the mean time of the "
             "middle ones (median %.4g, best %.4g, worst %.4g)",
             s->runs, s->mean * scale, unit, s->median * scale, s->best * scale, s->worst * scale);
}

int cmd_calibrate(int argc, char **argv)
{
    const char *cmd = "calibrate";
    cli_opt opts[] = {
        {"engine", true, "cpu", NULL},
        {"out", true, "the profile to write (-o FILE; default hw-profiles/local-cpu.yaml)", NULL},
        {"runs", true, "runs of each measurement (default 5)", NULL},
        {"threads", true, "threads (default: one per CPU)", NULL},
        {"usd-per-h", true, "the machine's price per hour, for the profile's costs", NULL},
        {"no-mpi", false, "leave out the collectives (no mpirun)", NULL},
        {"collectives", false, "(internal) measure all-reduce under mpirun", NULL},
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
    const char *engine = cli_find(opts, "engine")->value;
    if (!engine || strcmp(engine, "cpu") != 0)
        return cli_usage_error(cmd, "--engine %s: this build calibrates --engine cpu",
                               engine ? engine : "(missing)");
    int runs = 5, threads = 0;
    if (cli_find(opts, "runs")->value && !cli_int(cmd, cli_find(opts, "runs"), 3, 64, &runs))
        return CLI_USAGE;
    if (cli_find(opts, "threads")->value &&
        !cli_int(cmd, cli_find(opts, "threads"), 1, 256, &threads))
        return CLI_USAGE;
    double usd = 1.0;
    bool priced = cli_find(opts, "usd-per-h")->value != NULL;
    /* at most what a cpu profile may cost an hour (docs/formats.md): a price the written
     * profile would refuse is refused before a minute of measuring */
    if (priced && !cli_number(cmd, cli_find(opts, "usd-per-h"), 0.001, 1000, &usd))
        return CLI_USAGE;
    if (cli_find(opts, "collectives")->value)
        return collectives_child(argc, argv, runs);
    const char *data = cli_data_dir(cli_find(opts, "data"));
    char *out_path = cli_find(opts, "out")->value ? cli_concat(cli_find(opts, "out")->value, "")
                                                  : cli_concat(data, "/hw-profiles/local-cpu.yaml");
    if (!out_path)
        return cli_oom();
    /* a minute of measuring must not end in a place that cannot take the profile */
    char *slash = strrchr(out_path, '/');
    if (slash)
        *slash = '\0';
    rc = cli_writable_dir(slash ? (slash == out_path ? "/" : out_path) : ".", false);
    if (slash)
        *slash = '/';
    if (!rc)
        rc = cli_not_a_directory(out_path);
    if (rc) {
        free(out_path);
        return rc;
    }
    cli_remove_stale(out_path);

    isim_model *small = NULL, *mid = NULL;
    char *tmp = NULL; /* the profile written beside out_path, loaded, then renamed */
    isim_error err = {0};
    if (isim_catalog_model(data, "stories260k", &small, &err) ||
        isim_catalog_model(data, "llama-3.2-1b", &mid, &err)) {
        rc = cli_error(&err);
        goto cleanup;
    }
    fprintf(stderr, "calibrate: measuring this machine (about a minute)...\n");
    isim_rt_calibration c;
    if (isim_rt_calibrate(threads, runs, NULL, small, mid, &c, &err)) {
        rc = cli_error(&err);
        goto cleanup;
    }
    coll_fit cf = {0};
    if (!cli_find(opts, "no-mpi")->value) {
        fprintf(stderr, "calibrate: all-reduce over 2 ranks under mpirun...\n");
        measure_collectives(runs, &cf);
    } else {
        snprintf(cf.why, sizeof cf.why, "--no-mpi");
    }
    /* the curve: with the tile that fits best, and as one tile for comparison */
    double fit[4], f32[4], f16[4], one[4], rms = 0, rms32, rms16, rms1;
    if (isim_rt_fit_curve(&c, true, true, -1, fit, &rms, &err) ||
        isim_rt_fit_curve(&c, true, false, -1, f32, &rms32, &err) ||
        isim_rt_fit_curve(&c, false, true, -1, f16, &rms16, &err) ||
        isim_rt_fit_curve(&c, true, true, 0, one, &rms1, &err)) {
        rc = cli_error(&err);
        goto cleanup;
    }
    double e = fit[0], h = fit[1], ovl = fmin(fit[2], 1.0);
    /* the profile */
    char cpu[256], vendor[64], date[32], s1[256], s2[512], s3[256];
    cpu_name(cpu, sizeof cpu, vendor, sizeof vendor);
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&now));
    char *yaml = NULL;
    size_t ylen = 0;
    FILE *f = open_memstream(&yaml, &ylen);
    if (!f) {
        fprintf(stderr, "infersim: error: out of memory\n");
        rc = CLI_FAIL;
        goto cleanup;
    }
    /* the bandwidth: what the engine's decode streams (the one-row matmul), so no further
     * loss; the simple read probe is noted beside it */
    double bw = c.stream_bf16.mean, hbm = 1.0;
    char shapes[160] = "";
    for (int i = 0, o = 0; i < c.big_mats && o < (int)sizeof shapes; i++)
        o += snprintf(shapes + o, sizeof shapes - (size_t)o, "%s%zu x %zu", i ? ", " : "",
                      c.big_n[i], c.big_k[i]);
    /* the KV cache's share of that bandwidth, as attention reads it */
    double hbm_kv = fmax(0.01, fmin(1.0, c.kv_stream_bf16.mean / bw));
    char others[64];
    others_text(others, sizeof others, c.others_cpu_share);
    fprintf(f,
            "# Written by infersim calibrate on %s on this machine (%s, %d threads, %s kernels;\n"
            "# 1-minute load %.2f when it began; %s). The whole machine is one\n"
            "# device. Rerun `infersim calibrate --engine cpu` to measure again.\n",
            date, cpu, c.threads, c.kernels, c.load_1min, others);
    fprintf(f, "name: \"local CPU: %s, %d threads (measured %s)\"\nvendor: \"%s\"\nkind: cpu\n",
            cpu, c.threads, date, vendor);
    /* the peaks sampled through the calibration, as the bandwidth is: the efficiency curve is
     * a fraction of the peak sampled with its sweep, and a burst's peak (kept in the source)
     * can stand for a slow moment the sweep did not see */
    char b1[160], b2[160];
    sampled_text(s1, sizeof s1, &c.peak_fp32, 1e-12, "TFLOP/s");
    sampled_text(s2, sizeof s2, &c.peak_bf16, 1e-12, "TFLOP/s");
    stat_text(b1, sizeof b1, &c.peak_burst_fp32, 1e-12, "TFLOP/s");
    stat_text(b2, sizeof b2, &c.peak_burst_bf16, 1e-12, "TFLOP/s");
    fprintf(
        f,
        "compute:\n  source: \"infersim calibrate %s: independent FMAs (fp32) and VDPBF16PS dot "
        "products (bf16) on registers, every thread\"\n"
        "  fp32_tflops: {value: %.6g, source: \"%s; in one burst at the start, %s\"}\n"
        "  bf16_tflops: {value: %.6g, source: \"%s; in one burst at the start, %s\"}\n"
        "  int8_tops: {value: %.6g, source: \"the engine's int8 weights are widened to fp32 FMAs: "
        "the fp32 peak\"}\n",
        date, c.peak_fp32.mean * 1e-12, s1, b1, c.peak_bf16.mean * 1e-12, s2, b2,
        c.peak_fp32.mean * 1e-12);
    fprintf(
        f,
        "efficiency:\n  source: \"infersim calibrate %s\"\n"
        "  flops: {value: %.6g, source: \"GSL least squares of the step model's matmul time, "
        "max(a1, h) + overlap min(a1, h) + a2, the rows in tiles of T, a1 the first tile's "
        "arithmetic, a2 the others', a tile of t rows 2 max(t, full) P / (peak x flops) (the "
        "first 2 t P / (peak x flops)), h = "
        "weights / streaming rate, against the matmuls of a layer of Llama 3.2 1B (%s, n x k, "
        "P their weights) of r = 1..512 rows, one after another, streamed from memory, in "
        "rounds with the streaming rate and the peak sampled between them, the mean of the "
        "middle runs, "
        "fp32 and bf16 together, T each row count of the sweep in turn (relative rms %.3f; "
        "as one tile %.3f; fp32 alone %.3f, full %.3g, overlap %.3g, T %g; bf16 alone %.3f, "
        "full %.3g, overlap %.3g, T %g)\"}\n"
        "  flops_full_rows: {value: %.6g, source: \"the same fit: below it a microkernel tile "
        "loads weights for rows it does not have\"}\n"
        "  overlap: {value: %.6g, source: \"the same fit: the share of the shorter of a matmul's "
        "arithmetic and traffic that the longer does not hide\"}\n"
        "  tile_rows: {value: %g, source: \"the same fit: the tile that fits best (0: one "
        "tile); the rows past it compute after the weights' streaming, from cache\"}\n",
        date, e, shapes, rms, rms1, f32[0], f32[1], f32[2], f32[3], f16[0], f16[1], f16[2], f16[3],
        h, ovl, fit[3]);
    sampled_text(s1, sizeof s1, &c.stream_bf16, 1e-9, "GB/s");
    fprintf(
        f,
        "  hbm: {value: %.6g, source: \"1: the bandwidth below is what the engine's one-row bf16 "
        "matmul streams from memory (%s)\"}\n",
        hbm, s1);
    stat_text(s1, sizeof s1, &c.attention_flops, 1e-9, "GFLOP/s");
    fprintf(
        f,
        "  attention: {value: %.6g, source: \"the attention kernel, 32 queries x 1024 positions "
        "x 64, fp32 cache, one thread, x threads: %s, over the bf16 peak\"}\n",
        fmin(1.0, c.attention_flops.median * c.threads / c.peak_bf16.mean), s1);
    sampled_text(s1, sizeof s1, &c.kv_stream_bf16, 1e-9, "GB/s");
    sampled_text(s3, sizeof s3, &c.kv_stream_fp32, 1e-9, "GB/s");
    fprintf(f,
            "  hbm_kv: {value: %.6g, source: \"the attention kernel reading a KV cache of 256 MB "
            "from memory on every thread (decode: 4 queries per head, 2048 positions of 64 "
            "values), sampled with the bandwidth below: bf16 cache %s, over the bandwidth (fp32 "
            "cache %s)\"}\n",
            hbm_kv, s1, s3);
    stat_text(s1, sizeof s1, &c.read_bytes_per_s, 1e-9, "GB/s");
    sampled_text(s3, sizeof s3, &c.stream_bf16, 1e-9, "GB/s");
    fprintf(
        f,
        "memory:\n  source: \"infersim calibrate %s\"\n"
        "  capacity_gb: {value: %.6g, source: \"/proc/meminfo MemTotal\"}\n"
        "  bandwidth_gbps: {value: %.6g, source: \"a one-row bf16 matmul over 256 MB of weights "
        "on every thread, %s (a plain sum over 1 GiB in huge pages read %s)\"}\n",
        date, mem_total_bytes() / 1e9, bw * 1e-9, s3, s1);
    sampled_text(s1, sizeof s1, &c.stream_thread_bf16, 1e-9, "GB/s");
    fprintf(f,
            "  thread_bandwidth_gbps: {value: %.6g, source: \"the same matmul on one thread, run "
            "in turn with every thread in each sample: %s\"}\n",
            c.stream_thread_bf16.mean * 1e-9, s1);
    double coll_bw = cf.ok ? cf.bytes_per_s : c.read_bytes_per_s.median / 4;
    if (cf.ok)
        snprintf(s2, sizeof s2,
                 "MPI all-reduce over 2 ranks, 4 B to 16 MiB, median times, GSL line "
                 "fit t = a + 2 (R - 1) S / (R bw)");
    else
        snprintf(s2, sizeof s2,
                 "not measured (%s): a judgement, a quarter of the read bandwidth for "
                 "copies through shared memory",
                 cf.why);
    fprintf(
        f,
        "scale_up:\n  source: \"%s\"\n  domain_size: 1\n  bandwidth_gbps: %.6g\n"
        "scale_out:\n  source: \"as scale_up: ranks on this machine talk through shared memory\"\n"
        "  bandwidth_gbps: %.6g\n",
        s2, coll_bw * 1e-9, coll_bw * 1e-9);
    fprintf(f, "collectives:\n  source: \"%s\"\n  model: flat\n  per_rank_us: %.6g\n",
            cf.ok ? "the all-reduce fit's intercept a = 2 (R - 1) per_rank, R = 2"
                  : "not measured: a judgement of shared-memory MPI latency",
            cf.ok ? cf.per_rank_us : 2.0);
    stat_text(s1, sizeof s1, &c.dispatch_s, 1e6, "us");
    fprintf(f,
            "kernel:\n  source: \"handing an empty task to every thread: %s\"\n  launch_us: %.6g\n",
            s1, c.dispatch_s.median * 1e6);
    fprintf(f, "price:\n  source: \"%s\"\n  cloud_usd_per_h: %.6g\n",
            priced ? "the machine's price per hour as given to infersim calibrate --usd-per-h"
                   : "not given (infersim calibrate --usd-per-h): 1 USD per device-hour, so that "
                     "costs read in device-hours",
            usd);
    stat_text(s1, sizeof s1, &c.step_overhead_s, 1e6, "us");
    stat_text(s3, sizeof s3, &c.layer_s, 1e6, "us");
    fprintf(
        f,
        "serving:\n  source: \"the CPU engine (docs/engine.md), measured by infersim calibrate "
        "%s\"\n"
        "  memory_utilization: {value: 0.9, source: \"the engine refuses to open above 0.9 of the "
        "memory available\"}\n"
        "  runtime_reserve_gb: {value: 0.1, source: \"judgement: the engine's code, threads and "
        "MPI buffers\"}\n"
        "  step_overhead_us: {value: %.6g, source: \"a stories260K-shaped decode step with 1 layer "
        "less its layer (2 layers less 1: %s): %s\"}\n"
        "  kernels_per_layer: {value: %.6g, source: \"tasks handed to the threads per layer of a "
        "Llama 3.2 1B-shaped decode step (2 layers less 1)\"}\n"
        "  prefill_chunk_tokens: {value: 512, source: \"the engine's default --chunk\"}\n"
        "  activation_bytes: {value: 4, source: \"the engine keeps activations, norms and the "
        "residual stream in fp32 (docs/engine.md, Precisions)\"}\n",
        date, c.step_overhead_s.median * 1e6, s3, s1, c.dispatches_per_layer);
    fclose(f);
    /* refuse to write a profile that the catalog's reader would not take */
    char suffix[48];
    snprintf(suffix, sizeof suffix, ".tmp-%ld.yaml", (long)getpid());
    tmp = cli_concat(out_path, suffix);
    FILE *tf = tmp ? fopen(tmp, "w") : NULL;
    isim_hw *hw = NULL;
    bool ok = tf && fputs(yaml, tf) >= 0 && fflush(tf) == 0 && fsync(fileno(tf)) == 0;
    if (tf)
        ok = fclose(tf) == 0 && ok;
    if (!ok || isim_hw_load(tmp, &hw, &err)) {
        int write_errno = errno;
        if (tmp)
            remove(tmp);
        if (ok)
            fprintf(stderr, "infersim: error: the measured profile does not load: %s\n",
                    err.message);
        else
            fprintf(stderr, "infersim: error: %s: cannot write: %s\n", out_path,
                    tmp ? strerror(write_errno) : "out of memory");
        free(yaml);
        rc = CLI_FAIL;
        goto cleanup;
    }
    isim_hw_free(hw);
    if (rename(tmp, out_path) != 0) {
        fprintf(stderr, "infersim: error: %s: cannot write: %s\n", out_path, strerror(errno));
        remove(tmp);
        free(yaml);
        rc = CLI_FAIL;
        goto cleanup;
    }
    free(yaml);
    printf("calibrated %s (%d threads, %s kernels, load %.2f; %s)\n", cpu, c.threads, c.kernels,
           c.load_1min, others);
    /* a profile measured beside other work reads the machine slower than it is alone */
    if (c.others_cpu_share > OTHERS_WARN)
        fprintf(stderr,
                "infersim: warning: other programs took %.0f%% of this machine's CPU time while "
                "calibrate measured: the profile reads the machine slower than it is alone; "
                "rerun calibrate when it is idle\n",
                100 * c.others_cpu_share);
    if (rms > RMS_WARN)
        fprintf(stderr,
                "infersim: warning: the matmul curve fits its sweep poorly (relative rms %.3f, "
                "above %.2f): the machine may have moved while calibrate measured; rerun "
                "calibrate\n",
                rms, RMS_WARN);
    printf("  read bandwidth        %8.2f GB/s (best %.2f, worst %.2f)\n",
           c.read_bytes_per_s.median / 1e9, c.read_bytes_per_s.best / 1e9,
           c.read_bytes_per_s.worst / 1e9);
    printf("  decode streams        %8.2f GB/s bf16 (%d samples, %.2f to %.2f), %.2f fp32 "
           "(efficiency %.3f)\n",
           c.stream_bf16.mean / 1e9, c.stream_bf16.runs, c.stream_bf16.worst / 1e9,
           c.stream_bf16.best / 1e9, c.stream_fp32.mean / 1e9, hbm);
    printf("  one thread streams    %8.2f GB/s bf16\n", c.stream_thread_bf16.mean / 1e9);
    printf("  peak                  %8.1f GFLOP/s fp32, %.1f bf16 (sampled; in one burst %.1f, "
           "%.1f; with the sweep %.1f, %.1f)\n",
           c.peak_fp32.mean / 1e9, c.peak_bf16.mean / 1e9, c.peak_burst_fp32.median / 1e9,
           c.peak_burst_bf16.median / 1e9, c.sweep_peak_fp32.mean / 1e9,
           c.sweep_peak_bf16.mean / 1e9);
    printf(
        "  matmul efficiency     %.3f, a tile at least %.3g rows, overlap %.3g, tiles of %g rows "
        "(fit from memory, relative rms %.3f; as one tile %.3f)\n",
        e, h, ovl, fit[3], rms, rms1);
    printf("  rows                 ");
    for (int i = 0; i < ISIM_RT_CAL_ROWS; i++)
        printf(" %5d", c.rows[i]);
    printf("\n  fp32 of peak (best)  ");
    for (int i = 0; i < ISIM_RT_CAL_ROWS; i++)
        printf(" %5.3f", c.mm_fp32[i].best / c.peak_burst_fp32.best);
    printf("\n  bf16 of peak (best)  ");
    for (int i = 0; i < ISIM_RT_CAL_ROWS; i++)
        printf(" %5.3f", c.mm_bf16[i].best / c.peak_burst_bf16.best);
    printf("\n  layer from memory, ms");
    for (int i = 0; i < ISIM_RT_CAL_ROWS; i++)
        printf(" %5.3g", c.big_bf16[i].mean * 1e3);
    printf("\n  the sweep's bf16 layer, %.1f MB, at 1 row streams %.2f GB/s; the rate sampled "
           "between its rounds %.2f",
           2 * isim_rt_sweep_params(&c) * 1e-6,
           2 * isim_rt_sweep_params(&c) / c.big_bf16[0].mean * 1e-9,
           c.sweep_stream_bf16.mean * 1e-9);
    printf("\n  attention             %8.1f GFLOP/s per thread\n", c.attention_flops.median / 1e9);
    printf("  KV cache read         %8.2f GB/s bf16, %.2f fp32 (hbm_kv %.3f)\n",
           c.kv_stream_bf16.mean / 1e9, c.kv_stream_fp32.mean / 1e9, hbm_kv);
    printf("  task hand-off         %8.2f us, %.1f per layer\n", c.dispatch_s.median * 1e6,
           c.dispatches_per_layer);
    printf("  step overhead         %8.2f us; a small layer %.2f us\n",
           c.step_overhead_s.median * 1e6, c.layer_s.median * 1e6);
    if (cf.ok)
        printf("  all-reduce (2 ranks)  %8.2f us + S / %.2f GB/s\n", cf.lat_s * 1e6,
               cf.bytes_per_s / 1e9);
    else
        printf("  all-reduce            not measured: %s\n", cf.why);
    printf("profile: %s\n", out_path);
cleanup:
    isim_model_free(small);
    isim_model_free(mid);
    free(tmp);
    free(out_path);
    return rc;
}
