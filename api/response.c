/* response.c - every answer the API gives goes through here: JSON bodies,
 * {"error": {...}} bodies, the backend's errno mapped to a status, the raw
 * 413 written while a body is still arriving, and the per-status request
 * counters that /metrics reports.  Every queued response gets the CORS
 * headers for an allowed Origin (cors.c). */
#include "server_internal.h"
#include "tls.h"

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <cjson/cJSON.h>

#include "cors.h"

enum MHD_Result respond_queue(struct request *rq, struct MHD_Connection *c, unsigned status,
                              struct MHD_Response *r)
{
    if (!r)
        return MHD_NO;
    if (status < STATUS_MAX)
        atomic_fetch_add(&rq->srv->requests[status], 1);
    cors_add_headers(rq->srv->cfg.cors, c, r);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* text is malloc'ed and taken over. */
struct MHD_Response *text_response(char *text, size_t len, const char *ctype)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return NULL;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return r;
}

enum MHD_Result respond_json(struct request *rq, struct MHD_Connection *c,
                             unsigned status, char *json)
{
    if (!json)
        return MHD_NO;
    return respond_queue(rq, c, status, text_response(json, strlen(json), "application/json"));
}

struct MHD_Response *error_response(const char *code, const char *message,
                                    const char *field)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(root, "error");
    char *text = NULL;
    if (err && cJSON_AddStringToObject(err, "code", code) &&
        cJSON_AddStringToObject(err, "message", message) &&
        (field && field[0] ? cJSON_AddStringToObject(err, "field", field)
                           : cJSON_AddNullToObject(err, "field")))
        text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text)
        return NULL;
    return text_response(text, strlen(text), "application/json");
}

enum MHD_Result respond_error(struct request *rq, struct MHD_Connection *c,
                              unsigned status, const char *code, const char *message,
                              const char *field)
{
    return respond_queue(rq, c, status, error_response(code, message, field));
}

/* Map a backend errno to a status and error code. */
enum MHD_Result respond_backend_error(struct request *rq, struct MHD_Connection *c,
                                      int err, const struct diag *d,
                                      const char *fallback)
{
    const char *msg = d && d->message[0] ? d->message : fallback;
    const char *field = d ? d->field : NULL;
    switch (err) {
    case -ENOENT:
        return respond_error(rq, c, MHD_HTTP_NOT_FOUND, "not_found", msg, field);
    case -EINVAL:
        return respond_error(rq, c, MHD_HTTP_BAD_REQUEST,
                             field && field[0] ? "invalid_field" : "invalid_request", msg, field);
    case -EBUSY:
        return respond_error(rq, c, MHD_HTTP_CONFLICT, "conflict", msg, field);
    case -EEXIST:
        return respond_error(rq, c, MHD_HTTP_CONFLICT, "exists", msg, field);
    case -EPERM:
        return respond_error(rq, c, MHD_HTTP_CONFLICT, "read_only", msg, field);
    case -EFBIG:
        return respond_error(rq, c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", msg, field);
    case -EMEDIUMTYPE:
        return respond_error(rq, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                             msg, field);
    case -ENOSYS:
        return respond_error(rq, c, MHD_HTTP_NOT_IMPLEMENTED, "not_implemented", msg, NULL);
    case -EAGAIN:
        return respond_error(rq, c, MHD_HTTP_SERVICE_UNAVAILABLE, "queue_full", msg, NULL);
    case -ENOSPC:
    case -EDQUOT:
        return respond_error(rq, c, MHD_HTTP_INSUFFICIENT_STORAGE, "insufficient_storage", msg,
                             NULL);
    case -ESHUTDOWN:
        return respond_error(rq, c, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting_down",
                             "the server is shutting down", NULL);
    default:
        return respond_error(rq, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", strerror(-err),
                             NULL);
    }
}

/* Write a complete JSON error response straight to the connection's socket
 * (only for a request whose body we refuse while it is still arriving). */
bool send_raw_error(struct request *rq, struct MHD_Connection *c, unsigned status,
                    const char *reason, const char *code, size_t limit)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(
        c, rq->srv->tls ? MHD_CONNECTION_INFO_GNUTLS_SESSION : MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!info)
        return false;
    char body[256], msg[512];
    int bn = snprintf(body, sizeof(body),
                      "{\"error\":{\"code\":\"%s\",\"message\":\"request body larger than "
                      "%zu bytes\",\"field\":null}}",
                      code, limit);
    if (bn < 0 || (size_t)bn >= sizeof(body))
        return false;
    int n = snprintf(msg, sizeof(msg),
                     "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n%s",
                     status, reason, bn, body);
    if (n < 0 || (size_t)n >= sizeof(msg))
        return false;
    if (rq->srv->tls)
        return api_tls_send(info->tls_session, msg, (size_t)n);
    size_t off = 0;
    while (off < (size_t)n) {
        ssize_t w = send(info->connect_fd, msg + off, (size_t)n - off, MSG_NOSIGNAL);
        if (w <= 0)
            return off > 0; /* best effort: the socket buffer of a fresh connection has room */
        off += (size_t)w;
    }
    return true;
}
