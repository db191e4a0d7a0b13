/* Frontier extraction and the point list. */
#include "planner/internal.h"

#include <stdlib.h>
#include <string.h>

isim_status isim__points_push(isim__points *p, const isim_plan_point *x, isim_error *err)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 256;
        isim_plan_point *v = realloc(p->v, cap * sizeof *v);
        if (!v)
            return isim__plan_fail(err, "out of memory");
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n++] = *x;
    return ISIM_OK;
}

void isim__points_release(isim__points *p)
{
    free(p->v);
    memset(p, 0, sizeof *p);
}

/* Sort key: speed descending, then cost ascending, then TTFT ascending, then input order,
 * so that the result does not depend on qsort's stability. */
typedef struct {
    const isim_plan_point *v;
    size_t i;
} keyed;

static int by_speed_desc(const void *a, const void *b)
{
    const isim_plan_point *x = ((const keyed *)a)->v, *y = ((const keyed *)b)->v;
    if (x->tokens_per_s_per_user != y->tokens_per_s_per_user)
        return x->tokens_per_s_per_user > y->tokens_per_s_per_user ? -1 : 1;
    if (x->cost_usd_per_mtok_output != y->cost_usd_per_mtok_output)
        return x->cost_usd_per_mtok_output < y->cost_usd_per_mtok_output ? -1 : 1;
    if (x->ttft_s != y->ttft_s)
        return x->ttft_s < y->ttft_s ? -1 : 1;
    size_t i = ((const keyed *)a)->i, j = ((const keyed *)b)->i;
    return i < j ? -1 : i > j;
}

static bool dominates(const isim_plan_point *a, const isim_plan_point *b, bool with_ttft)
{
    return a->tokens_per_s_per_user >= b->tokens_per_s_per_user &&
           a->cost_usd_per_mtok_output <= b->cost_usd_per_mtok_output &&
           (!with_ttft || a->ttft_s <= b->ttft_s);
}

isim_status isim__pareto(const isim_plan_point *v, size_t n, bool with_ttft, size_t **idx,
                         size_t *n_idx, isim_error *err)
{
    *idx = NULL;
    *n_idx = 0;
    if (n == 0)
        return ISIM_OK;
    keyed *k = malloc(n * sizeof *k);
    size_t *out = malloc(n * sizeof *out);
    if (!k || !out) {
        free(k);
        free(out);
        return isim__plan_fail(err, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        k[i] = (keyed){&v[i], i};
    qsort(k, n, sizeof *k, by_speed_desc);
    size_t m = 0;
    double best_cost = 0;
    for (size_t i = 0; i < n; i++) {
        const isim_plan_point *p = k[i].v;
        if (!with_ttft) {
            /* a faster point came first: keep p only if it is strictly cheaper */
            if (m > 0 && !(p->cost_usd_per_mtok_output < best_cost))
                continue;
            best_cost = p->cost_usd_per_mtok_output;
            out[m++] = k[i].i;
            continue;
        }
        bool dominated = false;
        for (size_t j = 0; j < m && !dominated; j++)
            dominated = dominates(&v[out[j]], p, true);
        if (!dominated)
            out[m++] = k[i].i;
    }
    free(k);
    /* speed ascending */
    for (size_t i = 0; i < m / 2; i++) {
        size_t t = out[i];
        out[i] = out[m - 1 - i];
        out[m - 1 - i] = t;
    }
    *idx = out;
    *n_idx = m;
    return ISIM_OK;
}

bool isim_plan_point_same(const isim_plan_point *a, const isim_plan_point *b)
{
    return a->hw == b->hw && a->devices == b->devices && a->batch == b->batch && a->tp == b->tp &&
           a->pp == b->pp && a->ep == b->ep && a->dp == b->dp && a->pp_paper == b->pp_paper &&
           a->weights == b->weights && a->kv == b->kv && a->spec == b->spec &&
           a->spec_gamma == b->spec_gamma;
}
