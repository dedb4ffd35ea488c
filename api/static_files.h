/* static_files.h - the dashboard (www/) and docs/openapi.json, embedded into
 * the binary at build time by www/embed.py, and the choices made when one
 * is served: which file a request path names, and whether the client takes
 * the gzip variant.
 *
 * The table is constant data: no allocation, no locks, no I/O. */
#ifndef TRAIND_API_STATIC_FILES_H
#define TRAIND_API_STATIC_FILES_H

#include <stdbool.h>
#include <stddef.h>

struct static_file {
    const char *name;                /* "index.html", "app.js", "openapi.json" */
    const char *content_type;
    const unsigned char *data;
    size_t size;
    const char *etag;                /* "\"<32 hex digits of sha256>\"" */
    const unsigned char *gz;         /* NULL when gzip would not save a tenth */
    size_t gz_size;
    const char *gz_etag;             /* the gzip variant's own ETag, or NULL */
};

extern const struct static_file static_files[];
extern const size_t static_files_count;

/* The file called name, or NULL. */
const struct static_file *static_file_find(const char *name);

/* True when an Accept-Encoding header value accepts gzip (a "gzip" or "*"
 * coding whose q is not 0).  NULL accepts nothing. */
bool static_accepts_gzip(const char *accept_encoding);

struct MHD_Connection;
struct MHD_Response;

/* The response for f as the request on c asks for it: 304 when
 * If-None-Match names the variant's ETag, else 200 with the gzip variant
 * when the client accepts gzip and there is one.  Sets Content-Type, ETag,
 * Vary, Cache-Control (no-cache: always revalidate), the CSP and
 * X-Content-Type-Options.  The bytes are static: the response references
 * them.  *ret_status is the HTTP status; NULL on allocation failure. */
struct MHD_Response *static_file_response(const struct static_file *f, struct MHD_Connection *c,
                                          unsigned *ret_status);

/* The Content-Security-Policy sent with every dashboard file. */
#define STATIC_CSP                                                                  \
    "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; " \
    "form-action 'self'; frame-ancestors 'none'"

#endif
