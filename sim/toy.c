/* The toy multi-device model of Erdil 2025 §2.2: infinite bandwidth, a ring all-reduce
 * over sqrt(N) ranks costing 2 (sqrt(N) - 1) t_hop (Eq. 5), n_reduce serial all-reduces
 * per layer, and memory reads overlapped with arithmetic (Eq. 3). Kept for the closed-form
 * checks of Eqs. 9-14 in tests/test_paper.c. */
#include "sim/internal.h"

#include <math.h>

double isim_toy_latency(double n_params, double bytes_per_param, double n_layers, double n_reduce,
                        double t_hop_s, double hbm_bytes_per_s, double flops_per_s, double batch,
                        double n_devices)
{
    double t_reduce = 2 * fmax(sqrt(n_devices) - 1, 0) * t_hop_s;
    double mem = bytes_per_param * n_params / (n_devices * hbm_bytes_per_s);
    double flop = 2 * n_params * batch / (n_devices * flops_per_s);
    return n_layers * n_reduce * t_reduce + fmax(mem, flop);
}
