/* initializers.h - Keras weight initializers: reading them from a layer
 * config as Keras 2.0 to Keras 3 write them, writing them back, and filling
 * a weight with them from a seeded stream.
 *
 * Accepted forms: a string ("glorot_uniform", "GlorotUniform", "he_normal",
 * "zeros", "zero", "normal", ...), or an object {"class_name": ...,
 * "config": {...}} with Keras 3's optional "module" / "registered_name".
 * Classes and their config keys (defaults as Keras):
 *   Zeros, Ones                         (no keys)
 *   Constant                            value = 0
 *   RandomUniform                       minval = -0.05, maxval = 0.05, seed
 *   RandomNormal, TruncatedNormal       mean = 0, stddev = 0.05, seed
 *   VarianceScaling                     scale = 1, mode = fan_in, distribution =
 *                                       truncated_normal, seed
 *   GlorotUniform/Normal, HeUniform/Normal, LecunUniform/Normal    seed
 *   Orthogonal                          gain = 1, seed
 * The shorthands are VarianceScaling: Glorot = (1, fan_avg), He = (2,
 * fan_in), Lecun = (1, fan_in), *Uniform with distribution uniform, *Normal
 * with truncated_normal.  Keras 2.0's distribution "normal" is read as
 * truncated_normal (as Keras 2.3+ reads it).
 *
 * Values (Keras' formulas; fans of a weight of shape (..., in, out): fan_in =
 * in * receptive field, fan_out = out * receptive field, receptive field =
 * product of the leading dimensions; a 1-D weight has fan_in = fan_out =
 * its size):
 *   VarianceScaling  s = scale / max(1, n), n = fan_in | fan_out |
 *                    (fan_in + fan_out) / 2;
 *                    uniform on [-sqrt(3 s), sqrt(3 s)];
 *                    truncated_normal: normal with stddev sqrt(s) / 0.8796...
 *                    redrawn outside 2 stddev; untruncated_normal: stddev sqrt(s)
 *   TruncatedNormal  normal(mean, stddev) redrawn outside mean +- 2 stddev
 *   Orthogonal       gain * Q of the QR decomposition of a normal matrix of
 *                    shape (max(rows, cols), min(rows, cols)), rows = product
 *                    of all but the last dimension, cols = the last; the
 *                    rows (rows < cols) or columns of the weight are
 *                    orthonormal.
 * Random values come from the stream the caller passes (the job's seed); an
 * initializer's own "seed" is kept for writing the config back but does not
 * change the values: traind cannot reproduce TensorFlow's generators, so
 * the job's seed alone decides every initial weight.
 *
 * No allocation, no I/O; thread-safe. */
#ifndef TRAIND_INITIALIZERS_H
#define TRAIND_INITIALIZERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;
struct rng;

enum init_kind {
    INIT_DEFAULT = 0, /* the weight's Keras default: glorot_uniform for kernels, ones for
                         gamma and moving_variance, zeros for the rest */
    INIT_ZEROS,
    INIT_ONES,
    INIT_CONSTANT,
    INIT_RANDOM_UNIFORM,
    INIT_RANDOM_NORMAL,
    INIT_TRUNCATED_NORMAL,
    INIT_VARIANCE_SCALING,
    INIT_GLOROT_UNIFORM,
    INIT_GLOROT_NORMAL,
    INIT_HE_UNIFORM,
    INIT_HE_NORMAL,
    INIT_LECUN_UNIFORM,
    INIT_LECUN_NORMAL,
    INIT_ORTHOGONAL,
};

enum init_mode {
    INIT_MODE_FAN_IN,
    INIT_MODE_FAN_OUT,
    INIT_MODE_FAN_AVG,
};

enum init_distribution {
    INIT_DISTRIBUTION_TRUNCATED_NORMAL,
    INIT_DISTRIBUTION_UNTRUNCATED_NORMAL,
    INIT_DISTRIBUTION_UNIFORM,
};

/* One initializer as configured.  Plain data: copied with the layer config. */
struct initializer {
    enum init_kind kind;
    enum init_mode mode;                 /* VarianceScaling family */
    enum init_distribution distribution; /* VarianceScaling family */
    double scale;                        /* VarianceScaling family; Orthogonal gain */
    double a, b;                         /* RandomUniform (minval, maxval); RandomNormal and
                                            TruncatedNormal (mean, stddev); Constant (value) */
    bool has_seed;                       /* the config's seed (kept, not used) */
    int64_t seed;
};

/* init with Keras' defaults for kind (scale, mode, ... of the class). */
void initializer_init(struct initializer *init, enum init_kind kind);

/* Why initializer_parse failed: key is the path below the initializer's
 * key ("" for the value itself, "class_name", "config/mode", ...). */
struct init_error {
    char key[96];
    char msg[320];
};

/* Parse an initializer value (string or object).  vector: the weight is
 * 1-D (a bias, BN parameters), which Orthogonal refuses.  0, or -EINVAL
 * with e filled; ret is written only on success. */
int initializer_parse(struct initializer *ret, const struct cJSON *it, bool vector,
                      struct init_error *e);

/* The resolved kind for a weight called weight_name ("kernel", "gamma",
 * ...): init->kind, or the weight's default when it is INIT_DEFAULT. */
enum init_kind initializer_resolve(const struct initializer *init, const char *weight_name,
                                   struct initializer *ret);

/* The tf.keras 2.15 JSON of init for a weight called weight_name, as
 * get_config() prints it ({"class_name": "GlorotUniform", "config":
 * {"seed": null}}) into buf; returns the length, or -ENOSPC when buf is too
 * small. */
int initializer_to_json(char *buf, size_t size, const struct initializer *init,
                        const char *weight_name);

/* Fill p, a weight called weight_name of shape (ndim, shape), with init's
 * values, drawing from r. */
void initializer_fill(float *p, int ndim, const int *shape, const struct initializer *init,
                      const char *weight_name, struct rng *r);

/* Fans as Keras' compute_fans for a weight of shape (ndim, shape). */
void initializer_fans(int ndim, const int *shape, double *ret_fan_in, double *ret_fan_out);

#endif
