/* initializers.c - Keras weight initializers: config parsing (every form
 * Keras 2.0 to Keras 3 writes), tf.keras 2.15 JSON, and filling a weight
 * (see initializers.h for the formulas). */
#include "initializers.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pyfmt.h"
#include "rng.h"

/* Keys a class's config may have. */
#define KEY_SEED (1u << 0)
#define KEY_VALUE (1u << 1)      /* Constant */
#define KEY_MINMAX (1u << 2)     /* RandomUniform */
#define KEY_MEANSTD (1u << 3)    /* RandomNormal, TruncatedNormal */
#define KEY_VS (1u << 4)         /* VarianceScaling: scale, mode, distribution */
#define KEY_GAIN (1u << 5)       /* Orthogonal */

static const struct init_class {
    const char *cls;   /* Keras class name */
    const char *fn;    /* the snake-case name Keras accepts as a string */
    const char *alias; /* a Keras 2 alias, or NULL */
    enum init_kind kind;
    unsigned keys;
    double scale;      /* VarianceScaling family */
    enum init_mode mode;
    enum init_distribution distribution;
} init_classes[] = {
    {"Zeros", "zeros", "zero", INIT_ZEROS, 0, 0, 0, 0},
    {"Ones", "ones", "one", INIT_ONES, 0, 0, 0, 0},
    {"Constant", "constant", NULL, INIT_CONSTANT, KEY_VALUE, 0, 0, 0},
    {"RandomUniform", "random_uniform", "uniform", INIT_RANDOM_UNIFORM, KEY_MINMAX | KEY_SEED, 0,
     0, 0},
    {"RandomNormal", "random_normal", "normal", INIT_RANDOM_NORMAL, KEY_MEANSTD | KEY_SEED, 0, 0,
     0},
    {"TruncatedNormal", "truncated_normal", NULL, INIT_TRUNCATED_NORMAL, KEY_MEANSTD | KEY_SEED, 0,
     0, 0},
    {"VarianceScaling", "variance_scaling", NULL, INIT_VARIANCE_SCALING, KEY_VS | KEY_SEED, 1.0,
     INIT_MODE_FAN_IN, INIT_DISTRIBUTION_TRUNCATED_NORMAL},
    {"GlorotUniform", "glorot_uniform", NULL, INIT_GLOROT_UNIFORM, KEY_SEED, 1.0,
     INIT_MODE_FAN_AVG, INIT_DISTRIBUTION_UNIFORM},
    {"GlorotNormal", "glorot_normal", NULL, INIT_GLOROT_NORMAL, KEY_SEED, 1.0, INIT_MODE_FAN_AVG,
     INIT_DISTRIBUTION_TRUNCATED_NORMAL},
    {"HeUniform", "he_uniform", NULL, INIT_HE_UNIFORM, KEY_SEED, 2.0, INIT_MODE_FAN_IN,
     INIT_DISTRIBUTION_UNIFORM},
    {"HeNormal", "he_normal", NULL, INIT_HE_NORMAL, KEY_SEED, 2.0, INIT_MODE_FAN_IN,
     INIT_DISTRIBUTION_TRUNCATED_NORMAL},
    {"LecunUniform", "lecun_uniform", NULL, INIT_LECUN_UNIFORM, KEY_SEED, 1.0, INIT_MODE_FAN_IN,
     INIT_DISTRIBUTION_UNIFORM},
    {"LecunNormal", "lecun_normal", NULL, INIT_LECUN_NORMAL, KEY_SEED, 1.0, INIT_MODE_FAN_IN,
     INIT_DISTRIBUTION_TRUNCATED_NORMAL},
    {"Orthogonal", "orthogonal", NULL, INIT_ORTHOGONAL, KEY_GAIN | KEY_SEED, 1.0, 0, 0},
};

#define N_CLASSES (sizeof(init_classes) / sizeof(init_classes[0]))

static const char *const mode_names[] = {
    [INIT_MODE_FAN_IN] = "fan_in",
    [INIT_MODE_FAN_OUT] = "fan_out",
    [INIT_MODE_FAN_AVG] = "fan_avg",
};

static const char *const distribution_names[] = {
    [INIT_DISTRIBUTION_TRUNCATED_NORMAL] = "truncated_normal",
    [INIT_DISTRIBUTION_UNTRUNCATED_NORMAL] = "untruncated_normal",
    [INIT_DISTRIBUTION_UNIFORM] = "uniform",
};

static const struct init_class *class_of(enum init_kind kind)
{
    for (size_t i = 0; i < N_CLASSES; i++)
        if (init_classes[i].kind == kind)
            return &init_classes[i];
    return NULL;
}

void initializer_init(struct initializer *init, enum init_kind kind)
{
    memset(init, 0, sizeof(*init));
    init->kind = kind;
    const struct init_class *c = class_of(kind);
    if (c) {
        init->scale = c->scale;
        init->mode = c->mode;
        init->distribution = c->distribution;
    }
    switch (kind) {
    case INIT_RANDOM_UNIFORM:
        init->a = -0.05;
        init->b = 0.05;
        break;
    case INIT_RANDOM_NORMAL:
    case INIT_TRUNCATED_NORMAL:
        init->a = 0.0;
        init->b = 0.05;
        break;
    default:
        break;
    }
}

static int fail(struct init_error *e, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct init_error *e, const char *key, const char *fmt, ...)
{
    snprintf(e->key, sizeof(e->key), "%s", key);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static bool finite_number(const cJSON *it, double *ret)
{
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return false;
    *ret = it->valuedouble;
    return true;
}

/* One key of a class's config into init. */
static int parse_config_key(struct initializer *init, const struct init_class *c, const cJSON *k,
                            struct init_error *e)
{
    const char *key = k->string;
    char subkey[sizeof(e->key)];
    snprintf(subkey, sizeof(subkey), "config/%.80s", key);
    double v;
    if (strcmp(key, "seed") == 0 && (c->keys & KEY_SEED)) {
        if (cJSON_IsNull(k))
            return 0;
        if (!cJSON_IsNumber(k) || k->valuedouble != floor(k->valuedouble) ||
            !(fabs(k->valuedouble) <= 9007199254740992.0))
            return fail(e, subkey, "must be null or an integer");
        init->has_seed = true;
        init->seed = (int64_t)k->valuedouble;
        return 0;
    }
    if (strcmp(key, "value") == 0 && (c->keys & KEY_VALUE)) {
        if (!finite_number(k, &v))
            return fail(e, subkey, "must be a finite number");
        init->a = v;
        return 0;
    }
    if ((strcmp(key, "minval") == 0 || strcmp(key, "maxval") == 0) && (c->keys & KEY_MINMAX)) {
        if (!finite_number(k, &v))
            return fail(e, subkey, "must be a finite number");
        *(key[1] == 'i' ? &init->a : &init->b) = v;
        return 0;
    }
    if ((strcmp(key, "mean") == 0 || strcmp(key, "stddev") == 0) && (c->keys & KEY_MEANSTD)) {
        if (!finite_number(k, &v) || (key[0] == 's' && v < 0))
            return fail(e, subkey, "must be a finite number%s",
                        key[0] == 's' ? " >= 0" : "");
        *(key[0] == 'm' ? &init->a : &init->b) = v;
        return 0;
    }
    if (strcmp(key, "scale") == 0 && (c->keys & KEY_VS)) {
        if (!finite_number(k, &v) || !(v > 0))
            return fail(e, subkey, "must be a number > 0");
        init->scale = v;
        return 0;
    }
    if (strcmp(key, "gain") == 0 && (c->keys & KEY_GAIN)) {
        if (!finite_number(k, &v))
            return fail(e, subkey, "must be a finite number");
        init->scale = v;
        return 0;
    }
    if (strcmp(key, "mode") == 0 && (c->keys & KEY_VS)) {
        const char *s = cJSON_GetStringValue(k);
        for (size_t i = 0; s && i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
            if (strcmp(s, mode_names[i]) == 0) {
                init->mode = (enum init_mode)i;
                return 0;
            }
        }
        return fail(e, subkey, "must be \"fan_in\", \"fan_out\" or \"fan_avg\"");
    }
    if (strcmp(key, "distribution") == 0 && (c->keys & KEY_VS)) {
        const char *s = cJSON_GetStringValue(k);
        for (size_t i = 0; s && i < sizeof(distribution_names) / sizeof(distribution_names[0]);
             i++) {
            if (strcmp(s, distribution_names[i]) == 0) {
                init->distribution = (enum init_distribution)i;
                return 0;
            }
        }
        if (s && strcmp(s, "normal") == 0) { /* Keras 2.0 - 2.2 */
            init->distribution = INIT_DISTRIBUTION_TRUNCATED_NORMAL;
            return 0;
        }
        return fail(e, subkey,
                    "must be \"uniform\", \"truncated_normal\", \"untruncated_normal\" or "
                    "\"normal\"");
    }
    return fail(e, subkey, "unknown key for %s", c->cls);
}

int initializer_parse(struct initializer *ret, const cJSON *it, bool vector,
                      struct init_error *e)
{
    char subkey[sizeof(e->key)];
    const char *name = cJSON_GetStringValue(it);
    const cJSON *cfg = NULL;
    if (cJSON_IsObject(it)) {
        for (const cJSON *k = it->child; k; k = k->next) {
            if (strcmp(k->string, "class_name") == 0) {
                name = cJSON_GetStringValue(k);
                if (!name)
                    return fail(e, "class_name", "must be a string");
            } else if (strcmp(k->string, "config") == 0) {
                if (!cJSON_IsObject(k) && !cJSON_IsNull(k))
                    return fail(e, "config", "must be an object");
                cfg = k;
            } else if (strcmp(k->string, "module") == 0 ||
                       strcmp(k->string, "registered_name") == 0) {
                if (!cJSON_IsString(k) && !cJSON_IsNull(k))
                    return fail(e, k->string, "must be a string or null");
            } else {
                snprintf(subkey, sizeof(subkey), "%.80s", k->string);
                return fail(e, subkey, "unknown initializer key");
            }
        }
        if (!name)
            return fail(e, "class_name", "missing");
    } else if (!name) {
        return fail(e, "",
                    "must be an initializer name or {\"class_name\": ..., \"config\": {...}}");
    }
    const struct init_class *c = NULL;
    for (size_t i = 0; i < N_CLASSES && !c; i++) {
        const struct init_class *t = &init_classes[i];
        if (strcmp(name, t->cls) == 0 || strcmp(name, t->fn) == 0 ||
            (t->alias && strcmp(name, t->alias) == 0))
            c = t;
    }
    if (!c)
        return fail(e, cJSON_IsObject(it) ? "class_name" : "",
                    "unsupported initializer \"%.64s\" (supported: Zeros, Ones, Constant, "
                    "RandomUniform, RandomNormal, TruncatedNormal, VarianceScaling, "
                    "GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform, "
                    "LecunNormal, Orthogonal)", name);
    if (vector && c->kind == INIT_ORTHOGONAL)
        return fail(e, cJSON_IsObject(it) ? "class_name" : "",
                    "Orthogonal needs a weight of at least 2 dimensions");
    struct initializer init;
    initializer_init(&init, c->kind);
    for (const cJSON *k = cfg ? cfg->child : NULL; k; k = k->next) {
        for (const cJSON *j = cfg->child; j != k; j = j->next)
            if (strcmp(j->string, k->string) == 0) {
                snprintf(subkey, sizeof(subkey), "config/%.80s", k->string);
                return fail(e, subkey, "duplicate key");
            }
        int err = parse_config_key(&init, c, k, e);
        if (err)
            return err;
    }
    if (init.kind == INIT_RANDOM_UNIFORM && !(init.a <= init.b))
        return fail(e, "config/maxval", "must be >= minval");
    *ret = init;
    return 0;
}

enum init_kind initializer_resolve(const struct initializer *init, const char *weight_name,
                                   struct initializer *ret)
{
    if (init && init->kind != INIT_DEFAULT) {
        *ret = *init;
        return ret->kind;
    }
    enum init_kind k = INIT_ZEROS;
    if (strstr(weight_name, "kernel"))
        k = INIT_GLOROT_UNIFORM;
    else if (strcmp(weight_name, "gamma") == 0 || strcmp(weight_name, "moving_variance") == 0)
        k = INIT_ONES;
    initializer_init(ret, k);
    return k;
}

int initializer_to_json(char *buf, size_t size, const struct initializer *init,
                        const char *weight_name)
{
    struct initializer r;
    enum init_kind kind = initializer_resolve(init, weight_name, &r);
    const struct init_class *c = class_of(kind);
    char seed[32], x[PYFMT_SIZE], y[PYFMT_SIZE], z[PYFMT_SIZE];
    if (r.has_seed)
        snprintf(seed, sizeof(seed), "%lld", (long long)r.seed);
    else
        snprintf(seed, sizeof(seed), "null");
    pyfmt_double(x, r.a, PYFMT_NONFINITE_JSON);
    pyfmt_double(y, r.b, PYFMT_NONFINITE_JSON);
    pyfmt_double(z, r.scale, PYFMT_NONFINITE_JSON);
    int n;
    if (c->keys & KEY_VALUE)
        n = snprintf(buf, size, "{\"class_name\": \"%s\", \"config\": {\"value\": %s}}", c->cls, x);
    else if (c->keys & KEY_MINMAX)
        n = snprintf(buf, size, "{\"class_name\": \"%s\", \"config\": {\"minval\": %s, "
                     "\"maxval\": %s, \"seed\": %s}}", c->cls, x, y, seed);
    else if (c->keys & KEY_MEANSTD)
        n = snprintf(buf, size, "{\"class_name\": \"%s\", \"config\": {\"mean\": %s, "
                     "\"stddev\": %s, \"seed\": %s}}", c->cls, x, y, seed);
    else if (c->keys & KEY_VS)
        n = snprintf(buf, size, "{\"class_name\": \"%s\", \"config\": {\"scale\": %s, "
                     "\"mode\": \"%s\", \"distribution\": \"%s\", \"seed\": %s}}", c->cls, z,
                     mode_names[r.mode], distribution_names[r.distribution], seed);
    else if (c->keys & KEY_GAIN)
        n = snprintf(buf, size, "{\"class_name\": \"%s\", \"config\": {\"gain\": %s, "
                     "\"seed\": %s}}", c->cls, z, seed);
    else if (c->keys & KEY_SEED)
        n = snprintf(buf, size, "{\"class_name\": \"%s\", \"config\": {\"seed\": %s}}", c->cls,
                     seed);
    else
        n = snprintf(buf, size, "{\"class_name\": \"%s\", \"config\": {}}", c->cls);
    return n < 0 || (size_t)n >= size ? -ENOSPC : n;
}

void initializer_fans(int ndim, const int *shape, double *ret_fan_in, double *ret_fan_out)
{
    if (ndim < 1) {
        *ret_fan_in = *ret_fan_out = 1.0;
    } else if (ndim == 1) {
        *ret_fan_in = *ret_fan_out = shape[0];
    } else {
        double field = 1.0;
        for (int i = 0; i < ndim - 2; i++)
            field *= shape[i];
        *ret_fan_in = field * shape[ndim - 2];
        *ret_fan_out = field * shape[ndim - 1];
    }
}

/* A standard normal draw (Box-Muller on two uniforms). */
static double normal_draw(struct rng *r)
{
    double u1 = 1.0 - rng_uniform(r); /* (0, 1] */
    double u2 = rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* A standard normal draw redrawn until it is within 2 (TensorFlow's
 * truncated_normal). */
static double truncated_draw(struct rng *r)
{
    for (;;) {
        double z = normal_draw(r);
        if (fabs(z) <= 2.0)
            return z;
    }
}

/* Orthonormal vectors in place: nvec vectors of len elements, element k of
 * vector j at p[j * sj + k * sk] (len >= nvec), by modified Gram-Schmidt run
 * twice (dot products in double).  A vector that vanishes (probability 0
 * for normal draws) is left as it is. */
static void orthonormalize(float *p, size_t nvec, size_t len, size_t sj, size_t sk)
{
    for (size_t j = 0; j < nvec; j++) {
        float *v = p + j * sj;
        for (int pass = 0; pass < 2; pass++) {
            for (size_t i = 0; i < j; i++) {
                const float *u = p + i * sj;
                double dot = 0.0;
                for (size_t k = 0; k < len; k++)
                    dot += (double)u[k * sk] * v[k * sk];
                for (size_t k = 0; k < len; k++)
                    v[k * sk] = (float)(v[k * sk] - dot * u[k * sk]);
            }
        }
        double norm = 0.0;
        for (size_t k = 0; k < len; k++)
            norm += (double)v[k * sk] * v[k * sk];
        norm = sqrt(norm);
        if (norm > 0.0)
            for (size_t k = 0; k < len; k++)
                v[k * sk] = (float)(v[k * sk] / norm);
    }
}

void initializer_fill(float *p, int ndim, const int *shape, const struct initializer *init,
                      const char *weight_name, struct rng *r)
{
    size_t size = 1;
    for (int i = 0; i < ndim; i++)
        size *= (size_t)shape[i];
    struct initializer in;
    switch (initializer_resolve(init, weight_name, &in)) {
    case INIT_DEFAULT:
    case INIT_ZEROS:
        memset(p, 0, size * sizeof(*p));
        return;
    case INIT_ONES:
    case INIT_CONSTANT: {
        float v = in.kind == INIT_ONES ? 1.0f : (float)in.a;
        for (size_t k = 0; k < size; k++)
            p[k] = v;
        return;
    }
    case INIT_RANDOM_UNIFORM:
        for (size_t k = 0; k < size; k++)
            p[k] = (float)(in.a + (in.b - in.a) * rng_uniform(r));
        return;
    case INIT_RANDOM_NORMAL:
        for (size_t k = 0; k < size; k++)
            p[k] = (float)(in.a + in.b * normal_draw(r));
        return;
    case INIT_TRUNCATED_NORMAL:
        for (size_t k = 0; k < size; k++)
            p[k] = (float)(in.a + in.b * truncated_draw(r));
        return;
    case INIT_ORTHOGONAL: {
        size_t cols = ndim > 0 ? (size_t)shape[ndim - 1] : 1, rows = cols ? size / cols : 0;
        for (size_t k = 0; k < size; k++)
            p[k] = (float)normal_draw(r);
        if (rows >= cols) /* orthonormal columns: stride cols between elements */
            orthonormalize(p, cols, rows, 1, cols);
        else              /* orthonormal rows */
            orthonormalize(p, rows, cols, cols, 1);
        for (size_t k = 0; k < size; k++)
            p[k] = (float)(in.scale * p[k]);
        return;
    }
    case INIT_VARIANCE_SCALING:
    case INIT_GLOROT_UNIFORM:
    case INIT_GLOROT_NORMAL:
    case INIT_HE_UNIFORM:
    case INIT_HE_NORMAL:
    case INIT_LECUN_UNIFORM:
    case INIT_LECUN_NORMAL:
        break;
    }
    double fan_in, fan_out, n;
    initializer_fans(ndim, shape, &fan_in, &fan_out);
    n = in.mode == INIT_MODE_FAN_IN    ? fan_in
        : in.mode == INIT_MODE_FAN_OUT ? fan_out
                                       : (fan_in + fan_out) / 2.0;
    if (n < 1.0)
        n = 1.0;
    if (in.distribution == INIT_DISTRIBUTION_UNIFORM) {
        /* (3 scale) / n: for Glorot, 3 / ((in + out) / 2) rounds as 6 / (in + out) */
        double limit = sqrt(3.0 * in.scale / n);
        for (size_t k = 0; k < size; k++)
            p[k] = (float)((2.0 * rng_uniform(r) - 1.0) * limit);
    } else if (in.distribution == INIT_DISTRIBUTION_TRUNCATED_NORMAL) {
        /* 0.8796... = stddev of a standard normal truncated to [-2, 2] */
        double stddev = sqrt(in.scale / n) / 0.87962566103423978;
        for (size_t k = 0; k < size; k++)
            p[k] = (float)(stddev * truncated_draw(r));
    } else {
        double stddev = sqrt(in.scale / n);
        for (size_t k = 0; k < size; k++)
            p[k] = (float)(stddev * normal_draw(r));
    }
}
