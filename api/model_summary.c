/* model_summary.c - Keras model.summary() of a model spec as JSON, and the
 * catalog of built-in models with their parameter counts (model_summary.h). */
#include "model_summary.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cjson_add.h"
#include "model_spec.h"

static const int default_shape[3] = {32, 32, 3};

static char *print_and_delete(cJSON *o)
{
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return text;
}

/* [d...], or with batch [null, d...]: Keras' shape of a batch of tensors of
 * shape d (n dims). */
static cJSON *shape_array(const int *dims, int n, bool batch)
{
    cJSON *a = cJSON_CreateArray();
    bool ok = !batch || cjson_append(a, cJSON_CreateNull());
    for (int i = 0; i < n; i++)
        ok &= cjson_append(a, cJSON_CreateNumber(dims[i]));
    return cjson_checked(a, ok);
}

static cJSON *batch_shape(const int *dims, int n)
{
    return shape_array(dims, n, true);
}

static bool add_counts(cJSON *o, size_t total, size_t trainable)
{
    bool ok = cjson_add(o, "total_params", cJSON_CreateNumber((double)total));
    ok &= cjson_add(o, "trainable_params", cJSON_CreateNumber((double)trainable));
    ok &= cjson_add(o, "non_trainable_params", cJSON_CreateNumber((double)(total - trainable)));
    return ok;
}

int model_catalog_json(char **ret_json)
{
    static const int shapes[2][3] = {{32, 32, 3}, {28, 28, 1}};
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_CreateArray();
    bool ok = cjson_add(root, "models", arr);
    for (const char *const *n = model_builtin_names(); ok && *n; n++) {
        cJSON *o = cJSON_CreateObject(), *variants = cJSON_CreateArray();
        ok &= cjson_append(arr, o);
        ok &= ok && cjson_add(o, "name", cJSON_CreateString(*n));
        ok &= ok && cjson_add(o, "kind", cJSON_CreateString("builtin"));
        ok &= ok && cjson_add(o, "classes", cJSON_CreateNumber(MODEL_SUMMARY_DEFAULT_CLASSES));
        ok &= ok && cjson_add(o, "variants", variants);
        for (int k = 0; ok && k < 2; k++) {
            struct model_spec s;
            size_t total = 0, trainable = 0;
            if (model_spec_builtin(&s, *n, shapes[k], MODEL_SUMMARY_DEFAULT_CLASSES, NULL) < 0)
                continue; /* a built-in too deep for this input: not listed for it */
            int err = model_spec_count_params(&s, &total, &trainable, NULL);
            model_spec_free(&s);
            if (err < 0)
                continue;
            cJSON *v = cJSON_CreateObject();
            ok &= cjson_append(variants, v);
            ok &= ok && cjson_add(v, "input_shape", shape_array(shapes[k], 3, false));
            ok &= ok && add_counts(v, total, trainable);
        }
    }
    cJSON *custom = cJSON_CreateObject();
    ok &= ok && cjson_append(arr, custom);
    ok &= ok && cjson_add(custom, "name", cJSON_CreateString("custom"));
    ok &= ok && cjson_add(custom, "kind", cJSON_CreateString("keras_json"));
    char *out = print_and_delete(cjson_checked(root, ok));
    if (!out)
        return -ENOMEM;
    *ret_json = out;
    return 0;
}

/* [H, W, C] with sizes in [1, MODEL_SPEC_DIM_MAX] into ret. */
static int parse_shape(const cJSON *v, int ret[3], struct diag *d)
{
    bool ok = cJSON_IsArray(v) && cJSON_GetArraySize(v) == 3;
    int i = 0;
    for (const cJSON *e = ok ? v->child : NULL; ok && e; e = e->next, i++) {
        ok = cJSON_IsNumber(e) && e->valuedouble >= 1 && e->valuedouble <= MODEL_SPEC_DIM_MAX &&
             e->valuedouble == (double)(int)e->valuedouble;
        if (ok)
            ret[i] = (int)e->valuedouble;
    }
    if (!ok)
        return diag_set(d, -EINVAL, "/input_shape",
                        "must be [H, W, C] with sizes in [1, %d] (images are NHWC)",
                        MODEL_SPEC_DIM_MAX);
    return 0;
}

/* The spec the request names (model_summary.h). */
static int load_spec(const cJSON *root, struct model_spec *ret, struct diag *d)
{
    for (const cJSON *it = root->child; it; it = it->next)
        if (strcmp(it->string, "model") != 0 && strcmp(it->string, "input_shape") != 0 &&
            strcmp(it->string, "classes") != 0) {
            char field[80];
            snprintf(field, sizeof(field), "/%.64s", it->string);
            return diag_set(d, -EINVAL, field, "unknown field (model, input_shape, classes)");
        }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *shape_v = cJSON_GetObjectItemCaseSensitive(root, "input_shape");
    const cJSON *classes_v = cJSON_GetObjectItemCaseSensitive(root, "classes");
    int shape[3];
    bool have_shape = shape_v && !cJSON_IsNull(shape_v);
    if (have_shape) {
        int err = parse_shape(shape_v, shape, d);
        if (err)
            return err;
    }
    bool builtin = cJSON_IsString(model) && model->valuestring[0] != '{';
    if (classes_v && !cJSON_IsNull(classes_v) && !builtin)
        return diag_set(d, -EINVAL, "/classes", "only a built-in model takes classes (a config "
                        "has its own output layer)");
    if (builtin) {
        int classes = MODEL_SUMMARY_DEFAULT_CLASSES;
        if (classes_v && !cJSON_IsNull(classes_v)) {
            if (!cJSON_IsNumber(classes_v) || classes_v->valuedouble < 2 ||
                classes_v->valuedouble > MODEL_SPEC_WIDTH_MAX ||
                classes_v->valuedouble != (double)(int)classes_v->valuedouble)
                return diag_set(d, -EINVAL, "/classes", "must be an integer in [2, %d]",
                                MODEL_SPEC_WIDTH_MAX);
            classes = (int)classes_v->valuedouble;
        }
        return model_spec_builtin(ret, model->valuestring, have_shape ? shape : default_shape,
                                  classes, d);
    }
    char *printed = NULL;
    const char *text;
    if (cJSON_IsString(model)) {
        text = model->valuestring;
    } else if (cJSON_IsObject(model)) {
        if (!(printed = cJSON_PrintUnformatted(model)))
            return diag_set(d, -ENOMEM, "/model", "out of memory");
        text = printed;
    } else {
        return diag_set(d, -EINVAL, "/model", "must be a built-in model name or a Keras "
                        "Sequential or Functional config (model.to_json())");
    }
    int err = model_spec_parse_json(ret, text, strlen(text), have_shape ? shape : NULL, d);
    cJSON_free(printed);
    if (err < 0) {
        diag_prefix(d, "/model");
        if (d && !d->field[0])
            snprintf(d->field, sizeof(d->field), "/model");
    }
    return err;
}

/* One layer's row: name, class, output shape, counts, inbound layers. */
static cJSON *layer_row(const struct model_spec *s, int i, const int *shape, bool flat,
                        size_t params, size_t trainable)
{
    const struct layer_config *l = &s->layers[i];
    cJSON *o = cJSON_CreateObject();
    bool ok = cjson_add(o, "name", cJSON_CreateString(l->name));
    ok &= cjson_add(o, "class_name", cJSON_CreateString(layer_kind_class_name(l->kind)));
    ok &= cjson_add(o, "output_shape", flat ? batch_shape(shape + 2, 1) : batch_shape(shape, 3));
    ok &= cjson_add(o, "params", cJSON_CreateNumber((double)params));
    ok &= cjson_add(o, "trainable_params", cJSON_CreateNumber((double)trainable));
    ok &= cjson_add(o, "trainable", cJSON_CreateBool(!l->frozen));
    if (s->functional) {
        cJSON *in = cJSON_CreateArray();
        ok &= cjson_add(o, "inbound", in);
        for (int k = 0; ok && k < model_spec_n_inputs(s, i); k++) {
            int q = model_spec_input(s, i, k);
            if (q >= 0)
                ok &= cjson_append(in, cJSON_CreateString(s->layers[q].name));
        }
    }
    return cjson_checked(o, ok);
}

static int summary_of(const struct model_spec *s, char **ret_json, struct diag *d)
{
    int n = s->n_layers;
    int(*shape)[3] = calloc((size_t)n, sizeof(*shape));
    bool *flat = calloc((size_t)n, sizeof(bool));
    size_t *params = calloc((size_t)n, sizeof(size_t)), *trainable = calloc((size_t)n, sizeof(size_t));
    size_t total = 0, total_trainable = 0;
    int err = shape && flat && params && trainable ? 0
              : diag_set(d, -ENOMEM, "", "out of memory");
    if (!err)
        err = model_spec_infer_shapes_flat(s, NULL, shape, flat, d);
    if (!err)
        err = model_spec_layer_params(s, params, trainable, &total, &total_trainable, d);
    if (err == -EOVERFLOW) /* a request for a model too large: the client's error */
        err = -EINVAL;
    if (!err) {
        cJSON *root = cJSON_CreateObject(), *layers = cJSON_CreateArray();
        bool ok = cjson_add(root, "name", cJSON_CreateString(s->name));
        ok &= cjson_add(root, "class_name",
                        cJSON_CreateString(s->functional ? "Functional" : "Sequential"));
        ok &= cjson_add(root, "input_shape", batch_shape(s->input_shape, 3));
        ok &= cjson_add(root, "layers", layers);
        for (int i = 0; ok && i < n; i++)
            ok &= cjson_append(layers, layer_row(s, i, shape[i], flat[i], params[i], trainable[i]));
        ok &= ok && add_counts(root, total, total_trainable);
        char *out = print_and_delete(cjson_checked(root, ok));
        if (out)
            *ret_json = out;
        else
            err = diag_set(d, -ENOMEM, "", "out of memory");
    }
    free(shape);
    free(flat);
    free(params);
    free(trainable);
    return err;
}

int model_summary_json(const char *body, size_t len, char **ret_json, struct diag *d)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return diag_set(d, -EINVAL, "", "the body must be a JSON object {\"model\": ..., "
                        "\"input_shape\": [H, W, C]}");
    }
    struct model_spec s;
    memset(&s, 0, sizeof(s));
    int err = load_spec(root, &s, d);
    cJSON_Delete(root);
    if (err < 0)
        return err;
    err = summary_of(&s, ret_json, d);
    model_spec_free(&s);
    return err;
}
