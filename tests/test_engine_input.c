/* What the CPU engine is given: a llama2.c checkpoint (whose header may lie, whose weights may
 * not be numbers, which may not be a file at all) and the options of `infersim run` that reach
 * the engine (--kernels, --dump-logits). Each bad input is refused with its reason, before any
 * heavy work, and a failed or killed run leaves the previous logits file as it was. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/cpu/internal.h"
#include "runtime/runtime.h"
#include "testutil.h"

#define STORIES ISIM_FIXTURES_DIR "/stories260K.bin"
#define STORIES_BYTES 1056540

static void make_dir(char *dir)
{
    strcpy(dir, "/tmp/isim-input-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(const char *dir)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

/* The fixture's bytes (the test is skipped without it). */
static unsigned char *fixture(void)
{
    FILE *f = fopen(STORIES, "rb");
    if (!f)
        cr_skip_test("%s is absent: the checkpoint checks are left out", STORIES);
    unsigned char *b = malloc(STORIES_BYTES);
    cr_assert_not_null(b);
    cr_assert_eq(fread(b, 1, STORIES_BYTES, f), (size_t)STORIES_BYTES);
    fclose(f);
    return b;
}

/* Opens the engine on `file` for stories260k (or `m` when given) on `threads` threads; the
 * status, with the error in *e. */
static isim_status open_with(isim_model *m, const char *file, isim_dtype wt, int threads,
                             const char *kernels, isim_error *e)
{
    isim_model *own = m ? NULL : tu_model("stories260k");
    isim_rt_options o;
    isim_rt_options_init(&o);
    o.model = m ? m : own;
    o.weights_file = file;
    o.weights = wt;
    o.threads = threads;
    o.max_context = 16;
    o.kernels = kernels;
    isim_rt *rt = NULL;
    memset(e, 0, sizeof *e);
    isim_status st = isim_rt_open(&o, &rt, e);
    isim_rt_close(rt);
    isim_model_free(own);
    return st;
}

/* ---- the checkpoint's header ------------------------------------------------------------- */

/* A header that lies, about the model or about the file, is refused with what it says against
 * what it should, before anything the size of the model is allocated: every field against the
 * model (negative, zero, huge, and llama2.c's negative vocab_size for a classifier of its own),
 * seq_len (the one field the model does not fix) against the file's size, and files cut short. */
Test(checkpoint, a_header_that_lies_is_refused_with_what_it_says)
{
    static const struct {
        int field;   /* the int32 set, or -1 for none */
        int32_t v;   /* its value */
        size_t keep; /* bytes of the file kept */
        const char *want;
    } cases[] = {
        {0, 65, STORIES_BYTES, "header says dim 65, but model 'stories260k' has d_model 64"},
        {0, -64, STORIES_BYTES, "header says dim -64, but model 'stories260k' has d_model 64"},
        {1, 0, STORIES_BYTES, "header says hidden_dim 0, but model 'stories260k' has d_ff 172"},
        {2, INT32_MAX, STORIES_BYTES,
         "header says n_layers 2147483647, but model 'stories260k' has n_layers 5"},
        {3, -8, STORIES_BYTES, "header says n_heads -8, but model 'stories260k' has n_heads 8"},
        {4, 8, STORIES_BYTES, "header says n_kv_heads 8, but model 'stories260k' has n_kv_heads 4"},
        {5, 511, STORIES_BYTES,
         "header says vocab_size 511, but model 'stories260k' has vocab 512"},
        {5, -512, STORIES_BYTES,
         "the classifier is separate from the embedding, but model 'stories260k' says "
         "tied_embeddings: true"},
        {5, -600, STORIES_BYTES,
         "header says vocab_size -600 (a classifier of its own, over 600 tokens), but model "
         "'stories260k' has vocab 512"},
        {5, INT32_MIN, STORIES_BYTES,
         "header says vocab_size -2147483648 (a classifier of its own, over 2147483648 tokens), "
         "but model 'stories260k' has vocab 512"},
        {6, 0, STORIES_BYTES, "header says seq_len 0, not a positive count"},
        {6, INT32_MIN, STORIES_BYTES, "header says seq_len -2147483648, not a positive count"},
        {6, 256, STORIES_BYTES,
         "size mismatch: 1056540 bytes, but its header's model takes 1048348"},
        {6, INT32_MAX, STORIES_BYTES,
         "truncated: 1056540 bytes, but its header's model takes 68720516860"},
        {-1, 0, 28, "truncated: 28 bytes, but its header's model takes 1056540"},
        {-1, 0, STORIES_BYTES - 1,
         "truncated: 1056539 bytes, but its header's model takes 1056540"},
        {-1, 0, 27, "truncated: 27 bytes, shorter than llama2.c's 28-byte header"},
        {-1, 0, 0, "truncated: 0 bytes, shorter than llama2.c's 28-byte header"},
    };
    unsigned char *b = fixture();
    char dir[64], path[128], want[512];
    make_dir(dir);
    snprintf(path, sizeof path, "%s/h.bin", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t h[7];
        memcpy(h, b, sizeof h);
        if (cases[i].field >= 0)
            h[cases[i].field] = cases[i].v;
        FILE *f = fopen(path, "wb");
        cr_assert_not_null(f);
        fwrite(h, 1, cases[i].keep < sizeof h ? cases[i].keep : sizeof h, f);
        if (cases[i].keep > sizeof h)
            fwrite(b + sizeof h, 1, cases[i].keep - sizeof h, f);
        cr_assert_eq(fclose(f), 0);
        isim_error e;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        cr_expect_eq(open_with(NULL, path, ISIM_INT8, 1, NULL, &e), ISIM_EINVAL, "case %zu", i);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        snprintf(want, sizeof want, "%s: %s", path, cases[i].want);
        cr_expect_str_eq(e.message, want, "case %zu", i);
        double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        cr_expect_lt(s, 1.0, "case %zu: refusing took %.2f s", i, s);
    }
    free(b);
    remove_dir(dir);
}

/* llama2.c's head size is dim / n_heads: a model whose head_dim differs cannot be read from
 * such a file. */
Test(checkpoint, a_model_whose_head_dim_is_not_dim_over_heads_is_refused)
{
    free(fixture());
    isim_model *m = tu_model("stories260k");
    m->head_dim = 16;
    isim_error e;
    cr_expect_eq(open_with(m, STORIES, ISIM_FP32, 1, NULL, &e), ISIM_EINVAL);
    cr_expect_str_eq(e.message, STORIES ": llama2.c's head size is dim / n_heads (64 / 8), but "
                                        "model 'stories260k' has head_dim 16");
    isim_model_free(m);
}

/* A directory, a FIFO (which would block a plain open until a writer came) and a device are
 * each refused with what they are; through the command line too. */
Test(checkpoint, a_weights_file_that_is_not_a_regular_file_is_refused)
{
    tu_deadline(60);
    char dir[64], fifo[128], args[400];
    make_dir(dir);
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    const struct {
        const char *path, *what;
    } cases[] = {{dir, "is a directory"},
                 {fifo, "is not a regular file"},
                 {"/dev/zero", "is not a regular file"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        isim_error e;
        char want[300];
        snprintf(want, sizeof want, "%s: %s", cases[i].path, cases[i].what);
        cr_expect_eq(open_with(NULL, cases[i].path, ISIM_FP32, 1, NULL, &e), ISIM_EINVAL);
        cr_expect_str_eq(e.message, want);
        snprintf(args, sizeof args,
                 "run --engine cpu --model stories260k --weights-file '%s' --prompt-ids 1 "
                 "--output-tokens 1",
                 cases[i].path);
        tu_expect_error(args, 1, want, true);
    }
    remove_dir(dir);
}

/* ---- the checkpoint's weights ---------------------------------------------------------- */

static void write_bytes(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(b, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

/* stories260K's file in floats (the header's 7 int32 counted as 7): llama2.c's order, each
 * tensor for the 5 layers in turn (dim 64, hidden 172, 8 heads, 4 KV heads of 8). */
enum {
    AT_EMBED = 7,          /* 512 x 64 */
    AT_WQ = 33095,         /* after the attention norms: 5 x 64 x 64 */
    AT_WV = 63815,         /* 5 x 32 x 64 */
    AT_FFN_NORM = 94535,   /* 5 x 64 */
    AT_W2 = 149895,        /* 5 x 64 x 172 */
    AT_FINAL_NORM = 259975 /* 64, then the RoPE tables: 512 x 8 */
};

/* A NaN or an infinity anywhere in the weights is refused when the engine loads them, in
 * every precision (int8 packing could not convert it; fp32 generated 0,0,0,0 from it), naming
 * the tensor, the value's index in it and its byte in the file. With a bad value in each of two
 * tensors, on two threads that each load half of a matrix, the one named is the first of the
 * first tensor loaded. Values in the RoPE tables, which the engine does not read, are not. */
Test(checkpoint, a_non_finite_weight_is_refused_with_its_tensor_and_index)
{
    static const struct {
        long at, also; /* floats written: `also` -1 for none */
        float v;
        isim_dtype wt;
        const char *want; /* after "PATH: "; NULL: loads */
    } cases[] = {
        {AT_WQ + 3 * 4096 + 100, AT_WV + 3 * 2048 + 5, NAN, ISIM_FP32,
         "layers.3.wq[100] is nan (byte 181932 of the file): a checkpoint's weights must be "
         "finite"},
        {AT_WQ + 3 * 4096 + 100, AT_WV + 3 * 2048 + 5, NAN, ISIM_INT8,
         "layers.3.wq[100] is nan (byte 181932 of the file): a checkpoint's weights must be "
         "finite"},
        {AT_WV + 3 * 2048 + 5, -1, INFINITY, ISIM_BF16,
         "layers.3.wv[5] is inf (byte 279856 of the file): a checkpoint's weights must be finite"},
        /* as the audit's reproducer, which sets embed[640 .. 647] to infinity, in int8 */
        {AT_EMBED + 640, AT_EMBED + 647, INFINITY, ISIM_INT8,
         "embed[640] is inf (byte 2588 of the file): a checkpoint's weights must be finite"},
        {AT_EMBED + 777, -1, -INFINITY, ISIM_INT8,
         "embed[777] is -inf (byte 3136 of the file): a checkpoint's weights must be finite"},
        {AT_FFN_NORM + 4 * 64 + 3, -1, NAN, ISIM_FP32,
         "layers.4.ffn_norm[3] is nan (byte 379176 of the file): a checkpoint's weights must be "
         "finite"},
        {AT_W2 + 11007, AT_W2 + 11008, INFINITY, ISIM_INT8,
         "layers.0.w2[11007] is inf (byte 643608 of the file): a checkpoint's weights must be "
         "finite"},
        {AT_FINAL_NORM + 63, -1, NAN, ISIM_FP32,
         "final_norm[63] is nan (byte 1040152 of the file): a checkpoint's weights must be "
         "finite"},
        {AT_FINAL_NORM + 64 + 10, -1, NAN, ISIM_INT8, NULL},
    };
    unsigned char *base = fixture();
    char dir[64], path[128], want[512];
    make_dir(dir);
    snprintf(path, sizeof path, "%s/w.bin", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char *b = malloc(STORIES_BYTES);
        memcpy(b, base, STORIES_BYTES);
        memcpy(b + 4 * cases[i].at, &cases[i].v, 4);
        if (cases[i].also >= 0)
            memcpy(b + 4 * cases[i].also, &cases[i].v, 4);
        write_bytes(path, b, STORIES_BYTES);
        free(b);
        isim_error e;
        isim_status st = open_with(NULL, path, cases[i].wt, 2, NULL, &e);
        if (!cases[i].want) {
            cr_expect_eq(st, ISIM_OK, "case %zu: %s", i, e.message);
            continue;
        }
        snprintf(want, sizeof want, "%s: %s", path, cases[i].want);
        cr_expect_eq(st, ISIM_EINVAL, "case %zu", i);
        cr_expect_str_eq(e.message, want, "case %zu", i);
    }
    free(base);
    remove_dir(dir);
}

/* int8 packing of a row whose largest magnitude is a denormal too small for largest / 127 (a
 * scale of 0 divided each value by zero: NaN for the zeros, undefined when converted to int8)
 * keeps the row exactly, in steps of the smallest denormal. */
Test(checkpoint, int8_packs_a_row_of_tiny_denormal_weights_exactly)
{
    const float tiny = FLT_TRUE_MIN;
    float row[5] = {0, tiny, -3 * tiny, 5 * tiny, 0}, back[5];
    rt_matrix m = {.n = 1, .k = 5, .kp = 6, .panels = 1, .dt = ISIM_INT8};
    m.data = calloc(1, isim__rt_matrix_bytes(1, 5, ISIM_INT8));
    m.scale = calloc(RT_NR, sizeof(float));
    cr_assert(m.data && m.scale);
    isim__rt_matrix_set_row(&m, 0, row);
    isim__rt_matrix_get_row(&m, 0, back);
    for (int c = 0; c < 5; c++)
        cr_expect_leq(fabs((double)back[c] - row[c]), 0.5 * FLT_TRUE_MIN, "column %d: %g, not %g",
                      c, (double)back[c], (double)row[c]);
    free(m.data);
    free(m.scale);
}

/* Finite weights so large that the forward pass overflows fp32 give NaN logits: generation
 * stops with the reason rather than "generating" the first token id over and over. */
Test(checkpoint, weights_that_overflow_the_forward_pass_stop_generation)
{
    unsigned char *b = fixture();
    char dir[64], path[128], args[400];
    make_dir(dir);
    snprintf(path, sizeof path, "%s/huge.bin", dir);
    float huge = 1e30f;
    for (int c = 0; c < 64; c++) /* every value of layer 0's attention norm */
        memcpy(b + 4 * (32775 + c), &huge, 4);
    write_bytes(path, b, STORIES_BYTES);
    free(b);
    snprintf(args, sizeof args,
             "run --engine cpu --model stories260k --weights-file '%s' --prompt-ids 1,2,3 "
             "--output-tokens 4 --threads 1",
             path);
    tu_expect_error(args, 1,
                    "sequence 0: the logit of token 0 is nan: the forward pass overflowed fp32's "
                    "range",
                    true);
    remove_dir(dir);
}

/* ---- infersim run's options ------------------------------------------------------------ */

/* An unknown kernel set is refused with the choices, by the command line (a usage error) and
 * by the library. */
Test(run, an_unknown_kernel_set_is_refused_with_the_choices)
{
    tu_expect_error("run --engine cpu --model stories260k --input-tokens 4 --output-tokens 2 "
                    "--kernels avx9000",
                    2, "--kernels: 'avx9000' is not one of auto, avx512, avx2 or scalar", true);
    tu_expect_error("run --engine cpu --model stories260k --input-tokens 4 --output-tokens 2 "
                    "--dtype fp64",
                    2, "--dtype: 'fp64' is not one of fp32, bf16 or int8", true);
    isim_error e;
    cr_expect_eq(open_with(NULL, NULL, ISIM_FP32, 1, "avx9000", &e), ISIM_EINVAL);
    cr_expect_str_eq(e.message,
                     "unknown kernels 'avx9000': the choices are auto, avx512, avx2 or scalar");
}

/* Names in dir that start with `prefix`. */
static int count_named(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *de; (de = readdir(d));)
        n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

/* --dump-logits FILE: a run that fails (here before the engine opens, and after it has run,
 * on a full device) leaves the previous FILE as it was and no temporary beside it; a run that
 * finishes replaces it whole; a directory is refused before the run. */
Test(run, dump_logits_replaces_the_file_only_when_the_run_finishes)
{
    char dir[64], path[128], args[600];
    make_dir(dir);
    snprintf(path, sizeof path, "%s/logits.bin", dir);
    write_bytes(path, "keep\n", 5);
    snprintf(args, sizeof args,
             "run --engine cpu --model stories260k --input-tokens 4 --output-tokens 2 "
             "--weights-file /nonexistent --dump-logits '%s'",
             path);
    tu_expect_error(args, 1, "/nonexistent: cannot open: No such file or directory", true);
    char *kept = tu_read(path, NULL);
    cr_expect_str_eq(kept, "keep\n");
    free(kept);
    cr_expect_eq(count_named(dir, "logits.bin.tmp"), 0);
    snprintf(args, sizeof args,
             "run --engine cpu --model stories260k --input-tokens 4 --output-tokens 2 --threads 1 "
             "--dump-logits '%s' >/dev/null",
             path);
    cr_assert_eq(tu_run(args, NULL, NULL), 0);
    size_t len = 0;
    free(tu_read(path, &len));
    cr_expect_eq(len, (size_t)2 * 512 * sizeof(float), "two steps' logits: %zu bytes", len);
    cr_expect_eq(count_named(dir, "logits.bin.tmp"), 0);
    snprintf(args, sizeof args,
             "run --engine cpu --model stories260k --input-tokens 4 --output-tokens 2 "
             "--dump-logits '%s'",
             dir);
    char want[200];
    snprintf(want, sizeof want, "%s: is a directory", dir);
    tu_expect_error(args, 1, want, true);
    if (access("/dev/full", W_OK) == 0)
        tu_expect_error("run --engine cpu --model stories260k --input-tokens 4 --output-tokens 2 "
                        "--dump-logits /dev/full",
                        1, "/dev/full: cannot write: No space left on device", true);
    remove_dir(dir);
}

/* A run killed by SIGINT, SIGTERM or SIGHUP while it writes its logits leaves the previous
 * FILE as it was and removes its temporary (FILE.tmp-PID), and dies of that signal. The model:
 * 11M random parameters, 128 KB of logits a step, 4000 steps (seconds), killed as soon as its
 * first logits are written. */
Test(run, dump_logits_is_left_as_it_was_when_the_run_is_killed)
{
    tu_deadline(120);
    char dir[64], mdir[128], path[128], ypath[200];
    make_dir(dir);
    snprintf(mdir, sizeof mdir, "%s/models", dir);
    cr_assert_eq(mkdir(mdir, 0777), 0);
    snprintf(ypath, sizeof ypath, "%s/wide-vocab.yaml", mdir);
    FILE *f = fopen(ypath, "w");
    cr_assert_not_null(f);
    fputs("name: wide vocab\nfamily: test\narchitecture:\n  source: \"test\"\n  d_model: 256\n"
          "  n_layers: 4\n  n_heads: 4\n  n_kv_heads: 4\n  head_dim: 64\n  d_ff: 512\n"
          "  ffn: swiglu\n  vocab: 32000\n  tied_embeddings: true\n  norm: rmsnorm\n"
          "  position: rope\n  max_context: 4096\nrelease: {source: \"test\", weights: fp32}\n"
          "declared_params: {source: \"test\", total: 1.08e7}\n",
          f);
    fclose(f);
    snprintf(path, sizeof path, "%s/logits.bin", dir);
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        write_bytes(path, "keep\n", 5);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            freopen("/dev/null", "w", stdout);
            freopen("/dev/null", "w", stderr);
            execl(ISIM_BIN, ISIM_BIN, "run", "--engine", "cpu", "--data", dir, "--model",
                  "wide-vocab", "--input-tokens", "1", "--output-tokens", "4000", "--threads", "1",
                  "--dump-logits", path, (char *)NULL);
            _exit(127);
        }
        char tmp[200];
        snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)pid);
        struct stat sb;
        int waited = 0;
        while ((stat(tmp, &sb) != 0 || sb.st_size == 0) && waited < 60000) {
            nanosleep(&(struct timespec){0, 2000000}, NULL);
            waited += 2;
        }
        cr_expect_lt(waited, 60000, "no logits written in 60 s");
        kill(pid, sigs[i]);
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == sigs[i],
                  "signal %d: the run ended with status %#x", sigs[i], status);
        char *kept = tu_read(path, NULL);
        cr_expect_str_eq(kept, "keep\n", "signal %d", sigs[i]);
        free(kept);
        cr_expect_eq(count_named(dir, "logits.bin.tmp"), 0, "signal %d left its temporary",
                     sigs[i]);
    }
    remove_dir(dir);
}
