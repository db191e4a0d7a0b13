/* Collective communication time: NCCL's per-protocol latency model (LL, LL128, Simple;
 * NCCL src/graph/tuning.cc, as used by Erdil 2025 code c2c4fa9,
 * mean_collective_time_nccl_seconds) or a flat per-rank model (TPU, LPU), plus the
 * two-level bandwidth term. Used by both fidelities; docs/model.md, "Collectives". */
#include "sim/internal.h"

#include <math.h>

void isim_collective_time(const isim_hw *hw, isim_fidelity f, isim_coll kind, double ranks,
                          double nodes, double bytes, double *latency_s, double *bandwidth_s)
{
    *latency_s = 0;
    *bandwidth_s = 0;
    if (ranks <= 1)
        return;
    /* An all-reduce moves each byte twice (reduce-scatter then all-gather); other
     * collectives once (Erdil 2025 code: m = 2 for allreduce, bandwidth halved otherwise). */
    bool ar = kind == ISIM_ALL_REDUCE;
    double m = ar ? 2.0 : 1.0;
    if (hw->coll_model == ISIM_COLL_FLAT) {
        /* Erdil 2025 code, tpu_collective_time_seconds: m x 1 us, (R-1) S / (R bw). */
        *latency_s = m * (ranks - 1) * hw->flat_per_rank_s;
        *bandwidth_s = m * (ranks - 1) * bytes / (ranks * hw->scale_up_bytes_per_s);
        return;
    }
    double per_node = ranks / nodes, up = hw->scale_up_bytes_per_s, out = hw->scale_out_bytes_per_s;
    double raw_bw;
    if (f == ISIM_PAPER || ar) {
        /* Hierarchical: reduce inside each domain, then across domains, the slower of the
         * two (overlap_comms=True in the released code). Its all-reduce bandwidths are the
         * per-direction link bandwidths / 2, which the factor m restores. */
        double intra = nodes * isim__max(0.0, per_node - 1) * bytes / (ranks * up);
        double inter = (nodes - 1) * bytes / (ranks * out);
        raw_bw = m * isim__max(intra, inter);
    } else if (kind == ISIM_ALL_TO_ALL) {
        /* Nothing reduces on the way: each rank sends (R/n - 1)/R of its buffer over the
         * domain's links and (n - 1)/n of it through its own network port. */
        raw_bw = isim__max((per_node - 1) * bytes / (ranks * up), (nodes - 1) * bytes / (nodes * out));
    } else {
        /* A point-to-point message crosses one link whole. */
        raw_bw = bytes / (nodes > 1 ? out : up);
    }
    double hops = per_node - 1, lg = nodes > 1 ? log2(nodes) : 0.0;
    double best = INFINITY;
    for (int i = 0; i < hw->n_protocols; i++) {
        const isim_protocol *p = &hw->protocols[i];
        /* Eq. 40 generalised per protocol: base + m((R/n - 1) t_rank + log2(n) t_node). */
        double lat = p->base_s + m * (hops * p->per_rank_s + lg * p->per_node_log2_s);
        double bw = raw_bw / p->bandwidth_factor;
        if (lat + bw < best) {
            best = lat + bw;
            *latency_s = lat;
            *bandwidth_s = bw;
        }
    }
}
