/* prometheus.c - GET /metrics: the backend's job metrics, then the
 * server's own counters (bytes served, responses by status code). */
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

enum MHD_Result serve_prometheus(struct request *rq, struct MHD_Connection *c)
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
    return respond_queue(rq, c, MHD_HTTP_OK,
                 text_response(out, len, "text/plain; version=0.0.4; charset=utf-8"));
}
