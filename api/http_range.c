/* http_range.c - Range and If-None-Match header parsing for downloads. */
#include "http_range.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Parse a decimal number; false on no digits or overflow. */
static bool parse_u64(const char **s, uint64_t *ret)
{
    const char *p = *s;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*p))
        return false;
    while (isdigit((unsigned char)*p)) {
        uint64_t digit = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return false;
        v = v * 10 + digit;
        p++;
    }
    *s = p;
    *ret = v;
    return true;
}

enum http_range_result http_range_parse(const char *header, uint64_t size, uint64_t *ret_start,
                                        uint64_t *ret_len)
{
    if (!header)
        return HTTP_RANGE_FULL;
    const char *p = skip_ws(header);
    if (strncasecmp(p, "bytes", 5) != 0)
        return HTTP_RANGE_FULL;
    p = skip_ws(p + 5);
    if (*p != '=')
        return HTTP_RANGE_FULL;
    p = skip_ws(p + 1);
    if (strchr(p, ','))
        return HTTP_RANGE_FULL; /* several ranges: we answer with the whole file */

    uint64_t first = 0, last = 0;
    bool has_first = parse_u64(&p, &first);
    p = skip_ws(p);
    if (*p != '-')
        return HTTP_RANGE_FULL;
    p = skip_ws(p + 1);
    bool has_last = parse_u64(&p, &last);
    p = skip_ws(p);
    if (*p != '\0')
        return HTTP_RANGE_FULL;

    if (has_first) {
        if (has_last && last < first)
            return HTTP_RANGE_FULL; /* invalid range-spec: ignore the header */
        if (first >= size)
            return HTTP_RANGE_UNSATISFIABLE;
        if (!has_last || last >= size)
            last = size - 1;
        *ret_start = first;
        *ret_len = last - first + 1;
        return HTTP_RANGE_PARTIAL;
    }
    if (!has_last)
        return HTTP_RANGE_FULL;
    /* suffix range: the last `last` bytes */
    if (last == 0 || size == 0)
        return HTTP_RANGE_UNSATISFIABLE;
    if (last > size)
        last = size;
    *ret_start = size - last;
    *ret_len = last;
    return HTTP_RANGE_PARTIAL;
}

bool http_etag_matches(const char *header, const char *etag)
{
    if (!header)
        return false;
    size_t elen = strlen(etag);
    const char *p = header;
    for (;;) {
        p = skip_ws(p);
        while (*p == ',')
            p = skip_ws(p + 1);
        if (*p == '\0')
            return false;
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        const char *start = p;
        if (*p == '"') {
            p++;
            while (*p && *p != '"')
                p++;
            if (*p == '"')
                p++;
        } else {
            while (*p && *p != ',' && *p != ' ' && *p != '\t')
                p++;
        }
        if ((size_t)(p - start) == elen && strncmp(start, etag, elen) == 0)
            return true;
        while (*p && *p != ',')
            p++;
    }
}
