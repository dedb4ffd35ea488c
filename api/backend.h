/* backend.h - what the HTTP layer needs from the owner of the jobs.
 *
 * api/ knows jobs only through this table of functions; daemon/ fills it
 * (daemon/backend.c).  Every function is called on libmicrohttpd's thread,
 * must not wait on training (take the job's lock, copy, release) and returns
 * 0 or a negative errno:
 *   -ENOENT no such job (404), -EINVAL bad input with d filled (400),
 *   -EBUSY state conflict (409), -EAGAIN queue full / -ESHUTDOWN stopping (503),
 *   -ENOMEM and anything else (500).
 * Strings returned through ret_ pointers are malloc'ed and owned by the
 * caller; ret_ values are written only on success. */
#ifndef TRAIND_API_BACKEND_H
#define TRAIND_API_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "fsutil.h"
#include "job_id.h"
#include "import.h"

/* An opened weight file for download. */
struct api_file {
    int fd;               /* O_RDONLY|O_CLOEXEC, owned by the caller */
    uint64_t size;        /* bytes (from fstat of fd) */
    char name[256];       /* base name, for Content-Disposition */
    char sha256[FSUTIL_SHA256_HEX_SIZE];      /* lowercase hex, from the checkpoint event ("" if unknown) */
};

enum api_file_kind {
    API_FILE_PATH,        /* a file of the job's checkpoint table, by relative path */
    API_FILE_BEST,        /* the current best file of a policy */
    API_FILE_LATEST,      /* the newest file (of a policy, or of any when policy < 0) */
    API_FILE_UPLOADED,    /* an uploaded weights file (/v1/weights/{name}): weights_open */
};

/* One input of a prediction: an image (PNG or JPEG) or an .npy batch. */
struct api_predict_input {
    const void *data;     /* into the request body */
    size_t len;
    bool npy;
    char name[256];       /* the part's file name, or "" */
};

/* One event as stored: its sequence number, type and full JSON object
 * ({"seq": .., "time": .., "type": .., ...}, no newline). */
struct api_event {
    uint64_t seq;
    char type[32];
    char *json;           /* owned */
    size_t len;
};

struct api_events {
    int n;
    struct api_event *items;  /* (n), owned */
    uint64_t last_seq;        /* highest sequence number the job has now */
    bool final;               /* the job is in a terminal state: no more events will come */
};

void api_events_free(struct api_events *ev);

struct api_backend {
    void *ctx;
    /* POST /v1/jobs: body is the spec.  ret_json = the job resource, ret_id its id. */
    int (*submit)(void *ctx, const char *body, size_t len, char **ret_json,
                  char ret_id[static JOB_ID_LEN + 1], struct diag *d);
    /* GET /v1/jobs: summaries; state NULL or one of the state names (else -EINVAL). */
    int (*list)(void *ctx, const char *state, char **ret_json, struct diag *d);
    int (*get)(void *ctx, const char *id, char **ret_json);
    /* Idempotent; ret_json = the job resource after the request. */
    int (*cancel)(void *ctx, const char *id, char **ret_json);
    /* -EBUSY while queued or running. */
    int (*remove)(void *ctx, const char *id, struct diag *d);
    /* Epoch history as JSON, or as Keras CSVLogger text when csv. */
    int (*metrics)(void *ctx, const char *id, bool csv, char **ret_text);
    int (*checkpoints)(void *ctx, const char *id, char **ret_json);
    /* Open a weight file.  components/n: the checked path (API_FILE_PATH);
     * policy: index for best/latest (-1 = default).  -ENOENT when the job,
     * the policy or the file does not exist or is not in the job's table. */
    int (*open_file)(void *ctx, const char *id, enum api_file_kind kind,
                     const char (*components)[256], int n, int policy, struct api_file *ret,
                     struct diag *d);
    /* Events with seq > after, at most max of them. */
    int (*events)(void *ctx, const char *id, uint64_t after, int max, struct api_events *ret);
    /* GET /v1/datasets, /v1/models: JSON documents. */
    int (*datasets)(void *ctx, char **ret_json);
    int (*models)(void *ctx, char **ret_json);
    /* GET /v1/health: JSON; *ret_ready false gives 503. */
    int (*health)(void *ctx, char **ret_json, bool *ret_ready);
    /* Prometheus text lines for the job metrics (the server adds its own). */
    int (*prometheus)(void *ctx, char **ret_text);

    /* --- data sets (PUT/GET/DELETE /v1/datasets/{name}) and using a model.
     * Called on a task thread (tasks.h) where marked: they may take long. */
    /* A new empty file for an upload body; fd O_RDWR, owned by the caller. */
    int (*dataset_upload_file)(void *ctx, char ret_path[4096], int *ret_fd, struct diag *d);
    /* (task) Import upload_path (removed whatever the result) as name: the
     * resource.  -EEXIST (409) taken or read-only, -EINVAL (400) bad file. */
    int (*dataset_put)(void *ctx, const char *name, const char *upload_path,
                       const struct import_options *o, char **ret_json, struct diag *d);
    int (*dataset_get)(void *ctx, const char *name, char **ret_json);
    /* (task) PUT /v1/weights/{name}: store upload_path (removed whatever
     * the result) as the weights file name, for jobs' initial_weights;
     * -EINVAL (400) when it is no Keras weight file. */
    int (*weights_put)(void *ctx, const char *name, const char *upload_path, char **ret_json,
                       struct diag *d);
    /* GET /v1/weights: {"weights": [{"name", "bytes", "sha256", "layout",
     * "layers", "uploaded"}]}. */
    int (*weights_list)(void *ctx, char **ret_json);
    /* GET/HEAD /v1/weights/{name}: the file, as open_file; -ENOENT (404). */
    int (*weights_open)(void *ctx, const char *name, struct api_file *ret, struct diag *d);
    /* DELETE /v1/weights/{name}: -ENOENT (404), -EBUSY (409) the
     * initial_weights of a queued or running job (d names it). */
    int (*weights_delete)(void *ctx, const char *name, struct diag *d);
    /* -EBUSY (409) used by a queued or running job, -EPERM (409) configured. */
    int (*dataset_delete)(void *ctx, const char *name, struct diag *d);
    /* (task) POST /v1/jobs/{id}/evaluate: checkpoint "best", "latest" or a
     * file name of the job; dataset a name. */
    int (*evaluate)(void *ctx, const char *id, const char *checkpoint, const char *dataset,
                    char **ret_json, struct diag *d);
    /* (task) POST /v1/jobs/{id}/predict: n inputs (all images, or one .npy). */
    int (*predict)(void *ctx, const char *id, const char *checkpoint,
                   const struct api_predict_input *in, int n, char **ret_json, struct diag *d);
};

#endif
