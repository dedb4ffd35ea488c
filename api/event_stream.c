/* event_stream.c - GET /v1/jobs/{id}/events as Server-Sent Events or NDJSON:
 * replay from after / Last-Event-ID, then live events; a stream with
 * nothing to send is suspended until api_server_notify (new events) or
 * api_server_tick (SSE heartbeat); a live subscriber that lags more than
 * stream_max_backlog events is dropped. */
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
#include <sys/socket.h>
#include <time.h>

#include "monotonic.h"

#define STREAM_BATCH 64
#define STREAM_SNDBUF (64 * 1024) /* bytes a stream may have unsent in the kernel */

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

enum MHD_Result serve_events(struct request *rq, struct MHD_Connection *c)
{
    struct api_server *srv = rq->srv;
    uint64_t after = 0;
    const char *last = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
    const char *q = request_query(c, "after");
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
    return respond_queue(rq, c, MHD_HTTP_OK, resp);
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

void stream_resume_all(struct api_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    while (s->suspended)
        stream_resume_locked(s, s->suspended);
    pthread_mutex_unlock(&s->mu);
}
