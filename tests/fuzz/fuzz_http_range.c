/* fuzz_http_range.c - download headers (api/http_range.c: http_range_parse
 * for "Range: bytes=...", http_etag_matches for If-None-Match).
 *
 * Input: four lines - the representation size (decimal, strtoull), the
 * Range header value, the If-None-Match header value, the entity tag.  A
 * partial answer must lie inside the file (start < size, 0 < len <= size -
 * start); "*" matches any tag; a list holding the tag matches. */
#include <string.h>

#include "fuzz.h"
#include "http_range.h"

static char *next_line(const uint8_t **data, size_t *size)
{
    const uint8_t *line;
    size_t len;
    fuzz_take_line(data, size, &line, &len);
    return fuzz_strndup(line, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *size_text = next_line(&data, &size);
    char *range = next_line(&data, &size);
    char *inm = next_line(&data, &size);
    char *etag = fuzz_strndup(data, size);
    uint64_t file_size = strtoull(size_text, NULL, 10);

    uint64_t start = UINT64_MAX, len = UINT64_MAX;
    enum http_range_result r = http_range_parse(range, file_size, &start, &len);
    FUZZ_CHECK(r == HTTP_RANGE_FULL || r == HTTP_RANGE_PARTIAL || r == HTTP_RANGE_UNSATISFIABLE);
    if (r == HTTP_RANGE_PARTIAL) {
        FUZZ_CHECK(start < file_size);
        FUZZ_CHECK(len > 0 && len <= file_size - start);
    } else {
        FUZZ_CHECK(start == UINT64_MAX && len == UINT64_MAX); /* written only on PARTIAL */
    }
    FUZZ_CHECK(http_range_parse(NULL, file_size, &start, &len) == HTTP_RANGE_FULL);

    (void)http_etag_matches(inm, etag);
    FUZZ_CHECK(!http_etag_matches(NULL, etag));
    FUZZ_CHECK(http_etag_matches("*", etag));
    /* The tag itself, quoted or not, listed after another tag. */
    if (etag[0] && !strpbrk(etag, ", \t\"") && strlen(etag) < 200) {
        char quoted[256], list[300];
        snprintf(quoted, sizeof(quoted), "\"%s\"", etag);
        snprintf(list, sizeof(list), "\"zz\", W/%s", quoted);
        FUZZ_CHECK(http_etag_matches(list, quoted));
    }
    free(etag);
    free(inm);
    free(range);
    free(size_text);
    return 0;
}
