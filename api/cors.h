/* cors.h - Cross-Origin Resource Sharing: the configured list of origins
 * (traind.conf cors_allow_origins) and the headers that go with it.
 *
 * Origins are compared exactly as browsers send them ("http://host:port",
 * scheme and host lower case, no path); "*" is refused because every /v1
 * route may carry a bearer token.  No credentials mode is offered: the
 * token travels in the Authorization header, which the preflight allows.
 * Pure string work, no allocation. */
#ifndef TRAIND_API_CORS_H
#define TRAIND_API_CORS_H

#include <stdbool.h>

#include "diag.h"

#define CORS_MAX_ORIGINS 16
#define CORS_MAX_ORIGIN_LEN 255

#define CORS_ALLOW_HEADERS "Authorization, Content-Type, Last-Event-ID, Range, If-None-Match, If-Range"
#define CORS_EXPOSE_HEADERS "ETag, Content-Range, Content-Length, Content-Disposition, Location"
#define CORS_MAX_AGE "600"

struct cors_origins {
    int n;
    char origin[CORS_MAX_ORIGINS][CORS_MAX_ORIGIN_LEN + 1];
};

/* Parse a list of origins separated by spaces or commas ("" = none).
 * Each is scheme "http" or "https", "://", a host, an optional ":port",
 * and nothing else.  -EINVAL with d (field "cors_allow_origins") on the
 * first bad entry; ret is written only on success. */
int cors_origins_parse(struct cors_origins *ret, const char *text, struct diag *d);

/* True when origin (an Origin request header, may be NULL) is in o. */
bool cors_origin_allowed(const struct cors_origins *o, const char *origin);

struct MHD_Connection;
struct MHD_Response;

/* When c's Origin header is in o: add Access-Control-Allow-Origin (the
 * origin itself) and -Expose-Headers to r.  With a non-empty o every
 * response also gets "Vary: Origin".  Nothing for other requests. */
void cors_add_headers(const struct cors_origins *o, struct MHD_Connection *c,
                      struct MHD_Response *r);

/* The answer to OPTIONS on an existing route: 204 with Allow (allow) and,
 * for an allowed Origin, Access-Control-Allow-Methods, -Allow-Headers and
 * -Max-Age (cors_add_headers adds the origin when the response is queued).
 * A preflight from an origin not in the list gets no CORS headers, so the
 * browser refuses the real request.  NULL on allocation failure. */
struct MHD_Response *cors_preflight_response(const struct cors_origins *o,
                                             struct MHD_Connection *c, const char *allow);

#endif
