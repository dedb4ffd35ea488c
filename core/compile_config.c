/* compile_config.c - the training_config / compile_config JSON of a job's
 * compile() (see compile_config.h). */
#include "compile_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyfmt.h"

/* A JSON string of s (names are plain ASCII but may hold quotes). */
static void put_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void put_float(FILE *f, double x)
{
    char tmp[PYFMT_SIZE];
    pyfmt_double(tmp, x, PYFMT_NONFINITE_JSON);
    fputs(tmp, f);
}

/* The head of a serialized object up to its config's first key. */
static void put_object_head(FILE *f, const char *module, const char *cls, bool k3)
{
    if (k3)
        fprintf(f, "{\"module\": \"%s\", \"class_name\": \"%s\", \"config\": {", module, cls);
    else
        fprintf(f, "{\"class_name\": \"%s\", \"config\": {", cls);
}

static void put_object_tail(FILE *f, bool k3)
{
    fputs(k3 ? "}, \"registered_name\": null}" : "}}", f);
}

static void put_loss(FILE *f, const struct compile_spec *c, bool k3)
{
    if (!c->loss_object) {
        put_string(f, c->loss);
        return;
    }
    const struct loss_config *lc = &c->loss_config;
    put_object_head(f, "keras.losses", loss_kind_class_name(lc->kind), k3);
    /* Keras 3: Loss.get_config {"name", "reduction"}; tf.keras 2 the other way round */
    if (k3)
        fprintf(f, "\"name\": \"%s\", \"reduction\": \"sum_over_batch_size\"",
                loss_kind_name(lc->kind));
    else
        fprintf(f, "\"reduction\": \"auto\", \"name\": \"%s\"", loss_kind_name(lc->kind));
    switch (lc->kind) {
    case LOSS_KIND_CATEGORICAL_CROSSENTROPY:
    case LOSS_KIND_BINARY_CROSSENTROPY:
        fprintf(f, ", \"from_logits\": %s, \"label_smoothing\": ",
                lc->from_logits ? "true" : "false");
        put_float(f, lc->label_smoothing);
        fputs(", \"axis\": -1", f);
        break;
    case LOSS_KIND_SPARSE_CATEGORICAL_CROSSENTROPY:
        fprintf(f, ", \"from_logits\": %s, \"ignore_class\": null",
                lc->from_logits ? "true" : "false");
        break;
    default:
        break;
    }
    put_object_tail(f, k3);
}

static void put_metrics(FILE *f, const struct compile_spec *c, bool k3)
{
    fputc('[', f);
    for (int i = 0; i < c->n_metrics; i++) {
        const struct compile_metric *m = &c->metrics[i];
        if (i)
            fputs(", ", f);
        if (!m->object) {
            put_string(f, m->name);
            continue;
        }
        put_object_head(f, "keras.metrics", metric_kind_class_name(m->config.kind), k3);
        fputs("\"name\": ", f);
        put_string(f, m->name);
        fputs(", \"dtype\": \"float32\"", f);
        if (m->config.kind == METRIC_KIND_TOP_K_CATEGORICAL_ACCURACY)
            fprintf(f, ", \"k\": %d", m->config.k);
        if (m->config.kind == METRIC_KIND_BINARY_ACCURACY) {
            fputs(", \"threshold\": ", f);
            put_float(f, m->config.threshold);
        }
        put_object_tail(f, k3);
    }
    fputc(']', f);
}

char *compile_config_to_json(const struct compile_spec *c, const struct optimizer *opt,
                             enum keras_flavour flavour)
{
    const struct compile_spec defaults = {
        .loss = "categorical_crossentropy",
        .n_metrics = 1,
        .metrics = {{.name = "accuracy"}},
    };
    if (!c)
        c = &defaults;
    const bool k3 = flavour == KERAS_FLAVOUR_KERAS3;
    char *oj = opt ? optimizer_to_json_flavour(opt, flavour) : NULL;
    if (opt && !oj)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        free(oj);
        return NULL;
    }
    if (k3) {
        fprintf(f, "{\"optimizer\": %s, \"loss\": ", oj ? oj : "null");
        put_loss(f, c, true);
        fputs(", \"loss_weights\": null, \"metrics\": ", f);
        put_metrics(f, c, true);
        fputs(", \"weighted_metrics\": null, \"run_eagerly\": false, "
              "\"steps_per_execution\": 1, \"jit_compile\": false}", f);
    } else {
        fputs("{\"loss\": ", f);
        put_loss(f, c, false);
        fputs(", \"metrics\": ", f);
        put_metrics(f, c, false);
        fputs(", \"weighted_metrics\": null, \"loss_weights\": null", f);
        if (oj)
            fprintf(f, ", \"optimizer_config\": %s", oj);
        fputc('}', f);
    }
    free(oj);
    bool failed = ferror(f) != 0;
    if (fclose(f) != 0 || failed) {
        free(buf);
        return NULL;
    }
    return buf;
}
