/* Where the weights come from: seeded random values (timing does not depend on them) or a
 * llama2.c checkpoint (karpathy/llama2.c, "v0" format: seven int32 then fp32 tensors in a
 * fixed order). Both are read by (tensor, layer, expert, row, columns), so that a rank
 * reads only its own slice. */
#include "runtime/cpu/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct rt_source {
    const isim_model *m;
    bool random;
    uint64_t seed;
    /* llama2.c */
    int fd;
    char *path;
    bool shared_classifier;
    int seq_len;
    size_t offset[RT_T_COUNT]; /* bytes to tensor (layer 0) */
};

/* Rows and columns of tensor t (vectors are one row). */
static void shape(const isim_model *m, rt_tensor t, size_t *rows, size_t *cols)
{
    size_t d = (size_t)m->d_model, hd = (size_t)m->head_dim, q = (size_t)m->n_heads * hd,
           kv = (size_t)m->n_kv_heads * hd, ff = (size_t)m->d_ff, v = (size_t)m->vocab,
           ne = (size_t)m->n_experts, eff = (size_t)m->expert_d_ff,
           sff = (size_t)(m->n_shared_experts * m->shared_expert_d_ff);
    size_t r = 1, c = d;
    switch (t) {
    case RT_T_EMBED:
    case RT_T_CLASSIFIER:
        r = v;
        break;
    case RT_T_FINAL_NORM:
    case RT_T_ATTN_NORM:
    case RT_T_FFN_NORM:
    case RT_T_BO:
    case RT_T_B2:
        break;
    case RT_T_WQ:
        r = q;
        break;
    case RT_T_WK:
    case RT_T_WV:
        r = kv;
        break;
    case RT_T_WO:
        r = d;
        c = q;
        break;
    case RT_T_BQ:
        c = q;
        break;
    case RT_T_BK:
    case RT_T_BV:
        c = kv;
        break;
    case RT_T_Q_NORM:
    case RT_T_K_NORM:
        c = hd;
        break;
    case RT_T_W1:
    case RT_T_W3:
        r = ff;
        break;
    case RT_T_W2:
        r = d;
        c = ff;
        break;
    case RT_T_B1:
    case RT_T_B3:
        c = ff;
        break;
    case RT_T_ROUTER:
        r = ne;
        break;
    case RT_T_ROUTER_B:
        c = ne;
        break;
    case RT_T_E1:
    case RT_T_E3:
        r = eff;
        break;
    case RT_T_E2:
        r = d;
        c = eff;
        break;
    case RT_T_S1:
    case RT_T_S3:
        r = sff;
        break;
    case RT_T_S2:
        r = d;
        c = sff;
        break;
    case RT_T_COUNT:
        break;
    }
    *rows = r;
    *cols = c;
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

isim_status isim__rt_source_random(const isim_model *m, uint64_t seed, rt_source **out,
                                   isim_error *err)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return isim__rt_fail(err, ISIM_ENOMEM, "out of memory");
    (*out)->m = m;
    (*out)->random = true;
    (*out)->seed = seed;
    (*out)->fd = -1;
    return ISIM_OK;
}

/* llama2.c's tensors in the file's order (run.c, memory_map_weights), named as the engine's
 * export names them. The RoPE tables the format carries lie between the final norm and the
 * classifier (which is there only when it is not the embedding): the engine computes its
 * own and never reads them. */
static const struct {
    rt_tensor t;
    const char *name;
} llama2c_tensors[] = {{RT_T_EMBED, "embed"},
                       {RT_T_ATTN_NORM, "attn_norm"},
                       {RT_T_WQ, "wq"},
                       {RT_T_WK, "wk"},
                       {RT_T_WV, "wv"},
                       {RT_T_WO, "wo"},
                       {RT_T_FFN_NORM, "ffn_norm"},
                       {RT_T_W1, "w1"},
                       {RT_T_W2, "w2"},
                       {RT_T_W3, "w3"},
                       {RT_T_FINAL_NORM, "final_norm"},
                       {RT_T_CLASSIFIER, "classifier"}};

static bool per_layer(rt_tensor t)
{
    return t != RT_T_EMBED && t != RT_T_FINAL_NORM && t != RT_T_CLASSIFIER;
}

/* Opens path if it is a regular file (open would wait for a writer on a FIFO, hence
 * O_NONBLOCK; a directory opens but reads as an error): *fd and the file's *size. */
static isim_status open_regular(const char *path, int *fd, size_t *size, isim_error *err)
{
    *fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (*fd < 0)
        return isim__rt_fail(err, ISIM_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    isim_status st = ISIM_OK;
    if (fstat(*fd, &sb) != 0)
        st = isim__rt_fail(err, ISIM_EIO, "%s: cannot read: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        st = isim__rt_fail(err, ISIM_EINVAL, "%s: %s", path,
                           S_ISDIR(sb.st_mode) ? "is a directory" : "is not a regular file");
    if (st) {
        close(*fd);
        *fd = -1;
        return st;
    }
    *size = (size_t)sb.st_size;
    return ISIM_OK;
}

/* The header (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a
 * negative vocab_size means a classifier of its own) against the model. */
static isim_status check_header(const isim_model *m, const char *path, const int32_t h[7],
                                isim_error *err)
{
    struct {
        const char *name, *key;
        int64_t file, model;
    } f[] = {{"dim", "d_model", h[0], m->d_model},
             {"hidden_dim", "d_ff", h[1], m->d_ff},
             {"n_layers", "n_layers", h[2], m->n_layers},
             {"n_heads", "n_heads", h[3], m->n_heads},
             {"n_kv_heads", "n_kv_heads", h[4], m->n_kv_heads},
             {"vocab_size", "vocab", h[5] < 0 ? -(int64_t)h[5] : h[5], m->vocab}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (f[i].file == f[i].model)
            continue;
        char own[80] = "";
        if (i == 5 && h[5] < 0)
            snprintf(own, sizeof own, " (a classifier of its own, over %lld tokens)",
                     (long long)f[i].file);
        return isim__rt_fail(err, ISIM_EINVAL,
                             "%s: header says %s %d%s, but model '%s' has %s %lld", path, f[i].name,
                             (int)h[i], own, m->id, f[i].key, (long long)f[i].model);
    }
    /* the model's counts are at least 1, so h[3] is */
    if (h[0] % h[3] != 0 || h[0] / h[3] != m->head_dim)
        return isim__rt_fail(err, ISIM_EINVAL,
                             "%s: llama2.c's head size is dim / n_heads (%d / %d), but model '%s' "
                             "has head_dim %lld",
                             path, h[0], h[3], m->id, (long long)m->head_dim);
    if (h[6] <= 0)
        return isim__rt_fail(err, ISIM_EINVAL, "%s: header says seq_len %d, not a positive count",
                             path, h[6]);
    bool shared = h[5] > 0;
    if (shared != m->tied_embeddings)
        return isim__rt_fail(err, ISIM_EINVAL,
                             "%s: the classifier is %s the embedding, but model '%s' says "
                             "tied_embeddings: %s",
                             path, shared ? "shared with" : "separate from", m->id,
                             m->tied_embeddings ? "true" : "false");
    if (m->has_moe || m->attn_bias || m->mlp_bias || m->qk_norm)
        return isim__rt_fail(err, ISIM_EINVAL,
                             "%s: a llama2.c checkpoint holds no MoE, bias or q/k-norm weights, "
                             "which model '%s' has",
                             path, m->id);
    return ISIM_OK;
}

/* *at += a x b x c x d; false when that overflows */
static bool add_product(size_t *at, size_t a, size_t b, size_t c, size_t d)
{
    size_t p;
    return !__builtin_mul_overflow(a, b, &p) && !__builtin_mul_overflow(p, c, &p) &&
           !__builtin_mul_overflow(p, d, &p) && !__builtin_add_overflow(*at, p, at);
}

/* Where each tensor starts; *end the size of the file the header and the model describe.
 * false when that overflows size_t. */
static bool place_tensors(rt_source *s, size_t *end)
{
    const isim_model *m = s->m;
    size_t at = 7 * sizeof(int32_t);
    for (size_t i = 0; i < sizeof llama2c_tensors / sizeof llama2c_tensors[0]; i++) {
        rt_tensor t = llama2c_tensors[i].t;
        if (t == RT_T_CLASSIFIER) {
            /* the RoPE tables: seq_len x head_size / 2, real then imaginary */
            if (!add_product(&at, (size_t)s->seq_len, (size_t)m->head_dim, sizeof(float), 1))
                return false;
            if (s->shared_classifier) {
                s->offset[t] = s->offset[RT_T_EMBED];
                continue;
            }
        }
        size_t r, c;
        shape(m, t, &r, &c);
        s->offset[t] = at;
        if (!add_product(&at, r, c, per_layer(t) ? (size_t)m->n_layers : 1, sizeof(float)))
            return false;
    }
    *end = at;
    return true;
}

isim_status isim__rt_source_llama2c(const isim_model *m, const char *path, rt_source **out,
                                    isim_error *err)
{
    *out = NULL;
    size_t size;
    int fd;
    isim_status st = open_regular(path, &fd, &size, err);
    if (st)
        return st;
    int32_t h[7];
    ssize_t got = pread(fd, h, sizeof h, 0);
    if (got < 0)
        st = isim__rt_fail(err, ISIM_EIO, "%s: cannot read: %s", path, strerror(errno));
    else if (got != (ssize_t)sizeof h)
        st = isim__rt_fail(err, ISIM_EINVAL,
                           "%s: truncated: %zu bytes, shorter than llama2.c's 28-byte header", path,
                           size);
    else
        st = check_header(m, path, h, err);
    rt_source *s = NULL;
    if (!st && (!(s = calloc(1, sizeof *s)) || !(s->path = strdup(path)))) {
        free(s);
        s = NULL;
        st = isim__rt_fail(err, ISIM_ENOMEM, "out of memory");
    }
    if (st) {
        close(fd);
        return st;
    }
    s->m = m;
    s->fd = fd;
    s->shared_classifier = h[5] > 0;
    s->seq_len = h[6];
    size_t want;
    if (!place_tensors(s, &want))
        st = isim__rt_fail(err, ISIM_EINVAL, "%s: model '%s''s weights overflow a file's size",
                           path, m->id);
    else if (size != want)
        st = isim__rt_fail(err, ISIM_EINVAL, "%s: %s: %zu bytes, but its header's model takes %zu",
                           path, size < want ? "truncated" : "size mismatch", size, want);
    if (st) {
        isim__rt_source_free(s);
        return st;
    }
    *out = s;
    return ISIM_OK;
}

void isim__rt_source_free(rt_source *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    free(s->path);
    free(s);
}

bool isim__rt_source_has(const rt_source *s, rt_tensor t)
{
    const isim_model *m = s->m;
    switch (t) {
    case RT_T_CLASSIFIER:
        return !m->tied_embeddings;
    case RT_T_BQ:
    case RT_T_BK:
    case RT_T_BV:
    case RT_T_BO:
        return m->attn_bias;
    case RT_T_B1:
    case RT_T_B3:
    case RT_T_B2:
        return m->mlp_bias;
    case RT_T_Q_NORM:
    case RT_T_K_NORM:
        return m->qk_norm;
    case RT_T_ROUTER:
    case RT_T_E1:
    case RT_T_E2:
    case RT_T_E3:
        return m->has_moe;
    case RT_T_ROUTER_B:
        return m->has_moe && m->router_bias;
    case RT_T_S1:
    case RT_T_S2:
    case RT_T_S3:
        return m->has_moe && m->n_shared_experts > 0;
    default:
        return true;
    }
}

/* Random values: centred, of variance about 1 / fan-in for matrices (so that activations
 * keep their scale through the layers), near 1 for norm weights, small for biases. */
static void random_row(const rt_source *s, rt_tensor t, int layer, int expert, size_t row,
                       size_t cols, size_t c0, size_t c1, float *out)
{
    uint64_t key = splitmix64(s->seed ^ ((uint64_t)t << 56) ^ ((uint64_t)(layer + 1) << 40) ^
                              ((uint64_t)(expert + 1) << 20));
    float scale = 1.0f, offset = 0.0f;
    switch (t) {
    case RT_T_EMBED:
        scale = 1.0f;
        break;
    case RT_T_FINAL_NORM:
    case RT_T_ATTN_NORM:
    case RT_T_FFN_NORM:
    case RT_T_Q_NORM:
    case RT_T_K_NORM:
        scale = 0.1f;
        offset = 1.0f;
        break;
    case RT_T_BQ:
    case RT_T_BK:
    case RT_T_BV:
    case RT_T_BO:
    case RT_T_B1:
    case RT_T_B3:
    case RT_T_B2:
    case RT_T_ROUTER_B:
        scale = 0.1f;
        break;
    default:
        scale = 1.0f / sqrtf((float)cols);
        break;
    }
    uint64_t base = key + (uint64_t)row * cols;
    for (size_t c = c0; c < c1; c++) {
        uint64_t h = splitmix64(base + c);
        /* 24 random bits to [-1, 1) */
        float u = (float)(int32_t)(h >> 40) * (1.0f / 8388608.0f) - 1.0f;
        out[c - c0] = offset + scale * u;
    }
}

/* A NaN or an infinity where a weight should be: int8 packing cannot convert it and any
 * precision would carry it into every logit. index: within the tensor (of its layer),
 * row-major; byte: in the file. */
static isim_status non_finite(const rt_source *s, rt_tensor t, int layer, size_t index, size_t byte,
                              float v, isim_error *err)
{
    const char *name = "?";
    for (size_t i = 0; i < sizeof llama2c_tensors / sizeof llama2c_tensors[0]; i++)
        if (llama2c_tensors[i].t == t)
            name = llama2c_tensors[i].name;
    char full[64];
    if (per_layer(t))
        snprintf(full, sizeof full, "layers.%d.%s", layer, name);
    else
        snprintf(full, sizeof full, "%s", name);
    return isim__rt_fail(err, ISIM_EINVAL,
                         "%s: %s[%zu] is %s (byte %zu of the file): a checkpoint's weights must "
                         "be finite",
                         s->path, full, index, isim__rt_nonfinite_name(v), byte);
}

isim_status isim__rt_source_read(rt_source *s, rt_tensor t, int layer, int expert, size_t row,
                                 size_t c0, size_t c1, float *out, isim_error *err)
{
    size_t rows, cols;
    shape(s->m, t, &rows, &cols);
    if (s->random) {
        random_row(s, t, layer, expert, row, cols, c0, c1, out);
        return ISIM_OK;
    }
    size_t off = s->offset[t] +
                 (((per_layer(t) ? (size_t)layer * rows : 0) + row) * cols + c0) * sizeof(float);
    size_t want = (c1 - c0) * sizeof(float), got = 0;
    while (got < want) {
        ssize_t r = pread(s->fd, (char *)out + got, want - got, (off_t)(off + got));
        if (r <= 0)
            return isim__rt_fail(err, ISIM_EIO, "%s: cannot read: %s", s->path,
                                 r == 0 ? "unexpected end of file" : strerror(errno));
        got += (size_t)r;
    }
    for (size_t i = 0; i < c1 - c0; i++)
        if (!isfinite(out[i]))
            return non_finite(s, t, layer, row * cols + c0 + i, off + i * sizeof(float), out[i],
                              err);
    return ISIM_OK;
}
