/* server.c - the HTTP API on libmicrohttpd: routing, auth, limits, JSON
 * errors, event streams (SSE / NDJSON with suspend/resume), downloads and
 * the request counters behind /metrics. */
#include "server.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "http_range.h"
#include "route.h"

#define STREAM_BATCH 64
#define STREAM_SNDBUF (64 * 1024) /* bytes a stream may have unsent in the kernel */
#define STATUS_MAX 600

struct stream {
    struct api_server *srv;
    struct MHD_Connection *conn;
    char id[JOB_ID_LEN + 1];
    uint64_t pos;             /* last sequence number sent */
    bool ndjson;
    bool ended;
    bool live;                /* has caught up with the job's newest event once */
    bool suspended;           /* guarded by srv->mu */
    bool heartbeat_due;       /* guarded by srv->mu */
    int64_t last_write;       /* monotonic ms; read by tick only while suspended */
    char *buf;
    size_t len, off, cap;
    struct stream *prev, *next; /* srv->suspended list, guarded by srv->mu */
};

struct api_server {
    struct api_server_config cfg;
    struct api_backend be;
    struct MHD_Daemon *mhd;
    uint16_t port;
    pthread_mutex_t mu;
    struct stream *suspended;   /* guarded by mu */
    bool stopping;              /* guarded by mu */
    atomic_uint_fast64_t gen;   /* bumped (under mu) by every notify */
    atomic_uint_fast64_t requests[STATUS_MAX];
    atomic_uint_fast64_t bytes_served;
};

struct request {
    struct api_server *srv;
    bool started;
    enum api_method method;
    int path_err;
    struct api_path path;
    struct diag diag;
    char *body;
    size_t body_len;
    bool checked;             /* check_request ran */
    bool too_large;
    bool answered;            /* a response was queued while the body was arriving */
    uint64_t serve_bytes;     /* counted into bytes_served when the response completes */
};

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- listen address ------------------------------------------------------ */

int api_listen_parse(struct api_listen *ret, const char *text, struct diag *d)
{
    char host[256];
    const char *colon;
    struct api_listen l;
    memset(&l, 0, sizeof(l));

    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':')
            return diag_set(d, -EINVAL, "listen", "expected [IPv6]:PORT, got '%s'", text);
        size_t n = (size_t)(close - text - 1);
        if (n >= sizeof(host))
            return diag_set(d, -EINVAL, "listen", "address too long");
        memcpy(host, text + 1, n);
        host[n] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon)
            return diag_set(d, -EINVAL, "listen", "expected ADDR:PORT, got '%s'", text);
        size_t n = (size_t)(colon - text);
        if (n >= sizeof(host))
            return diag_set(d, -EINVAL, "listen", "address too long");
        memcpy(host, text, n);
        host[n] = '\0';
    }
    const char *ps = colon + 1;
    char *end;
    errno = 0;
    long port = strtol(ps, &end, 10);
    if (*ps == '\0' || *end != '\0' || errno || port < 0 || port > 65535)
        return diag_set(d, -EINVAL, "listen", "bad port '%s'", ps);

    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    struct sockaddr_in *a4 = (struct sockaddr_in *)&l.addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&l.addr;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        l.len = sizeof(*a4);
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        l.len = sizeof(*a6);
    } else {
        return diag_set(d, -EINVAL, "listen", "'%s' is not a numeric IPv4/IPv6 address", host);
    }
    *ret = l;
    return 0;
}

bool api_listen_is_loopback(const struct api_listen *l)
{
    if (l->addr.ss_family == AF_INET) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)&l->addr;
        return (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
    }
    if (l->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&l->addr;
        if (IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr))
            return true;
        if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr))
            return a6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

/* --- responses ------------------------------------------------------------ */

static enum MHD_Result queue(struct request *rq, struct MHD_Connection *c, unsigned status,
                             struct MHD_Response *r)
{
    if (!r)
        return MHD_NO;
    if (status < STATUS_MAX)
        atomic_fetch_add(&rq->srv->requests[status], 1);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* text is malloc'ed and taken over. */
static struct MHD_Response *text_response(char *text, size_t len, const char *ctype)
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

static enum MHD_Result respond_json(struct request *rq, struct MHD_Connection *c,
                                    unsigned status, char *json)
{
    if (!json)
        return MHD_NO;
    return queue(rq, c, status, text_response(json, strlen(json), "application/json"));
}

static struct MHD_Response *error_response(const char *code, const char *message,
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

static enum MHD_Result respond_error(struct request *rq, struct MHD_Connection *c,
                                     unsigned status, const char *code, const char *message,
                                     const char *field)
{
    return queue(rq, c, status, error_response(code, message, field));
}

/* Map a backend errno to a status and error code. */
static enum MHD_Result respond_backend_error(struct request *rq, struct MHD_Connection *c,
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
    case -EAGAIN:
        return respond_error(rq, c, MHD_HTTP_SERVICE_UNAVAILABLE, "queue_full", msg, NULL);
    case -ESHUTDOWN:
        return respond_error(rq, c, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting_down",
                             "the server is shutting down", NULL);
    default:
        return respond_error(rq, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", strerror(-err),
                             NULL);
    }
}

/* --- auth ------------------------------------------------------------------ */

/* Compare in time that depends only on the length of expected. */
static bool token_equal(const char *given, const char *expected)
{
    size_t lg = strlen(given), le = strlen(expected);
    volatile unsigned char diff = (unsigned char)(lg != le);
    for (size_t i = 0; i < le; i++)
        diff |= (unsigned char)(given[lg ? i % lg : 0] ^ expected[i]);
    return diff == 0;
}

static bool auth_ok(const struct api_server *srv, struct MHD_Connection *c)
{
    if (!srv->cfg.token || !srv->cfg.token[0])
        return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    while (*h == ' ')
        h++;
    return token_equal(h, srv->cfg.token);
}

/* --- query helpers --------------------------------------------------------- */

static int parse_u64_text(const char *s, uint64_t *ret)
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

static const char *query(struct MHD_Connection *c, const char *key)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
}

/* --- event streams ---------------------------------------------------------- */

static int stream_append(struct stream *s, const char *text, size_t n)
{
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n)
            cap *= 2;
        char *b = realloc(s->buf, cap);
        if (!b)
            return -ENOMEM;
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, text, n);
    s->len += n;
    return 0;
}

static int stream_format(struct stream *s, const struct api_event *e)
{
    char head[96];
    int r;
    if (s->ndjson) {
        r = stream_append(s, e->json, e->len);
        return r ? r : stream_append(s, "\n", 1);
    }
    int n = snprintf(head, sizeof(head), "id: %" PRIu64 "\nevent: %s\ndata: ", e->seq, e->type);
    if (n < 0 || (size_t)n >= sizeof(head))
        return -EINVAL;
    if ((r = stream_append(s, head, (size_t)n)) || (r = stream_append(s, e->json, e->len)))
        return r;
    return stream_append(s, "\n\n", 2);
}

static void suspended_unlink(struct api_server *srv, struct stream *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->suspended = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    s->suspended = false;
}

/* Called with srv->mu held. */
static void stream_resume_locked(struct api_server *srv, struct stream *s)
{
    suspended_unlink(srv, s);
    MHD_resume_connection(s->conn);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream *s = cls;
    struct api_server *srv = s->srv;
    (void)pos;

    for (;;) {
        if (s->off < s->len) {
            size_t n = s->len - s->off;
            if (n > max)
                n = max;
            memcpy(buf, s->buf + s->off, n);
            s->off += n;
            s->last_write = monotonic_ms();
            return (ssize_t)n;
        }
        s->off = s->len = 0;
        if (s->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;

        pthread_mutex_lock(&srv->mu);
        bool stopping = srv->stopping, heartbeat = s->heartbeat_due;
        s->heartbeat_due = false;
        pthread_mutex_unlock(&srv->mu);
        if (stopping)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (heartbeat) {
            if (stream_append(s, ": heartbeat\n\n", 13) < 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            continue;
        }

        uint64_t gen = atomic_load(&srv->gen);
        struct api_events ev;
        int r = srv->be.events(srv->be.ctx, s->id, s->pos, STREAM_BATCH, &ev);
        if (r == -ENOENT) /* the job was deleted */
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (r < 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (ev.n > 0) {
            /* A live subscriber that fell this far behind is not reading:
             * drop it.  A new one replaying a long history is reading. */
            if (s->live && srv->cfg.stream_max_backlog &&
                ev.last_seq - s->pos > srv->cfg.stream_max_backlog) {
                api_events_free(&ev);
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            for (int i = 0; i < ev.n; i++) {
                if (stream_format(s, &ev.items[i]) < 0) {
                    api_events_free(&ev);
                    return MHD_CONTENT_READER_END_WITH_ERROR;
                }
                s->pos = ev.items[i].seq;
            }
            if (s->pos >= ev.last_seq)
                s->live = true;
            if (ev.final && s->pos >= ev.last_seq)
                s->ended = true;
            api_events_free(&ev);
            continue;
        }
        s->live = true;
        bool final = ev.final;
        api_events_free(&ev);
        if (final)
            return MHD_CONTENT_READER_END_OF_STREAM;

        /* Nothing to send: park the connection until notify or tick. */
        pthread_mutex_lock(&srv->mu);
        if (srv->stopping || atomic_load(&srv->gen) != gen) {
            pthread_mutex_unlock(&srv->mu);
            continue;
        }
        s->suspended = true;
        s->prev = NULL;
        s->next = srv->suspended;
        if (srv->suspended)
            srv->suspended->prev = s;
        srv->suspended = s;
        MHD_suspend_connection(s->conn);
        pthread_mutex_unlock(&srv->mu);
        return 0;
    }
}

static void stream_free(void *cls)
{
    struct stream *s = cls;
    /* A suspended connection is never destroyed (stop resumes all first),
     * so s is not on the suspended list here. */
    free(s->buf);
    free(s);
}

static enum MHD_Result serve_events(struct request *rq, struct MHD_Connection *c)
{
    struct api_server *srv = rq->srv;
    uint64_t after = 0;
    const char *last = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
    const char *q = query(c, "after");
    if (last && *last) {
        if (parse_u64_text(last, &after) < 0)
            return respond_error(rq, c, MHD_HTTP_BAD_REQUEST, "invalid_parameter",
                                 "Last-Event-ID must be a sequence number", NULL);
    } else if (q) {
        if (parse_u64_text(q, &after) < 0)
            return respond_error(rq, c, MHD_HTTP_BAD_REQUEST, "invalid_parameter",
                                 "query parameter 'after' must be a non-negative integer", NULL);
    }
    struct api_events ev;
    int r = srv->be.events(srv->be.ctx, rq->path.id, after, 0, &ev);
    if (r < 0)
        return respond_backend_error(rq, c, r, NULL, "no such job");
    api_events_free(&ev);

    const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    struct stream *s = calloc(1, sizeof(*s));
    if (!s)
        return MHD_NO;
    s->srv = srv;
    s->conn = c;
    memcpy(s->id, rq->path.id, sizeof(s->id));
    s->pos = after;
    s->ndjson = accept && strstr(accept, "application/x-ndjson") != NULL;
    s->last_write = monotonic_ms();
    if (!s->ndjson && stream_append(s, ": traind event stream\nretry: 3000\n\n", 35) < 0) {
        free(s);
        return MHD_NO;
    }
    /* A subscriber's buffer is this socket's send buffer (and one batch in
     * s->buf): once a client stops reading it fills, writes stall, and the
     * connection is dropped after connection_timeout. */
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci) {
        int sndbuf = STREAM_SNDBUF;
        setsockopt(ci->connect_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    }
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, s, stream_free);
    if (!resp) {
        stream_free(s);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            s->ndjson ? "application/x-ndjson" : "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    /* the stream ends after the terminal state, and so does the connection */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    return queue(rq, c, MHD_HTTP_OK, resp);
}

void api_server_notify(struct api_server *s, const char *job_id)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    atomic_fetch_add(&s->gen, 1);
    struct stream *st = s->suspended;
    while (st) {
        struct stream *next = st->next;
        if (strcmp(st->id, job_id) == 0)
            stream_resume_locked(s, st);
        st = next;
    }
    pthread_mutex_unlock(&s->mu);
}

void api_server_tick(struct api_server *s)
{
    if (!s)
        return;
    int64_t now = monotonic_ms();
    pthread_mutex_lock(&s->mu);
    struct stream *st = s->suspended;
    while (st) {
        struct stream *next = st->next;
        if (!st->ndjson && now - st->last_write >= (int64_t)s->cfg.heartbeat_s * 1000) {
            st->heartbeat_due = true;
            stream_resume_locked(s, st);
        }
        st = next;
    }
    pthread_mutex_unlock(&s->mu);
}

static void resume_all(struct api_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    while (s->suspended)
        stream_resume_locked(s, s->suspended);
    pthread_mutex_unlock(&s->mu);
}

/* --- downloads ------------------------------------------------------------- */

static enum MHD_Result serve_file(struct request *rq, struct MHD_Connection *c,
                                  enum api_file_kind kind)
{
    struct api_server *srv = rq->srv;
    int policy = -1;
    const char *ps = query(c, "policy");
    if (ps && kind != API_FILE_PATH) {
        uint64_t v;
        if (parse_u64_text(ps, &v) < 0 || v > 1000)
            return respond_error(rq, c, MHD_HTTP_BAD_REQUEST, "invalid_parameter",
                                 "query parameter 'policy' must be a policy index", NULL);
        policy = (int)v;
    }
    struct api_file f;
    struct diag d = {{0}, {0}};
    int r = srv->be.open_file(srv->be.ctx, rq->path.id, kind,
                              (const char (*)[256])rq->path.components, rq->path.n_components,
                              policy, &f, &d);
    if (r < 0)
        return respond_backend_error(rq, c, r, &d, "no such file");

    char etag[72] = "";
    if (f.sha256[0])
        snprintf(etag, sizeof(etag), "\"%s\"", f.sha256);
    char disposition[300];
    snprintf(disposition, sizeof(disposition), "attachment; filename=\"%s\"", f.name);

    if (etag[0] &&
        http_etag_matches(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_IF_NONE_MATCH),
                          etag)) {
        close(f.fd);
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        if (!resp)
            return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
        return queue(rq, c, MHD_HTTP_NOT_MODIFIED, resp);
    }

    const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE);
    const char *if_range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_RANGE);
    if (range && if_range && (!etag[0] || strcmp(if_range, etag) != 0))
        range = NULL; /* the client's copy is stale: send everything */
    uint64_t start = 0, len = f.size;
    enum http_range_result rr = http_range_parse(range, f.size, &start, &len);
    char content_range[96];
    if (rr == HTTP_RANGE_UNSATISFIABLE) {
        close(f.fd);
        struct MHD_Response *resp = error_response("range_not_satisfiable",
                                                   "the requested range is outside the file",
                                                   NULL);
        if (!resp)
            return MHD_NO;
        snprintf(content_range, sizeof(content_range), "bytes */%" PRIu64, f.size);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, content_range);
        return queue(rq, c, MHD_HTTP_RANGE_NOT_SATISFIABLE, resp);
    }
    if (rr == HTTP_RANGE_FULL) {
        start = 0;
        len = f.size;
    }
    /* The response owns the fd from here: a replaced file keeps its bytes. */
    struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64(len, f.fd, start);
    if (!resp) {
        close(f.fd);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-hdf5");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    if (etag[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    unsigned status = MHD_HTTP_OK;
    if (rr == HTTP_RANGE_PARTIAL) {
        snprintf(content_range, sizeof(content_range), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
                 start, start + len - 1, f.size);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, content_range);
        status = MHD_HTTP_PARTIAL_CONTENT;
    }
    if (rq->method == API_METHOD_GET)
        rq->serve_bytes = len;
    return queue(rq, c, status, resp);
}

/* --- /metrics ------------------------------------------------------------- */

static enum MHD_Result serve_prometheus(struct request *rq, struct MHD_Connection *c)
{
    struct api_server *srv = rq->srv;
    char *jobs = NULL;
    int r = srv->be.prometheus(srv->be.ctx, &jobs);
    if (r < 0)
        return respond_backend_error(rq, c, r, NULL, "metrics unavailable");
    /* Count this request before printing so the totals include it. */
    size_t cap = strlen(jobs) + 4096, len = 0;
    char *out = malloc(cap);
    if (!out) {
        free(jobs);
        return MHD_NO;
    }
    len += (size_t)snprintf(out + len, cap - len, "%s", jobs);
    free(jobs);
    len += (size_t)snprintf(out + len, cap - len,
                            "# HELP traind_bytes_served_total Weight file bytes sent to clients.\n"
                            "# TYPE traind_bytes_served_total counter\n"
                            "traind_bytes_served_total %" PRIu64 "\n"
                            "# HELP traind_http_requests_total HTTP responses by status code.\n"
                            "# TYPE traind_http_requests_total counter\n",
                            (uint64_t)atomic_load(&srv->bytes_served));
    for (unsigned code = 100; code < STATUS_MAX; code++) {
        uint64_t v = atomic_load(&srv->requests[code]);
        if (!v)
            continue;
        if (cap - len < 128) {
            cap *= 2;
            char *o = realloc(out, cap);
            if (!o) {
                free(out);
                return MHD_NO;
            }
            out = o;
        }
        len += (size_t)snprintf(out + len, cap - len,
                                "traind_http_requests_total{code=\"%u\"} %" PRIu64 "\n", code, v);
    }
    return queue(rq, c, MHD_HTTP_OK,
                 text_response(out, len, "text/plain; version=0.0.4; charset=utf-8"));
}

/* --- dispatch ---------------------------------------------------------------- */

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
            char id[17];
            if (!utf8_valid((const unsigned char *)(rq->body ? rq->body : ""), rq->body_len))
                return respond_error(rq, c, MHD_HTTP_BAD_REQUEST, "invalid_json",
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
            return queue(rq, c, MHD_HTTP_CREATED, resp);
        }
        r = be->list(be->ctx, query(c, "state"), &out, &d);
        return r < 0 ? respond_backend_error(rq, c, r, &d, "bad request")
                     : respond_json(rq, c, MHD_HTTP_OK, out);
    case API_ROUTE_JOB:
        if (rq->method == API_METHOD_DELETE) {
            r = be->remove(be->ctx, rq->path.id, &d);
            if (r < 0)
                return respond_backend_error(rq, c, r, &d, "no such job");
            return queue(rq, c, MHD_HTTP_NO_CONTENT,
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
        const char *fmt = query(c, "format");
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
        return queue(rq, c, MHD_HTTP_OK, resp);
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
    case API_ROUTE_HEALTH: {
        bool ready = false;
        r = be->health(be->ctx, &out, &ready);
        if (r < 0)
            return respond_backend_error(rq, c, r, NULL, "unavailable");
        return respond_json(rq, c, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, out);
    }
    case API_ROUTE_PROMETHEUS:
        return serve_prometheus(rq, c);
    }
    return respond_error(rq, c, MHD_HTTP_NOT_FOUND, "not_found", "no such route", NULL);
}

/* Write a complete JSON error response straight to the connection's socket
 * (only for a request whose body we refuse while it is still arriving). */
static void send_raw_error(struct MHD_Connection *c, unsigned status, const char *reason,
                           const char *code, size_t limit)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!info)
        return;
    char body[256], msg[512];
    int bn = snprintf(body, sizeof(body),
                      "{\"error\":{\"code\":\"%s\",\"message\":\"request body larger than "
                      "%zu bytes\",\"field\":null}}",
                      code, limit);
    if (bn < 0 || (size_t)bn >= sizeof(body))
        return;
    int n = snprintf(msg, sizeof(msg),
                     "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n%s",
                     status, reason, bn, body);
    if (n < 0 || (size_t)n >= sizeof(msg))
        return;
    size_t off = 0;
    while (off < (size_t)n) {
        ssize_t w = send(info->connect_fd, msg + off, (size_t)n - off, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* best effort: the socket buffer of a fresh connection has room */
        off += (size_t)w;
    }
}

/* Route, method, auth and (for POST) media type and announced length.
 * Returns true when the request may go on; otherwise an error response is
 * queued and *ret is the result for libmicrohttpd. */
static bool check_request(struct request *rq, struct MHD_Connection *c, enum MHD_Result *ret)
{
    struct api_server *srv = rq->srv;
    rq->checked = true;
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
    if (!(allowed & rq->method)) {
        char allow[64], msg[128];
        api_methods_format(allow, sizeof(allow), allowed);
        snprintf(msg, sizeof(msg), "method not allowed; allowed: %s", allow);
        struct MHD_Response *resp = error_response("method_not_allowed", msg, NULL);
        if (resp)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
        *ret = queue(rq, c, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
        return false;
    }
    if (rq->path.route != API_ROUTE_HEALTH && !auth_ok(srv, c)) {
        struct MHD_Response *resp =
            error_response("unauthorized", "a valid bearer token is required", NULL);
        if (resp)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                    "Bearer realm=\"traind\"");
        *ret = queue(rq, c, MHD_HTTP_UNAUTHORIZED, resp);
        return false;
    }
    if (rq->method != API_METHOD_POST)
        return true;
    if (rq->path.route == API_ROUTE_JOBS &&
        !is_json_type(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_CONTENT_TYPE))) {
        *ret = respond_error(rq, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                             "the request body must be application/json", NULL);
        return false;
    }
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t clen;
    if (cl && parse_u64_text(cl, &clen) == 0 && clen > srv->cfg.max_body_bytes) {
        char msg[128];
        snprintf(msg, sizeof(msg), "request body larger than %zu bytes", srv->cfg.max_body_bytes);
        *ret = respond_error(rq, c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", msg, NULL);
        return false;
    }
    return true;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    struct api_server *srv = cls;
    struct request *rq = *con_cls;
    (void)url;
    (void)version;
    if (!rq)
        return MHD_NO;

    if (!rq->started) {
        rq->started = true;
        rq->method = api_method_parse(method);
        /* Requests that carry a body are checked before it is read.  The
         * others are answered on the next call: a response queued on this
         * first call makes libmicrohttpd close the connection. */
        if (rq->method == API_METHOD_POST || rq->method == API_METHOD_OTHER) {
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
        if (rq->body_len + n > srv->cfg.max_body_bytes) {
            rq->too_large = true;
            free(rq->body);
            rq->body = NULL;
            rq->body_len = 0;
            /* libmicrohttpd cannot queue a response while a body arrives, and
             * a chunked body may never end: write the 413 on the socket
             * now, discard the rest of the body, close when it ends. */
            send_raw_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "Content Too Large", "too_large",
                           srv->cfg.max_body_bytes);
            atomic_fetch_add(&srv->requests[MHD_HTTP_CONTENT_TOO_LARGE], 1);
            rq->answered = true;
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
        snprintf(msg, sizeof(msg), "request body larger than %zu bytes", srv->cfg.max_body_bytes);
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
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
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

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct api_server *srv = cls;
    struct request *rq = *con_cls;
    (void)c;
    if (!rq)
        return;
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && rq->serve_bytes)
        atomic_fetch_add(&srv->bytes_served, rq->serve_bytes);
    free(rq->body);
    free(rq);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct api_server *srv = cls;
    if (srv->cfg.log)
        srv->cfg.log(srv->cfg.log_ctx, fmt, ap);
}

/* --- lifecycle ----------------------------------------------------------- */

int api_server_start(struct api_server **ret, const struct api_server_config *cfg,
                     const struct api_backend *be, struct diag *d)
{
    struct api_server *s = calloc(1, sizeof(*s));
    if (!s)
        return diag_set(d, -ENOMEM, "", "out of memory");
    s->cfg = *cfg;
    s->be = *be;
    pthread_mutex_init(&s->mu, NULL);

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (cfg->listen.addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, s,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&cfg->listen.addr,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->connection_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->connection_memory_limit,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)512,
        MHD_OPTION_END);
    if (!s->mhd) {
        pthread_mutex_destroy(&s->mu);
        free(s);
        char host[64] = "?";
        unsigned port = 0;
        if (cfg->listen.addr.ss_family == AF_INET) {
            const struct sockaddr_in *a4 = (const struct sockaddr_in *)&cfg->listen.addr;
            inet_ntop(AF_INET, &a4->sin_addr, host, sizeof(host));
            port = ntohs(a4->sin_port);
        } else {
            const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&cfg->listen.addr;
            inet_ntop(AF_INET6, &a6->sin6_addr, host, sizeof(host));
            port = ntohs(a6->sin6_port);
        }
        return diag_set(d, -EADDRNOTAVAIL, "listen", "cannot listen on %s port %u", host, port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    *ret = s;
    return 0;
}

uint16_t api_server_port(const struct api_server *s)
{
    return s->port;
}

void api_server_quiesce(struct api_server *s)
{
    if (!s)
        return;
    resume_all(s);
    MHD_socket fd = MHD_quiesce_daemon(s->mhd);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

void api_server_free(struct api_server *s)
{
    if (!s)
        return;
    resume_all(s);
    MHD_stop_daemon(s->mhd);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void api_events_free(struct api_events *ev)
{
    if (!ev)
        return;
    for (int i = 0; i < ev->n; i++)
        free(ev->items[i].json);
    free(ev->items);
    ev->items = NULL;
    ev->n = 0;
}
