/* backend_data.c - data set and model-use routes, daemon side (see
 * backend_data.h). */
#include "backend_data.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data.h"
#include "infer.h"
#include "job_spec.h"
#include "route.h"

int backend_data_upload_file(struct backend_data *b, char ret_path[4096], int *ret_fd,
                             struct diag *d)
{
    return datasets_upload_file(b->ds, ret_path, ret_fd, d);
}

int backend_data_put(struct backend_data *b, const char *name, const char *upload_path,
                     const struct import_options *o, char **ret_json, struct diag *d)
{
    return datasets_create(b->ds, name, upload_path, o, ret_json, d);
}

int backend_data_get(struct backend_data *b, const char *name, char **ret_json)
{
    return datasets_get(b->ds, name, ret_json);
}

int backend_data_delete(struct backend_data *b, const char *name, struct diag *d)
{
    return datasets_remove(b->ds, name, d);
}

int backend_data_list(struct backend_data *b, char **ret_json)
{
    return datasets_list(b->ds, ret_json);
}

/* The job's spec (from its resource) and data set name. */
static int job_spec_of(struct backend_data *b, const char *id, struct job_spec *ret,
                       struct diag *d)
{
    char *json = NULL;
    int r = b->jobs.get(b->jobs.ctx, id, &json);
    if (r < 0)
        return r == -ENOENT ? diag_set(d, -ENOENT, "", "no such job") : r;
    cJSON *job = cJSON_Parse(json);
    free(json);
    char *spec = job ? cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(job, "spec"))
                     : NULL;
    cJSON_Delete(job);
    if (!spec)
        return diag_set(d, -EIO, "", "the job has no readable spec");
    r = job_spec_parse(ret, spec, strlen(spec), d);
    free(spec);
    return r;
}

/* Open the checkpoint ("best", "latest" or a file name of the job's table);
 * *ret_fd and ret_name (its base name).  The file is read through
 * /proc/self/fd, so it stays the one open_file confined to the job. */
static int open_checkpoint(struct backend_data *b, const char *id, const char *checkpoint,
                           struct api_file *ret, struct diag *d)
{
    enum api_file_kind kind = API_FILE_PATH;
    char comps[API_PATH_MAX_COMPONENTS][256];
    int n = 0;
    if (strcmp(checkpoint, "best") == 0) {
        kind = API_FILE_BEST;
    } else if (strcmp(checkpoint, "latest") == 0) {
        kind = API_FILE_LATEST;
    } else {
        const char *p = checkpoint;
        while (*p) {
            size_t len = strcspn(p, "/");
            if (n == API_PATH_MAX_COMPONENTS || len == 0 || len > 255)
                return diag_set(d, -EINVAL, "/checkpoint", "not a checkpoint file name");
            memcpy(comps[n], p, len);
            comps[n][len] = '\0';
            if (!api_component_valid(comps[n]))
                return diag_set(d, -EINVAL, "/checkpoint", "not a checkpoint file name");
            n++;
            p += len + (p[len] == '/');
        }
    }
    if (!b->jobs.open_file)
        return -ENOSYS;
    int r = b->jobs.open_file(b->jobs.ctx, id, kind, (const char(*)[256])comps, n, -1, ret, d);
    if (r == -ENOENT && d)
        diag_set(d, -ENOENT, "/checkpoint", "the job has no checkpoint '%s' (yet)", checkpoint);
    return r;
}

int backend_data_evaluate(struct backend_data *b, const char *id, const char *checkpoint,
                          const char *dataset, char **ret_json, struct diag *d)
{
    struct job_spec spec;
    int r = job_spec_of(b, id, &spec, d);
    if (r < 0)
        return r;
    struct runner_dataset rd;
    struct dataset test = {0};
    struct api_file f = {.fd = -1};
    if (runner_resolve_dataset(&b->env, dataset, &rd) < 0) {
        r = diag_set(d, -EINVAL, "/dataset", "unknown data set '%s'", dataset);
        goto out;
    }
    r = open_checkpoint(b, id, checkpoint, &f, d);
    if (r < 0)
        goto out;
    r = runner_load_split(&test, &rd, "test", d);
    if (r < 0) {
        diag_prefix(d, "/dataset: ");
        r = -EINVAL;
        goto out;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", f.fd);
    double loss = 0, metrics[METRICS_MAX] = {0};
    r = infer_evaluate(&spec, path, &test, b->threads, &loss, metrics, d);
    if (r < 0) {
        r = r == -ENOMEM ? r : -EINVAL;
        goto out;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "job", id);
    cJSON_AddStringToObject(o, "checkpoint", f.name);
    cJSON_AddStringToObject(o, "dataset", dataset);
    cJSON_AddNumberToObject(o, "examples", test.n);
    cJSON_AddNumberToObject(o, "loss", loss);
    /* the job's metrics under their log keys, as Keras' evaluate(return_dict=True) */
    for (int i = 0; i < spec.n_metrics; i++)
        cJSON_AddNumberToObject(o, spec.metrics[i].key, metrics[i]);
    *ret_json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    r = *ret_json ? 0 : -ENOMEM;
out:
    if (f.fd >= 0)
        close(f.fd);
    dataset_free(&test);
    job_spec_free(&spec);
    return r;
}

int backend_data_predict(struct backend_data *b, const char *id, const char *checkpoint,
                         const struct api_predict_input *in, int n, char **ret_json,
                         struct diag *d)
{
    struct job_spec spec;
    int r = job_spec_of(b, id, &spec, d);
    if (r < 0)
        return r;
    int shape[3], classes = 0, examples = 0;
    enum pixels_type pixels = PIXELS_UINT8;
    char **names = NULL;
    float *x = NULL, *probs = NULL;
    struct api_file f = {.fd = -1};
    int target_width = 0;
    r = datasets_describe(b->ds, spec.dataset, shape, &classes, &target_width, &pixels, &names,
                          d);
    if (r < 0) {
        if (r == -ENOENT)
            r = diag_set(d, -EBUSY, "", "the job's data set '%s' no longer exists: its input "
                         "shape and class names are unknown", spec.dataset);
        goto out;
    }
    r = open_checkpoint(b, id, checkpoint, &f, d);
    if (r < 0)
        goto out;
    size_t in_size = (size_t)shape[0] * (size_t)shape[1] * (size_t)shape[2];
    if (n == 1 && in[0].npy) {
        r = infer_npy_input(in[0].data, in[0].len, shape, pixels, (int)b->max_predict_images,
                            &x, &examples, d);
    } else if (pixels == PIXELS_FLOAT32) {
        r = diag_set(d, -EINVAL, "body", "data set '%s' holds float32 examples, fed to the model "
                     "as they are; their scaling is the uploader's, so images cannot be "
                     "prepared as they were: send an .npy batch of float32 "
                     "(Content-Type: application/x-npy)", spec.dataset);
    } else if (n > (int)b->max_predict_images) {
        r = diag_set(d, -EINVAL, "body", "%d images (at most %u per request)", n,
                     b->max_predict_images);
    } else {
        x = malloc((size_t)n * in_size * sizeof(float));
        if (!x)
            r = diag_set(d, -ENOMEM, "body", "out of memory");
        for (int i = 0; r == 0 && i < n; i++) {
            char field[300];
            snprintf(field, sizeof(field), "%s", in[i].name[0] ? in[i].name : "body");
            if (n > 1 && !in[i].name[0])
                snprintf(field, sizeof(field), "part %d", i);
            r = infer_image_input(in[i].data, in[i].len, shape, x + (size_t)i * in_size, field, d);
        }
        examples = n;
    }
    if (r < 0)
        goto out;
    probs = malloc((size_t)examples * (size_t)classes * sizeof(float));
    if (!probs) {
        r = diag_set(d, -ENOMEM, "", "out of memory");
        goto out;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", f.fd);
    r = infer_predict(&spec, path, shape, classes, x, examples, b->threads, probs, d);
    if (r < 0) {
        r = r == -ENOMEM ? r : -EINVAL;
        goto out;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "job", id);
    cJSON_AddStringToObject(o, "checkpoint", f.name);
    if (target_width > 0) {
        /* float regression targets: the model's raw outputs, K per example */
        cJSON *out = cJSON_AddArrayToObject(o, "outputs");
        cJSON *inputs = cJSON_AddArrayToObject(o, "inputs");
        for (int i = 0; i < examples; i++) {
            cJSON_AddItemToArray(out, cJSON_CreateFloatArray(probs + (size_t)i * (size_t)classes,
                                                             classes));
            cJSON_AddItemToArray(inputs, cJSON_CreateString(n == examples ? in[i].name : ""));
        }
        goto render;
    }
    cJSON *cl = cJSON_AddArrayToObject(o, "classes");
    for (int k = 0; k < classes; k++)
        cJSON_AddItemToArray(cl, cJSON_CreateString(names[k]));
    cJSON *pr = cJSON_AddArrayToObject(o, "probabilities");
    cJSON *top = cJSON_AddArrayToObject(o, "top");
    cJSON *inputs = cJSON_AddArrayToObject(o, "inputs");
    for (int i = 0; i < examples; i++) {
        const float *p = probs + (size_t)i * (size_t)classes;
        cJSON *row = cJSON_CreateArray();
        int best = 0;
        for (int k = 0; k < classes; k++) {
            cJSON_AddItemToArray(row, cJSON_CreateNumber(p[k]));
            if (p[k] > p[best])
                best = k;
        }
        cJSON_AddItemToArray(pr, row);
        cJSON_AddItemToArray(top, cJSON_CreateString(names[best]));
        cJSON_AddItemToArray(inputs, cJSON_CreateString(n == examples ? in[i].name : ""));
    }
render:
    *ret_json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    r = *ret_json ? 0 : -ENOMEM;
out:
    if (f.fd >= 0)
        close(f.fd);
    free(x);
    free(probs);
    datasets_free_names(names, classes);
    job_spec_free(&spec);
    return r;
}
