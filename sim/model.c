/* Quantities derived from a model's architecture: parameter counts by component, KV-cache
 * bytes and FLOPs per token. The equations are in docs/model.md ("Parameter counts");
 * tests/test_models.c checks them against each file's declared totals. */
#include "sim/internal.h"

#include <math.h>
#include <stdio.h>

/* One feed-forward block of width f: SwiGLU has gate, up and down matrices, GELU has up
 * and down (Shazeer 2020, "GLU Variants Improve Transformer"). */
static double ffn_params(const isim_model *m, double f)
{
    double d = (double)m->d_model;
    if (m->ffn == ISIM_FFN_SWIGLU)
        return 3 * d * f + (m->mlp_bias ? 2 * f + d : 0);
    return 2 * d * f + (m->mlp_bias ? f + d : 0);
}

/* Attention matrices of one layer. GQA: q has n_heads heads, k and v n_kv_heads each
 * (Ainslie et al. 2023). MLA: low-rank q and kv projections with a decoupled rotary key
 * (DeepSeek-V2 report, arXiv:2405.04434, §2.1). */
static double attn_params(const isim_model *m)
{
    double d = (double)m->d_model, nq = (double)m->n_heads, nkv = (double)m->n_kv_heads,
           hd = (double)m->head_dim;
    double p;
    if (m->has_mla) {
        double ql = (double)m->q_lora_rank, kvl = (double)m->kv_lora_rank,
               rope = (double)m->rope_head_dim, v = (double)m->mla_v_head_dim;
        double q = ql > 0 ? d * ql + ql + ql * nq * (hd + rope) : d * nq * (hd + rope);
        double kv = d * (kvl + rope) + kvl + kvl * nq * (hd + v);
        p = q + kv + nq * v * d;
        if (m->attn_bias)
            p += nq * (hd + rope) + kvl + rope + nq * (hd + v) + d;
    } else {
        p = d * (nq + 2 * nkv) * hd + nq * hd * d;
        if (m->attn_bias)
            p += (nq + 2 * nkv) * hd + d;
    }
    if (m->qk_norm)
        p += 2 * (m->has_mla ? hd + (double)m->rope_head_dim : hd);
    return p;
}

void isim__model_derive(isim_model *m)
{
    isim_model_derived *x = &m->d;
    double d = (double)m->d_model, L = (double)m->n_layers;
    double norm = m->norm == ISIM_NORM_RMS ? d : 2 * d;

    x->attn_params_layer = attn_params(m);
    if (!m->has_mla)
        x->kv_proj_params_layer = 2.0 * (double)(m->d_model * m->n_kv_heads * m->head_dim) +
                                  (m->attn_bias ? 2.0 * (double)(m->n_kv_heads * m->head_dim) : 0);
    x->norm_params_layer = 2 * norm;
    x->final_norm_params = norm;
    x->dense_ffn_params = ffn_params(m, (double)m->d_ff);
    x->n_dense_layers = m->has_moe ? m->first_dense_layers : m->n_layers;
    x->n_moe_layers = m->n_layers - x->n_dense_layers;
    if (m->has_moe) {
        x->expert_params = ffn_params(m, (double)m->expert_d_ff);
        x->shared_expert_params =
            m->n_shared_experts ? ffn_params(m, (double)m->shared_expert_d_ff) : 0;
        x->router_params_layer =
            d * (double)m->n_experts + (m->router_bias ? (double)m->n_experts : 0);
    }
    x->embedding_params = (double)m->vocab * d;
    if (m->position == ISIM_POS_LEARNED)
        x->embedding_params += (double)m->max_context * d;
    x->unembedding_params = m->tied_embeddings ? 0 : (double)m->vocab * d;

    double moe_layer = (double)m->n_experts * x->expert_params +
                       (double)m->n_shared_experts * x->shared_expert_params +
                       x->router_params_layer;
    x->params_total = x->embedding_params + x->unembedding_params + x->final_norm_params +
                      L * (x->attn_params_layer + x->norm_params_layer) +
                      (double)x->n_dense_layers * x->dense_ffn_params +
                      (double)x->n_moe_layers * moe_layer;
    x->params_active = x->params_total - (double)x->n_moe_layers *
                                             (double)(m->n_experts - m->n_active_experts) *
                                             x->expert_params;

    if (m->has_mla) {
        /* MLA caches the compressed latent and the shared rotary key (arXiv:2405.04434). */
        x->kv_elems_per_token_layer = (double)(m->kv_lora_rank + m->rope_head_dim);
        x->qk_head_dim = (double)(m->head_dim + m->rope_head_dim);
        x->v_head_dim = (double)m->mla_v_head_dim;
    } else {
        x->kv_elems_per_token_layer = 2.0 * (double)m->n_kv_heads * (double)m->head_dim;
        x->qk_head_dim = (double)m->head_dim;
        x->v_head_dim = (double)m->head_dim;
    }
    x->n_sliding_layers = 0;
    if (m->window > 0)
        for (int64_t i = 0; i < m->n_layers; i++)
            x->n_sliding_layers += m->pattern[i % m->pattern_len];
}

double isim_model_kv_bytes(const isim_model *m, double context, isim_dtype kv)
{
    double full = (double)(m->n_layers - m->d.n_sliding_layers) * context;
    double local = (double)m->d.n_sliding_layers * fmin(context, (double)m->window);
    return (full + local) * m->d.kv_elems_per_token_layer * isim_dtype_bytes(kv);
}

double isim_model_active_as_declared(const isim_model *m)
{
    return m->d.params_active - (m->active_counts_input_embedding ? 0 : m->d.embedding_params) -
           (m->active_counts_output_embedding ? 0 : m->d.unembedding_params);
}

/* 2 FLOPs per multiply-accumulate (Kaplan et al. 2020, Table 1): the active matmul weights
 * (the embedding is a lookup, norms are not matmuls) plus q.k and p.v over the context. */
double isim_model_flops_per_token(const isim_model *m, double context)
{
    const isim_model_derived *x = &m->d;
    /* the embedding is a lookup; a tied classifier is still a matmul over the same weights */
    double matmul = x->params_active - x->embedding_params - x->final_norm_params -
                    (double)m->n_layers * x->norm_params_layer +
                    (m->tied_embeddings ? (double)m->vocab * (double)m->d_model : 0);
    double ctx_layers = (double)(m->n_layers - x->n_sliding_layers) * context +
                        (double)x->n_sliding_layers * fmin(context, (double)m->window);
    return 2 * matmul + 2 * (double)m->n_heads * (x->qk_head_dim + x->v_head_dim) * ctx_layers;
}

/* A request fits when its prompt and its answer together fit the context, as serving
 * engines count it (vLLM refuses prompt + max_tokens > max_model_len). */
bool isim_model_context_fits(const isim_model *m, double input_tokens, double output_tokens,
                             bool draft, char *why, size_t n)
{
    double tokens = input_tokens + output_tokens;
    if (tokens <= (double)m->max_context)
        return true;
    if (why)
        snprintf(why, n, "%.15g in + %.15g out = %.15g tokens of context exceed %s%s's %lld",
                 input_tokens, output_tokens, tokens, draft ? "the draft " : "", m->name,
                 (long long)m->max_context);
    return false;
}
