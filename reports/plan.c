/* Reports of a plan: JSON (cJSON), a table for people, CSV rows, and the frontier plotted
 * by gnuplot (run as a program; the file appears atomically). */
#include "reports/internal.h"
#include "reports/report.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void num(isim__json *j, cJSON *o, const char *key, double v)
{
    isim__json_num(j, o, key, v);
}

static cJSON *point_json(isim__json *j, const isim_plan_request *r, const isim_plan_point *p)
{
    cJSON *o = isim__json_new(j);
    bool paper = r->fidelity == ISIM_PAPER;
    isim__json_str(j, o, "hw", r->hw[p->hw]->id);
    num(j, o, "devices", p->devices);
    if (paper) {
        isim__json_null(j, o, "tp");
        num(j, o, "pp", p->detailed ? p->pp_paper : NAN);
        isim__json_null(j, o, "ep");
        isim__json_null(j, o, "dp");
    } else {
        num(j, o, "tp", p->tp);
        num(j, o, "pp", p->pp);
        num(j, o, "ep", p->ep);
        num(j, o, "dp", p->dp);
    }
    num(j, o, "batch", p->batch);
    isim__json_str(j, o, "weights", isim_dtype_name(p->weights));
    isim__json_str(j, o, "kv", isim_dtype_name(p->kv));
    if (p->spec)
        num(j, o, "spec_gamma", p->spec_gamma);
    else
        isim__json_null(j, o, "spec_gamma");
    num(j, o, "tokens_per_s_per_user", p->tokens_per_s_per_user);
    num(j, o, "tokens_per_s_per_device", p->tokens_per_s_per_device);
    num(j, o, "cost_usd_per_mtok_output", p->cost_usd_per_mtok_output);
    num(j, o, "cost_usd_per_mtok_input", p->detailed ? p->cost_usd_per_mtok_input : NAN);
    num(j, o, "ttft_ms", p->detailed ? p->ttft_s * 1e3 : NAN);
    num(j, o, "tpot_ms", p->tpot_s * 1e3);
    if (r->demand_tokens_per_s > 0 && !paper) {
        num(j, o, "replicas", p->replicas);
        num(j, o, "tokens_per_s_sustained", p->tokens_per_s_sustained);
    }
    if (p->simulated) {
        /* the latencies above are this percentile of requests simulated at this load */
        cJSON *s = isim__json_obj(j, o, "simulated");
        num(j, s, "percentile", r->slo_percentile);
        num(j, s, "requests_per_s_per_replica", p->load_rps);
        num(j, s, "requests", (double)p->sim_requests);
        num(j, s, "seed", (double)r->seed);
    }
    if (p->detailed) {
        isim__json_item(j, o, "terms_ms", isim__json_terms_ms(j, &p->terms));
        num(j, o, "memory_bytes_per_device", p->memory_bytes_per_device);
    } else {
        isim__json_null(j, o, "terms_ms");
        isim__json_null(j, o, "memory_bytes_per_device");
    }
    return o;
}

static cJSON *answer_json(isim__json *j, const isim_plan_request *r, const isim_plan_answer *a,
                          bool devices)
{
    if (!a->found)
        return cJSON_CreateNull();
    cJSON *o = point_json(j, r, &a->point);
    if (devices) {
        num(j, o, "replicas", a->replicas);
        num(j, o, "total_devices", a->total_devices);
        num(j, o, "usd_per_month", a->usd_per_month);
    }
    return o;
}

cJSON *isim__plan_json_object(isim__json *j, const isim_plan_request *r, const isim_plan *p,
                              bool timing)
{
    cJSON *o = isim__json_new(j);
    isim__json_str(j, o, "model", r->model->id);
    isim__json_str(j, o, "fidelity", isim_fidelity_name(r->fidelity));
    num(j, o, "input_tokens", r->input_tokens);
    num(j, o, "output_tokens", r->output_tokens);
    cJSON *hw = isim__json_arr(j, o, "hw");
    for (size_t i = 0; i < r->n_hw; i++)
        isim__json_item(j, hw, NULL, cJSON_CreateString(r->hw[i]->id));
    cJSON *f = isim__json_arr(j, o, "frontier");
    for (size_t i = 0; i < p->n_frontier; i++)
        isim__json_item(j, f, NULL, point_json(j, r, &p->frontier[i]));
    cJSON *byhw = isim__json_obj(j, o, "frontier_by_hw");
    for (size_t h = 0; h < p->n_hw; h++) {
        cJSON *a = isim__json_arr(j, byhw, r->hw[h]->id);
        for (size_t i = 0; i < p->hw_n[h]; i++)
            isim__json_item(j, a, NULL, point_json(j, r, &p->hw_frontier[h][i]));
    }
    bool any = p->n_frontier > 0;
    num(j, o, "max_tokens_per_s_per_user", any ? p->max_tokens_per_s_per_user : NAN);
    num(j, o, "min_cost_usd_per_mtok_output", any ? p->min_cost_usd_per_mtok_output : NAN);
    if (p->customer_choice >= 0) {
        cJSON *c = point_json(j, r, &p->frontier[p->customer_choice]);
        num(j, c, "alpha", r->customer_alpha);
        isim__json_item(j, o, "customer_choice", c);
    } else {
        isim__json_null(j, o, "customer_choice");
    }
    isim__json_item(j, o, "cheapest_at_min_speed",
                    answer_json(j, r, &p->cheapest_at_min_speed, false));
    isim__json_item(j, o, "fastest_at_max_cost", answer_json(j, r, &p->fastest_at_max_cost, false));
    isim__json_item(j, o, "fewest_devices_for_demand", answer_json(j, r, &p->fewest_devices, true));
    num(j, o, "evaluated", (double)p->evaluated);
    if (r->slo_percentile > 0) {
        num(j, o, "slo_percentile", r->slo_percentile);
        num(j, o, "simulated", (double)p->simulated);
        num(j, o, "rejected_by_simulation", (double)p->rejected_by_simulation);
    }
    cJSON *inf = isim__json_obj(j, o, "infeasible_by_reason");
    for (int i = 1; i < ISIM_REASON_COUNT; i++)
        if (p->infeasible_by_reason[i])
            num(j, inf, isim_reason_name((isim_reason)i), (double)p->infeasible_by_reason[i]);
    cJSON *rej = isim__json_obj(j, o, "rejected_by_constraint");
    for (int i = 0; i < ISIM_PLAN_CONSTRAINTS; i++)
        if (p->rejected_by_constraint[i])
            num(j, rej, isim_plan_constraint_name((isim_plan_constraint)i),
                (double)p->rejected_by_constraint[i]);
    isim__json_str(j, o, "empty_reason", p->empty_reason);
    /* each profile alone */
    cJSON *each = isim__json_obj(j, o, "answers_by_hw");
    for (size_t h = 0; p->hw_answers && h < p->n_hw; h++) {
        const isim_plan_answers *a = &p->hw_answers[h];
        cJSON *x = isim__json_obj(j, each, r->hw[h]->id);
        if (a->customer_choice >= 0)
            isim__json_item(j, x, "recommended",
                            point_json(j, r, &p->hw_frontier[h][a->customer_choice]));
        else
            isim__json_null(j, x, "recommended");
        isim__json_item(j, x, "cheapest_at_min_speed",
                        answer_json(j, r, &a->cheapest_at_min_speed, false));
        isim__json_item(j, x, "fastest_at_max_cost",
                        answer_json(j, r, &a->fastest_at_max_cost, false));
        isim__json_item(j, x, "fewest_devices_for_demand",
                        answer_json(j, r, &a->fewest_devices, true));
    }
    if (timing)
        num(j, o, "elapsed_ms", p->elapsed_s * 1e3);
    return o;
}

char *isim_report_plan_json(const isim_plan_request *r, const isim_plan *p, bool timing)
{
    isim__json doc = {false};
    return isim__json_finish(&doc, isim__plan_json_object(&doc, r, p, timing));
}

static void layout(const isim_plan_request *r, const isim_plan_point *p, char *buf, size_t n)
{
    if (r->fidelity == ISIM_PAPER)
        snprintf(buf, n, "%.4g dev, pp %.3g", p->devices, p->detailed ? p->pp_paper : NAN);
    else
        snprintf(buf, n, "%g dev, tp%d pp%d ep%d dp%d", p->devices, p->tp, p->pp, p->ep, p->dp);
}

const char *isim__fig(char *buf, size_t n, double v)
{
    if (!isfinite(v))
        snprintf(buf, n, "-");
    else if (fabs(v) >= 1000 && fabs(v) < 1e9)
        snprintf(buf, n, "%.0f", v);
    else
        snprintf(buf, n, "%.4g", v);
    return buf;
}

static void row(FILE *out, const isim_plan_request *r, const isim_plan_point *p, const char *mark)
{
    char lay[64], spec[16] = "-", f[5][32];
    layout(r, p, lay, sizeof lay);
    if (p->spec)
        snprintf(spec, sizeof spec, "g=%d", p->spec_gamma);
    fprintf(out, "%-2s %-14s %-26s %8s %-5s %-5s %-5s %10s %10s %9s %9s\n", mark, r->hw[p->hw]->id,
            lay, isim__fig(f[0], 32, p->batch), isim_dtype_name(p->weights), isim_dtype_name(p->kv),
            spec, isim__fig(f[1], 32, p->tokens_per_s_per_user),
            isim__fig(f[2], 32, p->cost_usd_per_mtok_output), isim__fig(f[3], 32, p->tpot_s * 1e3),
            isim__fig(f[4], 32, p->detailed ? p->ttft_s * 1e3 : NAN));
}

void isim_report_plan_table(FILE *out, const isim_plan_request *r, const isim_plan *p)
{
    fprintf(out,
            "%s, %g input / %g output tokens, %s fidelity: %zu frontier points from %llu "
            "configurations\n",
            r->model->name, r->input_tokens, r->output_tokens, isim_fidelity_name(r->fidelity),
            p->n_frontier, (unsigned long long)p->evaluated);
    if (p->n_frontier == 0) {
        fprintf(out, "no frontier: %s\n", p->empty_reason);
        return;
    }
    /* at most 40 rows: every n-th point, always the ends and the recommended point */
    size_t step = p->n_frontier > 40 ? (p->n_frontier + 39) / 40 : 1;
    if (step > 1)
        fprintf(out, "(every %zu%s point shown; --csv or --json list them all)\n", step,
                step == 2   ? "nd"
                : step == 3 ? "rd"
                            : "th");
    char tpot_h[32] = "TPOT ms", ttft_h[32] = "TTFT ms";
    if (r->slo_percentile > 0) {
        snprintf(tpot_h, sizeof tpot_h, "p%g TPOT", r->slo_percentile);
        snprintf(ttft_h, sizeof ttft_h, "p%g TTFT", r->slo_percentile);
        fprintf(out,
                "latencies: the %gth percentile of %lld requests simulated per configuration "
                "(Poisson arrivals, %g requests/s over its replicas; ms)\n",
                r->slo_percentile, (long long)r->sim_requests,
                r->demand_tokens_per_s / r->output_tokens);
    }
    fprintf(out, "%-2s %-14s %-26s %8s %-5s %-5s %-5s %10s %10s %9s %9s\n", "", "hw", "layout",
            "batch", "w", "kv", "spec", "tok/s/user", "$/Mtok out", tpot_h, ttft_h);
    for (size_t i = 0; i < p->n_frontier; i++) {
        bool rec = (long)i == p->customer_choice;
        if (!rec && i % step != 0 && i != p->n_frontier - 1)
            continue;
        row(out, r, &p->frontier[i], rec ? "=>" : "");
    }
    if (p->customer_choice >= 0)
        fprintf(out,
                "=> recommended: the most speed^%g per dollar (Erdil 2025's customer choice)\n",
                r->customer_alpha);
    if (p->cheapest_at_min_speed.found) {
        fprintf(out, "cheapest at >= %g tokens/s per user:\n", r->min_tokens_per_s_per_user);
        row(out, r, &p->cheapest_at_min_speed.point, "");
    }
    if (p->fastest_at_max_cost.found) {
        fprintf(out, "fastest at <= $%g per M output tokens:\n", r->max_cost_usd_per_mtok);
        row(out, r, &p->fastest_at_max_cost.point, "");
    }
    if (p->fewest_devices.found)
        fprintf(out,
                "fewest devices for %g tokens/s: %g replicas x %g = %g devices, $%.0f per "
                "month (%s)\n",
                r->demand_tokens_per_s, p->fewest_devices.replicas, p->fewest_devices.point.devices,
                p->fewest_devices.total_devices, p->fewest_devices.usd_per_month,
                r->hw[p->fewest_devices.point.hw]->id);
}

void isim_report_plan_csv(FILE *out, const isim_plan_request *r, const isim_plan *p)
{
    fputs(
        "hw,on_overall_frontier,recommended,devices,tp,pp,ep,dp,batch,weights,kv,spec_gamma,"
        "tokens_per_s_per_user,tokens_per_s_per_device,cost_usd_per_mtok_output,tpot_ms,ttft_ms\n",
        out);
    for (size_t h = 0; h < p->n_hw; h++)
        for (size_t i = 0; i < p->hw_n[h]; i++) {
            const isim_plan_point *x = &p->hw_frontier[h][i];
            bool overall = false, rec = false;
            for (size_t k = 0; k < p->n_frontier; k++)
                if (isim_plan_point_same(&p->frontier[k], x)) {
                    overall = true;
                    rec = (long)k == p->customer_choice;
                }
            fprintf(out, "%s,%s,%s,%.6g,%d,%.6g,%d,%d,%.6g,%s,%s,", r->hw[x->hw]->id,
                    overall ? "true" : "false", rec ? "true" : "false", x->devices, x->tp,
                    r->fidelity == ISIM_PAPER ? x->pp_paper : x->pp, x->ep, x->dp, x->batch,
                    isim_dtype_name(x->weights), isim_dtype_name(x->kv));
            if (x->spec)
                fprintf(out, "%d", x->spec_gamma);
            fprintf(out, ",%.6g,%.6g,%.6g,%.6g,", x->tokens_per_s_per_user,
                    x->tokens_per_s_per_device, x->cost_usd_per_mtok_output, x->tpot_s * 1e3);
            if (x->detailed)
                fprintf(out, "%.6g", x->ttft_s * 1e3);
            fputc('\n', out);
        }
}

isim_status isim_report_plan_plot(const isim_plan_request *r, const isim_plan *p, const char *path,
                                  isim_error *err)
{
    if (p->n_frontier == 0)
        return isim__gnuplot_fail(err, "%s: nothing to plot: %s", path, p->empty_reason);
    char *body = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&body, &size);
    if (!f)
        return isim__gnuplot_fail(err, "out of memory");
    fprintf(f, "set title ");
    char title[256];
    if (r->fidelity == ISIM_PAPER)
        snprintf(title, sizeof title, "%s: speed against cost (paper fidelity, %g-token context)",
                 r->model->name, r->input_tokens);
    else
        snprintf(title, sizeof title,
                 "%s: speed against cost (deploy fidelity, %g in / %g out "
                 "tokens)",
                 r->model->name, r->input_tokens, r->output_tokens);
    isim__gp_string(f, title);
    fprintf(f, "\nset xlabel 'tokens per second per user'\n"
               "set ylabel 'US$ per million output tokens (log scale)'\n"
               "set logscale y\nset grid xtics ytics mytics lc rgb '#dddddd'\n"
               "set key top left box opaque\nset format y '%%g'\n"
               "set style textbox opaque noborder margins 1,1\n"
               "set offsets 0, graph 0.04, 0, 0\n");
    for (size_t h = 0; h < p->n_hw; h++) {
        fprintf(f, "$hw%zu << EOD\n", h);
        for (size_t i = 0; i < p->hw_n[h]; i++)
            fprintf(f, "%.6g %.6g\n", p->hw_frontier[h][i].tokens_per_s_per_user,
                    p->hw_frontier[h][i].cost_usd_per_mtok_output);
        fprintf(f, "EOD\n");
    }
    const isim_plan_point *rec = p->customer_choice >= 0 ? &p->frontier[p->customer_choice] : NULL;
    if (rec) {
        fprintf(f, "$rec << EOD\n%.6g %.6g\nEOD\n", rec->tokens_per_s_per_user,
                rec->cost_usd_per_mtok_output);
        char label[200];
        if (r->fidelity == ISIM_PAPER)
            snprintf(label, sizeof label, "recommended: %s, %.3g devices, batch %.3g",
                     r->hw[rec->hw]->id, rec->devices, rec->batch);
        else
            snprintf(label, sizeof label, "recommended: %g x %s, tp%d pp%d, batch %g, %s",
                     rec->devices, r->hw[rec->hw]->id, rec->tp, rec->pp, rec->batch,
                     isim_dtype_name(rec->weights));
        /* the label on the side of the point with more room */
        double xmax = 0;
        for (size_t i = 0; i < p->n_frontier; i++)
            xmax = fmax(xmax, p->frontier[i].tokens_per_s_per_user);
        bool left = rec->tokens_per_s_per_user > 0.5 * xmax;
        fprintf(f, "set label 1 ");
        isim__gp_string(f, label);
        fprintf(f, " at %.6g,%.6g %s offset %s,1.2 front boxed\n", rec->tokens_per_s_per_user,
                rec->cost_usd_per_mtok_output, left ? "right" : "left", left ? "-1.5" : "1.5");
    }
    fprintf(f, "plot ");
    bool first = true;
    for (size_t h = 0; h < p->n_hw; h++) {
        if (p->hw_n[h] == 0)
            continue;
        fprintf(f, "%s$hw%zu with linespoints pt 7 ps 0.5 lw 2 title ", first ? "" : ", ", h);
        isim__gp_string(f, r->hw[h]->name);
        first = false;
    }
    if (rec)
        fprintf(f,
                ", $rec with points pt 6 ps 3 lw 3 lc rgb 'black' title 'recommended (speed^%g "
                "per dollar)'",
                r->customer_alpha);
    fputc('\n', f);
    if (fclose(f) != 0) {
        free(body);
        return isim__gnuplot_fail(err, "out of memory");
    }
    isim_status st = isim__gnuplot(path, 1100, 750, body, err);
    free(body);
    return st;
}
