/* fuzz_multipart.c - multipart/form-data bodies (api/multipart.c).
 *
 * Input: the Content-Type line, '\n', then the body.  Every accepted part
 * must lie inside the body. */
#include "fuzz.h"
#include "multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t tlen = nl ? (size_t)(nl - data) : size;
    char *ctype = fuzz_strndup(data, tlen);
    FUZZ_CHECK(ctype != NULL);
    const char *body = nl ? (const char *)nl + 1 : (const char *)data + size;
    size_t blen = nl ? size - tlen - 1 : 0;
    char boundary[72];
    if (multipart_boundary(ctype, boundary) == 0) {
        static struct multipart_part parts[MULTIPART_MAX_PARTS];
        int n = 0;
        struct diag d = {{0}, {0}};
        if (multipart_parse(body, blen, boundary, parts, MULTIPART_MAX_PARTS, &n, &d) == 0) {
            FUZZ_CHECK(n >= 1 && n <= MULTIPART_MAX_PARTS);
            for (int i = 0; i < n; i++)
                FUZZ_CHECK(parts[i].data >= body && parts[i].data + parts[i].len <= body + blen);
        } else {
            FUZZ_CHECK(d.message[0] != '\0');
        }
    }
    free(ctype);
    return 0;
}
