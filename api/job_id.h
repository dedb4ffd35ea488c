/* job_id.h - what a job id is: JOB_ID_LEN lowercase hex digits (48 bits of
 * milliseconds since the epoch, then 16 random bits; daemon/backend.c makes
 * them).  The one place for the id's length and syntax: api/route.c checks
 * request paths with it, daemon/ checks folder names and sizes buffers. */
#ifndef TRAIND_API_JOB_ID_H
#define TRAIND_API_JOB_ID_H

#include <stdbool.h>
#include <string.h>

#define JOB_ID_LEN 16

/* True when id has the syntax of a job id. */
static inline bool api_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n != JOB_ID_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return true;
}

#endif
