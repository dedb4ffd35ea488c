/* backend_data.h - the daemon's side of the data set and model-use routes
 * (api/backend.h: dataset_upload_file, dataset_put, dataset_get,
 * dataset_delete, datasets, evaluate, predict).
 *
 * It reaches jobs only through the job functions of the backend table (get:
 * the job's spec; open_file: its checkpoint files by name, confined to the
 * job's folder), and data sets through the registry (datasets.h).
 * evaluate and predict build an inference model on their own compute
 * threads (infer.h); they never touch a training worker. */
#ifndef TRAIND_BACKEND_DATA_H
#define TRAIND_BACKEND_DATA_H

#include "backend.h"
#include "datasets.h"
#include "job_runner.h"

struct backend_data {
    struct datasets *ds;
    struct api_backend jobs;        /* get and open_file are used */
    struct runner_env env;          /* configured sets + ds's resolver */
    int threads;                    /* compute threads of evaluate / predict */
    unsigned max_predict_images;
};

int backend_data_upload_file(struct backend_data *b, char ret_path[4096], int *ret_fd,
                             struct diag *d);
int backend_data_put(struct backend_data *b, const char *name, const char *upload_path,
                     const struct import_options *o, char **ret_json, struct diag *d);
int backend_data_get(struct backend_data *b, const char *name, char **ret_json);
int backend_data_delete(struct backend_data *b, const char *name, struct diag *d);
int backend_data_list(struct backend_data *b, char **ret_json);
int backend_data_evaluate(struct backend_data *b, const char *id, const char *checkpoint,
                          const char *dataset, char **ret_json, struct diag *d);
int backend_data_predict(struct backend_data *b, const char *id, const char *checkpoint,
                         const struct api_predict_input *in, int n, char **ret_json,
                         struct diag *d);

#endif
