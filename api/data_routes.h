/* data_routes.h - the request side of the data set and model-use routes:
 *
 *   PUT /v1/datasets/{name}    import options from the query (image_size=HxW,
 *                              color_mode, validation_split, seed) and the
 *                              format from Content-Type, checked before the
 *                              body is read; the body streamed into an upload
 *                              file piece by piece (never held in memory)
 *   POST /v1/jobs/{id}/evaluate  {"checkpoint": ..., "dataset": ...}
 *   POST /v1/jobs/{id}/predict   image/png, image/jpeg, multipart/form-data
 *                              of images, or application/x-npy
 *
 * The slow part (the import, the evaluation, the prediction) runs as a task
 * (tasks.h) calling the backend; the server answers from the struct once
 * done is set.  Errors fill d (field + message) and return a negative errno:
 * -EINVAL 400, -EMEDIUMTYPE 415, -EFBIG 413.
 *
 * Ownership: each struct belongs to its request; *_free releases what it
 * holds (the upload file is removed unless the backend took it). */
#ifndef TRAIND_API_DATA_ROUTES_H
#define TRAIND_API_DATA_ROUTES_H

#include <limits.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "diag.h"
#include "import.h"
#include "multipart.h"

/* The outcome of a task, read by the server once done is set. */
struct api_task_result {
    atomic_bool done;
    int err;         /* 0 or a negative errno from the backend */
    char *json;      /* the answer on success (malloc'ed) */
    struct diag d;
};

struct api_upload {
    const struct api_backend *be;
    char name[64];
    bool weights;            /* PUT /v1/weights/{name}, not a data set */
    struct import_options o;
    int fd;                  /* -1 until the first piece */
    char path[4096];
    uint64_t bytes;
    struct api_task_result res;
};

/* Options and format, before any body byte.  name is the checked route
 * name. */
int api_upload_prepare(struct api_upload *u, const struct api_backend *be,
                       struct MHD_Connection *c, const char *name, struct diag *d);
/* The same for PUT /v1/weights/{name}: no query options, any Content-Type
 * (the file's bytes say what it is). */
int api_upload_prepare_weights(struct api_upload *u, const struct api_backend *be,
                               struct MHD_Connection *c, const char *name, struct diag *d);
/* Append a piece of the body; -EFBIG once more than max bytes came. */
int api_upload_write(struct api_upload *u, const char *data, size_t n, uint64_t max,
                     struct diag *d);
/* (task) close the file and import it through the backend. */
void api_upload_task(void *arg);
void api_upload_free(struct api_upload *u);

struct api_use {
    const struct api_backend *be;
    char id[17];
    bool predict;
    char checkpoint[256];
    char dataset[64];
    int n_inputs;
    struct api_predict_input inputs[MULTIPART_MAX_PARTS];
    struct api_task_result res;
};

/* The evaluate body (JSON). */
int api_evaluate_prepare(struct api_use *u, const struct api_backend *be, const char *id,
                         const char *body, size_t len, struct diag *d);
/* The predict body by its Content-Type (the inputs point into body, which
 * must outlive u); ?checkpoint= from the query (default "best"). */
int api_predict_prepare(struct api_use *u, const struct api_backend *be,
                        struct MHD_Connection *c, const char *id, const char *body, size_t len,
                        struct diag *d);
/* (task) the backend's evaluate or predict. */
void api_use_task(void *arg);
void api_use_free(struct api_use *u);

#endif
