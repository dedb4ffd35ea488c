/* http_range.h - the parts of RFC 9110 a download needs: one "Range:
 * bytes=..." specification and If-None-Match entity-tag lists.  Pure string
 * work; unit-tested in tests/unit/test_http_range.c. */
#ifndef TRAIND_API_HTTP_RANGE_H
#define TRAIND_API_HTTP_RANGE_H

#include <stdbool.h>
#include <stdint.h>

enum http_range_result {
    HTTP_RANGE_FULL,          /* no usable Range (absent, not "bytes", several ranges): send 200 */
    HTTP_RANGE_PARTIAL,       /* one satisfiable range: send 206 */
    HTTP_RANGE_UNSATISFIABLE, /* syntactically valid but outside the file: send 416 */
};

/* Interpret header (may be NULL) for a representation of size bytes.  On
 * HTTP_RANGE_PARTIAL *ret_start and *ret_len (> 0) give the bytes to send. */
enum http_range_result http_range_parse(const char *header, uint64_t size, uint64_t *ret_start,
                                        uint64_t *ret_len);

/* True when an If-None-Match header value (may be NULL) matches the
 * entity-tag etag (given with its quotes, e.g. "\"ab12\""); weak
 * comparison as RFC 9110 asks for If-None-Match; "*" matches anything. */
bool http_etag_matches(const char *header, const char *etag);

#endif
