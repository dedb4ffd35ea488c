/* lr_schedule.c - Keras 3 learning-rate schedules: parsing their
 * serialize() JSON, their value at a step, and printing them back (see
 * lr_schedule.h for the formulas). */
#include "lr_schedule.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cjson_add.h"
#include "pyfmt.h"

struct kind_info {
    enum lr_schedule_kind kind;
    const char *class_name;
    const char *default_name;
    const char *const keys[8]; /* allowed config keys, NULL-terminated */
    const char *const required[3];
};

static const struct kind_info kinds[] = {
    {LR_SCHEDULE_EXPONENTIAL_DECAY, "ExponentialDecay", "ExponentialDecay",
     {"initial_learning_rate", "decay_steps", "decay_rate", "staircase", "name", NULL},
     {"initial_learning_rate", "decay_steps", "decay_rate"}},
    {LR_SCHEDULE_PIECEWISE_CONSTANT_DECAY, "PiecewiseConstantDecay", "PiecewiseConstant",
     {"boundaries", "values", "name", NULL},
     {"boundaries", "values", NULL}},
    {LR_SCHEDULE_INVERSE_TIME_DECAY, "InverseTimeDecay", "InverseTimeDecay",
     {"initial_learning_rate", "decay_steps", "decay_rate", "staircase", "name", NULL},
     {"initial_learning_rate", "decay_steps", "decay_rate"}},
    {LR_SCHEDULE_POLYNOMIAL_DECAY, "PolynomialDecay", "PolynomialDecay",
     {"initial_learning_rate", "decay_steps", "end_learning_rate", "power", "cycle", "name", NULL},
     {"initial_learning_rate", "decay_steps", NULL}},
    {LR_SCHEDULE_COSINE_DECAY, "CosineDecay", "CosineDecay",
     {"initial_learning_rate", "decay_steps", "alpha", "name", "warmup_target", "warmup_steps",
      NULL},
     {"initial_learning_rate", "decay_steps", NULL}},
    {LR_SCHEDULE_COSINE_DECAY_RESTARTS, "CosineDecayRestarts", "SGDRDecay",
     {"initial_learning_rate", "first_decay_steps", "t_mul", "m_mul", "alpha", "name", NULL},
     {"initial_learning_rate", "first_decay_steps", NULL}},
};

static const struct kind_info *info_of(enum lr_schedule_kind kind)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (kinds[i].kind == kind)
            return &kinds[i];
    return NULL;
}

const char *lr_schedule_class_name(const struct lr_schedule *s)
{
    const struct kind_info *k = info_of(s->kind);
    return k ? k->class_name : "";
}

/* --- parsing ------------------------------------------------------------------- */

static bool listed(const char *key, const char *const *keys, int n)
{
    for (int i = 0; i < n && keys[i]; i++)
        if (strcmp(keys[i], key) == 0)
            return true;
    return false;
}

static int get_num(const cJSON *cfg, const char *key, double *ret, struct diag *d)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v)
        return 0;
    char field[96];
    snprintf(field, sizeof(field), "/config/%s", key);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return diag_set(d, -EINVAL, field, "must be a finite number");
    *ret = v->valuedouble;
    return 0;
}

static int get_flag(const cJSON *cfg, const char *key, bool *ret, struct diag *d)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v)
        return 0;
    if (!cJSON_IsBool(v)) {
        char field[96];
        snprintf(field, sizeof(field), "/config/%s", key);
        return diag_set(d, -EINVAL, field, "must be true or false");
    }
    *ret = cJSON_IsTrue(v);
    return 0;
}

static int get_list(const cJSON *cfg, const char *key, double *out, int max, int *ret_n,
                    struct diag *d)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    char field[96];
    snprintf(field, sizeof(field), "/config/%s", key);
    if (!cJSON_IsArray(v))
        return diag_set(d, -EINVAL, field, "must be a list of numbers");
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (n >= max)
            return diag_set(d, -EINVAL, field, "at most %d entries", max);
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble))
            return diag_set(d, -EINVAL, field, "entry %d must be a finite number", n);
        out[n++] = e->valuedouble;
    }
    *ret_n = n;
    return 0;
}

static int positive(double x, const char *key, struct diag *d)
{
    if (x > 0)
        return 0;
    char field[96];
    snprintf(field, sizeof(field), "/config/%s", key);
    return diag_set(d, -EINVAL, field, "Argument `%s` must be > 0. Received: %s=%.17g", key, key,
                    x);
}

static int parse_config(struct lr_schedule *s, const struct kind_info *k, const cJSON *cfg,
                        struct diag *d)
{
    for (const cJSON *c = cfg->child; c; c = c->next)
        if (!c->string || !listed(c->string, k->keys, 8)) {
            char field[96];
            snprintf(field, sizeof(field), "/config/%.64s", c->string ? c->string : "");
            return diag_set(d, -EINVAL, field, "unknown argument of %s", k->class_name);
        }
    for (int i = 0; i < 3 && k->required[i]; i++)
        if (!cJSON_GetObjectItemCaseSensitive(cfg, k->required[i])) {
            char field[96];
            snprintf(field, sizeof(field), "/config/%s", k->required[i]);
            return diag_set(d, -EINVAL, field, "%s requires %s", k->class_name, k->required[i]);
        }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(cfg, "name");
    snprintf(s->name, sizeof(s->name), "%s", k->default_name);
    if (cJSON_IsNull(name)) {
        s->name[0] = '\0';
        s->name_null = true;
    } else if (name) {
        if (!cJSON_IsString(name) || strlen(name->valuestring) >= sizeof(s->name))
            return diag_set(d, -EINVAL, "/config/name", "must be a string of at most %zu bytes or null",
                            sizeof(s->name) - 1);
        snprintf(s->name, sizeof(s->name), "%s", name->valuestring);
    }
    s->end_learning_rate = 0.0001;
    s->power = 1.0;
    s->t_mul = 2.0;
    s->m_mul = 1.0;
    int r = 0;
    switch (s->kind) {
    case LR_SCHEDULE_PIECEWISE_CONSTANT_DECAY: {
        int nv = 0;
        if ((r = get_list(cfg, "boundaries", s->boundaries, LR_SCHEDULE_MAX_BOUNDARIES,
                          &s->n_boundaries, d)) < 0 ||
            (r = get_list(cfg, "values", s->values, LR_SCHEDULE_MAX_BOUNDARIES + 1, &nv, d)) < 0)
            return r;
        if (nv != s->n_boundaries + 1)
            return diag_set(d, -EINVAL, "/config/values",
                            "The length of boundaries should be 1 less than the length of values "
                            "(%d boundaries, %d values)",
                            s->n_boundaries, nv);
        for (int i = 1; i < s->n_boundaries; i++)
            if (!(s->boundaries[i] > s->boundaries[i - 1]))
                return diag_set(d, -EINVAL, "/config/boundaries",
                                "boundaries must be strictly increasing");
        return 0;
    }
    case LR_SCHEDULE_COSINE_DECAY_RESTARTS:
        if ((r = get_num(cfg, "initial_learning_rate", &s->initial_learning_rate, d)) < 0 ||
            (r = get_num(cfg, "first_decay_steps", &s->decay_steps, d)) < 0 ||
            (r = get_num(cfg, "t_mul", &s->t_mul, d)) < 0 ||
            (r = get_num(cfg, "m_mul", &s->m_mul, d)) < 0 ||
            (r = get_num(cfg, "alpha", &s->alpha, d)) < 0 ||
            (r = positive(s->decay_steps, "first_decay_steps", d)) < 0)
            return r;
        if (!(s->t_mul > 0))
            return diag_set(d, -EINVAL, "/config/t_mul", "must be > 0");
        return 0;
    default:
        break;
    }
    if ((r = get_num(cfg, "initial_learning_rate", &s->initial_learning_rate, d)) < 0 ||
        (r = get_num(cfg, "decay_steps", &s->decay_steps, d)) < 0 ||
        (r = get_num(cfg, "decay_rate", &s->decay_rate, d)) < 0 ||
        (r = get_flag(cfg, "staircase", &s->staircase, d)) < 0 ||
        (r = get_num(cfg, "end_learning_rate", &s->end_learning_rate, d)) < 0 ||
        (r = get_num(cfg, "power", &s->power, d)) < 0 ||
        (r = get_flag(cfg, "cycle", &s->cycle, d)) < 0 ||
        (r = get_num(cfg, "alpha", &s->alpha, d)) < 0 ||
        (r = get_num(cfg, "warmup_steps", &s->warmup_steps, d)) < 0 ||
        (r = positive(s->decay_steps, "decay_steps", d)) < 0)
        return r;
    const cJSON *wt = cJSON_GetObjectItemCaseSensitive(cfg, "warmup_target");
    if (wt && !cJSON_IsNull(wt)) {
        if ((r = get_num(cfg, "warmup_target", &s->warmup_target, d)) < 0)
            return r;
        s->has_warmup_target = true;
        if (!(s->warmup_steps > 0))
            return diag_set(d, -EINVAL, "/config/warmup_steps",
                            "must be > 0 when warmup_target is set");
    }
    if (s->warmup_steps < 0)
        return diag_set(d, -EINVAL, "/config/warmup_steps", "must be >= 0");
    return 0;
}

int lr_schedule_parse_json(struct lr_schedule *ret, const char *json, struct diag *d)
{
    cJSON *o = json ? cJSON_Parse(json) : NULL;
    int r = 0;
    struct lr_schedule *s = calloc(1, sizeof(*s));
    if (!s) {
        cJSON_Delete(o);
        return diag_set(d, -ENOMEM, "", "out of memory");
    }
    static const char *const top[] = {"module", "class_name", "config", "registered_name"};
    const cJSON *module = cJSON_GetObjectItemCaseSensitive(o, "module");
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(o, "class_name");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(o, "config");
    const cJSON *reg = cJSON_GetObjectItemCaseSensitive(o, "registered_name");
    const struct kind_info *k = NULL;
    if (!cJSON_IsObject(o)) {
        r = diag_set(d, -EINVAL, "", "a learning-rate schedule is an object {\"class_name\": ..., "
                                     "\"config\": {...}}");
        goto out;
    }
    for (const cJSON *c = o->child; c; c = c->next)
        if (!c->string || !listed(c->string, top, 4)) {
            char field[96];
            snprintf(field, sizeof(field), "/%.64s", c->string ? c->string : "");
            r = diag_set(d, -EINVAL, field, "unknown field");
            goto out;
        }
    if (module && !(cJSON_IsString(module) &&
                    strcmp(module->valuestring, "keras.optimizers.schedules") == 0)) {
        r = diag_set(d, -EINVAL, "/module", "must be \"keras.optimizers.schedules\"");
        goto out;
    }
    if (reg && !cJSON_IsNull(reg) && !cJSON_IsString(reg)) {
        r = diag_set(d, -EINVAL, "/registered_name", "must be a string or null");
        goto out;
    }
    if (!cJSON_IsString(cls)) {
        r = diag_set(d, -EINVAL, "/class_name", "required: the schedule's Keras class name");
        goto out;
    }
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(kinds[i].class_name, cls->valuestring) == 0)
            k = &kinds[i];
    if (!k) {
        r = diag_set(d, -EINVAL, "/class_name",
                     "unknown schedule '%.64s'; known: ExponentialDecay, PiecewiseConstantDecay, "
                     "InverseTimeDecay, PolynomialDecay, CosineDecay, CosineDecayRestarts",
                     cls->valuestring);
        goto out;
    }
    if (!cJSON_IsObject(cfg)) {
        r = diag_set(d, -EINVAL, "/config", "required: an object with the schedule's arguments");
        goto out;
    }
    s->kind = k->kind;
    r = parse_config(s, k, cfg, d);
    if (r == 0)
        *ret = *s;
out:
    free(s);
    cJSON_Delete(o);
    return r;
}

/* --- values ----------------------------------------------------------------------- */

static double cosine_decay(const struct lr_schedule *s, double step, double decay_steps,
                           double from)
{
    double completed = step / decay_steps;
    double cosine = 0.5 * (1.0 + cos(M_PI * completed));
    return from * ((1 - s->alpha) * cosine + s->alpha);
}

double lr_schedule_at(const struct lr_schedule *s, int64_t step_count)
{
    double step = (double)step_count;
    double init = s->initial_learning_rate;
    switch (s->kind) {
    case LR_SCHEDULE_EXPONENTIAL_DECAY: {
        double p = step / s->decay_steps;
        if (s->staircase)
            p = floor(p);
        return init * pow(s->decay_rate, p);
    }
    case LR_SCHEDULE_PIECEWISE_CONSTANT_DECAY:
        for (int i = 0; i < s->n_boundaries; i++)
            if (step <= s->boundaries[i])
                return s->values[i];
        return s->values[s->n_boundaries];
    case LR_SCHEDULE_INVERSE_TIME_DECAY: {
        double p = step / s->decay_steps;
        if (s->staircase)
            p = floor(p);
        return init / (1.0 + s->decay_rate * p);
    }
    case LR_SCHEDULE_POLYNOMIAL_DECAY: {
        double decay_steps = s->decay_steps;
        if (s->cycle)
            decay_steps *= step == 0 ? 1.0 : ceil(step / s->decay_steps);
        else if (step > decay_steps)
            step = decay_steps;
        double p = step / decay_steps;
        return (init - s->end_learning_rate) * pow(1 - p, s->power) + s->end_learning_rate;
    }
    case LR_SCHEDULE_COSINE_DECAY:
        if (!s->has_warmup_target)
            return cosine_decay(s, fmin(step, s->decay_steps), s->decay_steps, init);
        step = fmin(step, s->decay_steps + s->warmup_steps);
        if (step < s->warmup_steps)
            return (s->warmup_target - init) * (step / s->warmup_steps) + init;
        return cosine_decay(s, step - s->warmup_steps, s->decay_steps, s->warmup_target);
    case LR_SCHEDULE_COSINE_DECAY_RESTARTS: {
        double f = step / s->decay_steps, i;
        if (s->t_mul == 1.0) {
            i = floor(f);
            f -= i;
        } else {
            i = floor(log(1.0 - f * (1.0 - s->t_mul)) / log(s->t_mul));
            double sum_r = (1.0 - pow(s->t_mul, i)) / (1.0 - s->t_mul);
            f = (f - sum_r) / pow(s->t_mul, i);
        }
        double cosine = 0.5 * pow(s->m_mul, i) * (1.0 + cos(M_PI * f));
        return init * ((1 - s->alpha) * cosine + s->alpha);
    }
    case LR_SCHEDULE_NONE:
        break;
    }
    return init;
}

/* --- printing --------------------------------------------------------------------- */

static cJSON *py_number(double x, bool integral)
{
    char buf[40];
    if (integral && x == floor(x) && fabs(x) < 1e15)
        snprintf(buf, sizeof(buf), "%.0f", x);
    else
        pyfmt_double(buf, x, PYFMT_NONFINITE_JSON);
    return cJSON_CreateRaw(buf);
}

static bool put_list(cJSON *o, const char *key, const double *v, int n, bool integral)
{
    cJSON *a = cJSON_CreateArray();
    if (!cjson_add(o, key, a))
        return false;
    for (int i = 0; i < n; i++) {
        cJSON *e = py_number(v[i], integral);
        if (!e || !cJSON_AddItemToArray(a, e)) {
            cJSON_Delete(e);
            return false;
        }
    }
    return true;
}

char *lr_schedule_to_json(const struct lr_schedule *s)
{
    const struct kind_info *k = info_of(s->kind);
    if (!k)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON *c = cJSON_CreateObject();
    bool ok = o && cjson_add(o, "module", cJSON_CreateString("keras.optimizers.schedules")) &&
              cjson_add(o, "class_name", cJSON_CreateString(k->class_name)) && cjson_add(o, "config", c);
    if (!ok)
        cJSON_Delete(c);
    switch (s->kind) {
    case LR_SCHEDULE_PIECEWISE_CONSTANT_DECAY:
        ok = ok && put_list(c, "boundaries", s->boundaries, s->n_boundaries, true) &&
             put_list(c, "values", s->values, s->n_boundaries + 1, false);
        break;
    case LR_SCHEDULE_COSINE_DECAY_RESTARTS:
        ok = ok && cjson_add(c, "initial_learning_rate", py_number(s->initial_learning_rate, false)) &&
             cjson_add(c, "first_decay_steps", py_number(s->decay_steps, true)) &&
             cjson_add(c, "t_mul", py_number(s->t_mul, false)) &&
             cjson_add(c, "m_mul", py_number(s->m_mul, false)) &&
             cjson_add(c, "alpha", py_number(s->alpha, false));
        break;
    default:
        ok = ok && cjson_add(c, "initial_learning_rate", py_number(s->initial_learning_rate, false)) &&
             cjson_add(c, "decay_steps", py_number(s->decay_steps, true));
        if (s->kind == LR_SCHEDULE_EXPONENTIAL_DECAY || s->kind == LR_SCHEDULE_INVERSE_TIME_DECAY)
            ok = ok && cjson_add(c, "decay_rate", py_number(s->decay_rate, false)) &&
                 cjson_add(c, "staircase", cJSON_CreateBool(s->staircase));
        else if (s->kind == LR_SCHEDULE_POLYNOMIAL_DECAY)
            ok = ok && cjson_add(c, "end_learning_rate", py_number(s->end_learning_rate, false)) &&
                 cjson_add(c, "power", py_number(s->power, false)) &&
                 cjson_add(c, "cycle", cJSON_CreateBool(s->cycle));
        else if (s->kind == LR_SCHEDULE_COSINE_DECAY)
            ok = ok && cjson_add(c, "alpha", py_number(s->alpha, false)) &&
                 cjson_add(c, "warmup_target", s->has_warmup_target
                                             ? py_number(s->warmup_target, false)
                                             : cJSON_CreateNull()) &&
                 cjson_add(c, "warmup_steps", py_number(s->warmup_steps, true));
        break;
    }
    ok = ok && cjson_add(c, "name", s->name_null ? cJSON_CreateNull() : cJSON_CreateString(s->name)) &&
         cjson_add(o, "registered_name", cJSON_CreateNull());
    char *txt = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return txt;
}
