/* Public measured serving data, read and matched to the catalog (docs/validation.md,
 * "Against public measurements"). The CSV is read by the library's one CSV reader
 * (sim/csv_internal.h); columns are found by their header names, so their order does not
 * matter. */
#include "sim/dataset.h"
#include "sim/csv_internal.h"
#include "sim/internal.h"
#include "sim/serve.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static isim_status ds_fail(isim_error *err, isim_status code, const char *file, int line,
                           int column, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static isim_status ds_fail(isim_error *err, isim_status code, const char *file, int line,
                           int column, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    isim_status st = isim_error_setv(err, code, file, line, column, fmt, ap);
    va_end(ap);
    return st;
}

bool isim_ds_heldout(const char *id)
{
    return isim__fnv1a64(id, strlen(id), ISIM__FNV_OFFSET) % 5 == 0;
}

/* ---- columns ------------------------------------------------------------------------- */

enum {
    C_ID,
    C_SOURCE,
    C_BACKEND,
    C_VERSION,
    C_MODEL,
    C_SYSTEM,
    C_PRECISION,
    C_MODE,
    C_ISL,
    C_OSL,
    C_GEMM,
    C_BATCH,
    C_TP,
    C_PP,
    C_ADP,
    C_MOE_TP,
    C_MOE_EP,
    C_P_BATCH,
    C_P_WORKERS,
    C_P_TP,
    C_P_PP,
    C_P_ADP,
    C_P_MOE_TP,
    C_P_MOE_EP,
    C_D_BATCH,
    C_D_WORKERS,
    C_D_TP,
    C_D_PP,
    C_D_ADP,
    C_D_MOE_TP,
    C_D_MOE_EP,
    C_TTFT,
    C_TPOT,
    C_COUNT
};

static const char *const col_names[C_COUNT] = {
    "id",
    "silicon_data_source",
    "backend",
    "backend_version",
    "model_path",
    "system",
    "precision",
    "mode",
    "isl",
    "osl",
    "gemm_quant_mode",
    "batch_size",
    "tp_size",
    "pp_size",
    "attention_dp_size",
    "moe_tp_size",
    "moe_ep_size",
    "prefill_batch_size",
    "prefill_num_workers",
    "prefill_tp_size",
    "prefill_pp_size",
    "prefill_attention_dp_size",
    "prefill_moe_tp_size",
    "prefill_moe_ep_size",
    "decode_batch_size",
    "decode_num_workers",
    "decode_tp_size",
    "decode_pp_size",
    "decode_attention_dp_size",
    "decode_moe_tp_size",
    "decode_moe_ep_size",
    "silicon_ttft_ms",
    "silicon_tpot_ms",
};

/* ---- reading the file ------------------------------------------------------------------ */

/* The rows read so far. */
typedef struct {
    isim_ds_row *rows;
    size_t n, cap;
} parse_ctx;

/* Weights from the GEMM quantisation the row names (fp8 and fp8_block: fp8; nvfp4: fp4;
 * int4_wo: int4, weight-only; empty: bf16). */
static bool weights_of(const char *gemm, const char *precision, isim_dtype *w)
{
    const char *q = gemm[0] ? gemm : precision;
    if (!q[0] || strcmp(q, "bf16") == 0)
        *w = ISIM_BF16;
    else if (strcmp(q, "fp8") == 0 || strcmp(q, "fp8_block") == 0)
        *w = ISIM_FP8;
    else if (strcmp(q, "nvfp4") == 0 || strcmp(q, "fp4") == 0 || strcmp(q, "mxfp4") == 0)
        *w = ISIM_FP4;
    else if (strcmp(q, "int4_wo") == 0 || strcmp(q, "int4") == 0)
        *w = ISIM_INT4;
    else
        return false;
    return true;
}

/* Text columns into the row's fixed fields: refused when longer (the limit is the
 * field's size, docs/validation.md). The source is its part before the first ';'. */
static bool read_texts(isim__csv *c, isim_ds_row *r)
{
    const struct {
        int col;
        char *dst;
        size_t size;
    } texts[] = {
        {C_ID, r->id, sizeof r->id},
        {C_BACKEND, r->backend, sizeof r->backend},
        {C_SYSTEM, r->system, sizeof r->system},
        {C_MODEL, r->model_path, sizeof r->model_path},
        {C_PRECISION, r->precision, sizeof r->precision},
        {C_VERSION, r->version, sizeof r->version},
        {C_SOURCE, r->source, sizeof r->source},
    };
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        const char *s = isim__csv_get(c, texts[k].col);
        size_t len = texts[k].col == C_SOURCE ? strcspn(s, ";") : strlen(s);
        if (len >= texts[k].size) {
            isim__csv_fail_col(c, texts[k].col, "%zu bytes%s, more than the limit of %zu", len,
                               texts[k].col == C_SOURCE ? " before its first ';'" : "",
                               texts[k].size - 1);
            return false;
        }
        memcpy(texts[k].dst, s, len);
        texts[k].dst[len] = 0;
    }
    if (!r->id[0]) {
        isim__csv_fail_col(c, C_ID, "empty: every row needs an id");
        return false;
    }
    return true;
}

/* A whole number written with digits only, in [lo, hi]; false with the error set. */
static bool whole_number(isim__csv *c, int col, const char *what, const char *s, int lo, int hi,
                         int *out)
{
    long long v;
    if (!isim__csv_whole(c, col, what, s, lo, hi, &v))
        return false;
    *out = (int)v;
    return true;
}

/* The integer columns in the order of the enum (aiconfigurator's), each in its range; an
 * empty one takes its default. */
static bool read_ints(isim__csv *c, isim_ds_row *r)
{
    int unused;
    const struct {
        int col, empty, lo, hi;
        int *dst;
    } ints[] = {
        {C_ISL, -1, 1, ISIM_DS_MAX_TOKENS, &r->isl},
        {C_OSL, -1, 1, ISIM_DS_MAX_TOKENS, &r->osl},
        {C_BATCH, 0, 0, ISIM_DS_MAX_BATCH, &r->raw[5]},
        {C_TP, 0, 0, ISIM_DS_MAX_DEGREE, &r->raw[0]},
        {C_PP, 1, 0, ISIM_DS_MAX_DEGREE, &r->raw[1]},
        {C_ADP, -1, 0, ISIM_DS_MAX_DEGREE, &r->raw[2]},
        {C_MOE_TP, 0, 0, ISIM_DS_MAX_DEGREE, &r->raw[3]},
        {C_MOE_EP, 0, 0, ISIM_DS_MAX_DEGREE, &r->raw[4]},
        {C_P_BATCH, 1, 0, ISIM_DS_MAX_BATCH, &r->prefill.batch},
        {C_P_WORKERS, 0, 0, ISIM_DS_MAX_DEGREE, &r->prefill.workers},
        {C_P_TP, 0, 0, ISIM_DS_MAX_DEGREE, &r->prefill.tp},
        {C_P_PP, 1, 0, ISIM_DS_MAX_DEGREE, &r->prefill.pp},
        {C_P_ADP, 1, 0, ISIM_DS_MAX_DEGREE, &r->prefill.dp},
        {C_P_MOE_TP, 0, 0, ISIM_DS_MAX_DEGREE, &unused},
        {C_P_MOE_EP, 1, 0, ISIM_DS_MAX_DEGREE, &r->prefill.ep},
        {C_D_BATCH, 0, 0, ISIM_DS_MAX_BATCH, &r->decode.batch},
        {C_D_WORKERS, 0, 0, ISIM_DS_MAX_DEGREE, &r->decode.workers},
        {C_D_TP, 0, 0, ISIM_DS_MAX_DEGREE, &r->decode.tp},
        {C_D_PP, 1, 0, ISIM_DS_MAX_DEGREE, &r->decode.pp},
        {C_D_ADP, 1, 0, ISIM_DS_MAX_DEGREE, &r->decode.dp},
        {C_D_MOE_TP, 0, 0, ISIM_DS_MAX_DEGREE, &unused},
        {C_D_MOE_EP, 1, 0, ISIM_DS_MAX_DEGREE, &r->decode.ep},
    };
    for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) {
        const char *s = isim__csv_get(c, ints[k].col);
        if (!s[0] && ints[k].lo == 0) /* lengths (from 1) are never empty */
            *ints[k].dst = ints[k].empty;
        else if (!whole_number(c, ints[k].col, "", s, ints[k].lo, ints[k].hi, ints[k].dst))
            return false;
    }
    return true;
}

/* Milliseconds: a decimal number (digits, an optional fraction and exponent: no sign, hex,
 * inf or nan) in [ISIM_DS_MIN_MS, ISIM_DS_MAX_MS]. */
static bool read_ms(isim__csv *c, int col, double *out)
{
    const char *s = isim__csv_get(c, col);
    char b[64];
    double v = 0;
    if (!isim__csv_decimal(s, &v) || !(v > 0)) {
        isim__csv_fail_col(c, col, "%s is not a positive number of milliseconds",
                           isim__csv_shown(s, b, sizeof b));
        return false;
    }
    if (v < ISIM_DS_MIN_MS) {
        isim__csv_fail_col(c, col, "%s ms is less than the minimum of %g (a microsecond)",
                           isim__csv_shown(s, b, sizeof b), ISIM_DS_MIN_MS);
        return false;
    }
    if (v > ISIM_DS_MAX_MS) {
        isim__csv_fail_col(c, col, "%s ms is more than the limit of %.0f (a day)",
                           isim__csv_shown(s, b, sizeof b), ISIM_DS_MAX_MS);
        return false;
    }
    *out = v;
    return true;
}

/* a x b x ... of the columns named, refused above `limit`: false with the error set. */
static bool product(isim__csv *c, const char *what, const int *cols, const int *vals, int n,
                    long long limit, int *out)
{
    long long p = 1;
    bool over = false;
    for (int k = 0; k < n; k++)
        over |= __builtin_mul_overflow(p, (long long)vals[k], &p);
    if (over || p > limit) {
        char text[400];
        size_t used = 0;
        for (int k = 0; k < n && used < sizeof text; k++)
            used += (size_t)snprintf(text + used, sizeof text - used, "%s%s %d", k ? " x " : "",
                                     col_names[cols[k]], vals[k]);
        isim__csv_fail_col(c, cols[0], "%s %s is more than the limit of %lld", what, text, limit);
        return false;
    }
    *out = (int)p;
    return true;
}

/* The clients: the source's silicon_concurrency, else the batch column (per attention-DP
 * rank in aiconfigurator's convention, per worker for disaggregated rows); and the
 * sequences of a disaggregated worker (its batch column is per rank). */
static bool read_concurrency(isim__csv *c, isim_ds_row *r)
{
    const char *src = isim__csv_get(c, C_SOURCE);
    const char *sc = strstr(src, "silicon_concurrency=");
    if (sc) {
        char v[ISIM_DS_MAX_FIELD_BYTES + 1]; /* the field fits */
        sc += strlen("silicon_concurrency=");
        snprintf(v, sizeof v, "%.*s", (int)strcspn(sc, ";"), sc);
        return whole_number(c, C_SOURCE, "silicon_concurrency ", v, 1, ISIM_DS_MAX_CLIENTS,
                            &r->concurrency);
    }
    if (!r->disagg) {
        int cols[] = {C_BATCH, C_ADP}, vals[] = {r->raw[5], r->raw[2] > 1 ? r->raw[2] : 1};
        return product(c, "clients", cols, vals, 2, ISIM_DS_MAX_CLIENTS, &r->concurrency);
    }
    int cols[] = {C_D_BATCH, C_D_ADP, C_D_WORKERS},
        vals[] = {r->decode.batch, r->decode.dp, r->decode.workers};
    return product(c, "clients", cols, vals, 3, ISIM_DS_MAX_CLIENTS, &r->concurrency);
}

static bool worker_batches(isim__csv *c, const isim_ds_row *r)
{
    int b;
    /* as disagg_shapes computes them */
    int pc[] = {C_P_BATCH, C_P_ADP}, dc[] = {C_D_BATCH, C_D_ADP};
    int pv[] = {r->prefill.batch > 0 ? r->prefill.batch : 1, r->prefill.dp > 1 ? r->prefill.dp : 1};
    int dv[] = {r->decode.batch > 0 ? r->decode.batch : 1, r->decode.dp > 1 ? r->decode.dp : 1};
    return !r->disagg || (product(c, "sequences per worker", pc, pv, 2, ISIM_DS_MAX_CLIENTS, &b) &&
                          product(c, "sequences per worker", dc, dv, 2, ISIM_DS_MAX_CLIENTS, &b));
}

static void read_row(isim__csv *c, void *ctx)
{
    parse_ctx *pc = ctx;
    isim_ds_row *rows = isim__csv_grown(pc->rows, &pc->cap, pc->n + 1, sizeof *rows);
    if (!rows) {
        isim__csv_fail(c, ISIM_ENOMEM, isim__csv_row_at(c), "out of memory");
        return;
    }
    pc->rows = rows;
    isim_ds_row *r = &pc->rows[pc->n];
    memset(r, 0, sizeof *r);
    r->line = (int)isim__csv_row_at(c).line;
    r->model = r->hw = r->fit = -1;
    r->sim_ttft_s = r->sim_tpot_s = NAN;
    if (!read_texts(c, r))
        return;
    const char *mode = isim__csv_get(c, C_MODE);
    if (strcmp(mode, "agg") != 0 && strcmp(mode, "disagg") != 0) {
        char b[64];
        isim__csv_fail_col(c, C_MODE, "%s is not agg or disagg",
                           isim__csv_shown(mode, b, sizeof b));
        return;
    }
    r->disagg = strcmp(mode, "disagg") == 0;
    if (!weights_of(isim__csv_get(c, C_GEMM), isim__csv_get(c, C_PRECISION), &r->weights)) {
        char b[64];
        isim__csv_fail_col(c, C_GEMM,
                           "%s is not a known quantisation (fp8, fp8_block, nvfp4, int4_wo, empty)",
                           isim__csv_shown(isim__csv_get(c, C_GEMM), b, sizeof b));
        return;
    }
    double ttft_ms, tpot_ms;
    if (!read_ints(c, r) || !read_ms(c, C_TTFT, &ttft_ms) || !read_ms(c, C_TPOT, &tpot_ms) ||
        !read_concurrency(c, r) || !worker_batches(c, r))
        return;
    r->ttft_s = ttft_ms * 1e-3;
    r->tpot_s = tpot_ms * 1e-3;
    /* InferenceX's runs (its database dumps): lengths uniform in [0.8 L, L] */
    const char *src = isim__csv_get(c, C_SOURCE);
    r->inferencex = strncmp(src, "db-dump", 7) == 0 || strncmp(src, "source_file=2026-", 17) == 0;
    r->train = !isim_ds_heldout(r->id);
    pc->n++;
}

/* The rows of the file at path, with the digest of its bytes. */
static isim_status parse_file(const char *path, parse_ctx *c, uint64_t *digest, isim_error *err)
{
    const isim__csv_spec spec = {
        .columns = col_names,
        .n_columns = C_COUNT,
        .max_bytes = ISIM_DS_MAX_BYTES,
        .max_fields = ISIM_DS_MAX_FIELDS,
        .max_field_bytes = ISIM_DS_MAX_FIELD_BYTES,
        .max_rows = ISIM_DS_MAX_ROWS,
        .row = read_row,
        .ctx = c,
    };
    return isim__csv_read(path, &spec, digest, err);
}

/* ---- the catalog's models and profiles ------------------------------------------------ */

/* Every model or profile of the catalog, loaded once: a row's name is matched with their
 * ids and aliases (case-insensitive, the first in the catalog's order, as
 * isim_catalog_find), and an entry moves into the dataset when a row first uses it. A
 * file that does not load names nothing. */
typedef struct {
    isim_model *model;
    isim_hw *hw; /* one of the two; both NULL: did not load */
    const char *id;
    char *const *aliases;
    int at; /* index in the dataset's models or hw; -1 until a row uses it */
} ds_entry;

typedef struct {
    ds_entry *e;
    size_t n;
} ds_catalog;

static void catalog_free(ds_catalog *k)
{
    for (size_t i = 0; i < k->n; i++)
        if (k->e[i].at < 0) {
            isim_model_free(k->e[i].model);
            isim_hw_free(k->e[i].hw);
        }
    free(k->e);
}

static isim_status catalog_load(ds_catalog *k, const char *data_dir, bool model, isim_error *err)
{
    k->e = NULL;
    k->n = 0;
    char **ids = NULL;
    isim_status st = isim_catalog_list(data_dir, model ? "models" : "hw-profiles", &ids, err);
    if (st)
        return st;
    size_t n = 0;
    while (ids[n])
        n++;
    k->e = calloc(n + 1, sizeof *k->e);
    if (!k->e) {
        isim_ids_free(ids);
        return ds_fail(err, ISIM_ENOMEM, "", 0, 0, "out of memory");
    }
    for (; k->n < n; k->n++) {
        ds_entry *e = &k->e[k->n];
        e->at = -1;
        isim_status got = model ? isim_catalog_model(data_dir, ids[k->n], &e->model, NULL)
                                : isim_catalog_hw(data_dir, ids[k->n], &e->hw, NULL);
        if (got == ISIM_ENOMEM) {
            /* a file that could not be read for want of memory is not a file that names
             * nothing: its rows would be set aside as unknown */
            k->n++;
            isim_ids_free(ids);
            return ds_fail(err, ISIM_ENOMEM, "", 0, 0, "out of memory");
        }
        if (got == ISIM_OK && model) {
            e->id = e->model->id;
            e->aliases = e->model->aliases;
        } else if (got == ISIM_OK) {
            e->id = e->hw->id;
            e->aliases = e->hw->aliases;
        }
    }
    isim_ids_free(ids);
    return ISIM_OK;
}

static bool named(const ds_entry *e, const char *name)
{
    if (!e->id)
        return false;
    if (strcasecmp(e->id, name) == 0)
        return true;
    for (char *const *a = e->aliases; a && *a; a++)
        if (strcasecmp(*a, name) == 0)
            return true;
    return false;
}

/* The entry moved into the dataset: false when out of memory. */
static bool adopt(ds_entry *e, isim_dataset *d)
{
    if (e->model) {
        isim_model **m = realloc(d->models, (d->n_models + 1) * sizeof *m);
        if (!m)
            return false;
        d->models = m;
        m[d->n_models] = e->model;
        e->at = (int)d->n_models++;
    } else {
        isim_hw **h = realloc(d->hw, (d->n_hw + 1) * sizeof *h);
        if (!h)
            return false;
        d->hw = h;
        h[d->n_hw] = e->hw;
        e->at = (int)d->n_hw++;
    }
    return true;
}

/* The dataset's index of the entry named `name`; -1 when the catalog has none (or, with
 * *st set, out of memory). */
static int catalog_index(ds_catalog *k, isim_dataset *d, const char *name, isim_status *st,
                         isim_error *err)
{
    for (size_t i = 0; i < k->n; i++) {
        ds_entry *e = &k->e[i];
        if (!named(e, name))
            continue;
        if (e->at < 0 && !adopt(e, d)) {
            *st = ds_fail(err, ISIM_ENOMEM, "", 0, 0, "out of memory");
            return -1;
        }
        return e->at;
    }
    return -1;
}

/* ---- layouts ---------------------------------------------------------------------------- */

/* a x b, exact: the columns' limits (ISIM_DS_MAX_BATCH, ISIM_DS_MAX_DEGREE) keep a
 * product of two of them far inside 64 bits, not inside an int. */
static long long mul(int a, int b)
{
    return (long long)a * b;
}

/* The layout a row ran, from the columns as the file writes them (docs/validation.md,
 * "Reading the rows"). aiconfigurator's convention: attention tp x data-parallel ranks
 * = devices = moe tp x moe ep, batch per data-parallel rank. Some sources wrote
 * InferenceX's (tp, ep) as tp x ep: those are recognised by their product and read as
 * InferenceX meant them, tp devices with ep-way experts. False with the reason when the
 * columns describe no layout. */
static bool agg_layout(isim_ds_row *r, const isim_model *m, char *why, size_t n)
{
    int tp = r->raw[0], pp = r->raw[1] > 0 ? r->raw[1] : 1, adp = r->raw[2], mtp = r->raw[3],
        mep = r->raw[4], bs = r->raw[5];
    int dp = adp > 1 ? adp : 1;
    isim_ds_shape *s = &r->agg;
    memset(s, 0, sizeof *s);
    s->pp = pp;
    s->workers = 1;
    r->replicas = 1;
    if (tp < 1) {
        snprintf(why, n, "no tensor-parallel degree");
        return false;
    }
    if (!m->has_moe) {
        /* dense: tp x pp devices; a batch below the concurrency is one of several replicas
         * behind a router */
        s->tp = tp;
        s->dp = dp;
        s->ep = 1;
        if (dp == 1 && bs > 0 && bs < r->concurrency && r->concurrency % bs == 0)
            r->replicas = r->concurrency / bs;
        s->batch = r->concurrency / r->replicas;
        return true;
    }
    s->batch = r->concurrency;
    if (mtp > 1 && mep > 1 && dp == 1 && tp == mul(mtp, mep)) {
        /* InferenceX tp (= devices) x ep written as tp */
        s->tp = mtp;
        s->dp = 1;
        s->ep = mep;
    } else if (mtp > 1 && mep > 1 && tp == 1 && dp == mul(mtp, mep)) {
        /* the same with attention data parallelism */
        s->tp = 1;
        s->dp = mtp;
        s->ep = mep;
    } else if (mtp <= 1 && tp > 1 && dp > 1 && mep == mul(tp, dp)) {
        /* vLLM: tp devices, experts over all of them, written as tp x dp */
        s->tp = tp;
        s->dp = 1;
        s->ep = tp;
    } else if (adp < 0 && mep <= 1 && mtp == tp && bs > 0 && mul(bs, tp) == r->concurrency &&
               tp > 1) {
        /* TensorRT-LLM's attention data parallelism with the dp column left empty: the
         * batch column is per rank */
        s->tp = 1;
        s->dp = tp;
        s->ep = 1;
    } else if (adp < 0 && mep == tp && bs > 0 && mul(bs, tp) == r->concurrency && tp > 1) {
        s->tp = 1;
        s->dp = tp;
        s->ep = mep;
    } else if ((mtp > 0 || mep > 0) && mul(tp, dp) == mul(mtp > 0 ? mtp : 1, mep > 0 ? mep : 1)) {
        s->tp = tp;
        s->dp = dp;
        s->ep = mep > 0 ? mep : 1;
    } else {
        snprintf(why, n,
                 "layout columns disagree: tp %d x attention dp %d != moe tp %d x moe ep %d", tp,
                 dp, mtp, mep);
        return false;
    }
    if (s->tp > 8 && s->ep <= 1) {
        snprintf(why, n,
                 "tp %d without expert parallelism: the devices of a disaggregated "
                 "deployment, not one aggregated layout",
                 s->tp);
        return false;
    }
    return true;
}

static bool disagg_shapes(isim_ds_row *r, char *why, size_t n)
{
    if (r->prefill.workers < 1 || r->decode.workers < 1 || r->decode.batch < 1) {
        snprintf(why, n, "disaggregated row without its workers' counts and batch");
        return false;
    }
    isim_ds_shape *sh[2] = {&r->prefill, &r->decode};
    for (int k = 0; k < 2; k++) {
        isim_ds_shape *s = sh[k];
        if (s->tp < 1) {
            snprintf(why, n, "%s worker without a tensor-parallel degree",
                     k ? "decode" : "prefill");
            return false;
        }
        s->dp = s->dp > 1 ? s->dp : 1;
        s->pp = s->pp > 1 ? s->pp : 1;
        s->ep = s->ep > 1 ? s->ep : 1;
        s->batch = (s->batch > 0 ? s->batch : 1) * s->dp; /* the column is per rank */
    }
    return true;
}

/* ---- accuracy ---------------------------------------------------------------------------- */

isim_status isim_accuracy_of(const double *measured, const double *predicted, size_t n,
                             isim_accuracy *out)
{
    memset(out, 0, sizeof *out);
    double *a = malloc((n ? n : 1) * sizeof *a), *s = malloc((n ? n : 1) * sizeof *s);
    if (!a || !s) {
        free(a);
        free(s);
        return ISIM_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(measured[i] > 0) || !isfinite(predicted[i]))
            continue;
        s[k] = 100 * (predicted[i] - measured[i]) / measured[i];
        a[k] = fabs(s[k]);
        k++;
    }
    out->n = k;
    if (k) {
        qsort(a, k, sizeof *a, isim_cmp_double);
        qsort(s, k, sizeof *s, isim_cmp_double);
        out->median_abs_pct = isim_quantile_sorted(a, k, 0.5);
        out->p90_abs_pct = isim_quantile_sorted(a, k, 0.9);
        out->median_pct = isim_quantile_sorted(s, k, 0.5);
        out->max_abs_pct = a[k - 1];
    }
    free(a);
    free(s);
    return ISIM_OK;
}

/* ---- prediction --------------------------------------------------------------------------- */

void isim_ds_prior(const isim_hw *hw, isim_hw_fit *p)
{
    /* the profile's own values, not an earlier fit's: a refit does not drift */
    *p = hw->unfitted;
    snprintf(p->backend, sizeof p->backend, "all");
    if (!(p->eff_hbm_fp4 > 0))
        p->eff_hbm_fp4 = p->eff_hbm;
    if (!(p->eff_hbm_int4 > 0))
        p->eff_hbm_int4 = p->eff_hbm;
    if (!(p->eff_hbm_experts > 0))
        p->eff_hbm_experts = p->eff_hbm;
    p->kv = ISIM_BF16;
    p->lockstep = 0.5;
}

/* Mean lengths: InferenceX draws each in [0.8 L, L] (its benchmark template's
 * RANDOM_RANGE_RATIO 0.8), a mean of 0.9 L. */
static double mean_len(const isim_ds_row *r, int l)
{
    return r->inferencex ? floor(0.9 * l + 0.5) : (double)l;
}

/* The query of a row's shape at `batch` sequences. */
static void shape_query(const isim_model *m, const isim_ds_row *r, const isim_ds_shape *s,
                        double batch, isim_dtype kv, isim_query *q)
{
    isim_query_init(q);
    q->fidelity = ISIM_DEPLOY;
    q->devices = (double)s->tp * s->pp * s->dp;
    q->tp = s->tp;
    q->pp = s->pp;
    q->ep = m->has_moe ? s->ep : 1;
    q->batch = batch < 1 ? 1 : batch;
    q->input_tokens = mean_len(r, r->isl);
    q->output_tokens = mean_len(r, r->osl);
    q->weights = r->weights;
    q->kv = kv;
    q->allow_cross_domain_tp = true; /* the row ran it */
}

/* Whether a prediction can stand for the row; false with why set. */
static bool usable(isim_status st, const isim_error *e, const isim_result *res, char *why, size_t n)
{
    if (st) {
        snprintf(why, n, "%s", e->message);
        return false;
    }
    if (!res->feasible && res->reason != ISIM_REASON_MEMORY) {
        snprintf(why, n, "%s: %s", isim_reason_text(res->reason), res->reason_detail);
        return false;
    }
    return true; /* a layout the memory model finds too big still ran: its times stand */
}

static bool run_shape(const isim_model *m, const isim_hw *hw, const isim_ds_row *r,
                      const isim_ds_shape *s, double batch, isim_dtype kv, isim_result *res,
                      char *why, size_t n)
{
    isim_query q;
    shape_query(m, r, s, batch, kv, &q);
    isim_error e = {0};
    isim_status st = isim_predict(m, hw, &q, res, &e);
    return usable(st, &e, res, why, n);
}

bool isim_ds_predict(const isim_dataset *d, const isim_ds_row *r, const isim_hw_fit *p,
                     double *ttft_s, double *tpot_s, isim_ds_parts *parts, char *why, size_t n)
{
    isim_ds_parts scratch;
    if (!parts)
        parts = &scratch;
    if (r->model < 0 || r->hw < 0) {
        snprintf(why, n, "no model or profile");
        return false;
    }
    const isim_model *m = d->models[r->model];
    isim_hw hw;
    isim_hw_apply_fit(d->hw[r->hw], p, &hw);
    const double osl = mean_len(r, r->osl);
    isim_result res;
    if (!r->disagg) {
        /* Aggregated, closed loop: the closed form of sim/serve.h, the benchmark's first
         * requests together (InferenceX sends 10 x the concurrency in all), lengths of one
         * value unless InferenceX drew them. */
        const isim_ds_shape *s = &r->agg;
        isim_query q;
        shape_query(m, r, s, s->batch, p->kv, &q);
        isim_closed_loop cl = {.clients = ceil((double)s->batch / s->dp),
                               .input_tokens = mean_len(r, r->isl),
                               .output_tokens = osl,
                               .same_lengths = !r->inferencex,
                               .lockstep = p->lockstep,
                               .first_burst = true};
        isim_closed_form cf;
        isim_error e = {0};
        isim_status st = isim_serve_closed_loop(m, &hw, &q, &cl, &cf, &res, &e);
        if (!usable(st, &e, &res, why, n))
            return false;
        *ttft_s = cf.ttft_s;
        *tpot_s = cf.tpot_s;
        *parts = (isim_ds_parts){cf.decode_s, cf.prompt_s, cf.burst_ttft_s, cf.steady_ttft_s};
        return true;
    }
    /* Disaggregated: decode workers decode, prefill workers prefill and hand the KV cache
     * over; TTFT queues at the prefill workers. */
    if (!run_shape(m, &hw, r, &r->decode, r->decode.batch, p->kv, &res, why, n))
        return false;
    double clients = ceil((double)r->decode.batch / r->decode.dp);
    double b = isim_serve_admitted(&res, clients, mean_len(r, r->isl), osl);
    if (b < clients && !run_shape(m, &hw, r, &r->decode, b * r->decode.dp, p->kv, &res, why, n))
        return false;
    double tpot = res.tpot_s;
    if (!run_shape(m, &hw, r, &r->prefill, r->prefill.batch, p->kv, &res, why, n))
        return false;
    double s = res.ttft_s;
    double lambda = r->concurrency / (osl * tpot + s) / r->prefill.workers;
    double gp = (double)r->prefill.tp * r->prefill.pp * r->prefill.dp,
           gd = (double)r->decode.tp * r->decode.pp * r->decode.dp;
    double link =
        gp + gd <= (double)hw.domain_size ? hw.scale_up_bytes_per_s : hw.scale_out_bytes_per_s;
    double kv = isim_model_kv_bytes(m, mean_len(r, r->isl), p->kv);
    double ttft = s + isim_md1_wait(lambda * s / r->prefill.batch, s) + kv / (fmin(gp, gd) * link);
    if (b < clients)
        ttft += (ttft + (osl - 1) * tpot) * (clients / b - 1);
    *ttft_s = ttft;
    *tpot_s = tpot;
    *parts = (isim_ds_parts){tpot, s, s, *ttft_s};
    return true;
}

/* The benchmark's requests per replica: ten times its clients (InferenceX sends 10 x the
 * concurrency), at most ISIM_DS_SIM_REQUESTS. */
static int64_t sim_requests(int64_t clients)
{
    int64_t most = clients > ISIM_DS_SIM_REQUESTS ? clients : ISIM_DS_SIM_REQUESTS;
    return 10 * clients < most ? 10 * clients : most;
}

bool isim_ds_simulate(const isim_dataset *d, const isim_ds_row *r, const isim_hw_fit *p,
                      double *ttft_s, double *tpot_s, char *why, size_t n)
{
    if (r->model < 0 || r->hw < 0 || r->disagg) {
        snprintf(why, n, r->disagg ? "disaggregated: not simulated" : "no model or profile");
        return false;
    }
    const isim_model *m = d->models[r->model];
    isim_hw hw;
    isim_hw_apply_fit(d->hw[r->hw], p, &hw);
    const isim_ds_shape *s = &r->agg;
    isim_query q;
    shape_query(m, r, s, s->batch, p->kv, &q);
    isim_step_ctx *x = NULL;
    isim_result res;
    isim_error e = {0};
    isim_status st = isim_step_ctx_new(m, &hw, &q, &x, &res, &e);
    if (st || !x) {
        snprintf(why, n, "%s", st ? e.message : res.reason_detail);
        return false;
    }
    /* the engine ran with its batch column as its limit: every client's request at once */
    const int64_t clients = s->batch;
    isim_sched sc = {.max_seqs = (int64_t)ceil((double)clients / isim_step_dp(x))};
    if (!isim_sched_policy_parse(r->backend, &sc.policy)) /* the engine's own scheduler */
        sc.policy = ISIM_POLICY_VLLM;
    isim_len_dist in = {ISIM_LEN_FIXED, r->isl, 0}, out = {ISIM_LEN_FIXED, r->osl, 0};
    if (r->inferencex) { /* its benchmark template's RANDOM_RANGE_RATIO 0.8 */
        in = (isim_len_dist){ISIM_LEN_UNIFORM, ceil(0.8 * r->isl), r->isl};
        out = (isim_len_dist){ISIM_LEN_UNIFORM, ceil(0.8 * r->osl), r->osl};
    }
    isim_traffic t = {.kind = ISIM_ARRIVE_CLOSED,
                      .clients = clients,
                      .requests = sim_requests(clients),
                      .input = in,
                      .output = out,
                      .seed = 1};
    isim_serve_result *sr = NULL;
    st = isim_serve_run(m, x, &sc, &t, &sr, &e);
    isim_step_ctx_free(x);
    if (st) {
        snprintf(why, n, "%s", e.message);
        return false;
    }
    /* the benchmark's means over its requests */
    *ttft_s = sr->ttft_s.mean;
    *tpot_s = sr->tpot_s.mean;
    isim_serve_result_free(sr);
    return true;
}

/* Row i simulated with its fit (isim_parallel_for). */
static void simulate_row(void *ctx, size_t i)
{
    isim_dataset *d = ctx;
    isim_ds_row *r = &d->rows[i];
    r->sim_ttft_s = r->sim_tpot_s = NAN;
    char why[160];
    if (r->skip[0] || r->fit < 0 ||
        !isim_ds_simulate(d, r, &d->fits[r->fit].p, &r->sim_ttft_s, &r->sim_tpot_s, why,
                          sizeof why))
        r->sim_ttft_s = r->sim_tpot_s = NAN;
}

/* The API server's time per prompt token (HTTP, tokenizer), fitted through the simulation
 * on a fit's training rows: the median of (measured - simulated TTFT) / prompt tokens,
 * held within [0, ISIM_DS_API_S_PER_TOKEN]. NAN when no training row was simulated. */
static double api_per_token(const isim_dataset *d, int fit, double *scratch)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n_rows; i++) {
        const isim_ds_row *r = &d->rows[i];
        if (r->fit == fit && r->train && !isnan(r->sim_ttft_s))
            scratch[n++] = fmin(fmax((r->ttft_s - r->sim_ttft_s) / mean_len(r, r->isl), 0),
                                ISIM_DS_API_S_PER_TOKEN);
    }
    if (!n)
        return NAN;
    qsort(scratch, n, sizeof *scratch, isim_cmp_double);
    return isim_quantile_sorted(scratch, n, 0.5);
}

isim_status isim_dataset_simulate(isim_dataset *d, int threads, isim_error *err)
{
    isim_parallel_for(d->n_rows, threads, simulate_row, d);
    double *scratch = malloc((d->n_rows ? d->n_rows : 1) * sizeof *scratch);
    if (!scratch)
        return ds_fail(err, ISIM_ENOMEM, "", 0, 0, "out of memory");
    for (size_t k = 0; k < d->n_fits; k++)
        d->fits[k].api_s_per_token = api_per_token(d, (int)k, scratch);
    free(scratch);
    /* the API server's time on top of the passes', shown apart: api_s */
    for (size_t i = 0; i < d->n_rows; i++) {
        isim_ds_row *r = &d->rows[i];
        double a = r->fit >= 0 ? d->fits[r->fit].api_s_per_token : NAN;
        r->sim_api_s = isnan(r->sim_ttft_s) || isnan(a) ? NAN : a * mean_len(r, r->isl);
        if (!isnan(r->sim_api_s))
            r->sim_ttft_s += r->sim_api_s;
        else
            r->sim_ttft_s = r->sim_tpot_s = NAN;
    }
    return ISIM_OK;
}

/* ---- loading ---------------------------------------------------------------------------- */

void isim_dataset_free(isim_dataset *d)
{
    if (!d)
        return;
    free(d->rows);
    for (size_t i = 0; i < d->n_models; i++)
        isim_model_free(d->models[i]);
    for (size_t i = 0; i < d->n_hw; i++)
        isim_hw_free(d->hw[i]);
    free(d->models);
    free(d->hw);
    free(d->fits);
    free(d->path);
    free(d);
}

typedef struct {
    const char *system, *backend;
    int isl, osl, concurrency;
    long long ttft_us, tpot_us;
    size_t row;
} dup_key;

static int cmp_dup(const void *a, const void *b)
{
    const dup_key *x = a, *y = b;
    int c = strcmp(x->system, y->system);
    if (!c)
        c = strcmp(x->backend, y->backend);
    if (!c)
        c = (x->isl > y->isl) - (x->isl < y->isl);
    if (!c)
        c = (x->osl > y->osl) - (x->osl < y->osl);
    if (!c)
        c = (x->concurrency > y->concurrency) - (x->concurrency < y->concurrency);
    if (!c)
        c = (x->ttft_us > y->ttft_us) - (x->ttft_us < y->ttft_us);
    if (!c)
        c = (x->tpot_us > y->tpot_us) - (x->tpot_us < y->tpot_us);
    if (!c)
        c = (x->row > y->row) - (x->row < y->row);
    return c;
}

static bool same_measurement(const dup_key *x, const dup_key *y)
{
    return strcmp(x->system, y->system) == 0 && strcmp(x->backend, y->backend) == 0 &&
           x->isl == y->isl && x->osl == y->osl && x->concurrency == y->concurrency &&
           x->ttft_us == y->ttft_us && x->tpot_us == y->tpot_us;
}

static int cmp_int(int a, int b)
{
    return (a > b) - (a < b);
}

/* The order of configurations (every column but the id and the results), then lines. */
static int cmp_row_config(const void *x, const void *y)
{
    const isim_ds_row *a = *(const isim_ds_row *const *)x, *b = *(const isim_ds_row *const *)y;
    int c = strcmp(a->source, b->source);
    if (!c)
        c = strcmp(a->system, b->system);
    if (!c)
        c = strcmp(a->backend, b->backend);
    if (!c)
        c = strcmp(a->model_path, b->model_path);
    if (!c)
        c = cmp_int((int)a->weights, (int)b->weights);
    if (!c)
        c = cmp_int(a->disagg, b->disagg);
    if (!c)
        c = cmp_int(a->isl, b->isl);
    if (!c)
        c = cmp_int(a->osl, b->osl);
    if (!c)
        c = cmp_int(a->concurrency, b->concurrency);
    if (!c)
        c = memcmp(a->raw, b->raw, sizeof a->raw);
    if (!c)
        c = memcmp(&a->prefill, &b->prefill, sizeof a->prefill);
    if (!c)
        c = memcmp(&a->decode, &b->decode, sizeof a->decode);
    return c;
}

static bool same_results(const isim_ds_row *a, const isim_ds_row *b)
{
    return llround(a->ttft_s * 1e6) == llround(b->ttft_s * 1e6) &&
           llround(a->tpot_s * 1e6) == llround(b->tpot_s * 1e6);
}

static void mark_ambiguous(isim_ds_row *r, int line_a, int line_b)
{
    if (!r->skip[0] || strncmp(r->skip, "one configuration", 17) == 0)
        snprintf(r->skip, sizeof r->skip,
                 "one configuration measured with different results (lines %d and %d): runs "
                 "with and without speculative decoding are not told apart",
                 line_a, line_b);
}

/* The rows v[0..n) of one configuration, in the file's order: each whose TTFT or TPOT
 * differs (to the microsecond) from another's is marked with the last such other row after
 * it, else the last before it. In linear time: the last row `l` and the last row `l2` whose
 * results differ from l's are those others. */
static void ambiguous_run(isim_ds_row **v, size_t n)
{
    size_t l = n - 1, l2 = l;
    while (l2 > 0 && same_results(v[l2 - 1], v[l]))
        l2--;
    if (l2-- == 0)
        return; /* one result */
    for (size_t i = 0; i < n; i++) {
        size_t other = !same_results(v[i], v[l]) ? l : l2;
        if (other > i)
            mark_ambiguous(v[i], v[i]->line, v[other]->line);
        else
            mark_ambiguous(v[i], v[other]->line, v[i]->line);
    }
}

static int cmp_row_config_line(const void *x, const void *y)
{
    int c = cmp_row_config(x, y);
    const isim_ds_row *a = *(const isim_ds_row *const *)x, *b = *(const isim_ds_row *const *)y;
    return c ? c : cmp_int(a->line, b->line);
}

/* One configuration of one source measured more than once with different results (on
 * engine versions a patch apart, or the same): the source's runs with and without
 * speculative decoding (MTP) share every column, so which is which cannot be told; all of
 * them are left out. */
static isim_status drop_ambiguous(isim_dataset *d, isim_error *err)
{
    isim_ds_row **v = malloc((d->n_rows ? d->n_rows : 1) * sizeof *v);
    if (!v)
        return ds_fail(err, ISIM_ENOMEM, "", 0, 0, "out of memory");
    for (size_t i = 0; i < d->n_rows; i++)
        v[i] = &d->rows[i];
    qsort(v, d->n_rows, sizeof *v, cmp_row_config_line);
    for (size_t i = 0; i < d->n_rows;) {
        size_t j = i + 1;
        while (j < d->n_rows && cmp_row_config(&v[i], &v[j]) == 0)
            j++;
        ambiguous_run(v + i, j - i);
        i = j;
    }
    free(v);
    return ISIM_OK;
}

/* The same measurement written twice (sources that encode one run differently, under
 * another model name too: DeepSeek-R1's runs appear as DeepSeek-V3's, whose weights R1
 * shares): the same system, engine, lengths, concurrency and TTFT and TPOT to the
 * microsecond. The first predictable row stands for it, the others are left out so that no
 * measurement is both fitted and held out, nor counted twice; when one copy was left out as
 * ambiguous (drop_ambiguous), so are the others. */
static bool ambiguous(const isim_ds_row *r)
{
    return strncmp(r->skip, "one configuration measured", 26) == 0;
}

static isim_status drop_duplicates(isim_dataset *d, isim_error *err)
{
    dup_key *k = malloc((d->n_rows ? d->n_rows : 1) * sizeof *k);
    if (!k)
        return ds_fail(err, ISIM_ENOMEM, "", 0, 0, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < d->n_rows; i++) {
        const isim_ds_row *r = &d->rows[i];
        if (r->skip[0] && !ambiguous(r))
            continue;
        k[n++] = (dup_key){r->system,
                           r->backend,
                           r->isl,
                           r->osl,
                           r->concurrency,
                           llround(r->ttft_s * 1e6),
                           llround(r->tpot_s * 1e6),
                           i};
    }
    qsort(k, n, sizeof *k, cmp_dup);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && same_measurement(&k[i], &k[j]))
            j++;
        const isim_ds_row *amb = NULL;
        for (size_t a = i; a < j && !amb; a++)
            if (ambiguous(&d->rows[k[a].row]))
                amb = &d->rows[k[a].row];
        for (size_t a = i + 1; a < j; a++) {
            isim_ds_row *r = &d->rows[k[a].row];
            if (!r->skip[0])
                snprintf(r->skip, sizeof r->skip, "the measurement of line %d written again%s",
                         d->rows[k[i].row].line,
                         amb ? ", which another copy shows ambiguous (with and without "
                               "speculative decoding)"
                             : "");
        }
        if (amb && !d->rows[k[i].row].skip[0])
            snprintf(d->rows[k[i].row].skip, sizeof d->rows[k[i].row].skip,
                     "the measurement of line %d, which is ambiguous (one configuration "
                     "measured with different results: with and without speculative decoding)",
                     amb->line);
        i = j;
    }
    free(k);
    return ISIM_OK;
}

/* Each row matched with the catalog (model_path with a model's id or aliases, a hub
 * repository; system with a profile's) and its layout read; why when it cannot be
 * predicted. */
static isim_status match_rows(isim_dataset *d, const char *data_dir, isim_error *err)
{
    ds_catalog models, hws = {0};
    isim_status st = catalog_load(&models, data_dir, true, err);
    if (!st)
        st = catalog_load(&hws, data_dir, false, err);
    for (size_t i = 0; !st && i < d->n_rows; i++) {
        isim_ds_row *r = &d->rows[i];
        r->model = catalog_index(&models, d, r->model_path, &st, err);
        if (!st)
            r->hw = catalog_index(&hws, d, r->system, &st, err);
        if (st)
            break;
        if (r->model < 0)
            snprintf(r->skip, sizeof r->skip, "no model named %s in the catalog", r->model_path);
        else if (r->hw < 0)
            snprintf(r->skip, sizeof r->skip, "no hardware profile named %s", r->system);
        else if (r->concurrency < 1)
            snprintf(r->skip, sizeof r->skip,
                     "no clients: no silicon_concurrency, and the batch columns give 0");
        else if (r->disagg)
            disagg_shapes(r, r->skip, sizeof r->skip);
        else
            agg_layout(r, d->models[r->model], r->skip, sizeof r->skip);
        if (!r->skip[0]) {
            /* a layout the step model cannot run (heads not divisible, ...) */
            isim_hw_fit prior;
            isim_ds_prior(d->hw[r->hw], &prior);
            double t, p;
            isim_ds_predict(d, r, &prior, &t, &p, NULL, r->skip, sizeof r->skip);
        }
    }
    catalog_free(&models);
    catalog_free(&hws);
    return st;
}

isim_status isim_dataset_load(const char *csv_path, const char *data_dir, isim_dataset **out,
                              isim_error *err)
{
    *out = NULL;
    isim_dataset *d = calloc(1, sizeof *d);
    if (d)
        d->path = strdup(csv_path);
    if (!d || !d->path) {
        isim_dataset_free(d);
        return ds_fail(err, ISIM_ENOMEM, csv_path, 0, 0, "out of memory");
    }
    parse_ctx c = {NULL, 0, 0};
    uint64_t digest = 0;
    isim_status st = parse_file(csv_path, &c, &digest, err);
    d->rows = c.rows;
    d->n_rows = c.n;
    snprintf(d->digest, sizeof d->digest, "%016llx", (unsigned long long)digest);
    if (!st)
        st = match_rows(d, data_dir, err);
    if (!st)
        st = drop_ambiguous(d, err);
    if (!st)
        st = drop_duplicates(d, err);
    if (st) {
        isim_dataset_free(d);
        return st;
    }
    *out = d;
    return ISIM_OK;
}

/* ---- fitting -------------------------------------------------------------------------------- */

/* A group with fewer training rows than this borrows its hardware's fit over every engine. */
#define MIN_ROWS 20
/* Weight of the pull of each parameter's logarithm towards the profile's value: weak (one
 * such residual counts as much as one row off by 10% when the parameter is off by e). */
#define PRIOR_WEIGHT 0.1
/* Weight of a row's TTFT residual beside its TPOT's (TTFT is noisier: queueing). */
#define TTFT_WEIGHT 0.5
/* The fitted parameters: matmul and HBM efficiencies, per-step overhead, collective
 * latency factor, per-request overhead, kernel launch, the rows a matmul needs for its
 * full rate, the bandwidth at which 4-bit weights stream, the share of fixed-length requests
 * in lock-step, the bandwidth at which routed experts stream, that of int4 weights, the
 * all-to-all latency factor. */
#define N_PARAMS 12

typedef struct {
    const isim_dataset *d;
    const size_t *rows;
    size_t n;
    isim_hw_fit base; /* the prior, and the backend name and kv of this fit */
    double x0[N_PARAMS];
} fit_task_ctx;

/* Efficiencies through their odds (they stay in (0, 1)); times in milliseconds and
 * microseconds so that every parameter starts near 1. */
static void params_of(const double *x, isim_hw_fit *p)
{
    p->eff_flops = x[0] / (1 + x[0]);
    p->eff_hbm = x[1] / (1 + x[1]);
    p->step_overhead_s = x[2] * 1e-3;
    p->coll_latency_scale = x[3];
    p->request_overhead_s = x[4] * 1e-3;
    p->kernel_launch_s = x[5] * 1e-6;
    p->eff_flops_full_rows = x[6];
    p->eff_hbm_fp4 = x[7] / (1 + x[7]);
    p->lockstep = x[8] / (1 + x[8]);
    p->eff_hbm_experts = x[9] / (1 + x[9]);
    p->eff_hbm_int4 = x[10] / (1 + x[10]);
    p->a2a_latency_scale = x[11];
}

static void to_x(const isim_hw_fit *p, double *x)
{
    x[0] = p->eff_flops / (1 - p->eff_flops);
    x[1] = p->eff_hbm / (1 - p->eff_hbm);
    x[2] = fmax(p->step_overhead_s * 1e3, 1e-3);
    x[3] = p->coll_latency_scale;
    x[4] = fmax(p->request_overhead_s * 1e3, 1.0);
    x[5] = fmax(p->kernel_launch_s * 1e6, 0.1);
    x[6] = p->eff_flops_full_rows > 1 ? p->eff_flops_full_rows : 16;
    x[7] = p->eff_hbm_fp4 / (1 - p->eff_hbm_fp4);
    x[8] = fmin(fmax(p->lockstep, 0.05), 0.95) / (1 - fmin(fmax(p->lockstep, 0.05), 0.95));
    x[9] = p->eff_hbm_experts / (1 - p->eff_hbm_experts);
    x[10] = p->eff_hbm_int4 / (1 - p->eff_hbm_int4);
    x[11] = p->a2a_latency_scale;
}

/* A robust loss: the squared result is the soft-L1 loss 2 c^2 (sqrt(1 + (r/c)^2) - 1), which
 * is r^2 near zero and grows as 2 c |r| beyond c (Triggs et al. 2000, "Bundle adjustment",
 * §6.8; scipy.optimize.least_squares' 'soft_l1'). Rows the step model cannot describe
 * (speculative decoding not recorded, a kernel far from the others) pull the fit as a
 * median would, not as a mean. */
#define ROBUST_SCALE 0.1
static double robust(double r)
{
    double u = r / ROBUST_SCALE;
    return copysign(ROBUST_SCALE * sqrt(2 * (sqrt(1 + u * u) - 1)), r);
}

static void fit_residuals(const double *x, double *r, void *ctx)
{
    const fit_task_ctx *c = ctx;
    isim_hw_fit p = c->base;
    params_of(x, &p);
    for (size_t i = 0; i < c->n; i++) {
        const isim_ds_row *row = &c->d->rows[c->rows[i]];
        double ttft, tpot;
        char why[160];
        bool ok = isim_ds_predict(c->d, row, &p, &ttft, &tpot, NULL, why, sizeof why) && tpot > 0 &&
                  ttft > 0;
        r[2 * i] = robust(ok ? log(tpot / row->tpot_s) : log(10.0));
        r[2 * i + 1] = TTFT_WEIGHT * robust(ok ? log(ttft / row->ttft_s) : log(10.0));
    }
    /* the request overhead, the rows for the full rate and the lock-step share have no
     * prior: GPU profiles do not state them */
    for (int k = 0; k < N_PARAMS; k++)
        r[2 * c->n + (size_t)k] =
            k >= 4 && k != 5 && k != 7 && k < 9 ? 0 : PRIOR_WEIGHT * log(x[k] / c->x0[k]);
}

typedef struct {
    isim_dataset *d;
    size_t fit; /* index into d->fits */
    isim_dtype kv;
    size_t *rows;
    size_t n;
    isim_hw_fit result;
    double rms; /* of the rows' residuals */
    isim_status st;
    isim_error err;
} fit_task;

static void run_fit_task(fit_task *t)
{
    const isim_ds_fit *f = &t->d->fits[t->fit];
    fit_task_ctx c = {.d = t->d, .rows = t->rows, .n = t->n};
    isim_ds_prior(t->d->hw[f->hw], &c.base);
    snprintf(c.base.backend, sizeof c.base.backend, "%s", f->backend);
    c.base.kv = t->kv;
    to_x(&c.base, c.x0);
    double x[N_PARAMS];
    memcpy(x, c.x0, sizeof x);
    t->st = isim_fit_positive(N_PARAMS, x, 2 * t->n + N_PARAMS, fit_residuals, &c, NULL, &t->err);
    t->result = c.base;
    params_of(x, &t->result);
    double *r = malloc((2 * t->n + N_PARAMS) * sizeof *r);
    if (!r) {
        t->st = ds_fail(&t->err, ISIM_ENOMEM, "", 0, 0, "out of memory");
        return;
    }
    fit_residuals(x, r, &c);
    double ss = 0;
    for (size_t i = 0; i < t->n; i++)
        ss += r[2 * i] * r[2 * i];
    t->rms = t->n ? sqrt(ss / (double)t->n) : 0;
    free(r);
}

/* Fit task i of the array ctx (isim_parallel_for). */
static void fit_one(void *ctx, size_t i)
{
    run_fit_task(&((fit_task *)ctx)[i]);
}

/* The fit that predicts row r: its engine's own, else its hardware's over every engine. */
static int fit_of(const isim_dataset *d, const isim_ds_row *r)
{
    int all = -1;
    for (size_t i = 0; i < d->n_fits; i++) {
        const isim_ds_fit *f = &d->fits[i];
        if (f->hw != r->hw)
            continue;
        if (strcmp(f->backend, "all") == 0)
            all = (int)i;
        else if (f->own && strcmp(f->backend, r->backend) == 0)
            return (int)i;
    }
    return all;
}

isim_status isim_dataset_fit(isim_dataset *d, int threads, isim_error *err)
{
    /* the groups: per profile, every engine together ("all") and each engine with enough
     * training rows of its own */
    free(d->fits);
    d->fits = NULL;
    d->n_fits = 0;
    size_t cap = d->n_hw * (ISIM_MAX_FITS + 1) + 1;
    d->fits = calloc(cap, sizeof *d->fits);
    if (!d->fits)
        return ds_fail(err, ISIM_ENOMEM, "", 0, 0, "out of memory");
    for (size_t h = 0; h < d->n_hw; h++) {
        const char *seen[ISIM_MAX_FITS];
        size_t n_seen = 0;
        size_t all = d->n_fits++;
        d->fits[all].hw = (int)h;
        snprintf(d->fits[all].backend, sizeof d->fits[all].backend, "all");
        d->fits[all].own = true;
        d->fits[all].api_s_per_token = NAN;
        for (size_t i = 0; i < d->n_rows; i++) {
            const isim_ds_row *r = &d->rows[i];
            if (r->hw != (int)h || r->skip[0])
                continue;
            d->fits[all].n_train += r->train;
            bool known = false;
            for (size_t k = 0; k < n_seen; k++)
                known |= strcmp(seen[k], r->backend) == 0;
            if (known || n_seen + 1 == ISIM_MAX_FITS)
                continue;
            seen[n_seen++] = r->backend;
            isim_ds_fit *f = &d->fits[d->n_fits++];
            f->hw = (int)h;
            f->api_s_per_token = NAN;
            snprintf(f->backend, sizeof f->backend, "%s", r->backend);
        }
        for (size_t k = all + 1; k < d->n_fits; k++)
            for (size_t i = 0; i < d->n_rows; i++) {
                const isim_ds_row *r = &d->rows[i];
                d->fits[k].n_train += r->hw == (int)h && !r->skip[0] && r->train &&
                                      strcmp(r->backend, d->fits[k].backend) == 0;
            }
        for (size_t k = all + 1; k < d->n_fits; k++)
            d->fits[k].own = d->fits[k].n_train >= MIN_ROWS;
        if (d->fits[all].n_train == 0)
            d->fits[all].own = false;
    }
    /* one task per (fit, KV precision): the KV cache's precision is the engine's choice,
     * taken as the one that fits the training rows better */
    static const isim_dtype kvs[2] = {ISIM_BF16, ISIM_FP8};
    fit_task *tasks = calloc(2 * d->n_fits + 1, sizeof *tasks);
    if (!tasks)
        return ds_fail(err, ISIM_ENOMEM, "", 0, 0, "out of memory");
    size_t n_tasks = 0;
    isim_status st = ISIM_OK;
    for (size_t k = 0; k < d->n_fits && !st; k++) {
        isim_ds_fit *f = &d->fits[k];
        if (!f->own)
            continue;
        size_t *rows = malloc(f->n_train * sizeof *rows);
        if (!rows) {
            st = ds_fail(err, ISIM_ENOMEM, "", 0, 0, "out of memory");
            break;
        }
        size_t n = 0;
        bool all = strcmp(f->backend, "all") == 0;
        for (size_t i = 0; i < d->n_rows; i++) {
            const isim_ds_row *r = &d->rows[i];
            if (r->hw == f->hw && !r->skip[0] && r->train &&
                (all || strcmp(r->backend, f->backend) == 0))
                rows[n++] = i;
        }
        for (int v = 0; v < 2; v++) {
            fit_task *t = &tasks[n_tasks++];
            t->d = d;
            t->fit = k;
            t->kv = kvs[v];
            t->rows = rows; /* shared; freed with the second */
            t->n = n;
        }
    }
    if (!st)
        isim_parallel_for(n_tasks, threads, fit_one, tasks);
    /* the better KV precision of each fit */
    for (size_t i = 0; i + 1 < n_tasks && !st; i += 2) {
        fit_task *a = &tasks[i], *b = &tasks[i + 1];
        if (a->st && b->st) {
            const isim_ds_fit *f = &d->fits[a->fit];
            st = ds_fail(err, a->st, "", 0, 0, "fitting %s (%s) on %zu training rows: %s",
                         d->hw[f->hw]->id, f->backend, a->n, a->err.message);
            break;
        }
        fit_task *best = a->st ? b : b->st ? a : (b->rms < a->rms ? b : a);
        d->fits[a->fit].p = best->result;
        d->fits[a->fit].train_rms_log = best->rms;
    }
    for (size_t i = 1; i < n_tasks; i += 2)
        free(tasks[i].rows);
    free(tasks);
    if (st)
        return st;
    /* every predictable row with its fit, and with the profile's own values */
    for (size_t i = 0; i < d->n_rows; i++) {
        isim_ds_row *r = &d->rows[i];
        if (r->skip[0])
            continue;
        char why[160];
        isim_hw_fit prior;
        isim_ds_prior(d->hw[r->hw], &prior);
        isim_ds_predict(d, r, &prior, &r->prior_ttft_s, &r->prior_tpot_s, &r->parts, why,
                        sizeof why);
        r->fit = fit_of(d, r);
        if (r->fit < 0 || !d->fits[r->fit].own) {
            r->pred_ttft_s = r->prior_ttft_s;
            r->pred_tpot_s = r->prior_tpot_s;
            r->fit = -1;
            continue;
        }
        isim_ds_predict(d, r, &d->fits[r->fit].p, &r->pred_ttft_s, &r->pred_tpot_s, &r->parts, why,
                        sizeof why);
        d->fits[r->fit].n_heldout += !r->train;
    }
    return ISIM_OK;
}

/* ---- writing the fits into a profile ------------------------------------------------------ */

/* Closes f, written to path: a full disk may show only at the flush or, with delayed
 * allocation, at fsync. */
static isim_status close_written(FILE *f, const char *path, isim_error *err)
{
    int e = 0;
    if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0)
        e = errno ? errno : EIO;
    if (fclose(f) != 0 && !e)
        e = errno ? errno : EIO;
    return e ? ds_fail(err, ISIM_EIO, path, 0, 0, "cannot write: %s", strerror(e)) : ISIM_OK;
}

/* The file's text without its top-level `fitted:` section (and the comment lines just
 * before it that introduce it). */
static char *without_fitted(const char *text)
{
    size_t n = strlen(text);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    bool in_fitted = false, intro = false;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) + 1 : strlen(line);
        bool top = line[0] != ' ' && line[0] != '\t' && line[0] != '#' && line[0] != '\n';
        if (top)
            in_fitted = strncmp(line, "fitted:", 7) == 0;
        /* the introducing comment: its first line and the comment lines after it */
        intro =
            strncmp(line, "# Fitted by infersim validate", 29) == 0 || (intro && line[0] == '#');
        if (!in_fitted && !intro) {
            memcpy(out + o, line, len);
            o += len;
        }
        line += len;
    }
    while (o > 1 && out[o - 1] == '\n' && out[o - 2] == '\n')
        o--;
    out[o] = 0;
    return out;
}

/* ISIM_ENOMEM, and nothing written, when the held-out accuracy cannot be computed: a fit
 * without it would read as a fit without held-out rows. */
static isim_status write_fit(FILE *f, const isim_ds_fit *x, const isim_dataset *d)
{
    /* held-out accuracy of the rows this fit predicts */
    double *m = malloc((d->n_rows ? d->n_rows : 1) * sizeof *m);
    double *p = malloc((d->n_rows ? d->n_rows : 1) * sizeof *p);
    if (!m || !p) {
        free(m);
        free(p);
        return ISIM_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < d->n_rows; i++) {
        const isim_ds_row *r = &d->rows[i];
        if (r->skip[0] || r->train || r->fit < 0 || &d->fits[r->fit] != x)
            continue;
        m[k] = r->tpot_s;
        p[k] = r->pred_tpot_s;
        k++;
    }
    isim_accuracy a;
    isim_status st = isim_accuracy_of(m, p, k, &a);
    free(m);
    free(p);
    if (st)
        return st;
    fprintf(
        f,
        "    %s: {flops: %.4g, flops_full_rows: %.4g, hbm: %.4g, hbm_fp4: %.4g, hbm_int4: %.4g, "
        "hbm_experts: %.4g, all_to_all_latency_scale: %.4g, "
        "step_overhead_us: %.4g, "
        "kernel_launch_us: %.4g, collective_latency_scale: %.4g, request_overhead_us: %.4g, "
        "lockstep: %.3g, kv: %s, train_rows: %zu",
        x->backend, x->p.eff_flops, x->p.eff_flops_full_rows, x->p.eff_hbm, x->p.eff_hbm_fp4,
        x->p.eff_hbm_int4, x->p.eff_hbm_experts, x->p.a2a_latency_scale, x->p.step_overhead_s * 1e6,
        x->p.kernel_launch_s * 1e6, x->p.coll_latency_scale, x->p.request_overhead_s * 1e6,
        x->p.lockstep, isim_dtype_name(x->p.kv), x->n_train);
    if (a.n)
        fprintf(f,
                ", heldout_rows: %zu, heldout_tpot_median_abs_pct: %.3g, heldout_tpot_p90_abs_pct: "
                "%.3g",
                a.n, a.median_abs_pct, a.p90_abs_pct);
    fprintf(f, "}\n");
    return ISIM_OK;
}

isim_status isim_dataset_write_profile(const isim_dataset *d, size_t hw, const char *date,
                                       isim_error *err)
{
    const isim_hw *h = d->hw[hw];
    const isim_ds_fit *all = NULL;
    for (size_t i = 0; i < d->n_fits; i++)
        if (d->fits[i].hw == (int)hw && d->fits[i].own && strcmp(d->fits[i].backend, "all") == 0)
            all = &d->fits[i];
    if (!all)
        return ds_fail(err, ISIM_EINVAL, h->path, 0, 0, "no fit for %s: no training rows", h->id);
    FILE *f = fopen(h->path, "rb");
    if (!f)
        return ds_fail(err, ISIM_EIO, h->path, 0, 0, "cannot read: %s", strerror(errno));
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    char buf[4096];
    size_t got;
    while (mem && (got = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, got, mem);
    fclose(f);
    if (!mem || fclose(mem) != 0 || !text) {
        free(text);
        return ds_fail(err, ISIM_ENOMEM, h->path, 0, 0, "out of memory");
    }
    char *kept = without_fitted(text);
    free(text);
    if (!kept)
        return ds_fail(err, ISIM_ENOMEM, h->path, 0, 0, "out of memory");
    size_t tn = strlen(h->path) + 32;
    char *tmp = malloc(tn);
    FILE *o = NULL;
    if (tmp) {
        snprintf(tmp, tn, "%s.tmp-%ld", h->path, (long)getpid());
        o = fopen(tmp, "wb");
    }
    if (!o) {
        isim_status st =
            tmp ? ds_fail(err, ISIM_EIO, h->path, 0, 0, "cannot write: %s", strerror(errno))
                : ds_fail(err, ISIM_ENOMEM, h->path, 0, 0, "out of memory");
        free(tmp);
        free(kept);
        return st;
    }
    const char *base = strrchr(d->path, '/');
    base = base ? base + 1 : d->path;
    size_t n_total = 0;
    for (size_t i = 0; i < d->n_rows; i++)
        n_total += d->rows[i].hw == (int)hw && !d->rows[i].skip[0];
    fputs(kept, o);
    fprintf(
        o,
        "\n# Fitted by infersim validate --dataset (docs/validation.md); rewritten on each run\n"
        "# with --write-profiles. 'all' replaces the values above; an engine's own applies\n"
        "# when a query names it (--backend).\n"
        "fitted:\n"
        "  source: \"infersim validate --dataset %s --write-profiles, %s: GSL least squares of "
        "ln(predicted / measured) TPOT over the training rows of this hardware (%zu rows "
        "predicted, %zu for training), per engine with %d or more rows\"\n"
        "  dataset: \"%s\"\n"
        "  digest: \"fnv1a64:%s\"\n"
        "  split: \"%s\"\n"
        "  date: \"%s\"\n"
        "  backends:\n",
        base, date, n_total, all->n_train, MIN_ROWS, base, d->digest, ISIM_DS_SPLIT_RULE, date);
    isim_status fit_st = write_fit(o, all, d);
    for (size_t i = 0; !fit_st && i < d->n_fits; i++)
        if (d->fits[i].hw == (int)hw && d->fits[i].own && &d->fits[i] != all)
            fit_st = write_fit(o, &d->fits[i], d);
    free(kept);
    /* the profile as rewritten must load, or the previous one stays: a fit can land outside
     * what the reader takes */
    isim_status st = close_written(o, h->path, err);
    if (!st && fit_st)
        st = ds_fail(err, fit_st, h->path, 0, 0, "out of memory");
    isim_hw *check = NULL;
    isim_error le;
    if (!st && isim_hw_load(tmp, &check, &le))
        st = ds_fail(err, ISIM_ESCHEMA, h->path, 0, 0,
                     "the fitted profile would not load, so it was not written: %s", le.message);
    isim_hw_free(check);
    if (!st && rename(tmp, h->path) != 0)
        st = ds_fail(err, ISIM_EIO, h->path, 0, 0, "cannot write: %s", strerror(errno));
    if (st)
        remove(tmp);
    free(tmp);
    return st;
}
