/* download.c - weight file downloads (checkpoints/{path}, best, latest,
 * uploaded weights/{name}): the file opened by the backend (confined to the
 * job's folder or the uploads folder), ETag from
 * its SHA-256 with If-None-Match, single byte ranges with If-Range, the
 * bytes counted for /metrics once sent. */
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
#include <unistd.h>

#include "http_range.h"

enum MHD_Result serve_file(struct request *rq, struct MHD_Connection *c,
                           enum api_file_kind kind)
{
    struct api_server *srv = rq->srv;
    int policy = -1;
    const char *ps = request_query(c, "policy");
    if (ps && kind != API_FILE_PATH) {
        uint64_t v;
        if (parse_u64_text(ps, &v) < 0 || v > 1000)
            return respond_error(rq, c, MHD_HTTP_BAD_REQUEST, "invalid_parameter",
                                 "query parameter 'policy' must be a policy index", NULL);
        policy = (int)v;
    }
    struct api_file f;
    struct diag d = {{0}, {0}};
    int r;
    if (kind == API_FILE_UPLOADED)
        r = srv->be.weights_open ? srv->be.weights_open(srv->be.ctx, rq->path.name, &f, &d)
                                 : -ENOSYS;
    else
        r = srv->be.open_file(srv->be.ctx, rq->path.id, kind,
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
        return respond_queue(rq, c, MHD_HTTP_NOT_MODIFIED, resp);
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
        return respond_queue(rq, c, MHD_HTTP_RANGE_NOT_SATISFIABLE, resp);
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
    return respond_queue(rq, c, status, resp);
}
