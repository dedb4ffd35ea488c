/* server.h - the HTTP API server (libmicrohttpd, one internal poll thread).
 *
 * Routes every path of DESIGN.md's API table to the backend (backend.h),
 * answers errors as {"error": {"code", "message", "field"}}, checks the
 * bearer token and its role (401 without a valid one, 403 for a role
 * below the route's), enforces the body and connection limits, streams events
 * (SSE or NDJSON) with suspend/resume, serves weight files with
 * Range/ETag, and counts requests for /metrics.
 *
 * The files: server.c (this header's lifecycle), dispatch.c, response.c,
 * event_stream.c, download.c, prometheus.c; server_internal.h says what
 * each owns.
 *
 * Threads: api_server_notify and api_server_tick may be called from any
 * thread; the backend's functions are called on the server thread.
 * Ownership: the server keeps pointers to cfg->tokens and be (they must
 * outlive it); api_server_free stops it and frees everything. */
#ifndef TRAIND_API_SERVER_H
#define TRAIND_API_SERVER_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "backend.h"
#include "cors.h"
#include "diag.h"
#include "route.h"

struct api_listen {
    struct sockaddr_storage addr;
    socklen_t len;
};

/* A bearer token and the role it grants. */
struct api_token {
    const char *token;
    enum api_role role;
};

struct api_server_config {
    struct api_listen listen;
    const struct api_token *tokens;  /* n_tokens == 0: no authentication */
    int n_tokens;
    /* PEM text of the certificate (chain) and its private key: HTTPS with
     * TLS 1.2 or 1.3 only (libmicrohttpd with GnuTLS).  NULL: plain HTTP.
     * Parsed at start (tls.c); api_server_reload_tls replaces them. */
    const char *tls_cert_pem;
    const char *tls_key_pem;
    size_t max_body_bytes;           /* larger request bodies get 413 */
    uint64_t max_dataset_bytes;      /* PUT /v1/datasets/{name} bodies (streamed to a file) */
    size_t max_predict_bytes;        /* POST /v1/jobs/{id}/predict bodies (in memory) */
    unsigned max_connections;        /* MHD_OPTION_CONNECTION_LIMIT */
    unsigned max_connections_per_ip; /* MHD_OPTION_PER_IP_CONNECTION_LIMIT */
    unsigned connection_timeout_s;   /* idle connections closed after this */
    size_t connection_memory_limit;  /* per-connection buffer: bounds header size */
    unsigned heartbeat_s;            /* SSE comment on an idle stream after this */
    uint64_t stream_max_backlog;     /* events a subscriber may lag before it is dropped */
    const struct cors_origins *cors; /* origins allowed cross-origin (NULL = none); kept */
    /* Where libmicrohttpd's own error messages go (may be NULL). */
    void (*log)(void *ctx, const char *fmt, va_list ap);
    void *log_ctx;
};

struct api_server;

/* "127.0.0.1:8470", "[::1]:8470", "localhost:8470" (numeric hosts, or
 * "localhost"), port 0..65535.  -EINVAL with d on bad syntax. */
int api_listen_parse(struct api_listen *ret, const char *text, struct diag *d);
/* True for 127.0.0.0/8 and ::1 (and ::ffff:127.x). */
bool api_listen_is_loopback(const struct api_listen *l);

/* Bind and start serving.  -errno with d on failure (address in use, ...). */
int api_server_start(struct api_server **ret, const struct api_server_config *cfg,
                     const struct api_backend *be, struct diag *d);
/* New certificate and key for every later TLS handshake; open connections
 * keep theirs.  On error (-EINVAL with d naming tls_cert_file or
 * tls_key_file: unparsable, or a key that does not match; -ENOTCONN on a
 * plain HTTP server) the current pair stays. */
int api_server_reload_tls(struct api_server *s, const char *cert_pem, const char *key_pem,
                          struct diag *d);
/* The bound port (useful with port 0). */
uint16_t api_server_port(const struct api_server *s);
/* A job got new events (or changed state): wake its suspended streams. */
void api_server_notify(struct api_server *s, const char *job_id);
/* Call about once a second: sends heartbeats on idle streams. */
void api_server_tick(struct api_server *s);
/* Stop accepting new connections; open streams end. */
void api_server_quiesce(struct api_server *s);
/* Stop and free (NULL-safe). */
void api_server_free(struct api_server *s);

#endif
