/* kernels.h - which compute kernels the engine runs, chosen once at start-up.
 *
 * One binary holds every path the target architecture allows:
 *   generic  plain C + cblas (im2col + GEMM for every convolution), any CPU;
 *   avx2     AVX2 + FMA register-blocked conv GEMMs (x86-64 only);
 *   avx512   AVX-512F register-blocked conv GEMMs (x86-64 only).
 * kernels_init() picks the best path the CPU supports, or the one named by the
 * TRAIND_KERNELS environment variable.  Results are bit-identical for the same
 * inputs, thread count and path; they may differ in the last bits between
 * paths (another summation blocking).
 *
 * Thread safety: the active path is one atomic word.  Switch it (kernels_use)
 * only while no model is computing: the daemon picks it once before any job
 * starts; tests switch between paths to compare them. */
#ifndef TRAIND_KERNELS_H
#define TRAIND_KERNELS_H

#include <stdbool.h>

#include "diag.h"

enum kernels_kind {
    KERNELS_KIND_GENERIC,
    KERNELS_KIND_AVX2,
    KERNELS_KIND_AVX512,
    KERNELS_KIND_COUNT,
};

/* "generic", "avx2", "avx512" */
const char *kernels_name(enum kernels_kind k);
/* 0, or -EINVAL for a name that is not one of kernels_name()'s. */
int kernels_parse(const char *name, enum kernels_kind *ret);
/* True when this binary has the path and this CPU (and OS) can run it. */
bool kernels_supported(enum kernels_kind k);
/* The fastest supported path. */
enum kernels_kind kernels_best(void);

/* Select the path from env (the value of TRAIND_KERNELS; NULL or "" = the best
 * supported).  0, -EINVAL for an unknown name or -ENOTSUP when the CPU lacks
 * the path; d's field is "TRAIND_KERNELS".  On failure the path is unchanged. */
int kernels_init(const char *env, struct diag *d);
/* Switch to k: 0 or -ENOTSUP. */
int kernels_use(enum kernels_kind k);
/* The path in use.  When neither kernels_init nor kernels_use was called yet,
 * the first call selects from getenv("TRAIND_KERNELS"), or the best path when
 * that value is invalid (programs that must reject it call kernels_init). */
enum kernels_kind kernels_active(void);

/* The convolution algorithms, a diagnostic switch beside the kernel path:
 * TRAIND_CONV_ALGO=auto (NULL or "": the engine picks per layer, Winograd
 * where it pays) or direct (every convolution runs a direct algorithm:
 * implicit GEMM, im2col + GEMM or the C = 1 kernel), to compare the
 * algorithms' numerics.  0 or -EINVAL (field "TRAIND_CONV_ALGO"); on
 * failure the choice is unchanged.  Same thread-safety rule as kernels_use. */
int kernels_conv_algo_init(const char *env, struct diag *d);
/* False when TRAIND_CONV_ALGO=direct was selected. */
bool kernels_winograd_allowed(void);

#endif
