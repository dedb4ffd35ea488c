/* client.h - HTTP calls to a traind server, through libcurl: JSON requests,
 * the event stream (Server-Sent Events), file downloads and uploads.  Used
 * by the `traind submit|jobs|show|logs|cancel|rm|get|upload|health` sub-commands
 * (cmd_client.c).
 *
 * Errors: functions return 0 or a negative errno and fill d.  A server that
 * cannot be reached (refused, unresolvable, timed out, connection lost
 * before an answer) is -ECONNREFUSED, -ETIMEDOUT or -ECONNRESET; an HTTP
 * answer of any status is 0 with the status in the response.  One struct
 * client per thread. */
#ifndef TRAIND_CLIENT_H
#define TRAIND_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"

#define CLIENT_DEFAULT_URL "http://127.0.0.1:8470"

struct client {
    char base[1024];    /* server URL without a trailing '/' */
    char *auth;         /* "Authorization: Bearer <token>" or NULL; owned */
    void *curl;         /* CURL *, owned */
};

struct client_response {
    long status;             /* HTTP status */
    char *body;              /* NUL-terminated, malloc'ed (not filled by downloads) */
    size_t len;
    char etag[80];           /* the ETag header without quotes, "" if none */
    char filename[256];      /* Content-Disposition filename, "" if none */
    int64_t content_length;  /* -1 if not sent */
    uint64_t range_start;    /* first byte of a 206 answer's Content-Range */
};

/* base: the server URL (http://host:port, optionally with a path prefix).
 * token_file: NULL, or a token file as the server reads it (tokens.h): one
 * bare token, or "ROLE TOKEN" lines of which the highest role is used. */
int client_init(struct client *c, const char *base, const char *token_file, struct diag *d);
void client_free(struct client *c);
void client_response_free(struct client_response *r);

/* One request.  path starts with '/'; body may be NULL; content_type is
 * sent when body is given.  ret is filled on success (free it). */
int client_request(struct client *c, const char *method, const char *path,
                   const char *content_type, const void *body, size_t len,
                   struct client_response *ret, struct diag *d);

/* The server's error body {"error": {"message", "field"}}, as
 * "<field>: <message>" (or the status line when the body says nothing). */
void client_error_text(const struct client_response *r, char *out, size_t outsz);

/* Called for each event of a stream: seq (0 when the frame has no id), type
 * and the data (the event's JSON).  Returns 0 to go on, 1 to stop reading. */
typedef int (*client_event_fn)(void *ctx, uint64_t seq, const char *type, const char *data);

/* GET /v1/jobs/{id}/events with Last-Event-ID: after, handing each event
 * to fn until the server ends the stream or fn returns 1.  ret gets the
 * status (and the body of an error answer, which hands no event; free it).
 * The connection dropping mid stream returns -ECONNRESET (reconnect with the
 * last sequence number). */
int client_stream_events(struct client *c, const char *job_id, uint64_t after, client_event_fn fn,
                         void *ctx, struct client_response *ret, struct diag *d);

/* GET path into fd from byte offset (a Range request when offset > 0),
 * appending at fd's position; bar: draw a download bar on stderr.  ret
 * gets the status and headers (no body; an error answer's body is kept). */
int client_download(struct client *c, const char *path, int fd, uint64_t offset, bool bar,
                    struct client_response *ret, struct diag *d);

/* PUT path with the size bytes read from fd (from its position) as the
 * body, streamed, never held in memory whole; bar: draw an upload bar on
 * stderr.  ret gets the status and the answer's body (free it). */
int client_upload(struct client *c, const char *path, int fd, uint64_t size,
                  const char *content_type, bool bar, struct client_response *ret,
                  struct diag *d);

/* path with every byte outside [A-Za-z0-9._~/-] percent-encoded. */
int client_escape_path(const char *in, char *out, size_t outsz);

#endif
