/* dispatch.c - one request from start to answer: the callbacks
 * libmicrohttpd calls (raw path routing, body collection with its size
 * limit), the checks before anything runs (route, method, CORS preflight,
 * bearer token, media type, announced length), and the route -> backend
 * dispatch (the dashboard's embedded files included). */
#include "server_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cors.h"
#include "model_summary.h"
#include "static_files.h"

/* Compare in time that depends only on the length of expected. */
static bool token_equal(const char *given, const char *expected)
{
    size_t lg = strlen(given), le = strlen(expected);
    volatile unsigned char diff = (unsigned char)(lg != le);
    for (size_t i = 0; i < le; i++)
        diff |= (unsigned char)(given[lg ? i % lg : 0] ^ expected[i]);
    return diff == 0;
}

/* The role of the request's bearer token: every configured token is
 * compared (no early exit), API_ROLE_NONE when none matches; API_ROLE_ADMIN
 * when authentication is off. */
static enum api_role auth_role(const struct api_server *srv, struct MHD_Connection *c)
{
    if (srv->cfg.n_tokens == 0)
        return API_ROLE_ADMIN;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return API_ROLE_NONE;
    h += 7;
    while (*h == ' ')
        h++;
    enum api_role role = API_ROLE_NONE;
    for (int i = 0; i < srv->cfg.n_tokens; i++) {
        bool match = token_equal(h, srv->cfg.tokens[i].token);
        if (match && srv->cfg.tokens[i].role > role)
            role = srv->cfg.tokens[i].role;
    }
    return role;
}

int parse_u64_text(const char *s, uint64_t *ret)
{
    if (!s || !*s)
        return -EINVAL;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        uint64_t digit = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return -ERANGE;
        v = v * 10 + digit;
    }
    *ret = v;
    return 0;
}

const char *request_query(struct MHD_Connection *c, const char *key)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
}

/* RFC 3629 UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

static bool is_json_type(const char *ctype)
{
    if (!ctype)
        return false;
    while (*ctype == ' ')
        ctype++;
    size_t n = strlen("application/json");
    if (strncasecmp(ctype, "application/json", n) != 0)
        return false;
    char next = ctype[n];
    return next == '\0' || next == ';' || next == ' ';
}

static enum MHD_Result dispatch(struct request *rq, struct MHD_Connection *c)
{
    struct api_server *srv = rq->srv;
    const struct api_backend *be = &srv->be;
    struct diag d = {{0}, {0}};
    char *out = NULL;
    int r;

    switch (rq->path.route) {
    case API_ROUTE_JOBS:
        if (rq->method == API_METHOD_POST) {
            char id[JOB_ID_LEN + 1];
            if (!utf8_valid((const unsigned char *)(rq->body ? rq->body : ""), rq->body_len))
                return respond_error(rq, c, MHD_HTTP_BAD_REQUEST, "invalid_request",
                                     "the request body is not valid UTF-8", NULL);
            r = be->submit(be->ctx, rq->body ? rq->body : "", rq->body_len, &out, id, &d);
            if (r < 0)
                return respond_backend_error(rq, c, r, &d, "invalid job spec");
            struct MHD_Response *resp = text_response(out, strlen(out), "application/json");
            if (!resp)
                return MHD_NO;
            char loc[64];
            snprintf(loc, sizeof(loc), "/v1/jobs/%s", id);
            MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc);
            return respond_queue(rq, c, MHD_HTTP_CREATED, resp);
        }
        r = be->list(be->ctx, request_query(c, "state"), &out, &d);
        return r < 0 ? respond_backend_error(rq, c, r, &d, "bad request")
                     : respond_json(rq, c, MHD_HTTP_OK, out);
    case API_ROUTE_JOB:
        if (rq->method == API_METHOD_DELETE) {
            r = be->remove(be->ctx, rq->path.id, &d);
            if (r < 0)
                return respond_backend_error(rq, c, r, &d, "no such job");
            return respond_queue(rq, c, MHD_HTTP_NO_CONTENT,
                         MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT));
        }
        r = be->get(be->ctx, rq->path.id, &out);
        return r < 0 ? respond_backend_error(rq, c, r, NULL, "no such job")
                     : respond_json(rq, c, MHD_HTTP_OK, out);
    case API_ROUTE_JOB_CANCEL:
        r = be->cancel(be->ctx, rq->path.id, &out);
        return r < 0 ? respond_backend_error(rq, c, r, NULL, "no such job")
                     : respond_json(rq, c, MHD_HTTP_OK, out);
    case API_ROUTE_JOB_EVENTS:
        return serve_events(rq, c);
    case API_ROUTE_JOB_METRICS: {
        const char *fmt = request_query(c, "format");
        bool csv = false;
        if (fmt && strcmp(fmt, "csv") == 0)
            csv = true;
        else if (fmt && strcmp(fmt, "json") != 0)
            return respond_error(rq, c, MHD_HTTP_BAD_REQUEST, "invalid_parameter",
                                 "query parameter 'format' must be json or csv", NULL);
        r = be->metrics(be->ctx, rq->path.id, csv, &out);
        if (r < 0)
            return respond_backend_error(rq, c, r, NULL, "no such job");
        if (!csv)
            return respond_json(rq, c, MHD_HTTP_OK, out);
        struct MHD_Response *resp = text_response(out, strlen(out), "text/csv; charset=utf-8");
        if (resp) {
            char disp[64];
            snprintf(disp, sizeof(disp), "inline; filename=\"%s.csv\"", rq->path.id);
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disp);
        }
        return respond_queue(rq, c, MHD_HTTP_OK, resp);
    }
    case API_ROUTE_JOB_CHECKPOINTS:
        r = be->checkpoints(be->ctx, rq->path.id, &out);
        return r < 0 ? respond_backend_error(rq, c, r, NULL, "no such job")
                     : respond_json(rq, c, MHD_HTTP_OK, out);
    case API_ROUTE_JOB_CHECKPOINT:
        return serve_file(rq, c, API_FILE_PATH);
    case API_ROUTE_JOB_BEST:
        return serve_file(rq, c, API_FILE_BEST);
    case API_ROUTE_JOB_LATEST:
        return serve_file(rq, c, API_FILE_LATEST);
    case API_ROUTE_DATASETS:
        r = be->datasets(be->ctx, &out);
        return r < 0 ? respond_backend_error(rq, c, r, NULL, "unavailable")
                     : respond_json(rq, c, MHD_HTTP_OK, out);
    case API_ROUTE_MODELS:
        r = be->models(be->ctx, &out);
        return r < 0 ? respond_backend_error(rq, c, r, NULL, "unavailable")
                     : respond_json(rq, c, MHD_HTTP_OK, out);
    case API_ROUTE_MODEL_VALIDATE:
        if (!utf8_valid((const unsigned char *)(rq->body ? rq->body : ""), rq->body_len))
            return respond_error(rq, c, MHD_HTTP_BAD_REQUEST, "invalid_request",
                                 "the request body is not valid UTF-8", NULL);
        r = model_summary_json(rq->body ? rq->body : "", rq->body_len, &out, &d);
        return r < 0 ? respond_backend_error(rq, c, r, &d, "invalid model")
                     : respond_json(rq, c, MHD_HTTP_OK, out);
    case API_ROUTE_HEALTH: {
        bool ready = false;
        r = be->health(be->ctx, &out, &ready);
        if (r < 0)
            return respond_backend_error(rq, c, r, NULL, "unavailable");
        return respond_json(rq, c, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, out);
    }
    case API_ROUTE_PROMETHEUS:
        return serve_prometheus(rq, c);
    case API_ROUTE_DATASET:
        return serve_dataset(rq, c);
    case API_ROUTE_WEIGHTS_LIST:
        r = be->weights_list ? be->weights_list(be->ctx, &out) : -ENOSYS;
        return r < 0 ? respond_backend_error(rq, c, r, NULL, "unavailable")
                     : respond_json(rq, c, MHD_HTTP_OK, out);
    case API_ROUTE_WEIGHTS:
        return serve_weights(rq, c);
    case API_ROUTE_JOB_EVALUATE:
    case API_ROUTE_JOB_PREDICT:
        return serve_use(rq, c);
    case API_ROUTE_OPENAPI:
    case API_ROUTE_STATIC: {
        const char *name = rq->path.route == API_ROUTE_OPENAPI ? "openapi.json"
                           : rq->path.components[0][0]      ? rq->path.components[0]
                                                            : "index.html";
        const struct static_file *f = static_file_find(name);
        if (!f)
            return respond_error(rq, c, MHD_HTTP_NOT_FOUND, "not_found", "no such file", NULL);
        unsigned status = MHD_HTTP_OK;
        struct MHD_Response *resp = static_file_response(f, c, &status);
        return respond_queue(rq, c, status, resp);
    }
    }
    return respond_error(rq, c, MHD_HTTP_NOT_FOUND, "not_found", "no such route", NULL);
}

/* The largest body a request may carry in memory (PUT bodies go to a file:
 * max_dataset_bytes). */
static size_t body_limit(const struct request *rq)
{
    if (rq->path.route == API_ROUTE_JOB_PREDICT)
        return rq->srv->cfg.max_predict_bytes;
    return rq->srv->cfg.max_body_bytes;
}

/* A body grew past limit while it arrives.  libmicrohttpd cannot queue a
 * response before the body ends, and a chunked body may never end: write
 * the 413 on the connection now (as TLS records under HTTPS), discard the
 * rest of the body and close when it ends.  When nothing could be written,
 * the 413 is queued when the body ends. */
static void send_too_large(struct request *rq, struct MHD_Connection *c, size_t limit)
{
    if (send_raw_error(rq, c, MHD_HTTP_CONTENT_TOO_LARGE, "Content Too Large", "too_large",
                       limit)) {
        atomic_fetch_add(&rq->srv->requests[MHD_HTTP_CONTENT_TOO_LARGE], 1);
        rq->answered = true;
    }
}

/* PUT /v1/datasets/{name}: the announced length, the import options and the
 * format, all before the body is read. */
static bool check_upload(struct request *rq, struct MHD_Connection *c, enum MHD_Result *ret)
{
    struct api_server *srv = rq->srv;
    const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t n;
    if (len && parse_u64_text(len, &n) == 0 && n > srv->cfg.max_dataset_bytes) {
        char msg[128];
        snprintf(msg, sizeof(msg), "data set larger than %" PRIu64 " bytes",
                 srv->cfg.max_dataset_bytes);
        *ret = respond_error(rq, c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", msg, NULL);
        return false;
    }
    rq->upload = calloc(1, sizeof(*rq->upload));
    if (!rq->upload) {
        *ret = MHD_NO;
        return false;
    }
    struct diag d = {{0}, {0}};
    int r = rq->path.route == API_ROUTE_WEIGHTS
                ? api_upload_prepare_weights(rq->upload, &srv->be, c, rq->path.name, &d)
                : api_upload_prepare(rq->upload, &srv->be, c, rq->path.name, &d);
    if (r < 0) {
        *ret = respond_backend_error(rq, c, r, &d, "bad request");
        return false;
    }
    return true;
}

static enum MHD_Result add_header_bytes(void *cls, enum MHD_ValueKind kind, const char *key,
                                        const char *value)
{
    (void)kind;
    size_t *total = cls;
    *total += strlen(key) + (value ? strlen(value) : 0);
    return MHD_YES;
}

/* The request's HTTP framing that libmicrohttpd lets through but we refuse,
 * answered with the JSON error: another HTTP/1.x than 1.0 and 1.1 (505),
 * HTTP/1.1 without Host (400), too many query parameters (414), too many
 * header bytes (431). */
static bool check_http(struct request *rq, struct MHD_Connection *c, enum MHD_Result *ret)
{
    char msg[160];
    if (rq->http_version == 0) {
        *ret = respond_error(rq, c, MHD_HTTP_HTTP_VERSION_NOT_SUPPORTED,
                             "http_version_not_supported",
                             "only HTTP/1.0 and HTTP/1.1 are supported", NULL);
        return false;
    }
    if (rq->http_version == 11 &&
        !MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST)) {
        *ret = respond_error(rq, c, MHD_HTTP_BAD_REQUEST, "invalid_request",
                             "an HTTP/1.1 request needs a Host header", NULL);
        return false;
    }
    int n_query = MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, NULL, NULL);
    if (n_query > API_MAX_QUERY_PARAMS) {
        snprintf(msg, sizeof(msg), "%d query parameters; at most %d are accepted", n_query,
                 API_MAX_QUERY_PARAMS);
        *ret = respond_error(rq, c, MHD_HTTP_URI_TOO_LONG, "uri_too_long", msg, NULL);
        return false;
    }
    size_t header_bytes = 0;
    MHD_get_connection_values(c, MHD_HEADER_KIND, add_header_bytes, &header_bytes);
    if (header_bytes > API_MAX_HEADER_BYTES) {
        snprintf(msg, sizeof(msg), "%zu bytes of request headers; at most %d are accepted",
                 header_bytes, API_MAX_HEADER_BYTES);
        *ret = respond_error(rq, c, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE, "header_too_large",
                             msg, NULL);
        return false;
    }
    return true;
}

/* Route, method, auth and (for POST) media type and announced length.
 * Returns true when the request may go on; otherwise an error response is
 * queued and *ret is the result for libmicrohttpd. */
static bool check_request(struct request *rq, struct MHD_Connection *c, enum MHD_Result *ret)
{
    struct api_server *srv = rq->srv;
    rq->checked = true;
    if (!check_http(rq, c, ret))
        return false;
    if (rq->path_err == -ENOENT) {
        *ret = respond_error(rq, c, MHD_HTTP_NOT_FOUND, "not_found", rq->diag.message, NULL);
        return false;
    }
    if (rq->path_err < 0) {
        *ret = respond_error(rq, c, MHD_HTTP_BAD_REQUEST, "invalid_path", rq->diag.message,
                             NULL);
        return false;
    }
    unsigned allowed = api_route_methods(rq->path.route);
    if (rq->method == API_METHOD_OPTIONS) {
        /* CORS preflight: browsers send it without the token. */
        char allow[64];
        api_methods_format(allow, sizeof(allow), allowed);
        *ret = respond_queue(rq, c, MHD_HTTP_NO_CONTENT,
                             cors_preflight_response(srv->cfg.cors, c, allow));
        return false;
    }
    if (!(allowed & rq->method)) {
        char allow[64], msg[128];
        api_methods_format(allow, sizeof(allow), allowed);
        snprintf(msg, sizeof(msg), "method not allowed; allowed: %s", allow);
        struct MHD_Response *resp = error_response("method_not_allowed", msg, NULL);
        if (resp)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
        *ret = respond_queue(rq, c, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
        return false;
    }
    /* The health check and the dashboard's own files are public (the page
     * asks for the token); every other route needs a token once one is set. */
    enum api_role role = rq->path.route == API_ROUTE_HEALTH || rq->path.route == API_ROUTE_STATIC
                             ? API_ROLE_ADMIN
                             : auth_role(srv, c);
    if (role == API_ROLE_NONE) {
        struct MHD_Response *resp =
            error_response("unauthorized", "a valid bearer token is required", NULL);
        if (resp)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                    "Bearer realm=\"traind\"");
        *ret = respond_queue(rq, c, MHD_HTTP_UNAUTHORIZED, resp);
        return false;
    }
    enum api_role need = api_route_role(rq->path.route, rq->method);
    if (role < need) {
        char msg[128];
        snprintf(msg, sizeof(msg), "this token's role '%s' may not do this; it needs '%s'",
                 api_role_name(role), api_role_name(need));
        *ret = respond_error(rq, c, MHD_HTTP_FORBIDDEN, "forbidden", msg, NULL);
        return false;
    }
    if (rq->method == API_METHOD_PUT)
        return check_upload(rq, c, ret);
    if (rq->method != API_METHOD_POST)
        return true;
    if ((rq->path.route == API_ROUTE_JOBS || rq->path.route == API_ROUTE_MODEL_VALIDATE) &&
        !is_json_type(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_CONTENT_TYPE))) {
        *ret = respond_error(rq, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                             "the request body must be application/json", NULL);
        return false;
    }
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t clen;
    if (cl && parse_u64_text(cl, &clen) == 0 && clen > body_limit(rq)) {
        char msg[128];
        snprintf(msg, sizeof(msg), "request body larger than %zu bytes", body_limit(rq));
        *ret = respond_error(rq, c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", msg, NULL);
        return false;
    }
    return true;
}

enum MHD_Result api_on_access(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version,
                              const char *upload_data, size_t *upload_data_size,
                              void **con_cls)
{
    struct api_server *srv = cls;
    struct request *rq = *con_cls;
    (void)url;
    if (!rq)
        return MHD_NO;

    if (!rq->started) {
        rq->started = true;
        rq->method = api_method_parse(method);
        rq->http_version = strcmp(version, MHD_HTTP_VERSION_1_1) == 0   ? 11
                           : strcmp(version, MHD_HTTP_VERSION_1_0) == 0 ? 10
                                                                        : 0;
        /* Requests that carry a body are checked before it is read.  The
         * others are answered on the next call: a response queued on this
         * first call makes libmicrohttpd close the connection. */
        if (rq->method == API_METHOD_POST || rq->method == API_METHOD_PUT ||
            rq->method == API_METHOD_OTHER) {
            enum MHD_Result ret;
            if (!check_request(rq, c, &ret))
                return ret;
        }
        return MHD_YES;
    }

    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (rq->too_large)
            return MHD_YES;
        if (rq->upload) { /* a data set: to its file, piece by piece */
            struct diag d = {{0}, {0}};
            int r = api_upload_write(rq->upload, upload_data, n, srv->cfg.max_dataset_bytes, &d);
            if (r == -EFBIG) {
                rq->too_large = true;
                api_upload_free(rq->upload);
                send_too_large(rq, c, (size_t)srv->cfg.max_dataset_bytes);
                return MHD_YES;
            }
            return r < 0 ? MHD_NO : MHD_YES;
        }
        if (rq->body_len + n > body_limit(rq)) {
            rq->too_large = true;
            free(rq->body);
            rq->body = NULL;
            rq->body_len = 0;
            send_too_large(rq, c, body_limit(rq));
            return MHD_YES;
        }
        char *b = realloc(rq->body, rq->body_len + n + 1);
        if (!b)
            return MHD_NO;
        memcpy(b + rq->body_len, upload_data, n);
        rq->body = b;
        rq->body_len += n;
        rq->body[rq->body_len] = '\0';
        return MHD_YES;
    }
    if (rq->answered)
        return MHD_NO; /* the response is already on the wire: close */
    if (rq->too_large) {
        char msg[128];
        snprintf(msg, sizeof(msg), "request body larger than %zu bytes", body_limit(rq));
        return respond_error(rq, c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", msg, NULL);
    }
    if (!rq->checked) {
        enum MHD_Result ret;
        if (!check_request(rq, c, &ret))
            return ret;
    }
    return dispatch(rq, c);
}

/* Called once per request with the raw request target, before headers are
 * parsed: route on the path exactly as sent (percent escapes intact). */
void *api_on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)c;
    struct request *rq = calloc(1, sizeof(*rq));
    if (!rq)
        return NULL;
    rq->srv = cls;
    size_t len = strcspn(uri, "?#");
    rq->path_err = api_path_parse(&rq->path, uri, len, &rq->diag);
    return rq;
}

void api_on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct api_server *srv = cls;
    struct request *rq = *con_cls;
    (void)c;
    if (!rq)
        return;
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && rq->serve_bytes)
        atomic_fetch_add(&srv->bytes_served, rq->serve_bytes);
    if (rq->upload)
        api_upload_free(rq->upload);
    free(rq->upload);
    if (rq->use)
        api_use_free(rq->use);
    free(rq->use);
    free(rq->body);
    free(rq);
    *con_cls = NULL;
}
