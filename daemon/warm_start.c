/* warm_start.c - a job's "initial_weights": the file the daemon copied into
 * the job's folder at submit, loaded by name (Keras load_weights(by_name=
 * True, skip_mismatch)) into the freshly seeded model before training, and
 * the submit-time check that the file fits the model. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5.h"
#include "job_runner_internal.h"
#include "job_spec.h"

static cJSON *shape_list(const struct h5_by_name_report *rep)
{
    cJSON *a = cJSON_CreateArray();
    bool ok = a != NULL;
    for (int i = 0; ok && i < rep->n_skipped; i++) {
        const struct h5_skipped *k = &rep->skipped[i];
        cJSON *o = cJSON_CreateObject();
        ok = cjson_append(a, o) && cjson_add(o, "layer", cJSON_CreateString(k->layer)) &&
             cjson_add(o, "weight", k->weight[0] ? cJSON_CreateString(k->weight)
                                                 : cJSON_CreateNull()) &&
             cjson_add(o, "model_shape", cJSON_CreateString(k->model_shape)) &&
             cjson_add(o, "file_shape", cJSON_CreateString(k->file_shape));
    }
    return cjson_checked(a, ok);
}

/* What the event and the error name as the source. */
static void source_name(const struct job_spec *s, char *out, size_t outsz)
{
    if (s->initial_weights.job[0])
        snprintf(out, outsz, "job %s, %.200s", s->initial_weights.job, s->initial_weights.file);
    else
        snprintf(out, outsz, "upload %s", s->initial_weights.upload);
}

int runner_check_initial_weights(const struct job_spec *spec, const char *path, const int shape[3],
                                 int classes, struct diag *d)
{
    struct model *m = NULL;
    int r = runner_create_model(&m, spec, shape, classes, 1, 1, d);
    if (r < 0)
        return r;
    r = h5_load_weights_by_name(m, path, spec->initial_weights.skip_mismatch, NULL, d);
    model_free(m);
    if (r < 0) {
        char src[256], msg[sizeof(d->message)];
        source_name(spec, src, sizeof(src));
        snprintf(msg, sizeof(msg), "%.300s (%.120s: %.80s)", d->message, src, d->field);
        diag_set(d, r == -ENOMEM ? r : -EINVAL, "/initial_weights", "%s", msg);
    }
    return r;
}

int runner_warm_start(struct runner *r, struct diag *d)
{
    const struct job_spec *s = r->spec;
    char path[PATH_MAX], src[256];
    if (!s->initial_weights.set)
        return 0;
    snprintf(path, sizeof(path), "%s/%s", r->job_dir, RUNNER_INITIAL_WEIGHTS_FILE);
    struct h5_by_name_report *rep = calloc(1, sizeof(*rep));
    if (!rep)
        return diag_set(d, -ENOMEM, "/initial_weights", "out of memory");
    int ret = h5_load_weights_by_name(r->m, path, s->initial_weights.skip_mismatch, rep, d);
    source_name(s, src, sizeof(src));
    if (ret < 0) {
        char msg[sizeof(d->message)];
        snprintf(msg, sizeof(msg), "%.300s (%.120s: %.80s)", d->message, src, d->field);
        diag_set(d, ret, "/initial_weights", "%s", msg);
        free(rep);
        return ret;
    }
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cjson_add(o, "source", cJSON_CreateString(src)) &&
              cjson_add(o, "layout", cJSON_CreateString(h5_layout_name(rep->layout))) &&
              cjson_add(o, "loaded", cJSON_CreateNumber(rep->n_loaded)) &&
              cjson_add(o, "skipped", shape_list(rep));
    cJSON *absent = ok ? cJSON_AddArrayToObject(o, "absent") : NULL;
    ok = ok && absent;
    for (int i = 0; ok && i < rep->n_absent; i++)
        ok = cjson_append(absent, cJSON_CreateString(rep->absent[i]));
    runner_emit(r, "initial_weights", cjson_checked(o, ok), true);
    free(rep);
    return 0;
}
