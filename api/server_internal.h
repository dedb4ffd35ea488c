/* server_internal.h - what the files of the HTTP server share: the server
 * and per-request structs, and the functions one file offers the others.
 *   server.c        listen address, start/stop (lifecycle)
 *   dispatch.c      request callbacks, checks (route, method, auth, body),
 *                   and the route -> backend dispatch
 *   response.c      responses and JSON errors, request counters
 *   event_stream.c  SSE and NDJSON event streams (suspend/resume, heartbeats)
 *   download.c      weight file downloads (Range, ETag)
 *   prometheus.c    GET /metrics
 *   data_routes.c   PUT/GET/DELETE /v1/datasets/{name}, evaluate, predict
 *                   (the slow part as a task, tasks.c)
 * Every function here runs on libmicrohttpd's thread unless it says so. */
#ifndef TRAIND_API_SERVER_INTERNAL_H
#define TRAIND_API_SERVER_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "data_routes.h"
#include "diag.h"
#include "route.h"
#include "server.h"
#include "tasks.h"

#define STATUS_MAX 600 /* responses counted per status code below this */

struct stream;

/* GnuTLS priorities: its defaults, TLS 1.2 and 1.3 only. */
#define API_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct api_server {
    struct api_server_config cfg;
    struct api_backend be;
    struct MHD_Daemon *mhd;
    bool tls;                   /* HTTPS: write on a connection only through its TLS session */
    uint16_t port;
    pthread_mutex_t mu;
    struct stream *suspended;   /* guarded by mu */
    bool stopping;              /* guarded by mu */
    atomic_uint_fast64_t gen;   /* bumped (under mu) by every notify */
    atomic_uint_fast64_t requests[STATUS_MAX];
    atomic_uint_fast64_t bytes_served;
    struct api_tasks tasks;     /* imports, evaluations, predictions */
};

struct request {
    struct api_server *srv;
    bool started;
    enum api_method method;
    int http_version;         /* 10 or 11; 0 for another HTTP/1.x (answered 505) */
    int path_err;
    struct api_path path;
    struct diag diag;
    char *body;
    size_t body_len;
    bool checked;             /* check_request ran */
    bool too_large;
    bool answered;            /* a response was queued while the body was arriving */
    uint64_t serve_bytes;     /* counted into bytes_served when the response completes */
    struct api_upload *upload;  /* PUT /v1/datasets/{name}: options, the file the body goes to */
    struct api_use *use;        /* evaluate, predict */
    bool task_started;
};

/* --- response.c */
/* Queue r (NULL: MHD_NO) with status, count it, destroy our reference. */
enum MHD_Result respond_queue(struct request *rq, struct MHD_Connection *c, unsigned status,
                              struct MHD_Response *r);
/* A no-store response over text (malloc'ed, taken over even on failure). */
struct MHD_Response *text_response(char *text, size_t len, const char *ctype);
/* json (malloc'ed, taken over) as application/json. */
enum MHD_Result respond_json(struct request *rq, struct MHD_Connection *c, unsigned status,
                             char *json);
/* {"error": {"code", "message", "field"}}; field NULL or "" gives null. */
struct MHD_Response *error_response(const char *code, const char *message, const char *field);
enum MHD_Result respond_error(struct request *rq, struct MHD_Connection *c, unsigned status,
                              const char *code, const char *message, const char *field);
/* A backend's negative errno as status and code (see backend.h). */
enum MHD_Result respond_backend_error(struct request *rq, struct MHD_Connection *c, int err,
                                      const struct diag *d, const char *fallback);
/* A complete JSON 4xx written straight to the connection while a body
 * arrives (TLS records under HTTPS).  False when nothing was written. */
bool send_raw_error(struct request *rq, struct MHD_Connection *c, unsigned status,
                    const char *reason, const char *code, size_t limit);

/* --- dispatch.c */
/* A decimal number without sign or blanks: -EINVAL, -ERANGE. */
int parse_u64_text(const char *s, uint64_t *ret);
/* A query parameter of the request, or NULL. */
const char *request_query(struct MHD_Connection *c, const char *key);
enum MHD_Result api_on_access(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls);
void *api_on_uri(void *cls, const char *uri, struct MHD_Connection *c);
void api_on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe);

/* --- event_stream.c */
enum MHD_Result serve_events(struct request *rq, struct MHD_Connection *c);
/* (any thread) Mark the server stopping and resume every parked stream so
 * that it ends. */
void stream_resume_all(struct api_server *s);

/* --- download.c */
enum MHD_Result serve_file(struct request *rq, struct MHD_Connection *c, enum api_file_kind kind);

/* --- prometheus.c */
enum MHD_Result serve_prometheus(struct request *rq, struct MHD_Connection *c);

/* --- data_routes.c */
/* PUT (once the body is in rq->upload's file: runs the import as a task),
 * GET, DELETE /v1/datasets/{name}. */
enum MHD_Result serve_dataset(struct request *rq, struct MHD_Connection *c);
/* POST /v1/jobs/{id}/evaluate and /predict (rq->body): parse, run as a task. */
enum MHD_Result serve_use(struct request *rq, struct MHD_Connection *c);

#endif
