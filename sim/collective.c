/* Collective communication time: NCCL's per-protocol latency model (LL, LL128, Simple;
 * NCCL src/graph/tuning.cc, as used by Erdil 2025 code c2c4fa9,
 * mean_collective_time_nccl_seconds) or a flat per-rank model (TPU, LPU), plus the
 * two-level bandwidth term. Used by both fidelities; docs/model.md, "Collectives". */
#include "sim/internal.h"

#include <math.h>

void isim__coll_line_make(const isim_hw *hw, isim_fidelity f, isim_coll kind, double ranks,
                          double nodes, double bytes_per_x, isim__coll_line *out)
{
    out->n = 0;
    if (ranks <= 1)
        return;
    /* An all-reduce moves each byte twice (reduce-scatter then all-gather); other
     * collectives once (Erdil 2025 code: m = 2 for allreduce, bandwidth halved otherwise). */
    bool ar = kind == ISIM_ALL_REDUCE;
    double m = ar ? 2.0 : 1.0;
    /* a fit to measured serving may scale the latencies, all-to-all's on its own (expert
     * dispatch runs its own kernels, not NCCL's ring; docs/validation.md) */
    double scale = hw->coll_latency_scale * (kind == ISIM_ALL_TO_ALL ? hw->a2a_latency_scale : 1);
    if (hw->coll_model == ISIM_COLL_FLAT) {
        /* Erdil 2025 code, tpu_collective_time_seconds: m x 1 us, (R-1) S / (R bw). */
        out->n = 1;
        out->lat[0] = m * (ranks - 1) * hw->flat_per_rank_s * scale;
        out->slope[0] = m * (ranks - 1) * bytes_per_x / (ranks * hw->scale_up_bytes_per_s);
        return;
    }
    double per_node = ranks / nodes, up = hw->scale_up_bytes_per_s,
           out_bw = hw->scale_out_bytes_per_s;
    double raw; /* seconds per unit of x at full protocol efficiency */
    if (f == ISIM_PAPER || ar) {
        /* Hierarchical: reduce inside each domain, then across domains, the slower of the
         * two (overlap_comms=True in the released code). Its all-reduce bandwidths are the
         * per-direction link bandwidths / 2, which the factor m restores. */
        double intra = nodes * isim__max(0.0, per_node - 1) / (ranks * up);
        double inter = (nodes - 1) / (ranks * out_bw);
        raw = m * isim__max(intra, inter);
    } else if (kind == ISIM_ALL_TO_ALL) {
        /* Nothing reduces on the way: each rank sends (R/n - 1)/R of its buffer over the
         * domain's links and (n - 1)/n of it through its own network port. */
        raw = isim__max((per_node - 1) / (ranks * up), (nodes - 1) / (nodes * out_bw));
    } else {
        /* A point-to-point message crosses one link whole. */
        raw = 1 / (nodes > 1 ? out_bw : up);
    }
    double hops = per_node - 1, lg = nodes > 1 ? log2(nodes) : 0.0;
    out->n = hw->n_protocols;
    for (int i = 0; i < hw->n_protocols; i++) {
        const isim_protocol *p = &hw->protocols[i];
        /* Eq. 40 generalised per protocol: base + m((R/n - 1) t_rank + log2(n) t_node). */
        out->lat[i] = (p->base_s + m * (hops * p->per_rank_s + lg * p->per_node_log2_s)) * scale;
        out->slope[i] = raw * bytes_per_x / p->bandwidth_factor;
    }
}

void isim_collective_time(const isim_hw *hw, isim_fidelity f, isim_coll kind, double ranks,
                          double nodes, double bytes, double *latency_s, double *bandwidth_s)
{
    isim__coll_line line;
    isim__coll_line_make(hw, f, kind, ranks, nodes, bytes, &line);
    isim__coll_line_eval(&line, 1.0, latency_s, bandwidth_s);
}

void isim__coll_env_make(const isim__coll_line *l, isim__coll_env *out)
{
    out->n = 0;
    if (l->n == 0)
        return;
    /* start with the fastest protocol at x = 0, then follow the crossings to flatter ones */
    int cur = 0;
    for (int i = 1; i < l->n; i++)
        if (l->lat[i] < l->lat[cur] || (l->lat[i] == l->lat[cur] && l->slope[i] < l->slope[cur]))
            cur = i;
    double x = 0;
    for (;;) {
        out->x[out->n] = x;
        out->lat[out->n] = l->lat[cur];
        out->slope[out->n] = l->slope[cur];
        out->n++;
        int next = -1;
        double best_x = INFINITY;
        for (int i = 0; i < l->n; i++) {
            if (l->slope[i] >= l->slope[cur])
                continue;
            double xc = (l->lat[i] - l->lat[cur]) / (l->slope[cur] - l->slope[i]);
            if (xc >= x && xc < best_x) {
                best_x = xc;
                next = i;
            }
        }
        if (next < 0 || out->n == 3)
            return;
        cur = next;
        x = best_x;
    }
}
