/* Running a scenario (docs/scenarios.md): the base point as written, every point of its
 * sweeps (settings set by path, model and hardware values changed by overrides before
 * validation), each planned per model under its cost model, and the sensitivity of each
 * model's recommended configuration to its inputs. Everything a sweep or a sensitivity
 * range will change is checked before the first plan runs. Points are independent and
 * run in parallel; the result does not depend on the number of threads. */
#include "planner/internal.h"
#include "sim/serve.h"

#include <pthread.h>
#include <unistd.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool isim_scenario_price(const isim_hw *h, const isim_scenario_settings *s, double *usd_per_h,
                         char *why, size_t n)
{
    if (s->cost_model == ISIM_COST_CLOUD) {
        *usd_per_h = h->cloud_usd_per_h;
        return true;
    }
    if (!h->has_purchase) {
        snprintf(why, n, "%s has no purchase price (price.purchase_usd and life_years)", h->id);
        return false;
    }
    if (!h->has_power) {
        snprintf(why, n, "%s has no power rating (power.tdp_w)", h->id);
        return false;
    }
    /* the IT load of the device and its share of the server, in kW */
    double it_kw = h->tdp_w / 1000 * s->server_power_factor;
    double capex = h->purchase_usd / (h->life_years * 8760);
    double energy = it_kw * s->power_fraction_of_tdp * s->pue * s->electricity_usd_per_kwh;
    double space = it_kw * s->colocation_usd_per_kw_month * 12 / 8760;
    *usd_per_h = capex + energy + space;
    return true;
}

bool isim_scenario_energy(const isim_scenario_point *p, const isim_plan_point *x, double *device_j,
                          double *facility_j)
{
    double w = p->device_w ? p->device_w[x->hw] : NAN;
    if (!(w > 0) || !(x->batch > 0)) {
        *device_j = *facility_j = NAN;
        return false;
    }
    /* energy = power x time; one decode step of tpot makes `batch` tokens per replica */
    *device_j = x->devices * w * x->tpot_s / x->batch;
    *facility_j = *device_j * p->settings.server_power_factor * p->settings.pue;
    return true;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* What a sweep's or a sensitivity range's path changes: a setting (key NULL), or the key
 * path of one model or hardware specification, or of every one (ISIM_SCENARIO_EVERY). */
typedef struct {
    bool hw;
    size_t index;
    const char *key;
} target;

/* What a run shares between its workers (read-only once they start). */
typedef struct {
    const isim_scenario *s;
    const isim_scenario_run_opts *o;
    isim_scenario_result *res;
    char (*hw_path)[1024];
    char (*model_path)[1024];
    const char **hw_ids, **model_ids; /* the loaded specifications' ids */
    target *sweep_target;             /* per sweep */
    target *range_target;             /* per sensitivity range */
    size_t n_groups;
    size_t *group_of;   /* per sweep */
    size_t *group_size; /* per group */
    int plan_threads;
    pthread_mutex_t lock; /* progress and the first error */
    size_t done, total;
    isim_status st;
    isim_error err;
} run;

/* ---- overrides from sweep values --------------------------------------------------- */

typedef struct {
    isim_override ov[64];
    /* "what-if: PATH = VALUE (scenario ID)", each part at most ISIM_MAX_NAME */
    char source[64][3 * ISIM_MAX_NAME + 40];
    size_t n;
} overrides;

/* Whether target t changes hardware (hw) or model specification i. */
static bool names(const target *t, bool hw, size_t i)
{
    return t->key && t->hw == hw && (t->index == ISIM_SCENARIO_EVERY || t->index == i);
}

static bool add_override(overrides *o, const isim_scenario *s, const char *sweep_path,
                         const char *key, const isim_scenario_value *v)
{
    if (o->n == sizeof o->ov / sizeof o->ov[0])
        return false;
    isim_override *x = &o->ov[o->n];
    memset(x, 0, sizeof *x);
    x->path = key;
    char *end = NULL;
    double f = v->text[0] == 'x' ? strtod(v->text + 1, &end) : 0;
    if (end && *end == '\0' && f > 0)
        x->scale = f;
    else
        x->value = v->text;
    snprintf(o->source[o->n], sizeof o->source[o->n], "what-if: %s = %s (scenario %s)", sweep_path,
             v->text, s->id);
    x->source = o->source[o->n];
    x->file = s->path;
    x->line = v->line;
    x->column = v->column;
    o->n++;
    return true;
}

/* The overrides the sweeps (at value index idx[i], -1 for none) make to hardware (hw) or
 * model specification `spec`. */
static bool sweep_overrides(const run *c, const long *idx, bool hw, size_t spec, overrides *o)
{
    const isim_scenario *s = c->s;
    o->n = 0;
    for (size_t i = 0; idx && i < s->n_sweeps; i++) {
        const isim_scenario_sweep *w = &s->sweeps[i];
        const target *t = &c->sweep_target[i];
        if (idx[i] >= 0 && names(t, hw, spec) &&
            !add_override(o, s, w->path, t->key, &w->values[idx[i]]))
            return false;
    }
    return true;
}

static isim_status too_many(const isim_scenario *s, isim_error *err)
{
    return isim__fail_at(err, s->path, 0, 0, "more than 64 sweeps change one specification");
}

/* ---- one point ---------------------------------------------------------------------- */

void isim_scenario_request(const isim_scenario *s, const isim_scenario_settings *v,
                           const isim_model *m, const isim_model *draft, isim_plan_request *r)
{
    isim_plan_request_init(r);
    r->fidelity = s->fidelity;
    r->model = m;
    r->input_tokens = v->input_tokens;
    r->output_tokens = v->output_tokens;
    r->prefix_hit_rate = v->prefix_cache_hit_rate;
    r->min_tokens_per_s_per_user = v->min_tokens_per_s_per_user;
    r->max_cost_usd_per_mtok = v->max_cost_usd_per_mtok;
    r->demand_tokens_per_s = v->request_rate_per_s * v->output_tokens;
    r->demand_sequences = v->concurrency;
    r->tpot_slo_s = v->tpot_ms / 1e3;
    r->ttft_slo_s = v->ttft_ms / 1e3;
    /* SLOs at a percentile are simulated under the request rate; a concurrency alone is
     * no arrival process, and the report says the percentile was not applied */
    if (v->percentile > 0 && v->request_rate_per_s > 0 && s->fidelity == ISIM_DEPLOY)
        r->slo_percentile = v->percentile;
    r->weights = s->n_weights ? s->weights : NULL;
    r->n_weights = s->n_weights;
    r->kv = s->n_kv ? s->kv : NULL;
    r->n_kv = s->n_kv;
    /* a sweep's single precision in place of the lists */
    if (v->weights < ISIM_DTYPE_COUNT) {
        r->weights = &v->weights;
        r->n_weights = 1;
    }
    if (v->kv < ISIM_DTYPE_COUNT) {
        r->kv = &v->kv;
        r->n_kv = 1;
    }
    r->draft = draft;
    r->draft_weights = s->spec_draft_weights;
    r->spec_alpha = v->spec_alpha;
    r->spec_gamma_max = (int)v->spec_gamma_max;
    r->max_devices = (int)v->max_devices;
    r->customer_alpha = v->customer_alpha;
    r->ttft_objective = s->ttft_objective;
    r->grid_devices = r->grid_batch = (int)v->grid;
}

static void point_release(isim_scenario_point *p, size_t n_models)
{
    for (size_t m = 0; p->plans && m < n_models; m++)
        isim_plan_free(p->plans[m]);
    free(p->plans);
    free(p->values);
    free(p->usd_per_device_h);
    free(p->device_w);
    free(p->unpriced);
    free(p->hw_index);
    memset(p, 0, sizeof *p);
}

/* Runs the point whose sweep values are idx (NULL: the base). */
static isim_status run_point(run *c, const long *idx, isim_scenario_point *p, isim_error *err)
{
    const isim_scenario *s = c->s;
    isim_scenario_result *res = c->res;
    const size_t nh = res->n_hw, nm = res->n_models;
    isim_status st = ISIM_OK;
    isim_hw **hw = calloc(nh, sizeof *hw);
    const isim_hw **priced = calloc(nh, sizeof *priced);
    double *price = calloc(nh, sizeof *price);
    p->values = calloc(s->n_sweeps ? s->n_sweeps : 1, sizeof *p->values);
    p->usd_per_device_h = calloc(nh, sizeof *p->usd_per_device_h);
    p->device_w = calloc(nh, sizeof *p->device_w);
    p->unpriced = calloc(nh, sizeof *p->unpriced);
    p->hw_index = calloc(nh, sizeof *p->hw_index);
    p->plans = calloc(nm, sizeof *p->plans);
    if (!hw || !priced || !price || !p->values || !p->usd_per_device_h || !p->device_w ||
        !p->unpriced || !p->hw_index || !p->plans) {
        st = isim__plan_fail(err, "out of memory");
        goto cleanup;
    }
    p->settings = s->settings;
    for (size_t i = 0; idx && i < s->n_sweeps; i++) {
        const isim_scenario_value *v = &s->sweeps[i].values[idx[i]];
        p->values[i] = v->text;
        if (isim_scenario_is_setting(s->sweeps[i].path) &&
            (st = isim_scenario_set(&p->settings, s->sweeps[i].path, v->text, s->path, v->line,
                                    v->column, err)))
            goto cleanup;
    }
    overrides ov;
    for (size_t h = 0; h < nh; h++) {
        if (!sweep_overrides(c, idx, true, h, &ov)) {
            st = too_many(s, err);
            goto cleanup;
        }
        if (ov.n && (st = isim_hw_load_with(c->hw_path[h], ov.ov, ov.n, &hw[h], err)))
            goto cleanup;
        const isim_hw *use = hw[h] ? hw[h] : res->hw[h];
        p->device_w[h] = use->has_power ? use->tdp_w * p->settings.power_fraction_of_tdp : NAN;
        if (isim_scenario_price(use, &p->settings, &p->usd_per_device_h[h], p->unpriced[h],
                                sizeof p->unpriced[h])) {
            priced[p->n_priced] = use;
            price[p->n_priced] = p->usd_per_device_h[h];
            p->hw_index[p->n_priced++] = h;
        } else {
            p->usd_per_device_h[h] = NAN;
        }
    }
    for (size_t m = 0; m < nm && p->n_priced; m++) {
        if (!sweep_overrides(c, idx, false, m, &ov)) {
            st = too_many(s, err);
            goto cleanup;
        }
        isim_model *variant = NULL;
        if (ov.n && (st = isim_model_load_with(c->model_path[m], ov.ov, ov.n, &variant, err)))
            goto cleanup;
        isim_plan_request r;
        isim_scenario_request(s, &p->settings, variant ? variant : res->models[m], res->draft, &r);
        r.threads = c->plan_threads;
        r.hw = priced;
        r.n_hw = p->n_priced;
        r.usd_per_device_h = price;
        st = isim_plan_run(&r, &p->plans[m], err);
        isim_model_free(variant);
        if (st)
            goto cleanup;
    }
cleanup:
    for (size_t h = 0; hw && h < nh; h++)
        isim_hw_free(hw[h]);
    free(hw);
    free(priced);
    free(price);
    return st;
}

/* The sweep value indices of point k: groups in order, the last moving fastest. */
static void point_indices(const run *c, size_t k, long *idx)
{
    size_t digit[64];
    for (size_t g = c->n_groups; g-- > 0;) {
        digit[g] = k % c->group_size[g];
        k /= c->group_size[g];
    }
    for (size_t i = 0; i < c->s->n_sweeps; i++)
        idx[i] = (long)digit[c->group_of[i]];
}

typedef struct {
    run *c;
    size_t first, step;
} worker_job;

static void *worker(void *arg)
{
    worker_job *j = arg;
    run *c = j->c;
    long idx[64];
    for (size_t k = j->first; k < c->res->n_points; k += j->step) {
        pthread_mutex_lock(&c->lock);
        bool stop = c->st != ISIM_OK;
        pthread_mutex_unlock(&c->lock);
        if (stop)
            break;
        point_indices(c, k, idx);
        isim_error e = {0};
        isim_status st = run_point(c, idx, &c->res->points[k], &e);
        pthread_mutex_lock(&c->lock);
        if (st && !c->st) {
            c->st = st;
            c->err = e;
        }
        c->done++;
        if (c->o->progress)
            c->o->progress(c->o->progress_ctx, c->done, c->total);
        pthread_mutex_unlock(&c->lock);
    }
    return NULL;
}

/* ---- checks before any work ---------------------------------------------------------- */

/* Checks value v of a setting, or loads every specification the target names with it
 * (none written). */
static isim_status check_value(const run *c, const char *path, const target *t,
                               const isim_scenario_value *v, isim_error *err)
{
    const isim_scenario *s = c->s;
    const isim_scenario_result *res = c->res;
    if (!t->key) {
        isim_scenario_settings probe = s->settings;
        return isim_scenario_set(&probe, path, v->text, s->path, v->line, v->column, err);
    }
    size_t n = t->hw ? res->n_hw : res->n_models;
    for (size_t i = 0; i < n; i++) {
        if (!names(t, t->hw, i))
            continue;
        overrides o = {.n = 0};
        add_override(&o, s, path, t->key, v);
        isim_status st;
        if (t->hw) {
            isim_hw *x = NULL;
            st = isim_hw_load_with(c->hw_path[i], o.ov, 1, &x, err);
            isim_hw_free(x);
        } else {
            isim_model *x = NULL;
            st = isim_model_load_with(c->model_path[i], o.ov, 1, &x, err);
            isim_model_free(x);
        }
        if (st)
            return st;
    }
    return ISIM_OK;
}

/* What `path` (written at line:column) changes, its id resolved among the loaded
 * specifications' as the loader resolves it. */
static isim_status resolve(const run *c, const char *path, int line, int column, target *t,
                           isim_error *err)
{
    const isim_scenario_result *res = c->res;
    memset(t, 0, sizeof *t);
    if (isim_scenario_is_setting(path))
        return ISIM_OK;
    t->hw = strncmp(path, "hw.", 3) == 0;
    return isim_scenario_path_spec(path, t->hw ? c->hw_ids : c->model_ids,
                                   t->hw ? res->n_hw : res->n_models, &t->index, &t->key,
                                   c->s->path, line, column, err);
}

static isim_status load_specs(run *c, isim_error *err)
{
    const isim_scenario *s = c->s;
    isim_scenario_result *res = c->res;
    const char *dir = c->o->data_dir;
    char **all = NULL;
    isim_status st = ISIM_OK;
    bool every = s->n_hw == 1 && strcmp(s->hw[0].text, "all") == 0;
    size_t n_ids = s->n_hw;
    if (every) {
        if ((st = isim_catalog_list(dir, "hw-profiles", &all, err)))
            return st;
        for (n_ids = 0; all[n_ids]; n_ids++)
            ;
    }
    res->hw = calloc(n_ids ? n_ids : 1, sizeof *res->hw);
    c->hw_path = calloc(n_ids ? n_ids : 1, sizeof *c->hw_path);
    res->models = calloc(s->n_models, sizeof *res->models);
    c->model_path = calloc(s->n_models, sizeof *c->model_path);
    if (!res->hw || !c->hw_path || !res->models || !c->model_path) {
        st = isim__plan_fail(err, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < n_ids && !st; i++) {
        const char *id = every ? all[i] : s->hw[i].text;
        isim_error e = {0};
        isim_hw *h = NULL;
        st = isim_catalog_path(dir, "hw", id, c->hw_path[res->n_hw], sizeof c->hw_path[0], &e);
        if (!st)
            st = isim_hw_load(c->hw_path[res->n_hw], &h, &e);
        if (st) {
            if (every || e.line)
                *err = e;
            else
                isim__fail_at(err, s->path, s->hw[i].line, s->hw[i].column, "%s", e.message);
            break;
        }
        for (size_t k = 0; k < res->n_hw; k++)
            if (strcmp(res->hw[k]->id, h->id) == 0) {
                st = isim__fail_at(err, s->path, s->hw[i].line, s->hw[i].column,
                                   "hardware '%s' is listed twice", id);
                isim_hw_free(h);
                h = NULL;
                break;
            }
        /* 'all' in the deploy fidelity: the profiles a deployment can use */
        if (h && every && s->fidelity == ISIM_DEPLOY && !h->has_serving) {
            isim_hw_free(h);
            continue;
        }
        if (h)
            res->hw[res->n_hw++] = h;
    }
    for (size_t i = 0; i < s->n_models && !st; i++) {
        isim_error e = {0};
        st = isim_catalog_path(dir, "model", s->models[i].text, c->model_path[i],
                               sizeof c->model_path[0], &e);
        if (!st)
            st = isim_model_load(c->model_path[i], &res->models[res->n_models], &e);
        if (st) {
            if (e.line)
                *err = e;
            else
                isim__fail_at(err, s->path, s->models[i].line, s->models[i].column, "%s",
                              e.message);
            break;
        }
        res->n_models++;
        for (size_t k = 0; k + 1 < res->n_models; k++)
            if (strcmp(res->models[k]->id, res->models[res->n_models - 1]->id) == 0) {
                st = isim__fail_at(err, s->path, s->models[i].line, s->models[i].column,
                                   "model '%s' is listed twice", s->models[i].text);
                break;
            }
    }
    c->hw_ids = calloc(res->n_hw ? res->n_hw : 1, sizeof *c->hw_ids);
    c->model_ids = calloc(res->n_models ? res->n_models : 1, sizeof *c->model_ids);
    if (!st && (!c->hw_ids || !c->model_ids))
        st = isim__plan_fail(err, "out of memory");
    for (size_t i = 0; !st && i < res->n_hw; i++)
        c->hw_ids[i] = res->hw[i]->id;
    for (size_t i = 0; !st && i < res->n_models; i++)
        c->model_ids[i] = res->models[i]->id;
    if (!st && s->spec_draft) {
        isim_error e = {0};
        if ((st = isim_catalog_model(dir, s->spec_draft, &res->draft, &e)))
            isim__fail_at(err, s->path, s->spec_draft_line, s->spec_draft_column,
                          "search.spec_draft: %s", e.message);
    }
cleanup:
    isim_ids_free(all);
    return st;
}

/* Where setting `path` was written; 0 when it was not (its default). */
static void setting_place(const isim_scenario *s, const char *path, int *line, int *column)
{
    *line = *column = 0;
    for (size_t i = 0; i < s->n_facts; i++)
        if (strcmp(s->facts[i].path, path) == 0) {
            *line = s->facts[i].line;
            *column = s->facts[i].column;
        }
}

/* A base workload longer than every model's context (or the draft's) is a mistake in the
 * file, refused at the longer of its two lengths; a sweep point beyond a model's context is
 * infeasible for that model only, and its plan says why. */
static isim_status check_context(const run *c, isim_error *err)
{
    const isim_scenario *s = c->s;
    const isim_scenario_result *res = c->res;
    double in = s->settings.input_tokens, out = s->settings.output_tokens;
    const isim_model *longest = res->models[0];
    for (size_t m = 1; m < res->n_models; m++)
        if (res->models[m]->max_context > longest->max_context)
            longest = res->models[m];
    char why[200];
    const char *also;
    if (!isim_model_context_fits(longest, in, out, false, why, sizeof why))
        also = res->n_models > 1 ? ", the longest context of the scenario's models" : "";
    else if (res->draft && !isim_model_context_fits(res->draft, in, out, true, why, sizeof why))
        also = " (search.spec_draft)";
    else
        return ISIM_OK;
    int line, column;
    setting_place(s, in >= out ? "workload.input_tokens" : "workload.output_tokens", &line,
                  &column);
    return isim__fail_at(err, s->path, line, column, "%s%s", why, also);
}

static isim_status check_scenario(run *c, isim_error *err)
{
    const isim_scenario *s = c->s;
    const isim_scenario_settings *v = &s->settings;
    isim_status cst = check_context(c, err);
    if (cst)
        return cst;
    if (s->fidelity == ISIM_PAPER && (v->ttft_ms > 0 || v->concurrency > 0 || s->ttft_objective))
        return isim__fail_at(err, s->path, 0, 0,
                             "the paper fidelity has no TTFT and no concurrency: drop "
                             "slo.ttft_ms, workload.concurrency and search.ttft_objective, or "
                             "use the deploy fidelity");
    for (size_t i = 0; i < s->n_sweeps; i++) {
        const isim_scenario_sweep *w = &s->sweeps[i];
        if (s->fidelity == ISIM_PAPER &&
            (strcmp(w->path, "slo.ttft_ms") == 0 || strcmp(w->path, "workload.concurrency") == 0))
            return isim__fail_at(err, s->path, w->line, w->column,
                                 "the paper fidelity has no TTFT and no concurrency to sweep");
        target *t = &c->sweep_target[i];
        isim_status st = resolve(c, w->path, w->path_line, w->path_column, t, err);
        for (size_t k = 0; !st && k < w->n; k++)
            st = check_value(c, w->path, t, &w->values[k], err);
        if (st)
            return st;
    }
    for (size_t i = 0; i < s->n_sensitivity; i++) {
        const isim_scenario_range *g = &s->sensitivity[i];
        target *t = &c->range_target[i];
        isim_status st = resolve(c, g->path, g->path_line, g->path_column, t, err);
        if (!st)
            st = check_value(c, g->path, t, &g->low, err);
        if (!st)
            st = check_value(c, g->path, t, &g->high, err);
        if (st)
            return st;
    }
    return ISIM_OK;
}

/* Lockstep sweeps share a group; every other sweep is a group of its own. */
static isim_status make_groups(run *c, isim_error *err)
{
    const isim_scenario *s = c->s;
    size_t n = s->n_sweeps;
    if (n > 64)
        return isim__fail_at(err, s->path, 0, 0, "more than 64 sweeps");
    c->group_of = calloc(n ? n : 1, sizeof *c->group_of);
    c->group_size = calloc(n ? n : 1, sizeof *c->group_size);
    if (!c->group_of || !c->group_size)
        return isim__plan_fail(err, "out of memory");
    size_t points = n ? 1 : 0;
    for (size_t i = 0; i < n; i++) {
        const isim_scenario_sweep *w = &s->sweeps[i];
        size_t g = c->n_groups;
        for (size_t k = 0; w->lockstep && k < i; k++)
            if (s->sweeps[k].lockstep && strcmp(s->sweeps[k].lockstep, w->lockstep) == 0) {
                g = c->group_of[k];
                break;
            }
        c->group_of[i] = g;
        if (g == c->n_groups) {
            c->group_size[c->n_groups++] = w->n;
            points *= w->n;
        }
    }
    c->res->n_points = points;
    return ISIM_OK;
}

/* ---- sensitivity --------------------------------------------------------------------- */

typedef struct {
    const char *key; /* hw key path, or a setting */
    const char *low, *high;
    int cost; /* 0 any, 1 cloud only, 2 owned only */
} default_range;

static const default_range DEFAULT_RANGES[] = {
    {"price.cloud_usd_per_h", "x0.8", "x1.2", 1},
    {"price.purchase_usd", "x0.8", "x1.2", 2},
    {"price.life_years", "x0.6", "x1.4", 2},
    {"cost.electricity_usd_per_kwh", "x0.5", "x2", 2},
    {"cost.pue", "x0.9", "x1.2", 2},
    {"memory.bandwidth_gbps", "x0.8", "x1.2", 0},
    {"efficiency.hbm", "x0.9", "x1.1", 0},
    {"efficiency.flops", "x0.9", "x1.1", 0},
    {"serving.step_overhead_us", "x0.5", "x2", 0},
    {"kernel.launch_us", "x0.5", "x2", 0},
    {"scale_up.bandwidth_gbps", "x0.5", "x2", 0},
    {"workload.input_tokens", "x0.5", "x2", 0},
    {"workload.output_tokens", "x0.5", "x2", 0},
};

/* The recommended configuration predicted with the input at `path` (which changes t; NULL:
 * none) at `text`: its cost and TPOT, NAN when it no longer fits or cannot be priced. Out of
 * memory is no answer about the configuration: ISIM_ENOMEM. */
static isim_status evaluate(const run *c, size_t m, const isim_sensitivity *sv, const char *path,
                            const target *t, const char *text, double *cost, double *tpot,
                            isim_error *err)
{
    const isim_scenario *s = c->s;
    const isim_scenario_result *res = c->res;
    const isim_plan_point *pt = &sv->point;
    const size_t h = (size_t)pt->hw;
    *cost = *tpot = NAN;
    isim_scenario_settings v = s->settings;
    isim_hw *hv = NULL;
    isim_model *mv = NULL;
    isim_scenario_value val = {.text = (char *)text};
    overrides o = {.n = 0};
    isim_error e = {0};
    isim_status st = ISIM_OK;
    if (t && !t->key) {
        st = isim_scenario_set(&v, path, text, s->path, 0, 0, &e);
    } else if (t && names(t, true, h)) {
        add_override(&o, s, path, t->key, &val);
        st = isim_hw_load_with(c->hw_path[h], o.ov, 1, &hv, &e);
    } else if (t && names(t, false, m)) {
        add_override(&o, s, path, t->key, &val);
        st = isim_model_load_with(c->model_path[m], o.ov, 1, &mv, &e);
    }
    if (st == ISIM_ENOMEM && err)
        *err = e;
    if (st)
        return st == ISIM_ENOMEM ? st : ISIM_OK;
    const isim_hw *hw = hv ? hv : res->hw[h];
    double price;
    char why[200];
    isim_query q;
    isim_query_init(&q);
    q.fidelity = s->fidelity;
    q.devices = pt->devices;
    q.batch = pt->batch;
    q.input_tokens = v.input_tokens;
    q.output_tokens = v.output_tokens;
    q.prefix_hit_rate = v.prefix_cache_hit_rate;
    if (s->fidelity == ISIM_DEPLOY) {
        q.tp = pt->tp;
        q.pp = pt->pp;
        q.ep = pt->ep;
    }
    q.weights = pt->weights;
    q.kv = pt->kv;
    if (pt->spec) {
        q.draft = res->draft;
        q.draft_weights = s->spec_draft_weights;
        q.spec_alpha = v.spec_alpha;
        q.spec_gamma = pt->spec_gamma;
        q.spec_gamma_max = (int)v.spec_gamma_max;
    }
    isim_result r;
    if (isim_scenario_price(hw, &v, &price, why, sizeof why)) {
        q.usd_per_device_h = price;
        /* the configuration's own cost per token, at its batch: continuous in every input
         * (a fleet's whole replicas would turn small changes into steps) */
        if (!isim_predict(mv ? mv : res->models[m], hw, &q, &r, &e) && r.feasible) {
            *cost = r.cost_usd_per_mtok_output;
            *tpot = r.tpot_s;
            /* with a demand the frontier's cost is a fleet's, which prefills the prompts too:
             * the same here, without the whole replicas' steps */
            if (s->fidelity == ISIM_DEPLOY && (v.request_rate_per_s > 0 || v.concurrency > 0))
                *cost =
                    1e6 * r.devices * price / 3600 /
                    (isim_serve_capacity(&r, q.batch / r.dp, hw->step_overhead_s, v.output_tokens) *
                     v.output_tokens);
        }
    }
    isim_hw_free(hv);
    isim_model_free(mv);
    return ISIM_OK;
}

static int by_swing(const void *a, const void *b)
{
    const isim_sensitivity_bar *x = a, *y = b;
    double sx = fabs(x->cost_high - x->cost_low), sy = fabs(y->cost_high - y->cost_low);
    sx = isnan(sx) ? INFINITY : sx;
    sy = isnan(sy) ? INFINITY : sy;
    if (sx != sy)
        return sx > sy ? -1 : 1;
    return strcmp(x->path, y->path);
}

static isim_status sensitivity(run *c, isim_error *err)
{
    const isim_scenario *s = c->s;
    isim_scenario_result *res = c->res;
    res->sensitivity = calloc(res->n_models, sizeof *res->sensitivity);
    if (!res->sensitivity)
        return isim__plan_fail(err, "out of memory");
    for (size_t m = 0; m < res->n_models; m++) {
        isim_sensitivity *sv = &res->sensitivity[m];
        const isim_plan *plan = res->base.plans ? res->base.plans[m] : NULL;
        if (!plan || plan->customer_choice < 0)
            continue;
        sv->found = true;
        sv->point = plan->frontier[plan->customer_choice];
        sv->point.hw = (int)res->base.hw_index[sv->point.hw];
        isim_status st =
            evaluate(c, m, sv, NULL, NULL, NULL, &sv->cost_base, &sv->tpot_base_s, err);
        if (st)
            return st;
        size_t cap =
            s->n_sensitivity ? s->n_sensitivity : sizeof DEFAULT_RANGES / sizeof DEFAULT_RANGES[0];
        if (!(sv->bars = calloc(cap, sizeof *sv->bars)))
            return isim__plan_fail(err, "out of memory");
        const size_t h = (size_t)sv->point.hw;
        for (size_t i = 0; i < cap; i++) {
            isim_sensitivity_bar *b = &sv->bars[sv->n_bars];
            const char *path, *low, *high;
            target t;
            if (s->n_sensitivity) {
                const isim_scenario_range *g = &s->sensitivity[i];
                t = c->range_target[i];
                /* a range on another model or hardware does not move this configuration */
                if (t.key && !names(&t, true, h) && !names(&t, false, m))
                    continue;
                path = g->path;
                low = g->low.text;
                high = g->high.text;
                snprintf(b->path, sizeof b->path, "%s", path);
            } else {
                const default_range *d = &DEFAULT_RANGES[i];
                if ((d->cost == 1 && s->settings.cost_model != ISIM_COST_CLOUD) ||
                    (d->cost == 2 && s->settings.cost_model != ISIM_COST_OWNED))
                    continue;
                bool setting = isim_scenario_is_setting(d->key);
                t = (target){.hw = true, .index = h, .key = setting ? NULL : d->key};
                if (setting)
                    snprintf(b->path, sizeof b->path, "%s", d->key);
                else
                    snprintf(b->path, sizeof b->path, "hw.%s.%s", res->hw[h]->id, d->key);
                path = b->path;
                low = d->low;
                high = d->high;
            }
            snprintf(b->low_text, sizeof b->low_text, "%s", low);
            snprintf(b->high_text, sizeof b->high_text, "%s", high);
            if ((st = evaluate(c, m, sv, path, &t, low, &b->cost_low, &b->tpot_low_s, err)) ||
                (st = evaluate(c, m, sv, path, &t, high, &b->cost_high, &b->tpot_high_s, err)))
                return st;
            sv->n_bars++;
        }
        qsort(sv->bars, sv->n_bars, sizeof *sv->bars, by_swing);
    }
    return ISIM_OK;
}

/* ---- the run ------------------------------------------------------------------------- */

static void count_evaluated(isim_scenario_result *res, const isim_scenario_point *p)
{
    for (size_t m = 0; p->plans && m < res->n_models; m++)
        if (p->plans[m])
            res->evaluated += p->plans[m]->evaluated;
}

isim_status isim_scenario_run(const isim_scenario *s, const isim_scenario_run_opts *o,
                              isim_scenario_result **out, isim_error *err)
{
    *out = NULL;
    double t0 = now_s();
    isim_scenario_result *res = calloc(1, sizeof *res);
    if (!res)
        return isim__plan_fail(err, "out of memory");
    res->scenario = s;
    run c = {.s = s, .o = o, .res = res};
    c.sweep_target = calloc(s->n_sweeps ? s->n_sweeps : 1, sizeof *c.sweep_target);
    c.range_target = calloc(s->n_sensitivity ? s->n_sensitivity : 1, sizeof *c.range_target);
    isim_status st = c.sweep_target && c.range_target ? load_specs(&c, err)
                                                      : isim__plan_fail(err, "out of memory");
    if (!st)
        st = check_scenario(&c, err);
    if (!st)
        st = make_groups(&c, err);
    if (st)
        goto cleanup;
    int threads = o->threads;
    if (threads <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cpus > 0 ? (int)cpus : 1;
    }
    if (threads > 64)
        threads = 64;
    /* the base point alone uses the threads inside its plans; sweep points use them
     * across points */
    c.plan_threads = threads;
    if ((st = run_point(&c, NULL, &res->base, err)))
        goto cleanup;
    count_evaluated(res, &res->base);
    if ((st = sensitivity(&c, err)))
        goto cleanup;
    if (res->n_points) {
        res->points = calloc(res->n_points, sizeof *res->points);
        if (!res->points) {
            st = isim__plan_fail(err, "out of memory");
            goto cleanup;
        }
        c.plan_threads = 1;
        c.total = res->n_points;
        pthread_mutex_init(&c.lock, NULL);
        size_t n_workers = (size_t)threads < res->n_points ? (size_t)threads : res->n_points;
        worker_job jobs[64];
        pthread_t tid[64];
        bool started[64] = {false};
        for (size_t t = 0; t < n_workers; t++) {
            jobs[t] = (worker_job){&c, t, n_workers};
            if (t > 0)
                started[t] = pthread_create(&tid[t], NULL, worker, &jobs[t]) == 0;
        }
        for (size_t t = 0; t < n_workers; t++)
            if (!started[t])
                worker(&jobs[t]);
        for (size_t t = 1; t < n_workers; t++)
            if (started[t])
                pthread_join(tid[t], NULL);
        pthread_mutex_destroy(&c.lock);
        if ((st = c.st)) {
            if (err)
                *err = c.err;
            goto cleanup;
        }
        for (size_t k = 0; k < res->n_points; k++)
            count_evaluated(res, &res->points[k]);
    }
    res->elapsed_s = now_s() - t0;
    *out = res;
    res = NULL;
cleanup:
    free(c.hw_path);
    free(c.model_path);
    free(c.hw_ids);
    free(c.model_ids);
    free(c.sweep_target);
    free(c.range_target);
    free(c.group_of);
    free(c.group_size);
    isim_scenario_result_free(res);
    return st;
}

void isim_scenario_result_free(isim_scenario_result *r)
{
    if (!r)
        return;
    point_release(&r->base, r->n_models);
    for (size_t k = 0; r->points && k < r->n_points; k++)
        point_release(&r->points[k], r->n_models);
    free(r->points);
    for (size_t m = 0; r->sensitivity && m < r->n_models; m++)
        free(r->sensitivity[m].bars);
    free(r->sensitivity);
    for (size_t h = 0; r->hw && h < r->n_hw; h++)
        isim_hw_free(r->hw[h]);
    free(r->hw);
    for (size_t m = 0; r->models && m < r->n_models; m++)
        isim_model_free(r->models[m]);
    free(r->models);
    isim_model_free(r->draft);
    free(r);
}
