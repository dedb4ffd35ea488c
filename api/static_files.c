/* static_files.c - lookups in the embedded file table and the gzip choice
 * (see static_files.h). */
#include "static_files.h"

#include "http_range.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const struct static_file *static_file_find(const char *name)
{
    for (size_t i = 0; i < static_files_count; i++)
        if (strcmp(static_files[i].name, name) == 0)
            return &static_files[i];
    return NULL;
}

/* q of one coding item "gzip;q=0.5": 1 without a q parameter, 0 for q=0
 * (and q=0.0, q=0.00, q=0.000). */
static bool q_nonzero(const char *params, size_t n)
{
    const char *p = params;
    const char *end = params + n;
    while (p < end) {
        while (p < end && (*p == ';' || *p == ' ' || *p == '\t'))
            p++;
        if (end - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            p += 2;
            if (p < end && *p == '1')
                return true;
            if (p < end && *p == '0') {
                p++;
                if (p < end && *p == '.') {
                    for (p++; p < end && *p >= '0' && *p <= '9'; p++)
                        if (*p != '0')
                            return true;
                }
                return false;
            }
            return true;
        }
        while (p < end && *p != ';')
            p++;
    }
    return true;
}

bool static_accepts_gzip(const char *accept_encoding)
{
    if (!accept_encoding)
        return false;
    const char *p = accept_encoding;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *item = p;
        while (*p && *p != ',')
            p++;
        size_t n = (size_t)(p - item);
        size_t name_len = strcspn(item, ";, \t");
        if (name_len > n)
            name_len = n;
        bool gzip = (name_len == 4 && strncasecmp(item, "gzip", 4) == 0) ||
                    (name_len == 1 && item[0] == '*');
        if (gzip && q_nonzero(item + name_len, n - name_len))
            return true;
    }
    return false;
}

struct MHD_Response *static_file_response(const struct static_file *f, struct MHD_Connection *c,
                                          unsigned *ret_status)
{
    bool gz = f->gz && static_accepts_gzip(MHD_lookup_connection_value(
                           c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING));
    const char *etag = gz ? f->gz_etag : f->etag;
    struct MHD_Response *r;
    unsigned status;
    if (http_etag_matches(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_IF_NONE_MATCH),
                          etag)) {
        r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        status = MHD_HTTP_NOT_MODIFIED;
    } else {
        r = MHD_create_response_from_buffer(gz ? f->gz_size : f->size,
                                            (void *)(gz ? f->gz : f->data),
                                            MHD_RESPMEM_PERSISTENT);
        status = MHD_HTTP_OK;
    }
    if (!r)
        return NULL;
    if (status == MHD_HTTP_OK) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, f->content_type);
        if (gz)
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
    if (f->gz)
        MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(r, "Content-Security-Policy", STATIC_CSP);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    *ret_status = status;
    return r;
}
