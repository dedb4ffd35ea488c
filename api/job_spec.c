/* job_spec.c - parse, validate and print a job spec (see job_spec.h).
 *
 * The parser walks the cJSON tree once, level by level: first every key of
 * an object is checked against that level's allowed names (unknown and
 * duplicate keys are errors), then each value's type and range.  The first
 * problem found wins; d->field is its JSON pointer (RFC 6901, with ~0 / ~1
 * escapes) and d->message says what is wrong.  The cJSON tree never leaves
 * this file.
 *
 * Extensions to the Keras vocabulary:
 *   "dataset": {"name", "validation_split", "limit", "validation_limit"}
 *     limit keeps the first N training examples and validation_limit the first
 *     N validation examples (null or 0 = all), to keep demo and test jobs small.
 *   "model": a built-in name, an inline Keras Sequential config object, or
 *     the string model.to_json() returns.
 *   "threads": compute threads for this job (0 = the daemon's default). */
#include "job_spec.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cjson_add.h"
#include "model.h"

/* 2^53 - 1: every integer up to it has its own double; 2^53 + 1 would be
 * read as 2^53 and silently rounded, so larger integers are refused. */
#define JSON_MAX_SAFE_INT 9007199254740991.0

/* The logs keys every job produces: fit() always validates (test split or
 * validation_split). */
static const char *const job_log_keys[] = {"loss", "accuracy", "val_loss", "val_accuracy"};
#define JOB_N_LOG_KEYS ((int)(sizeof(job_log_keys) / sizeof(job_log_keys[0])))

/* --- JSON pointer helpers ------------------------------------------------- */

/* base + "/" + key with RFC 6901 escapes ("~" -> "~0", "/" -> "~1"). */
static void pointer_join(char *out, size_t outsz, const char *base, const char *key)
{
    size_t n = (size_t)snprintf(out, outsz, "%s/", base);
    if (n >= outsz)
        n = outsz - 1;
    for (const char *k = key; *k && n + 3 < outsz; k++) {
        if (*k == '~') {
            out[n++] = '~';
            out[n++] = '0';
        } else if (*k == '/') {
            out[n++] = '~';
            out[n++] = '1';
        } else {
            out[n++] = *k;
        }
    }
    if (n >= outsz)
        n = outsz - 1;
    out[n] = '\0';
}

static void pointer_index(char *out, size_t outsz, const char *base, int i)
{
    snprintf(out, outsz, "%s/%d", base, i);
}

static const char *json_type_name(const cJSON *v)
{
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsBool(v))
        return "a boolean";
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsArray(v))
        return "an array";
    if (cJSON_IsObject(v))
        return "an object";
    return "invalid";
}

/* Every key of obj must be in allowed (NULL-terminated) and appear once. */
static int check_keys(const cJSON *obj, const char *base, const char *const *allowed,
                      struct diag *d)
{
    char field[256];
    for (const cJSON *c = obj->child; c; c = c->next) {
        const char *key = c->string ? c->string : "";
        pointer_join(field, sizeof(field), base, key);
        bool known = false;
        for (int i = 0; allowed[i]; i++)
            if (strcmp(allowed[i], key) == 0)
                known = true;
        if (!known)
            return diag_set(d, -EINVAL, field, "unknown field '%.64s'", key);
        for (const cJSON *p = obj->child; p != c; p = p->next)
            if (p->string && strcmp(p->string, key) == 0)
                return diag_set(d, -EINVAL, field, "duplicate field '%.64s'", key);
    }
    return 0;
}

/* An integer up to 2^53 - 1 as its exact digits (cJSON prints numbers with
 * 15 significant digits when they read back approximately). */
static cJSON *exact_integer(uint64_t v)
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRIu64, v);
    return cJSON_CreateRaw(text);
}

/* --- typed getters ---------------------------------------------------------
 * Each takes the parent object and a key; an absent key leaves *ret as is
 * (the default).  Null is accepted only where *is_null is non-NULL. */

static int get_int(const cJSON *obj, const char *base, const char *key, double lo, double hi,
                   long long *ret, bool *ret_null, struct diag *d)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return 0;
    char field[256];
    pointer_join(field, sizeof(field), base, key);
    if (cJSON_IsNull(v) && ret_null) {
        *ret_null = true;
        return 0;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble))
        return diag_set(d, -EINVAL, field, "must be an integer%s, not %s",
                        ret_null ? " or null" : "",
                        cJSON_IsNumber(v) ? "a fractional number" : json_type_name(v));
    if (fabs(v->valuedouble) > JSON_MAX_SAFE_INT)
        return diag_set(d, -EINVAL, field,
                        "integers beyond 2^53 - 1 (%.0f) cannot be kept exact; must be between "
                        "%.0f and %.0f",
                        JSON_MAX_SAFE_INT, lo, hi);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return diag_set(d, -EINVAL, field, "must be between %.0f and %.0f, got %.17g", lo, hi,
                        v->valuedouble);
    *ret = (long long)v->valuedouble;
    if (ret_null)
        *ret_null = false;
    return 0;
}

/* Number in [lo, hi] (or [lo, hi) when hi_open; (lo, ..] when lo_open). */
static int get_number(const cJSON *obj, const char *base, const char *key, double lo,
                      bool lo_open, double hi, bool hi_open, double *ret, bool *ret_null,
                      struct diag *d)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return 0;
    char field[256];
    pointer_join(field, sizeof(field), base, key);
    if (cJSON_IsNull(v) && ret_null) {
        *ret_null = true;
        return 0;
    }
    if (!cJSON_IsNumber(v))
        return diag_set(d, -EINVAL, field, "must be a number%s, not %s",
                        ret_null ? " or null" : "", json_type_name(v));
    double x = v->valuedouble;
    if (!isfinite(x))
        return diag_set(d, -EINVAL, field, "must be a finite number");
    bool below = lo_open ? !(x > lo) : !(x >= lo);
    bool above = hi_open ? !(x < hi) : !(x <= hi);
    if (below || above) {
        char lo_s[32] = "", hi_s[32] = "";
        if (isfinite(lo))
            snprintf(lo_s, sizeof(lo_s), "%s %.17g", lo_open ? ">" : ">=", lo);
        if (isfinite(hi))
            snprintf(hi_s, sizeof(hi_s), "%s %.17g", hi_open ? "<" : "<=", hi);
        return diag_set(d, -EINVAL, field, "must be %s%s%s, got %.17g", lo_s,
                        *lo_s && *hi_s ? " and " : "", hi_s, x);
    }
    *ret = x;
    if (ret_null)
        *ret_null = false;
    return 0;
}

static int get_bool(const cJSON *obj, const char *base, const char *key, bool *ret,
                    struct diag *d)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return 0;
    if (!cJSON_IsBool(v)) {
        char field[256];
        pointer_join(field, sizeof(field), base, key);
        return diag_set(d, -EINVAL, field, "must be a boolean (true or false), not %s",
                        json_type_name(v));
    }
    *ret = cJSON_IsTrue(v);
    return 0;
}

/* A string of 1..outsz-1 bytes without control characters. */
static int check_string(const cJSON *v, const char *field, size_t outsz, bool allow_empty,
                        struct diag *d)
{
    if (!cJSON_IsString(v) || !v->valuestring)
        return diag_set(d, -EINVAL, field, "must be a string, not %s", json_type_name(v));
    size_t n = strlen(v->valuestring);
    if (n == 0 && !allow_empty)
        return diag_set(d, -EINVAL, field, "must not be empty");
    if (n >= outsz)
        return diag_set(d, -EINVAL, field, "must be at most %zu bytes long", outsz - 1);
    for (const unsigned char *p = (const unsigned char *)v->valuestring; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return diag_set(d, -EINVAL, field, "must not contain control characters");
    return 0;
}

static int get_string(const cJSON *obj, const char *base, const char *key, char *out,
                      size_t outsz, bool allow_empty, struct diag *d)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return 0;
    char field[256];
    pointer_join(field, sizeof(field), base, key);
    int r = check_string(v, field, outsz, allow_empty, d);
    if (r < 0)
        return r;
    snprintf(out, outsz, "%s", v->valuestring);
    return 0;
}

static int require(const cJSON *obj, const char *base, const char *key, struct diag *d)
{
    if (cJSON_GetObjectItemCaseSensitive(obj, key))
        return 0;
    char field[256];
    pointer_join(field, sizeof(field), base, key);
    return diag_set(d, -EINVAL, field, "required field '%s' is missing", key);
}

static int get_mode(const cJSON *obj, const char *base, enum ckpt_mode *ret, struct diag *d)
{
    char s[16] = "";
    int r = get_string(obj, base, "mode", s, sizeof(s), false, d);
    if (r < 0 || !*s)
        return r;
    if (strcmp(s, "auto") == 0)
        *ret = CKPT_MODE_AUTO;
    else if (strcmp(s, "min") == 0)
        *ret = CKPT_MODE_MIN;
    else if (strcmp(s, "max") == 0)
        *ret = CKPT_MODE_MAX;
    else {
        char field[256];
        pointer_join(field, sizeof(field), base, "mode");
        return diag_set(d, -EINVAL, field, "must be \"auto\", \"min\" or \"max\", got \"%s\"", s);
    }
    return 0;
}

static const char *mode_name(enum ckpt_mode mode)
{
    switch (mode) {
    case CKPT_MODE_MIN: return "min";
    case CKPT_MODE_MAX: return "max";
    case CKPT_MODE_AUTO: break;
    }
    return "auto";
}

static bool is_log_key(const char *key)
{
    const char *k = logs_canonical_key(key);
    for (int i = 0; i < JOB_N_LOG_KEYS; i++)
        if (strcmp(k, job_log_keys[i]) == 0)
            return true;
    return false;
}

/* --- sections --------------------------------------------------------------- */

/* The import options of a local "file" (job_spec_parse_local). */
static int parse_dataset_file(struct job_spec *s, const cJSON *v, struct diag *d)
{
    int r;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(v, "file");
    if ((r = check_string(f, "/dataset/file", sizeof(s->dataset_file), false, d)) < 0)
        return r;
    snprintf(s->dataset_file, sizeof(s->dataset_file), "%s", f->valuestring);
    if ((r = get_string(v, "/dataset", "format", s->dataset_format, sizeof(s->dataset_format),
                        true, d)) < 0 ||
        (r = get_string(v, "/dataset", "color_mode", s->color_mode, sizeof(s->color_mode), true,
                        d)) < 0)
        return r;
    static const char *const formats[] = {"", "auto", "npz", "images", "hdf5", "cifar10"};
    bool ok = false;
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
        ok = ok || strcmp(s->dataset_format, formats[i]) == 0;
    if (!ok)
        return diag_set(d, -EINVAL, "/dataset/format",
                        "must be \"npz\", \"images\", \"hdf5\", \"cifar10\" or \"auto\"");
    if (s->color_mode[0] && strcmp(s->color_mode, "grayscale") != 0 &&
        strcmp(s->color_mode, "rgb") != 0 && strcmp(s->color_mode, "rgba") != 0)
        return diag_set(d, -EINVAL, "/dataset/color_mode",
                        "must be \"grayscale\", \"rgb\" or \"rgba\"");
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(v, "image_size");
    if (size && !cJSON_IsNull(size)) {
        if (!cJSON_IsArray(size) || cJSON_GetArraySize(size) != 2)
            return diag_set(d, -EINVAL, "/dataset/image_size", "must be [height, width]");
        for (int i = 0; i < 2; i++) {
            const cJSON *e = cJSON_GetArrayItem(size, i);
            if (!cJSON_IsNumber(e) || e->valuedouble != (int)e->valuedouble ||
                e->valuedouble < 1 || e->valuedouble > 4096)
                return diag_set(d, -EINVAL, "/dataset/image_size",
                                "sides must be integers from 1 to 4096");
            s->image_size[i] = (int)e->valuedouble;
        }
    }
    long long seed = -1;
    bool is_null = false;
    if ((r = get_int(v, "/dataset", "seed", 0, 4294967295.0, &seed, &is_null, d)) < 0)
        return r;
    s->import_seed = is_null ? -1 : seed;
    if (!cJSON_GetObjectItemCaseSensitive(v, "name")) {
        /* the file's base name, reduced to the name alphabet, for display */
        const char *base = strrchr(s->dataset_file, '/');
        base = base ? base + 1 : s->dataset_file;
        size_t n = 0;
        for (; *base && n + 1 < sizeof(s->dataset); base++)
            s->dataset[n++] = (char)(((*base >= 'a' && *base <= 'z') ||
                                      (*base >= 'A' && *base <= 'Z') ||
                                      (*base >= '0' && *base <= '9') || *base == '-' ||
                                      *base == '.')
                                         ? *base
                                         : '_');
        s->dataset[n] = '\0';
        if (n == 0)
            snprintf(s->dataset, sizeof(s->dataset), "file");
    }
    return 0;
}

static int parse_dataset(struct job_spec *s, const cJSON *root, bool local, struct diag *d)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "dataset");
    const cJSON *name = v;
    int r;
    if (cJSON_IsObject(v)) {
        static const char *const keys[] = {"name", "validation_split", "limit",
                                           "validation_limit", NULL};
        static const char *const local_keys[] = {"name", "validation_split", "limit",
                                                 "validation_limit", "file", "format",
                                                 "image_size", "color_mode", "seed", NULL};
        bool file = cJSON_GetObjectItemCaseSensitive(v, "file") != NULL;
        if (file && !local)
            return diag_set(d, -EINVAL, "/dataset/file",
                            "the HTTP API takes no server paths: upload the file with "
                            "PUT /v1/datasets/{name} and name it here");
        if ((r = check_keys(v, "/dataset", file ? local_keys : keys, d)) < 0 ||
            (!file && (r = require(v, "/dataset", "name", d)) < 0))
            return r;
        if (file && (r = parse_dataset_file(s, v, d)) < 0)
            return r;
        name = cJSON_GetObjectItemCaseSensitive(v, "name");
        if ((r = get_number(v, "/dataset", "validation_split", 0, false, 1, true,
                            &s->validation_split, NULL, d)) < 0)
            return r;
        long long lim = 0;
        bool is_null = false;
        if ((r = get_int(v, "/dataset", "limit", 0, 1e9, &lim, &is_null, d)) < 0)
            return r;
        s->dataset_limit = is_null ? 0 : (int)lim;
        lim = 0;
        if ((r = get_int(v, "/dataset", "validation_limit", 0, 1e9, &lim, &is_null, d)) < 0)
            return r;
        s->validation_limit = is_null ? 0 : (int)lim;
        if (!name)
            return 0; /* a file without a name: named after the file */
    } else if (!cJSON_IsString(v)) {
        return diag_set(d, -EINVAL, "/dataset",
                        "must be a data set name or an object {\"name\": ...}, not %s",
                        json_type_name(v));
    }
    const char *field = name == v ? "/dataset" : "/dataset/name";
    if ((r = check_string(name, field, sizeof(s->dataset), false, d)) < 0)
        return r;
    for (const char *p = name->valuestring; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return diag_set(d, -EINVAL, field,
                            "data set names use only letters, digits, '-', '_' and '.'");
    snprintf(s->dataset, sizeof(s->dataset), "%s", name->valuestring);
    return 0;
}

/* The inline model: an object, or the string model.to_json() returns. */
static int parse_model_inline(struct job_spec *s, const char *text, size_t len, struct diag *d)
{
    struct model_spec ms = {0};
    int r = model_spec_parse_json(&ms, text, len, NULL, d);
    if (r < 0) {
        diag_prefix(d, "/model");
        if (d && !d->field[0])
            snprintf(d->field, sizeof(d->field), "/model");
        return r;
    }
    model_spec_free(&ms);
    s->model_json = strndup(text, len);
    return s->model_json ? 0 : diag_set(d, -ENOMEM, "/model", "out of memory");
}

static int parse_model(struct job_spec *s, const cJSON *root, struct diag *d)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (cJSON_IsObject(v)) {
        char *text = cJSON_PrintUnformatted(v);
        if (!text)
            return diag_set(d, -ENOMEM, "/model", "out of memory");
        int r = parse_model_inline(s, text, strlen(text), d);
        cJSON_free(text);
        return r;
    }
    if (!cJSON_IsString(v) || !v->valuestring)
        return diag_set(d, -EINVAL, "/model",
                        "must be a built-in model name or a Keras Sequential config object, not %s",
                        json_type_name(v));
    const char *name = v->valuestring;
    if (name[0] == '{')
        return parse_model_inline(s, name, strlen(name), d);
    const char *const *names = model_builtin_names();
    for (int i = 0; names && names[i]; i++)
        if (strcmp(names[i], name) == 0) {
            snprintf(s->model, sizeof(s->model), "%s", name);
            return 0;
        }
    char list[256] = "";
    size_t n = 0;
    for (int i = 0; names && names[i] && n < sizeof(list); i++)
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "", names[i]);
    return diag_set(d, -EINVAL, "/model", "unknown model \"%.64s\"; built-in models: %s", name,
                    list);
}

static int parse_optimizer(struct job_spec *s, const cJSON *root, struct diag *d)
{
    optimizer_config_default(&s->optimizer, OPTIMIZER_KIND_SGD);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "optimizer");
    if (!v)
        return 0;
    const cJSON *name = v;
    if (cJSON_IsObject(v)) {
        int r = require(v, "/optimizer", "name", d);
        if (r < 0)
            return r;
        name = cJSON_GetObjectItemCaseSensitive(v, "name");
    } else if (!cJSON_IsString(v)) {
        return diag_set(d, -EINVAL, "/optimizer",
                        "must be an optimizer name or an object {\"name\": ...}, not %s",
                        json_type_name(v));
    }
    const char *field = name == v ? "/optimizer" : "/optimizer/name";
    if (!cJSON_IsString(name) || !name->valuestring)
        return diag_set(d, -EINVAL, field, "must be a string, not %s", json_type_name(name));
    enum optimizer_kind kind;
    if (strcasecmp(name->valuestring, "sgd") == 0)
        kind = OPTIMIZER_KIND_SGD;
    else if (strcasecmp(name->valuestring, "adam") == 0)
        kind = OPTIMIZER_KIND_ADAM;
    else
        return diag_set(d, -EINVAL, field, "unknown optimizer \"%.64s\"; use \"sgd\" or \"adam\"",
                        name->valuestring);
    optimizer_config_default(&s->optimizer, kind);
    if (!cJSON_IsObject(v))
        return 0;

    static const char *const sgd_keys[] = {"name", "learning_rate", "lr", "decay", "momentum",
                                           "nesterov", NULL};
    static const char *const adam_keys[] = {"name", "learning_rate", "lr", "decay", "beta_1",
                                            "beta_2", "epsilon", NULL};
    struct optimizer_config *o = &s->optimizer;
    int r = check_keys(v, "/optimizer", kind == OPTIMIZER_KIND_SGD ? sgd_keys : adam_keys, d);
    if (r < 0) {
        if (d && strstr(d->message, "unknown field"))
            snprintf(d->message + strlen(d->message), sizeof(d->message) - strlen(d->message),
                     " for %s", kind == OPTIMIZER_KIND_SGD ? "SGD" : "Adam");
        return r;
    }
    if (cJSON_GetObjectItemCaseSensitive(v, "lr") &&
        cJSON_GetObjectItemCaseSensitive(v, "learning_rate"))
        return diag_set(d, -EINVAL, "/optimizer/lr",
                        "give either learning_rate or its old name lr, not both");
    if ((r = get_number(v, "/optimizer", "learning_rate", 0, true, INFINITY, false,
                        &o->learning_rate, NULL, d)) < 0 ||
        (r = get_number(v, "/optimizer", "lr", 0, true, INFINITY, false, &o->learning_rate,
                        NULL, d)) < 0 ||
        (r = get_number(v, "/optimizer", "decay", 0, false, INFINITY, false, &o->decay, NULL,
                        d)) < 0)
        return r;
    if (kind == OPTIMIZER_KIND_SGD) {
        if ((r = get_number(v, "/optimizer", "momentum", 0, false, 1, true, &o->momentum, NULL,
                            d)) < 0 ||
            (r = get_bool(v, "/optimizer", "nesterov", &o->nesterov, d)) < 0)
            return r;
    } else {
        if ((r = get_number(v, "/optimizer", "beta_1", 0, false, 1, true, &o->beta_1, NULL,
                            d)) < 0 ||
            (r = get_number(v, "/optimizer", "beta_2", 0, false, 1, true, &o->beta_2, NULL,
                            d)) < 0 ||
            (r = get_number(v, "/optimizer", "epsilon", 0, true, INFINITY, false, &o->epsilon,
                            NULL, d)) < 0)
            return r;
    }
    return 0;
}

static int parse_policy(struct ckpt_policy_config *c, const cJSON *v, const char *base,
                        struct diag *d)
{
    static const char *const keys[] = {"filepath", "monitor", "mode", "save_best_only",
                                       "save_weights_only", "save_freq",
                                       "initial_value_threshold", "save_top_k", "save_last",
                                       "verbose", NULL};
    char field[256];
    int r;
    ckpt_policy_config_default(c);
    if (!cJSON_IsObject(v))
        return diag_set(d, -EINVAL, base, "must be an object, not %s", json_type_name(v));
    if ((r = check_keys(v, base, keys, d)) < 0 || (r = require(v, base, "filepath", d)) < 0 ||
        (r = get_string(v, base, "filepath", c->filepath, sizeof(c->filepath), false, d)) < 0 ||
        (r = get_string(v, base, "monitor", c->monitor, sizeof(c->monitor), false, d)) < 0 ||
        (r = get_mode(v, base, &c->mode, d)) < 0 ||
        (r = get_bool(v, base, "save_best_only", &c->save_best_only, d)) < 0 ||
        (r = get_bool(v, base, "save_weights_only", &c->save_weights_only, d)) < 0 ||
        (r = get_bool(v, base, "save_last", &c->save_last, d)) < 0)
        return r;

    const cJSON *f = cJSON_GetObjectItemCaseSensitive(v, "save_freq");
    if (f) {
        pointer_join(field, sizeof(field), base, "save_freq");
        if (cJSON_IsString(f) && strcmp(f->valuestring, "epoch") == 0) {
            c->save_freq = 0;
        } else if (cJSON_IsNumber(f)) {
            long long n = 0;
            if ((r = get_int(v, base, "save_freq", 1, 1e9, &n, NULL, d)) < 0)
                return r;
            c->save_freq = (int)n;
        } else {
            return diag_set(d, -EINVAL, field,
                            "must be \"epoch\" or a number of batches (integer >= 1)");
        }
    }

    bool is_null = true;
    double thr = 0;
    if ((r = get_number(v, base, "initial_value_threshold", -INFINITY, false, INFINITY, false,
                        &thr, &is_null, d)) < 0)
        return r;
    c->has_initial_value_threshold = !is_null && cJSON_GetObjectItemCaseSensitive(
                                                     v, "initial_value_threshold");
    c->initial_value_threshold = c->has_initial_value_threshold ? thr : 0;

    long long k = 0;
    is_null = true;
    if ((r = get_int(v, base, "save_top_k", 1, 1000000, &k, &is_null, d)) < 0)
        return r;
    c->save_top_k = is_null ? 0 : (int)k;

    long long verbose = c->verbose;
    if ((r = get_int(v, base, "verbose", 0, 2, &verbose, NULL, d)) < 0)
        return r;
    c->verbose = (int)verbose;

    r = ckpt_policy_validate(c, job_log_keys, JOB_N_LOG_KEYS, d);
    if (r < 0) {
        diag_prefix(d, base);
        if (d && !d->field[0])
            snprintf(d->field, sizeof(d->field), "%s", base);
        return r;
    }
    return 0;
}

/* The extension of save_last's "last" file: ".weights.h5" or the last
 * component's final ".xxx". */
static const char *last_extension(const char *filepath)
{
    const char *base = strrchr(filepath, '/');
    base = base ? base + 1 : filepath;
    size_t n = strlen(base);
    static const char weights_h5[] = ".weights.h5";
    if (n >= sizeof(weights_h5) - 1 && strcmp(base + n - (sizeof(weights_h5) - 1), weights_h5) == 0)
        return base + n - (sizeof(weights_h5) - 1);
    const char *dot = strrchr(base, '.');
    return dot ? dot : "";
}

static int parse_checkpoints(struct job_spec *s, const cJSON *root, struct diag *d)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "checkpoints");
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsArray(v))
        return diag_set(d, -EINVAL, "/checkpoints", "must be an array of policies, not %s",
                        json_type_name(v));
    int n = cJSON_GetArraySize(v);
    if (n > JOB_SPEC_MAX_CHECKPOINTS)
        return diag_set(d, -EINVAL, "/checkpoints", "at most %d policies, got %d",
                        JOB_SPEC_MAX_CHECKPOINTS, n);
    int i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        char base[64];
        pointer_index(base, sizeof(base), "/checkpoints", i);
        int r = parse_policy(&s->checkpoints[i], c, base, d);
        if (r < 0)
            return r;
        for (int j = 0; j < i; j++)
            if (strcmp(s->checkpoints[j].filepath, s->checkpoints[i].filepath) == 0) {
                char field[80];
                pointer_join(field, sizeof(field), base, "filepath");
                return diag_set(d, -EINVAL, field,
                                "same filepath as /checkpoints/%d: two policies would overwrite "
                                "each other's files",
                                j);
            }
        if (s->checkpoints[i].save_last)
            for (int j = 0; j < i; j++)
                if (s->checkpoints[j].save_last &&
                    strcmp(last_extension(s->checkpoints[j].filepath),
                           last_extension(s->checkpoints[i].filepath)) == 0) {
                    char field[80];
                    pointer_join(field, sizeof(field), base, "save_last");
                    return diag_set(d, -EINVAL, field,
                                    "/checkpoints/%d also keeps a \"last%s\": only one policy "
                                    "per extension may set save_last",
                                    j, last_extension(s->checkpoints[i].filepath));
                }
        s->n_checkpoints = i + 1;
    }
    return 0;
}

static int parse_callbacks(struct job_spec *s, const cJSON *root, struct diag *d)
{
    struct job_early_stopping *es = &s->early_stopping;
    memset(es, 0, sizeof(*es));
    snprintf(es->monitor, sizeof(es->monitor), "val_loss");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "callbacks");
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsObject(v))
        return diag_set(d, -EINVAL, "/callbacks", "must be an object, not %s", json_type_name(v));
    static const char *const keys[] = {"early_stopping", NULL};
    int r = check_keys(v, "/callbacks", keys, d);
    if (r < 0)
        return r;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(v, "early_stopping");
    if (!e || cJSON_IsNull(e))
        return 0;
    const char *base = "/callbacks/early_stopping";
    if (!cJSON_IsObject(e))
        return diag_set(d, -EINVAL, base, "must be an object or null, not %s", json_type_name(e));
    static const char *const es_keys[] = {"monitor", "patience", "min_delta", "mode",
                                          "baseline", "restore_best_weights", NULL};
    long long patience = 0;
    bool baseline_null = true;
    if ((r = check_keys(e, base, es_keys, d)) < 0 ||
        (r = get_string(e, base, "monitor", es->monitor, sizeof(es->monitor), false, d)) < 0 ||
        (r = get_int(e, base, "patience", 0, 1000000, &patience, NULL, d)) < 0 ||
        (r = get_number(e, base, "min_delta", 0, false, INFINITY, false, &es->min_delta, NULL,
                        d)) < 0 ||
        (r = get_mode(e, base, &es->mode, d)) < 0 ||
        (r = get_number(e, base, "baseline", -INFINITY, false, INFINITY, false, &es->baseline,
                        &baseline_null, d)) < 0 ||
        (r = get_bool(e, base, "restore_best_weights", &es->restore_best_weights, d)) < 0)
        return r;
    es->patience = (int)patience;
    es->has_baseline = !baseline_null && cJSON_GetObjectItemCaseSensitive(e, "baseline");
    if (!es->has_baseline)
        es->baseline = 0;
    if (!is_log_key(es->monitor))
        return diag_set(d, -EINVAL, "/callbacks/early_stopping/monitor",
                        "unknown metric '%s'; this job logs loss, accuracy, val_loss and "
                        "val_accuracy",
                        es->monitor);
    char canonical[sizeof(es->monitor)];
    snprintf(canonical, sizeof(canonical), "%s", logs_canonical_key(es->monitor));
    memcpy(es->monitor, canonical, sizeof(canonical));
    es->enabled = true;
    return 0;
}

/* Line and column (1-based) of byte offset off in text. */
static void text_position(const char *text, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static int parse_root(struct job_spec *s, const cJSON *root, bool local, struct diag *d)
{
    static const char *const keys[] = {"name", "dataset", "model", "optimizer", "batch_size",
                                       "epochs", "seed", "steps_per_epoch", "validation_steps",
                                       "threads", "checkpoints", "callbacks", NULL};
    int r;
    if (!cJSON_IsObject(root))
        return diag_set(d, -EINVAL, "", "a job spec must be a JSON object, not %s",
                        json_type_name(root));
    if ((r = check_keys(root, "", keys, d)) < 0 ||
        (r = get_string(root, "", "name", s->name, sizeof(s->name), true, d)) < 0 ||
        (r = require(root, "", "dataset", d)) < 0 || (r = parse_dataset(s, root, local, d)) < 0 ||
        (r = require(root, "", "model", d)) < 0 || (r = parse_model(s, root, d)) < 0 ||
        (r = parse_optimizer(s, root, d)) < 0)
        return r;

    long long x;
    bool is_null;
    x = s->batch_size;
    if ((r = get_int(root, "", "batch_size", 1, 4096, &x, NULL, d)) < 0)
        return r;
    s->batch_size = (int)x;
    x = s->epochs;
    if ((r = get_int(root, "", "epochs", 1, 100000, &x, NULL, d)) < 0)
        return r;
    s->epochs = (int)x;
    x = (long long)s->seed;
    if ((r = get_int(root, "", "seed", 0, JSON_MAX_SAFE_INT, &x, NULL, d)) < 0)
        return r;
    s->seed = (uint64_t)x;
    x = 0;
    is_null = false;
    if ((r = get_int(root, "", "steps_per_epoch", 0, 1e9, &x, &is_null, d)) < 0)
        return r;
    s->steps_per_epoch = is_null ? 0 : (int)x;
    x = 0;
    if ((r = get_int(root, "", "validation_steps", 0, 1e9, &x, &is_null, d)) < 0)
        return r;
    s->validation_steps = is_null ? 0 : (int)x;
    x = 0;
    if ((r = get_int(root, "", "threads", 0, 64, &x, NULL, d)) < 0)
        return r;
    s->threads = (int)x;

    if ((r = parse_checkpoints(s, root, d)) < 0 || (r = parse_callbacks(s, root, d)) < 0)
        return r;
    return 0;
}

static int parse_spec(struct job_spec *ret, const char *json, size_t len, bool local,
                      struct diag *d)
{
    if (d) {
        d->field[0] = '\0';
        d->message[0] = '\0';
    }
    if (!json)
        return diag_set(d, -EINVAL, "", "empty body: a job spec is a JSON object");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, false);
    if (!root) {
        size_t off = end && end >= json && (size_t)(end - json) <= len ? (size_t)(end - json) : 0;
        int line, col;
        text_position(json, off, &line, &col);
        if (off + 1 >= len)
            return diag_set(d, -EINVAL, "", "malformed JSON: unexpected end of input at line %d "
                                            "column %d",
                            line, col);
        return diag_set(d, -EINVAL, "", "malformed JSON at line %d column %d (byte %zu)", line,
                        col, off);
    }
    size_t off = (size_t)(end - json);
    while (off < len && (json[off] == ' ' || json[off] == '\t' || json[off] == '\n' ||
                         json[off] == '\r'))
        off++;
    if (off < len) {
        cJSON_Delete(root);
        int line, col;
        text_position(json, off, &line, &col);
        return diag_set(d, -EINVAL, "", "malformed JSON: unexpected data after the object at "
                                        "line %d column %d (byte %zu)",
                        line, col, off);
    }

    struct job_spec s;
    memset(&s, 0, sizeof(s));
    s.batch_size = 32;
    s.epochs = 1;
    s.seed = 1;
    s.import_seed = -1;
    int r = parse_root(&s, root, local, d);
    cJSON_Delete(root);
    if (r < 0) {
        job_spec_free(&s);
        return r;
    }
    *ret = s;
    return 0;
}

int job_spec_parse(struct job_spec *ret, const char *json, size_t len, struct diag *d)
{
    return parse_spec(ret, json, len, false, d);
}

int job_spec_parse_local(struct job_spec *ret, const char *json, size_t len, struct diag *d)
{
    return parse_spec(ret, json, len, true, d);
}

/* --- printing ---------------------------------------------------------------- */

static cJSON *number_or_null(bool is_null, double x)
{
    return is_null ? cJSON_CreateNull() : cJSON_CreateNumber(x);
}

static cJSON *optimizer_json(const struct optimizer_config *o)
{
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return NULL;
    bool ok = cjson_add(j, "name", cJSON_CreateString(o->kind == OPTIMIZER_KIND_SGD ? "sgd" : "adam")) &&
              cjson_add(j, "learning_rate", cJSON_CreateNumber(o->learning_rate)) &&
              cjson_add(j, "decay", cJSON_CreateNumber(o->decay));
    if (ok && o->kind == OPTIMIZER_KIND_SGD)
        ok = cjson_add(j, "momentum", cJSON_CreateNumber(o->momentum)) &&
             cjson_add(j, "nesterov", cJSON_CreateBool(o->nesterov));
    else if (ok)
        ok = cjson_add(j, "beta_1", cJSON_CreateNumber(o->beta_1)) &&
             cjson_add(j, "beta_2", cJSON_CreateNumber(o->beta_2)) &&
             cjson_add(j, "epsilon", cJSON_CreateNumber(o->epsilon));
    return cjson_checked(j, ok);
}

static cJSON *policy_json(const struct ckpt_policy_config *c)
{
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return NULL;
    bool ok =
        cjson_add(j, "filepath", cJSON_CreateString(c->filepath)) &&
        cjson_add(j, "monitor", cJSON_CreateString(c->monitor)) &&
        cjson_add(j, "mode", cJSON_CreateString(mode_name(c->mode))) &&
        cjson_add(j, "save_best_only", cJSON_CreateBool(c->save_best_only)) &&
        cjson_add(j, "save_weights_only", cJSON_CreateBool(c->save_weights_only)) &&
        cjson_add(j, "save_freq", c->save_freq > 0 ? cJSON_CreateNumber(c->save_freq)
                                             : cJSON_CreateString("epoch")) &&
        cjson_add(j, "initial_value_threshold",
            number_or_null(!c->has_initial_value_threshold, c->initial_value_threshold)) &&
        cjson_add(j, "save_top_k", number_or_null(c->save_top_k <= 0, c->save_top_k)) &&
        cjson_add(j, "save_last", cJSON_CreateBool(c->save_last)) &&
        cjson_add(j, "verbose", cJSON_CreateNumber(c->verbose));
    return cjson_checked(j, ok);
}

static cJSON *callbacks_json(const struct job_early_stopping *es)
{
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return NULL;
    if (!es->enabled) {
        if (!cjson_add(j, "early_stopping", cJSON_CreateNull())) {
            cJSON_Delete(j);
            return NULL;
        }
        return j;
    }
    cJSON *e = cJSON_CreateObject();
    bool ok = cjson_add(j, "early_stopping", e) && cjson_add(e, "monitor", cJSON_CreateString(es->monitor)) &&
              cjson_add(e, "patience", cJSON_CreateNumber(es->patience)) &&
              cjson_add(e, "min_delta", cJSON_CreateNumber(es->min_delta)) &&
              cjson_add(e, "mode", cJSON_CreateString(mode_name(es->mode))) &&
              cjson_add(e, "baseline", number_or_null(!es->has_baseline, es->baseline)) &&
              cjson_add(e, "restore_best_weights", cJSON_CreateBool(es->restore_best_weights));
    return cjson_checked(j, ok);
}

char *job_spec_to_json(const struct job_spec *s)
{
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return NULL;
    char *out = NULL;
    cJSON *ds = cJSON_CreateObject();
    if (!cjson_add(j, "name", cJSON_CreateString(s->name)) || !cjson_add(j, "dataset", ds) ||
        !cjson_add(ds, "name", cJSON_CreateString(s->dataset)) ||
        !cjson_add(ds, "validation_split", cJSON_CreateNumber(s->validation_split)) ||
        !cjson_add(ds, "limit", number_or_null(s->dataset_limit <= 0, s->dataset_limit)) ||
        !cjson_add(ds, "validation_limit",
             number_or_null(s->validation_limit <= 0, s->validation_limit)))
        goto out;
    if (s->dataset_file[0]) {
        cJSON *size = s->image_size[0] ? cJSON_CreateIntArray(s->image_size, 2) : cJSON_CreateNull();
        if (!cjson_add(ds, "file", cJSON_CreateString(s->dataset_file)) ||
            !cjson_add(ds, "format", cJSON_CreateString(s->dataset_format[0] ? s->dataset_format
                                                                       : "auto")) ||
            !cjson_add(ds, "image_size", size) ||
            !cjson_add(ds, "color_mode", cJSON_CreateString(s->color_mode[0] ? s->color_mode : "rgb")) ||
            !cjson_add(ds, "seed", number_or_null(s->import_seed < 0, (double)s->import_seed)))
            goto out;
    }
    if (s->model_json) {
        if (!cjson_add(j, "model", cJSON_Parse(s->model_json)))
            goto out;
    } else if (!cjson_add(j, "model", cJSON_CreateString(s->model))) {
        goto out;
    }
    if (!cjson_add(j, "optimizer", optimizer_json(&s->optimizer)) ||
        !cjson_add(j, "batch_size", cJSON_CreateNumber(s->batch_size)) ||
        !cjson_add(j, "epochs", cJSON_CreateNumber(s->epochs)) ||
        !cjson_add(j, "seed", exact_integer(s->seed)) ||
        !cjson_add(j, "steps_per_epoch", number_or_null(s->steps_per_epoch <= 0, s->steps_per_epoch)) ||
        !cjson_add(j, "validation_steps",
             number_or_null(s->validation_steps <= 0, s->validation_steps)) ||
        !cjson_add(j, "threads", cJSON_CreateNumber(s->threads)))
        goto out;
    cJSON *cps = cJSON_CreateArray();
    if (!cjson_add(j, "checkpoints", cps))
        goto out;
    for (int i = 0; i < s->n_checkpoints; i++)
        if (!cJSON_AddItemToArray(cps, policy_json(&s->checkpoints[i])))
            goto out;
    if (!cjson_add(j, "callbacks", callbacks_json(&s->early_stopping)))
        goto out;
    out = cJSON_PrintUnformatted(j);
out:
    cJSON_Delete(j);
    return out;
}

void job_spec_free(struct job_spec *spec)
{
    if (!spec)
        return;
    free(spec->model_json);
    spec->model_json = NULL;
}
