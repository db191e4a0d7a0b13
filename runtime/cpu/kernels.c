/* Choosing a kernel set at run time from the CPU's features, so that one build runs on
 * any x86-64 CPU (and the scalar set anywhere). */
#include "runtime/cpu/internal.h"

#include <stdio.h>
#include <string.h>

const char *const isim_rt_kernel_sets[] = {"auto", "avx512", "avx2", "scalar", NULL};

#if defined(__x86_64__) && defined(ISIM_RT_X86_KERNELS)
static bool has_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bf16");
}

static bool has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

const rt_kernels *isim__rt_kernels_pick(const char *name)
{
    bool any = !name || !name[0] || strcmp(name, "auto") == 0;
#if defined(__x86_64__) && defined(ISIM_RT_X86_KERNELS)
    if ((any || strcmp(name, "avx512") == 0) && has_avx512())
        return &isim__rt_kernels_avx512;
    if ((any || strcmp(name, "avx2") == 0) && has_avx2())
        return &isim__rt_kernels_avx2;
#endif
    if (any || strcmp(name, "scalar") == 0)
        return &isim__rt_kernels_scalar;
    return NULL;
}

isim_status isim__rt_kernels_choose(const char *name, const rt_kernels **out, isim_error *err)
{
    if ((*out = isim__rt_kernels_pick(name)))
        return ISIM_OK;
    char list[80] = "";
    size_t at = 0;
    for (int i = 0; isim_rt_kernel_sets[i]; i++) {
        if (strcmp(name, isim_rt_kernel_sets[i]) == 0)
            return isim__rt_fail(err, ISIM_EINVAL, "this CPU cannot run the '%s' kernels", name);
        at += (size_t)snprintf(list + at, sizeof list - at, "%s%s",
                               !i                           ? ""
                               : isim_rt_kernel_sets[i + 1] ? ", "
                                                            : " or ",
                               isim_rt_kernel_sets[i]);
    }
    return isim__rt_fail(err, ISIM_EINVAL, "unknown kernels '%s': the choices are %s", name, list);
}
