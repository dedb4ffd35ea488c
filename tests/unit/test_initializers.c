/* test_initializers.c - Keras initializers (core/initializers.c): every
 * config form Keras 2.0 to 3 writes, errors naming the key, the JSON written
 * back, and the values: exact bounds for uniform and truncated draws,
 * orthogonality to 1e-5, and moments from Keras' formulas with bounds many
 * standard errors wide (N >= 73728 draws), so that no correct rounding can
 * cross them.  Then a Keras 2.0.8 model (list-form config, VarianceScaling
 * kernels) parsed and initialised through the model. */
#include "initializers.h"
#include "model.h"
#include "rng.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>

static char *read_text(const char *rel)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", TEST_SOURCE_DIR, rel);
    FILE *f = fopen(path, "rbe");
    if (!f)
        return NULL;
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    if (buf)
        len = fread(buf, 1, cap - 1, f);
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

static int parse(const char *json, bool vector, struct initializer *ret, struct init_error *e)
{
    cJSON *it = cJSON_Parse(json);
    CHECK_MSG(it != NULL, "bad test JSON %s", json);
    if (!it)
        return -1;
    int rc = initializer_parse(ret, it, vector, e);
    cJSON_Delete(it);
    return rc;
}

/* json parses to kind (and, for VarianceScaling shorthands, scale/mode/distribution) */
static void expect_kind(const char *json, enum init_kind kind, double scale, enum init_mode mode,
                        enum init_distribution dist)
{
    struct initializer in;
    struct init_error e = {{0}, {0}};
    int rc = parse(json, false, &in, &e);
    CHECK_MSG(rc == 0, "%s: %s: %s", json, e.key, e.msg);
    if (rc)
        return;
    CHECK_MSG(in.kind == kind, "%s: kind %d, want %d", json, in.kind, kind);
    if (scale > 0) {
        CHECK_MSG(in.scale == scale && in.mode == mode && in.distribution == dist,
                  "%s: scale %g mode %d dist %d", json, in.scale, in.mode, in.distribution);
    }
}

static void expect_parse_error(const char *json, bool vector, const char *key, const char *needle)
{
    struct initializer in;
    struct init_error e = {{0}, {0}};
    int rc = parse(json, vector, &in, &e);
    CHECK_MSG(rc == -EINVAL, "%s accepted", json);
    CHECK_MSG(strcmp(e.key, key) == 0, "%s: key \"%s\", want \"%s\"", json, e.key, key);
    CHECK_MSG(strstr(e.msg, needle) != NULL, "%s: message \"%s\" lacks \"%s\"", json, e.msg,
              needle);
}

static void test_parse_forms(void)
{
    const enum init_mode IN = INIT_MODE_FAN_IN, AVG = INIT_MODE_FAN_AVG;
    const enum init_distribution U = INIT_DISTRIBUTION_UNIFORM,
                                 TN = INIT_DISTRIBUTION_TRUNCATED_NORMAL;
    /* string shorthands, snake case and class names, Keras 2 aliases */
    expect_kind("\"glorot_uniform\"", INIT_GLOROT_UNIFORM, 1.0, AVG, U);
    expect_kind("\"GlorotNormal\"", INIT_GLOROT_NORMAL, 1.0, AVG, TN);
    expect_kind("\"he_uniform\"", INIT_HE_UNIFORM, 2.0, IN, U);
    expect_kind("\"he_normal\"", INIT_HE_NORMAL, 2.0, IN, TN);
    expect_kind("\"lecun_uniform\"", INIT_LECUN_UNIFORM, 1.0, IN, U);
    expect_kind("\"lecun_normal\"", INIT_LECUN_NORMAL, 1.0, IN, TN);
    expect_kind("\"zero\"", INIT_ZEROS, 0, IN, U);
    expect_kind("\"one\"", INIT_ONES, 0, IN, U);
    expect_kind("\"uniform\"", INIT_RANDOM_UNIFORM, 0, IN, U);
    expect_kind("\"normal\"", INIT_RANDOM_NORMAL, 0, IN, U);
    expect_kind("\"truncated_normal\"", INIT_TRUNCATED_NORMAL, 0, IN, U);
    expect_kind("\"orthogonal\"", INIT_ORTHOGONAL, 0, IN, U);
    expect_kind("\"variance_scaling\"", INIT_VARIANCE_SCALING, 1.0, IN, TN);
    /* Keras 2.0: glorot_uniform spelled as VarianceScaling */
    expect_kind("{\"class_name\": \"VarianceScaling\", \"config\": {\"scale\": 1.0, \"mode\": "
                "\"fan_avg\", \"distribution\": \"uniform\", \"seed\": null}}",
                INIT_VARIANCE_SCALING, 1.0, AVG, U);
    /* Keras 2.0 "normal" is truncated_normal */
    expect_kind("{\"class_name\": \"VarianceScaling\", \"config\": {\"scale\": 2.0, \"mode\": "
                "\"fan_in\", \"distribution\": \"normal\", \"seed\": null}}",
                INIT_VARIANCE_SCALING, 2.0, IN, TN);
    expect_kind("{\"class_name\": \"VarianceScaling\", \"config\": {\"scale\": 0.5, \"mode\": "
                "\"fan_out\", \"distribution\": \"untruncated_normal\", \"seed\": 3}}",
                INIT_VARIANCE_SCALING, 0.5, INIT_MODE_FAN_OUT, INIT_DISTRIBUTION_UNTRUNCATED_NORMAL);
    /* Keras 3 form */
    expect_kind("{\"module\": \"keras.initializers\", \"class_name\": \"HeNormal\", \"config\": "
                "{\"seed\": null}, \"registered_name\": null}", INIT_HE_NORMAL, 2.0, IN, TN);
    /* config values and defaults */
    struct initializer in;
    struct init_error e;
    CHECK_INT_EQ(parse("{\"class_name\": \"RandomUniform\", \"config\": {\"minval\": -0.3, "
                       "\"maxval\": 0.7, \"seed\": 12}}", false, &in, &e), 0);
    CHECK(in.kind == INIT_RANDOM_UNIFORM && in.a == -0.3 && in.b == 0.7 && in.has_seed &&
          in.seed == 12);
    CHECK_INT_EQ(parse("{\"class_name\": \"RandomNormal\", \"config\": {}}", false, &in, &e), 0);
    CHECK(in.a == 0.0 && in.b == 0.05 && !in.has_seed);
    CHECK_INT_EQ(parse("{\"class_name\": \"TruncatedNormal\", \"config\": {\"mean\": 1.5, "
                       "\"stddev\": 0.25, \"seed\": null}}", true, &in, &e), 0);
    CHECK(in.a == 1.5 && in.b == 0.25);
    CHECK_INT_EQ(parse("{\"class_name\": \"Constant\", \"config\": {\"value\": 0.125}}", true, &in,
                       &e), 0);
    CHECK(in.kind == INIT_CONSTANT && in.a == 0.125);
    CHECK_INT_EQ(parse("{\"class_name\": \"Orthogonal\", \"config\": {\"gain\": 2.0, "
                       "\"seed\": null}}", false, &in, &e), 0);
    CHECK(in.kind == INIT_ORTHOGONAL && in.scale == 2.0);
    CHECK_INT_EQ(parse("{\"class_name\": \"Zeros\"}", true, &in, &e), 0);
    CHECK(in.kind == INIT_ZEROS);
}

static void test_parse_errors(void)
{
    expect_parse_error("\"identity\"", false, "", "unsupported initializer \"identity\"");
    expect_parse_error("3", false, "", "initializer name");
    expect_parse_error("{\"config\": {}}", false, "class_name", "missing");
    expect_parse_error("{\"class_name\": \"Foo\"}", false, "class_name", "Foo");
    expect_parse_error("{\"class_name\": \"Zeros\", \"extra\": 1}", false, "extra", "unknown");
    expect_parse_error("{\"class_name\": \"Zeros\", \"config\": 3}", false, "config", "object");
    expect_parse_error("{\"class_name\": \"VarianceScaling\", \"config\": {\"mode\": \"fan\"}}",
                       false, "config/mode", "fan_avg");
    expect_parse_error("{\"class_name\": \"VarianceScaling\", \"config\": {\"distribution\": "
                       "\"cauchy\"}}", false, "config/distribution", "untruncated_normal");
    expect_parse_error("{\"class_name\": \"VarianceScaling\", \"config\": {\"scale\": 0}}", false,
                       "config/scale", "> 0");
    expect_parse_error("{\"class_name\": \"GlorotUniform\", \"config\": {\"scale\": 1.0}}", false,
                       "config/scale", "unknown key for GlorotUniform");
    expect_parse_error("{\"class_name\": \"RandomUniform\", \"config\": {\"minval\": 1, "
                       "\"maxval\": 0}}", false, "config/maxval", "minval");
    expect_parse_error("{\"class_name\": \"RandomNormal\", \"config\": {\"stddev\": -1}}", false,
                       "config/stddev", ">= 0");
    expect_parse_error("{\"class_name\": \"HeNormal\", \"config\": {\"seed\": 1.5}}", false,
                       "config/seed", "integer");
    expect_parse_error("{\"class_name\": \"Zeros\", \"config\": {\"seed\": 1, \"seed\": 2}}",
                       false, "config/seed", "unknown key");
    expect_parse_error("{\"class_name\": \"HeNormal\", \"config\": {\"seed\": 1, \"seed\": 2}}",
                       false, "config/seed", "duplicate");
    expect_parse_error("\"orthogonal\"", true, "", "2 dimensions");
}

/* to_json and parse give the same initializer back. */
static void test_json_round_trip(void)
{
    static const char *const cases[] = {
        "\"he_normal\"",
        "\"lecun_uniform\"",
        "{\"class_name\": \"VarianceScaling\", \"config\": {\"scale\": 0.5, \"mode\": \"fan_out\", "
        "\"distribution\": \"untruncated_normal\", \"seed\": 7}}",
        "{\"class_name\": \"RandomUniform\", \"config\": {\"minval\": -0.3, \"maxval\": 0.7}}",
        "{\"class_name\": \"TruncatedNormal\", \"config\": {\"mean\": 1.5, \"stddev\": 0.25}}",
        "{\"class_name\": \"Constant\", \"config\": {\"value\": 0.1}}",
        "{\"class_name\": \"Orthogonal\", \"config\": {\"gain\": 2.0}}",
        "\"ones\"",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct initializer a, b;
        struct init_error e;
        char ja[512], jb[512];
        CHECK_INT_EQ(parse(cases[i], false, &a, &e), 0);
        CHECK(initializer_to_json(ja, sizeof(ja), &a, "kernel") > 0);
        CHECK_INT_EQ(parse(ja, false, &b, &e), 0);
        CHECK(initializer_to_json(jb, sizeof(jb), &b, "kernel") > 0);
        CHECK_MSG(strcmp(ja, jb) == 0, "%s -> %s -> %s", cases[i], ja, jb);
        CHECK(memcmp(&a, &b, sizeof(a)) == 0);
    }
    /* what Keras' get_config prints */
    struct initializer in;
    char j[512];
    initializer_init(&in, INIT_DEFAULT);
    CHECK(initializer_to_json(j, sizeof(j), &in, "kernel") > 0);
    CHECK_STR_EQ(j, "{\"class_name\": \"GlorotUniform\", \"config\": {\"seed\": null}}");
    CHECK(initializer_to_json(j, sizeof(j), &in, "moving_variance") > 0);
    CHECK_STR_EQ(j, "{\"class_name\": \"Ones\", \"config\": {}}");
    CHECK(initializer_to_json(j, sizeof(j), &in, "bias") > 0);
    CHECK_STR_EQ(j, "{\"class_name\": \"Zeros\", \"config\": {}}");
    initializer_init(&in, INIT_HE_NORMAL);
    CHECK(initializer_to_json(j, sizeof(j), &in, "kernel") > 0);
    CHECK_STR_EQ(j, "{\"class_name\": \"HeNormal\", \"config\": {\"seed\": null}}");
    initializer_init(&in, INIT_VARIANCE_SCALING);
    CHECK(initializer_to_json(j, sizeof(j), &in, "kernel") > 0);
    CHECK_STR_EQ(j, "{\"class_name\": \"VarianceScaling\", \"config\": {\"scale\": 1.0, "
                    "\"mode\": \"fan_in\", \"distribution\": \"truncated_normal\", "
                    "\"seed\": null}}");
    CHECK_INT_EQ(initializer_to_json(j, 8, &in, "kernel"), -ENOSPC);
}

struct moments {
    double mean, var, min, max;
};

static struct moments moments_of(const float *p, size_t n)
{
    struct moments m = {0, 0, p[0], p[0]};
    for (size_t i = 0; i < n; i++) {
        m.mean += p[i];
        if (p[i] < m.min)
            m.min = p[i];
        if (p[i] > m.max)
            m.max = p[i];
    }
    m.mean /= (double)n;
    for (size_t i = 0; i < n; i++)
        m.var += ((double)p[i] - m.mean) * ((double)p[i] - m.mean);
    m.var /= (double)(n - 1);
    return m;
}

/* A conv kernel (3, 3, 64, 128): fan_in 576, fan_out 1152, 73728 values. */
static const int conv_shape[4] = {3, 3, 64, 128};
#define CONV_N ((size_t)3 * 3 * 64 * 128)

static float *fill(const char *json, const int *shape, int ndim, size_t n, uint64_t seed)
{
    struct initializer in;
    struct init_error e;
    float *p = malloc(n * sizeof(float));
    CHECK_MSG(parse(json, ndim < 2, &in, &e) == 0, "%s: %s", json, e.msg);
    struct rng r;
    rng_seed(&r, seed, 0);
    initializer_fill(p, ndim, shape, &in, "kernel", &r);
    return p;
}

/* Mean within 8 standard errors of want_mean, variance within 4 % of
 * want_var (the standard error of a sample variance of 73728 draws is below
 * 0.6 % for these distributions), all values in [lo, hi]. */
static void check_moments(const char *what, const float *p, size_t n, double want_mean,
                          double want_var, double lo, double hi)
{
    struct moments m = moments_of(p, n);
    double se = sqrt(want_var / (double)n);
    CHECK_MSG(fabs(m.mean - want_mean) <= 8 * se, "%s: mean %g, want %g +- %g", what, m.mean,
              want_mean, 8 * se);
    CHECK_MSG(fabs(m.var / want_var - 1.0) <= 0.04, "%s: variance %g, want %g", what, m.var,
              want_var);
    CHECK_MSG(m.min >= lo && m.max <= hi, "%s: range [%g, %g] outside [%g, %g]", what, m.min,
              m.max, lo, hi);
}

static void test_variance_scaling_values(void)
{
    const double fan_in = 576, fan_out = 1152, fan_avg = (576 + 1152) / 2.0;
    const double eps = 1e-6; /* float rounding of a value at the bound */
    struct {
        const char *json;
        double var;   /* scale / n */
        int dist;     /* 0 uniform, 1 truncated, 2 untruncated */
    } cases[] = {
        {"\"glorot_uniform\"", 1.0 / fan_avg, 0},
        {"\"glorot_normal\"", 1.0 / fan_avg, 1},
        {"\"he_uniform\"", 2.0 / fan_in, 0},
        {"\"he_normal\"", 2.0 / fan_in, 1},
        {"\"lecun_uniform\"", 1.0 / fan_in, 0},
        {"\"lecun_normal\"", 1.0 / fan_in, 1},
        {"{\"class_name\": \"VarianceScaling\", \"config\": {\"scale\": 3.0, \"mode\": "
         "\"fan_out\", \"distribution\": \"untruncated_normal\"}}", 3.0 / fan_out, 2},
        {"{\"class_name\": \"VarianceScaling\", \"config\": {\"scale\": 0.5, \"mode\": "
         "\"fan_avg\", \"distribution\": \"normal\"}}", 0.5 / fan_avg, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        float *p = fill(cases[i].json, conv_shape, 4, CONV_N, 5);
        double sd = sqrt(cases[i].var), lim;
        if (cases[i].dist == 0)
            lim = sqrt(3.0 * cases[i].var);          /* uniform: var = limit^2 / 3 */
        else if (cases[i].dist == 1)
            lim = 2.0 * sd / 0.87962566103423978;    /* cut at 2 stddev of the untruncated */
        else
            lim = 8.0 * sd;                          /* P(|z| > 8) * 73728 < 1e-10 */
        check_moments(cases[i].json, p, CONV_N, 0.0, cases[i].var, -lim * (1 + eps),
                      lim * (1 + eps));
        struct moments m = moments_of(p, CONV_N);
        if (cases[i].dist == 0) /* the draws reach the bounds: P(max < 0.99 limit) = 0.995^73728 */
            CHECK_MSG(m.max > 0.99 * lim && m.min < -0.99 * lim, "%s: [%g, %g] of %g",
                      cases[i].json, m.min, m.max, lim);
        if (cases[i].dist == 2) { /* 4.55 % beyond 2 stddev; 1 % is > 25 standard errors away */
            size_t beyond = 0;
            for (size_t k = 0; k < CONV_N; k++)
                beyond += fabs(p[k]) > 2.0 * sd;
            CHECK_MSG(beyond > CONV_N / 100, "%s: %zu beyond 2 stddev", cases[i].json, beyond);
        }
        free(p);
    }
    /* Dense kernel (in, out) = (300, 100): fans are the two sizes */
    const int dense_shape[2] = {300, 100};
    float *p = fill("\"he_uniform\"", dense_shape, 2, 30000, 9);
    double lim = sqrt(3.0 * 2.0 / 300);
    struct moments m = moments_of(p, 30000);
    CHECK(m.min >= -lim * (1 + eps) && m.max <= lim * (1 + eps));
    CHECK(m.max > 0.99 * lim);
    free(p);
    /* 1-D: fan_in = fan_out = size; max(1, n) for a tiny fan */
    const int vec_shape[1] = {1};
    p = fill("{\"class_name\": \"VarianceScaling\", \"config\": {\"scale\": 0.25, \"mode\": "
             "\"fan_in\", \"distribution\": \"uniform\"}}", vec_shape, 1, 1, 3);
    CHECK(fabs(p[0]) <= sqrt(0.75) * (1 + eps));
    free(p);
}

static void test_other_values(void)
{
    const double eps = 1e-6;
    float *p = fill("{\"class_name\": \"RandomUniform\", \"config\": {\"minval\": -0.3, "
                    "\"maxval\": 0.7}}", conv_shape, 4, CONV_N, 1);
    check_moments("RandomUniform", p, CONV_N, 0.2, 1.0 / 12.0, -0.3 * (1 + eps), 0.7 * (1 + eps));
    free(p);
    p = fill("{\"class_name\": \"RandomNormal\", \"config\": {\"mean\": 1.0, \"stddev\": 0.5}}",
             conv_shape, 4, CONV_N, 2);
    check_moments("RandomNormal", p, CONV_N, 1.0, 0.25, 1.0 - 8 * 0.5, 1.0 + 8 * 0.5);
    free(p);
    /* a normal truncated to +-2 stddev has variance 0.8796^2 stddev^2 */
    p = fill("{\"class_name\": \"TruncatedNormal\", \"config\": {\"mean\": 0.2, \"stddev\": 0.1}}",
             conv_shape, 4, CONV_N, 3);
    double tv = 0.01 * 0.87962566103423978 * 0.87962566103423978;
    check_moments("TruncatedNormal", p, CONV_N, 0.2, tv, 0.0 - eps, 0.4 + eps);
    free(p);
    p = fill("{\"class_name\": \"Constant\", \"config\": {\"value\": 0.375}}", conv_shape, 4,
             CONV_N, 4);
    bool all = true;
    for (size_t k = 0; k < CONV_N; k++)
        all &= p[k] == 0.375f;
    CHECK(all);
    free(p);
    p = fill("\"ones\"", conv_shape, 4, CONV_N, 4);
    all = true;
    for (size_t k = 0; k < CONV_N; k++)
        all &= p[k] == 1.0f;
    CHECK(all);
    free(p);
}

/* Orthonormal rows or columns, times the gain, to 1e-5. */
static void check_orthogonal(int ndim, const int *shape, double gain)
{
    size_t size = 1;
    for (int i = 0; i < ndim; i++)
        size *= (size_t)shape[i];
    size_t cols = (size_t)shape[ndim - 1], rows = size / cols;
    char json[128];
    snprintf(json, sizeof(json), "{\"class_name\": \"Orthogonal\", \"config\": {\"gain\": %g}}",
             gain);
    float *p = fill(json, shape, ndim, size, 11);
    bool by_cols = rows >= cols;
    size_t nvec = by_cols ? cols : rows, len = by_cols ? rows : cols;
    double worst = 0;
    for (size_t a = 0; a < nvec; a++)
        for (size_t b = 0; b <= a; b++) {
            double dot = 0;
            for (size_t k = 0; k < len; k++) {
                double x = by_cols ? p[k * cols + a] : p[a * cols + k];
                double y = by_cols ? p[k * cols + b] : p[b * cols + k];
                dot += x * y;
            }
            double want = a == b ? gain * gain : 0.0;
            if (fabs(dot - want) > worst)
                worst = fabs(dot - want);
        }
    CHECK_MSG(worst <= 1e-5 * gain * gain, "orthogonal %zux%zu gain %g: error %g", rows, cols,
              gain, worst);
    free(p);
}

static void test_orthogonal(void)
{
    check_orthogonal(2, (const int[]){64, 32}, 1.0);  /* tall: orthonormal columns */
    check_orthogonal(2, (const int[]){16, 48}, 1.0);  /* wide: orthonormal rows */
    check_orthogonal(2, (const int[]){40, 40}, 2.0);  /* square, with a gain */
    check_orthogonal(4, (const int[]){3, 3, 8, 16}, 1.0); /* conv: rows 72, cols 16 */
}

/* Same seed, same values; another seed, others; the default kernel is the
 * Glorot uniform formula draw for draw. */
static void test_determinism_and_default(void)
{
    float *a = fill("\"he_normal\"", conv_shape, 4, CONV_N, 21);
    float *b = fill("\"he_normal\"", conv_shape, 4, CONV_N, 21);
    float *c = fill("\"he_normal\"", conv_shape, 4, CONV_N, 22);
    CHECK(memcmp(a, b, CONV_N * sizeof(float)) == 0);
    CHECK(memcmp(a, c, CONV_N * sizeof(float)) != 0);
    free(a);
    free(b);
    free(c);

    struct initializer def;
    initializer_init(&def, INIT_DEFAULT);
    float *p = malloc(CONV_N * sizeof(float));
    struct rng r, r2;
    rng_seed(&r, 4, 1);
    rng_seed(&r2, 4, 1);
    initializer_fill(p, 4, conv_shape, &def, "kernel", &r);
    double limit = sqrt(6.0 / (576.0 + 1152.0));
    bool same = true;
    for (size_t k = 0; k < CONV_N; k++)
        same &= p[k] == (float)((2.0 * rng_uniform(&r2) - 1.0) * limit);
    CHECK(same);
    /* and so is Keras 2.0's VarianceScaling(1.0, fan_avg, uniform) */
    float *q = fill("{\"class_name\": \"VarianceScaling\", \"config\": {\"scale\": 1.0, \"mode\": "
                    "\"fan_avg\", \"distribution\": \"uniform\", \"seed\": null}}",
                    conv_shape, 4, CONV_N, 4);
    rng_seed(&r, 4, 0);
    initializer_fill(p, 4, conv_shape, &def, "kernel", &r);
    CHECK(memcmp(p, q, CONV_N * sizeof(float)) == 0);
    free(p);
    free(q);
}

/* A model saved by Keras 2.0.8 (list-form Sequential config, VarianceScaling
 * kernels, names from conv2d_1): parsed, counted as Keras counts it, and
 * initialised with the same weights as the built-in MiniVGGNet. */
static void test_keras208_model(void)
{
    char *json = read_text("tests/fixtures/models/minivggnet_keras208.json");
    CHECK(json != NULL);
    if (!json)
        return;
    struct model_spec s, ref;
    struct diag d = {0};
    int rc = model_spec_parse_json(&s, json, strlen(json), NULL, &d);
    CHECK_MSG(rc == 0, "%s: %s", d.field, d.message);
    free(json);
    if (rc)
        return;
    CHECK_STR_EQ(s.layers[0].name, "conv2d_1");
    CHECK(s.layers[0].init[0].kind == INIT_VARIANCE_SCALING);
    CHECK(s.layers[0].init[0].mode == INIT_MODE_FAN_AVG);
    CHECK(s.layers[0].init[0].distribution == INIT_DISTRIBUTION_UNIFORM);
    CHECK(s.layers[0].init[1].kind == INIT_ZEROS);
    CHECK(s.layers[2].init[0].kind == INIT_ONES); /* BN gamma */
    size_t total = 0, trainable = 0;
    CHECK_INT_EQ(model_spec_count_params(&s, &total, &trainable, &d), 0);
    CHECK_INT_EQ(total, 1679082); /* Keras 2.0.8's summary of MiniVGGNet (28, 28, 1) */
    CHECK_INT_EQ(trainable, 1677674);

    CHECK_INT_EQ(model_spec_builtin(&ref, "minivggnet", (const int[3]){28, 28, 1}, 10, &d), 0);
    struct model *a = NULL, *b = NULL;
    CHECK_INT_EQ(model_create(&a, &s, 4, 1, &d), 0);
    CHECK_INT_EQ(model_create(&b, &ref, 4, 1, &d), 0);
    if (a && b) {
        model_init_weights(a, 17);
        model_init_weights(b, 17);
        CHECK(a->n_params == b->n_params &&
              memcmp(a->params, b->params, a->n_params * sizeof(float)) == 0);
    }
    model_free(a);
    model_free(b);
    /* printed back in the tf.keras 2.15 form, it keeps its VarianceScaling */
    char *out = model_spec_to_json(&s);
    CHECK(out && strstr(out, "\"class_name\": \"VarianceScaling\", \"config\": {\"scale\": 1.0, "
                             "\"mode\": \"fan_avg\", \"distribution\": \"uniform\""));
    free(out);
    model_spec_free(&ref);
    model_spec_free(&s);
}

/* A Sequential JSON with he_normal kernels and a Constant bias: the model's
 * weights follow them, and the error of a bad one names layer and key. */
static void test_model_initializers(void)
{
    const char *json =
        "{\"class_name\": \"Sequential\", \"config\": [{\"class_name\": \"Flatten\", \"config\": "
        "{\"batch_input_shape\": [null, 16, 16, 3]}}, {\"class_name\": \"Dense\", \"config\": "
        "{\"units\": 256, \"kernel_initializer\": \"he_normal\", \"bias_initializer\": "
        "{\"class_name\": \"Constant\", \"config\": {\"value\": 0.5}}}}, {\"class_name\": "
        "\"Dense\", \"config\": {\"units\": 10, \"activation\": \"softmax\"}}]}";
    struct model_spec s;
    struct diag d = {0};
    int rc = model_spec_parse_json(&s, json, strlen(json), NULL, &d);
    CHECK_MSG(rc == 0, "%s: %s", d.field, d.message);
    if (rc)
        return;
    struct model *m = NULL;
    CHECK_INT_EQ(model_create(&m, &s, 2, 1, &d), 0);
    if (m) {
        model_init_weights(m, 3);
        const struct weight *k = model_find_weight(m, "dense", "kernel");
        const struct weight *bias = model_find_weight(m, "dense", "bias");
        CHECK(k && bias);
        if (k && bias) {
            check_moments("dense kernel he_normal", m->params + k->offset, k->size, 0.0,
                          2.0 / 768.0, -1.0, 1.0);
            bool all = true;
            for (size_t i = 0; i < bias->size; i++)
                all &= m->params[bias->offset + i] == 0.5f;
            CHECK(all);
        }
    }
    model_free(m);
    model_spec_free(&s);

    const char *bad =
        "{\"class_name\": \"Sequential\", \"config\": {\"layers\": [{\"class_name\": \"Flatten\", "
        "\"config\": {\"batch_input_shape\": [null, 4, 4, 1]}}, {\"class_name\": \"Dense\", "
        "\"config\": {\"units\": 3, \"activation\": \"softmax\", \"kernel_initializer\": "
        "{\"class_name\": \"VarianceScaling\", \"config\": {\"mode\": \"fan_sum\"}}}}]}}";
    rc = model_spec_parse_json(&s, bad, strlen(bad), NULL, &d);
    CHECK(rc == -EINVAL);
    if (rc == 0)
        model_spec_free(&s);
    CHECK_STR_EQ(d.field, "/config/layers/1/config/kernel_initializer/config/mode");
    CHECK_MSG(strstr(d.message, "Dense") && strstr(d.message, "fan_avg"), "%s", d.message);
}

int main(void)
{
    TEST_RUN(test_parse_forms);
    TEST_RUN(test_parse_errors);
    TEST_RUN(test_json_round_trip);
    TEST_RUN(test_variance_scaling_values);
    TEST_RUN(test_other_values);
    TEST_RUN(test_orthogonal);
    TEST_RUN(test_determinism_and_default);
    TEST_RUN(test_keras208_model);
    TEST_RUN(test_model_initializers);
    return TEST_EXIT();
}
