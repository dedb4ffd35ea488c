/* infer.h - using a trained model: evaluate a checkpoint on a data set's
 * test split and predict class probabilities for images or an .npy batch.
 *
 * The model is built from the job's spec for the data's input shape and
 * classes (runner_create_model), its weights read from the checkpoint file
 * (h5_load_weights: any of the Keras layouts traind writes), and run in
 * inference mode on its own compute threads: the training worker is never
 * touched.
 *
 * Inputs are preprocessed as the training data was (pixels.h): uint8
 * pixels scaled by 1/255; images decoded and resized as at upload (image.h)
 * to the data set's (h, w, c).  An .npy batch is (n, h, w), (n, h, w, c) or
 * (h, w, c) of float32 (taken as they are, for either kind of data set) or,
 * for a uint8 data set, uint8 (scaled by 1/255).  A float32 data set's
 * scaling is the uploader's, so images and uint8 batches are refused for
 * it.
 *
 * Ownership: ret_ buffers are malloc'ed, owned by the caller. */
#ifndef TRAIND_INFER_H
#define TRAIND_INFER_H

#include <stddef.h>

#include "diag.h"
#include "job_spec.h"
#include "pixels.h"

struct dataset;
/* Keras model.evaluate on test (a loaded or mapped split): mean loss and
 * each of the job's metrics (ret_metrics, spec->n_metrics values) over all
 * of it. */
int infer_evaluate(const struct job_spec *spec, const char *weights_path,
                   const struct dataset *test, int threads, double *ret_loss,
                   double *ret_metrics, struct diag *d);

/* One PNG or JPEG into x (shape[0] * shape[1] * shape[2] floats). */
int infer_image_input(const void *data, size_t len, const int shape[3], float *x,
                      const char *field, struct diag *d);
/* An .npy batch into *ret_x (n, shape) floats for a data set of pixels; at
 * most max_n examples. */
int infer_npy_input(const void *data, size_t len, const int shape[3], enum pixels_type pixels,
                    int max_n, float **ret_x, int *ret_n, struct diag *d);

/* probs (n, classes) for x (n, shape). */
int infer_predict(const struct job_spec *spec, const char *weights_path, const int shape[3],
                  int classes, const float *x, int n, int threads, float *probs, struct diag *d);

#endif
