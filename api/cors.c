/* cors.c - the origin list of cors_allow_origins (see cors.h). */
#include "cors.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

static const char FIELD[] = "cors_allow_origins";

static int origin_check(const char *o, size_t n, struct diag *d)
{
    size_t scheme;
    if (n >= 7 && strncmp(o, "http://", 7) == 0)
        scheme = 7;
    else if (n >= 8 && strncmp(o, "https://", 8) == 0)
        scheme = 8;
    else
        return diag_set(d, -EINVAL, FIELD,
                        "%s: origin '%.*s' must start with http:// or https:// ('*' is not "
                        "allowed)", FIELD, (int)n, o);
    size_t i = scheme;
    size_t host_start = i;
    if (i < n && o[i] == '[') {
        while (i < n && o[i] != ']')
            i++;
        if (i == n)
            return diag_set(d, -EINVAL, FIELD, "%s: origin '%.*s' has an unclosed '['", FIELD,
                            (int)n, o);
        i++;
    } else {
        while (i < n && o[i] != ':') {
            char c = o[i];
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
                return diag_set(d, -EINVAL, FIELD,
                                "%s: origin '%.*s' has '%c' in its host (lower-case host, no "
                                "path, no trailing '/')", FIELD, (int)n, o, c);
            i++;
        }
    }
    if (i == host_start)
        return diag_set(d, -EINVAL, FIELD, "%s: origin '%.*s' has no host", FIELD, (int)n, o);
    if (i < n) {
        if (o[i] != ':' || i + 1 == n || n - i - 1 > 5)
            return diag_set(d, -EINVAL, FIELD, "%s: origin '%.*s' has a bad port", FIELD,
                            (int)n, o);
        for (size_t k = i + 1; k < n; k++)
            if (o[k] < '0' || o[k] > '9')
                return diag_set(d, -EINVAL, FIELD, "%s: origin '%.*s' has a bad port", FIELD,
                                (int)n, o);
    }
    return 0;
}

int cors_origins_parse(struct cors_origins *ret, const char *text, struct diag *d)
{
    struct cors_origins o;
    memset(&o, 0, sizeof(o));
    const char *p = text;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        size_t n = strcspn(p, " \t,");
        if (o.n == CORS_MAX_ORIGINS)
            return diag_set(d, -EINVAL, FIELD, "%s: more than %d origins", FIELD,
                            CORS_MAX_ORIGINS);
        if (n > CORS_MAX_ORIGIN_LEN)
            return diag_set(d, -EINVAL, FIELD, "%s: an origin is longer than %d characters",
                            FIELD, CORS_MAX_ORIGIN_LEN);
        int r = origin_check(p, n, d);
        if (r < 0)
            return r;
        memcpy(o.origin[o.n], p, n);
        o.origin[o.n][n] = '\0';
        o.n++;
        p += n;
    }
    *ret = o;
    return 0;
}

bool cors_origin_allowed(const struct cors_origins *o, const char *origin)
{
    if (!o || !origin)
        return false;
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->origin[i], origin) == 0)
            return true;
    return false;
}

static const char *origin_of(struct MHD_Connection *c)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
}

void cors_add_headers(const struct cors_origins *o, struct MHD_Connection *c,
                      struct MHD_Response *r)
{
    if (!o || o->n == 0 || !r)
        return;
    MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Origin");
    const char *origin = origin_of(c);
    if (!cors_origin_allowed(o, origin))
        return;
    MHD_add_response_header(r, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    MHD_add_response_header(r, "Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS);
}

struct MHD_Response *cors_preflight_response(const struct cors_origins *o,
                                             struct MHD_Connection *c, const char *allow)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return NULL;
    char methods[96];
    snprintf(methods, sizeof(methods), "%s, OPTIONS", allow);
    MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, methods);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (cors_origin_allowed(o, origin_of(c))) {
        MHD_add_response_header(r, "Access-Control-Allow-Methods", methods);
        MHD_add_response_header(r, "Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
        MHD_add_response_header(r, "Access-Control-Max-Age", CORS_MAX_AGE);
    }
    return r;
}
