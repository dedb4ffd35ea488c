/* multipart.h - multipart/form-data bodies (RFC 7578), as curl -F sends
 * them, for POST /v1/jobs/{id}/predict with several images.
 *
 * Pure parsing of a body held in memory: the parts point into it (no copy).
 * Strict: the body must start with the first delimiter (a preamble is
 * allowed only before it), every part needs a header block ending in an
 * empty line, and the body must end with the close delimiter (an epilogue
 * after it is ignored).  Errors name the part and what is wrong. */
#ifndef TRAIND_API_MULTIPART_H
#define TRAIND_API_MULTIPART_H

#include <stddef.h>

#include "diag.h"

#define MULTIPART_MAX_PARTS 256

struct multipart_part {
    char name[128];          /* form field name ("" when absent) */
    char filename[256];      /* "" when absent */
    char content_type[128];  /* "" when absent */
    const char *data;        /* into the body */
    size_t len;
};

/* The boundary parameter of a multipart/form-data Content-Type; -EINVAL
 * when the type is not multipart/form-data or has no valid boundary. */
int multipart_boundary(const char *content_type, char ret[72]);

/* Split body into at most max parts (*ret_n of them). */
int multipart_parse(const char *body, size_t len, const char *boundary,
                    struct multipart_part *parts, int max, int *ret_n, struct diag *d);

#endif
