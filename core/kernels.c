/* kernels.c - see kernels.h. */
#include "kernels.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[KERNELS_KIND_COUNT] = {
    [KERNELS_KIND_GENERIC] = "generic",
    [KERNELS_KIND_AVX2] = "avx2",
    [KERNELS_KIND_AVX512] = "avx512",
};

/* -1 until selected */
static atomic_int active = -1;

const char *kernels_name(enum kernels_kind k)
{
    return (unsigned)k < KERNELS_KIND_COUNT ? names[k] : "unknown";
}

int kernels_parse(const char *name, enum kernels_kind *ret)
{
    for (int k = 0; name && k < KERNELS_KIND_COUNT; k++)
        if (strcmp(name, names[k]) == 0) {
            *ret = (enum kernels_kind)k;
            return 0;
        }
    return -EINVAL;
}

bool kernels_supported(enum kernels_kind k)
{
    switch (k) {
    case KERNELS_KIND_GENERIC:
        return true;
#ifdef TRAIND_X86_KERNELS
    /* libgcc's checks include the OS's XSAVE support for the wider registers */
    case KERNELS_KIND_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case KERNELS_KIND_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
#endif
    default:
        return false;
    }
}

enum kernels_kind kernels_best(void)
{
    for (int k = KERNELS_KIND_COUNT - 1; k > 0; k--)
        if (kernels_supported((enum kernels_kind)k))
            return (enum kernels_kind)k;
    return KERNELS_KIND_GENERIC;
}

int kernels_init(const char *env, struct diag *d)
{
    enum kernels_kind k = kernels_best();
    if (env && *env) {
        if (kernels_parse(env, &k) != 0)
            return diag_set(d, -EINVAL, "TRAIND_KERNELS",
                            "unknown kernel path \"%.64s\" (expected generic, avx2 or avx512)",
                            env);
        if (!kernels_supported(k))
            return diag_set(d, -ENOTSUP, "TRAIND_KERNELS",
                            "this CPU or build cannot run the %s kernels (%s)", names[k],
                            k == KERNELS_KIND_AVX512 ? "needs AVX-512F"
                                                     : "needs AVX2 and FMA on x86-64");
    }
    atomic_store(&active, (int)k);
    return 0;
}

int kernels_use(enum kernels_kind k)
{
    if (!kernels_supported(k))
        return -ENOTSUP;
    atomic_store(&active, (int)k);
    return 0;
}

enum kernels_kind kernels_active(void)
{
    int k = atomic_load_explicit(&active, memory_order_relaxed);
    if (k >= 0)
        return (enum kernels_kind)k;
    if (kernels_init(getenv("TRAIND_KERNELS"), NULL) != 0)
        kernels_init(NULL, NULL);
    return (enum kernels_kind)atomic_load(&active);
}

/* 1 = auto (Winograd allowed), 0 = direct */
static atomic_int winograd_allowed = 1;

int kernels_conv_algo_init(const char *env, struct diag *d)
{
    int allow = 1;
    if (env && *env) {
        if (strcmp(env, "direct") == 0)
            allow = 0;
        else if (strcmp(env, "auto") != 0)
            return diag_set(d, -EINVAL, "TRAIND_CONV_ALGO",
                            "unknown convolution algorithm choice \"%.64s\" (expected auto or direct)",
                            env);
    }
    atomic_store(&winograd_allowed, allow);
    return 0;
}

bool kernels_winograd_allowed(void)
{
    return atomic_load_explicit(&winograd_allowed, memory_order_relaxed) != 0;
}
