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
    API_ROUTE_MODELS,           /* /v1/models */
    API_ROUTE_HEALTH,           /* /v1/health */
    API_ROUTE_PROMETHEUS,       /* /metrics */
    API_ROUTE_OPENAPI,          /* /v1/openapi.json */
    API_ROUTE_STATIC,           /* / (the dashboard) and /ui/{file} */
};

/* Methods as a bit set, for routing and the Allow header. */
enum api_method {
    API_METHOD_GET = 1 << 0,
    API_METHOD_HEAD = 1 << 1,
    API_METHOD_POST = 1 << 2,
    API_METHOD_DELETE = 1 << 3,
    API_METHOD_OTHER = 1 << 4,
    API_METHOD_OPTIONS = 1 << 5,  /* CORS preflights, accepted on every route */
};

struct api_path {
    enum api_route route;
    char id[JOB_ID_LEN + 1];                     /* "" when the route has none */
    int n_components;                            /* API_ROUTE_JOB_CHECKPOINT, _STATIC */
    char components[API_PATH_MAX_COMPONENTS][API_PATH_MAX_NAME + 1];
};

/* Parse raw (the request target up to, not including, '?'; len bytes, may
 * contain anything).  Returns 0 with ret filled, -ENOENT when no route
 * matches or the job id is not a valid id (404), -EINVAL when the path is
 * malformed (bad percent escape, a decoded '/' or NUL, a forbidden checkpoint
 * path component; 400) with d->message saying why. */
int api_path_parse(struct api_path *ret, const char *raw, size_t len, struct diag *d);

/* Methods a route accepts (HEAD wherever GET is). */
unsigned api_route_methods(enum api_route route);
/* "GET, HEAD, POST" for the Allow header. */
void api_methods_format(char *out, size_t outsz, unsigned methods);
enum api_method api_method_parse(const char *method);

/* True when name is an acceptable checkpoint path component. */
bool api_component_valid(const char *name);

#endif
