/* route.h - maps a raw request path (as the client sent it, still
 * percent-encoded, without the query) to one of the API's routes.
 *
 * Pure string work, no file system: job ids are checked for syntax here and
 * checkpoint paths are split, percent-decoded and checked component by
 * component (no "", ".", "..", leading dot, temp names, '/' or NUL after
 * decoding, characters outside the template alphabet) before anything is
 * looked up.  Fuzzed by fuzz/fuzz_route.c. */
#ifndef TRAIND_API_ROUTE_H
#define TRAIND_API_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "diag.h"
#include "job_id.h"

#define API_PATH_MAX_COMPONENTS 4
#define API_PATH_MAX_NAME 255
#define API_DATASET_NAME_MAX 63
/* More query parameters than this answer 414 (no route reads more than 3). */
#define API_MAX_QUERY_PARAMS 32
/* Header names and values together beyond this answer 431 (JSON); larger
 * sections than connection_memory_limit holds are refused by libmicrohttpd
 * itself. */
#define API_MAX_HEADER_BYTES 16384

enum api_route {
    API_ROUTE_JOBS,             /* /v1/jobs */
    API_ROUTE_JOB,              /* /v1/jobs/{id} */
    API_ROUTE_JOB_CANCEL,       /* /v1/jobs/{id}/cancel */
    API_ROUTE_JOB_EVENTS,       /* /v1/jobs/{id}/events */
    API_ROUTE_JOB_METRICS,      /* /v1/jobs/{id}/metrics */
    API_ROUTE_JOB_CHECKPOINTS,  /* /v1/jobs/{id}/checkpoints */
    API_ROUTE_JOB_CHECKPOINT,   /* /v1/jobs/{id}/checkpoints/{path} */
    API_ROUTE_JOB_BEST,         /* /v1/jobs/{id}/best */
    API_ROUTE_JOB_LATEST,       /* /v1/jobs/{id}/latest */
    API_ROUTE_DATASETS,         /* /v1/datasets */
    API_ROUTE_DATASET,          /* /v1/datasets/{name} */
    API_ROUTE_WEIGHTS,          /* /v1/weights/{name} (a warm start's file) */
    API_ROUTE_WEIGHTS_LIST,     /* /v1/weights */
    API_ROUTE_JOB_EVALUATE,     /* /v1/jobs/{id}/evaluate */
    API_ROUTE_JOB_PREDICT,      /* /v1/jobs/{id}/predict */
    API_ROUTE_MODELS,           /* /v1/models */
    API_ROUTE_MODEL_VALIDATE,   /* /v1/models/validate */
    API_ROUTE_HEALTH,           /* /v1/health */
    API_ROUTE_PROMETHEUS,       /* /metrics */
    API_ROUTE_OPENAPI,          /* /v1/openapi.json */
    API_ROUTE_STATIC,           /* / (the dashboard) and /ui/{file} */
};

/* Token roles, each including the ones before it: read (GET and HEAD:
 * jobs, events, metrics, downloads), submit (+ submit and cancel jobs),
 * admin (everything, e.g. DELETE of a job). */
enum api_role {
    API_ROLE_NONE = 0,
    API_ROLE_READ = 1,
    API_ROLE_SUBMIT = 2,
    API_ROLE_ADMIN = 3,
};

/* "read", "submit", "admin"; -EINVAL otherwise. */
int api_role_parse(const char *name, enum api_role *ret);
const char *api_role_name(enum api_role role);

/* Methods as a bit set, for routing and the Allow header. */
enum api_method {
    API_METHOD_GET = 1 << 0,
    API_METHOD_HEAD = 1 << 1,
    API_METHOD_POST = 1 << 2,
    API_METHOD_DELETE = 1 << 3,
    API_METHOD_PUT = 1 << 4,
    API_METHOD_OTHER = 1 << 5,
    API_METHOD_OPTIONS = 1 << 6,  /* CORS preflights, accepted on every route */
};

struct api_path {
    enum api_route route;
    char id[JOB_ID_LEN + 1];                     /* "" when the route has none */
    char name[API_DATASET_NAME_MAX + 1];         /* API_ROUTE_DATASET, decoded */
    int n_components;                            /* API_ROUTE_JOB_CHECKPOINT, _STATIC */
    char components[API_PATH_MAX_COMPONENTS][API_PATH_MAX_NAME + 1];
};

/* Parse raw (the request target up to, not including, '?'; len bytes, may
 * contain anything).  Returns 0 with ret filled, -ENOENT when no route
 * matches or the job id is not a valid id (404), -EINVAL when the path is
 * malformed (bad percent escape, a decoded '/' or NUL, a forbidden checkpoint
 * path component or data set name; 400) with d->message saying why. */
int api_path_parse(struct api_path *ret, const char *raw, size_t len, struct diag *d);

/* Methods a route accepts (HEAD wherever GET is). */
unsigned api_route_methods(enum api_route route);
/* "GET, HEAD, POST" for the Allow header. */
void api_methods_format(char *out, size_t outsz, unsigned methods);
enum api_method api_method_parse(const char *method);

/* True when name is a valid data set name: 1 to 63 letters, digits, '-',
 * '_', '.', not starting with '.'. */
static inline bool api_dataset_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > API_DATASET_NAME_MAX || name[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* The least role a request needs (method is one api_method bit). */
enum api_role api_route_role(enum api_route route, unsigned method);

/* True when name is an acceptable checkpoint path component. */
bool api_component_valid(const char *name);

#endif
