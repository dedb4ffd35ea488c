/* infer.c - evaluate and predict with a checkpoint (see infer.h). */
#include "infer.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "fit.h"
#include "h5.h"
#include "image.h"
#include "model.h"
#include "npy.h"
#include "job_runner.h"

#define INFER_BATCH 128

static int load(struct model **ret, const struct job_spec *spec, const char *weights_path,
                const int shape[3], int classes, int threads, struct diag *d)
{
    struct model *m = NULL;
    int r = runner_create_model(&m, spec, shape, classes, INFER_BATCH, threads, d);
    if (r < 0)
        return r;
    if (m->classes != classes) {
        model_free(m);
        return diag_set(d, -EINVAL, "dataset", "the model ends in %d classes, the data set has %d",
                        m->classes, classes);
    }
    /* evaluate reports the job's loss and metric */
    r = runner_set_head(m, spec, d);
    if (r == 0)
        r = h5_load_weights(m, weights_path, d);
    if (r < 0) {
        model_free(m);
        return r;
    }
    *ret = m;
    return 0;
}

int infer_evaluate(const struct job_spec *spec, const char *weights_path,
                   const struct dataset *test, int threads, double *ret_loss,
                   double *ret_metrics, struct diag *d)
{
    if (test->n <= 0)
        return diag_set(d, -EINVAL, "/dataset", "the data set has no test split");
    int shape[3] = {test->h, test->w, test->c};
    struct model *m = NULL;
    int outputs = test->target_width > 0 ? test->target_width : test->classes;
    int r = runner_check_targets(spec, test->target_width, d);
    if (r == 0)
        r = load(&m, spec, weights_path, shape, outputs, threads, d);
    if (r == 0)
        r = fit_evaluate(m, test, INFER_BATCH, 0, ret_loss, ret_metrics, d);
    model_free(m);
    return r;
}

int infer_image_input(const void *data, size_t len, const int shape[3], float *x,
                      const char *field, struct diag *d)
{
    uint8_t *px = NULL, *out = NULL;
    int h = 0, w = 0;
    int r = image_decode(data, len, shape[2], &px, &h, &w, field, d);
    if (r < 0)
        return r;
    size_t count = (size_t)shape[0] * (size_t)shape[1] * (size_t)shape[2];
    out = malloc(count);
    if (!out) {
        free(px);
        return diag_set(d, -ENOMEM, field, "out of memory");
    }
    image_resize_bilinear(out, shape[0], shape[1], px, h, w, shape[2]);
    pixels_to_float(x, out, PIXELS_UINT8, count);
    free(px);
    free(out);
    return 0;
}

int infer_npy_input(const void *data, size_t len, const int shape[3], enum pixels_type pixels,
                    int max_n, float **ret_x, int *ret_n, struct diag *d)
{
    const unsigned char *p = data;
    uint64_t total;
    struct npy_header h;
    int r = npy_preamble(p, len, &total, "body", d);
    if (r < 0)
        return r;
    if (total > len)
        return diag_set(d, -EINVAL, "body", "truncated .npy header");
    r = npy_parse_header(p, (size_t)total, &h, "body", d);
    if (r < 0)
        return r;
    bool u8 = h.kind == 'u' && h.itemsize == 1, f32 = h.kind == 'f' && h.itemsize == 4;
    if (!u8 && !f32)
        return diag_set(d, -EINVAL, "body", "images must be uint8 or float32");
    if (u8 && pixels == PIXELS_FLOAT32)
        return diag_set(d, -EINVAL, "body", "the data set's examples are float32, fed to the "
                        "model as they are: send float32 values prepared as they were");
    if (h.fortran_order)
        return diag_set(d, -EINVAL, "body", "fortran_order True is not supported");
    /* (h, w, c) alone is one example; a leading axis is the batch */
    uint64_t n;
    int first;
    if (h.ndim == 3 && (int)h.shape[2] == shape[2] && shape[2] > 1 &&
        (int)h.shape[0] == shape[0] && (int)h.shape[1] == shape[1]) {
        n = 1;
        first = 0;
    } else {
        n = h.ndim ? h.shape[0] : 0;
        first = 1;
    }
    int rest = h.ndim - first;
    bool ok = (rest == 3 && (int)h.shape[first] == shape[0] &&
               (int)h.shape[first + 1] == shape[1] && (int)h.shape[first + 2] == shape[2]) ||
              (rest == 2 && shape[2] == 1 && (int)h.shape[first] == shape[0] &&
               (int)h.shape[first + 1] == shape[1]);
    if (!ok)
        return diag_set(d, -EINVAL, "body", "the batch's shape does not fit the model's input "
                        "(n, %d, %d, %d)", shape[0], shape[1], shape[2]);
    if (n < 1 || n > (uint64_t)max_n)
        return diag_set(d, -EINVAL, "body", "%llu examples (1 to %d per request)",
                        (unsigned long long)n, max_n);
    if (len - total != h.data_bytes)
        return diag_set(d, -EINVAL, "body", "the .npy body has %llu data bytes, its header "
                        "describes %llu", (unsigned long long)(len - total),
                        (unsigned long long)h.data_bytes);
    size_t count = (size_t)n * (size_t)shape[0] * (size_t)shape[1] * (size_t)shape[2];
    float *x = malloc(count * sizeof(float));
    if (!x)
        return diag_set(d, -ENOMEM, "body", "out of memory");
    pixels_to_float(x, p + total, u8 ? PIXELS_UINT8 : PIXELS_FLOAT32, count);
    *ret_x = x;
    *ret_n = (int)n;
    return 0;
}

int infer_predict(const struct job_spec *spec, const char *weights_path, const int shape[3],
                  int classes, const float *x, int n, int threads, float *probs, struct diag *d)
{
    struct model *m = NULL;
    int r = load(&m, spec, weights_path, shape, classes, threads, d);
    if (r < 0)
        return r;
    size_t in = (size_t)shape[0] * (size_t)shape[1] * (size_t)shape[2];
    for (int b = 0; b < n && r == 0; b += INFER_BATCH) {
        int nb = n - b < INFER_BATCH ? n - b : INFER_BATCH;
        r = model_predict_f32(m, x + (size_t)b * in, nb, probs + (size_t)b * (size_t)classes);
        if (r < 0)
            diag_set(d, r, "", "prediction failed");
    }
    model_free(m);
    return r;
}
