/* h5_writer.c - produces weight files from a real short training run for
 * tests/integration/test_h5_layouts.py: trains a built-in model a few steps
 * on Fashion-MNIST (t10k split; random images when the data set is absent)
 * and writes, into OUTDIR:
 *   weights.h5 (tf.keras weights-only), model.hdf5 (tf.keras full model),
 *   model.weights.h5 (Keras 3), resume.h5 (traind resume), model.keras
 *   (Keras 3 archive),
 *   params.bin   every weight, layer order, float32 little-endian,
 *   slots.bin    every optimizer slot of every trainable weight (slot-major),
 *   reload.bin   per file above, the predictions (BATCH, classes) of a fresh
 *                model loaded from it, then those of the trained model,
 *   inputs.bin   the float32 inputs (BATCH, H, W, C) of those predictions,
 *   meta.json    what the files must contain: layers, weights, optimizer.
 * Usage: h5_writer OUTDIR [model=minivggnet] [optimizer=sgd|adam] [steps=3] */
#include "data.h"
#include "fsutil.h"
#include "h5.h"
#include "model.h"
#include "optimizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 8

static int fail(const char *what, const struct diag *d)
{
    fprintf(stderr, "h5_writer: %s: %s %s\n", what, d->field, d->message);
    return 1;
}

static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
    struct diag d = {{0}, {0}};
    if (fsutil_write_file_atomic(dir, name, data, len, NULL, NULL, &d) < 0)
        return fail(name, &d);
    return 0;
}

/* meta.json: the layers with their weights and the optimizer. */
static char *meta_json(const struct model *m, const struct optimizer *opt, int epoch,
                       const char *state, bool real_data)
{
    size_t cap = 1 << 16, len = 0;
    char *s = malloc(cap);
#define APPEND(...)                                                                   \
    do {                                                                              \
        int _n = snprintf(s + len, cap - len, __VA_ARGS__);                           \
        if (_n < 0 || (size_t)_n >= cap - len) {                                      \
            free(s);                                                                  \
            return NULL;                                                              \
        }                                                                             \
        len += (size_t)_n;                                                            \
    } while (0)
    if (!s)
        return NULL;
    APPEND("{\"keras_version\": \"%s\", \"real_data\": %s, \"epoch\": %d, \"state_json\": \"",
           H5_KERAS_VERSION, real_data ? "true" : "false", epoch);
    for (const char *p = state; *p; p++)
        APPEND(*p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
    APPEND("\", \"batch\": %d, \"input_shape\": [%d, %d, %d], \"classes\": %d,\n \"layers\": [",
           BATCH, m->input_shape[0], m->input_shape[1], m->input_shape[2], m->classes);
    size_t off = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const struct layer *L = &m->layers[i];
        APPEND("%s\n  {\"name\": \"%s\", \"class_name\": \"%s\", \"weights\": [", i ? "," : "",
               L->cfg.name, layer_kind_class_name(L->cfg.kind));
        for (int j = 0; j < L->n_weights; j++) {
            const struct weight *w = &L->weights[j];
            APPEND("%s{\"name\": \"%s\", \"trainable\": %s, \"offset\": %zu, \"shape\": [",
                   j ? ", " : "", w->name, w->trainable ? "true" : "false", off);
            for (int k = 0; k < w->ndim; k++)
                APPEND("%s%d", k ? ", " : "", w->shape[k]);
            APPEND("]}");
            off += w->size;
        }
        APPEND("]}");
    }
    APPEND("],\n \"optimizer\": {\"class_name\": \"%s\", \"iterations\": %lld, "
           "\"learning_rate\": %.17g, \"slots\": [",
           optimizer_class_name(opt), (long long)opt->iterations, opt->cfg.learning_rate);
    for (int s2 = 0; s2 < opt->n_slots; s2++)
        APPEND("%s\"%s\"", s2 ? ", " : "", optimizer_slot_name(opt, s2));
    APPEND("]}}\n");
#undef APPEND
    return s;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: h5_writer OUTDIR [model] [sgd|adam] [steps]\n");
        return 2;
    }
    const char *out = argv[1];
    const char *model_name = argc > 2 ? argv[2] : "minivggnet";
    bool adam = argc > 3 && strcmp(argv[3], "adam") == 0;
    int steps = argc > 4 ? atoi(argv[4]) : 3;
    struct diag d = {{0}, {0}};
    struct dataset ds = {0};
    bool real = dataset_load_idx_dir(&ds, FASHION_DIR, "test", &d) == 0;
    const int shape[3] = {28, 28, 1};
    struct model_spec spec;
    struct model *m = NULL, *fresh = NULL;
    struct optimizer *opt = NULL;
    if (model_spec_builtin(&spec, model_name, shape, 10, &d) < 0)
        return fail("model_spec_builtin", &d);
    if (model_create(&m, &spec, BATCH, 1, &d) < 0 || model_create(&fresh, &spec, BATCH, 1, &d) < 0)
        return fail("model_create", &d);
    model_init_weights(m, 1);
    struct optimizer_config cfg;
    optimizer_config_default(&cfg, adam ? OPTIMIZER_KIND_ADAM : OPTIMIZER_KIND_SGD);
    if (!adam) {
        cfg.momentum = 0.9;
        cfg.nesterov = true;
        cfg.decay = 0.00025;
    }
    if (optimizer_create(&opt, &cfg, m, &d) < 0)
        return fail("optimizer_create", &d);

    size_t px = 28 * 28;
    uint8_t *images = malloc(BATCH * px), labels[BATCH];
    uint64_t seed = 12345;
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < BATCH; i++) {
            int idx = s * BATCH + i;
            if (real && idx < ds.n) {
                memcpy(images + (size_t)i * px, ds.images + (size_t)idx * px, px);
                labels[i] = ds.labels[idx];
            } else {
                for (size_t k = 0; k < px; k++) {
                    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                    images[(size_t)i * px + k] = (uint8_t)(seed >> 56);
                }
                labels[i] = (uint8_t)(seed % 10);
            }
        }
        double loss;
        double correct;
        if (model_train_step(m, images, PIXELS_UINT8, labels, BATCH, 7, s, &loss,
                             &correct) < 0) {
            fprintf(stderr, "h5_writer: model_train_step failed\n");
            return 1;
        }
        optimizer_step(opt, m);
    }

    const char *state = "{\"policies\": [{\"best\": 0.5}], \"rng\": \"x\"}";
    struct {
        const char *name;
        int layout; /* -1 = resume */
    } files[] = {
        {"weights.h5", H5_LAYOUT_TF_WEIGHTS},
        {"model.hdf5", H5_LAYOUT_TF_MODEL},
        {"model.weights.h5", H5_LAYOUT_KERAS3_WEIGHTS},
        {"resume.h5", -1},
        {"model.keras", H5_LAYOUT_KERAS_ARCHIVE},
    };
    enum { N_FILES = sizeof(files) / sizeof(files[0]) };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        int r = files[i].layout < 0
                    ? h5_save_resume(out, files[i].name, m, opt, steps, state, NULL, &d)
                    : h5_save(out, files[i].name, (enum h5_layout)files[i].layout, m, opt, NULL,
                              NULL, NULL, NULL, &d);
        if (r < 0)
            return fail(files[i].name, &d);
    }

    /* Raw dumps. */
    float *params = malloc(m->n_params * sizeof(float));
    float *slots = malloc(m->n_params * sizeof(float) * (size_t)(opt->n_slots + 1));
    size_t np = 0, ns = 0;
    for (int i = 0; i < m->n_layers; i++)
        for (int j = 0; j < m->layers[i].n_weights; j++) {
            const struct weight *w = &m->layers[i].weights[j];
            memcpy(params + np, m->params + w->offset, w->size * sizeof(float));
            np += w->size;
        }
    for (int s = 0; s < opt->n_slots; s++)
        for (int i = 0; i < m->n_layers; i++)
            for (int j = 0; j < m->layers[i].n_weights; j++) {
                const struct weight *w = &m->layers[i].weights[j];
                if (!w->trainable)
                    continue;
                memcpy(slots + ns, opt->slots[s] + w->offset, w->size * sizeof(float));
                ns += w->size;
            }

    /* Predictions of models loaded back from each file, then the original's. */
    float *x = malloc(BATCH * px * sizeof(float));
    for (size_t k = 0; k < BATCH * px; k++)
        x[k] = real ? (float)ds.images[(size_t)(steps * BATCH) * px + k] / 255.0f
                    : (float)(k % 251) / 251.0f;
    size_t nprob = (size_t)BATCH * m->classes;
    float *probs = malloc(nprob * sizeof(float) * (N_FILES + 1));
    for (int i = 0; i < N_FILES; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", out, files[i].name);
        model_init_weights(fresh, 99);
        int r = files[i].layout < 0 ? 0 : h5_load_weights(fresh, path, &d);
        if (files[i].layout < 0) {
            struct optimizer *o2 = NULL;
            int epoch;
            char *st = NULL;
            r = optimizer_create(&o2, &cfg, fresh, &d);
            if (r == 0)
                r = h5_load_resume(fresh, o2, path, &epoch, &st, &d);
            free(st);
            optimizer_free(o2);
        }
        if (r < 0)
            return fail(path, &d);
        if (model_predict_f32(fresh, x, BATCH, probs + (size_t)i * nprob) < 0)
            return fail("predict", &d);
    }
    if (model_predict_f32(m, x, BATCH, probs + N_FILES * nprob) < 0)
        return fail("predict", &d);

    char *meta = meta_json(m, opt, steps, state, real);
    int rc = !meta || write_file(out, "params.bin", params, np * sizeof(float)) ||
             write_file(out, "slots.bin", slots, ns * sizeof(float)) ||
             write_file(out, "reload.bin", probs, (N_FILES + 1) * nprob * sizeof(float)) ||
             write_file(out, "inputs.bin", x, BATCH * px * sizeof(float)) ||
             write_file(out, "meta.json", meta, strlen(meta));
    free(meta);
    free(x);
    free(probs);
    free(params);
    free(slots);
    free(images);
    optimizer_free(opt);
    model_free(m);
    model_free(fresh);
    model_spec_free(&spec);
    dataset_free(&ds);
    return rc;
}
