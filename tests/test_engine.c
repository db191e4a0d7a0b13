/* The CPU engine against independent numbers: its SIMD kernels against the plain C oracle,
 * its logits against a PyTorch reference (tests/reference/llama_ref.py, Debian's
 * python3-torch) for the stories260K checkpoint and for random models of every feature,
 * tensor and pipeline parallel runs against one process, and bad input refused before
 * any heavy work. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/cpu/internal.h"
#include "runtime/runtime.h"
#include "tests/faults.h"
#include "testutil.h"

#define STORIES ISIM_FIXTURES_DIR "/stories260K.bin"

static uint64_t rng = 88172645463325252ull;
static float frand(void) /* [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)(rng >> 40) / 8388608.0f - 1.0f;
}

/* ---- kernels ------------------------------------------------------------------------ */

/* A packed matrix with its own storage. */
static rt_matrix make_matrix(size_t n, size_t k, isim_dtype dt, float *full)
{
    rt_matrix m = {.n = n, .k = k, .kp = k + (k & 1), .panels = (n + RT_NR - 1) / RT_NR, .dt = dt};
    size_t bytes = isim__rt_matrix_bytes(n, k, dt);
    m.data = aligned_alloc(64, (bytes + 63) / 64 * 64);
    cr_assert_not_null(m.data);
    memset(m.data, 0, bytes);
    if (dt == ISIM_INT8)
        m.scale = calloc(m.panels * RT_NR, sizeof(float));
    for (size_t r = 0; r < n; r++) {
        for (size_t c = 0; c < k; c++)
            full[r * k + c] = frand();
        isim__rt_matrix_set_row(&m, r, full + r * k);
    }
    m.bias = malloc(n * sizeof(float));
    for (size_t r = 0; r < n; r++)
        m.bias[r] = frand();
    return m;
}

static void free_matrix(rt_matrix *m)
{
    free(m->data);
    free(m->scale);
    free(m->bias);
}

/* Every SIMD set this CPU runs gives the scalar oracle's matmul, for odd shapes (outputs not
 * a multiple of the panel, odd k), row counts on both sides of the microkernel's 12 and k
 * beyond one 256 block. The tolerance is the bound on reordering a sum of k products in
 * fp32: k x 2^-24 x sum |x w|, the tests' value x 4. */
Test(engine, simd_kernels_match_the_scalar_oracle)
{
    static const char *const sets[] = {"avx2", "avx512"};
    static const isim_dtype dts[] = {ISIM_FP32, ISIM_BF16, ISIM_INT8};
    static const size_t shapes[][2] = {{70, 37}, {33, 300}, {96, 513}};
    static const int rows[] = {1, 5, 12, 13, 30};
    const rt_kernels *ref = isim__rt_kernels_pick("scalar");
    int checked = 0;
    for (size_t si = 0; si < 2; si++) {
        const rt_kernels *k = isim__rt_kernels_pick(sets[si]);
        if (!k) {
            cr_log_warn("this CPU has no %s: its kernels are not checked here", sets[si]);
            continue;
        }
        for (size_t di = 0; di < 3; di++)
            for (size_t sh = 0; sh < 3; sh++) {
                size_t n = shapes[sh][0], kk = shapes[sh][1];
                float *full = malloc(n * kk * sizeof(float));
                rt_matrix m = make_matrix(n, kk, dts[di], full);
                for (size_t ri = 0; ri < 5; ri++) {
                    int R = rows[ri];
                    size_t ld = m.kp + 2;
                    float *x = calloc((size_t)R * ld, sizeof(float));
                    for (int r = 0; r < R; r++)
                        for (size_t c = 0; c < kk; c++) {
                            x[r * ld + c] = frand();
                            /* bf16 matrices take bf16 inputs: the magnitude below uses them */
                            if (dts[di] == ISIM_BF16)
                                x[r * ld + c] = isim__rt_f32(isim__rt_bf16(x[r * ld + c]));
                        }
                    void *in = malloc(isim__rt_xpack_bytes(R, m.kp, dts[di]));
                    isim__rt_xpack(x, ld, R, kk, m.kp, dts[di], in);
                    float *y = calloc((size_t)R * n, sizeof(float)),
                          *yr = calloc((size_t)R * n, sizeof(float));
                    k->matmul(&m, in, R, y, n, 0, m.panels, true);
                    ref->matmul(&m, in, R, yr, n, 0, m.panels, true);
                    for (int r = 0; r < R; r++)
                        for (size_t j = 0; j < n; j++) {
                            float mag = 0;
                            for (size_t c = 0; c < kk; c++)
                                mag += fabsf(x[r * ld + c] * full[j * kk + c]) * 1.1f;
                            float tol = 4.0f * (float)kk * 5.96e-8f * (mag + fabsf(m.bias[j]));
                            cr_assert(fabsf(y[r * n + j] - yr[r * n + j]) <= tol,
                                      "%s %s %zux%zu rows %d: y[%d][%zu] = %g, oracle %g", k->name,
                                      isim_dtype_name(dts[di]), n, kk, R, r, j, y[r * n + j],
                                      yr[r * n + j]);
                        }
                    free(x);
                    free(in);
                    free(y);
                    free(yr);
                    checked++;
                }
                free_matrix(&m);
                free(full);
            }
        /* exp-based pieces against libm: the polynomial's error, a few ulp */
        float g[37], u[37], o[37], s[37], s2[37];
        for (int i = 0; i < 37; i++) {
            g[i] = 12 * frand();
            u[i] = frand();
            s[i] = s2[i] = 20 * frand();
        }
        k->silu_mul(g, u, o, 37);
        for (int i = 0; i < 37; i++) {
            float want = g[i] / (1 + expf(-g[i])) * u[i];
            cr_expect(fabsf(o[i] - want) <= 1e-6f * (1 + fabsf(want)), "%s silu %g vs %g", k->name,
                      o[i], want);
        }
        k->softmax(s, 37);
        ref->softmax(s2, 37);
        for (int i = 0; i < 37; i++)
            cr_expect(fabsf(s[i] - s2[i]) <= 1e-6f, "%s softmax %g vs %g", k->name, s[i], s2[i]);
    }
    cr_log_info("matmul checks: %d", checked);
}

/* ---- the PyTorch reference ---------------------------------------------------------------- */

static const char *python(void)
{
    const char *p = getenv("ISIM_PYTHON");
    return p && *p ? p : "/usr/bin/python3";
}

/* Whether the reference can run; fails the test (or skips, with ISIM_NO_TORCH set) if not. */
static bool have_torch(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "'%s' -c 'import torch, numpy' >/dev/null 2>&1", python());
    if (system(cmd) == 0)
        return true;
    cr_assert(getenv("ISIM_NO_TORCH"),
              "%s cannot import torch: install Debian's python3-torch (or set ISIM_NO_TORCH=1 to "
              "leave out the checks against the PyTorch reference)",
              python());
    return false;
}

/* Runs the reference: `source` is "--export PREFIX" or "--llama2c FILE ..."; returns its
 * logits (n_seq, steps + 1, vocab) and fills tokens (n_seq, steps + 1) when not NULL. */
static float *reference(const char *dir, const char *source, int n_seq, const int *const *prompts,
                        const int *lens, int steps, const int *forced, int vocab, int *tokens)
{
    char list[4096] = "[", forced_list[4096] = "[";
    size_t at = 1, fat = 1;
    for (int s = 0; s < n_seq; s++) {
        at += (size_t)snprintf(list + at, sizeof list - at, "%s[", s ? "," : "");
        for (int i = 0; i < lens[s]; i++)
            at +=
                (size_t)snprintf(list + at, sizeof list - at, "%s%d", i ? "," : "", prompts[s][i]);
        at += (size_t)snprintf(list + at, sizeof list - at, "]");
        if (forced) {
            fat +=
                (size_t)snprintf(forced_list + fat, sizeof forced_list - fat, "%s[", s ? "," : "");
            for (int i = 0; i < steps; i++)
                fat += (size_t)snprintf(forced_list + fat, sizeof forced_list - fat, "%s%d",
                                        i ? "," : "", forced[s * steps + i]);
            fat += (size_t)snprintf(forced_list + fat, sizeof forced_list - fat, "]");
        }
    }
    snprintf(list + at, sizeof list - at, "]");
    snprintf(forced_list + fat, sizeof forced_list - fat, "]");
    char cmd[12000];
    snprintf(cmd, sizeof cmd,
             "'%s' '%s/tests/reference/llama_ref.py' %s --prompts '%s' %s%s%s "
             "--steps %d --out '%s/ref' 2>'%s/ref.err'",
             python(), ISIM_SOURCE_DIR, source, list, forced ? "--forced '" : "",
             forced ? forced_list : "", forced ? "'" : "", steps, dir, dir);
    char errp[600];
    snprintf(errp, sizeof errp, "%s/ref.err", dir);
    int rc = system(cmd);
    char *msg = tu_read(errp, NULL);
    cr_assert_eq(rc, 0, "the reference failed: %s", msg ? msg : "");
    free(msg);
    char path[600];
    snprintf(path, sizeof path, "%s/ref.bin", dir);
    size_t len = 0;
    float *lg = (float *)(void *)tu_read(path, &len);
    cr_assert_not_null(lg);
    cr_assert_eq(len, (size_t)n_seq * (size_t)(steps + 1) * (size_t)vocab * sizeof(float));
    if (tokens) {
        snprintf(path, sizeof path, "%s/ref.json", dir);
        char *js = tu_read(path, NULL);
        cJSON *j = cJSON_Parse(js);
        cr_assert_not_null(j);
        const cJSON *tk = cJSON_GetObjectItem(j, "tokens");
        for (int s = 0; s < n_seq; s++)
            for (int i = 0; i <= steps; i++)
                tokens[s * (steps + 1) + i] =
                    cJSON_GetArrayItem(cJSON_GetArrayItem(tk, s), i)->valueint;
        cJSON_Delete(j);
        free(js);
    }
    return lg;
}

/* max |engine - reference| over a row of logits against atol + rtol x max |reference| (the
 * row's scale: rounding errors scale with the largest terms, not with each logit); the
 * ratio, at most 1 to pass. */
static double worst(const float *got, const float *want, int n, double atol, double rtol)
{
    double d = 0, scale = 0;
    for (int i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]), a = fabs((double)want[i]);
        d = e > d ? e : d;
        scale = a > scale ? a : scale;
    }
    return d / (atol + rtol * scale);
}

static void make_dir(char *dir)
{
    strcpy(dir, "/tmp/isim-engine-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(const char *dir)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

/* stories260K, fp32: greedy decoding from <s> gives the reference's 64 ids, and every step's
 * logits agree within 1e-5 + 2e-5 of the logits' scale (fp32 sums in another order through
 * 5 layers: the measured worst is 8e-5 on logits up to 14, 6e-6 of the scale). */
Test(engine, stories260k_greedy_decoding_matches_the_reference)
{
    if (access(STORIES, R_OK) != 0)
        cr_skip_test("%s is absent: the real-weights check needs it", STORIES);
    if (!have_torch())
        cr_skip_test("ISIM_NO_TORCH: no PyTorch reference");
    isim_model *m = tu_model("stories260k");
    isim_rt_options o;
    isim_rt_options_init(&o);
    o.model = m;
    o.weights_file = STORIES;
    o.max_context = 128;
    isim_rt *rt = NULL;
    isim_error e = {0};
    cr_assert_eq(isim_rt_open(&o, &rt, &e), ISIM_OK, "%s", e.message);
    const int steps = 63, vocab = 512, one = 1;
    const int *prompts[1] = {&one};
    int len = 1;
    isim_rt_result r;
    cr_assert_eq(isim_rt_generate(rt, 1, prompts, &len, steps + 1, NULL, NULL, &r, &e), ISIM_OK,
                 "%s", e.message);
    char dir[64], src[600];
    make_dir(dir);
    snprintf(src, sizeof src, "--llama2c '%s' --rope-theta 10000 --norm-eps 1e-5", STORIES);
    int tokens[64];
    float *ref = reference(dir, src, 1, prompts, &len, steps, NULL, vocab, tokens);
    for (int i = 0; i <= steps; i++)
        cr_expect_eq(r.generated[i], tokens[i], "token %d: engine %d, reference %d", i,
                     r.generated[i], tokens[i]);
    /* the same steps again, teacher-forced, logits compared */
    isim_rt_reset(rt, 0);
    int slot = 0;
    float lg[512];
    const int *in = &one;
    int n = 1;
    for (int i = 0; i <= steps; i++) {
        cr_assert_eq(isim_rt_forward(rt, 1, &slot, &in, &n, lg, &e), ISIM_OK, "%s", e.message);
        double w = worst(lg, ref + (size_t)i * vocab, vocab, 1e-5, 2e-5);
        cr_expect_leq(w, 1.0, "step %d: logits off by %.2f x the tolerance", i, w);
        in = &tokens[i];
    }
    free(ref);
    isim_rt_result_release(&r);
    isim_rt_close(rt);
    isim_model_free(m);
    remove_dir(dir);
}

/* A model file with the given architecture lines (YAML under `architecture:`) and extra
 * sections; loaded from a temporary file. */
static isim_model *test_model(const char *arch, const char *extra)
{
    char text[4096];
    snprintf(text, sizeof text,
             "name: test model\nfamily: test\narchitecture:\n  source: \"a test shape\"\n%s"
             "  ffn: swiglu\n  norm: rmsnorm\n  position: rope\n  max_context: 256\n"
             "  rope_theta: 10000\n  norm_eps: 1.0e-5\n%s"
             "release: {source: \"test\", weights: fp32}\n"
             "declared_params: {source: \"test\", total: 1.0e6%s}\n",
             arch, extra, strstr(extra, "moe:") ? ", active: 5.0e5" : "");
    char *path = tu_write("model.yaml", text);
    isim_model *m = NULL;
    isim_error e = {0};
    char buf[1600];
    cr_assert_eq(isim_model_load(path, &m, &e), ISIM_OK, "%s",
                 isim_error_format(&e, buf, sizeof buf));
    tu_discard(path);
    return m;
}

typedef struct {
    const char *name, *arch, *extra;
    isim_dtype weights, kv;
    int chunk;
    double atol, rtol; /* why: in each case's comment */
} model_case;

/* The reference's logits for prompts of 5, 1 and 9 tokens, then 6 steps fed with the
 * reference's own greedy tokens; the engine fed the same, all three sequences in one batch
 * of different context lengths. */
static void check_against_reference(const model_case *c)
{
    isim_model *m = test_model(c->arch, c->extra);
    isim_rt_options o;
    isim_rt_options_init(&o);
    o.model = m;
    o.seed = 7;
    o.weights = c->weights;
    o.kv = c->kv;
    o.max_batch = 3;
    o.max_context = 64;
    o.max_chunk = c->chunk;
    o.kernels = getenv("ISIM_TEST_KERNELS");
    isim_rt *rt = NULL;
    isim_error e = {0};
    cr_assert_eq(isim_rt_open(&o, &rt, &e), ISIM_OK, "%s: %s", c->name, e.message);
    char dir[64], prefix[128], src[200];
    make_dir(dir);
    snprintf(prefix, sizeof prefix, "%s/w", dir);
    cr_assert_eq(isim_rt_export(rt, prefix, &e), ISIM_OK, "%s", e.message);
    const int vocab = (int)m->vocab, steps = 6;
    int p0[5], p1[1], p2[9];
    isim_rt_random_prompt(3, 0, 5, vocab, p0);
    isim_rt_random_prompt(3, 1, 1, vocab, p1);
    isim_rt_random_prompt(3, 2, 9, vocab, p2);
    const int *prompts[3] = {p0, p1, p2};
    int lens[3] = {5, 1, 9};
    snprintf(src, sizeof src, "--export '%s'", prefix);
    int tokens[3 * 7];
    float *ref = reference(dir, src, 3, prompts, lens, steps, NULL, vocab, tokens);
    int slots[3] = {0, 1, 2};
    float *lg = malloc(3 * (size_t)vocab * sizeof *lg);
    const int *in[3] = {p0, p1, p2};
    int n[3] = {5, 1, 9}, ones[3] = {1, 1, 1};
    double w_all = 0;
    for (int step = 0; step <= steps; step++) {
        cr_assert_eq(isim_rt_forward(rt, 3, slots, in, step ? ones : n, lg, &e), ISIM_OK, "%s",
                     e.message);
        for (int s = 0; s < 3; s++) {
            double w = worst(lg + (size_t)s * vocab, ref + ((size_t)s * (steps + 1) + step) * vocab,
                             vocab, c->atol, c->rtol);
            w_all = w > w_all ? w : w_all;
            cr_expect_leq(w, 1.0, "%s: sequence %d step %d off by %.2f x the tolerance", c->name, s,
                          step, w);
            in[s] = &tokens[s * (steps + 1) + step];
        }
    }
    cr_log_info("%s: worst logit at %.3f of the tolerance", c->name, w_all);
    free(lg);
    free(ref);
    isim_rt_close(rt);
    isim_model_free(m);
    remove_dir(dir);
}

#define GQA                                                                                        \
    "  d_model: 96\n  n_layers: 3\n  n_heads: 6\n  n_kv_heads: 2\n  head_dim: 16\n"                \
    "  d_ff: 200\n  vocab: 300\n"

/* Random models of each feature against the reference, tolerances relative to the logits'
 * scale. fp32: 1e-6 + 5e-6 (the same sums in another order over 3 layers, measured at
 * about 1e-7 of the scale). int8 weights
 * are exported dequantized, so they too are fp32 sums (the scale factored out on one side).
 * bf16 weights and a bf16 KV cache: both sides round the same values to bf16, but the
 * fp32 values they round differ in the last bits, so now and then one rounds the other
 * way; that moves a term by one bf16 step, 2^-8 of it: 4e-3 of the scale. */
Test(engine, random_models_of_every_feature_match_the_reference)
{
    if (!have_torch())
        cr_skip_test("ISIM_NO_TORCH: no PyTorch reference");
    static const model_case cases[] = {
        {"GQA, tied", GQA "  tied_embeddings: true\n", "", ISIM_FP32, ISIM_FP32, 0, 1e-6, 5e-6},
        {"GQA in chunks of 4 rows", GQA "  tied_embeddings: true\n", "", ISIM_FP32, ISIM_FP32, 4,
         1e-6, 5e-6},
        {"biases, q/k norms, sliding window, untied, bf16 KV",
         GQA "  tied_embeddings: false\n  attn_bias: true\n  mlp_bias: true\n  qk_norm: true\n",
         "sliding_window: {source: \"test\", window: 4, pattern: [sliding, full]}\n", ISIM_FP32,
         ISIM_BF16, 0, 1e-5, 4e-3},
        {"MoE with a shared expert and a dense first layer", GQA "  tied_embeddings: false\n",
         "moe: {source: \"test\", n_experts: 4, n_active_experts: 2, n_shared_experts: 1, "
         "expert_d_ff: 64, shared_expert_d_ff: 48, first_dense_layers: 1, router_bias: true}\n",
         ISIM_FP32, ISIM_FP32, 0, 1e-6, 5e-6},
        {"bf16 weights", GQA "  tied_embeddings: true\n", "", ISIM_BF16, ISIM_FP32, 0, 1e-5, 4e-3},
        {"int8 weights", GQA "  tied_embeddings: true\n", "", ISIM_INT8, ISIM_FP32, 0, 1e-6, 5e-6},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_against_reference(&cases[i]);
}

/* ---- processes ------------------------------------------------------------------------------ */

/* mpirun, or NULL when Open MPI's launcher is absent (which fails the test unless
 * ISIM_NO_MPI is set). */
static const char *mpirun(void)
{
    /* leak checking off for the ranks under a sanitizer build: Open MPI leaves its own
     * allocations at exit (in modules unloaded by then); the engine's are checked in the
     * single-process tests */
    if (system("command -v mpirun >/dev/null 2>&1") == 0)
        return "env ASAN_OPTIONS=detect_leaks=0 mpirun --allow-run-as-root --oversubscribe -x "
               "ASAN_OPTIONS";
    cr_assert(getenv("ISIM_NO_MPI"), "mpirun is missing: install openmpi-bin (or set ISIM_NO_MPI=1 "
                                     "to leave out the multi-process checks)");
    return NULL;
}

/* Runs `prefix infersim ARGS --dump-logits dir/name.bin` and returns the logits. */
static float *run_dump(const char *prefix, const char *args, const char *dir, const char *name,
                       size_t *n_floats, char **err_out)
{
    char cmd[4000], path[300], errp[300];
    snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    snprintf(errp, sizeof errp, "%s/%s.err", dir, name);
    snprintf(cmd, sizeof cmd,
             "timeout 300 %s '%s' run --engine cpu %s --dump-logits '%s' >/dev/null 2>'%s'", prefix,
             ISIM_BIN, args, path, errp);
    int rc = system(cmd);
    char *msg = tu_read(errp, NULL);
    if (err_out)
        *err_out = msg;
    cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "'%s' failed (%d): %s", cmd, rc,
              msg ? msg : "");
    if (!err_out)
        free(msg);
    size_t len = 0;
    float *lg = (float *)(void *)tu_read(path, &len);
    cr_assert_not_null(lg);
    *n_floats = len / sizeof(float);
    return lg;
}

/* The same logits from one process and from tensor- and pipeline-parallel runs over Open MPI:
 * pipeline stages compute every row exactly as one process does (bit for bit); tensor
 * parallelism adds the row-parallel matmuls' partial sums in another order (the all-reduce),
 * 1e-6 + 5e-6 of the logits' scale. A dense model with stories260K's shape (random weights)
 * and a small MoE model, 3 sequences with micro-batches in flight. */
Test(engine, tensor_and_pipeline_parallel_runs_match_one_process)
{
    const char *mpi = mpirun();
    if (!mpi)
        cr_skip_test("ISIM_NO_MPI: no multi-process checks");
    char dir[64];
    make_dir(dir);
    /* a data directory with a small MoE model beside the catalog's */
    char mdir[128], cmd[600];
    snprintf(mdir, sizeof mdir, "%s/models", dir);
    cr_assert_eq(mkdir(mdir, 0777), 0);
    snprintf(cmd, sizeof cmd, "cp '%s/models/stories260k.yaml' '%s/'", ISIM_DATA_DIR, mdir);
    cr_assert_eq(system(cmd), 0);
    char path[200];
    snprintf(path, sizeof path, "%s/tiny-moe.yaml", mdir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("name: tiny MoE\nfamily: test\narchitecture:\n  source: \"test\"\n  d_model: 64\n"
          "  n_layers: 4\n  n_heads: 8\n  n_kv_heads: 4\n  head_dim: 8\n  d_ff: 96\n  ffn: swiglu\n"
          "  vocab: 256\n  tied_embeddings: false\n  norm: rmsnorm\n  position: rope\n"
          "  max_context: 128\nmoe: {source: \"test\", n_experts: 4, n_active_experts: 2, "
          "n_shared_experts: 1, expert_d_ff: 32, shared_expert_d_ff: 16, first_dense_layers: 1, "
          "router_bias: false}\nrelease: {source: \"test\", weights: fp32}\n"
          "declared_params: {source: \"test\", total: 2.0e5, active: 1.0e5}\n",
          f);
    fclose(f);
    static const char *const models[] = {"stories260k", "tiny-moe"};
    for (int mi = 0; mi < 2; mi++) {
        char base[600];
        snprintf(base, sizeof base,
                 "--data '%s' --model %s --batch 3 --input-tokens 7 --output-tokens 6 --threads 1",
                 dir, models[mi]);
        size_t n1 = 0, nt = 0, np = 0, n4 = 0;
        float *one = run_dump("", base, dir, "one", &n1, NULL);
        char args[800], prefix[200];
        snprintf(prefix, sizeof prefix, "%s -np 2", mpi);
        snprintf(args, sizeof args, "%s --tp 2", base);
        float *tp = run_dump(prefix, args, dir, "tp", &nt, NULL);
        snprintf(args, sizeof args, "%s --pp 2 --micro-batches 3", base);
        float *pp = run_dump(prefix, args, dir, "pp", &np, NULL);
        snprintf(prefix, sizeof prefix, "%s -np 4", mpi);
        snprintf(args, sizeof args, "%s --tp 2 --pp 2", base);
        float *both = run_dump(prefix, args, dir, "both", &n4, NULL);
        cr_assert_eq(n1, (size_t)6 * 3 * (mi ? 256 : 512), "%s: logits of 6 steps x 3 sequences",
                     models[mi]);
        cr_assert_eq(nt, n1);
        cr_assert_eq(np, n1);
        cr_assert_eq(n4, n1);
        cr_expect(memcmp(one, pp, n1 * sizeof(float)) == 0, "%s: pipeline stages change the logits",
                  models[mi]);
        int vocab = mi ? 256 : 512;
        for (size_t r = 0; r < n1 / (size_t)vocab; r++) {
            cr_expect_leq(worst(tp + r * vocab, one + r * vocab, vocab, 1e-6, 5e-6), 1.0,
                          "%s: tp 2, row %zu", models[mi], r);
            cr_expect_leq(worst(both + r * vocab, one + r * vocab, vocab, 1e-6, 5e-6), 1.0,
                          "%s: tp 2 x pp 2, row %zu", models[mi], r);
        }
        free(one);
        free(tp);
        free(pp);
        free(both);
    }
    remove_dir(dir);
}

/* A rank that fails ends the whole run with its message (no rank waits for it): here rank 0
 * alone cannot create its logits file. */
Test(engine, a_failing_rank_ends_the_run_with_its_message)
{
    const char *mpi = mpirun();
    if (!mpi)
        cr_skip_test("ISIM_NO_MPI: no multi-process checks");
    char dir[64], cmd[1200], errp[128];
    make_dir(dir);
    snprintf(errp, sizeof errp, "%s/err", dir);
    snprintf(
        cmd, sizeof cmd,
        "timeout 120 %s -np 2 '%s' run --engine cpu --model stories260k --batch 2 --input-tokens 4 "
        "--output-tokens 4 --tp 2 --dump-logits /nonexistent/dir/x.bin >/dev/null 2>'%s'",
        mpi, ISIM_BIN, errp);
    int rc = system(cmd);
    char *msg = tu_read(errp, NULL);
    cr_assert(WIFEXITED(rc), "the run did not end by itself");
    cr_expect_neq(WEXITSTATUS(rc), 124, "the run hung until the timeout: %s", msg);
    cr_expect_neq(WEXITSTATUS(rc), 0);
    cr_expect(msg && strstr(msg, "/nonexistent/dir/x.bin: cannot create"), "%s", msg);
    free(msg);
    remove_dir(dir);
}

/* ---- bad input ------------------------------------------------------------------------------ */

static isim_status try_open(const char *model, const char *file, int tp, int ctx, isim_dtype wt,
                            isim_error *e)
{
    isim_model *m = tu_model(model);
    isim_rt_options o;
    isim_rt_options_init(&o);
    o.model = m;
    o.weights_file = file;
    o.tp = tp;
    o.max_context = ctx;
    o.weights = wt;
    isim_rt *rt = NULL;
    isim_status st = isim_rt_open(&o, &rt, e);
    isim_rt_close(rt);
    isim_model_free(m);
    return st;
}

/* Refused before any heavy work, with the reason: a truncated or oversized checkpoint, one
 * whose header does not match the model, a split that does not divide, a context beyond the
 * model's, an architecture the engine does not run, and more memory than the machine has
 * (found by counting, in well under a second, before anything is allocated). */
Test(engine, bad_input_is_refused_before_any_heavy_work)
{
    isim_error e = {0};
    char dir[64], cut[128], big[128], cmd[600];
    make_dir(dir);
    if (access(STORIES, R_OK) == 0) {
        snprintf(cut, sizeof cut, "%s/cut.bin", dir);
        snprintf(big, sizeof big, "%s/big.bin", dir);
        snprintf(cmd, sizeof cmd,
                 "head -c 500000 '%s' > '%s' && cp '%s' '%s' && printf abcd >> '%s'", STORIES, cut,
                 STORIES, big, big);
        cr_assert_eq(system(cmd), 0);
        cr_expect_eq(try_open("stories260k", cut, 1, 0, ISIM_FP32, &e), ISIM_EINVAL);
        cr_expect(
            strstr(e.message, "truncated: 500000 bytes, but its header's model takes 1056540"),
            "%s", e.message);
        cr_expect_eq(try_open("stories260k", big, 1, 0, ISIM_FP32, &e), ISIM_EINVAL);
        cr_expect(strstr(e.message, "size mismatch: 1056544 bytes"), "%s", e.message);
        cr_expect_eq(try_open("llama-3.2-1b", STORIES, 1, 0, ISIM_FP32, &e), ISIM_EINVAL);
        cr_expect(
            strstr(e.message, "header says dim 64, but model 'llama-3.2-1b' has d_model 2048"),
            "%s", e.message);
    } else {
        cr_log_warn("%s is absent: the checkpoint checks are left out", STORIES);
    }
    snprintf(cut, sizeof cut, "%s/tiny.bin", dir);
    snprintf(cmd, sizeof cmd, "printf abc > '%s'", cut);
    cr_assert_eq(system(cmd), 0);
    cr_expect_eq(try_open("stories260k", cut, 1, 0, ISIM_FP32, &e), ISIM_EINVAL);
    cr_expect(strstr(e.message, "truncated: 3 bytes, shorter than llama2.c's 28-byte header"), "%s",
              e.message);
    cr_expect_eq(try_open("stories260k", NULL, 3, 0, ISIM_FP32, &e), ISIM_EINVAL);
    cr_expect(strstr(e.message, "n_heads = 8 does not divide over tp 3"), "%s", e.message);
    cr_expect_eq(try_open("stories260k", NULL, 1, 4096, ISIM_FP32, &e), ISIM_EINVAL);
    cr_expect(strstr(e.message,
                     "a context of 4096 tokens is longer than model 'stories260k''s limit of 512"),
              "%s", e.message);
    cr_expect_eq(try_open("deepseek-v3", NULL, 1, 64, ISIM_FP32, &e), ISIM_EINVAL);
    cr_expect(strstr(e.message, "multi-head latent attention"), "%s", e.message);
    cr_expect_eq(try_open("gpt-3-175b", NULL, 1, 64, ISIM_FP32, &e), ISIM_EINVAL);
    cr_expect(strstr(e.message, "LayerNorm"), "%s", e.message);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_expect_eq(try_open("llama-3.1-405b", NULL, 1, 64, ISIM_FP32, &e), ISIM_ENOMEM);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* 405.85e9 parameters x 4 bytes, the panels' padding aside; buffers of a 64-row pass */
    cr_expect(strstr(e.message, "model 'llama-3.1-405b' needs 1623.") &&
                  strstr(e.message, "weights 1623.") && strstr(e.message, "available"),
              "%s", e.message);
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    cr_expect_lt(s, 5.0, "refusing took %.2f s", s);
    /* tensor parallelism in one process asks for mpirun */
    cr_expect_eq(try_open("stories260k", NULL, 2, 0, ISIM_FP32, &e), ISIM_EINVAL);
    cr_expect(strstr(e.message, "start it with mpirun -np 2"), "%s", e.message);
    remove_dir(dir);
}

/* The command line: JSON with the fields programs read; usage errors. */
Test(engine, run_prints_its_measurements_as_json)
{
    cJSON *j = tu_run_json("run --engine cpu --model stories260k --batch 2 --input-tokens 5 "
                           "--output-tokens 4 --threads 1 --json");
    const cJSON *ids = cJSON_GetObjectItem(j, "generated_ids");
    cr_assert_eq(cJSON_GetArraySize(ids), 2);
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetArrayItem(ids, 0)), 4);
    cr_expect_gt(tu_num(j, "prefill_ms"), 0);
    const cJSON *st = cJSON_GetObjectItem(j, "decode_step_ms");
    cr_expect(tu_num(st, "p10") <= tu_num(st, "median") &&
              tu_num(st, "median") <= tu_num(st, "p90"));
    cr_expect_gt(tu_num(j, "tokens_per_s"), 0);
    /* stories260K's matrices in fp32, the panels' padding included, and 2 embedding rows */
    cr_expect_gt(tu_num(j, "weight_bytes"), 4.0 * 264128 - 4.0 * 4096 - 4.0 * 512 * 64);
    const cJSON *t = cJSON_GetObjectItem(j, "terms_ms");
    cr_expect_gt(tu_num(t, "matmul"), 0);
    cr_expect_geq(tu_num(t, "attention"), 0);
    cr_expect_eq(tu_num(t, "collective"), 0);
    cr_expect_geq(tu_num(t, "other"), 0);
    cJSON_Delete(j);
    tu_expect_error("run --engine gpu --model stories260k --input-tokens 4 --output-tokens 4", 2,
                    "--engine gpu: this build runs --engine cpu", true);
    tu_expect_error("run --engine cpu --model stories260k --output-tokens 4", 2,
                    "give the prompt as --input-tokens I or as --prompt-ids", true);
    tu_expect_error("run --engine cpu --model stories260k --prompt-ids 1,x --output-tokens 4", 2,
                    "--prompt-ids: '1,x' is not a list of token ids in [0, 512)", true);
    tu_expect_error(
        "run --engine cpu --model stories260k --input-tokens 4 --output-tokens 4 --tp 2", 2,
        "needs 2 processes: start it with mpirun -np 2", true);
    tu_expect_error(
        "run --engine cpu --model stories260k --input-tokens 500 --output-tokens 40", 2,
        "500 prompt + 40 output tokens are longer than model 'stories260k''s context of 512", true);
}

/* ---- allocations -------------------------------------------------------------------------- */

/* Steady-state decode allocates nothing: every buffer is carved when the engine opens. On
 * two threads, with the pool, a prefill first, then 16 steps of 3 sequences counted (by the
 * allocation wrappers of tests/faults.h, which see the engine's calls in every build). */
Test(engine, steady_state_decode_allocates_nothing)
{
    isim_model *m = tu_model("stories260k");
    isim_rt_options o;
    isim_rt_options_init(&o);
    o.model = m;
    o.threads = 2;
    o.max_batch = 3;
    o.max_context = 64;
    isim_rt *rt = NULL;
    isim_error e = {0};
    cr_assert_eq(isim_rt_open(&o, &rt, &e), ISIM_OK, "%s", e.message);
    int p0[8], p1[3], p2[5], slots[3] = {0, 1, 2}, n[3] = {8, 3, 5}, ones[3] = {1, 1, 1};
    isim_rt_random_prompt(1, 0, 8, 512, p0);
    isim_rt_random_prompt(1, 1, 3, 512, p1);
    isim_rt_random_prompt(1, 2, 5, 512, p2);
    const int *in[3] = {p0, p1, p2};
    float logits[3 * 512];
    cr_assert_eq(isim_rt_forward(rt, 3, slots, in, n, logits, &e), ISIM_OK, "%s", e.message);
    in[0] = p0 + 7;
    in[1] = p1 + 2;
    in[2] = p2 + 4;
    fault_begin(0);
    isim_status st = ISIM_OK;
    for (int s = 0; s < 16 && !st; s++)
        st = isim_rt_forward(rt, 3, slots, in, ones, logits, &e);
    fault_stats counted = fault_end();
    cr_assert_eq(st, ISIM_OK, "%s", e.message);
    cr_expect_eq(counted.calls, 0u, "%zu allocations in 16 decode steps", counted.calls);
    isim_rt_close(rt);
    isim_model_free(m);
}

/* Every kernel set this CPU runs gives the same logits through whole passes (attention and
 * the element-wise kernels included), for a model with every feature, bf16 weights and a
 * bf16 KV cache: within 1e-6 + 4e-3 of the logits' scale (bf16 inputs can round apart, as
 * against the reference), and the fp32 path within 5e-6. The build runs on CPUs without
 * AVX-512 this way. */
Test(engine, every_kernel_set_computes_the_same_passes)
{
    static const char *const sets[] = {"scalar", "avx2", "avx512"};
    static const isim_dtype wts[] = {ISIM_FP32, ISIM_BF16};
    isim_model *m =
        test_model(GQA "  tied_embeddings: false\n  attn_bias: true\n  qk_norm: true\n",
                   "sliding_window: {source: \"test\", window: 4, pattern: [sliding, full]}\n"
                   "moe: {source: \"test\", n_experts: 4, n_active_experts: 2, "
                   "n_shared_experts: 0, expert_d_ff: 64, shared_expert_d_ff: 0, "
                   "first_dense_layers: 1, router_bias: false}\n");
    const int vocab = (int)m->vocab;
    int p0[6], p1[2], slots[2] = {0, 1}, n[2] = {6, 2}, ones[2] = {1, 1};
    isim_rt_random_prompt(5, 0, 6, vocab, p0);
    isim_rt_random_prompt(5, 1, 2, vocab, p1);
    for (int wi = 0; wi < 2; wi++) {
        float *ref = NULL;
        for (int si = 0; si < 3; si++) {
            isim_rt_options o;
            isim_rt_options_init(&o);
            o.model = m;
            o.weights = wts[wi];
            o.kv = wts[wi];
            o.max_batch = 2;
            o.max_context = 32;
            o.kernels = sets[si];
            isim_rt *rt = NULL;
            isim_error e = {0};
            if (isim_rt_open(&o, &rt, &e) != ISIM_OK) {
                cr_log_warn("%s: %s", sets[si], e.message);
                continue;
            }
            float *lg = malloc(4 * 2 * (size_t)vocab * sizeof *lg);
            const int *in[2] = {p0, p1};
            int next[2] = {7, 9};
            for (int step = 0; step < 4; step++) {
                cr_assert_eq(isim_rt_forward(rt, 2, slots, in, step ? ones : n,
                                             lg + (size_t)step * 2 * vocab, &e),
                             ISIM_OK, "%s", e.message);
                in[0] = &next[0];
                in[1] = &next[1];
            }
            if (!ref) {
                ref = lg;
            } else {
                for (int r = 0; r < 8; r++)
                    cr_expect_leq(worst(lg + (size_t)r * vocab, ref + (size_t)r * vocab, vocab,
                                        1e-6, wts[wi] == ISIM_BF16 ? 4e-3 : 5e-6),
                                  1.0, "%s %s, row %d", sets[si], isim_dtype_name(wts[wi]), r);
                free(lg);
            }
            isim_rt_close(rt);
        }
        free(ref);
    }
    isim_model_free(m);
}

/* The statistic calibrate gives the bandwidth and validate its points, worked by hand. */
Test(engine, measurements_are_summarised_by_the_mean_of_their_middle_runs)
{
    /* times: one of five cut at each end, the mean of 2, 3, 4 */
    double t[5] = {100, 3, 1, 4, 2};
    isim_rt_stat s = isim_rt_summarize(t, 5, false);
    cr_expect_float_eq(s.mean, 3.0, 1e-12);
    cr_expect_float_eq(s.median, 3.0, 1e-12);
    cr_expect_float_eq(s.best, 1.0, 1e-12);
    cr_expect_float_eq(s.worst, 100.0, 1e-12);
    /* rates of a machine in two states, 40 and 80 GB/s, half the samples each, and one
     * hiccup of 5 at each end cut: the mean time of a GB, (1/40 + 1/80) / 2 = 3/160 s, is a
     * rate of 53.33 GB/s, where the median (60) sits between the states */
    double r[12] = {40, 80, 40, 80, 40, 80, 40, 80, 40, 80, 5, 500};
    s = isim_rt_summarize(r, 12, true);
    cr_expect_float_eq(s.mean, 160.0 / 3.0, 1e-9);
    cr_expect_float_eq(s.median, 60.0, 1e-12);
    cr_expect_float_eq(s.best, 500.0, 1e-12);
    cr_expect_float_eq(s.worst, 5.0, 1e-12);
    /* fewer than 3: nothing cut */
    double two[2] = {1, 3};
    cr_expect_float_eq(isim_rt_summarize(two, 2, false).mean, 2.0, 1e-12);
    cr_expect_float_eq(isim_rt_summarize(two, 2, true).mean, 1.5, 1e-12);
}

/* The machine's CPU time calibrate reads from /proc/stat to tell how much of it other
 * programs took while it measured: two lines read on this project's 2-CPU VM 10.8 s apart,
 * 100 ticks a second, worked by hand. */
Test(engine, the_machines_cpu_time_is_read_from_proc_stat)
{
    const char *a = "cpu  5192529 5871 565501 2381067 7230 0 1698 27577 0 0\n",
               *b = "cpu  5194538 5871 565561 2381153 7230 0 1698 27579 0 0\n";
    double busy_a, total_a, busy_b, total_b;
    cr_assert(isim_rt_parse_cpu_times(a, 0.01, &busy_a, &total_a));
    cr_assert(isim_rt_parse_cpu_times(b, 0.01, &busy_b, &total_b));
    /* busy: user + nice + system + irq + softirq + steal = 5192529 + 5871 + 565501 + 0 + 1698
     * + 27577 = 5793176 ticks; total: + idle 2381067 + iowait 7230 = 8181473 */
    cr_expect(tu_close(busy_a, 57931.76, 1e-12), "%.6f", busy_a);
    cr_expect(tu_close(total_a, 81814.73, 1e-12), "%.6f", total_a);
    /* between them: busy 5795247 - 5793176 = 2071 ticks, total 2071 + 86 idle = 2157: a
     * program of two threads that used 20.5 s of it leaves others (20.71 - 20.5) / 21.57 */
    cr_expect(tu_close(busy_b - busy_a, 20.71, 1e-9), "%.6f", busy_b - busy_a);
    cr_expect(tu_close(total_b - total_a, 21.57, 1e-9), "%.6f", total_b - total_a);
    cr_expect(tu_close(((busy_b - busy_a) - 20.5) / (total_b - total_a), 0.21 / 21.57, 1e-9));
    /* not such a line: the per-CPU lines and anything short are refused */
    double x, y;
    cr_expect_not(isim_rt_parse_cpu_times("cpu0 1 2 3 4 5 6 7 8 0 0", 0.01, &x, &y));
    cr_expect_not(isim_rt_parse_cpu_times("cpu  1 2 3", 0.01, &x, &y));
    cr_expect_not(isim_rt_parse_cpu_times("intr 1 2 3 4 5 6 7 8", 0.01, &x, &y));
}

/* The matmul efficiency curve calibrate fits: the model's time worked by hand at 1, 13 and
 * 512 rows, and the fit recovering the parameters a sweep was made from, its tile included. */
Test(engine, the_calibration_curve_fit_recovers_the_parameters_of_its_sweep)
{
    isim_rt_calibration c;
    memset(&c, 0, sizeof c);
    memcpy(c.rows, isim_rt_cal_rows, sizeof c.rows);
    cr_assert_eq(c.rows[5], 13);
    cr_assert_eq(c.rows[15], 512);
    /* Llama 3.2 1B's layer: q/k/v, o, gate/up, down */
    static const size_t n[4] = {3072, 2048, 16384, 2048}, k[4] = {2048, 2048, 2048, 8192};
    c.big_mats = 4;
    memcpy(c.big_n, n, sizeof n);
    memcpy(c.big_k, k, sizeof k);
    c.sweep_peak_fp32.mean = 0.5e12;
    c.sweep_peak_bf16.mean = 1e12;
    c.sweep_stream_fp32.mean = 40e9;
    c.sweep_stream_bf16.mean = 45e9;
    cr_assert_float_eq(isim_rt_sweep_params(&c), 60817408.0, 0.5);
    /* by hand, bf16, flops 0.9, a tile at least 8 rows, overlap 0.3, tiles of 12 rows: a row
     * 2 x 60817408 / (1e12 x 0.9) = 0.1351498 ms, traffic 2 x 60817408 / 45e9 = 2.702996 ms.
     * One row: the first tile, its one row under the traffic: 2.702996 + 0.3 x 0.1351498 =
     * 2.743541 ms. */
    const double truth[4] = {0.9, 8, 0.3, 12};
    cr_expect_float_eq(isim_rt_curve_time(&c, true, 0, truth, 45e9), 2.743541e-3, 1e-8);
    /* 13 rows: 12 under the traffic (1.621798 ms), then a tile of 1 row costing 8 after it:
     * 2.702996 + 0.3 x 1.621798 + 1.081198 = 4.270733 ms */
    cr_expect_float_eq(isim_rt_curve_time(&c, true, 5, truth, 45e9), 4.270733e-3, 1e-8);
    /* 512 rows: 42 tiles of 12 and one of 8; after the first, 41 x 12 + 8 = 500 rows,
     * 67.574898 ms: 2.702996 + 0.486539 + 67.574898 = 70.764433 ms */
    cr_expect_float_eq(isim_rt_curve_time(&c, true, 15, truth, 45e9), 70.764433e-3, 1e-8);
    for (int i = 0; i < ISIM_RT_CAL_ROWS; i++) {
        c.big_fp32[i].mean = isim_rt_curve_time(&c, false, i, truth, 40e9);
        c.big_bf16[i].mean = isim_rt_curve_time(&c, true, i, truth, 45e9);
    }
    double x[4], rms = 1;
    isim_error e = {0};
    cr_assert_eq(isim_rt_fit_curve(&c, true, true, -1, x, &rms, &e), ISIM_OK, "%s", e.message);
    cr_expect_lt(rms, 1e-6);
    cr_expect_float_eq(x[0], 0.9, 1e-4);
    cr_expect_float_eq(x[1], 8.0, 1e-3);
    cr_expect_float_eq(x[2], 0.3, 1e-4);
    cr_expect_eq(x[3], 12);
    /* held to one tile, the same sweep fits worse */
    cr_assert_eq(isim_rt_fit_curve(&c, true, true, 0, x, &rms, &e), ISIM_OK, "%s", e.message);
    cr_expect_eq(x[3], 0);
    cr_expect_gt(rms, 0.01);
    /* a sweep made as one tile gives one tile back */
    const double flat[4] = {0.9, 8, 0.3, 0};
    for (int i = 0; i < ISIM_RT_CAL_ROWS; i++)
        c.big_bf16[i].mean = isim_rt_curve_time(&c, true, i, flat, 45e9);
    cr_assert_eq(isim_rt_fit_curve(&c, false, true, -1, x, &rms, &e), ISIM_OK, "%s", e.message);
    cr_expect_lt(rms, 1e-6);
    cr_expect_eq(x[3], 0);
    cr_expect_float_eq(x[2], 0.3, 1e-4);
    /* a sweep faster than its peak (the peak kernel reading low) fits a fraction of 1, not
     * more: the profile's efficiency.flops is at most 1 */
    const double fast[4] = {1.05, 8, 0.3, 12};
    for (int i = 0; i < ISIM_RT_CAL_ROWS; i++)
        c.big_bf16[i].mean = isim_rt_curve_time(&c, true, i, fast, 45e9);
    cr_assert_eq(isim_rt_fit_curve(&c, false, true, -1, x, &rms, &e), ISIM_OK, "%s", e.message);
    cr_expect_leq(x[0], 1.0);
    cr_expect_gt(x[0], 0.99);
    /* neither precision: refused */
    cr_expect_eq(isim_rt_fit_curve(&c, false, false, -1, x, &rms, &e), ISIM_EINVAL);
}
