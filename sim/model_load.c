/* Loads models/<id>.yaml (schema in docs/formats.md) into an isim_model, refusing anything
 * unknown, mistyped, implausible or unsourced with file:line:col. */
#include "sim/internal.h"

#include <stdlib.h>
#include <string.h>

char *isim__file_stem(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, base, n);
        s[n] = '\0';
    }
    return s;
}

static const char *const dtype_names[] = {
#define ISIM_X(name, str, bytes) str,
    ISIM_DTYPE_LIST(ISIM_X)
#undef ISIM_X
        NULL};

/* The plausible range of a model's number: what a real architecture could have, with
 * headroom for those of the next few years (docs/formats.md, "Plausible ranges", gives each
 * bound's reason). first_dense_layers stops one short of n_layers' maximum: a MoE model
 * keeps at least one MoE layer. */
typedef struct {
    const char *path;
    double min, max;
} model_range;

/* clang-format off */
static const model_range RANGES[] = {
    {"architecture.d_model",     1,     65536},
    {"architecture.n_layers",    1,     2048},
    {"architecture.n_heads",     1,     1024},
    {"architecture.n_kv_heads",  1,     1024},
    {"architecture.head_dim",    1,     1024},
    {"architecture.d_ff",        1,     262144},
    {"architecture.vocab",       1,     4e6},
    {"architecture.max_context", 1,     1e9},
    {"architecture.rope_theta",  1,     1e12},
    {"architecture.norm_eps",    1e-12, 1e-3},
    {"moe.n_experts",            1,     16384},
    {"moe.n_active_experts",     1,     16384},
    {"moe.n_shared_experts",     0,     64},
    {"moe.expert_d_ff",          1,     262144},
    {"moe.shared_expert_d_ff",   0,     262144},
    {"moe.first_dense_layers",   0,     2047},
    {"mla.kv_lora_rank",         1,     65536},
    {"mla.q_lora_rank",          0,     65536},
    {"mla.rope_head_dim",        0,     1024},
    {"mla.v_head_dim",           1,     1024},
    {"sliding_window.window",    1,     1e9},
    {"declared_params.total",    1,     1e14},
    {"declared_params.active",   1,     1e14},
};
/* clang-format on */

static const model_range *range_of(const char *path)
{
    for (size_t i = 0; i < sizeof RANGES / sizeof RANGES[0]; i++)
        if (strcmp(RANGES[i].path, path) == 0)
            return &RANGES[i];
    return NULL;
}

/* Reads the number at `path`, the last part of which is a key of m, within its range. */
static isim_status number(isim__map *m, const char *path, bool required, double *out, bool *present)
{
    const model_range *r = range_of(path);
    if (!r)
        return isim__map_error(m, NULL, "'%s' has no plausible range", path);
    return isim__map_number(m, strrchr(path, '.') + 1, required, r->min, r->max, out, present);
}

/* The same for a whole number. */
static isim_status whole(isim__map *m, const char *path, bool required, int64_t *out, bool *present)
{
    const model_range *r = range_of(path);
    if (!r)
        return isim__map_error(m, NULL, "'%s' has no plausible range", path);
    return isim__map_int(m, strrchr(path, '.') + 1, required, (int64_t)r->min, (int64_t)r->max, out,
                         present);
}

static isim_status read_architecture(isim__map *root, isim_model *m)
{
    static const char *const keys[] = {
        "d_model",   "n_layers", "n_heads",         "n_kv_heads", "head_dim", "d_ff",
        "ffn",       "vocab",    "tied_embeddings", "norm",       "position", "max_context",
        "attn_bias", "mlp_bias", "qk_norm",         "rope_theta", "norm_eps", NULL};
    static const char *const ffns[] = {"swiglu", "gelu", NULL};
    static const char *const norms[] = {"rmsnorm", "layernorm", NULL};
    static const char *const positions[] = {"rope", "learned", NULL};
    isim__map a;
    isim_status st = isim__map_sub(root, "architecture", keys, true, &a, NULL);
    int e = 0;
    if (!st)
        st = whole(&a, "architecture.d_model", true, &m->d_model, NULL);
    if (!st)
        st = whole(&a, "architecture.n_layers", true, &m->n_layers, NULL);
    if (!st)
        st = whole(&a, "architecture.n_heads", true, &m->n_heads, NULL);
    if (!st)
        st = whole(&a, "architecture.n_kv_heads", true, &m->n_kv_heads, NULL);
    if (!st)
        st = whole(&a, "architecture.head_dim", true, &m->head_dim, NULL);
    if (!st)
        st = whole(&a, "architecture.d_ff", true, &m->d_ff, NULL);
    if (!st)
        st = isim__map_enum(&a, "ffn", true, ffns, &e, NULL);
    if (!st)
        m->ffn = (isim_ffn)e;
    if (!st)
        st = whole(&a, "architecture.vocab", true, &m->vocab, NULL);
    if (!st)
        st = isim__map_bool(&a, "tied_embeddings", true, &m->tied_embeddings, NULL);
    if (!st)
        st = isim__map_enum(&a, "norm", true, norms, &e, NULL);
    if (!st)
        m->norm = (isim_norm)e;
    if (!st)
        st = isim__map_enum(&a, "position", true, positions, &e, NULL);
    if (!st)
        m->position = (isim_position)e;
    if (!st)
        st = whole(&a, "architecture.max_context", true, &m->max_context, NULL);
    if (!st)
        st = isim__map_bool(&a, "attn_bias", false, &m->attn_bias, NULL);
    if (!st)
        st = isim__map_bool(&a, "mlp_bias", false, &m->mlp_bias, NULL);
    if (!st)
        st = isim__map_bool(&a, "qk_norm", false, &m->qk_norm, NULL);
    /* what the engines need to run the model: RoPE base and the norms' epsilon (defaults
     * of the original Llama, for files that do not say) */
    m->rope_theta = 10000;
    m->norm_eps = 1e-5;
    if (!st)
        st = number(&a, "architecture.rope_theta", false, &m->rope_theta, NULL);
    if (!st)
        st = number(&a, "architecture.norm_eps", false, &m->norm_eps, NULL);
    if (st)
        return st;
    if (m->n_kv_heads > m->n_heads || m->n_heads % m->n_kv_heads != 0)
        return isim__map_error(&a, "n_kv_heads",
                               "'architecture.n_heads' (%lld) is not a multiple of "
                               "'architecture.n_kv_heads' (%lld)",
                               (long long)m->n_heads, (long long)m->n_kv_heads);
    return ISIM_OK;
}

static isim_status read_moe(isim__map *root, isim_model *m)
{
    static const char *const keys[] = {
        "n_experts",          "n_active_experts",   "n_shared_experts", "expert_d_ff",
        "shared_expert_d_ff", "first_dense_layers", "router_bias",      NULL};
    isim__map e;
    isim_status st = isim__map_sub(root, "moe", keys, false, &e, &m->has_moe);
    if (st || !m->has_moe)
        return st;
    bool has_shared_ff = false;
    if (!st)
        st = whole(&e, "moe.n_experts", true, &m->n_experts, NULL);
    if (!st)
        st = whole(&e, "moe.n_active_experts", true, &m->n_active_experts, NULL);
    if (!st)
        st = whole(&e, "moe.n_shared_experts", true, &m->n_shared_experts, NULL);
    if (!st)
        st = whole(&e, "moe.expert_d_ff", true, &m->expert_d_ff, NULL);
    if (!st)
        st = whole(&e, "moe.shared_expert_d_ff", false, &m->shared_expert_d_ff, &has_shared_ff);
    if (!st)
        st = whole(&e, "moe.first_dense_layers", true, &m->first_dense_layers, NULL);
    if (!st)
        st = isim__map_bool(&e, "router_bias", false, &m->router_bias, NULL);
    if (st)
        return st;
    if (m->n_active_experts > m->n_experts)
        return isim__map_error(&e, "n_active_experts",
                               "'moe.n_active_experts' (%lld) exceeds 'moe.n_experts' (%lld)",
                               (long long)m->n_active_experts, (long long)m->n_experts);
    if (m->n_shared_experts > 0 && m->shared_expert_d_ff <= 0)
        return isim__map_error(&e, has_shared_ff ? "shared_expert_d_ff" : NULL,
                               "'moe.shared_expert_d_ff' must be > 0 when 'moe.n_shared_experts' "
                               "is %lld",
                               (long long)m->n_shared_experts);
    if (m->first_dense_layers >= m->n_layers)
        return isim__map_error(&e, "first_dense_layers",
                               "'moe.first_dense_layers' (%lld) leaves no MoE layer of %lld",
                               (long long)m->first_dense_layers, (long long)m->n_layers);
    return ISIM_OK;
}

static isim_status read_mla(isim__map *root, isim_model *m)
{
    static const char *const keys[] = {"kv_lora_rank", "q_lora_rank", "rope_head_dim", "v_head_dim",
                                       NULL};
    isim__map a;
    isim_status st = isim__map_sub(root, "mla", keys, false, &a, &m->has_mla);
    if (st || !m->has_mla)
        return st;
    if (!st)
        st = whole(&a, "mla.kv_lora_rank", true, &m->kv_lora_rank, NULL);
    if (!st)
        st = whole(&a, "mla.q_lora_rank", true, &m->q_lora_rank, NULL);
    if (!st)
        st = whole(&a, "mla.rope_head_dim", true, &m->rope_head_dim, NULL);
    if (!st)
        st = whole(&a, "mla.v_head_dim", true, &m->mla_v_head_dim, NULL);
    return st;
}

static isim_status read_sliding(isim__map *root, isim_model *m)
{
    static const char *const keys[] = {"window", "pattern", NULL};
    isim__map a;
    bool here = false;
    isim_status st = isim__map_sub(root, "sliding_window", keys, false, &a, &here);
    if (st || !here)
        return st;
    st = whole(&a, "sliding_window.window", true, &m->window, NULL);
    if (st)
        return st;
    const isim__ynode *p = isim__map_get(&a, "pattern");
    if (!p)
        return isim__map_error(&a, NULL, "missing key 'pattern' in 'sliding_window'");
    if (p->kind != ISIM__YSEQ || p->n == 0 || p->n > ISIM_MAX_PATTERN)
        return isim__map_error(&a, "pattern",
                               "'sliding_window.pattern' must be a list of 1 to %d of "
                               "sliding, full",
                               ISIM_MAX_PATTERN);
    for (size_t i = 0; i < p->n; i++) {
        const isim__ynode *it = p->items[i];
        bool sliding = it->kind == ISIM__YSCALAR && strcmp(it->text, "sliding") == 0;
        bool full = it->kind == ISIM__YSCALAR && strcmp(it->text, "full") == 0;
        if (!sliding && !full)
            return isim__fail(a.r->err, ISIM_ESCHEMA, a.r->file, it->line, it->column,
                              "'sliding_window.pattern' items must be one of sliding, full; "
                              "got '%s'",
                              it->kind == ISIM__YSCALAR ? it->text : "(a collection)");
        m->pattern[i] = sliding;
    }
    m->pattern_len = (int)p->n;
    return ISIM_OK;
}

static isim_status read_declared(isim__map *root, isim_model *m)
{
    static const char *const keys[] = {"total", "active", "active_counts_input_embedding",
                                       "active_counts_output_embedding", NULL};
    isim__map a;
    bool has_active = false;
    isim_status st = isim__map_sub(root, "declared_params", keys, true, &a, NULL);
    if (!st)
        st = number(&a, "declared_params.total", true, &m->declared_total, NULL);
    if (!st)
        st = number(&a, "declared_params.active", false, &m->declared_active, &has_active);
    m->active_counts_input_embedding = true;
    if (!st)
        st = isim__map_bool(&a, "active_counts_input_embedding", false,
                            &m->active_counts_input_embedding, NULL);
    m->active_counts_output_embedding = true;
    if (!st)
        st = isim__map_bool(&a, "active_counts_output_embedding", false,
                            &m->active_counts_output_embedding, NULL);
    if (st)
        return st;
    if (m->has_moe && !has_active)
        return isim__map_error(&a, NULL,
                               "missing key 'active' in 'declared_params' (a MoE "
                               "model declares its active parameters)");
    if (!m->has_moe && has_active)
        return isim__map_error(&a, "active", "'declared_params.active' applies to MoE models only");
    if (has_active && m->declared_active > m->declared_total)
        return isim__map_error(&a, "active",
                               "'declared_params.active' (%g) exceeds 'declared_params.total' "
                               "(%g)",
                               m->declared_active, m->declared_total);
    return ISIM_OK;
}

static isim_status read_model(isim__reader *r, const isim__ynode *root, void *obj)
{
    isim_model *m = obj;
    static const char *const keys[] = {
        "name",           "family",  "architecture",    "moe",     "mla",
        "sliding_window", "release", "declared_params", "aliases", NULL};
    static const char *const release_keys[] = {"weights", NULL};
    isim__map top, rel;
    const char *s = NULL;
    int e = 0;
    isim_status st = isim__map_root(r, root, keys, &top);
    if (!st)
        st = isim__map_string(&top, "name", true, &s, NULL);
    if (!st && !(m->name = strdup(s)))
        st = ISIM_ENOMEM;
    if (!st)
        st = isim__map_string(&top, "family", true, &s, NULL);
    if (!st && !(m->family = strdup(s)))
        st = ISIM_ENOMEM;
    /* other names of the model (a hub repository, a dataset's spelling) */
    if (!st)
        st = isim__map_strings(&top, "aliases", false, &m->aliases, NULL);
    if (!st)
        st = read_architecture(&top, m);
    if (!st)
        st = read_moe(&top, m);
    if (!st)
        st = read_mla(&top, m);
    if (!st)
        st = read_sliding(&top, m);
    if (!st)
        st = isim__map_sub(&top, "release", release_keys, true, &rel, NULL);
    if (!st)
        st = isim__map_enum(&rel, "weights", true, dtype_names, &e, NULL);
    if (!st)
        m->release_weights = (isim_dtype)e;
    if (!st)
        st = read_declared(&top, m);
    if (st == ISIM_ENOMEM)
        return isim__fail(r->err, ISIM_ENOMEM, r->file, 0, 0, "out of memory");
    return st;
}

void isim_model_free(isim_model *m)
{
    if (!m)
        return;
    free(m->id);
    free(m->path);
    free(m->name);
    free(m->family);
    isim_ids_free(m->aliases);
    isim__facts_free(m->facts, m->n_facts);
    free(m);
}

isim_status isim_model_load(const char *path, isim_model **out, isim_error *err)
{
    return isim_model_load_with(path, NULL, 0, out, err);
}

isim_status isim_model_load_with(const char *path, const isim_override *ov, size_t n,
                                 isim_model **out, isim_error *err)
{
    *out = NULL;
    isim_model *m = calloc(1, sizeof *m);
    if (!m)
        return isim__fail(err, ISIM_ENOMEM, path, 0, 0, "out of memory");
    isim_status st = isim__spec_read(path, ov, n, read_model, m, &m->facts, &m->n_facts, err);
    if (!st && (!(m->id = isim__file_stem(path)) || !(m->path = strdup(path))))
        st = isim__fail(err, ISIM_ENOMEM, path, 0, 0, "out of memory");
    if (st) {
        isim_model_free(m);
        return st;
    }
    isim__model_derive(m);
    *out = m;
    return ISIM_OK;
}
