/* Greedy generation with its measurements, seeded prompts, the bytes a decode step reads,
 * and the export of the weights for an independent reference. */
#include "runtime/cpu/engine.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void isim_rt_random_prompt(uint64_t seed, int sequence, int len, int vocab, int *ids)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + (uint64_t)sequence * 0xbf58476d1ce4e5b9ull + 1;
    for (int i = 0; i < len; i++) {
        x += 0x9e3779b97f4a7c15ull;
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        /* ids 0-2 are <unk>, <s>, </s> in Llama vocabularies */
        ids[i] = vocab > 3 ? 3 + (int)(z % (uint64_t)(vocab - 3)) : (int)(z % (uint64_t)vocab);
    }
}

double isim_rt_weight_bytes(const isim_rt *rt, int batch)
{
    double bytes = rt->dense_bytes_local;
    size_t es = rt->o.weights == ISIM_FP32 ? 4 : rt->o.weights == ISIM_BF16 ? 2 : 1;
    if (rt->first) /* one embedding row per sequence, on the rank that holds it */
        bytes += (double)batch * (double)rt->d * (double)es / rt->o.tp;
    for (int li = 0; li < rt->l1 - rt->l0; li++) {
        const rt_layer *L = &rt->layers[li];
        if (!L->moe)
            continue;
        int used = 0;
        for (int e = 0; e < rt->ne; e++)
            used += rt->e_used[e];
        if (!used) /* no step yet: the active experts of one token per sequence, at most all */
            used = batch * rt->topk < rt->ne ? batch * rt->topk : rt->ne;
        bytes +=
            (double)used *
            (double)(isim__rt_matrix_bytes((size_t)2 * rt->eff_l, (size_t)rt->d, rt->o.weights) +
                     isim__rt_matrix_bytes((size_t)rt->d, (size_t)rt->eff_l, rt->o.weights));
    }
    isim_error e;
    isim__rt_comm_sum((rt_comm *)&rt->comm, &bytes, &e);
    return bytes;
}

void isim_rt_result_release(isim_rt_result *r)
{
    free(r->generated);
    free(r->step_s);
    memset(r, 0, sizeof *r);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The q quantile of sorted v (n > 0), linear between neighbours. */
static double quantile(const double *v, int n, double q)
{
    double at = q * (n - 1);
    int i = (int)at;
    if (i >= n - 1)
        return v[n - 1];
    return v[i] + (at - i) * (v[i + 1] - v[i]);
}

isim_status isim_rt_generate(isim_rt *rt, int batch, const int *const *prompts,
                             const int *prompt_len, int output_tokens, isim_rt_logits_fn on_logits,
                             void *ctx, isim_rt_result *out, isim_error *err)
{
    memset(out, 0, sizeof *out);
    if (output_tokens < 1)
        return isim__rt_fail(err, ISIM_EINVAL, "output tokens must be at least 1");
    if (batch < 1 || batch > rt->batch_cap)
        return isim__rt_fail(err, ISIM_EINVAL, "a batch of %d: the engine holds 1 to %d", batch,
                             rt->batch_cap);
    for (int i = 0; i < batch; i++)
        if ((int64_t)prompt_len[i] + output_tokens - 1 > rt->ctx)
            return isim__rt_fail(
                err, ISIM_EINVAL,
                "sequence %d: %d prompt + %d output tokens exceed the context of %d", i,
                prompt_len[i], output_tokens, rt->ctx);
    isim_status st = ISIM_OK;
    int n_steps = output_tokens - 1;
    int *slots = malloc((size_t)batch * sizeof *slots),
        *ones = malloc((size_t)batch * sizeof *ones);
    int *next = malloc((size_t)batch * sizeof *next);
    const int **tok = malloc((size_t)batch * sizeof *tok);
    float *logits = on_logits ? malloc((size_t)batch * (size_t)rt->vocab * sizeof *logits) : NULL;
    out->generated = malloc((size_t)batch * (size_t)output_tokens * sizeof *out->generated);
    out->step_s = malloc((size_t)(n_steps > 0 ? n_steps : 1) * sizeof *out->step_s);
    if (!slots || !ones || !next || !tok || (on_logits && !logits) || !out->generated ||
        !out->step_s) {
        st = isim__rt_fail(err, ISIM_ENOMEM, "out of memory");
        goto cleanup;
    }
    out->batch = batch;
    out->output_tokens = output_tokens;
    out->n_steps = n_steps;
    /* a warm-up pass, one token in slot 0, discarded: a process's first pass pays the first
     * touch of its scratch memory and, across ranks, MPI's setting up of its channels, which
     * a serving engine pays once when it starts, not in a request's time to first token */
    const int warm_tok = 0, *warm = &warm_tok, one_tok = 1, slot0 = 0;
    int warm_next;
    if ((st = isim__rt_forward(rt, 1, &slot0, &warm, &one_tok, NULL, &warm_next, err)))
        goto cleanup;
    for (int i = 0; i < batch; i++) {
        slots[i] = i;
        ones[i] = 1;
        isim_rt_reset(rt, i);
    }
    isim_rt_times_reset(rt);
    double t0 = isim__rt_now();
    if ((st = isim__rt_forward(rt, batch, slots, prompts, prompt_len, logits, next, err)))
        goto cleanup;
    out->prefill_s = isim__rt_now() - t0;
    isim_rt_times_get(rt, &out->prefill);
    if (on_logits && rt->comm.world_rank == 0)
        on_logits(ctx, 0, batch, rt->vocab, logits);
    for (int i = 0; i < batch; i++)
        out->generated[(size_t)i * output_tokens] = next[i];
    isim_rt_times_reset(rt);
    double total = 0;
    for (int s = 0; s < n_steps; s++) {
        for (int i = 0; i < batch; i++)
            tok[i] = &out->generated[(size_t)i * output_tokens + s];
        double t1 = isim__rt_now();
        if ((st = isim__rt_forward(rt, batch, slots, tok, ones, logits, next, err)))
            goto cleanup;
        out->step_s[s] = isim__rt_now() - t1;
        total += out->step_s[s];
        if (on_logits && rt->comm.world_rank == 0)
            on_logits(ctx, s + 1, batch, rt->vocab, logits);
        for (int i = 0; i < batch; i++)
            out->generated[(size_t)i * output_tokens + s + 1] = next[i];
    }
    isim_rt_times_get(rt, &out->decode);
    if (n_steps > 0) {
        double *sorted = malloc((size_t)n_steps * sizeof *sorted);
        if (!sorted) {
            st = isim__rt_fail(err, ISIM_ENOMEM, "out of memory");
            goto cleanup;
        }
        memcpy(sorted, out->step_s, (size_t)n_steps * sizeof *sorted);
        qsort(sorted, (size_t)n_steps, sizeof *sorted, cmp_double);
        out->step_median_s = quantile(sorted, n_steps, 0.5);
        out->step_p10_s = quantile(sorted, n_steps, 0.1);
        out->step_p90_s = quantile(sorted, n_steps, 0.9);
        free(sorted);
        out->tokens_per_s = total > 0 ? (double)batch * n_steps / total : 0;
    }
    out->weight_bytes = isim_rt_weight_bytes(rt, batch);
cleanup:
    free(slots);
    free(ones);
    free(next);
    free(tok);
    free(logits);
    if (st)
        isim_rt_result_release(out);
    return st;
}

/* ---- export ---------------------------------------------------------------------------------- */

typedef struct {
    FILE *f;
    cJSON *list;
    size_t offset; /* floats written */
    float *row;
    isim_status st;
    isim_error *err;
    const char *path;
} exporter;

/* Adds item to array; false (item deleted) when either is missing or out of memory. */
static bool add_item(cJSON *array, cJSON *item)
{
    if (array && item && cJSON_AddItemToArray(array, item))
        return true;
    cJSON_Delete(item);
    return false;
}

/* The listing of a tensor of rows x cols floats written at x->offset; out of memory sets
 * x->st, so that no listing misses a tensor. */
static void entry(exporter *x, const char *name, size_t rows, size_t cols)
{
    cJSON *t = cJSON_CreateObject();
    cJSON *sh =
        t && cJSON_AddStringToObject(t, "name", name) ? cJSON_AddArrayToObject(t, "shape") : NULL;
    bool ok = sh && add_item(sh, cJSON_CreateNumber((double)rows)) &&
              add_item(sh, cJSON_CreateNumber((double)cols)) &&
              cJSON_AddNumberToObject(t, "offset", (double)x->offset);
    if (!ok)
        cJSON_Delete(t);
    if (!ok || !add_item(x->list, t)) {
        x->st = isim__rt_fail(x->err, ISIM_ENOMEM, "out of memory");
        return;
    }
    x->offset += rows * cols;
}

static void put(exporter *x, const char *name, const float *v, size_t rows, size_t cols)
{
    if (x->st)
        return;
    if (fwrite(v, sizeof *v, rows * cols, x->f) != rows * cols) {
        x->st = isim__rt_fail(x->err, ISIM_EIO, "%s: cannot write: %s", x->path, strerror(errno));
        return;
    }
    entry(x, name, rows, cols);
}

/* Rows [r0, r0 + rows) of packed matrix m as a tensor. */
static void put_rows(exporter *x, const char *name, const rt_matrix *m, size_t r0, size_t rows)
{
    for (size_t r = 0; r < rows && !x->st; r++) {
        isim__rt_matrix_get_row(m, r0 + r, x->row);
        if (fwrite(x->row, sizeof(float), m->k, x->f) != m->k)
            x->st =
                isim__rt_fail(x->err, ISIM_EIO, "%s: cannot write: %s", x->path, strerror(errno));
    }
    if (x->st)
        return;
    entry(x, name, rows, m->k);
}

isim_status isim_rt_export(const isim_rt *rt, const char *path, isim_error *err)
{
    if (rt->o.tp != 1 || rt->o.pp != 1)
        return isim__rt_fail(err, ISIM_EINVAL, "export runs in one process (tp = pp = 1)");
    const isim_model *m = rt->m;
    char bin[1200], json[1200];
    if (strlen(path) + sizeof ".json" > sizeof json)
        return isim__rt_fail(err, ISIM_EINVAL, "export path longer than %zu bytes",
                             sizeof json - sizeof ".json");
    snprintf(bin, sizeof bin, "%s.bin", path);
    snprintf(json, sizeof json, "%s.json", path);
    size_t widest = (size_t)rt->d > (size_t)rt->ff_max_l ? (size_t)rt->d : (size_t)rt->ff_max_l;
    if ((size_t)rt->nh * rt->hd > widest)
        widest = (size_t)rt->nh * rt->hd;
    exporter x = {.f = fopen(bin, "wb"),
                  .list = cJSON_CreateArray(),
                  .err = err,
                  .path = bin,
                  .row = malloc(widest * sizeof(float))};
    cJSON *doc = cJSON_CreateObject();
    if (!x.f || !x.list || !x.row || !doc) {
        isim_status st =
            !x.f ? isim__rt_fail(err, ISIM_EIO, "%s: cannot create: %s", bin, strerror(errno))
                 : isim__rt_fail(err, ISIM_ENOMEM, "out of memory");
        if (x.f)
            fclose(x.f);
        cJSON_Delete(x.list);
        cJSON_Delete(doc);
        free(x.row);
        return st;
    }
    const size_t d = (size_t)rt->d, hd = (size_t)rt->hd, q = (size_t)rt->nh * hd,
                 kv = (size_t)rt->nkv * hd, ff = (size_t)rt->ff_l, eff = (size_t)rt->eff_l,
                 sff = (size_t)rt->sff_l;
    char name[96];
    put_rows(&x, "embed", m->tied_embeddings ? &rt->vocab_m : &rt->embed_m, 0, (size_t)rt->vocab);
    for (int li = 0; li < rt->l1 - rt->l0; li++) {
        const rt_layer *L = &rt->layers[li];
#define NAME(s) (snprintf(name, sizeof name, "layers.%d." s, li), name)
        put(&x, NAME("attn_norm"), L->attn_norm, 1, d);
        put(&x, NAME("ffn_norm"), L->ffn_norm, 1, d);
        put_rows(&x, NAME("wq"), &L->qkv, 0, q);
        put_rows(&x, NAME("wk"), &L->qkv, q, kv);
        put_rows(&x, NAME("wv"), &L->qkv, q + kv, kv);
        put_rows(&x, NAME("wo"), &L->o, 0, d);
        if (L->q_norm) {
            put(&x, NAME("q_norm"), L->q_norm, 1, hd);
            put(&x, NAME("k_norm"), L->k_norm, 1, hd);
        }
        if (L->qkv.bias) {
            put(&x, NAME("bqkv"), L->qkv.bias, 1, q + 2 * kv);
            put(&x, NAME("bo"), L->o.bias, 1, d);
        }
        if (!L->moe) {
            put_rows(&x, NAME("w1"), &L->gate_up, 0, ff);
            put_rows(&x, NAME("w3"), &L->gate_up, ff, ff);
            put_rows(&x, NAME("w2"), &L->down, 0, d);
            if (L->gate_up.bias) {
                put(&x, NAME("b13"), L->gate_up.bias, 1, 2 * ff);
                put(&x, NAME("b2"), L->down.bias, 1, d);
            }
            continue;
        }
        put_rows(&x, NAME("router"), &L->router, 0, (size_t)rt->ne);
        if (L->router.bias)
            put(&x, NAME("router_bias"), L->router.bias, 1, (size_t)rt->ne);
        for (int e = 0; e < rt->ne; e++) {
            snprintf(name, sizeof name, "layers.%d.experts.%d.w1", li, e);
            put_rows(&x, name, &L->e_gate_up[e], 0, eff);
            snprintf(name, sizeof name, "layers.%d.experts.%d.w3", li, e);
            put_rows(&x, name, &L->e_gate_up[e], eff, eff);
            snprintf(name, sizeof name, "layers.%d.experts.%d.w2", li, e);
            put_rows(&x, name, &L->e_down[e], 0, d);
        }
        if (sff) {
            put_rows(&x, NAME("shared.w1"), &L->s_gate_up, 0, sff);
            put_rows(&x, NAME("shared.w3"), &L->s_gate_up, sff, sff);
            put_rows(&x, NAME("shared.w2"), &L->s_down, 0, d);
        }
#undef NAME
    }
    put(&x, "final_norm", rt->final_norm, 1, d);
    if (!m->tied_embeddings)
        put_rows(&x, "classifier", &rt->vocab_m, 0, (size_t)rt->vocab);
    if (fclose(x.f) != 0 && !x.st)
        x.st = isim__rt_fail(err, ISIM_EIO, "%s: cannot write: %s", bin, strerror(errno));
    free(x.row);
    if (x.st) {
        cJSON_Delete(x.list);
        cJSON_Delete(doc);
        return x.st;
    }
    /* every entry of the configuration or none: the reference reads them all */
    cJSON *cfg = cJSON_AddObjectToObject(doc, "config");
    bool ok = cfg != NULL;
#define ADD(e) (ok = ok && (e) != 0)
    ADD(cJSON_AddStringToObject(cfg, "model", m->id));
    ADD(cJSON_AddNumberToObject(cfg, "d_model", (double)d));
    ADD(cJSON_AddNumberToObject(cfg, "n_layers", (double)m->n_layers));
    ADD(cJSON_AddNumberToObject(cfg, "n_heads", (double)m->n_heads));
    ADD(cJSON_AddNumberToObject(cfg, "n_kv_heads", (double)m->n_kv_heads));
    ADD(cJSON_AddNumberToObject(cfg, "head_dim", (double)hd));
    ADD(cJSON_AddNumberToObject(cfg, "vocab", (double)m->vocab));
    ADD(cJSON_AddBoolToObject(cfg, "tied_embeddings", m->tied_embeddings));
    ADD(cJSON_AddNumberToObject(cfg, "rope_theta", m->rope_theta));
    ADD(cJSON_AddNumberToObject(cfg, "norm_eps", m->norm_eps));
    ADD(cJSON_AddNumberToObject(cfg, "n_experts", rt->ne));
    ADD(cJSON_AddNumberToObject(cfg, "n_active_experts", rt->topk));
    ADD(cJSON_AddNumberToObject(cfg, "first_dense_layers",
                                m->has_moe ? (double)m->first_dense_layers : 0));
    ADD(cJSON_AddNumberToObject(cfg, "window", (double)m->window));
    cJSON *pat = ok ? cJSON_AddArrayToObject(cfg, "local_layers") : NULL;
    ok = pat != NULL;
    for (int li = 0; ok && li < rt->l1 - rt->l0; li++)
        ok = add_item(pat, cJSON_CreateBool(rt->layers[li].local));
    ADD(cJSON_AddStringToObject(cfg, "weights", isim_dtype_name(rt->o.weights)));
    ADD(cJSON_AddStringToObject(cfg, "kv", isim_dtype_name(rt->o.kv)));
    /* bf16 weights take their matmul inputs rounded to bf16 too */
    ADD(cJSON_AddBoolToObject(cfg, "bf16_matmul_inputs", rt->o.weights == ISIM_BF16));
#undef ADD
    if (!ok || !cJSON_AddItemToObject(doc, "tensors", x.list)) {
        cJSON_Delete(x.list); /* not in doc */
        cJSON_Delete(doc);
        return isim__rt_fail(err, ISIM_ENOMEM, "out of memory");
    }
    char *text = cJSON_Print(doc);
    cJSON_Delete(doc);
    isim_status st = ISIM_OK;
    FILE *f = text ? fopen(json, "w") : NULL;
    if (!text) {
        st = isim__rt_fail(err, ISIM_ENOMEM, "out of memory");
    } else if (!f) {
        st = isim__rt_fail(err, ISIM_EIO, "%s: cannot create: %s", json, strerror(errno));
    } else {
        bool written = fputs(text, f) >= 0;
        written = fclose(f) == 0 && written;
        if (!written)
            st = isim__rt_fail(err, ISIM_EIO, "%s: cannot write: %s", json, strerror(errno));
    }
    free(text);
    return st;
}
