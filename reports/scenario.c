/* Results of a scenario: JSON with everything, CSV with one row per point x hardware x
 * frontier point (the swept values as columns), and a summary for people. Points are the
 * base (the scenario as written) then the sweeps' points in order. */
#include "reports/internal.h"
#include "reports/report.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void num(isim__json *j, cJSON *o, const char *key, double v)
{
    isim__json_num(j, o, key, v);
}

void isim_report_scenario_request(const isim_scenario_result *res, const isim_scenario_point *p,
                                  size_t m, const isim_hw **hw, isim_plan_request *r)
{
    for (size_t k = 0; k < p->n_priced; k++)
        hw[k] = res->hw[p->hw_index[k]];
    isim_scenario_request(res->scenario, &p->settings, res->models[m], res->draft, r);
    r->hw = hw;
    r->n_hw = p->n_priced;
    r->usd_per_device_h = NULL;
}

static cJSON *settings_json(isim__json *j, const isim_scenario_settings *v)
{
    cJSON *o = isim__json_new(j);
    for (size_t i = 0; isim_scenario_setting_path(i); i++) {
        const char *path = isim_scenario_setting_path(i);
        const char *text = isim_scenario_setting_text(v, path);
        if (isim_scenario_setting_is_number(path))
            num(j, o, path, isim_scenario_get(v, path));
        else if (text)
            isim__json_str(j, o, path, text);
        else
            isim__json_null(j, o, path); /* a precision: the scenario's lists */
    }
    return o;
}

/* Adds the energy per output token to a plan point's JSON object (x->hw: plan index). */
static void energy_json(isim__json *j, cJSON *o, const isim_scenario_point *p,
                        const isim_plan_point *x)
{
    isim_plan_point y = *x;
    y.hw = (int)p->hw_index[x->hw];
    double dj, fj;
    isim_scenario_energy(p, &y, &dj, &fj);
    num(j, o, "j_per_output_token", dj);
    num(j, o, "facility_j_per_output_token", fj);
}

/* The plan's JSON with the energy of each frontier point, under this point's cost model. */
static cJSON *plan_json(isim__json *j, const isim_plan_request *r, const isim_scenario_point *p,
                        const isim_plan *plan)
{
    cJSON *o = isim__plan_json_object(j, r, plan, false);
    cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "frontier");
    for (size_t i = 0; i < plan->n_frontier; i++)
        energy_json(j, cJSON_GetArrayItem(f, (int)i), p, &plan->frontier[i]);
    cJSON *byhw = cJSON_GetObjectItemCaseSensitive(o, "frontier_by_hw");
    for (size_t k = 0; k < plan->n_hw; k++) {
        cJSON *a = cJSON_GetObjectItemCaseSensitive(byhw, r->hw[k]->id);
        for (size_t i = 0; i < plan->hw_n[k]; i++)
            energy_json(j, cJSON_GetArrayItem(a, (int)i), p, &plan->hw_frontier[k][i]);
    }
    return o;
}

static cJSON *point_json(isim__json *j, const isim_scenario_result *res,
                         const isim_scenario_point *p)
{
    const isim_scenario *s = res->scenario;
    cJSON *o = isim__json_new(j);
    cJSON *vals = isim__json_obj(j, o, "values");
    for (size_t i = 0; i < s->n_sweeps && p->values && p->values[0]; i++)
        isim__json_str(j, vals, s->sweeps[i].path, p->values[i]);
    isim__json_item(j, o, "settings", settings_json(j, &p->settings));
    isim__json_str(j, o, "cost_model", isim_cost_model_name(p->settings.cost_model));
    cJSON *price = isim__json_obj(j, o, "usd_per_device_h");
    cJSON *why = isim__json_obj(j, o, "unpriced");
    cJSON *watts = isim__json_obj(j, o, "device_w");
    for (size_t h = 0; h < res->n_hw; h++) {
        num(j, price, res->hw[h]->id, p->usd_per_device_h[h]);
        num(j, watts, res->hw[h]->id, p->device_w[h]);
        if (p->unpriced[h][0])
            isim__json_str(j, why, res->hw[h]->id, p->unpriced[h]);
    }
    cJSON *plans = isim__json_obj(j, o, "plans");
    const isim_hw **hw = calloc(res->n_hw ? res->n_hw : 1, sizeof *hw);
    if (!hw)
        j->lost = true;
    for (size_t m = 0; hw && m < res->n_models; m++) {
        if (!p->plans || !p->plans[m]) {
            isim__json_null(j, plans, res->models[m]->id);
            continue;
        }
        isim_plan_request r;
        isim_report_scenario_request(res, p, m, hw, &r);
        isim__json_item(j, plans, res->models[m]->id, plan_json(j, &r, p, p->plans[m]));
    }
    free(hw);
    return o;
}

static cJSON *config_json(isim__json *j, const isim_scenario_result *res, const isim_plan_point *x)
{
    cJSON *o = isim__json_new(j);
    isim__json_str(j, o, "hw", res->hw[x->hw]->id);
    num(j, o, "devices", x->devices);
    if (res->scenario->fidelity == ISIM_DEPLOY) {
        num(j, o, "tp", x->tp);
        num(j, o, "pp", x->pp);
        num(j, o, "ep", x->ep);
        num(j, o, "dp", x->dp);
    }
    num(j, o, "batch", x->batch);
    isim__json_str(j, o, "weights", isim_dtype_name(x->weights));
    isim__json_str(j, o, "kv", isim_dtype_name(x->kv));
    return o;
}

char *isim_report_scenario_json(const isim_scenario_result *res, bool timing)
{
    const isim_scenario *s = res->scenario;
    isim__json doc = {false}, *j = &doc;
    cJSON *o = isim__json_new(j);
    cJSON *sc = isim__json_obj(j, o, "scenario");
    isim__json_str(j, sc, "id", s->id);
    isim__json_str(j, sc, "name", s->name);
    if (s->description)
        isim__json_str(j, sc, "description", s->description);
    isim__json_str(j, sc, "fidelity", isim_fidelity_name(s->fidelity));
    cJSON *ms = isim__json_arr(j, sc, "models");
    for (size_t m = 0; m < res->n_models; m++)
        isim__json_item(j, ms, NULL, cJSON_CreateString(res->models[m]->id));
    cJSON *hs = isim__json_arr(j, sc, "hardware");
    for (size_t h = 0; h < res->n_hw; h++)
        isim__json_item(j, hs, NULL, cJSON_CreateString(res->hw[h]->id));
    cJSON *sw = isim__json_arr(j, sc, "sweeps");
    for (size_t i = 0; i < s->n_sweeps; i++) {
        cJSON *w = isim__json_new(j);
        isim__json_str(j, w, "path", s->sweeps[i].path);
        cJSON *vals = isim__json_arr(j, w, "values");
        for (size_t k = 0; k < s->sweeps[i].n; k++)
            isim__json_item(j, vals, NULL, cJSON_CreateString(s->sweeps[i].values[k].text));
        if (s->sweeps[i].lockstep)
            isim__json_str(j, w, "lockstep", s->sweeps[i].lockstep);
        isim__json_item(j, sw, NULL, w);
    }
    isim__json_item(j, o, "base", point_json(j, res, &res->base));
    cJSON *pts = isim__json_arr(j, o, "points");
    for (size_t k = 0; k < res->n_points; k++)
        isim__json_item(j, pts, NULL, point_json(j, res, &res->points[k]));
    cJSON *sens = isim__json_arr(j, o, "sensitivity");
    for (size_t m = 0; m < res->n_models; m++) {
        const isim_sensitivity *sv = &res->sensitivity[m];
        cJSON *x = isim__json_new(j);
        isim__json_str(j, x, "model", res->models[m]->id);
        if (!sv->found) {
            isim__json_null(j, x, "recommended");
            isim__json_item(j, sens, NULL, x);
            continue;
        }
        isim__json_item(j, x, "recommended", config_json(j, res, &sv->point));
        num(j, x, "cost_usd_per_mtok_output", sv->cost_base);
        num(j, x, "tpot_ms", sv->tpot_base_s * 1e3);
        cJSON *bars = isim__json_arr(j, x, "inputs");
        for (size_t i = 0; i < sv->n_bars; i++) {
            const isim_sensitivity_bar *b = &sv->bars[i];
            cJSON *y = isim__json_new(j);
            isim__json_str(j, y, "path", b->path);
            isim__json_str(j, y, "low", b->low_text);
            isim__json_str(j, y, "high", b->high_text);
            num(j, y, "cost_low", b->cost_low);
            num(j, y, "cost_high", b->cost_high);
            num(j, y, "tpot_low_ms", b->tpot_low_s * 1e3);
            num(j, y, "tpot_high_ms", b->tpot_high_s * 1e3);
            isim__json_item(j, bars, NULL, y);
        }
        isim__json_item(j, sens, NULL, x);
    }
    num(j, o, "evaluated", (double)res->evaluated);
    if (timing)
        num(j, o, "elapsed_ms", res->elapsed_s * 1e3);
    return isim__json_finish(j, o);
}

void isim__csv_field(FILE *out, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void csv_number(FILE *out, double v)
{
    if (isfinite(v))
        fprintf(out, ",%.6g", v);
    else
        fputc(',', out);
}

static void csv_point(FILE *out, const isim_scenario_result *res, const char *label,
                      const isim_scenario_point *p)
{
    const isim_scenario *s = res->scenario;
    for (size_t m = 0; m < res->n_models; m++) {
        const isim_plan *plan = p->plans ? p->plans[m] : NULL;
        for (size_t k = 0; plan && k < plan->n_hw; k++) {
            size_t h = p->hw_index[k];
            for (size_t i = 0; i < plan->hw_n[k]; i++) {
                const isim_plan_point *x = &plan->hw_frontier[k][i];
                bool overall = false, rec = false;
                for (size_t j = 0; j < plan->n_frontier; j++)
                    if (isim_plan_point_same(&plan->frontier[j], x)) {
                        overall = true;
                        rec = (long)j == plan->customer_choice;
                    }
                fputs(label, out);
                for (size_t w = 0; w < s->n_sweeps; w++) {
                    fputc(',', out);
                    isim__csv_field(out, p->values && p->values[w] ? p->values[w] : "");
                }
                fprintf(out, ",%s,%s,%s", isim_cost_model_name(p->settings.cost_model),
                        res->models[m]->id, res->hw[h]->id);
                csv_number(out, p->usd_per_device_h[h]);
                fprintf(out, ",%s,%s", overall ? "true" : "false", rec ? "true" : "false");
                csv_number(out, x->devices);
                if (s->fidelity == ISIM_DEPLOY)
                    fprintf(out, ",%d,%d,%d,%d", x->tp, x->pp, x->ep, x->dp);
                else
                    fprintf(out, ",,%.6g,,", x->pp_paper);
                csv_number(out, x->batch);
                fprintf(out, ",%s,%s,", isim_dtype_name(x->weights), isim_dtype_name(x->kv));
                if (x->spec)
                    fprintf(out, "%d", x->spec_gamma);
                csv_number(out, x->tokens_per_s_per_user);
                csv_number(out, x->tokens_per_s_per_device);
                csv_number(out, x->cost_usd_per_mtok_output);
                csv_number(out, x->tpot_s * 1e3);
                csv_number(out, x->detailed ? x->ttft_s * 1e3 : NAN);
                csv_number(out, x->replicas);
                isim_plan_point y = *x;
                y.hw = (int)h;
                double dj, fj;
                isim_scenario_energy(p, &y, &dj, &fj);
                csv_number(out, dj);
                csv_number(out, fj);
                fputc('\n', out);
            }
        }
    }
}

void isim_report_scenario_csv(FILE *out, const isim_scenario_result *res)
{
    const isim_scenario *s = res->scenario;
    fputs("point", out);
    for (size_t w = 0; w < s->n_sweeps; w++) {
        fputc(',', out);
        isim__csv_field(out, s->sweeps[w].path);
    }
    fputs(",cost_model,model,hw,usd_per_device_h,on_overall_frontier,recommended,devices,tp,pp,"
          "ep,dp,batch,weights,kv,spec_gamma,tokens_per_s_per_user,tokens_per_s_per_device,"
          "cost_usd_per_mtok_output,tpot_ms,ttft_ms,replicas,j_per_output_token,"
          "facility_j_per_output_token\n",
          out);
    csv_point(out, res, "base", &res->base);
    for (size_t k = 0; k < res->n_points; k++) {
        char label[32];
        snprintf(label, sizeof label, "%zu", k + 1);
        csv_point(out, res, label, &res->points[k]);
    }
}

/* The summary of one point: per model, each hardware's recommended configuration and, for
 * a demand, its fewest devices. */
static void table_point(FILE *out, const isim_scenario_result *res, const isim_scenario_point *p)
{
    char f[6][32];
    for (size_t m = 0; m < res->n_models; m++) {
        const isim_plan *plan = p->plans ? p->plans[m] : NULL;
        fprintf(out, "  %s (%s cost):\n", res->models[m]->name,
                isim_cost_model_name(p->settings.cost_model));
        for (size_t h = 0; h < res->n_hw; h++)
            if (p->unpriced[h][0])
                fprintf(out, "     %-12s not priced: %s\n", res->hw[h]->id, p->unpriced[h]);
        if (!plan) {
            fprintf(out, "    nothing could be priced\n");
            continue;
        }
        if (!plan->n_frontier) {
            fprintf(out, "    no frontier: %s\n", plan->empty_reason);
            continue;
        }
        for (size_t k = 0; k < plan->n_hw; k++) {
            const isim_plan_answers *a = &plan->hw_answers[k];
            const char *id = res->hw[p->hw_index[k]]->id;
            if (a->customer_choice < 0) {
                fprintf(out, "     %-12s nothing meets the constraints\n", id);
                continue;
            }
            const isim_plan_point *x = &plan->hw_frontier[k][a->customer_choice];
            bool best = plan->customer_choice >= 0 &&
                        isim_plan_point_same(&plan->frontier[plan->customer_choice], x);
            fprintf(out, "  %s %-12s %s dev, batch %s, %s: %s tok/s/user, $%s/Mtok",
                    best ? "=>" : "  ", id, isim__fig(f[0], 32, x->devices),
                    isim__fig(f[1], 32, x->batch), isim_dtype_name(x->weights),
                    isim__fig(f[2], 32, x->tokens_per_s_per_user),
                    isim__fig(f[3], 32, x->cost_usd_per_mtok_output));
            if (a->fewest_devices.found)
                fprintf(out, "; for the demand at least %s devices, $%s/month",
                        isim__fig(f[4], 32, a->fewest_devices.total_devices),
                        isim__fig(f[5], 32, a->fewest_devices.usd_per_month));
            fputc('\n', out);
        }
    }
}

void isim_report_scenario_table(FILE *out, const isim_scenario_result *res, bool points)
{
    const isim_scenario *s = res->scenario;
    fprintf(out, "%s (%s fidelity): %zu point%s after the base, %llu configurations\n", s->name,
            isim_fidelity_name(s->fidelity), res->n_points, res->n_points == 1 ? "" : "s",
            (unsigned long long)res->evaluated);
    fprintf(out, "base (as written):\n");
    table_point(out, res, &res->base);
    for (size_t k = 0; points && k < res->n_points; k++) {
        fprintf(out, "point %zu:", k + 1);
        for (size_t w = 0; w < s->n_sweeps; w++)
            fprintf(out, " %s=%s", s->sweeps[w].path, res->points[k].values[w]);
        fputc('\n', out);
        table_point(out, res, &res->points[k]);
    }
    fprintf(out, "=> recommended overall: the most speed^%g per dollar\n",
            s->settings.customer_alpha);
}
