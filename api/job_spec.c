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
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cjson_add.h"
#include "job_id.h"
#include "model.h"
#include "route.h"

/* 2^53 - 1: every integer up to it has its own double; 2^53 + 1 would be
 * read as 2^53 and silently rounded, so larger integers are refused. */
#define JSON_MAX_SAFE_INT 9007199254740991.0

/* The logs keys a job produces: loss, its metrics, and all again with
 * "val_" (fit() always validates: test split or validation_split). */
#define JOB_MAX_LOG_KEYS (2 + 2 * METRICS_MAX)
struct job_log_keys {
    int n;
    char key[JOB_MAX_LOG_KEYS][48];
    const char *ptr[JOB_MAX_LOG_KEYS];
    char list[JOB_MAX_LOG_KEYS * 50]; /* "loss, accuracy, val_loss and val_accuracy" */
};

static void job_log_keys_of(const struct job_spec *s, struct job_log_keys *k)
{
    k->n = 0;
    for (int v = 0; v < 2; v++) {
        snprintf(k->key[k->n++], sizeof(k->key[0]), "%sloss", v ? "val_" : "");
        for (int i = 0; i < s->n_metrics; i++)
            snprintf(k->key[k->n++], sizeof(k->key[0]), "%s%s", v ? "val_" : "",
                     logs_canonical_key(s->metrics[i].key));
    }
    size_t len = 0;
    k->list[0] = '\0';
    for (int i = 0; i < k->n; i++) {
        k->ptr[i] = k->key[i];
        len += (size_t)snprintf(k->list + len, sizeof(k->list) - len, "%s%s",
                                i == 0 ? "" : i == k->n - 1 ? " and " : ", ", k->key[i]);
    }
}

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

static bool is_log_key(const struct job_spec *s, const char *key)
{
    struct job_log_keys keys;
    job_log_keys_of(s, &keys);
    const char *k = logs_canonical_key(key);
    for (int i = 0; i < keys.n; i++)
        if (strcmp(k, keys.key[i]) == 0)
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

/* "learning_rate" given as a Keras schedule (keras.optimizers.schedules.serialize). */
static int parse_lr_schedule(const cJSON *v, struct optimizer_config *o, struct diag *d)
{
    const cJSON *lr = cJSON_GetObjectItemCaseSensitive(v, "learning_rate");
    if (!cJSON_IsObject(lr))
        return 0;
    char *text = cJSON_PrintUnformatted(lr);
    if (!text)
        return diag_set(d, -ENOMEM, "/optimizer/learning_rate", "out of memory");
    int r = lr_schedule_parse_json(&o->schedule, text, d);
    cJSON_free(text);
    if (r < 0) {
        diag_prefix(d, "/optimizer/learning_rate");
        return r;
    }
    o->learning_rate = lr_schedule_at(&o->schedule, 0);
    return 0;
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
    int k = optimizer_kind_from_name(name->valuestring);
    if (k < 0)
        return diag_set(d, -EINVAL, field,
                        "unknown optimizer \"%.64s\"; use \"sgd\", \"adam\", \"rmsprop\", "
                        "\"adagrad\", \"adamw\", \"nadam\" or \"adamax\"",
                        name->valuestring);
    enum optimizer_kind kind = (enum optimizer_kind)k;
    optimizer_config_default(&s->optimizer, kind);
    if (!cJSON_IsObject(v))
        return 0;

    /* Keras config keys: every optimizer's, then each kind's own. */
    static const char *const keys[][14] = {
        [OPTIMIZER_KIND_SGD] = {"momentum", "nesterov"},
        [OPTIMIZER_KIND_ADAM] = {"beta_1", "beta_2", "epsilon", "amsgrad"},
        [OPTIMIZER_KIND_RMSPROP] = {"rho", "momentum", "epsilon", "centered"},
        [OPTIMIZER_KIND_ADAGRAD] = {"initial_accumulator_value", "epsilon"},
        [OPTIMIZER_KIND_ADAMW] = {"beta_1", "beta_2", "epsilon", "amsgrad"},
        [OPTIMIZER_KIND_NADAM] = {"beta_1", "beta_2", "epsilon"},
        [OPTIMIZER_KIND_ADAMAX] = {"beta_1", "beta_2", "epsilon"},
    };
    static const char *const common[] = {"name", "learning_rate", "lr", "decay", "weight_decay",
                                          "clipnorm", "clipvalue", "global_clipnorm"};
    const char *allowed[24];
    int n_allowed = 0;
    for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
        allowed[n_allowed++] = common[i];
    for (int i = 0; keys[kind][i]; i++)
        allowed[n_allowed++] = keys[kind][i];
    allowed[n_allowed] = NULL;
    struct optimizer_config *o = &s->optimizer;
    int r = check_keys(v, "/optimizer", allowed, d);
    if (r < 0) {
        if (d && strstr(d->message, "unknown field"))
            snprintf(d->message + strlen(d->message), sizeof(d->message) - strlen(d->message),
                     " for %s", optimizer_kind_class_name(kind));
        return r;
    }
    if (cJSON_GetObjectItemCaseSensitive(v, "lr") &&
        cJSON_GetObjectItemCaseSensitive(v, "learning_rate"))
        return diag_set(d, -EINVAL, "/optimizer/lr",
                        "give either learning_rate or its old name lr, not both");
    if ((r = parse_lr_schedule(v, o, d)) < 0)
        return r;
    bool null_ignored;
    if ((!o->schedule.kind &&
         (r = get_number(v, "/optimizer", "learning_rate", 0, true, INFINITY, false,
                         &o->learning_rate, NULL, d)) < 0) ||
        (r = get_number(v, "/optimizer", "lr", 0, true, INFINITY, false, &o->learning_rate,
                        NULL, d)) < 0 ||
        (r = get_number(v, "/optimizer", "decay", 0, false, INFINITY, false, &o->decay, NULL,
                        d)) < 0 ||
        (r = get_number(v, "/optimizer", "weight_decay", 0, false, INFINITY, false,
                        &o->weight_decay, &null_ignored, d)) < 0 ||
        (r = get_number(v, "/optimizer", "clipnorm", 0, false, INFINITY, false, &o->clipnorm,
                        &null_ignored, d)) < 0 ||
        (r = get_number(v, "/optimizer", "clipvalue", 0, false, INFINITY, false, &o->clipvalue,
                        &null_ignored, d)) < 0 ||
        (r = get_number(v, "/optimizer", "global_clipnorm", 0, false, INFINITY, false,
                        &o->global_clipnorm, &null_ignored, d)) < 0 ||
        (r = get_number(v, "/optimizer", "momentum", 0, false, 1, true,
                        &o->momentum, NULL, d)) < 0 ||
        (r = get_bool(v, "/optimizer", "nesterov", &o->nesterov, d)) < 0 ||
        (r = get_number(v, "/optimizer", "beta_1", 0, false, 1, true, &o->beta_1, NULL, d)) < 0 ||
        (r = get_number(v, "/optimizer", "beta_2", 0, false, 1, true, &o->beta_2, NULL, d)) < 0 ||
        (r = get_number(v, "/optimizer", "epsilon", 0, true, INFINITY,
                        false, &o->epsilon, NULL, d)) < 0 ||
        (r = get_bool(v, "/optimizer", "amsgrad", &o->amsgrad, d)) < 0 ||
        (r = get_number(v, "/optimizer", "rho", 0, false, 1, true, &o->rho, NULL, d)) < 0 ||
        (r = get_bool(v, "/optimizer", "centered", &o->centered, d)) < 0 ||
        (r = get_number(v, "/optimizer", "initial_accumulator_value", 0, false, INFINITY, false,
                        &o->initial_accumulator_value, NULL, d)) < 0)
        return r;
    if ((o->clipnorm > 0) + (o->clipvalue > 0) + (o->global_clipnorm > 0) > 1)
        return diag_set(d, -EINVAL, o->clipnorm > 0 ? "/optimizer/clipnorm" : "/optimizer/clipvalue",
                        "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set");
    return 0;
}

static int parse_policy(const struct job_spec *s, struct ckpt_policy_config *c, const cJSON *v,
                        const char *base, struct diag *d)
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

    struct job_log_keys logs;
    job_log_keys_of(s, &logs);
    r = ckpt_policy_validate(c, logs.ptr, logs.n, d);
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
        int r = parse_policy(s, &s->checkpoints[i], c, base, d);
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

static int check_monitor(const struct job_spec *s, char *monitor, size_t size, const char *base,
                         struct diag *d)
{
    if (!is_log_key(s, monitor)) {
        struct job_log_keys k;
        job_log_keys_of(s, &k);
        char field[256];
        pointer_join(field, sizeof(field), base, "monitor");
        return diag_set(d, -EINVAL, field, "unknown metric '%s'; this job logs %s", monitor,
                        k.list);
    }
    char canonical[64];
    snprintf(canonical, sizeof(canonical), "%s", logs_canonical_key(monitor));
    snprintf(monitor, size, "%s", canonical);
    return 0;
}

/* A callback's object: NULL = absent or null (off), else an object. */
static int callback_object(const cJSON *v, const char *key, const char *base, const cJSON **ret,
                           struct diag *d)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(v, key);
    *ret = NULL;
    if (!e || cJSON_IsNull(e))
        return 0;
    if (!cJSON_IsObject(e))
        return diag_set(d, -EINVAL, base, "must be an object or null, not %s", json_type_name(e));
    *ret = e;
    return 0;
}

static int parse_early_stopping(struct job_spec *s, const cJSON *v, struct diag *d)
{
    struct es_config *es = &s->early_stopping;
    es_config_default(es);
    const char *base = "/callbacks/early_stopping";
    const cJSON *e;
    int r = callback_object(v, "early_stopping", base, &e, d);
    if (r < 0 || !e)
        return r;
    static const char *const es_keys[] = {"monitor", "patience", "min_delta", "mode", "baseline",
                                          "restore_best_weights", "start_from_epoch", NULL};
    long long patience = 0, start = 0;
    bool baseline_null = true;
    if ((r = check_keys(e, base, es_keys, d)) < 0 ||
        (r = get_string(e, base, "monitor", es->monitor, sizeof(es->monitor), false, d)) < 0 ||
        (r = get_int(e, base, "patience", 0, 1000000, &patience, NULL, d)) < 0 ||
        (r = get_number(e, base, "min_delta", 0, false, INFINITY, false, &es->min_delta, NULL,
                        d)) < 0 ||
        (r = get_mode(e, base, &es->mode, d)) < 0 ||
        (r = get_number(e, base, "baseline", -INFINITY, false, INFINITY, false, &es->baseline,
                        &baseline_null, d)) < 0 ||
        (r = get_bool(e, base, "restore_best_weights", &es->restore_best_weights, d)) < 0 ||
        (r = get_int(e, base, "start_from_epoch", 0, 1000000, &start, NULL, d)) < 0)
        return r;
    es->patience = (int)patience;
    es->start_from_epoch = (int)start;
    es->has_baseline = !baseline_null && cJSON_GetObjectItemCaseSensitive(e, "baseline");
    if (!es->has_baseline)
        es->baseline = 0;
    if ((r = check_monitor(s, es->monitor, sizeof(es->monitor), base, d)) < 0)
        return r;
    es->enabled = true;
    return 0;
}

static int parse_reduce_lr(struct job_spec *s, const cJSON *v, struct diag *d)
{
    struct rlrop_config *c = &s->reduce_lr;
    rlrop_config_default(c);
    const char *base = "/callbacks/reduce_lr_on_plateau";
    const cJSON *e;
    int r = callback_object(v, "reduce_lr_on_plateau", base, &e, d);
    if (r < 0 || !e)
        return r;
    static const char *const keys[] = {"monitor", "factor", "patience", "mode", "min_delta",
                                       "cooldown", "min_lr", "verbose", NULL};
    long long patience = c->patience, cooldown = c->cooldown, verbose = 0;
    if ((r = check_keys(e, base, keys, d)) < 0 ||
        (r = get_string(e, base, "monitor", c->monitor, sizeof(c->monitor), false, d)) < 0 ||
        (r = get_number(e, base, "factor", 0, false, 1, true, &c->factor, NULL, d)) < 0 ||
        (r = get_int(e, base, "patience", 0, 1000000, &patience, NULL, d)) < 0 ||
        (r = get_mode(e, base, &c->mode, d)) < 0 ||
        (r = get_number(e, base, "min_delta", 0, false, INFINITY, false, &c->min_delta, NULL,
                        d)) < 0 ||
        (r = get_int(e, base, "cooldown", 0, 1000000, &cooldown, NULL, d)) < 0 ||
        (r = get_number(e, base, "min_lr", 0, false, INFINITY, false, &c->min_lr, NULL, d)) < 0 ||
        (r = get_int(e, base, "verbose", 0, 2, &verbose, NULL, d)) < 0)
        return r;
    c->patience = (int)patience;
    c->cooldown = (int)cooldown;
    c->verbose = (int)verbose;
    if ((r = check_monitor(s, c->monitor, sizeof(c->monitor), base, d)) < 0)
        return r;
    if ((r = rlrop_config_validate(c, d)) < 0) {
        diag_prefix(d, base);
        return r;
    }
    c->enabled = true;
    return 0;
}

static int parse_lr_scheduler(struct job_spec *s, const cJSON *v, struct diag *d)
{
    struct lr_step_decay_config *c = &s->lr_scheduler;
    memset(c, 0, sizeof(*c));
    const char *base = "/callbacks/lr_scheduler";
    const cJSON *e;
    int r = callback_object(v, "lr_scheduler", base, &e, d);
    if (r < 0 || !e)
        return r;
    static const char *const keys[] = {"schedule", "initial_learning_rate", "factor",
                                       "drop_every", "verbose", NULL};
    char schedule[32] = "";
    long long drop_every = 0, verbose = 0;
    if ((r = check_keys(e, base, keys, d)) < 0 || (r = require(e, base, "schedule", d)) < 0 ||
        (r = get_string(e, base, "schedule", schedule, sizeof(schedule), false, d)) < 0)
        return r;
    if (strcmp(schedule, "step_decay") != 0)
        return diag_set(d, -EINVAL, "/callbacks/lr_scheduler/schedule",
                        "unknown schedule \"%s\"; the scheduler knows \"step_decay\" (for "
                        "decaying learning rates inside the optimizer use a Keras schedule as "
                        "its learning_rate)",
                        schedule);
    if ((r = require(e, base, "initial_learning_rate", d)) < 0 ||
        (r = require(e, base, "factor", d)) < 0 || (r = require(e, base, "drop_every", d)) < 0 ||
        (r = get_number(e, base, "initial_learning_rate", 0, false, INFINITY, false,
                        &c->initial_learning_rate, NULL, d)) < 0 ||
        (r = get_number(e, base, "factor", 0, true, INFINITY, false, &c->factor, NULL, d)) < 0 ||
        (r = get_int(e, base, "drop_every", 1, 1000000, &drop_every, NULL, d)) < 0 ||
        (r = get_int(e, base, "verbose", 0, 2, &verbose, NULL, d)) < 0)
        return r;
    c->drop_every = (int)drop_every;
    c->verbose = (int)verbose;
    if ((r = lr_step_decay_validate(c, d)) < 0) {
        diag_prefix(d, base);
        return r;
    }
    c->enabled = true;
    return 0;
}

static int parse_callbacks(struct job_spec *s, const cJSON *root, struct diag *d)
{
    es_config_default(&s->early_stopping);
    rlrop_config_default(&s->reduce_lr);
    memset(&s->lr_scheduler, 0, sizeof(s->lr_scheduler));
    s->terminate_on_nan = false;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "callbacks");
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsObject(v))
        return diag_set(d, -EINVAL, "/callbacks", "must be an object, not %s", json_type_name(v));
    static const char *const keys[] = {"early_stopping", "reduce_lr_on_plateau", "lr_scheduler",
                                       "terminate_on_nan", NULL};
    int r = check_keys(v, "/callbacks", keys, d);
    if (r == 0)
        r = parse_early_stopping(s, v, d);
    if (r == 0)
        r = parse_reduce_lr(s, v, d);
    if (r == 0)
        r = parse_lr_scheduler(s, v, d);
    if (r == 0)
        r = get_bool(v, "/callbacks", "terminate_on_nan", &s->terminate_on_nan, d);
    if (r == 0 && s->optimizer.schedule.kind != LR_SCHEDULE_NONE &&
        (s->reduce_lr.enabled || s->lr_scheduler.enabled))
        r = diag_set(d, -EINVAL,
                     s->reduce_lr.enabled ? "/callbacks/reduce_lr_on_plateau"
                                          : "/callbacks/lr_scheduler",
                     "the optimizer's learning_rate is a schedule (%s), which this callback "
                     "cannot set (Keras refuses it too): give a number as learning_rate",
                     lr_schedule_class_name(&s->optimizer.schedule));
    return r;
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

/* One Keras loss or metric class: its serialized class_name, the name
 * compile() also takes and the config keys its get_config() prints. */
struct keras_class {
    const char *class_name, *name;
    int kind;
};

static const struct keras_class loss_classes[] = {
    {"CategoricalCrossentropy", "categorical_crossentropy", LOSS_KIND_CATEGORICAL_CROSSENTROPY},
    {"SparseCategoricalCrossentropy", "sparse_categorical_crossentropy",
     LOSS_KIND_SPARSE_CATEGORICAL_CROSSENTROPY},
    {"BinaryCrossentropy", "binary_crossentropy", LOSS_KIND_BINARY_CROSSENTROPY},
    {"MeanSquaredError", "mean_squared_error", LOSS_KIND_MEAN_SQUARED_ERROR},
    {"MeanAbsoluteError", "mean_absolute_error", LOSS_KIND_MEAN_ABSOLUTE_ERROR},
    {NULL, NULL, 0},
};

static const struct keras_class metric_classes[] = {
    {"CategoricalAccuracy", "categorical_accuracy", METRIC_KIND_CATEGORICAL_ACCURACY},
    {"SparseCategoricalAccuracy", "sparse_categorical_accuracy",
     METRIC_KIND_SPARSE_CATEGORICAL_ACCURACY},
    {"TopKCategoricalAccuracy", "top_k_categorical_accuracy",
     METRIC_KIND_TOP_K_CATEGORICAL_ACCURACY},
    {"BinaryAccuracy", "binary_accuracy", METRIC_KIND_BINARY_ACCURACY},
    {"MeanSquaredError", "mean_squared_error", METRIC_KIND_MEAN_SQUARED_ERROR},
    {"MeanAbsoluteError", "mean_absolute_error", METRIC_KIND_MEAN_ABSOLUTE_ERROR},
    {NULL, NULL, 0},
};

static const char loss_names[] = "categorical_crossentropy, sparse_categorical_crossentropy, "
                                 "binary_crossentropy, mean_squared_error (mse), "
                                 "mean_absolute_error (mae)";
static const char metric_names[] = "accuracy, acc, categorical_accuracy, "
                                   "sparse_categorical_accuracy, top_k_categorical_accuracy, "
                                   "binary_accuracy, mse, mae, mean_squared_error, "
                                   "mean_absolute_error";

static const struct keras_class *class_by_class_name(const struct keras_class *t, const char *n)
{
    for (; t->class_name; t++)
        if (strcmp(t->class_name, n) == 0)
            return t;
    return NULL;
}

/* A serialized Keras object {"module", "class_name", "config",
 * "registered_name"}: its class in table, config checked against allowed. */
static int keras_object(const cJSON *v, const char *base, const struct keras_class *table,
                        const char *const *config_keys, const char *what, const char *names,
                        const struct keras_class **ret_class, const cJSON **ret_config,
                        struct diag *d)
{
    static const char *const keys[] = {"module", "class_name", "config", "registered_name", NULL};
    char field[256];
    if (!cJSON_IsObject(v))
        return diag_set(d, -EINVAL, base,
                        "must be a %s name or a serialized Keras %s object, not %s", what, what,
                        json_type_name(v));
    int r = check_keys(v, base, keys, d);
    if (r == 0)
        r = require(v, base, "class_name", d);
    if (r < 0)
        return r;
    const cJSON *cn = cJSON_GetObjectItemCaseSensitive(v, "class_name");
    pointer_join(field, sizeof(field), base, "class_name");
    if (!cJSON_IsString(cn))
        return diag_set(d, -EINVAL, field, "must be a string, not %s", json_type_name(cn));
    const struct keras_class *k = class_by_class_name(table, cn->valuestring);
    if (!k)
        return diag_set(d, -EINVAL, field, "unknown %s class '%.64s'; jobs take the classes of %s",
                        what, cn->valuestring, names);
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(v, "config");
    pointer_join(field, sizeof(field), base, "config");
    if (cfg && !cJSON_IsNull(cfg)) {
        if (!cJSON_IsObject(cfg))
            return diag_set(d, -EINVAL, field, "must be an object, not %s", json_type_name(cfg));
        if ((r = check_keys(cfg, field, config_keys, d)) < 0)
            return r;
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(cfg, "dtype");
        if (dt && !cJSON_IsNull(dt) && !(cJSON_IsString(dt) && strcmp(dt->valuestring, "float32") == 0)) {
            char f2[256];
            pointer_join(f2, sizeof(f2), field, "dtype");
            return diag_set(d, -EINVAL, f2, "must be \"float32\" or null (jobs train in float32)");
        }
    } else {
        cfg = NULL;
    }
    *ret_class = k;
    *ret_config = cfg;
    return 0;
}

/* "loss": a name or a serialized Keras loss. */
static int parse_loss(struct job_spec *s, const cJSON *root, struct diag *d)
{
    static const char *const cfg_keys[] = {"name", "reduction", "dtype", "from_logits",
                                           "label_smoothing", "axis", "ignore_class", NULL};
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "loss");
    if (!v || cJSON_IsNull(v))
        return 0;
    if (cJSON_IsString(v)) {
        int r = get_string(root, "", "loss", s->loss, sizeof(s->loss), false, d);
        if (r < 0)
            return r;
        int kind = loss_kind_from_name(s->loss);
        for (const char *p = s->loss; *p && kind >= 0; p++)
            if (isupper((unsigned char)*p))
                kind = -1; /* Keras' names are lower case */
        if (kind < 0)
            return diag_set(d, -EINVAL, "/loss", "unknown loss '%s'; jobs take %s", s->loss,
                            loss_names);
        s->loss_config.kind = (enum loss_kind)kind;
        return 0;
    }
    const struct keras_class *k;
    const cJSON *cfg;
    int r = keras_object(v, "/loss", loss_classes, cfg_keys, "loss", loss_names, &k, &cfg, d);
    if (r < 0)
        return r;
    struct loss_config lc = {.kind = (enum loss_kind)k->kind};
    snprintf(s->loss, sizeof(s->loss), "%s", k->name);
    s->loss_object = true;
    if (cfg) {
        bool cross = lc.kind == LOSS_KIND_CATEGORICAL_CROSSENTROPY ||
                     lc.kind == LOSS_KIND_SPARSE_CATEGORICAL_CROSSENTROPY ||
                     lc.kind == LOSS_KIND_BINARY_CROSSENTROPY;
        bool smoothing = lc.kind == LOSS_KIND_CATEGORICAL_CROSSENTROPY ||
                         lc.kind == LOSS_KIND_BINARY_CROSSENTROPY;
        if (!cross && cJSON_GetObjectItemCaseSensitive(cfg, "from_logits"))
            return diag_set(d, -EINVAL, "/loss/config/from_logits", "%s has no from_logits",
                            k->class_name);
        if (!smoothing && cJSON_GetObjectItemCaseSensitive(cfg, "label_smoothing"))
            return diag_set(d, -EINVAL, "/loss/config/label_smoothing",
                            "%s has no label_smoothing", k->class_name);
        const cJSON *ic = cJSON_GetObjectItemCaseSensitive(cfg, "ignore_class");
        if (ic && !cJSON_IsNull(ic))
            return diag_set(d, -EINVAL, "/loss/config/ignore_class",
                            "must be null (jobs train every class)");
        const cJSON *red = cJSON_GetObjectItemCaseSensitive(cfg, "reduction");
        if (red && !(cJSON_IsString(red) && (strcmp(red->valuestring, "sum_over_batch_size") == 0 ||
                                             strcmp(red->valuestring, "auto") == 0)))
            return diag_set(d, -EINVAL, "/loss/config/reduction",
                            "must be \"sum_over_batch_size\" (or tf.keras' \"auto\"): jobs "
                            "average the loss over the batch");
        const cJSON *ax = cJSON_GetObjectItemCaseSensitive(cfg, "axis");
        if (ax && !(cJSON_IsNumber(ax) && ax->valuedouble == -1))
            return diag_set(d, -EINVAL, "/loss/config/axis", "must be -1 (the class axis)");
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(cfg, "name");
        if (nm && (r = check_string(nm, "/loss/config/name", 64, false, d)) < 0)
            return r;
        double ls = 0;
        if ((r = get_bool(cfg, "/loss/config", "from_logits", &lc.from_logits, d)) < 0 ||
            (r = get_number(cfg, "/loss/config", "label_smoothing", 0, false, 1, false, &ls,
                            NULL, d)) < 0)
            return r;
        lc.label_smoothing = ls;
    }
    s->loss_config = lc;
    return 0;
}

/* The log key a metric's name gives: Keras' name characters, at most 27
 * (fit() adds "val_"). */
static int check_metric_key(const char *key, const char *field, struct diag *d)
{
    size_t n = strlen(key);
    if (n < 1 || n > 27)
        return diag_set(d, -EINVAL, field, "a metric name is 1 to 27 characters (its log key)");
    for (const char *p = key; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return diag_set(d, -EINVAL, field,
                            "a metric name (its log key) is letters, digits and '_'");
    if (strcmp(key, "loss") == 0 || strncmp(key, "val_", 4) == 0)
        return diag_set(d, -EINVAL, field, "'%s' cannot name a metric: it is a log key of its own",
                        key);
    return 0;
}

/* One entry of "metrics" at field: a name or a serialized Keras metric. */
static int parse_metric(struct job_metric *jm, const cJSON *m, const char *field,
                        enum loss_kind loss, struct diag *d)
{
    static const char *const cfg_keys[] = {"name", "dtype", "k", "threshold", NULL};
    if (cJSON_IsString(m)) {
        int r = check_string(m, field, sizeof(jm->name), false, d);
        if (r < 0)
            return r;
        if (metric_config_from_name(&jm->config, m->valuestring, loss) < 0)
            return diag_set(d, -EINVAL, field, "unknown metric '%s'; jobs take %s",
                            m->valuestring, metric_names);
        snprintf(jm->name, sizeof(jm->name), "%s", m->valuestring);
        snprintf(jm->key, sizeof(jm->key), "%s", logs_canonical_key(m->valuestring));
        return 0;
    }
    const struct keras_class *k;
    const cJSON *cfg;
    int r = keras_object(m, field, metric_classes, cfg_keys, "metric", metric_names, &k, &cfg, d);
    if (r < 0)
        return r;
    struct metric_config mc = {.kind = (enum metric_kind)k->kind, .k = 5, .threshold = 0.5};
    char key[40], base[64], sub[80];
    snprintf(key, sizeof(key), "%s", k->name);
    snprintf(base, sizeof(base), "%s/config", field);
    if (cfg) {
        if (mc.kind != METRIC_KIND_TOP_K_CATEGORICAL_ACCURACY &&
            cJSON_GetObjectItemCaseSensitive(cfg, "k")) {
            pointer_join(sub, sizeof(sub), base, "k");
            return diag_set(d, -EINVAL, sub, "%s has no k", k->class_name);
        }
        if (mc.kind != METRIC_KIND_BINARY_ACCURACY &&
            cJSON_GetObjectItemCaseSensitive(cfg, "threshold")) {
            pointer_join(sub, sizeof(sub), base, "threshold");
            return diag_set(d, -EINVAL, sub, "%s has no threshold", k->class_name);
        }
        long long kk = mc.k;
        if ((r = get_int(cfg, base, "k", 1, 255, &kk, NULL, d)) < 0 ||
            (r = get_number(cfg, base, "threshold", 0, false, 1, false, &mc.threshold, NULL,
                            d)) < 0 ||
            (r = get_string(cfg, base, "name", key, sizeof(key), false, d)) < 0)
            return r;
        mc.k = (int)kk;
    }
    pointer_join(sub, sizeof(sub), base, "name");
    if ((r = check_metric_key(key, sub, d)) < 0)
        return r;
    jm->object = true;
    jm->config = mc;
    snprintf(jm->name, sizeof(jm->name), "%s", k->name);
    snprintf(jm->key, sizeof(jm->key), "%s", logs_canonical_key(key));
    return 0;
}

/* "metrics": a list of metrics as compile() takes it (Keras 3 refuses a
 * bare string too); no two may log under one key. */
static int parse_metrics(struct job_spec *s, const cJSON *root, struct diag *d)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "metrics");
    struct job_metric *jm = &s->metrics[0];
    memset(jm, 0, sizeof(*jm));
    snprintf(jm->name, sizeof(jm->name), "accuracy");
    snprintf(jm->key, sizeof(jm->key), "accuracy");
    metric_config_from_name(&jm->config, "accuracy", s->loss_config.kind);
    s->n_metrics = 1;
    s->metrics_default = !v || cJSON_IsNull(v);
    if (s->metrics_default)
        return 0;
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n < 1 || n > METRICS_MAX)
        return diag_set(d, -EINVAL, "/metrics",
                        "must be a list of 1 to %d metrics (names or serialized metrics)",
                        METRICS_MAX);
    int i = 0;
    for (const cJSON *m = v->child; m; m = m->next, i++) {
        char field[32];
        pointer_index(field, sizeof(field), "/metrics", i);
        memset(&s->metrics[i], 0, sizeof(s->metrics[i]));
        int r = parse_metric(&s->metrics[i], m, field, s->loss_config.kind, d);
        if (r < 0)
            return r;
        for (int j = 0; j < i; j++)
            if (strcmp(s->metrics[j].key, s->metrics[i].key) == 0)
                return diag_set(d, -EINVAL, field,
                                "metric '%s' logs under '%s' as /metrics/%d does; give it "
                                "another name",
                                s->metrics[i].name, s->metrics[i].key, j);
    }
    s->n_metrics = n;
    return 0;
}

/* "class_weight": {"0": 1.0, "3": 2.5} as Keras fit() takes it (a Python
 * dict from class index to weight; JSON keys are strings).  Classes not
 * named weigh 1. */
static int parse_class_weight(struct job_spec *s, const cJSON *root, struct diag *d)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "class_weight");
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsObject(v))
        return diag_set(d, -EINVAL, "/class_weight",
                        "must be an object from class index to weight, not %s",
                        json_type_name(v));
    for (const cJSON *c = v->child; c; c = c->next) {
        char field[256];
        const char *key = c->string ? c->string : "";
        pointer_join(field, sizeof(field), "/class_weight", key);
        char *end = NULL;
        long cls = strtol(key, &end, 10);
        if (!*key || *end || !isdigit((unsigned char)key[0]) || cls > 255 ||
            (key[0] == '0' && key[1]))
            return diag_set(d, -EINVAL, field,
                            "'%.32s' is not a class index (an integer 0 to 255 without sign or "
                            "leading zeros)", key);
        for (int i = 0; i < s->n_class_weight; i++)
            if (s->class_weight[i].cls == cls)
                return diag_set(d, -EINVAL, field, "class %ld is named twice", cls);
        if (!cJSON_IsNumber(c) || !isfinite(c->valuedouble) || c->valuedouble < 0)
            return diag_set(d, -EINVAL, field, "must be a finite number >= 0");
        s->class_weight[s->n_class_weight].cls = (int)cls;
        s->class_weight[s->n_class_weight].weight = c->valuedouble;
        s->n_class_weight++;
    }
    return 0;
}

static int parse_compile(struct job_spec *s, const cJSON *root, struct diag *d)
{
    int r = parse_loss(s, root, d);
    if (r == 0)
        r = parse_metrics(s, root, d);
    if (r == 0)
        r = parse_class_weight(s, root, d);
    return r;
}

/* "initial_weights": null, {"job", "file", "skip_mismatch"} or {"upload",
 * "skip_mismatch"}. */
static int parse_initial_weights(struct job_spec *s, const cJSON *root, struct diag *d)
{
    static const char *const keys[] = {"job", "file", "upload", "skip_mismatch", NULL};
    const char *base = "/initial_weights";
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "initial_weights");
    int r;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsObject(v))
        return diag_set(d, -EINVAL, base,
                        "expected null or an object {\"job\": ..., \"file\": ...} or "
                        "{\"upload\": ...}, not %s",
                        json_type_name(v));
    if ((r = check_keys(v, base, keys, d)) < 0 ||
        (r = get_string(v, base, "job", s->initial_weights.job, sizeof(s->initial_weights.job),
                        true, d)) < 0 ||
        (r = get_string(v, base, "file", s->initial_weights.file,
                        sizeof(s->initial_weights.file), true, d)) < 0 ||
        (r = get_string(v, base, "upload", s->initial_weights.upload,
                        sizeof(s->initial_weights.upload), true, d)) < 0 ||
        (r = get_bool(v, base, "skip_mismatch", &s->initial_weights.skip_mismatch, d)) < 0)
        return r;
    bool job = s->initial_weights.job[0], upload = s->initial_weights.upload[0];
    if (job == upload)
        return diag_set(d, -EINVAL, base, "give either \"job\" (a checkpoint of another job) "
                        "or \"upload\" (a file PUT to /v1/weights/{name})");
    if (job && !api_id_valid(s->initial_weights.job))
        return diag_set(d, -EINVAL, "/initial_weights/job", "'%s' is not a job id",
                        s->initial_weights.job);
    if (upload && s->initial_weights.file[0])
        return diag_set(d, -EINVAL, "/initial_weights/file", "file goes with job, not upload");
    if (upload && !api_dataset_name_valid(s->initial_weights.upload))
        return diag_set(d, -EINVAL, "/initial_weights/upload",
                        "'%s' is not a valid name (letters, digits, '.', '_', '-')",
                        s->initial_weights.upload);
    if (job && !s->initial_weights.file[0])
        snprintf(s->initial_weights.file, sizeof(s->initial_weights.file), "best");
    if (job && strcmp(s->initial_weights.file, "best") != 0) {
        const char *f = s->initial_weights.file;
        if (f[0] == '/' || strstr(f, "..") || f[0] == '.')
            return diag_set(d, -EINVAL, "/initial_weights/file",
                            "'%s' is not a path relative to the job's checkpoint folder", f);
    }
    s->initial_weights.set = true;
    return 0;
}

static int parse_root(struct job_spec *s, const cJSON *root, bool local, struct diag *d)
{
    static const char *const keys[] = {"name", "dataset", "model", "optimizer", "batch_size",
                                       "epochs", "seed", "steps_per_epoch", "validation_steps",
                                       "threads", "loss", "metrics", "class_weight",
                                       "checkpoints", "callbacks", "initial_weights",
                                       NULL};
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

    if ((r = parse_compile(s, root, d)) < 0 || (r = parse_checkpoints(s, root, d)) < 0 ||
        (r = parse_callbacks(s, root, d)) < 0 || (r = parse_initial_weights(s, root, d)) < 0)
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
    snprintf(s.loss, sizeof(s.loss), "categorical_crossentropy");
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

static cJSON *learning_rate_json(const struct optimizer_config *o)
{
    if (o->schedule.kind == LR_SCHEDULE_NONE)
        return cJSON_CreateNumber(o->learning_rate);
    char *text = lr_schedule_to_json(&o->schedule);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    return j;
}

static cJSON *optimizer_json(const struct optimizer_config *o)
{
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return NULL;
    char name[16];
    const char *cls = optimizer_kind_class_name(o->kind);
    size_t i = 0;
    for (; cls[i] && i + 1 < sizeof(name); i++)
        name[i] = (char)tolower((unsigned char)cls[i]);
    name[i] = '\0';
    bool ok = cjson_add(j, "name", cJSON_CreateString(name)) &&
              cjson_add(j, "learning_rate", learning_rate_json(o)) &&
              cjson_add(j, "decay", cJSON_CreateNumber(o->decay));
    switch (o->kind) {
    case OPTIMIZER_KIND_SGD:
        ok = ok && cjson_add(j, "momentum", cJSON_CreateNumber(o->momentum)) &&
             cjson_add(j, "nesterov", cJSON_CreateBool(o->nesterov));
        break;
    case OPTIMIZER_KIND_RMSPROP:
        ok = ok && cjson_add(j, "rho", cJSON_CreateNumber(o->rho)) &&
             cjson_add(j, "momentum", cJSON_CreateNumber(o->momentum)) &&
             cjson_add(j, "epsilon", cJSON_CreateNumber(o->epsilon)) &&
             cjson_add(j, "centered", cJSON_CreateBool(o->centered));
        break;
    case OPTIMIZER_KIND_ADAGRAD:
        ok = ok && cjson_add(j, "initial_accumulator_value",
                       cJSON_CreateNumber(o->initial_accumulator_value)) &&
             cjson_add(j, "epsilon", cJSON_CreateNumber(o->epsilon));
        break;
    default:
        ok = ok && cjson_add(j, "beta_1", cJSON_CreateNumber(o->beta_1)) &&
             cjson_add(j, "beta_2", cJSON_CreateNumber(o->beta_2)) &&
             cjson_add(j, "epsilon", cJSON_CreateNumber(o->epsilon));
        if (o->kind == OPTIMIZER_KIND_ADAM || o->kind == OPTIMIZER_KIND_ADAMW)
            ok = ok && cjson_add(j, "amsgrad", cJSON_CreateBool(o->amsgrad));
        break;
    }
    ok = ok && cjson_add(j, "weight_decay", number_or_null(o->weight_decay <= 0, o->weight_decay)) &&
         cjson_add(j, "clipnorm", number_or_null(o->clipnorm <= 0, o->clipnorm)) &&
         cjson_add(j, "clipvalue", number_or_null(o->clipvalue <= 0, o->clipvalue)) &&
         cjson_add(j, "global_clipnorm", number_or_null(o->global_clipnorm <= 0, o->global_clipnorm));
    if (!ok) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

static cJSON *policy_json(const struct ckpt_policy_config *c)
{
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return NULL;
    bool ok =
        cjson_add(j, "filepath", cJSON_CreateString(c->filepath)) &&
        cjson_add(j, "monitor", cJSON_CreateString(c->monitor)) &&
        cjson_add(j, "mode", cJSON_CreateString(cb_mode_name(c->mode))) &&
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

static cJSON *early_stopping_json(const struct es_config *es)
{
    if (!es->enabled)
        return cJSON_CreateNull();
    cJSON *e = cJSON_CreateObject();
    bool ok = e && cjson_add(e, "monitor", cJSON_CreateString(es->monitor)) &&
              cjson_add(e, "patience", cJSON_CreateNumber(es->patience)) &&
              cjson_add(e, "min_delta", cJSON_CreateNumber(es->min_delta)) &&
              cjson_add(e, "mode", cJSON_CreateString(cb_mode_name(es->mode))) &&
              cjson_add(e, "baseline", number_or_null(!es->has_baseline, es->baseline)) &&
              cjson_add(e, "restore_best_weights", cJSON_CreateBool(es->restore_best_weights)) &&
              cjson_add(e, "start_from_epoch", cJSON_CreateNumber(es->start_from_epoch));
    if (!ok) {
        cJSON_Delete(e);
        return NULL;
    }
    return e;
}

static cJSON *reduce_lr_json(const struct rlrop_config *c)
{
    if (!c->enabled)
        return cJSON_CreateNull();
    cJSON *e = cJSON_CreateObject();
    bool ok = e && cjson_add(e, "monitor", cJSON_CreateString(c->monitor)) &&
              cjson_add(e, "factor", cJSON_CreateNumber(c->factor)) &&
              cjson_add(e, "patience", cJSON_CreateNumber(c->patience)) &&
              cjson_add(e, "mode", cJSON_CreateString(cb_mode_name(c->mode))) &&
              cjson_add(e, "min_delta", cJSON_CreateNumber(c->min_delta)) &&
              cjson_add(e, "cooldown", cJSON_CreateNumber(c->cooldown)) &&
              cjson_add(e, "min_lr", cJSON_CreateNumber(c->min_lr)) &&
              cjson_add(e, "verbose", cJSON_CreateNumber(c->verbose));
    if (!ok) {
        cJSON_Delete(e);
        return NULL;
    }
    return e;
}

static cJSON *lr_scheduler_json(const struct lr_step_decay_config *c)
{
    if (!c->enabled)
        return cJSON_CreateNull();
    cJSON *e = cJSON_CreateObject();
    bool ok = e && cjson_add(e, "schedule", cJSON_CreateString("step_decay")) &&
              cjson_add(e, "initial_learning_rate", cJSON_CreateNumber(c->initial_learning_rate)) &&
              cjson_add(e, "factor", cJSON_CreateNumber(c->factor)) &&
              cjson_add(e, "drop_every", cJSON_CreateNumber(c->drop_every)) &&
              cjson_add(e, "verbose", cJSON_CreateNumber(c->verbose));
    if (!ok) {
        cJSON_Delete(e);
        return NULL;
    }
    return e;
}

static cJSON *callbacks_json(const struct job_spec *s)
{
    cJSON *j = cJSON_CreateObject();
    bool ok = j && cjson_add(j, "early_stopping", early_stopping_json(&s->early_stopping)) &&
              cjson_add(j, "reduce_lr_on_plateau", reduce_lr_json(&s->reduce_lr)) &&
              cjson_add(j, "lr_scheduler", lr_scheduler_json(&s->lr_scheduler)) &&
              cjson_add(j, "terminate_on_nan", cJSON_CreateBool(s->terminate_on_nan));
    if (!ok) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

static cJSON *metric_json(const struct job_metric *jm)
{
    if (!jm->object)
        return cJSON_CreateString(jm->name);
    const struct keras_class *k = metric_classes;
    while (k->class_name && k->kind != (int)jm->config.kind)
        k++;
    cJSON *o = cJSON_CreateObject();
    cJSON *cfg = o && cjson_add(o, "class_name", cJSON_CreateString(k->class_name))
                     ? cJSON_AddObjectToObject(o, "config")
                     : NULL;
    bool ok = cfg && cjson_add(cfg, "name", cJSON_CreateString(jm->key));
    if (ok && jm->config.kind == METRIC_KIND_TOP_K_CATEGORICAL_ACCURACY)
        ok = cjson_add(cfg, "k", cJSON_CreateNumber(jm->config.k));
    if (ok && jm->config.kind == METRIC_KIND_BINARY_ACCURACY)
        ok = cjson_add(cfg, "threshold", cjson_double(jm->config.threshold));
    return cjson_checked(o, ok);
}

static cJSON *metrics_json(const struct job_spec *s)
{
    cJSON *a = cJSON_CreateArray();
    bool ok = a != NULL;
    for (int i = 0; ok && i < s->n_metrics; i++)
        ok = cjson_append(a, metric_json(&s->metrics[i]));
    return cjson_checked(a, ok);
}

static cJSON *loss_json(const struct job_spec *s)
{
    if (!s->loss_object)
        return cJSON_CreateString(s->loss);
    const struct loss_config *lc = &s->loss_config;
    const struct keras_class *k = loss_classes;
    while (k->class_name && k->kind != (int)lc->kind)
        k++;
    cJSON *o = cJSON_CreateObject();
    cJSON *cfg = o && cjson_add(o, "class_name", cJSON_CreateString(k->class_name))
                     ? cJSON_AddObjectToObject(o, "config")
                     : NULL;
    bool ok = cfg != NULL;
    if (ok && lc->kind != LOSS_KIND_MEAN_SQUARED_ERROR && lc->kind != LOSS_KIND_MEAN_ABSOLUTE_ERROR)
        ok = cjson_add(cfg, "from_logits", cJSON_CreateBool(lc->from_logits));
    if (ok && (lc->kind == LOSS_KIND_CATEGORICAL_CROSSENTROPY ||
               lc->kind == LOSS_KIND_BINARY_CROSSENTROPY))
        ok = cjson_add(cfg, "label_smoothing", cjson_double(lc->label_smoothing));
    return cjson_checked(o, ok);
}

static cJSON *class_weight_json(const struct job_spec *s)
{
    if (s->n_class_weight == 0)
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    for (int i = 0; ok && i < s->n_class_weight; i++) {
        char key[8];
        snprintf(key, sizeof(key), "%d", s->class_weight[i].cls);
        ok = cjson_add(o, key, cjson_double(s->class_weight[i].weight));
    }
    return cjson_checked(o, ok);
}

static cJSON *initial_weights_json(const struct job_spec *s)
{
    if (!s->initial_weights.set)
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    if (s->initial_weights.job[0])
        ok &= cjson_add(o, "job", cJSON_CreateString(s->initial_weights.job)) &&
              cjson_add(o, "file", cJSON_CreateString(s->initial_weights.file));
    else
        ok &= cjson_add(o, "upload", cJSON_CreateString(s->initial_weights.upload));
    ok &= cjson_add(o, "skip_mismatch", cJSON_CreateBool(s->initial_weights.skip_mismatch));
    return cjson_checked(o, ok);
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
        !cjson_add(j, "threads", cJSON_CreateNumber(s->threads)) ||
        !cjson_add(j, "loss", loss_json(s)) ||
        !cjson_add(j, "metrics", metrics_json(s)) ||
        !cjson_add(j, "class_weight", class_weight_json(s)))
        goto out;
    cJSON *cps = cJSON_CreateArray();
    if (!cjson_add(j, "checkpoints", cps))
        goto out;
    for (int i = 0; i < s->n_checkpoints; i++)
        if (!cJSON_AddItemToArray(cps, policy_json(&s->checkpoints[i])))
            goto out;
    if (!cjson_add(j, "callbacks", callbacks_json(s)) ||
        !cjson_add(j, "initial_weights", initial_weights_json(s)))
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
